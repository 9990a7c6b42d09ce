"""InfMasking: CoMM plus an infinite-masking term (NeurIPS 2025, arXiv 2509.25270).

A reference learner written the way a method from outside pid-bench is: it imports only the
public plug-in API (`pid_bench.learners`), and the suite finds it through the entry point
`infmasking` of the group `pid_bench.learners` in pid-bench's own pyproject.toml, the mechanism
a user's package uses. Re-implemented from the paper and the authors' code
(brightest66/InfMasking), not copied.

Architecture as CoMM's: per-modality token encoders, one shared fusion transformer that gives
Z1, Z2 and Z from the modality subsets, one projection head. Masking acts on the fusion's
input tokens (after the encoders and modality embeddings): per modality and per sample, a
random subset of `mask_ratio` of the tokens (the same count for every sample) is replaced by
one learnable mask token shared by both modalities (no modality embedding); the CLS token is
never masked. `n_masks` independent masks per sample and view, each its own pass through the
fusion (all K of a view in one batched call).

Loss per view, with q the normalised projection of the view's full fusion Z and k_1..k_K
those of its K masked fusions, mu their mean and Sigma their covariance (1/K):

    positive logit  q.mu / tau + lambda_e q' Sigma q / (2 tau^2)
    negatives       q_b . k_t(n) / tau and q_b . q_n / tau for every other sample n and all t
    L_mask          cross-entropy of the positive + lambda_e * mean_b(q' Sigma q) / (2 tau^2)

(a Jensen bound on the InfoNCE expected over Gaussian-approximated masked views). lambda_e
ramps linearly over training, mask_lambda * epoch / epochs (1-based), from mask_lambda / epochs
to mask_lambda. The total is the mean of the two masked terms and CoMM's three terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pid_bench.learners import (
    MASKS_ALL,
    Fusion,
    Learner,
    build_encoder,
    comm_loss,
    encode_views,
    mlp_head,
)


def masked_term(q: Tensor, k: Tensor, lam: float, tau: float) -> Tensor:
    """InfMasking's masked term for one view.

    `q` (B, E): normalised projections of the full fusion; `k` (K, B, E): normalised
    projections of the K masked fusions of the same samples; `lam` the current lambda_e.
    """
    n_masks, b, _ = k.shape
    mu = k.mean(0)
    # q' Sigma q = mean_t ((k_t - mu) . q)^2: no (E, E) matrix is formed
    quad = (((k - mu) * q).sum(-1) ** 2).mean(0)
    pos = (q * mu).sum(-1) / tau + lam * quad / (2 * tau**2)
    eye = torch.eye(b, dtype=torch.bool, device=q.device)
    neg_masked = torch.einsum("be,tne->btn", q, k).masked_fill(eye[:, None, :], float("-inf"))
    neg_full = (q @ q.T).masked_fill(eye, float("-inf"))
    logits = torch.cat([pos[:, None], neg_masked.reshape(b, -1) / tau, neg_full / tau], 1)
    target = torch.zeros(b, dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target) + lam * quad.mean() / (2 * tau**2)


def infmasking_loss(
    view1: list[Tensor],
    view2: list[Tensor],
    masked1: Tensor,
    masked2: Tensor,
    lam: float,
    tau: float,
) -> tuple[Tensor, dict[str, float]]:
    """InfMasking's loss from the projection head's outputs (not yet normalised).

    `view1`, `view2`: [Z1, Z2, Z] of the two augmented views, each (B, E); `masked1`,
    `masked2` (K, B, E): the K masked fusions of each view. The mean of CoMM's three terms and
    the masked terms of the two views, each view's Z its own query. Returns the loss and the
    value of each term (CoMM's `fused`, `uni1`, `uni2`, then `mask1`, `mask2`).
    """
    comm, terms = comm_loss(view1, view2, tau)
    q1, q2 = F.normalize(view1[-1], dim=-1), F.normalize(view2[-1], dim=-1)
    m_a = masked_term(q1, F.normalize(masked1, dim=-1), lam, tau)
    m_b = masked_term(q2, F.normalize(masked2, dim=-1), lam, tau)
    # the mean of the five terms: CoMM's three (their mean is `comm`) and the two masked
    loss = (3 * comm + m_a + m_b) / 5
    terms.update(mask1=float(m_a.detach()), mask2=float(m_b.detach()))
    return loss, terms


class InfMasking(Learner):
    """CoMM with K masked fusions per view and the infinite-masking term; representation Z."""

    name = "infmasking"
    has_unimodal = True
    hyperparams = ("mask_ratio", "n_masks", "mask_lambda", "temperature")
    #: share of each modality's tokens replaced by the mask token (code default; the authors'
    #: Trifeature runs use 0.7)
    mask_ratio: float = 0.5
    #: masked fusions per sample and view (code default; Trifeature runs: 6)
    n_masks: int = 5
    #: final weight of the masked term's variance part (reached at the last epoch)
    mask_lambda: float = 1.0
    #: temperature of every term, CoMM's included
    temperature: float = 0.1
    relative_cost = 4.0
    untrained_floor = "random_fusion"

    def __init__(self, kinds, shapes, model, aug, n_classes=None) -> None:
        super().__init__(kinds, shapes, model, aug, n_classes)
        d = model.d_model
        self.enc1 = build_encoder(kinds[0], shapes[0], model)
        self.enc2 = build_encoder(kinds[1], shapes[1], model)
        self.fusion = Fusion(d, model.fusion_heads, model.fusion_layers)
        self.head = mlp_head(d, d, model.proj_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)
        self.lam = self.mask_lambda

    def start_epoch(self, epoch: int, n_train: int) -> None:
        if not 0.0 <= self.mask_ratio < 1.0 or self.n_masks < 1:
            raise ValueError(
                "infmasking needs 0 <= mask_ratio < 1 and n_masks >= 1, got "
                f"mask_ratio={self.mask_ratio}, n_masks={self.n_masks}"
            )
        self.lam = self.mask_lambda * epoch / max(self.total_epochs, epoch, 1)

    def keep_masks(self, b: int, n: int, generator: torch.Generator | None, device) -> Tensor:
        """(n_masks, b, n) booleans: True where a token is kept; exactly int(n * (1 - ratio))
        kept per sample and mask, the positions drawn independently."""
        n_keep = int(n * (1 - self.mask_ratio))  # as the authors count it
        noise = torch.rand(self.n_masks, b, n, generator=generator, device=device)
        return noise.argsort(-1).argsort(-1) < n_keep

    def masked_views(self, t1: Tensor, t2: Tensor, generator) -> Tensor:
        """(n_masks, B, d): fusion outputs of the K masked copies of the token sequences."""
        e1, e2 = self.fusion.embed_tokens(t1, t2)
        dev = generator.device if generator is not None else t1.device
        keep = torch.cat(
            [self.keep_masks(t.shape[0], t.shape[1], generator, dev) for t in (e1, e2)], -1
        ).to(t1.device)
        tokens = torch.cat([e1, e2], 1)  # (B, n1 + n2, d)
        masked = torch.where(keep[..., None], tokens, self.mask_token.to(tokens.dtype))
        k, b = masked.shape[:2]
        return self.fusion.cls_output(masked.reshape(k * b, *masked.shape[2:])).view(k, b, -1)

    def loss(self, x1, x2, y, idx, generator):
        tau, b = self.temperature, x1.shape[0]
        a1, a2 = self.augment(x1, x2, generator)
        b1, b2 = self.augment(x1, x2, generator)
        t1 = torch.cat(encode_views(self.enc1, a1, b1), 0)
        t2 = torch.cat(encode_views(self.enc2, a2, b2), 0)
        h = self.head(torch.cat(self.fusion(t1, t2, MASKS_ALL), 0))
        chunks = h.split(b, 0)  # [Z1', Z1'', Z2', Z2'', Z', Z'']
        k = self.head(self.masked_views(t1, t2, generator))  # (K, 2B, E): view ' then ''
        loss, terms = infmasking_loss(
            list(chunks[0::2]), list(chunks[1::2]), k[:, :b], k[:, b:], self.lam, tau
        )
        terms["lam"] = self.lam
        return loss, terms

    def embed(self, x1, x2):
        return self.fusion(self.enc1(x1), self.enc2(x2), [(True, True)])[0]

    def embed_unimodal(self, x1, x2):
        z1, z2 = self.fusion(self.enc1(x1), self.enc2(x2), MASKS_ALL[:2])
        return z1, z2
