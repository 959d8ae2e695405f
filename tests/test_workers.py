"""The long-lived grading workers (segedu.instructor.workers): a stuck task is killed with its worker
and the pool goes on with a fresh one; a failing task costs only that task; slots are deleted.

Tasks here point at course folders whose ``nbgrader_config.py`` misbehaves on purpose (the worker
executes that file, like nbgrader does); the real grading through workers is tested end to end in
test_grade_pipeline.py, test_grading_attacks.py and test_bench.py.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

from segedu.instructor.grade import worker_environment
from segedu.instructor.workers import Slot, WorkerPool

pytestmark = pytest.mark.nbgrader


def _folder(tmp_path: Path, name: str, config: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "nbgrader_config.py").write_text(config)
    return folder


def _task(folder: Path) -> dict:
    return {"root": str(folder), "assignment": "00_x", "student": "s", "log": str(folder / "nbgrader.log"),
            "env": {}}


def test_a_stuck_task_is_killed_and_the_pool_goes_on(tmp_path):
    stuck = _folder(tmp_path, "stuck", "import time\ntime.sleep(600)\n")
    broken = _folder(tmp_path, "broken", "c = get_config()\nraise RuntimeError('broken config')\n")
    empty = _folder(tmp_path, "empty", "c = get_config()\n")
    slots = []

    def make_slot() -> Slot:
        slot = Slot(Path(os.fspath(tmp_path / f"slot{len(slots)}")))
        slot.scratch.mkdir()
        slots.append(slot)
        return slot

    with WorkerPool(1, worker_environment(), tmp_path / "workers", make_slot) as pool:
        pool.wait_ready()
        first = pool._all[0]
        start = time.monotonic()
        answer, action = pool.run(lambda slot: _task(stuck), wall=3, memory=1 << 40)
        assert (answer, action) == (None, "timeout") and time.monotonic() - start < 30
        assert not first.alive
        # the replacement grades on: a task that fails is answered and costs only itself
        answer, action = pool.run(lambda slot: _task(broken), wall=120, memory=1 << 40)
        assert action == "" and answer["autograde"] == 1 and "broken config" in answer["error"]
        answer, action = pool.run(lambda slot: _task(empty), wall=120, memory=1 << 40)
        assert action == "" and answer["autograde"] == 1   # no assignment there: nbgrader says so
        survivor = pool._all[0]
        assert len(pool._all) == 1 and survivor is not first and survivor.alive
        assert "broken config" in (broken / "nbgrader.log").read_text()
    assert not survivor.alive
    assert len(slots) == 3 and not any(slot.scratch.exists() for slot in slots)


STUB = r'''
import json, os, sys, time
print(json.dumps({"ready": os.getpid()}), flush=True)
for line in sys.stdin:
    task = json.loads(line)
    how = task["how"]
    if how == "hang-after-autograde":
        print(json.dumps({"phase": "autograded", "autograde": 0, "timings": {"autograde": 1.0}}), flush=True)
        time.sleep(600)
    elif how == "die-after-autograde":
        print(json.dumps({"phase": "autograded", "autograde": 0, "timings": {}}), flush=True)
        os._exit(3)
    elif how == "die-before":
        os._exit(3)
    elif how == "child-then-answer":   # a "kernel" over the memory limit until the watchdog kills it
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(300 << 20); time.sleep(60)"])
        child.wait()
        print(json.dumps({"autograde": 1, "feedback": None, "timings": {}, "killed": child.returncode}), flush=True)
    else:
        print(json.dumps({"autograde": 0, "feedback": 0, "timings": {}}), flush=True)
'''


@pytest.fixture
def stub_pool(tmp_path, monkeypatch):
    from segedu.instructor import workers

    script = tmp_path / "stub_worker.py"
    script.write_text(STUB)
    monkeypatch.setattr(workers.Worker, "command", (sys.executable, str(script)))
    monkeypatch.setattr(workers, "FEEDBACK_WALL_S", 2)

    def make_slot() -> Slot:
        scratch = Path(tempfile.mkdtemp(dir=tmp_path))
        return Slot(scratch)

    with WorkerPool(1, dict(os.environ), tmp_path / "workers", make_slot) as pool:
        yield pool


def test_after_the_autograde_a_hang_or_a_death_costs_the_feedback_only(stub_pool):
    answer, action = stub_pool.run(lambda slot: {"how": "hang-after-autograde"}, wall=60, memory=1 << 40)
    assert action == "" and answer == {"autograde": 0, "feedback": 1, "timings": {"autograde": 1.0},
                                       "prestarted": False}
    answer, action = stub_pool.run(lambda slot: {"how": "die-after-autograde"}, wall=60, memory=1 << 40)
    assert action == "" and answer["autograde"] == 0 and answer["feedback"] == 1
    answer, action = stub_pool.run(lambda slot: {"how": "die-before"}, wall=60, memory=1 << 40)
    assert (answer, action) == (None, "")
    answer, action = stub_pool.run(lambda slot: {"how": "fine"}, wall=60, memory=1 << 40)
    assert answer == {"autograde": 0, "feedback": 0, "timings": {}}
    assert len([w for w in stub_pool._all if w.alive]) == 1   # dead workers were replaced, not piled up


def test_the_watchdog_kills_a_process_tree_over_the_memory_limit(stub_pool):
    answer, action = stub_pool.run(lambda slot: {"how": "child-then-answer"}, wall=60, memory=200 << 20)
    assert action == "memory" and answer["killed"] == -9


def test_a_worn_worker_is_replaced(stub_pool, monkeypatch):
    from segedu.instructor import workers

    monkeypatch.setattr(workers, "MAX_TASKS_PER_WORKER", 2)
    pids = []
    for _ in range(5):
        stub_pool.run(lambda slot: {"how": "fine"}, wall=60, memory=1 << 40)
        pids.append(stub_pool._idle.queue[0].process.pid)
    assert len(set(pids)) >= 2 and all(w.alive for w in stub_pool._all)
