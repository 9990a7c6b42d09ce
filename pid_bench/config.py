"""Frozen configuration dataclasses and the named profiles.

The fully resolved config of a run is written next to its results (`config.json`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: Values of `ModelConfig.image_encoder`.
IMAGE_ENCODERS: tuple[str, ...] = ("cnn", "alexnet")
#: Values of `ModelConfig.fusion_activation`, `fusion_init` and `head`.
FUSION_ACTIVATIONS: tuple[str, ...] = ("relu", "quick_gelu")
FUSION_INITS: tuple[str, ...] = ("torch", "comm")
HEADS: tuple[str, ...] = ("mlp2", "comm_bn")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture shared by all learners (encoders, fusion, heads).

    `image_encoder`: `cnn`, a small conv net (`CNNEncoder`, width `cnn_width`, 4 x 4 tokens),
    or `alexnet`, the AlexNet trunk of CoMM's Trifeature experiments (`AlexNetEncoder`, one
    token per cell of its feature map: 6 x 6 at 224 x 224 pixels; images of at least 63
    pixels; `d_model` divisible by 4).
    """

    d_model: int = 64  # token width and representation width
    n_tokens: int = 4  # tokens per vector modality
    hidden: int = 256  # hidden width of vector encoders
    proj_dim: int = 64  # output of projection heads used only inside losses
    fusion_layers: int = 1
    fusion_heads: int = 4
    temperature: float = 0.1
    cnn_width: int = 32  # channel width of the image encoder
    image_encoder: str = "cnn"
    # Options that let the fusion and heads take the architecture of CoMM's released code
    # (Duplums/CoMM, tests/test_fidelity_comm.py); the defaults are this suite's own modules.
    fusion_ff_mult: int = 2  # fusion MLP width / d_model (authors: 4)
    fusion_activation: str = "relu"  # fusion MLP activation: relu | quick_gelu (authors)
    # fusion initialisation: torch (nn.TransformerEncoderLayer's, CLS token std 0.02) | comm
    # (the authors': normal weights of std d^-1/2 scaled by depth, CLS token std 1)
    fusion_init: str = "torch"
    modality_embedding: bool = True  # a learned embedding per modality (authors: none)
    # projection heads: mlp2 (Linear-ReLU-Linear) | comm_bn (the authors' 3-layer head,
    # Linear-BN-ReLU-Linear-BN-ReLU-Linear)
    head: str = "mlp2"
    head_hidden: int | None = None  # hidden width of projection heads; None = d_model

    def __post_init__(self) -> None:
        if self.fusion_ff_mult < 1:
            raise ValueError(
                f"ModelConfig.fusion_ff_mult must be a positive int, got {self.fusion_ff_mult}"
            )
        for name, accepted in (
            ("image_encoder", IMAGE_ENCODERS),
            ("fusion_activation", FUSION_ACTIVATIONS),
            ("fusion_init", FUSION_INITS),
            ("head", HEADS),
        ):
            value = getattr(self, name)
            if value not in accepted:
                raise ValueError(
                    f"ModelConfig.{name} must be one of {', '.join(accepted)}, got {value!r}"
                )
        if self.head_hidden is not None and self.head_hidden < 1:
            raise ValueError(
                f"ModelConfig.head_hidden must be a positive int or None, got {self.head_hidden}"
            )


@dataclass(frozen=True)
class ImageAugConfig:
    """Image augmentation parameters (defaults: CoMM / SimCLR).

    Turn a component off with its probability (`crop_p`, `flip_p`, `jitter_p`, `grayscale_p`,
    `blur_p`) set to 0, or everything with `enabled=False`. `blur_sigma` is in pixels of an
    image of `blur_reference_size` pixels and scales with the actual image size (so a 32 x 32
    image is blurred as much, relative to its size, as a 224 x 224 one); None takes it in pixels
    as given.
    """

    enabled: bool = True
    crop_p: float = 1.0
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_reference_size: int | None = 224

    def __post_init__(self) -> None:
        for name in ("crop_p", "flip_p", "jitter_p", "grayscale_p", "blur_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"ImageAugConfig.{name} is a probability in [0, 1], got {v}")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"ImageAugConfig.crop_scale needs 0 < low <= high <= 1, got {lo, hi}")
        lo, hi = self.crop_ratio
        if not 0.0 < lo <= hi:
            raise ValueError(f"ImageAugConfig.crop_ratio needs 0 < low <= high, got {lo, hi}")
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"ImageAugConfig.{name} must be in [0, 1), got {v}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"ImageAugConfig.hue must be in [0, 0.5], got {self.hue}")
        lo, hi = self.blur_sigma
        if not 0.0 < lo <= hi:
            raise ValueError(f"ImageAugConfig.blur_sigma needs 0 < low <= high, got {lo, hi}")
        if self.blur_reference_size is not None and self.blur_reference_size < 1:
            raise ValueError(
                "ImageAugConfig.blur_reference_size must be a positive size or None, "
                f"got {self.blur_reference_size}"
            )


#: Values of `AugConfig.views`.
VIEW_MODES: tuple[str, ...] = ("auto", "generator", "tensor")


@dataclass(frozen=True)
class AugConfig:
    """Augmentations. `views`: `generator` draws each view from the dataset's generative
    process (same content, new style; generators with a view source, e.g. `content_style`),
    `tensor` augments the tensors (vectors: Gaussian noise and random masking of entries;
    images: the `image` recipe), `auto` (the default) is `generator` where the dataset has a
    view source and `tensor` otherwise. A run's config records the resolved choice."""

    views: str = "auto"
    noise_std: float = 0.1
    mask_min: float = 0.0  # fraction of entries dropped, drawn uniformly per sample
    mask_max: float = 0.5
    image: ImageAugConfig = ImageAugConfig()  # for image modalities

    def __post_init__(self) -> None:
        if self.views not in VIEW_MODES:
            raise ValueError(
                f"AugConfig.views must be one of {', '.join(VIEW_MODES)}, got {self.views!r}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """The one training loop's settings."""

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    probe_every: int = 0  # probe every k epochs for learning curves; 0 = final only
    device: str = "auto"
    # CPU threads of each grid cell (torch, BLAS, OpenMP). Float sums depend on the thread
    # count, so this, not --jobs, is part of what determines the numbers.
    threads: int = 1


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
    # BATCH neural PID of the unimodal embeddings next to the clustered one (probe
    # "pid_batch"); ~10-20 s per task on 2 CPU cores, so off in quick/ci and on in paper
    # (`--config-set probe.pid_batch=true` turns it on anywhere).
    pid_batch: bool = False


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
    # Per-generator settings on top of the above, as dotted paths (see `apply_settings`):
    # image data needs other training settings than vectors.
    generator_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The generators the profile is defined for (a run on another is refused); empty: all.
    only_generators: tuple[str, ...] = ()


#: Image settings every profile applies to `trifeature`: smaller batches (more steps per epoch on
#: a CPU budget) and random resized crops of at least 30% of the image instead of SimCLR's 8%,
#: which at 32 x 32 pixels often crops the shape away (Cross's shape accuracy after 10 epochs:
#: 0.58 with 8%, 0.71 with 30% and batch 128; reports/trifeature/README.md).
TRIFEATURE_SETTINGS: dict[str, Any] = {
    "train.batch_size": 128,
    "aug.image.crop_scale": (0.3, 1.0),
}

PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        generator_params={
            "bits": {"n_train": 6000, "n_test": 2000},
            "content_style": {"n_train": 6000, "n_test": 2000},
            "gaussian": {"n_train": 6000, "n_test": 2000},
            "trifeature": {"n_train": 4000, "n_test": 2000, "size": 32},
        },
        # Batch 128: twice the optimiser steps of batch 256 for the same FLOPs. On `bits`
        # synergy (seeds 0-2) CoMM reads 0.617 at batch 128 against 0.529 at 256, its untrained
        # architecture 0.380 either way (README, "Reading synergy results").
        train=TrainConfig(epochs=20, batch_size=128),
        probe=ProbeConfig(max_train=4000, mlp_max_iter=150),
        seeds=(0,),
        generator_settings={"trifeature": TRIFEATURE_SETTINGS},
    ),
    # small and fast: the project's own CI regression check against reports/ci/baseline.json
    "ci": Profile(
        name="ci",
        generator_params={
            "bits": {"n_train": 3000, "n_test": 1000},
            # the quick profile's data and steps: CoMM's loss sits on a plateau for its first
            # ~400 steps on content_style (reports/content_style_curves), so at 15 epochs of
            # 3,000 pairs in batches of 256 (165 steps) the baseline would hold it at its floor
            "content_style": {"n_train": 6000, "n_test": 2000},
            "gaussian": {"n_train": 3000, "n_test": 1000},
            "trifeature": {"n_train": 1000, "n_test": 500, "size": 32},
        },
        train=TrainConfig(epochs=15, batch_size=256),
        probe=ProbeConfig(max_train=3000, mlp=False),
        seeds=(0,),
        generator_settings={
            "trifeature": TRIFEATURE_SETTINGS,
            "content_style": {"train.epochs": 20, "train.batch_size": 128},
        },
    ),
    # wider models (CoMM's fusion width is 512 in the paper) and longer training, 3 seeds
    "paper": Profile(
        name="paper",
        generator_params={
            "bits": {"n_train": 8000, "n_test": 4000},
            "content_style": {"n_train": 8000, "n_test": 4000},
            "gaussian": {"n_train": 8000, "n_test": 4000},
            "trifeature": {"n_train": 10000, "n_test": 4096, "size": 32},
        },
        train=TrainConfig(epochs=30, batch_size=256),
        model=ModelConfig(d_model=256, proj_dim=128, fusion_heads=8),
        probe=ProbeConfig(max_train=8000, mlp_max_iter=300, pid_batch=True),
        seeds=(0, 1, 2),
        # The quick-profile width, 30 passes over the paper's 10,000 pairs (at 10, every
        # learner's loss was still falling and CoMM's redundancy sat 16 points below the
        # paper's), linear probe only (as the paper reports). Cross, Cross+Self, FactorCL and
        # CoMM x 3 seeds take about 2 h on 2 CPU cores (reports/trifeature/README.md).
        generator_settings={
            "trifeature": {
                **TRIFEATURE_SETTINGS,
                "train.epochs": 30,
                "model.d_model": 64,
                "model.proj_dim": 64,
                "model.fusion_heads": 4,
                "probe.mlp": False,
            }
        },
    ),
    # The published Trifeature protocol (CoMM, Dufumier et al., ICLR 2025: main_trifeatures.py,
    # configs/train_trifeatures.yaml, configs/model/comm.yaml and configs/data/trifeatures.yaml
    # of Duplums/CoMM) for a user with a GPU: 224 x 224 images with the authors' texture period
    # (generators.trifeature.AUTHORS_TEXTURE_PERIOD: 10 pixels, as in theirs), their AlexNet
    # encoder (36 tokens of width 512), a 1-layer 8-head fusion, heads 512 -> 512 -> 256,
    # temperature 0.1, AdamW lr 3e-4 and weight decay 1e-4 without a schedule, batch 64, 100
    # epochs, SimCLR crops of 8-100% of the image, 10,000 training and 4,096 test pairs, 3
    # seeds, a linear probe on all 10,000 training pairs. 1,046 GFLOP per CoMM training step,
    # 16.3 PFLOP per 100-epoch model: minutes on one H100; the 224-pixel images take 29 GB of
    # host memory per seed (README, "Profiles"). Trifeature only: the protocol has no vector
    # counterpart, and a run on another generator is refused rather than guessed.
    #
    # The authors' fusion and head (options from issue 27's fidelity work; reports/fidelity):
    # MLP 4 x width with QuickGELU, their initialisation, no modality embedding, and the
    # Linear-BN-ReLU-Linear-BN-ReLU-Linear head 512 -> 512 -> 256. head_hidden=512 is CoMM's;
    # the authors' Cross+Self heads are 256 -> 1024 -> 256 and its cross term differs too: add
    # --config-set model.head_hidden=1024 and --learner-set cross_self.cross_loss=nt_xent
    # cross_self.cross_heads=true cross_self.cross_views=clean for their Cross+Self, in a run
    # of its own (a profile has no per-learner settings).
    "published": Profile(
        name="published",
        generator_params={
            "trifeature": {
                "n_train": 10000,
                "n_test": 4096,
                "size": 224,
                "texture_period": 10 / 112,  # generators.trifeature.AUTHORS_TEXTURE_PERIOD
            },
        },
        train=TrainConfig(epochs=100, batch_size=64, lr=3e-4, weight_decay=1e-4),
        model=ModelConfig(
            d_model=512,
            proj_dim=256,
            fusion_layers=1,
            fusion_heads=8,
            temperature=0.1,
            image_encoder="alexnet",
            fusion_ff_mult=4,
            fusion_activation="quick_gelu",
            fusion_init="comm",
            modality_embedding=False,
            head="comm_bn",
            head_hidden=512,
        ),
        aug=AugConfig(image=ImageAugConfig(crop_scale=(0.08, 1.0))),
        probe=ProbeConfig(max_train=10000, mlp=False),
        seeds=(0, 1, 2),
        only_generators=("trifeature",),
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


_SECTIONS = ("train", "model", "aug", "probe")


def coerce_value(value: Any, default: Any, variadic: bool = False) -> Any:
    """`value` (a CLI string or a Python value) converted to the type of `default`; a
    `variadic` tuple takes any length. A ValueError's message names what is accepted ("int",
    "2 comma-separated numbers"), for the caller to put in context."""
    kind = type(default).__name__
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text in ("true", "1", "yes")
        if isinstance(default, tuple):
            kind = "comma-separated numbers"
            items = value.split(",") if isinstance(value, str) else list(value)
            if not variadic and default and len(items) != len(default):
                kind = f"{len(default)} comma-separated numbers"
                raise ValueError
            elem = type(default[0]) if default else float
            out = tuple(elem(v) for v in items)
            if not all(math.isfinite(v) for v in out):
                kind = "finite comma-separated numbers"
                raise ValueError
            return out
        if default is None:  # an optional int set to None before ("none" is handled by callers)
            kind = "int"
            return int(value)
        if isinstance(default, int) and isinstance(value, float) and not value.is_integer():
            raise ValueError
        out = type(default)(value)
        if isinstance(out, float) and not math.isfinite(out):
            kind = "a finite float"  # NaN or inf: no setting means it
            raise ValueError
        return out
    except (TypeError, ValueError):
        raise ValueError(kind) from None


def _is_none(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() == "none")


def _field_type(obj: Any, name: str) -> Any:
    return next(f.type for f in fields(obj) if f.name == name)


def _set_one(obj: Any, keys: list[str], value: Any, path: str) -> Any:
    names = {f.name for f in fields(obj)}
    key = keys[0]
    if key not in names:
        raise ValueError(
            f"unknown setting {path!r}: {type(obj).__name__} has no field {key!r}; "
            f"accepted: {', '.join(sorted(names))}"
        )
    current = getattr(obj, key)
    if hasattr(current, "__dataclass_fields__"):
        if len(keys) == 1:
            raise ValueError(f"setting {path!r} names a section; give one of its fields")
        new = _set_one(current, keys[1:], value, path)
    elif len(keys) > 1:
        raise ValueError(f"unknown setting {path!r}: {key!r} has no fields")
    elif _is_none(value) and "None" in str(_field_type(obj, key)):
        new = None
    else:
        try:
            new = coerce_value(value, current, variadic="..." in str(_field_type(obj, key)))
        except ValueError as e:
            raise ValueError(f"setting {path} takes {e}, got {value!r}") from None
    try:
        return replace(obj, **{key: new})
    except ValueError as e:  # the dataclass's own range checks
        raise ValueError(f"setting {path}={value!r}: {e}") from None


def apply_settings(sections: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Configs `sections` ({"train": TrainConfig, "model": ..., "aug": ..., "probe": ...}) with
    dotted-path `settings` applied, e.g. {"model.cnn_width": "16", "aug.image.crop_scale":
    "0.2,1"}. Values are coerced to the type of the field they replace; a wrong path or value is
    a ValueError that lists what is accepted."""
    out = dict(sections)
    for path, value in settings.items():
        keys = path.split(".")
        if keys[0] not in out or len(keys) < 2:
            raise ValueError(
                f"unknown setting {path!r}; settings are SECTION.FIELD with SECTION one of "
                f"{', '.join(_SECTIONS)} (e.g. train.epochs=40, aug.image.crop_scale=0.2,1)"
            )
        out[keys[0]] = _set_one(out[keys[0]], keys[1:], value, path)
    return out
