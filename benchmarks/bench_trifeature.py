"""Timing of the Trifeature renderer, the image augmentations and the CNN encoder.

    .venv/bin/python benchmarks/bench_trifeature.py [--pairs 10000] [--sizes 32 64] [--threads 1 2]

Rendering is numpy (single-threaded); the torch parts are timed at each thread count, because
on a shared machine two torch threads can be much slower than one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from generators.trifeature import _sample_split, combination_split, synergy_map
from pid_bench.learners.image import CNNEncoder, ImageAugment


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) seconds over `repeat` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def bench_render(pairs: int, size: int, repeat: int) -> None:
    allowed, m = combination_split(0), synergy_map(0)

    def run() -> None:
        _sample_split(pairs, allowed, m, size, np.random.default_rng(0))

    best, med = _best(run, repeat)
    print(f"render  {pairs} pairs {size}x{size}: best {best:.2f} s, median {med:.2f} s")


def bench_torch(size: int, batch: int, threads: int, repeat: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size)
    enc = CNNEncoder((3, size, size))
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        enc(x).square().mean().backward()
        opt.step()

    aug = ImageAugment()
    g = torch.Generator().manual_seed(0)
    best, med = _best(step, repeat)
    print(
        f"encoder fwd+bwd+step batch {batch} {size}x{size}, {threads} thread(s): "
        f"best {1000 * best:.0f} ms, median {1000 * med:.0f} ms"
    )
    best, med = _best(lambda: aug(x, g), repeat)
    print(
        f"augment batch {batch} {size}x{size}, {threads} thread(s): "
        f"best {1000 * best:.0f} ms, median {1000 * med:.0f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, numpy {np.__version__}")
    for size in args.sizes:
        bench_render(args.pairs, size, args.repeat)
    for size in args.sizes:
        for threads in args.threads:
            bench_torch(size, args.batch, threads, 5 * args.repeat)


if __name__ == "__main__":
    main()
