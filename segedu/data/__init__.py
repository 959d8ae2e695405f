"""Data for the course: seeded synthetic datasets and bundled real images, each with its licence.

Nothing here touches the network, and ``import segedu.data`` does not import torch: the torch
``Dataset`` views (e.g. :class:`ShapesDataset`) load torch when first used.

>>> from segedu.data import shapes_sample, load_sample, sample_info
>>> image, labels = shapes_sample(seed=0)
>>> load_sample("coins").shape
(303, 384)
>>> sample_info("china").licence
'CC BY 2.0'
"""

from __future__ import annotations

import importlib

from .samples import SAMPLE_NAMES, SampleInfo, list_samples, load_sample, sample_info
from .synthetic import SHAPE_CLASSES, sample_seed, shapes_dataset, shapes_sample

# Names that live in modules importing torch: loaded on first access (PEP 562).
_LAZY = {
    "ShapesDataset": "torch_datasets",
}

__all__ = [
    # synthetic shapes
    "SHAPE_CLASSES",
    "shapes_sample",
    "shapes_dataset",
    "sample_seed",
    "ShapesDataset",
    # bundled real images
    "SAMPLE_NAMES",
    "SampleInfo",
    "list_samples",
    "load_sample",
    "sample_info",
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
