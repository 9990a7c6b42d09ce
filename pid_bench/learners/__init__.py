"""Learners: each a torch module with a pure loss function, registered by name.

Besides the `Learner` contract, the building blocks of the built-in learners are public, so
that a method of your own can reuse them (`pid_bench/contrib/infmasking.py` is built on
nothing else): `build_encoder` (the token encoder of a modality), `encode_views` (several
views through one encoder), `Fusion` (CoMM's transformer fusion; `MASKS_ALL` its three
modality masks; `Fusion.from_config(model_cfg)` follows the run's fusion options),
`mlp_head` and `projection_head` (the head `model_cfg.head` describes), and the losses
`info_nce`, `nt_xent`, `comm_loss`.
"""

from pid_bench.learners import (  # noqa: F401
    comm,
    contrastive,
    factorcl,
    reference,
    shared_private,
    symile,
)
from pid_bench.learners.base import LEARNERS, Learner, check_hyperparams, register
from pid_bench.learners.comm import MASKS_ALL, Fusion
from pid_bench.learners.encoders import (
    apply_per_chunk,
    build_encoder,
    encode_views,
    mlp_head,
    projection_head,
)
from pid_bench.learners.losses import comm_loss, info_nce, nt_xent
from pid_bench.learners.plugins import get_learner

__all__ = [
    "LEARNERS",
    "MASKS_ALL",
    "Fusion",
    "Learner",
    "apply_per_chunk",
    "build_encoder",
    "check_hyperparams",
    "comm_loss",
    "encode_views",
    "get_learner",
    "info_nce",
    "mlp_head",
    "nt_xent",
    "projection_head",
    "register",
]
