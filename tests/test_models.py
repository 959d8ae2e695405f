"""segedu.models (the SegmentationModel base, FCN, blocks) and segedu.training: shapes, the bilinear kernel against
F.interpolate, convolutionalisation, seeded training and evaluation against segedu.metrics.

Models are built with small widths so that the whole file runs in a few seconds on a CPU.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from segedu import metrics
from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.data import shapes_dataset
import segedu.models
from segedu.models import (
    FCN,
    DoubleConv,
    SegmentationModel,
    VGGStage,
    bilinear_kernel,
    conv_bn_relu,
    fcn8s,
    fcn16s,
    fcn32s,
    fuse_skips,
)
from segedu.models.fcn import linear_to_conv
from segedu.training import as_dataset, evaluate, pick_device, set_seed, train_segmentation


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: one thread is as fast, and is immune to oversubscription on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------------
def test_blocks_shapes():
    x = torch.rand(2, 3, 16, 20)
    assert tuple(conv_bn_relu(3, 5)(x).shape) == (2, 5, 16, 20)
    assert tuple(conv_bn_relu(3, 5, kernel_size=3, dilation=2)(x).shape) == (2, 5, 16, 20)
    assert tuple(DoubleConv(3, 6)(x).shape) == (2, 6, 16, 20)
    assert tuple(DoubleConv(3, 6, padding=0)(x).shape) == (2, 6, 12, 16)
    assert tuple(VGGStage(3, 4, num_convs=3)(x).shape) == (2, 4, 8, 10)
    convs = [m for m in VGGStage(3, 4, num_convs=3) if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and all(c.bias is None for c in convs)


# --------------------------------------------------------------------------------------------------
# bilinear_kernel
# --------------------------------------------------------------------------------------------------
def test_bilinear_kernel_values():
    w = bilinear_kernel(1, 1, 4)
    tent = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(w[0, 0], torch.outer(tent, tent))
    w = bilinear_kernel(1, 1, 3)  # odd: centre 1, factor 2
    tent = torch.tensor([0.5, 1.0, 0.5])
    torch.testing.assert_close(w[0, 0], torch.outer(tent, tent))


@pytest.mark.parametrize("in_ch, out_ch, k", [(3, 3, 4), (2, 5, 16), (4, 1, 5), (1, 1, 1)])
def test_bilinear_kernel_layout(in_ch, out_ch, k):
    w = bilinear_kernel(in_ch, out_ch, k)
    assert w.shape == (in_ch, out_ch, k, k) and w.dtype == torch.float32
    for i in range(in_ch):
        for j in range(out_ch):
            if i == j:
                assert torch.equal(w[i, j], w[0, 0]) and w[i, j].max() > 0
                assert torch.equal(w[i, j], w[i, j].T) and torch.equal(w[i, j], w[i, j].flip(0))
            else:
                assert not w[i, j].any(), f"off-diagonal channel pair ({i}, {j}) must be zero"
    assert bilinear_kernel(2, 2, 4, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_kernel_upsamples_like_interpolate(factor):
    torch.manual_seed(factor)
    up = nn.ConvTranspose2d(3, 3, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(3, 3, 2 * factor))
    x = torch.rand(2, 3, 5, 7)
    got = up(x)
    assert got.shape == (2, 3, 5 * factor, 7 * factor)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    b = factor // 2  # the zero padding affects only a border of factor/2 pixels
    torch.testing.assert_close(got[..., b:-b, b:-b], ref[..., b:-b, b:-b], rtol=1e-5, atol=1e-6)
    const = up(torch.full((1, 3, 4, 4), 2.5))
    torch.testing.assert_close(const[..., b:-b, b:-b], torch.full_like(const[..., b:-b, b:-b], 2.5))


def test_bilinear_kernel_errors():
    with pytest.raises(SegeduInputError, match="k must be at least 1"):
        bilinear_kernel(1, 1, 0)
    with pytest.raises(SegeduTypeError, match="in_ch must be an int"):
        bilinear_kernel(1.5, 1, 4)
    with pytest.raises(SegeduTypeError, match="dtype must be a floating torch dtype"):
        bilinear_kernel(1, 1, 4, dtype=torch.int64)


# --------------------------------------------------------------------------------------------------
# convolutionalisation
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_to_conv_identity(bias):
    torch.manual_seed(0)
    c, h, w, m = 4, 3, 5, 6
    fc = nn.Linear(c * h * w, m, bias=bias)
    conv = linear_to_conv(fc, c, (h, w))
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (h, w) and (conv.bias is not None) == bias
    x = torch.randn(2, c, h, w)
    torch.testing.assert_close(conv(x).flatten(1), fc(x.flatten(1)), rtol=1e-5, atol=1e-5)
    # On a larger input the convolution slides: each output position is the FC layer on a window.
    big = torch.randn(1, c, h + 4, w + 2)
    out = conv(big)
    assert out.shape == (1, m, 5, 3)
    for i, j in [(0, 0), (4, 2), (2, 1)]:
        window = big[:, :, i : i + h, j : j + w]
        torch.testing.assert_close(out[:, :, i, j], fc(window.flatten(1)), rtol=1e-5, atol=1e-5)


def test_linear_to_conv_square_and_errors():
    fc = nn.Linear(2 * 3 * 3, 4)
    assert linear_to_conv(fc, 2, 3).kernel_size == (3, 3)
    with pytest.raises(SegeduInputError, match=re.escape("in_channels * h * w = 2 * 4 * 4 = 32")):
        linear_to_conv(fc, 2, 4)
    with pytest.raises(SegeduTypeError, match="must be an nn.Linear"):
        linear_to_conv(nn.Conv2d(2, 4, 3), 2, 3)


# --------------------------------------------------------------------------------------------------
# SegmentationModel: the base class and its input check
# --------------------------------------------------------------------------------------------------
class _Toy(SegmentationModel):
    """A generic subclass: 1 input channel, output stride 4, 3 classes."""

    def __init__(self):
        super().__init__(in_channels=1, num_classes=3, output_stride=4)
        self.down = nn.Conv2d(1, 3, kernel_size=4, stride=4)

    def forward(self, x):
        self.check_input(x)
        return F.interpolate(self.down(x), scale_factor=4.0)


def test_base_is_generic():
    toy = _Toy()
    assert (toy.in_channels, toy.num_classes, toy.output_stride) == (1, 3, 4)
    for size in [(4, 4), (8, 12), (12, 20)]:
        assert toy(torch.rand(2, 1, *size)).shape == (2, 3, *size)
    assert toy(torch.rand(1, 1, 8, 8, dtype=torch.float64).float()).dtype == torch.float32
    assert "output_stride=4" in repr(_Toy()) or "output_stride=4" in SegmentationModel.extra_repr(toy)


# (input, error class, pattern naming the problem, pattern naming the fix)
_TOY_CASES = {
    "numpy": (np.zeros((8, 8), dtype=np.float32), SegeduTypeError,
              r"^_Toy expects a torch\.Tensor of shape \(N, 1, H, W\), but got a numpy\.ndarray of shape \(8, 8\)",
              re.escape("torch.from_numpy(img).float()[None, None]")),
    "list": ([[0.0] * 8] * 8, SegeduTypeError, r"but got a list", re.escape("torch.from_numpy(")),
    "no batch axis": (torch.rand(1, 8, 8), SegeduInputError, re.escape("got 3-D input of shape (1, 8, 8)"),
                      re.escape("Add a batch axis with x[None]")),
    "grey batch without channel": (torch.rand(2, 8, 8), SegeduInputError, r"3-D input", re.escape("x[:, None]")),
    "2-D grey image": (torch.rand(8, 8), SegeduInputError, r"2-D input", re.escape("x[None, None]")),
    "channels-last": (torch.rand(2, 8, 8, 1), SegeduInputError,
                      re.escape("in_channels=1, but the input has 8 channels (shape (2, 8, 8, 1))"),
                      re.escape("channels-last (N, H, W, C): use x.permute(0, 3, 1, 2)")),
    "colour image": (torch.rand(2, 3, 8, 8), SegeduInputError, r"in_channels=1, but the input has 3 channels",
                     r"convert it to grey .*or build the model with in_channels=3"),
    "height not a multiple": (torch.rand(2, 1, 10, 8), SegeduInputError,
                              r"_Toy needs the input height and width to be multiples of 4 .*but got 10×8",
                              re.escape("Pad the image to 12×8") + ".*"
                              + re.escape("pad(x, (0, 0, 0, 2), mode='reflect')") + ".*" + re.escape("logits[..., :10, :8]")),
    "width not a multiple": (torch.rand(2, 1, 8, 2), SegeduInputError, r"multiples of 4 .*but got 8×2",
                             re.escape("Pad the image to 8×4") + ".*" + re.escape("pad(x, (0, 2, 0, 0))") + r".*:8, :2\]"),
    "empty height": (torch.rand(2, 1, 0, 8), SegeduInputError, r"_Toy got an empty image of size 0×8",
                     r"at least 4×4 pixels"),
    "empty width": (torch.rand(2, 1, 8, 0), SegeduInputError, r"empty image of size 8×0", r"at least 4×4"),
    "uint8": (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), SegeduTypeError,
              r"_Toy expects a floating-point image, but the input has integer dtype torch\.uint8",
              re.escape("x.float() / 255") + ".*0..1"),
    "int64": (torch.zeros(2, 1, 8, 8, dtype=torch.int64), SegeduTypeError, r"integer dtype torch\.int64",
              re.escape("x.float()")),
    "bool": (torch.zeros(2, 1, 8, 8, dtype=torch.bool), SegeduTypeError, r"boolean dtype torch\.bool",
             re.escape("x.float()")),
}


@pytest.mark.parametrize("case", list(_TOY_CASES))
def test_base_error_names_problem_and_fix(case):
    x, error, problem, fix = _TOY_CASES[case]
    with pytest.raises(error) as info:
        _Toy()(x)
    message = str(info.value)
    assert re.search(problem, message), f"{case}: the problem is not named in {message!r}"
    assert re.search(fix, message), f"{case}: the fix is not named in {message!r}"
    # every error is a ValueError or TypeError, so ordinary except clauses keep working
    assert isinstance(info.value, (ValueError, TypeError))


def test_base_pad_fix_works():
    """The padding the message suggests really makes the input valid, and the crop restores the size."""
    toy = _Toy()
    x = torch.rand(1, 1, 10, 7)
    with pytest.raises(SegeduInputError) as info:
        toy(x)
    call = re.search(r"torch\.nn\.functional\.pad\(x, \((\d+), (\d+), (\d+), (\d+)\), mode='reflect'\)", str(info.value))
    assert call, str(info.value)
    padded = F.pad(x, tuple(int(call[i]) for i in range(1, 5)), mode="reflect")
    assert padded.shape[-2:] == (12, 8)
    assert toy(padded)[..., :10, :7].shape == (1, 3, 10, 7)
    # with a pad larger than the image, reflect is impossible: the message suggests plain zero padding
    with pytest.raises(SegeduInputError) as info:
        fcn32s(2, width=2)(torch.rand(1, 3, 10, 64))
    assert "pad(x, (0, 0, 0, 22))" in str(info.value) and "reflect" not in str(info.value)


def test_base_constructor_checks():
    with pytest.raises(SegeduInputError, match="output_stride must be at least 1"):
        SegmentationModel(in_channels=1, num_classes=2, output_stride=0)
    with pytest.raises(SegeduTypeError, match="in_channels must be an int"):
        SegmentationModel(in_channels=1.0, num_classes=2)
    with pytest.raises(TypeError):  # keyword-only: in_channels and num_classes cannot be swapped silently
        SegmentationModel(3, 2)
    plain = SegmentationModel(in_channels=3, num_classes=1)
    assert plain.output_stride == 1
    plain.check_input(torch.rand(1, 3, 5, 7))  # output_stride 1: any size passes


# --------------------------------------------------------------------------------------------------
# the package: __all__, star import, lazy loading, names of later units
# --------------------------------------------------------------------------------------------------
def test_models_all_resolves_and_star_import():
    assert {"SegmentationModel", "fuse_skips", "FCN", "bilinear_kernel"} <= set(segedu.models.__all__)
    for name in segedu.models.__all__:
        assert getattr(segedu.models, name) is not None, name
    namespace = {}
    exec("from segedu.models import *", namespace)
    assert set(segedu.models.__all__) <= set(namespace)
    assert namespace["fuse_skips"] is segedu.models.fcn.fuse_skips
    for module in ("_base", "fcn", "blocks"):
        mod = __import__(f"segedu.models.{module}", fromlist=["__all__"])
        for name in mod.__all__:
            assert hasattr(mod, name), f"segedu.models.{module}.__all__ lists {name!r}, which does not exist"


def test_models_names_of_later_units(monkeypatch):
    # every planned unit has landed (TinySAM came with unit 10); a hypothetical unit 12 keeps the check
    name, unit = "SAM2", "12"
    monkeypatch.setitem(segedu.models._LATER, name, unit)
    assert "TinySAM" in segedu.models.__all__
    with pytest.raises(AttributeError, match=rf"segedu\.models\.{name} comes with unit {unit}\b"):
        getattr(segedu.models, name)
    assert name not in dir(segedu.models)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchNet'"):
        segedu.models.NoSuchNet


# --------------------------------------------------------------------------------------------------
# FCN
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("size", [(32, 32), (64, 96), (96, 64)])
def test_fcn_output_shape(variant, size):
    model = FCN(num_classes=3, variant=variant, width=4)
    out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size)
    assert out.dtype == torch.float32


def test_fcn_builders_and_options():
    assert [f(5).variant for f in (fcn32s, fcn16s, fcn8s)] == ["32s", "16s", "8s"]
    model = fcn8s(2, in_channels=1, width=2, convs=(1, 1, 2, 2, 3), head_channels=8)
    assert model(torch.rand(1, 1, 64, 32)).shape == (1, 2, 64, 32)
    assert model(torch.rand(1, 1, 64, 32, dtype=torch.float64).float()).shape == (1, 2, 64, 32)
    assert not hasattr(fcn32s(3, width=2), "score_pool4")
    assert not hasattr(fcn16s(3, width=2), "score_pool3")


def test_fcn_initialisation():
    set_seed(0)
    m32 = fcn32s(3, width=4)
    set_seed(0)
    m8 = fcn8s(3, width=4)
    # shared layers get the same initial weights (fair comparison); skip scores start at zero
    for name, p in m32.named_parameters():
        if not name.startswith("upscore"):
            assert torch.equal(p, dict(m8.named_parameters())[name]), name
    assert not m8.score_pool4.weight.any() and not m8.score_pool3.weight.any()
    # final upsampling fixed to bilinear, the 2x ones learned from a bilinear start
    assert not m8.upscore.weight.requires_grad and m8.upscore.kernel_size == (16, 16)
    assert m32.upscore.kernel_size == (64, 64) and m32.upscore.stride == (32, 32)
    assert m8.upscore2.weight.requires_grad and m8.upscore_pool4.weight.requires_grad
    torch.testing.assert_close(m8.upscore2.weight.detach(), bilinear_kernel(3, 3, 4))
    # the fixed, grouped final upsampling computes the same as the full diagonal bilinear weight
    s = torch.randn(2, 3, 2, 3)
    full = F.conv_transpose2d(s, bilinear_kernel(3, 3, 64), stride=32, padding=16)
    torch.testing.assert_close(m32.upscore(s), full, rtol=1e-5, atol=1e-6)


def test_fcn_fuse_matches_formula():
    torch.manual_seed(0)
    model = fcn8s(3, width=4)
    s32, s16, s8 = torch.randn(1, 3, 2, 3), torch.randn(1, 3, 4, 6), torch.randn(1, 3, 8, 12)
    layers = dict(upscore2=model.upscore2, upscore_pool4=model.upscore_pool4, upscore=model.upscore)
    expected = model.upscore(model.upscore_pool4(model.upscore2(s32) + s16) + s8)
    torch.testing.assert_close(fuse_skips(s32, s16, s8, **layers), expected)
    assert fuse_skips(s32, s16, s8, **layers).shape == (1, 3, 64, 96)
    m16 = fcn16s(3, width=4)
    torch.testing.assert_close(fuse_skips(s32, s16, upscore2=m16.upscore2, upscore=m16.upscore),
                               m16.upscore(m16.upscore2(s32) + s16))
    m32 = fcn32s(3, width=4)
    torch.testing.assert_close(fuse_skips(s32, upscore=m32.upscore), m32.upscore(s32))
    # forward is score_maps, then fuse_skips
    x = torch.rand(1, 3, 64, 96)
    for net in (model, m16, m32):
        torch.testing.assert_close(net(x), fuse_skips(*net.score_maps(x), upscore2=getattr(net, "upscore2", None),
                                                      upscore_pool4=getattr(net, "upscore_pool4", None),
                                                      upscore=net.upscore))
    assert m32.score_maps(x)[1:] == (None, None) and m16.score_maps(x)[2] is None
    # each missing piece is named
    with pytest.raises(SegeduInputError, match="pass score16 too"):
        fuse_skips(s32, None, s8, **layers)
    with pytest.raises(SegeduInputError, match="pass upscore=..."):
        fuse_skips(s32, s16, s8, upscore2=model.upscore2, upscore_pool4=model.upscore_pool4)
    with pytest.raises(SegeduInputError, match="needs upscore2"):
        fuse_skips(s32, s16, upscore=model.upscore)
    with pytest.raises(SegeduInputError, match="needs upscore_pool4"):
        fuse_skips(s32, s16, s8, upscore2=model.upscore2, upscore=model.upscore)
    # the encoder exposes pool3, pool4, pool5 at strides 8, 16, 32
    feats = model.encode(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 12), (4, 6), (2, 3)]


def test_fcn_error_messages():
    model = fcn8s(4, width=2)
    assert isinstance(model, SegmentationModel) and model.output_stride == 32
    assert (model.in_channels, model.num_classes) == (3, 4)
    with pytest.raises(SegeduInputError, match=r"FCN needs .*multiples of 32.*got 50×64.*Pad the image to 64×64"):
        model(torch.rand(1, 3, 50, 64))
    with pytest.raises(SegeduInputError, match=r"FCN was built with in_channels=3, but the input has 1 channel\b"):
        model(torch.rand(1, 1, 64, 64))
    with pytest.raises(SegeduInputError, match=r"channels-last.*permute\(0, 3, 1, 2\)"):
        model(torch.rand(1, 64, 64, 3))
    with pytest.raises(SegeduInputError, match=r"Add a batch axis"):
        model(torch.rand(3, 64, 64))
    with pytest.raises(SegeduTypeError, match="floating-point image"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(SegeduInputError, match="variant must be one of '32s', '16s', '8s'"):
        FCN(4, variant="4s")
    with pytest.raises(SegeduInputError, match="num_classes must be at least 2"):
        FCN(1)
    with pytest.raises(SegeduInputError, match="convs must be an int or 5 ints"):
        FCN(3, convs=(1, 2))


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------
def _tiny_data():
    return shapes_dataset(12, size=(32, 32), num_classes=3, seed=5)


def _train_once(seed):
    set_seed(seed)
    model = fcn8s(3, width=2)
    history = train_segmentation(model, _tiny_data(), val_set=_tiny_data(), epochs=1, batch_size=4, lr=1e-2,
                                 seed=seed, device="cpu", progress=False)
    return model, history


def test_training_is_deterministic(capsys):
    model_a, hist_a = _train_once(0)
    model_b, hist_b = _train_once(0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == "", "progress=False must print nothing"
    assert hist_a["train_loss"] == hist_b["train_loss"]
    assert hist_a["val_mean_iou"] == hist_b["val_mean_iou"]
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    _, hist_c = _train_once(1)
    assert hist_c["train_loss"] != hist_a["train_loss"]
    assert set(hist_a) == {"epoch", "train_loss", "seconds", "val_pixel_accuracy", "val_mean_accuracy",
                           "val_mean_iou", "val_frequency_weighted_iou"}
    assert hist_a["epoch"] == [1] and np.isfinite(hist_a["train_loss"][0])
    assert not model_a.training  # left ready for prediction


def test_training_progress_bar_and_ignore_index(capsys):
    images, labels = _tiny_data()
    labels = labels.copy()
    labels[:, :4] = 255
    set_seed(0)
    model = fcn16s(3, width=2)
    hist = train_segmentation(model, (images, labels), epochs=2, batch_size=6, device="cpu", ignore_index=255,
                              progress=True)
    assert len(hist["train_loss"]) == 2 and "val_mean_iou" not in hist
    err = capsys.readouterr().err
    assert "training" in err and "100%" in err  # the tqdm bar goes to stderr
    scores = evaluate(model, (images, labels), num_classes=3, ignore_index=255, return_confusion=True)
    assert scores["confusion_matrix"].sum() == labels.size - 12 * 4 * 32


class _EchoModel(nn.Module):
    """Predicts the class stored in channel 0 of the image: logits are one-hot."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return F.one_hot(x[:, 0].round().long(), self.num_classes).permute(0, 3, 1, 2).float() + self.dummy


def test_evaluate_against_metrics_hand_case():
    target = torch.tensor([[[0, 0], [1, 1]], [[2, 2], [0, 1]]])
    pred = torch.tensor([[[0, 1], [1, 1]], [[2, 0], [0, 2]]])
    images = pred[:, None].float().repeat(1, 3, 1, 1)
    data = TensorDataset(images, target)
    cm = np.array([[2, 1, 0], [0, 2, 1], [1, 0, 1]])  # by hand: rows target, columns prediction
    np.testing.assert_array_equal(metrics.confusion_matrix(pred, target, 3), cm)
    for batch_size in (1, 2):
        scores = evaluate(_EchoModel(3), data, num_classes=3, batch_size=batch_size)
        assert scores == {
            "pixel_accuracy": metrics.pixel_accuracy(cm),
            "mean_accuracy": metrics.mean_accuracy(cm),
            "mean_iou": metrics.mean_iou(cm),
            "frequency_weighted_iou": metrics.frequency_weighted_iou(cm),
        }
    assert scores["pixel_accuracy"] == pytest.approx(5 / 8)
    assert scores["mean_iou"] == pytest.approx((2 / 4 + 2 / 4 + 1 / 3) / 3)
    # num_classes defaults to the logits' channels; the model's mode is restored
    model = _EchoModel(3).train()
    assert evaluate(model, data)["mean_iou"] == scores["mean_iou"] and model.training


def test_training_helpers():
    assert isinstance(pick_device(), torch.device)
    set_seed(7)
    a = (torch.rand(3), np.random.rand(), __import__("random").random())
    set_seed(7)
    b = (torch.rand(3), np.random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    ds = as_dataset(shapes_dataset(2, size=(32, 32)))
    assert ds[0][0].shape == (3, 32, 32) and ds[0][1].dtype == torch.int64
    with pytest.raises(SegeduTypeError, match="torch Dataset or a pair"):
        as_dataset("images")
    with pytest.raises(SegeduInputError, match=r"returned shape \(2, 3, 16\) for labels of shape \(2, 4, 4\)"):
        train_segmentation(nn.Sequential(nn.Conv2d(3, 3, 1), nn.Flatten(2, 3)), (torch.rand(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long)),
                           epochs=1, device="cpu", progress=False)
    with pytest.raises(SegeduInputError, match="no trainable parameters"):
        train_segmentation(nn.Flatten(2, 3), _tiny_data(), device="cpu", progress=False)
    with pytest.raises(SegeduInputError, match="lr must be greater than 0"):
        train_segmentation(fcn8s(3, width=2), _tiny_data(), lr=0, progress=False)




@pytest.mark.parametrize("build", [lambda: FCN(num_classes=3, variant="8s", width=2),
                                   lambda: segedu.models.SegNet(3, 2, base_channels=2, depth=2)],
                         ids=["FCN", "SegNet"])
def test_every_network_names_the_fix_for_a_float64_input(build):
    """The dtype check of the base class reaches every network, before torch's "expected scalar type"."""
    import torch

    model = build().eval()
    with pytest.raises(SegeduTypeError, match=r"model\.double\(\)"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.float64))
    assert model.double()(torch.zeros(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
