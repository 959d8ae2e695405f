r"""Edges: correlation and convolution, gradient operators, the Laplacian, LoG and Canny.

All functions take an ``H×W`` grey image of real numbers and return arrays of the image's shape.
Integer images are converted to float64 with their values kept (not rescaled); float images keep
their dtype (a float32 image gives float32 output). The sums run in float64 and are cast back at
the end. Colour images must be converted to grey first, e.g. with ``skimage.color.rgb2gray``.

Conventions used throughout
---------------------------
* **Coordinates.** Arrays are indexed ``(row, col)``. The row index grows *downwards*, so the
  ":math:`y`" of this module points down the image, and the column index (":math:`x`") points right.
* **Border.** Pixels outside the image are filled by mirroring the image about its edge, with the
  edge pixel repeated: ``d c b a | a b c d | d c b a`` (numpy's ``np.pad(..., mode="symmetric")``,
  called ``"reflect"`` in ``scipy.ndimage`` and scikit-image, and the default there). A
  constant image therefore has zero gradient everywhere, also on its border.
* **Kernel anchor.** The kernel element that sits on the output pixel is
  :math:`K[a_r, a_c]` with :math:`a = (k - 1) // 2` for a side of length :math:`k`: the centre of an
  odd kernel, and the upper-left element of the central 2×2 block of an even one.

The reference implementations use numpy only, so that they can be read next to the maths; the test
suite checks them against ``scipy.signal``, ``scipy.ndimage`` and ``skimage``.
"""

from __future__ import annotations

import numpy as np

from .._validation import (
    SegeduInputError,
    SegeduTypeError,
    as_array,
    check_float_image,
    check_grey_image,
    check_in,
    check_ndim,
    check_real_scalar,
    check_same_shape,
    float_dtype_of,
)
from ._gaussian import correlate1d, gaussian_blur, gaussian_kernels1d
from .regions import connected_components

__all__ = [
    "SOBEL_X",
    "SOBEL_Y",
    "PREWITT_X",
    "PREWITT_Y",
    "ROBERTS_X",
    "ROBERTS_Y",
    "LAPLACE_4",
    "LAPLACE_8",
    "correlate2d",
    "convolve2d",
    "sobel",
    "prewitt",
    "roberts",
    "gradient_magnitude",
    "gradient_direction",
    "laplacian",
    "log_filter",
    "gaussian_smooth",
    "non_maximum_suppression",
    "hysteresis_threshold",
    "canny",
]


def _constant(rows) -> np.ndarray:
    arr = np.array(rows, dtype=np.float64)
    arr.flags.writeable = False  # a shared constant must not be edited in place by accident
    return arr


#: Sobel kernel for the derivative along the columns (:math:`x`, to the right), as printed in the
#: course's slides. *Correlating* with it gives ``scipy.ndimage.sobel(img, axis=1)``: positive
#: where the image gets brighter to the right.
SOBEL_X = _constant([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])

#: Sobel kernel for the derivative along the rows, as printed in the course's slides, with
#: :math:`y` pointing *up* (the top row has the ``+`` signs). Correlating with it gives
#: ``-scipy.ndimage.sobel(img, axis=0)``; *convolving* with it (which flips it) gives
#: ``+scipy.ndimage.sobel(img, axis=0)``, positive where the image gets brighter downwards.
#: :func:`sobel` uses the second, image-coordinate convention.
SOBEL_Y = _constant([[1, 2, 1], [0, 0, 0], [-1, -2, -1]])

#: Prewitt kernels: Sobel without the centre weight 2; same orientation and signs as Sobel.
PREWITT_X = _constant([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])
PREWITT_Y = _constant([[1, 1, 1], [0, 0, 0], [-1, -1, -1]])

#: Roberts cross kernels (2×2). Correlating with ``ROBERTS_X`` gives
#: :math:`I(r, c) - I(r+1, c+1)` (the main diagonal); with ``ROBERTS_Y``,
#: :math:`I(r, c+1) - I(r+1, c)` (the anti-diagonal).
ROBERTS_X = _constant([[1, 0], [0, -1]])
ROBERTS_Y = _constant([[0, 1], [-1, 0]])

#: Discrete Laplacians :math:`\nabla^2 I = \partial^2 I/\partial x^2 + \partial^2 I/\partial y^2`:
#: with the 4 edge neighbours, and with all 8 neighbours (which also adds the diagonal second
#: differences). Both are symmetric, so correlating and convolving with them agree.
LAPLACE_4 = _constant([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
LAPLACE_8 = _constant([[1, 1, 1], [1, -8, 1], [1, 1, 1]])


# ------------------------------------------------------------------------------------------------
# validation helpers
# ------------------------------------------------------------------------------------------------
def _check_kernel(kernel, name: str = "kernel") -> np.ndarray:
    arr = as_array(kernel, name)
    check_ndim(arr, name, 2, "a kh×kw kernel")
    if arr.dtype == bool:
        raise SegeduTypeError(f"{name} is boolean, but a kernel holds weights. Pass {name}.astype(float).")
    arr = check_float_image(arr, name)
    if arr.size == 0:
        raise SegeduInputError(f"{name} is empty (shape {arr.shape}); a kernel needs at least one weight.")
    return arr.astype(np.float64, copy=False)


# ------------------------------------------------------------------------------------------------
# correlation and convolution
# ------------------------------------------------------------------------------------------------
def _correlate(x: np.ndarray, kernel: np.ndarray, anchor: tuple[int, int]) -> np.ndarray:
    """Correlate float64 ``x`` with ``kernel`` whose element ``kernel[anchor]`` sits on the output pixel."""
    h, w = x.shape
    kh, kw = kernel.shape
    ar, ac = anchor
    # Mirror-pad so that padded[r + u, c + v] = x[r + u - ar, c + v - ac] for every kernel offset.
    padded = np.pad(x, ((ar, kh - 1 - ar), (ac, kw - 1 - ac)), mode="symmetric")
    out = np.zeros((h, w), dtype=np.float64)
    for u in range(kh):  # one vectorised multiply-add per kernel weight, never a loop over pixels
        for v in range(kw):
            out += kernel[u, v] * padded[u : u + h, v : v + w]
    return out


def _anchor(shape) -> tuple[int, int]:
    return ((shape[0] - 1) // 2, (shape[1] - 1) // 2)


def correlate2d(img, kernel):
    r"""2-D correlation ("sliding dot product") with a mirrored border, same size as the image.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    kernel : (kh, kw) array_like of float
        Weights; any size, odd or even, also larger than the image.

    Returns
    -------
    out : (H, W) ndarray of float
        With the anchor :math:`a = ((k_h - 1) // 2, (k_w - 1) // 2)`,

        .. math::

            (K \star I)(r, c) = \sum_{u=0}^{k_h - 1} \sum_{v=0}^{k_w - 1}
                K[u, v]\, I(r + u - a_r,\; c + v - a_c),

        i.e. the kernel is laid on the image *as printed*, with its element :math:`K[a_r, a_c]` on
        the output pixel. Pixels outside the image are mirrored (``d c b a | a b c d``).

    Raises
    ------
    SegeduInputError
        If ``img`` is not 2-D (e.g. a colour image), is empty or contains NaN, or ``kernel`` is not
        a non-empty 2-D array of finite numbers.
    SegeduTypeError
        If ``img`` or ``kernel`` is boolean.

    Notes
    -----
    *Border.* This is one fixed border mode, mirroring with the edge pixel repeated (numpy's
    ``"symmetric"``, scipy.ndimage's and scikit-image's ``"reflect"``). It keeps the image's mean
    level at the border, so flat regions give no false edges there.

    *Agreement with scipy.* The result equals
    ``scipy.ndimage.correlate(img, kernel, mode="reflect", origin=o)`` over the whole image, with
    ``o = 0`` along an odd axis and ``o = -1`` along an even one (scipy.ndimage anchors even kernels
    at :math:`k // 2` instead). Away from the border, where no padding is involved, it equals
    ``scipy.signal.correlate2d(img, kernel, mode="same")``, which anchors every kernel at
    :math:`(k - 1) // 2` and pads with zeros.

    Correlation is not convolution: see :func:`convolve2d`. The loops run over the
    :math:`k_h k_w` kernel offsets, each adding a shifted copy of the padded image, so the cost is
    :math:`O(H W k_h k_w)` with one numpy operation per kernel weight.

    References
    ----------
    .. [1] Gonzalez, R. C. and Woods, R. E. "Digital Image Processing", 2nd edition.
           Prentice Hall, 2002, Section 3.5 (basics of spatial filtering: correlation and
           convolution).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((3, 5))
    >>> img[1, 2] = 1.0  # an impulse
    >>> kernel = np.array([[1.0, 2.0, 3.0]])
    >>> correlate2d(img, kernel)  # correlation lays the kernel down flipped around the impulse
    array([[0., 0., 0., 0., 0.],
           [0., 3., 2., 1., 0.],
           [0., 0., 0., 0., 0.]])
    """
    arr = check_grey_image(img)
    k = _check_kernel(kernel)
    out = _correlate(arr.astype(np.float64, copy=False), k, _anchor(k.shape))
    return out.astype(float_dtype_of(arr), copy=False)


def convolve2d(img, kernel):
    r"""2-D convolution with a mirrored border, same size as the image.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    kernel : (kh, kw) array_like of float
        Weights; any size, odd or even.

    Returns
    -------
    out : (H, W) ndarray of float
        With the same anchor :math:`a = ((k_h - 1) // 2, (k_w - 1) // 2)` as :func:`correlate2d`,

        .. math::

            (K * I)(r, c) = \sum_{u=0}^{k_h - 1} \sum_{v=0}^{k_w - 1}
                K[u, v]\, I(r - (u - a_r),\; c - (v - a_c)).

    Raises
    ------
    SegeduInputError
        If ``img`` is not 2-D, is empty or contains NaN, or ``kernel`` is not a non-empty 2-D array.
    SegeduTypeError
        If ``img`` or ``kernel`` is boolean.

    Notes
    -----
    *Why a flip.* Convolution indexes the image with :math:`r - u` where correlation uses
    :math:`r + u`: the kernel offset :math:`(m, n)` reads the pixel at :math:`(-m, -n)`. Renaming
    :math:`m \to -m` turns the sum into a correlation with the kernel rotated by 180° about its
    anchor, so for an **odd** kernel

    .. math::

        K * I = \operatorname{flip}(K) \star I, \qquad
        \operatorname{flip}(K)[u, v] = K[k_h - 1 - u,\; k_w - 1 - v],

    which is exactly how this function is computed: ``correlate2d(img, kernel[::-1, ::-1])``. The
    flip is what makes convolution commutative and associative (blurring then differentiating
    equals convolving once with the blurred derivative kernel), and it makes the impulse response
    of a filter equal to its kernel. For a **symmetric** kernel (Gaussian, box, Laplacian) the two
    operations agree; for an asymmetric one (Sobel, Prewitt, Roberts) they differ: flipping a
    derivative kernel negates it.

    *Even kernels.* Rotating an even kernel by 180° moves its anchor from :math:`(k-1)//2` to
    :math:`k//2`, so here the flipped kernel is correlated with the anchor at :math:`k // 2`
    (the same element as before the flip). This keeps :math:`(K * I)(r, c) = \sum_u K[u] I(r -
    u + a)` for every kernel size, and then the result equals ``scipy.signal.convolve2d(img,
    kernel, mode="same")`` away from the border, for odd and even kernels alike. (Beware:
    ``scipy.signal`` itself is not consistent here; for even kernels its ``correlate2d`` with the
    flipped kernel is shifted by one pixel from its ``convolve2d``.)

    *Agreement with scipy.ndimage.* Over the whole image the result equals
    ``scipy.ndimage.convolve(img, kernel, mode="reflect", origin=o)`` with ``o = 0`` along an odd
    axis and ``o = -1`` along an even one.

    References
    ----------
    .. [1] Gonzalez, R. C. and Woods, R. E. "Digital Image Processing", 2nd edition.
           Prentice Hall, 2002, Section 3.5 (basics of spatial filtering: correlation and
           convolution).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((3, 5))
    >>> img[1, 2] = 1.0  # an impulse
    >>> kernel = np.array([[1.0, 2.0, 3.0]])
    >>> convolve2d(img, kernel)  # convolution copies the kernel itself: the impulse response
    array([[0., 0., 0., 0., 0.],
           [0., 1., 2., 3., 0.],
           [0., 0., 0., 0., 0.]])
    """
    arr = check_grey_image(img)
    k = _check_kernel(kernel)
    kh, kw = k.shape
    ar, ac = _anchor(k.shape)
    flipped_anchor = (kh - 1 - ar, kw - 1 - ac)  # the same weight, now at its flipped position
    out = _correlate(arr.astype(np.float64, copy=False), k[::-1, ::-1], flipped_anchor)
    return out.astype(float_dtype_of(arr), copy=False)


# ------------------------------------------------------------------------------------------------
# first-derivative operators
# ------------------------------------------------------------------------------------------------
def sobel(img):
    r"""Sobel derivatives ``(gx, gy)``: along the columns and along the rows, unnormalised.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.

    Returns
    -------
    gx : (H, W) ndarray of float
        Derivative along the columns (axis 1, :math:`x` to the right): positive where the image gets
        brighter to the right. Equal to ``scipy.ndimage.sobel(img, axis=1)``.
    gy : (H, W) ndarray of float
        Derivative along the rows (axis 0, :math:`y` *down*): positive where the image gets brighter
        downwards. Equal to ``scipy.ndimage.sobel(img, axis=0)``.

    Raises
    ------
    SegeduInputError
        If ``img`` is not 2-D (e.g. a colour image), is empty or contains NaN.
    SegeduTypeError
        If ``img`` is boolean.

    Notes
    -----
    The Sobel operator [1]_ is a central difference smoothed across the edge with weights
    :math:`(1, 2, 1)`:

    .. math::

        G_x = S_x \star I, \quad S_x = \begin{pmatrix} -1 & 0 & 1 \\ -2 & 0 & 2 \\ -1 & 0 & 1
        \end{pmatrix}, \qquad
        G_y = S_y * I = \operatorname{flip}(S_y) \star I, \quad
        S_y = \begin{pmatrix} 1 & 2 & 1 \\ 0 & 0 & 0 \\ -1 & -2 & -1 \end{pmatrix},

        G = \sqrt{G_x^2 + G_y^2}.

    :math:`S_x` and :math:`S_y` are :data:`SOBEL_X` and :data:`SOBEL_Y` as printed in the slides,
    whose :math:`S_y` has :math:`y` pointing up. Here :math:`y` points down the rows, so
    :math:`G_y` *convolves* with :math:`S_y` (equivalently, correlates with
    ``SOBEL_X.T = -SOBEL_Y``); :math:`G_x` correlates with :math:`S_x`. Both then have the signs of
    ``scipy.ndimage.sobel``. The magnitude :func:`gradient_magnitude` does not depend on these sign
    choices, but :func:`gradient_direction` and :func:`non_maximum_suppression` do.

    The responses are not normalised: a unit step gives a peak of 4 (the sum of the positive
    weights). Divide by 8 for a derivative per pixel estimate of a linear ramp.

    References
    ----------
    .. [1] Sobel, I. and Feldman, G. "A 3×3 Isotropic Gradient Operator for Image Processing."
           Talk at the Stanford Artificial Intelligence Project, 1968.
    .. [2] Gonzalez, R. C. and Woods, R. E. "Digital Image Processing", 2nd edition.
           Prentice Hall, 2002, Sections 3.7.3 (the gradient) and 10.1.3 (edge detection).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0.0, 0.0, 1.0, 1.0]] * 3)  # brighter to the right
    >>> gx, gy = sobel(img)
    >>> gx
    array([[0., 4., 4., 0.],
           [0., 4., 4., 0.],
           [0., 4., 4., 0.]])
    >>> bool(np.all(gy == 0))
    True
    >>> gx_down, gy_down = sobel(img.T)  # brighter downwards: now gy is positive
    >>> gy_down[:, 0]
    array([0., 4., 4., 0.])
    """
    arr = check_grey_image(img)
    x = arr.astype(np.float64, copy=False)
    gx = _correlate(x, np.asarray(SOBEL_X), (1, 1))
    gy = _correlate(x, np.asarray(SOBEL_Y)[::-1, ::-1], (1, 1))  # convolve with S_y
    dtype = float_dtype_of(arr)
    return gx.astype(dtype, copy=False), gy.astype(dtype, copy=False)


def prewitt(img):
    r"""Prewitt derivatives ``(gx, gy)``: like :func:`sobel` with uniform smoothing weights.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.

    Returns
    -------
    gx, gy : (H, W) ndarray of float
        Derivatives along the columns and along the rows (:math:`y` down), equal to
        ``scipy.ndimage.prewitt(img, axis=1)`` and ``scipy.ndimage.prewitt(img, axis=0)``.

    Notes
    -----
    :math:`G_x = P_x \star I` and :math:`G_y = P_y * I` with :data:`PREWITT_X` and
    :data:`PREWITT_Y` (:math:`(1, 1, 1)` across the edge instead of Sobel's :math:`(1, 2, 1)`),
    with the same sign conventions as :func:`sobel`.

    References
    ----------
    .. [1] Prewitt, J. M. S. "Object Enhancement and Extraction." In Picture Processing and
           Psychopictorics, Academic Press, 1970: 75--149.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0.0, 0.0, 1.0, 1.0]] * 3)
    >>> prewitt(img)[0][0]
    array([0., 3., 3., 0.])
    """
    arr = check_grey_image(img)
    x = arr.astype(np.float64, copy=False)
    gx = _correlate(x, np.asarray(PREWITT_X), (1, 1))
    gy = _correlate(x, np.asarray(PREWITT_Y)[::-1, ::-1], (1, 1))
    dtype = float_dtype_of(arr)
    return gx.astype(dtype, copy=False), gy.astype(dtype, copy=False)


def roberts(img):
    r"""Roberts cross: differences along the two diagonals, ``(g1, g2)``.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.

    Returns
    -------
    g1 : (H, W) ndarray of float
        ``correlate2d(img, ROBERTS_X)``: :math:`I(r, c) - I(r+1, c+1)`.
    g2 : (H, W) ndarray of float
        ``correlate2d(img, ROBERTS_Y)``: :math:`I(r, c+1) - I(r+1, c)`.

    Notes
    -----
    The 2×2 kernels are anchored at their upper-left element (see :func:`correlate2d`), so the
    differences are taken forwards, between pixel :math:`(r, c)` and the 2×2 block below and to
    its right; in the last row and column the mirrored border repeats the edge pixel. The edge
    strength is ``gradient_magnitude(g1, g2)``. Its estimate sits half a pixel off the pixel
    centre, one reason why 3×3 operators are preferred. Away from the border, scikit-image's
    ``roberts_pos_diag`` and ``roberts_neg_diag`` equal ``-g1`` and ``-g2`` (same anchor, opposite
    sign), and ``skimage.filters.roberts`` is the magnitude divided by :math:`\sqrt{2}`.

    References
    ----------
    .. [1] Roberts, L. G. "Machine Perception of Three-Dimensional Solids." PhD thesis, MIT, 1963.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    >>> g1, g2 = roberts(img)
    >>> g1
    array([[-1.,  0.,  0.],
           [ 0.,  1.,  0.],
           [ 0.,  0.,  0.]])
    """
    arr = check_grey_image(img)
    x = arr.astype(np.float64, copy=False)
    g1 = _correlate(x, np.asarray(ROBERTS_X), (0, 0))
    g2 = _correlate(x, np.asarray(ROBERTS_Y), (0, 0))
    dtype = float_dtype_of(arr)
    return g1.astype(dtype, copy=False), g2.astype(dtype, copy=False)


def gradient_magnitude(gx, gy):
    r"""Gradient magnitude :math:`G = \sqrt{G_x^2 + G_y^2}`.

    Parameters
    ----------
    gx, gy : (H, W) array_like of float
        The two derivatives, e.g. from :func:`sobel`, of the same shape.

    Returns
    -------
    magnitude : (H, W) ndarray of float
        Computed with ``np.hypot``, which avoids overflow in the squares.

    Raises
    ------
    SegeduInputError
        If the shapes differ or an input contains NaN.

    Examples
    --------
    >>> gradient_magnitude([[3.0, 0.0]], [[4.0, -2.0]])
    array([[5., 2.]])
    """
    a = check_float_image(as_array(gx, "gx"), "gx")
    b = check_float_image(as_array(gy, "gy"), "gy")
    check_same_shape(a, b, "gx", "gy")
    return np.hypot(a, b)


def gradient_direction(gx, gy):
    r"""Gradient direction :math:`\theta = \operatorname{atan2}(G_y, G_x)` in radians.

    Parameters
    ----------
    gx, gy : (H, W) array_like of float
        Derivatives along the columns and along the rows, as returned by :func:`sobel`.

    Returns
    -------
    theta : (H, W) ndarray of float
        In :math:`(-\pi, \pi]`, measured from the :math:`+x` (column) axis towards the :math:`+y`
        (row, *downward*) axis, i.e. clockwise on the screen. :math:`\theta = 0` means brighter to
        the right, :math:`\pi/2` brighter downwards. The unit vector :math:`(\sin\theta,
        \cos\theta)` in ``(row, col)`` order points uphill; the edge runs perpendicular to it.

    Raises
    ------
    SegeduInputError
        If the shapes differ or an input contains NaN.

    Examples
    --------
    >>> import numpy as np
    >>> np.degrees(gradient_direction([[1.0, 0.0, -1.0]], [[0.0, 1.0, 0.0]]))
    array([[  0.,  90., 180.]])
    """
    a = check_float_image(as_array(gx, "gx"), "gx")
    b = check_float_image(as_array(gy, "gy"), "gy")
    check_same_shape(a, b, "gx", "gy")
    return np.arctan2(b, a)


# ------------------------------------------------------------------------------------------------
# second-derivative operators and Gaussian smoothing
# ------------------------------------------------------------------------------------------------
def laplacian(img, neighbours=4):
    r"""Discrete Laplacian :math:`\nabla^2 I` with the 4- or 8-neighbour kernel.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    neighbours : {4, 8}, optional
        4 uses :data:`LAPLACE_4` (:math:`\partial_{xx} + \partial_{yy}`), 8 uses :data:`LAPLACE_8`,
        which adds the two diagonal second differences and so responds more evenly in all
        directions.

    Returns
    -------
    out : (H, W) ndarray of float
        ``correlate2d(img, LAPLACE_4 or LAPLACE_8)``. With ``neighbours=4`` this equals
        ``scipy.ndimage.laplace(img)``. Edges are the zero crossings of the Laplacian.

    Raises
    ------
    SegeduInputError
        If ``img`` is not a 2-D image or ``neighbours`` is not 4 or 8.

    Notes
    -----
    .. math::

        \nabla^2 I(r, c) \approx I(r-1, c) + I(r+1, c) + I(r, c-1) + I(r, c+1) - 4 I(r, c).

    The Laplacian amplifies noise (it is a second derivative), so it is usually applied after a
    Gaussian blur: see :func:`log_filter`.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((3, 3))
    >>> img[1, 1] = 1.0
    >>> laplacian(img)
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
    arr = check_grey_image(img)
    check_in(neighbours, "neighbours", (4, 8))
    kernel = LAPLACE_4 if neighbours == 4 else LAPLACE_8
    out = _correlate(arr.astype(np.float64, copy=False), np.asarray(kernel), (1, 1))
    return out.astype(float_dtype_of(arr), copy=False)


def gaussian_smooth(img, sigma):
    r"""Gaussian blur with standard deviation ``sigma`` (pixels) and a mirrored border.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    sigma : float
        Standard deviation :math:`\sigma \ge 0`; 0 returns a copy of the image.

    Returns
    -------
    out : (H, W) ndarray of float
        :math:`G_\sigma * I` with the sampled Gaussian :math:`g_i \propto e^{-i^2/2\sigma^2}`
        normalised to sum 1 and truncated at :math:`|i| \le \lfloor 4\sigma + 0.5 \rfloor`, applied
        along the rows and then along the columns (the 2-D Gaussian is separable). Equal, up to
        rounding, to ``scipy.ndimage.gaussian_filter(img, sigma)`` (``mode="reflect"``).

    Examples
    --------
    >>> import numpy as np
    >>> out = gaussian_smooth(np.eye(5), 1.0)
    >>> round(float(out.sum()), 10)  # a blur keeps the total (the mirrored border loses nothing)
    5.0
    """
    arr = check_grey_image(img)
    sigma = check_real_scalar(sigma, "sigma", minimum=0.0)
    out = gaussian_blur(arr.astype(np.float64, copy=False), sigma)
    return out.astype(float_dtype_of(arr), copy=False)


def log_filter(img, sigma):
    r"""Laplacian of Gaussian (LoG): :math:`\nabla^2 (G_\sigma * I) = (\nabla^2 G_\sigma) * I`.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    sigma : float
        Standard deviation of the Gaussian in pixels, greater than 0. Edges are found at the zero
        crossings of the result; blobs of radius about :math:`\sqrt{2}\,\sigma` give the strongest
        (negative for bright blobs) response.

    Returns
    -------
    out : (H, W) ndarray of float
        Equal to ``scipy.ndimage.gaussian_laplace(img, sigma)`` over the whole image, up to
        rounding (the tests use an absolute tolerance of 1e-10 times the image's range).

    Raises
    ------
    SegeduInputError
        If ``img`` is not a 2-D image or ``sigma <= 0``.

    Notes
    -----
    Convolution is associative, so blurring and then taking the Laplacian equals convolving once
    with the Laplacian of the Gaussian kernel [1]_. That kernel is separable into two terms,

    .. math::

        \nabla^2 G_\sigma(x, y) = g''(x)\, g(y) + g(x)\, g''(y), \qquad
        g''(x) = g(x)\, \frac{x^2 - \sigma^2}{\sigma^4},

    so each term is a 1-D filter along the columns followed by one along the rows. The sampled
    :math:`g` is normalised to sum 1 and both kernels are truncated at
    :math:`\lfloor 4\sigma + 0.5 \rfloor`, as in scipy.ndimage.

    References
    ----------
    .. [1] Marr, D. and Hildreth, E. "Theory of Edge Detection." Proceedings of the Royal Society
           of London B 207(1167), 1980: 187--217. :DOI:`10.1098/rspb.1980.0020`

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((9, 9))
    >>> img[3:6, 3:6] = 1.0  # a small bright square
    >>> out = log_filter(img, 1.0)
    >>> bool(out[4, 4] < 0 < out[4, 1])  # negative inside the blob, positive just outside
    True
    """
    arr = check_grey_image(img)
    sigma = check_real_scalar(sigma, "sigma", minimum=0.0, strict=True)
    x = arr.astype(np.float64, copy=False)
    g, g2 = gaussian_kernels1d(sigma)
    d_xx = correlate1d(correlate1d(x, g2, axis=1), g, axis=0)
    d_yy = correlate1d(correlate1d(x, g, axis=1), g2, axis=0)
    return (d_xx + d_yy).astype(float_dtype_of(arr), copy=False)


# ------------------------------------------------------------------------------------------------
# Canny
# ------------------------------------------------------------------------------------------------
#: Neighbour offsets (row, col) compared by non-maximum suppression, per direction bin.
NMS_NEIGHBOURS = {
    0: ((0, -1), (0, 1)),  # gradient along the row (left-right): left and right
    45: ((-1, -1), (1, 1)),  # gradient down-right: up-left and down-right
    90: ((-1, 0), (1, 0)),  # gradient along the column: up and down
    135: ((-1, 1), (1, -1)),  # gradient down-left: up-right and down-left
}


def non_maximum_suppression(magnitude, direction):
    r"""Thin edges to one pixel: keep a pixel only where its magnitude peaks across the edge.

    Parameters
    ----------
    magnitude : (H, W) array_like of float
        Gradient magnitude, e.g. from :func:`gradient_magnitude`.
    direction : (H, W) array_like of float
        Gradient direction in radians, as from :func:`gradient_direction` (:math:`\operatorname
        {atan2}(G_y, G_x)` with :math:`y` pointing down the rows). Any real angle is accepted; it
        is taken modulo :math:`\pi`, since the two opposite directions compare the same pair.

    Returns
    -------
    thinned : (H, W) ndarray of float
        ``magnitude`` where a pixel is kept, 0 elsewhere. The pixels of the outermost row and
        column are always 0 (they lack a neighbour on one side).

    Raises
    ------
    SegeduInputError
        If the inputs are not 2-D, differ in shape, or contain NaN.

    Notes
    -----
    The direction :math:`\theta` (in degrees, modulo 180) is rounded to the nearest of 0, 45, 90
    and 135:

    ===================================  ==========  =====================================
    :math:`\theta \bmod 180^\circ`       bin         neighbours compared, ``(row, col)``
    ===================================  ==========  =====================================
    :math:`[0, 22.5) \cup [157.5, 180)`  0°          ``(r, c-1)`` and ``(r, c+1)``
    :math:`[22.5, 67.5)`                 45°         ``(r-1, c-1)`` and ``(r+1, c+1)``
    :math:`[67.5, 112.5)`                90°         ``(r-1, c)`` and ``(r+1, c)``
    :math:`[112.5, 157.5)`               135°        ``(r-1, c+1)`` and ``(r+1, c-1)``
    ===================================  ==========  =====================================

    The two neighbours lie along the gradient, :math:`\pm(\sin\theta, \cos\theta)` in ``(row,
    col)`` order: at 45° the gradient points down and to the right (rows grow downwards). A pixel
    is kept when its magnitude is **greater than or equal to** both neighbours, so a plateau two
    pixels wide across the edge survives in full; strictly smaller pixels are set to 0. This is
    the quantised NMS of the Canny detector [1]_ as usually taught; scikit-image instead
    interpolates the magnitude between two neighbours at the exact angle.

    References
    ----------
    .. [1] Canny, J. "A Computational Approach to Edge Detection." IEEE Transactions on Pattern
           Analysis and Machine Intelligence 8(6), 1986: 679--698. :DOI:`10.1109/TPAMI.1986.4767851`

    Examples
    --------
    >>> import numpy as np
    >>> mag = np.array([[0, 1, 3, 2, 0]] * 3, dtype=float)  # a ridge across the columns
    >>> non_maximum_suppression(mag, np.zeros_like(mag))  # gradient along the rows: 0 degrees
    array([[0., 0., 0., 0., 0.],
           [0., 0., 3., 0., 0.],
           [0., 0., 0., 0., 0.]])
    """
    mag = check_float_image(as_array(magnitude, "magnitude"), "magnitude")
    theta = check_float_image(as_array(direction, "direction"), "direction")
    check_ndim(mag, "magnitude", 2, "an H×W magnitude image")
    check_same_shape(mag, theta, "magnitude", "direction")
    h, w = mag.shape
    out = np.zeros_like(mag, dtype=float_dtype_of(mag))
    if h < 3 or w < 3:
        return out  # every pixel is a border pixel

    degrees = np.mod(np.degrees(theta.astype(np.float64)), 180.0)
    bins = (np.floor((degrees + 22.5) / 45.0).astype(np.int64) % 4) * 45
    centre = mag[1:-1, 1:-1]
    keep = np.zeros(centre.shape, dtype=bool)
    inner_bins = bins[1:-1, 1:-1]
    for angle, ((dr1, dc1), (dr2, dc2)) in NMS_NEIGHBOURS.items():
        n1 = mag[1 + dr1 : h - 1 + dr1, 1 + dc1 : w - 1 + dc1]
        n2 = mag[1 + dr2 : h - 1 + dr2, 1 + dc2 : w - 1 + dc2]
        keep |= (inner_bins == angle) & (centre >= n1) & (centre >= n2)
    out[1:-1, 1:-1] = np.where(keep, centre, 0)
    return out


def hysteresis_threshold(magnitude, low, high, connectivity=8):
    r"""Double threshold with edge tracking: weak pixels survive only if connected to a strong one.

    Parameters
    ----------
    magnitude : (H, W) array_like of float
        Edge strength, usually after :func:`non_maximum_suppression`.
    low, high : float
        Thresholds with ``low <= high``. *Strong* pixels have ``magnitude >= high``; *weak* pixels
        have ``magnitude >= low``.
    connectivity : {8, 4}, optional
        Neighbourhood used to connect weak pixels: 8 (with the diagonals, Canny's choice) or 4.

    Returns
    -------
    edges : (H, W) ndarray of bool
        Every weak pixel whose connected component of weak pixels contains at least one strong
        pixel (strong pixels are weak too, so they are always kept).

    Raises
    ------
    SegeduInputError
        If ``magnitude`` is not 2-D, ``low > high``, or ``connectivity`` is not 4 or 8.

    Notes
    -----
    The components are labelled with :func:`segedu.classical.connected_components`. With
    ``connectivity=4`` and values that never equal a threshold, the result equals
    ``skimage.filters.apply_hysteresis_threshold(magnitude, low, high)``, which compares with
    ``>`` instead of ``>=`` and connects pixels through their 4 edge neighbours.

    References
    ----------
    .. [1] Canny, J. "A Computational Approach to Edge Detection." IEEE Transactions on Pattern
           Analysis and Machine Intelligence 8(6), 1986: 679--698. :DOI:`10.1109/TPAMI.1986.4767851`

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[0.9, 0.4, 0.0, 0.4, 0.4],
    ...               [0.0, 0.0, 0.4, 0.0, 0.0]])
    >>> hysteresis_threshold(m, 0.3, 0.8).astype(int)  # the weak chain touches the strong pixel
    array([[1, 1, 0, 1, 1],
           [0, 0, 1, 0, 0]])
    >>> hysteresis_threshold(m, 0.3, 0.8, connectivity=4).astype(int)
    array([[1, 1, 0, 0, 0],
           [0, 0, 0, 0, 0]])
    """
    mag = check_float_image(as_array(magnitude, "magnitude"), "magnitude")
    check_ndim(mag, "magnitude", 2, "an H×W magnitude image")
    low = check_real_scalar(low, "low")
    high = check_real_scalar(high, "high")
    if low > high:
        raise SegeduInputError(
            f"low must not exceed high, but got low={low} and high={high}. Swap them, or lower low."
        )
    check_in(connectivity, "connectivity", (4, 8))
    weak = mag >= low
    labels = connected_components(weak, connectivity=connectivity)
    has_strong = np.zeros(int(labels.max()) + 1, dtype=bool)
    has_strong[labels[mag >= high]] = True
    has_strong[0] = False  # background
    return has_strong[labels]


def canny(img, sigma=1.0, low=0.1, high=0.2):
    r"""Canny edge detector: Gaussian blur, Sobel, non-maximum suppression, hysteresis.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image, best scaled to [0, 1] (``skimage.util.img_as_float``) for the default
        thresholds.
    sigma : float, optional
        Standard deviation of the Gaussian blur in pixels (0: no blur). Larger values find fewer,
        smoother edges.
    low, high : float, optional
        Hysteresis thresholds on the unnormalised Sobel magnitude (see :func:`hysteresis_threshold`),
        ``0 < low <= high`` (``low`` must be positive so that suppressed pixels, which are 0, are
        never kept). The defaults 0.1 and 0.2 are scikit-image's defaults for float images.

    Returns
    -------
    edges : (H, W) ndarray of bool
        One-pixel-wide edges. The outermost rows and columns are never edges.

    Raises
    ------
    SegeduInputError
        If ``img`` is not a 2-D image, ``sigma < 0``, ``low <= 0`` or ``low > high``.

    Notes
    -----
    The steps [1]_:

    1. :math:`I_\sigma = G_\sigma * I` (:func:`gaussian_smooth`, mirrored border);
    2. :math:`(G_x, G_y)` = :func:`sobel` of :math:`I_\sigma`, magnitude
       :math:`M = \sqrt{G_x^2 + G_y^2}`, direction :math:`\theta = \operatorname{atan2}(G_y, G_x)`;
    3. :func:`non_maximum_suppression` of :math:`M` along :math:`\theta` quantised to 0/45/90/135°;
    4. :func:`hysteresis_threshold` with 8-connectivity.

    Differences from ``skimage.feature.canny(img, sigma, low, high)``: scikit-image interpolates
    the magnitude between the two neighbours at the exact gradient angle instead of quantising it,
    and by default blurs with a zero border corrected by a blurred mask (``mode="constant"``)
    instead of mirroring. The edge maps therefore differ by a few pixels along diagonal and
    curved edges; on the course's sample images the F1 score of the two edge maps, counting an edge
    pixel within one pixel of the other map as a match, is above 0.95 (the tests require 0.9).

    References
    ----------
    .. [1] Canny, J. "A Computational Approach to Edge Detection." IEEE Transactions on Pattern
           Analysis and Machine Intelligence 8(6), 1986: 679--698. :DOI:`10.1109/TPAMI.1986.4767851`

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((7, 8))
    >>> img[:, 3] = 0.5
    >>> img[:, 4:] = 1.0  # a vertical edge centred on column 3
    >>> canny(img, sigma=1.0).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]])
    """
    arr = check_grey_image(img)
    sigma = check_real_scalar(sigma, "sigma", minimum=0.0)
    low = check_real_scalar(low, "low", minimum=0.0, strict=True)
    high = check_real_scalar(high, "high")
    if low > high:
        raise SegeduInputError(
            f"low must not exceed high, but got low={low} and high={high}. Swap them, or lower low."
        )
    smoothed = gaussian_smooth(arr.astype(np.float64, copy=False), sigma)
    gx, gy = sobel(smoothed)
    thinned = non_maximum_suppression(gradient_magnitude(gx, gy), gradient_direction(gx, gy))
    return hysteresis_threshold(thinned, low, high, connectivity=8)
