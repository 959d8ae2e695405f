"""What the test cells of the graded notebooks call.

A test cell looks like this::

    from segedu.grading import exercise
    ex = exercise("00_tasks_and_metrics")
    ex.check("pixel_accuracy", pixel_accuracy, np.array([[3, 1], [0, 4]]), case="2 classes")

``check`` runs the student's function on a copy of the inputs, watches that it does not call the
reference or the library it re-implements (aliases included, see :mod:`._tripwire`), runs the
reference on the same inputs, and raises an ``AssertionError`` whose message says what was called,
what was expected, what came back and where they differ. It returns ``None``, so a test cell never
ends in a bare number (nbgrader would read that as a partial score).

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

from . import _compare
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


def _plain(value):
    """A reference result with torch tensors turned into numpy arrays (detached, on the CPU)."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    return value


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
        expected = _plain(reference(*copy.deepcopy(args), **copy.deepcopy(kwargs)))
        options = dict(graded.options)
        if graded.extra is not None:
            bound = inspect.signature(reference).bind(*args, **kwargs)
            bound.apply_defaults()
            options.update(_resolve(graded.extra)(**bound.arguments))
        return expected, options

    @staticmethod
    def _reveal(hidden: bool, reveal: bool | None) -> bool:
        """Whether a message may show whole arrays: never for hidden cases."""
        return (not hidden) if reveal is None else bool(reveal and not hidden)

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
            raise AssertionError(f"{call} raised {type(error).__name__}: {error}") from error

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
        problems = self._compare(name, graded, got, expected, options, reveal=self._reveal(hidden, reveal))
        if problems:
            raise AssertionError("\n".join([f"{call} returned a wrong answer."] + problems))

    @staticmethod
    def _compare(name, graded, got, expected, options, reveal) -> list[str]:
        """Run the comparator(s); a function with several outputs names the one that differs."""
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
