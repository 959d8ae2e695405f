"""Drive the real nbgrader command line in a throwaway course folder.

The repository's own folders are never written by grading: :class:`CourseCopy` copies
``nbgrader_config.py`` and ``solutions/`` into a work folder, and nbgrader's gradebook, submissions
and autograded notebooks live there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import _course
# the release stamp (``{"segedu": {"release": "v0.1.0"}}``) is read by the submission rules, which the
# student's check_submission() shares
from ..submission.rules import STAMP_KEY, release_of  # noqa: F401  (release_of is re-exported)
from .notebooks import notebook_environment


class NbgraderError(RuntimeError):
    pass


def stamp_release(path: Path, release: str | None = None) -> None:
    """Write the release (``segedu._course.RELEASE``) into a notebook's metadata, where the grader reads it."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    notebook.metadata[STAMP_KEY] = {**notebook.metadata.get(STAMP_KEY, {}), "release": release or _course.RELEASE}
    nbformat.write(notebook, path)


@dataclass
class Scores:
    """One student's autograded result for one notebook."""

    score: float
    max_score: float
    cells: dict = field(default_factory=dict)  # grade_id -> (score, max_score)
    manual: frozenset = frozenset()            # grade ids graded by hand (e.g. a written report)

    def lost(self) -> list[str]:
        """Grade ids of the autograded cells that did not get full marks."""
        return sorted(name for name, (got, best) in self.cells.items() if got < best and name not in self.manual)

    @property
    def auto_score(self) -> float:
        return sum(got for name, (got, _) in self.cells.items() if name not in self.manual)

    @property
    def auto_max(self) -> float:
        return sum(best for name, (_, best) in self.cells.items() if name not in self.manual)


def _nbgrader(args: list[str], cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = notebook_environment()
    # nbgrader starts `alembic` from PATH when it creates a gradebook: put our interpreter's bin first.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise NbgraderError(f"nbgrader {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


class CourseCopy:
    """A course folder for nbgrader, made from the repository at ``root`` inside ``workdir``."""

    def __init__(self, root: Path, workdir: Path):
        self.root = Path(root).resolve()
        self.path = Path(workdir).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.root / "nbgrader_config.py", self.path / "nbgrader_config.py")
        if (self.path / "solutions").exists():
            shutil.rmtree(self.path / "solutions")
        shutil.copytree(self.root / "solutions", self.path / "solutions",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))

    def notebook_name(self, assignment: str) -> str:
        notebooks = sorted((self.path / "solutions" / assignment).glob("*.ipynb"))
        if len(notebooks) != 1:
            raise NbgraderError(f"solutions/{assignment} must hold exactly one notebook, found {len(notebooks)}.")
        return notebooks[0].name

    def generate(self, assignment: str) -> Path:
        """``nbgrader generate_assignment``; returns the release folder of the assignment.

        Each released notebook is stamped with the segedu release (:func:`stamp_release`), so that
        the grader can tell a submission made from another release.
        """
        _nbgrader(["generate_assignment", assignment, "--force", "--create"], cwd=self.path)
        folder = self.path / "exercises" / assignment
        for path in sorted(folder.glob("*.ipynb")):
            stamp_release(path)
        return folder

    def release_notebook(self, assignment: str):
        import nbformat

        path = self.path / "exercises" / assignment / self.notebook_name(assignment)
        if not path.exists():
            self.generate(assignment)
        return nbformat.read(path, as_version=4)

    def submit(self, assignment: str, student: str, notebook) -> Path:
        import nbformat

        folder = self.path / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.notebook_name(assignment)
        nbformat.write(notebook, target)
        return target

    def autograde(self, assignment: str) -> dict[str, Scores]:
        """``nbgrader autograde`` every submission of ``assignment``; returns their scores."""
        _nbgrader(["autograde", assignment, "--create", "--force"], cwd=self.path)
        return self.scores(assignment)

    def scores(self, assignment: str) -> dict[str, Scores]:
        from nbgrader.api import Gradebook, MissingEntry

        notebook_id = Path(self.notebook_name(assignment)).stem
        results = {}
        with Gradebook(f"sqlite:///{self.path / 'gradebook.db'}") as gradebook:
            for student_dir in sorted((self.path / "submitted").iterdir()):
                try:
                    submission = gradebook.find_submission_notebook(notebook_id, assignment, student_dir.name)
                except MissingEntry:
                    continue
                cells = {g.name: (float(g.score), float(g.max_score)) for g in submission.grades}
                manual = frozenset(g.name for g in submission.grades if g.cell.cell_type == "markdown")
                results[student_dir.name] = Scores(
                    float(submission.score), float(submission.max_score), cells, manual)
        return results

    def feedback(self, assignment: str) -> Path:
        _nbgrader(["generate_feedback", assignment, "--force"], cwd=self.path)
        return self.path / "feedback"
