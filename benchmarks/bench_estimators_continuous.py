"""Accuracy and time of the continuous PID estimators against exact truth.

    python benchmarks/bench_estimators_continuous.py [--part batch|gaussian|all]
        [--generators bits gaussian] [--seeds 0 1 2] [--n-train 6000] [--n-test 2000]
        [--clusters 10 20 50] [--max-d 1024] [--threads N]

batch: on the raw inputs of every task of each generator (where the PID of the latents is
exact), BatchPID (defaults; trained on `n_train` pairs, estimated on the `n_test` held-out
ones) next to ClusteredPID at each cluster count (fitted on the same training pairs), in the
same run: the four atoms, the largest |estimate - truth| over them, seconds per fit, and
BATCH's held-out classifier accuracies. On `gaussian` an `inputs` line gives the information
the raw inputs carry about each label (a Bayes classifier's, from the generator's covariance):
noise makes it less than the latents' 1 bit, so it bounds how close any classifier-based
estimate can come to the discrete truth.

gaussian: GaussianPID on the doubling example of the ~-PID paper (the 2-D system
Hx = diag(2, 1), Hy = diag(1, sqrt 2), white independent noises, block-duplicated to
d = dm = dx = dy and randomly rotated within M, X and Y; its exact PID is d/2 times the 2-D
one, each 2-D block being two scalar systems whose PID is MMI), for d = 2 .. max-d, and on a
random system with dx = 1000, dy = 600, dm = 1 (exact answer: MMI). Times include whitening.

The machine may be shared: rerun before trusting a slow line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ATOMS = ("redundancy", "unique1", "unique2", "synergy")


def _vals(r) -> list[float]:
    return [getattr(r, a) for a in ATOMS]


def gaussian_label_information(ds, n_mc: int = 400_000) -> dict[str, tuple[float, float, float]]:
    """Per task of a `gaussian` dataset, the bits I(Y; X1), I(Y; X2), I(Y; X1, X2) the raw
    inputs carry (Monte Carlo over the exact Gaussian posterior of each mean(z_f) given the
    inputs, from the covariance the generator's projections imply): what a perfect classifier
    would read, below the discrete truth's 1 bit because of the noise."""
    from scipy.stats import norm

    from generators import gaussian as g
    from generators._params import stream

    prm = ds.params
    ld, pd = prm["latent_dim"], prm["proj_dim"]
    proj = stream(prm["seed"], "gaussian", "projections").uniform(0, 1, (len(g.FACTORS), ld, pd))
    proj = proj / np.sqrt(g.LATENT_VAR * (proj**2).sum(axis=1, keepdims=True))
    rng = np.random.default_rng(0)
    d1 = len(g.X1_FACTORS) * pd
    w = np.full(ld, 1.0 / ld)

    def posterior(f: str, cols: slice) -> np.ndarray:
        """Samples of P(mean z_f > 0 | the inputs in `cols`)."""
        c = g.latent_covariance(proj, prm["noise"], f)
        czx = w @ c[:ld, ld:][:, cols]
        vm = w @ c[:ld, :ld] @ w
        explained = czx @ np.linalg.solve(c[ld:, ld:][cols, cols], czx)
        z = rng.standard_normal(n_mc) * np.sqrt(explained)
        return norm.cdf(z / np.sqrt(vm - explained))

    def info(p: np.ndarray) -> float:
        p = np.clip(p, 1e-300, 1 - 1e-16)
        return float(1 + (p * np.log2(p) + (1 - p) * np.log2(1 - p)).mean())

    x1, x2, both = slice(0, d1), slice(d1, None), slice(0, None)
    out = {}
    for task, f, cols in (("redundancy", "r", None), ("unique1", "u1", x1), ("unique2", "u2", x2)):
        i1 = info(posterior(f, x1)) if cols in (None, x1) else 0.0
        i2 = info(posterior(f, x2)) if cols in (None, x2) else 0.0
        out[task] = (i1, i2, info(posterior(f, both)))
    p1, p2 = posterior("s1", x1), posterior("s2", x2)
    out["synergy"] = (0.0, 0.0, info(p1 * p2 + (1 - p1) * (1 - p2)))
    return out


def bench_batch(args: argparse.Namespace) -> None:
    import generators
    from estimators import BatchPID, ClusteredPID

    head = "estimator   gen      seed task        R      U1     U2     S      |err|  sec"
    print(head + "   acc1/acc2/acc12")
    worst: dict[str, float] = {}
    for gen in args.generators:
        for seed in args.seeds:
            ds = generators.make(gen, n_train=args.n_train, n_test=args.n_test, seed=seed)
            tr, te = ds.train, ds.test
            carried = gaussian_label_information(ds) if gen == "gaussian" else {}
            for task in ds.tasks:
                truth = np.array(_vals(ds.true_pid[task]))
                rows = []
                t0 = time.perf_counter()
                est = BatchPID(random_state=seed, n_threads=args.threads).fit(
                    tr.x1, tr.x2, tr.labels[task], held_out=(te.x1, te.x2, te.labels[task])
                )
                sec = time.perf_counter() - t0
                r = est.pid_
                acc = f"{r.accuracy1:.3f}/{r.accuracy2:.3f}/{r.accuracy12:.3f}"
                rows.append(("batch", _vals(r), sec, acc))
                for k in args.clusters:
                    t0 = time.perf_counter()
                    c = ClusteredPID(n_clusters=k, random_state=seed).fit(
                        tr.x1, tr.x2, tr.labels[task]
                    )
                    rows.append((f"clustered{k}", _vals(c.pid_), time.perf_counter() - t0, ""))
                for name, v, s, extra in rows:
                    err = float(np.abs(np.array(v) - truth).max())
                    key = f"{name} {gen}"
                    worst[key] = max(worst.get(key, 0.0), err)
                    cells = " ".join(f"{x:6.3f}" for x in v)
                    print(
                        f"{name:<11} {gen:<8} {seed:<4} {task:<10} {cells} {err:6.3f} "
                        f"{s:5.1f} {extra}",
                        flush=True,
                    )
                print(
                    f"{'true':<11} {gen:<8} {seed:<4} {task:<10} "
                    + " ".join(f"{x:6.3f}" for x in truth)
                )
                if task in carried:
                    i1, i2, i12 = carried[task]
                    print(
                        f"{'inputs':<11} {gen:<8} {seed:<4} {task:<10} I(Y;X1) {i1:.3f} "
                        f"I(Y;X2) {i2:.3f} I(Y;X1,X2) {i12:.3f} (Bayes; the truth above "
                        "is of the latents)"
                    )
    print("\nlargest |estimate - truth| over tasks and seeds, bits:")
    for key, v in worst.items():
        print(f"  {key:<22} {v:.3f}")


def _rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def doubling_system(d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(covariance of the rotated, duplicated system, its exact R, U_X, U_Y, S in bits)."""
    k = d // 2
    hx = np.kron(np.eye(k), np.diag([2.0, 1.0]))
    hy = np.kron(np.eye(k), np.diag([1.0, np.sqrt(2.0)]))
    eye = np.eye(d)
    cov = np.block(
        [[eye, hx.T, hy.T], [hx, hx @ hx.T + eye, hx @ hy.T], [hy, hy @ hx.T, hy @ hy.T + eye]]
    )
    rot = np.zeros_like(cov)
    for b in range(3):
        rot[b * d : (b + 1) * d, b * d : (b + 1) * d] = _rotation(d, rng)
    exact = np.zeros(4)
    for a, b in ((2.0, 1.0), (1.0, np.sqrt(2.0))):
        ix, iy = 0.5 * np.log2(1 + a * a), 0.5 * np.log2(1 + b * b)
        red = min(ix, iy)
        exact += [red, ix - red, iy - red, 0.5 * np.log2(1 + a * a + b * b) - ix - iy + red]
    return rot @ cov @ rot.T, k * exact


def bench_gaussian(args: argparse.Namespace) -> None:
    from estimators import gaussian_pid

    rng = np.random.default_rng(0)
    print("doubling example (dm = dx = dy = d), GaussianPID from the covariance")
    print("   d   seconds  iterations  max |atom - exact| (bits)")
    d = 2
    while d <= args.max_d:
        cov, exact = doubling_system(d, rng)
        t0 = time.perf_counter()
        r = gaussian_pid(cov, (d, d, d))
        sec = time.perf_counter() - t0
        err = float(np.abs(np.array(_vals(r)) - exact).max())
        print(f"{d:5d} {sec:9.3f} {r.iterations:8d}     {err:.2e}", flush=True)
        d *= 2
    dm, dx, dy = 1, 1000, 600
    a, b = rng.normal(size=(dx, dm)), rng.normal(size=(dy, dm))
    ln = rng.normal(size=(dx + dy, dx + dy)) / np.sqrt(dx + dy)
    noise = ln @ ln.T + 0.5 * np.eye(dx + dy)  # correlated, non-white noises
    h = np.vstack([a, b])
    cov = np.block([[np.eye(dm), h.T], [h, h @ h.T + noise]])
    t0 = time.perf_counter()
    r = gaussian_pid(cov, (dm, dx, dy))
    sec = time.perf_counter() - t0

    def mi(idx: np.ndarray) -> float:
        sub = cov[np.ix_(np.r_[0, idx], np.r_[0, idx])]
        return 0.5 * (np.linalg.slogdet(sub[1:, 1:])[1] - np.linalg.slogdet(sub)[1]) / np.log(2)

    ix, iy = mi(np.arange(1, 1 + dx)), mi(np.arange(1 + dx, 1 + dx + dy))
    err = abs(r.redundancy - min(ix, iy))
    print(
        f"dx={dx}, dy={dy}, dm={dm}: {sec:.3f} s, R={r.redundancy:.4f} (MMI {min(ix, iy):.4f}, "
        f"|diff| {err:.1e}), S={r.synergy:.4f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["batch", "gaussian", "all"], default="all")
    ap.add_argument("--generators", nargs="+", default=["bits", "gaussian"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--clusters", nargs="+", type=int, default=[10, 20, 50])
    ap.add_argument("--max-d", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for BATCH")
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    if args.part in ("gaussian", "all"):
        bench_gaussian(args)
    if args.part in ("batch", "all"):
        bench_batch(args)


if __name__ == "__main__":
    main()
