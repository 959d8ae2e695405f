"""segedu.crf: the dense CRF's exact reference, its fast path and the lecture's boundary demo.

Peers: a brute-force double loop over pixels and labels (the mean-field update written out term by
term), scipy.signal.convolve2d for the smoothness filter, and boundary_f1 on images from
segedu.data.shapes_sample for the demo.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from segedu import crf
from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.crf import dense_crf, dense_crf_exact
from segedu.data import shapes_sample
from segedu.metrics import boundary_f1


def _random_probabilities(rng, k, h, w, concentration=1.0):
    return rng.dirichlet(np.full(k, concentration), size=(h, w)).transpose(2, 0, 1)


def _blocky(labels, k, factor=8, confidence=0.8):
    """What an output-stride-``factor`` network gives: each block's class fractions, repeated."""
    h, w = labels.shape
    fractions = np.eye(k)[labels].transpose(2, 0, 1).reshape(k, h // factor, factor, w // factor, factor)
    coarse = fractions.mean(axis=(2, 4)).repeat(factor, axis=1).repeat(factor, axis=2)
    return confidence * coarse + (1 - confidence) / k


def _brute_force_mean_field(p, image, iterations, sigma_s, sigma_xy, sigma_rgb, w_s, w_b, mu, normalize):
    """Krähenbühl & Koltun's Algorithm 1, one pixel, one label and one neighbour at a time."""
    k, h, w = p.shape
    pixels = [(r, c) for r in range(h) for c in range(w)]
    unary = {(i, l): -math.log(max(p[l][pixels[i]], 1e-5)) for i in range(len(pixels)) for l in range(k)}

    def kernels(i, j):
        (ri, ci), (rj, cj) = pixels[i], pixels[j]
        d_pos = (ri - rj) ** 2 + (ci - cj) ** 2
        d_col = sum((float(image[ri, ci, c]) - float(image[rj, cj, c])) ** 2 for c in range(image.shape[2]))
        appearance = math.exp(-d_pos / (2 * sigma_xy**2) - d_col / (2 * sigma_rgb**2))
        smoothness = math.exp(-d_pos / (2 * sigma_s**2))
        return appearance, smoothness

    n = len(pixels)
    pair = [[kernels(i, j) for j in range(n)] for i in range(n)]
    q = {}
    for i in range(n):
        z = sum(math.exp(-unary[i, l]) for l in range(k))
        for l in range(k):
            q[i, l] = math.exp(-unary[i, l]) / z
    for _ in range(iterations):
        new = {}
        for i in range(n):
            energies = []
            mass_b = sum(pair[i][j][0] for j in range(n))  # j = i included: exp(0) = 1
            mass_s = sum(pair[i][j][1] for j in range(n))
            for l in range(k):
                e = unary[i, l]
                for l2 in range(k):
                    msg_b = sum(pair[i][j][0] * q[j, l2] for j in range(n) if j != i)
                    msg_s = sum(pair[i][j][1] * q[j, l2] for j in range(n) if j != i)
                    if normalize:
                        msg_b, msg_s = msg_b / mass_b, msg_s / mass_s
                    e += mu[l][l2] * (w_b * msg_b + w_s * msg_s)
                energies.append(e)
            lowest = min(energies)
            z = sum(math.exp(-(e - lowest)) for e in energies)
            for l in range(k):
                new[i, l] = math.exp(-(energies[l] - lowest)) / z
        q = new
    return np.array([[[q[r * w + c, l] for c in range(w)] for r in range(h)] for l in range(k)])


@pytest.mark.parametrize(
    "normalize, compatibility",
    [(True, "potts"), (False, "potts"), (True, [[0.0, 1.0, 2.0], [1.0, 0.0, 0.5], [2.0, 0.5, 0.0]])],
)
def test_exact_equals_brute_force_double_loop(normalize, compatibility):
    rng = np.random.default_rng(3)
    p = _random_probabilities(rng, 3, 6, 6)
    image = rng.uniform(size=(6, 6, 3))
    params = dict(iterations=3, spatial_sigma=1.5, bilateral_sigma_xy=2.5, bilateral_sigma_rgb=0.3,
                  spatial_weight=0.7, bilateral_weight=1.3)
    got = dense_crf_exact(p, image, compatibility=compatibility, normalize=normalize, **params)
    mu = 1 - np.eye(3) if compatibility == "potts" else compatibility
    want = _brute_force_mean_field(p, image, 3, 1.5, 2.5, 0.3, 0.7, 1.3, mu, normalize)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_smoothness_filter_equals_scipy_convolution():
    rng = np.random.default_rng(0)
    h, w, sigma = 17, 23, 2.0
    q = _random_probabilities(rng, 3, h, w).reshape(3, -1)
    radius = int(4 * sigma + 0.5)  # where the fast path cuts its Gaussian
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    kernel[radius, radius] = 0.0  # no message to itself
    want = np.stack([signal.convolve2d(plane, kernel, mode="same", boundary="fill") for plane in q.reshape(3, h, w)])
    got = crf._smoothness_message(q, (h, w), sigma).reshape(3, h, w)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _exact_appearance(features, q):
    d2 = ((features[:, None, :] - features[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d2 / 2)
    np.fill_diagonal(kernel, 0.0)
    return q @ kernel


def test_bilateral_grid_approximates_the_exact_appearance_message():
    """The grid's message is within a few per cent of the exact kernel sum, and closer on a finer grid.

    Tolerance: the grid matches the kernel's variance but not its shape (linear tents and a sampled
    Gaussian on cells one kernel width wide), which errs most for close pairs; relative to the
    kernel mass the error is measured at about 1 % on average and 8-11 % at worst for grid_step=1.
    """
    image, _ = shapes_sample(seed=3, size=32, num_classes=4)
    n = 32 * 32
    q = _random_probabilities(np.random.default_rng(0), 4, 32, 32).reshape(4, n)
    features = np.concatenate([crf._pixel_positions(32, 32) / 6.0, image.reshape(n, 3) / 0.1], axis=1)
    exact = _exact_appearance(features, q)
    mass = exact.sum(axis=0)
    errors = {}
    for step in (1.0, 0.6):
        approx = crf._BilateralGrid(features, step).filter_others(q.T).T
        errors[step] = np.abs(approx - exact) / mass
    assert errors[1.0].mean() < 0.02 and errors[1.0].max() < 0.15
    assert errors[0.6].mean() < 0.5 * errors[1.0].mean()


def test_fast_path_agrees_with_exact_on_coarse_masks():
    """Mean |difference| < 0.005 and argmax agreement >= 99 %, with the default (strong) weights.

    Mean field with weights of 10 amplifies small differences at pixels whose classes are tied, so a
    few pixels may differ a lot; the bulk must not.
    """
    for seed, size in ((0, 24), (1, 32), (2, 40)):
        image, labels = shapes_sample(seed=seed, size=size, num_classes=4)
        p = _blocky(labels, 4)
        exact = dense_crf_exact(p, image)
        fast = dense_crf(p, image)
        assert np.abs(exact - fast).mean() < 0.005
        assert (exact.argmax(0) == fast.argmax(0)).mean() >= 0.99


def test_fast_path_agrees_with_exact_pointwise_with_weak_weights():
    """With weights of 1 the mean-field map is smooth, so the fast path stays within 0.02 everywhere."""
    rng = np.random.default_rng(5)
    image = rng.uniform(size=(20, 20, 3))
    p = _random_probabilities(rng, 3, 20, 20)
    params = dict(spatial_weight=1.0, bilateral_weight=1.0, bilateral_sigma_xy=5.0, bilateral_sigma_rgb=0.2)
    exact = dense_crf_exact(p, image, **params)
    fast = dense_crf(p, image, **params)
    assert np.abs(exact - fast).max() < 0.02


def test_flat_image_turns_the_appearance_kernel_into_the_smoothness_kernel():
    """On a constant image the colour term is exp(0) = 1: the bilateral kernel is a spatial Gaussian."""
    rng = np.random.default_rng(1)
    p = _random_probabilities(rng, 3, 30, 30, concentration=2.0)
    flat = np.full((30, 30, 3), 0.4)
    via_grid = dense_crf(p, flat, spatial_weight=0.0, bilateral_weight=2.0, bilateral_sigma_xy=3.0)
    via_filter = dense_crf(p, flat, spatial_weight=2.0, spatial_sigma=3.0, bilateral_weight=0.0)
    assert np.abs(via_grid - via_filter).max() < 0.02


def test_grey_image_equals_rgb_with_three_equal_channels():
    rng = np.random.default_rng(2)
    grey = rng.uniform(size=(9, 9))
    p = _random_probabilities(rng, 2, 9, 9)
    rgb = np.repeat(grey[..., None], 3, axis=2)  # colour distances grow by sqrt(3)
    np.testing.assert_allclose(
        dense_crf_exact(p, grey, bilateral_sigma_rgb=0.1), dense_crf_exact(p, rgb, bilateral_sigma_rgb=0.1 * 3**0.5),
        rtol=1e-10, atol=1e-12)


def test_class_order_does_not_matter_with_potts():
    image, labels = shapes_sample(seed=4, size=32, num_classes=4)
    p = _blocky(labels, 4)
    order = [2, 0, 3, 1]
    np.testing.assert_allclose(dense_crf(p[order], image), dense_crf(p, image)[order], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_is_a_distribution_of_the_input_dtype(dtype):
    image, labels = shapes_sample(seed=5, size=40, num_classes=5)
    p = _blocky(labels, 5).astype(dtype)
    for refine in (dense_crf, dense_crf_exact):
        out = refine(p, image)
        assert out.shape == p.shape and out.dtype == dtype
        assert np.all(out >= 0)
        np.testing.assert_allclose(out.sum(axis=0), 1.0, atol=1e-5)


def test_zero_iterations_return_the_input():
    rng = np.random.default_rng(7)
    p = _random_probabilities(rng, 3, 10, 12, concentration=3.0)
    image = rng.uniform(size=(10, 12, 3))
    np.testing.assert_allclose(dense_crf(p, image, iterations=0), p, atol=1e-12)
    np.testing.assert_allclose(dense_crf_exact(p, image, iterations=0), p, atol=1e-12)


def test_noisy_mask_on_a_flat_image_gets_cleaner():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    truth = ((yy - 24) ** 2 + (xx - 24) ** 2 <= 14**2).astype(int)
    noisy = np.where(rng.random(truth.shape) < 0.2, 1 - truth, truth)
    p = np.stack([np.where(noisy == 0, 0.7, 0.3), np.where(noisy == 1, 0.7, 0.3)])
    flat = np.full((48, 48), 0.5)
    refined = dense_crf(p, flat, spatial_weight=3.0, spatial_sigma=1.0, bilateral_weight=0.0)
    errors_before = int((noisy != truth).sum())
    errors_after = int((refined.argmax(0) != truth).sum())
    assert errors_after < errors_before / 5


def test_blocky_mask_snaps_to_the_object_boundary():
    """The lecture's demo: an output-stride-8 guess, refined with the defaults, follows the edges.

    An object that is a minority in every block it touches (seed 3: a 106-pixel triangle) has no
    pixel where the coarse guess favours it, and the CRF erases it rather than recovering it: so
    most images, not all, must improve.
    """
    f1_before, f1_after, acc_before, acc_after = [], [], [], []
    for seed in range(8):
        image, labels = shapes_sample(seed=seed, size=64, num_classes=4)
        p = _blocky(labels, 4)
        refined = dense_crf(p, image)
        f1_before.append(boundary_f1(p.argmax(0), labels))
        f1_after.append(boundary_f1(refined.argmax(0), labels))
        acc_before.append((p.argmax(0) == labels).mean())
        acc_after.append((refined.argmax(0) == labels).mean())
    assert sum(after > before + 0.2 for before, after in zip(f1_before, f1_after)) >= 6
    assert np.mean(f1_after) > np.mean(f1_before) + 0.25
    assert np.mean(acc_after) > np.mean(acc_before) + 0.02


# --------------------------------------------------------------------------- bad input


def _good():
    rng = np.random.default_rng(0)
    return _random_probabilities(rng, 3, 8, 10), rng.uniform(size=(8, 10, 3))


@pytest.mark.parametrize(
    "make, error, fragment",
    [
        (lambda p, im: (p[0], im), SegeduInputError, "np.stack([1 - p, p])"),
        (lambda p, im: (p[None], im), SegeduInputError, "probabilities[0]"),
        (lambda p, im: (np.log(p), im), SegeduInputError, "softmax"),
        (lambda p, im: (p * 2, im), SegeduInputError, "sum to 1"),
        (lambda p, im: (p.transpose(1, 2, 0), im), SegeduInputError, "image is 8×10 but probabilities"),
        (lambda p, im: (p.argmax(0)[None].repeat(2, 0), im), SegeduTypeError, "one-hot"),
        (lambda p, im: (np.where(p > 0.5, np.nan, p), im), SegeduInputError, "NaN"),
        (lambda p, im: (p[:1] / p[:1], im), SegeduInputError, "single class"),
        (lambda p, im: (p, im[:4]), SegeduInputError, "Upsample"),
        (lambda p, im: (p, (im * 255).astype(np.uint8)), SegeduTypeError, "img_as_float"),
        (lambda p, im: (p, im * 255), SegeduInputError, "divide by 255"),
        (lambda p, im: (p, im.transpose(2, 0, 1)), SegeduInputError, "transpose(1, 2, 0)"),
        (lambda p, im: (p, np.concatenate([im, im[..., :1]], axis=2)), SegeduInputError, "image[..., :3]"),
    ],
)
def test_bad_inputs_name_the_fix(make, error, fragment):
    p, image = make(*_good())
    for refine in (dense_crf, dense_crf_exact):
        with pytest.raises(error, match=None) as info:
            refine(p, image)
        assert fragment in str(info.value)


def test_channels_last_probabilities_get_the_transpose_hint():
    rng = np.random.default_rng(0)
    p = _random_probabilities(rng, 3, 3, 3).transpose(1, 2, 0) * np.array([1.0, 1.2, 0.8])
    with pytest.raises(SegeduInputError, match=r"transpose\(2, 0, 1\)"):
        dense_crf(p, rng.uniform(size=(3, 3, 3)))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(iterations=-1), "iterations"),
        (dict(iterations=2.5), "iterations"),
        (dict(spatial_sigma=0), "spatial_sigma"),
        (dict(bilateral_sigma_rgb=-0.1), "bilateral_sigma_rgb"),
        (dict(bilateral_weight=-1), "bilateral_weight"),
        (dict(compatibility="pots"), "'potts'"),
        (dict(compatibility=np.zeros((2, 2))), "3×3"),
        (dict(normalize="yes"), "normalize"),
    ],
)
def test_bad_parameters_are_named(kwargs, fragment):
    p, image = _good()
    with pytest.raises((SegeduInputError, SegeduTypeError)) as info:
        dense_crf(p, image, **kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize("step", [0.1, 2.0])
def test_grid_step_out_of_range(step):
    p, image = _good()
    with pytest.raises(SegeduInputError, match="grid_step"):
        dense_crf(p, image, grid_step=step)


def test_exact_refuses_large_images_and_points_to_the_fast_path():
    k, side = 2, int(math.isqrt(crf.EXACT_MAX_PIXELS)) + 1
    p = np.full((k, side, side), 0.5)
    with pytest.raises(SegeduInputError, match="Use dense_crf"):
        dense_crf_exact(p, np.zeros((side, side)))


def test_a_grid_too_fine_for_memory_is_refused_with_the_fix():
    rng = np.random.default_rng(0)
    p = _random_probabilities(rng, 2, 64, 64)
    with pytest.raises(SegeduInputError, match="Increase bilateral_sigma_xy"):
        dense_crf(p, rng.uniform(size=(64, 64, 3)), bilateral_sigma_xy=1.0, bilateral_sigma_rgb=0.01)
