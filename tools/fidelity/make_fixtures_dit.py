"""Reference I_min lattice PIDs of random joints from dit (`dit.pid.PID_WB`).

    python -m venv venv-dit && venv-dit/bin/pip install dit==2.3
    venv-dit/bin/python tools/fidelity/make_fixtures_dit.py --out tests/fixtures/fidelity

Draws random joints p[x1, x2, x3, y] (alphabets of 2-3 values, some cells zero) and
p[x1, x2, y], runs dit's Williams-Beer PID (`PID_WB(d, sources, target)`, its I_min
redundancy and Moebius inversion) on each, and writes `dit_imin.npz` (joints, shapes, each
node's partial information and redundancy, nodes named as `estimators.lattice` names them) and
`dit_imin.json` (dit's version, numpy's, the command). Runs in its own environment: dit is
not a dependency of pid-bench. `tests/test_lattice.py` checks `estimators.lattice_pid`
against it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np


def dit_pid(p: np.ndarray) -> dict[str, tuple[float, float]]:
    """Our node name -> (pi, I_r) of dit's PID_WB of the joint p[x..., y]."""
    import dit
    from dit.pid import PID_WB

    n = p.ndim - 1
    outcomes = [idx for idx in itertools.product(*map(range, p.shape)) if p[idx] > 0]
    d = dit.Distribution(outcomes, [float(p[i]) for i in outcomes])
    res = PID_WB(d, [[i] for i in range(n)], [n])
    out = {}
    for node in res._lattice:
        # dit numbers the sources 0..n-1 (positions in the source list); ours 1..n
        parts = sorted(
            (tuple(sorted(s + 1 for s in part)) for part in node), key=lambda q: (len(q), q)
        )
        name = "|".join("".join(str(s) for s in part) for part in parts)
        out[name] = (float(res.get_pi(node)), float(res.get_red(node)))
    return out


def random_joint(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Dirichlet(0.5) joint with about a fifth of its cells set to zero."""
    p = rng.dirichlet(np.full(int(np.prod(shape)), 0.5)).reshape(shape)
    p[rng.random(shape) < 0.2] = 0.0
    return p / p.sum()


def main(argv: list[str] | None = None) -> None:
    import dit

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for dit_imin.npz and dit_imin.json")
    ap.add_argument("--trivariate", type=int, default=12)
    ap.add_argument("--bivariate", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    entries: dict[str, np.ndarray] = {}
    for n, count in ((3, args.trivariate), (2, args.bivariate)):
        names: list[str] = []
        joints, shapes, pis, reds = [], [], [], []
        for _ in range(count):
            shape = tuple(int(v) for v in rng.integers(2, 4, n + 1))
            p = random_joint(shape, rng)
            res = dit_pid(p)
            names = names or sorted(res)
            if sorted(res) != names:
                raise SystemExit(f"dit's lattice nodes changed between joints: {sorted(res)}")
            padded = np.zeros((3,) * (n + 1))
            padded[tuple(slice(0, s) for s in shape)] = p
            joints.append(padded)
            shapes.append(shape)
            pis.append([res[k][0] for k in names])
            reds.append([res[k][1] for k in names])
        entries.update(
            {
                f"joints{n}": np.array(joints),
                f"shapes{n}": np.array(shapes),
                f"pi{n}": np.array(pis),
                f"red{n}": np.array(reds),
                f"nodes{n}": np.array(names),
            }
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "dit_imin.npz", "wb") as f:
        np.savez(f, **entries)
    meta = {
        "package": "dit (PyPI; github.com/dit/dit)",
        "version": dit.__version__,
        "function": "dit.pid.PID_WB(d, [[0], [1], [2]], [3]): get_pi(node), get_red(node)",
        "numpy": np.__version__,
        "command": " ".join(["python", "tools/fidelity/make_fixtures_dit.py", *sys.argv[1:]]),
        "joints": {"trivariate": args.trivariate, "bivariate": args.bivariate},
        "seed": args.seed,
    }
    (out / "dit_imin.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.trivariate} + {args.bivariate} joints to {out / 'dit_imin.npz'}")


if __name__ == "__main__":
    main()
