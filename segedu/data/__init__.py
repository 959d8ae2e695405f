"""Data for the course: seeded synthetic datasets and bundled real images, each with its licence.

Nothing here touches the network, and ``import segedu.data`` does not import torch: the torch
``Dataset`` views (e.g. :class:`ShapesDataset`) load torch when first used. Everything COCO (the
synthetic COCO-format dataset, readers, statistics, evaluation, FiftyOne) lives in the subpackage
:mod:`segedu.data.coco`; its main names are re-exported here.

>>> from segedu.data import shapes_sample, load_sample, sample_info
>>> image, labels = shapes_sample(seed=0)
>>> load_sample("coins").shape
(303, 384)
>>> sample_info("china").licence
'CC BY 2.0'

The real nuclei image (2018 Data Science Bowl, as packaged by stardist) ships as package data:

>>> from segedu.data import load_nuclei, nuclei_tiles, touching_cells
>>> int(load_nuclei()[1].max())
125
"""

from __future__ import annotations

import importlib

from .samples import SAMPLE_NAMES, SampleInfo, list_samples, load_sample, sample_info
from .nuclei import NUCLEI_SPLITS, foreground_mask, load_nuclei, nuclei_info, nuclei_tiles
from .synthetic import SHAPE_CLASSES, sample_seed, shapes_dataset, shapes_sample, touching_cells

# Names that live in modules importing torch (or, in segedu.data.coco, pycocotools, PIL and, when
# used, fiftyone): loaded on first access (PEP 562).
_LAZY = {
    "ShapesDataset": "torch_datasets",
    # joint image/mask/weight-map augmentation (torchvision transforms v2)
    "joint_augment": "augment",
    "AugmentedTiles": "augment",
    # the COCO subpackage: synthetic instances, readers, the real-COCO switch, FiftyOne
    "COCO_CATEGORIES": "coco",
    "CocoFormatError": "coco",
    "RealCocoSwitchError": "coco",
    "write_coco_instances": "coco",
    "load_coco": "coco",
    "semantic_label_map": "coco",
    "load_real_coco_subset": "coco",
    "fiftyone_dataset": "coco",
    "fiftyone_environment": "coco",
    # a torch Dataset of COCO-format instances for Mask R-CNN (unit 09)
    "CocoInstances": "coco",
    "collate_instances": "coco",
    # nested shapes where one click is ambiguous (whole, part, subpart), for SAM (unit 10)
    "LEVEL_NAMES": "nested",
    "NestedObjects": "nested",
    "nested_sample": "nested",
    "nested_shapes": "nested",
    "objects_under": "nested",
    "innermost_object": "nested",
    "click_region": "nested",
    "sample_click": "nested",
}

__all__ = [
    # synthetic shapes
    "SHAPE_CLASSES",
    "shapes_sample",
    "shapes_dataset",
    "sample_seed",
    "ShapesDataset",
    # touching synthetic cells (instance labels)
    "touching_cells",
    # the real nuclei image (package data) and its tiles
    "NUCLEI_SPLITS",
    "load_nuclei",
    "nuclei_info",
    "nuclei_tiles",
    "foreground_mask",
    # joint augmentation (segedu.data.augment; imports torch when used)
    "joint_augment",
    "AugmentedTiles",
    # bundled real images
    "SAMPLE_NAMES",
    "SampleInfo",
    "list_samples",
    "load_sample",
    "sample_info",
    # COCO-format instances (segedu.data.coco)
    "COCO_CATEGORIES",
    "CocoFormatError",
    "RealCocoSwitchError",
    "write_coco_instances",
    "load_coco",
    "semantic_label_map",
    "load_real_coco_subset",
    "fiftyone_dataset",
    "fiftyone_environment",
    "CocoInstances",
    "collate_instances",
    # nested shapes for SAM's ambiguity (segedu.data.nested)
    "LEVEL_NAMES",
    "NestedObjects",
    "nested_sample",
    "nested_shapes",
    "objects_under",
    "innermost_object",
    "click_region",
    "sample_click",
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
