r"""SAM's image encoder: a Vision Transformer over 16×16 patches, with a convolutional neck.

**An image is worth 16×16 words** (Dosovitskiy et al. 2020). The image :math:`x \in
\mathbb{R}^{C \times H \times W}` is cut into :math:`N = HW/p^2` non-overlapping :math:`p \times p`
patches (:func:`patchify`), each flattened to a vector of :math:`C p^2` numbers and mapped linearly
to a token of :math:`D` channels. That linear map on patches *is* a convolution with kernel and
stride :math:`p` (:class:`PatchEmbed`), which is how it is computed.

**Position** is added as a learnt embedding per grid cell (``pos_embed``, ``(1, H/p, W/p, D)``):
attention itself ignores order. Then ``depth`` pre-norm transformer blocks (Vaswani et al. 2017),

.. math::
   t \leftarrow t + \mathrm{MHSA}(\mathrm{LN}(t)), \qquad t \leftarrow t + \mathrm{MLP}(\mathrm{LN}(t)),

where every token attends to every other (*global* attention, :func:`~.attention.attention`).
SAM's ViT-B/L/H use windowed attention with relative positions in most blocks to afford 64×64
tokens; this encoder keeps only global attention (segment-anything's ``window_size=0``,
``global_attn_indexes=()``, ``use_rel_pos=False``), enough for the course's images. The **neck**,
a 1×1 and a 3×3 convolution each followed by :class:`~.common.LayerNorm2d`, brings the tokens back
into an image-like ``(B, out_chans, H/p, W/p)`` embedding for the mask decoder.

**MAE pre-training** (He et al. 2021): SAM's encoder was pre-trained as a masked auto-encoder,
which hides a random 75 % of the patches (:func:`random_masking`), encodes only the visible
quarter and asks a light decoder to paint the hidden pixels back. Neighbouring patches are so
redundant that a low ratio is solved by interpolation; at 75 % the encoder has to understand
objects and their parts, and it runs on a quarter of the tokens, so pre-training is cheap.

References
----------
.. [1] Dosovitskiy, A. et al. "An Image is Worth 16x16 Words: Transformers for Image Recognition
       at Scale." ICLR 2021. arXiv:2010.11929
.. [2] He, K. et al. "Masked Autoencoders Are Scalable Vision Learners." CVPR 2022. arXiv:2111.06377
.. [3] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643
.. [4] Vaswani, A. et al. "Attention Is All You Need." NeurIPS 2017. arXiv:1706.03762

Examples
--------
>>> import torch
>>> encoder = ImageEncoderViT(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, out_chans=16)
>>> encoder(torch.zeros(1, 3, 32, 32)).shape  # 4×4 patches, 16 channels
torch.Size([1, 16, 4, 4])
>>> patchify(torch.zeros(1, 3, 32, 32), 8).shape  # 16 words of 3·8·8 numbers
torch.Size([1, 16, 192])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._validation import (
    SegeduInputError,
    SegeduTypeError,
    _describe,
    _is_torch_tensor,
    check_positive_int,
    check_real_scalar,
    check_size,
)
from .attention import attention
from .common import LayerNorm2d, MLPBlock

__all__ = ["patchify", "random_masking", "PatchEmbed", "ImageEncoderViT"]


def _check_images(images, name: str = "images") -> None:
    if not _is_torch_tensor(images):
        raise SegeduTypeError(
            f"{name} must be a torch.Tensor of shape (B, C, H, W), but got {_describe(images)}. Convert an H×W×C "
            f"numpy image with torch.from_numpy(img).permute(2, 0, 1)[None].float()."
        )
    if not images.is_floating_point():
        raise SegeduTypeError(
            f"{name} must hold floats, but its dtype is {images.dtype}. Use {name}.float() / 255 for uint8 images."
        )
    if images.ndim != 4:
        hint = f" Add the batch axis with {name}[None]." if images.ndim == 3 else ""
        raise SegeduInputError(f"{name} must have shape (B, C, H, W), but it has shape {tuple(images.shape)}.{hint}")


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    r"""Cut images into non-overlapping ``p × p`` patches, each flattened: ``(B, C, H, W) -> (B, N, C·p·p)``.

    Parameters
    ----------
    images : torch.Tensor
        ``(B, C, H, W)`` with :math:`H` and :math:`W` multiples of :math:`p`.
    patch_size : int
        :math:`p` (ViT and SAM: 16).

    Returns
    -------
    torch.Tensor
        ``(B, N, C p^2)`` with :math:`N = (H/p)(W/p)` patches in row-major order of the grid (patch
        ``(i, j)`` is token ``i · W/p + j``). Inside a token the numbers run channel by channel, each
        channel's patch row by row: the order of ``F.unfold`` and of a convolution weight
        ``(D, C, p, p)``, so ``PatchEmbed`` is ``patchify(x) @ W.reshape(D, -1).T + b``. (MAE's
        ``patchify`` puts the channel last; only the order inside a token differs.)

    Examples
    --------
    >>> import torch
    >>> images = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> patchify(images, 2)[0]  # four 2×2 patches: top-left, top-right, bottom-left, bottom-right
    tensor([[ 0.,  1.,  4.,  5.],
            [ 2.,  3.,  6.,  7.],
            [ 8.,  9., 12., 13.],
            [10., 11., 14., 15.]])
    """
    _check_images(images)
    p = check_positive_int(patch_size, "patch_size")
    b, c, h, w = images.shape
    if h % p or w % p:
        raise SegeduInputError(
            f"the image size {h}×{w} must be a multiple of patch_size = {p} in both directions. Crop or pad the "
            f"images to {h // p * p}×{w // p * p} or {math.ceil(h / p) * p}×{math.ceil(w / p) * p}, e.g. with "
            f"torch.nn.functional.pad."
        )
    grid = images.reshape(b, c, h // p, p, w // p, p)  # (B, C, rows, p, cols, p)
    return grid.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), c * p * p)


def random_masking(tokens: torch.Tensor, mask_ratio: float = 0.75, generator: torch.Generator | None = None):
    r"""MAE's random masking: keep a random subset of each sample's tokens, as He et al. do it.

    Each token draws a uniform noise value; the tokens with the smallest values are kept.
    Sorting noise is a cheap way to draw a random permutation per sample, and its inverse
    permutation puts the tokens back.

    Parameters
    ----------
    tokens : torch.Tensor
        ``(B, N, D)``, e.g. ``patchify(images, p)`` or the output of a patch embedding.
    mask_ratio : float
        Fraction of tokens to remove, in ``[0, 1)`` (MAE: 0.75). ``round(N · (1 - mask_ratio))``
        tokens are kept.
    generator : torch.Generator, optional
        For reproducible masks (the noise is drawn on the generator's device).

    Returns
    -------
    kept : torch.Tensor
        ``(B, K, D)``, the kept tokens in the random order of the permutation.
    mask : torch.Tensor
        ``(B, N)`` boolean, **True where a token was removed**, in the original order.
    ids_restore : torch.Tensor
        ``(B, N)`` int64: ``torch.cat([kept, filler], 1).gather(1, ids_restore[..., None].expand(-1, -1, D))``
        is in the original token order, the kept tokens back in their places (MAE's decoder does
        this with learnt mask tokens as the filler).

    References
    ----------
    He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, §3. arXiv:2111.06377

    Examples
    --------
    >>> import torch
    >>> tokens = torch.arange(8.0).reshape(1, 8, 1)
    >>> kept, mask, ids_restore = random_masking(tokens, 0.75, generator=torch.Generator().manual_seed(0))
    >>> kept.shape, int(mask.sum())  # 2 of 8 tokens kept, 6 removed
    (torch.Size([1, 2, 1]), 6)
    >>> bool((tokens[0, ~mask[0], 0].sort().values == kept[0, :, 0].sort().values).all())
    True
    """
    if not _is_torch_tensor(tokens) or tokens.ndim != 3:
        shape = tuple(tokens.shape) if hasattr(tokens, "shape") else _describe(tokens)
        raise SegeduInputError(
            f"tokens must be a (B, N, D) tensor, but got {shape}. Make tokens of images with patchify(images, p)."
        )
    mask_ratio = check_real_scalar(mask_ratio, "mask_ratio", minimum=0.0)
    if mask_ratio >= 1:
        raise SegeduInputError(
            f"mask_ratio is the fraction of tokens removed and must lie in [0, 1), but got {mask_ratio}. "
            f"MAE uses 0.75."
        )
    b, n, d = tokens.shape
    keep = int(round(n * (1 - mask_ratio)))
    noise_device = generator.device if generator is not None else tokens.device
    noise = torch.rand(b, n, generator=generator, device=noise_device).to(tokens.device)
    ids_shuffle = noise.argsort(dim=1)  # a random permutation per sample: smallest noise first
    ids_restore = ids_shuffle.argsort(dim=1)  # its inverse
    ids_keep = ids_shuffle[:, :keep]
    kept = tokens.gather(1, ids_keep[..., None].expand(-1, -1, d))
    mask = torch.ones(b, n, dtype=torch.bool, device=tokens.device)
    mask[:, :keep] = False  # in shuffled order: the first `keep` are kept
    return kept, mask.gather(1, ids_restore), ids_restore


class PatchEmbed(nn.Module):
    r"""Patches to tokens: a convolution with kernel = stride = patch size, output ``(B, H', W', D)``.

    Parameters
    ----------
    kernel_size, stride : tuple of int
        ``(p, p)`` both, for non-overlapping patches (SAM: 16).
    padding : tuple of int
        Zero padding of the image (default none).
    in_chans : int
        Image channels :math:`C`.
    embed_dim : int
        Token channels :math:`D`.

    The weight ``proj.weight`` ``(D, C, p, p)`` reshaped to ``(D, C p^2)`` is the matrix of the
    linear map on :func:`patchify`'s vectors.

    Examples
    --------
    >>> import torch
    >>> embed = PatchEmbed((4, 4), (4, 4), in_chans=3, embed_dim=5)
    >>> x = torch.randn(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    >>> tokens = patchify(x, 4) @ embed.proj.weight.reshape(5, -1).T + embed.proj.bias
    >>> bool(torch.allclose(embed(x).reshape(2, -1, 5), tokens, atol=1e-5))
    True
    """

    def __init__(
        self,
        kernel_size=(16, 16),
        stride=(16, 16),
        padding=(0, 0),
        in_chans: int = 3,
        embed_dim: int = 768,
    ) -> None:
        super().__init__()
        kernel_size = check_size(kernel_size, "kernel_size")
        stride = check_size(stride, "stride")
        self.in_chans = check_positive_int(in_chans, "in_chans")
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "x")
        if x.shape[1] != self.in_chans:
            raise SegeduInputError(
                f"x has {x.shape[1]} channels, but this PatchEmbed was built for in_chans = {self.in_chans} "
                f"(shape {tuple(x.shape)}). Check that the channels are on axis 1 (B, C, H, W)."
            )
        return self.proj(x).permute(0, 2, 3, 1)  # tokens as an image of channels-last vectors


class SelfAttention(nn.Module):
    """Global multi-head self-attention on a ``(B, H, W, C)`` grid of tokens, one fused ``qkv``
    projection and ``proj`` (segment-anything's ``image_encoder.Attention`` without relative positions).

    >>> import torch
    >>> SelfAttention(8, num_heads=2)(torch.zeros(1, 3, 3, 8)).shape
    torch.Size([1, 3, 3, 8])
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True) -> None:
        super().__init__()
        dim = check_positive_int(dim, "dim")
        num_heads = check_positive_int(num_heads, "num_heads")
        if dim % num_heads:
            raise SegeduInputError(
                f"num_heads = {num_heads} must divide embed_dim = {dim}, so that every head gets the same number "
                f"of channels. Pick num_heads among the divisors of {dim}."
            )
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, C/heads)
        out = attention(q, k, v).transpose(1, 2).reshape(b, h, w, c)
        return self.proj(out)


class Block(nn.Module):
    """A pre-norm transformer block on a ``(B, H, W, C)`` grid: ``x + attn(norm1(x))``, then
    ``x + mlp(norm2(x))`` (segment-anything's ``image_encoder.Block`` with ``window_size=0``).

    >>> import torch
    >>> Block(8, num_heads=2)(torch.zeros(1, 2, 2, 8)).shape
    torch.Size([1, 2, 2, 8])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = SelfAttention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.norm2 = norm_layer(dim)
        self.mlp = MLPBlock(embedding_dim=dim, mlp_dim=int(dim * mlp_ratio), act=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ImageEncoderViT(nn.Module):
    r"""SAM's ViT image encoder with global attention: ``(B, C, S, S) -> (B, out_chans, S/p, S/p)``.

    Parameters
    ----------
    img_size : int
        :math:`S`, the (square) input size (SAM: 1024).
    patch_size : int
        :math:`p`, a divisor of ``img_size`` (SAM: 16).
    in_chans : int
        Image channels.
    embed_dim, depth, num_heads : int
        Token width :math:`D`, number of blocks and of heads (ViT-B: 768, 12, 12).
    mlp_ratio : float
        Hidden width of the blocks' MLP as a multiple of :math:`D` (4).
    out_chans : int
        Channels of the image embedding after the neck (SAM: 256, the prompt width).
    qkv_bias : bool
        Biases in the fused ``qkv`` projection.
    use_abs_pos : bool
        Learnt absolute position embedding ``pos_embed`` ``(1, S/p, S/p, D)`` (zeros at first).
    norm_layer, act_layer : type of nn.Module
        ``nn.LayerNorm`` (segment-anything's default; its ``build_sam`` passes eps 1e-6) and ``nn.GELU``.

    Notes
    -----
    Parameter names are segment-anything's (``patch_embed.proj``, ``pos_embed``,
    ``blocks.{i}.norm1``, ``.attn.qkv``, ``.attn.proj``, ``.norm2``, ``.mlp.lin1``, ``.mlp.lin2``,
    ``neck.0``–``neck.3``), so this equals segment-anything's ``ImageEncoderViT(...,
    use_rel_pos=False, window_size=0, global_attn_indexes=())`` with the same state dict.

    Examples
    --------
    >>> import torch
    >>> encoder = ImageEncoderViT(img_size=16, patch_size=4, embed_dim=8, depth=1, num_heads=2, out_chans=4)
    >>> encoder.pos_embed.shape, encoder(torch.zeros(2, 3, 16, 16)).shape
    (torch.Size([1, 4, 4, 8]), torch.Size([2, 4, 4, 4]))
    """

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        qkv_bias: bool = True,
        use_abs_pos: bool = True,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.img_size = check_positive_int(img_size, "img_size")
        patch_size = check_positive_int(patch_size, "patch_size")
        if img_size % patch_size:
            raise SegeduInputError(
                f"img_size = {img_size} must be a multiple of patch_size = {patch_size}; pick a divisor, e.g. "
                f"patch_size = {math.gcd(img_size, 16) or 1}."
            )
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        depth = check_positive_int(depth, "depth", minimum=0)
        out_chans = check_positive_int(out_chans, "out_chans")
        self.patch_size = patch_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(
            kernel_size=(patch_size, patch_size),
            stride=(patch_size, patch_size),
            in_chans=in_chans,
            embed_dim=embed_dim,
        )
        self.pos_embed: nn.Parameter | None = None
        if use_abs_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_layer, act_layer) for _ in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, "x")
        if tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise SegeduInputError(
                f"x must be {self.img_size}×{self.img_size} images (the encoder's img_size: its position "
                f"embedding has one entry per patch of that size), but it has shape {tuple(x.shape)}. Resize "
                f"with F.interpolate(x, size=({self.img_size}, {self.img_size}), mode='bilinear')."
            )
        x = self.patch_embed(x)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
