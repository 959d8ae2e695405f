"""The grader's rules for a submitted notebook, in one place: ``segedu grade`` applies them to every
submission, and :func:`segedu.check_submission` applies them for a student before they upload.

Only :mod:`nbformat` is needed (Colab has it; nbgrader is not installed there), and nothing here runs
code. The grader compares a submission with its *release*, the student version that
``nbgrader generate_assignment`` made; the student check compares it with the same release's
*manifest*, shipped with segedu (``releases.json``, written by ``make release``), because a student in
Colab has only their own notebook.

What the grader does with a submission, and so what these rules mirror:

0. Outputs are cleared.
1. **Colab exports** lose the nbgrader metadata of every cell. It is restored by matching cells to the
   release: the same source, then (for answer cells) the same first line, then the same position
   (:func:`restore_metadata`).
2. **Duplicated cells** (a copied cell keeps its ``grade_id``): nbgrader's ``DeduplicateIds`` keeps the
   *last* copy as the graded cell; the earlier copies run as ordinary code.
3. **Locked cells** (tests and instructions) are put back as released (nbgrader's ``OverwriteCells``
   compares checksums), with their released cell type.
4. **Deleted graded cells** (tests, hand-graded report cells) are put back, empty of the student's work,
   after the graded cell that precedes them in the release (``add_missing_cells``). A deleted *answer*
   cell is not put back: its function is simply missing, unless another cell defines it.
5. The tests then run top to bottom.

:func:`as_graded` applies 1-4 and returns the notebook the grader will run; :func:`structure_findings`
says what of that differs from the student's own notebook.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHECK_CELL_ID", "ALWAYS_HIDDEN", "Finding", "release_manifest", "load_manifests", "manifest_for",
           "restore_metadata", "deduplicate", "as_graded", "structure_findings", "import_findings",
           "assignment_findings", "hidden_modules", "which_assignment", "release_of"]

#: grade_id of the last cell of every exercise, the one that calls :func:`segedu.check_submission`; the
#: grader blanks it (segedu/instructor/verdict.py), and the student check leaves it out of its own run.
CHECK_CELL_ID = "check_submission"
#: notebook metadata key of the release stamp that ``make release`` writes: ``{"segedu": {"release": "v0.1.0"}}``
STAMP_KEY = "segedu"
MANIFESTS = Path(__file__).with_name("releases.json")


@dataclass
class Finding:
    """One thing a student should know before they submit.

    ``problem`` is True when it changes what the grader runs or costs points; False for advice (it costs
    nothing at grading time).
    """

    kind: str
    message: str
    fix: str = ""
    grade_ids: tuple = ()
    points: float = 0.0
    problem: bool = True
    status: str = ""     # the same finding in the grader's words (grades.csv's status column)

    def __str__(self) -> str:
        return self.message + (f" {self.fix}" if self.fix else "")


# ----------------------------------------------------------------------------- the release's manifest

def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
    return meta if isinstance(meta, dict) else {}


def _grade_id(cell) -> str | None:
    grade_id = _meta(cell).get("grade_id")
    return grade_id if isinstance(grade_id, str) else None


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source if isinstance(source, str) else ""


def _digest(text: str) -> str:
    return hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:16]


def release_of(notebook) -> str:
    """The segedu release a notebook was generated from (its metadata stamp), or ``"unknown"``.

    >>> release_of({"metadata": {"segedu": {"release": "v0.1.0"}}}), release_of({"metadata": {}})
    ('v0.1.0', 'unknown')
    """
    metadata = notebook.get("metadata")
    stamp = metadata.get(STAMP_KEY) if isinstance(metadata, dict) else None
    release = stamp.get("release") if isinstance(stamp, dict) else None
    if not isinstance(release, str) or not release.strip():
        return "unknown"
    # a submission's metadata is the student's: keep a tag's characters only, and not too many
    return re.sub(r"[^A-Za-z0-9._+-]", "?", release.strip())[:40]


def release_manifest(release, assignment: str) -> dict:
    """What the rules need of a release notebook, as JSON: every cell's type and nbgrader metadata, the
    full source of the cells that have a ``grade_id``, and a digest of the others."""
    cells = []
    for cell in release.get("cells", []):
        meta = _meta(cell)
        entry = {"cell_type": cell.get("cell_type")}
        if _grade_id(cell):
            entry["nbgrader"] = {k: meta[k] for k in ("grade_id", "grade", "solution", "locked", "task", "points")
                                 if meta.get(k) is not None}
            entry["source"] = _source(cell)
        else:
            entry["digest"] = _digest(_source(cell))
        cells.append(entry)
    return {"assignment": assignment, "release": release_of(release), "cells": cells}


def load_manifests(path: Path | None = None) -> dict[str, dict]:
    """assignment id -> manifest, as shipped with this segedu (``make release`` writes them)."""
    path = Path(path) if path else MANIFESTS
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def manifest_for(assignment: str, manifests: dict | None = None) -> dict:
    manifests = load_manifests() if manifests is None else manifests
    if assignment not in manifests:
        known = ", ".join(sorted(manifests)) or "none"
        raise ValueError(f"No exercise {assignment!r} in this segedu ({known}). Use the id of the exercise "
                         f"folder, e.g. '01_thresholding'.")
    return manifests[assignment]


def _graded(manifest) -> list[dict]:
    return [c for c in manifest["cells"] if "nbgrader" in c]


def _kind(meta: dict) -> str:
    if meta.get("grade") and meta.get("solution"):
        return "report"     # written by the student, graded by hand
    if meta.get("grade"):
        return "test"
    if meta.get("solution"):
        return "answer"
    return "locked"


# ----------------------------------------------------------------------------- step 1: restore metadata

def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return ""


def restore_metadata(notebook, manifest) -> int:
    """Give cells that lost their nbgrader metadata (a Colab export) the release's, in place.

    A graded cell of the release that no cell of the notebook carries is matched to a cell without
    metadata: the same source; for an answer cell, the same first line; or, when the notebook has as
    many cells as the release, the same position. Returns how many cells got their metadata back.
    """
    cells = notebook["cells"]
    have = {_grade_id(c) for c in cells}
    released = manifest["cells"]
    missing = [(i, c) for i, c in enumerate(released) if "nbgrader" in c and c["nbgrader"]["grade_id"] not in have]
    free = [i for i, c in enumerate(cells) if not _grade_id(c)]
    same_length = len(cells) == len(released)
    restored = 0
    for position, cell in missing:
        meta = cell["nbgrader"]
        match = next((i for i in free if _source(cells[i]).strip() == cell["source"].strip()
                      and cells[i].get("cell_type") == cell["cell_type"]), None)
        if match is None and meta.get("solution"):
            first = _first_line(cell["source"])
            match = next((i for i in free if first and _first_line(_source(cells[i])) == first), None)
        if match is None and same_length and position in free:
            match = position
        if match is None:
            continue
        free.remove(match)
        target = cells[match]
        target.setdefault("metadata", {})["nbgrader"] = {**copy.deepcopy(meta), "schema_version": 3}
        target["cell_type"] = cell["cell_type"]
        restored += 1
    return restored


# ----------------------------------------------------------------------------- steps 2-4: what the grader runs

def _as_cell(entry: dict, cell_type: str | None = None) -> dict:
    cell_type = cell_type or entry["cell_type"]
    cell = {"cell_type": cell_type, "metadata": {"nbgrader": {**entry["nbgrader"], "schema_version": 3}},
            "source": entry["source"],
            "id": "graded-" + re.sub(r"[^A-Za-z0-9_-]", "-", entry["nbgrader"]["grade_id"])[:50]}
    if cell_type == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def deduplicate(notebook, manifest) -> list[str]:
    """Step 2, in place: of the cells that share a ``grade_id`` (a copied cell keeps it), only the last
    keeps its nbgrader metadata, as nbgrader's ``DeduplicateIds`` does; so do cells whose ``grade_id``
    the release does not have. Returns the duplicated grade ids.

    The grader must do this itself before nbgrader runs: ``DeduplicateIds`` leaves an empty
    ``nbgrader`` dict on the earlier copies, on which ``OverwriteCells`` then fails
    (``KeyError: 'grade_id'``, jupyter/nbgrader#1083), and the whole notebook would score 0.
    """
    released = {c["nbgrader"]["grade_id"] for c in _graded(manifest)}
    seen, duplicated = set(), []
    for cell in reversed(notebook["cells"]):
        grade_id = _grade_id(cell)
        if grade_id is None:
            if isinstance(cell.get("metadata"), dict):
                cell["metadata"].pop("nbgrader", None)
            continue
        if grade_id in seen or grade_id not in released:
            cell["metadata"].pop("nbgrader", None)
            if grade_id in seen and grade_id not in duplicated:
                duplicated.append(grade_id)
        seen.add(grade_id)
    return duplicated


def as_graded(notebook, manifest):
    """A copy of the notebook as the grader runs it (steps 1-4 of the module docstring).

    The check cell (:data:`CHECK_CELL_ID`) is left out: the grader blanks it.
    """
    import nbformat

    notebook = nbformat.from_dict(copy.deepcopy(dict(notebook)))
    for cell in notebook.cells:   # nbgrader's ClearOutput: the run starts from nothing
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    restore_metadata(notebook, manifest)
    released = {c["nbgrader"]["grade_id"]: c for c in _graded(manifest)}
    deduplicate(notebook, manifest)
    # 3. locked cells and cell types as released
    for index, cell in enumerate(notebook.cells):
        grade_id = _grade_id(cell)
        if grade_id is None:
            continue
        entry = released[grade_id]
        if entry["nbgrader"].get("locked") or cell.cell_type != entry["cell_type"]:
            source = entry["source"] if entry["nbgrader"].get("locked") else _source(cell)
            notebook.cells[index] = nbformat.from_dict(_as_cell({**entry, "source": source}))
    # 4. deleted graded cells come back after the graded cell that precedes them in the release
    order = [c["nbgrader"]["grade_id"] for c in _graded(manifest)]
    for position, grade_id in enumerate(order):
        entry = released[grade_id]
        if grade_id in {_grade_id(c) for c in notebook.cells} or not entry["nbgrader"].get("grade"):
            continue
        previous = order[position - 1] if position else None
        where = next((i for i, c in enumerate(notebook.cells) if previous and _grade_id(c) == previous), -1)
        notebook.cells.insert(where + 1, nbformat.from_dict(_as_cell(entry)))
    notebook.cells = [c for c in notebook.cells if _grade_id(c) != CHECK_CELL_ID]
    return notebook


# ----------------------------------------------------------------------------- findings

def _points(entry: dict) -> float:
    points = entry["nbgrader"].get("points") or 0
    return float(points) if entry["nbgrader"].get("grade") else 0.0


def _plural(count: int, noun: str) -> str:
    """>>> _plural(1, "cell"), _plural(3, "code cell")
    ('1 cell', '3 code cells')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cells(grade_ids) -> str:
    """>>> _cells(["a"]), _cells(["a", "b"])
    ('cell a', 'cells a, b')
    """
    return f"cell{'' if len(grade_ids) == 1 else 's'} {_names(grade_ids)}"


def _names(grade_ids) -> str:
    return ", ".join(grade_ids)


def structure_findings(notebook, manifest) -> list[Finding]:
    """Graded cells deleted, duplicated, retyped or changed, as the grader will see them (problems), and
    code cells the release does not have (advice). The notebook is not changed."""
    notebook = copy.deepcopy(notebook)
    restored = restore_metadata(notebook, manifest)
    released = {c["nbgrader"]["grade_id"]: c for c in _graded(manifest)}
    cells = notebook["cells"]
    findings = []
    counts: dict[str, int] = {}
    for cell in cells:
        grade_id = _grade_id(cell)
        if grade_id in released:
            counts[grade_id] = counts.get(grade_id, 0) + 1
    last = {_grade_id(c): c for c in cells if _grade_id(c) in released}

    deleted = {"test": [], "report": [], "answer": []}
    for grade_id, entry in released.items():
        if grade_id == CHECK_CELL_ID:
            continue
        kind = _kind(entry["nbgrader"])
        if grade_id not in counts and kind in deleted:
            deleted[kind].append(grade_id)
    if deleted["test"]:
        findings.append(Finding(
            "deleted", f"Test {_cells(deleted['test'])} deleted. The grader "
            "puts the original back, runs it (see its result below) and flags your submission for the instructor.",
            "Copy the cell back from a fresh copy of the exercise.", tuple(deleted["test"]),
            sum(_points(released[g]) for g in deleted["test"]),
            status=f"test cells deleted (restored and graded): {_names(deleted['test'])}"))
    if deleted["report"]:
        findings.append(Finding(
            "deleted", f"Report {_cells(deleted['report'])} deleted. The "
            "grader puts them back EMPTY: text you wrote elsewhere is not graded.",
            "Put your text back into those cells (copy them from a fresh copy of the exercise).",
            tuple(deleted["report"]), sum(_points(released[g]) for g in deleted["report"]),
            status=f"report cells deleted (restored empty): {_names(deleted['report'])}"))
    if deleted["answer"]:
        findings.append(Finding(
            "deleted", f"Answer {_cells(deleted['answer'])} deleted. The "
            "grader does not put them back (if you wrote the answer in another cell, the results below say whether "
            "it is found).",
            "Write your answer in the answer cell of a fresh copy of the exercise, under its heading.",
            tuple(deleted["answer"]), status=f"answer cells deleted: {_names(deleted['answer'])}"))

    duplicated = sorted(g for g, n in counts.items() if n > 1)
    if duplicated:
        findings.append(Finding(
            "duplicated", f"Cells copied with their grading id: {_names(duplicated)}. The grader keeps only the LAST "
            "copy of each as the graded cell (the others run as ordinary code) and flags your submission.",
            "Delete the extra copies (keep the one with your final answer, in the original place).",
            tuple(duplicated), status=f"cells duplicated (the last copy graded): {_names(duplicated)}"))

    retyped = sorted(g for g, c in last.items() if c.get("cell_type") != released[g]["cell_type"])
    if retyped:
        findings.append(Finding(
            "retyped", f"Cells whose type was changed: {_names(retyped)}. The grader turns them back into "
            f"{'/'.join(sorted({released[g]['cell_type'] for g in retyped}))} cells and flags your submission.",
            "Change them back (in Jupyter: select the cell, then Y for code, M for Markdown).", tuple(retyped),
            status=f"cell type changed (restored): {_names(retyped)}"))

    edited = sorted(g for g, c in last.items() if released[g]["nbgrader"].get("locked") and g != CHECK_CELL_ID
                    and c.get("cell_type") == released[g]["cell_type"]
                    and _source(c).strip() != released[g]["source"].strip())
    if edited:
        findings.append(Finding(
            "edited", f"Locked cells changed: {_names(edited)}. The grader runs them as released, not as you "
            "changed them (see their results below), and flags your submission.",
            "Undo your changes to those cells (copy them from a fresh copy of the exercise).",
            tuple(edited), status=f"test cells edited (restored and graded): {_names(edited)}"))

    # a new cell in place of a deleted graded cell (typed again, or pasted from elsewhere)
    missing = deleted["test"] + deleted["report"] + deleted["answer"]
    lookalikes = []
    for cell in cells:
        if _grade_id(cell) or not _source(cell).strip():
            continue
        first = _first_line(_source(cell))
        for grade_id in missing:
            if first and first == _first_line(released[grade_id]["source"]) and grade_id not in lookalikes:
                lookalikes.append(grade_id)
    if lookalikes:
        findings.append(Finding(
            "retyped", f"New cells in place of {_names(lookalikes)}: they look like those cells but are not them "
            "(a cell typed again or pasted has no grading id), so the grader treats them as ordinary cells.",
            "Use the original cells: copy them from a fresh copy of the exercise.", tuple(lookalikes),
            status=f"cells typed again in place of: {_names(lookalikes)}"))

    digests = {c.get("digest") or _digest(c.get("source", "")) for c in manifest["cells"]}
    extra = [c for c in cells if not _grade_id(c) and c.get("cell_type") == "code" and _source(c).strip()
             and _digest(_source(c)) not in digests]
    if extra:
        findings.append(Finding(
            "extra", f"{_plural(len(extra), 'code cell')} not in the exercise as released (your own, or changed "
            "setup cells): they run at grading time like every other cell, which costs nothing if they work.",
            "Make sure they do not fail or take long.", problem=False,
            status=_plural(len(extra), "extra code cell")))
    if restored:
        findings.append(Finding(
            "restored", f"{_plural(restored, 'cell')} without grading metadata (an export, e.g. from Colab, or a "
            "cell pasted back) matched to the exercise by their content, as the grader does.", problem=False,
            status=f"nbgrader metadata restored on {restored} cells"))
    return findings


def which_assignment(notebook, manifests: dict) -> str | None:
    """The exercise whose graded cells the notebook holds most of (by grading id or by content)."""
    ids = {_grade_id(c) for c in notebook.get("cells", [])}
    sources = {_source(c).strip() for c in notebook.get("cells", [])}
    best, best_score = None, 0
    for assignment, manifest in manifests.items():
        graded = _graded(manifest)
        score = sum(1 for c in graded if c["nbgrader"]["grade_id"] in ids or c["source"].strip() in sources)
        if score > best_score:
            best, best_score = assignment, score
    return best


def assignment_findings(notebook, assignment: str, manifests: dict) -> list[Finding]:
    """Problems with the notebook as a whole: another exercise's notebook, or another release's."""
    manifest = manifest_for(assignment, manifests)
    findings = []
    found = which_assignment(notebook, manifests)
    if found is not None and found != assignment:
        total = sum(_points(c) for c in _graded(manifest))
        findings.append(Finding(
            "assignment", f"This is the notebook of exercise {found}, not {assignment}: submitted for {assignment}, "
            f"it would get 0 of {total:g} points.", f"Submit your {assignment}.ipynb instead.", points=total))
        return findings
    made_from, grading = release_of(notebook), manifest["release"]
    if made_from not in ("unknown", grading):
        # what differs between the two releases shows as changed or deleted cells; the stamp costs nothing
        findings.append(Finding(
            "release", f"This notebook was made from release {made_from} of the course; it is graded with "
            f"{grading}. Where their cells differ, the findings above say so.",
            f"If in doubt, download the exercise again (release {grading}) and copy your answers into it.",
            problem=False, status=f"made from release {made_from}, graded with {grading}"))
    return findings



# ----------------------------------------------------------------------------- what the grading kernel lacks

#: Importable packages that an answer could hand any unit's work to (found by attack review: PIL's
#: affine transform, cv2.getRectSubPix and skimage's _warp_fast sample bilinearly, PIL's kernel filter
#: convolves; segment_anything holds unit 10's references); no answer needs them, so no grading kernel can
#: import them.
ALWAYS_HIDDEN = ("PIL", "cv2", "fiftyone", "imageio", "kornia", "matplotlib", "pandas", "segment_anything", "shapely",
                 "skimage", "sklearn", "torchmetrics")


def hidden_modules(assignment: str) -> tuple[str, ...]:
    """Top-level modules the grading kernel cannot import: segedu and the peers the exercise re-implements.

    A peer inside a package that answers need (07 forbids torch's unpooling kernel, not torch) stays
    importable: the exercise lists that package in ``importable``, and the kernel's tripwire watches
    the forbidden prefix instead.

    Besides those, :data:`ALWAYS_HIDDEN`: libraries in the grading environment that no answer needs and
    that do much of what the exercises ask (PIL filters and resamples, OpenCV has a function for nearly
    every unit, pandas interpolates), unless an exercise lists them in ``importable``.
    """
    from segedu.grading.exercises import EXERCISES

    spec = EXERCISES[assignment]
    hidden = {"segedu"} | set(ALWAYS_HIDDEN) | {prefix.split(".")[0] for prefix in spec.forbidden}
    return tuple(sorted(hidden - set(spec.importable)))


def _imported(source: str) -> set[str]:
    """Top-level modules a cell imports (statements, ``__import__`` and ``import_module`` of a literal)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and getattr(node.func, "attr", getattr(node.func, "id", "")) \
                in ("__import__", "import_module"):
            names.add(node.args[0].value.split(".")[0])
    return names


def import_findings(notebook, manifest, hidden) -> list[Finding]:
    """Answer cells that import what the grading kernel lacks (the exercise's reference or peer)."""
    released = {c.get("digest") or _digest(c.get("source", "")) for c in manifest["cells"]}
    locked = {c["nbgrader"]["grade_id"] for c in _graded(manifest) if c["nbgrader"].get("locked")}
    answers: dict[str, list[str]] = {}
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code" or _grade_id(cell) in locked or _digest(_source(cell)) in released:
            continue
        if not _grade_id(cell):   # a cell of the student's own: the check's run shows what fails there
            continue
        found = answers
        for module in sorted(_imported(_source(cell)) & set(hidden)):
            found.setdefault(module, []).append(_grade_id(cell) or f"cell {index + 1}")
    findings = []
    where = lambda found: "; ".join(f"{m} in {', '.join(cells)}" for m, cells in found.items())  # noqa: E731
    if answers:
        findings.append(Finding(
            "import", f"Your answers import what the grader's Python does not have ({where(answers)}). An answer "
                      "may not call the course's reference (segedu) or the library function it re-implements, so the "
                      "grader hides them: those answer cells fail at grading time, and their tests with them.",
            "Write it yourself with the libraries the exercise allows (it says which at the top).",
            tuple(answers), status=f"answers import hidden modules: {', '.join(answers)}"))
    return findings
