"""segedu.conv's max pooling with indices and max unpooling against torch.nn.functional.

The peers are ``F.max_pool2d(..., return_indices=True)`` and ``F.max_unpool2d``. Random
configurations come from ``numpy.random.default_rng(seed)``, so a failing case is reproduced by its
test id. Pooling only selects values, so values and indices must agree *exactly*, in every dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.conv import (
    max_pool2d_with_indices,
    max_pool2d_with_indices_loops,
    max_unpool2d,
    max_unpool2d_loops,
)


def pool_case(seed):
    """Random valid arguments: (x, kernel_size, stride) with non-square kernels and strides."""
    rng = np.random.default_rng(seed)
    n, c = (int(v) for v in rng.integers(1, 4, size=2))
    k = [int(v) for v in rng.integers(1, 4, size=2)]
    s = [int(v) for v in rng.integers(1, 4, size=2)]
    h, w = (int(k[i] + rng.integers(0, 9)) for i in range(2))
    dtype = (torch.float64, torch.float32)[seed % 2]
    x = torch.from_numpy(rng.standard_normal((n, c, h, w))).to(dtype)
    kernel = k[0] if k[0] == k[1] and seed % 3 else tuple(k)
    stride = None if seed % 5 == 0 else (s[0] if s[0] == s[1] else tuple(s))
    return x, kernel, stride


def _pair(value):
    return tuple(value) if isinstance(value, tuple) else (value, value)


def torch_pool(x, kernel, stride):
    return F.max_pool2d(x, kernel, stride=stride, return_indices=True)


@pytest.mark.parametrize("seed", range(120))
def test_pool_matches_torch_on_random_inputs(seed):
    x, kernel, stride = pool_case(seed)
    values, indices = max_pool2d_with_indices(x, kernel, stride)
    expected_values, expected_indices = torch_pool(x, kernel, stride)
    assert values.dtype == x.dtype and indices.dtype == torch.int64
    torch.testing.assert_close(values, expected_values, rtol=0, atol=0)
    torch.testing.assert_close(indices, expected_indices, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(40))
def test_pool_loops_match_torch_on_one_sample(seed):
    x, kernel, stride = pool_case(seed)
    values, indices = max_pool2d_with_indices_loops(x[0], kernel, stride)
    expected_values, expected_indices = torch_pool(x[0], kernel, stride)
    torch.testing.assert_close(values, expected_values, rtol=0, atol=0)
    torch.testing.assert_close(indices, expected_indices, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("function", [max_pool2d_with_indices, max_pool2d_with_indices_loops])
def test_ties_go_to_the_first_maximum_like_torch(seed, function):
    """Few distinct values, so almost every window has tied maxima; overlapping windows too."""
    rng = np.random.default_rng(1000 + seed)
    x = torch.from_numpy(rng.integers(0, 3, size=(2, 7, 9)).astype(np.float32))
    kernel = (int(rng.integers(2, 4)), int(rng.integers(1, 4)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    values, indices = function(x, kernel, stride)
    expected_values, expected_indices = torch_pool(x, kernel, stride)
    torch.testing.assert_close(values, expected_values, rtol=0, atol=0)
    torch.testing.assert_close(indices, expected_indices, rtol=0, atol=0)


def test_constant_input_picks_each_windows_top_left_corner():
    values, indices = max_pool2d_with_indices(torch.ones(1, 1, 4, 6), 2)
    expected = torch_pool(torch.ones(1, 1, 4, 6), 2, None)[1]
    torch.testing.assert_close(indices, expected, rtol=0, atol=0)


@pytest.mark.parametrize("function", [max_pool2d_with_indices, max_pool2d_with_indices_loops])
def test_nan_and_infinities_like_torch(function):
    x = torch.tensor([[[1.0, float("nan"), -float("inf"), -float("inf"), 2.0, float("inf")],
                       [2.0, 2.0, -float("inf"), -float("inf"), float("inf"), 1.0]]])
    values, indices = function(x, 2)
    expected_values, expected_indices = torch_pool(x, 2, None)
    torch.testing.assert_close(values, expected_values, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(indices, expected_indices, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.float16])
def test_pool_keeps_other_dtypes_torch_allows(dtype):
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.integers(0, 50, size=(2, 3, 6, 8))).to(dtype)
    values, indices = max_pool2d_with_indices(x, (2, 3), 2)
    expected_values, expected_indices = torch_pool(x, (2, 3), 2)
    assert values.dtype == dtype
    torch.testing.assert_close(values, expected_values, rtol=0, atol=0)
    torch.testing.assert_close(indices, expected_indices, rtol=0, atol=0)


def test_numpy_in_numpy_out_with_float64_kept():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 6))
    values, indices = max_pool2d_with_indices(x, 2)
    assert isinstance(values, np.ndarray) and values.dtype == np.float64 and indices.dtype == np.int64
    expected_values, expected_indices = torch_pool(torch.from_numpy(x), 2, None)
    np.testing.assert_array_equal(values, expected_values.numpy())
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    unpooled = max_unpool2d(values, indices, 2)
    assert isinstance(unpooled, np.ndarray) and unpooled.dtype == np.float64
    np.testing.assert_array_equal(unpooled, F.max_unpool2d(expected_values, expected_indices, 2).numpy())


def test_pool_gradient_matches_torch():
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((2, 2, 6, 7))).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    weights = torch.from_numpy(rng.standard_normal((2, 2, 2, 3)))
    (max_pool2d_with_indices(x, 3, 2)[0] * weights).sum().backward()
    (F.max_pool2d(x_ref, 3, 2) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=0)


# -- unpooling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(120))
def test_unpool_matches_torch_on_random_inputs(seed):
    x, kernel, stride = pool_case(seed)
    values, indices = torch_pool(x, kernel, stride)
    # the size before pooling (always in torch's range), or the default where pooling lost no pixel
    default = tuple((n - 1) * s + k for n, s, k in zip(values.shape[-2:], _pair(stride or kernel), _pair(kernel)))
    output_size = tuple(x.shape[-2:]) if seed % 2 or default != tuple(x.shape[-2:]) else None
    got = max_unpool2d(values, indices, kernel, stride, output_size=output_size)
    expected = F.max_unpool2d(values, indices, kernel, stride, output_size=output_size)
    assert got.dtype == values.dtype
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(40))
def test_unpool_loops_match_torch_on_one_sample(seed):
    x, kernel, stride = pool_case(seed)
    values, indices = torch_pool(x[0], kernel, stride)
    output_size = tuple(x.shape[-2:])
    got = max_unpool2d_loops(values, indices, kernel, stride, output_size=output_size)
    expected = F.max_unpool2d(values, indices, kernel, stride, output_size=output_size)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(20))
def test_unpool_places_arbitrary_indices_like_torch(seed):
    """Not only pooling's indices: any distinct positions in the plane (each value lands where told)."""
    rng = np.random.default_rng(2000 + seed)
    c, h, w = 3, int(rng.integers(1, 5)), int(rng.integers(1, 5))
    out_h, out_w = 2 * h, 2 * w
    idx = np.stack([rng.permutation(out_h * out_w)[: h * w].reshape(h, w) for _ in range(c)])
    values = torch.from_numpy(rng.standard_normal((1, c, h, w)))
    indices = torch.from_numpy(idx)[None]
    expected = F.max_unpool2d(values, indices, 2)
    torch.testing.assert_close(max_unpool2d(values, indices, 2), expected, rtol=0, atol=0)
    torch.testing.assert_close(max_unpool2d_loops(values[0], indices[0], 2), expected[0], rtol=0, atol=0)


@pytest.mark.parametrize("output_size", [(5, 5), (3, 4, 5, 5), torch.Size([3, 4, 5, 5]), [5, 5]])
def test_unpool_output_size_forms_like_torch(output_size):
    values, indices = torch_pool(torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0)), 2, None)
    got = max_unpool2d(values, indices, 2, output_size=output_size)
    torch.testing.assert_close(got, F.max_unpool2d(values, indices, 2, output_size=output_size), rtol=0, atol=0)


def test_unbatched_pool_and_unpool_like_torch():
    x = torch.randn(3, 6, 5, generator=torch.Generator().manual_seed(1))
    values, indices = max_pool2d_with_indices(x, 2)
    expected_values, expected_indices = torch_pool(x, 2, None)
    assert values.shape == (3, 3, 2)
    torch.testing.assert_close(indices, expected_indices, rtol=0, atol=0)
    got = max_unpool2d(values, indices, 2, output_size=(6, 5))
    torch.testing.assert_close(got, F.max_unpool2d(expected_values, expected_indices, 2, output_size=(6, 5)))


def test_unpool_gradient_matches_torch():
    rng = np.random.default_rng(9)
    x = torch.from_numpy(rng.standard_normal((2, 3, 6, 6)))
    values, indices = torch_pool(x, 2, None)
    mine, ref = values.clone().requires_grad_(), values.clone().requires_grad_()
    weights = torch.from_numpy(rng.standard_normal((2, 3, 6, 6)))
    (max_unpool2d(mine, indices, 2) * weights).sum().backward()
    (F.max_unpool2d(ref, indices, 2) * weights).sum().backward()
    torch.testing.assert_close(mine.grad, ref.grad, rtol=0, atol=0)


def test_int32_indices_are_accepted():
    values, indices = torch_pool(torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(2)), 2, None)
    torch.testing.assert_close(max_unpool2d(values, indices.int(), 2), F.max_unpool2d(values, indices, 2))


def test_the_lecture_example_by_hand():
    x = np.array([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 1.0], [0.0, 2.0, 3.0, 3.0], [9.0, 1.0, 1.0, 2.0]])
    values, indices = max_pool2d_with_indices(x[None], 2)
    # the two 3s of the last window tie: torch keeps the first, at (2, 2) -> 2*4 + 2 = 10
    assert indices[0].tolist() == [[1, 6], [12, 10]]
    assert values[0].tolist() == [[5.0, 8.0], [9.0, 3.0]]


# -- bad input -------------------------------------------------------------------------------------


def test_pool_refuses_a_window_larger_than_the_input():
    with pytest.raises(SegeduInputError, match=r"window does not fit along the columns \(W\).*at most 3"):
        max_pool2d_with_indices(torch.zeros(1, 1, 4, 3), 4)


def test_pool_refuses_a_2d_image_and_names_the_fix():
    with pytest.raises(SegeduInputError, match=r"x\[None, None\]"):
        max_pool2d_with_indices(torch.zeros(4, 4), 2)


@pytest.mark.parametrize("kernel, error", [(0, SegeduInputError), (2.0, SegeduTypeError), ((1, 2, 3), SegeduInputError)])
def test_pool_refuses_bad_kernel_sizes(kernel, error):
    with pytest.raises(error, match="kernel_size"):
        max_pool2d_with_indices(torch.zeros(1, 1, 4, 4), kernel)


def test_pool_refuses_boolean_input():
    with pytest.raises(SegeduTypeError, match=r"x.float\(\)"):
        max_pool2d_with_indices(torch.zeros(1, 1, 4, 4, dtype=torch.bool), 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_unpool_refuses_non_integer_indices(dtype):
    values, indices = torch_pool(torch.randn(1, 1, 4, 4), 2, None)
    with pytest.raises(SegeduTypeError, match=r"indices must be integers.*indices.long\(\)"):
        max_unpool2d(values, indices.to(dtype), 2)


def test_unpool_refuses_indices_of_another_shape():
    values, indices = torch_pool(torch.randn(1, 2, 8, 8), 2, None)
    with pytest.raises(SegeduInputError, match=r"x is \(1, 2, 4, 4\) and indices is \(1, 2, 2, 2\).*same encoder stage"):
        max_unpool2d(values, indices[..., :2, :2], 2)


@pytest.mark.parametrize("bad", [16, -1])
def test_unpool_refuses_indices_outside_the_plane(bad):
    values, indices = torch_pool(torch.randn(1, 1, 4, 4), 2, None)
    indices = indices.clone()
    indices[0, 0, 1, 1] = bad
    with pytest.raises(SegeduInputError, match=rf"position {bad}, but an output plane of 4×4 has positions 0..15"):
        max_unpool2d(values, indices, 2)
    with pytest.raises(RuntimeError):  # the peer refuses it too
        F.max_unpool2d(values, indices, 2)


def test_unpool_names_output_size_when_pooling_rounded_down():
    values, indices = torch_pool(torch.randn(1, 1, 5, 5), 2, None)
    indices = torch.full_like(indices, 24)  # bottom-right of 5×5, outside the default 4×4
    with pytest.raises(SegeduInputError, match=r"Pass output_size"):
        max_unpool2d(values, indices, 2)


@pytest.mark.parametrize("output_size", [(6, 4), (2, 4), (4,), "4x4"])
def test_unpool_refuses_output_sizes_torch_refuses(output_size):
    values, indices = torch_pool(torch.randn(1, 1, 4, 4), 2, None)
    with pytest.raises(SegeduInputError, match="output_size"):
        max_unpool2d(values, indices, 2, output_size=output_size)
    with pytest.raises((ValueError, RuntimeError, TypeError)):
        F.max_unpool2d(values, indices, 2, output_size=output_size)


def test_unpool_loops_take_one_sample():
    values, indices = torch_pool(torch.randn(1, 1, 4, 4), 2, None)
    with pytest.raises(SegeduInputError, match=r"pass x\[0\], or use max_unpool2d"):
        max_unpool2d_loops(values, indices, 2)
