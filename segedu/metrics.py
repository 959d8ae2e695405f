"""Metrics for semantic segmentation: the confusion matrix and the scores built from it.

Every score of Long et al. (2015) is a function of one K×K confusion matrix, so the workflow is:

>>> import numpy as np
>>> from segedu.metrics import confusion_matrix, mean_iou
>>> target = np.array([[0, 0, 1], [1, 2, 2]])
>>> pred = np.array([[0, 1, 1], [1, 2, 0]])
>>> cm = confusion_matrix(pred, target, num_classes=3)
>>> round(mean_iou(cm), 4)
0.5

Notation used in the docstrings (Long et al. 2015, section 5): :math:`n_{ij}` is the number of
pixels of target class :math:`i` predicted to belong to class :math:`j` (``cm[i, j]``),
:math:`t_i = \\sum_j n_{ij}` is the number of pixels of target class :math:`i` (a row sum) and
:math:`p_j = \\sum_i n_{ij}` is the number of pixels predicted as class :math:`j` (a column sum).

The functions accept numpy arrays, nested lists and torch tensors (which are moved to the CPU);
importing this module does not import torch.
"""

from __future__ import annotations

import numpy as np

from ._validation import (
    SegeduInputError,
    SegeduTypeError,
    as_array,
    check_binary_mask,
    check_ignore_index,
    check_integer_labels,
    check_label_range,
    check_ndim,
    check_positive_int,
    check_same_shape,
)

__all__ = [
    "confusion_matrix",
    "pixel_accuracy",
    "mean_accuracy",
    "mean_iou",
    "frequency_weighted_iou",
    "dice_coefficient",
    "match_instances",
    "boundary_f1",
]


def confusion_matrix(pred, target, num_classes, ignore_index=None):
    r"""Count how the pixels of each target class were predicted.

    Parameters
    ----------
    pred : array_like of int, any shape
        Predicted label map (class ids, e.g. ``logits.argmax(axis=0)``). Numpy arrays, lists and
        torch tensors are accepted.
    target : array_like of int, same shape as ``pred``
        Ground-truth label map.
    num_classes : int
        Number of classes :math:`K`; valid labels are ``0 .. K-1``.
    ignore_index : int, optional
        Label of "void" target pixels (often 255) that are not counted at all. Pixels are skipped
        according to their *target* label only: where the target is a real class the prediction
        must be a real class too, so a prediction equal to ``ignore_index`` there is an error
        (unless ``ignore_index`` is itself one of the classes ``0 .. K-1``).

    Returns
    -------
    cm : (K, K) ndarray of int64
        ``cm[i, j]`` is the number of pixels of target class ``i`` predicted as class ``j``, so rows
        are target classes and columns are predicted classes (as in
        ``sklearn.metrics.confusion_matrix(target.ravel(), pred.ravel())``). The diagonal holds the
        correctly classified pixels.

    Raises
    ------
    SegeduInputError
        If the shapes differ, a label is outside ``0 .. K-1`` (ignoring void target pixels), or
        ``num_classes`` is not positive.
    SegeduTypeError
        If a label map is not of an integer (or boolean) dtype.

    Notes
    -----
    With :math:`\Omega` the set of pixels whose target label is not ``ignore_index``,

    .. math::

        n_{ij} = \left|\{\, x \in \Omega : \mathrm{target}(x) = i,\ \mathrm{pred}(x) = j \,\}\right|.

    The count needs no loop over pixels: the pair :math:`(i, j)` is encoded as the single number
    :math:`iK + j`, the codes are counted with ``np.bincount``, and the :math:`K^2` counts are
    reshaped to :math:`K \times K`.

    Pixels whose target is void are not validated in ``pred`` either, because they are not counted.

    References
    ----------
    .. [1] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
           Segmentation." CVPR 2015, 3431--3440. :DOI:`10.1109/CVPR.2015.7298965`

    Examples
    --------
    >>> target = [[0, 0, 1], [1, 255, 2]]
    >>> pred = [[0, 1, 1], [1, 2, 2]]
    >>> confusion_matrix(pred, target, num_classes=3, ignore_index=255)
    array([[1, 1, 0],
           [0, 2, 0],
           [0, 0, 1]])
    """
    pred = check_integer_labels(as_array(pred, "pred"), "pred")
    target = check_integer_labels(as_array(target, "target"), "target")
    check_same_shape(pred, target, "pred", "target")
    num_classes = check_positive_int(num_classes, "num_classes")
    ignore_index = check_ignore_index(ignore_index)

    pred = pred.reshape(-1)
    target = target.reshape(-1)
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
        outside = ignore_index < 0 or ignore_index >= num_classes
        if outside and pred.size and np.any(pred == ignore_index):
            bad = int(np.count_nonzero(pred == ignore_index))
            raise SegeduInputError(
                f"pred contains ignore_index={ignore_index} at {bad} pixel(s) whose target is a real class. "
                f"ignore_index only skips pixels by their target label; where the target is a class, "
                f"the prediction must be a class in 0..{num_classes - 1}. Predict a real class there "
                f"(e.g. take the argmax over class scores only)."
            )
    check_label_range(target, "target", num_classes, ignore_index)
    check_label_range(pred, "pred", num_classes)

    codes = target.astype(np.int64) * num_classes + pred.astype(np.int64)
    counts = np.bincount(codes, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _check_cm(cm) -> np.ndarray:
    """Validate a confusion matrix and return it as a float64 array of counts."""
    cm = as_array(cm, "cm")
    check_ndim(cm, "cm", 2, "a K×K confusion matrix")
    if cm.shape[0] != cm.shape[1]:
        raise SegeduInputError(
            f"cm must be square (K×K, rows = target classes, columns = predicted classes), but its shape "
            f"is {cm.shape}. Build it with segedu.metrics.confusion_matrix(pred, target, num_classes)."
        )
    if cm.dtype == bool or not (np.issubdtype(cm.dtype, np.integer) or np.issubdtype(cm.dtype, np.floating)):
        raise SegeduTypeError(f"cm must hold pixel counts (integers), but its dtype is {cm.dtype}.")
    if np.issubdtype(cm.dtype, np.floating):
        if not np.all(np.isfinite(cm)) or not np.all(cm == np.round(cm)):
            raise SegeduTypeError(
                "cm must hold whole pixel counts, but it has fractional or non-finite entries. "
                "Pass the raw counts, not a normalised confusion matrix."
            )
    if cm.size == 0:
        raise SegeduInputError("cm is 0×0: it has no classes. Check num_classes when you build it.")
    if np.any(cm < 0):
        raise SegeduInputError(f"cm must hold non-negative pixel counts, but its smallest entry is {cm.min()}.")
    if not np.any(cm):
        raise SegeduInputError(
            "cm is all zeros, so no pixel was counted and the score is undefined. Check that the target "
            "is not entirely ignore_index and that pred and target are not empty."
        )
    return cm.astype(np.float64)


def pixel_accuracy(cm):
    r"""Fraction of counted pixels that are classified correctly.

    Parameters
    ----------
    cm : (K, K) array_like of int
        Confusion matrix, ``cm[i, j]`` = pixels of target class ``i`` predicted as ``j``.

    Returns
    -------
    float
        :math:`\displaystyle \frac{\sum_i n_{ii}}{\sum_i t_i}`, in [0, 1].

    Raises
    ------
    SegeduInputError
        If ``cm`` is not square, has negative entries, or is all zeros.

    Notes
    -----
    Pixel accuracy is dominated by large classes: predicting "background" everywhere on an image
    that is 95 % background scores 0.95.

    References
    ----------
    .. [1] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
           Segmentation." CVPR 2015, 3431--3440. :DOI:`10.1109/CVPR.2015.7298965`

    Examples
    --------
    >>> pixel_accuracy([[3, 1], [0, 4]])
    0.875
    """
    cm = _check_cm(cm)
    return float(np.trace(cm) / cm.sum())


def mean_accuracy(cm):
    r"""Per-class accuracy (recall), averaged over the classes present in the target.

    Parameters
    ----------
    cm : (K, K) array_like of int
        Confusion matrix, ``cm[i, j]`` = pixels of target class ``i`` predicted as ``j``.

    Returns
    -------
    float
        :math:`\displaystyle \frac{1}{|C|} \sum_{i \in C} \frac{n_{ii}}{t_i}` with
        :math:`C = \{ i : t_i > 0 \}`, in [0, 1].

    Raises
    ------
    SegeduInputError
        If ``cm`` is not square, has negative entries, or is all zeros.

    Notes
    -----
    A class with no target pixel (:math:`t_i = 0`) has an undefined accuracy :math:`0/0`, so it is
    left out of the mean instead of being counted as 0 or 1.

    References
    ----------
    .. [1] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
           Segmentation." CVPR 2015, 3431--3440. :DOI:`10.1109/CVPR.2015.7298965`

    Examples
    --------
    >>> mean_accuracy([[3, 1, 0], [0, 4, 0], [0, 0, 0]])  # class 2 absent from the target
    0.875
    """
    cm = _check_cm(cm)
    t = cm.sum(axis=1)
    present = t > 0
    return float(np.mean(np.diag(cm)[present] / t[present]))


def _iou_per_class(cm: np.ndarray):
    """IoU of every class and the mask of classes present in the target or the prediction."""
    n = np.diag(cm)
    union = cm.sum(axis=1) + cm.sum(axis=0) - n
    present = union > 0
    iou = np.zeros_like(n)
    iou[present] = n[present] / union[present]
    return iou, present


def mean_iou(cm):
    r"""Intersection over union of each class, averaged over classes in the target or prediction.

    Parameters
    ----------
    cm : (K, K) array_like of int
        Confusion matrix, ``cm[i, j]`` = pixels of target class ``i`` predicted as ``j``.

    Returns
    -------
    float
        Mean IoU ("mean IU" in Long et al.), in [0, 1]:

        .. math::

            \mathrm{IoU}_i = \frac{n_{ii}}{t_i + p_i - n_{ii}}, \qquad
            \mathrm{mIoU} = \frac{1}{|C|} \sum_{i \in C} \mathrm{IoU}_i,

        where :math:`C = \{ i : t_i + p_i > 0 \}`.

    Raises
    ------
    SegeduInputError
        If ``cm`` is not square, has negative entries, or is all zeros.

    Notes
    -----
    The denominator :math:`t_i + p_i - n_{ii}` is the size of the union of the target and predicted
    regions of class :math:`i`. A class absent from both has the undefined IoU :math:`0/0` and is
    left out; a class that is only predicted (a false alarm) has IoU 0 and is counted.

    References
    ----------
    .. [1] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
           Segmentation." CVPR 2015, 3431--3440. :DOI:`10.1109/CVPR.2015.7298965`

    Examples
    --------
    >>> mean_iou([[3, 1], [0, 4]])  # IoU 3/4 and 4/5
    0.775
    """
    cm = _check_cm(cm)
    iou, present = _iou_per_class(cm)
    return float(np.mean(iou[present]))


def frequency_weighted_iou(cm):
    r"""IoU of each class weighted by how often the class occurs in the target.

    Parameters
    ----------
    cm : (K, K) array_like of int
        Confusion matrix, ``cm[i, j]`` = pixels of target class ``i`` predicted as ``j``.

    Returns
    -------
    float
        Frequency-weighted IoU ("f.w. IU" in Long et al.), in [0, 1]:

        .. math::

            \mathrm{fwIoU} = \Big(\sum_k t_k\Big)^{-1}
                \sum_i \frac{t_i\, n_{ii}}{t_i + \sum_j n_{ji} - n_{ii}} .

    Raises
    ------
    SegeduInputError
        If ``cm`` is not square, has negative entries, or is all zeros.

    Notes
    -----
    Classes that are only predicted (:math:`t_i = 0`) get weight 0, and classes absent from both
    target and prediction are left out, so the sum runs over the classes present in the target or
    the prediction, as for :func:`mean_iou`.

    References
    ----------
    .. [1] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
           Segmentation." CVPR 2015, 3431--3440. :DOI:`10.1109/CVPR.2015.7298965`

    Examples
    --------
    >>> frequency_weighted_iou([[3, 1], [0, 4]])  # (4 * 3/4 + 4 * 4/5) / 8
    0.775
    >>> round(frequency_weighted_iou([[6, 0], [1, 1]]), 4)  # (6 * 6/7 + 2 * 1/2) / 8
    0.7679
    """
    cm = _check_cm(cm)
    iou, present = _iou_per_class(cm)
    t = cm.sum(axis=1)
    return float(np.sum(t[present] * iou[present]) / t.sum())


def dice_coefficient(pred_mask, target_mask):
    r"""Dice's coefficient of overlap between two binary masks.

    Parameters
    ----------
    pred_mask, target_mask : array_like of bool or of 0/1 numbers, same shape
        Predicted and ground-truth foreground masks (numpy arrays, lists or torch tensors).

    Returns
    -------
    float
        .. math::

            D(A, B) = \frac{2\,|A \cap B|}{|A| + |B|},

        in [0, 1], where :math:`A` and :math:`B` are the sets of foreground pixels. Two empty masks
        agree perfectly, so :math:`D(\emptyset, \emptyset) = 1`.

    Raises
    ------
    SegeduInputError
        If the shapes differ or an integer mask holds values other than 0 and 1.
    SegeduTypeError
        If a float mask holds values other than 0 and 1 (threshold it first) or a mask has a
        non-numeric dtype.

    Notes
    -----
    Dice is the F1 score of the foreground pixels, and it is a monotone function of the IoU
    (Jaccard index) :math:`J`: :math:`D = 2J / (1 + J)`.

    References
    ----------
    .. [1] Dice, L. R. "Measures of the Amount of Ecologic Association Between Species."
           Ecology 26(3), 1945: 297--302. :DOI:`10.2307/1932409`

    Examples
    --------
    >>> a = [[1, 1, 0], [0, 0, 0]]
    >>> b = [[0, 1, 1], [0, 0, 0]]
    >>> dice_coefficient(a, b)
    0.5
    >>> dice_coefficient([[0, 0]], [[0, 0]])
    1.0
    """
    a = check_binary_mask(pred_mask, "pred_mask")
    b = check_binary_mask(target_mask, "target_mask")
    check_same_shape(a, b, "pred_mask", "target_mask")
    size_a = int(np.count_nonzero(a))
    size_b = int(np.count_nonzero(b))
    if size_a + size_b == 0:
        return 1.0
    overlap = int(np.count_nonzero(a & b))
    return 2.0 * overlap / (size_a + size_b)



# --------------------------------------------------------------------------- instance matching


def _check_instance_labels(labels, name: str) -> np.ndarray:
    """An integer instance-label map (0 = background, ids >= 1); anything else gets the fix named."""
    arr = as_array(labels, name)
    if arr.dtype == bool:
        raise SegeduTypeError(
            f"{name} is a boolean mask, but instance labels (0 = background, 1, 2, ... one id per object) "
            f"were expected. Give every connected object its own id with skimage.measure.label({name})."
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating):
            raise SegeduTypeError(
                f"{name} has dtype {arr.dtype}, but an instance-label map must hold integer ids "
                f"(0 = background, 1, 2, ... one per object). If it is a probability or a binary mask, label "
                f"its objects with skimage.measure.label({name} > 0.5); if it already holds whole-number ids, "
                f"convert it with {name}.astype(np.int64)."
            )
        raise SegeduTypeError(
            f"{name} must be an integer instance-label map, but its dtype is {arr.dtype}. "
            f"Build one with skimage.measure.label(mask)."
        )
    if arr.ndim < 1 or arr.size == 0:
        raise SegeduInputError(f"{name} is empty (shape {arr.shape}); pass a label map with at least one pixel.")
    if int(arr.min()) < 0:
        raise SegeduInputError(
            f"{name} contains the negative id {int(arr.min())}; instance ids must be 0 (background) or positive. "
            f"Relabel it, e.g. with skimage.measure.label({name} > 0)."
        )
    return arr


def _instance_iou_table(pred: np.ndarray, true: np.ndarray):
    """Ids present and the IoU of every (true, pred) pair of objects, from one contingency table.

    Both maps are renumbered ``0..n`` (``np.unique(..., return_inverse=True)``) so that one
    ``np.bincount`` of ``true_index * (n_pred + 1) + pred_index`` counts every intersection.
    """
    true_ids, true_idx = np.unique(true.ravel(), return_inverse=True)
    pred_ids, pred_idx = np.unique(pred.ravel(), return_inverse=True)
    # index 0 must be the background so that it can be dropped
    if true_ids[0] != 0:
        true_ids, true_idx = np.concatenate([[0], true_ids]), true_idx + 1
    if pred_ids[0] != 0:
        pred_ids, pred_idx = np.concatenate([[0], pred_ids]), pred_idx + 1
    n_t, n_p = len(true_ids), len(pred_ids)
    table = np.bincount(true_idx.astype(np.int64) * n_p + pred_idx, minlength=n_t * n_p).reshape(n_t, n_p)
    area_true = table.sum(axis=1)[1:]
    area_pred = table.sum(axis=0)[1:]
    inter = table[1:, 1:].astype(np.float64)
    union = area_true[:, None] + area_pred[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return true_ids[1:], pred_ids[1:], iou


def _ratio(num: int, den: int, both_empty: bool) -> float:
    if den > 0:
        return num / den
    return 1.0 if both_empty else 0.0


def match_instances(pred_labels, true_labels, iou_threshold: float = 0.5) -> dict:
    r"""Match predicted objects to true objects one-to-one at an IoU threshold, and score the match.

    A predicted object :math:`P` and a true object :math:`T` *match* when
    :math:`\mathrm{IoU}(P, T) = |P \cap T| / |P \cup T| \ge \tau` (``iou_threshold``), and each
    object is used at most once. Then :math:`TP` = matched pairs, :math:`FP` = unmatched predictions,
    :math:`FN` = unmatched true objects, and

    .. math::
        \mathrm{precision} = \frac{TP}{TP + FP}, \quad \mathrm{recall} = \frac{TP}{TP + FN}, \quad
        F_1 = \frac{2\,TP}{2\,TP + FP + FN}.

    This is the object-level score of the 2018 Data Science Bowl [1]_ and of stardist's
    ``matching`` [2]_ at a single threshold.

    Parameters
    ----------
    pred_labels, true_labels : array_like of int, same shape (any number of axes)
        Instance-label maps: 0 is background, every other id is one object (ids need not be
        consecutive). Numpy arrays, lists and torch tensors are accepted. A binary mask or a float
        map is refused: label its connected components with ``skimage.measure.label`` first.
    iou_threshold : float
        :math:`\tau` in :math:`(0, 1]`. Default 0.5.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn`` (int); ``precision``, ``recall``, ``f1`` (float);
        ``n_true``, ``n_pred`` (objects in each map); ``iou_threshold``;
        ``matched_true``, ``matched_pred`` (int64 arrays of the ids of the matched pairs, sorted by
        true id) and ``ious`` (float64 array, the IoU of each pair); ``unmatched_true`` (the false
        negatives' ids), ``unmatched_pred`` (the false positives' ids); ``mean_matched_iou`` (mean
        of ``ious``, 0.0 without matches).

    Notes
    -----
    **The matching.** One ``np.bincount`` over pixel pairs gives the contingency table
    :math:`n_{tp} = |T_t \cap P_p|`, and the object areas are its row and column sums, so every
    IoU costs one pass over the pixels.

    - For :math:`\tau > 0.5` the matching is *unique* and needs no search: if
      :math:`\mathrm{IoU}(P, T) > 0.5` then :math:`|P \cap T| > \tfrac12 |P \cup T| \ge \tfrac12 |P|`,
      so more than half of :math:`P` lies in :math:`T`; as true objects are disjoint, no other
      :math:`T'` can hold more than half of :math:`P` too. The same holds with the roles swapped, so
      every object has at most one partner above the threshold, and all such pairs are the matches.
    - For :math:`\tau \le 0.5` (including exactly 0.5, where :math:`P` can have IoU 0.5 with two
      halves of :math:`T`) an object may have several candidates. The matches are then an optimal
      assignment (``scipy.optimize.linear_sum_assignment``) that first maximises the number of
      pairs and, among those, the sum of their IoUs.

    **Empty maps.** A ratio :math:`0/0` (precision without predictions, recall without true
    objects, :math:`F_1` with neither) is 1.0 when *both* maps are empty (nothing to find, nothing
    claimed: perfect, as :func:`dice_coefficient` does) and 0.0 otherwise. So an empty prediction
    against real objects scores precision 0, recall 0, :math:`F_1` 0.

    References
    ----------
    .. [1] Caicedo, J. C. et al. "Nucleus segmentation across imaging experiments: the 2018 Data
           Science Bowl." Nature Methods 16, 1247--1253 (2019). :DOI:`10.1038/s41592-019-0612-7`
    .. [2] Schmidt, U., Weigert, M., Broaddus, C., Myers, G. "Cell Detection with Star-convex
           Polygons." MICCAI 2018. arXiv:1806.03535

    Examples
    --------
    >>> import numpy as np
    >>> from segedu.metrics import match_instances
    >>> true = np.array([[1, 1, 0, 2, 2],
    ...                  [1, 1, 0, 2, 2]])
    >>> pred = np.array([[5, 5, 0, 7, 0],      # 5 covers object 1 exactly; 7 covers a quarter of 2
    ...                  [5, 5, 0, 0, 0]])
    >>> m = match_instances(pred, true)
    >>> m["tp"], m["fp"], m["fn"], m["f1"]
    (1, 1, 1, 0.5)
    >>> m["matched_true"].tolist(), m["matched_pred"].tolist(), m["unmatched_pred"].tolist()
    ([1], [5], [7])
    >>> match_instances(np.zeros((2, 2), int), np.zeros((2, 2), int))["f1"]
    1.0
    """
    pred = _check_instance_labels(pred_labels, "pred_labels")
    true = _check_instance_labels(true_labels, "true_labels")
    check_same_shape(pred, true, "pred_labels", "true_labels")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float, np.floating, np.integer)):
        raise SegeduTypeError(
            f"iou_threshold must be a number in (0, 1], e.g. 0.5, but got {iou_threshold!r} "
            f"({type(iou_threshold).__name__})."
        )
    tau = float(iou_threshold)
    if not 0.0 < tau <= 1.0:
        raise SegeduInputError(
            f"iou_threshold must lie in (0, 1] (0.5 is the usual choice), but got {iou_threshold}."
        )

    true_ids, pred_ids, iou = _instance_iou_table(pred, true)
    candidates = iou >= tau
    if tau > 0.5:
        rows, cols = np.nonzero(candidates)  # unique partners (see Notes): every candidate pair matches
    elif candidates.any():
        from scipy.optimize import linear_sum_assignment

        # weight (n + 1) per pair plus its IoU: more pairs always win; ties go to the larger IoU sum
        bonus = float(min(iou.shape) + 1)
        weight = np.where(candidates, bonus + iou, 0.0)
        rows, cols = linear_sum_assignment(weight, maximize=True)
        keep = candidates[rows, cols]
        rows, cols = rows[keep], cols[keep]
    else:
        rows = cols = np.zeros(0, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    rows, cols = rows[order], cols[order]

    n_true, n_pred, tp = len(true_ids), len(pred_ids), len(rows)
    fp, fn = n_pred - tp, n_true - tp
    both_empty = n_true == 0 and n_pred == 0
    ious = iou[rows, cols].astype(np.float64)
    return {
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "precision": _ratio(tp, tp + fp, both_empty),
        "recall": _ratio(tp, tp + fn, both_empty),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, both_empty),
        "n_true": int(n_true),
        "n_pred": int(n_pred),
        "iou_threshold": tau,
        "matched_true": true_ids[rows].astype(np.int64),
        "matched_pred": pred_ids[cols].astype(np.int64),
        "ious": ious,
        "unmatched_true": np.setdiff1d(true_ids, true_ids[rows]).astype(np.int64),
        "unmatched_pred": np.setdiff1d(pred_ids, pred_ids[cols]).astype(np.int64),
        "mean_matched_iou": float(ious.mean()) if tp else 0.0,
    }


# --------------------------------------------------------------------------- boundary F-measure


def _boundary_map(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour (inside the image) of another label; both sides of an edge count."""
    boundary = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:, :] != labels[:-1, :]
    horizontal = labels[:, 1:] != labels[:, :-1]
    boundary[1:, :] |= vertical
    boundary[:-1, :] |= vertical
    boundary[:, 1:] |= horizontal
    boundary[:, :-1] |= horizontal
    return boundary


def _check_boundary_labels(labels, name: str) -> np.ndarray:
    arr = as_array(labels, name)
    if arr.ndim == 3 and arr.shape[0] > 1 and np.issubdtype(arr.dtype, np.floating):
        raise SegeduInputError(
            f"{name} must be an H×W label map, but got a 3-D float array of shape {arr.shape}. If it holds "
            f"per-class scores or probabilities (K×H×W), take {name}.argmax(axis=0) first."
        )
    check_ndim(arr, name, 2, "an H×W label map or binary mask")
    arr = check_integer_labels(arr, name)
    if arr.size == 0:
        raise SegeduInputError(f"{name} is empty (shape {arr.shape}); pass a label map with at least one pixel.")
    return arr


def boundary_f1(pred, target, tolerance=1):
    r"""Boundary F-measure: how well the predicted region boundaries line up with the true ones.

    The boundary :math:`B(L)` of a label map :math:`L` is the set of pixels that have a
    4-neighbour (up, down, left or right, inside the image) with a different label. Both pixels
    on either side of an edge are boundary pixels, so the boundary between two regions is two
    pixels thick, and the image border is not a boundary. With
    :math:`d(p, B) = \min_{q \in B} \lVert p - q \rVert_2` and :math:`\tau` = ``tolerance``,

    .. math::

        P = \frac{|\{p \in B(\hat L) : d(p, B(L)) \le \tau\}|}{|B(\hat L)|}, \qquad
        R = \frac{|\{p \in B(L) : d(p, B(\hat L)) \le \tau\}|}{|B(L)|}, \qquad
        F_1 = \frac{2PR}{P + R}.

    Precision :math:`P` is the fraction of predicted boundary pixels close to a true boundary,
    recall :math:`R` the fraction of true boundary pixels close to a predicted one. Unlike the IoU,
    which is dominated by the interiors of large regions, it rewards masks that follow object
    outlines: it is the measure Csurka et al. [1]_ recommend next to the IoU, after the boundary
    benchmark of Martin et al. [2]_.

    Parameters
    ----------
    pred, target : (H, W) array_like of int or bool
        Predicted and true label maps (class ids) or binary masks. Numpy arrays, lists and torch
        tensors are accepted.
    tolerance : float
        :math:`\tau \ge 0`, in pixels (Euclidean). ``0`` requires boundary pixels to coincide;
        the default 1 forgives a one-pixel shift along a row or a column (a diagonal neighbour is
        :math:`\sqrt 2` away).

    Returns
    -------
    float
        :math:`F_1` in [0, 1]. Conventions for empty boundaries (a map of one single label has
        none): both empty gives 1.0 (nothing to find, nothing claimed); only one empty gives 0.0;
        and :math:`P = R = 0` gives 0.0.

    Raises
    ------
    SegeduInputError
        If the maps are not 2-D, are empty, have different shapes, or ``tolerance`` is negative.
    SegeduTypeError
        If a map is not an integer or boolean map (take the argmax of probabilities first).

    Notes
    -----
    The measure is class-agnostic: it compares *where* the label changes, not *which* classes
    meet there. Csurka et al. compute it per class, on the binary masks ``pred == c`` and
    ``target == c``, and average over the classes present in the image; call this function on those
    masks to get that variant. Distances come from one Euclidean distance transform of each
    boundary's complement (``scipy.ndimage.distance_transform_edt``), so the cost is linear in
    the number of pixels.

    References
    ----------
    .. [1] Csurka, G., Larlus, D. and Perronnin, F. "What is a good evaluation measure for semantic
           segmentation?" BMVC 2013. :DOI:`10.5244/C.27.32`
    .. [2] Martin, D. R., Fowlkes, C. C. and Malik, J. "Learning to Detect Natural Image Boundaries
           Using Local Brightness, Color, and Texture Cues." IEEE TPAMI 26(5), 2004: 530--549.
           :DOI:`10.1109/TPAMI.2004.1273918`

    Examples
    --------
    >>> import numpy as np
    >>> from segedu.metrics import boundary_f1
    >>> target = np.zeros((10, 10), int); target[2:8, 2:8] = 1
    >>> boundary_f1(target, target)
    1.0
    >>> shifted = np.roll(target, 1, axis=1)           # one pixel to the right
    >>> boundary_f1(shifted, target), boundary_f1(shifted, target, tolerance=0) < 1
    (1.0, True)
    >>> round(boundary_f1(np.roll(target, 3, axis=1), target), 3)  # only the top and bottom edges still agree
    0.818
    >>> boundary_f1(np.zeros((4, 4), int), np.zeros((4, 4), int))  # no boundary in either
    1.0
    """
    pred_arr = _check_boundary_labels(pred, "pred")
    target_arr = _check_boundary_labels(target, "target")
    check_same_shape(pred_arr, target_arr, "pred", "target")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.integer, np.floating)):
        raise SegeduTypeError(
            f"tolerance must be a number of pixels, e.g. 1 or 2.0, but got {tolerance!r} ({type(tolerance).__name__})."
        )
    tolerance = float(tolerance)
    if not np.isfinite(tolerance) or tolerance < 0:
        raise SegeduInputError(
            f"tolerance must be a finite distance in pixels of at least 0 (0: boundaries must coincide; 1 is usual), "
            f"but got {tolerance}."
        )
    from scipy.ndimage import distance_transform_edt

    pred_boundary = _boundary_map(pred_arr)
    target_boundary = _boundary_map(target_arr)
    n_pred = int(pred_boundary.sum())
    n_target = int(target_boundary.sum())
    if n_pred == 0 and n_target == 0:
        return 1.0
    if n_pred == 0 or n_target == 0:
        return 0.0
    # distance of every pixel to the nearest boundary pixel (the EDT measures distance to the nearest zero)
    to_target = distance_transform_edt(~target_boundary)
    to_pred = distance_transform_edt(~pred_boundary)
    precision = float(np.count_nonzero(to_target[pred_boundary] <= tolerance)) / n_pred
    recall = float(np.count_nonzero(to_pred[target_boundary] <= tolerance)) / n_target
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)
