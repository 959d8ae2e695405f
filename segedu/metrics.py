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
