r"""DeepLab v3 (Chen et al. 2017), small enough for a CPU: a dilated residual backbone, ASPP, bilinear upsampling.

DeepLab answers three problems of a classification network used for segmentation [1]_:

- **reduced resolution**: a classifier downsamples by 32. DeepLab removes the last strides and
  dilates the following convolutions instead (*atrous* convolution), so the feature map is only
  8 or 16 times smaller than the image (the **output stride**) while every layer still sees as
  far as before;
- **objects at several scales**: atrous spatial pyramid pooling (:class:`ASPP`) looks at the same
  feature map with several atrous rates and with the whole image (global average pooling) at once;
- **localisation lost to invariance**: the coarse logits are upsampled bilinearly (v1 and v2 then
  refine them with a dense CRF, :mod:`segedu.crf`).

Architecture (channels for ``base_channels=b``; sizes for an :math:`H \times W` image):

===================  =======================================================  =================  ============
part                 layers                                                   channels           stride
===================  =======================================================  =================  ============
``backbone.stem``    conv 3×3 stride 2, conv 3×3 stride 2 (each + BN + ReLU)  :math:`b`          4
``backbone.layer1``  a residual block (:class:`ResidualBlock`)                :math:`b`          4
``backbone.layer2``  a residual block of stride 2                             :math:`2b`         8
``backbone.layer3``  stride 2; at output stride 8, stride 1 and dilation 2    :math:`4b`         16 (OS 8: 8)
``backbone.layer4``  stride 1 and dilation 2 (OS 16) or 4 (OS 8)              :math:`4b`         16 (OS 8: 8)
``head``             :class:`ASPP`, or (``aspp=False``) one 3×3 conv–BN–ReLU  ``aspp_channels``  same
``classifier``       conv 1×1 (with bias)                                     :math:`K`          same
(forward)            bilinear upsampling to :math:`H \times W`                :math:`K`          1
===================  =======================================================  =================  ============

The stage strides 1, 2, 2, 2 after a stride-4 stem give ResNet's total stride 32; for output stride
16 the last stage's stride becomes dilation 2, for output stride 8 the last two become dilation 2
and 4: DeepLab v3's rule, as torchvision's ``replace_stride_with_dilation`` [2]_ [4]_. The
convolution that gave up its stride keeps the dilation it had before and every convolution after
it gets the new one (torchvision's ``previous_dilation``), so each layer reads the same input pixels
as in the undilated network: the receptive field does not change, only the resolution does
(:func:`segedu.conv.receptive_field` of :meth:`DilatedResNet.layers` is the same at output stride
8 and 16, and in the undilated stride-32 layout, which :class:`DilatedResNet` does not build).
Padding equals dilation, so only strides change the size.
The feature map is :math:`\lceil H / \text{OS} \rceil \times \lceil W / \text{OS} \rceil`
(:func:`feature_size`).

Differences from the paper, on purpose: one basic residual block per stage instead of ResNet-101's
bottlenecks, a stem of two stride-2 3×3 convolutions instead of a 7×7 convolution and a max-pool,
a last stage that does not double its channels (it no longer halves the resolution), no multi-grid,
no ImageNet initialisation, and any input size of at least the output stride (the logits are
upsampled to the input's size, so no size needs to be a multiple of anything).

References
----------
.. [1] Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K. and Yuille, A. L. "DeepLab: Semantic
       Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected
       CRFs." IEEE TPAMI 40(4), 2018. arXiv:1606.00915
.. [2] Chen, L.-C., Papandreou, G., Schroff, F. and Adam, H. "Rethinking Atrous Convolution for
       Semantic Image Segmentation." arXiv:1706.05587, 2017.
.. [3] He, K., Zhang, X., Ren, S. and Sun, J. "Deep Residual Learning for Image Recognition." CVPR
       2016. arXiv:1512.03385
.. [4] Yu, F., Koltun, V. and Funkhouser, T. "Dilated Residual Networks." CVPR 2017.
       arXiv:1705.09914

Examples
--------
>>> import torch
>>> from segedu.models import DeepLab
>>> model = DeepLab(num_classes=4, output_stride=8, rates=(2, 4, 6)).eval()
>>> tuple(model(torch.rand(2, 3, 61, 80)).shape)  # any size: the logits are upsampled
(2, 4, 61, 80)
>>> model.feature_size((61, 80)), model.output_stride
((8, 10), 8)
>>> [block.conv2.dilation[0] for block in model.backbone.stages()]  # last two strides became dilations
[1, 1, 2, 4]
"""

from __future__ import annotations

import numbers
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .. import conv as _conv
from .._validation import SegeduInputError, SegeduTypeError, check_positive_int, check_size
from ._base import SegmentationModel
from .blocks import conv_bn_relu

__all__ = [
    "DeepLab",
    "ASPP",
    "ASPPConv",
    "ASPPPooling",
    "ResidualBlock",
    "DilatedResNet",
    "stage_strides",
    "feature_size",
    "count_parameters",
    "OUTPUT_STRIDES",
]

#: The output strides DeepLab supports (v3 trains at 16 and evaluates at 8 or 16).
OUTPUT_STRIDES = (8, 16)

#: Stride of the stem (two stride-2 convolutions), then of the four stages: ResNet's 4 · 1 · 2 · 2 · 2 = 32.
_STEM_STRIDE = 4
_STAGE_STRIDES = (1, 2, 2, 2)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def count_parameters(module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (all of them, or only those with ``requires_grad``).

    >>> count_parameters(torch.nn.Conv2d(3, 8, 3))  # 8 · 3 · 3 · 3 weights + 8 biases
    224
    """
    if not isinstance(module, nn.Module):
        raise SegeduTypeError(f"count_parameters expects a torch.nn.Module, but got {type(module).__name__}.")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _check_output_stride(output_stride) -> int:
    if isinstance(output_stride, bool) or not isinstance(output_stride, numbers.Integral):
        raise SegeduTypeError(
            f"output_stride must be the int 8 or 16, but got {output_stride!r} ({type(output_stride).__name__})."
        )
    if output_stride not in OUTPUT_STRIDES:
        raise SegeduInputError(
            f"DeepLab supports output stride 8 or 16, but got output_stride={output_stride}. Use 16 (feature maps 16 "
            f"times smaller than the image: cheaper) or 8 (twice as fine: better boundaries, about 4 times the cost "
            f"of the dilated stages)."
        )
    return int(output_stride)


def stage_strides(output_stride=16) -> list[tuple[int, int]]:
    r"""``(stride, dilation)`` of each of the four backbone stages for an output stride of 8 or 16.

    Walking the stages in order, a stage whose stride would take the total stride past
    ``output_stride`` keeps stride 1 and multiplies the dilation by the stride it gave up, so every
    later layer still sees as far as in the undilated network. The dilation is that of the stage's
    convolutions after the first; the first keeps the previous stage's (see :class:`DilatedResNet`).

    >>> stage_strides(16)
    [(1, 1), (2, 1), (2, 1), (1, 2)]
    >>> stage_strides(8)
    [(1, 1), (2, 1), (1, 2), (1, 4)]
    """
    output_stride = _check_output_stride(output_stride)
    total, dilation, plan = _STEM_STRIDE, 1, []
    for stride in _STAGE_STRIDES:
        if total * stride > output_stride:
            dilation *= stride
            stride = 1
        total *= stride
        plan.append((stride, dilation))
    return plan


def feature_size(size, output_stride=16) -> tuple[int, int]:
    r"""``(h, w)`` of the backbone's feature map for an input of ``size`` ``(H, W)``.

    Each stride-2 convolution (3×3, padding 1) maps :math:`n` to
    :math:`\lfloor (n - 1)/2 \rfloor + 1 = \lceil n/2 \rceil`, and the dilated ones keep the size,
    so the map is :math:`\lceil H / \text{OS} \rceil \times \lceil W / \text{OS} \rceil`. Computed
    layer by layer with :func:`segedu.conv.conv_output_size`.

    >>> feature_size((64, 64), 16), feature_size((64, 64), 8), feature_size((61, 80), 16)
    ((4, 4), (8, 8), (4, 5))
    """
    h, w = check_size(size, "size")
    output_stride = _check_output_stride(output_stride)
    strides = [2, 2] + [stride for stride, _ in stage_strides(output_stride)]
    for stride in strides:
        h = _conv.conv_output_size(h, 3, stride=stride, padding=1)
        w = _conv.conv_output_size(w, 3, stride=stride, padding=1)
    return h, w


def _check_rates(rates) -> tuple[int, ...]:
    if isinstance(rates, (str, bytes)) or isinstance(rates, numbers.Number) or not hasattr(rates, "__iter__"):
        raise SegeduTypeError(
            f"rates must be a sequence of atrous rates (positive ints), e.g. (6, 12, 18), but got {rates!r}."
        )
    rates = tuple(rates)
    if not rates:
        raise SegeduInputError("rates is empty; ASPP needs at least one atrous rate, e.g. rates=(6, 12, 18).")
    return tuple(check_positive_int(r, f"rates[{i}]") for i, r in enumerate(rates))


# --------------------------------------------------------------------------------------------------
# ASPP: the blocks, then the module (child names as torchvision's, so its state_dict loads)
# --------------------------------------------------------------------------------------------------


class ASPPConv(nn.Sequential):
    r"""One atrous branch of ASPP: 3×3 convolution of rate ``dilation`` (padding ``dilation``), BN, ReLU.

    Its taps sit at offsets :math:`\{-r, 0, r\}^2` of the centre, so it spans
    :math:`2r + 1` pixels of the feature map with 9 weights per channel pair.

    >>> ASPPConv(8, 4, dilation=6)[0]
    Conv2d(8, 4, kernel_size=(3, 3), stride=(1, 1), padding=(6, 6), dilation=(6, 6), bias=False)
    """

    def __init__(self, in_channels, out_channels, dilation):
        super().__init__(*conv_bn_relu(in_channels, out_channels, 3, dilation=dilation))


class ASPPPooling(nn.Sequential):
    r"""ASPP's image-level branch: global average pooling, 1×1 conv, BN, ReLU, then bilinear upsampling back to h × w.

    Every output pixel of this branch is the same vector, computed from the whole feature map: the
    "image-level features" that DeepLab v3 adds [2]_ because a 3×3 branch whose rate approaches the
    map's size sees mostly padding.

    >>> branch = ASPPPooling(8, 4).eval()
    >>> y = branch(torch.rand(1, 8, 5, 7))
    >>> tuple(y.shape), torch.allclose(y, y[..., :1, :1].expand_as(y))  # one value per channel, everywhere
    ((1, 4, 5, 7), True)
    """

    def __init__(self, in_channels, out_channels):
        super().__init__(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(in_channels, out_channels, 1))

    def forward(self, x):
        size = x.shape[-2:]
        if self.training and x.shape[0] == 1:
            # BatchNorm over a 1×1 map of one sample has one value per channel: torch refuses it
            raise SegeduInputError(
                "ASPP's image-pooling branch cannot be trained on a batch of one image: after global pooling "
                "each channel holds one value, and batch normalisation needs more than one. Use batches of "
                "at least 2 images (drop a last batch of one), or call model.eval() to predict."
            )
        for layer in self:
            x = layer(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    r"""Atrous spatial pyramid pooling (DeepLab v3), structured exactly as torchvision's ``ASPP``.

    Five parallel branches look at the same feature map :math:`x` [1]_ [2]_:

    - ``convs[0]``: 1×1 conv, BN, ReLU (rate 1: the pixel itself);
    - ``convs[1..n]``: one :class:`ASPPConv` per rate :math:`r` (3×3 atrous conv, BN, ReLU), whose
      field on the map is :math:`2r + 1` pixels wide;
    - ``convs[n+1]``: :class:`ASPPPooling`, the whole map averaged to one vector and spread back.

    Their outputs are concatenated (:math:`(n + 2) \cdot C_\text{out}` channels) and ``project``ed
    by a 1×1 conv, BN, ReLU and dropout (0.5) to :math:`C_\text{out}` channels. The number of
    parameters is

    .. math::

        C_\text{in} C_\text{out} (1 + 9n + 1) + (n + 2) C_\text{out}^2 + 2 C_\text{out} (n + 3)

    (convolutions without bias; two BN parameters per channel), the same as torchvision's, whose
    ``state_dict`` loads into this module with ``strict=True``.

    Parameters
    ----------
    in_channels : int
        Channels of the backbone's feature map.
    out_channels : int
        Channels of every branch and of the result (256 in the paper).
    rates : sequence of int
        Atrous rates of the 3×3 branches: (6, 12, 18) at output stride 16, doubled at 8 [2]_.
    dropout : float
        Dropout probability after the projection (0.5 as in torchvision).

    Raises
    ------
    SegeduInputError
        At forward time, for a feature map that is not ``(N, C, h, w)`` (an unbatched ``(C, h, w)``
        map is told to add the batch axis) or whose channels are not ``in_channels``.
    SegeduTypeError
        At forward time, for an input that is not a tensor or not floating-point.

    Warns
    -----
    UserWarning
        At forward time, when a rate :math:`r` is at least a side of the feature map. The taps at
        :math:`\pm r` along that axis fall on the zero padding for every pixel, so the branch
        degenerates: into a 1×1 convolution when :math:`r` is at least the height *and* the width,
        into a 1×3 convolution (one row of taps) when only :math:`r \ge h`, and into a 3×1 one
        when only :math:`r \ge w`. The message names the axis and the fix (smaller rates, a larger
        input, or output stride 8).

    Examples
    --------
    >>> aspp = ASPP(64, 32, rates=(1, 2, 3)).eval()
    >>> tuple(aspp(torch.rand(2, 64, 9, 9)).shape)
    (2, 32, 9, 9)
    >>> [type(branch).__name__ for branch in aspp.convs]
    ['Sequential', 'ASPPConv', 'ASPPConv', 'ASPPConv', 'ASPPPooling']
    >>> count_parameters(ASPP(2048, 256))  # as torchvision's ASPP(2048, [6, 12, 18])
    15535104

    What a branch of rate :math:`r` sees in the image: the backbone's field plus :math:`2r`
    feature-map pixels of :math:`\text{OS}` image pixels each (:func:`segedu.conv.receptive_field`):

    >>> backbone = DilatedResNet(3, base_channels=16, output_stride=16).layers()
    >>> [_conv.receptive_field(backbone + [(3, 1, r)])[0] for r in (1, 6, 12, 18)]
    [223, 383, 575, 767]
    """

    def __init__(self, in_channels, out_channels=256, rates=(6, 12, 18), dropout=0.5):
        super().__init__()
        in_channels = check_positive_int(in_channels, "in_channels")
        out_channels = check_positive_int(out_channels, "out_channels")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.rates = _check_rates(rates)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout <= 1.0:
            raise SegeduInputError(f"dropout is a probability in [0, 1] (0.5 in DeepLab v3), but got {dropout!r}.")
        branches = [conv_bn_relu(in_channels, out_channels, 1)]
        branches += [ASPPConv(in_channels, out_channels, rate) for rate in self.rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            *conv_bn_relu(len(branches) * out_channels, out_channels, 1),
            nn.Dropout(float(dropout)),
        )

    def forward(self, x):
        self.check_input(x)
        return self.project(torch.cat(self.branch_outputs(x), dim=1))

    def check_input(self, x) -> None:
        """Raise an error that names the fix unless ``x`` is a floating-point ``(N, in_channels, h, w)`` tensor."""
        if not isinstance(x, torch.Tensor):
            raise SegeduTypeError(
                f"ASPP expects a feature map, a torch.Tensor of shape (N, C, h, w), but got a {type(x).__name__}. "
                f"Convert it with torch.as_tensor(x, dtype=torch.float32)."
            )
        if x.ndim != 4:
            if x.ndim == 3:
                fix = f" Add a batch axis with x[None] (shape {(1, *x.shape)})."
            elif x.ndim == 2:
                fix = (f" For a one-channel map, add the batch and channel axes with x[None, None] "
                       f"(shape {(1, 1, *x.shape)}).")
            else:
                fix = " Pass the backbone's output, a batch of (C, h, w) maps."
            raise SegeduInputError(
                f"ASPP expects a feature map of shape (N, C, h, w), but got {tuple(x.shape)} ({x.ndim} axes).{fix}"
            )
        c = x.shape[1]
        if c != self.in_channels:
            raise SegeduInputError(
                f"ASPP was built with in_channels={self.in_channels}, but the feature map has {c} channels "
                f"(shape {tuple(x.shape)}). Build ASPP({c}, ...) for this map, or feed it the backbone's output "
                f"(in_channels is the backbone's out_channels)."
            )
        if not x.is_floating_point():
            raise SegeduTypeError(
                f"ASPP expects a floating-point feature map, but got dtype {x.dtype}. Use x.float() (or x.to(dtype) "
                f"with the dtype of ASPP's weights)."
            )

    def branch_outputs(self, x) -> list[torch.Tensor]:
        """The five (or ``len(rates) + 2``) branches' outputs before concatenation, in ``convs`` order.

        For looking at what each branch sees; :meth:`forward` concatenates and projects them.
        """
        self._warn_if_rates_too_large(*x.shape[-2:])
        return [branch(x) for branch in self.convs]

    def _warn_if_rates_too_large(self, h: int, w: int) -> None:
        # A tap at offset ±rate along an axis of n pixels reads data for some pixel exactly when rate < n.
        fix = "a larger input, or a smaller output stride (8 instead of 16)."
        for rate in self.rates:
            if rate >= h and rate >= w:
                message = (
                    f"ASPP rate {rate} is at least the feature map's size {h}×{w}: every tap of that 3×3 atrous "
                    f"branch except the centre falls on zero padding, so it acts as a 1×1 convolution. Use rates "
                    f"smaller than {max(h, w)}, {fix}"
                )
            elif rate >= h:
                message = (
                    f"ASPP rate {rate} is at least the feature map's height {h} (the map is {h}×{w}): the taps "
                    f"{rate} rows above and below every pixel fall on zero padding, so that 3×3 atrous branch acts "
                    f"as a 1×3 convolution (one row of taps, along the width only). Use rates smaller than {h}, "
                    f"{fix}"
                )
            elif rate >= w:
                message = (
                    f"ASPP rate {rate} is at least the feature map's width {w} (the map is {h}×{w}): the taps "
                    f"{rate} columns left and right of every pixel fall on zero padding, so that 3×3 atrous branch "
                    f"acts as a 3×1 convolution (one column of taps, along the height only). Use rates smaller "
                    f"than {w}, {fix}"
                )
            else:
                continue
            warnings.warn(message, UserWarning, stacklevel=2)

    def extra_repr(self) -> str:
        return f"rates={self.rates}"


# --------------------------------------------------------------------------------------------------
# The backbone
# --------------------------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    r"""A basic residual block with dilation: :math:`y = \mathrm{ReLU}(F(x) + S(x))` [3]_.

    :math:`F` is conv 3×3 (``stride``, ``first_dilation``), BN, ReLU, conv 3×3 (``dilation``), BN;
    the shortcut :math:`S` is the identity, or a 1×1 conv of ``stride`` with BN when the size or
    the channels change. Padding equals the dilation, so only the stride changes the size.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int
        Stride of the first convolution and of the shortcut.
    dilation : int
        Dilation of the second convolution.
    first_dilation : int, optional
        Dilation of the first convolution (default ``dilation``). In a stage whose stride became a
        dilation it is the previous stage's: that convolution reads its input at the spacing it
        had when it was strided.

    >>> block = ResidualBlock(8, 16, stride=1, dilation=2)
    >>> block.conv1.dilation, block.conv2.padding, tuple(block(torch.rand(1, 8, 9, 9)).shape)
    ((2, 2), (2, 2), (1, 16, 9, 9))
    """

    def __init__(self, in_channels, out_channels, stride=1, dilation=1, first_dilation=None):
        super().__init__()
        stride = check_positive_int(stride, "stride")
        dilation = check_positive_int(dilation, "dilation")
        first = dilation if first_dilation is None else check_positive_int(first_dilation, "first_dilation")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=first, dilation=first,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))

    def layers(self) -> list[tuple[int, int, int]]:
        """``(kernel_size, stride, dilation)`` of the residual branch, the longer of the two paths."""
        return [(c.kernel_size[0], c.stride[0], c.dilation[0]) for c in (self.conv1, self.conv2)]


class DilatedResNet(nn.Module):
    r"""The backbone: a stem of two stride-2 3×3 convolutions and four :class:`ResidualBlock` stages.

    Stage :math:`i` has the ``(stride, dilation)`` of :func:`stage_strides` and
    :math:`b, 2b, 4b, 4b` channels; its first convolution keeps the dilation of the stage before,
    as torchvision's ResNet does with ``replace_stride_with_dilation``, so that the receptive field
    is the same at every output stride. ``out_channels`` is :math:`4b`.

    >>> net = DilatedResNet(3, base_channels=8, output_stride=16)
    >>> tuple(net(torch.rand(1, 3, 64, 48)).shape), net.out_channels
    ((1, 32, 4, 3), 32)
    """

    def __init__(self, in_channels=3, base_channels=16, output_stride=16):
        super().__init__()
        b = check_positive_int(base_channels, "base_channels")
        self.output_stride = _check_output_stride(output_stride)
        widths = (b, 2 * b, 4 * b, 4 * b)
        self.stem = nn.Sequential(*conv_bn_relu(in_channels, b, 3, stride=2), *conv_bn_relu(b, b, 3, stride=2))
        previous, previous_dilation = b, 1
        for index, (width, (stride, dilation)) in enumerate(zip(widths, stage_strides(output_stride)), start=1):
            block = ResidualBlock(previous, width, stride=stride, dilation=dilation, first_dilation=previous_dilation)
            setattr(self, f"layer{index}", block)
            previous, previous_dilation = width, dilation
        self.out_channels = previous

    def stages(self) -> list[ResidualBlock]:
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages():
            x = stage(x)
        return x

    def layers(self) -> list[tuple[int, int, int]]:
        """``(kernel_size, stride, dilation)`` along the longest path, for :func:`segedu.conv.receptive_field`."""
        path = [(m.kernel_size[0], m.stride[0], m.dilation[0]) for m in self.stem if isinstance(m, nn.Conv2d)]
        for stage in self.stages():
            path += stage.layers()
        return path


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class DeepLab(SegmentationModel):
    r"""DeepLab v3 with a small dilated ResNet: backbone, ASPP (or one 3×3 conv), 1×1 classifier, bilinear upsampling.

    Parameters
    ----------
    num_classes : int
        Number of classes :math:`K` (the output channels).
    in_channels : int
        Channels of the input image.
    output_stride : {16, 8}
        How many times smaller the feature map is than the image. 16 dilates the last stage (rate
        2); 8 dilates the last two (rates 2 and 4), which costs about 4 times the computation and
        memory of those stages and gives a twice finer map.
    base_channels : int
        Width :math:`b` of the first stage; the stages have :math:`b, 2b, 4b, 4b` channels.
    rates : sequence of int
        ASPP's atrous rates, on the feature map. The paper's (6, 12, 18) suit output stride 16 on
        513×513 crops (a 33×33 map); scale them with the map (e.g. (2, 4, 6) for a 12×12 map), or
        ASPP warns that a branch sees only padding.
    aspp : bool
        ``False`` replaces ASPP by one 3×3 conv–BN–ReLU of the same width: the baseline of the
        lecture's experiment.
    aspp_channels : int, optional
        Width of ASPP's branches and of the classifier's input (default :math:`4b`, the
        backbone's width).

    Attributes
    ----------
    output_stride, backbone_output_stride : int
        The output stride (both names hold it; inputs need *not* be multiples of it).
    backbone : DilatedResNet
    head : ASPP or nn.Sequential
    classifier : nn.Conv2d

    Raises
    ------
    SegeduInputError
        For an output stride other than 8 or 16, and, at forward time, for an input smaller than the
        output stride (less than one feature-map pixel of image per side), besides the checks of
        :meth:`~segedu.models.SegmentationModel.check_input`.

    Notes
    -----
    :func:`segedu.models.deeplab.count_parameters` counts the parameters; at ``base_channels=16``
    and 6 classes the network has 294 134 parameters with ASPP and 191 094 without (at either output
    stride: dilation adds no weights).

    Examples
    --------
    >>> model = DeepLab(num_classes=3, output_stride=16, rates=(1, 2, 3)).eval()
    >>> tuple(model(torch.rand(1, 3, 72, 72)).shape), model.feature_size((72, 72))
    ((1, 3, 72, 72), (5, 5))
    >>> _conv.receptive_field(model.backbone.layers())  # pixels and stride of the backbone's field
    (191, 16)
    >>> try:
    ...     DeepLab(num_classes=3, output_stride=32)
    ... except ValueError as err:
    ...     print(str(err)[:60])
    DeepLab supports output stride 8 or 16, but got output_strid
    """

    def __init__(self, num_classes, in_channels=3, output_stride=16, base_channels=16, rates=(6, 12, 18),
                 aspp=True, aspp_channels=None):
        output_stride = _check_output_stride(output_stride)
        super().__init__(in_channels=in_channels, num_classes=num_classes, output_stride=output_stride)
        base_channels = check_positive_int(base_channels, "base_channels")
        if not isinstance(aspp, bool):
            raise SegeduTypeError(f"aspp must be True (ASPP head) or False (one 3×3 conv head), but got {aspp!r}.")
        width = 4 * base_channels if aspp_channels is None else check_positive_int(aspp_channels, "aspp_channels")
        self.backbone_output_stride = output_stride
        self.rates = _check_rates(rates)
        self.aspp = aspp
        self.backbone = DilatedResNet(self.in_channels, base_channels, output_stride)
        if aspp:
            self.head = ASPP(self.backbone.out_channels, width, self.rates)
        else:
            self.head = conv_bn_relu(self.backbone.out_channels, width, 3)
        self.classifier = nn.Conv2d(width, self.num_classes, 1)

    def check_input(self, x) -> None:
        """The base checks, except that any height and width of at least ``output_stride`` is accepted.

        The logits are upsampled bilinearly to the input's size, so DeepLab needs no multiple of the
        output stride, only at least one output stride's worth of pixels per side.
        """
        s = self.output_stride
        if isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[1] == self.in_channels:
            h, w = x.shape[-2:]
            if 0 < h < s or 0 < w < s:
                raise SegeduInputError(
                    f"DeepLab with output_stride={s} needs an input of at least {s}×{s} pixels, but got {h}×{w}: the "
                    f"backbone divides each side by {s}, so the feature map would have less than one pixel of image "
                    f"per side (what is left is zero padding). Upsample or pad the image to at least {s} pixels per "
                    f"side" + (", or use output_stride=8." if s > 8 else ".")
                )
            # The base class asks for multiples of output_stride; a view cropped to the nearest multiple
            # passes that test and keeps every other check (dtype, device, emptiness) as it is.
            x = x[..., : h - h % s, : w - w % s]
        super().check_input(x)

    def feature_size(self, size) -> tuple[int, int]:
        """``(h, w)`` of the backbone's feature map for an ``(H, W)`` input (:func:`feature_size`)."""
        return feature_size(size, self.output_stride)

    def forward(self, x):
        self.check_input(x)
        logits = self.classifier(self.head(self.backbone(x)))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rates={self.rates}, aspp={self.aspp}"
