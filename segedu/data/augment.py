r"""Joint augmentation of an image, its label mask and its weight map, with torchvision transforms v2.

U-Net was trained on 30 images (Ronneberger et al. 2015, arXiv:1505.04597); what made that
possible is augmentation: random flips, rotations and, above all, *elastic deformations*, which
bend the tissue the way real cells bend. Every geometric change must move the image, the mask and
the weight map **identically**, or the network learns from labels that no longer sit on their
pixels. torchvision's transforms v2 do this by type: one call of a v2 transform draws its random
parameters once and applies them to every input, and it resamples a
:class:`torchvision.tv_tensors.Image` with the chosen interpolation but a
:class:`torchvision.tv_tensors.Mask` with nearest neighbour, so class and instance ids stay ids
(no "1.5" between labels 1 and 2).

The pipeline of :func:`joint_augment`, in order, each step applied to all three arrays at once:

1. horizontal flip with probability 1/2 (``v2.RandomHorizontalFlip``);
2. vertical flip with probability 1/2 (``v2.RandomVerticalFlip``);
3. a rotation by :math:`k \cdot 90°`, :math:`k` uniform in 0..3 (only 0 or 2 for a non-square
   image, which a quarter turn would not fit) (:class:`RandomRot90`, exact: ``torch.rot90``);
4. with probability ``elastic_p``, ``v2.ElasticTransform(alpha, sigma)``: a random displacement
   field :math:`\Delta(x) = \tfrac{\alpha}{2}\,(G_\sigma * u)(x)` in pixels, where the components of
   :math:`u` are uniform in :math:`[-1, 1]` and :math:`G_\sigma` is a Gaussian of standard deviation
   ``sigma`` pixels (Simard et al. 2003). The factor is :math:`\alpha/2`, not :math:`\alpha`:
   torchvision scales the noise by :math:`\alpha / W` (:math:`\alpha / H` vertically) in the
   normalised coordinates of ``grid_sample``, which span 2 over the :math:`W` pixels of a row
   (the :math:`H` of a column). The output at :math:`x` is the
   input at :math:`x + \Delta(x)`. Pixels pulled from outside the image
   get 0: image 0, label 0 (background) and weight 0 (those pixels do not count in the loss).

The weight map travels as a second channel of the :class:`~torchvision.tv_tensors.Image`, so it is
resampled exactly like the image (a smooth map stays smooth).

Seeding: v2 transforms draw from torch's global generator. :class:`JointAugment` draws inside
``torch.random.fork_rng``, seeded from ``numpy.random.SeedSequence([seed, n])`` for its ``n``-th
call (or from an explicit ``seed=`` of the call), so a run is reproducible and the caller's global
torch random state is left untouched.

Examples
--------
>>> import numpy as np
>>> from segedu.data import touching_cells
>>> from segedu.data.augment import joint_augment
>>> image, labels = touching_cells(seed=0)
>>> augment = joint_augment(seed=0)
>>> x, y, w = augment(image, labels, weight=np.ones_like(image))
>>> tuple(x.shape), x.dtype, tuple(y.shape), y.dtype, tuple(w.shape)
((1, 64, 64), torch.float32, (64, 64), torch.int64, (64, 64))
>>> set(y.unique().tolist()) <= set(np.unique(labels).tolist())  # ids stay ids
True
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from .._validation import (
    SegeduInputError,
    SegeduTypeError,
    as_array,
    check_real_scalar,
    check_seed,
)

__all__ = ["RandomRot90", "JointAugment", "joint_augment", "AugmentedTiles"]


class RandomRot90(v2.Transform):
    """Rotate every input by the same random multiple of 90° (``torch.rot90`` on the last two axes).

    A quarter turn swaps height and width; for a non-square input only 0° and 180° are drawn.
    Exact for every type (no interpolation), so masks keep their ids.

    Examples
    --------
    >>> import torch
    >>> from torchvision import tv_tensors
    >>> from segedu.data.augment import RandomRot90
    >>> _ = torch.manual_seed(0)
    >>> image = tv_tensors.Image(torch.arange(4.0).reshape(1, 2, 2))
    >>> mask = tv_tensors.Mask(torch.arange(4).reshape(2, 2))
    >>> out_image, out_mask = RandomRot90()(image, mask)
    >>> bool((out_image[0] == out_mask).all())
    True
    """

    _transformed_types = (tv_tensors.Image, tv_tensors.Mask)

    def make_params(self, flat_inputs):
        shapes = {tuple(inpt.shape[-2:]) for inpt in flat_inputs if isinstance(inpt, torch.Tensor)}
        square = all(h == w for h, w in shapes)
        k = int(torch.randint(0, 4, ()).item()) if square else 2 * int(torch.randint(0, 2, ()).item())
        return {"k": k}

    def transform(self, inpt, params):
        if params["k"] == 0:
            return inpt
        out = torch.rot90(inpt.as_subclass(torch.Tensor), params["k"], dims=(-2, -1))
        return tv_tensors.wrap(out, like=inpt)

    # torchvision < 0.21 names the two hooks with a leading underscore
    def _get_params(self, flat_inputs):  # pragma: no cover - old torchvision
        return self.make_params(flat_inputs)

    def _transform(self, inpt, params):  # pragma: no cover - old torchvision
        return self.transform(inpt, params)


def _as_image(image) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        x = image.detach()
    else:
        x = torch.from_numpy(np.ascontiguousarray(as_array(image, "image")))
    if x.dtype == torch.bool or not x.is_floating_point():
        raise SegeduTypeError(
            f"image must hold floats (e.g. values in [0, 1]), but has dtype {x.dtype}. "
            f"Convert it with skimage.util.img_as_float(image) (numpy) or image.float() / 255 (a 0..255 tensor)."
        )
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise SegeduInputError(
            f"image must be H×W or C×H×W (channels first), but has shape {tuple(x.shape)}. "
            f"For an H×W×C numpy image pass image.transpose(2, 0, 1)."
        )
    return x


def _as_mask(mask, shape) -> torch.Tensor:
    if isinstance(mask, torch.Tensor):
        m = mask.detach()
    else:
        m = torch.from_numpy(np.ascontiguousarray(as_array(mask, "mask")))
    if m.dtype == torch.bool:
        m = m.long()
    if m.is_floating_point() or m.is_complex():
        raise SegeduTypeError(
            f"mask must be an integer label map (class or instance ids), but has dtype {m.dtype}. "
            f"Convert it with mask.astype(np.int64) (numpy) or mask.long() (torch); a float mask would be "
            f"interpolated into values between the labels."
        )
    if tuple(m.shape) != tuple(shape):
        raise SegeduInputError(
            f"mask must be H×W with the image's height and width {tuple(shape)}, but has shape {tuple(m.shape)}. "
            f"Drop a channel axis with mask[0] or mask.squeeze(0)."
        )
    return m.long()


def _as_weight(weight, shape, dtype) -> torch.Tensor:
    if isinstance(weight, torch.Tensor):
        w = weight.detach()
    else:
        w = torch.from_numpy(np.ascontiguousarray(as_array(weight, "weight")))
    if not w.is_floating_point():
        raise SegeduTypeError(
            f"weight must be a float map (one loss weight per pixel), but has dtype {w.dtype}. "
            f"Convert it with weight.astype(np.float32)."
        )
    if tuple(w.shape) != tuple(shape):
        raise SegeduInputError(
            f"weight must be H×W with the image's height and width {tuple(shape)}, but has shape "
            f"{tuple(w.shape)}; compute it from the same label map, e.g. unet_weight_map(labels)."
        )
    return w.to(dtype)


def _torch_seed(seed_sequence: np.random.SeedSequence) -> int:
    return int(seed_sequence.generate_state(1, dtype=np.uint64)[0] & np.uint64(2**63 - 1))


class JointAugment:
    """A seeded, joint image/mask/weight-map augmentation; make it with :func:`joint_augment`.

    Attributes
    ----------
    transform : torchvision.transforms.v2.Compose
        The v2 pipeline (flips, :class:`RandomRot90`, elastic), called on ``(Image, Mask)``.
    seed : int
        Base seed; call ``n`` (counted from 0) uses ``SeedSequence([seed, n])``.
    calls : int
        How many calls without an explicit ``seed`` were made so far.
    """

    def __init__(self, transform, seed: int):
        self.transform = transform
        self.seed = seed
        self.calls = 0

    def __repr__(self) -> str:
        return f"JointAugment(seed={self.seed}, transform={self.transform})"

    def __call__(self, image, mask, weight=None, seed=None):
        """Augment ``image``, ``mask`` and (optionally) ``weight`` with the same random draws.

        Parameters
        ----------
        image : array_like or Tensor, float, ``(H, W)`` or ``(C, H, W)``
        mask : array_like or Tensor, int, ``(H, W)``
            Class ids or instance ids; resampled with nearest neighbour.
        weight : array_like or Tensor, float, ``(H, W)``, optional
            Per-pixel loss weights; resampled like the image.
        seed : int or numpy.random.SeedSequence, optional
            Use this seed for this call instead of the next one of the sequence (the counter is
            then not advanced).

        Returns
        -------
        image : Tensor ``(C, H, W)``, the input's float dtype
        mask : Tensor ``(H, W)``, int64
        weight : Tensor ``(H, W)`` of the image's dtype, or None when no weight was given

        Height and width are those of the input (quarter turns are drawn only for square inputs).
        """
        x = _as_image(image)
        m = _as_mask(mask, x.shape[-2:])
        channels = x.shape[0]
        if weight is not None:
            x = torch.cat([x, _as_weight(weight, x.shape[-2:], x.dtype)[None]], dim=0)
        if seed is None:
            sequence = np.random.SeedSequence([self.seed, self.calls])
            self.calls += 1
        elif isinstance(seed, np.random.SeedSequence):
            sequence = seed
        else:
            sequence = np.random.SeedSequence(check_seed(seed, allow_none=False))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_torch_seed(sequence))
            out_image, out_mask = self.transform(tv_tensors.Image(x), tv_tensors.Mask(m))
        out_image = out_image.as_subclass(torch.Tensor)
        out_mask = out_mask.as_subclass(torch.Tensor)
        out_weight = out_image[channels] if weight is not None else None
        return out_image[:channels], out_mask, out_weight


def joint_augment(seed=0, flips: bool = True, rotate90: bool = True, elastic_p: float = 0.5,
                  elastic_alpha: float = 20.0, elastic_sigma: float = 4.0,
                  interpolation: str = "bilinear") -> JointAugment:
    r"""A seeded augmentation that moves image, mask and weight map together (see the module text).

    Parameters
    ----------
    seed : int
        Base seed (non-negative). The ``n``-th call draws from ``SeedSequence([seed, n])``.
    flips : bool
        Random horizontal and vertical flips, each with probability 1/2.
    rotate90 : bool
        A random rotation by a multiple of 90° (:class:`RandomRot90`).
    elastic_p : float
        Probability in :math:`[0, 1]` of an elastic deformation; 0 switches it off.
    elastic_alpha : float
        Strength :math:`\alpha` of the displacement (``v2.ElasticTransform``'s ``alpha``): the
        smoothed noise is scaled to :math:`\alpha/2` pixels (see the module text).
        torchvision's default 50 is strong for 64-pixel tiles; 10--30 bends cells
        without tearing them.
    elastic_sigma : float
        Smoothness :math:`\sigma` of the displacement field, in pixels (> 0).
    interpolation : {"bilinear", "nearest"}
        How the image and weight map are resampled by the elastic step (the mask is always
        nearest). "nearest" is for tests and for label-like images.

    Returns
    -------
    JointAugment
        Call it as ``augment(image, mask, weight=None)``.

    References
    ----------
    .. [1] Ronneberger, O., Fischer, P., Brox, T. "U-Net: Convolutional Networks for Biomedical
           Image Segmentation." MICCAI 2015. arXiv:1505.04597
    .. [2] Simard, P. Y., Steinkraus, D., Platt, J. C. "Best Practices for Convolutional Neural
           Networks Applied to Visual Document Analysis." ICDAR 2003.

    Examples
    --------
    >>> import torch
    >>> from segedu.data.augment import joint_augment
    >>> mask = torch.zeros(32, 32, dtype=torch.long)
    >>> mask[4:12, 6:20] = 3
    >>> augment = joint_augment(seed=1, interpolation="nearest")
    >>> x, y, _ = augment(mask.float(), mask)      # the image *is* the mask
    >>> bool((x[0] == y).all())                     # ...and still is after augmentation
    True
    """
    seed = check_seed(seed, allow_none=False)
    elastic_p = check_real_scalar(elastic_p, "elastic_p", minimum=0.0)
    if elastic_p > 1:
        raise SegeduInputError(f"elastic_p is a probability and must be at most 1, but got {elastic_p}.")
    elastic_alpha = check_real_scalar(elastic_alpha, "elastic_alpha", minimum=0.0)
    elastic_sigma = check_real_scalar(elastic_sigma, "elastic_sigma", minimum=0.0, strict=True)
    modes = {"bilinear": v2.InterpolationMode.BILINEAR, "nearest": v2.InterpolationMode.NEAREST}
    if interpolation not in modes:
        raise SegeduInputError(f"interpolation must be 'bilinear' or 'nearest', but got {interpolation!r}.")
    for name, flag in (("flips", flips), ("rotate90", rotate90)):
        if not isinstance(flag, bool):
            raise SegeduTypeError(f"{name} must be True or False, but got {flag!r}.")
    steps = []
    if flips:
        steps += [v2.RandomHorizontalFlip(p=0.5), v2.RandomVerticalFlip(p=0.5)]
    if rotate90:
        steps.append(RandomRot90())
    if elastic_p > 0:
        elastic = v2.ElasticTransform(alpha=elastic_alpha, sigma=elastic_sigma, interpolation=modes[interpolation],
                                      fill=0)
        steps.append(v2.RandomApply([elastic], p=elastic_p))
    return JointAugment(v2.Compose(steps) if steps else v2.Identity(), seed)


class AugmentedTiles(Dataset):
    """Image tiles with their label masks (and weight maps), augmented jointly on every access.

    Parameters
    ----------
    images : array_like, float, ``(N, H, W)`` or ``(N, C, H, W)``
        E.g. the first output of :func:`segedu.data.nuclei_tiles`.
    labels : array_like, int, ``(N, H, W)``
        The training target of each tile: class ids (e.g. ``foreground_mask(instances)`` as int)
        or instance ids.
    weights : array_like, float, ``(N, H, W)``, optional
        Per-pixel loss weights (e.g. :func:`segedu.losses.unet_weight_map` of the instance labels),
        moved with the image.
    transform : JointAugment or callable, optional
        Called as ``transform(image, mask, weight, seed=...)``; default ``joint_augment(seed)``.
        Pass ``augment=False`` for the tiles as they are (a test set).
    seed : int
        Access number ``r`` of tile ``i`` (counted per tile from 0) uses
        ``SeedSequence([seed, i, r])``, so every epoch sees new deformations and a rerun with
        the same seed the same ones (with ``num_workers=0``; each worker keeps its own counters).
    augment : bool
        False: no augmentation.

    Returns
    -------
    Each item is ``(image, target)`` or, with ``weights``, ``(image, target, weight)``: float
    ``(C, H, W)`` (``C = 1`` for ``(N, H, W)`` images), int64 ``(H, W)``, float ``(H, W)``, the
    layout :func:`segedu.training.train_segmentation` takes.

    Examples
    --------
    >>> from segedu.data import nuclei_tiles, foreground_mask
    >>> from segedu.data.augment import AugmentedTiles
    >>> images, instances = nuclei_tiles("train", tile=64)
    >>> ds = AugmentedTiles(images, foreground_mask(instances).astype("int64"), seed=0)
    >>> x, y = ds[0]
    >>> tuple(x.shape), x.dtype, tuple(y.shape), y.dtype, len(ds)
    ((1, 64, 64), torch.float32, (64, 64), torch.int64, 32)
    """

    def __init__(self, images, labels, weights=None, transform=None, seed: int = 0, augment: bool = True):
        images = as_array(images, "images")
        labels = as_array(labels, "labels")
        if images.ndim not in (3, 4):
            raise SegeduInputError(
                f"images must be N×H×W or N×C×H×W, but have shape {images.shape}. A single image needs a "
                f"leading axis: images[None]."
            )
        if labels.ndim != 3 or labels.shape[0] != images.shape[0] or labels.shape[1:] != images.shape[-2:]:
            raise SegeduInputError(
                f"labels must be N×H×W matching the images {images.shape}, but have shape {labels.shape}."
            )
        if weights is not None:
            weights = as_array(weights, "weights")
            if weights.shape != labels.shape:
                raise SegeduInputError(
                    f"weights must have the labels' shape {labels.shape}, but have {weights.shape}: one weight "
                    f"per pixel, e.g. np.stack([unet_weight_map(l) for l in instances])."
                )
        self.images, self.labels, self.weights = images, labels, weights
        self.seed = check_seed(seed, allow_none=False)
        if not isinstance(augment, bool):
            raise SegeduTypeError(f"augment must be True or False, but got {augment!r}.")
        self.augment = augment
        self.transform = transform if transform is not None else joint_augment(self.seed)
        self._draws = np.zeros(len(images), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise SegeduTypeError(f"index must be an int, but got {index!r}.")
        index = int(index)
        if index < 0:
            index += len(self)
        weight = None if self.weights is None else self.weights[index]
        if self.augment:
            sequence = np.random.SeedSequence([self.seed, index, int(self._draws[index])])
            self._draws[index] += 1
            image, target, weight = self.transform(self.images[index], self.labels[index], weight, seed=sequence)
        else:
            image = _as_image(self.images[index])
            target = _as_mask(self.labels[index], image.shape[-2:])
            if weight is not None:
                weight = _as_weight(weight, image.shape[-2:], image.dtype)
        if self.weights is None:
            return image, target
        return image, target, weight
