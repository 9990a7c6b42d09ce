"""CoMM: contrastive multimodal learning that aligns augmented views of the fused representation.

Dufumier, Castillo-Navarro, Tuia, Thiran, "What to align in multimodal contrastive learning?",
ICLR 2025. One token encoder per modality, a pre-LayerNorm transformer fusion module over both
modalities' tokens and a CLS token (Z = CLS output), modality masking for Z1 and Z2, and the
loss of `comm_loss` over [Z1, Z2, Z] of two augmented views. Three modalities: the same over
[Z1, Z2, Z3, Z] (its n + 1 terms, as the authors' loss takes any n).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pid_bench.config import FUSION_ACTIVATIONS, FUSION_INITS, ModelConfig
from pid_bench.learners.base import Learner, register
from pid_bench.learners.encoders import (
    batch_independent,
    build_encoder,
    encode_views,
    projection_head,
)
from pid_bench.learners.losses import comm_loss


def _attend(attn: nn.MultiheadAttention, xq: Tensor, xkv: Tensor) -> Tensor:
    """Multi-head attention of queries `xq` over `xkv` with `attn`'s weights.

    Projects queries only for `xq` and keys/values only for `xkv`, so that a CLS-only query
    over a full sequence costs one token's query and output projection.
    """
    d, h = attn.embed_dim, attn.num_heads
    w, bias = attn.in_proj_weight, attn.in_proj_bias
    if xq is xkv:
        q, k, v = F.linear(xq, w, bias).chunk(3, dim=-1)
    else:
        q = F.linear(xq, w[:d], bias[:d])
        k, v = F.linear(xkv, w[d:], bias[d:]).chunk(2, dim=-1)
    b = xq.shape[0]
    q, k, v = (t.reshape(b, -1, h, d // h).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)
    return attn.out_proj(out.transpose(1, 2).reshape(b, -1, d))


def _layer(layer: nn.TransformerEncoderLayer, x: Tensor, cls_only: bool) -> Tensor:
    """One pre-LayerNorm encoder layer (dropout 0); `cls_only` returns the CLS row alone."""
    hx = layer.norm1(x)
    if cls_only:
        x = x[:, :1] + _attend(layer.self_attn, hx[:, :1], hx)
    else:
        x = x + _attend(layer.self_attn, hx, hx)
    return x + layer.linear2(layer.activation(layer.linear1(layer.norm2(x))))


def quick_gelu(x: Tensor) -> Tensor:
    """x * sigmoid(1.702 x): CLIP's approximation of GELU, the fusion MLP activation of CoMM's
    released code."""
    return x * torch.sigmoid(1.702 * x)


class Fusion(nn.Module):
    """Transformer fusion over [CLS, tokens1, tokens2] with per-modality masking.

    A masked modality's tokens are left out of the sequence rather than computed and excluded
    from attention, and the last layer computes only the CLS output (keys and values of every
    token, query, output projection and MLP of the CLS token): the same function as a padding
    mask over the full sequence (`tests/test_learners.py` checks outputs and gradients against
    that), at about half the fusion FLOPs of CoMM's three masks.

    The defaults are this suite's fusion; `ff_mult=4, activation="quick_gelu", init="comm",
    modality_embedding=False` give the architecture of CoMM's released code (equal outputs and
    gradients on the same weights: tests/test_fidelity_comm.py).
    """

    def __init__(
        self,
        d_model: int,
        heads: int,
        layers: int,
        *,
        ff_mult: int = 2,
        activation: str = "relu",
        init: str = "torch",
        modality_embedding: bool = True,
        n_modalities: int = 2,
    ) -> None:
        super().__init__()
        if activation not in FUSION_ACTIVATIONS:
            raise ValueError(
                f"Fusion activation must be one of {', '.join(FUSION_ACTIVATIONS)}, "
                f"got {activation!r}"
            )
        if init not in FUSION_INITS:
            raise ValueError(f"Fusion init must be one of {', '.join(FUSION_INITS)}, got {init!r}")
        # The authors draw their CLS token from N(0, 1); ours starts near zero.
        std = 1.0 if init == "comm" else 0.02
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * std)
        self.modality: nn.Parameter | None = (
            nn.Parameter(torch.randn(n_modalities, 1, d_model) * 0.02)
            if modality_embedding
            else None
        )
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            dim_feedforward=ff_mult * d_model,
            dropout=0.0,
            activation=quick_gelu if activation == "quick_gelu" else F.relu,
            batch_first=True,
            norm_first=True,
        )
        # Parameters kept in nn.TransformerEncoder's layout (state dicts stay loadable);
        # forward runs them through `_layer`.
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        if init == "comm":
            self._init_comm()

    @classmethod
    def from_config(cls, cfg: ModelConfig, n_modalities: int = 2) -> Fusion:
        """The fusion `cfg` describes (width, heads, layers and the fusion_* options), over
        `n_modalities` token sequences."""
        return cls(
            cfg.d_model,
            cfg.fusion_heads,
            cfg.fusion_layers,
            ff_mult=cfg.fusion_ff_mult,
            activation=cfg.fusion_activation,
            init=cfg.fusion_init,
            modality_embedding=cfg.modality_embedding,
            n_modalities=n_modalities,
        )

    @torch.no_grad()
    def _init_comm(self) -> None:
        """The initialisation of CoMM's released code (after CLIP's text transformer): normal
        weights of std d^-1/2 for the attention input projection, (2d)^-1/2 for the first MLP
        layer and d^-1/2 (2 L)^-1/2 for both projections back into the residual stream; biases
        and norms as torch initialises them. Unlike nn.TransformerEncoder's copies of one
        layer, every layer gets its own draw."""
        d, n_layers = self.norm.normalized_shape[0], len(self.blocks.layers)
        proj_std = d**-0.5 * (2 * n_layers) ** -0.5
        for layer in self.blocks.layers:
            nn.init.normal_(layer.self_attn.in_proj_weight, std=d**-0.5)
            nn.init.normal_(layer.self_attn.out_proj.weight, std=proj_std)
            nn.init.normal_(layer.linear1.weight, std=(2 * d) ** -0.5)
            nn.init.normal_(layer.linear2.weight, std=proj_std)

    def embed_tokens(self, *ts: Tensor) -> tuple[Tensor, ...]:
        """Each modality's tokens (B, n_i, d) with its modality embedding added: the fusion's
        input sequence is [CLS] followed by any of these (what `cls_output` reads)."""
        if self.modality is None:
            return ts
        return tuple(t + self.modality[i] for i, t in enumerate(ts))

    def cls_output(self, tokens: Tensor) -> Tensor:
        """The normalised CLS output (B, d) of the fusion layers over [CLS, tokens], tokens
        (B, n, d) as `embed_tokens` makes them (or altered, e.g. some replaced by a mask
        token)."""
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], 1)
        layers = self.blocks.layers
        for i, layer in enumerate(layers):
            x = _layer(layer, x, cls_only=i == len(layers) - 1)
        return self.norm(x[:, 0])

    def forward(
        self, t1: Tensor, t2: Tensor, masks: list[tuple[bool, ...]], t3: Tensor | None = None
    ) -> list[Tensor]:
        """CLS output for each modality mask ([on, off] -> Z1, [off, on] -> Z2, [on, on] -> Z;
        with `t3`, masks of three: [on, off, off] -> Z1, ..., [on, on, on] -> Z).

        The encoders' tokens are computed once by the caller; masks whose sequences have the
        same length (Z1 and Z2 when both modalities have as many tokens) share one batched
        pass.
        """
        b = t1.shape[0]
        parts = self.embed_tokens(t1, t2) if t3 is None else self.embed_tokens(t1, t2, t3)
        # (off, off) leaves the CLS token alone
        seqs = [
            torch.cat([p for p, on in zip(parts, m, strict=True) if on] or [t1[:, :0]], 1)
            for m in masks
        ]
        out: list[Tensor | None] = [None] * len(masks)
        for n in dict.fromkeys(s.shape[1] for s in seqs):
            group = [k for k, s in enumerate(seqs) if s.shape[1] == n]
            z = self.cls_output(torch.cat([seqs[k] for k in group], 0))
            for k, zk in zip(group, z.split(b, dim=0), strict=True):
                out[k] = zk
        return out  # type: ignore[return-value]


MASKS_ALL = [(True, False), (False, True), (True, True)]
#: Three modalities: each alone (Z1, Z2, Z3), then all (Z).
MASKS_ALL3 = [(True, False, False), (False, True, False), (False, False, True), (True, True, True)]


@register("comm")
class CoMM(Learner):
    """CoMM with a transformer fusion module; representation Z = fused CLS output."""

    has_unimodal = True
    fused_term = True
    hyperparams = ("fused_term",)
    relative_cost = 3.0
    untrained_floor = "random_fusion"
    modalities = (2, 3)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.model_cfg
        self.enc1 = build_encoder(self.kinds[0], self.shapes[0], c)
        self.enc2 = build_encoder(self.kinds[1], self.shapes[1], c)
        if len(self.kinds) == 3:
            self.enc3 = build_encoder(self.kinds[2], self.shapes[2], c)
        self.fusion = Fusion.from_config(c, n_modalities=len(self.kinds))
        self.head = projection_head(c.d_model, c)

    def loss(self, x1, x2, y, idx, generator, x3=None):
        if x3 is not None:
            return self._loss3(x1, x2, x3, generator)
        a1, a2 = self.augment(x1, x2, generator)
        b1, b2 = self.augment(x1, x2, generator)
        # Both views go through each encoder (batched where per-sample) and the fusion
        # together: the same numbers as view by view, in fewer and larger products.
        t1 = torch.cat(encode_views(self.enc1, a1, b1), 0)
        t2 = torch.cat(encode_views(self.enc2, a2, b2), 0)
        va, vb = self.project_views(t1, t2, x1.shape[0])
        return comm_loss(va, vb, self.model_cfg.temperature, fused_term=self.fused_term)

    def project_views(
        self, t1: Tensor, t2: Tensor, n: int, t3: Tensor | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Head outputs [Z1, Z2, Z] ([Z1, Z2, Z3, Z] with `t3`) of view a and of view b, from
        each modality's tokens of both views stacked (2n, n_i, d), view a first: what
        `comm_loss` takes."""
        z = self.fusion(t1, t2, MASKS_ALL if t3 is None else MASKS_ALL3, t3=t3)
        if batch_independent(self.head):
            # every mask and view in one call: the same numbers as one call each
            chunks = self.head(torch.cat(z, 0)).split(n, 0)  # [Z1', Z1'', Z2', Z2'', Z', Z'']
            return list(chunks[0::2]), list(chunks[1::2])
        # A BatchNorm head normalises each view's and mask's batch on its own, called view by
        # view as in the released code (the order its running statistics see them).
        return [self.head(zk[:n]) for zk in z], [self.head(zk[n:]) for zk in z]

    def _loss3(self, x1, x2, x3, generator):
        """Three modalities: the n + 1 = 4 terms of `comm_loss` over [Z1, Z2, Z3, Z]."""
        va = self.augment(x1, x2, generator, x3=x3)
        vb = self.augment(x1, x2, generator, x3=x3)
        encs = (self.enc1, self.enc2, self.enc3)
        t = [torch.cat(encode_views(e, a, b), 0) for e, a, b in zip(encs, va, vb, strict=True)]
        za, zb = self.project_views(t[0], t[1], x1.shape[0], t3=t[2])
        return comm_loss(za, zb, self.model_cfg.temperature, fused_term=self.fused_term)

    def embed(self, x1, x2, x3=None):
        if x3 is not None:
            mask = [(True, True, True)]
            return self.fusion(self.enc1(x1), self.enc2(x2), mask, t3=self.enc3(x3))[0]
        return self.fusion(self.enc1(x1), self.enc2(x2), [(True, True)])[0]

    def embed_unimodal(self, x1, x2, x3=None):
        if x3 is not None:
            t = (self.enc1(x1), self.enc2(x2), self.enc3(x3))
            return tuple(self.fusion(t[0], t[1], MASKS_ALL3[:3], t3=t[2]))
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
