"""Region-of-interest pooling: RoIAlign and RoIPool, as in ``torchvision.ops``.

A detector proposes boxes of every size; its heads want a fixed ``P×P`` grid of features per box.
*RoIPool* (Girshick, Fast R-CNN, arXiv:1504.08083) rounds the box to whole feature cells and takes the
maximum over each of ``P×P`` bins, so the pooled features move by a whole cell when the box moves by
less than one: the *quantisation* that misaligns Mask R-CNN's masks. *RoIAlign* (He et al., Mask R-CNN,
arXiv:1703.06870) keeps the box's real coordinates, splits it into ``P×P`` bins, samples each bin at a
regular ``g×g`` grid of points by bilinear interpolation and averages them.

For a box ``(x1, y1, x2, y2)`` on an image, a feature map with stride ``s`` sees it at
``spatial_scale = 1 / s``. With ``aligned=True`` the box is first shifted by half a cell,
``x -> x * spatial_scale - 0.5``, because pixel ``i`` of the map covers ``[i, i + 1)`` and its value sits at
its centre ``i + 0.5`` (the "half-pixel" fix of Detectron2; ``aligned=False`` is the original paper's
rule, kept by torchvision for backward compatibility, and forces every box to at least 1×1 cells). Bin
``(i, j)`` of a box of height ``h`` and width ``w`` at ``(y0, x0)`` is sampled at

.. math::

    y = y_0 + i \\frac{h}{P_h} + (a + \\tfrac12) \\frac{h}{P_h g_h}, \\quad
    x = x_0 + j \\frac{w}{P_w} + (b + \\tfrac12) \\frac{w}{P_w g_w}, \\quad a < g_h,\\ b < g_w,

with ``g = sampling_ratio`` or, when ``sampling_ratio <= 0``, the adaptive ``g_h = ceil(h / P_h)`` and
``g_w = ceil(w / P_w)`` (per box). :func:`roi_align_reference` writes this as loops; :func:`roi_align` is
the vectorised fast path (all sample points of all boxes gathered at once). Both equal
``torchvision.ops.roi_align`` / ``roi_pool``, boxes given the same two ways: a ``K×5`` tensor of rows
``(batch_index, x1, y1, x2, y2)`` or a list with one ``K_i×4`` tensor of ``(x1, y1, x2, y2)`` per image.

>>> import torch
>>> features = torch.arange(16.0).reshape(1, 1, 4, 4)
>>> roi_align(features, [torch.tensor([[0.0, 0.0, 4.0, 4.0]])], 2, aligned=True)
tensor([[[[ 2.5000,  4.5000],
          [10.5000, 12.5000]]]])
>>> roi_pool(features, [torch.tensor([[0.0, 0.0, 3.0, 3.0]])], 2)
tensor([[[[ 5.,  7.],
          [13., 15.]]]])
"""

from __future__ import annotations

import numbers

import torch

from .._validation import SegeduInputError, SegeduTypeError

__all__ = ["bilinear_interpolate", "roi_align", "roi_align_reference", "roi_pool"]

# A cap on gathered sample values per chunk of boxes (memory, not speed: about 128 MiB in float64).
_MAX_SAMPLES = 1 << 24


def _bilinear_1d(coord: torch.Tensor, size: int):
    """torchvision's interpolation rule along one axis: indices, weights and which points count.

    A point in ``[-1, size]`` is clamped to ``>= 0``; at the last cell both neighbours are the last cell.
    Points outside contribute 0 (``valid`` is False).
    """
    valid = (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().clamp(max=size - 1)
    at_edge = low >= size - 1
    coord = torch.where(at_edge, low, coord)
    high = torch.where(at_edge, low, low + 1)
    frac = coord - low
    return low.long(), high.long(), 1 - frac, frac, valid


def bilinear_interpolate(feature, y, x):
    """Sample ``feature`` at real coordinates ``(y, x)`` by bilinear interpolation, torchvision's border rule.

    With ``y0 = floor(y)``, ``x0 = floor(x)``, ``y1 = y0 + 1``, ``x1 = x0 + 1``, ``ly = y - y0`` and
    ``lx = x - x0``:

    .. math::

        f(y, x) = (1-l_y)(1-l_x) f(y_0,x_0) + (1-l_y) l_x f(y_0,x_1) + l_y (1-l_x) f(y_1,x_0) + l_y l_x f(y_1,x_1).

    Borders, exactly as ``torchvision.ops.roi_align``: a point outside ``[-1, H] × [-1, W]`` gives 0; inside,
    negative coordinates are clamped to 0 and at the last row (column) both neighbours are the last row
    (column), so the map is extended flat by up to one cell. Cell ``i`` is centred at ``i`` here; RoIAlign's
    ``aligned=True`` shifts boxes by half a cell to match that.

    Parameters
    ----------
    feature : torch.Tensor
        ``(..., H, W)``, e.g. ``C×H×W``.
    y, x : float or torch.Tensor
        Row and column coordinates, Python numbers or tensors of one shape.

    Returns
    -------
    torch.Tensor
        ``(..., *y.shape)``, the dtype and device of ``feature``.

    >>> import torch
    >>> f = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> bilinear_interpolate(f, 0.5, 0.25)
    tensor(1.2500)
    >>> bilinear_interpolate(f, torch.tensor([-0.5, 1.5, 2.5]), torch.tensor([1.0, 1.0, 0.0]))
    tensor([1., 3., 0.])
    """
    if not isinstance(feature, torch.Tensor):
        raise SegeduTypeError(
            f"feature must be a torch.Tensor of shape (..., H, W), but got a {type(feature).__name__}. "
            f"Convert it with torch.as_tensor(feature)."
        )
    if feature.ndim < 2:
        raise SegeduInputError(
            f"feature must have at least 2 dimensions (..., H, W), but got shape {tuple(feature.shape)}. "
            f"Add axes, e.g. feature[None]."
        )
    if not feature.is_floating_point():
        feature = feature.double()
    y = torch.as_tensor(y, dtype=feature.dtype, device=feature.device)
    x = torch.as_tensor(x, dtype=feature.dtype, device=feature.device)
    if y.shape != x.shape:
        raise SegeduInputError(
            f"y and x must have the same shape, but y is {tuple(y.shape)} and x is {tuple(x.shape)}. "
            f"Broadcast them first, e.g. torch.broadcast_tensors(y, x)."
        )
    height, width = feature.shape[-2:]
    y_low, y_high, wy_low, wy_high, y_valid = _bilinear_1d(y, height)
    x_low, x_high, wx_low, wx_high, x_valid = _bilinear_1d(x, width)
    value = (
        wy_low * wx_low * feature[..., y_low, x_low]
        + wy_low * wx_high * feature[..., y_low, x_high]
        + wy_high * wx_low * feature[..., y_high, x_low]
        + wy_high * wx_high * feature[..., y_high, x_high]
    )
    return value * (y_valid & x_valid).to(value.dtype)


# ----------------------------------------------------------------------------- input checks


def _check_features(features) -> torch.Tensor:
    if not isinstance(features, torch.Tensor):
        raise SegeduTypeError(
            f"features must be a torch.Tensor of shape (N, C, H, W), but got a {type(features).__name__}. "
            f"Convert it with torch.as_tensor(features)."
        )
    if features.ndim != 4:
        hint = " Add the batch axis with features[None]." if features.ndim == 3 else ""
        raise SegeduInputError(
            f"features must be 4-D (N, C, H, W), but got {features.ndim}-D with shape {tuple(features.shape)}.{hint}"
        )
    if not features.is_floating_point():
        raise SegeduTypeError(
            f"features must be floating point, but its dtype is {features.dtype}. Convert it with features.float()."
        )
    return features


def _check_output_size(output_size) -> tuple[int, int]:
    sizes = (output_size, output_size) if isinstance(output_size, numbers.Integral) else tuple(output_size)
    if len(sizes) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes):
        raise SegeduInputError(
            f"output_size must be an int or a pair of ints (height, width), but got {output_size!r}."
        )
    if min(sizes) < 1:
        raise SegeduInputError(
            f"output_size must be positive, but got {output_size!r}; Mask R-CNN uses 7 for boxes and 14 for masks."
        )
    return int(sizes[0]), int(sizes[1])


def _as_rois(features: torch.Tensor, boxes) -> torch.Tensor:
    """Boxes as a ``K×5`` tensor ``(batch_index, x1, y1, x2, y2)`` in the features' dtype and device."""
    if isinstance(boxes, (list, tuple)):
        if len(boxes) != features.shape[0]:
            raise SegeduInputError(
                f"boxes is a list of {len(boxes)} tensors, but features hold {features.shape[0]} images: "
                f"pass one K_i×4 tensor per image (an empty torch.zeros(0, 4) for an image without boxes)."
            )
        parts = []
        for index, per_image in enumerate(boxes):
            per_image = torch.as_tensor(per_image, dtype=features.dtype, device=features.device)
            if per_image.ndim != 2 or per_image.shape[1] != 4:
                raise SegeduInputError(
                    f"boxes[{index}] must be K×4 (x1, y1, x2, y2), but got shape {tuple(per_image.shape)}."
                )
            column = torch.full((per_image.shape[0], 1), float(index), dtype=features.dtype, device=features.device)
            parts.append(torch.cat([column, per_image], 1))
        rois = torch.cat(parts, 0) if parts else features.new_zeros((0, 5))
    elif isinstance(boxes, torch.Tensor):
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            hint = ""
            if boxes.ndim == 2 and boxes.shape[1] == 4:
                hint = (
                    " A bare K×4 tensor does not say which image each box belongs to: add the batch index column, "
                    "torch.cat([torch.zeros(K, 1), boxes], 1), or pass a list with one K_i×4 tensor per image."
                )
            raise SegeduInputError(
                f"boxes must be a K×5 tensor (batch_index, x1, y1, x2, y2) or a list of K_i×4 tensors, "
                f"but got a tensor of shape {tuple(boxes.shape)}.{hint}"
            )
        rois = boxes.to(dtype=features.dtype, device=features.device)
        index = rois[:, 0]
        if rois.shape[0] and (
            not bool(torch.all(index == index.round()))
            or float(index.min()) < 0
            or float(index.max()) >= features.shape[0]
        ):
            raise SegeduInputError(
                f"the batch index column boxes[:, 0] must hold whole numbers in 0..{features.shape[0] - 1} "
                f"(features hold {features.shape[0]} images), but it has values "
                f"{sorted(set(index.tolist()))[:6]}. Check the column order (batch_index, x1, y1, x2, y2)."
            )
    else:
        raise SegeduTypeError(
            f"boxes must be a K×5 torch.Tensor or a list of K_i×4 tensors, but got a {type(boxes).__name__}."
        )
    if rois.shape[0]:
        if not bool(torch.isfinite(rois).all()):
            raise SegeduInputError("boxes contain NaN or infinite coordinates; drop or fix those boxes first.")
        bad = (rois[:, 3] < rois[:, 1]) | (rois[:, 4] < rois[:, 2])
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            raise SegeduInputError(
                f"boxes must be (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1, but box {first} is "
                f"{rois[first, 1:].tolist()}. If your boxes are x, y, w, h, convert x, y, w, h with "
                f"segedu.instance.box_xywh_to_xyxy (or x2 = x + w, y2 = y + h)."
            )
    return rois


def _check_sampling_ratio(sampling_ratio) -> int:
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, numbers.Integral):
        raise SegeduTypeError(f"sampling_ratio must be an int, but got {sampling_ratio!r}.")
    # torchvision treats every sampling_ratio <= 0 as adaptive; so do we
    return int(sampling_ratio)


def _roi_geometry(rois, output_size, spatial_scale, sampling_ratio, aligned):
    """Box start, size, bin size and sampling grid per roi, computed in the features' dtype as torchvision."""
    offset = 0.5 if aligned else 0.0
    start_x = rois[:, 1] * spatial_scale - offset
    start_y = rois[:, 2] * spatial_scale - offset
    width = rois[:, 3] * spatial_scale - offset - start_x
    height = rois[:, 4] * spatial_scale - offset - start_y
    if not aligned:
        width = width.clamp(min=1.0)
        height = height.clamp(min=1.0)
    pooled_h, pooled_w = output_size
    bin_h = height / pooled_h
    bin_w = width / pooled_w
    if sampling_ratio > 0:
        grid_h = torch.full_like(height, sampling_ratio, dtype=torch.long)
        grid_w = torch.full_like(width, sampling_ratio, dtype=torch.long)
    else:
        grid_h = torch.ceil(height / pooled_h).long()
        grid_w = torch.ceil(width / pooled_w).long()
    return start_y, start_x, bin_h, bin_w, grid_h, grid_w


# ----------------------------------------------------------------------------- RoIAlign


def roi_align_reference(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign as readable loops over boxes, bins and sample points; slow, for reading.

    Same arguments and result as :func:`roi_align` (see there and the module docstring).

    >>> import torch
    >>> features = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> roi_align_reference(features, torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]]), 1, aligned=True)
    tensor([[[[7.5000]]]])
    """
    features = _check_features(features)
    output_size = _check_output_size(output_size)
    sampling_ratio = _check_sampling_ratio(sampling_ratio)
    rois = _as_rois(features, boxes)
    pooled_h, pooled_w = output_size
    out = features.new_zeros((rois.shape[0], features.shape[1], pooled_h, pooled_w))
    geometry = _roi_geometry(rois, output_size, spatial_scale, sampling_ratio, aligned)
    start_y, start_x, bin_h, bin_w, grid_h, grid_w = geometry
    for k in range(rois.shape[0]):
        feature = features[int(rois[k, 0])]                     # C×H×W of this box's image
        gh, gw = int(grid_h[k]), int(grid_w[k])
        count = max(gh * gw, 1)                                  # an empty grid (zero-size box) gives 0
        for i in range(pooled_h):
            for j in range(pooled_w):
                total = features.new_zeros(features.shape[1])
                for a in range(gh):
                    y = start_y[k] + i * bin_h[k] + (a + 0.5) * bin_h[k] / gh
                    for b in range(gw):
                        x = start_x[k] + j * bin_w[k] + (b + 0.5) * bin_w[k] / gw
                        total = total + bilinear_interpolate(feature, y, x)
                out[k, :, i, j] = total / count
    return out


def roi_align(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign (He et al. 2017, arXiv:1703.06870): a fixed grid of bilinearly sampled features per box.

    Equal to ``torchvision.ops.roi_align`` (same arguments, same border rule, float dtype and device kept).
    The vectorised fast path: every sample point of every box is gathered at once; boxes are grouped by
    their sampling grid (with ``sampling_ratio <= 0`` the grid ``ceil(box size / output size)`` differs
    per box) and gathered in chunks that bound memory.

    Parameters
    ----------
    features : torch.Tensor
        ``(N, C, H, W)`` float feature maps.
    boxes : torch.Tensor or list of torch.Tensor
        ``K×5`` rows ``(batch_index, x1, y1, x2, y2)``, or one ``K_i×4`` tensor ``(x1, y1, x2, y2)`` per image;
        image coordinates (``x2 >= x1``, ``y2 >= y1``).
    output_size : int or (int, int)
        ``P`` or ``(P_h, P_w)``, the bins per box.
    spatial_scale : float
        Feature cells per image pixel, ``1 / stride`` (1/16 for a stride-16 backbone).
    sampling_ratio : int
        Sample points per bin side; any value ``<= 0`` (``-1`` by default) is adaptive:
        ``ceil(h / P_h)`` by ``ceil(w / P_w)`` points, ``h`` and ``w`` the box's size in feature cells.
    aligned : bool
        Shift boxes by half a cell so sample coordinates hit cell centres (Detectron2's fix; use True).

    Returns
    -------
    torch.Tensor
        ``(K, C, P_h, P_w)``. A box wholly outside the map (more than one cell away) gives zeros, as torchvision.

    >>> import torch
    >>> features = torch.ones(1, 3, 8, 8)
    >>> roi_align(features, torch.tensor([[0, 1.0, 1.0, 5.0, 3.0]]), (2, 4), aligned=True).shape
    torch.Size([1, 3, 2, 4])
    >>> roi_align(features, torch.tensor([[0, 20.0, 20.0, 30.0, 30.0]]), 2).sum().item()
    0.0
    """
    features = _check_features(features)
    output_size = _check_output_size(output_size)
    sampling_ratio = _check_sampling_ratio(sampling_ratio)
    rois = _as_rois(features, boxes)
    pooled_h, pooled_w = output_size
    num_rois, channels, height, width = rois.shape[0], *features.shape[1:]
    out = features.new_zeros((num_rois, channels, pooled_h, pooled_w))
    if num_rois == 0:
        return out
    geometry = _roi_geometry(rois, output_size, spatial_scale, sampling_ratio, aligned)
    start_y, start_x, bin_h, bin_w, grid_h, grid_w = geometry
    batch = rois[:, 0].long()
    grids = torch.stack([grid_h, grid_w], 1)
    for gh, gw in torch.unique(grids, dim=0).tolist():
        if gh <= 0 or gw <= 0:
            continue                                             # zero-size box, aligned: torchvision gives 0
        members = ((grid_h == gh) & (grid_w == gw)).nonzero()[:, 0]
        per_roi = 4 * pooled_h * gh * pooled_w * gw * channels
        chunk = max(1, _MAX_SAMPLES // per_roi)
        for first in range(0, members.numel(), chunk):
            idx = members[first : first + chunk]
            out[idx] = _roi_align_group(features, batch[idx], start_y[idx], start_x[idx], bin_h[idx], bin_w[idx],
                                        pooled_h, pooled_w, gh, gw, height, width)
    return out


def _roi_align_group(features, batch, start_y, start_x, bin_h, bin_w, pooled_h, pooled_w, gh, gw, height, width):
    """RoIAlign for boxes that share one ``gh×gw`` sampling grid: gather all sample points at once.

    Every output value is a weighted sum of ``4 gh gw`` feature vectors (4 neighbours of each sample point,
    weight = bilinear weight / ``gh gw``, 0 for points off the map). One ``index_select`` gathers them, laid
    out so that each output's ``4 gh gw`` vectors are contiguous, and one batched matrix product
    ``(1 × 4 gh gw) @ (4 gh gw × C)`` per output sums them: two passes over the samples instead of a dozen
    elementwise ones.
    """
    dtype, device = features.dtype, features.device
    channels = features.shape[1]
    num = batch.shape[0]
    # torchvision's order of operations, start + i * bin + (a + 1/2) * bin / g, so float32 rounds alike
    bins_y = torch.arange(pooled_h, dtype=dtype, device=device)[None, :, None] * bin_h[:, None, None]
    bins_x = torch.arange(pooled_w, dtype=dtype, device=device)[None, :, None] * bin_w[:, None, None]
    sub_y = (torch.arange(gh, dtype=dtype, device=device) + 0.5)[None, None, :] * bin_h[:, None, None] / gh
    sub_x = (torch.arange(gw, dtype=dtype, device=device) + 0.5)[None, None, :] * bin_w[:, None, None] / gw
    ys = start_y[:, None, None] + bins_y + sub_y                              # (K, P_h, g_h)
    xs = start_x[:, None, None] + bins_x + sub_x                              # (K, P_w, g_w)
    y_low, y_high, wy_low, wy_high, y_valid = _bilinear_1d(ys, height)       # (K, P_h, g_h)
    x_low, x_high, wx_low, wx_high, x_valid = _bilinear_1d(xs, width)        # (K, P_w, g_w)
    rows = torch.stack([y_low, y_high], -1)                                   # (K, P_h, g_h, 2)
    cols = torch.stack([x_low, x_high], -1)                                   # (K, P_w, g_w, 2)
    weight_y = torch.stack([wy_low, wy_high], -1) * y_valid[..., None] / gh
    weight_x = torch.stack([wx_low, wx_high], -1) * x_valid[..., None] / gw
    # (K, P_h, P_w, g_h, g_w, 2, 2): output bin, sample point, neighbour
    flat = ((batch * (height * width))[:, None, None, None, None, None, None]
            + rows[:, :, None, :, None, :, None] * width + cols[:, None, :, None, :, None, :])
    weight = weight_y[:, :, None, :, None, :, None] * weight_x[:, None, :, None, :, None, :]
    # rows of an (N H W) × C table: each neighbour is one contiguous run of C values
    table = features.permute(0, 2, 3, 1).reshape(-1, channels)
    neighbours = table.index_select(0, flat.reshape(-1)).reshape(num * pooled_h * pooled_w, 4 * gh * gw, channels)
    pooled = torch.bmm(weight.reshape(num * pooled_h * pooled_w, 1, 4 * gh * gw), neighbours)
    return pooled.reshape(num, pooled_h, pooled_w, channels).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------- RoIPool


def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    """C's ``round``: halves go away from zero (``torch.round`` rounds them to even)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def roi_pool(features, boxes, output_size, spatial_scale=1.0):
    """RoIPool (Girshick, Fast R-CNN, arXiv:1504.08083): the maximum over each of ``P×P`` bins of a box.

    Equal to ``torchvision.ops.roi_pool``. The box is rounded to whole cells,
    ``x1' = round(x1 * spatial_scale)``, ``x2' = round(x2 * spatial_scale)`` (so it covers
    ``x2' - x1' + 1`` cells, at least 1), split into bins of real size ``b = cells / P``, and bin ``i`` covers
    cells ``floor(i b) .. ceil((i + 1) b) - 1`` (neighbouring bins may share a cell), clipped to the map;
    an empty bin gives 0. The rounding is the quantisation RoIAlign removes.

    Arguments as :func:`roi_align`; returns ``(K, C, P_h, P_w)``.

    >>> import torch
    >>> features = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> roi_pool(features, torch.tensor([[0, 0.4, 0.4, 1.6, 1.6]]), 1)
    tensor([[[[10.]]]])
    """
    features = _check_features(features)
    output_size = _check_output_size(output_size)
    rois = _as_rois(features, boxes)
    pooled_h, pooled_w = output_size
    num_rois, channels, height, width = rois.shape[0], *features.shape[1:]
    if num_rois == 0:
        return features.new_zeros((0, channels, pooled_h, pooled_w))
    dtype, device = features.dtype, features.device
    start_x = _round_half_away(rois[:, 1] * spatial_scale)
    start_y = _round_half_away(rois[:, 2] * spatial_scale)
    end_x = _round_half_away(rois[:, 3] * spatial_scale)
    end_y = _round_half_away(rois[:, 4] * spatial_scale)
    roi_w = (end_x - start_x + 1).clamp(min=1)
    roi_h = (end_y - start_y + 1).clamp(min=1)

    def bin_edges(start, size, pooled, limit):
        steps = torch.arange(pooled, dtype=dtype, device=device)
        bin_size = size[:, None] / pooled
        low = (torch.floor(steps[None, :] * bin_size) + start[:, None]).clamp(0, limit)
        high = (torch.ceil((steps[None, :] + 1) * bin_size) + start[:, None]).clamp(0, limit)
        return low, high                                          # (K, pooled)

    y_low, y_high = bin_edges(start_y, roi_h, pooled_h, height)
    x_low, x_high = bin_edges(start_x, roi_w, pooled_w, width)
    rows = torch.arange(height, dtype=dtype, device=device)
    cols = torch.arange(width, dtype=dtype, device=device)
    in_row = (rows[None, None, :] >= y_low[:, :, None]) & (rows[None, None, :] < y_high[:, :, None])  # K, P_h, H
    in_col = (cols[None, None, :] >= x_low[:, :, None]) & (cols[None, None, :] < x_high[:, :, None])  # K, P_w, W
    out = features.new_zeros((num_rois, channels, pooled_h, pooled_w))
    batch = rois[:, 0].long()
    chunk = max(1, _MAX_SAMPLES // (channels * height * width))
    lowest = torch.tensor(float("-inf"), dtype=dtype, device=device)
    for first in range(0, num_rois, chunk):
        part = slice(first, first + chunk)
        maps = features[batch[part]]                                       # k, C, H, W
        for j in range(pooled_w):
            column_max = torch.where(in_col[part, None, None, j, :], maps, lowest).amax(dim=-1)  # k, C, H
            for i in range(pooled_h):
                value = torch.where(in_row[part, None, i, :], column_max, lowest).amax(dim=-1)   # k, C
                out[part, :, i, j] = value
    empty = ~(in_row.any(-1)[:, :, None] & in_col.any(-1)[:, None, :])      # K, P_h, P_w
    return out.masked_fill(empty[:, None], 0.0)
