"""``make lab`` in a real browser: a solved exercise passes its visible tests, a lecture's sliders render.

One JupyterLab server for the module, started through the same entry point as ``make lab``
(``python -m segedu.instructor --course COURSE lab ARGS``) on a temporary course folder: a student's
solved copy of exercise 01 (the release with the solution's answers typed in, as
:func:`segedu.instructor.notebooks.fill_in` builds submissions) and lecture 01, the quickest lecture
with sliders (about 5 s headless). Headless Chromium opens each notebook, runs every cell from the
Run menu, and reads what JupyterLab rendered. Screenshots go to ``build/browser/``.

The server listens on 127.0.0.1 with a random token; its runtime, config, settings and data folders
are temporary, so the instructor's own JupyterLab settings cannot change what the test sees, and the
test leaves nothing in their home folder. It runs in its own process group and is stopped with
SIGTERM (SIGKILL after a grace period); the test fails when a process of it (a kernel) outlives that.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
EXERCISE = "01_thresholding"
EXERCISE_PATH = f"exercises/{EXERCISE}/{EXERCISE}.ipynb"
LECTURE_PATH = "lectures/01_thresholding.ipynb"
START_TIMEOUT = 90      # s until /api/status answers (the first start of a fresh venv builds caches)
RUN_TIMEOUT = 120       # s for Run All Cells of one notebook (headless nbclient: about 5 s each)
STOP_GRACE = 10         # s between SIGTERM and SIGKILL

# User settings of the test's JupyterLab (JUPYTERLAB_SETTINGS_DIR): every cell attached to the page, so that
# a cell scrolled out of view is still in the DOM to be read (the default, contentVisibility, may leave it
# unrendered); no news or update checks (no network) and no toast asking about them over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True,
    },
}

# JupyterLab renders an exception's traceback as stderr, like a warning; only the traceback's header tells
# them apart (a warning must not fail a test).
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
TRACEBACK = "Traceback (most recent call last)"
# In the page: true once every code cell has run (a number in its prompt) and the kernel is idle, or as
# soon as a cell shows a traceback (Run All stops there and the remaining prompts would stay empty).
ALL_CELLS_RAN = """({panel, stderr, traceback}) => {
    if ([...panel.querySelectorAll(stderr)].some(output => output.textContent.includes(traceback))) return true;
    const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    if (!indicator || indicator.getAttribute('data-status') !== 'idle') return false;
    const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
    return prompts.length > 0 && prompts.every(text => /\\[\\d+\\]/.test(text));
}"""
# The kernel is ready: the toolbar names it (before, it reads "No Kernel" while the indicator already says
# idle) and the execution indicator is idle (after "starting" and "connecting").
KERNEL_READY = """(panel) => {
    const name = panel.querySelector('.jp-Toolbar-kernelName');
    const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    return !!name && !!indicator && name.textContent.trim() !== '' && name.textContent.trim() !== 'No Kernel'
        && indicator.getAttribute('data-status') === 'idle';
}"""
STATUS_BAR = "() => (document.querySelector('#jp-main-statusbar') || {innerText: ''}).innerText.replace(/\\n/g, ' ')"


# no proxy from the environment for a server on 127.0.0.1
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int):
    import psutil  # ipykernel's dependency, so present wherever JupyterLab runs a kernel

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _log_tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _course_folder(root: Path) -> None:
    """A course folder with a solved exercise 01 and lecture 01 (``segedu`` insists on nbgrader_config.py
    and solutions/; solutions/ stays empty: the solutions are not what a student's JupyterLab shows)."""
    from segedu.instructor.notebooks import fill_in, solution_answers

    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    (root / "solutions").mkdir()
    release = nbformat.read(REPO / EXERCISE_PATH, as_version=4)
    solution = nbformat.read(REPO / "solutions" / EXERCISE / f"{EXERCISE}.ipynb", as_version=4)
    (root / EXERCISE_PATH).parent.mkdir(parents=True)
    nbformat.write(fill_in(release, solution_answers(solution)), root / EXERCISE_PATH)
    (root / "lectures").mkdir()
    shutil.copy(REPO / LECTURE_PATH, root / LECTURE_PATH)


class Lab:
    """A running JupyterLab: its base URL, token and course folder."""

    def __init__(self, url: str, token: str, course: Path, log: Path):
        self.url, self.token, self.course, self.log = url, token, course, log

    def notebook_url(self, path: str) -> str:
        """The notebook alone in a new workspace: JupyterLab would otherwise reopen the previous test's tabs."""
        workspace = secrets.token_hex(4)
        return f"{self.url}lab/workspaces/{workspace}/tree/{path}?token={self.token}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``python -m segedu.instructor --course COURSE lab`` on loopback, stopped (with its kernels) after the module."""
    tmp = tmp_path_factory.mktemp("lab")
    course = tmp / "course"
    course.mkdir()
    _course_folder(course)
    jupyter = tmp / "jupyter"
    for relative, settings in LAB_SETTINGS.items():
        path = jupyter / "settings" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # tests/conftest.py sets Agg; the kernel must draw inline, as a student's does
    env.update(
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        # the venv's share/jupyter (widget extension, python3 kernel) is still on the data path
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTERLAB_SETTINGS_DIR=str(jupyter / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
        IPYTHONDIR=str(jupyter / "ipython"),
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "segedu.instructor", "--course", str(course), "lab",
        "--no-browser", "--allow-root",  # as root (CI's container) JupyterLab refuses to start without it
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}",
    ]
    log = tmp / "lab.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=course, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"`python {' '.join(command[1:])}` (what `make lab ARGS=...` runs) exited with "
                            f"{process.returncode} before answering:\n{_log_tail(log)}")
            try:
                with _LOOPBACK.open(f"{url}api/status?token={token}", timeout=2) as response:
                    json.load(response)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {url} within {START_TIMEOUT} s:\n{_log_tail(log)}")
                time.sleep(0.3)
        yield Lab(url, token, course, log)
    finally:
        survivors = _stop(process)
    assert not survivors, (f"processes of the JupyterLab server outlived SIGTERM by {STOP_GRACE} s (killed now): "
                           f"{survivors}; the server must stop its kernels when it is stopped.\n{_log_tail(log)}")


def _stop(process: subprocess.Popen) -> list[str]:
    """SIGTERM to the server's process group, SIGKILL to whatever is left after the grace period.

    Kernels run in sessions of their own (jupyter_client starts them so), out of the group's reach:
    they are found as the server's descendants first. Returns what had to be killed, as "pid name".
    """
    import psutil

    tree = _descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        pass
    _, alive = psutil.wait_procs(tree, timeout=max(1.0, STOP_GRACE / 2))
    survivors = []
    if process.poll() is None:
        survivors.append(f"{process.pid} segedu lab")
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=STOP_GRACE)
    for child in alive:
        try:
            survivors.append(f"{child.pid} {' '.join(child.cmdline()[:4])}")
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=STOP_GRACE)
    return survivors


def _open_and_run_all(page, lab: Lab, path: str):
    """Open a notebook, wait for its kernel, run every cell from the Run menu and wait for the last one.

    Returns the notebook panel's locator.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # imported here: conftest explains its absence

    page.goto(lab.notebook_url(path))
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").filter(has=page.locator(".jp-Notebook")).first
    panel.wait_for(state="visible", timeout=60_000)
    handle = panel.element_handle()
    try:
        page.wait_for_function(KERNEL_READY, arg=handle, timeout=60_000, polling=100)
    except PlaywrightTimeout:
        pytest.fail(f"the kernel of {path} did not start in 60 s; status bar: {page.evaluate(STATUS_BAR)}\n"
                    f"{_log_tail(lab.log)}")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    try:
        page.wait_for_function(ALL_CELLS_RAN, arg={"panel": handle, "stderr": STDERR, "traceback": TRACEBACK},
                               timeout=RUN_TIMEOUT * 1000, polling=250)
    except PlaywrightTimeout:
        prompts = panel.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        pytest.fail(f"Run All Cells of {path} did not finish in {RUN_TIMEOUT} s; prompts {prompts}, "
                    f"status bar: {page.evaluate(STATUS_BAR)}\n{_log_tail(lab.log)}")
    return panel


def _errors_in(panel) -> list[str]:
    """The text of every traceback in the panel (warnings, also stderr, are not errors)."""
    return [text for text in panel.locator(STDERR).all_inner_texts() if TRACEBACK in text]


def _test_cells(notebook) -> dict[int, str]:
    """Cell index -> the message its visible test prints when it passes, for every graded test cell."""
    tests = {}
    for index, cell in enumerate(notebook.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and "ex.check(" in cell.source:
            passed = re.findall(r'print\(f?"([^"]*visible test passed)"\)', cell.source)
            assert len(passed) == 1, f"test cell {meta.get('grade_id')} prints no single 'visible test passed' line"
            tests[index] = passed[0]
    return tests


def test_solved_exercise_passes_its_visible_tests(lab, page, screenshot_dir):
    """Run All on a solved exercise 01 in JupyterLab: every visible test cell prints its "passed" line."""
    notebook = nbformat.read(lab.course / EXERCISE_PATH, as_version=4)
    tests = _test_cells(notebook)
    graded = [i for i, cell in enumerate(notebook.cells)
              if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")]
    assert tests and sorted(tests) == graded, f"test cells found {sorted(tests)}, graded cells {graded}"
    start = time.perf_counter()
    panel = _open_and_run_all(page, lab, EXERCISE_PATH)
    seconds = time.perf_counter() - start
    cells = panel.locator(".jp-Notebook .jp-Cell")
    # windowingMode "none": every cell of the file is in the page, in order
    assert cells.count() == len(notebook.cells), (cells.count(), len(notebook.cells))
    # the check cell at the end (segedu.check_submission(), a notebook run of its own) has its own tests
    # under tests/; here it only runs, so that its fate does not decide this test's
    judged = [i for i, cell in enumerate(notebook.cells)
              if not (cell.cell_type == "code" and "check_submission(" in cell.source)]
    errors = [text for i in judged for text in _errors_in(cells.nth(i))]
    assert not errors, "a cell of the solved exercise raised in JupyterLab:\n" + "\n\n".join(errors)
    passed = {}
    for index, message in tests.items():
        outputs = cells.nth(index).locator(".jp-OutputArea-output").all_inner_texts()
        passed[index] = any(message in text for text in outputs)
    missing = [tests[i] for i, ok in passed.items() if not ok]
    assert not missing, f"Run All ({seconds:.0f} s) left visible tests without their passed line: {missing}"
    assert sum(passed.values()) == len(tests)
    # the last test cell at the bottom of the view, the ones before it above
    cells.nth(max(tests)).evaluate("cell => cell.scrollIntoView({block: 'end'})")
    page.screenshot(path=str(screenshot_dir / "lab_exercise_01.png"))
    print(f"Run All of the solved exercise 01 in JupyterLab: {seconds:.1f} s, {len(tests)} visible tests passed")
    # the last cell, segedu.check_submission(): JupyterLab tells the kernel which notebook it runs
    # (JPY_SESSION_NAME), and the check runs that saved file as the grader will
    [check] = sorted(set(range(len(notebook.cells))) - set(judged))
    assert check == len(notebook.cells) - 1
    report = "\n".join(cells.nth(check).locator(".jp-OutputArea-output").all_inner_texts())
    print("check cell:", report)
    assert f"Checked {EXERCISE}.ipynb as exercise 01_thresholding" in report, report
    assert f"Visible tests that pass: {len(tests)}" in report and "Ready to submit." in report, report
    assert "problem" not in report, report
    cells.nth(check).evaluate("cell => cell.scrollIntoView({block: 'end'})")
    page.screenshot(path=str(screenshot_dir / "lab_check_submission.png"))


def _first_widget_cell(notebook) -> tuple[int, int]:
    """(index of the first cell that adds sliders, index of the cell drawing its static figure)."""
    for index, cell in enumerate(notebook.cells):
        match = re.search(r"viz\.add_controls\(\s*(\w+)", cell.source)
        if cell.cell_type == "code" and match:
            draw = match.group(1)
            static = next((i for i, c in enumerate(notebook.cells[:index]) if f"def {draw}(" in c.source), None)
            assert static is not None, f"no cell before the controls defines {draw}(), the static figure's function"
            return index, static
    raise AssertionError("the lecture adds no controls (viz.add_controls): pick a lecture with sliders")


def test_lecture_sliders_render(lab, page, screenshot_dir):
    """Run All on lecture 01: its static figure is drawn, and the sliders under it render and redraw."""
    notebook = nbformat.read(lab.course / LECTURE_PATH, as_version=4)
    widget_index, static_index = _first_widget_cell(notebook)
    start = time.perf_counter()
    panel = _open_and_run_all(page, lab, LECTURE_PATH)
    seconds = time.perf_counter() - start
    cells = panel.locator(".jp-Notebook .jp-Cell")
    assert cells.count() == len(notebook.cells)
    errors = _errors_in(panel)
    assert not errors, "a cell of lecture 01 raised in JupyterLab:\n" + "\n\n".join(errors)
    figure = cells.nth(static_index).locator(".jp-OutputArea-output img")
    assert figure.count() >= 1, "the static figure before the sliders is not on the page"
    assert figure.first.evaluate("img => img.complete && img.naturalWidth > 0"), "the static figure does not load"
    widget_cell = cells.nth(widget_index)
    slider = widget_cell.locator(".widget-slider").first
    # the widget manager renders the view after the kernel's comm messages: give it a moment
    slider.wait_for(state="visible", timeout=30_000)
    assert "T" in slider.locator(".widget-label").inner_text()
    handle = slider.locator(".noUi-handle").first
    assert handle.is_visible(), "the slider has no handle to drag"
    # a student moves it: the kernel redraws the figure into the widget's Output below the slider
    handle.focus()
    handle.press("ArrowRight")
    redrawn = widget_cell.locator(".widget-output img")
    redrawn.first.wait_for(state="visible", timeout=30_000)
    widget_cell.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(screenshot_dir / "lab_lecture_sliders.png"))
    print(f"Run All of lecture 01 in JupyterLab: {seconds:.1f} s; its slider redraws the figure")
