"""segedu.metrics.match_instances against independent counts: a brute-force pixel loop and pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
import torch  # imported here, not in a test, so that its import time is not billed to one test
from pycocotools import mask as mask_utils

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.data import load_nuclei, touching_cells
from segedu.metrics import match_instances


def _brute_force_matches(pred, true, tau):
    """Every (true, pred) pair with IoU >= tau, IoU counted pixel by pixel in plain Python loops."""
    h, w = true.shape
    true_ids = sorted({int(v) for v in true.ravel()} - {0})
    pred_ids = sorted({int(v) for v in pred.ravel()} - {0})
    pairs = {}
    for t in true_ids:
        for p in pred_ids:
            inter = union = 0
            for y in range(h):
                for x in range(w):
                    a, b = true[y, x] == t, pred[y, x] == p
                    inter += a and b
                    union += a or b
            if union and inter / union >= tau:
                pairs[(t, p)] = inter / union
    return true_ids, pred_ids, pairs


def _coco_iou(pred, true):
    """IoU matrix (true x pred) from pycocotools on run-length encodings."""
    def rles(labels):
        ids = [int(i) for i in np.unique(labels) if i]
        masks = np.asfortranarray(np.stack([labels == i for i in ids], axis=-1).astype(np.uint8))
        return ids, mask_utils.encode(masks)
    t_ids, t_rle = rles(true)
    p_ids, p_rle = rles(pred)
    # iou(dt, gt, iscrowd) -> (len(dt), len(gt))
    return t_ids, p_ids, np.asarray(mask_utils.iou(t_rle, p_rle, [0] * len(p_rle)))


def _perturb(labels, rng):
    """A plausible 'prediction': shifted, with some objects merged, dropped, split and a spurious one added."""
    pred = np.roll(labels, shift=tuple(rng.integers(-1, 2, size=2)), axis=(0, 1)).astype(np.int64)
    ids = [i for i in np.unique(pred) if i]
    for i in rng.choice(ids, size=max(1, len(ids) // 6), replace=False):
        pred[pred == i] = 0                                   # dropped
    a, b = rng.choice(ids, size=2, replace=False)
    pred[pred == b] = a                                       # merged (touching ones often)
    c = rng.choice(ids)
    ys, xs = np.nonzero(pred == c)
    if len(ys):
        pred[(pred == c) & (np.arange(pred.shape[1])[None, :] > np.median(xs))] = 1000  # split
    pred[:4, :4] = 999                                        # spurious
    pred[pred > 0] = pred[pred > 0] * 7 + 3                   # ids need not be consecutive
    return pred


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tau", [0.5, 0.3, 0.75])
def test_matches_agree_with_brute_force_on_touching_cells(seed, tau):
    rng = np.random.default_rng(seed)
    _, true = touching_cells(seed, size=(32, 32), n_cells=7, radius=(4.0, 7.0))
    pred = _perturb(true, rng)
    _check_against_brute_force(pred, true, tau)


def _random_blocks(rng, size=16, cells=5):
    """A random instance map: 0..cells ids on a coarse grid, upsampled, so objects touch and split."""
    coarse = rng.integers(0, cells + 1, size=(size // 4, size // 4))
    return np.kron(coarse, np.ones((4, 4), dtype=np.int64))


def _random_prediction(rng, true):
    """Some true objects merged (ids mapped onto fewer), then a quarter of the pixels relabelled at random."""
    mapping = np.concatenate([[0], rng.integers(1, 5, size=int(true.max()))])
    pred = mapping[true] * 3 + 1
    pred[true == 0] = 0
    flip = rng.random(true.shape) < 0.25
    pred[flip] = rng.integers(0, 7, size=int(flip.sum()))
    return pred


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tau", [0.2, 0.5, 0.7])
def test_matches_agree_with_brute_force_on_random_maps(seed, tau):
    rng = np.random.default_rng(100 + seed)
    true = _random_blocks(rng)
    pred = _random_prediction(rng, true)
    _check_against_brute_force(pred, true, tau)


def test_random_maps_include_objects_with_several_candidates():
    """Guard for the test above: at tau = 0.2 some objects have more than one candidate partner."""
    several = 0
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        true = _random_blocks(rng)
        pred = _random_prediction(rng, true)
        _, _, pairs = _brute_force_matches(pred, true, 0.2)
        trues, preds = [t for t, _ in pairs], [q for _, q in pairs]
        several += len(trues) != len(set(trues)) or len(preds) != len(set(preds))
    assert several >= 3


def _check_against_brute_force(pred, true, tau):
    m = match_instances(pred, true, iou_threshold=tau)
    true_ids, pred_ids, pairs = _brute_force_matches(pred, true, tau)
    assert m["n_true"] == len(true_ids) and m["n_pred"] == len(pred_ids)
    found = dict(zip(zip(m["matched_true"].tolist(), m["matched_pred"].tolist()), m["ious"].tolist()))
    for pair, value in found.items():
        assert pair in pairs and value == pytest.approx(pairs[pair])
    if tau > 0.5:
        # unique partners: every candidate pair is a match
        assert set(found) == set(pairs)
    # one-to-one, and as many pairs as a maximum matching of the candidate graph (checked by brute force)
    assert len({t for t, _ in found}) == len({p for _, p in found}) == len(found)
    assert len(found) == _max_matching_size(pairs)
    assert m["tp"] == len(found)
    assert m["fp"] == len(pred_ids) - len(found) and m["fn"] == len(true_ids) - len(found)
    assert sorted(m["unmatched_true"].tolist()) == sorted(set(true_ids) - {t for t, _ in found})
    assert sorted(m["unmatched_pred"].tolist()) == sorted(set(pred_ids) - {p for _, p in found})


def _max_matching_size(pairs):
    """Size of a maximum bipartite matching, by trying every subset of edges (the graphs are tiny)."""
    edges = list(pairs)
    best = 0
    def extend(i, used_t, used_p, size):
        nonlocal best
        best = max(best, size)
        if i == len(edges) or size + (len(edges) - i) <= best:
            return
        t, p = edges[i]
        if t not in used_t and p not in used_p:
            extend(i + 1, used_t | {t}, used_p | {p}, size + 1)
        extend(i + 1, used_t, used_p, size)
    extend(0, frozenset(), frozenset(), 0)
    return best


@pytest.mark.parametrize("seed", range(3))
def test_counts_agree_with_pycocotools_on_the_nuclei(seed):
    rng = np.random.default_rng(seed)
    _, true = load_nuclei()
    true = true[:256, :256]
    pred = _perturb(true, rng)
    t_ids, p_ids, iou = _coco_iou(pred, true)
    m = match_instances(pred, true, iou_threshold=0.5)
    # above 0.5 each row and column has at most one candidate, so the count is the candidate count
    strict = iou > 0.5
    assert strict.sum(axis=0).max() <= 1 and strict.sum(axis=1).max() <= 1
    assert m["tp"] == int((iou >= 0.5).sum())
    assert m["fp"] == len(p_ids) - m["tp"] and m["fn"] == len(t_ids) - m["tp"]
    coco = {(t_ids[i], p_ids[j]): iou[i, j] for i, j in zip(*np.nonzero(iou >= 0.5))}
    ours = dict(zip(zip(m["matched_true"].tolist(), m["matched_pred"].tolist()), m["ious"].tolist()))
    assert ours.keys() == coco.keys()
    for key in ours:
        assert ours[key] == pytest.approx(coco[key], abs=1e-9)
    assert m["precision"] == pytest.approx(m["tp"] / len(p_ids))
    assert m["recall"] == pytest.approx(m["tp"] / len(t_ids))
    assert m["f1"] == pytest.approx(2 * m["precision"] * m["recall"] / (m["precision"] + m["recall"]))


def test_perfect_prediction_with_other_ids():
    _, true = load_nuclei()
    pred = np.where(true > 0, 1000 - true, 0)
    m = match_instances(pred, true)
    assert (m["tp"], m["fp"], m["fn"]) == (125, 0, 0)
    assert m["precision"] == m["recall"] == m["f1"] == m["mean_matched_iou"] == 1.0
    np.testing.assert_array_equal(m["matched_pred"], 1000 - m["matched_true"])


def test_merged_touching_cells_count_as_misses():
    """Touching cells predicted as one blob: the blob matches at most the cell that dominates it."""
    true = np.zeros((6, 10), dtype=int)
    true[1:5, 1:4] = 1
    true[1:5, 4:7] = 2
    true[1:5, 7:10] = 3
    merged = (true > 0).astype(int)                   # IoU 1/3 with each of three equal cells
    m = match_instances(merged, true)
    assert (m["tp"], m["fp"], m["fn"]) == (0, 1, 3)
    true[1:5, 7:10] = 0
    true[1:5, 1:5] = 1                                # cells of 16 and 8 pixels
    merged = (true > 0).astype(int)                   # IoU 16/24 and 8/24
    m = match_instances(merged, true)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1)
    assert m["ious"] == pytest.approx([16 / 24])
    assert m["unmatched_true"].tolist() == [2]


def test_exactly_half_is_a_match_and_stays_one_to_one():
    true = np.zeros((4, 4), dtype=int)
    true[:, :2] = 1
    true[:, 2:] = 2
    pred = np.ones((4, 4), dtype=int)                      # IoU 0.5 with each true half
    m = match_instances(pred, true, iou_threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1)
    assert m["ious"].tolist() == [0.5]
    assert match_instances(pred, true, iou_threshold=0.51)["tp"] == 0


def test_assignment_prefers_more_pairs_then_larger_iou():
    # pred 1 overlaps true 1 and true 2; pred 2 only true 1: the maximum matching uses both preds
    true = np.array([[1, 1, 1, 1, 2, 2, 2]])
    pred = np.array([[2, 2, 1, 1, 1, 1, 1]])
    m = match_instances(pred, true, iou_threshold=0.3)
    assert m["tp"] == 2
    assert dict(zip(m["matched_true"].tolist(), m["matched_pred"].tolist())) == {1: 2, 2: 1}


def test_empty_maps():
    empty = np.zeros((5, 5), dtype=np.int32)
    one = empty.copy()
    one[1:3, 1:3] = 4
    both = match_instances(empty, empty)
    assert (both["tp"], both["fp"], both["fn"]) == (0, 0, 0)
    assert both["precision"] == both["recall"] == both["f1"] == 1.0
    no_pred = match_instances(empty, one)
    assert (no_pred["tp"], no_pred["fp"], no_pred["fn"]) == (0, 0, 1)
    assert no_pred["precision"] == no_pred["recall"] == no_pred["f1"] == 0.0
    no_true = match_instances(one, empty)
    assert (no_true["tp"], no_true["fp"], no_true["fn"]) == (0, 1, 0)
    assert no_true["precision"] == no_true["recall"] == no_true["f1"] == 0.0
    assert no_true["mean_matched_iou"] == 0.0 and no_true["ious"].shape == (0,)


def test_accepts_torch_and_3d():
    _, true = touching_cells(0)
    m = match_instances(torch.from_numpy(true), torch.from_numpy(true).long())
    assert m["f1"] == 1.0
    stack = np.stack([true, true])
    assert match_instances(stack, stack)["tp"] == true.max()


def test_bad_input_names_the_fix():
    _, true = touching_cells(0)
    with pytest.raises(SegeduTypeError, match=r"skimage\.measure\.label\(pred_labels > 0\.5\)"):
        match_instances(true.astype(np.float32) / true.max(), true)
    with pytest.raises(SegeduTypeError, match=r"skimage\.measure\.label\(true_labels\)"):
        match_instances(true, true > 0)
    with pytest.raises(SegeduInputError, match="same shape"):
        match_instances(true[:-1], true)
    with pytest.raises(SegeduInputError, match="negative id"):
        match_instances(-true, true)
    with pytest.raises(SegeduInputError, match=r"iou_threshold must lie in \(0, 1\]"):
        match_instances(true, true, iou_threshold=0.0)
    with pytest.raises(SegeduTypeError, match="iou_threshold must be a number"):
        match_instances(true, true, iou_threshold="0.5")
