r"""SAM's mask decoder: output tokens, the two-way transformer, transpose-convolution upscaling, hypernetworks.

The decoder turns an image embedding :math:`X \in \mathbb{R}^{C \times h \times w}` and the prompt
embeddings into :math:`M + 1` mask logits and their predicted IoUs (Kirillov et al. 2023, fig. 14):

1. **Output tokens.** Learned embeddings are put in front of the prompt tokens, as BERT's ``[CLS]``
   token: one IoU token (``iou_token``) and :math:`M + 1` mask tokens (``mask_tokens``; :math:`M = 3`
   multimask outputs plus one single-mask output).
2. **Two-way transformer** (:class:`~segedu.models.sam.transformer.TwoWayTransformer`): the tokens
   and the image embedding (plus the dense mask-prompt embedding) attend to each other.
3. **Upscaling** (``output_upscaling``): the updated image tokens, back on their :math:`h \times w`
   grid, go through two transpose convolutions with kernel 2 and stride 2, each multiplying the size
   by 2 (unit 04: :math:`n_\text{out} = (n - 1)s - 2p + k = 2n` for :math:`k = s = 2, p = 0`; the
   kernels tile the output without overlap, so each input pixel paints its own 2×2 block), with
   :class:`~segedu.models.sam.common.LayerNorm2d` and the activation between them:
   :math:`C \times h \times w \to C/4 \times 2h \times 2w \to C/8 \times 4h \times 4w`.
4. **Hypernetworks** (``output_hypernetworks_mlps``): mask token :math:`i` goes through its own
   3-layer MLP to a vector :math:`w_i \in \mathbb{R}^{C/8}`, the weights of a *dynamic* 1×1
   convolution of the upscaled embedding :math:`U` (a network that outputs the weights of another
   network is a hypernetwork, Ha et al. 2016):

   .. math:: \text{mask}_i(x, y) = \sum_{c=1}^{C/8} w_{i,c}\, U_c(x, y).

5. **IoU head** (``iou_prediction_head``): an MLP maps the IoU token to :math:`M + 1` scores, the
   predicted IoU of each mask with the object the user meant; SAM ranks its masks by them.

``multimask_output=True`` returns the masks of tokens :math:`1..M` (three: for a click that is
ambiguous, e.g. whole, part and subpart), ``False`` the mask of token 0 (one mask, for prompts that
are not ambiguous, e.g. several points or a box).

Parameter names are segment-anything's, so a state dict loads into
``segment_anything.modeling.MaskDecoder`` and back with equal outputs.

Batches of prompts
------------------
``sparse_prompt_embeddings`` holds :math:`P` prompts and ``image_embeddings`` :math:`I` images, with
:math:`P` a multiple of :math:`I`: prompts :math:`kP/I \dots (k+1)P/I - 1` go with image :math:`k`.
:math:`I = 1` (many prompts on one image, segment-anything's only case) and :math:`I = P` (one
prompt per image, a training batch) are the two common cases.

References
----------
.. [1] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643
.. [2] Ha, D., Dai, A. and Le, Q. V. "HyperNetworks." ICLR 2017. arXiv:1609.09106
.. [3] Cheng, B., Schwing, A. G. and Kirillov, A. "Per-Pixel Classification is Not All You Need for
       Semantic Segmentation" (MaskFormer). NeurIPS 2021. arXiv:2107.06278
.. [4] Dumoulin, V. and Visin, F. "A guide to convolution arithmetic for deep learning."
       arXiv:1603.07285

Examples
--------
>>> import torch
>>> from segedu.models.sam.mask_decoder import MaskDecoder
>>> from segedu.models.sam.transformer import TwoWayTransformer
>>> _ = torch.manual_seed(0)
>>> decoder = MaskDecoder(transformer_dim=32, iou_head_hidden_dim=32,
...                       transformer=TwoWayTransformer(depth=1, embedding_dim=32, num_heads=2, mlp_dim=64))
>>> image, pe = torch.randn(1, 32, 8, 8), torch.randn(1, 32, 8, 8)
>>> sparse, dense = torch.randn(5, 2, 32), torch.randn(5, 32, 8, 8)   # 5 prompts of 2 tokens on 1 image
>>> masks, iou_pred = decoder(image, pe, sparse, dense, multimask_output=True)
>>> tuple(masks.shape), tuple(iou_pred.shape)    # masks at 4 x the embedding's size
((5, 3, 32, 32), (5, 3))

The upscaling's sizes are unit 04's transpose-convolution arithmetic:

>>> from segedu.conv import conv_transpose_output_size
>>> conv_transpose_output_size(conv_transpose_output_size(8, 2, stride=2), 2, stride=2)
32
"""

from __future__ import annotations

from typing import Type

import torch
import torch.nn.functional as F
from torch import nn

from ..._validation import SegeduInputError, SegeduTypeError, check_positive_int
from .common import LayerNorm2d

__all__ = ["MLP", "MaskDecoder", "dynamic_mask_logits"]


def dynamic_mask_logits(mask_weights: torch.Tensor, upscaled_embedding: torch.Tensor) -> torch.Tensor:
    r"""Mask logits as a per-sample 1×1 convolution whose kernels the hypernetworks wrote.

    .. math:: \text{masks}[b, m, y, x] = \sum_c W[b, m, c]\, U[b, c, y, x]

    Parameters
    ----------
    mask_weights : torch.Tensor
        ``(B, M, C')``: one kernel of :math:`C'` weights per mask token and sample.
    upscaled_embedding : torch.Tensor
        ``(B, C', H, W)``, the output of the decoder's upscaling.

    Returns
    -------
    torch.Tensor
        ``(B, M, H, W)`` logits, in one batched product (``einsum``). The readable reference is a
        loop of ordinary convolutions, one per sample, with the sample's kernels:

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> _ = torch.manual_seed(0)
    >>> weights, upscaled = torch.randn(2, 3, 4), torch.randn(2, 4, 5, 5)
    >>> by_loop = torch.cat([F.conv2d(upscaled[b:b + 1], weights[b][:, :, None, None]) for b in range(2)])
    >>> torch.allclose(dynamic_mask_logits(weights, upscaled), by_loop, atol=1e-6)
    True
    """
    return torch.einsum("bmc,bchw->bmhw", mask_weights, upscaled_embedding)


class MLP(nn.Module):
    r"""A plain MLP: ``num_layers`` linear layers with ReLU between them (none after the last).

    The hypernetworks and the IoU head of :class:`MaskDecoder` (as MaskFormer's; parameter names
    ``layers.0``, ``layers.1``, ... as segment-anything's ``MLP``).

    Examples
    --------
    >>> import torch
    >>> mlp = MLP(input_dim=8, hidden_dim=16, output_dim=2, num_layers=3)
    >>> [tuple(layer.weight.shape) for layer in mlp.layers]
    [(16, 8), (16, 16), (2, 16)]
    >>> tuple(mlp(torch.zeros(4, 8)).shape)
    (4, 2)
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int, sigmoid_output: bool = False):
        super().__init__()
        self.num_layers = check_positive_int(num_layers, "num_layers")
        hidden = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + hidden, hidden + [output_dim]))
        self.sigmoid_output = bool(sigmoid_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class MaskDecoder(nn.Module):
    r"""Predict mask logits and their IoUs from an image embedding and prompt embeddings.

    Parameters
    ----------
    transformer_dim : int
        Channels :math:`C` of the image embedding and of the tokens (256 in SAM); a multiple of 8,
        since upscaling ends with :math:`C/8` channels.
    transformer : nn.Module
        The :class:`~segedu.models.sam.transformer.TwoWayTransformer` of width ``transformer_dim``.
    num_multimask_outputs : int
        :math:`M`, the masks returned for an ambiguous prompt (3); the decoder has :math:`M + 1` mask tokens.
    activation : type of nn.Module
        Activation of the upscaling (``nn.GELU``).
    iou_head_depth, iou_head_hidden_dim : int
        Layers and width of the IoU head's MLP (3 and 256 in SAM).

    Notes
    -----
    ``forward(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
    multimask_output)`` takes ``image_embeddings`` :math:`(I, C, h, w)`, ``image_pe``
    :math:`(1, C, h, w)` (or :math:`I`), ``sparse_prompt_embeddings`` :math:`(P, N, C)` and
    ``dense_prompt_embeddings`` :math:`(P, C, h, w)`, with :math:`P` a multiple of :math:`I` (see the
    module docstring). It returns mask logits :math:`(P, M, 4h, 4w)` (or :math:`(P, 1, 4h, 4w)` with
    ``multimask_output=False``) and predicted IoUs :math:`(P, M)` (or :math:`(P, 1)`).
    :meth:`predict_masks` returns all :math:`M + 1`. The steps are in the module docstring.

    Examples
    --------
    >>> import torch
    >>> from segedu.models.sam.transformer import TwoWayTransformer
    >>> _ = torch.manual_seed(0)
    >>> decoder = MaskDecoder(transformer_dim=16, iou_head_hidden_dim=16,
    ...                       transformer=TwoWayTransformer(depth=1, embedding_dim=16, num_heads=2, mlp_dim=32))
    >>> image, pe = torch.randn(2, 16, 4, 4), torch.randn(1, 16, 4, 4)
    >>> sparse, dense = torch.randn(2, 3, 16), torch.zeros(2, 16, 4, 4)   # one prompt per image
    >>> masks, iou_pred = decoder(image, pe, sparse, dense, multimask_output=False)
    >>> tuple(masks.shape), tuple(iou_pred.shape)
    ((2, 1, 16, 16), (2, 1))
    >>> decoder.num_mask_tokens, tuple(decoder.mask_tokens.weight.shape)
    (4, (4, 16))
    """

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: nn.Module,
        num_multimask_outputs: int = 3,
        activation: Type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        transformer_dim = check_positive_int(transformer_dim, "transformer_dim")
        if transformer_dim % 8:
            raise SegeduInputError(
                f"transformer_dim must be a multiple of 8 (upscaling divides the channels by 4, then by 8), "
                f"but got {transformer_dim}. Try {max(8, 8 * round(transformer_dim / 8))}."
            )
        if not isinstance(transformer, nn.Module):
            raise SegeduTypeError(
                f"transformer must be an nn.Module such as TwoWayTransformer(depth=2, embedding_dim="
                f"{transformer_dim}, num_heads=8, mlp_dim=2048), but got {type(transformer).__name__}."
            )
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = check_positive_int(num_multimask_outputs, "num_multimask_outputs")
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = self.num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim,
            check_positive_int(iou_head_hidden_dim, "iou_head_hidden_dim"),
            self.num_mask_tokens,
            check_positive_int(iou_head_depth, "iou_head_depth"),
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        masks, iou_pred = self.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse_prompt_embeddings,
            dense_prompt_embeddings=dense_prompt_embeddings,
        )
        # token 0 is the single-mask output, tokens 1..M the ambiguity-aware ones
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, chosen], iou_pred[:, chosen]

    def _check_inputs(self, image_embeddings, image_pe, sparse, dense) -> None:
        c = self.transformer_dim
        for name, value, ndim, meaning in (
            ("image_embeddings", image_embeddings, 4, f"I×{c}×h×w"),
            ("image_pe", image_pe, 4, f"1×{c}×h×w"),
            ("sparse_prompt_embeddings", sparse, 3, f"P×N×{c}"),
            ("dense_prompt_embeddings", dense, 4, f"P×{c}×h×w"),
        ):
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                raise SegeduTypeError(
                    f"{name} must be a floating-point torch.Tensor ({meaning}), but got "
                    f"{getattr(value, 'dtype', type(value).__name__)}. Use the outputs of the image and prompt "
                    f"encoders, or .float() a tensor."
                )
            if value.ndim != ndim or (value.shape[1] if ndim == 4 else value.shape[-1]) != c:
                raise SegeduInputError(
                    f"{name} must be {meaning} with {c} channels (transformer_dim={c}), but it has shape "
                    f"{tuple(value.shape)}."
                )
        size = tuple(image_embeddings.shape[-2:])
        for name, value in (("image_pe", image_pe), ("dense_prompt_embeddings", dense)):
            if tuple(value.shape[-2:]) != size:
                raise SegeduInputError(
                    f"{name} must have the h×w of image_embeddings, {size}, but it has shape {tuple(value.shape)}. "
                    f"Build the prompt encoder with image_embedding_size={size}."
                )
        images, prompts = image_embeddings.shape[0], sparse.shape[0]
        if images == 0 or prompts % images:
            raise SegeduInputError(
                f"sparse_prompt_embeddings holds {prompts} prompts for {images} image embeddings; the number of "
                f"prompts must be a multiple of the number of images (prompts k*P/I .. (k+1)*P/I - 1 go with image k). "
                f"Give one image embedding (shared by all prompts) or one per prompt."
            )
        if dense.shape[0] not in (1, prompts):
            raise SegeduInputError(
                f"dense_prompt_embeddings has {dense.shape[0]} samples but there are {prompts} prompts: give one "
                f"dense embedding per prompt (the prompt encoder returns them so)."
            )
        if image_pe.shape[0] not in (1, images):
            raise SegeduInputError(
                f"image_pe has {image_pe.shape[0]} samples for {images} images; pass prompt_encoder.get_dense_pe(), "
                f"which has one."
            )

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All :math:`M + 1` mask logits ``(P, M + 1, 4h, 4w)`` and IoU predictions ``(P, M + 1)``."""
        self._check_inputs(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        prompts = sparse_prompt_embeddings.shape[0]
        prompts_per_image = prompts // image_embeddings.shape[0]

        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.to(sparse_prompt_embeddings.dtype).unsqueeze(0).expand(prompts, -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        # each prompt gets its own copy of its image's embedding: the transformer updates it per prompt
        src = torch.repeat_interleave(image_embeddings, prompts_per_image, dim=0) + dense_prompt_embeddings
        if image_pe.shape[0] == 1:
            pos_src = image_pe.expand(prompts, -1, -1, -1)
        else:
            pos_src = torch.repeat_interleave(image_pe, prompts_per_image, dim=0)
        b, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        # one dynamic 1x1 convolution per mask token: its MLP writes the kernel (a hypernetwork)
        mask_weights = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        masks = dynamic_mask_logits(mask_weights, upscaled)
        iou_pred = self.iou_prediction_head(iou_token_out)
        return masks, iou_pred
