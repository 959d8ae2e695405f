"""Start one Jupyter kernel in the grading sandbox (the argv of the kernelspec of :mod:`.sandbox`).

``python -I -m segedu.instructor._launch SPEC.json CONNECTION_FILE [KERNEL ARGS]``: copies the connection file
(which jupyter_client wrote 0600 for the grader) to ``<scratch>/kernel.json``, readable only by the
kernel's uid, and execs ``ipykernel_launcher`` through :func:`.sandbox.command`, so that
jupyter_client's process is bwrap itself (signals and kills reach the sandbox). If the sandbox
cannot be set up it prints ``segedu-sandbox: failed: <reason>`` and exits with status 97.
Imports nothing heavy: it runs once per kernel start.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FAILED = 97


def _copy_connection_file(source: str, scratch: Path, uid: int | None) -> Path:
    data = Path(source).read_bytes()
    info = json.loads(data)
    ipc = str(scratch / "ipc") + "/"
    if info.get("transport") != "ipc" or not str(info.get("ip", "")).startswith(ipc):
        raise ValueError(f"the connection file must use transport 'ipc' with ip under {ipc} (set "
                         f"KernelManager.transport = 'ipc' and KernelManager.ip = '{ipc}kernel'); it has "
                         f"transport={info.get('transport')!r} ip={info.get('ip')!r}")
    target, tmp = scratch / "kernel.json", scratch / ".kernel.json.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    try:
        os.write(fd, data)
        os.fchmod(fd, 0o400)
        if uid is not None:
            os.fchown(fd, uid, uid)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    return target


def main(argv: list[str]) -> int:
    try:
        from segedu.instructor import sandbox

        if len(argv) < 2:
            raise ValueError("usage: python -m segedu.instructor._launch SPEC.json CONNECTION_FILE [KERNEL ARGS]")
        data = json.loads(Path(argv[0]).read_text())
        override = data.pop("argv_override", None)   # tests only: run this instead of the kernel
        spec = sandbox.SandboxSpec.from_dict(data)
        sandbox.prepare(spec)
        uid = spec.uid if os.geteuid() == 0 else None
        connection = _copy_connection_file(argv[1], Path(spec.scratch), uid)
        # extra arguments come from the grader's kernel manager (nbclient adds
        # --HistoryManager.hist_file=:memory:) and go to the kernel
        inner = (override or [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection)]) + argv[2:]
        cmd = sandbox.command(spec, inner)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execvp(cmd[0], cmd)
    except Exception as error:   # noqa: BLE001 - anything here means no sandbox
        print(f"segedu-sandbox: failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return FAILED
    return FAILED   # not reached: execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
