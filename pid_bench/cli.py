"""The `pid-bench` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2) instead of the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(low: int):
    """argparse type: an integer >= `low`, else a one-line error naming what is accepted."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _finite_float(*, zero: bool):
    """argparse type: a finite number > 0 (>= 0 with `zero`), else a one-line error."""
    need = "a finite number >= 0" if zero else "a positive finite number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= 0 if zero else value > 0) or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be {need}, got {text}")
        return value

    parse.__name__ = need
    return parse


_positive_float = _finite_float(zero=False)
_non_negative_float = _finite_float(zero=True)


def _kv(items: list[str] | None, flag: str = "--set") -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{flag} expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _generator_params(name: str, items: list[str] | None) -> dict:
    import generators

    generators.get(name)
    return generators.coerce_params(name, _kv(items))


def cmd_list(args: argparse.Namespace) -> int:
    import estimators
    import generators
    from pid_bench.config import PROFILES
    from pid_bench.learners import LEARNERS
    from pid_bench.probes import PROBES
    from pid_bench.runner import INTERACTIONS

    print("generators:")
    for name in sorted(generators.GENERATORS):
        ps = ", ".join(f"{k}={v}" for k, v in generators.parameters(name).items())
        print(f"  {name:<14} {ps}")
    print("estimators:")
    for name in sorted(estimators.ESTIMATORS):
        print(f"  {name}")
    print(f"  measures: {', '.join(estimators.MEASURES)}")
    print("learners:")
    for name, cls in LEARNERS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        hp = ", ".join(f"{k}={getattr(cls, k)!r}" for k in cls.hyperparams)
        print(f"  {name:<15} {doc}" + (f" [--learner-set {name}.{hp}]" if hp else ""))
    _list_plugins(LEARNERS)
    print(f"probes: {', '.join(PROBES)}")
    print(f"interactions: {', '.join(INTERACTIONS)}")
    print(f"profiles: {', '.join(PROFILES)}")
    return 0


def _list_plugins(builtins: dict) -> None:
    from pid_bench.learners.plugins import ENTRY_POINT_GROUP, entry_points, resolve

    eps = entry_points()
    print(
        f"plug-in learners (entry points {ENTRY_POINT_GROUP!r}; any other class: "
        "--learners module.path:Class or path/to/file.py:Class):"
    )
    if not eps:
        print("  (none installed)")
    for name, ep in sorted(eps.items()):
        dist = getattr(ep, "dist", None)
        origin = f"{ep.value}" + (f" from {dist.name} {dist.version}" if dist else "")
        if name in builtins:
            print(f"  {name:<15} {origin} (ignored: a built-in learner has this name)")
            continue
        try:
            cls = resolve(name)[1]
        except ValueError as e:
            print(f"  {name:<15} {origin} (cannot be used: {e})")
            continue
        doc = ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        hp = ", ".join(f"{k}={getattr(cls, k)!r}" for k in cls.hyperparams)
        extra = f" [--learner-set {name}.{hp}]" if hp else ""
        print(f"  {name:<15} {doc} ({origin}){extra}")


def cmd_generate(args: argparse.Namespace) -> int:
    import generators
    from generators.io import save_npz

    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name (e.g. {out / 'data.npz'})")
    ds = generators.make(args.generator, **_generator_params(args.generator, args.set))
    _make_parent(out)
    path = save_npz(ds, out)
    print(
        f"wrote {path}: {len(ds.train)} train / {len(ds.test)} test pairs, tasks {list(ds.tasks)}"
    )
    print(f"fingerprint {generators.fingerprint(ds)} (save it with embeddings for pid-bench score)")
    return 0


def _make_parent(path: Path) -> None:
    """Create `path`'s folder, or a one-line error saying why it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create the folder of {path}: {e.strerror or e}") from None


def _pid_line(label: str, r) -> str:
    return (
        f"{label:<22} R={r.redundancy:7.4f}  U1={r.unique1:7.4f}  U2={r.unique2:7.4f}  "
        f"S={r.synergy:7.4f}  I={r.mutual_info:7.4f}"
    )


#: `estimate` options that belong to one of its two modes (the other ignores them).
_GENERATOR_MODE = ("generator", "set", "task", "split", "clusters", "estimator")


def cmd_estimate(args: argparse.Namespace) -> int:
    import estimators

    if args.joint:
        given = [f"--{k}" for k in _GENERATOR_MODE if getattr(args, k) is not None]
        if given:
            raise ValueError(
                f"--joint estimates a saved joint; {', '.join(given)} belong to estimating from "
                "a generator's samples: drop them, or drop --joint"
            )
        p = _load_joint(Path(args.joint))
        measure = args.measure or "broja"
        print(f"exact PID of {args.joint} ({'x'.join(map(str, p.shape))}), bits:")
        print(_pid_line(measure, estimators.pid(p, measure=measure)))
        return 0
    if args.measure is not None:
        raise ValueError(
            "--measure applies to --joint (the exact PID of a saved joint); estimates from a "
            "generator's samples use the clustered BROJA estimator"
        )
    import generators

    args.generator = args.generator or "bits"
    args.task = args.task or "all"
    args.split = args.split or "train"
    args.clusters = 64 if args.clusters is None else args.clusters
    params = _generator_params(args.generator, args.set)
    ds = generators.make(args.generator, **params)
    tasks = [args.task] if args.task != "all" else list(ds.tasks)
    for t in tasks:
        if t not in ds.tasks:
            raise ValueError(f"unknown task {t!r}; accepted: {', '.join(ds.tasks)}, all")
    split = ds.test if args.split == "test" else ds.train
    name = args.estimator or "clustered"
    estimators.get_estimator(name)  # unknown names: the registry's error, listing them
    if name == "gaussian":
        return _estimate_gaussian(args, ds, split)
    if name == "batch":
        return _estimate_batch(args, ds, tasks)
    if name != "clustered":
        raise ValueError(
            f"--estimator {name} does not estimate from a generator's samples; accepted: "
            "clustered, batch, gaussian (discrete: use --joint)"
        )
    print(f"{args.generator} ({len(split)} {args.split} samples), PID in bits")
    for t in tasks:
        y = split.labels[t]
        est = estimators.ClusteredPID(n_clusters=args.clusters, random_state=0).fit(
            split.x1.reshape(len(split), -1), split.x2.reshape(len(split), -1), y
        )
        print(f"task {t}:")
        print(_pid_line("  true (latent, exact)", ds.true_pid[t]))
        flag = f"  small sample: {est.samples_per_cell_:.1f}/cell" if est.small_sample_ else ""
        print(_pid_line(f"  clustered (k={args.clusters})", est.pid_) + flag)
    return 0


def _estimate_batch(args: argparse.Namespace, ds, tasks: list[str]) -> int:
    """BATCH per task: trained on the train split, estimated on the test split."""
    import estimators

    tr, te = ds.train, ds.test
    print(f"{args.generator}: BATCH trained on {len(tr)} train pairs, estimated on {len(te)} test")
    for t in tasks:
        est = estimators.BatchPID(random_state=0, device=args.device).fit(
            tr.x1.reshape(len(tr), -1),
            tr.x2.reshape(len(tr), -1),
            tr.labels[t],
            held_out=(te.x1.reshape(len(te), -1), te.x2.reshape(len(te), -1), te.labels[t]),
        )
        r = est.pid_
        print(f"task {t}:")
        print(_pid_line("  true (latent, exact)", ds.true_pid[t]))
        acc = f"  acc {r.accuracy1:.3f}/{r.accuracy2:.3f}/{r.accuracy12:.3f}, {r.seconds:.1f} s"
        print(_pid_line("  batch", r) + acc)
    return 0


def _estimate_gaussian(args: argparse.Namespace, ds, split) -> int:
    """Gaussian PID of (x1, x2; z_f) for every latent factor of the split."""
    import estimators

    if not split.latents:
        raise ValueError(f"{args.generator} records no latents; --estimator gaussian needs them")
    n = len(split)
    print(
        f"{args.generator} ({n} {args.split} samples): Gaussian PID of (x1, x2; latent factor), "
        "bits"
    )
    for f, z in split.latents.items():
        est = estimators.GaussianPID().fit(
            np.asarray(z, dtype=float).reshape(n, -1),
            split.x1.reshape(n, -1),
            split.x2.reshape(n, -1),
        )
        print(f"factor {f}:")
        if f in ds.latent_gaussian_pid:
            print(_pid_line("  true (Gaussian, exact)", ds.latent_gaussian_pid[f]))
        print(_pid_line("  gaussian (samples)", est.pid_))
    return 0


def _load_joint(path: Path) -> np.ndarray:
    """The array of a `.npy` file, or a one-line error saying what is accepted."""
    accepted = "a .npy file holding one array p[x1, x2, y] (numpy.save(path, p))"
    if not path.is_file():
        raise ValueError(f"no such file: {path} (expected {accepted})")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        kind = "a .npz archive" if magic[:2] == b"PK" else "not a .npy file"
        raise ValueError(f"{path} is {kind}; --joint takes {accepted}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        reason = "it holds Python objects" if "pickle" in str(e) else str(e)
        raise ValueError(
            f"{path} cannot be read as a numeric array ({reason}); {accepted}"
        ) from None


def _learner_params(items: list[str] | None) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--learner-set expects LEARNER.KEY=VALUE, got {item!r}")
    for key, value in _kv(items, "--learner-set").items():
        name, param = key.split(".", 1)
        out.setdefault(name, {})[param] = value
    return out


def _run_config(args: argparse.Namespace, generator_params: dict, sweep=None):
    """The RunConfig of `run`/`sweep` arguments (validated before anything trains)."""
    from pid_bench.runner import resolve_config

    data = getattr(args, "data", None)
    return resolve_config(
        data=data,
        generator=args.generator,
        generator_params=generator_params,
        learners=args.learners,
        seeds=args.seeds,
        interaction=args.interaction,
        profile=args.profile,
        train_overrides={
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "device": args.device,
            "probe_every": args.probe_every,
            "threads": args.threads,
        },
        probe_overrides={"mlp": False} if args.no_mlp else None,
        learner_params=_learner_params(args.learner_set),
        settings=_kv(args.config_set, "--config-set"),
        sweep=sweep,
        # with Ray the cells train on the cluster's devices, which this machine may lack
        device_here=args.executor == "local",
    )


def _executor_args(args: argparse.Namespace) -> dict:
    """The executor options of `run`/`sweep` (checked by `executors.make_executor`)."""
    return {
        "jobs": 1 if args.jobs is None else args.jobs,
        "executor": _make_executor(args),
    }


def _make_executor(args: argparse.Namespace):
    from pid_bench.executors import make_executor

    return make_executor(
        args.executor, jobs=args.jobs, address=args.address, retries=args.retries, quiet=args.quiet
    )


def cmd_run(args: argparse.Namespace) -> int:
    from pid_bench.runner import run
    from pid_bench.summary import format_floor_ceiling, format_summary, report_pointer

    params = _generator_params(args.generator, args.set) if not args.data else _kv(args.set)
    cfg = _run_config(args, params)
    df, out = run(
        cfg,
        args.out,
        **_executor_args(args),
        quiet=args.quiet,
        force=args.force,
        save_embeddings=args.save_embeddings,
    )
    print(format_summary(df, cfg.learners, plugins=cfg.plugins))
    print(format_floor_ceiling(df, cfg))
    print(f"results: {out / 'results.csv'}")
    if args.save_embeddings:
        print(f"embeddings: {out / 'embeddings'} (pid-bench score reads them)")
    print(report_pointer(out))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from pid_bench.runner import score
    from pid_bench.summary import format_summary, report_pointer

    df, out = score(
        args.data,
        args.embeddings,
        args.name,
        seed=args.seed,
        interaction=args.interaction,
        profile=args.profile,
        probe_overrides={"mlp": False} if args.no_mlp else None,
        settings=_kv(args.config_set, "--config-set"),
        out=args.out,
        force=args.force,
    )
    print(format_summary(df, (args.name,)))
    print(f"results: {out / 'results.csv'}")
    print(report_pointer(out))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import generators
    from pid_bench.runner import run_grid
    from pid_bench.summary import format_floor_ceiling, format_summary

    base = _generator_params(args.generator, args.set)
    root = Path(args.out) if args.out else Path("runs") / f"sweep-{args.generator}-{args.param}"
    configs = []
    for v in args.values:
        params = {**base, **generators.coerce_params(args.generator, {args.param: v})}
        # make the dataset once here so a value the generator rejects fails before any training
        generators.make(args.generator, **{**params, "n_train": 1, "n_test": 1})
        configs.append((v, _run_config(args, params, sweep=(args.param, str(v)))))
    # one grid: every value's cells go to the executor together (no idle workers between
    # values); each value still gets its own run folder, resumable on its own
    runs = [(cfg, root / f"{args.param}={v}") for v, cfg in configs]
    tables = run_grid(runs, **_executor_args(args), quiet=args.quiet, force=args.force)
    for (v, cfg), (df, _) in zip(configs, tables, strict=True):
        print(f"\n{args.param} = {v}")
        print(format_summary(df, cfg.learners, plugins=cfg.plugins))
        print(format_floor_ceiling(df, cfg))
    print(
        f"sweep folders under {root}; figures and full tables: pid-bench report {root}/* "
        "--out DIR (a folder outside it)"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import generators
    from pid_bench.show import show_dataset

    ds = generators.make(args.generator, **_generator_params(args.generator, args.set))
    path = show_dataset(ds, args.out, n=args.n, split=args.split)
    print(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pid_bench.report import make_report

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; report writes a folder of figures and tables")
    paths = make_report(args.run_dirs, out)
    for p in paths:
        print(f"wrote {p}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from pid_bench.check import baseline_from_runs

    if Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a folder; give the baseline's file name")
    _make_parent(Path(args.out))
    print(f"wrote baseline {baseline_from_runs(args.run_dirs, args.out)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from pid_bench.check import check_runs

    report = check_runs(
        args.run_dirs,
        args.baseline,
        tolerance=args.tolerance,
        sigma=args.sigma,
        metrics=tuple(args.metrics),
        probes=("linear",),
        floor_margin=args.floor_margin,
    )
    print(report.format_table())
    return report.exit_code


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from pid_bench.config import PROFILES
    from pid_bench.runner import INTERACTIONS

    p.add_argument(
        "--interaction",
        default="synergy",
        choices=list(INTERACTIONS),
        help="which tasks to score (uniqueness = unique1 + unique2; default synergy)",
    )
    p.add_argument(
        "--generator", default="content_style", help="dataset generator (see pid-bench list)"
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="generator parameter, repeatable (e.g. --set noise=0.2)",
    )
    p.add_argument(
        "--learners",
        nargs="+",
        metavar="NAME",
        help="learners (default: all built-ins): names from pid-bench list, or a Learner class "
        "of your own as module.path:Class or path/to/file.py:Class",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=_int_at_least(0),
        metavar="S",
        help="repetition seeds, integers >= 0 (default: the profile's)",
    )
    p.add_argument(
        "--epochs", type=_int_at_least(1), help="training epochs (default: the profile's)"
    )
    p.add_argument("--batch-size", type=_int_at_least(2))
    p.add_argument("--lr", type=_positive_float)
    p.add_argument(
        "--probe-every",
        type=_int_at_least(0),
        metavar="K",
        help="also probe every K epochs (learning curves)",
    )
    p.add_argument(
        "--profile",
        default="quick",
        choices=list(PROFILES),
        help="bundle of settings (README, Profiles): quick (default), ci, paper (the CoMM "
        "paper's tables at CPU scale: Trifeature at 32 x 32 pixels, our CNN, width 64, 30 "
        "epochs), published (CoMM's published Trifeature protocol at GPU scale: 224 x 224, "
        "AlexNet, width 512, 100 epochs, batch 64; --generator trifeature only)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--jobs",
        type=_int_at_least(1),
        help="grid cells run side by side in local processes (default 1); the numbers do not "
        "depend on it",
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray"],
        help="where the grid's cells run: local (--jobs processes of this machine, the "
        'default) or ray (a Ray cluster; pip install "pid-bench[ray]"); the numbers do not '
        "depend on it",
    )
    p.add_argument(
        "--address",
        metavar="auto|ray://HOST:PORT",
        help="with --executor ray: the cluster to join (auto: the one `ray start --head` "
        "started here); default: start a local one on this machine's cores",
    )
    p.add_argument(
        "--retries",
        type=_int_at_least(0),
        metavar="N",
        help="with --executor ray: times a cell whose worker died (killed, out of memory, "
        "node lost) is run again before it is reported failed (default 2)",
    )
    p.add_argument(
        "--threads",
        type=_int_at_least(1),
        help="CPU threads per grid cell (default 1; recorded in config.json: float sums, and "
        "so the numbers, depend on it). Use --jobs to use more cores",
    )
    p.add_argument(
        "--learner-set",
        action="append",
        metavar="LEARNER.KEY=VALUE",
        help="learner hyperparameter, repeatable (e.g. comm.fused_term=false)",
    )
    p.add_argument(
        "--config-set",
        action="append",
        metavar="SECTION.FIELD=VALUE",
        help="any train/model/aug/probe setting, repeatable "
        "(e.g. model.cnn_width=16, aug.image.crop_scale=0.2,1); recorded in config.json",
    )
    p.add_argument("--no-mlp", action="store_true", help="skip the MLP probe")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--force",
        action="store_true",
        help="start over in --out, clearing its results, cell files and logs (without it, a "
        "run of the same config there is resumed, and one of another config is refused)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    from pid_bench.config import PROFILES
    from pid_bench.runner import INTERACTIONS

    parser = _Parser(
        prog="pid-bench",
        description="Benchmark which multimodal interactions (redundancy, uniqueness, synergy) "
        "a learned representation captures.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list generators, estimators, learners, probes")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("generate", help="write a generated dataset to an .npz file")
    p.add_argument("--generator", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="generator parameter")
    p.add_argument("--out", required=True, help="output .npz path")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("estimate", help="PID: true vs clustered estimate, or of a saved joint")
    p.add_argument("--generator", help="generator to sample (default bits)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="generator parameter")
    p.add_argument("--task", help="redundancy|unique1|unique2|synergy|all (default all)")
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
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("run", help="train learners and probe what they capture")
    _add_train_args(p)
    p.add_argument(
        "--data",
        metavar="FILE.npz",
        help="train and probe on this dataset file (pid-bench generate) for every seed, "
        "instead of generating data",
    )
    p.add_argument(
        "--save-embeddings",
        action="store_true",
        help="also write each model's final embeddings to RUN/embeddings/ (pid-bench score "
        "reads them)",
    )
    p.add_argument("--out", help="run folder (default runs/<run_id>)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "score", help="probe embeddings computed elsewhere: an ordinary run folder, no training"
    )
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
    p.add_argument(
        "--interaction",
        default="all",
        choices=list(INTERACTIONS),
        help="tasks to score (default all)",
    )
    p.add_argument("--profile", default="quick", choices=list(PROFILES), help="probe settings")
    p.add_argument("--no-mlp", action="store_true", help="skip the MLP probe")
    p.add_argument(
        "--config-set",
        action="append",
        metavar="probe.FIELD=VALUE",
        help="probe setting, repeatable (e.g. probe.max_train=2000)",
    )
    p.add_argument("--force", action="store_true", help="overwrite results in --out")
    p.add_argument("--out", help="run folder (default runs/<run_id>)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("sweep", help="one run per value of a generator parameter")
    _add_train_args(p)
    p.add_argument("--param", required=True, help="generator parameter to sweep")
    p.add_argument("--values", nargs="+", required=True, help="values of the parameter")
    p.add_argument("--out", help="folder holding one run folder per value")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "show",
        help="draw sample pairs of an image generator, or how a vector generator's synergy "
        "factors co-occur in each split",
    )
    p.add_argument("--generator", default="trifeature")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="generator parameter")
    p.add_argument("--n", type=_int_at_least(1), default=8, help="number of pairs")
    p.add_argument(
        "--split",
        default="test",
        help="train, test, or a task with a pretraining split (e.g. synergy); default test",
    )
    p.add_argument("--out", required=True, help="output PNG")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("report", help="figures and summary from run folders")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("baseline", help="write a regression baseline from run folders")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", required=True, help="baseline JSON path")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("check", help="compare runs to a baseline: exit 0 pass, 1 regression")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
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
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `pid-bench` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
