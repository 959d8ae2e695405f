"""Hand-graded cells (assignment 11's report): a course folder for formgrader, and the merge into grades.csv.

``segedu grade`` grades every student in a folder of their own (:mod:`.grade`), so no single gradebook
holds the whole class. After a run of an assignment with hand-graded cells it keeps one nbgrader course
folder, ``<OUT>/formgrader``, that nbgrader's formgrader opens (``segedu formgrader --out OUT``):

- ``nbgrader_config.py``: the course id and nothing that runs code. ``submitted/`` never exists there,
  so formgrader's "autograde" button finds nothing to run (students' code runs only in ``segedu grade``'s
  sandbox);
- ``source/<assignment>/`` and ``release/<assignment>/``: the solution and the release, as nbgrader
  lays them out;
- ``autograded/<student>/<assignment>/<notebook>.ipynb``: the executed notebook from the student's folder.
  formgrader renders it in the instructor's logged-in Jupyter page, where a student's ``<script>`` would
  run with the instructor's rights, outside every sandbox: :class:`.verdict.TrustedVerdict` has already
  dropped the outputs of the student's code and stored their Markdown as cleaned HTML;
- ``gradebook.db``: made once from the run's own gradebook (it knows the assignment and its cells), then
  updated through nbgrader's :class:`~nbgrader.api.Gradebook` API, as nbgrader's ``SaveAutoGrades``
  does: one submission per student, whose grades carry the ``auto_score`` (and ``needs_manual_grade``)
  of that student's own gradebook. A ``manual_score`` a person entered is never written here: a re-run
  (late submissions, a new seed) keeps it. When the hand-graded cells' source changed since it was
  graded (a new submission), the score stays and the grade is marked ``needs_manual_grade`` again,
  nbgrader's own "look at this again" (``SaveAutoGrades`` does the same); saving the score in
  formgrader clears it. ``.segedu-sync.json`` remembers which result each student's submission came from,
  so that a re-run copies only what changed.

Then :func:`merge` reads the hand-graded scores back for grades.csv and the Canvas file
(:func:`.grade.write_grades`, :func:`.grade.fill_canvas`): a total is final only when every
hand-graded cell of the student is graded (:attr:`Report.final`); until then ``score`` stays empty and
the Canvas cell blank, so that a partial total is never uploaded as if it were the grade.

Which cells are hand-graded is nbgrader's rule: task cells, and grade cells that are also solution
cells (a written answer; nbgrader does not score them unless they were left untouched, which it scores
0). Grades a person overrides in formgrader on *autograded* cells are not used: the autograder's
score, computed outside the student's kernel, is the grade of those cells.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

COURSE_ID = "segedu"
FOLDER = "formgrader"
SYNC_FILE = ".segedu-sync.json"   # student -> the result key last copied into the gradebook (skips unchanged)
NOT_GRADED = ("this submission did not grade, so formgrader does not have it; grade its report from the "
              "submission itself")

CONFIG = '''"""nbgrader configuration of a formgrader course folder, written by `segedu grade` (do not edit).

Students' code runs only in `segedu grade`'s sandbox: this folder has no submitted/, so formgrader's
"autograde" finds nothing to run. Grade the hand-graded cells here, then run `segedu grade` again with
the same download (it reuses its cached results) to write grades.csv and the Canvas file.
"""

c = get_config()  # noqa: F821  (nbgrader provides get_config)

c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# formgrader's "generate feedback" must not give hidden tests away either: as the course's
# nbgrader_config.py does it (segedu grade's own feedback is in <OUT>/feedback)
c.GenerateFeedback.exporter_class = "segedu.instructor.feedback.FeedbackHTMLExporter"
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "segedu.instructor.feedback.ShortenHiddenTracebacks",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
'''


@dataclass
class Report:
    """One student's hand-graded cells, as the formgrader gradebook has them."""

    points: dict                                  # grade id -> points possible (every hand-graded cell)
    graded: dict = field(default_factory=dict)    # grade id -> score, for the cells a person graded
    changed: list = field(default_factory=list)   # graded cells whose source changed since then
    missing: str = ""                             # why formgrader does not have this submission ("": it has)

    @property
    def in_formgrader(self) -> bool:
        return not self.missing

    @property
    def pending(self) -> list[str]:
        return [name for name in self.points if name not in self.graded]

    @property
    def final(self) -> bool:
        """Every hand-graded cell graded, on the source that was graded: the total is the grade."""
        return self.in_formgrader and not self.pending and not self.changed

    @property
    def score(self) -> float:
        return round(sum(self.graded.values()), 6)

    @property
    def max_score(self) -> float:
        return sum(self.points.values())

    def status(self) -> str:
        """What keeps the total from being final ("" when it is final)."""
        total = f"{self.max_score:g}"
        if self.missing:
            return f"report not graded ({total} points by hand): {self.missing}"
        words = []
        if self.pending:
            left = sum(self.points[name] for name in self.pending)
            if len(self.pending) == len(self.points):
                words.append(f"report not graded yet ({total} points by hand)")
            else:
                words.append(f"report not graded yet ({left:g} of {total} points by hand: "
                             f"{', '.join(self.pending)})")
        if self.changed:
            words.append(f"report changed since it was graded: check it in formgrader ({', '.join(self.changed)})")
        return "; ".join(words)


def manual_cells(course_dir: Path, assignment: str, notebook_id: str) -> dict[str, float]:
    """grade id -> points of the hand-graded cells (nbgrader's rule: task cells, and grade cells that are
    also solution cells), in the release's order; {} for a fully autograded assignment."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id=COURSE_ID) as gradebook:
        notebook = gradebook.find_notebook(notebook_id, assignment)
        solutions = {cell.name for cell in notebook.solution_cells}
        cells = [cell for cell in notebook.grade_cells if cell.name in solutions] + list(notebook.task_cells)
        points = {cell.name: float(cell.max_score) for cell in cells}
    release = course_dir / "exercises" / assignment / f"{notebook_id}.ipynb"
    order = {name: i for i, name in enumerate(_sources(release, points))}
    return dict(sorted(points.items(), key=lambda item: order.get(item[0], len(order))))


def _autograded(out: Path, student: str, assignment: str, notebook_id: str) -> Path:
    """The executed notebook in the student's own grading folder (see :mod:`.grade`)."""
    return out / ".work" / "students" / student / "autograded" / student / assignment / f"{notebook_id}.ipynb"


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _sources(path, names) -> dict[str, str]:
    """grade id -> source of the named cells of a notebook (a path or its bytes; {} when it does not exist)."""
    if isinstance(path, bytes):
        cells = json.loads(path.decode("utf-8")).get("cells", [])
    elif not path.exists():
        return {}
    else:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    found = {}
    for cell in cells:
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if name in names:
            source = cell.get("source", "")
            found[name] = "".join(source) if isinstance(source, list) else source
    return found


def prepare(out: Path, course_dir: Path, assignment: str) -> Path:
    """``<OUT>/formgrader`` with its config, source, release and gradebook (made once; see the module)."""
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    _write_if_changed(folder / "nbgrader_config.py", CONFIG.format(course_id=COURSE_ID).encode())
    for kind, target in (("solutions", "source"), ("exercises", "release")):
        for path in sorted((course_dir / kind / assignment).rglob("*")):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                _write_if_changed(folder / target / assignment / path.relative_to(course_dir / kind / assignment),
                                  path.read_bytes())
    db = folder / "gradebook.db"
    if not db.exists():   # the run's gradebook knows the assignment, its cells and their checksums
        tmp = folder / "gradebook.db.tmp"
        shutil.copy2(course_dir / "gradebook.db", tmp)
        os.replace(tmp, db)
    return folder


def _cell_definitions(gradebook, assignment: str, notebook_id: str) -> set:
    notebook = gradebook.find_notebook(notebook_id, assignment)
    return ({(c.name, "grade", c.cell_type, float(c.max_score)) for c in notebook.grade_cells}
            | {(c.name, "task", c.cell_type, float(c.max_score)) for c in notebook.task_cells})


def _sync_student(gradebook, result, out: Path, folder: Path, assignment: str, notebook_id: str,
                  hand: dict) -> None:
    """Copy one student's autograded notebook and scores into the formgrader gradebook, keeping every
    manual score (see the module's docstring)."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    student = result.student_id
    executed = _autograded(out, student, assignment, notebook_id)
    own = out / ".work" / "students" / student / "gradebook.db"
    with Gradebook(f"sqlite:///{own}", course_id=COURSE_ID) as theirs:
        submitted = theirs.find_submission_notebook(notebook_id, assignment, student)
        auto = {g.name: (g.auto_score, g.needs_manual_grade) for g in submitted.grades}
        comments = {c.name: c.auto_comment for c in submitted.comments}
    target = folder / "autograded" / student / assignment / f"{notebook_id}.ipynb"
    shown = executed.read_bytes()
    before, now = _sources(target, hand), _sources(shown, hand)
    try:
        gradebook.find_student(student)
    except MissingEntry:
        gradebook.add_student(student, last_name=result.name or student, first_name="")
    try:
        gradebook.find_submission(assignment, student)
    except MissingEntry:
        with warnings.catch_warnings():   # nbgrader's add_submission builds its rows before adding them
            warnings.simplefilter("ignore", SAWarning)
            gradebook.add_submission(assignment, student)
    notebook = gradebook.find_submission_notebook(notebook_id, assignment, student)
    for grade in notebook.grades:
        if grade.name not in auto:
            continue
        auto_score, needs = auto[grade.name]
        changed = (before.get(grade.name) != now.get(grade.name) if grade.name in hand
                   else grade.auto_score != auto_score)
        grade.auto_score = auto_score
        if grade.manual_score is None:
            grade.needs_manual_grade = needs
        elif changed and before:   # a person's score on other source: keep it, ask for another look
            grade.needs_manual_grade = True
    for comment in notebook.comments:
        if comment.name in comments:
            comment.auto_comment = comments[comment.name]
    gradebook.db.commit()
    _write_if_changed(target, shown)


def merge(out: Path, course_dir: Path, assignment: str, notebook_id: str, results: list,
          echo=print) -> dict[str, Report]:
    """Bring the run's results into ``<OUT>/formgrader`` and read the hand-graded scores back.

    Returns student id -> :class:`Report` for every result; {} when the assignment has no hand-graded
    cells (its grades.csv and Canvas file are as they always were). Nothing here stops grades.csv from
    being written: a student whose files cannot be merged, or a gradebook that cannot be read (locked,
    broken), leaves those totals open, with the reason in the status.
    """
    from nbgrader.api import Gradebook

    hand = manual_cells(course_dir, assignment, notebook_id)
    if not hand:
        return {}
    folder = prepare(out, course_dir, assignment)
    try:
        synced = json.loads((folder / SYNC_FILE).read_text())
    except (OSError, ValueError):
        synced = {}
    try:
        with Gradebook(f"sqlite:///{folder / 'gradebook.db'}", course_id=COURSE_ID) as gradebook:
            with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id=COURSE_ID) as master:
                if _cell_definitions(master, assignment, notebook_id) != _cell_definitions(gradebook, assignment,
                                                                                           notebook_id):
                    echo(f"warning: {folder / 'gradebook.db'} was made for other cells of {assignment} (the "
                         f"solution changed since?): its scores are kept and read by cell name; to start over, "
                         f"move that folder away and re-run")
            reports = {r.student_id: _merge_one(gradebook, r, out, folder, assignment, notebook_id, hand, synced)
                       for r in results}
    except Exception as error:  # noqa: BLE001  a locked or broken gradebook must not stop grades.csv
        echo(f"warning: {folder / 'gradebook.db'} could not be read ({type(error).__name__}: {error}); "
             f"no total with hand-graded points is final until a re-run reads it")
        why = f"the formgrader gradebook could not be read ({type(error).__name__}); re-run"
        return {result.student_id: Report(dict(hand), missing=why) for result in results}
    _write_if_changed(folder / SYNC_FILE, json.dumps(synced, indent=1, sort_keys=True).encode())
    return reports


def _merge_one(gradebook, result, out: Path, folder: Path, assignment: str, notebook_id: str, hand: dict,
               synced: dict) -> Report:
    """One student: into the gradebook when their result is new to it (``synced``), then their report."""
    student = result.student_id
    executed = _autograded(out, student, assignment, notebook_id)
    if not (result.cells and executed.exists()):   # formgrader may hold an earlier submission: not this one
        return Report(dict(hand), missing=NOT_GRADED)
    try:
        key = hashlib.sha256(f"{result.key} {executed.stat().st_mtime_ns}".encode()).hexdigest()
        target = folder / "autograded" / student / assignment / f"{notebook_id}.ipynb"
        if not (synced.get(student) == key and target.exists()
                and _has_submission(gradebook, student, assignment, notebook_id)):
            _sync_student(gradebook, result, out, folder, assignment, notebook_id, hand)
            synced[student] = key
        return _read_report(gradebook, student, assignment, notebook_id, hand)
    except Exception as error:  # noqa: BLE001  one student's files must not stop grades.csv
        gradebook.db.rollback()
        return Report(dict(hand), missing=f"formgrader could not take it ({type(error).__name__}: "
                                          f"{str(error)[:120]}); re-run")


def _has_submission(gradebook, student: str, assignment: str, notebook_id: str) -> bool:
    from nbgrader.api import MissingEntry

    try:
        gradebook.find_submission_notebook(notebook_id, assignment, student)
    except MissingEntry:
        return False
    return True


def _read_report(gradebook, student: str, assignment: str, notebook_id: str, hand: dict) -> Report:
    """A person graded a cell when formgrader has a manual score for it, or when nbgrader scored it and
    needs nobody (an answer left as released scores 0). A manual score on a cell marked
    ``needs_manual_grade`` again was given to other source (:func:`_sync_student`)."""
    report = Report(dict(hand))
    notebook = gradebook.find_submission_notebook(notebook_id, assignment, student)
    for grade in notebook.grades:
        if grade.name not in hand:
            continue
        if grade.manual_score is not None:
            report.graded[grade.name] = float(grade.score)   # manual score plus any extra credit
            if grade.needs_manual_grade:
                report.changed.append(grade.name)
        elif grade.auto_score is not None and not grade.needs_manual_grade:
            report.graded[grade.name] = float(grade.score)
    report.changed.sort(key=list(hand).index)
    return report


def formgrader(root: Path, out: Path, extra: list[str]) -> int:
    """``segedu formgrader --out OUT``: JupyterLab in ``<OUT>/formgrader``, where nbgrader's formgrader
    grades the hand-graded cells; ``extra`` goes to JupyterLab."""
    folder = Path(out).resolve() / FOLDER
    if not (folder / "gradebook.db").exists() or not (folder / "nbgrader_config.py").exists():
        raise SystemExit(f"No formgrader course in {folder}. Run `segedu grade ASSIGNMENT DOWNLOAD --out {out}` "
                         f"first: it makes one when the assignment has hand-graded cells (assignment 11's "
                         f"report); an assignment without them is graded entirely by `segedu grade`.")
    print(f"Formgrader course: {folder}\n"
          f"In JupyterLab (the address is printed below): menu Nbgrader > Formgrader, then Manual Grading > the "
          f"assignment > the notebook: one row per student; give each report cell its points.\n"
          f"(Manage Assignments counts the files in submitted/, which this folder leaves out so that nothing here "
          f"runs students' code: it shows 0 submissions.)\n"
          f"Then run `segedu grade` again with the same download and --out {out}: it reuses its results and "
          f"writes the finished totals into grades.csv and the Canvas file.", flush=True)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", *extra], cwd=folder, env=env)


# ----------------------------------------------------------------------------- grades.csv, Canvas, summary

#: grades.csv's extra columns when the assignment has hand-graded cells (after the usual ones)
COLUMNS = ["autograded", "manual"]


def _autograded_points(result, report: Report) -> float:
    if not result.cells:
        return float(result.score)
    return round(sum(got for name, (got, _) in result.cells.items() if name not in report.points), 6)


def total(result, report: Report | None) -> float | None:
    """The student's grade: autograded + by hand, or None while it is not final (:attr:`Report.final`)."""
    if report is None:
        return float(result.score)
    if not report.final:
        return None
    return round(_autograded_points(result, report) + report.score, 6)


def grade_row(result, report: Report) -> dict:
    """grades.csv's ``score`` and ``status`` of a student, and the extra :data:`COLUMNS`.

    ``score`` is empty until the total is final; ``max_score`` (not here) stays the assignment's full
    max, autograded and by hand, so that score / max_score is the grade once it is there.
    """
    final = total(result, report)
    extra = report.status()   # replaces grade.OK ("ok"), follows any other status
    status = result.status if not extra else extra if result.status == "ok" else f"{result.status}; {extra}"
    return {"score": "" if final is None else f"{final:g}", "status": status,
            "autograded": f"{_autograded_points(result, report):g}",
            "manual": f"{report.score:g}" if report.graded else ""}


def _some(ids: list[str], limit: int = 10) -> str:
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def summary_lines(reports: dict[str, Report], out: Path) -> list[str]:
    """How many reports are still to grade, and the command that grades them."""
    if not reports:
        return []
    waiting = [s for s, r in sorted(reports.items()) if r.pending and r.in_formgrader]
    changed = [s for s, r in sorted(reports.items()) if r.changed]
    outside = [s for s, r in sorted(reports.items()) if not r.in_formgrader]
    final = sum(r.final for r in reports.values())
    lines = [f"{final} of {len(reports)} totals final; the others wait for hand grading (no score in grades.csv, "
             f"blank in the Canvas file)"]
    if waiting or changed:
        words = []
        if waiting:
            words.append(f"{_count(len(waiting), 'report')} still to grade by hand ({_some(waiting)})")
        if changed:
            words.append(f"{_count(len(changed), 'report')} changed since graded ({_some(changed)})")
        lines.append(f"{'; '.join(words)}: make formgrader OUT={out}, then run this command again")
    if outside:
        lines.append(f"{_count(len(outside), 'report')} not in formgrader (their status says why): {_some(outside)}")
    return lines
