r"""TinySAM: Segment Anything's three parts, composed in one place and small enough to train on a CPU.

SAM (Kirillov et al. 2023) splits promptable segmentation into a heavy part that runs once per
image and light parts that run once per prompt:

.. math::
   E = \mathrm{ImageEncoder}\Bigl(\frac{I - \mu}{\sigma}\Bigr), \qquad
   (T_\text{sparse}, D_\text{dense}) = \mathrm{PromptEncoder}(\text{points}, \text{boxes}, \text{mask}),

.. math::
   (\text{masks}, \widehat{\mathrm{IoU}}) = \mathrm{MaskDecoder}(E,\, \mathrm{PE},\, T_\text{sparse},\, D_\text{dense}).

- the **image encoder** (:class:`~segedu.models.sam.image_encoder.ImageEncoderViT`, a ViT,
  Dosovitskiy et al. 2020, pretrained as an MAE, He et al. 2021) maps an :math:`S \times S` image to
  an embedding of :math:`C` channels on the :math:`S/p \times S/p` grid of its patches;
- the **prompt encoder** (:class:`~segedu.models.sam.prompt_encoder.PromptEncoder`) turns clicks and
  box corners into tokens (random Fourier features of their position, Tancik et al. 2020, plus a
  learned embedding of their kind) and a mask prompt into a dense embedding;
- the **mask decoder** (:class:`~segedu.models.sam.mask_decoder.MaskDecoder`, with the
  :class:`~segedu.models.sam.transformer.TwoWayTransformer`) predicts three masks (whole, part,
  subpart: a click is ambiguous) at :math:`4S/p \times 4S/p`, and their IoUs.

:class:`TinySAM` keeps segment-anything's attribute names (``image_encoder``, ``prompt_encoder``,
``mask_decoder``, ``pixel_mean``, ``pixel_std``), so its state dict *is* a SAM state dict:
:meth:`TinySAM.to_segment_anything` builds ``segment_anything.modeling.Sam`` with the same weights,
and ``SamPredictor`` then gives the same masks.

TinySAM and SAM ViT-B
---------------------
=======================  ====================================  ======================================
                         SAM ViT-B                             TinySAM (defaults)
=======================  ====================================  ======================================
image                    1024 × 1024 (padded), 0..255          64 × 64, 0..1
patches                  16 × 16, a 64 × 64 grid               8 × 8, an 8 × 8 grid
image encoder            width 768, 12 blocks, 12 heads,       width 64, 2 blocks, 2 heads, global
                         windowed + 4 global, relative pos.    attention only, absolute positions
embedding :math:`C`      256                                   64
decoder                  2 blocks, MLP 2048, 8 heads           2 blocks, MLP 256, 4 heads
IoU head                 3 layers of 256                       3 layers of 64
low-res masks            256 × 256                             32 × 32
parameters               93.7 M (encoder 89.7 M, prompt        0.35 M (encoder 0.16 M, prompt
                         encoder 6 k, decoder 4.1 M)           encoder 1.8 k, decoder 0.19 M)
=======================  ====================================  ======================================

The proportions are SAM's: almost all of the weights and the compute are in the image encoder,
which runs once per image; each prompt costs only the small prompt encoder and decoder.
``segedu.models.sam.parameter_counts`` counts them per component.

Images, prompts and outputs
---------------------------
- ``images``: ``(B, 3, S, S)`` floats in ``[0, 1]`` (``S = image_size``), on the model's device and
  of its dtype; normalised inside with the buffers ``pixel_mean`` and ``pixel_std`` (ImageNet's,
  in 0..1 units).
- ``point_coords``: ``(B, N, 2)`` pixel coordinates **(x, y)** of the :math:`S \times S` image
  (column first, as segment-anything; a pixel's centre is at +0.5), with ``point_labels``
  ``(B, N)``: 1 foreground, 0 background, -1 padding (a point that is ignored, so that prompts of
  different lengths fit in one batch).
- ``boxes``: ``(B, 4)`` as ``(x0, y0, x1, y1)`` pixels.
- ``mask_inputs``: ``(B, 1, 4S/p, 4S/p)`` mask logits, e.g. the low-resolution output of a previous
  call (:meth:`TinySAM.decode_low_res`), to refine a mask.
- outputs: mask logits ``(B, 3, S, S)`` (``(B, 1, S, S)`` with ``multimask_output=False``), the
  low-resolution logits upsampled bilinearly as segment-anything's ``postprocess_masks``, and the
  predicted IoUs ``(B, 3)``. Threshold the logits at 0 (``TinySAM.mask_threshold``) for masks.

:meth:`TinySAM.embed` runs the image encoder once and :meth:`TinySAM.decode` answers any number of
prompts from the embeddings (the click demo and the automatic mask generator rely on it).
:meth:`TinySAM.decode_low_res` returns the decoder's logits before upsampling, the
``low_res_logits`` of segment-anything: cheaper for a loss on large images, and the mask prompt of
the next click. With :math:`I` embeddings and :math:`P` prompts, :math:`P` a multiple of :math:`I`,
prompts :math:`kP/I \dots (k+1)P/I - 1` go with image :math:`k`.

References
----------
.. [1] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643
.. [2] Dosovitskiy, A. et al. "An Image is Worth 16x16 Words: Transformers for Image Recognition at
       Scale." ICLR 2021. arXiv:2010.11929
.. [3] He, K. et al. "Masked Autoencoders Are Scalable Vision Learners." CVPR 2022. arXiv:2111.06377
.. [4] Tancik, M. et al. "Fourier Features Let Networks Learn High Frequency Functions in Low
       Dimensional Domains." NeurIPS 2020. arXiv:2006.10739
.. [5] Vaswani, A. et al. "Attention Is All You Need." NeurIPS 2017. arXiv:1706.03762

Examples
--------
>>> import torch
>>> from segedu.models import TinySAM
>>> _ = torch.manual_seed(0)
>>> model = TinySAM()
>>> images = torch.rand(2, 3, 64, 64)
>>> clicks = torch.tensor([[[20.0, 30.0]], [[40.0, 12.0]]])    # one (x, y) click per image
>>> logits, iou_pred = model(images, clicks, torch.ones(2, 1))
>>> tuple(logits.shape), tuple(iou_pred.shape)
((2, 3, 64, 64), (2, 3))
>>> TinySAM(**model.config).config == model.config
True
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..._validation import SegeduInputError, SegeduTypeError, _describe, check_positive_int, check_real_scalar
from .._base import SegmentationModel, _check_input_matches_weights
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .transformer import TwoWayTransformer

__all__ = ["TinySAM"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_float_tensor(value, name: str, like: torch.Tensor, meaning: str) -> torch.Tensor:
    """A prompt as a tensor of ``like``'s dtype on ``like``'s device (lists and numpy arrays accepted)."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise SegeduTypeError(f"{name} must hold real numbers ({meaning}), but its dtype is {value.dtype}.")
        return value.to(device=like.device, dtype=like.dtype)
    try:
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise SegeduTypeError(
            f"{name} must be a tensor {meaning}, but got {_describe(value)}; build it with torch.tensor(...)."
        ) from exc


class TinySAM(SegmentationModel):
    r"""Segment Anything, small: a ViT image encoder, SAM's prompt encoder and mask decoder.

    Parameters
    ----------
    image_size : int
        Side :math:`S` of the square input images (64).
    patch_size : int
        Side :math:`p` of the ViT's patches; must divide ``image_size`` (8: an 8 × 8 grid).
    embed_dim, depth, num_heads, mlp_ratio : int, int, int, float
        Width, blocks, heads and MLP ratio of the image encoder's ViT (64, 2, 2, 4.0).
    prompt_dim : int
        Channels :math:`C` of the image embedding, the prompt tokens and the decoder (64; 256 in
        SAM); a multiple of 8 and of ``2 * decoder_heads``.
    mask_in_chans : int
        Hidden channels of the prompt encoder's mask downscaling (16, as SAM); a multiple of 4.
    decoder_depth, decoder_mlp_dim, decoder_heads : int
        Blocks, MLP width and heads of the two-way transformer (2, 256, 4).
    num_multimask_outputs : int
        Masks for an ambiguous prompt (3: whole, part, subpart).
    iou_head_depth, iou_head_hidden_dim : int
        The IoU head's MLP (3 layers of 64).
    pixel_mean, pixel_std : sequence of 3 floats
        Per-channel normalisation of the ``[0, 1]`` images (ImageNet's).

    Attributes
    ----------
    image_encoder, prompt_encoder, mask_decoder : nn.Module
        The three parts, under segment-anything's names.
    pixel_mean, pixel_std : torch.Tensor
        ``(3, 1, 1)`` buffers, in 0..1 units (segment-anything's are in 0..255 units). Not saved in
        the state dict (as segment-anything's); :attr:`config` holds them.
    config : dict
        The arguments that rebuild the model: ``TinySAM(**model.config)``.

    Notes
    -----
    ``forward(images, point_coords=None, point_labels=None, boxes=None, mask_inputs=None,
    multimask_output=True)`` returns ``(mask_logits, iou_pred)`` at image resolution; it is
    :meth:`decode` of :meth:`embed`. Shapes and conventions are in the module docstring. The model is
    a :class:`~segedu.models._base.SegmentationModel` (``in_channels=3``, ``num_classes`` the number
    of multimask outputs), so wrong images get the course's usual errors; prompts are checked too
    (shape, coordinates inside the image, labels in {-1, 0, 1}), each error naming the fix.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = TinySAM(image_size=32, patch_size=8, embed_dim=32, prompt_dim=32, decoder_mlp_dim=64)
    >>> embeddings = model.embed(torch.rand(1, 3, 32, 32))             # once per image
    >>> tuple(embeddings.shape)                                         # C x S/p x S/p
    (1, 32, 4, 4)
    >>> grid = torch.tensor([[[8.0, 8.0]], [[24.0, 8.0]], [[16.0, 24.0]]])  # 3 one-click prompts, 1 image
    >>> logits, iou_pred = model.decode(embeddings, grid, torch.ones(3, 1))
    >>> tuple(logits.shape), tuple(iou_pred.shape)
    ((3, 3, 32, 32), (3, 3))
    >>> box = torch.tensor([[4.0, 4.0, 20.0, 28.0]])                    # (x0, y0, x1, y1)
    >>> tuple(model(torch.rand(1, 3, 32, 32), boxes=box, multimask_output=False)[0].shape)
    (1, 1, 32, 32)
    """

    mask_threshold: float = 0.0
    image_format: str = "RGB"

    def __init__(
        self,
        image_size: int = 64,
        patch_size: int = 8,
        embed_dim: int = 64,
        depth: int = 2,
        num_heads: int = 2,
        mlp_ratio: float = 4.0,
        prompt_dim: int = 64,
        mask_in_chans: int = 16,
        decoder_depth: int = 2,
        decoder_mlp_dim: int = 256,
        decoder_heads: int = 4,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 64,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        num_multimask_outputs = check_positive_int(num_multimask_outputs, "num_multimask_outputs")
        patch_size = check_positive_int(patch_size, "patch_size")
        super().__init__(in_channels=3, num_classes=num_multimask_outputs, output_stride=patch_size)
        image_size = check_positive_int(image_size, "image_size")
        if image_size % patch_size:
            lower, upper = image_size // patch_size * patch_size, -(-image_size // patch_size) * patch_size
            raise SegeduInputError(
                f"patch_size={patch_size} must divide image_size={image_size} (the image is cut into whole "
                f"patches). Use image_size={upper}" + (f" or {lower}" if lower else "") + ", or another patch_size."
            )
        prompt_dim = check_positive_int(prompt_dim, "prompt_dim")
        decoder_heads = check_positive_int(decoder_heads, "decoder_heads")
        if prompt_dim % 8 or (prompt_dim // 2) % decoder_heads:
            raise SegeduInputError(
                f"prompt_dim={prompt_dim} must be a multiple of 8 (the decoder's upscaling ends with prompt_dim / 8 "
                f"channels) and prompt_dim / 2 a multiple of decoder_heads={decoder_heads} (its cross-attentions "
                f"work in prompt_dim / 2 channels). E.g. prompt_dim=64 with decoder_heads=4."
            )
        mask_in_chans = check_positive_int(mask_in_chans, "mask_in_chans")
        if mask_in_chans % 4:
            raise SegeduInputError(
                f"mask_in_chans must be a multiple of 4 (the mask downscaling first uses mask_in_chans / 4 "
                f"channels), but got {mask_in_chans}. Try {4 * max(1, round(mask_in_chans / 4))}."
            )
        mlp_ratio = check_real_scalar(mlp_ratio, "mlp_ratio", minimum=0, strict=True)
        mean = self._check_triplet(pixel_mean, "pixel_mean", positive=False)
        std = self._check_triplet(pixel_std, "pixel_std", positive=True)
        grid = image_size // patch_size
        self._config = dict(
            image_size=image_size,
            patch_size=patch_size,
            embed_dim=check_positive_int(embed_dim, "embed_dim"),
            depth=check_positive_int(depth, "depth"),
            num_heads=check_positive_int(num_heads, "num_heads"),
            mlp_ratio=mlp_ratio,
            prompt_dim=prompt_dim,
            mask_in_chans=mask_in_chans,
            decoder_depth=check_positive_int(decoder_depth, "decoder_depth"),
            decoder_mlp_dim=check_positive_int(decoder_mlp_dim, "decoder_mlp_dim"),
            decoder_heads=decoder_heads,
            num_multimask_outputs=num_multimask_outputs,
            iou_head_depth=check_positive_int(iou_head_depth, "iou_head_depth"),
            iou_head_hidden_dim=check_positive_int(iou_head_hidden_dim, "iou_head_hidden_dim"),
            pixel_mean=mean,
            pixel_std=std,
        )
        self.image_encoder = ImageEncoderViT(
            img_size=image_size,
            patch_size=patch_size,
            in_chans=3,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            out_chans=prompt_dim,
            qkv_bias=True,
            use_abs_pos=True,
        )
        self.prompt_encoder = PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=mask_in_chans,
        )
        self.mask_decoder = MaskDecoder(
            transformer_dim=prompt_dim,
            transformer=TwoWayTransformer(
                depth=decoder_depth, embedding_dim=prompt_dim, mlp_dim=decoder_mlp_dim, num_heads=decoder_heads
            ),
            num_multimask_outputs=num_multimask_outputs,
            iou_head_depth=iou_head_depth,
            iou_head_hidden_dim=iou_head_hidden_dim,
        )
        # not persistent, as segment-anything's: the state dicts of the two stay interchangeable
        self.register_buffer("pixel_mean", torch.tensor(mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(-1, 1, 1), persistent=False)

    @staticmethod
    def _check_triplet(values, name: str, positive: bool) -> list[float]:
        try:
            triplet = [float(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise SegeduTypeError(f"{name} must be 3 numbers (one per RGB channel), but got {values!r}.") from exc
        if len(triplet) != 3:
            raise SegeduInputError(f"{name} must be 3 numbers (one per RGB channel), but got {len(triplet)}.")
        if positive and min(triplet) <= 0:
            raise SegeduInputError(f"{name} must be positive (it divides the image), but got {triplet}.")
        if max(abs(v) for v in triplet) > 1.5:
            raise SegeduInputError(
                f"{name}={triplet} looks like 0..255 units, but TinySAM's images are in 0..1: divide it by 255."
            )
        return triplet

    # ------------------------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """The constructor's arguments: ``TinySAM(**model.config)`` builds the same architecture."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}

    @property
    def image_size(self) -> int:
        return self._config["image_size"]

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding's grid, ``image_size // patch_size``."""
        return self._config["image_size"] // self._config["patch_size"]

    @property
    def low_res_size(self) -> int:
        """Side of the decoder's masks (and of ``mask_inputs``): 4 × the embedding's grid."""
        return 4 * self.embedding_size

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def extra_repr(self) -> str:
        c = self._config
        return (
            f"image_size={c['image_size']}, patch_size={c['patch_size']}, prompt_dim={c['prompt_dim']}, "
            f"num_multimask_outputs={c['num_multimask_outputs']}"
        )

    # -- images ----------------------------------------------------------------------------------
    def _check_images(self, images) -> None:
        self.check_input(images)
        s = self.image_size
        if tuple(images.shape[-2:]) != (s, s):
            h, w = images.shape[-2:]
            raise SegeduInputError(
                f"TinySAM was built for {s}×{s} images (image_size={s}), but got {h}×{w}. Resize them, e.g. "
                f"torch.nn.functional.interpolate(images, size=({s}, {s}), mode='bilinear'), or build "
                f"TinySAM(image_size=...) for your size (its positional embeddings are per patch)."
            )
        if images.numel() and images.device.type != "meta":
            lo, hi = float(images.min()), float(images.max())
            if not (0.0 <= lo and hi <= 1.0):
                fix = " It looks like 0..255 values: divide by 255." if 1.0 < hi <= 255.0 and lo >= 0 else ""
                raise SegeduInputError(
                    f"TinySAM's images must lie in [0, 1], but they range from {lo:g} to {hi:g}.{fix} "
                    f"(The model normalises inside with pixel_mean and pixel_std; pass unnormalised images.)"
                )

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise ``[0, 1]`` images: ``(images - pixel_mean) / pixel_std``."""
        return (images - self.pixel_mean) / self.pixel_std

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Image embeddings ``(B, prompt_dim, S/p, S/p)`` of ``(B, 3, S, S)`` images in ``[0, 1]``.

        The expensive part: run it once per image, then :meth:`decode` as many prompts as needed.
        """
        self._check_images(images)
        return self.image_encoder(self.preprocess(images))

    # -- prompts ---------------------------------------------------------------------------------
    def _check_prompts(self, embeddings, point_coords, point_labels, boxes, mask_inputs):
        """Validated prompts as tensors of the embeddings' dtype and device, and the number of prompts."""
        c, g, s = self._config["prompt_dim"], self.embedding_size, self.image_size
        if not isinstance(embeddings, torch.Tensor) or not embeddings.is_floating_point():
            raise SegeduTypeError(
                f"embeddings must be the floating-point tensor that TinySAM.embed(images) returns, but got "
                f"{_describe(embeddings)}."
            )
        if tuple(embeddings.shape[1:]) != (c, g, g):
            raise SegeduInputError(
                f"embeddings must have shape (I, {c}, {g}, {g}) (what TinySAM.embed(images) returns), but got "
                f"{tuple(embeddings.shape)}. Pass model.embed(images), not the images."
            )
        _check_input_matches_weights(self, embeddings)
        counts = {}
        points = None
        readable = embeddings.device.type != "meta"  # the meta device has shapes but no values to check
        if point_coords is None and point_labels is not None:
            raise SegeduInputError("point_labels was given without point_coords: pass both, or neither.")
        if point_coords is not None:
            if point_labels is None:
                raise SegeduInputError(
                    "point_coords needs point_labels (1 foreground, 0 background, -1 padding): e.g. "
                    "point_labels=torch.ones(point_coords.shape[:2]) for foreground clicks."
                )
            coords = _as_float_tensor(point_coords, "point_coords", embeddings, "(B, N, 2) of (x, y) pixels")
            if coords.ndim == 2 and coords.shape[-1] == 2:
                raise SegeduInputError(
                    f"point_coords must be (B, N, 2), but got shape {tuple(coords.shape)}. For one prompt of N points "
                    f"add the batch axis with point_coords[None]; for N one-point prompts use point_coords[:, None]."
                )
            if coords.ndim != 3 or coords.shape[-1] != 2:
                raise SegeduInputError(
                    f"point_coords must be (B, N, 2): B prompts of N (x, y) pixel coordinates, but got shape "
                    f"{tuple(coords.shape)}."
                )
            labels = point_labels if isinstance(point_labels, torch.Tensor) else torch.as_tensor(point_labels)
            if labels.is_floating_point() and labels.device.type != "meta":
                if bool((labels != labels.round()).any()):
                    raise SegeduTypeError("point_labels must be whole numbers: 1 foreground, 0 background, -1 padding.")
            elif labels.dtype == torch.bool or labels.is_complex():
                raise SegeduTypeError(
                    f"point_labels must be integers 1 (foreground), 0 (background) or -1 (padding), but its dtype is "
                    f"{labels.dtype}. Use labels.long()."
                )
            labels = labels.to(device=embeddings.device, dtype=torch.long)
            if tuple(labels.shape) != tuple(coords.shape[:2]):
                raise SegeduInputError(
                    f"point_labels must have shape (B, N) = {tuple(coords.shape[:2])}, one label per point, but got "
                    f"{tuple(labels.shape)}."
                )
            bad = labels[(labels < -1) | (labels > 1)] if readable else labels[:0]
            if bad.numel():
                raise SegeduInputError(
                    f"point_labels must be 1 (foreground), 0 (background) or -1 (padding), but it holds "
                    f"{sorted(set(bad.tolist()))[:5]}. Boxes are passed with boxes=..., not as labelled points."
                )
            real = coords[labels >= 0] if readable else coords[:0]
            if real.numel() and (float(real.min()) < 0 or float(real.max()) > s):
                hint = ""
                if float(real.max()) <= 1.0 and s > 2:
                    hint = f" They look normalised to [0, 1]: multiply by {s}."
                raise SegeduInputError(
                    f"point_coords must be (x, y) pixels inside the {s}×{s} image (0 to {s}), but they range from "
                    f"{float(real.min()):g} to {float(real.max()):g}.{hint}"
                )
            points = (coords, labels)
            counts["point_coords"] = coords.shape[0]
        if boxes is not None:
            boxes = _as_float_tensor(boxes, "boxes", embeddings, "(B, 4) of (x0, y0, x1, y1) pixels")
            if boxes.ndim == 1 and boxes.shape[0] == 4:
                raise SegeduInputError("boxes must be (B, 4); add the batch axis with boxes[None] for one box.")
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise SegeduInputError(
                    f"boxes must be (B, 4) as (x0, y0, x1, y1) pixels, one box per prompt, but got shape "
                    f"{tuple(boxes.shape)}."
                )
            if boxes.numel() and readable:
                if float(boxes.min()) < 0 or float(boxes.max()) > s:
                    raise SegeduInputError(
                        f"boxes must lie inside the {s}×{s} image (pixels 0 to {s}), but they range from "
                        f"{float(boxes.min()):g} to {float(boxes.max()):g}. Clip them with boxes.clamp(0, {s})."
                    )
                if bool((boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any()):
                    raise SegeduInputError(
                        "boxes must be (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1, but some corners are swapped. "
                        "If they are (x, y, width, height), convert them with torchvision.ops.box_convert(boxes, "
                        "'xywh', 'xyxy')."
                    )
            counts["boxes"] = boxes.shape[0]
        if mask_inputs is not None:
            r = self.low_res_size
            mask_inputs = _as_float_tensor(mask_inputs, "mask_inputs", embeddings, f"(B, 1, {r}, {r}) of logits")
            if tuple(mask_inputs.shape[1:]) != (1, r, r) or mask_inputs.ndim != 4:
                raise SegeduInputError(
                    f"mask_inputs must be (B, 1, {r}, {r}) mask logits at the decoder's low resolution (4 × the "
                    f"{g}×{g} embedding), e.g. one mask of a previous decode_low_res(...), but got shape "
                    f"{tuple(mask_inputs.shape)}. Resize a full-size mask with torch.nn.functional.interpolate(m, "
                    f"size=({r}, {r}), mode='bilinear')."
                )
            counts["mask_inputs"] = mask_inputs.shape[0]
        if len(set(counts.values())) > 1:
            shown = ", ".join(f"{k} {v}" for k, v in counts.items())
            raise SegeduInputError(
                f"every prompt needs the same batch size (one row per prompt), but got {shown}. Pad point prompts "
                f"of different lengths with label -1."
            )
        images = embeddings.shape[0]
        prompts = next(iter(counts.values())) if counts else images
        if images == 0 or prompts % images:
            raise SegeduInputError(
                f"{prompts} prompts for {images} image embeddings: the number of prompts must be a multiple of the "
                f"number of images (prompts k*P/I .. (k+1)*P/I - 1 go with image k). Pass one embedding shared by all "
                f"prompts (embeddings[i:i+1]) or one per prompt."
            )
        return points, boxes, mask_inputs, prompts

    def decode_low_res(
        self,
        embeddings: torch.Tensor,
        point_coords=None,
        point_labels=None,
        boxes=None,
        mask_inputs=None,
        multimask_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution mask logits ``(P, M, 4S/p, 4S/p)`` and predicted IoUs ``(P, M)``.

        The decoder's output before upsampling (segment-anything's ``low_res_logits``); arguments as
        :meth:`decode`.
        """
        points, boxes, mask_inputs, prompts = self._check_prompts(
            embeddings, point_coords, point_labels, boxes, mask_inputs
        )
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=mask_inputs)
        if sparse.shape[0] != prompts:  # no prompt at all: one empty prompt per image
            sparse = sparse.expand(prompts, -1, -1)
            dense = dense.expand(prompts, -1, -1, -1)
        return self.mask_decoder(
            image_embeddings=embeddings,
            image_pe=self.prompt_encoder.get_dense_pe().to(embeddings.dtype),
            sparse_prompt_embeddings=sparse.to(embeddings.dtype),
            dense_prompt_embeddings=dense.to(embeddings.dtype),
            multimask_output=bool(multimask_output),
        )

    def postprocess_masks(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        """Low-resolution logits upsampled bilinearly to S × S (segment-anything's ``postprocess_masks``)."""
        return F.interpolate(low_res_logits, (self.image_size, self.image_size), mode="bilinear", align_corners=False)

    def decode(
        self,
        embeddings: torch.Tensor,
        point_coords=None,
        point_labels=None,
        boxes=None,
        mask_inputs=None,
        multimask_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits ``(P, M, S, S)`` and predicted IoUs ``(P, M)`` for prompts on image embeddings.

        Parameters
        ----------
        embeddings : torch.Tensor
            ``(I, C, S/p, S/p)`` from :meth:`embed`; :math:`P` (the prompts) must be a multiple of :math:`I`.
        point_coords, point_labels : tensors (P, N, 2) and (P, N), optional
            Clicks as (x, y) pixels; labels 1 foreground, 0 background, -1 padding.
        boxes : tensor (P, 4), optional
            Boxes (x0, y0, x1, y1) in pixels.
        mask_inputs : tensor (P, 1, 4S/p, 4S/p), optional
            Low-resolution mask logits, e.g. from :meth:`decode_low_res`.
        multimask_output : bool
            Three masks (an ambiguous prompt, e.g. one click) or one.
        """
        low_res, iou_pred = self.decode_low_res(
            embeddings, point_coords, point_labels, boxes, mask_inputs, multimask_output
        )
        return self.postprocess_masks(low_res), iou_pred

    def forward(
        self,
        images: torch.Tensor,
        point_coords=None,
        point_labels=None,
        boxes=None,
        mask_inputs=None,
        multimask_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask logits ``(B, M, S, S)`` and predicted IoUs ``(B, M)``: :meth:`decode` of :meth:`embed` of ``images``.

        ``images`` are ``(B, 3, S, S)`` in ``[0, 1]``; the prompts are as in :meth:`decode`, one per image
        (or a multiple of ``B``).
        """
        return self.decode(self.embed(images), point_coords, point_labels, boxes, mask_inputs, multimask_output)

    # -- the real package ------------------------------------------------------------------------
    def to_segment_anything(self):
        """A ``segment_anything.modeling.Sam`` with this model's architecture and weights.

        Its image encoder has global attention only (``use_rel_pos=False``, ``window_size=0``), its
        ``pixel_mean`` and ``pixel_std`` are TinySAM's × 255 (segment-anything works in 0..255), and
        it sits on this model's device and dtype. So ``SamPredictor(model.to_segment_anything())``,
        given an ``S × S × 3`` uint8 image, predicts what TinySAM predicts on ``image / 255``.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from segment_anything import SamPredictor
        >>> _ = torch.manual_seed(0)
        >>> tiny = TinySAM().eval()
        >>> predictor = SamPredictor(tiny.to_segment_anything())
        >>> image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        >>> predictor.set_image(image)
        >>> masks, iou_pred, low_res = predictor.predict(np.array([[20.0, 30.0]]), np.array([1]))
        >>> masks.shape, iou_pred.shape, low_res.shape
        ((3, 64, 64), (3,), (3, 32, 32))
        """
        from segment_anything.modeling import ImageEncoderViT as SAImageEncoderViT
        from segment_anything.modeling import MaskDecoder as SAMaskDecoder
        from segment_anything.modeling import PromptEncoder as SAPromptEncoder
        from segment_anything.modeling import Sam
        from segment_anything.modeling import TwoWayTransformer as SATwoWayTransformer

        c = self._config
        grid = self.embedding_size
        # the ViT's layer norms: segment-anything's builders use eps=1e-6, its class default is 1e-5
        norm_eps = next(m.eps for m in self.image_encoder.modules() if isinstance(m, nn.LayerNorm))
        sam = Sam(
            image_encoder=SAImageEncoderViT(
                img_size=c["image_size"],
                patch_size=c["patch_size"],
                in_chans=3,
                embed_dim=c["embed_dim"],
                depth=c["depth"],
                num_heads=c["num_heads"],
                mlp_ratio=c["mlp_ratio"],
                out_chans=c["prompt_dim"],
                qkv_bias=True,
                norm_layer=partial(nn.LayerNorm, eps=norm_eps),
                use_abs_pos=True,
                use_rel_pos=False,
                window_size=0,
                global_attn_indexes=(),
            ),
            prompt_encoder=SAPromptEncoder(
                embed_dim=c["prompt_dim"],
                image_embedding_size=(grid, grid),
                input_image_size=(c["image_size"], c["image_size"]),
                mask_in_chans=c["mask_in_chans"],
            ),
            mask_decoder=SAMaskDecoder(
                transformer_dim=c["prompt_dim"],
                transformer=SATwoWayTransformer(
                    depth=c["decoder_depth"],
                    embedding_dim=c["prompt_dim"],
                    mlp_dim=c["decoder_mlp_dim"],
                    num_heads=c["decoder_heads"],
                ),
                num_multimask_outputs=c["num_multimask_outputs"],
                iou_head_depth=c["iou_head_depth"],
                iou_head_hidden_dim=c["iou_head_hidden_dim"],
            ),
            pixel_mean=[255.0 * v for v in c["pixel_mean"]],
            pixel_std=[255.0 * v for v in c["pixel_std"]],
        )
        weight = next(self.parameters())
        sam.to(device=weight.device, dtype=weight.dtype)
        sam.load_state_dict(self.state_dict())
        sam.train(self.training)
        return sam
