"""A long-lived grading worker: nbgrader's autograde and feedback through its Python API.

``python -P -m segedu.instructor._grading_worker`` reads one JSON task per line on stdin and answers
one JSON line per task on the stdout it was started with; everything else it or nbgrader would print
goes to the task's log file. Started once per parallel job by :class:`.workers.WorkerPool`, it pays
for importing nbgrader, nbconvert and jsonschema (seconds on a laptop) once per run instead of twice
per student.

A task names one student's course folder (made by :mod:`.grade`: its own ``nbgrader_config.py``,
gradebook copy and submission). The worker loads that configuration file and nothing else, runs the
same converters ``nbgrader autograde --create --force --student=ID`` and ``nbgrader
generate_feedback --force --student=ID`` run, and answers. Only nbgrader and the verdict run here;
student code runs in the sandboxed kernel that nbgrader starts. A student who brings the kernel down
costs that task only; a stuck run is killed from outside with the whole worker, and the pool starts
a fresh one.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback

from nbgrader.preprocessors import Execute

# set by the pool for every task; each task replaces them
TASK_ENVIRONMENT = ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")
PYTHON_KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:"]   # what nbclient gives an IPython kernel

# the kernel started for the next task: (slot id, AsyncKernelManager)
_warm: dict = {}
_WORKER_LOG = [2]   # the fd of the worker's own log, set by main()
_BASE_ENVIRONMENT: dict = {}   # the environment the worker started with; every task starts from it
_worker_log = logging.getLogger("segedu.grading_worker")   # the worker's own log, not a student's


def start_next_kernel(prestart: dict, log=_worker_log) -> bool:
    """Start the kernel of the next task's slot now; it boots while this task finishes."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    saved = {name: os.environ.get(name) for name in TASK_ENVIRONMENT}
    task_out, task_err = os.dup(1), os.dup(2)
    try:
        # the kernel inherits fds 1 and 2: not this student's log (a failed start shows again, in
        # the next student's log, when that task starts a kernel itself)
        _redirect(None, _WORKER_LOG[0])
        os.environ["JUPYTER_PATH"] = prestart["jupyter_path"]
        os.environ["JUPYTER_RUNTIME_DIR"] = prestart["runtime"]
        manager = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=prestart["ip"], log=log)
        run_sync(manager.start_kernel)(extra_arguments=list(PYTHON_KERNEL_ARGS))
    except Exception:   # noqa: BLE001 - the next task then starts its kernel itself
        log.warning("could not start the next kernel early: %s", traceback.format_exc())
        return False
    finally:
        os.dup2(task_out, 1)
        os.dup2(task_err, 2)
        os.close(task_out)
        os.close(task_err)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    _warm[prestart["id"]] = manager
    return True


def _shutdown(manager) -> None:
    from jupyter_core.utils import run_sync

    try:
        run_sync(manager.shutdown_kernel)(now=True)
    except Exception:   # noqa: BLE001 - already gone
        pass


def _discard_warm(keep: str | None = None) -> None:
    """Shut down every early kernel but the one of slot ``keep``."""
    for slot in [s for s in _warm if s != keep]:
        _shutdown(_warm.pop(slot))


class WarmExecute(Execute):
    """nbgrader's ``Execute``, using the kernel this worker started early for the task's slot when
    it is still alive (otherwise it starts one as nbgrader would). Everything else, from timeouts to
    the kernel's shutdown, is nbgrader's."""

    slot = ""   # set by the worker for each task

    def create_kernel_manager(self):
        from jupyter_core.utils import run_sync

        manager = _warm.pop(type(self).slot, None)
        if manager is not None:
            try:
                alive = run_sync(manager.is_alive)()
            except Exception:   # noqa: BLE001
                alive = False
            if alive:
                self.km = manager
                return manager
            _shutdown(manager)
        return super().create_kernel_manager()


def _logger(path: str) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(f"segedu.grading_worker.{os.getpid()}")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(name)s | %(levelname)s] %(message)s"))
    logger.addHandler(handler)
    return logger, handler


def _config(root: str):
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=root).load_config()


def _convert(converter, coursedir, config, logger) -> tuple[int, float]:
    """Run one nbgrader converter over the student's notebook: (0 ok / 1 failed, seconds)."""
    from nbgrader.converters.base import NbGraderException

    start = time.perf_counter()
    try:
        converter(coursedir=coursedir, config=config, log=logger).start()
        return 0, time.perf_counter() - start
    except NbGraderException:   # nbgrader logged why, in the student's nbgrader.log
        return 1, time.perf_counter() - start


def run_task(task: dict, send=lambda message: None) -> dict:
    """Autograde one student of one course folder, then start the next kernel and write feedback.

    ``send({"phase": "autograded", ...})`` reports the autograde's outcome as soon as it is known:
    from then on the student's kernel is gone, so the pool's watchdog stops watching, and a failure
    in what follows (the next kernel, the feedback page) costs the feedback, never the grade.
    """
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from segedu.instructor.verdict import LAST_RUN

    os.environ.clear()
    os.environ.update(_BASE_ENVIRONMENT)
    for name in TASK_ENVIRONMENT:
        value = task.get("env", {}).get(name)
        if value:
            os.environ[name] = value
    _discard_warm(keep=task.get("slot"))
    logger, handler = _logger(task["log"])
    timings, autograded = {}, None
    try:
        config = _config(task["root"])
        config.CourseDirectory.root = task["root"]
        config.CourseDirectory.assignment_id = task["assignment"]
        config.CourseDirectory.student_id = task["student"]
        config.BaseConverter.force = True
        config.Autograde.create_student = True
        if task.get("slot"):
            WarmExecute.slot = task["slot"]
            config.Autograde.autograde_preprocessors = [
                f"{__name__}.WarmExecute" if name in ("nbgrader.preprocessors.Execute", Execute) else name
                for name in config.Autograde.autograde_preprocessors]
        coursedir = CourseDirectory(config=config, log=logger)
        LAST_RUN.clear()
        try:
            autograded, timings["autograde"] = _convert(Autograde, coursedir, config, logger)
        finally:
            if "cells" in LAST_RUN:
                timings["cells"] = LAST_RUN["cells"]
            _discard_warm()   # this task's early kernel, had nbgrader not used it
        send({"phase": "autograded", "autograde": autograded, "timings": dict(timings)})
        prestarted = bool(task.get("prestart")) and start_next_kernel(task["prestart"])
        if autograded or not task.get("feedback", True):
            return {"autograde": autograded, "feedback": None, "timings": timings, "prestarted": prestarted}
        feedback, timings["feedback"] = _convert(GenerateFeedback, coursedir, config, logger)
        return {"autograde": 0, "feedback": feedback, "timings": timings, "prestarted": prestarted}
    except Exception:   # noqa: BLE001 - reported as this task's failure, the worker goes on
        logger.error("grading worker: %s", traceback.format_exc())
        if autograded is not None:   # the grade stands; only the feedback is lost
            return {"autograde": autograded, "feedback": 1, "timings": timings, "prestarted": False}
        return {"autograde": 1, "feedback": None, "timings": timings, "error": traceback.format_exc()[-400:]}
    finally:
        handler.close()
        logger.removeHandler(handler)


def warm_up() -> None:
    """Import now what every task needs, so that the first student pays nothing extra."""
    import nbconvert.exporters.html  # noqa: F401
    import nbgrader.converters  # noqa: F401
    import nbgrader.preprocessors  # noqa: F401

    import segedu.instructor.feedback  # noqa: F401
    import segedu.instructor.verdict  # noqa: F401


def _redirect(path: str | None, worker_log: int) -> None:
    """fd 1 and 2 to the task's log (a kernel that cannot be sandboxed says so there), or between
    tasks: stdout nowhere, stderr to the worker's own log."""
    if path is None:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        os.dup2(worker_log, 2)
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main() -> int:
    # answers travel on the stdout the worker was started with, and only there: nothing nbgrader,
    # nbconvert or a kernel prints can break the protocol
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    worker_log = os.dup(2)
    _WORKER_LOG[0] = worker_log
    _redirect(None, worker_log)
    own_log = logging.StreamHandler(os.fdopen(os.dup(worker_log), "w", buffering=1, encoding="utf-8"))
    own_log.setFormatter(logging.Formatter("[grading worker | %(levelname)s] %(message)s"))
    _worker_log.addHandler(own_log)
    _worker_log.propagate = False
    _BASE_ENVIRONMENT.update(os.environ)
    warm_up()

    def send(message: dict) -> None:
        answers.write(json.dumps(message) + "\n")

    send({"ready": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        _redirect(task["log"], worker_log)
        try:
            answer = run_task(task, send)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            _redirect(None, worker_log)
        send(answer)
    _discard_warm()
    return 0


if __name__ == "__main__":
    sys.exit(main())
