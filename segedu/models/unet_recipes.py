r"""The recipes of unit 06 (U-Net): its shipped networks, registered into :data:`segedu.models.checkpoint.REGISTRY` on import.

Three experiments of lecture 06 train too long for a lecture on a CPU, so their networks ship with
segedu, each with the recipe below that trained it (``make checkpoints NAMES=...`` retrains them):

1. **What the weight map buys** (``unet_nuclei_wmap_s{0,1,2}`` and ``unet_nuclei_plain_s{0,1,2}``).
   A small :class:`~segedu.models.UNet` learns the foreground of the nuclei image's training half
   (:func:`nuclei_half`), with U-Net's weighted cross-entropy (Ronneberger et al. 2015, eq. 1 and 2;
   :func:`segedu.losses.unet_weight_map`) or with the plain cross-entropy, for three seeds. Both
   arms of a seed start from the same weights and see the same augmented tiles in the same order.
   They are scored as *instances* on the test half (:func:`evaluate_nuclei_instances`): predicted
   foreground, connected components, then :func:`segedu.metrics.match_instances` at IoU ≥ 0.5.
2. **Transfer learning, offline** (``resnetunet_shapes_pretrain``, ``resnetunet_nuclei_transfer``,
   ``resnetunet_nuclei_scratch``). A ResNet-18 encoder under a U-Net decoder is pretrained on the
   synthetic shapes (grey; shape or background), then fine-tuned on the nuclei, against the same network trained from scratch
   with the same tiles, steps and seed. The encoder is torchvision's ResNet-18 cut after
   ``layer2`` (:class:`~segedu.models.unet.ShallowResNetUNet`), see below for why.
3. **U-Net on the synthetic shapes** (``unet_shapes_s0``): COURSE.md's target, mean IoU ≥ 0.90.

The training target of the nuclei
---------------------------------
The nuclei's instance labels touch: 434 pixels of one nucleus have a 4-neighbour of another, so
``labels > 0`` merges touching nuclei into one blob, and no loss can teach a network to separate
what the target itself joins. As the paper does for its cells (whose membranes separate them), the
target is the foreground with a gap of about two pixels carved between touching nuclei
(:func:`separate_touching`), and the weight map is computed from these separated labels, so its
border term is largest exactly in the carved gaps.

Why a shallow ResNet-18
-----------------------
:class:`segedu.models.ResNetUNet` uses the whole ResNet-18 (11.2 M parameters in the encoder,
14.3 M with its decoder): 28.6 MB as float16, over :data:`~segedu.models.checkpoint.MAX_BYTES`
(5 MB) six times, and about 1.5 s per training step of eight 64×64 tiles on one CPU thread. Cut
after ``layer2`` (stride 8, as U-Net with ``depth=3``), the encoder keeps 0.68 M of torchvision's
ResNet-18 weights, under the same names, and the whole network is about 1.8 MB as float16, so it
ships and fine-tunes in seconds. The ImageNet weights (online only, lecture 06's switch) load into
it with :meth:`~segedu.models.unet.ShallowResNetUNet.load_encoder_state_dict`, which ignores ``layer3``, ``layer4`` and
``fc``.

References
----------
.. [1] Ronneberger, O., Fischer, P. and Brox, T. "U-Net: Convolutional Networks for Biomedical
       Image Segmentation." MICCAI 2015. arXiv:1505.04597
.. [2] He, K., Zhang, X., Ren, S. and Sun, J. "Deep Residual Learning for Image Recognition."
       CVPR 2016. arXiv:1512.03385
.. [3] Caicedo, J. C. et al. "Nucleus segmentation across imaging experiments: the 2018 Data
       Science Bowl." Nature Methods 16, 1247--1253 (2019).

Examples
--------
>>> from segedu.models.checkpoint import checkpoint_names
>>> [name for name in checkpoint_names("06") if name.startswith("unet_nuclei")]  # doctest: +NORMALIZE_WHITESPACE
['unet_nuclei_wmap_s0', 'unet_nuclei_plain_s0', 'unet_nuclei_wmap_s1', 'unet_nuclei_plain_s1',
 'unet_nuclei_wmap_s2', 'unet_nuclei_plain_s2']
>>> image, labels = nuclei_half("test")
>>> image.shape, int(len(np.unique(labels)) - 1)
((512, 256), 57)
"""

from __future__ import annotations

import numpy as np

from .checkpoint import CheckpointSpec, _resolve, make_data, register

__all__ = [
    "NUCLEI_UNET",
    "NUCLEI_SEEDS",
    "SHAPES_UNET",
    "TRANSFER",
    "separate_touching",
    "touching_ids",
    "nuclei_half",
    "grey_shapes",
    "nuclei_training_set",
    "predict_instances",
    "evaluate_nuclei_instances",
    "train_unet_nuclei",
    "train_unet_shapes",
    "train_resnet_shapes",
    "train_resnet_nuclei",
]

#: The weight-map experiment: network, data and training of ``unet_nuclei_*``.
NUCLEI_UNET = {
    "base_channels": 8,  # 8, 16, 32, 64 channels
    "depth": 3,  # three 2×2 pools: the 512×256 test half passes whole (multiples of 8)
    "tile": 128,  # the training half cut into 8 tiles of 128×128
    "epochs": 150,  # 2 steps per epoch: 300 Adam steps
    "batch_size": 4,
    "lr": 3e-3,
    "w0": 10.0,  # the paper's border weight ...
    "sigma": 5.0,  # ... and width, in pixels
    "elastic_p": 0.5,  # joint augmentation (segedu.data.augment): flips, quarter turns, elastic
}
#: Seeds of the weight-map experiment.
NUCLEI_SEEDS = (0, 1, 2)

#: U-Net on the synthetic shapes (the data of unit 05's FCNs), for COURSE.md's mIoU target.
SHAPES_UNET = {
    "size": 96,
    "num_classes": 6,
    "max_shapes": 6,
    "n_train": 400,
    "n_val": 100,
    "base_channels": 8,
    "depth": 3,
    "epochs": 10,
    "batch_size": 16,
    "lr": 3e-3,
}

#: Transfer learning offline: pretraining on grey shapes (shape or background), then the nuclei.
TRANSFER = {
    "pretrain": {"size": 64, "shape_classes": 6, "max_shapes": 4, "n_train": 400, "n_val": 100, "epochs": 6,
                 "batch_size": 16, "lr": 1e-3},
    "nuclei": {"tile": 128, "epochs": 50, "batch_size": 4, "lr": 1e-3, "w0": 10.0, "sigma": 5.0, "elastic_p": 0.5},
    "decoder_channels": (64, 32, 16),
}


# -- data -----------------------------------------------------------------------------------------


def separate_touching(labels) -> np.ndarray:
    """Instance labels with a gap carved wherever two instances touch (a pixel off each side).

    A pixel of instance :math:`a` becomes background (0) when one of its four neighbours belongs to
    another instance :math:`b \\ne a`, :math:`b > 0`. Borders with the background are unchanged,
    so only touching nuclei lose pixels (both sides of a contact, a gap of about two pixels).

    >>> labels = np.array([[1, 1, 2, 2, 0]])
    >>> separate_touching(labels)
    array([[1, 0, 0, 2, 0]])
    """
    labels = np.asarray(labels)
    contact = np.zeros(labels.shape, dtype=bool)
    for axis in (0, 1):
        a = np.take(labels, range(labels.shape[axis] - 1), axis=axis)
        b = np.take(labels, range(1, labels.shape[axis]), axis=axis)
        touching = (a > 0) & (b > 0) & (a != b)
        lead = [slice(None)] * 2
        lead[axis] = slice(0, -1)
        contact[tuple(lead)] |= touching
        lead[axis] = slice(1, None)
        contact[tuple(lead)] |= touching
    separated = labels.copy()
    separated[contact] = 0
    return separated


def touching_ids(labels) -> np.ndarray:
    """Sorted ids of the instances that touch another instance (8-neighbourhood).

    >>> touching_ids(np.array([[1, 2, 0, 3], [0, 0, 0, 3]]))
    array([1, 2])
    """
    labels = np.asarray(labels)
    padded = np.pad(labels, 1)
    h, w = labels.shape
    found = set()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            other = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            pairs = (labels > 0) & (other > 0) & (labels != other)
            found.update(np.unique(labels[pairs]).tolist())
    return np.array(sorted(found), dtype=np.int64)


def nuclei_half(split: str = "train"):
    """The training (left) or test (right) half of the nuclei image: ``(image (512, 256), labels)``.

    The same halves as :func:`segedu.data.nuclei_tiles` (which cuts them into tiles).
    """
    from ..data import load_nuclei
    from ..data.nuclei import NUCLEI_SPLITS
    from .._validation import check_in

    check_in(split, "split", NUCLEI_SPLITS)
    image, labels = load_nuclei()
    cols = slice(0, 256) if split == "train" else slice(256, 512)
    return np.ascontiguousarray(image[:, cols]), np.ascontiguousarray(labels[:, cols])


def grey_shapes(n, size, shape_classes, seed, max_shapes, binary=False):
    """:func:`segedu.data.shapes_dataset` in grey (the mean of R, G and B), images ``(N, H, W, 1)``.

    ``shape_classes`` is ``shapes_dataset``'s ``num_classes``; with ``binary`` the labels are
    1 for any shape and 0 for the background (the pretraining task of the transfer experiment).
    """
    from ..data import shapes_dataset

    images, labels = shapes_dataset(n, size=size, num_classes=shape_classes, seed=seed, max_shapes=max_shapes)
    if binary:
        labels = (labels > 0).astype(labels.dtype)
    return images.mean(-1, keepdims=True), labels


def _tile(array: np.ndarray, tile: int) -> np.ndarray:
    rows, cols = array.shape[0] // tile, array.shape[1] // tile
    return np.ascontiguousarray(array.reshape(rows, tile, cols, tile).swapaxes(1, 2).reshape(-1, tile, tile))


def nuclei_training_set(seed: int, weighted: bool, tile: int = 128, w0: float = 10.0, sigma: float = 5.0,
                        elastic_p: float = 0.5, channels: int = 1):
    """The augmented training tiles of the weight-map experiment (a :class:`segedu.data.augment.AugmentedTiles`).

    Target: :func:`separate_touching` of the training half, as 0/1 class ids. With ``weighted``,
    items carry :func:`segedu.losses.unet_weight_map` of the separated labels, computed on the whole
    half before tiling (so the distances see nuclei across tile borders). The augmentation draws
    depend only on ``seed``, so the two arms of a seed see the same deformations.
    """
    from ..data.augment import AugmentedTiles, joint_augment
    from ..losses import unet_weight_map

    image, labels = nuclei_half("train")
    separated = separate_touching(labels)
    target = (separated > 0).astype(np.int64)
    images = _tile(image, tile)
    if channels != 1:
        images = np.repeat(images[:, None], channels, axis=1)
    weights = _tile(unet_weight_map(separated, w0=w0, sigma=sigma).astype(np.float32), tile) if weighted else None
    return AugmentedTiles(images, _tile(target, tile), weights, transform=joint_augment(seed, elastic_p=elastic_p),
                          seed=seed)


# -- evaluation -----------------------------------------------------------------------------------


def predict_instances(model, image, channels=None):
    """Predicted nuclei of ``image`` (H×W): foreground (class 1 wins) → 4-connected components, int32 labels.

    ``channels`` repeats the grey image (default: the model's ``in_channels``).
    """
    import torch
    from skimage.measure import label

    channels = getattr(model, "in_channels", 1) if channels is None else channels
    x = torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None].expand(1, channels, -1, -1)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(x.to(next(model.parameters()).device))
    finally:
        model.train(was_training)
    foreground = (logits.argmax(1)[0] == 1).cpu().numpy()
    return label(foreground, connectivity=1).astype(np.int32)


def evaluate_nuclei_instances(model, spec) -> dict:
    """Instance scores on the test half: :func:`segedu.metrics.match_instances` at IoU ≥ 0.5, and more.

    Returns ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``mean_matched_iou``,
    ``n_pred``, ``n_true``, and ``touching_true`` (true nuclei that touch another one) with
    ``touching_found`` (how many of those are matched) and ``touching_recall``.
    """
    from ..metrics import match_instances

    image, labels = make_data(spec.data, "val")
    pred = predict_instances(model.cpu(), image)
    m = match_instances(pred, labels, iou_threshold=0.5)
    touching = touching_ids(labels)
    found = int(np.isin(touching, m["matched_true"]).sum())
    result = {key: float(m[key]) for key in ("precision", "recall", "f1", "mean_matched_iou")}
    result.update({key: int(m[key]) for key in ("tp", "fp", "fn", "n_pred", "n_true")})
    result.update(touching_true=int(len(touching)), touching_found=found,
                  touching_recall=found / len(touching) if len(touching) else 1.0)
    return result


# -- recipes --------------------------------------------------------------------------------------


def _unet_nuclei_architecture(config=None) -> dict:
    c = NUCLEI_UNET if config is None else config
    return {"builder": "segedu.models.unet:UNet",
            "kwargs": {"in_channels": 1, "num_classes": 2, "base_channels": c["base_channels"], "depth": c["depth"]}}


_NUCLEI_DATA = {"function": "segedu.models.unet_recipes:nuclei_half", "train": {"split": "train"},
                "val": {"split": "test"}}


def train_unet_nuclei(seed: int, weighted: bool = True, device="cpu", progress: bool = False, config=None):
    """Recipe of ``unet_nuclei_{wmap,plain}_s<seed>``: a U-Net on the nuclei's training half.

    ``set_seed(seed)``, build the U-Net of :data:`NUCLEI_UNET`, then
    :func:`segedu.training.train_segmentation` on :func:`nuclei_training_set` (weighted
    cross-entropy with the weight map, or the plain cross-entropy), batches shuffled with ``seed``.
    """
    from ..training import set_seed, train_segmentation

    c = NUCLEI_UNET if config is None else config
    data = nuclei_training_set(seed, weighted, tile=c["tile"], w0=c["w0"], sigma=c["sigma"], elastic_p=c["elastic_p"])
    architecture = _unet_nuclei_architecture(c)
    set_seed(seed)
    model = _resolve(architecture["builder"])(**architecture["kwargs"])
    train_segmentation(model, data, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], seed=seed,
                       device=device, progress=progress)
    return model.eval()


def _shapes_data(config, seed) -> dict:
    common = {"size": [config["size"], config["size"]], "num_classes": config["num_classes"],
              "max_shapes": config["max_shapes"]}
    return {"function": "segedu.data:shapes_dataset", "train": {"n": config["n_train"], "seed": seed, **common},
            "val": {"n": config["n_val"], "seed": 100 + seed, **common}}


def _pretrain_data(seed) -> dict:
    c = TRANSFER["pretrain"]
    common = {"size": [c["size"], c["size"]], "shape_classes": c["shape_classes"], "max_shapes": c["max_shapes"],
              "binary": True}
    return {"function": "segedu.models.unet_recipes:grey_shapes",
            "train": {"n": c["n_train"], "seed": seed, **common}, "val": {"n": c["n_val"], "seed": 100 + seed, **common}}


def _unet_shapes_architecture(config=None) -> dict:
    c = SHAPES_UNET if config is None else config
    return {"builder": "segedu.models.unet:UNet",
            "kwargs": {"in_channels": 3, "num_classes": c["num_classes"], "base_channels": c["base_channels"],
                       "depth": c["depth"]}}


def train_unet_shapes(seed: int, device="cpu", progress: bool = False, config=None):
    """Recipe of ``unet_shapes_s<seed>``: U-Net on unit 05's synthetic shapes (:data:`SHAPES_UNET`)."""
    from ..training import set_seed, train_segmentation

    c = SHAPES_UNET if config is None else config
    train = make_data(_shapes_data(c, seed), "train")
    architecture = _unet_shapes_architecture(c)
    set_seed(seed)
    model = _resolve(architecture["builder"])(**architecture["kwargs"])
    train_segmentation(model, train, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], seed=seed,
                       device=device, progress=progress)
    return model.eval()


def _resnet_architecture(num_classes) -> dict:
    return {"builder": "segedu.models.unet:ShallowResNetUNet",
            "kwargs": {"num_classes": num_classes, "in_channels": 1,
                       "decoder_channels": list(TRANSFER["decoder_channels"])}}


def train_resnet_shapes(seed: int, device="cpu", progress: bool = False):
    """Recipe of ``resnetunet_shapes_pretrain``: the shallow ResNet-18 U-Net learns shape-or-background on grey shapes.

    (Six shape classes in grey were too hard for 150 steps: validation mean IoU 0.18.)
    """
    from ..training import set_seed, train_segmentation

    c = TRANSFER["pretrain"]
    train = make_data(_pretrain_data(seed), "train")
    architecture = _resnet_architecture(2)
    set_seed(seed)
    model = _resolve(architecture["builder"])(**architecture["kwargs"])
    train_segmentation(model, train, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], seed=seed,
                       device=device, progress=progress)
    return model.eval()


def train_resnet_nuclei(seed: int, pretrained: bool = True, device="cpu", progress: bool = False, encoder=None):
    """Recipe of ``resnetunet_nuclei_{transfer,scratch}``: the shallow ResNet-18 U-Net on the nuclei.

    ``set_seed(seed)`` builds the network (the decoder and, for ``scratch``, the encoder start
    from these random weights); with ``pretrained`` the encoder is then replaced by that of the
    shipped ``resnetunet_shapes_pretrain`` (or by ``encoder``, a state dict, e.g. ImageNet's).
    Both then train identically: :data:`TRANSFER` ``["nuclei"]``, weighted cross-entropy with the
    weight map, the same augmented tiles and batches.
    """
    from ..training import set_seed, train_segmentation
    from .checkpoint import load_checkpoint

    c = TRANSFER["nuclei"]
    data = nuclei_training_set(seed, True, tile=c["tile"], w0=c["w0"], sigma=c["sigma"], elastic_p=c["elastic_p"])
    architecture = _resnet_architecture(2)
    set_seed(seed)
    model = _resolve(architecture["builder"])(**architecture["kwargs"])
    if pretrained:
        if encoder is None:
            encoder = load_checkpoint("resnetunet_shapes_pretrain")[0].encoder_state_dict()
        model.load_encoder_state_dict(encoder)
    train_segmentation(model, data, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], seed=seed,
                       device=device, progress=progress)
    return model.eval()


# -- registry -------------------------------------------------------------------------------------

#: Least instance F1 on the test half that a shipped nuclei network must reach (both arms).
_NUCLEI_F1_TARGET = 0.5

for _seed in NUCLEI_SEEDS:
    for _weighted, _arm in ((True, "wmap"), (False, "plain")):
        register(CheckpointSpec(
            name=f"unet_nuclei_{_arm}_s{_seed}",
            unit="06",
            description=(f"U-Net (8 base channels, depth 3) on the nuclei's training half, "
                         f"{'with' if _weighted else 'without'} U-Net's weight map, seed {_seed}"),
            recipe="segedu.models.unet_recipes:train_unet_nuclei",
            seed=_seed,
            options={"weighted": _weighted},
            data=_NUCLEI_DATA,
            architecture=_unet_nuclei_architecture(),
            metric="f1",
            target=_NUCLEI_F1_TARGET,
            evaluator="segedu.models.unet_recipes:evaluate_nuclei_instances",
        ))

register(CheckpointSpec(
    name="unet_shapes_s0",
    unit="06",
    description="U-Net (8 base channels, depth 3) on 400 synthetic 96×96 shapes images (unit 05's data), seed 0",
    recipe="segedu.models.unet_recipes:train_unet_shapes",
    seed=0,
    data=_shapes_data(SHAPES_UNET, 0),
    architecture=_unet_shapes_architecture(),
    metric="mean_iou",
    target=0.90,
))

register(CheckpointSpec(
    name="resnetunet_shapes_pretrain",
    unit="06",
    description="ResNet-18 (to layer2) U-Net pretrained to tell shapes from background on 400 grey 64×64 synthetic "
                "shapes images, seed 0",
    recipe="segedu.models.unet_recipes:train_resnet_shapes",
    seed=0,
    data=_pretrain_data(0),
    architecture=_resnet_architecture(2),
    metric="mean_iou",
    target=0.55,
))

for _pretrained, _arm in ((True, "transfer"), (False, "scratch")):
    register(CheckpointSpec(
        name=f"resnetunet_nuclei_{_arm}",
        unit="06",
        description=("ResNet-18 (to layer2) U-Net on the nuclei's training half, "
                     + ("its encoder pretrained on the synthetic shapes" if _pretrained else "from scratch")
                     + ", seed 0"),
        recipe="segedu.models.unet_recipes:train_resnet_nuclei",
        seed=0,
        options={"pretrained": _pretrained},
        data=_NUCLEI_DATA,
        architecture=_resnet_architecture(2),
        metric="f1",
        target=0.3,
        evaluator="segedu.models.unet_recipes:evaluate_nuclei_instances",
    ))
del _seed, _weighted, _arm, _pretrained
