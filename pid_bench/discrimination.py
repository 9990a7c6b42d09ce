"""Where each learner lies between its floor and its ceiling, per task.

A number means something only between the task's floor (frozen random encoders, `random`) and
its ceiling (the supervised learner trained on the task's label, `supervised`); a fused learner
is also read against its own untrained architecture (`Learner.untrained_floor`, e.g. CoMM ->
`random_fusion`). The floor and the ceiling are claims too, and this module checks them: a
floor far above chance, a ceiling close to the floor (the task puts every learner at the same
level), or a ceiling below a learner it bounds are reported, never hidden.

All numbers are linear-probe balanced accuracy at the final epoch, averaged over seeds; the
ceiling is also checked with the MLP probe where a run has one (a learner whose embeddings an
MLP reads better than the supervised learner's: that ceiling has not learnt the label).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from generators.base import ALL_TASKS
from pid_bench.results import summarise

#: The learner whose accuracy is each task's floor (frozen random encoders).
FLOOR = "random"
#: The learner whose accuracy is each task's ceiling (trained on the task's label).
CEILING = "supervised"
#: A floor more than this above chance is reported: random features already read the task.
FLOOR_SLACK = 0.10
#: A ceiling less than this above the floor is reported: the task does not discriminate.
MIN_RANGE = 0.10
#: A learner more than this above the ceiling is reported: the ceiling does not bound it.
CEILING_SLACK = 0.02

#: Role of a learner trained on the task's labels (`Learner.supervised`): a ceiling.
LABELS = "labels"
#: Role of a frozen, untrained encoder the others are read against (`FLOOR`, or a learner's
#: `Learner.untrained_floor`): a floor.
FLOOR_ROLE = "floor"
#: How each role is named in printed summaries, tables and figure legends.
ROLE_TEXT: dict[str, str] = {
    LABELS: "trained on labels (ceiling)",
    FLOOR_ROLE: "frozen untrained encoder (floor)",
}


def learner_roles(learners: Sequence[str], plugins: dict[str, str] | None = None) -> dict[str, str]:
    """learner -> `LABELS` or `FLOOR_ROLE`, for the learners of `learners` that have one.

    `LABELS`: the learner's class trains on the task label (`supervised = True`: the ceiling
    `supervised`, `shared_private`, or a plug-in that says so). `FLOOR_ROLE`: the learner is
    the floor (`FLOOR`) or the untrained architecture of a built-in learner or of a learner in
    `learners` (`untrained_floor`, e.g. CoMM -> `random_fusion`). The roles come from the
    classes, so plug-ins are marked by their own attributes; `plugins` maps plug-in names to
    where their class is imported from (the run config's `plugins`). A learner whose class
    cannot be loaded here (scored embeddings, a plug-in not importable from here) gets a role
    only by name (`FLOOR`, or another learner's untrained floor).
    """
    # torch-heavy; only needed here, so that `import pid_bench.discrimination` stays light
    from pid_bench.check import untrained_floors
    from pid_bench.learners import LEARNERS
    from pid_bench.learners.plugins import learner_class

    floors = {FLOOR, *map(str, untrained_floors([*LEARNERS, *learners], plugins).values())}
    roles: dict[str, str] = {}
    for name in learners:
        try:
            cls = learner_class(name, (plugins or {}).get(name, ""))
        except ValueError:  # scored embeddings, or a plug-in not importable from here
            cls = None
        if getattr(cls, "supervised", False) is True:
            roles[name] = LABELS
        elif name in floors:
            roles[name] = FLOOR_ROLE
    return roles


@dataclass
class FloorCeiling:
    """Per task: chance, floor and ceiling; per (learner, task): position in the range."""

    tasks: pd.DataFrame  # task, chance, floor, ceiling, range
    learners: pd.DataFrame  # learner, task, acc, versus, floor, position
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[list[str]]:
        """The table as text: chance, floor, ceiling and range per task (3 decimals), then each
        learner's position (2 decimals), `name vs floor` for its own untrained floor."""
        tasks = list(self.tasks["task"])
        t = self.tasks.set_index("task")
        cols = ("chance", "floor", "ceiling", "range")
        out = [[col, *[_fmt(t.at[k, col]) for k in tasks]] for col in cols]
        for (learner, versus), part in self.learners.groupby(["learner", "versus"], sort=False):
            pos = part.set_index("task")["position"]
            label = learner if versus == FLOOR else f"{learner} vs {versus}"
            out.append([label, *[_fmt(pos.get(k, np.nan), 2) for k in tasks]])
        return out

    def format(self) -> str:
        """The printed floor/ceiling summary (notes wrapped to `WIDTH` characters)."""
        if self.tasks.empty:
            return "\n".join(self.notes)
        notes = [_wrap(f"note: {n}") for n in self.notes]
        lines = [
            f"floor / ceiling (linear probe, balanced accuracy): floor = {FLOOR} (frozen random "
            f"encoders), ceiling = {CEILING};",
            "position = (acc - floor) / (ceiling - floor), 0 at the floor and 1 at the ceiling",
            f"{'':<24}" + "".join(f"{t:>12}" for t in self.tasks["task"]),
        ]
        for label, *cells in self.rows():
            lines.append(f"{label:<24}" + "".join(f"{c:>12}" for c in cells))
        return "\n".join(lines + notes)


#: Width the printed floor/ceiling notes are wrapped to (the printed summary's too).
WIDTH = 118


def _wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def _fmt(x: float, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def floor_ceiling(
    df: pd.DataFrame,
    floors: dict[str, str] | None = None,
    order: list[str] | tuple[str, ...] | None = None,
) -> FloorCeiling:
    """The floor/ceiling summary of a results table.

    `floors` maps a learner to its untrained architecture (`pid_bench.check.untrained_floors`);
    `order` is the learners' display order (default: as they appear).
    """
    stats = summarise(df, probes=("linear",), metrics=("balanced_accuracy", "chance"))
    stats = stats.groupby(["learner", "task", "metric"], sort=False)["mean"].mean()
    acc = stats.xs("balanced_accuracy", level="metric")
    chance = stats.xs("chance", level="metric").groupby(level="task").mean()
    present = set(acc.index.get_level_values("task"))
    tasks = [t for t in ALL_TASKS if t in present] + sorted(present - set(ALL_TASKS))
    learners = list(order) if order else list(dict.fromkeys(acc.index.get_level_values(0)))
    learners = [name for name in learners if name in set(acc.index.get_level_values(0))]
    notes: list[str] = []
    has_floor, has_ceiling = FLOOR in learners, CEILING in learners
    if not (has_floor and has_ceiling):
        missing = [n for n, ok in ((FLOOR, has_floor), (CEILING, has_ceiling)) if not ok]
        notes.append(
            f"no {' or '.join(missing)} in this run, so its numbers have no measured "
            f"{'floor' if not has_floor else 'ceiling'}{'' if len(missing) == 1 else ' or ceiling'}"
            f": add {' '.join(missing)} to --learners"
        )
        return FloorCeiling(pd.DataFrame(), pd.DataFrame(), notes)

    task_rows = []
    for t in tasks:
        lo = acc.get((FLOOR, t), np.nan)
        hi = acc.get((CEILING, t), np.nan)
        task_rows.append(
            {
                "task": t,
                "chance": chance.get(t, np.nan),
                "floor": lo,
                "ceiling": hi,
                "range": hi - lo,
            }
        )
        c = chance.get(t, np.nan)
        if lo > c + FLOOR_SLACK:
            notes.append(
                f"{t}: the floor ({FLOOR} {lo:.3f}) is more than {FLOOR_SLACK:.2f} above chance "
                f"({c:.3f}): random features already read this task"
            )
        if hi - lo < MIN_RANGE:
            notes.append(
                f"{t}: ceiling - floor = {hi - lo:.3f} < {MIN_RANGE:.2f}: this task puts every "
                "learner at about the same level, so its numbers do not discriminate"
            )
    floors = floors or {}
    rows = []
    for name in learners:
        if name in (FLOOR, CEILING):
            continue
        versus = [FLOOR] + ([floors[name]] if floors.get(name) in learners else [])
        for v in versus:
            for t in tasks:
                a = acc.get((name, t), np.nan)
                lo, hi = acc.get((v, t), np.nan), acc.get((CEILING, t), np.nan)
                span = hi - lo
                pos = (a - lo) / span if span >= MIN_RANGE else np.nan
                rows.append(
                    {
                        "learner": name,
                        "task": t,
                        "acc": a,
                        "versus": v,
                        "floor": lo,
                        "position": pos,
                    }
                )
        for t in tasks:
            a, hi = acc.get((name, t), np.nan), acc.get((CEILING, t), np.nan)
            if a > hi + CEILING_SLACK:
                notes.append(
                    f"{t}: {name} ({a:.3f}) reads above the ceiling ({CEILING} {hi:.3f}); a "
                    "ceiling below a learner it bounds is a bug in the ceiling (undertrained, "
                    "or a representation its classifier does not read linearly)"
                )
    notes += _mlp_above_ceiling(df, learners, tasks)
    return FloorCeiling(pd.DataFrame(task_rows), pd.DataFrame(rows), notes)


def _mlp_above_ceiling(df: pd.DataFrame, learners: list[str], tasks: list[str]) -> list[str]:
    """Notes where a learner's MLP probe reads more than the ceiling's MLP probe: the ceiling
    does not bound what that representation holds (e.g. a supervised learner that learnt one
    of the two bits of an XOR while another's frozen embeddings hold both)."""
    stats = summarise(df, probes=("mlp",), metrics=("balanced_accuracy",))
    if stats.empty:
        return []
    mlp = stats.groupby(["learner", "task"], sort=False)["mean"].mean()
    notes = []
    for t in tasks:
        hi = mlp.get((CEILING, t), np.nan)
        above = [
            (name, mlp.get((name, t), np.nan))
            for name in learners
            if name != CEILING and mlp.get((name, t), np.nan) > hi + CEILING_SLACK
        ]
        if above:
            listed = ", ".join(f"{name} {a:.3f}" for name, a in above)
            notes.append(
                f"{t}: with the MLP probe {listed} read above the ceiling ({CEILING} {hi:.3f}): "
                "the ceiling does not bound what those representations hold, so it is not a "
                "ceiling for this task (the supervised learner has not learnt the label)"
            )
    return notes
