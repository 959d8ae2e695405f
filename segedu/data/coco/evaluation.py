"""COCO-style instance evaluation of a semantic segmenter: masks between FiftyOne, pycocotools and label maps.

Unit 11 scores one set of predictions with two evaluators, ``pycocotools.cocoeval.COCOeval`` and
FiftyOne's ``evaluate_detections(..., method="coco", use_masks=True)``. They agree only if both see
exactly the same pixels, and the two libraries store a mask differently:

* **FiftyOne** keeps a ``Detection`` as a relative bounding box ``[x, y, w, h]`` (fractions of the
  image width and height) plus a boolean mask of the box's size. To compare masks it pastes the
  mask back at ``(round(x * W), round(y * H))``.
* **pycocotools** keeps a full-image mask as run-length encoding (RLE), with an absolute box
  ``[x, y, w, h]`` in pixels and the mask's ``area``.

:func:`paste_mask` and :func:`crop_mask` convert between the two without changing a pixel;
:func:`encode_mask` and :func:`coco_annotation` write COCO JSON entries (ground truth or results);
:func:`instances_from_probabilities` turns a semantic segmenter's class probabilities into scored
instances (connected components per class), which is how Unit 11 evaluates a semantic model with
COCO's instance AP.

Only numpy, scipy and pycocotools are used; nothing here imports torch or FiftyOne.

>>> import numpy as np
>>> full = np.zeros((4, 5), dtype=bool); full[1:3, 2:4] = True
>>> box, small = crop_mask(full)
>>> box, small.shape
([0.4, 0.25, 0.4, 0.5], (2, 2))
>>> bool((paste_mask(small, box, 5, 4) == full).all())
True
>>> ann = coco_annotation(full, image_id=7, category_id=3, annotation_id=1)
>>> ann["area"], ann["bbox"], ann["iscrowd"]
(4, [2.0, 1.0, 2.0, 2.0], 0)
"""

from __future__ import annotations

import numbers

import numpy as np

from ..._validation import (
    SegeduInputError,
    SegeduTypeError,
    as_array,
    check_binary_mask,
    check_ndim,
    check_positive_int,
)
from ._common import mask_utils, quiet_pycocotools

__all__ = [
    "paste_mask",
    "crop_mask",
    "encode_mask",
    "coco_annotation",
    "instances_from_probabilities",
]


def _as_bool_mask(mask, name: str) -> np.ndarray:
    arr = as_array(mask, name)
    check_ndim(arr, name, 2, "an H×W mask")
    return check_binary_mask(arr, name)


def paste_mask(mask, bounding_box, width, height) -> np.ndarray:
    """Place a FiftyOne box-sized mask in a full ``height × width`` boolean image.

    ``bounding_box`` is FiftyOne's ``[x, y, w, h]`` in fractions of the image size; the mask's top
    left pixel goes to ``(round(y * height), round(x * width))``, the rounding FiftyOne uses when it
    computes mask IoUs. Parts of the mask that fall outside the image are dropped.

    >>> paste_mask(np.ones((1, 2), bool), [0.5, 0.5, 0.5, 0.5], 4, 2).astype(int).tolist()
    [[0, 0, 0, 0], [0, 0, 1, 1]]
    """
    mask = _as_bool_mask(mask, "mask")
    width = check_positive_int(width, "width")
    height = check_positive_int(height, "height")
    try:
        x, y = float(bounding_box[0]), float(bounding_box[1])
    except (TypeError, ValueError, IndexError):
        raise SegeduInputError(
            f"bounding_box must be FiftyOne's [x, y, w, h] in fractions of the image size, but got "
            f"{bounding_box!r}."
        ) from None
    full = np.zeros((height, width), dtype=bool)
    top, left = round(y * height), round(x * width)
    mh, mw = mask.shape
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + mh, height), min(left + mw, width)
    if r1 > r0 and c1 > c0:
        full[r0:r1, c0:c1] = mask[r0 - top : r1 - top, c0 - left : c1 - left]
    return full


def crop_mask(mask):
    """Split a full-image mask into FiftyOne's relative box and the box-sized mask.

    The box is the tightest one around the mask's pixels (the box ``pycocotools.mask.toBbox``
    gives), divided by the image width and height, so :func:`paste_mask` restores the mask exactly.

    Returns
    -------
    (list of 4 floats, numpy.ndarray of bool)

    Raises
    ------
    SegeduInputError
        The mask is empty (it has no box).
    """
    mask = _as_bool_mask(mask, "mask")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise SegeduInputError("mask is empty, so it has no bounding box; drop empty instances first.")
    height, width = mask.shape
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = [left / width, top / height, (right - left) / width, (bottom - top) / height]
    return [float(v) for v in box], mask[top:bottom, left:right].copy()


def encode_mask(mask) -> dict:
    """Compressed COCO RLE of a full-image mask, ready for ``json.dump``.

    ``pycocotools.mask.encode`` wants a Fortran-ordered uint8 array (COCO runs go down the columns)
    and returns ``counts`` as bytes; here ``counts`` is decoded to an ASCII string.

    >>> encode_mask(np.eye(2, dtype=bool))
    {'size': [2, 2], 'counts': '0120'}
    """
    mask = _as_bool_mask(mask, "mask")
    with quiet_pycocotools():
        rle = mask_utils().encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def coco_annotation(mask, image_id, category_id, annotation_id=None, iscrowd=0, score=None) -> dict:
    """One COCO JSON entry for a full-image mask: ground truth, or a result when ``score`` is given.

    ``segmentation`` is the compressed RLE of :func:`encode_mask`; ``area`` and ``bbox`` come from
    ``pycocotools.mask.area`` and ``toBbox`` of that RLE, so they agree exactly with the pixels.
    Ground truth (``score=None``) gets ``id`` (``annotation_id``) and ``iscrowd``; a result gets
    ``score`` instead, as ``COCO.loadRes`` expects.
    """
    for value, name in ((image_id, "image_id"), (category_id, "category_id")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SegeduTypeError(f"{name} must be an int, but got {value!r}.")
    rle = encode_mask(mask)
    mu = mask_utils()
    binary = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    with quiet_pycocotools():
        area, bbox = mu.area(binary), mu.toBbox(binary)
    entry = {
        "image_id": int(image_id),
        "category_id": int(category_id),
        "segmentation": rle,
        "area": int(area),
        "bbox": [float(v) for v in bbox],
    }
    if score is None:
        if annotation_id is not None:
            entry["id"] = int(annotation_id)
        entry["iscrowd"] = int(bool(iscrowd))
    else:
        entry["score"] = float(score)
    return entry


def instances_from_probabilities(probabilities, min_area=1, connectivity=2, ignore_classes=(0,)):
    """Turn per-pixel class probabilities into scored instances: connected components per class.

    Each pixel takes its most probable class (``argmax`` over axis 0). For every class not in
    ``ignore_classes`` (by default the background, class 0), each connected region of its pixels
    becomes one instance, scored by the **mean probability of that class inside the region**.
    Regions smaller than ``min_area`` pixels are dropped.

    Parameters
    ----------
    probabilities : array (K, H, W)
        Class probabilities (e.g. a softmax); any float array works, the score is its mean.
    min_area : int
        Smallest region kept, in pixels.
    connectivity : {1, 2}
        1: 4-connected neighbours; 2: 8-connected (diagonals too).
    ignore_classes : sequence of int
        Classes that produce no instances.

    Returns
    -------
    list of dict
        ``{"class_index": int, "mask": bool (H, W), "score": float}``, highest score first.

    >>> p = np.zeros((2, 3, 4)); p[0] = 1; p[:, :, 3] = [[0.2], [0.8]]
    >>> [(d["class_index"], int(d["mask"].sum()), round(d["score"], 2)) for d in instances_from_probabilities(p)]
    [(1, 3, 0.8)]
    """
    from scipy import ndimage

    probs = np.asarray(probabilities)
    if probs.ndim != 3:
        raise SegeduInputError(
            f"probabilities must have shape (K, H, W), but got {probs.shape}; for a torch batch use "
            f"torch.softmax(logits, 1)[i].cpu().numpy()."
        )
    if not np.issubdtype(probs.dtype, np.floating):
        raise SegeduTypeError(f"probabilities must be floats, but have dtype {probs.dtype}.")
    min_area = check_positive_int(min_area, "min_area")
    if connectivity not in (1, 2):
        raise SegeduInputError(f"connectivity must be 1 (4-neighbours) or 2 (8-neighbours), but got {connectivity!r}.")
    structure = ndimage.generate_binary_structure(2, connectivity)
    ignore = {int(c) for c in ignore_classes}
    labels = probs.argmax(axis=0)
    instances = []
    for c in np.unique(labels):
        if int(c) in ignore:
            continue
        regions, n = ndimage.label(labels == c, structure=structure)
        if n == 0:
            continue
        index = np.arange(1, n + 1)
        sizes = ndimage.sum_labels(np.ones_like(regions), regions, index)
        means = ndimage.mean(probs[c], regions, index)
        for k, size, mean in zip(index, sizes, means):
            if size >= min_area:
                instances.append({"class_index": int(c), "mask": regions == k, "score": float(mean)})
    instances.sort(key=lambda d: -d["score"])
    return instances
