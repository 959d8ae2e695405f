"""segedu.data.coco.evaluation: lossless mask conversions between FiftyOne's and COCO's layouts, COCO JSON
entries that pycocotools accepts, and scored instances from class probabilities.

No FiftyOne here: FiftyOne's box rounding is reproduced from its documented convention (a mask is
placed at ``round(x * W), round(y * H)``), and pycocotools is the reference for RLE, area and bbox.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.data.coco import quiet_pycocotools
from segedu.data.coco.evaluation import (
    coco_annotation,
    crop_mask,
    encode_mask,
    instances_from_probabilities,
    paste_mask,
)



def _random_mask(rng, h, w):
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        top, left = rng.integers(0, h - 2), rng.integers(0, w - 2)
        mask[top : top + rng.integers(1, h - top), left : left + rng.integers(1, w - left)] = True
    mask &= rng.random((h, w)) < 0.9  # holes, so the masks are not just rectangles
    if not mask.any():
        mask[h // 2, w // 2] = True
    return mask


@pytest.mark.parametrize("seed", range(20))
def test_crop_then_paste_restores_every_pixel(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(5, 60)), int(rng.integers(5, 60))
    mask = _random_mask(rng, h, w)
    box, small = crop_mask(mask)
    assert small.dtype == bool and small.shape == (round(box[3] * h), round(box[2] * w))
    assert np.array_equal(paste_mask(small, box, w, h), mask)


def test_crop_gives_the_tight_box_that_pycocotools_reports():
    mask = np.zeros((10, 20), dtype=bool)
    mask[2:5, 7:16] = True
    mask[3, 3] = True
    box, small = crop_mask(mask)
    x, y, w, h = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))
    assert box == pytest.approx([x / 20, y / 10, w / 20, h / 10])
    assert small.shape == (3, 13) and small.sum() == mask.sum()


def test_paste_uses_fiftyones_rounding_and_clips_at_the_border():
    # FiftyOne places the mask at round(x * W), round(y * H) and keeps the mask's own size.
    pasted = paste_mask(np.ones((2, 3), dtype=bool), [0.26, 0.49, 0.3, 0.2], 10, 10)
    rows, cols = np.nonzero(pasted)
    assert (rows.min(), cols.min(), rows.max(), cols.max()) == (5, 3, 6, 5)
    clipped = paste_mask(np.ones((4, 4), dtype=bool), [0.75, 0.75, 0.5, 0.5], 8, 8)
    assert clipped.sum() == 4 and clipped[6:, 6:].all()
    assert not paste_mask(np.ones((2, 2), dtype=bool), [1.5, 0.0, 0.2, 0.2], 8, 8).any()


def test_masks_are_checked():
    with pytest.raises(SegeduInputError, match="empty"):
        crop_mask(np.zeros((3, 3), dtype=bool))
    with pytest.raises(SegeduInputError, match="2-D"):
        encode_mask(np.ones((2, 2, 2), dtype=bool))
    with pytest.raises(SegeduTypeError, match=r"threshold them first, e.g. \(mask > 0.5\)"):
        encode_mask(np.full((2, 2), 0.7))  # probabilities, not a mask
    with pytest.raises(SegeduInputError, match=r"0/255 image, use \(mask > 0\)"):
        encode_mask(np.array([[0, 255], [255, 0]], dtype=np.uint8))
    with pytest.raises(SegeduInputError, match="bounding_box"):
        paste_mask(np.ones((2, 2), dtype=bool), None, 4, 4)
    assert encode_mask(np.eye(3, dtype=np.uint8)) == encode_mask(np.eye(3, dtype=bool))


@pytest.mark.parametrize("seed", range(10))
def test_encode_mask_round_trips_through_pycocotools_and_json(seed):
    rng = np.random.default_rng(100 + seed)
    mask = _random_mask(rng, int(rng.integers(4, 50)), int(rng.integers(4, 50)))
    rle = json.loads(json.dumps(encode_mask(mask)))  # must survive JSON
    binary = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    assert rle["size"] == list(mask.shape)
    with quiet_pycocotools():  # pycocotools' own decode warns under numpy 2
        assert np.array_equal(mask_utils.decode(binary).astype(bool), mask)


def test_coco_annotation_area_and_bbox_come_from_the_mask():
    mask = np.zeros((12, 9), dtype=bool)
    mask[1:4, 2:8] = True
    mask[8, 1] = True
    gt = coco_annotation(mask, image_id=3, category_id=5, annotation_id=11, iscrowd=True)
    assert gt["area"] == 19 and gt["bbox"] == [1.0, 1.0, 7.0, 8.0]
    assert (gt["id"], gt["image_id"], gt["category_id"], gt["iscrowd"]) == (11, 3, 5, 1)
    assert "score" not in gt
    result = coco_annotation(mask, image_id=3, category_id=5, score=np.float32(0.25))
    assert result["score"] == 0.25 and "iscrowd" not in result and "id" not in result
    json.dumps([gt, result])  # plain JSON types only
    with pytest.raises(SegeduTypeError, match="category_id"):
        coco_annotation(mask, image_id=3, category_id="dog")


def test_entries_drive_cocoeval_to_a_perfect_score():
    rng = np.random.default_rng(7)
    images, annotations, results = [], [], []
    for image_id in (1, 2, 3):
        h, w = 30, 40
        images.append({"id": image_id, "width": w, "height": h, "file_name": f"{image_id}.png"})
        for category_id in (1, 2):
            mask = _random_mask(rng, h, w)
            annotations.append(coco_annotation(mask, image_id, category_id, annotation_id=len(annotations) + 1))
            results.append(coco_annotation(mask, image_id, category_id, score=rng.random()))
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations,
                  "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    with quiet_pycocotools():
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), iouType="segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


def test_instances_are_connected_components_scored_by_mean_probability():
    probs = np.zeros((3, 6, 8))
    probs[0] = 1.0
    probs[:, 0:2, 0:2] = np.array([0.1, 0.8, 0.1])[:, None, None]  # class 1, mean 0.8
    probs[:, 4:6, 5:8] = np.array([0.3, 0.6, 0.1])[:, None, None]  # class 1, mean 0.6
    probs[:, 3, 0] = [0.2, 0.1, 0.7]  # class 2, a single pixel
    probs[:, 2, 2] = [0.1, 0.9, 0.0]  # touches the first blob diagonally only
    found = instances_from_probabilities(probs)
    assert [(d["class_index"], int(d["mask"].sum())) for d in found] == [(1, 5), (2, 1), (1, 6)]
    assert [round(d["score"], 6) for d in found] == [round((4 * 0.8 + 0.9) / 5, 6), 0.7, 0.6]
    four = instances_from_probabilities(probs, connectivity=1)
    assert sorted(int(d["mask"].sum()) for d in four) == [1, 1, 4, 6]
    assert [d["class_index"] for d in instances_from_probabilities(probs, min_area=2)] == [1, 1]
    assert instances_from_probabilities(probs, ignore_classes=(0, 1))[0]["class_index"] == 2


def test_instances_check_their_input():
    with pytest.raises(SegeduInputError, match=r"\(K, H, W\)"):
        instances_from_probabilities(np.zeros((4, 4)))
    with pytest.raises(SegeduTypeError, match="floats"):
        instances_from_probabilities(np.zeros((2, 4, 4), dtype=np.int64))
    with pytest.raises(SegeduInputError, match="connectivity"):
        instances_from_probabilities(np.zeros((2, 4, 4)), connectivity=4)
    assert instances_from_probabilities(np.zeros((2, 4, 4))) == []  # all background (ties go to 0)


def test_the_functions_keep_pycocotools_quiet(capsys):
    mask = np.zeros((9, 7), dtype=bool)
    mask[2:6, 1:5] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pycocotools' numpy-2 warning would fail the test
        encode_mask(mask)
        coco_annotation(mask, image_id=1, category_id=1, annotation_id=1)
        coco_annotation(mask, image_id=1, category_id=1, score=0.5)
    assert capsys.readouterr().out == ""
