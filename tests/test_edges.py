"""segedu.classical edges against scipy.signal, scipy.ndimage and scikit-image.

Border: segedu mirrors the image (numpy "symmetric" = scipy.ndimage "reflect"), so it equals
scipy.ndimage over the whole image, but scipy.signal (zero padding) only away from the border.
Kernel anchor: (k - 1) // 2 per axis; scipy.ndimage anchors even kernels at k // 2, hence
``origin=-1`` along even axes. Floating-point sums are compared with a tolerance of 1e-12 times the
scale (the additions happen in a different order), never by bit equality.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
from scipy.special import erf
from skimage import feature, filters

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.classical import (
    LAPLACE_4,
    LAPLACE_8,
    PREWITT_X,
    PREWITT_Y,
    ROBERTS_X,
    ROBERTS_Y,
    SOBEL_X,
    SOBEL_Y,
    canny,
    convolve2d,
    correlate2d,
    gaussian_smooth,
    gradient_direction,
    gradient_magnitude,
    hysteresis_threshold,
    laplacian,
    log_filter,
    non_maximum_suppression,
    prewitt,
    roberts,
    sobel,
)
from segedu.data import load_sample

REAL = ["camera", "coins", "page", "moon", "astronaut", "china", "flower"]
_CACHE: dict = {}


def real(name: str, step: int = 1) -> np.ndarray:
    key = (name, step)
    if key not in _CACHE:
        _CACHE[key] = np.ascontiguousarray(load_sample(name, as_gray=True)[::step, ::step])
    return _CACHE[key]


def rand(shape, seed=0):
    return np.random.default_rng(seed).random(shape)


def ndi_origin(kernel):
    return tuple(-1 if n % 2 == 0 else 0 for n in np.shape(kernel))


def interior(kernel):
    kh, kw = np.shape(kernel)
    return (slice(kh, -kh), slice(kw, -kw))


TOL = dict(rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
def test_kernels_are_the_correct_ones_not_the_garbled_slides():
    np.testing.assert_array_equal(SOBEL_X, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(SOBEL_Y, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
    np.testing.assert_array_equal(PREWITT_X, [[-1, 0, 1]] * 3)
    np.testing.assert_array_equal(PREWITT_Y, [[1, 1, 1], [0, 0, 0], [-1, -1, -1]])
    np.testing.assert_array_equal(ROBERTS_X, [[1, 0], [0, -1]])
    np.testing.assert_array_equal(ROBERTS_Y, [[0, 1], [-1, 0]])
    np.testing.assert_array_equal(LAPLACE_4, [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(LAPLACE_8, [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    for k in (SOBEL_X, SOBEL_Y, PREWITT_X, PREWITT_Y, ROBERTS_X, ROBERTS_Y, LAPLACE_4, LAPLACE_8):
        assert k.sum() == 0  # derivative kernels: a flat image gives 0
        with pytest.raises(ValueError):
            k[0, 0] = 5.0  # shared constants are read-only


# --------------------------------------------------------------------------------------------
# correlate2d / convolve2d
# --------------------------------------------------------------------------------------------
KERNEL_SHAPES = [(1, 1), (1, 3), (3, 1), (2, 2), (2, 3), (3, 2), (3, 3), (4, 4), (4, 5), (5, 5), (1, 4), (7, 3)]


@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_correlate_and_convolve_match_scipy_signal_in_the_interior(shape):
    img = rand((24, 29), seed=1)
    kernel = np.random.default_rng(2).standard_normal(shape)
    inner = interior(kernel)
    np.testing.assert_allclose(
        correlate2d(img, kernel)[inner], ss.correlate2d(img, kernel, mode="same")[inner], **TOL
    )
    np.testing.assert_allclose(
        convolve2d(img, kernel)[inner], ss.convolve2d(img, kernel, mode="same")[inner], **TOL
    )


@pytest.mark.parametrize("shape", KERNEL_SHAPES + [(9, 11), (31, 33)])
def test_correlate_and_convolve_match_scipy_ndimage_everywhere(shape):
    # (31, 33) is larger than the image: the mirrored border is itself mirrored again.
    img = rand((17, 20), seed=3)
    kernel = np.random.default_rng(4).standard_normal(shape)
    origin = ndi_origin(kernel)
    np.testing.assert_allclose(
        correlate2d(img, kernel), ndi.correlate(img, kernel, mode="reflect", origin=origin), **TOL
    )
    np.testing.assert_allclose(
        convolve2d(img, kernel), ndi.convolve(img, kernel, mode="reflect", origin=origin), **TOL
    )


def test_odd_kernels_match_scipy_ndimage_with_default_origin():
    img = real("coins", step=2)
    kernel = np.random.default_rng(5).standard_normal((5, 3))
    np.testing.assert_allclose(correlate2d(img, kernel), ndi.correlate(img, kernel, mode="reflect"), **TOL)
    np.testing.assert_allclose(convolve2d(img, kernel), ndi.convolve(img, kernel, mode="reflect"), **TOL)


def test_border_is_mirrored_with_the_edge_pixel_repeated():
    img = np.array([[1.0, 2.0, 3.0]])
    left = np.array([[1.0, 0.0, 0.0]])  # picks the pixel to the left: out[c] = img[c - 1]
    np.testing.assert_array_equal(correlate2d(img, left), [[1.0, 1.0, 2.0]])
    right = np.array([[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(correlate2d(img, right), [[2.0, 3.0, 3.0]])
    # a constant image has zero derivative everywhere, border included
    flat = np.full((5, 6), 0.7)
    assert np.abs(correlate2d(flat, SOBEL_X)).max() < 1e-15
    assert np.abs(laplacian(flat)).max() < 1e-15


def test_convolve_is_correlate_with_flipped_kernel():
    img = real("camera", step=4)
    for kernel in (SOBEL_X, np.random.default_rng(6).standard_normal((5, 3))):
        np.testing.assert_allclose(convolve2d(img, kernel), correlate2d(img, kernel[::-1, ::-1]), **TOL)


def test_convolve_differs_from_correlate_for_asymmetric_kernel_and_agrees_for_symmetric():
    img = real("camera", step=4)
    # An antisymmetric kernel: convolution = -correlation.
    np.testing.assert_allclose(convolve2d(img, SOBEL_X), -correlate2d(img, SOBEL_X), **TOL)
    assert np.abs(convolve2d(img, SOBEL_X) - correlate2d(img, SOBEL_X)).max() > 0.5
    asym = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert np.abs(convolve2d(img, asym) - correlate2d(img, asym)).max() > 0.1
    for sym in (LAPLACE_4, LAPLACE_8, np.outer([1, 2, 1], [1, 2, 1]) / 16.0):
        np.testing.assert_allclose(convolve2d(img, sym), correlate2d(img, sym), **TOL)


def test_impulse_response_of_convolution_is_the_kernel():
    img = np.zeros((7, 9))
    img[3, 4] = 1.0
    kernel = np.arange(1.0, 16.0).reshape(3, 5)
    np.testing.assert_array_equal(convolve2d(img, kernel)[2:5, 2:7], kernel)
    np.testing.assert_array_equal(correlate2d(img, kernel)[2:5, 2:7], kernel[::-1, ::-1])
    # even kernel: the anchor is the upper-left element of the central 2x2
    even = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(convolve2d(img, even)[3:5, 4:6], even)
    np.testing.assert_array_equal(correlate2d(img, even)[2:4, 3:5], even[::-1, ::-1])


def test_convolution_is_associative_but_correlation_is_not():
    img = real("coins", step=4)
    a = np.array([[1.0, 2.0, 0.0]])
    b = np.array([[0.0], [1.0], [3.0]])
    full = ss.convolve2d(a, b)  # the 3x3 composite kernel
    inner = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(convolve2d(convolve2d(img, a), b)[inner], convolve2d(img, full)[inner], **TOL)


def test_float32_stays_float32_and_integers_become_float64():
    img32 = rand((12, 13)).astype(np.float32)
    for fn in (lambda x: correlate2d(x, SOBEL_X), lambda x: convolve2d(x, SOBEL_X), laplacian,
               lambda x: log_filter(x, 1.0), lambda x: gaussian_smooth(x, 1.0)):
        assert fn(img32).dtype == np.float32
    gx, gy = sobel(img32)
    assert gx.dtype == gy.dtype == np.float32
    np.testing.assert_allclose(gx, ndi.sobel(img32.astype(np.float64), axis=1), atol=1e-5)
    img_u8 = (rand((8, 9)) * 255).astype(np.uint8)
    out = correlate2d(img_u8, SOBEL_X)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ndi.correlate(img_u8.astype(float), SOBEL_X, mode="reflect"), **TOL)


# --------------------------------------------------------------------------------------------
# Sobel, Prewitt, Roberts, magnitude, direction
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["camera", "coins", "china"])
def test_sobel_equals_scipy_ndimage_sobel_with_axes_and_signs(name):
    img = real(name, step=2)
    gx, gy = sobel(img)
    np.testing.assert_allclose(gx, ndi.sobel(img, axis=1, mode="reflect"), **TOL)
    np.testing.assert_allclose(gy, ndi.sobel(img, axis=0, mode="reflect"), **TOL)
    # Swapping the axes or the signs would fail: these differ by far more than rounding.
    assert np.abs(gx - ndi.sobel(img, axis=0)).max() > 0.5
    assert np.abs(gy + ndi.sobel(img, axis=0)).max() > 0.5


def test_sobel_signs_on_ramps():
    ramp_right = np.tile(np.arange(6.0), (5, 1))  # brighter to the right
    gx, gy = sobel(ramp_right)
    np.testing.assert_allclose(gx[:, 1:-1], 8.0)  # unnormalised: 8 per unit slope
    np.testing.assert_allclose(gy, 0.0)
    gx, gy = sobel(ramp_right.T)  # brighter downwards
    np.testing.assert_allclose(gy[1:-1, :], 8.0)
    np.testing.assert_allclose(gx, 0.0)
    # the slide kernels: correlating with SOBEL_Y measures "up", convolving measures "down"
    np.testing.assert_allclose(correlate2d(ramp_right.T, SOBEL_Y)[1:-1], -8.0)
    np.testing.assert_allclose(convolve2d(ramp_right.T, SOBEL_Y)[1:-1], 8.0)
    np.testing.assert_allclose(correlate2d(ramp_right, SOBEL_X)[:, 1:-1], 8.0)


def test_sobel_matches_kernel_conventions():
    img = real("coins", step=2)
    gx, gy = sobel(img)
    np.testing.assert_allclose(gx, correlate2d(img, SOBEL_X), **TOL)
    np.testing.assert_allclose(gy, convolve2d(img, SOBEL_Y), **TOL)
    np.testing.assert_allclose(gy, correlate2d(img, SOBEL_X.T), **TOL)


def test_prewitt_equals_scipy_ndimage_prewitt():
    img = real("camera", step=2)
    gx, gy = prewitt(img)
    np.testing.assert_allclose(gx, ndi.prewitt(img, axis=1), **TOL)
    np.testing.assert_allclose(gy, ndi.prewitt(img, axis=0), **TOL)


def test_roberts_matches_differences_and_skimage():
    img = real("camera", step=2)
    g1, g2 = roberts(img)
    np.testing.assert_allclose(g1[:-1, :-1], img[:-1, :-1] - img[1:, 1:], **TOL)
    np.testing.assert_allclose(g2[:-1, :-1], img[:-1, 1:] - img[1:, :-1], **TOL)
    inner = (slice(1, -1), slice(1, -1))  # skimage zeroes its outer border
    np.testing.assert_allclose(g1[inner], -filters.roberts_pos_diag(img)[inner], **TOL)
    np.testing.assert_allclose(g2[inner], -filters.roberts_neg_diag(img)[inner], **TOL)
    np.testing.assert_allclose(
        gradient_magnitude(g1, g2)[inner] / np.sqrt(2), filters.roberts(img)[inner], **TOL
    )


def test_gradient_magnitude_and_direction():
    img = real("china", step=2)
    gx, gy = sobel(img)
    mag = gradient_magnitude(gx, gy)
    np.testing.assert_allclose(mag, np.sqrt(gx**2 + gy**2), rtol=1e-14)
    np.testing.assert_allclose(mag, ndi.generic_gradient_magnitude(img, ndi.sobel), rtol=1e-12, atol=1e-12)
    theta = gradient_direction(gx, gy)
    np.testing.assert_allclose(theta, np.arctan2(gy, gx))
    np.testing.assert_allclose(np.degrees(gradient_direction([[0.0]], [[2.0]])), [[90.0]])
    with pytest.raises(SegeduInputError, match="same shape"):
        gradient_magnitude(gx, gy[:-1])
    with pytest.raises(SegeduInputError, match="same shape"):
        gradient_direction(gx, gy.T)


def test_sobel_magnitude_is_isotropic_enough_on_a_disc():
    rr, cc = np.mgrid[0:65, 0:65]
    disc = (((rr - 32) ** 2 + (cc - 32) ** 2) < 20**2).astype(float)
    smooth = gaussian_smooth(disc, 2.0)
    mag = gradient_magnitude(*sobel(smooth))
    radius = np.hypot(rr - 32, cc - 32)
    ring = np.abs(radius - 20) < 0.5
    assert mag[ring].std() / mag[ring].mean() < 0.1


# --------------------------------------------------------------------------------------------
# Laplacian, Gaussian, LoG
# --------------------------------------------------------------------------------------------
def test_laplacian_4_equals_scipy_laplace_and_8_equals_its_kernel():
    img = real("moon", step=2)
    np.testing.assert_allclose(laplacian(img), ndi.laplace(img, mode="reflect"), **TOL)
    np.testing.assert_allclose(laplacian(img, neighbours=8), ndi.correlate(img, LAPLACE_8, mode="reflect"), **TOL)
    # 8 = 4 plus the two diagonal second differences
    diag = ndi.correlate(img, np.array([[1, 0, 1], [0, -4, 0], [1, 0, 1]], float), mode="reflect")
    np.testing.assert_allclose(laplacian(img, 8), laplacian(img, 4) + diag, **TOL)


def test_laplacian_of_quadratic_is_constant():
    rr, cc = np.mgrid[0:9, 0:11].astype(float)
    img = 0.5 * rr**2 + 1.5 * cc**2  # Laplacian = 1 + 3
    np.testing.assert_allclose(laplacian(img)[1:-1, 1:-1], 4.0)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.3])
def test_gaussian_and_log_equal_scipy(sigma):
    img = real("camera", step=2)
    scale = img.max() - img.min()
    np.testing.assert_allclose(gaussian_smooth(img, sigma), ndi.gaussian_filter(img, sigma), atol=1e-12)
    np.testing.assert_allclose(log_filter(img, sigma), ndi.gaussian_laplace(img, sigma), atol=1e-10 * scale)


def test_log_is_laplacian_of_blur_up_to_discretisation():
    img = real("coins", step=2)
    approx = laplacian(gaussian_smooth(img, 2.0))
    exact = log_filter(img, 2.0)
    inner = (slice(10, -10), slice(10, -10))
    corr = np.corrcoef(approx[inner].ravel(), exact[inner].ravel())[0, 1]
    assert corr > 0.95


def test_gaussian_sigma_zero_is_identity():
    img = rand((6, 7))
    np.testing.assert_array_equal(gaussian_smooth(img, 0), img)


# --------------------------------------------------------------------------------------------
# non-maximum suppression
# --------------------------------------------------------------------------------------------
def _profiles(shape, offset):
    """A key per pixel that is constant along lines in the direction ``offset``."""
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    return {(0, 1): rr, (1, 0): cc, (1, 1): rr - cc, (1, -1): rr + cc}[offset]


def _assert_one_pixel_per_profile(kept, d, offset, border=3):
    """Along every line of pixels parallel to the gradient, exactly the pixel nearest the ridge survives."""
    key = _profiles(kept.shape, offset)
    inner = np.zeros(kept.shape, dtype=bool)
    inner[border:-border, border:-border] = True
    checked = 0
    for value in np.unique(key[inner]):
        line = key == value
        idx = np.flatnonzero(line.ravel())
        nearest = idx[np.argmin(np.abs(d.ravel()[idx]))]
        if not inner.ravel()[nearest]:
            continue
        got = np.flatnonzero((kept & inner & line).ravel())
        assert got.tolist() == [nearest], f"profile {value}: kept {got.tolist()}, expected [{nearest}]"
        checked += 1
    assert checked >= 20


# (angle of the gradient in degrees, the NMS neighbour offset it must use)
ORIENTATIONS = [(0, (0, 1)), (45, (1, 1)), (90, (1, 0)), (135, (1, -1))]


@pytest.mark.parametrize("angle, offset", ORIENTATIONS)
def test_nms_thins_a_blurred_line_ridge_to_one_pixel(angle, offset):
    # A blurred line whose normal (the gradient direction) is at `angle`: the magnitude is a
    # ridge along the line; NMS must keep one pixel per profile across it.
    rr, cc = np.mgrid[0:41, 0:41].astype(float)
    t = np.radians(angle)
    d = (rr - 20) * np.sin(t) + (cc - 20) * np.cos(t) - 0.3  # signed distance to the line
    magnitude = np.exp(-(d**2) / (2 * 1.5**2))
    direction = np.full(magnitude.shape, t)
    thinned = non_maximum_suppression(magnitude, direction)
    _assert_one_pixel_per_profile(thinned > 0, d, offset)
    # opposite gradient direction: same result
    np.testing.assert_array_equal(non_maximum_suppression(magnitude, direction + np.pi), thinned)


@pytest.mark.parametrize("angle, offset", ORIENTATIONS)
def test_nms_on_sobel_of_a_blurred_step_edge(angle, offset):
    rr, cc = np.mgrid[0:41, 0:41].astype(float)
    t = np.radians(angle)
    d = (rr - 20) * np.sin(t) + (cc - 20) * np.cos(t) - 0.3
    img = 0.5 * (1 + erf(d / (np.sqrt(2) * 1.5)))  # brighter along the gradient direction
    gx, gy = sobel(img)
    mag = gradient_magnitude(gx, gy)
    theta = gradient_direction(gx, gy)
    strong = mag > 0.1 * mag.max()
    bins = np.round(np.mod(np.degrees(theta[strong]), 180) / 45) % 4 * 45
    assert set(bins.tolist()) == {angle}
    thinned = non_maximum_suppression(mag, theta)
    _assert_one_pixel_per_profile(thinned > 0.05 * mag.max(), d, offset)


def test_nms_wrong_diagonal_would_fail():
    # At 45 degrees (gradient down-right) the compared neighbours are up-left and down-right.
    mag = np.zeros((5, 5))
    mag[2, 2] = 2.0
    mag[1, 3] = mag[3, 1] = 3.0  # larger values on the other diagonal must not suppress it
    direction = np.full((5, 5), np.pi / 4)
    assert non_maximum_suppression(mag, direction)[2, 2] == 2.0
    assert non_maximum_suppression(mag, direction + np.pi / 2)[2, 2] == 0.0  # 135: compares them


def test_nms_bins_boundaries_and_borders():
    mag = np.ones((3, 3))
    mag[1, 1] = 2.0
    for deg in (-22.4, 22.4, 22.5, 67.4, 67.5, 112.5, 157.4, 157.5, 180, 359):
        out = non_maximum_suppression(mag, np.full((3, 3), np.radians(deg)))
        assert out[1, 1] == 2.0
        assert out.sum() == 2.0  # the border is always 0
    assert non_maximum_suppression(np.ones((2, 5)), np.zeros((2, 5))).sum() == 0
    # a plateau two pixels wide across the edge survives in full (>=)
    plateau = np.array([[0, 1, 3, 3, 1, 0]] * 3, dtype=float)
    np.testing.assert_array_equal(non_maximum_suppression(plateau, np.zeros_like(plateau))[1], [0, 0, 3, 3, 0, 0])


# --------------------------------------------------------------------------------------------
# hysteresis and Canny
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["camera", "coins"])
def test_hysteresis_matches_skimage_with_4_connectivity(name):
    img = real(name, step=2)
    mag = gradient_magnitude(*sobel(img)) + rand(img.shape, seed=7) * 1e-9  # no exact ties
    for low, high in [(0.1, 0.3), (0.2, 0.5), (0.3, 0.3)]:
        got = hysteresis_threshold(mag, low, high, connectivity=4)
        np.testing.assert_array_equal(got, filters.apply_hysteresis_threshold(mag, low, high))


def test_hysteresis_8_connectivity_matches_component_reference():
    mag = rand((80, 90), seed=8)
    low, high = 0.6, 0.97
    got = hysteresis_threshold(mag, low, high)
    labels, n = ndi.label(mag >= low, structure=np.ones((3, 3)))
    keep = np.zeros(n + 1, dtype=bool)
    keep[np.unique(labels[mag >= high])] = True
    keep[0] = False
    np.testing.assert_array_equal(got, keep[labels])
    assert got.sum() > hysteresis_threshold(mag, low, high, connectivity=4).sum()


def test_hysteresis_is_inclusive_and_checks_order():
    m = np.array([[0.5, 0.2, 0.0, 0.2]])
    np.testing.assert_array_equal(hysteresis_threshold(m, 0.2, 0.5), [[True, True, False, False]])
    with pytest.raises(SegeduInputError, match="low must not exceed high"):
        hysteresis_threshold(m, 0.6, 0.5)
    with pytest.raises(SegeduInputError, match="connectivity"):
        hysteresis_threshold(m, 0.1, 0.5, connectivity=6)


def _f1_with_tolerance(a, b):
    """F1 of two edge maps where an edge pixel within one pixel (8-neighbourhood) of the other counts."""
    box = np.ones((3, 3), dtype=bool)
    precision = (a & ndi.binary_dilation(b, box)).sum() / max(a.sum(), 1)
    recall = (b & ndi.binary_dilation(a, box)).sum() / max(b.sum(), 1)
    return 2 * precision * recall / max(precision + recall, 1e-12)


@pytest.mark.parametrize("name", REAL)
@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_canny_agrees_with_skimage_on_real_images(name, sigma):
    img = real(name, step=2)
    ours = canny(img, sigma=sigma)
    theirs = feature.canny(img, sigma=sigma, low_threshold=0.1, high_threshold=0.2)
    assert ours.dtype == bool and ours.shape == img.shape
    assert _f1_with_tolerance(ours, theirs) > 0.9
    assert 0.8 < ours.sum() / max(theirs.sum(), 1) < 1.25


def test_canny_on_synthetic_shapes():
    rr, cc = np.mgrid[0:96, 0:96]
    img = np.zeros((96, 96))
    img[((rr - 30) ** 2 + (cc - 34) ** 2) < 18**2] = 1.0  # a disc
    img[60:85, 20:80] = 0.6  # a rectangle
    img[np.abs(rr + cc - 150) < 6] += 0.3  # a diagonal band (away from the disc)
    img += np.random.default_rng(9).normal(0, 0.03, img.shape)
    for sigma in (1.0, 2.0):
        ours = canny(img, sigma, 0.1, 0.3)
        theirs = feature.canny(img, sigma, 0.1, 0.3)
        assert _f1_with_tolerance(ours, theirs) > 0.85
    # the detected edges of the disc lie on its boundary and are one pixel wide (no 2x2 blocks)
    edges = canny(img, 2.0, 0.1, 0.3)
    on_disc = edges & (np.hypot(rr - 30, cc - 34) < 24) & (rr < 50)
    radius = np.hypot(rr - 30, cc - 34)[on_disc]
    assert on_disc.sum() > 80 and np.all(np.abs(radius - 18) < 1.5)
    blocks = edges[:-1, :-1] & edges[1:, :-1] & edges[:-1, 1:] & edges[1:, 1:]
    assert blocks.sum() <= 2


def test_canny_sigma_and_threshold_monotone():
    img = real("coins", step=2)
    counts = [canny(img, s).sum() for s in (0.5, 1.0, 2.0, 4.0)]
    assert counts == sorted(counts, reverse=True)
    assert canny(img, 1.0, 0.2, 0.4).sum() < canny(img, 1.0, 0.1, 0.2).sum()
    flat = np.full((10, 10), 0.3)
    assert not canny(flat).any()


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_errors_name_the_problem_and_the_fix():
    img = rand((8, 8))
    with pytest.raises(SegeduInputError, match="colour image: convert it to grey"):
        correlate2d(rand((8, 8, 3)), SOBEL_X)
    with pytest.raises(SegeduInputError, match="must be an H×W grey image"):
        sobel(np.zeros(5))
    with pytest.raises(SegeduInputError, match="kernel must be a kh×kw kernel"):
        convolve2d(img, np.ones(3))
    with pytest.raises(SegeduInputError, match="kernel is empty"):
        correlate2d(img, np.ones((0, 3)))
    with pytest.raises(SegeduTypeError, match="kernel is boolean"):
        correlate2d(img, np.ones((3, 3), dtype=bool))
    with pytest.raises(SegeduTypeError, match="boolean mask"):
        sobel(img > 0.5)
    with pytest.raises(SegeduInputError, match="NaN"):
        laplacian(np.full((3, 3), np.nan))
    with pytest.raises(SegeduInputError, match="img is empty"):
        sobel(np.zeros((0, 4)))
    with pytest.raises(SegeduInputError, match="neighbours must be one of 4, 8"):
        laplacian(img, neighbours=6)
    with pytest.raises(SegeduInputError, match="sigma must be greater than 0"):
        log_filter(img, 0)
    with pytest.raises(SegeduInputError, match="sigma must be at least 0"):
        canny(img, sigma=-1)
    with pytest.raises(SegeduInputError, match="low must be greater than 0"):
        canny(img, low=0.0)
    with pytest.raises(SegeduInputError, match="low must not exceed high"):
        canny(img, low=0.3, high=0.2)
    with pytest.raises(SegeduTypeError, match="sigma must be a real number"):
        gaussian_smooth(img, "1")
    with pytest.raises(SegeduInputError, match="magnitude and direction must have the same shape"):
        non_maximum_suppression(img, img[:, :-1])
    # ValueError and TypeError still catch them
    with pytest.raises(ValueError):
        sobel(np.zeros(5))


def test_inputs_are_not_modified_and_lists_are_accepted():
    img = rand((9, 9))
    before = img.copy()
    sobel(img)
    canny(img)
    correlate2d(img, SOBEL_X)
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(correlate2d([[1.0, 2.0], [3.0, 4.0]], [[1.0]]), [[1.0, 2.0], [3.0, 4.0]])


def test_correlate_on_a_full_size_image_equals_scipy():
    # A 512×512 image with a 7×7 kernel: the whole image, borders included, matches scipy.
    # How long it takes (one vectorised multiply-add per kernel weight) is measured by `make bench`.
    img = real("camera")
    kernel = np.arange(49, dtype=float).reshape(7, 7) / 49
    np.testing.assert_allclose(correlate2d(img, kernel), ndi.correlate(img, kernel, mode="reflect"), **TOL)
