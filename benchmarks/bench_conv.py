"""Time segedu.conv's vectorised conv2d / conv_transpose2d against torch.nn.functional.

Run from the repository root::

    python benchmarks/bench_conv.py            # float32, torch's default number of threads
    python benchmarks/bench_conv.py --threads 1 --dtype float64

Prints one row per configuration: the median time of each implementation over a few repeats, and
the ratio segedu / torch (how many times slower the teaching implementation is). Every row also
checks that the two results agree. It takes a few seconds on a laptop CPU.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch
import torch.nn.functional as F

from segedu import conv

# (label, function name, input shape (N, C_in, H, W), weight shape, keyword arguments)
CASES = [
    ("conv 3x3 s1 p1", "conv2d", (8, 16, 64, 64), (32, 16, 3, 3), {"stride": 1, "padding": 1}),
    ("conv 3x3 s2 p1", "conv2d", (8, 16, 64, 64), (32, 16, 3, 3), {"stride": 2, "padding": 1}),
    ("conv 3x3 d2 p2", "conv2d", (8, 16, 64, 64), (32, 16, 3, 3), {"padding": 2, "dilation": 2}),
    ("convT 2x2 s2", "conv_transpose2d", (8, 32, 32, 32), (32, 16, 2, 2), {"stride": 2}),
    ("convT 3x3 s1 p1", "conv_transpose2d", (8, 32, 64, 64), (32, 16, 3, 3), {"stride": 1, "padding": 1}),
    (
        "convT 3x3 s2 p1 op1",
        "conv_transpose2d",
        (8, 32, 32, 32),
        (32, 16, 3, 3),
        {"stride": 2, "padding": 1, "output_padding": 1},
    ),
]


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, thread pool)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.dtype}, median of {args.repeats}")
    header = f"{'case':<22}{'x shape':<20}{'out shape':<20}{'segedu ms':>10}{'torch ms':>10}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for label, name, x_shape, w_shape, kwargs in CASES:
        x = torch.randn(x_shape, generator=gen, dtype=dtype)
        w = torch.randn(w_shape, generator=gen, dtype=dtype)
        ours, theirs = getattr(conv, name), getattr(F, name)
        with torch.no_grad():
            out = ours(x, w, **kwargs)
            ref = theirs(x, w, **kwargs)
            tol = 1e-4 if dtype == torch.float32 else 1e-10
            torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
            t_ours = median_time(functools.partial(ours, x, w, **kwargs), args.repeats)
            t_torch = median_time(functools.partial(theirs, x, w, **kwargs), args.repeats)
        print(
            f"{label:<22}{tuple(x_shape)!s:<20}{tuple(out.shape)!s:<20}"
            f"{1e3 * t_ours:>10.2f}{1e3 * t_torch:>10.2f}{t_ours / t_torch:>8.2f}"
        )


if __name__ == "__main__":
    main()
