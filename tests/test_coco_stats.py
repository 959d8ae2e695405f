"""segedu.data.coco.stats against pycocotools' own index and mask areas."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from segedu.data import load_coco, write_coco_instances
from segedu.data.coco import quiet_pycocotools
from segedu.data.coco import stats as coco_stats


@pytest.fixture(scope="module", params=[0, 3])
def coco(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"coco{request.param}")
    return load_coco(write_coco_instances(root, n_images=24, seed=request.param))


def _objects(coco, **filters):
    return coco.getAnnIds(iscrowd=False, **filters)


def test_class_frequency_matches_the_pycocotools_index(coco):
    expected = [len(_objects(coco, catIds=[cat_id])) for cat_id in sorted(coco.getCatIds())]
    np.testing.assert_array_equal(coco_stats.class_frequency(coco), expected)


def test_instances_per_image_matches_the_pycocotools_index(coco):
    expected = [len(_objects(coco, imgIds=[image_id])) for image_id in sorted(coco.getImgIds())]
    np.testing.assert_array_equal(coco_stats.instances_per_image(coco), expected)
    assert coco_stats.instances_per_image(coco).sum() == coco_stats.class_frequency(coco).sum()


def test_size_classes_from_decoded_masks(coco):
    with quiet_pycocotools():
        areas = np.array([mask_utils.area(coco.annToRLE(coco.anns[i])) for i in _objects(coco)])
    expected = [np.sum(areas < 32**2), np.sum((areas >= 32**2) & (areas < 96**2)), np.sum(areas >= 96**2)]
    np.testing.assert_array_equal(coco_stats.size_class_counts(coco), expected)
    assert min(expected) > 0, "the synthetic data should have every size class"


def test_cooccurrence_counts_images_holding_both_categories(coco):
    cats = sorted(coco.getCatIds())
    images_with = {c: {coco.anns[i]["image_id"] for i in _objects(coco, catIds=[c])} for c in cats}
    expected = np.array([[len(images_with[a] & images_with[b]) for b in cats] for a in cats])
    got = coco_stats.cooccurrence_matrix(coco)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, got.T)


def test_crowd_counts(coco):
    expected = [len(coco.getAnnIds(catIds=[c], iscrowd=True)) for c in sorted(coco.getCatIds())]
    np.testing.assert_array_equal(coco_stats.crowd_counts(coco), expected)
    assert coco_stats.crowd_counts(coco).sum() > 0
