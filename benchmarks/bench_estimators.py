"""Solve time of the exact discrete PID (BROJA, with MMI for reference) on random joints.

    python benchmarks/bench_estimators.py [--repeat 7] [--seed 0]

Each joint is dense, drawn uniformly and normalised. Times are medians over `repeat` calls of
the public `pid(p, measure)`, validation included. Iterations and the certified duality gap
come from `solve_broja` on the same joint. The machine may be shared: rerun before trusting a
slow line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from estimators import pid, solve_broja  # noqa: E402

#: (shape, target seconds for one BROJA solve or None).
CASES: tuple[tuple[tuple[int, int, int], float | None], ...] = (
    ((2, 2, 2), None),
    ((4, 4, 4), 0.010),
    ((8, 8, 4), None),
    ((10, 10, 10), 0.050),
    ((16, 16, 8), None),
    ((20, 20, 10), None),
    ((32, 32, 10), 1.0),
    ((32, 32, 16), None),
    ((64, 64, 4), 3.0),
    ((100, 100, 2), None),
)


def median_time(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls of fn()."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Print one table row per joint size."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    pid(np.full((2, 2, 2), 1 / 8))  # warm-up: imports, BLAS initialisation

    print(f"BROJA on random dense joints, median of {args.repeat} calls")
    header = (
        f"{'joint':>12} {'broja ms':>10} {'target ms':>10} {'ok':>3} {'iters':>6} "
        f"{'gap (nats)':>11} {'mmi ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for shape, target in CASES:
        p = rng.random(shape)
        p /= p.sum()
        # Fewer repeats for the large joints keeps the whole run under a minute.
        repeat = args.repeat if np.prod(shape) <= 4096 else max(1, args.repeat // 2)
        t_broja = median_time(lambda p=p: pid(p, "broja"), repeat)
        t_mmi = median_time(lambda p=p: pid(p, "mmi"), repeat)
        sol = solve_broja(p)
        name = "x".join(map(str, shape))
        tgt = f"{target * 1000:10.0f}" if target is not None else f"{'-':>10}"
        ok = ("yes" if t_broja <= target else "NO") if target is not None else "-"
        print(
            f"{name:>12} {t_broja * 1000:10.2f} {tgt} {ok:>3} {sol.iterations:6d} "
            f"{sol.gap:11.1e} {t_mmi * 1000:8.3f}"
        )


if __name__ == "__main__":
    main()
