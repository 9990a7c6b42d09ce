"""TinyFusion: a small learner of your own, benchmarked by pid-bench.

This file stands for your model's code. It is not part of pid-bench: pid-bench imports it
from outside the package, by path (`--learners examples/my_learner/my_learner.py:TinyFusion`),
by module (`--learners my_learner:TinyFusion` once it is importable) or by the entry point this
folder's pyproject.toml declares (`pip install ./examples/my_learner`, then
`--learners tiny_fusion`). The contract it follows is `pid_bench.learners.Learner`'s docstring.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pid_bench.learners import Learner


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))


class TinyFusion(Learner):
    """Example plug-in: an MLP over both modalities' embeddings, SimCLR loss on two views."""

    # Results are filed under this name, whichever way the class is loaded; every seed is
    # derived from it, so the same name and seed give the same numbers.
    name = "tiny_fusion"
    has_unimodal = True
    hyperparams = ("fused", "temperature")
    #: False hands the probes the concatenation [z1, z2] instead of the fused layer (a planted
    #: regression: a linear probe cannot read synergy from per-modality embeddings side by side)
    fused: bool = True
    temperature: float = 0.2

    def __init__(self, kinds, shapes, model, aug, n_classes=None) -> None:
        super().__init__(kinds, shapes, model, aug, n_classes)
        if kinds != ("vector", "vector"):
            raise ValueError(f"TinyFusion reads two vector modalities, got {kinds}")
        d = model.d_model
        self.enc1 = _mlp(shapes[0][0], 2 * d, d)
        self.enc2 = _mlp(shapes[1][0], 2 * d, d)
        self.fuse = _mlp(2 * d, 2 * d, d)
        self.head = _mlp(d, d, d)

    def embed_unimodal(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        return self.enc1(x1), self.enc2(x2)

    def _fused(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.fuse(torch.cat(self.embed_unimodal(x1, x2), dim=1))

    def embed(self, x1: Tensor, x2: Tensor) -> Tensor:
        if not self.fused:
            return torch.cat(self.embed_unimodal(x1, x2), dim=1)
        return self._fused(x1, x2)

    def loss(self, x1, x2, y, idx, generator):
        # two augmented views of each pair; each view's fused embedding must find its partner
        a = self.head(self._fused(*self.augment(x1, x2, generator)))
        b = self.head(self._fused(*self.augment(x1, x2, generator)))
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        logits = a @ b.T / self.temperature
        target = torch.arange(len(a), device=a.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        return loss, {"nce": float(loss.detach())}
