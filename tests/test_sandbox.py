"""The grading sandbox (segedu.instructor.sandbox): each test fails if one protection is missing.

Every test runs a short ``python -c`` through ``sandbox.command`` (or a real kernel through the
kernelspec) and looks at the result from inside and from the host. Skipped where bubblewrap does
not work (macOS, Windows, containers without user namespaces).
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import random
import shutil
import site
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from segedu.instructor import sandbox

pytestmark = pytest.mark.skipif(sandbox.detect()[0] != sandbox.BWRAP,
                                reason=f"no bubblewrap sandbox here: {sandbox.detect()[1]}")

REPO = Path(__file__).resolve().parents[1]
_UIDS = itertools.count(61900 + os.getpid() % 50 * 10)


@pytest.fixture
def make_spec():
    """make_spec(**fields) -> a prepared SandboxSpec with a fresh scratch root under /tmp."""
    made = []

    def make(**fields):
        scratch = Path(tempfile.mkdtemp(prefix="sg-", dir="/tmp"))
        made.append(scratch)
        spec = sandbox.SandboxSpec(scratch, uid=next(_UIDS), **fields)
        sandbox.prepare(spec)
        return spec

    yield make
    for scratch in made:
        shutil.rmtree(scratch, ignore_errors=True)


def run(spec, code: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = sandbox.command(spec, [sys.executable, "-c", textwrap.dedent(code)])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def inside(spec, code: str, **kwargs):
    """Run ``code`` in the sandbox; it prints one JSON value on its last line, which is returned."""
    result = run(spec, code, **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def sleeps_with(marker: str) -> list[int]:
    """Host pids of `sleep <marker>` processes."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                found.append(int(entry))
        except OSError:
            pass
    return found


def running(pids) -> list[int]:
    """The processes of ``pids`` still alive (zombies count as dead)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] not in "ZX":
            alive.append(pid)
    return alive


def wait_until_dead(pids, seconds: float = 5) -> list[int]:
    deadline = time.monotonic() + seconds
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running(pids)


def wait_until_gone(marker: str, seconds: float = 5) -> list[int]:
    deadline = time.monotonic() + seconds
    while running(sleeps_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running(sleeps_with(marker))


# ----------------------------------------------------------------------------- who the kernel is

def test_unprivileged_uid_without_capabilities(make_spec):
    spec = make_spec()
    got = inside(spec, """
        import json, os
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        print(json.dumps({"ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
                          "groups": os.getgroups(),
                          "caps": {k: int(v, 16) for k, v in status.items() if k.startswith("Cap")},
                          "nnp": status["NoNewPrivs"].strip()}))
    """)
    uid = sandbox.kernel_uid(spec)
    assert uid != 0 and got["ids"] == [uid] * 4
    if os.geteuid() == 0:
        assert uid == spec.uid
    assert 0 not in got["groups"]
    assert got["caps"] == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}
    assert got["nnp"] == "1"


def test_rlimits_are_set(make_spec):
    spec = make_spec(nproc=100, fsize_mb=7, nofile=300, memory_mb=8192)
    got = inside(spec, """
        import json, resource as r
        print(json.dumps({n: r.getrlimit(getattr(r, "RLIMIT_" + n.upper())) for n in
                          ("nproc", "fsize", "as", "nofile", "core")}))
    """)
    assert got == {name: [value, value] for name, value in sandbox.limits(spec).items()}
    assert got["as"] == [int(1.5 * 8192) << 20] * 2 and got["fsize"] == [7 << 20] * 2
    assert sandbox.limits(make_spec())["as"] == 6 << 30


# ----------------------------------------------------------------------------- what it can see

def test_sees_nothing_of_the_host(make_spec):
    spec, other = make_spec(), make_spec()
    (other.scratch / "out" / "answer.txt").write_text("other student's work")
    marker = Path("/tmp") / f"sg-host-marker-{uuid.uuid4().hex}"
    marker.write_text("host secret")
    try:
        secrets = [REPO / "tests", REPO / "segedu", REPO / "solutions", REPO / "pyproject.toml",
                   Path(__file__), marker, other.scratch, other.scratch / "out" / "answer.txt",
                   spec.scratch / "stage", "/etc/shadow", "/etc/hostname", "/home", "/root/.bashrc",
                   "/var", "/run", "/sys", "/mnt"]
        got = inside(spec, f"""
            import json, os
            def ls(path):
                return sorted(os.listdir(path)) if os.path.isdir(path) else []
            print(json.dumps({{"exists": [p for p in {[str(p) for p in secrets]!r} if os.path.lexists(p)],
                              "root": ls("/"), "repo": ls({str(REPO)!r}), "slash_root": ls("/root"),
                              "etc": ls("/etc"), "tmp": ls("/tmp"), "scratch": ls({str(spec.scratch)!r})}}))
        """)
    finally:
        marker.unlink()
    assert got["exists"] == []
    bound = [Path(p) for p in (sys.prefix, sys.base_prefix)]

    def allowed(path: Path) -> bool:   # on the way to a bound folder
        return any(path == b or path in b.parents for b in bound)

    assert set(got["root"]) <= {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc", "dev",
                                "tmp"} | {b.parts[1] for b in bound}
    assert all(allowed(REPO / name) for name in got["repo"]), got["repo"]
    assert all(allowed(Path("/root") / name) for name in got["slash_root"]), got["slash_root"]
    assert set(got["etc"]) <= {"ld.so.cache", "localtime", "fonts", "passwd", "group"}
    assert spec.scratch.name in got["tmp"]
    assert all(name == spec.scratch.name or allowed(Path("/tmp") / name) for name in got["tmp"]), got["tmp"]
    assert set(got["scratch"]) == {"in", "out", "ipc", "work"}


def test_cannot_write_outside_its_own_folders(make_spec):
    spec = make_spec()
    site_packages = site.getsitepackages()[0]
    targets = [site_packages, sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
               os.path.dirname(sandbox.__file__), os.path.dirname(os.__file__), "/usr/lib", "/", "/dev", "/etc",
               str(spec.scratch), str(spec.scratch / "in")]
    got = inside(spec, f"""
        import errno, json, os
        result = {{}}
        for folder in {targets!r}:
            try:
                open(os.path.join(folder, "planted.py"), "w").close()
                result[folder] = "written"
            except OSError as error:
                result[folder] = errno.errorcode[error.errno]
        for folder in ("out", "ipc"):
            path = os.path.join({str(spec.scratch)!r}, folder, "ok.txt")
            open(path, "w").write("mine")
            result[folder] = "written"
        print(json.dumps(result))
    """)
    for folder in targets:
        # segedu is an editable install here: its folder is simply not in the sandbox
        expected = {"EROFS", "EACCES"} | ({"ENOENT"} if folder == os.path.dirname(sandbox.__file__) else set())
        assert got[folder] in expected, (folder, got[folder])
        assert not os.path.exists(os.path.join(folder, "planted.py"))
    uid = sandbox.kernel_uid(spec)
    for folder in ("out", "ipc"):
        assert got[folder] == "written"
        assert (spec.scratch / folder / "ok.txt").stat().st_uid == uid


def test_in_is_read_only_and_the_connection_file_readable(make_spec):
    spec = make_spec()
    (spec.scratch / "in" / "data.txt").write_text("given")
    os.chmod(spec.scratch / "in" / "data.txt", 0o666)   # so that only the read-only bind protects it
    os.chmod(spec.scratch / "in", 0o777)
    connection = spec.scratch / "kernel.json"
    connection.write_text('{"key": "k"}')
    os.chmod(connection, 0o400)
    if os.geteuid() == 0:
        os.chown(connection, spec.uid, spec.uid)
    got = inside(spec, f"""
        import errno, json
        result = [open({str(spec.scratch / "in" / "data.txt")!r}).read(), open({str(connection)!r}).read()]
        for path in ({str(spec.scratch / "in" / "data.txt")!r}, {str(connection)!r}):
            try:
                open(path, "a").write("changed")
            except OSError as error:
                result.append(errno.errorcode[error.errno])
        print(json.dumps(result))
    """)
    assert got[:2] == ["given", '{"key": "k"}']
    assert got[2] == "EROFS" and got[3] in {"EROFS", "EACCES"} and len(got) == 4


def test_two_sandboxes_cannot_see_each_other(make_spec):
    first, second = make_spec(), make_spec()
    assert inside(first, f"""
        import json, socket
        open({str(first.scratch / "out" / "result.txt")!r}, "w").write("first")
        socket.socket(socket.AF_UNIX).bind({str(first.scratch / "ipc" / "kernel-1")!r})
        print(json.dumps("done"))
    """) == "done"
    assert (first.scratch / "out" / "result.txt").read_text() == "first"
    assert (first.scratch / "ipc" / "kernel-1").is_socket()
    got = inside(second, f"""
        import json, os
        print(json.dumps([os.path.lexists(p) for p in ({str(first.scratch)!r},
                          {str(first.scratch / "out" / "result.txt")!r}, {str(first.scratch / "ipc")!r},
                          {str(second.scratch / "out")!r})]))
    """)
    assert got == [False, False, False, True]


# ----------------------------------------------------------------------------- what it can do

def test_cannot_mount_unmount_or_nest_namespaces(make_spec):
    spec = make_spec()
    got = inside(spec, f"""
        import ctypes, json, subprocess
        def rc(*argv):
            return subprocess.run(argv, capture_output=True).returncode
        libc = ctypes.CDLL(None, use_errno=True)
        print(json.dumps({{
            "umount": rc("umount", "/tmp"),
            "umount_lazy": rc("umount", "-l", {str(spec.scratch / "work")!r}),
            "mount": rc("mount", "-t", "tmpfs", "none", "/tmp"),
            "remount": rc("mount", "-o", "remount,rw", "/usr"),
            "syscall": libc.umount2(b"/usr", 2),
            "unshare": rc("unshare", "--user", "--map-root-user", "true"),
        }}))
    """)
    assert got["syscall"] == -1
    assert all(code != 0 for code in got.values()), got


def test_no_network(make_spec):
    spec = make_spec()
    name = f"sg-host-{uuid.uuid4().hex}"
    host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    host.bind("\0" + name)   # an abstract socket: reachable from anything in the host's network namespace
    host.listen()
    try:
        got = inside(spec, f"""
            import errno, json, socket
            def attempt(family, address):
                s = socket.socket(family, socket.SOCK_STREAM)
                s.settimeout(3)
                try:
                    s.connect(address)
                    return "connected"
                except OSError as error:
                    return errno.errorcode.get(error.errno, str(error))
            print(json.dumps({{
                "internet": attempt(socket.AF_INET, ("1.1.1.1", 53)),
                "loopback": attempt(socket.AF_INET, ("127.0.0.1", 1)),
                "abstract": attempt(socket.AF_UNIX, "\\0{name}"),
                "interfaces": [n for _, n in socket.if_nameindex()],
            }}))
        """)
    finally:
        host.close()
    assert got["internet"] != "connected" and got["abstract"] != "connected"
    assert got["loopback"] != "connected"
    assert set(got["interfaces"]) <= {"lo"}


def test_own_pid_namespace(make_spec):
    got = inside(make_spec(), """
        import json, os
        print(json.dumps([os.getpid(), sorted(int(p) for p in os.listdir("/proc") if p.isdigit())]))
    """)
    pid, pids = got
    assert pid <= 3 and pids == sorted({1, pid}) and os.getpid() not in pids


def test_daemons_die_with_the_command(make_spec):
    marker = f"{300 + random.random() * 100:.6f}"
    got = inside(make_spec(), f"""
        import json, os, subprocess, time
        subprocess.Popen(["sleep", "{marker}"], start_new_session=True)
        if os.fork() == 0:             # a classic double-fork daemon
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "{marker}"])
            os._exit(0)
        time.sleep(0.3)
        running = [p for p in os.listdir("/proc") if p.isdigit() and
                   open(f"/proc/{{p}}/cmdline", "rb").read() == b"sleep\\x00{marker}\\x00"]
        print(json.dumps(len(running)))
    """)
    assert got == 2   # both daemons were running when the command exited
    assert wait_until_gone(marker) == []


def test_killing_the_sandbox_kills_everything_and_tree_rss(make_spec):
    marker = f"{300 + random.random() * 100:.6f}"
    cmd = sandbox.command(make_spec(), [sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, time
        subprocess.Popen(["sleep", "{marker}"], start_new_session=True)
        data = bytearray(200 << 20)
        print("ready", flush=True)
        time.sleep(60)
    """)])
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        assert len(sandbox.descendants(process.pid)) >= 3   # bwrap's init, python, sleep
        assert sandbox.tree_rss_bytes(process.pid) > 200 << 20
    finally:
        process.kill()   # what the grader's watchdog or jupyter_client does
        process.wait()
        process.stdout.close()
    assert wait_until_gone(marker) == []


def test_hidden_modules_cannot_be_imported(make_spec):
    import importlib.util

    submodules = {"skimage": "skimage.filters", "sklearn": "sklearn.metrics", "torch": "torch.nn",
                  "segedu": "segedu.grading", "six": "six"}
    present = [name for name in submodules if importlib.util.find_spec(name) is not None]
    assert "segedu" in present
    spec = make_spec(hide_modules=tuple(present))
    got = inside(spec, f"""
        import importlib, json
        result = {{}}
        for name in {[submodules[n] for n in present] + ["numpy"]!r}:
            try:
                importlib.import_module(name)
                result[name] = "imported"
            except ImportError as error:
                result[name] = "ImportError"
        print(json.dumps(result))
    """)
    assert got.pop("numpy") == "imported"
    assert got == {submodules[name]: "ImportError" for name in present}


def test_package_folders_the_interpreter_does_not_use_are_empty(make_spec):
    """The base interpreter's site-packages (under a venv) and the system's dist-packages are visible folders
    that the kernel's interpreter does not use: a notebook could put one on sys.path and import another copy of
    a hidden module from it (attack review R1: the base interpreter's scipy). Inside, they are empty."""
    import glob
    import site

    used = {os.path.realpath(p) for p in sys.path if p}
    folders = [f for f in site.getsitepackages([sys.base_prefix]) + glob.glob("/usr/lib/python3*/dist-packages")
               if os.path.isdir(f) and os.listdir(f) and os.path.realpath(f) not in used]
    if not folders:
        pytest.skip("no package folder outside this interpreter's sys.path on this machine")
    got = inside(make_spec(), f"""
        import json, os, sys
        print(json.dumps({{folder: os.listdir(folder) for folder in {folders!r}}}))
    """)
    assert got == {folder: [] for folder in folders}, got


def test_python_path_and_hiding_a_module_on_it(make_spec):
    folder = Path(tempfile.mkdtemp(prefix="sg-pp-", dir="/tmp"))
    try:
        os.chmod(folder, 0o755)
        (folder / "helper.py").write_text("VALUE = 42\n")
        (folder / "secretpkg").mkdir()
        (folder / "secretpkg" / "__init__.py").write_text("")
        (folder / "secretpkg" / "answers.py").write_text("ANSWER = 1\n")
        code = """
            import json
            import helper
            try:
                import secretpkg.answers
                hidden = False
            except ImportError:
                hidden = True
            print(json.dumps([helper.VALUE, hidden]))
        """
        assert inside(make_spec(python_path=(str(folder),)), code) == [42, False]
        assert inside(make_spec(python_path=(str(folder),), hide_modules=("secretpkg",)), code) == [42, True]
    finally:
        shutil.rmtree(folder)


def test_tmpfs_folders_are_bounded(make_spec):
    spec = make_spec(tmp_mb=4, shm_mb=4, work_mb=4, fsize_mb=64)
    got = inside(spec, """
        import errno, json, os
        result = {}
        for folder in ("/tmp", "/dev/shm", os.getcwd()):
            written = 0
            try:
                with open(os.path.join(folder, "fill"), "wb") as handle:
                    while written < 32 << 20:
                        handle.write(b"x" * (1 << 20))
                        handle.flush()
                        written += 1 << 20
                result[folder] = ["no error", written]
            except OSError as error:
                result[folder] = [errno.errorcode[error.errno], written]
        print(json.dumps(result))
    """)
    assert len(got) == 3
    for folder, (error, written) in got.items():
        assert error == "ENOSPC" and written <= 4 << 20, (folder, error, written)


def test_file_size_limit(make_spec):
    spec = make_spec(fsize_mb=2, tmp_mb=16)
    got = inside(spec, f"""
        import errno, json
        result = []
        for path in ("/tmp/big", {str(spec.scratch / "out" / "big")!r}):
            try:
                with open(path, "wb") as handle:
                    for _ in range(8):
                        handle.write(b"x" * (1 << 20))
                        handle.flush()
                result.append("no error")
            except OSError as error:
                result.append(errno.errorcode[error.errno])
        print(json.dumps(result))
    """)
    assert got == ["EFBIG", "EFBIG"]   # Python ignores SIGXFSZ, so the write fails instead
    assert (spec.scratch / "out" / "big").stat().st_size <= 2 << 20


def test_fork_bomb_stops_at_nproc(make_spec):
    spec = make_spec(nproc=32)
    start = time.monotonic()
    got = inside(spec, """
        import json, os, time
        forked, error = 0, None
        for _ in range(1000):
            try:
                pid = os.fork()
            except OSError as exc:
                error = exc.errno
                break
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            forked += 1
        print(json.dumps([forked, error]), flush=True)
        os._exit(0)
    """, timeout=30)
    forked, error = got
    assert error == errno.EAGAIN and 10 < forked < 32
    assert time.monotonic() - start < 15


def test_environment_is_cleared(make_spec):
    spec = make_spec(env={"SEGEDU_EXTRA": "yes"})
    host_env = dict(os.environ, SEGEDU_GRADING_SEED="s3cret-seed", PYTHONSTARTUP="/nonexistent.py")
    got = inside(spec, """
        import json, os
        print(json.dumps([dict(os.environ), os.getcwd()]))
    """, env=host_env)
    env, cwd = got
    assert "SEGEDU_GRADING_SEED" not in env and not any("s3cret" in value for value in env.values())
    assert set(env) <= {"PATH", "HOME", "LANG", "PYTHONNOUSERSITE", "PYTHONDONTWRITEBYTECODE", "MPLBACKEND",
                        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SEGEDU_EXTRA", "LC_CTYPE",
                        "PWD"}   # bwrap --chdir sets PWD
    assert env["SEGEDU_EXTRA"] == "yes" and env["OMP_NUM_THREADS"] == "1" and env["MPLBACKEND"] == "Agg"
    assert env["HOME"] == cwd == str(spec.scratch / "work")


def test_unsafe_specs_are_refused(make_spec):
    spec = make_spec()
    for folder in ("/", str(spec.scratch / "in"), str(spec.scratch.parent)):
        with pytest.raises(ValueError):
            sandbox.command(sandbox.SandboxSpec(spec.scratch, spec.uid, read_only=(folder,)), ["true"])
    with pytest.raises(ValueError):
        sandbox.command(sandbox.SandboxSpec(spec.scratch, spec.uid, hide_modules=("skimage.filters",)), ["true"])
    if os.geteuid() == 0:
        with pytest.raises(ValueError):
            sandbox.prepare(sandbox.SandboxSpec(spec.scratch, uid=0))


# ----------------------------------------------------------------------------- kernelspec and launcher

def test_write_kernelspec(make_spec, tmp_path):
    spec = make_spec(hide_modules=("sklearn",), env={"A": "1"})
    path = sandbox.write_kernelspec(tmp_path / "jupyter", spec)
    assert path == tmp_path / "jupyter" / "kernels" / "python3" / "kernel.json"
    kernelspec = json.loads(path.read_text())
    argv = kernelspec["argv"]
    assert argv[0] == sys.executable and argv[-1] == "{connection_file}"
    assert argv[argv.index("-m") + 1] == "segedu.instructor._launch"
    assert kernelspec["interrupt_mode"] == "message" and kernelspec["language"] == "python"
    assert kernelspec["metadata"] == {"debugger": False} and "sandbox" in kernelspec["display_name"]
    saved = Path(argv[-2])
    assert spec.scratch not in saved.parents
    assert sandbox.SandboxSpec.from_dict(json.loads(saved.read_text())) == spec


def _connection_file(folder: Path, spec, transport="ipc") -> Path:
    path = folder / "kernel-test.json"
    path.write_text(json.dumps({"transport": transport, "ip": f"{spec.scratch}/ipc/kernel", "key": "secret-key",
                                "shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4,
                                "hb_port": 5, "signature_scheme": "hmac-sha256"}))
    os.chmod(path, 0o600)
    return path


def _launch(spec_file: Path, connection: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-m", "segedu.instructor._launch", str(spec_file), str(connection),
                           *extra],
                          capture_output=True, text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, SEGEDU_GRADING_SEED="s3cret-seed"))


def test_launch_copies_the_connection_file_and_execs(make_spec, tmp_path):
    spec = make_spec()
    kernel_json = spec.scratch / "kernel.json"
    data = json.loads(sandbox.SandboxSpec.to_json(spec))
    data["argv_override"] = [sys.executable, "-c",
                             f"import os, sys; print(os.getuid(), os.getpid(), 'SEGEDU_GRADING_SEED' in os.environ, "
                             f"*sys.argv[1:]); "
                             f"print(open({str(kernel_json)!r}).read())"]
    spec_file = tmp_path / "sandbox.json"
    spec_file.write_text(json.dumps(data))
    connection = _connection_file(tmp_path, spec)
    # nbclient appends arguments for the kernel; they reach it
    result = _launch(spec_file, connection, tmp_path, "--HistoryManager.hist_file=:memory:")
    assert result.returncode == 0, result.stderr
    first, copied = result.stdout.split("\n", 1)
    assert first.split() == [str(sandbox.kernel_uid(spec)), "2", "False", "--HistoryManager.hist_file=:memory:"]
    assert json.loads(copied) == json.loads(connection.read_text())
    info = kernel_json.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (sandbox.kernel_uid(spec),) * 2 + (0o400,)


def test_launch_fails_clearly(make_spec, tmp_path):
    spec = make_spec()
    spec_file = sandbox.write_spec(spec, tmp_path / "sandbox.json")
    result = _launch(spec_file, _connection_file(tmp_path, spec, transport="tcp"), tmp_path)
    assert result.returncode == 97
    assert "segedu-sandbox: failed:" in result.stderr and "transport" in result.stderr
    result = _launch(tmp_path / "missing.json", _connection_file(tmp_path, spec), tmp_path)
    assert result.returncode == 97 and "segedu-sandbox: failed:" in result.stderr


def test_real_kernel_over_ipc(make_spec, tmp_path, monkeypatch):
    """jupyter_client starts the sandboxed kernel from the kernelspec, talks to it, interrupts it
    and shuts it down, and nothing it started survives."""
    from jupyter_client import KernelManager

    spec = make_spec()
    sandbox.write_kernelspec(tmp_path / "jupyter", spec)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("SEGEDU_GRADING_SEED", "s3cret-seed")
    marker = f"{300 + random.random() * 100:.6f}"
    manager = KernelManager(kernel_name="python3", transport="ipc", ip=f"{spec.scratch}/ipc/kernel")
    manager.start_kernel(extra_arguments=["--HistoryManager.hist_file=:memory:"])   # as nbclient does
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        launched = [manager.provisioner.process.pid, *sandbox.descendants(manager.provisioner.process.pid)]

        def execute(code: str) -> tuple[str, list]:
            outputs = []
            reply = client.execute_interactive(code, timeout=30, output_hook=lambda m: outputs.append(m["content"]))
            return reply["content"]["status"], outputs

        status, outputs = execute("1+1")
        assert status == "ok" and {"data": {"text/plain": "2"}} in [
            {"data": o["data"]} for o in outputs if "data" in o]
        status, outputs = execute(f"import os, subprocess\n"
                                  f"subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                                  f"print(os.getuid(), os.getpid(), 'SEGEDU_GRADING_SEED' in os.environ)")
        assert status == "ok"
        assert [o["text"].split() for o in outputs if "text" in o] == [[str(sandbox.kernel_uid(spec)), "2", "False"]]
        deadline = time.monotonic() + 3
        while not running(sleeps_with(marker)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running(sleeps_with(marker))   # the kernel's daemon runs (on the host, in the sandbox)

        client.execute("import time; time.sleep(60)")
        time.sleep(0.5)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=20)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert execute("2+3")[0] == "ok"
    finally:
        client.stop_channels()
        manager.shutdown_kernel()
    assert wait_until_gone(marker) == []   # the kernel's daemon died with it
    assert wait_until_dead(launched) == []
    assert sandbox.descendants(os.getpid()) == []
