"""Seeded synthetic semantic-segmentation data: coloured shapes on textured backgrounds.

Every sample is a pure function of its seed, so a notebook, a test and a grader that use the same
seed see the same pixels on every machine, with nothing to download.

How a sample is drawn (all from ``np.random.default_rng(seed)``):

1. **Background.** A random, dull base colour, plus a smooth texture (the sum of three sinusoidal
   gratings with random frequency, orientation and phase), plus a linear illumination ramp.
2. **Shapes.** Between 1 and ``max_shapes`` shapes, each of a class drawn uniformly from
   ``1 .. num_classes - 1``, with a random centre, size (a radius of 11–22 % of the shorter side by
   default; the ``radius`` argument picks another range, e.g. to hold only small or only large
   objects) and, where it matters, orientation. Shapes may overlap: a later shape paints over an
   earlier one, in the image and in the label map alike.
3. **Colour.** Each class has a fixed hue, but every shape jitters hue, saturation and brightness
   and gets a gentle shading ramp, so no class has one exact colour.
4. **Noise.** Gaussian pixel noise over the whole image, then clipping to ``[0, 1]``.

The classes (see :data:`SHAPE_CLASSES`) are background, disk, square, triangle, ring, cross,
ellipse and diamond. Squares stay nearly axis-aligned (±10°) and diamonds are squares turned by
45° (±10°), so the two stay distinct.

:func:`touching_cells` draws a different kind of sample: a grey fluorescence-like image of
elliptical "cells" packed so that many share a border, with instance labels (see its docstring).
"""

from __future__ import annotations

import colorsys

import numpy as np

from .._validation import (
    SegeduInputError,
    SegeduTypeError,
    check_positive_int,
    check_real_scalar,
    check_seed,
    check_size,
)

__all__ = ["SHAPE_CLASSES", "shapes_sample", "shapes_dataset", "sample_seed", "touching_cells"]

#: Class names of the shapes data; the label ``k`` means ``SHAPE_CLASSES[k]``.
SHAPE_CLASSES = ("background", "disk", "square", "triangle", "ring", "cross", "ellipse", "diamond")

_MIN_SIDE = 8

#: Default range of a shape's radius, as fractions of the image's shorter side.
DEFAULT_RADIUS = (0.11, 0.22)

#: No shape is smaller than this radius in pixels, whatever the range (smaller ones would vanish).
_MIN_RADIUS_PIXELS = 3.0

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


def _check_radius(radius) -> tuple[float, float]:
    """A ``(low, high)`` range of radii as fractions of the shorter side, ``0 < low <= high <= 0.5``.

    ``None`` means :data:`DEFAULT_RADIUS`.
    """
    if radius is None:
        return DEFAULT_RADIUS
    if isinstance(radius, (str, bytes)) or not hasattr(radius, "__len__"):
        raise SegeduTypeError(
            f"radius must be a (low, high) pair of fractions of the image's shorter side, e.g. (0.11, 0.22), "
            f"but got {radius!r} ({type(radius).__name__})."
        )
    if len(radius) != 2:
        raise SegeduInputError(
            f"radius must be a (low, high) pair, e.g. (0.05, 0.08) for small shapes, but got {tuple(radius)!r} "
            f"with {len(radius)} entries."
        )
    low = check_real_scalar(radius[0], "radius[0]")
    high = check_real_scalar(radius[1], "radius[1]")
    if low > 1 or high > 1:
        raise SegeduInputError(
            f"radius is a fraction of the image's shorter side, but got {tuple(radius)!r}: values above 1 look "
            f"like pixels. Divide by the side, e.g. radius=({low:g} / 64, {high:g} / 64) for a 64-pixel image."
        )
    if not 0 < low <= high <= 0.5:
        raise SegeduInputError(
            f"radius must satisfy 0 < low <= high <= 0.5 (fractions of the shorter side; a shape of radius above "
            f"half the side does not fit in the image), but got {tuple(radius)!r}. Swap the values if they are "
            f"reversed, e.g. (0.05, 0.08), (0.11, 0.16) or (0.2, 0.3)."
        )
    return low, high


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


def _generate(rng: np.random.Generator, h: int, w: int, num_classes: int, max_shapes: int,
              radius: tuple[float, float] = DEFAULT_RADIUS):
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
        # the same single draw for every range, so the default data stay bit-identical
        r = max(_MIN_RADIUS_PIXELS, short * rng.uniform(*radius))
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


def shapes_sample(seed, size=(64, 64), num_classes: int = 4, max_shapes: int = 4, radius=DEFAULT_RADIUS):
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
    radius : (float, float)
        Range ``(low, high)`` of a shape's radius as fractions of the shorter side, with
        ``0 < low <= high <= 0.5``; each shape draws its radius uniformly from it (but never below
        3 pixels). The default ``(0.11, 0.22)`` gives the usual mix; a narrow range gives objects of
        one size class, e.g. ``(0.05, 0.08)`` small, ``(0.11, 0.16)`` medium, ``(0.2, 0.3)`` large.
        ``None`` means the default.
        The radius is the circumradius of the shape (a square's half side is ``0.8 r``, a cross's
        arm ``r``), and every centre keeps ``r`` from the border.

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

    Only large shapes (a radius of 20–30 % of the side):

    >>> _, large = shapes_sample(seed=0, num_classes=2, max_shapes=1, radius=(0.2, 0.3))
    >>> bool(0.2 ** 2 * np.pi * 0.6 < (large == 1).mean() < 0.3 ** 2 * np.pi * 1.01)  # one disk
    True
    """
    seed = _check_sample_seed(seed)
    h, w = check_size(size, "size", minimum=_MIN_SIDE)
    num_classes = _check_num_classes(num_classes)
    max_shapes = check_positive_int(max_shapes, "max_shapes", minimum=1)
    radius = _check_radius(radius)
    return _generate(np.random.default_rng(seed), h, w, num_classes, max_shapes, radius)


def shapes_dataset(n: int, size=(64, 64), num_classes: int = 4, seed: int = 0, max_shapes: int = 4,
                   radius=DEFAULT_RADIUS):
    """A stack of ``n`` shapes samples (see :func:`shapes_sample`).

    Sample ``i`` is ``shapes_sample(sample_seed(seed, i), ...)``: it depends on ``(seed, i)`` only,
    so ``shapes_dataset(10, seed=s)[0][:5]`` equals ``shapes_dataset(5, seed=s)[0]``. Use different
    seeds (not overlapping index ranges) for the training and the test split.

    Parameters
    ----------
    n : int
        Number of samples (at least 1).
    size, num_classes, max_shapes, radius
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
    radius = _check_radius(radius)
    images = np.empty((n, h, w, 3), dtype=np.float32)
    labels = np.empty((n, h, w), dtype=np.int64)
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
        images[i], labels[i] = _generate(rng, h, w, num_classes, max_shapes, radius)
    return images, labels


# --------------------------------------------------------------------------- touching cells


def _place_cells(rng: np.random.Generator, h: int, w: int, n_cells: int, radius, touching: float):
    """Centres, semi-axes and angles of up to ``n_cells`` ellipses, many placed against a neighbour."""
    r_lo, r_hi = radius
    centres, axes, angles = [], [], []
    for _ in range(n_cells):
        for _attempt in range(50):
            a = rng.uniform(r_lo, r_hi)
            b = a * rng.uniform(0.7, 1.0)
            if centres and rng.uniform() < touching:
                # against a random earlier cell: centre distance 70-90 % of the sum of the radii,
                # so the two ellipses overlap and the split between them becomes a shared border
                k = int(rng.integers(len(centres)))
                direction = rng.uniform(0, 2 * np.pi)
                reach = rng.uniform(0.7, 0.9) * (0.5 * (a + b) + 0.5 * sum(axes[k]))
                cy = centres[k][0] + reach * np.sin(direction)
                cx = centres[k][1] + reach * np.cos(direction)
            else:
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            if not (0.5 * b <= cy <= h - 1 - 0.5 * b and 0.5 * b <= cx <= w - 1 - 0.5 * b):
                continue
            # no centre inside another cell's core: every cell keeps a region of its own
            if all(np.hypot(cy - y, cx - x) >= 0.6 * (b + bb) for (y, x), (_, bb) in zip(centres, axes)):
                centres.append((cy, cx))
                axes.append((a, b))
                angles.append(rng.uniform(0, np.pi))
                break
    return centres, axes, angles


def touching_cells(seed, size=(64, 64), n_cells: int = 12, radius=(5.0, 9.0), touching: float = 0.8,
                   noise: float = 0.04):
    r"""A grey fluorescence-like image of elliptical cells, many of them touching, with instance labels.

    The test bed of the U-Net border weight map (Ronneberger et al. 2015, arXiv:1505.04597): the
    foreground of touching cells is one blob, so only the instance labels tell them apart.

    How a sample is drawn (all from ``np.random.default_rng(seed)``):

    1. **Placement.** Cell :math:`i` is an ellipse with centre :math:`c_i`, semi-axes
       :math:`a_i \ge b_i` (:math:`a_i` uniform in ``radius``, :math:`b_i / a_i` in
       :math:`[0.7, 1]`) and a random angle. With probability ``touching`` a new cell is put against
       a random earlier one, at 70--90 % of the sum of their mean radii, so the two overlap; otherwise
       it is put anywhere. A centre closer than :math:`0.6 (b_i + b_j)` to another is redrawn (up to
       50 times, then the cell is skipped), so every cell keeps a core of its own.
    2. **Labels.** With :math:`d_i(p) = (u/a_i)^2 + (v/b_i)^2` the normalised squared distance of
       pixel :math:`p` in the frame of ellipse :math:`i`, the pixel is foreground when
       :math:`\min_i d_i(p) \le 1` and gets the label :math:`\arg\min_i d_i(p)`, so overlapping
       ellipses are split along a shared border. Only the largest connected piece of each label is
       kept (the split can leave slivers), and the ids are renumbered ``1..n`` in placement order.
    3. **Image.** Background 0.08; each cell a random brightness in :math:`[0.5, 0.9]`, brightest in
       its middle (:math:`\times (1 - 0.35\, d_i)`), so touching cells meet in a slightly darker
       seam, as stained nuclei do. Then a Gaussian blur (:math:`\sigma = 1` pixel, the optics),
       Gaussian noise of standard deviation ``noise``, and clipping to :math:`[0, 1]`.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        Fixes every random choice; the same seed always gives the same sample.
    size : (int, int) or int
        ``(height, width)``, each at least 16.
    n_cells : int
        Number of cells to place (at least 1). Fewer are returned when no room is found for some.
    radius : (float, float)
        Range of the long semi-axis in pixels, ``1 <= low <= high``.
    touching : float
        Probability in :math:`[0, 1]` that a new cell is placed against an earlier one.
    noise : float
        Standard deviation of the pixel noise (at least 0).

    Returns
    -------
    image : numpy.ndarray, float32, shape (H, W)
        Values in ``[0, 1]``.
    labels : numpy.ndarray, int32, shape (H, W)
        0 is background, ``1..n`` the cells.

    Examples
    --------
    >>> import numpy as np
    >>> from segedu.data import touching_cells
    >>> image, labels = touching_cells(seed=0)
    >>> image.shape, image.dtype, labels.dtype
    ((64, 64), dtype('float32'), dtype('int32'))
    >>> # pairs of different cells that are 4-neighbours somewhere: they touch
    >>> a, b = labels[:, :-1], labels[:, 1:]
    >>> border = (a != b) & (a > 0) & (b > 0)
    >>> len({(min(p), max(p)) for p in zip(a[border], b[border])}) >= 3
    True
    """
    from scipy import ndimage

    seed = _check_sample_seed(seed)
    h, w = check_size(size, "size", minimum=16)
    n_cells = check_positive_int(n_cells, "n_cells", minimum=1)
    try:
        r_lo, r_hi = radius
    except (TypeError, ValueError):
        raise SegeduInputError(
            f"radius must be a (low, high) pair of semi-axis lengths in pixels, e.g. (5.0, 9.0), but got {radius!r}."
        ) from None
    r_lo = check_real_scalar(r_lo, "radius[0]", minimum=1.0)
    r_hi = check_real_scalar(r_hi, "radius[1]", minimum=r_lo)
    touching = check_real_scalar(touching, "touching", minimum=0.0)
    if touching > 1.0:
        raise SegeduInputError(f"touching is a probability and must be at most 1, but got {touching}.")
    noise = check_real_scalar(noise, "noise", minimum=0.0)

    rng = np.random.default_rng(seed)
    centres, axes, angles = _place_cells(rng, h, w, n_cells, (r_lo, r_hi), touching)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dist = np.empty((len(centres), h, w))
    for i, ((cy, cx), (a, b), t) in enumerate(zip(centres, axes, angles)):
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        dist[i] = (u / a) ** 2 + (v / b) ** 2
    nearest = dist.argmin(axis=0)
    d_min = np.take_along_axis(dist, nearest[None], axis=0)[0]
    labels = np.where(d_min <= 1.0, nearest + 1, 0)

    # keep the largest 4-connected piece of every label; renumber the surviving ones 1..n
    clean = np.zeros((h, w), dtype=np.int32)
    brightness = rng.uniform(0.5, 0.9, size=len(centres))
    image = np.full((h, w), 0.08)
    new_id = 0
    for i in range(len(centres)):
        pieces, count = ndimage.label(labels == i + 1)
        if count == 0:
            continue
        largest = 1 + int(np.argmax(np.bincount(pieces.ravel())[1:]))
        region = pieces == largest
        new_id += 1
        clean[region] = new_id
        image[region] = brightness[i] * (1.0 - 0.35 * dist[i][region])

    image = ndimage.gaussian_filter(image, sigma=1.0)
    image += rng.normal(0.0, noise, size=image.shape) if noise > 0 else 0.0
    np.clip(image, 0.0, 1.0, out=image)
    return image.astype(np.float32), clean
