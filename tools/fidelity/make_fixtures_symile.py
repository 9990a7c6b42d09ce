"""Reference values of the Symile loss from the authors' package (`symile` 0.1.0, rajesh-lab).

    pip download symile==0.1.0 --no-deps -d DIR && unzip DIR/symile-0.1.0-py3-none-any.whl -d SYM
    python tools/fidelity/make_fixtures_symile.py --symile SYM --out tests/fixtures/fidelity

Imports `symile.Symile` from the unpacked package given with `--symile` (nothing of theirs is
copied; it is not a dependency of pid-bench) and runs its loss on fixed random
representations of 2 and 3 modalities: negative sampling "n_squared" (deterministic; three
modalities, their code needs two non-anchor ones) and "n"
(their permutations come from torch's global generator, seeded here before each call, so a
`torch.Generator` seeded alike draws the same ones). Writes `symile.npz` (inputs, logit scale,
losses, gradients of the loss in each representation) and `symile.json` (package, version,
the wheel's sha256 when given, torch version, command). `tests/test_symile.py` checks
`pid_bench.learners.losses.symile_loss` against them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--symile", required=True, help="folder of the unpacked symile package")
    p.add_argument("--wheel", help="the wheel it was unpacked from (its sha256 is recorded)")
    p.add_argument("--out", required=True, help="folder for symile.npz and symile.json")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(args.symile).resolve()))
    import symile
    from symile import Symile

    entries: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    scale = 3.0
    for m in (2, 3):
        reps = rng.standard_normal((m, 6, 5)).astype(np.float32)
        entries[f"reps{m}"] = reps
        # their "n_squared" needs two or more non-anchor modalities (three in all)
        for neg in ("n", "n_squared") if m == 3 else ("n",):
            ts = [torch.tensor(r, requires_grad=True) for r in reps]
            torch.manual_seed(7)  # their "n" sampling draws from the global generator
            loss = Symile(negative_sampling=neg)(ts, scale)
            loss.backward()
            entries[f"loss{m}_{neg}"] = np.array(float(loss.detach()))
            entries[f"grad{m}_{neg}"] = np.stack([t.grad.numpy() for t in ts])
    entries["logit_scale"] = np.array(scale)
    entries["torch_seed_n"] = np.array(7)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "symile.npz", "wb") as f:
        np.savez(f, **entries)
    meta = {
        "package": "symile (PyPI; github.com/rajesh-lab/symile)",
        "version": symile.__version__,
        "wheel_sha256": (
            hashlib.sha256(Path(args.wheel).read_bytes()).hexdigest() if args.wheel else None
        ),
        "function": "symile.Symile(negative_sampling)(representations, logit_scale)",
        "torch": torch.__version__,
        "command": " ".join(["python", "tools/fidelity/make_fixtures_symile.py", *sys.argv[1:]]),
    }
    (out / "symile.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out / 'symile.npz'}")


if __name__ == "__main__":
    main()
