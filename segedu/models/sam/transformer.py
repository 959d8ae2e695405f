r"""SAM's two-way transformer: prompt tokens and image tokens attend to each other.

The mask decoder of SAM (Kirillov et al. 2023, section 3 and appendix A) holds two sets of tokens:

- the **sparse tokens** :math:`T \in \mathbb{R}^{N \times C}`: the output tokens (an IoU token and
  the mask tokens) followed by the prompt embeddings (points, box corners), with their own
  positional part :math:`P_T` (the tokens as they entered, re-added at every layer);
- the **image tokens** :math:`X \in \mathbb{R}^{hw \times C}`: the image embedding flattened over
  its :math:`h \times w` grid (plus a dense mask prompt), with the dense positional encoding
  :math:`P_X` of the prompt encoder.

Each :class:`TwoWayAttentionBlock` runs four steps, each followed by a residual connection and a
layer norm (a "post-norm" transformer, as in Vaswani et al. 2017):

1. self-attention of the tokens:
   :math:`T \leftarrow \mathrm{LN}(T + \mathrm{Attn}(T + P_T,\, T + P_T,\, T))`;
2. **token-to-image** cross-attention, each token reads the image:
   :math:`T \leftarrow \mathrm{LN}(T + \mathrm{Attn}(T + P_T,\, X + P_X,\, X))`;
3. an MLP on each token: :math:`T \leftarrow \mathrm{LN}(T + \mathrm{MLP}(T))`;
4. **image-to-token** cross-attention, each image location reads the tokens, so the image
   embedding itself is updated by the prompt:
   :math:`X \leftarrow \mathrm{LN}(X + \mathrm{Attn}(X + P_X,\, T + P_T,\, T))`.

Positional encodings are added to the queries and keys only, never to the values, so that what is
read is content and where it is read from is geometry. In the first block the tokens *are* their
positional part (:math:`T = P_T`), so step 1 skips adding it (``skip_first_layer_pe``) and also
skips the residual: the first self-attention replaces the tokens instead of adding to them.

After the blocks, one more token-to-image attention (``final_attn_token_to_image``) with a layer
norm (``norm_final_attn``) lets the tokens read the image as the last block has updated it. The
cross-attentions work in ``embedding_dim / attention_downsample_rate`` channels (2 in SAM) to save
compute on the :math:`hw` image tokens.

Every attention is :class:`~segedu.models.sam.attention.Attention` (multi-head scaled dot-product
attention, Vaswani et al. 2017) and the MLP is :class:`~segedu.models.sam.common.MLPBlock`; the
parameter names are segment-anything's, so a state dict loads into
``segment_anything.modeling.TwoWayTransformer`` and back, with equal outputs.

References
----------
.. [1] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643
.. [2] Vaswani, A. et al. "Attention Is All You Need." NeurIPS 2017. arXiv:1706.03762

Examples
--------
>>> import torch
>>> from segedu.models.sam.transformer import TwoWayTransformer
>>> _ = torch.manual_seed(0)
>>> transformer = TwoWayTransformer(depth=2, embedding_dim=32, num_heads=2, mlp_dim=64)
>>> image = torch.randn(1, 32, 4, 4)       # B x C x h x w image embedding
>>> image_pe = torch.randn(1, 32, 4, 4)    # its positional encoding
>>> tokens = torch.randn(1, 7, 32)         # B x N tokens (4 output tokens + 3 prompt tokens)
>>> queries, keys = transformer(image, image_pe, tokens)
>>> tuple(queries.shape), tuple(keys.shape)   # updated tokens, updated image tokens (hw = 16)
((1, 7, 32), (1, 16, 32))
"""

from __future__ import annotations

from typing import Type

import torch
from torch import nn

from ..._validation import SegeduInputError, SegeduTypeError, check_positive_int
from .attention import Attention
from .common import MLPBlock

__all__ = ["TwoWayAttentionBlock", "TwoWayTransformer"]


def _check_heads(embedding_dim: int, num_heads: int, attention_downsample_rate: int) -> None:
    internal = embedding_dim // attention_downsample_rate
    if embedding_dim % num_heads or internal % num_heads or embedding_dim % attention_downsample_rate:
        raise SegeduInputError(
            f"num_heads={num_heads} must divide embedding_dim={embedding_dim} and the cross-attention width "
            f"embedding_dim / attention_downsample_rate = {embedding_dim} / {attention_downsample_rate}; pick "
            f"num_heads and attention_downsample_rate so that both are whole multiples of num_heads "
            f"(e.g. embedding_dim=64, num_heads=4, attention_downsample_rate=2)."
        )


class TwoWayAttentionBlock(nn.Module):
    r"""One block of the two-way transformer: self-attention, token-to-image, MLP, image-to-token.

    Parameters
    ----------
    embedding_dim : int
        Channels :math:`C` of the tokens and of the image embedding.
    num_heads : int
        Heads of every attention; must divide :math:`C` and :math:`C / \text{downsample rate}`.
    mlp_dim : int
        Hidden width of the token MLP (2048 in SAM).
    activation : type of nn.Module
        The MLP's activation (``nn.ReLU`` in SAM's decoder).
    attention_downsample_rate : int
        The cross-attentions project to :math:`C / \text{rate}` channels.
    skip_first_layer_pe : bool
        The first block's tokens are their own positional encoding: the self-attention then neither
        adds it nor keeps a residual.

    Notes
    -----
    Submodules, by segment-anything's names: ``self_attn`` + ``norm1``, ``cross_attn_token_to_image``
    + ``norm2``, ``mlp`` + ``norm3``, ``cross_attn_image_to_token`` + ``norm4``. The module
    docstring gives the four updates.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> block = TwoWayAttentionBlock(embedding_dim=16, num_heads=2, mlp_dim=32)
    >>> tokens, image = torch.randn(2, 5, 16), torch.randn(2, 9, 16)
    >>> q, k = block(tokens, image, query_pe=tokens, key_pe=torch.zeros(2, 9, 16))
    >>> tuple(q.shape), tuple(k.shape)
    ((2, 5, 16), (2, 9, 16))
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        activation: Type[nn.Module] = nn.ReLU,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        num_heads = check_positive_int(num_heads, "num_heads")
        mlp_dim = check_positive_int(mlp_dim, "mlp_dim")
        attention_downsample_rate = check_positive_int(attention_downsample_rate, "attention_downsample_rate")
        _check_heads(embedding_dim, num_heads, attention_downsample_rate)
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.skip_first_layer_pe = bool(skip_first_layer_pe)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the tokens ``queries`` (B, N, C) and the image tokens ``keys`` (B, hw, C).

        ``query_pe`` and ``key_pe`` have the shapes of ``queries`` and ``keys``; they are added to the
        queries and keys of each attention, never to its values. Returns ``(queries, keys)``.
        """
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))

        queries = self.norm3(queries + self.mlp(queries))

        # the image reads the tokens as the MLP has just updated them
        q = queries + query_pe
        k = keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    r"""SAM's decoder transformer: ``depth`` :class:`TwoWayAttentionBlock` s and a final token-to-image attention.

    Parameters
    ----------
    depth : int
        Number of blocks (2 in SAM).
    embedding_dim : int
        Channels :math:`C` of tokens and image embedding (256 in SAM).
    num_heads : int
        Heads of every attention (8 in SAM).
    mlp_dim : int
        Hidden width of the token MLPs (2048 in SAM).
    activation : type of nn.Module
        The MLPs' activation (``nn.ReLU``).
    attention_downsample_rate : int
        The cross-attentions work in :math:`C / \text{rate}` channels (2).

    Notes
    -----
    ``forward(image_embedding, image_pe, point_embedding)`` takes the image embedding and its
    positional encoding as ``(B, C, h, w)`` maps and the tokens as ``(B, N, C)``; it returns the
    updated tokens ``(B, N, C)`` and the updated image tokens ``(B, h·w, C)`` (row-major, as
    ``flatten(2)``). The tokens as they came in serve as their own positional encoding at every
    layer (see the module docstring). Equal to ``segment_anything.modeling.TwoWayTransformer`` on
    the same state dict.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> t = TwoWayTransformer(depth=1, embedding_dim=16, num_heads=2, mlp_dim=32)
    >>> queries, keys = t(torch.randn(3, 16, 2, 5), torch.randn(3, 16, 2, 5), torch.randn(3, 4, 16))
    >>> tuple(queries.shape), tuple(keys.shape)
    ((3, 4, 16), (3, 10, 16))
    >>> sorted(name for name, _ in t.named_children())
    ['final_attn_token_to_image', 'layers', 'norm_final_attn']
    """

    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        activation: Type[nn.Module] = nn.ReLU,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.depth = check_positive_int(depth, "depth")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        self.mlp_dim = check_positive_int(mlp_dim, "mlp_dim")
        attention_downsample_rate = check_positive_int(attention_downsample_rate, "attention_downsample_rate")
        _check_heads(embedding_dim, num_heads, attention_downsample_rate)
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim=embedding_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                activation=activation,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def _check_inputs(self, image_embedding, image_pe, point_embedding) -> None:
        c = self.embedding_dim
        for name, value, ndim, meaning in (
            ("image_embedding", image_embedding, 4, f"B×{c}×h×w"),
            ("image_pe", image_pe, 4, f"B×{c}×h×w"),
            ("point_embedding", point_embedding, 3, f"B×N×{c}"),
        ):
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                raise SegeduTypeError(
                    f"{name} must be a floating-point torch.Tensor ({meaning}), but got "
                    f"{getattr(value, 'dtype', type(value).__name__)}. Convert it with torch.as_tensor(...).float()."
                )
            if value.ndim != ndim:
                raise SegeduInputError(
                    f"{name} must be {meaning} ({ndim}-D), but it has shape {tuple(value.shape)}."
                )
            channels = value.shape[1] if ndim == 4 else value.shape[-1]
            if channels != c:
                raise SegeduInputError(
                    f"{name} has {channels} channels, but this transformer was built with embedding_dim={c}; "
                    f"its shape must be {meaning}, got {tuple(value.shape)}."
                )
        if image_pe.shape[-2:] != image_embedding.shape[-2:] or image_pe.shape[0] not in (1, image_embedding.shape[0]):
            raise SegeduInputError(
                f"image_pe must have the shape of image_embedding {tuple(image_embedding.shape)} (a batch of 1 "
                f"is broadcast), but it has shape {tuple(image_pe.shape)}."
            )
        if point_embedding.shape[0] != image_embedding.shape[0]:
            raise SegeduInputError(
                f"point_embedding has {point_embedding.shape[0]} samples but image_embedding has "
                f"{image_embedding.shape[0]}: give one set of tokens per image embedding (repeat the image "
                f"embedding with torch.repeat_interleave for several prompts per image)."
            )

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_inputs(image_embedding, image_pe, point_embedding)
        # B x C x h x w -> B x hw x C: one token per location of the image embedding
        keys = image_embedding.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2).expand_as(keys)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries=queries, keys=keys, query_pe=point_embedding, key_pe=key_pe)
        q = queries + point_embedding
        k = keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys
