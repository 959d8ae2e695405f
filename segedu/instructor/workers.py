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
FEEDBACK_WALL_S = 300          # after the autograde: the next kernel's start and the feedback page
MAX_TASKS_PER_WORKER = 200     # then a fresh worker: nothing a long run leaves behind can pile up
MAX_WORKER_RSS = 2 << 30       # bytes; a worker above it is replaced after its task


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

    # -P: the worker never imports from its working folder (students' folders live below it)
    command = (sys.executable, "-P", "-m", "segedu.instructor._grading_worker")

    def __init__(self, env: dict, cwd: Path, log: Path):
        self.log = Path(log)
        with open(self.log, "ab") as err:
            self.process = subprocess.Popen(
                list(self.command),
                cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True)
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = False
        self.tasks = 0
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
        "" / "memory" / "disk" / "timeout").

        The watchdog watches the student's kernel until the worker reports the autograde done;
        after that a failure or a stuck feedback page costs the feedback only (``"feedback": 1``).
        """
        self.wait_ready()
        self.tasks += 1
        self.process.stdin.write((json.dumps(task) + "\n").encode())
        self.process.stdin.flush()
        action, tick, graded = "", 0, None
        deadline = time.monotonic() + wall
        while True:
            try:
                answer = self.answers.get(timeout=0.1)
            except queue.Empty:
                answer = ...
            if answer is None or (answer is ... and not self.alive):   # the worker is gone
                return _feedback_lost(graded), action
            if answer is not ...:
                if answer.get("phase") == "autograded":
                    graded, deadline = answer, time.monotonic() + FEEDBACK_WALL_S
                    continue
                return answer, action
            if time.monotonic() > deadline:
                self.kill()
                return _feedback_lost(graded), (action if graded else "timeout")
            if graded is not None:
                continue
            kernels = sandbox.descendants(self.process.pid)
            over_disk = False
            if scratch is not None and tick % 5 == 0:
                used, entries = sandbox.folder_usage(scratch)
                over_disk = used > scratch_bytes or entries > MAX_SCRATCH_ENTRIES
            if kernels and (over_disk or sandbox.memory_bytes(kernels) > memory):
                action = action or ("disk" if over_disk else "memory")
                _kill(kernels)
            tick += 1

    @property
    def worn(self) -> bool:
        """Time for a fresh worker (many tasks done, or grown large)."""
        return self.tasks >= MAX_TASKS_PER_WORKER or sandbox.rss_bytes(self.process.pid) > MAX_WORKER_RSS

    def kill(self) -> None:
        if self.process.returncode is not None:
            return
        _kill(sandbox.descendants(self.process.pid))
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        if self.process.returncode is None:
            leftovers = sandbox.descendants(self.process.pid)   # before the pid can be reused
            try:
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
            _kill(leftovers)
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _feedback_lost(graded: dict | None) -> dict | None:
    """The answer of a worker that died or hung after reporting the autograde: the grade stands."""
    if graded is None:
        return None
    return {"autograde": graded.get("autograde", 1), "feedback": 1, "timings": graded.get("timings", {}),
            "prestarted": False}


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
                worker = self._replace(worker)
                if not worker.alive:
                    raise WorkerGone("no grading worker could be started (see OUT/.work/workers/)")
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
            self._idle.put(self._replace(worker) if not worker.alive or worker.worn else worker)

    def _replace(self, worker: Worker) -> Worker:
        """A fresh worker for ``worker`` (closed); if none can start, the dead one, which the next
        :meth:`run` replaces again (the pool never loses a place)."""
        if worker.next_slot is not None:
            worker.next_slot.remove()
            worker.next_slot = None
        worker.close()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
        try:
            return self._start()
        except Exception:   # noqa: BLE001
            return worker

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
