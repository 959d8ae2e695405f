"""Classical (non-learned) segmentation: thresholds, edges and regions.

The functions take numpy ``H×W`` float images (``H×W×C`` where colour is needed) and ``(row, col)``
coordinates, and return arrays of the input's shape. Each topic lives in its own module; the public
functions are re-exported here, so ``from segedu.classical import otsu_threshold`` works.
"""

from __future__ import annotations

from .thresholding import adaptive_threshold, local_threshold_surface, otsu_threshold, threshold

__all__ = [
    # thresholding
    "threshold",
    "otsu_threshold",
    "adaptive_threshold",
    "local_threshold_surface",
]
