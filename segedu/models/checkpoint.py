r"""Shipped checkpoints: small trained networks that come with ``pip install segedu``.

Some training demos cannot reach their target on a CPU inside a lecture's time budget. For those
the course ships the trained weights as package data, together with the *recipe* that trained
them, so that anyone can retrain them and check that the numbers are real. One mechanism serves
every unit:

- :data:`REGISTRY` has one :class:`CheckpointSpec` per shipped checkpoint: its name, its recipe
  (a ``"module:function"`` that builds and trains the network from a seed), the seed, the data
  (a description from which the seeded synthetic training and validation sets are regenerated),
  the architecture that :func:`load_checkpoint` rebuilds, and the metric with the value it must
  reach.
- ``python -m segedu.instructor checkpoints [names]`` (``make checkpoints``) runs each recipe,
  evaluates the trained network on the validation data, refuses a network that misses its target,
  and writes ``<name>.pt`` (the ``state_dict``, floats stored as float16) and ``<name>.json`` (the
  provenance: recipe, seed, data, versions, date, and the metric reached) into
  ``segedu/models/checkpoints/``.
- :func:`load_checkpoint` returns the network, on the CPU and in ``eval()`` mode, and its
  provenance. :func:`evaluate_checkpoint` regenerates the validation data and measures the metric
  again; ``tests/test_checkpoints.py`` does so for every shipped checkpoint.

A lecture evaluates the checkpoint it loads: it never quotes the numbers of the provenance.

Adding a checkpoint (units 06–10) is one :func:`register` call below, a recipe function (here or
in the unit's own module) and ``make checkpoints NAMES=name``.

>>> spec = get_spec("fcn8s_shapes_s0")
>>> spec.metric, spec.seed, spec.recipe
('mean_iou', 0, 'segedu.models.checkpoint:train_fcn_shapes')
>>> model, provenance = load_checkpoint("fcn8s_shapes_s0")
>>> model.training, provenance["seed"], provenance["recipe"] == spec.recipe
(False, 0, True)
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .._validation import SegeduInputError, SegeduTypeError

__all__ = [
    "CheckpointSpec",
    "REGISTRY",
    "register",
    "checkpoint_names",
    "get_spec",
    "load_checkpoint",
    "read_provenance",
    "evaluate_checkpoint",
    "evaluate_segmentation",
    "build_architecture",
    "package_folder",
    "storable_state",
    "round_to_storage",
    "make_data",
    "FCN_SHAPES",
    "FCN_SHAPES_SEEDS",
    "fcn_shapes_data",
    "train_fcn_shapes",
    "MAX_BYTES",
    "METRIC_TOLERANCE",
    "PROVENANCE_KEYS",
    "STORAGE_DTYPE",
]

#: Largest allowed weights file, in bytes (5 MB).
MAX_BYTES = 5 * 1024 * 1024
#: How far a re-evaluation may drift from the recorded metric (other CPUs, other torch versions).
METRIC_TOLERANCE = 0.005
#: Keys that every provenance JSON file has.
PROVENANCE_KEYS = (
    "name", "unit", "description", "recipe", "script", "command", "seed", "options", "data",
    "architecture", "metric", "target", "value", "metrics", "weights", "sha256", "bytes",
    "storage_dtype", "torch", "segedu", "python", "date", "device", "threads", "train_seconds",
)
#: Floating tensors are stored in this dtype (half the size of float32); the recorded metric is
#: measured *after* the rounding, so that it is the metric of the shipped weights.
STORAGE_DTYPE = "float16"

_FOLDER = "checkpoints"


def _resolve(target: str):
    """Import ``"package.module:attribute"`` and return the attribute."""
    if not isinstance(target, str) or target.count(":") != 1:
        raise SegeduInputError(f"Expected 'module:function', such as 'segedu.models.fcn:FCN', but got {target!r}.")
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class CheckpointSpec:
    """One shipped checkpoint: how it was trained, on what, and what it must reach.

    Attributes
    ----------
    name : str
        File stem of ``<name>.pt`` and ``<name>.json``.
    unit : str
        The unit that loads it, e.g. ``"05"``.
    description : str
        One line for people.
    recipe : str
        ``"module:function"``, called as ``recipe(seed=seed, **options)``; it builds the network,
        trains it and returns it.
    seed : int
        The seed given to the recipe.
    options : dict
        Further keyword arguments of the recipe (e.g. the FCN variant).
    data : dict
        ``{"function": "module:function", "train": {...}, "val": {...}}``: the seeded generator of
        the data and its keyword arguments for each split (see :func:`make_data`).
    architecture : dict
        ``{"builder": "module:callable", "kwargs": {...}}``: builds the untrained network whose
        ``state_dict`` the weights file holds.
    metric : str
        The key of the evaluator's result that is recorded and checked, e.g. ``"mean_iou"``.
    target : float
        The least value of ``metric`` on the validation data that the checkpoint must reach.
    evaluator : str
        ``"module:function"`` called as ``evaluator(model, spec)`` and returning a dict of metrics;
        by default :func:`evaluate_segmentation` (the four metrics of :func:`segedu.training.evaluate`).
    """

    name: str
    unit: str
    description: str
    recipe: str
    seed: int
    data: dict
    architecture: dict
    metric: str
    target: float
    options: dict = field(default_factory=dict)
    evaluator: str = "segedu.models.checkpoint:evaluate_segmentation"


#: name -> :class:`CheckpointSpec`, one entry per shipped checkpoint.
REGISTRY: dict[str, CheckpointSpec] = {}


def register(spec: CheckpointSpec) -> CheckpointSpec:
    """Add ``spec`` to :data:`REGISTRY` (names are unique)."""
    if spec.name in REGISTRY:
        raise SegeduInputError(f"A checkpoint named {spec.name!r} is already registered.")
    for key in ("function", "train", "val"):
        if key not in spec.data:
            raise SegeduInputError(f"Checkpoint {spec.name!r}: data must have a {key!r} entry, got {sorted(spec.data)}.")
    REGISTRY[spec.name] = spec
    return spec


def checkpoint_names(unit: str | None = None) -> list[str]:
    """Names of the registered checkpoints (of one unit, e.g. ``"05"``), in registration order."""
    return [name for name, spec in REGISTRY.items() if unit is None or spec.unit == unit]


def get_spec(name) -> CheckpointSpec:
    """The :class:`CheckpointSpec` called ``name``; an unknown name raises an error listing the known ones."""
    if not isinstance(name, str):
        raise SegeduTypeError(f"A checkpoint name is a str, such as 'fcn8s_shapes_s0', but got {name!r}.")
    try:
        return REGISTRY[name]
    except KeyError:
        raise SegeduInputError(
            f"No checkpoint named {name!r}. The shipped checkpoints are: {', '.join(REGISTRY)}."
        ) from None


def make_data(description: dict, split: str):
    """Regenerate one split (``"train"`` or ``"val"``) of a checkpoint's data from its description.

    >>> images, labels = make_data(get_spec("fcn8s_shapes_s0").data, "val")
    >>> images.shape, labels.shape
    ((100, 96, 96, 3), (100, 96, 96))
    """
    if split not in ("train", "val"):
        raise SegeduInputError(f"split must be 'train' or 'val', but got {split!r}.")
    return _resolve(description["function"])(**description[split])


def build_architecture(spec: CheckpointSpec):
    """The untrained network of ``spec`` (its weights are overwritten by :func:`load_checkpoint`)."""
    return _resolve(spec.architecture["builder"])(**spec.architecture["kwargs"])


def evaluate_segmentation(model, spec: CheckpointSpec) -> dict:
    """The four metrics of :func:`segedu.training.evaluate` on the validation split, on the CPU."""
    from ..training import evaluate

    num_classes = spec.data["val"].get("num_classes")
    scores = evaluate(model, make_data(spec.data, "val"), num_classes=num_classes, device="cpu")
    return {key: float(value) for key, value in scores.items()}


def evaluate_checkpoint(name_or_spec, model=None) -> dict:
    """Measure a checkpoint's metrics again on its regenerated validation data.

    ``model`` defaults to the shipped weights (:func:`load_checkpoint`). Returns the evaluator's
    dict; ``result[spec.metric]`` is the number that the provenance records.
    """
    spec = name_or_spec if isinstance(name_or_spec, CheckpointSpec) else get_spec(name_or_spec)
    if model is None:
        model, _ = load_checkpoint(spec.name)
    return _resolve(spec.evaluator)(model, spec)


# -- files --------------------------------------------------------------------------------------


def package_folder() -> Path:
    """The folder of the shipped checkpoints inside the installed package (where ``make checkpoints`` writes)."""
    return Path(__file__).resolve().parent / _FOLDER


def _open_resource(filename: str, folder=None):
    if folder is not None:
        return open(Path(folder) / filename, "rb")
    return resources.files("segedu.models").joinpath(_FOLDER, filename).open("rb")


def read_provenance(name: str, folder=None) -> dict:
    """The provenance JSON of a shipped checkpoint (from ``folder`` instead of the package, if given)."""
    spec = get_spec(name)
    try:
        with _open_resource(f"{spec.name}.json", folder) as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise SegeduInputError(
            f"Checkpoint {name!r} is registered but its files are missing from this installation of segedu. "
            f"Reinstall segedu (pip install --force-reinstall segedu), or, in the course repository, run "
            f"`make checkpoints NAMES={name}` (python -m segedu.instructor checkpoints {name})."
        ) from None


def load_checkpoint(name: str, folder=None):
    """Load a shipped checkpoint: ``(model, provenance)``.

    The network is rebuilt from the spec's architecture, given the stored weights (loaded with
    ``map_location="cpu"`` and ``weights_only=True``, converted back to the network's float dtype),
    and returned on the CPU in ``eval()`` mode; move it with ``model.to(device)``. The provenance
    is the dict of ``<name>.json`` (see :data:`PROVENANCE_KEYS`). A weights file whose SHA-256
    does not match its provenance raises an error.

    Parameters
    ----------
    name : str
        One of :func:`checkpoint_names`.
    folder : str or Path, optional
        Read the files from this folder instead of the installed package.
    """
    spec = get_spec(name)
    provenance = read_provenance(name, folder)
    import io

    import torch

    with _open_resource(provenance["weights"], folder) as handle:
        raw = handle.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != provenance["sha256"]:
        raise SegeduInputError(
            f"{provenance['weights']} does not match its provenance (SHA-256 {digest[:12]}… instead of "
            f"{provenance['sha256'][:12]}…): the file is damaged or was replaced without "
            f"`make checkpoints NAMES={name}`. Reinstall segedu or retrain it."
        )
    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    model = build_architecture(spec)
    reference = model.state_dict()
    state = {key: value.to(reference[key].dtype) if key in reference else value for key, value in state.items()}
    model.load_state_dict(state, strict=True)
    return model.cpu().eval(), provenance


def storable_state(model) -> dict:
    """The ``state_dict`` as it is stored: floating tensors in float16, on the CPU, contiguous."""
    import torch

    dtype = getattr(torch, STORAGE_DTYPE)
    return {key: (value.detach().to("cpu", dtype) if value.is_floating_point() else value.detach().cpu()).contiguous()
            for key, value in model.state_dict().items()}


def round_to_storage(model):
    """A CPU copy of ``model`` whose floats went through the storage dtype, as a reload gives them."""
    rounded = copy.deepcopy(model).cpu()
    reference = rounded.state_dict()
    rounded.load_state_dict({key: value.to(reference[key].dtype) for key, value in storable_state(model).items()})
    return rounded.eval()


# -- recipes ------------------------------------------------------------------------------------
# Unit 05: FCN-32s, FCN-16s and FCN-8s on the synthetic shapes, three seeds each. Lecture 05 loads
# these nine checkpoints to show that FCN-8s > FCN-16s > FCN-32s holds for every seed, and
# benchmarks/fcn_skips.py trains the same configuration live.

#: The configuration of the unit-05 FCNs: data, network and training.
FCN_SHAPES = {
    "size": 96,  # 96×96 images: score maps of 3×3 (32s), 6×6 (16s) and 12×12 (8s)
    "num_classes": 6,  # background + disk, square, triangle, ring, cross
    "max_shapes": 6,
    "n_train": 400,
    "n_val": 100,
    "width": 8,  # stages of 8, 16, 32, 64, 64 channels
    "convs": 1,  # one convolution per stage
    "epochs": 12,
    "batch_size": 16,
    "lr": 3e-3,
}
#: Seeds of the shipped unit-05 checkpoints (training data seed ``s``, validation data ``100 + s``).
FCN_SHAPES_SEEDS = (0, 1, 2)


def fcn_shapes_data(seed: int, config: dict | None = None) -> dict:
    """The data description of the unit-05 FCNs for ``seed`` (train seed ``s``, validation ``100 + s``)."""
    c = FCN_SHAPES if config is None else config
    common = {"size": [c["size"], c["size"]], "num_classes": c["num_classes"], "max_shapes": c["max_shapes"]}
    return {
        "function": "segedu.data:shapes_dataset",
        "train": {"n": c["n_train"], "seed": seed, **common},
        "val": {"n": c["n_val"], "seed": 100 + seed, **common},
    }


def _fcn_architecture(variant: str, config: dict | None = None) -> dict:
    c = FCN_SHAPES if config is None else config
    return {"builder": "segedu.models.fcn:FCN",
            "kwargs": {"num_classes": c["num_classes"], "variant": variant, "width": c["width"], "convs": c["convs"]}}


def train_fcn_shapes(seed: int, variant: str = "8s", device="cpu", progress: bool = False, config: dict | None = None,
                     train=None):
    """The recipe of the unit-05 checkpoints: build FCN-``variant`` after ``set_seed(seed)`` and train it.

    Data: ``shapes_dataset`` with seed ``seed`` (see :func:`fcn_shapes_data`); training:
    :func:`segedu.training.train_segmentation` with :data:`FCN_SHAPES`'s epochs, batch size and
    learning rate, its batches shuffled with ``seed``. All three variants of one seed start from the
    same weights for the layers they share and see the same batches, so they compare fairly.
    ``config`` replaces :data:`FCN_SHAPES` (benchmarks/fcn_skips.py tries others), and ``train``
    passes the training set when the caller already generated it (it must be the one of
    :func:`fcn_shapes_data`). Returns the trained network in ``eval()`` mode.
    """
    from ..training import set_seed, train_segmentation

    c = FCN_SHAPES if config is None else config
    if train is None:
        train = make_data(fcn_shapes_data(seed, c), "train")
    architecture = _fcn_architecture(variant, c)
    set_seed(seed)
    model = _resolve(architecture["builder"])(**architecture["kwargs"])
    train_segmentation(model, train, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], seed=seed,
                       device=device, progress=progress)
    return model.eval()


#: The least validation mean IoU of each shipped FCN (every seed). The three-seed ordering with a
#: margin is checked across checkpoints by tests/test_checkpoints.py and lecture 05.
_FCN_TARGETS = {"32s": 0.30, "16s": 0.50, "8s": 0.65}

for _seed in FCN_SHAPES_SEEDS:
    for _variant in ("32s", "16s", "8s"):
        register(CheckpointSpec(
            name=f"fcn{_variant}_shapes_s{_seed}",
            unit="05",
            description=f"FCN-{_variant} (width 8, one conv per stage) trained on 400 synthetic 96×96 shapes images, "
                        f"seed {_seed}",
            recipe="segedu.models.checkpoint:train_fcn_shapes",
            seed=_seed,
            options={"variant": _variant},
            data=fcn_shapes_data(_seed),
            architecture=_fcn_architecture(_variant),
            metric="mean_iou",
            target=_FCN_TARGETS[_variant],
        ))
del _seed, _variant


# Later units register their checkpoints in a module of their own, imported here so that REGISTRY is
# complete whenever this module is: segedu.models.unet_recipes (U-Net on the nuclei) and
# segedu.models.segnet_recipes (SegNet against U-Net), segedu.models.deeplab_recipes (DeepLab, ASPP and output stride),
# segedu.models.maskrcnn_recipes (a small Mask R-CNN on the synthetic COCO instances), segedu.models.sam_recipes
# (TinySAM on nested shapes).
for _module in ("segedu.models.unet_recipes", "segedu.models.segnet_recipes", "segedu.models.deeplab_recipes",
                "segedu.models.maskrcnn_recipes", "segedu.models.sam_recipes"):
    importlib.import_module(_module)
del _module
