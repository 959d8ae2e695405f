"""segedu.conv against torch.nn.functional.conv2d / conv_transpose2d.

Every random configuration is drawn from ``numpy.random.default_rng(seed)``, so a failing case is
reproduced by its test id. float64 results must agree to 1e-10 (only the order of the additions
differs); float32 results to 1e-5, a float32-safe tolerance for sums of up to 64 products of
standard-normal numbers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.conv import (
    conv2d,
    conv2d_loops,
    conv_matrix,
    conv_output_size,
    conv_transpose2d,
    conv_transpose2d_loops,
    conv_transpose_output_size,
)

torch.manual_seed(0)
N_RANDOM = 300


def assert_close(actual, expected, dtype):
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


def _arg(rng, pair):
    """An int when both entries agree (half the time), else a tuple or (sometimes) a list."""
    a, b = int(pair[0]), int(pair[1])
    if a == b and rng.random() < 0.5:
        return a
    return [a, b] if rng.random() < 0.2 else (a, b)


def _dtype(seed):
    return np.float32 if seed % 4 == 3 else np.float64


def conv2d_case(seed, max_channels=4, max_size=12):
    """Random valid arguments of conv2d: (x, weight, bias, kwargs, (s, p, d) per axis)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4))
    c_in, c_out = (int(c) for c in rng.integers(1, max_channels + 1, size=2))
    k = rng.integers(1, 5, size=2)
    s = rng.integers(1, 4, size=2)
    d = rng.integers(1, 4, size=2)
    p = rng.integers(0, 4, size=2)
    # the padded input must hold the dilated kernel: size + 2p >= d(k-1) + 1
    lo = np.maximum(1, d * (k - 1) + 1 - 2 * p)
    size = [int(rng.integers(lo[a], lo[a] + max_size)) for a in range(2)]
    dtype = _dtype(seed)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in, *k)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype) if rng.random() < 0.5 else None
    kwargs = {"stride": _arg(rng, s), "padding": _arg(rng, p), "dilation": _arg(rng, d)}
    for name, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
        if kwargs[name] == default and rng.random() < 0.5:
            del kwargs[name]  # also exercise the defaults
    return x, weight, bias, kwargs, (s, p, d)


def conv_transpose2d_case(seed, max_channels=4, max_size=10):
    """Random valid arguments of conv_transpose2d: (x, weight, bias, kwargs, (s, p, op, d))."""
    rng = np.random.default_rng(10_000 + seed)
    n = int(rng.integers(1, 4))
    c_in, c_out = (int(c) for c in rng.integers(1, max_channels + 1, size=2))
    k = rng.integers(1, 5, size=2)
    s = rng.integers(1, 4, size=2)
    d = rng.integers(1, 4, size=2)
    size = rng.integers(1, max_size + 1, size=2)
    op = np.array([rng.integers(0, max(s[a], d[a])) for a in range(2)])  # torch: op < stride or op < dilation
    # padding may crop at most what leaves one pixel: 2p <= (n-1)s + d(k-1) + op
    p_max = ((size - 1) * s + d * (k - 1) + op) // 2
    p = np.array([rng.integers(0, min(3, p_max[a]) + 1) for a in range(2)])
    dtype = _dtype(seed)
    x = rng.standard_normal((n, c_in, *size)).astype(dtype)
    weight = rng.standard_normal((c_in, c_out, *k)).astype(dtype)
    bias = rng.standard_normal(c_out).astype(dtype) if rng.random() < 0.5 else None
    kwargs = {
        "stride": _arg(rng, s),
        "padding": _arg(rng, p),
        "output_padding": _arg(rng, op),
        "dilation": _arg(rng, d),
    }
    for name, default in (("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1)):
        if kwargs[name] == default and rng.random() < 0.5:
            del kwargs[name]
    return x, weight, bias, kwargs, (s, p, op, d)


def _torch(*arrays):
    return [None if a is None else torch.from_numpy(a) for a in arrays]


def _torch_kwargs(kwargs):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


# --------------------------------------------------------------------------------------------------
# Hundreds of random configurations against torch
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_conv2d_matches_torch(seed):
    x, weight, bias, kwargs, (s, p, d) = conv2d_case(seed)
    xt, wt, bt = _torch(x, weight, bias)
    expected = F.conv2d(xt, wt, bt, **_torch_kwargs(kwargs))
    got = conv2d(xt, wt, bt, **kwargs)
    assert isinstance(got, torch.Tensor)
    assert_close(got, expected, x.dtype)
    # the output-size formula agrees with the real shape
    k = weight.shape[2:]
    assert got.shape[2:] == tuple(conv_output_size(x.shape[2 + a], k[a], s[a], p[a], d[a]) for a in range(2))


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_conv_transpose2d_matches_torch(seed):
    x, weight, bias, kwargs, (s, p, op, d) = conv_transpose2d_case(seed)
    xt, wt, bt = _torch(x, weight, bias)
    expected = F.conv_transpose2d(xt, wt, bt, **_torch_kwargs(kwargs))
    got = conv_transpose2d(xt, wt, bt, **kwargs)
    assert isinstance(got, torch.Tensor)
    assert_close(got, expected, x.dtype)
    k = weight.shape[2:]
    assert got.shape[2:] == tuple(
        conv_transpose_output_size(x.shape[2 + a], k[a], s[a], p[a], op[a], d[a]) for a in range(2)
    )


@pytest.mark.parametrize("seed", range(30))
def test_loops_match_fast_and_torch(seed):
    x, weight, bias, kwargs, _ = conv2d_case(seed, max_channels=2, max_size=7)
    xt, wt, bt = _torch(x[0], weight, bias)
    slow = conv2d_loops(xt, wt, bt, **kwargs)
    assert_close(slow, conv2d(xt, wt, bt, **kwargs), x.dtype)
    assert_close(slow, F.conv2d(xt[None], wt, bt, **_torch_kwargs(kwargs))[0], x.dtype)

    x, weight, bias, kwargs, _ = conv_transpose2d_case(seed, max_channels=2, max_size=6)
    xt, wt, bt = _torch(x[0], weight, bias)
    slow = conv_transpose2d_loops(xt, wt, bt, **kwargs)
    assert_close(slow, conv_transpose2d(xt, wt, bt, **kwargs), x.dtype)
    assert_close(slow, F.conv_transpose2d(xt[None], wt, bt, **_torch_kwargs(kwargs))[0], x.dtype)


def test_loops_take_numpy_and_give_numpy():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    out = conv2d_loops(x, w, padding=1)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (3, 5, 5)
    np.testing.assert_allclose(out, conv2d(x, w, padding=1), rtol=1e-12, atol=1e-12)
    out = conv_transpose2d_loops(x, w.transpose(1, 0, 2, 3).copy(), stride=2)
    assert isinstance(out, np.ndarray) and out.shape == (3, 11, 11)


# --------------------------------------------------------------------------------------------------
# Output-size formulas: the same sizes, and the same refusals, as torch
# --------------------------------------------------------------------------------------------------


def test_output_size_formulas_known_values():
    assert conv_output_size(5, 3) == 3
    assert conv_output_size(5, 3, padding=1) == 5
    assert conv_output_size(5, 3, stride=2, padding=1) == 3
    assert conv_output_size(6, 3, stride=2, padding=1) == 3
    assert conv_output_size(7, 3, padding=2, dilation=2) == 7  # atrous, "same"
    assert conv_output_size(572, 3) == 570  # U-Net's first valid convolution
    assert conv_transpose_output_size(2, 2) == 3
    assert conv_transpose_output_size(2, 2, stride=2) == 4
    assert conv_transpose_output_size(28, 2, stride=2) == 56  # U-Net up-convolution
    assert conv_transpose_output_size(3, 3, stride=2, padding=1) == 5
    assert conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1) == 6
    assert conv_transpose_output_size(4, 3, stride=1, padding=1, output_padding=1, dilation=2) == 7


def test_output_size_formulas_match_torch_on_a_grid():
    """Every (n, k, s, p, d, op) on a small grid: same size as torch, or both refuse."""
    checked = 0
    for n in (1, 2, 3, 5, 8):
        for k in (1, 2, 3, 4):
            for s in (1, 2, 3):
                for p in (0, 1, 2, 3):
                    for d in (1, 2):
                        x = torch.zeros(1, 1, n, 1)
                        w = torch.zeros(1, 1, k, 1)
                        try:
                            torch_size = F.conv2d(x, w, stride=(s, 1), padding=(p, 0), dilation=(d, 1)).shape[2]
                        except RuntimeError:
                            with pytest.raises(SegeduInputError):
                                conv_output_size(n, k, s, p, d)
                        else:
                            assert conv_output_size(n, k, s, p, d) == torch_size
                        for op in range(max(s, d)):
                            try:
                                torch_size = F.conv_transpose2d(
                                    x, w, stride=(s, 1), padding=(p, 0), output_padding=(op, 0), dilation=(d, 1)
                                ).shape[2]
                            except RuntimeError:
                                with pytest.raises(SegeduInputError):
                                    conv_transpose_output_size(n, k, s, p, op, d)
                            else:
                                assert conv_transpose_output_size(n, k, s, p, op, d) == torch_size
                            checked += 1
    assert checked > 500


def test_transpose_size_inverts_conv_size():
    """output_padding picks which of the inputs that a strided convolution maps to m comes back."""
    for n in range(4, 20):
        for s in (1, 2, 3):
            m = conv_output_size(n, 3, stride=s, padding=1)
            op = (n + 2 - 2 - 1) % s
            assert conv_transpose_output_size(m, 3, stride=s, padding=1, output_padding=op) == n


# --------------------------------------------------------------------------------------------------
# The lecture's hand-made example (seed 002: B = [[1, 2], [3, 4]], first input element 2)
# --------------------------------------------------------------------------------------------------

A = np.array([[2.0, 1.0], [0.0, 3.0]])
B = np.array([[1.0, 2.0], [3.0, 4.0]])
STRIDE_1 = np.array([[2.0, 5.0, 2.0], [6.0, 14.0, 10.0], [0.0, 9.0, 12.0]])
STRIDE_2 = np.array([[2.0, 4.0, 1.0, 2.0], [6.0, 8.0, 3.0, 4.0], [0.0, 0.0, 3.0, 6.0], [0.0, 0.0, 9.0, 12.0]])


@pytest.mark.parametrize("stride, expected", [(1, STRIDE_1), (2, STRIDE_2)], ids=["stride1", "stride2"])
def test_hand_example(stride, expected):
    torch_out = F.conv_transpose2d(torch.from_numpy(A)[None, None], torch.from_numpy(B)[None, None], stride=stride)
    np.testing.assert_array_equal(torch_out[0, 0].numpy(), expected)  # the hand result is torch's
    np.testing.assert_array_equal(conv_transpose2d(A[None, None], B[None, None], stride=stride)[0, 0], expected)
    np.testing.assert_array_equal(conv_transpose2d_loops(A[None], B[None, None], stride=stride)[0], expected)
    # the first input element, 2, contributes 2·B to the top-left corner (and alone it is all there is)
    first = np.zeros_like(A)
    first[0, 0] = 2.0
    out = conv_transpose2d(first[None, None], B[None, None], stride=stride)[0, 0]
    np.testing.assert_array_equal(out[:2, :2], [[2.0, 4.0], [6.0, 8.0]])
    assert out.sum() == 2 * B.sum()


def test_hand_example_integer_numpy_input_gives_float64():
    out = conv_transpose2d(A.astype(int)[None, None], B.astype(int)[None, None], stride=2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[0, 0], STRIDE_2)


# --------------------------------------------------------------------------------------------------
# The matrix view: conv2d is C, conv_transpose2d is C^T, and they are adjoint
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_conv_matrix_and_its_transpose(seed):
    x, weight, _, kwargs, (s, p, d) = conv2d_case(seed, max_channels=3, max_size=6)
    x = x[0].astype(np.float64)
    weight = weight.astype(np.float64)
    if seed % 2 == 0:  # single channel: an (H, W) input and one (kh, kw) kernel
        x, weight = x[0], weight[0, 0]
        x4, w4 = x[None, None], weight[None, None]
    else:
        x4, w4 = x[None], weight
    C = conv_matrix(x.shape, weight, **kwargs)
    y4 = conv2d(x4, w4, **kwargs)
    assert C.shape == (y4.size, x.size)
    np.testing.assert_allclose(C @ x.ravel(), y4.ravel(), rtol=1e-10, atol=1e-10)

    # C^T is the transpose convolution with the same weight tensor; output_padding restores the size
    y = np.random.default_rng(seed).standard_normal(y4.shape)
    size, k = x4.shape[2:], w4.shape[2:]
    op = tuple(int((size[a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) % s[a]) for a in range(2))
    back = conv_transpose2d(y, w4, output_padding=op, **kwargs)
    assert back.shape == x4.shape
    np.testing.assert_allclose(back.ravel(), C.T @ y.ravel(), rtol=1e-10, atol=1e-10)
    torch_back = F.conv_transpose2d(
        torch.from_numpy(y), torch.from_numpy(w4), output_padding=op, **_torch_kwargs(kwargs)
    )
    np.testing.assert_allclose(torch_back.numpy().ravel(), C.T @ y.ravel(), rtol=1e-10, atol=1e-10)


def test_conv_matrix_keeps_tensor_and_dtype():
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float32)
    C = conv_matrix((3, 3), w)
    assert isinstance(C, torch.Tensor) and C.dtype == torch.float32 and C.shape == (4, 9)
    assert conv_matrix((1, 3, 3), [[[[1, 2], [3, 4]]]]).dtype == np.float64


@pytest.mark.parametrize("seed", range(20))
def test_adjoint_identity(seed):
    """<conv2d(x), y> = <x, conv_transpose2d(y)> with the same weight, stride, padding, dilation."""
    x, weight, _, kwargs, (s, p, d) = conv2d_case(seed)
    x, weight = x.astype(np.float64), weight.astype(np.float64)
    cx = conv2d(x, weight, **kwargs)
    y = np.random.default_rng(seed + 1).standard_normal(cx.shape)
    size, k = x.shape[2:], weight.shape[2:]
    op = tuple(int((size[a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) % s[a]) for a in range(2))
    cty = conv_transpose2d(y, weight, output_padding=op, **kwargs)
    assert cty.shape == x.shape
    np.testing.assert_allclose(np.vdot(cx, y), np.vdot(x, cty), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_gradients_match_torch(seed):
    """The fast versions are differentiable, and conv_transpose2d is conv2d's input gradient."""
    x, weight, bias, kwargs, (s, p, d) = conv2d_case(seed)
    x, weight = x.astype(np.float64), weight.astype(np.float64)
    bias = np.ones(weight.shape[0]) if bias is None else bias.astype(np.float64)
    grads = []
    for fn in (conv2d, F.conv2d):
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
        out = fn(xt, wt, bt, **_torch_kwargs(kwargs))
        g = torch.from_numpy(np.random.default_rng(seed).standard_normal(tuple(out.shape)))
        out.backward(g)
        grads.append((xt.grad, wt.grad, bt.grad))
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    size, k = x.shape[2:], weight.shape[2:]
    op = tuple(int((size[a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) % s[a]) for a in range(2))
    x_grad = conv_transpose2d(g, torch.from_numpy(weight), output_padding=op, **kwargs)
    torch.testing.assert_close(x_grad, grads[1][0], rtol=1e-10, atol=1e-10)

    x, weight, bias, kwargs, _ = conv_transpose2d_case(seed)
    grads = []
    for fn in (conv_transpose2d, F.conv_transpose2d):
        xt, wt = (torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, weight))
        out = fn(xt, wt, **_torch_kwargs(kwargs))
        out.backward(torch.ones_like(out))
        grads.append((xt.grad, wt.grad))
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_no_torch_convolution_kernels_are_used():
    """The fast paths are built from slicing and matmul: no aten convolution, im2col or col2im."""
    x, weight, bias, kwargs, _ = conv2d_case(7)
    xt, wt, bt = _torch(x, weight, bias)
    y, wy, by, ykwargs, _ = conv_transpose2d_case(7)
    yt, wyt, byt = _torch(y, wy, by)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        conv2d(xt, wt, bt, **kwargs)
        conv_transpose2d(yt, wyt, byt, **ykwargs)
    names = {e.name for e in prof.events()}
    assert "aten::mm" in names or "aten::bmm" in names or "aten::matmul" in names
    banned = [n for n in names if re.search(r"conv|im2col|col2im|unfold|fold", n)]
    assert not banned, banned


# --------------------------------------------------------------------------------------------------
# Types, dtypes, shapes and argument forms
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unbatched_input(dtype):
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((2, 7, 6))).to(dtype)
    w = torch.from_numpy(rng.standard_normal((3, 2, 3, 2))).to(dtype)
    b = torch.from_numpy(rng.standard_normal(3)).to(dtype)
    out = conv2d(x, w, b, stride=(2, 1), padding=1)
    assert out.shape == (3, 4, 7) and out.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(out, F.conv2d(x, w, b, stride=(2, 1), padding=1), rtol=tol, atol=tol)
    wt = w.transpose(0, 1)  # (in=2, out=3, kh, kw)... for conv_transpose2d x needs 2 channels
    out = conv_transpose2d(x, wt, b, stride=2, padding=(1, 0), output_padding=1)
    torch.testing.assert_close(
        out, F.conv_transpose2d(x, wt, b, stride=2, padding=(1, 0), output_padding=1), rtol=tol, atol=tol
    )
    assert out.ndim == 3 and out.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_in_numpy_out(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    out = conv2d(x, w, b, padding=1)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == (2, 4, 6, 5)
    assert_close(out, F.conv2d(*_torch(x, w, b), padding=1), dtype)
    wt = rng.standard_normal((3, 4, 2, 2)).astype(dtype)
    out = conv_transpose2d(x, wt, b, stride=2)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == (2, 4, 12, 10)
    assert_close(out, F.conv_transpose2d(*_torch(x, wt, b), stride=2), dtype)


def test_numpy_operands_of_any_layout():
    rng = np.random.default_rng(5)
    x = np.asfortranarray(rng.standard_normal((1, 2, 5, 5)))
    w = rng.standard_normal((2, 3, 2, 2))[..., ::-1].transpose(1, 0, 2, 3)  # a non-contiguous view
    x.flags.writeable = False
    expected = F.conv2d(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(w)))
    np.testing.assert_allclose(conv2d(x, w), expected.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv2d(x.astype(">f8"), w), expected.numpy(), rtol=1e-12, atol=1e-12)
    # nested lists work, and integer operands take the float dtype of the other operand
    out = conv2d([[[[1, 2], [3, 4]]]], np.ones((1, 1, 2, 2), dtype=np.float32))
    assert out.dtype == np.float32 and out.item() == 10.0
    assert conv2d(np.ones((1, 1, 2, 2), dtype=bool), np.ones((1, 1, 2, 2), dtype=int)).item() == 4.0


def test_tensor_input_with_numpy_weight_gives_tensor():
    x = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    out = conv2d(x, np.ones((1, 1, 2, 2)))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    torch.testing.assert_close(out, torch.full((1, 1, 2, 2), 4.0, dtype=torch.float64))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kernel, dilation", [((3, 3), 1), ((2, 4), 1), ((3, 2), (2, 3))])
def test_string_padding_matches_torch(padding, kernel, dilation):
    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.standard_normal((2, 2, 9, 8)))
    w = torch.from_numpy(rng.standard_normal((3, 2, *kernel)))
    expected = F.conv2d(x, w, padding=padding, dilation=dilation)
    torch.testing.assert_close(conv2d(x, w, padding=padding, dilation=dilation), expected, rtol=1e-10, atol=1e-10)
    slow = conv2d_loops(x[0], w, padding=padding, dilation=dilation)
    torch.testing.assert_close(slow, expected[0], rtol=1e-10, atol=1e-10)
    C = conv_matrix((2, 9, 8), w, padding=padding, dilation=dilation)
    torch.testing.assert_close(C @ x[0].reshape(-1), expected[0].reshape(-1), rtol=1e-10, atol=1e-10)


def test_length_one_tuples_and_empty_batch_like_torch():
    x = torch.randn(0, 2, 5, 5, dtype=torch.float64)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    assert conv2d(x, w, stride=(2,), padding=[1]).shape == F.conv2d(x, w, stride=(2,), padding=[1]).shape
    wt = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    assert conv_transpose2d(x, wt, stride=2).shape == F.conv_transpose2d(x, wt, stride=2).shape


def test_output_padding_allowed_by_dilation_like_torch():
    """torch accepts output_padding < dilation even when it is >= stride."""
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    w = torch.randn(1, 1, 3, 3, dtype=torch.float64)
    kw = {"stride": 1, "padding": 1, "output_padding": 1, "dilation": 2}
    torch.testing.assert_close(conv_transpose2d(x, w, **kw), F.conv_transpose2d(x, w, **kw))
    torch.testing.assert_close(conv_transpose2d_loops(x[0], w, **kw), F.conv_transpose2d(x, w, **kw)[0])


# --------------------------------------------------------------------------------------------------
# Error messages: they name the problem and the fix, and torch refuses the same inputs
# --------------------------------------------------------------------------------------------------

X = torch.zeros(1, 2, 5, 5)
W = torch.zeros(3, 2, 3, 3)  # conv2d: (out=3, in=2); as a transpose weight it expects 3 input channels
WT = torch.zeros(2, 3, 3, 3)  # conv_transpose2d: (in=2, out=3)


def _raises(exc, pattern, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert re.search(pattern, str(info.value)), f"message {str(info.value)!r} does not match {pattern!r}"
    return str(info.value)


@pytest.mark.parametrize("fn, weight", [(conv2d, W), (conv_transpose2d, WT)], ids=["conv2d", "conv_transpose2d"])
def test_error_2d_image_needs_batch_and_channel_axes(fn, weight):
    msg = _raises(SegeduInputError, r"x\[None, None\]", fn, torch.zeros(5, 5), weight)
    assert "(1, 1, 5, 5)" in msg and "2-D" in msg
    _raises(SegeduInputError, r"5-D", fn, torch.zeros(1, 1, 2, 5, 5), weight)


def test_error_weight_must_be_4d():
    _raises(
        SegeduInputError,
        r"weight must be 4-D \(C_out, C_in, kh, kw\).*K\[None, None\]",
        conv2d,
        X[:, :1],
        torch.zeros(3, 3),
    )
    _raises(SegeduInputError, r"weight must be 4-D \(C_in, C_out, kh, kw\)", conv_transpose2d, X, torch.zeros(2, 3, 3))


def test_error_channel_mismatch_names_both_numbers_and_the_layout():
    msg = _raises(SegeduInputError, r"C_in = 4 channels.*expects C_in = 2", conv2d, torch.zeros(1, 4, 5, 5), W)
    assert "(C_out, C_in, kh, kw)" in msg and "Did you pass" not in msg
    with pytest.raises(RuntimeError):
        F.conv2d(torch.zeros(1, 4, 5, 5), W)
    # unbatched: the message points at axis 0
    _raises(SegeduInputError, r"axis 0 of \(C_in, H, W\); x.shape = \(4, 5, 5\)", conv2d, torch.zeros(4, 5, 5), W)


def test_error_conv2d_weight_passed_to_conv_transpose2d():
    pattern = r"(?i)did you pass a conv2d weight to conv_transpose2d\? ConvTranspose2d weights are \(in, out, kh, kw\)"
    msg = _raises(SegeduInputError, pattern, conv_transpose2d, X, W)
    assert "C_in = 2" in msg and "C_in = 3" in msg and "(C_in, C_out, kh, kw)" in msg
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(X, W)
    _raises(SegeduInputError, pattern, conv_transpose2d_loops, X[0], W)


def test_error_conv_transpose2d_weight_passed_to_conv2d():
    _raises(
        SegeduInputError, r"(?i)did you pass a conv_transpose2d weight to conv2d\?", conv2d, torch.zeros(1, 3, 5, 5), W
    )


@pytest.mark.parametrize("fn, weight", [(conv2d, W), (conv_transpose2d, WT)], ids=["conv2d", "conv_transpose2d"])
def test_error_dtype_mismatch(fn, weight):
    msg = _raises(SegeduTypeError, r"same dtype", fn, X.double(), weight)
    assert "torch.float64" in msg and "torch.float32" in msg and "weight.to(x.dtype)" in msg
    _raises(SegeduTypeError, r"x is float64 and weight is float32", fn, X.double().numpy(), weight.numpy())
    _raises(SegeduTypeError, r"x and bias must have the same dtype", fn, X, weight, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(RuntimeError):
        getattr(F, fn.__name__)(X.double(), weight)


def test_error_integer_tensor():
    _raises(SegeduTypeError, r"x\.float\(\) or x\.double\(\)", conv2d, X.long(), W)
    _raises(SegeduTypeError, r"weight\.float\(\)", conv_transpose2d, X, WT.int())
    _raises(SegeduTypeError, r"must hold real numbers", conv2d, X.numpy().astype(complex), W.numpy())


def test_error_bias_shape():
    _raises(SegeduInputError, r"bias must have shape \(C_out,\) = \(3,\)", conv2d, X, W, torch.zeros(2))
    _raises(SegeduInputError, r"bias must have shape \(C_out,\) = \(3,\)", conv_transpose2d, X, WT, torch.zeros(1, 3))


def test_error_device_mismatch():
    _raises(SegeduInputError, r"same device.*weight\.to\(x\.device\)", conv2d, X, W.to("meta"))


def test_error_negative_padding():
    fix = r"no negative padding.*x\[\.\.\., 1:-1, 1:-1\]"
    _raises(SegeduInputError, r"padding must be at least 0, but got -1\." + ".*" + fix, conv2d, X, W, padding=-1)
    _raises(SegeduInputError, fix, conv2d, X, W, padding=(1, -2))
    _raises(SegeduInputError, fix, conv_transpose2d, X, WT, padding=-1)
    _raises(SegeduInputError, fix, conv_output_size, 5, 3, padding=-1)
    _raises(SegeduInputError, fix, conv_transpose_output_size, 5, 3, padding=-1)
    with pytest.raises(RuntimeError):
        F.conv2d(X, W, padding=-1)


def test_error_output_padding_too_large():
    pattern = (
        r"output_padding must be smaller than stride or dilation.*output_padding=2 with stride=2 and dilation=1.*0\.\.1"
    )
    _raises(SegeduInputError, pattern, conv_transpose2d, X, WT, stride=2, output_padding=2)
    _raises(
        SegeduInputError,
        r"for the cols output_padding=1 with stride=1",
        conv_transpose2d,
        X,
        WT,
        stride=(2, 1),
        output_padding=1,
    )
    _raises(SegeduInputError, pattern, conv_transpose_output_size, 5, 3, stride=2, output_padding=2)
    _raises(SegeduInputError, pattern, conv_transpose2d_loops, X[0], WT, stride=2, output_padding=2)
    _raises(SegeduInputError, r"output_padding must be at least 0", conv_transpose2d, X, WT, output_padding=-1)
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(X, WT, stride=2, output_padding=2)


def test_error_kernel_larger_than_padded_input():
    pattern = r"kernel is larger than the padded input along the rows \(H\).*spans d·\(k−1\)\+1 = 5 pixels.*= 4"
    _raises(SegeduInputError, pattern, conv2d, torch.zeros(1, 2, 4, 9), W, dilation=2)
    _raises(
        SegeduInputError,
        r"kernel is larger than the padded input along the columns",
        conv2d,
        torch.zeros(1, 2, 9, 2),
        W,
    )
    _raises(SegeduInputError, r"more\s+padding", conv_output_size, 2, 3)
    _raises(SegeduInputError, r"kernel is larger", conv2d_loops, torch.zeros(2, 2, 2), W)
    _raises(SegeduInputError, r"kernel is larger", conv_matrix, (2, 2), torch.zeros(3, 3))
    with pytest.raises(RuntimeError):
        F.conv2d(torch.zeros(1, 2, 4, 9), W, dilation=2)


def test_error_transpose_padding_crops_everything():
    pattern = r"no output along the rows.*padding=2 crops 4.*Use less padding"
    _raises(
        SegeduInputError, pattern, conv_transpose2d, torch.zeros(1, 2, 1, 1), torch.zeros(2, 3, 2, 2), padding=(2, 0)
    )
    _raises(SegeduInputError, r"no output", conv_transpose_output_size, 1, 1, padding=1)
    with pytest.raises(RuntimeError):
        F.conv_transpose2d(torch.zeros(1, 2, 1, 1), torch.zeros(2, 3, 2, 2), padding=(2, 0))


def test_error_stride_dilation_and_argument_forms():
    _raises(SegeduInputError, r"stride must be at least 1, but got 0", conv2d, X, W, stride=0)
    _raises(SegeduInputError, r"dilation must be at least 1, but got 0", conv_transpose2d, X, WT, dilation=(1, 0))
    _raises(
        SegeduTypeError,
        r"stride must be an int or a pair \(rows, cols\) of ints, but got 1\.5",
        conv2d,
        X,
        W,
        stride=1.5,
    )
    _raises(SegeduTypeError, r"stride must be an int, but got 2\.0", conv2d, X, W, stride=(2.0, 1))
    _raises(SegeduInputError, r"pair \(rows, cols\).*3 entries", conv2d, X, W, padding=(1, 1, 1))
    _raises(SegeduTypeError, r"k must be an int", conv_output_size, 5, 3.0)
    _raises(SegeduInputError, r"n must be at least 1", conv_transpose_output_size, 0, 3)


def test_error_string_padding():
    _raises(SegeduInputError, r"padding='same' needs stride 1", conv2d, X, W, padding="same", stride=2)
    _raises(SegeduInputError, r"'valid' or 'same', but got 'full'", conv2d, X, W, padding="full")
    _raises(SegeduTypeError, r"padding must be an int or a pair", conv_transpose2d, X, WT, padding="same")
    with pytest.raises(RuntimeError):
        F.conv2d(X, W, padding="same", stride=2)


def test_error_loops_take_one_sample():
    _raises(
        SegeduInputError, r"conv2d_loops takes one sample: pass x\[0\], or use conv2d for a batch", conv2d_loops, X, W
    )
    _raises(SegeduInputError, r"x\[None\] \(shape \(1, 5, 5\)\)", conv_transpose2d_loops, X[0, 0], WT)


def test_error_conv_matrix_arguments():
    _raises(SegeduInputError, r"input_shape must be \(H, W\) or \(C_in, H, W\)", conv_matrix, (1, 1, 5, 5), W)
    _raises(
        SegeduInputError, r"input_shape \(1, 5, 5\) has C_in = 1 channels.*expects C_in = 2", conv_matrix, (1, 5, 5), W
    )
    _raises(SegeduInputError, r"one \(kh, kw\) kernel or a 4-D", conv_matrix, (5, 5), torch.zeros(3))
