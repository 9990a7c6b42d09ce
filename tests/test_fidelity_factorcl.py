"""FactorCL against the authors' code (pliang279/FactorCL), on the parts that correspond.

The fixtures under tests/fixtures/fidelity/ were made by running the authors' modules
(`tools/fidelity/make_fixtures_factorcl.py`; repository and commit in factorcl.json). Their
critics are concatenation MLPs f([x, y]); ours are separable, <g(a), h(b)> / tau. So what is
compared is what follows a critic's score matrix: the InfoNCE and NCE-CLUB estimates, their
gradients, and the FactorCL-SSL objective assembled from the six critics' scores. Their score
matrices put y_i in row i (`T1[i, j] = f(x_j, y_i)`) and the positives on the diagonal, which
is the layout our estimators read (row = anchor).

Differences these tests pin down, each exactly (reports/fidelity/infmasking_factorcl.md):
their NCE-CLUB averages f over all n^2 pairs, the positives included, ours over the n(n - 1)
others, so theirs = ours x (n - 1) / n; their objective counts -CLUB(X1; X2) and
I_NCE(X1; X2 | X1', X2') once, ours twice (once in each of U1's and U2's bounds); and their
synthetic-data model conditions CLUB(X1; X2 | X1', X2') on X1 twice (and X2 twice), which
their MultiBench model and ours do not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import pid_bench.learners.factorcl as fcl
from pid_bench.config import AugConfig, ModelConfig
from pid_bench.learners.factorcl import FactorCL, factorcl_ssl_loss
from pid_bench.learners.losses import club_from_scores, nce_from_scores

FIXTURES = Path(__file__).parent / "fixtures" / "fidelity"
META = json.loads((FIXTURES / "factorcl.json").read_text())
OBJ = np.load(FIXTURES / "factorcl_objectives.npz")
SSL = np.load(FIXTURES / "factorcl_ssl.npz")
TOL = {"rtol": 1e-5, "atol": 1e-6}

#: their forward's six terms (in their order) -> our score matrix
OURS = {
    "infonce_x1x2": "shared",
    "club_x1x2": "unique_club",
    "infonce_x1y": "unique1",
    "infonce_x2y": "unique2",
    "infonce_x1x2_cond": "unique_cond",
    "club_x1x2_cond": "shared_cond",
}
EST = {
    "shared": "nce_shared",
    "unique_club": "club_unique",
    "unique1": "nce_unique1",
    "unique2": "nce_unique2",
    "unique_cond": "nce_unique_cond",
    "shared_cond": "club_shared_cond",
}


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a)).clone()


def _their_grad(prefix: str, data) -> torch.Tensor:
    """d loss / d score matrix as one function of the pair scores: their positives are
    computed twice (T0 and the diagonal of T1), so both paths add up."""
    return _t(data[prefix + "grad_T1"]) + torch.diag(_t(data[prefix + "grad_T0"]))


def test_fixture_metadata_names_the_repository_and_commit():
    assert META["repository"] == "pliang279/FactorCL"
    assert re.fullmatch(r"[0-9a-f]{40}", META["commit"])
    assert META["torch"] and "make_fixtures_factorcl.py" in META["command"]


# ---------------------------------------------------------------- estimators on their scores


@pytest.mark.parametrize("prefix", ["nce_", "clublearn_"])
def test_infonce_equals_their_critic_objective(prefix):
    """-I_NCE of their InfoNCECritic, and the InfoNCE loss that trains their CLUB critic
    (`learning_loss`), against `nce_from_scores` on the same scores, with gradients."""
    np.testing.assert_allclose(OBJ[prefix + "T0"], np.diag(OBJ[prefix + "T1"]), rtol=1e-6)
    m = _t(OBJ[prefix + "T1"]).requires_grad_()
    ours = -nce_from_scores(m)
    ours.backward()
    torch.testing.assert_close(ours, _t(OBJ[prefix + "value"]), **TOL)
    torch.testing.assert_close(m.grad, _their_grad(prefix, OBJ), **TOL)


def test_infonce_equals_their_lower_bound_on_a_score_matrix():
    m = _t(OBJ["lb_scores"]).requires_grad_()
    ours = nce_from_scores(m)
    ours.backward()
    torch.testing.assert_close(ours, _t(OBJ["lb_value"]), **TOL)
    torch.testing.assert_close(m.grad, _t(OBJ["lb_grad"]), **TOL)


def test_club_is_theirs_with_the_positives_left_out_of_the_marginal_term():
    """Their NCE-CLUB = mean f(positives) - mean f(all n^2 pairs); ours takes the second mean
    over the n(n - 1) non-positive pairs: theirs = ours x (n - 1) / n, gradients likewise."""
    m = _t(OBJ["club_T1"]).requires_grad_()
    n = m.shape[0]
    ours = club_from_scores(m)
    ours.backward()
    theirs = _t(OBJ["club_value"])
    torch.testing.assert_close(ours * (n - 1) / n, theirs, **TOL)
    torch.testing.assert_close(m.grad * (n - 1) / n, _their_grad("club_", OBJ), **TOL)
    assert abs(ours - theirs) > 0.1 * abs(theirs) / n  # a real, if small, difference


# ---------------------------------------------------------------- the FactorCL-SSL objective


def _scores(tag: str) -> dict[str, torch.Tensor]:
    return {OURS[t]: _t(SSL[f"{tag}_{t}_T1"]).requires_grad_() for t in OURS}


def _weights(n: int) -> dict[str, float]:
    """Our objective's derivative per their term: the two terms ours counts twice, and
    the n / (n - 1) of our CLUB estimate."""
    club = n / (n - 1)
    return {"shared": 1, "unique1": 1, "unique2": 1, "unique_cond": 2,
            "shared_cond": club, "unique_club": 2 * club}  # fmt: skip


def test_ssl_objective_equals_theirs_with_its_conditioning_fixed():
    """Their MultiBench FactorCLSSL (CLUB conditioned on (X1, X1'), (X2, X2')) on given
    embeddings: its six terms, its total, and the gradient of the total with respect to each
    critic's scores, against `factorcl_ssl_loss` on the same scores."""
    scores = _scores("multi")
    n = next(iter(scores.values())).shape[0]
    terms = dict(zip(OURS, SSL["multi_terms"].tolist(), strict=True))
    # their total is the plain sum of the six terms (each -I_NCE or +CLUB)
    assert SSL["multi_loss"] == pytest.approx(sum(terms.values()), rel=1e-5)
    loss, est = factorcl_ssl_loss(scores)
    for theirs, ours in OURS.items():
        value = float(est[EST[ours]])
        if theirs.startswith("club"):
            assert value * (n - 1) / n == pytest.approx(terms[theirs], rel=1e-5, abs=1e-6), theirs
        else:
            assert -value == pytest.approx(terms[theirs], rel=1e-5, abs=1e-6), theirs
    w = _weights(n)
    want = sum(w[OURS[t]] * v for t, v in terms.items())
    assert float(loss) == pytest.approx(want, rel=1e-5, abs=1e-6)
    # and ours is not theirs until those weights are applied
    assert abs(float(loss) - float(SSL["multi_loss"])) > 0.05
    loss.backward()
    for theirs, ours in OURS.items():
        torch.testing.assert_close(
            scores[ours].grad, w[ours] * _their_grad(f"multi_{theirs}_", SSL), **TOL, msg=theirs
        )


def test_critic_training_loss_equals_their_learning_loss():
    """Their `learning_loss` (the two CLUB critics' InfoNCE) against -nce_from_scores on the
    same scores, the loss our learner adds for its CLUB critics."""
    total = 0.0
    for i, name in enumerate(("club_x1x2", "club_x1x2_cond")):
        m = _t(SSL[f"multi_learn_{name}_T1"]).requires_grad_()
        ours = -nce_from_scores(m)
        ours.backward()
        torch.testing.assert_close(ours, _t(SSL["multi_learn_terms"][i]), **TOL)
        torch.testing.assert_close(m.grad, _their_grad(f"multi_learn_{name}_", SSL), **TOL)
        total += float(ours)
    assert total == pytest.approx(float(SSL["multi_learn_loss"]), rel=1e-5)


def test_their_synthetic_model_differs_only_by_conditioning_on_x_twice():
    """The public synthetic-data FactorCLSSL (same heads, critics and embeddings): five terms
    equal the MultiBench version's; CLUB(X1; X2 | X1', X2') differs, and equals the MultiBench
    version's handed X1' = X1 and X2' = X2; the totals differ by exactly that term."""
    multi, syn, twice = SSL["multi_terms"], SSL["syn_terms"], SSL["multi_twice_terms"]
    np.testing.assert_allclose(syn[:5], multi[:5], rtol=1e-6)
    assert abs(syn[5] - multi[5]) > 0.05
    assert syn[5] == pytest.approx(twice[5], rel=1e-5)
    assert float(SSL["syn_loss"] - SSL["multi_loss"]) == pytest.approx(
        float(syn[5] - multi[5]), rel=1e-4
    )
    # its critic is trained on the same wrong conditioning
    assert SSL["syn_learn_terms"][0] == pytest.approx(SSL["multi_learn_terms"][0], rel=1e-6)
    assert abs(SSL["syn_learn_terms"][1] - SSL["multi_learn_terms"][1]) > 0.05
    # ours on the synthetic version's scores is off from ours on the fixed ones by the
    # weighted difference of that one term
    fixed, _ = factorcl_ssl_loss(_scores("multi"))
    wrong, _ = factorcl_ssl_loss(_scores("syn"))
    n = SSL["x1"].shape[0]
    diff = _weights(n)["shared_cond"] * (syn[5] - multi[5])
    assert float(wrong - fixed) == pytest.approx(float(diff), rel=1e-4)


# ---------------------------------------------------------------- our learner


def _learner() -> FactorCL:
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=16, n_tokens=4, hidden=32, proj_dim=8)
    return FactorCL(("vector", "vector"), ((6,), (5,)), cfg, AugConfig())


def _views(m: FactorCL, monkeypatch, n: int = 8):
    g = torch.Generator().manual_seed(4)
    x1, x2 = torch.randn(n, 6, generator=g), torch.randn(n, 5, generator=g)
    views = iter([(torch.randn(n, 6, generator=g), torch.randn(n, 5, generator=g)) for _ in "ab"])
    monkeypatch.setattr(m, "augment", lambda a, b, generator: next(views))
    return x1, x2


def test_learner_conditions_on_both_views(monkeypatch):
    """The conditional critics see [head(X_i'), head(X_i'')] of each modality: the two
    augmented views, not one view twice (the public synthetic code's slip)."""
    m = _learner()
    x1, x2 = _views(m, monkeypatch)
    n = x1.shape[0]
    heads, inputs = {}, {}
    for name in ("s1", "s2", "u1", "u2"):
        getattr(m, name).register_forward_hook(
            lambda _m, _a, out, name=name: heads.__setitem__(name, out.detach())
        )

    def first_call(name):
        def hook(_module, args):
            inputs.setdefault(name, [a.detach() for a in args])  # a pre-hook returns None

        return hook

    for name in ("crit_s_cond", "crit_u_cond"):
        getattr(m, name).register_forward_pre_hook(first_call(name))
    m.loss(x1, x2, None, None, None)
    for critic, (h1, h2) in (("crit_s_cond", ("s1", "s2")), ("crit_u_cond", ("u1", "u2"))):
        a, b = inputs[critic]
        for got, head in ((a, h1), (b, h2)):
            want = torch.cat([heads[head][:n], heads[head][n:]], 1)
            torch.testing.assert_close(got, want)
            assert not torch.allclose(got[:, : want.shape[1] // 2], got[:, want.shape[1] // 2 :])


def test_club_critics_learn_by_infonce_and_pass_club_to_the_encoders_frozen(monkeypatch):
    """As their training loop has it (the CLUB critics stepped on `learning_loss` alone, the
    rest on `forward`'s loss alone): the CLUB critics' gradient is that of their InfoNCE
    loss only; the encoders' and heads' gradient is that of the objective only, and it
    carries the CLUB terms through the critics."""
    m = _learner()
    x1, x2 = _views(m, monkeypatch)
    seen = {}

    def spy(scores):
        seen["objective"], seen["est"] = factorcl_ssl_loss(scores)
        return seen["objective"], seen["est"]

    monkeypatch.setattr(fcl, "factorcl_ssl_loss", spy)
    loss, _ = m.loss(x1, x2, None, None, None)
    objective, est = seen["objective"], seen["est"]
    critics = loss - objective
    club = [p for c in (m.crit_s_cond, m.crit_u_club) for p in c.parameters()]
    features = [p for mod in (m.enc1, m.enc2, m.s1, m.s2, m.u1, m.u2) for p in mod.parameters()]

    def grads(y, params):
        return torch.autograd.grad(y, params, retain_graph=True, allow_unused=True)

    def zero(gs):
        return all(g is None or not g.any() for g in gs)

    assert zero(grads(objective, club))
    assert not zero(grads(critics, club))
    assert zero(grads(critics, features))
    for term in ("club_unique", "club_shared_cond"):
        assert not zero(grads(est[term], features)), term
