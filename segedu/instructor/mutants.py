"""Mutation testing of the graded notebooks: do the test cells notice a small slip in an answer?

Every graded function's solution is mutated, one small change at a time, and each mutant is graded
the way nbgrader grades a submission. A test cell that lets a wrong answer keep its points is a
hole in the grading; a mutant that keeps full marks shows where.

What is mutated: only the answer code, the lines between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` of each solution cell (the signature and the lines a student is given stay).

The operators (Python's ``ast``; each site gives the mutants listed):

=============  ==========================================================================
``constant``   an int ``c`` (not a bool) becomes ``c + 1`` and ``c - 1``; a float ``c``
               becomes ``c * 2`` and ``c / 2`` (``0.0`` becomes ``1.0``)
``arith``      ``+`` ↔ ``-``, ``*`` ↔ ``/``, ``//`` → ``/``, ``%`` → ``//``, ``**`` → ``*``,
               ``@`` → ``*`` (binary and augmented assignments)
``compare``    ``<`` ↔ ``<=``, ``>`` ↔ ``>=``, ``==`` ↔ ``!=``, ``is`` ↔ ``is not``,
               ``in`` ↔ ``not in``
``boundary``   each bound of a slice, and each non-constant index of a subscript (or element
               of a tuple index), becomes ``b + 1`` and ``b - 1``
``negation``   ``not x``, ``-x`` and ``~x`` become ``x``; ``True`` ↔ ``False``
``logic``      ``and`` ↔ ``or``, and their element-wise forms ``&`` ↔ ``|``
=============  ==========================================================================

A mutant's id names its function, operator, line (counted from the ``BEGIN SOLUTION`` line) and the
text it changes, e.g. ``region_grow:compare:L15:19:`abs(img[rr, cc] - total / count) < threshold` ->
`(abs(img[rr, cc] - total / count) <= threshold)``` (line 15 of the answer, column 19); it is stable as
long as that line is. Every site is enumerated; an exercise
with more than ``--max-per-exercise`` mutants is graded on a sample drawn with a fixed seed.

How a mutant is graded: the grading plan (:func:`segedu.grading.plan.build_plan`, the trusted
half of every grading run) is built once per exercise. A worker subprocess per exercise writes the
plan's inputs as a grading run does (:func:`segedu.instructor.verdict.write_inputs`), runs the
notebook's setup cells once, and then forks one child per mutant: the child executes the (mutated)
answer cells, runs each test cell through the kernel runner that nbgrader's grading kernel uses
(``segedu_kernel_runner.run``), reads the results back with the size limits of the verdict, and
:func:`segedu.grading.plan.judge` decides. A mutant is **killed** when it loses points in any cell,
raises, or runs past the per-mutant time limit; it **survives** when it keeps full marks.

**Equivalent** mutants (ones that cannot change any answer) are listed in :data:`EQUIVALENT` with
the reason; they are left out of the percentage. A listed mutant that the operators no longer
produce is an error, so that the list cannot rot.

``make mutants`` prints a table per exercise, every survivor with its diff, and exits non-zero when
an exercise kills less than :data:`THRESHOLD` of its mutants. Child processes need ``os.fork``
(Linux, macOS).
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from segedu.submission.rules import CHECK_CELL_ID

THRESHOLD = 0.90
MAX_PER_EXERCISE = 60
SAMPLE_SEED = 12
TIMEOUT_S = 10.0         # seconds per mutant at most ...
ADAPTIVE_FACTOR = 20.0   # ... and at most this many times the unmutated solution's time,
ADAPTIVE_MIN_S = 2.0     # but never less than this
EXERCISES = ("00_tasks_and_metrics", "01_thresholding", "02_edges", "03_regions", "04_transpose_convolution",
             "05_fcn", "06_unet", "07_segnet", "08_deeplab", "09_mask_rcnn", "10_sam", "11_coco_eda")

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# seconds per mutant, roughly
SLOW_FIRST = {"03_regions": 3, "02_edges": 2, "08_deeplab": 2, "09_mask_rcnn": 2, "04_transpose_convolution": 1,
              "07_segnet": 1}

# (assignment, function, mutant id) -> why no input (that the grading accepts) can tell the mutant from the
# solution. A mutant listed here that the operators no longer produce is an error (the list cannot rot).
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("01_thresholding", "otsu_threshold", "otsu_threshold:constant:L5:62:`1` -> `0`"):
        "np.maximum(weight0, 1) only guards a division by zero, and weight0 never is 0: the first bin always "
        "holds the image's minimum, so the cumulative count is at least 1",
    ("01_thresholding", "otsu_threshold", "otsu_threshold:constant:L6:77:`1` -> `0`"):
        "the same guard for class 1: the last bin always holds the image's maximum, so weight1 is at least 1",
    ("01_thresholding", "adaptive_threshold",
     "adaptive_threshold:compare:L7:11:`img > local - offset` -> `(img >= (local - offset))`"):
        "> and >= differ only for pixels exactly on the threshold surface, and the grading lets those go either "
        "way by design (adaptive_ties: the surface is a float sum whose rounding differs between correct answers)",
    ("02_edges", "non_maximum_suppression",
     "non_maximum_suppression:constant:L2:44:`180.0` -> `360.0`"):
        "the direction bins repeat every 180 degrees: floor((d + 180 + 22.5) / 45) % 4 = floor((d + 22.5) / 45) % 4, "
        "so reducing modulo 360 instead of 180 picks the same bin",
    ("03_regions", "kmeans_segment", "kmeans_segment:constant:L1:55:`1` -> `2`"):
        "reshape(n, -2): numpy takes any negative size as the one unknown dimension, the same as -1",
    ("03_regions", "kmeans_segment",
     "kmeans_segment:compare:L7:11:`labels is not None` -> `(labels is None)`"):
        "the mutant never stops early and always runs max_iter assignments; once the labels stop changing, "
        "Lloyd's iteration is at a fixed point, so the extra rounds return the same labels and centres",
    ("07_segnet", "segnet_decoder_stage",
     "segnet_decoder_stage:constant:L1:33:`2` -> `1`"):
        "the stage always passes output_size, and max_unpool2d uses kernel_size only for the default output size "
        "(and the default stride, which nothing reads once output_size is given): the scatter is the same",
    ("07_segnet", "segnet_decoder_stage",
     "segnet_decoder_stage:constant:L1:33:`2` -> `3`"):
        "the same: with output_size given, the kernel size passed to max_unpool2d changes no position or size",
    ("09_mask_rcnn", "bilinear_interpolate", "bilinear_interpolate:boundary:L3:42:`-2` -> `((-2) - 1)`"):
        "the zero returned outside the map has shape feature.shape[:-3]: () for the (H, W) maps the tests grade, as "
        "feature.shape[:-2]; for the (C, H, W) maps roi_align passes, the scalar 0 broadcasts into the (C,) sum the same",
    ("09_mask_rcnn", "bilinear_interpolate", "bilinear_interpolate:constant:L3:43:`2` -> `3`"):
        "the same slice written feature.shape[:-3]: a 0-d zero for (H, W) maps, and a scalar 0 that broadcasts into "
        "roi_align's (C,) sum for (C, H, W) ones",
    ("11_coco_eda", "label_map", "label_map:arith:L13:83:`height - 1` -> `(height + 1)`"):
        "the row of output row i is floor((i + 0.5) * height / size[0]) <= height - 1, so np.minimum(..., height "
        "- 1) never binds and a larger bound changes nothing",
    ("11_coco_eda", "label_map", "label_map:constant:L13:92:`1` -> `0`"):
        "np.minimum(..., height - 0): the same bound that never binds (the row index is at most height - 1)",
    ("11_coco_eda", "label_map", "label_map:arith:L14:82:`width - 1` -> `(width + 1)`"):
        "the column of output column j is floor((j + 0.5) * width / size[1]) <= width - 1: the bound never binds",
    ("11_coco_eda", "label_map", "label_map:constant:L14:90:`1` -> `0`"):
        "np.minimum(..., width - 0): the same bound that never binds (the column index is at most width - 1)",
}


# ----------------------------------------------------------------------------- mutation operators

@dataclass(frozen=True)
class Mutant:
    assignment: str
    function: str       # the solution cell's function (the first name it defines)
    cell: int           # index of the solution cell in the notebook
    operator: str
    line: int           # line counted from the BEGIN SOLUTION line (1 = the first answer line)
    column: int         # where the changed text starts on that line
    before: str         # the source text that changes
    after: str          # what it becomes
    source: str         # the whole mutated cell

    @property
    def id(self) -> str:
        where = f"{self.function}:{self.operator}:L{self.line}:{self.column}"
        return f"{where}:`{_short(self.before)}` -> `{_short(self.after)}`"


def _short(text: str, limit: int = 70) -> str:
    """``text`` on one line, cut to ``limit`` characters; a cut one ends in a digest of the whole, so
    that two long expressions that differ only after the cut keep different ids."""
    import hashlib

    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    return f"{text[:limit - 12]}...#{digest}"


_ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
          ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult}
_LOGIC_BIN = {ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd}
_COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


def _shifted(node: ast.expr, delta: int) -> ast.expr:
    return ast.BinOp(left=node, op=ast.Add() if delta > 0 else ast.Sub(), right=ast.Constant(abs(delta)))


def _float_variants(value: float) -> list[float]:
    return [1.0] if value == 0 else [value * 2, value / 2]


def site_mutations(node: ast.AST) -> list[tuple[str, ast.AST, ast.AST]]:
    """``(operator, node to replace, its replacement)`` for every mutation of this one node."""
    import copy

    out = []
    if isinstance(node, ast.Constant) and not isinstance(node.value, (str, bytes)) and node.value is not None:
        if isinstance(node.value, bool):
            out.append(("negation", node, ast.Constant(not node.value)))
        elif isinstance(node.value, int):
            out += [("constant", node, ast.Constant(node.value + 1)), ("constant", node, ast.Constant(node.value - 1))]
        elif isinstance(node.value, float):
            out += [("constant", node, ast.Constant(v)) for v in _float_variants(node.value)]
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        table = _ARITH if type(node.op) in _ARITH else _LOGIC_BIN
        kind = "arith" if type(node.op) in _ARITH else "logic"
        if type(node.op) in table:
            new = copy.copy(node)
            new.op = table[type(node.op)]()
            out.append((kind, node, new))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _COMPARE:
                new = copy.copy(node)
                new.ops = list(node.ops)
                new.ops[i] = _COMPARE[type(op)]()
                out.append(("compare", node, new))
    elif isinstance(node, ast.BoolOp):
        new = copy.copy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        out.append(("logic", node, new))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
        if not (isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)):  # -1 is a constant
            out.append(("negation", node, node.operand))
    elif isinstance(node, ast.Slice):
        for bound in (node.lower, node.upper):
            if bound is not None and not isinstance(bound, ast.Constant):
                out += [("boundary", bound, _shifted(bound, +1)), ("boundary", bound, _shifted(bound, -1))]
    elif isinstance(node, ast.Subscript):
        elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for element in elements:
            if isinstance(element, (ast.Name, ast.BinOp, ast.UnaryOp, ast.Attribute, ast.Call)) and not (
                    isinstance(element, ast.UnaryOp) and isinstance(element.operand, ast.Constant)):
                out += [("boundary", element, _shifted(element, +1)), ("boundary", element, _shifted(element, -1))]
    return out


def _offsets(source: str) -> list[int]:
    starts, total = [], 0
    for line in source.splitlines(keepends=True):
        starts.append(total)
        total += len(line)
    starts.append(total)
    return starts


def _replace(source: str, node: ast.AST, text: str, starts: list[int]) -> str:
    """``source`` with the text of ``node`` replaced (``col_offset`` counts UTF-8 bytes)."""
    def position(line: int, col: int) -> int:
        prefix = source[starts[line - 1]:].encode("utf-8")[:col].decode("utf-8", errors="ignore")
        return starts[line - 1] + len(prefix)

    begin = position(node.lineno, node.col_offset)
    end = position(node.end_lineno, node.end_col_offset)
    return source[:begin] + text + source[end:]


def _segment(source: str, node: ast.AST) -> str:
    return ast.get_source_segment(source, node) or ast.unparse(node)


def _operand(source: str, node: ast.AST) -> str:
    """The text of an operand, in parentheses unless it is atomic (so that precedence cannot change)."""
    text = _segment(source, node)
    atomic = (ast.Name, ast.Constant, ast.Call, ast.Attribute, ast.Subscript, ast.List, ast.Tuple, ast.Dict)
    if isinstance(node, atomic) and not (isinstance(node, ast.Constant) and text.startswith("-")):
        return text
    return f"({text})"


def _render(operator: str, old: ast.AST, new: ast.AST, source: str) -> str:
    """The text that replaces ``old``: the mutated node, keeping the original text of its children."""
    if isinstance(old, ast.AugAssign):
        target = _segment(source, old.target)
        return f"{target} {_op_text(new.op)}= {_segment(source, old.value)}"
    if isinstance(new, ast.BinOp) and operator in ("arith", "logic"):
        return f"({_operand(source, old.left)} {_op_text(new.op)} {_operand(source, old.right)})"
    if isinstance(new, ast.BinOp) and operator == "boundary":
        return f"({_operand(source, old)} {_op_text(new.op)} {new.right.value})"
    if isinstance(new, ast.Compare):
        parts = [_operand(source, old.left)]
        for op, comparator in zip(new.ops, old.comparators):
            parts += [_COMPARE_TEXT[type(op)], _operand(source, comparator)]
        return "(" + " ".join(parts) + ")"
    if isinstance(new, ast.BoolOp):
        word = " and " if isinstance(new.op, ast.And) else " or "
        return "(" + word.join(_operand(source, v) for v in old.values) + ")"
    if operator == "negation" and isinstance(old, ast.UnaryOp):
        return _operand(source, old.operand)
    text = ast.unparse(new)
    return f"({text})" if text.startswith("-") else text


_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|"}
_COMPARE_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
                 ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


def _op_text(op) -> str:
    return _OP_TEXT[type(op)]


def solution_lines(source: str) -> tuple[int, int] | None:
    """(first, last) 1-based line numbers of the answer code between the markers, or None."""
    lines = source.splitlines()
    begin = next((i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)), None)
    end = next((i for i, line in enumerate(lines) if line.strip().startswith(END)), None)
    if begin is None or end is None or end <= begin:
        return None
    return begin + 2, end   # 1-based: the line after BEGIN .. the line before END


def mutate_source(source: str, assignment: str = "", function: str = "", cell: int = 0,
                  region: tuple[int, int] | None = None) -> list[Mutant]:
    """Every mutant of the code in ``region`` (default: between the solution markers, else all)."""
    region = region or solution_lines(source) or (1, len(source.splitlines()))
    tree = ast.parse(source)
    starts = _offsets(source)
    mutants, seen = [], set()
    for node in ast.walk(tree):
        for operator, old, new in site_mutations(node):
            if not (region[0] <= old.lineno and old.end_lineno <= region[1]):
                continue
            if isinstance(old, ast.Constant) and _in_docstring_or_fstring(tree, old):
                continue
            before = _segment(source, old)
            after = _render(operator, old, new, source)
            mutated = _replace(source, old, after, starts)
            if mutated in seen or mutated == source:
                continue
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            seen.add(mutated)
            mutants.append(Mutant(assignment, function, cell, operator, old.lineno - region[0] + 1,
                                  old.col_offset, before, after, mutated))
    mutants.sort(key=lambda m: (m.line, m.column, m.id))
    return mutants


def _in_docstring_or_fstring(tree: ast.AST, constant: ast.Constant) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and any(v is constant for v in ast.walk(node)):
            return True
    return False


def diff(original: str, mutated: str) -> str:
    lines = difflib.unified_diff(original.splitlines(), mutated.splitlines(), "solution", "mutant", n=0, lineterm="")
    return "\n".join(line for line in lines if not line.startswith(("---", "+++", "@@")))


# ----------------------------------------------------------------------------- the notebooks

def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def solution_cells(notebook) -> list[tuple[int, str, str]]:
    """``(cell index, grade id, source)`` of every answer cell (one with solution markers); in the course
    an answer cell's grade id is the name of the function it defines."""
    from segedu.grading.plan import _defined_names

    cells = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and _meta(cell).get("solution") and solution_lines(cell.source):
            names = _defined_names(cell.source)
            name = _meta(cell).get("grade_id") or (names[0] if names else f"cell{index}")
            cells.append((index, name, cell.source))
    return cells


def all_mutants(notebook, assignment: str) -> list[Mutant]:
    mutants = []
    for index, function, source in solution_cells(notebook):
        mutants += mutate_source(source, assignment, function, index)
    return mutants


def equivalent_problems(found: dict[str, list[Mutant]], equivalent: dict | None = None) -> list[str]:
    """Listed equivalents that no mutant of their exercise matches any more (checked exercises only)."""
    equivalent = EQUIVALENT if equivalent is None else equivalent
    problems = []
    for (assignment, function, mutant_id), reason in equivalent.items():
        if not reason or not reason.strip():
            problems.append(f"{assignment} {mutant_id}: an equivalent mutant needs its reason")
        if assignment not in found:
            continue
        if not mutant_id.startswith(function + ":"):
            problems.append(f"{assignment} {mutant_id}: its id does not start with the function {function!r}")
        if mutant_id not in {m.id for m in found[assignment]}:
            problems.append(f"{assignment} {mutant_id}: listed as equivalent, but no such mutant exists any more "
                            f"(the solution changed): remove or update the entry in EQUIVALENT")
    return problems


def select(mutants: list[Mutant], assignment: str, limit: int, equivalent: dict | None = None):
    """(mutants to grade, equivalent ones): equivalents are left out, the rest sampled down to ``limit``."""
    equivalent = EQUIVALENT if equivalent is None else equivalent
    listed = {mid for (a, _, mid) in equivalent if a == assignment}
    same = [m for m in mutants if m.id in listed]
    rest = [m for m in mutants if m.id not in listed]
    if limit and len(rest) > limit:
        rest = sorted(random.Random(f"{SAMPLE_SEED}:{assignment}").sample(rest, limit),
                      key=lambda m: (m.cell, m.line, m.column, m.id))
    return rest, same


# ----------------------------------------------------------------------------- grading (worker side)

@dataclass
class Outcome:
    name: str                  # the mutant's id, or the answer's name
    killed: bool
    how: str = ""              # the first cell that lost points, "timeout" or "crash: ..."
    seconds: float = 0.0
    lost: list = field(default_factory=list)   # grade ids of the cells that lost points (as far as graded)


def _child(sources: dict, plan, io_dir: Path, report: Path, stop_early: bool) -> None:
    """In the forked child: run the answer cells, then every test cell as a grading kernel would."""
    import __main__

    from segedu.grading.plan import judge
    from segedu.instructor.verdict import read_results, _wire

    runner = _wire()
    namespace = vars(__main__)
    lost = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        for index in sorted(sources):
            exec(compile(sources[index], f"<answer cell {index}>", "exec"), namespace)
    except BaseException as error:   # a mutant that does not even define its function
        lost.append(f"answer cell: {type(error).__name__}: {error}")
    if not lost:
        for grade_id, cases in plan.cells.items():
            runner.run(grade_id)
            message = judge(plan.assignment, cases, read_results(io_dir / "out" / grade_id, len(cases)))
            if message is not None:
                lost.append(f"{grade_id}: {message.splitlines()[0]}")
                if stop_early:
                    break
    report.write_text(json.dumps(lost))


def _run_one(sources: dict, plan, io_dir: Path, timeout: float, stop_early: bool) -> tuple[list, str]:
    out = io_dir / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    report = io_dir / "report.json"
    report.unlink(missing_ok=True)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:   # the child: never returns
        code = 0
        try:
            _child(sources, plan, io_dir, report, stop_early)
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return [], "timeout"
        time.sleep(0.005)
    try:
        return json.loads(report.read_text()), ""
    except (OSError, ValueError):
        return [], f"crash (exit status {status})"


def work(job: dict) -> dict:
    """Grade the job's variants of one exercise; runs in the worker subprocess (see :func:`main`)."""
    import nbformat

    from segedu.grading.plan import build_plan
    from segedu.instructor.verdict import write_inputs

    try:
        import torch

        torch.set_num_threads(1)   # children are forked: no thread pool may exist before
    except ImportError:
        pass
    assignment = job["assignment"]
    notebook = nbformat.read(job["notebook"], as_version=4)
    started = time.monotonic()
    plan = build_plan(notebook, assignment, job["seed"])
    plan_seconds = time.monotonic() - started
    io_dir = Path(tempfile.mkdtemp(prefix="sg-mutants-"))
    os.environ["SEGEDU_KERNEL_IO"] = str(io_dir)
    write_inputs(plan, io_dir / "in")
    import types

    main_module = types.ModuleType("__main__")   # what the kernel runner reads the answers from
    sys.modules["__main__"] = main_module
    namespace = vars(main_module)
    answers = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or "google.colab" in cell.source:
            continue
        meta = _meta(cell)
        if meta.get("solution"):
            answers[index] = cell.source
        elif not meta.get("grade") and meta.get("grade_id") != CHECK_CELL_ID:
            exec(compile(cell.source, f"<setup cell {index}>", "exec"), namespace)
    outcomes = []
    timeout = job["timeout"]
    for number, (name, replaced) in enumerate(job["variants"]):
        sources = {**answers, **{int(k): v for k, v in replaced.items()}}
        began = time.monotonic()
        lost, failure = _run_one(sources, plan, io_dir, timeout, job["stop_early"])
        seconds = time.monotonic() - began
        cells = [entry.split(":", 1)[0] for entry in lost]
        outcomes.append(Outcome(name, bool(lost or failure), failure or (lost[0] if lost else ""), seconds,
                                cells).__dict__)
        if number == 0 and job.get("adaptive") and not (lost or failure):
            # the first variant is the solution: a mutant 20 times slower than it is stuck in a loop
            timeout = min(timeout, max(ADAPTIVE_MIN_S, ADAPTIVE_FACTOR * seconds))
    shutil.rmtree(io_dir, ignore_errors=True)
    return {"outcomes": outcomes, "plan_seconds": plan_seconds}


def run_worker(assignment: str, notebook: Path, variants: list[tuple[str, dict]], *, seed: int | None = None,
               timeout: float = TIMEOUT_S, stop_early: bool = True, adaptive: bool = False) -> dict:
    """Grade ``variants`` (name, {cell index: source}) of one exercise in a fresh worker subprocess.

    ``stop_early``: a variant's grading stops at its first cell that loses points (enough to call a
    mutant killed). ``adaptive``: the first variant is the solution, and the time limit of the others
    shrinks to :data:`ADAPTIVE_FACTOR` times its time.
    """
    from segedu.grading import DEFAULT_GRADING_SEED

    job = {"assignment": assignment, "notebook": str(notebook), "variants": variants,
           "seed": DEFAULT_GRADING_SEED if seed is None else seed, "timeout": timeout, "stop_early": stop_early,
           "adaptive": adaptive}
    with tempfile.TemporaryDirectory(prefix="sg-mutants-job-") as folder:
        job_path, result_path = Path(folder) / "job.pkl", Path(folder) / "result.pkl"
        job_path.write_bytes(pickle.dumps(job))
        env = dict(os.environ)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = "1"
        env.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env.pop("SEGEDU_KERNEL_IO", None)
        done = subprocess.run([sys.executable, "-m", "segedu.instructor.mutants", "--worker", str(job_path),
                               str(result_path)], env=env, capture_output=True, text=True)
        if done.returncode != 0 or not result_path.exists():
            raise RuntimeError(f"the mutation worker of {assignment} failed (exit {done.returncode}):\n"
                               f"{done.stderr[-3000:]}")
        return pickle.loads(result_path.read_bytes())


def grade_answers(assignment: str, notebook: Path, answers: dict[str, dict[str, str]], **options) -> dict:
    """Grade whole answers, ``{name: {answer cell's grade id: the code typed into it}}``, in one worker.

    Returns ``{name: Outcome}``; every test cell is graded (``Outcome.lost`` lists those that lost points).
    """
    import nbformat

    cells = {function: index for index, function, _ in solution_cells(nbformat.read(notebook, as_version=4))}
    variants = []
    for name, functions in answers.items():
        unknown = set(functions) - set(cells)
        if unknown:
            raise KeyError(f"{assignment} has no answer cell for {sorted(unknown)}")
        variants.append((name, {str(cells[f]): source for f, source in functions.items()}))
    options.setdefault("stop_early", False)
    result = run_worker(assignment, notebook, variants, **options)
    return {o["name"]: Outcome(**o) for o in result["outcomes"]}


# ----------------------------------------------------------------------------- the report

@dataclass
class ExerciseResult:
    assignment: str
    total: int                       # every mutant the operators produce
    graded: list = field(default_factory=list)     # (Mutant, Outcome)
    equivalent: list = field(default_factory=list)
    seconds: float = 0.0
    baseline: str = ""               # what went wrong with the unmutated solution ("" when full marks)

    @property
    def killed(self) -> int:
        return sum(o.killed for _, o in self.graded)

    @property
    def survivors(self) -> list:
        return [(m, o) for m, o in self.graded if not o.killed]

    @property
    def score(self) -> float:
        return self.killed / len(self.graded) if self.graded else 1.0

    @property
    def ok(self) -> bool:
        return not self.baseline and self.score >= THRESHOLD


def mutation_test(root: Path, assignment: str, *, limit: int = MAX_PER_EXERCISE, timeout: float = TIMEOUT_S,
                  seed: int | None = None, only: str | None = None) -> ExerciseResult:
    """Grade the mutants of one exercise (``only``: those whose id contains this text)."""
    import nbformat

    path = Path(root) / "solutions" / assignment / f"{assignment}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    mutants = all_mutants(notebook, assignment)
    problems = equivalent_problems({assignment: mutants})
    if problems:
        raise ValueError("\n".join(problems))
    chosen, same = select(mutants, assignment, 0 if only else limit)
    if only:
        chosen = [m for m in chosen if only in m.id]
    variants = [("solution", {})] + [(m.id, {str(m.cell): m.source}) for m in chosen]
    began = time.monotonic()
    result = run_worker(assignment, path, variants, seed=seed, timeout=timeout, adaptive=True)
    outcomes = [Outcome(**o) for o in result["outcomes"]]
    baseline = outcomes[0].how if outcomes[0].killed else ""
    return ExerciseResult(assignment, len(mutants), list(zip(chosen, outcomes[1:])), same,
                          time.monotonic() - began, baseline)


def format_report(results: list[ExerciseResult], root: Path | None = None) -> str:
    lines = [f"{'exercise':<26} {'mutants':>7} {'graded':>6} {'killed':>6} {'equiv.':>6} {'survived':>8} "
             f"{'killed %':>8} {'seconds':>7}"]
    for r in results:
        if r.baseline:
            flag = "  <- the solution itself loses points"
        elif not r.ok:
            flag = f"  <- below {100 * THRESHOLD:.0f} %"
        else:
            flag = ""
        lines.append(f"{r.assignment:<26} {r.total:>7} {len(r.graded):>6} {r.killed:>6} {len(r.equivalent):>6} "
                     f"{len(r.survivors):>8} {100 * r.score:>7.1f}% {r.seconds:>7.1f}{flag}")
    for r in results:
        if r.baseline:
            lines += ["", f"{r.assignment}: the unmutated solution does not keep full marks: {r.baseline}"]
        for mutant, _ in r.survivors:
            original = next(c for c in _cells(root, r.assignment) if c[0] == mutant.cell)[2] if root else ""
            lines += ["", f"survivor {r.assignment} {mutant.id}", diff(original, mutant.source)]
    return "\n".join(lines)


def _cells(root, assignment):
    import nbformat

    return solution_cells(nbformat.read(Path(root) / "solutions" / assignment / f"{assignment}.ipynb",
                                        as_version=4))


def mutants_command(root: Path, assignments: list[str] | None = None, *, limit: int = MAX_PER_EXERCISE,
                    timeout: float = TIMEOUT_S, only: str | None = None, jobs: int = 2) -> int:
    """``make mutants``: the table, the survivors, exit status 1 below the threshold.

    ``jobs`` exercises are graded at the same time, each in its own worker process.
    """
    from concurrent.futures import ThreadPoolExecutor

    import nbformat

    chosen = assignments or [a for a in EXERCISES if (Path(root) / "solutions" / a).is_dir()]
    found = {}
    for assignment in EXERCISES:
        path = Path(root) / "solutions" / assignment / f"{assignment}.ipynb"
        if path.exists():
            found[assignment] = all_mutants(nbformat.read(path, as_version=4), assignment)
    problems = equivalent_problems(found)
    if problems:
        print("\n".join(problems))
        return 1
    began = time.monotonic()

    def one(assignment):
        result = mutation_test(root, assignment, limit=limit, timeout=timeout, only=only)
        print(f"{assignment}: {result.killed}/{len(result.graded)} killed in {result.seconds:.0f} s", flush=True)
        return result

    # the slowest exercises first, so that the two workers finish close together
    order = sorted(chosen, key=lambda a: -SLOW_FIRST.get(a, 0))
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        done = dict(zip(order, pool.map(one, order)))
    results = [done[a] for a in chosen]
    print(format_report(results, root))
    for (assignment, function, mutant_id), reason in EQUIVALENT.items():
        if assignment in chosen:
            print(f"equivalent {assignment} {mutant_id}: {reason}")
    print(f"mutation testing took {time.monotonic() - began:.0f} s")
    return 0 if all(r.ok for r in results) else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        job = pickle.loads(Path(argv[1]).read_bytes())
        Path(argv[2]).write_bytes(pickle.dumps(work(job)))
        return 0
    raise SystemExit("usage: python -m segedu.instructor mutants [ASSIGNMENT ...]")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
