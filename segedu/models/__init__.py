"""The course's segmentation networks, small enough to train on a CPU.

=====================  ==============================================  ================================
name                   what                                            module
=====================  ==============================================  ================================
``FCN``                FCN-32s/16s/8s (Long et al. 2015)               :mod:`segedu.models.fcn`
``fcn32s`` …           thin builders, like torchvision's               :mod:`segedu.models.fcn`
``bilinear_kernel``    bilinear upsampling filter for ConvTranspose2d  :mod:`segedu.models.fcn`
``linear_to_conv``     convolutionalise a fully connected layer        :mod:`segedu.models.fcn`
``UNet``               U-Net (Ronneberger et al. 2015)                 :mod:`segedu.models.unet`
``SegNet``             SegNet (Badrinarayanan et al. 2017)             :mod:`segedu.models.segnet`
``DeepLab``            DeepLab with ASPP (Chen et al. 2018)            :mod:`segedu.models.deeplab`
``TinySAM``            a tiny Segment Anything (Kirillov et al. 2023)  :mod:`segedu.models.sam`
=====================  ==============================================  ================================

The reusable blocks (``conv_bn_relu``, ``DoubleConv``, ``VGGStage``) are in
:mod:`segedu.models.blocks`. Every network returns logits of shape ``(N, K, H, W)``.

Names load on first use (PEP 562), so ``import segedu.models`` is cheap; using a name imports torch.

>>> from segedu.models import FCN
>>> FCN(num_classes=4, variant="32s").variant
'32s'
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it
_LAZY = {
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
    "UNet": "unet",
    "SegNet": "segnet",
    "DeepLab": "deeplab",
    "TinySAM": "sam",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    full = f"{__name__}.{module_name}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name != full:
            raise
        raise AttributeError(
            f"segedu.models.{name} lives in {full}, which is not part of this version of segedu."
        ) from None
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
