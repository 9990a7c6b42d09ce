"""Reference learners: supervised late fusion (ceiling) and frozen random encoders (floor)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pid_bench.learners.base import Learner, register
from pid_bench.learners.encoders import PooledEncoder


@register("supervised")
class Supervised(Learner):
    """Late fusion trained on the task label; representation = the fused hidden layer.

    Takes two or three modalities (the fused layer reads all of them).

    The representation is exactly what the linear classifier reads (the last ReLU belongs to
    `fuse`), so a linear probe on it can do at least as well as the trained classifier: a
    ceiling that a linear probe reads below the learner's own accuracy would be a bug.
    """

    supervised = True
    has_unimodal = True
    modalities = (2, 3)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        d = self.model_cfg.d_model
        m = len(self.kinds)
        self.enc1 = PooledEncoder(self.kinds[0], self.shapes[0], self.model_cfg)
        self.enc2 = PooledEncoder(self.kinds[1], self.shapes[1], self.model_cfg)
        if m == 3:
            self.enc3 = PooledEncoder(self.kinds[2], self.shapes[2], self.model_cfg)
        self.fuse = nn.Sequential(
            nn.Linear(m * d, m * d), nn.ReLU(), nn.Linear(m * d, d), nn.ReLU()
        )
        self.classifier = nn.Linear(d, self.n_classes)

    def loss(self, x1, x2, y, idx, generator, x3=None):
        # the classifier reads the representation `embed` returns, so subclasses that change
        # where the modalities meet override `embed` alone
        logits = self.classifier(self.embed(*self.augment(x1, x2, generator, x3=x3)))
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": float(loss.detach())}

    def embed(self, x1, x2, x3=None):
        return self.fuse(torch.cat(self.embed_unimodal(x1, x2, x3), 1))

    def embed_unimodal(self, x1, x2, x3=None):
        z = (self.enc1(x1), self.enc2(x2))
        return z if x3 is None else (*z, self.enc3(x3))


@register("random")
class RandomEncoders(Learner):
    """Frozen randomly initialised encoders; representation = concatenation (z1, z2[, z3])."""

    trainable = False
    relative_cost = 0.1
    has_unimodal = True
    modalities = (2, 3)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.enc1 = PooledEncoder(self.kinds[0], self.shapes[0], self.model_cfg)
        self.enc2 = PooledEncoder(self.kinds[1], self.shapes[1], self.model_cfg)
        if len(self.kinds) == 3:
            self.enc3 = PooledEncoder(self.kinds[2], self.shapes[2], self.model_cfg)
        self.requires_grad_(False)

    def embed(self, x1, x2, x3=None):
        return torch.cat(self.embed_unimodal(x1, x2, x3), dim=1)

    def embed_unimodal(self, x1, x2, x3=None):
        z = (self.enc1(x1), self.enc2(x2))
        return z if x3 is None else (*z, self.enc3(x3))
