"""Instance masks: IoU between two stacks of masks, and pasting Mask R-CNN's small masks into the image.

:func:`mask_iou` is the overlap that COCO's mask AP matches detections with (Lin et al., Microsoft COCO,
arXiv:1405.0312), equal to ``pycocotools.mask.iou`` with ``iscrowd`` all 0. :func:`paste_masks` undoes the
mask head's RoIAlign (He et al., Mask R-CNN, arXiv:1703.06870): each ``M×M`` probability map (``M = 28``)
is resized to its box and placed in the image, as ``torchvision``'s ``paste_masks_in_image``.

>>> import numpy as np
>>> a = np.zeros((1, 4, 4), bool); a[0, :2, :2] = True
>>> b = np.zeros((2, 4, 4), bool); b[0, :2, :] = True
>>> mask_iou(a, b)
array([[0.5, 0. ]])
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import SegeduInputError, SegeduTypeError, as_array

__all__ = ["mask_iou", "paste_masks"]


def _mask_stack(masks, name: str) -> np.ndarray:
    arr = as_array(masks, name)
    if arr.ndim == 2:
        raise SegeduInputError(
            f"{name} must be a stack of masks N×H×W, but got one H×W mask of shape {arr.shape}. "
            f"Add the leading axis: {name}[None]."
        )
    if arr.ndim != 3:
        raise SegeduInputError(f"{name} must be a stack of masks N×H×W (3-D), but got shape {arr.shape}.")
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise SegeduTypeError(f"{name} must hold booleans or 0/1 values, but its dtype is {arr.dtype}.")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise SegeduInputError(
            f"{name} must hold booleans or 0/1 values, but it holds values in [{arr.min()}, {arr.max()}]. "
            f"Threshold probabilities first, e.g. {name} > 0.5."
        )
    return arr.astype(bool)


def mask_iou(a, b) -> np.ndarray:
    """Intersection over union of every mask of ``a`` with every mask of ``b``.

    .. math::

        \\mathrm{IoU}(A_i, B_j) = \\frac{|A_i \\cap B_j|}{|A_i \\cup B_j|}
        = \\frac{A_i \\cdot B_j}{|A_i| + |B_j| - A_i \\cdot B_j},

    all pairs at once as one matrix product of the flattened masks. Equal to
    ``pycocotools.mask.iou(encode(a), encode(b), iscrowd=[0] * M)``. Two empty masks have an empty union;
    their IoU is 0, as pycocotools (checked: ``iou`` of an empty RLE with itself is ``[[0.]]``), so an
    empty detection never matches anything.

    Parameters
    ----------
    a, b : array-like
        ``N×H×W`` and ``M×H×W`` boolean or 0/1 masks, numpy arrays or torch tensors. A single ``H×W`` mask is
        refused (add the leading axis, ``mask[None]``) rather than guessed.

    Returns
    -------
    numpy.ndarray
        ``N×M`` float64 (``N×0`` or ``0×M`` when a stack is empty).

    >>> import numpy as np
    >>> empty = np.zeros((1, 3, 3), bool)
    >>> mask_iou(empty, empty)
    array([[0.]])
    """
    a = _mask_stack(a, "a")
    b = _mask_stack(b, "b")
    if a.shape[1:] != b.shape[1:]:
        raise SegeduInputError(
            f"the masks of a and b must have the same height and width, but a is {a.shape} and b is {b.shape}. "
            f"Paste both into the same image size first (segedu.instance.paste_masks)."
        )
    pixels = a.shape[1] * a.shape[2]
    flat_a = a.reshape(a.shape[0], pixels).astype(np.float64)
    flat_b = b.reshape(b.shape[0], pixels).astype(np.float64)
    intersection = flat_a @ flat_b.T                  # exact: counts below 2**53
    union = flat_a.sum(1)[:, None] + flat_b.sum(1)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def paste_masks(masks, boxes, height, width, threshold=0.5):
    """Paste the mask head's ``M×M`` probabilities into an ``height×width`` image, one per box.

    Equal to ``torchvision.models.detection.roi_heads.paste_masks_in_image(masks, boxes, (height, width))[:, 0]``,
    then ``> threshold``. Steps, as torchvision:

    1. *Expand* ("expand_masks"): pad each ``M×M`` map by one zero pixel on every side and scale its box about
       its centre by ``(M + 2) / M``. The map covers exactly its box, so its outermost pixels would be
       stretched flat to the box edge by the resize; the zero border lets the bilinear resize fade the mask
       out across the box edge instead, as the probability of a pixel just outside the box is 0.
    2. Cut the expanded box to whole pixels ``(x1, y1, x2, y2)`` (truncation towards zero, as
       ``.to(torch.int64)``) and resize the map bilinearly (``align_corners=False``) to
       ``(y2 - y1 + 1) × (x2 - x1 + 1)`` pixels (at least 1×1).
    3. Place it at ``(y1, x1)``, clipped to the image; pixels outside every box are 0.

    Parameters
    ----------
    masks : torch.Tensor
        ``N×1×M×M`` (torchvision's mask head output after the sigmoid) or ``N×M×M`` probabilities.
    boxes : torch.Tensor
        ``N×4`` boxes ``(x1, y1, x2, y2)`` in image pixels.
    height, width : int
        The image size.
    threshold : float or None
        Probability above which a pixel belongs to the instance (Mask R-CNN uses 0.5); ``None`` returns the
        pasted probabilities.

    Returns
    -------
    torch.Tensor
        ``N×height×width``: bool, or the masks' float dtype when ``threshold`` is None.

    >>> import torch
    >>> pasted = paste_masks(torch.ones(1, 28, 28), torch.tensor([[2.0, 1.0, 9.0, 5.0]]), 8, 12)
    >>> pasted.shape, pasted.dtype, int(pasted.sum())
    (torch.Size([1, 8, 12]), torch.bool, 54)
    """
    if not isinstance(masks, torch.Tensor):
        masks = torch.as_tensor(np.asarray(masks))
    if not isinstance(boxes, torch.Tensor):
        boxes = torch.as_tensor(np.asarray(boxes))
    if masks.ndim == 4:
        if masks.shape[1] != 1:
            raise SegeduInputError(
                f"masks must be N×1×M×M or N×M×M, but got shape {tuple(masks.shape)}. With one mask per class, "
                f"pick each detection's class first: masks[torch.arange(N), labels][:, None]."
            )
        masks = masks[:, 0]
    if masks.ndim != 3:
        raise SegeduInputError(
            f"masks must be N×1×M×M or N×M×M, but got shape {tuple(masks.shape)}."
            + (" Add the leading axis: masks[None]." if masks.ndim == 2 else "")
        )
    if not masks.is_floating_point():
        masks = masks.float()
    if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.shape[0] != masks.shape[0]:
        raise SegeduInputError(
            f"boxes must be N×4 (x1, y1, x2, y2) with one box per mask ({masks.shape[0]} masks), "
            f"but got shape {tuple(boxes.shape)}."
        )
    for value, name in ((height, "height"), (width, "width")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise SegeduInputError(f"{name} must be a positive int (the image size), but got {value!r}.")
    if boxes.shape[0] and bool(((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any()):
        raise SegeduInputError(
            "boxes must be (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1; convert x, y, w, h with "
            "segedu.instance.box_xywh_to_xyxy (or x2 = x + w, y2 = y + h)."
        )
    size = masks.shape[-1]
    scale = (size + 2) / size
    padded = F.pad(masks, (1, 1, 1, 1))
    boxes = boxes.to(masks.dtype) if boxes.is_floating_point() else boxes.to(torch.float32)
    half_w = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    half_h = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    centre_x = (boxes[:, 2] + boxes[:, 0]) * 0.5
    centre_y = (boxes[:, 3] + boxes[:, 1]) * 0.5
    expanded = torch.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], 1)
    expanded = expanded.to(torch.int64)               # truncation towards zero, as torchvision's .to(int64)
    out = masks.new_zeros((masks.shape[0], height, width))
    for index, (x1, y1, x2, y2) in enumerate(expanded.tolist()):
        box_h, box_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        resized = F.interpolate(padded[index][None, None], size=(box_h, box_w), mode="bilinear",
                                align_corners=False)[0, 0]
        top, bottom = max(y1, 0), min(y2 + 1, height)
        left, right = max(x1, 0), min(x2 + 1, width)
        if bottom > top and right > left:
            out[index, top:bottom, left:right] = resized[top - y1 : bottom - y1, left - x1 : right - x1]
    return out if threshold is None else out > threshold
