"""Classical (non-learned) segmentation: thresholds, edges and regions.

The functions take numpy ``H×W`` float images (``H×W×C`` where colour is needed) and ``(row, col)``
coordinates, and return arrays of the input's shape. Each topic lives in its own module; the public
functions are re-exported here, so ``from segedu.classical import otsu_threshold`` works.
"""

from __future__ import annotations

from .edges import (
    LAPLACE_4,
    LAPLACE_8,
    PREWITT_X,
    PREWITT_Y,
    ROBERTS_X,
    ROBERTS_Y,
    SOBEL_X,
    SOBEL_Y,
    canny,
    convolve2d,
    correlate2d,
    gaussian_smooth,
    gradient_direction,
    gradient_magnitude,
    hysteresis_threshold,
    laplacian,
    log_filter,
    non_maximum_suppression,
    prewitt,
    roberts,
    sobel,
)
from .regions import (
    connected_components,
    distance_transform_watershed,
    kmeans_segment,
    quadtree_split,
    region_grow,
    split_and_merge,
)
from .thresholding import (
    adaptive_threshold,
    local_threshold_surface,
    otsu_threshold,
    threshold,
)

__all__ = [
    # thresholding
    "threshold",
    "otsu_threshold",
    "adaptive_threshold",
    "local_threshold_surface",
    # edges
    "correlate2d",
    "convolve2d",
    "SOBEL_X",
    "SOBEL_Y",
    "PREWITT_X",
    "PREWITT_Y",
    "ROBERTS_X",
    "ROBERTS_Y",
    "LAPLACE_4",
    "LAPLACE_8",
    "sobel",
    "prewitt",
    "roberts",
    "gradient_magnitude",
    "gradient_direction",
    "laplacian",
    "gaussian_smooth",
    "log_filter",
    "non_maximum_suppression",
    "hysteresis_threshold",
    "canny",
    # regions
    "region_grow",
    "quadtree_split",
    "split_and_merge",
    "kmeans_segment",
    "connected_components",
    "distance_transform_watershed",
]
