"""Markdown table of the Trifeature ladder: one row per (step, learner), from the run folders.

    python tools/ladder_table.py reports/trifeature/ladder/base32 reports/trifeature/ladder/*/

Each folder is a `pid-bench run` (results.csv, config.json). The table gives the linear-probe
balanced accuracy (%) per task, mean ± std over the seeds present, the seeds, the seconds each
model took (cell `elapsed_s`, mean), what the step's config changes against the first folder
(the reference), and the git sha that made it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


_IGNORED = {"seeds", "interaction", "learners", "learner_params", "plugins", "tasks"}


def _changes(ref: dict, cfg: dict) -> str:
    a, b = _flat(ref), _flat(cfg)
    diff = [
        f"{k}={b.get(k)}"
        for k in sorted(set(a) | set(b))
        if k.split(".")[0] not in _IGNORED and a.get(k) != b.get(k)
    ]
    return ", ".join(diff) or "(reference)"


def table(folders: list[Path]) -> str:
    """The markdown table of `folders`; the first is the reference the changes are read against."""
    ref = json.loads((folders[0] / "config.json").read_text())
    lines = [
        "| step | learner | unique1 | unique2 | redundancy | synergy | seeds | s / model "
        "| change against the reference | sha |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for f in folders:
        res = f / "results.csv"
        if not res.is_file():
            lines.append(f"| {f.name} | (not finished) | | | | | | | | |")
            continue
        cfg = json.loads((f / "config.json").read_text())
        d = pd.read_csv(res)
        d = d[(d.probe == "linear") & (d.metric == "balanced_accuracy")]
        for learner, g in d.groupby("learner", sort=False):
            cells = []
            for task in ("unique1", "unique2", "redundancy", "synergy"):
                v = 100 * g[g.task == task].value
                if v.empty:
                    cells.append("–")
                elif len(v) == 1:
                    cells.append(f"{v.iloc[0]:.1f}")
                else:
                    cells.append(f"{v.mean():.1f} ± {v.std():.1f}")
            seeds = ",".join(str(s) for s in sorted(g.seed.unique()))
            secs = g.groupby(["seed", "task"]).elapsed_s.first().groupby("seed").mean().mean()
            lines.append(
                f"| {f.name} | {learner} | {' | '.join(cells)} | {seeds} | {secs:.0f} "
                f"| {_changes(ref, cfg)} | {g.git_sha.iloc[0][:7]} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", type=Path, nargs="+")
    print(table(p.parse_args().folders))


if __name__ == "__main__":
    main()
