r"""A small, seeded training loop for the course's segmentation networks.

The loop is the textbook one: for each mini-batch, compute the per-pixel cross-entropy

.. math::

    \mathcal{L} = -\frac{1}{|\Omega|} \sum_{x \in \Omega} \log
        \frac{\exp z_{y(x)}(x)}{\sum_{k=1}^{K} \exp z_k(x)},

where :math:`z(x)` are the logits at pixel :math:`x`, :math:`y(x)` its target class and
:math:`\Omega` the pixels whose target is not ``ignore_index``; then take one Adam step (Kingma and
Ba 2015). Quality is measured with :mod:`segedu.metrics` on the confusion matrix accumulated over
the whole validation set (not averaged over batches), as Long et al. (2015) do.

Reproducibility: call :func:`set_seed` *before* building the model (it fixes the initial weights);
:func:`train_segmentation` seeds the shuffling and everything random during training from its
``seed``. On a CPU two runs with the same seeds give the same numbers; GPUs may differ in the last
digits.

References
----------
.. [1] Long, J., Shelhamer, E. and Darrell, T. "Fully Convolutional Networks for Semantic
       Segmentation." CVPR 2015. arXiv:1411.4038
.. [2] Kingma, D. P. and Ba, J. "Adam: A Method for Stochastic Optimization." ICLR 2015.
       arXiv:1412.6980

Examples
--------
>>> from segedu.data import shapes_dataset
>>> from segedu.models import fcn8s
>>> from segedu.training import evaluate, set_seed, train_segmentation
>>> train = shapes_dataset(16, size=(32, 32), num_classes=3, seed=0)
>>> set_seed(0)
>>> model = fcn8s(num_classes=3, width=4)
>>> history = train_segmentation(model, train, epochs=1, batch_size=8, progress=False)
>>> len(history["train_loss"])
1
>>> sorted(evaluate(model, train, num_classes=3))
['frequency_weighted_iou', 'mean_accuracy', 'mean_iou', 'pixel_accuracy']
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from . import metrics
from ._validation import (
    SegeduInputError,
    SegeduTypeError,
    check_ignore_index,
    check_positive_int,
    check_real_scalar,
    check_seed,
)

__all__ = ["pick_device", "set_seed", "as_dataset", "train_segmentation", "evaluate", "METRIC_NAMES"]

#: The keys of the dict returned by :func:`evaluate`, in the order of Long et al.'s tables.
METRIC_NAMES = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou")


def pick_device() -> torch.device:
    """The fastest available device: CUDA, then Apple's MPS, then the CPU.

    >>> pick_device().type in ("cuda", "mps", "cpu")
    True
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed) -> None:
    """Seed Python's, numpy's and torch's (CPU and CUDA) random generators.

    Call it right before building a model, so that its initial weights are the same every run.
    It also asks cuDNN for deterministic algorithms.

    >>> import torch
    >>> set_seed(3); a = torch.rand(2)
    >>> set_seed(3); b = torch.rand(2)
    >>> torch.equal(a, b)
    True
    """
    seed = check_seed(seed, allow_none=False)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():  # manual_seed seeds CUDA too; this is explicit for old versions
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def as_dataset(data) -> Dataset:
    """Accept a torch ``Dataset`` as it is, or ``(images, labels)`` arrays as a ``TensorDataset``.

    The arrays are those of :func:`segedu.data.shapes_dataset`: images ``(N, H, W, C)`` (numpy,
    channels last) or ``(N, C, H, W)`` (torch, channels first) and labels ``(N, H, W)`` of ints.

    >>> from segedu.data import shapes_dataset
    >>> ds = as_dataset(shapes_dataset(2, size=(32, 32)))
    >>> [tuple(t.shape) for t in ds[0]]
    [(3, 32, 32), (32, 32)]
    """
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
        channels_last = isinstance(images, np.ndarray)
        images = torch.as_tensor(np.asarray(images) if channels_last else images)
        labels = torch.as_tensor(labels)
        if images.ndim != 4 or labels.ndim != 3:
            raise SegeduInputError(
                f"(images, labels) must be of shapes (N, H, W, C) and (N, H, W), but got {tuple(images.shape)} "
                f"and {tuple(labels.shape)}."
            )
        if channels_last:
            images = images.permute(0, 3, 1, 2).contiguous()
        if not images.is_floating_point():
            raise SegeduTypeError(f"images must be floating point, but have dtype {images.dtype}.")
        if labels.is_floating_point():
            raise SegeduTypeError(f"labels must be integer class ids, but have dtype {labels.dtype}.")
        if images.shape[0] != labels.shape[0] or images.shape[2:] != labels.shape[1:]:
            raise SegeduInputError(
                f"images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match: expected the same "
                f"number of samples and the same height and width."
            )
        return TensorDataset(images, labels.long())
    raise SegeduTypeError(
        f"Expected a torch Dataset or a pair (images, labels) such as shapes_dataset(...) returns, "
        f"but got {type(data).__name__}."
    )


def _check_model(model):
    if not isinstance(model, nn.Module):
        raise SegeduTypeError(f"model must be a torch nn.Module, but got {type(model).__name__}.")


def _check_logits(logits, labels):
    if logits.ndim != 4 or logits.shape[0] != labels.shape[0] or logits.shape[2:] != labels.shape[1:]:
        raise SegeduInputError(
            f"The model returned shape {tuple(logits.shape)} for labels of shape {tuple(labels.shape)}; "
            f"a segmentation model must return logits (N, K, H, W) matching the labels (N, H, W)."
        )


@torch.no_grad()
def evaluate(model, dataset, num_classes=None, device=None, batch_size=32, ignore_index=None,
             return_confusion=False):
    """Score ``model`` on ``dataset`` with the four metrics of Long et al. (2015).

    The predictions ``logits.argmax(1)`` of every batch are counted into one confusion matrix
    (:func:`segedu.metrics.confusion_matrix`), from which :func:`~segedu.metrics.pixel_accuracy`,
    :func:`~segedu.metrics.mean_accuracy`, :func:`~segedu.metrics.mean_iou` and
    :func:`~segedu.metrics.frequency_weighted_iou` are computed. The model is put in ``eval()``
    mode for the evaluation and returned to its previous mode afterwards.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, C, H, W)`` images to ``(N, K, H, W)`` logits.
    dataset : Dataset or (images, labels)
        Items ``(image, labels)``; see :func:`as_dataset`.
    num_classes : int, optional
        :math:`K`; by default the number of channels of the logits.
    device : torch.device or str, optional
        Where to run the model (default: the device of its parameters).
    batch_size : int
        Images per forward pass.
    ignore_index : int, optional
        Target label of "void" pixels that are not counted.
    return_confusion : bool
        Also return the confusion matrix, under the key ``"confusion_matrix"``.

    Returns
    -------
    dict
        ``{"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"}`` as floats.
    """
    _check_model(model)
    dataset = as_dataset(dataset)
    batch_size = check_positive_int(batch_size, "batch_size")
    ignore_index = check_ignore_index(ignore_index)
    if num_classes is not None:
        num_classes = check_positive_int(num_classes, "num_classes")
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    cm = None
    try:
        for images, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            logits = model(images.to(device))
            _check_logits(logits, labels)
            if num_classes is None:
                num_classes = int(logits.shape[1])
            pred = logits.argmax(1).cpu().numpy()
            part = metrics.confusion_matrix(pred, labels.numpy(), num_classes, ignore_index=ignore_index)
            cm = part if cm is None else cm + part
    finally:
        model.train(was_training)
    result = {
        "pixel_accuracy": metrics.pixel_accuracy(cm),
        "mean_accuracy": metrics.mean_accuracy(cm),
        "mean_iou": metrics.mean_iou(cm),
        "frequency_weighted_iou": metrics.frequency_weighted_iou(cm),
    }
    if return_confusion:
        result["confusion_matrix"] = cm
    return result


def train_segmentation(model, train_set, val_set=None, epochs=5, batch_size=16, lr=1e-3, seed=0, device=None,
                       num_classes=None, ignore_index=None, weight_decay=0.0, progress=True):
    """Train a segmentation model with per-pixel cross-entropy and Adam; return its history.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, C, H, W)`` float images to ``(N, K, H, W)`` logits. It is moved to ``device``
        and trained in place.
    train_set, val_set : Dataset or (images, labels)
        Items ``(image (C, H, W) float, labels (H, W) long)``, e.g. a
        :class:`segedu.data.ShapesDataset`, or the arrays of :func:`segedu.data.shapes_dataset`
        (see :func:`as_dataset`). With ``val_set``, the model is evaluated after every epoch.
    epochs, batch_size : int
        Passes over the training set, and images per step (the last batch may be smaller).
    lr, weight_decay : float
        Adam's learning rate and L2 weight decay.
    seed : int
        Seeds the order of the batches and any randomness during training (dropout). The initial
        weights are fixed by the seed in force when the model was built: see :func:`set_seed`.
    device : torch.device or str, optional
        Default :func:`pick_device` (CUDA, then MPS, then CPU).
    num_classes : int, optional
        :math:`K` for the metrics; by default the channels of the logits.
    ignore_index : int, optional
        Target label of "void" pixels, left out of the loss and the metrics (e.g. 255).
    progress : bool
        Show a tqdm progress bar (the only output; with ``False`` nothing is printed).

    Returns
    -------
    dict of lists, one entry per epoch
        ``"epoch"``, ``"train_loss"`` (mean over the epoch's pixels), ``"seconds"`` (cumulative
        time) and, with ``val_set``, ``"val_pixel_accuracy"``, ``"val_mean_accuracy"``,
        ``"val_mean_iou"`` and ``"val_frequency_weighted_iou"``. The model is left in ``eval()``
        mode, ready for prediction.
    """
    _check_model(model)
    train_set = as_dataset(train_set)
    val_set = None if val_set is None else as_dataset(val_set)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_real_scalar(lr, "lr", minimum=0, strict=True)
    weight_decay = check_real_scalar(weight_decay, "weight_decay", minimum=0)
    seed = check_seed(seed, allow_none=False)
    ignore_index = check_ignore_index(ignore_index)
    if num_classes is not None:
        num_classes = check_positive_int(num_classes, "num_classes")
    device = pick_device() if device is None else torch.device(device)

    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SegeduInputError(
            "model has no trainable parameters (every parameter has requires_grad=False), so there is "
            "nothing to train. Unfreeze some, e.g. with model.requires_grad_(True)."
        )
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)
    ce_ignore = -100 if ignore_index is None else ignore_index

    history = {"epoch": [], "train_loss": [], "seconds": []}
    if val_set is not None:
        for name in METRIC_NAMES:
            history[f"val_{name}"] = []

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * len(loader), desc="training", unit="batch")
    start = time.perf_counter()
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            for epoch in range(1, epochs + 1):
                model.train()
                total, count = 0.0, 0
                for images, labels in loader:
                    images = images.to(device)
                    labels = labels.to(device).long()
                    logits = model(images)
                    _check_logits(logits, labels)
                    loss = F.cross_entropy(logits, labels, ignore_index=ce_ignore)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    n = int((labels != ce_ignore).sum())
                    total += float(loss.detach()) * n
                    count += n
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=f"{epoch}/{epochs}", loss=f"{float(loss.detach()):.3f}", refresh=False)
                history["epoch"].append(epoch)
                history["train_loss"].append(total / max(count, 1))
                if val_set is not None:
                    scores = evaluate(model, val_set, num_classes, device, batch_size=max(batch_size, 32),
                                      ignore_index=ignore_index)
                    for name in METRIC_NAMES:
                        history[f"val_{name}"].append(scores[name])
                    if bar is not None:
                        bar.set_postfix(epoch=f"{epoch}/{epochs}", loss=f"{history['train_loss'][-1]:.3f}",
                                        val_mIoU=f"{scores['mean_iou']:.3f}")
                history["seconds"].append(time.perf_counter() - start)
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history
