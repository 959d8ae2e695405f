"""The grading contract, proved through nbgrader's real command line in a temporary course folder.

For every assignment one ``nbgrader autograde`` run grades: the solution filled into the student
version as a student would, the untouched student version, every fixture of ``wrong_answers.py``
(realistic mistakes, delegation to the reference, deleted and edited test cells) and the correct
answers of ``correct_answers.py`` (every function written another way, twice: full marks).

Fixtures share notebooks where they cannot see each other (:func:`pack`): nbgrader scores every test
cell on its own, so a notebook with a wrong ``sobel`` and a wrong ``otsu_threshold`` grades both
mistakes exactly as two notebooks would, for the price of one kernel. Two fixtures share a notebook
only when the test cells that either could change are disjoint (what a test cell can see is read
from the code: the functions it names and, transitively, the functions those call).

This module holds the tests; the files ``test_nbgrader_roundtrip*.py`` each run them for one shard of
the assignments (``shard(i)``: every ``SHARDS``-th assignment from the i-th), so that ``make test``'s
grading stage, which keeps a file on one process (its session fixture grades each assignment
once), spreads the round trips over both cores. A new unit lands in a shard by itself.
"""

from __future__ import annotations

import copy
import html
import re
from functools import cache
from pathlib import Path

import nbformat
import pytest
from correct_answers import CORRECT_ANSWERS
from test_hints import HINTED
from test_hints import _assert_names_no_hidden_input as assert_names_no_hidden_input
from test_hints import _cell_messages as cell_messages
from test_hints import _hint as hint_of
from wrong_answers import WRONG_ANSWERS

from segedu.grading import grading_seed
from segedu.grading.plan import build_plan
from segedu.instructor.course import read_notebook
from segedu.instructor.nbgrader_run import CourseCopy
from segedu.instructor.notebooks import assignment_ids, fill_in, solution_answers

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignment_ids(ROOT)
#: number of test files the round trips are split into (tests/test_nbgrader_roundtrip*.py)
SHARDS = 3
SOLUTION, UNTOUCHED = "solution", "untouched"
#: exercises whose round trip also runs the student's pre-submission check on every graded notebook
#: (numpy units: a kernel each, a few seconds)
CHECKED = ("00_tasks_and_metrics", "01_thresholding")


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def shard(index: int) -> list[str]:
    """The assignments whose round trips the ``index``-th test file runs."""
    return ASSIGNMENTS[index::SHARDS]


def each_submission(table, assignments):
    """``parametrize`` over (assignment, submission) of a fixture table, with readable ids."""
    pairs = [(a, s) for a in assignments for s in table[a]]
    return pytest.mark.parametrize("assignment, submission", pairs, ids=[f"{a}:{s.name}" for a, s in pairs])


def build_submission(release_notebook, answers, submission, *others):
    """The notebook of ``submission`` (and of ``others``, packed with it: see :func:`pack`)."""
    for member in (submission,) + others:
        answers = build_answers(answers, member)
    notebook = fill_in(release_notebook, answers)
    notebook.cells = [c for c in notebook.cells if _grade_id(c) not in submission.delete_cells]
    for cell in notebook.cells:
        if _grade_id(cell) in submission.edit_cells:
            cell.source = submission.edit_cells[_grade_id(cell)]
    return notebook


_DEFINED = re.compile(r"^[ \t]*(?:def|class)[ \t]+(\w+)[ \t]*[(:]", re.MULTILINE)


def _names_in(code: str, names) -> set[str]:
    return {name for name in names if re.search(rf"\b{re.escape(name)}\b", code)}


def _reach(submission, solution_notebook, answers) -> set[str] | None:
    """The test cells whose verdict ``submission`` can change; None if it must have a notebook to itself.

    Edited or deleted test cells, and answers meant to get full marks, change the notebook as a
    whole, so they stay alone.
    """
    if submission.full_marks or submission.delete_cells or submission.edit_cells:
        return None
    changed = {change.cell for change in submission.changes} | set(submission.replace)
    if not changed:
        return None
    mine = build_answers(answers, submission)
    touched = set()
    for cell in changed:
        touched |= set(_DEFINED.findall(answers.get(cell, ""))) | set(_DEFINED.findall(mine[cell]))
    defined = {cell: set(_DEFINED.findall(code)) | set(_DEFINED.findall(mine[cell])) for cell, code in answers.items()}
    everything = set().union(*defined.values()) if defined else set()
    while True:   # a function that calls a touched one is touched too
        callers = {name for cell, names in defined.items() for name in names
                   if _names_in(mine[cell], touched & everything) and name not in touched}
        if not callers:
            break
        touched |= callers
    reach = set()
    for cell in solution_notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and _names_in(cell.source, touched):
            reach.add(meta["grade_id"])
    if not set(submission.must_lose) <= reach:
        return None   # the cells it must lose are not where the code says: don't guess
    return reach


def pack(submissions, solution_notebook, answers) -> list[tuple[str, list]]:
    """Groups of fixtures that share one notebook, as ``(student id, fixtures)``.

    Greedy, in fixture order: a fixture joins the first group whose members change none of the
    answer cells it changes and none of the test cells it can reach (:func:`_reach`).
    """
    groups: list[tuple[set, set, list]] = []
    alone = []
    for submission in submissions:
        reach = _reach(submission, solution_notebook, answers)
        if reach is None:
            alone.append((submission.name, [submission]))
            continue
        changed = {change.cell for change in submission.changes} | set(submission.replace)
        for cells, reached, members in groups:
            if not (cells & changed) and not (reached & reach):
                cells |= changed
                reached |= reach
                members.append(submission)
                break
        else:
            groups.append((set(changed), set(reach), [submission]))
    packed = [(members[0].name if len(members) == 1 else f"packed_{index:02d}", members)
              for index, (_, _, members) in enumerate(groups)]
    return packed + alone


def build_answers(answers, submission) -> dict[str, str]:
    """The solution's answers with ``submission``'s changes applied."""
    answers = dict(answers)
    for change in submission.changes:
        code = answers[change.cell]
        assert code.count(change.old) == 1, f"{submission.name}: {change.old!r} must occur once in {change.cell}"
        answers[change.cell] = code.replace(change.old, change.new)
    answers.update(submission.replace)
    return answers


def roundtrip_tests(assignments) -> dict:
    """The round-trip tests and their ``graded`` fixture for ``assignments``, to put in a test module's namespace."""

    @pytest.fixture(scope="session")
    def graded(tmp_path_factory):
        """assignment -> (course copy, scores by fixture, student id of each fixture), autograded once.

        Fixtures that share a notebook (:func:`pack`) share its scores; each checks only its own cells.
        """

        @cache
        def grade(assignment):
            course = CourseCopy(ROOT, tmp_path_factory.mktemp(f"course-{assignment}"))
            release_notebook = course.release_notebook(assignment)
            solution_notebook = read_notebook(course.path / "solutions" / assignment / f"{assignment}.ipynb")
            answers = solution_answers(solution_notebook)
            course.submit(assignment, SOLUTION, fill_in(release_notebook, answers))
            course.submit(assignment, UNTOUCHED, copy.deepcopy(release_notebook))
            student_of = {SOLUTION: SOLUTION, UNTOUCHED: UNTOUCHED}
            for student, members in pack(WRONG_ANSWERS[assignment] + CORRECT_ANSWERS[assignment],
                                         solution_notebook, answers):
                course.submit(assignment, student, build_submission(release_notebook, answers, *members))
                student_of.update((member.name, student) for member in members)
            by_student = course.autograde(assignment)
            course.feedback(assignment)
            return course, {name: by_student[student] for name, student in student_of.items()}, student_of

        return grade


    @pytest.mark.parametrize("assignment", assignments)
    def test_solution_gets_full_marks(graded, assignment):
        _, scores, _ = graded(assignment)
        solution = scores[SOLUTION]
        assert solution.auto_max > 0
        assert solution.auto_score == solution.auto_max, f"lost: {solution.lost()}"


    @pytest.mark.parametrize("assignment", assignments)
    def test_untouched_release_gets_zero_without_crash(graded, assignment):
        _, scores, _ = graded(assignment)
        untouched, solution = scores[UNTOUCHED], scores[SOLUTION]
        # a crashed kernel would leave no grades at all: every cell must have been graded
        assert set(untouched.cells) == set(solution.cells)
        assert untouched.auto_score == 0
        assert untouched.max_score == solution.max_score


    @each_submission(WRONG_ANSWERS, assignments)
    def test_fixture_scores_as_intended(graded, assignment, submission):
        _, scores, _ = graded(assignment)
        result, solution = scores[submission.name], scores[SOLUTION]
        # deleted and edited test cells are restored from the release and graded
        assert set(result.cells) == set(solution.cells), "a test cell went ungraded"
        assert result.max_score == solution.max_score
        if submission.full_marks:
            assert result.auto_score == result.auto_max, f"{submission.why}: lost {result.lost()}"
            return
        lost = set(result.lost())
        missing = set(submission.must_lose) - lost
        assert not missing, f"{submission.why}: still got full points in {sorted(missing)}"
        assert result.auto_score < solution.auto_score


    @each_submission(CORRECT_ANSWERS, assignments)
    def test_correct_answers_written_differently_get_full_marks(graded, assignment, submission):
        """Tightened tests must not reject a right answer written another way (loops, other formulas)."""
        _, scores, _ = graded(assignment)
        result = scores[submission.name]
        assert submission.full_marks and set(submission.replace) == set(solution_answers(read_notebook(
            ROOT / "solutions" / assignment / f"{assignment}.ipynb"))), "a correct answer rewrites every answer cell"
        assert result.auto_score == result.auto_max, f"{submission.why}: lost {result.lost()}"


    @pytest.mark.parametrize("assignment", assignments)
    def test_feedback_hides_hidden_tests(graded, assignment):
        course, _, student_of = graded(assignment)
        feedback = course.path / "feedback"
        pages = sorted(feedback.glob(f"*/{assignment}/*.html"))
        assert len(pages) == len(set(student_of.values()))
        for page in pages:
            html = page.read_text(encoding="utf-8")
            assert "HIDDEN TESTS" not in html, page
            assert "hidden=True" not in html and "ex.rng(" not in html, page
            # a verdict in every page; a delegating answer may lose every cell (07's max_unpool2d feeds the decoder stage)
            assert any(text in html for text in ("passed (", "NotImplementedError", "wrong answer", "earn no points"))
        # a failing hidden test still tells the student which case failed, without its input
        wrong = student_of[next(s.name for s in WRONG_ANSWERS[assignment] if s.must_lose)]
        html = (feedback / wrong / assignment / f"{assignment}.html").read_text(encoding="utf-8")
        assert re.search(r"hidden case|returned a wrong answer|earn no points|is not implemented", html)


    @pytest.mark.parametrize("assignment", sorted({a for a, _, _ in HINTED} & set(assignments)))
    def test_feedback_names_each_known_mistake(graded, assignment):
        """Each realistic fixture's feedback carries its hint, in every cell it loses; hidden cases name no input."""
        course, _, student_of = graded(assignment)
        plan = build_plan(read_notebook(ROOT / "solutions" / assignment / f"{assignment}.ipynb"), assignment,
                          grading_seed())
        hidden_hints = 0
        for _, function, submission in (h for h in HINTED if h[0] == assignment):
            hint = hint_of(assignment, function, submission.name)
            messages = cell_messages(course, student_of[submission.name], assignment)
            page = html.unescape((course.path / "feedback" / student_of[submission.name] / assignment / f"{assignment}.html")
                                 .read_text(encoding="utf-8"))
            assert hint in page, f"{submission.name}: the feedback page does not show its hint"
            for grade_id in submission.must_lose:
                message = messages[grade_id]
                assert hint in message.split("\n"), f"{submission.name}, {grade_id}:\n{message}"
                if "(...) in the hidden case" in message.split("\n")[0]:
                    hidden_hints += 1
                    assert_names_no_hidden_input(message, plan.cells[grade_id])
        if assignment == "03_regions":   # region_depth_first passes the visible case and fails a hidden one
            assert hidden_hints >= 1

    @pytest.mark.parametrize("assignment", sorted(set(CHECKED) & set(assignments)))
    def test_the_students_check_agrees_with_the_grader(graded, assignment, tmp_path):
        """``segedu.check_submission()`` on every notebook this round trip graded: each visible test it
        reports failing lost points in nbgrader, and the notebooks with full marks are "ready"."""
        from segedu.submission import check_submission

        course, scores, student_of = graded(assignment)
        solution_notebook = read_notebook(course.path / "solutions" / assignment / f"{assignment}.ipynb")
        answers = solution_answers(solution_notebook)
        release_notebook = course.release_notebook(assignment)
        notebooks = {SOLUTION: fill_in(release_notebook, answers), UNTOUCHED: copy.deepcopy(release_notebook)}
        for student, members in pack(WRONG_ANSWERS[assignment] + CORRECT_ANSWERS[assignment], solution_notebook,
                                     answers):
            notebooks[student] = build_submission(release_notebook, answers, *members)
        caught = docked_total = 0
        for student, notebook in notebooks.items():
            path = tmp_path / f"{student}.ipynb"
            nbformat.write(notebook, path)
            report = check_submission(path, assignment=assignment, quiet=True)
            result = scores[next(name for name, s in student_of.items() if s == student)]
            docked = set(result.lost())
            reported = {g for f in report.problems if f.kind == "test" for g in f.grade_ids}
            assert reported <= docked, f"{student}: reported {reported - docked}, which nbgrader did not dock\n{report}"
            assert report.ready == (not docked and not report.problems), f"{student}: {report}"
            caught += len(reported)
            docked_total += len(docked)
        # hidden tests catch what the visible ones cannot; most mistakes show in the visible tests
        print(f"\n{assignment}: the student's check reports {caught} of the {docked_total} cells nbgrader docked")
        assert caught >= 0.6 * docked_total

    return {name: value for name, value in locals().items() if name == "graded" or name.startswith("test_")}
