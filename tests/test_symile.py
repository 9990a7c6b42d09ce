"""Symile's loss against the authors' package (fixture), and the learner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pid_bench.learners.losses import info_nce, symile_loss

FIX = Path(__file__).parent / "fixtures" / "fidelity" / "symile"


@pytest.mark.parametrize(("m", "neg"), [(2, "n"), (3, "n"), (3, "n_squared")])
def test_loss_and_gradients_match_the_authors_package(m: int, neg: str) -> None:
    """symile 0.1.0's `Symile(neg)(reps, scale)`, run by tools/fidelity/make_fixtures_symile.py;
    its "n" permutations come from torch's generator seeded 7, ours from a Generator seeded 7."""
    meta = json.loads(FIX.with_suffix(".json").read_text())
    assert meta["package"].startswith("symile") and meta["version"] == "0.1.0"
    z = np.load(FIX.with_suffix(".npz"))
    reps = [torch.tensor(r, requires_grad=True) for r in z[f"reps{m}"]]
    gen = torch.Generator().manual_seed(int(z["torch_seed_n"]))
    loss = symile_loss(reps, float(z["logit_scale"]), neg, gen)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(float(z[f"loss{m}_{neg}"]), rel=1e-6)
    grads = np.stack([r.grad.numpy() for r in reps])
    np.testing.assert_allclose(grads, z[f"grad{m}_{neg}"], atol=1e-6)


def test_multilinear_inner_product_by_hand() -> None:
    """n_squared, three modalities, two rows: each anchor's row against all 4 combinations of
    the other two modalities' rows, written out."""
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(2, 3, generator=g) for _ in range(3))
    want = []
    for anchor, (p, q) in ((a, (b, c)), (b, (a, c)), (c, (a, b))):
        logits = torch.stack(
            [torch.stack([(anchor[i] * p[j] * q[k]).sum() for j in range(2) for k in range(2)])
             for i in range(2)]
        )  # fmt: skip
        target = torch.tensor([0, 3])  # (i, i): combination 0 * 2 + 0 and 1 * 2 + 1
        want.append(torch.nn.functional.cross_entropy(2.0 * logits, target))
    got = symile_loss([a, b, c], 2.0, "n_squared")
    torch.testing.assert_close(got, torch.stack(want).mean())


def test_two_modalities_with_n_squared_is_clip() -> None:
    """For two modalities the MIP is the dot product: n_squared's candidates are every row of
    the other modality, i.e. CLIP's InfoNCE (on given, normalised embeddings)."""
    g = torch.Generator().manual_seed(1)
    a, b = (torch.nn.functional.normalize(torch.randn(8, 4, generator=g), dim=-1) for _ in "ab")
    torch.testing.assert_close(symile_loss([a, b], 10.0, "n_squared"), info_nce(a, b, 0.1))


def test_bad_negatives() -> None:
    with pytest.raises(ValueError, match="negatives must be 'n' or 'n_squared'"):
        symile_loss([torch.zeros(2, 2)] * 3, 1.0, "all")
