"""Reading COCO: annotation files into pycocotools, semantic label maps, and datasets into FiftyOne.

The course's COCO unit (and the assignment) works on the COCO *format*: the JSON file that
``pycocotools`` and FiftyOne read. Offline, :func:`~segedu.data.coco.write_coco_instances` writes a
small dataset in exactly that format, generated from a seed, with nothing to download. Online (in
Colab), the same notebook can load a real COCO-2017 validation subset through the FiftyOne zoo,
behind one explicit switch::

    USE_REAL_COCO = False   # True in Colab downloads a COCO-2017 validation subset (about 1 GB)

    if USE_REAL_COCO:
        dataset = load_real_coco_subset(max_samples=200, use_real_coco=USE_REAL_COCO)
    else:
        dataset = fiftyone_dataset(write_coco_instances("coco_synthetic"))  # written, then loaded

Both branches give a ``fiftyone.Dataset`` with the same label field, ``segmentations``
(``Detections`` with instance masks), so the rest of the notebook does not change. Nothing here ever
probes the network: only ``use_real_coco=True`` reaches for it.

:func:`load_coco` and :func:`semantic_label_map` keep pycocotools quiet themselves (see
:func:`~segedu.data.coco.quiet_pycocotools`). FiftyOne is imported only by the functions that use it.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np

from ..._validation import SegeduInputError, SegeduTypeError, check_positive_int, check_size
from ._common import LABELS, MISSING_FILE_HINT, check_split, quiet_pycocotools

__all__ = [
    "CocoFormatError",
    "RealCocoSwitchError",
    "load_coco",
    "semantic_label_map",
    "load_real_coco_subset",
    "fiftyone_dataset",
]


class CocoFormatError(SegeduInputError):
    """An annotation file is not valid COCO JSON. The message says where and how to fix it."""


class RealCocoSwitchError(RuntimeError):
    """Real COCO was requested without switching it on (``use_real_coco=True``)."""


# --------------------------------------------------------------------------------------------------
# pycocotools
# --------------------------------------------------------------------------------------------------


def _resolve_annotation_path(annotation_path) -> Path:
    if not isinstance(annotation_path, (str, os.PathLike)):
        raise SegeduTypeError(
            f"annotation_path must be a path (str or pathlib.Path) to a COCO JSON file, but got "
            f"{type(annotation_path).__name__}."
        )
    path = Path(annotation_path)
    if path.is_dir():
        for candidate in (path / LABELS, path / "val" / LABELS):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"annotation file {str(path / LABELS)!r} not found ({str(path)!r} is a folder without "
            f"{LABELS}); {MISSING_FILE_HINT}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {str(path)!r} not found; {MISSING_FILE_HINT}.")
    return path


def _read_coco_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CocoFormatError(
            f"annotation file {str(path)!r} is not UTF-8 text (byte {exc.start}); it is not a COCO "
            f"JSON file, or it is damaged. Write it again, e.g. with "
            f"segedu.data.write_coco_instances(root)."
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CocoFormatError(
            f"annotation file {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}. The file is probably truncated or damaged (an interrupted "
            f"download or copy); write or download it again."
        ) from None
    if not isinstance(data, dict):
        raise CocoFormatError(
            f"annotation file {str(path)!r} holds a JSON {type(data).__name__}, but a COCO annotation "
            f"file holds one object with the keys 'images', 'annotations' and 'categories'. "
            f"(A list of predictions is a results file: load it with coco.loadRes(path).)"
        )
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise CocoFormatError(
                f"annotation file {str(path)!r} has no {key!r} key (it has "
                f"{', '.join(repr(k) for k in data) or 'no keys'}); a COCO instances file needs "
                f"'images', 'annotations' and 'categories'. Is it a different kind of file, e.g. "
                f"captions or panoptic?"
            )
        if not isinstance(data[key], list):
            raise CocoFormatError(
                f"annotation file {str(path)!r}: {key!r} must be a list, but it is a JSON "
                f"{type(data[key]).__name__}."
            )
    return data


def load_coco(annotation_path):
    """Read a COCO annotation file into a ``pycocotools.coco.COCO`` object, with clear errors.

    ``annotation_path`` is the JSON file (or a folder holding ``labels.json``). It differs from
    ``COCO(path)`` only in its messages: a missing file says how to create the offline dataset, a
    corrupt file gives the JSON error's line and column, and a file without ``images``,
    ``annotations`` or ``categories`` names the missing key.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    CocoFormatError
        The file is not valid JSON or not a COCO instances file (a ``ValueError``).
    """
    from pycocotools.coco import COCO

    path = _resolve_annotation_path(annotation_path)
    data = _read_coco_json(path)
    coco = COCO()
    coco.dataset = data
    with quiet_pycocotools():  # COCO prints "creating index..."
        coco.createIndex()
    return coco


def semantic_label_map(coco, image_id, size=None, category_ids=None) -> np.ndarray:
    """The semantic label map of one image: an ``H×W`` int64 array built with ``coco.annToMask``.

    Label 0 is background and label ``k + 1`` is ``category_ids[k]`` (by default all of
    ``coco.getCatIds()`` in increasing order, so COCO's non-contiguous ids become 1..K). Instances
    are painted largest first, so a small object on top of a large one stays visible. Crowd regions
    (``iscrowd=1``) become **255**, the ignore label (pass ``ignore_index=255`` to the metrics),
    except where a non-crowd instance is labelled. Annotations of categories not in
    ``category_ids`` are left as background.

    ``size=(h, w)`` resizes the result with nearest-neighbour sampling (label maps must never be
    interpolated).
    """
    if image_id not in coco.imgs:
        raise SegeduInputError(
            f"image_id {image_id!r} is not in this COCO file; valid ids are coco.getImgIds() "
            f"(e.g. {sorted(coco.imgs)[:5]})."
        )
    all_ids = sorted(coco.getCatIds())
    if category_ids is None:
        category_ids = all_ids
    else:
        category_ids = [int(c) for c in category_ids]
        unknown = [c for c in category_ids if c not in coco.cats]
        if unknown:
            raise SegeduInputError(
                f"category_ids {unknown} are not in this COCO file; its category ids are {all_ids}."
            )
        if len(set(category_ids)) != len(category_ids):
            raise SegeduInputError(f"category_ids must not repeat an id, but got {category_ids}.")
    if len(category_ids) > 254:
        raise SegeduInputError(
            f"at most 254 categories fit next to the ignore label 255, but got {len(category_ids)}."
        )
    index = {c: k + 1 for k, c in enumerate(category_ids)}

    info = coco.imgs[image_id]
    h, w = int(info["height"]), int(info["width"])
    labels = np.zeros((h, w), dtype=np.int64)
    crowd = np.zeros((h, w), dtype=bool)
    anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])) if a["category_id"] in index]
    instances = [a for a in anns if not a.get("iscrowd", 0)]
    instances.sort(key=lambda a: -float(a.get("area", 0.0)))
    labelled = np.zeros((h, w), dtype=bool)
    with quiet_pycocotools():
        for a in instances:
            m = coco.annToMask(a).astype(bool)
            labels[m] = index[a["category_id"]]
            labelled |= m
        for a in anns:
            if a.get("iscrowd", 0):
                crowd |= coco.annToMask(a).astype(bool)
    labels[crowd & ~labelled] = 255

    if size is not None:
        oh, ow = check_size(size, "size")
        rows = np.minimum(((np.arange(oh) + 0.5) * h / oh).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(ow) + 0.5) * w / ow).astype(np.int64), w - 1)
        labels = labels[rows[:, None], cols[None, :]]
    return labels


# --------------------------------------------------------------------------------------------------
# FiftyOne: the local dataset and the real-COCO switch (the database: fiftyone_env.py)
# --------------------------------------------------------------------------------------------------

_LABEL_TYPES = ["segmentations"]


def load_real_coco_subset(
    max_samples: int = 200, split: str = "validation", use_real_coco: bool = False, **zoo_kwargs
):
    """Load a real COCO-2017 subset with instance masks from the FiftyOne zoo (downloads; online only).

    Only ``use_real_coco=True`` does anything: it imports ``fiftyone.zoo`` and calls
    ``foz.load_zoo_dataset("coco-2017", split=split, label_types=["segmentations"],
    max_samples=max_samples, ...)``, which downloads the annotations (about 1 GB for all of
    2017) and ``max_samples`` images into ``~/fiftyone/coco-2017``. Any other value raises
    :class:`RealCocoSwitchError`, and nothing here ever probes the network to decide.

    The result has the same label field (``segmentations``) as :func:`fiftyone_dataset` on the
    synthetic data, so a notebook switches between them with one flag. Extra keyword arguments
    (e.g. ``classes=["person", "dog"]``, ``shuffle=True``, ``seed=51``) go to ``load_zoo_dataset``.

    COCO images are not ours to redistribute: they stay in FiftyOne's download folder and are
    never committed (each image has its own Flickr licence; the annotations are CC BY 4.0).
    """
    if use_real_coco is not True:
        raise RealCocoSwitchError(
            "Real COCO-2017 is off: load_real_coco_subset downloads data, so it runs only when you "
            "switch it on with load_real_coco_subset(..., use_real_coco=True) (in the notebooks: "
            "set USE_REAL_COCO = True, in Colab or another machine with internet access). Offline, "
            "use the synthetic dataset instead: segedu.data.fiftyone_dataset("
            "segedu.data.write_coco_instances(root)), or segedu.data.load_coco(...) for pycocotools."
        )
    max_samples = check_positive_int(max_samples, "max_samples", minimum=1)
    if split not in ("train", "validation", "test"):
        raise SegeduInputError(
            f"split must be 'train', 'validation' or 'test' (the FiftyOne zoo's names for COCO-2017), "
            f"but got {split!r}."
        )
    import fiftyone.zoo as foz

    return foz.load_zoo_dataset(
        "coco-2017",
        split=split,
        label_types=list(_LABEL_TYPES),
        max_samples=max_samples,
        include_id=True,
        include_annotation_id=True,
        **zoo_kwargs,
    )


def fiftyone_dataset(root, split: str = "val", name=None):
    """Load a dataset written by :func:`write_coco_instances` into FiftyOne (a non-persistent dataset).

    ``root`` is the folder given to :func:`write_coco_instances` (or its return value, the
    ``labels.json`` path). The samples get the label field ``segmentations``: ``Detections`` with
    instance masks, including crowds (attribute ``iscrowd``); each sample's ``coco_id`` is the image
    id and each detection's ``coco_id`` the annotation id in the JSON. With ``name=None`` the
    dataset gets a fresh unique name.
    Run it inside :func:`~segedu.data.coco.fiftyone_environment` in tests and CI.
    """
    root = Path(root)
    if root.name == LABELS:
        split_dir = root.parent
    else:
        split = check_split(split)
        split_dir = root / split
    labels = split_dir / LABELS
    if not labels.is_file():
        raise FileNotFoundError(f"annotation file {str(labels)!r} not found; {MISSING_FILE_HINT}.")
    _read_coco_json(labels)  # clear messages for a damaged file, before FiftyOne's own
    if name is None:
        name = f"segedu-coco-{split_dir.name}-{uuid.uuid4().hex[:12]}"

    import fiftyone as fo

    return fo.Dataset.from_dir(
        dataset_dir=str(split_dir),
        dataset_type=fo.types.COCODetectionDataset,
        label_types=list(_LABEL_TYPES),
        name=name,
        persistent=False,
        include_id=True,
        include_annotation_id=True,
        tags=[split_dir.name],
        progress=False,
    )
