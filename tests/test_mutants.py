"""Mutation testing (``segedu.instructor.mutants``, ``make mutants``): the operators, the list of
equivalent mutants, and grading through the trusted plan.

The full run over every exercise is ``make mutants`` (minutes); the tests here grade a handful of
mutants and the fixtures of one exercise at a time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from segedu.grading import EXERCISES
from segedu.instructor import mutants as mt
from segedu.instructor.notebooks import solution_answers

from correct_answers import CORRECT_ANSWERS
from wrong_answers import WRONG_ANSWERS

ROOT = Path(__file__).resolve().parents[1]


def _notebook(assignment):
    return nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)


def _changes(source: str, region=None) -> set[tuple[str, str, str]]:
    return {(m.operator, m.before, m.after) for m in mt.mutate_source(source, region=region)}


# ----------------------------------------------------------------------------- the operators

def test_constants_change_by_one_or_by_a_factor_of_two():
    found = _changes("x = 3\ny = 0.5\nz = 0.0\nw = 'text'\n")
    assert ("constant", "3", "4") in found and ("constant", "3", "2") in found
    assert ("constant", "0.5", "1.0") in found and ("constant", "0.5", "0.25") in found
    assert ("constant", "0.0", "1.0") in found
    assert not any("text" in before for _, before, _ in found)   # strings are never mutated


def test_arithmetic_comparison_and_logic_operators_are_swapped():
    found = _changes("y = a + b * c // d % e ** f\nok = a < b and c >= d or not e\nm = p & q | r\n")
    for expected in [("arith", "a + b * c // d % e ** f", "(a - (b * c // d % e ** f))"),
                     ("arith", "e ** f", "(e * f)"), ("compare", "a < b", "(a <= b)"),
                     ("compare", "c >= d", "(c > d)"), ("negation", "not e", "e"),
                     ("logic", "a < b and c >= d", "((a < b) or (c >= d))")]:
        assert expected in found, expected
    assert any(op == "logic" and "|" in before and after.count("&") == 2 for op, before, after in found)


def test_slice_bounds_and_indices_move_by_one():
    found = _changes("v = x[i:j + 1]\nw = grid[r + dr, c]\nu = x[-1]\n")
    for expected in [("boundary", "i", "(i + 1)"), ("boundary", "j + 1", "((j + 1) - 1)"),
                     ("boundary", "r + dr", "((r + dr) + 1)"), ("boundary", "c", "(c - 1)")]:
        assert expected in found, expected
    assert ("constant", "1", "2") in found   # x[-1]: the constant operator covers constant indices


def test_augmented_assignment_unary_minus_and_bools():
    found = _changes("total += v\nsign = -x\nflag = True\n")
    assert ("arith", "total += v", "total -= v") in found
    assert ("negation", "-x", "x") in found and ("negation", "True", "False") in found


def test_mutants_stay_between_the_solution_markers_and_keep_precedence():
    cell = ("def f(img, k):\n    img = img * 2\n    ### BEGIN SOLUTION\n    return (k + 1) // 2 + img\n"
            "    ### END SOLUTION\n")
    mutants = mt.mutate_source(cell, "x", "f", 0)
    assert mutants and all(m.line == 1 for m in mutants)
    assert all("img * 2" in m.source for m in mutants)     # the given line is never mutated
    floor = next(m for m in mutants if m.before == "(k + 1) // 2")
    assert floor.after == "((k + 1) / 2)"                    # not k + 1 / 2
    for m in mutants:
        ast.parse(m.source)
        assert mt.diff(cell, m.source).count("\n-") == 0 and mt.diff(cell, m.source).startswith("-")


def test_mutant_ids_are_unique_and_stable():
    for assignment in mt.EXERCISES:
        first = [m.id for m in mt.all_mutants(_notebook(assignment), assignment)]
        assert len(first) == len(set(first)), assignment
        assert first == [m.id for m in mt.all_mutants(_notebook(assignment), assignment)]


def test_sampling_is_seeded_and_leaves_out_equivalents():
    mutants = mt.all_mutants(_notebook("02_edges"), "02_edges")
    chosen, same = mt.select(mutants, "02_edges", 20)
    again, _ = mt.select(mutants, "02_edges", 20)
    assert len(chosen) == 20 and [m.id for m in chosen] == [m.id for m in again]
    assert {m.id for m in same} == {mid for (a, _, mid) in mt.EQUIVALENT if a == "02_edges"}
    assert not {m.id for m in same} & {m.id for m in chosen}


# ----------------------------------------------------------------------------- the list of equivalents

def test_every_exercise_is_mutation_tested():
    assert set(mt.EXERCISES) == set(EXERCISES)


def test_the_equivalent_list_is_consistent():
    found = {a: mt.all_mutants(_notebook(a), a) for a in mt.EXERCISES}
    assert mt.equivalent_problems(found) == []
    for (assignment, function, mutant_id), reason in mt.EQUIVALENT.items():
        assert mutant_id.startswith(function + ":") and len(reason.split()) >= 8, mutant_id


def test_a_stale_or_unexplained_equivalent_is_an_error():
    found = {"03_regions": mt.all_mutants(_notebook("03_regions"), "03_regions")}
    real = next(m for m in found["03_regions"] if m.function == "region_grow")
    stale = {("03_regions", "region_grow", "region_grow:constant:L99:0:`7` -> `8`"): "a reason of enough words here"}
    assert "no such mutant exists" in " ".join(mt.equivalent_problems(found, stale))
    unexplained = {("03_regions", "region_grow", real.id): " "}
    assert "needs its reason" in " ".join(mt.equivalent_problems(found, unexplained))


def test_the_score_leaves_equivalents_out_and_fails_below_the_threshold():
    survivor, killed = mt.Outcome("s", killed=False), mt.Outcome("k", killed=True)
    result = mt.ExerciseResult("x", total=12, graded=[(None, killed)] * 9 + [(None, survivor)], equivalent=[1, 2])
    assert result.score == 0.9 and result.ok
    result.graded.append((None, survivor))
    assert result.score < mt.THRESHOLD and not result.ok


# ----------------------------------------------------------------------------- grading through the plan

def _mutants(assignment, *fragments):
    return [m for m in mt.all_mutants(_notebook(assignment), assignment) if any(f in m.id for f in fragments)]


@pytest.mark.notebooks
def test_former_survivors_of_region_grow_are_killed():
    """The survivors of the first seeded run: a diagonal of the 8-neighbourhood mistyped (the visiting
    order is wrong, or a neighbour missing), ``<=`` for the strict ``<``, and left and right swapped."""
    offsets = [m for m in _mutants("03_regions", "region_grow:constant:L4:") if m.before in ("1", "0")]
    strict = _mutants("03_regions", "`abs(img[rr, cc] - total / count) < threshold` -> ")
    order = _mutants("03_regions", "`c + dc` -> `(c - dc)`")
    chosen = offsets[:6] + strict + order
    assert len(strict) == 1 and len(order) == 1 and len(offsets) >= 6
    result = mt.run_worker("03_regions", ROOT / "solutions" / "03_regions" / "03_regions.ipynb",
                           [("solution", {})] + [(m.id, {str(m.cell): m.source}) for m in chosen], adaptive=True)
    outcomes = result["outcomes"]
    assert not outcomes[0]["killed"], outcomes[0]["how"]
    survivors = [o["name"] for o in outcomes[1:] if not o["killed"]]
    assert not survivors


@pytest.mark.notebooks
@pytest.mark.parametrize("assignment", mt.EXERCISES)
def test_fixtures_graded_in_process_agree_with_their_intent(assignment):
    """The in-process grading of the mutation tool, on the fixtures: the correct answers keep full marks,
    each wrong answer loses the cells it must lose (fixtures that edit test cells are nbgrader's business)."""
    answers = solution_answers(_notebook(assignment))
    variants = {s.name: s.replace for s in CORRECT_ANSWERS[assignment]}
    wrong = {}
    for submission in WRONG_ANSWERS[assignment]:
        if submission.delete_cells or submission.edit_cells:
            continue
        code = dict(answers)
        for change in submission.changes:
            code[change.cell] = code[change.cell].replace(change.old, change.new)
        code.update(submission.replace)
        variants[submission.name] = {k: v for k, v in code.items() if v != answers[k]}
        wrong[submission.name] = submission
    outcomes = mt.grade_answers(assignment, ROOT / "solutions" / assignment / f"{assignment}.ipynb", variants)
    for submission in CORRECT_ANSWERS[assignment]:
        assert not outcomes[submission.name].killed, (submission.name, outcomes[submission.name].how)
    for name, submission in wrong.items():
        if submission.full_marks:
            assert not outcomes[name].killed, (name, outcomes[name].how)
        else:
            # a crash or a timeout of the grading child loses no named cell: ``how`` then says which
            assert set(submission.must_lose) <= set(outcomes[name].lost), (name, outcomes[name].lost,
                                                                           outcomes[name].how)


@pytest.mark.notebooks
def test_the_command_prints_a_table_and_passes_when_all_are_killed(capsys):
    code = mt.mutants_command(ROOT, ["05_fcn"], only="fcn8s_fuse")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "05_fcn" in out and "killed %" in out and "100.0%" in out


def test_the_module_without_worker_arguments_is_a_usage_error():
    """``python -m segedu.instructor.mutants`` is the worker's entry point; run bare, it says how to use it."""
    with pytest.raises(SystemExit, match="usage"):
        mt.main([])


def test_ci_grades_every_mutant_after_the_suite():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nmutants:"):].split("\n\n")[0]
    assert "-m segedu.instructor mutants" in recipe
    ci = (ROOT / ".ci" / "run").read_text()
    assert '\nmake mutants ARGS="--max-per-exercise 0"' in ci, "CI must grade every mutant, not a sample"
    assert ci.index("\nmake test") < ci.index("\nmake mutants")
