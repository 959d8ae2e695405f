r"""Boxes for the detection primer: IoU, box formats, Faster R-CNN's box code and greedy NMS.

Every function takes boxes as an ``N×4`` torch tensor, numpy array or nested list in the
``(x1, y1, x2, y2)`` ("xyxy") format that torchvision uses, with ``x1 <= x2`` and ``y1 <= y2``.
A torch tensor in gives a torch tensor out; anything else gives a numpy array. Floating inputs keep
their dtype; integer boxes are computed in float64.

Each function equals its torchvision peer (tested in ``tests/test_detection.py``):

=====================  =========================================================================
segedu                 torchvision
=====================  =========================================================================
``box_area``           ``torchvision.ops.box_area``
``box_iou``            ``torchvision.ops.box_iou``
``box_xywh_to_xyxy``   ``torchvision.ops.box_convert(boxes, "xywh", "xyxy")`` (and back)
``encode_boxes``       ``torchvision.models.detection._utils.BoxCoder(weights).encode_single``
``decode_boxes``       ``BoxCoder(weights).decode_single``
``nms``                ``torchvision.ops.nms`` (a readable greedy loop instead of the C++ kernel)
``batched_nms``        ``torchvision.ops.batched_nms``
=====================  =========================================================================
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._validation import SegeduInputError, SegeduTypeError, as_array, check_real_scalar

__all__ = [
    "box_area",
    "box_iou",
    "box_xywh_to_xyxy",
    "box_xyxy_to_xywh",
    "encode_boxes",
    "decode_boxes",
    "nms",
    "batched_nms",
    "DEFAULT_BBOX_XFORM_CLIP",
]

#: torchvision's clip on the decoded log-size, log(1000 / 16): a box never grows more than 62.5×.
DEFAULT_BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _as_tensor(x, name: str, columns: int | None = 4, meaning: str = "N×4 boxes (x1, y1, x2, y2)"):
    """``x`` as a float tensor with shape (N, columns) and whether the caller gave a torch tensor."""
    is_torch = isinstance(x, torch.Tensor)
    if is_torch:
        tensor = x.detach()
    else:
        arr = as_array(x, name)
        if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise SegeduTypeError(f"{name} must hold real numbers, but its dtype is {arr.dtype}.")
        if arr.ndim == 1 and arr.size == 0:
            arr = arr.reshape(0, columns or 0)
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise SegeduTypeError(f"{name} must hold real numbers, but its dtype is {tensor.dtype}.")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    if tensor.ndim != 2 or (columns is not None and tensor.shape[1] != columns):
        hint = ""
        if tensor.ndim == 1 and columns is not None and tensor.shape[0] == columns:
            hint = f" For a single box, add the box axis: {name}[None] (or [[...]])."
        want = f"(N, {columns})" if columns is not None else "2-D"
        raise SegeduInputError(
            f"{name} must be {meaning} with shape {want}, but got shape {tuple(tensor.shape)}.{hint}"
        )
    if tensor.numel() and not bool(torch.isfinite(tensor).all()):
        raise SegeduInputError(f"{name} contains NaN or infinite values; remove those boxes first.")
    return tensor, is_torch


def _check_xyxy(boxes: torch.Tensor, name: str) -> None:
    """Refuse boxes whose right edge lies left of the left edge (usually xywh passed as xyxy)."""
    if boxes.numel() == 0:
        return
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        raise SegeduInputError(
            f"{name} must be (x1, y1, x2, y2) boxes with x1 <= x2 and y1 <= y2, but box {first} is "
            f"{boxes[first].tolist()}. If your boxes are COCO's (x, y, width, height), convert them first "
            f"with box_xywh_to_xyxy({name})."
        )


def _out(tensor: torch.Tensor, is_torch: bool):
    return tensor if is_torch else tensor.numpy()


def box_area(boxes):
    r"""Area of each ``(x1, y1, x2, y2)`` box: :math:`(x_2 - x_1)(y_2 - y_1)`.

    Equal to ``torchvision.ops.box_area``. Coordinates are continuous: the box ``(0, 0, 2, 3)``
    covers 2 × 3 = 6 square pixels (no "+1" as in the old Pascal VOC code).

    Parameters
    ----------
    boxes : N×4 tensor or array, xyxy.

    Returns
    -------
    area : length-N tensor (given a tensor) or array.

    Examples
    --------
    >>> box_area([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 1.0, 5.0]])
    array([6., 0.])
    """
    tensor, is_torch = _as_tensor(boxes, "boxes")
    _check_xyxy(tensor, "boxes")
    return _out((tensor[:, 2] - tensor[:, 0]) * (tensor[:, 3] - tensor[:, 1]), is_torch)


def box_iou(boxes_a, boxes_b):
    r"""Pairwise intersection over union of two sets of xyxy boxes.

    .. math:: \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A| + |B| - |A \cap B|},

    where the intersection of two axis-aligned boxes is the box
    :math:`(\max(x_1, x_1'), \max(y_1, y_1'), \min(x_2, x_2'), \min(y_2, y_2'))`, empty (area 0)
    when the maximum exceeds the minimum. Equal to ``torchvision.ops.box_iou``; two boxes of area 0
    give 0/0 = NaN, as torchvision does.

    IoU is the matching score of every detector (Girshick et al. 2014, arXiv:1311.2524) and of the
    COCO evaluation (Lin et al. 2014, arXiv:1405.0312).

    Parameters
    ----------
    boxes_a : N×4 xyxy boxes.
    boxes_b : M×4 xyxy boxes.

    Returns
    -------
    iou : N×M tensor (when ``boxes_a`` is a tensor) or array, in [0, 1].

    Examples
    --------
    >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [0, 0, 2, 2], [5, 5, 6, 6]])
    array([[0.33333333, 1.        , 0.        ]])
    """
    a, is_torch = _as_tensor(boxes_a, "boxes_a")
    b, _ = _as_tensor(boxes_b, "boxes_b")
    _check_xyxy(a, "boxes_a")
    _check_xyxy(b, "boxes_b")
    if a.dtype != b.dtype:
        dtype = torch.promote_types(a.dtype, b.dtype)
        a, b = a.to(dtype), b.to(dtype)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    top_left = torch.max(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.min(a[:, None, 2:], b[None, :, 2:])
    width_height = (bottom_right - top_left).clamp(min=0)
    intersection = width_height[..., 0] * width_height[..., 1]
    union = area_a[:, None] + area_b[None, :] - intersection
    return _out(intersection / union, is_torch)


def box_xywh_to_xyxy(boxes):
    r"""COCO's ``(x, y, width, height)`` boxes to ``(x1, y1, x2, y2)``: :math:`x_2 = x + w`, :math:`y_2 = y + h`.

    Equal to ``torchvision.ops.box_convert(boxes, "xywh", "xyxy")``. Negative widths or heights are
    refused (they are not boxes; the input is probably already xyxy).

    Examples
    --------
    >>> box_xywh_to_xyxy([[10.0, 20.0, 5.0, 4.0]])
    array([[10., 20., 15., 24.]])
    """
    tensor, is_torch = _as_tensor(boxes, "boxes", meaning="N×4 boxes (x, y, width, height)")
    if tensor.numel() and bool((tensor[:, 2:] < 0).any()):
        first = int(torch.nonzero((tensor[:, 2:] < 0).any(dim=1))[0, 0])
        raise SegeduInputError(
            f"boxes must be (x, y, width, height) with width >= 0 and height >= 0, but box {first} is "
            f"{tensor[first].tolist()}. If these boxes are already (x1, y1, x2, y2), do not convert them."
        )
    x, y, w, h = tensor.unbind(1)
    return _out(torch.stack((x, y, x + w, y + h), dim=1), is_torch)


def box_xyxy_to_xywh(boxes):
    r"""``(x1, y1, x2, y2)`` boxes to COCO's ``(x, y, width, height)``: :math:`w = x_2 - x_1`, :math:`h = y_2 - y_1`.

    Equal to ``torchvision.ops.box_convert(boxes, "xyxy", "xywh")``.

    Examples
    --------
    >>> box_xyxy_to_xywh([[10.0, 20.0, 15.0, 24.0]])
    array([[10., 20.,  5.,  4.]])
    """
    tensor, is_torch = _as_tensor(boxes, "boxes")
    _check_xyxy(tensor, "boxes")
    x1, y1, x2, y2 = tensor.unbind(1)
    return _out(torch.stack((x1, y1, x2 - x1, y2 - y1), dim=1), is_torch)


def _check_weights(weights) -> tuple[float, float, float, float]:
    if not isinstance(weights, (tuple, list)) or len(weights) != 4:
        raise SegeduInputError(
            f"weights must be a tuple of four positive numbers (wx, wy, ww, wh), e.g. (1.0, 1.0, 1.0, 1.0) "
            f"for the RPN or (10.0, 10.0, 5.0, 5.0) for the box head, but got {weights!r}."
        )
    return tuple(check_real_scalar(w, "each of weights", minimum=0.0, strict=True) for w in weights)


def _centres_and_sizes(boxes: torch.Tensor):
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights, widths, heights


def encode_boxes(reference_boxes, proposals, weights=(1.0, 1.0, 1.0, 1.0)):
    r"""The regression targets that move each proposal (anchor) onto its reference (ground-truth) box.

    With centres :math:`(x, y)`, widths :math:`w` and heights :math:`h` of the reference box and
    :math:`(x_a, y_a, w_a, h_a)` of the proposal, the code of R-CNN (Girshick et al. 2014,
    arXiv:1311.2524, appendix C) and Faster R-CNN (Ren et al. 2015, arXiv:1506.01497, eq. 2) is

    .. math::

        t_x = w_x \frac{x - x_a}{w_a}, \quad t_y = w_y \frac{y - y_a}{h_a}, \quad
        t_w = w_w \log\frac{w}{w_a}, \quad t_h = w_h \log\frac{h}{h_a}.

    The offsets are relative to the proposal's size, so one regressor serves boxes of every
    scale; the logarithm keeps the size always positive after decoding. The ``weights``
    :math:`(w_x, w_y, w_w, w_h)` rescale the targets to unit-ish variance: torchvision's RPN uses
    (1, 1, 1, 1), its box head (10, 10, 5, 5).

    Equal to ``torchvision.models.detection._utils.BoxCoder(weights).encode_single(reference_boxes,
    proposals)``; :func:`decode_boxes` inverts it.

    Parameters
    ----------
    reference_boxes : N×4 xyxy ground-truth boxes, one per proposal, with positive width and height.
    proposals : N×4 xyxy proposals (anchors) with positive width and height.
    weights : four positive numbers.

    Returns
    -------
    deltas : N×4 ``(t_x, t_y, t_w, t_h)``, in the dtype of ``reference_boxes``.

    Examples
    --------
    >>> encode_boxes([[2.0, 0.0, 6.0, 8.0]], [[0.0, 0.0, 4.0, 4.0]])
    array([[0.5       , 0.5       , 0.        , 0.69314718]])
    """
    weights = _check_weights(weights)
    reference, is_torch = _as_tensor(reference_boxes, "reference_boxes")
    anchors, _ = _as_tensor(proposals, "proposals")
    _check_xyxy(reference, "reference_boxes")
    _check_xyxy(anchors, "proposals")
    if reference.shape[0] != anchors.shape[0]:
        raise SegeduInputError(
            f"reference_boxes and proposals must pair up one to one, but there are {reference.shape[0]} "
            f"reference boxes and {anchors.shape[0]} proposals. Index the matched ground truth per proposal, "
            f"e.g. gt_boxes[match_anchors(iou).clamp(min=0)]."
        )
    for tensor, name in ((reference, "reference_boxes"), (anchors, "proposals")):
        empty = (tensor[:, 2] <= tensor[:, 0]) | (tensor[:, 3] <= tensor[:, 1])
        if bool(empty.any()):
            first = int(torch.nonzero(empty)[0, 0])
            raise SegeduInputError(
                f"{name} must have positive width and height (the code divides by the proposal's size and "
                f"takes the log of the box's), but box {first} is {tensor[first].tolist()}. Drop empty boxes first."
            )
    anchors = anchors.to(reference.dtype)
    wx, wy, ww, wh = weights
    ax, ay, aw, ah = _centres_and_sizes(anchors)
    gx, gy, gw, gh = _centres_and_sizes(reference)
    deltas = torch.stack(
        (wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * torch.log(gw / aw), wh * torch.log(gh / ah)), dim=1
    )
    return _out(deltas, is_torch)


def decode_boxes(deltas, proposals, weights=(1.0, 1.0, 1.0, 1.0), clip=DEFAULT_BBOX_XFORM_CLIP):
    r"""Apply regression ``deltas`` to ``proposals``: the inverse of :func:`encode_boxes`.

    .. math::

        x = x_a + w_a \frac{t_x}{w_x}, \quad y = y_a + h_a \frac{t_y}{w_y}, \quad
        w = w_a \exp\Big(\min\big(\tfrac{t_w}{w_w}, c\big)\Big), \quad
        h = h_a \exp\Big(\min\big(\tfrac{t_h}{w_h}, c\big)\Big),

    and the box is :math:`(x - w/2, y - h/2, x + w/2, y + h/2)`. The clip :math:`c = \log(1000/16)`
    stops an untrained regressor from producing overflowing boxes (Detectron's ``BBOX_XFORM_CLIP``,
    kept by torchvision as ``bbox_xform_clip``).

    Equal to ``torchvision.models.detection._utils.BoxCoder(weights).decode_single(deltas,
    proposals)``. ``deltas`` may hold one box per class, N×(4K) (the box head's output); the result
    has the same shape.

    Examples
    --------
    >>> decode_boxes([[0.5, 0.5, 0.0, math.log(2.0)]], [[0.0, 0.0, 4.0, 4.0]])
    array([[2., 0., 6., 8.]])
    """
    weights = _check_weights(weights)
    clip = check_real_scalar(clip, "clip")
    codes, is_torch = _as_tensor(deltas, "deltas", columns=None, meaning="N×4 (or N×4K) deltas (tx, ty, tw, th)")
    anchors, _ = _as_tensor(proposals, "proposals")
    _check_xyxy(anchors, "proposals")
    if codes.shape[1] % 4 != 0 or codes.shape[1] == 0:
        raise SegeduInputError(
            f"deltas must have 4 columns (tx, ty, tw, th) per box, or 4K for K classes, but got shape "
            f"{tuple(codes.shape)}."
        )
    if codes.shape[0] != anchors.shape[0]:
        raise SegeduInputError(
            f"deltas and proposals must have one row per proposal, but got {codes.shape[0]} and "
            f"{anchors.shape[0]} rows."
        )
    anchors = anchors.to(codes.dtype)
    wx, wy, ww, wh = weights
    ax, ay, aw, ah = _centres_and_sizes(anchors)
    dx, dy = codes[:, 0::4] / wx, codes[:, 1::4] / wy
    dw = torch.clamp(codes[:, 2::4] / ww, max=clip)
    dh = torch.clamp(codes[:, 3::4] / wh, max=clip)
    centre_x = dx * aw[:, None] + ax[:, None]
    centre_y = dy * ah[:, None] + ay[:, None]
    half_w = 0.5 * torch.exp(dw) * aw[:, None]
    half_h = 0.5 * torch.exp(dh) * ah[:, None]
    boxes = torch.stack((centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h), dim=2)
    return _out(boxes.flatten(1), is_torch)


def _check_scores(scores, n_boxes: int, name: str = "scores") -> torch.Tensor:
    tensor = scores.detach() if isinstance(scores, torch.Tensor) else torch.as_tensor(as_array(scores, name))
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise SegeduTypeError(f"{name} must hold real numbers, but its dtype is {tensor.dtype}.")
    if tensor.ndim != 1 or tensor.shape[0] != n_boxes:
        raise SegeduInputError(
            f"{name} must be a 1-D tensor with one score per box ({n_boxes} boxes), but got shape "
            f"{tuple(tensor.shape)}."
        )
    if tensor.numel() and not bool(torch.isfinite(tensor.double()).all()):
        raise SegeduInputError(f"{name} contains NaN or infinite values.")
    return tensor


def nms(boxes, scores, iou_threshold):
    r"""Greedy non-maximum suppression: keep the best box, drop its overlapping rivals, repeat.

    Sort the boxes by decreasing score. Walk down the list: a box is kept unless a box kept before
    it overlaps it with IoU strictly greater than ``iou_threshold``. This is the NMS of every
    R-CNN (Girshick et al. 2014, arXiv:1311.2524, §2.1; Ren et al. 2015, arXiv:1506.01497) and equals
    ``torchvision.ops.nms``: boxes of equal score keep their input order (a stable sort, as
    torchvision's CPU kernel), and the IoU is computed in the boxes' dtype.

    This is the readable O(N²) loop; torchvision runs the same algorithm in C++ (or CUDA).

    Parameters
    ----------
    boxes : N×4 xyxy boxes.
    scores : length-N scores.
    iou_threshold : float in [0, 1]; a box overlapping a kept box by more than this is dropped.

    Returns
    -------
    keep : int64 indices of the kept boxes, by decreasing score.

    Examples
    --------
    >>> boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]
    >>> nms(boxes, [0.9, 0.8, 0.7], iou_threshold=0.5)
    array([0, 2])
    >>> nms(boxes, [0.9, 0.8, 0.7], iou_threshold=0.7)  # IoU of the first two is 81/119 = 0.68
    array([0, 1, 2])
    """
    tensor, is_torch = _as_tensor(boxes, "boxes")
    _check_xyxy(tensor, "boxes")
    score_tensor = _check_scores(scores, tensor.shape[0])
    iou_threshold = check_real_scalar(iou_threshold, "iou_threshold")
    order = torch.sort(score_tensor.to(tensor.device), descending=True, stable=True).indices
    x1, y1, x2, y2 = tensor.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(tensor.shape[0], dtype=torch.bool, device=tensor.device)
    keep = []
    for rank, i in enumerate(order.tolist()):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[rank + 1 :]
        width = (torch.min(x2[i], x2[rest]) - torch.max(x1[i], x1[rest])).clamp(min=0)
        height = (torch.min(y2[i], y2[rest]) - torch.max(y1[i], y1[rest])).clamp(min=0)
        intersection = width * height
        iou = intersection / (areas[i] + areas[rest] - intersection)
        # The kernel compares the IoU with the threshold as a C++ double: do the same, or float32
        # IoUs such as float32(0.3) > 0.3 would be decided differently.
        suppressed[rest[iou.double() > iou_threshold]] = True
    return _out(torch.tensor(keep, dtype=torch.int64, device=tensor.device), is_torch)


def batched_nms(boxes, scores, labels, iou_threshold):
    r"""NMS within each class separately: boxes of different ``labels`` never suppress each other.

    Equal to ``torchvision.ops.batched_nms`` (kept indices by decreasing score; among equal scores
    in different classes the order may differ from torchvision's, which is not specified there).

    Examples
    --------
    >>> boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11]]
    >>> batched_nms(boxes, [0.9, 0.8, 0.7], [1, 1, 2], iou_threshold=0.5)
    array([0, 2])
    """
    tensor, is_torch = _as_tensor(boxes, "boxes")
    score_tensor = _check_scores(scores, tensor.shape[0])
    label_tensor = labels.detach() if isinstance(labels, torch.Tensor) else torch.as_tensor(as_array(labels, "labels"))
    if label_tensor.ndim != 1 or label_tensor.shape[0] != tensor.shape[0]:
        raise SegeduInputError(
            f"labels must be 1-D with one class per box ({tensor.shape[0]} boxes), but got shape "
            f"{tuple(label_tensor.shape)}."
        )
    if label_tensor.is_floating_point() or label_tensor.dtype == torch.bool:
        raise SegeduTypeError(f"labels must be integer class ids, but their dtype is {label_tensor.dtype}.")
    keep = []
    for label in torch.unique(label_tensor).tolist():
        members = torch.nonzero(label_tensor == label).flatten()
        kept = nms(tensor[members], score_tensor[members], iou_threshold)
        keep.append(members[kept])
    keep = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.int64)
    keep = keep[torch.sort(score_tensor[keep], descending=True, stable=True).indices]
    return _out(keep, is_torch)
