"""Compare a student's result with the reference and explain the difference.

Each comparator returns ``None`` when the answer is right and otherwise a list of lines that say
what differs: the shape, the dtype, how many entries and where the first one is. Hidden tests
pass ``reveal=False`` so that whole arrays are not printed.
"""

from __future__ import annotations

import numbers

import numpy as np


# The numpy functions the comparators rely on, as they were at import. A student's cell shares this
# numpy module, so it could replace np.isclose and make any answer pass: check() refuses to compare
# when one of them is no longer the original.
_NUMPY_ORIGINALS = {name: getattr(np, name) for name in (
    "asarray", "isclose", "allclose", "array_equal", "isin", "unique", "argwhere", "issubdtype",
    "printoptions", "equal", "not_equal", "any", "all", "sum")}


def numpy_tampered() -> list[str]:
    """Names of numpy functions used by the comparators that have been replaced since import."""
    return sorted(name for name, original in _NUMPY_ORIGINALS.items() if getattr(np, name, None) is not original)


class NotNumeric(Exception):
    """The student returned something that cannot be compared as numbers."""


def to_numpy(value, what: str) -> np.ndarray:
    """Turn a student's return value into a numeric numpy array, refusing lookalikes.

    Objects that merely claim equality (a custom ``__eq__`` that is always True) become
    ``dtype=object`` arrays, and those are refused here.
    """
    if value is None:
        raise NotNumeric(f"{what} returned None. Did you forget the `return` statement?")
    module = type(value).__module__
    if module.startswith("torch"):
        value = value.detach().cpu().numpy()
    if isinstance(value, (bool, np.bool_, numbers.Number, np.ndarray, list, tuple)):
        arr = np.asarray(value)
    else:
        raise NotNumeric(
            f"{what} returned a {type(value).__name__}; expected a number or a numpy array."
        )
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise NotNumeric(f"{what} returned values of dtype {arr.dtype}; expected numbers.")
    return arr


def _fmt(x) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    return repr(x.item() if hasattr(x, "item") else x)


def _first_difference(bad: np.ndarray, got: np.ndarray, expected: np.ndarray) -> list[str]:
    count = int(bad.sum())
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return [
        f"{count} of {bad.size} entries differ; the first is at index {index}: "
        f"expected {_fmt(expected[index])}, got {_fmt(got[index])}."
    ]


def _shape_problem(got: np.ndarray, expected: np.ndarray) -> list[str] | None:
    if got.shape == expected.shape:
        return None
    lines = [f"The shape is wrong: expected {expected.shape}, got {got.shape}."]
    if got.shape == expected.shape[::-1] and got.ndim == 2:
        lines.append("It is the transpose of the expected shape: are rows and columns swapped?")
    return lines


def _show(got, expected, reveal: bool) -> list[str]:
    if not reveal:
        return []
    with np.printoptions(precision=4, suppress=True, threshold=60, edgeitems=3):
        return [f"expected:\n{np.asarray(expected)}", f"got:\n{np.asarray(got)}"]


def exact(got, expected, *, what: str, reveal: bool, **_) -> list[str] | None:
    """Integer or boolean results that must match entry for entry."""
    got = to_numpy(got, what)
    expected = np.asarray(expected)
    problem = _shape_problem(got, expected)
    if problem:
        return problem + _show(got, expected, reveal)
    bad = got != expected
    if not bad.any():
        return None
    hint = []
    if got.ndim == 2 and got.shape[0] == got.shape[1] and np.array_equal(got, expected.T):
        hint = ["It is the transpose of the expected matrix: are rows and columns swapped?"]
    return _first_difference(bad, got, expected) + hint + _show(got, expected, reveal)


def close(got, expected, *, what: str, reveal: bool, rtol: float = 1e-5, atol: float = 1e-6, **_):
    """Floating-point results, equal up to float32-safe tolerances."""
    got = to_numpy(got, what).astype(np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if expected.ndim == 0 and got.ndim != 0 and got.size == 1:
        return [f"Expected a single number, got an array of shape {got.shape}. Return a float, e.g. float(value)."]
    problem = _shape_problem(got, expected)
    if problem:
        return problem + _show(got, expected, reveal)
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=False)
    if not bad.any():
        return None
    if expected.ndim == 0:
        lines = [f"expected {_fmt(expected[()])}, got {_fmt(got[()])}."]
        if np.isnan(got[()]):
            lines.append("You returned NaN: is something divided by zero (an absent class?)")
        return lines
    return _first_difference(bad, got, expected) + _show(got, expected, reveal)


def binary_mask(got, expected, *, what: str, reveal: bool, tie_mask=None, **_):
    """Boolean masks; entries in ``tie_mask`` (pixels within rounding of the threshold) may differ."""
    arr = to_numpy(got, what)
    if arr.dtype != bool:
        values = np.unique(arr)
        if not np.isin(values, [0, 1]).all():
            return [f"A mask holds only True/False (or 0/1), but {what} returned values such as {values[:5]}."]
        arr = arr.astype(bool)
    expected = np.asarray(expected, dtype=bool)
    problem = _shape_problem(arr, expected)
    if problem:
        return problem
    bad = arr != expected
    if tie_mask is not None:
        bad &= ~np.asarray(tie_mask, dtype=bool)
    if not bad.any():
        return None
    lines = _first_difference(bad, arr, expected)
    extra = int((arr & ~expected & bad).sum())
    missing = int((~arr & expected & bad).sum())
    lines.append(f"{extra} pixel(s) are foreground but should not be; {missing} should be foreground but are not.")
    return lines
