"""The Colab-versions stage: the numpy units run on Google Colab's versions of their packages.

Students use Colab first, and Colab runs older widgets and IPython than this machine (its published
list is kept in ``tests/data/colab/``). This stage, run by CI after ``make test``::

    python -m segedu.instructor.colab_versions [--venv build/colab-venv]

1. creates a separate virtual environment with Colab's versions of :data:`PINNED` (numpy, scipy,
   matplotlib, scikit-image, scikit-learn, pycocotools, tqdm, ipywidgets, IPython, ipykernel,
   jupyter_client, notebook and the widget packages around them). Colab's torch 2.11.0 can't be
   installed here (its wheels are a multi-GB download), so torch and torchvision are the pair of
   ``constraints-local.txt``; the numpy units don't import torch. The interpreter is this machine's,
   not Colab's 3.13: versions are matched, not the interpreter;
2. asks pip what ``pip install segedu[coco]`` would change there (``--dry-run --report``): none of
   Colab's packages may be upgraded or downgraded, except the ones FiftyOne itself forces, listed
   with their reason in :data:`KNOWN_COCO_CHANGES` (an entry that no longer happens fails too);
3. installs segedu (built from this checkout, as a student's setup cell builds the tag) under the
   pins, and checks with ``pip freeze`` that every pin held;
4. in that environment's kernel: the widget helper and the grading helper on ipywidgets 7.7 and
   IPython 7.34, then every lecture of a "numpy" unit (segedu/_units.py) executes, every solution
   notebook executes with all its test cells passing, and every untouched release (exercises/) fails
   every graded test cell without crashing. A notebook that imports an extra (FiftyOne: lecture 11)
   is skipped with that reason: the environment has plain segedu, as the numpy units' setup cells
   install.

It prints a table (notebook, result, seconds) and exits non-zero on a failure. An existing venv whose
pins still hold is reused (``--fresh`` recreates it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PINNED", "KNOWN_COCO_CHANGES", "COLAB_MARKERS", "read_freeze", "unadmitted", "report_changes", "main"]

ROOT = Path(__file__).resolve().parents[2]
FREEZE = Path("tests/data/colab/pip-freeze.txt")
KERNEL = "segedu-colab"

#: Colab's packages the venv pins at Colab's version: those the numpy units and the widgets use.
PINNED = ("numpy", "scipy", "matplotlib", "scikit-image", "scikit-learn", "pycocotools", "tqdm",
          "ipywidgets", "widgetsnbextension", "jupyterlab-widgets", "ipython", "ipykernel", "jupyter-client",
          "traitlets", "notebook")

#: Colab packages that ``segedu[coco]`` changes because FiftyOne (not segedu) requires other versions.
#: segedu can't lift these; each entry says why, and the stage fails if one disappears (then delete it).
KNOWN_COCO_CHANGES = {
    "pillow": "fiftyone 1.22 requires Pillow>=12.2; Colab has 11.3.0",
    "plotly": "fiftyone 1.22 requires plotly>=6.1.1,<7; Colab has 5.24.1",
    "starlette": "fiftyone 1.22 requires starlette>=1.3.1,<1.4; Colab has 1.6.0",
    "opencv-python-headless": "fiftyone and voxel51-eta require opencv-python-headless<5; Colab has 5.0.0.93",
}

#: PEP 508 marker values of Colab's runtime (tests/data/colab/os-info.txt), for the requirements' markers.
COLAB_MARKERS = {
    "python_version": "3.13", "python_full_version": "3.13.15", "implementation_name": "cpython",
    "implementation_version": "3.13.15", "platform_python_implementation": "CPython", "os_name": "posix",
    "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "extra": "",
}


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(path: Path) -> dict[str, str]:
    """Normalised name -> version of a ``pip freeze`` file (``name==version``, or a wheel URL's version)."""
    from urllib.parse import unquote

    found = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line.strip())
        if match:
            found[_name(match[1])] = match[2]
            continue
        # "torch @ https://.../torch-2.11.0%2Bcpu-cp313-...whl": the version is in the wheel's name
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*) @ \S*/([^/\s]+)\.whl\b", line.strip())
        if match:
            parts = unquote(match[2]).split("-")
            if len(parts) >= 5 and _name(parts[0]) == _name(match[1]):
                found[_name(match[1])] = parts[1]
    return found


def unadmitted(requirements, colab: dict[str, str], extras=()) -> list[str]:
    """The requirements (PEP 508 strings) that would move a package away from Colab's version.

    Markers are evaluated for Colab's runtime (:data:`COLAB_MARKERS`) and for each of ``extras``.

    >>> unadmitted(["numpy>=1.23", "ipywidgets>=8.0", "torch>=2.4; python_version<'3.9'"],
    ...            {"numpy": "2.1.3", "ipywidgets": "7.7.1", "torch": "2.0.0"})
    ["ipywidgets>=8.0 excludes Colab's ipywidgets 7.7.1"]
    """
    from packaging.requirements import Requirement

    problems = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({**COLAB_MARKERS, "extra": extra}) for extra in ("", *extras)):
            continue
        have = colab.get(_name(requirement.name))
        if have is not None and not requirement.specifier.contains(have, prereleases=True):
            problems.append(f"{text} excludes Colab's {requirement.name} {have}")
    return problems


def report_changes(report: dict, colab: dict[str, str], present=None) -> dict[str, str]:
    """What ``pip install --dry-run --report`` would change among Colab's packages: name -> why.

    A package changes when pip would install another version of it than Colab's over the one present
    (``present``: the Colab packages installed where pip ran; default all of them), or when a package
    pip would newly install (one Colab lacks) requires a version range that excludes Colab's. A Colab
    package missing where pip ran (pip picks its newest) counts only through the second rule: in Colab
    pip keeps the installed one when every requirement on it admits it.
    """
    changes = {}
    present = set(colab) if present is None else {_name(n) for n in present}
    for item in report.get("install", []):
        meta = item["metadata"]
        name = _name(meta["name"])
        if name in colab and name in present and meta["version"] != colab[name]:
            changes[name] = f"pip would install {meta['name']} {meta['version']} (Colab has {colab[name]})"
        if name in colab:
            continue   # Colab keeps its own copy, whose requirements are Colab's business
        extras = item.get("requested_extras") or ()
        for problem in unadmitted(meta.get("requires_dist") or [], colab, extras):
            required = _name(re.match(r"[A-Za-z0-9._-]+", problem)[0])
            changes.setdefault(required, f"{meta['name']} {meta['version']} requires {problem}")
    return changes


# ----------------------------------------------------------------------------- the environment

def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                           f"{result.stderr[-3000:]}")
    return result


def _freeze(venv: Path) -> dict[str, str]:
    out = _run([_python(venv), "-m", "pip", "list", "--format", "json"]).stdout
    return {_name(p["name"]): p["version"] for p in json.loads(out)}


def _pins(colab: dict[str, str], root: Path) -> str:
    missing = [name for name in PINNED if name not in colab]
    if missing:
        raise SystemExit(f"{FREEZE} has no version of {', '.join(missing)}: refresh the list or edit PINNED.")
    local = (root / "constraints-local.txt").read_text(encoding="utf-8")
    return "".join(f"{name}=={colab[name]}\n" for name in PINNED) + local


def _pins_hold(venv: Path, colab: dict[str, str]) -> list[str]:
    have = _freeze(venv)
    return [f"{name} is {have.get(name, 'missing')}, Colab has {colab[name]}" for name in PINNED
            if have.get(name) != colab[name]]


def make_venv(venv: Path, colab: dict[str, str], root: Path, fresh: bool, log) -> bool:
    """The venv with Colab's pins and the local torch pair; True when an existing one was reused."""
    pins = venv / "colab-pins.txt"
    if not fresh and _python(venv).exists() and pins.exists() and pins.read_text() == _pins(colab, root):
        if not _pins_hold(venv, colab):
            log(f"reusing {venv} (its pins hold; --fresh recreates it)")
            return True
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", venv])
    pins.write_text(_pins(colab, root))
    _run([_python(venv), "-m", "pip", "install", "-q", "-c", pins, *PINNED, "torch", "torchvision"])
    return False


def dry_run(venv: Path, colab: dict[str, str], root: Path) -> tuple[list[str], dict]:
    """Problems with what ``pip install segedu[coco]`` would change in the venv (pip's own report)."""
    report_path = venv / "dry-run-report.json"
    _run([_python(venv), "-m", "pip", "install", "--dry-run", "--quiet", "--report", report_path, f"{root}[coco]"])
    report = json.loads(report_path.read_text())
    changes = report_changes(report, colab, present=_freeze(venv))
    problems = [f"installing segedu[coco] would change Colab's {name}: {why}" for name, why in sorted(changes.items())
                if name not in KNOWN_COCO_CHANGES]
    problems += [f"KNOWN_COCO_CHANGES lists {name} ({why}), but pip no longer changes it: delete the entry"
                 for name, why in KNOWN_COCO_CHANGES.items() if name not in changes]
    segedu = next((i["metadata"] for i in report["install"] if _name(i["metadata"]["name"]) == "segedu"), None)
    if segedu is None:
        problems.append("pip's dry-run report does not install segedu")
    else:
        problems += [f"segedu's own requirement {p}" for p in unadmitted(segedu.get("requires_dist") or [], colab)]
    return problems, changes


def install_segedu(venv: Path, colab: dict[str, str], root: Path) -> list[str]:
    """Install segedu (no extras) under the pins, then check every pin held."""
    _run([_python(venv), "-m", "pip", "uninstall", "-q", "-y", "segedu"])   # a reused venv gets this checkout
    _run([_python(venv), "-m", "pip", "install", "-q", "-c", venv / "colab-pins.txt", str(root)])
    _run([_python(venv), "-m", "ipykernel", "install", "--prefix", venv, "--name", KERNEL,
          "--display-name", "segedu on Colab's versions"])
    return [f"after installing segedu, {p}" for p in _pins_hold(venv, colab)]


# ----------------------------------------------------------------------------- the notebooks

@dataclass
class Row:
    notebook: str
    result: str
    seconds: float
    ok: bool


SMOKE = '''\
import IPython, ipywidgets, ipykernel, jupyter_client, numpy
from segedu.viz import add_controls
calls = []
slider = ipywidgets.IntSlider(value=3, min=1, max=9)
box = add_controls(lambda size: calls.append(size), size=slider)
assert isinstance(box, ipywidgets.VBox) and calls == [], calls
slider.value = 5
assert calls == [5], calls
from segedu.grading import exercise
ex = exercise("00_tasks_and_metrics")
ex.check("pixel_accuracy", lambda cm: float(numpy.trace(cm) / cm.sum()), numpy.array([[3, 1], [0, 4]]), case="smoke")
try:
    ex.check("pixel_accuracy", lambda cm: 0.5, numpy.array([[3, 1], [0, 4]]), case="smoke")
except AssertionError as error:
    assert "pixel_accuracy" in str(error), error
else:
    raise AssertionError("a wrong answer passed check()")
print("versions", IPython.__version__, ipywidgets.__version__, ipykernel.__version__, jupyter_client.__version__)
'''


def _graded_tests(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code"
            and c.get("metadata", {}).get("nbgrader", {}).get("grade")
            and not c.get("metadata", {}).get("nbgrader", {}).get("solution")]


def _errors(cell) -> list[str]:
    return [f"{o.get('ename')}: {str(o.get('evalue'))[:200]}" for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def _execute(job: tuple) -> Row:
    """Run one notebook in the venv's kernel (a separate process per notebook); judge it by its role."""
    import nbclient
    import nbformat

    label, path, role, venv, timeout = job
    from .notebooks import notebook_environment

    os.environ.update(notebook_environment())
    os.environ["JUPYTER_PATH"] = str(Path(venv) / "share" / "jupyter")
    os.environ.pop("PYTHONPATH", None)
    if role == "smoke":
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SMOKE)])
        workdir = Path(venv)
    else:
        notebook = nbformat.read(path, as_version=4)
        workdir = Path(path).parent
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name=KERNEL, allow_errors=True,
                                     resources={"metadata": {"path": str(workdir)}},
                                     extra_arguments=["--IPKernelApp.log_level=ERROR"])
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as error:   # a dead kernel, a timeout: the notebook crashed
        return Row(label, f"CRASHED: {type(error).__name__}: {str(error).strip().splitlines()[-1][:200]}",
                   time.perf_counter() - start, False)
    seconds = time.perf_counter() - start
    errors = [(i, e) for i, c in enumerate(notebook.cells) for e in _errors(c)]
    tests = _graded_tests(notebook)
    if role in ("lecture", "solution", "smoke"):
        if errors:
            index, first = errors[0]
            return Row(label, f"FAILED: cell {index}: {first}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""),
                       seconds, False)
        if role == "smoke":
            printed = "".join(o.get("text", "") for o in notebook.cells[0].outputs if o.get("output_type") == "stream")
            return Row(label, "ok: add_controls redraws, check() judges; " + printed.strip(), seconds, True)
        return Row(label, f"ok ({len(tests)} test cells pass)" if role == "solution" else "ok", seconds, True)
    passed = [c.metadata.nbgrader.get("grade_id") for c in tests if not _errors(c)]
    if not tests:
        return Row(label, "FAILED: no graded test cells", seconds, False)
    if passed:
        return Row(label, f"FAILED: untouched release passes {', '.join(passed)}", seconds, False)
    return Row(label, f"ok (all {len(tests)} test cells fail)", seconds, True)


def jobs(root: Path, venv: Path, timeout: int, units=None) -> tuple[list[tuple], list[Row]]:
    """The notebooks to run, and a row for each one skipped (it imports an extra the venv lacks)."""
    import nbformat

    from .._units import UNITS
    from .links import notebook_extras

    todo, skipped = [("widgets and grading helpers", None, "smoke", str(venv), timeout)], []
    for unit in UNITS:
        if unit.kind != "numpy" or (units and unit.id not in units):
            continue
        for role, relative in (("lecture", unit.lecture), ("solution", unit.solution), ("exercise", unit.exercise)):
            path = root / relative
            extras = notebook_extras(nbformat.read(path, as_version=4))
            if extras:
                skipped.append(Row(relative, f"skipped: imports segedu[{','.join(sorted(extras))}]", 0.0, True))
            else:
                todo.append((relative, str(path), role, str(venv), timeout))
    return todo, skipped


def format_table(rows: list[Row]) -> str:
    width = max(len(r.notebook) for r in rows)
    lines = [f"{'notebook':<{width}}  {'seconds':>7}  result", "-" * (width + 40)]
    lines += [f"{r.notebook:<{width}}  {r.seconds:7.1f}  {r.result}" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segedu.instructor.colab_versions", description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=Path("build/colab-venv"),
                        help="where to create the environment (default build/colab-venv, relative to the course)")
    parser.add_argument("--course", type=Path, default=ROOT, help="the course repository (default: this checkout)")
    parser.add_argument("--freeze", type=Path, default=None, help=f"Colab's pip freeze (default <course>/{FREEZE})")
    parser.add_argument("--fresh", action="store_true", help="recreate the venv even if its pins hold")
    parser.add_argument("--units", nargs="*", help="only these unit ids (default: every numpy unit)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell (default 300)")
    args = parser.parse_args(argv)
    root = args.course.resolve()
    venv = (args.venv if args.venv.is_absolute() else root / args.venv).resolve()
    colab = read_freeze(args.freeze or root / FREEZE)
    start = time.perf_counter()

    def log(text):
        print(f"[colab-versions {time.perf_counter() - start:5.0f} s] {text}", flush=True)

    rows, problems = [], []
    step = time.perf_counter()
    reused = make_venv(venv, colab, root, args.fresh, log)
    rows.append(Row("(venv with Colab's pins)", f"ok ({'reused' if reused else 'created'}: {venv})",
                    time.perf_counter() - step, True))
    log("venv ready; asking pip what segedu[coco] would change")
    step = time.perf_counter()
    found, changes = dry_run(venv, colab, root)
    problems += found
    known = ", ".join(sorted(n for n in changes if n in KNOWN_COCO_CHANGES)) or "none"
    rows.append(Row("(pip --dry-run segedu[coco])", "FAILED: " + "; ".join(found) if found else
                    f"ok: changes none of Colab's packages but FiftyOne's known ones ({known})",
                    time.perf_counter() - step, not found))
    log("installing segedu under the pins")
    step = time.perf_counter()
    found = install_segedu(venv, colab, root)
    problems += found
    rows.append(Row("(install segedu, pip freeze)", "FAILED: " + "; ".join(found) if found else "ok: every pin held",
                    time.perf_counter() - step, not found))
    todo, skipped = jobs(root, venv, args.timeout, args.units)
    log(f"running {len(todo)} notebooks, {args.jobs} at a time")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows += list(pool.map(_execute, todo))
    rows += skipped
    print(format_table(rows))
    failed = [r for r in rows if not r.ok]
    skipped = [r for r in rows if r.ok and r.result.startswith("skipped")]
    print(f"{time.perf_counter() - start:.0f} s on Colab's versions ({args.freeze or FREEZE}); venv {venv}")
    print(f"colab-versions: {len(rows) - len(failed) - len(skipped)} passed, {len(failed)} failed, "
          f"{len(skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
