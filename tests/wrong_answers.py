"""Realistic wrong answers, kept as fixtures: each must lose the points of the named test cells.

A mutation takes the solution's code for one cell and replaces one snippet (which must occur
exactly once), so a fixture breaks loudly when the solution changes. A replacement gives the
whole code of a cell, as a student would type it.

Every fixture is a known mistake of one graded function, filed under ``(assignment, function)``:
a function name alone is not unique across units (two units may each grade a ``dice_loss``), and
the grading contract asks for at least one known mistake per graded function, which
``tests/test_grading.py`` checks against the registry by that pair. nbgrader grades a whole
notebook at once, so :data:`WRONG_ANSWERS` also lists them by assignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


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
    function: str | None = None            # the graded function whose mistake this is (set by KnownMistakes.add)


class KnownMistakes:
    """The fixtures by ``(assignment, function)``, refusing the slips that would silently lose one.

    A pair filed twice, or two fixtures of one assignment with the same name (the name is the
    student id in nbgrader's course folder, so one would overwrite the other), is an error at import.
    """

    def __init__(self):
        self.by_function: dict[tuple[str, str], tuple[Submission, ...]] = {}
        self.by_assignment: dict[str, list[Submission]] = {}

    def add(self, assignment: str, function: str, *submissions: Submission) -> None:
        key = (assignment, function)
        if key in self.by_function:
            raise ValueError(f"the known mistakes of {key} are filed twice; add them in one place")
        if not submissions:
            raise ValueError(f"{key} is filed without a known mistake")
        taken = {s.name for s in self.by_assignment.get(assignment, [])}
        filed = []
        for submission in submissions:
            if submission.name in taken:
                raise ValueError(f"{assignment} has two fixtures called {submission.name!r}")
            taken.add(submission.name)
            filed.append(replace(submission, function=function))
        self.by_function[key] = tuple(filed)
        self.by_assignment.setdefault(assignment, []).extend(filed)


M = Mutation
known = KnownMistakes()

known.add("00_tasks_and_metrics", "confusion_matrix",
    Submission("cm_transposed", "rows and columns swapped: prediction on the rows",
               (M("confusion_matrix", "num_classes * target + pred", "num_classes * pred + target"),),
               must_lose=("test_confusion_matrix_counts", "test_confusion_matrix_ignore")),
    Submission("cm_ignore_not_excluded", "ignore_index accepted but never applied",
               (M("confusion_matrix", "    if ignore_index is not None:\n        keep = target != ignore_index\n"
                  "        pred, target = pred[keep], target[keep]\n", ""),),
               must_lose=("test_confusion_matrix_ignore",)),
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
)

known.add("00_tasks_and_metrics", "pixel_accuracy",
    Submission("pixel_accuracy_per_class", "averages per-class accuracies instead of counting pixels",
               (M("pixel_accuracy", "np.trace(cm) / cm.sum()", "np.mean(np.diag(cm) / cm.sum(axis=1))"),),
               must_lose=("test_pixel_accuracy",)),
    Submission("fits_visible_tests_only", "returns the visible test's expected value",
               replace={"pixel_accuracy": "def pixel_accuracy(cm):\n    return 0.7\n"},
               must_lose=("test_pixel_accuracy",)),
)

known.add("00_tasks_and_metrics", "mean_accuracy",
    Submission("mean_accuracy_all_classes", "a class absent from the target counted as accuracy 0",
               (M("mean_accuracy", "np.mean(np.diag(cm)[present] / per_class_total[present])",
                  "np.mean(np.diag(cm) / np.maximum(per_class_total, 1))"),),
               must_lose=("test_mean_accuracy",)),
)

known.add("00_tasks_and_metrics", "mean_iou",
    Submission("mean_iou_absent_as_zero", "classes absent from both maps averaged in as IoU 0",
               (M("mean_iou", "np.mean(intersection[present] / union[present])",
                  "np.mean(intersection / np.maximum(union, 1))"),),
               must_lose=("test_mean_iou",)),
    Submission("mean_iou_target_classes_only", "only classes of the target averaged",
               (M("mean_iou", "present = union > 0", "present = cm.sum(axis=1) > 0"),),
               must_lose=("test_mean_iou",)),
    Submission("delegates_to_segedu_alias", "wraps the segedu reference imported under another name",
               replace={"mean_iou": "from segedu.metrics import mean_iou as my_iou\n\n"
                                    "def mean_iou(cm):\n    return my_iou(cm)\n"},
               must_lose=("test_mean_iou",)),
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
)

known.add("00_tasks_and_metrics", "frequency_weighted_iou",
    Submission("fw_iou_prediction_weights", "weights taken from the prediction (columns)",
               (M("frequency_weighted_iou", "return float(np.sum(target_area[present] * iou) / target_area.sum())",
                  "predicted_area = cm.sum(axis=0)\n"
                  "    return float(np.sum(predicted_area[present] * iou) / predicted_area.sum())"),),
               must_lose=("test_frequency_weighted_iou",)),
    Submission("fw_iou_absent_class_nan", "a class in neither map gives 0/0 = NaN, which spoils the sum",
               (M("frequency_weighted_iou", "    present = union > 0\n    iou = intersection[present] / union[present]\n"
                  "    return float(np.sum(target_area[present] * iou) / target_area.sum())",
                  "    iou = intersection / union\n"
                  "    return float(np.sum(target_area * iou) / target_area.sum())"),),
               must_lose=("test_frequency_weighted_iou",)),
)

known.add("00_tasks_and_metrics", "dice_coefficient",
    Submission("dice_is_iou", "computes IoU and calls it Dice",
               (M("dice_coefficient", "2.0 * np.logical_and(a, b).sum() / total",
                  "np.logical_and(a, b).sum() / np.logical_or(a, b).sum()"),),
               must_lose=("test_dice_overlap",)),
    Submission("dice_empty_is_zero", "two empty masks score 0 instead of 1",
               (M("dice_coefficient", "return 1.0", "return 0.0"),),
               must_lose=("test_dice_empty",)),
    Submission("delegates_to_segedu_attribute", "assigns the reference through the package attribute",
               replace={"dice_coefficient": "import segedu\ndice_coefficient = segedu.metrics.dice_coefficient\n"},
               must_lose=("test_dice_overlap", "test_dice_empty")),
    Submission("edited_test_cell", "replaces a locked test cell with a print and answers it wrongly",
               (M("dice_coefficient", "return 1.0", "return 0.0"),),
               edit_cells={"test_dice_empty": "print('all good')\n"}, must_lose=("test_dice_empty",)),
)

known.add("01_thresholding", "threshold",
    Submission("threshold_greater_or_equal", "pixels equal to T counted as foreground",
               (M("threshold", "img > t", "img >= t"),),
               must_lose=("test_threshold",)),
    Submission("delegates_to_segedu", "binds the segedu reference to the answer's name",
               replace={"threshold": "from segedu.classical import threshold as reference_threshold\n"
                                     "threshold = reference_threshold\n"},
               must_lose=("test_threshold",)),
)

known.add("01_thresholding", "otsu_threshold",
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
    Submission("delegates_to_skimage_otsu", "calls skimage's threshold_otsu under an alias",
               replace={"otsu_threshold": "from skimage.filters import threshold_otsu as library_otsu\n\n"
                                          "def otsu_threshold(img, nbins=256):\n"
                                          "    return float(library_otsu(np.asarray(img, dtype=float), nbins))\n"},
               must_lose=("test_otsu_bimodal", "test_otsu_real_image")),
)

known.add("01_thresholding", "adaptive_threshold",
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
    Submission("adaptive_gaussian_cut_at_block", "a Gaussian cut off at the block_size x block_size window",
               (M("adaptive_threshold", 'sigma=(block_size - 1) / 6.0, mode="reflect")',
                  'sigma=(block_size - 1) / 6.0, mode="reflect", radius=(block_size - 1) // 2)'),),
               must_lose=("test_adaptive_gaussian",)),
    Submission("delegates_to_threshold_local", "calls skimage.filters.threshold_local through the module",
               replace={"adaptive_threshold": (
                   "import skimage.filters as skf\n\n"
                   "def adaptive_threshold(img, block_size, offset=0, method='mean'):\n"
                   "    img = np.asarray(img, dtype=float)\n"
                   "    return img > skf.threshold_local(img, block_size, method=method, offset=offset)\n")},
               must_lose=("test_adaptive_mean", "test_adaptive_gaussian", "test_adaptive_offset")),
)

known.add("02_edges", "convolve2d",
    Submission("convolve_unflipped", "slides the kernel without flipping it (a cross-correlation)",
               (M("convolve2d", "flipped = kernel[::-1, ::-1]", "flipped = kernel"),),
               must_lose=("test_convolve_flips_the_kernel",)),
    Submission("convolve_zero_padding", "pads with zeros instead of reflecting",
               (M("convolve2d", 'mode="symmetric"', 'mode="constant"'),),
               must_lose=("test_convolve_reflects_the_border",)),
    Submission("convolve_reflect_without_edge", "numpy 'reflect' padding skips the edge pixel",
               (M("convolve2d", 'mode="symmetric"', 'mode="reflect"'),),
               must_lose=("test_convolve_reflects_the_border",)),
    Submission("convolve_pad_off_by_one", "pads by the kernel size instead of half of it",
               (M("convolve2d", "a, b = kh // 2, kw // 2", "a, b = kh // 2 + 1, kw // 2 + 1"),),
               must_lose=("test_convolve_flips_the_kernel", "test_convolve_reflects_the_border")),
    Submission("delegates_to_scipy_signal", "calls scipy.signal.convolve2d with symmetric boundaries",
               replace={"convolve2d": (
                   "from scipy.signal import convolve2d as library_convolve\n\n"
                   "def convolve2d(img, kernel):\n"
                   "    return library_convolve(np.asarray(img, float), np.asarray(kernel, float), mode='same', boundary='symm')\n")},
               must_lose=("test_convolve_flips_the_kernel", "test_convolve_reflects_the_border")),
)

known.add("02_edges", "sobel",
    Submission("sobel_swapped", "returns (gy, gx)",
               (M("sobel", "return gx, gy", "return gy, gx"),),
               must_lose=("test_sobel",)),
    Submission("sobel_forgets_the_flip", "passes the correlation kernels straight to convolve2d",
               (M("sobel", "gx = convolve2d(img, sobel_x[::-1, ::-1])", "gx = convolve2d(img, sobel_x)"),),
               must_lose=("test_sobel",)),
    Submission("delegates_to_ndimage_sobel", "calls scipy.ndimage.sobel",
               replace={"sobel": (
                   "import scipy.ndimage as ndi\n\n"
                   "def sobel(img):\n"
                   "    img = np.asarray(img, dtype=float)\n"
                   "    return ndi.sobel(img, axis=1), ndi.sobel(img, axis=0)\n")},
               must_lose=("test_sobel",)),
)

known.add("02_edges", "gradient_magnitude",
    Submission("magnitude_without_sqrt", "returns gx^2 + gy^2",
               (M("gradient_magnitude", "np.sqrt(gx ** 2 + gy ** 2)", "gx ** 2 + gy ** 2"),),
               must_lose=("test_gradient_magnitude",)),
)

known.add("02_edges", "non_maximum_suppression",
    Submission("nms_diagonals_swapped", "compares the wrong diagonal neighbours",
               (M("non_maximum_suppression", "45: ((-1, -1), (1, 1))", "45: ((-1, 1), (1, -1))"),
                M("non_maximum_suppression", "135: ((-1, 1), (1, -1))", "135: ((-1, -1), (1, 1))")),
               must_lose=("test_nms_diagonals",)),
    Submission("nms_rows_and_columns_swapped", "compares up/down for a 0 degree gradient",
               (M("non_maximum_suppression", "0: ((0, -1), (0, 1))", "0: ((-1, 0), (1, 0))"),
                M("non_maximum_suppression", "90: ((-1, 0), (1, 0))", "90: ((0, -1), (0, 1))")),
               must_lose=("test_nms_horizontal_and_vertical",)),
    Submission("nms_radians_as_degrees", "quantises the angle in radians",
               (M("non_maximum_suppression", "np.mod(np.degrees(direction), 180.0)", "np.mod(direction, 180.0)"),),
               must_lose=("test_nms_diagonals",)),
    Submission("nms_strictly_greater", "suppresses a pixel equal to a neighbour (> instead of >=)",
               (M("non_maximum_suppression", "value >= magnitude[r + dr1, c + dc1] and value >= magnitude[r + dr2, c + dc2]",
                  "value > magnitude[r + dr1, c + dc1] and value > magnitude[r + dr2, c + dc2]"),),
               must_lose=("test_nms_horizontal_and_vertical",)),
)

known.add("03_regions", "region_grow",
    Submission("region_mean_never_updated", "compares with the seed's intensity only",
               (M("region_grow", "abs(img[rr, cc] - total / count)", "abs(img[rr, cc] - img[seed])"),),
               must_lose=("test_region_grow_running_mean",)),
    Submission("region_connectivity_ignored", "always uses 8 neighbours",
               (M("region_grow", "if connectivity == 4:", "if connectivity == 'four':"),),
               must_lose=("test_region_grow_connectivity",)),
    Submission("region_depth_first", "a stack (depth-first) instead of a queue",
               (M("region_grow", "r, c = queue.popleft()", "r, c = queue.pop()"),),
               must_lose=("test_region_grow_running_mean",)),
    Submission("region_less_or_equal", "a difference equal to T joins (<= instead of <)",
               (M("region_grow", "abs(img[rr, cc] - total / count) < threshold", "abs(img[rr, cc] - total / count) <= threshold"),),
               must_lose=("test_region_grow_running_mean",)),
    Submission("region_right_before_left", "visits the right neighbour before the left one",
               (M("region_grow", "offsets = [(-1, 0), (0, -1), (0, 1), (1, 0)]", "offsets = [(-1, 0), (0, 1), (0, -1), (1, 0)]"),),
               must_lose=("test_region_grow_running_mean",)),
    Submission("region_diagonal_offset_wrong", "one diagonal of the 8-neighbourhood mistyped: (1, -1) is never visited",
               (M("region_grow", "(0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]", "(0, -1), (0, 1), (-1, 1), (1, 0), (1, 1)]"),),
               must_lose=("test_region_grow_connectivity",)),
    Submission("delegates_to_skimage_flood", "uses skimage.segmentation.flood",
               replace={"region_grow": (
                   "from skimage.segmentation import flood\n\n"
                   "def region_grow(img, seed, threshold, connectivity=4):\n"
                   "    return flood(np.asarray(img, float), tuple(seed), tolerance=threshold, connectivity=1 if connectivity == 4 else 2)\n")},
               must_lose=("test_region_grow_running_mean", "test_region_grow_connectivity")),
)

known.add("03_regions", "kmeans_segment",
    Submission("kmeans_never_updates_centres", "assigns pixels to the initial centres only",
               (M("kmeans_segment", "        centres = np.array([pixels[labels == j].mean(axis=0) for j in range(k)])\n", ""),),
               must_lose=("test_kmeans_colour", "test_kmeans_grey")),
    Submission("kmeans_unsorted", "forgets to number the clusters by brightness",
               (M("kmeans_segment", "order = np.argsort(centres.mean(axis=1), kind=\"stable\")",
                  "order = np.arange(k)"),),
               must_lose=("test_kmeans_colour",)),
    Submission("delegates_to_sklearn_kmeans", "calls sklearn's KMeans from the same centres",
               replace={"kmeans_segment": (
                   "from sklearn.cluster import KMeans\n\n"
                   "def kmeans_segment(img, k, init, max_iter=100):\n"
                   "    img = np.asarray(img, dtype=float)\n"
                   "    pixels = img.reshape(img.shape[0] * img.shape[1], -1)\n"
                   "    model = KMeans(k, init=np.asarray(init, float).reshape(k, -1), n_init=1, max_iter=max_iter, tol=0).fit(pixels)\n"
                   "    order = np.argsort(model.cluster_centers_.mean(axis=1))\n"
                   "    rank = np.empty(k, dtype=int)\n"
                   "    rank[order] = np.arange(k)\n"
                   "    return rank[model.labels_].reshape(img.shape[:2]), model.cluster_centers_[order]\n")},
               must_lose=("test_kmeans_colour", "test_kmeans_grey")),
)

known.add("04_transpose_convolution", "conv_output_size",
    Submission("conv_size_without_plus_one", "forgets the +1 of the first window",
               (M("conv_output_size", "// stride + 1", "// stride"),),
               must_lose=("test_conv_output_size",)),
    Submission("conv_size_ignores_dilation", "uses k instead of the dilated kernel size",
               (M("conv_output_size", "dilation * (k - 1) - 1", "k"),),
               must_lose=("test_conv_output_size",)),
    Submission("conv_size_true_division", "divides with / and never takes the floor",
               (M("conv_output_size", "// stride + 1", "/ stride + 1"),),
               must_lose=("test_conv_output_size",)),
    Submission("conv_size_float_floor", "takes the floor with np.floor, which returns a float",
               (M("conv_output_size", "return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1",
                  "return np.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1"),),
               must_lose=("test_conv_output_size",)),
)

known.add("04_transpose_convolution", "conv_transpose_output_size",
    Submission("transpose_size_adds_padding", "adds 2p instead of subtracting it",
               (M("conv_transpose_output_size", "- 2 * padding", "+ 2 * padding"),),
               must_lose=("test_conv_transpose_output_size",)),
    Submission("transpose_size_float", "returns the right size as a float",
               (M("conv_transpose_output_size", "return (n - 1) * stride", "return 1.0 * (n - 1) * stride"),),
               must_lose=("test_conv_transpose_output_size",)),
)

known.add("04_transpose_convolution", "conv_transpose2d",
    Submission("transpose_missing_overlap_sum", "overwrites instead of summing overlapping blocks",
               (M("conv_transpose2d", "+= x[i, j] * kernel", "= x[i, j] * kernel"),),
               must_lose=("test_conv_transpose_overlaps",)),
    Submission("transpose_stride_on_kernel", "strides through the kernel instead of the placement",
               (M("conv_transpose2d",
                  "canvas[i * stride:i * stride + kh, j * stride:j * stride + kw] += x[i, j] * kernel",
                  "canvas[i:i + kh, j:j + kw] += x[i, j] * kernel"),),
               must_lose=("test_conv_transpose_stride",)),
    Submission("transpose_pads_instead_of_cropping", "adds padding around the result",
               (M("conv_transpose2d", "return canvas[padding:full_h - padding, padding:full_w - padding]",
                  "return np.pad(canvas, padding)"),),
               must_lose=("test_conv_transpose_padding",)),
    Submission("transpose_ignores_output_padding", "never adds the output_padding rows and columns",
               (M("conv_transpose2d", "full_h = (h - 1) * stride + kh + output_padding",
                  "full_h = (h - 1) * stride + kh"),
                M("conv_transpose2d", "full_w = (w - 1) * stride + kw + output_padding",
                  "full_w = (w - 1) * stride + kw")),
               must_lose=("test_conv_transpose_output_padding",)),
    Submission("delegates_to_torch", "calls torch's conv_transpose2d under an alias",
               replace={"conv_transpose2d": (
                   "import torch\nfrom torch.nn.functional import conv_transpose2d as library_transpose\n\n"
                   "def conv_transpose2d(x, kernel, stride=1, padding=0, output_padding=0):\n"
                   "    x = torch.as_tensor(np.asarray(x, float))[None, None]\n"
                   "    kernel = torch.as_tensor(np.asarray(kernel, float))[None, None]\n"
                   "    return library_transpose(x, kernel, stride=stride, padding=padding,\n"
                   "                             output_padding=output_padding)[0, 0].numpy()\n")},
               must_lose=("test_conv_transpose_overlaps", "test_conv_transpose_stride",
                          "test_conv_transpose_padding", "test_conv_transpose_output_padding")),
)

known.add("04_transpose_convolution", "stride2_example",
    Submission("stride2_forgot_an_overlap", "adds only one of two overlapping contributions",
               (M("stride2_example", "[5, 0, 5, 0, 5]", "[5, 0, 4, 0, 5]"),),
               must_lose=("test_stride2_example",)),
)

known.add("11_coco_eda", "class_frequency",
    Submission("frequency_counts_crowds", "counts crowd annotations as objects",
               (M("class_frequency", "coco.getAnnIds(catIds=[c], iscrowd=False)", "coco.getAnnIds(catIds=[c])"),),
               must_lose=("test_class_frequency",)),
    Submission("delegates_to_coco_stats", "imports the reference statistics",
               replace={"class_frequency": "from segedu.data.coco.stats import class_frequency\n"},
               must_lose=("test_class_frequency",)),
)

known.add("11_coco_eda", "instances_per_image",
    Submission("instances_count_crowds", "counts crowd annotations as objects",
               (M("instances_per_image", "coco.getAnnIds(imgIds=[i], iscrowd=False)", "coco.getAnnIds(imgIds=[i])"),),
               must_lose=("test_instances_per_image",)),
)

known.add("11_coco_eda", "size_class_counts",
    Submission("sizes_from_boxes", "uses the box area w*h instead of the mask area",
               (M("size_class_counts", 'coco.anns[i]["area"]', 'coco.anns[i]["bbox"][2] * coco.anns[i]["bbox"][3]'),),
               must_lose=("test_size_class_counts",)),
    Submission("sizes_small_inclusive", "counts an area of exactly 32**2 as small (<= instead of <)",
               (M("size_class_counts", "areas < 32 ** 2", "areas <= 32 ** 2"),),
               must_lose=("test_size_class_counts",)),
)

known.add("11_coco_eda", "cooccurrence_matrix",
    Submission("cooccurrence_counts_objects", "multiplies object counts instead of image presence",
               (M("cooccurrence_matrix",
                  "    images = [set(coco.anns[i][\"image_id\"] for i in coco.getAnnIds(catIds=[c], iscrowd=False)) for c in cat_ids]\n"
                  "    return np.array([[len(a & b) for b in images] for a in images], dtype=np.int64)",
                  "    counts = np.array([[len(coco.getAnnIds(imgIds=[i], catIds=[c], iscrowd=False)) for c in cat_ids]\n"
                  "                       for i in sorted(coco.getImgIds())])\n"
                  "    return counts.T @ counts"),),
               must_lose=("test_cooccurrence_matrix",)),
)

known.add("11_coco_eda", "crowd_counts",
    Submission("crowds_inverted", "counts the objects instead of the crowds",
               (M("crowd_counts", "iscrowd=True", "iscrowd=False"),),
               must_lose=("test_crowd_counts",)),
)

known.add("11_coco_eda", "label_map",
    Submission("label_map_category_ids", "uses COCO category ids as labels (they are not contiguous)",
               (M("label_map", 'labels[mask] = index[ann["category_id"]]', 'labels[mask] = ann["category_id"]'),),
               must_lose=("test_label_map",)),
    Submission("label_map_crowds_as_background", "forgets the ignore label of crowds",
               (M("label_map", "labels[coco.annToMask(ann).astype(bool) & ~covered] = 255",
                  "labels[coco.annToMask(ann).astype(bool) & ~covered] = 0"),),
               must_lose=("test_label_map",)),
    Submission("label_map_file_order", "paints the objects in the file's order, not largest first",
               (M("label_map", 'sorted((a for a in anns if not a["iscrowd"]), key=lambda a: -a["area"])',
                  '(a for a in anns if not a["iscrowd"])'),),
               must_lose=("test_label_map",)),
    Submission("label_map_crowd_over_objects", "paints crowd regions over the objects",
               (M("label_map", "labels[coco.annToMask(ann).astype(bool) & ~covered] = 255",
                  "labels[coco.annToMask(ann).astype(bool)] = 255"),),
               must_lose=("test_label_map",)),
    Submission("label_map_samples_corners", "samples pixel corners instead of centres when resizing",
               (M("label_map", "((np.arange(size[0]) + 0.5) * height / size[0])", "(np.arange(size[0]) * height / size[0])"),
                M("label_map", "((np.arange(size[1]) + 0.5) * width / size[1])", "(np.arange(size[1]) * width / size[1])")),
               must_lose=("test_label_map",)),
    Submission("delegates_to_semantic_label_map", "wraps segedu's semantic_label_map under an alias",
               replace={"label_map": ("from segedu.data import semantic_label_map as make_labels\n\n"
                                      "def label_map(coco, image_id, size):\n"
                                      "    return make_labels(coco, image_id, size=size)\n")},
               must_lose=("test_label_map",)),
)

known.add("05_fcn", "linear_to_conv_weight",
    Submission("linear_reshape_channels_last", "reshapes as if the flattened map were h, w, C",
               (M("linear_to_conv_weight", "return weight.reshape(weight.shape[0], in_channels, height, width)",
                  "return weight.reshape(weight.shape[0], height, width, in_channels).permute(0, 3, 1, 2)"),),
               must_lose=("test_linear_to_conv_weight",)),
)

known.add("05_fcn", "bilinear_kernel",
    Submission("bilinear_odd_centre_always", "uses the odd-k centre f - 1 for every k",
               (M("bilinear_kernel", "centre = factor - 1 if k % 2 == 1 else factor - 0.5", "centre = factor - 1"),),
               must_lose=("test_bilinear_kernel",)),
    Submission("bilinear_fills_every_channel_pair", "puts the filter at every [i, j], mixing channels",
               (M("bilinear_kernel", "    for i in range(min(in_ch, out_ch)):\n        weight[i, i] = torch.outer(tent, tent)",
                  "    weight[:, :] = torch.outer(tent, tent)"),),
               must_lose=("test_bilinear_kernel",)),
    Submission("delegates_to_segedu_models", "calls segedu's bilinear_kernel under an alias",
               replace={"bilinear_kernel": "from segedu.models import bilinear_kernel as reference_kernel\n\n"
                                           "def bilinear_kernel(in_ch, out_ch, k):\n"
                                           "    return reference_kernel(in_ch, out_ch, k)\n"},
               must_lose=("test_bilinear_kernel",)),
)

known.add("05_fcn", "fcn8s_fuse",
    Submission("fuse_skips_pool3", "stops at FCN-16s: the pool3 scores are never added",
               (M("fcn8s_fuse", "fused8 = upscore_pool4(fused16) + score8", "fused8 = upscore_pool4(fused16)"),),
               must_lose=("test_fcn8s_fuse",)),
    Submission("fuse_reuses_one_upsampler", "uses upscore2 for both 2x steps",
               (M("fcn8s_fuse", "fused8 = upscore_pool4(fused16) + score8", "fused8 = upscore2(fused16) + score8"),),
               must_lose=("test_fcn8s_fuse",)),
)

known.add("06_unet", "center_crop",
    Submission("crop_one_pixel_late", "starts the window one row and one column too late",
               (M("center_crop", "return x[..., top:top + h, left:left + w]",
                  "return x[..., top + 1:top + 1 + h, left + 1:left + 1 + w]"),),
               must_lose=("test_center_crop_even", "test_center_crop_odd")),
    Submission("crop_end_inclusive", "takes h + 1 rows and w + 1 columns (end index included)",
               (M("center_crop", "return x[..., top:top + h, left:left + w]",
                  "return x[..., top:top + h + 1, left:left + w + 1]"),),
               must_lose=("test_center_crop_even", "test_center_crop_odd")),
    Submission("crop_floor_start", "starts at (H - h) // 2, which differs from torchvision's round for odd margins",
               (M("center_crop", "    top = int(round((height - h) / 2.0))\n    left = int(round((width - w) / 2.0))\n",
                  "    top = (height - h) // 2\n    left = (width - w) // 2\n"),),
               must_lose=("test_center_crop_odd",)),
    Submission("delegates_to_torchvision_crop", "calls torchvision's center_crop under an alias",
               replace={"center_crop": "from torchvision.transforms.functional import center_crop as library_crop\n\n"
                                       "def center_crop(x, size):\n"
                                       "    size = [size, size] if isinstance(size, int) else list(size)\n"
                                       "    return library_crop(x, size)\n"},
               must_lose=("test_center_crop_even", "test_center_crop_odd")),
)

known.add("06_unet", "unet_weight_map",
    Submission("weight_map_same_object", "d1 and d2 both from one distance transform of the background",
               (M("unet_weight_map",
                  "        distances = np.stack([ndimage.distance_transform_edt(labels != k) for k in objects])\n"
                  "        distances.sort(axis=0)\n        d1, d2 = distances[0], distances[1]\n",
                  "        d1 = ndimage.distance_transform_edt(labels == 0)   # distance to the nearest object\n"
                  "        d2 = d1\n"),),
               must_lose=("test_unet_weight_map_border",)),
    Submission("weight_map_border_on_objects", "adds the border term on the objects too",
               (M("unet_weight_map", "weights[~foreground] += border[~foreground]", "weights += border"),),
               must_lose=("test_unet_weight_map_border",)),
    Submission("weight_map_without_class_weights", "leaves out the class weights (w_c = 1)",
               (M("unet_weight_map", "        weights[foreground] = labels.size / (2 * n_foreground)\n"
                  "        weights[~foreground] = labels.size / (2 * n_background)\n", "        pass\n"),),
               must_lose=("test_unet_weight_map_class_weights", "test_unet_weight_map_border")),
)

known.add("06_unet", "dice_loss",
    Submission("dice_without_smoothing", "leaves out the smoothing: 0/0 on empty masks",
               (M("dice_loss", "dice = (2 * (p * y).sum(dim=1) + smooth) / (p.sum(dim=1) + y.sum(dim=1) + smooth)",
                  "dice = (2 * (p * y).sum(dim=1)) / (p.sum(dim=1) + y.sum(dim=1))"),),
               must_lose=("test_dice_loss", "test_dice_loss_empty")),
    Submission("dice_without_sigmoid", "uses the logits as probabilities",
               (M("dice_loss", "p = torch.sigmoid(logits).flatten(1)", "p = logits.flatten(1)"),),
               must_lose=("test_dice_loss", "test_dice_loss_empty")),
    Submission("dice_over_the_whole_batch", "one Dice over the whole batch instead of the mean of per-sample losses",
               (M("dice_loss", "    dice = (2 * (p * y).sum(dim=1) + smooth) / (p.sum(dim=1) + y.sum(dim=1) + smooth)\n"
                  "    return (1 - dice).mean()",
                  "    return 1 - (2 * (p * y).sum() + smooth) / (p.sum() + y.sum() + smooth)"),),
               must_lose=("test_dice_loss",)),
)

known.add("06_unet", "focal_loss",
    Submission("focal_gamma_on_p_t", "puts gamma on p_t instead of 1 - p_t",
               (M("focal_loss", "(1 - p_t) ** gamma", "p_t ** gamma"),),
               must_lose=("test_focal_loss", "test_focal_loss_alpha_gamma")),
    Submission("focal_alpha_on_negatives", "applies alpha to the negatives and 1 - alpha to the positives",
               (M("focal_loss", "alpha_t = alpha * target + (1 - alpha) * (1 - target)",
                  "alpha_t = alpha * (1 - target) + (1 - alpha) * target"),),
               must_lose=("test_focal_loss", "test_focal_loss_alpha_gamma")),
    Submission("focal_summed", "sums over the pixels instead of averaging (torchvision's reduction=\"sum\")",
               (M("focal_loss", "* cross_entropy).mean()", "* cross_entropy).sum()"),),
               must_lose=("test_focal_loss", "test_focal_loss_alpha_gamma")),
    Submission("delegates_to_sigmoid_focal_loss", "calls torchvision.ops.sigmoid_focal_loss",
               replace={"focal_loss": "import torchvision\n\n"
                                      "def focal_loss(logits, target, alpha=0.25, gamma=2.0):\n"
                                      "    return torchvision.ops.sigmoid_focal_loss(logits, target, alpha, gamma, "
                                      "reduction=\"mean\")\n"},
               must_lose=("test_focal_loss", "test_focal_loss_alpha_gamma")),
)

known.add("07_segnet", "max_unpool2d",
    Submission("unpool_top_left", "ignores the indices: each value goes to its window's top-left corner",
               (M("max_unpool2d", "    out = torch.zeros(n, c, height * width, dtype=x.dtype)\n"
                  "    out.scatter_(2, indices.reshape(n, c, h * w), x.reshape(n, c, h * w))\n"
                  "    return out.reshape(n, c, height, width)",
                  "    out = torch.zeros(n, c, height, width, dtype=x.dtype)\n"
                  "    out[:, :, 0:h * stride:stride, 0:w * stride:stride] = x\n"
                  "    return out"),),
               must_lose=("test_max_unpool2d", "test_max_unpool2d_output_size", "test_max_unpool2d_stride")),
    Submission("unpool_nearest", "nearest-neighbour upsampling: copies each value over its window",
               (M("max_unpool2d", "    out = torch.zeros(n, c, height * width, dtype=x.dtype)\n"
                  "    out.scatter_(2, indices.reshape(n, c, h * w), x.reshape(n, c, h * w))\n"
                  "    return out.reshape(n, c, height, width)",
                  "    grown = x.repeat_interleave(stride, dim=2).repeat_interleave(stride, dim=3)\n"
                  "    out = torch.zeros(n, c, height, width, dtype=x.dtype)\n"
                  "    rows, cols = min(height, grown.shape[2]), min(width, grown.shape[3])\n"
                  "    out[:, :, :rows, :cols] = grown[:, :, :rows, :cols]\n"
                  "    return out"),),
               must_lose=("test_max_unpool2d", "test_max_unpool2d_output_size", "test_max_unpool2d_stride")),
    Submission("unpool_ignores_stride", "always uses stride = kernel_size",
               (M("max_unpool2d", "stride = kernel_size if stride is None else stride", "stride = kernel_size"),),
               must_lose=("test_max_unpool2d_stride",)),
    Submission("delegates_to_max_unpool2d", "calls F.max_unpool2d under an alias",
               replace={"max_unpool2d": "from torch.nn.functional import max_unpool2d as library_unpool\n\n"
                                        "def max_unpool2d(x, indices, kernel_size, stride=None, output_size=None):\n"
                                        "    return library_unpool(x, indices, kernel_size, stride, "
                                        "output_size=output_size)\n"},
               must_lose=("test_max_unpool2d", "test_max_unpool2d_output_size", "test_max_unpool2d_stride",
                          "test_segnet_decoder_stage")),
)

known.add("07_segnet", "segnet_decoder_stage",
    Submission("decoder_relu_before_batch_norm", "applies the ReLU before the batch norm",
               (M("segnet_decoder_stage", "        y = conv(y)\n        y = F.batch_norm(",
                  "        y = F.relu(conv(y))\n        y = F.batch_norm("),
                M("segnet_decoder_stage", "        y = F.relu(y)\n", "")),
               must_lose=("test_segnet_decoder_stage",)),
    Submission("decoder_batch_statistics", "normalises with the batch's statistics, not the running ones",
               (M("segnet_decoder_stage",
                  'y = F.batch_norm(y, norm["running_mean"], norm["running_var"], norm["weight"], norm["bias"],\n'
                  "                         training=False, eps=1e-5)",
                  'y = F.batch_norm(y, None, None, norm["weight"], norm["bias"], training=True, eps=1e-5)'),),
               must_lose=("test_segnet_decoder_stage",)),
    Submission("decoder_batch_norm_without_eps", "writes the batch norm by hand and divides by sqrt(var), without eps",
               (M("segnet_decoder_stage",
                  'y = F.batch_norm(y, norm["running_mean"], norm["running_var"], norm["weight"], norm["bias"],\n'
                  "                         training=False, eps=1e-5)",
                  'y = ((y - norm["running_mean"][:, None, None]) / torch.sqrt(norm["running_var"][:, None, None])\n'
                  '             * norm["weight"][:, None, None] + norm["bias"][:, None, None])'),),
               must_lose=("test_segnet_decoder_stage",)),
    Submission("decoder_ignores_indices", "upsamples by repeating values instead of unpooling with the indices",
               (M("segnet_decoder_stage", "    y = max_unpool2d(x, indices, 2, output_size=output_size)\n",
                  "    grown = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)\n"
                  "    y = torch.zeros(*x.shape[:2], output_size[-2], output_size[-1], dtype=x.dtype)\n"
                  "    rows, cols = min(output_size[-2], grown.shape[2]), min(output_size[-1], grown.shape[3])\n"
                  "    y[:, :, :rows, :cols] = grown[:, :, :rows, :cols]\n"),),
               must_lose=("test_segnet_decoder_stage",)),
    Submission("delegates_to_segnet_decoder_stage", "builds the layers and calls segedu's decoder_stage",
               replace={"segnet_decoder_stage": (
                   "from segedu.models.segnet import decoder_stage as library_stage\n\n"
                   "def segnet_decoder_stage(x, indices, output_size, convs, norms):\n"
                   "    layers = []\n"
                   "    for conv, norm in zip(convs, norms):\n"
                   "        bn = nn.BatchNorm2d(conv.out_channels)\n"
                   "        bn.load_state_dict({**norm, 'num_batches_tracked': torch.tensor(0)})\n"
                   "        layers += [conv, bn.eval(), nn.ReLU()]\n"
                   "    return library_stage(x, indices, output_size, nn.Sequential(*layers))\n")},
               must_lose=("test_segnet_decoder_stage",)),
)

CONV_CELLS = ("test_dilated_conv2d", "test_dilated_conv2d_padding", "test_dilated_conv2d_stride",
              "test_dilated_conv2d_bias")
TAPS = "            top, left = u * dilation, v * dilation\n"
FIRST_LINE = "    n, _, height, width = x.shape\n"


def _spacing(expression: str) -> tuple:
    """Mutations that space the taps (and size the output) with ``expression`` instead of the dilation."""
    return (M("dilated_conv2d", "dilation * (kh - 1)", f"{expression} * (kh - 1)"),
            M("dilated_conv2d", "dilation * (kw - 1)", f"{expression} * (kw - 1)"),
            M("dilated_conv2d", TAPS, f"            top, left = u * {expression}, v * {expression}\n"))


known.add("08_deeplab", "dilated_conv2d",
    Submission("dilation_as_stride", "uses the rate as a step between output pixels; the taps stay contiguous",
               (M("dilated_conv2d", FIRST_LINE, "    stride, dilation = stride * dilation, 1\n" + FIRST_LINE),),
               must_lose=CONV_CELLS),
    Submission("dilation_times_padding", "multiplies the padding by the rate; the taps stay contiguous",
               (M("dilated_conv2d", FIRST_LINE, "    padding, dilation = padding * dilation, 1\n" + FIRST_LINE),),
               must_lose=CONV_CELLS),
    Submission("dilation_as_padding", "pads by the rate instead of the padding; the taps stay contiguous",
               (M("dilated_conv2d", FIRST_LINE, "    padding, dilation = dilation, 1\n" + FIRST_LINE),),
               must_lose=CONV_CELLS),
    Submission("taps_one_apart_too_many", "inserts d zeros between the taps: they are d + 1 apart",
               _spacing("(dilation + 1)"), must_lose=CONV_CELLS),
    Submission("taps_one_apart_too_few", "spaces the taps d - 1 apart",
               _spacing("(dilation - 1)"), must_lose=CONV_CELLS),
    Submission("conv_bias_ignored", "never adds the bias",
               (M("dilated_conv2d", "    if bias is not None:\n        out += bias.reshape(1, out_channels, 1, 1)\n", ""),),
               must_lose=("test_dilated_conv2d_bias",)),
    Submission("conv_bias_at_every_tap", "adds the bias inside the loop over the taps",
               (M("dilated_conv2d", "    if bias is not None:\n        out += bias.reshape(1, out_channels, 1, 1)\n", ""),
                M("dilated_conv2d", 'out += torch.einsum("nchw,oc->nohw", seen, weight[:, :, u, v])\n',
                  'out += torch.einsum("nchw,oc->nohw", seen, weight[:, :, u, v])\n'
                  "            if bias is not None:\n"
                  "                out += bias.reshape(1, out_channels, 1, 1)\n")),
               must_lose=("test_dilated_conv2d_bias",)),
    Submission("conv_size_rounds_down_once_more", "output size (H + 2p - d(k-1)) // s: a row short when s does not divide",
               (M("dilated_conv2d", "(height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1",
                  "(height + 2 * padding - dilation * (kh - 1)) // stride"),
                M("dilated_conv2d", "(width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1",
                  "(width + 2 * padding - dilation * (kw - 1)) // stride")),
               must_lose=("test_dilated_conv2d_stride",)),
    Submission("delegates_to_conv2d", "calls F.conv2d under an alias",
               replace={"dilated_conv2d": "from torch.nn.functional import conv2d as library_conv\n\n"
                                          "def dilated_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):\n"
                                          "    return library_conv(x, weight, bias, stride, padding, dilation)\n"},
               must_lose=CONV_CELLS + ("test_aspp", "test_aspp_large_rate")),
    Submission("delegates_to_unfold", "im2col with F.unfold, which takes the dilation itself",
               replace={"dilated_conv2d": (
                   "def dilated_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):\n"
                   "    n, _, height, width = x.shape\n"
                   "    out_channels, _, kh, kw = weight.shape\n"
                   "    h_out = (height + 2 * padding - dilation * (kh - 1) - 1) // stride + 1\n"
                   "    w_out = (width + 2 * padding - dilation * (kw - 1) - 1) // stride + 1\n"
                   "    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)\n"
                   "    out = (weight.reshape(out_channels, -1) @ columns).reshape(n, out_channels, h_out, w_out)\n"
                   "    return out if bias is None else out + bias.reshape(1, -1, 1, 1)\n")},
               must_lose=CONV_CELLS + ("test_aspp", "test_aspp_large_rate")),
)

RF_CELLS = ("test_receptive_field", "test_receptive_field_dilation")
RF_STEP = "        size += (kernel_size - 1) * dilation * jump\n        jump *= stride\n"

known.add("08_deeplab", "receptive_field",
    Submission("rf_adds_strides", "adds the strides to the jump instead of multiplying them",
               (M("receptive_field", "jump *= stride", "jump += stride"),), must_lose=RF_CELLS),
    Submission("rf_uses_the_new_jump", "updates the jump before the size, so the size uses j_l",
               (M("receptive_field", RF_STEP,
                  "        jump *= stride\n        size += (kernel_size - 1) * dilation * jump\n"),),
               must_lose=RF_CELLS),
    Submission("rf_ignores_dilation", "forgets the dilation",
               (M("receptive_field", "(kernel_size - 1) * dilation * jump", "(kernel_size - 1) * jump"),),
               must_lose=("test_receptive_field_dilation",)),
    Submission("rf_returns_size_only", "returns the size alone",
               (M("receptive_field", "return size, jump", "return size"),), must_lose=RF_CELLS),
    Submission("rf_starts_at_zero", "starts from r_0 = 0",
               (M("receptive_field", "size, jump = 1, 1", "size, jump = 0, 1"),), must_lose=RF_CELLS),
    Submission("rf_recursion_runs_forward", "runs the output-to-input recursion r = s * r + (k - 1) * d from the input",
               (M("receptive_field", "        size += (kernel_size - 1) * dilation * jump\n",
                  "        size = stride * size + (kernel_size - 1) * dilation\n"),),
               must_lose=RF_CELLS),
    Submission("delegates_to_segedu_receptive_field", "calls segedu.conv.receptive_field under an alias",
               replace={"receptive_field": "from segedu.conv import receptive_field as library_field\n\n"
                                           "def receptive_field(layers):\n"
                                           "    return library_field(layers)\n"},
               must_lose=RF_CELLS),
)

ASPP_CELLS = ("test_aspp", "test_aspp_large_rate")
POOLED = "    branches.append(pooled.expand(-1, -1, height, width))\n"

known.add("08_deeplab", "aspp",
    Submission("aspp_without_pooling", "leaves out the image-pooling branch",
               (M("aspp", '    pooled = conv_bn_relu(x.mean(dim=(2, 3), keepdim=True), params["pooling"])\n' + POOLED,
                  ""),),
               must_lose=ASPP_CELLS),
    Submission("aspp_pooling_not_upsampled", "concatenates the 1x1 pooled branch without upsampling it",
               (M("aspp", POOLED, "    branches.append(pooled)\n"),), must_lose=ASPP_CELLS),
    Submission("aspp_pooling_first", "concatenates the image-pooling branch first",
               (M("aspp", POOLED, "    branches.insert(0, pooled.expand(-1, -1, height, width))\n"),),
               must_lose=ASPP_CELLS),
    Submission("aspp_relu_before_batch_norm", "applies the ReLU before the batch norm in every layer",
               (M("aspp", '        bn = layer["bn"]\n', '        y = F.relu(y)\n        bn = layer["bn"]\n'),
                M("aspp", "        return F.relu(y)\n", "        return y\n")),
               must_lose=ASPP_CELLS),
    Submission("aspp_pooled_over_channels", "averages over axes 1 and 2 (C and h), as for one (C, h, w) image",
               (M("aspp", "x.mean(dim=(2, 3), keepdim=True)", "x.mean(dim=(1, 2), keepdim=True)"),),
               must_lose=ASPP_CELLS),
    # a branch padded too little: torch.cat refuses it in test_aspp; in test_aspp_large_rate a rate past the
    # map already fails inside the student's own dilated_conv2d (a negative size), an error of their making
    Submission("aspp_atrous_padding_one", "pads every 3x3 branch by 1 instead of by its rate",
               (M("aspp", "padding=rate, dilation=rate", "padding=1, dilation=rate"),),
               must_lose=("test_aspp",)),
    Submission("aspp_atrous_unpadded", "forgets the padding of the 3x3 branches",
               (M("aspp", "padding=rate, dilation=rate", "dilation=rate"),),
               must_lose=("test_aspp",)),
    Submission("aspp_batch_norm_without_eps", "writes the batch norm by hand and divides by sqrt(var), without eps",
               (M("aspp",
                  'y = F.batch_norm(y, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"], '
                  "training=False, eps=1e-5)",
                  'y = ((y - bn["running_mean"][:, None, None]) / torch.sqrt(bn["running_var"][:, None, None])\n'
                  '             * bn["weight"][:, None, None] + bn["bias"][:, None, None])'),),
               must_lose=ASPP_CELLS),
    Submission("aspp_batch_norm_training_mode", "normalises with the batch's statistics, not the running ones",
               (M("aspp", "training=False, eps=1e-5", "training=True, eps=1e-5"),),
               must_lose=ASPP_CELLS),
    Submission("delegates_to_aspp", "loads the layers into segedu's ASPP module",
               replace={"aspp": (
                   "from segedu.models import ASPP\n\n"
                   "def aspp(x, params, rates):\n"
                   "    block = ASPP(x.shape[1], params['conv1x1']['weight'].shape[0], rates=rates).double().eval()\n"
                   "    layers = [params['conv1x1'], *params['atrous'], params['pooling']]\n"
                   "    for branch, layer in zip(block.convs, layers):\n"
                   "        convs = [m for m in branch if isinstance(m, torch.nn.Conv2d)]\n"
                   "        norms = [m for m in branch if isinstance(m, torch.nn.BatchNorm2d)]\n"
                   "        convs[0].weight.data = layer['weight']\n"
                   "        for name, value in layer['bn'].items():\n"
                   "            getattr(norms[0], name).data = value\n"
                   "    block.project[0].weight.data = params['project']['weight']\n"
                   "    for name, value in params['project']['bn'].items():\n"
                   "        getattr(block.project[1], name).data = value\n"
                   "    with torch.no_grad():\n"
                   "        return block(x)\n")},
               must_lose=ASPP_CELLS),
)

# ----------------------------------------------------------------------------- 09 Mask R-CNN

BILINEAR_CELLS = ("test_bilinear_interpolate", "test_bilinear_interpolate_border")
BILINEAR_FIRST = "    height, width = feature.shape[-2:]\n"
CLAMPS = ("    if y_low >= height - 1:\n        y_low = y_high = height - 1\n        y = float(y_low)\n"
          "    else:\n        y_high = y_low + 1\n"
          "    if x_low >= width - 1:\n        x_low = x_high = width - 1\n        x = float(x_low)\n"
          "    else:\n        x_high = x_low + 1\n")

known.add("09_mask_rcnn", "bilinear_interpolate",
    Submission("bilinear_swaps_x_and_y", "reads y as the column and x as the row",
               (M("bilinear_interpolate", BILINEAR_FIRST, "    y, x = x, y\n" + BILINEAR_FIRST),),
               must_lose=BILINEAR_CELLS),
    Submission("bilinear_weights_swapped", "puts 1 - ly on the high row (and 1 - lx on the high column)",
               (M("bilinear_interpolate", "    ly, lx = y - y_low, x - x_low\n    hy, hx = 1.0 - ly, 1.0 - lx\n",
                  "    hy, hx = y - y_low, x - x_low\n    ly, lx = 1.0 - hy, 1.0 - hx\n"),),
               must_lose=BILINEAR_CELLS),
    # the band above the last row reads row H: an IndexError, which its hint names too
    Submission("bilinear_no_border_clamp", "never clamps: the band [-1, 0) extrapolates, the band (H - 1, H] reads row H",
               (M("bilinear_interpolate", "    y, x = max(y, 0.0), max(x, 0.0)\n", ""),
                M("bilinear_interpolate", CLAMPS, "    y_high, x_high = y_low + 1, x_low + 1\n")),
               must_lose=("test_bilinear_interpolate_border",)),
    Submission("bilinear_band_is_zero", "gives 0 for the whole band -1 <= y < 0 (and x) instead of clamping it",
               (M("bilinear_interpolate", "if y < -1.0 or y > height or x < -1.0 or x > width:",
                  "if y < 0.0 or y > height or x < 0.0 or x > width:"),),
               must_lose=("test_bilinear_interpolate_border",)),
    Submission("delegates_to_grid_sample", "samples the point with F.grid_sample (align_corners=True) under an alias",
               replace={"bilinear_interpolate": (
                   "from torch.nn.functional import grid_sample as sample\n\n"
                   "def bilinear_interpolate(feature, y, x):\n"
                   "    height, width = feature.shape[-2:]\n"
                   "    if y < -1.0 or y > height or x < -1.0 or x > width:\n"
                   "        return torch.zeros((), dtype=feature.dtype)\n"
                   "    grid = torch.tensor([[[[2 * min(max(x, 0.0), width - 1) / (width - 1) - 1,\n"
                   "                           2 * min(max(y, 0.0), height - 1) / (height - 1) - 1]]]], dtype=feature.dtype)\n"
                   "    return sample(feature[None, None], grid, mode='bilinear', align_corners=True)[0, 0, 0, 0]\n")},
               must_lose=BILINEAR_CELLS),
)

ROI_CELLS = ("test_roi_align", "test_roi_align_aligned", "test_roi_align_adaptive", "test_roi_align_spatial_scale",
             "test_roi_align_small_boxes")
ROI_FIRST = "    pooled_h, pooled_w = output_size\n"
GRID_H = "grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / pooled_h)"
GRID_W = "grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pooled_w)"

known.add("09_mask_rcnn", "roi_align",
    Submission("roi_align_without_half_pixel", "ignores aligned: aligned=True computed as aligned=False",
               (M("roi_align", ROI_FIRST, "    aligned = False\n" + ROI_FIRST),),
               must_lose=("test_roi_align_aligned", "test_roi_align_adaptive", "test_roi_align_spatial_scale",
                          "test_roi_align_small_boxes")),
    Submission("roi_align_shift_always", "subtracts the half pixel whatever aligned says",
               (M("roi_align", "offset = 0.5 if aligned else 0.0", "offset = 0.5"),),
               must_lose=("test_roi_align", "test_roi_align_adaptive", "test_roi_align_spatial_scale",
                          "test_roi_align_small_boxes")),
    Submission("roi_align_rounds_box", "rounds the scaled corners to whole pixels, as RoIPool",
               tuple(M("roi_align", f"{c} * spatial_scale", f"round({c} * spatial_scale)") for c in ("x1", "y1", "x2", "y2")),
               must_lose=ROI_CELLS),
    Submission("roi_align_always_adaptive", "ignores sampling_ratio: always the adaptive grid",
               (M("roi_align", GRID_H, "grid_h = math.ceil(roi_h / pooled_h)"),
                M("roi_align", GRID_W, "grid_w = math.ceil(roi_w / pooled_w)")),
               must_lose=("test_roi_align", "test_roi_align_aligned", "test_roi_align_spatial_scale")),
    Submission("roi_align_one_sample", "ignores sampling_ratio: one sample per bin",
               (M("roi_align", GRID_H, "grid_h = 1"), M("roi_align", GRID_W, "grid_w = 1")),
               must_lose=("test_roi_align", "test_roi_align_aligned", "test_roi_align_adaptive",
                          "test_roi_align_spatial_scale")),
    Submission("roi_align_grid_from_map", "sizes the adaptive grid from the whole map: ceil(H / P_h)",
               (M("roi_align", "math.ceil(roi_h / pooled_h)", "math.ceil(feature.shape[-2] / pooled_h)"),
                M("roi_align", "math.ceil(roi_w / pooled_w)", "math.ceil(feature.shape[-1] / pooled_w)")),
               must_lose=("test_roi_align_adaptive", "test_roi_align_spatial_scale")),
    Submission("roi_align_no_minimum_size", "forgets that aligned=False makes a region at least one pixel",
               (M("roi_align", "        if not aligned:\n            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)\n",
                  ""),),
               must_lose=("test_roi_align_small_boxes",)),
    Submission("roi_align_unscaled_bins", "sizes the region (bins and grid) from the unscaled box",
               (M("roi_align", "roi_w = x2 * spatial_scale - offset - start_x", "roi_w = x2 - x1"),
                M("roi_align", "roi_h = y2 * spatial_scale - offset - start_y", "roi_h = y2 - y1")),
               must_lose=("test_roi_align_spatial_scale",)),
    Submission("delegates_to_torchvision_roi_align", "calls torchvision.ops.roi_align under an alias",
               replace={"roi_align": (
                   "from torchvision.ops import roi_align as library_roi_align\n\n"
                   "def roi_align(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):\n"
                   "    return library_roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned)\n")},
               must_lose=ROI_CELLS),
)

IOU_CELLS = ("test_mask_iou", "test_mask_iou_empty")
IOU_TAIL = ("    iou = torch.zeros_like(union)\n    nonempty = union > 0\n"
            "    iou[nonempty] = intersection[nonempty] / union[nonempty]\n    return iou\n")

known.add("09_mask_rcnn", "mask_iou",
    Submission("iou_divides_by_sum_of_areas", "divides the intersection by |A| + |B|, not by the union",
               (M("mask_iou", " - intersection\n", "\n"),), must_lose=IOU_CELLS),
    Submission("iou_intersection_only", "returns the intersections (pixel counts)",
               (M("mask_iou", "    return iou\n", "    return intersection\n"),), must_lose=IOU_CELLS),
    Submission("iou_transposed", "returns the (M, N) matrix",
               (M("mask_iou", "    return iou\n", "    return iou.T\n"),), must_lose=IOU_CELLS),
    Submission("iou_empty_nan", "divides everywhere: two empty masks give 0/0 = NaN",
               (M("mask_iou", IOU_TAIL, "    return intersection / union\n"),), must_lose=("test_mask_iou_empty",)),
)

FOURIER_CELLS = ("test_fourier_encoding", "test_fourier_encoding_grid")

known.add("10_sam", "fourier_encoding",
    Submission("fourier_not_centred", "projects the coordinates in [0, 1] without mapping them to [-1, 1]",
               (M("fourier_encoding", "centred = 2 * coords - 1", "centred = coords"),), must_lose=FOURIER_CELLS),
    Submission("fourier_cos_first", "puts the cosines before the sines",
               (M("fourier_encoding", "[torch.sin(projected), torch.cos(projected)]",
                  "[torch.cos(projected), torch.sin(projected)]"),), must_lose=FOURIER_CELLS),
    Submission("fourier_without_2pi", "forgets the factor 2 pi",
               (M("fourier_encoding", "projected = 2 * math.pi * (centred @ gaussian_matrix)",
                  "projected = centred @ gaussian_matrix"),), must_lose=FOURIER_CELLS),
)

ATTENTION_CELLS = ("test_attention", "test_attention_batched", "test_attention_large_scores")
SCORES = "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])"

known.add("10_sam", "attention",
    Submission("attention_without_scale", "forgets the 1/sqrt(d) scale",
               (M("attention", SCORES, "scores = q @ k.transpose(-2, -1)"),),
               must_lose=("test_attention", "test_attention_batched")),
    Submission("attention_softmax_over_queries", "takes the softmax over the queries (dim=-2) instead of the keys",
               (M("attention", "torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-2)"),),
               must_lose=ATTENTION_CELLS),
    Submission("attention_scaled_by_d", "divides the scores by d instead of sqrt(d)",
               (M("attention", SCORES, "scores = q @ k.transpose(-2, -1) / q.shape[-1]"),),
               must_lose=("test_attention", "test_attention_batched")),
    Submission("attention_scaled_by_sqrt_dv", "divides the scores by sqrt(d_v), the size of a value, not of a query",
               (M("attention", SCORES, "scores = q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])"),),
               must_lose=("test_attention",)),   # the other cells have d_v = d, or scores so large that any scale
                                                 # leaves the softmax one-hot
    Submission("attention_softmax_overflows", "writes the softmax as exp(s) / sum(exp(s)), which overflows",
               (M("attention", "weights = torch.softmax(scores, dim=-1)",
                  "weights = torch.exp(scores) / torch.exp(scores).sum(dim=-1, keepdim=True)"),),
               must_lose=("test_attention_large_scores",)),
    Submission("delegates_to_scaled_dot_product_attention", "calls F.scaled_dot_product_attention under an alias",
               replace={"attention": "from torch.nn.functional import scaled_dot_product_attention as fused\n\n"
                                     "def attention(q, k, v):\n"
                                     "    return fused(q, k, v)\n"},
               must_lose=ATTENTION_CELLS),
)

known.add("10_sam", "focal_loss",
    Submission("focal_alpha_on_negatives", "applies alpha to the negatives and 1 - alpha to the positives",
               (M("focal_loss", "alpha_t = alpha * target + (1 - alpha) * (1 - target)",
                  "alpha_t = alpha * (1 - target) + (1 - alpha) * target"),),
               must_lose=("test_focal_loss", "test_focal_loss_alpha_gamma")),
    Submission("focal_without_gamma", "leaves out the modulating factor (1 - p_t) ** gamma",
               (M("focal_loss", "(alpha_t * (1 - p_t) ** gamma * cross_entropy)", "(alpha_t * cross_entropy)"),),
               must_lose=("test_focal_loss", "test_focal_loss_alpha_gamma")),
    Submission("focal_summed", "sums over the pixels instead of averaging",
               (M("focal_loss", "* cross_entropy).mean()", "* cross_entropy).sum()"),),
               must_lose=("test_focal_loss", "test_focal_loss_alpha_gamma")),
)

known.add("10_sam", "dice_loss",
    Submission("dice_without_smoothing", "leaves out the smoothing: 0/0 on empty masks",
               (M("dice_loss", "dice = (2 * (p * y).sum(dim=1) + smooth) / (p.sum(dim=1) + y.sum(dim=1) + smooth)",
                  "dice = (2 * (p * y).sum(dim=1)) / (p.sum(dim=1) + y.sum(dim=1))"),),
               must_lose=("test_dice_loss", "test_dice_loss_empty")),
    Submission("dice_over_the_whole_batch", "one Dice over all the masks instead of the mean of per-mask losses",
               (M("dice_loss", "    dice = (2 * (p * y).sum(dim=1) + smooth) / (p.sum(dim=1) + y.sum(dim=1) + smooth)\n"
                  "    return (1 - dice).mean()",
                  "    return 1 - (2 * (p * y).sum() + smooth) / (p.sum() + y.sum() + smooth)"),),
               must_lose=("test_dice_loss",)),
)

SAM_CELLS = ("test_sam_loss", "test_sam_loss_ambiguous", "test_sam_loss_empty", "test_sam_loss_weights")
HARD_IOU = ("        predicted = mask_logits[b] > 0\n        truth = target[b] == 1\n"
            "        intersection = (predicted & truth).flatten(1).sum(dim=1)\n"
            "        union = (predicted | truth).flatten(1).sum(dim=1)\n")
GUARDED_IOU = ("        iou = torch.ones(num_masks, dtype=iou_pred.dtype, device=iou_pred.device)\n"
               "        nonempty = union > 0\n"
               "        iou[nonempty] = (intersection[nonempty] / union[nonempty]).to(iou_pred.dtype)\n")

known.add("10_sam", "sam_loss",
    Submission("sam_loss_mean_over_masks", "averages the mask losses over the three masks instead of the minimum",
               (M("sam_loss", "mask_losses.min()", "mask_losses.mean()"),), must_lose=SAM_CELLS),
    Submission("sam_loss_soft_iou", "computes the IoU target from the probabilities (a soft IoU)",
               (M("sam_loss", HARD_IOU,
                  "        predicted = torch.sigmoid(mask_logits[b])\n        truth = target[b]\n"
                  "        intersection = (predicted * truth).flatten(1).sum(dim=1)\n"
                  "        union = (predicted + truth - predicted * truth).flatten(1).sum(dim=1)\n"),),
               must_lose=SAM_CELLS),
    Submission("sam_loss_iou_of_best_mask_only", "puts only the best mask's IoU error into the loss",
               (M("sam_loss", "iou_term = ((iou_pred[b] - iou) ** 2).mean()",
                  "iou_term = (iou_pred[b, mask_losses.argmin()] - iou[mask_losses.argmin()]) ** 2"),),
               must_lose=SAM_CELLS),
    Submission("sam_loss_empty_iou_zero", "gives two empty masks the IoU 0",
               (M("sam_loss", "iou = torch.ones(num_masks,", "iou = torch.zeros(num_masks,"),),
               must_lose=("test_sam_loss_empty",)),
    Submission("sam_loss_empty_iou_nan", "divides without a guard: two empty masks give 0/0 = NaN",
               (M("sam_loss", GUARDED_IOU, "        iou = (intersection / union).to(iou_pred.dtype)\n"),),
               must_lose=("test_sam_loss_empty",)),
    Submission("sam_loss_weights_swapped", "weights the focal loss by dice_weight and the Dice loss by focal_weight",
               (M("sam_loss", "focal_weight * focal_loss(", "dice_weight * focal_loss("),
                M("sam_loss", "dice_weight * dice_loss(", "focal_weight * dice_loss(")),
               must_lose=SAM_CELLS),
    # the student's own focal_loss is wrong (summed) and sam_loss, right in itself, inherits it: the hint points
    # back to focal_loss
    Submission("sam_loss_with_summed_focal", "a right sam_loss on top of a focal_loss that sums over the pixels",
               (M("focal_loss", "* cross_entropy).mean()", "* cross_entropy).sum()"),), must_lose=SAM_CELLS),
    Submission("sam_loss_iou_at_logit_zero", "counts a logit of exactly 0 into the mask of the IoU target (>= 0)",
               (M("sam_loss", "predicted = mask_logits[b] > 0", "predicted = mask_logits[b] >= 0"),),
               must_lose=("test_sam_loss_ambiguous",)),   # the cell whose logits hit 0 exactly
    Submission("sam_loss_dice_of_all_masks", "calls dice_loss on the M masks at once: their mean Dice in every mask",
               (M("sam_loss", "dice_weight * dice_loss(mask_logits[b, m][None], target[b][None])",
                  "dice_weight * dice_loss(mask_logits[b], target[b].expand_as(mask_logits[b]))"),),
               must_lose=SAM_CELLS),
)

STABILITY_COUNTS = (
    "    intersections = (mask_logits > mask_threshold + threshold_offset).flatten(-2).sum(dim=-1)\n"
    "    unions = (mask_logits > mask_threshold - threshold_offset).flatten(-2).sum(dim=-1)\n")

known.add("10_sam", "stability_score",
    Submission("stability_thresholds_swapped", "counts above t - offset over the count above t + offset",
               (M("stability_score", STABILITY_COUNTS, STABILITY_COUNTS.replace("+ threshold_offset", "PLUS")
                  .replace("- threshold_offset", "+ threshold_offset").replace("PLUS", "- threshold_offset")),),
               must_lose=("test_stability_score", "test_stability_score_empty")),
    Submission("stability_one_threshold", "counts both masks at the one threshold t",
               (M("stability_score", STABILITY_COUNTS, STABILITY_COUNTS.replace(" + threshold_offset", "")
                  .replace(" - threshold_offset", "")),),
               must_lose=("test_stability_score", "test_stability_score_empty")),
    Submission("stability_empty_nan", "divides without a guard: an empty mask gives 0/0 = NaN",
               (M("stability_score", "    scores = torch.ones(unions.shape, dtype=mask_logits.dtype, "
                  "device=mask_logits.device)\n    nonempty = unions > 0\n"
                  "    scores[nonempty] = (intersections[nonempty] / unions[nonempty]).to(scores.dtype)\n"
                  "    return scores\n",
                  "    return intersections / unions\n"),),
               must_lose=("test_stability_score_empty",)),
    Submission("stability_at_least", "counts the logits exactly on a threshold (>= instead of >)",
               (M("stability_score", STABILITY_COUNTS, STABILITY_COUNTS.replace(" > ", " >= ")),),
               must_lose=("test_stability_score_strict",)),
    Submission("delegates_to_segment_anything", "calls segment-anything's calculate_stability_score",
               replace={"stability_score": (
                   "from segment_anything.utils.amg import calculate_stability_score\n\n"
                   "def stability_score(mask_logits, mask_threshold, threshold_offset):\n"
                   "    return calculate_stability_score(mask_logits, mask_threshold, threshold_offset)\n")},
               must_lose=("test_stability_score", "test_stability_score_empty")),
)

KNOWN_MISTAKES = known.by_function      # (assignment, function) -> fixtures
WRONG_ANSWERS = known.by_assignment     # assignment -> fixtures, in the order they were filed
