"""``segedu grade``: autograde an LMS download of one assignment and write grades.csv.

Pipeline (all work happens under ``<OUT>``; the repository's folders are never written):

1. ``<OUT>/.work/course``: a :class:`~.nbgrader_run.CourseCopy` where ``nbgrader generate_assignment``
   makes the release and a gradebook that knows the assignment (once). The grading plan (every case
   of every test cell, drawn from the term's private seed, with the reference's answers; see
   :mod:`segedu.grading.plan`) is computed once, here, and pickled under ``<OUT>/.work/plans``.
2. Every file of the download is collected (Canvas names ``lastfirst[_late]_userid_attachid_name[-N].ipynb``;
   one folder per student; renamed notebooks too), read leniently and normalised: Colab exports get
   their nbgrader cell metadata back by matching cells to the release, outputs are dropped. A file
   that cannot be read costs only its own row. A submission whose release stamp (notebook metadata,
   written by ``generate_assignment``; see :func:`.nbgrader_run.release_of`) differs from the release
   being graded gets a note ("made from release v0.0.9, graded with v0.1.0"; a missing stamp reads
   "unknown"), for the instructor to look at; it is graded all the same.
3. Each student is graded on their own in ``<OUT>/.work/students/<id>``: a copy of the gradebook, the
   one submission, no ``solutions/``. The real ``nbgrader autograde`` runs there (never importing from
   that folder), and starts the kernel in the bubblewrap sandbox of :mod:`.sandbox`, as its own
   unprivileged uid, seeing only read-only system folders and an exchange folder in ``/tmp``. The
   kernel only runs the student's functions; the verdict is computed and written into the test cells
   by nbgrader's process (:mod:`.verdict`). A watchdog kills a kernel whose process tree passes the
   memory limit or writes too much, and a wall-clock limit stops a stuck run.
4. Scores are read from each gradebook, cached in ``result.json`` under a key of everything they
   depend on (submission, release, package code, plan, settings), and merged into
   ``<OUT>/grades.csv`` and ``<OUT>/feedback/``. Rows that need a person's review stay blank in the
   Canvas import file.
5. Hand-graded cells (assignment 11's report) go into ``<OUT>/formgrader``, a course folder for
   nbgrader's formgrader, and the scores a person gives there come back into grades.csv and the Canvas
   file on the next run, only once a student's whole report is graded (:mod:`.manual`).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import unicodedata
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import _course
# hidden_modules and ALWAYS_HIDDEN live with the submission rules, which segedu.check_submission() shares: a
# student is told before submitting when an answer imports what the grading kernel cannot
from ..submission.rules import ALWAYS_HIDDEN, hidden_modules  # noqa: F401  (re-exported)
from ..submission.rules import deduplicate, release_manifest, restore_metadata, structure_findings
from . import sandbox
from .nbgrader_run import CourseCopy, Scores, release_of
from .notebooks import notebook_environment
from .workers import Slot, WorkerPool

OK = "ok"
CACHE_VERSION = 2
CANVAS_NAME = re.compile(
    r"^(?P<name>[^_]+)(?P<late>_late)?_(?P<userid>\d+)_(?P<attach>\d+)_(?P<file>.+?)(?:-(?P<n>\d+))?\.ipynb$",
    re.I)


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
    timings: dict = field(default_factory=dict)   # seconds: autograde, feedback, cells (not a grade)
    manual: list = field(default_factory=list)    # grade ids a person grades (a written report)


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
                folder, _, name = info.filename.rpartition("/")
                parent = folder.rstrip("/").split("/")[-1] if folder else None
                if name.lower().endswith(".ipynb") and not name.startswith(".") and "__MACOSX" not in folder:
                    yield name, archive.read(info), parent
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
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


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
        where = f" ({error.msg} at line {error.lineno})" if isinstance(error, json.JSONDecodeError) else ""
        raise Unreadable(f"malformed notebook: not valid JSON{where}") from None
    except RecursionError:
        raise Unreadable("malformed notebook: nested too deeply") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        raise Unreadable("malformed notebook: no nbformat version")
    if raw["nbformat"] not in (3, 4):
        raise Unreadable(f"wrong nbformat: version {raw['nbformat']} (expected 4)")
    if isinstance(raw.get("cells"), list):   # metadata of the wrong type would stop nbformat: drop it
        for cell in raw["cells"]:
            if isinstance(cell, dict):
                if not isinstance(cell.get("metadata", {}), dict):
                    cell["metadata"] = {}
                meta = cell.get("metadata", {})
                if "nbgrader" in meta and not _valid_nbgrader_meta(meta["nbgrader"]):
                    del meta["nbgrader"]   # restored from the release by matching, like a Colab export
        text = json.dumps(raw)
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises many kinds
        raise Unreadable(f"wrong nbformat: cannot convert ({type(error).__name__}: {str(error)[:120]})") from None
    if not isinstance(notebook.get("cells"), list):
        raise Unreadable("malformed notebook: no cells")
    if not isinstance(notebook.get("metadata"), dict):
        notebook["metadata"] = nbformat.NotebookNode()
    for cell in notebook.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Unreadable("malformed notebook: a cell of unknown type")
        if isinstance(cell.get("source"), list) and all(isinstance(line, str) for line in cell["source"]):
            cell["source"] = "".join(cell["source"])
        if not isinstance(cell.get("source"), str):
            raise Unreadable("malformed notebook: a cell without source")
    return notebook


def _valid_nbgrader_meta(meta) -> bool:
    if not isinstance(meta, dict):
        return False
    grade_id = meta.get("grade_id")
    if grade_id is not None and not (isinstance(grade_id, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,80}", grade_id)):
        return False
    flags_ok = all(isinstance(meta.get(k, False), bool) for k in ("grade", "solution", "locked", "task"))
    points = meta.get("points", 0)
    return flags_ok and isinstance(points, (int, float)) and not isinstance(points, bool)


def normalise(notebook, release) -> tuple[object, list[str], list[str]]:
    """(notebook ready for nbgrader, statuses, notes).

    Drops outputs and foreign metadata (Colab), puts the release's kernelspec, and gives cells without
    nbgrader metadata the release's (matched by content, then by position) so that answers still grade.
    The statuses are the findings of :func:`segedu.submission.rules.structure_findings`, the rules that
    ``segedu.check_submission()`` shows students before they submit.
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
    # the rules of segedu.submission.rules, which segedu.check_submission() applies for students too
    manifest = release_manifest(release, "")
    findings = structure_findings(notebook, manifest)
    restore_metadata(notebook, manifest)
    deduplicate(notebook, manifest)   # before nbgrader, whose own deduplication crashes on the copies
    for cell in notebook.cells:
        if "id" not in cell and notebook.nbformat_minor >= 5:
            cell["id"] = hashlib.sha1(cell.source.encode()).hexdigest()[:8]
    for finding in findings:   # what costs nothing (cells of one's own, an export) is a note, not a status
        (statuses if finding.problem else notes).append(finding.status)
    return notebook, statuses, notes


#: What no answer needs and attacks on the grader use (found by attack reviews): a notebook whose code
#: mentions one is graded as usual and held for a person's review.
SUSPICIOUS_CODE = (
    (r"\bsegedu_(tripwire|kernel\w*)\b", "touches the grading kernel's modules"),
    (r"\bset(profile|trace)\b", "sets a profile or trace hook"),
    (r"\b_thread\b", "starts threads below the threading module"),
    (r"\bctypes\b", "calls native code through ctypes"),
    (r"\bfrom_file\b", "reads files natively (from_file)"),
    (r"\bmarshal\b", "loads bytecode (marshal)"),
    (r"\bsys\s*\.\s*modules\s*(\[[^\]]*\]\s*=(?!=)|\.\s*(setdefault|update|pop|popitem|clear|__setitem__))"
     r"|\bdel\s+sys\s*\.\s*modules", "edits sys.modules"),
    (r"__subclasses__", "searches classes through __subclasses__"),
)


def suspicious_code(notebook) -> list[str]:
    """What the notebook's code cells do that no answer needs (see :data:`SUSPICIOUS_CODE`).

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import ctypes\\ntorch.set_num_threads(1)")])
    >>> suspicious_code(nb)
    ['calls native code through ctypes (ctypes)']
    """
    import re

    source = "\n".join(cell.get("source", "") for cell in notebook.get("cells", []) if cell.get("cell_type") == "code")
    found = []
    for pattern, what in SUSPICIOUS_CODE:
        match = re.search(pattern, source)
        if match:
            found.append(f"{what} ({match.group(0)})")
    return found


def prescan(notebook, assignment: str) -> list[str]:
    """What a person should look at before the grade counts (costs no points by itself): code close to a
    reference, and code that does what no answer needs (:func:`suspicious_code`)."""
    from .similarity import close_to_reference

    return ([f"close to the reference {name}" for name in close_to_reference(notebook, assignment)]
            + suspicious_code(notebook))


# ----------------------------------------------------------------------------- grading one student

@dataclass
class Settings:
    assignment: str
    notebook_id: str
    timeout: int
    memory_mb: int
    mechanism: str
    course: Path            # the master course copy (release, gradebook)
    out: Path
    seed: int
    plan_path: Path
    plan_fingerprint: str
    hide_modules: tuple = ()
    kernel_guard: str = ""  # SEGEDU_KERNEL_GUARD for the sandboxed kernels ("" installs no guard)
    scratch_mb: int = 512   # what a kernel may write into its exchange folder
    pool: object = None     # the :class:`.workers.WorkerPool` that runs nbgrader
    max_score: float | None = None
    jupyter_path: str = ""  # JUPYTER_PATH of the run, before a student's kernelspec is put first


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


def _timeouts(path: Path) -> list[str]:
    """Test cells that hit the cell time limit (the verdict marks them ``TimeoutError``)."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    return [_nbgrader_meta(c).get("grade_id") for c in notebook.cells if c.cell_type == "code"
            and any(o.get("ename") == "TimeoutError" for o in c.get("outputs", []))]


def _cache_key(item: Collected, settings: Settings) -> str:
    """Everything a result depends on: a change to any of them grades the submission again."""
    from segedu.grading.plan import package_fingerprint

    digest = hashlib.sha256()
    digest.update(item.data)
    digest.update(json.dumps([CACHE_VERSION, settings.assignment, settings.timeout, settings.memory_mb,
                              settings.seed, settings.mechanism, settings.plan_fingerprint,
                              list(settings.hide_modules), settings.kernel_guard]).encode())
    digest.update((settings.course / "nbgrader_config.py").read_bytes())
    digest.update(_release_path(settings).read_bytes())
    digest.update(package_fingerprint().encode())
    digest.update(Path(sandbox.__file__).read_bytes() + Path(__file__).read_bytes())
    return digest.hexdigest()


def _release_path(settings: Settings) -> Path:
    return settings.course / "exercises" / settings.assignment / f"{settings.notebook_id}.ipynb"


# The grader's own share of a submission (reading, checking, writing files, the gradebook) runs one
# student at a time, and only the waits on a worker overlap: it is a few tens of milliseconds, and
# CPython 3.11-3.12 can fail with "SystemError: AST constructor recursion depth mismatch" when two
# threads compile code at once (python/cpython#106905), which imports, dataclasses, sqlalchemy and
# fastjsonschema all do.
_GRADER_SHARE = threading.Lock()


def grade_one(item: Collected, settings: Settings) -> Result:
    """Grade one submission; whatever goes wrong, it returns that student's row."""
    work = settings.out / ".work" / "students" / item.student_id
    with _GRADER_SHARE:
        try:
            return _grade_one(item, settings, work)
        except Exception as error:  # noqa: BLE001  one student's file must never stop the run
            result = Result(item.student_id, item.name, item.late, item.file, 0.0, 0.0,
                            f"grader error: {type(error).__name__}: {str(error)[:160]}; re-run", "", {},
                            _cache_key(item, settings))
            _save(result, work / "result.json")
            return result


def _grade_one(item: Collected, settings: Settings, work: Path) -> Result:
    import nbformat

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
    max_score = settings.max_score
    if max_score is None:
        max_score = _max_score(settings.course / "gradebook.db", settings.assignment)
    result = Result(item.student_id, item.name, item.late, item.file, 0.0, max_score, "", "", {}, key)
    statuses, notes = [], list(item.notes)
    if item.late:
        notes.append("late")
    try:
        notebook = read_submission(item.data)
        made_from, grading = release_of(notebook), release_of(release)
        if made_from != grading:   # e.g. a student installed an older release's exercises (never fatal)
            notes.append(f"made from release {made_from}, graded with {grading}")
        notebook, found, more = normalise(notebook, release)
    except Unreadable as error:
        result.status, result.notes = str(error), "; ".join(notes)
        _save(result, cached)
        return result
    if len(item.data) > 20_000_000:
        notes.append(f"large file ({len(item.data) // 1_000_000} MB), outputs dropped")
    statuses += found
    notes += more
    review = prescan(notebook, settings.assignment)
    if settings.mechanism == sandbox.NONE:
        review.append("graded without isolation (--no-isolation)")
    if review:
        statuses.append(f"needs review: {', '.join(review)}")

    # the student's course folder: config, a copy of the gradebook, the submission, no solutions
    shutil.copy2(settings.course / "gradebook.db", work / "gradebook.db")
    source = work / "source" / settings.assignment
    source.mkdir(parents=True)
    master_source = settings.course / "solutions" / settings.assignment
    for path in master_source.rglob("*"):   # data files an assignment ships (never the notebook)
        if path.is_file() and path.suffix != ".ipynb":
            target = source / path.relative_to(master_source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    submitted = work / "submitted" / item.student_id / settings.assignment
    submitted.mkdir(parents=True)
    nbformat.write(notebook, submitted / f"{settings.notebook_id}.ipynb")
    autograded = work / "autograded" / item.student_id / settings.assignment
    log_path = work / "nbgrader.log"
    shutil.copy2(settings.course / "nbgrader_config.py", work / "nbgrader_config.py")

    def build_task(slot: Slot) -> dict:
        config = [f"c.Execute.timeout = {int(settings.timeout)}",
                  # the verdict has every result once the last cell ran; nothing to wait for
                  "c.Execute.shutdown_kernel = 'immediate'",
                  "c.CourseDirectory.source_directory = 'source'",
                  f"c.TrustedRun.plan_path = {str(settings.plan_path)!r}"]
        env = {"JUPYTER_RUNTIME_DIR": str(work / "runtime"), "JUPYTER_PATH": slot.jupyter_path}
        if slot.ip:
            config += ["c.KernelManager.transport = 'ipc'", f"c.KernelManager.ip = {slot.ip!r}",
                       f"c.TrustedRun.io_dir = {str(slot.scratch)!r}"]
        with open(work / "nbgrader_config.py", "a") as handle:
            handle.write("\n# segedu grade: one submission, its kernel in the sandbox\n" + "\n".join(config) + "\n")
        return {"root": str(work), "assignment": settings.assignment, "student": item.student_id,
                "log": str(log_path), "env": env}

    cells = sum(1 for c in release.cells if c.cell_type == "code")
    wall = 120 + cells * settings.timeout * 2
    _GRADER_SHARE.release()   # held by grade_one; other students' shares run while this one waits
    try:
        answer, action = settings.pool.run(build_task, wall, settings.memory_mb * 1024 * 1024,
                                           settings.scratch_mb << 20)
    finally:
        _GRADER_SHARE.acquire()
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    code = 1 if answer is None or answer.get("autograde") else 0
    result.timings = dict((answer or {}).get("timings", {}))
    scores = _read_scores(work / "gradebook.db", settings.assignment, settings.notebook_id, item.student_id)
    executed = autograded / f"{settings.notebook_id}.ipynb"
    if action == "memory":
        statuses.insert(0, f"memory limit exceeded ({settings.memory_mb} MB): kernel killed, nothing graded")
    elif action == "disk":
        statuses.insert(0, f"disk limit exceeded ({settings.scratch_mb} MB written): kernel killed, nothing graded")
    elif action == "timeout":
        statuses.insert(0, "grading timed out: run killed, nothing graded")
    elif answer is not None and answer.get("error"):   # the worker's own failure, not the student's
        last = [line for line in answer["error"].splitlines() if line.strip()]
        statuses.insert(0, f"grader error: {(last[-1] if last else 'see nbgrader.log')[:160]}; re-run")
    elif code != 0 or not executed.exists():
        if "segedu-sandbox: failed" in log or "\nbwrap: " in log:
            statuses.insert(0, "grader error: the sandbox could not be set up (see nbgrader.log); re-run")
        elif "DeadKernelError" in log or "Kernel died" in log or "kernel died" in log.lower():
            statuses.insert(0, "kernel crashed: nothing graded")
        else:
            last = [line for line in log.splitlines() if "[ERROR]" in line or "Error" in line]
            statuses.insert(0, f"autograde failed: {(last[-1] if last else 'see nbgrader.log')[:160]}")
    if executed.exists() and scores is not None and code == 0 and not action:
        timeouts = _timeouts(executed)
        if timeouts:
            statuses.append(f"cell time limit hit: {', '.join(timeouts)}")
        result.cells = {name: list(value) for name, value in scores.cells.items()}
        result.manual = sorted(scores.manual)
        result.score = round(sum(got for got, _ in result.cells.values()), 6)
        result.max_score = scores.max_score
        if answer.get("feedback") != 0 or not _copy_feedback(work, settings, item.student_id):
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


def _save(result: Result, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result), indent=1))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the whole run

COLUMNS = ["student_id", "name", "late", "score", "max_score", "status", "notes", "file"]


def write_grades(results: list[Result], path: Path, reports: dict | None = None) -> None:
    """One row per student. With hand-graded cells (``reports`` from :func:`.manual.merge`), ``score`` is
    empty until the total is final, the status says what is left, and the columns ``autograded`` and
    ``manual`` follow the usual ones (:func:`.manual.grade_row`)."""
    from . import manual

    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS + (manual.COLUMNS if reports else []))
        for r in sorted(results, key=lambda r: r.student_id):
            row = {"score": f"{r.score:g}", "status": r.status}
            if reports:
                row = manual.grade_row(r, reports[r.student_id])
            writer.writerow([r.student_id, r.name, "yes" if r.late else "", row["score"], f"{r.max_score:g}",
                             row["status"], r.notes, r.file] + [row[c] for c in manual.COLUMNS if reports])
    os.replace(tmp, path)


def _prepare_course(root: Path, out: Path, assignment: str) -> tuple[Path, str]:
    """The master course copy under ``<OUT>/.work/course``, generated once (reused when up to date)."""
    course_dir = out / ".work" / "course"
    stamp = course_dir / "generated.stamp"
    fingerprint = hashlib.sha256()
    fingerprint.update(_course.RELEASE.encode())   # the release is stamped into the generated notebook
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


MIN_SEED = 10 ** 7


def term_seed(raw: str | None) -> int:
    """The term's private grading seed, or ``SystemExit`` saying how to choose one."""
    from segedu.grading import DEFAULT_GRADING_SEED

    how = ("Choose a private seed for this term, keep it out of the repository, and pass it as "
           "SEGEDU_GRADING_SEED (or --seed), e.g. "
           "SEGEDU_GRADING_SEED=$(python -c 'import secrets; print(secrets.randbelow(10**12))').")
    raw = (raw or "").strip()
    if not raw:
        raise SystemExit(f"No grading seed: the hidden tests would use the public default. {how}")
    try:
        seed = int(raw)
    except ValueError:
        raise SystemExit(f"The grading seed must be an integer, not {raw!r}. {how}") from None
    if seed == DEFAULT_GRADING_SEED or seed < MIN_SEED:
        raise SystemExit(f"The grading seed {raw} is the public default or too short to keep private "
                         f"(use at least {len(str(MIN_SEED))} digits). {how}")
    return seed


def kernel_guard(assignment: str) -> str:
    """``SEGEDU_KERNEL_GUARD`` for the exercise's sandboxed kernels: the torch operators it blocks.

    An exercise whose peer lives inside a package its answers need (07: torch's max-unpooling, 08:
    torch's convolutions and numpy's correlation) lists the peer's operators in ``blocked_operators``
    (patterns) and ``blocked_functions``; the kernel guard
    (``segedu/grading/kernel/segedu_kernel_guard.py``) switches them off before any student code
    runs. "" for every other exercise: no guard.
    """
    from segedu.grading.exercises import EXERCISES

    spec = EXERCISES[assignment]
    if not spec.blocked_operators and not spec.blocked_functions:
        return ""
    return json.dumps({"blocked_operators": list(spec.blocked_operators),
                       "blocked_functions": list(spec.blocked_functions),
                       "rule": f"exercise {assignment} asks you to write it yourself. {spec.allowed}"})


def slot_maker(settings: Settings):
    """Makes the sandbox of one kernel: a short scratch root in /tmp (Unix socket paths must stay
    under ~100 bytes), a uid of its own, and a kernelspec that starts the kernel inside it."""
    import itertools

    numbers = itertools.count()
    homes = settings.out / ".work" / "slots"

    def make_slot() -> Slot:
        scratch = Path(tempfile.mkdtemp(prefix="sg-", dir="/tmp" if os.path.isdir("/tmp") else None))
        if settings.mechanism == sandbox.NONE:
            return Slot(scratch, jupyter_path=settings.jupyter_path)
        from segedu.instructor.verdict import KERNEL_DIR

        home = homes / scratch.name
        spec = sandbox.SandboxSpec(scratch=scratch, uid=61000 + next(numbers),
                                   hide_modules=tuple(settings.hide_modules), python_path=(str(KERNEL_DIR),),
                                   env={"SEGEDU_KERNEL_IO": str(scratch),
                                        **({"SEGEDU_KERNEL_GUARD": settings.kernel_guard} if settings.kernel_guard
                                           else {})},
                                   memory_mb=settings.memory_mb, quiet=True)
        sandbox.prepare(spec)
        sandbox.write_kernelspec(home / "jupyter", spec)
        jupyter_path = os.pathsep.join(p for p in (str(home / "jupyter"), settings.jupyter_path) if p)
        return Slot(scratch, home, jupyter_path, str(scratch / "ipc" / "kernel"))

    return make_slot


def worker_environment() -> dict:
    """The grading workers' environment: headless, one thread, no seed, our interpreter first on PATH."""
    env = notebook_environment()
    env.pop("SEGEDU_GRADING_SEED", None)   # the plan holds the seed; no process after it needs it
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _make_plan(course_dir: Path, out: Path, assignment: str, notebook_id: str, seed: int) -> tuple[Path, str]:
    """Every case of every test cell with the reference's answers, computed once per run."""
    import pickle

    import nbformat

    from segedu.grading.plan import build_plan, fingerprint

    notebook = nbformat.read(course_dir / "solutions" / assignment / f"{notebook_id}.ipynb", as_version=4)
    key = fingerprint(notebook, assignment, seed)
    path = out / ".work" / "plans" / f"{assignment}-{key[:16]}.pkl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            pickle.dump(build_plan(notebook, assignment, seed), handle)
        os.replace(tmp, path)
    return path, key


def grade(root: Path, assignment: str, submissions: Path, out: Path, jobs: int = 1, timeout: int | None = None,
          memory_mb: int = 4096, lms_gradebook: Path | None = None, lms_column: str | None = None,
          isolate: bool = True, seed: str | None = None, echo=print, report: dict | None = None) -> list[Result]:
    """Grade every submission in ``submissions``; see the module's docstring.

    ``report``, when given, receives the run's timings: ``setup_s`` (collecting, the release, the
    plan, the workers) and ``grading_s`` (the submissions themselves), for ``make bench``.
    """
    root, submissions, out = Path(root).resolve(), Path(submissions).resolve(), Path(out).resolve()
    if not (root / "solutions" / assignment).is_dir():
        raise SystemExit(f"No assignment {assignment!r} in {root / 'solutions'}.")
    for folder in (root, root / "solutions", root / "exercises"):
        if out == folder or folder in out.parents and out.parent == folder:
            raise SystemExit(f"OUT must not be the repository or one of its folders ({out}).")
    seed_value = term_seed(seed if seed is not None else os.environ.get("SEGEDU_GRADING_SEED"))
    if isolate:
        mechanism, words = sandbox.detect()
        if mechanism == sandbox.NONE:
            raise SystemExit(f"Cannot sandbox the students' kernels here: {words}. Grade on Linux (WSL2 or a "
                             f"Linux VM on macOS and Windows), or pass --no-isolation to grade unsandboxed, "
                             f"in which case every row is flagged for review.")
    else:
        mechanism, words = sandbox.NONE, "NONE (--no-isolation): every row needs review"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    collected, warnings = collect(submissions, assignment)
    for warning in warnings:
        echo(f"warning: {warning}")
    jobs = max(1, min(jobs, len(collected)))
    # the workers import nbgrader while the release and the plan are made
    with WorkerPool(jobs, worker_environment(), out / ".work" / "workers") as workers:
        course_dir, notebook_id = _prepare_course(root, out, assignment)
        plan_path, plan_key = _make_plan(course_dir, out, assignment, notebook_id, seed_value)
        settings = Settings(assignment, notebook_id, 30 if timeout is None else timeout, memory_mb, mechanism,
                            course_dir, out, seed_value, plan_path, plan_key, hidden_modules(assignment),
                            kernel_guard=kernel_guard(assignment), pool=workers,
                            jupyter_path=os.environ.get("JUPYTER_PATH", ""),
                            max_score=_max_score(course_dir / "gradebook.db", assignment))
        workers.make_slot = slot_maker(settings)
        workers.wait_ready()
        graded_from = time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            fresh = list(pool.map(lambda item: grade_one(item, settings), collected))
        if jobs > 1:   # a neighbour can push a kernel into a timeout: timeouts are confirmed alone
            for index, item in enumerate(collected):
                if "time limit" in fresh[index].status or "timed out" in fresh[index].status:
                    (out / ".work" / "students" / item.student_id / "result.json").unlink(missing_ok=True)
                    fresh[index] = grade_one(item, settings)
        if report is not None:
            report["setup_s"] = graded_from - start
            report["grading_s"] = time.perf_counter() - graded_from
    # merge with earlier runs in the same OUT: a re-run never loses a grade
    results = {r.student_id: r for r in _previous_results(out)}
    results.update({r.student_id: r for r in fresh})
    results = sorted(results.values(), key=lambda r: r.student_id)
    # hand-graded cells (11's report): into <OUT>/formgrader, and their scores back (none: {})
    from .manual import merge, summary_lines

    reports = merge(out, course_dir, assignment, notebook_id, results, echo)
    write_grades(results, out / "grades.csv", reports)
    if lms_gradebook:
        fill_canvas(Path(lms_gradebook), results, out / "canvas_import.csv", assignment, lms_column, reports)
    seconds = time.perf_counter() - start
    echo("\n".join([summary(results, words, seconds, reports)] + summary_lines(reports, out)))
    return results


def _previous_results(out: Path) -> list[Result]:
    found = []
    for path in sorted((out / ".work" / "students").glob("*/result.json")):
        try:
            found.append(Result(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return found


def needs_review(result: Result) -> bool:
    return "needs review" in result.status or result.status.startswith("grader error")


def summary(results: list[Result], isolation: str, seconds: float, reports: dict | None = None) -> str:
    """The run in a few lines; with hand-graded cells the mean is over the final totals only."""
    from .manual import total

    lines = [f"graded {len(results)} students in {seconds:.0f} s; isolation: {isolation}"]
    totals = [t for t in (total(r, (reports or {}).get(r.student_id)) for r in results) if t is not None]
    if totals:
        mean = sum(totals) / len(totals)
        best = max(r.max_score for r in results)
        lines.append(f"mean score {mean:.2f} / {best:g}" + (f" over {len(totals)} final totals" if reports else ""))
    attention = [r for r in results if r.status != OK]
    lines.append(f"{len(attention)} need attention" + (":" if attention else ""))
    for r in attention:
        lines.append(f"  {r.student_id} ({r.name}): {r.status}")
    review = [r for r in results if needs_review(r)]
    if review:
        lines.append(f"{len(review)} must be looked at by a person before their grade counts "
                     f"(left blank in the Canvas file): {', '.join(r.student_id for r in review)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- Canvas

def fill_canvas(export: Path, results: list[Result], target: Path, assignment: str, column: str | None,
                reports: dict | None = None) -> Path:
    """Fill the assignment's column of Canvas's gradebook export; write a file Canvas imports.

    A row a person must review, or whose hand-graded cells are not all graded (``reports``, see
    :func:`.manual.total`), stays blank: Canvas never gets a partial total as if it were the grade.
    """
    from .manual import total

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
        if row[id_col] in scores:   # a row a person must review stays blank until they have
            found = scores[row[id_col]]
            grade = total(found, (reports or {}).get(found.student_id))
            row[col] = "" if needs_review(found) or grade is None else f"{grade:g}"
        out_rows.append([row[i] for i in keep])
    with open(target, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(out_rows)
    return target
