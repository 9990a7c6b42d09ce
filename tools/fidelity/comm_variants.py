"""Our CoMM with one component changed toward the authors' (Duplums/CoMM), as plug-in learners.

For the side-by-side ablation (reports/fidelity/side_by_side/README.md): each class is
`pid_bench.learners.comm.CoMM` with one part replaced, written here from the architecture
description (nothing copied), and run from the command line as a plug-in:

    pid-bench run --data DATA.npz --learners tools/fidelity/comm_variants.py:CoMMBNHead ...

- `CoMMBNHead` ("comm_bnhead"): the projection head is a 3-layer MLP with BatchNorm, d -> 512
  -> 512 -> 256 (Linear, BN, ReLU, Linear, BN, ReLU, Linear: the shape of their
  `CoMM._build_mlp` with comm.yaml's widths), applied to each (view, mask) output separately, as
  their `forward` applies `self.head` to each, so each BatchNorm call normalises one batch of
  one view and one mask;
- `CoMMCLSInit` ("comm_cls1"): the CLS token drawn from N(0, 1), as their
  `FusionTransformer.cls_token` (ours: N(0, 0.02^2));
- `CoMMMLP4x` ("comm_mlp4x"): the fusion layer's feed-forward 4 x d wide with QuickGELU
  (x * sigmoid(1.702 x)), as their `ResidualAttentionBlock.mlp` (ours: 2 x d, GELU);
- `CoMMFusionInit` ("comm_fusioninit"): the fusion layer's weights drawn as their
  `FusionTransformer.initialize` draws them: attention input projection N(0, d^-1), output
  projection and second feed-forward layer N(0, 1 / (2 L d)), first feed-forward layer
  N(0, 1 / (2 d)) (ours: torch's defaults);
- `CoMMFeatureTokens` ("comm_featuretokens"): each vector modality encoded as their MultiBench
  tabular setting does: an MLP (Linear d -> 256, ReLU, Linear 256 -> k) whose k = 8 outputs
  become one token each, h_i * w_i + b_i with w_i, b_i in R^d_model drawn from N(0, 1) (the
  "feature tokenizer" of their `FeaturesInputAdapter`; ours: an MLP with LayerNorm and GELU
  whose output is split into 4 tokens).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pid_bench.learners.comm import MASKS_ALL, CoMM
from pid_bench.learners.encoders import bn_head, encode_views
from pid_bench.learners.losses import comm_loss

#: The authors' CoMM head widths (configs/model/comm.yaml): 512 hidden, 256 out.
BN_HIDDEN, BN_OUT = 512, 256


class CoMMBNHead(CoMM):
    """Our CoMM with the authors' 3-layer BatchNorm projection head, per (view, mask)."""

    name = "comm_bnhead"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = bn_head(self.model_cfg.d_model, BN_HIDDEN, BN_OUT)

    def loss(self, x1, x2, y, idx, generator):
        a1, a2 = self.augment(x1, x2, generator)
        b1, b2 = self.augment(x1, x2, generator)
        t1 = torch.cat(encode_views(self.enc1, a1, b1), 0)
        t2 = torch.cat(encode_views(self.enc2, a2, b2), 0)
        z = torch.cat(self.fusion(t1, t2, MASKS_ALL), 0)
        # [Z1', Z1'', Z2', Z2'', Z', Z''], each through the head on its own (BatchNorm stats)
        chunks = [self.head(c) for c in z.split(x1.shape[0], 0)]
        return comm_loss(chunks[0::2], chunks[1::2], self.model_cfg.temperature)


class CoMMCLSInit(CoMM):
    """Our CoMM with the CLS token drawn from N(0, 1)."""

    name = "comm_cls1"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        with torch.no_grad():
            self.fusion.cls.normal_(0.0, 1.0)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), the GELU approximation of CLIP's transformer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class CoMMMLP4x(CoMM):
    """Our CoMM with a 4 x d QuickGELU feed-forward in each fusion layer."""

    name = "comm_mlp4x"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        d = self.model_cfg.d_model
        for layer in self.fusion.blocks.layers:
            layer.linear1 = nn.Linear(d, 4 * d)
            layer.linear2 = nn.Linear(4 * d, d)
            layer.activation = QuickGELU()


class CoMMFusionInit(CoMM):
    """Our CoMM with the fusion layers' weights drawn with their standard deviations."""

    name = "comm_fusioninit"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        d, n_layers = self.model_cfg.d_model, self.model_cfg.fusion_layers
        proj_std = d**-0.5 * (2 * n_layers) ** -0.5
        with torch.no_grad():
            for layer in self.fusion.blocks.layers:
                layer.self_attn.in_proj_weight.normal_(0.0, d**-0.5)
                layer.self_attn.out_proj.weight.normal_(0.0, proj_std)
                layer.linear1.weight.normal_(0.0, math.sqrt(1.0 / (2 * d)))
                layer.linear2.weight.normal_(0.0, proj_std)


class FeatureTokens(nn.Module):
    """MLP to k scalars, each scalar h_i made a token h_i * w_i + b_i (w, b ~ N(0, 1))."""

    def __init__(self, in_dim: int, hidden: int, k: int, d_model: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, k))
        self.weight = nn.Parameter(torch.randn(k, d_model))
        self.bias = nn.Parameter(torch.randn(k, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)[:, :, None] * self.weight + self.bias


class CoMMFeatureTokens(CoMM):
    """Our CoMM with their tabular encoder: 8 rank-one feature tokens per vector modality."""

    name = "comm_featuretokens"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.model_cfg
        self.enc1 = FeatureTokens(self.shapes[0][0], c.hidden, 8, c.d_model)
        self.enc2 = FeatureTokens(self.shapes[1][0], c.hidden, 8, c.d_model)
