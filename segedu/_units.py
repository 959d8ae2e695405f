"""The unit table: the one place that says which units the course has and what each consists of.

Everything that lists units reads this table: the README's unit tables (``make links`` writes them),
the budgets that ``make course`` and ``make bench`` apply, and the layout test, which checks that each
unit's lecture, solution, exercise, segedu modules and test files exist. Adding a unit is one row
here plus its own files::

    Unit("06", "unet", "U-Net: copy-and-crop, ...", modules=("segedu.models.unet", "segedu.losses"),
         tests=("tests/test_unet.py", "tests/test_losses.py"), kind="torch"),

The budgets are COURSE.md's, on a 2-core CPU with another CPU-bound job running: each lecture runs
in at most 90 s, and a graded notebook's cells execute in at most 2 s for numpy-only units and 5 s
for torch units (kernel start not counted). Grading 200 submissions takes at most 5 min (numpy) or
10 min (torch).

>>> unit("05").name
'05_fcn'
>>> unit("05_fcn").graded_budget_s
5.0
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Unit", "UNITS", "unit", "PLANNED_UNITS", "later_unit_error", "LECTURE_BUDGET_S", "ALL_LECTURES_BUDGET_S", "GRADED_BUDGET_S",
           "CLASS_GRADING_BUDGET_S"]

LECTURE_BUDGET_S = 90.0
ALL_LECTURES_BUDGET_S = 600.0
#: seconds a graded notebook's cells may take in the kernel, by the kind of unit
GRADED_BUDGET_S = {"numpy": 2.0, "torch": 5.0}
#: seconds for grading 200 submissions, by the kind of unit
CLASS_GRADING_BUDGET_S = {"numpy": 300.0, "torch": 600.0}


@dataclass(frozen=True)
class Unit:
    """One unit: a lecture, an autograded exercise, the segedu modules it teaches and their tests.

    ``kind`` is "numpy" when the graded notebook needs numpy only (its cells get 2 s), "torch" when
    it builds tensors or networks (5 s).
    """

    id: str
    slug: str
    title: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    kind: str = "numpy"
    lecture_budget_s: float = LECTURE_BUDGET_S

    def __post_init__(self):
        if self.kind not in GRADED_BUDGET_S:
            raise ValueError(f"unit {self.id}: kind must be one of {sorted(GRADED_BUDGET_S)}, not {self.kind!r}")

    @property
    def name(self) -> str:
        """The assignment id and file stem, ``NN_slug``."""
        return f"{self.id}_{self.slug}"

    @property
    def lecture(self) -> str:
        return f"lectures/{self.name}.ipynb"

    @property
    def solution(self) -> str:
        return f"solutions/{self.name}/{self.name}.ipynb"

    @property
    def exercise(self) -> str:
        return f"exercises/{self.name}/{self.name}.ipynb"

    @property
    def graded_budget_s(self) -> float:
        return GRADED_BUDGET_S[self.kind]

    @property
    def class_grading_budget_s(self) -> float:
        return CLASS_GRADING_BUDGET_S[self.kind]


UNITS = (
    Unit("00", "tasks_and_metrics",
         "segmentation tasks, label maps, the confusion matrix and its metrics (pixel accuracy, mean accuracy, "
         "mIoU, fwIoU, Dice)",
         modules=("segedu.metrics",), tests=("tests/test_metrics.py",)),
    Unit("01", "thresholding", "thresholding: global, Otsu, adaptive mean and Gaussian",
         modules=("segedu.classical.thresholding",), tests=("tests/test_thresholding.py",)),
    Unit("02", "edges", "edges: convolution vs correlation, Sobel, Laplacian, Roberts, Prewitt, LoG, Canny step by step",
         modules=("segedu.classical.edges",), tests=("tests/test_edges.py",)),
    Unit("03", "regions",
         "regions: region growing, split-and-merge, k-means, connected components, watershed, SLIC",
         modules=("segedu.classical.regions",), tests=("tests/test_regions.py",)),
    Unit("04", "transpose_convolution",
         "convolution arithmetic and transpose convolution by hand, the matrix view, checkerboard artefacts",
         modules=("segedu.conv",), tests=("tests/test_conv.py",)),
    Unit("05", "fcn", "FCN: convolutionalised classifier, bilinear upsampling, FCN-32s/16s/8s trained on a CPU",
         modules=("segedu.models.fcn", "segedu.training"), tests=("tests/test_models.py",), kind="torch"),
    Unit("06", "unet",
         "U-Net: copy-and-crop, up-convolution, the border weight map; BCE, focal and Dice losses; joint image/mask "
         "augmentation; real nuclei",
         modules=("segedu.models.unet", "segedu.losses", "segedu.data.nuclei"),
         tests=("tests/test_unet.py", "tests/test_losses.py", "tests/test_nuclei.py"), kind="torch"),
    Unit("07", "segnet", "SegNet: max-pooling indices, sparse unpooling, and SegNet against U-Net",
         modules=("segedu.models.segnet", "segedu.conv"), tests=("tests/test_segnet.py", "tests/test_pooling.py"),
         kind="torch"),
    Unit("08", "deeplab", "DeepLab: atrous convolution, receptive fields, ASPP, output stride 8 against 16, a dense CRF",
         modules=("segedu.models.deeplab", "segedu.conv", "segedu.crf"),
         tests=("tests/test_deeplab.py", "tests/test_receptive_field.py", "tests/test_crf.py"), kind="torch"),
    Unit("09", "mask_rcnn",
         "instance segmentation: anchors, NMS and AP; RoIPool against RoIAlign; Mask R-CNN's mask head, trained on "
         "a CPU and scored with COCOeval; panoptic quality",
         modules=("segedu.instance", "segedu.models.maskrcnn"),
         tests=("tests/test_instance.py", "tests/test_detection.py", "tests/test_maskrcnn.py"), kind="torch"),
    Unit("10", "sam",
         "Segment Anything: ViT patches and attention, MAE, the prompt encoder, the two-way mask decoder, ambiguity "
         "and the min-over-masks loss; a TinySAM trained for the course; the automatic mask generator",
         modules=("segedu.models.sam", "segedu.losses"),
         tests=("tests/test_sam_parts.py", "tests/test_sam.py", "tests/test_tiny_sam.py", "tests/test_sam_pretrained.py"),
         kind="torch"),
    Unit("11", "coco_eda", "assignment: COCO EDA with FiftyOne, preprocessing, a model, COCO mask AP, and a report",
         modules=("segedu.data.coco",),
         tests=("tests/test_coco.py", "tests/test_coco_eval.py", "tests/test_coco_stats.py")),
)


def unit(key: str) -> Unit:
    """The unit of an id (``"05"``), an assignment id (``"05_fcn"``) or a notebook path."""
    from pathlib import PurePath

    text = PurePath(str(key)).name[:2]
    for candidate in UNITS:
        if candidate.id == text:
            return candidate
    raise KeyError(f"no unit {key!r} in segedu/_units.py; the units are {', '.join(u.name for u in UNITS)}")


#: Units the course plans (COURSE.md) that this version of the package does not have yet, id -> topic.
#: Names that they will add raise :func:`later_unit_error`; a unit's row moves to :data:`UNITS` when it
#: lands. Every unit of COURSE.md has landed, so the table is empty; the mechanism stays for the next.
PLANNED_UNITS: dict[str, str] = {}


def later_unit_error(qualified_name: str, unit_id: str, topic: str | None = None) -> AttributeError:
    """The error for a name that a planned unit adds, saying which unit and what to do.

    ``topic`` defaults to the unit's entry in :data:`PLANNED_UNITS`.

    >>> print(later_unit_error("segedu.models.SAM2", "12", "video"))
    segedu.models.SAM2 comes with unit 12 (video), which this version of segedu does not have yet. Install the segedu release that unit 12's notebooks name in their setup cell.
    """
    topic = topic if topic is not None else PLANNED_UNITS.get(unit_id, "a later unit")
    return AttributeError(
        f"{qualified_name} comes with unit {unit_id} ({topic}), which this version of segedu does "
        f"not have yet. Install the segedu release that unit {unit_id}'s notebooks name in their setup cell."
    )
