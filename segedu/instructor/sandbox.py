"""Run each student's Jupyter kernel in a bubblewrap sandbox that student code cannot leave.

What the sandbox is built from
------------------------------
* ``bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session``: own user,
  PID, mount, network, IPC, UTS and cgroup namespaces. There is no network device but a downed
  loopback, nested user namespaces are refused, and every process the kernel starts (daemons that
  called ``setsid`` included) is killed when the kernel exits or when the grader kills it.
* When the grader runs as root, the kernel runs as an unprivileged uid/gid (one per student) with
  no capabilities: ``unshare --mount`` gives a private mount namespace in which root bind-mounts the
  read-only sources (the interpreter, the venv, ...) onto ``<scratch>/stage/<n>`` (``/root`` is
  0700, so an unprivileged bwrap could not reach ``/root/.pyenv`` itself), then ``setpriv`` drops
  to the uid, clears groups, capabilities and the bounding set, sets ``no_new_privs`` and execs an
  unprivileged bwrap that binds from the staging paths. These staging binds exist only in that
  private mount namespace; the host sees empty folders. When the grader is not root (an
  instructor's laptop), bwrap runs directly as that user.
* Resource limits, set by ``prlimit`` inside the sandbox just before the command: ``RLIMIT_NPROC``
  (counted per user namespace and uid, i.e. per sandbox, on Linux >= 5.14), ``RLIMIT_FSIZE``,
  ``RLIMIT_AS`` (at least 6 GiB: ``import torch`` needs about 4.5), ``RLIMIT_NOFILE``, no core
  files. Resident memory of the whole tree is watched by the grader (:func:`tree_rss_bytes`).
* An empty environment (``--clearenv``) plus PATH, HOME, LANG, PYTHON* settings, one BLAS thread,
  MPLBACKEND=Agg and the caller's variables.

What a kernel can see
---------------------
Read-only: ``/usr`` (and the host's ``/bin``, ``/lib``... as symlinks or binds), ``/etc/ld.so.cache``,
``/etc/localtime``, ``/etc/fonts``, a generated ``/etc/passwd`` and ``/etc/group``, the interpreter
(``sys.base_prefix``, the venv ``sys.prefix``, the directories of ``sys.executable``'s symlinks),
the site-packages directories, the caller's ``read_only`` and ``python_path`` folders, and
``<scratch>/in`` and ``<scratch>/kernel.json``. Writable: ``<scratch>/out`` and ``<scratch>/ipc``
(host folders owned by the kernel's uid: the kernel's ZMQ Unix sockets live in ``ipc/``), and
size-bounded tmpfs at ``/tmp``, ``/dev/shm`` and ``<scratch>/work`` (the working folder and HOME).
``/`` and ``/dev`` are read-only tmpfs; ``/proc`` shows only the sandbox's processes. Nothing else
of the host exists: not the repository, the grader's output folder, other students' scratch
roots, ``/root`` or ``/home`` (apart from the bound interpreter paths), nor the host's ``/tmp``.
Modules named in ``hide_modules`` are covered by a stub package whose import raises ImportError.

What it can still do: use all CPUs (no cgroups), create SysV/POSIX shared memory and memfds
(bounded by the kernel's lifetime, not visible in RSS), read world-readable files of the bound
folders (e.g. other packages' sources), and write its own ``out/``.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import json
import os
import shlex
import shutil
import site
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

BWRAP = "bubblewrap"
NONE = "none"

MIB = 1 << 20
GIB = 1 << 30
PROBE_UID = 65534   # "nobody": the uid the probe of detect() runs as when the grader is root
HIDDEN_STUB = 'raise ImportError(f"{__name__} is not available inside the grading sandbox")\n'
_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC = ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts")   # bound if present


@dataclass
class SandboxSpec:
    """Where a kernel's sandbox lives and what it may use. Paths are host paths."""

    scratch: Path             # short, root-owned folder; see prepare()
    uid: int                  # the kernel's uid and gid when the grader is root
    hide_modules: tuple = ()  # top-level module names to make unimportable
    read_only: tuple = ()     # extra host folders bound read-only at the same path
    python_path: tuple = ()   # host folders bound read-only and put on PYTHONPATH
    env: dict = field(default_factory=dict)
    memory_mb: int = 4096     # RLIMIT_AS is max(6 GiB, 1.5 * this); the grader also watches RSS
    tmp_mb: int = 256
    shm_mb: int = 64
    work_mb: int = 256
    fsize_mb: int = 256
    nproc: int = 256
    nofile: int = 1024
    quiet: bool = False       # the command's own stdout/stderr go nowhere (a kernel must not write the grader's log)

    def to_json(self) -> str:
        data = asdict(self)
        data["scratch"] = str(self.scratch)
        return json.dumps(data, indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> "SandboxSpec":
        data = dict(data)
        data["scratch"] = Path(data["scratch"])
        for name in ("hide_modules", "read_only", "python_path"):
            data[name] = tuple(data.get(name, ()))
        return cls(**data)


def _as_root() -> bool:
    return os.geteuid() == 0


def kernel_uid(spec: SandboxSpec) -> int:
    """The uid the kernel runs as: ``spec.uid`` when the grader is root, else the grader's own."""
    return spec.uid if _as_root() else os.getuid()


# ----------------------------------------------------------------------------- detection

def detect() -> tuple[str, str]:
    """(mechanism, words): whether kernels can be sandboxed here. Probes once per process."""
    return _probe()


@functools.lru_cache(maxsize=None)
def _probe() -> tuple[str, str]:
    fix = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf "
           "install bubblewrap), or grade on Linux: WSL2 on Windows, a Linux VM on macOS")
    if not sys.platform.startswith("linux"):
        return NONE, f"no sandbox: kernels can only be sandboxed on Linux ({sys.platform}); {fix}"
    tools = ["bwrap", "prlimit"] + (["unshare", "setpriv"] if _as_root() else [])
    missing = [tool for tool in tools if not _which(tool)]
    if missing:
        return NONE, f"no sandbox: {', '.join(missing)} not found; {fix} (prlimit, unshare, setpriv: util-linux)"
    scratch = None
    try:
        scratch = Path(tempfile.mkdtemp(prefix="sg-probe-", dir="/tmp"))
        spec = SandboxSpec(scratch, uid=PROBE_UID)
        prepare(spec)
        result = subprocess.run(command(spec, [sys.executable, "-c", "import os; print(os.getuid())"]),
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        expected = str(kernel_uid(spec))
        if result.returncode == 0 and result.stdout.split() == [expected]:
            return BWRAP, (f"bubblewrap sandbox ({'a uid per student' if _as_root() else 'your uid'}, "
                           "no network, private filesystem and PID namespace)")
        if result.returncode == 0:
            reason = f"the probe ran as uid {result.stdout.strip()!r}, not {expected}"
        else:
            reason = (result.stderr.strip() or f"exit status {result.returncode}")[-300:]
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        reason = str(error)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return NONE, f"no sandbox: the bubblewrap probe failed ({reason}); {_userns_hint()}"


def _userns_hint() -> str:
    def read(name):
        try:
            return Path("/proc/sys", name).read_text().strip()
        except OSError:
            return None
    if read("kernel/apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor forbids unprivileged user namespaces (Ubuntu >= 23.10): install the bwrap "
                "AppArmor profile (apparmor >= 4 ships /etc/apparmor.d/bwrap-userns-restrict) or run "
                "`sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`")
    if read("kernel/unprivileged_userns_clone") == "0":
        return "unprivileged user namespaces are off: `sudo sysctl kernel.unprivileged_userns_clone=1`"
    if read("user/max_user_namespaces") == "0":
        return "user namespaces are off: `sudo sysctl user.max_user_namespaces=15000`"
    return ("bubblewrap needs unprivileged user namespaces (not available in most containers); "
            "grade on a Linux machine or VM, or with --no-isolation")


def _which(tool: str) -> str | None:
    """A tool from the system folders only (never from a venv or a user's PATH)."""
    return shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin")


# ----------------------------------------------------------------------------- scratch root

def prepare(spec: SandboxSpec) -> None:
    """Create ``in/ out/ ipc/ stage/`` in the scratch root with the right owners. Idempotent.

    ``in/`` (read-only for the kernel) and ``stage/`` belong to the grader; ``out/`` and ``ipc/``
    to the kernel's uid. The scratch root and its parents must be traversable by that uid.
    """
    scratch = Path(spec.scratch)
    if not scratch.is_absolute():
        raise ValueError(f"the scratch root must be an absolute path: {scratch}")
    if _as_root() and spec.uid <= 0:
        raise ValueError(f"the kernel must not run as root (uid {spec.uid})")
    scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o755)
    uid = kernel_uid(spec)
    if _as_root():
        closed = [p for p in scratch.parents if not os.stat(p).st_mode & 0o001]
        if closed:
            raise ValueError(f"uid {uid} cannot reach the scratch root {scratch}: {closed[0]} is not "
                             "traversable (put it under /tmp)")
    for name, mode, owner in (("in", 0o755, None), ("out", 0o755, uid), ("ipc", 0o700, uid),
                              ("stage", 0o755, None)):
        path = scratch / name
        path.mkdir(exist_ok=True)
        os.chmod(path, mode)
        if owner is not None and _as_root():
            os.chown(path, owner, owner)
    stage = scratch / "stage"
    (stage / "hidden").mkdir(exist_ok=True)
    (stage / "empty").mkdir(exist_ok=True)
    _write(stage / "hidden" / "__init__.py", HIDDEN_STUB)
    _write(stage / "passwd", f"root:x:0:0:root:/:/usr/sbin/nologin\n"
                             f"student:x:{uid}:{uid}:student:{scratch / 'work'}:/bin/sh\n")
    _write(stage / "group", f"root:x:0:\nstudent:x:{uid}:\n")
    if _as_root():
        for i, path in enumerate(_read_only_dirs(spec)):
            if not os.stat(path).st_mode & 0o001:
                raise ValueError(f"uid {uid} cannot enter {path} (mode {os.stat(path).st_mode & 0o777:o}): "
                                 "folders bound into the sandbox must be world-readable")
            (stage / str(i)).mkdir(exist_ok=True)


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    os.chmod(path, 0o644)


# ----------------------------------------------------------------------------- what is bound

def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _read_only_dirs(spec: SandboxSpec) -> list[str]:
    """Host folders bound read-only at the same path (besides /usr): outermost first, no repeats."""
    wanted = [sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix, *site.getsitepackages()]
    link = sys.executable   # every folder on the way from sys.executable to the real binary
    for _ in range(40):
        wanted.append(os.path.dirname(link))
        if not os.path.islink(link):
            break
        link = os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))
    wanted += [str(p) for p in (*spec.read_only, *spec.python_path)]
    scratch = str(Path(spec.scratch))
    found: list[str] = []
    for path in sorted({os.path.abspath(p) for p in wanted}, key=lambda p: (p.count("/"), p)):
        if not os.path.isdir(path) or _inside(path, "/usr"):
            continue
        if path == "/" or _inside(scratch, path) or _inside(path, scratch):
            raise ValueError(f"refusing to bind {path} read-only into the sandbox: it is /, holds the "
                             f"scratch root or lies inside it (use {scratch}/in)")
        # a folder already visible through a bound parent (same file underneath) needs no bind
        if any(_inside(path, outer) and os.path.realpath(path) == os.path.realpath(outer) +
               path[len(outer):] for outer in found):
            continue
        found.append(path)
    return found


def _visible(path: str, bound: list[str]) -> bool:
    return any(_inside(path, folder) for folder in ["/usr", *bound])


def _hidden_paths(spec: SandboxSpec, bound: list[str]) -> list[str]:
    """Where the hidden modules could be imported from inside the sandbox (folders or files).

    Every entry of the grader's ``sys.path`` and of ``python_path`` is searched (not just the first
    hit, since the sandbox's ``sys.path`` differs), plus the grader's meta path finders (editable
    installs). Nothing is imported. Locations the sandbox does not show need no cover.
    """
    entries = [p for p in (*map(str, spec.python_path), *sys.path) if p and os.path.isdir(p)]
    found: list[str] = []
    for name in spec.hide_modules:
        if not name.isidentifier():
            raise ValueError(f"hide_modules takes top-level module names, not {name!r}")
        specs = [importlib.machinery.PathFinder.find_spec(name, [entry]) for entry in entries]
        try:
            specs.append(importlib.util.find_spec(name))
        except (ImportError, ValueError):
            pass
        for module in filter(None, specs):
            places = list(module.submodule_search_locations or []) or [module.origin]
            for place in places:
                if place and os.path.exists(place):
                    place = os.path.abspath(place)
                    if _visible(place, bound) and place not in found:
                        found.append(place)
    return sorted(found)


def _foreign_package_dirs(bound: list[str]) -> list[str]:
    """Package folders that the sandbox shows but the kernel's interpreter does not use: the base
    interpreter's site-packages under a venv, and the system's dist-packages.

    A notebook could put one on ``sys.path`` and import another copy of a hidden module from it (found
    by attack review: the base interpreter's own scipy, under a venv that excludes it); they are covered
    with an empty folder.
    """
    import glob

    used = {os.path.realpath(p) for p in sys.path if p}
    candidates = list(site.getsitepackages([sys.base_prefix, sys.base_exec_prefix]))
    for pattern in ("/usr/lib/python3*/dist-packages", "/usr/lib/python3*/site-packages",
                    "/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages"):
        candidates += glob.glob(pattern)
    found = []
    for folder in candidates:
        folder = os.path.abspath(folder)
        if (os.path.isdir(folder) and os.path.realpath(folder) not in used and _visible(folder, bound)
                and folder not in found):
            found.append(folder)
    return sorted(found)


def _environment(spec: SandboxSpec) -> dict:
    scratch = Path(spec.scratch)
    env = {
        "PATH": ":".join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(scratch / "work"),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    }
    if spec.python_path:
        env["PYTHONPATH"] = ":".join(os.path.abspath(p) for p in spec.python_path)
    env.update({str(k): str(v) for k, v in spec.env.items()})
    return env


def limits(spec: SandboxSpec) -> dict[str, int]:
    """The rlimits (soft = hard) of the sandboxed command, by ``prlimit`` option name."""
    return {"nproc": spec.nproc, "fsize": spec.fsize_mb * MIB,
            "as": max(6 * GIB, int(1.5 * spec.memory_mb * MIB)), "nofile": spec.nofile, "core": 0}


# ----------------------------------------------------------------------------- the command

def command(spec: SandboxSpec, argv: list[str]) -> list[str]:
    """The host command line that runs ``argv`` (host paths) in the sandbox. Call prepare() first."""
    scratch = Path(spec.scratch)
    stage = scratch / "stage"
    root = _as_root()
    bound = _read_only_dirs(spec)
    bwrap = [_which("bwrap") or "bwrap", "--unshare-all", "--unshare-user", "--disable-userns",
             "--die-with-parent", "--new-session", "--hostname", "sandbox",
             "--ro-bind", "/usr", "/usr"]
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            bwrap += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            bwrap += ["--ro-bind", path, path]
    for path in _ETC:
        bwrap += ["--ro-bind-try", path, path]
    bwrap += ["--ro-bind", str(stage / "passwd"), "/etc/passwd", "--ro-bind", str(stage / "group"), "/etc/group",
              "--proc", "/proc", "--dev", "/dev",
              "--size", str(spec.tmp_mb * MIB), "--tmpfs", "/tmp",
              "--size", str(spec.shm_mb * MIB), "--tmpfs", "/dev/shm"]
    for i, path in enumerate(bound):
        bwrap += ["--ro-bind", str(stage / str(i)) if root else path, path]
    for path in _hidden_paths(spec, bound):
        stub = stage / "hidden" if os.path.isdir(path) else stage / "hidden" / "__init__.py"
        bwrap += ["--ro-bind", str(stub), path]
    for path in _foreign_package_dirs(bound):
        bwrap += ["--ro-bind", str(stage / "empty"), path]
    bwrap += ["--size", str(MIB), "--tmpfs", str(scratch),   # made read-only below
              "--ro-bind", str(scratch / "in"), str(scratch / "in"),
              "--bind", str(scratch / "out"), str(scratch / "out"),
              "--bind", str(scratch / "ipc"), str(scratch / "ipc"),
              "--ro-bind-try", str(scratch / "kernel.json"), str(scratch / "kernel.json"),
              "--size", str(spec.work_mb * MIB), "--tmpfs", str(scratch / "work"),
              "--chdir", str(scratch / "work"),
              "--remount-ro", str(scratch), "--remount-ro", "/dev", "--remount-ro", "/",
              "--clearenv"]
    for name, value in _environment(spec).items():
        bwrap += ["--setenv", name, value]
    bwrap.append("--")
    if spec.quiet:   # after bwrap's own set-up messages, which the grader's log should keep
        bwrap += ["/bin/sh", "-c", 'exec "$@" >/dev/null 2>&1', "sh"]
    bwrap += [_which("prlimit") or "/usr/bin/prlimit",
              *[f"--{name}={value}:{value}" for name, value in limits(spec).items()], "--", *argv]
    if not root:
        return bwrap
    uid = str(spec.uid)
    stage_binds = [f"mount --bind {shlex.quote(path)} {shlex.quote(str(stage / str(i)))} || "
                   f"{{ echo 'segedu-sandbox: failed: cannot stage {path}' >&2; exit 97; }}"
                   for i, path in enumerate(bound)]
    script = "; ".join([*stage_binds, 'exec "$@"'])
    return [_which("unshare") or "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            _which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *bwrap]


# ----------------------------------------------------------------------------- kernelspec

def write_spec(spec: SandboxSpec, path: Path) -> Path:
    Path(path).write_text(spec.to_json())
    return Path(path)


def write_kernelspec(jupyter_dir: Path, spec: SandboxSpec) -> Path:
    """``jupyter_dir/kernels/python3/kernel.json``: a kernel started by :mod:`._launch` in the sandbox.

    Put ``jupyter_dir`` first on ``JUPYTER_PATH``, and start kernels with
    ``KernelManager(transport="ipc", ip=f"{scratch}/ipc/kernel")``. The spec is saved next to
    kernel.json (``jupyter_dir`` must not be inside the scratch root). Interrupts are sent as
    messages: a SIGINT to the process group would stop bwrap and with it the kernel.
    """
    kernel_dir = Path(jupyter_dir) / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec_path = write_spec(spec, kernel_dir / "sandbox.json")
    kernelspec = {
        "argv": [sys.executable, "-I", "-m", "segedu.instructor._launch", str(spec_path), "{connection_file}"],
        "display_name": "Python 3 (segedu grading sandbox)",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(kernelspec, indent=1))
    return kernel_dir / "kernel.json"


# ----------------------------------------------------------------------------- processes

def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux /proc; sandboxed processes included); empty elsewhere."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        parent = int(stat[stat.rfind(b")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (shared pages count once per process)."""
    return sum(rss_bytes(p) for p in [pid, *descendants(pid)])


def memory_bytes(pids) -> int:
    """What processes hold in memory: their resident memory plus anonymous files they keep open.

    A memfd (``os.memfd_create``) written with ``write()`` lives in shared memory that belongs to no
    process's RSS; each is counted once, by its inode, through ``/proc/<pid>/fd``.
    """
    total, seen = 0, set()
    for pid in pids:
        total += rss_bytes(pid)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                if not os.readlink(path).startswith("/memfd:"):
                    continue
                info = os.stat(path)
            except OSError:
                continue
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_blocks * 512
    return total


def folder_usage(folder) -> tuple[int, int]:
    """(bytes of disk, entries) under ``folder``: directories and empty files cost disk too."""
    used, entries = 0, 0
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            entries += 1
            try:
                used += max(os.lstat(os.path.join(dirpath, name)).st_blocks * 512, 512)
            except OSError:
                pass
    return used, entries
