"""What each `pid-bench` subcommand does, given its parsed arguments (`pid_bench.cli` defines
the arguments). Each `cmd_<name>(args)` prints its results and returns the exit code; bad
input raises ValueError (or LearnerError), which `cli.main` prints as one line, exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def parse_settings(items: list[str] | None, flag: str = "--set") -> dict[str, str]:
    """`KEY=VALUE` strings of a repeatable flag as a dict (values still strings)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"{flag} expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def parse_generator_params(name: str, items: list[str] | None) -> dict:
    """`--set` values of generator `name`, of the types of its defaults."""
    import generators

    generators.get(name)
    return generators.coerce_params(name, parse_settings(items))


def parse_learner_params(items: list[str] | None) -> dict[str, dict[str, str]]:
    """`--learner-set LEARNER.KEY=VALUE` values as {learner: {key: value}}."""
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--learner-set expects LEARNER.KEY=VALUE, got {item!r}")
    for key, value in parse_settings(items, "--learner-set").items():
        name, param = key.split(".", 1)
        out.setdefault(name, {})[param] = value
    return out


def cmd_list(args: argparse.Namespace) -> int:
    import estimators
    import generators
    from pid_bench.config import PROFILES
    from pid_bench.learners import LEARNERS
    from pid_bench.probes import PROBES
    from pid_bench.runconfig import INTERACTIONS, INTERACTIONS3

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
        three = " [3 modalities]" if 3 in cls.modalities else ""
        print(f"  {name:<15} {doc}{three}" + (f" [--learner-set {name}.{hp}]" if hp else ""))
    _list_plugins(LEARNERS)
    print(f"probes: {', '.join(PROBES)}")
    print(f"interactions: {', '.join(INTERACTIONS)}")
    print(f"interactions, three modalities (--set modalities=3): {', '.join(INTERACTIONS3)}")
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
    ds = generators.make(args.generator, **parse_generator_params(args.generator, args.set))
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
    if args.joint:
        return _estimate_joint(args)
    if args.measure is not None:
        raise ValueError(
            "--measure applies to --joint (the exact PID of a saved joint); estimates from a "
            "generator's samples use the clustered BROJA estimator"
        )
    import estimators
    import generators

    args.generator = args.generator or "bits"
    args.task = args.task or "all"
    args.split = args.split or "train"
    args.clusters = 64 if args.clusters is None else args.clusters
    ds = generators.make(args.generator, **parse_generator_params(args.generator, args.set))
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
    return _estimate_clustered(args, ds, split, tasks)


def _estimate_joint(args: argparse.Namespace) -> int:
    """The exact PID of a saved joint distribution (`--joint`)."""
    import estimators

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


def _estimate_clustered(args: argparse.Namespace, ds, split, tasks: list[str]) -> int:
    """The clustered BROJA estimate per task, beside the true (latent) PID."""
    import estimators

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


def _run_config(args: argparse.Namespace, generator_params: dict, sweep=None):
    """The RunConfig of `run`/`sweep` arguments (validated before anything trains)."""
    from pid_bench.runconfig import resolve_config

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
        learner_params=parse_learner_params(args.learner_set),
        settings=parse_settings(args.config_set, "--config-set"),
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

    if args.data:  # the file holds the generator's parameters (resolve_config refuses --set)
        params = parse_settings(args.set)
    else:
        params = parse_generator_params(args.generator, args.set)
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
    from pid_bench.score import score
    from pid_bench.summary import format_summary, report_pointer

    df, out = score(
        args.data,
        args.embeddings,
        args.name,
        seed=args.seed,
        interaction=args.interaction,
        profile=args.profile,
        probe_overrides={"mlp": False} if args.no_mlp else None,
        settings=parse_settings(args.config_set, "--config-set"),
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

    base = parse_generator_params(args.generator, args.set)
    root = Path(args.out) if args.out else Path("runs") / f"sweep-{args.generator}-{args.param}"
    configs = []
    given: dict[object, str] = {}  # each value as the generator takes it -> as typed
    for v in args.values:
        if not v or any(c.isspace() or not c.isprintable() or c in "/\\" for c in v):
            raise ValueError(
                f"--values {v!r}: each value names its run folder ({args.param}=VALUE), so it "
                "must be one printable word without spaces or slashes"
            )
        params = {**base, **generators.coerce_params(args.generator, {args.param: v})}
        if params[args.param] in given:
            raise ValueError(
                f"--values must be distinct: {given[params[args.param]]!r} and {v!r} both give "
                f"{args.param}={params[args.param]!r}; give each value once"
            )
        given[params[args.param]] = v
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

    ds = generators.make(args.generator, **parse_generator_params(args.generator, args.set))
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
