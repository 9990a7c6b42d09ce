"""Our CoMM with one component changed toward the authors' (Duplums/CoMM), as plug-in learners.

For the side-by-side ablation (reports/fidelity/side_by_side/README.md): each class is
`pid_bench.learners.comm.CoMM` with one part replaced, written here from the architecture
description (nothing copied), and run from the command line as a plug-in:

    pid-bench run --data DATA.npz --learners tools/fidelity/comm_variants.py:CoMMBNHead ...

- `CoMMBNHead` ("comm_bnhead"): the projection head is a 3-layer MLP with BatchNorm, d -> 512
  -> 512 -> 256 (Linear, BN, ReLU, Linear, BN, ReLU, Linear: the shape of their
  `CoMM._build_mlp` with comm.yaml's widths), applied to each (view, mask) output separately, as
  their `forward` applies `self.head` to each, so each BatchNorm call normalises one batch of
  one view and one mask.
"""

from __future__ import annotations

import torch
from torch import nn

from pid_bench.learners.comm import MASKS_ALL, CoMM
from pid_bench.learners.encoders import encode_views
from pid_bench.learners.losses import comm_loss


def bn_head(d_in: int, hidden: int = 512, d_out: int = 256) -> nn.Sequential:
    """Linear-BN-ReLU, Linear-BN-ReLU, Linear."""
    return nn.Sequential(
        nn.Linear(d_in, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, d_out),
    )


class CoMMBNHead(CoMM):
    """Our CoMM with the authors' 3-layer BatchNorm projection head, per (view, mask)."""

    name = "comm_bnhead"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = bn_head(self.model_cfg.d_model)

    def loss(self, x1, x2, y, idx, generator):
        a1, a2 = self.augment(x1, x2, generator)
        b1, b2 = self.augment(x1, x2, generator)
        t1 = torch.cat(encode_views(self.enc1, a1, b1), 0)
        t2 = torch.cat(encode_views(self.enc2, a2, b2), 0)
        z = torch.cat(self.fusion(t1, t2, MASKS_ALL), 0)
        # [Z1', Z1'', Z2', Z2'', Z', Z''], each through the head on its own (BatchNorm stats)
        chunks = [self.head(c) for c in z.split(x1.shape[0], 0)]
        return comm_loss(chunks[0::2], chunks[1::2], self.model_cfg.temperature)
