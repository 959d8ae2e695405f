"""segedu.models.sam.pretrained: the full-size SAMs of segment-anything, built offline.

The parameter counts are checked against the architecture's own arithmetic (every weight matrix,
bias, norm and table of SAM written out by hand), and the full-size SamPredictor path runs on CPU in
seconds with ViT-B's image encoder replaced by a stub that returns a fixed 1×256×64×64 embedding; the
masks are checked against the prompt encoder and mask decoder called directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import segment_anything
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.models.sam.pretrained import (SAM_CHECKPOINT_URLS, build_sam, full_size_enabled, full_size_predict,
                                          parameter_counts)

# (width, depth, heads) of the three image encoders in the SAM paper (arXiv:2304.02643, appendix A).
VIT_SIZES = {"vit_b": (768, 12, 12), "vit_l": (1024, 24, 16), "vit_h": (1280, 32, 16)}


def linear(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def image_encoder_by_hand(width, depth, heads, grid=64, window=14, n_global=4, out=256):
    head_dim = width // heads
    per_block = (2 * width                                   # norm1
                 + linear(width, 3 * width) + linear(width, width)   # qkv, proj
                 + 2 * width                                 # norm2
                 + linear(width, 4 * width) + linear(4 * width, width))  # MLP
    relative_tables = ((depth - n_global) * 2 * (2 * window - 1) * head_dim   # windowed blocks: rel_pos_h, rel_pos_w
                       + n_global * 2 * (2 * grid - 1) * head_dim)          # global blocks: the whole 64×64 grid
    patch_embed = 3 * 16 * 16 * width + width
    pos_embed = grid * grid * width
    neck = width * out + 2 * out + out * out * 9 + 2 * out   # 1×1 conv, LayerNorm2d, 3×3 conv, LayerNorm2d
    return patch_embed + pos_embed + depth * per_block + relative_tables + neck


def prompt_encoder_by_hand(dim=256, mask_chans=16):
    point_types = 4 * dim + dim                              # pos/neg point, two box corners; "not a point"
    mask_downscaling = (4 * 1 * 2 * 2 + 4) + 2 * 4 + (mask_chans * 4 * 2 * 2 + mask_chans) + 2 * mask_chans \
        + (dim * mask_chans + dim)
    return point_types + mask_downscaling + dim              # + no_mask_embed


def mask_decoder_by_hand(dim=256, mlp=2048, depth=2, downsample=2, n_masks=4):
    inner = dim // downsample
    self_attention = 4 * linear(dim, dim)
    cross_attention = 3 * linear(dim, inner) + linear(inner, dim)
    block = self_attention + 2 * cross_attention + linear(dim, mlp) + linear(mlp, dim) + 4 * 2 * dim  # 4 LayerNorms
    transformer = depth * block + cross_attention + 2 * dim
    tokens = dim + n_masks * dim                             # IoU token, mask tokens
    upscaling = (dim * (dim // 4) * 4 + dim // 4) + 2 * (dim // 4) + ((dim // 4) * (dim // 8) * 4 + dim // 8)
    hypernetworks = n_masks * (2 * linear(dim, dim) + linear(dim, dim // 8))
    iou_head = 2 * linear(dim, 256) + linear(256, n_masks)
    return tokens + transformer + upscaling + hypernetworks + iou_head


@pytest.mark.parametrize("kind", sorted(VIT_SIZES))
def test_parameter_counts_match_the_architecture_by_hand(kind):
    counts = parameter_counts(build_sam(kind, device="meta"))
    expected = {"image_encoder": image_encoder_by_hand(*VIT_SIZES[kind]), "prompt_encoder": prompt_encoder_by_hand(),
                "mask_decoder": mask_decoder_by_hand()}
    assert {k: counts[k] for k in expected} == expected
    assert counts["total"] == sum(expected.values())


def test_vit_b_is_ninety_four_million_and_the_encoder_dominates():
    counts = parameter_counts(build_sam("vit_b", device="meta"))
    assert 93e6 < counts["total"] < 94e6          # "94 million", the number the lecture prints
    assert counts["image_encoder"] / counts["total"] > 0.95


def test_parameter_counts_skips_buffers_and_counts_shared_parameters_once():
    model = nn.Module()
    model.image_encoder, model.prompt_encoder = nn.Linear(4, 3), nn.Linear(2, 2)
    model.mask_decoder = model.prompt_encoder                 # shared: once in the total
    model.register_buffer("pixel_mean", torch.zeros(3))
    assert parameter_counts(model) == {"image_encoder": 15, "prompt_encoder": 6, "mask_decoder": 6, "total": 21}


def test_parameter_counts_errors_name_the_fix():
    with pytest.raises(SegeduInputError, match="mask_decoder"):
        model = nn.Module()
        model.image_encoder, model.prompt_encoder = nn.Linear(1, 1), nn.Linear(1, 1)
        parameter_counts(model)
    with pytest.raises(SegeduTypeError, match="nn.Module"):
        parameter_counts({"image_encoder": 1})


def small_sam(seed):
    """A segment-anything Sam with a 64×64 input and 32 channels: the full-size API path, built in milliseconds."""
    torch.manual_seed(seed)
    sam = Sam(image_encoder=ImageEncoderViT(img_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2,
                                            out_chans=32),
              prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(4, 4), input_image_size=(64, 64),
                                           mask_in_chans=4),
              mask_decoder=MaskDecoder(transformer_dim=32, transformer=TwoWayTransformer(depth=1, embedding_dim=32,
                                                                                         num_heads=2, mlp_dim=64),
                                       iou_head_hidden_dim=32))
    return sam.eval()


def test_checkpoint_is_the_explicit_switch(tmp_path, monkeypatch):
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", lambda checkpoint=None: small_sam(seed=1))
    trained = small_sam(seed=2)
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(trained.state_dict(), path)
    random_weights = build_sam("vit_b")
    loaded = build_sam("vit_b", checkpoint=path)
    assert not loaded.training
    reference = trained.state_dict()
    assert all(torch.equal(value, reference[name]) for name, value in loaded.state_dict().items())
    assert not torch.equal(random_weights.image_encoder.patch_embed.proj.weight, trained.image_encoder.patch_embed.proj.weight)


def test_checkpoint_errors_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(SegeduInputError, match=SAM_CHECKPOINT_URLS["vit_b"].replace(".", r"\.")):
        build_sam("vit_b", checkpoint=tmp_path / "missing.pth")
    with pytest.raises(SegeduInputError, match="vit_b.*vit_l.*vit_h"):
        build_sam("vit_x")
    other = tmp_path / "sam_vit_l_0b3195.pth"
    torch.save({"not_a_sam_weight": torch.zeros(1)}, other)
    with pytest.raises(SegeduInputError, match="meta"):
        build_sam("vit_b", checkpoint=other, device="meta")
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", lambda checkpoint=None: small_sam(seed=1))
    with pytest.raises(SegeduInputError, match="kind='vit_l'"):
        build_sam("vit_b", checkpoint=other)


class StubImageEncoder(nn.Module):
    """ViT-B's interface (img_size 1024, a 1×256×64×64 embedding) without its 27 s of CPU time."""

    img_size = 1024

    def __init__(self):
        super().__init__()
        self.embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))
        self.seen = None

    def forward(self, x):
        self.seen = x.clone()
        return self.embedding


@pytest.fixture(scope="module")
def stubbed_vit_b():
    torch.manual_seed(0)
    sam = build_sam("vit_b")
    sam.image_encoder = StubImageEncoder()
    return sam


def by_hand(sam, shape, point_xy):
    """The prompt encoder and mask decoder called directly, with SamPredictor's resizing written out."""
    height, width = shape
    scale = 1024 / max(height, width)
    new_h, new_w = int(height * scale + 0.5), int(width * scale + 0.5)
    coords = torch.tensor([[[point_xy[0] * new_w / width, point_xy[1] * new_h / height]]], dtype=torch.float32)
    with torch.no_grad():
        sparse, dense = sam.prompt_encoder(points=(coords, torch.ones(1, 1, dtype=torch.int)), boxes=None, masks=None)
        low_res, iou = sam.mask_decoder(image_embeddings=sam.image_encoder.embedding,
                                        image_pe=sam.prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
                                        dense_prompt_embeddings=dense, multimask_output=True)
        full = F.interpolate(low_res, (1024, 1024), mode="bilinear", align_corners=False)[..., :new_h, :new_w]
        full = F.interpolate(full, (height, width), mode="bilinear", align_corners=False)
    return full[0] > 0, iou[0], low_res[0], (new_h, new_w)


def test_full_size_path_with_a_stubbed_vit_b_encoder(stubbed_vit_b):
    image = np.random.default_rng(0).integers(0, 256, size=(48, 80, 3), dtype=np.uint8)  # not square: resized, padded
    point = (61.0, 12.0)                                                                   # (x, y): column 61, row 12
    masks, scores, low_res = full_size_predict(stubbed_vit_b, image, point)
    expected_masks, expected_scores, expected_low_res, (new_h, new_w) = by_hand(stubbed_vit_b, image.shape[:2], point)
    assert masks.shape == (3, 48, 80) and masks.dtype == bool
    assert scores.shape == (3,) and low_res.shape == (3, 256, 256)
    torch.testing.assert_close(torch.from_numpy(low_res), expected_low_res)
    torch.testing.assert_close(torch.from_numpy(scores), expected_scores)
    assert (masks == expected_masks.numpy()).mean() > 0.999   # a logit exactly at 0 may round either way
    seen = stubbed_vit_b.image_encoder.seen
    assert seen.shape == (1, 3, 1024, 1024) and (new_h, new_w) == (614, 1024)
    assert torch.all(seen[..., new_h:, :] == 0)                # padding after normalisation
    assert seen[..., :new_h, :].abs().sum() > 0


def test_full_size_path_reads_the_click_as_x_then_y(stubbed_vit_b):
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    _, _, low_res = full_size_predict(stubbed_vit_b, image, (50, 5))
    _, _, swapped = full_size_predict(stubbed_vit_b, image, (5, 50))
    _, _, expected, _ = by_hand(stubbed_vit_b, (64, 64), (50, 5))
    torch.testing.assert_close(torch.from_numpy(low_res), expected)
    assert not np.allclose(low_res, swapped)


def test_full_size_path_single_mask_and_a_real_small_encoder():
    sam = small_sam(seed=3)
    image = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    masks, scores, low_res = full_size_predict(sam, image, (10, 20), multimask_output=False)
    assert masks.shape == (1, 64, 64) and scores.shape == (1,) and low_res.shape == (1, 16, 16)


@pytest.mark.parametrize("image, point, error, message", [
    (np.zeros((8, 8, 3), np.float32), (1, 1), SegeduTypeError, r"uint8.*\* 255"),
    (np.zeros((3, 8, 8), np.uint8), (1, 1), SegeduInputError, "transpose"),
    (np.zeros((8, 8), np.uint8), (1, 1), SegeduInputError, "H×W×3"),
    (torch.zeros(3, 8, 8), (1, 1), SegeduTypeError, "numpy"),
    (np.zeros((8, 16, 3), np.uint8), (3, 12), SegeduInputError, r"outside the 8×16 image.*y in \[0, 8\)"),
    (np.zeros((8, 8, 3), np.uint8), (1, 2, 3), SegeduInputError, "two numbers"),
])
def test_full_size_predict_errors_name_the_fix(image, point, error, message):
    with pytest.raises(error, match=message):
        full_size_predict(None, image, point)


def test_full_size_predict_wants_a_segment_anything_model():
    with pytest.raises(SegeduTypeError, match="to_segment_anything"):
        full_size_predict(nn.Linear(1, 1), np.zeros((8, 8, 3), np.uint8), (1, 1))
    with pytest.raises(SegeduInputError, match="point_label"):
        full_size_predict(small_sam(0), np.zeros((8, 8, 3), np.uint8), (1, 1), point_label=2)


def test_full_size_runs_only_on_a_gpu_or_with_a_checkpoint():
    run, why = full_size_enabled("cpu")
    assert not run and "27 s" in why and "SAM_CHECKPOINT" in why
    assert full_size_enabled("cuda")[0]
    run, why = full_size_enabled("cpu", checkpoint="/somewhere/sam_vit_b_01ec64.pth")
    assert run and "sam_vit_b_01ec64.pth" in why


def test_full_size_path_on_tiny_sam_equals_tiny_sam_itself():
    from segedu.models import TinySAM

    torch.manual_seed(0)
    tiny = TinySAM().eval()
    image = np.random.default_rng(2).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    masks, scores, low_res = full_size_predict(tiny.to_segment_anything(), image, (40, 17))
    with torch.no_grad():
        logits, iou_pred = tiny(torch.from_numpy(image.transpose(2, 0, 1) / 255).float()[None],
                                torch.tensor([[[40.0, 17.0]]]), torch.ones(1, 1))
    torch.testing.assert_close(torch.from_numpy(scores), iou_pred[0], atol=1e-5, rtol=1e-5)
    assert (masks == (logits[0] > 0).numpy()).mean() > 0.999
    counts = parameter_counts(tiny)
    by_prefix = {name: sum(p.numel() for key, p in tiny.named_parameters() if key.startswith(name + "."))
                 for name in ("image_encoder", "prompt_encoder", "mask_decoder")}
    assert {k: counts[k] for k in by_prefix} == by_prefix and counts["total"] == sum(by_prefix.values())
