"""Loss functions: pure functions of tensors, separate from the modules that produce them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.1) -> Tensor:
    """Symmetric InfoNCE (SimCLR NT-Xent between two sets, CLIP-style), in-batch negatives.

    Row i of `a` and row i of `b` are a positive pair; every other row of the other set is a
    negative. Embeddings are L2-normalised. Returns the mean of both directions' cross-entropy.
    """
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def nt_xent(a: Tensor, b: Tensor, temperature: float = 0.1) -> Tensor:
    """SimCLR NT-Xent over the 2N views: negatives come from both views, self excluded."""
    n = a.shape[0]
    z = F.normalize(torch.cat([a, b], dim=0), dim=-1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def comm_loss(
    view1: list[Tensor], view2: list[Tensor], temperature: float = 0.1, fused_term: bool = True
) -> tuple[Tensor, dict[str, float]]:
    """CoMM's loss over [Z_1, ..., Z_n, Z] of two augmented views (Dufumier et al. 2025).

    `view1[-1]` and `view2[-1]` are the fused representations Z', Z''; the others are the
    single-modality representations Z_i (the fusion module with the other modalities masked),
    from the same augmented inputs. Terms: I_NCE(Z', Z'') and, per modality,
    1/2 (I_NCE(Z_i', Z'') + I_NCE(Z_i'', Z')). As in the released code the n + 1 terms are
    averaged with equal weight. `fused_term=False` drops I_NCE(Z', Z'') (the paper's ablation
    with the unimodal terms only). Returns the loss and the value of each term.
    """
    if len(view1) != len(view2) or len(view1) < 2:
        raise ValueError("comm_loss needs two lists [Z_1, ..., Z_n, Z] of the same length >= 2")
    terms = {"fused": nt_xent(view1[-1], view2[-1], temperature)} if fused_term else {}
    for i, (z1, z2) in enumerate(zip(view1[:-1], view2[:-1], strict=True), start=1):
        terms[f"uni{i}"] = 0.5 * (
            nt_xent(z1, view2[-1], temperature) + nt_xent(z2, view1[-1], temperature)
        )
    loss = torch.stack(list(terms.values())).mean()
    return loss, {k: float(v.detach()) for k, v in terms.items()}


def coral_loss(a: Tensor, b: Tensor) -> Tensor:
    """Deep-CORAL covariance alignment ||C_a - C_b||_F^2 / (4 d^2) (Sun & Saenko 2016)."""
    d = a.shape[1]

    def cov(x: Tensor) -> Tensor:
        x = x - x.mean(0, keepdim=True)
        return x.T @ x / max(x.shape[0] - 1, 1)

    return ((cov(a) - cov(b)) ** 2).sum() / (4 * d * d)


def critic_scores(a: Tensor, b: Tensor, temperature: float = 0.1) -> Tensor:
    """Separable critic scores f(a_i, b_j) = <a_i, b_j> / tau on normalised embeddings."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature


def nce_from_scores(scores: Tensor) -> Tensor:
    """InfoNCE lower bound on I (nats) from a critic score matrix (positives on the diagonal)."""
    n = scores.shape[0]
    target = torch.arange(n, device=scores.device)
    return torch.log(torch.tensor(float(n))) - F.cross_entropy(scores, target)


def club_from_scores(scores: Tensor) -> Tensor:
    """I_NCE-CLUB upper bound (FactorCL): E_p(a,b)[f] - E_p(a)p(b)[f] with the NCE critic f."""
    n = scores.shape[0]
    pos = scores.diagonal().mean()
    neg = (scores.sum() - scores.diagonal().sum()) / max(n * (n - 1), 1)
    return pos - neg


def soft_cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy against soft targets (rows sum to 1), optionally weighted per sample."""
    per = -(target * F.log_softmax(logits, dim=-1)).sum(-1)
    if weight is not None:
        return (per * weight).sum() / weight.sum().clamp_min(1e-8)
    return per.mean()
