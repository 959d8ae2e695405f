r"""SegNet (Badrinarayanan, Kendall and Cipolla, 2017): a decoder that upsamples with the encoder's pooling indices.

An encoder–decoder network must bring a coarse feature map back to the image's resolution, and the
fine detail of *where* a boundary lies was thrown away by the encoder's max pooling. Two answers:

- **U-Net** [2]_ keeps every encoder feature map and concatenates it into the decoder (copy and
  crop): the decoder sees all of the encoder's fine detail, at the price of storing those maps.
- **SegNet** [1]_ keeps only *where each maximum came from*: every 2×2 max pool of the encoder
  also returns the index of the maximum in its window
  (:func:`segedu.conv.max_pool2d_with_indices`), and the matching decoder stage puts each value
  back at that position with zeros elsewhere (:func:`segedu.conv.max_unpool2d`), then trainable
  convolutions fill in ("densify") the sparse map. A 2×2 window has 4 positions, so an index
  needs 2 bits, against 32 for one float of a feature map [1]_ (section 3).

Architecture (``depth`` stages; channels for ``base_channels=b``):

=====================  =============================================================  ==================
part                   layers                                                         channels
=====================  =============================================================  ==================
``encoder[i]``         ``convs[i]`` × (conv 3×3, BN, ReLU), then 2×2 max-pool         :math:`c_i = b \cdot 2^{\min(i, 3)}`
                       *with indices* (:class:`EncoderStage`)
``decoder[i]``         max-unpool 2×2 with ``encoder[i]``'s indices, then             :math:`c_i \to c_{i-1}`
                       ``convs[i]`` × (conv 3×3, BN, ReLU) (:class:`DecoderStage`)    (:math:`c_{-1} = c_0`)
``classifier``         conv 1×1 (with bias)                                           :math:`c_0 \to K`
=====================  =============================================================  ==================

The decoder mirrors the encoder: decoder stage :math:`i` has as many convolutions as encoder stage
:math:`i`, all but the last keep :math:`c_i` channels and the last maps to :math:`c_{i-1}`, the
channels of the next (finer) stage. With ``base_channels=64``, ``depth=5`` and the default
``convs`` (VGG16's 2, 2, 3, 3, 3) the encoder is VGG16's 13 convolutions and the network is the
paper's (about 29.5 million parameters with its 1×1 classifier).

Differences from the paper, on purpose: no ImageNet initialisation (the course runs offline), a 1×1
classifier instead of the paper's 3×3 one, and the input height and width must be multiples of
:math:`2^\text{depth}`, checked up front by :class:`~segedu.models.SegmentationModel` (the
unpooling itself handles odd sizes through ``output_size``, see :func:`decoder_stage`).

What the decoder keeps from the encoder, measured
-------------------------------------------------
:func:`kept_from_encoder` runs one forward pass under a ``torch.overrides.TorchFunctionMode`` and
records the tensors that the decoder reads from the encoder: the indices given to max-unpooling
(``F.max_unpool2d`` or :func:`segedu.conv.max_unpool2d`) and, for networks that concatenate skip
connections such as U-Net, every operand of ``torch.cat`` except the newest. It works on any
network without changing its code; :func:`kept_bytes` adds up their storage.

References
----------
.. [1] Badrinarayanan, V., Kendall, A. and Cipolla, R. "SegNet: A Deep Convolutional
       Encoder-Decoder Architecture for Image Segmentation." IEEE TPAMI 39(12), 2481--2495, 2017.
       arXiv:1511.00561
.. [2] Ronneberger, O., Fischer, P. and Brox, T. "U-Net: Convolutional Networks for Biomedical
       Image Segmentation." MICCAI 2015. arXiv:1505.04597
.. [3] Simonyan, K. and Zisserman, A. "Very Deep Convolutional Networks for Large-Scale Image
       Recognition." ICLR 2015. arXiv:1409.1556

Examples
--------
>>> import torch
>>> from segedu.models import SegNet
>>> model = SegNet(in_channels=3, num_classes=4, base_channels=8, depth=3)
>>> tuple(model(torch.zeros(2, 3, 32, 48)).shape)
(2, 4, 32, 48)
>>> [tuple(t.shape) for t in kept_from_encoder(model, torch.zeros(2, 3, 32, 48))]  # indices, deepest first
[(2, 32, 4, 6), (2, 16, 8, 12), (2, 8, 16, 24)]
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .. import conv as _conv
from .._validation import SegeduInputError, SegeduTypeError, check_positive_int
from ._base import SegmentationModel
from .blocks import conv_bn_relu

__all__ = [
    "SegNet",
    "EncoderStage",
    "DecoderStage",
    "decoder_stage",
    "segnet_channels",
    "VGG16_CONVS",
    "kept_from_encoder",
    "kept_bytes",
]

#: Convolutions per stage of VGG16's encoder (the paper's SegNet uses them in encoder and decoder).
VGG16_CONVS = (2, 2, 3, 3, 3)

#: SegNet pools with 2×2 windows of stride 2.
_POOL = 2


def segnet_channels(base_channels, depth) -> list[int]:
    r"""Channels of the encoder stages: :math:`c_i = b \cdot 2^{\min(i, 3)}`, doubling up to :math:`8b` like VGG16.

    >>> segnet_channels(64, 5)  # VGG16's 64, 128, 256, 512, 512
    [64, 128, 256, 512, 512]
    """
    base_channels = check_positive_int(base_channels, "base_channels")
    depth = check_positive_int(depth, "depth")
    return [base_channels * 2 ** min(i, 3) for i in range(depth)]


def _conv_stack(in_channels: int, out_channels: int, num_convs: int, keep: int) -> nn.Sequential:
    """``num_convs`` × (conv 3×3, BN, ReLU); all keep ``keep`` channels except where they must change."""
    layers = []
    for i in range(num_convs):
        c_in = in_channels if i == 0 else keep
        c_out = out_channels if i == num_convs - 1 else keep
        layers.extend(conv_bn_relu(c_in, c_out, 3))
    return nn.Sequential(*layers)


def decoder_stage(x, indices, output_size, convs):
    r"""One SegNet decoder stage: unpool ``x`` with the encoder's ``indices``, then apply ``convs``.

    Parameters
    ----------
    x : (N, C, h, w) tensor
        The decoder's feature map at the coarse resolution (the output of the previous, coarser
        decoder stage, or of the deepest encoder pool).
    indices : (N, C, h, w) int64 tensor
        The indices returned by the max pool of the *matching* encoder stage (the one whose output
        has ``x``'s size), flattened per channel plane of the ``output_size`` plane.
    output_size : (H, W)
        The size of the encoder's feature map *before* that pool (usually :math:`(2h, 2w)`; an
        odd size must be given because pooling rounded it down).
    convs : callable
        The stage's trainable layers, e.g. an ``nn.Sequential`` of (conv 3×3, BN, ReLU) blocks;
        called on the unpooled map.

    Returns
    -------
    y : tensor
        ``convs(u)`` with the sparse map

        .. math::

            u[n, c]_\text{flat}\bigl[\text{indices}[n, c, r, q]\bigr] = x[n, c, r, q],
            \qquad u = 0 \text{ elsewhere},

        of size ``output_size``, i.e. ``segedu.conv.max_unpool2d(x, indices, 2,
        output_size=output_size)``: each value returns to the position its maximum came from.

    Raises
    ------
    SegeduInputError, SegeduTypeError
        From :func:`segedu.conv.max_unpool2d`: indices of another shape (from another stage), out
        of the plane, or not integers.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from segedu.conv import max_pool2d_with_indices
    >>> before = torch.tensor([[[[1.0, 5.0], [3.0, 4.0]]]])      # a 2×2 encoder map
    >>> pooled, indices = max_pool2d_with_indices(before, 2)    # 5, found at position 1
    >>> decoder_stage(pooled, indices, (2, 2), nn.Identity())  # no convs: just the unpooling
    tensor([[[[0., 5.],
              [0., 0.]]]])
    """
    unpooled = _conv.max_unpool2d(x, indices, _POOL, output_size=tuple(output_size))
    return convs(unpooled)


class EncoderStage(nn.Module):
    """``num_convs`` × (conv 3×3, BN, ReLU), then a 2×2 max-pool that remembers where the maxima were.

    ``forward(x)`` returns ``(pooled, indices, size)``: the pooled map, the int64 indices of
    :func:`segedu.conv.max_pool2d_with_indices`, and the ``(H, W)`` before pooling (which the
    matching :class:`DecoderStage` unpools to).

    Examples
    --------
    >>> import torch
    >>> pooled, indices, size = EncoderStage(3, 8)(torch.rand(1, 3, 10, 12))
    >>> tuple(pooled.shape), indices.dtype, size
    ((1, 8, 5, 6), torch.int64, (10, 12))
    """

    def __init__(self, in_channels, out_channels, num_convs=2):
        super().__init__()
        num_convs = check_positive_int(num_convs, "num_convs")
        self.convs = _conv_stack(in_channels, out_channels, num_convs, keep=out_channels)

    def forward(self, x):
        features = self.convs(x)
        pooled, indices = _conv.max_pool2d_with_indices(features, _POOL)
        return pooled, indices, tuple(features.shape[-2:])


class DecoderStage(nn.Module):
    """Max-unpool 2×2 with the matching encoder stage's indices, then ``num_convs`` × (conv 3×3, BN, ReLU).

    All convolutions keep ``in_channels`` except the last, which maps to ``out_channels``.
    ``forward(x, indices, output_size)`` is :func:`decoder_stage` with this stage's ``convs``.

    Examples
    --------
    >>> import torch
    >>> stage = DecoderStage(16, 8, num_convs=2)
    >>> x, indices = torch.rand(1, 16, 5, 6), torch.zeros(1, 16, 5, 6, dtype=torch.int64)
    >>> tuple(stage(x, indices, (10, 12)).shape)
    (1, 8, 10, 12)
    """

    def __init__(self, in_channels, out_channels, num_convs=2):
        super().__init__()
        num_convs = check_positive_int(num_convs, "num_convs")
        self.convs = _conv_stack(in_channels, out_channels, num_convs, keep=in_channels)

    def forward(self, x, indices, output_size):
        return decoder_stage(x, indices, output_size, self.convs)


def _check_convs(convs, depth: int) -> tuple[int, ...]:
    if convs is None:
        return tuple(VGG16_CONVS[i] if i < len(VGG16_CONVS) else VGG16_CONVS[-1] for i in range(depth))
    if isinstance(convs, numbers.Integral) and not isinstance(convs, bool):
        convs = (convs,) * depth
    if isinstance(convs, (str, bytes)) or not hasattr(convs, "__len__"):
        raise SegeduTypeError(
            f"convs must be an int (the same in every stage) or {depth} ints (one per stage), but got {convs!r}."
        )
    if len(convs) != depth:
        raise SegeduInputError(
            f"convs must give one number of convolutions per stage, {depth} for depth={depth}, but got {len(convs)}: "
            f"{tuple(convs)!r}. Pass an int to use the same number in every stage."
        )
    return tuple(check_positive_int(c, "convs[i]") for c in convs)


class SegNet(SegmentationModel):
    r"""SegNet: a VGG-style encoder whose max-pooling indices drive the decoder's upsampling.

    Parameters
    ----------
    in_channels : int
        Channels of the input image (3 for RGB).
    num_classes : int
        Number of classes :math:`K` (at least 2), the channels of the output logits.
    base_channels : int
        Channels :math:`b` of the first stage; stage :math:`i` has :math:`b \cdot 2^{\min(i, 3)}`
        (:func:`segnet_channels`). The paper's VGG16 encoder has 64.
    depth : int
        Number of encoder stages, each ending in a 2×2 pool, and of decoder stages. The input
        height and width must be multiples of :math:`2^\text{depth}`.
    convs : int or sequence of ``depth`` ints, optional
        Convolutions per encoder stage, mirrored by the decoder. By default VGG16's
        (2, 2, 3, 3, 3), continued with 3 beyond five stages.

    Attributes
    ----------
    encoder : nn.ModuleList of :class:`EncoderStage`
    decoder : nn.ModuleList of :class:`DecoderStage`
        ``decoder[i]`` unpools with ``encoder[i]``'s indices; it runs in the order
        ``depth - 1, ..., 0``.
    classifier : nn.Conv2d
        1×1, :math:`c_0 \to K`.
    channels : list of int
        :math:`c_0, \dots, c_{\text{depth}-1}`.

    Input and output
    ----------------
    ``forward(x)`` takes ``(N, in_channels, H, W)`` floats with ``H`` and ``W`` multiples of
    :math:`2^\text{depth}` (other sizes, dtypes and shapes raise an error that names the fix) and
    returns logits ``(N, K, H, W)``. :meth:`encode` and :meth:`decode` are its two halves.

    References
    ----------
    .. [1] Badrinarayanan, V., Kendall, A. and Cipolla, R. "SegNet: A Deep Convolutional
           Encoder-Decoder Architecture for Image Segmentation." IEEE TPAMI 39(12), 2017.
           arXiv:1511.00561

    Examples
    --------
    >>> import torch
    >>> model = SegNet(in_channels=1, num_classes=2, base_channels=4, depth=2, convs=1)
    >>> model.channels
    [4, 8]
    >>> tuple(model(torch.rand(3, 1, 8, 12)).shape)
    (3, 2, 8, 12)

    The paper's network (VGG16 encoder, mirrored decoder) for the 12 classes of CamVid:

    >>> paper = SegNet(in_channels=3, num_classes=12, base_channels=64, depth=5)
    >>> round(sum(p.numel() for p in paper.parameters()) / 1e6, 1)
    29.5
    """

    def __init__(self, in_channels, num_classes, base_channels=64, depth=5, convs=None):
        num_classes = check_positive_int(num_classes, "num_classes", minimum=2)
        depth = check_positive_int(depth, "depth")
        super().__init__(in_channels=in_channels, num_classes=num_classes, output_stride=_POOL**depth)
        self.depth = depth
        self.base_channels = check_positive_int(base_channels, "base_channels")
        self.convs = _check_convs(convs, depth)
        self.channels = segnet_channels(self.base_channels, depth)

        c = self.channels
        inputs = [self.in_channels] + c[:-1]
        self.encoder = nn.ModuleList(EncoderStage(inputs[i], c[i], self.convs[i]) for i in range(depth))
        outputs = [c[0]] + c[:-1]  # decoder stage i ends with the channels of the finer stage i-1
        self.decoder = nn.ModuleList(DecoderStage(c[i], outputs[i], self.convs[i]) for i in range(depth))
        self.classifier = nn.Conv2d(c[0], self.num_classes, kernel_size=1)

    def encode(self, x):
        """The encoder: ``(bottleneck, indices, sizes)``, with one index tensor and pre-pool size per stage."""
        indices, sizes = [], []
        for stage in self.encoder:
            x, where, size = stage(x)
            indices.append(where)
            sizes.append(size)
        return x, indices, sizes

    def decode(self, x, indices, sizes):
        """The decoder: stage ``i`` (deepest first) unpools with ``indices[i]`` to ``sizes[i]``; then the classifier."""
        for i in reversed(range(self.depth)):
            x = self.decoder[i](x, indices[i], sizes[i])
        return self.classifier(x)

    def forward(self, x):
        self.check_input(x)
        return self.decode(*self.encode(x))

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, base_channels={self.base_channels}, depth={self.depth}, "
                f"convs={self.convs}")


# --------------------------------------------------------------------------------------------------
# Measuring what the decoder keeps from the encoder
# --------------------------------------------------------------------------------------------------


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)


def _storage_key(t: torch.Tensor):
    return (t.device, t.untyped_storage().data_ptr())


_CONCATENATIONS = (torch.cat, torch.concat, torch.concatenate)
_UNPOOLINGS = (F.max_unpool2d, _conv.max_unpool2d)


class _KeptRecorder(TorchFunctionMode):
    """Records, for every storage, the step that produced it, and which storages the decoder reads."""

    def __init__(self):
        super().__init__()
        self.step = 0
        self.produced: dict = {}
        self.alive: list = []  # references that stop freed memory being reused during the pass
        self.kept: dict = {}

    def _read(self, tensors):
        for t in tensors:
            key = _storage_key(t)
            if key in self.produced:  # produced by the network (not a parameter or the input)
                self.kept.setdefault(key, t)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _UNPOOLINGS:
            indices = args[1] if len(args) > 1 else kwargs["indices"]
            self._read([indices])
        elif func in _CONCATENATIONS:
            operands = list(_tensors(args[0] if args else kwargs["tensors"]))
            produced = [t for t in operands if _storage_key(t) in self.produced]
            if len(produced) > 1:  # every operand but the newest came from earlier: the skips
                newest = max(produced, key=lambda t: self.produced[_storage_key(t)])
                self._read([t for t in produced if t is not newest])
        out = func(*args, **kwargs)
        self.step += 1
        for t in _tensors(out):
            self.produced.setdefault(_storage_key(t), self.step)
            self.alive.append(t)
        return out


def kept_from_encoder(model, x) -> list[torch.Tensor]:
    r"""The tensors that ``model``'s decoder reads from its encoder, recorded during one forward pass.

    Parameters
    ----------
    model : nn.Module
        Any network; it is run once on ``x`` without gradients (in its current train/eval mode).
    x : tensor
        An input batch.

    Returns
    -------
    list of tensor
        In the order the decoder first reads them, one per storage: the ``indices`` operand of
        every max-unpooling (``F.max_unpool2d`` or :func:`segedu.conv.max_unpool2d`), and every
        operand of ``torch.cat`` except the one produced last (in U-Net, the encoder feature maps
        that copy-and-crop concatenates with the up-convolution's output). Tensors that the network
        did not produce (its input, its parameters) are not counted.

    Notes
    -----
    The forward pass runs under a ``torch.overrides.TorchFunctionMode``, which sees every torch
    function the network calls; :func:`segedu.conv.max_unpool2d` takes part through
    ``handle_torch_function``, as ``torch.nn.functional`` does. Nothing is estimated from the
    architecture: the tensors are the ones the decoder received. Memory is identified by storage,
    so a cropped view of a feature map counts once, as the whole map that it keeps alive.

    Examples
    --------
    >>> import torch
    >>> model = SegNet(in_channels=3, num_classes=2, base_channels=4, depth=2, convs=1)
    >>> [(tuple(t.shape), t.dtype) for t in kept_from_encoder(model, torch.rand(1, 3, 8, 8))]
    [((1, 8, 2, 2), torch.int64), ((1, 4, 4, 4), torch.int64)]
    """
    if not isinstance(model, nn.Module):
        raise SegeduTypeError(f"model must be a torch.nn.Module, but got {type(model).__name__}.")
    recorder = _KeptRecorder()
    with torch.no_grad(), recorder:
        model(x)
    return list(recorder.kept.values())


def kept_bytes(model, x) -> int:
    """Bytes of the storage behind :func:`kept_from_encoder`'s tensors (as torch holds them).

    >>> import torch
    >>> model = SegNet(in_channels=3, num_classes=2, base_channels=4, depth=2, convs=1)
    >>> kept_bytes(model, torch.rand(1, 3, 8, 8))  # int64 indices: (8·2·2 + 4·4·4) · 8 bytes
    768
    """
    return sum(t.untyped_storage().nbytes() for t in kept_from_encoder(model, x))
