r"""SAM's automatic mask generator in miniature: a grid of point prompts, filters, and box NMS.

SAM segments "everything" by prompting with a regular grid of points, one point per prompt, three
masks per point (Kirillov et al. 2023, §3 and appendix A). Most of those :math:`3 n^2` masks are
poor or duplicates, so three filters follow:

1. **predicted IoU**: keep a mask when the IoU head's estimate exceeds ``pred_iou_thresh``;
2. **stability**: the mask should barely change when the threshold on its logits :math:`z` moves
   by :math:`\pm\delta` (:func:`stability_score`). With :math:`t` the mask threshold,

   .. math:: \mathrm{stability}(z) = \frac{|\{z > t + \delta\}|}{|\{z > t - \delta\}|}
      = \mathrm{IoU}\bigl(\{z > t + \delta\}, \{z > t - \delta\}\bigr),

   the ratio being an IoU because the first mask lies inside the second. A mask whose logits cross
   the threshold steeply (a confident edge) scores near 1;
3. **non-maximum suppression** of the masks' bounding boxes (greedy, by predicted IoU) removes the
   duplicates that neighbouring points produce.

References
----------
.. [1] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643
.. [2] Neubeck, A. and Van Gool, L. "Efficient Non-Maximum Suppression." ICPR 2006.

Examples
--------
>>> import torch
>>> logits = torch.tensor([[[-3.0, -0.5], [0.5, 3.0]]])  # pixels above -1: 3, above +1: 1
>>> stability_score(logits, mask_threshold=0.0, threshold_offset=1.0)
tensor([0.3333])
>>> point_grid(2)
array([[0.25, 0.25],
       [0.75, 0.25],
       [0.25, 0.75],
       [0.75, 0.75]])
"""

from __future__ import annotations

import numpy as np
import torch

from ..._validation import (
    SegeduInputError,
    SegeduTypeError,
    _describe,
    _is_torch_tensor,
    check_positive_int,
    check_real_scalar,
)

__all__ = ["stability_score", "point_grid", "generate_masks"]


def stability_score(mask_logits, mask_threshold: float = 0.0, threshold_offset: float = 1.0) -> torch.Tensor:
    r"""The IoU of a mask thresholded at ``mask_threshold + offset`` and at ``mask_threshold - offset``.

    Parameters
    ----------
    mask_logits : torch.Tensor
        Floating-point logits ``(..., H, W)``, e.g. ``(B, H, W)`` or ``(B, M, H, W)``.
    mask_threshold : float
        The threshold :math:`t` that makes the mask (SAM: 0 on logits).
    threshold_offset : float
        :math:`\delta \ge 0` (SAM's ``stability_score_offset``, default 1).

    Returns
    -------
    torch.Tensor
        ``(...)``: :math:`|\{z > t + \delta\}| \,/\, |\{z > t - \delta\}|` per mask, in ``[0, 1]``,
        in the logits' dtype and device.

    Notes
    -----
    Equal to segment-anything's ``utils.amg.calculate_stability_score``, with two decisions:

    - **dtype**: the pixel counts are exact integers, and the ratio is returned in the logits'
      dtype (float64 in, float64 out). segment-anything divides int32 counts and always returns
      float32; the values agree to float32 rounding.
    - **empty over empty**: when no pixel exceeds :math:`t - \delta` both masks are empty and
      segment-anything returns ``nan`` (0/0). Here the score is **1**, the IoU of two equal
      (empty) masks, the same convention as the IoU target of :func:`segedu.losses.sam_loss`. An
      empty mask is then "stable"; :func:`generate_masks` drops empty masks on its own.

    Swapping the two thresholds gives :math:`|\{z > t - \delta\}| / |\{z > t + \delta\}| \ge 1`
    (or infinity), the inverse ratio: every score of a correct implementation lies in
    :math:`[0, 1]`.

    Examples
    --------
    >>> import torch
    >>> steep = torch.tensor([[-9.0, -9.0], [9.0, 9.0]])  # confident: the same mask at t ± 1
    >>> soft = torch.tensor([[-0.5, -0.5], [2.0, 2.0]])   # two pixels hesitate
    >>> stability_score(torch.stack([steep, soft]), 0.0, 1.0)
    tensor([1.0000, 0.5000])
    >>> stability_score(torch.full((1, 2, 2), -5.0, dtype=torch.float64), 0.0, 1.0)  # empty: 1, not nan
    tensor([1.], dtype=torch.float64)
    """
    if not _is_torch_tensor(mask_logits):
        raise SegeduTypeError(
            f"mask_logits must be a torch.Tensor of shape (..., H, W), but got {_describe(mask_logits)}. "
            f"Convert a numpy array with torch.from_numpy(mask_logits)."
        )
    if not mask_logits.is_floating_point():
        raise SegeduTypeError(
            f"mask_logits must hold floating-point logits, but its dtype is {mask_logits.dtype}. The stability "
            f"score needs the logits before thresholding, not a binary mask; use the model's raw output."
        )
    if mask_logits.ndim < 2:
        raise SegeduInputError(
            f"mask_logits must have at least 2 axes (..., H, W), but it has shape {tuple(mask_logits.shape)}."
        )
    mask_threshold = check_real_scalar(mask_threshold, "mask_threshold")
    threshold_offset = check_real_scalar(threshold_offset, "threshold_offset")
    if threshold_offset < 0:
        raise SegeduInputError(
            f"threshold_offset must be >= 0 (the high threshold is mask_threshold + offset), but got "
            f"{threshold_offset}. A negative offset swaps the two thresholds; pass abs(threshold_offset)."
        )
    # z > t + d lies inside z > t - d, so the intersection is the first count and the union the second
    # counted in int32 over the flattened plane (exact below 2**31 pixels): summing booleans over two axes at
    # once into torch's default int64 is several times slower
    inner = (mask_logits > mask_threshold + threshold_offset).flatten(-2).sum(-1, dtype=torch.int32)
    outer = (mask_logits > mask_threshold - threshold_offset).flatten(-2).sum(-1, dtype=torch.int32)
    ratio = inner.to(mask_logits.dtype) / outer.clamp(min=1).to(mask_logits.dtype)
    return torch.where(outer > 0, ratio, torch.ones_like(ratio))


def point_grid(n_per_side: int) -> np.ndarray:
    r"""The centres of an ``n × n`` grid of cells over the unit square, as ``(n², 2)`` ``(x, y)`` rows.

    The coordinates are :math:`(i + \tfrac12)/n` for :math:`i = 0, \dots, n-1`, x varying fastest,
    as segment-anything's ``utils.amg.build_point_grid``. Multiply by ``(W, H)`` for pixels.

    Examples
    --------
    >>> point_grid(1)
    array([[0.5, 0.5]])
    >>> point_grid(4)[:4, 0]  # the first row of the grid: x = 1/8, 3/8, 5/8, 7/8
    array([0.125, 0.375, 0.625, 0.875])
    """
    n = check_positive_int(n_per_side, "n_per_side", hint=" SAM uses 32 points per side; TinySAM 8 to 16.")
    centres = (np.arange(n, dtype=np.float64) + 0.5) / n
    xs, ys = np.meshgrid(centres, centres)  # "xy" indexing: x varies along each row
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def _image_tensor(image, device) -> torch.Tensor:
    """A ``(1, 3, H, W)`` float image in [0, 1] on ``device`` from a tensor or an ``H×W×3`` array."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3:
            raise SegeduInputError(
                f"image must be an H×W×3 RGB array, but it has shape {image.shape}. Stack a grey image "
                f"with np.repeat(img[..., None], 3, axis=-1)."
            )
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / 255.0
        elif not np.issubdtype(image.dtype, np.floating):
            raise SegeduTypeError(
                f"image must be uint8 (0..255) or float (0..1), but its dtype is {image.dtype}. "
                f"Use skimage.util.img_as_float(image)."
            )
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if not _is_torch_tensor(image):
        raise SegeduTypeError(
            f"image must be a (3, H, W) torch.Tensor in [0, 1] or an H×W×3 numpy array, but got {_describe(image)}."
        )
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise SegeduInputError(
            f"image must be one RGB image (3, H, W) (or (1, 3, H, W)), but it has shape {tuple(image.shape)}. "
            f"generate_masks segments one image at a time: loop over a batch."
        )
    if not image.is_floating_point():
        raise SegeduTypeError(
            f"a tensor image must hold floats in [0, 1], but its dtype is {image.dtype}. Use image.float() / 255."
        )
    return image[None].to(device)


def _mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """``(N, 4)`` xyxy boxes of ``(N, H, W)`` boolean masks: first and last row/column that hold a pixel."""
    h, w = masks.shape[-2:]
    rows, cols = masks.any(dim=-1), masks.any(dim=-2)  # (N, H), (N, W)
    row_idx = torch.arange(h, device=masks.device)
    col_idx = torch.arange(w, device=masks.device)
    y0 = torch.where(rows, row_idx, h).amin(-1)
    y1 = torch.where(rows, row_idx, -1).amax(-1)
    x0 = torch.where(cols, col_idx, w).amin(-1)
    x1 = torch.where(cols, col_idx, -1).amax(-1)
    return torch.stack([x0, y0, x1, y1], dim=-1)


@torch.no_grad()
def generate_masks(
    model,
    image,
    points_per_side: int = 8,
    pred_iou_thresh: float = 0.8,
    stability_score_thresh: float = 0.85,
    box_nms_thresh: float = 0.7,
    mask_threshold: float = 0.0,
    stability_score_offset: float = 1.0,
    batch_size: int = 64,
) -> list[dict]:
    r"""Segment everything in ``image``: prompt ``model`` with a grid of points and keep the good masks.

    The image is embedded once (``model.embed``); the :math:`n^2` grid points, each a single
    foreground click, are decoded ``batch_size`` at a time (``model.decode``, three masks each);
    then the masks are filtered by predicted IoU (``> pred_iou_thresh``), by
    :func:`stability_score` (``>= stability_score_thresh``), emptiness, and box NMS
    (``torchvision.ops.batched_nms`` with IoU ``box_nms_thresh``, scored by predicted IoU), as
    segment-anything's ``SamAutomaticMaskGenerator`` with one crop and no post-processing.

    Parameters
    ----------
    model : TinySAM or alike
        Anything with ``embed(images) -> embeddings`` and ``decode(embeddings, point_coords,
        point_labels, multimask_output=True) -> (mask_logits (N, 3, H, W), iou_pred (N, 3))`` at
        image resolution, point coordinates in pixels ``(x, y)``.
    image : torch.Tensor or numpy.ndarray
        One RGB image: a ``(3, H, W)`` float tensor in [0, 1], or an ``H×W×3`` array (uint8 or
        float in [0, 1]). It is moved to the model's device and dtype.
    points_per_side : int
        :math:`n`; the prompts are ``point_grid(n) * (W, H)`` pixels.
    pred_iou_thresh, stability_score_thresh, box_nms_thresh : float
        The three filters; 0 switches the first two off.
    mask_threshold, stability_score_offset : float
        :math:`t` (logits > t make the mask) and :math:`\delta` of :func:`stability_score`.
    batch_size : int
        Points decoded per call.

    Returns
    -------
    list of dict
        One record per mask, by decreasing predicted IoU, with segment-anything's keys:
        ``segmentation`` (bool ``H×W`` numpy array), ``area`` (int), ``bbox`` (``[x, y, w, h]``,
        segment-anything's convention: ``w = x_max - x_min`` of the pixel indices),
        ``predicted_iou``, ``stability_score`` (floats) and ``point_coords`` (``[[x, y]]``).

    Examples
    --------
    >>> import torch
    >>> class HalfPlanes:  # a stand-in: the masks "left of the click", "right of it", everything
    ...     def embed(self, images):
    ...         return images
    ...     def decode(self, embeddings, point_coords, point_labels, multimask_output=True):
    ...         x = torch.arange(embeddings.shape[-1]) + 0.5
    ...         click = point_coords[:, 0, 0, None]
    ...         rows = torch.stack([5 * (click - x), 5 * (x - click), torch.full_like(x - click, 5.0)], 1)
    ...         logits = rows[:, :, None, :].expand(-1, -1, embeddings.shape[-2], -1)
    ...         return logits, torch.tensor([0.875, 0.875, 0.9375]).expand(len(logits), 3)
    >>> records = generate_masks(HalfPlanes(), torch.zeros(3, 8, 8), points_per_side=2, box_nms_thresh=0.8)
    >>> len(records)  # clicks at x = 2 and 6 (two rows): 4 distinct half-planes and 1 "everything"
    5
    >>> records[0]["bbox"], records[0]["area"], records[0]["predicted_iou"]  # the best: everything
    ([0, 0, 7, 7], 64, 0.9375)
    """
    points_per_side = check_positive_int(points_per_side, "points_per_side")
    batch_size = check_positive_int(batch_size, "batch_size")
    pred_iou_thresh = check_real_scalar(pred_iou_thresh, "pred_iou_thresh")
    stability_score_thresh = check_real_scalar(stability_score_thresh, "stability_score_thresh")
    box_nms_thresh = check_real_scalar(box_nms_thresh, "box_nms_thresh", minimum=0.0)
    mask_threshold = check_real_scalar(mask_threshold, "mask_threshold")
    stability_score_offset = check_real_scalar(stability_score_offset, "stability_score_offset", minimum=0.0)
    for method in ("embed", "decode"):
        if not callable(getattr(model, method, None)):
            raise SegeduTypeError(
                f"model must have an {method}() method (as segedu.models.TinySAM), but {type(model).__name__} "
                f"has none. For segment-anything's Sam use SamAutomaticMaskGenerator instead."
            )
    from torchvision.ops import batched_nms

    try:
        parameter = next(model.parameters())
        device, dtype = parameter.device, parameter.dtype
    except (AttributeError, StopIteration, TypeError):
        device, dtype = torch.device("cpu"), None
    image = _image_tensor(image, device)
    if dtype is not None and dtype.is_floating_point:
        image = image.to(dtype)  # a float64 model gets a float64 image
    height, width = image.shape[-2:]
    points = torch.as_tensor(point_grid(points_per_side) * (width, height), dtype=torch.float32, device=device)

    embeddings = model.embed(image)
    masks, ious, scores, prompts = [], [], [], []
    for start in range(0, len(points), batch_size):
        batch = points[start : start + batch_size]
        n = len(batch)
        batch_embeddings = embeddings.expand(n, *embeddings.shape[1:])
        labels = torch.ones(n, 1, dtype=torch.int64, device=device)
        logits, iou_pred = model.decode(batch_embeddings, batch[:, None, :], labels, multimask_output=True)
        if logits.shape[-2:] != (height, width):
            raise SegeduInputError(
                f"model.decode returned masks of size {tuple(logits.shape[-2:])}, but the image is "
                f"{(height, width)}; generate_masks needs masks at image resolution (TinySAM's decode gives them)."
            )
        logits, iou_pred = logits.flatten(0, 1), iou_pred.flatten(0, 1)
        batch_points = batch.repeat_interleave(logits.shape[0] // n, dim=0)
        keep = iou_pred > pred_iou_thresh if pred_iou_thresh > 0 else torch.ones_like(iou_pred, dtype=torch.bool)
        logits, iou_pred, batch_points = logits[keep], iou_pred[keep], batch_points[keep]
        stability = stability_score(logits, mask_threshold, stability_score_offset)
        binary = logits > mask_threshold
        keep = binary.flatten(1).any(1)  # an empty mask is no segment (its stability is 1 by convention)
        if stability_score_thresh > 0:
            keep &= stability >= stability_score_thresh
        masks.append(binary[keep])
        ious.append(iou_pred[keep])
        scores.append(stability[keep])
        prompts.append(batch_points[keep])
    masks, ious, scores, prompts = (torch.cat(x) for x in (masks, ious, scores, prompts))
    if len(masks) == 0:
        return []
    boxes = _mask_boxes(masks)
    keep = batched_nms(boxes.float(), ious.float(), torch.zeros_like(ious, dtype=torch.int64), box_nms_thresh)
    # batched_nms returns the kept indices by decreasing score: the records come out sorted by predicted IoU
    records = []
    for i in keep.tolist():
        x0, y0, x1, y1 = boxes[i].tolist()
        segmentation = masks[i].cpu().numpy()
        records.append(
            {
                "segmentation": segmentation,
                "area": int(segmentation.sum()),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "predicted_iou": float(ious[i]),
                "stability_score": float(scores[i]),
                "point_coords": [prompts[i].tolist()],
            }
        )
    return records
