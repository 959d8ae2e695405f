"""Check an exercise notebook before you submit it: :func:`check_submission`.

It applies the grader's own rules (:mod:`segedu.submission.rules`, which ``segedu grade`` uses too) and
runs the notebook top to bottom as the grader will, with the visible tests. It reports as *problems*
only what would cost points or change what is graded, each with what to do about it, and says "ready to
submit" when there is nothing. What costs nothing at grading time (cells never run or run out of order, a
renamed file, cells of your own) is at most *advice*.

Only nbformat and nbclient are needed (both come with Colab and with Jupyter).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .rules import Finding, as_graded, assignment_findings, load_manifests, manifest_for, structure_findings, \
    which_assignment

__all__ = ["check_submission", "SubmissionReport", "Finding"]

#: seconds per cell, as when grading (nbgrader_config.py: c.Execute.timeout)
CELL_TIMEOUT_S = 30
#: memory of the kernel, as when grading (segedu grade --memory-mb)
MEMORY_MB = 4096
#: set in the kernel that the check starts, so that a check cell in it does nothing
CHECKING_ENV = "SEGEDU_CHECKING_SUBMISSION"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class SubmissionReport:
    """What :func:`check_submission` found; ``ready`` is True when there is no problem."""

    assignment: str
    source: str
    problems: list = field(default_factory=list)
    advice: list = field(default_factory=list)
    passed: list = field(default_factory=list)      # grade ids of the visible tests that pass
    seconds: float = 0.0

    @property
    def ready(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"Checked {self.source} as exercise {self.assignment} ({self.seconds:.0f} s)."]
        if self.problems:
            lines.append(f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''} that would cost "
                         f"points or change what is graded:")
            for number, finding in enumerate(self.problems, 1):
                lines.append(f"  {number}. {finding.message}")
                if finding.fix:
                    lines.append(f"     What to do: {finding.fix}")
        if self.passed:
            lines.append(f"Visible tests that pass: {len(self.passed)} ({', '.join(self.passed)}). At grading time "
                         f"hidden tests of the same kind use other inputs, so a test that passes here can still fail "
                         f"there: make your code work in general.")
        if self.advice:
            lines.append("Advice (costs nothing at grading time):")
            lines += [f"  - {finding}" for finding in self.advice]
        if self.ready:
            lines.append("Ready to submit.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        verdict = "ready to submit" if self.ready else f"{len(self.problems)} problems"
        return f"<SubmissionReport {self.assignment}: {verdict}>"

    def _ipython_display_(self):   # printed already; a cell ending in the call shows nothing twice
        pass


# ----------------------------------------------------------------------------- finding the notebook

def _in_colab() -> bool:
    return "google.colab" in sys.modules


def _from_colab():
    """The open notebook, through Colab's front end (not a public API: ``None`` when it does not answer)."""
    import nbformat

    try:
        from google.colab import _message   # noqa: PLC0415  (only exists in Colab)

        reply = _message.blocking_request("get_ipynb", request="", timeout_sec=60)
        return nbformat.reads(json.dumps(reply["ipynb"]), as_version=4)   # sources as strings, as from a file
    except Exception:  # noqa: BLE001  any failure means: ask for the file instead
        return None


def _upload_in_colab():
    import nbformat
    from google.colab import files   # noqa: PLC0415

    print("Could not read this notebook from Colab. Download it (File > Download > Download .ipynb), then "
          "choose that file:")
    uploaded = files.upload()
    if not uploaded:
        raise FileNotFoundError("No file chosen: run the cell again and choose the downloaded .ipynb.")
    name, data = next(iter(uploaded.items()))
    return nbformat.reads(data.decode("utf-8-sig"), as_version=4), name


def _running_notebook() -> Path | None:
    """The file of the notebook this kernel runs (JupyterLab and Notebook 7 say it; so does VS Code)."""
    candidates = [os.environ.get("JPY_SESSION_NAME")]
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821
        candidates += [shell.user_ns.get("__vsc_ipynb_file__"), shell.user_ns.get("__session__")]
    except NameError:
        pass
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate.endswith(".ipynb"):
            continue
        path = Path(candidate)
        for option in (path, Path.cwd() / path, Path.cwd() / path.name):
            if option.is_file():
                return option.resolve()
    return None


def _recent_inputs(count: int = 6) -> list[str]:
    """The code of the last cells this kernel ran before the current one (IPython's ``In``)."""
    try:
        inputs = get_ipython().user_ns.get("In", [])  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return []
    return [text for text in inputs[-count - 1:-1] if isinstance(text, str) and text.strip()]


def _unsaved_advice(notebook) -> list[Finding]:
    """Cells just run in this kernel whose code is not in the saved file: the check read the saved file."""
    saved = {re.sub(r"\s+", "", c.source) for c in notebook.cells if c.cell_type == "code"}
    missing = [text for text in _recent_inputs() if re.sub(r"\s+", "", text) not in saved
               and not text.lstrip().startswith(("%", "!", "get_ipython("))]
    if not missing:
        return []
    return [Finding("unsaved", f"{len(missing)} of the cells you ran last {'is' if len(missing) == 1 else 'are'} not "
                               "in the saved file, which is what this check read (and what you upload).",
                    "Save the notebook (Ctrl+S), then run this cell again.", problem=False)]


def _load(path):
    import nbformat

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}. Pass the path of your .ipynb file, e.g. "
                                f"check_submission('01_thresholding.ipynb').")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001  nbformat raises many kinds
        raise ValueError(f"{path} is not a readable notebook ({type(error).__name__}: {error}). The grader "
                         f"could not read it either: download the notebook again from Jupyter or Colab "
                         f"(File > Download .ipynb).") from None


# ----------------------------------------------------------------------------- running it as graded

def _error_text(output) -> str:
    ename, evalue = output.get("ename", "Error"), _ANSI.sub("", str(output.get("evalue", ""))).strip()
    if ename in ("SyntaxError", "IndentationError", "TabError"):   # the kernel names its temporary file
        evalue = re.sub(r"\(\S+\.py, line (\d+)\)", r"(line \1 of the cell)", evalue)
    text = f"{ename}: {evalue}".strip()
    return text.splitlines()[0][:300] if text else "an error"


def _kernel_pid(client) -> int | None:
    try:
        return client.km.provisioner.process.pid
    except AttributeError:
        return None


class _Watch:
    """While the notebook runs: say which cell is slow (the grader stops a cell after ``timeout`` s),
    and stop a kernel whose memory passes the grader's limit, as the grader does."""

    def __init__(self, client, memory_mb: int, quiet: bool):
        import threading

        self.client, self.limit, self.quiet = client, memory_mb * 2 ** 20, quiet
        self.cell, self.since, self.told, self.killed = None, 0.0, set(), False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def on_cell_start(self, cell=None, cell_index=None, **_):
        self.cell, self.since = (cell_index, cell), time.monotonic()

    def _memory(self, pid: int) -> int:
        import psutil   # comes with ipykernel (Colab and Jupyter have it)

        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process] + process.children(recursive=True))

    def _loop(self):
        while not self.done.wait(0.5):
            pid = _kernel_pid(self.client)
            if self.cell and not self.quiet and time.monotonic() - self.since > 10 and self.cell[0] not in self.told:
                self.told.add(self.cell[0])
                print(f"  still running {_cell_name(self.cell[1], self.cell[0])} after 10 s (the grader stops a cell "
                      f"at {CELL_TIMEOUT_S} s)...", flush=True)
            try:
                if pid and self._memory(pid) > self.limit:
                    import signal

                    self.killed = True
                    os.kill(pid, signal.SIGKILL)
                    return
            except Exception:  # noqa: BLE001  the kernel ended, or psutil is missing: nothing to watch
                pass


def _cell_name(cell, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id or f"cell {index + 1}"


def _run(graded, workdir: Path, timeout: int, hidden=(), memory_mb: int = 4096, quiet: bool = False):
    """Execute the as-graded notebook in a fresh kernel that hides ``hidden`` from the notebook's code
    (:mod:`._hide`); returns the executed notebook."""
    import nbclient

    from ._hide import TEST_CELL_MARK

    for cell in graded.cells:   # the imports of the visible tests (segedu.grading) go through
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = f"{TEST_CELL_MARK}\n{cell.source}"
    kernel = graded.metadata.get("kernelspec", {}).get("name") or "python3"
    options = {}
    if os.name == "posix":   # Unix sockets: no TCP port to race for with other kernels starting at once
        from traitlets.config import Config

        options["config"] = config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(workdir / "kernel")
    client = nbclient.NotebookClient(
        graded, timeout=timeout, kernel_name=kernel, allow_errors=True, interrupt_on_timeout=True, **options,
        error_on_timeout={"ename": "CellTimeoutError", "evalue": f"the cell ran longer than {timeout} s",
                          "traceback": []},
        extra_arguments=[f"--IPKernelApp.exec_lines=from segedu.submission._hide import install; "
                         f"install({tuple(hidden)!r})"],
        resources={"metadata": {"path": str(workdir)}})
    watch = _Watch(client, memory_mb, quiet)
    client.on_cell_start = watch.on_cell_start
    watch.thread.start()
    # the kernel's own stderr holds only jupyter_client's notices, not the notebook's output (that goes
    # over the kernel protocol); a check cell in there does nothing (CHECKING_ENV)
    try:
        client.execute(env={**os.environ, CHECKING_ENV: "1"}, stderr=subprocess.DEVNULL)
    except nbclient.exceptions.DeadKernelError:
        graded.metadata[CHECKING_ENV] = "memory" if watch.killed else "kernel died"
    finally:
        watch.done.set()
    for cell in graded.cells:
        if cell.cell_type == "code" and cell.source.startswith(TEST_CELL_MARK):
            cell.source = cell.source[len(TEST_CELL_MARK) + 1:]
    return graded


def findings_from_run(executed, manifest, memory_mb: int = 4096) -> tuple[list[Finding], list[Finding], list[str]]:
    """(problems, advice, passing test ids) from a notebook run as graded."""
    released = {c["nbgrader"]["grade_id"]: c["nbgrader"] for c in manifest["cells"] if "nbgrader" in c}
    died = executed.metadata.get(CHECKING_ENV)
    if died:   # the grader then grades nothing: one problem says it all
        ran = [i for i, c in enumerate(executed.cells) if c.cell_type == "code" and c.get("execution_count")]
        where = _cell_name(executed.cells[ran[-1]], ran[-1]) if ran else "the first cell"
        if died == "memory":
            message = (f"Your code used more than {memory_mb} MB of memory while running {where}; the grader stops "
                       f"it there, and the whole notebook gets 0 points.")
            fix = "Find the array or list that grows without bound in that cell (or in what it calls)."
        else:
            message = (f"Python stopped while running {where} (os._exit, sys.exit in a function, a crash in native "
                       f"code). When that happens at grading time, the whole notebook gets 0 points.")
            fix = "Find what stops Python in that cell and remove it."
        return [Finding("crash", message, fix)], [], []
    problems, advice, passed = [], [], []
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        # the kernel, interrupted at the time limit, reports a KeyboardInterrupt
        timed_out = any(o.get("ename") in ("CellTimeoutError", "KeyboardInterrupt") for o in errors)
        if grade_id and released.get(grade_id, {}).get("grade"):
            points = float(released[grade_id].get("points") or 0)
            worth = f"{points:g} point{'' if points == 1 else 's'}"
            if not errors:
                passed.append(grade_id)
                continue
            why = f"takes longer than {CELL_TIMEOUT_S} s: the grader stops it." if timed_out else \
                f"fails: {_error_text(errors[-1])}"
            problems.append(Finding("test", f"Visible test {grade_id} ({worth}) {why}",
                                    "Fix the function it tests, then run that test cell again.", (grade_id,), points))
        elif errors:
            what = f"Answer cell {grade_id}" if grade_id else f"Cell {index + 1}"
            finding = Finding("cell", f"{what} raises {_error_text(errors[-1])}",
                              "Fix it: the tests after it may miss what it defines.", (grade_id,) if grade_id else (),
                              problem=bool(grade_id))
            (problems if grade_id else advice).append(finding)
    return problems, advice, passed


def _hidden(assignment) -> tuple[str, ...]:
    from .rules import hidden_modules

    try:
        return hidden_modules(assignment)
    except KeyError:   # an exercise this segedu has no grading spec for
        return ()


def _import_findings(notebook, manifest, assignment) -> list[Finding]:
    from .rules import import_findings

    return import_findings(notebook, manifest, _hidden(assignment))


def _history_advice(notebook) -> list[Finding]:
    counts = [c.get("execution_count") for c in notebook.cells if c.cell_type == "code" and c.source.strip()]
    advice = []
    never = sum(1 for n in counts if n is None)
    ran = [n for n in counts if n is not None]
    if ran and never:
        advice.append(Finding("history", f"{never} code cell{'' if never == 1 else 's'} never run in the saved "
                                         f"notebook.",
                              "Kernel > Restart & Run All shows what the grader will see.", problem=False))
    if ran and ran != sorted(ran):
        advice.append(Finding("history", "Cells were run out of order; the grader runs them top to bottom.",
                              "Kernel > Restart & Run All before you submit.", problem=False))
    return advice


# ----------------------------------------------------------------------------- the check

def check_submission(path=None, assignment: str | None = None, *, run_tests: bool = True,
                     timeout: int = CELL_TIMEOUT_S, memory_mb: int = MEMORY_MB,
                     quiet: bool = False) -> SubmissionReport | None:
    """Tell what in an exercise notebook would cost points at grading time, before you submit it.

    Parameters
    ----------
    path : str or Path, optional
        The notebook file. By default the notebook this runs in: in Colab it is read from the browser
        (save nothing first; if Colab does not answer, you are asked for the downloaded file); in
        JupyterLab, Notebook or VS Code the saved file is read, so save first.
    assignment : str, optional
        The exercise you will submit it for, e.g. ``"01_thresholding"`` (default: the exercise whose
        cells the notebook holds).
    run_tests : bool
        Run the notebook top to bottom in a fresh kernel, as the grader does, with the visible tests:
        ``timeout`` seconds per cell and ``memory_mb`` of memory (the grader's limits), and without the
        modules the grader hides (segedu, the library function the exercise re-implements, ...).
        Without it only the cells are compared.

    Returns a :class:`SubmissionReport` (also printed), or ``None`` when it runs inside its own check,
    or when it cannot tell which notebook it runs in (it then prints how to pass the path).

    The rules are the grader's (:mod:`segedu.submission.rules`): deleted, duplicated, retyped or changed
    graded cells, a notebook of another exercise or release, and visible tests that fail when the
    notebook runs top to bottom. Hidden tests are not run: they use other inputs at grading time.

    >>> import nbformat
    >>> path = "/nonexistent/01_thresholding.ipynb"
    >>> check_submission(path)
    Traceback (most recent call last):
    ...
    FileNotFoundError: No notebook at /nonexistent/01_thresholding.ipynb. Pass the path of your .ipynb file, ...
    """
    if os.environ.get(CHECKING_ENV):
        return None
    start = time.perf_counter()
    manifests = load_manifests()
    name, location, unsaved = None, None, []
    if path is not None:
        notebook, location = _load(path), Path(path).expanduser()
        name = location.name
    elif _in_colab():
        notebook = _from_colab()
        name = "this Colab notebook"
        if notebook is None:
            notebook, name = _upload_in_colab()
    else:
        location = _running_notebook()
        if location is None:   # e.g. run headless by nbclient: say how, and fail nothing
            example = f"{assignment}.ipynb" if assignment else "01_thresholding.ipynb"
            print(f"check_submission: cannot tell which notebook this is (Jupyter did not say). Save it and pass "
                  f"its path: check_submission('{example}').")
            return None
        notebook, name = _load(location), location.name
        unsaved = _unsaved_advice(notebook)
    target = assignment or which_assignment(notebook, manifests)
    if target is None:
        raise ValueError("This notebook holds no cell of any exercise of this segedu. Pass assignment='NN_slug' "
                         "and the path of your exercise notebook.")
    manifest = manifest_for(target, manifests)
    report = SubmissionReport(target, name)
    whole = assignment_findings(notebook, target, manifests)
    for finding in whole:
        (report.problems if finding.problem else report.advice).append(finding)
    if not any(f.kind == "assignment" for f in whole):
        # without a run, read the answers' imports; a run shows them failing, with the same explanation
        imports = [] if run_tests else _import_findings(notebook, manifest, target)
        for finding in structure_findings(notebook, manifest) + imports:
            (report.problems if finding.problem else report.advice).append(finding)
        report.advice += unsaved + _history_advice(notebook)
        if location is not None and target not in location.stem:
            report.advice.append(Finding("renamed", f"The file is named {location.name}; the grader finds it "
                                                    f"anyway.", problem=False))
        if run_tests:
            if not quiet:
                print(f"Running {name} top to bottom in a fresh kernel, as the grader will...", flush=True)
            graded = as_graded(notebook, manifest)
            with tempfile.TemporaryDirectory(prefix="segedu-check-") as workdir:
                executed = _run(graded, Path(workdir), timeout, _hidden(target), memory_mb, quiet)
            problems, advice, passed = findings_from_run(executed, manifest, memory_mb)
            report.problems += problems
            report.advice += advice
            report.passed = passed
    report.seconds = time.perf_counter() - start
    if not quiet:
        print(report)
    return report

