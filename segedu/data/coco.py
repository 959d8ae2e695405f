"""COCO-format instance segmentation: a seeded synthetic dataset, readers, and the real-COCO switch.

The course's COCO unit (and the assignment) works on the COCO *format*: the JSON file that
``pycocotools`` and FiftyOne read. Offline, :func:`write_coco_instances` writes a small dataset in
exactly that format, generated from a seed, with nothing to download. Online (in Colab), the same
notebook can load a real COCO-2017 validation subset through the FiftyOne zoo, behind one explicit
switch::

    USE_REAL_COCO = False   # True in Colab downloads a COCO-2017 validation subset (about 1 GB)

    if USE_REAL_COCO:
        dataset = load_real_coco_subset(max_samples=200, use_real_coco=USE_REAL_COCO)
    else:
        dataset = fiftyone_dataset(write_coco_instances("coco_synthetic"))  # written, then loaded

Both branches give a ``fiftyone.Dataset`` with the same label field, ``segmentations``
(``Detections`` with instance masks), so the rest of the notebook does not change. Nothing here ever
probes the network: only ``use_real_coco=True`` reaches for it.

The synthetic dataset
---------------------
Layout (what ``fiftyone.types.COCODetectionDataset`` expects)::

    root/<split>/data/000000000001.png, ...
    root/<split>/labels.json

``labels.json`` has ``info``, ``licenses``, ``images`` (``id``, ``file_name``, ``width``,
``height``, ``license``), ``categories`` (``id``, ``name``, ``supercategory``) and ``annotations``
(``id``, ``image_id``, ``category_id``, ``segmentation``, ``area``, ``bbox``, ``iscrowd``), like
COCO's ``instances_val2017.json``. It reproduces the features of real COCO that trip people up:

* **Category ids are not contiguous** (1, 2, 3, 5, 6, 8, 9, 11; COCO's 80 categories use ids up to
  90), so an id is not a class index. :data:`COCO_CATEGORIES` lists them, with three
  supercategories: ``shape`` (disk, square, triangle), ``line`` (bar, cross) and ``blob`` (ellipse,
  ring, star).
* **Polygon segmentations**, some in several parts: a ring is two half-annuli, because a COCO
  polygon cannot have a hole. The mask of an annotation is the union of its parts as pycocotools
  rasterises them (``annToMask``).
* **Crowd annotations**: a tight group of small, overlapping objects of one category is one
  annotation with ``iscrowd=1`` and an *uncompressed* RLE segmentation
  (``{"counts": [...], "size": [h, w]}``, column-major runs starting with background), as COCO
  stores its crowds.
* **Areas and boxes from the mask**: ``area`` is ``pycocotools.mask.area`` and ``bbox`` (``[x, y,
  w, h]``) is ``pycocotools.mask.toBbox`` of the annotation's RLE, so they agree exactly with
  ``annToMask``.
* **Images of varying sizes** (``min_size`` to ``max_size`` pixels, height and width drawn
  separately).
* **A long-tailed class distribution**: the category of an object is drawn with Zipf weights
  ``rank ** -1.1`` (disk is the most frequent, star the rarest).
* **Objects that co-occur**: a cross usually comes with a bar, a ring with an ellipse, and a star
  with a triangle, placed nearby and somewhat smaller (like cups and saucers).
* **Small, medium and large objects** by COCO's thresholds (area < 32², 32² to 96², > 96²): an
  object's target area is drawn from one of the three ranges with probabilities 0.40, 0.35, 0.25
  (large only where the image has room: about 175 px a side or more). Objects are placed largest
  first.

Objects never overlap one another (except inside a crowd), so every polygon is exactly what is
visible. Image ``i`` is drawn from ``np.random.default_rng(np.random.SeedSequence([seed, i]))``, so
it does not depend on ``n_images`` (only on the seed and the size range), and the same arguments
write byte-identical JSON and identical pixels.
"""

from __future__ import annotations

import contextlib
import io
import json
import numbers
import os
import re
import uuid
from pathlib import Path

import numpy as np

from .._validation import SegeduInputError, SegeduTypeError, check_positive_int

__all__ = [
    "COCO_CATEGORIES",
    "CocoFormatError",
    "RealCocoSwitchError",
    "write_coco_instances",
    "load_coco",
    "semantic_label_map",
    "load_real_coco_subset",
    "fiftyone_dataset",
    "fiftyone_environment",
]

#: The categories of the synthetic dataset, as written to ``labels.json``. The ids have gaps, like
#: COCO's.
COCO_CATEGORIES = (
    {"id": 1, "name": "disk", "supercategory": "shape"},
    {"id": 2, "name": "square", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
    {"id": 5, "name": "bar", "supercategory": "line"},
    {"id": 6, "name": "cross", "supercategory": "line"},
    {"id": 8, "name": "ellipse", "supercategory": "blob"},
    {"id": 9, "name": "ring", "supercategory": "blob"},
    {"id": 11, "name": "star", "supercategory": "blob"},
)

_NAME_TO_ID = {c["name"]: c["id"] for c in COCO_CATEGORIES}

# Frequency rank of each category (1 = most frequent) and the Zipf exponent of the long tail.
_RANKING = ("disk", "square", "bar", "ellipse", "triangle", "ring", "cross", "star")
_ZIPF_EXPONENT = 1.1
# Co-occurrence: an object of the key category brings one of the value category with this probability.
_COMPANIONS = {"cross": ("bar", 0.85), "ring": ("ellipse", 0.8), "star": ("triangle", 0.8)}
# Categories whose members can form a crowd, and the chance that an image has one.
_CROWD_CATEGORIES = ("disk", "square", "star")
_CROWD_WEIGHTS = (0.6, 0.3, 0.1)
_CROWD_PROBABILITY = 0.2

# COCO's size thresholds (areaRng in pycocotools' COCOeval) and the target-area ranges we draw from.
SMALL_MAX_AREA = 32**2
MEDIUM_MAX_AREA = 96**2
_SIZE_CLASSES = ("small", "medium", "large")
_SIZE_PROBABILITIES = (0.40, 0.35, 0.25)
_AREA_RANGES = {"small": (30.0, 850.0), "medium": (1300.0, 8000.0), "large": (10500.0, 30000.0)}

# Hue of each category (fixed per category, jittered per object).
_HUES = {
    "disk": 0.00,
    "triangle": 0.12,
    "bar": 0.25,
    "ellipse": 0.38,
    "ring": 0.50,
    "square": 0.62,
    "cross": 0.75,
    "star": 0.88,
}

_SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_IMAGE_NAME_RE = re.compile(r"^\d{12}\.png$")
_LABELS = "labels.json"
_LICENCE = {
    "id": 1,
    "name": "CC0 1.0 Universal (synthetic data generated by segedu)",
    "url": "https://creativecommons.org/publicdomain/zero/1.0/",
}

_MISSING_FILE_HINT = (
    "create the offline dataset with segedu.data.write_coco_instances(root) "
    "or set USE_REAL_COCO=True in Colab"
)


class CocoFormatError(SegeduInputError):
    """An annotation file is not valid COCO JSON. The message says where and how to fix it."""


class RealCocoSwitchError(RuntimeError):
    """Real COCO was requested without switching it on (``use_real_coco=True``)."""


# --------------------------------------------------------------------------------------------------
# Writing the synthetic dataset
# --------------------------------------------------------------------------------------------------


def _mask_utils():
    from pycocotools import mask as mask_utils

    return mask_utils


# pycocotools <= 2.0.11 under numpy 2 warns on every decode ("__array__ implementation doesn't
# accept a copy keyword"); the result is correct, so we keep the warning out of students' output.
_PYCOCOTOOLS_NOISE = "__array__ implementation doesn't accept a copy keyword"


def _quiet(func, *args):
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PYCOCOTOOLS_NOISE, category=DeprecationWarning)
        return func(*args)


def _check_seed(seed) -> int:
    if seed is None or isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise SegeduTypeError(
            f"seed must be a non-negative int, but got {seed!r}. A fixed seed is what makes the "
            f"dataset reproducible."
        )
    return check_positive_int(seed, "seed", minimum=0)


def _check_split(split) -> str:
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise SegeduInputError(
            f"split must be a folder name of letters, digits, '_' or '-', such as 'val' or 'train', "
            f"but got {split!r}."
        )
    return split


def _unit_polygons(name: str, rng: np.random.Generator) -> list[np.ndarray]:
    """The parts of a shape of size 1 centred at the origin, each an ``N×2`` array of (u, v)."""
    if name in ("disk", "ellipse"):
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        b = 1.0 if name == "disk" else rng.uniform(0.4, 0.65)
        return [np.stack([np.cos(t), b * np.sin(t)], axis=1)]
    if name == "square":
        return [np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)]
    if name == "bar":
        b = rng.uniform(0.2, 0.33)
        return [np.array([[-1, -b], [1, -b], [1, b], [-1, b]], dtype=float)]
    if name == "triangle":
        a = np.pi / 2 + 2 * np.pi * np.arange(3) / 3
        return [np.stack([np.cos(a), np.sin(a)], axis=1)]
    if name == "cross":
        h = rng.uniform(0.25, 0.35)
        pts = [(h, -1), (h, -h), (1, -h), (1, h), (h, h), (h, 1),
               (-h, 1), (-h, h), (-1, h), (-1, -h), (-h, -h), (-h, -1)]  # fmt: skip
        return [np.array(pts, dtype=float)]
    if name == "star":
        inner = rng.uniform(0.4, 0.5)
        a = -np.pi / 2 + np.pi * np.arange(10) / 5
        rad = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        return [np.stack([rad * np.cos(a), rad * np.sin(a)], axis=1)]
    if name == "ring":
        # Two half-annuli: a COCO polygon has no holes, so a ring needs two parts.
        inner = rng.uniform(0.5, 0.65)
        t = np.linspace(0, np.pi, 17)
        parts = []
        for start in (0.0, np.pi):
            outer = np.stack([np.cos(start + t), np.sin(start + t)], axis=1)
            inside = inner * outer[::-1]
            parts.append(np.concatenate([outer, inside]))
        return parts
    raise AssertionError(f"unknown category {name}")  # pragma: no cover


def _polygon_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


class _Shape:
    """A shape of one category with its random proportions, placed by :meth:`polygons`."""

    def __init__(self, name: str, rng: np.random.Generator):
        self.name = name
        self.parts = _unit_polygons(name, rng)
        self.unit_area = sum(_polygon_area(p) for p in self.parts)
        self.radius = max(float(np.hypot(p[:, 0], p[:, 1]).max()) for p in self.parts)
        self.angle = rng.uniform(0, 2 * np.pi)

    def scale_for(self, area: float) -> float:
        return float(np.sqrt(area / self.unit_area))

    def polygons(self, cx: float, cy: float, scale: float) -> list[list[float]]:
        c, s = np.cos(self.angle), np.sin(self.angle)
        out = []
        for p in self.parts:
            x = cx + scale * (c * p[:, 0] - s * p[:, 1])
            y = cy + scale * (s * p[:, 0] + c * p[:, 1])
            xy = np.round(np.stack([x, y], axis=1), 2).ravel()
            out.append([float(v) for v in xy])
        return out


def _rasterise(polygons: list[list[float]], h: int, w: int):
    """The merged RLE and the boolean mask of polygon parts, exactly as ``COCO.annToMask`` has them."""
    mu = _mask_utils()
    rle = mu.merge(mu.frPyObjects(polygons, h, w))
    return rle, _quiet(mu.decode, rle).astype(bool)


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a boolean mask: column-major run lengths, starting with zeros."""
    h, w = mask.shape
    flat = mask.ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"counts": [int(c) for c in counts], "size": [int(h), int(w)]}


def _colour(name: str, rng: np.random.Generator) -> np.ndarray:
    import colorsys

    hue = (_HUES[name] + rng.uniform(-0.03, 0.03)) % 1.0
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 0.9), rng.uniform(0.6, 0.95)))


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = rng.uniform(0.3, 0.55) + rng.uniform(-0.06, 0.06, size=3)
    texture = np.zeros((h, w))
    for _ in range(3):
        cycles = rng.uniform(1.0, 5.0)
        theta = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        proj = (xx * np.cos(theta) + yy * np.sin(theta)) / max(h, w)
        texture += rng.uniform(0.02, 0.05) * np.sin(2 * np.pi * cycles * proj + phase)
    ramp = rng.uniform(-0.08, 0.08) * (xx / w - 0.5) + rng.uniform(-0.08, 0.08) * (yy / h - 0.5)
    return base[None, None, :] + (texture + ramp)[..., None]


def _paint(img: np.ndarray, mask: np.ndarray, name: str, rng: np.random.Generator) -> None:
    colour = _colour(name, rng)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    # A gentle shading ramp across the object, so no category has one exact colour.
    g = rng.uniform(-1, 1, size=2)
    span = max(np.ptp(ys), np.ptp(xs), 1)
    shade = 0.08 * (g[0] * (ys - ys.mean()) + g[1] * (xs - xs.mean())) / span
    img[ys, xs] = colour[None, :] * (1.0 + shade[:, None])


def _dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=pixels)


def _draw_category(rng: np.random.Generator) -> str:
    ranks = np.arange(1, len(_RANKING) + 1, dtype=float)
    weights = ranks**-_ZIPF_EXPONENT
    return _RANKING[int(rng.choice(len(_RANKING), p=weights / weights.sum()))]


def _target_area(rng: np.random.Generator, h: int, w: int) -> float:
    size = _SIZE_CLASSES[int(rng.choice(3, p=_SIZE_PROBABILITIES))]
    lo, hi = _AREA_RANGES[size]
    hi = min(hi, 0.35 * h * w)
    if hi < lo:  # a large object does not fit this image: make it medium
        lo, hi = _AREA_RANGES["medium"]
        hi = min(hi, 0.35 * h * w)
    return float(np.exp(rng.uniform(np.log(lo), np.log(max(hi, lo)))))


def _place(shape, area, rng, h, w, occupied, near=None, tries=40):
    """Find a spot for ``shape`` of about ``area`` pixels that overlaps nothing: (polygons, rle, mask)."""
    scale = shape.scale_for(area)
    reach = shape.radius * scale
    if 2 * reach + 4 > min(h, w):
        return None
    for attempt in range(tries):
        if near is not None and attempt < tries // 2:
            cx0, cy0, dist = near
            a = rng.uniform(0, 2 * np.pi)
            d = dist + reach + rng.uniform(2, 10)
            cx, cy = cx0 + d * np.cos(a), cy0 + d * np.sin(a)
        else:
            cx, cy = rng.uniform(reach + 1, w - reach - 1), rng.uniform(reach + 1, h - reach - 1)
        if not (reach + 1 <= cx <= w - reach - 1 and reach + 1 <= cy <= h - reach - 1):
            continue
        polygons = shape.polygons(cx, cy, scale)
        rle, mask = _rasterise(polygons, h, w)
        if mask.sum() < 12 or (mask & occupied).any():
            continue
        return polygons, rle, mask, (cx, cy, reach)
    return None


def _annotation(ann_id, image_id, name, segmentation, rle, iscrowd):
    mu = _mask_utils()
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": _NAME_TO_ID[name],
        "segmentation": segmentation,
        "area": int(mu.area(rle)),
        "bbox": [float(v) for v in mu.toBbox(rle)],
        "iscrowd": iscrowd,
    }


def _generate_image(rng: np.random.Generator, h: int, w: int):
    """Draw one image: its uint8 pixels and a list of (category, segmentation, rle, iscrowd)."""
    img = _background(rng, h, w)
    occupied = np.zeros((h, w), dtype=bool)
    objects = []

    def claim(mask):
        nonlocal occupied
        occupied |= _dilate(mask, 2)

    # Plan the objects: categories from the long tail, each with a target area, plus companions.
    plan = []  # (name, target area, companion or None)
    for _ in range(1 + min(int(rng.poisson(3.0)), 9)):
        name = _draw_category(rng)
        companion = None
        if name in _COMPANIONS:
            partner, probability = _COMPANIONS[name]
            if rng.random() < probability:
                companion = partner
        area = _target_area(rng, h, w)
        if companion is not None:  # a companion is somewhat smaller, so it fits beside its partner
            companion = (companion, max(30.0, area * rng.uniform(0.3, 0.9)))
        plan.append((name, area, companion))
    # Biggest first, so that large objects find room.
    plan.sort(key=lambda item: -item[1])

    for name, area, companion in plan:
        placed = _place(_Shape(name, rng), area, rng, h, w, occupied)
        if placed is None:
            continue
        polygons, rle, mask, where = placed
        _paint(img, mask, name, rng)
        objects.append((name, polygons, rle, 0))
        claim(mask)
        if companion is not None:
            partner, partner_area = companion
            placed = _place(_Shape(partner, rng), partner_area, rng, h, w, occupied, near=where)
            if placed is not None:
                polygons, rle, mask, _ = placed
                _paint(img, mask, partner, rng)
                objects.append((partner, polygons, rle, 0))
                claim(mask)

    # A crowd: a tight group of small, overlapping objects of one category, annotated as one RLE.
    if rng.random() < _CROWD_PROBABILITY:
        name = _CROWD_CATEGORIES[int(rng.choice(len(_CROWD_CATEGORIES), p=_CROWD_WEIGHTS))]
        radius = rng.uniform(7, 14)
        n_members = int(rng.integers(6, 13))
        members = [(_Shape(name, rng), rng.uniform(0, 2 * np.pi), radius * np.sqrt(rng.uniform(0, 1)),
                    rng.uniform(25, 70)) for _ in range(n_members)]  # fmt: skip
        for _ in range(20):
            cx = rng.uniform(radius + 8, w - radius - 8)
            cy = rng.uniform(radius + 8, h - radius - 8)
            masks = []
            for shape, a, d, area in members:
                polys = shape.polygons(cx + d * np.cos(a), cy + d * np.sin(a), shape.scale_for(area))
                masks.append(_rasterise(polys, h, w)[1])
            union = np.logical_or.reduce(masks)
            if not (union & occupied).any():
                for mask in masks:
                    _paint(img, mask, name, rng)
                segmentation = _uncompressed_rle(union)
                rle = _mask_utils().frPyObjects(segmentation, h, w)
                objects.append((name, segmentation, rle, 1))
                claim(union)
                break

    img += rng.normal(0.0, 0.015, size=img.shape)
    pixels = np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
    return pixels, objects


def write_coco_instances(
    root,
    n_images: int = 60,
    seed: int = 0,
    split: str = "val",
    min_size: int = 96,
    max_size: int = 320,
) -> Path:
    """Write a seeded synthetic instance-segmentation dataset in COCO format; return ``labels.json``.

    Writes ``root/<split>/data/<12-digit id>.png`` and ``root/<split>/labels.json`` (the layout of
    ``fiftyone.types.COCODetectionDataset``); see the module docstring for what the dataset
    contains. Image ``i`` depends only on ``(seed, i)`` and the size range, and the same arguments
    write byte-identical JSON. Old images of this naming pattern that the new dataset does not have are removed, so the
    folder always matches its ``labels.json``.

    Parameters
    ----------
    root : str or Path
        The dataset folder (created if needed). Use a build or temporary folder, not the repository.
    n_images : int
        Number of images.
    seed : int
        The seed; everything is a pure function of it.
    split : str
        The split's folder name, e.g. ``"val"``.
    min_size, max_size : int
        Range of image heights and widths in pixels (each drawn separately, inclusive).
        ``min_size >= 64``; large objects (area > 96²) need images of about 175 px or more.

    Returns
    -------
    Path
        The path of ``labels.json``; pass it to :func:`load_coco` or ``pycocotools.coco.COCO``.

    Examples
    --------
    >>> import tempfile
    >>> from segedu.data import write_coco_instances, load_coco
    >>> path = write_coco_instances(tempfile.mkdtemp(), n_images=3, seed=0)
    >>> path.name, path.parent.name
    ('labels.json', 'val')
    >>> coco = load_coco(path)
    >>> len(coco.getImgIds())
    3
    """
    from PIL import Image

    n_images = check_positive_int(n_images, "n_images", minimum=1)
    seed = _check_seed(seed)
    split = _check_split(split)
    min_size = check_positive_int(min_size, "min_size", minimum=64)
    max_size = check_positive_int(max_size, "max_size", minimum=64)
    if max_size < min_size:
        raise SegeduInputError(
            f"max_size must be at least min_size, but got min_size={min_size} and max_size={max_size}."
        )
    if max_size > 4096:
        raise SegeduInputError(f"max_size must be at most 4096 pixels, but got {max_size}.")

    split_dir = Path(root) / split
    data_dir = split_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)

    images, annotations = [], []
    for index in range(n_images):
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        h = int(rng.integers(min_size, max_size + 1))
        w = int(rng.integers(min_size, max_size + 1))
        pixels, objects = _generate_image(rng, h, w)
        image_id = index + 1
        file_name = f"{image_id:012d}.png"
        Image.fromarray(pixels).save(data_dir / file_name, optimize=True)
        images.append(
            {"id": image_id, "file_name": file_name, "width": w, "height": h, "license": 1}
        )
        for name, segmentation, rle, iscrowd in objects:
            ann = _annotation(len(annotations) + 1, image_id, name, segmentation, rle, iscrowd)
            annotations.append(ann)

    wanted = {im["file_name"] for im in images}
    for old in data_dir.iterdir():
        if _IMAGE_NAME_RE.match(old.name) and old.name not in wanted:
            old.unlink()

    dataset = {
        "info": {
            "description": "segedu synthetic COCO-format instance segmentation (shapes on textured "
            "backgrounds)",
            "url": "https://creativecommons.org/publicdomain/zero/1.0/",
            "version": "1.0",
            "year": 2024,
            "contributor": "segedu course maintainers",
            "date_created": "2024-01-01",
            "generator": (
                f"segedu.data.write_coco_instances(root, n_images={n_images}, seed={seed}, "
                f"split={split!r}, min_size={min_size}, max_size={max_size})"
            ),
        },
        "licenses": [dict(_LICENCE)],
        "images": images,
        "annotations": annotations,
        "categories": [dict(c) for c in COCO_CATEGORIES],
    }
    path = split_dir / _LABELS
    text = json.dumps(dataset, separators=(",", ":"), ensure_ascii=True) + "\n"
    path.write_bytes(text.encode("ascii"))
    return path


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _resolve_annotation_path(annotation_path) -> Path:
    if not isinstance(annotation_path, (str, os.PathLike)):
        raise SegeduTypeError(
            f"annotation_path must be a path (str or pathlib.Path) to a COCO JSON file, but got "
            f"{type(annotation_path).__name__}."
        )
    path = Path(annotation_path)
    if path.is_dir():
        for candidate in (path / _LABELS, path / "val" / _LABELS):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"annotation file {str(path / _LABELS)!r} not found ({str(path)!r} is a folder without "
            f"{_LABELS}); {_MISSING_FILE_HINT}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {str(path)!r} not found; {_MISSING_FILE_HINT}.")
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
    with contextlib.redirect_stdout(io.StringIO()):  # COCO prints "creating index..."
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
    for a in instances:
        m = _quiet(coco.annToMask, a).astype(bool)
        labels[m] = index[a["category_id"]]
        labelled |= m
    for a in anns:
        if a.get("iscrowd", 0):
            crowd |= _quiet(coco.annToMask, a).astype(bool)
    labels[crowd & ~labelled] = 255

    if size is not None:
        try:
            oh, ow = (int(size), int(size)) if isinstance(size, numbers.Integral) else map(int, size)
        except (TypeError, ValueError):
            raise SegeduInputError(
                f"size must be (height, width), e.g. (128, 128), but got {size!r}."
            ) from None
        oh = check_positive_int(oh, "size[0] (height)")
        ow = check_positive_int(ow, "size[1] (width)")
        rows = np.minimum(((np.arange(oh) + 0.5) * h / oh).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(ow) + 0.5) * w / ow).astype(np.int64), w - 1)
        labels = labels[rows[:, None], cols[None, :]]
    return labels


# --------------------------------------------------------------------------------------------------
# FiftyOne: the local dataset, the real-COCO switch, and a clean database environment
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
    Run it inside :func:`fiftyone_environment` in tests and CI.
    """
    root = Path(root)
    if root.name == _LABELS:
        split_dir = root.parent
    else:
        split = _check_split(split)
        split_dir = root / split
    labels = split_dir / _LABELS
    if not labels.is_file():
        raise FileNotFoundError(f"annotation file {str(labels)!r} not found; {_MISSING_FILE_HINT}.")
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


class FiftyOneEnvironment:
    """What :func:`fiftyone_environment` yields: where the database lives and whether we own it."""

    def __init__(self, database_dir: Path):
        self.database_dir = database_dir
        #: True when FiftyOne attached to a database service another process had already started
        #: (then the database is not in ``database_dir``, and we leave that service running).
        self.attached = False
        #: The pid of the ``mongod`` this environment started (None if it attached to another).
        self.mongod_pid = None

    def __repr__(self):
        return (
            f"FiftyOneEnvironment(database_dir={str(self.database_dir)!r}, attached={self.attached}, "
            f"mongod_pid={self.mongod_pid})"
        )


@contextlib.contextmanager
def fiftyone_environment(tmpdir, do_not_track: bool = True):
    """Run FiftyOne with its database in ``tmpdir`` and stop that database on exit.

    On entry it sets ``FIFTYONE_DATABASE_DIR=<tmpdir>/fiftyone-db`` (read by FiftyOne's
    database service when it starts ``mongod``) and ``FIFTYONE_DO_NOT_TRACK=true``, then imports
    FiftyOne and connects, which starts a private ``mongod``. On exit it disconnects, closes the
    database service (FiftyOne's service wrapper then terminates ``mongod`` and exits), waits for it
    to finish, and restores the environment variables, so no ``mongod`` is left running and a later
    FiftyOne call in the same process starts afresh. Use it for tests and CI; notebooks in Colab
    need none of this.

    If another process of the same user already runs a FiftyOne database service, FiftyOne attaches
    to it instead of starting its own: then ``env.attached`` is True, the datasets created inside
    the block are deleted on exit, and the other process's service is left alone.

    Raises
    ------
    RuntimeError
        FiftyOne is already connected in this process (its database was chosen already).

    Examples
    --------
    >>> with fiftyone_environment(tmp) as env:                      # doctest: +SKIP
    ...     dataset = fiftyone_dataset(write_coco_instances(tmp / "coco"))
    ...     print(dataset.count())
    """
    import sys

    database_dir = Path(tmpdir) / "fiftyone-db"
    database_dir.mkdir(parents=True, exist_ok=True)
    env = FiftyOneEnvironment(database_dir)

    if "fiftyone.core.odm.database" in sys.modules:
        fod = sys.modules["fiftyone.core.odm.database"]
        if fod._client is not None or fod._db_service is not None:
            raise RuntimeError(
                "FiftyOne is already connected to a database in this process, so "
                "fiftyone_environment cannot move it. Enter fiftyone_environment before any other "
                "FiftyOne call (or in a fresh process)."
            )

    settings = {"FIFTYONE_DATABASE_DIR": str(database_dir)}
    if do_not_track:
        settings["FIFTYONE_DO_NOT_TRACK"] = "true"
    saved = {k: os.environ.get(k) for k in (*settings, "FIFTYONE_PRIVATE_DATABASE_PORT")}
    os.environ.update(settings)
    os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)

    fo = None
    saved_config = None
    before = set()
    try:
        import fiftyone as fo
        import fiftyone.core.odm.database as fod

        # fo.config was read when fiftyone was first imported: align it with the variables.
        saved_config = (fo.config.database_dir, fo.config.do_not_track)
        fo.config.database_dir = str(database_dir)
        if do_not_track:
            fo.config.do_not_track = True
        fod.get_db_conn()  # connect now: this starts (or attaches to) the database service
        service = fod._db_service
        if service is not None:
            env.attached = bool(getattr(service, "attached", False))
            if not env.attached and service.child is not None:
                children = service.child.children(recursive=True)
                env.mongod_pid = children[0].pid if children else None
        before = set(fo.list_datasets())
        yield env
    finally:
        try:
            if fo is not None:
                _shutdown_fiftyone(env, before)
        finally:
            if saved_config is not None:
                fo.config.database_dir, fo.config.do_not_track = saved_config
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _shutdown_fiftyone(env: FiftyOneEnvironment, before: set) -> None:
    import fiftyone as fo
    import fiftyone.core.odm.database as fod

    if env.attached:  # the database is someone else's: remove only what we made
        for name in set(fo.list_datasets()) - before:
            try:
                fo.delete_dataset(name)
            except Exception:  # pragma: no cover - best effort
                pass
    fod._disconnect()
    service = fod._db_service
    fod._db_service = None
    if service is not None:
        if service.attached:
            import fiftyone.service.util as fosu

            try:  # tell the other process's service that we are gone
                fosu.send_ipc_message(service.child, ("unregister", os.getpid()))
            except Exception:  # pragma: no cover - best effort
                pass
            service.attached = False
            service.child = None
        else:
            child = service.child
            service.stop()  # closes the wrapper's stdin: it terminates mongod, then exits
            if child is not None:
                import psutil  # a FiftyOne dependency

                try:
                    child.wait(timeout=60)
                except psutil.TimeoutExpired:  # pragma: no cover - last resort, only our own process
                    child.kill()
                    child.wait(timeout=10)
            _stop_own_mongod(env)
    for key in ("port", "host"):
        fod._connection_kwargs.pop(key, None)


def _stop_own_mongod(env: FiftyOneEnvironment) -> None:
    """Make sure the ``mongod`` this environment started is gone (it normally is by now)."""
    if env.mongod_pid is None:
        return
    import psutil

    try:
        process = psutil.Process(env.mongod_pid)
        if str(env.database_dir) not in " ".join(process.cmdline()):
            return  # the pid was reused by an unrelated process
        process.wait(timeout=10)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:  # pragma: no cover - the service wrapper failed to stop it
        process.terminate()
        try:
            process.wait(timeout=20)
        except psutil.TimeoutExpired:
            process.kill()
