r"""Anchors for the detection primer: the grid of reference boxes and their matching to ground truth.

A region proposal network (Ren et al. 2015, arXiv:1506.01497, §3.1) does not predict boxes from
nothing: at every position of a feature map of stride :math:`s` it places :math:`A` = (number of
sizes) × (number of aspect ratios) *anchors* centred on the position, and regresses each anchor
onto a nearby object (:func:`segedu.instance.encode_boxes`). Training labels each anchor by its best
IoU with the ground truth (:func:`match_anchors`): foreground at IoU ≥ 0.7, background below 0.3,
ignored in between, plus, for every object, the anchor(s) that overlap it best.

==================  ====================================================================================
segedu              torchvision
==================  ====================================================================================
``make_anchors``    ``torchvision.models.detection.anchor_utils.AnchorGenerator`` for one feature level
``match_anchors``   ``torchvision.models.detection._utils.Matcher(high, low, allow_low_quality_matches)``
==================  ====================================================================================
"""

from __future__ import annotations

import numbers

import torch

from .._validation import SegeduInputError, SegeduTypeError, as_array, check_real_scalar

__all__ = ["cell_anchors", "make_anchors", "match_anchors", "BELOW_LOW_THRESHOLD", "BETWEEN_THRESHOLDS"]

#: match_anchors' label for an anchor whose best IoU is below ``low``: background.
BELOW_LOW_THRESHOLD = -1
#: match_anchors' label for an anchor whose best IoU lies in ``[low, high)``: ignored by the loss.
BETWEEN_THRESHOLDS = -2


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list, torch.Size))
        or len(value) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        raise SegeduInputError(f"{name} must be an int or a pair of ints (height, width), but got {value!r}.")
    if min(value) < 1:
        raise SegeduInputError(f"{name} must be positive, but got {tuple(value)}.")
    return int(value[0]), int(value[1])


def _positive_list(values, name: str, example: str) -> list[float]:
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, (tuple, list)) or len(values) == 0:
        raise SegeduInputError(
            f"{name} must be a non-empty tuple of positive numbers, e.g. {example}, but got {values!r}."
        )
    return [check_real_scalar(v, f"each of {name}", minimum=0.0, strict=True) for v in values]


def cell_anchors(sizes, aspect_ratios, dtype=torch.float32):
    r"""The :math:`A` anchors of one position, centred on the origin, as torchvision builds them.

    For an aspect ratio :math:`r = h / w` and a size :math:`s` (the square root of the area), the
    anchor has :math:`h = s\sqrt{r}` and :math:`w = s / \sqrt{r}`, so every ratio keeps the area
    :math:`s^2`. The box is :math:`\operatorname{round}((-w/2, -h/2, w/2, h/2))` (torchvision rounds,
    half to even). The order is ratio-major: all sizes of the first ratio, then of the second, ...

    Examples
    --------
    >>> cell_anchors(sizes=(32,), aspect_ratios=(0.5, 1.0, 2.0))
    tensor([[-23., -11.,  23.,  11.],
            [-16., -16.,  16.,  16.],
            [-11., -23.,  11.,  23.]])
    """
    sizes = _positive_list(sizes, "sizes", "(32, 64)")
    aspect_ratios = _positive_list(aspect_ratios, "aspect_ratios", "(0.5, 1.0, 2.0)")
    scales = torch.as_tensor(sizes, dtype=dtype)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    widths = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    heights = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack([-widths, -heights, widths, heights], dim=1) / 2).round()


def make_anchors(feature_size, stride, sizes=(32, 64, 128), aspect_ratios=(0.5, 1.0, 2.0), dtype=torch.float32):
    r"""All anchors of one feature map, in torchvision's order: position-major, then :func:`cell_anchors`.

    The feature-map cell :math:`(i, j)` (row, column) of a map with stride :math:`s` looks at the
    image around :math:`(x, y) = (j s_w, i s_h)`; its anchors are the cell anchors shifted there:

    .. math:: \text{anchor}_{(i, j), a} = \text{cell}_a + (j s_w,\ i s_h,\ j s_w,\ i s_h).

    Rows run over :math:`i` (slowest), then :math:`j`, then the :math:`A` cell anchors (fastest),
    which is the order of the RPN head's output after flattening ``(A, H, W)`` as torchvision does.
    Equal to ``AnchorGenerator(sizes=(sizes,), aspect_ratios=(aspect_ratios,))`` on one feature map of
    ``feature_size`` for an image of ``feature_size × stride`` (Ren et al. 2015, arXiv:1506.01497, §3.1;
    FPN gives each level one size, Lin et al. 2017, arXiv:1612.03144).

    Parameters
    ----------
    feature_size : int or (H, W), the feature map's size.
    stride : int or (stride_h, stride_w), image pixels per feature cell (image size // feature size).
    sizes : anchor sizes (square roots of their areas), in image pixels.
    aspect_ratios : height / width ratios.

    Returns
    -------
    anchors : (H · W · A)×4 xyxy tensor.

    Examples
    --------
    >>> make_anchors(feature_size=(1, 2), stride=16, sizes=(16,), aspect_ratios=(1.0,))
    tensor([[-8., -8.,  8.,  8.],
            [ 8., -8., 24.,  8.]])
    """
    height, width = _pair(feature_size, "feature_size")
    stride_h, stride_w = _pair(stride, "stride")
    base = cell_anchors(sizes, aspect_ratios, dtype=dtype)
    # torchvision builds the shifts in int32 and lets the addition promote them to the anchors' dtype.
    shifts_x = torch.arange(0, width, dtype=torch.int32) * stride_w
    shifts_y = torch.arange(0, height, dtype=torch.int32) * stride_h
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
    return (shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4)


def match_anchors(iou, high=0.7, low=0.3, allow_low_quality_matches=True):
    r"""Label each anchor with the ground-truth box it regresses to, or as background / ignored.

    ``iou`` is the M×N matrix of IoUs between M ground-truth boxes and N anchors (``box_iou(gt,
    anchors)``). For anchor :math:`n` with best IoU :math:`q_n = \max_m \mathrm{IoU}_{mn}`:

    - :math:`q_n \ge` ``high``: the index :math:`\arg\max_m \mathrm{IoU}_{mn}` (foreground);
    - ``low`` :math:`\le q_n <` ``high``: ``-2`` (:data:`BETWEEN_THRESHOLDS`, ignored by the loss);
    - :math:`q_n <` ``low``: ``-1`` (:data:`BELOW_LOW_THRESHOLD`, background).

    With ``allow_low_quality_matches`` every ground truth also keeps the anchor(s) overlapping it best
    (all ties), matched to their own argmax box, even below ``high``: otherwise a small or oddly
    shaped object would have no anchor at all (Ren et al. 2015, arXiv:1506.01497, §3.1.2, condition
    (i)). Equal to ``torchvision.models.detection._utils.Matcher(high, low,
    allow_low_quality_matches)``, except that no ground truth gives all ``-1`` (background) where
    torchvision's Matcher raises (its RPN makes the same all-background choice before calling it).

    Returns
    -------
    matches : length-N int64 tensor of ground-truth indices, -1 or -2.

    Examples
    --------
    >>> iou = torch.tensor([[0.9, 0.5, 0.1, 0.0],
    ...                     [0.0, 0.2, 0.2, 0.25]])
    >>> match_anchors(iou)  # the second box keeps its best anchor (3) although 0.25 < 0.3
    tensor([ 0, -2, -1,  1])
    >>> match_anchors(iou, allow_low_quality_matches=False)
    tensor([ 0, -2, -1, -1])
    """
    low = check_real_scalar(low, "low")
    high = check_real_scalar(high, "high")
    if low > high:
        raise SegeduInputError(f"low must not exceed high, but got low={low} and high={high}; e.g. low=0.3, high=0.7.")
    if isinstance(iou, torch.Tensor):
        quality = iou.detach()
    else:
        quality = torch.as_tensor(as_array(iou, "iou"))
    if not quality.is_floating_point():
        raise SegeduTypeError(f"iou must hold floating-point IoUs, but its dtype is {quality.dtype}.")
    if quality.ndim != 2:
        raise SegeduInputError(
            f"iou must be the M×N matrix box_iou(gt_boxes, anchors) (2-D), but got shape {tuple(quality.shape)}."
        )
    n_gt, n_anchors = quality.shape
    if n_gt == 0:
        return torch.full((n_anchors,), BELOW_LOW_THRESHOLD, dtype=torch.int64)
    if n_anchors == 0:
        return torch.zeros(0, dtype=torch.int64)
    best_iou, matches = quality.max(dim=0)
    argmax_matches = matches.clone()
    matches[best_iou < low] = BELOW_LOW_THRESHOLD
    matches[(best_iou >= low) & (best_iou < high)] = BETWEEN_THRESHOLDS
    if allow_low_quality_matches:
        best_per_gt = quality.max(dim=1).values
        best_anchors = torch.nonzero(quality == best_per_gt[:, None])[:, 1]
        matches[best_anchors] = argmax_matches[best_anchors]
    return matches
