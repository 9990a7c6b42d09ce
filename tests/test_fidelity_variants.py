"""The ablation variants of tools/fidelity/comm_variants.py do what their docstrings say."""

from __future__ import annotations

from pathlib import Path

import torch

from pid_bench.config import AugConfig, ModelConfig
from pid_bench.learners.comm import MASKS_ALL
from pid_bench.learners.losses import comm_loss
from pid_bench.learners.plugins import resolve

VARIANTS = Path(__file__).resolve().parents[1] / "tools" / "fidelity" / "comm_variants.py"
CFG = ModelConfig(d_model=8, n_tokens=2, hidden=16, proj_dim=8, fusion_heads=2)
NO_AUG = AugConfig(views="tensor", noise_std=0.0, mask_min=0.0, mask_max=0.0)


def _learner(cls_name: str):
    torch.manual_seed(0)
    cls = resolve(f"{VARIANTS}:{cls_name}")[1]
    return cls(("vector", "vector"), ((5,), (7,)), CFG, NO_AUG)


def test_bn_head_normalises_each_view_and_mask_on_its_own():
    """The authors' forward applies the head to each (view, mask) output separately, so each
    BatchNorm call sees one batch of one view and one mask; the variant must do the same."""
    m = _learner("CoMMBNHead")
    assert sum(isinstance(x, torch.nn.BatchNorm1d) for x in m.head) == 2
    x1, x2 = torch.randn(6, 5), torch.randn(6, 7)
    loss, _ = m.loss(x1, x2, None, torch.arange(6), None)
    # without augmentation both views are the inputs; recompute with the head per output
    z = m.fusion(m.enc1(x1), m.enc2(x2), MASKS_ALL)
    per_output = [m.head(zi) for zi in z]
    expected, _ = comm_loss(per_output, per_output, CFG.temperature)
    torch.testing.assert_close(loss, expected)
    # one BatchNorm over all six outputs together gives another loss
    joint = m.head(torch.cat(z + z, 0)).split(6, 0)
    other, _ = comm_loss(list(joint[:3]), list(joint[3:]), CFG.temperature)
    assert not torch.allclose(loss, other)


def test_feature_tokens_are_rank_one_per_feature():
    """Token i of the feature-token encoder is h_i * w_i + b_i: minus its bias, a multiple of
    w_i (their FeaturesInputAdapter after an MLP), 8 tokens per modality."""
    m = _learner("CoMMFeatureTokens")
    x = torch.randn(4, 5)
    t = m.enc1(x)
    assert t.shape == (4, 8, CFG.d_model)
    h = m.enc1.mlp(x)
    torch.testing.assert_close(t - m.enc1.bias, h[:, :, None] * m.enc1.weight)
