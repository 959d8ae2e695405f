r"""A Mask R-CNN small enough to train on a CPU: torchvision's ``MaskRCNN`` with a tiny backbone.

Mask R-CNN (He et al. 2017, arXiv:1703.06870) is Faster R-CNN (Ren et al. 2015,
arXiv:1506.01497) plus a third head: for each region of interest (RoI) a small fully convolutional
network predicts a :math:`28 \times 28` mask per class, and only the channel of the RoI's
(ground-truth, at training time) class is used, so that mask and class are decoupled:

.. math::

    L = L_{cls} + L_{box} + L_{mask}, \qquad
    L_{mask} = -\frac{1}{m^2} \sum_{ij} \big[y_{ij}\log \hat y^{k}_{ij} + (1 - y_{ij})\log(1 - \hat y^{k}_{ij})\big]

with :math:`k` the RoI's class and :math:`m = 28`; plus the region proposal network's own
objectness and box losses. :func:`small_mask_rcnn` keeps every one of torchvision's parts
(``torchvision.models.detection.MaskRCNN``: the RPN, ``RoIHeads``, the losses, the
post-processing, ``paste_masks_in_image``) and shrinks only what costs compute and bytes:

==========================  ===============================  ===========================  ==========================
part                        paper (ResNet-50-FPN)            torchvision default          here
==========================  ===============================  ===========================  ==========================
backbone                    ResNet-50 / 101, ImageNet        ResNet-50, ImageNet          8 conv-BN-ReLU blocks,
                                                                                          16-32-48-64 channels,
                                                                                          from scratch (82 k)
feature pyramid             FPN P2-P6, 256 channels          FPN P2-P6 (``pool``), 256    FPN P2-P5 + ``pool``,
                                                                                          ``fpn_channels`` = 64
                                                                                          (158 k)
anchors                     32-512 px, ratios 0.5, 1, 2      32, 64, 128, 256, 512        8, 16, 32, 64, 128 px
                                                                                          (areas 64-16384 px²)
RPN proposals train/test    2000 / 1000 per image            2000 / 1000 (post-NMS)       300 / 100
RPN anchors sampled         256 per image                    256, 50 % positive           128, 50 % positive
sampled RoIs per image      512, 25 % positive               512, 25 % positive           128, 25 % positive
box head                    2 FC of 1024 (``TwoMLPHead``)    ``TwoMLPHead`` 1024          ``TwoMLPHead`` 128 (418 k)
box RoIAlign                7×7                              7×7, sampling 2              7×7, sampling 2
mask head                   4 conv 3×3 of 256, deconv 2×     4 × 256 + deconv 256         2 conv of 32 + deconv 32
                                                                                          (32 k)
mask RoIAlign → mask        14×14 → 28×28                    14×14 → 28×28                14×14 → 28×28
RoIAlign ``aligned``        (bilinear, no quantisation)      ``False``                    ``False`` (torchvision's)
image resize                short side 800, long ≤ 1333      min 800, max 1333            ``image_size`` (no
                                                                                          upscaling of 128 px)
image mean / std            ImageNet                         ImageNet                     0.5 / 0.25 for [0, 1]
detections per image        100                              100                          50
==========================  ===============================  ===========================  ==========================

Why these choices:

* **Backbone and FPN.** The synthetic objects are flat-coloured shapes on a textured background:
  colour and outline suffice, so four stages of one or two 3×3 convolutions (strides 4, 8, 16, 32)
  are enough, and no pretrained weights are needed. A tiny FPN (Lin et al. 2017,
  arXiv:1612.03144; ``torchvision.ops.FeaturePyramidNetwork``) matters because the objects span
  30 to 8000 px²: small ones are found on P2 (stride 4), large ones on P5. Its 64 channels are
  also the input of the RoI heads.
* **Anchors.** One size per level, as torchvision's FPN models, but four times smaller (8 px on
  P2 up to 128 px on the max-pooled level): the smallest synthetic objects are about 6 px across.
* **RoIAlign.** ``MultiScaleRoIAlign`` assigns each RoI to a pyramid level by
  :math:`k = \lfloor 4 + \log_2(\sqrt{wh} / 224) \rfloor` (eq. 1 of the FPN paper), clamped to
  the levels present; with our small boxes nearly every RoI reads P2. Note that torchvision's
  Mask R-CNN calls ``roi_align`` with ``aligned=False`` (no half-pixel shift; the Detectron2
  models use ``aligned=True``); we keep torchvision's behaviour.
* **Heads.** ``TwoMLPHead`` of 128 and a two-conv mask head keep the parameters (and the
  float16 checkpoint) small: 0.73 M parameters in all (for 9 classes), a 1.5 MB checkpoint,
  against 44 M for ``maskrcnn_resnet50_fpn``. Most of them sit in the box head's first fully
  connected layer (64 × 7 × 7 inputs → 128), as in the paper's model.
* **Sampling.** 128 sampled RoIs and 128 sampled anchors per image (torchvision: 512 and 256)
  and fewer proposals: the 128-px images hold about four objects each, and every RoI costs CPU
  time in RoIAlign and the heads.
* **Resize.** ``GeneralizedRCNNTransform`` resizes every image so that its short side is
  ``min_size``, capped by ``max_size`` on the long side; with both equal to the training image
  size, nothing is upscaled to 800 px (which would cost 40× the compute for nothing).
  ``image_mean``/``image_std`` normalise [0, 1] images to roughly zero mean and unit variance
  (torchvision's defaults are ImageNet's statistics, for its pretrained backbones).

:func:`train_mask_rcnn` trains it (AdamW with a warm-up and a cosine decay: from scratch on a CPU it
converges in fewer iterations than SGD), :func:`predict` runs it, and
:func:`evaluate_mask_rcnn` scores it with pycocotools' ``COCOeval`` (segm and bbox).

References
----------
.. [1] He, K., Gkioxari, G., Dollár, P. and Girshick, R. "Mask R-CNN." ICCV 2017. arXiv:1703.06870
.. [2] Ren, S., He, K., Girshick, R. and Sun, J. "Faster R-CNN: Towards Real-Time Object Detection
       with Region Proposal Networks." NeurIPS 2015. arXiv:1506.01497
.. [3] Lin, T.-Y., Dollár, P., Girshick, R., He, K., Hariharan, B. and Belongie, S. "Feature
       Pyramid Networks for Object Detection." CVPR 2017. arXiv:1612.03144
.. [4] Lin, T.-Y. et al. "Microsoft COCO: Common Objects in Context." ECCV 2014. arXiv:1405.0312

Examples
--------
>>> import torch
>>> model = small_mask_rcnn(num_classes=9)
>>> _ = model.eval()
>>> with torch.no_grad():
...     out = model([torch.rand(3, 128, 128)])
>>> print(sorted(out[0]))
['boxes', 'labels', 'masks', 'scores']
>>> out[0]["masks"].shape[1:]
torch.Size([1, 128, 128])
"""

from __future__ import annotations

import math
import numbers
import time
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from .._validation import SegeduInputError, SegeduTypeError, check_positive_int, check_seed
from .blocks import conv_bn_relu

__all__ = [
    "TinyBackbone",
    "small_mask_rcnn",
    "count_parameters",
    "train_mask_rcnn",
    "predict",
    "detections_to_coco",
    "evaluate_mask_rcnn",
    "COCO_STAT_NAMES",
]

#: The names of ``COCOeval.stats`` in order (the 12 numbers of its summary table).
COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


class TinyBackbone(nn.Module):
    """Four conv-BN-ReLU stages (strides 4, 8, 16, 32) under a small feature pyramid network.

    Returns an ``OrderedDict`` of feature maps ``"0"`` (stride 4) to ``"3"`` (stride 32) and
    ``"pool"`` (stride 64, a max-pool of ``"3"``), each with ``out_channels`` channels: the
    interface of torchvision's ``BackboneWithFPN``, which ``MaskRCNN`` requires.

    >>> feats = TinyBackbone(widths=(8, 8, 8, 8), out_channels=8)(torch.zeros(1, 3, 64, 64))
    >>> print([(k, tuple(v.shape[-2:])) for k, v in feats.items()])
    [('0', (16, 16)), ('1', (8, 8)), ('2', (4, 4)), ('3', (2, 2)), ('pool', (1, 1))]
    """

    def __init__(self, widths=(16, 32, 48, 64), out_channels=64):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        if len(widths) != 4:
            raise SegeduInputError(f"widths must give the channels of the 4 stages, but got {widths!r}.")
        widths = [check_positive_int(w, "widths") for w in widths]
        self.out_channels = check_positive_int(out_channels, "out_channels")
        c1, c2, c3, c4 = widths
        # stride 2 then 4: the stem reaches P2's resolution fast, where the small objects are found
        self.stem = nn.Sequential(conv_bn_relu(3, c1, stride=2), conv_bn_relu(c1, c1, stride=2),
                                  conv_bn_relu(c1, c1))
        self.stages = nn.ModuleList([
            nn.Sequential(conv_bn_relu(c1, c2, stride=2), conv_bn_relu(c2, c2)),
            nn.Sequential(conv_bn_relu(c2, c3, stride=2), conv_bn_relu(c3, c3)),
            nn.Sequential(conv_bn_relu(c3, c4, stride=2)),
        ])
        self.fpn = FeaturePyramidNetwork([c1, c2, c3, c4], self.out_channels, extra_blocks=LastLevelMaxPool())

    def forward(self, x):
        features = OrderedDict()
        x = self.stem(x)
        features["0"] = x
        for i, stage in enumerate(self.stages, start=1):
            x = stage(x)
            features[str(i)] = x
        return self.fpn(features)


def small_mask_rcnn(num_classes: int, image_size: int = 128, widths=(16, 32, 48, 64), fpn_channels: int = 64,
                    representation_size: int = 128, mask_layers=(32, 32), anchor_sizes=(8, 16, 32, 64, 128),
                    max_image_size: int | None = None, **kwargs):
    """torchvision's ``MaskRCNN`` with a tiny backbone and slim heads (see the table in the module docstring).

    Parameters
    ----------
    num_classes : int
        Number of classes **including the background** (the synthetic COCO set: 8 + 1 = 9).
    image_size : int
        ``min_size`` of the ``GeneralizedRCNNTransform``: images are resized so that their short
        side is ``image_size`` (the training images are ``image_size`` square, so nothing moves).
    widths : 4 ints
        Channels of the backbone's stages (strides 4, 8, 16, 32).
    fpn_channels : int
        Channels of the feature pyramid (and of the RPN and RoI heads' input).
    representation_size : int
        Width of the two fully connected layers of the box head.
    mask_layers : tuple of int
        Channels of the mask head's 3×3 convolutions (the paper: four of 256).
    anchor_sizes : 5 ints
        Anchor side in pixels on P2, P3, P4, P5 and the pooled level (ratios 0.5, 1, 2 on each).
    max_image_size : int, optional
        ``max_size`` of the transform (default ``image_size``).
    **kwargs
        Passed to ``MaskRCNN`` (e.g. ``box_score_thresh``), overriding the values here.

    Returns
    -------
    torchvision.models.detection.MaskRCNN
        In training mode; ``model(images, targets)`` gives the loss dict, ``model.eval()(images)``
        a list of dicts with ``boxes``, ``labels``, ``scores`` and ``masks`` (N×1×H×W
        probabilities).
    """
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    num_classes = check_positive_int(num_classes, "num_classes", minimum=2,
                                     hint=" (it counts the background: K categories need K + 1)")
    image_size = check_positive_int(image_size, "image_size", minimum=32)
    max_image_size = image_size if max_image_size is None else check_positive_int(max_image_size, "max_image_size")
    if max_image_size < image_size:
        raise SegeduInputError(f"max_image_size ({max_image_size}) must be at least image_size ({image_size}).")
    if len(anchor_sizes) != 5:
        raise SegeduInputError(f"anchor_sizes needs one size per pyramid level (5: P2-P5 and pool), but got "
                               f"{anchor_sizes!r}.")
    mask_layers = tuple(check_positive_int(c, "mask_layers") for c in mask_layers)
    if not mask_layers:
        raise SegeduInputError("mask_layers needs at least one convolution width, e.g. (32, 32).")
    representation_size = check_positive_int(representation_size, "representation_size")

    backbone = TinyBackbone(widths, fpn_channels)
    levels = ["0", "1", "2", "3"]
    anchor_generator = AnchorGenerator(sizes=tuple((int(s),) for s in anchor_sizes),
                                       aspect_ratios=((0.5, 1.0, 2.0),) * len(anchor_sizes))
    box_roi_pool = MultiScaleRoIAlign(featmap_names=levels, output_size=7, sampling_ratio=2)
    mask_roi_pool = MultiScaleRoIAlign(featmap_names=levels, output_size=14, sampling_ratio=2)
    box_head = TwoMLPHead(fpn_channels * 7 * 7, representation_size)
    mask_head = MaskRCNNHeads(fpn_channels, mask_layers, dilation=1)
    mask_predictor = MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes)
    options = dict(
        min_size=image_size, max_size=max_image_size,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25],
        rpn_anchor_generator=anchor_generator,
        rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128,
        box_roi_pool=box_roi_pool, box_head=box_head, box_predictor=FastRCNNPredictor(representation_size, num_classes),
        box_batch_size_per_image=128,
        box_detections_per_img=50, box_score_thresh=0.05,
        mask_roi_pool=mask_roi_pool, mask_head=mask_head, mask_predictor=mask_predictor,
    )
    options.update(kwargs)
    return MaskRCNN(backbone, num_classes=None, **options)


def count_parameters(model) -> int:
    """The number of trainable parameters of ``model``.

    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _check_detector(model):
    from torchvision.models.detection import MaskRCNN

    if not isinstance(model, MaskRCNN):
        raise SegeduTypeError(f"model must be a torchvision MaskRCNN (e.g. segedu.models.small_mask_rcnn(9)), "
                              f"but got {type(model).__name__}.")


def _check_dataset(dataset):
    from ..data.coco.instances import CocoInstances

    if not isinstance(dataset, CocoInstances):
        raise SegeduTypeError(f"dataset must be a segedu.data.CocoInstances (a COCO file read for training), but got "
                              f"{type(dataset).__name__}.")


def _learning_rate(step, total, lr, warmup):
    if step < warmup:
        return lr * (0.1 + 0.9 * step / warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_mask_rcnn(model, dataset, iterations: int = 1000, batch_size: int = 4, lr: float = 2e-3,
                    weight_decay: float = 1e-4, warmup: int = 50, device=None, seed: int = 0, progress: bool = True,
                    clip_norm: float = 10.0, freeze_backbone: bool = False):
    """Train a torchvision Mask R-CNN on a :class:`~segedu.data.CocoInstances` for ``iterations`` batches.

    AdamW (Loshchilov & Hutter 2019, arXiv:1711.05101) at ``lr``, with a linear warm-up over
    ``warmup`` iterations from ``lr / 10`` and a cosine decay to ``lr / 50``; gradients are clipped
    to norm ``clip_norm`` (the RPN's box losses spike early on, from scratch). Batches are
    ``batch_size`` images drawn without replacement, in an order seeded by ``seed`` (epoch ``e``
    uses ``numpy.random.default_rng([seed, e])``, and ``dataset.set_epoch(e)`` picks its flips). A
    tqdm bar shows the running loss. The model ends in ``eval()`` mode.

    ``freeze_backbone=True`` trains only the RPN and the RoI heads: the backbone and its FPN keep
    their weights and their batch-norm statistics (they stay in ``eval()`` mode), and no gradient
    flows through them, which makes an iteration about twice as fast. That is how a brief
    fine-tuning of a trained detector is usually done.

    Returns
    -------
    dict
        ``{"loss": [float per iteration], "seconds": float, "iterations": int}``; the losses are the
        sum of torchvision's five (``loss_classifier``, ``loss_box_reg``, ``loss_mask``,
        ``loss_objectness``, ``loss_rpn_box_reg``).
    """
    from ..training import pick_device

    _check_detector(model)
    _check_dataset(dataset)
    iterations = check_positive_int(iterations, "iterations")
    batch_size = check_positive_int(batch_size, "batch_size")
    warmup = check_positive_int(warmup, "warmup", minimum=0)
    seed = check_seed(seed, allow_none=False)
    for value, name in ((lr, "lr"), (weight_decay, "weight_decay"), (clip_norm, "clip_norm")):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0 or not math.isfinite(value):
            raise SegeduInputError(f"{name} must be a finite number >= 0, but got {value!r}.")
    if len(dataset) == 0:
        raise SegeduInputError("dataset has no images to train on.")
    if not isinstance(freeze_backbone, bool):
        raise SegeduTypeError(f"freeze_backbone must be True or False, but got {freeze_backbone!r}.")
    device = torch.device(pick_device() if device is None else device)
    model.to(device).train()
    frozen = [p for p in model.backbone.parameters() if p.requires_grad] if freeze_backbone else []
    for p in frozen:
        p.requires_grad_(False)
    if freeze_backbone:
        model.backbone.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    def batches():
        epoch = 0
        while True:
            dataset.set_epoch(epoch)
            order = np.random.default_rng([seed, epoch]).permutation(len(dataset))
            for start in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
                yield [dataset[int(i)] for i in order[start:start + batch_size]]
            epoch += 1

    bar = range(iterations)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc="Mask R-CNN", unit="it")
    history, running, start = [], None, time.perf_counter()
    stream = batches()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, iterations, lr, warmup)
        items = next(stream)
        images = [image.to(device) for image, _ in items]
        targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for _, t in items]
        losses = model(images, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()} at iteration {step}: lower lr (now {lr}).")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        optimizer.step()
        value = float(loss.detach())
        history.append(value)
        running = value if running is None else 0.95 * running + 0.05 * value
        if progress:
            bar.set_postfix(loss=f"{running:.3f}", mask=f"{float(losses['loss_mask'].detach()):.3f}")
    seconds = time.perf_counter() - start
    for p in frozen:
        p.requires_grad_(True)
    model.eval()
    if progress:
        print(f"trained {iterations} iterations in {seconds:.1f} s; final running loss {running:.3f}")
    return {"loss": history, "seconds": seconds, "iterations": iterations}


@torch.no_grad()
def predict(model, images, device=None, batch_size: int = 8):
    """Run a Mask R-CNN in ``eval()`` mode on a list of ``3×H×W`` float images in [0, 1]; outputs on the CPU.

    Returns torchvision's list of dicts (``boxes``, ``labels``, ``scores``, ``masks`` of shape
    N×1×H×W with probabilities). The model is put in ``eval()`` mode and moved to ``device``.
    """
    from ..training import pick_device

    _check_detector(model)
    if torch.is_tensor(images) and images.ndim == 3:
        images = [images]
    images = list(images)
    for i, image in enumerate(images):
        if not torch.is_tensor(image) or image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
            shape = tuple(image.shape) if hasattr(image, "shape") else type(image).__name__
            raise SegeduInputError(f"images[{i}] must be a float tensor of shape (3, H, W) with values in [0, 1], "
                                   f"but got {shape}; convert an H×W×3 uint8 array with "
                                   f"torch.from_numpy(a).permute(2, 0, 1).float() / 255.")
    device = torch.device(pick_device() if device is None else device)
    model.to(device).eval()
    out = []
    for start in range(0, len(images), batch_size):
        chunk = [image.to(device) for image in images[start:start + batch_size]]
        out.extend({k: v.cpu() for k, v in o.items()} for o in model(chunk))
    return out


def detections_to_coco(outputs, image_ids, label_to_category_id, mask_threshold: float = 0.5,
                       score_threshold: float = 0.0) -> list:
    """COCO result dicts (``image_id``, ``category_id``, ``segmentation`` as compressed RLE, ``bbox``, ``score``).

    ``label_to_category_id`` maps the network's label 1..K back to the COCO category id (a
    callable, a dict or a list whose item ``k - 1`` is the id of label ``k``). Masks are the
    pasted probabilities thresholded at ``mask_threshold``; ``bbox`` is the detector's box in
    COCO's ``[x, y, w, h]``. Detections with a score below ``score_threshold`` are dropped.
    """
    from ..data.coco._common import mask_utils, quiet_pycocotools

    if callable(label_to_category_id):
        to_id = label_to_category_id
    elif isinstance(label_to_category_id, dict):
        to_id = label_to_category_id.__getitem__
    else:
        ids = list(label_to_category_id)
        to_id = lambda label: ids[label - 1]  # noqa: E731
    if len(outputs) != len(image_ids):
        raise SegeduInputError(f"outputs has {len(outputs)} entries but image_ids has {len(image_ids)}; give one id "
                               f"per image.")
    mu = mask_utils()
    results = []
    for output, image_id in zip(outputs, image_ids):
        keep = output["scores"] >= score_threshold
        masks = (output["masks"][keep, 0] >= mask_threshold).numpy().astype(np.uint8)
        boxes = output["boxes"][keep].numpy().astype(np.float64)
        if masks.shape[0]:
            with quiet_pycocotools():
                rles = mu.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
        else:
            rles = []
        for rle, box, label, score in zip(rles, boxes, output["labels"][keep].tolist(),
                                          output["scores"][keep].tolist()):
            results.append({
                "image_id": int(image_id),
                "category_id": int(to_id(int(label))),
                "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
                "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                "score": float(score),
            })
    return results


def _coco_stats(coco_gt, results, iou_type, image_ids):
    from pycocotools.cocoeval import COCOeval

    from ..data.coco._common import quiet_pycocotools

    if not results:
        return {name: 0.0 for name in COCO_STAT_NAMES}
    # COCO.loadRes looks at "bbox" first: a result with a box gets the box's area even when it has a
    # mask, which moves mask detections between APs, APm and APl. Each evaluation gets only its own key.
    drop = "bbox" if iou_type == "segm" else "segmentation"
    with quiet_pycocotools():
        coco_dt = coco_gt.loadRes([{k: v for k, v in r.items() if k != drop} for r in results])
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}


def evaluate_mask_rcnn(model, annotation_path, device=None, score_threshold: float = 0.0, mask_threshold: float = 0.5,
                       batch_size: int = 8, dataset=None):
    """Score a Mask R-CNN on a COCO file with pycocotools' ``COCOeval``: ``(stats, results)``.

    ``stats`` is ``{"segm": {...}, "bbox": {...}}``, each with the 12 numbers of ``COCOeval``'s
    summary (:data:`COCO_STAT_NAMES`: ``AP`` = AP@[.50:.95], ``AP50``, ``AP75``, ``APs``,
    ``APm``, ``APl``, then the recalls) on every image of the file; ``-1`` means that no ground
    truth of that size exists, as COCOeval reports it. ``results`` is the list of COCO result
    dicts (:func:`detections_to_coco`), with the labels mapped back to category ids. Crowd
    annotations stay in the ground truth, so detections on crowds are ignored, as in COCO.
    The ``segm`` evaluation is given the results without their ``bbox`` and the ``bbox`` one
    without their ``segmentation``: ``COCO.loadRes`` would otherwise take a mask detection's
    area from its box, and file it under the wrong size range.

    ``dataset`` reuses a :class:`~segedu.data.CocoInstances` already built for the file (its
    label mapping must match the one the model was trained with).
    """
    from ..data.coco.instances import CocoInstances

    _check_detector(model)
    if dataset is None:
        dataset = CocoInstances(annotation_path)
    _check_dataset(dataset)
    if dataset.hflip:  # score the images as they are
        dataset = CocoInstances(dataset.annotation_path, image_folder=dataset.image_folder,
                                category_ids=dataset.category_ids)
    images = [dataset[i][0] for i in range(len(dataset))]
    outputs = predict(model, images, device=device, batch_size=batch_size)
    results = detections_to_coco(outputs, dataset.image_ids, dataset.label_to_category_id,
                                 mask_threshold=mask_threshold, score_threshold=score_threshold)
    stats = {iou_type: _coco_stats(dataset.coco, results, iou_type, dataset.image_ids)
             for iou_type in ("segm", "bbox")}
    return stats, results
