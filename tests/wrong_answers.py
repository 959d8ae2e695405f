"""Realistic wrong answers, kept as fixtures: each must lose the points of the named test cells.

A mutation takes the solution's code for one cell and replaces one snippet (which must occur
exactly once), so a fixture breaks loudly when the solution changes. A replacement gives the
whole code of a cell, as a student would type it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mutation:
    cell: str
    old: str
    new: str


@dataclass(frozen=True)
class Submission:
    name: str
    why: str
    changes: tuple = ()                    # Mutation objects
    replace: dict = field(default_factory=dict)   # grade_id -> code
    must_lose: tuple = ()                  # test grade ids that must not get full points
    full_marks: bool = False               # for correct-but-unusual answers
    delete_cells: tuple = ()               # grade ids of test cells the student deleted
    edit_cells: dict = field(default_factory=dict)  # grade id -> new source of a (locked) test cell


M = Mutation

WRONG_ANSWERS = {
    "00_tasks_and_metrics": [
        Submission("cm_transposed", "rows and columns swapped: prediction on the rows",
                   (M("confusion_matrix", "num_classes * target + pred", "num_classes * pred + target"),),
                   must_lose=("test_confusion_matrix_counts", "test_confusion_matrix_ignore")),
        Submission("cm_ignore_not_excluded", "ignore_index accepted but never applied",
                   (M("confusion_matrix", "    if ignore_index is not None:\n        keep = target != ignore_index\n"
                      "        pred, target = pred[keep], target[keep]\n", ""),),
                   must_lose=("test_confusion_matrix_ignore",)),
        Submission("pixel_accuracy_per_class", "averages per-class accuracies instead of counting pixels",
                   (M("pixel_accuracy", "np.trace(cm) / cm.sum()", "np.mean(np.diag(cm) / cm.sum(axis=1))"),),
                   must_lose=("test_pixel_accuracy",)),
        Submission("mean_accuracy_all_classes", "a class absent from the target counted as accuracy 0",
                   (M("mean_accuracy", "np.mean(np.diag(cm)[present] / per_class_total[present])",
                      "np.mean(np.diag(cm) / np.maximum(per_class_total, 1))"),),
                   must_lose=("test_mean_accuracy",)),
        Submission("mean_iou_absent_as_zero", "classes absent from both maps averaged in as IoU 0",
                   (M("mean_iou", "np.mean(intersection[present] / union[present])",
                      "np.mean(intersection / np.maximum(union, 1))"),),
                   must_lose=("test_mean_iou",)),
        Submission("mean_iou_target_classes_only", "only classes of the target averaged",
                   (M("mean_iou", "present = union > 0", "present = cm.sum(axis=1) > 0"),),
                   must_lose=("test_mean_iou",)),
        Submission("fw_iou_prediction_weights", "weights taken from the prediction (columns)",
                   (M("frequency_weighted_iou", "return float(np.sum(target_area[present] * iou) / target_area.sum())",
                      "predicted_area = cm.sum(axis=0)\n"
                      "    return float(np.sum(predicted_area[present] * iou) / predicted_area.sum())"),),
                   must_lose=("test_frequency_weighted_iou",)),
        Submission("dice_is_iou", "computes IoU and calls it Dice",
                   (M("dice_coefficient", "2.0 * np.logical_and(a, b).sum() / total",
                      "np.logical_and(a, b).sum() / np.logical_or(a, b).sum()"),),
                   must_lose=("test_dice_overlap",)),
        Submission("dice_empty_is_zero", "two empty masks score 0 instead of 1",
                   (M("dice_coefficient", "return 1.0", "return 0.0"),),
                   must_lose=("test_dice_empty",)),
        Submission("fits_visible_tests_only", "returns the visible test's expected value",
                   replace={"pixel_accuracy": "def pixel_accuracy(cm):\n    return 0.7\n"},
                   must_lose=("test_pixel_accuracy",)),
        Submission("delegates_to_sklearn", "calls sklearn.metrics.confusion_matrix under an alias",
                   replace={"confusion_matrix": (
                       "from sklearn.metrics import confusion_matrix as counts_from_library\n\n"
                       "def confusion_matrix(pred, target, num_classes, ignore_index=None):\n"
                       "    pred = np.asarray(pred).ravel()\n"
                       "    target = np.asarray(target).ravel()\n"
                       "    if ignore_index is not None:\n"
                       "        keep = target != ignore_index\n"
                       "        pred, target = pred[keep], target[keep]\n"
                       "    return counts_from_library(target, pred, labels=np.arange(num_classes))\n")},
                   must_lose=("test_confusion_matrix_counts", "test_confusion_matrix_ignore")),
        Submission("delegates_to_segedu_alias", "wraps the segedu reference imported under another name",
                   replace={"mean_iou": "from segedu.metrics import mean_iou as my_iou\n\n"
                                        "def mean_iou(cm):\n    return my_iou(cm)\n"},
                   must_lose=("test_mean_iou",)),
        Submission("delegates_to_segedu_attribute", "assigns the reference through the package attribute",
                   replace={"dice_coefficient": "import segedu\ndice_coefficient = segedu.metrics.dice_coefficient\n"},
                   must_lose=("test_dice_overlap", "test_dice_empty")),
        Submission("correct_with_warnings", "right answer that prints a RuntimeWarning (0/0 then nanmean)",
                   replace={"mean_iou": (
                       "def mean_iou(cm):\n"
                       "    cm = np.asarray(cm, dtype=np.float64)\n"
                       "    intersection = np.diag(cm)\n"
                       "    iou = intersection / (cm.sum(axis=0) + cm.sum(axis=1) - intersection)\n"
                       "    return float(np.nanmean(iou))\n")},
                   full_marks=True),
        Submission("deleted_test_cell", "deletes the mean_iou test cell and answers it wrongly",
                   (M("mean_iou", "np.mean(intersection[present] / union[present])",
                      "np.mean(intersection / np.maximum(union, 1))"),),
                   delete_cells=("test_mean_iou",), must_lose=("test_mean_iou",)),
        Submission("edited_test_cell", "replaces a locked test cell with a print and answers it wrongly",
                   (M("dice_coefficient", "return 1.0", "return 0.0"),),
                   edit_cells={"test_dice_empty": "print('all good')\n"}, must_lose=("test_dice_empty",)),
    ],
    "01_thresholding": [
        Submission("threshold_greater_or_equal", "pixels equal to T counted as foreground",
                   (M("threshold", "img > t", "img >= t"),),
                   must_lose=("test_threshold",)),
        Submission("otsu_returns_bin_edge", "returns the upper edge of the best bin, not its centre",
                   (M("otsu_threshold", "centres[np.argmax(between)]", "edges[np.argmax(between) + 1]"),),
                   must_lose=("test_otsu_bimodal", "test_otsu_real_image")),
        Submission("otsu_fixed_range", "histogram over [0, 1] instead of [min, max]",
                   (M("otsu_threshold", "np.histogram(img.ravel(), bins=nbins)",
                      "np.histogram(img.ravel(), bins=nbins, range=(0, 1))"),),
                   must_lose=("test_otsu_bimodal", "test_otsu_real_image")),
        Submission("otsu_split_off_by_one", "class 0 and class 1 both include bin k",
                   (M("otsu_threshold", "weight0[:-1] * weight1[1:] * (mean0[:-1] - mean1[1:]) ** 2",
                      "weight0 * weight1 * (mean0 - mean1) ** 2"),),
                   must_lose=("test_otsu_bimodal",)),
        Submission("adaptive_offset_added", "the offset added to the local mean instead of subtracted",
                   (M("adaptive_threshold", "img > local - offset", "img > local + offset"),),
                   must_lose=("test_adaptive_offset",)),
        Submission("adaptive_zero_padding", "zero padding at the border instead of reflection",
                   (M("adaptive_threshold", 'ndi.uniform_filter(img, size=block_size, mode="reflect")',
                      'ndi.uniform_filter(img, size=block_size, mode="constant")'),),
                   must_lose=("test_adaptive_mean",)),
        Submission("adaptive_sigma_from_block", "sigma = block_size / 2 instead of (block_size - 1) / 6",
                   (M("adaptive_threshold", "sigma=(block_size - 1) / 6.0", "sigma=block_size / 2"),),
                   must_lose=("test_adaptive_gaussian",)),
        Submission("delegates_to_skimage_otsu", "calls skimage's threshold_otsu under an alias",
                   replace={"otsu_threshold": "from skimage.filters import threshold_otsu as library_otsu\n\n"
                                              "def otsu_threshold(img, nbins=256):\n"
                                              "    return float(library_otsu(np.asarray(img, dtype=float), nbins))\n"},
                   must_lose=("test_otsu_bimodal", "test_otsu_real_image")),
        Submission("delegates_to_threshold_local", "calls skimage.filters.threshold_local through the module",
                   replace={"adaptive_threshold": (
                       "import skimage.filters as skf\n\n"
                       "def adaptive_threshold(img, block_size, offset=0, method='mean'):\n"
                       "    img = np.asarray(img, dtype=float)\n"
                       "    return img > skf.threshold_local(img, block_size, method=method, offset=offset)\n")},
                   must_lose=("test_adaptive_mean", "test_adaptive_gaussian", "test_adaptive_offset")),
        Submission("delegates_to_segedu", "binds the segedu reference to the answer's name",
                   replace={"threshold": "from segedu.classical import threshold as reference_threshold\n"
                                         "threshold = reference_threshold\n"},
                   must_lose=("test_threshold",)),
    ],
}
