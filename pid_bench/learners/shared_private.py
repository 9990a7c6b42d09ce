"""Shared/private learner with covariance alignment and self-supervised multi-task labels.

After Lai et al. (arXiv 2305.08473). Each modality's features split into a shared part, mapped
to a common space whose second-order statistics are aligned across modalities, and a private
part. The covariance loss of the paper is not public; this uses the documented Deep-CORAL form
||C1 - C2||_F^2 / (4 d^2) between the two modalities' shared features.

Private branches get unimodal tasks with labels generated on the fly by Self-MM's ULGM
(Yu et al., AAAI 2021), adapted from regression scores to class labels: the multimodal label is
y_m = 1 for the true class (a one-hot target); for each sample, with C_p the centre of its
class and C_n the centre of the other classes (in the fused and each unimodal feature space),
d = (|F - C_n| - |F - C_p|) / (|F - C_p| + eps), and the unimodal target weight of the true
class is y_s = 0.5 (d_s / d_m) y_m + 0.5 (y_m + d_s - d_m), clamped to [0, 1], the rest of the
mass spread evenly over the other classes. From epoch 2 it is updated by momentum
y_s <- (n-1)/(n+1) y_s + 2/(n+1) y_s_new. Loss = fused cross-entropy + sum_s of the soft
unimodal cross-entropy weighted by tanh(|y_s - y_m|) + the covariance term. Supervised: it uses
the task label, so it is trained per task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pid_bench.learners.base import Learner, register
from pid_bench.learners.encoders import PooledEncoder
from pid_bench.learners.losses import coral_loss, soft_cross_entropy

EPS = 1e-6


@register("shared_private")
class SharedPrivate(Learner):
    """Covariance-aligned shared space + private branches with ULGM unimodal labels."""

    supervised = True
    has_unimodal = True
    coral_weight = 1.0
    hyperparams = ("coral_weight",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        d, k = self.model_cfg.d_model, self.n_classes
        h = d // 2
        self.enc1 = PooledEncoder(self.kinds[0], self.shapes[0], self.model_cfg)
        self.enc2 = PooledEncoder(self.kinds[1], self.shapes[1], self.model_cfg)
        self.shared1, self.shared2 = nn.Linear(d, h), nn.Linear(d, h)
        self.private1, self.private2 = nn.Linear(d, h), nn.Linear(d, h)
        # The fused representation the probes read is what head_m reads linearly (the ReLU is
        # part of `fuse`).
        self.fuse = nn.Sequential(
            nn.Linear(4 * h, 2 * d), nn.ReLU(), nn.Linear(2 * d, d), nn.ReLU()
        )
        self.head_m = nn.Linear(d, k)
        self.head_1 = nn.Sequential(nn.ReLU(), nn.Linear(2 * h, k))
        self.head_2 = nn.Sequential(nn.ReLU(), nn.Linear(2 * h, k))
        self._epoch = 1
        self.register_buffer("y_s", torch.empty(0), persistent=False)

    def start_epoch(self, epoch: int, n_train: int) -> None:
        self._epoch = epoch
        if self.y_s.numel() != 2 * n_train:
            self.y_s = torch.ones(2, n_train, device=self.y_s.device)

    def _parts(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, ...]:
        f1, f2 = self.enc1(x1), self.enc2(x2)
        s1, s2 = self.shared1(f1), self.shared2(f2)
        p1, p2 = self.private1(f1), self.private2(f2)
        h = self.fuse(torch.cat([s1, s2, p1, p2], 1))
        return h, torch.cat([s1, p1], 1), torch.cat([s2, p2], 1), s1, s2

    def _relative_distance(self, feats: Tensor, y: Tensor) -> Tensor:
        """ULGM's relative distance of each sample to its class centre vs the others' centre."""
        k = self.n_classes
        onehot = F.one_hot(y, k).float()
        counts = onehot.sum(0)
        centres = (onehot.T @ feats) / counts.clamp_min(1)[:, None]
        present = counts > 0
        pos = centres[y]
        # centre of the *other* classes present in the batch
        tot = (centres * present[:, None]).sum(0)
        n_other = (present.sum() - 1).clamp_min(1)
        neg = (tot[None] - pos) / n_other
        d_p = (feats - pos).norm(dim=1)
        d_n = (feats - neg).norm(dim=1)
        return (d_n - d_p) / (d_p + EPS)

    def loss(self, x1, x2, y, idx, generator):
        a1, a2 = self.augment(x1, x2, generator)
        h, z1, z2, s1, s2 = self._parts(a1, a2)
        loss_m = F.cross_entropy(self.head_m(h), y)
        with torch.no_grad():
            d_m = self._relative_distance(h.detach(), y).clamp_min(EPS)
            new = []
            for z in (z1, z2):
                d_s = self._relative_distance(z.detach(), y)
                new.append((0.5 * d_s / d_m + 0.5 * (1 + d_s - d_m)).clamp(0, 1))
            new = torch.stack(new)
            n = self._epoch
            if n >= 2:
                new = (n - 1) / (n + 1) * self.y_s[:, idx] + 2 / (n + 1) * new
            self.y_s[:, idx] = new
        k = self.n_classes
        onehot = F.one_hot(y, k).float()
        loss_u = torch.zeros((), device=h.device)
        for s, (z, head) in enumerate(((z1, self.head_1), (z2, self.head_2))):
            ys = self.y_s[s, idx][:, None]
            target = onehot * ys + (1 - onehot) * (1 - ys) / max(k - 1, 1)
            weight = torch.tanh((1 - self.y_s[s, idx]).abs())
            loss_u = loss_u + soft_cross_entropy(head(z), target, weight)
        cov = coral_loss(s1, s2)
        loss = loss_m + loss_u + self.coral_weight * cov
        return loss, {
            "fused": float(loss_m.detach()),
            "uni": float(loss_u.detach()),
            "coral": float(cov.detach()),
        }

    def embed(self, x1, x2):
        return self._parts(x1, x2)[0]

    def embed_unimodal(self, x1, x2):
        _, z1, z2, _, _ = self._parts(x1, x2)
        return z1, z2
