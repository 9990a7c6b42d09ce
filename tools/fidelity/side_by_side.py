"""Markdown tables of linear-probe balanced accuracy, R / U1 / U2 / S, from result tables.

    python tools/fidelity/side_by_side.py \\
        "ours=reports/fidelity/side_by_side/content_style/ours_run/results.csv" \\
        "authors=reports/fidelity/side_by_side/content_style/authors_seed*/results.csv"

Each argument is LABEL=GLOB[#LEARNER]; the files a glob matches are concatenated (one
`pid-bench score` folder per seed), and `#LEARNER` keeps one learner's rows of a table that
holds several. Prints mean ± std over seeds (sample std, ddof 1) and the per-seed values.

With `--escape`, each GLOB names training-loss logs instead (a run's `logs/*.csv`, or the
`.log.csv` files of train_authors_comm.py) and the table gives, per log, the plateau loss (the
median of epochs 3-8) and the first epoch whose mean loss is 0.1 below it ("-": never).
"""

from __future__ import annotations

import argparse
import glob

import pandas as pd

TASKS = ("redundancy", "unique1", "unique2", "synergy")


def load(spec: str) -> tuple[str, pd.DataFrame]:
    """(label, rows of linear balanced accuracy) of one LABEL=GLOB argument."""
    label, _, pattern = spec.partition("=")
    pattern, _, learner = pattern.partition("#")
    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"{spec}: no file matches {pattern!r}")
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    df = df[(df.probe == "linear") & (df.metric == "balanced_accuracy")]
    if learner:
        if learner not in set(df.learner):
            has = sorted(set(df.learner))
            raise SystemExit(f"{spec}: no rows of learner {learner!r} (the table has {has})")
        df = df[df.learner == learner]
    elif df.learner.nunique() > 1:
        has = sorted(set(df.learner))
        raise SystemExit(f"{spec}: rows of several learners {has}; add #LEARNER to pick one")
    return label, df


def tables(specs: list[str]) -> str:
    """The two markdown tables (mean ± std, per seed) of `specs`."""
    loaded = [load(s) for s in specs]
    head = "| model | " + " | ".join(TASKS) + " |\n|---|" + "---|" * len(TASKS) + "\n"
    out = ["Linear probe, balanced accuracy, mean ± std over seeds (chance 0.25):\n", head]
    for label, df in loaded:
        p = df.pivot_table(index="seed", columns="task", values="value")
        cells = [f"{p[t].mean():.3f} ± {p[t].std(ddof=1):.3f}" for t in TASKS if t in p]
        out.append(f"| {label} (seeds {', '.join(map(str, p.index))}) | " + " | ".join(cells))
        out.append(" |\n")
    out.append("\nPer seed:\n\n| model | seed | " + " | ".join(TASKS) + " |\n")
    out.append("|---|---|" + "---|" * len(TASKS) + "\n")
    for label, df in loaded:
        p = df.pivot_table(index="seed", columns="task", values="value")
        for seed, row in p.iterrows():
            vals = " | ".join(f"{row[t]:.3f}" if t in row else "" for t in TASKS)
            out.append(f"| {label} | {seed} | {vals} |\n")
    return "".join(out)


def escape(specs: list[str], drop: float = 0.1) -> str:
    """Markdown table of plateau loss and escape epoch of each training log of `specs`."""
    out = ["| model | log | plateau loss | escape epoch | final loss |\n|---|---|---|---|---|\n"]
    for spec in specs:
        label, _, pattern = spec.partition("=")
        for f in sorted(glob.glob(pattern)):
            df = pd.read_csv(f)
            groups = df.groupby("group") if "group" in df else [("", df)]
            for group, g in groups:
                loss = g.set_index("epoch")["loss"]
                plateau = float(loss.loc[3:8].median())
                below = loss[(loss.index > 8) & (loss < plateau - drop)]
                esc = str(int(below.index[0])) if len(below) else "-"
                name = f.rsplit("/", 1)[-1] + (f" ({group})" if group else "")
                out.append(
                    f"| {label} | {name} | {plateau:.3f} | {esc} | {float(loss.iloc[-1]):.3f} |\n"
                )
    return "".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("specs", nargs="+", metavar="LABEL=GLOB[#LEARNER]")
    p.add_argument("--escape", action="store_true", help="the GLOBs name training-loss logs")
    args = p.parse_args()
    print(escape(args.specs) if args.escape else tables(args.specs))


if __name__ == "__main__":
    main()
