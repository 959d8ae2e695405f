r"""The full-size Segment Anything models of Meta's ``segment-anything`` package, built offline.

SAM (Kirillov et al. 2023, arXiv:2304.02643) comes in three sizes that differ only in the image
encoder, a ViT (Dosovitskiy et al. 2020, arXiv:2010.11929) pre-trained as a masked autoencoder
(He et al. 2021, arXiv:2111.06377):

=======  =========  =====  =====  ==========================
kind     width $C$  depth  heads  official checkpoint
=======  =========  =====  =====  ==========================
vit_b    768        12     12     ``sam_vit_b_01ec64.pth``
vit_l    1024       24     16     ``sam_vit_l_0b3195.pth``
vit_h    1280       32     16     ``sam_vit_h_4b8939.pth``
=======  =========  =====  =====  ==========================

All three share the prompt encoder and the mask decoder (a two-way transformer of width 256). The
image encoder dominates the cost: a ViT-B block holds $12\,C^2$ weights ($3C^2$ for the query, key and
value projections, $C^2$ for the output projection and $8C^2$ for the MLP of width $4C$), so the twelve
blocks hold about 85 million of ViT-B's 94 million parameters, while the prompt encoder holds
6 220 and the mask decoder about 4 million.

:func:`build_sam` never touches the network. Without a checkpoint it returns random weights, which is
enough to count parameters, read the architecture and run the API; with ``checkpoint`` (a path to a
file that *you* downloaded, e.g. on Colab, from :data:`SAM_CHECKPOINT_URLS`) it loads Meta's weights.
:func:`full_size_predict` runs the whole promptable path of ``SamPredictor`` for one click.

>>> from segedu.models.sam.pretrained import build_sam, parameter_counts
>>> sam = build_sam("vit_b", device="meta")      # shapes only, no memory: for counting
>>> counts = parameter_counts(sam)
>>> counts["prompt_encoder"], counts["total"]
(6220, 93735472)
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..._validation import SegeduInputError, SegeduTypeError, check_in

__all__ = ["SAM_CHECKPOINT_URLS", "SET_IMAGE_SECONDS", "build_sam", "parameter_counts", "full_size_predict",
           "full_size_enabled"]

#: Where Meta publishes the official weights (the segment-anything README's links). Download one by
#: hand where you are online (e.g. ``!wget`` in Colab) and pass the file's path to :func:`build_sam`;
#: segedu itself never downloads anything.
SAM_CHECKPOINT_URLS = {
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
}

#: Seconds that ``SamPredictor.set_image`` takes with ViT-B on one 1024×1024 image, as measured for
#: this course (issue 16): on a 2-core CPU, and on a datacenter GPU.
SET_IMAGE_SECONDS = {"2-core CPU": 27.0, "datacenter GPU": 0.05}

_COMPONENTS = ("image_encoder", "prompt_encoder", "mask_decoder")


def build_sam(kind: str = "vit_b", checkpoint=None, device=None) -> nn.Module:
    """Segment-anything's ``Sam`` of the given size, with random weights unless a checkpoint is given.

    This is ``segment_anything.sam_model_registry[kind](checkpoint=checkpoint)``, with two
    differences that matter in a course: the checkpoint is read onto the CPU with
    ``torch.load(..., weights_only=True)`` (so a file saved on a GPU loads anywhere and no code in it
    runs), and a missing or mismatched file is reported with the fix.

    Parameters
    ----------
    kind : {"vit_b", "vit_l", "vit_h"}
        The image encoder's size (see the module's table).
    checkpoint : str or Path, optional
        The explicit switch for the real weights: the path of an official checkpoint that you
        downloaded from :data:`SAM_CHECKPOINT_URLS`. ``None`` (the default) keeps the random weights.
    device : str or torch.device, optional
        Where to build the model. ``"meta"`` builds shapes without memory or time, enough for
        :func:`parameter_counts`, but such a model cannot run.

    Returns
    -------
    segment_anything.modeling.Sam
        In evaluation mode.

    Examples
    --------
    >>> sam = build_sam("vit_l", device="meta")
    >>> sam.image_encoder.patch_embed.proj.weight.shape   # 16×16 RGB patches to 1024 channels
    torch.Size([1024, 3, 16, 16])
    """
    from segment_anything import sam_model_registry

    check_in(kind, "kind", tuple(SAM_CHECKPOINT_URLS))
    device = torch.device("cpu") if device is None else torch.device(device)
    if checkpoint is not None:
        if device.type == "meta":
            raise SegeduInputError("device='meta' builds a model without memory, so it cannot hold a checkpoint's "
                                   "weights: leave device=None (or pass 'cpu' / 'cuda') to load a checkpoint.")
        path = Path(checkpoint)
        if not path.is_file():
            raise SegeduInputError(
                f"checkpoint {str(checkpoint)!r} is not a file. Download the official {kind} weights where you are "
                f"online (e.g. in Colab: !wget {SAM_CHECKPOINT_URLS[kind]}) and pass the downloaded file's path, "
                "or pass checkpoint=None for random weights.")
    with torch.device(device):
        sam = sam_model_registry[kind]()
    if checkpoint is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            sam.load_state_dict(state)
        except RuntimeError as error:
            matching = [k for k, url in SAM_CHECKPOINT_URLS.items() if url.rsplit("/", 1)[1] == path.name]
            hint = f" The file's name says it is a {matching[0]} checkpoint: pass kind={matching[0]!r}." if matching else ""
            raise SegeduInputError(f"the checkpoint {path.name} does not fit a SAM of kind={kind!r}.{hint} "
                                   f"(torch said: {str(error).splitlines()[0]})") from None
    return sam.eval()


def parameter_counts(model: nn.Module) -> dict:
    """The number of parameters of each component of a SAM, and of the whole model.

    Works for segment-anything's ``Sam`` and for :class:`~segedu.models.sam.tiny_sam.TinySAM`, which
    use the same component names. Buffers (the prompt encoder's Gaussian matrix, the pixel mean and
    standard deviation) are not parameters and are not counted.

    Returns
    -------
    dict
        ``{"image_encoder": n1, "prompt_encoder": n2, "mask_decoder": n3, "total": n}``; ``total``
        counts every parameter of ``model`` once.

    Examples
    --------
    >>> from torch import nn
    >>> toy = nn.Module()
    >>> toy.image_encoder, toy.prompt_encoder, toy.mask_decoder = nn.Linear(3, 2), nn.Embedding(4, 2), nn.Linear(2, 1)
    >>> parameter_counts(toy)
    {'image_encoder': 8, 'prompt_encoder': 8, 'mask_decoder': 3, 'total': 19}
    """
    if not isinstance(model, nn.Module):
        raise SegeduTypeError(f"model must be a torch.nn.Module (a SAM or a TinySAM), but got a {type(model).__name__}.")
    missing = [name for name in _COMPONENTS if not isinstance(getattr(model, name, None), nn.Module)]
    if missing:
        raise SegeduInputError(
            f"model has no {', '.join(missing)} submodule: parameter_counts reads a SAM's three components "
            f"({', '.join(_COMPONENTS)}), as segment_anything's Sam and segedu's TinySAM name them.")
    counts = {name: sum(p.numel() for p in getattr(model, name).parameters()) for name in _COMPONENTS}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def _check_uint8_rgb(image) -> np.ndarray:
    if type(image).__module__.startswith("torch"):
        raise SegeduTypeError("image must be a numpy array (H×W×3, uint8, as SamPredictor.set_image reads it), but "
                              "got a torch tensor: convert it with image.permute(1, 2, 0).mul(255).round()"
                              ".byte().cpu().numpy() if it is a 3×H×W float tensor in [0, 1].")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        hint = " It looks channels-first: move the axis with image.transpose(1, 2, 0)." if image.ndim == 3 and image.shape[0] == 3 else ""
        raise SegeduInputError(f"image must be an H×W×3 RGB array, but got shape {image.shape}.{hint}")
    if image.dtype != np.uint8:
        hint = (" For floats in [0, 1], use (image * 255).round().astype(np.uint8)."
                if np.issubdtype(image.dtype, np.floating) else "")
        raise SegeduTypeError(f"image must have dtype uint8 (values 0 to 255), as SamPredictor.set_image expects, but "
                              f"got {image.dtype}.{hint}")
    return image


def full_size_predict(sam, image, point_xy, point_label: int = 1, multimask_output: bool = True):
    """One click on one image through segment-anything's ``SamPredictor``: the full promptable path.

    ``SamPredictor`` resizes the image so that its long side is ``sam.image_encoder.img_size``
    (1024 for the official models), normalises it, runs the image encoder once (``set_image``; the
    expensive part, see :data:`SET_IMAGE_SECONDS`), then maps the click into the resized frame and runs
    the prompt encoder and mask decoder (``predict``; milliseconds), and finally resizes the masks
    back to the image's size.

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        From :func:`build_sam`, or ``TinySAM.to_segment_anything()``.
    image : numpy.ndarray
        H×W×3 uint8 RGB image.
    point_xy : (float, float)
        The click in pixels, (x, y) = (column, row), inside the image.
    point_label : {1, 0}
        1 for a foreground click, 0 for a background click.
    multimask_output : bool
        Three masks (whole, part, subpart) when True, one when False.

    Returns
    -------
    masks : numpy.ndarray
        M×H×W bool, M = 3 or 1.
    scores : numpy.ndarray
        M predicted IoUs.
    low_res_logits : numpy.ndarray
        M×256×256 mask logits in the resized frame (for a next prompt's ``mask_input``).

    Examples
    --------
    >>> import numpy as np
    >>> full_size_predict(object(), np.zeros((8, 8, 3), np.uint8), (20, 3))
    Traceback (most recent call last):
        ...
    segedu._validation.SegeduInputError: point_xy=(20, 3) lies outside the 8×8 image: x must be in [0, 8) and y in [0, 8) (x is the column, y the row).
    """
    image = _check_uint8_rgb(image)
    height, width = image.shape[:2]
    if (not isinstance(point_xy, (tuple, list, np.ndarray)) or len(point_xy) != 2
            or not all(isinstance(v, numbers.Real) for v in np.asarray(point_xy).tolist())):
        raise SegeduInputError(f"point_xy must be one click (x, y) of two numbers, in pixels, but got {point_xy!r}.")
    x, y = (float(v) for v in point_xy)
    if not (0 <= x < width and 0 <= y < height):
        raise SegeduInputError(f"point_xy={tuple(point_xy)!r} lies outside the {height}×{width} image: x must be in "
                               f"[0, {width}) and y in [0, {height}) (x is the column, y the row).")
    check_in(point_label, "point_label", (1, 0))
    from segment_anything import SamPredictor
    from segment_anything.modeling import Sam

    if not isinstance(sam, Sam):
        raise SegeduTypeError(f"sam must be a segment_anything Sam (from build_sam, or TinySAM.to_segment_anything()), "
                              f"but got a {type(sam).__name__}.")
    predictor = SamPredictor(sam)
    with torch.no_grad():
        predictor.set_image(image)
        return predictor.predict(point_coords=np.array([[x, y]]), point_labels=np.array([point_label]),
                                 multimask_output=multimask_output)


def full_size_enabled(device, checkpoint=None) -> tuple[bool, str]:
    """Whether a notebook should run the full-size ViT path, and why: only on a GPU or with real weights.

    ``set_image`` on ViT-B takes about 27 s on a 2-core CPU (:data:`SET_IMAGE_SECONDS`), too long for a
    lecture's time budget, and with random weights its masks mean nothing. So the path runs where it
    is fast (CUDA) or where it shows something (a checkpoint was given).

    >>> full_size_enabled("cpu")[0], full_size_enabled("cuda")[0]
    (False, True)
    """
    device = torch.device(device)
    if checkpoint is not None:
        return True, f"a checkpoint was given ({Path(checkpoint).name}): running the full-size path on {device.type}"
    if device.type == "cuda":
        return True, "a GPU is present: running the full-size path with random weights (the masks mean nothing)"
    return False, (f"full-size path skipped: no GPU (device {device.type}) and no checkpoint. set_image on ViT-B takes "
                   f"about {SET_IMAGE_SECONDS['2-core CPU']:.0f} s on a 2-core CPU (about "
                   f"{SET_IMAGE_SECONDS['datacenter GPU']} s on a datacenter GPU), and random weights give meaningless "
                   "masks. Set SAM_CHECKPOINT to a downloaded checkpoint, or run on a GPU, to see it.")
