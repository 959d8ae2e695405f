"""segedu.classical regions against scipy.ndimage, scikit-image and scikit-learn.

Peers: ``scipy.ndimage.label`` for connected components, ``skimage.segmentation.flood`` for region
growing where the running mean cannot move (piecewise-constant images, where it equals the seed's
value), and ``sklearn.cluster.KMeans`` for k-means. Region growing with a running mean has no
library peer, so its visiting rule is pinned by small hand-checked examples.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.segmentation import flood
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.classical import (
    connected_components,
    distance_transform_watershed,
    kmeans_segment,
    quadtree_split,
    region_grow,
    split_and_merge,
)
from segedu.data import load_sample

STRUCTURE = {4: ndi.generate_binary_structure(2, 1), 8: np.ones((3, 3), dtype=bool)}
_CACHE: dict = {}


def sample(name: str, step: int = 1, as_gray: bool = False) -> np.ndarray:
    key = (name, step, as_gray)
    if key not in _CACHE:
        _CACHE[key] = np.ascontiguousarray(load_sample(name, as_gray=as_gray)[::step, ::step])
    return _CACHE[key]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label maps are equal up to renaming the labels (a bijection)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(set(pairs[0])) == pairs.shape[1] == len(set(pairs[1]))


def inertia(X: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    X = X.reshape(labels.size, -1)
    return float(((X - centres.reshape(len(centres), -1)[labels.ravel()]) ** 2).sum())


def piecewise_image(seed=0, shape=(48, 56), levels=(0.0, 0.3, 0.6, 1.0), n_shapes=12):
    """Rectangles and discs at a few grey levels: a piecewise-constant image."""
    rng = np.random.default_rng(seed)
    img = np.full(shape, levels[0])
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    for _ in range(n_shapes):
        level = rng.choice(levels[1:])
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        if rng.random() < 0.5:
            img[max(0, r - 6) : r + rng.integers(2, 10), max(0, c - 5) : c + rng.integers(2, 12)] = level
        else:
            img[(rr - r) ** 2 + (cc - c) ** 2 < rng.integers(4, 60)] = level
    return img


# --------------------------------------------------------------------------------------------
# connected components
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("density", [0.2, 0.45, 0.6, 0.8])
def test_connected_components_match_scipy_label(connectivity, density):
    mask = np.random.default_rng(int(density * 100)).random((97, 131)) < density
    got, n = connected_components(mask, connectivity, return_num=True)
    expected, n_expected = ndi.label(mask, STRUCTURE[connectivity])
    assert got.dtype == np.int64 and got.shape == mask.shape
    assert n == n_expected == got.max()
    assert same_partition(got, expected)
    np.testing.assert_array_equal(got, expected)  # even the numbering: raster order of first pixel


@pytest.mark.parametrize("connectivity", [4, 8])
def test_connected_components_on_thresholded_coins(connectivity):
    img = sample("coins")
    mask = img > 0.5
    got = connected_components(mask, connectivity=connectivity)
    expected, n = ndi.label(mask, STRUCTURE[connectivity])
    assert got.max() == n and same_partition(got, expected)


def test_connected_components_4_vs_8_and_edge_cases():
    diagonal = np.eye(5, dtype=bool)
    assert connected_components(diagonal, 4).max() == 5
    assert connected_components(diagonal, 8).max() == 1
    assert connected_components(np.zeros((3, 4), dtype=bool)).max() == 0
    np.testing.assert_array_equal(connected_components(np.ones((3, 4), dtype=bool)), np.ones((3, 4)))
    np.testing.assert_array_equal(connected_components(np.array([[0, 1, 0, 1]])), [[0, 1, 0, 2]])
    # a spiral: one long path, the worst case for label propagation
    spiral = np.zeros((41, 41), dtype=bool)
    r0, r1, c0, c1 = 0, 40, 0, 40
    while r0 <= r1 and c0 <= c1:
        spiral[r0, c0 : c1 + 1] = True
        spiral[r0 : r1 + 1, c1] = True
        if r1 > r0 + 1:
            spiral[r1, c0 + 2 : c1 + 1] = True
        if c1 > c0 + 3:
            spiral[r0 + 2 : r1 + 1, c0 + 2] = True
        r0, r1, c0, c1 = r0 + 2, r1 - 2, c0 + 2, c1 - 2
    got = connected_components(spiral, 4)
    expected, _ = ndi.label(spiral)
    assert same_partition(got, expected)


def test_connected_components_errors():
    with pytest.raises(SegeduInputError, match="binary mask"):
        connected_components(np.array([[0, 2, 1]]))
    with pytest.raises(SegeduInputError, match="connectivity must be one of 4, 8"):
        connected_components(np.ones((2, 2), dtype=bool), connectivity=6)
    with pytest.raises(SegeduInputError, match="H×W mask"):
        connected_components(np.ones((2, 2, 2), dtype=bool))


# --------------------------------------------------------------------------------------------
# region growing
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_grow_equals_flood_fill_on_piecewise_constant_images(connectivity, seed):
    # Every pixel that joins has the seed's value, so the running mean never moves and growing is a
    # flood fill: the connected component of |I - I(seed)| < T that holds the seed.
    img = piecewise_image(seed)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        point = (int(rng.integers(img.shape[0])), int(rng.integers(img.shape[1])))
        got = region_grow(img, point, 0.2, connectivity=connectivity)
        expected = flood(img, point, tolerance=0.0, connectivity=1 if connectivity == 4 else 2)
        np.testing.assert_array_equal(got, expected)


def test_region_grow_finds_a_noisy_disc():
    rng = np.random.default_rng(3)
    rr, cc = np.mgrid[0:64, 0:64]
    disc = (rr - 30) ** 2 + (cc - 34) ** 2 < 15**2
    img = np.where(disc, 0.8, 0.2) + rng.normal(0, 0.05, disc.shape)
    got = region_grow(img, (30, 34), 0.25)
    assert (got & disc).sum() / (got | disc).sum() > 0.98


def test_region_grow_4_vs_8_connectivity_on_a_diagonal():
    img = np.zeros((6, 6))
    img[np.arange(6), np.arange(6)] = 1.0
    img[np.arange(5), np.arange(1, 6)] = 0.9  # a staircase that 4-connectivity can climb ...
    img[2, 3] = 0.0  # ... until a gap that only a diagonal step can cross
    four = region_grow(img, (0, 0), 0.3, connectivity=4)
    eight = region_grow(img, (0, 0), 0.3, connectivity=8)
    assert four.sum() < eight.sum()
    assert not four[5, 5] and eight[5, 5]
    np.testing.assert_array_equal(region_grow(np.eye(4), (0, 0), 0.5, connectivity=8), np.eye(4, dtype=bool))
    assert region_grow(np.eye(4), (0, 0), 0.5, connectivity=4).sum() == 1


def test_running_mean_differs_from_fixed_seed_mean_on_a_ramp():
    # Running mean: 0 (mean 0) -> 1 joins (|1-0|<1.6, mean .5) -> 2 joins (|2-.5|=1.5, mean 1)
    # -> 3 is rejected (|3-1|=2). A fixed mean I(seed)=0 stops after 1 (|2-0|=2).
    ramp = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    running = region_grow(ramp, (0, 0), 1.6)
    np.testing.assert_array_equal(running, [[1, 1, 1, 0, 0, 0]])
    fixed = flood(ramp, (0, 0), tolerance=1.5)  # |I - I(seed)| <= 1.5, i.e. < 1.6 on this grid
    np.testing.assert_array_equal(fixed, [[1, 1, 0, 0, 0, 0]])
    # on a 2-D ramp the running mean leaks much further
    ramp2 = np.add.outer(np.arange(20.0), np.arange(20.0)) / 10
    assert region_grow(ramp2, (0, 0), 0.35).sum() > flood(ramp2, (0, 0), tolerance=0.34).sum()


def test_running_mean_is_updated_after_every_pixel_in_the_documented_order():
    # 4-neighbours are examined up, left, right, down. From the seed 0: right (1.0) joins first and
    # the mean becomes 0.5; then down (-0.6) fails, |-0.6 - 0.5| = 1.1 >= 1.05. With the mean
    # updated only after the whole expansion, or with "down" examined before "right", -0.6 would join.
    img = np.array([[0.0, 1.0], [-0.6, 5.0]])
    np.testing.assert_array_equal(region_grow(img, (0, 0), 1.05), [[True, True], [False, False]])
    # mirrored so that "down" comes first: now -0.6 joins and 1.0 fails, |1.0 + 0.3| >= 1.05
    np.testing.assert_array_equal(region_grow(img.T, (0, 0), 1.05), [[True, True], [False, False]])
    np.testing.assert_array_equal(
        region_grow(np.array([[0.0, -0.6], [1.0, 5.0]]), (0, 0), 1.05), [[True, True], [False, False]]
    )


def test_rejected_pixel_is_tested_again_from_another_region_pixel():
    # (0, 1) = 1.2 fails from the seed (|1.2 - 0| >= 1.1) but, when (1, 1) is expanded later,
    # the mean is 2/3 and |1.2 - 2/3| < 1.1, so it joins. A "test each pixel once" rule would give 3.
    img = np.array([[0.0, 1.2], [1.0, 1.0]])
    np.testing.assert_array_equal(region_grow(img, (0, 0), 1.1), np.ones((2, 2), dtype=bool))


def test_region_grow_8_neighbour_order_is_row_major():
    # From the seed (1, 1) = 0, the up-left neighbour 1.0 is examined first and joins (mean .5);
    # the down-right -0.6 then fails (|-0.6 - .5| = 1.1). Rotating by 180 degrees swaps their order.
    img = np.full((3, 3), 9.0)
    img[1, 1], img[0, 0], img[2, 2] = 0.0, 1.0, -0.6
    got = region_grow(img, (1, 1), 1.05, connectivity=8)
    assert got[0, 0] and not got[2, 2]
    got_rot = region_grow(img[::-1, ::-1], (1, 1), 1.05, connectivity=8)
    assert got_rot[0, 0] and not got_rot[2, 2]  # now (0, 0) holds -0.6 and is first


def test_region_grow_properties_on_a_real_image():
    img = sample("camera", step=4)
    for point in [(64, 64), (20, 100), (110, 30)]:
        for conn in (4, 8):
            region = region_grow(img, point, 0.08, connectivity=conn)
            assert region[point]
            assert connected_components(region, connectivity=conn).max() == 1
            mean = img[region].mean()
            # every boundary neighbour outside the region fails against the final mean, or was
            # tested against an earlier one; at least the region is not trivially small or full
            assert 1 < region.sum() < img.size
            assert abs(mean - img[point]) < 0.2
    assert region_grow(img, (5, 5), 0.0).sum() == 1  # |.| < 0 never holds: only the seed
    assert region_grow(np.full((7, 9), 0.5), (3, 3), 1e-9).all()


def test_region_grow_on_a_full_size_image():
    # Speed on this input is measured by `make bench` (segedu/instructor/bench.py), not asserted here.
    img = sample("camera", step=4)  # 128 x 128
    region = region_grow(img, (64, 64), 1.1)  # every |I - mean| <= 1 < 1.1: grows over the whole image
    assert region.dtype == bool and region.shape == img.shape
    assert region.all()
    halves = np.zeros((128, 128))
    halves[:, 64:] = 1.0
    region = region_grow(halves, (64, 64), 0.5)  # a jump of 1 stops the region at the edge
    np.testing.assert_array_equal(region, halves == 1.0)


def test_region_grow_errors():
    img = np.zeros((5, 6))
    with pytest.raises(SegeduInputError, match=r"seed \(5, 0\) is outside the image of shape \(5, 6\)"):
        region_grow(img, (5, 0), 0.1)
    with pytest.raises(SegeduInputError, match="not \\(x, y\\)"):
        region_grow(img, (0, -1), 0.1)
    with pytest.raises(SegeduTypeError, match="seed must be a \\(row, col\\) pair of ints"):
        region_grow(img, (1.5, 2), 0.1)
    with pytest.raises(SegeduTypeError, match="seed must be a \\(row, col\\) pair"):
        region_grow(img, 3, 0.1)
    with pytest.raises(SegeduTypeError, match="seed must be a \\(row, col\\) pair"):
        region_grow(img, (1, 2, 3), 0.1)
    with pytest.raises(SegeduInputError, match="threshold must be at least 0"):
        region_grow(img, (1, 1), -0.1)
    with pytest.raises(SegeduInputError, match="connectivity must be one of 4, 8"):
        region_grow(img, (1, 1), 0.1, connectivity=6)
    with pytest.raises(SegeduInputError, match="colour image: convert it to grey"):
        region_grow(np.zeros((5, 6, 3)), (1, 1), 0.1)
    assert region_grow(img, (np.int64(1), np.int32(2)), 0.1).all()  # numpy ints are fine


# --------------------------------------------------------------------------------------------
# split and merge
# --------------------------------------------------------------------------------------------
def level_set_components(img):
    """Peer for piecewise-constant images: the 4-connected components of each grey level (scipy)."""
    expected = np.zeros(img.shape, dtype=np.int64)
    offset = 0
    for level in np.unique(img):
        lab, n = ndi.label(img == level)
        expected[lab > 0] = lab[lab > 0] + offset
        offset += n
    return expected


SLIDE_IMAGE = np.array([[1, 1, 5, 6], [2, 1, 6, 7], [3, 2, 7, 4], [1, 0, 5, 5]], dtype=float)


def test_split_and_merge_slide_example():
    np.testing.assert_array_equal(
        quadtree_split(SLIDE_IMAGE, 3), [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )
    np.testing.assert_array_equal(split_and_merge(SLIDE_IMAGE, 3), [[1, 1, 2, 2]] * 4)
    np.testing.assert_array_equal(
        split_and_merge(SLIDE_IMAGE, 2), [[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 2, 3], [1, 4, 2, 3]]
    )
    np.testing.assert_array_equal(split_and_merge(SLIDE_IMAGE, 7), np.ones((4, 4)))
    # T = 0: the regions are the 4-connected runs of equal values (13 here: diagonal 6s and 7s part)
    zero = split_and_merge(SLIDE_IMAGE, 0)
    assert zero.max() == 13 and same_partition(zero, level_set_components(SLIDE_IMAGE))


def _adjacent_pairs(labels):
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        d = a != b
        pairs |= set(zip(np.minimum(a, b)[d].tolist(), np.maximum(a, b)[d].tolist()))
    return pairs


@pytest.mark.parametrize("threshold", [0.05, 0.15, 0.3])
def test_split_and_merge_regions_are_homogeneous_connected_and_maximal(threshold):
    img = sample("camera", step=8)  # 64 x 64
    labels = split_and_merge(img, threshold)
    assert labels.dtype == np.int64 and labels.shape == img.shape
    n = labels.max()
    assert set(np.unique(labels)) == set(range(1, n + 1))
    lo = ndi.minimum(img, labels, np.arange(1, n + 1))
    hi = ndi.maximum(img, labels, np.arange(1, n + 1))
    assert np.all(hi - lo <= threshold + 1e-12)  # every region satisfies the predicate
    for lab in range(1, n + 1):  # and is 4-connected
        assert ndi.label(labels == lab)[1] == 1
    for a, b in _adjacent_pairs(labels):  # no two neighbours could still merge
        assert max(hi[a - 1], hi[b - 1]) - min(lo[a - 1], lo[b - 1]) > threshold
    # raster-order numbering
    first = [np.flatnonzero(labels.ravel() == lab)[0] for lab in range(1, n + 1)]
    assert first == sorted(first)


def test_split_and_merge_on_piecewise_image_equals_level_set_components():
    img = piecewise_image(5)
    assert same_partition(split_and_merge(img, 0.1), level_set_components(img))


def test_quadtree_split_leaves_and_min_size():
    img = np.random.default_rng(0).random((32, 40))
    leaves = quadtree_split(img, 0.5, min_size=4)
    for lab in range(1, leaves.max() + 1):
        rows, cols = np.nonzero(leaves == lab)
        h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert (rows.size == h * w) and h >= 4 and w >= 4  # rectangular blocks, no side below 4
        block = img[leaves == lab]
        assert block.max() - block.min() <= 0.5 or h < 8 or w < 8
    fine = quadtree_split(img, 0.5)
    assert fine.max() > leaves.max()
    assert quadtree_split(img, 1.0).max() == 1
    # odd sizes split into floor/ceil halves
    np.testing.assert_array_equal(quadtree_split(np.array([[0.0, 0.0, 1.0]]), 0.5), [[1, 2, 3]])
    assert split_and_merge(np.zeros((1, 1)), 0.0).tolist() == [[1]]


def test_split_and_merge_errors():
    with pytest.raises(SegeduInputError, match="threshold must be at least 0"):
        split_and_merge(SLIDE_IMAGE, -1)
    with pytest.raises(SegeduInputError, match="min_size must be at least 1"):
        split_and_merge(SLIDE_IMAGE, 1, min_size=0)
    with pytest.raises(SegeduInputError, match="H×W grey image"):
        split_and_merge(np.zeros(4), 1)


# --------------------------------------------------------------------------------------------
# k-means
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["china", "flower"])
@pytest.mark.parametrize("k", [3, 5, 8])
def test_kmeans_matches_sklearn_from_the_same_initial_centres(name, k):
    img = sample(name, step=6)
    X = img.reshape(-1, 3)
    init = X[np.random.default_rng(k).choice(len(X), size=k, replace=False)]
    labels, centres = kmeans_segment(img, k, init=init, tol=0, max_iter=300)
    km = KMeans(n_clusters=k, init=init, n_init=1, tol=0, max_iter=300).fit(X)
    ours = inertia(X, labels, centres)
    assert abs(ours - km.inertia_) <= 1e-6 * km.inertia_
    assert adjusted_rand_score(km.labels_, labels.ravel()) > 0.99
    assert labels.shape == img.shape[:2] and labels.dtype == np.int64
    assert centres.shape == (k, 3)


def test_kmeans_grey_image_matches_sklearn():
    img = sample("camera", step=4)
    X = img.reshape(-1, 1)
    init = np.array([[0.1], [0.4], [0.6], [0.9]])
    labels, centres = kmeans_segment(img, 4, init=init, tol=0)
    km = KMeans(4, init=init, n_init=1, tol=0).fit(X)
    assert centres.shape == (4, 1)
    np.testing.assert_allclose(np.sort(centres[:, 0]), np.sort(km.cluster_centers_[:, 0]), atol=1e-9)
    assert adjusted_rand_score(km.labels_, labels.ravel()) > 0.999


@pytest.mark.parametrize("name", ["china", "flower"])
def test_kmeans_own_init_agrees_with_sklearn(name):
    img = sample(name, step=6)
    X = img.reshape(-1, 3)
    labels, centres = kmeans_segment(img, 2, seed=0)
    km = KMeans(2, n_init=10, random_state=0).fit(X)
    assert adjusted_rand_score(km.labels_, labels.ravel()) > 0.99
    labels, centres = kmeans_segment(img, 4, seed=0, n_init=10)
    km = KMeans(4, n_init=10, random_state=0).fit(X)
    assert inertia(X, labels, centres) <= 1.01 * km.inertia_


def test_kmeans_recomputes_centres():
    img = sample("china", step=6)
    X = img.reshape(-1, 3)
    init = X[np.random.default_rng(0).choice(len(X), size=5, replace=False)]
    labels, centres = kmeans_segment(img, 5, init=init, tol=0)  # run until no label changes
    # fixed centres (assign only, never update): clearly worse
    fixed_labels = np.argmin(((X[:, None, :] - init[None]) ** 2).sum(-1), axis=1)
    assert inertia(X, labels, centres) < 0.9 * inertia(X, fixed_labels, init)
    # the result is a fixed point: each centre is the mean of its pixels ...
    for j in range(5):
        np.testing.assert_allclose(centres[j], X[labels.ravel() == j].mean(axis=0), atol=1e-12)
    # ... and every pixel is labelled with its nearest centre
    nearest = np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, labels.ravel())
    # one iteration only is worse than running to convergence
    one_step = kmeans_segment(img, 5, init=init, max_iter=1)
    assert inertia(X, *one_step) > inertia(X, labels, centres)


def test_kmeans_labels_sorted_by_brightness_and_deterministic():
    img = sample("flower", step=8)
    labels, centres = kmeans_segment(img, 6, seed=3)
    brightness = centres.mean(axis=1)
    assert np.all(np.diff(brightness) > 0)
    labels2, centres2 = kmeans_segment(img, 6, seed=3)
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(centres, centres2)
    # permuting the initial centres does not change the output
    X = img.reshape(-1, 3)
    init = X[np.random.default_rng(1).choice(len(X), 4, replace=False)]
    a = kmeans_segment(img, 4, init=init)
    b = kmeans_segment(img, 4, init=init[::-1])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])
    assert set(np.unique(labels)) <= set(range(6))


def test_kmeans_two_level_image_and_small_cases():
    img = np.where(np.arange(30)[None, :] < 12, 0.2, 0.7) + np.zeros((10, 30))
    labels, centres = kmeans_segment(img, 2)
    np.testing.assert_array_equal(labels, (img > 0.5).astype(np.int64))
    np.testing.assert_allclose(centres[:, 0], [0.2, 0.7])
    labels, centres = kmeans_segment(img, 1)
    assert not labels.any() and np.isclose(centres[0, 0], img.mean())
    labels, centres = kmeans_segment(img.astype(np.float32), 2, init="random")
    assert centres.dtype == np.float32
    int_labels, int_centres = kmeans_segment((img * 10).astype(np.uint8), 2)
    assert int_centres.dtype == np.float64
    np.testing.assert_array_equal(int_labels, (img > 0.5).astype(np.int64))


def test_kmeans_errors():
    img = np.random.default_rng(0).random((6, 7))
    with pytest.raises(SegeduInputError, match="k must be at least 1"):
        kmeans_segment(img, 0)
    with pytest.raises(SegeduTypeError, match="k must be an int"):
        kmeans_segment(img, 2.5)
    with pytest.raises(SegeduInputError, match="exceeds the number of pixels"):
        kmeans_segment(img, 43)
    with pytest.raises(SegeduInputError, match="only 2 distinct pixel value"):
        kmeans_segment(np.where(img > 0.5, 1.0, 0.0), 3)
    with pytest.raises(SegeduInputError, match=r"shape \(3, 1\)"):
        kmeans_segment(img, 3, init=np.zeros((2, 1)))
    with pytest.raises(SegeduInputError, match="init must be one of"):
        kmeans_segment(img, 3, init="kmeans")
    with pytest.raises(SegeduInputError, match="max_iter must be at least 1"):
        kmeans_segment(img, 3, max_iter=0)
    with pytest.raises(SegeduInputError, match="tol must be at least 0"):
        kmeans_segment(img, 3, tol=-1)
    with pytest.raises(SegeduInputError, match="H×W grey or H×W×C colour image"):
        kmeans_segment(np.zeros((2, 3, 4, 3)), 2)
    with pytest.raises(SegeduTypeError, match="seed must be an int or None"):
        kmeans_segment(img, 2, seed="a")


# --------------------------------------------------------------------------------------------
# distance transform + watershed
# --------------------------------------------------------------------------------------------
def test_distance_transform_watershed_splits_touching_discs():
    rr, cc = np.mgrid[0:60, 0:90]
    centres = [(20, 20, 12), (22, 41, 11), (40, 65, 14), (45, 30, 10)]
    discs = [(rr - r) ** 2 + (cc - c) ** 2 < rad**2 for r, c, rad in centres]
    mask = np.logical_or.reduce(discs)
    assert connected_components(mask).max() < 4  # they touch
    labels = distance_transform_watershed(mask, min_distance=7)
    assert labels.max() == 4
    np.testing.assert_array_equal(labels > 0, mask)
    for disc in discs:  # each disc is mostly one label
        values, counts = np.unique(labels[disc], return_counts=True)
        assert counts.max() > 0.85 * disc.sum()
    assert not distance_transform_watershed(np.zeros((5, 5), dtype=bool)).any()
    with pytest.raises(SegeduInputError, match="min_distance must be at least 1"):
        distance_transform_watershed(mask, min_distance=0)
