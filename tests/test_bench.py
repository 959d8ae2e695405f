"""``make bench`` (issue 10): one table and one CSV; what it parses and how it judges.

The figures themselves are measured by ``make bench`` and never asserted here (timings on a shared
machine are noise). These tests check that the bench runs end to end on a small configuration,
that every row it writes has the columns it promises, and that a broken peer comparison or a
missed target shows as a failure rather than as a fast number.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from segedu.instructor import bench

ROOT = Path(__file__).resolve().parents[1]


def test_training_demos_are_read_from_what_the_lectures_print():
    text = ("FCN-32s:\ntraining: 100%|####| 40/40\n  trained in 6.5 s, validation mean IoU 0.381\n"
            "FCN-8s:\n  trained in 7.2 s, validation mean IoU 0.790\n")
    other = "2211 parameters; device: cpu\nvalidation mIoU 0.912 (target ≥ 0.85: reached); 12.3 s\n"
    missed = "validation mIoU 0.700 (target ≥ 0.85: not reached); 9.0 s\n"
    tuned = ("SegNet seed 0, 2 more epochs on cpu: trained in 6.4 s, validation mean IoU 0.641 -> 0.759\n"
             "DeepLab seed 1, 1 more epoch on cuda: trained in 3.5 s, validation mean IoU 0.888 -> 0.889 (all sizes)\n")
    detector = "Mask R-CNN, 8 more iterations on cpu: trained in 4.4 s, held-out mask AP50 0.894 (target ≥ 0.7: reached)\n"
    rows = bench.training_rows({"05_fcn": text, "11_coco_eda": other, "99_x": missed, "07_08": tuned,
                                "09_mask_rcnn": detector})
    found = {r.item: (r.measured, r.extra["quality"], r.verdict) for r in rows}
    assert found == {"05_fcn: FCN-32s": (6.5, 0.381, "-"), "05_fcn: FCN-8s": (7.2, 0.79, "-"),
                     "11_coco_eda: PixelNet": (12.3, 0.912, "-"), "99_x: PixelNet": (9.0, 0.7, "FAILED"),
                     "07_08: SegNet": (6.4, 0.759, "-"), "07_08: DeepLab": (3.5, 0.889, "-"),
                     "09_mask_rcnn: Mask R-CNN": (4.4, 0.894, "-")}
    assert next(r for r in rows if r.item.startswith("09")).detail.startswith("mask AP50 0.894")


def test_a_reference_that_disagrees_with_its_peer_gets_no_ratio():
    def disagree():
        raise AssertionError("differ")

    with pytest.raises(AssertionError, match="differ"):
        bench._ratio_row("x", lambda: 1, lambda: 1, 3.0, "peer", disagree)


def test_verdicts():
    assert bench.Row("s", "fast", 2.0, "s", 3.0).verdict == "ok"
    assert bench.Row("s", "slow", 4.0, "s", 3.0).verdict == "OVER"
    assert bench.Row("s", "none", float("nan"), "s", 3.0).verdict == "-"
    assert bench.Row("s", "broken", 1.0, "s", 3.0, failed=True).verdict == "FAILED"


@pytest.mark.nbgrader
def test_bench_runs_end_to_end_on_a_small_configuration(tmp_path, capsys):
    unit = "00_tasks_and_metrics"
    target = tmp_path / "bench.csv"
    code = bench.bench(ROOT, tmp_path / "work", target, lectures=False, assignments=[unit], references=True,
                       sample=2, grading_units=(unit,))
    printed = capsys.readouterr().out
    assert code == 0, printed
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    sections = {r["section"] for r in rows}
    assert sections == {"graded", "reference", "grading", "meta"}
    graded = next(r for r in rows if r["section"] == "graded")
    assert graded["item"] == unit and graded["verdict"] in ("ok", "OVER")
    assert graded["detail"] == "solution 10/10, untouched 0"
    projected = [r for r in rows if r["section"] == "grading" and "200 submissions" in r["item"]]
    assert [r["item"].split(": ")[0] for r in projected] == [f"{unit} (numpy) jobs=1", f"{unit} (numpy) jobs=2"]
    for row in projected:
        assert float(row["measured"]) > 0 and "2 graded in" in row["detail"]
    ratios = [r for r in rows if r["section"] == "reference"]
    assert any(r["item"].startswith("conv_transpose2d") for r in ratios)
    assert all(r["measured"] == "" or math.isfinite(float(r["measured"])) for r in ratios)
    for row in rows:   # the same table was printed
        if row["section"] != "meta":
            assert row["item"] in printed
