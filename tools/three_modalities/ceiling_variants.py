"""The supervised ceiling with another vector encoder, as plug-in learners (a diagnostic).

On `bits` with three modalities the supervised ceiling reads the triple XOR (synergy123) at
0.495: one of its two parity bits (reports/three_modalities/README.md). These variants are
`pid_bench.learners.reference.Supervised` with only the per-modality encoders replaced, trained
and probed by the package's own loop, so a difference from `supervised` is the encoder's:

    pid-bench run --generator bits --set modalities=3 --interaction synergy123 \\
        --learners supervised tools/three_modalities/ceiling_variants.py:SupervisedShallow ...

- `SupervisedShallow` ("supervised_shallow"): each modality through Linear(d, hidden), ReLU,
  Linear(hidden, d_model), one hidden layer (the suite's `VectorEncoder` has two, with
  LayerNorm and GELU, then 4 tokens mean-pooled, LayerNorm and a linear map);
- `SupervisedDeepReLU` ("supervised_deep_relu"): the same with two hidden layers, the suite's
  depth without its LayerNorm, GELU and tokens.
- `SupervisedEarly` ("supervised_early"): early fusion, one MLP (two hidden layers) on the
  concatenation of the modalities; the representation is its last hidden layer.
"""

from __future__ import annotations

import torch
from torch import nn

from pid_bench.learners.reference import Supervised


def _mlp(d_in: int, hidden: int, d_out: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = d_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*mods, nn.Linear(width, d_out))


def _vector_dims(learner: Supervised) -> list[int]:
    if any(k != "vector" for k in learner.kinds):
        raise ValueError(f"{learner.name} takes vector modalities only, got {learner.kinds}")
    return [int(s[0]) for s in learner.shapes]


class SupervisedShallow(Supervised):
    """`supervised` whose vector encoders have one hidden ReLU layer."""

    name = "supervised_shallow"
    layers = 1

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.model_cfg
        encs = [_mlp(d, cfg.hidden, cfg.d_model, self.layers) for d in _vector_dims(self)]
        self.enc1, self.enc2 = encs[0], encs[1]
        if len(encs) == 3:
            self.enc3 = encs[2]


class SupervisedDeepReLU(SupervisedShallow):
    """`supervised` whose vector encoders have two hidden ReLU layers (no LayerNorm, tokens)."""

    name = "supervised_deep_relu"
    layers = 2


class SupervisedEarly(Supervised):
    """Early fusion: an MLP with two hidden layers on the concatenated modalities."""

    name = "supervised_early"
    has_unimodal = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.model_cfg
        # no per-modality encoders: the modalities meet at the input
        del self.enc1, self.enc2
        if hasattr(self, "enc3"):
            del self.enc3
        self.fuse = nn.Sequential(
            nn.Linear(sum(_vector_dims(self)), cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.d_model),
            nn.ReLU(),
        )

    def embed(self, x1, x2, x3=None):
        xs = (x1, x2) if x3 is None else (x1, x2, x3)
        return self.fuse(torch.cat(xs, 1))
