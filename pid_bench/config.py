"""Frozen configuration dataclasses and the named profiles.

The fully resolved config of a run is written next to its results (`config.json`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Architecture shared by all learners (encoders, fusion, heads)."""

    d_model: int = 64  # token width and representation width
    n_tokens: int = 4  # tokens per vector modality
    hidden: int = 256  # hidden width of vector encoders
    proj_dim: int = 64  # output of projection heads used only inside losses
    fusion_layers: int = 1
    fusion_heads: int = 4
    temperature: float = 0.1
    cnn_width: int = 32  # channel width of the image encoder


@dataclass(frozen=True)
class AugConfig:
    """Vector augmentations: Gaussian noise and random masking of entries."""

    noise_std: float = 0.1
    mask_min: float = 0.0  # fraction of entries dropped, drawn uniformly per sample
    mask_max: float = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """The one training loop's settings."""

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    probe_every: int = 0  # probe every k epochs for learning curves; 0 = final only
    device: str = "auto"


@dataclass(frozen=True)
class ProbeConfig:
    """Frozen-embedding probes."""

    max_train: int = 6000  # probe training samples (subsampled from the train split)
    val_fraction: float = 0.2  # of the probe training set, used to choose C
    c_grid: tuple[float, ...] = (0.01, 0.1, 1.0)
    mlp: bool = True
    mlp_hidden: int = 128
    mlp_max_iter: int = 200
    pid_clusters: int = 10


@dataclass(frozen=True)
class Profile:
    """A named bundle of defaults: generator parameters per generator plus training settings."""

    name: str
    generator_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    train: TrainConfig = TrainConfig()
    model: ModelConfig = ModelConfig()
    aug: AugConfig = AugConfig()
    probe: ProbeConfig = ProbeConfig()
    seeds: tuple[int, ...] = (0,)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        generator_params={
            "bits": {"n_train": 6000, "n_test": 2000},
            "gaussian": {"n_train": 6000, "n_test": 2000},
            "trifeature": {"n_train": 4000, "n_test": 2000, "size": 32},
        },
        train=TrainConfig(epochs=20, batch_size=256),
        probe=ProbeConfig(max_train=4000, mlp_max_iter=150),
        seeds=(0,),
    ),
    # small and fast: the project's own CI regression check against reports/ci/baseline.json
    "ci": Profile(
        name="ci",
        generator_params={
            "bits": {"n_train": 3000, "n_test": 1000},
            "gaussian": {"n_train": 3000, "n_test": 1000},
            "trifeature": {"n_train": 1000, "n_test": 500, "size": 32},
        },
        train=TrainConfig(epochs=15, batch_size=256),
        probe=ProbeConfig(max_train=3000, mlp=False),
        seeds=(0,),
    ),
    # wider models (CoMM's fusion width is 512 in the paper) and longer training, 3 seeds
    "paper": Profile(
        name="paper",
        generator_params={
            "bits": {"n_train": 8000, "n_test": 4000},
            "gaussian": {"n_train": 8000, "n_test": 4000},
            "trifeature": {"n_train": 10000, "n_test": 4096, "size": 32},
        },
        train=TrainConfig(epochs=30, batch_size=256),
        model=ModelConfig(d_model=256, proj_dim=128, fusion_heads=8),
        probe=ProbeConfig(max_train=8000, mlp_max_iter=300),
        seeds=(0, 1, 2),
    ),
}


def get_profile(name: str) -> Profile:
    """The named profile; ValueError listing valid names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; available: {', '.join(PROFILES)}") from None


def to_dict(obj: Any) -> Any:
    """JSON-ready form of a (nested) config dataclass."""
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    return obj


def override(cfg: Any, **changes: Any) -> Any:
    """`dataclasses.replace` that ignores None values and rejects unknown fields clearly."""
    names = {f.name for f in fields(cfg)}
    unknown = [k for k in changes if k not in names]
    if unknown:
        raise ValueError(
            f"unknown {type(cfg).__name__} field(s) {unknown}; accepted: {sorted(names)}"
        )
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})
