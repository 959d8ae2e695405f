"""segedu.models.unet: center_crop against torchvision, the paper's size arithmetic against real forward
shapes, the size errors, ResNetUNet against torchvision's resnet18, encoder transfer, and devices.

Models are built with tiny widths (base_channels 1 to 4) so that the file runs in seconds on a CPU.
"""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
import torchvision.transforms.functional as TF
import torchvision.transforms.v2.functional as TF2
from torch import nn

import segedu.models
from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.models import ResNetUNet, SegmentationModel, UNet, center_crop
from segedu.models.blocks import DoubleConv

# figure 1 of Ronneberger et al. (2015), in order: contracting path, bottom, expanding path
PAPER_SIZES = [572, 570, 568, 284, 282, 280, 140, 138, 136, 68, 66, 64, 32, 30, 28,
               56, 54, 52, 104, 102, 100, 200, 198, 196, 392, 390, 388]  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------------
# center_crop
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("in_hw", [(10, 10), (11, 9), (8, 13), (7, 7), (12, 15)])
@pytest.mark.parametrize("size", [4, (3, 5), (5, 2), [6], (7, 7), 1])
def test_center_crop_equals_torchvision(in_hw, size):
    x = torch.arange(2 * 3 * in_hw[0] * in_hw[1]).reshape(2, 3, *in_hw)
    target = (size, size) if isinstance(size, int) else (tuple(size) * 2 if len(size) == 1 else size)
    if target[0] > in_hw[0] or target[1] > in_hw[1]:
        with pytest.raises(SegeduInputError, match="must not be larger"):
            center_crop(x, size)
        return
    ours = center_crop(x, size)
    torch.testing.assert_close(ours, TF.center_crop(x, size))
    torch.testing.assert_close(ours, TF2.center_crop(x, list(target)))


@pytest.mark.parametrize("diff", range(0, 8))
def test_center_crop_odd_differences_like_torchvision(diff):
    x = torch.arange(20 + diff, dtype=torch.float64).reshape(1, 20 + diff).expand(20 + diff, -1)
    torch.testing.assert_close(center_crop(x, 20), TF.center_crop(x, [20]))


def test_center_crop_accepts_torch_size_and_is_a_view():
    skip = torch.randn(1, 4, 17, 18)
    up = torch.randn(1, 4, 12, 12)
    out = center_crop(skip, up.shape[-2:])
    assert out.shape == (1, 4, 12, 12)
    assert out._base is skip  # a view, no copy


def test_center_crop_errors():
    with pytest.raises(SegeduTypeError, match="torch.Tensor"):
        center_crop([[1, 2], [3, 4]], 1)
    with pytest.raises(SegeduInputError, match="at least 2 axes"):
        center_crop(torch.zeros(5), 2)
    with pytest.raises(SegeduInputError, match=r"3×3 window out of a 2×4"):
        center_crop(torch.zeros(2, 4), 3)
    with pytest.raises(SegeduInputError, match="height"):
        center_crop(torch.zeros(4, 4), (0, 2))


# --------------------------------------------------------------------------------------------------
# UNet: structure and sizes
# --------------------------------------------------------------------------------------------------
def test_unet_paper_sizes_from_trace_and_from_forward_hooks():
    model = UNet(1, 2, base_channels=1, padding="valid")
    trace = model.size_trace(572)
    assert [s for _, s in trace] == PAPER_SIZES + [388]  # the "output" entry repeats the last conv
    assert model.output_size(572) == 388
    # the same numbers, measured: every conv and pool output, and every up-convolution output
    seen = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: seen.append(out.shape[-1]))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.ConvTranspose2d)) and m is not model.head
    ]
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 572, 572))
    for h in hooks:
        h.remove()
    assert out.shape == (1, 2, 388, 388)
    assert [572] + seen == PAPER_SIZES


def test_unet_paper_channels():
    with torch.device("meta"):  # structure only: skip drawing 31M initial weights
        model = UNet(1, 2, padding="valid")  # the paper's widths: 64 ... 1024
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs[:10:2]] == [64, 128, 256, 512, 1024]
    ups = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels, u.kernel_size, u.stride) for u in ups] == [
        (1024, 512, (2, 2), (2, 2)),
        (512, 256, (2, 2), (2, 2)),
        (256, 128, (2, 2), (2, 2)),
        (128, 64, (2, 2), (2, 2)),
    ]
    assert all(c.padding == (0, 0) for c in convs)
    assert model.head.kernel_size == (1, 1) and model.head.out_channels == 2
    # 23 convolutional layers in the paper: 18 3×3, 4 up-convolutions, 1 1×1
    assert len(convs) + len(ups) == 23


def test_unet_defaults_are_the_paper_network_572_to_388():
    """COURSE.md: UNet(padding="valid") with the defaults (64 channels, depth 4) maps 572 to 388.
    On the meta device the forward computes shapes only, so the full-width network costs nothing."""
    with torch.device("meta"):  # built on meta too: no 31M random weights to draw
        model = UNet(1, 2, padding="valid")
        same = UNet(1, 2)  # default padding="same": output size = input size
    assert (model.base_channels, model.depth) == (64, 4)
    assert model(torch.zeros(1, 1, 572, 572, device="meta")).shape == (1, 2, 388, 388)
    assert same(torch.zeros(1, 1, 256, 192, device="meta")).shape == (1, 2, 256, 192)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [188, 300, 333])
def test_unet_valid_output_sizes_agree_with_forward(depth, size):
    model = UNet(1, 1, base_channels=1, depth=depth, padding="valid")
    x = torch.zeros(1, 1, size, size)
    if not model.valid_size(size):
        with pytest.raises(SegeduInputError, match="nearest sizes that work"):
            model(x)
        return
    with torch.no_grad():
        assert model(x).shape[-1] == model.output_size(size)


def test_unet_valid_sizes_are_the_formula():
    model = UNet(1, 1, base_channels=1, padding="valid")
    valid = [s for s in range(1, 700) if model.valid_size(s)]
    assert valid == [16 * b + 124 for b in range(4, 36)]
    assert model.valid_size(572) and not model.valid_size(570)
    assert model.nearest_valid_sizes(570) == (556, 572)
    assert model.nearest_valid_sizes(100) == (None, 188)


@pytest.mark.parametrize("hw", [(16, 16), (32, 48), (64, 16)])
@pytest.mark.parametrize("depth", [1, 3, 4])
def test_unet_same_padding_keeps_size(hw, depth):
    h, w = hw[0] * 2 ** max(depth - 4, 0), hw[1] * 2 ** max(depth - 4, 0)
    model = UNet(3, 5, base_channels=2, depth=depth)
    assert model.output_stride == 2**depth
    with torch.no_grad():
        out = model(torch.randn(2, 3, h, w))
    assert out.shape == (2, 5, h, w)
    assert model.size_trace(h)[-1] == ("output", h)


def test_unet_size_error_before_torch_cat():
    model = UNet(1, 2, base_channels=2)
    with pytest.raises(SegeduInputError) as err:
        model(torch.zeros(1, 1, 100, 64))
    msg = str(err.value)
    assert "multiples of 16" in msg and "100×64" in msg and "96 and 112" in msg
    assert "torch.cat" not in msg and "Sizes of tensors" not in msg
    # the suggested pad works
    pad = re.search(r"pad\(x, \((\d+), (\d+), (\d+), (\d+)\)\)", msg)
    padded = torch.nn.functional.pad(torch.zeros(1, 1, 100, 64), tuple(int(g) for g in pad.groups()))
    assert model(padded).shape[-2:] == (112, 64)
    valid = UNet(1, 2, base_channels=1, padding="valid")
    with pytest.raises(SegeduInputError, match=r"556 and 572 \(height\)") as err:
        valid(torch.zeros(1, 1, 570, 572))
    assert "odd size" in str(err.value)


def test_unet_other_input_errors_come_from_the_base_class():
    model = UNet(1, 2, base_channels=2)
    assert isinstance(model, SegmentationModel)
    with pytest.raises(SegeduTypeError, match=r"x\.float\(\) / 255"):
        model(torch.zeros(1, 1, 16, 16, dtype=torch.uint8))
    with pytest.raises(SegeduInputError, match=r"x\[None\]"):
        model(torch.zeros(1, 16, 16))
    with pytest.raises(SegeduInputError, match="in_channels=1"):
        model(torch.zeros(1, 3, 16, 16))
    with pytest.raises(SegeduInputError, match="padding"):
        UNet(1, 2, padding="full")
    with pytest.raises(SegeduInputError, match="depth"):
        UNet(1, 2, depth=0)


@pytest.mark.parametrize("build", [lambda: UNet(1, 2, base_channels=2, depth=2), lambda: ResNetUNet(2, in_channels=1)])
def test_float64_model_gives_float64_and_mismatches_name_the_fix(build):
    model = build().eval()
    x = torch.rand(1, 1, 32, 32, dtype=torch.float64)
    with pytest.raises(SegeduTypeError, match=r"model\.double\(\)"):
        model(x)  # no silent cast of the input down to float32
    with torch.no_grad():
        out64 = model.double()(x)
        out32 = model.float()(x.float())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, atol=1e-4, rtol=1e-4)
    with pytest.raises(SegeduInputError, match=r"model\.to\(x\.device\)"):
        model(torch.zeros(1, 1, 32, 32, device="meta"))


def test_unet_uses_doubleconv_blocks_and_trains_a_step():
    torch.manual_seed(0)
    model = UNet(1, 1, base_channels=2, depth=2)
    assert isinstance(model.inc, DoubleConv)
    x = torch.randn(2, 1, 16, 16)
    y = (x > 0).float()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(2):
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert losses[1] < losses[0]


def test_registered_in_segedu_models():
    assert segedu.models.UNet is UNet and segedu.models.center_crop is center_crop
    assert segedu.models.ResNetUNet is ResNetUNet
    assert "base_channels=4" in repr(UNet(1, 2, base_channels=4))


# --------------------------------------------------------------------------------------------------
# ResNetUNet
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet_unet():
    torch.manual_seed(0)
    return ResNetUNet(num_classes=3).eval()


def test_resnet_unet_shapes_and_encoder_is_torchvision_resnet18(resnet_unet):
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        out = resnet_unet(x)
        assert out.shape == (1, 3, 64, 96)
        # the encoder's deepest map equals torchvision's resnet18 up to layer4 with the same weights
        reference = torchvision.models.resnet18(weights=None).eval()
        reference.load_state_dict(resnet_unet.encoder_state_dict(), strict=False)
        r = reference
        expected = r.layer4(r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x))))))))
        torch.testing.assert_close(resnet_unet.encoder(x)[-1], expected)
    assert [f.shape[-1] for f in resnet_unet.encoder(x)] == [48, 24, 12, 6, 3]
    with pytest.raises(SegeduInputError, match="multiples of 32"):
        resnet_unet(torch.randn(1, 3, 48, 64))


def test_resnet_unet_loads_a_torchvision_state_dict_and_transfers(resnet_unet):
    torch.manual_seed(1)
    tv = torchvision.models.resnet18(weights=None)
    model = ResNetUNet(num_classes=2)
    model.load_encoder_state_dict(tv.state_dict())  # fc.* dropped
    torch.testing.assert_close(model.encoder.layer3[0].conv1.weight, tv.layer3[0].conv1.weight)
    model.load_encoder_state_dict(resnet_unet.encoder_state_dict())
    for a, b in zip(model.encoder.state_dict().values(), resnet_unet.encoder.state_dict().values()):
        torch.testing.assert_close(a, b)
    grey = ResNetUNet(num_classes=2, in_channels=1)
    assert grey(torch.zeros(2, 1, 32, 32)).shape == (2, 2, 32, 32)
    with pytest.raises(SegeduInputError, match="adapt_in_channels=True"):
        grey.load_encoder_state_dict(resnet_unet.encoder_state_dict())
    # RGB-pretrained encoder into a grey model: a grey image gives the features of its RGB repeat
    grey.load_encoder_state_dict(resnet_unet.encoder_state_dict(), adapt_in_channels=True)
    grey.eval()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            grey.encoder(x)[-1], resnet_unet.encoder(x.expand(-1, 3, -1, -1))[-1], atol=1e-4, rtol=1e-4
        )


def test_resnet_unet_freeze_encoder():
    model = ResNetUNet(num_classes=1)
    model.freeze_encoder()
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())
    model(torch.randn(2, 3, 32, 32)).mean().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    model.freeze_encoder(False)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_resnet_unet_weights_switch_is_explicit(monkeypatch):
    calls = []
    real = torchvision.models.resnet18

    def spy(*args, weights=None, **kwargs):
        calls.append(weights)
        return real(weights=None, **kwargs)

    monkeypatch.setattr(torchvision.models, "resnet18", spy)
    ResNetUNet(num_classes=2)
    assert calls == [None]  # no weights unless asked: nothing is downloaded
    ResNetUNet(num_classes=2, weights="imagenet", in_channels=1)
    assert calls[-1] == torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    with pytest.raises(SegeduInputError, match="weights"):
        ResNetUNet(num_classes=2, weights="coco")


# --------------------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, x_shape",
    [
        (lambda: UNet(1, 2, base_channels=2, depth=2), (1, 1, 16, 16)),
        (lambda: UNet(1, 2, base_channels=1, depth=1, padding="valid"), (1, 1, 20, 20)),
        (lambda: ResNetUNet(num_classes=2), (2, 3, 32, 32)),
    ],
)
def test_tensors_follow_the_device(build, x_shape):
    devices = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        model = build().to(device)
        out = model(torch.zeros(x_shape, device=device))
        assert out.device.type == device
        assert all(p.device.type == device for p in model.parameters())
