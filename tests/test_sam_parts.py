"""SAM's parts (segedu.models.sam: common, attention, image_encoder, prompt_encoder, amg) and
segedu.losses.sam_loss against independent peers: segment-anything's own modules given the same
weights (state dicts loaded both ways), torch.nn.functional.scaled_dot_product_attention,
torch's unfold, torchvision's sigmoid_focal_loss and batched_nms; and the bad-input messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from segment_anything.modeling import common as sa_common
from segment_anything.modeling import image_encoder as sa_image_encoder
from segment_anything.modeling import prompt_encoder as sa_prompt_encoder
from segment_anything.modeling import transformer as sa_transformer
from segment_anything.utils import amg as sa_amg

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.losses import sam_loss
from segedu.models import sam
from segedu.models.sam.amg import generate_masks, point_grid, stability_score
from segedu.models.sam.attention import Attention, attention
from segedu.models.sam.common import LayerNorm2d, MLPBlock
from segedu.models.sam.prompt_encoder import PositionEmbeddingRandom, PromptEncoder, fourier_encoding


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter and buffer random, so that no default (ones, zeros) hides a swapped name."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            tensor.copy_(torch.randn(tensor.shape, generator=g, dtype=tensor.dtype) * 0.5)
    return module


def _twin(ours: torch.nn.Module, theirs: torch.nn.Module, seed: int = 0):
    """Random weights in ours, loaded into theirs strictly (same names and shapes), and back."""
    _randomise(ours, seed)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours.eval(), theirs.eval()


# --------------------------------------------------------------------------------------------------
# the package's names
# --------------------------------------------------------------------------------------------------
MY_NAMES = [  # and attention, tested on its own below
    "Attention", "LayerNorm2d", "MLPBlock", "patchify", "random_masking", "PatchEmbed",
    "ImageEncoderViT", "fourier_encoding", "PositionEmbeddingRandom", "PromptEncoder", "stability_score",
    "point_grid", "generate_masks",
]


@pytest.mark.parametrize("name", MY_NAMES)
def test_public_names_resolve_through_the_package(name):
    value = getattr(sam, name)
    assert callable(value)
    module = __import__(f"segedu.models.sam.{sam._LAZY[name]}", fromlist=[name])
    assert name in module.__all__ and getattr(module, name) is value


def test_attention_is_the_function_even_after_its_module_is_imported():
    """The module attention.py and the function attention share a name: once any module imports
    segedu.models.sam.attention (transformer.py does), Python sets the package attribute to the
    submodule, and the lazy __getattr__ is never asked. The package must bind the function itself."""
    import importlib

    module = importlib.import_module("segedu.models.sam.attention")   # the module, from sys.modules
    assert sam.attention is attention is module.attention
    from segedu.models.sam import attention as imported

    assert imported is attention


def test_sam_loss_is_exported():
    import segedu.losses

    assert "sam_loss" in segedu.losses.__all__ and segedu.losses.sam_loss is sam_loss


# --------------------------------------------------------------------------------------------------
# common: LayerNorm2d, MLPBlock
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layernorm2d_equals_segment_anything_and_layer_norm(dtype):
    ours, theirs = _twin(LayerNorm2d(6), sa_common.LayerNorm2d(6))
    x = _randn(2, 6, 5, 4, dtype=dtype)
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    out = ours(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out, theirs(x))
    by_torch = F.layer_norm(x.permute(0, 2, 3, 1), (6,), ours.weight, ours.bias, eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(out, by_torch)


@pytest.mark.parametrize("act", [torch.nn.GELU, torch.nn.ReLU])
def test_mlp_block_equals_segment_anything(act):
    ours, theirs = _twin(MLPBlock(8, 24, act=act), sa_common.MLPBlock(8, 24, act=act))
    x = _randn(3, 5, 8)
    torch.testing.assert_close(ours(x), theirs(x))


def test_common_blocks_name_bad_input():
    with pytest.raises(SegeduInputError, match=r"\(B, C, H, W\).*batch axis"):
        LayerNorm2d(3)(torch.zeros(3, 4, 4))
    with pytest.raises(SegeduInputError, match="features on axis 1"):
        LayerNorm2d(3)(torch.zeros(1, 4, 2, 2))
    with pytest.raises(SegeduTypeError, match=r"\.float\(\)"):
        MLPBlock(4, 8)(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(SegeduInputError, match="4 features"):
        MLPBlock(4, 8)(torch.zeros(2, 5))


# --------------------------------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "q_shape, k_shape, v_shape",
    [
        ((5, 8), (7, 8), (7, 3)),  # no batch axis, d_v != d
        ((2, 5, 16), (2, 9, 16), (2, 9, 16)),
        ((2, 4, 6, 8), (2, 4, 6, 8), (2, 4, 6, 8)),  # multi-head (B, heads, L, d)
        ((2, 4, 3, 8), (1, 4, 10, 8), (1, 4, 10, 5)),  # broadcast batch axis
        ((1, 1, 1), (1, 1, 1), (1, 1, 1)),
    ],
)
def test_attention_equals_scaled_dot_product_attention(dtype, q_shape, k_shape, v_shape):
    q, k, v = (3 * _randn(*s, seed=i, dtype=dtype) for i, s in enumerate((q_shape, k_shape, v_shape)))
    ours = attention(q, k, v)
    assert ours.dtype == dtype
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v), **tol)


def test_attention_scale_and_softmax_axis_matter():
    """The two classic mistakes give different numbers, so the comparison above can fail."""
    q, k, v = _randn(2, 5, 16, seed=1), _randn(2, 7, 16, seed=2), _randn(2, 7, 4, seed=3)
    right = attention(q, k, v)
    unscaled = torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
    wrong_axis = torch.softmax(q @ k.transpose(-2, -1) / 4, dim=-2) @ v
    assert not torch.allclose(right, unscaled, atol=1e-3)
    assert not torch.allclose(right, wrong_axis, atol=1e-3)


def test_attention_gradients_equal_sdpa():
    q, k, v = (_randn(2, 3, 4, 8, seed=i, dtype=torch.float64).requires_grad_() for i in range(3))
    grads = torch.autograd.grad(attention(q, k, v).pow(2).sum(), (q, k, v))
    expected = torch.autograd.grad(F.scaled_dot_product_attention(q, k, v).pow(2).sum(), (q, k, v))
    for ours, theirs in zip(grads, expected):
        torch.testing.assert_close(ours, theirs)


def test_attention_names_bad_input():
    x = torch.zeros(2, 5, 8)
    with pytest.raises(SegeduInputError, match="same number of channels"):
        attention(x, torch.zeros(2, 5, 4), torch.zeros(2, 5, 4))
    with pytest.raises(SegeduInputError, match="one row per key"):
        attention(x, x, torch.zeros(2, 6, 8))
    with pytest.raises(SegeduInputError, match="do not broadcast"):
        attention(x, torch.zeros(3, 5, 8), torch.zeros(3, 5, 8))
    with pytest.raises(SegeduTypeError, match="same dtype"):
        attention(x, x.double(), x)
    with pytest.raises(SegeduTypeError, match=r"floating-point.*\.float\(\)"):
        attention(x.long(), x, x)
    with pytest.raises(SegeduInputError, match="at least 2 axes"):
        attention(torch.zeros(8), torch.zeros(8), torch.zeros(8))


@pytest.mark.parametrize("downsample_rate", [1, 2])
@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_attention_module_equals_segment_anything(downsample_rate, num_heads):
    ours, theirs = _twin(
        Attention(16, num_heads, downsample_rate), sa_transformer.Attention(16, num_heads, downsample_rate)
    )
    q, k, v = _randn(2, 3, 16, seed=1), _randn(2, 10, 16, seed=2), _randn(2, 10, 16, seed=3)
    torch.testing.assert_close(ours(q, k, v), theirs(q, k, v), atol=1e-5, rtol=1e-5)


def test_attention_module_names_bad_configuration_and_input():
    with pytest.raises(SegeduInputError, match="num_heads = 3 must divide"):
        Attention(16, 3)
    with pytest.raises(SegeduInputError, match=r"flatten\(2\)\.transpose"):
        Attention(8, 2)(torch.zeros(1, 8, 4, 4), torch.zeros(1, 3, 8), torch.zeros(1, 3, 8))


# --------------------------------------------------------------------------------------------------
# prompt encoder
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fourier_encoding_equals_position_embedding_random(dtype):
    theirs = sa_prompt_encoder.PositionEmbeddingRandom(num_pos_feats=12, scale=3.0)
    coords = torch.rand(4, 7, 2, generator=torch.Generator().manual_seed(1), dtype=dtype)
    ours = fourier_encoding(coords, theirs.positional_encoding_gaussian_matrix)
    assert ours.shape == (4, 7, 24) and ours.dtype == dtype
    expected = theirs._pe_encoding(coords.float()).to(dtype)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_fourier_encoding_mistakes_change_the_result():
    gaussian = _randn(2, 8, seed=4)
    coords = torch.rand(10, 2, generator=torch.Generator().manual_seed(5))
    right = fourier_encoding(coords, gaussian)
    angles = 2 * torch.pi * (coords @ gaussian)  # not mapped to [-1, 1]
    assert not torch.allclose(right, torch.cat([angles.sin(), angles.cos()], -1), atol=1e-3)
    angles = 2 * torch.pi * ((2 * coords - 1) @ gaussian)
    assert not torch.allclose(right, torch.cat([angles.cos(), angles.sin()], -1), atol=1e-3)  # swapped


def test_fourier_encoding_names_bad_input():
    gaussian = torch.zeros(2, 4)
    with pytest.raises(SegeduInputError, match=r"\(\.\.\., 2\).*torch\.stack"):
        fourier_encoding(torch.zeros(5, 3), gaussian)
    with pytest.raises(SegeduInputError, match=r"\(2, F\).*\.T"):
        fourier_encoding(torch.zeros(5, 2), torch.zeros(4, 2))
    with pytest.raises(SegeduTypeError, match="Divide pixel coordinates"):
        fourier_encoding(torch.zeros(5, 2, dtype=torch.long), gaussian)


@pytest.mark.parametrize("size", [(4, 4), (3, 5)])
def test_position_embedding_random_grid_and_coords_equal_segment_anything(size):
    ours, theirs = _twin(PositionEmbeddingRandom(8, scale=2.0), sa_prompt_encoder.PositionEmbeddingRandom(8))
    torch.testing.assert_close(ours(size), theirs(size), atol=1e-5, rtol=1e-5)
    pixels = torch.rand(2, 5, 2, generator=torch.Generator().manual_seed(0)) * 40
    torch.testing.assert_close(
        ours.forward_with_coords(pixels, (32, 48)), theirs.forward_with_coords(pixels, (32, 48)), atol=1e-5, rtol=1e-5
    )


def _prompt_twins(seed=0, embed_dim=16):
    kwargs = dict(embed_dim=embed_dim, image_embedding_size=(4, 5), input_image_size=(32, 40), mask_in_chans=8)
    return _twin(PromptEncoder(**kwargs), sa_prompt_encoder.PromptEncoder(**kwargs), seed)


def _points(batch=3, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(batch, n, 2, generator=g) * torch.tensor([40.0, 32.0])
    labels = torch.randint(-1, 2, (batch, n), generator=g)
    return coords, labels


@pytest.mark.parametrize("prompts", ["points", "box", "points+box", "mask", "points+mask", "none"])
def test_prompt_encoder_equals_segment_anything(prompts):
    ours, theirs = _prompt_twins()
    points = _points() if "points" in prompts else None
    boxes = None
    if "box" in prompts:
        boxes = torch.tensor([[2.0, 3.0, 20.0, 30.0], [0.0, 0.0, 39.0, 31.0], [5.0, 5.0, 6.0, 7.0]])
    masks = _randn(3, 1, 16, 20, seed=3) if "mask" in prompts else None
    sparse, dense = ours(points, boxes, masks)
    sa_sparse, sa_dense = theirs(points, boxes, masks)
    assert sparse.shape == sa_sparse.shape and dense.shape == sa_dense.shape
    torch.testing.assert_close(sparse, sa_sparse, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dense, sa_dense, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.get_dense_pe(), theirs.get_dense_pe(), atol=1e-5, rtol=1e-5)


def test_prompt_encoder_shifts_points_to_pixel_centres_and_pads():
    ours, _ = _prompt_twins()
    coords, labels = torch.tensor([[[10.0, 20.0]]]), torch.tensor([[1]])
    sparse, _ = ours((coords, labels), None, None)
    centre = torch.tensor([[10.5 / 40, 20.5 / 32]])
    expected = fourier_encoding(centre, ours.pe_layer.positional_encoding_gaussian_matrix)[0]
    torch.testing.assert_close(sparse[0, 0], expected + ours.point_embeddings[1].weight[0])
    torch.testing.assert_close(sparse[0, 1], ours.not_a_point_embed.weight[0])  # the padding point


def test_prompt_encoder_follows_float64():
    ours, theirs = _prompt_twins()
    ours.double()
    sparse, dense = ours(_points(), torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 3), _randn(3, 1, 16, 20, dtype=torch.float64))
    assert sparse.dtype == dense.dtype == torch.float64
    sa_sparse, _ = theirs(_points(), torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 3), None)
    torch.testing.assert_close(sparse.float(), sa_sparse, atol=1e-5, rtol=1e-5)


def test_prompt_encoder_names_bad_input():
    ours, _ = _prompt_twins()
    coords, labels = _points()
    with pytest.raises(SegeduInputError, match=r"\(B, N, 2\).*coords\[:, None, :\]"):
        ours((coords[:, 0], labels), None, None)
    with pytest.raises(SegeduInputError, match=r"\(B, N\)"):
        ours((coords, labels[:, :2]), None, None)
    with pytest.raises(SegeduInputError, match="-1 .padding"):
        ours((coords, labels + 1), None, None)
    with pytest.raises(SegeduTypeError, match=r"labels\.long\(\)"):
        ours((coords, labels.float()), None, None)
    with pytest.raises(SegeduInputError, match=r"\(B, 4\)"):
        ours(None, torch.zeros(3, 2, 2), None)
    with pytest.raises(SegeduInputError, match=r"\(B, 1, 16, 20\).*interpolate"):
        ours(None, None, torch.zeros(3, 1, 32, 40))
    with pytest.raises(SegeduInputError, match="same batch size"):
        ours((coords, labels), torch.zeros(2, 4), None)
    with pytest.raises(SegeduInputError, match="multiple of 4"):
        PromptEncoder(8, (4, 4), (32, 32), mask_in_chans=6)


# --------------------------------------------------------------------------------------------------
# stability score, point grid
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 12, 9), (2, 3, 16, 16)])
@pytest.mark.parametrize("threshold, offset", [(0.0, 1.0), (0.5, 0.25), (-1.0, 2.0)])
def test_stability_score_equals_segment_anything(shape, threshold, offset):
    logits = 3 * _randn(*shape, seed=sum(shape))
    ours = stability_score(logits, threshold, offset)
    assert ours.shape == shape[:-2] and ours.dtype == torch.float32
    torch.testing.assert_close(ours, sa_amg.calculate_stability_score(logits, threshold, offset))
    ours64 = stability_score(logits.double(), threshold, offset)
    assert ours64.dtype == torch.float64
    torch.testing.assert_close(ours64.float(), ours)


def test_stability_score_empty_over_empty_is_one_where_segment_anything_gives_nan():
    logits = torch.stack([torch.full((4, 4), -5.0), 3 * _randn(4, 4)])
    ours = stability_score(logits, 0.0, 1.0)
    theirs = sa_amg.calculate_stability_score(logits, 0.0, 1.0)
    assert ours[0].item() == 1.0 and torch.isnan(theirs[0])
    torch.testing.assert_close(ours[1], theirs[1])


def test_stability_score_swapped_thresholds_give_the_inverse_ratio():
    logits = 3 * _randn(6, 10, 10, seed=7)
    right = stability_score(logits, 0.0, 1.0)
    swapped = (logits > -1.0).sum((-2, -1)).float() / (logits > 1.0).sum((-2, -1)).float()
    assert bool((right < 1).all()) and bool((swapped > 1).all())
    torch.testing.assert_close(swapped, 1 / right)


def test_stability_score_names_bad_input():
    with pytest.raises(SegeduTypeError, match="logits before thresholding"):
        stability_score(torch.zeros(2, 4, 4, dtype=torch.bool), 0.0, 1.0)
    with pytest.raises(SegeduInputError, match=r"threshold_offset must be >= 0.*abs"):
        stability_score(torch.zeros(2, 4, 4), 0.0, -1.0)
    with pytest.raises(SegeduInputError, match=r"\(\.\.\., H, W\)"):
        stability_score(torch.zeros(4), 0.0, 1.0)
    with pytest.raises(SegeduTypeError, match="torch.from_numpy"):
        stability_score(np.zeros((2, 4, 4)), 0.0, 1.0)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 32])
def test_point_grid_equals_build_point_grid(n):
    ours = point_grid(n)
    assert ours.shape == (n * n, 2) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, sa_amg.build_point_grid(n), rtol=0, atol=1e-15)


def test_point_grid_names_bad_input():
    with pytest.raises(SegeduInputError, match="at least 1"):
        point_grid(0)
    with pytest.raises(SegeduTypeError, match="int"):
        point_grid(2.5)


# --------------------------------------------------------------------------------------------------
# sam_loss
# --------------------------------------------------------------------------------------------------
def _sam_batch(b=3, m=3, h=12, w=10, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(b, m, h, w, generator=g)).to(dtype)
    iou_pred = torch.rand(b, m, generator=g).to(dtype)
    target = (torch.rand(b, h, w, generator=g) < 0.35).to(dtype)
    return logits, iou_pred, target


def _sam_loss_by_hand(logits, iou_pred, target, focal_weight=20.0, dice_weight=1.0):
    """The contract from COURSE.md, one sample and one mask at a time, with torchvision's focal loss."""
    total = []
    for i in range(logits.shape[0]):
        y = target[i]
        per_mask, iou_errors = [], []
        for j in range(logits.shape[1]):
            z = logits[i, j]
            focal = torchvision.ops.sigmoid_focal_loss(z, y, alpha=0.25, gamma=2, reduction="mean")
            p = torch.sigmoid(z)
            dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
            per_mask.append(focal_weight * focal + dice_weight * dice)
            pred, truth = (z > 0).numpy(), y.numpy() > 0.5
            union = np.logical_or(pred, truth).sum()
            true_iou = 1.0 if union == 0 else np.logical_and(pred, truth).sum() / union
            iou_errors.append((iou_pred[i, j].item() - true_iou) ** 2)
        total.append(min(per_mask).item() + float(np.mean(iou_errors)))
    return float(np.mean(total))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weights", [(20.0, 1.0), (1.0, 0.0), (0.0, 1.0), (3.5, 2.0)])
@pytest.mark.parametrize("m", [1, 3])
def test_sam_loss_equals_the_contract(dtype, weights, m):
    logits, iou_pred, target = _sam_batch(m=m, dtype=dtype, seed=m)
    ours = sam_loss(logits, iou_pred, target, *weights)
    assert ours.dtype == dtype and ours.ndim == 0
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert ours.item() == pytest.approx(_sam_loss_by_hand(logits, iou_pred, target, *weights), rel=tol, abs=tol)


def test_sam_loss_gradient_flows_only_through_the_best_mask():
    logits, iou_pred, target = _sam_batch(b=2, m=3, seed=11)
    logits[0, 1] = 8 * (2 * target[0] - 1)  # sample 0: mask 1 is nearly right, the minimum
    logits[1, 2] = 8 * (2 * target[1] - 1)  # sample 1: mask 2
    logits.requires_grad_()
    (grad,) = torch.autograd.grad(sam_loss(logits, iou_pred, target), logits)
    for sample, best in ((0, 1), (1, 2)):
        for mask in range(3):
            nonzero = bool(grad[sample, mask].abs().sum() > 0)
            assert nonzero == (mask == best), (sample, mask)


def test_sam_loss_iou_target_is_the_thresholded_mask_without_gradient():
    target = torch.zeros(1, 4, 4)
    target[0, :2] = 1  # the top half
    logits = torch.full((1, 1, 4, 4), -0.1)
    logits[0, 0, :2] = 0.1  # the right mask, barely: probabilities 0.52 / 0.48
    # IoU of (logits > 0) is 1; an IoU of probabilities would be about 0.35
    exact = sam_loss(logits, torch.tensor([[1.0]]), target, focal_weight=0.0, dice_weight=0.0)
    assert exact.item() == 0.0
    iou_pred = torch.tensor([[0.5]], requires_grad=True)
    logits.requires_grad_()
    loss = sam_loss(logits, iou_pred, target, focal_weight=0.0, dice_weight=0.0)
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    assert iou_pred.grad.item() == pytest.approx(2 * (0.5 - 1.0))
    assert logits.grad is None or bool((logits.grad == 0).all())  # the IoU target is a constant


def test_sam_loss_empty_target_predicted_empty_has_iou_one():
    logits = torch.full((1, 2, 5, 5), -30.0)
    target = torch.zeros(1, 5, 5)
    assert sam_loss(logits, torch.tensor([[1.0, 1.0]]), target).item() < 1e-6
    assert sam_loss(logits, torch.tensor([[0.0, 0.0]]), target, 0.0, 0.0).item() == pytest.approx(1.0)


def test_sam_loss_takes_the_minimum_over_masks_not_the_mean():
    logits, _, target = _sam_batch(seed=4)
    # with iou_pred = the true IoU the IoU term vanishes, and one-mask losses give each L_m
    predicted, truth = logits > 0, target[:, None] > 0
    true_iou = (predicted & truth).sum((2, 3)) / (predicted | truth).sum((2, 3))
    for b in range(3):
        one = slice(b, b + 1)
        loss = sam_loss(logits[one], true_iou[one], target[one]).item()
        singles = [sam_loss(logits[one, j : j + 1], true_iou[one, j : j + 1], target[one]).item() for j in range(3)]
        assert loss == pytest.approx(min(singles), rel=1e-6)
        assert loss < np.mean(singles) - 1e-3


def test_sam_loss_names_bad_input():
    logits, iou_pred, target = _sam_batch()
    with pytest.raises(SegeduInputError, match=r"\(B, M, H, W\).*mask_logits\[:, None\]"):
        sam_loss(logits[:, 0], iou_pred, target)
    with pytest.raises(SegeduInputError, match=r"iou_pred must have shape \(B, M\) = \(3, 3\)"):
        sam_loss(logits, iou_pred[:, :2], target)
    with pytest.raises(SegeduInputError, match=r"target\[:, 0\]"):
        sam_loss(logits, iou_pred, target[:, None])
    with pytest.raises(SegeduInputError, match="ONE mask per sample"):
        sam_loss(logits, iou_pred, target[:, None].expand(-1, 3, -1, -1))
    with pytest.raises(SegeduInputError, match="255"):
        sam_loss(logits, iou_pred, target * 255)
    with pytest.raises(SegeduTypeError, match=r"\.float\(\)"):
        sam_loss(logits, iou_pred, target.bool())
    with pytest.raises(SegeduTypeError, match="IoU head"):
        sam_loss(logits, iou_pred.numpy(), target)
    with pytest.raises(SegeduTypeError, match="raw decoder output"):
        sam_loss(logits.numpy(), iou_pred, target)


# --------------------------------------------------------------------------------------------------
# image encoder: patchify, random_masking, PatchEmbed, ImageEncoderViT
# --------------------------------------------------------------------------------------------------
from segedu.models.sam.image_encoder import ImageEncoderViT, PatchEmbed, patchify, random_masking  # noqa: E402


@pytest.mark.parametrize("shape, p", [((2, 3, 16, 24), 8), ((1, 1, 6, 6), 3), ((3, 2, 4, 8), 4), ((1, 3, 5, 5), 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_patchify_equals_unfold(shape, p, dtype):
    x = _randn(*shape, dtype=dtype)
    ours = patchify(x, p)
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, F.unfold(x, kernel_size=p, stride=p).transpose(1, 2), rtol=0, atol=0)


def test_patch_embed_is_a_linear_map_of_patchify_and_equals_segment_anything():
    ours, theirs = _twin(
        PatchEmbed((4, 4), (4, 4), in_chans=3, embed_dim=10),
        sa_image_encoder.PatchEmbed((4, 4), (4, 4), in_chans=3, embed_dim=10),
    )
    x = _randn(2, 3, 12, 8, dtype=torch.float64)
    ours, theirs = ours.double(), theirs.double()
    tokens = ours(x)
    assert tokens.shape == (2, 3, 2, 10)
    torch.testing.assert_close(tokens, theirs(x))
    linear = patchify(x, 4) @ ours.proj.weight.reshape(10, -1).T + ours.proj.bias  # the ViT view
    torch.testing.assert_close(tokens.reshape(2, 6, 10), linear)


def test_patchify_names_bad_input():
    with pytest.raises(SegeduInputError, match=r"multiple of patch_size = 8.*pad"):
        patchify(torch.zeros(1, 3, 20, 16), 8)
    with pytest.raises(SegeduInputError, match=r"images\[None\]"):
        patchify(torch.zeros(3, 16, 16), 8)
    with pytest.raises(SegeduTypeError, match="255"):
        patchify(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), 8)


@pytest.mark.parametrize("n, ratio", [(16, 0.75), (10, 0.5), (7, 0.75), (49, 0.9), (5, 0.0)])
def test_random_masking_keeps_round_n_times_one_minus_ratio_and_restores_order(n, ratio):
    tokens = _randn(3, n, 4, seed=n)
    kept, mask, ids_restore = random_masking(tokens, ratio, generator=torch.Generator().manual_seed(0))
    keep = round(n * (1 - ratio))
    assert kept.shape == (3, keep, 4) and mask.dtype == torch.bool and ids_restore.dtype == torch.int64
    assert mask.sum(1).tolist() == [n - keep] * 3
    for b in range(3):  # the kept tokens are exactly the unmasked ones
        unmasked = tokens[b, ~mask[b]]
        assert {tuple(r) for r in unmasked.tolist()} == {tuple(r) for r in kept[b].tolist()}
    filler = torch.full((3, n - keep, 4), float("nan"))
    restored = torch.cat([kept, filler], 1).gather(1, ids_restore[..., None].expand(-1, -1, 4))
    torch.testing.assert_close(restored[~mask], tokens[~mask], rtol=0, atol=0)
    assert bool(torch.isnan(restored[mask]).all())


def test_random_masking_is_seeded_and_differs_per_sample():
    tokens = _randn(4, 64, 2)
    first = random_masking(tokens, generator=torch.Generator().manual_seed(3))[1]
    again = random_masking(tokens, generator=torch.Generator().manual_seed(3))[1]
    other = random_masking(tokens, generator=torch.Generator().manual_seed(4))[1]
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert not torch.equal(first[0], first[1])


def test_random_masking_names_bad_input():
    with pytest.raises(SegeduInputError, match=r"\[0, 1\).*0.75"):
        random_masking(torch.zeros(1, 4, 2), 1.0)
    with pytest.raises(SegeduInputError, match=r"\(B, N, D\).*patchify"):
        random_masking(torch.zeros(1, 3, 4, 4))


ENCODER_CONFIG = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, out_chans=16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_image_encoder_equals_segment_anything_global_attention(dtype):
    ours, theirs = _twin(
        ImageEncoderViT(**ENCODER_CONFIG),
        sa_image_encoder.ImageEncoderViT(**ENCODER_CONFIG, use_rel_pos=False, window_size=0, global_attn_indexes=()),
    )
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    x = _randn(2, 3, 32, 32, seed=1, dtype=dtype)
    out = ours(x)
    assert out.shape == (2, 16, 4, 4) and out.dtype == dtype
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(out, theirs(x), **tol)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("variant", [dict(use_abs_pos=False), dict(qkv_bias=False, mlp_ratio=2.0, depth=3)])
def test_image_encoder_variants_equal_segment_anything(variant):
    config = dict(ENCODER_CONFIG, **variant)
    ours, theirs = _twin(ImageEncoderViT(**config), sa_image_encoder.ImageEncoderViT(**config, window_size=0), seed=5)
    x = _randn(1, 3, 32, 32, seed=5)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-4, rtol=1e-4)


def test_image_encoder_follows_segment_anythings_layer_norm_choice():
    from functools import partial

    norm = partial(torch.nn.LayerNorm, eps=1e-6)  # as segment-anything's build_sam
    config = dict(ENCODER_CONFIG, depth=1)
    ours, theirs = _twin(
        ImageEncoderViT(**config, norm_layer=norm),
        sa_image_encoder.ImageEncoderViT(**config, norm_layer=norm, window_size=0),
        seed=2,
    )
    x = _randn(1, 3, 32, 32, seed=2)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-4, rtol=1e-4)


def test_image_encoder_names_bad_input():
    encoder = ImageEncoderViT(**ENCODER_CONFIG)
    with pytest.raises(SegeduInputError, match=r"32×32 images.*interpolate"):
        encoder(torch.zeros(1, 3, 64, 64))
    with pytest.raises(SegeduInputError, match="in_chans = 3"):
        encoder(torch.zeros(1, 1, 32, 32))
    with pytest.raises(SegeduInputError, match="num_heads = 3 must divide"):
        ImageEncoderViT(**dict(ENCODER_CONFIG, num_heads=3))
    with pytest.raises(SegeduInputError, match="multiple of patch_size"):
        ImageEncoderViT(**dict(ENCODER_CONFIG, img_size=36))


# --------------------------------------------------------------------------------------------------
# the automatic mask generator, on a stand-in model with TinySAM's embed/decode API
# --------------------------------------------------------------------------------------------------
class _Discs(torch.nn.Module):
    """Three concentric discs around the click (radii 2, 5, 9 px) with sharp or soft edges, and an
    IoU prediction that prefers the middle one; embed() returns the image unchanged."""

    def __init__(self, soft_outer=False):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.0))  # the device comes from the parameters
        self.soft_outer = soft_outer
        self.calls = []

    def embed(self, images):
        self.calls.append(("embed", images.shape, images.dtype))
        return images.sum(1, keepdim=True)

    def decode(self, embeddings, point_coords, point_labels, multimask_output=True):
        self.calls.append(("decode", point_coords.shape, point_labels.tolist()))
        n, _, h, w = embeddings.shape
        ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        distance = torch.hypot(xs - point_coords[:, 0, 0, None, None], ys - point_coords[:, 0, 1, None, None])
        steep = torch.tensor([8.0, 8.0, 0.2 if self.soft_outer else 8.0])[None, :, None, None]
        logits = steep * (torch.tensor([2.0, 5.0, 9.0])[None, :, None, None] - distance[:, None])
        iou = torch.tensor([0.85, 0.95, 0.9]).expand(n, 3)
        return logits * self.scale, iou


def _reference_records(model, image, points_per_side, **kwargs):
    """The same pipeline written with segment-anything's helpers and torchvision's NMS."""
    t, offset = kwargs["mask_threshold"], kwargs["stability_score_offset"]
    h, w = image.shape[-2:]
    points = torch.as_tensor(sa_amg.build_point_grid(points_per_side) * (w, h), dtype=torch.float32)
    embeddings = model.embed(image[None])
    logits, iou = model.decode(embeddings.expand(len(points), -1, -1, -1), points[:, None], torch.ones(len(points), 1))
    logits, iou = logits.flatten(0, 1), iou.flatten(0, 1)
    prompts = points.repeat_interleave(3, 0)
    keep = iou > kwargs["pred_iou_thresh"]
    logits, iou, prompts = logits[keep], iou[keep], prompts[keep]
    stability = sa_amg.calculate_stability_score(logits, t, offset)
    keep = (stability >= kwargs["stability_score_thresh"]) & (logits > t).flatten(1).any(1)
    logits, iou, prompts, stability = logits[keep], iou[keep], prompts[keep], stability[keep]
    masks = logits > t
    boxes = sa_amg.batched_mask_to_box(masks)
    kept = torchvision.ops.batched_nms(boxes.float(), iou, torch.zeros(len(iou)), kwargs["box_nms_thresh"])
    boxes = boxes[kept]
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)  # box_xyxy_to_xywh, for many boxes
    return masks[kept], xywh, iou[kept], stability[kept], prompts[kept]


@pytest.mark.parametrize("soft_outer", [False, True])
@pytest.mark.parametrize("points_per_side, batch_size", [(3, 64), (4, 5)])
def test_generate_masks_equals_the_pipeline_with_segment_anythings_helpers(soft_outer, points_per_side, batch_size):
    model = _Discs(soft_outer)
    image = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0))
    kwargs = dict(
        pred_iou_thresh=0.8, stability_score_thresh=0.85, box_nms_thresh=0.7, mask_threshold=0.0,
        stability_score_offset=1.0,
    )
    records = generate_masks(model, image, points_per_side=points_per_side, batch_size=batch_size, **kwargs)
    embeds = [c for c in model.calls if c[0] == "embed"]
    decodes = [c for c in model.calls if c[0] == "decode"]
    assert len(embeds) == 1  # one image embedding for all the prompts
    assert len(decodes) == -(-points_per_side**2 // batch_size)
    assert all(label == [1] for c in decodes for label in c[2])  # single foreground clicks
    masks, boxes, iou, stability, prompts = _reference_records(model, image, points_per_side, **kwargs)
    assert len(records) == len(masks) > 0
    assert [r["predicted_iou"] for r in records] == sorted((r["predicted_iou"] for r in records), reverse=True)
    for record, mask, box, score, stable, prompt in zip(records, masks, boxes, iou, stability, prompts):
        assert record["segmentation"].dtype == bool and record["segmentation"].shape == (24, 24)
        np.testing.assert_array_equal(record["segmentation"], mask.numpy())
        assert record["bbox"] == box.tolist() and record["area"] == int(mask.sum())
        assert record["predicted_iou"] == pytest.approx(score.item())
        assert record["stability_score"] == pytest.approx(stable.item())
        assert record["point_coords"] == [prompt.tolist()]
    if soft_outer:  # the soft outer disc is unstable and filtered out
        assert all(r["stability_score"] >= 0.85 for r in records)
        assert all(r["area"] < 200 for r in records)


def test_generate_masks_accepts_uint8_arrays_and_names_bad_input():
    model = _Discs()
    image = (np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)
    from_array = generate_masks(model, image, points_per_side=2)
    from_tensor = generate_masks(model, torch.from_numpy(image).permute(2, 0, 1).float() / 255, points_per_side=2)
    assert [r["bbox"] for r in from_array] == [r["bbox"] for r in from_tensor]
    with pytest.raises(SegeduTypeError, match="embed"):
        generate_masks(object(), image)
    with pytest.raises(SegeduInputError, match="one RGB image"):
        generate_masks(model, torch.zeros(2, 3, 24, 24))
    with pytest.raises(SegeduInputError, match="H×W×3"):
        generate_masks(model, np.zeros((24, 24)))


def test_generate_masks_on_tiny_sam_equals_segment_anythings_automatic_mask_generator():
    """The real pipeline: TinySAM (random weights, whose logits are small, hence the small offset)
    against SamAutomaticMaskGenerator on the same weights through to_segment_anything()."""
    from segment_anything import SamAutomaticMaskGenerator

    from segedu.models import TinySAM

    torch.manual_seed(0)
    tiny = TinySAM(image_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, prompt_dim=32).eval()
    image = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    image[8:24, 8:24] = 200
    kwargs = dict(
        points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.01, box_nms_thresh=1.0,
        stability_score_offset=0.02,
    )
    ours = generate_masks(tiny, image, **kwargs)
    theirs = SamAutomaticMaskGenerator(tiny.to_segment_anything(), **kwargs).generate(image)
    assert len(ours) == len(theirs) > 1
    for record, expected in zip(ours, theirs):
        assert record["bbox"] == expected["bbox"] and record["area"] == expected["area"]
        assert record["point_coords"] == expected["point_coords"]
        assert record["predicted_iou"] == pytest.approx(expected["predicted_iou"], abs=1e-5)
        assert record["stability_score"] == pytest.approx(expected["stability_score"], abs=1e-5)
        np.testing.assert_array_equal(record["segmentation"], expected["segmentation"])


def test_parts_refuse_inputs_on_another_device_with_the_fix():
    """The meta device stands in for a GPU: shapes, no values, a device of its own."""
    ours, _ = _prompt_twins()
    coords, labels = _points()
    with pytest.raises(SegeduInputError, match=r"prompt encoder is on cpu.*\.to\("):
        ours((coords.to("meta"), labels.to("meta")), None, None)
    with pytest.raises(SegeduInputError, match="same device"):
        attention(torch.zeros(2, 3), torch.zeros(2, 3, device="meta"), torch.zeros(2, 3))
    with pytest.raises(SegeduInputError, match=r"mask_logits are on cpu.*\.to\(mask_logits\.device\)"):
        logits, iou_pred, target = _sam_batch()
        sam_loss(logits, iou_pred.to("meta"), target)


def test_parts_run_on_the_meta_device():
    """Nothing is created on a fixed device: every part follows its inputs (or its parameters)."""
    q = torch.zeros(2, 4, 8, device="meta")
    assert attention(q, q, q).device.type == "meta"
    assert fourier_encoding(torch.zeros(3, 2, device="meta"), torch.zeros(2, 4, device="meta")).shape == (3, 8)
    assert stability_score(torch.zeros(2, 5, 5, device="meta"), 0.0, 1.0).device.type == "meta"
    encoder = ImageEncoderViT(**ENCODER_CONFIG).to("meta")
    assert encoder(torch.zeros(1, 3, 32, 32, device="meta")).shape == (1, 16, 4, 4)
    kept, mask, ids_restore = random_masking(torch.zeros(2, 16, 4, device="meta"))
    assert kept.shape == (2, 4, 4) and mask.device.type == "meta"
    prompt_encoder = PromptEncoder(16, (4, 5), (32, 40), 8).to("meta")
    sparse, dense = prompt_encoder(None, torch.zeros(3, 4, device="meta"), None)
    assert sparse.shape == (3, 2, 16) and dense.device.type == "meta"
    assert prompt_encoder.get_dense_pe().shape == (1, 16, 4, 5)


def test_generate_masks_follows_a_float64_model():
    model = _Discs().double()
    records = generate_masks(model, torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0)), points_per_side=2)
    assert model.calls[0] == ("embed", (1, 3, 24, 24), torch.float64) and len(records) > 0
