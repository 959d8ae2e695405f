r"""The recipes of unit 08 (DeepLab): its shipped networks, registered into :data:`segedu.models.checkpoint.REGISTRY` on import.

Lecture 08 asks two questions that need trained networks, and training them does not fit a
lecture's CPU budget, so they ship as checkpoints (``make checkpoints NAMES="deeplab_aspp_s0 ..."``
retrains them) and the lecture evaluates them itself:

1. **Does ASPP help with objects of several sizes?** (``deeplab_aspp_s{0,1,2}`` and
   ``deeplab_noaspp_s{0,1,2}``). A small :class:`~segedu.models.DeepLab` at output stride 8 learns
   the synthetic shapes with radii drawn over a wide range (:data:`DEEPLAB_SHAPES`'s
   ``train_radius``), with atrous spatial pyramid pooling (Chen et al. 2017, arXiv:1706.05587) or
   with a single 3×3 conv–BN–ReLU head of the same width in its place (``aspp=False``). Both arms
   of a seed see the same images in the same order and start from the same backbone weights (the
   backbone is built first, right after :func:`segedu.training.set_seed`). They are scored on one
   validation set of mixed sizes and on three more that each hold only small, medium or large
   shapes (:func:`scale_sets`, :func:`evaluate_scales`).
2. **What does output stride 8 buy over 16?** (``deeplab_os16_s{0,1,2}``). The same network and
   recipe as ``deeplab_aspp_s*`` with the backbone's last stride kept (output stride 16), and the
   atrous rates halved as DeepLab v3 does, so that every branch covers the same part of the image.

Why such small atrous rates
---------------------------
The paper's rates (6, 12, 18) are for output stride 16 on 513×513 crops: a 33×33 feature map.
Our 96×96 images give a 12×12 map at output stride 8 and 6×6 at 16. A 3×3 branch of rate
:math:`r` reads the map at offsets :math:`-r, 0, r`; once :math:`r` reaches the map's size, every
tap but the centre falls on zero padding, and the branch degenerates into a 1×1 convolution
(:class:`~segedu.models.ASPP` warns about it). The rates are therefore scaled with the map:
:data:`DEEPLAB_SHAPES`'s ``rates_os8`` = (2, 4, 6) at 12×12 and ``rates_os16`` = (1, 2, 3) at 6×6,
the same fractions of the map as (6, 12, 18) of a 33×33 map, roughly.

References
----------
.. [1] Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K. and Yuille, A. L. "DeepLab: Semantic
       Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected
       CRFs." IEEE TPAMI 40(4), 2018. arXiv:1606.00915
.. [2] Chen, L.-C., Papandreou, G., Schroff, F. and Adam, H. "Rethinking Atrous Convolution for
       Semantic Image Segmentation." arXiv:1706.05587, 2017.

Examples
--------
>>> from segedu.models.checkpoint import checkpoint_names, get_spec
>>> checkpoint_names("08")  # doctest: +NORMALIZE_WHITESPACE
['deeplab_aspp_s0', 'deeplab_noaspp_s0', 'deeplab_os16_s0', 'deeplab_aspp_s1', 'deeplab_noaspp_s1',
 'deeplab_os16_s1', 'deeplab_aspp_s2', 'deeplab_noaspp_s2', 'deeplab_os16_s2']
>>> spec = get_spec("deeplab_aspp_s0")
>>> spec.architecture["kwargs"]["output_stride"], spec.architecture["kwargs"]["rates"]
(8, [2, 4, 6])
>>> get_spec("deeplab_noaspp_s0").data == spec.data  # the same training and validation images
True
>>> {name: kwargs["radius"] for name, kwargs in spec.data["scales"].items()}  # fractions of the side
{'small': [0.05, 0.09], 'medium': [0.12, 0.18], 'large': [0.24, 0.34]}
"""

from __future__ import annotations

from .checkpoint import CheckpointSpec, _resolve, make_data, register

__all__ = [
    "DEEPLAB_SHAPES",
    "DEEPLAB_SEEDS",
    "ARMS_08",
    "SIZE_CLASSES",
    "deeplab_shapes_data",
    "scale_sets",
    "architecture_08",
    "train_deeplab_shapes",
    "evaluate_scales",
]

#: Data, network and training of the unit-08 checkpoints. Radii are fractions of the image side.
DEEPLAB_SHAPES = {
    "size": 96,  # 12×12 feature maps at output stride 8, 6×6 at 16
    "num_classes": 6,  # background + disk, square, triangle, ring, cross
    "max_shapes": 3,
    "n_train": 400,
    "n_val": 60,  # images of each validation set (mixed sizes, and each size class)
    "train_radius": [0.05, 0.34],  # the training set mixes every size
    "size_classes": {"small": [0.05, 0.09], "medium": [0.12, 0.18], "large": [0.24, 0.34]},
    "base_channels": 16,
    "aspp_channels": 32,
    "rates_os8": [2, 4, 6],
    "rates_os16": [1, 2, 3],
    "epochs": 14,  # Adam at lr ...
    "lr": 3e-3,
    "fine_epochs": 4,  # ... then a few epochs at a tenth of it (a step decay)
    "fine_lr": 3e-4,
    "batch_size": 16,
}
#: Seeds of the shipped checkpoints (training data seed ``s``, validation data ``100 + s`` and up).
DEEPLAB_SEEDS = (0, 1, 2)
#: The compared networks, as named in the checkpoints: ASPP at output stride 8, the same without
#: ASPP, and ASPP at output stride 16.
ARMS_08 = ("aspp", "noaspp", "os16")
#: The size classes of the per-size validation sets, smallest first.
SIZE_CLASSES = ("small", "medium", "large")


def deeplab_shapes_data(seed: int, config: dict | None = None) -> dict:
    """The data description for ``seed``: train seed ``s``, validation ``100 + s``, size class ``i`` at ``200 + 10 s + i``.

    ``"train"`` and ``"val"`` draw radii from ``train_radius`` (every size); ``"scales"`` holds one
    description per size class, whose shapes all have radii in that class's range (see
    :func:`scale_sets`).
    """
    c = DEEPLAB_SHAPES if config is None else config
    common = {"size": [c["size"], c["size"]], "num_classes": c["num_classes"], "max_shapes": c["max_shapes"]}
    return {
        "function": "segedu.data:shapes_dataset",
        "train": {"n": c["n_train"], "seed": seed, "radius": list(c["train_radius"]), **common},
        "val": {"n": c["n_val"], "seed": 100 + seed, "radius": list(c["train_radius"]), **common},
        "scales": {name: {"n": c["n_val"], "seed": 200 + 10 * seed + i, "radius": list(c["size_classes"][name]),
                          **common}
                   for i, name in enumerate(SIZE_CLASSES)},
    }


def scale_sets(description: dict) -> dict:
    """``{size class: (images, labels)}``: the per-size validation sets of a data description.

    >>> tiny = {"function": "segedu.data:shapes_dataset",
    ...         "scales": {"small": {"n": 2, "size": [32, 32], "seed": 7, "radius": [0.1, 0.15]}}}
    >>> images, labels = scale_sets(tiny)["small"]
    >>> images.shape, labels.shape
    ((2, 32, 32, 3), (2, 32, 32))
    """
    function = _resolve(description["function"])
    return {name: function(**kwargs) for name, kwargs in description["scales"].items()}


def architecture_08(arm: str, config: dict | None = None) -> dict:
    """The ``{"builder", "kwargs"}`` of one arm: ``"aspp"``, ``"noaspp"`` (output stride 8) or ``"os16"``."""
    c = DEEPLAB_SHAPES if config is None else config
    if arm not in ARMS_08:
        raise ValueError(f"arm must be one of {ARMS_08}, but got {arm!r}.")
    output_stride = 16 if arm == "os16" else 8
    kwargs = {"num_classes": c["num_classes"], "in_channels": 3, "output_stride": output_stride,
              "base_channels": c["base_channels"],
              "rates": list(c["rates_os16"] if output_stride == 16 else c["rates_os8"]),
              "aspp": arm != "noaspp", "aspp_channels": c["aspp_channels"]}
    return {"builder": "segedu.models.deeplab:DeepLab", "kwargs": kwargs}


def train_deeplab_shapes(seed: int, arm: str = "aspp", device="cpu", progress: bool = False,
                         config: dict | None = None, train=None):
    """The recipe of the unit-08 checkpoints: build ``arm`` after ``set_seed(seed)`` and train it.

    Every arm sees the same batches in the same order (:func:`segedu.training.train_segmentation`
    with ``seed``, then ``seed + 1``): :data:`DEEPLAB_SHAPES`'s ``epochs`` at ``lr``, then
    ``fine_epochs`` at ``fine_lr``. The step decay matters for a fair comparison: the last weights
    of a constant-rate Adam run still wander (in trial runs at a constant rate, widening only the
    head from 32 to 64 channels moved one size class's mean IoU by 0.16 up and another's down), and
    a few epochs at a tenth of the rate settle them. ``train`` passes the training set when the caller
    already generated it (it must be the one of :func:`deeplab_shapes_data`). Returns the trained
    network in ``eval()`` mode.
    """
    from ..training import set_seed, train_segmentation

    c = DEEPLAB_SHAPES if config is None else config
    if train is None:
        train = make_data(deeplab_shapes_data(seed, c), "train")
    architecture = architecture_08(arm, c)
    set_seed(seed)
    model = _resolve(architecture["builder"])(**architecture["kwargs"])
    train_segmentation(model, train, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], seed=seed,
                       device=device, progress=progress)
    train_segmentation(model, train, epochs=c["fine_epochs"], batch_size=c["batch_size"], lr=c["fine_lr"],
                       seed=seed + 1, device=device, progress=progress)
    return model.eval()


def evaluate_scales(model, spec) -> dict:
    """Mean IoU on the mixed validation set (``"mean_iou"``) and on each size class (``"mean_iou_small"``, ...), on the CPU.

    The other three metrics of :func:`segedu.training.evaluate` on the mixed set are kept too.
    """
    from ..training import evaluate

    num_classes = spec.data["val"]["num_classes"]
    scores = {key: float(value) for key, value in
              evaluate(model, make_data(spec.data, "val"), num_classes=num_classes, device="cpu").items()}
    for name, data in scale_sets(spec.data).items():
        scores[f"mean_iou_{name}"] = float(evaluate(model, data, num_classes=num_classes, device="cpu")["mean_iou"])
    return scores


#: The least mean IoU on the mixed validation set that each shipped network must reach (every seed).
_TARGETS_08 = {"aspp": 0.75, "noaspp": 0.75, "os16": 0.55}
_TITLES_08 = {"aspp": "DeepLab with ASPP, output stride 8", "noaspp": "DeepLab without ASPP, output stride 8",
              "os16": "DeepLab with ASPP, output stride 16"}

for _seed in DEEPLAB_SEEDS:
    for _arm in ARMS_08:
        register(CheckpointSpec(
            name=f"deeplab_{_arm}_s{_seed}",
            unit="08",
            description=f"{_TITLES_08[_arm]} (base 16 channels) trained on 400 synthetic 96×96 shapes images of "
                        f"mixed sizes, seed {_seed}",
            recipe="segedu.models.deeplab_recipes:train_deeplab_shapes",
            seed=_seed,
            options={"arm": _arm},
            data=deeplab_shapes_data(_seed),
            architecture=architecture_08(_arm),
            metric="mean_iou",
            target=_TARGETS_08[_arm],
            evaluator="segedu.models.deeplab_recipes:evaluate_scales",
        ))
del _seed, _arm
