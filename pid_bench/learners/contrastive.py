"""Cross-modal contrastive baselines: Cross (CLIP-style) and Cross+Self (SLIP-style).

As in CLIP, the cross-modal InfoNCE is computed on the modality embeddings themselves (the
output of each encoder's final linear map) and the representation is their concatenation, so
what the probes read is exactly what was aligned. Cross+Self adds SimCLR terms through
separate projection heads on the same embeddings (as SLIP does).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pid_bench.learners.base import Learner, register
from pid_bench.learners.encoders import (
    PooledEncoder,
    apply_per_chunk,
    encode_views,
    projection_head,
)
from pid_bench.learners.losses import info_nce, nt_xent

#: Values of CrossSelf's `cross_loss` and `cross_views` hyperparameters.
CROSS_LOSSES: tuple[str, ...] = ("info_nce", "nt_xent")
CROSS_VIEWS: tuple[str, ...] = ("augmented", "clean")


#: The pairs of modalities (0-based) the cross terms of three modalities sum over.
PAIRS3: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))


class _TwoTower(Learner):
    """One pooled encoder per modality; representation = concatenation (z1, z2[, z3])."""

    has_unimodal = True
    modalities = (2, 3)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.model_cfg
        self.enc1 = PooledEncoder(self.kinds[0], self.shapes[0], c)
        self.enc2 = PooledEncoder(self.kinds[1], self.shapes[1], c)
        if len(self.kinds) == 3:
            self.enc3 = PooledEncoder(self.kinds[2], self.shapes[2], c)

    @property
    def encoders(self) -> tuple[PooledEncoder, ...]:
        return (self.enc1, self.enc2) if len(self.kinds) == 2 else (self.enc1, self.enc2, self.enc3)

    def embed(self, x1, x2, x3=None):
        return torch.cat(self.embed_unimodal(x1, x2, x3), dim=1)

    def embed_unimodal(self, x1, x2, x3=None):
        z = (self.enc1(x1), self.enc2(x2))
        return z if x3 is None else (*z, self.enc3(x3))


@register("cross")
class Cross(_TwoTower):
    """CLIP-style InfoNCE between the two modalities' embeddings; representation [z1, z2].

    Three modalities: pairwise CLIP, the InfoNCE summed over the three pairs (the baseline of
    Symile, Saporta et al. 2024); representation [z1, z2, z3]."""

    def loss(self, x1, x2, y, idx, generator, x3=None):
        if x3 is not None:
            z = [
                e(a)
                for e, a in zip(self.encoders, self.augment(x1, x2, generator, x3=x3), strict=True)
            ]
            t = self.model_cfg.temperature
            terms = {f"cross{i + 1}{j + 1}": info_nce(z[i], z[j], t) for i, j in PAIRS3}
            loss = torch.stack(list(terms.values())).sum()
            return loss, {k: float(v.detach()) for k, v in terms.items()}
        a1, a2 = self.augment(x1, x2, generator)
        loss = info_nce(self.enc1(a1), self.enc2(a2), self.model_cfg.temperature)
        return loss, {"cross": float(loss.detach())}


@register("cross_self")
class CrossSelf(_TwoTower):
    """Cross + 0.5 x (SimCLR on modality 1 + SimCLR on modality 2), separate heads per term.

    Three modalities: the cross term summed over the three pairs, a SimCLR term per modality.

    Hyperparameters that switch to the recipe of CoMM's released Cross+Self
    (`--learner-set cross_self.KEY=VALUE`; tests/test_fidelity_comm.py): `cross_loss`
    `info_nce` (CLIP: the other modality's samples are the negatives) or `nt_xent` (SimCLR
    over both modalities' 2N embeddings: same-modality negatives too); `cross_heads` computes
    the cross term on the self heads' outputs (modality i through head i) instead of on the
    embeddings; `cross_views` `augmented` (the cross term averaged over both pairings of the
    two augmented views) or `clean` (one pairing of the un-augmented inputs, a third encoder
    pass per modality).
    """

    self_weight = 0.5
    cross_loss = "info_nce"
    cross_heads = False
    cross_views = "augmented"
    hyperparams = ("self_weight", "cross_loss", "cross_heads", "cross_views")
    relative_cost = 2.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.model_cfg
        self.self1 = projection_head(c.d_model, c)
        self.self2 = projection_head(c.d_model, c)
        if len(self.kinds) == 3:
            self.self3 = projection_head(c.d_model, c)

    def loss(self, x1, x2, y, idx, generator, x3=None):
        for key, accepted in (("cross_loss", CROSS_LOSSES), ("cross_views", CROSS_VIEWS)):
            if getattr(self, key) not in accepted:
                raise ValueError(
                    f"cross_self hyperparameter {key} must be one of {', '.join(accepted)}, "
                    f"got {getattr(self, key)!r}"
                )
        if x3 is not None:
            return self._loss3(x1, x2, x3, generator)
        a1, a2 = self.augment(x1, x2, generator)
        b1, b2 = self.augment(x1, x2, generator)
        (za1, zb1), (za2, zb2) = encode_views(self.enc1, a1, b1), encode_views(self.enc2, a2, b2)
        clean = (self.enc1(x1), self.enc2(x2)) if self.cross_views == "clean" else None
        return self.embedding_loss((za1, zb1), (za2, zb2), clean)

    def embedding_loss(
        self,
        views1: tuple[Tensor, Tensor],
        views2: tuple[Tensor, Tensor],
        clean: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        """The loss from the embeddings of both augmented views of each modality (`views1`,
        `views2`) and, with `cross_views="clean"`, of the un-augmented inputs (`clean`)."""
        t = self.model_cfg.temperature
        (za1, zb1), (za2, zb2) = views1, views2
        cross_fn = nt_xent if self.cross_loss == "nt_xent" else info_nce
        if self.cross_views == "clean":
            if clean is None:
                raise ValueError("cross_views='clean' needs the embeddings of the clean inputs")
            c1, c2 = clean
            if self.cross_heads:
                c1, c2 = self.self1(c1), self.self2(c2)
            cross = cross_fn(c1, c2, t)
        elif not self.cross_heads:
            # computed before the heads: the order in which autograd sums the encoders'
            # gradients, and so their last bits, stay those of the former code
            cross = 0.5 * (cross_fn(za1, zb2, t) + cross_fn(zb1, za2, t))
        # each head on both views in one call where per-sample (the same numbers)
        ha1, hb1 = apply_per_chunk(self.self1, [za1, zb1])
        ha2, hb2 = apply_per_chunk(self.self2, [za2, zb2])
        if self.cross_views == "augmented" and self.cross_heads:
            cross = 0.5 * (cross_fn(ha1, hb2, t) + cross_fn(hb1, ha2, t))
        self_ = nt_xent(ha1, hb1, t) + nt_xent(ha2, hb2, t)
        loss = cross + self.self_weight * self_
        return loss, {"cross": float(cross.detach()), "self": float(self_.detach())}

    def _loss3(self, x1, x2, x3, generator) -> tuple[Tensor, dict[str, float]]:
        """Three modalities: the cross term (both pairings of the two augmented views) summed
        over the three pairs, plus `self_weight` times the SimCLR term of each modality."""
        if self.cross_views != "augmented" or self.cross_heads:
            raise ValueError(
                "cross_self on three modalities takes cross_views='augmented' and "
                "cross_heads=False (the other settings reproduce CoMM's bimodal recipe)"
            )
        t = self.model_cfg.temperature
        cross_fn = nt_xent if self.cross_loss == "nt_xent" else info_nce
        va = self.augment(x1, x2, generator, x3=x3)
        vb = self.augment(x1, x2, generator, x3=x3)
        z = [encode_views(e, a, b) for e, a, b in zip(self.encoders, va, vb, strict=True)]
        cross = sum(
            0.5 * (cross_fn(z[i][0], z[j][1], t) + cross_fn(z[i][1], z[j][0], t)) for i, j in PAIRS3
        )
        heads = (self.self1, self.self2, self.self3)
        self_ = sum(
            nt_xent(*apply_per_chunk(h, list(zi)), t) for h, zi in zip(heads, z, strict=True)
        )
        loss = cross + self.self_weight * self_
        return loss, {"cross": float(cross.detach()), "self": float(self_.detach())}
