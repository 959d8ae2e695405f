r"""Fully convolutional networks (Long, Shelhamer and Darrell, 2015): FCN-32s, FCN-16s and FCN-8s.

Three ideas turn an image classifier into a segmenter:

1. **Convolutionalisation.** A fully connected layer that reads a :math:`C \times h \times w` feature
   map is a convolution with an :math:`h \times w` kernel: its weight matrix
   :math:`W \in \mathbb{R}^{M \times Chw}` reshaped to :math:`M \times C \times h \times w` gives the same
   numbers on an :math:`h \times w` input, and on a larger input it slides, giving a *map* of class
   scores instead of one vector (:func:`linear_to_conv`).
2. **In-network upsampling.** The score map is 32 times coarser than the image (five 2×2 pools).
   A transposed convolution of stride :math:`f` and kernel :math:`2f`, initialised with the bilinear
   filter (:func:`bilinear_kernel`), brings it back to full resolution and can be learned.
3. **Skip fusion.** Coarse scores know *what*, fine layers know *where*. FCN-16s adds scores
   predicted from pool4 (stride 16) to the 2× upsampled stride-32 scores; FCN-8s also adds scores
   from pool3 (stride 8):

   .. math::

      \text{FCN-32s:}\quad & y = U_{32}(s_{32}) \\
      \text{FCN-16s:}\quad & y = U_{16}\bigl(U_2(s_{32}) + s_{16}\bigr) \\
      \text{FCN-8s:}\quad  & y = U_{8}\bigl(U_2(U_2(s_{32}) + s_{16}) + s_8\bigr)

   where :math:`s_r` are the class scores at stride :math:`r` and :math:`U_f` is upsampling by
   :math:`f` (see :func:`fuse_skips`).

:class:`FCN` is a *small* VGG-like version (five stages of 3×3 conv → BN → ReLU and a 2×2 pool,
``width`` channels in the first stage instead of VGG16's 64), trained from scratch on the course's
synthetic shapes; the thin builders :func:`fcn32s`, :func:`fcn16s` and :func:`fcn8s` mirror
``torchvision.models.segmentation``.

Differences from the paper, on purpose
--------------------------------------
- No pretrained ImageNet backbone (the course runs offline on a CPU) and batch normalisation in
  every stage, which lets the small network train from scratch in seconds.
- The paper pads the first convolution by 100 pixels and crops the upsampled scores back with
  offsets ("Crop" layers). Here every convolution keeps the size, every pool halves it, and each
  upsampling by :math:`f` is a ``ConvTranspose2d(kernel_size=2f, stride=f, padding=f/2)``, whose
  output is exactly :math:`f` times its input and aligned like
  ``F.interpolate(..., mode="bilinear", align_corners=False)``. So no crop is needed, but the
  input height and width must be multiples of 32; other sizes raise an error that says how to fix
  them.
- As in the paper (section 4.3), the 2× upsamplings are initialised to bilinear interpolation and
  learned, while the final upsampling is fixed to bilinear interpolation (``requires_grad=False``;
  applied to each class separately, ``groups=K``, which computes the same as the diagonal
  :func:`bilinear_kernel` weight at a K-th of the cost).
- The skip score layers start at zero (as in the paper), so an untrained FCN-16s or FCN-8s
  predicts from the stride-32 scores alone (upsampled in 2× steps, which is close to, but not
  exactly, one 32× bilinear upsampling).

References
----------
.. [1] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
       Segmentation." CVPR 2015, 3431--3440. arXiv:1411.4038
.. [2] Shelhamer, E., Long, J. and Darrell, T. "Fully Convolutional Networks for Semantic
       Segmentation." IEEE TPAMI 39(4), 640--651, 2017. arXiv:1605.06211
.. [3] Simonyan, K. and Zisserman, A. "Very Deep Convolutional Networks for Large-Scale Image
       Recognition." ICLR 2015. arXiv:1409.1556

Examples
--------
>>> import torch
>>> from segedu.models import fcn8s
>>> model = fcn8s(num_classes=4)
>>> tuple(model(torch.zeros(2, 3, 64, 96)).shape)
(2, 4, 64, 96)
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from .._validation import SegeduInputError, SegeduTypeError, check_in, check_positive_int, check_size
from ._base import SegmentationModel
from .blocks import VGGStage, conv_bn_relu

__all__ = ["bilinear_kernel", "linear_to_conv", "fuse_skips", "FCN", "fcn32s", "fcn16s", "fcn8s", "VARIANTS"]

#: The FCN variants, named by the stride of the finest layer they fuse.
VARIANTS = ("32s", "16s", "8s")

#: Total stride of the five 2×2 pools: FCN's ``output_stride``.
_STRIDE = 32


def bilinear_kernel(in_ch, out_ch, k, dtype=torch.float32) -> torch.Tensor:
    r"""The weight of a transposed convolution that performs bilinear upsampling.

    Long et al. initialise their upsampling layers with this filter. With
    :math:`f = \lceil k/2 \rceil` (``(k + 1) // 2``) and centre :math:`c = f - 1` for odd :math:`k`,
    :math:`c = f - \tfrac12` for even :math:`k`, the 1-D filter is the "tent"

    .. math:: t(a) = 1 - \frac{|a - c|}{f}, \qquad a = 0, \dots, k-1,

    and the 2-D filter is the outer product :math:`K(a, b) = t(a)\,t(b)`. Channel :math:`i` is
    upsampled on its own: ``weight[i, i] = K`` and every other ``weight[i, j]`` is zero.

    Used as ``nn.ConvTranspose2d(C, C, kernel_size=2 * s, stride=s, padding=s // 2)`` for an even
    factor ``s`` (e.g. ``k=4, stride=2, padding=1`` for 2×), it gives an output exactly ``s`` times
    larger whose interior equals ``F.interpolate(x, scale_factor=s, mode="bilinear",
    align_corners=False)``; a constant image stays constant away from the border (near the border
    the zero padding pulls the values down).

    Parameters
    ----------
    in_ch, out_ch : int
        Input and output channels of the transposed convolution. The filter sits on the
        ``min(in_ch, out_ch)`` diagonal pairs ``(i, i)``.
    k : int
        Kernel size (at least 1).
    dtype : torch.dtype
        Floating dtype of the result (default float32).

    Returns
    -------
    torch.Tensor, shape ``(in_ch, out_ch, k, k)``
        In the layout of ``nn.ConvTranspose2d.weight`` (input channels first).

    Examples
    --------
    >>> w = bilinear_kernel(1, 1, 4)
    >>> w[0, 0]
    tensor([[0.0625, 0.1875, 0.1875, 0.0625],
            [0.1875, 0.5625, 0.5625, 0.1875],
            [0.1875, 0.5625, 0.5625, 0.1875],
            [0.0625, 0.1875, 0.1875, 0.0625]])
    >>> bilinear_kernel(2, 2, 3)[0, 1].abs().sum().item()  # off-diagonal channel pairs are zero
    0.0
    """
    in_ch = check_positive_int(in_ch, "in_ch")
    out_ch = check_positive_int(out_ch, "out_ch")
    k = check_positive_int(k, "k")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise SegeduTypeError(f"dtype must be a floating torch dtype such as torch.float32, but got {dtype!r}.")
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = torch.arange(k, dtype=torch.float64)
    tent = 1 - (og - center).abs() / factor
    filt = torch.outer(tent, tent).to(dtype)
    weight = torch.zeros(in_ch, out_ch, k, k, dtype=dtype)
    diag = torch.arange(min(in_ch, out_ch))
    weight[diag, diag] = filt
    return weight


def linear_to_conv(linear, in_channels, spatial_size) -> nn.Conv2d:
    r"""Convolutionalise a fully connected layer: the same weights as a ``Conv2d``.

    A ``nn.Linear(C*h*w, M)`` that reads a flattened :math:`C \times h \times w` feature map computes
    :math:`y_m = b_m + \sum_{c,u,v} W_{m,\,(c h + u) w + v}\; x_{c,u,v}`, which is exactly a
    convolution with an :math:`h \times w` kernel :math:`K_{m,c,u,v} = W_{m,\,(c h + u) w + v}` and no
    padding, evaluated at the single position where it fits. The weight matrix only needs a
    reshape (in the order of ``torch.flatten``: channel, then row, then column).

    On an :math:`h \times w` input the convolution returns an ``M×1×1`` map equal to the linear
    layer's output; on a larger input it slides and returns a map of scores, one vector per
    window: the network has become *fully convolutional* (Long et al. 2015, section 3.1).

    Parameters
    ----------
    linear : nn.Linear
        The fully connected layer, with ``in_features == in_channels * h * w``.
    in_channels : int
        Channels :math:`C` of the feature map that was flattened.
    spatial_size : int or (int, int)
        :math:`(h, w)` of that feature map (an int means square).

    Returns
    -------
    nn.Conv2d
        ``Conv2d(C, M, kernel_size=(h, w))`` with the copied weights (and bias, if any), on the
        linear layer's device and dtype.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> fc = nn.Linear(8 * 3 * 3, 5)
    >>> conv = linear_to_conv(fc, in_channels=8, spatial_size=3)
    >>> x = torch.randn(2, 8, 3, 3)
    >>> torch.allclose(conv(x).flatten(1), fc(x.flatten(1)), atol=1e-6)
    True
    >>> tuple(conv(torch.randn(2, 8, 7, 7)).shape)  # a larger input gives a 5×5 map of scores
    (2, 5, 5, 5)
    """
    if not isinstance(linear, nn.Linear):
        raise SegeduTypeError(f"linear must be an nn.Linear layer, but got {type(linear).__name__}.")
    in_channels = check_positive_int(in_channels, "in_channels")
    h, w = check_size(spatial_size, "spatial_size")
    if linear.in_features != in_channels * h * w:
        raise SegeduInputError(
            f"linear has in_features={linear.in_features}, but in_channels * h * w = "
            f"{in_channels} * {h} * {w} = {in_channels * h * w}. Pass the channels and the spatial size of "
            f"the feature map that was flattened into the linear layer."
        )
    weight = linear.weight
    conv = nn.Conv2d(
        in_channels, linear.out_features, (h, w), bias=linear.bias is not None, device=weight.device, dtype=weight.dtype
    )
    with torch.no_grad():
        conv.weight.copy_(weight.reshape(linear.out_features, in_channels, h, w))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def _upsample(num_classes: int, factor: int, learnable: bool) -> nn.ConvTranspose2d:
    """Transposed convolution that upsamples by ``factor`` (even), initialised to bilinear.

    A learnable one is a full ``K → K`` transposed convolution (it may learn to mix classes). A
    fixed one is applied to each class on its own (``groups=K``): the same function as the full
    weight ``bilinear_kernel(K, K, 2 * factor)``, whose off-diagonal blocks are zero, but ``K``
    times cheaper, which matters for the 64×64 kernel of the 32× upsampling.
    """
    k = 2 * factor
    groups = 1 if learnable else num_classes
    up = nn.ConvTranspose2d(
        num_classes, num_classes, kernel_size=k, stride=factor, padding=factor // 2, groups=groups, bias=False
    )
    weight = bilinear_kernel(num_classes, num_classes, k)
    if not learnable:  # grouped layout (K, 1, k, k): the diagonal blocks
        diag = torch.arange(num_classes)
        weight = weight[diag, diag].unsqueeze(1)
    with torch.no_grad():
        up.weight.copy_(weight)
    up.weight.requires_grad_(learnable)
    return up


def fuse_skips(score32, score16=None, score8=None, upscore2=None, upscore_pool4=None, upscore=None):
    r"""FCN's skip fusion: sum the class scores from coarse to fine, then upsample to the input size.

    .. math::

        \text{32s: } U_{32}(s_{32}), \quad
        \text{16s: } U_{16}\bigl(U_2(s_{32}) + s_{16}\bigr), \quad
        \text{8s: } U_{8}\bigl(U_2'(U_2(s_{32}) + s_{16}) + s_8\bigr)

    with :math:`U_2` = ``upscore2``, :math:`U_2'` = ``upscore_pool4`` and the final :math:`U_f` =
    ``upscore``. The variant follows from the scores given: ``score32`` alone is FCN-32s, with
    ``score16`` FCN-16s, with both FCN-8s. Each 2× upsampling doubles the height and width exactly,
    so the sums need no cropping (Long et al., 2015, Section 4.2). :meth:`FCN.forward`, the grader
    of exercise 05 and lecture 05 all call this one function.

    Parameters
    ----------
    score32 : Tensor (N, K, H/32, W/32)
        Scores from the classifier head (``score_fr``).
    score16 : Tensor (N, K, H/16, W/16), optional
        Scores predicted from pool4 (``score_pool4``).
    score8 : Tensor (N, K, H/8, W/8), optional
        Scores predicted from pool3 (``score_pool3``); needs ``score16``.
    upscore2, upscore_pool4, upscore : callables (modules)
        The 2× upsampling after stride 32, the 2× one after stride 16, and the final one.

    Returns
    -------
    Tensor (N, K, H, W)

    Examples
    --------
    >>> import torch
    >>> double = torch.nn.Upsample(scale_factor=2)
    >>> s32, s16 = torch.ones(1, 2, 1, 1), torch.ones(1, 2, 2, 2)
    >>> fuse_skips(s32, s16, upscore2=double, upscore=torch.nn.Upsample(scale_factor=16)).shape
    torch.Size([1, 2, 32, 32])
    """
    if upscore is None:
        raise SegeduInputError("fuse_skips needs the final upsampling layer: pass upscore=...")
    if score16 is None:
        if score8 is not None:
            raise SegeduInputError("fuse_skips got score8 without score16: FCN-8s fuses both, so pass score16 too.")
        return upscore(score32)
    if upscore2 is None:
        raise SegeduInputError("fuse_skips needs upscore2 to bring score32 to stride 16 before adding score16.")
    fused = upscore2(score32) + score16  # stride 16
    if score8 is None:
        return upscore(fused)
    if upscore_pool4 is None:
        raise SegeduInputError("fuse_skips needs upscore_pool4 to bring the stride-16 sum to stride 8.")
    fused = upscore_pool4(fused) + score8  # stride 8
    return upscore(fused)


class FCN(SegmentationModel):
    r"""A small fully convolutional network with FCN-32s, FCN-16s or FCN-8s skip fusion.

    Architecture (channels for ``width=w``; the stride is relative to the input):

    =================  ===============================================  =================  =======
    part               layers                                           channels           stride
    =================  ===============================================  =================  =======
    ``stages[0..4]``   ``convs`` × (conv 3×3, BN, ReLU), 2×2 max-pool   w, 2w, 4w, 8w, 8w  2 … 32
    ``classifier``     "fc6": conv 3×3; "fc7": conv 1×1 (BN, ReLU)      ``head_channels``  32
    ``score_fr``       conv 1×1                                         K                  32
    ``score_pool4``    conv 1×1 on stage 4's output (16s, 8s)           K                  16
    ``score_pool3``    conv 1×1 on stage 3's output (8s)                K                  8
    ``upscore2``       2× ConvTranspose2d, learned (16s, 8s)            K                  32 → 16
    ``upscore_pool4``  2× ConvTranspose2d, learned (8s)                 K                  16 → 8
    ``upscore``        32×, 16× or 8× ConvTranspose2d, fixed            K                  → 1
    =================  ===============================================  =================  =======

    The classifier head plays the role of VGG's fully connected fc6/fc7 after convolutionalisation
    (:func:`linear_to_conv`); it uses a 3×3 rather than a 7×7 kernel because the stride-32 map of a
    64×64 image is only 2×2.

    Parameters
    ----------
    num_classes : int
        Number of classes :math:`K` (at least 2), the channels of the output.
    variant : {"8s", "16s", "32s"}
        Which skip layers are fused (see the module docstring and :func:`fuse_skips`).
    in_channels : int
        Channels of the input image (3 for RGB).
    width : int
        Channels of the first stage; the stages have ``width * (1, 2, 4, 8, 8)`` like VGG16's
        ``64 * (1, 2, 4, 8, 8)``.
    convs : int or sequence of 5 ints
        Convolutions per stage (default 2 in every stage; VGG16 uses 2, 2, 3, 3, 3).
    head_channels : int, optional
        Channels of fc6 and fc7 (default ``16 * width``, like VGG's 4096 = 8 × 512).

    Input and output
    ----------------
    ``forward(x)`` takes ``x`` of shape ``(N, in_channels, H, W)`` with ``H`` and ``W`` multiples of
    32 and returns logits (unnormalised class scores) of shape ``(N, K, H, W)``; the prediction is
    ``logits.argmax(1)``. FCN is a :class:`~segedu.models.SegmentationModel` with
    ``output_stride=32`` (five 2×2 pools), so :meth:`~segedu.models.SegmentationModel.check_input`
    rejects other sizes with a :class:`~segedu._validation.SegeduInputError` that gives the padded
    size and the ``F.pad`` call; pad the image and crop the logits back.

    Examples
    --------
    >>> import torch
    >>> model = FCN(num_classes=3, variant="16s", width=8)
    >>> x = torch.rand(1, 3, 64, 64)
    >>> logits = model(x)
    >>> tuple(logits.shape)
    (1, 3, 64, 64)
    >>> pool3, pool4, pool5 = model.encode(x)
    >>> [tuple(t.shape[-2:]) for t in (pool3, pool4, pool5)]
    [(8, 8), (4, 4), (2, 2)]
    """

    def __init__(self, num_classes, variant="8s", in_channels=3, width=16, convs=2, head_channels=None):
        num_classes = check_positive_int(num_classes, "num_classes", minimum=2)  # softmax over >= 2 classes
        check_in(variant, "variant", VARIANTS)
        super().__init__(in_channels=in_channels, num_classes=num_classes, output_stride=_STRIDE)
        self.variant = variant
        self.width = check_positive_int(width, "width")
        if isinstance(convs, numbers.Integral) and not isinstance(convs, bool):
            convs = (convs,) * 5
        convs = tuple(convs)
        if len(convs) != 5:
            raise SegeduInputError(f"convs must be an int or 5 ints (one per stage), but got {convs!r}.")
        convs = tuple(check_positive_int(c, "convs[i]") for c in convs)
        head_channels = 16 * self.width if head_channels is None else head_channels
        head_channels = check_positive_int(head_channels, "head_channels")
        K = self.num_classes

        widths = [self.width * m for m in (1, 2, 4, 8, 8)]
        chans = [self.in_channels] + widths
        self.stages = nn.ModuleList(VGGStage(chans[i], chans[i + 1], convs[i]) for i in range(5))
        # fc6 and fc7, convolutionalised.
        self.classifier = nn.Sequential(
            conv_bn_relu(widths[4], head_channels, kernel_size=3),
            conv_bn_relu(head_channels, head_channels, kernel_size=1),
        )
        self.score_fr = nn.Conv2d(head_channels, K, kernel_size=1)

        # Skip layers: created last, so that the layers all variants share are initialised with
        # the same random numbers after the same torch.manual_seed (a fair comparison).
        if variant in ("16s", "8s"):
            self.upscore2 = _upsample(K, 2, learnable=True)
            self.score_pool4 = nn.Conv2d(widths[3], K, kernel_size=1)
        if variant == "8s":
            self.upscore_pool4 = _upsample(K, 2, learnable=True)
            self.score_pool3 = nn.Conv2d(widths[2], K, kernel_size=1)
        for name in ("score_pool4", "score_pool3"):
            layer = getattr(self, name, None)
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.upscore = _upsample(K, int(variant[:-1]), learnable=False)

    # -- the three steps of forward (after SegmentationModel.check_input) ----------------------
    def encode(self, x):
        """The backbone: returns the outputs of pool3, pool4 and pool5 (strides 8, 16, 32)."""
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats[2], feats[3], feats[4]

    def score_maps(self, x):
        """The class scores at strides 32, 16 and 8 (``None`` for the strides this variant does not fuse)."""
        pool3, pool4, pool5 = self.encode(x)
        score32 = self.score_fr(self.classifier(pool5))
        score16 = self.score_pool4(pool4) if self.variant in ("16s", "8s") else None
        score8 = self.score_pool3(pool3) if self.variant == "8s" else None
        return score32, score16, score8

    def forward(self, x):
        self.check_input(x)
        score32, score16, score8 = self.score_maps(x)
        return fuse_skips(score32, score16, score8, upscore2=getattr(self, "upscore2", None),
                          upscore_pool4=getattr(self, "upscore_pool4", None), upscore=self.upscore)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, num_classes={self.num_classes}, width={self.width}"


def fcn32s(num_classes, **kwargs) -> FCN:
    """FCN-32s: the stride-32 scores upsampled 32× (see :class:`FCN` for the keyword arguments).

    >>> fcn32s(4).variant
    '32s'
    """
    return FCN(num_classes, variant="32s", **kwargs)


def fcn16s(num_classes, **kwargs) -> FCN:
    """FCN-16s: stride-32 scores upsampled 2×, plus pool4's scores, upsampled 16× (see :class:`FCN`).

    >>> fcn16s(4).variant
    '16s'
    """
    return FCN(num_classes, variant="16s", **kwargs)


def fcn8s(num_classes, **kwargs) -> FCN:
    """FCN-8s: FCN-16s's stride-16 sum upsampled 2×, plus pool3's scores, upsampled 8× (see :class:`FCN`).

    >>> fcn8s(4).variant
    '8s'
    """
    return FCN(num_classes, variant="8s", **kwargs)
