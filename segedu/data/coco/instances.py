r"""A torch ``Dataset`` over a COCO instances file: what torchvision's Mask R-CNN trains on.

:class:`CocoInstances` reads a COCO JSON file (the one :func:`~segedu.data.write_coco_instances`
writes, or any COCO ``instances_*.json`` with its image folder) and gives, for image ``i``,

* ``image``: a float32 tensor ``3×H×W`` with values in [0, 1] (RGB);
* ``target``: the dict that ``torchvision.models.detection.MaskRCNN`` expects in training mode,

  ============  ===============  ==============================================================
  key           dtype, shape     meaning
  ============  ===============  ==============================================================
  ``boxes``     float32 (N, 4)   ``x1, y1, x2, y2`` in pixels: COCO's ``[x, y, w, h]`` with
                                 ``x2 = x + w``, ``y2 = y + h`` (the box of the mask's pixels)
  ``labels``    int64 (N,)       contiguous class labels 1..K (0 is the background)
  ``masks``     uint8 (N, H, W)  ``COCO.annToMask`` of each annotation
  ``image_id``  int              the COCO image id
  ``area``      float32 (N,)     the annotation's ``area``
  ``iscrowd``   int64 (N,)       always 0 (see below)
  ============  ===============  ==============================================================

**Category ids are not class labels.** COCO's ids have gaps (the synthetic set uses 1, 2, 3, 5,
6, 8, 9, 11), while a network's classifier needs the labels 1..K. The mapping is
``label = category_ids.index(category_id) + 1``, with ``category_ids`` sorted increasing (by
default all the file's categories); :meth:`CocoInstances.label_to_category_id` maps back, which a
COCO result file needs.

**Crowd annotations are dropped from the targets.** A crowd (``iscrowd=1``) is one mask over a
group of objects, not an instance the network should learn to find as one box; COCO's own
evaluation ignores detections that fall on a crowd instead of counting them as false positives,
and Mask R-CNN's reference training drops crowds too (torchvision's ``references/detection``
``coco_utils.ConvertCocoPolysToMask`` keeps only ``iscrowd == 0``). Their pixels stay in the image,
unlabelled. Annotations of categories outside ``category_ids`` are dropped as well.

**Images without objects are kept**: their target has ``boxes`` of shape ``(0, 4)`` and
``masks`` of shape ``(0, H, W)``, which torchvision accepts (they teach the RPN what background
looks like).

Augmentation: ``hflip=True`` flips each item left-right with probability 1/2 (image, masks and
boxes together), drawn from ``numpy.random.default_rng(np.random.SeedSequence([seed, epoch,
index]))``, so an item's flip depends only on the seed, :meth:`CocoInstances.set_epoch` and its
index, whatever the worker or the order.

:func:`collate` keeps a batch as ``(list of images, list of targets)``: the images of a detection
batch may differ in size, and torchvision's ``GeneralizedRCNNTransform`` batches them itself.

References
----------
.. [1] Lin, T.-Y. et al. "Microsoft COCO: Common Objects in Context." ECCV 2014. arXiv:1405.0312
.. [2] He, K., Gkioxari, G., Dollár, P. and Girshick, R. "Mask R-CNN." ICCV 2017. arXiv:1703.06870

Examples
--------
>>> import tempfile
>>> from segedu.data import write_coco_instances
>>> path = write_coco_instances(tempfile.mkdtemp(), n_images=2, seed=0, min_size=96, max_size=96)
>>> dataset = CocoInstances(path)
>>> image, target = dataset[0]
>>> image.shape, image.dtype, sorted(target)
(torch.Size([3, 96, 96]), torch.float32, ['area', 'boxes', 'image_id', 'iscrowd', 'labels', 'masks'])
>>> print(dataset.category_ids)
[1, 2, 3, 5, 6, 8, 9, 11]
>>> dataset.label_to_category_id(4), dataset.category_id_to_label(5)
(5, 4)
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..._validation import SegeduInputError, SegeduTypeError, check_seed
from ._common import quiet_pycocotools

__all__ = ["CocoInstances", "collate"]


def collate(batch):
    """``[(image, target), ...]`` → ``(list of images, list of targets)``: a batch for torchvision's detectors.

    >>> images, targets = collate([("a", {"x": 1}), ("b", {"x": 2})])
    >>> print(images, targets)
    ['a', 'b'] [{'x': 1}, {'x': 2}]
    """
    if not isinstance(batch, (list, tuple)) or not all(isinstance(item, (list, tuple)) and len(item) == 2
                                                      for item in batch):
        raise SegeduInputError("collate expects a list of (image, target) pairs, as CocoInstances gives them.")
    images, targets = zip(*batch) if batch else ((), ())
    return list(images), list(targets)


class CocoInstances(Dataset):
    """A map-style ``torch.utils.data.Dataset`` of ``(image, target)`` pairs from a COCO instances file.

    Use it with a ``DataLoader(..., collate_fn=collate)``, or index it directly.

    Parameters
    ----------
    annotation_path : str or Path
        The COCO JSON file (or a folder holding ``labels.json``). Images are read from
        ``image_folder``, by default the ``data`` folder beside the JSON file (the layout of
        :func:`~segedu.data.write_coco_instances`), or beside it when there is no ``data`` folder.
    image_folder : str or Path, optional
        Where the ``file_name`` of each image is.
    category_ids : sequence of int, optional
        The categories to learn, in label order: ``category_ids[k]`` gets label ``k + 1``. Default:
        all the file's category ids, sorted increasing.
    hflip : bool
        Random horizontal flips (probability 1/2, seeded; see the module docstring).
    seed : int
        The seed of the flips.
    cache : bool
        Keep decoded images and masks in memory after first use (a few MB for the course's sets).

    Attributes
    ----------
    coco : pycocotools.coco.COCO
    image_ids : list of int
        The COCO image ids, in item order (sorted increasing).
    category_ids : list of int
    num_classes : int
        ``len(category_ids) + 1``: the ``num_classes`` of a detector, background included.
    """

    def __init__(self, annotation_path, image_folder=None, category_ids=None, hflip: bool = False, seed: int = 0,
                 cache: bool = True):
        from .reading import _resolve_annotation_path, load_coco

        self.annotation_path = _resolve_annotation_path(annotation_path)
        self.coco = load_coco(self.annotation_path)
        if image_folder is None:
            data = self.annotation_path.parent / "data"
            image_folder = data if data.is_dir() else self.annotation_path.parent
        self.image_folder = Path(image_folder)
        if not self.image_folder.is_dir():
            raise SegeduInputError(f"image_folder {str(self.image_folder)!r} is not a folder; pass the folder that "
                                   f"holds the images named in the COCO file.")
        known = sorted(self.coco.getCatIds())
        if category_ids is None:
            category_ids = known
        category_ids = [self._check_id(c, "category_ids") for c in category_ids]
        if not category_ids:
            raise SegeduInputError("category_ids is empty; pass at least one COCO category id.")
        if len(set(category_ids)) != len(category_ids):
            raise SegeduInputError(f"category_ids has repeated ids: {category_ids}; each category gets one label.")
        unknown = [c for c in category_ids if c not in known]
        if unknown:
            raise SegeduInputError(f"category_ids {unknown} are not in {self.annotation_path.name}, whose "
                                   f"categories are {known}.")
        self.category_ids = category_ids
        self._label_of = {c: k + 1 for k, c in enumerate(category_ids)}
        self.num_classes = len(category_ids) + 1
        if not isinstance(hflip, bool):
            raise SegeduTypeError(f"hflip must be True or False, but got {hflip!r}.")
        self.hflip = hflip
        self.seed = check_seed(seed, allow_none=False)
        self.epoch = 0
        self.image_ids = sorted(self.coco.getImgIds())
        self._cache = {} if cache else None

    @staticmethod
    def _check_id(value, name):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise SegeduTypeError(f"{name} must hold int COCO category ids, but got {value!r}.")
        return int(value)

    # -- the label mapping ---------------------------------------------------------------------------

    def category_id_to_label(self, category_id) -> int:
        """The contiguous label 1..K of a COCO category id."""
        category_id = self._check_id(category_id, "category_id")
        if category_id not in self._label_of:
            raise SegeduInputError(f"category id {category_id} is not one of this dataset's {self.category_ids}.")
        return self._label_of[category_id]

    def label_to_category_id(self, label) -> int:
        """The COCO category id of a label 1..K (0, the background, has none)."""
        label = self._check_id(label, "label")
        if not 1 <= label <= len(self.category_ids):
            raise SegeduInputError(f"label must be in 1..{len(self.category_ids)} (0 is the background and has no "
                                   f"category id), but got {label}.")
        return self.category_ids[label - 1]

    # -- Dataset -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.image_ids)

    def set_epoch(self, epoch: int) -> None:
        """Use the flips of another epoch (the training loop calls it once per pass)."""
        self.epoch = int(epoch)

    def load(self, index: int):
        """Image ``index`` without augmentation: ``(uint8 H×W×3 array, dict of numpy targets)``."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        from PIL import Image

        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        path = self.image_folder / info["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"Image {info['file_name']} of {self.annotation_path.name} is not in "
                                    f"{self.image_folder}; pass image_folder=... .")
        with Image.open(path) as handle:
            pixels = np.asarray(handle.convert("RGB"))
        h, w = pixels.shape[:2]
        if (h, w) != (info["height"], info["width"]):
            raise SegeduInputError(f"{info['file_name']} is {h}×{w} pixels but the COCO file says "
                                   f"{info['height']}×{info['width']}.")
        anns = [a for a in self.coco.imgToAnns.get(image_id, [])
                if not a.get("iscrowd", 0) and a["category_id"] in self._label_of]
        with quiet_pycocotools():
            masks = [self.coco.annToMask(a).astype(np.uint8) for a in anns]
        keep = [i for i, m in enumerate(masks) if m.any()]  # an empty mask has no box
        anns, masks = [anns[i] for i in keep], [masks[i] for i in keep]
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], dtype=np.float32).reshape(-1, 4)
        target = {
            "boxes": boxes,
            "labels": np.array([self._label_of[a["category_id"]] for a in anns], dtype=np.int64),
            "masks": np.stack(masks) if masks else np.zeros((0, h, w), dtype=np.uint8),
            "image_id": int(image_id),
            "area": np.array([a["area"] for a in anns], dtype=np.float32),
            "iscrowd": np.zeros(len(anns), dtype=np.int64),
        }
        item = (pixels, target)
        if self._cache is not None:
            self._cache[index] = item
        return item

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise SegeduTypeError(f"index must be an int, but got {index!r}.")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} images.")
        index = int(index) % n
        pixels, t = self.load(index)
        image = torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float().div_(255.0)
        boxes = torch.from_numpy(t["boxes"].copy())
        masks = torch.from_numpy(t["masks"].copy())
        if self.hflip:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))
            if rng.random() < 0.5:
                width = image.shape[-1]
                image = image.flip(-1)
                masks = masks.flip(-1)
                # pixel column x goes to W - 1 - x, so a box edge at x goes to W - x
                boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
        target = {
            "boxes": boxes,
            "labels": torch.from_numpy(t["labels"].copy()),
            "masks": masks,
            "image_id": t["image_id"],
            "area": torch.from_numpy(t["area"].copy()),
            "iscrowd": torch.from_numpy(t["iscrowd"].copy()),
        }
        return image, target

    def __repr__(self) -> str:
        return (f"CocoInstances({str(self.annotation_path)!r}, {len(self)} images, {len(self.category_ids)} "
                f"categories, hflip={self.hflip})")
