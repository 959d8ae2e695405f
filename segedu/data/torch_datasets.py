"""``torch.utils.data.Dataset`` views of the synthetic data, generated lazily per index.

This is the only module of :mod:`segedu.data` that imports torch; ``segedu.data`` loads it on first
access to one of its names.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch.utils.data import Dataset

from .._validation import SegeduTypeError, check_positive_int, check_seed, check_size
from .synthetic import _MIN_SIDE, DEFAULT_RADIUS, _check_num_classes, _check_radius, _generate

__all__ = ["ShapesDataset"]


class ShapesDataset(Dataset):
    """The synthetic shapes as a torch ``Dataset``: sample ``i`` is drawn when it is asked for.

    Item ``i`` holds the same pixels as ``shapes_dataset(n, size, num_classes, seed)`` at index
    ``i`` (and as ``shapes_sample(sample_seed(seed, i), ...)``), in torch layout. Nothing is stored,
    so ``n`` can be large, and every epoch sees the same samples.

    Parameters
    ----------
    n : int
        Number of samples.
    size : (int, int) or int
        ``(height, width)``, as in :func:`segedu.data.shapes_sample`.
    num_classes : int
        Number of classes including the background (2 to 8).
    seed : int
        Dataset seed; use a different one for each split.
    transform : callable, optional
        Called as ``transform(image, labels)`` on the tensors and must return the pair
        ``(image, labels)``; a *joint* transform, so that a flip or a crop moves image and mask
        together.
    max_shapes : int
        At most this many shapes per image.
    radius : (float, float)
        Range of a shape's radius as fractions of the shorter side, as in
        :func:`segedu.data.shapes_sample` (default ``(0.11, 0.22)``).

    Returns
    -------
    Each item is ``(image, labels)``: a float32 tensor of shape ``(3, H, W)`` with values in
    ``[0, 1]``, and an int64 tensor of shape ``(H, W)`` with class ids.

    Examples
    --------
    >>> from torch.utils.data import DataLoader
    >>> from segedu.data import ShapesDataset
    >>> ds = ShapesDataset(10, size=(32, 32), num_classes=4, seed=0)
    >>> image, labels = ds[0]
    >>> tuple(image.shape), image.dtype, tuple(labels.shape), labels.dtype
    ((3, 32, 32), torch.float32, (32, 32), torch.int64)
    >>> x, y = next(iter(DataLoader(ds, batch_size=4)))
    >>> tuple(x.shape), tuple(y.shape)
    ((4, 3, 32, 32), (4, 32, 32))
    """

    def __init__(self, n, size=(64, 64), num_classes=4, seed=0, transform=None, max_shapes=4, radius=DEFAULT_RADIUS):
        self.n = check_positive_int(n, "n", minimum=1)
        self.size = check_size(size, "size", minimum=_MIN_SIDE)
        self.num_classes = _check_num_classes(num_classes)
        self.seed = check_seed(seed, allow_none=False)
        self.max_shapes = check_positive_int(max_shapes, "max_shapes", minimum=1)
        self.radius = _check_radius(radius)
        if transform is not None and not callable(transform):
            raise SegeduTypeError(
                f"transform must be a function transform(image, labels) -> (image, labels) or None, "
                f"but got {transform!r}."
            )
        self.transform = transform

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index):
        if isinstance(index, torch.Tensor) and index.numel() == 1:
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise SegeduTypeError(f"ShapesDataset index must be an int, but got {index!r}.")
        asked = int(index)
        index = asked + self.n if asked < 0 else asked
        if not 0 <= index < self.n:
            raise IndexError(f"ShapesDataset index {asked} is out of range for a dataset of {self.n} samples.")
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        image, labels = _generate(rng, *self.size, self.num_classes, self.max_shapes, self.radius)
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        labels = torch.from_numpy(labels)
        if self.transform is not None:
            image, labels = self.transform(image, labels)
        return image, labels

    def __repr__(self) -> str:
        return (
            f"ShapesDataset(n={self.n}, size={self.size}, num_classes={self.num_classes}, "
            f"seed={self.seed}, max_shapes={self.max_shapes}"
            + ("" if self.radius == DEFAULT_RADIUS else f", radius={self.radius}")
            + ")"
        )
