"""Hints that name a known mistake, messages that keep answers worked out by hand secret, and the
``integer`` comparator.

The known mistakes are the fixtures of ``wrong_answers.py``: each realistic one must have a hint in
:mod:`segedu.grading.hints` (or a documented exclusion), and the hint must reach the student, both
from ``ex.check`` (in-process, cheap) and from a real ``nbgrader autograde`` run of the course's
configuration, where the verdict is computed outside the kernel (one run per assignment).
"""

from __future__ import annotations

import ast
import copy
import functools
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from wrong_answers import KNOWN_MISTAKES, WRONG_ANSWERS

from segedu.grading import Exercise, _compare, exercise, hints
from segedu.grading.exercises import ExerciseSpec, GradedFunction, stride2_example
from segedu.grading.kernel import segedu_kernel_runner as wire
from segedu.grading.plan import build_plan, judge, judge_case
from segedu.instructor.notebooks import solution_answers

ROOT = Path(__file__).resolve().parents[1]
PLAN_SEED = 31337007   # a private-looking seed: hints must work for any term's hidden inputs
NOT_MISTAKES = ("fits_visible_tests_only", "correct_with_warnings", "deleted_test_cell", "edited_test_cell")


def realistic(submission) -> bool:
    """A mistake a student makes by accident: not a delegation, an attack or an edit of the tests."""
    return not (submission.full_marks or submission.name.startswith("delegates_") or submission.name in NOT_MISTAKES)


REALISTIC = [(assignment, function, s) for (assignment, function), subs in sorted(KNOWN_MISTAKES.items())
             for s in subs if realistic(s)]


def _hint(assignment, function, name) -> str | None:
    return next((m.hint for m in hints.mistakes(assignment, function) if m.name == name), None)


HINTED = [(a, f, s) for a, f, s in REALISTIC if _hint(a, f, s.name) is not None]
ALL_HINTS = {m.hint for mistakes in hints.MISTAKES.values() for m in mistakes}


# --------------------------------------------------------------------------------------------------
# (a) the registry covers every realistic known mistake
# --------------------------------------------------------------------------------------------------


def test_every_realistic_known_mistake_has_a_hint_or_a_documented_exclusion():
    missing = [f"{a}:{f}:{s.name}" for a, f, s in REALISTIC
               if _hint(a, f, s.name) is None and not hints.EXCLUDED.get((a, s.name), "").strip()]
    assert not missing, f"known mistakes without a hint in segedu/grading/hints.py: {missing}"
    assert len(hints.EXCLUDED) <= 3, "keep the exclusions few: a mistake that can be computed gets a hint"


def test_every_hint_belongs_to_a_filed_mistake_and_is_a_sentence():
    filed = {(a, f, s.name) for a, f, s in REALISTIC}
    for (assignment, function), mistakes in hints.MISTAKES.items():
        assert mistakes, (assignment, function)
        for mistake in mistakes:
            assert (assignment, function, mistake.name) in filed, \
                f"{mistake.name} is not a realistic known mistake of {assignment}:{function} in wrong_answers.py"
            assert mistake.hint.startswith("Hint: ") and mistake.hint.endswith((".", "?")), mistake.hint
            assert "\n" not in mistake.hint and len(mistake.hint) < 200
            assert callable(mistake.answer)
        assert len({m.hint for m in mistakes}) == len(mistakes), f"{assignment}:{function} repeats a hint"
    for (assignment, name), reason in hints.EXCLUDED.items():
        assert any(s.name == name for s in WRONG_ANSWERS[assignment]) and reason.strip()


# --------------------------------------------------------------------------------------------------
# (b) each hint function reproduces its fixture: in-process, ex.check and the verdict
# --------------------------------------------------------------------------------------------------


def _source(assignment):
    return nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)


@functools.cache
def _plan(assignment):
    return build_plan(_source(assignment), assignment, PLAN_SEED)


def _setup_imports(notebook) -> str:
    lines = []
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and not meta.get("solution") and not meta.get("grade"):
            lines += [ast.unparse(node) for node in ast.parse(cell.source).body
                      if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


def fixture_function(assignment, submission):
    """The submission's graded function, built from the solution's code with its mutations."""
    notebook = _source(assignment)
    answers = solution_answers(notebook)
    for change in submission.changes:
        assert answers[change.cell].count(change.old) == 1, submission.name
        answers[change.cell] = answers[change.cell].replace(change.old, change.new)
    namespace = {"__name__": f"fixture_{submission.name}"}
    exec(compile(_setup_imports(notebook), "<imports>", "exec"), namespace)
    for code in answers.values():
        exec(compile(code, f"<{submission.name}>", "exec"), namespace)
    return namespace[submission.function]


def _student_message(ex, function, case) -> str | None:
    """What ``ex.check`` says about ``function`` on a planned case, as the test cell calls it."""
    try:
        with np.errstate(divide="ignore", invalid="ignore"):   # a fixture's 0/0 is the mistake itself
            ex.check(case.graded, function, *copy.deepcopy(case.args), case=case.case, hidden=case.hidden,
                     reveal=False if case.secret else None, **copy.deepcopy(case.kwargs))
    except AssertionError as error:
        return str(error)
    return None


def _kernel_result(function, case):
    """What the kernel would save: the value, or an error tag (the verdict's input), via the wire format."""
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = function(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
    except Exception as error:
        return {"t": "error", "type": type(error).__name__, "message": str(error)[:500]}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return _plain(value)


def _plain(value):
    return value.detach().cpu().numpy() if type(value).__module__.startswith("torch") else value


@pytest.mark.parametrize("assignment,function,submission", HINTED,
                         ids=[f"{a}:{s.name}" for a, _, s in HINTED])
def test_the_hint_names_its_fixture_in_every_cell_it_loses(assignment, function, submission):
    """In each cell the fixture must lose, the message of its first failing case (the one nbgrader
    shows) carries the hint, from ``ex.check`` and from the verdict alike; a hidden case's message
    also names no input."""
    hint = _hint(assignment, function, submission.name)
    student = fixture_function(assignment, submission)
    ex = exercise(assignment)
    plan = _plan(assignment)
    for grade_id in submission.must_lose:
        cases = [c for c in plan.cells[grade_id] if c.graded == function]
        checked = None
        for case in cases:
            checked = _student_message(ex, student, case)
            if checked is not None:
                break
        assert checked is not None, f"{submission.name} passes {grade_id}"
        assert hint in checked.split("\n"), f"{grade_id}, case '{case.case}':\n{checked}"
        verdict = judge(assignment, cases, [_kernel_result(student, c) for c in cases])
        assert verdict is not None and hint in verdict.split("\n"), f"{grade_id}:\n{verdict}"
        if case.hidden:
            assert "(...) in the hidden case" in verdict and "[[" not in verdict and "expected:" not in verdict


def test_hint_functions_run_on_every_planned_case():
    """A hint function that crashes would name nothing: only a mistake that itself crashes may raise."""
    crashes = {
        "cm_ignore_not_excluded": "ValueError",       # counts 255 as a class and cannot reshape the counts
        # an ASPP whose branches do not fit: the channel check given in exercise 08's dilated_conv2d, or
        # torch.cat refusing a 1x1 map beside h x w ones; the hint is matched by that very error
        "aspp_without_pooling": "ValueError",
        "aspp_pooled_over_channels": "ValueError",
        "aspp_pooling_not_upsampled": "RuntimeError",
        # branches padded by 1 or not at all: torch.cat refuses a shrunken one, or a rate past the map
        # leaves no output
        "aspp_atrous_padding_one": "RuntimeError",
        "aspp_atrous_unpadded": "RuntimeError",
        # batch statistics of a batch of one: the pooled 1x1 map has one value per channel
        "aspp_batch_norm_training_mode": "ValueError",
        # a point on the band past the last row or column reads row H (column W) of the map
        "bilinear_no_border_clamp": "IndexError",
    }
    for assignment in sorted({a for a, _, _ in HINTED}):
        for cases in _plan(assignment).cells.values():
            for case in cases:
                for mistake in hints.mistakes(assignment, case.graded):
                    outcome = hints.outcome(mistake, case.args, case.kwargs)
                    if isinstance(outcome, hints.Raised):
                        assert crashes.get(mistake.name) == outcome.type, (mistake.name, outcome)


def test_no_hint_for_a_wrong_answer_that_is_no_known_mistake():
    message = _failure(exercise("02_edges"), "gradient_magnitude", lambda gx, gy: np.zeros(np.shape(gx)),
                       np.array([[3.0, 0.0], [-1.0, 2.0]]), np.array([[4.0, 0.0], [1.0, 0.5]]))
    assert "Hint:" not in message and "wrong answer" in message


def test_a_plan_pickled_before_hints_is_still_judged():
    """``Case`` grew fields with defaults; a case made without them judges as before."""
    from segedu.grading.plan import Case

    old = Case(function="gradient_magnitude", graded="gradient_magnitude",
               args=(np.ones((2, 2)), np.ones((2, 2))), kwargs={}, case="c", hidden=False, reveal=True,
               call="gradient_magnitude(...) [c]", expected=np.sqrt(2) * np.ones((2, 2)), options={})
    assert old.mistakes == () and old.secret is False
    assert "wrong answer" in judge_case("02_edges", old, 2 * np.ones((2, 2)))[0]
    assert judge_case("02_edges", old, np.sqrt(2) * np.ones((2, 2))) == []


# --------------------------------------------------------------------------------------------------
# Messages about large arrays stay small
# --------------------------------------------------------------------------------------------------


def _failure(ex, name, function, *args, case="the case", hidden=False, **kwargs) -> str:
    with pytest.raises(AssertionError) as caught:
        ex.check(name, function, *args, case=case, hidden=hidden, **kwargs)
    return str(caught.value)


def test_a_large_array_is_shown_as_a_window_around_the_first_difference():
    gx = np.arange(400, dtype=float).reshape(20, 20)
    gx[0, 0] = 987654.0   # far from the difference: must not be printed
    gy = np.zeros((20, 20))

    def off_by_one_at(gx, gy):
        out = np.abs(np.asarray(gx))
        out[12, 15] += 1
        return out

    message = _failure(exercise("02_edges"), "gradient_magnitude", off_by_one_at, gx, gy)
    assert "1 of 400 entries differ; the first is at index (12, 15): expected 255, got 256." in message
    assert "expected[10:15, 13:18] (of shape (20, 20)):" in message and "got[10:15, 13:18]" in message
    assert "987654" not in message and "..." not in message
    assert len(message.split("\n")) < 20

    # a wrong shape: both shapes and a corner, never the whole arrays
    lines = _compare.close(np.zeros((20, 21)), gx, what="f", reveal=True)
    assert lines[0] == "The shape is wrong: expected (20, 20), got (20, 21)."
    assert "expected[0:5, 0:5] (of shape (20, 20)):" in "\n".join(lines)
    assert len("\n".join(lines).split("\n")) < 16

    # small arrays are still printed whole
    lines = _compare.close(np.zeros((6, 6)), np.ones((6, 6)), what="f", reveal=True)
    assert lines[1] == "expected:\n" + str(np.ones((6, 6)))


# --------------------------------------------------------------------------------------------------
# reveal=False on a visible case: the answer cannot be read out of the message
# --------------------------------------------------------------------------------------------------


def _digits_outside_the_call(message: str) -> list[str]:
    """Digits of the message other than the call's name and the shape the student returned."""
    body = message.replace("stride2_example() [the stride-2 example]", "")
    body = re.sub(r"got \(\d+, \d+\), which is not the shape of the answer", "", body)
    return re.findall(r"\d", body)


STRIDE2 = np.asarray(stride2_example())   # computed here: inside a check, calling segedu.conv is delegation
FORGOT = hints.stride2_forgot_an_overlap()


@pytest.mark.parametrize("wrong", [
    lambda: STRIDE2 + np.eye(5),                                    # several entries wrong
    lambda: STRIDE2 + 7 * (np.arange(25).reshape(5, 5) == 24),      # one entry wrong
    lambda: STRIDE2[:4, :4].copy(),                                 # wrong shape
    lambda: np.round(STRIDE2).astype(int) + 1,                      # integers
    lambda: FORGOT.copy(),                                          # the known mistake: its hint, no values
], ids=["several", "one", "shape", "ints", "known mistake"])
def test_a_by_hand_answer_is_never_revealed(wrong):
    ex = exercise("04_transpose_convolution")
    message = _failure(ex, "stride2_example", wrong, case="the stride-2 example", reveal=False)
    assert "The answer is wrong" in message
    assert _digits_outside_the_call(message) == [], message   # no value, count, index or shape of the answer
    assert ("Hint:" in message) == np.array_equal(wrong(), FORGOT)   # the hint names no entry either
    # the same through the verdict of a grading run
    case = next(c for c in _plan("04_transpose_convolution").cells["test_stride2_example"])
    assert case.secret and not case.hidden
    verdict = judge("04_transpose_convolution", [case], [np.asarray(wrong())])
    assert verdict == message
    # and the right answer still passes both ways
    ex.check("stride2_example", lambda: STRIDE2.copy(), case="the stride-2 example", reveal=False)
    assert judge("04_transpose_convolution", [case], [STRIDE2.copy()]) is None


def test_the_shape_of_a_by_hand_answer_may_be_called_wrong_without_giving_the_right_one():
    message = _failure(exercise("04_transpose_convolution"), "stride2_example", lambda: np.zeros((4, 6)),
                       case="the stride-2 example", reveal=False)
    assert "The shape is wrong: got (4, 6)" in message and "(5, 5)" not in message


def test_hidden_cases_keep_their_first_difference():
    """reveal=False hides everything only on a visible case; hidden cases still say where they differ."""
    plan = _plan("04_transpose_convolution")
    hidden = next(c for c in plan.cells["test_conv_transpose_stride"] if c.hidden)
    assert not hidden.secret
    wrong = np.asarray(hidden.expected) + 1.0
    message = "\n".join(judge_case("04_transpose_convolution", hidden, wrong))
    assert "entries differ; the first is at index" in message and "expected:" not in message
    same = _failure(exercise("04_transpose_convolution"), "conv_transpose2d", lambda *a, **k: wrong,
                    *hidden.args, case=hidden.case, hidden=True, reveal=False, **hidden.kwargs)
    assert "entries differ; the first is at index" in same


# --------------------------------------------------------------------------------------------------
# The integer comparator
# --------------------------------------------------------------------------------------------------


def test_integer_accepts_python_and_numpy_ints_only():
    for got in (4, np.int64(4), np.int32(4), np.uint8(4)):
        assert _compare.integer(got, 4, what="f", reveal=True) is None
    for got, kind in ((4.0, "a float (4.0)"), (np.float32(4), "a float (4.0)"), (True, "a bool"),
                      (np.array(4), "an array of shape ()"), (np.array([4]), "an array of shape (1,)"),
                      ("4", "a str")):
        lines = _compare.integer(got, 4, what="conv_output_size", reveal=True)
        assert lines == [f"conv_output_size returned {kind}, but it should return an int: return an int, "
                         f"e.g. int(...) or use // for the division."], got
    assert _compare.integer(True, 1, what="f", reveal=True) is not None   # a bool is not a number here
    assert _compare.integer(5, 4, what="f", reveal=True) == ["expected 4, got 5."]
    assert _compare.integer(5, 4, what="f", reveal=False, secret=True) == [_compare.SECRET_WRONG]
    assert "`return`" in _compare.integer(None, 4, what="f", reveal=True)[0]


def test_integer_through_check_and_the_wire():
    spec = ExerciseSpec("04_sizes", (("conv_output_size", GradedFunction("segedu.conv:conv_output_size",
                                                                         compare="integer")),),
                        ("segedu.conv",), "Use numpy only.")
    ex = Exercise(spec)
    ex.check("conv_output_size", lambda n, k, stride=1, padding=0, dilation=1: (n + 2 * padding - k) // stride + 1,
             7, 3, stride=2, padding=1, case="ints")
    message = _failure(ex, "conv_output_size",
                       lambda n, k, stride=1, padding=0, dilation=1: (n + 2 * padding - k) / stride + 1,
                       7, 3, stride=2, padding=1)
    assert "returned a float (4.0)" in message and "use //" in message
    # a grading kernel saves numpy ints as ints and floats as floats: the comparator sees the same
    folder = "/nonexistent"   # scalars need no files
    assert wire.decode(wire.encode(np.int64(4), folder, "r", result=True), folder, result=True) == 4
    back = wire.decode(wire.encode(np.float64(4.0), folder, "r", result=True), folder, result=True)
    assert _compare.integer(back, 4, what="f", reveal=True) is not None


# (c) through real nbgrader: tests/test_nbgrader_roundtrip.py asserts every hint in the feedback of the
# autograde run that grades all fixtures (one run per assignment for every grading test), with the
# helpers below.

def _cell_messages(course, student, assignment) -> dict[str, str]:
    notebook = nbformat.read(course.path / "autograded" / student / assignment / f"{assignment}.ipynb",
                             as_version=4)
    messages = {}
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                messages[grade_id] = output.get("evalue", "")
    return messages


def _assert_names_no_hidden_input(message: str, cases) -> None:
    """A hidden case's message: the call without arguments, comparator lines, and fixed hint lines."""
    lines = message.split("\n")
    assert re.fullmatch(r"\w+\(\.\.\.\) in the hidden case '[^']*' returned a wrong answer\.", lines[0]), lines[0]
    for line in lines[1:]:
        assert line in ALL_HINTS or not line.startswith("Hint"), line
        assert "[[" not in line and "expected:" not in line and "array of shape" not in line, line
    for case in cases:
        if case.hidden:
            for value in list(case.args) + list(case.kwargs.values()):
                if isinstance(value, np.ndarray) and value.size > 1:
                    text = np.array2string(value.ravel()[:3], separator=", ")[1:-1]
                    assert text not in message, (case.case, text)


# --------------------------------------------------------------------------------------------------
# Hints matched by the error an answer raises (exercise 08's ASPP)
# --------------------------------------------------------------------------------------------------


def test_an_error_names_a_mistake_only_when_it_is_that_mistakes_error():
    """An ASPP without its pooling branch trips the channel check given in exercise 08's dilated_conv2d;
    the same answer on a dilated_conv2d without that check raises torch's own error, and then no hint
    may be guessed from it."""
    import torch

    plan = _plan("08_deeplab")
    case = next(c for c in plan.cells["test_aspp"] if not c.hidden)
    hint = _hint("08_deeplab", "aspp", "aspp_without_pooling")

    def unchecked_conv(x, weight, bias=None, stride=1, padding=0, dilation=1):
        """A stand-in with no channel check (its centre tap only): what matters here is where it fails."""
        return torch.einsum("nchw,oc->nohw", x, weight[:, :, weight.shape[2] // 2, weight.shape[3] // 2])

    def without_pooling(conv):
        def aspp(x, params, rates):
            def layer(inputs, p, rate=1):
                k = p["weight"].shape[-1]
                y = conv(inputs, p["weight"], padding=rate * (k // 2), dilation=rate)
                bn = p["bn"]
                return torch.relu(torch.nn.functional.batch_norm(
                    y, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"], eps=1e-5))

            branches = [layer(x, params["conv1x1"])] + [layer(x, p, r) for r, p in zip(rates, params["atrous"])]
            return layer(torch.cat(branches, dim=1), params["project"])
        return aspp

    fixture = next(s for a, _, s in REALISTIC if a == "08_deeplab" and s.name == "aspp_without_pooling")
    checked = fixture_function("08_deeplab", fixture)
    assert hint in _student_message(exercise("08_deeplab"), checked, case).split("\n")
    # the projection of an unchecked 1x1 "convolution" fails inside torch.einsum: a message of its own
    message = _student_message(exercise("08_deeplab"), without_pooling(unchecked_conv), case)
    assert "raised RuntimeError" in message and "Hint:" not in message
    verdict = judge("08_deeplab", [case], [_kernel_result(without_pooling(unchecked_conv), case)])
    assert verdict is not None and "Hint:" not in verdict

