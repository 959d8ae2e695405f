"""segedu.classical thresholding against scikit-image on random and on real images.

About exact equality with ``img > skimage.filters.threshold_local(...)``: both implementations
compute the same local mean but add the numbers in a different order (a summed-area table here,
running sums in scipy.ndimage), so their thresholds differ by rounding (about 1e-13 for float64
images). A pixel's classification can therefore differ only where the pixel ties with its
threshold up to rounding. Such ties are rare for continuous random images, but common on real
8-bit images with ``offset=0``: in a perfectly flat window every pixel equals its own local mean,
and each implementation breaks that tie by its own rounding noise. The tests therefore assert
that every mismatching pixel is a near-tie, ``|img - T_skimage| < TIE_TOL`` (1e-9 times the image
scale for float64; a few float32 ulps for float32), and that mismatches are very few wherever ties
are not built into the input (random images, or a non-zero offset).
"""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from skimage import color, data, util
from skimage.filters import threshold_local, threshold_otsu

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.classical import adaptive_threshold, local_threshold_surface, otsu_threshold, threshold
from segedu.classical import thresholding as thresholding_module

SKIMAGE_IMAGES = ["camera", "coins", "page", "text", "moon", "astronaut", "coffee", "chelsea"]
SKLEARN_IMAGES = ["china.jpg", "flower.jpg"]
REAL_IMAGES = SKIMAGE_IMAGES + SKLEARN_IMAGES

_CACHE: dict = {}


def real_image(name: str) -> np.ndarray:
    """A bundled real image as a float64 grey image in [0, 1]."""
    if name not in _CACHE:
        if name in SKLEARN_IMAGES:
            from sklearn.datasets import load_sample_image

            rgb = load_sample_image(name)
        else:
            rgb = getattr(data, name)()
        img = color.rgb2gray(rgb) if rgb.ndim == 3 else util.img_as_float(rgb)
        _CACHE[name] = np.ascontiguousarray(img, dtype=np.float64)
    return _CACHE[name]


def tie_tol(img: np.ndarray) -> float:
    scale = max(1.0, float(np.abs(img).max()))
    return (1e-9 if img.dtype == np.float64 else 8 * np.finfo(np.float32).eps) * scale


def assert_matches_threshold_local(img, block_size, offset, method, max_fraction):
    """adaptive_threshold == img > threshold_local, except at a few near-ties (see module doc)."""
    expected_t = threshold_local(img, block_size, method=method, offset=offset)
    got = adaptive_threshold(img, block_size, offset=offset, method=method)
    assert got.dtype == bool and got.shape == img.shape
    mismatch = got != (img > expected_t)
    near_tie = np.abs(img.astype(np.float64) - expected_t.astype(np.float64)) < tie_tol(img)
    not_ties = int(np.count_nonzero(mismatch & ~near_tie))
    assert not_ties == 0, f"{not_ties} pixels differ from skimage although they are not near-ties"
    assert np.count_nonzero(mismatch) <= max_fraction * img.size, (
        f"{np.count_nonzero(mismatch)} of {img.size} pixels differ (all near-ties)"
    )


# --------------------------------------------------------------------------------------------
# threshold
# --------------------------------------------------------------------------------------------
def test_threshold_is_strictly_greater():
    img = np.array([[0.2, 0.5, 0.5000001], [0.9, 0.5, 0.1]])
    got = threshold(img, 0.5)
    np.testing.assert_array_equal(got, [[False, False, True], [True, False, False]])
    assert got.dtype == bool


def test_threshold_random_matches_comparison():
    rng = np.random.default_rng(0)
    img = rng.random((17, 23)).astype(np.float32)
    for t in (0.0, 0.3, float(img[3, 4]), 1.0):
        np.testing.assert_array_equal(threshold(img, t), img > t)
    surface = rng.random(img.shape)
    np.testing.assert_array_equal(threshold(img, surface), img > surface)


def test_threshold_integer_image_keeps_values():
    img = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(threshold(img, 127), [[False, False, True, True]])


def test_threshold_errors():
    img = np.zeros((3, 3))
    with pytest.raises(SegeduInputError, match="threshold surface of the image's shape"):
        threshold(img, np.zeros((2, 2)))
    with pytest.raises(SegeduTypeError, match="t must be a real number"):
        threshold(img, "0.5")
    with pytest.raises(SegeduInputError, match="finite"):
        threshold(img, float("nan"))


# --------------------------------------------------------------------------------------------
# otsu_threshold
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nbins", [256, 17, 1000])
@pytest.mark.parametrize("name", REAL_IMAGES)
def test_otsu_matches_skimage_on_real_images(name, nbins):
    img = real_image(name)
    for x in (img, img.astype(np.float32)):
        got = otsu_threshold(x, nbins=nbins)
        assert type(got) is float
        expected = float(threshold_otsu(x, nbins=nbins))
        assert abs(got - expected) <= 1e-9 * float(x.max() - x.min()), (name, x.dtype, got, expected)


@pytest.mark.parametrize("seed", range(20))
def test_otsu_matches_skimage_on_random_images(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 40, size=2))
    # mixtures of two or three Gaussians, at various scales and offsets
    centres = rng.uniform(-5, 5, size=int(rng.integers(2, 4)))
    img = rng.choice(centres, size=shape) + rng.normal(0, rng.uniform(0.1, 2), size=shape)
    img = img * 10.0 ** rng.integers(-3, 4)
    if img.max() == img.min():
        pytest.skip("constant draw")
    nbins = int(rng.choice([2, 3, 16, 256]))
    got = otsu_threshold(img, nbins=nbins)
    expected = float(threshold_otsu(img, nbins=nbins))
    assert abs(got - expected) <= 1e-9 * float(img.max() - img.min())


def test_otsu_separates_two_modes():
    rng = np.random.default_rng(3)
    bright = rng.random((64, 64)) < 0.3
    img = np.where(bright, 0.8, 0.2) + rng.normal(0, 0.03, (64, 64))
    t = otsu_threshold(img)
    # the split falls in the gap between the modes; the returned bin centre may lie up to half a
    # bin below the darkest mode's brightest pixel (the first of the tied splits wins)
    half_bin = (img.max() - img.min()) / 256 / 2
    assert img[~bright].max() - half_bin <= t < img[bright].min()
    far = np.abs(img - t) > half_bin
    np.testing.assert_array_equal(threshold(img, t)[far], bright[far])


def test_otsu_integer_image_is_treated_as_float():
    img = data.camera()
    got = otsu_threshold(img)
    assert got == otsu_threshold(img.astype(np.float64))
    assert got == pytest.approx(float(threshold_otsu(img.astype(np.float64))), abs=1e-9 * 255)
    assert 0 < got < 255  # values are kept, not rescaled to [0, 1]


def test_otsu_constant_image_returns_the_constant():
    img = np.full((4, 5), 0.25)
    assert otsu_threshold(img) == 0.25 == float(threshold_otsu(img))
    assert not threshold(img, otsu_threshold(img)).any()


def test_otsu_two_values():
    img = np.array([[0.0, 0.0, 1.0]])
    t = otsu_threshold(img)
    assert 0.0 <= t < 1.0
    np.testing.assert_array_equal(threshold(img, t), img > 0.5)


def test_otsu_nbins_errors():
    with pytest.raises(SegeduInputError, match="nbins must be at least 2"):
        otsu_threshold(np.eye(3), nbins=1)
    with pytest.raises(SegeduTypeError, match="nbins must be an int"):
        otsu_threshold(np.eye(3), nbins=256.0)


# --------------------------------------------------------------------------------------------
# adaptive_threshold and local_threshold_surface
# --------------------------------------------------------------------------------------------
BLOCK_SIZES = [1, 3, 5, 11, 25, 51]
OFFSETS = [0.0, 0.03, -0.05]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["mean", "gaussian"])
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_adaptive_matches_skimage_on_random_images(block_size, method, dtype):
    rng = np.random.default_rng(block_size * 7 + (method == "mean") + 2 * (dtype == np.float32))
    for shape in [(40, 57), (9, 30), (1, 5)]:  # images smaller than the block are mirrored repeatedly
        for offset in OFFSETS:
            img = (rng.random(shape) * rng.choice([1.0, 255.0])).astype(dtype)
            assert_matches_threshold_local(img, block_size, offset, method, max_fraction=1e-3)


@pytest.mark.parametrize("method", ["mean", "gaussian"])
@pytest.mark.parametrize("name", REAL_IMAGES)
def test_adaptive_matches_skimage_on_real_images(name, method):
    img = real_image(name)
    # offset 0 ties every pixel of a flat window with its own mean (see the module docstring), so
    # up to 10 % of the pixels of these 8-bit images may differ there, all of them near-ties;
    # with a non-zero offset a tie needs img - mean == -offset exactly, which is rare.
    for block_size, offset, max_fraction in [(3, 0.0, 0.1), (15, 0.0, 0.1), (51, -0.02, 1e-3), (7, 0.01, 1e-3)]:
        for x in (img, img.astype(np.float32)):
            assert_matches_threshold_local(x, block_size, offset, method, max_fraction)


@pytest.mark.parametrize("method", ["mean", "gaussian"])
@pytest.mark.parametrize("block_size", [3, 9, 31])
def test_surface_matches_threshold_local(block_size, method):
    rng = np.random.default_rng(block_size)
    img = rng.random((33, 47)) * 4 - 1
    for offset in OFFSETS:
        got = local_threshold_surface(img, block_size, offset=offset, method=method)
        expected = threshold_local(img, block_size, method=method, offset=offset)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)
        got32 = local_threshold_surface(img.astype(np.float32), block_size, offset=offset, method=method)
        expected32 = threshold_local(img.astype(np.float32), block_size, method=method, offset=offset)
        assert got32.dtype == np.float32
        np.testing.assert_allclose(got32, expected32, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["mean", "gaussian"])
def test_surface_matches_threshold_local_on_real_image(method):
    img = real_image("page")
    for block_size in (3, 35):
        got = local_threshold_surface(img, block_size, offset=0.01, method=method)
        expected = threshold_local(img, block_size, method=method, offset=0.01)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)


def test_adaptive_is_image_above_surface():
    rng = np.random.default_rng(4)
    for dtype in (np.float64, np.float32):
        img = rng.random((20, 30)).astype(dtype)
        for method in ("mean", "gaussian"):
            surface = local_threshold_surface(img, 7, offset=-0.01, method=method)
            np.testing.assert_array_equal(adaptive_threshold(img, 7, offset=-0.01, method=method), img > surface)


def test_mean_surface_by_hand():
    # mirrored border: the corner pixel is repeated 4 times in the window at the corner
    img = np.zeros((3, 3))
    img[0, 0] = 9.0
    np.testing.assert_allclose(local_threshold_surface(img, 3), [[4, 2, 0], [2, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(local_threshold_surface(img, 3, offset=1.0), [[3, 1, -1], [1, 0, -1], [-1, -1, -1]])


def test_gaussian_kernel_is_truncated_like_scipy():
    # a single bright pixel spreads to exactly int(4 sigma + 0.5) pixels on each side
    img = np.zeros((81, 81))
    img[40, 40] = 1.0
    for block_size in (3, 7, 21, 51):
        sigma = (block_size - 1) / 6
        radius = int(4 * sigma + 0.5)
        spread = np.nonzero(local_threshold_surface(img, block_size, method="gaussian")[40])[0]
        assert spread.min() == 40 - radius and spread.max() == 40 + radius


def test_default_method_is_mean():
    rng = np.random.default_rng(5)
    img = rng.random((12, 12))
    np.testing.assert_array_equal(local_threshold_surface(img, 5), local_threshold_surface(img, 5, method="mean"))


# --------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["mean", "gaussian"])
def test_dtypes(method):
    rng = np.random.default_rng(6)
    img8 = rng.integers(0, 256, size=(16, 20), dtype=np.uint8)
    s64 = local_threshold_surface(img8.astype(np.float64), 5, offset=2, method=method)
    s_int = local_threshold_surface(img8, 5, offset=2, method=method)
    assert s_int.dtype == np.float64
    np.testing.assert_array_equal(s_int, s64)  # values kept, not rescaled
    assert local_threshold_surface(img8.astype(np.float32), 5, method=method).dtype == np.float32
    assert local_threshold_surface(img8.astype(np.float64), 5, method=method).dtype == np.float64
    for x in (img8, img8.astype(np.float32), img8.astype(np.float64)):
        mask = adaptive_threshold(x, 5, offset=2, method=method)
        assert mask.dtype == bool and mask.shape == x.shape
        assert threshold(x, 100).dtype == bool
    assert adaptive_threshold(img8, 5, offset=2, method=method).tolist() == (img8 > s64).tolist()


def test_inputs_are_not_modified():
    rng = np.random.default_rng(7)
    img = rng.random((10, 10))
    before = img.copy()
    otsu_threshold(img)
    adaptive_threshold(img, 5, method="gaussian")
    adaptive_threshold(img, 5, method="mean")
    np.testing.assert_array_equal(img, before)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
ALL = [
    lambda img: threshold(img, 0.5),
    lambda img: otsu_threshold(img),
    lambda img: adaptive_threshold(img, 3),
    lambda img: local_threshold_surface(img, 3, method="gaussian"),
]


@pytest.mark.parametrize("call", ALL)
def test_error_colour_image(call):
    with pytest.raises(SegeduInputError, match=r"colour image.*rgb2gray"):
        call(np.zeros((8, 8, 3)))


@pytest.mark.parametrize("call", ALL)
def test_error_bool_image(call):
    with pytest.raises(SegeduTypeError, match=r"boolean mask.*astype\(float\)"):
        call(np.zeros((8, 8), bool))


@pytest.mark.parametrize("call", ALL)
def test_error_nan(call):
    img = np.zeros((8, 8))
    img[2, 3] = np.nan
    with pytest.raises(SegeduInputError, match=r"1 NaN.*nan_to_num"):
        call(img)


@pytest.mark.parametrize("call", ALL)
def test_error_empty_image(call):
    with pytest.raises(SegeduInputError, match="empty"):
        call(np.zeros((0, 4)))


@pytest.mark.parametrize("func", [adaptive_threshold, local_threshold_surface])
def test_error_even_block_size(func):
    with pytest.raises(SegeduInputError, match="block_size must be odd.*got 16. Try 17"):
        func(np.zeros((8, 8)), 15 + 1)


@pytest.mark.parametrize("func", [adaptive_threshold, local_threshold_surface])
def test_error_block_size_type_and_sign(func):
    with pytest.raises(SegeduTypeError, match="block_size must be an int"):
        func(np.zeros((8, 8)), 3.0)
    with pytest.raises(SegeduInputError, match="block_size must be at least 1"):
        func(np.zeros((8, 8)), -3)


@pytest.mark.parametrize("func", [adaptive_threshold, local_threshold_surface])
def test_error_method(func):
    with pytest.raises(SegeduInputError, match="method must be one of 'mean', 'gaussian'"):
        func(np.zeros((8, 8)), 3, method="median")


def test_error_offset():
    with pytest.raises(SegeduTypeError, match="offset must be a real number"):
        adaptive_threshold(np.zeros((8, 8)), 3, offset=None)
    with pytest.raises(SegeduInputError, match="offset must be a finite number"):
        adaptive_threshold(np.zeros((8, 8)), 3, offset=float("inf"))


def test_error_stacked_image_hint():
    with pytest.raises(SegeduInputError, match=r"img\[0\]"):
        otsu_threshold(np.zeros((1, 8, 8)))


def test_reference_does_not_use_skimage_or_scipy():
    """The reference is written from the maths: it may use numpy only."""
    tree = ast.parse(inspect.getsource(thresholding_module))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported <= {"numpy", "numbers", "__future__"}, imported


def test_gaussian_surface_is_the_same_blur_as_gaussian_smooth():
    # classical has one Gaussian (segedu/classical/_gaussian.py): the adaptive surface with
    # block_size b is gaussian_smooth with sigma = (b - 1) / 6, to the last bit.
    from segedu.classical import gaussian_smooth

    img = np.random.default_rng(11).random((23, 31))
    for block_size in (3, 9, 25):
        np.testing.assert_array_equal(
            local_threshold_surface(img, block_size, method="gaussian"), gaussian_smooth(img, (block_size - 1) / 6)
        )
