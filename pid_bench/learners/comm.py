"""CoMM: contrastive multimodal learning that aligns augmented views of the fused representation.

Dufumier, Castillo-Navarro, Tuia, Thiran, "What to align in multimodal contrastive learning?",
ICLR 2025. One token encoder per modality, a pre-LayerNorm transformer fusion module over both
modalities' tokens and a CLS token (Z = CLS output), modality masking for Z1 and Z2, and the
loss of `comm_loss` over [Z1, Z2, Z] of two augmented views.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pid_bench.learners.base import Learner, register
from pid_bench.learners.encoders import build_encoder, mlp_head
from pid_bench.learners.losses import comm_loss


class Fusion(nn.Module):
    """Transformer fusion over [CLS, tokens1, tokens2] with per-modality masking."""

    def __init__(self, d_model: int, heads: int, layers: int) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.modality = nn.Parameter(torch.randn(2, 1, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            dim_feedforward=2 * d_model,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, t1: Tensor, t2: Tensor, masks: list[tuple[bool, bool]]) -> list[Tensor]:
        """CLS output for each modality mask ([on, off] -> Z1, [off, on] -> Z2, [on, on] -> Z).

        The encoders' tokens are computed once by the caller; the masks are evaluated in one
        batched transformer call (masked tokens are excluded from attention).
        """
        b, n1, n2 = t1.shape[0], t1.shape[1], t2.shape[1]
        seq = torch.cat(
            [self.cls.expand(b, -1, -1), t1 + self.modality[0], t2 + self.modality[1]], 1
        )
        m = len(masks)
        seq = seq.repeat(m, 1, 1)
        pad = torch.zeros(m, 1 + n1 + n2, dtype=torch.bool, device=t1.device)
        for k, (on1, on2) in enumerate(masks):
            pad[k, 1 : 1 + n1] = not on1
            pad[k, 1 + n1 :] = not on2
        pad = pad.repeat_interleave(b, dim=0)
        out = self.norm(self.blocks(seq, src_key_padding_mask=pad)[:, 0])
        return list(out.split(b, dim=0))


MASKS_ALL = [(True, False), (False, True), (True, True)]


@register("comm")
class CoMM(Learner):
    """CoMM with a transformer fusion module; representation Z = fused CLS output."""

    has_unimodal = True
    fused_term = True
    hyperparams = ("fused_term",)
    relative_cost = 3.0
    untrained_floor = "random_fusion"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.model_cfg
        self.enc1 = build_encoder(self.kinds[0], self.shapes[0], c)
        self.enc2 = build_encoder(self.kinds[1], self.shapes[1], c)
        self.fusion = Fusion(c.d_model, c.fusion_heads, c.fusion_layers)
        self.head = mlp_head(c.d_model, c.d_model, c.proj_dim)

    def _views(self, x1: Tensor, x2: Tensor) -> list[Tensor]:
        return self.fusion(self.enc1(x1), self.enc2(x2), MASKS_ALL)

    def loss(self, x1, x2, y, idx, generator):
        va = [self.head(z) for z in self._views(*self.augment(x1, x2, generator))]
        vb = [self.head(z) for z in self._views(*self.augment(x1, x2, generator))]
        return comm_loss(va, vb, self.model_cfg.temperature, fused_term=self.fused_term)

    def embed(self, x1, x2):
        return self.fusion(self.enc1(x1), self.enc2(x2), [(True, True)])[0]

    def embed_unimodal(self, x1, x2):
        z1, z2 = self.fusion(self.enc1(x1), self.enc2(x2), MASKS_ALL[:2])
        return z1, z2


@register("comm_unimodal")
class CoMMUnimodalTerms(CoMM):
    """CoMM ablation: only the unimodal terms, no fused I_NCE(Z', Z'') (paper: S at chance)."""

    fused_term = False


@register("random_fusion")
class RandomFusion(CoMM):
    """CoMM's architecture frozen at initialisation: the floor for fused representations.

    A random nonlinear function of both modalities can already make a synergistic label
    linearly readable when the data have few latent configurations; this control measures how
    much of a fused learner's synergy comes from the architecture rather than from training.
    """

    trainable = False
    hyperparams = ()
    relative_cost = 0.1
    untrained_floor = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requires_grad_(False)
