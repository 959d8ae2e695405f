"""Round trips through real nbgrader, shard 0 of ``SHARDS`` (see ``nbgrader_roundtrip.py``), and the
checks that hold for every assignment at once."""

from __future__ import annotations

import pytest
from nbgrader_roundtrip import (ASSIGNMENTS, ROOT, SHARDS, _grade_id, build_submission, roundtrip_tests,
                                shard)
from wrong_answers import WRONG_ANSWERS

from segedu.instructor.course import read_notebook
from segedu.instructor.nbgrader_run import CourseCopy
from segedu.instructor.notebooks import solution_answers

pytestmark = pytest.mark.nbgrader

globals().update(roundtrip_tests(shard(0)))


def test_the_shards_cover_every_assignment_once():
    shards = [shard(i) for i in range(SHARDS)]
    assert sorted(a for s in shards for a in s) == sorted(ASSIGNMENTS)
    assert all(shards), "a shard without assignments: lower SHARDS"
    from pathlib import Path
    files = sorted(p.name for p in Path(__file__).parent.glob("test_nbgrader_roundtrip*.py"))
    assert len(files) == SHARDS, f"one test file per shard, found {files}"


def test_every_assignment_has_wrong_answers():
    assert set(WRONG_ANSWERS) == set(ASSIGNMENTS)
    for assignment in ASSIGNMENTS:
        losing = [s for s in WRONG_ANSWERS[assignment] if s.must_lose and not s.replace]
        assert len(losing) >= 3, f"{assignment} needs at least three realistic wrong answers"


def test_the_kernel_does_not_write_test_cell_outputs(tmp_path):
    """nbgrader scores a test cell by its outputs; in the course those are written by the verdict.

    A right answer that warns on stderr keeps its points without any IgnorePattern, and whatever
    the student's code printed in a test cell is replaced by the verdict's line.
    """
    assignment = "00_tasks_and_metrics"
    warning = next(s for s in WRONG_ANSWERS[assignment] if s.name == "correct_with_warnings")
    course = CourseCopy(ROOT, tmp_path)
    with open(course.path / "nbgrader_config.py", "a") as config:
        config.write("\nc.IgnorePattern.enabled = False\n")
    release_notebook = course.release_notebook(assignment)
    answers = solution_answers(read_notebook(course.path / "solutions" / assignment / f"{assignment}.ipynb"))
    course.submit(assignment, warning.name, build_submission(release_notebook, answers, warning))
    scores = course.autograde(assignment)[warning.name]
    assert scores.lost() == []
    executed = read_notebook(course.path / "autograded" / warning.name / assignment / f"{assignment}.ipynb")
    for cell in executed.cells:
        if cell.cell_type == "code" and _grade_id(cell) in scores.cells:
            assert [o.output_type for o in cell.outputs] == ["stream"] and "passed (" in cell.outputs[0].text
        elif cell.cell_type == "code":
            assert cell.outputs == []


def test_fixtures_share_a_notebook_only_where_they_cannot_see_each_other():
    """pack(): 08's ASPP calls the student's dilated_conv2d and 07's decoder stage the student's
    max_unpool2d, so their fixtures never share; edited, deleted and full-marks fixtures stay alone."""
    from correct_answers import CORRECT_ANSWERS
    from nbgrader_roundtrip import pack

    before = after = 0
    for assignment in ASSIGNMENTS:
        solution = read_notebook(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
        fixtures = WRONG_ANSWERS[assignment] + CORRECT_ANSWERS[assignment]
        groups = pack(fixtures, solution, solution_answers(solution))
        assert sorted(m.name for _, ms in groups for m in ms) == sorted(f.name for f in fixtures)
        before, after = before + len(fixtures), after + len(groups)
        for _, members in groups:
            if len(members) == 1:
                continue
            assert not any(m.full_marks or m.edit_cells or m.delete_cells for m in members), assignment
            functions = {m.function for m in members}
            assert len(functions) == len(members), f"{assignment}: two fixtures of one function share a notebook"
            assert not {"dilated_conv2d", "aspp"} <= functions
            assert not {"max_unpool2d", "segnet_decoder_stage"} <= functions
    assert after < before
