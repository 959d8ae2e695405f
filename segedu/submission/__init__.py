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
        lines = [f"Checked {self.source} as exercise {self.assignment}, as the grader will run it "
                 f"({self.seconds:.0f} s)."]
        if self.problems:
            lines.append(f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''} that would cost "
                         f"points or change what is graded:")
            for number, finding in enumerate(self.problems, 1):
                lines.append(f"  {number}. {finding.message}")
                if finding.fix:
                    lines.append(f"     What to do: {finding.fix}")
        if self.passed:
            lines.append(f"Visible tests that pass: {len(self.passed)} ({', '.join(self.passed)}). Hidden tests of "
                         f"the same kind run at grading time with other inputs.")
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
    text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return _ANSI.sub("", text).strip().splitlines()[0][:300] if text.strip() else "an error"


def _run(graded, workdir: Path, timeout: int):
    """Execute the as-graded notebook in a fresh kernel; the executed notebook."""
    import nbclient

    kernel = graded.metadata.get("kernelspec", {}).get("name") or "python3"
    client = nbclient.NotebookClient(
        graded, timeout=timeout, kernel_name=kernel, allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError", "evalue": f"the cell ran longer than {timeout} s",
                          "traceback": []},
        resources={"metadata": {"path": str(workdir)}})
    # the kernel's own stderr holds only jupyter_client's notices, not the notebook's output (that goes
    # over the kernel protocol); a check cell in there does nothing (CHECKING_ENV)
    try:
        client.execute(env={**os.environ, CHECKING_ENV: "1"}, stderr=subprocess.DEVNULL)
    except nbclient.exceptions.DeadKernelError:
        graded.metadata[CHECKING_ENV] = "kernel died"
    return graded


def findings_from_run(executed, manifest) -> tuple[list[Finding], list[Finding], list[str]]:
    """(problems, advice, passing test ids) from a notebook run as graded."""
    released = {c["nbgrader"]["grade_id"]: c["nbgrader"] for c in manifest["cells"] if "nbgrader" in c}
    problems, advice, passed = [], [], []
    if executed.metadata.get(CHECKING_ENV) == "kernel died":
        ran = [i for i, c in enumerate(executed.cells) if c.cell_type == "code" and c.get("execution_count")]
        where = next((i for i, c in enumerate(executed.cells) if c.cell_type == "code" and i > max(ran, default=-1)
                      and not c.get("execution_count")), None)
        cell_name = "a cell" if where is None else \
            executed.cells[where].metadata.get("nbgrader", {}).get("grade_id") or f"cell {where + 1}"
        problems.append(Finding("crash", f"The Python kernel died while running {cell_name} (os._exit, a crash in "
                                         f"native code, or out of memory). When that happens at grading time, the whole "
                                         f"notebook gets 0 points.",
                                "Find what stops Python in that cell and remove it."))
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        timed_out = any(o.get("ename") in ("CellTimeoutError", "TimeoutError", "KeyboardInterrupt") for o in errors)
        if grade_id and released.get(grade_id, {}).get("grade"):
            points = float(released[grade_id].get("points") or 0)
            if not errors and cell.get("execution_count"):
                passed.append(grade_id)
                continue
            if not errors:
                problems.append(Finding("test", f"Visible test {grade_id} ({points:g} points) did not run.",
                                        "Fix what stops the notebook before it.", (grade_id,), points))
                continue
            why = f"takes longer than {CELL_TIMEOUT_S} s (the grader stops it)" if timed_out else \
                f"fails: {_error_text(errors[-1])}"
            problems.append(Finding("test", f"Visible test {grade_id} ({points:g} point{'s' if points != 1 else ''}) "
                                            f"{why}", "Fix the function it tests, then run that test cell again.",
                                    (grade_id,), points))
        elif errors:
            what = f"Answer cell {grade_id}" if grade_id else f"Cell {index + 1}"
            finding = Finding("cell", f"{what} raises {_error_text(errors[-1])}",
                              "Fix it: the tests after it may miss what it defines.", (grade_id,) if grade_id else (),
                              problem=bool(grade_id))
            (problems if grade_id else advice).append(finding)
    return problems, advice, passed


def _import_findings(notebook, manifest, assignment) -> list[Finding]:
    from .rules import hidden_modules, import_findings

    try:
        hidden = hidden_modules(assignment)
    except KeyError:   # an exercise this segedu has no grading spec for
        return []
    return import_findings(notebook, manifest, hidden)


def _history_advice(notebook) -> list[Finding]:
    counts = [c.get("execution_count") for c in notebook.cells if c.cell_type == "code" and c.source.strip()]
    advice = []
    never = sum(1 for n in counts if n is None)
    ran = [n for n in counts if n is not None]
    if ran and never:
        advice.append(Finding("history", f"{never} code cells were never run in the saved notebook.",
                              "Kernel > Restart & Run All shows what the grader will see.", problem=False))
    if ran and ran != sorted(ran):
        advice.append(Finding("history", "Cells were run out of order; the grader runs them top to bottom.",
                              "Kernel > Restart & Run All before you submit.", problem=False))
    return advice


# ----------------------------------------------------------------------------- the check

def check_submission(path=None, assignment: str | None = None, *, run_tests: bool = True,
                     timeout: int = CELL_TIMEOUT_S, quiet: bool = False) -> SubmissionReport | None:
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
        Run the notebook top to bottom in a fresh kernel, as the grader does, with the visible tests
        (``timeout`` seconds per cell, the grader's limit). Without it only the cells are compared.

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
    name, location = None, None
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
    target = assignment or which_assignment(notebook, manifests)
    if target is None:
        raise ValueError("This notebook holds no cell of any exercise of this segedu. Pass assignment='NN_slug' "
                         "and the path of your exercise notebook.")
    manifest = manifest_for(target, manifests)
    report = SubmissionReport(target, name)
    whole = assignment_findings(notebook, target, manifests)
    report.problems += [f for f in whole if f.problem]
    if not any(f.kind == "assignment" for f in whole):
        for finding in structure_findings(notebook, manifest) + _import_findings(notebook, manifest, target):
            (report.problems if finding.problem else report.advice).append(finding)
        report.advice += _history_advice(notebook)
        if location is not None and target not in location.stem:
            report.advice.append(Finding("renamed", f"The file is named {location.name}; the grader finds it "
                                                    f"anyway.", problem=False))
        if run_tests:
            if not quiet:
                print(f"Running {name} top to bottom in a fresh kernel, as the grader will...", flush=True)
            graded = as_graded(notebook, manifest)
            with tempfile.TemporaryDirectory(prefix="segedu-check-") as workdir:
                executed = _run(graded, Path(workdir), timeout)
            problems, advice, passed = findings_from_run(executed, manifest)
            report.problems += problems
            report.advice += advice
            report.passed = passed
    report.seconds = time.perf_counter() - start
    if not quiet:
        print(report)
    return report

