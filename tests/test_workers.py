"""The long-lived grading workers (segedu.instructor.workers): a stuck task is killed with its worker
and the pool goes on with a fresh one; a failing task costs only that task; slots are deleted.

Tasks here point at course folders whose ``nbgrader_config.py`` misbehaves on purpose (the worker
executes that file, like nbgrader does); the real grading through workers is tested end to end in
test_grade_pipeline.py, test_grading_attacks.py and test_bench.py.
"""

from __future__ import annotations

import os
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
        assert len(pool._all) == 2 and pool._all[1].alive
        assert "broken config" in (broken / "nbgrader.log").read_text()
    assert not pool._all[1].alive
    assert len(slots) == 3 and not any(slot.scratch.exists() for slot in slots)
