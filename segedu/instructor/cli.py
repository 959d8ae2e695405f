"""``segedu`` command line (also ``python -m segedu.instructor``); the Makefile calls these."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path


def _root(value: str | None) -> Path:
    root = Path(value or os.getcwd()).resolve()
    if not (root / "nbgrader_config.py").exists() or not (root / "solutions").is_dir():
        raise SystemExit(f"{root} is not a course folder (no nbgrader_config.py and solutions/). Use --course PATH.")
    return root


def _workdir(root: Path, name: str) -> Path:
    path = root / "build" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


#: commands whose unknown options are passed on (to JupyterLab, segedu.instructor.site, or pytest)
PASS_ON = ("lab", "site", "formgrader", "test")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segedu", description="Course tooling for segedu.")
    parser.add_argument("--course", help="course folder (default: the current folder)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("course", help="run lectures, regenerate exercises/, self-check grading, print a table")
    bench = commands.add_parser("bench", help="every speed figure in one table (and build/bench.csv)")
    bench.add_argument("--sample", type=int, default=20, help="submissions per grading measurement (0: skip)")
    bench.add_argument("--no-lectures", action="store_true", help="skip the lectures and training demos")
    commands.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader")
    commands.add_parser("check-release", help="fail if exercises/ is stale")
    commands.add_parser("selfcheck", help="autograde each solution and untouched release")
    mutants = commands.add_parser("mutants", help="mutation testing: do the test cells fail slightly wrong answers?")
    mutants.add_argument("assignments", nargs="*", help="assignment ids (default: every graded exercise)")
    mutants.add_argument("--max-per-exercise", type=int, default=None,
                         help="grade a fixed-seed sample of this many mutants per exercise (0: all)")
    mutants.add_argument("--timeout", type=float, default=None, help="seconds per mutant before it counts as killed")
    mutants.add_argument("--only", help="grade only the mutants whose id contains this text")
    mutants.add_argument("--jobs", type=int, default=2, help="exercises graded at the same time (default 2)")
    links = commands.add_parser("links", help="rewrite Colab badges and setup cells from segedu/_course.py")
    links.add_argument("--check", action="store_true", help="only report differences")
    grade = commands.add_parser("grade", help="autograde an LMS download: feedback, grades.csv, Canvas import")
    grade.add_argument("assignment", help="assignment id, e.g. 01_thresholding")
    grade.add_argument("submissions", help="the LMS zip, or a folder of notebooks")
    grade.add_argument("--out", required=True, help="output folder (grades.csv, feedback/, work files)")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="students graded in parallel")
    grade.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: the course's 30)")
    grade.add_argument("--memory-mb", type=int, default=4096, help="memory limit of a kernel (MB)")
    grade.add_argument("--lms-gradebook", help="Canvas gradebook export to fill (writes canvas_import.csv)")
    grade.add_argument("--lms-column", help="the assignment's column in that export (default: guessed)")
    grade.add_argument("--no-isolation", action="store_true",
                       help="run kernels without the sandbox (every row is then flagged for review)")
    grade.add_argument("--seed", default=None,
                       help="the term's private grading seed (default: $SEGEDU_GRADING_SEED; required)")
    ckpt = commands.add_parser("checkpoints", help="retrain the shipped checkpoints from their recipes and seeds")
    ckpt.add_argument("names", nargs="*", help="checkpoint names (default: all; see --list)")
    ckpt.add_argument("--out", help="write here instead of the package's segedu/models/checkpoints/")
    ckpt.add_argument("--threads", type=int, default=1, help="torch threads (default 1: reproducible)")
    ckpt.add_argument("--progress", action="store_true", help="show tqdm bars")
    ckpt.add_argument("--list", action="store_true", help="only list the registered checkpoints")
    # lab, site and formgrader pass the options they do not know on (to JupyterLab, to segedu.instructor.site)
    commands.add_parser("lab", help="open JupyterLab on the course (other options go to JupyterLab)")
    commands.add_parser("site", add_help=False,
                        help="the course website from the executed lectures (build/site/; `segedu site --help`)")
    formgrader = commands.add_parser("formgrader", help="grade the hand-graded cells of a grading run in formgrader "
                                                        "(other options go to JupyterLab)")
    formgrader.add_argument("--out", required=True, help="the OUT folder of `segedu grade`")
    test = commands.add_parser("test", help="the test suite in timed stages, then the ten slowest tests (other "
                                            "options go to pytest)")
    test.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in PASS_ON:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "test":  # the repository's tests, from its root
        from .testrun import main as test_main

        os.chdir(_root(args.course))
        return test_main([f"--stage={s}" for s in args.stage or []] + extra)
    if args.command == "checkpoints":  # package data: needs no course folder
        from segedu.models import checkpoint

        if args.list:
            for name in checkpoint.checkpoint_names():
                spec = checkpoint.get_spec(name)
                print(f"{name:<22} unit {spec.unit}  {spec.metric} >= {spec.target}  {spec.recipe} seed {spec.seed}")
            return 0
        from .checkpoints import checkpoints

        return checkpoints(args.names, Path(args.out) if args.out else None, threads=args.threads,
                           progress=args.progress)
    root = _root(args.course)

    if args.command == "course":
        from .course import course

        return course(root, _workdir(root, "course"))
    if args.command == "bench":
        from .bench import bench

        return bench(root, _workdir(root, "bench"), root / "build" / "bench.csv", lectures=not args.no_lectures,
                     sample=args.sample)
    if args.command == "release":
        from .course import release

        for assignment in release(root, _workdir(root, "release")):
            print(f"regenerated exercises/{assignment}")
        return 0
    if args.command == "check-release":
        from .course import stale_releases

        from .course import stale_manifests

        stale = stale_releases(root, _workdir(root, "check-release"))
        for assignment in stale:
            print(f"exercises/{assignment} is stale: run `make release`")
        if stale_manifests(root):
            print("segedu/submission/releases.json is stale (segedu.check_submission compares with it): "
                  "run `make release`")
            stale.append("releases.json")
        return 1 if stale else 0
    if args.command == "selfcheck":
        from .course import format_table, self_check
        from .notebooks import assignment_ids

        checks = [self_check(root, _workdir(root, f"selfcheck-{a}"), a) for a in assignment_ids(root)]
        print(format_table([], checks))
        return 0 if all(c.ok for c in checks) else 1
    if args.command == "mutants":
        from . import mutants as mutation

        limit = mutation.MAX_PER_EXERCISE if args.max_per_exercise is None else args.max_per_exercise
        timeout = mutation.TIMEOUT_S if args.timeout is None else args.timeout
        return mutation.mutants_command(root, args.assignments, limit=limit, timeout=timeout, only=args.only,
                                        jobs=args.jobs)
    if args.command == "grade":
        from .grade import grade as grade_run

        grade_run(root, args.assignment, Path(args.submissions), Path(args.out), jobs=args.jobs,
                            timeout=args.timeout, memory_mb=args.memory_mb, lms_gradebook=args.lms_gradebook,
                            lms_column=args.lms_column, isolate=not args.no_isolation, seed=args.seed)
        return 0
    if args.command == "links":
        from .links import sync

        problems = sync(root, check=args.check)
        for problem in problems:
            print(problem)
        return 1 if (problems and args.check) else 0
    if args.command == "lab":
        from .lab import lab as run_lab

        return run_lab(root, extra)
    if args.command == "site":
        from .site import main as site_main

        return site_main(root, extra)
    if args.command == "formgrader":
        from .manual import formgrader

        return formgrader(root, Path(args.out), extra)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
