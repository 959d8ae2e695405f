"""segedu.models.deeplab: ASPP against torchvision's, the dilated backbone, DeepLab's shapes, fields and errors.

Peers: torchvision.models.segmentation.deeplabv3.ASPP (parameter counts, state_dict, outputs),
torchvision.models.resnet50(replace_stride_with_dilation=...) (which stages are dilated, and how),
forward hooks (the feature map's size), and autograd (the receptive field, through
segedu.conv.receptive_field_by_gradient).
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50
from torchvision.models.segmentation.deeplabv3 import ASPP as TorchvisionASPP

import segedu.models
from segedu._validation import SegeduInputError, SegeduTypeError
from segedu.conv import receptive_field, receptive_field_by_gradient
from segedu.models import ASPP, DeepLab, SegmentationModel
from segedu.models.deeplab import (
    OUTPUT_STRIDES,
    ASPPConv,
    ASPPPooling,
    DilatedResNet,
    ResidualBlock,
    count_parameters,
    feature_size,
    stage_strides,
)


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _randomise_batchnorm(module, seed=0):
    """Non-trivial running statistics and affine parameters, so eval outputs depend on them."""
    generator = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            bn.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            bn.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            bn.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


# --------------------------------------------------------------------------- ASPP against torchvision


ASPP_CONFIGS = [
    (2048, 256, (6, 12, 18)),
    (64, 32, (1, 2, 3)),
    (16, 8, (2,)),
    (32, 16, (1, 2, 3, 4)),
    (5, 3, (12, 24, 36)),
]


@pytest.mark.parametrize("in_channels, out_channels, rates", ASPP_CONFIGS)
def test_aspp_parameter_count_equals_torchvision(in_channels, out_channels, rates):
    ours = ASPP(in_channels, out_channels, rates)
    theirs = TorchvisionASPP(in_channels, list(rates), out_channels)
    assert count_parameters(ours) == sum(p.numel() for p in theirs.parameters())
    n = len(rates)
    formula = in_channels * out_channels * (2 + 9 * n) + (n + 2) * out_channels**2 + 2 * out_channels * (n + 3)
    assert count_parameters(ours) == formula


@pytest.mark.parametrize("in_channels, out_channels, rates", ASPP_CONFIGS[1:])
def test_torchvision_state_dict_loads_and_eval_outputs_agree(in_channels, out_channels, rates):
    torch.manual_seed(0)
    theirs = TorchvisionASPP(in_channels, list(rates), out_channels).double()
    _randomise_batchnorm(theirs)
    ours = ASPP(in_channels, out_channels, rates).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, in_channels, 13, 11, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (12, 24, 36) on 13×11 warns; that is tested below
        expected = theirs.eval()(x)
        got = ours.eval()(x)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected)


def test_aspp_train_mode_batch_statistics_agree_without_dropout():
    torch.manual_seed(1)
    theirs = TorchvisionASPP(16, [1, 2, 3], 8).double().train()
    theirs.project[3].p = 0.0
    ours = ASPP(16, 8, (1, 2, 3), dropout=0.0).double().train()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 16, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours.convs[1][1].running_mean, theirs.convs[1][1].running_mean)


def test_aspp_branches_have_the_paper_structure():
    aspp = ASPP(32, 16, rates=(3, 5))
    assert isinstance(aspp.convs, nn.ModuleList) and len(aspp.convs) == 4
    assert [type(m) for m in aspp.convs[0]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert aspp.convs[0][0].kernel_size == (1, 1)
    for branch, rate in zip(aspp.convs[1:3], (3, 5)):
        assert isinstance(branch, ASPPConv)
        conv = branch[0]
        assert conv.kernel_size == (3, 3) and conv.dilation == (rate, rate) and conv.padding == (rate, rate)
    assert isinstance(aspp.convs[3], ASPPPooling) and isinstance(aspp.convs[3][0], nn.AdaptiveAvgPool2d)
    assert [type(m) for m in aspp.project] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Dropout]
    assert aspp.project[0].in_channels == 4 * 16 and aspp.project[3].p == 0.5
    assert all(m.bias is None for m in aspp.modules() if isinstance(m, nn.Conv2d))


def test_branch_outputs_are_what_forward_concatenates():
    torch.manual_seed(7)
    aspp = ASPP(8, 4, rates=(1, 2, 3)).double().eval()
    x = torch.randn(2, 8, 6, 7, dtype=torch.float64)
    branches = aspp.branch_outputs(x)
    assert [tuple(b.shape) for b in branches] == [(2, 4, 6, 7)] * 5
    torch.testing.assert_close(aspp(x), aspp.project(torch.cat(branches, dim=1)))
    torch.testing.assert_close(branches[2], aspp.convs[2](x))


def test_image_pooling_branch_is_constant_and_upsampled_back():
    torch.manual_seed(2)
    branch = ASPPPooling(6, 4).double().eval()
    _randomise_batchnorm(branch)
    x = torch.randn(2, 6, 7, 5, dtype=torch.float64)
    y = branch(x)
    assert y.shape == (2, 4, 7, 5)
    pooled = F.relu(branch[2](branch[1](x.mean(dim=(2, 3), keepdim=True))))
    torch.testing.assert_close(y, pooled.expand_as(y))


def test_aspp_warns_when_a_rate_sees_only_padding():
    aspp = ASPP(8, 4, rates=(1, 2, 6)).eval()
    with pytest.warns(UserWarning, match=r"ASPP rate 6 .* 4×5.*1×1 convolution.*smaller than 5.*output stride"):
        aspp(torch.rand(1, 8, 4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aspp(torch.rand(1, 8, 8, 8))  # every rate below the map's size: no warning


def test_aspp_both_sides_message_is_unchanged():
    """Lecture 08 prints these warnings for its 6×6 map: the both-sides wording stays as it was."""
    aspp = ASPP(16, 8, rates=(6, 12, 18)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aspp(torch.randn(1, 16, 6, 6))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3 and all("acts as a 1×1 convolution" in m for m in messages)
    assert messages[0] == (
        "ASPP rate 6 is at least the feature map's size 6×6: every tap of that 3×3 atrous branch except the centre "
        "falls on zero padding, so it acts as a 1×1 convolution. Use rates smaller than 6, a larger input, or a "
        "smaller output stride (8 instead of 16)."
    )


@pytest.mark.parametrize(
    "size, words",
    [
        ((6, 20), r"ASPP rate 6 is at least the feature map's height 6 \(the map is 6×20\).*6 rows above and below.*"
                  r"acts as a 1×3 convolution.*smaller than 6.*output stride"),
        ((20, 6), r"ASPP rate 6 is at least the feature map's width 6 \(the map is 20×6\).*6 columns left and right.*"
                  r"acts as a 3×1 convolution.*smaller than 6.*output stride"),
        ((7, 3), r"width 3 \(the map is 7×3\).*3×1 convolution.*smaller than 3"),
        ((3, 7), r"height 3 \(the map is 3×7\).*1×3 convolution.*smaller than 3"),
    ],
)
def test_aspp_warns_when_a_rate_is_at_least_one_side(size, words):
    aspp = ASPP(8, 4, rates=(1, 6)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aspp(torch.rand(1, 8, *size))
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1  # rate 1 reads data on both axes
    assert re.search(words, messages[0]), messages[0]
    assert "1×1 convolution" not in messages[0]


def test_aspp_no_warning_while_every_rate_is_below_both_sides():
    aspp = ASPP(8, 4, rates=(6,)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aspp(torch.rand(1, 8, 7, 7))  # taps at ±6 still read data on both axes
        aspp(torch.rand(1, 8, 7, 40))
    with pytest.warns(UserWarning, match="ASPP rate 6"):
        aspp(torch.rand(1, 8, 6, 6))


@pytest.mark.parametrize("size, axis", [((5, 11), "height"), ((11, 5), "width")])
def test_a_branch_whose_rate_covers_one_side_really_acts_as_a_1x3_or_3x1_convolution(size, axis):
    """The per-axis warning's claim, checked against torch's convolution with one row or column of the weights."""
    torch.manual_seed(8)
    rate = 5
    conv = ASPPConv(4, 3, dilation=rate).double().eval()[0]
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    if axis == "height":  # the ±rate rows are padding: the middle row of taps, a 1×3 kernel along the width
        expected = F.conv2d(x, conv.weight[:, :, 1:2, :], padding=(0, rate), dilation=(1, rate))
    else:  # the ±rate columns are padding: the middle column, a 3×1 kernel along the height
        expected = F.conv2d(x, conv.weight[:, :, :, 1:2], padding=(rate, 0), dilation=(rate, 1))
    torch.testing.assert_close(conv(x), expected)
    with pytest.warns(UserWarning, match="1×3" if axis == "height" else "3×1"):
        ASPP(4, 3, rates=(rate,)).eval()(x.float())


def test_a_degenerate_branch_really_acts_as_a_1x1_convolution():
    """The warning's claim, checked: with rate >= the map size the 3×3 branch equals its centre tap."""
    torch.manual_seed(3)
    branch = ASPPConv(4, 3, dilation=5).double().eval()
    x = torch.randn(1, 4, 5, 4, dtype=torch.float64)
    conv = branch[0]
    centre = F.conv2d(x, conv.weight[:, :, 1:2, 1:2])
    torch.testing.assert_close(conv(x), centre)


def test_aspp_bad_input():
    with pytest.raises(SegeduInputError, match=r"rates is empty.*\(6, 12, 18\)"):
        ASPP(8, 4, rates=())
    with pytest.raises(SegeduInputError, match=r"rates\[1\] must be at least 1"):
        ASPP(8, 4, rates=(1, 0))
    with pytest.raises(SegeduTypeError, match="rates must be a sequence"):
        ASPP(8, 4, rates=6)
    with pytest.raises(SegeduInputError, match="dropout is a probability"):
        ASPP(8, 4, dropout=2)
    with pytest.raises(SegeduInputError, match=r"\(N, C, h, w\), but got \(8, 5, 5\).*batch axis with x\[None\]"):
        ASPP(8, 4)(torch.rand(8, 5, 5))
    with pytest.raises(SegeduInputError, match=r"\(N, C, h, w\), but got \(5, 5\).*x\[None, None\]"):
        ASPP(1, 4)(torch.rand(5, 5))
    with pytest.raises(SegeduInputError, match=r"in_channels=16, but the feature map has 8 channels.*ASPP\(8, "
                                               r".*backbone's output"):
        ASPP(16, 8)(torch.randn(1, 8, 6, 6))
    with pytest.raises(SegeduTypeError, match=r"floating-point feature map, but got dtype torch.int64.*x.float\(\)"):
        ASPP(8, 4)(torch.zeros(1, 8, 6, 6, dtype=torch.int64))
    with pytest.raises(SegeduTypeError, match=r"torch.Tensor of shape \(N, C, h, w\), but got a list"):
        ASPP(8, 4)([[0.0]])
    # the peer refuses the same inputs (with torch's raw messages): the checks turn away nothing it accepts
    for x, in_channels in [(torch.randn(1, 8, 6, 6), 16), (torch.zeros(1, 8, 6, 6, dtype=torch.int64), 8)]:
        with pytest.raises(RuntimeError):
            TorchvisionASPP(in_channels, [1, 2], 4).eval()(x)
    with pytest.raises(SegeduInputError, match="batch of one image.*at least 2.*model.eval"):
        ASPP(8, 4, rates=(1,)).train()(torch.rand(1, 8, 5, 5))


# --------------------------------------------------------------------------- the dilated backbone


@pytest.mark.parametrize("output_stride, replace", [(16, [False, False, True]), (8, [False, True, True])])
def test_stage_dilations_follow_torchvision_replace_stride_with_dilation(output_stride, replace):
    with torch.device("meta"):  # only the layers' settings are read: no memory, no initialisation
        reference = resnet50(weights=None, replace_stride_with_dilation=replace)
    backbone = DilatedResNet(3, base_channels=4, output_stride=output_stride)
    layers = [reference.layer1, reference.layer2, reference.layer3, reference.layer4]
    for ours, theirs in zip(backbone.stages(), layers):
        # the strided 3×3 conv of a bottleneck is conv2: first block (stride, previous dilation), later blocks (new)
        assert ours.conv1.stride == theirs[0].conv2.stride
        assert ours.conv1.dilation == theirs[0].conv2.dilation
        assert ours.conv2.dilation == theirs[-1].conv2.dilation
        assert ours.conv2.stride == (1, 1)
    assert stage_strides(output_stride) == [(b.conv1.stride[0], b.conv2.dilation[0]) for b in backbone.stages()]


@pytest.mark.parametrize("output_stride", OUTPUT_STRIDES)
@pytest.mark.parametrize("size", [(64, 64), (61, 80), (33, 47), (16, 17)])
def test_feature_map_size_is_ceil_of_size_over_output_stride(output_stride, size):
    model = DeepLab(num_classes=3, output_stride=output_stride, base_channels=4, rates=(1, 2)).eval()
    seen = {}

    def record(module, args, out):
        seen["shape"] = tuple(out.shape)  # returns None: the output is left as it is

    model.backbone.register_forward_hook(record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model(torch.rand(1, 3, *size))
    expected = tuple(math.ceil(n / output_stride) for n in size)
    assert seen["shape"][2:] == expected
    assert model.feature_size(size) == feature_size(size, output_stride) == expected
    assert out.shape == (1, 3, *size)


@pytest.mark.parametrize("output_stride", OUTPUT_STRIDES)
def test_receptive_field_formula_equals_the_gradient_and_dilation_keeps_it(output_stride):
    torch.manual_seed(4)
    backbone = DilatedResNet(1, base_channels=2, output_stride=output_stride).double()
    _randomise_batchnorm(backbone)
    size, jump = receptive_field(backbone.layers())
    assert jump == output_stride
    n = size + 2 * output_stride + 1
    mask = receptive_field_by_gradient(backbone, (1, n, n), linearize=True)
    rows, cols = mask.nonzero()
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (size, size)
    # the undilated network of total stride 32 has the same field: dilation changed only the resolution
    undilated = [(3, 2, 1), (3, 2, 1)]
    for stride in (1, 2, 2, 2):
        undilated += [(3, stride, 1), (3, 1, 1)]
    assert receptive_field(undilated) == (size, 32)


def test_receptive_field_grows_stage_by_stage():
    backbone = DilatedResNet(3, base_channels=4, output_stride=8)
    path = [(m.kernel_size[0], m.stride[0], m.dilation[0]) for m in backbone.stem if isinstance(m, nn.Conv2d)]
    sizes = [receptive_field(path)[0]]
    for stage in backbone.stages():
        path += stage.layers()
        sizes.append(receptive_field(path)[0])
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert sizes[-1] == receptive_field(backbone.layers())[0]


def test_residual_block_shortcut():
    same = ResidualBlock(8, 8)
    assert isinstance(same.shortcut, nn.Identity)
    down = ResidualBlock(8, 16, stride=2)
    assert down.shortcut[0].stride == (2, 2) and down.shortcut[0].kernel_size == (1, 1)
    assert down(torch.rand(2, 8, 9, 9)).shape == (2, 16, 5, 5)


# --------------------------------------------------------------------------- DeepLab


@pytest.mark.parametrize("output_stride", OUTPUT_STRIDES)
@pytest.mark.parametrize("aspp", [True, False])
def test_deeplab_output_shape_for_odd_sizes(output_stride, aspp):
    model = DeepLab(num_classes=5, output_stride=output_stride, base_channels=4, rates=(1, 2), aspp=aspp)
    assert isinstance(model, SegmentationModel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size in [(32, 32), (45, 37), (output_stride, output_stride + 1)]:
            out = model(torch.rand(2, 3, *size))
            assert out.shape == (2, 5, *size) and out.dtype == torch.float32


def test_deeplab_logits_are_the_bilinear_upsampling_of_the_classifier():
    torch.manual_seed(5)
    model = DeepLab(num_classes=3, output_stride=8, base_channels=4, rates=(1, 2)).eval()
    x = torch.rand(1, 3, 40, 56)
    coarse = model.classifier(model.head(model.backbone(x)))
    assert coarse.shape[-2:] == (5, 7)
    expected = F.interpolate(coarse, size=(40, 56), mode="bilinear", align_corners=False)
    torch.testing.assert_close(model(x), expected)


def test_deeplab_aspp_false_is_a_3x3_head_of_the_same_width():
    with_aspp = DeepLab(num_classes=4, base_channels=8, aspp_channels=24)
    without = DeepLab(num_classes=4, base_channels=8, aspp_channels=24, aspp=False)
    assert isinstance(with_aspp.head, ASPP) and not isinstance(without.head, ASPP)
    assert [type(m) for m in without.head] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    conv = without.head[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (32, 24, (3, 3))
    assert with_aspp.classifier.in_channels == without.classifier.in_channels == 24
    assert count_parameters(with_aspp.backbone) == count_parameters(without.backbone)
    head_difference = count_parameters(with_aspp) - count_parameters(without)
    assert head_difference == count_parameters(with_aspp.head) - count_parameters(without.head) > 0


def test_deeplab_parameter_counts_and_defaults():
    model = DeepLab(num_classes=6)
    assert (model.output_stride, model.backbone_output_stride, model.rates, model.aspp) == (16, 16, (6, 12, 18), True)
    assert model.head.convs[1][0].out_channels == 64  # aspp_channels defaults to the backbone's 4b
    for output_stride in OUTPUT_STRIDES:  # dilation adds no weights
        assert count_parameters(DeepLab(num_classes=6, output_stride=output_stride)) == 294_134
        assert count_parameters(DeepLab(num_classes=6, output_stride=output_stride, aspp=False)) == 191_094
    assert 100_000 < count_parameters(model) < 300_000
    assert "output_stride=16" in repr(model) and "rates=(6, 12, 18)" in repr(model)


def test_deeplab_float64_model_on_float64_input_and_device_check():
    model = DeepLab(num_classes=2, output_stride=8, base_channels=4, rates=(1,)).double().eval()
    out = model(torch.rand(1, 3, 16, 24, dtype=torch.float64))
    assert out.dtype == torch.float64
    with pytest.raises(SegeduTypeError, match=r"model.to\(torch.float32\)|x.to\(torch.float64\)"):
        model(torch.rand(1, 3, 16, 24))


def test_deeplab_is_deterministic_under_a_seed():
    def build_and_run(seed):
        torch.manual_seed(seed)
        model = DeepLab(num_classes=3, output_stride=8, base_channels=4, rates=(1, 2)).eval()
        return model(torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0)))

    torch.testing.assert_close(build_and_run(7), build_and_run(7), rtol=0, atol=0)
    assert not torch.equal(build_and_run(7), build_and_run(8))


def test_deeplab_trains_one_step_in_train_mode():
    torch.manual_seed(6)
    model = DeepLab(num_classes=3, output_stride=16, base_channels=4, rates=(1,)).train()
    x, y = torch.rand(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("output_stride", [32, 4, 0, 12])
def test_deeplab_refuses_other_output_strides(output_stride):
    message = rf"DeepLab supports output stride 8 or 16, but got output_stride={output_stride}"
    with pytest.raises(SegeduInputError, match=message):
        DeepLab(num_classes=3, output_stride=output_stride)
    with pytest.raises(SegeduTypeError, match="output_stride must be the int 8 or 16"):
        DeepLab(num_classes=3, output_stride=16.0)


@pytest.mark.parametrize(
    "output_stride, size, fix", [(16, (15, 40), "or use output_stride=8"), (8, (40, 7), r"8 pixels per side\.")]
)
def test_deeplab_refuses_inputs_smaller_than_the_output_stride(output_stride, size, fix):
    model = DeepLab(num_classes=3, output_stride=output_stride, base_channels=4, rates=(1,))
    s, (h, w) = output_stride, size
    with pytest.raises(SegeduInputError, match=rf"at least {s}×{s} pixels.*{h}×{w}.*less than one pixel.*{fix}"):
        model(torch.rand(1, 3, *size))


def test_deeplab_keeps_the_base_checks():
    model = DeepLab(num_classes=3, base_channels=4, rates=(1,))
    with pytest.raises(SegeduInputError, match="in_channels=3"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(SegeduTypeError, match="floating-point"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(SegeduInputError, match="empty image"):
        model(torch.rand(1, 3, 0, 32))
    with pytest.raises(SegeduTypeError, match="torch.Tensor"):
        model([[0.0]])
    with pytest.raises(SegeduTypeError, match="aspp must be True"):
        DeepLab(num_classes=3, aspp="yes")


def test_deeplab_warns_with_the_paper_rates_on_a_small_image():
    model = DeepLab(num_classes=3, output_stride=16, base_channels=4).eval()  # rates 6, 12, 18
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(torch.rand(1, 3, 64, 64))
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert [m.split(" is ")[0] for m in messages] == ["ASPP rate 6", "ASPP rate 12", "ASPP rate 18"]
    assert all("4×4" in m for m in messages)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.rand(1, 3, 320, 320))  # a 20×20 map: every rate reads data


def test_names_are_exported():
    assert segedu.models.DeepLab is DeepLab and segedu.models.ASPP is ASPP
    import segedu.models.deeplab as module

    for name in module.__all__:
        assert getattr(module, name) is not None
