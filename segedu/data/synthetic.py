"""Seeded synthetic semantic-segmentation data: coloured shapes on textured backgrounds.

Every sample is a pure function of its seed, so a notebook, a test and a grader that use the same
seed see the same pixels on every machine, with nothing to download.

How a sample is drawn (all from ``np.random.default_rng(seed)``):

1. **Background.** A random, dull base colour, plus a smooth texture (the sum of three sinusoidal
   gratings with random frequency, orientation and phase), plus a linear illumination ramp.
2. **Shapes.** Between 1 and ``max_shapes`` shapes, each of a class drawn uniformly from
   ``1 .. num_classes - 1``, with a random centre, size (about 11–22 % of the shorter side) and,
   where it matters, orientation. Shapes may overlap: a later shape paints over an earlier one,
   in the image and in the label map alike.
3. **Colour.** Each class has a fixed hue, but every shape jitters hue, saturation and brightness
   and gets a gentle shading ramp, so no class has one exact colour.
4. **Noise.** Gaussian pixel noise over the whole image, then clipping to ``[0, 1]``.

The classes (see :data:`SHAPE_CLASSES`) are background, disk, square, triangle, ring, cross,
ellipse and diamond. Squares stay nearly axis-aligned (±10°) and diamonds are squares turned by
45° (±10°), so the two stay distinct.
"""

from __future__ import annotations

import colorsys

import numpy as np

from .._validation import SegeduInputError, check_positive_int, check_seed, check_size

__all__ = ["SHAPE_CLASSES", "shapes_sample", "shapes_dataset", "sample_seed"]

#: Class names of the shapes data; the label ``k`` means ``SHAPE_CLASSES[k]``.
SHAPE_CLASSES = ("background", "disk", "square", "triangle", "ring", "cross", "ellipse", "diamond")

_MIN_SIDE = 8

# Hue of each foreground class (index = class id; entry 0 is unused). Neighbouring ids get hues
# far apart, so that small num_classes are easy and every hue stays at least 0.08 from the rest.
_CLASS_HUES = (0.0, 0.00, 0.34, 0.62, 0.13, 0.80, 0.48, 0.91)


def _check_num_classes(num_classes) -> int:
    num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
    if num_classes > len(SHAPE_CLASSES):
        raise SegeduInputError(
            f"num_classes must be at most {len(SHAPE_CLASSES)} (the classes are {', '.join(SHAPE_CLASSES)}), "
            f"but got {num_classes}."
        )
    return num_classes


def _check_sample_seed(seed):
    """A numpy ``SeedSequence`` as it is, else a non-negative int (``None`` is refused: no fixed seed)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return check_seed(seed, allow_none=False)


def sample_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed of sample ``index`` of a dataset made with ``seed``.

    It is ``np.random.SeedSequence([seed, index])``, so sample ``index`` does not depend on how many
    samples the dataset has.

    Examples
    --------
    >>> from segedu.data import sample_seed, shapes_dataset, shapes_sample
    >>> images, labels = shapes_dataset(3, seed=7)
    >>> image, label = shapes_sample(sample_seed(7, 2))
    >>> bool((images[2] == image).all() and (labels[2] == label).all())
    True
    """
    seed = check_seed(seed, allow_none=False)
    index = check_positive_int(index, "index", minimum=0)
    return np.random.SeedSequence([seed, index])


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _shape_mask(cls: int, u: np.ndarray, v: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of one shape of class ``cls`` in its own rotated frame ``(u, v)`` with size ``r``."""
    name = SHAPE_CLASSES[cls]
    if name == "disk":
        return u * u + v * v <= r * r
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8 * r
    if name == "diamond":  # a square turned by 45°: the L1 ball
        return np.abs(u) + np.abs(v) <= 1.1 * r
    if name == "triangle":
        # Equilateral, circumradius r: inside the three edges, each at distance r/2 from the centre.
        mask = np.ones(u.shape, dtype=bool)
        for k in range(3):
            a = np.pi / 2 + 2 * np.pi * k / 3
            mask &= u * np.cos(a) + v * np.sin(a) <= 0.5 * r
        return mask
    if name == "ring":
        d2 = u * u + v * v
        inner = r * rng.uniform(0.45, 0.62)
        return (d2 <= r * r) & (d2 >= inner * inner)
    if name == "cross":
        half = r * rng.uniform(0.22, 0.32)
        au, av = np.abs(u), np.abs(v)
        return ((au <= half) & (av <= r)) | ((av <= half) & (au <= r))
    if name == "ellipse":
        b = r * rng.uniform(0.4, 0.6)
        return (u / r) ** 2 + (v / b) ** 2 <= 1.0
    raise AssertionError(f"unknown shape class {cls}")  # pragma: no cover


def _angle(cls: int, rng: np.random.Generator) -> float:
    name = SHAPE_CLASSES[cls]
    if name in ("square", "diamond"):
        # Near-axis-aligned squares and near-45° diamonds (the L1 ball, see _shape_mask) stay
        # two distinct shapes.
        return np.deg2rad(rng.uniform(-10, 10))
    return rng.uniform(0, 2 * np.pi)


def _generate(rng: np.random.Generator, h: int, w: int, num_classes: int, max_shapes: int):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    short = min(h, w)

    # 1. Background: dull base colour, smooth gratings, an illumination ramp.
    grey = rng.uniform(0.25, 0.6)
    base = grey + rng.uniform(-0.08, 0.08, size=3)
    texture = np.zeros((h, w))
    for _ in range(3):
        cycles = rng.uniform(1.0, 6.0)
        theta = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(0.02, 0.06)
        proj = (xx * np.cos(theta) + yy * np.sin(theta)) / short
        texture += amp * np.sin(2 * np.pi * cycles * proj + phase)
    gy, gx = rng.uniform(-0.08, 0.08, size=2)
    texture += gy * (yy / h - 0.5) + gx * (xx / w - 0.5)
    tint = 1.0 + rng.uniform(-0.25, 0.25, size=3)
    image = base + texture[..., None] * tint
    labels = np.zeros((h, w), dtype=np.int64)

    # 2.-3. Shapes, later ones on top, with jittered class colours and shading.
    n_shapes = int(rng.integers(1, max_shapes + 1))
    for _ in range(n_shapes):
        cls = int(rng.integers(1, num_classes))
        r = max(3.0, short * rng.uniform(0.11, 0.22))
        cy = rng.uniform(r, h - r)
        cx = rng.uniform(r, w - r)
        a = _angle(cls, rng)
        dx, dy = xx - cx, yy - cy
        u = dx * np.cos(a) + dy * np.sin(a)
        v = -dx * np.sin(a) + dy * np.cos(a)
        mask = _shape_mask(cls, u, v, r, rng)
        colour = _hsv_to_rgb(
            _CLASS_HUES[cls] + rng.uniform(-0.035, 0.035), rng.uniform(0.45, 0.85), rng.uniform(0.6, 0.95)
        )
        shade_dir = rng.uniform(0, 2 * np.pi)
        shade = 1.0 + rng.uniform(0.05, 0.15) * (dx * np.cos(shade_dir) + dy * np.sin(shade_dir))[mask] / r
        image[mask] = colour * shade[:, None]
        labels[mask] = cls

    # 4. Pixel noise.
    image += rng.normal(0.0, rng.uniform(0.04, 0.08), size=image.shape)
    np.clip(image, 0.0, 1.0, out=image)
    return image.astype(np.float32), labels


def shapes_sample(seed, size=(64, 64), num_classes: int = 4, max_shapes: int = 4):
    """One image and its label map: coloured shapes on a textured background.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        Fixes every random choice; the same seed always gives the same sample.
    size : (int, int) or int
        ``(height, width)`` of the image, each at least 8. An int means a square image.
    num_classes : int
        Number of classes K including the background, from 2 to ``len(SHAPE_CLASSES)`` (8). The
        shapes drawn are ``SHAPE_CLASSES[1:K]``.
    max_shapes : int
        Each sample has between 1 and ``max_shapes`` shapes, which may overlap (later on top).

    Returns
    -------
    image : numpy.ndarray, float32, shape (H, W, 3)
        RGB values in ``[0, 1]``.
    labels : numpy.ndarray, int64, shape (H, W)
        Class ids in ``0 .. K-1``; 0 is the background.

    Examples
    --------
    >>> from segedu.data import shapes_sample
    >>> image, labels = shapes_sample(seed=0, size=(48, 64), num_classes=3)
    >>> image.shape, image.dtype, labels.shape, labels.dtype
    ((48, 64, 3), dtype('float32'), (48, 64), dtype('int64'))
    >>> int(labels.min()) >= 0 and int(labels.max()) <= 2
    True
    """
    seed = _check_sample_seed(seed)
    h, w = check_size(size, "size", minimum=_MIN_SIDE)
    num_classes = _check_num_classes(num_classes)
    max_shapes = check_positive_int(max_shapes, "max_shapes", minimum=1)
    return _generate(np.random.default_rng(seed), h, w, num_classes, max_shapes)


def shapes_dataset(n: int, size=(64, 64), num_classes: int = 4, seed: int = 0, max_shapes: int = 4):
    """A stack of ``n`` shapes samples (see :func:`shapes_sample`).

    Sample ``i`` is ``shapes_sample(sample_seed(seed, i), ...)``: it depends on ``(seed, i)`` only,
    so ``shapes_dataset(10, seed=s)[0][:5]`` equals ``shapes_dataset(5, seed=s)[0]``. Use different
    seeds (not overlapping index ranges) for the training and the test split.

    Parameters
    ----------
    n : int
        Number of samples (at least 1).
    size, num_classes, max_shapes
        As in :func:`shapes_sample`.
    seed : int
        Non-negative dataset seed.

    Returns
    -------
    images : numpy.ndarray, float32, shape (N, H, W, 3)
    labels : numpy.ndarray, int64, shape (N, H, W)

    Examples
    --------
    >>> from segedu.data import shapes_dataset
    >>> images, labels = shapes_dataset(8, size=(32, 32), num_classes=4, seed=1)
    >>> images.shape, labels.shape
    ((8, 32, 32, 3), (8, 32, 32))
    """
    n = check_positive_int(n, "n", minimum=1)
    seed = check_seed(seed, allow_none=False)
    h, w = check_size(size, "size", minimum=_MIN_SIDE)
    num_classes = _check_num_classes(num_classes)
    max_shapes = check_positive_int(max_shapes, "max_shapes", minimum=1)
    images = np.empty((n, h, w, 3), dtype=np.float32)
    labels = np.empty((n, h, w), dtype=np.int64)
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
        images[i], labels[i] = _generate(rng, h, w, num_classes, max_shapes)
    return images, labels
