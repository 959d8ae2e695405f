"""The trusted half of grading, without nbgrader: plans, the data format, the verdict, the seed rule.

The end-to-end proofs (real nbgrader, real sandbox) are in test_grading_attacks.py and
test_grade_pipeline.py; these tests pin the pieces they are built from.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from segedu.grading.kernel import segedu_kernel_runner as wire
from segedu.grading.plan import MISSING, PlanError, build_plan, judge, judge_case
from segedu.instructor import grade
from segedu.instructor.notebooks import assignment_ids, fill_in, solution_answers

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignment_ids(ROOT)
WORKED_BY_HAND = {"test_stride2_example"}   # the answer is one fixed example worked out on paper


def _source(assignment):
    return nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)


@pytest.fixture(scope="module")
def plans():
    cache = {}

    def get(assignment, seed):
        if (assignment, seed) not in cache:
            cache[assignment, seed] = build_plan(_source(assignment), assignment, seed)
        return cache[assignment, seed]

    return get


def _same(a, b) -> bool:
    """Equal values, looking inside arrays, tensors, modules and COCO objects."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=True))
    module = type(a).__module__
    if module.startswith("torch"):
        import torch

        if isinstance(a, torch.Tensor):
            return _same(a.detach().numpy(), b.detach().numpy())
        return _same({k: v.numpy() for k, v in a.state_dict().items()}, {k: v.numpy() for k, v in b.state_dict().items()})
    if hasattr(a, "dataset"):
        return json.dumps(a.dataset, sort_keys=True) == json.dumps(b.dataset, sort_keys=True)
    return a == b


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_new_seed_changes_every_hidden_case_and_no_visible_one(plans, assignment):
    first, second = plans(assignment, 123456789), plans(assignment, 987654321)
    assert first.cells.keys() == second.cells.keys()
    for grade_id, cases in first.cells.items():
        others = second.cells[grade_id]
        assert [c.case for c in cases if not c.hidden] == [c.case for c in others if not c.hidden]
        hidden = [c for c in cases if c.hidden]
        assert hidden or grade_id in WORKED_BY_HAND, f"{grade_id} has no hidden case"
        for case, other in zip(hidden, [c for c in others if c.hidden]):
            assert not _same((case.args, case.kwargs), (other.args, other.kwargs)), \
                f"{assignment}:{grade_id} hidden case '{case.case}' does not depend on the grading seed"
        for case, other in zip([c for c in cases if not c.hidden], [c for c in others if not c.hidden]):
            assert _same((case.args, case.kwargs), (other.args, other.kwargs))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_cell_is_planned_and_every_case_passes_the_reference(plans, assignment):
    plan = plans(assignment, 123456789)
    graded = [c.metadata.nbgrader["grade_id"] for c in _source(assignment).cells
              if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")
              and not c.metadata.nbgrader.get("solution")]
    assert list(plan.cells) == graded
    for cases in plan.cells.values():
        assert judge(assignment, cases, [c.expected for c in cases]) is None


def test_a_test_cell_must_pass_the_students_function_by_name():
    source = _source("00_tasks_and_metrics")
    cell = next(c for c in source.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_pixel_accuracy")
    cell.source = cell.source.replace('ex.check("pixel_accuracy", pixel_accuracy', 'ex.check("pixel_accuracy", lambda cm: 1.0', 1)
    with pytest.raises(PlanError, match="by its name"):
        build_plan(source, "00_tasks_and_metrics", 123456789)


def test_the_verdict_explains_missing_errors_and_non_data(plans):
    plan = plans("01_thresholding", 123456789)
    case = plan.cells["test_threshold"][0]
    assert "no result was saved" in "\n".join(judge_case("01_thresholding", case, MISSING))
    assert "not implemented yet" in judge_case("01_thresholding", case, {"t": "error", "type": "NotImplementedError"})[0]
    assert "raised ValueError: bad" in judge_case("01_thresholding", case,
                                                  {"t": "error", "type": "ValueError", "message": "bad"})[0]
    assert "returned a Spy" in judge_case("01_thresholding", case, {"t": "unsupported", "type": "Spy"})[0]
    wrong = ~np.asarray(case.expected)
    assert "wrong answer" in judge_case("01_thresholding", case, wrong)[0]
    hidden = next(c for c in plan.cells["test_threshold"] if c.hidden)
    leak = "\n".join(judge_case("01_thresholding", hidden, {"t": "error", "type": "ValueError", "message": "[[0.25]]"}))
    assert "ValueError" in leak and "0.25" not in leak
    leak = "\n".join(judge_case("01_thresholding", hidden, {"t": "error", "type": "Leak_0_25", "message": ""}))
    assert "Leak_0_25" not in leak and "raised an exception" in leak
    assert "Spy" not in judge_case("01_thresholding", hidden, {"t": "unsupported", "type": "Spy"})[0]
    message = "\n".join(judge_case("01_thresholding", hidden, ~np.asarray(hidden.expected)))
    assert "hidden case" in message and "expected:" not in message


def test_the_data_format_round_trips(tmp_path):
    import torch
    from pycocotools.coco import COCO

    from segedu.data import load_coco, write_coco_instances

    coco = load_coco(write_coco_instances(str(tmp_path / "coco"), n_images=2, seed=3, max_size=128))
    layer = torch.nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bias=False)
    value = (np.arange(6.0).reshape(2, 3), np.float32(2.5), 3, True, None, "mean", [1, (2, 3)], {"a": 1.5},
             torch.ones(2, 2, requires_grad=True), layer, coco)
    (tmp_path / "io").mkdir()
    tag = json.loads(json.dumps(wire.encode(value, str(tmp_path / "io"), "x")))
    back = wire.decode(tag, str(tmp_path / "io"))
    assert _same(back[:8], (value[0], 2.5, 3, True, None, "mean", [1, (2, 3)], {"a": 1.5}))
    assert back[8].requires_grad and _same(back[8], value[8])
    assert isinstance(back[9], torch.nn.ConvTranspose2d) and _same(back[9], layer) and back[9].stride == (2, 2)
    assert isinstance(back[10], COCO) and back[10].getImgIds() == coco.getImgIds()


def test_results_that_are_not_plain_data_are_refused(tmp_path):
    folder = str(tmp_path)
    np.save(tmp_path / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    os.symlink("/etc/passwd", tmp_path / "link.npy")
    np.save(tmp_path / "big.npy", np.zeros(1000))
    for tag in ({"t": "array", "f": "obj.npy"}, {"t": "array", "f": "link.npy"}, {"t": "array", "f": "../x.npy"},
                {"t": "array", "f": "big.npy"}, {"t": "module", "cls": "Sequential"}, {"t": "os.system"},
                json.loads('{"t": "list", "v": ' + '[{"t": "list", "v": ' * 40 + "[]" + "}]" * 40 + "}")):
        with pytest.raises((wire.Malformed, ValueError, OSError)):
            wire.decode(tag, folder, max_bytes=4000)
    assert wire.encode(np.array([object()], dtype=object), folder, "r", result=True)["t"] == "unsupported"
    assert wire.encode("text", folder, "r", result=True)["t"] == "unsupported"


def test_grading_refuses_the_public_or_a_short_seed():
    from segedu.grading import DEFAULT_GRADING_SEED

    for raw in ("", None, str(DEFAULT_GRADING_SEED), "12345", "not a number"):
        with pytest.raises(SystemExit, match="SEGEDU_GRADING_SEED"):
            grade.term_seed(raw)
    assert grade.term_seed(" 73619028451 ") == 73619028451


def test_the_kernel_cannot_import_segedu_or_the_peers():
    assert set(grade.hidden_modules("01_thresholding")) >= {"segedu", "skimage", "cv2"}
    assert "scipy" not in grade.hidden_modules("01_thresholding")     # scipy.ndimage is allowed there
    assert set(grade.hidden_modules("04_transpose_convolution")) >= {"segedu", "torch", "scipy"}
    assert "torch" not in grade.hidden_modules("05_fcn")


def test_pasted_reference_code_is_flagged_and_solutions_are_not():
    import inspect

    from segedu.classical import thresholding
    from segedu.instructor.similarity import close_to_reference

    for assignment in ASSIGNMENTS:
        source = _source(assignment)
        release = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
        assert close_to_reference(fill_in(release, solution_answers(source)), assignment) == []
    release = nbformat.read(ROOT / "exercises" / "01_thresholding" / "01_thresholding.ipynb", as_version=4)
    pasted = inspect.getsource(thresholding.otsu_threshold).replace("hist", "h").replace("centres", "c")
    notebook = fill_in(release, {"otsu_threshold": "from segedu._validation import *\n" + pasted})
    assert close_to_reference(notebook, "01_thresholding") == ["segedu.classical.thresholding.otsu_threshold"]


def test_cache_key_covers_the_package_code(monkeypatch, tmp_path):
    import segedu.grading.plan as plan_module

    course = tmp_path / "course"
    (course / "exercises" / "00_x").mkdir(parents=True)
    (course / "exercises" / "00_x" / "00_x.ipynb").write_text("{}")
    (course / "nbgrader_config.py").write_text("")
    settings = grade.Settings("00_x", "00_x", 30, 1000, "bubblewrap", course, tmp_path, 12345678,
                              tmp_path / "plan.pkl", "plan")
    item = grade.Collected("1", data=b"{}")
    before = grade._cache_key(item, settings)
    monkeypatch.setattr(plan_module, "package_fingerprint", lambda: "changed")
    assert grade._cache_key(item, settings) != before


def test_one_folder_per_student_in_a_zip_stays_one_student(tmp_path):
    archive = tmp_path / "by_folder.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("alice/00_tasks_and_metrics.ipynb", b"{}")
        handle.writestr("bob/00_tasks_and_metrics.ipynb", b"{}")
        handle.writestr("__MACOSX/bob/._00_tasks_and_metrics.ipynb", b"")
    found = {c.student_id for c in grade.collect(archive, "00_tasks_and_metrics")[0]}
    assert found == {"alice", "bob"}


def test_files_that_used_to_stop_the_run_are_read_or_refused():
    with pytest.raises(grade.Unreadable, match="nested too deeply|not valid JSON"):
        grade.read_submission(b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    release = nbformat.read(ROOT / "exercises" / "00_tasks_and_metrics" / "00_tasks_and_metrics.ipynb", as_version=4)
    raw = json.loads(nbformat.writes(release))
    raw["cells"][3]["metadata"]["nbgrader"] = "grade me"
    raw["cells"][4]["metadata"]["nbgrader"] = {"grade_id": ["x"], "grade": True}
    raw["cells"][5]["metadata"] = "none"
    notebook = grade.read_submission(json.dumps(raw).encode())
    normalised, _, _ = grade.normalise(notebook, release)
    assert all(isinstance(c.metadata.get("nbgrader", {}), dict) for c in normalised.cells)


def test_results_are_read_within_a_shared_budget_and_only_as_results(tmp_path):
    np.save(tmp_path / "big.npy", np.ones(1000))
    many = {"t": "list", "v": [{"t": "array", "f": "big.npy"}] * 50}
    with pytest.raises(wire.Malformed, match="larger than"):
        wire.decode(many, str(tmp_path), result=True, budget=[20 * 8128])
    for kind in ({"t": "module", "cls": "Linear", "init": {"in_features": 10 ** 6, "out_features": 10 ** 6}},
                 {"t": "coco", "f": "x.json"}, {"t": "tensor", "f": "big.npy"}, {"t": "dict", "v": []}):
        with pytest.raises(wire.Malformed, match="cannot be"):
            wire.decode(kind, str(tmp_path), result=True, budget=[1 << 30])


def test_student_markdown_becomes_inert_html():
    from segedu.instructor.verdict import sanitise_markdown

    html = sanitise_markdown("[a](&#106;avascript:alert(1)) [b](javascript\\:alert(2)) [c][r]\n\n"
                             "[r]: java&#x73;cript:alert(3)\n\n<script>alert(4)</script> <img src=x onerror=alert(5)>\n\n"
                             "# Report\n\nMean IoU $m < 1$ is **0.8** ![plot](https://example.org/p.png)")
    assert "javascript" not in html.lower().replace("&#106;avascript", "")   # no link target left
    assert "<script" not in html and "onerror" not in html.split("&lt;img")[0]
    assert "<h1" in html and "<strong>0.8</strong>" in html and 'src="https://example.org/p.png"' in html


def test_the_paste_check_survives_huge_or_deep_cells():
    # its speed on such cells is measured by make bench, never asserted here
    from segedu.instructor.similarity import close_to_reference

    release = nbformat.read(ROOT / "exercises" / "01_thresholding" / "01_thresholding.ipynb", as_version=4)
    nested = "\n".join(["\t" * d + f"def f{d}(img, t):" for d in range(90)] + ["\t" * 90 + "x = img + t"] * 3000)
    deep = "x = " + "(" * 5000 + ")" * 5000
    for code in (nested, deep):
        assert close_to_reference(fill_in(release, {"threshold": code}), "01_thresholding") == []


def test_feedback_exporter_matches_nbconvert_and_gives_images_alt_text():
    """The grading workers' HTML exporter skips nbconvert's BeautifulSoup pass: same page text,
    every image still has alternative text, and templates compile once per process."""
    import html as html_module
    import re as re_module

    from nbconvert.exporters import HTMLExporter

    from segedu.instructor.feedback import NO_ALT_TEXT, FeedbackHTMLExporter

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("A figure: <img src='a.png'> and <img src='b.png' alt='a bar'>"),
                      nbformat.v4.new_code_cell("x = 1  # a comment\nprint(x)")]

    def text(page):
        body = re_module.sub(r"<style.*?</style>|<script.*?</script>", "", page, flags=re_module.S)
        return " ".join(html_module.unescape(re_module.sub(r"<[^>]+>", " ", body)).split())

    ours, _ = FeedbackHTMLExporter(template_name="classic").from_notebook_node(notebook)
    theirs, _ = HTMLExporter(template_name="classic").from_notebook_node(notebook)
    assert text(ours) == text(theirs)
    images = re_module.findall(r"<img[^>]*>", ours)
    assert len(images) == 2 and all("alt=" in image for image in images)
    assert f'alt="{NO_ALT_TEXT}"' in images[0] and "a bar" in images[1]
    again, _ = FeedbackHTMLExporter(template_name="classic").from_notebook_node(notebook)
    assert again == ours
