r"""A small, seeded training loop for the course's segmentation networks.

The loop is the textbook one: for each mini-batch, compute the per-pixel cross-entropy, weighted
by a per-pixel weight map :math:`w` when the dataset gives one (U-Net's loss, Ronneberger et al.
2015, eq. 1),

.. math::

    \mathcal{L} = -\frac{1}{|\Omega|} \sum_{x \in \Omega} w(x) \log
        \frac{\exp z_{y(x)}(x)}{\sum_{k=1}^{K} \exp z_k(x)},

where :math:`z(x)` are the logits at pixel :math:`x`, :math:`y(x)` its target class,
:math:`\Omega` the pixels whose target is not ``ignore_index`` and :math:`w \equiv 1` without a
weight map (:func:`weighted_cross_entropy`); then take one Adam step (Kingma and Ba 2015). Any
other loss can be given as ``loss_fn(logits, target, weight)``, e.g. a Dice or focal loss of
:mod:`segedu.losses`. Quality is measured with :mod:`segedu.metrics` on the confusion matrix accumulated over
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
.. [3] Ronneberger, O., Fischer, P. and Brox, T. "U-Net: Convolutional Networks for Biomedical
       Image Segmentation." MICCAI 2015. arXiv:1505.04597

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

__all__ = ["pick_device", "set_seed", "as_dataset", "weighted_cross_entropy", "train_segmentation", "evaluate",
           "METRIC_NAMES"]

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
    """Accept a torch ``Dataset`` as it is, or ``(images, labels[, weights])`` arrays as a ``TensorDataset``.

    The arrays are those of :func:`segedu.data.shapes_dataset`: images ``(N, H, W, C)`` (numpy,
    channels last) or ``(N, C, H, W)`` (torch, channels first) and labels ``(N, H, W)`` of ints.
    An optional third array ``(N, H, W)`` of floats is a per-pixel weight map of the loss (e.g.
    :func:`segedu.losses.unet_weight_map`); its items are then ``(image, labels, weight)``.

    >>> from segedu.data import shapes_dataset
    >>> ds = as_dataset(shapes_dataset(2, size=(32, 32)))
    >>> [tuple(t.shape) for t in ds[0]]
    [(3, 32, 32), (32, 32)]
    >>> import numpy as np
    >>> images, labels = shapes_dataset(2, size=(32, 32))
    >>> [t.dtype for t in as_dataset((images, labels, np.ones((2, 32, 32))))[0]]
    [torch.float32, torch.int64, torch.float32]
    """
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        images, labels = data[0], data[1]
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
        if len(data) == 2:
            return TensorDataset(images, labels.long())
        weights = torch.as_tensor(data[2])
        if weights.shape != labels.shape:
            raise SegeduInputError(
                f"the weight maps have shape {tuple(weights.shape)}, but the labels {tuple(labels.shape)}: give one "
                f"weight per pixel of every label map, e.g. np.stack([unet_weight_map(l) for l in instances])."
            )
        if not weights.is_floating_point():
            raise SegeduTypeError(f"the weight maps must be floating point, but have dtype {weights.dtype}; "
                                  f"convert them with .astype(np.float32).")
        return TensorDataset(images, labels.long(), weights.to(images.dtype))
    raise SegeduTypeError(
        f"Expected a torch Dataset or a pair (images, labels) such as shapes_dataset(...) returns (or a triple "
        f"(images, labels, weights)), but got {type(data).__name__}."
    )


def weighted_cross_entropy(logits, target, weight=None, ignore_index=None):
    r"""Per-pixel cross-entropy, each pixel's term multiplied by ``weight``, averaged over the pixels.

    .. math::

        \mathcal{L} = -\frac{1}{|\Omega|} \sum_{x \in \Omega} w(x)\,
            \log \operatorname{softmax}(z(x))_{y(x)},

    over the pixels :math:`\Omega` whose target is not ``ignore_index``. This is the energy of
    U-Net (Ronneberger et al. 2015, eq. 1), divided by the number of pixels, with :math:`w` from
    :func:`segedu.losses.unet_weight_map`. The mean is over pixels, not over weights, so a larger
    :math:`w_0` makes a larger loss (and larger gradients) near the borders. Without ``weight`` it
    is ``F.cross_entropy(logits, target, ignore_index=...)`` exactly. It equals
    :func:`segedu.losses.weighted_cross_entropy` when no pixel is ignored; the training loop keeps
    its own copy for ``ignore_index``.

    Parameters
    ----------
    logits : Tensor (N, K, H, W)
    target : Tensor (N, H, W) of class ids (long)
    weight : Tensor (N, H, W), optional
        Non-negative per-pixel weights.
    ignore_index : int, optional

    Examples
    --------
    >>> import torch, torch.nn.functional as F
    >>> logits, target = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    >>> bool(torch.allclose(weighted_cross_entropy(logits, target), F.cross_entropy(logits, target)))
    True
    >>> doubled = weighted_cross_entropy(logits, target, torch.full((2, 4, 4), 2.0))
    >>> bool(torch.allclose(doubled, 2 * F.cross_entropy(logits, target)))
    True
    """
    ce_ignore = -100 if ignore_index is None else ignore_index
    if weight is None:
        return F.cross_entropy(logits, target, ignore_index=ce_ignore)
    if weight.shape != target.shape:
        raise SegeduInputError(
            f"weight has shape {tuple(weight.shape)} but target {tuple(target.shape)}: give one weight per pixel "
            f"of the target, shape (N, H, W)."
        )
    per_pixel = F.cross_entropy(logits, target, ignore_index=ce_ignore, reduction="none")  # 0 where ignored
    counted = (target != ce_ignore).sum().clamp(min=1)
    return (weight.to(per_pixel.dtype) * per_pixel).sum() / counted


def _split_batch(batch):
    """``(images, labels)`` or ``(images, labels, weights)`` -> three items (weights may be None)."""
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise SegeduInputError(
            "each dataset item must be (image, labels) or (image, labels, weight), but a batch had "
            f"{len(batch) if isinstance(batch, (tuple, list)) else type(batch).__name__} parts."
        )
    return batch[0], batch[1], batch[2] if len(batch) == 3 else None


def _check_model(model):
    if not isinstance(model, nn.Module):
        raise SegeduTypeError(f"model must be a torch nn.Module, but got {type(model).__name__}.")


def _predict_classes(logits):
    """Class ids from logits: the argmax over channels, or ``logit > 0`` for one channel (binary)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


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

    The predictions ``logits.argmax(1)`` (for a one-channel binary network, ``logits > 0``: class 1 is
    the foreground) of every batch are counted into one confusion matrix
    (:func:`segedu.metrics.confusion_matrix`), from which :func:`~segedu.metrics.pixel_accuracy`,
    :func:`~segedu.metrics.mean_accuracy`, :func:`~segedu.metrics.mean_iou` and
    :func:`~segedu.metrics.frequency_weighted_iou` are computed. The model is put in ``eval()``
    mode for the evaluation and returned to its previous mode afterwards.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, C, H, W)`` images to ``(N, K, H, W)`` logits.
    dataset : Dataset or (images, labels)
        Items ``(image, labels)`` (or ``(image, labels, weight)``, whose weight is not used here); see
        :func:`as_dataset`.
    num_classes : int, optional
        :math:`K`; by default the number of channels of the logits (2 for a one-channel network).
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
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            images, labels, _ = _split_batch(batch)
            logits = model(images.to(device))
            _check_logits(logits, labels)
            if num_classes is None:
                num_classes = max(int(logits.shape[1]), 2)
            pred = _predict_classes(logits).cpu().numpy()
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
                       num_classes=None, ignore_index=None, weight_decay=0.0, progress=True, loss_fn=None):
    """Train a segmentation model with per-pixel (weighted) cross-entropy, or ``loss_fn``, and Adam.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, C, H, W)`` float images to ``(N, K, H, W)`` logits. It is moved to ``device``
        and trained in place.
    train_set, val_set : Dataset or (images, labels) or (images, labels, weights)
        Items ``(image (C, H, W) float, labels (H, W) long)``, e.g. a
        :class:`segedu.data.ShapesDataset`, or the arrays of :func:`segedu.data.shapes_dataset`
        (see :func:`as_dataset`). Items ``(image, labels, weight (H, W) float)`` carry a per-pixel
        weight map of the loss (U-Net's :func:`segedu.losses.unet_weight_map`); a dataset that
        augments each item at random draws from torch's generator, which ``seed`` seeds. With
        ``val_set``, the model is evaluated after every epoch.
    epochs, batch_size : int
        Passes over the training set, and images per step (the last batch may be smaller; a last batch
        of one image is dropped, because batch norm in training mode cannot normalise a single image
        whose map is 1×1, such as the image-pooling branch of DeepLab's ASPP).
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
    loss_fn : callable, optional
        ``loss_fn(logits, target, weight) -> scalar tensor``, with ``logits`` (N, K, H, W),
        ``target`` (N, H, W) long class ids and ``weight`` (N, H, W) or ``None``, all on ``device``.
        Default: :func:`weighted_cross_entropy` with ``ignore_index``. For a one-channel binary
        network, e.g. ``lambda z, y, w: segedu.losses.dice_loss(z[:, 0], y.float())``.

    Returns
    -------
    dict of lists, one entry per epoch
        ``"epoch"``, ``"train_loss"`` (the batches' losses, weighted by their counted pixels), ``"seconds"`` (cumulative
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
    if loss_fn is not None and not callable(loss_fn):
        raise SegeduTypeError(f"loss_fn must be a function loss_fn(logits, target, weight), but got "
                              f"{type(loss_fn).__name__}; leave it None for the (weighted) cross-entropy.")
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
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator,
                        drop_last=len(train_set) % batch_size == 1 if hasattr(train_set, "__len__") else False)
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
                for batch in loader:
                    images, labels, weights = _split_batch(batch)
                    images = images.to(device)
                    labels = labels.to(device).long()
                    weights = None if weights is None else weights.to(device)
                    logits = model(images)
                    _check_logits(logits, labels)
                    if loss_fn is None:
                        loss = weighted_cross_entropy(logits, labels, weights, ignore_index=ignore_index)
                    else:
                        loss = loss_fn(logits, labels, weights)
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
