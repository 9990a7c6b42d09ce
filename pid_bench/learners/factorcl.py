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

import torch
from torch import Tensor, nn
from torch.func import functional_call

from pid_bench.learners.base import Learner, register
from pid_bench.learners.encoders import PooledEncoder, encode_views, mlp_head
from pid_bench.learners.losses import club_from_scores, critic_scores, nce_from_scores


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
    def _club(critic: Critic, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """(CLUB value for the encoders, InfoNCE loss that trains the critic)."""
        critic_loss = -nce_from_scores(critic(a.detach(), b.detach()))
        return club_from_scores(critic.frozen(a, b)), critic_loss

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

        nce_s = nce_from_scores(self.crit_s(s1, s2))
        club_s_cond, crit_loss_1 = self._club(
            self.crit_s_cond, torch.cat([s1, s1b], 1), torch.cat([s2, s2b], 1)
        )
        shared = nce_s - club_s_cond

        nce_u_self = nce_from_scores(self.crit_u1(u1, u1b)) + nce_from_scores(self.crit_u2(u2, u2b))
        club_u, crit_loss_2 = self._club(self.crit_u_club, u1, u2)
        nce_u_cond = nce_from_scores(
            self.crit_u_cond(torch.cat([u1, u1b], 1), torch.cat([u2, u2b], 1))
        )
        # the -CLUB + conditional terms enter both U1's and U2's bound
        unique = nce_u_self + 2 * (nce_u_cond - club_u)

        loss = -(shared + unique) + crit_loss_1 + crit_loss_2
        return loss, {
            "shared": float(shared.detach()),
            "unique": float(unique.detach()),
            "club_u": float(club_u.detach()),
        }

    def embed(self, x1, x2):
        return torch.cat(self._heads(x1, x2), dim=1)

    def embed_unimodal(self, x1, x2):
        s1, s2, u1, u2 = self._heads(x1, x2)
        return torch.cat([s1, u1], 1), torch.cat([s2, u2], 1)
