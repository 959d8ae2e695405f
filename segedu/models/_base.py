r"""The base class of the course's segmentation networks: one input check for all of them.

Why a base class
----------------
Every network of the course (FCN in unit 05, then U-Net, SegNet, DeepLab and TinySAM) maps a batch
of images ``(N, C, H, W)`` to logits ``(N, K, H, W)``, and every one of them fails in the same ways
when it is fed something else: a numpy array, a single image without its batch axis, a
channels-last tensor, a ``uint8`` image, or a height that the encoder cannot halve five times.
PyTorch then fails deep inside a layer, with a message about ``weight of size [16, 3, 3, 3]`` or
``Sizes of tensors must match``, that says nothing about the image a student passed in.

:class:`SegmentationModel` checks the input once, at the top of ``forward``, and names both the
problem and the fix, in the spirit of ``segmentation_models_pytorch``'s
``SegmentationModel.check_input_shape``. A network declares three numbers:

``in_channels``
    Channels of the input image (3 for RGB, 1 for grey).
``num_classes``
    Channels :math:`K` of the output logits.
``output_stride``
    The factor by which the encoder downsamples. A network whose decoder upsamples by exact
    factors (FCN's transposed convolutions, U-Net's up-convolutions, SegNet's unpooling) returns
    logits of the input's size only when :math:`H` and :math:`W` are multiples of it: 32 for five
    2×2 pools (:math:`2^5`). ``1`` accepts any size.

How a network uses it
---------------------
The subclass validates its own arguments, calls
``super().__init__(in_channels=..., num_classes=..., output_stride=...)`` before it creates any
layer, and starts ``forward`` with ``self.check_input(x)``. The messages name the concrete class
(``type(self).__name__``), so a student sees ``UNet`` or ``FCN``, not ``SegmentationModel``.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from segedu.models import SegmentationModel
>>> class Tiny(SegmentationModel):
...     def __init__(self, num_classes=2):
...         super().__init__(in_channels=1, num_classes=num_classes, output_stride=4)
...         self.down = nn.Conv2d(1, num_classes, kernel_size=4, stride=4)
...         self.up = nn.Upsample(scale_factor=4)
...     def forward(self, x):
...         self.check_input(x)
...         return self.up(self.down(x))
>>> model = Tiny()
>>> tuple(model(torch.zeros(2, 1, 8, 12)).shape)
(2, 2, 8, 12)
>>> try:
...     model(torch.zeros(2, 1, 10, 12))
... except ValueError as err:  # a SegeduInputError
...     print(err)  # doctest: +ELLIPSIS
Tiny needs the input height and width to be multiples of 4 (its output stride), but got 10×12. Pad the image to 12×12, the nearest valid size, ... with logits[..., :10, :12].
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import SegeduInputError, SegeduTypeError, check_positive_int

__all__ = ["SegmentationModel"]


def _channels(n: int) -> str:
    return f"{n} channel" if n == 1 else f"{n} channels"


def _autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # older torch takes no device type: it asks about CUDA
        return bool(torch.is_autocast_enabled()) if device_type == "cuda" else False
    except RuntimeError:  # a device type without autocast, e.g. "meta"
        return False


def _check_input_matches_weights(model, x) -> None:
    """An input on another device, or of another float dtype, than the weights: the error names the fix.

    Without it torch fails inside the first convolution with "expected scalar type Double but found
    Float" or "Input type ... and weight type ... should be the same". Floats keep their dtype, so a
    float64 input is not cast down: the model must be made float64 instead. Under autocast the
    layers choose the dtype, so only the device is checked there.
    """
    weight = next(model.parameters(), None)
    if weight is None:
        return
    name = type(model).__name__
    if x.device != weight.device:
        raise SegeduInputError(
            f"{name} has its weights on {weight.device}, but the input is on {x.device}. Move the model with "
            f"model.to(x.device), or the input with x.to({str(weight.device)!r}) (one device for both)."
        )
    if x.dtype != weight.dtype and not _autocast_enabled(x.device.type):
        raise SegeduTypeError(
            f"{name} has {weight.dtype} weights, but the input has dtype {x.dtype}. For a {x.dtype} "
            f"result convert the model with model.to({x.dtype}) (e.g. model.double()); otherwise convert the "
            f"input with x.to({weight.dtype})."
        )


class SegmentationModel(nn.Module):
    r"""Base class of segedu's networks: ``(N, in_channels, H, W)`` images in, ``(N, K, H, W)`` logits out.

    Parameters
    ----------
    in_channels : int
        Channels of the input image (at least 1).
    num_classes : int
        Number of classes :math:`K`, the channels of the output (at least 1; a subclass may require
        more, e.g. FCN's softmax over at least 2 classes).
    output_stride : int
        The input height and width must be multiples of it (default 1: any size). For a network
        with :math:`p` 2×2 pools and a decoder that upsamples by exact factors it is :math:`2^p`.

    Attributes
    ----------
    in_channels, num_classes, output_stride : int
        The validated arguments; :meth:`check_input` reads them.

    Notes
    -----
    Keyword-only, so that a subclass cannot swap ``in_channels`` and ``num_classes`` by accident.
    Call it before creating any layer (as for every ``nn.Module``).

    Examples
    --------
    >>> import torch
    >>> class Identity(SegmentationModel):
    ...     def __init__(self):
    ...         super().__init__(in_channels=3, num_classes=3)
    ...     def forward(self, x):
    ...         self.check_input(x)
    ...         return x
    >>> net = Identity()
    >>> net
    Identity(in_channels=3, num_classes=3, output_stride=1)
    >>> tuple(net(torch.rand(1, 3, 5, 7)).shape)  # output_stride 1: any size
    (1, 3, 5, 7)
    >>> try:
    ...     net(torch.rand(5, 7, 3))
    ... except ValueError as err:
    ...     print(err)
    Identity expects a batch of shape (N, 3, H, W), but got 3-D input of shape (5, 7, 3). It looks like one channels-last image (H, W, C): use x.permute(2, 0, 1)[None].
    """

    def __init__(self, *, in_channels, num_classes, output_stride=1):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.output_stride = check_positive_int(output_stride, "output_stride")

    # ------------------------------------------------------------------------------------------
    def check_input(self, x) -> None:
        """Raise an error that names the problem and the fix unless ``x`` is a valid input.

        A valid input is a floating-point ``torch.Tensor`` of shape ``(N, in_channels, H, W)`` with
        ``H`` and ``W`` positive multiples of ``output_stride``. The checks run in this order, so
        the first message is about the most basic problem: not a tensor
        (:class:`~segedu._validation.SegeduTypeError`); not 4-D, wrong channel count, an empty side,
        a side that is not a multiple of ``output_stride``
        (:class:`~segedu._validation.SegeduInputError`, a ``ValueError``); an integer or boolean
        dtype (:class:`~segedu._validation.SegeduTypeError`, a ``TypeError``); an input on another device
        than the weights, or of another float dtype (the error names ``model.to(...)`` or ``x.to(...)``).

        Subclasses call it first thing in ``forward``; it costs a few attribute reads.
        """
        name = type(self).__name__
        c = self.in_channels
        expected = f"(N, {c}, H, W)"
        if not isinstance(x, torch.Tensor):
            raise SegeduTypeError(
                f"{name} expects a torch.Tensor of shape {expected}, but got {self._describe(x)}. "
                f"{self._convert_hint(x)}"
            )
        shape = tuple(x.shape)
        if x.ndim != 4:
            raise SegeduInputError(
                f"{name} expects a batch of shape {expected}, but got {x.ndim}-D input of shape {shape}."
                f"{self._ndim_hint(shape)}"
            )
        if shape[1] != c:
            raise SegeduInputError(
                f"{name} was built with in_channels={c}, but the input has {_channels(shape[1])} "
                f"(shape {shape}).{self._channel_hint(shape)}"
            )
        h, w = shape[2], shape[3]
        s = self.output_stride
        if h == 0 or w == 0:
            at_least = f"{s}×{s}" if s > 1 else "1×1"
            raise SegeduInputError(
                f"{name} got an empty image of size {h}×{w} (shape {shape}). Pass images of at least {at_least} "
                f"pixels; an empty crop or slice (e.g. img[a:b] with a >= b) is the usual cause."
            )
        if h % s or w % s:
            good_h, good_w = -(-h // s) * s, -(-w // s) * s
            pad_h, pad_w = good_h - h, good_w - w
            # reflect padding needs each pad to be smaller than the side it mirrors
            reflect = ", mode='reflect'" if pad_h < h and pad_w < w else ""
            raise SegeduInputError(
                f"{name} needs the input height and width to be multiples of {s} (its output stride), but got "
                f"{h}×{w}. Pad the image to {good_h}×{good_w}, the nearest valid size, on the right and bottom with "
                f"torch.nn.functional.pad(x, (0, {pad_w}, 0, {pad_h}){reflect}), and crop the logits back to the "
                f"image with logits[..., :{h}, :{w}]."
            )
        if not x.is_floating_point():
            if x.dtype == torch.bool:
                kind = "boolean"
                fix = "Use x.float() (True becomes 1.0); a boolean tensor is usually a mask, not an image."
            elif x.is_complex():
                kind, fix = "complex", "Pass a real image, e.g. x.real or x.abs()."
            else:
                kind = "integer"
                fix = "Use x.float() / 255 for 0..255 images (such as uint8), so that they lie in 0..1; otherwise x.float()."
            raise SegeduTypeError(
                f"{name} expects a floating-point image, but the input has {kind} dtype {x.dtype}. {fix}"
            )
        _check_input_matches_weights(self, x)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, output_stride={self.output_stride}"

    # -- pieces of the messages -----------------------------------------------------------------
    @staticmethod
    def _describe(x) -> str:
        shape = getattr(x, "shape", None)
        dtype = getattr(x, "dtype", None)
        if shape is not None and dtype is not None:
            return f"a {type(x).__module__.split('.')[0]}.{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
        return f"a {type(x).__name__}"

    def _convert_hint(self, x) -> str:
        c = self.in_channels
        shape = tuple(getattr(x, "shape", ()))
        scale = " (and divide by 255 if it holds 0..255 values)"
        if len(shape) == 2 and c == 1:
            return f"Convert a grey H×W numpy image with torch.from_numpy(img).float()[None, None]{scale}."
        if len(shape) == 4 and shape[1] == c:
            return f"Convert a numpy batch with torch.from_numpy(x).float(){scale}."
        if len(shape) == 4 and shape[-1] == c:
            return f"Convert a channels-last numpy batch with torch.from_numpy(x).permute(0, 3, 1, 2).float(){scale}."
        return (
            f"Convert a numpy H×W×{c} image with torch.from_numpy(img).permute(2, 0, 1)[None].float(){scale}, "
            f"or use torchvision.transforms.functional.to_tensor(img)[None], which also scales uint8 to 0..1."
        )

    def _ndim_hint(self, shape) -> str:
        c = self.in_channels
        if len(shape) == 3:
            if shape[0] == c:
                return " It looks like one image (C, H, W). Add a batch axis with x[None] (or x.unsqueeze(0))."
            if shape[-1] == c:
                return " It looks like one channels-last image (H, W, C): use x.permute(2, 0, 1)[None]."
            if c == 1:
                return " It looks like a batch of grey images (N, H, W): add the channel axis with x[:, None]."
            return " Add a batch axis with x[None] (or x.unsqueeze(0)) if it is one (C, H, W) image."
        if len(shape) == 2:
            if c == 1:
                return " It looks like one grey image (H, W): use x[None, None]."
            return f" It looks like one grey image (H, W), but the model expects {_channels(c)}."
        if len(shape) == 5 and shape[0] == 1:
            return " It has an extra leading axis of size 1: drop it with x[0]."
        return ""

    def _channel_hint(self, shape) -> str:
        c, got = self.in_channels, shape[1]
        if shape[-1] == c:
            return " It looks channels-last (N, H, W, C): use x.permute(0, 3, 1, 2)."
        if c == 3 and got == 1:
            return (
                " For a grey image, repeat it to RGB with x.expand(-1, 3, -1, -1), or build the model with in_channels=1."
            )
        if c == 3 and got == 4:
            return " For an RGBA image, drop the alpha channel with x[:, :3]."
        if c == 1 and got in (3, 4):
            return (
                " For a colour image, convert it to grey (e.g. x[:, :3].mean(1, keepdim=True)), or build the model "
                "with in_channels=3."
            )
        return f" Pass images with {_channels(c)}, or build the model with in_channels={got}."
