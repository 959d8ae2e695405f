"""``make test``: the whole test suite in stages, each timed, then the ten slowest tests.

The suite is split by pytest marker into families whose cost differs by orders of magnitude, so that
a maintainer (and CI's log) sees where the time goes and a new unit's cost is known:

- ``unit``: the package against its peers (torch, scikit-image, scipy, ...) and the docstring
  examples; independent tests, spread over both cores with pytest-xdist;
- ``fiftyone``: tests that start FiftyOne and a private mongod in a temporary folder;
- ``notebooks``: the course path (every lecture and solution executed, ``make course`` on a copy);
- ``grading``: the real nbgrader command line: round trips, the grading pipeline, workers, bench;
- ``attacks``: submissions that attack the grader;
- ``browser``: headless Chromium (Debian's, driven by Playwright) against the course website and
  JupyterLab; last, because the website test reuses the lectures that ``notebooks`` executed.

The stages' marker expressions partition the suite, so every test runs in exactly one stage; pytest
runs with ``--strict-markers``, so a misspelt marker fails instead of moving a test. Each stage
writes a JUnit report under ``build/test/``; the summary table and the ten slowest tests come from
those reports. ``python -m segedu.instructor.testrun --stage unit`` runs one stage; extra arguments
after ``--`` go to pytest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Stage", "STAGES", "main"]


@dataclass(frozen=True)
class Stage:
    name: str
    markers: str        # a pytest -m expression; the stages' expressions partition the suite
    workers: int        # pytest-xdist processes (1: in-process)
    what: str
    dist: str = "loadfile"  # keep a file's tests (and its module fixtures) on one process


_HEAVY = "notebooks or nbgrader or fiftyone or attacks or browser"
STAGES = (
    Stage("unit", f"not ({_HEAVY})", 2, "package vs. peers, doctests"),
    Stage("fiftyone", "fiftyone and not (notebooks or nbgrader or attacks or browser)", 1,
          "FiftyOne with a private mongod"),
    # one test per notebook or job and no shared fixtures: spread test by test
    Stage("notebooks", "notebooks and not (attacks or browser)", 2, "lectures, solutions, make course on a copy",
          dist="load"),
    # by file: a file's module or session fixture grades a whole class once (pytest-xdist's
    # loadgroup ignores xdist_group marks here, so the round trips are split into three files instead)
    Stage("grading", "nbgrader and not (notebooks or attacks or browser)", 2,
          "real nbgrader: round trips, pipeline, workers"),
    Stage("attacks", "attacks and not browser", 1, "submissions that attack the grader"),
    # every browser test here, whatever else it is marked (a site test may also need notebooks): one
    # process, as Chromium and a JupyterLab server with its kernels already load both cores
    Stage("browser", "browser", 1, "headless Chromium: the course website, JupyterLab"),
)


@dataclass
class StageResult:
    stage: Stage
    returncode: int
    seconds: float
    tests: int = 0
    failures: int = 0
    skipped: int = 0


def _pytest(stage: Stage, report: Path, extra: list[str]) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-m", stage.markers, f"--junitxml={report}", "-p", "no:cacheprovider"]
    if stage.workers > 1:
        command += ["-n", str(stage.workers), "--dist", stage.dist]
    return command + extra


def _read_report(path: Path):
    """(tests, failures, skipped, [(seconds, test id)]) of a JUnit report; empty when there is none."""
    if not path.exists():
        return 0, 0, 0, []
    tree = ET.parse(path)
    cases = []
    failures = skipped = 0
    for case in tree.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        cases.append((float(case.get("time", 0.0)), name))
        if case.find("failure") is not None or case.find("error") is not None:
            failures += 1
        elif case.find("skipped") is not None:
            skipped += 1
    return len(cases), failures, skipped, cases


def collected_count(root: Path, markers: str | None = None) -> int:
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    if markers:
        command += ["-m", markers]
    out = subprocess.run(command, cwd=root, capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if "::" in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segedu test", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", action="append", choices=[s.name for s in STAGES],
                        help="run only this stage (repeatable)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    root = Path.cwd()
    reports = root / "build" / "test"
    reports.mkdir(parents=True, exist_ok=True)
    stages = [s for s in STAGES if not args.stage or s.name in args.stage]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    results, slowest = [], []
    for stage in stages:
        report = reports / f"{stage.name}.xml"
        report.unlink(missing_ok=True)
        print(f"\n===== stage {stage.name}: {stage.what} (-m \"{stage.markers}\", {stage.workers} process(es))",
              flush=True)
        start = time.perf_counter()
        # two test processes on two cores: one math thread each, or torch's threads fight over them
        # (a DeepLab training step measured 7 s with two threads against 0.24 s with one, under load)
        stage_env = dict(env, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1") if stage.name == "unit" else env
        code = subprocess.call(_pytest(stage, report, args.pytest_args), cwd=root, env=stage_env)
        tests, failures, skipped, cases = _read_report(report)
        # pytest's 5: no test selected (a stage whose family has no test yet)
        results.append(StageResult(stage, 0 if code == 5 else code, time.perf_counter() - start, tests, failures,
                                   skipped))
        slowest += [(seconds, f"[{stage.name}] {name}") for seconds, name in cases]
    problems = []
    if not args.stage and not args.pytest_args:
        total = collected_count(root)
        staged = sum(r.tests for r in results)
        if total != staged:
            problems.append(f"{total} tests are collected but the stages reported {staged}: a stage stopped early, "
                            f"or its report under build/test/ is incomplete; see that stage's output above")
    print("\n===== test stages")
    print(f"{'stage':<10} {'tests':>6} {'failed':>6} {'skipped':>7} {'seconds':>8}  result")
    for r in results:
        verdict = "ok" if r.returncode == 0 else f"FAILED (pytest exit {r.returncode})"
        print(f"{r.stage.name:<10} {r.tests:>6} {r.failures:>6} {r.skipped:>7} {r.seconds:>8.0f}  {verdict}")
    print(f"{'all':<10} {sum(r.tests for r in results):>6} {sum(r.failures for r in results):>6} "
          f"{sum(r.skipped for r in results):>7} {sum(r.seconds for r in results):>8.0f}")
    print("\n===== the ten slowest tests")
    for seconds, name in sorted(slowest, reverse=True)[:10]:
        print(f"{seconds:8.1f} s  {name}")
    for problem in problems:
        print("FAILED", problem)
    return 1 if problems or any(r.returncode for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
