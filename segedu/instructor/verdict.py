"""nbgrader preprocessors that keep the verdict outside the student's kernel.

nbgrader gives a test cell full points when its outputs hold no error, so whatever controls a test
cell's outputs controls the grade, and by default that is the student's kernel. In the course's
autograde pipeline (``nbgrader_config.py``) two preprocessors stand around nbgrader's ``Execute``:

- :class:`TrustedRun` (before): takes the grading plan (every case of every test cell, with the
  reference's answers, from :mod:`segedu.grading.plan`), writes the cases' *inputs* where the kernel
  can read them, and replaces each test cell's code with a call of ``segedu_kernel_runner``, which
  only runs the student's functions and saves their results as data.
- :class:`TrustedVerdict` (after): reads those results without following links and with size
  limits, compares them with the plan, and **writes every test cell's outputs itself** (a pass
  line or the error message the student gets), puts the test cell's code back, takes the points
  from the gradebook, removes every other output of the student's cells and sanitises their
  Markdown, so that neither feedback nor formgrader shows anything the student's code produced.

The grading seed is read here, in nbgrader's process, and removed from the environment that
kernels inherit. Neither preprocessor imports or runs anything a student could have written.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_output
from traitlets import Bool, Unicode

from segedu.submission.rules import CHECK_CELL_ID

KERNEL_DIR = Path(__file__).resolve().parents[1] / "grading" / "kernel"
RUNNER_SOURCE = ("# Graded outside this notebook: your functions run on the test inputs, the grader compares.\n"
                 "import segedu_kernel_runner; segedu_kernel_runner.run({grade_id!r})")
TIMEOUT_ERRORS = ("CellTimeoutError", "TimeoutError", "KeyboardInterrupt", "DeadKernelError")
MAX_RESULT_JSON = 1 << 20
MAX_RESULT_ARRAY = 1 << 26
MAX_RESULTS_TOTAL = 1 << 28   # bytes of arrays read back for one notebook: nbgrader's process must stay small
_PLANS: dict = {}


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _is_test_cell(cell) -> bool:
    meta = _meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def grading_seed_from_environment() -> int:
    """The seed, read once here and then removed, so that kernels started later never inherit it."""
    from segedu.grading import grading_seed

    seed = grading_seed()
    os.environ.pop("SEGEDU_GRADING_SEED", None)
    return seed


def load_or_build_plan(assignment: str, notebook_name: str, plan_path: str, seed: int | None):
    """The plan of ``plan_path`` (made by ``segedu grade``), or one built from the source notebook."""
    if plan_path:
        with open(plan_path, "rb") as handle:   # written by the grader, outside every sandbox
            return pickle.load(handle)
    key = (assignment, notebook_name, seed)
    if key not in _PLANS:
        import nbformat

        from segedu.grading.plan import build_plan

        candidates = [Path(folder) / assignment / f"{notebook_name}.ipynb" for folder in ("solutions", "source")]
        source = next((p for p in candidates if p.exists()), None)
        if source is None:
            raise FileNotFoundError(f"no source notebook for {assignment} in {[str(c) for c in candidates]}")
        _PLANS[key] = build_plan(nbformat.read(source, as_version=4), assignment, seed)
    return _PLANS[key]


def write_inputs(plan, in_dir: Path) -> None:
    """One manifest per test cell (``<grade_id>.json``) and the arrays it refers to."""
    from segedu.grading.exercises import EXERCISES

    wire = _wire()
    in_dir.mkdir(parents=True, exist_ok=True)
    for grade_id, cases in plan.cells.items():
        manifest = []
        for index, case in enumerate(cases):
            stem = f"{grade_id}_{index}"
            manifest.append({"function": case.function,
                             "args": wire.encode(tuple(case.args), str(in_dir), stem + "a"),
                             "kwargs": wire.encode(dict(case.kwargs), str(in_dir), stem + "k")})
        forbidden = list(EXERCISES[plan.assignment].forbidden)
        (in_dir / f"{grade_id}.json").write_text(json.dumps({"cases": manifest, "forbidden": forbidden}))


def _wire():
    import sys

    if str(KERNEL_DIR) not in sys.path:
        sys.path.insert(0, str(KERNEL_DIR))
    import segedu_kernel_runner

    return segedu_kernel_runner


class TrustedRun(Preprocessor):
    """Before ``Execute``: inputs out, test cells replaced by the runner call."""

    enabled = Bool(True).tag(config=True)
    plan_path = Unicode("", help="a plan pickled by `segedu grade`; empty: build one from the source notebook").tag(
        config=True)
    io_dir = Unicode("", help="the kernel's exchange folder (in/ and out/), prepared by the sandbox; "
                              "empty: a new temporary folder per notebook").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        seed = None if self.plan_path else grading_seed_from_environment()
        plan = load_or_build_plan(info["assignment"], info["notebook"], self.plan_path, seed)
        if self.io_dir:
            io_dir = Path(self.io_dir)
        else:
            io_dir = Path(tempfile.mkdtemp(prefix="sg-io-"))
            (io_dir / "out").mkdir()
            os.environ["SEGEDU_KERNEL_IO"] = str(io_dir)
            paths = [str(KERNEL_DIR)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        write_inputs(plan, io_dir / "in")
        sources = {}
        for cell in nb.cells:
            if _meta(cell).get("grade_id") == CHECK_CELL_ID:   # the student's pre-submission check: not here
                cell.source = "# segedu.check_submission() runs before submitting, not while grading"
            if _is_test_cell(cell):
                grade_id = _meta(cell).get("grade_id")
                if grade_id not in plan.cells:
                    raise RuntimeError(f"test cell {grade_id!r} is not in the grading plan of {info['assignment']}")
                sources[grade_id] = cell.source
                cell.source = RUNNER_SOURCE.format(grade_id=grade_id)
        resources["segedu"] = {"plan": plan, "io_dir": str(io_dir), "sources": sources,
                               "temporary": not self.io_dir}
        return nb, resources


def read_results(out_dir: Path, count: int, budget: list | None = None) -> list:
    """The decoded results of one test cell (``MISSING`` where absent, malformed or over ``budget``).

    ``budget`` is a one-element list of bytes still allowed, shared by every cell of a notebook.
    """
    from segedu.grading.plan import MISSING

    wire = _wire()
    results = []
    for index in range(count):
        try:
            with wire.open_in(str(out_dir), f"{index}.json", MAX_RESULT_JSON) as handle:
                tag = json.loads(handle.read().decode("utf-8"))
            value = wire.decode(tag, str(out_dir), max_bytes=MAX_RESULT_ARRAY, result=True,
                                budget=budget if budget is not None else [MAX_RESULTS_TOTAL])
        except (OSError, ValueError, RecursionError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
            value = MISSING
        results.append(value)
    return results


def _points(resources) -> dict[str, float]:
    """The gradebook's points of every graded cell of the notebook (one gradebook session)."""
    from nbgrader.api import Gradebook, MissingEntry

    info = resources["nbgrader"]
    try:
        with Gradebook(info["db_url"]) as gradebook:
            notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
            return {cell.name: float(cell.max_score) for cell in notebook.grade_cells}
    except MissingEntry:
        return {}


SAFE_TAGS = ["a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
             "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td", "th",
             "thead", "tr", "ul"]
SAFE_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "title"], "th": ["align"], "td": ["align"]}


def sanitise_markdown(source: str) -> str:
    """A student's Markdown as inert HTML that renders to itself.

    Cleaning the source would not do: the renderer decodes entities and escapes in link targets
    (``&#106;avascript:``) after any check of the source, and text that one pass leaves alone (inside
    an HTML block) can become a link in the next. So the source is rendered the way nbconvert renders
    it and cleaned, until rendering the result adds nothing that cleaning would remove. That HTML is
    stored: feedback and formgrader render it again, and get exactly the cleaned page.
    """
    import html as html_module

    import bleach
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    def clean(text: str) -> str:
        return bleach.clean(text, tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES, protocols=["http", "https", "mailto"],
                            strip=False, strip_comments=True)

    stored = clean(markdown2html_mistune(source))
    for _ in range(5):
        rendered = markdown2html_mistune(stored)
        if clean(rendered) == rendered:
            return stored
        stored = clean(rendered)
    return "<pre>" + html_module.escape(source) + "</pre>"   # never settled: show it as plain text


def cell_seconds(nb) -> float:
    """Seconds the kernel spent executing the notebook's cells, from nbclient's timing metadata
    (the kernel's own timestamps: a statistic for ``make bench``, never part of a grade)."""
    from datetime import datetime

    total = 0.0
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        try:
            began = datetime.fromisoformat(str(timing["iopub.execute_input"]).replace("Z", "+00:00"))
            ended = datetime.fromisoformat(str(timing["shell.execute_reply"]).replace("Z", "+00:00"))
        except (KeyError, ValueError, TypeError):
            continue
        total += min(max((ended - began).total_seconds(), 0.0), 3600.0)
    return total


# statistics of the last notebook this process judged, read by the grading worker after each task
LAST_RUN: dict = {}


class TrustedVerdict(Preprocessor):
    """After ``Execute``: compare outside the kernel and write every test cell's outputs."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        from segedu.grading.plan import judge

        LAST_RUN.clear()
        LAST_RUN["cells"] = cell_seconds(nb)

        state = resources.get("segedu")
        if state is None:
            raise RuntimeError("TrustedVerdict needs TrustedRun before Execute (see nbgrader_config.py)")
        plan, io_dir = state["plan"], Path(state["io_dir"])
        budget = [MAX_RESULTS_TOTAL]
        points_of = _points(resources)
        for cell in nb.cells:
            meta = _meta(cell)
            if _is_test_cell(cell) and meta.get("grade_id") in state["sources"]:
                grade_id = meta["grade_id"]
                cases = plan.cells[grade_id]
                timed_out = any(o.get("output_type") == "error" and o.get("ename") in TIMEOUT_ERRORS
                                for o in cell.get("outputs", []))
                message = judge(plan.assignment, cases, read_results(io_dir / "out" / grade_id, len(cases), budget))
                cell.source = state["sources"][grade_id]
                points = points_of.get(grade_id)
                if points is not None:
                    meta["points"] = points
                if message is None:
                    hidden = sum(c.hidden for c in cases)
                    text = f"{grade_id}: passed ({len(cases) - hidden} visible and {hidden} hidden checks)\n"
                    cell.outputs = [new_output("stream", name="stdout", text=text)]
                else:
                    name = "TimeoutError" if timed_out else "AssertionError"
                    if timed_out:
                        message += "\nThe cell hit the time limit before it finished."
                    cell.outputs = [new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])]
            elif cell.cell_type == "code":
                cell.outputs = []   # the student's own outputs never reach feedback or formgrader
            elif cell.cell_type in ("markdown", "raw") and not meta.get("locked"):
                cell.pop("attachments", None)
                cell.source = sanitise_markdown(cell.source)
        nb.metadata.pop("widgets", None)   # widget state is JSON the kernel sent: not for formgrader
        if state["temporary"]:
            shutil.rmtree(io_dir, ignore_errors=True)
            os.environ.pop("SEGEDU_KERNEL_IO", None)
        return nb, resources
