"""Instance segmentation (unit 09): the operations inside Mask R-CNN, and how instance results are scored.

=========================  ============================================  =================================
name                       what                                          module
=========================  ============================================  =================================
``roi_align``              RoIAlign (He et al. 2017), vectorised;        :mod:`segedu.instance.roi`
                           = ``torchvision.ops.roi_align``
``roi_align_reference``    the same as readable loops                    :mod:`segedu.instance.roi`
``roi_pool``               RoIPool (Girshick 2015), quantised max;       :mod:`segedu.instance.roi`
                           = ``torchvision.ops.roi_pool``
``bilinear_interpolate``   a map sampled at real coordinates,            :mod:`segedu.instance.roi`
                           RoIAlign's border rule
``mask_iou``               N×M IoU of two stacks of masks;               :mod:`segedu.instance.masks`
                           = ``pycocotools.mask.iou``
``paste_masks``            the mask head's M×M maps pasted into the      :mod:`segedu.instance.masks`
                           image, as torchvision
``box_iou`` …              box IoU and area, xywh <-> xyxy, box          :mod:`segedu.instance.boxes`
                           deltas (``encode_boxes``/``decode_boxes``),
                           ``nms``, ``batched_nms``
``make_anchors`` …         anchors of one level and their matching to    :mod:`segedu.instance.anchors`
                           ground truth (``match_anchors``)
``coco_ap`` …              precision/recall, 101-point AP, COCO's AP     :mod:`segedu.instance.ap`
                           table computed by segedu's own matching
``panoptic_quality``       panoptic quality PQ = SQ × RQ (Kirillov et    :mod:`segedu.instance.panoptic`
                           al. 2019)
=========================  ============================================  =================================

Everything takes and returns torch tensors as torchvision does (masks and IoU matrices: numpy, as
pycocotools). Bad input (boxes given as ``x, y, w, h``, a ``K×4`` tensor without its batch index, masks of
different sizes) raises an error that names the fix.

>>> import torch
>>> from segedu.instance import roi_align
>>> roi_align(torch.ones(1, 2, 8, 8), [torch.tensor([[0.0, 0.0, 4.0, 4.0]])], 7, aligned=True).shape
torch.Size([1, 2, 7, 7])
"""

from . import anchors as _anchors
from . import ap as _ap
from . import boxes as _boxes
from . import panoptic as _panoptic
from .anchors import *  # noqa: F401,F403
from .ap import *  # noqa: F401,F403
from .boxes import *  # noqa: F401,F403
from .panoptic import *  # noqa: F401,F403
from .masks import mask_iou, paste_masks
from .roi import bilinear_interpolate, roi_align, roi_align_reference, roi_pool

__all__ = [
    "bilinear_interpolate",
    "roi_align",
    "roi_align_reference",
    "roi_pool",
    "mask_iou",
    "paste_masks",
    *_boxes.__all__,
    *_anchors.__all__,
    *_ap.__all__,
    *_panoptic.__all__,
]
