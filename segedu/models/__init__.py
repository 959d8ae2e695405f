"""The course's segmentation networks, small enough to train on a CPU.

========================  ==============================================  ================================
name                      what                                            module
========================  ==============================================  ================================
``SegmentationModel``     base class: ``in_channels``, ``num_classes``,   :mod:`segedu.models._base`
                          ``output_stride`` and one input check
``FCN``                   FCN-32s/16s/8s (Long et al. 2015)               :mod:`segedu.models.fcn`
``fcn32s`` …              thin builders, like torchvision's               :mod:`segedu.models.fcn`
``bilinear_kernel``       bilinear upsampling filter for ConvTranspose2d  :mod:`segedu.models.fcn`
``linear_to_conv``        convolutionalise a fully connected layer        :mod:`segedu.models.fcn`
``fuse_skips``            FCN's skip fusion, as a pure function           :mod:`segedu.models.fcn`
``conv_bn_relu`` …        building blocks (``DoubleConv``, ``VGGStage``)  :mod:`segedu.models.blocks`
``UNet``                  U-Net (Ronneberger et al. 2015), valid or same  :mod:`segedu.models.unet`
                          padding
``center_crop``           U-Net's copy-and-crop                           :mod:`segedu.models.unet`
``ResNetUNet``            a torchvision ResNet-18 encoder under a U-Net   :mod:`segedu.models.unet`
                          decoder (transfer learning)
``SegNet``                SegNet (Badrinarayanan et al. 2017): decoders   :mod:`segedu.models.segnet`
                          unpool with the encoder's max-pooling indices
``DeepLab``               DeepLab v3 (Chen et al. 2017): a dilated        :mod:`segedu.models.deeplab`
                          backbone at output stride 8 or 16, then ASPP
``ASPP``                  atrous spatial pyramid pooling, as torchvision  :mod:`segedu.models.deeplab`
``small_mask_rcnn``       torchvision's Mask R-CNN (He et al. 2017) with  :mod:`segedu.models.maskrcnn`
                          a small backbone and slim heads, for a CPU
``TinySAM``               Segment Anything (Kirillov et al. 2023) from    :mod:`segedu.models.sam`
                          its parts, small enough to train on a CPU
``load_checkpoint``       a trained model shipped with segedu             :mod:`segedu.models.checkpoint`
========================  ==============================================  ================================

When the course plans a unit that this version of segedu does not have yet, asking for its names raises an
``AttributeError`` that says which unit adds them, and ``__all__`` lists only the names that exist,
so ``from segedu.models import *`` always works.

Every network is a :class:`SegmentationModel`: it takes ``(N, in_channels, H, W)`` float images,
checks them first (wrong type, shape, channels, size or dtype raise an error that names the fix) and
returns logits of shape ``(N, K, H, W)``. The exception is the instance segmenter of unit 09:
:func:`small_mask_rcnn` returns torchvision's ``MaskRCNN``, with torchvision's interface (a list of
images in, a list of dicts of boxes, labels, scores and masks out).

Names load on first use (PEP 562), so ``import segedu.models`` is cheap; using a name imports torch.

>>> from segedu.models import FCN
>>> FCN(num_classes=4, variant="32s").variant
'32s'
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it (only modules that exist: a later unit adds its row)
_LAZY = {
    "SegmentationModel": "_base",
    "FCN": "fcn",
    "fcn32s": "fcn",
    "fcn16s": "fcn",
    "fcn8s": "fcn",
    "bilinear_kernel": "fcn",
    "linear_to_conv": "fcn",
    "fuse_skips": "fcn",
    "conv_bn_relu": "blocks",
    "DoubleConv": "blocks",
    "VGGStage": "blocks",
    "load_checkpoint": "checkpoint",
    "UNet": "unet",
    "center_crop": "unet",
    "ResNetUNet": "unet",
    "SegNet": "segnet",
    "DeepLab": "deeplab",
    "ASPP": "deeplab",
    "small_mask_rcnn": "maskrcnn",
    "TinySAM": "sam",
}

# public name of a planned unit -> the unit that adds it (segedu/_units.py). When the unit lands,
# its names move from here to _LAZY.
_LATER: dict[str, str] = {}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        if name in _LATER:
            from .._units import later_unit_error

            raise later_unit_error(f"segedu.models.{name}", _LATER[name])
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
