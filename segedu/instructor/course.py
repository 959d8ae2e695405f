"""The course's main jobs: run the lectures, regenerate exercises/, and self-check the grading.

``make course`` calls :func:`course`; ``make test`` calls the same functions in a temporary folder,
so the main job cannot rot unseen.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .._units import ALL_LECTURES_BUDGET_S, LECTURE_BUDGET_S, UNITS
from .._units import unit as _unit
from .nbgrader_run import CourseCopy, Scores
from .notebooks import assignment_ids, execute_notebook, fill_in, lecture_paths, solution_answers, unit_of

# The budgets (seconds per lecture, seconds a graded notebook's cells may take) come from the unit
# table, segedu/_units.py. make bench measures them; the self-check table shows a whole nbgrader run,
# start-up included.


def graded_budget_s(unit: str) -> float:
    """Seconds the graded notebook of ``unit`` (an id, assignment id or path) may spend in its cells."""
    return _unit(unit).graded_budget_s


def lecture_budget_s(unit: str) -> float:
    """Seconds a lecture may take; a lecture without a row in the unit table (a layout problem that
    ``make course`` reports) gets the course-wide budget, so that the report still comes out."""
    return next((u.lecture_budget_s for u in UNITS if u.id == str(unit)[:2]), LECTURE_BUDGET_S)


def unit_kind(unit: str) -> str:
    """What the unit's graded notebook needs, "numpy" or "torch" (segedu/_units.py)."""
    return _unit(unit).kind


def layout_problems(root: Path, units=None) -> list[str]:
    """What the unit table (segedu/_units.py) promises and the repository lacks, and what it has unlisted.

    Each unit needs its lecture, solution and released exercise, its segedu modules, its test files
    and its graded functions in the grading registry; every lecture, solution and exercise on disk
    must belong to a unit of the table.
    """
    import importlib.util

    from ..grading.exercises import EXERCISES

    root = Path(root)
    units = UNITS if units is None else units
    problems = []
    for unit in units:
        # an instructor's course folder (or make test's copy of the course) may come without the tests
        tests = unit.tests if (root / "tests").is_dir() else ()
        for kind, relative in (("lecture", unit.lecture), ("solution", unit.solution), ("exercise", unit.exercise),
                               *(("test file", t) for t in tests)):
            if not (root / relative).is_file():
                problems.append(f"unit {unit.id}: its {kind} {relative} is missing")
        for module in unit.modules:
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                problems.append(f"unit {unit.id}: its module {module} does not exist")
        if unit.name not in EXERCISES:
            problems.append(f"unit {unit.id}: no graded functions for {unit.name} in segedu/grading/exercises.py")
    listed = {unit.name for unit in units}
    on_disk = {p.stem for p in lecture_paths(root)} | set(assignment_ids(root))
    on_disk |= {p.name for p in (root / "exercises").glob("[0-9][0-9]_*") if p.is_dir()}
    for name in sorted(on_disk - listed):
        problems.append(f"{name} has notebooks but no row in segedu/_units.py")
    return problems


SELF_CHECK_STUDENT = "selfcheck_solution"
UNTOUCHED_STUDENT = "selfcheck_untouched"


def read_notebook(path: Path):
    import nbformat

    return nbformat.read(Path(path), as_version=4)


def release(root: Path, workdir: Path, assignments: list[str] | None = None) -> list[str]:
    """Regenerate ``exercises/<id>/`` of the repository from ``solutions/<id>/`` with nbgrader."""
    root = Path(root)
    course = CourseCopy(root, workdir)
    done = []
    for assignment in assignments or assignment_ids(root):
        generated = course.generate(assignment)
        target = root / "exercises" / assignment
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(generated, target)
        done.append(assignment)
    write_manifests(root)
    return done


def manifests(root: Path) -> dict:
    """assignment -> the manifest of its committed release (what ``segedu.check_submission`` compares with)."""
    from segedu.submission.rules import release_manifest

    found = {}
    for assignment in assignment_ids(root):
        for path in sorted((Path(root) / "exercises" / assignment).glob("*.ipynb")):
            found[assignment] = release_manifest(read_notebook(path), assignment)
    return found


def _manifest_text(root: Path) -> str:
    return json.dumps(manifests(root), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_manifests(root: Path) -> Path | None:
    """Write ``segedu/submission/releases.json`` from ``exercises/`` (``make release`` does); nothing in a
    course folder that does not hold segedu's source (e.g. a copy made for a test)."""
    from segedu.submission.rules import MANIFESTS

    target = Path(root) / "segedu" / "submission" / MANIFESTS.name
    if not target.parent.is_dir():
        return None
    target.write_text(_manifest_text(root), encoding="utf-8")
    return target


def stale_manifests(root: Path) -> bool:
    """Whether ``segedu/submission/releases.json`` differs from what ``exercises/`` gives."""
    from segedu.submission.rules import MANIFESTS

    target = Path(root) / "segedu" / "submission" / MANIFESTS.name
    return not target.exists() or target.read_text(encoding="utf-8") != _manifest_text(root)


def _canonical(path: Path) -> str:
    """A notebook's content without volatile details, for comparing releases."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in data.get("cells", []):
        cell.pop("id", None)
        cell.get("metadata", {}).pop("execution", None)
    return json.dumps(data, sort_keys=True, indent=1)


def stale_releases(root: Path, workdir: Path, assignments: list[str] | None = None,
                   generated: Path | None = None) -> list[str]:
    """Assignments whose committed ``exercises/`` differ from a fresh ``generate_assignment``.

    ``generated`` is a folder that already holds fresh releases (``<generated>/<id>/``), such as the
    one ``make course`` regenerated; without it each release is generated here.
    """
    root = Path(root)
    course = None if generated else CourseCopy(root, workdir)
    stale = []
    for assignment in assignments or assignment_ids(root):
        fresh = Path(generated) / assignment if generated else course.generate(assignment)
        committed = root / "exercises" / assignment
        fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
        committed_files = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file()) \
            if committed.exists() else []
        if fresh_files != committed_files:
            stale.append(assignment)
            continue
        for name in fresh_files:
            a, b = fresh / name, committed / name
            same = _canonical(a) == _canonical(b) if name.suffix == ".ipynb" else a.read_bytes() == b.read_bytes()
            if not same:
                stale.append(assignment)
                break
    return stale


@dataclass
class SelfCheck:
    assignment: str
    solution: Scores
    untouched: Scores
    seconds: float

    @property
    def ok(self) -> bool:
        # manually graded points (a written report) are outside the self-check
        return (
            self.solution.auto_max > 0
            and self.solution.auto_score == self.solution.auto_max
            and self.untouched.auto_score == 0
        )


def self_check(root: Path, workdir: Path, assignment: str) -> SelfCheck:
    """Autograde the solution (filled into the release as a student would) and the untouched release."""
    course = CourseCopy(root, workdir)
    release_notebook = course.release_notebook(assignment)
    source = read_notebook(course.path / "solutions" / assignment / course.notebook_name(assignment))
    course.submit(assignment, SELF_CHECK_STUDENT, fill_in(release_notebook, solution_answers(source)))
    course.submit(assignment, UNTOUCHED_STUDENT, release_notebook)
    start = time.perf_counter()
    scores = course.autograde(assignment)
    seconds = (time.perf_counter() - start) / 2
    return SelfCheck(assignment, scores[SELF_CHECK_STUDENT], scores[UNTOUCHED_STUDENT], seconds)


@dataclass
class LectureRun:
    path: Path
    seconds: float
    error: str | None = None
    text: str = ""   # everything the lecture printed (make bench reads the training demos' results)


def _printed(notebook) -> str:
    return "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def run_lectures(root: Path, keep_outputs: bool = False, echo=None, paths=None,
                 save_to: Path | None = None) -> list[LectureRun]:
    """Execute every lecture (or those in ``paths``) headless; ``echo`` (e.g. ``print``) gets one
    progress line per lecture.

    With ``save_to`` (a folder) each lecture that ran through is also saved there as
    ``NN_slug.ipynb``, outputs included, with the fingerprint of its source in its metadata
    (:func:`segedu.instructor.site.save_executed`): ``make site`` publishes those runs instead of
    executing every lecture a second time.
    """
    from .site import save_executed   # site imports this module; a top-level import would be circular

    runs = []
    for path in lecture_paths(root) if paths is None else paths:
        try:
            notebook, seconds = execute_notebook(path, timeout=300)
            if save_to is not None:
                save_executed(notebook, path, Path(save_to), seconds)
            runs.append(LectureRun(path, seconds, text=_printed(notebook) if keep_outputs else ""))
        except Exception as error:  # report every lecture, then fail
            runs.append(LectureRun(path, float("nan"), f"{type(error).__name__}: {str(error)[-2000:]}"))
        if echo:
            run = runs[-1]
            echo(f"lecture {path.stem}: " + ("FAILED" if run.error else f"{run.seconds:.1f} s"))
    return runs


def _verdict(seconds: float, budget: float) -> str:
    return f"{seconds:.1f} (<= {budget:g})" if seconds <= budget else f"{seconds:.1f} OVER {budget:g}"


def format_table(lectures: list[LectureRun], checks: list[SelfCheck]) -> str:
    """unit, lecture seconds against the budget, exercise score/max, untouched score, grading seconds."""
    units = sorted({unit_of(r.path) for r in lectures} | {unit_of(c.assignment) for c in checks})
    by_lecture = {unit_of(r.path): r for r in lectures}
    by_check = {unit_of(c.assignment): c for c in checks}
    rows = [("unit", "lecture s", "exercise", "autograded score/max", "untouched", "nbgrader run s")]
    for unit in units:
        lecture = by_lecture.get(unit)
        check = by_check.get(unit)
        rows.append((
            unit,
            "-" if lecture is None else ("FAILED" if lecture.error else _verdict(lecture.seconds, lecture_budget_s(unit))),
            "-" if check is None else check.assignment,
            "-" if check is None else f"{check.solution.auto_score:g}/{check.solution.auto_max:g}",
            "-" if check is None else f"{check.untouched.auto_score:g}",
            "-" if check is None else f"{check.seconds:.1f}",   # per notebook; make bench times the cells
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if lectures:
        total = sum(r.seconds for r in lectures if not r.error)
        lines.append(f"all lectures: {_verdict(total, ALL_LECTURES_BUDGET_S)} s")
    return "\n".join(lines)


def course(root: Path, workdir: Path | None = None, run_lecture_notebooks: bool = True,
           write_release: bool = True, assignments=None) -> int:
    """The main job: lectures, release, self-check, table. Returns a process exit code.

    With ``write_release=False`` (``segedu bench``) exercises/ is left alone and only timed.
    ``assignments`` limits the self-check to those (default: every assignment); ``make test`` runs
    the job on one numpy and one torch unit, because its nbgrader round trips self-check all of them.
    """
    root = Path(root).resolve()
    own_tmp = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="segedu-course-")) if own_tmp else Path(workdir)
    try:
        start = time.perf_counter()
        layout = layout_problems(root)
        for problem in layout:
            print(f"layout: {problem}", flush=True)
        # the executed lectures are kept for `make site` (build/executed/lectures/, segedu.instructor.site)
        from .site import EXECUTED_LECTURES

        lectures = run_lectures(root, echo=lambda line: print(line, flush=True),
                                save_to=root / EXECUTED_LECTURES) if run_lecture_notebooks else []
        if write_release:
            print("regenerated " + ", ".join(f"exercises/{a}" for a in release(root, workdir / "release")), flush=True)
        checks = []
        for assignment in assignment_ids(root) if assignments is None else assignments:
            checks.append(self_check(root, workdir / f"check-{assignment}", assignment))
            check = checks[-1]
            print(f"self-check {assignment}: solution {check.solution.auto_score:g}/{check.solution.auto_max:g}, "
                  f"untouched {check.untouched.auto_score:g}", flush=True)
        print()
        print(format_table(lectures, checks))
        failures = [f"layout: {problem}" for problem in layout]
        failures += [f"lecture {r.path.name}: {r.error}" for r in lectures if r.error]
        failures += [
            f"{c.assignment}: solution {c.solution.auto_score:g}/{c.solution.auto_max:g} "
            f"(lost {', '.join(c.solution.lost()) or '-'}), untouched {c.untouched.auto_score:g}"
            for c in checks if not c.ok
        ]
        print(f"total {time.perf_counter() - start:.0f} s")
        for failure in failures:
            print("FAILED", failure)
        return 1 if failures else 0
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
