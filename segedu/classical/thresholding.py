"""Thresholding: a global threshold, Otsu's threshold, and adaptive (local) thresholds.

All functions take an ``H×W`` grey image of real numbers. Integer images are converted to float64
with their values kept (not rescaled to [0, 1]); float images keep their dtype, so a float32 image
gives a float32 threshold surface. Colour images must be converted to grey first, e.g. with
``skimage.color.rgb2gray``.

The reference implementations use numpy only, so that they can be read next to the maths; the test
suite checks them against ``skimage.filters.threshold_otsu`` and ``skimage.filters.threshold_local``.
"""

from __future__ import annotations

import numpy as np

from .._validation import (
    SegeduInputError,
    as_array,
    check_float_image,
    check_grey_image,
    check_in,
    check_odd_positive,
    check_positive_int,
    check_real_scalar,
)
from ._gaussian import gaussian_blur

__all__ = ["threshold", "otsu_threshold", "adaptive_threshold", "local_threshold_surface"]

_METHODS = ("mean", "gaussian")


def threshold(img, t):
    r"""Global threshold: foreground where the intensity is strictly above ``t``.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    t : float or (H, W) array_like of float
        The threshold :math:`T`: one number for the whole image, or a threshold surface
        :math:`T(x, y)` of the image's shape (see :func:`local_threshold_surface`).

    Returns
    -------
    mask : (H, W) ndarray of bool
        The segmentation

        .. math::

            S(x, y) = \begin{cases} 1 & \text{if } I(x, y) > T \\ 0 & \text{otherwise.} \end{cases}

        A pixel equal to the threshold is background.

    Raises
    ------
    SegeduInputError
        If ``img`` is not 2-D (e.g. a colour image), contains NaN, or ``t`` has another shape.
    SegeduTypeError
        If ``img`` is boolean or ``t`` is not a real number.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0.1, 0.5], [0.7, 0.9]])
    >>> threshold(img, 0.5)
    array([[False, False],
           [ True,  True]])
    """
    arr = check_grey_image(img)
    if np.ndim(t) == 0 and not hasattr(t, "shape"):
        t = check_real_scalar(t, "t")
    else:
        t_arr = as_array(t, "t")
        if t_arr.ndim == 0:
            t = check_real_scalar(t_arr.item(), "t")
        else:
            if t_arr.shape != arr.shape:
                raise SegeduInputError(
                    f"t must be a number or a threshold surface of the image's shape {arr.shape}, "
                    f"but its shape is {t_arr.shape}."
                )
            t = check_float_image(t_arr, "t")
    return arr > t


def otsu_threshold(img, nbins=256):
    r"""Otsu's threshold: the histogram split that maximises the between-class variance.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image. Integer images are treated as floats with the same values.
    nbins : int, optional
        Number of histogram bins, spread evenly over ``[img.min(), img.max()]``. At least 2.

    Returns
    -------
    threshold : float
        The centre of the bin :math:`k^*` that ends the background class. Pixels with
        ``img > threshold`` are foreground. For a constant image there is nothing to split, and the
        constant itself is returned (as ``skimage.filters.threshold_otsu`` does), so that
        ``threshold(img, otsu_threshold(img))`` is all background.

    Raises
    ------
    SegeduInputError
        If ``img`` is not 2-D (e.g. a colour image), is empty or contains NaN, or ``nbins < 2``.
    SegeduTypeError
        If ``img`` is boolean.

    Notes
    -----
    Let the histogram have counts :math:`h_0, \dots, h_{L-1}` at the bin centres
    :math:`c_0, \dots, c_{L-1}`. Splitting after bin :math:`k` makes a background class
    (bins :math:`0..k`) and a foreground class (bins :math:`k+1..L-1`) with

    .. math::

        \omega_0(k) = \sum_{i \le k} h_i, \quad
        \omega_1(k) = \sum_{i > k} h_i, \quad
        \mu_0(k) = \frac{\sum_{i \le k} h_i c_i}{\omega_0(k)}, \quad
        \mu_1(k) = \frac{\sum_{i > k} h_i c_i}{\omega_1(k)} .

    Otsu [1]_ chooses the split that maximises the between-class variance

    .. math::

        \sigma_B^2(k) = \omega_0(k)\, \omega_1(k)\, \big(\mu_0(k) - \mu_1(k)\big)^2,
        \qquad k^* = \arg\max_{0 \le k < L-1} \sigma_B^2(k),

    which is the same as minimising the variance within the two classes, because their sum is the
    fixed total variance. All :math:`L - 1` splits are scored at once with cumulative sums; on a
    tie the first (lowest) split wins.

    The threshold is the *centre* of bin :math:`k^*`, so the pixels in the upper half of that bin
    count as foreground under ``img > threshold``; with a gap of empty bins between two modes, the
    first tied split wins, so the threshold is the centre of the darker mode's last bin.

    This follows ``skimage.filters.threshold_otsu`` for float images. For integer images skimage
    uses one bin per integer value instead of ``nbins`` bins; pass ``skimage.util.img_as_float(img)``
    to both functions to compare them.

    References
    ----------
    .. [1] Otsu, N. "A Threshold Selection Method from Gray-Level Histograms." IEEE Transactions
           on Systems, Man, and Cybernetics 9(1), 1979: 62--66. :DOI:`10.1109/TSMC.1979.4310076`

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0.1, 0.2, 0.2], [0.8, 0.9, 0.9]])
    >>> t = otsu_threshold(img, nbins=8)  # bins of width 0.1 centred on 0.15, 0.25, ...
    >>> round(t, 4)
    0.25
    >>> threshold(img, t)
    array([[False, False, False],
           [ True,  True,  True]])
    """
    arr = check_grey_image(img)
    nbins = check_positive_int(nbins, "nbins", minimum=2)
    lo, hi = arr.min(), arr.max()
    if lo == hi:
        return float(lo)

    counts, edges = np.histogram(arr, bins=nbins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    counts = counts.astype(np.float64)

    # Bin 0 holds the minimum and the last bin the maximum, so neither weight is ever 0.
    weight0 = np.cumsum(counts)  # pixels in bins 0..k
    weight1 = np.cumsum(counts[::-1])[::-1]  # pixels in bins k..L-1
    mean0 = np.cumsum(counts * centres) / weight0
    mean1 = (np.cumsum((counts * centres)[::-1]) / weight1[::-1])[::-1]

    # Split after bin k: background = bins 0..k, foreground = bins k+1..L-1.
    between = weight0[:-1] * weight1[1:] * (mean0[:-1] - mean1[1:]) ** 2
    return float(centres[np.argmax(between)])


def _box_mean(x: np.ndarray, block_size: int) -> np.ndarray:
    """Mean over ``block_size × block_size`` windows with symmetric padding, via a summed-area table."""
    r = block_size // 2
    # Centring the values keeps the running sums small, so their differences lose fewer digits.
    centre = x.mean()
    padded = np.pad(x - centre, r, mode="symmetric")
    # sat[i, j] = sum of padded[:i, :j]; the extra zero row and column make the formula uniform.
    sat = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1))
    np.cumsum(np.cumsum(padded, axis=0), axis=1, out=sat[1:, 1:])
    b = block_size
    window_sum = sat[b:, b:] - sat[:-b, b:] - sat[b:, :-b] + sat[:-b, :-b]
    return window_sum / (b * b) + centre


def local_threshold_surface(img, block_size, offset=0, method="mean"):
    r"""Threshold surface :math:`T(x, y)` of adaptive thresholding: a local mean minus ``offset``.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    block_size : int
        Odd side length :math:`b` of the square neighbourhood (3, 5, 7, ...).
    offset : float, optional
        Constant :math:`C` subtracted from the local mean. A positive offset lowers the threshold,
        so flat regions and pixels slightly darker than their surroundings become foreground; a
        negative offset keeps only pixels clearly brighter than their surroundings.
    method : {"mean", "gaussian"}, optional
        How the neighbourhood is averaged: "mean" weighs the :math:`b \times b` window equally;
        "gaussian" uses a Gaussian of :math:`\sigma = (b - 1) / 6`, so that :math:`\pm 3\sigma`
        spans the block, truncated at a radius of :math:`\lfloor 4\sigma + 0.5 \rfloor` pixels.

    Returns
    -------
    T : (H, W) ndarray of float
        The threshold of every pixel, with the image's float dtype (float64 for integer images).
        Equal, up to rounding, to ``skimage.filters.threshold_local(img, block_size, method,
        offset=offset)``.

    Raises
    ------
    SegeduInputError
        If ``img`` is not 2-D (e.g. a colour image), is empty or contains NaN, ``block_size`` is
        not a positive odd int, or ``method`` is unknown.
    SegeduTypeError
        If ``img`` is boolean or ``offset`` is not a real number.

    Notes
    -----
    With :math:`r = (b - 1)/2` and the image extended past its border by mirroring (``d c b a | a b
    c d``, numpy's ``"symmetric"`` padding, called ``"reflect"`` in scipy and skimage),

    .. math::

        T_{\text{mean}}(x, y) = \frac{1}{b^2} \sum_{|i| \le r} \sum_{|j| \le r} I(x+i, y+j) - C,
        \qquad
        T_{\text{gauss}}(x, y) = \sum_{i, j} g_i\, g_j\, I(x+i, y+j) - C,

    where :math:`g_i \propto e^{-i^2 / 2\sigma^2}` sums to 1. The mean is computed in constant time
    per pixel from a summed-area table (integral image) :math:`S(x, y) = \sum_{x' < x,\, y' < y}
    I(x', y')`: a window sum is :math:`S(x_1, y_1) - S(x_0, y_1) - S(x_1, y_0) + S(x_0, y_0)`. The
    Gaussian is separable, so it is applied as a 1-D blur along the rows and then along the columns.
    The computation runs in float64 and is cast to the image's dtype at the end.

    References
    ----------
    .. [1] Gonzalez, R. C. and Woods, R. E. "Digital Image Processing", 2nd edition.
           Prentice Hall, 2002: 600--612 (variable thresholding).
    .. [2] Crow, F. C. "Summed-Area Tables for Texture Mapping." SIGGRAPH 1984: 207--212.
           :DOI:`10.1145/800031.808600`

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((3, 3))
    >>> img[0, 0] = 9.0
    >>> local_threshold_surface(img, 3)  # the mirrored border repeats the bright corner
    array([[4., 2., 0.],
           [2., 1., 0.],
           [0., 0., 0.]])
    """
    arr = check_grey_image(img)
    block_size = check_odd_positive(block_size, "block_size")
    offset = check_real_scalar(offset, "offset")
    check_in(method, "method", _METHODS)
    x = arr.astype(np.float64)
    if block_size == 1:  # a 1×1 neighbourhood is the pixel itself, for both methods
        surface = x
    elif method == "mean":
        surface = _box_mean(x, block_size)
    else:
        surface = gaussian_blur(x, (block_size - 1) / 6.0)
    return (surface - offset).astype(arr.dtype, copy=False)


def adaptive_threshold(img, block_size, offset=0, method="mean"):
    r"""Adaptive (local) threshold: foreground where a pixel is brighter than its neighbourhood.

    Parameters
    ----------
    img : (H, W) array_like of float
        Grey image.
    block_size : int
        Odd side length :math:`b` of the square neighbourhood (3, 5, 7, ...).
    offset : float, optional
        Constant :math:`C` subtracted from the local mean before comparing (skimage's and OpenCV's
        sign convention): use a negative offset to keep only pixels that stand out above their
        neighbourhood by more than :math:`|C|`.
    method : {"mean", "gaussian"}, optional
        Plain or Gaussian-weighted local mean; see :func:`local_threshold_surface`.

    Returns
    -------
    mask : (H, W) ndarray of bool
        .. math::

            S(x, y) = \begin{cases} 1 & \text{if } I(x, y) > T(x, y) \\
                                    0 & \text{otherwise,} \end{cases}

        with :math:`T` from :func:`local_threshold_surface`. This equals
        ``img > skimage.filters.threshold_local(img, block_size, method, offset=offset)``, except
        possibly at pixels that tie with their threshold up to rounding (e.g. inside a perfectly
        flat region with ``offset=0``).

    Raises
    ------
    SegeduInputError
        If ``img`` is not 2-D (e.g. a colour image), is empty or contains NaN, ``block_size`` is
        not a positive odd int, or ``method`` is unknown.
    SegeduTypeError
        If ``img`` is boolean or ``offset`` is not a real number.

    Notes
    -----
    A single global threshold fails when the illumination varies across the image (a shadow over
    a page of text). Comparing each pixel with the mean of its own neighbourhood removes slowly
    varying illumination; the block must be larger than the objects, or their interiors fall
    below their own mean.

    References
    ----------
    .. [1] Gonzalez, R. C. and Woods, R. E. "Digital Image Processing", 2nd edition.
           Prentice Hall, 2002: 600--612 (variable thresholding).

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.linspace(0, 1, 7)[None, :].repeat(3, axis=0)  # illumination gradient
    >>> img = ramp.copy()
    >>> img[1, 2] += 0.2  # a faint bright spot
    >>> adaptive_threshold(img, 3, offset=-0.1).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]])
    """
    arr = check_grey_image(img)
    return arr > local_threshold_surface(arr, block_size, offset=offset, method=method)
