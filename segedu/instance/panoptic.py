r"""Panoptic quality (Kirillov et al. 2019, arXiv:1801.00868): one number for things and stuff.

A panoptic segmentation gives every pixel a pair ``(category, instance)``: *things* (countable
objects: people, cars) have one instance id per object; *stuff* (amorphous regions: sky, road) has
one segment per category, so its instance id does not matter. Pixels of a category that is neither
thing nor stuff are *void* (unlabelled or ambiguous) and are left out.

Segments of one category match when their IoU exceeds 0.5, which makes matching unique with no
search: IoU(p, g) > ½ implies |p ∩ g| > ½ |p ∪ g| ≥ ½ |g|, so p covers more than half of g, and two
predicted segments, which do not overlap, cannot both do that (nor, symmetrically, can two targets
cover more than half of one prediction): each segment has at most one match (Kirillov et al. 2019,
arXiv:1801.00868, theorem 1). Per
category, with the matched pairs TP, unmatched predictions FP and unmatched targets FN,

.. math::

    PQ = \underbrace{\frac{\sum_{(p, g) \in TP} \mathrm{IoU}(p, g)}{|TP|}}_{\text{SQ: segmentation quality}}
    \times \underbrace{\frac{|TP|}{|TP| + \frac12 |FP| + \frac12 |FN|}}_{\text{RQ: recognition quality (an F1)}}.

The overall PQ, SQ and RQ average the categories that occur (TP + FP + FN > 0).
"""

from __future__ import annotations

import numbers
from collections import Counter

import numpy as np

from .._validation import SegeduInputError, SegeduTypeError, as_array

__all__ = ["panoptic_quality"]


def _check_categories(values, name: str) -> set[int]:
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = (values,)
    try:
        values = list(values)
    except TypeError:
        raise SegeduTypeError(f"{name} must be a collection of integer category ids, but got {values!r}.") from None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise SegeduTypeError(f"{name} must hold integer category ids, but got {values!r}.")
    return {int(v) for v in values}


def _check_panoptic(x, name: str) -> np.ndarray:
    arr = as_array(x, name)
    if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        raise SegeduTypeError(
            f"{name} must hold integer (category, instance) pairs, but its dtype is {arr.dtype}. "
            f"Build it with np.stack([category_map, instance_map], axis=-1)."
        )
    if arr.ndim not in (3, 4) or arr.shape[-1] != 2:
        hint = ""
        if arr.ndim == 2:
            hint = (
                " A plain H×W segment-id map lacks the categories: pair it with them, "
                "np.stack([category_map, instance_map], axis=-1)."
            )
        raise SegeduInputError(
            f"{name} must be H×W×2 or B×H×W×2 (category, instance) pairs, but got shape {arr.shape}.{hint}"
        )
    return arr if arr.ndim == 4 else arr[None]


def _segments(categories: np.ndarray, instances: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(categories.tolist(), instances.tolist()))


def panoptic_quality(pred, target, things, stuff, allow_unknown_pred_category=False):
    r"""PQ, SQ and RQ of a panoptic prediction, overall, for things and stuff, and per category.

    For every category: a predicted segment :math:`p` and a target segment :math:`g` of that
    category match when :math:`\mathrm{IoU}(p, g) > 0.5`, the IoU leaving out the target's void
    pixels. Then :math:`SQ = \overline{\mathrm{IoU}}` over the matches (0 without matches),
    :math:`RQ = TP / (TP + FP/2 + FN/2)` and :math:`PQ = SQ \cdot RQ` (Kirillov et al. 2019,
    arXiv:1801.00868, §4). As in the paper, an unmatched predicted segment that is more than half
    void in the target is not a false positive (the annotators left that region out). The overall
    scores are the means over the categories with :math:`TP + FP + FN > 0`; batches (B×H×W×2) add
    up the counts of all images before dividing.

    Equal to ``torchmetrics.detection.PanopticQuality(things, stuffs, return_sq_and_rq=True,
    return_per_class=True)`` (tested in ``tests/test_detection.py``).

    Parameters
    ----------
    pred, target : integer arrays H×W×2 (or B×H×W×2) of ``(category, instance)`` pairs; the
        instance id of stuff is ignored. Target pixels whose category is in neither ``things`` nor
        ``stuff`` are void.
    things, stuff : disjoint collections of category ids.
    allow_unknown_pred_category : if False (default), a predicted category outside ``things`` and
        ``stuff`` is an error; if True, such pixels are void in the prediction: they leave the
        union of every IoU, and a target segment more than half void in the prediction is not a
        false negative (as torchmetrics).

    Returns
    -------
    dict with floats ``PQ``, ``SQ``, ``RQ``, ``PQ_things``, ``PQ_stuff`` (NaN where no category of that
    kind occurs) and ``per_category``: ``{category: {"PQ", "SQ", "RQ", "TP", "FP", "FN"}}`` for every
    category of ``things`` and ``stuff``.

    Examples
    --------
    Two things (category 1) on stuff (category 0). The prediction shrinks the first object to 4 of
    its 6 pixels (IoU 4/6), misses the second (FN) and invents a third (FP); the background
    still matches (IoU 12/20).

    >>> category = np.array([[1, 1, 1, 0, 0, 0],
    ...                      [1, 1, 1, 0, 1, 1],
    ...                      [0, 0, 0, 0, 1, 1],
    ...                      [0, 0, 0, 0, 0, 0]])
    >>> instance = np.array([[1, 1, 1, 0, 0, 0],
    ...                      [1, 1, 1, 0, 2, 2],
    ...                      [0, 0, 0, 0, 2, 2],
    ...                      [0, 0, 0, 0, 0, 0]])
    >>> target = np.stack([category, instance], axis=-1)
    >>> pred = target.copy()
    >>> pred[1, 1:3] = (0, 0)      # object 1 loses two pixels
    >>> pred[1:3, 4:] = (0, 0)     # object 2 is missed
    >>> pred[3, 0:2] = (1, 7)      # a spurious object
    >>> scores = panoptic_quality(pred, target, things={1}, stuff={0})
    >>> scores["per_category"][1]  # SQ = 4/6, RQ = 1 / (1 + 1/2 + 1/2)
    {'PQ': 0.3333333333333333, 'SQ': 0.6666666666666666, 'RQ': 0.5, 'TP': 1, 'FP': 1, 'FN': 1}
    >>> scores["per_category"][0]  # background: 12 shared pixels of 20
    {'PQ': 0.6, 'SQ': 0.6, 'RQ': 1.0, 'TP': 1, 'FP': 0, 'FN': 0}
    >>> round(scores["PQ"], 4)     # (1/3 + 0.6) / 2
    0.4667
    """
    things = _check_categories(things, "things")
    stuff = _check_categories(stuff, "stuff")
    if things & stuff:
        raise SegeduInputError(f"things and stuff must be disjoint, but both contain {sorted(things & stuff)}.")
    if not things | stuff:
        raise SegeduInputError("things and stuff are both empty; name at least one category.")
    pred_arr = _check_panoptic(pred, "pred")
    target_arr = _check_panoptic(target, "target")
    if pred_arr.shape != target_arr.shape:
        raise SegeduInputError(
            f"pred and target must have one shape, but got {pred_arr.shape} and {target_arr.shape}."
        )
    known = np.array(sorted(things | stuff))
    void = (int(known.max()) + 1, 0)

    def prepare(arr, is_pred):
        categories = arr[..., 0].reshape(arr.shape[0], -1).astype(np.int64)
        instances = arr[..., 1].reshape(arr.shape[0], -1).astype(np.int64)
        is_known = np.isin(categories, known)
        if is_pred and not allow_unknown_pred_category and not is_known.all():
            unknown = np.unique(categories[~is_known])[:5].tolist()
            raise SegeduInputError(
                f"pred contains the categories {unknown}, which are in neither things nor stuff. Add them, "
                f"or pass allow_unknown_pred_category=True to treat them as void."
            )
        instances = np.where(np.isin(categories, list(stuff)), 0, instances)  # one segment per stuff class
        categories = np.where(is_known, categories, void[0])
        instances = np.where(is_known, instances, void[1])
        return categories, instances

    pred_cat, pred_inst = prepare(pred_arr, True)
    target_cat, target_inst = prepare(target_arr, False)
    all_categories = sorted(things) + sorted(stuff)
    counts = {c: {"iou": 0.0, "TP": 0, "FP": 0, "FN": 0} for c in all_categories}
    for b in range(pred_cat.shape[0]):
        pred_segments = _segments(pred_cat[b], pred_inst[b])
        target_segments = _segments(target_cat[b], target_inst[b])
        pred_area = Counter(pred_segments)
        target_area = Counter(target_segments)
        overlap = Counter(zip(pred_segments, target_segments))
        matched_pred, matched_target = set(), set()
        for (p, g), intersection in overlap.items():
            if g == void or p[0] != g[0]:
                continue
            union = (
                pred_area[p] - overlap.get((p, void), 0) + target_area[g] - overlap.get((void, g), 0) - intersection
            )
            iou = intersection / union
            if iou > 0.5:
                matched_pred.add(p)
                matched_target.add(g)
                counts[g[0]]["iou"] += iou
                counts[g[0]]["TP"] += 1
        for g in target_area:
            if g != void and g not in matched_target and overlap.get((void, g), 0) / target_area[g] <= 0.5:
                counts[g[0]]["FN"] += 1
        for p in pred_area:
            # A prediction mostly on void target pixels is not penalised: nobody labelled that region.
            if p != void and p not in matched_pred and overlap.get((p, void), 0) / pred_area[p] <= 0.5:
                counts[p[0]]["FP"] += 1

    per_category = {}
    for c in all_categories:
        tp, fp, fn = counts[c]["TP"], counts[c]["FP"], counts[c]["FN"]
        sq = counts[c]["iou"] / tp if tp else 0.0
        denominator = tp + 0.5 * fp + 0.5 * fn
        rq = tp / denominator if denominator else 0.0
        per_category[c] = {"PQ": sq * rq, "SQ": sq, "RQ": rq, "TP": tp, "FP": fp, "FN": fn}

    def mean(key, categories):
        occurring = [c for c in categories if per_category[c]["TP"] + per_category[c]["FP"] + per_category[c]["FN"]]
        present = [per_category[c][key] for c in occurring]
        return float(np.mean(present)) if present else float("nan")

    return {
        "PQ": mean("PQ", all_categories),
        "SQ": mean("SQ", all_categories),
        "RQ": mean("RQ", all_categories),
        "PQ_things": mean("PQ", things),
        "PQ_stuff": mean("PQ", stuff),
        "per_category": per_category,
    }
