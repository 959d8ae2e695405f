"""Exploratory statistics of a COCO instance dataset: the references of the unit-11 assignment.

Every function takes a ``pycocotools.coco.COCO`` object (see :func:`segedu.data.load_coco`) and
returns integer numpy arrays in a fixed order, so that answers can be compared entry by entry:
categories in ascending category id, images in ascending image id. Crowd annotations
(``iscrowd=1``) describe groups, not objects, so the object statistics leave them out, as COCO's own
statistics do; :func:`crowd_counts` counts them separately.

COCO's size classes use the annotation's ``area`` (pixels of the mask), with the thresholds of
``pycocotools.cocoeval``: small ``area < 32²``, medium ``32² <= area < 96²``, large ``area >= 96²``.

Reference: Lin, T.-Y. et al. "Microsoft COCO: Common Objects in Context." ECCV 2014.
:DOI:`10.1007/978-3-319-10602-1_48`

>>> import tempfile
>>> from segedu.data import write_coco_instances, load_coco
>>> coco = load_coco(write_coco_instances(tempfile.mkdtemp(), n_images=4, seed=0))
>>> int(size_class_counts(coco).sum()) == int(class_frequency(coco).sum())
True
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SMALL_AREA",
    "LARGE_AREA",
    "class_frequency",
    "instances_per_image",
    "size_class_counts",
    "cooccurrence_matrix",
    "crowd_counts",
]

SMALL_AREA = 32**2
LARGE_AREA = 96**2


def _objects(coco) -> list[dict]:
    """Non-crowd annotations."""
    return [ann for ann in coco.dataset["annotations"] if not ann.get("iscrowd", 0)]


def _category_ids(coco) -> list[int]:
    return sorted(cat["id"] for cat in coco.dataset["categories"])


def class_frequency(coco) -> np.ndarray:
    """Number of objects (non-crowd annotations) of each category, in ascending category id."""
    index = {cat_id: k for k, cat_id in enumerate(_category_ids(coco))}
    counts = np.zeros(len(index), dtype=np.int64)
    for ann in _objects(coco):
        counts[index[ann["category_id"]]] += 1
    return counts


def instances_per_image(coco) -> np.ndarray:
    """Number of objects in each image, in ascending image id (images without objects count 0)."""
    index = {image_id: k for k, image_id in enumerate(sorted(img["id"] for img in coco.dataset["images"]))}
    counts = np.zeros(len(index), dtype=np.int64)
    for ann in _objects(coco):
        counts[index[ann["image_id"]]] += 1
    return counts


def size_class_counts(coco) -> np.ndarray:
    """``[small, medium, large]`` object counts by COCO's area thresholds 32² and 96²."""
    areas = np.array([ann["area"] for ann in _objects(coco)], dtype=np.float64)
    small = int(np.sum(areas < SMALL_AREA))
    large = int(np.sum(areas >= LARGE_AREA))
    return np.array([small, areas.size - small - large, large], dtype=np.int64)


def cooccurrence_matrix(coco) -> np.ndarray:
    """``M[a, b]`` = number of images with at least one object of category a and one of b.

    The diagonal counts the images that contain each category. Rows and columns follow ascending
    category id.
    """
    cat_index = {cat_id: k for k, cat_id in enumerate(_category_ids(coco))}
    image_ids = sorted(img["id"] for img in coco.dataset["images"])
    img_index = {image_id: k for k, image_id in enumerate(image_ids)}
    present = np.zeros((len(image_ids), len(cat_index)), dtype=np.int64)
    for ann in _objects(coco):
        present[img_index[ann["image_id"]], cat_index[ann["category_id"]]] = 1
    return present.T @ present


def crowd_counts(coco) -> np.ndarray:
    """Number of crowd annotations (``iscrowd=1``) of each category, in ascending category id."""
    index = {cat_id: k for k, cat_id in enumerate(_category_ids(coco))}
    counts = np.zeros(len(index), dtype=np.int64)
    for ann in coco.dataset["annotations"]:
        if ann.get("iscrowd", 0):
            counts[index[ann["category_id"]]] += 1
    return counts
