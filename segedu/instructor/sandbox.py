"""Run each student's kernel where it cannot read solutions, the gradebook or other submissions.

On Linux with unprivileged user namespaces, every kernel is started through ``unshare`` in new
user, mount and network namespaces: loopback is brought up (and nothing else, so there is no
network), folders that a student must not read are covered with empty tmpfs mounts, and only the
kernel's own working folder and the Python installation are bound back. The kernel talks to
nbgrader over Unix sockets (``KernelManager.transport = "ipc"``), which a network namespace does
not cut.

Where namespaces are not available (macOS, Windows, locked-down containers), :func:`detect`
says so and grading still runs, unisolated, with a note in the summary.

Memory is limited by a watchdog in the grader (see ``grade.py``) that kills a kernel whose
resident memory passes the limit: an address-space rlimit would break torch, and cgroups need
privileges that a grader usually lacks.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ISOLATED = "unshare"   # user + mount + network namespaces
NONE = "none"


def detect() -> tuple[str, str]:
    """(mechanism, words): what isolation works on this machine."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return NONE, "no isolation: `unshare` (Linux namespaces) is not available"
    probe = tempfile.mkdtemp(prefix="segedu-probe-")
    try:
        script = f"ip link set lo up 2>/dev/null || true; mount -t tmpfs -o size=1m segedu-hidden {shlex.quote(probe)}"
        result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "--net", "sh", "-c", script],
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as error:
        return NONE, f"no isolation: unshare failed ({error})"
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    if result.returncode != 0:
        return NONE, f"no isolation: unshare failed ({result.stderr.strip()[:200]})"
    return ISOLATED, "user+mount+network namespaces (unshare): no network, hidden folders"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def write_kernelspec(jupyter_dir: Path, stage: Path, hide: list[Path], keep: list[Path], mechanism: str) -> Path:
    """A ``python3`` kernelspec under ``jupyter_dir/kernels`` that starts the kernel in the sandbox.

    Put ``jupyter_dir`` first on ``JUPYTER_PATH`` so that it replaces the usual python3 kernel.
    """
    kernel_dir = Path(jupyter_dir) / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if mechanism == ISOLATED:
        hide = [Path(h).resolve() for h in hide if Path(h).exists()]
        keep = [Path(k).resolve() for k in keep if Path(k).exists()]
        keep = [k for k in keep if any(_inside(k, h) for h in hide)]
        lines = ['fail() { echo "segedu-sandbox: failed: $*" >&2; exit 97; }',
                 "ip link set lo up 2>/dev/null || true", 'here="$(pwd)"']
        for i, path in enumerate(keep):
            (Path(stage) / str(i)).mkdir(parents=True, exist_ok=True)
            lines.append(f"mount --rbind {shlex.quote(str(path))} {shlex.quote(str(Path(stage) / str(i)))}")
        for path in hide:
            if path.is_dir():
                lines.append(f"mount -t tmpfs -o size=1m,mode=755 segedu-hidden {shlex.quote(str(path))}")
            else:   # a file (e.g. the LMS zip)
                lines.append(f"mount --bind /dev/null {shlex.quote(str(path))}")
        for i, path in enumerate(keep):
            lines.append(f"mkdir -p {shlex.quote(str(path))}")
            lines.append(f"mount --rbind {shlex.quote(str(Path(stage) / str(i)))} {shlex.quote(str(path))}")
        lines.append('cd "$here"')
        lines = [line if line.startswith(("fail", "ip ", "here")) else f"{line} || fail {shlex.quote(line)}"
                 for line in lines]
        lines.append('exec "$@"')
        script = kernel_dir / "sandbox.sh"
        script.write_text("\n".join(lines) + "\n")
        argv = ["unshare", "--user", "--map-root-user", "--mount", "--net",
                "sh", str(script), *argv]
    spec = {"argv": argv, "display_name": "Python 3 (segedu grading sandbox)", "language": "python",
            "metadata": {"debugger": False}}
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kernel_dir


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux /proc); empty elsewhere."""
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
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0

