"""The grading contract, proved through nbgrader's real command line in a temporary course folder.

For every assignment one ``nbgrader autograde`` run grades: the solution filled into the student
version as a student would, the untouched student version, every fixture of ``wrong_answers.py``
(realistic mistakes, delegation to the reference, deleted and edited test cells) and the correct
answers of ``correct_answers.py`` (every function written another way, twice: full marks).

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


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def shard(index: int) -> list[str]:
    """The assignments whose round trips the ``index``-th test file runs."""
    return ASSIGNMENTS[index::SHARDS]


def each_submission(table, assignments):
    """``parametrize`` over (assignment, submission) of a fixture table, with readable ids."""
    pairs = [(a, s) for a in assignments for s in table[a]]
    return pytest.mark.parametrize("assignment, submission", pairs, ids=[f"{a}:{s.name}" for a, s in pairs])


def build_submission(release_notebook, answers, submission):
    answers = dict(answers)
    for change in submission.changes:
        code = answers[change.cell]
        assert code.count(change.old) == 1, f"{submission.name}: {change.old!r} must occur once in {change.cell}"
        answers[change.cell] = code.replace(change.old, change.new)
    answers.update(submission.replace)
    notebook = fill_in(release_notebook, answers)
    notebook.cells = [c for c in notebook.cells if _grade_id(c) not in submission.delete_cells]
    for cell in notebook.cells:
        if _grade_id(cell) in submission.edit_cells:
            cell.source = submission.edit_cells[_grade_id(cell)]
    return notebook


def roundtrip_tests(assignments) -> dict:
    """The round-trip tests and their ``graded`` fixture for ``assignments``, to put in a test module's namespace."""

    @pytest.fixture(scope="session")
    def graded(tmp_path_factory):
        """assignment -> (course copy, scores by student), autograded once per assignment."""

        @cache
        def grade(assignment):
            course = CourseCopy(ROOT, tmp_path_factory.mktemp(f"course-{assignment}"))
            release_notebook = course.release_notebook(assignment)
            answers = solution_answers(read_notebook(course.path / "solutions" / assignment / f"{assignment}.ipynb"))
            course.submit(assignment, SOLUTION, fill_in(release_notebook, answers))
            course.submit(assignment, UNTOUCHED, copy.deepcopy(release_notebook))
            for submission in WRONG_ANSWERS[assignment] + CORRECT_ANSWERS[assignment]:
                course.submit(assignment, submission.name, build_submission(release_notebook, answers, submission))
            scores = course.autograde(assignment)
            course.feedback(assignment)
            return course, scores

        return grade


    @pytest.mark.parametrize("assignment", assignments)
    def test_solution_gets_full_marks(graded, assignment):
        _, scores = graded(assignment)
        solution = scores[SOLUTION]
        assert solution.auto_max > 0
        assert solution.auto_score == solution.auto_max, f"lost: {solution.lost()}"


    @pytest.mark.parametrize("assignment", assignments)
    def test_untouched_release_gets_zero_without_crash(graded, assignment):
        _, scores = graded(assignment)
        untouched, solution = scores[UNTOUCHED], scores[SOLUTION]
        # a crashed kernel would leave no grades at all: every cell must have been graded
        assert set(untouched.cells) == set(solution.cells)
        assert untouched.auto_score == 0
        assert untouched.max_score == solution.max_score


    @each_submission(WRONG_ANSWERS, assignments)
    def test_fixture_scores_as_intended(graded, assignment, submission):
        _, scores = graded(assignment)
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
        _, scores = graded(assignment)
        result = scores[submission.name]
        assert submission.full_marks and set(submission.replace) == set(solution_answers(read_notebook(
            ROOT / "solutions" / assignment / f"{assignment}.ipynb"))), "a correct answer rewrites every answer cell"
        assert result.auto_score == result.auto_max, f"{submission.why}: lost {result.lost()}"


    @pytest.mark.parametrize("assignment", assignments)
    def test_feedback_hides_hidden_tests(graded, assignment):
        course, _ = graded(assignment)
        feedback = course.path / "feedback"
        pages = sorted(feedback.glob(f"*/{assignment}/*.html"))
        assert len(pages) == 2 + len(WRONG_ANSWERS[assignment]) + len(CORRECT_ANSWERS[assignment])
        for page in pages:
            html = page.read_text(encoding="utf-8")
            assert "HIDDEN TESTS" not in html, page
            assert "hidden=True" not in html and "ex.rng(" not in html, page
            # a verdict in every page; a delegating answer may lose every cell (07's max_unpool2d feeds the decoder stage)
            assert any(text in html for text in ("passed (", "NotImplementedError", "wrong answer", "earn no points"))
        # a failing hidden test still tells the student which case failed, without its input
        wrong = next(s.name for s in WRONG_ANSWERS[assignment] if s.must_lose)
        html = (feedback / wrong / assignment / f"{assignment}.html").read_text(encoding="utf-8")
        assert re.search(r"hidden case|returned a wrong answer|earn no points|is not implemented", html)


    @pytest.mark.parametrize("assignment", sorted({a for a, _, _ in HINTED} & set(assignments)))
    def test_feedback_names_each_known_mistake(graded, assignment):
        """Each realistic fixture's feedback carries its hint, in every cell it loses; hidden cases name no input."""
        course, scores = graded(assignment)
        plan = build_plan(read_notebook(ROOT / "solutions" / assignment / f"{assignment}.ipynb"), assignment,
                          grading_seed())
        hidden_hints = 0
        for _, function, submission in (h for h in HINTED if h[0] == assignment):
            hint = hint_of(assignment, function, submission.name)
            messages = cell_messages(course, submission.name, assignment)
            page = html.unescape((course.path / "feedback" / submission.name / assignment / f"{assignment}.html")
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

    return {name: value for name, value in locals().items() if name == "graded" or name.startswith("test_")}
