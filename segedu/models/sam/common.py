r"""Two small blocks every part of SAM uses: a layer norm over image channels and a two-layer MLP.

**LayerNorm2d** normalises each pixel's channel vector of a ``(B, C, H, W)`` feature map, as
``nn.LayerNorm`` does for a ``(B, N, C)`` sequence of tokens (the convolutional necks of SAM and
ConvNeXt need it in channels-first layout):

.. math::
   \mu = \frac{1}{C}\sum_c x_c, \quad \sigma^2 = \frac{1}{C}\sum_c (x_c - \mu)^2, \quad
   y_c = \gamma_c \frac{x_c - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_c .

**MLPBlock** is the transformer's position-wise feed-forward network (Vaswani et al. 2017),
:math:`\mathrm{MLP}(x) = W_2\,\mathrm{act}(W_1 x + b_1) + b_2`, applied to every token alike.

The parameter names (``weight``, ``bias``; ``lin1``, ``lin2``) are segment-anything's, so a state
dict moves between the two packages unchanged.

References
----------
.. [1] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643
.. [2] Vaswani, A. et al. "Attention Is All You Need." NeurIPS 2017. arXiv:1706.03762
.. [3] Ba, J. L., Kiros, J. R. and Hinton, G. E. "Layer Normalization." 2016. arXiv:1607.06450

Examples
--------
>>> import torch
>>> norm = LayerNorm2d(4)
>>> y = norm(torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0)))
>>> bool(y.mean(1).abs().max() < 1e-6), bool((y.var(1, unbiased=False) - 1).abs().max() < 1e-4)
(True, True)
>>> MLPBlock(8, 32)(torch.zeros(2, 5, 8)).shape
torch.Size([2, 5, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from ..._validation import SegeduInputError, SegeduTypeError, _describe, _is_torch_tensor, check_positive_int

__all__ = ["LayerNorm2d", "MLPBlock"]


def _check_features(x, name: str, ndim: int, axis: int, size: int, meaning: str) -> None:
    """``x`` is a floating-point tensor with ``ndim`` axes and ``size`` features along ``axis``."""
    if not _is_torch_tensor(x):
        raise SegeduTypeError(f"{name} must be a torch.Tensor {meaning}, but got {_describe(x)}.")
    if not x.is_floating_point():
        raise SegeduTypeError(
            f"{name} must be a floating-point tensor, but its dtype is {x.dtype}. Use {name}.float()."
        )
    if ndim and x.ndim != ndim:
        raise SegeduInputError(
            f"{name} must be {meaning} ({ndim}-D), but it has shape {tuple(x.shape)}."
            + (f" Add the batch axis with {name}[None]." if x.ndim == ndim - 1 else "")
        )
    if x.shape[axis] != size:
        raise SegeduInputError(
            f"{name} must have {size} features on axis {axis} ({meaning}), but it has shape {tuple(x.shape)}. "
            f"Build the layer with {x.shape[axis]} features, or check that the channels are on axis {axis}."
        )


class LayerNorm2d(nn.Module):
    r"""Layer normalisation over the channel axis of a ``(B, C, H, W)`` map, with a learnt scale and shift.

    Equal to ``nn.LayerNorm(C)`` applied to ``x.permute(0, 2, 3, 1)`` (and to segment-anything's
    ``LayerNorm2d``): see the module docstring for the formula.

    Parameters
    ----------
    num_channels : int
        :math:`C`; the parameters ``weight`` (:math:`\gamma`, ones) and ``bias`` (:math:`\beta`,
        zeros) have this length.
    eps : float
        :math:`\epsilon`, added to the variance (default ``1e-6``, as SAM).

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    >>> ref = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (3,), eps=1e-6).permute(0, 3, 1, 2)
    >>> bool(torch.allclose(LayerNorm2d(3)(x), ref, atol=1e-6))
    True
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        num_channels = check_positive_int(num_channels, "num_channels")
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x, "x", 4, 1, self.weight.shape[0], "a (B, C, H, W) feature map")
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).pow(2).mean(1, keepdim=True)  # biased, as nn.LayerNorm
        x = (x - mean) / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class MLPBlock(nn.Module):
    r"""The transformer's feed-forward block :math:`W_2\,\mathrm{act}(W_1 x + b_1) + b_2` on the last axis.

    Parameters
    ----------
    embedding_dim : int
        Size of each token (input and output).
    mlp_dim : int
        Hidden size (ViT: :math:`4\times` ``embedding_dim``; SAM's decoder: 2048 for 256).
    act : type of nn.Module
        The activation class (default ``nn.GELU``; the two-way transformer uses ``nn.ReLU``).

    Examples
    --------
    >>> import torch
    >>> mlp = MLPBlock(4, 16, act=torch.nn.ReLU)
    >>> x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(mlp(x), mlp.lin2(torch.relu(mlp.lin1(x)))))
    True
    """

    def __init__(self, embedding_dim: int, mlp_dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        mlp_dim = check_positive_int(mlp_dim, "mlp_dim")
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x, "x", 0, -1, self.lin1.in_features, "of tokens (..., embedding_dim)")
        return self.lin2(self.act(self.lin1(x)))
