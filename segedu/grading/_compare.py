"""Compare a student's result with the reference and explain the difference.

Each comparator returns ``None`` when the answer is right and otherwise a list of lines that say
what differs: the shape, the dtype, how many entries and where the first one is. Hidden tests
pass ``reveal=False`` so that no arrays are printed. Visible tests print small arrays whole and
larger ones (more than :data:`WHOLE_ENTRIES` entries) only as a window around the first difference.

``secret=True`` is for a visible test whose expected value is the answer itself (worked out by
hand, ``reveal=False`` on a visible check): the message then says only that the answer is wrong,
or that its shape is, and shows no expected value, no count of wrong entries and no position, so
the answer cannot be read out one run at a time.

Comparators: :func:`exact` (integers and booleans entry for entry), :func:`close` (floats, with
float32-safe tolerances), :func:`binary_mask` (masks, with ties) and :func:`integer` (a single whole
number that must be returned as an ``int``, e.g. an output size).
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


def plain(value):
    """A reference result with torch tensors turned into numpy arrays (detached, on the CPU)."""
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    return value


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


WHOLE_ENTRIES = 36   # arrays up to this size are printed whole; larger ones as a window
WINDOW = 2           # rows and columns either side of the first difference


def _window(bad: np.ndarray | None, shape: tuple) -> tuple:
    """The index (a tuple of ints and slices) of a small window: around the first difference,
    or the top-left corner when there is none; only the last two axes are sliced."""
    if bad is not None and bad.any():
        centre = [int(i) for i in np.argwhere(bad)[0]]
    else:
        centre = [0] * len(shape)
    index = list(centre[:-2])
    for axis in range(max(len(shape) - 2, 0), len(shape)):
        start = max(centre[axis] - WINDOW, 0)
        index.append(slice(start, min(start + 2 * WINDOW + 1, shape[axis])))
    return tuple(index)


def _index_text(index: tuple) -> str:
    parts = [f"{i.start}:{i.stop}" if isinstance(i, slice) else str(i) for i in index]
    return "[" + ", ".join(parts) + "]"


def _show(got, expected, reveal: bool, bad: np.ndarray | None = None) -> list[str]:
    """Both arrays, whole when small; for larger ones a window around the first difference."""
    if not reveal:
        return []
    got, expected = np.asarray(got), np.asarray(expected)
    with np.printoptions(precision=4, suppress=True, threshold=WHOLE_ENTRIES, edgeitems=3):
        if max(got.size, expected.size) <= WHOLE_ENTRIES:
            return [f"expected:\n{expected}", f"got:\n{got}"]
        if got.ndim == 0 or expected.ndim == 0:
            return []
        lines = []
        for label, value, mask in (("expected", expected, bad), ("got", got, bad)):
            if value.ndim == 0:
                continue
            use = mask if mask is not None and mask.shape == value.shape else None
            index = _window(use, value.shape)
            lines.append(f"{label}{_index_text(index)} (of shape {value.shape}):\n{value[index]}")
        return lines


SECRET_WRONG = "The answer is wrong (this check shows no expected values: work it out again by hand)."


def _secret_shape(got: np.ndarray, expected: np.ndarray) -> list[str] | None:
    """A wrong shape, told without the expected one."""
    if got.shape == expected.shape:
        return None
    return [f"The shape is wrong: got {got.shape}, which is not the shape of the answer.", SECRET_WRONG]


def exact(got, expected, *, what: str, reveal: bool, secret: bool = False, **_) -> list[str] | None:
    """Integer or boolean results that must match entry for entry."""
    got = to_numpy(got, what)
    expected = np.asarray(expected)
    if secret:
        return _secret_shape(got, expected) or (None if np.array_equal(got, expected) else [SECRET_WRONG])
    problem = _shape_problem(got, expected)
    if problem:
        return problem + _show(got, expected, reveal)
    bad = got != expected
    if not bad.any():
        return None
    hint = []
    if got.ndim == 2 and got.shape[0] == got.shape[1] and np.array_equal(got, expected.T):
        hint = ["It is the transpose of the expected matrix: are rows and columns swapped?"]
    return _first_difference(bad, got, expected) + hint + _show(got, expected, reveal, bad)


def close(got, expected, *, what: str, reveal: bool, rtol: float = 1e-5, atol: float = 1e-6, secret: bool = False,
          equal_nan: bool = False, same_dtype: bool = False, **_):
    """Floating-point results, equal up to float32-safe tolerances.

    ``equal_nan=True`` (a graded function's option) counts NaN equal to NaN. That never lets a NaN
    answer pass where the reference gives a number; it is for the known mistakes whose answer is NaN
    (a loss without smoothing on empty masks), so that their hint finds the NaN a student returned,
    whatever its type (a float, a 0-d tensor or array).

    ``same_dtype=True`` (a graded function's option) makes a floating-point answer's dtype part of the
    answer: where the reference returns float64 for float64 inputs, a float32 answer (an accumulator
    made with ``torch.zeros(...)`` and its default dtype) is wrong, with a line that names the fix.
    """
    if same_dtype:
        problem = _dtype_problem(got, expected, what)
        if problem:
            return problem
    got = to_numpy(got, what).astype(np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if expected.ndim == 0 and got.ndim != 0 and got.size == 1:
        return [f"Expected a single number, got an array of shape {got.shape}. Return a float, e.g. float(value)."]
    if secret:
        problem = _secret_shape(got, expected)
        if problem:
            return problem
        right = np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=equal_nan).all()
        return None if right else [SECRET_WRONG]
    problem = _shape_problem(got, expected)
    if problem:
        return problem + _show(got, expected, reveal)
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not bad.any():
        return None
    if expected.ndim == 0:
        lines = [f"expected {_fmt(expected[()])}, got {_fmt(got[()])}."]
        if np.isnan(got[()]):
            lines.append("You returned NaN: is something divided by zero (an absent class?)")
        return lines
    return _first_difference(bad, got, expected) + _show(got, expected, reveal, bad)


def _dtype_problem(got, expected, what: str) -> list[str] | None:
    """A floating-point answer whose dtype is not the reference's (float32 for float64, or the reverse)."""
    got_dtype = to_numpy(got, what).dtype
    expected_dtype = np.asarray(expected).dtype
    if not (np.issubdtype(got_dtype, np.floating) and np.issubdtype(expected_dtype, np.floating)):
        return None
    if got_dtype == expected_dtype:
        return None
    return [f"The dtype is wrong: expected {expected_dtype}, got {got_dtype}. Keep the dtype of the input: "
            f"create new tensors with dtype=x.dtype (torch.zeros(..., dtype=x.dtype))."]


def binary_mask(got, expected, *, what: str, reveal: bool, tie_mask=None, secret: bool = False, **_):
    """Boolean masks; entries in ``tie_mask`` (pixels within rounding of the threshold) may differ."""
    arr = to_numpy(got, what)
    if arr.dtype != bool:
        values = np.unique(arr)
        if not np.isin(values, [0, 1]).all():
            return [f"A mask holds only True/False (or 0/1), but {what} returned values such as {values[:5]}."]
        arr = arr.astype(bool)
    expected = np.asarray(expected, dtype=bool)
    if secret:
        problem = _secret_shape(arr, expected)
        if problem:
            return problem
    problem = _shape_problem(arr, expected)
    if problem:
        return problem
    bad = arr != expected
    if tie_mask is not None:
        bad &= ~np.asarray(tie_mask, dtype=bool)
    if not bad.any():
        return None
    if secret:
        return [SECRET_WRONG]
    lines = _first_difference(bad, arr, expected)
    extra = int((arr & ~expected & bad).sum())
    missing = int((~arr & expected & bad).sum())
    lines.append(f"{extra} pixel(s) are foreground but should not be; {missing} should be foreground but are not.")
    return lines


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def integer(got, expected, *, what: str, reveal: bool, secret: bool = False, **_) -> list[str] | None:
    """A whole number returned as a Python ``int`` (or a numpy integer), equal to the expected one.

    A float with the right value is still wrong: sizes index arrays and build shapes, where a float
    breaks later code (``np.zeros((4.0, 4.0))`` raises). A bool is not accepted as a number.
    """
    if got is None:
        return [f"{what} returned None. Did you forget the `return` statement?"]
    if not _is_integer(got):
        if isinstance(got, (bool, np.bool_)):
            kind = "a bool"
        elif isinstance(got, (float, np.floating)):
            kind = f"a float ({float(got)!r})"
        elif isinstance(got, np.ndarray) or type(got).__module__.startswith("torch"):
            kind = f"an array of shape {tuple(np.shape(got))}"
        else:
            kind = f"a {type(got).__name__}"
        return [f"{what} returned {kind}, but it should return an int: return an int, e.g. int(...) "
                f"or use // for the division."]
    if int(got) == int(expected):
        return None
    if secret:
        return [SECRET_WRONG]
    return [f"expected {int(expected)}, got {int(got)}."]
