r"""SAM's prompt encoder: points and boxes to sparse tokens, a mask prompt to a dense map.

**Positions** are encoded with random Fourier features (Tancik et al. 2020): a point
:math:`c \in [0, 1]^2` (x, y as fractions of the image width and height) is mapped to
:math:`[-1, 1]^2`, projected on :math:`F` random directions, the columns of a fixed Gaussian matrix
:math:`G \in \mathbb{R}^{2 \times F}`, and wrapped by sine and cosine:

.. math:: \gamma(c) = \bigl[\sin(2\pi\,(2c - 1)\,G),\ \cos(2\pi\,(2c - 1)\,G)\bigr] \in \mathbb{R}^{2F}.

Nearby points get similar codes, and the dot product of two codes depends (approximately) on the
offset between the points only, so attention can reason about relative positions; a network fed
the raw :math:`(x, y)` learns high-frequency detail poorly (the spectral bias that Tancik et al.
remove this way). The same encoding, evaluated at every cell centre of the image embedding's grid,
is the image's positional encoding (``get_dense_pe``), so prompts and pixels share one frame.

**Sparse prompts** (one token each, ``embed_dim`` wide): a point's code plus a learnt embedding of
its type: ``point_embeddings[1]`` foreground (label 1), ``point_embeddings[0]`` background (label
0); padding points (label −1) are replaced by ``not_a_point_embed``. Pixel coordinates are shifted
by +0.5 to the pixel's centre first. A box is two tokens, its top-left and bottom-right corners,
each with its own corner embedding (``point_embeddings[2]``, ``[3]``). Points without a box get a
padding point appended, as segment-anything does (the decoder was trained so).

**Dense prompt**: a low-resolution mask (``4×`` the embedding grid, e.g. 256² for SAM) goes
through ``mask_downscaling`` (two stride-2 convolutions with ``LayerNorm2d`` and GELU, a 1×1
projection) to the embedding grid; without one, the learnt ``no_mask_embed`` is broadcast.

References
----------
.. [1] Kirillov, A. et al. "Segment Anything." ICCV 2023. arXiv:2304.02643
.. [2] Tancik, M. et al. "Fourier Features Let Networks Learn High Frequency Functions in Low
       Dimensional Domains." NeurIPS 2020. arXiv:2006.10739

Examples
--------
>>> import torch
>>> gaussian = torch.tensor([[1.0, 0.5], [0.0, 2.0]])  # (2, F) with F = 2
>>> fourier_encoding(torch.tensor([[0.5, 0.5]]), gaussian)  # the centre maps to 0: sin 0, cos 0
tensor([[0., 0., 1., 1.]])
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
    check_size,
)
from .common import LayerNorm2d

__all__ = ["fourier_encoding", "PositionEmbeddingRandom", "PromptEncoder"]


def fourier_encoding(coords: torch.Tensor, gaussian_matrix: torch.Tensor) -> torch.Tensor:
    r"""Random Fourier features :math:`[\sin(2\pi(2c - 1)G), \cos(2\pi(2c - 1)G)]` of points in [0, 1].

    Parameters
    ----------
    coords : torch.Tensor
        ``(..., 2)`` floating-point points ``(x, y)`` normalised to ``[0, 1]`` (pixel / size).
        Values a little outside (a box corner at the border + 0.5) are fine: the code is periodic
        in no useful sense there, but defined.
    gaussian_matrix : torch.Tensor
        ``(2, F)``, SAM's ``positional_encoding_gaussian_matrix`` (:math:`\mathcal{N}(0, s^2)`
        entries).

    Returns
    -------
    torch.Tensor
        ``(..., 2F)``: the :math:`F` sines first, then the :math:`F` cosines, in ``coords``' dtype
        (the matrix is cast to it) on its device.

    Notes
    -----
    Equal to segment-anything's ``PositionEmbeddingRandom._pe_encoding`` given the same matrix.
    Both details matter for the weights to transfer: the map :math:`c \mapsto 2c - 1` (centred
    coordinates) and the order sin, then cos.

    References
    ----------
    Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions", NeurIPS 2020,
    §4 (Gaussian random features). arXiv:2006.10739

    Examples
    --------
    >>> import torch
    >>> gaussian = torch.tensor([[0.125], [0.0]])  # one frequency along x
    >>> code = fourier_encoding(torch.tensor([[1.0, 0.3]]), gaussian)  # 2x - 1 = 1: angle 2 pi / 8
    >>> [round(v, 6) for v in code[0].tolist()]  # sin(pi/4), cos(pi/4)
    [0.707107, 0.707107]
    """
    if not _is_torch_tensor(coords) or not coords.is_floating_point():
        raise SegeduTypeError(
            f"coords must be a floating-point torch.Tensor of (x, y) points in [0, 1], shape (..., 2), but got "
            f"{_describe(coords)}" + (f" with dtype {coords.dtype}" if _is_torch_tensor(coords) else "")
            + ". Divide pixel coordinates by the image size: coords / torch.tensor([W, H])."
        )
    if coords.ndim < 1 or coords.shape[-1] != 2:
        raise SegeduInputError(
            f"coords must end with an axis of 2 (x, y), shape (..., 2), but it has shape {tuple(coords.shape)}. "
            f"Stack x and y with torch.stack([x, y], dim=-1)."
        )
    if not _is_torch_tensor(gaussian_matrix) or gaussian_matrix.ndim != 2 or gaussian_matrix.shape[0] != 2:
        shape = tuple(gaussian_matrix.shape) if hasattr(gaussian_matrix, "shape") else _describe(gaussian_matrix)
        raise SegeduInputError(
            f"gaussian_matrix must be a (2, F) tensor (one row per coordinate, F frequencies), but got {shape}. "
            f"Transpose an (F, 2) matrix with gaussian_matrix.T."
        )
    if gaussian_matrix.device != coords.device:
        raise SegeduInputError(
            f"gaussian_matrix is on {gaussian_matrix.device}, but coords are on {coords.device}. "
            f"Move one with .to(coords.device)."
        )
    angles = 2 * math.pi * ((2 * coords - 1) @ gaussian_matrix.to(coords.dtype))
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class PositionEmbeddingRandom(nn.Module):
    r"""Random Fourier positional encoding with a fixed Gaussian matrix (a buffer, not learnt).

    Parameters
    ----------
    num_pos_feats : int
        :math:`F`; codes have :math:`2F` channels (SAM: 128 for ``embed_dim`` 256).
    scale : float, optional
        Standard deviation :math:`s` of the matrix entries; ``None`` or :math:`\le 0` means 1
        (segment-anything's rule). Larger :math:`s` gives higher frequencies, finer position codes.

    The buffer ``positional_encoding_gaussian_matrix`` is drawn from torch's global generator
    (seed it with ``torch.manual_seed``) and saved in the state dict.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> pe = PositionEmbeddingRandom(num_pos_feats=4)
    >>> pe((2, 3)).shape  # (2F, H, W)
    torch.Size([8, 2, 3])
    >>> centre_of_cell_0_0 = torch.tensor([[1 / 6, 1 / 4]])  # x = 0.5 / W, y = 0.5 / H
    >>> code = fourier_encoding(centre_of_cell_0_0, pe.positional_encoding_gaussian_matrix)[0]
    >>> bool(torch.allclose(pe((2, 3))[:, 0, 0], code))
    True
    """

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        num_pos_feats = check_positive_int(num_pos_feats, "num_pos_feats")
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def forward(self, size) -> torch.Tensor:
        """The codes of the cell centres of an ``H×W`` grid, ``(2F, H, W)``: cell ``(i, j)`` sits at
        ``((j + 0.5) / W, (i + 0.5) / H)``."""
        h, w = check_size(size, "size")
        matrix = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=matrix.device, dtype=matrix.dtype) + 0.5) / h
        xs = (torch.arange(w, device=matrix.device, dtype=matrix.dtype) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2), (x, y) per cell
        return fourier_encoding(grid, matrix).permute(2, 0, 1)

    def forward_with_coords(self, coords_input: torch.Tensor, image_size) -> torch.Tensor:
        """The codes of pixel coordinates ``(B, N, 2)`` ``(x, y)`` in an image of ``image_size = (H, W)``."""
        h, w = check_size(image_size, "image_size")
        if not _is_torch_tensor(coords_input) or coords_input.ndim < 1 or coords_input.shape[-1] != 2:
            shape = tuple(coords_input.shape) if hasattr(coords_input, "shape") else _describe(coords_input)
            raise SegeduInputError(f"coords_input must be (..., 2) pixel coordinates (x, y), but got {shape}.")
        matrix = self.positional_encoding_gaussian_matrix
        coords = coords_input if coords_input.is_floating_point() else coords_input.to(matrix.dtype)
        scale = torch.tensor([w, h], dtype=coords.dtype, device=coords.device)  # x by width, y by height
        return fourier_encoding(coords / scale, matrix)


class PromptEncoder(nn.Module):
    r"""Points, boxes and masks to SAM's sparse and dense prompt embeddings (segment-anything's layout).

    Parameters
    ----------
    embed_dim : int
        Width of the prompt tokens and of the dense embedding (SAM: 256). Even.
    image_embedding_size : tuple of int
        ``(h, w)`` of the image encoder's output grid (SAM: 64×64).
    input_image_size : tuple of int
        ``(H, W)`` of the (padded) image the points are given in, in pixels (SAM: 1024×1024).
    mask_in_chans : int
        Hidden channels of ``mask_downscaling`` (SAM: 16); a multiple of 4.
    activation : type of nn.Module
        Activation in ``mask_downscaling`` (default ``nn.GELU``).

    ``forward(points, boxes, masks)``:

    - ``points``: ``None`` or a pair ``(coords (B, N, 2) pixels (x, y), labels (B, N))`` with labels
      1 foreground, 0 background, −1 padding;
    - ``boxes``: ``None`` or ``(B, 4)`` ``x0, y0, x1, y1`` pixels;
    - ``masks``: ``None`` or ``(B, 1, 4h, 4w)`` mask logits (e.g. a previous prediction);

    returns ``sparse (B, N', embed_dim)`` (points, then the padding point or the two box corners)
    and ``dense (B, embed_dim, h, w)``. With no prompt at all the batch size is 1. The outputs
    have the module's dtype and device (the prompts are converted: ``encoder.double()`` gives
    float64 embeddings), as the learnt embeddings they are added to.

    Examples
    --------
    >>> import torch
    >>> encoder = PromptEncoder(embed_dim=8, image_embedding_size=(4, 4), input_image_size=(32, 32), mask_in_chans=4)
    >>> points = (torch.tensor([[[10.0, 20.0]]]), torch.tensor([[1]]))  # one foreground click
    >>> sparse, dense = encoder(points, None, None)
    >>> sparse.shape, dense.shape  # the click and a padding point; no_mask_embed on the 4×4 grid
    (torch.Size([1, 2, 8]), torch.Size([1, 8, 4, 4]))
    >>> sparse, _ = encoder(points, torch.tensor([[4.0, 4.0, 28.0, 28.0]]), None)
    >>> sparse.shape  # the click and the box's two corners
    torch.Size([1, 3, 8])
    >>> encoder.get_dense_pe().shape
    torch.Size([1, 8, 4, 4])
    """

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size,
        input_image_size,
        mask_in_chans: int,
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        if embed_dim % 2:
            raise SegeduInputError(
                f"embed_dim must be even (half sines, half cosines in the positional code), but got {embed_dim}."
            )
        mask_in_chans = check_positive_int(mask_in_chans, "mask_in_chans", minimum=4)
        if mask_in_chans % 4:
            raise SegeduInputError(
                f"mask_in_chans must be a multiple of 4 (the first convolution has mask_in_chans // 4 channels), "
                f"but got {mask_in_chans}. SAM uses 16."
            )
        self.embed_dim = embed_dim
        self.image_embedding_size = check_size(image_embedding_size, "image_embedding_size")
        self.input_image_size = check_size(input_image_size, "input_image_size")
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.num_point_embeddings = 4  # background point, foreground point, box corner 1, box corner 2
        self.point_embeddings = nn.ModuleList([nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings)])
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        h, w = self.image_embedding_size
        self.mask_input_size = (4 * h, 4 * w)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            activation(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            activation(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """The positional code of every cell of the image embedding, ``(1, embed_dim, h, w)``."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points.to(self.not_a_point_embed.weight.dtype) + 0.5  # the centre of the pixel
        if pad:
            # the decoder always saw a padding token when no box followed the points
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((labels.shape[0], 1), -1)], dim=1)
        embedding = self.pe_layer.forward_with_coords(points, self.input_image_size)
        labels = labels[..., None]
        embedding = torch.where(labels == -1, self.not_a_point_embed.weight, embedding)  # position ignored
        embedding = embedding + (labels == 0) * self.point_embeddings[0].weight
        return embedding + (labels == 1) * self.point_embeddings[1].weight

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        corners = (boxes.to(self.not_a_point_embed.weight.dtype) + 0.5).reshape(-1, 2, 2)
        embedding = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        corner_types = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight])  # (2, C)
        return embedding + corner_types

    def _embed_masks(self, masks: torch.Tensor) -> torch.Tensor:
        return self.mask_downscaling(masks)

    def _check_prompts(self, points, boxes, masks) -> int:
        """The batch size the prompts agree on (1 without prompts); a clear error otherwise."""
        device = self.no_mask_embed.weight.device
        coords, labels = points if isinstance(points, (tuple, list)) and len(points) == 2 else (None, None)
        given = [("point coords", coords), ("point labels", labels), ("boxes", boxes), ("masks", masks)]
        for name, x in given:
            if _is_torch_tensor(x) and x.device != device:
                raise SegeduInputError(
                    f"{name} are on {x.device}, but the prompt encoder is on {device}. Move the prompts with "
                    f".to({str(device)!r}) (or the model with .to(device))."
                )
        sizes = {}
        if points is not None:
            if not isinstance(points, (tuple, list)) or len(points) != 2:
                raise SegeduTypeError(
                    f"points must be a pair (coords, labels), but got {_describe(points)}. "
                    f"Pass points=(coords, labels) with coords (B, N, 2) and labels (B, N)."
                )
            coords, labels = points
            if not _is_torch_tensor(coords) or coords.ndim != 3 or coords.shape[-1] != 2:
                shape = tuple(coords.shape) if hasattr(coords, "shape") else _describe(coords)
                raise SegeduInputError(
                    f"point coords must have shape (B, N, 2), (x, y) pixels, but got {shape}. "
                    f"For one point per image use coords[:, None, :]."
                )
            if not _is_torch_tensor(labels) or tuple(labels.shape) != tuple(coords.shape[:2]):
                shape = tuple(labels.shape) if hasattr(labels, "shape") else _describe(labels)
                raise SegeduInputError(
                    f"point labels must have shape (B, N) = {tuple(coords.shape[:2])}, one per point, but got {shape}."
                )
            if labels.is_floating_point() or labels.dtype == torch.bool:
                raise SegeduTypeError(
                    f"point labels must be integers (1 foreground, 0 background, -1 padding), but their dtype is "
                    f"{labels.dtype}. Use labels.long()."
                )
            if labels.numel() and labels.device.type != "meta" and bool(((labels < -1) | (labels > 1)).any()):
                raise SegeduInputError(
                    f"point labels must be 1 (foreground), 0 (background) or -1 (padding), but they hold "
                    f"{sorted(set(labels.unique().tolist()))}."
                )
            sizes["points"] = coords.shape[0]
        if boxes is not None:
            if not _is_torch_tensor(boxes) or boxes.shape[-1:] != (4,) or boxes.ndim not in (2, 3) or (
                boxes.ndim == 3 and boxes.shape[1] != 1
            ):
                shape = tuple(boxes.shape) if hasattr(boxes, "shape") else _describe(boxes)
                raise SegeduInputError(f"boxes must have shape (B, 4), x0 y0 x1 y1 pixels, but got {shape}.")
            sizes["boxes"] = boxes.shape[0]
        if masks is not None:
            expected = (1, *self.mask_input_size)
            if not _is_torch_tensor(masks) or masks.ndim != 4 or tuple(masks.shape[1:]) != expected:
                shape = tuple(masks.shape) if hasattr(masks, "shape") else _describe(masks)
                raise SegeduInputError(
                    f"masks must have shape (B, {', '.join(map(str, expected))}): one low-resolution mask of logits "
                    f"at 4x the embedding grid, but got {shape}. Resize with F.interpolate(masks, size="
                    f"{self.mask_input_size}, mode='bilinear')."
                )
            sizes["masks"] = masks.shape[0]
        if len(set(sizes.values())) > 1:
            raise SegeduInputError(
                f"the prompts must have the same batch size, but got {sizes}. Give each image one set of prompts."
            )
        return next(iter(sizes.values()), 1)

    def forward(self, points, boxes, masks) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size = self._check_prompts(points, boxes, masks)
        weight = self.no_mask_embed.weight
        sparse = weight.new_empty((batch_size, 0, self.embed_dim))
        if points is not None:
            coords, labels = points
            sparse = torch.cat([sparse, self._embed_points(coords, labels, pad=boxes is None)], dim=1)
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self._embed_masks(masks.to(weight.dtype))
        else:
            h, w = self.image_embedding_size
            dense = weight.reshape(1, -1, 1, 1).expand(batch_size, -1, h, w)
        return sparse, dense
