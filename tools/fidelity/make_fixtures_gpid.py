"""Reference Gaussian PIDs of vector-M systems from the authors' code (praveenv253/gpid).

    python tools/fidelity/make_fixtures_gpid.py --gpid /path/to/gpid --out tests/fixtures/fidelity

Runs `gpid.tilde_pid.exact_gauss_tilde_pid` (Venkatesh, Bhattacharyya, Grover, NeurIPS 2023:
their projected-gradient solver of the ~-PID) on random covariances of (M, X, Y) with a vector
M, imported from the checkout given with `--gpid` (its `src/` on `sys.path`; nothing of theirs is
copied), and writes `gpid.npz` (the covariances, their blocks and the authors' outputs) and
`gpid.json` (repository, commit, versions, command). `tests/test_gaussian_pid.py` checks
`estimators.gaussian_pid` against them.

Only systems where neither source is a degraded copy of the other are kept (the union
information exceeds max(I(M;X), I(M;Y)) by at least `--min-gap` bits in the authors' answer):
there the answer needs the optimiser, and the closed form that holds for a scalar M (MMI) is
wrong by at least that gap.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy

#: Output order of `exact_gauss_tilde_pid`: (imx, imy, imxy, union, obj, uix, uiy, ri, si).
FIELDS = ("imx", "imy", "imxy", "union", "obj", "uix", "uiy", "ri", "si")


def random_covariance(dims: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A Wishart-like covariance of (M, X, Y): A A' / k with A of shape (d, d + 2)."""
    d = sum(dims)
    a = rng.normal(size=(d, d + 2))
    return a @ a.T / (d + 2)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpid", required=True, help="path to a praveenv253/gpid checkout")
    p.add_argument("--out", required=True, help="folder for gpid.npz and gpid.json")
    p.add_argument("--systems", type=int, default=8)
    p.add_argument("--min-gap", type=float, default=0.04, help="bits; see the module docstring")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    root = Path(args.gpid).resolve()
    sys.path.insert(0, str(root / "src"))
    from gpid.tilde_pid import exact_gauss_tilde_pid

    rng = np.random.default_rng(args.seed)
    covs, dims, outs = [], [], []
    while len(covs) < args.systems:
        # the last system is larger than the rest (M of 5, sources of 6 and 7)
        last = len(covs) == args.systems - 1
        d = (5, 6, 7) if last else tuple(int(v) for v in rng.integers(2, 5, 3))
        c = random_covariance(d, rng)
        out = exact_gauss_tilde_pid(c, *d)
        r = dict(zip(FIELDS, (float(v) for v in out[: len(FIELDS)]), strict=True))
        if r["union"] - max(r["imx"], r["imy"]) < args.min_gap:
            continue
        covs.append(c)
        dims.append(d)
        outs.append([r[f] for f in FIELDS])
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # covariances differ in size: stored padded with NaN to the largest, cut by `dims`
    size = max(sum(d) for d in dims)
    padded = np.full((len(covs), size, size), np.nan)
    for i, c in enumerate(covs):
        padded[i, : len(c), : len(c)] = c
    with open(out_dir / "gpid.npz", "wb") as f:
        np.savez(
            f, cov=padded, dims=np.array(dims), outputs=np.array(outs), fields=np.array(FIELDS)
        )
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "repository": "praveenv253/gpid",
        "commit": commit or "see --gpid: not a git checkout",
        "function": "src/gpid/tilde_pid.py: exact_gauss_tilde_pid(cov, dm, dx, dy) (bits)",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "command": " ".join(["python", "tools/fidelity/make_fixtures_gpid.py", *sys.argv[1:]]),
        "systems": len(covs),
        "min_gap_bits": args.min_gap,
    }
    (out_dir / "gpid.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(covs)} systems to {out_dir / 'gpid.npz'}")


if __name__ == "__main__":
    main()
