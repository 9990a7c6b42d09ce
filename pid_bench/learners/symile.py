"""Symile: contrastive learning of any number of modalities with the multilinear inner product.

Saporta, Puli, Goldstein, Ranganath, "Contrasting with Symile: Simple Model-Agnostic
Representation Learning for Unlimited Modalities", NeurIPS 2024. Where pairwise CLIP scores a
pair of modalities with a dot product, Symile scores a whole tuple with the multilinear inner
product, so that its loss can reward information that only the modalities together carry. The
loss (`losses.symile_loss`) is written from the paper and checked against the authors' package
(`symile` 0.1.0, rajesh-lab/symile; tests/test_symile.py); it is not a dependency.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pid_bench.learners.base import register
from pid_bench.learners.contrastive import _TwoTower
from pid_bench.learners.losses import symile_loss

#: Valid values of `negatives`.
NEGATIVES: tuple[str, ...] = ("n", "n_squared")


@register("symile")
class Symile(_TwoTower):
    """Symile (multilinear inner product contrast of all modalities); representation [z1, z2, z3].

    One pooled encoder per modality, as Cross; each embedding is L2-normalised inside the loss,
    and the logit scale is learned (CLIP's parametrisation, exp of a parameter initialised at
    log(1 / temperature), capped at 100). `negatives` "n" (O(N) negatives per row, the paper's
    default) or "n_squared". Two modalities: with "n_squared" the loss is CLIP's InfoNCE with a
    learned scale; with "n" its negatives are the other modality's rows permuted (one of them
    can be the positive). The probes read the concatenation of the (unnormalised) embeddings,
    as for Cross.
    """

    negatives = "n"
    hyperparams = ("negatives",)
    relative_cost = 1.5

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / self.model_cfg.temperature)))

    def loss(self, x1, x2, y, idx, generator, x3=None):
        if self.negatives not in NEGATIVES:
            raise ValueError(
                f"symile hyperparameter negatives must be one of {', '.join(NEGATIVES)}, "
                f"got {self.negatives!r}"
            )
        views = self.augment(x1, x2, generator, x3=x3)
        z = [F.normalize(e(v), dim=-1) for e, v in zip(self.encoders, views, strict=True)]
        scale = self.log_scale.exp().clamp(max=100.0)
        # the negatives' permutations come from the run's augmentation generator: reproducible
        loss = symile_loss(z, scale, self.negatives, generator)
        return loss, {"symile": float(loss.detach()), "scale": float(scale.detach())}
