"""The recipes of unit 07 (SegNet against U-Net): its shipped networks, registered into segedu.models.checkpoint.REGISTRY on import.

Lecture 07 compares SegNet with U-Net on the *same* data, trained the same way: the synthetic
shapes of :func:`segedu.data.shapes_dataset` (64×64, background + five shape classes), the same
depth (four 2×2 pools), the same first-stage width, the same epochs, batches, learning rate and
seeds. Training both to convergence does not fit a lecture's CPU budget, so the trained networks
ship as checkpoints (``make checkpoints NAMES="segnet_shapes_s0 unet07_shapes_s0 ..."``) and the
lecture evaluates them itself.

>>> from segedu.models.checkpoint import get_spec
>>> spec = get_spec("segnet_shapes_s0")
>>> spec.architecture["builder"], spec.architecture["kwargs"]["depth"]
('segedu.models.segnet:SegNet', 4)
>>> get_spec("unet07_shapes_s0").data == spec.data  # the same training and validation images
True
"""

from __future__ import annotations

from .checkpoint import CheckpointSpec, _resolve, make_data, register

__all__ = ["SEGNET_SHAPES", "SEGNET_SHAPES_SEEDS", "ARCHITECTURES_07", "shapes07_data", "architecture_07",
           "train_shapes_07"]

#: Data, networks and training of the unit-07 comparison (shared by SegNet and U-Net).
SEGNET_SHAPES = {
    "size": 64,
    "num_classes": 6,  # background + disk, square, triangle, ring, cross
    "max_shapes": 4,
    "n_train": 400,
    "n_val": 100,
    "base_channels": 8,  # first-stage channels of both networks
    "depth": 4,  # four 2×2 pools: a 4×4 bottleneck for 64×64 images
    "segnet_convs": 2,  # convolutions per SegNet stage, as U-Net's DoubleConv
    "epochs": 20,
    "batch_size": 16,
    "lr": 3e-3,
}
#: Seeds of the shipped checkpoints (training data seed ``s``, validation data ``100 + s``).
SEGNET_SHAPES_SEEDS = (0, 1, 2)
#: Short names of the compared networks, as used in the checkpoint names.
ARCHITECTURES_07 = ("segnet", "unet07")


def shapes07_data(seed: int, config: dict | None = None) -> dict:
    """The data description for ``seed``: ``shapes_dataset`` with seed ``s`` (train) and ``100 + s`` (val)."""
    c = SEGNET_SHAPES if config is None else config
    common = {"size": [c["size"], c["size"]], "num_classes": c["num_classes"], "max_shapes": c["max_shapes"]}
    return {
        "function": "segedu.data:shapes_dataset",
        "train": {"n": c["n_train"], "seed": seed, **common},
        "val": {"n": c["n_val"], "seed": 100 + seed, **common},
    }


def architecture_07(arch: str, config: dict | None = None) -> dict:
    """The ``{"builder", "kwargs"}`` of ``arch`` (``"segnet"`` or ``"unet07"``) for the comparison."""
    c = SEGNET_SHAPES if config is None else config
    common = {"in_channels": 3, "num_classes": c["num_classes"], "base_channels": c["base_channels"],
              "depth": c["depth"]}
    if arch == "segnet":
        return {"builder": "segedu.models.segnet:SegNet", "kwargs": {**common, "convs": c["segnet_convs"]}}
    if arch == "unet07":
        return {"builder": "segedu.models.unet:UNet", "kwargs": {**common, "padding": "same"}}
    raise ValueError(f"arch must be one of {ARCHITECTURES_07}, but got {arch!r}.")


def train_shapes_07(seed: int, arch: str = "segnet", device="cpu", progress: bool = False,
                    config: dict | None = None, train=None):
    """The recipe of the unit-07 checkpoints: build ``arch`` after ``set_seed(seed)`` and train it.

    Both networks see the same batches in the same order (:func:`segedu.training.train_segmentation`
    with ``seed``) under :data:`SEGNET_SHAPES`'s epochs, batch size and learning rate. ``train``
    passes the training set when the caller already generated it (it must be the one of
    :func:`shapes07_data`). Returns the trained network in ``eval()`` mode.
    """
    from ..training import set_seed, train_segmentation

    c = SEGNET_SHAPES if config is None else config
    if train is None:
        train = make_data(shapes07_data(seed, c), "train")
    architecture = architecture_07(arch, c)
    set_seed(seed)
    model = _resolve(architecture["builder"])(**architecture["kwargs"])
    train_segmentation(model, train, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], seed=seed,
                       device=device, progress=progress)
    return model.eval()


#: The least validation mean IoU each shipped network must reach (every seed).
_TARGETS_07 = {"segnet": 0.40, "unet07": 0.60}
_TITLES_07 = {"segnet": "SegNet", "unet07": "U-Net"}

for _seed in SEGNET_SHAPES_SEEDS:
    for _arch in ARCHITECTURES_07:
        register(CheckpointSpec(
            name=f"{_arch}_shapes_s{_seed}",
            unit="07",
            description=f"{_TITLES_07[_arch]} (base 8 channels, depth 4) trained on 400 synthetic 64×64 shapes "
                        f"images, seed {_seed}, for the SegNet / U-Net comparison of unit 07",
            recipe="segedu.models.segnet_recipes:train_shapes_07",
            seed=_seed,
            options={"arch": _arch},
            data=shapes07_data(_seed),
            architecture=architecture_07(_arch),
            metric="mean_iou",
            target=_TARGETS_07[_arch],
        ))
del _seed, _arch
