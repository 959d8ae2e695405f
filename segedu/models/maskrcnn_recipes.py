r"""The recipes of unit 09 (Mask R-CNN): its shipped network, registered into the checkpoint REGISTRY on import.

Lecture 09 shows a Mask R-CNN that really detects. Training one from scratch takes minutes on a
CPU, more than a lecture's budget, so it ships as a checkpoint (``make checkpoints
NAMES=maskrcnn_synthetic_s0`` retrains it) and the lecture loads it, fine-tunes it briefly
(:func:`finetune_and_evaluate`) and scores it itself with pycocotools' ``COCOeval`` on held-out
images.

The data
--------
:func:`maskrcnn_data` writes the seeded synthetic COCO set of :func:`segedu.data.write_coco_instances`
(the one of unit 11) into a cache folder and returns the path of its ``labels.json``. The images
are :data:`MASKRCNN_SYNTHETIC`'s ``image_size`` pixels square (128: a CPU trains a detector on them
in minutes; no large objects, which need about 175 px, and the network's transform resizes nothing),
with the generator's default mix of categories, crowds and sizes. Training uses seed 0, the
held-out validation images seed 100 (the same ids as the checkpoint's seed plus 100, as in units 05
to 08).

The network and its training
----------------------------
:func:`segedu.models.small_mask_rcnn` with 9 classes (8 categories and the background), trained by
:func:`segedu.models.maskrcnn.train_mask_rcnn` (AdamW, warm-up and cosine decay, horizontal
flips), on one CPU thread. The evaluator (:func:`evaluate_maskrcnn_checkpoint`) reports COCOeval's
numbers as ``segm_AP``, ``segm_AP50``, ..., ``bbox_AP``, ...; the metric checked is ``segm_AP50``.

References
----------
.. [1] He, K., Gkioxari, G., Dollár, P. and Girshick, R. "Mask R-CNN." ICCV 2017. arXiv:1703.06870

Examples
--------
>>> from segedu.models.checkpoint import checkpoint_names, get_spec
>>> print(checkpoint_names("09"))
['maskrcnn_synthetic_s0']
>>> spec = get_spec("maskrcnn_synthetic_s0")
>>> spec.metric, spec.target
('segm_AP50', 0.7)
>>> spec.data["train"]["seed"], spec.data["val"]["seed"]
(0, 100)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import tempfile
import time
from pathlib import Path

from .checkpoint import CheckpointSpec, _resolve, make_data, register

__all__ = [
    "MASKRCNN_SYNTHETIC",
    "MASKRCNN_SEEDS",
    "maskrcnn_data",
    "maskrcnn_data_description",
    "architecture_09",
    "train_maskrcnn_synthetic",
    "evaluate_maskrcnn_checkpoint",
    "finetune_and_evaluate",
]

#: Data, network and training of the unit-09 checkpoint.
MASKRCNN_SYNTHETIC = {
    "image_size": 128,
    "n_train": 400,
    "n_val": 60,
    "num_classes": 9,  # the 8 synthetic categories + background
    "iterations": 600,
    "batch_size": 4,
    "lr": 2e-3,
    "warmup": 50,
}
#: Seeds of the shipped checkpoints (training data seed ``s``, validation data ``100 + s``).
MASKRCNN_SEEDS = (0,)


def _cache_root() -> Path:
    return Path(tempfile.gettempdir()) / "segedu-maskrcnn-data"


def maskrcnn_data(n_images: int, seed: int, split: str, image_size: int, **options) -> Path:
    """Write (once) the synthetic COCO set of these arguments into a cache folder; return its ``labels.json``.

    The folder is ``<tempdir>/segedu-maskrcnn-data/<key>/<split>/`` where the key hashes the
    arguments and the generator's source code, so a changed generator never reuses stale images.
    A set is written into a private folder and renamed into place when complete (marked by a
    ``done`` file), so an interrupted write is redone and parallel test workers never read a
    half-written set.
    """
    import shutil
    import uuid

    from ..data.coco import synthetic
    from ..data.coco.synthetic import write_coco_instances

    arguments = {"n_images": n_images, "seed": seed, "split": split, "min_size": image_size,
                 "max_size": image_size, **options}
    digest = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()
                            + inspect.getsource(synthetic).encode()).hexdigest()[:16]
    root = _cache_root() / digest
    final = root / split
    if (final / "done").is_file() and (final / "labels.json").is_file():
        return final / "labels.json"
    private = root / f".writing-{uuid.uuid4().hex}"
    try:
        write_coco_instances(private, **arguments)
        (private / split / "done").write_text("ok\n")
        if final.exists():  # an interrupted write, or another process finished first
            if not (final / "done").is_file():
                shutil.rmtree(final, ignore_errors=True)
        try:
            (private / split).rename(final)
        except OSError:
            if not (final / "done").is_file():
                raise
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return final / "labels.json"


def maskrcnn_data_description(seed: int, config: dict | None = None) -> dict:
    """The data description of the checkpoint of ``seed`` (train seed ``s``, validation ``100 + s``)."""
    c = MASKRCNN_SYNTHETIC if config is None else config
    return {
        "function": "segedu.models.maskrcnn_recipes:maskrcnn_data",
        "train": {"n_images": c["n_train"], "seed": seed, "split": "train", "image_size": c["image_size"]},
        "val": {"n_images": c["n_val"], "seed": 100 + seed, "split": "val", "image_size": c["image_size"]},
    }


def architecture_09(config: dict | None = None) -> dict:
    """The ``{"builder", "kwargs"}`` of the shipped network."""
    c = MASKRCNN_SYNTHETIC if config is None else config
    return {"builder": "segedu.models.maskrcnn:small_mask_rcnn",
            "kwargs": {"num_classes": c["num_classes"], "image_size": c["image_size"]}}


def train_maskrcnn_synthetic(seed: int, device="cpu", progress: bool = False, config: dict | None = None):
    """The recipe of ``maskrcnn_synthetic_s*``: build the network after ``set_seed(seed)`` and train it.

    Returns the trained network in ``eval()`` mode.
    """
    from ..data.coco.instances import CocoInstances
    from ..training import set_seed
    from .maskrcnn import train_mask_rcnn

    c = MASKRCNN_SYNTHETIC if config is None else config
    train_path = make_data(maskrcnn_data_description(seed, c), "train")
    dataset = CocoInstances(train_path, hflip=True, seed=seed)
    architecture = architecture_09(c)
    set_seed(seed)
    model = _resolve(architecture["builder"])(**architecture["kwargs"])
    train_mask_rcnn(model, dataset, iterations=c["iterations"], batch_size=c["batch_size"], lr=c["lr"],
                    warmup=c["warmup"], device=device, seed=seed, progress=progress)
    return model.eval()


def evaluate_maskrcnn_checkpoint(model, spec) -> dict:
    """COCOeval on the validation images, on the CPU: ``{"segm_AP": ..., "segm_AP50": ..., "bbox_AP": ...}``.

    The keys are ``<iou type>_<name>`` for the 12 numbers of :data:`segedu.models.maskrcnn.COCO_STAT_NAMES`.
    """
    from .maskrcnn import evaluate_mask_rcnn

    stats, _ = evaluate_mask_rcnn(model, make_data(spec.data, "val"), device="cpu")
    return {f"{iou_type}_{name}": float(value) for iou_type, table in stats.items() for name, value in table.items()}


def finetune_and_evaluate(name: str = "maskrcnn_synthetic_s0", iterations: int = 30, n_train: int = 48,
                          lr: float = 2e-4, batch_size: int = 4, freeze_backbone: bool = True, device=None,
                          progress: bool = True, seed: int = 0):
    """The lecture's demo: load a shipped Mask R-CNN, fine-tune it briefly, and score it with COCOeval.

    ``n_train`` fresh training images (seed ``1000 + seed``, never seen in training, so the
    fine-tuning is a real, if short, continuation) and ``iterations`` batches of ``batch_size`` at
    ``lr`` (a tenth of the training rate: the network is already trained), by default with the
    backbone frozen (``freeze_backbone``: only the RPN and the RoI heads learn, which halves the
    cost of an iteration). Then the held-out validation images of the checkpoint are scored.

    Returns
    -------
    dict
        ``model`` (in ``eval()`` mode, on ``device``), ``stats`` (``{"segm": {...}, "bbox": {...}}``
        of :func:`~segedu.models.maskrcnn.evaluate_mask_rcnn`), ``results`` (the COCO result
        dicts), ``val_path`` (the validation ``labels.json``), ``history`` (the training losses)
        and ``seconds`` (``{"load", "finetune", "evaluate"}``).
    """
    from ..data.coco.instances import CocoInstances
    from ..training import pick_device
    from .checkpoint import get_spec, load_checkpoint
    from .maskrcnn import evaluate_mask_rcnn, train_mask_rcnn

    device = pick_device() if device is None else device
    seconds = {}
    start = time.perf_counter()
    spec = get_spec(name)
    model, _ = load_checkpoint(name)
    seconds["load"] = time.perf_counter() - start

    start = time.perf_counter()
    history = None
    if iterations:
        kwargs = dict(spec.data["train"], n_images=n_train, seed=1000 + seed, split="finetune")
        train_path = _resolve(spec.data["function"])(**kwargs)
        dataset = CocoInstances(train_path, hflip=True, seed=seed)
        history = train_mask_rcnn(model, dataset, iterations=iterations, batch_size=batch_size, lr=lr, warmup=0,
                                  device=device, seed=seed, progress=progress, freeze_backbone=freeze_backbone)
    seconds["finetune"] = time.perf_counter() - start

    start = time.perf_counter()
    val_path = make_data(spec.data, "val")
    stats, results = evaluate_mask_rcnn(model, val_path, device=device)
    seconds["evaluate"] = time.perf_counter() - start
    return {"model": model, "stats": stats, "results": results, "val_path": val_path, "history": history,
            "seconds": seconds}


for _seed in MASKRCNN_SEEDS:
    register(CheckpointSpec(
        name=f"maskrcnn_synthetic_s{_seed}",
        unit="09",
        description=f"A small Mask R-CNN (tiny FPN backbone, slim heads) trained from scratch on "
                    f"{MASKRCNN_SYNTHETIC['n_train']} synthetic COCO-format 128×128 images, seed {_seed}",
        recipe="segedu.models.maskrcnn_recipes:train_maskrcnn_synthetic",
        seed=_seed,
        data=maskrcnn_data_description(_seed),
        architecture=architecture_09(),
        metric="segm_AP50",
        target=0.7,
        evaluator="segedu.models.maskrcnn_recipes:evaluate_maskrcnn_checkpoint",
    ))
del _seed
