r"""Segment Anything (Kirillov et al. 2023, arXiv:2304.02643), one small module per component.

The layout follows segment-anything's ``modeling/``: each component is a module, and
:class:`~segedu.models.sam.tiny_sam.TinySAM` composes them in one place. Every component keeps
segment-anything's parameter names, so a state dict moves between the two packages unchanged: the
tests load the same weights into both and compare the outputs.

=========================  ===================================================  ==========================
name                       what                                                 module
=========================  ===================================================  ==========================
``attention``              scaled dot-product attention, by hand                :mod:`.attention`
``Attention``              multi-head attention with q/k/v/out projections      :mod:`.attention`
``LayerNorm2d``            layer norm over the channels of an image             :mod:`.common`
``MLPBlock``               the transformer's two-layer MLP                      :mod:`.common`
``patchify``               an image as 16×16 words (ViT's patches)              :mod:`.image_encoder`
``random_masking``         MAE's random masking of patch tokens                 :mod:`.image_encoder`
``PatchEmbed``             patches to tokens, as one strided convolution        :mod:`.image_encoder`
``ImageEncoderViT``        the ViT image encoder with its neck                  :mod:`.image_encoder`
``fourier_encoding``       random Fourier features of points in [0, 1]          :mod:`.prompt_encoder`
``PositionEmbeddingRandom``  the same, as a module with its Gaussian matrix     :mod:`.prompt_encoder`
``PromptEncoder``          points, boxes and mask prompts to embeddings         :mod:`.prompt_encoder`
``TwoWayTransformer``      token-to-image and image-to-token attention          :mod:`.transformer`
``MaskDecoder``            output tokens, hypernetwork MLPs, IoU head           :mod:`.mask_decoder`
``TinySAM``                the composition, small enough to train on a CPU      :mod:`.tiny_sam`
``stability_score``        IoU between masks thresholded at ±offset             :mod:`.amg`
``point_grid``             the automatic mask generator's grid of prompts       :mod:`.amg`
``generate_masks``         the automatic mask generator in miniature            :mod:`.amg`
``build_sam``              segment-anything's ViT-B/L/H (random weights, or a   :mod:`.pretrained`
                           checkpoint file the user downloaded)
``parameter_counts``       parameters per component of a SAM                    :mod:`.pretrained`
=========================  ===================================================  ==========================

The other names load on first use (PEP 562).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "attention": "attention",
    "Attention": "attention",
    "LayerNorm2d": "common",
    "MLPBlock": "common",
    "patchify": "image_encoder",
    "random_masking": "image_encoder",
    "PatchEmbed": "image_encoder",
    "ImageEncoderViT": "image_encoder",
    "fourier_encoding": "prompt_encoder",
    "PositionEmbeddingRandom": "prompt_encoder",
    "PromptEncoder": "prompt_encoder",
    "TwoWayTransformer": "transformer",
    "MaskDecoder": "mask_decoder",
    "TinySAM": "tiny_sam",
    "stability_score": "amg",
    "point_grid": "amg",
    "generate_masks": "amg",
    "build_sam": "pretrained",
    "parameter_counts": "pretrained",
}

__all__ = list(_LAZY)

# The function shares its name with its module: importing the module (the transformer does) would bind
# ``segedu.models.sam.attention`` to the module, so the function is bound here, first. This imports torch,
# which every component needs anyway.
from .attention import Attention, attention  # noqa: E402, F401


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
