"""BROJA on the seeded stress set: exceptions, symmetry, sign and identity violations.

    python benchmarks/bench_broja_stress.py [--seed 1] [--count 2000]

For every joint p of `estimators/testing.py`, computes pid(p) and pid(p.transpose(1, 0, 2))
and counts: exceptions (any type), x1/x2 symmetry breaks (unique1 <-> unique2 swapped,
redundancy and synergy equal) above 1e-9 bits, atoms below -1e-9 bits, and violations of
R + U1 = I(X1;Y), R + U2 = I(X2;Y), R + U1 + U2 + S = I(X1,X2;Y) above 1e-9 bits. Also reports
the largest certified duality gap of `solve_broja` and the total time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from estimators import joint_infos_bits, pid, solve_broja  # noqa: E402
from estimators.testing import STRESS_COUNT, STRESS_SEED, stress_joints  # noqa: E402

TOL = 1e-9
KINDS = ("dense", "sparse", "near-deterministic", "many orders")


def atoms(res) -> np.ndarray:
    return np.array([res.redundancy, res.unique1, res.unique2, res.synergy])


def main() -> None:
    """Print the counts for one seed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=STRESS_SEED)
    ap.add_argument("--count", type=int, default=STRESS_COUNT)
    ap.add_argument("--verbose", action="store_true", help="print every failing joint")
    args = ap.parse_args()
    counts: Counter[str] = Counter()
    by_kind: Counter[tuple[str, str]] = Counter()
    worst = {"symmetry": 0.0, "negative": 0.0, "identity": 0.0, "gap": 0.0}
    errors: Counter[str] = Counter()
    start = time.perf_counter()
    for i, p in enumerate(stress_joints(args.seed, args.count)):
        kind = KINDS[i % 4]
        try:
            a = atoms(pid(p))
            b = atoms(pid(p.transpose(1, 0, 2)))[[0, 2, 1, 3]]
            gap = max(solve_broja(p).gap, solve_broja(p.transpose(1, 0, 2)).gap)
        except Exception as err:  # noqa: BLE001 (every exception is what is counted)
            counts["exceptions"] += 1
            by_kind[("exceptions", kind)] += 1
            errors[type(err).__name__] += 1
            if args.verbose:
                print(f"joint {i} {p.shape} {kind}: {type(err).__name__}: {err}")
            continue
        i1, i2, i12 = joint_infos_bits(p)
        sym = float(np.abs(a - b).max())
        neg = float(-min(a.min(), b.min(), 0.0))
        ident = max(
            max(abs(x[0] + x[1] - i1), abs(x[0] + x[2] - i2), abs(x.sum() - i12)) for x in (a, b)
        )
        for name, value in (("symmetry", sym), ("negative", neg), ("identity", ident)):
            worst[name] = max(worst[name], value)
            if value > TOL:
                counts[name] += 1
                by_kind[(name, kind)] += 1
                if args.verbose:
                    print(f"joint {i} {p.shape} {kind}: {name} {value:.3g} bits")
        worst["gap"] = max(worst["gap"], gap)
    elapsed = time.perf_counter() - start
    print(f"BROJA stress set: seed {args.seed}, {args.count} joints, both orientations")
    print(f"  {'exceptions':<28} {counts['exceptions']:5d}  {dict(errors) or ''}")
    rows = (
        ("symmetry", f"symmetry break > {TOL:g} bits"),
        ("negative", f"atom < -{TOL:g} bits"),
        ("identity", f"identity off > {TOL:g} bits"),
    )
    for name, label in rows:
        print(f"  {label:<28} {counts[name]:5d}  (largest {worst[name]:.3g} bits)")
    print(f"  {'largest certified gap':<28} {worst['gap']:.3g} nats")
    if by_kind:
        print("  by kind: " + ", ".join(f"{n} {k}: {c}" for (n, k), c in sorted(by_kind.items())))
    print(f"  time {elapsed:.1f} s")


if __name__ == "__main__":
    main()
