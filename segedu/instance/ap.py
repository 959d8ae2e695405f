r"""COCO's average precision, written out: greedy matching, precision/recall, the 101-point AP.

The COCO detection metric (Lin et al. 2014, arXiv:1405.0312; the evaluation code is
``pycocotools.cocoeval.COCOeval``) works in four steps, one function each here:

1. **IoU** between every detection and every ground truth of one image and category, masks for
   ``"segm"``, boxes for ``"bbox"``; a *crowd* region (``iscrowd=1``, many objects under one
   label) is scored by the fraction of the detection inside it, :math:`|d \cap g| / |d|`.
2. **Matching** (:func:`match_detections`): detections by decreasing score each take the best
   still-free ground truth with IoU at least the threshold :math:`t`; crowds can absorb any number
   of detections. A detection matched to a crowd (or to a ground truth outside the area range) is
   *ignored*: neither true nor false positive.
3. **Precision and recall** (:func:`precision_recall`) over all images, sorted by score.
4. **AP** (:func:`average_precision`): the precision envelope read at the 101 recalls
   0, 0.01, ..., 1; averaged over the categories and the ten thresholds
   :math:`t \in \{0.50, 0.55, \dots, 0.95\}` it is COCO's AP (:func:`coco_ap`).

:func:`coco_ap` equals ``COCOeval(coco_gt, coco_gt.loadRes(detections), iou_type)`` followed by
``evaluate(); accumulate(); summarize()`` and ``stats[:6]`` (tested in ``tests/test_detection.py``
to 1e-12), using ``pycocotools.mask`` only for the IoU and mask areas.
"""

from __future__ import annotations

import numbers
from collections import defaultdict

import numpy as np

from .._validation import SegeduInputError, SegeduTypeError, as_array, check_in, check_real_scalar

__all__ = [
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "AREA_RANGES",
    "precision_recall",
    "average_precision",
    "match_detections",
    "coco_ap",
]

#: COCO's ten IoU thresholds 0.50, 0.55, ..., 0.95 (built as pycocotools builds them, same floats).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
#: COCO's 101 recall thresholds 0, 0.01, ..., 1.
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
#: COCO's area ranges in square pixels, both ends inclusive as pycocotools has them: small ≤ 32², 32² ≤ medium ≤ 96²,
#: large ≥ 96² (an area of exactly 32² or 96² counts in two ranges).
AREA_RANGES = {"all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}


def precision_recall(scores, is_true_positive, n_ground_truth, ignored=None):
    r"""Precision and recall after each detection, the detections taken by decreasing score.

    Sort the detections by score, highest first (a stable sort: equal scores keep their order,
    as pycocotools' ``mergesort``), drop the ``ignored`` ones, and count after the :math:`k`-th
    detection the true positives :math:`TP_k` and false positives :math:`FP_k = k - TP_k`:

    .. math:: \text{precision}_k = \frac{TP_k}{TP_k + FP_k}, \qquad \text{recall}_k = \frac{TP_k}{n_{gt}}.

    Parameters
    ----------
    scores : length-D confidence scores.
    is_true_positive : length-D booleans (the detection matched a ground truth).
    n_ground_truth : number of (non-ignored) ground-truth objects, at least 1.
    ignored : optional length-D booleans; these detections count neither way.

    Returns
    -------
    precision, recall : float64 arrays, one entry per non-ignored detection, in score order.

    Examples
    --------
    >>> precision, recall = precision_recall([0.9, 0.3, 0.8], [True, True, False], n_ground_truth=4)
    >>> precision  # order 0.9 (TP), 0.8 (FP), 0.3 (TP)
    array([1.        , 0.5       , 0.66666667])
    >>> recall
    array([0.25, 0.25, 0.5 ])
    """
    score_array = as_array(scores, "scores")
    if score_array.ndim != 1:
        raise SegeduInputError(f"scores must be 1-D (one score per detection), but got shape {score_array.shape}.")
    if not (np.issubdtype(score_array.dtype, np.floating) or np.issubdtype(score_array.dtype, np.integer)):
        raise SegeduTypeError(f"scores must be real numbers, but their dtype is {score_array.dtype}.")
    if score_array.size and not np.all(np.isfinite(score_array)):
        raise SegeduInputError("scores contains NaN or infinite values.")
    flags = {}
    for name, values in (("is_true_positive", is_true_positive), ("ignored", ignored)):
        if values is None:
            flags[name] = np.zeros(score_array.shape, dtype=bool)
            continue
        arr = as_array(values, name)
        if arr.shape != score_array.shape:
            raise SegeduInputError(
                f"{name} must have one entry per detection, shape {score_array.shape}, but got shape {arr.shape}."
            )
        if arr.dtype != bool and not (np.issubdtype(arr.dtype, np.integer) and np.isin(arr, (0, 1)).all()):
            raise SegeduTypeError(f"{name} must be booleans (or 0/1), but got dtype {arr.dtype}.")
        flags[name] = arr.astype(bool)
    if isinstance(n_ground_truth, bool) or not isinstance(n_ground_truth, numbers.Integral) or n_ground_truth < 1:
        raise SegeduInputError(
            f"n_ground_truth must be a positive int (recall divides by it), but got {n_ground_truth!r}. "
            f"A category without ground truth has no AP: COCO reports -1 and leaves it out of the mean."
        )
    order = np.argsort(-score_array, kind="mergesort")
    keep = ~flags["ignored"][order]
    true_positive = flags["is_true_positive"][order][keep]
    tp_cumulative = np.cumsum(true_positive, dtype=np.float64)
    fp_cumulative = np.cumsum(~true_positive, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp_cumulative / (tp_cumulative + fp_cumulative)
    recall = tp_cumulative / float(n_ground_truth)
    return precision, recall


def average_precision(precision, recall, recall_thresholds=None):
    r"""COCO's interpolated average precision: the precision envelope read at 101 recall levels.

    The envelope makes precision monotone, :math:`\hat p(r) = \max_{r' \ge r} p(r')` (a right-to-left
    running maximum), and the AP averages it at the recall thresholds :math:`r_j = 0, 0.01, \dots, 1`:

    .. math:: AP = \frac{1}{101} \sum_{j=0}^{100} \hat p\big(\min\{k : \text{recall}_k \ge r_j\}\big),

    a level that the detections never reach contributing 0. This is exactly
    ``COCOeval.accumulate`` (``np.searchsorted(recall, thresholds, side="left")``); Pascal VOC 2007
    used 11 levels, VOC 2010+ the area under the whole envelope (Everingham et al. 2010).

    Parameters
    ----------
    precision, recall : 1-D arrays from :func:`precision_recall` (recall non-decreasing).
    recall_thresholds : optional increasing thresholds, default :data:`RECALL_THRESHOLDS`.

    Returns
    -------
    ap : float in [0, 1].

    Examples
    --------
    >>> round(average_precision([1.0, 0.5, 2 / 3], [0.25, 0.25, 0.5]), 4)  # (26 · 1 + 25 · 2/3 + 50 · 0) / 101
    0.4224
    """
    precision = as_array(precision, "precision").astype(np.float64, copy=True)
    recall = as_array(recall, "recall").astype(np.float64, copy=False)
    if precision.ndim != 1 or recall.shape != precision.shape:
        raise SegeduInputError(
            f"precision and recall must be 1-D of one length (one entry per detection), but got shapes "
            f"{precision.shape} and {recall.shape}."
        )
    if recall.size and np.any(np.diff(recall) < 0):
        raise SegeduInputError("recall must be non-decreasing (detections sorted by score); use precision_recall().")
    thresholds = RECALL_THRESHOLDS if recall_thresholds is None else as_array(recall_thresholds, "recall_thresholds")
    return float(np.mean(_interpolated_precision(np.nan_to_num(precision, nan=0.0), recall, thresholds)))


def _interpolated_precision(precision, recall, thresholds=RECALL_THRESHOLDS):
    """The precision envelope at each recall threshold (0 where never reached): COCOeval's ``q``."""
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if precision.size else precision
    indices = np.searchsorted(recall, thresholds, side="left")
    sampled = np.zeros(len(thresholds), dtype=np.float64)
    reached = indices < len(recall)
    sampled[reached] = envelope[indices[reached]]
    return sampled


def match_detections(iou, iou_threshold, gt_ignore=None, gt_crowd=None):
    r"""Greedy matching of one image's detections (rows, by decreasing score) to its ground truths.

    Each detection in turn takes the ground truth with the highest IoU :math:`\ge t` among those
    still free (a crowd is never used up), as ``COCOeval.evaluateImg``:

    - ground truths that count (not ignored) are preferred: an ignored one (crowd, or outside the
      area range) is taken only when no countable one reaches the threshold;
    - a detection matched to an ignored ground truth is itself ignored.

    Parameters
    ----------
    iou : D×G IoUs, detections already sorted by decreasing score.
    iou_threshold : t in [0, 1] (COCO caps it at 1 - 1e-10, so t = 1 still needs IoU of 1).
    gt_ignore : optional length-G booleans, default none ignored.
    gt_crowd : optional length-G booleans (crowds can match many detections), default none.

    Returns
    -------
    matched_gt : length-D int64, the matched ground truth's column or -1.
    ignored : length-D bool, matched to an ignored ground truth.

    Examples
    --------
    >>> iou = np.array([[0.8, 0.6], [0.7, 0.2], [0.1, 0.55]])
    >>> match_detections(iou, 0.5)  # the second detection finds its best box taken
    (array([ 0, -1,  1]), array([False, False, False]))
    """
    iou = as_array(iou, "iou").astype(np.float64, copy=False)
    if iou.ndim != 2:
        raise SegeduInputError(
            f"iou must be the D×G matrix of detections × ground truths, but got shape {iou.shape}."
        )
    n_det, n_gt = iou.shape
    threshold = check_real_scalar(iou_threshold, "iou_threshold", minimum=0.0)
    ignore = np.zeros(n_gt, bool) if gt_ignore is None else as_array(gt_ignore, "gt_ignore").astype(bool)
    crowd = np.zeros(n_gt, bool) if gt_crowd is None else as_array(gt_crowd, "gt_crowd").astype(bool)
    if ignore.shape != (n_gt,) or crowd.shape != (n_gt,):
        raise SegeduInputError(
            f"gt_ignore and gt_crowd must have one entry per ground truth ({n_gt} columns of iou), "
            f"but got shapes {ignore.shape} and {crowd.shape}."
        )
    # Countable ground truths first, so that the search below can stop at the first ignored one.
    gt_order = np.argsort(ignore, kind="mergesort")
    taken = np.zeros(n_gt, bool)
    matched_gt = np.full(n_det, -1, dtype=np.int64)
    ignored = np.zeros(n_det, bool)
    for d in range(n_det):
        best_iou = min(threshold, 1 - 1e-10)
        best = -1
        for g in gt_order:
            if taken[g] and not crowd[g]:
                continue
            if best > -1 and not ignore[best] and ignore[g]:
                break  # a countable match beats any ignored one
            if iou[d, g] < best_iou:
                continue
            best_iou, best = iou[d, g], g
        if best == -1:
            continue
        matched_gt[d] = best
        ignored[d] = ignore[best]
        taken[best] = True
    return matched_gt, ignored


def _mask_utils():
    from pycocotools import mask as mask_utils

    return mask_utils


def _check_detection(det, index: int, iou_type: str, image_ids: set) -> None:
    if not isinstance(det, dict):
        raise SegeduTypeError(f"detections[{index}] must be a COCO result dict, but got {type(det).__name__}.")
    missing = [k for k in ("image_id", "category_id", "score") if k not in det]
    key = "segmentation" if iou_type == "segm" else "bbox"
    if key not in det and not (iou_type == "bbox" and "segmentation" in det):
        missing.append(key)
    if missing:
        raise SegeduInputError(
            f"detections[{index}] lacks {', '.join(missing)}: a COCO result is a dict with image_id, "
            f"category_id, score and {'a segmentation RLE' if iou_type == 'segm' else 'a bbox [x, y, w, h]'}."
        )
    if det["image_id"] not in image_ids:
        raise SegeduInputError(
            f"detections[{index}] has image_id {det['image_id']!r}, which is not an image of coco_gt; "
            f"results must refer to the ground truth's images."
        )
    if iou_type == "bbox" and "bbox" in det:
        box = np.asarray(det["bbox"], dtype=np.float64)
        if box.shape != (4,) or box[2] < 0 or box[3] < 0:
            raise SegeduInputError(
                f"detections[{index}]['bbox'] must be COCO's [x, y, width, height] with width, height >= 0, "
                f"but got {det['bbox']!r}. Convert xyxy boxes with box_xyxy_to_xywh."
            )


def coco_ap(coco_gt, detections, iou_type="segm", max_detections=100):
    r"""COCO's AP, AP50, AP75, APs, APm, APl, computed with segedu's own matching.

    For every IoU threshold :math:`t`, category :math:`c` and area range: match each image's
    detections of :math:`c` greedily (:func:`match_detections`; at most ``max_detections`` per image
    and category, the highest scored), pool the images, and take :func:`average_precision`. AP
    averages the ten thresholds and the categories that have ground truth (COCO's -1 marks the
    others and is left out); AP50 and AP75 use one threshold; APs/APm/APl keep only ground truths
    (and unmatched detections) of area ≤ 32², in [32², 96²], ≥ 96² (pycocotools includes both ends), the others
    being ignored.

    Equal to ``pycocotools.cocoeval.COCOeval(coco_gt, coco_gt.loadRes(detections), iou_type)``'s
    ``stats[:6]`` after ``evaluate(); accumulate(); summarize()`` (to rounding, 1e-12), including two
    pycocotools details: ground-truth areas are the annotations' ``area`` field, and a detection's
    area is its box's ``w·h`` when the first detection has a ``bbox``, else its mask's area (what
    ``loadRes`` does). Unlike ``loadRes``, an empty ``detections`` list is allowed (AP 0 for every
    category with ground truth), and the dicts are not modified.

    Parameters
    ----------
    coco_gt : ``pycocotools.coco.COCO`` with the ground truth.
    detections : list of COCO result dicts ``{"image_id", "category_id", "score", "segmentation"
        (RLE) and/or "bbox" ([x, y, w, h])}``.
    iou_type : ``"segm"`` (mask IoU) or ``"bbox"`` (box IoU).
    max_detections : per image and category (COCO's ``maxDets[-1]``, 100).

    Returns
    -------
    dict with float values ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl`` (-1 where no
    category has ground truth in that range).

    Examples
    --------
    >>> import json, os, tempfile
    >>> from pycocotools.coco import COCO
    >>> from segedu.data.coco.evaluation import quiet_pycocotools
    >>> gt = {"images": [{"id": 1, "width": 100, "height": 100}],
    ...       "categories": [{"id": 1, "name": "box"}],
    ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40],
    ...                        "area": 1600, "iscrowd": 0}]}
    >>> path = os.path.join(tempfile.mkdtemp(), "gt.json")
    >>> json.dump(gt, open(path, "w"))
    >>> with quiet_pycocotools():
    ...     coco_gt = COCO(path)
    >>> dets = [{"image_id": 1, "category_id": 1, "bbox": [12, 10, 40, 40], "score": 0.9}]
    >>> coco_ap(coco_gt, dets, iou_type="bbox")["AP50"]  # IoU 38·40 / (2·1600 - 38·40) = 0.905
    1.0
    >>> round(coco_ap(coco_gt, dets, iou_type="bbox")["AP"], 3)  # matched for t <= 0.9: 9 of 10
    0.9
    """
    check_in(iou_type, "iou_type", ("segm", "bbox"))
    if isinstance(max_detections, bool) or not isinstance(max_detections, numbers.Integral) or max_detections < 1:
        raise SegeduInputError(f"max_detections must be a positive int (COCO uses 100), but got {max_detections!r}.")
    if not hasattr(coco_gt, "getImgIds") or not hasattr(coco_gt, "annToRLE"):
        raise SegeduTypeError(
            f"coco_gt must be a pycocotools.coco.COCO, but got {type(coco_gt).__name__}; "
            f"load it with pycocotools.coco.COCO(annotation_path)."
        )
    if not isinstance(detections, (list, tuple)):
        raise SegeduTypeError(f"detections must be a list of COCO result dicts, but got {type(detections).__name__}.")
    mask_utils = _mask_utils()
    image_ids = sorted(coco_gt.getImgIds())
    category_ids = sorted(coco_gt.getCatIds())
    image_set, category_set = set(image_ids), set(category_ids)
    for index, det in enumerate(detections):
        _check_detection(det, index, iou_type, image_set)
    area_from_box = bool(detections) and "bbox" in detections[0] and len(detections[0]["bbox"]) > 0
    if area_from_box:
        without_box = [i for i, det in enumerate(detections) if "bbox" not in det]
        if without_box:
            raise SegeduInputError(
                f"detections[0] has a bbox but detections[{without_box[0]}] has none; COCO's loadRes takes every "
                f"detection's area from its bbox when the first one has a bbox. Give all of them a bbox, or none."
            )

    ground_truth = defaultdict(list)
    for ann in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=image_ids, catIds=category_ids)):
        ground_truth[ann["image_id"], ann["category_id"]].append(ann)
    results = defaultdict(list)
    for det in detections:
        if det["category_id"] in category_set:
            results[det["image_id"], det["category_id"]].append(det)

    def region(ann):
        if iou_type == "bbox":
            if "bbox" in ann:
                return [float(v) for v in ann["bbox"]]
            return list(mask_utils.toBbox(coco_gt.annToRLE(ann)))
        return coco_gt.annToRLE(ann)

    def detection_area(det):
        if area_from_box:
            return float(det["bbox"][2]) * float(det["bbox"][3])
        return float(mask_utils.area(coco_gt.annToRLE(det)))

    n_thresholds, n_areas = len(IOU_THRESHOLDS), len(AREA_RANGES)
    # pooled[c, a]: per image, the (scores, tp (T×D), ignored (T×D)) and the countable-gt count.
    pooled = defaultdict(lambda: {"scores": [], "tp": [], "ignored": [], "n_gt": 0})
    for k, category in enumerate(category_ids):
        for image in image_ids:
            gts = ground_truth.get((image, category), [])
            dets = results.get((image, category), [])
            if not gts and not dets:
                continue
            order = np.argsort([-float(d["score"]) for d in dets], kind="mergesort")[:max_detections]
            dets = [dets[i] for i in order]
            crowd = np.array([bool(g.get("iscrowd", 0)) for g in gts], dtype=bool)
            if gts and dets:
                regions_d = [region(d) for d in dets]
                regions_g = [region(g) for g in gts]
                iou = mask_utils.iou(regions_d, regions_g, crowd.astype(np.uint8).tolist())
                iou = np.asarray(iou, dtype=np.float64).reshape(len(dets), len(gts))
            else:
                iou = np.zeros((len(dets), len(gts)))
            gt_area = np.array([float(g["area"]) for g in gts])
            det_area = np.array([detection_area(d) for d in dets])
            scores = np.array([float(d["score"]) for d in dets])
            for a, (low, high) in enumerate(AREA_RANGES.values()):
                gt_ignore = crowd | (gt_area < low) | (gt_area > high)
                det_outside = (det_area < low) | (det_area > high)
                tp = np.zeros((n_thresholds, len(dets)), bool)
                ignored = np.zeros((n_thresholds, len(dets)), bool)
                for t, threshold in enumerate(IOU_THRESHOLDS):
                    matched_gt, matched_ignored = match_detections(iou, threshold, gt_ignore, crowd)
                    unmatched = matched_gt < 0
                    ignored[t] = matched_ignored | (unmatched & det_outside)
                    tp[t] = ~unmatched
                entry = pooled[k, a]
                entry["scores"].append(scores)
                entry["tp"].append(tp)
                entry["ignored"].append(ignored)
                entry["n_gt"] += int(np.count_nonzero(~gt_ignore))

    precision = -np.ones((n_thresholds, len(RECALL_THRESHOLDS), len(category_ids), n_areas))
    for (k, a), entry in pooled.items():
        if entry["n_gt"] == 0:
            continue
        scores = np.concatenate(entry["scores"])
        tp = np.concatenate(entry["tp"], axis=1)
        ignored = np.concatenate(entry["ignored"], axis=1)
        for t in range(n_thresholds):
            p, r = precision_recall(scores, tp[t], entry["n_gt"], ignored=ignored[t])
            precision[t, :, k, a] = _interpolated_precision(p, r)

    def summary(area_index, threshold=None):
        block = precision[:, :, :, area_index]
        if threshold is not None:
            block = block[np.where(np.isclose(IOU_THRESHOLDS, threshold))[0]]
        valid = block[block > -1]
        return float(np.mean(valid)) if valid.size else -1.0

    return {
        "AP": summary(0),
        "AP50": summary(0, 0.5),
        "AP75": summary(0, 0.75),
        "APs": summary(1),
        "APm": summary(2),
        "APl": summary(3),
    }
