"""Known mistakes of the graded functions, and the hint a student gets when their answer makes one.

Each graded function ``(assignment, function)`` has its known mistakes (the realistic ones of
``tests/wrong_answers.py``, by the same names). A :class:`KnownMistake` holds one kind sentence that
names the mistake and a small pure function that computes what the mistaken answer returns: the
reference with one thing changed, with the graded function's own signature.

When a check fails, the grader runs every known mistake of that function on the same inputs; if the
student's answer equals a mistaken answer (by the function's own comparator and tolerances), the
message gets that mistake's hint as a line of its own. The student's side (``Exercise.check``) does
this right away; in a grading run :func:`segedu.grading.plan.build_plan` computes the mistaken
answers of every case in the trusted process and :func:`segedu.grading.plan.judge` compares, so
nothing a student wrote runs there. A hint is a fixed sentence: it never shows an input, so hidden
cases get the same hint.

A mistake whose answer crashes (rather than returning something wrong) is matched by the
exception's type and message: the mistaken function raises the very error the mistake raises.

A visible case worked out by hand (``reveal=False``) shows no expected value, but still gets its
hint: a hint names the mistake, never an entry of the answer.

:data:`EXCLUDED` lists the known mistakes that get no hint, each with its reason.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ._compare import plain


@dataclass(frozen=True)
class KnownMistake:
    """One known mistake of a graded function: its fixture name, its hint and what it returns."""

    name: str        # the Submission's name in tests/wrong_answers.py
    hint: str        # one kind sentence that names the mistake
    answer: object   # a function with the graded function's signature: the mistaken answer


@dataclass(frozen=True)
class Raised:
    """The outcome of a mistaken answer that raises: matched by the exception's type and message."""

    type: str
    message: str


# ----------------------------------------------------------------------------- 00 metrics

def _cm(cm):
    return np.asarray(cm, dtype=np.float64)


def _iou_parts(cm):
    cm = _cm(cm)
    intersection = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - intersection
    return cm, intersection, union


def cm_transposed(pred, target, num_classes, ignore_index=None):
    from segedu.metrics import confusion_matrix

    return np.asarray(confusion_matrix(pred, target, num_classes, ignore_index=ignore_index)).T


def cm_ignore_not_excluded(pred, target, num_classes, ignore_index=None):
    pred = np.asarray(pred).astype(np.int64).ravel()
    target = np.asarray(target).astype(np.int64).ravel()
    counts = np.bincount(num_classes * target + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def pixel_accuracy_per_class(cm):
    cm = _cm(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.diag(cm) / cm.sum(axis=1)))


def mean_accuracy_all_classes(cm):
    cm = _cm(cm)
    return float(np.mean(np.diag(cm) / np.maximum(cm.sum(axis=1), 1)))


def mean_iou_absent_as_zero(cm):
    _, intersection, union = _iou_parts(cm)
    return float(np.mean(intersection / np.maximum(union, 1)))


def mean_iou_target_classes_only(cm):
    cm, intersection, union = _iou_parts(cm)
    present = cm.sum(axis=1) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(intersection[present] / union[present]))


def fw_iou_prediction_weights(cm):
    cm, intersection, union = _iou_parts(cm)
    present = union > 0
    predicted_area = cm.sum(axis=0)
    return float(np.sum(predicted_area[present] * intersection[present] / union[present]) / predicted_area.sum())


def fw_iou_absent_class_nan(cm):
    cm, intersection, union = _iou_parts(cm)
    target_area = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(target_area * (intersection / union)) / target_area.sum())


def dice_is_iou(pred_mask, target_mask):
    a, b = np.asarray(pred_mask).astype(bool), np.asarray(target_mask).astype(bool)
    if a.sum() + b.sum() == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def dice_empty_is_zero(pred_mask, target_mask):
    from segedu.metrics import dice_coefficient

    a, b = np.asarray(pred_mask).astype(bool), np.asarray(target_mask).astype(bool)
    return 0.0 if a.sum() + b.sum() == 0 else float(dice_coefficient(a, b))


# ----------------------------------------------------------------------------- 01 thresholding

def threshold_greater_or_equal(img, t):
    return np.asarray(img, dtype=float) >= t


def _otsu(img, nbins=256, *, value_range=None, edge=False, split_off_by_one=False):
    img = np.asarray(img, dtype=float)
    counts, edges = np.histogram(img.ravel(), bins=nbins, range=value_range)
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(counts)
    weight1 = np.cumsum(counts[::-1])[::-1]
    mean0 = np.cumsum(counts * centres) / np.maximum(weight0, 1)
    mean1 = (np.cumsum((counts * centres)[::-1]) / np.maximum(weight1[::-1], 1))[::-1]
    if split_off_by_one:
        between = weight0 * weight1 * (mean0 - mean1) ** 2
    else:
        between = weight0[:-1] * weight1[1:] * (mean0[:-1] - mean1[1:]) ** 2
    best = int(np.argmax(between))
    return float(edges[best + 1] if edge else centres[best])


def otsu_returns_bin_edge(img, nbins=256):
    return _otsu(img, nbins, edge=True)


def otsu_fixed_range(img, nbins=256):
    return _otsu(img, nbins, value_range=(0, 1))


def otsu_split_off_by_one(img, nbins=256):
    return _otsu(img, nbins, split_off_by_one=True)


def _adaptive(img, block_size, offset=0, method="mean", *, sign=-1, mean_mode="reflect", sigma=None,
              cut_at_block=False):
    from scipy import ndimage as ndi

    img = np.asarray(img, dtype=float)
    if method == "mean":
        local = ndi.uniform_filter(img, size=block_size, mode=mean_mode)
    elif method == "gaussian":
        extra = {"radius": (block_size - 1) // 2} if cut_at_block else {}
        local = ndi.gaussian_filter(img, sigma=(block_size - 1) / 6.0 if sigma is None else sigma, mode="reflect",
                                    **extra)
    else:
        raise ValueError(f"method must be 'mean' or 'gaussian', not {method!r}")
    return img > local + sign * offset


def adaptive_offset_added(img, block_size, offset=0, method="mean"):
    return _adaptive(img, block_size, offset, method, sign=+1)


def adaptive_zero_padding(img, block_size, offset=0, method="mean"):
    return _adaptive(img, block_size, offset, method, mean_mode="constant")


def adaptive_sigma_from_block(img, block_size, offset=0, method="mean"):
    return _adaptive(img, block_size, offset, method, sigma=block_size / 2)


def adaptive_gaussian_cut_at_block(img, block_size, offset=0, method="mean"):
    return _adaptive(img, block_size, offset, method, cut_at_block=True)


# ----------------------------------------------------------------------------- 02 edges

def _convolve(img, kernel, *, mode="symmetric", flip=True, extra=0):
    img = np.asarray(img, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    kh, kw = kernel.shape
    a, b = kh // 2 + extra, kw // 2 + extra
    padded = np.pad(img, ((a, a), (b, b)), mode=mode)
    used = kernel[::-1, ::-1] if flip else kernel
    out = np.zeros_like(img)
    height, width = img.shape
    for u in range(kh):
        for v in range(kw):
            out += used[u, v] * padded[u:u + height, v:v + width]
    return out


def convolve_unflipped(img, kernel):
    return _convolve(img, kernel, flip=False)


def convolve_zero_padding(img, kernel):
    return _convolve(img, kernel, mode="constant")


def convolve_reflect_without_edge(img, kernel):
    return _convolve(img, kernel, mode="reflect")


def convolve_pad_off_by_one(img, kernel):
    return _convolve(img, kernel, extra=1)


def sobel_swapped(img):
    from segedu.classical import sobel

    gx, gy = sobel(img)
    return gy, gx


def sobel_forgets_the_flip(img):
    from segedu.classical import sobel

    gx, gy = sobel(img)
    return -np.asarray(gx), gy   # the unflipped x kernel is the flipped one negated


def magnitude_without_sqrt(gx, gy):
    gx, gy = np.asarray(gx, dtype=float), np.asarray(gy, dtype=float)
    return gx ** 2 + gy ** 2


NMS_NEIGHBOURS = {0: ((0, -1), (0, 1)), 45: ((-1, -1), (1, 1)), 90: ((-1, 0), (1, 0)), 135: ((-1, 1), (1, -1))}


def _nms(magnitude, direction, *, neighbours=NMS_NEIGHBOURS, radians_as_degrees=False, strict=False):
    magnitude = np.asarray(magnitude, dtype=float)
    direction = np.asarray(direction, dtype=float)
    height, width = magnitude.shape
    degrees = np.mod(direction if radians_as_degrees else np.degrees(direction), 180.0)
    bins = (np.floor((degrees + 22.5) / 45.0).astype(int) % 4) * 45
    out = np.zeros_like(magnitude)
    for r in range(1, height - 1):
        for c in range(1, width - 1):
            (dr1, dc1), (dr2, dc2) = neighbours[bins[r, c]]
            value = magnitude[r, c]
            first, second = magnitude[r + dr1, c + dc1], magnitude[r + dr2, c + dc2]
            if (value > first and value > second) if strict else (value >= first and value >= second):
                out[r, c] = value
    return out


def nms_diagonals_swapped(magnitude, direction):
    return _nms(magnitude, direction, neighbours={**NMS_NEIGHBOURS, 45: NMS_NEIGHBOURS[135],
                                                  135: NMS_NEIGHBOURS[45]})


def nms_rows_and_columns_swapped(magnitude, direction):
    return _nms(magnitude, direction, neighbours={**NMS_NEIGHBOURS, 0: NMS_NEIGHBOURS[90], 90: NMS_NEIGHBOURS[0]})


def nms_radians_as_degrees(magnitude, direction):
    return _nms(magnitude, direction, radians_as_degrees=True)


def nms_strictly_greater(magnitude, direction):
    return _nms(magnitude, direction, strict=True)


# ----------------------------------------------------------------------------- 03 regions

FOUR = [(-1, 0), (0, -1), (0, 1), (1, 0)]
EIGHT = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _region_grow(img, seed, threshold, connectivity=4, *, running_mean=True, eight_always=False,
                 depth_first=False, inclusive=False, four=FOUR, eight=EIGHT):
    from collections import deque

    img = np.asarray(img, dtype=float)
    offsets = four if connectivity == 4 and not eight_always else eight
    seed = tuple(seed)
    height, width = img.shape
    region = np.zeros(img.shape, dtype=bool)
    region[seed] = True
    total, count = img[seed], 1
    queue = deque([seed])
    while queue:
        r, c = queue.pop() if depth_first else queue.popleft()
        for dr, dc in offsets:
            rr, cc = r + dr, c + dc
            if 0 <= rr < height and 0 <= cc < width and not region[rr, cc]:
                difference = abs(img[rr, cc] - (total / count if running_mean else img[seed]))
                if difference <= threshold if inclusive else difference < threshold:
                    region[rr, cc] = True
                    total += img[rr, cc]
                    count += 1
                    queue.append((rr, cc))
    return region


def region_mean_never_updated(img, seed, threshold, connectivity=4):
    return _region_grow(img, seed, threshold, connectivity, running_mean=False)


def region_connectivity_ignored(img, seed, threshold, connectivity=4):
    return _region_grow(img, seed, threshold, connectivity, eight_always=True)


def region_depth_first(img, seed, threshold, connectivity=4):
    return _region_grow(img, seed, threshold, connectivity, depth_first=True)


def region_less_or_equal(img, seed, threshold, connectivity=4):
    return _region_grow(img, seed, threshold, connectivity, inclusive=True)


def region_right_before_left(img, seed, threshold, connectivity=4):
    return _region_grow(img, seed, threshold, connectivity, four=[(-1, 0), (0, 1), (0, -1), (1, 0)])


def region_diagonal_offset_wrong(img, seed, threshold, connectivity=4):
    eight = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (-1, 1), (1, 0), (1, 1)]   # (1, -1) typed as (-1, 1)
    return _region_grow(img, seed, threshold, connectivity, eight=eight)


def _kmeans(img, k, init, max_iter=100, *, update=True, sort=True):
    img = np.asarray(img, dtype=float)
    pixels = img.reshape(img.shape[0] * img.shape[1], -1)
    centres = np.asarray(init, dtype=float).reshape(k, pixels.shape[1]).copy()
    labels = None
    for _ in range(max_iter):
        distances = ((pixels[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new_labels = np.argmin(distances, axis=1)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        if update:
            centres = np.array([pixels[labels == j].mean(axis=0) for j in range(k)])
    order = np.argsort(centres.mean(axis=1), kind="stable") if sort else np.arange(k)
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    return rank[labels].reshape(img.shape[:2]), centres[order]


def kmeans_never_updates_centres(img, k, init, max_iter=100):
    return _kmeans(img, k, init, max_iter, update=False)


def kmeans_unsorted(img, k, init, max_iter=100):
    return _kmeans(img, k, init, max_iter, sort=False)


# ----------------------------------------------------------------------------- 04 transpose convolution

def conv_size_without_plus_one(n, k, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride


def conv_size_ignores_dilation(n, k, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - k) // stride + 1


def conv_size_true_division(n, k, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - dilation * (k - 1) - 1) / stride + 1


def conv_size_float_floor(n, k, stride=1, padding=0, dilation=1):
    return float(np.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1)


def transpose_size_float(n, k, stride=1, padding=0, output_padding=0, dilation=1):
    return 1.0 * (n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1


def transpose_size_adds_padding(n, k, stride=1, padding=0, output_padding=0, dilation=1):
    return (n - 1) * stride + 2 * padding + dilation * (k - 1) + output_padding + 1


def _transpose(x, kernel, stride=1, padding=0, output_padding=0, *, overwrite=False, stride_on_kernel=False,
               pad_instead_of_crop=False, use_output_padding=True):
    x = np.asarray(x, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    h, w = x.shape
    kh, kw = kernel.shape
    extra = output_padding if use_output_padding else 0
    full_h, full_w = (h - 1) * stride + kh + extra, (w - 1) * stride + kw + extra
    canvas = np.zeros((full_h, full_w))
    for i in range(h):
        for j in range(w):
            r, c = (i, j) if stride_on_kernel else (i * stride, j * stride)
            if overwrite:
                canvas[r:r + kh, c:c + kw] = x[i, j] * kernel
            else:
                canvas[r:r + kh, c:c + kw] += x[i, j] * kernel
    if pad_instead_of_crop:
        return np.pad(canvas, padding)
    return canvas[padding:full_h - padding, padding:full_w - padding]


def transpose_missing_overlap_sum(x, kernel, stride=1, padding=0, output_padding=0):
    return _transpose(x, kernel, stride, padding, output_padding, overwrite=True)


def transpose_stride_on_kernel(x, kernel, stride=1, padding=0, output_padding=0):
    return _transpose(x, kernel, stride, padding, output_padding, stride_on_kernel=True)


def transpose_pads_instead_of_cropping(x, kernel, stride=1, padding=0, output_padding=0):
    return _transpose(x, kernel, stride, padding, output_padding, pad_instead_of_crop=True)


def transpose_ignores_output_padding(x, kernel, stride=1, padding=0, output_padding=0):
    return _transpose(x, kernel, stride, padding, output_padding, use_output_padding=False)


def stride2_forgot_an_overlap():
    """The hand-worked example with one contribution missing where the four blocks overlap
    (the centre): x[0, 0] * kernel[2, 2] is left out there."""
    from segedu.grading.exercises import STRIDE2_INPUT, STRIDE2_KERNEL, stride2_example

    answer = np.array(stride2_example(), dtype=float)
    answer[2, 2] -= STRIDE2_INPUT[0][0] * STRIDE2_KERNEL[2][2]
    return answer


# ----------------------------------------------------------------------------- 05 FCN

def linear_reshape_channels_last(weight, in_channels, height, width):
    import torch

    weight = torch.as_tensor(weight)
    return weight.reshape(weight.shape[0], height, width, in_channels).permute(0, 3, 1, 2)


def _bilinear(in_ch, out_ch, k, *, odd_centre_always=False, every_pair=False):
    import torch

    factor = (k + 1) // 2
    centre = factor - 1 if (k % 2 == 1 or odd_centre_always) else factor - 0.5
    tent = 1 - torch.abs(torch.arange(k, dtype=torch.float32) - centre) / factor
    weight = torch.zeros(in_ch, out_ch, k, k)
    if every_pair:
        weight[:, :] = torch.outer(tent, tent)
    else:
        for i in range(min(in_ch, out_ch)):
            weight[i, i] = torch.outer(tent, tent)
    return weight


def bilinear_odd_centre_always(in_ch, out_ch, k):
    return _bilinear(in_ch, out_ch, k, odd_centre_always=True)


def bilinear_fills_every_channel_pair(in_ch, out_ch, k):
    return _bilinear(in_ch, out_ch, k, every_pair=True)


def fuse_skips_pool3(score32, score16, score8, upscore2, upscore_pool4, upscore):
    return upscore(upscore_pool4(upscore2(score32) + score16))


def fuse_reuses_one_upsampler(score32, score16, score8, upscore2, upscore_pool4, upscore):
    return upscore(upscore2(upscore2(score32) + score16) + score8)


# ----------------------------------------------------------------------------- 06 U-Net

def _center_crop(x, size, *, start=None, shift=0, extra=0):
    h, w = (size, size) if isinstance(size, int) else size
    height, width = x.shape[-2], x.shape[-1]
    first = start or (lambda n, k: int(round((n - k) / 2.0)))
    top, left = first(height, h) + shift, first(width, w) + shift
    return x[..., top:top + h + extra, left:left + w + extra]


def crop_one_pixel_late(x, size):
    return _center_crop(x, size, shift=1)


def crop_end_inclusive(x, size):
    return _center_crop(x, size, extra=1)


def crop_floor_start(x, size):
    return _center_crop(x, size, start=lambda n, k: (n - k) // 2)


def _weight_map(instance_labels, w0=10.0, sigma=5.0, *, same_object=False, on_objects=False, balanced=True):
    from scipy import ndimage as ndi

    labels = np.asarray(instance_labels)
    foreground = labels > 0
    weights = np.ones(labels.shape, dtype=np.float64)
    n_foreground = int(foreground.sum())
    n_background = labels.size - n_foreground
    if balanced and n_foreground > 0 and n_background > 0:
        weights[foreground] = labels.size / (2 * n_foreground)
        weights[~foreground] = labels.size / (2 * n_background)
    objects = np.unique(labels[foreground])
    if len(objects) >= 2:
        if same_object:   # one distance transform of the background: d2 is the distance to d1's object
            d1 = d2 = ndi.distance_transform_edt(labels == 0)
        else:
            distances = np.sort(np.stack([ndi.distance_transform_edt(labels != k) for k in objects]), axis=0)
            d1, d2 = distances[0], distances[1]
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma ** 2))
        where = np.ones(labels.shape, dtype=bool) if on_objects else ~foreground
        weights[where] += border[where]
    return weights


def weight_map_same_object(instance_labels, w0=10.0, sigma=5.0):
    return _weight_map(instance_labels, w0, sigma, same_object=True)


def weight_map_border_on_objects(instance_labels, w0=10.0, sigma=5.0):
    return _weight_map(instance_labels, w0, sigma, on_objects=True)


def weight_map_without_class_weights(instance_labels, w0=10.0, sigma=5.0):
    return _weight_map(instance_labels, w0, sigma, balanced=False)


def _dice_loss(logits, target, smooth=1.0, *, smoothing=True, sigmoid=True, per_sample=True):
    import torch

    p = (torch.sigmoid(logits) if sigmoid else logits).flatten(1)
    y = target.to(p.dtype).flatten(1)
    s = smooth if smoothing else 0.0
    if per_sample:
        dice = (2 * (p * y).sum(dim=1) + s) / (p.sum(dim=1) + y.sum(dim=1) + s)
        return (1 - dice).mean()
    return 1 - (2 * (p * y).sum() + s) / (p.sum() + y.sum() + s)


def dice_without_smoothing(logits, target, smooth=1.0):
    return _dice_loss(logits, target, smooth, smoothing=False)


def dice_without_sigmoid(logits, target, smooth=1.0):
    return _dice_loss(logits, target, smooth, sigmoid=False)


def dice_over_the_whole_batch(logits, target, smooth=1.0):
    return _dice_loss(logits, target, smooth, per_sample=False)


def _focal_loss(logits, target, alpha=0.25, gamma=2.0, *, gamma_on_p_t=False, alpha_on_negatives=False,
                summed=False):
    import torch
    import torch.nn.functional as F

    p = torch.sigmoid(logits)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    if alpha_on_negatives:
        alpha_t = alpha * (1 - target) + (1 - alpha) * target
    else:
        alpha_t = alpha * target + (1 - alpha) * (1 - target)
    factor = p_t ** gamma if gamma_on_p_t else (1 - p_t) ** gamma
    terms = alpha_t * factor * cross_entropy
    return terms.sum() if summed else terms.mean()


def focal_gamma_on_p_t(logits, target, alpha=0.25, gamma=2.0):
    return _focal_loss(logits, target, alpha, gamma, gamma_on_p_t=True)


def focal_alpha_on_negatives(logits, target, alpha=0.25, gamma=2.0):
    return _focal_loss(logits, target, alpha, gamma, alpha_on_negatives=True)


def focal_summed(logits, target, alpha=0.25, gamma=2.0):
    return _focal_loss(logits, target, alpha, gamma, summed=True)


# ----------------------------------------------------------------------------- 07 SegNet

def _unpool_size(x, kernel_size, stride, output_size):
    h, w = x.shape[-2], x.shape[-1]
    if output_size is None:
        return (h - 1) * stride + kernel_size, (w - 1) * stride + kernel_size
    return output_size[-2], output_size[-1]


def unpool_top_left(x, indices, kernel_size, stride=None, output_size=None):
    import torch

    stride = kernel_size if stride is None else stride
    n, c, h, w = x.shape
    height, width = _unpool_size(x, kernel_size, stride, output_size)
    out = torch.zeros(n, c, height, width, dtype=x.dtype)
    out[:, :, 0:h * stride:stride, 0:w * stride:stride] = x
    return out


def _nearest_upsampling(x, stride, height, width):
    import torch

    n, c = x.shape[:2]
    grown = x.repeat_interleave(stride, dim=2).repeat_interleave(stride, dim=3)
    out = torch.zeros(n, c, height, width, dtype=x.dtype)
    rows, cols = min(height, grown.shape[2]), min(width, grown.shape[3])
    out[:, :, :rows, :cols] = grown[:, :, :rows, :cols]
    return out


def unpool_nearest(x, indices, kernel_size, stride=None, output_size=None):
    stride = kernel_size if stride is None else stride
    return _nearest_upsampling(x, stride, *_unpool_size(x, kernel_size, stride, output_size))


def unpool_ignores_stride(x, indices, kernel_size, stride=None, output_size=None):
    import torch

    n, c, h, w = x.shape
    height, width = _unpool_size(x, kernel_size, kernel_size, output_size)
    out = torch.zeros(n, c, height * width, dtype=x.dtype)
    out.scatter_(2, indices.reshape(n, c, h * w), x.reshape(n, c, h * w))
    return out.reshape(n, c, height, width)


def _decoder_stage(x, indices, output_size, convs, norms, *, relu_first=False, batch_statistics=False,
                   nearest=False, eps=1e-5):
    import torch
    import torch.nn.functional as F

    from segedu.conv import max_unpool2d

    with torch.no_grad():
        if nearest:
            y = _nearest_upsampling(x, 2, output_size[-2], output_size[-1])
        else:
            y = max_unpool2d(x, indices, 2, output_size=tuple(output_size))
        for conv, norm in zip(convs, norms):
            y = conv(y)
            if relu_first:
                y = F.relu(y)
            if batch_statistics:
                y = F.batch_norm(y, None, None, norm["weight"], norm["bias"], training=True, eps=1e-5)
            else:
                y = F.batch_norm(y, norm["running_mean"], norm["running_var"], norm["weight"], norm["bias"],
                                 training=False, eps=eps)
            if not relu_first:
                y = F.relu(y)
        return y


def decoder_relu_before_batch_norm(x, indices, output_size, convs, norms):
    return _decoder_stage(x, indices, output_size, convs, norms, relu_first=True)


def decoder_batch_statistics(x, indices, output_size, convs, norms):
    return _decoder_stage(x, indices, output_size, convs, norms, batch_statistics=True)


def decoder_batch_norm_without_eps(x, indices, output_size, convs, norms):
    return _decoder_stage(x, indices, output_size, convs, norms, eps=0.0)


def decoder_ignores_indices(x, indices, output_size, convs, norms):
    return _decoder_stage(x, indices, output_size, convs, norms, nearest=True)


# ----------------------------------------------------------------------------- 08 DeepLab

def _conv(x, weight, bias=None, stride=1, padding=0, dilation=1):
    import torch.nn.functional as F

    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


def dilation_as_stride(x, weight, bias=None, stride=1, padding=0, dilation=1):
    return _conv(x, weight, bias, stride * dilation, padding)


def dilation_times_padding(x, weight, bias=None, stride=1, padding=0, dilation=1):
    return _conv(x, weight, bias, stride, padding * dilation)


def dilation_as_padding(x, weight, bias=None, stride=1, padding=0, dilation=1):
    return _conv(x, weight, bias, stride, dilation)


def taps_one_apart_too_many(x, weight, bias=None, stride=1, padding=0, dilation=1):
    return _conv(x, weight, bias, stride, padding, dilation + 1)


def taps_one_apart_too_few(x, weight, bias=None, stride=1, padding=0, dilation=1):
    if dilation == 1:   # every tap on the same pixel: one 1x1 kernel, the sum of the taps
        return _conv(x, weight.sum(dim=(2, 3), keepdim=True), bias, stride, padding)
    return _conv(x, weight, bias, stride, padding, dilation - 1)


def conv_bias_ignored(x, weight, bias=None, stride=1, padding=0, dilation=1):
    return _conv(x, weight, None, stride, padding, dilation)


def conv_bias_at_every_tap(x, weight, bias=None, stride=1, padding=0, dilation=1):
    taps = weight.shape[-2] * weight.shape[-1]
    return _conv(x, weight, None if bias is None else taps * bias, stride, padding, dilation)


def conv_size_rounds_down_once_more(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """The output size (H + 2p - d(k-1)) // s, without the "- 1 ... + 1": short of a row where s does not divide it."""
    out = _conv(x, weight, bias, stride, padding, dilation)
    kh, kw = weight.shape[-2:]
    rows = (x.shape[-2] + 2 * padding - dilation * (kh - 1)) // stride
    cols = (x.shape[-1] + 2 * padding - dilation * (kw - 1)) // stride
    return out[..., :rows, :cols]


def _receptive_field(layers, *, add_strides=False, new_jump=False, dilation=True, start=1, size_only=False):
    size, jump = start, 1
    for k, s, d in layers:
        if new_jump:
            jump = jump + s if add_strides else jump * s
        size += (k - 1) * (d if dilation else 1) * jump
        if not new_jump:
            jump = jump + s if add_strides else jump * s
    return size if size_only else (size, jump)


def rf_adds_strides(layers):
    return _receptive_field(layers, add_strides=True)


def rf_uses_the_new_jump(layers):
    return _receptive_field(layers, new_jump=True)


def rf_ignores_dilation(layers):
    return _receptive_field(layers, dilation=False)


def rf_returns_size_only(layers):
    return _receptive_field(layers, size_only=True)


def rf_starts_at_zero(layers):
    return _receptive_field(layers, start=0)


def rf_recursion_runs_forward(layers):
    """The output-to-input recursion r <- s * r + (k - 1) * d, run over the layers from the input side."""
    size, jump = 1, 1
    for k, s, d in layers:
        size = s * size + (k - 1) * d
        jump *= s
    return size, jump


def _channels_checked(x, weight):
    """The check that the exercise's dilated_conv2d is given (its first lines): the same words, so that a
    student's answer that trips it gets the hint of the mistake that did."""
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"dilated_conv2d: x has {x.shape[1]} channels, but weight of shape "
                         f"{tuple(weight.shape)} expects {weight.shape[1]}.")


def _aspp(x, params, rates, *, pooling=True, upsample=True, pooling_first=False, relu_first=False,
          pool_dims=(2, 3), atrous_padding=None, eps=1e-5, training=False):
    import torch
    import torch.nn.functional as F

    def conv_bn_relu(inputs, layer, rate):
        kernel = layer["weight"]
        _channels_checked(inputs, kernel)
        padding = rate * (kernel.shape[-1] // 2)
        if atrous_padding is not None and kernel.shape[-1] > 1:
            padding = atrous_padding
        y = _conv(inputs, kernel, None, 1, padding, rate)
        if relu_first:
            y = F.relu(y)
        bn = layer["bn"]
        if training:   # the batch's own statistics; a batch of one 1x1 pooled map raises torch's ValueError
            y = F.batch_norm(y, None, None, bn["weight"], bn["bias"], training=True, eps=eps)
        else:
            y = F.batch_norm(y, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"], training=False,
                             eps=eps)
        return y if relu_first else F.relu(y)

    with torch.no_grad():
        height, width = x.shape[-2:]
        branches = [conv_bn_relu(x, params["conv1x1"], 1)]
        branches += [conv_bn_relu(x, layer, rate) for rate, layer in zip(rates, params["atrous"])]
        if pooling:
            pooled = conv_bn_relu(x.mean(dim=pool_dims, keepdim=True), params["pooling"], 1)
            pooled = pooled.expand(-1, -1, height, width) if upsample else pooled
            branches.insert(0, pooled) if pooling_first else branches.append(pooled)
        return conv_bn_relu(torch.cat(branches, dim=1), params["project"], 1)


def aspp_without_pooling(x, params, rates):
    return _aspp(x, params, rates, pooling=False)


def aspp_pooling_not_upsampled(x, params, rates):
    return _aspp(x, params, rates, upsample=False)


def aspp_pooling_first(x, params, rates):
    return _aspp(x, params, rates, pooling_first=True)


def aspp_relu_before_batch_norm(x, params, rates):
    return _aspp(x, params, rates, relu_first=True)


def aspp_pooled_over_channels(x, params, rates):
    return _aspp(x, params, rates, pool_dims=(1, 2))


def aspp_atrous_padding_one(x, params, rates):
    """Every 3x3 branch padded by 1: a branch of rate r > 1 shrinks by 2(r - 1), and torch.cat refuses it."""
    return _aspp(x, params, rates, atrous_padding=1)


def aspp_atrous_unpadded(x, params, rates):
    """The 3x3 branches without padding: each shrinks by 2r, and torch.cat refuses it."""
    return _aspp(x, params, rates, atrous_padding=0)


def aspp_batch_norm_without_eps(x, params, rates):
    return _aspp(x, params, rates, eps=0.0)


def aspp_batch_norm_training_mode(x, params, rates):
    return _aspp(x, params, rates, training=True)


# ----------------------------------------------------------------------------- 09 Mask R-CNN

def _roi_bilinear(feature, y, x, *, low_band=-1.0, clamp=True, swap_weights=False):
    """RoIAlign's bilinear sample of ``feature[..., H, W]`` at (y, x), with one thing changed.

    Written like the exercise's answer (Python floats, ``int`` truncation, the same indexing order),
    so that a mistake that crashes raises the very error a student's answer raises.
    """
    import torch

    height, width = feature.shape[-2:]
    if y < low_band or y > height or x < low_band or x > width:
        return torch.zeros(feature.shape[:-2], dtype=feature.dtype)
    if clamp:
        y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    y_high, x_high = y_low + 1, x_low + 1
    if clamp and y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    if clamp and x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    if swap_weights:
        ly, lx, hy, hx = hy, hx, ly, lx
    return (hy * hx * feature[..., y_low, x_low] + hy * lx * feature[..., y_low, x_high]
            + ly * hx * feature[..., y_high, x_low] + ly * lx * feature[..., y_high, x_high])


def bilinear_swaps_x_and_y(feature, y, x):
    return _roi_bilinear(feature, x, y)


def bilinear_weights_swapped(feature, y, x):
    return _roi_bilinear(feature, y, x, swap_weights=True)


def bilinear_no_border_clamp(feature, y, x):
    return _roi_bilinear(feature, y, x, clamp=False)


def bilinear_band_is_zero(feature, y, x):
    return _roi_bilinear(feature, y, x, low_band=0.0)


def _roi_bilinear_grid(feature, ys, xs):
    """``feature`` (C, H, W) sampled at every (ys[i], xs[j]) by RoIAlign's rule: (C, len(ys), len(xs)).

    Bilinear sampling on a grid separates into rows and columns: each axis gives its two neighbours,
    their weights and whether the coordinate lies within one pixel of the map (else the sample is 0).
    """
    import torch

    def axis(coords, size):
        coords = torch.as_tensor(coords, dtype=torch.float64)
        inside = (coords >= -1.0) & (coords <= size)
        coords = coords.clamp(min=0.0)
        low = coords.floor().long()
        top = low >= size - 1
        low = torch.where(top, size - 1, low)
        high = torch.where(top, size - 1, low + 1)
        coords = torch.where(top, low.to(torch.float64), coords)
        frac = coords - low
        return low, high, (1.0 - frac) * inside, frac * inside

    feature = feature.to(torch.float64)
    y_low, y_high, y_wlow, y_whigh = axis(ys, feature.shape[-2])
    x_low, x_high, x_wlow, x_whigh = axis(xs, feature.shape[-1])
    out = 0.0
    for rows, row_weight in ((y_low, y_wlow), (y_high, y_whigh)):
        for cols, col_weight in ((x_low, x_wlow), (x_high, x_whigh)):
            out = out + feature[:, rows][:, :, cols] * row_weight[:, None] * col_weight[None, :]
    return out


def _roi_align(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False, *,
               shift=None, minimum_size=True, round_box=False, grid=None, scale_size=True):
    """torchvision's roi_align for (K, 5) boxes, with one thing changed.

    ``shift``: the half-pixel offset whatever ``aligned`` says (None: 0.5 when aligned);
    ``minimum_size``: whether aligned=False makes a region at least one pixel; ``round_box``: round
    the scaled corners (RoIPool); ``grid``: "adaptive" (sampling_ratio ignored), "one" (one sample per
    bin) or "map" (the adaptive count from the whole map); ``scale_size``: whether the region's size
    is scaled by spatial_scale.
    """
    import math

    import torch

    pooled_h, pooled_w = output_size
    offset = (0.5 if aligned else 0.0) if shift is None else shift
    out = torch.zeros(len(boxes), features.shape[1], pooled_h, pooled_w, dtype=torch.float64)
    height, width = features.shape[-2:]
    for k, (b, x1, y1, x2, y2) in enumerate(torch.as_tensor(boxes).tolist()):
        corners = [c * spatial_scale for c in (x1, y1, x2, y2)]
        if round_box:
            corners = [float(round(c)) for c in corners]
        start_x, start_y, end_x, end_y = (c - offset for c in corners)
        roi_w, roi_h = end_x - start_x, end_y - start_y
        if not scale_size:
            roi_w, roi_h = x2 - x1, y2 - y1
        if minimum_size and not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
        if grid == "one":
            grid_h = grid_w = 1
        elif grid == "map" and sampling_ratio <= 0:
            grid_h, grid_w = math.ceil(height / pooled_h), math.ceil(width / pooled_w)
        elif sampling_ratio > 0 and grid != "adaptive":
            grid_h = grid_w = sampling_ratio
        else:
            grid_h, grid_w = math.ceil(roi_h / pooled_h), math.ceil(roi_w / pooled_w)
        if grid_h <= 0 or grid_w <= 0:
            continue   # no sample: the bins stay 0
        ys = [start_y + i * bin_h + (iy + 0.5) * bin_h / grid_h for i in range(pooled_h) for iy in range(grid_h)]
        xs = [start_x + j * bin_w + (ix + 0.5) * bin_w / grid_w for j in range(pooled_w) for ix in range(grid_w)]
        samples = _roi_bilinear_grid(features[int(b)], ys, xs)
        channels = samples.shape[0]
        out[k] = samples.reshape(channels, pooled_h, grid_h, pooled_w, grid_w).sum(dim=(2, 4)) / (grid_h * grid_w)
    return out.to(features.dtype)


def roi_align_without_half_pixel(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned=False)


def roi_align_shift_always(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, shift=0.5)


def roi_align_rounds_box(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, round_box=True)


def roi_align_always_adaptive(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, grid="adaptive")


def roi_align_one_sample(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, grid="one")


def roi_align_grid_from_map(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, grid="map")


def roi_align_no_minimum_size(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, minimum_size=False)


def roi_align_unscaled_bins(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    return _roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned, scale_size=False)


def _mask_counts(a, b):
    """(intersections (N, M), areas of a (N,), areas of b (M,)) of two stacks of masks, as float64 numpy."""
    a = np.asarray(plain(a)).reshape(len(a), -1).astype(np.float64)
    b = np.asarray(plain(b)).reshape(len(b), -1).astype(np.float64)
    return a @ b.T, a.sum(axis=1), b.sum(axis=1)


def iou_divides_by_sum_of_areas(a, b):
    intersection, area_a, area_b = _mask_counts(a, b)
    total = area_a[:, None] + area_b[None, :]
    return np.where(total > 0, intersection / np.maximum(total, 1), 0.0)


def iou_intersection_only(a, b):
    return _mask_counts(a, b)[0]


def iou_transposed(a, b):
    intersection, area_a, area_b = _mask_counts(a, b)
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1), 0.0).T


def iou_empty_nan(a, b):
    intersection, area_a, area_b = _mask_counts(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return intersection / (area_a[:, None] + area_b[None, :] - intersection)


# ----------------------------------------------------------------------------- 10 SAM

def _fourier(coords, gaussian_matrix, *, centre=True, cos_first=False, two_pi=True):
    import torch

    points = 2 * coords - 1 if centre else coords
    projected = points @ gaussian_matrix
    if two_pi:
        projected = 2 * np.pi * projected
    parts = [torch.cos(projected), torch.sin(projected)] if cos_first else [torch.sin(projected), torch.cos(projected)]
    return torch.cat(parts, dim=-1)


def fourier_not_centred(coords, gaussian_matrix):
    return _fourier(coords, gaussian_matrix, centre=False)


def fourier_cos_first(coords, gaussian_matrix):
    return _fourier(coords, gaussian_matrix, cos_first=True)


def fourier_without_2pi(coords, gaussian_matrix):
    return _fourier(coords, gaussian_matrix, two_pi=False)


def _attention(q, k, v, *, scale="sqrt", axis=-1, stable=True):
    import math

    import torch

    scores = q @ k.transpose(-2, -1)
    if scale == "sqrt":
        scores = scores / math.sqrt(q.shape[-1])
    elif scale == "sqrt_dv":
        scores = scores / math.sqrt(v.shape[-1])
    elif scale == "d":
        scores = scores / q.shape[-1]
    if stable:
        weights = torch.softmax(scores, dim=axis)
    else:
        weights = torch.exp(scores) / torch.exp(scores).sum(dim=axis, keepdim=True)
    return weights @ v


def attention_without_scale(q, k, v):
    return _attention(q, k, v, scale=None)


def attention_softmax_over_queries(q, k, v):
    return _attention(q, k, v, axis=-2)


def attention_scaled_by_d(q, k, v):
    return _attention(q, k, v, scale="d")


def attention_softmax_overflows(q, k, v):
    return _attention(q, k, v, stable=False)


def attention_scaled_by_sqrt_dv(q, k, v):
    return _attention(q, k, v, scale="sqrt_dv")


def focal_without_gamma(logits, target, alpha=0.25, gamma=2.0):
    return _focal_loss(logits, target, alpha, 0.0)


def _sam_loss(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0, *, reduce_masks="min",
              soft_iou=False, best_iou_only=False, empty_iou=1.0, summed_focal=False, at_least_zero=False,
              dice_of_all_masks=False):
    """SAM's loss with one thing changed; per sample and mask as the exercise states it."""
    import torch

    batch, num_masks = mask_logits.shape[:2]
    target = target.to(mask_logits.dtype)
    total = torch.zeros((), dtype=mask_logits.dtype)
    for b in range(batch):
        # the mean Dice of the M masks, added to every mask's loss, is dice_loss called on them all at once
        all_dice = _dice_loss(mask_logits[b], target[b].expand_as(mask_logits[b])) if dice_of_all_masks else None
        losses = torch.stack([
            focal_weight * _focal_loss(mask_logits[b, m], target[b], summed=summed_focal)
            + dice_weight * (all_dice if dice_of_all_masks else _dice_loss(mask_logits[b, m][None], target[b][None]))
            for m in range(num_masks)])
        if soft_iou:
            p, y = torch.sigmoid(mask_logits[b]).flatten(1), target[b].flatten()[None]
            intersection, union = (p * y).sum(1), (p + y - p * y).sum(1)
        else:
            predicted = (mask_logits[b] >= 0 if at_least_zero else mask_logits[b] > 0).flatten(1)
            truth = (target[b] == 1).flatten()[None]
            intersection = (predicted & truth).sum(1).to(mask_logits.dtype)
            union = (predicted | truth).sum(1).to(mask_logits.dtype)
        # torch divides by 0 silently; where() keeps the empty unions' IoU from the 0/0
        iou = torch.where(union > 0, intersection / union, torch.full_like(union, empty_iou)).to(iou_pred.dtype)
        squared = (iou_pred[b] - iou) ** 2
        iou_term = squared[losses.argmin()] if best_iou_only else squared.mean()
        total = total + (losses.mean() if reduce_masks == "mean" else losses.min()) + iou_term
    return total / batch


def sam_loss_mean_over_masks(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, focal_weight, dice_weight, reduce_masks="mean")


def sam_loss_soft_iou(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, focal_weight, dice_weight, soft_iou=True)


def sam_loss_iou_of_best_mask_only(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, focal_weight, dice_weight, best_iou_only=True)


def sam_loss_empty_iou_zero(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, focal_weight, dice_weight, empty_iou=0.0)


def sam_loss_empty_iou_nan(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, focal_weight, dice_weight, empty_iou=float("nan"))


def sam_loss_weights_swapped(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, dice_weight, focal_weight)


def sam_loss_with_summed_focal(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, focal_weight, dice_weight, summed_focal=True)


def sam_loss_iou_at_logit_zero(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, focal_weight, dice_weight, at_least_zero=True)


def sam_loss_dice_of_all_masks(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    return _sam_loss(mask_logits, iou_pred, target, focal_weight, dice_weight, dice_of_all_masks=True)


def _stability(mask_logits, mask_threshold, threshold_offset, *, high=None, low=None, empty=1.0, strict=True):
    import torch

    high = mask_threshold + threshold_offset if high is None else high
    low = mask_threshold - threshold_offset if low is None else low
    above = (lambda x, t: x > t) if strict else (lambda x, t: x >= t)
    inner = above(mask_logits, high).sum(dim=(-2, -1)).to(torch.float64)
    outer = above(mask_logits, low).sum(dim=(-2, -1)).to(torch.float64)
    return torch.where(outer > 0, inner / outer, torch.full_like(outer, empty))


def stability_thresholds_swapped(mask_logits, mask_threshold, threshold_offset):
    return _stability(mask_logits, mask_threshold, threshold_offset, high=mask_threshold - threshold_offset,
                      low=mask_threshold + threshold_offset)


def stability_one_threshold(mask_logits, mask_threshold, threshold_offset):
    return _stability(mask_logits, mask_threshold, threshold_offset, high=mask_threshold, low=mask_threshold)


def stability_empty_nan(mask_logits, mask_threshold, threshold_offset):
    return _stability(mask_logits, mask_threshold, threshold_offset, empty=float("nan"))


def stability_at_least(mask_logits, mask_threshold, threshold_offset):
    return _stability(mask_logits, mask_threshold, threshold_offset, strict=False)


# ----------------------------------------------------------------------------- 11 COCO

def frequency_counts_crowds(coco):
    return np.array([len(coco.getAnnIds(catIds=[c])) for c in sorted(coco.getCatIds())], dtype=np.int64)


def instances_count_crowds(coco):
    return np.array([len(coco.getAnnIds(imgIds=[i])) for i in sorted(coco.getImgIds())], dtype=np.int64)


def sizes_from_boxes(coco):
    areas = np.array([coco.anns[i]["bbox"][2] * coco.anns[i]["bbox"][3] for i in coco.getAnnIds(iscrowd=False)],
                     dtype=float)
    small = np.sum(areas < 32 ** 2)
    large = np.sum(areas >= 96 ** 2)
    return np.array([small, len(areas) - small - large, large], dtype=np.int64)


def sizes_small_inclusive(coco):
    areas = np.array([coco.anns[i]["area"] for i in coco.getAnnIds(iscrowd=False)], dtype=float)
    small = np.sum(areas <= 32 ** 2)
    large = np.sum(areas >= 96 ** 2)
    return np.array([small, len(areas) - small - large, large], dtype=np.int64)


def cooccurrence_counts_objects(coco):
    cat_ids = sorted(coco.getCatIds())
    counts = np.array([[len(coco.getAnnIds(imgIds=[i], catIds=[c], iscrowd=False)) for c in cat_ids]
                       for i in sorted(coco.getImgIds())])
    return counts.T @ counts


def crowds_inverted(coco):
    return np.array([len(coco.getAnnIds(catIds=[c], iscrowd=False)) for c in sorted(coco.getCatIds())],
                    dtype=np.int64)


def _label_map(coco, image_id, size, *, category_ids=False, crowd_label=255, corners=False, file_order=False,
               crowd_on_top=False):
    index = {c: k + 1 for k, c in enumerate(sorted(coco.getCatIds()))}
    info = coco.imgs[image_id]
    height, width = info["height"], info["width"]
    labels = np.zeros((height, width), dtype=np.int64)
    covered = np.zeros((height, width), dtype=bool)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    objects = [a for a in anns if not a["iscrowd"]]
    for ann in objects if file_order else sorted(objects, key=lambda a: -a["area"]):
        mask = coco.annToMask(ann).astype(bool)
        labels[mask] = ann["category_id"] if category_ids else index[ann["category_id"]]
        covered |= mask
    for ann in (a for a in anns if a["iscrowd"]):
        labels[coco.annToMask(ann).astype(bool) & (True if crowd_on_top else ~covered)] = crowd_label
    shift = 0.0 if corners else 0.5
    rows = np.minimum(((np.arange(size[0]) + shift) * height / size[0]).astype(int), height - 1)
    cols = np.minimum(((np.arange(size[1]) + shift) * width / size[1]).astype(int), width - 1)
    return labels[rows[:, None], cols[None, :]]


def label_map_category_ids(coco, image_id, size):
    return _label_map(coco, image_id, size, category_ids=True)


def label_map_crowds_as_background(coco, image_id, size):
    return _label_map(coco, image_id, size, crowd_label=0)


def label_map_samples_corners(coco, image_id, size):
    return _label_map(coco, image_id, size, corners=True)


def label_map_file_order(coco, image_id, size):
    return _label_map(coco, image_id, size, file_order=True)


def label_map_crowd_over_objects(coco, image_id, size):
    return _label_map(coco, image_id, size, crowd_on_top=True)


# ----------------------------------------------------------------------------- the registry

def _m(function, hint: str) -> KnownMistake:
    return KnownMistake(function.__name__, hint, function)


A00, A01, A02, A03, A04, A05, A11 = ("00_tasks_and_metrics", "01_thresholding", "02_edges", "03_regions",
                                     "04_transpose_convolution", "05_fcn", "11_coco_eda")
A06, A07, A08, A09, A10 = "06_unet", "07_segnet", "08_deeplab", "09_mask_rcnn", "10_sam"

MISTAKES: dict[tuple[str, str], tuple[KnownMistake, ...]] = {
    (A00, "confusion_matrix"): (
        _m(cm_transposed, "Hint: this is the transpose of the confusion matrix: the target class goes on the "
                          "rows (cm[target, pred]), the prediction on the columns."),
        _m(cm_ignore_not_excluded, "Hint: the pixels whose target is ignore_index are still counted: drop them "
                                   "(from pred and target) before counting."),
    ),
    (A00, "pixel_accuracy"): (
        _m(pixel_accuracy_per_class, "Hint: this averages the per-class accuracies; pixel accuracy counts "
                                     "pixels: the diagonal's sum over the sum of all entries."),
    ),
    (A00, "mean_accuracy"): (
        _m(mean_accuracy_all_classes, "Hint: a class absent from the target (its row is all zeros) is "
                                      "averaged in as accuracy 0: average only the classes present in the target."),
    ),
    (A00, "mean_iou"): (
        _m(mean_iou_absent_as_zero, "Hint: classes absent from both maps (union 0) are averaged in as IoU 0: "
                                    "leave them out of the mean."),
        _m(mean_iou_target_classes_only, "Hint: only the classes of the target are averaged: a class that "
                                         "occurs only in the prediction counts too (its IoU is 0)."),
    ),
    (A00, "frequency_weighted_iou"): (
        _m(fw_iou_prediction_weights, "Hint: the weights come from the prediction (column sums); frequency "
                                      "weights are the target's class frequencies (row sums)."),
        _m(fw_iou_absent_class_nan, "Hint: a class in neither map has union 0, and 0/0 = NaN spoils the sum: "
                                    "leave classes with an empty union out."),
    ),
    (A00, "dice_coefficient"): (
        _m(dice_is_iou, "Hint: this is the IoU (intersection over union); Dice is 2|A and B| / (|A| + |B|)."),
        _m(dice_empty_is_zero, "Hint: two empty masks agree perfectly: their Dice coefficient is 1, not 0."),
    ),
    (A01, "threshold"): (
        _m(threshold_greater_or_equal, "Hint: pixels equal to the threshold are counted as foreground: use a "
                                       "strict img > t."),
    ),
    (A01, "otsu_threshold"): (
        _m(otsu_returns_bin_edge, "Hint: this is the upper edge of the best bin; return the centre of that "
                                  "bin."),
        _m(otsu_fixed_range, "Hint: the histogram spans [0, 1]; let it span the image's own range "
                             "[min, max] (np.histogram's default)."),
        _m(otsu_split_off_by_one, "Hint: bin k is counted in both classes; split after bin k: class 0 is bins "
                                  "0..k, class 1 is bins k+1..L-1."),
    ),
    (A01, "adaptive_threshold"): (
        _m(adaptive_offset_added, "Hint: the offset is added to the local mean; subtract it: img > local - "
                                  "offset."),
        _m(adaptive_zero_padding, "Hint: the local mean is padded with zeros at the border; reflect the image "
                                  "there (mode=\"reflect\")."),
        _m(adaptive_sigma_from_block, "Hint: the Gaussian's sigma is block_size / 2; use sigma = "
                                      "(block_size - 1) / 6."),
        _m(adaptive_gaussian_cut_at_block, "Hint: the Gaussian is cut off at the block_size window; use the "
                                           "whole Gaussian (gaussian_filter's default radius)."),
    ),
    (A02, "convolve2d"): (
        _m(convolve_unflipped, "Hint: this is the cross-correlation: did you flip the kernel "
                               "(kernel[::-1, ::-1])?"),
        _m(convolve_zero_padding, "Hint: the border is padded with zeros; reflect the image there "
                                  "(np.pad mode=\"symmetric\")."),
        _m(convolve_reflect_without_edge, "Hint: np.pad's mode=\"reflect\" skips the edge pixel; "
                                          "mode=\"symmetric\" repeats it, as asked."),
        _m(convolve_pad_off_by_one, "Hint: the image is padded by one pixel too many: pad by kh // 2 rows and "
                                    "kw // 2 columns."),
    ),
    (A02, "sobel"): (
        _m(sobel_swapped, "Hint: gx and gy are swapped: return (gx, gy), gx being the derivative along the "
                          "columns."),
        _m(sobel_forgets_the_flip, "Hint: gx has the wrong sign: convolve2d flips its kernel, so flip the "
                                   "Sobel kernel first to get the correlation."),
    ),
    (A02, "gradient_magnitude"): (
        _m(magnitude_without_sqrt, "Hint: this is gx^2 + gy^2; the magnitude is its square root."),
    ),
    (A02, "non_maximum_suppression"): (
        _m(nms_diagonals_swapped, "Hint: the diagonal neighbours of the 45 and 135 degree bins are swapped."),
        _m(nms_rows_and_columns_swapped, "Hint: the neighbours of the 0 and 90 degree bins are swapped: a 0 "
                                         "degree gradient compares left and right."),
        _m(nms_radians_as_degrees, "Hint: the direction is in radians: convert it with np.degrees before "
                                   "quantising."),
        _m(nms_strictly_greater, "Hint: a pixel equal to a neighbour is suppressed: keep it (>=, not >)."),
    ),
    (A03, "region_grow"): (
        _m(region_mean_never_updated, "Hint: pixels are compared with the seed's intensity only; compare with "
                                      "the running mean of the region as it grows."),
        _m(region_connectivity_ignored, "Hint: this region uses 8 neighbours whatever connectivity says."),
        _m(region_depth_first, "Hint: this grows depth-first (a stack); grow breadth-first (a queue, "
                               "popleft), since the running mean depends on the order."),
        _m(region_less_or_equal, "Hint: a pixel whose difference equals the threshold joins; it must be "
                                 "strictly below (<, not <=)."),
        _m(region_right_before_left, "Hint: the neighbours are visited in another order; visit up, left, right, "
                                     "down, since the running mean depends on the order."),
        _m(region_diagonal_offset_wrong, "Hint: one diagonal neighbour is missing from the 8-neighbourhood "
                                         "(one offset is typed twice): list all eight."),
    ),
    (A03, "kmeans_segment"): (
        _m(kmeans_never_updates_centres, "Hint: the centres never move: after each assignment, set each centre "
                                         "to the mean of its pixels."),
        _m(kmeans_unsorted, "Hint: the clusters are not numbered by brightness: sort the centres by their mean "
                            "and relabel."),
    ),
    (A04, "conv_output_size"): (
        _m(conv_size_without_plus_one, "Hint: one short: the first window position counts too (+ 1)."),
        _m(conv_size_ignores_dilation, "Hint: the dilation is ignored: a dilated kernel spans "
                                       "dilation * (k - 1) + 1 pixels."),
        _m(conv_size_true_division, "Hint: / gives a float and keeps the fraction; use integer division //, "
                                    "which takes the floor."),
        _m(conv_size_float_floor, "Hint: np.floor returns a float; use integer division // to get an int."),
    ),
    (A04, "conv_transpose_output_size"): (
        _m(transpose_size_adds_padding, "Hint: the padding is added; a transpose convolution crops it: "
                                        "- 2 * padding."),
        _m(transpose_size_float, "Hint: the size is a float; return an int (no float factor or /)."),
    ),
    (A04, "conv_transpose2d"): (
        _m(transpose_missing_overlap_sum, "Hint: overlapping blocks overwrite each other; add them (+=)."),
        _m(transpose_stride_on_kernel, "Hint: the blocks are placed one pixel apart; place block (i, j) at "
                                       "(i * stride, j * stride)."),
        _m(transpose_pads_instead_of_cropping, "Hint: padding is added around the result; a transpose "
                                               "convolution crops padding rows and columns instead."),
        _m(transpose_ignores_output_padding, "Hint: output_padding is ignored: it adds rows and columns at the "
                                             "bottom and on the right."),
    ),
    (A04, "stride2_example"): (
        _m(stride2_forgot_an_overlap, "Hint: where several blocks overlap, every block's contribution must be "
                                      "added: check those entries again."),
    ),
    (A05, "linear_to_conv_weight"): (
        _m(linear_reshape_channels_last, "Hint: the flattened map is read as (h, w, C); PyTorch flattens "
                                         "(C, h, w), so reshape to (M, C, h, w) directly."),
    ),
    (A05, "bilinear_kernel"): (
        _m(bilinear_odd_centre_always, "Hint: an even k has its centre between two pixels: factor - 0.5, "
                                       "not factor - 1."),
        _m(bilinear_fills_every_channel_pair, "Hint: the filter is at every [i, j], which mixes channels; put "
                                              "it only at [i, i]."),
    ),
    (A05, "fcn8s_fuse"): (
        _m(fuse_skips_pool3, "Hint: this is FCN-16s: add the pool3 scores (score8) after the second 2x "
                             "upsampling."),
        _m(fuse_reuses_one_upsampler, "Hint: upscore2 is used for both 2x steps; the second one is "
                                      "upscore_pool4."),
    ),
    (A06, "center_crop"): (
        _m(crop_one_pixel_late, "Hint: the crop is one pixel off: it starts one row and one column too late; "
                                "start at round((H - h) / 2), counting from 0."),
        _m(crop_end_inclusive, "Hint: the crop is one pixel too large: a slice excludes its end, so take "
                               "x[..., top:top + h, left:left + w]."),
        _m(crop_floor_start, "Hint: for an odd H - h the start is round((H - h) / 2) with Python's round (halves "
                             "to even, as torchvision); (H - h) // 2 always rounds down."),
    ),
    (A06, "unet_weight_map"): (
        _m(weight_map_same_object, "Hint: d1 and d2 are measured to the same object; d2 is the distance to the "
                                   "second-nearest object, another one (one distance transform per object)."),
        _m(weight_map_border_on_objects, "Hint: the border term is added on the objects too; add it on "
                                         "background pixels (label 0) only."),
        _m(weight_map_without_class_weights, "Hint: the class weights are missing: w_c = n_pixels / (2 * "
                                             "n_pixels_of_that_class), for the foreground and for the background."),
    ),
    (A06, "dice_loss"): (
        _m(dice_without_smoothing, "Hint: Dice without smoothing: an empty target with an empty prediction gives "
                                   "0/0; add smooth to the numerator and to the denominator."),
        _m(dice_without_sigmoid, "Hint: the logits are used as probabilities; apply torch.sigmoid to them first."),
        _m(dice_over_the_whole_batch, "Hint: this is one Dice over the whole batch; compute each sample's Dice "
                                      "(sum over all but the batch axis), then average the losses."),
    ),
    (A06, "focal_loss"): (
        _m(focal_gamma_on_p_t, "Hint: gamma is on the wrong term: the factor is (1 - p_t) ** gamma, which "
                               "down-weights the easy pixels (p_t near 1), not p_t ** gamma."),
        _m(focal_alpha_on_negatives, "Hint: alpha is applied to the wrong class: alpha_t is alpha for the "
                                     "positives (target 1) and 1 - alpha for the negatives."),
        _m(focal_summed, "Hint: the loss is summed over the pixels; the exercise asks for the mean over every "
                         "pixel of every sample (torchvision's reduction=\"mean\")."),
    ),
    (A07, "max_unpool2d"): (
        _m(unpool_top_left, "Hint: the indices are ignored: each value went to its window's top-left corner; put "
                            "it at the position its index names (row index // W, column index % W)."),
        _m(unpool_nearest, "Hint: this is nearest-neighbour upsampling, which ignores the indices; unpooling puts "
                           "each value only where its index points, zeros elsewhere."),
        _m(unpool_ignores_stride, "Hint: the stride is ignored; without output_size the size is "
                                  "(h - 1) * stride + kernel_size, and stride = kernel_size only when it is None."),
    ),
    (A07, "segnet_decoder_stage"): (
        _m(decoder_relu_before_batch_norm, "Hint: the ReLU comes before the batch norm; each layer is conv, "
                                           "then batch norm, then ReLU."),
        _m(decoder_batch_statistics, "Hint: the batch norm uses the batch's own mean and variance; in inference "
                                     "mode it uses the running_mean and running_var it is given."),
        _m(decoder_batch_norm_without_eps, "Hint: the batch norm divides by sqrt(running_var) without eps; "
                                           "it is (y - mean) / sqrt(var + eps) with eps = 1e-5, which matters "
                                           "for channels of small variance."),
        _m(decoder_ignores_indices, "Hint: the stage upsamples without the encoder's indices; unpool with them "
                                    "(your max_unpool2d), so each value returns to where its maximum was."),
    ),
    (A08, "dilated_conv2d"): (
        _m(dilation_as_stride, "Hint: the dilation went into the stride: the output is subsampled and the taps stay "
                               "next to each other. Space the taps instead: row r*stride + u*dilation."),
        _m(dilation_times_padding, "Hint: the padding is multiplied by the dilation and the taps stay next to each "
                                   "other; pad by padding pixels and space the taps dilation pixels apart."),
        _m(dilation_as_padding, "Hint: the dilation is used as the padding and the taps stay next to each other; "
                                "pad by padding pixels and space the taps dilation pixels apart."),
        _m(taps_one_apart_too_many, "Hint: the taps are dilation + 1 pixels apart (d zeros between taps); rate d "
                                    "puts them d pixels apart (d - 1 zeros between them)."),
        _m(taps_one_apart_too_few, "Hint: the taps are dilation - 1 pixels apart; rate d puts them d pixels apart: "
                                   "tap u reads row r*stride + u*dilation of the padded input."),
        _m(conv_bias_ignored, "Hint: the bias is never added; add bias[o] to every pixel of output channel o."),
        _m(conv_bias_at_every_tap, "Hint: the bias is added once per kernel tap; add it once per output pixel, "
                                   "after the sum over the taps."),
        _m(conv_size_rounds_down_once_more, "Hint: the output is short of a row or column: its size is "
                                            "(H + 2p - d(k - 1) - 1) // s + 1."),
    ),
    (A08, "receptive_field"): (
        _m(rf_adds_strides, "Hint: the strides are added to the jump; they multiply: j_l = j_(l-1) * s_l."),
        _m(rf_uses_the_new_jump, "Hint: the size uses the jump after the layer; use the jump of the layer's input, "
                                 "j_(l-1): update the size before the jump."),
        _m(rf_ignores_dilation, "Hint: the dilation is ignored; a dilated kernel adds (k - 1) * d * j_(l-1) pixels."),
        _m(rf_returns_size_only, "Hint: only the size is returned; return the tuple (size, jump)."),
        _m(rf_starts_at_zero, "Hint: the size is one short: start from one pixel, r_0 = 1 (and j_0 = 1)."),
        _m(rf_recursion_runs_forward, "Hint: r = s * r + (k - 1) * d runs from the output to the input: loop over "
                                      "reversed(layers), or go forward with r_l = r_(l-1) + (k_l - 1) d_l j_(l-1)."),
    ),
    (A08, "aspp"): (
        _m(aspp_without_pooling, "Hint: the image-pooling branch is missing: the projection expects (2 + "
                                 "len(rates)) * C_out channels, with the pooled branch last."),
        _m(aspp_pooling_not_upsampled, "Hint: the pooled branch is still 1x1 when it is concatenated; upsample it "
                                       "back to h x w first (expand or F.interpolate)."),
        _m(aspp_pooling_first, "Hint: the branches are concatenated in the wrong order: 1x1 first, then the rates "
                               "in order, then image pooling last."),
        _m(aspp_relu_before_batch_norm, "Hint: the ReLU comes before the batch norm; each layer is conv, then batch "
                                        "norm, then ReLU."),
        _m(aspp_pooled_over_channels, "Hint: the image pooling averages over the wrong axes; x is (N, C, h, w): "
                                      "average over the positions, x.mean(dim=(2, 3), keepdim=True)."),
        _m(aspp_atrous_padding_one, "Hint: an atrous 3x3 branch of rate r needs padding r to keep h x w; with "
                                    "padding 1 its output shrinks by 2(r - 1) rows and columns."),
        _m(aspp_atrous_unpadded, "Hint: the atrous 3x3 branches are not padded, so they shrink; a branch of rate r "
                                 "needs padding r (with dilation r) to keep h x w."),
        _m(aspp_batch_norm_without_eps, "Hint: the batch norm divides by sqrt(running_var) without eps; it is "
                                        "(y - mean) / sqrt(var + eps) with eps = 1e-5."),
        _m(aspp_batch_norm_training_mode, "Hint: the batch norm uses the batch's own mean and variance; in "
                                          "inference mode it uses the running_mean and running_var it is given "
                                          "(F.batch_norm with training=False)."),
    ),
    (A09, "bilinear_interpolate"): (
        _m(bilinear_swaps_x_and_y, "Hint: x and y are swapped: y is the row (the first index of feature[..., row, "
                                   "column]) and x the column."),
        _m(bilinear_weights_swapped, "Hint: the weights are on the wrong neighbours: the low row y0 gets 1 - ly (it is "
                                     "the nearer one when ly is small) and the high row ly; the same for columns."),
        _m(bilinear_no_border_clamp, "Hint: points on the border band are not clamped: y = max(y, 0), and when "
                                     "y0 >= H - 1, y0 = y1 = H - 1 (the same for x with W)."),
        _m(bilinear_band_is_zero, "Hint: points between -1 and 0 still count: only y < -1 or x < -1 (or y > H, "
                                  "x > W) give 0; clamp the others to the map."),
    ),
    (A09, "roi_align"): (
        _m(roi_align_without_half_pixel, "Hint: aligned=True is treated as aligned=False: shift the scaled corners by "
                                         "0.5 pixel (x1 * spatial_scale - 0.5), and give the region no minimum size."),
        _m(roi_align_shift_always, "Hint: the half-pixel shift is applied with aligned=False too; only aligned=True "
                                   "subtracts 0.5 from the scaled corners."),
        _m(roi_align_rounds_box, "Hint: the box's corners are rounded to whole pixels, as RoIPool does; RoIAlign keeps "
                                 "the scaled corners (x1 * spatial_scale) as they are."),
        _m(roi_align_always_adaptive, "Hint: sampling_ratio is ignored: when it is positive, each bin has a "
                                      "sampling_ratio x sampling_ratio grid of samples."),
        _m(roi_align_one_sample, "Hint: each bin has one sample; it has a grid: sampling_ratio per side, or "
                                 "ceil(h / P_h) by ceil(w / P_w) when sampling_ratio <= 0."),
        _m(roi_align_grid_from_map, "Hint: the adaptive grid comes from the whole map (H / P_h); use the region's own "
                                    "size: ceil(h / P_h) by ceil(w / P_w) samples."),
        _m(roi_align_no_minimum_size, "Hint: with aligned=False a region is at least one pixel: w = max(w, 1) and "
                                      "h = max(h, 1) before it is cut into bins."),
        _m(roi_align_unscaled_bins, "Hint: the region's size is not scaled: its width is (x2 - x1) * spatial_scale "
                                    "feature-map pixels, like its corners."),
    ),
    (A09, "mask_iou"): (
        _m(iou_divides_by_sum_of_areas, "Hint: this divides by the sum of the areas; divide by the union, "
                                        "|A| + |B| - |A and B|, which counts the overlap once."),
        _m(iou_intersection_only, "Hint: this is the intersection alone (a pixel count); divide it by the union to "
                                  "get the IoU."),
        _m(iou_transposed, "Hint: the result is transposed: entry [i, j] compares a[i] with b[j], so its shape is "
                           "(N, M)."),
        _m(iou_empty_nan, "Hint: an empty union gives 0/0 = NaN; its IoU is 0 (as in pycocotools): divide only where "
                          "the union is positive."),
    ),
    (A10, "fourier_encoding"): (
        _m(fourier_not_centred, "Hint: the coordinates are projected as they are, in [0, 1]; map them to [-1, 1] "
                                "first: 2 * coords - 1."),
        _m(fourier_cos_first, "Hint: the cosines come first; the features are the F sines, then the F cosines."),
        _m(fourier_without_2pi, "Hint: the factor 2 pi is missing: take sin and cos of 2 * math.pi * ((2c - 1) @ G)."),
    ),
    (A10, "attention"): (
        _m(attention_without_scale, "Hint: the scores are not scaled; divide q @ k^T by sqrt(d), d the size of a "
                                    "query (q.shape[-1])."),
        _m(attention_softmax_over_queries, "Hint: the softmax runs over the queries (dim=-2); each query's weights "
                                           "over the keys must sum to 1: softmax along the last axis."),
        _m(attention_scaled_by_d, "Hint: the scores are divided by d; divide them by sqrt(d) "
                                  "(math.sqrt(q.shape[-1]))."),
        _m(attention_softmax_overflows, "Hint: exp of a large score overflows to inf and inf / inf is NaN; use "
                                        "torch.softmax, or subtract each row's maximum before exp."),
        _m(attention_scaled_by_sqrt_dv, "Hint: the scores are divided by sqrt(d_v), the size of a value; divide by "
                                        "sqrt(d), the size of a query and key (q.shape[-1])."),
    ),
    (A10, "focal_loss"): (
        _m(focal_alpha_on_negatives, "Hint: alpha is applied to the wrong class: alpha_t is alpha for the "
                                     "positives (target 1) and 1 - alpha for the negatives."),
        _m(focal_without_gamma, "Hint: the factor (1 - p_t) ** gamma is missing: without it this is a weighted "
                                "cross-entropy that does not down-weight the easy pixels."),
        _m(focal_summed, "Hint: the loss is summed over the pixels; the exercise asks for the mean over every "
                         "pixel of every mask (.mean(), not .sum())."),
    ),
    (A10, "dice_loss"): (
        _m(dice_without_smoothing, "Hint: Dice without smoothing: an empty target with an empty prediction gives "
                                   "0/0; add smooth to the numerator and to the denominator."),
        _m(dice_over_the_whole_batch, "Hint: this is one Dice over all the masks together; compute each mask's Dice "
                                      "(sum over all but the first axis), then average the losses."),
    ),
    (A10, "sam_loss"): (
        _m(sam_loss_mean_over_masks, "Hint: the mask losses are averaged over the M masks; SAM keeps only the "
                                     "smallest, the loss of the best mask (min over the masks)."),
        _m(sam_loss_soft_iou, "Hint: the IoU target is computed from probabilities (a soft IoU); use the "
                              "thresholded mask, mask_logits > 0, as the user would see it."),
        _m(sam_loss_iou_of_best_mask_only, "Hint: the IoU term covers only the best mask; average the squared error "
                                           "over all M masks, so that the head learns every mask's IoU."),
        _m(sam_loss_empty_iou_zero, "Hint: an empty mask against an empty target gets IoU 0 here; two empty masks "
                                    "are equal, so their IoU is 1."),
        _m(sam_loss_empty_iou_nan, "Hint: two empty masks give 0/0 = NaN; their IoU is 1 (they are equal): divide "
                                   "only where the union is positive."),
        _m(sam_loss_weights_swapped, "Hint: the weights are swapped: focal_weight (20) multiplies the focal loss and "
                                     "dice_weight (1) the Dice loss."),
        _m(sam_loss_with_summed_focal, "Hint: this is sam_loss with a focal loss summed over the pixels; sam_loss "
                                       "uses your focal_loss and dice_loss: make their tests pass first."),
        _m(sam_loss_iou_at_logit_zero, "Hint: a logit of exactly 0 counts as in the mask here; the mask of the IoU "
                                       "target is mask_logits > 0 (strictly)."),
        _m(sam_loss_dice_of_all_masks, "Hint: the Dice loss is of all M masks at once (their mean, added to every "
                                       "mask); take each mask's own Dice: dice_loss(mask_logits[b, m][None], ...)."),
    ),
    (A10, "stability_score"): (
        _m(stability_thresholds_swapped, "Hint: the two thresholds are swapped: count the pixels above t + offset "
                                         "over those above t - offset, a score in [0, 1]."),
        _m(stability_one_threshold, "Hint: both counts use the same threshold, so every score is 1; count above "
                                    "t + offset, then above t - offset."),
        _m(stability_empty_nan, "Hint: a mask with no logit above t - offset gives 0/0 = NaN; its score is 1, the "
                                "IoU of two empty masks."),
        _m(stability_at_least, "Hint: a logit exactly on a threshold is counted here (>=); both comparisons are "
                               "strict: mask_logits > t + offset and mask_logits > t - offset."),
    ),
    (A11, "class_frequency"): (
        _m(frequency_counts_crowds, "Hint: crowd annotations are counted as objects: use iscrowd=False."),
    ),
    (A11, "instances_per_image"): (
        _m(instances_count_crowds, "Hint: crowd annotations are counted as objects: use iscrowd=False."),
    ),
    (A11, "size_class_counts"): (
        _m(sizes_from_boxes, "Hint: the sizes come from the box (w * h); COCO's size classes use the mask "
                             "area, ann[\"area\"]."),
        _m(sizes_small_inclusive, "Hint: an area of exactly 32 ** 2 counts as small here; small is area < 32 ** 2 "
                                  "(and large is area >= 96 ** 2)."),
    ),
    (A11, "cooccurrence_matrix"): (
        _m(cooccurrence_counts_objects, "Hint: this multiplies object counts; count images that hold both "
                                        "categories at least once."),
    ),
    (A11, "crowd_counts"): (
        _m(crowds_inverted, "Hint: these are the objects (iscrowd=False); count the crowds (iscrowd=True)."),
    ),
    (A11, "label_map"): (
        _m(label_map_category_ids, "Hint: COCO's category ids are used as labels; they are not contiguous: "
                                   "label k + 1 is the k-th category id in increasing order."),
        _m(label_map_crowds_as_background, "Hint: crowd regions are background here; they get the ignore "
                                           "label 255."),
        _m(label_map_samples_corners, "Hint: resizing samples pixel corners; sample pixel centres: "
                                      "(i + 0.5) * height / size[0]."),
        _m(label_map_file_order, "Hint: the objects are painted in the file's order; paint the largest first, "
                                 "so that small objects on top stay visible."),
        _m(label_map_crowd_over_objects, "Hint: crowd regions are painted over the objects; the ignore label 255 "
                                         "goes only where no object is."),
    ),
}

# Known mistakes without a hint, and why (the test of the registry requires a reason for each).
EXCLUDED: dict[tuple[str, str], str] = {}


def mistakes(assignment: str, function: str) -> tuple[KnownMistake, ...]:
    """The known mistakes of ``(assignment, function)`` (empty when it has none)."""
    return MISTAKES.get((assignment, function), ())


def outcome(mistake: KnownMistake, args: tuple, kwargs: dict):
    """What ``mistake`` returns on copies of the inputs (a :class:`Raised` if it raises)."""
    try:
        return plain(mistake.answer(*copy.deepcopy(args), **copy.deepcopy(kwargs)))
    except Exception as error:   # the mistake's own crash is its outcome
        return Raised(type(error).__name__, str(error))
