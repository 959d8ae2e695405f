r"""U-Net (Ronneberger, Fischer and Brox, 2015) and a U-Net decoder under a ResNet-18 encoder.

The network
-----------
U-Net has a *contracting path* (left of the "U") and an *expanding path* (right):

- contracting: ``depth`` times a :class:`~segedu.models.blocks.DoubleConv` (two 3×3 convolutions)
  then a 2×2 max-pool that halves the size; the channels double at every level
  (64, 128, 256, 512, 1024 in the paper);
- expanding: ``depth`` times a 2×2 *up-convolution* (``ConvTranspose2d(c, c/2, 2, stride=2)``) that
  doubles the size and **halves the channels**, the *copy-and-crop* of the contracting feature map
  of the same level (:func:`center_crop`), concatenated to it (back to :math:`c` channels), and a
  DoubleConv down to :math:`c/2`;
- a final 1×1 convolution to ``num_classes`` logits.

Size arithmetic
---------------
With ``padding="valid"`` (the paper) every 3×3 convolution loses a pixel on each side, so the map
shrinks by 4 per DoubleConv, and the contracting feature maps are larger than the upsampled ones:
they are centre-cropped before the concatenation. With the defaults, 572×572 in, 388×388 out
(figure 1 of the paper; :meth:`UNet.size_trace` lists every step):

.. math::
   572 \xrightarrow{\text{conv}} 570 \xrightarrow{\text{conv}} 568 \xrightarrow{\text{pool}} 284
   \to \dots \to 28 \xrightarrow{\text{up}} 56 \to \dots \to 392 \to 390 \to 388 .

An input is valid when every map before a pool has an even size; for ``depth`` :math:`D` these
are the sizes :math:`2^D b + 4(2^{D+1} - 1)`, where :math:`b` is the size after the bottom
DoubleConv, :math:`b \ge 4` (:math:`b \ge 3` for depth 1), so that no map of the expanding path
vanishes (572 is one, with :math:`b = 28`; 570 is not). The paper tiles a large image with
overlapping 572×572 tiles (the *overlap-tile strategy*).

With ``padding="same"`` (what most code uses) the convolutions keep the size, no crop is needed,
and the output has the input's size, provided the :math:`D` poolings divide it exactly: :math:`H` and
:math:`W` multiples of :math:`2^D` (16 for the default depth 4). Other sizes raise an error that names
the nearest sizes that work, before any layer runs (instead of a size mismatch deep in ``torch.cat``).

Differences from the paper, on purpose
--------------------------------------
- Batch normalisation after every convolution (the DoubleConv of
  :mod:`segedu.models.blocks`, convolutions without bias). The paper has none (it predates the
  habit); with it the small networks of the course train from scratch in seconds on a CPU.
- ``base_channels`` (64 in the paper) and ``depth`` (4) are parameters, so the lecture can build the
  paper's network for its size arithmetic and tiny ones to train.

:class:`ResNetUNet` replaces the contracting path by torchvision's ResNet-18 (Ronneberger's encoder
learns from scratch; a pretrained encoder learns faster from few images): its five feature maps at
strides 2 to 32 feed a decoder of bilinear 2× upsampling, concatenation and DoubleConv.

References
----------
.. [1] Ronneberger, O., Fischer, P. and Brox, T. "U-Net: Convolutional Networks for Biomedical
       Image Segmentation." MICCAI 2015. arXiv:1505.04597
.. [2] He, K., Zhang, X., Ren, S. and Sun, J. "Deep Residual Learning for Image Recognition."
       CVPR 2016. arXiv:1512.03385
.. [3] Ioffe, S. and Szegedy, C. "Batch Normalization." ICML 2015. arXiv:1502.03167

Examples
--------
>>> import torch
>>> from segedu.models import UNet
>>> model = UNet(in_channels=1, num_classes=2, base_channels=8)
>>> tuple(model(torch.zeros(1, 1, 64, 48)).shape)
(1, 2, 64, 48)
>>> paper = UNet(1, 2, base_channels=1, padding="valid")  # the paper's sizes on a tiny width
>>> tuple(paper(torch.zeros(1, 1, 572, 572)).shape)
(1, 2, 388, 388)
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from .._validation import SegeduInputError, SegeduTypeError, check_in, check_positive_int, check_size
from ._base import SegmentationModel
from .blocks import DoubleConv

__all__ = ["center_crop", "center_crop_offsets", "UNet", "ResNetUNet", "ResNetEncoder", "ShallowResNetUNet",
           "adapt_first_conv"]


def center_crop_offsets(size, crop_size) -> tuple[int, int]:
    """Top and left offsets of the centre crop of ``crop_size`` from ``size`` (both ``(h, w)``).

    ``round((h - crop_h) / 2)`` as torchvision computes it; Python's ``round`` rounds halves to
    the even integer, so an odd difference of 1 gives offset 0, of 3 gives 2, of 5 gives 2.

    >>> center_crop_offsets((10, 9), (6, 6))
    (2, 2)
    >>> center_crop_offsets((7, 9), (6, 6))
    (0, 2)
    """
    (h, w), (ch, cw) = size, crop_size
    return int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))


def center_crop(x, size) -> torch.Tensor:
    """The centre ``size`` window of the last two axes of ``x``: U-Net's copy-and-crop.

    Equal to ``torchvision.transforms.functional.center_crop(x, size)`` (same offsets, see
    :func:`center_crop_offsets`), but a crop larger than the input is an error here instead of
    zero padding, because in U-Net it means the skip connection is smaller than the upsampled
    map: a sign of a wrong size computation.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)``, e.g. ``(N, C, H, W)``.
    size : int or (int, int)
        Height and width of the crop (an int means a square), e.g. ``up.shape[-2:]``.

    Returns
    -------
    torch.Tensor
        A view ``x[..., top:top + h, left:left + w]`` (no copy).

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(16).reshape(1, 1, 4, 4)
    >>> center_crop(x, 2)
    tensor([[[[ 5,  6],
              [ 9, 10]]]])
    >>> tuple(center_crop(torch.zeros(1, 64, 568, 568), (392, 392)).shape)  # the paper's first skip
    (1, 64, 392, 392)
    """
    if not isinstance(x, torch.Tensor):
        raise SegeduTypeError(
            f"center_crop expects a torch.Tensor of shape (..., H, W), but got {type(x).__name__}. "
            f"Convert a numpy array with torch.from_numpy(x)."
        )
    if x.ndim < 2:
        raise SegeduInputError(
            f"center_crop needs a tensor with at least 2 axes (..., H, W), but got shape {tuple(x.shape)}."
        )
    if isinstance(size, (list, tuple)) and len(size) == 1:
        size = size[0]
    crop_h, crop_w = check_size(size, "size")
    h, w = x.shape[-2], x.shape[-1]
    if crop_h > h or crop_w > w:
        raise SegeduInputError(
            f"center_crop cannot cut a {crop_h}×{crop_w} window out of a {h}×{w} map: the crop must not be larger "
            f"than the input. In a U-Net the skip map (the one cropped) must be at least as large as the "
            f"upsampled map; crop the larger one, or pad the input (torchvision's center_crop pads with zeros)."
        )
    top, left = center_crop_offsets((h, w), (crop_h, crop_w))
    return x[..., top : top + crop_h, left : left + crop_w]


class _Down(nn.Sequential):
    """2×2 max-pool then DoubleConv: one step down the contracting path."""

    def __init__(self, in_channels, out_channels, conv_padding):
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels, padding=conv_padding))


class _Up(nn.Module):
    """2×2 up-convolution (halves the channels), copy-and-crop of the skip, concatenation, DoubleConv."""

    def __init__(self, in_channels, out_channels, conv_padding):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels // 2 + out_channels, out_channels, padding=conv_padding)

    def forward(self, x, skip):
        x = self.up(x)
        if skip.shape[-2:] != x.shape[-2:]:
            skip = center_crop(skip, x.shape[-2:])
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(SegmentationModel):
    r"""U-Net: a contracting path, an expanding path of up-convolutions, and copy-and-crop skips.

    Parameters
    ----------
    in_channels : int
        Channels of the input image (1 for the paper's grey microscopy images).
    num_classes : int
        Output channels :math:`K` (the paper: 2 with a softmax; 1 for a sigmoid and
        :func:`segedu.losses.bce_loss`).
    base_channels : int
        Channels of the first level (64 in the paper); level :math:`l` has
        ``base_channels * 2**l``.
    depth : int
        Number of 2×2 poolings (4 in the paper, 5 levels).
    padding : {"same", "valid"}
        ``"same"``: 3×3 convolutions with zero padding 1, output size = input size, input sides
        multiples of :math:`2^{depth}`. ``"valid"``: no padding, as in the paper; the output is
        smaller than the input (572 → 388) and the skips are centre-cropped.

    Attributes
    ----------
    inc : DoubleConv
        The first level; ``downs`` and ``ups`` are ``nn.ModuleList`` of the other levels, and
        ``head`` is the final 1×1 convolution.

    Notes
    -----
    ``output_stride`` is :math:`2^{depth}` for ``"same"`` padding. For ``"valid"`` the valid sizes are
    not multiples of anything (see :meth:`valid_size`), so the base class' check is replaced by
    that of :meth:`nearest_valid_sizes`.

    Examples
    --------
    >>> import torch
    >>> model = UNet(1, 2, base_channels=4)
    >>> try:
    ...     model(torch.zeros(1, 1, 100, 96))
    ... except ValueError as err:
    ...     print(err)  # doctest: +ELLIPSIS
    UNet with depth=4 and padding='same' needs the input height and width to be multiples of 16,
    but got 100×96. The nearest sizes that work are 96 and 112 (height)...
    >>> UNet(1, 2, base_channels=1, padding="valid").output_size(572)
    388
    """

    def __init__(self, in_channels, num_classes, base_channels=64, depth=4, padding="same"):
        check_in(padding, "padding", ("same", "valid"))
        depth = check_positive_int(depth, "depth")
        base_channels = check_positive_int(base_channels, "base_channels")
        super().__init__(
            in_channels=in_channels, num_classes=num_classes, output_stride=2**depth if padding == "same" else 1
        )
        self.base_channels = base_channels
        self.depth = depth
        self.padding = padding
        conv_padding = 1 if padding == "same" else 0
        channels = [base_channels * 2**level for level in range(depth + 1)]
        self.inc = DoubleConv(self.in_channels, channels[0], padding=conv_padding)
        self.downs = nn.ModuleList(_Down(channels[i], channels[i + 1], conv_padding) for i in range(depth))
        self.ups = nn.ModuleList(_Up(channels[i + 1], channels[i], conv_padding) for i in reversed(range(depth)))
        self.head = nn.Conv2d(channels[0], self.num_classes, kernel_size=1)

    # -- sizes ----------------------------------------------------------------------------------
    def size_trace(self, size: int) -> list[tuple[str, int]]:
        """Every spatial size the network computes for an input side ``size``, as ``(step, size)`` pairs.

        Steps are named ``"input"``, ``"down{l} conv{1,2}"``, ``"pool{l}"``, ``"bottom conv{1,2}"``,
        ``"up{l}"`` (after the up-convolution; the skip of level ``l`` is cropped to this size),
        ``"up{l} conv{1,2}"`` and ``"output"``; the numbers of figure 1 of the paper.
        Raises :class:`~segedu._validation.SegeduInputError` when the size does not fit
        (a pool of an odd size, or a map that vanishes), with the nearest sizes that work.

        >>> trace = UNet(1, 2, base_channels=1, padding="valid").size_trace(572)
        >>> [s for _, s in trace][:10]
        [572, 570, 568, 284, 282, 280, 140, 138, 136, 68]
        >>> trace[-1]
        ('output', 388)
        """
        trace, problem = self._trace(check_positive_int(size, "size"))
        if problem:
            raise SegeduInputError(self._size_message(size, size, problem))
        return trace

    def output_size(self, size: int) -> int:
        """The output side for an input side ``size`` (equal to ``size`` with ``"same"`` padding)."""
        return self.size_trace(size)[-1][1]

    def valid_size(self, size: int) -> bool:
        """Whether an input side ``size`` passes through the network."""
        return not self._trace(check_positive_int(size, "size"))[1]

    def nearest_valid_sizes(self, size: int) -> tuple[int | None, int]:
        """The largest valid input side ``<= size`` (``None`` if there is none) and the smallest ``>= size``.

        >>> UNet(1, 2, base_channels=1, padding="valid").nearest_valid_sizes(570)
        (556, 572)
        >>> UNet(1, 2, base_channels=1).nearest_valid_sizes(100)
        (96, 112)
        """
        size = check_positive_int(size, "size")
        below = next((s for s in range(size, 0, -1) if not self._trace(s)[1]), None)
        above = next(s for s in itertools.count(size) if not self._trace(s)[1])
        return below, above

    def _trace(self, size: int):
        """``(trace, problem)``: the sizes, and a description of the first step that fails (or ``""``)."""
        shrink = 2 if self.padding == "valid" else 0
        trace = [("input", size)]
        s = size

        def conv(name):
            nonlocal s
            s -= shrink
            trace.append((name, s))
            return s > 0

        for level in range(1, self.depth + 1):
            if not (conv(f"down{level} conv1") and conv(f"down{level} conv2")):
                return trace, f"the map vanishes at level {level}"
            if s % 2:
                return trace, f"pool {level} gets the odd size {s}"
            s //= 2
            trace.append((f"pool{level}", s))
        if not (conv("bottom conv1") and conv("bottom conv2")):
            return trace, "the map vanishes at the bottom"
        skip_sizes = [v for name, v in trace if name.endswith("conv2") and name.startswith("down")]
        for level in range(self.depth, 0, -1):
            s *= 2
            trace.append((f"up{level}", s))
            if s > skip_sizes[level - 1]:
                return trace, f"the upsampled map ({s}) is larger than its skip ({skip_sizes[level - 1]})"
            if not (conv(f"up{level} conv1") and conv(f"up{level} conv2")):
                return trace, f"the map vanishes after up-convolution {level}"
        trace.append(("output", s))
        return trace, ""

    def _size_message(self, h, w, problem) -> str:
        name = type(self).__name__
        if self.padding == "same":
            need = f"multiples of {2**self.depth}"
        else:
            need = "sizes where every map before a 2×2 pool is even and no map vanishes"
        detail = f" ({problem})" if self.padding == "valid" else ""
        parts = []
        for side, n in (("height", h), ("width", w)):
            if self._trace(n)[1]:
                below, above = self.nearest_valid_sizes(n)
                options = f"{below} and {above}" if below is not None else f"{above} (none is smaller)"
                parts.append(f"{options} ({side})")
        example_h = h if not self._trace(h)[1] else self.nearest_valid_sizes(h)[1]
        example_w = w if not self._trace(w)[1] else self.nearest_valid_sizes(w)[1]
        fix = (
            f"Pad the image to {example_h}×{example_w} with torch.nn.functional.pad(x, (0, {example_w - w}, 0, "
            f"{example_h - h})) and crop the output back, or resize/crop it to a size that works."
        )
        return (
            f"{name} with depth={self.depth} and padding={self.padding!r} needs the input height and width to be "
            f"{need}, but got {h}×{w}{detail}. The nearest sizes that work are {', '.join(parts)}. {fix}"
        )

    def check_input(self, x) -> None:
        """The base class' checks, with U-Net's size rule first (it names the nearest sizes that work)."""
        if isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[1] == self.in_channels and min(x.shape[2:]) > 0:
            h, w = int(x.shape[2]), int(x.shape[3])
            problems = [p for p in (self._trace(h)[1], self._trace(w)[1]) if p]
            if problems:
                raise SegeduInputError(self._size_message(h, w, problems[0]))
        super().check_input(x)

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, x):
        self.check_input(x)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)

    def extra_repr(self) -> str:
        extra = f"base_channels={self.base_channels}, depth={self.depth}, padding={self.padding!r}"
        return f"{super().extra_repr()}, {extra}"


# ----------------------------------------------------------------------------------------------
def adapt_first_conv(weight, in_channels) -> torch.Tensor:
    """A first-convolution weight ``(out, c, k, k)`` adapted to ``in_channels`` input channels.

    As segmentation_models_pytorch does for pretrained encoders: for 1 channel the kernels are
    summed over the input channels (a grey image repeated to RGB gives the same response); for
    other counts they are repeated cyclically and scaled by ``c / in_channels``.

    >>> import torch
    >>> w = torch.randn(8, 3, 7, 7)
    >>> x = torch.randn(1, 1, 16, 16)
    >>> grey = torch.nn.functional.conv2d(x, adapt_first_conv(w, 1))
    >>> bool(torch.allclose(grey, torch.nn.functional.conv2d(x.expand(-1, 3, -1, -1), w), atol=1e-5))
    True
    """
    in_channels = check_positive_int(in_channels, "in_channels")
    c = weight.shape[1]
    if in_channels == c:
        return weight.clone()
    if in_channels == 1:
        return weight.sum(1, keepdim=True)
    repeats = -(-in_channels // c)
    return weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (c / in_channels)


class ResNetEncoder(nn.Module):
    """torchvision's ResNet-18 without its pooling and classifier, returning five feature maps.

    The layer names are torchvision's (``conv1``, ``bn1``, ``layer1`` … ``layer4``), so a
    torchvision ``resnet18().state_dict()`` loads into it once its ``fc.*`` entries are dropped
    (:meth:`ResNetUNet.load_encoder_state_dict` does that).
    """

    channels = (64, 64, 128, 256, 512)
    strides = (2, 4, 8, 16, 32)

    def __init__(self, resnet):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4

    def forward(self, x):
        f1 = self.relu(self.bn1(self.conv1(x)))  # stride 2
        f2 = self.layer1(self.maxpool(f1))  # 4
        f3 = self.layer2(f2)  # 8
        f4 = self.layer3(f3)  # 16
        f5 = self.layer4(f4)  # 32
        return [f1, f2, f3, f4, f5]


class _UpBlock(nn.Module):
    """Bilinear 2× upsampling, concatenation with the skip (if any), DoubleConv."""

    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.conv = DoubleConv(in_channels + skip_channels, out_channels)

    def forward(self, x, skip=None):
        x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class ResNetUNet(SegmentationModel):
    r"""A U-Net decoder under torchvision's ResNet-18 encoder (transfer learning).

    The encoder gives feature maps at strides 2, 4, 8, 16 and 32 (64, 64, 128, 256, 512
    channels); the decoder upsamples the deepest one 2× at a time, concatenates the encoder map
    of the same stride and applies a DoubleConv, then a last 2× step brings it to the input size
    and a 1×1 convolution gives the logits. Input sides must be multiples of 32. In training mode
    a batch needs more than one value per channel at stride 32 (batch normalisation), so train on
    batches of at least 2 images or on images of at least 64×64.

    Parameters
    ----------
    num_classes : int
        Output channels.
    in_channels : int
        Input channels (default 3). With ImageNet weights and another count, the first
        convolution's pretrained kernels are summed over RGB (1 channel), or repeated cyclically
        and scaled by ``3 / in_channels`` (:func:`adapt_first_conv`), as
        segmentation_models_pytorch does.
    weights : None or "imagenet"
        ``None`` (default): random initialisation; never touches the network. ``"imagenet"``:
        torchvision's ``ResNet18_Weights.IMAGENET1K_V1``, **downloaded on first use** (online only,
        e.g. on Colab; offline it fails with torchvision's download error).
    decoder_channels : tuple of 5 ints
        Channels of the five decoder stages, from stride 16 to stride 1 (default
        ``(256, 128, 64, 32, 16)``).

    Transfer learning
    -----------------
    ``model.encoder`` is the ResNet part. :meth:`encoder_state_dict` and
    :meth:`load_encoder_state_dict` move it between models (e.g. pretrain on synthetic shapes,
    then fine-tune on nuclei; the two models need the same ``in_channels``), and
    :meth:`freeze_encoder` stops its gradients.

    Examples
    --------
    >>> import torch
    >>> model = ResNetUNet(num_classes=2)
    >>> tuple(model(torch.zeros(1, 3, 64, 96)).shape)
    (1, 2, 64, 96)
    >>> other = ResNetUNet(num_classes=5)
    >>> other.load_encoder_state_dict(model.encoder_state_dict())
    >>> bool(torch.equal(other.encoder.conv1.weight, model.encoder.conv1.weight))
    True
    """

    def __init__(self, num_classes, in_channels=3, weights=None, decoder_channels=(256, 128, 64, 32, 16)):
        super().__init__(in_channels=in_channels, num_classes=num_classes, output_stride=32)
        check_in(weights, "weights", (None, "imagenet"))
        decoder_channels = tuple(check_positive_int(c, "decoder_channels[i]") for c in decoder_channels)
        if len(decoder_channels) != 5:
            raise SegeduInputError(
                f"decoder_channels must have 5 entries (strides 16, 8, 4, 2, 1), but got {len(decoder_channels)}."
            )
        from torchvision.models import ResNet18_Weights, resnet18

        self.weights = weights
        resnet = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if weights == "imagenet" else None)
        if self.in_channels != 3:
            old = resnet.conv1
            new = nn.Conv2d(self.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            if weights is not None:
                with torch.no_grad():
                    new.weight.copy_(adapt_first_conv(old.weight, self.in_channels))
            resnet.conv1 = new
        self.encoder = ResNetEncoder(resnet)
        enc = ResNetEncoder.channels
        skips = (enc[3], enc[2], enc[1], enc[0], 0)
        blocks, c = [], enc[4]
        for skip, out in zip(skips, decoder_channels):
            blocks.append(_UpBlock(c, skip, out))
            c = out
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(c, self.num_classes, kernel_size=1)

    def forward(self, x):
        self.check_input(x)
        features = self.encoder(x)
        x = features[-1]
        skips = features[-2::-1] + [None]
        for block, skip in zip(self.decoder, skips):
            x = block(x, skip)
        return self.head(x)

    def encoder_state_dict(self) -> dict:
        """The encoder's weights (a ``state_dict`` of ``self.encoder``), to transfer to another model."""
        return self.encoder.state_dict()

    def load_encoder_state_dict(self, state_dict, strict: bool = True, adapt_in_channels: bool = False) -> None:
        """Load encoder weights from :meth:`encoder_state_dict` or a torchvision ``resnet18().state_dict()``.

        The classifier entries (``fc.weight``, ``fc.bias``) of a full ResNet are dropped. Weights
        trained on images with another number of channels (e.g. RGB shapes, then grey nuclei) are
        refused unless ``adapt_in_channels=True``, which converts the first convolution with
        :func:`adapt_first_conv`.
        """
        sd = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
        conv1 = sd.get("conv1.weight")
        if conv1 is not None and conv1.shape[1] != self.in_channels:
            if not adapt_in_channels:
                raise SegeduInputError(
                    f"the encoder weights were trained on {conv1.shape[1]}-channel images, but this model has "
                    f"in_channels={self.in_channels}. Pass adapt_in_channels=True to convert the first convolution "
                    f"(kernels summed for 1 channel), or build both models with the same in_channels."
                )
            sd["conv1.weight"] = adapt_first_conv(conv1, self.in_channels)
        self.encoder.load_state_dict(sd, strict=strict)

    def freeze_encoder(self, freeze: bool = True) -> None:
        """Stop (or, with ``freeze=False``, restart) the gradients of the encoder's parameters.

        Batch-normalisation statistics still update in ``train()`` mode; call
        ``model.encoder.eval()`` after ``model.train()`` to keep them fixed as well.
        """
        for p in self.encoder.parameters():
            p.requires_grad_(not freeze)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weights={self.weights!r}"


class ShallowResNetUNet(SegmentationModel):
    r"""ResNet-18's stem, ``layer1`` and ``layer2`` under a three-stage U-Net decoder.

    Encoder (torchvision's ``resnet18``, same layer names): ``conv1``–``bn1``–``relu`` at stride
    2 (64 channels), ``maxpool`` + ``layer1`` at stride 4 (64), ``layer2`` at stride 8 (128).
    Decoder: three times bilinear 2× upsampling, concatenation with the encoder map of the same
    stride (none at stride 1) and a :class:`~segedu.models.blocks.DoubleConv`; then a 1×1
    convolution. Input sides must be multiples of 8. :mod:`segedu.models.unet_recipes` explains why lecture
    06 stops at ``layer2`` (:class:`ResNetUNet` has all four layers).

    >>> import torch
    >>> model = ShallowResNetUNet(num_classes=2, in_channels=1)
    >>> tuple(model(torch.zeros(1, 1, 64, 40)).shape)
    (1, 2, 64, 40)
    """

    def __init__(self, num_classes, in_channels=1, decoder_channels=(64, 32, 16)):
        super().__init__(in_channels=in_channels, num_classes=num_classes, output_stride=8)
        from torchvision.models import resnet18

        resnet = resnet18(weights=None)
        self.conv1 = nn.Conv2d(self.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1, self.relu, self.maxpool = resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2 = resnet.layer1, resnet.layer2
        c16, c8, c4 = decoder_channels
        self.up4 = DoubleConv(128 + 64, c16)  # stride 8 -> 4, skip layer1
        self.up2 = DoubleConv(c16 + 64, c8)  # 4 -> 2, skip the stem
        self.up1 = DoubleConv(c8, c4)  # 2 -> 1
        self.head = nn.Conv2d(c4, self.num_classes, kernel_size=1)

    _ENCODER = ("conv1", "bn1", "layer1", "layer2")

    def encoder_parameters(self):
        return [p for name in self._ENCODER for p in getattr(self, name).parameters()]

    def encoder_state_dict(self) -> dict:
        """The encoder's weights, with torchvision's names (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...)."""
        return {k: v for k, v in self.state_dict().items() if k.split(".")[0] in self._ENCODER}

    def load_encoder_state_dict(self, state_dict) -> None:
        """Load the encoder from :meth:`encoder_state_dict` or a torchvision ``resnet18`` state dict.

        ``layer3``, ``layer4`` and ``fc`` entries are ignored. A 3-channel ``conv1`` (ImageNet)
        loads into a 1-channel model summed over R, G and B, as ``ResNetUNet`` does.
        """
        own = self.encoder_state_dict()
        picked = {k: v for k, v in state_dict.items() if k in own}
        missing = sorted(set(own) - set(picked))
        if missing:
            raise ValueError(f"the encoder state lacks {missing[:3]}...: give a ResNet-18 state dict.")
        conv1 = picked["conv1.weight"]
        if conv1.shape[1] != self.in_channels:
            if self.in_channels != 1:
                raise ValueError(f"conv1 has {conv1.shape[1]} input channels, the model {self.in_channels}.")
            picked["conv1.weight"] = conv1.sum(1, keepdim=True)
        self.load_state_dict(picked, strict=False)

    def forward(self, x):
        self.check_input(x)
        f2 = self.relu(self.bn1(self.conv1(x)))
        f4 = self.layer1(self.maxpool(f2))
        f8 = self.layer2(f4)
        up = nn.functional.interpolate
        y = self.up4(torch.cat([f4, up(f8, scale_factor=2, mode="bilinear", align_corners=False)], 1))
        y = self.up2(torch.cat([f2, up(y, scale_factor=2, mode="bilinear", align_corners=False)], 1))
        y = self.up1(up(y, scale_factor=2, mode="bilinear", align_corners=False))
        return self.head(y)
