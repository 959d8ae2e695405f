"""What the test cells of the graded notebooks call.

A test cell looks like this::

    from segedu.grading import exercise
    ex = exercise("00_tasks_and_metrics")
    ex.check("pixel_accuracy", pixel_accuracy, np.array([[3, 1], [0, 4]]), case="2 classes")

``check`` runs the student's function on a copy of the inputs, watches that it does not call the
reference or the library it re-implements (aliases included, see :mod:`._tripwire`), runs the
reference on the same inputs, and raises an ``AssertionError`` whose message says what was called,
what was expected, what came back and where they differ. When the answer is one of the function's
known mistakes (:mod:`.hints`), the message names the mistake on a line of its own. It returns
``None``, so a test cell never ends in a bare number (nbgrader would read that as a partial score).

Hidden tests draw their inputs from :meth:`Exercise.rng`, seeded by the grading seed. Instructors
set their own seed each term with the environment variable ``SEGEDU_GRADING_SEED``.

This is the student's side: immediate feedback while they work, in Colab too. It is not what
decides a grade. In a grading run the student's kernel could patch anything ``check`` relies on, so
there the test cells are planned and judged outside the kernel (:mod:`segedu.grading.plan`,
:mod:`segedu.instructor.verdict`), and the kernel only runs the student's functions.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import zlib

import numpy as np

from . import _compare, hints
from ._tripwire import Tripwire
from .exercises import EXERCISES, ExerciseSpec, graded_function

__all__ = ["exercise", "grading_seed", "Exercise", "EXERCISES", "DEFAULT_GRADING_SEED"]

DEFAULT_GRADING_SEED = 2026
_SEED_VARIABLE = "SEGEDU_GRADING_SEED"


def grading_seed() -> int:
    """The seed of the hidden inputs: ``$SEGEDU_GRADING_SEED`` if set, else the public default."""
    raw = os.environ.get(_SEED_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_GRADING_SEED
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"{_SEED_VARIABLE} must be an integer, but it is {raw!r}.") from None
    if seed < 0:  # numpy's seed sequences take only non-negative integers
        raise ValueError(f"{_SEED_VARIABLE} must be a non-negative integer, but it is {raw!r}.")
    return seed


def exercise(assignment: str) -> "Exercise":
    """The checker of one graded notebook, e.g. ``exercise("01_thresholding")``."""
    if assignment not in EXERCISES:
        known = ", ".join(sorted(EXERCISES))
        raise KeyError(f"No graded exercise is called {assignment!r}. Known exercises: {known}.")
    return Exercise(EXERCISES[assignment])


def _describe_arg(value) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return np.array2string(value, separator=", ").replace("\n", "")
        return f"<{value.dtype} array of shape {value.shape}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _resolve(dotted: str):
    module_name, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class Exercise:
    """Checks the answers of one assignment against its references."""

    def __init__(self, spec: ExerciseSpec):
        self.spec = spec

    @property
    def assignment(self) -> str:
        return self.spec.assignment

    def _seed(self) -> int:
        return grading_seed()

    def rng(self, case: str) -> np.random.Generator:
        """A generator for one hidden case: the same for everyone in a term, new each term."""
        key = [self._seed(), zlib.crc32(self.assignment.encode()), zlib.crc32(case.encode())]
        return np.random.default_rng(key)

    def graded(self, name: str):
        """The registry entry of ``(this assignment, name)``: names are only unique per assignment."""
        return graded_function(self.assignment, name, {self.assignment: self.spec})

    def reference(self, name: str):
        return _resolve(self.graded(name).reference)

    def expected(self, name: str, args: tuple, kwargs: dict):
        """(the reference's answer on copies of the inputs, the comparator's options for them)."""
        graded = self.graded(name)
        reference = _resolve(graded.reference)
        expected = _compare.plain(reference(*copy.deepcopy(args), **copy.deepcopy(kwargs)))
        options = dict(graded.options)
        if graded.extra is not None:
            bound = inspect.signature(reference).bind(*args, **kwargs)
            bound.apply_defaults()
            options.update(_resolve(graded.extra)(**bound.arguments))
        return expected, options

    @staticmethod
    def _reveal(hidden: bool, reveal: bool | None) -> bool:
        """Whether a message may show arrays: never for hidden cases."""
        return (not hidden) if reveal is None else bool(reveal and not hidden)

    @staticmethod
    def _secret(hidden: bool, reveal: bool | None) -> bool:
        """A visible case whose expected value is the answer itself (``reveal=False``): the message
        then shows no expected value at all. Hidden cases keep their first difference."""
        return reveal is not None and not reveal and not hidden

    def mistaken_answers(self, name: str, args: tuple, kwargs: dict, expected, options) -> tuple:
        """``(name, hint, outcome)`` of each known mistake of ``name`` whose answer on these inputs
        differs from the expected one (a mistake that gives the right answer here can name nothing)."""
        graded = self.graded(name)
        found = []
        for mistake in hints.mistakes(self.assignment, name):
            outcome = hints.outcome(mistake, args, kwargs)
            if isinstance(outcome, hints.Raised) or self._compare(name, graded, outcome, expected, options,
                                                                  reveal=False):
                found.append((mistake.name, mistake.hint, outcome))
        return tuple(found)

    def _call_text(self, name, args, kwargs, case, hidden) -> str:
        if hidden:
            return f"{name}(...) in the hidden case '{case}'"
        parts = [_describe_arg(a) for a in args] + [f"{k}={_describe_arg(v)}" for k, v in kwargs.items()]
        return f"{name}({', '.join(parts)}) [{case}]"

    def check(self, name: str, student_function, *args, case: str, hidden: bool = False,
              reveal: bool | None = None, **kwargs) -> None:
        """Assert that ``student_function(*args, **kwargs)`` equals the reference's answer.

        ``reveal=False`` keeps the expected value out of the message of a visible test, for
        answers worked out by hand, where the expected value is the answer itself.
        """
        graded = self.graded(name)
        call = self._call_text(name, args, kwargs, case, hidden)
        if not callable(student_function):
            raise AssertionError(f"{name} should be a function, but it is a {type(student_function).__name__}.")

        student_args = copy.deepcopy(args)
        student_kwargs = copy.deepcopy(kwargs)
        try:
            with Tripwire(self.spec.forbidden) as tripwire:
                got = student_function(*student_args, **student_kwargs)
        except NotImplementedError:
            raise AssertionError(
                f"{name} is not implemented yet: it raised NotImplementedError. "
                f"Replace the `raise NotImplementedError()` line with your code."
            ) from None
        except Exception as error:
            lines = [f"{call} raised {type(error).__name__}: {error}"]
            if tripwire.hit is None and not tripwire.tampered:
                lines += self._hints_of_error(name, args, kwargs, error)
            raise AssertionError("\n".join(lines)) from error

        if tripwire.tampered:
            raise AssertionError(
                f"{name} switched off the profiler that grading relies on (sys.setprofile), "
                f"so it cannot be graded. Remove that code."
            )
        if tripwire.hit is not None:
            raise AssertionError(
                f"{name} called {tripwire.hit}, which this exercise asks you to write yourself. "
                f"{self.spec.allowed} Answers that call the reference earn no points."
            )

        tampered = _compare.numpy_tampered()
        if tampered:
            raise AssertionError(
                f"numpy.{', numpy.'.join(tampered)} was replaced, so {name} cannot be graded: the checks were "
                f"tampered with. Remove the code that assigns to numpy functions."
            )

        expected, options = self.expected(name, args, kwargs)
        problems = self._compare(name, graded, got, expected, options, reveal=self._reveal(hidden, reveal),
                                 secret=self._secret(hidden, reveal))
        if problems:
            try:
                mistaken = self.mistaken_answers(name, args, kwargs, expected, options)
                problems += returned_hints(name, graded, got, mistaken, options)
            except Exception:   # a hint is a bonus: never let it hide the message itself
                pass
            raise AssertionError("\n".join([f"{call} returned a wrong answer."] + problems))

    def _hints_of_error(self, name, args, kwargs, error) -> list[str]:
        try:
            expected, options = self.expected(name, args, kwargs)
            mistaken = self.mistaken_answers(name, args, kwargs, expected, options)
        except Exception:   # inputs the reference refuses: no hint, the error speaks for itself
            return []
        return raised_hints(mistaken, type(error).__name__, str(error))

    @staticmethod
    def _compare(name, graded, got, expected, options, reveal, secret: bool = False) -> list[str]:
        """Run the comparator(s); a function with several outputs names the one that differs.

        ``secret`` (a visible case worked out by hand) keeps every expected value out of the lines.
        """
        if secret:
            options = {**options, "secret": True}
        if graded.outputs is None:
            try:
                return getattr(_compare, graded.compare)(got, expected, what=name, reveal=reveal, **options) or []
            except _compare.NotNumeric as error:
                return [str(error)]
        count = len(graded.outputs)
        listed = ", ".join(graded.outputs)
        if got is None:
            return [f"{name} returned None. Did you forget the `return` statement?"]
        if not isinstance(got, (tuple, list)) or len(got) != count:
            return [f"{name} should return {count} values ({listed}) as a tuple, but returned {_describe_arg(got)}."]
        comparators = graded.compare if isinstance(graded.compare, tuple) else (graded.compare,) * count
        for output, comparator, got_part, expected_part in zip(graded.outputs, comparators, got, expected):
            try:
                problems = getattr(_compare, comparator)(
                    got_part, expected_part, what=f"{name}'s {output}", reveal=reveal, **options)
            except _compare.NotNumeric as error:
                problems = [str(error)]
            if problems:
                return [f"The output {output} differs."] + problems
        return []


def returned_hints(name, graded, got, mistaken, options) -> list[str]:
    """The hints of the known mistakes whose answer ``got`` equals (by the function's comparator).

    ``mistaken`` holds ``(name, hint, outcome)`` triples (:meth:`Exercise.mistaken_answers`). A hint
    is a fixed sentence, so it may follow the message of a hidden case too.
    """
    found = []
    for _, hint, outcome in mistaken:
        if isinstance(outcome, hints.Raised) or hint in found:
            continue
        if _same_float(got, outcome) or not Exercise._compare(name, graded, got, outcome, options, reveal=False):
            found.append(hint)
    return found


def _same_float(got, outcome) -> bool:
    """Two floats that are the very same number, NaN included: a comparator may refuse a float on its
    type (``integer``) or never call NaN equal (``close``), yet the answer is exactly the mistake's."""
    kinds = (float, np.floating)
    if not (isinstance(got, kinds) and isinstance(outcome, kinds)):
        return False
    a, b = float(got), float(outcome)
    return a == b or (a != a and b != b)


def raised_hints(mistaken, error_type: str, message: str, limit: int = 500) -> list[str]:
    """The hints of the known mistakes that raise the very error the answer raised."""
    found = []
    for _, hint, outcome in mistaken:
        if (isinstance(outcome, hints.Raised) and outcome.type == error_type
                and outcome.message[:limit] == str(message)[:limit] and hint not in found):
            found.append(hint)
    return found
