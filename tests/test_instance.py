"""segedu.instance's RoI operations and mask utilities against their peers.

Peers: torchvision.ops.roi_align / roi_pool (compiled C++), torch.nn.functional.grid_sample (bilinear
sampling in the interior of a map), pycocotools.mask.iou (COCO's mask IoU) and torchvision's
paste_masks_in_image (Mask R-CNN's post-processing). Inputs are random (seeded) and built to reach the
awkward cases: boxes partly or wholly outside the map, boxes under one cell, half-integer coordinates
(RoIPool's rounding), empty masks.
"""

from __future__ import annotations

import itertools

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import roi_align as tv_roi_align
from torchvision.ops import roi_pool as tv_roi_pool

import segedu.instance as instance
from segedu._validation import SegeduInputError
from segedu.instance import (
    bilinear_interpolate,
    box_xywh_to_xyxy,
    mask_iou,
    paste_masks,
    roi_align,
    roi_align_reference,
    roi_pool,
)

DTYPES = [torch.float32, torch.float64]


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}


def random_case(seed: int, dtype, images: int = 2, rois: int = 7, height: int = 9, width: int = 11):
    """Features and K×5 rois: most boxes overlap the map, some stick out, two are under a cell, one is far off."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(images, 3, height, width, generator=gen, dtype=torch.float64).to(dtype)
    corner = torch.rand(rois, 2, generator=gen, dtype=torch.float64) * torch.tensor([width + 4.0, height + 4.0]) - 2
    size = torch.rand(rois, 2, generator=gen, dtype=torch.float64) * 9
    size[:2] *= 0.1                                                  # tiny boxes
    boxes = torch.cat([corner, corner + size], 1)
    boxes[-1] = torch.tensor([40.0, 40.0, 45.0, 47.0])              # wholly outside
    index = torch.randint(0, images, (rois, 1), generator=gen).to(torch.float64)
    return features, torch.cat([index, boxes], 1).to(dtype)


def as_list(rois: torch.Tensor, images: int) -> list[torch.Tensor]:
    """The same boxes as torchvision's other form: one K_i×4 tensor per image (rois sorted by image)."""
    return [rois[rois[:, 0] == n, 1:] for n in range(images)]


# ----------------------------------------------------------------------------- roi_align


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_align_matches_torchvision(aligned, dtype):
    for seed in range(4):
        features, rois = random_case(seed, dtype)
        rois = rois[rois[:, 0].argsort(stable=True)]
        for sampling_ratio, output_size, scale in itertools.product([-2, -1, 0, 1, 2, 3], [2, (3, 4)], [1.0, 0.6]):
            expected = tv_roi_align(features, rois, output_size, scale, sampling_ratio, aligned)
            got = roi_align(features, rois, output_size, scale, sampling_ratio, aligned)
            assert got.dtype == dtype
            torch.testing.assert_close(got, expected, **tolerance(dtype))
            from_list = roi_align(features, as_list(rois, 2), output_size, scale, sampling_ratio, aligned)
            torch.testing.assert_close(from_list, expected, **tolerance(dtype))


def test_roi_align_large_boxes_mixed_adaptive_grids():
    """Adaptive sampling on boxes of very different sizes puts them in different groups: order must survive."""
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(1, 4, 40, 50, generator=gen, dtype=torch.float64)
    corner = torch.rand(30, 2, generator=gen, dtype=torch.float64) * 30
    size = torch.rand(30, 2, generator=gen, dtype=torch.float64) ** 2 * 40
    rois = torch.cat([torch.zeros(30, 1, dtype=torch.float64), corner, corner + size], 1)
    for aligned in (True, False):
        expected = tv_roi_align(features, rois, 5, 0.8, -1, aligned)
        torch.testing.assert_close(roi_align(features, rois, 5, 0.8, -1, aligned), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("aligned", [True, False])
def test_roi_align_reference_equals_fast_path_and_torchvision(aligned):
    for seed, sampling_ratio, output_size in [(0, -1, 2), (1, 2, (2, 3)), (2, 0, 3), (3, 1, 2)]:
        features, rois = random_case(seed, torch.float64, rois=5, height=6, width=7)
        reference = roi_align_reference(features, rois, output_size, 0.8, sampling_ratio, aligned)
        torch.testing.assert_close(reference, roi_align(features, rois, output_size, 0.8, sampling_ratio, aligned),
                                   rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(reference, tv_roi_align(features, rois, output_size, 0.8, sampling_ratio, aligned),
                                   rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_align_empty_boxes(dtype):
    features = torch.randn(2, 3, 5, 5, dtype=dtype)
    for boxes in (torch.zeros(0, 5, dtype=dtype), [torch.zeros(0, 4, dtype=dtype), torch.zeros(0, 4, dtype=dtype)]):
        for function in (roi_align, roi_align_reference, roi_pool):
            out = function(features, boxes, (2, 3))
            expected = (tv_roi_pool if function is roi_pool else tv_roi_align)(features, boxes, (2, 3))
            assert out.shape == expected.shape == (0, 3, 2, 3)
            assert out.dtype == dtype


def test_box_wholly_outside_gives_zeros_as_torchvision():
    features = torch.randn(1, 2, 8, 8, dtype=torch.float64) + 5     # no zero values by chance
    rois = torch.tensor([[0, 20.0, 20.0, 30.0, 25.0], [0, -30.0, -20.0, -10.0, -9.5], [0, 2.0, 2.0, 5.0, 5.0]],
                        dtype=torch.float64)
    for aligned in (True, False):
        ours = roi_align(features, rois, 3, aligned=aligned)
        torch.testing.assert_close(ours, tv_roi_align(features, rois, 3, aligned=aligned))
        assert torch.all(ours[:2] == 0) and torch.all(ours[2] != 0)
    torch.testing.assert_close(roi_pool(features, rois, 3), tv_roi_pool(features, rois, 3))
    assert torch.all(roi_pool(features, rois, 3)[:2] == 0)


def test_roi_align_gradient_matches_torchvision():
    features, rois = random_case(5, torch.float64)
    ours_input = features.clone().requires_grad_(True)
    theirs_input = features.clone().requires_grad_(True)
    weights = torch.randn(rois.shape[0], 3, 2, 2, dtype=torch.float64)
    (roi_align(ours_input, rois, 2, 0.7, -1, True) * weights).sum().backward()
    (tv_roi_align(theirs_input, rois, 2, 0.7, -1, True) * weights).sum().backward()
    torch.testing.assert_close(ours_input.grad, theirs_input.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_roi_ops_follow_the_device():
    features, rois = random_case(0, torch.float32)
    features, rois = features.cuda(), rois.cuda()
    for ours, theirs in ((roi_align, tv_roi_align), (roi_pool, tv_roi_pool)):
        got = ours(features, rois, 3)
        assert got.device == features.device
        torch.testing.assert_close(got, theirs(features, rois, 3), rtol=1e-5, atol=1e-5)
    assert bilinear_interpolate(features[0], 1.5, 2.5).device == features.device


# ----------------------------------------------------------------------------- roi_pool


@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_pool_matches_torchvision(dtype):
    for seed in range(8):
        features, rois = random_case(seed, dtype)
        if seed % 2:   # half-integer coordinates: C's round() takes halves away from zero, torch.round to even
            rois[:, 1:] = torch.round(rois[:, 1:] * 2) / 2
        for output_size, scale in itertools.product([1, 2, (3, 4), 6], [1.0, 0.5]):
            expected = tv_roi_pool(features, rois, output_size, scale)
            got = roi_pool(features, rois, output_size, scale)
            assert got.dtype == dtype
            torch.testing.assert_close(got, expected, rtol=0, atol=0)
            torch.testing.assert_close(roi_pool(features, as_list(rois[rois[:, 0].argsort(stable=True)], 2),
                                                output_size, scale),
                                       tv_roi_pool(features, rois[rois[:, 0].argsort(stable=True)], output_size, scale),
                                       rtol=0, atol=0)


# ----------------------------------------------------------------------------- bilinear_interpolate


def test_bilinear_interpolate_matches_grid_sample_inside():
    gen = torch.Generator().manual_seed(0)
    feature = torch.randn(4, 7, 9, generator=gen, dtype=torch.float64)
    y = torch.rand(5, 6, generator=gen, dtype=torch.float64) * 6
    x = torch.rand(5, 6, generator=gen, dtype=torch.float64) * 8
    y[0, 0], x[0, 0] = 6.0, 8.0                                   # the last row and column exactly
    y[0, 1], x[0, 1] = 0.0, 3.0
    grid = torch.stack([x / 8 * 2 - 1, y / 6 * 2 - 1], -1)[None]   # align_corners=True: -1, 1 = first, last centre
    expected = F.grid_sample(feature[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]
    got = bilinear_interpolate(feature, y, x)
    assert got.shape == (4, 5, 6)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert float(bilinear_interpolate(feature[0], 2.0, 3.0)) == float(feature[0, 2, 3])


def test_bilinear_interpolate_matches_torchvision_at_the_borders():
    """torchvision samples exactly at (y, x) for a zero-size box at (x + 0.5, y + 0.5), aligned, one sample."""
    gen = torch.Generator().manual_seed(1)
    height, width = 5, 6
    feature = torch.randn(2, height, width, generator=gen, dtype=torch.float64)
    values = [-1.5, -1.0, -0.99, -0.5, 0.0, 0.3, height - 1.0, height - 0.7, height - 0.0, height + 0.01, height + 1.0]
    points = torch.tensor(list(itertools.product(values, values)), dtype=torch.float64)
    y, x = points[:, 0], points[:, 1] * width / height
    boxes = torch.stack([x + 0.5, y + 0.5, x + 0.5, y + 0.5], 1)
    expected = tv_roi_align(feature[None], [boxes], 1, 1.0, 1, True)[:, :, 0, 0].T
    got = bilinear_interpolate(feature, y, x)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert torch.all(bilinear_interpolate(feature, torch.tensor([-1.01, 2.0]), torch.tensor([2.0, width + 0.01])) == 0)


# ----------------------------------------------------------------------------- mask_iou


def coco_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    def encode(masks):
        return [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]

    return np.asarray(mask_utils.iou(encode(a), encode(b), [0] * len(b)), dtype=np.float64).reshape(len(a), len(b))


def test_mask_iou_matches_pycocotools():
    rng = np.random.default_rng(0)
    for seed in range(5):
        a = rng.random((6, 20, 17)) < rng.random((6, 1, 1))
        b = rng.random((4, 20, 17)) < rng.random((4, 1, 1))
        a[0] = False                                            # empty against everything
        b[1] = False
        b[2] = a[2]                                             # identical pair: IoU 1
        got = mask_iou(a, b)
        assert got.dtype == np.float64 and got.shape == (6, 4)
        np.testing.assert_allclose(got, coco_iou(a, b), rtol=0, atol=1e-12)
        assert got[2, 2] == 1.0
        # torch tensors and 0/1 integers are the same masks
        np.testing.assert_allclose(mask_iou(torch.from_numpy(a.astype(np.uint8)), torch.from_numpy(b)), got)
        np.testing.assert_allclose(mask_iou(a.astype(np.int64), b.astype(np.float32)), got)


def test_mask_iou_of_empty_masks_is_zero_as_pycocotools():
    empty = np.zeros((1, 5, 5), dtype=bool)
    assert coco_iou(empty, empty)[0, 0] == 0.0                  # what COCO does, so what segedu must do
    assert mask_iou(empty, empty)[0, 0] == 0.0
    assert mask_iou(np.zeros((0, 5, 5), bool), np.ones((3, 5, 5), bool)).shape == (0, 3)
    assert mask_iou(np.ones((2, 5, 5), bool), np.zeros((0, 5, 5), bool)).shape == (2, 0)


# ----------------------------------------------------------------------------- paste_masks


def test_paste_masks_matches_torchvision():
    gen = torch.Generator().manual_seed(0)
    height, width = 37, 45
    corner = torch.rand(12, 2, generator=gen) * torch.tensor([width + 10.0, height + 10.0]) - 5
    size = torch.rand(12, 2, generator=gen) * 30
    size[:2] *= 0.05                                            # boxes under a pixel
    boxes = torch.cat([corner, corner + size], 1)
    boxes[-1] = torch.tensor([60.0, 50.0, 70.0, 55.0])          # wholly outside the image
    probabilities = torch.rand(12, 1, 28, 28, generator=gen)
    expected = paste_masks_in_image(probabilities, boxes, (height, width))[:, 0]
    torch.testing.assert_close(paste_masks(probabilities, boxes, height, width, threshold=None), expected)
    torch.testing.assert_close(paste_masks(probabilities[:, 0], boxes, height, width, threshold=None), expected)
    pasted = paste_masks(probabilities, boxes, height, width)
    assert pasted.dtype == torch.bool and pasted.shape == (12, height, width)
    assert torch.equal(pasted, expected > 0.5)
    assert not pasted[-1].any()
    assert paste_masks(probabilities[:0], boxes[:0], height, width).shape == (0, height, width)


# ----------------------------------------------------------------------------- bad input


def test_xywh_boxes_are_refused_with_the_conversion():
    features = torch.randn(1, 2, 10, 10)
    xywh = torch.tensor([[6.0, 5.0, 3.0, 2.0]])                 # x2 = 3 < x1 = 6: width and height, not corners
    for function in (roi_align, roi_align_reference, roi_pool):
        with pytest.raises(SegeduInputError, match="box_xywh_to_xyxy"):
            function(features, [xywh], 2)
    with pytest.raises(SegeduInputError, match="x2 >= x1"):
        paste_masks(torch.rand(1, 28, 28), xywh, 10, 10)
    fixed = box_xywh_to_xyxy(xywh)
    torch.testing.assert_close(roi_align(features, [fixed], 2), tv_roi_align(features, [fixed], 2))


def test_bare_k_by_4_tensor_is_refused():
    features = torch.randn(2, 2, 10, 10)
    with pytest.raises(SegeduInputError, match="batch index column.*list"):
        roi_align(features, torch.tensor([[1.0, 1.0, 4.0, 4.0]]), 2)
    with pytest.raises(SegeduInputError, match="one K_i×4 tensor per image"):
        roi_align(features, [torch.tensor([[1.0, 1.0, 4.0, 4.0]])], 2)


@pytest.mark.parametrize("index", [2.0, -1.0, 0.5])
def test_bad_batch_index_is_refused(index):
    features = torch.randn(2, 2, 10, 10)
    with pytest.raises(SegeduInputError, match=r"whole numbers in 0\.\.1"):
        roi_pool(features, torch.tensor([[index, 1.0, 1.0, 4.0, 4.0]]), 2)


def test_bad_features_output_size_and_sampling_ratio_are_refused():
    boxes = torch.tensor([[0, 1.0, 1.0, 4.0, 4.0]])
    with pytest.raises(SegeduInputError, match=r"4-D.*features\[None\]"):
        roi_align(torch.randn(2, 10, 10), boxes, 2)
    with pytest.raises(SegeduInputError, match="output_size must be positive"):
        roi_align(torch.randn(1, 2, 10, 10), boxes, (0, 2))
    with pytest.raises(TypeError, match="sampling_ratio"):
        roi_align(torch.randn(1, 2, 10, 10), boxes, 2, sampling_ratio=1.5)
    with pytest.raises(TypeError, match="features.float"):
        roi_align(torch.ones(1, 2, 10, 10, dtype=torch.long), boxes, 2)


def test_bad_masks_are_refused():
    with pytest.raises(SegeduInputError, match=r"\(2, 5, 5\).*\(3, 5, 6\)"):
        mask_iou(np.zeros((2, 5, 5), bool), np.zeros((3, 5, 6), bool))
    with pytest.raises(SegeduInputError, match=r"a\[None\]"):
        mask_iou(np.zeros((5, 5), bool), np.zeros((3, 5, 5), bool))
    with pytest.raises(SegeduInputError, match="> 0.5"):
        mask_iou(np.full((1, 5, 5), 0.7), np.zeros((3, 5, 5), bool))


def test_public_names():
    for name in ("roi_align", "roi_align_reference", "roi_pool", "bilinear_interpolate", "mask_iou", "paste_masks"):
        assert name in instance.__all__ and callable(getattr(instance, name))
