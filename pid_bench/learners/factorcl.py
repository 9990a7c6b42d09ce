"""FactorCL (Liang et al., NeurIPS 2023): factorised shared and unique contrastive learning.

Shared heads s_i and unique heads u_i on top of each modality's encoder. With X_i' the
augmented views:

- shared:  maximise I_NCE(S1; S2) - I_NCE-CLUB(S1; S2 | X1', X2')
- unique:  maximise I_NCE(U_i; U_i') - I_NCE-CLUB(U1; U2) + I_NCE(U1; U2 | X1', X2')

I_NCE-CLUB = E_p(a,b)[f*] - E_p(a)p(b)[f*] with f* a critic trained by InfoNCE. Each CLUB
critic is trained by its own InfoNCE loss on detached features, and the encoders receive the
CLUB gradient through the critic with its parameters held fixed, so minimising the bound
cannot be done by degrading the critic. Conditioning on (X1', X2') is by concatenation:
critic g([a, a'])^T h([b, b']) with a' the same head applied to the augmented view (the public
code's bug of conditioning on x1 twice is not repeated). Representation: [s1, s2, u1, u2].
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

from pid_bench.learners.base import Learner, register
from pid_bench.learners.encoders import PooledEncoder, encode_views, mlp_head
from pid_bench.learners.losses import club_from_scores, critic_scores, nce_from_scores


def factorcl_ssl_loss(scores: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """FactorCL-SSL's objective, to minimise, from its six critics' score matrices.

    Each (B, B) matrix scores row i of the first argument against row j of the second, the
    positive pairs on the diagonal: `shared` (S1; S2), `shared_cond` (the CLUB critic of
    (S1; S2 | X1', X2')), `unique1` (U1; U1'), `unique2` (U2; U2'), `unique_club` (the CLUB
    critic of (U1; U2)) and `unique_cond` (U1; U2 | X1', X2'). The loss is -(S + U1 + U2)
    with S = I_NCE(S1; S2) - CLUB(S1; S2 | X1', X2') and
    U_i = I_NCE(U_i; U_i') - CLUB(U1; U2) + I_NCE(U1; U2 | X1', X2'). Returns the loss and
    the bounds S, U1 + U2 and each estimate (nats).
    """
    est = {
        "nce_shared": nce_from_scores(scores["shared"]),
        "club_shared_cond": club_from_scores(scores["shared_cond"]),
        "nce_unique1": nce_from_scores(scores["unique1"]),
        "nce_unique2": nce_from_scores(scores["unique2"]),
        "club_unique": club_from_scores(scores["unique_club"]),
        "nce_unique_cond": nce_from_scores(scores["unique_cond"]),
    }
    shared = est["nce_shared"] - est["club_shared_cond"]
    # the -CLUB + conditional terms enter both U1's and U2's bound
    unique = (
        est["nce_unique1"] + est["nce_unique2"] + 2 * (est["nce_unique_cond"] - est["club_unique"])
    )
    return -(shared + unique), {"shared": shared, "unique": unique, **est}


class Critic(nn.Module):
    """Separable critic f(a, b) = <g(a), h(b)> / tau."""

    def __init__(self, d_a: int, d_b: int, d_out: int, temperature: float) -> None:
        super().__init__()
        self.g = mlp_head(d_a, d_out, d_out)
        self.h = mlp_head(d_b, d_out, d_out)
        self.temperature = temperature

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return critic_scores(self.g(a), self.h(b), self.temperature)

    def frozen(self, a: Tensor, b: Tensor) -> Tensor:
        """Scores with the critic's parameters detached: gradients reach only a and b."""
        params = {k: v.detach() for k, v in self.named_parameters()}
        return functional_call(self, params, (a, b))


@register("factorcl")
class FactorCL(Learner):
    """FactorCL-SSL with InfoNCE and I_NCE-CLUB estimators."""

    has_unimodal = True
    relative_cost = 2.5

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.model_cfg
        d, p, t = c.d_model, c.proj_dim, c.temperature
        h = d // 2
        self.enc1 = PooledEncoder(self.kinds[0], self.shapes[0], c)
        self.enc2 = PooledEncoder(self.kinds[1], self.shapes[1], c)
        self.s1, self.s2 = mlp_head(d, d, h), mlp_head(d, d, h)
        self.u1, self.u2 = mlp_head(d, d, h), mlp_head(d, d, h)
        self.crit_s = Critic(h, h, p, t)  # I_NCE(S1; S2)
        self.crit_s_cond = Critic(2 * h, 2 * h, p, t)  # CLUB(S1; S2 | X1', X2')
        self.crit_u1 = Critic(h, h, p, t)  # I_NCE(U1; U1')
        self.crit_u2 = Critic(h, h, p, t)  # I_NCE(U2; U2')
        self.crit_u_club = Critic(h, h, p, t)  # CLUB(U1; U2)
        self.crit_u_cond = Critic(2 * h, 2 * h, p, t)  # I_NCE(U1; U2 | X1', X2')

    def _heads(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        f1, f2 = self.enc1(x1), self.enc2(x2)
        return self.s1(f1), self.s2(f2), self.u1(f1), self.u2(f2)

    @staticmethod
    def _critic_loss(critic: Critic, a: Tensor, b: Tensor) -> Tensor:
        """The InfoNCE loss that trains a CLUB critic, on detached features."""
        return -nce_from_scores(critic(a.detach(), b.detach()))

    def loss(self, x1, x2, y, idx, generator):
        a1, a2 = self.augment(x1, x2, generator)
        b1, b2 = self.augment(x1, x2, generator)
        # both views through each encoder and head together (per-sample layers: the same
        # numbers as view by view, in larger products)
        n = x1.shape[0]
        f1 = torch.cat(encode_views(self.enc1, a1, b1))
        f2 = torch.cat(encode_views(self.enc2, a2, b2))
        (s1, s1b), (s2, s2b) = self.s1(f1).split(n), self.s2(f2).split(n)
        (u1, u1b), (u2, u2b) = self.u1(f1).split(n), self.u2(f2).split(n)
        s_cond = torch.cat([s1, s1b], 1), torch.cat([s2, s2b], 1)
        u_cond = torch.cat([u1, u1b], 1), torch.cat([u2, u2b], 1)
        # the CLUB critics enter the encoders' objective frozen and are trained by their own
        # InfoNCE on detached features, so minimising the bound cannot degrade the critic
        objective, est = factorcl_ssl_loss(
            {
                "shared": self.crit_s(s1, s2),
                "shared_cond": self.crit_s_cond.frozen(*s_cond),
                "unique1": self.crit_u1(u1, u1b),
                "unique2": self.crit_u2(u2, u2b),
                "unique_club": self.crit_u_club.frozen(u1, u2),
                "unique_cond": self.crit_u_cond(*u_cond),
            }
        )
        loss = objective + self._critic_loss(self.crit_s_cond, *s_cond)
        loss = loss + self._critic_loss(self.crit_u_club, u1, u2)
        return loss, {
            "shared": float(est["shared"].detach()),
            "unique": float(est["unique"].detach()),
            "club_u": float(est["club_unique"].detach()),
        }

    def embed(self, x1, x2):
        return torch.cat(self._heads(x1, x2), dim=1)

    def embed_unimodal(self, x1, x2):
        s1, s2, u1, u2 = self._heads(x1, x2)
        return torch.cat([s1, u1], 1), torch.cat([s2, u2], 1)
