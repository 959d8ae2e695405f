"""Behaviour of ``segedu.grading``: what a test cell's ``ex.check`` accepts, rejects and says.

The student functions below are written the way students write them (numpy, and scipy.ndimage for
adaptive thresholds); the cheats are the ways an answer can hand the work to the reference or to
the library the exercise re-implements.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import ndimage as ndi

# Imported up front, so that the delegation tests see *calls* into these modules, not first imports.
import sklearn.metrics  # noqa: F401
import segedu.classical
import segedu.metrics
from segedu.metrics import mean_iou as alias_mean_iou
from skimage.filters import threshold_otsu

from segedu.grading import DEFAULT_GRADING_SEED, EXERCISES, Exercise, _compare, exercise, grading_seed
from segedu.grading._tripwire import _matches
from segedu.grading.exercises import ExerciseSpec, GradedFunction

SEED_VARIABLE = "SEGEDU_GRADING_SEED"


@pytest.fixture(autouse=True)
def _public_seed(monkeypatch):
    """Every test starts from the public default seed, whatever the shell running pytest sets."""
    monkeypatch.delenv(SEED_VARIABLE, raising=False)


@pytest.fixture(autouse=True)
def _profiler_untouched():
    """No test may leave a profile hook behind (that would also slow down every later test)."""
    before, before_threading = sys.getprofile(), threading.getprofile()
    yield
    assert sys.getprofile() is before
    assert threading.getprofile() is before_threading


def ex00() -> Exercise:
    return exercise("00_tasks_and_metrics")


def ex01() -> Exercise:
    return exercise("01_thresholding")


def failure(ex: Exercise, name: str, function, *args, case: str = "the case", hidden: bool = False, **kwargs) -> str:
    """The message of the AssertionError that ``check`` must raise."""
    with pytest.raises(AssertionError) as caught:
        ex.check(name, function, *args, case=case, hidden=hidden, **kwargs)
    return str(caught.value)


# --------------------------------------------------------------------------------------------------
# Correct answers, as a student writes them
# --------------------------------------------------------------------------------------------------


def student_confusion_matrix(pred, target, num_classes, ignore_index=None):
    pred = np.asarray(pred).astype(np.int64).ravel()
    target = np.asarray(target).astype(np.int64).ravel()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (target, pred), 1)
    return cm


def student_pixel_accuracy(cm):
    cm = np.asarray(cm, dtype=np.float64)
    return float(np.trace(cm) / cm.sum())


def student_mean_accuracy(cm):
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum(axis=1)
    present = total > 0
    return float(np.mean(np.diag(cm)[present] / total[present]))


def _student_iou(cm):
    intersection = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - intersection
    present = union > 0
    return intersection[present] / union[present], present


def student_mean_iou(cm):
    iou, _ = _student_iou(np.asarray(cm, dtype=np.float64))
    return float(np.mean(iou))


def student_frequency_weighted_iou(cm):
    cm = np.asarray(cm, dtype=np.float64)
    iou, present = _student_iou(cm)
    area = cm.sum(axis=1)
    return float(np.sum(area[present] * iou) / area.sum())


def student_dice_coefficient(pred_mask, target_mask):
    a = np.asarray(pred_mask).astype(bool)
    b = np.asarray(target_mask).astype(bool)
    total = a.sum() + b.sum()
    if total == 0:
        return 1.0
    return float(2.0 * np.logical_and(a, b).sum() / total)


def student_threshold(img, t):
    return np.asarray(img, dtype=float) > t


def student_otsu_threshold(img, nbins=256):
    img = np.asarray(img, dtype=float)
    counts, edges = np.histogram(img.ravel(), bins=nbins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(counts)
    weight1 = np.cumsum(counts[::-1])[::-1]
    mean0 = np.cumsum(counts * centres) / np.maximum(weight0, 1)
    mean1 = (np.cumsum((counts * centres)[::-1]) / np.maximum(weight1[::-1], 1))[::-1]
    between = weight0[:-1] * weight1[1:] * (mean0[:-1] - mean1[1:]) ** 2
    return float(centres[np.argmax(between)])


def student_adaptive_threshold(img, block_size, offset=0, method="mean"):
    img = np.asarray(img, dtype=float)
    if method == "mean":
        local = ndi.uniform_filter(img, size=block_size, mode="reflect")
    else:
        local = ndi.gaussian_filter(img, sigma=(block_size - 1) / 6.0, mode="reflect")
    return img > local - offset


def student_convolve2d(img, kernel):
    # the naive loop over pixels, as in the lecture: slow but plainly right
    img = np.asarray(img, dtype=float)
    kernel = np.asarray(kernel, dtype=float)[::-1, ::-1]
    a, b = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(img, ((a, a), (b, b)), mode="symmetric")
    out = np.empty_like(img)
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            out[r, c] = np.sum(padded[r:r + kernel.shape[0], c:c + kernel.shape[1]] * kernel)
    return out


def student_sobel(img):
    padded = np.pad(np.asarray(img, dtype=float), 1, mode="symmetric")
    smooth_rows = padded[:-2] + 2 * padded[1:-1] + padded[2:]
    smooth_cols = padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]
    return smooth_rows[:, 2:] - smooth_rows[:, :-2], smooth_cols[2:] - smooth_cols[:-2]


def student_gradient_magnitude(gx, gy):
    return np.hypot(gx, gy)


def student_non_maximum_suppression(magnitude, direction):
    mag = np.asarray(magnitude, dtype=float)
    angle = np.mod(np.rad2deg(direction), 180.0)
    bins = np.floor((angle + 22.5) / 45.0).astype(int) % 4
    padded = np.pad(mag, 1)
    h, w = mag.shape
    shifted = {(dr, dc): padded[1 + dr:1 + dr + h, 1 + dc:1 + dc + w] for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
    pairs = [((0, -1), (0, 1)), ((-1, -1), (1, 1)), ((-1, 0), (1, 0)), ((-1, 1), (1, -1))]
    keep = np.zeros(mag.shape, bool)
    for index, (n1, n2) in enumerate(pairs):
        keep |= (bins == index) & (mag >= shifted[n1]) & (mag >= shifted[n2])
    keep[0, :] = keep[-1, :] = keep[:, 0] = keep[:, -1] = False
    return np.where(keep, mag, 0.0)


def student_region_grow(img, seed, threshold, connectivity=4):
    img = np.asarray(img, dtype=float)
    if connectivity == 4:
        offsets = [(-1, 0), (0, -1), (0, 1), (1, 0)]
    else:
        offsets = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
    inside = {tuple(seed)}
    values = [img[tuple(seed)]]
    queue = [tuple(seed)]
    while queue:
        r, c = queue.pop(0)
        for dr, dc in offsets:
            p = (r + dr, c + dc)
            if 0 <= p[0] < img.shape[0] and 0 <= p[1] < img.shape[1] and p not in inside:
                if abs(img[p] - np.mean(values)) < threshold:
                    inside.add(p)
                    values.append(img[p])
                    queue.append(p)
    mask = np.zeros(img.shape, bool)
    mask[tuple(np.array(sorted(inside)).T)] = True
    return mask


def student_kmeans_segment(img, k, init, max_iter=100):
    img = np.asarray(img, dtype=float)
    points = img.reshape(-1, 1 if img.ndim == 2 else img.shape[2])
    centres = np.array(init, dtype=float).reshape(k, -1)
    labels = np.full(len(points), -1)
    for _ in range(max_iter):
        new = np.argmin(np.linalg.norm(points[:, None] - centres[None], axis=2), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        centres = np.stack([points[labels == j].mean(axis=0) for j in range(k)])
    order = np.argsort(centres.mean(axis=1))
    renumber = np.argsort(order)
    return renumber[labels].reshape(img.shape[:2]), centres[order]


def student_conv_output_size(n, k, stride=1, padding=0, dilation=1):
    effective = dilation * (k - 1) + 1
    return int(np.floor((n + 2 * padding - effective) / stride)) + 1


def student_conv_transpose_output_size(n, k, stride=1, padding=0, output_padding=0, dilation=1):
    return (n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1


def student_conv_transpose2d(x, kernel, stride=1, padding=0, output_padding=0):
    # gather form: each output pixel sums the input elements whose block covers it
    x, kernel = np.asarray(x, float), np.asarray(kernel, float)
    (h, w), (kh, kw) = x.shape, kernel.shape
    out = np.zeros(((h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding))
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            for i in range(h):
                for j in range(w):
                    u, v = r - i * stride, c - j * stride
                    if 0 <= u < kh and 0 <= v < kw:
                        out[r, c] += x[i, j] * kernel[u, v]
    return out[padding:out.shape[0] - padding, padding:out.shape[1] - padding]


def student_stride2_example():
    return np.array([[1, 0, 1, 0, -2], [0, 1, 0, -1, 0], [5, 0, 5, 0, 5], [0, 2, 0, 3, 0], [6, 0, 11, 0, 3]])


def _json_objects(coco):
    return [a for a in coco.dataset["annotations"] if a["iscrowd"] == 0]


def student_class_frequency(coco):
    ids = sorted(c["id"] for c in coco.dataset["categories"])
    return np.array([sum(a["category_id"] == c for a in _json_objects(coco)) for c in ids])


def student_instances_per_image(coco):
    ids = sorted(i["id"] for i in coco.dataset["images"])
    return np.array([sum(a["image_id"] == i for a in _json_objects(coco)) for i in ids])


def student_size_class_counts(coco):
    areas = np.array([a["area"] for a in _json_objects(coco)])
    return np.histogram(areas, bins=[0, 32 ** 2, 96 ** 2, np.inf])[0]


def student_cooccurrence_matrix(coco):
    ids = sorted(c["id"] for c in coco.dataset["categories"])
    images = sorted(i["id"] for i in coco.dataset["images"])
    present = np.zeros((len(images), len(ids)), int)
    for a in _json_objects(coco):
        present[images.index(a["image_id"]), ids.index(a["category_id"])] = 1
    return present.T @ present


def student_crowd_counts(coco):
    ids = sorted(c["id"] for c in coco.dataset["categories"])
    return np.array([sum(a["iscrowd"] == 1 and a["category_id"] == c for a in coco.dataset["annotations"]) for c in ids])


def student_label_map(coco, image_id, size):
    index = {c: k + 1 for k, c in enumerate(sorted(coco.getCatIds()))}
    info = coco.imgs[image_id]
    h, w = info["height"], info["width"]
    labels = np.zeros((h, w), int)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    crowd = np.zeros((h, w), bool)
    for a in anns:
        if a["iscrowd"]:
            crowd |= coco.annToMask(a) > 0
    labels[crowd] = 255
    for a in sorted((a for a in anns if not a["iscrowd"]), key=lambda a: -a["area"]):
        labels[coco.annToMask(a) > 0] = index[a["category_id"]]
    rows = np.minimum(np.floor((np.arange(size[0]) + 0.5) * h / size[0]).astype(int), h - 1)
    cols = np.minimum(np.floor((np.arange(size[1]) + 0.5) * w / size[1]).astype(int), w - 1)
    return labels[np.ix_(rows, cols)]


def student_linear_to_conv_weight(weight, in_channels, height, width):
    import torch

    weight = torch.as_tensor(weight)
    return weight.unflatten(1, (in_channels, height, width))


def student_bilinear_kernel(in_ch, out_ch, k):
    import torch

    f = np.ceil(k / 2)
    c = f - 1 if k % 2 else f - 0.5
    tent = 1 - np.abs(np.arange(k) - c) / f
    weight = np.zeros((in_ch, out_ch, k, k), np.float32)
    for i in range(min(in_ch, out_ch)):
        weight[i, i] = np.outer(tent, tent)
    return torch.from_numpy(weight)


def student_fcn8s_fuse(score32, score16, score8, upscore2, upscore_pool4, upscore):
    return upscore(score8 + upscore_pool4(score16 + upscore2(score32)))


CORRECT = {
    ("00_tasks_and_metrics", "confusion_matrix"): student_confusion_matrix,
    ("00_tasks_and_metrics", "pixel_accuracy"): student_pixel_accuracy,
    ("00_tasks_and_metrics", "mean_accuracy"): student_mean_accuracy,
    ("00_tasks_and_metrics", "mean_iou"): student_mean_iou,
    ("00_tasks_and_metrics", "frequency_weighted_iou"): student_frequency_weighted_iou,
    ("00_tasks_and_metrics", "dice_coefficient"): student_dice_coefficient,
    ("01_thresholding", "threshold"): student_threshold,
    ("01_thresholding", "otsu_threshold"): student_otsu_threshold,
    ("01_thresholding", "adaptive_threshold"): student_adaptive_threshold,
    ("02_edges", "convolve2d"): student_convolve2d,
    ("02_edges", "sobel"): student_sobel,
    ("02_edges", "gradient_magnitude"): student_gradient_magnitude,
    ("02_edges", "non_maximum_suppression"): student_non_maximum_suppression,
    ("03_regions", "region_grow"): student_region_grow,
    ("03_regions", "kmeans_segment"): student_kmeans_segment,
    ("04_transpose_convolution", "conv_output_size"): student_conv_output_size,
    ("04_transpose_convolution", "conv_transpose_output_size"): student_conv_transpose_output_size,
    ("04_transpose_convolution", "conv_transpose2d"): student_conv_transpose2d,
    ("04_transpose_convolution", "stride2_example"): student_stride2_example,
    ("05_fcn", "linear_to_conv_weight"): student_linear_to_conv_weight,
    ("05_fcn", "bilinear_kernel"): student_bilinear_kernel,
    ("05_fcn", "fcn8s_fuse"): student_fcn8s_fuse,
    ("11_coco_eda", "class_frequency"): student_class_frequency,
    ("11_coco_eda", "instances_per_image"): student_instances_per_image,
    ("11_coco_eda", "size_class_counts"): student_size_class_counts,
    ("11_coco_eda", "cooccurrence_matrix"): student_cooccurrence_matrix,
    ("11_coco_eda", "crowd_counts"): student_crowd_counts,
    ("11_coco_eda", "label_map"): student_label_map,
}


def _random_cm(rng, k):
    cm = rng.integers(0, 40, size=(k, k))
    cm[int(rng.integers(k)), :] = 0  # a class absent from the target
    return cm


def cases(ex: Exercise, name: str):
    """(args, kwargs, case, hidden) of the visible and hidden checks of one graded function."""
    rng = ex.rng(f"test_grading {name}")
    if name == "confusion_matrix":
        target = np.array([[0, 0, 1, 1], [2, 2, 2, 1]])
        pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
        hidden_target = rng.integers(0, 4, size=(13, 9))
        hidden_target[rng.random((13, 9)) < 0.2] = 255
        hidden_pred = rng.integers(0, 4, size=(13, 9))
        return [
            ((pred, target, 3), {}, "3 classes", False),
            ((pred, np.where(target == 2, 255, target), 3), {"ignore_index": 255}, "void pixels", False),
            ((hidden_pred, hidden_target, 4), {"ignore_index": 255}, "random void", True),
            ((hidden_pred.astype(np.uint8), np.where(hidden_target == 255, 0, hidden_target).astype(np.uint8), 4),
             {}, "uint8 maps", True),
        ]
    if name == "dice_coefficient":
        return [
            ((np.array([[1, 1, 0], [0, 1, 0]], bool), np.array([[1, 0, 0], [0, 1, 1]], bool)), {}, "overlap", False),
            ((np.zeros((4, 4), bool), np.zeros((4, 4), bool)), {}, "two empty masks", False),
            ((rng.random((20, 24)) < 0.3, rng.random((20, 24)) < 0.4), {}, "random masks", True),
        ]
    if name in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"):
        demo = np.array([[6, 2, 0, 0, 1], [1, 4, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
        return [
            ((np.array([[5, 1], [2, 2]]),), {}, "2 classes", False),
            ((demo,), {}, "absent classes", False),
            ((_random_cm(rng, 6),), {}, "random 6-class matrix", True),
        ]
    if name == "threshold":
        return [
            ((np.array([[0.0, 0.25, 0.5], [0.5, 0.75, 1.0]]), 0.5), {}, "ramp with ties", False),
            ((np.round(rng.random((12, 17)) * 8) / 8, 0.375), {}, "quantised image", True),
            ((rng.random((6, 5)),), {"t": rng.random((6, 5))}, "threshold surface", True),
        ]
    if name == "otsu_threshold":
        demo_rng = np.random.default_rng(0)
        bimodal = np.where(demo_rng.random((40, 40)) < 0.3, 0.2, 0.7) + demo_rng.normal(0, 0.05, (40, 40))
        low, high = sorted(rng.uniform(0, 1, size=2))
        hidden = np.where(rng.random((48, 36)) < 0.5, low, high) + rng.normal(0, 0.05, (48, 36))
        return [
            ((bimodal,), {}, "bimodal, 256 bins", False),
            ((hidden, 32), {}, "bimodal, 32 bins", True),
            ((rng.integers(0, 256, size=(30, 30)).astype(np.uint8),), {}, "8-bit noise", True),
        ]
    if name == "adaptive_threshold":
        demo_rng = np.random.default_rng(1)
        demo = np.linspace(0, 1, 32)[None, :] + 0.3 * (demo_rng.random((24, 32)) > 0.7)
        hidden = np.linspace(0, 2, 36)[:, None] + 0.4 * (rng.random((36, 28)) > 0.6) + rng.normal(0, 0.02, (36, 28))
        return [
            ((demo, 7), {"method": "mean"}, "block 7, mean", False),
            ((demo, 9), {"method": "gaussian"}, "block 9, gaussian", False),
            ((hidden, 15), {"offset": 0.05, "method": "mean"}, "positive offset", True),
            ((hidden, 11), {"offset": -0.03, "method": "gaussian"}, "negative offset", True),
        ]
    if name == "convolve2d":
        return [
            ((rng.random((7, 9)), rng.normal(size=(3, 5))), {}, "asymmetric kernel", False),
            ((rng.random((6, 6)), np.full((5, 5), 1 / 25)), {}, "box blur", True),
        ]
    if name == "sobel":
        return [((rng.random((8, 11)),), {}, "random image", False), ((rng.random((5, 5)),), {}, "small", True)]
    if name == "gradient_magnitude":
        return [((rng.normal(size=(4, 6)), rng.normal(size=(4, 6))), {}, "random gradients", False)]
    if name == "non_maximum_suppression":
        return [
            ((rng.random((9, 12)), rng.uniform(-np.pi, np.pi, (9, 12))), {}, "all directions", False),
            ((rng.random((6, 7)), np.radians(rng.choice([45.0, 135.0], (6, 7)))), {}, "diagonals", True),
        ]
    if name == "region_grow":
        ramp = np.linspace(0, 5, 14)[None, :] + rng.normal(0, 0.1, (10, 14))
        speckle = (rng.random((12, 12)) < 0.45).astype(float)
        start = tuple(int(v) for v in np.argwhere(speckle > 0.5)[0])
        return [
            ((ramp, (3, 0), 1.2), {}, "noisy ramp", False),
            ((speckle, start, 0.5), {"connectivity": 8}, "speckle, 8-connected", True),
            ((speckle, start, 0.5), {"connectivity": 4}, "speckle, 4-connected", True),
        ]
    if name == "kmeans_segment":
        colours = np.array([[0.9, 0.2, 0.1], [0.1, 0.6, 0.2], [0.2, 0.3, 0.9]])
        image = colours[rng.integers(0, 3, (10, 12))] + rng.normal(0, 0.05, (10, 12, 3))
        grey = rng.choice([0.2, 0.5, 0.8], size=(9, 9)) + rng.normal(0, 0.05, (9, 9))
        return [
            ((image, 3), {"init": image.reshape(-1, 3)[:3]}, "colour", False),
            ((grey, 3), {"init": np.array([[0.1], [0.4], [0.9]])}, "grey", True),
        ]
    if name == "conv_output_size":
        return [((7, 3), {"stride": 2, "padding": 1}, "strided", False), ((10, 3), {"dilation": 2}, "dilated", True)]
    if name == "conv_transpose_output_size":
        return [((4, 3), {"stride": 2, "padding": 1, "output_padding": 1}, "strided", False)]
    if name == "conv_transpose2d":
        return [
            ((rng.normal(size=(3, 4)), rng.normal(size=(3, 3))), {}, "stride 1", False),
            ((rng.normal(size=(3, 3)), rng.normal(size=(4, 4))), {"stride": 2, "padding": 1, "output_padding": 1},
             "stride 2, padded", True),
        ]
    if name == "stride2_example":
        return [((), {}, "by hand", False)]
    if name in ("linear_to_conv_weight", "bilinear_kernel", "fcn8s_fuse"):
        import torch
        from torch import nn

        torch.manual_seed(0)
        if name == "linear_to_conv_weight":
            return [((torch.randn(4, 2 * 3 * 5), 2, 3, 5), {}, "non-square", False)]
        if name == "bilinear_kernel":
            return [((2, 2, 4), {}, "even k", False), ((2, 3, 7), {}, "odd k", True)]
        layers = [nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bias=False) for _ in range(2)]
        layers.append(nn.ConvTranspose2d(3, 3, 16, stride=8, padding=4, bias=False))
        scores = (torch.randn(1, 3, 2, 3), torch.randn(1, 3, 4, 6), torch.randn(1, 3, 8, 12))
        return [((*scores, *layers), {}, "3 classes", False)]
    if name in ("class_frequency", "instances_per_image", "size_class_counts", "cooccurrence_matrix",
                "crowd_counts", "label_map"):
        import tempfile
        import warnings

        from segedu.data import load_coco, write_coco_instances

        warnings.simplefilter("ignore", DeprecationWarning)  # pycocotools with numpy 2
        coco = load_coco(write_coco_instances(tempfile.mkdtemp(), n_images=6, seed=5, max_size=160))
        if name == "label_map":
            return [((coco, image_id, (40, 56)), {}, f"image {image_id}", False) for image_id in coco.getImgIds()]
        return [((coco,), {}, "synthetic COCO", False)]
    raise AssertionError(f"no test inputs for {name}")


GRADED = sorted(CORRECT)


def test_every_graded_function_has_a_correct_answer_here():
    graded = {(assignment, name) for assignment, spec in EXERCISES.items() for name in spec.functions}
    assert graded == set(CORRECT)


@pytest.mark.parametrize("assignment,name", GRADED, ids=[n for _, n in GRADED])
def test_correct_answer_passes_and_check_returns_none(assignment, name):
    ex = exercise(assignment)
    for args, kwargs, case, hidden in cases(ex, name):
        result = ex.check(name, CORRECT[assignment, name], *args, case=case, hidden=hidden, **kwargs)
        assert result is None  # a test cell must not end in a bare number


def test_integer_zero_one_masks_and_float_results_in_other_types_pass():
    ex = ex01()
    img = np.array([[0.0, 0.25, 0.5], [0.5, 0.75, 1.0]])
    ex.check("threshold", lambda img, t: (np.asarray(img) > t).astype(np.int64), img, 0.5, case="ints")
    ex.check("threshold", lambda img, t: (np.asarray(img) > t).astype(np.uint8).tolist(), img, 0.5, case="list")
    ex00().check("pixel_accuracy", lambda cm: np.float32(student_pixel_accuracy(cm)), np.array([[5, 1], [2, 2]]),
                 case="float32")


# --------------------------------------------------------------------------------------------------
# Stubs, crashes and missing returns
# --------------------------------------------------------------------------------------------------


def _first_case(assignment, name):
    args, kwargs, _, _ = cases(exercise(assignment), name)[0]
    return args, kwargs


@pytest.mark.parametrize("assignment,name", GRADED, ids=[n for _, n in GRADED])
def test_stub_fails_as_not_implemented(assignment, name):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    args, kwargs = _first_case(assignment, name)
    message = failure(exercise(assignment), name, stub, *args, **kwargs)
    assert "not implemented" in message.lower()
    assert name in message


@pytest.mark.parametrize("error", [ValueError("shapes do not match"), IndexError("index 7 is out of bounds"),
                                   ZeroDivisionError("division by zero"), TypeError("bad operand")])
def test_other_exceptions_fail_and_name_their_type(error):
    def crash(cm):
        raise error

    message = failure(ex00(), "mean_iou", crash, np.array([[3, 1], [0, 4]]), case="2 classes")
    assert type(error).__name__ in message
    assert str(error) in message
    assert "not implemented" not in message.lower()
    assert "mean_iou(" in message


@pytest.mark.parametrize("assignment,name", GRADED, ids=[n for _, n in GRADED])
def test_missing_return_is_explained(assignment, name):
    def forgot_return(*args, **kwargs):
        CORRECT[assignment, name](*args, **kwargs)  # computes the answer, then drops it

    args, kwargs = _first_case(assignment, name)
    message = failure(exercise(assignment), name, forgot_return, *args, **kwargs)
    assert "None" in message
    assert "`return`" in message


def test_a_non_function_is_refused():
    message = failure(ex00(), "pixel_accuracy", 0.875, np.array([[3, 1], [0, 4]]))
    assert "should be a function" in message
    assert "float" in message


# --------------------------------------------------------------------------------------------------
# Delegation to the reference or to the library peer, however it is reached
# --------------------------------------------------------------------------------------------------

CM = np.array([[6, 2, 0], [1, 4, 0], [0, 1, 3]])
IMG = np.random.default_rng(7).random((20, 30))


def alias_wrapped(cm):
    return alias_mean_iou(cm)


def import_in_body_metrics(cm):
    from segedu.metrics import mean_iou as m

    return m(cm)


def import_in_body_skimage(img, nbins=256):
    from skimage.filters import threshold_otsu as otsu

    return float(otsu(img, nbins=nbins))


def sklearn_inside(pred, target, num_classes, ignore_index=None):
    import sklearn.metrics as skm

    return skm.confusion_matrix(np.ravel(target), np.ravel(pred), labels=list(range(num_classes)))


def from_a_thread(cm):
    result = []
    worker = threading.Thread(target=lambda: result.append(segedu.metrics.mean_iou(cm)))
    worker.start()
    worker.join()
    return result[0]


def from_a_pool_started_inside(cm):
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(segedu.metrics.mean_iou, cm).result()


def scipy_dice(pred_mask, target_mask):
    from scipy.spatial import distance

    return 1.0 - distance.dice(np.ravel(pred_mask), np.ravel(target_mask))


def classical_inside(img, block_size, offset=0, method="mean"):
    return segedu.classical.adaptive_threshold(img, block_size, offset=offset, method=method)


PRED = np.array([[0, 1, 1, 2], [2, 0, 2, 2]])
TARGET = np.array([[0, 0, 1, 1], [2, 2, 2, 1]])

DELEGATIONS = {
    "direct reference": ("00_tasks_and_metrics", "mean_iou", segedu.metrics.mean_iou, (CM,), {},
                         "segedu.metrics.mean_iou"),
    "alias in a def": ("00_tasks_and_metrics", "mean_iou", alias_wrapped, (CM,), {}, "segedu.metrics.mean_iou"),
    "lambda": ("00_tasks_and_metrics", "pixel_accuracy", lambda cm: segedu.metrics.pixel_accuracy(cm), (CM,), {},
               "segedu.metrics.pixel_accuracy"),
    "sklearn.metrics as skm": ("00_tasks_and_metrics", "confusion_matrix", sklearn_inside, (PRED, TARGET, 3), {},
                               "sklearn.metrics"),
    "import in the body (segedu)": ("00_tasks_and_metrics", "mean_iou", import_in_body_metrics, (CM,), {},
                                    "segedu.metrics.mean_iou"),
    "import in the body (skimage)": ("01_thresholding", "otsu_threshold", import_in_body_skimage, (IMG,), {},
                                     "threshold_otsu"),
    "functools.partial": ("01_thresholding", "otsu_threshold", functools.partial(threshold_otsu, nbins=256),
                          (IMG,), {}, "threshold_otsu"),
    "thread started inside": ("00_tasks_and_metrics", "mean_iou", from_a_thread, (CM,), {},
                              "segedu.metrics.mean_iou"),
    "thread pool started inside": ("00_tasks_and_metrics", "mean_iou", from_a_pool_started_inside, (CM,), {},
                                   "segedu.metrics.mean_iou"),
    "scipy.spatial.distance": ("00_tasks_and_metrics", "dice_coefficient", scipy_dice,
                               (np.array([[1, 1, 0], [0, 1, 0]], bool), np.array([[1, 0, 0], [0, 1, 1]], bool)), {},
                               "scipy.spatial.distance"),
    "segedu.classical": ("01_thresholding", "adaptive_threshold", classical_inside, (IMG, 7), {"method": "mean"},
                         "segedu.classical"),
}


@pytest.mark.parametrize("how", list(DELEGATIONS))
def test_delegation_is_caught(how):
    assignment, name, function, args, kwargs, forbidden_name = DELEGATIONS[how]
    ex = exercise(assignment)
    # The delegating answer is numerically right, so only the tripwire can fail it.
    expected = ex.reference(name)(*args, **kwargs)
    got = function(*args, **kwargs)
    assert np.allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float))

    message = failure(ex, name, function, *args, **kwargs)
    assert forbidden_name in message
    assert "earn no points" in message
    assert ex.spec.allowed in message


def test_delegation_is_caught_in_hidden_cases_too():
    message = failure(ex00(), "mean_iou", alias_wrapped, CM, case="secret", hidden=True)
    assert "segedu.metrics.mean_iou" in message and "earn no points" in message


@pytest.mark.xfail(strict=True, reason="threads that already run before check() starts are not profiled: "
                                      "threading.setprofile only reaches threads started afterwards. "
                                      "This is the student's side only: in a grading run the reference "
                                      "cannot be imported at all (test_grading_attacks.py)")
def test_delegation_through_a_thread_started_before_check():
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(int).result()  # the worker thread now exists, without the tripwire's hook
        message = failure(ex00(), "mean_iou", lambda cm: pool.submit(segedu.metrics.mean_iou, cm).result(), CM)
    assert "earn no points" in message


def test_allowed_libraries_are_not_flagged():
    # scipy.ndimage is allowed in 01, numpy everywhere; the grader's own calls into segedu.classical
    # (the reference, the tie mask) happen outside the student's call and must not count against it.
    ex01().check("adaptive_threshold", student_adaptive_threshold, IMG, 5, method="gaussian", case="allowed")


# --------------------------------------------------------------------------------------------------
# The profiler
# --------------------------------------------------------------------------------------------------


def switches_profiler_off(cm):
    sys.setprofile(None)
    return student_pixel_accuracy(cm)


def replaces_profiler(cm):
    sys.setprofile(lambda frame, event, arg: None)
    return student_pixel_accuracy(cm)


@pytest.mark.parametrize("function", [switches_profiler_off, replaces_profiler])
def test_switching_the_profiler_off_fails(function):
    message = failure(ex00(), "pixel_accuracy", function, CM)
    assert "profiler" in message
    assert "setprofile" in message


def test_profile_hooks_are_restored_after_every_check():
    def outer(frame, event, arg):
        pass

    def thread_outer(frame, event, arg):
        pass

    def crash(cm):
        raise RuntimeError("boom")

    answers = [student_mean_iou, alias_wrapped, crash, switches_profiler_off, lambda cm: None, lambda cm: 0.1]
    saved, saved_threading = sys.getprofile(), threading.getprofile()
    try:
        for before, before_threading in [(saved, saved_threading), (outer, thread_outer)]:
            sys.setprofile(before)
            threading.setprofile(before_threading)
            for answer in answers:
                try:
                    ex00().check("mean_iou", answer, CM, case="restore")
                except AssertionError:
                    pass
                now, now_threading = sys.getprofile(), threading.getprofile()
                sys.setprofile(saved)  # assert outside the hook
                assert now is before
                assert now_threading is before_threading
                sys.setprofile(before)
    finally:
        sys.setprofile(saved)
        threading.setprofile(saved_threading)


def test_a_failed_check_does_not_spoil_the_next_one():
    ex = ex00()
    for bad in (alias_wrapped, switches_profiler_off, lambda cm: None):
        with pytest.raises(AssertionError):
            ex.check("mean_iou", bad, CM, case="bad")
        ex.check("mean_iou", student_mean_iou, CM, case="good")


def test_first_import_inside_the_answer_does_not_crash_the_hook():
    # Some C extensions (psutil, imported by sklearn) set a builtin's __module__ to the module object;
    # the hook must not raise on it. Run the hook over such a call directly.
    from segedu.grading._tripwire import Tripwire

    class FakeBuiltin:
        __name__ = "getpagesize"
        __module__ = sys.modules["os"]  # a module object, not a string

    with Tripwire(("os",)) as wire:
        wire._hook(sys._getframe(), "c_call", FakeBuiltin())
    assert str(wire.hit) == "os.getpagesize"


# --------------------------------------------------------------------------------------------------
# Lookalikes
# --------------------------------------------------------------------------------------------------


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__


@pytest.mark.parametrize("assignment,name", [("00_tasks_and_metrics", "mean_iou"),
                                             ("00_tasks_and_metrics", "confusion_matrix"),
                                             ("01_thresholding", "threshold")])
@pytest.mark.parametrize("lookalike,words", [
    (lambda: AlwaysEqual(), ("AlwaysEqual", "expected a number")),
    (lambda: [AlwaysEqual(), AlwaysEqual()], ("dtype object", "expected numbers")),
    (lambda: [[AlwaysEqual()] * 3] * 2, ("dtype object", "expected numbers")),
    (lambda: np.array([AlwaysEqual()] * 4, dtype=object), ("dtype object", "expected numbers")),
    (lambda: "0.5", ("str", "expected a number")),
], ids=["object", "list", "nested list", "object array", "string"])
def test_lookalikes_are_not_numbers(assignment, name, lookalike, words):
    args, kwargs = _first_case(assignment, name)
    message = failure(exercise(assignment), name, lambda *a, **k: lookalike(), *args, **kwargs)
    for word in words:
        assert word in message


# --------------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------------


def transposed_confusion_matrix(pred, target, num_classes, ignore_index=None):
    return student_confusion_matrix(pred, target, num_classes, ignore_index).T


def test_visible_failure_shows_call_expected_got_and_first_difference():
    ex = ex00()
    pred, target = np.array([[0, 1, 1], [2, 0, 2]]), np.array([[0, 0, 1], [2, 2, 1]])
    message = failure(ex, "confusion_matrix", transposed_confusion_matrix, pred, target, 3, case="3 classes")
    assert "confusion_matrix([[0, 1, 1], [2, 0, 2]], [[0, 0, 1], [2, 2, 1]], 3) [3 classes]" in message
    assert "wrong answer" in message
    expected = segedu.metrics.confusion_matrix(pred, target, 3)
    bad = np.argwhere(expected.T != expected)[0]
    i, j = (int(v) for v in bad)
    assert f"first is at index ({i}, {j}): expected {expected[i, j]}, got {expected[j, i]}." in message
    assert f"{int((expected.T != expected).sum())} of 9 entries differ" in message
    assert "expected:\n" in message and "got:\n" in message
    assert str(expected) in message and str(expected.T) in message


def test_visible_failure_shows_shapes_of_large_inputs_and_scalar_values():
    big = np.arange(49).reshape(7, 7) + 1
    message = failure(ex00(), "pixel_accuracy", lambda cm: 0.5, big, case="7 classes")
    assert f"pixel_accuracy(<{big.dtype} array of shape (7, 7)>) [7 classes]" in message
    assert f"expected {segedu.metrics.pixel_accuracy(big):.6g}, got 0.5." in message


def test_keyword_arguments_appear_in_the_call():
    message = failure(ex01(), "adaptive_threshold", lambda img, b, **k: np.zeros(np.shape(img), bool),
                      IMG, 7, offset=0.05, method="mean", case="offset")
    assert "adaptive_threshold(<float64 array of shape (20, 30)>, 7, offset=0.05, method='mean') [offset]" in message
    assert "should be foreground but are not" in message


def test_transposed_shape_gets_the_transpose_hint():
    img = np.array([[0.0, 0.25, 0.5], [0.5, 0.75, 1.0]])
    message = failure(ex01(), "threshold", lambda img, t: student_threshold(img, t).T, img, 0.5)
    assert "expected (2, 3), got (3, 2)" in message
    assert "transpose" in message
    lines = _compare.exact(np.zeros((3, 2), int), np.zeros((2, 3), int), what="f", reveal=True)
    assert any("transpose" in line for line in lines)
    # a merely wrong shape gets no such hint
    lines = _compare.exact(np.zeros((3, 3), int), np.zeros((2, 3), int), what="f", reveal=True)
    assert not any("transpose" in line for line in lines)


def test_transposed_square_confusion_matrix_gets_the_transpose_hint():
    message = failure(ex00(), "confusion_matrix", transposed_confusion_matrix, PRED, TARGET, 3)
    assert "transpose" in message.lower()


DISTINCTIVE = 987654


def test_hidden_failures_name_the_case_but_not_the_inputs():
    ex = ex00()
    cm = np.array([[DISTINCTIVE, 1], [2, 3]])
    visible = failure(ex, "pixel_accuracy", lambda cm: 0.5, cm, case="huge class")
    assert str(DISTINCTIVE) in visible  # so the hidden check below proves something

    hidden = failure(ex, "pixel_accuracy", lambda cm: 0.5, cm, case="huge class", hidden=True)
    assert "hidden case 'huge class'" in hidden
    assert str(DISTINCTIVE) not in hidden
    assert f"expected {segedu.metrics.pixel_accuracy(cm):.6g}, got 0.5" in hidden


def test_hidden_failures_of_arrays_do_not_print_inputs_or_whole_arrays():
    ex = ex00()
    pred = np.array([[0, 1, 1], [1, 1, 1]])
    target = np.array([[0, DISTINCTIVE, 1], [1, 1, 0]])  # a confusion matrix that is not symmetric
    kwargs = {"ignore_index": DISTINCTIVE}
    visible = failure(ex, "confusion_matrix", transposed_confusion_matrix, pred, target, 2, case="void", **kwargs)
    assert str(DISTINCTIVE) in visible

    hidden = failure(ex, "confusion_matrix", transposed_confusion_matrix, pred, target, 2, case="void",
                     hidden=True, **kwargs)
    assert "hidden case 'void'" in hidden
    assert str(DISTINCTIVE) not in hidden
    assert "[[" not in hidden and "expected:\n" not in hidden
    assert "first is at index" in hidden  # still says where

    wrong_shape = failure(ex, "confusion_matrix", lambda *a, **k: np.zeros((3, 3), int), pred, target, 2,
                          case="void", hidden=True, **kwargs)
    assert "expected (2, 2), got (3, 3)" in wrong_shape
    assert str(DISTINCTIVE) not in wrong_shape and "expected:\n" not in wrong_shape


@pytest.mark.parametrize("student", [
    lambda cm: (_ for _ in ()).throw(ValueError("boom")),
    lambda cm: None,
    lambda cm: AlwaysEqual(),
    alias_wrapped,
    switches_profiler_off,
], ids=["crash", "none", "lookalike", "delegation", "profiler"])
def test_no_hidden_message_prints_the_input(student):
    cm = np.array([[DISTINCTIVE, 1], [2, 3]])
    message = failure(ex00(), "mean_iou", student, cm, case="secret", hidden=True)
    assert str(DISTINCTIVE) not in message


# --------------------------------------------------------------------------------------------------
# The inputs of the reference cannot be corrupted by the answer
# --------------------------------------------------------------------------------------------------


def test_answer_that_mutates_its_input_is_graded_on_the_original():
    cm = np.array([[5, 1], [2, 2]])
    original = cm.copy()

    def honest_but_destructive(cm):
        result = student_pixel_accuracy(cm)
        cm[:] = 0
        return result

    def cheat(cm):
        cm[:] = 0
        cm[0, 0] = 1  # the reference would now say 1.0 too
        return 1.0

    ex00().check("pixel_accuracy", honest_but_destructive, cm, case="mutates")
    message = failure(ex00(), "pixel_accuracy", cheat, cm, case="mutates")
    assert "expected 0.7, got 1" in message
    np.testing.assert_array_equal(cm, original)  # the caller's array is untouched


def test_mutated_images_and_keyword_arrays_do_not_reach_the_reference_or_tie_mask():
    img = IMG.copy()
    surface = np.full_like(img, 0.5)

    def adaptive_then_wipe(img, block_size, offset=0, method="mean"):
        result = student_adaptive_threshold(img, block_size, offset, method)
        img[:] = 0.0  # an all-zero image would be all background and all ties
        return result

    def threshold_then_wipe(img, t):
        result = student_threshold(img, t)
        img[:] = 1.0
        t[:] = 2.0
        return result

    ex01().check("adaptive_threshold", adaptive_then_wipe, img, 7, method="mean", case="wipes")
    ex01().check("threshold", threshold_then_wipe, img, t=surface, case="wipes")
    np.testing.assert_array_equal(img, IMG)
    assert np.all(surface == 0.5)

    def all_foreground_after_wipe(img, block_size, offset=0, method="mean"):
        img[:] = 0.0
        return np.ones(np.shape(img), bool)

    message = failure(ex01(), "adaptive_threshold", all_foreground_after_wipe, img, 7, method="mean")
    assert "should not be" in message


# --------------------------------------------------------------------------------------------------
# The comparators
# --------------------------------------------------------------------------------------------------


def test_binary_mask_accepts_zero_one_integers_and_booleans():
    expected = np.array([[False, True], [True, False]])
    for got in (expected, expected.astype(np.int64), expected.astype(np.uint8), expected.astype(int).tolist()):
        assert _compare.binary_mask(got, expected, what="f", reveal=True) is None


@pytest.mark.parametrize("values", [[0, 2], [0, 255], [-1, 1], [0.0, 0.5]])
def test_binary_mask_rejects_other_values_clearly(values):
    got = np.array([[values[0], values[1]], [values[1], values[0]]])
    lines = _compare.binary_mask(got, np.array([[False, True], [True, False]]), what="threshold", reveal=True)
    assert lines is not None and len(lines) == 1
    assert "True/False (or 0/1)" in lines[0]
    assert "threshold returned values such as" in lines[0]


def test_binary_mask_ignores_differences_inside_the_tie_mask():
    expected = np.array([[False, True, False], [True, False, True]])
    got = ~expected
    tie = np.array([[True, True, True], [True, True, False]])
    lines = _compare.binary_mask(got, expected, what="f", reveal=True, tie_mask=tie)
    assert lines is not None
    assert "1 of 6 entries differ; the first is at index (1, 2): expected True, got False." in lines[0]
    assert "0 pixel(s) are foreground but should not be; 1 should be foreground but are not." in lines[1]
    assert _compare.binary_mask(got, expected, what="f", reveal=True, tie_mask=np.ones((2, 3), bool)) is None
    assert _compare.binary_mask(got, expected, what="f", reveal=True) is not None


def test_adaptive_ties_may_go_either_way_through_check():
    flat = np.full((9, 11), 0.3)  # every pixel equals its local mean, up to rounding
    for answer in (lambda img, b, **k: np.ones(np.shape(img), bool), lambda img, b, **k: np.zeros(np.shape(img), int)):
        ex01().check("adaptive_threshold", answer, flat, 5, method="mean", case="flat")
    # away from the ties, a wrong pixel still counts
    step = np.zeros((9, 11))
    step[:, 6:] = 1.0
    message = failure(ex01(), "adaptive_threshold", lambda img, b, **k: np.ones(np.shape(img), bool), step, 5,
                      method="mean")
    assert "should not be" in message


def test_to_numpy_refuses_lookalikes_and_none():
    with pytest.raises(_compare.NotNumeric, match="`return`"):
        _compare.to_numpy(None, "f")
    with pytest.raises(_compare.NotNumeric, match="dtype object"):
        _compare.to_numpy([AlwaysEqual()], "f")
    with pytest.raises(_compare.NotNumeric, match="expected a number"):
        _compare.to_numpy({"a": 1}, "f")
    np.testing.assert_array_equal(_compare.to_numpy([[1, 2]], "f"), [[1, 2]])
    assert _compare.to_numpy(True, "f").dtype == bool


def test_close_is_float32_safe_but_not_loose():
    assert _compare.close(np.float32(0.1), 0.1, what="f", reveal=True) is None
    assert _compare.close(0.1001, 0.1, what="f", reveal=True) is not None
    lines = _compare.close(np.array([0.775]), 0.775, what="f", reveal=True)
    assert lines is not None and "single number" in lines[0]
    lines = _compare.close(float("nan"), 0.5, what="f", reveal=True)
    assert any("NaN" in line for line in lines)


def test_otsu_tolerance_is_a_fraction_of_a_bin():
    ex = ex01()
    img = IMG
    right = segedu.classical.otsu_threshold(img, 64)
    bin_width = (img.max() - img.min()) / 64
    ex.check("otsu_threshold", lambda img, nbins=256: right + 0.001 * bin_width, img, 64, case="rounding")
    message = failure(ex, "otsu_threshold", lambda img, nbins=256: right + 0.5 * bin_width, img, 64, case="half bin")
    assert "expected" in message and "got" in message


# --------------------------------------------------------------------------------------------------
# The grading seed and the hidden inputs
# --------------------------------------------------------------------------------------------------


def test_grading_seed_defaults_to_the_public_seed(monkeypatch):
    assert grading_seed() == DEFAULT_GRADING_SEED
    monkeypatch.setenv(SEED_VARIABLE, "   ")
    assert grading_seed() == DEFAULT_GRADING_SEED


def test_grading_seed_follows_the_environment(monkeypatch):
    monkeypatch.setenv(SEED_VARIABLE, "123456")
    assert grading_seed() == 123456
    monkeypatch.setenv(SEED_VARIABLE, " 42 ")
    assert grading_seed() == 42


@pytest.mark.parametrize("raw", ["spring-term", "1.5", "0x10", "-7"])
def test_bad_grading_seed_is_a_clear_error(monkeypatch, raw):
    monkeypatch.setenv(SEED_VARIABLE, raw)
    with pytest.raises(ValueError, match=SEED_VARIABLE) as caught:
        grading_seed()
    assert "integer" in str(caught.value) and repr(raw) in str(caught.value)
    with pytest.raises(ValueError, match=SEED_VARIABLE):  # not numpy's own message
        ex00().rng("case")


def test_rng_is_deterministic_per_seed_assignment_and_case(monkeypatch):
    def draw(assignment, case):
        return exercise(assignment).rng(case).integers(0, 2**62, size=4)

    first = draw("00_tasks_and_metrics", "mean iou 0")
    np.testing.assert_array_equal(first, draw("00_tasks_and_metrics", "mean iou 0"))
    assert not np.array_equal(first, draw("00_tasks_and_metrics", "mean iou 1"))
    assert not np.array_equal(first, draw("01_thresholding", "mean iou 0"))

    monkeypatch.setenv(SEED_VARIABLE, str(DEFAULT_GRADING_SEED))
    np.testing.assert_array_equal(first, draw("00_tasks_and_metrics", "mean iou 0"))
    monkeypatch.setenv(SEED_VARIABLE, "31337")
    new_term = draw("00_tasks_and_metrics", "mean iou 0")
    assert not np.array_equal(first, new_term)
    np.testing.assert_array_equal(new_term, draw("00_tasks_and_metrics", "mean iou 0"))
    monkeypatch.delenv(SEED_VARIABLE)
    np.testing.assert_array_equal(first, draw("00_tasks_and_metrics", "mean iou 0"))


# --------------------------------------------------------------------------------------------------
# Lookup errors and the registry
# --------------------------------------------------------------------------------------------------


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError) as caught:
        exercise("nope")
    message = str(caught.value)
    assert "'nope'" in message
    for known in EXERCISES:
        assert known in message


def test_ungraded_function_is_a_key_error():
    with pytest.raises(KeyError, match="no function called 'accuracy'"):
        ex00().check("accuracy", student_pixel_accuracy, CM, case="x")
    with pytest.raises(KeyError, match="threshold_local"):
        ex01().reference("threshold_local")
    with pytest.raises(KeyError):  # graded in 01, not in 00
        ex00().check("threshold", student_threshold, IMG, 0.5, case="x")


MODULE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@pytest.mark.parametrize("assignment", sorted(EXERCISES))
def test_registry_entries_are_well_formed(assignment):
    spec = EXERCISES[assignment]
    assert isinstance(spec, ExerciseSpec) and spec.assignment == assignment
    assert exercise(assignment).assignment == assignment
    assert isinstance(spec.forbidden, tuple) and spec.forbidden
    for prefix in spec.forbidden:
        assert isinstance(prefix, str) and MODULE_PATTERN.match(prefix), prefix
    assert isinstance(spec.allowed, str) and spec.allowed.strip()
    assert spec.functions
    for name, graded in spec.functions.items():
        assert isinstance(graded, GradedFunction)
        reference = exercise(assignment).reference(name)
        assert callable(reference)
        # an adapter (e.g. k-means from given centres) names the reference it calls in __wrapped__
        wrapped = getattr(reference, "__wrapped__", None)
        if wrapped is not None:
            assert _matches(wrapped.partition(":")[0], spec.forbidden), (name, wrapped)
            reference = exercise(assignment).reference(name).__wrapped__
            module_name, _, attribute = reference.partition(":")
            reference = getattr(__import__(module_name, fromlist=[attribute]), attribute)
        else:
            assert reference.__name__ == name
        # calling the reference directly must trip the wire, so its module must be forbidden
        assert _matches(reference.__module__, spec.forbidden), (name, reference.__module__)
        comparators = graded.compare if isinstance(graded.compare, tuple) else (graded.compare,)
        if graded.outputs is not None and isinstance(graded.compare, tuple):
            assert len(comparators) == len(graded.outputs)
        for comparator_name in comparators:
            comparator = getattr(_compare, comparator_name, None)
            assert callable(comparator) and comparator_name in ("exact", "close", "binary_mask"), comparator_name
        assert isinstance(graded.options, dict)
        if graded.extra is not None:
            module_name, _, attribute = graded.extra.partition(":")
            extra = getattr(__import__(module_name, fromlist=[attribute]), attribute)
            assert callable(extra)
