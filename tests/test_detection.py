"""The detection primer (segedu.instance boxes, anchors, ap, panoptic) against independent peers.

Peers: torchvision.ops (box_iou, box_convert, nms, batched_nms), torchvision's detection utilities
(BoxCoder, AnchorGenerator, Matcher), pycocotools' COCOeval (AP) and torchmetrics' PanopticQuality.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.instance.anchors import cell_anchors, make_anchors, match_anchors
from segedu.instance.ap import average_precision, coco_ap, match_detections, precision_recall
from segedu.instance.boxes import (
    batched_nms,
    box_area,
    box_iou,
    box_xywh_to_xyxy,
    box_xyxy_to_xywh,
    decode_boxes,
    encode_boxes,
    nms,
)
from segedu.instance.panoptic import panoptic_quality

SEEDS = range(6)


def random_boxes(generator, n, dtype=torch.float32, size=50.0, integer=False):
    top_left = torch.rand(n, 2, generator=generator, dtype=torch.float64) * size
    width_height = torch.rand(n, 2, generator=generator, dtype=torch.float64) * size / 2 + 0.5
    boxes = torch.cat([top_left, top_left + width_height], dim=1)
    if integer:
        boxes = boxes.round()
    return boxes.to(dtype)


# --------------------------------------------------------------------------------------------- boxes


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_box_iou_and_area_match_torchvision(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    a, b = random_boxes(g, 17, dtype), random_boxes(g, 9, dtype)
    ours = box_iou(a, b)
    assert ours.dtype == dtype
    atol = 1e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(ours, torchvision.ops.box_iou(a, b), rtol=0, atol=atol)
    torch.testing.assert_close(box_area(a), torchvision.ops.box_area(a))
    # numpy in, numpy out, same numbers
    np.testing.assert_allclose(box_iou(a.numpy(), b.numpy()), ours.numpy())


def test_box_iou_edge_cases_match_torchvision():
    a = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 2.0]])
    ours, theirs = box_iou(a, a), torchvision.ops.box_iou(a, a)
    torch.testing.assert_close(ours, theirs, equal_nan=True)  # empty vs empty is 0/0 in both
    assert ours[1, 2] == 0  # touching boxes do not overlap
    assert box_iou(torch.zeros(0, 4), a).shape == (0, 3)
    assert box_iou(np.zeros((2, 4)) + [0, 0, 1, 1], np.zeros((0, 4))).shape == (2, 0)
    assert box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3]]).dtype == np.float64  # integer boxes -> float64


@pytest.mark.parametrize("seed", SEEDS)
def test_box_conversions_match_torchvision(seed):
    g = torch.Generator().manual_seed(seed)
    xyxy = random_boxes(g, 11)
    xywh = torchvision.ops.box_convert(xyxy, "xyxy", "xywh")
    torch.testing.assert_close(box_xyxy_to_xywh(xyxy), xywh)
    torch.testing.assert_close(box_xywh_to_xyxy(xywh), torchvision.ops.box_convert(xywh, "xywh", "xyxy"))
    np.testing.assert_allclose(box_xywh_to_xyxy(xywh.numpy()), xyxy.numpy(), atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_encode_decode_match_box_coder(seed, dtype):
    weights = (1.0, 1.0, 1.0, 1.0) if seed % 2 else (10.0, 10.0, 5.0, 5.0)  # the RPN's and the box head's
    g = torch.Generator().manual_seed(seed)
    gt, anchors = random_boxes(g, 20, dtype), random_boxes(g, 20, dtype)
    coder = BoxCoder(weights)
    deltas = encode_boxes(gt, anchors, weights)
    assert deltas.dtype == dtype
    torch.testing.assert_close(deltas, coder.encode_single(gt, anchors))
    decoded = decode_boxes(deltas, anchors, weights)
    torch.testing.assert_close(decoded, coder.decode_single(deltas, anchors))
    torch.testing.assert_close(decoded, gt, rtol=1e-4, atol=1e-4)  # decode inverts encode
    # several classes at once (the box head's N×4K output), and the clip of huge log-sizes
    many = torch.randn(20, 12, generator=g, dtype=torch.float64).to(dtype) * 3
    many[0, 2] = 50.0
    torch.testing.assert_close(decode_boxes(many, anchors, weights), coder.decode_single(many, anchors))


@pytest.mark.parametrize("seed", range(10))
def test_nms_matches_torchvision_including_ties(seed):
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(g, 60, size=40.0, integer=seed % 2 == 0)  # integer boxes give exact IoU ties
    scores = torch.randint(0, 6, (60,), generator=g).float() / 5  # many equal scores
    for threshold in (0.0, 0.3, 0.5, 0.7, 1.0):  # 0.3: float32 IoUs of exactly 0.3 are > 0.3 in torchvision
        keep = nms(boxes, scores, threshold)
        assert keep.dtype == torch.int64
        assert torch.equal(keep, torchvision.ops.nms(boxes, scores, threshold))
        assert np.array_equal(nms(boxes.numpy(), scores.numpy(), threshold), keep.numpy())


@pytest.mark.parametrize("seed", SEEDS)
def test_batched_nms_matches_torchvision(seed):
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(g, 50, size=30.0)
    scores = torch.rand(50, generator=g)
    labels = torch.randint(0, 4, (50,), generator=g)
    assert torch.equal(batched_nms(boxes, scores, labels, 0.5), torchvision.ops.batched_nms(boxes, scores, labels, 0.5))


def test_nms_empty_and_single():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)
    empty_boxes, empty_scores = torch.zeros(0, 4), torch.zeros(0)
    assert torch.equal(nms(empty_boxes, empty_scores, 0.5), torchvision.ops.nms(empty_boxes, empty_scores, 0.5))
    assert nms([[0, 0, 1, 1]], [0.3], 0.5).tolist() == [0]


# ------------------------------------------------------------------------------------------- anchors


@pytest.mark.parametrize(
    "feature_size, stride, sizes, ratios",
    [
        ((3, 5), 16, (32, 64), (0.5, 1.0, 2.0)),
        ((4, 4), 8, (20,), (0.7, 1.3)),
        ((2, 3), (8, 4), (11, 13, 17), (1.0,)),
        ((1, 1), 32, (128, 256, 512), (0.5, 1.0, 2.0)),
        ((7, 2), 4, (15.0,), (0.25, 3.0)),
    ],
)
def test_make_anchors_matches_anchor_generator(feature_size, stride, sizes, ratios):
    height, width = feature_size
    stride_h, stride_w = (stride, stride) if isinstance(stride, int) else stride
    generator = AnchorGenerator((sizes,), (ratios,))
    images = ImageList(torch.zeros(1, 3, height * stride_h, width * stride_w), [(height * stride_h, width * stride_w)])
    expected = generator(images, [torch.zeros(1, 8, height, width)])[0]
    assert torch.equal(make_anchors(feature_size, stride, sizes, ratios), expected)
    assert torch.equal(cell_anchors(sizes, ratios), generator.cell_anchors[0])


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("allow_low", [True, False])
def test_match_anchors_matches_matcher(seed, allow_low):
    g = torch.Generator().manual_seed(seed)
    gt = random_boxes(g, 5, integer=True)
    anchors = make_anchors((6, 6), 8, sizes=(12, 24), aspect_ratios=(0.5, 1.0, 2.0))
    iou = box_iou(gt, anchors)  # integer boxes and a regular grid: many tied IoUs
    quantised = (torch.rand(4, 40, generator=g) * 10).floor() / 10  # ties everywhere
    for high, low in ((0.7, 0.3), (0.5, 0.5), (0.6, 0.4)):
        expected = Matcher(high, low, allow_low)(iou.clone())
        assert torch.equal(match_anchors(iou, high, low, allow_low), expected)
        expected = Matcher(high, low, allow_low)(quantised.clone())
        assert torch.equal(match_anchors(quantised, high, low, allow_low), expected)


def test_match_anchors_without_ground_truth_is_background():
    assert match_anchors(torch.zeros(0, 5)).tolist() == [-1] * 5


# ------------------------------------------------------------------------------------------------ AP


def _noisy_detections(coco, rng, with_bbox, with_segm, copies=1):
    """Jittered copies of the ground truth (some missed, some duplicated, some mislabelled) plus false positives."""
    from pycocotools import mask as mask_utils

    def add(det, mask):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        if with_segm:
            det["segmentation"] = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
        if with_bbox:
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            dx, dy, dw, dh = rng.normal(0, [1.5, 1.5, 2.0, 2.0])
            det["bbox"] = [x + dx, y + dy, max(w + dw, 0.5), max(h + dh, 0.5)]
        return det

    categories = sorted(coco.getCatIds())
    detections = []
    for image in coco.dataset["images"]:
        height, width = image["height"], image["width"]
        for ann in coco.imgToAnns[image["id"]]:
            if rng.random() < 0.2:
                continue  # missed object
            for _ in range(copies + int(rng.random() < 0.2)):
                mask = np.roll(coco.annToMask(ann).astype(bool), tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
                if not mask.any():
                    continue
                category = ann["category_id"] if rng.random() < 0.9 else int(rng.choice(categories))
                score = float(np.round(rng.random(), 1))  # coarse scores: many ties
                detections.append(add({"image_id": image["id"], "category_id": category, "score": score}, mask))
        for _ in range(int(rng.integers(0, 4))):
            mask = np.zeros((height, width), bool)
            y, x, side = rng.integers(0, height - 5), rng.integers(0, width - 5), rng.integers(3, 60)
            mask[y : y + side, x : x + side] = True
            category = int(rng.choice(categories))
            score = float(np.round(rng.random(), 2))
            detections.append(add({"image_id": image["id"], "category_id": category, "score": score}, mask))
    rng.shuffle(detections)
    return detections


def _cocoeval_stats(coco, detections, iou_type):
    from pycocotools.cocoeval import COCOeval

    from segedu.data.coco.evaluation import quiet_pycocotools

    with quiet_pycocotools():
        evaluator = COCOeval(coco, coco.loadRes(copy.deepcopy(detections)), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[:6]


@pytest.fixture(scope="module")
def synthetic_cocos(tmp_path_factory):
    from pycocotools.coco import COCO

    from segedu.data import write_coco_instances
    from segedu.data.coco.evaluation import quiet_pycocotools

    cocos = []
    for seed in range(4):
        root = tmp_path_factory.mktemp(f"coco{seed}")
        path = write_coco_instances(root, n_images=6, seed=seed, min_size=96, max_size=240)
        with quiet_pycocotools():
            cocos.append(COCO(str(path)))
    return cocos


def test_synthetic_ground_truth_has_what_the_ap_test_needs(synthetic_cocos):
    anns = [a for coco in synthetic_cocos for a in coco.dataset["annotations"]]
    areas = np.array([a["area"] for a in anns])
    assert any(a["iscrowd"] for a in anns)
    assert (areas < 32**2).any() and ((areas >= 32**2) & (areas <= 96**2)).any() and (areas > 96**2).any()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "iou_type, with_bbox, with_segm",
    [("segm", False, True), ("segm", True, True), ("bbox", True, False), ("bbox", False, True)],
)
def test_coco_ap_equals_cocoeval(synthetic_cocos, seed, iou_type, with_bbox, with_segm):
    coco = synthetic_cocos[seed]
    rng = np.random.default_rng([seed, with_bbox, with_segm])
    detections = _noisy_detections(coco, rng, with_bbox, with_segm)
    before = copy.deepcopy(detections)
    ours = coco_ap(coco, detections, iou_type)
    assert list(ours) == ["AP", "AP50", "AP75", "APs", "APm", "APl"]
    np.testing.assert_allclose(list(ours.values()), _cocoeval_stats(coco, detections, iou_type), rtol=0, atol=1e-12)
    assert detections == before  # coco_ap does not annotate the caller's dicts as loadRes does


def test_coco_ap_keeps_only_the_best_100_per_image_and_category(synthetic_cocos):
    coco = synthetic_cocos[0]
    detections = _noisy_detections(coco, np.random.default_rng(7), True, False, copies=40)
    per_key = np.bincount([d["image_id"] * 100 + d["category_id"] for d in detections])
    assert per_key.max() > 100
    ours = list(coco_ap(coco, detections, "bbox").values())
    np.testing.assert_allclose(ours, _cocoeval_stats(coco, detections, "bbox"), rtol=0, atol=1e-12)


def test_coco_ap_without_detections_is_zero_where_there_is_ground_truth(synthetic_cocos):
    coco = synthetic_cocos[1]
    image = coco.dataset["images"][0]
    far_away = [{"image_id": image["id"], "category_id": coco.getCatIds()[0], "bbox": [0, 0, 1, 1], "score": 0.01}]
    expected = _cocoeval_stats(coco, far_away, "bbox")
    np.testing.assert_allclose(list(coco_ap(coco, [], "bbox").values()), expected, atol=1e-12)


def test_precision_recall_and_average_precision_by_hand():
    precision, recall = precision_recall([0.5, 0.9, 0.5, 0.1], [True, False, False, True], n_ground_truth=2)
    # order 0.9 (FP), 0.5 (TP, first of the tie), 0.5 (FP), 0.1 (TP)
    np.testing.assert_allclose(precision, [0.0, 0.5, 1 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.0, 0.5, 0.5, 1.0])
    # envelope [0.5, 0.5, 0.5, 0.5]: every recall level reached -> AP 0.5
    assert average_precision(precision, recall) == pytest.approx(0.5)
    p, r = precision_recall([0.9, 0.8], [True, False], n_ground_truth=2, ignored=[False, True])
    assert p.tolist() == [1.0] and r.tolist() == [0.5]
    assert average_precision(p, r) == pytest.approx(51 / 101)  # levels 0..0.5 at precision 1


def test_match_detections_prefers_countable_ground_truth_and_crowds_absorb():
    iou = np.array([[0.6, 0.9, 0.0], [0.0, 0.0, 0.8], [0.0, 0.0, 0.7]])
    matched, ignored = match_detections(iou, 0.5, gt_ignore=[False, True, True], gt_crowd=[False, False, True])
    assert matched.tolist() == [0, 2, 2]  # countable gt 0 beats the ignored gt 1; the crowd takes two
    assert ignored.tolist() == [False, True, True]


# ------------------------------------------------------------------------------------------ panoptic


def _random_panoptic(rng, height, width, things, stuff):
    """Stuff regions from a coarse grid, things as random rectangles on top, some void."""
    coarse = rng.choice(list(stuff) + [99], size=(height // 4 + 1, width // 4 + 1), p=None)
    category = np.kron(coarse, np.ones((4, 4), int))[:height, :width]
    instance = np.zeros_like(category)
    for k in range(int(rng.integers(1, 6))):
        y, x = rng.integers(0, height - 2), rng.integers(0, width - 2)
        h, w = rng.integers(2, height // 2), rng.integers(2, width // 2)
        category[y : y + h, x : x + w] = rng.choice(list(things))
        instance[y : y + h, x : x + w] = k + 1
    return np.stack([category, instance], axis=-1)


def _perturb(rng, panoptic, things, stuff):
    pred = panoptic.copy()
    pred[..., 0][pred[..., 0] == 99] = rng.choice(list(stuff))  # no void in the prediction
    pred = np.roll(pred, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
    for _ in range(int(rng.integers(0, 3))):
        y, x = rng.integers(0, pred.shape[0] - 3), rng.integers(0, pred.shape[1] - 3)
        pred[y : y + rng.integers(2, 8), x : x + rng.integers(2, 8)] = (rng.choice(list(things)), rng.integers(10, 20))
    return pred


@pytest.mark.parametrize("seed", range(8))
def test_panoptic_quality_matches_torchmetrics(seed):
    from torchmetrics.detection import PanopticQuality

    rng = np.random.default_rng(seed)
    things, stuff = {1, 3, 4}, {0, 7}
    target = np.stack([_random_panoptic(rng, 24, 32, things, stuff) for _ in range(3)])
    pred = np.stack([_perturb(rng, t, things, stuff) for t in target])
    ours = panoptic_quality(pred, target, things, stuff)
    peer = PanopticQuality(things, stuff, return_sq_and_rq=True)(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_allclose([ours["PQ"], ours["SQ"], ours["RQ"]], peer.numpy(), atol=1e-12)
    per_class = PanopticQuality(things, stuff, return_sq_and_rq=True, return_per_class=True)(
        torch.from_numpy(pred), torch.from_numpy(target)
    )
    order = sorted(things) + sorted(stuff)  # torchmetrics' class order
    mine = np.array([[ours["per_category"][c][k] for c in order] for k in ("PQ", "SQ", "RQ")])
    np.testing.assert_allclose(mine, per_class.numpy().reshape(len(order), 3).T, atol=1e-12)
    # one image at a time agrees too
    single = panoptic_quality(pred[0], target[0], things, stuff)
    peer_metric = PanopticQuality(things, stuff, return_sq_and_rq=True)
    peer_single = peer_metric(torch.from_numpy(pred[:1]), torch.from_numpy(target[:1]))
    np.testing.assert_allclose([single["PQ"], single["SQ"], single["RQ"]], peer_single.numpy(), atol=1e-12)


def test_panoptic_quality_perfect_and_torchmetrics_doc_example():
    from torchmetrics.detection import PanopticQuality

    preds = torch.tensor([[[[6, 0], [0, 0], [6, 0], [6, 0]], [[0, 0], [0, 0], [6, 0], [0, 1]], [[0, 0], [0, 0], [6, 0], [0, 1]],
                           [[0, 0], [7, 0], [6, 0], [1, 0]], [[0, 0], [7, 0], [7, 0], [7, 0]]]])  # fmt: skip
    target = torch.tensor([[[[6, 0], [0, 1], [6, 0], [0, 1]], [[0, 1], [0, 1], [6, 0], [0, 1]], [[0, 1], [0, 1], [6, 0], [1, 0]],
                            [[0, 1], [7, 0], [1, 0], [1, 0]], [[0, 1], [7, 0], [7, 0], [7, 0]]]])  # fmt: skip
    ours = panoptic_quality(preds, target, things={0, 1}, stuff={6, 7})
    peer = PanopticQuality({0, 1}, {6, 7}, return_sq_and_rq=True)(preds, target)
    np.testing.assert_allclose([ours["PQ"], ours["SQ"], ours["RQ"]], peer.numpy(), atol=1e-12)
    perfect = panoptic_quality(target, target, things={0, 1}, stuff={6, 7})
    assert perfect["PQ"] == perfect["SQ"] == perfect["RQ"] == 1.0


# ----------------------------------------------------------------------------------------- bad input


def test_bad_boxes_name_the_problem_and_the_fix():
    with pytest.raises(SegeduInputError, match="width >= 0"):
        box_xywh_to_xyxy([[0, 0, -3, 2]])
    with pytest.raises(SegeduInputError, match="box_xywh_to_xyxy"):
        box_iou([[10, 10, 5, 5]], [[0, 0, 1, 1]])  # xywh passed as xyxy
    with pytest.raises(SegeduInputError, match=r"\[None\]"):
        box_iou(torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.zeros(0, 4))
    with pytest.raises(SegeduInputError, match="shape"):
        box_area(np.zeros((3, 5)))
    with pytest.raises(SegeduInputError, match="NaN"):
        box_area([[0, 0, float("nan"), 1]])
    with pytest.raises(SegeduTypeError, match="real numbers"):
        box_area(np.zeros((1, 4), dtype=bool))
    with pytest.raises(SegeduInputError, match="one score per box"):
        nms([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5], 0.5)
    with pytest.raises(SegeduInputError, match="pair up"):
        encode_boxes([[0, 0, 1, 1]], [[0, 0, 1, 1], [0, 0, 2, 2]])
    with pytest.raises(SegeduInputError, match="positive width"):
        encode_boxes([[0, 0, 1, 1]], [[0, 0, 0, 1]])
    with pytest.raises(SegeduInputError, match="4 columns"):
        decode_boxes(np.zeros((1, 5)), [[0, 0, 1, 1]])
    with pytest.raises(SegeduInputError, match="weights"):
        encode_boxes([[0, 0, 1, 1]], [[0, 0, 1, 1]], weights=(1, 1))


def test_bad_anchor_and_matching_input():
    with pytest.raises(SegeduInputError, match="stride"):
        make_anchors((4, 4), 0)
    with pytest.raises(SegeduInputError, match="aspect_ratios"):
        make_anchors((4, 4), 8, sizes=(32,), aspect_ratios=())
    with pytest.raises(SegeduInputError, match="low must not exceed high"):
        match_anchors(torch.rand(2, 3), high=0.3, low=0.7)
    with pytest.raises(SegeduInputError, match="M×N"):
        match_anchors(torch.rand(3))


def test_bad_ap_input(synthetic_cocos):
    coco = synthetic_cocos[0]
    image_id = coco.getImgIds()[0]
    with pytest.raises(SegeduInputError, match="iou_type"):
        coco_ap(coco, [], iou_type="keypoints")
    with pytest.raises(SegeduInputError, match="lacks score"):
        coco_ap(coco, [{"image_id": image_id, "category_id": 1, "bbox": [0, 0, 1, 1]}], iou_type="bbox")
    with pytest.raises(SegeduInputError, match="not an image of coco_gt"):
        coco_ap(coco, [{"image_id": -5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}], iou_type="bbox")
    with pytest.raises(SegeduInputError, match="box_xyxy_to_xywh"):
        coco_ap(coco, [{"image_id": image_id, "category_id": 1, "bbox": [5, 5, -1, 2], "score": 1.0}], iou_type="bbox")
    mixed = [{"image_id": image_id, "category_id": 1, "bbox": [0, 0, 1, 1], "segmentation": None, "score": 1.0},
             {"image_id": image_id, "category_id": 1, "segmentation": None, "score": 0.5}]  # fmt: skip
    with pytest.raises(SegeduInputError, match="all of them a bbox"):
        coco_ap(coco, mixed, iou_type="segm")
    with pytest.raises(SegeduTypeError, match="pycocotools.coco.COCO"):
        coco_ap({"annotations": []}, [])
    with pytest.raises(SegeduInputError, match="n_ground_truth"):
        precision_recall([0.5], [True], n_ground_truth=0)
    with pytest.raises(SegeduInputError, match="one entry per detection"):
        precision_recall([0.5, 0.2], [True], n_ground_truth=1)


def test_bad_panoptic_input():
    target = np.zeros((4, 4, 2), int)
    with pytest.raises(SegeduInputError, match="disjoint"):
        panoptic_quality(target, target, things={0, 1}, stuff={1})
    with pytest.raises(SegeduInputError, match="np.stack"):
        panoptic_quality(target[..., 0], target[..., 0], things={1}, stuff={0})
    with pytest.raises(SegeduInputError, match="one shape"):
        panoptic_quality(target, target[:2], things={1}, stuff={0})
    with pytest.raises(SegeduTypeError, match="integer"):
        panoptic_quality(target.astype(float), target, things={1}, stuff={0})
    unknown = target.copy()
    unknown[0, 0, 0] = 5
    with pytest.raises(SegeduInputError, match="allow_unknown_pred_category"):
        panoptic_quality(unknown, target, things={1}, stuff={0})
    from torchmetrics.detection import PanopticQuality

    allowed = panoptic_quality(unknown, target, things={1}, stuff={0}, allow_unknown_pred_category=True)
    peer_metric = PanopticQuality({1}, {0}, allow_unknown_preds_category=True)
    peer = peer_metric(torch.from_numpy(unknown[None]), torch.from_numpy(target[None]))
    assert allowed["PQ"] == pytest.approx(float(peer))  # the void predicted pixel leaves the union: IoU 15/15


def _crowded_box_dataset(rng, n_images=5):
    """Boxes-only COCO ground truth packed tightly (a detection often overlaps several boxes),
    crowds among them, sizes across the small/medium/large limits, and jittered detections."""
    from pycocotools.coco import COCO

    from segedu.data.coco.evaluation import quiet_pycocotools

    images, annotations, detections = [], [], []
    for image_id in range(1, n_images + 1):
        images.append({"id": image_id, "width": 300, "height": 300})
        for _ in range(int(rng.integers(3, 12))):
            side = float(rng.choice([20.0, 31.0, 33.0, 60.0, 95.0, 97.0, 140.0])) + rng.normal(0, 2)
            x, y = rng.uniform(0, 60, 2)
            w, h = side * rng.uniform(0.7, 1.3), side * rng.uniform(0.7, 1.3)
            category = int(rng.integers(1, 3))
            crowd = int(rng.random() < 0.2)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "bbox": [x, y, w, h], "area": w * h * rng.uniform(0.8, 1.0), "iscrowd": crowd})  # fmt: skip
            for _ in range(int(rng.integers(0, 4))):
                jitter = rng.normal(0, side / 8, 4)
                detections.append({"image_id": image_id, "category_id": category if rng.random() < 0.9 else 3 - category,
                                   "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)],
                                   "score": float(np.round(rng.random(), 1))})  # fmt: skip
    dataset = {"images": images, "annotations": annotations,
               "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "never annotated"}]}  # fmt: skip
    with quiet_pycocotools():
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
    rng.shuffle(detections)
    return coco, detections


@pytest.mark.parametrize("seed", range(8))
def test_coco_ap_equals_cocoeval_on_crowded_boxes(seed):
    coco, detections = _crowded_box_dataset(np.random.default_rng(seed))
    ours = list(coco_ap(coco, detections, "bbox").values())
    np.testing.assert_allclose(ours, _cocoeval_stats(coco, detections, "bbox"), rtol=0, atol=1e-12)
