"""segedu.metrics against independent peers (scikit-learn, scipy) and the numpy definitions.

Every random case is seeded. Label maps include void pixels (ignore_index=255) and classes that
appear in neither the prediction nor the target, which is where mean accuracy, mean IoU and
frequency-weighted IoU differ in which classes they average over.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.spatial import distance
from sklearn import metrics as skm

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.metrics import (
    confusion_matrix,
    dice_coefficient,
    frequency_weighted_iou,
    mean_accuracy,
    mean_iou,
    pixel_accuracy,
)

IGNORE = 255
SEEDS = range(40)


def random_case(seed):
    """A random (pred, target, K, ignore_index) with absent classes and void pixels."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 9))
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 24, size=ndim))
    # each map uses a random subset of the classes, so some classes are absent from one or both
    target_classes = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)
    pred_classes = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)
    target = rng.choice(target_classes, size=shape)
    pred = rng.choice(pred_classes, size=shape)
    ignore_index = None
    if seed % 4 != 0:
        ignore_index = IGNORE
        void = rng.random(shape) < rng.uniform(0, 0.5)
        target[void] = IGNORE
        # the prediction at void pixels is anything, even out-of-range values: it is not counted
        pred[void & (rng.random(shape) < 0.5)] = IGNORE
    dtype = [np.uint8, np.int16, np.int32, np.int64][seed % 4]
    return pred.astype(dtype), target.astype(dtype), k, ignore_index


def valid_pixels(pred, target, ignore_index):
    pred, target = pred.ravel(), target.ravel()
    if ignore_index is None:
        return pred.astype(np.int64), target.astype(np.int64)
    keep = target != ignore_index
    return pred[keep].astype(np.int64), target[keep].astype(np.int64)


def per_class_counts(pred, target, k):
    """n_ii, t_i and p_i straight from the pixel sets, one class at a time."""
    tp = np.array([np.sum((target == i) & (pred == i)) for i in range(k)], dtype=float)
    t = np.array([np.sum(target == i) for i in range(k)], dtype=float)
    p = np.array([np.sum(pred == i) for i in range(k)], dtype=float)
    return tp, t, p


# --------------------------------------------------------------------------------------------
# confusion matrix
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_sklearn(seed):
    pred, target, k, ignore_index = random_case(seed)
    cm = confusion_matrix(pred, target, k, ignore_index=ignore_index)
    p, t = valid_pixels(pred, target, ignore_index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when a draw has a single label; labels= handles it
        expected = skm.confusion_matrix(t, p, labels=list(range(k))) if t.size else np.zeros((k, k), int)
    assert cm.dtype == np.int64
    assert cm.shape == (k, k)
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == t.size


def test_confusion_matrix_orientation_rows_are_target():
    target = np.array([0, 0, 0, 1])
    pred = np.array([1, 1, 0, 1])
    cm = confusion_matrix(pred, target, 2)
    # two pixels of target class 0 were predicted as class 1
    assert cm[0, 1] == 2 and cm[1, 0] == 0
    np.testing.assert_array_equal(cm, [[1, 2], [0, 1]])


def test_confusion_matrix_accepts_lists_and_bools():
    cm = confusion_matrix([[True, False]], [[True, True]], num_classes=2)
    np.testing.assert_array_equal(cm, [[0, 0], [1, 1]])


def test_confusion_matrix_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    pred, target, k, ignore_index = random_case(5)
    expected = confusion_matrix(pred, target, k, ignore_index=ignore_index)
    got = confusion_matrix(
        torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(target.astype(np.int64)), k, ignore_index
    )
    np.testing.assert_array_equal(got, expected)


def test_ignore_index_that_is_a_class():
    # ignoring class 0 (e.g. "unlabelled background") is allowed; predicting 0 still counts
    target = np.array([0, 0, 1, 2])
    pred = np.array([1, 0, 0, 2])
    cm = confusion_matrix(pred, target, 3, ignore_index=0)
    np.testing.assert_array_equal(cm, [[0, 0, 0], [1, 0, 0], [0, 0, 1]])


def test_ignore_index_negative():
    target = np.array([-1, 0, 1, 1])
    pred = np.array([5, 0, 1, 0])
    cm = confusion_matrix(pred, target, 2, ignore_index=-1)
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])


def test_all_pixels_ignored_gives_zero_matrix_and_scores_refuse_it():
    cm = confusion_matrix(np.zeros((2, 2), int), np.full((2, 2), IGNORE), 3, ignore_index=IGNORE)
    np.testing.assert_array_equal(cm, np.zeros((3, 3)))
    with pytest.raises(SegeduInputError, match="all zeros"):
        mean_iou(cm)


# --------------------------------------------------------------------------------------------
# scores against the numpy definitions and scikit-learn
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_scores_match_definitions(seed):
    pred, target, k, ignore_index = random_case(seed)
    p, t = valid_pixels(pred, target, ignore_index)
    if t.size == 0:
        pytest.skip("every pixel is void in this draw")
    cm = confusion_matrix(pred, target, k, ignore_index=ignore_index)
    tp, t_i, p_i = per_class_counts(p, t, k)

    in_target = t_i > 0
    in_either = (t_i + p_i) > 0
    iou = np.zeros(k)
    iou[in_either] = tp[in_either] / (t_i + p_i - tp)[in_either]

    results = {
        "pixel_accuracy": pixel_accuracy(cm),
        "mean_accuracy": mean_accuracy(cm),
        "mean_iou": mean_iou(cm),
        "frequency_weighted_iou": frequency_weighted_iou(cm),
    }
    assert all(type(v) is float for v in results.values()), results
    assert results["pixel_accuracy"] == pytest.approx(np.mean(p == t), rel=1e-12)
    assert results["mean_accuracy"] == pytest.approx(np.mean(tp[in_target] / t_i[in_target]), rel=1e-12)
    assert results["mean_iou"] == pytest.approx(np.mean(iou[in_either]), rel=1e-12)
    assert results["frequency_weighted_iou"] == pytest.approx(np.sum(t_i * iou) / np.sum(t_i), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_scores_match_sklearn(seed):
    pred, target, k, ignore_index = random_case(seed)
    p, t = valid_pixels(pred, target, ignore_index)
    if t.size == 0:
        pytest.skip("every pixel is void in this draw")
    cm = confusion_matrix(pred, target, k, ignore_index=ignore_index)
    present = sorted(set(t.tolist()) | set(p.tolist()))
    with warnings.catch_warnings():
        # balanced accuracy warns when the prediction has classes the target lacks; that is the point
        warnings.simplefilter("ignore")
        balanced = skm.balanced_accuracy_score(t, p)
        per_class = skm.jaccard_score(t, p, labels=present, average=None, zero_division=0)
        macro = skm.jaccard_score(t, p, labels=present, average="macro", zero_division=0)
        weighted = skm.jaccard_score(t, p, labels=list(range(k)), average="weighted", zero_division=0)
    assert pixel_accuracy(cm) == pytest.approx(skm.accuracy_score(t, p), rel=1e-12)
    assert mean_accuracy(cm) == pytest.approx(balanced, rel=1e-12)
    assert mean_iou(cm) == pytest.approx(np.mean(per_class), rel=1e-12)
    assert mean_iou(cm) == pytest.approx(macro, rel=1e-12)
    # sklearn's "weighted" average weighs each class by its support in the target: fwIoU
    assert frequency_weighted_iou(cm) == pytest.approx(weighted, rel=1e-12)


def test_absent_classes_are_left_out_but_false_alarms_count():
    # class 2 is only predicted (IoU 0, counted in mIoU); class 3 is absent from both (left out)
    cm = np.array([[5, 0, 1, 0], [0, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert mean_iou(cm) == pytest.approx((5 / 6 + 1 + 0) / 3)
    assert mean_accuracy(cm) == pytest.approx((5 / 6 + 1) / 2)
    assert frequency_weighted_iou(cm) == pytest.approx((6 * 5 / 6 + 4 * 1) / 10)
    assert pixel_accuracy(cm) == pytest.approx(9 / 10)


def test_perfect_prediction_scores_one():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 4, size=(16, 16))
    cm = confusion_matrix(target, target, 6)  # classes 4 and 5 absent
    for score in (pixel_accuracy, mean_accuracy, mean_iou, frequency_weighted_iou):
        assert score(cm) == 1.0


def test_scores_accept_float_counts_and_torch():
    torch = pytest.importorskip("torch")
    cm = np.array([[3, 1], [0, 4]])
    assert mean_iou(cm.astype(float)) == mean_iou(cm)
    assert mean_iou(torch.tensor(cm)) == mean_iou(cm)


# --------------------------------------------------------------------------------------------
# Dice
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(30))
def test_dice_matches_set_definition_and_scipy(seed):
    rng = np.random.default_rng(1000 + seed)
    shape = tuple(int(s) for s in rng.integers(1, 20, size=int(rng.integers(1, 4))))
    a = rng.random(shape) < rng.uniform(0, 1)
    b = rng.random(shape) < rng.uniform(0, 1)
    if seed % 3 == 0:  # 0/1 integer masks
        a, b = a.astype(np.uint8), b.astype(np.int64)
    got = dice_coefficient(a, b)
    assert type(got) is float
    set_a = {i for i, v in enumerate(np.ravel(a)) if v}
    set_b = {i for i, v in enumerate(np.ravel(b)) if v}
    if not set_a and not set_b:
        assert got == 1.0
        return
    assert got == pytest.approx(2 * len(set_a & set_b) / (len(set_a) + len(set_b)), rel=1e-12)
    fa, fb = np.ravel(a).astype(bool), np.ravel(b).astype(bool)
    assert got == pytest.approx(1 - distance.dice(fa, fb), rel=1e-12, abs=1e-15)


def test_dice_two_empty_masks_is_one():
    assert dice_coefficient(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0
    assert dice_coefficient([[0, 0]], [[0, 0]]) == 1.0


def test_dice_one_empty_mask_is_zero():
    assert dice_coefficient(np.zeros((3, 3), bool), np.eye(3, dtype=bool)) == 0.0


def test_dice_accepts_torch():
    torch = pytest.importorskip("torch")
    a = torch.tensor([[True, True, False]])
    b = torch.tensor([[0, 1, 1]])
    assert dice_coefficient(a, b) == 0.5


# --------------------------------------------------------------------------------------------
# errors: each names the problem and the fix
# --------------------------------------------------------------------------------------------
def test_error_wrong_shape():
    with pytest.raises(SegeduInputError, match=r"same shape.*\(2, 3\).*\(3, 2\)"):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 2)


def test_error_scores_with_class_axis_hint():
    with pytest.raises(SegeduInputError, match="argmax"):
        confusion_matrix(np.zeros((3, 4, 4), int), np.zeros((4, 4), int), 3)


def test_error_float_labels_whole_numbers():
    with pytest.raises(SegeduTypeError, match=r"astype\(np.int64\)"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2), int), 2)


def test_error_float_labels_fractional():
    with pytest.raises(SegeduTypeError, match="argmax"):
        confusion_matrix(np.zeros((2, 2), int), np.full((2, 2), 0.5), 2)


def test_error_target_label_out_of_range():
    with pytest.raises(SegeduInputError, match=r"target contains the label 3.*num_classes=3.*0\.\.2"):
        confusion_matrix(np.zeros(4, int), np.array([0, 1, 2, 3]), 3)


def test_error_pred_label_out_of_range():
    with pytest.raises(SegeduInputError, match=r"pred contains the label 7.*Check num_classes"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 3)


def test_error_negative_label():
    with pytest.raises(SegeduInputError, match="label -1"):
        confusion_matrix(np.array([0, -1]), np.array([0, 1]), 3)


def test_error_void_target_without_ignore_index():
    with pytest.raises(SegeduInputError, match="pass ignore_index"):
        confusion_matrix(np.array([0, 1]), np.array([0, IGNORE]), 3)


def test_error_pred_is_ignore_index_where_target_is_a_class():
    with pytest.raises(SegeduInputError, match=r"pred contains ignore_index=255 at 1 pixel.*0\.\.2"):
        confusion_matrix(np.array([0, IGNORE]), np.array([0, 1]), 3, ignore_index=IGNORE)


def test_error_ignore_index_not_int():
    with pytest.raises(SegeduTypeError, match="ignore_index must be an int"):
        confusion_matrix(np.array([0, 1]), np.array([0, 1]), 3, ignore_index=255.0)


@pytest.mark.parametrize("bad", [0, -2])
def test_error_num_classes_not_positive(bad):
    with pytest.raises(SegeduInputError, match="num_classes must be at least 1"):
        confusion_matrix(np.array([0]), np.array([0]), bad)


def test_error_num_classes_not_int():
    with pytest.raises(SegeduTypeError, match="num_classes must be an int"):
        confusion_matrix(np.array([0]), np.array([0]), 2.0)


@pytest.mark.parametrize("score", [pixel_accuracy, mean_accuracy, mean_iou, frequency_weighted_iou])
def test_error_cm_not_square(score):
    with pytest.raises(SegeduInputError, match=r"square.*\(2, 3\).*confusion_matrix\(pred, target"):
        score(np.ones((2, 3), int))


@pytest.mark.parametrize("score", [pixel_accuracy, mean_accuracy, mean_iou, frequency_weighted_iou])
def test_error_cm_empty(score):
    with pytest.raises(SegeduInputError, match="all zeros.*ignore_index"):
        score(np.zeros((3, 3), int))


def test_error_cm_wrong_ndim():
    with pytest.raises(SegeduInputError, match="K×K confusion matrix"):
        mean_iou(np.ones((2, 2, 2), int))


def test_error_cm_zero_classes():
    with pytest.raises(SegeduInputError, match="0×0"):
        mean_iou(np.zeros((0, 0), int))


def test_error_cm_negative():
    with pytest.raises(SegeduInputError, match="non-negative"):
        mean_iou(np.array([[3, -1], [0, 4]]))


def test_error_cm_normalised():
    with pytest.raises(SegeduTypeError, match="raw counts, not a normalised"):
        mean_iou(np.array([[0.75, 0.25], [0.0, 1.0]]))


def test_error_cm_bool():
    with pytest.raises(SegeduTypeError, match="pixel counts"):
        mean_iou(np.eye(2, dtype=bool))


def test_error_dice_values_not_binary():
    with pytest.raises(SegeduInputError, match=r"0, 255.*\(target_mask > 0\)"):
        dice_coefficient(np.zeros((2, 2), int), np.array([[0, 255], [255, 0]]))


def test_error_dice_label_map():
    with pytest.raises(SegeduInputError, match=r"pred_mask == c"):
        dice_coefficient(np.array([0, 1, 2]), np.array([0, 1, 1]))


def test_error_dice_float_mask():
    with pytest.raises(SegeduTypeError, match=r"pred_mask > 0.5"):
        dice_coefficient(np.array([0.2, 0.9]), np.array([0, 1]))


def test_error_dice_shape():
    with pytest.raises(SegeduInputError, match="same shape"):
        dice_coefficient(np.zeros((2, 2), bool), np.zeros((2, 3), bool))
