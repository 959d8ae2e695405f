r"""Regions: region growing, split-and-merge, k-means, connected components and watershed.

Images are ``H×W`` grey images of real numbers (``H×W×C`` for :func:`kmeans_segment`), masks are
``H×W`` boolean arrays, and pixel coordinates are ``(row, col)``. Integer images are converted to
float64 with their values kept (not rescaled). Results have the image's ``H×W`` shape:

* :func:`region_grow` returns a boolean mask;
* :func:`connected_components`, :func:`split_and_merge` and :func:`distance_transform_watershed`
  return ``int64`` label maps whose regions are numbered ``1, 2, ...`` in the raster order of their
  first pixel (top to bottom, then left to right), with 0 for the background where there is one.
  Numbering from 1 keeps every region visible to ``skimage.measure.regionprops``, which skips 0;
* :func:`kmeans_segment` returns cluster ids ``0 .. k-1`` sorted by the brightness of the centres.

The reference implementations use numpy only (the watershed helper uses scipy and scikit-image);
the test suite checks them against ``scipy.ndimage.label`` and ``sklearn.cluster.KMeans``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import (
    SegeduInputError,
    SegeduTypeError,
    as_array,
    check_binary_mask,
    check_float_image,
    check_grey_image,
    check_in,
    check_ndim,
    check_positive_int,
    check_real_scalar,
    check_seed,
)

__all__ = [
    "region_grow",
    "quadtree_split",
    "split_and_merge",
    "kmeans_segment",
    "connected_components",
    "distance_transform_watershed",
]

#: Neighbour offsets ``(d_row, d_col)`` in the order :func:`region_grow` examines them.
NEIGHBOURS = {
    4: ((-1, 0), (0, -1), (0, 1), (1, 0)),  # up, left, right, down
    8: ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),  # row-major 3×3
}


# ------------------------------------------------------------------------------------------------
# validation helpers
# ------------------------------------------------------------------------------------------------
def _check_mask(mask) -> np.ndarray:
    """An ``H×W`` binary mask as booleans (the shape is checked first, then the values)."""
    arr = as_array(mask, "mask")
    check_ndim(arr, "mask", 2, "an H×W mask")
    return check_binary_mask(arr, "mask")


def _check_seed_pixel(seed, shape) -> tuple[int, int]:
    try:
        coords = tuple(seed)
    except TypeError:
        raise SegeduTypeError(
            f"seed must be a (row, col) pair of ints, but got {seed!r} ({type(seed).__name__})."
        ) from None
    if len(coords) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in coords
    ):
        raise SegeduTypeError(f"seed must be a (row, col) pair of ints, but got {seed!r}.")
    r, c = int(coords[0]), int(coords[1])
    h, w = shape
    if not (0 <= r < h and 0 <= c < w):
        raise SegeduInputError(
            f"seed {(r, c)} is outside the image of shape {shape}: rows run 0..{h - 1} and columns "
            f"0..{w - 1}. Coordinates are (row, col), not (x, y); swap them if you meant (x, y)."
        )
    return r, c


# ------------------------------------------------------------------------------------------------
# connected components
# ------------------------------------------------------------------------------------------------
def _neighbour_pairs(shape, connectivity: int):
    """Flat indices ``(a, b)`` of every pair of neighbouring pixels, each pair once (a < b)."""
    h, w = shape
    idx = np.arange(h * w).reshape(h, w)
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    a_parts, b_parts = [], []
    for dr, dc in offsets:
        rows_a = slice(0, h - dr)
        rows_b = slice(dr, h)
        cols_a = slice(max(0, -dc), w - max(0, dc))
        cols_b = slice(max(0, dc), w - max(0, -dc))
        a_parts.append(idx[rows_a, cols_a].ravel())
        b_parts.append(idx[rows_b, cols_b].ravel())
    return np.concatenate(a_parts), np.concatenate(b_parts)


def _union_find_roots(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Vectorised union-find: ``root[i]`` is the smallest index connected to ``i`` through the edges."""
    parent = np.arange(n)
    while a.size:
        ra, rb = parent[a], parent[b]
        pending = ra != rb  # an edge whose ends share a root stays satisfied for ever
        a, b, ra, rb = a[pending], b[pending], ra[pending], rb[pending]
        if not a.size:
            break
        # Hook the larger root under the smaller one (roots only ever point to smaller indices,
        # so no cycle can form); several edges on one root keep the smallest target.
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:  # path compression by pointer jumping, until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def connected_components(mask, connectivity=4, return_num=False):
    r"""Label the connected components of a binary mask.

    Parameters
    ----------
    mask : (H, W) array_like of bool
        Foreground pixels are True (0/1 integers and floats are accepted).
    connectivity : {4, 8}, optional
        4: pixels connect through their edge neighbours (up, down, left, right); 8: also through
        their corners.
    return_num : bool, optional
        Also return the number of components.

    Returns
    -------
    labels : (H, W) ndarray of int64
        0 on the background, ``1..n`` on the components, numbered in the raster order of their first
        pixel. Equal to ``scipy.ndimage.label(mask, structure)[0]`` with the cross-shaped structure
        for 4 and ``np.ones((3, 3))`` for 8.
    num : int
        The number of components :math:`n`, only if ``return_num`` is True.

    Raises
    ------
    SegeduInputError
        If ``mask`` is not 2-D or holds values other than 0 and 1, or ``connectivity`` is not 4 or 8.

    Notes
    -----
    Two foreground pixels are in the same component when a path of foreground pixels joins them,
    each step going to a 4- (or 8-) neighbour. The classic algorithm is a two-pass scan with a
    union-find table of label equivalences [1]_. This implementation does the union-find on all
    neighbouring foreground pairs at once: every round hooks the larger root of each unfinished
    pair under the smaller one and then compresses the paths, until both ends of every pair share
    a root. The root of a component is then its first pixel in raster order.

    References
    ----------
    .. [1] Rosenfeld, A. and Pfaltz, J. L. "Sequential Operations in Digital Picture Processing."
           Journal of the ACM 13(4), 1966: 471--494. :DOI:`10.1145/321356.321357`

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[1, 0, 0, 1],
    ...                  [0, 1, 0, 1],
    ...                  [0, 0, 0, 0]], dtype=bool)
    >>> connected_components(mask, connectivity=4)
    array([[1, 0, 0, 2],
           [0, 3, 0, 2],
           [0, 0, 0, 0]])
    >>> connected_components(mask, connectivity=8, return_num=True)
    (array([[1, 0, 0, 2],
           [0, 1, 0, 2],
           [0, 0, 0, 0]]), 2)
    """
    fg = _check_mask(mask)
    check_in(connectivity, "connectivity", (4, 8))
    flat = fg.ravel()
    a, b = _neighbour_pairs(fg.shape, connectivity)
    both = flat[a] & flat[b]
    roots = _union_find_roots(flat.size, a[both], b[both])
    labels = np.zeros(flat.size, dtype=np.int64)
    fg_roots = roots[flat]
    unique_roots, inverse = np.unique(fg_roots, return_inverse=True)
    labels[flat] = inverse.ravel() + 1
    labels = labels.reshape(fg.shape)
    if return_num:
        return labels, int(unique_roots.size)
    return labels


# ------------------------------------------------------------------------------------------------
# region growing
# ------------------------------------------------------------------------------------------------
def region_grow(img, seed, threshold, connectivity=4):
    r"""Grow a region from a seed pixel, adding neighbours close to the region's running mean.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    seed : (int, int)
        The starting pixel ``(row, col)``; it always belongs to the region.
    threshold : float
        :math:`T \ge 0`. A pixel joins when :math:`|I(p) - \mu_R| < T` (strictly).
    connectivity : {4, 8}, optional
        Which neighbours of a region pixel are examined.

    Returns
    -------
    region : (H, W) ndarray of bool
        True on the grown region, which is always connected (in the chosen connectivity) and
        contains the seed.

    Raises
    ------
    SegeduInputError
        If ``img`` is not a 2-D image, ``seed`` is outside it, ``threshold < 0``, or
        ``connectivity`` is not 4 or 8.
    SegeduTypeError
        If ``seed`` is not a pair of ints or ``threshold`` not a real number.

    Notes
    -----
    The similarity criterion [1]_ compares a candidate pixel :math:`p` with the mean of the region
    :math:`R` grown so far:

    .. math::

        c(p) = \begin{cases} \text{True} & \text{if } |I(p) - \mu_R| < T \\
                             \text{False} & \text{otherwise,} \end{cases}
        \qquad \mu_R = \frac{1}{|R|} \sum_{q \in R} I(q).

    Because :math:`\mu_R` changes as the region grows, the result depends on the order in which
    pixels are visited. This function fixes that order precisely:

    1. :math:`R = \{\text{seed}\}`, :math:`\mu_R = I(\text{seed})`, and a first-in first-out queue
       holds the seed.
    2. Take the pixel :math:`q` at the front of the queue and examine its neighbours in the fixed
       order of ``NEIGHBOURS[connectivity]``: for 4-connectivity up, left, right, down, i.e.
       ``(-1, 0), (0, -1), (0, 1), (1, 0)``; for 8-connectivity the 3×3 neighbourhood in row-major
       order, ``(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)``. Neighbours
       outside the image are skipped.
    3. A neighbour :math:`p` not yet in :math:`R` is tested with the *current* :math:`\mu_R`. If it
       passes, it joins :math:`R` at once, :math:`\mu_R` is updated (before the next neighbour is
       tested) and :math:`p` goes to the back of the queue.
    4. A rejected pixel is **not** marked: it is tested again, with the mean of that moment,
       whenever another region pixel that neighbours it is taken from the queue. So a pixel is
       tested at most once per neighbouring region pixel, and never after all of those have been
       expanded, even if :math:`\mu_R` later drifts towards its value.
    5. Repeat from 2 until the queue is empty.

    Every region pixel is expanded exactly once, so the loop runs in :math:`O(|R| \cdot
    \text{connectivity})` steps. With a *fixed* mean (the seed's value instead of :math:`\mu_R`)
    the order would not matter; the running mean lets a region follow a slow intensity ramp (it
    leaks further, see the example) but also keeps it from being captured by a noisy seed.

    References
    ----------
    .. [1] Adams, R. and Bischof, L. "Seeded Region Growing." IEEE Transactions on Pattern Analysis
           and Machine Intelligence 16(6), 1994: 641--647. :DOI:`10.1109/34.295913`
    .. [2] Gonzalez, R. C. and Woods, R. E. "Digital Image Processing", 2nd edition.
           Prentice Hall, 2002, Section 10.4.2 (region growing).

    Examples
    --------
    A slow ramp. With the running mean the region follows it: 2 joins because the mean of
    :math:`\{0, 1\}` is 0.5 and :math:`|2 - 0.5| = 1.5 < 1.6`; a fixed mean of :math:`I(\text{seed})
    = 0` would stop at 1.

    >>> import numpy as np
    >>> ramp = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    >>> region_grow(ramp, (0, 0), 1.6).astype(int)
    array([[1, 1, 1, 0, 0, 0]])

    A diagonal line is one region with 8-connectivity but only its seed with 4-connectivity:

    >>> img = np.eye(4)
    >>> region_grow(img, (0, 0), 0.5, connectivity=8).astype(int)
    array([[1, 0, 0, 0],
           [0, 1, 0, 0],
           [0, 0, 1, 0],
           [0, 0, 0, 1]])
    >>> int(region_grow(img, (0, 0), 0.5, connectivity=4).sum())
    1
    """
    arr = check_grey_image(img)
    h, w = arr.shape
    r0, c0 = _check_seed_pixel(seed, arr.shape)
    t = check_real_scalar(threshold, "threshold", minimum=0.0)
    check_in(connectivity, "connectivity", (4, 8))
    # The loop is the algorithm above, pixel by pixel, made cheap: a one-pixel frame around the
    # image is marked as already visited (no bounds checks), pixels are flat indices into the framed
    # image, and a memoryview hands out Python floats without converting the whole image first.
    width = w + 2
    framed = np.zeros((h + 2, width), dtype=np.float64)
    framed[1:-1, 1:-1] = arr
    values = memoryview(framed.ravel())
    OUTSIDE, MEMBER = 1, 2
    state = np.full((h + 2, width), OUTSIDE, dtype=np.uint8)
    state[1:-1, 1:-1] = 0
    in_region = bytearray(state.tobytes())
    steps = [dr * width + dc for dr, dc in NEIGHBOURS[connectivity]]
    start = (r0 + 1) * width + c0 + 1
    in_region[start] = MEMBER
    total, count = values[start], 1
    mean = total
    queue = [start]
    for q in queue:  # a list that grows while it is walked is a FIFO queue
        for step in steps:
            p = q + step
            if not in_region[p] and abs(values[p] - mean) < t:
                in_region[p] = MEMBER
                total += values[p]
                count += 1
                mean = total / count
                queue.append(p)
    framed_region = np.frombuffer(bytes(in_region), dtype=np.uint8).reshape(h + 2, width)
    return framed_region[1:-1, 1:-1] == MEMBER


# ------------------------------------------------------------------------------------------------
# split and merge
# ------------------------------------------------------------------------------------------------
def _check_split_args(img, threshold, min_size):
    arr = check_grey_image(img)
    t = check_real_scalar(threshold, "threshold", minimum=0.0)
    min_size = check_positive_int(min_size, "min_size")
    return arr.astype(np.float64, copy=False), t, min_size


def _split_blocks(x: np.ndarray, t: float, min_size: int):
    """Quadtree leaves ``(r0, r1, c0, c1)`` in depth-first NW, NE, SW, SE order."""
    leaves = []
    stack = [(0, x.shape[0], 0, x.shape[1])]
    while stack:
        r0, r1, c0, c1 = stack.pop()
        block = x[r0:r1, c0:c1]
        h, w = r1 - r0, c1 - c0
        split_rows, split_cols = h >= 2 * min_size, w >= 2 * min_size
        if block.max() - block.min() <= t or not (split_rows or split_cols):
            leaves.append((r0, r1, c0, c1))
            continue
        rm = r0 + h // 2 if split_rows else r1
        cm = c0 + w // 2 if split_cols else c1
        children = [(r0, rm, c0, cm), (r0, rm, cm, c1), (rm, r1, c0, cm), (rm, r1, cm, c1)]
        children = [ch for ch in children if ch[0] < ch[1] and ch[2] < ch[3]]
        stack.extend(reversed(children))  # so that NW is popped first
    return leaves


def _raster_relabel(labels: np.ndarray, keep_zero: bool = False) -> np.ndarray:
    """Renumber a label map ``1..n`` in the raster order of each value's first pixel.

    With ``keep_zero`` the value 0 stays 0 (background) and only the other values are renumbered.
    """
    flat = labels.ravel()
    if keep_zero:
        out = np.zeros(flat.shape, dtype=np.int64)
        fg = flat != 0
        if fg.any():
            out[fg] = _raster_relabel(flat[fg])
        return out.reshape(labels.shape)
    values, first = np.unique(flat, return_index=True)  # sorted values, index of first pixel
    new = np.empty(values.size, dtype=np.int64)
    new[np.argsort(first)] = np.arange(1, values.size + 1)
    return new[np.searchsorted(values, flat)].reshape(labels.shape)


def quadtree_split(img, threshold, min_size=1):
    r"""The split phase of :func:`split_and_merge`: the quadtree's leaves as a label map.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    threshold : float
        A block is homogeneous when :math:`\max - \min \le T`.
    min_size : int, optional
        Smallest block side: an axis is halved only while it is at least ``2 * min_size`` long.

    Returns
    -------
    leaves : (H, W) ndarray of int64
        Each leaf block of the quadtree gets its own label ``1..n``, in raster order.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1, 1, 5, 6], [2, 1, 6, 7], [3, 2, 7, 4], [1, 0, 5, 5]], dtype=float)
    >>> quadtree_split(img, 2)  # the top quadrants are homogeneous, the bottom ones split again
    array([[ 1,  1,  2,  2],
           [ 1,  1,  2,  2],
           [ 3,  4,  5,  6],
           [ 7,  8,  9, 10]])
    """
    x, t, min_size = _check_split_args(img, threshold, min_size)
    labels = np.zeros(x.shape, dtype=np.int64)
    for i, (r0, r1, c0, c1) in enumerate(_split_blocks(x, t, min_size)):
        labels[r0:r1, c0:c1] = i
    return _raster_relabel(labels)


def split_and_merge(img, threshold, min_size=1):
    r"""Split-and-merge segmentation: quadtree splitting, then merging of similar neighbours.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    threshold : float
        :math:`T \ge 0`. The homogeneity predicate of a set of pixels :math:`S` is
        :math:`P(S) = \big(\max_S I - \min_S I \le T\big)`.
    min_size : int, optional
        Smallest block side of the split phase: an axis is halved only while it is at least
        ``2 * min_size`` pixels long, so blocks smaller than that are leaves even when they are not
        homogeneous. The default 1 splits down to single pixels.

    Returns
    -------
    labels : (H, W) ndarray of int64
        Region labels ``1..n`` in the raster order of each region's first pixel. Every region is
        4-connected and satisfies :math:`P` (unless it is a leaf that ``min_size`` stopped from
        splitting).

    Raises
    ------
    SegeduInputError
        If ``img`` is not a 2-D image, ``threshold < 0`` or ``min_size < 1``.

    Notes
    -----
    *Split* [1]_. Starting from the whole image, a block that fails :math:`P` is cut into four
    quadrants (an odd side of length :math:`n` is cut into :math:`\lfloor n/2 \rfloor` and
    :math:`\lceil n/2 \rceil`, and an axis shorter than ``2 * min_size`` is not cut, giving two
    halves instead of four), and each quadrant is treated the same way. The leaves are numbered in
    depth-first order: north-west, north-east, south-west, south-east.

    *Merge.* Two regions are adjacent when a pixel of one is a 4-neighbour of a pixel of the
    other. The pairs of adjacent leaves are swept in ascending order of their leaf numbers
    :math:`(a, b)`; when the regions containing :math:`a` and :math:`b` differ and their union
    satisfies :math:`P`, they are merged at once (so later tests see the merged region). Sweeps
    repeat until one merges nothing. The result depends on this order, as for every greedy merge;
    the predicate only needs each region's minimum and maximum, which are kept per region.

    References
    ----------
    .. [1] Horowitz, S. L. and Pavlidis, T. "Picture Segmentation by a Tree Traversal Algorithm."
           Journal of the ACM 23(2), 1976: 368--388. :DOI:`10.1145/321941.321956`
    .. [2] Gonzalez, R. C. and Woods, R. E. "Digital Image Processing", 2nd edition.
           Prentice Hall, 2002, Section 10.4.3 (region splitting and merging).

    Examples
    --------
    The 4×4 image of the course slides. The slides give no threshold; we chose :math:`T = 3`. The
    whole image fails (:math:`7 - 0 > 3`); its four quadrants pass (ranges 1, 2, 3 and 3), and the
    merge joins the two left quadrants (values 0..3) and the two right ones (values 4..7):

    >>> import numpy as np
    >>> img = np.array([[1, 1, 5, 6],
    ...                 [2, 1, 6, 7],
    ...                 [3, 2, 7, 4],
    ...                 [1, 0, 5, 5]], dtype=float)
    >>> quadtree_split(img, 3)
    array([[1, 1, 2, 2],
           [1, 1, 2, 2],
           [3, 3, 4, 4],
           [3, 3, 4, 4]])
    >>> split_and_merge(img, 3)
    array([[1, 1, 2, 2],
           [1, 1, 2, 2],
           [1, 1, 2, 2],
           [1, 1, 2, 2]])

    With :math:`T = 2` the bottom quadrants (ranges 3) split into single pixels. The greedy merge,
    in the order described above, grows the top-left region down to the 3, 2 and 1 below it
    (range 1..3) and the top-right one down to the 7 and 5 below it (range 5..7); the 0 cannot
    join anything (0..3 has range 3), and the 4 and 5 on the right form a region of their own:

    >>> split_and_merge(img, 2)
    array([[1, 1, 2, 2],
           [1, 1, 2, 2],
           [1, 1, 2, 3],
           [1, 4, 2, 3]])
    """
    x, t, min_size = _check_split_args(img, threshold, min_size)
    leaves = _split_blocks(x, t, min_size)
    n = len(leaves)
    leaf_map = np.zeros(x.shape, dtype=np.int64)
    lo = np.empty(n)
    hi = np.empty(n)
    for i, (r0, r1, c0, c1) in enumerate(leaves):
        leaf_map[r0:r1, c0:c1] = i
        block = x[r0:r1, c0:c1]
        lo[i], hi[i] = block.min(), block.max()

    # Adjacent leaf pairs (a < b), each once, in ascending order.
    pairs = []
    for p, q in ((leaf_map[:, :-1], leaf_map[:, 1:]), (leaf_map[:-1, :], leaf_map[1:, :])):
        differ = p != q
        pairs.append(np.stack([np.minimum(p, q)[differ], np.maximum(p, q)[differ]], axis=1))
    pairs = np.unique(np.concatenate(pairs), axis=0) if n > 1 else np.zeros((0, 2), dtype=np.int64)

    parent = list(range(n))
    lo_l, hi_l = lo.tolist(), hi.tolist()

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pair_list = pairs.tolist()
    changed = True
    while changed:
        changed = False
        for a, b in pair_list:
            ra, rb = find(a), find(b)
            if ra == rb:
                continue
            new_lo, new_hi = min(lo_l[ra], lo_l[rb]), max(hi_l[ra], hi_l[rb])
            if new_hi - new_lo <= t:
                if rb < ra:
                    ra, rb = rb, ra
                parent[rb] = ra
                lo_l[ra], hi_l[ra] = new_lo, new_hi
                changed = True
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    return _raster_relabel(roots[leaf_map])


# ------------------------------------------------------------------------------------------------
# k-means
# ------------------------------------------------------------------------------------------------
def _squared_distances(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``d[i, j] = ||X[i] - centres[j]||^2``, one cluster at a time to keep memory at N×C."""
    d = np.empty((X.shape[0], centres.shape[0]))
    for j, c in enumerate(centres):
        diff = X - c
        d[:, j] = np.einsum("ij,ij->i", diff, diff)
    return d


def _kmeans_plus_plus(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Arthur & Vassilvitskii's k-means++ seeding (one candidate per step)."""
    n = X.shape[0]
    centres = np.empty((k, X.shape[1]))
    centres[0] = X[rng.integers(n)]
    closest = _squared_distances(X, centres[:1])[:, 0]
    for j in range(1, k):
        total = closest.sum()
        if total <= 0:
            distinct = np.unique(X, axis=0).shape[0]
            raise SegeduInputError(
                f"img has only {distinct} distinct pixel value(s), fewer than k={k} clusters. "
                f"Use k <= {distinct}."
            )
        index = rng.choice(n, p=closest / total)
        centres[j] = X[index]
        closest = np.minimum(closest, _squared_distances(X, centres[j : j + 1])[:, 0])
    return centres


def kmeans_segment(img, k, seed=0, max_iter=100, tol=1e-4, init="k-means++", n_init=1):
    r"""k-means clustering of the pixel values: a grey or colour image as ``k`` flat regions.

    Parameters
    ----------
    img : (H, W) or (H, W, C) array_like of float
        Grey or colour image (e.g. RGB in [0, 1]); each pixel is a point in :math:`\mathbb{R}^C`
        (:math:`C = 1` for grey).
    k : int
        Number of clusters, :math:`1 \le k \le H W`.
    seed : int (non-negative) or None, optional
        Seed of ``numpy.random.default_rng`` for the initialisation; the same seed gives the same
        result.
    max_iter : int, optional
        Maximum number of Lloyd iterations (assignment + update), at least 1.
    tol : float, optional
        Stop when the total squared movement of the centres in one iteration,
        :math:`\sum_j \|c_j^{new} - c_j\|^2`, is at most ``tol`` times the mean per-channel variance
        of the pixels (scikit-learn's relative tolerance). The loop also stops as soon as no label
        changes. ``tol=0`` iterates until the labels no longer change.
    init : {"k-means++", "random"} or (k, C) array_like, optional
        "k-means++" (default): the first centre is a pixel drawn uniformly, each further centre a
        pixel drawn with probability proportional to its squared distance to the nearest centre
        chosen so far [2]_. "random": ``k`` distinct pixels drawn uniformly. An array gives the
        initial centres directly (the seed is then unused), e.g. to compare with
        ``sklearn.cluster.KMeans(init=centres, n_init=1)``.
    n_init : int, optional
        Number of initialisations (drawn one after the other from the same seeded generator); the
        run with the lowest inertia is returned. k-means only finds a local minimum, and on some
        images (e.g. "flower" with ``k=4``) a single k-means++ start can be 50% worse than the
        best; ``n_init=10`` is scikit-learn's classic default. Ignored when ``init`` is an array.

    Returns
    -------
    labels : (H, W) ndarray of int64
        The cluster of every pixel, ``0..k-1``.
    centres : (k, C) ndarray of float
        The cluster means (``C = 1`` for a grey image), in the image's float dtype. They are sorted
        by brightness, the mean over channels (ties broken by channel 0, 1, ...), so label 0 is the
        darkest cluster and the numbering does not depend on the initialisation order.

    Raises
    ------
    SegeduInputError
        If ``img`` is not 2-D or 3-D, ``k < 1`` or ``k`` exceeds the number of pixels (or of
        distinct pixel values, for k-means++), ``max_iter < 1``, ``n_init < 1``, ``tol < 0``, or
        ``init`` has the wrong shape.

    Notes
    -----
    k-means [1]_ minimises the within-cluster sum of squares (the *inertia*)

    .. math::

        J = \sum_{i=1}^{N} \| x_i - c_{\ell_i} \|^2

    by alternating Lloyd's two steps until the labels stop changing:

    1. *assign*: :math:`\ell_i = \arg\min_j \|x_i - c_j\|^2` (ties go to the lower index);
    2. *update*: :math:`c_j = \frac{1}{|\{i : \ell_i = j\}|} \sum_{\ell_i = j} x_i`.

    Neither step increases :math:`J`, so it converges, but only to a local minimum that depends on
    the initialisation. If a cluster becomes empty, its centre is moved to the pixel farthest from
    its own centre (scikit-learn does the same). After the loop the labels are assigned once more
    to the final centres, so ``labels`` and ``centres`` always agree. The computation runs in
    float64.

    The pixel values alone are clustered, not their positions, so a cluster may be scattered
    over the image; use :func:`connected_components` on ``labels == j`` to split it into regions.

    References
    ----------
    .. [1] Lloyd, S. P. "Least Squares Quantization in PCM." IEEE Transactions on Information
           Theory 28(2), 1982: 129--137. :DOI:`10.1109/TIT.1982.1056489`
    .. [2] Arthur, D. and Vassilvitskii, S. "k-means++: The Advantages of Careful Seeding."
           Proceedings of SODA 2007: 1027--1035.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0.1, 0.12, 0.9],
    ...                 [0.11, 0.88, 0.92]])
    >>> labels, centres = kmeans_segment(img, 2)
    >>> labels
    array([[0, 0, 1],
           [0, 1, 1]])
    >>> centres.round(3)
    array([[0.11],
           [0.9 ]])
    """
    arr = as_array(img, "img")
    check_ndim(arr, "img", (2, 3), "an H×W grey or H×W×C colour image")
    arr = check_float_image(arr, "img")
    if arr.size == 0:
        raise SegeduInputError(f"img is empty (shape {arr.shape}); pass an image with at least one pixel.")
    h, w = arr.shape[:2]
    X = arr.reshape(h * w, -1).astype(np.float64)
    n, channels = X.shape
    k = check_positive_int(k, "k")
    if k > n:
        raise SegeduInputError(f"k={k} exceeds the number of pixels ({n}); use k <= {n}.")
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_real_scalar(tol, "tol", minimum=0.0)
    seed = check_seed(seed)
    n_init = check_positive_int(n_init, "n_init")
    rng = np.random.default_rng(seed)

    if isinstance(init, str):
        check_in(init, "init", ("k-means++", "random"))
        starts = []
        for _ in range(n_init):
            if init == "k-means++":
                starts.append(_kmeans_plus_plus(X, k, rng))
            else:
                starts.append(X[rng.choice(n, size=k, replace=False)].copy())
    else:
        init_arr = check_float_image(as_array(init, "init"), "init")
        if init_arr.ndim == 1 and channels == 1:  # k grey levels
            init_arr = init_arr[:, None]
        if init_arr.shape != (k, channels):
            raise SegeduInputError(
                f"init must be 'k-means++', 'random' or an array of k={k} initial centres with "
                f"shape ({k}, {channels}), but got shape {init_arr.shape}."
            )
        starts = [init_arr.astype(np.float64)]  # a copy: the caller's array is never changed

    abs_tol = tol * float(np.mean(np.var(X, axis=0)))
    best = None
    for centres in starts:
        labels, centres, inertia = _lloyd(X, centres, max_iter, abs_tol)
        if best is None or inertia < best[2]:
            best = (labels, centres, inertia)
    labels, centres, _ = best

    order = np.lexsort(tuple(centres[:, c] for c in reversed(range(channels))) + (centres.mean(axis=1),))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64
    return rank[labels].reshape(h, w).astype(np.int64), centres[order].astype(out_dtype)


def _lloyd(X: np.ndarray, centres: np.ndarray, max_iter: int, abs_tol: float):
    """Lloyd iterations from ``centres``; returns ``(labels, centres, inertia)``."""
    n, channels = X.shape
    k = centres.shape[0]
    labels = None
    for _ in range(max_iter):
        dist = _squared_distances(X, centres)
        new_labels = np.argmin(dist, axis=1)  # assignment step
        counts = np.bincount(new_labels, minlength=k)
        sums = np.stack([np.bincount(new_labels, weights=X[:, c], minlength=k) for c in range(channels)], 1)
        new_centres = centres.copy()
        filled = counts > 0
        new_centres[filled] = sums[filled] / counts[filled, None]  # update step: the cluster means
        empty = np.flatnonzero(~filled)
        if empty.size:  # relocate empty clusters to the pixels farthest from their centres
            far = np.argsort(dist[np.arange(n), new_labels])[::-1][: empty.size]
            new_centres[empty] = X[far]
        shift = float(np.sum((new_centres - centres) ** 2))
        centres = new_centres
        if labels is not None and np.array_equal(labels, new_labels):
            break  # no label changed: converged
        labels = new_labels
        if shift <= abs_tol:
            break
    dist = _squared_distances(X, centres)
    labels = np.argmin(dist, axis=1)  # final assignment, so that labels and centres agree
    return labels, centres, float(dist[np.arange(n), labels].sum())


# ------------------------------------------------------------------------------------------------
# distance transform and watershed
# ------------------------------------------------------------------------------------------------
def distance_transform_watershed(mask, min_distance=5):
    r"""Split touching objects in a binary mask: distance transform, peaks as markers, watershed.

    Parameters
    ----------
    mask : (H, W) array_like of bool
        Foreground pixels are True, e.g. the result of thresholding an image of touching cells.
    min_distance : int, optional
        Minimum distance in pixels between two object centres; peaks of the distance transform
        closer than this are merged into one marker. About the radius of the smallest object.

    Returns
    -------
    labels : (H, W) ndarray of int64
        0 on the background, ``1..n`` on the objects, in the raster order of their first pixel.

    Raises
    ------
    SegeduInputError
        If ``mask`` is not a 2-D binary mask or ``min_distance < 1``.

    Notes
    -----
    1. The Euclidean distance transform :math:`D(p) = \min_{q \notin \text{mask}} \|p - q\|` is
       largest at the centres of round objects and has a saddle at the neck where two touch
       (``scipy.ndimage.distance_transform_edt``).
    2. Its local maxima at least ``min_distance`` apart, found within each connected component
       (``skimage.feature.peak_local_max``), become markers; touching peaks of a plateau form one
       marker.
    3. The watershed [1]_ of :math:`-D` floods from the markers and splits the mask along the
       necks (``skimage.segmentation.watershed``), restricted to the mask.

    Over-segmentation of elongated objects is the usual failure: raise ``min_distance``.

    References
    ----------
    .. [1] Beucher, S. and Meyer, F. "The Morphological Approach to Segmentation: The Watershed
           Transformation." In Mathematical Morphology in Image Processing, Marcel Dekker, 1993:
           433--481.

    Examples
    --------
    >>> import numpy as np
    >>> rr, cc = np.mgrid[0:20, 0:34]
    >>> mask = ((rr - 10) ** 2 + (cc - 10) ** 2 < 64) | ((rr - 10) ** 2 + (cc - 23) ** 2 < 64)
    >>> int(connected_components(mask).max())  # the two discs touch: one component
    1
    >>> int(distance_transform_watershed(mask, min_distance=5).max())
    2
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    fg = _check_mask(mask)
    min_distance = check_positive_int(min_distance, "min_distance")
    if not fg.any():
        return np.zeros(fg.shape, dtype=np.int64)
    distance = ndimage.distance_transform_edt(fg)
    components = connected_components(fg, connectivity=8)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=components, exclude_border=False)
    peak_mask = np.zeros(fg.shape, dtype=bool)
    peak_mask[tuple(peaks.T)] = True
    markers = connected_components(peak_mask, connectivity=8)
    labels = watershed(-distance, markers, mask=fg)
    return _raster_relabel(np.where(fg, labels, 0), keep_zero=True)
