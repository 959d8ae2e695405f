"""Inside the kernel that :func:`segedu.check_submission` starts: the modules the grader hides stay hidden.

The grading kernel cannot import segedu, the library function an exercise re-implements, or the
libraries no answer needs (:func:`segedu.submission.rules.hidden_modules`). The student's check runs in
an ordinary Python, so without this an answer that imports ``skimage.filters`` would pass its visible
tests here and fail at grading, and a setup cell that now starts with ``import matplotlib.pyplot as plt``
would stop before it defines ``np``, at grading only.

So an ``import`` of a hidden module written in the notebook raises ``ModuleNotFoundError``, as it will at
grading. Imports made by libraries (whose code is not the notebook's) go through, and so do the imports
at the top of the visible test cells (marked with :data:`TEST_CELL_MARK`), which need ``segedu.grading``:
the grader replaces those cells by its own. ``importlib.import_module`` is not caught; no answer needs it.
"""

from __future__ import annotations

import builtins

#: first line that the check puts in each visible test cell of the notebook it runs
TEST_CELL_MARK = "# segedu.check_submission: a visible test cell"


def install(hidden) -> None:
    """Hide the top-level modules ``hidden`` from the notebook's own code (see the module docstring)."""
    hidden = frozenset(hidden)
    shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821  (run as a kernel's exec_lines)
    original = builtins.__import__
    state = {"test_cell": False}

    def guarded(name, globals=None, locals=None, fromlist=(), level=0):
        top = name.partition(".")[0]
        if level == 0 and top in hidden and (globals or {}).get("__name__") == "__main__":
            import sys

            frame = sys._getframe(1)
            if not (state["test_cell"] and frame.f_code.co_name == "<module>"):
                raise ModuleNotFoundError(
                    f"No module named {top!r} at grading time: the grader's Python hides it (an answer may not "
                    f"call the course's reference or the library function it re-implements).", name=top)
        return original(name, globals, locals, fromlist, level)

    def before(info=None):
        state["test_cell"] = bool(info is not None and info.raw_cell.startswith(TEST_CELL_MARK))

    def after(result=None):
        state["test_cell"] = False

    builtins.__import__ = guarded
    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)
