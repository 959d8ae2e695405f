"""Notebook plumbing shared by the course commands: find, execute, and fill in notebooks.

Nothing here imports torch; nbclient and nbformat come with the ``[instructor]`` and ``[dev]``
extras.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

ASSIGNMENT_ID = re.compile(r"^[0-9]{2}_[a-z0-9_]+$")
SOLUTION_REGION = re.compile(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION[^\n]*\n?", re.S | re.M)


def lecture_paths(root: Path) -> list[Path]:
    return sorted((Path(root) / "lectures").glob("[0-9][0-9]_*.ipynb"))


def assignment_ids(root: Path) -> list[str]:
    """Every assignment in ``solutions/``; a folder whose name breaks the naming rule is an error."""
    ids = []
    for folder in sorted((Path(root) / "solutions").iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        if not ASSIGNMENT_ID.match(folder.name):
            raise ValueError(f"solutions/{folder.name} breaks the naming rule NN_slug ([0-9]{{2}}_[a-z0-9_]+).")
        ids.append(folder.name)
    return ids


def unit_of(path_or_id) -> str:
    """The two-digit unit id of a notebook path or assignment id (its row: ``segedu._units.unit``)."""
    return Path(str(path_or_id)).name[:2]


def notebook_environment(threads: int = 1) -> dict:
    """Environment for kernels we start: headless, offline, one thread per process.

    Figures go into the notebook (the inline backend), as for a student, even where the calling process
    draws off screen (the test suite sets ``MPLBACKEND=Agg`` for itself): the course website publishes
    the figures of the lectures that the tests and ``make course`` run.
    """
    env = dict(os.environ)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["FIFTYONE_DO_NOT_TRACK"] = "true"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(name, str(threads))
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def execute_notebook(path: Path, timeout: int = 300, workdir: Path | None = None):
    """Run every cell of a notebook headless; return (executed notebook, seconds).

    Raises ``nbclient.exceptions.CellExecutionError`` with the failing cell's traceback.
    """
    import nbclient
    import nbformat

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir or path.parent)}},
        # the kernel's own log (e.g. "running over TCP without encryption" on every start) is
        # noise in `make course` and `make bench`; a failing cell still raises with its traceback
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    saved = dict(os.environ)
    os.environ.update(notebook_environment())
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return notebook, time.perf_counter() - start


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_answers(source_notebook) -> dict[str, str]:
    """grade_id -> the code a student would write: the solution cell with its markers removed."""
    answers = {}
    for cell in source_notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            answers[meta["grade_id"]] = SOLUTION_REGION.sub(lambda m: m.group(1), cell.source)
    return answers


def fill_in(release_notebook, answers: dict[str, str]):
    """A copy of the student version with some solution cells answered, as a student would submit it.

    Cells keep the release's metadata and checksums, so nbgrader treats the result like a real
    submission. ``answers`` maps grade ids to the code typed into those cells.
    """
    import copy

    notebook = copy.deepcopy(release_notebook)
    unknown = set(answers) - {_grade_id(c) for c in notebook.cells}
    if unknown:
        raise KeyError(f"The release has no cells with grade ids {sorted(unknown)}.")
    for cell in notebook.cells:
        grade_id = _grade_id(cell)
        if grade_id in answers:
            cell.source = answers[grade_id]
    return notebook


def mutate(answers: dict[str, str], grade_id: str, old: str, new: str) -> dict[str, str]:
    """Answers with one realistic mistake: ``old`` replaced by ``new`` in one cell (must occur once)."""
    code = answers[grade_id]
    if code.count(old) != 1:
        raise ValueError(f"Mutation of {grade_id!r}: {old!r} occurs {code.count(old)} times, expected once.")
    changed = dict(answers)
    changed[grade_id] = code.replace(old, new)
    return changed
