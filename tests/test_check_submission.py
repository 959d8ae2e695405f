"""``segedu.check_submission()``: the grader's rules, shown to a student before they submit (issue 17).

The rules themselves (``segedu.submission.rules``) are checked here on notebooks built from the real
releases; ``tests/test_grade_pipeline.py`` and the nbgrader round trips check that the student's check
and real nbgrader agree on the grading tests' broken submissions.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat
import pytest

from segedu.instructor.course import manifests, stale_manifests
from segedu.instructor.notebooks import assignment_ids, fill_in, solution_answers
from segedu.submission import SubmissionReport, check_submission, findings_from_run
from segedu.submission.rules import (CHECK_CELL_ID, as_graded, assignment_findings, import_findings, load_manifests,
                                     manifest_for, release_manifest, structure_findings, which_assignment)

ROOT = Path(__file__).resolve().parents[1]
A = "01_thresholding"
MANIFESTS = load_manifests()


def _release(assignment=A):
    return nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)


def _solved(assignment=A):
    solution = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return fill_in(_release(assignment), solution_answers(solution))


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _kinds(findings, problem=True):
    return sorted(f.kind for f in findings if f.problem == problem)


def _structure(notebook, assignment=A):
    return structure_findings(notebook, manifest_for(assignment, MANIFESTS))


def test_the_shipped_manifests_are_those_of_the_committed_releases():
    assert not stale_manifests(ROOT), "segedu/submission/releases.json is stale: run `make release`"
    assert set(MANIFESTS) == set(assignment_ids(ROOT)) == set(manifests(ROOT))
    for assignment, manifest in MANIFESTS.items():
        assert manifest["release"] == _release(assignment).metadata["segedu"]["release"]


@pytest.mark.parametrize("assignment", assignment_ids(ROOT))
def test_every_exercise_ends_with_the_check(assignment):
    last = _release(assignment).cells[-1]
    meta = last.metadata["nbgrader"]
    assert meta["grade_id"] == CHECK_CELL_ID and meta["locked"] and not meta["grade"] and not meta["solution"]
    assert re.search(rf"check_submission\(assignment=\"{assignment}\"\)\s*$", last.source), last.source
    assert last.metadata.get("editable") is False and last.metadata.get("deletable") is False


@pytest.mark.parametrize("assignment", assignment_ids(ROOT))
def test_a_clean_notebook_has_no_finding(assignment):
    solved = _solved(assignment)
    assert _structure(solved, assignment) == []
    assert assignment_findings(solved, assignment, MANIFESTS) == []
    assert which_assignment(solved, MANIFESTS) == assignment
    assert which_assignment(_release(assignment), MANIFESTS) == assignment


def test_deleted_test_report_and_answer_cells():
    notebook = _solved()
    notebook.cells = [c for c in notebook.cells if _gid(c) not in ("test_otsu_bimodal", "adaptive_threshold")]
    findings = _structure(notebook)
    deleted = {f.grade_ids: f for f in findings if f.kind == "deleted"}
    assert set(deleted) == {("test_otsu_bimodal",), ("adaptive_threshold",)}
    assert deleted[("test_otsu_bimodal",)].points == 2 and "puts the original back" in deleted[("test_otsu_bimodal",)].message
    assert "does not put them back" in deleted[("adaptive_threshold",)].message
    assert all(f.problem and f.fix for f in findings)
    # the grader's statuses come from the same findings
    assert "test cells deleted (restored and graded): test_otsu_bimodal" in [f.status for f in findings]

    report = nbformat.read(ROOT / "exercises" / "11_coco_eda" / "11_coco_eda.ipynb", as_version=4)
    report.cells = [c for c in report.cells if _gid(c) != "report_literature_review"]
    [finding] = [f for f in _structure(report, "11_coco_eda") if f.kind == "deleted"]
    assert finding.grade_ids == ("report_literature_review",) and finding.points == 15
    assert "EMPTY" in finding.message


def test_a_copied_cell_keeps_its_grade_id_and_only_the_last_copy_is_graded():
    notebook = _solved()
    index = next(i for i, c in enumerate(notebook.cells) if _gid(c) == "otsu_threshold")
    stub = copy.deepcopy(_release().cells[index])
    notebook.cells.insert(index + 1, stub)   # the student's answer above, a copy of the stub below
    [finding] = _structure(notebook)
    assert finding.kind == "duplicated" and finding.grade_ids == ("otsu_threshold",)
    graded = as_graded(notebook, manifest_for(A, MANIFESTS))
    answers = [c for c in graded.cells if _gid(c) == "otsu_threshold"]
    assert len(answers) == 1 and "NotImplementedError" in answers[0].source, "the last copy keeps the grade id"


def test_changed_and_retyped_cells():
    notebook = _solved()
    for cell in notebook.cells:
        if _gid(cell) == "test_threshold":
            cell.source = "print('threshold: visible test passed')"
    index = next(i for i, c in enumerate(notebook.cells) if _gid(c) == "test_adaptive_mean")
    typed_again = nbformat.v4.new_code_cell(notebook.cells[index].source + "\n# typed again")
    notebook.cells[index] = typed_again        # a new cell in place of the locked one ...
    notebook.cells.insert(3, nbformat.v4.new_code_cell("x = 1"))   # ... in a notebook of another length
    retyped = next(c for c in notebook.cells if _gid(c) == "test_adaptive_offset")
    retyped.cell_type = "raw"
    retyped.pop("outputs"), retyped.pop("execution_count")
    kinds = {f.kind: f for f in _structure(notebook)}
    assert kinds["edited"].grade_ids == ("test_threshold",)
    assert kinds["deleted"].grade_ids == ("test_adaptive_mean",)
    assert "test_adaptive_mean" in [g for f in _structure(notebook) if f.kind == "retyped" for g in f.grade_ids]
    assert "test_adaptive_offset" in [g for f in _structure(notebook) if f.kind == "retyped" for g in f.grade_ids]
    # what the grader runs: the released sources and types, the deleted test back after its answer
    graded = as_graded(notebook, manifest_for(A, MANIFESTS))
    released = {_gid(c): c for c in _release().cells if _gid(c)}
    for cell in graded.cells:
        if _gid(cell) and released[_gid(cell)].metadata["nbgrader"]["locked"]:
            assert cell.source == released[_gid(cell)].source and cell.cell_type == released[_gid(cell)].cell_type
    order = [_gid(c) for c in graded.cells if _gid(c)]
    assert order == [_gid(c) for c in _release().cells if _gid(c) and _gid(c) != CHECK_CELL_ID]


def test_another_exercise_and_another_release():
    edges = _solved("02_edges")
    [finding] = assignment_findings(edges, A, MANIFESTS)
    assert finding.kind == "assignment" and "02_edges" in finding.message and finding.problem
    old = _solved()
    old.metadata["segedu"] = {"release": "v0.0.9"}
    [finding] = assignment_findings(old, A, MANIFESTS)
    assert finding.kind == "release" and "v0.0.9" in finding.message
    old.metadata.pop("segedu")   # a Colab export has no stamp: nothing to say
    assert assignment_findings(old, A, MANIFESTS) == []


def test_a_colab_export_and_cells_of_ones_own_are_advice_only():
    notebook = _solved()
    for cell in notebook.cells:
        cell.metadata = {"id": "x"}
    notebook.cells.insert(3, nbformat.v4.new_code_cell("print(threshold(np.eye(3), 0.5))"))
    findings = _structure(notebook)
    assert _kinds(findings) == [] and _kinds(findings, problem=False) == ["extra", "restored"]


def test_answers_that_import_what_the_grader_hides():
    from segedu.submission.rules import hidden_modules

    notebook = _solved()
    for cell in notebook.cells:
        if _gid(cell) == "otsu_threshold":
            cell.source = "from skimage.filters import threshold_otsu\n" + cell.source
    notebook.cells.insert(3, nbformat.v4.new_code_cell("import matplotlib.pyplot as plt"))
    findings = import_findings(notebook, manifest_for(A, MANIFESTS), hidden_modules(A))
    problems = [f for f in findings if f.problem]
    assert [f.grade_ids for f in problems] == [("skimage",)] and "otsu_threshold" in problems[0].message
    assert [f.problem for f in findings] == [True], "a cell of one's own: the check's run shows what fails there"
    assert import_findings(_solved(), manifest_for(A, MANIFESTS), hidden_modules(A)) == []


def test_the_manifest_is_what_the_grader_compares_with():
    release = _release()
    assert release_manifest(release, A) == MANIFESTS[A]
    json.dumps(MANIFESTS[A])   # plain JSON, shipped as package data


def test_findings_from_a_run():
    """Test cells are judged by their outputs, as nbgrader does."""
    notebook = as_graded(_solved(), manifest_for(A, MANIFESTS))
    for number, cell in enumerate(notebook.cells, 1):
        if cell.cell_type == "code":
            cell.execution_count = number
            if _gid(cell) == "test_otsu_bimodal":
                cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="otsu: wrong",
                                                       traceback=[])]
            if _gid(cell) == "test_adaptive_mean":
                cell.outputs = [nbformat.v4.new_output("error", ename="CellTimeoutError", evalue="30 s",
                                                       traceback=[])]
    problems, advice, passed = findings_from_run(notebook, manifest_for(A, MANIFESTS))
    assert [(f.grade_ids, f.points) for f in problems] == [(("test_otsu_bimodal",), 2), (("test_adaptive_mean",), 2)]
    assert "otsu: wrong" in problems[0].message and "longer than" in problems[1].message
    assert len(passed) == 4 and not advice


def test_paths_that_are_not_notebooks_get_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Pass the path"):
        check_submission(tmp_path / "missing.ipynb")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable notebook"):
        check_submission(broken)
    with pytest.raises(ValueError, match="No exercise '99_nothing'"):
        check_submission(_write(tmp_path, _solved()), assignment="99_nothing")


def _write(folder: Path, notebook, name=f"{A}.ipynb") -> Path:
    path = folder / name
    nbformat.write(notebook, path)
    return path


def test_outside_jupyter_it_says_how_to_pass_the_path(capsys, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert check_submission(assignment=A) is None
    assert f"check_submission('{A}.ipynb')" in capsys.readouterr().out


def test_jupyter_names_the_notebook_it_runs(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path, _solved())
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    report = check_submission(assignment=A, run_tests=False)
    assert isinstance(report, SubmissionReport) and report.ready and report.source == path.name
    assert "Ready to submit." in capsys.readouterr().out


def test_cells_run_but_not_saved_are_advice(tmp_path, monkeypatch, capsys):
    """JupyterLab's kernel knows what ran; the check reads the saved file, and says when they differ."""
    import segedu.submission as submission

    solved = _solved()
    path = _write(tmp_path, solved)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    answer = next(c.source for c in solved.cells if _gid(c) == "threshold")
    monkeypatch.setattr(submission, "_recent_inputs", lambda count=6: [answer, "x = 1 + 1"])
    report = check_submission(assignment=A, run_tests=False)
    [unsaved] = [f for f in report.advice if f.kind == "unsaved"]
    assert unsaved.message.startswith("1 of the cells you ran last is not in the saved file") and report.ready
    monkeypatch.setattr(submission, "_recent_inputs", lambda count=6: [answer])
    assert not [f for f in check_submission(assignment=A, run_tests=False).advice if f.kind == "unsaved"]


def test_inside_its_own_run_it_does_nothing(monkeypatch):
    from segedu.submission import CHECKING_ENV

    monkeypatch.setenv(CHECKING_ENV, "1")
    assert check_submission("/does/not/matter.ipynb") is None


class _FakeColab:
    """``google.colab``: ``_message.blocking_request`` answers with the notebook, or fails; ``files.upload``."""

    def __init__(self, notebook, answers: bool):
        import types

        self.requests = []

        def blocking_request(kind, request="", timeout_sec=None):
            self.requests.append(kind)
            if not answers:
                raise TimeoutError("no reply from the front end")
            return {"ipynb": json.loads(nbformat.writes(notebook))}

        self.package = types.ModuleType("google.colab")
        self.package._message = types.SimpleNamespace(blocking_request=blocking_request)
        self.package.files = types.SimpleNamespace(upload=lambda: {"Copy of 01.ipynb": nbformat.writes(notebook).encode()})

    def install(self, monkeypatch):
        import sys
        import types

        google = types.ModuleType("google")
        google.colab = self.package
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", self.package)
        monkeypatch.setitem(sys.modules, "google.colab._message", self.package._message)


@pytest.mark.parametrize("answers", [True, False], ids=["notebook-api", "upload-fallback"])
def test_in_colab_it_reads_the_open_notebook_or_asks_for_the_file(monkeypatch, capsys, answers):
    notebook = _solved()
    notebook.cells = [c for c in notebook.cells if _gid(c) != "test_threshold"]
    colab = _FakeColab(notebook, answers)
    colab.install(monkeypatch)
    report = check_submission(run_tests=False)
    assert colab.requests == ["get_ipynb"]
    assert report.assignment == A and [f.grade_ids for f in report.problems] == [("test_threshold",)]
    out = capsys.readouterr().out
    assert ("Download it" in out) != answers


# ----------------------------------------------------------------------------- runs in a real kernel

def _answers(assignment=A):
    return solution_answers(nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4))


def _check(tmp_path, notebook, **options):
    return check_submission(_write(tmp_path, notebook), assignment=A, quiet=True, **options)


@pytest.mark.notebooks
def test_the_run_hides_what_the_grader_hides(tmp_path):
    """A setup cell that now starts with a hidden import stops before it defines np, at grading time and
    so here; an answer that imports the library function it re-implements fails here as there."""
    setup_first = _solved()
    for cell in setup_first.cells:
        if cell.source.startswith("import numpy as np"):
            cell.source = "import matplotlib.pyplot as plt\n" + cell.source
    report = _check(tmp_path, setup_first)
    assert not report.passed and len([f for f in report.problems if f.kind == "test"]) == 6, report
    assert any("No module named 'matplotlib' at grading time" in f.message for f in report.advice), report

    delegating = fill_in(_release(), {**_answers(), "otsu_threshold": "def otsu_threshold(img, nbins=256):\n"
                                      "    from skimage.filters import threshold_otsu\n"
                                      "    return threshold_otsu(img, nbins=nbins)\n"})
    report = _check(tmp_path, delegating)
    failing = {g for f in report.problems if f.kind == "test" for g in f.grade_ids}
    assert failing == {"test_otsu_bimodal", "test_otsu_real_image"}, report
    assert all("No module named 'skimage' at grading time" in f.message for f in report.problems), report
    # the solution's own imports of allowed modules (scipy.ndimage here) and the tests' segedu.grading pass
    assert _check(tmp_path, _solved()).ready


@pytest.mark.notebooks
def test_a_kernel_that_dies_or_eats_memory_costs_the_whole_notebook(tmp_path):
    answers = _answers()
    doc = '"""Foreground where the intensity is strictly above t."""'
    exits = fill_in(_release(), {**answers, "threshold": answers["threshold"].replace(doc, doc + "\n    import os\n"
                                                                                                   "    os._exit(3)")})
    [finding] = _check(tmp_path, exits).problems
    assert finding.kind == "crash" and "while running test_threshold" in finding.message, finding
    hoards = fill_in(_release(), {**answers, "threshold": answers["threshold"].replace(
        doc, doc + "\n    hoard = [np.ones(10**7) for _ in range(60)]")})
    [finding] = _check(tmp_path, hoards, memory_mb=300).problems
    assert "more than 300 MB" in finding.message and "test_threshold" in finding.message, finding


@pytest.mark.notebooks
def test_a_slow_cell_is_named_while_it_runs(tmp_path, capsys):
    answers = _answers()
    slow = fill_in(_release(), {**answers, "threshold": "import time\n" + answers["threshold"].replace(
        "def threshold(img, t):\n", "def threshold(img, t):\n    time.sleep(14)\n")})
    report = check_submission(_write(tmp_path, slow), assignment=A, timeout=12)
    out = capsys.readouterr().out
    assert "still running test_threshold after 10 s" in out, out
    assert [f.grade_ids for f in report.problems] == [("test_threshold",)] and "longer than" in report.problems[0].message
