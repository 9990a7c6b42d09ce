"""Cross-modal contrastive baselines: Cross (CLIP-style) and Cross+Self (SLIP-style).

As in CLIP, the cross-modal InfoNCE is computed on the modality embeddings themselves (the
output of each encoder's final linear map) and the representation is their concatenation, so
what the probes read is exactly what was aligned. Cross+Self adds SimCLR terms through
separate projection heads on the same embeddings (as SLIP does).
"""

from __future__ import annotations

import torch

from pid_bench.learners.base import Learner, register
from pid_bench.learners.encoders import PooledEncoder, encode_views, mlp_head
from pid_bench.learners.losses import info_nce, nt_xent


class _TwoTower(Learner):
    """One pooled encoder per modality; representation = concatenation (z1, z2)."""

    has_unimodal = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.model_cfg
        self.enc1 = PooledEncoder(self.kinds[0], self.shapes[0], c)
        self.enc2 = PooledEncoder(self.kinds[1], self.shapes[1], c)

    def embed(self, x1, x2):
        return torch.cat(self.embed_unimodal(x1, x2), dim=1)

    def embed_unimodal(self, x1, x2):
        return self.enc1(x1), self.enc2(x2)


@register("cross")
class Cross(_TwoTower):
    """CLIP-style InfoNCE between the two modalities' embeddings; representation [z1, z2]."""

    def loss(self, x1, x2, y, idx, generator):
        a1, a2 = self.augment(x1, x2, generator)
        loss = info_nce(self.enc1(a1), self.enc2(a2), self.model_cfg.temperature)
        return loss, {"cross": float(loss.detach())}


@register("cross_self")
class CrossSelf(_TwoTower):
    """Cross + 0.5 x (SimCLR on modality 1 + SimCLR on modality 2), separate heads per term."""

    self_weight = 0.5
    hyperparams = ("self_weight",)
    relative_cost = 2.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.model_cfg
        self.self1 = mlp_head(c.d_model, c.d_model, c.proj_dim)
        self.self2 = mlp_head(c.d_model, c.d_model, c.proj_dim)

    def loss(self, x1, x2, y, idx, generator):
        t = self.model_cfg.temperature
        a1, a2 = self.augment(x1, x2, generator)
        b1, b2 = self.augment(x1, x2, generator)
        (za1, zb1), (za2, zb2) = encode_views(self.enc1, a1, b1), encode_views(self.enc2, a2, b2)
        cross = 0.5 * (info_nce(za1, zb2, t) + info_nce(zb1, za2, t))
        # each head on both views in one call (per-sample layers: the same numbers)
        n = x1.shape[0]
        self_ = nt_xent(*self.self1(torch.cat([za1, zb1])).split(n)) + nt_xent(
            *self.self2(torch.cat([za2, zb2])).split(n)
        )
        loss = cross + self.self_weight * self_
        return loss, {"cross": float(cross.detach()), "self": float(self_.detach())}
