"""Score a pid-bench run's saved embeddings with the CoMM authors' own linear probe.

Not part of the package and not run by CI. It imports `evaluation.linear_probe` from a
checkout of Duplums/CoMM (their code, run as it is: a two-stage cost sweep from 1e-6 to 1e6,
costs chosen on a stratified 60/40 split of the probe's training rows by macro-averaged
accuracy, a refit on training + validation rows, L-BFGS logistic regression on unstandardised
features) and applies it to the embeddings a run saved with `--save-embeddings`, next to the
run's own linear-probe numbers (`results.csv`). Their probe is given every training row of the
split (their protocol); ours reads `probe.max_train` of them (the run's config).

Their module imports pytorch_lightning and torchmetrics, so run this with an environment that
has them (and torch), e.g.

    python3 -m venv /tmp/venv-probe
    /tmp/venv-probe/bin/pip install torch==2.13.0 torchmetrics pytorch-lightning \
        scikit-learn pandas scipy tqdm threadpoolctl matplotlib
    /tmp/venv-probe/bin/python tools/fidelity/probe_authors.py --comm PATH/TO/CoMM \
        --run RUN_DIR [RUN_DIR ...] --out probe_authors.csv

from the repository root (the script puts the repository on sys.path to rebuild each seed's
dataset exactly as the run did).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _their_probe(comm: Path):
    sys.path.insert(0, str(comm))
    from evaluation.linear_probe import evaluate_linear_probe  # their code, from their checkout

    return evaluate_linear_probe


def _rows(run: Path, evaluate, commit: str) -> list[dict]:
    import pandas as pd
    import torch

    cfg_json = json.loads((run / "config.json").read_text())
    ours = pd.read_csv(run / "results.csv")
    ours = ours[(ours.probe == "linear") & (ours.metric == "balanced_accuracy")]
    out = []
    for path in sorted((run / "embeddings").glob("*_seed*.npz")):
        learner, seed = path.stem.rsplit("_seed", 1)
        seed = int(seed)
        ds = _dataset(cfg_json, seed)
        emb = np.load(path, allow_pickle=False)
        for task in ds.tasks:
            key_tr = f"z_train_{task}" if f"z_train_{task}" in emb else "z_train"
            key_te = f"z_test_{task}" if f"z_test_{task}" in emb else "z_test"
            if key_tr not in emb:
                continue
            mine = ours[(ours.learner == learner) & (ours.seed == seed) & (ours.task == task)]
            if mine.empty:
                continue  # a task the run did not score
            torch.manual_seed(0)
            scores = evaluate(
                torch.from_numpy(np.asarray(emb[key_tr], dtype=np.float32)),
                torch.from_numpy(ds.train.labels[task].astype(np.int64)),
                torch.from_numpy(np.asarray(emb[key_te], dtype=np.float32)),
                torch.from_numpy(ds.test.labels[task].astype(np.int64)),
                logging_level="WARNING",
            )
            out.append(
                {
                    "run": run.name,
                    "learner": learner,
                    "seed": seed,
                    "task": task,
                    "ours_linear": float(mine.value.iloc[0]),
                    "authors_probe": float(scores["acc1"]),
                    "authors_commit": commit,
                }
            )
            print(out[-1], flush=True)
    return out


def _dataset(cfg_json: dict, seed: int):
    """The seed's dataset as `pid_bench.cell.dataset_for_seed` builds it."""
    sys.path.insert(0, str(ROOT))
    import generators
    from pid_bench.seeding import derive_seed

    params = dict(cfg_json["generator_params"])
    params.setdefault("seed", derive_seed(seed, "data", cfg_json["generator"]))
    return generators.make(cfg_json["generator"], **params)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--comm", type=Path, required=True, help="checkout of Duplums/CoMM")
    p.add_argument("--run", type=Path, nargs="+", required=True, help="run folders")
    p.add_argument("--out", type=Path, required=True, help="CSV to write")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    commit = subprocess.run(
        ["git", "-C", str(args.comm), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    evaluate = _their_probe(args.comm.resolve())
    rows = [r for run in args.run for r in _rows(run, evaluate, commit)]
    if not rows:
        print("no embeddings found (run with --save-embeddings)", file=sys.stderr)
        return 2
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"wrote {args.out} ({len(rows)} rows; Duplums/CoMM {commit})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
