"""segedu.metrics.boundary_f1 against a brute-force loop, skimage's boundaries, and its identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.segmentation import find_boundaries

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.metrics import _boundary_map, boundary_f1


def _brute_force_boundary_f1(pred, target, tolerance):
    """Loops over pixels and explicit Euclidean distances; no scipy."""
    h, w = pred.shape

    def boundary(labels):
        points = []
        for r in range(h):
            for c in range(w):
                for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w and labels[rr, cc] != labels[r, c]:
                        points.append((r, c))
                        break
        return points

    def fraction_near(points, others):
        near = sum(1 for (r, c) in points if any(math.hypot(r - r2, c - c2) <= tolerance for (r2, c2) in others))
        return near / len(points)

    bp, bt = boundary(pred), boundary(target)
    if not bp and not bt:
        return 1.0
    if not bp or not bt:
        return 0.0
    precision, recall = fraction_near(bp, bt), fraction_near(bt, bp)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _blobs(rng, shape, n_labels):
    """A random label map with some spatial structure (upsampled noise), so boundaries are not everywhere."""
    coarse = rng.integers(0, n_labels, size=(shape[0] // 3 + 1, shape[1] // 3 + 1))
    labels = coarse.repeat(3, axis=0).repeat(3, axis=1)[: shape[0], : shape[1]]
    flips = rng.random(shape) < 0.05
    return np.where(flips, rng.integers(0, n_labels, size=shape), labels)


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(3, 13)), int(rng.integers(3, 16)))
    n_labels = int(rng.integers(2, 5))
    pred, target = _blobs(rng, shape, n_labels), _blobs(rng, shape, n_labels)
    for tolerance in (0, 1, 1.5, 2, 3.2):
        want = _brute_force_boundary_f1(pred, target, tolerance)
        assert boundary_f1(pred, target, tolerance=tolerance) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_boundary_pixels_equal_skimage_thick_boundaries(seed):
    rng = np.random.default_rng(100 + seed)
    labels = _blobs(rng, (17, 21), 4)
    np.testing.assert_array_equal(_boundary_map(labels), find_boundaries(labels, connectivity=1, mode="thick"))


def test_identical_maps_score_one_and_relabelling_does_not_matter():
    rng = np.random.default_rng(0)
    target = _blobs(rng, (20, 20), 3)
    assert boundary_f1(target, target) == 1.0
    relabelled = np.array([7, 2, 5])[target]  # same regions, other class ids
    assert boundary_f1(relabelled, target, tolerance=0) == 1.0


def test_symmetric_in_pred_and_target():
    rng = np.random.default_rng(1)
    a, b = _blobs(rng, (15, 18), 3), _blobs(rng, (15, 18), 3)
    assert boundary_f1(a, b) == pytest.approx(boundary_f1(b, a), abs=1e-15)


def test_shift_within_tolerance_is_forgiven_and_beyond_it_is_not():
    target = np.zeros((30, 30), int)
    target[8:22, 8:22] = 1
    one = np.roll(target, 1, axis=1)
    assert boundary_f1(one, target, tolerance=1) == 1.0
    assert boundary_f1(one, target, tolerance=0) < 1.0
    scores = [boundary_f1(np.roll(target, s, axis=1), target, tolerance=1) for s in (1, 2, 3, 4)]
    assert scores[0] == 1.0 and all(later < earlier for earlier, later in zip(scores, scores[1:]))
    assert boundary_f1(np.roll(target, 3, axis=1), target, tolerance=3) == 1.0


def test_empty_boundary_conventions():
    flat = np.zeros((6, 6), int)
    square = flat.copy()
    square[2:4, 2:4] = 1
    assert boundary_f1(flat, flat) == 1.0
    assert boundary_f1(np.full((6, 6), 3), flat) == 1.0  # one label each: neither has a boundary
    assert boundary_f1(flat, square) == 0.0
    assert boundary_f1(square, flat) == 0.0


def test_far_apart_boundaries_score_zero():
    a = np.zeros((20, 20), int)
    a[1:4, 1:4] = 1
    b = np.zeros((20, 20), int)
    b[15:18, 15:18] = 1
    assert boundary_f1(a, b, tolerance=2) == 0.0


def test_boolean_masks_equal_integer_masks():
    rng = np.random.default_rng(2)
    a, b = rng.random((12, 12)) > 0.5, rng.random((12, 12)) > 0.5
    assert boundary_f1(a, b) == boundary_f1(a.astype(np.uint8), b.astype(np.int64))


def test_tolerance_behaves_like_a_number_of_pixels():
    rng = np.random.default_rng(3)
    a, b = _blobs(rng, (14, 14), 3), _blobs(rng, (14, 14), 3)
    scores = [boundary_f1(a, b, tolerance=t) for t in (0, 1, 2, 5, 30)]
    assert all(later >= earlier for earlier, later in zip(scores, scores[1:]))
    assert scores[-1] == 1.0  # every boundary pixel is within 30 pixels of some other boundary pixel
    assert boundary_f1(a, b, tolerance=np.float32(2)) == scores[2]


@pytest.mark.parametrize(
    "pred, target, error, fragment",
    [
        (np.zeros((4, 4), int), np.zeros((4, 5), int), SegeduInputError, "same shape"),
        (np.zeros((4, 4)), np.zeros((4, 4), int), SegeduTypeError, "astype(np.int64)"),
        (np.full((4, 4), 0.3), np.zeros((4, 4), int), SegeduTypeError, "argmax"),
        (np.full((3, 4, 4), 1 / 3), np.zeros((4, 4), int), SegeduInputError, "argmax(axis=0)"),
        (np.zeros(4, int), np.zeros(4, int), SegeduInputError, "H×W"),
        (np.zeros((2, 4, 4), int), np.zeros((2, 4, 4), int), SegeduInputError, "H×W"),
        (np.zeros((0, 4), int), np.zeros((0, 4), int), SegeduInputError, "empty"),
    ],
)
def test_bad_maps_name_the_fix(pred, target, error, fragment):
    with pytest.raises(error) as info:
        boundary_f1(pred, target)
    assert fragment in str(info.value)


@pytest.mark.parametrize("tolerance, error", [(-1, SegeduInputError), (float("nan"), SegeduInputError),
                                              ("1", SegeduTypeError), (True, SegeduTypeError)])
def test_bad_tolerance(tolerance, error):
    with pytest.raises(error, match="tolerance"):
        boundary_f1(np.zeros((3, 3), int), np.zeros((3, 3), int), tolerance=tolerance)
