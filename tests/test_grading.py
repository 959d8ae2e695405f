"""Behaviour of ``segedu.grading``: what a test cell's ``ex.check`` accepts, rejects and says.

The right answers are the solution notebooks' code (:func:`correct`); the cheats below are the ways
an answer can hand the work to the reference or to the library the exercise re-implements.
Everything per graded function (inputs, answers, known mistakes) is looked up by
``(assignment, function)``, as the registry is.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

# Imported up front, so that the delegation tests see *calls* into these modules, not first imports.
import sklearn.metrics  # noqa: F401
import segedu.classical
import segedu.metrics
from segedu.metrics import mean_iou as alias_mean_iou
from skimage.filters import threshold_otsu

from segedu.grading import DEFAULT_GRADING_SEED, EXERCISES, Exercise, _compare, exercise, grading_seed
from segedu.grading._tripwire import _matches
from segedu.grading.exercises import ExerciseSpec, GradedFunction, graded_function, registry

from wrong_answers import KNOWN_MISTAKES, WRONG_ANSWERS, KnownMistakes, Submission

SEED_VARIABLE = "SEGEDU_GRADING_SEED"
SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


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
# Correct answers: the solution notebooks' own code
# --------------------------------------------------------------------------------------------------
#
# The tests take their correct answers from solutions/<id>/<id>.ipynb, the code the round trip
# proves with nbgrader, rather than from a copy here that could drift from it. Small variants that
# test one behaviour (a float32 result, a transposed matrix) stay below, next to their tests.

A00, A01 = "00_tasks_and_metrics", "01_thresholding"


def _setup_imports(notebook) -> str:
    """The import statements of the notebook's setup cells: what its solution cells rely on.

    Only imports: the rest of a setup cell (a dataset written to a temporary folder, prints) is for
    the student and would only slow the tests down.
    """
    lines = []
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("solution") or meta.get("grade"):
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                lines.append(ast.unparse(node))
    return "\n".join(lines)


@functools.lru_cache(maxsize=None)
def solution_namespace(assignment: str) -> dict:
    """The names an assignment's solution cells define, run in a fresh namespace (once per assignment)."""
    import nbformat

    from segedu.instructor.notebooks import solution_answers

    path = SOLUTIONS / assignment / f"{assignment}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    namespace = {"__name__": f"solution_{assignment}"}
    exec(compile(_setup_imports(notebook), f"<{path.name}: imports>", "exec"), namespace)
    for grade_id, code in solution_answers(notebook).items():
        exec(compile(code, f"<{path.name}: {grade_id}>", "exec"), namespace)
    return namespace


def correct(assignment: str, name: str):
    """The solution's function ``name`` of ``assignment``: a right answer, as a student would write it."""
    function = solution_namespace(assignment).get(name)
    assert callable(function), f"solutions/{assignment} defines no function {name}"
    return function


# --------------------------------------------------------------------------------------------------
# Inputs of each graded function, by (assignment, function)
# --------------------------------------------------------------------------------------------------

CASE_BUILDERS: dict[tuple[str, str], object] = {}


def cases_for(assignment: str, *names: str):
    """File a builder of test inputs under ``(assignment, name)`` for each name.

    Keyed by the pair, as the registry is: a later unit may grade a function of the same name with
    other arguments. Filing a pair twice is an error instead of silently replacing the builder.
    The builder gets the generator of ``exercise(assignment).rng(f"test_grading {name}")`` and
    returns ``(args, kwargs, case, hidden)`` tuples.
    """
    def file(builder):
        for name in names:
            if (assignment, name) in CASE_BUILDERS:
                raise ValueError(f"test inputs for {(assignment, name)} are filed twice")
        for name in names:
            CASE_BUILDERS[assignment, name] = builder
        return builder
    return file


def cases(assignment: str, name: str) -> list:
    """(args, kwargs, case, hidden) of the visible and hidden checks of one graded function."""
    builder = CASE_BUILDERS.get((assignment, name))
    assert builder is not None, f"no test inputs for {(assignment, name)}"
    return builder(exercise(assignment).rng(f"test_grading {name}"))


def _random_cm(rng, k):
    cm = rng.integers(0, 40, size=(k, k))
    cm[int(rng.integers(k)), :] = 0  # a class absent from the target
    return cm


@cases_for(A00, "confusion_matrix")
def _confusion_matrix_cases(rng):
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


@cases_for(A00, "dice_coefficient")
def _dice_cases(rng):
    return [
        ((np.array([[1, 1, 0], [0, 1, 0]], bool), np.array([[1, 0, 0], [0, 1, 1]], bool)), {}, "overlap", False),
        ((np.zeros((4, 4), bool), np.zeros((4, 4), bool)), {}, "two empty masks", False),
        ((rng.random((20, 24)) < 0.3, rng.random((20, 24)) < 0.4), {}, "random masks", True),
    ]


@cases_for(A00, "pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")
def _confusion_matrix_score_cases(rng):
    demo = np.array([[6, 2, 0, 0, 1], [1, 4, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    return [
        ((np.array([[5, 1], [2, 2]]),), {}, "2 classes", False),
        ((demo,), {}, "absent classes", False),
        ((_random_cm(rng, 6),), {}, "random 6-class matrix", True),
    ]


@cases_for(A01, "threshold")
def _threshold_cases(rng):
    return [
        ((np.array([[0.0, 0.25, 0.5], [0.5, 0.75, 1.0]]), 0.5), {}, "ramp with ties", False),
        ((np.round(rng.random((12, 17)) * 8) / 8, 0.375), {}, "quantised image", True),
        ((rng.random((6, 5)),), {"t": rng.random((6, 5))}, "threshold surface", True),
    ]


@cases_for(A01, "otsu_threshold")
def _otsu_cases(rng):
    demo_rng = np.random.default_rng(0)
    bimodal = np.where(demo_rng.random((40, 40)) < 0.3, 0.2, 0.7) + demo_rng.normal(0, 0.05, (40, 40))
    low, high = sorted(rng.uniform(0, 1, size=2))
    hidden = np.where(rng.random((48, 36)) < 0.5, low, high) + rng.normal(0, 0.05, (48, 36))
    return [
        ((bimodal,), {}, "bimodal, 256 bins", False),
        ((hidden, 32), {}, "bimodal, 32 bins", True),
        ((rng.integers(0, 256, size=(30, 30)).astype(np.uint8),), {}, "8-bit noise", True),
    ]


@cases_for(A01, "adaptive_threshold")
def _adaptive_cases(rng):
    demo_rng = np.random.default_rng(1)
    demo = np.linspace(0, 1, 32)[None, :] + 0.3 * (demo_rng.random((24, 32)) > 0.7)
    hidden = np.linspace(0, 2, 36)[:, None] + 0.4 * (rng.random((36, 28)) > 0.6) + rng.normal(0, 0.02, (36, 28))
    return [
        ((demo, 7), {"method": "mean"}, "block 7, mean", False),
        ((demo, 9), {"method": "gaussian"}, "block 9, gaussian", False),
        ((hidden, 15), {"offset": 0.05, "method": "mean"}, "positive offset", True),
        ((hidden, 11), {"offset": -0.03, "method": "gaussian"}, "negative offset", True),
    ]


@cases_for("02_edges", "convolve2d")
def _convolve_cases(rng):
    return [
        ((rng.random((7, 9)), rng.normal(size=(3, 5))), {}, "asymmetric kernel", False),
        ((rng.random((6, 6)), np.full((5, 5), 1 / 25)), {}, "box blur", True),
    ]


@cases_for("02_edges", "sobel")
def _sobel_cases(rng):
    return [((rng.random((8, 11)),), {}, "random image", False), ((rng.random((5, 5)),), {}, "small", True)]


@cases_for("02_edges", "gradient_magnitude")
def _magnitude_cases(rng):
    return [((rng.normal(size=(4, 6)), rng.normal(size=(4, 6))), {}, "random gradients", False)]


@cases_for("02_edges", "non_maximum_suppression")
def _nms_cases(rng):
    return [
        ((rng.random((9, 12)), rng.uniform(-np.pi, np.pi, (9, 12))), {}, "all directions", False),
        ((rng.random((6, 7)), np.radians(rng.choice([45.0, 135.0], (6, 7)))), {}, "diagonals", True),
    ]


@cases_for("03_regions", "region_grow")
def _region_grow_cases(rng):
    ramp = np.linspace(0, 5, 14)[None, :] + rng.normal(0, 0.1, (10, 14))
    speckle = (rng.random((12, 12)) < 0.45).astype(float)
    start = tuple(int(v) for v in np.argwhere(speckle > 0.5)[0])
    return [
        ((ramp, (3, 0), 1.2), {}, "noisy ramp", False),
        ((speckle, start, 0.5), {"connectivity": 8}, "speckle, 8-connected", True),
        ((speckle, start, 0.5), {"connectivity": 4}, "speckle, 4-connected", True),
    ]


@cases_for("03_regions", "kmeans_segment")
def _kmeans_cases(rng):
    colours = np.array([[0.9, 0.2, 0.1], [0.1, 0.6, 0.2], [0.2, 0.3, 0.9]])
    image = colours[rng.integers(0, 3, (10, 12))] + rng.normal(0, 0.05, (10, 12, 3))
    grey = rng.choice([0.2, 0.5, 0.8], size=(9, 9)) + rng.normal(0, 0.05, (9, 9))
    return [
        ((image, 3), {"init": image.reshape(-1, 3)[:3]}, "colour", False),
        ((grey, 3), {"init": np.array([[0.1], [0.4], [0.9]])}, "grey", True),
    ]


@cases_for("04_transpose_convolution", "conv_output_size")
def _conv_size_cases(rng):
    return [((7, 3), {"stride": 2, "padding": 1}, "strided", False), ((10, 3), {"dilation": 2}, "dilated", True)]


@cases_for("04_transpose_convolution", "conv_transpose_output_size")
def _transpose_size_cases(rng):
    return [((4, 3), {"stride": 2, "padding": 1, "output_padding": 1}, "strided", False)]


@cases_for("04_transpose_convolution", "conv_transpose2d")
def _conv_transpose_cases(rng):
    return [
        ((rng.normal(size=(3, 4)), rng.normal(size=(3, 3))), {}, "stride 1", False),
        ((rng.normal(size=(3, 3)), rng.normal(size=(4, 4))), {"stride": 2, "padding": 1, "output_padding": 1},
         "stride 2, padded", True),
    ]


@cases_for("04_transpose_convolution", "stride2_example")
def _stride2_cases(rng):
    return [((), {}, "by hand", False)]


@cases_for("05_fcn", "linear_to_conv_weight")
def _linear_to_conv_cases(rng):
    import torch

    torch.manual_seed(0)
    return [((torch.randn(4, 2 * 3 * 5), 2, 3, 5), {}, "non-square", False)]


@cases_for("05_fcn", "bilinear_kernel")
def _bilinear_cases(rng):
    return [((2, 2, 4), {}, "even k", False), ((2, 3, 7), {}, "odd k", True)]


@cases_for("05_fcn", "fcn8s_fuse")
def _fuse_cases(rng):
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers = [nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bias=False) for _ in range(2)]
    layers.append(nn.ConvTranspose2d(3, 3, 16, stride=8, padding=4, bias=False))
    scores = (torch.randn(1, 3, 2, 3), torch.randn(1, 3, 4, 6), torch.randn(1, 3, 8, 12))
    return [((*scores, *layers), {}, "3 classes", False)]


def _discs(shape, centres, radius):
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, dtype=np.int32)
    for k, (r, c) in enumerate(centres, start=1):
        labels[(rows - r) ** 2 + (cols - c) ** 2 <= radius ** 2] = k
    return labels


@cases_for("06_unet", "center_crop")
def _center_crop_cases(rng):
    import torch

    torch.manual_seed(int(rng.integers(1000)))
    return [((torch.randn(2, 3, 12, 10), (6, 4)), {}, "even margins", False),
            ((torch.randn(1, 9, 11), 4), {}, "odd margins, an int size", True)]


@cases_for("06_unet", "unet_weight_map")
def _weight_map_cases(rng):
    return [((_discs((20, 22), [(6, 6), (6, 16), (15, 11)], 4),), {}, "three discs", False),
            ((_discs((12, 12), [(5, 5)], 3),), {"w0": 4.0, "sigma": 2.5}, "one disc", True)]


@cases_for("06_unet", "dice_loss", "focal_loss")
def _loss_cases(rng):
    import torch

    torch.manual_seed(int(rng.integers(1000)))
    target = (torch.rand(3, 1, 7, 9) < 0.3).float()
    target[0] = 0.0   # an empty sample
    return [((2 * torch.randn(3, 1, 7, 9), target), {}, "three samples", False)]


@cases_for("07_segnet", "max_unpool2d")
def _unpool_cases(rng):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(int(rng.integers(1000)))
    values, indices = F.max_pool2d(torch.randn(2, 3, 7, 10), 2, return_indices=True)
    overlapping, where = F.max_pool2d(torch.randn(1, 2, 9, 7), 3, stride=2, return_indices=True)
    return [((values, indices, 2), {"output_size": (7, 10)}, "odd height", False),
            ((overlapping, where, 3), {"stride": 2}, "overlapping windows", True)]


@cases_for("07_segnet", "segnet_decoder_stage")
def _decoder_stage_cases(rng):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(int(rng.integers(1000)))
    _, indices = F.max_pool2d(torch.randn(2, 4, 6, 9), 2, return_indices=True)
    convs = [torch.nn.Conv2d(4, 4, 3, padding=1, bias=False), torch.nn.Conv2d(4, 2, 3, padding=1, bias=False)]
    norms = [{"weight": torch.rand(c) + 0.5, "bias": torch.randn(c), "running_mean": torch.randn(c),
              "running_var": torch.rand(c) + 0.5} for c in (4, 2)]
    return [((torch.randn(indices.shape), indices, (6, 9), convs, norms), {}, "two convolutions", False)]


def _aspp_layers(rng, in_channels, out_channels, n_rates, dtype):
    """ASPP's layers as exercise 08 passes them: conv weights and inference-mode batch norms."""
    import torch

    def layer(channels, k):
        return {"weight": torch.as_tensor(rng.normal(size=(out_channels, channels, k, k)) / k, dtype=dtype),
                "bn": {"weight": torch.as_tensor(rng.uniform(0.5, 1.5, out_channels), dtype=dtype),
                       "bias": torch.as_tensor(rng.normal(size=out_channels), dtype=dtype),
                       "running_mean": torch.as_tensor(rng.normal(size=out_channels), dtype=dtype),
                       "running_var": torch.as_tensor(rng.uniform(0.5, 1.5, out_channels), dtype=dtype)}}

    return {"conv1x1": layer(in_channels, 1), "atrous": [layer(in_channels, 3) for _ in range(n_rates)],
            "pooling": layer(in_channels, 1), "project": layer((n_rates + 2) * out_channels, 1)}


@cases_for("08_deeplab", "dilated_conv2d")
def _dilated_conv_cases(rng):
    import torch

    torch.manual_seed(int(rng.integers(1000)))
    return [((torch.randn(2, 3, 9, 10), torch.randn(4, 3, 3, 3)), {"dilation": 2}, "rate 2", False),
            ((torch.randn(1, 2, 11, 9, dtype=torch.float64), torch.randn(3, 2, 3, 2, dtype=torch.float64)),
             {"bias": torch.randn(3, dtype=torch.float64), "stride": 2, "padding": 3, "dilation": 3},
             "everything at once, float64", True)]


@cases_for("08_deeplab", "receptive_field")
def _receptive_field_cases(rng):
    return [(([(3, 1, 1), (3, 1, 1), (2, 2, 1)] * 2,), {}, "two VGG stages", False),
            (([(7, 2, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4)],), {}, "a stem, then rates 2 and 4", True)]


@cases_for("08_deeplab", "aspp")
def _aspp_cases(rng):
    import torch

    return [((torch.as_tensor(rng.normal(size=(2, 5, 9, 8))), _aspp_layers(rng, 5, 3, 3, torch.float64), (1, 2, 3)),
             {}, "rates 1, 2, 3", False),
            ((torch.as_tensor(rng.normal(size=(1, 4, 5, 6))), _aspp_layers(rng, 4, 2, 2, torch.float64), (2, 9)),
             {}, "two rates, one past the map", True)]


@cases_for("09_mask_rcnn", "bilinear_interpolate")
def _bilinear_cases(rng):
    import torch

    feature = torch.as_tensor(rng.normal(size=(5, 7)))
    return [((feature, 1.3, 4.6), {}, "inside a 5x7 map", False),
            ((feature, 4.0 + float(rng.uniform(0.1, 1.0)), -float(rng.uniform(0.1, 1.0))), {}, "on the border band",
             True)]


@cases_for("09_mask_rcnn", "roi_align")
def _roi_align_cases(rng):
    import torch

    features = torch.as_tensor(rng.normal(size=(2, 2, 10, 12)), dtype=torch.float32)
    boxes = torch.tensor([[0, 1.3, 2.2, 9.6, 7.9], [1, 4.5, 0.4, 6.8, 9.7], [1, 8.25, 6.6, 11.9, 11.8]])
    corners = np.sort(rng.uniform(0, 20, size=(3, 2, 2)), axis=1)   # (x1, x2) and (y1, y2), image coordinates
    hidden = torch.tensor([[k % 2, c[0, 0], c[0, 1], c[1, 0], c[1, 1]] for k, c in enumerate(corners)],
                          dtype=torch.float64)
    return [((features, boxes, (2, 3)), {"sampling_ratio": 2}, "3 boxes, 2x2 samples per bin", False),
            ((features.double(), hidden, (3, 2)), {"spatial_scale": 0.5, "aligned": True}, "adaptive, aligned, stride 2",
             True)]


@cases_for("09_mask_rcnn", "mask_iou")
def _mask_iou_cases(rng):
    import torch

    a = torch.as_tensor(rng.random((3, 6, 8)) < 0.4)
    b = torch.as_tensor(rng.random((2, 6, 8)) < 0.5)
    b[1] = False   # an empty mask
    return [((a, b), {}, "3 masks against 2", False),
            ((torch.as_tensor(rng.random((4, 9, 7)) < 0.3), torch.as_tensor(rng.random((5, 9, 7)) < 0.3)), {},
             "random masks", True)]


@cases_for("10_sam", "fourier_encoding")
def _fourier_cases(rng):
    import torch

    coords = torch.as_tensor(rng.random((5, 2)))
    grid = torch.as_tensor(rng.random((3, 4, 2)), dtype=torch.float32)
    return [((coords, torch.as_tensor(rng.normal(size=(2, 4)))), {}, "5 points, F = 4", False),
            ((grid, torch.as_tensor(rng.normal(size=(2, 6)), dtype=torch.float32)), {}, "a grid, float32", True)]


@cases_for("10_sam", "attention")
def _attention_cases(rng):
    import torch

    q, k, v = (torch.as_tensor(rng.normal(size=shape)) for shape in ((3, 4), (5, 4), (5, 2)))
    heads = [torch.as_tensor(rng.normal(size=(2, 3, n, 8)), dtype=torch.float32) for n in (4, 6, 6)]
    return [((q, k, v), {}, "3 queries, 5 keys", False), (tuple(heads), {}, "(2, 3) heads, float32", True),
            ((40 * q, 40 * k, v), {}, "large scores", True)]


def _binary_masks(rng, shape, share=0.4):
    import torch

    return torch.as_tensor(rng.random(shape) < share, dtype=torch.float32)


@cases_for("10_sam", "focal_loss")
def _sam_focal_cases(rng):
    import torch

    logits = torch.as_tensor(3 * rng.normal(size=(2, 8, 8)), dtype=torch.float32)
    return [((logits, _binary_masks(rng, (2, 8, 8))), {}, "2 masks", False),
            ((logits, _binary_masks(rng, (2, 8, 8))), {"alpha": 0.7, "gamma": 1.5}, "alpha and gamma", True)]


@cases_for("10_sam", "dice_loss")
def _sam_dice_cases(rng):
    import torch

    logits = torch.as_tensor(2 * rng.normal(size=(3, 7, 9)), dtype=torch.float32)
    return [((logits, _binary_masks(rng, (3, 7, 9))), {}, "3 masks", False),
            ((torch.full((2, 5, 5), -200.0), torch.zeros(2, 5, 5)), {}, "empty masks", True)]


@cases_for("10_sam", "sam_loss")
def _sam_loss_cases(rng):
    import torch

    logits = torch.as_tensor(3 * rng.normal(size=(2, 3, 12, 12)), dtype=torch.float32)
    iou_pred = torch.as_tensor(rng.random((2, 3)), dtype=torch.float32)
    target = _binary_masks(rng, (2, 12, 12), 0.3)
    empty_logits = -1 - torch.as_tensor(rng.random((2, 3, 8, 8)), dtype=torch.float32)
    empty_logits[0, 1, 2:4, 2:5] = 2.0
    empty_target = torch.zeros(2, 8, 8)
    empty_target[1, 3, 3] = 1.0
    return [((logits, iou_pred, target), {}, "random masks", False),
            ((logits, iou_pred, target), {"focal_weight": 5.0, "dice_weight": 2.0}, "other weights", True),
            ((empty_logits, iou_pred, empty_target), {}, "empty and one-pixel targets", True)]


@cases_for("10_sam", "stability_score")
def _stability_cases(rng):
    import torch

    logits = torch.as_tensor(3 * rng.normal(size=(2, 3, 9, 9)), dtype=torch.float32)
    logits[0, 1] = -5.0   # empty
    stepped = torch.round(torch.as_tensor(4 * rng.normal(size=(4, 10, 10)))) / 2
    return [((logits, 0.0, 1.0), {}, "masks with an empty one", False),
            ((stepped, 0.5, 1.5), {}, "logits on the thresholds, float64", True)]


def _synthetic_coco():
    import tempfile

    from segedu.data import load_coco, write_coco_instances

    with tempfile.TemporaryDirectory() as folder:   # the annotations are read into memory
        return load_coco(write_coco_instances(folder, n_images=6, seed=5, max_size=160))


@cases_for("11_coco_eda", "class_frequency", "instances_per_image", "size_class_counts", "cooccurrence_matrix",
           "crowd_counts")
def _coco_statistics_cases(rng):
    return [((_synthetic_coco(),), {}, "synthetic COCO", False)]


@cases_for("11_coco_eda", "label_map")
def _label_map_cases(rng):
    coco = _synthetic_coco()
    return [((coco, image_id, (40, 56)), {}, f"image {image_id}", False) for image_id in coco.getImgIds()]


GRADED = sorted((assignment, name) for assignment, spec in EXERCISES.items() for name in spec.functions)
IDS = [f"{assignment}:{name}" for assignment, name in GRADED]


def test_every_graded_function_has_inputs_and_a_solution_here():
    assert set(CASE_BUILDERS) == set(GRADED)


def test_every_graded_function_has_a_known_mistake():
    """The grading contract: each graded function has at least one known mistake, filed by its pair."""
    assert set(KNOWN_MISTAKES) == set(GRADED)
    for (assignment, name), fixtures in KNOWN_MISTAKES.items():
        assert fixtures and all(f.function == name for f in fixtures), (assignment, name)
        assert all(f in WRONG_ANSWERS[assignment] for f in fixtures)


def test_every_graded_function_has_two_correct_answers_written_differently():
    """tests/correct_answers.py: two independent correct answers per graded function, none a copy of the solution."""
    from correct_answers import CORRECT_ANSWERS, alternatives

    from segedu.instructor.notebooks import solution_answers

    found = alternatives()
    assert set(found) == set(GRADED)
    for (assignment, name), answers in found.items():
        assert len(answers) >= 2, (assignment, name)
    for assignment, submissions in CORRECT_ANSWERS.items():
        import nbformat

        solution = solution_answers(nbformat.read(SOLUTIONS / assignment / f"{assignment}.ipynb", as_version=4))
        codes = [s.replace for s in submissions]
        for name in solution:
            texts = [solution[name]] + [code[name] for code in codes]
            assert len(set(texts)) == len(texts), f"{assignment}:{name}: a correct answer repeats another"


@pytest.mark.parametrize("assignment,name", GRADED, ids=IDS)
def test_correct_answer_passes_and_check_returns_none(assignment, name):
    ex = exercise(assignment)
    for args, kwargs, case, hidden in cases(assignment, name):
        result = ex.check(name, correct(assignment, name), *args, case=case, hidden=hidden, **kwargs)
        assert result is None  # a test cell must not end in a bare number


def test_integer_zero_one_masks_and_float_results_in_other_types_pass():
    ex = ex01()
    img = np.array([[0.0, 0.25, 0.5], [0.5, 0.75, 1.0]])
    ex.check("threshold", lambda img, t: (np.asarray(img) > t).astype(np.int64), img, 0.5, case="ints")
    ex.check("threshold", lambda img, t: (np.asarray(img) > t).astype(np.uint8).tolist(), img, 0.5, case="list")
    ex00().check("pixel_accuracy", lambda cm: np.float32(correct(A00, "pixel_accuracy")(cm)), np.array([[5, 1], [2, 2]]),
                 case="float32")


# --------------------------------------------------------------------------------------------------
# Stubs, crashes and missing returns
# --------------------------------------------------------------------------------------------------


def _first_case(assignment, name):
    args, kwargs, _, _ = cases(assignment, name)[0]
    return args, kwargs


@pytest.mark.parametrize("assignment,name", GRADED, ids=IDS)
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


@pytest.mark.parametrize("assignment,name", GRADED, ids=IDS)
def test_missing_return_is_explained(assignment, name):
    # loaded before the check: loading the solution's namespace inside it calls segedu, which the tripwire flags
    answer = correct(assignment, name)

    def forgot_return(*args, **kwargs):
        answer(*args, **kwargs)  # computes the answer, then drops it

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


def _pooled(kernel, stride=None):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    return F.max_pool2d(torch.randn(2, 3, 7, 9), kernel, stride=stride, return_indices=True)


def _losses_inputs():
    import torch

    torch.manual_seed(0)
    return 2 * torch.randn(2, 1, 5, 6), (torch.rand(2, 1, 5, 6) < 0.4).float()


def _crop_by_torchvision(x, size):
    from torchvision.transforms.functional import center_crop as crop

    return crop(x, list(size))


def _crop_by_transforms_v2(x, size):
    from torchvision.transforms import v2

    return v2.CenterCrop(list(size))(x)


def _focal_by_torchvision(logits, target, alpha=0.25, gamma=2.0):
    from torchvision.ops import sigmoid_focal_loss as focal

    return focal(logits, target, alpha, gamma, reduction="mean")


def _unpool_by_functional(x, indices, kernel_size, stride=None, output_size=None):
    from torch.nn.functional import max_unpool2d as unpool

    return unpool(x, indices, kernel_size, stride, output_size=output_size)


def _unpool_by_module(x, indices, kernel_size, stride=None, output_size=None):
    from torch import nn

    return nn.MaxUnpool2d(kernel_size, stride)(x, indices, output_size=output_size)


def _unpool_by_aten(x, indices, kernel_size, stride=None, output_size=None):
    import torch

    return torch.ops.aten.max_unpool2d(x, indices, list(output_size))


def _unpool_by_segedu(x, indices, kernel_size, stride=None, output_size=None):
    from segedu.conv import max_unpool2d as unpool

    return unpool(x, indices, kernel_size, stride, output_size=output_size)


TORCH_DELEGATIONS = {   # units 06 and 07: the library peers are torch functions, reached every way we know
    "torchvision center_crop": ("06_unet", "center_crop", _crop_by_torchvision,
                                lambda: ((_pooled(1)[0], (4, 6)), {}), "torchvision.transforms"),
    "transforms v2 CenterCrop": ("06_unet", "center_crop", _crop_by_transforms_v2,
                                 lambda: ((_pooled(1)[0], (4, 6)), {}), "torchvision.transforms"),
    "torchvision.ops focal loss": ("06_unet", "focal_loss", _focal_by_torchvision,
                                   lambda: (_losses_inputs(), {}), "torchvision.ops"),
    "F.max_unpool2d": ("07_segnet", "max_unpool2d", _unpool_by_functional,
                       lambda: ((*_pooled(2), 2), {"output_size": (7, 9)}), "torch._C._nn.max_unpool2d"),
    "nn.MaxUnpool2d": ("07_segnet", "max_unpool2d", _unpool_by_module,
                       lambda: ((*_pooled(3, 2), 3), {"stride": 2}), "torch._C._nn.max_unpool2d"),
    "torch.ops.aten": ("07_segnet", "max_unpool2d", _unpool_by_aten,
                       lambda: ((*_pooled(2), 2), {"output_size": (7, 9)}), "torch._ops"),
    "segedu.conv": ("07_segnet", "max_unpool2d", _unpool_by_segedu,
                    lambda: ((*_pooled(2), 2), {"output_size": (7, 9)}), "segedu.conv"),
}


@pytest.mark.parametrize("how", list(TORCH_DELEGATIONS))
def test_delegation_to_a_torch_peer_is_caught(how):
    """Exercises 06 and 07 forbid torch functions, not whole modules: every route to them trips the wire."""
    assignment, name, function, inputs, forbidden_name = TORCH_DELEGATIONS[how]
    args, kwargs = inputs()
    ex = exercise(assignment)
    got = function(*args, **kwargs)
    expected = ex.reference(name)(*args, **kwargs)
    assert np.allclose(_compare.plain(got), _compare.plain(expected), atol=1e-6)
    message = failure(ex, name, function, *args, **kwargs)
    assert forbidden_name in message and "earn no points" in message and ex.spec.allowed in message


def test_a_decoder_stage_of_torch_layers_is_not_flagged():
    """07 forbids torch's C++ unpooling kernels, yet conv modules, F.conv2d, F.batch_norm and F.relu stay allowed."""
    import torch
    import torch.nn.functional as F

    def unpool(x, indices, output_size):
        n, c, h, w = x.shape
        out = torch.zeros(n, c, output_size[0] * output_size[1], dtype=x.dtype)
        return out.scatter_(2, indices.flatten(2), x.flatten(2)).reshape(n, c, *output_size)

    def stage(x, indices, output_size, convs, norms):
        y = unpool(x, indices, output_size)
        for conv, norm in zip(convs, norms):
            y = F.relu(F.batch_norm(conv(y), norm["running_mean"], norm["running_var"], norm["weight"],
                                    norm["bias"], training=False))
        return y

    args, kwargs, case, _ = cases("07_segnet", "segnet_decoder_stage")[0]
    exercise("07_segnet").check("segnet_decoder_stage", stage, *args, case=case, **kwargs)


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
    ex01().check("adaptive_threshold", correct(A01, "adaptive_threshold"), IMG, 5, method="gaussian", case="allowed")


# ----------------------------------------------------------------------------- 08: every route to a convolution

def _deeplab_inputs():
    import torch

    torch.manual_seed(0)
    return (torch.randn(2, 3, 9, 10), torch.randn(4, 3, 3, 3)), {"padding": 1, "dilation": 2}


def _conv_by_functional(x, weight, bias=None, stride=1, padding=0, dilation=1):
    from torch.nn.functional import conv2d as convolve

    return convolve(x, weight, bias, stride, padding, dilation)


def _conv_by_module(x, weight, bias=None, stride=1, padding=0, dilation=1):
    import torch

    layer = torch.nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), stride, padding, dilation,
                            bias=False)
    layer.weight.data = weight
    with torch.no_grad():
        return layer(x)


def _conv_by_convolution(x, weight, bias=None, stride=1, padding=0, dilation=1):
    import torch

    return torch.convolution(x, weight, bias, [stride] * 2, [padding] * 2, [dilation] * 2, False, [0, 0], 1)


def _conv_by_transpose(x, weight, bias=None, stride=1, padding=0, dilation=1):
    import torch
    import torch.nn.functional as F

    # at stride 1, a transpose convolution with the flipped, swapped kernel is a convolution
    flipped = torch.flip(weight, dims=(2, 3)).transpose(0, 1)
    return F.conv_transpose2d(x, flipped, bias, padding=dilation * (weight.shape[-1] - 1) - padding, dilation=dilation)


def _conv_by_unfold(x, weight, bias=None, stride=1, padding=0, dilation=1):
    from torch import nn

    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    columns = nn.Unfold((kh, kw), dilation=dilation, padding=padding, stride=stride)(x)
    size = ((h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1, (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1)
    return (weight.reshape(o, -1) @ columns).reshape(n, o, *size)


def _conv_by_aten(x, weight, bias=None, stride=1, padding=0, dilation=1):
    import torch

    return torch.ops.aten.convolution(x, weight, bias, [stride] * 2, [padding] * 2, [dilation] * 2, False, [0, 0], 1)


def _conv_by_script_inside(x, weight, bias=None, stride=1, padding=0, dilation=1):
    import torch

    unit = torch.jit.CompilationUnit(
        "def convolve(x, w, padding: int, dilation: int):\n"
        "    return torch.conv2d(x, w, None, [1, 1], [padding, padding], [dilation, dilation])\n")
    return unit.convolve(x, weight, padding, dilation)


def _conv_by_scipy(x, weight, bias=None, stride=1, padding=0, dilation=1):
    import numpy as np
    import torch
    from scipy import signal

    spread = np.zeros(weight.shape[:2] + tuple(dilation * (k - 1) + 1 for k in weight.shape[2:]))
    spread[:, :, ::dilation, ::dilation] = weight.numpy()
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = [[sum(signal.correlate2d(xp[n, c], spread[o, c], mode="valid") for c in range(x.shape[1]))
            for o in range(weight.shape[0])] for n in range(x.shape[0])]
    return torch.as_tensor(np.array(out), dtype=x.dtype)


def _conv_by_segedu(x, weight, bias=None, stride=1, padding=0, dilation=1):
    from segedu.conv import conv2d as convolve

    return convolve(x, weight, bias, stride, padding, dilation)


DEEPLAB_DELEGATIONS = {
    "F.conv2d under an alias": (_conv_by_functional, "torch.conv2d"),
    "nn.Conv2d": (_conv_by_module, "torch.conv2d"),
    "torch.convolution": (_conv_by_convolution, "torch.convolution"),
    "F.conv_transpose2d": (_conv_by_transpose, "torch.conv_transpose2d"),
    "nn.Unfold (im2col)": (_conv_by_unfold, "torch.nn.functional.unfold"),
    "torch.ops.aten.convolution": (_conv_by_aten, "torch._ops"),
    "torch.jit.script inside": (_conv_by_script_inside, "torch.jit"),
    "scipy.signal": (_conv_by_scipy, "scipy.signal"),
    "segedu.conv": (_conv_by_segedu, "segedu.conv"),
}


@pytest.mark.parametrize("how", list(DEEPLAB_DELEGATIONS))
def test_08_every_route_to_a_convolution_is_caught(how):
    """Exercise 08 forbids convolution in torch, not torch: each route is numerically right and trips the wire."""
    function, forbidden_name = DEEPLAB_DELEGATIONS[how]
    args, kwargs = _deeplab_inputs()
    ex = exercise("08_deeplab")
    assert np.allclose(_compare.plain(function(*args, **kwargs)), _compare.plain(ex.reference("dilated_conv2d")(
        *args, **kwargs)), atol=1e-4)
    message = failure(ex, "dilated_conv2d", function, *args, **kwargs)
    assert forbidden_name in message and "earn no points" in message and ex.spec.allowed in message


def test_08_an_aspp_from_segedu_is_caught():
    from segedu.models import ASPP

    def aspp_by_segedu(x, params, rates):
        return ASPP(x.shape[1], params["conv1x1"]["weight"].shape[0], rates).double().eval()(x)

    args, kwargs, case, _ = cases("08_deeplab", "aspp")[0]
    message = failure(exercise("08_deeplab"), "aspp", aspp_by_segedu, *args, case=case, **kwargs)
    assert "segedu.models" in message and "earn no points" in message


def test_08_the_tools_of_a_tap_loop_are_allowed():
    """Slicing, F.pad, einsum, tensordot, matmul, F.batch_norm, F.relu, F.interpolate, adaptive pooling and cat:
    an ASPP built from them (and a tap loop) is not flagged, in both dtypes."""
    import torch
    import torch.nn.functional as F

    def conv(x, weight, bias=None, stride=1, padding=0, dilation=1):
        kh, kw = weight.shape[2:]
        xp = F.pad(x, (padding,) * 4)
        rows = (xp.shape[2] - dilation * (kh - 1) - 1) // stride + 1
        cols = (xp.shape[3] - dilation * (kw - 1) - 1) // stride + 1
        out = 0
        for u in range(kh):
            for v in range(kw):
                seen = xp[:, :, u * dilation::stride, v * dilation::stride][:, :, :rows, :cols]
                part = torch.tensordot(seen, weight[:, :, u, v], dims=([1], [1])) if v % 2 else \
                    (seen.permute(0, 2, 3, 1) @ weight[:, :, u, v].T)
                out = out + part.permute(0, 3, 1, 2)
        return out if bias is None else out + bias[:, None, None]

    def aspp(x, params, rates):
        def layer(inputs, p, rate):
            bn = p["bn"]
            y = conv(inputs, p["weight"], padding=rate * (p["weight"].shape[-1] // 2), dilation=rate)
            return F.relu(F.batch_norm(y, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"]))

        pooled = layer(F.adaptive_avg_pool2d(x, 1), params["pooling"], 1)
        branches = [layer(x, params["conv1x1"], 1)] + [layer(x, p, r) for r, p in zip(rates, params["atrous"])]
        branches.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        return layer(torch.cat(branches, dim=1), params["project"], 1)

    ex = exercise("08_deeplab")
    for args, kwargs, case, hidden in cases("08_deeplab", "dilated_conv2d"):
        ex.check("dilated_conv2d", conv, *args, case=case, hidden=hidden, **kwargs)
    for args, kwargs, case, hidden in cases("08_deeplab", "aspp"):
        ex.check("aspp", aspp, *args, case=case, hidden=hidden, **kwargs)


def test_08_the_aspp_reference_is_torchvisions_aspp():
    """The adapter loads the exercise's layers into segedu's ASPP; torchvision's, given the same layers, agrees."""
    import torch
    from torchvision.models.segmentation.deeplabv3 import ASPP as TorchvisionASPP

    from segedu.grading.exercises import aspp_block

    for args, _, case, _ in cases("08_deeplab", "aspp"):
        x, params, rates = args
        peer = TorchvisionASPP(x.shape[1], list(rates), params["conv1x1"]["weight"].shape[0]).double().eval()
        layers = [params["conv1x1"], *params["atrous"], params["pooling"]]
        for branch, layer in zip(peer.convs, layers):
            conv = next(m for m in branch if isinstance(m, torch.nn.Conv2d))
            norm = next(m for m in branch if isinstance(m, torch.nn.BatchNorm2d))
            conv.weight.data = layer["weight"]
            for name, value in layer["bn"].items():
                getattr(norm, name).data = value
        peer.project[0].weight.data = params["project"]["weight"]
        for name, value in params["project"]["bn"].items():
            getattr(peer.project[1], name).data = value
        with torch.no_grad():
            expected = peer(x)
        np.testing.assert_allclose(aspp_block(x, params, rates).numpy(), expected.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=case)


def test_08_a_float32_answer_to_float64_inputs_is_wrong_and_says_why():
    import torch

    args, kwargs, case, _ = cases("08_deeplab", "dilated_conv2d")[1]
    right = exercise("08_deeplab").reference("dilated_conv2d")(*args, **kwargs)
    message = failure(exercise("08_deeplab"), "dilated_conv2d", lambda *a, **k: right.to(torch.float32), *args,
                      case=case, **kwargs)
    assert "expected float64, got float32" in message and "dtype=x.dtype" in message


# ----------------------------------------------------------------------------- 09: every route to a sampler

def _point_as_grid(feature, y, x):
    """The point (y, x) of an (H, W) map as grid_sample's normalised (x, y) with align_corners=True, clamped."""
    import torch

    height, width = feature.shape[-2:]
    return torch.tensor([[[[2 * min(max(x, 0.0), width - 1) / (width - 1) - 1,
                            2 * min(max(y, 0.0), height - 1) / (height - 1) - 1]]]], dtype=feature.dtype)


def _bilinear_by_grid_sample(feature, y, x):
    from torch.nn.functional import grid_sample as sample

    return sample(feature[None, None], _point_as_grid(feature, y, x), mode="bilinear", align_corners=True)[0, 0, 0, 0]


def _bilinear_by_aten(feature, y, x):
    import torch

    return torch.ops.aten.grid_sampler_2d(feature[None, None], _point_as_grid(feature, y, x), 0, 1, True)[0, 0, 0, 0]


def _bilinear_by_script(feature, y, x):
    import torch

    unit = torch.jit.CompilationUnit("def sample(f, g):\n    return torch.grid_sampler(f, g, 0, 1, True)\n")
    return unit.sample(feature[None, None], _point_as_grid(feature, y, x))[0, 0, 0, 0]


def _bilinear_by_segedu(feature, y, x):
    from segedu.instance import bilinear_interpolate as sample

    return sample(feature, y, x)


def _roi_align_by_torchvision(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    from torchvision.ops import roi_align as align

    return align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned)


def _roi_align_by_module(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    from torchvision.ops import RoIAlign

    return RoIAlign(output_size, spatial_scale, sampling_ratio, aligned)(features, boxes)


def _roi_align_by_torch_ops(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    import torch
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)

    return torch.ops.torchvision.roi_align(features, boxes, spatial_scale, *output_size, sampling_ratio, aligned)


def _mask_iou_by_pycocotools(a, b):
    from pycocotools import mask as coco_mask

    def rle(masks):
        return coco_mask.encode(np.asfortranarray(masks.numpy().transpose(1, 2, 0).astype(np.uint8)))

    return coco_mask.iou(rle(a), rle(b), [0] * len(b))


MASK_RCNN_DELEGATIONS = {
    "F.grid_sample under an alias": ("bilinear_interpolate", _bilinear_by_grid_sample, "torch.nn.functional.grid_sample"),
    "torch.ops.aten.grid_sampler_2d": ("bilinear_interpolate", _bilinear_by_aten, "torch._ops"),
    "TorchScript's grid_sampler": ("bilinear_interpolate", _bilinear_by_script, "torch.jit"),
    "segedu.instance": ("bilinear_interpolate", _bilinear_by_segedu, "segedu.instance"),
    "torchvision.ops.roi_align": ("roi_align", _roi_align_by_torchvision, "torchvision.ops"),
    "torchvision.ops.RoIAlign": ("roi_align", _roi_align_by_module, "torchvision.ops"),
    "torch.ops.torchvision.roi_align": ("roi_align", _roi_align_by_torch_ops, "torch._ops"),
    "pycocotools.mask.iou": ("mask_iou", _mask_iou_by_pycocotools, "pycocotools"),
}


@pytest.mark.parametrize("how", list(MASK_RCNN_DELEGATIONS))
def test_09_every_route_to_a_sampler_or_a_peer_is_caught(how):
    """Exercise 09 forbids torchvision, pycocotools and torch's samplers, not torch: each route is numerically
    right (float32-safe) and trips the wire, with the exercise's rule in the message."""
    name, function, forbidden_name = MASK_RCNN_DELEGATIONS[how]
    ex = exercise("09_mask_rcnn")
    for args, kwargs, case, hidden in cases("09_mask_rcnn", name)[:1]:
        assert np.allclose(np.asarray(_compare.plain(function(*args, **kwargs)), dtype=float),
                           np.asarray(_compare.plain(ex.reference(name)(*args, **kwargs)), dtype=float), atol=1e-5)
        message = failure(ex, name, function, *args, case=case, **kwargs)
        assert forbidden_name in message and "earn no points" in message and ex.spec.allowed in message


def test_09_the_tools_of_a_sample_loop_are_allowed():
    """Indexing, math.floor and ceil, zeros, stack, einsum, matmul and where: the correct answers of
    tests/correct_answers.py trip nothing, for every case of every function."""
    from correct_answers import ANSWERS

    ex = exercise("09_mask_rcnn")
    for code in ANSWERS["09_mask_rcnn"]:
        namespace = {"math": __import__("math"), "torch": __import__("torch")}
        for source in code.values():
            exec(compile(source, "<correct answer>", "exec"), namespace)
        for name in ex.spec.functions:
            for args, kwargs, case, hidden in cases("09_mask_rcnn", name):
                ex.check(name, namespace[name], *args, case=case, hidden=hidden, **kwargs)


def _attention_by_sdpa(q, k, v):
    from torch.nn.functional import scaled_dot_product_attention as fused

    return fused(q, k, v)


def _attention_by_aten(q, k, v):
    import torch

    return torch.ops.aten.scaled_dot_product_attention(q, k, v)


def _attention_by_math_kernel(q, k, v):
    import torch

    return torch._scaled_dot_product_attention_math(q, k, v)[0]


def _identity_multi_head_attention(dim, dtype, heads=1, **options):
    """nn.MultiheadAttention whose projections are the identity: plain attention in each head."""
    import torch

    layer = torch.nn.MultiheadAttention(dim, heads, dtype=dtype, **options)
    with torch.no_grad():
        layer.in_proj_weight.copy_(torch.eye(dim, dtype=dtype).repeat(3, 1))
        layer.out_proj.weight.copy_(torch.eye(dim, dtype=dtype))
        layer.in_proj_bias.zero_()
        layer.out_proj.bias.zero_()
    return layer


def _attention_by_multi_head(q, k, v):
    return _identity_multi_head_attention(q.shape[-1], q.dtype)(q, k, v)[0]


def _attention_by_fast_path(q, k, v):
    """The inference fast path (eval, no grad, batch_first, self-attention, an even number of heads):
    torch._native_multi_head_attention. Two heads on [q, q] each compute attention(q, q, q)."""
    import torch

    d = q.shape[-1]
    layer = _identity_multi_head_attention(2 * d, q.dtype, heads=2, batch_first=True).eval()
    x = torch.cat([q, q], dim=-1)[None]   # the fast path needs query, key and value to be one tensor
    with torch.no_grad():
        return layer(x, x, x, need_weights=False)[0][0, :, :d]


def _attention_by_segment_anything(q, k, v):
    import torch
    from segment_anything.modeling.transformer import Attention

    layer = Attention(q.shape[-1], 1).to(q.dtype)
    with torch.no_grad():
        for linear in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj):
            linear.weight.copy_(torch.eye(q.shape[-1], dtype=q.dtype))
            linear.bias.zero_()
        return layer(q[None], k[None], v[None])[0]


def _fourier_by_segment_anything(coords, gaussian_matrix):
    from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom

    encoder = PositionEmbeddingRandom(gaussian_matrix.shape[1])
    encoder.positional_encoding_gaussian_matrix = gaussian_matrix
    return encoder._pe_encoding(coords)


def _focal_by_torchvision(logits, target, alpha=0.25, gamma=2.0):
    from torchvision.ops import sigmoid_focal_loss

    return sigmoid_focal_loss(logits, target, alpha, gamma, reduction="mean")


def _sam_loss_by_segedu(mask_logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    from segedu.losses import sam_loss as reference

    return reference(mask_logits, iou_pred, target, focal_weight, dice_weight)


def _stability_by_segment_anything(mask_logits, mask_threshold, threshold_offset):
    from segment_anything.utils.amg import calculate_stability_score

    return calculate_stability_score(mask_logits, mask_threshold, threshold_offset)


def _self_attention_case(rng):
    import torch

    x = torch.as_tensor(rng.normal(size=(5, 4)))
    return (x, x, x), {}, "self-attention, d = 4", False


def _square_attention_case(rng):
    import torch

    q, k, v = (torch.as_tensor(rng.normal(size=shape)) for shape in ((3, 4), (5, 4), (5, 4)))
    return (q, k, v), {}, "d_v = d", False


def _nonempty_masks_case(rng):
    """Masks that all have pixels above t - offset: segment-anything's score is defined (no 0/0) there."""
    import torch

    return (torch.as_tensor(3 * rng.normal(size=(2, 3, 9, 9)) + 4), 0.0, 1.0), {}, "non-empty masks", False


#: route -> (graded function, the route, what the wire names, the inputs (None: the function's first case))
SAM_DELEGATIONS = {
    "F.scaled_dot_product_attention under an alias": ("attention", _attention_by_sdpa,
                                                      "torch._C._nn.scaled_dot_product_attention", None),
    "torch.ops.aten.scaled_dot_product_attention": ("attention", _attention_by_aten, "torch._ops", None),
    "torch._scaled_dot_product_attention_math": ("attention", _attention_by_math_kernel,
                                                 "torch._scaled_dot_product_attention_math", None),
    "nn.MultiheadAttention": ("attention", _attention_by_multi_head, "torch.nn.functional.multi_head_attention_forward",
                              _square_attention_case),
    "nn.MultiheadAttention's fast path": ("attention", _attention_by_fast_path, "torch._native_multi_head_attention",
                                          _self_attention_case),
    "segment_anything's Attention": ("attention", _attention_by_segment_anything, "segment_anything",
                                     _square_attention_case),
    "segment_anything's PositionEmbeddingRandom": ("fourier_encoding", _fourier_by_segment_anything,
                                                   "segment_anything", None),
    "torchvision.ops.sigmoid_focal_loss": ("focal_loss", _focal_by_torchvision, "torchvision", None),
    "segedu.losses.sam_loss": ("sam_loss", _sam_loss_by_segedu, "segedu.losses", None),
    "segment_anything's calculate_stability_score": ("stability_score", _stability_by_segment_anything,
                                                     "segment_anything", _nonempty_masks_case),
}


@pytest.mark.parametrize("how", list(SAM_DELEGATIONS))
def test_10_every_route_to_attention_or_a_peer_is_caught(how):
    """Exercise 10 forbids segment_anything, torchvision, segedu and torch's attention, not torch: each route is
    numerically right and trips the wire, with the exercise's rule in the message. (In a grading kernel the guard
    also switches the attention operators and F.multi_head_attention_forward off.)"""
    name, function, forbidden_name, make_case = SAM_DELEGATIONS[how]
    ex = exercise("10_sam")
    rng = ex.rng(f"test_grading route {how}")
    args, kwargs, case, _ = make_case(rng) if make_case else cases("10_sam", name)[0]
    got = np.asarray(_compare.plain(function(*args, **kwargs)), dtype=float)
    assert np.allclose(got, np.asarray(_compare.plain(ex.reference(name)(*args, **kwargs)), dtype=float), atol=1e-5)
    message = failure(ex, name, function, *args, case=case, **kwargs)
    assert forbidden_name in message and "earn no points" in message and ex.spec.allowed in message


def test_10_the_tools_of_the_answers_are_allowed():
    """matmul, einsum, softmax, logsigmoid, sigmoid, binary_cross_entropy_with_logits, where and the answers' own
    losses: the correct answers of tests/correct_answers.py trip nothing, for every case of every function."""
    from correct_answers import ANSWERS

    ex = exercise("10_sam")
    for code in ANSWERS["10_sam"]:
        namespace = {"math": __import__("math"), "torch": __import__("torch"), "F": __import__("torch").nn.functional}
        for source in code.values():
            exec(compile(source, "<correct answer>", "exec"), namespace)
        for name in ex.spec.functions:
            for args, kwargs, case, hidden in cases("10_sam", name):
                ex.check(name, namespace[name], *args, case=case, hidden=hidden, **kwargs)


# --------------------------------------------------------------------------------------------------
# The profiler
# --------------------------------------------------------------------------------------------------


def switches_profiler_off(cm):
    sys.setprofile(None)
    return correct(A00, "pixel_accuracy")(cm)


def replaces_profiler(cm):
    sys.setprofile(lambda frame, event, arg: None)
    return correct(A00, "pixel_accuracy")(cm)


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

    answers = [correct(A00, "mean_iou"), alias_wrapped, crash, switches_profiler_off, lambda cm: None, lambda cm: 0.1]
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
        ex.check("mean_iou", correct(A00, "mean_iou"), CM, case="good")


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
    return correct(A00, "confusion_matrix")(pred, target, num_classes, ignore_index).T


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
    message = failure(ex01(), "threshold", lambda img, t: correct(A01, "threshold")(img, t).T, img, 0.5)
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
        result = correct(A00, "pixel_accuracy")(cm)
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
        result = correct(A01, "adaptive_threshold")(img, block_size, offset, method)
        img[:] = 0.0  # an all-zero image would be all background and all ties
        return result

    def threshold_then_wipe(img, t):
        result = correct(A01, "threshold")(img, t)
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
        ex00().check("accuracy", correct(A00, "pixel_accuracy"), CM, case="x")
    with pytest.raises(KeyError, match="threshold_local"):
        ex01().reference("threshold_local")
    with pytest.raises(KeyError):  # graded in 01, not in 00
        ex00().check("threshold", correct(A01, "threshold"), IMG, 0.5, case="x")


MODULE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _resolve(dotted: str):
    module_name, _, attribute = dotted.partition(":")
    return getattr(__import__(module_name, fromlist=[attribute]), attribute)


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
        assert graded_function(assignment, name) is graded
        reference = exercise(assignment).reference(name)
        assert callable(reference)
        inspect.signature(reference)  # Exercise.expected binds arguments with it
        assert not isinstance(getattr(reference, "__wrapped__", None), str), \
            f"{name}: name the wrapped reference in GradedFunction.delegates_to, not in __wrapped__"
        if reference.__module__.startswith("segedu.grading"):
            # an adapter: it must say what it wraps, and that must trip the wire when called directly
            assert graded.delegates_to is not None, f"{name}: an adapter needs delegates_to"
        if graded.delegates_to is not None:
            assert reference.__module__.startswith("segedu.grading"), f"{name}: delegates_to is for adapters"
            reference = _resolve(graded.delegates_to)
            assert callable(reference)
            inspect.getsource(reference)  # the similarity check compares answers with it
        # calling the reference directly must trip the wire, so its module must be forbidden
        assert _matches(reference.__module__, spec.forbidden), (name, reference.__module__)
        comparators = graded.compare if isinstance(graded.compare, tuple) else (graded.compare,)
        if graded.outputs is not None and isinstance(graded.compare, tuple):
            assert len(comparators) == len(graded.outputs)
        for comparator_name in comparators:
            comparator = getattr(_compare, comparator_name, None)
            assert callable(comparator) and comparator_name in ("exact", "close", "binary_mask", "integer"), comparator_name
        assert isinstance(graded.options, dict)
        if graded.extra is not None:
            assert callable(_resolve(graded.extra))


@pytest.mark.parametrize("assignment", sorted(EXERCISES))
def test_packages_kept_importable_are_only_partly_forbidden(assignment):
    """``importable`` keeps a package in the grading kernel although part of it is forbidden (07: torch's
    unpooling kernels); a package forbidden as a whole can never be kept."""
    spec = EXERCISES[assignment]
    tops = {prefix.split(".")[0] for prefix in spec.forbidden}
    for package in spec.importable:
        assert package in tops and package not in spec.forbidden, (assignment, package)


def _score_spec(assignment, reference):
    return ExerciseSpec(assignment, (("score", GradedFunction(f"segedu.metrics:{reference}")),),
                        ("segedu.metrics",), "Use numpy only.")


def test_a_function_name_graded_in_two_assignments_does_not_collide():
    """Two units may grade a function of the same name: each pair keeps its own reference."""
    specs = registry(_score_spec("06_first", "pixel_accuracy"), _score_spec("07_second", "mean_iou"))
    assert graded_function("06_first", "score", specs).reference == "segedu.metrics:pixel_accuracy"
    assert graded_function("07_second", "score", specs).reference == "segedu.metrics:mean_iou"
    cm = np.array([[5, 1], [2, 2]])
    Exercise(specs["06_first"]).check("score", correct(A00, "pixel_accuracy"), cm, case="own reference")
    Exercise(specs["07_second"]).check("score", correct(A00, "mean_iou"), cm, case="own reference")
    message = failure(Exercise(specs["07_second"]), "score", correct(A00, "pixel_accuracy"), cm)
    assert "wrong answer" in message
    with pytest.raises(KeyError, match="no function called 'score'"):
        graded_function(A00, "score")


def test_a_pair_filed_twice_is_an_error():
    graded = GradedFunction("segedu.metrics:mean_iou")
    with pytest.raises(ValueError, match="twice"):
        ExerciseSpec("06_first", (("dice_loss", graded), ("dice_loss", graded)), ("segedu.metrics",), "numpy")
    with pytest.raises(ValueError, match="twice"):
        registry(_score_spec("06_first", "mean_iou"), _score_spec("06_first", "pixel_accuracy"))
    with pytest.raises(ValueError, match="twice"):
        cases_for(A00, "mean_iou")(lambda rng: [])
    assert CASE_BUILDERS[A00, "mean_iou"] is _confusion_matrix_score_cases

    book = KnownMistakes()
    wrong = Submission("sums_instead_of_averages", "a mistake")
    book.add("06_first", "dice_loss", wrong)
    book.add("07_second", "dice_loss", wrong)  # the same name in another unit is another function
    assert set(book.by_function) == {("06_first", "dice_loss"), ("07_second", "dice_loss")}
    with pytest.raises(ValueError, match="twice"):
        book.add("06_first", "dice_loss", Submission("another", "another mistake"))
    with pytest.raises(ValueError, match="two fixtures"):  # one student id per course folder
        book.add("06_first", "iou_loss", Submission("sums_instead_of_averages", "same id"))


# ----------------------------------------------------------------------------- the plan: one behaviour per cell

def _case_kind(case) -> tuple:
    """What a case exercises beyond its data: the function, which options it passes, and the value of
    every option that selects a behaviour (a string or a bool, such as ``method="gaussian"``)."""
    chosen = tuple(sorted((k, v) for k, v in case.kwargs.items() if isinstance(v, (str, bool))))
    positional = tuple(a for a in case.args if isinstance(a, (str, bool)))
    return case.graded, tuple(sorted(case.kwargs)), chosen, positional


@functools.lru_cache(maxsize=None)
def _plan(assignment):
    import nbformat

    from segedu.grading.plan import build_plan

    notebook = nbformat.read(SOLUTIONS / assignment / f"{assignment}.ipynb", as_version=4)
    return build_plan(notebook, assignment, DEFAULT_GRADING_SEED)


@pytest.mark.parametrize("assignment", sorted(EXERCISES))
def test_every_hidden_case_has_a_visible_sibling_in_its_own_cell(assignment):
    """A hidden case tests the behaviour of the cell it sits in: a visible case of the same cell calls the
    same function with the same options (a hidden Gaussian case in the offset cell would cost a student
    who got the Gaussian wrong the offset point too, under the offset cell's name)."""
    for grade_id, cases in _plan(assignment).cells.items():
        visible = {_case_kind(c) for c in cases if not c.hidden}
        assert visible, f"{assignment}:{grade_id} has no visible case: a student cannot see what it tests"
        for case in cases:
            if case.hidden:
                assert _case_kind(case) in visible, (
                    f"{assignment}:{grade_id}: the hidden case {case.case!r} is of a kind no visible case of the "
                    f"cell shows ({_case_kind(case)}); move it to the cell of its behaviour or add a visible sibling")


def test_the_sibling_rule_catches_a_hidden_case_in_the_wrong_cell():
    """The rule above, on the mistake it was written for: a Gaussian case hidden in the mean-only offset cell."""
    from segedu.grading.plan import Case

    visible = Case("adaptive_threshold", "adaptive_threshold", (np.zeros((3, 3)), 15), {"offset": 0.05, "method": "mean"},
                   "page", hidden=False, reveal=True, call="")
    hidden = Case("adaptive_threshold", "adaptive_threshold", (np.zeros((3, 3)), 9),
                  {"offset": -0.05, "method": "gaussian"}, "page", hidden=True, reveal=False, call="")
    assert _case_kind(hidden) != _case_kind(visible)
    assert _case_kind(Case(**{**hidden.__dict__, "kwargs": {"offset": -0.05, "method": "mean"}})) == _case_kind(visible)


def test_gaussian_text_states_the_reference_definition():
    """Exercise 01 defines the Gaussian mean as the reference computes it: sigma, the truncation radius and
    the border mode, and says that it reaches past the block (a block-sized Gaussian is another statistic)."""
    import nbformat

    notebook = nbformat.read(SOLUTIONS / "01_thresholding" / "01_thresholding.ipynb", as_version=4)
    text = next(c.source for c in notebook.cells if c.cell_type == "markdown" and "Adaptive thresholding" in c.source)
    for phrase in ("(b - 1)/6", "4\\sigma + 0.5", "truncate=4.0", "reflect", "past"):
        assert phrase in text, phrase


def test_gaussian_cut_at_the_block_fails_a_visible_case():
    """The separating visible case: a Gaussian cut off at the b x b window loses the Gaussian cell visibly."""
    from scipy import ndimage as ndi

    def cut_at_block(img, block_size, offset=0, method="mean"):
        img = np.asarray(img, dtype=float)
        local = ndi.gaussian_filter(img, (block_size - 1) / 6, mode="reflect", radius=(block_size - 1) // 2)
        return img > local - offset

    visible = [c for c in _plan("01_thresholding").cells["test_adaptive_gaussian"] if not c.hidden]
    ex = ex01()
    failures = 0
    for case in visible:
        try:
            ex.check("adaptive_threshold", cut_at_block, *case.args, case=case.case, **case.kwargs)
        except AssertionError:
            failures += 1
    assert failures >= 1


@pytest.mark.parametrize("name,value", [("conv_output_size", 3.0), ("conv_transpose_output_size", 8.0)])
def test_output_sizes_must_be_ints(name, value):
    """Exercise 04 asks for Python ints: the right size as a float fails, an int or numpy int passes."""
    ex = exercise("04_transpose_convolution")
    args = {"conv_output_size": ((8, 3), {"stride": 2}), "conv_transpose_output_size": ((3, 3), {"stride": 2,
            "padding": 1, "output_padding": 1, "dilation": 2})}[name]
    with pytest.raises(AssertionError, match="int"):
        ex.check(name, lambda *a, **k: value, *args[0], case="float", **args[1])
    ex.check(name, lambda *a, **k: int(value), *args[0], case="int", **args[1])
    ex.check(name, lambda *a, **k: np.int64(value), *args[0], case="numpy int", **args[1])


def test_07_forbids_the_unpooling_kernel_and_not_the_rest_of_torch_nn():
    """A forbidden prefix may name one function: 07 bans torch._C._nn.max_unpool2d, while F.pad and
    F.interpolate, which live in the same C++ module, stay allowed."""
    import torch
    import torch.nn.functional as F

    def unpool_with_pad(x, indices, kernel_size, stride=None, output_size=None):
        n, c, h, w = x.shape
        height, width = output_size
        out = F.pad(torch.zeros(n, c, 0, width, dtype=x.dtype), (0, 0, 0, height))  # F.pad is allowed
        out = out.reshape(n, c, -1)
        out.scatter_(2, indices.reshape(n, c, -1), x.reshape(n, c, -1))
        return out.reshape(n, c, height, width)

    from segedu.grading._tripwire import Tripwire

    ex = exercise("07_segnet")
    x, indices = _pooled(2)
    with Tripwire(("torch._C._nn",)) as whole_module:   # F.pad does run in the module of the banned kernel
        F.pad(x, (1, 1))
    assert str(whole_module.hit) == "torch._C._nn.pad"
    with Tripwire(ex.spec.forbidden) as exercise_07:
        F.pad(x, (1, 1))
        F.interpolate(x, scale_factor=2)
    assert exercise_07.hit is None
    ex.check("max_unpool2d", unpool_with_pad, x, indices, 2, output_size=(7, 9), case="F.pad allowed")
