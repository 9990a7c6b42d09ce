"""What a run runs: the resolved config (`RunConfig`) and how flags and profiles make one.

`resolve_config` merges a profile's defaults, its settings for the generator, explicit flags
and dotted `--config-set` settings into one validated, frozen `RunConfig`, which is written
to `config.json` and determines the run's numbers. The first room of the house: it imports
no other module of the run (`cell`, `executors`, `runfolder`, `runner`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import generators
from generators.base import TASKS, TASKS3, VIEW_BUILDERS, BimodalDataset
from generators.io import fingerprint, load_npz
from pid_bench import arguments
from pid_bench.config import (
    PROFILES,
    AugConfig,
    ModelConfig,
    ProbeConfig,
    TrainConfig,
    apply_settings,
    get_profile,
    override,
)
from pid_bench.learners import Learner, check_hyperparams
from pid_bench.learners.plugins import learner_class, resolve
from pid_bench.training import resolve_device

_R, _U1, _U2, _S = TASKS
#: `--interaction` name -> the tasks it scores.
INTERACTIONS: dict[str, tuple[str, ...]] = {
    "redundancy": (_R,),
    "uniqueness": (_U1, _U2),
    "synergy": (_S,),
    "all": TASKS,
}
#: The same with three modalities (`--set modalities=3`): the lattice's tasks, and each synergy
#: task by name (the triple synergy alone: `--interaction synergy123`).
INTERACTIONS3: dict[str, tuple[str, ...]] = {
    "redundancy": ("redundancy",),
    "uniqueness": ("unique1", "unique2", "unique3"),
    "synergy": ("synergy12", "synergy13", "synergy23", "synergy123"),
    "all": TASKS3,
    **{t: (t,) for t in TASKS3 if t.startswith("synergy")},
}
#: Every `--interaction` name, of two or three modalities.
INTERACTION_NAMES: tuple[str, ...] = tuple(dict.fromkeys([*INTERACTIONS, *INTERACTIONS3]))


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's numbers (written to `config.json`)."""

    generator: str = "content_style"
    generator_params: dict[str, Any] = field(default_factory=dict)
    learners: tuple[str, ...] = (
        "comm",
        "cross",
        "cross_self",
        "factorcl",
        "shared_private",
        "supervised",
        "random",
        "random_fusion",
    )
    seeds: tuple[int, ...] = (0,)
    interaction: str = "synergy"
    profile: str = "quick"
    train: TrainConfig = TrainConfig()
    model: ModelConfig = ModelConfig()
    aug: AugConfig = AugConfig()
    probe: ProbeConfig = ProbeConfig()
    learner_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep_param: str = ""
    sweep_value: str = ""
    #: plug-in learner name -> where its class is imported from (`module:Class`, `file.py:Class`)
    plugins: dict[str, str] = field(default_factory=dict)
    #: a dataset file (`pid-bench generate`) used for every seed instead of generating one
    data: str = ""
    #: fingerprint of `data` when the run started (checked wherever the file is read again)
    data_fingerprint: str = ""
    #: embeddings file scored by `pid-bench score` (nothing trained; learners = its name)
    embeddings: str = ""

    @property
    def n_modalities(self) -> int:
        """2, or 3 for a generator run with `modalities=3` (or a three-modality data file)."""
        return int(self.generator_params.get("modalities", 2))

    @property
    def tasks(self) -> tuple[str, ...]:
        return interaction_tasks(self.interaction, self.n_modalities)


def interaction_tasks(name: str, modalities: int = 2) -> tuple[str, ...]:
    """Tasks of an interaction name for data of `modalities` modalities; ValueError listing
    valid names otherwise."""
    table = INTERACTIONS if modalities == 2 else INTERACTIONS3
    try:
        return table[name]
    except KeyError:
        other = " (a three-modality name: use it with --set modalities=3)" * (
            modalities == 2 and name in INTERACTIONS3
        )
        raise ValueError(
            f"unknown interaction {name!r} for {modalities} modalities{other}; accepted: "
            f"{', '.join(table)}"
        ) from None


def resolve_config(
    *,
    generator: str = "content_style",
    generator_params: dict[str, Any] | None = None,
    learners: list[str] | tuple[str, ...] | None = None,
    seeds: list[int] | tuple[int, ...] | None = None,
    interaction: str = "synergy",
    profile: str = "quick",
    train_overrides: dict[str, Any] | None = None,
    probe_overrides: dict[str, Any] | None = None,
    sweep: tuple[str, str] | None = None,
    learner_params: dict[str, dict[str, Any]] | None = None,
    settings: dict[str, Any] | None = None,
    data: str | Path | None = None,
    device_here: bool = True,
) -> RunConfig:
    """Merge profile defaults and user overrides into a validated RunConfig.

    `learners` are built-in names, plug-in entry-point names, or `module:Class` /
    `path/to/file.py:Class` specs; the config holds their names (and `plugins`, where each
    plug-in comes from). With `data` (a dataset file), the generator and its parameters are
    the file's and every seed uses its rows. `device_here=False` checks the device's name
    only, not that this machine has it (cells that run elsewhere: `--executor ray`).
    """
    prof = get_profile(profile)
    interaction_tasks(interaction, 3 if interaction in INTERACTIONS3 else 2)  # a known name
    generator, params, data_fp, file_views = _generator(profile, generator, generator_params, data)
    interaction_tasks(interaction, int(params.get("modalities", 2)))
    _check_profile_generator(profile, generator)
    names, plugins, lp = _learners(learners, learner_params)
    seeds = arguments.seeds(seeds) if seeds is not None else prof.seeds
    # the checks of --epochs etc., at a config's minima (a config may train 0 epochs)
    train_overrides = {
        k: v if v is None else arguments.training(k, v, config=True)
        for k, v in (train_overrides or {}).items()
    }
    # Profile, then the profile's settings for this generator, then explicit flags, then the
    # user's dotted settings: the most specific wins.
    sections = {"train": prof.train, "model": prof.model, "aug": prof.aug, "probe": prof.probe}
    sections = apply_settings(sections, prof.generator_settings.get(generator, {}))
    tr = override(sections["train"], **(train_overrides or {}))
    pr = override(sections["probe"], **(probe_overrides or {}))
    sections = apply_settings({**sections, "train": tr, "probe": pr}, settings or {})
    tr, pr = sections["train"], sections["probe"]
    _check_training(tr, device_here)
    aug = _resolve_views(sections["aug"], generator, file_views)
    sp, sv = sweep if sweep else ("", "")
    return RunConfig(
        generator=generator,
        generator_params=params,
        learners=names,
        seeds=seeds,
        interaction=interaction,
        profile=profile,
        train=tr,
        model=sections["model"],
        aug=aug,
        probe=pr,
        learner_params=lp,
        sweep_param=sp,
        sweep_value=sv,
        plugins=plugins,
        data=str(data) if data else "",
        data_fingerprint=data_fp,
    )


def _generator(
    profile: str,
    generator: str,
    generator_params: dict[str, Any] | None,
    data: str | Path | None,
) -> tuple[str, dict[str, Any], str, bool]:
    """(generator, its parameters, the data file's fingerprint, whether the file has views):
    the dataset file's when `data` is given, else the profile's parameters and the user's."""
    if data:
        if generator_params:
            raise ValueError(
                "--data takes the generator and its parameters from the dataset file; "
                "drop --set (or generate the file with them)"
            )
        ds, data_fp = dataset_file(data)
        return ds.name, dict(ds.params), data_fp, ds.views is not None
    if generator not in generators.GENERATORS:
        generators.get(generator)  # raises with the list of names
    params = dict(get_profile(profile).generator_params.get(generator, {}))
    params.update(generator_params or {})
    unknown = set(params) - set(generators.parameters(generator))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {sorted(unknown)} for generator {generator!r}; accepted: "
            f"{', '.join(generators.parameters(generator))}"
        )
    return generator, params, "", False


def _learners(
    learners: list[str] | tuple[str, ...] | None,
    learner_params: dict[str, dict[str, Any]] | None,
) -> tuple[tuple[str, ...], dict[str, str], dict[str, dict[str, Any]]]:
    """(names, plug-in name -> source, checked hyperparameters per learner) of the specs."""
    specs = tuple(learners) if learners else RunConfig.learners
    resolved = [resolve(spec) for spec in specs]
    names = tuple(name for name, _, _ in resolved)
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        given = [spec for spec, name in zip(specs, names, strict=True) if name in twice]
        raise ValueError(
            f"learners listed twice: {', '.join(twice)} (from {', '.join(given)}); list each "
            "once, or give plug-ins distinct `name` class attributes"
        )
    plugins = {name: source for name, _, source in resolved if source}
    classes = {name: cls for name, cls, _ in resolved}
    lp = {}
    for name, values in (learner_params or {}).items():
        if name not in names:
            raise ValueError(
                f"--learner-set names learner {name!r}, which is not in this run "
                f"(learners: {', '.join(names)})"
            )
        lp[name] = check_hyperparams(classes[name], values, name)
    return names, plugins, lp


def _check_training(tr: TrainConfig, device_here: bool) -> None:
    if tr.epochs < 0 or tr.batch_size < 2 or not tr.lr > 0 or tr.probe_every < 0 or tr.threads < 1:
        raise ValueError(
            "training needs epochs >= 0, batch_size >= 2, lr > 0, probe_every >= 0 and "
            f"threads >= 1, got epochs={tr.epochs}, batch_size={tr.batch_size}, lr={tr.lr}, "
            f"probe_every={tr.probe_every}, threads={tr.threads}"
        )
    if device_here:
        resolve_device(tr.device)
    elif tr.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {tr.device!r}; accepted: auto, cpu, cuda")


def _check_profile_generator(profile: str, generator: str) -> None:
    """ValueError unless profile `profile` is defined for `generator`."""
    only = get_profile(profile).only_generators
    if only and generator not in only:
        others = [name for name, p in PROFILES.items() if not p.only_generators]
        raise ValueError(
            f"profile {profile!r} is defined for generator {' and '.join(only)} only (run it "
            f"with --generator {only[0]}), not for {generator!r}; profiles for "
            f"{generator!r}: {', '.join(others)}"
        )


def _resolve_views(aug: AugConfig, generator: str, file_has_views: bool) -> AugConfig:
    """`aug` with `views` resolved: `auto` -> `generator` where the data have a view source."""
    has = file_has_views or generator in VIEW_BUILDERS
    if aug.views == "generator" and not has:
        with_views = ", ".join(sorted(VIEW_BUILDERS)) or "none"
        raise ValueError(
            f"aug.views=generator: generator {generator!r} draws no views (generators that do: "
            f"{with_views}); use aug.views=tensor or auto"
        )
    if aug.views == "auto":
        return replace(aug, views="generator" if has else "tensor")
    return aug


def learner_cls(cfg: RunConfig, name: str) -> type[Learner]:
    """The class of learner `name` of `cfg` (built-in, or a plug-in from `cfg.plugins`)."""
    return learner_class(name, cfg.plugins.get(name, ""))


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    """JSON-ready resolved config (a `score` run trained nothing: no train/model/aug)."""
    d = asdict(cfg)
    d["tasks"] = list(cfg.tasks)
    if cfg.embeddings:
        d.update(train=None, model=None, aug=None)
    return d


@lru_cache(maxsize=2)
def _dataset_file(path: str, mtime_ns: int) -> tuple[BimodalDataset, str]:
    ds = load_npz(path)
    return ds, fingerprint(ds)


def dataset_file(path: str | Path) -> tuple[BimodalDataset, str]:
    """(dataset, fingerprint) of a file written by `pid-bench generate` (`--data`), cached
    while the file is unchanged; ValueError when there is no such file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such dataset file: {p} (write one with pid-bench generate)")
    return _dataset_file(str(p.resolve()), p.stat().st_mtime_ns)
