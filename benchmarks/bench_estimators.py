"""Solve time and peak memory of the exact discrete PID (BROJA) on random joints.

    python benchmarks/bench_estimators.py [--repeat 7] [--seed 0] [--baseline REV]
        [--no-large] [--no-cvxpy] [--cvxpy-timeout 300] [--cvxpy-memory-gib 8]

Each joint is dense, drawn uniformly and normalised.

Small joints: times are medians over `repeat` calls of the public `pid(p, measure)`, validation
included, with MMI for reference. Iterations and the certified duality gap come from
`solve_broja` on the same joint. With `--baseline REV` the `solve_broja` of
estimators/_broja.py at git revision REV is timed in the same run, calls interleaved, and the
ratio new / old of the medians is printed.

Large joints: one `solve_broja` call each, in a fresh Python process, so that its peak resident
memory (ru_maxrss, interpreter and imports included) belongs to that solve; "added" is how much
the call raised that high-water mark, "traced" the peak that tracemalloc sees allocated during
a second call (numpy arrays included), "estimate" what `solve_broja` checks against the
available memory before starting. Beside
it, the same problem through cvxpy with the Clarabel solver (minimise sum rel_entr(q,
q(x1, x2)) under the two marginal constraints: exponential cones), in a process killed after
`--cvxpy-timeout` seconds and limited to `--cvxpy-memory-gib` of address space; its time
includes building and compiling the problem. cvxpy and clarabel are optional
(`pip install -e .[bench]`).

The machine may be shared: rerun before trusting a slow line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from estimators import pid, solve_broja  # noqa: E402
from estimators._broja import memory_needed, use_structured  # noqa: E402

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

#: Large joints, each solved once in its own process.
LARGE: tuple[tuple[int, int, int], ...] = ((40, 40, 20), (128, 128, 16), (100, 100, 100))


def random_joint(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """The benchmark's dense uniform joint of this shape (the same in every process)."""
    p = np.random.default_rng([seed, *shape]).random(shape)
    return p / p.sum()


def median_time(fn, repeat: int) -> float:
    """Median wall time of `repeat` calls of fn()."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def load_baseline(rev: str):
    """estimators/_broja.py at git revision `rev`, imported as a separate module."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:estimators/_broja.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "_broja_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("_broja_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def small_table(args: argparse.Namespace) -> None:
    baseline = load_baseline(args.baseline) if args.baseline else None
    pid(np.full((2, 2, 2), 1 / 8))  # warm-up: imports, BLAS initialisation
    print(f"BROJA on random dense joints, median of {args.repeat} calls")
    header = (
        f"{'joint':>12} {'broja ms':>10} {'target ms':>10} {'ok':>3} {'iters':>6} "
        f"{'gap (nats)':>11} {'mmi ms':>8}"
    )
    if baseline is not None:
        header += f" {'solve ms':>9} {'old ms':>9} {'new/old':>8}"
    print(header)
    print("-" * len(header))
    for shape, target in CASES:
        p = random_joint(shape, args.seed)
        # Fewer repeats for the large joints keeps the table under a minute.
        repeat = args.repeat if np.prod(shape) <= 4096 else max(1, args.repeat // 2)
        t_broja = median_time(lambda p=p: pid(p, "broja"), repeat)
        t_mmi = median_time(lambda p=p: pid(p, "mmi"), repeat)
        sol = solve_broja(p)
        name = "x".join(map(str, shape))
        tgt = f"{target * 1000:10.0f}" if target is not None else f"{'-':>10}"
        ok = ("yes" if t_broja <= target else "NO") if target is not None else "-"
        line = (
            f"{name:>12} {t_broja * 1000:10.2f} {tgt} {ok:>3} {sol.iterations:6d} "
            f"{sol.gap:11.1e} {t_mmi * 1000:8.3f}"
        )
        if baseline is not None:
            new, old = [], []
            for _ in range(repeat):  # interleaved, so that load changes hit both alike
                t0 = time.perf_counter()
                solve_broja(p)
                new.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                baseline.solve_broja(p)
                old.append(time.perf_counter() - t0)
            t_new, t_old = statistics.median(new), statistics.median(old)
            line += f" {t_new * 1000:9.2f} {t_old * 1000:9.2f} {t_new / t_old:8.2f}"
        print(line)


def child_ours(shape: tuple[int, int, int], seed: int) -> dict:
    p = random_joint(shape, seed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    sol = solve_broja(p)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # A second solve under tracemalloc: the peak of memory allocated during the call
    # (numpy arrays included), free of the interpreter's earlier high-water mark.
    tracemalloc.start()
    solve_broja(p)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "seconds": elapsed,
        "traced_mib": traced / 2**20,
        "value": sol.value,
        "gap": sol.gap,
        "iterations": sol.iterations,
        "peak_mib": peak / 1024,
        "added_mib": (peak - before) / 1024,
        "method": "structured" if use_structured(shape) else "dense",
        "estimate_mib": memory_needed(shape, use_structured(shape)) / 2**20,
    }


def broja_cvxpy(p: np.ndarray, time_limit: float) -> float:
    """-H_q(Y | X1, X2) at the BROJA optimum (nats) through cvxpy and Clarabel."""
    import cvxpy as cp
    import scipy.sparse as sp

    n1, n2, ny = p.shape
    p1y, p2y = p.sum(axis=1), p.sum(axis=0)
    support = (p1y[:, None, :] > 0) & (p2y[None, :, :] > 0)
    x1, x2, y = np.nonzero(support)  # cells that can carry mass
    m = len(x1)
    cols = np.arange(m)
    _, block = np.unique(x1 * n2 + x2, return_inverse=True)
    to_block = sp.csr_matrix((np.ones(m), (block, cols)))
    rows1 = sp.csr_matrix((np.ones(m), (x1 * ny + y, cols)), shape=(n1 * ny, m))
    rows2 = sp.csr_matrix((np.ones(m), (x2 * ny + y, cols)), shape=(n2 * ny, m))
    q = cp.Variable(m, nonneg=True)
    q12 = to_block.T @ (to_block @ q)  # each cell's block total q(x1, x2)
    problem = cp.Problem(
        cp.Minimize(cp.sum(cp.rel_entr(q, q12))),
        [rows1 @ q == p1y.ravel(), rows2 @ q == p2y.ravel()],
    )
    problem.solve(solver=cp.CLARABEL, time_limit=time_limit)
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"Clarabel status {problem.status}")
    return float(problem.value)


def child_cvxpy(shape: tuple[int, int, int], seed: int, timeout: float, gib: float) -> dict:
    limit = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    p = random_joint(shape, seed)
    t0 = time.perf_counter()
    try:
        value = broja_cvxpy(p, timeout)
    except MemoryError:
        return {"error": f"out of memory (limit {gib:g} GiB)"}
    except Exception as err:  # noqa: BLE001 (reported, not hidden)
        return {"error": f"{type(err).__name__}: {err}"}
    return {
        "seconds": time.perf_counter() - t0,
        "value": value,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(argv: list[str], timeout: float | None) -> dict:
    """Run this script with `argv` in a fresh process; its last stdout line is JSON."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"killed after {timeout:g} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit code {out.returncode}: {tail}"}
    return json.loads(lines[-1])


def cvxpy_missing() -> str | None:
    missing = [m for m in ("cvxpy", "clarabel") if importlib.util.find_spec(m) is None]
    return ", ".join(missing) if missing else None


def large_table(args: argparse.Namespace) -> None:
    print()
    print("BROJA on large random dense joints, one solve each in a fresh process")
    header = (
        f"{'joint':>12} {'method':>10} {'seconds':>8} {'iters':>5} {'gap (nats)':>10} "
        f"{'peak MiB':>9} {'added MiB':>9} {'traced MiB':>10} {'estimate MiB':>12}"
    )
    print(header)
    print("-" * len(header))
    ours = {}
    for shape in LARGE:
        name = "x".join(map(str, shape))
        res = run_child(["--child", "ours", name, "--seed", str(args.seed)], None)
        ours[shape] = res
        if "error" in res:
            print(f"{name:>12} failed: {res['error']}")
            continue
        print(
            f"{name:>12} {res['method']:>10} {res['seconds']:8.1f} {res['iterations']:5d} "
            f"{res['gap']:10.1e} {res['peak_mib']:9.0f} {res['added_mib']:9.0f} "
            f"{res['traced_mib']:10.0f} {res['estimate_mib']:12.0f}"
        )
    if args.no_cvxpy:
        return
    print()
    missing = cvxpy_missing()
    if missing:
        print(
            f"cvxpy + Clarabel comparison skipped: {missing} not installed "
            "(pip install -e .[bench])"
        )
        return
    print(
        f"The same joints through cvxpy + Clarabel (limits: {args.cvxpy_timeout:g} s, "
        f"{args.cvxpy_memory_gib:g} GiB); value minus ours in nats"
    )
    header = f"{'joint':>12} {'seconds':>8} {'peak MiB':>9} {'value - ours':>13}"
    print(header)
    print("-" * len(header))
    for shape in LARGE:
        name = "x".join(map(str, shape))
        argv = ["--child", "cvxpy", name, "--seed", str(args.seed)]
        argv += ["--cvxpy-timeout", str(args.cvxpy_timeout)]
        argv += ["--cvxpy-memory-gib", str(args.cvxpy_memory_gib)]
        res = run_child(argv, args.cvxpy_timeout)
        if "error" in res:
            print(f"{name:>12} did not finish: {res['error']}")
            continue
        diff = res["value"] - ours[shape]["value"] if "value" in ours[shape] else float("nan")
        print(f"{name:>12} {res['seconds']:8.1f} {res['peak_mib']:9.0f} {diff:13.2e}")


def main() -> None:
    """Print the small-joint table, then the large-joint tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", metavar="REV", help="also time solve_broja at git revision REV")
    ap.add_argument("--no-large", action="store_true", help="skip the large joints")
    ap.add_argument("--no-cvxpy", action="store_true", help="skip the cvxpy comparison")
    ap.add_argument("--cvxpy-timeout", type=float, default=300.0)
    ap.add_argument("--cvxpy-memory-gib", type=float, default=8.0)
    ap.add_argument("--child", nargs=2, metavar=("WHAT", "SHAPE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        what, name = args.child
        shape = tuple(int(v) for v in name.split("x"))
        if what == "ours":
            res = child_ours(shape, args.seed)
        else:
            res = child_cvxpy(shape, args.seed, args.cvxpy_timeout, args.cvxpy_memory_gib)
        print(json.dumps(res))
        return
    small_table(args)
    if not args.no_large:
        large_table(args)


if __name__ == "__main__":
    main()
