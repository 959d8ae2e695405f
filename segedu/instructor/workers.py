"""Long-lived grading workers (:mod:`._grading_worker`) and the watchdog around each task.

``segedu grade`` used to start ``nbgrader autograde`` and ``nbgrader generate_feedback`` as two new
processes per student; importing nbgrader (jsonschema builds dozens of parsers on import) cost more
than grading a numpy exercise. A :class:`WorkerPool` starts one worker per parallel job, once, while
the plan is being built; each student then costs nbgrader's own work, a sandboxed kernel and the
cells.

Kernels start early: every task also names the sandbox slot of the worker's next task (a scratch
folder, a uid and a kernelspec of their own, made by the pool's ``make_slot``), and the worker starts
that kernel as soon as the current notebook has run, so that it boots while the verdict, the
feedback and the next task's set-up happen. A slot serves one student and is deleted after.

The watchdog is the one ``segedu grade`` always had: while a task runs, the kernels under the worker
are summed for memory (memfds included) and their exchange folder for bytes and entries; a kernel
over a limit is killed (nbgrader then records a dead kernel for that student only), and a task past
its wall-clock limit is killed with its whole worker, which the pool replaces.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import sandbox

MAX_SCRATCH_ENTRIES = 20_000
READY_TIMEOUT_S = 300


@dataclass
class Slot:
    """Where one student's kernel runs: its exchange folder and how to start it."""

    scratch: Path            # the kernel's exchange folder (the sandbox's scratch root)
    home: Path | None = None  # the grader's own files for the slot (kernelspec, connection file)
    jupyter_path: str = ""   # JUPYTER_PATH that finds the slot's kernelspec first
    ip: str = ""             # the kernel's ipc socket prefix ("" : no sandbox, no early start)

    @property
    def prestartable(self) -> bool:
        return bool(self.ip and self.home)

    def prestart(self) -> dict:
        return {"id": str(self.scratch), "jupyter_path": self.jupyter_path, "ip": self.ip,
                "runtime": str(self.home / "runtime")}

    def remove(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)


class WorkerGone(RuntimeError):
    """The worker died or stopped answering; the pool starts a new one."""


class Worker:
    """One ``_grading_worker`` process and a thread reading its answers."""

    def __init__(self, env: dict, cwd: Path, log: Path):
        self.log = Path(log)
        with open(self.log, "ab") as err:
            # -P: the worker never imports from its working folder (students' folders live below it)
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "segedu.instructor._grading_worker"],
                cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True)
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = False
        self.next_slot: Slot | None = None   # the slot whose kernel this worker has started

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.answers.put(json.loads(line))
            except ValueError:
                continue
        self.answers.put(None)   # end of stream: the worker is gone

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        if self.ready:
            return
        try:
            answer = self.answers.get(timeout=timeout)
        except queue.Empty:
            answer = None
        if not answer or "ready" not in answer:
            self.kill()
            tail = self.log.read_text(errors="replace")[-600:] if self.log.exists() else ""
            raise WorkerGone(f"the grading worker did not start: {tail}")
        self.ready = True

    def run(self, task: dict, wall: float, memory: int, scratch: Path | None = None,
            scratch_bytes: int = 0) -> tuple[dict | None, str]:
        """Send ``task``; return (the worker's answer or None, what the watchdog did:
        "" / "memory" / "disk" / "timeout")."""
        self.wait_ready()
        self.process.stdin.write((json.dumps(task) + "\n").encode())
        self.process.stdin.flush()
        action, start, tick = "", time.monotonic(), 0
        while True:
            try:
                answer = self.answers.get(timeout=0.1)
                return answer, action
            except queue.Empty:
                pass
            if not self.alive:
                return None, action
            if time.monotonic() - start > wall:
                self.kill()
                return None, "timeout"
            kernels = sandbox.descendants(self.process.pid)
            over_disk = False
            if scratch is not None and tick % 5 == 0:
                used, entries = sandbox.folder_usage(scratch)
                over_disk = used > scratch_bytes or entries > MAX_SCRATCH_ENTRIES
            if kernels and (over_disk or sandbox.memory_bytes(kernels) > memory):
                action = action or ("disk" if over_disk else "memory")
                _kill(kernels)
            tick += 1

    def kill(self) -> None:
        _kill(sandbox.descendants(self.process.pid))
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        if self.alive:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        _kill(sandbox.descendants(self.process.pid))


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class WorkerPool:
    """``size`` workers, started at once; :meth:`run` borrows one for a task.

    ``make_slot()`` makes a fresh :class:`Slot`; the pool deletes each slot after its task.
    """

    def __init__(self, size: int, env: dict, cwd: Path, make_slot: Callable[[], Slot] | None = None):
        self.env, self.cwd = dict(env), Path(cwd)
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.make_slot = make_slot
        self._count = 0
        self._lock = threading.Lock()
        self._idle: queue.Queue = queue.Queue()
        self._all: list[Worker] = []
        for _ in range(max(1, size)):
            self._idle.put(self._start())

    def _start(self) -> Worker:
        with self._lock:
            self._count += 1
            worker = Worker(self.env, self.cwd, self.cwd / f"worker-{self._count}.log")
            self._all.append(worker)
            return worker

    def run(self, build_task: Callable[[Slot], dict], wall: float, memory: int,
            scratch_bytes: int = 0) -> tuple[dict | None, str]:
        """Run ``build_task(slot)`` on an idle worker, in the slot whose kernel it started (or a new
        one); return (the worker's answer or None, what the watchdog did)."""
        worker = self._idle.get()
        slot = following = None
        try:
            if not worker.alive:
                if worker.next_slot is not None:
                    worker.next_slot.remove()
                worker = self._start()
            slot, worker.next_slot = worker.next_slot, None
            if slot is None:
                slot = self.make_slot()
            task = build_task(slot)
            task["slot"] = str(slot.scratch)
            if slot.prestartable:
                following = self.make_slot()
                task["prestart"] = following.prestart()
            answer, action = worker.run(task, wall, memory, slot.scratch, scratch_bytes)
            if following is not None and worker.alive and answer and answer.get("prestarted"):
                worker.next_slot, following = following, None
            return answer, action
        finally:
            for spare in (slot, following):
                if spare is not None:
                    spare.remove()
            self._idle.put(worker if worker.alive else self._start())

    def wait_ready(self) -> None:
        """Until every worker has imported what it needs (a failed start surfaces at its first task)."""
        for worker in list(self._all):
            try:
                worker.wait_ready()
            except WorkerGone:
                pass

    def close(self) -> None:
        for worker in self._all:
            worker.close()
            if worker.next_slot is not None:
                worker.next_slot.remove()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
