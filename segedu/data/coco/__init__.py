"""COCO in one place: synthetic COCO-format data, readers, statistics, evaluation, and FiftyOne.

The course's COCO unit (and the assignment, and the units on Mask R-CNN and SAM) works on the COCO
*format*: the JSON file that ``pycocotools`` and FiftyOne read. Offline, :func:`write_coco_instances`
writes a small dataset in exactly that format, generated from a seed, with nothing to download.
Online (in Colab), the same notebook can load a real COCO-2017 subset through the FiftyOne zoo,
behind one explicit switch (:func:`load_real_coco_subset`).

========================  ==========================================================================
module                    what it holds
========================  ==========================================================================
:mod:`.synthetic`         the seeded generator: :func:`write_coco_instances`, :data:`COCO_CATEGORIES`
:mod:`.reading`           :func:`load_coco`, :func:`semantic_label_map`, :func:`fiftyone_dataset`,
                          :func:`load_real_coco_subset`
:mod:`.stats`             the EDA statistics (the assignment's references)
:mod:`.evaluation`        masks between FiftyOne and pycocotools, COCO result entries, instances
                          from class probabilities
:mod:`.instances`         :class:`CocoInstances`: a torch ``Dataset`` of images and Mask R-CNN
                          targets (unit 09), and its ``collate``
:mod:`.fiftyone_env`      :func:`fiftyone_environment`: a private FiftyOne database, started in a
                          folder and stopped on exit (through FiftyOne internals, checked first)
========================  ==========================================================================

:func:`quiet_pycocotools` is the one way the course keeps pycocotools' progress prints and its
numpy-2 warning out of students' output; the readers and writers here use it themselves.

Importing this package is light: numpy only. pycocotools, PIL and scipy are imported by the
functions that need them, FiftyOne only by the FiftyOne functions, and torch only when
:class:`CocoInstances` is first asked for (PEP 562).
"""

from __future__ import annotations

# the submodules as attributes too: segedu.data.coco.stats is used by name (the grading references)
from . import evaluation, fiftyone_env, reading, stats, synthetic  # noqa: F401
from ._common import quiet_pycocotools
from .evaluation import coco_annotation, crop_mask, encode_mask, instances_from_probabilities, paste_mask
from .fiftyone_env import FiftyOneEnvironment, check_fiftyone_internals, fiftyone_environment
from .reading import (
    CocoFormatError,
    RealCocoSwitchError,
    fiftyone_dataset,
    load_coco,
    load_real_coco_subset,
    semantic_label_map,
)
from .synthetic import COCO_CATEGORIES, write_coco_instances

__all__ = [
    # the synthetic dataset
    "COCO_CATEGORIES",
    "write_coco_instances",
    # reading
    "CocoFormatError",
    "load_coco",
    "semantic_label_map",
    "quiet_pycocotools",
    # FiftyOne
    "RealCocoSwitchError",
    "load_real_coco_subset",
    "fiftyone_dataset",
    "fiftyone_environment",
    "FiftyOneEnvironment",
    "check_fiftyone_internals",
    # evaluation
    "paste_mask",
    "crop_mask",
    "encode_mask",
    "coco_annotation",
    "instances_from_probabilities",
    # a torch Dataset for detectors (segedu.data.coco.instances imports torch: loaded on first use)
    "CocoInstances",
    "collate_instances",
]

# segedu.data.coco.instances imports torch, so it loads when one of its names is first used (PEP 562).
_LAZY = {"CocoInstances": "CocoInstances", "collate_instances": "collate"}


def __getattr__(name):
    if name in _LAZY:
        from . import instances

        value = getattr(instances, _LAZY[name])
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
