r"""The one sampled Gaussian of :mod:`segedu.classical`, shared by thresholding and edges.

Everything here follows ``scipy.ndimage.gaussian_filter`` (``mode="reflect"``, ``truncate=4.0``):

* the kernel is :math:`g_i \propto e^{-i^2 / 2\sigma^2}` for :math:`|i| \le \lfloor 4\sigma + 0.5
  \rfloor`, normalised to sum 1;
* the border is mirrored about the image's edge (``d c b a | a b c d``, numpy's ``"symmetric"``);
* a 2-D blur is a 1-D pass along the rows (axis 1) followed by one along the columns (axis 0).

Inputs are ``H×W`` float64 arrays that the public functions have already checked.

>>> import numpy as np
>>> from scipy import ndimage
>>> img = np.random.default_rng(0).random((7, 9))
>>> bool(np.allclose(gaussian_blur(img, 1.5), ndimage.gaussian_filter(img, 1.5), atol=1e-12))
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_kernels1d", "correlate1d", "gaussian_blur"]


def gaussian_kernels1d(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Sampled 1-D Gaussian ``g`` and its second derivative ``g2``, truncated at ``int(4 sigma + 0.5)``.

    ``g`` sums to 1; ``g2`` is :math:`g(x) (x^2 - \sigma^2) / \sigma^4` with that normalised ``g``,
    as in ``scipy.ndimage.gaussian_filter1d(order=2)``. ``sigma`` must be greater than 0.

    >>> g, g2 = gaussian_kernels1d(1.0)
    >>> g.size, round(float(g.sum()), 12)
    (9, 1.0)
    """
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * x**2 / sigma**2)
    g /= g.sum()
    g2 = g * (x**2 - sigma**2) / sigma**4
    return g, g2


def correlate1d(x: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Correlate float64 ``x`` along ``axis`` with an odd, centred 1-D kernel and a mirrored border."""
    r = weights.size // 2
    n = x.shape[axis]
    pad = ((r, r), (0, 0)) if axis == 0 else ((0, 0), (r, r))
    padded = np.pad(x, pad, mode="symmetric")
    out = np.zeros(x.shape, dtype=np.float64)
    for k, wk in enumerate(weights):  # one vectorised multiply-add per weight, never a loop over pixels
        out += wk * (padded[k : k + n, :] if axis == 0 else padded[:, k : k + n])
    return out


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of float64 ``x``: rows first, then columns; ``sigma == 0`` copies ``x``."""
    if sigma <= 0:
        return np.array(x, dtype=np.float64, copy=True)
    g, _ = gaussian_kernels1d(sigma)
    return correlate1d(correlate1d(x, g, axis=1), g, axis=0)
