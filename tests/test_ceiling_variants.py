"""The ceiling variants of tools/three_modalities/ceiling_variants.py are what their docstrings
say: `Supervised` with only the per-modality encoders (or the fusion point) replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pid_bench.config import AugConfig, ModelConfig
from pid_bench.learners.plugins import resolve

VARIANTS = (
    Path(__file__).resolve().parents[1] / "tools" / "three_modalities" / "ceiling_variants.py"
)
CFG = ModelConfig(d_model=8, n_tokens=2, hidden=16, proj_dim=8, fusion_heads=2)
NO_AUG = AugConfig(views="tensor", noise_std=0.0, mask_min=0.0, mask_max=0.0)
DIMS = (5, 7, 6)


def _learner(cls_name: str, m: int = 3):
    torch.manual_seed(0)
    cls = resolve(f"{VARIANTS}:{cls_name}")[1]
    return cls(("vector",) * m, tuple((d,) for d in DIMS[:m]), CFG, NO_AUG, n_classes=4)


@pytest.mark.parametrize(
    "name, hidden_layers", [("SupervisedShallow", 1), ("SupervisedDeepReLU", 2)]
)
def test_late_fusion_variants_replace_only_the_encoders(name, hidden_layers):
    m = _learner(name)
    for enc, d in zip((m.enc1, m.enc2, m.enc3), DIMS, strict=True):
        linears = [x for x in enc if isinstance(x, nn.Linear)]
        assert len(linears) == hidden_layers + 1
        assert linears[0].in_features == d and linears[-1].out_features == CFG.d_model
        assert not any(isinstance(x, nn.LayerNorm) for x in enc.modules())
    # the fusion and classifier are Supervised's: 3 * d -> 3 * d -> d
    assert m.fuse[0].in_features == 3 * CFG.d_model and m.classifier.in_features == CFG.d_model


def test_early_fusion_meets_the_modalities_at_its_first_layer():
    m = _learner("SupervisedEarly")
    assert not hasattr(m, "enc1") and not m.has_unimodal
    assert m.fuse[0].in_features == sum(DIMS)
    xs = [torch.randn(4, d) for d in DIMS]
    z = m.embed(*xs)
    torch.testing.assert_close(z, m.fuse(torch.cat(xs, 1)))
    # every modality reaches the representation
    for i in range(3):
        ys = list(xs)
        ys[i] = torch.randn(4, DIMS[i])
        assert not torch.allclose(m.embed(*ys), z)
    loss, _ = m.loss(*xs[:2], torch.tensor([0, 1, 2, 3]), torch.arange(4), None, x3=xs[2])
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


def test_variants_take_two_modalities_too():
    for name in ("SupervisedShallow", "SupervisedEarly"):
        m = _learner(name, m=2)
        assert m.embed(torch.randn(3, 5), torch.randn(3, 7)).shape == (3, CFG.d_model)
