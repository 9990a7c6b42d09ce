"""The `pid-bench` command line: the arguments of each subcommand.

One small function per subcommand adds its arguments (`_run_args`, `_check_args`, ...); the
argument groups several subcommands share (the generator, the grid, training, execution, the
run folder) are each defined once. What a subcommand does is in `pid_bench.commands`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from pid_bench import arguments, commands

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2) instead of the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(low: int):
    """argparse type: an integer >= `low`, else a one-line error naming what is accepted
    (`arguments.int_at_least`, the check `evaluate` makes)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        try:
            return arguments.int_at_least(value, low, given=text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = f"integer >= {low}"
    return parse


def _finite_float(*, zero: bool):
    """argparse type: a finite number > 0 (>= 0 with `zero`), else a one-line error
    (`arguments.finite_number`, the check `evaluate` makes)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            return arguments.finite_number(value, zero=zero, given=text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = "a finite number >= 0" if zero else "a positive finite number"
    return parse


def _training_int(key: str):
    """argparse type of training flag `key` (`--epochs`, ...): its minimum is the one
    `evaluate` checks (`arguments.TRAINING_MINIMUM`)."""
    return _int_at_least(arguments.TRAINING_MINIMUM[key])


_positive_float = _finite_float(zero=False)
_non_negative_float = _finite_float(zero=True)

if TYPE_CHECKING:  # where arguments are added: a parser or one of its argument groups
    Args = argparse.ArgumentParser | argparse._ArgumentGroup

# -- argument groups shared by several subcommands --------------------------------------------


def _generator_args(
    p: Args,
    default: str | None = None,
    text: str = "dataset generator (see pid-bench list)",
    *,
    required: bool = False,
) -> None:
    """--generator (`text` its help) and its --set parameters."""
    p.add_argument("--generator", default=default, required=required, help=text)
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="generator parameter, repeatable (e.g. --set noise=0.2)",
    )


def _interaction_arg(p: Args, default: str) -> None:
    from pid_bench.runconfig import INTERACTION_NAMES

    p.add_argument(
        "--interaction",
        default=default,
        choices=list(INTERACTION_NAMES),
        help=f"which tasks to score (uniqueness = unique1 + unique2; default {default}); "
        "three-modality data (--set modalities=3): redundancy, uniqueness (unique1-3), "
        "synergy (synergy12, synergy13, synergy23, synergy123), all, or one synergy task",
    )


def _profile_arg(p: Args, text: str) -> None:
    from pid_bench.config import PROFILES

    p.add_argument("--profile", default="quick", choices=list(PROFILES), help=text)


def _default_learners() -> str:
    """What `--learners` defaults to, in words (`RunConfig.learners` against the registry)."""
    from pid_bench.learners import LEARNERS
    from pid_bench.runconfig import RunConfig

    left_out = [name for name in LEARNERS if name not in RunConfig.learners]
    return "every built-in" + (f" but {', '.join(left_out)}" if left_out else "")


def _grid_args(p: argparse.ArgumentParser) -> Args:
    """What a run covers: data, learners, seeds, tasks, profile (`run`, `sweep`); returns
    the group, for a subcommand's own arguments of that kind."""
    g = p.add_argument_group("what to run")
    _generator_args(g, default="content_style")
    g.add_argument(
        "--learners",
        nargs="+",
        metavar="NAME",
        help=f"learners (default: {_default_learners()}): names from pid-bench list, or a "
        "Learner class of your own as module.path:Class or path/to/file.py:Class",
    )
    g.add_argument(
        "--seeds",
        nargs="+",
        type=_int_at_least(0),
        metavar="S",
        help="repetition seeds, integers >= 0 (default: the profile's)",
    )
    _interaction_arg(g, "synergy")
    _profile_arg(
        g,
        "bundle of settings (README, Profiles): quick (default), ci, paper (the CoMM paper's "
        "tables at CPU scale: Trifeature at 32 x 32 pixels, our CNN, width 64, 30 epochs), "
        "published (CoMM's published Trifeature protocol at GPU scale: 224 x 224, AlexNet, "
        "width 512, 100 epochs, batch 64; --generator trifeature only)",
    )
    return g


def _training_args(p: argparse.ArgumentParser) -> None:
    """How each model trains (`run`, `sweep`); all recorded in config.json."""
    g = p.add_argument_group("training")
    g.add_argument(
        "--epochs", type=_training_int("epochs"), help="training epochs (default: the profile's)"
    )
    g.add_argument(
        "--batch-size", type=_training_int("batch_size"), help="(default: the profile's)"
    )
    g.add_argument("--lr", type=_positive_float, help="learning rate (default: the profile's)")
    g.add_argument(
        "--probe-every",
        type=_training_int("probe_every"),
        metavar="K",
        help="also probe every K epochs (learning curves)",
    )
    g.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="auto (the default): CUDA where there is one, else the CPU",
    )
    g.add_argument(
        "--threads",
        type=_training_int("threads"),
        help="CPU threads per grid cell (default 1; recorded in config.json: float sums, and "
        "so the numbers, depend on it). Use --jobs to use more cores",
    )
    g.add_argument(
        "--learner-set",
        action="append",
        metavar="LEARNER.KEY=VALUE",
        help="learner hyperparameter, repeatable (e.g. comm.fused_term=false)",
    )
    _settings_args(
        g,
        "SECTION.FIELD=VALUE",
        "any train/model/aug/probe setting, repeatable "
        "(e.g. model.cnn_width=16, aug.image.crop_scale=0.2,1); recorded in config.json",
    )


def _settings_args(p: Args, metavar: str, text: str) -> None:
    """--config-set (`text` its help) and --no-mlp (`run`, `sweep`, `score`)."""
    p.add_argument("--config-set", action="append", metavar=metavar, help=text)
    p.add_argument("--no-mlp", action="store_true", help="skip the MLP probe")


def _execution_args(p: argparse.ArgumentParser) -> None:
    """Where and how the grid's cells run (`run`, `sweep`); the numbers do not depend on it."""
    g = p.add_argument_group("execution (the numbers do not depend on it)")
    g.add_argument(
        "--jobs",
        type=_int_at_least(1),
        help="grid cells run side by side in local processes (default 1)",
    )
    g.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray"],
        help="where the grid's cells run: local (--jobs processes of this machine, the "
        'default) or ray (a Ray cluster; pip install "pid-bench[ray]")',
    )
    g.add_argument(
        "--address",
        metavar="auto|ray://HOST:PORT",
        help="with --executor ray: the cluster to join (auto: the one `ray start --head` "
        "started here); default: start a local one on this machine's cores",
    )
    g.add_argument(
        "--retries",
        type=_int_at_least(0),
        metavar="N",
        help="with --executor ray: times a cell whose worker died (killed, out of memory, "
        "node lost) is run again before it is reported failed (default 2)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _output_args(p: argparse.ArgumentParser, out_help: str, force_help: str) -> None:
    """--out and --force (`run`, `sweep`, `score`)."""
    p.add_argument("--out", help=out_help)
    p.add_argument("--force", action="store_true", help=force_help)


_RUN_FOLDER = "run folder (default runs/<run_id>)"
_FORCE_RESUME = (
    "start over in --out, clearing its results, cell files and logs (without it, a run of the "
    "same config there is resumed, and one of another config is refused)"
)


def _run_dirs_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")


# -- one function per subcommand --------------------------------------------------------------


def _list_args(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=commands.cmd_list)


def _generate_args(p: argparse.ArgumentParser) -> None:
    _generator_args(p, required=True)
    p.add_argument("--out", required=True, help="output .npz path")
    p.set_defaults(func=commands.cmd_generate)


def _estimate_args(p: argparse.ArgumentParser) -> None:
    from generators.base import TASKS

    _generator_args(p, text="generator to sample (default bits)")
    p.add_argument("--task", help=f"{'|'.join(TASKS)}|all (default all)")
    p.add_argument(
        "--split",
        choices=["train", "test"],
        help="samples to estimate from (default train, the larger split)",
    )
    p.add_argument(
        "--clusters",
        type=_int_at_least(1),
        help="k-means clusters per modality (default 64: at least the number of "
        "latent states of a modality, 4**3 for bits=2; fewer merge states and bias "
        "every atom down)",
    )
    p.add_argument(
        "--estimator",
        help="clustered (default) | batch (neural, trained on train, estimated on test) | "
        "gaussian (Gaussian PID of (x1, x2; each latent factor))",
    )
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda"], help="for batch (default cpu)"
    )
    p.add_argument("--joint", metavar="FILE.npy", help="exact PID of a saved joint p[x1,x2,y]")
    p.add_argument("--measure", help="broja | mmi | imin (with --joint; default broja)")
    p.set_defaults(func=commands.cmd_estimate)


def _run_args(p: argparse.ArgumentParser) -> None:
    _grid_args(p).add_argument(
        "--data",
        metavar="FILE.npz",
        help="train and probe on this dataset file (pid-bench generate) for every seed, "
        "instead of generating data",
    )
    _training_args(p)
    _execution_args(p)
    _output_args(p, _RUN_FOLDER, _FORCE_RESUME)
    p.add_argument(
        "--save-embeddings",
        action="store_true",
        help="also write each model's final embeddings to RUN/embeddings/ (pid-bench score "
        "reads them)",
    )
    p.set_defaults(func=commands.cmd_run)


def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE.npz", help="dataset (pid-bench generate)")
    p.add_argument(
        "--embeddings",
        required=True,
        metavar="FILE.npz",
        help="embeddings of its rows: fingerprint, z_train, z_test [, z1_test, z2_test] "
        "(README: Benchmark your own model)",
    )
    p.add_argument("--name", required=True, help="your model's name in the results")
    p.add_argument(
        "--seed", type=_int_at_least(0), default=0, help="seed the results are filed under"
    )
    _interaction_arg(p, "all")
    _profile_arg(p, "probe settings")
    _settings_args(p, "probe.FIELD=VALUE", "probe setting, repeatable (e.g. probe.max_train=2000)")
    _output_args(p, _RUN_FOLDER, "overwrite results in --out")
    p.set_defaults(func=commands.cmd_score)


def _sweep_args(p: argparse.ArgumentParser) -> None:
    g = _grid_args(p)
    g.add_argument("--param", required=True, help="generator parameter to sweep")
    g.add_argument("--values", nargs="+", required=True, help="values of the parameter")
    _training_args(p)
    _execution_args(p)
    _output_args(p, "folder holding one run folder per value", _FORCE_RESUME)
    p.set_defaults(func=commands.cmd_sweep)


def _show_args(p: argparse.ArgumentParser) -> None:
    _generator_args(p, default="trifeature")
    p.add_argument("--n", type=_int_at_least(1), default=8, help="number of pairs")
    p.add_argument(
        "--split",
        default="test",
        help="train, test, or a task with a pretraining split (e.g. synergy); default test",
    )
    p.add_argument("--out", required=True, help="output PNG")
    p.set_defaults(func=commands.cmd_show)


def _report_args(p: argparse.ArgumentParser) -> None:
    _run_dirs_arg(p)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=commands.cmd_report)


def _baseline_args(p: argparse.ArgumentParser) -> None:
    _run_dirs_arg(p)
    p.add_argument("--out", required=True, help="baseline JSON path")
    p.set_defaults(func=commands.cmd_baseline)


def _check_args(p: argparse.ArgumentParser) -> None:
    _run_dirs_arg(p)
    p.add_argument("--baseline", required=True, help="baseline JSON from pid-bench baseline")
    p.add_argument(
        "--tolerance",
        type=_non_negative_float,
        default=0.05,
        help="allowed absolute drop of each mean (default 0.05)",
    )
    p.add_argument(
        "--sigma",
        type=_non_negative_float,
        default=0.0,
        help="also allow a drop of up to SIGMA baseline std (default 0)",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        default=["balanced_accuracy"],
        help="metrics compared (balanced_accuracy, mi_bits, capture)",
    )
    p.add_argument(
        "--floor-margin",
        type=_non_negative_float,
        default=None,
        help="a learner the baseline shows above its untrained architecture (comm over "
        "random_fusion) fails when it is no more than this above it (default: --tolerance)",
    )
    p.set_defaults(func=commands.cmd_check)


#: name -> (one-line help, the function adding its arguments), in the order of `--help`.
SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "list": ("list generators, estimators, learners, probes", _list_args),
    "generate": ("write a generated dataset to an .npz file", _generate_args),
    "estimate": ("PID: true vs clustered estimate, or of a saved joint", _estimate_args),
    "run": ("train learners and probe what they capture", _run_args),
    "score": (
        "probe embeddings computed elsewhere: an ordinary run folder, no training",
        _score_args,
    ),
    "sweep": ("one run per value of a generator parameter", _sweep_args),
    "show": (
        "draw sample pairs of an image generator, or how a vector generator's synergy "
        "factors co-occur in each split",
        _show_args,
    ),
    "report": ("figures and summary from run folders", _report_args),
    "baseline": ("write a regression baseline from run folders", _baseline_args),
    "check": ("compare runs to a baseline: exit 0 pass, 1 regression", _check_args),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog="pid-bench",
        description="Benchmark which multimodal interactions (redundancy, uniqueness, synergy) "
        "a learned representation captures.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (text, add_args) in SUBCOMMANDS.items():
        add_args(sub.add_parser(name, help=text))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pid-bench` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from pid_bench.results import RunFolderWarning

    with warnings.catch_warnings():  # restores how warnings are shown when main returns
        others = warnings.showwarning

        def show(message, category, *rest, **kwargs):  # ours in one line, as errors are
            if issubclass(category, RunFolderWarning):
                print(f"pid-bench {args.command}: warning: {message}", file=sys.stderr)
            else:
                others(message, category, *rest, **kwargs)

        warnings.showwarning = show
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand; errors of bad input as one line (exit 2)."""
    from pid_bench.learners.base import LearnerError

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, LearnerError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"pid-bench {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:  # a place that cannot be written: read-only, full disk, ...
        where = f": {e.filename}" if e.filename else ""
        print(f"pid-bench {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as e:
        print(str(e) or "interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
