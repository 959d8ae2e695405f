r"""Convolution arithmetic: 2-D convolution, transpose convolution, their output sizes and matrices.

:func:`conv2d` and :func:`conv_transpose2d` have the semantics, argument names and weight layouts of
``torch.nn.functional.conv2d`` and ``torch.nn.functional.conv_transpose2d`` with ``groups=1``:

========================= ===================== =========================================
function                  input ``x``           ``weight``
========================= ===================== =========================================
:func:`conv2d`            ``(N, C_in, H, W)``   ``(C_out, C_in, kh, kw)``, i.e. (out, in)
:func:`conv_transpose2d`  ``(N, C_in, H, W)``   ``(C_in, C_out, kh, kw)``, i.e. (in, out)
========================= ===================== =========================================

An unbatched ``(C_in, H, W)`` input gives an unbatched output, as in torch. ``bias`` has shape
``(C_out,)``. ``stride``, ``padding``, ``dilation`` and ``output_padding`` are an int or a pair
``(rows, cols)``.

Types and dtypes
----------------
* A torch tensor ``x`` gives a torch tensor of the same dtype on the same device, and gradients
  flow through the result (everything is built from differentiable tensor operations).
* Anything else (a numpy array, a nested list) gives a numpy array. Integer or boolean numpy
  operands take the float dtype of the other operands (float64 if none is a float), so that the
  small integer examples of a lecture work as they are written.
* Floats keep their dtype: float64 in, float64 out. As in torch, ``x``, ``weight`` and ``bias`` must
  share one floating dtype; integer *tensors* are refused, as torch refuses them.

Three ways to compute the same thing
------------------------------------
Like torchvision's ``ops/roi_align.py``, every operation comes twice, so that the fast code can be
read next to a slow one that is obviously right:

* :func:`conv2d_loops` and :func:`conv_transpose2d_loops` use explicit Python loops over the pixels
  of one sample, exactly as the lecture computes them by hand;
* :func:`conv2d` and :func:`conv_transpose2d` loop only over the :math:`k_h k_w` kernel offsets and
  do the rest with strided slices and one matrix product ("im2col" and "col2im" [3]_). They never
  call torch's own convolution, fold or unfold;
* :func:`conv_matrix` writes a convolution as one dense matrix :math:`C`, so that the transpose
  convolution is literally multiplication by :math:`C^\top` [1]_.

The test suite checks all three against ``torch.nn.functional`` on hundreds of random
configurations.

Pooling with indices (unit 07)
------------------------------
:func:`max_pool2d_with_indices` and :func:`max_unpool2d` are ``F.max_pool2d(..., return_indices=True)``
and ``F.max_unpool2d``: the indices are flattened per channel plane (:math:`iW + j`), ties go to the
first maximum in row-major window order, and unpooling writes each value back at its index in a zero
plane. SegNet [5]_ builds its decoder from them; :func:`max_pool2d_with_indices_loops` and
:func:`max_unpool2d_loops` are their slow, readable versions.

Receptive fields (unit 08)
--------------------------
:func:`receptive_field` computes how many input pixels one output pixel of a stack of
``(kernel_size, stride, dilation)`` layers depends on, and the stride between neighbouring
outputs; :func:`receptive_field_by_gradient` measures it by back-propagating one output pixel, and
also shows the holes ("gridding") that stacked equal atrous rates leave [4]_.

References
----------
.. [1] Dumoulin, V. and Visin, F. "A guide to convolution arithmetic for deep learning."
       arXiv:1603.07285, 2016.
.. [2] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
       Segmentation." CVPR 2015: 3431--3440. :DOI:`10.1109/CVPR.2015.7298965`
.. [3] Chellapilla, K., Puri, S. and Simard, P. "High Performance Convolutional Neural Networks
       for Document Processing." 10th International Workshop on Frontiers in Handwriting
       Recognition, 2006.
.. [4] Yu, F. and Koltun, V. "Multi-Scale Context Aggregation by Dilated Convolutions." ICLR 2016.
.. [5] Badrinarayanan, V., Kendall, A. and Cipolla, R. "SegNet: A Deep Convolutional Encoder-Decoder
       Architecture for Image Segmentation." IEEE TPAMI 39(12), 2017. arXiv:1511.00561

Examples
--------
Transpose convolution by hand: every input element multiplies the *whole* kernel, the copies are
placed ``stride`` apart, and overlaps are summed. With stride 2 and a 2×2 kernel the copies tile the
output without overlapping, and a 2×2 input becomes 4×4:

>>> import numpy as np
>>> A = np.array([[2, 1], [0, 3]])
>>> B = np.array([[1, 2], [3, 4]])
>>> conv_transpose2d(A[None, None], B[None, None], stride=2)[0, 0]
array([[ 2.,  4.,  1.,  2.],
       [ 6.,  8.,  3.,  4.],
       [ 0.,  0.,  3.,  6.],
       [ 0.,  0.,  9., 12.]])
>>> conv_transpose_output_size(2, 2, stride=2)
4
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch.overrides import handle_torch_function, has_torch_function_variadic

from ._validation import SegeduInputError, SegeduTypeError, as_array, check_positive_int

__all__ = [
    "conv2d",
    "conv2d_loops",
    "conv_matrix",
    "conv_output_size",
    "conv_transpose2d",
    "conv_transpose2d_loops",
    "conv_transpose_output_size",
    "max_pool2d_with_indices",
    "max_pool2d_with_indices_loops",
    "max_unpool2d",
    "max_unpool2d_loops",
    "receptive_field",
    "receptive_field_by_gradient",
]


# --------------------------------------------------------------------------------------------------
# Argument checks (shared by every function below). Messages name the problem and the fix.
# --------------------------------------------------------------------------------------------------


_NEGATIVE_PADDING_FIX = (
    " Padding adds zeros around the input; torch has no negative padding. To crop, slice the"
    " input instead, e.g. x[..., 1:-1, 1:-1]."
)


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int, or a sequence of one or two ints, as ``(rows, cols)`` (what torch accepts)."""
    if isinstance(value, (list, tuple)):
        if len(value) not in (1, 2):
            raise SegeduInputError(
                f"{name} must be an int or a pair (rows, cols) of ints, but got {value!r} with {len(value)} entries."
            )
        items = tuple(value) * (2 // len(value))
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = (value, value)
    else:
        raise SegeduTypeError(
            f"{name} must be an int or a pair (rows, cols) of ints, but got {value!r} ({type(value).__name__})."
        )
    fix = _NEGATIVE_PADDING_FIX if name == "padding" else ""
    return tuple(check_positive_int(v, name, minimum, fix) for v in items)  # type: ignore[return-value]


def _check_output_padding(output_padding, stride, dilation) -> tuple[int, int]:
    op = _pair(output_padding, "output_padding", 0)
    for axis, o, s, d in zip(("rows", "cols"), op, stride, dilation):
        if o >= s and o >= d:
            raise SegeduInputError(
                f"output_padding must be smaller than stride or dilation (torch's rule), but for the "
                f"{axis} output_padding={o} with stride={s} and dilation={d}. output_padding only "
                f"chooses among the {max(s, d)} output sizes that map back to the same input size "
                f"under the forward convolution, so use 0..{max(s, d) - 1}."
            )
    return op


def _conv_size(n: int, k: int, s: int, pad_total: int, d: int, axis: str) -> int:
    """floor((n + pad_total - d(k-1) - 1) / s) + 1, refusing a kernel wider than the padded input."""
    span = d * (k - 1) + 1
    if n + pad_total < span:
        raise SegeduInputError(
            f"The kernel is larger than the padded input along the {axis}: with kernel size {k} and "
            f"dilation {d} it spans d·(k−1)+1 = {span} pixels, but the input has {n} plus "
            f"{pad_total} padding = {n + pad_total}. Use a smaller kernel or dilation, more "
            f"padding, or a larger input."
        )
    return (n + pad_total - span) // s + 1


def _transpose_size(n: int, k: int, s: int, p: int, op: int, d: int, axis: str) -> int:
    """(n-1)s - 2p + d(k-1) + output_padding + 1, refusing results below 1."""
    full = (n - 1) * s + d * (k - 1) + 1
    size = full - 2 * p + op
    if size < 1:
        raise SegeduInputError(
            f"The transpose convolution has no output along the {axis}: it spreads {n} input pixels "
            f"over (n−1)·stride + d·(k−1) + 1 = {full} pixels, and padding={p} crops {2 * p} of them "
            f"(output_padding={op} gives back {op}), leaving {size}. Use less padding."
        )
    return size


def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    r"""Output length of a convolution along one axis.

    Parameters
    ----------
    n : int
        Input length (height or width), at least 1.
    k : int
        Kernel length, at least 1.
    stride, padding, dilation : int, optional
        As in ``torch.nn.Conv2d``: a step :math:`s \ge 1`, zeros :math:`p \ge 0` added on *each*
        side, and a spacing :math:`d \ge 1` between kernel taps.

    Returns
    -------
    int
        .. math::

            n_\text{out} = \left\lfloor \frac{n + 2p - d(k - 1) - 1}{s} \right\rfloor + 1 .

        The dilated kernel spans :math:`d(k-1) + 1` pixels; it fits in :math:`n + 2p - d(k-1)`
        positions of the padded input, and every :math:`s`-th of them is kept (Dumoulin and Visin
        [1]_, relationship 6, with the dilated kernel size of section 5.1).

    Raises
    ------
    SegeduInputError
        If an argument is below its minimum, or the dilated kernel is larger than the padded input.
    SegeduTypeError
        If an argument is not an int.

    References
    ----------
    .. [1] Dumoulin, V. and Visin, F. "A guide to convolution arithmetic for deep learning."
           arXiv:1603.07285, 2016.

    Examples
    --------
    >>> conv_output_size(5, 3)                        # "valid": the 3×3 kernel fits 3 times
    3
    >>> conv_output_size(64, 3, padding=1)            # "same" for an odd kernel
    64
    >>> conv_output_size(64, 3, stride=2, padding=1)  # halves the size (rounding up)
    32
    >>> conv_output_size(64, 3, padding=2, dilation=2)  # atrous: same size with padding = dilation
    64
    """
    n = check_positive_int(n, "n", 1)
    k = check_positive_int(k, "k", 1)
    stride = check_positive_int(stride, "stride", 1)
    padding = check_positive_int(padding, "padding", 0, _NEGATIVE_PADDING_FIX)
    dilation = check_positive_int(dilation, "dilation", 1)
    return _conv_size(n, k, stride, 2 * padding, dilation, "input")


def conv_transpose_output_size(n, k, stride=1, padding=0, output_padding=0, dilation=1):
    r"""Output length of a transpose convolution along one axis.

    Parameters
    ----------
    n : int
        Input length (height or width), at least 1.
    k : int
        Kernel length, at least 1.
    stride, padding, dilation : int, optional
        As in ``torch.nn.ConvTranspose2d``: the input elements' copies of the kernel are placed
        :math:`s` apart; :math:`p` rows (columns) are then cropped from *each* side; :math:`d` is the
        spacing between kernel taps.
    output_padding : int, optional
        Extra rows (columns) given back at the bottom (right), :math:`0 \le o < \max(s, d)`.

    Returns
    -------
    int
        .. math::

            n_\text{out} = (n - 1)s - 2p + d(k - 1) + o + 1 .

        The last of the :math:`n` input elements places its kernel copy :math:`(n-1)s` pixels after
        the first, and a copy spans :math:`d(k-1) + 1` pixels. This inverts
        :func:`conv_output_size`: a convolution with the same ``k, stride, padding, dilation`` maps
        inputs of :math:`s` different lengths to :math:`n`, and ``output_padding`` chooses among
        them (Dumoulin and Visin [1]_, relationships 13 and 14).

    Raises
    ------
    SegeduInputError
        If an argument is below its minimum, ``output_padding`` is not smaller than ``stride`` or
        ``dilation`` (torch's rule), or the padding crops everything.
    SegeduTypeError
        If an argument is not an int.

    References
    ----------
    .. [1] Dumoulin, V. and Visin, F. "A guide to convolution arithmetic for deep learning."
           arXiv:1603.07285, 2016.

    Examples
    --------
    >>> conv_transpose_output_size(2, 2)            # the lecture's example: 2×2 input, 2×2 kernel
    3
    >>> conv_transpose_output_size(32, 2, stride=2)  # U-Net's 2×2 up-convolution doubles the size
    64
    >>> conv_output_size(64, 3, stride=2, padding=1), conv_output_size(63, 3, stride=2, padding=1)
    (32, 32)
    >>> [conv_transpose_output_size(32, 3, stride=2, padding=1, output_padding=o) for o in (0, 1)]
    [63, 64]
    """
    n = check_positive_int(n, "n", 1)
    k = check_positive_int(k, "k", 1)
    stride = check_positive_int(stride, "stride", 1)
    padding = check_positive_int(padding, "padding", 0, _NEGATIVE_PADDING_FIX)
    dilation = check_positive_int(dilation, "dilation", 1)
    (op, _) = _check_output_padding(output_padding, (stride, stride), (dilation, dilation))
    return _transpose_size(n, k, stride, padding, op, dilation, "input")


def _conv_padding(padding, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` from an int, a pair, or torch's ``"valid"`` / ``"same"``."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise SegeduInputError(
                    f"padding='same' needs stride 1 (as in torch), but got stride={stride}. "
                    f"Give the padding as a number: for an odd kernel k, padding = dilation·(k−1)/2."
                )
            # torch puts the odd pixel of an even kernel's padding at the bottom / right
            (th, tw) = (d * (k - 1) for d, k in zip(dilation, kernel))
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise SegeduInputError(f"padding must be an int, a pair (rows, cols), 'valid' or 'same', but got {padding!r}.")
    ph, pw = _pair(padding, "padding", 0)
    return (ph, ph, pw, pw)


# --------------------------------------------------------------------------------------------------
# Turning the operands into tensors, and checking their shapes
# --------------------------------------------------------------------------------------------------


def _is_float(dtype) -> bool:
    if isinstance(dtype, torch.dtype):
        return dtype.is_floating_point
    return np.issubdtype(dtype, np.floating)


def _prepare(x, weight, bias):
    """Tensors on one device with one float dtype, and a function that gives back x's kind."""
    named = {"x": x, "weight": weight, "bias": bias}
    ops = {}
    shown = {}  # dtype names as the caller knows them (numpy's or torch's)
    for name, value in named.items():
        if value is None:
            continue
        if isinstance(value, torch.Tensor):
            ops[name] = value
            shown[name] = str(value.dtype)
        else:
            arr = as_array(value, name)
            if not (_is_float(arr.dtype) or arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)):
                raise SegeduTypeError(
                    f"{name} must hold real numbers, but its dtype is {arr.dtype}. "
                    f"Convert it with {name}.astype(np.float64)."
                )
            ops[name] = arr
            shown[name] = str(arr.dtype)

    # numpy integers and booleans take the float dtype of the others (float64 if there is none)
    float_dtypes = [v.dtype for v in ops.values() if _is_float(v.dtype)]
    fallback = float_dtypes[0] if float_dtypes else np.dtype(np.float64)
    if not isinstance(fallback, torch.dtype):
        fallback = torch.from_numpy(np.zeros(0, dtype=fallback.newbyteorder("="))).dtype
    devices = [v.device for v in ops.values() if isinstance(v, torch.Tensor)]
    device = devices[0] if devices else torch.device("cpu")
    tensors = {}
    for name, value in ops.items():
        if isinstance(value, np.ndarray):
            if _is_float(value.dtype):
                # a copy only when from_numpy needs one (read-only, misaligned or byte-swapped)
                value = np.require(value, dtype=value.dtype.newbyteorder("="), requirements=["C", "A", "W"])
                value = torch.from_numpy(value)
            else:
                value = torch.from_numpy(value.astype(np.float64)).to(fallback)
            value = value.to(device)
        elif not value.dtype.is_floating_point:
            raise SegeduTypeError(
                f"{name} is a tensor of dtype {value.dtype}, but convolution needs floating point "
                f"(torch.nn.functional refuses integers too). Convert it with {name}.float() or {name}.double()."
            )
        tensors[name] = value

    x_t, w_t = tensors["x"], tensors["weight"]
    for name in ("weight", "bias"):
        other = tensors.get(name)
        if other is None:
            continue
        if other.dtype != x_t.dtype:
            raise SegeduTypeError(
                f"x and {name} must have the same dtype, as in torch, but x is {shown['x']} and {name} "
                f"is {shown[name]}. Convert one of them, e.g. {name}.to(x.dtype) for tensors or "
                f"{name}.astype(x.dtype) for numpy arrays."
            )
        if other.device != x_t.device:
            raise SegeduInputError(
                f"x and {name} must be on the same device, but x is on {x_t.device} and {name} is on "
                f"{other.device}. Move it with {name}.to(x.device)."
            )

    as_tensor = isinstance(x, torch.Tensor)

    def finish(out: torch.Tensor):
        return out if as_tensor else out.detach().cpu().numpy()

    return x_t, w_t, tensors.get("bias"), finish


def _check_input(x: torch.Tensor, fn: str, batched_only: bool = False) -> tuple[torch.Tensor, bool]:
    """A 4-D ``(N, C, H, W)`` view of ``x`` and whether it came unbatched (3-D)."""
    if batched_only:
        expected, ndims = "(C_in, H, W) for one sample", (3,)
    else:
        expected, ndims = "(N, C_in, H, W) or unbatched (C_in, H, W)", (3, 4)
    if x.ndim not in ndims:
        shape = tuple(x.shape)
        if x.ndim == 2:
            fix = (
                f" A single grey image needs a channel axis{'' if batched_only else ' and a batch axis'}: "
                f"pass x[None{'' if batched_only else ', None'}] "
                f"(shape {(1,) * (1 if batched_only else 2) + shape})."
            )
        elif x.ndim == 4 and batched_only:
            fix = f" {fn} takes one sample: pass x[0], or use {fn.replace('_loops', '')} for a batch."
        else:
            fix = ""
        raise SegeduInputError(
            f"{fn}: x must be {expected} ({' or '.join(f'{n}-D' for n in ndims)}), "
            f"but got {x.ndim}-D with shape {shape}.{fix}"
        )
    if x.ndim == 3:
        return x.unsqueeze(0), True
    return x, False


def _check_weight(w: torch.Tensor, fn: str, transpose: bool) -> None:
    layout = "(C_in, C_out, kh, kw)" if transpose else "(C_out, C_in, kh, kw)"
    if w.ndim != 4:
        fix = " For a single kernel K, pass K[None, None]." if w.ndim == 2 else ""
        raise SegeduInputError(
            f"{fn}: weight must be 4-D {layout}, but got {w.ndim}-D with shape {tuple(w.shape)}.{fix}"
        )
    if 0 in w.shape[2:]:
        raise SegeduInputError(f"{fn}: weight {layout} has an empty kernel: its shape is {tuple(w.shape)}.")


def _check_channels(x: torch.Tensor, w: torch.Tensor, fn: str, transpose: bool, unbatched: bool) -> None:
    """``x`` is 4-D here; ``unbatched`` says the caller passed it without the batch axis."""
    c = x.shape[1]
    where = "axis 0 of (C_in, H, W)" if unbatched else "axis 1 of (N, C_in, H, W)"
    shape = tuple(x.shape[1:]) if unbatched else tuple(x.shape)
    if transpose:
        expected, layout = w.shape[0], "(C_in, C_out, kh, kw)"
        swapped_fits = w.shape[1] == c
        hint = (
            " Did you pass a conv2d weight to conv_transpose2d? ConvTranspose2d weights are"
            " (in, out, kh, kw), the reverse of Conv2d's (out, in, kh, kw)."
        )
    else:
        expected, layout = w.shape[1], "(C_out, C_in, kh, kw)"
        swapped_fits = w.shape[0] == c
        hint = (
            " Did you pass a conv_transpose2d weight to conv2d? Conv2d weights are (out, in, kh, kw),"
            " the reverse of ConvTranspose2d's (in, out, kh, kw)."
        )
    if c != expected:
        raise SegeduInputError(
            f"{fn}: x has C_in = {c} channels ({where}; x.shape = {shape}), "
            f"but weight of shape {tuple(w.shape)}, read as {layout}, expects C_in = {expected}."
            f"{hint if swapped_fits else ''}"
        )


def _check_bias(b, c_out: int, fn: str) -> None:
    if b is not None and tuple(b.shape) != (c_out,):
        raise SegeduInputError(
            f"{fn}: bias must have shape (C_out,) = ({c_out},), one value per output channel, but got "
            f"shape {tuple(b.shape)}."
        )


# --------------------------------------------------------------------------------------------------
# Fast (vectorised) versions
# --------------------------------------------------------------------------------------------------


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    r"""2-D convolution (a cross-correlation, as in every deep-learning library), like ``F.conv2d``.

    Parameters
    ----------
    x : (N, C_in, H, W) or (C_in, H, W) tensor or array_like
        The input. An unbatched input gives an unbatched output.
    weight : (C_out, C_in, kh, kw) tensor or array_like
        The kernels, in ``torch.nn.Conv2d.weight``'s layout (out, in, ...).
    bias : (C_out,) tensor or array_like, optional
        Added to every pixel of each output channel.
    stride, dilation : int or (int, int), optional
        Step :math:`s` between output pixels and spacing :math:`d` between kernel taps, at least 1.
    padding : int, (int, int), "valid" or "same", optional
        Zeros added on each side of the input (as in torch, "same" needs stride 1 and puts the odd
        pixel of an even kernel at the bottom / right).

    Returns
    -------
    y : (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        .. math::

            y[n, o, r, c] = b[o] + \sum_{i=0}^{C_\text{in}-1} \sum_{u=0}^{k_h-1} \sum_{v=0}^{k_w-1}
                w[o, i, u, v] \; \tilde x[n, i, \, r s_h + u d_h, \, c s_w + v d_w],

        where :math:`\tilde x` is ``x`` padded with zeros; the kernel is *not* flipped. The sizes
        are given by :func:`conv_output_size`. A tensor ``x`` gives a tensor of its dtype and
        device; anything else gives a numpy array.

    Raises
    ------
    SegeduInputError
        If ``x`` is not 3-D or 4-D (e.g. a 2-D image without batch and channel axes), ``weight`` is
        not 4-D, the channels of ``x`` and ``weight`` disagree, ``bias`` has the wrong shape,
        ``padding`` is negative, ``stride`` or ``dilation`` is below 1, or the (dilated) kernel is
        larger than the padded input.
    SegeduTypeError
        If ``x``, ``weight`` and ``bias`` have different dtypes, or a tensor holds integers.

    Notes
    -----
    The implementation is "im2col" [1]_: for each of the :math:`k_h k_w` kernel offsets
    :math:`(u, v)`, the strided slice
    ``xp[:, :, u*d_h : ... : s_h, v*d_w : ... : s_w]`` holds, for every output pixel, the input
    pixel that the tap :math:`(u, v)` sees. Stacking the slices gives a
    :math:`(N, C_\text{in} k_h k_w, H_\text{out} W_\text{out})` matrix of image patches, and one
    matrix product with the :math:`(C_\text{out}, C_\text{in} k_h k_w)` reshaped weight does all
    the multiply-adds. The only Python loop is over the kernel offsets. The patch matrix holds
    :math:`C_\text{in} k_h k_w H_\text{out} W_\text{out}` numbers per sample, the memory price of
    that single product.
    See :func:`conv2d_loops` for the same computation with a loop over every pixel.

    References
    ----------
    .. [1] Chellapilla, K., Puri, S. and Simard, P. "High Performance Convolutional Neural Networks
           for Document Processing." 10th International Workshop on Frontiers in Handwriting
           Recognition, 2006.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)  # one sample, one channel
    >>> x[0, 0]
    array([[0., 1., 2.],
           [3., 4., 5.],
           [6., 7., 8.]])
    >>> w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # a 2×2 "Roberts" kernel, not flipped
    >>> conv2d(x, w)[0, 0]
    array([[-4., -4.],
           [-4., -4.]])
    >>> conv2d(x, w, padding=1, stride=2)[0, 0]
    array([[ 0., -2.],
           [-6., -4.]])
    """
    x_t, w, b, finish = _prepare(x, weight, bias)
    x_t, unbatched = _check_input(x_t, "conv2d")
    _check_weight(w, "conv2d", transpose=False)
    _check_channels(x_t, w, "conv2d", transpose=False, unbatched=unbatched)
    c_out, c_in, kh, kw = w.shape
    _check_bias(b, c_out, "conv2d")
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    top, bottom, left, right = _conv_padding(padding, (kh, kw), (sh, sw), (dh, dw))

    n, _, h, wd = x_t.shape
    h_out = _conv_size(h, kh, sh, top + bottom, dh, "rows (H)")
    w_out = _conv_size(wd, kw, sw, left + right, dw, "columns (W)")

    xp = x_t
    if top or bottom or left or right:
        xp = x_t.new_zeros((n, c_in, h + top + bottom, wd + left + right))
        xp[:, :, top : top + h, left : left + wd] = x_t

    # im2col: slice (u, v) holds, for every output pixel, the input pixel under kernel tap (u, v)
    patches = torch.stack(
        [
            xp[:, :, u * dh : u * dh + (h_out - 1) * sh + 1 : sh, v * dw : v * dw + (w_out - 1) * sw + 1 : sw]
            for u in range(kh)
            for v in range(kw)
        ],
        dim=2,
    )  # (N, C_in, kh*kw, H_out, W_out)
    cols = patches.reshape(n, c_in * kh * kw, h_out * w_out)
    out = (w.reshape(c_out, c_in * kh * kw) @ cols).reshape(n, c_out, h_out, w_out)
    if b is not None:
        out = out + b.reshape(1, c_out, 1, 1)
    return finish(out[0] if unbatched else out)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    r"""2-D transpose convolution ("up-convolution", "deconvolution"), like ``F.conv_transpose2d``.

    Parameters
    ----------
    x : (N, C_in, H, W) or (C_in, H, W) tensor or array_like
        The input. An unbatched input gives an unbatched output.
    weight : (C_in, C_out, kh, kw) tensor or array_like
        The kernels, in ``torch.nn.ConvTranspose2d.weight``'s layout (in, out, ...) — the reverse
        of :func:`conv2d`'s.
    bias : (C_out,) tensor or array_like, optional
        Added to every pixel of each output channel.
    stride : int or (int, int), optional
        Distance between the kernel copies of neighbouring input elements (the upsampling factor).
    padding : int or (int, int), optional
        Rows (columns) cropped from *each* side of the result.
    output_padding : int or (int, int), optional
        Rows (columns) given back at the bottom (right) after cropping; smaller than ``stride``
        or ``dilation``.
    dilation : int or (int, int), optional
        Spacing between kernel taps.

    Returns
    -------
    y : (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
        With sizes from :func:`conv_transpose_output_size`. Every input element multiplies the
        whole kernel, and the copy is added at the position given by the stride (the recipe of the
        lecture, unit 04; see also [2]_):

        .. math::

            z[n, o, \, r s_h + u d_h, \, c s_w + v d_w] \mathrel{+}=
                x[n, i, r, c] \; w[i, o, u, v]
            \quad \text{for all } i, r, c, u, v,

        on a zero canvas :math:`z` of :math:`((H-1)s_h + d_h(k_h-1) + 1 + o_h)` rows (and the same
        for columns, the last :math:`o_h` rows staying 0). Then
        :math:`y = z[\,p_h : p_h + H_\text{out}, \; p_w : p_w + W_\text{out}\,] + b`: ``padding``
        is cropped from each side, and ``output_padding`` keeps that many more rows (columns) at the
        bottom (right) — rows that the crop would have removed, or zeros past the canvas.

        A tensor ``x`` gives a tensor of its dtype and device; anything else gives a numpy array.

    Raises
    ------
    SegeduInputError
        If ``x`` is not 3-D or 4-D (e.g. a 2-D image without batch and channel axes), ``weight`` is
        not 4-D, the channels of ``x`` and ``weight`` disagree (e.g. a conv2d weight was passed),
        ``bias`` has the wrong shape, ``padding`` or ``output_padding`` is negative,
        ``output_padding`` is not smaller than ``stride`` or ``dilation``, or the padding crops
        the whole output.
    SegeduTypeError
        If ``x``, ``weight`` and ``bias`` have different dtypes, or a tensor holds integers.

    Notes
    -----
    Why "transpose": :func:`conv2d` is a linear map :math:`x \mapsto Cx` (see
    :func:`conv_matrix`), and with the *same* weight tensor, stride, padding and dilation this
    function computes :math:`y \mapsto C^\top y` [1]_. It is the backward pass (the gradient) of
    :func:`conv2d` with respect to its input, which is how FCN [3]_ and U-Net learn their
    upsampling. It is not the inverse of :func:`conv2d`; it only restores the shape.

    The implementation is "col2im": one matrix product makes, for every input element, its copy
    of the whole :math:`(C_\text{out}, k_h, k_w)` kernel; then a loop over the :math:`k_h k_w`
    kernel offsets adds each tap's values into a strided slice of the canvas. See
    :func:`conv_transpose2d_loops` for the same computation with a loop over every input element.

    References
    ----------
    .. [1] Dumoulin, V. and Visin, F. "A guide to convolution arithmetic for deep learning."
           arXiv:1603.07285, 2016, chapter 4.
    .. [2] Zeiler, M. D., Krishnan, D., Taylor, G. W. and Fergus, R. "Deconvolutional Networks."
           CVPR 2010: 2528--2535. :DOI:`10.1109/CVPR.2010.5539957`
    .. [3] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
           Segmentation." CVPR 2015: 3431--3440. :DOI:`10.1109/CVPR.2015.7298965`

    Examples
    --------
    Stride 1: the copies of the kernel overlap and are summed. The first input element, 2, puts
    :math:`2B = [[2, 4], [6, 8]]` in the top-left corner.

    >>> import numpy as np
    >>> A = np.array([[2.0, 1.0], [0.0, 3.0]])
    >>> B = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> conv_transpose2d(A[None, None], B[None, None])[0, 0]
    array([[ 2.,  5.,  2.],
           [ 6., 14., 10.],
           [ 0.,  9., 12.]])

    Cropping one pixel from each side with ``padding=1`` keeps the centre:

    >>> conv_transpose2d(A[None, None], B[None, None], padding=1)[0, 0]
    array([[14.]])

    Torch tensors stay torch tensors:

    >>> import torch
    >>> conv_transpose2d(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), stride=2).shape
    torch.Size([1, 1, 4, 4])
    """
    x_t, w, b, finish = _prepare(x, weight, bias)
    x_t, unbatched = _check_input(x_t, "conv_transpose2d")
    _check_weight(w, "conv_transpose2d", transpose=True)
    _check_channels(x_t, w, "conv_transpose2d", transpose=True, unbatched=unbatched)
    c_in, c_out, kh, kw = w.shape
    _check_bias(b, c_out, "conv_transpose2d")
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    ph, pw = _pair(padding, "padding", 0)
    oh, ow = _check_output_padding(output_padding, (sh, sw), (dh, dw))

    n, _, h, wd = x_t.shape
    h_out = _transpose_size(h, kh, sh, ph, oh, dh, "rows (H)")
    w_out = _transpose_size(wd, kw, sw, pw, ow, dw, "columns (W)")

    # every input element times the whole kernel: copies[n, o, u, v, r, c] = sum_i x[n,i,r,c] w[i,o,u,v]
    copies = w.reshape(c_in, c_out * kh * kw).transpose(0, 1) @ x_t.reshape(n, c_in, h * wd)
    copies = copies.reshape(n, c_out, kh, kw, h, wd)

    # place the copies `stride` apart and sum the overlaps: tap (u, v) of the copy made by input
    # element (r, c) lands on canvas pixel (r*s_h + u*d_h, c*s_w + v*d_w)
    full_h = (h - 1) * sh + dh * (kh - 1) + 1
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1
    canvas = x_t.new_zeros((n, c_out, full_h + oh, full_w + ow))  # output_padding: extra zeros
    for u in range(kh):
        for v in range(kw):
            canvas[:, :, u * dh : u * dh + (h - 1) * sh + 1 : sh, v * dw : v * dw + (wd - 1) * sw + 1 : sw] += copies[
                :, :, u, v
            ]

    out = canvas[:, :, ph : ph + h_out, pw : pw + w_out]  # crop `padding` from each side
    out = out + b.reshape(1, c_out, 1, 1) if b is not None else out.contiguous()
    return finish(out[0] if unbatched else out)


# --------------------------------------------------------------------------------------------------
# Slow references: explicit loops over the pixels of one sample
# --------------------------------------------------------------------------------------------------


def _loop_operands(x, weight, bias, fn: str, transpose: bool):
    x_t, w, b, finish = _prepare(x, weight, bias)
    x4, _ = _check_input(x_t, fn, batched_only=True)
    _check_weight(w, fn, transpose=transpose)
    _check_channels(x4, w, fn, transpose=transpose, unbatched=True)
    _check_bias(b, w.shape[1] if transpose else w.shape[0], fn)

    def to_numpy(t):
        return None if t is None else t.detach().cpu().numpy()

    def back(out: np.ndarray):
        out_t = torch.from_numpy(out).to(x_t.device)
        return finish(out_t)

    return to_numpy(x_t), to_numpy(w), to_numpy(b), back


def conv2d_loops(x, weight, bias=None, stride=1, padding=0, dilation=1):
    r"""Slow reference for :func:`conv2d` on one sample, with a Python loop over every pixel.

    Parameters
    ----------
    x : (C_in, H, W) tensor or array_like
        One sample (no batch axis).
    weight : (C_out, C_in, kh, kw) tensor or array_like
    bias : (C_out,) tensor or array_like, optional
    stride, padding, dilation :
        As in :func:`conv2d`.

    Returns
    -------
    y : (C_out, H_out, W_out)
        Equal to ``conv2d(x, weight, bias, stride, padding, dilation)``, of the same kind (tensor
        or numpy array) and dtype.

    Notes
    -----
    The six nested loops are the formula of :func:`conv2d` read aloud: for every output channel
    and output pixel, slide to the window's top-left corner :math:`(r s_h, c s_w)` in the padded
    input, and add up weight times input over the input channels and kernel taps. It does
    :math:`C_\text{out} H_\text{out} W_\text{out} C_\text{in} k_h k_w` Python multiply-adds, so
    keep the inputs small.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 3, 3)
    >>> w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    >>> conv2d_loops(x, w)
    array([[[-4., -4.],
            [-4., -4.]]])
    """
    x, w, b, back = _loop_operands(x, weight, bias, "conv2d_loops", transpose=False)
    c_out, c_in, kh, kw = w.shape
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    top, bottom, left, right = _conv_padding(padding, (kh, kw), (sh, sw), (dh, dw))
    _, h, wd = x.shape
    h_out = _conv_size(h, kh, sh, top + bottom, dh, "rows (H)")
    w_out = _conv_size(wd, kw, sw, left + right, dw, "columns (W)")

    # zero padding
    xp = np.zeros((c_in, h + top + bottom, wd + left + right), dtype=x.dtype)
    xp[:, top : top + h, left : left + wd] = x

    y = np.zeros((c_out, h_out, w_out), dtype=x.dtype)
    for o in range(c_out):  # every output channel ...
        for r in range(h_out):  # ... and every output pixel
            for c in range(w_out):
                total = 0.0 if b is None else b[o]
                for i in range(c_in):  # sum over the input channels and the kernel taps
                    for u in range(kh):
                        for v in range(kw):
                            total += w[o, i, u, v] * xp[i, r * sh + u * dh, c * sw + v * dw]
                y[o, r, c] = total
    return back(y)


def conv_transpose2d_loops(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    r"""Slow reference for :func:`conv_transpose2d` on one sample: the lecture's recipe, as loops.

    Parameters
    ----------
    x : (C_in, H, W) tensor or array_like
        One sample (no batch axis).
    weight : (C_in, C_out, kh, kw) tensor or array_like
    bias : (C_out,) tensor or array_like, optional
    stride, padding, output_padding, dilation :
        As in :func:`conv_transpose2d`.

    Returns
    -------
    y : (C_out, H_out, W_out)
        Equal to ``conv_transpose2d(x, weight, bias, stride, padding, output_padding, dilation)``,
        of the same kind (tensor or numpy array) and dtype.

    Notes
    -----
    The recipe of the lecture (unit 04), step by step:

    1. visit every input element :math:`x[i, r, c]`;
    2. multiply it by the *whole* kernel :math:`w[i, o]` of each output channel :math:`o`;
    3. add the product to the canvas with its top-left corner at :math:`(r s_h, c s_w)`, so that
       copies overlap (and are summed) when the stride is smaller than the kernel; with dilation
       the kernel's taps are :math:`d` pixels apart, hence the step in the slice;
    4. crop ``padding`` from each side of the canvas, keeping ``output_padding`` extra rows
       (columns) at the bottom (right), and add the bias.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[[2.0, 1.0], [0.0, 3.0]]])      # (C_in, H, W) = (1, 2, 2)
    >>> B = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])    # (C_in, C_out, kh, kw) = (1, 1, 2, 2)
    >>> conv_transpose2d_loops(A, B, stride=2)[0]
    array([[ 2.,  4.,  1.,  2.],
           [ 6.,  8.,  3.,  4.],
           [ 0.,  0.,  3.,  6.],
           [ 0.,  0.,  9., 12.]])
    """
    x, w, b, back = _loop_operands(x, weight, bias, "conv_transpose2d_loops", transpose=True)
    c_in, c_out, kh, kw = w.shape
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    ph, pw = _pair(padding, "padding", 0)
    oh, ow = _check_output_padding(output_padding, (sh, sw), (dh, dw))
    _, h, wd = x.shape
    h_out = _transpose_size(h, kh, sh, ph, oh, dh, "rows (H)")
    w_out = _transpose_size(wd, kw, sw, pw, ow, dw, "columns (W)")

    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # pixels covered by one (dilated) kernel
    canvas = np.zeros((c_out, (h - 1) * sh + span_h + oh, (wd - 1) * sw + span_w + ow), dtype=x.dtype)
    for i in range(c_in):  # 1. every input element ...
        for r in range(h):
            for c in range(wd):
                for o in range(c_out):
                    # 2. ... times the whole kernel, 3. placed by the stride, overlaps summed
                    top, left = r * sh, c * sw
                    canvas[o, top : top + span_h : dh, left : left + span_w : dw] += x[i, r, c] * w[i, o]
    # 4. crop `padding` from each side (output_padding rows stay at the bottom), add the bias
    y = canvas[:, ph : ph + h_out, pw : pw + w_out].copy()
    if b is not None:
        y += b[:, None, None]
    return back(y)


# --------------------------------------------------------------------------------------------------
# The matrix view
# --------------------------------------------------------------------------------------------------


def conv_matrix(input_shape, weight, stride=1, padding=0, dilation=1):
    r"""The dense matrix :math:`C` of :func:`conv2d`: ``conv2d(x).ravel() == C @ x.ravel()``.

    Parameters
    ----------
    input_shape : (H, W) or (C_in, H, W) tuple of ints
        Shape of one input sample (no batch axis).
    weight : (kh, kw) or (C_out, C_in, kh, kw) tensor or array_like
        One kernel for a single-channel input, or :func:`conv2d`'s weight.
    stride, padding, dilation :
        As in :func:`conv2d` (no bias: the convolution without bias is linear).

    Returns
    -------
    C : (C_out·H_out·W_out, C_in·H·W) ndarray or tensor
        Row :math:`(o, r, c)` holds the weights that output pixel :math:`(o, r, c)` gives to each
        input pixel (C order, as ``ravel``), so that

        .. math::

            \operatorname{vec}(\texttt{conv2d}(x, w)) = C \operatorname{vec}(x), \qquad
            \operatorname{vec}(\texttt{conv\_transpose2d}(y, w)) = C^\top \operatorname{vec}(y),

        the second with the *same* weight tensor, stride, padding and dilation, and
        ``output_padding`` chosen to give back the size :math:`H` (the remainder
        :math:`(H + 2p - d(k-1) - 1) \bmod s`). This is why the transpose convolution has its
        name [1]_. A tensor weight gives a tensor (on its device); anything else gives a numpy
        array. The dtype is the weight's (float64 for integers).

    Raises
    ------
    SegeduInputError
        If ``input_shape`` or ``weight`` has the wrong length or ndim, their channels disagree, or
        the kernel is larger than the padded input.

    Notes
    -----
    :math:`C` is mostly zeros: each row holds at most :math:`C_\text{in} k_h k_w` weights. Building
    it densely is only for teaching and testing; it has :math:`(C_\text{out}H_\text{out}W_\text{out})
    \times (C_\text{in}HW)` entries.

    References
    ----------
    .. [1] Dumoulin, V. and Visin, F. "A guide to convolution arithmetic for deep learning."
           arXiv:1603.07285, 2016, section 4.1.

    Examples
    --------
    A 2×2 kernel on a 3×3 input: each of the 4 rows places the kernel over one 2×2 window of the
    9 input pixels.

    >>> import numpy as np
    >>> B = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> C = conv_matrix((3, 3), B)
    >>> C
    array([[1., 2., 0., 3., 4., 0., 0., 0., 0.],
           [0., 1., 2., 0., 3., 4., 0., 0., 0.],
           [0., 0., 0., 1., 2., 0., 3., 4., 0.],
           [0., 0., 0., 0., 1., 2., 0., 3., 4.]])
    >>> x = np.arange(9.0).reshape(3, 3)
    >>> np.allclose(C @ x.ravel(), conv2d(x[None, None], B[None, None]).ravel())
    True

    Multiplying by :math:`C^\top` is the transpose convolution with the same kernel:

    >>> y = np.array([[2.0, 1.0], [0.0, 3.0]])
    >>> (C.T @ y.ravel()).reshape(3, 3)
    array([[ 2.,  5.,  2.],
           [ 6., 14., 10.],
           [ 0.,  9., 12.]])
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (2, 3):
        raise SegeduInputError(
            f"input_shape must be (H, W) or (C_in, H, W), the shape of one sample without the batch "
            f"axis, but got {input_shape!r}."
        )
    shape = tuple(check_positive_int(s, "input_shape", 1) for s in input_shape)
    if len(shape) == 2:
        shape = (1,) + shape
    c_in, h, wd = shape

    is_tensor = isinstance(weight, torch.Tensor)
    w = weight.detach() if is_tensor else as_array(weight, "weight")
    if w.ndim == 2:
        w = w[None, None]
    if w.ndim != 4:
        raise SegeduInputError(
            f"conv_matrix: weight must be one (kh, kw) kernel or a 4-D (C_out, C_in, kh, kw) weight, "
            f"but got {w.ndim}-D with shape {tuple(w.shape)}."
        )
    if w.shape[1] != c_in:
        raise SegeduInputError(
            f"conv_matrix: input_shape {tuple(input_shape)} has C_in = {c_in} channels, but weight of "
            f"shape {tuple(w.shape)}, read as (C_out, C_in, kh, kw), expects C_in = {w.shape[1]}."
        )
    device = w.device if is_tensor else None
    if is_tensor:
        w = w.cpu().numpy()
    dtype = w.dtype if np.issubdtype(w.dtype, np.floating) else np.float64
    c_out, _, kh, kw = w.shape
    sh, sw = _pair(stride, "stride", 1)
    dh, dw = _pair(dilation, "dilation", 1)
    top, bottom, left, right = _conv_padding(padding, (kh, kw), (sh, sw), (dh, dw))
    h_out = _conv_size(h, kh, sh, top + bottom, dh, "rows (H)")
    w_out = _conv_size(wd, kw, sw, left + right, dw, "columns (W)")

    C = np.zeros((c_out * h_out * w_out, c_in * h * wd), dtype=dtype)
    r, c = np.meshgrid(np.arange(h_out), np.arange(w_out), indexing="ij")  # every output pixel
    out_pixel = (r * w_out + c).ravel()
    for o in range(c_out):
        for i in range(c_in):
            for u in range(kh):
                for v in range(kw):
                    # the input pixel under tap (u, v) for every output pixel (padding is zeros)
                    rows = (r * sh - top + u * dh).ravel()
                    cols = (c * sw - left + v * dw).ravel()
                    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < wd)
                    C[o * h_out * w_out + out_pixel[inside], i * h * wd + rows[inside] * wd + cols[inside]] += w[
                        o, i, u, v
                    ]
    return torch.from_numpy(C).to(device) if is_tensor else C


# --------------------------------------------------------------------------------------------------
# Max pooling that remembers where each maximum came from, and unpooling that puts values back
# (unit 07, SegNet)
# --------------------------------------------------------------------------------------------------


def _pool_operand(value, name: str, fn: str) -> tuple[torch.Tensor, bool]:
    """``value`` as a tensor (numpy arrays and lists are converted) and whether it was a tensor."""
    if isinstance(value, torch.Tensor):
        return value, True
    arr = as_array(value, name)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise SegeduTypeError(
            f"{fn}: {name} must hold real numbers, but its dtype is {arr.dtype}. "
            f"Convert it with {name}.astype(np.float64)."
        )
    arr = np.require(arr, dtype=arr.dtype.newbyteorder("="), requirements=["C", "A", "W"])
    return torch.from_numpy(arr), False


def _check_pool_values(x: torch.Tensor, fn: str) -> None:
    if x.dtype == torch.bool or x.is_complex():
        kind = "boolean" if x.dtype == torch.bool else "complex"
        raise SegeduTypeError(
            f"{fn}: x has {kind} dtype {x.dtype}, but pooling compares real numbers. "
            f"Convert it with x.float() (or x.astype(np.float32) for a numpy array)."
        )


def _pool_window(kernel_size, stride) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(kh, kw)`` and ``(sh, sw)``; ``stride=None`` means ``stride = kernel_size``, as in torch."""
    kernel = _pair(kernel_size, "kernel_size", 1)
    step = kernel if stride is None else _pair(stride, "stride", 1)
    return kernel, step


def _pool_size(n: int, k: int, s: int, axis: str, fn: str) -> int:
    """floor((n - k) / s) + 1 windows (no padding, no ceil mode), refusing a window wider than x."""
    if n < k:
        raise SegeduInputError(
            f"{fn}: the {k}-pixel pooling window does not fit along the {axis}, which has only {n} "
            f"pixel(s). Use a kernel_size of at most {n} there, or a larger input."
        )
    return (n - k) // s + 1


def max_pool2d_with_indices(x, kernel_size, stride=None):
    r"""Max pooling that also returns where each maximum was, like ``F.max_pool2d(..., return_indices=True)``.

    Parameters
    ----------
    x : (N, C, H, W) or (C, H, W) tensor or array_like
        The input; real numbers (floats or integers, as torch allows). An unbatched input gives
        unbatched outputs.
    kernel_size : int or (int, int)
        The window :math:`(k_h, k_w)`.
    stride : int or (int, int), optional
        The step between windows, :math:`(s_h, s_w)`; by default ``kernel_size`` (windows that
        tile the input without overlapping), as in torch. No padding, no dilation, floor mode.

    Returns
    -------
    values : (N, C, H_out, W_out) or (C, H_out, W_out)
        .. math::

            y[n, c, r, q] = \max_{0 \le u < k_h,\ 0 \le v < k_w} x[n, c, \, r s_h + u, \, q s_w + v],
            \qquad H_\text{out} = \left\lfloor \frac{H - k_h}{s_h} \right\rfloor + 1

        (and the same for :math:`W_\text{out}`), of ``x``'s dtype.
    indices : int64, same shape as ``values``
        Where the maximum was, *flattened per channel plane*: the maximum at row :math:`i`,
        column :math:`j` of the :math:`H \times W` plane gets the index :math:`i W + j`, whatever
        the sample and channel (torch's convention, which :func:`max_unpool2d` reads).

        Ties go to the *first* maximum in row-major window order (the smallest :math:`u`, then
        the smallest :math:`v`), as torch's CPU kernel, which replaces the running maximum only
        when a value is strictly greater (or NaN: a window with a NaN gives NaN, at the last NaN).

    A tensor ``x`` gives tensors on its device (``values`` carries gradients); anything else gives
    numpy arrays.

    Raises
    ------
    SegeduInputError
        If ``x`` is not 3-D or 4-D, ``kernel_size`` or ``stride`` is below 1, or the window is
        larger than the input.
    SegeduTypeError
        If ``x`` is boolean or complex, or ``kernel_size`` / ``stride`` is not an int or a pair.

    Notes
    -----
    SegNet [1]_ keeps these indices from each encoder stage and gives them to the matching decoder
    stage, which puts each value back where its maximum came from (:func:`max_unpool2d`): the
    decoder recovers *where* the boundaries were without storing the encoder's feature maps, as
    U-Net does [2]_. A 2×2 window has 4 positions, so an index needs only 2 bits; torch stores
    64.

    The implementation loops over the :math:`k_h k_w` window offsets :math:`(u, v)` in row-major
    order; the strided slice for offset :math:`(u, v)` holds that window element of every window,
    and each is compared with the running maximum. :func:`max_pool2d_with_indices_loops` does the
    same with a loop over every window.

    References
    ----------
    .. [1] Badrinarayanan, V., Kendall, A. and Cipolla, R. "SegNet: A Deep Convolutional
           Encoder-Decoder Architecture for Image Segmentation." IEEE TPAMI 39(12), 2017.
           arXiv:1511.00561
    .. [2] Ronneberger, O., Fischer, P. and Brox, T. "U-Net: Convolutional Networks for Biomedical
           Image Segmentation." MICCAI 2015. arXiv:1505.04597

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0, 2.0, 0.0],
    ...               [3.0, 4.0, 8.0, 1.0],
    ...               [0.0, 2.0, 3.0, 3.0],
    ...               [9.0, 1.0, 1.0, 2.0]])
    >>> values, indices = max_pool2d_with_indices(x[None, None], 2)
    >>> values[0, 0]
    array([[5., 8.],
           [9., 3.]])
    >>> indices[0, 0]  # 5 is at (0, 1) -> 0*4 + 1; 8 at (1, 2) -> 6; 9 at (3, 0) -> 12; 3 at (2, 2)
    array([[ 1,  6],
           [12, 10]])

    The two 3s of the last window tie, and the first in row-major order wins (index 10, not 11).
    """
    fn = "max_pool2d_with_indices"
    x_t, as_tensor = _pool_operand(x, "x", fn)
    _check_pool_values(x_t, fn)
    x4, unbatched = _check_input(x_t, fn)
    (kh, kw), (sh, sw) = _pool_window(kernel_size, stride)
    n, c, h, w = x4.shape
    h_out = _pool_size(h, kh, sh, "rows (H)", fn)
    w_out = _pool_size(w, kw, sw, "columns (W)", fn)

    rows = torch.arange(h_out, device=x4.device).mul(sh).view(h_out, 1)  # top row of each window
    cols = torch.arange(w_out, device=x4.device).mul(sw).view(1, w_out)  # left column of each window
    best = indices = None
    for u in range(kh):  # row-major order: a later offset wins only if strictly greater (or NaN)
        for v in range(kw):
            candidate = x4[:, :, u : u + (h_out - 1) * sh + 1 : sh, v : v + (w_out - 1) * sw + 1 : sw]
            where = ((rows + u) * w + (cols + v)).expand(n, c, h_out, w_out)
            if best is None:
                best, indices = candidate, where
                continue
            better = (candidate > best) | torch.isnan(candidate) if candidate.is_floating_point() else candidate > best
            best = torch.where(better, candidate, best)
            indices = torch.where(better, where, indices)
    values, indices = best.contiguous(), indices.contiguous()
    if unbatched:
        values, indices = values[0], indices[0]
    if as_tensor:
        return values, indices
    return values.detach().cpu().numpy(), indices.cpu().numpy()


def max_pool2d_with_indices_loops(x, kernel_size, stride=None):
    r"""Slow reference for :func:`max_pool2d_with_indices` on one sample, with a loop over every window.

    Parameters
    ----------
    x : (C, H, W) tensor or array_like
        One sample (no batch axis).
    kernel_size, stride :
        As in :func:`max_pool2d_with_indices`.

    Returns
    -------
    values, indices : (C, H_out, W_out)
        Equal to ``max_pool2d_with_indices(x, kernel_size, stride)``, of the same kind (tensor or
        numpy array); ``indices`` is int64.

    Notes
    -----
    For every channel and window: visit the window's pixels in row-major order, keep the first
    largest value (a later one replaces it only if it is strictly greater, or NaN, as in torch),
    and record its position :math:`i W + j` in the channel's :math:`H \times W` plane.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0, 5.0, 2.0, 0.0],
    ...                [3.0, 4.0, 8.0, 1.0]]])
    >>> values, indices = max_pool2d_with_indices_loops(x, 2)
    >>> values, indices
    (array([[[5., 8.]]]), array([[[1, 6]]]))
    """
    fn = "max_pool2d_with_indices_loops"
    x_t, as_tensor = _pool_operand(x, "x", fn)
    _check_pool_values(x_t, fn)
    _check_input(x_t, fn, batched_only=True)
    (kh, kw), (sh, sw) = _pool_window(kernel_size, stride)
    c, h, w = x_t.shape
    h_out = _pool_size(h, kh, sh, "rows (H)", fn)
    w_out = _pool_size(w, kw, sw, "columns (W)", fn)
    xs = x_t.detach().cpu().numpy()

    values = np.zeros((c, h_out, w_out), dtype=xs.dtype)
    indices = np.zeros((c, h_out, w_out), dtype=np.int64)
    for ch in range(c):
        for r in range(h_out):
            for q in range(w_out):
                best, where = None, None
                for i in range(r * sh, r * sh + kh):  # the window's pixels, row by row
                    for j in range(q * sw, q * sw + kw):
                        value = xs[ch, i, j]
                        if best is None or value > best or value != value:  # value != value: NaN
                            best, where = value, i * w + j  # flattened in the channel's H×W plane
                values[ch, r, q], indices[ch, r, q] = best, where
    if as_tensor:
        return torch.from_numpy(values).to(x_t.device), torch.from_numpy(indices).to(x_t.device)
    return values, indices


def _unpool_operands(x, indices, fn: str, batched_only: bool = False):
    """Tensors ``x`` and int64 ``indices`` (4-D views), checked against each other."""
    x_t, as_tensor = _pool_operand(x, "x", fn)
    _check_pool_values(x_t, fn)
    idx, _ = _pool_operand(indices, "indices", fn)
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
        raise SegeduTypeError(
            f"{fn}: indices must be integers (positions i*W + j in each H×W plane, as returned by "
            f"max_pool2d_with_indices), but their dtype is {idx.dtype}. If they are whole numbers, convert "
            f"them with indices.long() (or indices.astype(np.int64) for a numpy array)."
        )
    x4, unbatched = _check_input(x_t, fn, batched_only=batched_only)
    if tuple(idx.shape) != tuple(x_t.shape):
        raise SegeduInputError(
            f"{fn}: indices must have the shape of x, one index per pooled value, but x is "
            f"{tuple(x_t.shape)} and indices is {tuple(idx.shape)}. Pass the indices returned by the "
            f"max_pool2d_with_indices call that produced x (the same encoder stage)."
        )
    if idx.device != x_t.device:
        raise SegeduInputError(
            f"{fn}: x and indices must be on the same device, but x is on {x_t.device} and indices "
            f"on {idx.device}. Move them with indices.to(x.device)."
        )
    idx4 = idx.unsqueeze(0) if unbatched else idx
    return x4, idx4.to(torch.int64), unbatched, as_tensor


def _unpool_size(x_shape, kernel, step, output_size, fn: str) -> tuple[int, int]:
    """The output (H, W): the default (H_in-1)·s + k, or ``output_size`` within torch's range."""
    default = tuple((n - 1) * s + k for n, s, k in zip(x_shape[-2:], step, kernel))
    if output_size is None:
        return default
    if isinstance(output_size, torch.Size):
        output_size = tuple(output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) not in (2, len(x_shape), 4):
        raise SegeduInputError(
            f"{fn}: output_size must be (H, W) or x's full shape with the size replaced, e.g. the shape "
            f"of the tensor that was pooled (x_before_pooling.shape), but got {output_size!r}."
        )
    size = tuple(check_positive_int(v, "output_size", 1) for v in output_size[-2:])
    for axis, got, d, s in zip(("rows (H)", "columns (W)"), size, default, step):
        if not d - s < got < d + s:
            raise SegeduInputError(
                f"{fn}: output_size {got} along the {axis} is not one of the sizes that pooling with "
                f"stride {s} maps to {x_shape[-2 if axis.startswith('rows') else -1]}: it must lie strictly "
                f"between {d - s} and {d + s} (torch's rule). Pass the size of the tensor before pooling."
            )
    return size


def _check_index_range(idx: torch.Tensor, plane: int, size: tuple[int, int], fn: str) -> None:
    if idx.numel() == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= plane:
        bad = lo if lo < 0 else hi
        raise SegeduInputError(
            f"{fn}: indices hold the position {bad}, but an output plane of {size[0]}×{size[1]} has positions "
            f"0..{plane - 1} (i*W + j). Pass output_size = the (H, W) of the tensor that was pooled, so that "
            f"the indices of max_pool2d_with_indices fit, and check that they come from the matching stage."
        )


def max_unpool2d(x, indices, kernel_size, stride=None, output_size=None):
    r"""Sparse upsampling: put each value back where its maximum came from, like ``F.max_unpool2d``.

    Parameters
    ----------
    x : (N, C, H, W) or (C, H, W) tensor or array_like
        The values to place (in SegNet, the decoder's feature map).
    indices : integer, same shape as ``x``
        Positions :math:`i W_\text{out} + j` in each output channel plane, as returned by
        :func:`max_pool2d_with_indices` (any integer dtype; used as int64).
    kernel_size, stride : int or (int, int)
        Those of the pooling (``stride`` defaults to ``kernel_size``); they give the default size.
    output_size : (H, W) or the full shape, optional
        The output's size. By default :math:`((H - 1) s_h + k_h, (W - 1) s_w + k_w)`; an odd size
        that pooling rounded down must be given, e.g. the shape of the tensor before pooling. As in
        torch, each must lie strictly between the default minus and plus the stride.

    Returns
    -------
    y : (N, C, H_out, W_out) or (C, H_out, W_out)
        Zeros, except

        .. math::

            y[n, c]_{\text{flat}}\bigl[\, \text{indices}[n, c, r, q] \,\bigr] = x[n, c, r, q]

        for every pooled position :math:`(r, q)`, where :math:`y[n, c]_\text{flat}` is the
        :math:`H_\text{out} W_\text{out}` plane flattened row by row. Of ``x``'s dtype and kind
        (tensor on its device, with gradients; numpy array otherwise). When windows overlap
        (``stride < kernel_size``) two values can share an index; after max pooling they are
        equal, so it does not matter which is written.

    Raises
    ------
    SegeduInputError
        If ``x`` is not 3-D or 4-D, ``indices`` and ``x`` differ in shape or device, an index lies
        outside the output plane, or ``output_size`` is malformed or out of range.
    SegeduTypeError
        If ``indices`` is not an integer array, or ``x`` is boolean or complex.

    Notes
    -----
    It is not the inverse of pooling: the values that were not the maximum are gone, and the
    output is zero there. SegNet [1]_ follows it with trainable convolutions that fill the zeros
    in ("densify" the sparse map). :func:`max_unpool2d_loops` is the same with one loop over every
    pooled value; this function does one ``scatter`` per sample and channel plane.

    References
    ----------
    .. [1] Badrinarayanan, V., Kendall, A. and Cipolla, R. "SegNet: A Deep Convolutional
           Encoder-Decoder Architecture for Image Segmentation." IEEE TPAMI 39(12), 2017.
           arXiv:1511.00561

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0, 2.0, 0.0],
    ...               [3.0, 4.0, 8.0, 1.0],
    ...               [0.0, 2.0, 3.0, 3.0],
    ...               [9.0, 1.0, 1.0, 2.0]])
    >>> values, indices = max_pool2d_with_indices(x[None, None], 2)
    >>> max_unpool2d(values, indices, 2)[0, 0]
    array([[0., 5., 0., 0.],
           [0., 0., 8., 0.],
           [0., 0., 3., 0.],
           [9., 0., 0., 0.]])

    A 5×5 input pools to 2×2, which unpools to 4×4 by default; ``output_size`` gives back 5×5:

    >>> import torch
    >>> values, indices = max_pool2d_with_indices(torch.rand(1, 3, 5, 5), 2)
    >>> tuple(max_unpool2d(values, indices, 2, output_size=(5, 5)).shape)
    (1, 3, 5, 5)
    """
    if has_torch_function_variadic(x, indices):  # visible to TorchFunctionModes, as F.max_unpool2d is
        return handle_torch_function(max_unpool2d, (x, indices), x, indices, kernel_size, stride=stride,
                                     output_size=output_size)
    fn = "max_unpool2d"
    x4, idx4, unbatched, as_tensor = _unpool_operands(x, indices, fn)
    (kh, kw), (sh, sw) = _pool_window(kernel_size, stride)
    x_shape = tuple(x4.shape[1:] if unbatched else x4.shape)
    h_out, w_out = _unpool_size(x_shape, (kh, kw), (sh, sw), output_size, fn)
    _check_index_range(idx4, h_out * w_out, (h_out, w_out), fn)
    n, c = x4.shape[:2]
    flat = x4.new_zeros((n, c, h_out * w_out)).scatter(2, idx4.reshape(n, c, -1), x4.reshape(n, c, -1))
    out = flat.reshape(n, c, h_out, w_out)
    if unbatched:
        out = out[0]
    return out if as_tensor else out.detach().cpu().numpy()


def max_unpool2d_loops(x, indices, kernel_size, stride=None, output_size=None):
    r"""Slow reference for :func:`max_unpool2d` on one sample: one loop over every pooled value.

    Parameters
    ----------
    x : (C, H, W) tensor or array_like
        One sample (no batch axis).
    indices, kernel_size, stride, output_size :
        As in :func:`max_unpool2d`.

    Returns
    -------
    y : (C, H_out, W_out)
        Equal to ``max_unpool2d(x, indices, kernel_size, stride, output_size)``, of the same kind.

    Notes
    -----
    Start from a zero canvas; for every channel and pooled position, turn the flat index back into
    a row and a column, :math:`(i, j) = (\lfloor \text{index} / W_\text{out} \rfloor,\
    \text{index} \bmod W_\text{out})`, and write the value there.

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([[[5.0, 8.0]]])
    >>> indices = np.array([[[1, 6]]])
    >>> max_unpool2d_loops(values, indices, 2)
    array([[[0., 5., 0., 0.],
            [0., 0., 8., 0.]]])
    """
    fn = "max_unpool2d_loops"
    x4, idx4, _, as_tensor = _unpool_operands(x, indices, fn, batched_only=True)
    (kh, kw), (sh, sw) = _pool_window(kernel_size, stride)
    h_out, w_out = _unpool_size(tuple(x4.shape[1:]), (kh, kw), (sh, sw), output_size, fn)
    _check_index_range(idx4, h_out * w_out, (h_out, w_out), fn)
    values = x4[0].detach().cpu().numpy()
    where = idx4[0].cpu().numpy()
    c, h, w = values.shape

    canvas = np.zeros((c, h_out, w_out), dtype=values.dtype)
    for ch in range(c):
        for r in range(h):
            for q in range(w):
                i, j = divmod(int(where[ch, r, q]), w_out)  # flat index -> (row, column) of the plane
                canvas[ch, i, j] = values[ch, r, q]
    return torch.from_numpy(canvas).to(x4.device) if as_tensor else canvas


# --------------------------------------------------------------------------------------------------
# Receptive fields (unit 08)
# --------------------------------------------------------------------------------------------------


def _check_layer(layer, index: int) -> tuple[int, int, int]:
    """One ``(kernel_size, stride, dilation)`` triple of positive ints, or an error that shows the fix."""
    where = f"layers[{index}]"
    if isinstance(layer, numbers.Integral) and not isinstance(layer, bool):
        raise SegeduTypeError(
            f"{where} must be a (kernel_size, stride, dilation) triple, but got the int {layer}. Pass one triple "
            f"per layer, e.g. [(3, 1, 1), (3, 2, 1)]; a single layer still goes in a list: [({layer}, 1, 1)]."
        )
    if not isinstance(layer, (tuple, list)):
        raise SegeduTypeError(
            f"{where} must be a (kernel_size, stride, dilation) triple of ints, e.g. (3, 1, 2), but got {layer!r} "
            f"({type(layer).__name__})."
        )
    if len(layer) != 3:
        fix = ""
        if len(layer) == 2:
            fix = f" Add the dilation (1 for an ordinary convolution or pooling): {(*tuple(layer), 1)!r}."
        raise SegeduInputError(
            f"{where} must have 3 entries (kernel_size, stride, dilation), but got {tuple(layer)!r} with "
            f"{len(layer)}.{fix}"
        )
    entries = []
    for i, (value, what) in enumerate(zip(layer, ("kernel_size", "stride", "dilation"))):
        name = f"{where}[{i}] ({what})"
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value < 1:
            # 0 is how "none" is often written; for a stride or a dilation, none is 1
            note = {"stride": " (1 for no stride)", "dilation": " (1 for no dilation)"}.get(what, "")
            raise SegeduInputError(f"{name} must be at least 1{note}, but got {value}.")
        entries.append(check_positive_int(value, name))
    k, s, d = entries
    return k, s, d


def receptive_field(layers):
    r"""Receptive field size and jump of a stack of convolution or pooling layers.

    Parameters
    ----------
    layers : sequence of (kernel_size, stride, dilation)
        The layers from the input to the output, each a triple of positive ints. Padding does not
        change the receptive field (it only shifts where it lies), so it is not asked for. A pooling
        window is a layer too, e.g. ``(2, 2, 1)`` for a 2×2 max-pool.

    Returns
    -------
    size : int
        :math:`r_L`: one output pixel of the last layer depends on an :math:`r_L \times r_L` square of
        input pixels (for square kernels).
    jump : int
        :math:`j_L`: moving one pixel in the output moves that square by :math:`j_L` input pixels
        (the total stride, the *output stride* of a network).

    Notes
    -----
    A dilated (atrous) kernel of size :math:`k` and rate :math:`d` spreads its taps :math:`d`
    pixels apart, so it spans the *effective kernel size* :math:`k + (k - 1)(d - 1) = d(k-1) + 1`
    pixels with the parameters of a :math:`k \times k` kernel [2]_ [3]_. Layer :math:`l` sees
    :math:`k_l` neighbouring pixels of its input, which lie :math:`d_l` pixels apart; in units of
    the network's input, neighbouring pixels of that input lie :math:`j_{l-1}` apart. Starting from
    one pixel, :math:`r_0 = 1` and :math:`j_0 = 1` [1]_:

    .. math::

        r_l = r_{l-1} + (k_l - 1)\, d_l\, j_{l-1}, \qquad j_l = j_{l-1}\, s_l .

    Strides multiply: after two stride-2 layers every further :math:`3 \times 3` kernel adds 8
    input pixels, not 2. This is the *theoretical* receptive field: every pixel in it can change
    the output, but how much it does falls off from the centre, and a stack of equal rates leaves
    holes in it (the "gridding" of [4]_); :func:`receptive_field_by_gradient` shows which pixels
    really reach one output.

    Raises
    ------
    SegeduTypeError
        If ``layers`` is not a sequence of triples, or an entry is not an int.
    SegeduInputError
        If a triple does not have 3 entries, or an entry is below 1.

    References
    ----------
    .. [1] Araujo, A., Norris, W. and Sim, J. "Computing Receptive Fields of Convolutional Neural
           Networks." Distill, 2019. :DOI:`10.23915/distill.00021`
    .. [2] Yu, F. and Koltun, V. "Multi-Scale Context Aggregation by Dilated Convolutions." ICLR
           2016. arXiv:1511.07122
    .. [3] Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K. and Yuille, A. L. "DeepLab:
           Semantic Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully
           Connected CRFs." IEEE TPAMI 40(4), 2018. arXiv:1606.00915
    .. [4] Wang, P. et al. "Understanding Convolution for Semantic Segmentation." WACV 2018.
           arXiv:1702.08502

    Examples
    --------
    Three 3×3 convolutions see as far as one 7×7 (VGG's argument for small kernels):

    >>> receptive_field([(3, 1, 1)] * 3)
    (7, 1)

    One 3×3 convolution of rate 2 spans 5 pixels, with 9 weights:

    >>> receptive_field([(3, 1, 2)])
    (5, 1)

    VGG16's first two stages (two 3×3 convolutions and a 2×2 max-pool, twice):

    >>> receptive_field([(3, 1, 1), (3, 1, 1), (2, 2, 1)] * 2)
    (16, 4)

    Rates 1, 2, 4, 8 grow the field exponentially at full resolution (Yu and Koltun's context module):

    >>> receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)])
    (31, 1)
    """
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise SegeduTypeError(
            f"layers must be a sequence of (kernel_size, stride, dilation) triples, e.g. [(3, 1, 1), (3, 2, 1)], "
            f"but got {layers!r} ({type(layers).__name__})."
        )
    layers = list(layers)
    if len(layers) == 3 and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in layers):
        raise SegeduTypeError(
            f"layers must be a sequence of (kernel_size, stride, dilation) triples, but got the single triple "
            f"{tuple(layers)!r}. Wrap one layer in a list: receptive_field([{tuple(layers)!r}])."
        )
    size, jump = 1, 1
    for index, layer in enumerate(layers):
        k, s, d = _check_layer(layer, index)
        size += (k - 1) * d * jump
        jump *= s
    return size, jump


# Activations that receptive_field_by_gradient(..., linearize=True) replaces by the identity: where they
# are flat (ReLU below 0) they stop the gradient of pixels that are inside the receptive field.
_PIECEWISE_LINEAR = frozenset({
    torch.relu,
    torch.relu_,
    torch.nn.functional.relu,
    torch.nn.functional.relu_,
    torch.nn.functional.relu6,
    torch.nn.functional.leaky_relu,
    torch.nn.functional.hardtanh,
    torch.Tensor.relu,
    torch.Tensor.relu_,
})


class _Linearize(torch.overrides.TorchFunctionMode):
    """Inside this mode, ReLU-like activations are the identity (see ``_PIECEWISE_LINEAR``)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _PIECEWISE_LINEAR:
            return args[0]
        return func(*args, **(kwargs or {}))


def receptive_field_by_gradient(forward, input_shape, output_index=None, linearize=False, seed=0):
    r"""Which input pixels reach one output pixel: the nonzero entries of its gradient.

    Back-propagates one output pixel (summed over the output channels) to the input and keeps the
    input pixels whose gradient is not zero. It is the measured counterpart of
    :func:`receptive_field`: for a stack of convolutions without nonlinearities the mask's bounding
    box is the :math:`r_L \times r_L` square that the formula predicts, and the mask also shows what
    the formula cannot, the holes that stacked equal atrous rates leave ("gridding").

    Parameters
    ----------
    forward : callable or torch.nn.Module
        Maps a ``(1, C, H, W)`` tensor to a ``(1, K, h, w)`` tensor (or to a dict with an ``"out"``
        entry, as torchvision's segmentation models return). A module is run in ``eval()`` mode and
        restored afterwards: batch normalisation in training mode mixes every pixel into every
        output through the batch statistics, so the whole image would seem to be in reach.
    input_shape : (C, H, W) or (1, C, H, W)
        Shape of the input to try.
    output_index : (row, col), optional
        The output pixel; the default is the centre ``(h // 2, w // 2)``. Negative indices count
        from the end, as in numpy.
    linearize : bool
        If true, ReLU-like activations (``relu``, ``relu6``, ``leaky_relu``, ``hardtanh``) are the
        identity during the pass, so that a unit that happens to be off does not hide the pixels
        behind it: the mask then shows the theoretical receptive field of a real network. Off, the
        mask shows which pixels reach the output for this particular input.
    seed : int
        Seed of the random input (standard normal values). Only the pattern of zeros of the gradient
        matters; for a network without nonlinearities it does not depend on the input at all.

    Returns
    -------
    mask : numpy.ndarray of bool, shape (H, W)
        ``True`` where the gradient is nonzero in at least one input channel.

    Notes
    -----
    The input has the dtype and device of the module's first parameter (float64 for a plain
    function, so that rounding cannot turn a small gradient into zero). Image-level operations,
    such as the global average pooling of ASPP's image branch, make every pixel reach every output,
    and the mask is then full: that is true, not a failure. Max pooling passes the gradient to the
    maximum of each window only, so behind a max-pool the mask shows the winning pixels of this
    input, not the whole field. How *strongly* each pixel counts (the gradient's magnitude, Luo et
    al.'s "effective receptive field" [2]_) is left out on purpose: the mask is about reach.

    References
    ----------
    .. [1] Araujo, A., Norris, W. and Sim, J. "Computing Receptive Fields of Convolutional Neural
           Networks." Distill, 2019. :DOI:`10.23915/distill.00021`
    .. [2] Luo, W., Li, Y., Urtasun, R. and Zemel, R. "Understanding the Effective Receptive Field
           in Deep Convolutional Neural Networks." NeurIPS 2016. arXiv:1701.04128
    .. [3] Wang, P. et al. "Understanding Convolution for Semantic Segmentation." WACV 2018.
           arXiv:1702.08502

    Examples
    --------
    Three 3×3 convolutions of rate 2 with all weights 1 (DeepLab's gridding): the field spans 13
    pixels, but only every other row and column of it is read.

    >>> import torch
    >>> from torch import nn
    >>> stack = nn.Sequential(*[nn.Conv2d(1, 1, 3, dilation=2, bias=False) for _ in range(3)])
    >>> for conv in stack:
    ...     _ = nn.init.ones_(conv.weight)
    >>> mask = receptive_field_by_gradient(stack, (1, 21, 21))
    >>> rows, cols = mask.nonzero()
    >>> int(rows.max() - rows.min() + 1), receptive_field([(3, 1, 2)] * 3)[0]
    (13, 13)
    >>> print("\n".join("".join("#" if v else "." for v in row) for row in mask[4:17, 4:17][:3]))
    #.#.#.#.#.#.#
    .............
    #.#.#.#.#.#.#
    """
    if not callable(forward):
        raise SegeduTypeError(
            f"forward must be a callable such as a torch.nn.Module that maps a (1, C, H, W) tensor to a "
            f"(1, K, h, w) tensor, but got {forward!r} ({type(forward).__name__})."
        )
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") or len(input_shape) not in (3, 4):
        raise SegeduInputError(
            f"input_shape must be (C, H, W) or (1, C, H, W), e.g. (3, 64, 64), but got {input_shape!r}."
        )
    shape = tuple(check_positive_int(v, f"input_shape[{i}]") for i, v in enumerate(input_shape))
    if len(shape) == 4:
        if shape[0] != 1:
            raise SegeduInputError(
                f"input_shape must describe one image, but its batch axis is {shape[0]}: use (1, {shape[1]}, "
                f"{shape[2]}, {shape[3]}) or ({shape[1]}, {shape[2]}, {shape[3]})."
            )
        shape = shape[1:]
    seed = check_positive_int(seed, "seed", minimum=0)

    module = forward if isinstance(forward, torch.nn.Module) else None
    weight = None
    if module is not None:
        weight = next(module.parameters(), None)
    dtype = weight.dtype if weight is not None and weight.is_floating_point() else torch.float64
    device = weight.device if weight is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((1, *shape), generator=generator, dtype=dtype).to(device).requires_grad_(True)

    # each submodule's own mode, restored afterwards (a frozen batch norm may already be in eval mode)
    modes = [(m, m.training) for m in module.modules()] if module is not None else []
    if module is not None:
        module.eval()
    try:
        if linearize:
            with _Linearize():
                out = forward(x)
        else:
            out = forward(x)
    finally:
        for submodule, training in modes:
            submodule.training = training
    if isinstance(out, dict):
        if "out" not in out:
            raise SegeduInputError(
                f"forward returned a dict without an 'out' entry (keys {sorted(out)}); return the logits tensor, "
                f"e.g. forward=lambda x: model(x)['your key']."
            )
        out = out["out"]
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        raise SegeduInputError(
            f"forward must return a (1, K, h, w) tensor, but returned a {type(out).__name__}"
            f"{' of shape ' + str(tuple(out.shape)) if isinstance(out, torch.Tensor) else ''}. Wrap it, e.g. "
            f"forward=lambda x: model(x)[0] for a model that returns a tuple."
        )
    h_out, w_out = out.shape[-2:]
    if output_index is None:
        row, col = h_out // 2, w_out // 2
    else:
        if isinstance(output_index, (str, bytes)) or not hasattr(output_index, "__len__") or len(output_index) != 2:
            raise SegeduInputError(f"output_index must be a (row, col) pair, but got {output_index!r}.")
        row, col = output_index
        for i, value in enumerate((row, col)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise SegeduTypeError(f"output_index[{i}] must be an int, but got {value!r} ({type(value).__name__}).")
        if not (-h_out <= row < h_out and -w_out <= col < w_out):
            raise SegeduInputError(
                f"output_index {(row, col)} lies outside the {h_out}×{w_out} output of forward; use a row in "
                f"0..{h_out - 1} and a column in 0..{w_out - 1} (default: the centre)."
            )
        row, col = int(row), int(col)
    target = out[0, :, row, col].sum()
    if not target.requires_grad:  # the output does not depend on the input at all
        return np.zeros(shape[1:], dtype=bool)
    (grad,) = torch.autograd.grad(target, x, allow_unused=True)
    if grad is None:
        return np.zeros(shape[1:], dtype=bool)
    return (grad[0] != 0).any(dim=0).cpu().numpy()
