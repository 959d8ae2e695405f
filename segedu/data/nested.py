r"""Seeded synthetic *nested* shapes, where one click is genuinely ambiguous (unit 10, Segment Anything).

A click on the dot of a target is a click on the dot, on the ring around it and on the square around
both: which object did the user mean? SAM (Kirillov et al. 2023, arXiv:2304.02643, section 3)
answers with three masks at once, *whole*, *part* and *subpart*, and an IoU head that ranks them.
These images give a small SAM something to be ambiguous about.

How a sample is drawn (all from ``np.random.default_rng(seed)``):

1. **Background.** A dull base colour, a smooth texture (three sinusoidal gratings) and an
   illumination ramp, as in :func:`segedu.data.shapes_sample`.
2. **Stacks.** One or two *stacks* (two with probability 0.6, when two fit without touching). A
   stack is a nearly axis-aligned **square** (the *whole*, level 0, half side 18–28 % of the image
   side, 18–22 % when there are two), possibly holding a **disk** (the *part*, level 1), possibly
   holding a **dot**
   (the *subpart*, level 2, radius at least 4 pixels). Depths 1, 2 and 3 have probabilities 0.2, 0.3
   and 0.5, so the number of objects under a click varies. Every child keeps at least 3 pixels
   between its border and its parent's, so each level has an interior of its own to click on.
3. **Colours.** The three levels of a stack get hues a third of the colour circle apart (with
   jitter), a strong saturation, and a gentle shading ramp, so that every border is visible; drawn in
   the disk's colour around the dot's, the disk looks like a ring.
4. **Noise.** Gaussian pixel noise, then clipping to ``[0, 1]``.

Each object's mask is the **filled** region (the disk's mask includes its dot; the square's includes
both), so that whole ⊃ part ⊃ subpart, as SAM's three levels.

The intended object of a click is the *innermost* object under it. :func:`click_region` gives the
pixels where a click means a given object: its mask, eroded by ``margin`` pixels (away from its own
border), minus its children dilated by ``margin`` (away from theirs). :func:`sample_click` draws one.

>>> from segedu.data.nested import nested_shapes, sample_click, innermost_object, objects_under
>>> images, objects = nested_shapes(3, seed=0)
>>> images.shape, images.dtype
((3, 3, 64, 64), dtype('float32'))
>>> first = objects[0]  # two stacks: square ⊃ disk ⊃ dot, and a square alone
>>> first.masks.shape, first.levels.tolist(), first.stacks.tolist(), first.parents.tolist()
((4, 64, 64), [0, 1, 2, 0], [0, 0, 0, 1], [-1, 0, 1, -1])
>>> x, y = sample_click(first, 2, seed=1)  # a click that means the dot (object 2)...
>>> innermost_object(first, x, y), objects_under(first, x, y)  # ...is also on the disk and the square
(2, [2, 1, 0])
"""

from __future__ import annotations

import colorsys
import numbers
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .._validation import SegeduInputError, SegeduTypeError, check_positive_int, check_seed

__all__ = [
    "LEVEL_NAMES",
    "NestedObjects",
    "nested_sample",
    "nested_shapes",
    "objects_under",
    "innermost_object",
    "click_region",
    "sample_click",
]

#: Names of the levels: ``LEVEL_NAMES[level]`` (SAM's whole, part and subpart).
LEVEL_NAMES = ("whole", "part", "subpart")

#: Smallest image side: two levels of nesting need room.
_MIN_SIZE = 32
#: Probabilities of a stack of depth 1, 2 and 3.
_DEPTH_P = (0.2, 0.3, 0.5)
#: Probability of asking for a second stack (drawn only if it fits).
_TWO_STACKS_P = 0.6
#: Pixels between a child's border and its parent's border, at least.
_GAP = 3
#: Least dot radius in pixels (a 64×64 SAM predicts masks at 32×32 or finer).
_MIN_DOT = 4.0


@dataclass(frozen=True)
class NestedObjects:
    """The objects of one image, stack by stack, each stack from the whole to the subpart.

    Attributes
    ----------
    masks : numpy.ndarray, bool, shape (K, S, S)
        The filled mask of each object; a child's mask lies inside its parent's.
    levels : numpy.ndarray, int64, shape (K,)
        0 whole (square), 1 part (disk), 2 subpart (dot); see :data:`LEVEL_NAMES`.
    stacks : numpy.ndarray, int64, shape (K,)
        The stack of each object, ``0 .. n_stacks - 1``.
    parents : numpy.ndarray, int64, shape (K,)
        The index of the parent object, ``-1`` for a whole.
    """

    masks: np.ndarray
    levels: np.ndarray
    stacks: np.ndarray
    parents: np.ndarray

    def __len__(self) -> int:
        return int(self.levels.shape[0])

    def children(self, index: int) -> np.ndarray:
        """Indices of the objects whose parent is ``index``."""
        return np.flatnonzero(self.parents == index)

    def ancestors(self, index: int) -> list[int]:
        """``[index, parent, grandparent, ...]``: the object and every object around it, innermost first."""
        chain = [int(index)]
        while self.parents[chain[-1]] >= 0:
            chain.append(int(self.parents[chain[-1]]))
        return chain


# ------------------------------------------------------------------------------------- drawing


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _background(rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    base = rng.uniform(0.2, 0.45) + rng.uniform(-0.06, 0.06, size=3)
    texture = np.zeros((size, size))
    for _ in range(3):
        cycles = rng.uniform(1.0, 6.0)
        theta = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        proj = (xx * np.cos(theta) + yy * np.sin(theta)) / size
        texture += rng.uniform(0.02, 0.05) * np.sin(2 * np.pi * cycles * proj + phase)
    gy, gx = rng.uniform(-0.08, 0.08, size=2)
    texture += gy * (yy / size - 0.5) + gx * (xx / size - 0.5)
    return base + texture[..., None]


def _paint(image, mask, colour, rng, yy, xx, cy, cx, radius):
    """Fill ``mask`` with ``colour`` times a gentle linear shading ramp across the object."""
    direction = rng.uniform(0, 2 * np.pi)
    ramp = ((xx - cx) * np.cos(direction) + (yy - cy) * np.sin(direction))[mask] / radius
    image[mask] = colour * (1.0 + rng.uniform(0.04, 0.12) * ramp)[:, None]


def _stack_geometry(rng: np.random.Generator, size: int, n_stacks: int):
    """Centres and half sides of ``n_stacks`` squares 2 pixels from the border and 3 from each other.

    One square has a half side of 18–28 % of the image side; two get 18–22 % each and are placed
    together (the first alone would often leave no room). If no pair fits after 50 draws, one
    square is drawn.
    """
    if n_stacks == 2:
        for _ in range(50):
            halves = rng.uniform(0.18 * size, 0.22 * size, size=2)
            centres = [rng.uniform(half + 2, size - 3 - half, size=2) for half in halves]
            if np.abs(centres[0] - centres[1]).max() > halves.sum() + 3:
                return [(c[0], c[1], h) for c, h in zip(centres, halves)]
    half = rng.uniform(0.18 * size, 0.28 * size)
    cy, cx = rng.uniform(half + 2, size - 3 - half, size=2)
    return [(cy, cx, half)]


def _generate(rng: np.random.Generator, size: int):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    image = _background(rng, size, yy, xx)
    masks, levels, stacks, parents = [], [], [], []
    n_wanted = 2 if rng.random() < _TWO_STACKS_P else 1
    for stack, (cy, cx, half) in enumerate(_stack_geometry(rng, size, n_wanted)):
        depth = 1 + int(rng.choice(3, p=_DEPTH_P))
        hue = rng.uniform(0, 1)
        hue_step = rng.choice([-1, 1]) / 3
        tilt = np.deg2rad(rng.uniform(-8, 8))  # nearly axis-aligned squares
        u = (xx - cx) * np.cos(tilt) + (yy - cy) * np.sin(tilt)
        v = -(xx - cx) * np.sin(tilt) + (yy - cy) * np.cos(tilt)
        square = np.maximum(np.abs(u), np.abs(v)) <= half
        _paint(image, square, _hsv(hue, rng.uniform(0.55, 0.9), rng.uniform(0.6, 0.95)), rng, yy, xx, cy, cx, half)
        masks.append(square)
        levels.append(0)
        stacks.append(stack)
        parents.append(-1)
        if depth == 1:
            continue
        # the disk keeps _GAP pixels from the square's sides (the corners of a tilted square add more)
        radius = rng.uniform(max(_MIN_DOT + _GAP + 1, 0.45 * half), max(_MIN_DOT + _GAP + 1, 0.7 * half))
        radius = min(radius, half - _GAP - 1)
        room = max(0.0, half - radius - _GAP - 1)
        du, dv = rng.uniform(-room, room, size=2)
        dy = du * np.sin(tilt) + dv * np.cos(tilt)
        dx = du * np.cos(tilt) - dv * np.sin(tilt)
        ry, rx = cy + dy, cx + dx
        disk = ((yy - ry) ** 2 + (xx - rx) ** 2 <= radius**2) & square
        _paint(image, disk, _hsv(hue + hue_step + rng.uniform(-0.05, 0.05), rng.uniform(0.55, 0.9),
                                 rng.uniform(0.6, 0.95)), rng, yy, xx, ry, rx, radius)
        masks.append(disk)
        levels.append(1)
        stacks.append(stack)
        parents.append(len(masks) - 2)
        if depth == 2:
            continue
        dot_radius = min(rng.uniform(_MIN_DOT, max(_MIN_DOT, 0.5 * radius)), radius - _GAP)
        room = max(0.0, radius - dot_radius - _GAP)
        angle, distance = rng.uniform(0, 2 * np.pi), room * np.sqrt(rng.uniform(0, 1))
        oy, ox = ry + distance * np.sin(angle), rx + distance * np.cos(angle)
        dot = ((yy - oy) ** 2 + (xx - ox) ** 2 <= dot_radius**2) & disk
        _paint(image, dot, _hsv(hue + 2 * hue_step + rng.uniform(-0.05, 0.05), rng.uniform(0.55, 0.9),
                                rng.uniform(0.6, 0.95)), rng, yy, xx, oy, ox, dot_radius)
        masks.append(dot)
        levels.append(2)
        stacks.append(stack)
        parents.append(len(masks) - 2)
    image += rng.normal(0.0, rng.uniform(0.02, 0.05), size=image.shape)
    np.clip(image, 0.0, 1.0, out=image)
    objects = NestedObjects(
        masks=np.stack(masks), levels=np.array(levels, dtype=np.int64), stacks=np.array(stacks, dtype=np.int64),
        parents=np.array(parents, dtype=np.int64),
    )
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32), objects


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise SegeduTypeError(
            f"size is the side of the square images, an int such as 64, but got {size!r} ({type(size).__name__})."
        )
    return check_positive_int(size, "size", minimum=_MIN_SIZE,
                              hint=" Nested shapes need room for three levels; use 64 (TinySAM's image size).")


def _check_seed(seed):
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return check_seed(seed, allow_none=False)


def nested_sample(seed, size: int = 64):
    """One image of nested shapes and its objects.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        Fixes every random choice; the same seed always gives the same sample.
    size : int
        Side ``S`` of the square image, at least 32 (default 64, TinySAM's input).

    Returns
    -------
    image : numpy.ndarray, float32, shape (3, S, S)
        RGB in ``[0, 1]``, channels first (as a network takes it).
    objects : NestedObjects
        The masks (filled, whole ⊃ part ⊃ subpart), levels, stacks and parents.

    Examples
    --------
    >>> image, objects = nested_sample(seed=3)
    >>> image.shape, float(image.min()) >= 0.0, float(image.max()) <= 1.0
    ((3, 64, 64), True, True)
    >>> all(not (objects.masks[k] & ~objects.masks[p]).any() for k, p in enumerate(objects.parents) if p >= 0)
    True
    """
    seed = _check_seed(seed)
    size = _check_size(size)
    return _generate(np.random.default_rng(seed), size)


def nested_shapes(n_images: int, size: int = 64, seed: int = 0):
    """``n_images`` images of nested shapes (see the module docstring) and their objects.

    Image ``i`` is ``nested_sample(np.random.SeedSequence([seed, i]), size)``: it depends on
    ``(seed, i)`` only, so a longer set starts with the shorter one. Use different seeds for
    training and held-out images (the shipped TinySAM trains on seed 0 and is evaluated on seed 100).

    Parameters
    ----------
    n_images : int
        Number of images, at least 1.
    size : int
        Side of the square images, at least 32.
    seed : int
        Non-negative dataset seed.

    Returns
    -------
    images : numpy.ndarray, float32, shape (n_images, 3, S, S)
        RGB in ``[0, 1]``, channels first.
    objects : list of NestedObjects
        One per image.

    Examples
    --------
    >>> images, objects = nested_shapes(4, size=48, seed=1)
    >>> images.shape, len(objects), objects[0].masks.dtype
    ((4, 3, 48, 48), 4, dtype('bool'))
    >>> again, _ = nested_shapes(2, size=48, seed=1)
    >>> bool((again == images[:2]).all())
    True
    """
    n_images = check_positive_int(n_images, "n_images", minimum=1)
    seed = check_seed(seed, allow_none=False)
    size = _check_size(size)
    images = np.empty((n_images, 3, size, size), dtype=np.float32)
    objects = []
    for i in range(n_images):
        images[i], sample_objects = _generate(np.random.default_rng(np.random.SeedSequence([seed, i])), size)
        objects.append(sample_objects)
    return images, objects


# -------------------------------------------------------------------------------------- clicks


def _check_objects(objects) -> NestedObjects:
    if not isinstance(objects, NestedObjects):
        raise SegeduTypeError(
            f"objects must be the NestedObjects of one image (an item of the list nested_shapes returns), but got "
            f"{type(objects).__name__}. Pass objects[i], not the whole list."
        )
    return objects


def _check_index(objects: NestedObjects, index) -> int:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise SegeduTypeError(f"index must be an int (an object of the image), but got {index!r}.")
    if not 0 <= index < len(objects):
        raise SegeduInputError(f"index must lie in 0..{len(objects) - 1} (the image has {len(objects)} objects), "
                               f"but got {index}.")
    return int(index)


def _check_point(objects: NestedObjects, x, y) -> tuple[int, int]:
    size = objects.masks.shape[-1]
    for name, value in (("x", x), ("y", y)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SegeduTypeError(f"{name} must be a pixel coordinate (a number), but got {value!r}.")
        if not 0 <= value < size:
            raise SegeduInputError(
                f"{name} must lie in [0, {size}) (pixels of the {size}×{size} image; x is the column, y the row), "
                f"but got {value}."
            )
    return int(x), int(y)


def objects_under(objects: NestedObjects, x, y) -> list[int]:
    """Indices of the objects whose mask holds pixel ``(x, y)`` (column, row), innermost first.

    >>> _, objects = nested_sample(seed=3)
    >>> x, y = sample_click(objects, len(objects) - 1, seed=0)
    >>> objects_under(objects, x, y) == objects.ancestors(len(objects) - 1)
    True
    """
    objects = _check_objects(objects)
    x, y = _check_point(objects, x, y)
    inside = np.flatnonzero(objects.masks[:, y, x])
    return sorted((int(k) for k in inside), key=lambda k: -int(objects.levels[k]))


def innermost_object(objects: NestedObjects, x, y) -> int:
    """The innermost object under pixel ``(x, y)``, the one a click there means; ``-1`` on the background."""
    under = objects_under(objects, x, y)
    return under[0] if under else -1


def click_region(objects: NestedObjects, index: int, margin: int = 1) -> np.ndarray:
    """Pixels where a click means object ``index``: inside it and in none of its children, ``margin`` px from both.

    The object's mask is eroded by ``margin`` pixels (a 3×3 square per step) and its children's
    masks, dilated by ``margin``, are removed. If that leaves nothing (a very thin band), the
    region without the margin is returned, which is never empty for these data.

    >>> _, objects = nested_sample(seed=3)
    >>> region = click_region(objects, 0)
    >>> bool(region.any()) and not bool((region & objects.masks[objects.children(0)].any(0)).any())
    True
    """
    objects = _check_objects(objects)
    index = _check_index(objects, index)
    margin = check_positive_int(margin, "margin", minimum=0)
    own = objects.masks[index]
    children = objects.masks[objects.children(index)].any(0) if len(objects.children(index)) else np.zeros_like(own)
    if margin == 0:
        return own & ~children
    structure = np.ones((3, 3), dtype=bool)
    region = ndimage.binary_erosion(own, structure, iterations=margin) & ~ndimage.binary_dilation(
        children, structure, iterations=margin) if children.any() else ndimage.binary_erosion(
        own, structure, iterations=margin)
    return region if region.any() else own & ~children


def sample_click(objects: NestedObjects, index: int, seed=None, margin: int = 1, rng=None) -> tuple[int, int]:
    """A random click ``(x, y)`` (column, row) that means object ``index``: uniform on :func:`click_region`.

    Pass ``seed`` (an int) or ``rng`` (a ``numpy.random.Generator``, for many clicks in a row).

    >>> _, objects = nested_sample(seed=3)
    >>> [innermost_object(objects, *sample_click(objects, k, seed=5)) for k in range(len(objects))] == list(
    ...     range(len(objects)))
    True
    """
    if rng is None:
        rng = np.random.default_rng(check_seed(seed, allow_none=False))
    elif not isinstance(rng, np.random.Generator):
        raise SegeduTypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), but got "
                              f"{type(rng).__name__}.")
    ys, xs = np.nonzero(click_region(objects, index, margin))
    pick = int(rng.integers(len(ys)))
    return int(xs[pick]), int(ys[pick])
