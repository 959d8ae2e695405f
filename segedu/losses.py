r"""Losses for binary and multi-class segmentation, and U-Net's border weight map.

A segmentation network outputs logits :math:`z`; with :math:`p = \sigma(z)` the predicted
probability of foreground and :math:`y \in \{0, 1\}` the target, the losses of unit 06 are:

**Binary cross-entropy** (:func:`bce_loss`), optionally weighted per pixel by a map :math:`w`,

.. math:: \mathrm{BCE} = \frac{1}{|\Omega|} \sum_{x \in \Omega} -w(x)\,\bigl[y \log p + (1 - y) \log(1 - p)\bigr].

U-Net (Ronneberger et al. 2015) uses the weighted form with the map of :func:`unet_weight_map`,
which balances the classes and makes the thin background gaps between touching cells expensive:

.. math:: w(x) = w_c(x) + w_0 \exp\Bigl(-\frac{(d_1(x) + d_2(x))^2}{2\sigma^2}\Bigr),

where :math:`d_1` and :math:`d_2` are the distances to the nearest and the second-nearest cell.

**Focal loss** (:func:`focal_loss`, Lin et al. 2017) scales the cross-entropy by
:math:`(1 - p_t)^\gamma`, so that easy pixels (:math:`p_t \to 1`) count less, and weights the classes
with :math:`\alpha_t`:

.. math::
   p_t = p\,y + (1 - p)(1 - y), \quad \alpha_t = \alpha\,y + (1 - \alpha)(1 - y), \quad
   \mathrm{FL} = -\alpha_t\,(1 - p_t)^\gamma \log p_t .

:math:`\gamma = 0` and :math:`\alpha < 0` (no class weight) give back the plain cross-entropy.

**Dice loss** (:func:`dice_loss`, Milletari et al. 2016) measures overlap instead of per-pixel
errors, so a small object counts as much as a large one; the smoothing :math:`s` keeps it defined
(and 0) when the target and the prediction are both empty:

.. math:: \mathrm{Dice} = 1 - \frac{2 \sum y p + s}{\sum y + \sum p + s}.

:func:`combined_loss` sums the three, as many segmentation codes do (SAM uses focal and Dice 20:1).
:func:`sam_loss` is SAM's loss for :math:`M` masks per prompt: the minimum over the masks of
20·focal + Dice, plus the squared error of the predicted IoUs [4].
:func:`weighted_cross_entropy` is the multi-class (softmax) version of the weighted BCE.

Conventions
-----------
- ``logits`` and ``target`` of the binary losses have the same shape; the first axis counts the
  samples (``(N, H, W)``, ``(N, 1, H, W)`` or ``(N, C, H, W)`` with a one-hot target). Sums of the
  Dice loss run over all the other axes, so a multi-channel input gives one Dice per sample over
  all its channels.
- ``target`` is a floating-point tensor of 0s and 1s. Integer tensors, 0/255 masks, RGB masks and
  missing channel axes are refused with the fix
  (:func:`segedu._validation.check_binary_target`).
- The losses keep the dtype and device of the logits (float64 in, float64 out).

References
----------
.. [1] Ronneberger, O., Fischer, P. and Brox, T. "U-Net: Convolutional Networks for Biomedical
       Image Segmentation." MICCAI 2015. arXiv:1505.04597
.. [2] Lin, T.-Y., Goyal, P., Girshick, R., He, K. and Dollár, P. "Focal Loss for Dense Object
       Detection." ICCV 2017. arXiv:1708.02002
.. [3] Milletari, F., Navab, N. and Ahmadi, S.-A. "V-Net: Fully Convolutional Neural Networks for
       Volumetric Medical Image Segmentation." 3DV 2016. arXiv:1606.04797
.. [4] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643

Examples
--------
>>> import torch
>>> from segedu.losses import dice_loss, focal_loss, bce_loss
>>> target = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
>>> logits = 10 * (2 * target - 1)  # confident and right
>>> round(dice_loss(logits, target).item(), 4), round(bce_loss(logits, target).item(), 4)
(0.0, 0.0)
>>> round(focal_loss(-logits, target).item(), 3)  # confident and wrong: mean of alpha_t * 10, alpha_t 0.25 or 0.75
5.0
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._validation import (
    SegeduInputError,
    SegeduTypeError,
    _describe,
    _is_torch_tensor,
    check_binary_target,
    check_in,
    check_instance_labels,
    check_label_map,
    check_real_scalar,
)

__all__ = [
    "dice_loss",
    "focal_loss",
    "bce_loss",
    "combined_loss",
    "weighted_cross_entropy",
    "unet_weight_map",
    "unet_weight_map_reference",
    "sam_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_samples(logits, name="logits"):
    if logits.ndim < 2:
        raise SegeduInputError(
            f"{name} must have a sample axis first and at least one more axis, e.g. (N, H, W) or (N, 1, H, W), "
            f"but it has shape {tuple(logits.shape)}. For one image add the sample axis with {name}[None]."
        )


def _binary_target(target, logits) -> torch.Tensor:
    """The checked target, in the logits' dtype (0 and 1 are exact in every float dtype)."""
    target = check_binary_target(target, logits)
    if target.device != logits.device:
        # torch would say only "Expected all tensors to be on the same device"; a target is never moved silently
        raise SegeduInputError(
            f"target is on {target.device}, but logits are on {logits.device}. Move the target with "
            f"target.to(logits.device) (the batch loop usually moves both: x.to(device), y.to(device))."
        )
    return target.to(logits.dtype)


def _as_weight(weight, like: torch.Tensor, name: str = "weight") -> torch.Tensor:
    """A per-pixel weight map as a tensor of ``like``'s shape, dtype and device (numpy maps accepted)."""
    if isinstance(weight, np.ndarray):
        weight = torch.from_numpy(weight)
    if not _is_torch_tensor(weight):
        raise SegeduTypeError(
            f"{name} must be a torch.Tensor or a numpy array of per-pixel weights, but got {_describe(weight)}."
        )
    if tuple(weight.shape) != tuple(like.shape):
        hint = ""
        if weight.ndim + 1 == like.ndim and like.ndim >= 3 and like.shape[1] == 1:
            hint = f" Add the channel axis with {name}[:, None]."
        elif weight.ndim + 1 == like.ndim and tuple(weight.shape) == tuple(like.shape[1:]):
            hint = f" Add the sample axis with {name}[None] (one map per sample)."
        raise SegeduInputError(
            f"{name} must have the shape of the logits, {tuple(like.shape)}, but it has shape "
            f"{tuple(weight.shape)}.{hint}"
        )
    weight = weight.to(dtype=like.dtype, device=like.device)
    if weight.device.type != "meta" and weight.numel() and bool((weight < 0).any() | ~torch.isfinite(weight).all()):
        raise SegeduInputError(
            f"{name} must hold finite non-negative weights, but its smallest value is {weight.min().item()}. "
            f"Check how the map was computed (unet_weight_map gives values >= 1)."
        )
    return weight


# ----------------------------------------------------------------------------------------------
def dice_loss(logits, target, smooth=1.0) -> torch.Tensor:
    r"""Soft Dice loss, averaged over samples: :math:`1 - \frac{2\sum yp + s}{\sum y + \sum p + s}`.

    Parameters
    ----------
    logits : torch.Tensor
        Raw scores, shape ``(N, ...)``: the first axis counts samples, e.g. ``(N, 1, H, W)``.
    target : torch.Tensor
        Floating-point 0/1 tensor of the same shape.
    smooth : float
        :math:`s \ge 0`, added to the numerator and the denominator (default 1, as in seeds 000
        and 001). It makes the loss of an empty target predicted empty 0, not 0/0.

    Returns
    -------
    torch.Tensor
        A scalar: the mean over the :math:`N` samples of each sample's Dice loss, with
        :math:`p = \sigma(\text{logits})` and the sums over all axes but the first.

    References
    ----------
    Milletari, Navab and Ahmadi, "V-Net", 3DV 2016, equation 1 (without the squares in the
    denominator, as most code computes it). arXiv:1606.04797

    Examples
    --------
    >>> import torch
    >>> empty = torch.zeros(1, 1, 4, 4)
    >>> dice_loss(torch.full((1, 1, 4, 4), -20.0), empty).item() < 1e-6  # empty and predicted empty
    True
    >>> round(dice_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)).item(), 4)  # p = 0.5: 1 - 5/7
    0.2857
    """
    target = _binary_target(target, logits)  # the loss has the logits' dtype
    _check_samples(logits)
    smooth = check_real_scalar(smooth, "smooth", minimum=0.0)
    return _dice_per_sample(logits, target, smooth).mean()


def _dice_per_sample(logits: torch.Tensor, target: torch.Tensor, smooth: float) -> torch.Tensor:
    """The soft Dice loss of each sample (sums over all axes but the first); inputs already checked."""
    p = torch.sigmoid(logits).flatten(1)
    y = target.flatten(1)
    intersection = (p * y).sum(1)
    dice = (2 * intersection + smooth) / (y.sum(1) + p.sum(1) + smooth)
    return 1 - dice


def focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean") -> torch.Tensor:
    r"""Sigmoid focal loss :math:`-\alpha_t (1 - p_t)^\gamma \log p_t`, as ``torchvision.ops.sigmoid_focal_loss``.

    Parameters
    ----------
    logits, target : torch.Tensor
        Same shape; ``target`` floating-point 0/1.
    alpha : float
        Weight of the foreground class in :math:`[0, 1]` (background gets :math:`1 - \alpha`);
        a negative value switches the class weight off, as in torchvision. Default 0.25 (Lin et al.).
    gamma : float
        Focusing exponent :math:`\gamma \ge 0` (default 2); 0 gives the :math:`\alpha`-weighted BCE.
    reduction : {"mean", "sum", "none"}
        Mean or sum over all elements, or the per-element loss. The default is ``"mean"`` (note that
        torchvision's default is ``"none"``).

    Notes
    -----
    :math:`-\log p_t` is computed as ``binary_cross_entropy_with_logits``, which is stable for
    large logits; :math:`\gamma` multiplies the *modulating* term :math:`(1 - p_t)`, not the
    cross-entropy, and :math:`\alpha` goes with the foreground (:math:`y = 1`).

    Unlike torchvision, the target must hold only 0s and 1s (a 0/255 or label-valued target is
    refused with its fix) and :math:`\alpha > 1` is refused; on valid input the two agree.

    References
    ----------
    Lin, Goyal, Girshick, He and Dollár, "Focal Loss for Dense Object Detection", ICCV 2017,
    equation 5. arXiv:1708.02002

    Examples
    --------
    >>> import torch
    >>> logits, target = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    >>> import torchvision
    >>> bool(torch.isclose(focal_loss(logits, target),
    ...                    torchvision.ops.sigmoid_focal_loss(logits, target, reduction="mean")))
    True
    """
    target = _binary_target(target, logits)  # the loss has the logits' dtype
    alpha = check_real_scalar(alpha, "alpha")
    if alpha > 1:
        raise SegeduInputError(
            f"alpha is the weight of the foreground class and must lie in [0, 1] (or be negative to switch the "
            f"weighting off), but got {alpha}. Lin et al. use 0.25."
        )
    gamma = check_real_scalar(gamma, "gamma", minimum=0.0)
    check_in(reduction, "reduction", _REDUCTIONS)
    return _reduce(_focal_per_element(logits, target, alpha, gamma), reduction)


def _focal_per_element(logits: torch.Tensor, target: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """The focal loss of every element; inputs already checked."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        alpha_t = alpha * target + (1 - alpha) * (1 - target)
        loss = alpha_t * loss
    return loss


def bce_loss(logits, target, weight=None, reduction="mean") -> torch.Tensor:
    r"""Binary cross-entropy on logits, optionally weighted per pixel (U-Net's weighted loss).

    Equal to ``F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction=...)``;
    the checks around it catch the usual target mistakes (integer, 0/255, RGB, missing axis).

    Parameters
    ----------
    logits, target : torch.Tensor
        Same shape; ``target`` floating-point 0/1.
    weight : torch.Tensor or numpy.ndarray, optional
        Per-pixel weights of the same shape, e.g. ``torch.from_numpy(unet_weight_map(labels))[None, None]``;
        converted to the logits' dtype and device. ``"mean"`` divides the weighted sum by the number
        of pixels (not by the sum of the weights), as torch does.
    reduction : {"mean", "sum", "none"}

    Examples
    --------
    >>> import torch
    >>> logits, target = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    >>> round(bce_loss(logits, target).item(), 4)  # log 2
    0.6931
    >>> round(bce_loss(logits, target, weight=torch.full((1, 1, 2, 2), 2.0)).item(), 4)
    1.3863
    """
    target = _binary_target(target, logits)  # the loss has the logits' dtype
    check_in(reduction, "reduction", _REDUCTIONS)
    if weight is not None:
        weight = _as_weight(weight, logits)
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction=reduction)


def combined_loss(
    logits,
    target,
    weight_map=None,
    bce_weight=1.0,
    focal_weight=1.0,
    dice_weight=1.0,
    alpha=0.25,
    gamma=2.0,
    smooth=1.0,
) -> torch.Tensor:
    r"""``bce_weight · BCE + focal_weight · focal + dice_weight · Dice``, each with its default reduction.

    The per-pixel terms (BCE, focal) decide each pixel; Dice looks at the overlap of the whole
    mask. Set a weight to 0 to drop a term (no computation is skipped for it, so the result is
    exactly the sum). ``weight_map`` weights the BCE term only (U-Net's map).

    Examples
    --------
    >>> import torch
    >>> logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    >>> total = combined_loss(logits, target, focal_weight=20.0)
    >>> parts = bce_loss(logits, target) + 20 * focal_loss(logits, target) + dice_loss(logits, target)
    >>> bool(torch.isclose(total, parts))
    True
    """
    bce_weight = check_real_scalar(bce_weight, "bce_weight", minimum=0.0)
    focal_weight = check_real_scalar(focal_weight, "focal_weight", minimum=0.0)
    dice_weight = check_real_scalar(dice_weight, "dice_weight", minimum=0.0)
    return (
        bce_weight * bce_loss(logits, target, weight=weight_map)
        + focal_weight * focal_loss(logits, target, alpha=alpha, gamma=gamma)
        + dice_weight * dice_loss(logits, target, smooth=smooth)
    )


def weighted_cross_entropy(logits, target, weight_map=None, reduction="mean") -> torch.Tensor:
    r"""Multi-class cross-entropy weighted per pixel: the mean of :math:`w(x)\,(-\log \mathrm{softmax}(z(x))_{y(x)})`.

    The softmax form of U-Net's energy (equation 1 of the paper) for :math:`K` classes.

    Parameters
    ----------
    logits : torch.Tensor
        ``(N, K, H, W)`` raw class scores.
    target : torch.Tensor
        ``(N, H, W)`` integer (``long``) class indices in ``0..K-1``.
    weight_map : torch.Tensor or numpy.ndarray, optional
        ``(N, H, W)`` non-negative weights; ``None`` gives ``F.cross_entropy``.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` divides the weighted sum by the number of pixels.

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(1, 3, 2, 2)
    >>> target = torch.tensor([[[0, 1], [2, 0]]])
    >>> round(weighted_cross_entropy(logits, target).item(), 4)  # log 3
    1.0986
    """
    if not _is_torch_tensor(logits) or not logits.is_floating_point() or logits.ndim != 4:
        raise SegeduInputError(
            f"logits must be a floating-point torch.Tensor of shape (N, K, H, W), but got {_describe(logits)}"
            + (f" of shape {tuple(logits.shape)}" if hasattr(logits, "shape") else "")
            + "."
        )
    check_in(reduction, "reduction", _REDUCTIONS)
    n, k, h, w = logits.shape
    if not _is_torch_tensor(target):
        raise SegeduTypeError(
            f"target must be a torch.Tensor of class indices, but got {_describe(target)}. "
            f"Convert a numpy label map with torch.from_numpy(target).long()."
        )
    check_label_map(target, k, "target", ndim=3)
    if tuple(target.shape) != (n, h, w):
        raise SegeduInputError(
            f"target must have shape (N, H, W) = {(n, h, w)} to match logits {tuple(logits.shape)}, but it has "
            f"shape {tuple(target.shape)}."
        )
    loss = F.cross_entropy(logits, target.long(), reduction="none")
    if weight_map is not None:
        loss = loss * _as_weight(weight_map, loss, "weight_map")
    return _reduce(loss, reduction)


# ----------------------------------------------------------------------------------------------
def _check_sam_inputs(mask_logits, iou_pred, target) -> torch.Tensor:
    """Shapes, dtypes and devices of :func:`sam_loss`'s inputs; returns the target in the logits' dtype."""
    if not _is_torch_tensor(mask_logits) or not mask_logits.is_floating_point():
        raise SegeduTypeError(
            f"mask_logits must be a floating-point torch.Tensor of shape (B, M, H, W) (M masks per sample, the "
            f"raw decoder output), but got {_describe(mask_logits)}"
            + (f" with dtype {mask_logits.dtype}" if _is_torch_tensor(mask_logits) else "")
            + "."
        )
    if mask_logits.ndim != 4:
        hint = (
            " For a single mask per sample add the mask axis with mask_logits[:, None]."
            if mask_logits.ndim == 3
            else ""
        )
        raise SegeduInputError(
            f"mask_logits must have shape (B, M, H, W), but it has shape {tuple(mask_logits.shape)}.{hint}"
        )
    b, m, h, w = mask_logits.shape
    if not _is_torch_tensor(iou_pred) or not iou_pred.is_floating_point():
        raise SegeduTypeError(
            f"iou_pred must be a floating-point torch.Tensor of shape (B, M) = {(b, m)} (the IoU head's output), "
            f"but got {_describe(iou_pred)}"
            + (f" with dtype {iou_pred.dtype}" if _is_torch_tensor(iou_pred) else "")
            + "."
        )
    if tuple(iou_pred.shape) != (b, m):
        raise SegeduInputError(
            f"iou_pred must have shape (B, M) = {(b, m)}, one predicted IoU per mask of mask_logits "
            f"{tuple(mask_logits.shape)}, but it has shape {tuple(iou_pred.shape)}."
            + (" Drop its trailing axis with iou_pred[..., 0]." if iou_pred.shape == (b, m, 1) else "")
        )
    if _is_torch_tensor(target) and tuple(target.shape) != (b, h, w):
        tshape = tuple(target.shape)
        hint = ""
        if tshape == (b, 1, h, w):
            hint = " Drop its channel axis with target[:, 0]."
        elif tshape == (b, m, h, w):
            hint = (
                " The target is ONE mask per sample, compared with each of the M predicted masks; "
                "pass target[:, 0] if the M copies are equal."
            )
        raise SegeduInputError(
            f"target must have shape (B, H, W) = {(b, h, w)}, one ground-truth mask per sample of mask_logits "
            f"{tuple(mask_logits.shape)}, but it has shape {tshape}.{hint}"
        )
    for name, x in (("iou_pred", iou_pred), ("target", target)):
        if _is_torch_tensor(x) and x.device != mask_logits.device:
            raise SegeduInputError(
                f"{name} is on {x.device}, but mask_logits are on {mask_logits.device}. "
                f"Move it with {name}.to(mask_logits.device)."
            )
    return check_binary_target(target, mask_logits[:, 0], "target", "mask_logits").to(mask_logits.dtype)


def _mask_iou(predicted: torch.Tensor, target: torch.Tensor, dtype) -> torch.Tensor:
    """IoU of boolean masks over the last two axes, 1 where both are empty (two equal masks)."""
    intersection = (predicted & target).sum(dim=(-2, -1))
    union = (predicted | target).sum(dim=(-2, -1))
    iou = intersection.to(dtype) / union.clamp(min=1).to(dtype)
    return torch.where(union > 0, iou, torch.ones_like(iou))


def sam_loss(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0) -> torch.Tensor:
    r"""SAM's training loss: the best of the M masks by 20·focal + Dice, plus the IoU head's squared error.

    A click is ambiguous (the dot, the ring around it, or the square around both?), so SAM predicts
    :math:`M = 3` masks and is trained only on the one that fits the target best: a network that
    had to match the target with every output would average the interpretations into a blur
    (Kirillov et al. 2023, §3 "Resolving ambiguity" and appendix A "Losses and training"). For a
    sample with mask logits :math:`z_1, \dots, z_M`, IoU predictions :math:`\hat s_m` and target
    :math:`y`:

    .. math::
       L_m = \lambda_f\,\mathrm{FL}(z_m, y) + \lambda_d\,\mathrm{Dice}(z_m, y), \qquad
       L = \min_m L_m + \frac{1}{M}\sum_{m=1}^M \bigl(\hat s_m - \mathrm{IoU}(z_m > 0,\, y)\bigr)^2 ,

    and the loss is the mean of :math:`L` over the batch. The minimum back-propagates only through
    the best mask. The IoU head learns from every mask, so that at test time it can rank the M
    masks; its target is the IoU of the *thresholded* mask (what the user will see), a constant
    without gradient.

    Parameters
    ----------
    mask_logits : torch.Tensor
        ``(B, M, H, W)`` floating-point logits, the decoder's masks at the target's resolution.
    iou_pred : torch.Tensor
        ``(B, M)`` predicted IoUs.
    target : torch.Tensor
        ``(B, H, W)`` floating-point 0/1 ground truth, one mask per sample (refused with its fix
        when integer, boolean, 0/255, or of another shape).
    focal_weight, dice_weight : float
        :math:`\lambda_f = 20` and :math:`\lambda_d = 1`, SAM's ratio.

    Returns
    -------
    torch.Tensor
        A scalar in the logits' dtype (float64 in, float64 out).

    Notes
    -----
    - :math:`\mathrm{FL}` is :func:`focal_loss` with :math:`\alpha = 0.25`, :math:`\gamma = 2`,
      averaged over the :math:`H W` pixels of one mask; :math:`\mathrm{Dice}` is
      :func:`dice_loss` of one mask, smoothing 1.
    - :math:`\mathrm{IoU}(a, b) = |a \cap b| / |a \cup b|`, and 1 when both masks are empty (they
      are equal), so an empty target predicted empty teaches the head "perfect".
    - Ties in the minimum go to one mask (``torch.min``'s choice).

    References
    ----------
    Kirillov et al., "Segment Anything", ICCV 2023, appendix A. arXiv:2304.02643;
    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017. arXiv:1708.02002;
    Milletari et al., "V-Net", 3DV 2016. arXiv:1606.04797

    Examples
    --------
    >>> import torch
    >>> target = torch.zeros(1, 4, 4)
    >>> target[0, 1:3, 1:3] = 1  # a 2×2 square
    >>> right, wrong = 20 * (2 * target[0] - 1), torch.full((4, 4), 20.0)  # the square, and everything
    >>> mask_logits = torch.stack([wrong, right])[None]  # (1, 2, 4, 4)
    >>> iou_pred = torch.tensor([[0.25, 1.0]])  # true IoUs: 4/16 and 1
    >>> sam_loss(mask_logits, iou_pred, target).item() < 1e-6  # the right mask is the minimum
    True
    >>> round(sam_loss(mask_logits, torch.tensor([[1.0, 1.0]]), target).item(), 4)  # (1 - 0.25)² / 2
    0.2812
    """
    target = _check_sam_inputs(mask_logits, iou_pred, target)
    focal_weight = check_real_scalar(focal_weight, "focal_weight", minimum=0.0)
    dice_weight = check_real_scalar(dice_weight, "dice_weight", minimum=0.0)
    b, m, h, w = mask_logits.shape
    per_mask_target = target[:, None].expand(b, m, h, w)
    focal = _focal_per_element(mask_logits, per_mask_target, alpha=0.25, gamma=2.0).mean(dim=(-2, -1))
    dice = _dice_per_sample(mask_logits.reshape(b * m, h * w), per_mask_target.reshape(b * m, h * w), 1.0)
    per_mask = focal_weight * focal + dice_weight * dice.view(b, m)
    mask_term = per_mask.min(dim=1).values  # only the best mask receives a gradient
    with torch.no_grad():
        true_iou = _mask_iou(mask_logits > 0, per_mask_target > 0.5, dtype=mask_logits.dtype)
    iou_term = ((iou_pred - true_iou) ** 2).mean(dim=1)
    return (mask_term + iou_term).mean()


# ----------------------------------------------------------------------------------------------
def _class_weight(instance_labels: np.ndarray) -> np.ndarray:
    """Balanced weight of each pixel's class (foreground label > 0 against background)."""
    foreground = instance_labels > 0
    n = foreground.size
    n_fg = int(foreground.sum())
    n_bg = n - n_fg
    if n_fg == 0 or n_bg == 0:
        return np.ones(instance_labels.shape, dtype=np.float64)
    return np.where(foreground, n / (2.0 * n_fg), n / (2.0 * n_bg))


def _check_weight_args(instance_labels, w0, sigma):
    labels = check_instance_labels(instance_labels, "instance_labels")
    w0 = check_real_scalar(w0, "w0", minimum=0.0)
    sigma = check_real_scalar(sigma, "sigma", minimum=0.0, strict=True)
    return labels, w0, sigma


def unet_weight_map(instance_labels, w0=10.0, sigma=5.0) -> np.ndarray:
    r"""U-Net's weight map :math:`w = w_c + w_0 \exp(-(d_1 + d_2)^2 / (2\sigma^2))` from instance labels.

    Parameters
    ----------
    instance_labels : array_like of int, shape (H, W)
        0 for background, one id :math:`\ge 1` per cell (ids need not be consecutive). A binary
        mask is not enough: touching cells would merge, so build the labels with
        ``skimage.measure.label`` or take them from the annotation.
    w0 : float
        Height of the border term (default 10, as in the paper).
    sigma : float
        Width :math:`\sigma` in pixels (default 5, as in the paper).

    Returns
    -------
    numpy.ndarray
        float64 ``H×W``: :math:`w = w_c + \text{border}`, where

        - :math:`w_c` is the balanced weight of the pixel's class, foreground (label > 0) against
          background: :math:`n / (2 n_c)` with :math:`n` pixels of which :math:`n_c` are of the
          pixel's class, as ``sklearn.utils.class_weight.compute_class_weight("balanced")``; 1
          everywhere when only one class is present;
        - the border term is computed on background pixels only (0 on cells), with :math:`d_1`,
          :math:`d_2` the Euclidean distances to the nearest pixel of the nearest and of the
          second-nearest cell; it is 0 everywhere with fewer than two cells.

    Notes
    -----
    For each cell :math:`i`, ``scipy.ndimage.distance_transform_edt(labels != i)`` gives the distance
    of every pixel to cell :math:`i`. Keeping the two smallest of these per pixel as a running
    minimum needs two arrays, whatever the number of cells. The EDTs are computed in windows around
    each cell, exactly (see ``_two_nearest_cell_distances``), which makes the 512×512 image with
    125 nuclei several times faster than 125 full-image EDTs. :func:`unet_weight_map_reference` is
    the same map from explicit
    pixel-to-pixel distances, slow but easy to read.

    The border term is largest in the narrow gaps between two cells (:math:`d_1 + d_2` small), so the
    network pays most for merging touching cells: it has to learn the separating line.

    References
    ----------
    Ronneberger, Fischer and Brox, "U-Net", MICCAI 2015, equation 2. arXiv:1505.04597

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((1, 7), dtype=int)
    >>> labels[0, :2], labels[0, 5:] = 1, 2  # two cells, a gap of 3 pixels
    >>> w = unet_weight_map(labels, w0=10, sigma=5)
    >>> w[0, :2]  # cells: w_c = 7 / (2 * 4)
    array([0.875, 0.875])
    >>> round(float(w[0, 3]), 4)  # middle of the gap: d1 = d2 = 2, so 7/6 + 10 exp(-16/50)
    8.4282
    """
    labels, w0, sigma = _check_weight_args(instance_labels, w0, sigma)
    weight = _class_weight(labels)
    ids, compact = np.unique(labels, return_inverse=True)
    compact = compact.reshape(labels.shape)  # 0 stays background when present; cells become 1..n
    n_cells = int(np.count_nonzero(ids))
    if n_cells < 2 or w0 == 0:
        return weight
    if ids[0] != 0:  # no background: the border term lives on background pixels only
        return weight
    d1, d2 = _two_nearest_cell_distances(compact, n_cells)
    background = labels == 0
    weight[background] += w0 * np.exp(-((d1[background] + d2[background]) ** 2) / (2 * sigma**2))
    return weight


def _two_nearest_cell_distances(compact, n_cells):
    """Per pixel, the distances to the nearest and the second-nearest cell (cells are ``1..n_cells``).

    Exact, but each cell's distance transform is computed only in a window around the cell's
    bounding box, widened by a margin :math:`m`: inside the window the cropped EDT is the true
    distance (all the cell's pixels are in it), outside it the distance exceeds :math:`m`. So the
    result is exact wherever the second distance found is at most :math:`m`; if some background
    pixel is further than that from its second cell, the margin doubles and the pass repeats
    (up to the whole image, where it is the plain one-EDT-per-cell computation).
    """
    from scipy import ndimage

    h, w = compact.shape
    boxes = ndimage.find_objects(compact)
    background = compact == 0
    margin = max(16, int(2 * np.sqrt(h * w / n_cells)))
    while True:
        full = margin >= max(h, w)
        d1 = np.full(compact.shape, np.inf)
        d2 = np.full(compact.shape, np.inf)
        for cell, box in enumerate(boxes, start=1):
            if full:
                window = (slice(0, h), slice(0, w))
            else:
                window = tuple(
                    slice(max(0, sl.start - margin), min(n, sl.stop + margin)) for sl, n in zip(box, (h, w))
                )
            d = ndimage.distance_transform_edt(compact[window] != cell)
            near, second = d1[window], d2[window]
            # running two smallest: d becomes the nearest (the old nearest moves to second), or the second
            second[...] = np.minimum(second, np.maximum(near, d))
            near[...] = np.minimum(near, d)
        if full or not np.any(d2[background] > margin):
            return d1, d2
        margin *= 2


def unet_weight_map_reference(instance_labels, w0=10.0, sigma=5.0) -> np.ndarray:
    """:func:`unet_weight_map` by explicit distances: for each background pixel, the distance to every
    pixel of every cell, the minimum per cell, then the two smallest cells. Slow (use small maps).

    >>> import numpy as np
    >>> labels = np.array([[1, 0, 0, 2]])
    >>> bool(np.allclose(unet_weight_map_reference(labels), unet_weight_map(labels)))
    True
    """
    labels, w0, sigma = _check_weight_args(instance_labels, w0, sigma)
    weight = _class_weight(labels)
    ids = [i for i in np.unique(labels) if i > 0]
    if len(ids) < 2:
        return weight
    cell_pixels = [np.argwhere(labels == i) for i in ids]
    for r, c in np.argwhere(labels == 0):
        per_cell = sorted(float(np.sqrt(((pix - (r, c)) ** 2).sum(1)).min()) for pix in cell_pixels)
        d1, d2 = per_cell[0], per_cell[1]
        weight[r, c] += w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return weight
