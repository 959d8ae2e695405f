"""FCN-32s vs FCN-16s vs FCN-8s on the synthetic shapes, over three seeds.

Lecture 05 claims (after Long et al. 2015, the FCN-32s/16s/8s comparison) that fusing finer layers improves the
segmentation: FCN-8s > FCN-16s > FCN-32s in mean IoU. The lecture shows it with the nine shipped
checkpoints (``segedu.models.checkpoint``: three variants × seeds 0, 1, 2), which
``make checkpoints`` trains with the recipe ``train_fcn_shapes``. This script trains the same
recipe live, with the same configuration (``FCN_SHAPES``) and the same data, checks that the
ordering holds for every seed by a margin, and times each training run; with other options it
tries other configurations.

Run from the repository root::

    python benchmarks/fcn_skips.py                 # the shipped configuration, seeds 0 1 2
    python benchmarks/fcn_skips.py --epochs 8 --seeds 0 1 2 3 4 --threads 1

For each seed ``s`` the three variants are trained on the same data (training set seed ``s``,
validation set seed ``100 + s``), from the same initial weights for the layers they share
(``set_seed(s)`` before each model is built), and with the same order of batches. It prints one
row per (variant, seed) with the validation pixel accuracy, mean accuracy, mean IoU, frequency
weighted IoU and the training time, then the mIoU margins. It exits with status 1 if, for some
seed, FCN-8s − FCN-16s or FCN-16s − FCN-32s is below ``--margin`` (mean IoU; default 0.01, the
margin that lecture 05 asserts).

With ``--threads 1`` (as ``make checkpoints``) the networks are those shipped before their weights
are rounded to float16, so the scores agree with what lecture 05 measures on the checkpoints to
about the third decimal. Each run takes tens of seconds of CPU;
on a shared machine, prefer ``--threads 1``: two OpenMP threads per process can collapse under
load (one step measured 50 times slower under a load of 5), while one thread per process only
slows down in proportion to the load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from segedu.models.checkpoint import FCN_SHAPES, FCN_SHAPES_SEEDS, fcn_shapes_data, make_data, train_fcn_shapes
from segedu.training import evaluate

#: The configuration of the shipped unit-05 checkpoints (and of lecture 05), checked by default.
LECTURE_CONFIG = dict(FCN_SHAPES)

VARIANT_ORDER = ("32s", "16s", "8s")


def run(config, seeds, margin, threads=None, progress=False):
    if threads:
        torch.set_num_threads(threads)
    rows = []
    for seed in seeds:
        data = fcn_shapes_data(seed, config)  # the data description of the recipe and the checkpoints
        train, val = make_data(data, "train"), make_data(data, "val")
        for variant in VARIANT_ORDER:
            start, cpu_start = time.perf_counter(), time.process_time()
            model = train_fcn_shapes(seed, variant, device="cpu", progress=progress, config=config, train=train)
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
            scores = evaluate(model, val, config["num_classes"], device="cpu")
            rows.append(dict(variant=variant, seed=seed, seconds=seconds, cpu_seconds=cpu_seconds, **scores))
            print(
                f"FCN-{variant:<4} seed {seed}  mIoU {scores['mean_iou']:.3f}  pixel acc {scores['pixel_accuracy']:.3f}  "
                f"mean acc {scores['mean_accuracy']:.3f}  fwIoU {scores['frequency_weighted_iou']:.3f}  "
                f"{seconds:5.1f} s ({cpu_seconds:.1f} s CPU)",
                flush=True,
            )
    return rows


def report(rows, seeds, margin) -> bool:
    by = {(r["variant"], r["seed"]): r for r in rows}
    print()
    header = f"{'variant':<8} {'seed':>4} {'mIoU':>6} {'pix acc':>8} {'mean acc':>8} {'fwIoU':>6} {'train s':>8} {'CPU s':>6}"
    print(header)
    print("-" * len(header))
    for variant in VARIANT_ORDER:
        for seed in seeds:
            r = by[variant, seed]
            print(
                f"FCN-{variant:<4} {seed:>4} {r['mean_iou']:6.3f} {r['pixel_accuracy']:8.3f} "
                f"{r['mean_accuracy']:8.3f} {r['frequency_weighted_iou']:6.3f} {r['seconds']:8.1f} {r['cpu_seconds']:6.1f}"
            )
        miou = [by[variant, s]["mean_iou"] for s in seeds]
        secs = [by[variant, s]["seconds"] for s in seeds]
        print(f"FCN-{variant:<4} {'mean':>4} {statistics.mean(miou):6.3f} {'':>8} {'':>8} {'':>6} {statistics.mean(secs):8.1f}")
    print()
    ok = True
    for seed in seeds:
        d16 = by["16s", seed]["mean_iou"] - by["32s", seed]["mean_iou"]
        d8 = by["8s", seed]["mean_iou"] - by["16s", seed]["mean_iou"]
        good = d16 >= margin and d8 >= margin
        ok &= good
        print(f"seed {seed}: 16s - 32s = {d16:+.3f}, 8s - 16s = {d8:+.3f}  {'ok' if good else 'FAIL'} (margin {margin})")
    total = sum(r["seconds"] for r in rows) / len(seeds)
    print(f"training time per seed (all three variants): {total:.1f} s")
    print("ordering FCN-8s > FCN-16s > FCN-32s holds for every seed" if ok else "ordering FAILED")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, value in LECTURE_CONFIG.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(FCN_SHAPES_SEEDS))
    parser.add_argument("--margin", type=float, default=0.01, help="least mIoU gap between neighbours")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--progress", action="store_true", help="show tqdm bars")
    args = parser.parse_args(argv)
    config = {key: getattr(args, key) for key in LECTURE_CONFIG}
    print("config:", ", ".join(f"{k}={v}" for k, v in config.items()), f"threads={torch.get_num_threads()}")
    rows = run(config, args.seeds, args.margin, args.threads, args.progress)
    return 0 if report(rows, args.seeds, args.margin) else 1


if __name__ == "__main__":
    sys.exit(main())
