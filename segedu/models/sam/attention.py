r"""Scaled dot-product attention by hand, and SAM's multi-head attention layer.

For queries :math:`Q \in \mathbb{R}^{L \times d}`, keys :math:`K \in \mathbb{R}^{S \times d}` and
values :math:`V \in \mathbb{R}^{S \times d_v}` (Vaswani et al. 2017, equation 1):

.. math:: \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\Bigl(\frac{Q K^\top}{\sqrt{d}}\Bigr) V ,

with the softmax over the :math:`S` keys (each query's weights sum to 1). Without the
:math:`1/\sqrt{d}` the dot products of random :math:`d`-dimensional vectors grow like
:math:`\sqrt{d}`, the softmax saturates to one-hot and its gradients vanish.

:class:`Attention` projects the three inputs to ``embedding_dim // downsample_rate`` channels,
splits them into ``num_heads`` heads of :math:`d = ` ``internal_dim / num_heads`` channels each,
attends in every head independently, joins the heads and projects back:

.. math:: \mathrm{MHA}(q, k, v) = W_o\,[\mathrm{head}_1; \dots; \mathrm{head}_h], \quad
   \mathrm{head}_i = \mathrm{Attention}(q W_q^i, k W_k^i, v W_v^i).

SAM's two-way transformer attends from the tokens to the image at half width
(``downsample_rate=2``) to save compute. The parameter names (``q_proj``, ``k_proj``, ``v_proj``,
``out_proj``) are segment-anything's.

References
----------
.. [1] Vaswani, A. et al. "Attention Is All You Need." NeurIPS 2017. arXiv:1706.03762
.. [2] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643

Examples
--------
>>> import torch, torch.nn.functional as F
>>> g = torch.Generator().manual_seed(0)
>>> q, k, v = (torch.randn(2, 4, 5, 8, generator=g) for _ in range(3))
>>> bool(torch.allclose(attention(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-6))
True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._validation import SegeduInputError, SegeduTypeError, _describe, _is_torch_tensor, check_positive_int

__all__ = ["attention", "Attention"]


def _check_qkv(q, k, v) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not _is_torch_tensor(x):
            raise SegeduTypeError(
                f"{name} must be a torch.Tensor of shape (..., tokens, channels), but got {_describe(x)}."
            )
        if not x.is_floating_point():
            raise SegeduTypeError(
                f"{name} must be a floating-point tensor, but its dtype is {x.dtype}. Use {name}.float()."
            )
        if x.ndim < 2:
            raise SegeduInputError(
                f"{name} must have at least 2 axes (..., tokens, channels), but it has shape {tuple(x.shape)}. "
                f"For a single token add the token axis with {name}[None]."
            )
    if not (q.dtype == k.dtype == v.dtype):
        raise SegeduTypeError(
            f"q, k and v must have the same dtype, but they are {q.dtype}, {k.dtype} and {v.dtype}. "
            f"Convert them with .to(q.dtype)."
        )
    if not (q.device == k.device == v.device):
        raise SegeduInputError(
            f"q, k and v must be on the same device, but they are on {q.device}, {k.device} and {v.device}. "
            f"Move them with .to(q.device)."
        )
    if q.shape[-1] != k.shape[-1]:
        raise SegeduInputError(
            f"q and k must have the same number of channels (last axis) to take dot products, but q has shape "
            f"{tuple(q.shape)} and k {tuple(k.shape)}. Project them to a common size first."
        )
    if k.shape[-2] != v.shape[-2]:
        raise SegeduInputError(
            f"k and v must have one row per key (the same second-to-last axis), but k has shape {tuple(k.shape)} "
            f"and v {tuple(v.shape)}. Each key comes with its value."
        )
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise SegeduInputError(
            f"the batch axes (all but the last two) of q {tuple(q.shape)}, k {tuple(k.shape)} and v "
            f"{tuple(v.shape)} do not broadcast. Give them equal batch axes, or size 1 where one is shared."
        ) from None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Scaled dot-product attention :math:`\mathrm{softmax}(q k^\top / \sqrt{d})\, v`, written out.

    Parameters
    ----------
    q : torch.Tensor
        Queries, ``(..., L, d)``.
    k : torch.Tensor
        Keys, ``(..., S, d)``.
    v : torch.Tensor
        Values, ``(..., S, d_v)``. The batch axes ``...`` of the three broadcast as in
        ``torch.matmul``; e.g. ``(B, heads, tokens, d)`` for multi-head attention.

    Returns
    -------
    torch.Tensor
        ``(..., L, d_v)``, in the inputs' dtype and device: row :math:`i` is the average of the
        values weighted by :math:`\mathrm{softmax}_j(q_i \cdot k_j / \sqrt{d})`.

    Notes
    -----
    Equal (to rounding) to ``torch.nn.functional.scaled_dot_product_attention(q, k, v)`` without a
    mask or dropout; that function also picks fused kernels (FlashAttention) which never build the
    :math:`L \times S` matrix of weights, while this one does, so that it can be read and taught.

    References
    ----------
    Vaswani et al., "Attention Is All You Need", NeurIPS 2017, equation 1. arXiv:1706.03762

    Examples
    --------
    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0]])           # one query
    >>> k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # two keys
    >>> v = torch.tensor([[10.0], [20.0]])
    >>> w = torch.softmax(torch.tensor([1.0, 0.0]) / 2 ** 0.5, 0)  # the weights of the two values
    >>> bool(torch.allclose(attention(q, k, v), w @ v))
    True
    """
    _check_qkv(q, k, v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, S)
    weights = torch.softmax(scores, dim=-1)  # over the keys: each query's weights sum to 1
    return weights @ v


class Attention(nn.Module):
    r"""Multi-head attention with query, key, value and output projections, as segment-anything's.

    Parameters
    ----------
    embedding_dim : int
        Channels :math:`C` of the inputs and of the output.
    num_heads : int
        Number of heads :math:`h`; must divide ``embedding_dim // downsample_rate``.
    downsample_rate : int
        The projections map :math:`C` to ``internal_dim = C // downsample_rate`` channels
        (default 1; SAM's token-to-image attention uses 2).

    Shapes
    ------
    ``forward(q, k, v)`` takes ``q`` ``(B, N_q, C)``, ``k`` and ``v`` ``(B, N_k, C)``, returns
    ``(B, N_q, C)``.

    Examples
    --------
    >>> import torch
    >>> layer = Attention(8, num_heads=2, downsample_rate=2)
    >>> layer.q_proj.weight.shape  # 8 -> 4 internal channels, 2 per head
    torch.Size([4, 8])
    >>> tokens, image = torch.zeros(1, 3, 8), torch.zeros(1, 16, 8)
    >>> layer(tokens, image, image).shape
    torch.Size([1, 3, 8])
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        num_heads = check_positive_int(num_heads, "num_heads")
        downsample_rate = check_positive_int(downsample_rate, "downsample_rate")
        internal_dim = embedding_dim // downsample_rate
        if internal_dim == 0 or internal_dim % num_heads:
            raise SegeduInputError(
                f"num_heads = {num_heads} must divide the internal size embedding_dim // downsample_rate = "
                f"{embedding_dim} // {downsample_rate} = {internal_dim}, so that every head gets the same number "
                f"of channels. Pick num_heads among the divisors of {internal_dim}, or change embedding_dim."
            )
        self.embedding_dim = embedding_dim
        self.internal_dim = internal_dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embedding_dim, internal_dim)
        self.k_proj = nn.Linear(embedding_dim, internal_dim)
        self.v_proj = nn.Linear(embedding_dim, internal_dim)
        self.out_proj = nn.Linear(internal_dim, embedding_dim)

    def _separate_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)  # (B, heads, N, C/heads)

    @staticmethod
    def _recombine_heads(x: torch.Tensor) -> torch.Tensor:
        b, heads, n, c = x.shape
        return x.transpose(1, 2).reshape(b, n, heads * c)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        for name, x in (("q", q), ("k", k), ("v", v)):
            if not _is_torch_tensor(x) or x.ndim != 3 or x.shape[-1] != self.embedding_dim:
                shape = tuple(x.shape) if hasattr(x, "shape") else _describe(x)
                raise SegeduInputError(
                    f"{name} must be a (B, tokens, {self.embedding_dim}) tensor, but got {shape}. "
                    f"Flatten an image embedding (B, C, H, W) with x.flatten(2).transpose(1, 2)."
                )
        if k.shape[:2] != v.shape[:2] or q.shape[0] != k.shape[0]:
            raise SegeduInputError(
                f"q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} must share the batch size, and k "
                f"and v the number of tokens (each key comes with its value)."
            )
        out = attention(
            self._separate_heads(self.q_proj(q)),
            self._separate_heads(self.k_proj(k)),
            self._separate_heads(self.v_proj(v)),
        )
        return self.out_proj(self._recombine_heads(out))
