"""``segedu grade``: autograde an LMS download of one assignment and write grades.csv.

Pipeline (all work happens under ``<OUT>``; the repository's folders are never written):

1. ``<OUT>/.work/course``: a :class:`~.nbgrader_run.CourseCopy` where ``nbgrader generate_assignment``
   makes the release and a gradebook that knows the assignment (once).
2. Every file of the download is collected (Canvas names ``lastfirst[_late]_userid_attachid_name[-N].ipynb``;
   renamed notebooks are collected too), read leniently and normalised: Colab exports get their
   nbgrader cell metadata back by matching cells to the release, outputs are dropped.
3. Each student is graded on their own in ``<OUT>/.work/students/<id>``: a copy of the gradebook,
   the one submission, no ``solutions/``, and a kernel in the sandbox of :mod:`.sandbox`. The real
   ``nbgrader autograde`` and ``nbgrader generate_feedback`` run there, in parallel over students.
   A watchdog kills a kernel over the memory limit, and a wall-clock limit stops a stuck run.
4. Scores are read from each gradebook, checked (test cells that printed nothing, tampering,
   restored cells), cached in ``result.json`` (re-runs reuse them), and merged into
   ``<OUT>/grades.csv`` and ``<OUT>/feedback/``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import sandbox
from .nbgrader_run import CourseCopy, Scores
from .notebooks import notebook_environment

OK = "ok"
CACHE_VERSION = 1
CANVAS_NAME = re.compile(
    r"^(?P<name>[^_]+)(?P<late>_late)?_(?P<userid>\d+)_(?P<attach>\d+)_(?P<file>.+?)(?:-(?P<n>\d+))?\.ipynb$",
    re.I)
# Student code that may subvert the checks; a hit does not cost points but asks for a person's review.
SUSPICIOUS = {
    "input_transformers": "IPython input transformers",
    "ast_transformers": "IPython AST transformers",
    "events.register": "IPython event hooks",
    "setprofile": "sys.setprofile",
    "settrace": "sys.settrace",
    "builtins": "patching builtins",
    "segedu.grading": "touches segedu.grading",
    "_compare": "touches the comparators",
    "os._exit": "os._exit",
    "solutions": "mentions solutions/",
    "gradebook": "mentions the gradebook",
    "__eq__": "defines __eq__",
}
NUMPY_PATCH = re.compile(r"^\s*(?:np|numpy)(?:\.\w+)+\s*=", re.M)


@dataclass
class Collected:
    """One student's submission as found in the download."""

    student_id: str
    name: str = ""
    late: bool = False
    file: str = ""
    data: bytes = b""
    notes: list = field(default_factory=list)


@dataclass
class Result:
    student_id: str
    name: str
    late: bool
    file: str
    score: float
    max_score: float
    status: str
    notes: str = ""
    cells: dict = field(default_factory=dict)
    key: str = ""


# ----------------------------------------------------------------------------- collecting

def _display_name(raw) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _safe_id(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")
    return text or "unnamed"


def _entries(submissions: Path):
    """(display name, bytes) of every notebook in a zip or a folder (recursively)."""
    submissions = Path(submissions)
    if zipfile.is_zipfile(submissions):
        with zipfile.ZipFile(submissions) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                name = info.filename.rsplit("/", 1)[-1]
                if name.lower().endswith(".ipynb") and not name.startswith("."):
                    yield name, archive.read(info)
        return
    if not submissions.is_dir():
        raise SystemExit(f"{submissions} is neither a zip file nor a folder.")
    for dirpath, dirnames, filenames in os.walk(os.fsencode(submissions)):
        dirnames[:] = [d for d in dirnames if not d.startswith(b".")]
        for filename in sorted(filenames):
            if filename.lower().endswith(b".ipynb") and not filename.startswith(b"."):
                path = os.path.join(dirpath, filename)
                with open(path, "rb") as handle:
                    data = handle.read()
                parent = os.path.relpath(dirpath, os.fsencode(submissions))
                yield _display_name(filename), data, (None if parent == b"." else _display_name(parent))


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def collect(submissions: Path, assignment: str) -> tuple[list[Collected], list[str]]:
    """One :class:`Collected` per student, and warnings about skipped files."""
    by_student: dict[str, list[tuple]] = {}
    warnings = []
    for entry in _entries(submissions):
        name, data = entry[0], entry[1]
        parent = entry[2] if len(entry) > 2 else None
        match = CANVAS_NAME.match(name)
        if match:
            student, who, late = match["userid"], match["name"], bool(match["late"])
            order = (int(match["attach"]), int(match["n"] or 0))
            stem = match["file"]
        elif parent:   # <student>/<notebook>.ipynb
            student, who, late, order, stem = _safe_id(parent), parent, False, (0, 0), name[:-6]
        else:          # <student>.ipynb
            student, who, late, order, stem = _safe_id(name[:-6]), name[:-6], False, (0, 0), name[:-6]
        by_student.setdefault(student, []).append((order, name, data, who, late, stem))
    collected = []
    wanted = _key(assignment)
    for student, files in sorted(by_student.items()):
        # prefer the notebook named after the assignment ("Copy of 01_thresholding" counts), then the newest
        files.sort(key=lambda f: (wanted in _key(f[5]), f[0]))
        order, name, data, who, late, _ = files[-1]
        item = Collected(student, who, late, name, data)
        if len(files) > 1:
            item.notes.append(f"{len(files)} notebooks submitted; graded {name}")
        if wanted not in _key(files[-1][5]):
            item.notes.append(f"file renamed ({name})")
        collected.append(item)
    return collected, warnings


# ----------------------------------------------------------------------------- normalising

class Unreadable(Exception):
    pass


def _nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader") or {}


def read_submission(data: bytes):
    """The notebook (nbformat 4) from raw bytes, or :class:`Unreadable` with the reason."""
    import nbformat

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise Unreadable(f"malformed notebook: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        raise Unreadable("malformed notebook: no nbformat version")
    if raw["nbformat"] not in (3, 4):
        raise Unreadable(f"wrong nbformat: version {raw['nbformat']} (expected 4)")
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises many kinds
        raise Unreadable(f"wrong nbformat: cannot convert ({type(error).__name__}: {str(error)[:120]})") from None
    if not isinstance(notebook.get("cells"), list):
        raise Unreadable("malformed notebook: no cells")
    for cell in notebook.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Unreadable("malformed notebook: a cell of unknown type")
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        if not isinstance(cell.get("source"), str):
            raise Unreadable("malformed notebook: a cell without source")
    return notebook


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return ""


def normalise(notebook, release) -> tuple[object, list[str], list[str]]:
    """(notebook ready for nbgrader, statuses, notes).

    Drops outputs and foreign metadata (Colab), puts the release's kernelspec, and gives cells without
    nbgrader metadata the release's (matched by content, then by position) so that answers still grade.
    """

    statuses, notes = [], []
    notebook = copy.deepcopy(notebook)
    if "colab" in notebook.metadata:
        notes.append("exported from Colab")
    notebook.metadata = copy.deepcopy(release.metadata)
    for cell in notebook.cells:
        cell.setdefault("metadata", {})
        for key in [k for k in cell.metadata if k not in ("nbgrader", "tags", "deletable", "editable")]:
            del cell.metadata[key]
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    graded = [c for c in release.cells if _nbgrader_meta(c).get("grade_id")]
    have = {_nbgrader_meta(c).get("grade_id") for c in notebook.cells}
    missing = [c for c in graded if _nbgrader_meta(c)["grade_id"] not in have]
    restored = 0
    if missing:
        free = [i for i, c in enumerate(notebook.cells) if not _nbgrader_meta(c).get("grade_id")]
        same_length = len(notebook.cells) == len(release.cells)
        position = {id(c): i for i, c in enumerate(release.cells)}
        for cell in missing:
            meta = _nbgrader_meta(cell)
            match = next((i for i in free if notebook.cells[i].source.strip() == cell.source.strip()
                          and notebook.cells[i].cell_type == cell.cell_type), None)
            if match is None and meta.get("solution"):
                first = _first_line(cell.source)
                match = next((i for i in free if first and _first_line(notebook.cells[i].source) == first), None)
            if match is None and same_length and position[id(cell)] in free:
                match = position[id(cell)]
            if match is None:
                continue
            free.remove(match)
            target = notebook.cells[match]
            target.metadata["nbgrader"] = copy.deepcopy(meta)
            target.cell_type = cell.cell_type
            restored += 1
    if restored:
        notes.append(f"nbgrader metadata restored on {restored} cells")
    for cell in notebook.cells:
        if "id" not in cell and notebook.nbformat_minor >= 5:
            cell["id"] = hashlib.sha1(cell.source.encode()).hexdigest()[:8]
    # compare with the release: deleted, edited and extra cells (nbgrader restores deleted and edited tests)
    release_by_id = {_nbgrader_meta(c)["grade_id"]: c for c in graded}
    submitted = {_nbgrader_meta(c).get("grade_id"): c for c in notebook.cells if _nbgrader_meta(c).get("grade_id")}
    deleted = [g for g, c in release_by_id.items() if g not in submitted and _nbgrader_meta(c).get("grade")]
    edited = [g for g, c in release_by_id.items() if g in submitted and _nbgrader_meta(c).get("locked")
              and submitted[g].source.strip() != c.source.strip()]
    if deleted:
        statuses.append(f"test cells deleted (restored and graded): {', '.join(deleted)}")
    if edited:
        statuses.append(f"test cells edited (restored and graded): {', '.join(edited)}")
    release_sources = {c.source.strip() for c in release.cells}
    extra = [c for c in notebook.cells if not _nbgrader_meta(c).get("grade_id")
             and c.cell_type == "code" and c.source.strip() and c.source.strip() not in release_sources]
    if extra:
        statuses.append(f"{len(extra)} extra code cells")
    return notebook, statuses, notes


def prescan(notebook, release) -> list[str]:
    """Patterns in the student's own code that could subvert grading (asks for review, costs nothing)."""
    release_sources = {c.source.strip() for c in release.cells if _nbgrader_meta(c).get("locked")}
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code"
                     and c.source.strip() not in release_sources and not _nbgrader_meta(c).get("locked"))
    hits = [words for needle, words in SUSPICIOUS.items() if needle in code]
    if NUMPY_PATCH.search(code):
        hits.append("assigns to numpy attributes")
    return hits


# ----------------------------------------------------------------------------- grading one student

@dataclass
class Settings:
    assignment: str
    notebook_id: str
    timeout: int
    memory_mb: int
    mechanism: str
    hide: list
    course: Path            # the master course copy (release, gradebook)
    out: Path
    seed: str = ""


def _read_scores(db: Path, assignment: str, notebook_id: str, student: str) -> Scores | None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{db}") as gradebook:
        try:
            submission = gradebook.find_submission_notebook(notebook_id, assignment, student)
        except MissingEntry:
            return None
        cells = {g.name: (float(g.score), float(g.max_score)) for g in submission.grades}
        manual = frozenset(g.name for g in submission.grades if g.cell.cell_type == "markdown")
        return Scores(float(submission.score), float(submission.max_score), cells, manual)


def _max_score(db: Path, assignment: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gradebook:
        return float(gradebook.find_assignment(assignment).max_score)


def _run_watched(args, cwd: Path, env: dict, wall: float, memory: int) -> tuple[int, str, str]:
    """Run nbgrader; kill kernels above ``memory`` bytes and everything after ``wall`` seconds.

    Returns (return code, log, what the watchdog did: "" / "memory" / "timeout").
    """
    log_path = cwd / "nbgrader.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        action = ""
        start = time.monotonic()
        while process.poll() is None:
            if time.monotonic() - start > wall:
                action = "timeout"
                _kill_group(process)
                break
            for pid in sandbox.descendants(process.pid):
                if sandbox.rss_bytes(pid) > memory:
                    action = "memory"
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            time.sleep(0.1)
        process.wait()
    return process.returncode, log_path.read_text(errors="replace"), action


def _kill_group(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()


def _outputs_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
        elif "data" in output:
            parts.append(str(output["data"].get("text/plain", "")))
    return "\n".join(parts)


def _check_autograded(path: Path, scores: Scores, release) -> tuple[list[str], set]:
    """Statuses from the executed notebook, and grade ids whose points must be withdrawn."""
    import nbformat

    statuses, withdraw = [], set()
    notebook = nbformat.read(path, as_version=4)
    expects_pass = {_nbgrader_meta(c)["grade_id"] for c in release.cells
                    if _nbgrader_meta(c).get("grade") and c.cell_type == "code" and "passed" in c.source}
    silent, timeouts, tampered = [], [], []
    for cell in notebook.cells:
        grade_id = _nbgrader_meta(cell).get("grade_id")
        text = _outputs_text(cell)
        if "CellTimeoutError" in text or "KeyboardInterrupt" in text:
            timeouts.append(grade_id or "a student cell")
        if "tamper" in text.lower() or "switched off the profiler" in text:
            tampered.append(grade_id or "a student cell")
        if grade_id in expects_pass and grade_id in scores.cells:
            got, best = scores.cells[grade_id]
            if got > 0 and "passed" not in text:
                silent.append(grade_id)
                withdraw.add(grade_id)
    if timeouts:
        statuses.append(f"cell time limit hit: {', '.join(timeouts)}")
    if tampered:
        statuses.append(f"tampered with the checks: {', '.join(tampered)}")
    if silent:
        statuses.append(f"tampered: test cells ran without checking (points withdrawn): {', '.join(silent)}")
    return statuses, withdraw


def _cache_key(item: Collected, settings: Settings) -> str:
    digest = hashlib.sha256()
    digest.update(item.data)
    digest.update(json.dumps([CACHE_VERSION, settings.assignment, settings.timeout, settings.memory_mb,
                              settings.seed, settings.mechanism]).encode())
    digest.update((settings.course / "nbgrader_config.py").read_bytes())
    digest.update(_release_path(settings).read_bytes())
    return digest.hexdigest()


def _release_path(settings: Settings) -> Path:
    return settings.course / "exercises" / settings.assignment / f"{settings.notebook_id}.ipynb"


def grade_one(item: Collected, settings: Settings) -> Result:
    import nbformat

    work = settings.out / ".work" / "students" / item.student_id
    key = _cache_key(item, settings)
    cached = work / "result.json"
    if cached.exists():
        try:
            previous = Result(**json.loads(cached.read_text()))
            if previous.key == key and not previous.status.startswith("grader error"):
                _copy_feedback(work, settings, item.student_id)
                return previous
        except (ValueError, TypeError):
            pass
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    release = nbformat.read(_release_path(settings), as_version=4)
    max_score = _max_score(settings.course / "gradebook.db", settings.assignment)
    result = Result(item.student_id, item.name, item.late, item.file, 0.0, max_score, "", "", {}, key)
    statuses, notes = [], list(item.notes)
    if item.late:
        notes.append("late")
    try:
        notebook = read_submission(item.data)
    except Unreadable as error:
        result.status, result.notes = str(error), "; ".join(notes)
        _save(result, cached)
        return result
    if len(item.data) > 20_000_000:
        notes.append(f"large file ({len(item.data) // 1_000_000} MB), outputs dropped")
    notebook, found, more = normalise(notebook, release)
    statuses += found
    notes += more
    review = prescan(notebook, release)
    if review:
        statuses.append(f"needs review: {', '.join(review)}")

    # the student's course folder: config, a copy of the gradebook, the submission, no solutions
    runtime = work / "runtime"
    runtime.mkdir()
    stage = Path(tempfile.mkdtemp(prefix="segedu-stage-"))
    sockets = runtime if len(str(runtime)) < 90 else stage / "ipc"   # Unix socket paths are short
    sockets.mkdir(exist_ok=True)
    shutil.copy2(settings.course / "nbgrader_config.py", work / "nbgrader_config.py")
    with open(work / "nbgrader_config.py", "a") as config:
        config.write(
            "\n# segedu grade: one submission, its kernel in the sandbox, talking over Unix sockets\n"
            f"c.Execute.timeout = {int(settings.timeout)}\n"
            "c.KernelManager.transport = 'ipc'\n"
            f"c.KernelManager.ip = {str(sockets / 'kernel')!r}\n"
            "c.CourseDirectory.source_directory = 'source'\n")
    source = work / "source" / settings.assignment
    source.mkdir(parents=True)
    master_source = settings.course / "solutions" / settings.assignment
    for path in master_source.rglob("*"):   # data files an assignment ships (never the notebook)
        if path.is_file() and path.suffix != ".ipynb":
            target = source / path.relative_to(master_source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    shutil.copy2(settings.course / "gradebook.db", work / "gradebook.db")
    submitted = work / "submitted" / item.student_id / settings.assignment
    submitted.mkdir(parents=True)
    nbformat.write(notebook, submitted / f"{settings.notebook_id}.ipynb")
    jupyter = work / "jupyter"
    autograded = work / "autograded" / item.student_id / settings.assignment
    autograded.mkdir(parents=True)
    try:
        keep = [autograded, runtime, Path(sys.prefix)] + [Path(p) for p in _package_dirs()]
        sandbox.write_kernelspec(jupyter, stage, settings.hide, keep, settings.mechanism)
        env = notebook_environment()
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = "1"   # one torch/BLAS thread per process when grading in parallel
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env["JUPYTER_PATH"] = str(jupyter) + os.pathsep + env.get("JUPYTER_PATH", "")
        env["JUPYTER_RUNTIME_DIR"] = str(runtime)
        env["PYTHONNOUSERSITE"] = "1"
        if settings.seed:
            env["SEGEDU_GRADING_SEED"] = settings.seed
        cells = sum(1 for c in release.cells if c.cell_type == "code")
        wall = 120 + cells * settings.timeout * 2
        code, log, action = _run_watched(
            ["autograde", settings.assignment, "--create", "--force", f"--student={item.student_id}"],
            work, env, wall, settings.memory_mb * 1024 * 1024)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    scores = _read_scores(work / "gradebook.db", settings.assignment, settings.notebook_id, item.student_id)
    executed = autograded / f"{settings.notebook_id}.ipynb"
    if action == "memory":
        statuses.insert(0, f"memory limit exceeded ({settings.memory_mb} MB): kernel killed, nothing graded")
    elif action == "timeout":
        statuses.insert(0, "grading timed out: run killed, nothing graded")
    elif code != 0 or not executed.exists():
        if "segedu-sandbox: failed" in log:
            statuses.insert(0, "grader error: the sandbox could not be set up (see nbgrader.log); re-run")
        elif "DeadKernelError" in log or "Kernel died" in log or "kernel died" in log.lower():
            statuses.insert(0, "kernel crashed: nothing graded")
        else:
            last = [line for line in log.splitlines() if "[ERROR]" in line or "Error" in line]
            statuses.insert(0, f"autograde failed: {(last[-1] if last else 'see nbgrader.log')[:160]}")
    if executed.exists() and scores is not None and code == 0 and not action:
        found, withdraw = _check_autograded(executed, scores, release)
        statuses += found
        result.cells = {name: list(value) for name, value in scores.cells.items()}
        for name in withdraw:
            result.cells[name][0] = 0.0
        result.score = round(sum(got for got, _ in result.cells.values()), 6)
        result.max_score = scores.max_score
        feedback_code, feedback_log, _ = _run_watched(
            ["generate_feedback", settings.assignment, "--force", f"--student={item.student_id}"],
            work, env, 300, 1 << 40)
        if feedback_code != 0 or not _copy_feedback(work, settings, item.student_id):
            statuses.append("feedback not generated (see nbgrader.log)")
    result.status = "; ".join(statuses) or OK
    result.notes = "; ".join(notes)
    _save(result, cached)
    return result


def _copy_feedback(work: Path, settings: Settings, student: str) -> bool:
    page = work / "feedback" / student / settings.assignment / f"{settings.notebook_id}.html"
    if not page.exists():
        return False
    target = settings.out / "feedback" / student / settings.assignment
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(page, target / page.name)
    return True


def _package_dirs() -> list[str]:
    """Where segedu and the interpreter's packages live (bound back into the sandbox)."""
    import segedu

    return [os.path.dirname(segedu.__file__)]


def _save(result: Result, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result), indent=1))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the whole run

COLUMNS = ["student_id", "name", "late", "score", "max_score", "status", "notes", "file"]


def write_grades(results: list[Result], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in sorted(results, key=lambda r: r.student_id):
            writer.writerow([r.student_id, r.name, "yes" if r.late else "", f"{r.score:g}", f"{r.max_score:g}",
                             r.status, r.notes, r.file])
    os.replace(tmp, path)


def _prepare_course(root: Path, out: Path, assignment: str) -> tuple[Path, str]:
    """The master course copy under ``<OUT>/.work/course``, generated once (reused when up to date)."""
    course_dir = out / ".work" / "course"
    stamp = course_dir / "generated.stamp"
    fingerprint = hashlib.sha256()
    for path in sorted((root / "solutions" / assignment).rglob("*")) + [root / "nbgrader_config.py"]:
        if path.is_file():
            fingerprint.update(path.name.encode() + path.read_bytes())
    if stamp.exists() and stamp.read_text() == fingerprint.hexdigest():
        notebook = next((course_dir / "exercises" / assignment).glob("*.ipynb"))
        return course_dir, notebook.stem
    shutil.rmtree(course_dir, ignore_errors=True)
    course = CourseCopy(root, course_dir)
    name = course.notebook_name(assignment)
    course.generate(assignment)
    stamp.write_text(fingerprint.hexdigest())
    return course_dir, Path(name).stem


def grade(root: Path, assignment: str, submissions: Path, out: Path, jobs: int = 1, timeout: int | None = None,
          memory_mb: int = 4096, lms_gradebook: Path | None = None, lms_column: str | None = None,
          isolate: bool = True, echo=print) -> list[Result]:
    root, submissions, out = Path(root).resolve(), Path(submissions).resolve(), Path(out).resolve()
    if not (root / "solutions" / assignment).is_dir():
        raise SystemExit(f"No assignment {assignment!r} in {root / 'solutions'}.")
    for folder in (root, root / "solutions", root / "exercises"):
        if out == folder or folder in out.parents and out.parent == folder:
            raise SystemExit(f"OUT must not be the repository or one of its folders ({out}).")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    course_dir, notebook_id = _prepare_course(root, out, assignment)
    if timeout is None:
        timeout = 30
    mechanism, words = sandbox.detect() if isolate else (sandbox.NONE, "isolation switched off (--no-isolation)")
    # the kernel sees none of these; its own folder, the interpreter and segedu are bound back
    hide = _outermost([out, submissions, root])
    settings = Settings(assignment, notebook_id, timeout, memory_mb, mechanism, hide, course_dir, out,
                        os.environ.get("SEGEDU_GRADING_SEED", ""))
    collected, warnings = collect(submissions, assignment)
    for warning in warnings:
        echo(f"warning: {warning}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        fresh = list(pool.map(lambda item: grade_one(item, settings), collected))
    # merge with earlier runs in the same OUT: a re-run never loses a grade
    results = {r.student_id: r for r in _previous_results(out)}
    results.update({r.student_id: r for r in fresh})
    results = sorted(results.values(), key=lambda r: r.student_id)
    write_grades(results, out / "grades.csv")
    if lms_gradebook:
        fill_canvas(Path(lms_gradebook), results, out / "canvas_import.csv", assignment, lms_column)
    seconds = time.perf_counter() - start
    echo(summary(results, words, seconds))
    return results


def _outermost(paths: list[Path]) -> list[Path]:
    paths = sorted({Path(p).resolve() for p in paths}, key=lambda p: len(p.parts))
    kept = []
    for path in paths:
        if not any(k == path or k in path.parents for k in kept):
            kept.append(path)
    return kept


def _previous_results(out: Path) -> list[Result]:
    found = []
    for path in sorted((out / ".work" / "students").glob("*/result.json")):
        try:
            found.append(Result(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return found


def summary(results: list[Result], isolation: str, seconds: float) -> str:
    lines = [f"graded {len(results)} students in {seconds:.0f} s; isolation: {isolation}"]
    if results:
        mean = sum(r.score for r in results) / len(results)
        best = max(r.max_score for r in results)
        lines.append(f"mean score {mean:.2f} / {best:g}")
    attention = [r for r in results if r.status != OK]
    lines.append(f"{len(attention)} need attention" + (":" if attention else ""))
    for r in attention:
        lines.append(f"  {r.student_id} ({r.name}): {r.status}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- Canvas

def fill_canvas(export: Path, results: list[Result], target: Path, assignment: str, column: str | None) -> Path:
    """Fill the assignment's column of Canvas's gradebook export; write a file Canvas imports."""
    with open(export, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    if column is None:
        candidates = [h for h in header if _key(assignment) in _key(h)]
        if len(candidates) != 1:
            raise SystemExit(f"Cannot tell the assignment's column in {export} (found {candidates}); use --lms-column.")
        column = candidates[0]
    if column not in header:
        raise SystemExit(f"{export} has no column {column!r}.")
    id_col, col = header.index("ID"), header.index(column)
    keep = [i for i, h in enumerate(header) if h in ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")]
    keep.append(col)
    scores = {r.student_id: r for r in results}
    out_rows = [[header[i] for i in keep]]
    for row in rows[1:]:
        row = row + [""] * (len(header) - len(row))
        if row[id_col] in scores:
            row[col] = f"{scores[row[id_col]].score:g}"
        out_rows.append([row[i] for i in keep])
    with open(target, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(out_rows)
    return target
