"""Generation time of each vector generator at 10k and 100k training samples.

    python benchmarks/bench_generators.py [--repeat 5]

The ground-truth PID is solved once per latent structure and cached, so it is computed in a
warm-up call and excluded from the timings; it is reported separately.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generators import make  # noqa: E402
from generators._truth import exact_pid  # noqa: E402

GENERATORS = ("bits", "gaussian")
SIZES = (10_000, 100_000)


def main() -> None:
    """Print the best-of-`repeat` generation time per generator and size."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    for name in GENERATORS:
        exact_pid.cache_clear()
        t0 = time.perf_counter()
        make(name, n_train=1, n_test=1)
        print(f"{name:9s} ground truth (4 tasks, uncached): {time.perf_counter() - t0:.3f} s")
        for n in SIZES:
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                make(name, n_train=n, n_test=1)
                best = min(best, time.perf_counter() - t0)
            print(f"{name:9s} n_train={n:>7d}: {best * 1000:8.1f} ms (best of {args.repeat})")


if __name__ == "__main__":
    main()
