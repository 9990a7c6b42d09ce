"""Learners: each a torch module with a pure loss function, registered by name."""

from pid_bench.learners import comm, contrastive, factorcl, reference, shared_private  # noqa: F401
from pid_bench.learners.base import LEARNERS, Learner, check_hyperparams, get_learner, register

__all__ = ["LEARNERS", "Learner", "check_hyperparams", "get_learner", "register"]
