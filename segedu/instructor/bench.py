"""``make bench``: every speed figure of the course, measured in one run, in one table.

Sections (one row per measured thing; the same rows go to ``build/bench.csv``):

- ``lecture``: each lecture notebook executed headless, against its budget (COURSE.md: 90 s each,
  10 min together), and on a CUDA machine the same lecture with the GPU hidden, for the speed-up;
- ``graded``: each exercise's solution and untouched release graded through ``segedu grade``
  (sandbox, workers, trusted verdict): the seconds its cells took in the kernel against the budget
  (2 s for numpy units, 5 s for torch units; the kernel's own start is not counted, imports are),
  and whether the solution scored every point and the untouched release none;
- ``reference``: each reference operation against its library peer on the same input, as a ratio
  of best times, sampled in turns (goal: within 3x of torch and scikit-image, 10x of torchvision's ``roi_align``);
- ``training``: each training demo of the lectures, the quality it printed against its time;
- ``grading``: ``segedu grade`` on a sample of correct submissions of a numpy unit and a torch
  unit, serial and parallel: submissions per minute, the fixed cost of a submission (the run's time
  per submission minus the time its cells ran, divided by the number of jobs whose cells overlap),
  and the sample extrapolated to 200 submissions (set-up once, then
  200 times the measured time per submission) against the budget (5 min numpy, 10 min torch).

Timings on a shared machine are noisy: the budgets are meant "with another CPU-bound job running",
so run ``make bench`` that way. Nothing here asserts a time: the table says OVER where a figure is
over its goal, and the exit status is 1 only when something failed (a lecture raised, a solution
lost points, an untouched release scored).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._units import unit as _unit
from .course import ALL_LECTURES_BUDGET_S, graded_budget_s, lecture_budget_s, run_lectures, unit_kind
from .notebooks import assignment_ids, fill_in, solution_answers, unit_of

BENCH_SEED = "731965270418"   # the bench's grading seed (any private-looking number will do)
# the units whose class-size grading is measured: one of each kind (segedu/_units.py), the one with the
# heaviest graded cells
NUMPY_UNIT, TORCH_UNIT = "01_thresholding", "05_fcn"
REFERENCE_GOAL = 3.0
ROI_ALIGN_GOAL = 10.0
COLUMNS = ["section", "item", "measured", "unit", "goal", "verdict", "detail"]


@dataclass
class Row:
    section: str
    item: str
    measured: float
    unit: str
    goal: float | None = None       # measured <= goal is within budget; None: no goal
    detail: str = ""
    failed: bool = False           # something broke (not merely slow)
    extra: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.failed:
            return "FAILED"
        if self.goal is None or math.isnan(self.measured):
            return "-"
        return "ok" if self.measured <= self.goal else "OVER"

    def cells(self) -> list[str]:
        goal = "" if self.goal is None else f"<= {self.goal:g}"
        measured = "n/a" if math.isnan(self.measured) else f"{self.measured:.3g}"
        return [self.section, self.item, measured, self.unit, goal, self.verdict, self.detail]


# ----------------------------------------------------------------------------- lectures

def lecture_rows(root: Path, cuda: bool) -> tuple[list[Row], dict[str, str]]:
    """Rows for every lecture (and their total), and each lecture's printed text (for the demos)."""
    rows, texts = [], {}
    runs = run_lectures(root, keep_outputs=True)
    cpu_runs = {}
    if cuda:   # the same lectures with the GPU hidden: the speed-up a GPU brings
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        try:
            cpu_runs = {r.path.name: r for r in run_lectures(root)}
        finally:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
    for run in runs:
        detail = run.error[-200:] if run.error else ""
        cpu = cpu_runs.get(run.path.name)
        if cpu is not None and not cpu.error and run.seconds > 0:
            detail = f"{cpu.seconds:.1f} s without the GPU: {cpu.seconds / run.seconds:.1f}x faster on it"
        rows.append(Row("lecture", run.path.stem, run.seconds, "s", lecture_budget_s(run.path.name), detail, bool(run.error)))
        texts[run.path.stem] = run.text
    total = sum(r.seconds for r in runs if not r.error)
    rows.append(Row("lecture", "all lectures", total, "s", ALL_LECTURES_BUDGET_S, f"{len(runs)} notebooks",
                    any(r.error for r in runs)))
    return rows, texts


# ----------------------------------------------------------------------------- training demos

# What the lectures print after training (the demo's name, its quality, its seconds, a target).
DEMO_PATTERNS = [
    # 05_fcn: "FCN-8s:" ... "  trained in 7.1 s, validation mean IoU 0.790"
    (re.compile(r"(?P<name>FCN-\w+):\s*\n(?:.*\n)*?\s*trained in (?P<seconds>[\d.]+) s, "
                r"validation mean IoU (?P<quality>[\d.]+)"), None),
    # 11_coco_eda: "validation mIoU 0.912 (target ≥ 0.85: reached); 12.3 s"
    (re.compile(r"validation mIoU (?P<quality>[\d.]+) \(target ≥ (?P<target>[\d.]+)[^)]*\); "
                r"(?P<seconds>[\d.]+) s"), "PixelNet"),
    # 06_unet, whose quality is an instance F1 (the empty group "metric" says so):
    # "fine-tuned for 100 steps in 12.3 s on cpu" ... "+ fine-tuned with it   0.931   0.912  0.921   5 of 10"
    (re.compile(r"fine-tuned for \d+ steps in (?P<seconds>[\d.]+) s on \w+\s*\n(?:.*\n)*?\+ fine-tuned with it"
                r"\s+[\d.]+\s+[\d.]+\s+(?P<quality>[\d.]+)(?P<metric>)"), "U-Net fine-tuned with the weight map (F1)"),
    # 07_segnet: "SegNet seed 0, 2 more epochs on cpu: trained in 6.4 s, validation mean IoU 0.641 -> 0.759 ..."
    # 08_deeplab: "DeepLab seed 0, 1 more epoch on cpu: trained in 3.5 s, validation mean IoU 0.888 -> 0.889 ..."
    (re.compile(r"(?P<name>SegNet|DeepLab) seed \d+, \d+ more epochs? on \w+: trained in (?P<seconds>[\d.]+) s, "
                r"validation mean IoU [\d.]+ -> (?P<quality>[\d.]+)"), None),
    # 09_mask_rcnn: "Mask R-CNN, 8 more iterations on cpu: trained in 4.4 s, held-out mask AP50 0.894 (target ≥ 0.7: reached)"
    (re.compile(r"(?P<name>Mask R-CNN), \d+ more iterations on \w+: trained in (?P<seconds>[\d.]+) s, "
                r"held-out mask AP50 (?P<quality>[\d.]+) \(target ≥ (?P<target>[\d.]+)[^)]*\)(?P<ap50>)"), None),
]


def training_rows(texts: dict[str, str]) -> list[Row]:
    rows = []
    for lecture, text in texts.items():
        for pattern, name in DEMO_PATTERNS:
            for match in pattern.finditer(text):
                found = match.groupdict()
                target = found.get("target")
                quality = float(found["quality"])
                metric = "instance F1" if "metric" in found else "mask AP50" if "ap50" in found else "mean IoU"
                detail = f"{metric} {quality:.3f}" + (f" (target >= {target}: "
                                                       f"{'reached' if quality >= float(target) else 'NOT reached'})"
                                                       if target else "")
                rows.append(Row("training", f"{lecture}: {found.get('name') or name}", float(found["seconds"]), "s",
                                None, detail, failed=bool(target) and quality < float(target),
                                extra={"quality": quality}))
    return rows


# ----------------------------------------------------------------------------- reference vs peer

def paired_times(ours, theirs, repeats: int = 7, min_sample_s: float = 0.05) -> tuple[float, float]:
    """Seconds per call of ``ours`` and ``theirs``: the best of ``repeats`` samples each, taken in
    turns so that both see the same load (the minimum is the least disturbed sample, as ``timeit``
    advises); fast calls are looped so that a sample lasts about ``min_sample_s``."""
    loops = []
    for fn in (ours, theirs):
        fn()   # warm-up: caches, allocations, lazy imports
        start = time.perf_counter()
        fn()
        loops.append(max(1, int(min_sample_s / max(time.perf_counter() - start, 1e-9))))
    best = [math.inf, math.inf]
    for _ in range(repeats):
        for index, fn in enumerate((ours, theirs)):
            start = time.perf_counter()
            for _ in range(loops[index]):
                fn()
            best[index] = min(best[index], (time.perf_counter() - start) / loops[index])
    return best[0], best[1]


def _ratio_row(item: str, ours, theirs, goal: float, peer: str, agree) -> Row:
    agree()   # the two compute the same thing on this input, or the ratio means nothing
    t_ours, t_theirs = paired_times(ours, theirs)
    return Row("reference", item, t_ours / t_theirs, "x slower", goal,
               f"{1e3 * t_ours:.2f} ms vs {peer} {1e3 * t_theirs:.2f} ms")


def reference_rows() -> list[Row]:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from skimage import data, feature, filters, morphology, util

    from segedu import conv
    from segedu.classical import adaptive_threshold, canny, otsu_threshold, region_grow

    torch.set_num_threads(1)   # both sides on one thread: a fair ratio on a shared machine
    rows = []
    gen = torch.Generator().manual_seed(0)
    for label, name, x_shape, w_shape, kwargs in CONV_CASES:
        x = torch.randn(x_shape, generator=gen)
        w = torch.randn(w_shape, generator=gen)
        ours, theirs = (functools.partial(getattr(conv, name), x, w, **kwargs),
                        functools.partial(getattr(F, name), x, w, **kwargs))
        with torch.no_grad():
            rows.append(_ratio_row(f"{name} {label} {tuple(x_shape)}", ours, theirs, REFERENCE_GOAL, "torch",
                                   lambda: torch.testing.assert_close(ours(), theirs(), rtol=1e-4, atol=1e-4)))
    camera = util.img_as_float(data.camera())   # 512 x 512
    rows.append(_ratio_row("otsu_threshold camera 512x512", lambda: otsu_threshold(camera),
                           lambda: filters.threshold_otsu(camera), REFERENCE_GOAL, "skimage threshold_otsu",
                           lambda: np.testing.assert_allclose(otsu_threshold(camera), filters.threshold_otsu(camera),
                                                              atol=1 / 256)))
    ours_local = functools.partial(adaptive_threshold, camera, 35, offset=0.01, method="mean")

    def theirs_local():
        return camera > filters.threshold_local(camera, 35, method="mean", offset=0.01)

    rows.append(_ratio_row("adaptive_threshold camera block 35", ours_local, theirs_local, REFERENCE_GOAL,
                           "skimage threshold_local", lambda: _mostly_equal(ours_local(), theirs_local())))
    ours_canny = functools.partial(canny, camera, 1.0, 0.1, 0.2)
    theirs_canny = functools.partial(feature.canny, camera, sigma=1.0, low_threshold=0.1, high_threshold=0.2)
    rows.append(_ratio_row("canny camera sigma 1", ours_canny, theirs_canny, REFERENCE_GOAL, "skimage feature.canny",
                           lambda: _same_edges(ours_canny(), theirs_canny())))
    rng = np.random.default_rng(0)
    pieces = np.kron(rng.integers(0, 4, (32, 32)), np.ones((16, 16))) / 4.0   # 512 x 512, piecewise constant
    seed = (200, 300)
    ours_grow = functools.partial(region_grow, pieces, seed, 0.2)
    theirs_grow = functools.partial(morphology.flood, pieces, seed, tolerance=0.0, connectivity=1)
    rows.append(_ratio_row("region_grow 512x512, small region (= flood fill)", ours_grow, theirs_grow,
                           REFERENCE_GOAL, "skimage flood",
                           lambda: np.testing.assert_array_equal(ours_grow(), theirs_grow())))
    # 8x8 blocks, 70 % of them at 0: the seed's region spreads over most of the image
    maze = np.kron(rng.random((64, 64)) < 0.3, np.ones((8, 8))) * 0.5
    seed = tuple(int(i) for i in np.argwhere(maze == 0)[0])
    ours_big = functools.partial(region_grow, maze, seed, 0.2)
    theirs_big = functools.partial(morphology.flood, maze, seed, tolerance=0.0, connectivity=1)
    rows.append(_ratio_row(f"region_grow 512x512, region of {int(theirs_big().sum())} px (= flood fill)", ours_big,
                           theirs_big, REFERENCE_GOAL, "skimage flood",
                           lambda: np.testing.assert_array_equal(ours_big(), theirs_big())))
    try:
        from segedu.instance import roi_align   # unit 09
    except ImportError:
        rows.append(Row("reference", "roi_align", float("nan"), "x slower", ROI_ALIGN_GOAL,
                        "not in segedu yet (unit 09): no figure"))
    else:
        rows.append(_roi_align_row(roi_align))
    rows.extend(_sam_rows())
    return rows


def _sam_rows() -> list[Row]:
    """Unit 10's references against segment-anything and torch: attention, the Fourier encoding, the
    stability score."""
    import torch
    import torch.nn.functional as F
    from segment_anything.modeling.prompt_encoder import PositionEmbeddingRandom
    from segment_anything.utils.amg import calculate_stability_score

    from segedu.models.sam import attention, fourier_encoding, stability_score

    gen = torch.Generator().manual_seed(10)
    q, k, v = (torch.randn(4, 8, 256, 32, generator=gen) for _ in range(3))   # ViT-ish: 8 heads, 256 tokens
    rows = [_ratio_row("attention 4x8 heads, 256 tokens, d 32", lambda: attention(q, k, v),
                       lambda: F.scaled_dot_product_attention(q, k, v), REFERENCE_GOAL,
                       "torch scaled_dot_product_attention",
                       lambda: torch.testing.assert_close(attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                                                          rtol=1e-4, atol=1e-5))]
    peer = PositionEmbeddingRandom(64)
    matrix = peer.positional_encoding_gaussian_matrix
    coords = torch.rand(16, 1024, 2, generator=gen)
    rows.append(_ratio_row("fourier_encoding 16x1024 points, 64 frequencies", lambda: fourier_encoding(coords, matrix),
                           lambda: peer._pe_encoding(coords), REFERENCE_GOAL, "segment-anything PositionEmbeddingRandom",
                           lambda: torch.testing.assert_close(fourier_encoding(coords, matrix), peer._pe_encoding(coords))))
    logits = 4 * torch.randn(32, 3, 256, 256, generator=gen)
    rows.append(_ratio_row("stability_score 32x3 masks 256x256", lambda: stability_score(logits, 0.0, 1.0),
                           lambda: calculate_stability_score(logits, 0.0, 1.0), REFERENCE_GOAL,
                           "segment-anything calculate_stability_score",
                           lambda: torch.testing.assert_close(stability_score(logits, 0.0, 1.0),
                                                              calculate_stability_score(logits, 0.0, 1.0))))
    return rows


def _mostly_equal(a, b, fraction: float = 0.001) -> None:
    """Equal but for near-ties of rounding (see tests/test_thresholding.py and test_edges.py)."""
    import numpy as np

    differ = float(np.mean(np.asarray(a) != np.asarray(b)))
    if differ > fraction:
        raise AssertionError(f"reference and peer differ on {differ:.2%} of the pixels")


def _same_edges(ours, theirs) -> None:
    """Edge maps agree when F1 > 0.9 with one pixel of tolerance (the criterion of tests/test_edges.py:
    the two blur and interpolate differently, so single edge pixels move by one)."""
    import numpy as np
    from scipy import ndimage

    box = np.ones((3, 3), dtype=bool)
    precision = (ours & ndimage.binary_dilation(theirs, box)).sum() / max(ours.sum(), 1)
    recall = (theirs & ndimage.binary_dilation(ours, box)).sum() / max(theirs.sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    if f1 <= 0.9:
        raise AssertionError(f"the edge maps differ: F1 {f1:.3f} with one pixel of tolerance")


def _roi_align_row(roi_align) -> Row:
    import torch
    from torchvision.ops import roi_align as tv_roi_align

    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 64, 50, 50, generator=gen)
    boxes = torch.rand(128, 4, generator=gen) * 40
    boxes[:, 2:] += boxes[:, :2] + 2
    rois = torch.cat([torch.randint(0, 2, (128, 1), generator=gen).float(), boxes], 1)
    ours = functools.partial(roi_align, features, rois, (7, 7), 1.0, 2, True)
    theirs = functools.partial(tv_roi_align, features, rois, (7, 7), 1.0, 2, True)
    return _ratio_row("roi_align 128 rois 7x7", ours, theirs, ROI_ALIGN_GOAL, "torchvision roi_align",
                      lambda: torch.testing.assert_close(ours(), theirs(), rtol=1e-4, atol=1e-4))


# (label, function, input shape, weight shape, keyword arguments): benchmarks/bench_conv.py's cases
CONV_CASES = [
    ("3x3 s1 p1", "conv2d", (8, 16, 64, 64), (32, 16, 3, 3), {"stride": 1, "padding": 1}),
    ("3x3 s2 p1", "conv2d", (8, 16, 64, 64), (32, 16, 3, 3), {"stride": 2, "padding": 1}),
    ("3x3 d2 p2", "conv2d", (8, 16, 64, 64), (32, 16, 3, 3), {"padding": 2, "dilation": 2}),
    ("2x2 s2", "conv_transpose2d", (8, 32, 32, 32), (32, 16, 2, 2), {"stride": 2}),
    ("3x3 s2 p1 op1", "conv_transpose2d", (8, 32, 32, 32), (32, 16, 3, 3),
     {"stride": 2, "padding": 1, "output_padding": 1}),
]


# ----------------------------------------------------------------------------- graded notebooks and grading

def _write_submissions(root: Path, assignment: str, folder: Path, copies: int, untouched: bool = False) -> None:
    import nbformat

    release = nbformat.read(root / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = solution_answers(nbformat.read(root / "solutions" / assignment / f"{assignment}.ipynb", as_version=4))
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(copies):   # Canvas's names: lastfirst_userid_attachmentid_file.ipynb
        nbformat.write(fill_in(release, answers), folder / f"solution{index}_{1000 + index}_{9000 + index}_{assignment}.ipynb")
    if untouched:
        nbformat.write(release, folder / f"untouched_999_8999_{assignment}.ipynb")


def graded_rows(root: Path, workdir: Path, assignments: list[str]) -> list[Row]:
    from .grade import grade

    rows = []
    for assignment in assignments:
        folder = workdir / "submissions" / f"graded-{assignment}"
        _write_submissions(root, assignment, folder, 1, untouched=True)
        results = {r.student_id: r for r in grade(root, assignment, folder, workdir / f"graded-{assignment}", jobs=2,
                                                  seed=BENCH_SEED, echo=lambda *_: None)}
        solution, untouched = results["1000"], results["999"]
        cells = solution.timings.get("cells", float("nan"))
        got, best = _autograded(solution)
        broken = best == 0 or got != best or _autograded(untouched)[0] != 0
        manual = sum(solution.cells[name][1] for name in solution.manual if name in solution.cells)
        detail = (f"solution {got:g}/{best:g}, untouched {_autograded(untouched)[0]:g}"
                  + (f" (+{manual:g} points graded by hand)" if manual else "")
                  + ("" if solution.status == "ok" else f"; {solution.status[:120]}"))
        rows.append(Row("graded", assignment, cells, "s in cells", graded_budget_s(unit_of(assignment)), detail, broken))
    return rows


def _autograded(result) -> tuple[float, float]:
    """(score, max) of a result's autograded cells (a report graded by hand is outside both)."""
    cells = [value for name, value in result.cells.items() if name not in result.manual]
    return sum(got for got, _ in cells), sum(best for _, best in cells)


def grading_rows(root: Path, workdir: Path, sample: int, jobs_list=(1, 2),
                 units=(NUMPY_UNIT, TORCH_UNIT)) -> list[Row]:
    from .grade import grade

    rows = []
    for assignment in units:
        folder = workdir / "submissions" / f"sample-{assignment}"
        _write_submissions(root, assignment, folder, sample)
        for jobs in jobs_list:
            report: dict = {}
            results = grade(root, assignment, folder, workdir / f"grading-{assignment}-jobs{jobs}", jobs=jobs,
                            seed=BENCH_SEED, echo=lambda *_: None, report=report)
            per_submission = report["grading_s"] / len(results)
            cells = statistics.mean(r.timings.get("cells", 0.0) for r in results)
            # what a submission costs the run beyond executing its cells (cells of `jobs` workers overlap)
            fixed = per_submission - cells / jobs
            projected = report["setup_s"] + 200 * per_submission
            wrong = [r.student_id for r in results if r.status != "ok" or _autograded(r)[0] != _autograded(r)[1]]
            kind = unit_kind(assignment)
            label = f"{assignment} ({kind}) jobs={jobs}"
            rows.append(Row("grading", f"{label}: 200 submissions", projected, "s (projected)",
                            _unit(assignment).class_grading_budget_s,
                            f"{len(results)} graded in {report['grading_s']:.1f} s after {report['setup_s']:.1f} s "
                            f"of set-up; {60 / per_submission:.0f} per minute"
                            + (f"; NOT full marks: {', '.join(wrong)}" if wrong else ""), bool(wrong),
                            extra={"per_minute": 60 / per_submission, "cells_s": cells}))
            rows.append(Row("grading", f"{label}: fixed cost per submission", fixed, "s", 1.0,
                            f"{per_submission:.2f} s per submission, minus {cells:.2f} s of cells / {jobs} job(s)"))
    return rows


# ----------------------------------------------------------------------------- the table

def format_table(rows: list[Row]) -> str:
    table = [COLUMNS] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_csv(rows: list[Row], path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS + ["extra"])
        for row in rows:
            cells = row.cells()
            cells[2] = "" if math.isnan(row.measured) else repr(round(row.measured, 6))
            writer.writerow(cells + [json.dumps(row.extra) if row.extra else ""])
        writer.writerow(["meta", "machine", "", "", "", "", json.dumps(meta), ""])


def machine() -> dict:
    import platform

    import torch

    cuda = torch.cuda.is_available()
    return {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if cuda else None}


def bench(root: Path, workdir: Path, csv_path: Path, lectures: bool = True, assignments: list[str] | None = None,
          references: bool = True, sample: int = 20, grading_units=(NUMPY_UNIT, TORCH_UNIT), echo=print) -> int:
    root, workdir = Path(root).resolve(), Path(workdir)
    start = time.perf_counter()
    meta = machine()
    echo(f"make bench: {meta['cpus']} CPUs, load {meta['load_1min']}, torch {meta['torch']}, "
         f"GPU: {meta['cuda'] or 'none'}")
    rows: list[Row] = []
    if lectures:
        lecture_table, texts = lecture_rows(root, cuda=bool(meta["cuda"]))
        rows += lecture_table + training_rows(texts)
    rows += graded_rows(root, workdir, assignment_ids(root) if assignments is None else assignments)
    if references:
        rows += reference_rows()
    if sample:
        rows += grading_rows(root, workdir, sample, units=grading_units)
    order = ["lecture", "training", "graded", "reference", "grading"]
    rows.sort(key=lambda r: order.index(r.section))
    meta["seconds"] = time.perf_counter() - start
    write_csv(rows, csv_path, meta)
    echo(format_table(rows))
    over = [r for r in rows if r.verdict == "OVER"]
    failed = [r for r in rows if r.failed]
    echo(f"{len(rows)} figures in {meta['seconds']:.0f} s; {len(over)} over their goal, {len(failed)} failed; "
         f"CSV: {csv_path}")
    return 1 if failed else 0
