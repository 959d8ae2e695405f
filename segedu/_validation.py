"""Input checks shared by every segedu module.

Students read these messages, so each one says what was wrong, what was expected and how to fix it,
in the spirit of ``segmentation_models_pytorch``'s ``check_input_shape``. Every check raises
:class:`SegeduInputError`, a ``ValueError`` (or ``TypeError`` for dtype problems), so ordinary
``except ValueError`` code keeps working.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "SegeduInputError",
    "SegeduTypeError",
    "as_array",
    "check_ndim",
    "check_float_image",
    "check_integer_labels",
    "check_same_shape",
    "check_label_range",
    "check_odd_positive",
    "check_positive_int",
    "check_in",
    "check_grey_image",
    "check_real_scalar",
    "check_binary_mask",
    "check_size",
    "check_seed",
    "check_ignore_index",
    "float_dtype_of",
    "check_binary_target",
    "check_label_map",
    "check_instance_labels",
]


class SegeduInputError(ValueError):
    """A value has the wrong shape or range. The message names the fix."""


class SegeduTypeError(TypeError):
    """A value has the wrong type or dtype. The message names the fix."""


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"a {type(x).__name__}"


def as_array(x, name: str) -> np.ndarray:
    """Turn ``x`` into a numpy array without copying when possible.

    Torch tensors are accepted (moved to the CPU and detached), because students often pass
    the output of a network straight into a metric.
    """
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__
    if module.startswith("torch"):
        return x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy accepts almost anything
        raise SegeduTypeError(f"{name} must be array-like, but got {_describe(x)} ({exc}).") from exc
    if arr.dtype == object:
        raise SegeduTypeError(
            f"{name} could not be turned into a numeric array (it became dtype=object). "
            f"Pass a numpy array or a list of numbers with equal-length rows."
        )
    return arr


def check_ndim(arr: np.ndarray, name: str, ndims, meaning: str) -> None:
    """Raise unless ``arr.ndim`` is in ``ndims``; ``meaning`` names the axes, e.g. ``"H×W"``."""
    if isinstance(ndims, int):
        ndims = (ndims,)
    if arr.ndim not in ndims:
        hint = ""
        if arr.ndim == 3 and 2 in ndims and arr.shape[-1] in (3, 4):
            hint = " It looks like a colour image: convert it to grey first, e.g. skimage.color.rgb2gray(img)."
        elif arr.ndim == 3 and 2 in ndims and arr.shape[0] == 1:
            hint = " It has a leading axis of size 1: drop it with img[0] or img.squeeze(0)."
        elif arr.ndim == 4 and arr.shape[0] == 1:
            hint = " It has a batch axis of size 1: drop it with x[0]."
        raise SegeduInputError(
            f"{name} must be {meaning} ({' or '.join(str(n) for n in ndims)}-D), "
            f"but got {arr.ndim}-D with shape {arr.shape}.{hint}"
        )


def check_float_image(arr: np.ndarray, name: str = "img") -> np.ndarray:
    """Require a real-valued image; integers are converted to float64 (values kept, not rescaled).

    Booleans are refused, because thresholding an already-binary mask is nearly always a mistake.
    """
    if arr.dtype == bool:
        raise SegeduTypeError(
            f"{name} is a boolean mask, but an intensity image was expected. "
            f"If you really mean it, pass {name}.astype(float)."
        )
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.floating):
        raise SegeduTypeError(
            f"{name} must hold real numbers, but its dtype is {arr.dtype}. "
            f"Convert it with skimage.util.img_as_float({name})."
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise SegeduInputError(
            f"{name} contains {bad} NaN or infinite value(s). Replace them first, e.g. with np.nan_to_num({name})."
        )
    return arr


def check_integer_labels(arr: np.ndarray, name: str) -> np.ndarray:
    """Require a label map of integers (booleans count as the labels 0 and 1)."""
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            raise SegeduTypeError(
                f"{name} holds whole numbers stored as {arr.dtype}; a label map must have an integer dtype. "
                f"Convert it with {name}.astype(np.int64)."
            )
        raise SegeduTypeError(
            f"{name} holds fractional values (dtype {arr.dtype}), but a label map holds class ids. "
            f"If these are scores or probabilities with a class axis, take {name}.argmax(axis=0) first."
        )
    raise SegeduTypeError(f"{name} must be an integer label map, but its dtype is {arr.dtype}.")


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        hint = ""
        if a.ndim == b.ndim + 1 or b.ndim == a.ndim + 1:
            hint = " One of them has an extra axis: if it holds per-class scores, take .argmax over that axis first."
        raise SegeduInputError(
            f"{name_a} and {name_b} must have the same shape, but {name_a} is {a.shape} "
            f"and {name_b} is {b.shape}.{hint}"
        )


def check_label_range(arr: np.ndarray, name: str, num_classes: int, ignore_index=None) -> None:
    """Every label must be in ``[0, num_classes)``, except pixels equal to ``ignore_index``."""
    values = arr if ignore_index is None else arr[arr != ignore_index]
    if values.size == 0:
        return
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        extra = "" if ignore_index is None else f" (pixels equal to ignore_index={ignore_index} are skipped)"
        raise SegeduInputError(
            f"{name} contains the label {bad}, but with num_classes={num_classes} labels must lie in "
            f"0..{num_classes - 1}{extra}. Check num_classes, or pass ignore_index for 'void' pixels such as 255."
        )


def check_positive_int(value, name: str, minimum: int = 1, hint: str = "") -> int:
    """An int (numpy integers too, bools refused) of at least ``minimum``; ``hint`` ends the range error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SegeduTypeError(f"{name} must be an int, but got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise SegeduInputError(f"{name} must be at least {minimum}, but got {value}.{hint}")
    return int(value)


def check_odd_positive(value, name: str) -> int:
    value = check_positive_int(value, name, minimum=1)
    if value % 2 == 0:
        raise SegeduInputError(
            f"{name} must be odd so that the window has a centre pixel, but got {value}. Try {value + 1}."
        )
    return value


def check_in(value, name: str, allowed) -> None:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise SegeduInputError(f"{name} must be one of {choices}, but got {value!r}.")


def check_grey_image(img, name: str = "img") -> np.ndarray:
    """An ``H×W`` grey image as a float array (integers become float64; floats keep their dtype)."""
    arr = as_array(img, name)
    check_ndim(arr, name, 2, "an H×W grey image")
    arr = check_float_image(arr, name)
    if arr.size == 0:
        raise SegeduInputError(f"{name} is empty (shape {arr.shape}); pass an image with at least one pixel.")
    return arr


def check_real_scalar(value, name: str, minimum=None, strict: bool = False) -> float:
    """A finite real number, optionally at least (or, with ``strict``, above) ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SegeduTypeError(f"{name} must be a real number, but got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise SegeduInputError(f"{name} must be a finite number, but got {value}.")
    if minimum is not None:
        if strict and value <= minimum:
            raise SegeduInputError(f"{name} must be greater than {minimum}, but got {value}.")
        if not strict and value < minimum:
            raise SegeduInputError(f"{name} must be at least {minimum}, but got {value}.")
    return value


def _show_values(values: np.ndarray, limit: int = 5) -> str:
    """The first ``limit`` of the sorted distinct ``values``, as ``"0, 2, 255, ..."``."""
    shown = ", ".join(str(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return shown + (", ..." if values.size > limit else "")


def check_binary_mask(mask, name: str = "mask") -> np.ndarray:
    """A boolean mask from booleans, or from integers or floats that are all 0 or 1.

    The shape is not checked (use :func:`check_ndim`). Label maps, 0/255 images and probabilities
    are refused with the one-line fix for each.

    >>> check_binary_mask([[0, 1], [1, 0]], "mask")
    array([[False,  True],
           [ True, False]])
    >>> check_binary_mask(np.array([0, 255]), "mask")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segedu._validation.SegeduInputError: mask must be a binary mask ... the values 0, 255. ... use (mask > 0).
    """
    arr = as_array(mask, name)
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise SegeduInputError(
                f"{name} must be a binary mask of 0s and 1s (or booleans), but it holds the values "
                f"{_show_values(np.unique(arr))}. If it is a label map, select one class with ({name} == c); "
                f"if it is a 0/255 image, use ({name} > 0)."
            )
        return arr.astype(bool)
    if np.issubdtype(arr.dtype, np.floating):
        binary = (arr == 0) | (arr == 1)
        if not np.all(binary):
            values = np.unique(arr[~binary])
            raise SegeduTypeError(
                f"{name} must be a binary mask (booleans, or 0s and 1s), but it holds the {arr.dtype} "
                f"values {_show_values(values)}. If they are probabilities, threshold them first, e.g. "
                f"({name} > 0.5); if it is a 0/255 image, use ({name} > 0)."
            )
        return arr.astype(bool)
    raise SegeduTypeError(
        f"{name} must be a binary mask (booleans, or 0s and 1s), but its dtype is {arr.dtype}. "
        f"Build it with a comparison, e.g. ({name} > 0)."
    )


def check_size(size, name: str = "size", minimum: int = 1) -> tuple[int, int]:
    """An image size: an int ``n`` (meaning ``(n, n)``) or an ``(h, w)`` pair of ints ``>= minimum``.

    >>> check_size(32, "size")
    (32, 32)
    >>> check_size((48, np.int64(64)), "size")
    (48, 64)
    """
    if isinstance(size, bool) or isinstance(size, (str, bytes)):
        raise SegeduTypeError(
            f"{name} must be an int or a (height, width) pair of ints, e.g. (64, 64), but got {size!r} "
            f"({type(size).__name__})."
        )
    if isinstance(size, numbers.Integral):
        size = (size, size)
    try:
        pair = tuple(size)
    except TypeError:
        raise SegeduTypeError(
            f"{name} must be an int or a (height, width) pair of ints, e.g. (64, 64), but got {size!r} "
            f"({type(size).__name__})."
        ) from None
    if len(pair) != 2:
        raise SegeduInputError(
            f"{name} must be an int or a (height, width) pair, e.g. (64, 64), but got {size!r} with "
            f"{len(pair)} entries. Drop the channel axis: pass image.shape[:2], not image.shape."
        )
    h = check_positive_int(pair[0], f"{name}[0] (height)", minimum=minimum)
    w = check_positive_int(pair[1], f"{name}[1] (width)", minimum=minimum)
    return h, w


def check_seed(seed, name: str = "seed", allow_none: bool = True):
    """A random seed: a non-negative int (numpy integers too), or ``None`` when ``allow_none``.

    >>> check_seed(np.int64(3)), check_seed(None)
    (3, None)
    """
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        what = "an int or None" if allow_none else "an int"
        raise SegeduTypeError(
            f"{name} must be {what}, but got {seed!r} ({type(seed).__name__}). "
            f"Pass a whole number such as {name}=0; the same {name} gives the same result."
        )
    if seed < 0:
        raise SegeduInputError(
            f"{name} must be at least 0 (numpy's random generators take non-negative seeds), but got {seed}. "
            f"Use abs({name}) or another non-negative number."
        )
    return int(seed)


def check_ignore_index(ignore_index):
    """The label of 'void' pixels: an int (numpy integers too) or ``None``.

    >>> check_ignore_index(np.uint8(255)), check_ignore_index(None)
    (255, None)
    """
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise SegeduTypeError(
            f"ignore_index must be an int (such as 255) or None, but got {ignore_index!r} "
            f"({type(ignore_index).__name__}). Pass the label of the pixels to skip, e.g. ignore_index=255."
        )
    return int(ignore_index)


def float_dtype_of(arr: np.ndarray):
    """The dtype a result should have: the input's float dtype, else float64 (floats keep their dtype)."""
    return arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64


# ---------------------------------------------------------------------------------------------
# Targets of the losses (torch) and label maps of the networks (numpy or torch). torch is imported
# only inside the functions, so that ``import segedu._validation`` stays light.


def _is_torch_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "is_floating_point")


def _rgb_axis(shape, expected) -> str | None:
    """Where ``shape`` carries 3 or 4 colour channels in place of the 1 channel (or no axis) of ``expected``."""
    shape, expected = tuple(shape), tuple(expected)
    if len(shape) == len(expected) + 1 and shape[-1] in (3, 4) and shape[:-1] == expected:
        return "last"
    if len(shape) == len(expected) and len(shape) >= 3 and shape[-1] in (3, 4) and expected[-1] != shape[-1]:
        if shape[:-1] == expected[:1] + expected[2:] and expected[1] == 1:
            return "last, channels-first expected"
    if len(shape) == len(expected) and len(shape) >= 3 and shape[1] in (3, 4) and expected[1] == 1:
        if shape[:1] + shape[2:] == expected[:1] + expected[2:]:
            return "channel"
    return None


def check_binary_target(target, logits, name: str = "target", logits_name: str = "logits"):
    """A binary loss target: a floating-point ``torch.Tensor`` of the logits' shape, every value 0 or 1.

    The usual mistakes each get their fix: a numpy mask (``torch.from_numpy(mask).float()``), an
    integer or boolean tensor (``.float()``), a 0/255 mask (divide by 255), an RGB mask where one
    channel is expected, a missing or extra channel axis, probabilities instead of labels. Values
    are not read on the ``meta`` device (it has none). Returns ``target`` unchanged.

    >>> import torch
    >>> logits = torch.zeros(2, 1, 4, 4)
    >>> check_binary_target(torch.ones(2, 1, 4, 4), logits).shape
    torch.Size([2, 1, 4, 4])
    >>> check_binary_target(torch.full((2, 1, 4, 4), 255.0), logits)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segedu._validation.SegeduInputError: target holds the values 0 and 255, ... divide it by 255 ...
    """
    import torch

    if not _is_torch_tensor(logits):
        raise SegeduTypeError(
            f"{logits_name} must be a torch.Tensor (the raw output of the network), but got {_describe(logits)}. "
            f"Convert a numpy array with torch.from_numpy({logits_name}).float()."
        )
    if not logits.is_floating_point():
        raise SegeduTypeError(
            f"{logits_name} must be a floating-point tensor of raw scores (logits), but its dtype is {logits.dtype}. "
            f"Use {logits_name}.float()."
        )
    if not _is_torch_tensor(target):
        arr = target if isinstance(target, np.ndarray) else None
        scale = " / 255" if arr is not None and arr.size and arr.max() > 1 else ""
        raise SegeduTypeError(
            f"{name} must be a torch.Tensor like {logits_name}, but got {_describe(target)}. "
            f"Convert a numpy mask with torch.from_numpy({name}).float(){scale}."
        )
    on_meta = target.device.type == "meta"
    if not target.is_floating_point():
        scale = ""
        if not on_meta and target.numel() and target.dtype != torch.bool and int(target.max()) > 1:
            scale = " / 255 (it holds values up to " + str(int(target.max())) + ", e.g. a 0/255 mask)"
        raise SegeduTypeError(
            f"{name} must be a floating-point tensor of 0s and 1s, but its dtype is {target.dtype}. "
            f"Use {name}.float(){scale}, or {name}.to({logits_name}.dtype)."
        )
    if target.shape != logits.shape:
        tshape, lshape = tuple(target.shape), tuple(logits.shape)
        where = _rgb_axis(tshape, lshape)
        if where is not None:
            pick = {"last": f"{name}[..., 0]", "channel": f"{name}[:, :1]"}.get(where, f"{name}[..., 0][:, None]")
            raise SegeduInputError(
                f"{name} has shape {tshape}, which looks like an RGB (colour) mask, but {logits_name} has shape "
                f"{lshape}: a binary target has one channel. Take one channel, e.g. {pick}, or mark the pixels "
                f"of the object colour with ({name} == colour).all(-1)."
            )
        hint = ""
        if len(tshape) + 1 == len(lshape) and lshape[1] == 1 and tshape == lshape[:1] + lshape[2:]:
            hint = f" Add the channel axis with {name}[:, None] (or {name}.unsqueeze(1))."
        elif len(tshape) == len(lshape) + 1 and tshape[1] == 1 and lshape == tshape[:1] + tshape[2:]:
            hint = f" Drop its channel axis with {name}[:, 0], or keep the channel axis of {logits_name}."
        raise SegeduInputError(
            f"{name} must have the shape of {logits_name}, {lshape}, but it has shape {tshape}.{hint}"
        )
    if on_meta or target.numel() == 0:
        return target
    binary = (target == 0) | (target == 1)
    if not bool(binary.all()):
        values = torch.unique(target[~binary]).cpu().numpy()
        present = torch.unique(target).cpu().numpy()
        if set(present.tolist()) <= {0.0, 255.0}:
            raise SegeduInputError(
                f"{name} holds the values 0 and 255, but a binary target holds 0 and 1: divide it by 255 "
                f"({name} / 255) or use ({name} > 0).float()."
            )
        if np.all(np.isfinite(values)) and values.min() >= 0 and values.max() <= 1:
            fix = f"If they are probabilities, threshold them first, e.g. ({name} > 0.5).float()."
        elif np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            fix = (
                f"If it is a label map, select one class with ({name} == c).float(); "
                f"for several classes use weighted_cross_entropy with a long label map."
            )
        else:
            fix = f"Replace NaN or infinite values first, e.g. with torch.nan_to_num({name})."
        shown = ", ".join(str(v) for v in values[:5]) + (", ..." if values.size > 5 else "")
        raise SegeduInputError(f"{name} must hold only 0s and 1s, but it holds the values {shown}. {fix}")
    return target


def check_label_map(target, num_classes: int, name: str = "target", ignore_index=None, ndim=None):
    """A map of class indices in ``0..num_classes-1`` (numpy array or torch tensor), returned unchanged.

    Refused, each with the fix: an RGB colour mask (a trailing axis of 3 or 4 where ``ndim`` axes
    are expected, or values in 0..255 with ``num_classes`` 2 given as 0/255), a float map (whole
    numbers: ``.long()`` / ``.astype(np.int64)``; fractions: ``argmax`` over the class axis), a value
    outside ``0..num_classes-1`` (except ``ignore_index``). ``ndim`` (int or tuple) checks the number
    of axes, e.g. 3 for an ``N×H×W`` batch.

    >>> import numpy as np
    >>> check_label_map(np.array([[0, 2], [1, 1]]), num_classes=3).shape
    (2, 2)
    >>> check_label_map(np.array([[0, 3]]), num_classes=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segedu._validation.SegeduInputError: target contains the class 3, but with num_classes=3 ...
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    ignore_index = check_ignore_index(ignore_index)
    is_torch = _is_torch_tensor(target)
    on_meta = is_torch and target.device.type == "meta"
    shape = tuple(target.shape) if is_torch else None
    arr = None
    if not is_torch:
        arr = as_array(target, name)
        shape = arr.shape
    if ndim is not None:
        ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape) not in ndims:
            hint = ""
            extra_axis = len(shape) == max(ndims) + 1
            if extra_axis and len(shape) == 4 and shape[1] == 1:
                hint = f" It has a channel axis of size 1: drop it with {name}[:, 0] (or {name}.squeeze(1))."
            elif extra_axis and shape[-1] == 1:
                hint = f" It has a trailing axis of size 1: drop it with {name}[..., 0]."
            elif extra_axis and shape[-1] in (3, 4):
                hint = (
                    " It looks like an RGB (colour) mask: turn each colour into its class index first, e.g. "
                    "labels[(mask == colour).all(-1)] = class_index for each colour of the palette."
                )
            raise SegeduInputError(
                f"{name} must be a map of class indices with {' or '.join(map(str, ndims))} axes, but it has "
                f"shape {shape}.{hint}"
            )
    # dtype
    if is_torch:
        floating = target.is_floating_point()
        integer = not floating and target.dtype.is_signed is not None and not target.is_complex()
        dtype = target.dtype
    else:
        floating = np.issubdtype(arr.dtype, np.floating)
        integer = np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool
        dtype = arr.dtype
    if floating:
        whole = False
        if not on_meta:
            values = target.detach().cpu().numpy() if is_torch else arr
            whole = values.size > 0 and bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
        if whole:
            fix = f"{name}.long()" if is_torch else f"{name}.astype(np.int64)"
            raise SegeduTypeError(
                f"{name} holds class indices stored as {dtype}; a label map needs an integer dtype. Convert it "
                f"with {fix}."
            )
        raise SegeduTypeError(
            f"{name} must hold integer class indices, but its dtype is {dtype} with fractional values. If these "
            f"are per-class scores or probabilities, take the argmax over the class axis first."
        )
    if not integer:
        raise SegeduTypeError(f"{name} must be an integer map of class indices, but its dtype is {dtype}.")
    if on_meta:
        return target
    values = target.detach().cpu().numpy() if is_torch else arr
    if values.dtype == bool:
        values = values.astype(np.int64)
    kept = values if ignore_index is None else values[values != ignore_index]
    if kept.size == 0:
        return target
    lo, hi = int(kept.min()), int(kept.max())
    if lo >= 0 and hi < num_classes:
        return target
    present = np.unique(kept)
    if num_classes == 2 and set(present.tolist()) <= {0, 255}:
        raise SegeduInputError(
            f"{name} holds the values 0 and 255, but with num_classes=2 the classes are 0 and 1: divide it by 255 "
            f"or use ({name} > 0) and convert back to an integer type."
        )
    bad = lo if lo < 0 else hi
    extra = "" if ignore_index is None else f" (pixels equal to ignore_index={ignore_index} are skipped)"
    raise SegeduInputError(
        f"{name} contains the class {bad}, but with num_classes={num_classes} classes must lie in "
        f"0..{num_classes - 1}{extra}; it holds {_show_values(present)}. Build the model and the loss with "
        f"num_classes={max(hi + 1, num_classes)}, or pass ignore_index for 'void' pixels such as 255."
    )


def check_instance_labels(labels, name: str = "instance_labels") -> np.ndarray:
    """An ``H×W`` map of instance ids as a numpy integer array: 0 is background, each id ≥ 1 one object.

    A boolean or float mask is refused with the fix, ``skimage.measure.label(mask)``, which gives
    every connected object its own id; negative ids are refused. Torch tensors are accepted.

    >>> check_instance_labels([[0, 1], [2, 2]]).dtype.kind
    'i'
    >>> check_instance_labels(np.array([[0.0, 1.0]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segedu._validation.SegeduTypeError: instance_labels must be an integer array ...
    use skimage.measure.label(mask), ...
    """
    arr = as_array(labels, name)
    check_ndim(arr, name, 2, "an H×W map of instance ids")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == bool:
            what = "a boolean mask"
        elif np.issubdtype(arr.dtype, np.floating):
            what = f"dtype {arr.dtype}"
        else:
            what = f"dtype {arr.dtype}"
        whole = (
            np.issubdtype(arr.dtype, np.floating)
            and arr.size
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
            and np.unique(arr).size > 2
        )
        fix = (
            f"If it already holds one id per object, convert it with {name}.astype(np.int32)."
            if whole
            else "To turn a binary mask into instance labels use skimage.measure.label(mask), which gives each "
            "connected object its own id (touching objects merge: label them separately if you can)."
        )
        raise SegeduTypeError(
            f"{name} must be an integer array of instance ids (0 = background, 1, 2, ... = objects), "
            f"but it is {what}. {fix}"
        )
    if arr.size and arr.min() < 0:
        raise SegeduInputError(
            f"{name} contains the negative id {int(arr.min())}; instance ids are 0 for background and 1, 2, ... for "
            f"objects. Relabel with skimage.segmentation.relabel_sequential(np.where({name} < 0, 0, {name}))[0] "
            f"if negative values meant background."
        )
    return arr
