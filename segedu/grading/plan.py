"""The trusted half of a grading run: which cases each test cell checks, and the verdict.

A test cell of a graded notebook reads as a student would run it (``ex.check(...)`` compares with
the reference right there, with hints). In a grading run the same cells are not trusted to compare:
the student's kernel could patch anything it shares with them. Instead

1. :func:`build_plan` executes the instructor's test cells *here*, outside every student kernel,
   with a recorder in place of each student function. Every ``ex.check`` call becomes a
   :class:`Case`: its inputs (drawn from the term's grading seed), the reference's answer and the
   comparator's options. The plan is built once per grading run.
2. The kernel only calls the student's functions on those inputs and saves the results as data
   (``segedu_kernel_runner``).
3. :func:`judge` compares the saved results with the plan's answers and writes the message the
   student sees, the same message ``ex.check`` would give. The plan also holds, per case, what each
   known mistake of the function returns on its inputs (:mod:`segedu.grading.hints`), so that the
   verdict can name the mistake a result makes, as ``ex.check`` does.

Nothing here imports or executes anything a student wrote.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import hashlib
import io
import re
import shutil
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path

from . import Exercise, raised_hints, returned_hints
from .exercises import EXERCISES, graded_function
from ..submission.rules import CHECK_CELL_ID


class PlanError(RuntimeError):
    """A test cell that cannot be planned (an authoring error in the course, not a student's)."""


@dataclass
class Case:
    function: str        # the student's function, by the name the notebook defines
    graded: str          # the graded function in the exercise's registry
    args: tuple
    kwargs: dict
    case: str
    hidden: bool
    reveal: bool
    call: str            # how the message names the call
    expected: object = None
    options: dict = field(default_factory=dict)
    secret: bool = False  # a visible case worked out by hand (reveal=False): no expected value is shown
    mistakes: tuple = ()  # (name, hint, what the known mistake returns here) of each mistake that differs


@dataclass
class Plan:
    assignment: str
    seed: int
    cells: dict          # grade_id -> list[Case]
    fingerprint: str = ""


class StudentFunction:
    """Stands in for a student's function while the instructor's test cells are planned."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise PlanError(f"a test cell calls {self.name} directly; test cells must go through ex.check")

    def __repr__(self) -> str:
        return f"<student's {self.name}>"


class _Recorder(Exercise):
    """``exercise(...)`` while planning: every ``check`` is recorded and answered by the reference."""

    def __init__(self, spec, seed: int, cases: list):
        super().__init__(spec)
        self._plan_seed, self._cases = seed, cases

    def _seed(self) -> int:
        return self._plan_seed

    def check(self, name, student_function, *args, case: str, hidden: bool = False, reveal=None, **kwargs):
        try:
            self.graded(name)
        except KeyError as error:
            raise PlanError(error.args[0]) from None
        if not isinstance(student_function, StudentFunction):
            raise PlanError(f"ex.check({name!r}, ...) must receive the student's function by its name.")
        expected, options = self.expected(name, args, kwargs)
        self._cases.append(Case(
            function=student_function.name, graded=name, args=copy.deepcopy(args), kwargs=copy.deepcopy(kwargs),
            case=case, hidden=hidden, reveal=self._reveal(hidden, reveal),
            call=self._call_text(name, args, kwargs, case, hidden), expected=expected, options=options,
            secret=self._secret(hidden, reveal), mistakes=self._mistakes(name, args, kwargs, expected, options)))

    def _mistakes(self, name, args, kwargs, expected, options) -> tuple:
        try:
            return self.mistaken_answers(name, args, kwargs, expected, options)
        except Exception:   # a broken hint must not stop a grading run: the case is graded without hints
            return ()


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _defined_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def test_cells(notebook) -> list:
    """The autograded test cells of a source notebook, in order."""
    return [c for c in notebook.cells if c.cell_type == "code" and _meta(c).get("grade") and not _meta(c).get("solution")]


def fingerprint(notebook, assignment: str, seed: int) -> str:
    """What a plan depends on: the notebook's cells, the seed and the grading code."""
    digest = hashlib.sha256(f"{assignment}\n{seed}\n".encode())
    for cell in notebook.cells:
        digest.update(cell.cell_type.encode() + cell.source.encode() + b"\0")
    digest.update(package_fingerprint().encode())
    return digest.hexdigest()


def package_fingerprint() -> str:
    """A hash of segedu's own code: references and comparators change what a plan holds."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_plan(notebook, assignment: str, seed: int) -> Plan:
    """Run the instructor's test cells with recorders; returns every case with its answer."""
    if assignment not in EXERCISES:
        raise PlanError(f"No graded exercise is called {assignment!r}.")
    spec = EXERCISES[assignment]
    scratch = tempfile.mkdtemp(prefix="segedu-plan-")
    namespace = {"__name__": "__main__"}
    cells: dict[str, list[Case]] = {}
    current: list = []

    def exercise(name: str):
        if name != assignment:
            raise PlanError(f"a test cell of {assignment} asks for exercise({name!r})")
        return _Recorder(spec, seed, current)

    grading_module = types.SimpleNamespace(exercise=exercise)
    real_import = builtins.__import__

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "segedu.grading" and fromlist:
            return grading_module
        return real_import(name, globals, locals, fromlist, level)

    namespace["__builtins__"] = {**vars(builtins), "__import__": importer}
    previous_tempdir = tempfile.tempdir
    tempfile.tempdir = scratch   # test cells write small datasets to mkdtemp(); keep them in our folder
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in notebook.cells:
                if cell.cell_type != "code":
                    continue
                meta = _meta(cell)
                if meta.get("solution"):
                    for name in _defined_names(cell.source):
                        namespace[name] = StudentFunction(name)
                elif meta.get("grade"):
                    current.clear()
                    try:
                        exec(compile(cell.source, f"<test cell {meta['grade_id']}>", "exec"), namespace)
                    except PlanError:
                        raise
                    except Exception as error:
                        raise PlanError(f"test cell {meta['grade_id']} of {assignment} failed while planning: "
                                        f"{type(error).__name__}: {error}") from error
                    if not current:
                        raise PlanError(f"test cell {meta['grade_id']} of {assignment} checks nothing")
                    cells[meta["grade_id"]] = list(current)
                elif "google.colab" not in cell.source and meta.get("grade_id") != CHECK_CELL_ID:
                    exec(compile(cell.source, "<setup cell>", "exec"), namespace)
    finally:
        tempfile.tempdir = previous_tempdir
        shutil.rmtree(scratch, ignore_errors=True)
    return Plan(assignment, seed, cells, fingerprint(notebook, assignment, seed))


# ----------------------------------------------------------------------------- the verdict

MISSING = object()


def _not_implemented(name: str) -> str:
    return (f"{name} is not implemented yet: it raised NotImplementedError. "
            f"Replace the `raise NotImplementedError()` line with your code.")


MESSAGE_CHARS = 300   # of a student's own error message: enough to debug, too little to carry data out


def _plain_name(name) -> bool:
    return isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,60}", name) is not None


def _builtin_exception(name) -> bool:
    value = getattr(builtins, name, None) if isinstance(name, str) else None
    return isinstance(value, type) and issubclass(value, BaseException)


def judge_case(assignment: str, case: Case, result) -> list[str]:
    """The problems of one result (empty when right). ``result`` is a decoded value or ``MISSING``."""
    name = case.graded
    if result is MISSING:
        return [f"{case.call}: no result was saved, so this check failed. The cell stopped before it "
                f"(an error outside your function, the time limit, or {case.function} is not defined)."]
    if isinstance(result, dict) and result.get("t") == "error":
        problems = _error_problems(assignment, case, result)
        if result.get("type") not in ("NotImplementedError", "Delegation"):
            problems += raised_hints(getattr(case, "mistakes", ()), str(result.get("type", "")),
                                     str(result.get("message", "")))
        return problems
    if isinstance(result, dict) and result.get("t") == "unsupported":
        what = f"a {result.get('type')}" if not case.hidden and _plain_name(result.get("type")) else "something else"
        return [f"{case.call} returned {what}; expected a number or a numpy array."]
    graded = graded_function(assignment, name)
    problems = Exercise._compare(name, graded, result, case.expected, case.options, reveal=case.reveal,
                                 secret=getattr(case, "secret", False))
    if not problems:
        return []
    try:
        problems += returned_hints(name, graded, result, getattr(case, "mistakes", ()), case.options)
    except Exception:   # a hint is a bonus: never let it hide the verdict
        pass
    return [f"{case.call} returned a wrong answer."] + problems


def _error_problems(assignment: str, case: Case, result: dict) -> list[str]:
    """The message of a result that raised."""
    name = case.graded
    if result.get("type") == "NotImplementedError":
        return [_not_implemented(name)]
    if result.get("type") == "Delegation":
        return [f"{name} called {result.get('message')}, which this exercise asks you to write yourself. "
                f"{EXERCISES[assignment].allowed} Answers that call the reference earn no points."]
    if result.get("type") == "NameError" and case.function in str(result.get("message", "")):
        return [f"{case.function} is not defined: run the cell that defines it."]
    if case.hidden:   # the student's own text could carry the hidden inputs out: type only
        kind = result.get("type") if _builtin_exception(result.get("type")) else "an exception"
        return [f"{case.call} raised {kind} (messages of hidden cases are not shown; try the visible "
                f"cases and your own inputs of the same kind)."]
    kind = result.get("type") if _plain_name(result.get("type")) else "an exception"
    text = str(result.get("message", ""))
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + " [...]"
    return [f"{case.call} raised {kind}: {text}"]


def judge(assignment: str, cases: list, results: list) -> str | None:
    """``None`` when every case is right, else the message of the first that is not."""
    for case, result in zip(cases, results):
        problems = judge_case(assignment, case, result)
        if problems:
            return "\n".join(problems)
    return None
