"""Hand-graded report cells (assignment 11) through ``segedu grade`` and nbgrader's real gradebook (issue 17).

One scenario, run once by a module fixture, through the real command line and nbgrader's own
formgrader: three students of ``11_coco_eda`` are graded (a Canvas export to fill); scores are given to
the report cells through nbgrader's :class:`~nbgrader.api.Gradebook` (one student fully, as formgrader's
grade handler writes them) and through formgrader's own REST API in a running Jupyter server (another
student, one cell only); ``segedu grade`` runs again (cached), then with a late resubmission whose report
changed and a new student. Acceptance: the hand-graded points reach grades.csv and the Canvas file only
when the whole report is graded, and no run loses a score a person entered.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from segedu import _course
from segedu.instructor.manual import Report, formgrader
from segedu.instructor.notebooks import fill_in, solution_answers

ROOT = Path(__file__).resolve().parents[1]
A = "11_coco_eda"
RELEASE = nbformat.read(ROOT / "exercises" / A / f"{A}.ipynb", as_version=4)
RELEASE.metadata["segedu"] = {"release": _course.RELEASE}   # as `make release` stamps exercises/
ANSWERS = solution_answers(nbformat.read(ROOT / "solutions" / A / f"{A}.ipynb", as_version=4))
SEED = "535353535353"
COLUMN = "COCO EDA 11_coco_eda (4711)"
REPORT = {"report_literature_review": "### Literature review\n\nFCN, U-Net and DeepLab [1-3]; we chose U-Net.",
          "report_dataset_and_eda": "### Dataset and EDA\n\nMost objects are small; person dominates.",
          "report_method_and_results": "### Method and results\n\nA U-Net at 256x256: 0.41 mIoU."}
HAND = {"report_literature_review": 15, "report_dataset_and_eda": 10, "report_method_and_results": 15,
        "report_writing": 10}
# what a student could put before the instructor's eyes: formgrader's page runs in the instructor's logged-in
# Jupyter, where a script could start a kernel outside every sandbox
SCRIPT = "<script>document.title = 'pwned'</script><img src=x onerror=\"document.title = 'pwned'\">"
SCRIPTED = dict(REPORT, report_dataset_and_eda=REPORT["report_dataset_and_eda"] + "\n\n" + SCRIPT,
                class_frequency="from IPython.display import HTML, Javascript, display\n"
                                "display(HTML(\"<b>bold</b><script>document.title = 'pwned'</script>\"))\n"
                                "display(Javascript(\"document.title = 'pwned'\"))\n")
FULL = {"report_literature_review": 12, "report_dataset_and_eda": 8, "report_method_and_results": 13,
        "report_writing": 7}   # 40 of 50, given to 1001


def _write(folder: Path, name: str, notebook) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)


def _grade(subs: Path, out: Path, *extra: str) -> tuple[str, float]:
    env = dict(os.environ, SEGEDU_GRADING_SEED=SEED)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "segedu.instructor", "--course", str(ROOT), "grade", A, str(subs),
                             "--out", str(out), "--timeout", "10", "--memory-mb", "1000", "--jobs", "2", *extra],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, time.perf_counter() - start


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def _canvas(out: Path) -> dict[str, str]:
    with open(out / "canvas_import.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][-1] == COLUMN
    return {row[1]: row[-1] for row in rows[1:] if row[1]}


def _give(db: Path, student: str, scores: dict) -> None:
    """Scores for report cells, written as formgrader's GradeHandler.put writes them."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}", course_id="segedu") as gradebook:
        for name, score in scores.items():
            grade = gradebook.find_grade(name, A, A, student)
            grade.manual_score, grade.extra_credit = float(score), None
            grade.needs_manual_grade = False
        gradebook.db.commit()


def _grades(db: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}", course_id="segedu") as gradebook:
        notebook = gradebook.find_submission_notebook(A, A, student)
        return {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in notebook.grades}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _formgrader_session(folder: Path) -> dict:
    """A real Jupyter server in the formgrader folder (nbgrader's formgrader extension, as `segedu
    formgrader` starts it in JupyterLab): list the submissions, open two, give 1002 five points for one
    report cell through the REST API formgrader's page uses, and press "generate feedback" for 1001."""
    port, token = _free_port(), "segedu-test-token"
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    args = [sys.executable, "-m", "jupyter", "server", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    server = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def call(path: str, method: str = "GET", body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=60) as handle:
            return handle.read().decode()

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                call("/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    raise AssertionError(f"the Jupyter server did not start: {server.communicate()[1][-3000:]}")
                time.sleep(0.2)
        listed = json.loads(call(f"/formgrader/api/submitted_notebooks/{A}/{A}"))
        ids = {item["student"]: item["id"] for item in listed}
        page = call(f"/formgrader/submissions/{ids['1001']}/")
        scripted = call(f"/formgrader/submissions/{ids['1002']}/")
        grades = json.loads(call(f"/formgrader/api/grades?submission_id={ids['1002']}"))
        grade = next(g for g in grades if g["name"] == "report_literature_review")
        saved = json.loads(call(f"/formgrader/api/grade/{grade['id']}", "PUT",
                                {"manual_score": 5, "extra_credit": None}))
        feedback = json.loads(call(f"/formgrader/api/assignment/{A}/1001/generate_feedback", "POST", {}))
        return dict(listed=listed, page=page, scripted=scripted, saved=saved, feedback=feedback)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    base = tmp_path_factory.mktemp("manual")
    subs, out = base / "download", base / "out"
    _write(subs, f"doejane_1001_5001_{A}.ipynb", fill_in(RELEASE, {**ANSWERS, **REPORT}))
    _write(subs, f"roefred_1002_5002_{A}.ipynb", fill_in(RELEASE, SCRIPTED))   # report and scripts, no code
    _write(subs, f"crasher_1004_5004_{A}.ipynb",   # the kernel dies: nbgrader writes nothing for formgrader
           fill_in(RELEASE, {**ANSWERS, **REPORT, "class_frequency": "import os\nos._exit(1)\n"}))
    export = base / "export.csv"
    export.write_text(f"Student,ID,SIS User ID,SIS Login ID,Section,{COLUMN}\n"
                      "    Points Possible,,,,,60\n"
                      "Doe Jane,1001,s1,jdoe,A,\nRoe Fred,1002,s2,froe,A,\nCrash Carl,1004,s4,ccrash,A,\n"
                      "No Show,1999,s9,nshow,A,\n",
                      encoding="utf-8")
    canvas = ("--lms-gradebook", str(export))
    folder = out / "formgrader"
    steps = {}
    stdout, seconds = _grade(subs, out, *canvas)
    steps["first"] = dict(stdout=stdout, seconds=seconds, rows=_rows(out), canvas=_canvas(out))
    executed = sorted((out / ".work" / "students").glob(f"*/autograded/*/{A}/{A}.ipynb"))
    stamps = {path: path.stat().st_mtime_ns for path in executed}
    # a person grades: 1001's whole report through nbgrader's API, one cell of 1002's in formgrader
    _give(folder / "gradebook.db", "1001", FULL)
    steps["formgrader"] = _formgrader_session(folder)
    stdout, seconds = _grade(subs, out, *canvas)
    steps["graded"] = dict(stdout=stdout, seconds=seconds, rows=_rows(out), canvas=_canvas(out),
                           untouched=all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items()),
                           executed=len(executed))
    # a late resubmission whose literature review changed, and a new student who left the report as released
    late = dict(REPORT, report_literature_review=REPORT["report_literature_review"] + " And SAM.")
    _write(subs, f"doejane_late_1001_5101_{A}.ipynb", fill_in(RELEASE, {**ANSWERS, **late}))
    _write(subs, f"newman_1003_5003_{A}.ipynb", fill_in(RELEASE, dict(ANSWERS)))
    stdout, seconds = _grade(subs, out, *canvas)
    steps["late"] = dict(stdout=stdout, rows=_rows(out), canvas=_canvas(out),
                         grades={s: _grades(folder / "gradebook.db", s) for s in ("1001", "1002", "1003")})
    # the person looks at 1001's changed cell again and saves the same score: the total is final again
    _give(folder / "gradebook.db", "1001", {"report_literature_review": FULL["report_literature_review"]})
    stdout, seconds = _grade(subs, out, *canvas)
    steps["checked"] = dict(stdout=stdout, rows=_rows(out), canvas=_canvas(out))
    return dict(out=out, folder=folder, steps=steps)


@pytest.mark.nbgrader
def test_before_any_hand_grading_no_total_is_given(scenario):
    step = scenario["steps"]["first"]
    rows, canvas = step["rows"], step["canvas"]
    assert set(rows) == {"1001", "1002", "1004"}
    header = list(rows["1001"])
    assert header[:8] == ["student_id", "name", "late", "score", "max_score", "status", "notes", "file"]
    assert header[8:] == ["autograded", "manual"]
    for student, autograded in (("1001", "10"), ("1002", "0")):
        row = rows[student]
        assert row["score"] == "" and row["manual"] == "", row
        assert row["autograded"] == autograded and row["max_score"] == "60", row
        assert row["status"] == "report not graded yet (50 points by hand)", row
        assert canvas[student] == "", "a partial total must not reach Canvas"
    crashed = rows["1004"]
    assert crashed["status"].startswith("kernel crashed") and crashed["score"] == "", crashed
    assert "report not graded (50 points by hand): this submission did not grade" in crashed["status"]
    assert canvas["1004"] == "" and canvas["1999"] == ""
    assert "0 of 3 totals final" in step["stdout"]
    assert "2 reports still to grade by hand (1001, 1002)" in step["stdout"]
    assert "1 report not in formgrader (their status says why): 1004" in step["stdout"]
    assert f"make formgrader OUT={scenario['out']}, then run this command again" in step["stdout"]


@pytest.mark.nbgrader
def test_formgrader_course_holds_every_graded_submission(scenario):
    folder, out = scenario["folder"], scenario["out"]
    config = (folder / "nbgrader_config.py").read_text()
    assert "course_id = 'segedu'" in config and "Execute" not in config and "c.Autograde" not in config
    assert not (folder / "submitted").exists(), "formgrader's autograde must find nothing to run"
    assert (folder / "source" / A / f"{A}.ipynb").exists() and (folder / "release" / A / f"{A}.ipynb").exists()
    for student in ("1001", "1002"):
        copied = folder / "autograded" / student / A / f"{A}.ipynb"
        assert copied.exists()
        own = _grades(out / ".work" / "students" / student / "gradebook.db", student)
        mine = _grades(folder / "gradebook.db", student)
        for name, (auto, _, _) in own.items():   # the autograder's scores, from the student's own gradebook
            assert mine[name][0] == auto, (student, name)
    session = scenario["steps"]["formgrader"]
    assert {item["student"] for item in session["listed"]} == {"1001", "1002"}
    assert all(item["max_score"] == 60 for item in session["listed"])
    assert "we chose U-Net" in session["page"], "formgrader shows the student's executed notebook"
    scripted = session["scripted"]
    assert "Most objects are small" in scripted and "pwned" in scripted, "the grader sees the attempt, escaped"
    assert "<script>document.title" not in scripted and "onerror=" not in scripted
    assert "application/javascript" not in scripted and "<b>bold</b>" not in scripted   # the student's outputs
    assert session["saved"]["manual_score"] == 5 and session["saved"]["needs_manual_grade"] is False
    # formgrader's own feedback button must not give the hidden tests away (nbgrader's default would)
    assert session["feedback"]["success"], session["feedback"]
    assert "BEGIN HIDDEN TESTS" in (folder / "autograded" / "1001" / A / f"{A}.ipynb").read_text()
    html = (folder / "feedback" / "1001" / A / f"{A}.html").read_text(encoding="utf-8")
    assert "we chose U-Net" in html and "HIDDEN TESTS" not in html and "ex.rng(" not in html


@pytest.mark.nbgrader
def test_a_fully_graded_report_reaches_grades_and_canvas(scenario):
    step = scenario["steps"]["graded"]
    rows, canvas = step["rows"], step["canvas"]
    done = rows["1001"]
    assert (done["score"], done["autograded"], done["manual"], done["status"]) == ("50", "10", "40", "ok")
    assert canvas["1001"] == "50"
    partial = rows["1002"]
    assert partial["score"] == "" and partial["manual"] == "5" and partial["autograded"] == "0"
    assert partial["status"] == ("report not graded yet (35 of 50 points by hand: report_dataset_and_eda, "
                                 "report_method_and_results, report_writing)")
    assert canvas["1002"] == "" and canvas["1999"] == ""
    assert "1 of 3 totals final" in step["stdout"] and "1 report still to grade by hand (1002)" in step["stdout"]


@pytest.mark.nbgrader
def test_merging_again_reuses_the_cached_results(scenario):
    step = scenario["steps"]["graded"]
    assert step["executed"] == 2 and step["untouched"], "a re-run with the same download must not autograde again"
    first = scenario["steps"]["first"]["seconds"]
    assert step["seconds"] < first, f"the cached re-run took {step['seconds']:.1f} s, the first run {first:.1f} s"


@pytest.mark.nbgrader
def test_a_late_resubmission_keeps_every_score_a_person_gave(scenario):
    step = scenario["steps"]["late"]
    grades = step["grades"]
    for name, score in FULL.items():
        assert grades["1001"][name][1] == score, name
    assert grades["1002"]["report_literature_review"][1] == 5
    # only the changed cell is marked for another look, nbgrader's own needs_manual_grade
    assert grades["1001"]["report_literature_review"][2] is True
    assert grades["1001"]["report_dataset_and_eda"][2] is False
    rows, canvas = step["rows"], step["canvas"]
    row = rows["1001"]
    assert row["late"] == "yes" and row["score"] == "" and row["manual"] == "40", row
    assert row["status"] == "report changed since it was graded: check it in formgrader (report_literature_review)"
    assert canvas["1001"] == ""
    assert rows["1002"]["manual"] == "5" and rows["1002"]["score"] == ""
    assert rows["1003"]["status"] == "report not graded yet (50 points by hand)"
    assert rows["1003"]["autograded"] == "10" and rows["1003"]["score"] == ""
    assert "1 report changed since graded (1001)" in step["stdout"]
    step = scenario["steps"]["checked"]
    assert step["rows"]["1001"]["score"] == "50" and step["rows"]["1001"]["status"] == "ok"
    assert step["canvas"]["1001"] == "50"


def test_report_status_words():
    report = Report(dict(HAND))
    assert not report.final and report.status() == "report not graded yet (50 points by hand)"
    report.graded = {"report_literature_review": 15.0, "report_writing": 0.0}
    assert report.status() == ("report not graded yet (25 of 50 points by hand: report_dataset_and_eda, "
                               "report_method_and_results)")
    report.graded.update(report_dataset_and_eda=10.0, report_method_and_results=15.0)
    assert report.final and report.status() == "" and report.score == 40
    report.changed = ["report_writing"]
    assert not report.final and "check it in formgrader (report_writing)" in report.status()
    assert not Report(dict(HAND), graded={name: 1.0 for name in HAND}, missing="it did not grade").final


def test_formgrader_without_a_grading_run_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="Run `segedu grade ASSIGNMENT DOWNLOAD --out"):
        formgrader(ROOT, tmp_path, [])
