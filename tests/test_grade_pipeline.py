"""``segedu grade`` end to end, through the real nbgrader command line (issue 6).

One parallel run grades a folder of Canvas-named submissions of ``00_tasks_and_metrics`` (numpy
only, fast): good and bad input, and attempts to cheat. A serial run of a zip with some of the same
submissions must give identical rows; a re-run must be idempotent and lose no grades.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from segedu import _course
from segedu.instructor.grade import collect, read_submission, Unreadable
from segedu.instructor.notebooks import fill_in, solution_answers

pytestmark = pytest.mark.nbgrader

ROOT = Path(__file__).resolve().parents[1]
A = "00_tasks_and_metrics"
RELEASE = nbformat.read(ROOT / "exercises" / A / f"{A}.ipynb", as_version=4)
RELEASE.metadata["segedu"] = {"release": _course.RELEASE}   # as `make release` stamps exercises/
ANSWERS = solution_answers(nbformat.read(ROOT / "solutions" / A / f"{A}.ipynb", as_version=4))
TIMEOUT = 5       # seconds per cell for this run
MEMORY_MB = 1000
SEED = "424242424242"


def _nb(answers=None, **replace):
    answers = dict(ANSWERS if answers is None else answers)
    answers.update(replace)
    return fill_in(RELEASE, answers)


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _bytes(notebook) -> bytes:
    return nbformat.writes(notebook).encode()


def _colab(notebook) -> bytes:
    """As Colab exports it: no nbgrader metadata, no cell ids, outputId fields, colab metadata."""
    raw = json.loads(nbformat.writes(notebook))
    raw["nbformat_minor"] = 0
    raw["metadata"] = {"colab": {"provenance": [], "name": "00_tasks_and_metrics.ipynb"},
                       "kernelspec": {"name": "python3", "display_name": "Python 3"}}
    for cell in raw["cells"]:
        cell.pop("id", None)
        cell["metadata"] = {"id": "x" + str(len(cell["source"])), "colab": {"base_uri": "https://localhost:8080/"},
                            "outputId": "a1b2c3"}
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "old output\n",
                                "metadata": {"outputId": "x"}}]
    return json.dumps(raw).encode()


def _huge(notebook) -> bytes:
    notebook = copy.deepcopy(notebook)
    cell = next(c for c in notebook.cells if _gid(c) == "pixel_accuracy")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 25_000_000)]
    return _bytes(notebook)


def _with_extra_cell(notebook) -> bytes:
    notebook = copy.deepcopy(notebook)
    notebook.cells.insert(3, nbformat.v4.new_code_cell("scratch = confusion_matrix\nprint('trying things')"))
    return _bytes(notebook)


def _edited_and_deleted() -> bytes:
    notebook = _nb(mean_iou="def mean_iou(cm):\n    return 0.5\n",
                   pixel_accuracy="def pixel_accuracy(cm):\n    return 1.0\n")
    notebook.cells = [c for c in notebook.cells if _gid(c) != "test_mean_iou"]
    for cell in notebook.cells:
        if _gid(cell) == "test_pixel_accuracy":
            cell.source = "print('pixel_accuracy: visible test passed')"
    return _bytes(notebook)


def _spy(out: Path, subs: Path) -> str:
    """An answer that looks for the solutions, the gradebooks and other students, and the network."""
    return f'''
import glob, os, socket
patterns = ["../../solutions/**", "../../../solutions/**", "../../../../../course/solutions/**",
            "/**/course/solutions/*/*.ipynb", {str(ROOT / "solutions")!r} + "/**", {str(ROOT)!r} + "/build/**/*.ipynb",
            {str(out)!r} + "/**/gradebook.db", {str(out)!r} + "/.work/students/*/submitted/**", {str(subs)!r} + "/*"]
found = []
for pattern in patterns[:3] + patterns[4:]:
    found += [p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
interfaces = [name for _, name in socket.if_nameindex()]
for path in found:
    if path.endswith(".ipynb") and "00_tasks" in path:
        import json
        for cell in json.load(open(path))["cells"]:
            if "def confusion_matrix" in "".join(cell["source"]):
                exec("".join(cell["source"]).replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
def confusion_matrix(pred, target, num_classes, ignore_index=None):
    raise ValueError(f"FOUND {{found}} INTERFACES {{interfaces}}")
'''


def _submissions(out: Path, subs: Path) -> dict[str, tuple[str, bytes]]:
    """student id -> (Canvas file name, contents)."""
    wrong_cm = ANSWERS["confusion_matrix"].replace("num_classes * target + pred", "num_classes * pred + target")
    return {
        "1001": ("doejane_1001_5001_00_tasks_and_metrics.ipynb", _bytes(_nb())),
        "1002": ("roefred_late_1002_5002_Copy of 00_tasks_and_metrics-1.ipynb", _bytes(RELEASE)),
        "1003": ("brokenjson_1003_5003_00_tasks_and_metrics.ipynb", _bytes(_nb())[:-200]),
        "1004": ("nbfive_1004_5004_00_tasks_and_metrics.ipynb",
                 json.dumps({**json.loads(_bytes(_nb())), "nbformat": 5}).encode()),
        "1005": ("crasher_1005_5005_00_tasks_and_metrics.ipynb",
                 _bytes(_nb(pixel_accuracy="import os\nos._exit(1)\n"))),
        "1006": ("looper_1006_5006_00_tasks_and_metrics.ipynb",
                 _bytes(_nb(mean_iou="def mean_iou(cm):\n    while True:\n        pass\n"))),
        "1007": ("hog_1007_5007_00_tasks_and_metrics.ipynb",
                 _bytes(_nb(dice_coefficient="def dice_coefficient(a, b):\n    hoard = []\n    while True:\n"
                                             "        hoard.append(np.ones(10**7))\n"))),
        "1008": ("editor_1008_5008_00_tasks_and_metrics.ipynb", _edited_and_deleted()),
        "1009": ("extra_1009_5009_00_tasks_and_metrics.ipynb", _with_extra_cell(_nb())),
        "1010": ("colab_1010_5010_00_tasks_and_metrics.ipynb", _colab(_nb())),
        "1011": ("huge_1011_5011_00_tasks_and_metrics.ipynb", _huge(_nb())),
        "1012": ("m\udcfcller_1012_5012_00_tasks_and_metrics.ipynb", _bytes(_nb())),   # latin-1 'ü'
        "1013": ("patcher_1013_5013_00_tasks_and_metrics.ipynb",
                 _bytes(_nb(pixel_accuracy="np.isclose = lambda a, b, **k: np.ones(np.broadcast(a, b).shape, bool)\n"
                                           "np.allclose = lambda *a, **k: True\n"
                                           "def pixel_accuracy(cm):\n    return 0.123\n"))),
        "1014": ("eqtrue_1014_5014_00_tasks_and_metrics.ipynb",
                 _bytes(_nb(mean_accuracy="class Anything(float):\n    def __eq__(self, other):\n        return True\n"
                                          "    __ne__ = lambda self, other: False\n"
                                          "def mean_accuracy(cm):\n    return Anything(-1.0)\n"))),
        "1015": ("blanker_1015_5015_00_tasks_and_metrics.ipynb",
                 _bytes(_nb(dict(RELEASE_STUBS), confusion_matrix=RELEASE_STUBS["confusion_matrix"] +
                            "\nget_ipython().input_transformers_post.append(\n"
                            "    lambda lines: [] if any('ex.check' in l for l in lines) else lines)\n"))),
        "1016": ("spy_1016_5016_00_tasks_and_metrics.ipynb", _bytes(_nb(confusion_matrix=_spy(out, subs)))),
        "1017": ("delegator_1017_5017_00_tasks_and_metrics.ipynb",
                 _bytes(_nb(confusion_matrix="from segedu.metrics import confusion_matrix as cm\n"
                                             "def confusion_matrix(pred, target, num_classes, ignore_index=None):\n"
                                             "    return cm(pred, target, num_classes, ignore_index=ignore_index)\n"))),
        "1018": ("wrongcm_1018_5018_00_tasks_and_metrics.ipynb", _bytes(_nb(confusion_matrix=wrong_cm))),
        "1019": ("oldrelease_1019_5019_00_tasks_and_metrics.ipynb", _bytes(_stamped(_nb(), "v0.0.9"))),
        "1020": ("copier_1020_5020_00_tasks_and_metrics.ipynb", _bytes(_copied(_nb(), "mean_iou", "test_dice_overlap"))),
    }


def _copied(notebook, *grade_ids):
    """Each of these cells copied right below itself (Ctrl+C, Ctrl+V, or JupyterLab's split cell)."""
    notebook = copy.deepcopy(notebook)
    for grade_id in grade_ids:
        index = next(i for i, c in enumerate(notebook.cells) if _gid(c) == grade_id)
        twin = copy.deepcopy(notebook.cells[index])
        twin["id"] = f"copy-{grade_id}"[:60]
        notebook.cells.insert(index + 1, twin)
    return notebook


def _stamped(notebook, release):
    notebook = copy.deepcopy(notebook)
    notebook.metadata["segedu"] = {"release": release}
    return notebook


RELEASE_STUBS = {_gid(c): c.source for c in RELEASE.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
SERIAL_SUBSET = ("1001", "1002", "1010", "1018")


def _write_folder(folder: Path, files) -> None:
    folder.mkdir(parents=True)
    for name, data in files:
        with open(os.path.join(os.fsencode(folder), name.encode("utf-8", "surrogateescape")), "wb") as handle:
            handle.write(data)


def _grade(subs: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, SEGEDU_GRADING_SEED=SEED)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "segedu.instructor", "--course", str(ROOT), "grade", A, str(subs),
                             "--out", str(out), "--timeout", str(TIMEOUT), "--memory-mb", str(MEMORY_MB), *extra],
                            capture_output=True, text=True, env=env, timeout=900)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout + result.stderr
    return result, seconds


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grade")
    subs, out = base / "canvas download", base / "out"
    files = _submissions(out, subs)
    _write_folder(subs, files.values())
    result, seconds = _grade(subs, out, "--jobs", "2")
    print(f"\nparallel (--jobs 2): {len(files)} students in {seconds:.1f} s")
    return dict(base=base, subs=subs, out=out, files=files, stdout=result.stdout, rows=_rows(out), seconds=seconds)


def test_one_row_per_student_and_summary(graded):
    rows = graded["rows"]
    assert set(rows) == set(graded["files"])
    for row in rows.values():
        assert row["status"], row
        assert float(row["max_score"]) == 10
    stdout = graded["stdout"]
    assert f"graded {len(rows)} students" in stdout and "mean score" in stdout
    for student, row in rows.items():
        if row["status"] != "ok":
            assert f"{student} (" in stdout and row["status"] in stdout


def test_solution_full_marks_and_feedback_hides_hidden_tests(graded):
    rows, out = graded["rows"], graded["out"]
    assert rows["1001"]["status"] == "ok" and float(rows["1001"]["score"]) == 10
    pages = sorted((out / "feedback").glob(f"*/{A}/{A}.html"))
    assert {p.parts[-3] for p in pages} >= {"1001", "1002", "1018"}
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "HIDDEN TESTS" not in html and "ex.rng(" not in html, page


def test_renamed_late_notebook_is_collected_and_flagged(graded):
    row = graded["rows"]["1002"]
    assert row["late"] == "yes" and "late" in row["notes"]
    assert row["status"] == "ok" and float(row["score"]) == 0


def test_malformed_json_and_wrong_nbformat(graded):
    rows = graded["rows"]
    assert rows["1003"]["status"].startswith("malformed notebook") and float(rows["1003"]["score"]) == 0
    assert rows["1004"]["status"].startswith("wrong nbformat")


def test_kernel_crash_is_reported(graded):
    assert "kernel crashed" in graded["rows"]["1005"]["status"]


def test_infinite_loop_costs_only_its_cell(graded):
    row = graded["rows"]["1006"]
    assert "time limit" in row["status"] and "test_mean_iou" in row["status"]
    assert float(row["score"]) == 8


def test_memory_blowup_is_killed(graded):
    assert "memory limit exceeded" in graded["rows"]["1007"]["status"]


def test_deleted_edited_and_extra_cells(graded):
    rows = graded["rows"]
    status = rows["1008"]["status"]
    assert "deleted" in status and "test_mean_iou" in status
    assert "edited" in status and "test_pixel_accuracy" in status
    assert float(rows["1008"]["score"]) == 10 - 2 - 1
    # cells of one's own cost nothing: a note, not a status that asks for the instructor's attention
    assert rows["1009"]["status"] == "ok" and "1 extra code cell" in rows["1009"]["notes"]
    assert float(rows["1009"]["score"]) == 10


def test_copied_graded_cells_grade_the_last_copy(graded):
    """A copied cell keeps its grade id; nbgrader's own deduplication then crashes the whole notebook
    (KeyError 'grade_id', jupyter/nbgrader#1083): the grader deduplicates first, keeping the last copy."""
    row = graded["rows"]["1020"]
    assert float(row["score"]) == 10, row
    assert "cells duplicated (the last copy graded): mean_iou, test_dice_overlap" in row["status"], row


def test_colab_export_restored_and_graded(graded):
    row = graded["rows"]["1010"]
    assert row["status"] == "ok" and float(row["score"]) == 10
    assert "Colab" in row["notes"] and "restored" in row["notes"]


def test_a_submission_from_another_release_is_noted_and_graded(graded):
    """generate_assignment stamps the release into the notebook; the grader notes a different or missing
    stamp (Colab's export here drops notebook metadata) and grades the submission all the same."""
    rows, release = graded["rows"], _course.RELEASE
    assert float(rows["1019"]["score"]) == 10
    assert f"made from release v0.0.9, graded with {release}" in rows["1019"]["notes"]
    assert f"made from release unknown, graded with {release}" in rows["1010"]["notes"]
    assert "made from release" not in rows["1001"]["notes"], "the current release's stamp needs no note"
    generated = nbformat.read(graded["out"] / ".work" / "course" / "exercises" / A / f"{A}.ipynb", as_version=4)
    assert generated.metadata["segedu"]["release"] == release


def test_huge_output_and_non_utf8_name(graded):
    rows = graded["rows"]
    assert float(rows["1011"]["score"]) == 10 and "large file" in rows["1011"]["notes"]
    assert rows["1012"]["status"] == "ok" and float(rows["1012"]["score"]) == 10
    assert "\ufffd" in rows["1012"]["name"]


def test_patched_numpy_cannot_pass_a_wrong_answer(graded):
    row = graded["rows"]["1013"]
    assert float(row["score"]) == 10 - 1, row   # test_pixel_accuracy lost: the verdict is not in the kernel


def test_eq_always_true_is_refused(graded):
    row = graded["rows"]["1014"]
    assert float(row["score"]) == 9   # test_mean_accuracy lost: a result is data, not an object


def test_input_transformer_blanking_tests_is_neutralised(graded):
    row = graded["rows"]["1015"]
    assert float(row["score"]) == 0, row


def test_isolation_hides_solutions_gradebooks_others_and_network(graded):
    row = graded["rows"]["1016"]
    assert float(row["score"]) == 10 - 3, row
    page = graded["out"] / "feedback" / "1016" / A / f"{A}.html"
    html = page.read_text(encoding="utf-8")
    assert "FOUND []" in html, html[-2000:]
    if "isolation: bubblewrap" in graded["stdout"]:
        assert re.search(r"INTERFACES \[((&#39;|')lo(&#39;|'))?\]", html)   # loopback at most


def test_delegating_to_the_reference_earns_nothing(graded):
    row = graded["rows"]["1017"]
    assert float(row["score"]) == 10 - 3


def test_serial_equals_parallel_and_rerun_is_idempotent(graded, tmp_path):
    files = graded["files"]
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for student in SERIAL_SUBSET:
            name, data = files[student]
            handle.writestr(f"submissions/{name}", data)
    export = tmp_path / "export.csv"
    export.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (77),Tasks and metrics 00_tasks_and_metrics (4242)\n"
        "    Points Possible,,,,,5,10\n"
        "Doe Jane,1001,s1,jdoe,A,4,\nRoe Fred,1002,s2,froe,A,3,\nNo Show,1999,s9,nshow,A,5,\n", encoding="utf-8")
    out = tmp_path / "serial"
    result, seconds = _grade(archive, out, "--jobs", "1", "--lms-gradebook", str(export))
    print(f"\nserial (--jobs 1): {len(SERIAL_SUBSET)} students in {seconds:.1f} s")
    serial, parallel = _rows(out), graded["rows"]
    assert set(serial) == set(SERIAL_SUBSET)
    for student in SERIAL_SUBSET:
        for column in ("score", "max_score", "status", "late", "name"):
            assert serial[student][column] == parallel[student][column], (student, column)
    # Canvas: the assignment's column filled by ID, a file Canvas imports
    with open(out / "canvas_import.csv", newline="") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                         "Tasks and metrics 00_tasks_and_metrics (4242)"]
    assert canvas[1][0].strip() == "Points Possible"
    assert canvas[2][-1] == "10" and canvas[3][-1] == "0" and canvas[4][-1] == ""
    # re-run: reuses results, same grades.csv; a smaller download loses no grades
    before = (out / "grades.csv").read_text()
    _, again = _grade(archive, out, "--jobs", "2")
    assert (out / "grades.csv").read_text() == before
    assert again < seconds
    smaller = tmp_path / "smaller.zip"
    with zipfile.ZipFile(smaller, "w") as handle:
        name, data = files["1001"]
        handle.writestr(name, data)
    _grade(smaller, out)
    assert (out / "grades.csv").read_text() == before


def test_grader_never_writes_into_the_repository(graded):
    status = subprocess.run(["git", "status", "--porcelain", "--ignored", "solutions", "exercises"], cwd=ROOT,
                            capture_output=True, text=True).stdout
    assert "gradebook" not in status and "autograded" not in status and "submitted" not in status


def test_collect_canvas_names(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("smithann_late_77_900_Copy of 00_tasks_and_metrics.ipynb", b"{}")
        handle.writestr("smithann_late_77_901_00_tasks_and_metrics-2.ipynb", b"{}")
        handle.writestr("smithann_late_77_902_notes.ipynb", b"{}")
        handle.writestr("leebo_88_903_whatever.ipynb", b"{}")
        handle.writestr("readme.txt", b"")
    found = {c.student_id: c for c in collect(archive, A)[0]}
    assert set(found) == {"77", "88"}
    assert found["77"].late and found["77"].file.startswith("smithann_late_77_901")
    assert "3 notebooks" in found["77"].notes[0]
    assert found["88"].file == "leebo_88_903_whatever.ipynb"
    with pytest.raises(Unreadable):
        read_submission(b"\x00\xff not json")


#: the submissions a student's own check can judge: honest work, mistakes and edits (not attacks on the
#: grader, which no check in the student's own Python can see through; not the memory hog, which would
#: fill this machine's memory without the grader's sandbox)
CHECKED = ("1001", "1002", "1005", "1006", "1008", "1009", "1010", "1012", "1017", "1018", "1019", "1020")


def test_the_students_check_agrees_with_the_grader(graded, tmp_path):
    """``segedu.check_submission()`` on the files the grader graded: every test it reports failing lost
    points at grading time, every cell the grader docked is reported, and the clean ones are "ready"."""
    from segedu.submission import check_submission

    rows, files, out = graded["rows"], graded["files"], graded["out"]
    for student in CHECKED:
        name, data = files[student]
        path = tmp_path / f"{student}.ipynb"
        path.write_bytes(data)
        report = check_submission(path, assignment=A, timeout=TIMEOUT, quiet=True)
        result = json.loads((out / ".work" / "students" / student / "result.json").read_text())
        docked = {cell for cell, (got, best) in result["cells"].items() if got < best}
        reported = {g for f in report.problems if f.kind == "test" for g in f.grade_ids}
        kinds = {f.kind for f in report.problems}
        why = f"{student}: {report}\ngrader: {rows[student]}"
        if "kernel crashed" in rows[student]["status"]:
            assert kinds == {"crash"} or "crash" in kinds, why
            continue
        assert reported <= docked, why            # every failing test it reports costs points
        if student != "1017":                     # the delegator passes visible tests with the reference ...
            assert docked <= reported, why        # ... and the grader docks every cell it reports
        assert report.ready == (float(rows[student]["score"]) == 10 and rows[student]["status"] == "ok"), why
    # the reasons, in the grader's words too
    assert "1017" in CHECKED and float(rows["1017"]["score"]) < 10


def test_the_students_check_names_the_reason(graded, tmp_path):
    from segedu.submission import check_submission

    def check(student):
        path = tmp_path / f"{student}.ipynb"
        path.write_bytes(graded["files"][student][1])
        return {f.kind: f for f in check_submission(path, assignment=A, run_tests=False, quiet=True).problems}

    edited = check("1008")
    assert edited["deleted"].grade_ids == ("test_mean_iou",) and edited["edited"].grade_ids == ("test_pixel_accuracy",)
    assert "segedu" in check("1017")["import"].message
    assert check("1019") == {}, "another release's stamp costs nothing: advice"
    assert check("1010") == {} and check("1009") == {}
    assert check("1020")["duplicated"].grade_ids == ("mean_iou", "test_dice_overlap")


def test_the_check_cell_does_nothing_while_grading(graded):
    autograded = graded["out"] / ".work" / "students" / "1001" / "autograded" / "1001" / A / f"{A}.ipynb"
    [cell] = [c for c in nbformat.read(autograded, as_version=4).cells if _gid(c) == "check_submission"]
    assert "check_submission(" not in cell.source.replace("segedu.check_submission()", "")
    assert not cell.outputs
