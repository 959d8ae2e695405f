"""Unit 09's Mask R-CNN: the small torchvision model, the COCO Dataset it trains on, and its evaluation.

Peers: torchvision (the model's interface and losses), pycocotools (annToMask, toBbox, COCOeval).
The shipped checkpoint's target is re-measured by tests/test_checkpoints.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.data import write_coco_instances
from segedu.data.coco import CocoInstances, collate_instances
from segedu.models.maskrcnn import (
    COCO_STAT_NAMES,
    count_parameters,
    detections_to_coco,
    evaluate_mask_rcnn,
    predict,
    small_mask_rcnn,
    train_mask_rcnn,
)

TORCHVISION_LOSSES = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}


@pytest.fixture(scope="module")
def coco_path(tmp_path_factory):
    return write_coco_instances(tmp_path_factory.mktemp("coco09"), n_images=6, seed=0, split="val", min_size=96,
                                max_size=128)


@pytest.fixture(scope="module")
def dataset(coco_path):
    return CocoInstances(coco_path)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return small_mask_rcnn(num_classes=9, image_size=96, max_image_size=128)


def test_model_is_torchvisions_mask_rcnn_with_small_parts(model):
    from torchvision.models.detection import MaskRCNN
    from torchvision.ops import MultiScaleRoIAlign

    assert isinstance(model, MaskRCNN)
    heads = model.roi_heads
    assert isinstance(heads.box_roi_pool, MultiScaleRoIAlign) and heads.box_roi_pool.output_size == (7, 7)
    assert heads.mask_roi_pool.output_size == (14, 14)
    assert heads.box_predictor.cls_score.out_features == 9
    assert heads.mask_predictor.mask_fcn_logits.out_channels == 9
    assert model.transform.min_size == (96,) and model.transform.max_size == 128
    # float16 weights must fit the 5 MB rule of shipped checkpoints
    assert 2 * count_parameters(model) < 5 * 1024 * 1024


def test_train_mode_gives_torchvisions_losses_and_eval_mode_detections(model, dataset):
    images, targets = collate_instances([dataset[i] for i in range(2)])
    model.train()
    losses = model(images, targets)
    assert set(losses) == TORCHVISION_LOSSES
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        out = model(images)
    for image, o in zip(images, out):
        n = o["boxes"].shape[0]
        assert o["masks"].shape == (n, 1, *image.shape[-2:])
        assert o["labels"].shape == o["scores"].shape == (n,)


def test_an_image_without_objects_trains(model):
    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros((0, 96, 96), dtype=torch.uint8)}
    model.train()
    losses = model([torch.rand(3, 96, 96)], [empty])
    assert losses["loss_mask"] == 0 and torch.isfinite(losses["loss_objectness"])
    model.eval()


def test_targets_agree_with_pycocotools(coco_path, dataset):
    from pycocotools import mask as mask_utils

    from segedu.data import load_coco

    coco = load_coco(coco_path)
    ids = sorted(coco.getCatIds())
    crowds = 0
    for index, image_id in enumerate(sorted(coco.getImgIds())):
        image, target = dataset[index]
        info = coco.imgs[image_id]
        assert image.shape == (3, info["height"], info["width"]) and image.dtype == torch.float32
        assert 0 <= float(image.min()) and float(image.max()) <= 1
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        crowds += sum(a["iscrowd"] for a in anns)
        anns = [a for a in anns if not a["iscrowd"]]
        assert target["image_id"] == image_id
        assert target["masks"].shape == (len(anns), info["height"], info["width"])
        assert target["masks"].dtype == torch.uint8
        for k, ann in enumerate(anns):
            mask = coco.annToMask(ann)
            np.testing.assert_array_equal(target["masks"][k].numpy(), mask)
            x, y, w, h = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))
            np.testing.assert_allclose(target["boxes"][k].numpy(), [x, y, x + w, y + h])
            assert target["labels"][k] == ids.index(ann["category_id"]) + 1
            assert target["area"][k] == ann["area"]
        assert target["boxes"].shape == (len(anns), 4) and target["boxes"].dtype == torch.float32
    assert crowds > 0, "pick a seed whose images have a crowd, so that dropping it is tested"


def test_a_dataloader_batches_it_as_torchvision_expects(dataset):
    from torch.utils.data import DataLoader, Dataset

    assert isinstance(dataset, Dataset) and len(dataset) == 6
    images, targets = next(iter(DataLoader(dataset, batch_size=3, collate_fn=collate_instances)))
    assert len(images) == len(targets) == 3
    assert [t["image_id"] for t in targets] == dataset.image_ids[:3]
    with pytest.raises(IndexError, match="out of range"):
        dataset[6]
    with pytest.raises(SegeduTypeError, match="int"):
        dataset[1.0]


def test_label_mapping_round_trips_and_can_be_chosen(coco_path, dataset):
    assert dataset.num_classes == 9
    for label in range(1, 9):
        assert dataset.category_id_to_label(dataset.label_to_category_id(label)) == label
    subset = CocoInstances(coco_path, category_ids=[11, 1])
    assert subset.label_to_category_id(1) == 11 and subset.category_id_to_label(1) == 2
    for index in range(len(subset)):
        assert set(subset[index][1]["labels"].tolist()) <= {1, 2}
    with pytest.raises(SegeduInputError, match="background"):
        dataset.label_to_category_id(0)
    with pytest.raises(SegeduInputError, match=r"not in .*categories are \[1, 2, 3, 5, 6, 8, 9, 11\]"):
        CocoInstances(coco_path, category_ids=[4])


def test_horizontal_flip_moves_image_masks_and_boxes_together(coco_path, dataset):
    flipped = CocoInstances(coco_path, hflip=True, seed=1)
    changed = 0
    for index in range(len(dataset)):
        image, target = dataset[index]
        image_f, target_f = flipped[index]
        if torch.equal(image, image_f):
            continue
        changed += 1
        assert torch.equal(image_f, image.flip(-1))
        assert torch.equal(target_f["masks"], target["masks"].flip(-1))
        for mask, box in zip(target_f["masks"].numpy(), target_f["boxes"].numpy()):
            ys, xs = np.nonzero(mask)
            np.testing.assert_allclose(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    assert 0 < changed < len(dataset)
    again = CocoInstances(coco_path, hflip=True, seed=1)
    assert all(torch.equal(again[i][0], flipped[i][0]) for i in range(len(dataset)))


def test_detections_become_coco_results_that_cocoeval_scores_perfectly(coco_path, dataset):
    """Ground truth fed back as detections: COCOeval gives AP 1 (a check of the result format and mapping)."""
    outputs = []
    for index in range(len(dataset)):
        _, t = dataset[index]
        outputs.append({"boxes": t["boxes"], "labels": t["labels"], "scores": torch.ones(len(t["labels"])),
                        "masks": t["masks"][:, None].float()})
    results = detections_to_coco(outputs, dataset.image_ids, dataset.label_to_category_id)
    coco = dataset.coco
    assert {r["category_id"] for r in results} <= set(coco.getCatIds())
    from segedu.models.maskrcnn import _coco_stats

    for iou_type in ("segm", "bbox"):
        stats = _coco_stats(coco, results, iou_type, dataset.image_ids)
        assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    json.dumps(results)


def _cocoeval(coco, results, iou_type):
    import copy

    from pycocotools.cocoeval import COCOeval

    from segedu.data.coco import quiet_pycocotools

    with quiet_pycocotools():
        evaluator = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(COCO_STAT_NAMES, evaluator.stats.tolist()))


def test_segm_scores_mask_areas_not_box_areas(dataset):
    """False alarms with small masks in image-sized boxes: COCOeval on masks alone must count them in APs."""
    from segedu.models.maskrcnn import _coco_stats

    outputs = []
    for index in range(len(dataset)):
        image, t = dataset[index]
        masks = t["masks"][:, None].float()
        small = int(t["area"].argmin())
        fake = torch.roll(t["masks"][small], shifts=(25, 25), dims=(0, 1))[None, None].float()
        whole = torch.tensor([[0.0, 0.0, image.shape[-1], image.shape[-2]]])
        wrong = torch.tensor([t["labels"][small] % 8 + 1])
        outputs.append({"boxes": torch.cat([t["boxes"], whole]), "labels": torch.cat([t["labels"], wrong]),
                        "scores": torch.cat([torch.full((len(t["labels"]),), 0.5), torch.ones(1)]),
                        "masks": torch.cat([masks, fake])})
    results = detections_to_coco(outputs, dataset.image_ids, dataset.label_to_category_id)
    ours = _coco_stats(dataset.coco, results, "segm", dataset.image_ids)
    masks_only = _cocoeval(dataset.coco, [{k: v for k, v in r.items() if k != "bbox"} for r in results], "segm")
    assert ours == pytest.approx(masks_only, abs=1e-12)
    with_boxes = _cocoeval(dataset.coco, results, "segm")  # loadRes takes the area from the box
    assert with_boxes["APs"] > ours["APs"], "the false alarms should hide among the large boxes"


def test_short_training_and_cocoeval(coco_path, dataset):
    torch.manual_seed(0)
    net = small_mask_rcnn(num_classes=9, image_size=96, max_image_size=128)
    history = train_mask_rcnn(net, CocoInstances(coco_path, hflip=True), iterations=3, batch_size=2, device="cpu",
                              progress=False)
    assert len(history["loss"]) == 3 and all(np.isfinite(history["loss"]))
    assert not net.training
    stats, results = evaluate_mask_rcnn(net, coco_path, device="cpu")
    assert set(stats) == {"segm", "bbox"} and tuple(stats["segm"]) == COCO_STAT_NAMES
    assert all(-1 <= v <= 1 for table in stats.values() for v in table.values())
    assert all(set(r) == {"image_id", "category_id", "segmentation", "bbox", "score"} for r in results)


def test_bad_input_names_the_problem():
    with pytest.raises(SegeduInputError, match="background"):
        small_mask_rcnn(num_classes=1)
    with pytest.raises(SegeduInputError, match="anchor_sizes"):
        small_mask_rcnn(num_classes=3, anchor_sizes=(8, 16))
    net = small_mask_rcnn(num_classes=3)
    with pytest.raises(SegeduInputError, match=r"\(3, H, W\)"):
        predict(net, [torch.rand(64, 64, 3)], device="cpu")
    with pytest.raises(SegeduTypeError, match="CocoInstances"):
        train_mask_rcnn(net, [(torch.rand(3, 64, 64), {})], iterations=1, device="cpu")
    with pytest.raises(SegeduTypeError, match="MaskRCNN"):
        evaluate_mask_rcnn(torch.nn.Linear(2, 2), "labels.json")
    with pytest.raises(FileNotFoundError, match="write_coco_instances"):
        CocoInstances("/nonexistent/labels.json")
    with pytest.raises(SegeduInputError, match="image, target"):
        collate_instances([1, 2])
