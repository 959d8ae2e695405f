"""segedu.models.segnet: shapes, parameter counts, the unpooling wiring, and what the decoder keeps.

Peers: ``F.max_pool2d(..., return_indices=True)`` and ``F.max_unpool2d`` for the wiring, and
torchvision's ``vgg16_bn`` for the parameter count of the paper's encoder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.models import SegNet
from segedu.models.segnet import (
    DecoderStage,
    EncoderStage,
    decoder_stage,
    kept_bytes,
    kept_from_encoder,
    segnet_channels,
)
from segedu.training import set_seed, train_segmentation

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("depth, size, convs", [(1, (2, 6), 1), (2, (8, 12), 2), (3, (16, 8), (1, 2, 1)), (4, (32, 48), None)])
def test_logits_have_the_input_size(depth, size, convs):
    set_seed(0)
    model = SegNet(in_channels=2, num_classes=3, base_channels=4, depth=depth, convs=convs)
    out = model(torch.rand(2, 2, *size))
    assert out.shape == (2, 3, *size) and out.dtype == torch.float32


def test_float64_model_gives_float64_logits():
    model = SegNet(1, 2, base_channels=2, depth=2, convs=1).double()
    assert model(torch.rand(1, 1, 8, 8, dtype=torch.float64)).dtype == torch.float64


def test_parameter_count_by_hand():
    # SegNet(3 -> 5 classes, b=4, depth 3, convs (1, 2, 1)): channels 4, 8, 16.
    # A 3×3 conv without bias has 9·c_in·c_out weights; its BN has 2·c_out.
    encoder = (9 * 3 * 4 + 2 * 4) + (9 * 4 * 8 + 2 * 8) + (9 * 8 * 8 + 2 * 8) + (9 * 8 * 16 + 2 * 16)
    # decoder i mirrors encoder i: convs[i] convs, all keep c_i but the last, which goes to c_{i-1}
    decoder = (9 * 16 * 8 + 2 * 8) + (9 * 8 * 8 + 2 * 8) + (9 * 8 * 4 + 2 * 4) + (9 * 4 * 4 + 2 * 4)
    classifier = 4 * 5 + 5
    model = SegNet(3, 5, base_channels=4, depth=3, convs=(1, 2, 1))
    assert n_params(model.encoder) == encoder
    assert n_params(model.decoder) == decoder
    assert n_params(model) == encoder + decoder + classifier


def test_paper_encoder_has_vgg16_bn_parameters():
    """The encoder is VGG16's 13 convolutions: torchvision's vgg16_bn features minus the conv biases."""
    vgg = pytest.importorskip("torchvision.models.vgg")
    with torch.device("meta"):  # shapes only: no memory, no random initialisation
        features = vgg.make_layers(vgg.cfgs["D"], batch_norm=True)  # vgg16_bn(weights=None).features
        model = SegNet(3, 12, base_channels=64, depth=5)
    conv_biases = sum(m.bias.numel() for m in features if isinstance(m, nn.Conv2d))
    assert model.channels == [64, 128, 256, 512, 512] == segnet_channels(64, 5)
    assert model.convs == (2, 2, 3, 3, 3)
    assert n_params(model.encoder) == n_params(features) - conv_biases
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    vgg_convs = [m for m in features if isinstance(m, nn.Conv2d)]
    assert [c.weight.shape for c in convs] == [c.weight.shape for c in vgg_convs]


def _recorded_forward(model, x):
    """Run model(x) and record each encoder stage's pre-pool features and each decoder stage's inputs/output."""
    feats, dec_in, dec_out = {}, {}, {}
    handles = []
    for i, stage in enumerate(model.encoder):
        handles.append(stage.convs.register_forward_hook(lambda m, a, out, i=i: feats.__setitem__(i, out.detach().clone())))

    def record(i):
        def hook(module, args, out):
            dec_in[i], dec_out[i] = args, out  # returns None: the output is left unchanged
        return hook

    for i, stage in enumerate(model.decoder):
        handles.append(stage.register_forward_hook(record(i)))
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return logits, feats, dec_in, dec_out


@pytest.mark.parametrize("seed", range(3))
def test_each_decoder_stage_unpools_with_its_own_encoder_stages_indices_like_torch(seed):
    set_seed(seed)
    model = SegNet(3, 4, base_channels=4, depth=3, convs=(1, 2, 1)).eval()
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(seed))
    _, feats, dec_in, dec_out = _recorded_forward(model, x)
    for i in range(model.depth):
        values, indices = F.max_pool2d(feats[i], 2, return_indices=True)
        x_in, given_indices, size = dec_in[i]
        torch.testing.assert_close(given_indices, indices, rtol=0, atol=0)  # the matching stage's indices
        assert tuple(size) == tuple(feats[i].shape[-2:])
        expected = model.decoder[i].convs(F.max_unpool2d(x_in, indices, 2, output_size=size))
        torch.testing.assert_close(dec_out[i], expected)
    # the deepest decoder stage unpools the deepest pool's own values
    deepest_values, _ = F.max_pool2d(feats[model.depth - 1], 2, return_indices=True)
    torch.testing.assert_close(dec_in[model.depth - 1][0], deepest_values)


def test_whole_forward_equals_a_torch_only_reimplementation():
    set_seed(4)
    model = SegNet(1, 3, base_channels=4, depth=2, convs=2).eval()
    x = torch.rand(3, 1, 12, 8, generator=torch.Generator().manual_seed(4))
    kept, sizes, h = [], [], x
    for stage in model.encoder:
        h = stage.convs(h)
        sizes.append(h.shape[-2:])
        h, idx = F.max_pool2d(h, 2, return_indices=True)
        kept.append(idx)
    for i in reversed(range(model.depth)):
        h = model.decoder[i].convs(F.max_unpool2d(h, kept[i], 2, output_size=sizes[i]))
    torch.testing.assert_close(model(x), model.classifier(h))


def test_swapped_indices_change_the_output():
    """The decoder really depends on the indices (a test of the wiring that can fail)."""
    set_seed(1)
    model = SegNet(1, 2, base_channels=2, depth=1, convs=1).eval()
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    pooled, indices, size = model.encoder[0](x)
    right = model.decoder[0](pooled, indices, size)
    wrong = model.decoder[0](pooled, torch.zeros_like(indices), size)
    assert not torch.allclose(right, wrong)


def test_decoder_stage_function_places_values_then_applies_the_layers():
    x = torch.rand(2, 3, 8, 10, generator=torch.Generator().manual_seed(2))
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    layers = nn.Conv2d(3, 2, 3, padding=1)
    got = decoder_stage(values, indices, (8, 10), layers)
    torch.testing.assert_close(got, layers(F.max_unpool2d(values, indices, 2, output_size=(8, 10))))


def test_decoder_stage_handles_odd_sizes_through_output_size():
    x = torch.rand(1, 2, 9, 7)
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    out = decoder_stage(values, indices, (9, 7), nn.Identity())
    torch.testing.assert_close(out, F.max_unpool2d(values, indices, 2, output_size=(9, 7)))


def test_stage_modules():
    pooled, indices, size = EncoderStage(3, 8, num_convs=2)(torch.rand(2, 3, 10, 6))
    assert pooled.shape == indices.shape == (2, 8, 5, 3) and indices.dtype == torch.int64 and size == (10, 6)
    stage = DecoderStage(8, 4, num_convs=3)
    assert [m.out_channels for m in stage.modules() if isinstance(m, nn.Conv2d)] == [8, 8, 4]
    assert stage(pooled, indices, size).shape == (2, 4, 10, 6)


# -- what the decoder keeps ----------------------------------------------------------------------


def test_kept_tensors_are_the_indices_of_every_stage():
    set_seed(0)
    model = SegNet(3, 2, base_channels=4, depth=3, convs=1).eval()
    x = torch.rand(2, 3, 32, 16)
    _, feats, _, _ = _recorded_forward(model, x)
    kept = kept_from_encoder(model, x)
    expected = [F.max_pool2d(feats[i], 2, return_indices=True)[1] for i in reversed(range(3))]
    assert len(kept) == 3
    for got, want in zip(kept, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # int64 indices: N · c_i · (H / 2^(i+1)) · (W / 2^(i+1)) · 8 bytes, channels 4, 8, 16
    assert kept_bytes(model, x) == 8 * 2 * (4 * 16 * 8 + 8 * 8 * 4 + 16 * 4 * 2)


class _ConcatSkips(nn.Module):
    """A minimal U-Net: two skips concatenated (channels-first, skip first) after upsampling."""

    def __init__(self):
        super().__init__()
        self.enc1, self.enc2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1)
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.up2, self.dec2 = nn.ConvTranspose2d(8, 8, 2, stride=2), nn.Conv2d(16, 4, 3, padding=1)
        self.up1, self.dec1 = nn.ConvTranspose2d(4, 4, 2, stride=2), nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x):
        s1 = torch.relu(self.enc1(x))
        s2 = torch.relu(self.enc2(F.max_pool2d(s1, 2)))
        b = self.mid(F.max_pool2d(s2, 2))
        d2 = self.dec2(torch.cat([s2, self.up2(b)], dim=1))
        return self.dec1(torch.cat([self.up1(d2), s1], dim=1))  # the order of operands does not matter


def test_kept_tensors_of_a_concatenating_network_are_its_skips():
    model = _ConcatSkips()
    x = torch.rand(2, 1, 16, 16)
    kept = kept_from_encoder(model, x)
    with torch.no_grad():
        s1 = torch.relu(model.enc1(x))
        s2 = torch.relu(model.enc2(F.max_pool2d(s1, 2)))
    assert [tuple(t.shape) for t in kept] == [tuple(s2.shape), tuple(s1.shape)]
    torch.testing.assert_close(kept[0], s2)
    torch.testing.assert_close(kept[1], s1)
    assert kept_bytes(model, x) == 4 * (s1.numel() + s2.numel())


def test_kept_tensors_work_for_torchs_own_unpooling():
    class TorchUnpool(nn.Module):
        def forward(self, x):
            y, idx = F.max_pool2d(x, 2, return_indices=True)
            return F.max_unpool2d(y * 2, idx, 2)

    x = torch.rand(1, 3, 4, 4)
    (kept,) = kept_from_encoder(TorchUnpool(), x)
    torch.testing.assert_close(kept, F.max_pool2d(x, 2, return_indices=True)[1])


def test_kept_from_encoder_refuses_a_non_module():
    with pytest.raises(SegeduTypeError, match="nn.Module"):
        kept_from_encoder(lambda x: x, torch.zeros(1))


# -- devices and training ------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_training_follows_the_device(device):
    from segedu.data import shapes_dataset

    set_seed(0)
    model = SegNet(3, 3, base_channels=4, depth=2, convs=1)
    seen = []
    model.decoder[0].register_forward_pre_hook(lambda m, args: seen.append({a.device.type for a in args[:2]}))
    history = train_segmentation(model, shapes_dataset(8, size=(16, 16), num_classes=3, seed=0), epochs=1,
                                 batch_size=4, device=device, progress=False)
    assert len(history["train_loss"]) == 1 and np.isfinite(history["train_loss"][0])
    assert seen and all(devices == {device} for devices in seen)
    assert all(p.device.type == device for p in model.parameters())


# -- bad input -----------------------------------------------------------------------------------


def test_size_not_divisible_by_two_to_the_depth_names_the_padding():
    model = SegNet(3, 2, base_channels=2, depth=3, convs=1)
    with pytest.raises(SegeduInputError, match=r"multiples of 8 .* got 20×16\. Pad the image to 24×16"):
        model(torch.rand(1, 3, 20, 16))


def test_integer_image_is_refused_with_the_fix():
    with pytest.raises(SegeduTypeError, match=r"x.float\(\) / 255"):
        SegNet(3, 2, base_channels=2, depth=1, convs=1)(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"convs": (1, 2)}, SegeduInputError, r"3 for depth=3, but got 2"),
    ({"convs": "2"}, SegeduTypeError, r"convs must be an int"),
    ({"depth": 0}, SegeduInputError, r"depth must be at least 1"),
    ({"num_classes": 1}, SegeduInputError, r"num_classes must be at least 2"),
    ({"base_channels": 2.0}, SegeduTypeError, r"base_channels must be an int"),
])
def test_bad_arguments(kwargs, error, message):
    arguments = {"in_channels": 3, "num_classes": 2, "base_channels": 2, "depth": 3, **kwargs}
    with pytest.raises(error, match=message):
        SegNet(**arguments)


def test_decoder_stage_refuses_indices_of_another_stage():
    x = torch.rand(1, 2, 8, 8)
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    deeper_values, deeper_indices = F.max_pool2d(values, 2, return_indices=True)
    with pytest.raises(SegeduInputError, match="same encoder stage"):
        decoder_stage(values, deeper_indices, (8, 8), nn.Identity())
