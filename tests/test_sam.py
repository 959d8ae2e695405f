"""SAM's two-way transformer, mask decoder and TinySAM, against segment-anything on the same weights.

segment-anything (Meta's package) is the independent peer: every segedu component keeps its
parameter names, so a state dict is loaded into both (in both directions) and the outputs compared.
TinySAM is compared as a whole through ``SamPredictor``, segment-anything's public API.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from segment_anything import SamPredictor
from segment_anything.modeling import MaskDecoder as SAMaskDecoder
from segment_anything.modeling import TwoWayTransformer as SATwoWayTransformer
from segment_anything.modeling.transformer import TwoWayAttentionBlock as SATwoWayAttentionBlock
from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.models.sam.mask_decoder import MaskDecoder
from segedu.models.sam.tiny_sam import TinySAM
from segedu.models.sam.transformer import TwoWayAttentionBlock, TwoWayTransformer

SMALL = dict(image_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, prompt_dim=32, decoder_depth=1,
             decoder_mlp_dim=64, decoder_heads=2, iou_head_hidden_dim=32)


def randomise(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial weights everywhere (norms and biases too), so that a swapped or skipped one shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator, dtype=p.dtype) + (1.0 if p.ndim == 1 else 0.0))
    return module


def assert_close(a, b, rtol=1e-5, atol=1e-5):
    torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), rtol=rtol, atol=atol)


def assert_close_scaled(got, want, rel=1e-4):
    """Equal up to float32 rounding of sums of large terms: the tolerance scales with the largest value."""
    got, want = torch.as_tensor(got).detach(), torch.as_tensor(want).detach()
    scale = max(1.0, float(want.abs().max()))
    torch.testing.assert_close(got, want, rtol=rel, atol=rel * scale)


def same_keys_and_shapes(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    assert all(sa[k].shape == sb[k].shape for k in sa)


# ---------------------------------------------------------------------------------------------
# the two-way transformer

@pytest.mark.parametrize("skip_first_layer_pe", [True, False])
def test_attention_block_equals_segment_anything(skip_first_layer_pe):
    ours = randomise(TwoWayAttentionBlock(16, 2, mlp_dim=24, skip_first_layer_pe=skip_first_layer_pe), 0)
    peer = SATwoWayAttentionBlock(16, 2, mlp_dim=24, skip_first_layer_pe=skip_first_layer_pe)
    same_keys_and_shapes(ours, peer)
    peer.load_state_dict(ours.state_dict())
    g = torch.Generator().manual_seed(1)
    queries, keys = torch.randn(3, 5, 16, generator=g), torch.randn(3, 12, 16, generator=g)
    query_pe, key_pe = torch.randn(3, 5, 16, generator=g), torch.randn(3, 12, 16, generator=g)
    for got, want in zip(ours(queries, keys, query_pe, key_pe), peer(queries, keys, query_pe, key_pe)):
        assert_close(got, want)


@pytest.mark.parametrize("depth,heads,downsample,activation",
                         [(1, 1, 1, nn.ReLU), (2, 4, 2, nn.ReLU), (3, 2, 2, nn.GELU)])
def test_two_way_transformer_equals_segment_anything_both_ways(depth, heads, downsample, activation):
    kwargs = dict(activation=activation, attention_downsample_rate=downsample)
    ours = randomise(TwoWayTransformer(depth, 32, heads, 48, **kwargs), 2)
    peer = SATwoWayTransformer(depth, 32, heads, 48, **kwargs)
    same_keys_and_shapes(ours, peer)
    g = torch.Generator().manual_seed(3)
    image, image_pe, tokens = torch.randn(2, 32, 3, 5, generator=g), torch.randn(2, 32, 3, 5, generator=g), \
        torch.randn(2, 7, 32, generator=g)
    peer.load_state_dict(ours.state_dict())  # segedu -> segment-anything
    for got, want in zip(ours(image, image_pe, tokens), peer(image, image_pe, tokens)):
        assert got.shape == want.shape
        assert_close(got, want)
    randomise(peer, 4)
    ours.load_state_dict(peer.state_dict())  # segment-anything -> segedu
    for got, want in zip(ours(image, image_pe, tokens), peer(image, image_pe, tokens)):
        assert_close(got, want)


def test_two_way_transformer_keeps_float64_and_broadcasts_one_positional_encoding():
    ours = randomise(TwoWayTransformer(1, 16, 2, 32), 5).double()
    peer = SATwoWayTransformer(1, 16, 2, 32).double()
    peer.load_state_dict(ours.state_dict())
    image, tokens = torch.randn(3, 16, 4, 4, dtype=torch.float64), torch.randn(3, 2, 16, dtype=torch.float64)
    pe = torch.randn(1, 16, 4, 4, dtype=torch.float64)
    queries, keys = ours(image, pe, tokens)
    assert queries.dtype == keys.dtype == torch.float64
    want_q, want_k = peer(image, pe.expand(3, -1, -1, -1), tokens)
    assert_close(queries, want_q, rtol=1e-12, atol=1e-12)
    assert_close(keys, want_k, rtol=1e-12, atol=1e-12)


def test_two_way_transformer_errors_name_the_fix():
    with pytest.raises(SegeduInputError, match="num_heads"):
        TwoWayTransformer(1, 32, 3, 64)
    t = TwoWayTransformer(1, 16, 2, 32)
    with pytest.raises(SegeduInputError, match="embedding_dim=16"):
        t(torch.zeros(1, 8, 2, 2), torch.zeros(1, 8, 2, 2), torch.zeros(1, 3, 8))
    with pytest.raises(SegeduInputError, match="repeat_interleave"):
        t(torch.zeros(1, 16, 2, 2), torch.zeros(1, 16, 2, 2), torch.zeros(2, 3, 16))


# ---------------------------------------------------------------------------------------------
# the mask decoder

def decoder_pair(seed, num_multimask_outputs=3, iou_head_depth=3):
    kwargs = dict(transformer_dim=32, num_multimask_outputs=num_multimask_outputs, iou_head_depth=iou_head_depth,
                  iou_head_hidden_dim=24)
    ours = randomise(MaskDecoder(transformer=TwoWayTransformer(2, 32, 2, 64), **kwargs), seed)
    peer = SAMaskDecoder(transformer=SATwoWayTransformer(2, 32, 2, 64), **kwargs)
    same_keys_and_shapes(ours, peer)
    peer.load_state_dict(ours.state_dict())
    return ours, peer


@pytest.mark.parametrize("multimask_output", [True, False])
@pytest.mark.parametrize("num_multimask_outputs,iou_head_depth", [(3, 3), (2, 2)])
def test_mask_decoder_equals_segment_anything(multimask_output, num_multimask_outputs, iou_head_depth):
    ours, peer = decoder_pair(6, num_multimask_outputs, iou_head_depth)
    g = torch.Generator().manual_seed(7)
    image, pe = torch.randn(1, 32, 4, 3, generator=g), torch.randn(1, 32, 4, 3, generator=g)
    sparse, dense = torch.randn(5, 3, 32, generator=g), torch.randn(5, 32, 4, 3, generator=g)
    masks, iou_pred = ours(image, pe, sparse, dense, multimask_output)
    want_masks, want_iou = peer(image, pe, sparse, dense, multimask_output)
    m = num_multimask_outputs if multimask_output else 1
    assert masks.shape == (5, m, 16, 12) and iou_pred.shape == (5, m)
    assert_close_scaled(masks, want_masks)
    assert_close_scaled(iou_pred, want_iou)


def test_mask_decoder_pairs_prompts_with_their_images():
    """Several images: prompts k*P/I .. (k+1)*P/I - 1 go with image k (segment-anything takes one image per call)."""
    ours, peer = decoder_pair(8)
    g = torch.Generator().manual_seed(9)
    images, pe = torch.randn(2, 32, 3, 3, generator=g), torch.randn(1, 32, 3, 3, generator=g)
    sparse, dense = torch.randn(4, 2, 32, generator=g), torch.randn(4, 32, 3, 3, generator=g)
    masks, iou_pred = ours(images, pe, sparse, dense, True)
    for k in range(2):
        want_masks, want_iou = peer(images[k:k + 1], pe, sparse[2 * k:2 * k + 2], dense[2 * k:2 * k + 2], True)
        assert_close_scaled(masks[2 * k:2 * k + 2], want_masks)
        assert_close_scaled(iou_pred[2 * k:2 * k + 2], want_iou)
    with pytest.raises(SegeduInputError, match="multiple of the number of images"):
        ours(torch.zeros(3, 32, 3, 3), pe, sparse, dense, True)


def test_mask_decoder_errors_name_the_fix():
    with pytest.raises(SegeduInputError, match="multiple of 8"):
        MaskDecoder(transformer_dim=20, transformer=TwoWayTransformer(1, 20, 2, 8))
    ours, _ = decoder_pair(10)
    with pytest.raises(SegeduInputError, match="image_embedding_size"):
        ours(torch.zeros(1, 32, 4, 4), torch.zeros(1, 32, 2, 2), torch.zeros(1, 2, 32), torch.zeros(1, 32, 4, 4), True)
    with pytest.raises(SegeduTypeError, match="floating-point"):
        ours(torch.zeros(1, 32, 4, 4).long(), torch.zeros(1, 32, 4, 4), torch.zeros(1, 2, 32),
             torch.zeros(1, 32, 4, 4), True)


# ---------------------------------------------------------------------------------------------
# TinySAM

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return randomise(TinySAM(**SMALL), 11).eval()


def uint8_image(seed, size=32):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def as_input(image):
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def test_tiny_sam_default_size_and_config_round_trip():
    torch.manual_seed(0)
    model = TinySAM()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 1_500_000
    buffer = io.BytesIO()
    torch.save({k: v.half() for k, v in model.state_dict().items()}, buffer)
    assert buffer.tell() <= 5 * 2**20
    rebuilt = TinySAM(**model.config)
    rebuilt.load_state_dict(model.state_dict())  # strict: the same architecture
    assert rebuilt.config == model.config and torch.equal(rebuilt.pixel_std, model.pixel_std)
    x = torch.rand(2, 3, 64, 64)
    points, labels = torch.tensor([[[3.0, 60.0]], [[33.5, 12.0]]]), torch.tensor([[1], [0]])
    for got, want in zip(rebuilt(x, points, labels), model(x, points, labels)):
        assert torch.equal(got, want)


def test_tiny_sam_shapes_multimask_boxes_and_masks(tiny):
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    points = torch.tensor([[[4.0, 5.0], [20.0, 21.0]], [[31.0, 0.0], [0.0, 0.0]], [[16.0, 16.0], [8.0, 9.5]]])
    labels = torch.tensor([[1, 0], [1, -1], [1, 1]])
    logits, iou_pred = tiny(images, points, labels)
    assert logits.shape == (3, 3, 32, 32) and iou_pred.shape == (3, 3)
    single, single_iou = tiny(images, points, labels, multimask_output=False)
    assert single.shape == (3, 1, 32, 32) and single_iou.shape == (3, 1)
    boxes = torch.tensor([[0.0, 0.0, 10.0, 12.0], [5.0, 5.0, 32.0, 32.0], [2.0, 3.0, 2.0, 30.0]])
    low_res, _ = tiny.decode_low_res(tiny.embed(images), boxes=boxes)
    assert low_res.shape == (3, 3, 16, 16)
    refined, _ = tiny(images, points, labels, boxes=boxes, mask_inputs=low_res[:, :1], multimask_output=False)
    assert refined.shape == (3, 1, 32, 32)
    assert not torch.allclose(refined, single)  # the box and mask prompts are used
    no_prompt, no_prompt_iou = tiny(images)
    assert no_prompt.shape == (3, 3, 32, 32) and no_prompt_iou.shape == (3, 3)


def test_embed_once_decode_many_equals_forward(tiny):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    points = torch.tensor([[[4.0, 5.0]], [[20.0, 30.0]], [[11.0, 2.0]]])
    labels = torch.ones(3, 1)
    shared = tiny.embed(images[1:])
    logits, iou_pred = tiny.decode(shared, points, labels)
    for k in range(3):
        want_logits, want_iou = tiny(images[1:], points[k:k + 1], labels[k:k + 1])
        assert_close_scaled(logits[k:k + 1], want_logits)
        assert_close_scaled(iou_pred[k:k + 1], want_iou)
    low_res, _ = tiny.decode_low_res(shared, points, labels)
    assert torch.equal(tiny.postprocess_masks(low_res), logits)


def test_to_segment_anything_predictor_equals_tiny_sam(tiny):
    sam = tiny.to_segment_anything()
    predictor = SamPredictor(sam)
    image = uint8_image(2)
    predictor.set_image(image)
    assert_close_scaled(predictor.get_image_embedding(), tiny.embed(as_input(image)))
    cases = [
        dict(point_coords=np.array([[12.0, 20.0]]), point_labels=np.array([1]), multimask_output=True),
        dict(point_coords=np.array([[3.0, 7.0], [25.0, 30.0]]), point_labels=np.array([1, 0]), multimask_output=False),
        dict(box=np.array([2.0, 4.0, 20.0, 31.0]), multimask_output=True),
    ]
    for case in cases:
        masks, iou_pred, low_res = predictor.predict(**case, return_logits=True)
        coords = case.get("point_coords")
        with torch.no_grad():
            got_logits, got_iou = tiny(
                as_input(image),
                None if coords is None else torch.tensor(coords, dtype=torch.float32)[None],
                None if coords is None else torch.tensor(case["point_labels"])[None],
                boxes=torch.tensor(case["box"], dtype=torch.float32)[None] if "box" in case else None,
                multimask_output=case["multimask_output"],
            )
        assert_close_scaled(got_logits[0], masks)
        assert_close_scaled(got_iou[0], iou_pred)
        assert low_res.shape[-1] == tiny.low_res_size
    # and back: segment-anything's weights load into a TinySAM of the same config
    back = TinySAM(**tiny.config)
    back.load_state_dict(sam.state_dict())
    assert torch.equal(back.pixel_mean * 255, sam.pixel_mean)


def test_device_and_dtype_follow_the_model():
    torch.manual_seed(0)
    model = TinySAM(**SMALL).double()
    logits, iou_pred = model(torch.rand(1, 3, 32, 32, dtype=torch.float64), [[[3.0, 4.0]]], [[1]])
    assert logits.dtype == iou_pred.dtype == torch.float64
    meta = TinySAM(**SMALL).to("meta")  # a device without values: shapes and devices only
    embeddings = meta.embed(torch.empty(2, 3, 32, 32, device="meta"))
    assert embeddings.device.type == "meta" and embeddings.shape == (2, 32, 4, 4)
    logits, iou_pred = meta.decode(embeddings)
    assert logits.device.type == iou_pred.device.type == "meta" and logits.shape == (2, 3, 32, 32)
    if torch.cuda.is_available():
        cuda = TinySAM(**SMALL).cuda()
        logits, _ = cuda(torch.rand(1, 3, 32, 32, device="cuda"), torch.tensor([[[3.0, 4.0]]]), torch.ones(1, 1))
        assert logits.device.type == "cuda"
        assert cuda.to_segment_anything().pixel_mean.device.type == "cuda"


@pytest.mark.parametrize("call,error,match", [
    (lambda m: m(torch.rand(1, 3, 64, 64)), SegeduInputError, "built for 32×32"),
    (lambda m: m(torch.rand(1, 3, 32, 32) * 255), SegeduInputError, "divide by 255"),
    (lambda m: m(torch.zeros(1, 3, 32, 32, dtype=torch.uint8)), SegeduTypeError, "/ 255"),
    (lambda m: m(torch.rand(1, 3, 32, 32, dtype=torch.float64)), SegeduTypeError, "model.double"),
    (lambda m: m(torch.rand(3, 32, 32)), SegeduInputError, r"x\[None\]"),
    (lambda m: m(torch.rand(1, 3, 32, 32), torch.tensor([[[0.2, 0.5]]]) * 100, torch.ones(1, 1)),
     SegeduInputError, "inside the 32×32"),
    (lambda m: m(torch.rand(1, 3, 32, 32), torch.tensor([[[0.2, 1.5]]]) * 100, torch.ones(1, 1)),
     SegeduInputError, "range from 20 to 150"),
    (lambda m: m(torch.rand(1, 3, 32, 32), torch.tensor([[[-1.0, 3.0]]]), torch.ones(1, 1)),
     SegeduInputError, "pixels inside"),
    (lambda m: m(torch.rand(1, 3, 32, 32), torch.tensor([[[3.0, 3.0]]]), None), SegeduInputError, "point_labels"),
    (lambda m: m(torch.rand(1, 3, 32, 32), torch.tensor([[[3.0, 3.0]]]), torch.tensor([[2]])),
     SegeduInputError, r"-1 \(padding\)"),
    (lambda m: m(torch.rand(1, 3, 32, 32), torch.tensor([[3.0, 3.0]]), torch.tensor([[1]])),
     SegeduInputError, r"point_coords\[None\]"),
    (lambda m: m(torch.rand(1, 3, 32, 32), boxes=torch.tensor([[10.0, 2.0, 4.0, 8.0]])), SegeduInputError, "xywh"),
    (lambda m: m(torch.rand(1, 3, 32, 32), boxes=torch.tensor([[0.0, 0.0, 40.0, 8.0]])), SegeduInputError, "clamp"),
    (lambda m: m(torch.rand(1, 3, 32, 32), mask_inputs=torch.zeros(1, 1, 32, 32)), SegeduInputError,
     r"\(B, 1, 16, 16\)"),
    (lambda m: m(torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 2), torch.ones(2, 1), boxes=torch.zeros(1, 4)),
     SegeduInputError, "same batch size"),
    (lambda m: m.decode(m.embed(torch.rand(2, 3, 32, 32)), torch.zeros(3, 1, 2), torch.ones(3, 1)),
     SegeduInputError, "multiple of the"),
    (lambda m: m.decode(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 2), torch.ones(1, 1)),
     SegeduInputError, r"model.embed\(images\)"),
    (lambda m: m.decode(m.embed(torch.rand(1, 3, 32, 32)).double(), torch.zeros(1, 1, 2), torch.ones(1, 1)),
     SegeduTypeError, "model.double"),
])
def test_tiny_sam_errors_name_the_fix(tiny, call, error, match):
    with pytest.raises(error, match=match):
        call(tiny)


def test_tiny_sam_constructor_errors_name_the_fix():
    with pytest.raises(SegeduInputError, match="image_size=40"):
        TinySAM(image_size=36, patch_size=8)
    with pytest.raises(SegeduInputError, match="decoder_heads"):
        TinySAM(prompt_dim=24, decoder_heads=8)
    with pytest.raises(SegeduInputError, match="divide it by 255"):
        TinySAM(pixel_mean=(123.675, 116.28, 103.53))
