"""segedu.losses against independent peers: torchvision's sigmoid_focal_loss, torch.nn.functional's
cross-entropies, a Dice written from the formula, scikit-learn's balanced class weights, and a brute-force
pixel-to-pixel weight map; and the bad-input messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from scipy.spatial.distance import cdist
from sklearn.utils.class_weight import compute_class_weight

import segedu
from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.losses import (
    bce_loss,
    combined_loss,
    dice_loss,
    focal_loss,
    unet_weight_map,
    unet_weight_map_reference,
    weighted_cross_entropy,
)


def _batch(shape, dtype=torch.float32, seed=0, p_fg=0.3):
    g = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(shape, generator=g)).to(dtype)
    target = (torch.rand(shape, generator=g) < p_fg).to(dtype)
    return logits, target


# --------------------------------------------------------------------------------------------------
# focal loss vs torchvision
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (0.75, 0.0), (-1.0, 2.0), (0.5, 1.5), (0.0, 3.0), (1.0, 2.0)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_equals_torchvision(dtype, alpha, gamma, reduction):
    logits, target = _batch((3, 1, 7, 5), dtype, seed=int(10 * gamma) + 3)
    ours = focal_loss(logits, target, alpha=alpha, gamma=gamma, reduction=reduction)
    theirs = torchvision.ops.sigmoid_focal_loss(logits, target, alpha=alpha, gamma=gamma, reduction=reduction)
    assert ours.dtype == dtype and ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs)


def test_focal_default_reduction_is_mean_and_gradients_agree():
    logits, target = _batch((2, 4, 6), torch.float64)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    focal_loss(a, target).backward()
    torchvision.ops.sigmoid_focal_loss(b, target, reduction="mean").backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_focal_gamma_zero_negative_alpha_is_bce():
    logits, target = _batch((2, 1, 5, 5), torch.float64)
    torch.testing.assert_close(
        focal_loss(logits, target, alpha=-1, gamma=0), F.binary_cross_entropy_with_logits(logits, target)
    )


def test_focal_alpha_weights_foreground():
    # all-foreground target: alpha_t = alpha, so the loss is linear in alpha
    logits, _ = _batch((1, 1, 4, 4), torch.float64)
    target = torch.ones_like(logits)
    l1 = focal_loss(logits, target, alpha=0.2)
    l2 = focal_loss(logits, target, alpha=0.4)
    torch.testing.assert_close(l2, 2 * l1)


# --------------------------------------------------------------------------------------------------
# Dice
# --------------------------------------------------------------------------------------------------
def _dice_by_formula(logits, target, smooth):
    losses = []
    for x, y in zip(logits, target):  # sample by sample, plain sums
        p = 1 / (1 + np.exp(-x.numpy().astype(np.float64)))
        y = y.numpy().astype(np.float64)
        losses.append(1 - (2 * (p * y).sum() + smooth) / (y.sum() + p.sum() + smooth))
    return float(np.mean(losses))


@pytest.mark.parametrize("shape", [(4, 9, 7), (3, 1, 8, 8), (2, 3, 5, 6)])
@pytest.mark.parametrize("smooth", [1.0, 0.0, 5.0])
def test_dice_matches_formula(shape, smooth):
    logits, target = _batch(shape, torch.float64, seed=len(shape))
    assert dice_loss(logits, target, smooth=smooth).item() == pytest.approx(_dice_by_formula(logits, target, smooth))


def test_dice_keeps_dtype_and_is_mean_over_samples():
    logits, target = _batch((2, 1, 6, 6), torch.float64)
    both = dice_loss(logits, target)
    assert both.dtype == torch.float64
    each = [dice_loss(logits[i : i + 1], target[i : i + 1]) for i in range(2)]
    torch.testing.assert_close(both, (each[0] + each[1]) / 2)
    assert dice_loss(logits.float(), target.float()).dtype == torch.float32


def test_dice_smoothing_on_empty_masks():
    empty = torch.zeros(2, 1, 8, 8)
    confident_empty = torch.full((2, 1, 8, 8), -30.0)
    assert dice_loss(confident_empty, empty).item() == pytest.approx(0.0, abs=1e-6)
    # without smoothing an empty target gives 0 / sum(p): loss 1 however good the prediction
    assert dice_loss(confident_empty, empty, smooth=0.0).item() == pytest.approx(1.0)
    perfect = dice_loss(30 * (2 * torch.eye(8)[None, None] - 1), torch.eye(8)[None, None])
    assert perfect.item() == pytest.approx(0.0, abs=1e-6)


def test_dice_gradient_flows():
    logits, target = _batch((2, 1, 4, 4))
    logits.requires_grad_(True)
    dice_loss(logits, target).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------------
# BCE, weighted cross-entropy, combined
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bce_equals_torch_with_weight(reduction, dtype):
    logits, target = _batch((2, 1, 6, 5), dtype)
    weight = torch.rand(2, 1, 6, 5, generator=torch.Generator().manual_seed(1)).to(dtype) * 10
    torch.testing.assert_close(
        bce_loss(logits, target, weight=weight, reduction=reduction),
        F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction=reduction),
    )
    torch.testing.assert_close(
        bce_loss(logits, target, reduction=reduction),
        F.binary_cross_entropy_with_logits(logits, target, reduction=reduction),
    )


def test_bce_accepts_numpy_weight_map():
    logits, target = _batch((1, 1, 6, 6))
    labels = np.zeros((6, 6), dtype=np.int32)
    labels[:2, :2], labels[4:, 4:] = 1, 2
    w = unet_weight_map(labels)
    ours = bce_loss(logits, target, weight=w[None, None])
    theirs = F.binary_cross_entropy_with_logits(logits, target, weight=torch.from_numpy(w).float()[None, None])
    torch.testing.assert_close(ours, theirs)
    with pytest.raises(SegeduInputError, match=r"\[None\]"):
        bce_loss(logits[0], target[0], weight=w)
    with pytest.raises(SegeduInputError, match="non-negative"):
        bce_loss(logits, target, weight=-torch.ones_like(logits))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weighted_cross_entropy_equals_torch(dtype):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=g).to(dtype)
    target = torch.randint(0, 4, (2, 5, 6), generator=g)
    w = torch.rand(2, 5, 6, generator=g).to(dtype) * 5
    expected = (F.cross_entropy(logits, target, reduction="none") * w).mean()
    torch.testing.assert_close(weighted_cross_entropy(logits, target, w), expected)
    torch.testing.assert_close(weighted_cross_entropy(logits, target), F.cross_entropy(logits, target))
    torch.testing.assert_close(
        weighted_cross_entropy(logits, target, w, reduction="none"),
        F.cross_entropy(logits, target, reduction="none") * w,
    )


def test_weighted_cross_entropy_bad_targets():
    logits = torch.zeros(1, 3, 4, 4)
    with pytest.raises(SegeduInputError, match="num_classes=3"):
        weighted_cross_entropy(logits, torch.full((1, 4, 4), 3))
    with pytest.raises(SegeduTypeError, match=r"\.long\(\)"):
        weighted_cross_entropy(logits, torch.zeros(1, 4, 4))
    with pytest.raises(SegeduInputError, match="RGB"):
        weighted_cross_entropy(logits, torch.zeros(1, 4, 4, 3, dtype=torch.long))


def test_combined_is_the_weighted_sum():
    logits, target = _batch((2, 1, 6, 6), torch.float64)
    w = torch.rand(2, 1, 6, 6, dtype=torch.float64) + 1
    expected = (
        0.5 * F.binary_cross_entropy_with_logits(logits, target, weight=w)
        + 20 * torchvision.ops.sigmoid_focal_loss(logits, target, reduction="mean")
        + 2 * _dice_by_formula(logits, target, 1.0)
    )
    got = combined_loss(logits, target, weight_map=w, bce_weight=0.5, focal_weight=20, dice_weight=2)
    assert got.item() == pytest.approx(expected.item())


# --------------------------------------------------------------------------------------------------
# bad targets (students read these)
# --------------------------------------------------------------------------------------------------
LOSSES = [dice_loss, focal_loss, bce_loss, combined_loss]


@pytest.mark.parametrize("loss", LOSSES)
def test_target_0_255_says_divide_by_255(loss):
    logits = torch.zeros(1, 1, 4, 4)
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2] = 255
    with pytest.raises(SegeduInputError, match="divide it by 255"):
        loss(logits, target)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [torch.long, torch.uint8, torch.bool])
def test_integer_target_says_float(loss, dtype):
    logits = torch.zeros(1, 1, 4, 4)
    with pytest.raises(SegeduTypeError, match=r"\.float\(\)"):
        loss(logits, torch.ones(1, 1, 4, 4, dtype=dtype))


def test_integer_0_255_target_mentions_both():
    with pytest.raises(SegeduTypeError, match=r"\.float\(\) / 255"):
        dice_loss(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 255, dtype=torch.uint8))


@pytest.mark.parametrize("target_shape", [(2, 3, 4, 4), (2, 4, 4, 3)])
@pytest.mark.parametrize("loss", LOSSES)
def test_rgb_target_is_refused(loss, target_shape):
    with pytest.raises(SegeduInputError, match="RGB"):
        loss(torch.zeros(2, 1, 4, 4), torch.zeros(target_shape))


def test_shape_and_value_messages():
    logits = torch.zeros(2, 1, 4, 4)
    with pytest.raises(SegeduInputError, match=r"target\[:, None\]"):
        dice_loss(logits, torch.zeros(2, 4, 4))
    with pytest.raises(SegeduInputError, match=r"> 0\.5"):
        dice_loss(logits, torch.full((2, 1, 4, 4), 0.3))
    with pytest.raises(SegeduInputError, match=r"== c"):
        dice_loss(logits, torch.full((2, 1, 4, 4), 2.0))
    with pytest.raises(SegeduTypeError, match=r"torch\.from_numpy"):
        dice_loss(logits, np.zeros((2, 1, 4, 4), dtype=np.float32))
    with pytest.raises(SegeduTypeError, match=r"logits\.float\(\)"):
        dice_loss(torch.zeros(2, 1, 4, 4, dtype=torch.long), torch.zeros(2, 1, 4, 4))
    with pytest.raises(SegeduInputError, match="sample axis"):
        dice_loss(torch.zeros(4), torch.zeros(4))
    with pytest.raises(SegeduInputError, match="alpha"):
        focal_loss(logits, torch.zeros_like(logits), alpha=2.0)
    with pytest.raises(SegeduInputError, match="gamma"):
        focal_loss(logits, torch.zeros_like(logits), gamma=-1.0)
    with pytest.raises(SegeduInputError, match="reduction"):
        focal_loss(logits, torch.zeros_like(logits), reduction="avg")
    with pytest.raises(SegeduInputError, match="smooth"):
        dice_loss(logits, torch.zeros_like(logits), smooth=-1)


def test_losses_follow_the_device():
    logits = torch.zeros(2, 1, 4, 4, device="meta")
    target = torch.zeros(2, 1, 4, 4, device="meta")
    for loss in LOSSES:
        assert loss(logits, target).device.type == "meta"
    if torch.cuda.is_available():
        logits, target = _batch((2, 1, 4, 4))
        for loss in LOSSES:
            cuda = loss(logits.cuda(), target.cuda())
            assert cuda.device.type == "cuda"
            torch.testing.assert_close(cuda.cpu(), loss(logits, target))


@pytest.mark.parametrize("loss", LOSSES)
def test_target_on_another_device_names_the_fix(loss):
    # meta stands for "another device" on a CPU-only machine; the target is never moved silently
    with pytest.raises(SegeduInputError, match=r"target\.to\(logits\.device\)"):
        loss(torch.zeros(2, 1, 4, 4, device="meta"), torch.zeros(2, 1, 4, 4))


def test_weighted_cross_entropy_0_255_label_map_says_divide():
    with pytest.raises(SegeduInputError, match="divide it by 255"):
        weighted_cross_entropy(torch.zeros(1, 2, 4, 4), torch.tensor([[[0, 255] * 2] * 4]))


def test_lazy_import():
    assert segedu.losses.dice_loss is dice_loss


# --------------------------------------------------------------------------------------------------
# U-Net weight map
# --------------------------------------------------------------------------------------------------
def _weight_map_brute_force(labels, w0, sigma):
    """Independent: sklearn class weights, and scipy cdist between every background pixel and every cell pixel."""
    fg = (labels > 0).astype(int)
    classes = np.unique(fg)
    weight = np.ones(labels.shape)
    if classes.size == 2:
        cw = compute_class_weight("balanced", classes=classes, y=fg.ravel())
        weight = cw[fg]
    ids = [i for i in np.unique(labels) if i != 0]
    if len(ids) < 2:
        return weight
    bg = np.argwhere(labels == 0)
    per_cell = np.stack([cdist(bg, np.argwhere(labels == i)).min(axis=1) for i in ids], axis=1)
    per_cell.sort(axis=1)
    border = w0 * np.exp(-((per_cell[:, 0] + per_cell[:, 1]) ** 2) / (2 * sigma**2))
    weight[labels == 0] += border
    return weight


def _random_cells(seed, shape=(24, 30), n=5):
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int32)
    for i in range(1, n + 1):
        r, c = rng.integers(0, shape[0] - 4), rng.integers(0, shape[1] - 4)
        h, w = rng.integers(2, 7, size=2)
        labels[r : r + h, c : c + w] = 10 * i  # non-consecutive ids; later cells may cover earlier ones
    return labels


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("w0, sigma", [(10.0, 5.0), (3.0, 2.0)])
def test_weight_map_matches_brute_force(seed, w0, sigma):
    labels = _random_cells(seed)
    expected = _weight_map_brute_force(labels, w0, sigma)
    got = unet_weight_map(labels, w0=w0, sigma=sigma)
    assert got.dtype == np.float64 and got.shape == labels.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(unet_weight_map_reference(labels, w0=w0, sigma=sigma), expected, rtol=1e-12)


def test_weight_map_class_weight_matches_sklearn_and_border_only_on_background():
    labels = _random_cells(7)
    w = unet_weight_map(labels, w0=0.0)
    fg = (labels > 0).astype(int)
    cw = compute_class_weight("balanced", classes=np.array([0, 1]), y=fg.ravel())
    np.testing.assert_allclose(w, cw[fg])
    full = unet_weight_map(labels)
    np.testing.assert_array_equal(full[labels > 0], w[labels > 0])
    assert np.all(full[labels == 0] > w[labels == 0])


def test_weight_map_degenerate_cases():
    empty = np.zeros((5, 6), dtype=np.int64)
    np.testing.assert_array_equal(unet_weight_map(empty), np.ones((5, 6)))
    full = np.full((5, 6), 3, dtype=np.uint8)
    np.testing.assert_array_equal(unet_weight_map(full), np.ones((5, 6)))
    one = np.zeros((5, 6), dtype=np.int32)
    one[1:3, 1:3] = 4  # one cell: class weights only
    expected = np.where(one > 0, 30 / 8, 30 / 52)
    np.testing.assert_allclose(unet_weight_map(one), expected)


def test_weight_map_without_background_has_no_border_term():
    # two cells fill the map: one class only (w_c = 1) and no background pixel to carry a border term
    labels = np.zeros((4, 6), dtype=np.int32)
    labels[:, :3], labels[:, 3:] = 1, 2
    np.testing.assert_array_equal(unet_weight_map(labels), _weight_map_brute_force(labels, 10.0, 5.0))
    np.testing.assert_array_equal(unet_weight_map(labels), np.ones((4, 6)))
    np.testing.assert_array_equal(unet_weight_map_reference(labels), np.ones((4, 6)))


def test_weight_map_gap_between_touching_cells_is_heaviest():
    labels = np.zeros((20, 21), dtype=np.int32)
    labels[5:15, 2:10] = 1
    labels[5:15, 11:19] = 2  # a one-pixel gap at column 10
    w = unet_weight_map(labels)
    background = labels == 0
    assert np.unravel_index(np.argmax(np.where(background, w, 0)), w.shape)[1] == 10


def test_weight_map_accepts_torch_and_bad_input_messages():
    labels = _random_cells(1)
    np.testing.assert_allclose(unet_weight_map(torch.from_numpy(labels)), unet_weight_map(labels))
    with pytest.raises(SegeduTypeError, match=r"skimage\.measure\.label\(mask\)"):
        unet_weight_map(labels > 0)
    with pytest.raises(SegeduTypeError, match=r"skimage\.measure\.label\(mask\)"):
        unet_weight_map((labels > 0).astype(float))
    with pytest.raises(SegeduTypeError, match=r"astype\(np\.int32\)"):
        unet_weight_map(labels.astype(float))
    with pytest.raises(SegeduInputError, match="negative"):
        unet_weight_map(labels - 1)
    with pytest.raises(SegeduInputError, match="H×W"):
        unet_weight_map(labels[None])
    with pytest.raises(SegeduInputError, match="sigma"):
        unet_weight_map(labels, sigma=0)
    with pytest.raises(SegeduInputError, match="w0"):
        unet_weight_map(labels, w0=-1)


def _weight_map_full_edts(labels, w0=10.0, sigma=5.0):
    """Independent of the windows: one full-image scipy EDT per cell, then the two smallest by np.sort."""
    from scipy import ndimage

    ids = [i for i in np.unique(labels) if i != 0]
    dist = np.sort(np.stack([ndimage.distance_transform_edt(labels != i) for i in ids]), axis=0)
    fg = (labels > 0).astype(int)
    weight = compute_class_weight("balanced", classes=np.array([0, 1]), y=fg.ravel())[fg]
    border = w0 * np.exp(-((dist[0] + dist[1]) ** 2) / (2 * sigma**2))
    return weight + np.where(labels == 0, border, 0.0)


@pytest.mark.parametrize("layout", ["spread", "clustered"])
def test_weight_map_windows_are_exact_on_larger_maps(layout):
    # "clustered": cells in one corner, a large empty rest, so the first margin is too small and doubles
    rng = np.random.default_rng(3)
    labels = np.zeros((150, 170), dtype=np.int32)
    extent = (140, 160) if layout == "spread" else (35, 40)
    for i in range(1, 41):
        r, c = rng.integers(0, extent[0]), rng.integers(0, extent[1])
        labels[r : r + 4, c : c + 5] = i
    np.testing.assert_allclose(unet_weight_map(labels), _weight_map_full_edts(labels), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", LOSSES)
def test_losses_have_the_dtype_of_the_logits(loss):
    logits, target = _batch((2, 1, 4, 4), torch.float64)
    assert loss(logits, target.float()).dtype == torch.float64
    torch.testing.assert_close(loss(logits, target.float()), loss(logits, target))
    assert loss(logits.float(), target).dtype == torch.float32
