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


def symile_loss(
    reps: list[Tensor],
    logit_scale: Tensor | float,
    negatives: str = "n",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Symile's loss (Saporta, Puli, Goldstein, Ranganath, NeurIPS 2024) over M modalities.

    The score of a tuple is the multilinear inner product MIP(a, b, c) = sum_d a_d b_d c_d of
    its representations (the dot product for M = 2). Each modality in turn is the anchor: its
    row i is classified (cross-entropy) against candidate tuples of the other modalities, the
    positive being row i of each; the loss is the mean over anchors. `negatives`: "n", per
    anchor one permutation of the rows of each other modality (drawn from `generator`) gives
    N - 1 negatives per row, the positive put on the diagonal; "n_squared", every combination
    of the other modalities' rows (N**(M-1) candidates). Written from the paper and checked
    against the authors' `symile` package (tests/test_symile.py). `reps` are used as given
    (the learner normalises them); `logit_scale` multiplies every score.
    """
    if negatives not in ("n", "n_squared"):
        raise ValueError(f"negatives must be 'n' or 'n_squared', got {negatives!r}")
    n = reps[0].shape[0]
    target = torch.arange(n, device=reps[0].device)
    losses = []
    for i, anchor in enumerate(reps):
        others = [r for j, r in enumerate(reps) if j != i]
        positive = anchor
        for r in others:
            positive = positive * r
        positive = positive.sum(1)
        if negatives == "n":
            shuffled = torch.ones_like(anchor)
            for r in others:
                dev = generator.device if generator is not None else r.device
                perm = torch.randperm(n, generator=generator, device=dev).to(r.device)
                shuffled = shuffled * r[perm]
            logits = anchor @ shuffled.T
            logits = torch.where(
                torch.eye(n, dtype=torch.bool, device=anchor.device), positive, logits
            )
            losses.append(F.cross_entropy(logit_scale * logits, target))
        else:
            # products of every combination of the others' rows, flattened row-major: the
            # positive of anchor row i is the combination (i, i, ...)
            prod = others[0]
            for r in others[1:]:
                prod = (prod[:, None, :] * r[None, :, :]).reshape(-1, anchor.shape[1])
            logits = anchor @ prod.T
            index = sum(target * n**k for k in range(len(others)))
            losses.append(F.cross_entropy(logit_scale * logits, index))
    return torch.stack(losses).mean()


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
