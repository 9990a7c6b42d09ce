"""Fixtures from the authors' FactorCL code, for tests/test_fidelity_factorcl.py.

    python tools/fidelity/make_fixtures_factorcl.py --factorcl PATH --out tests/fixtures/fidelity

PATH is a checkout of pliang279/FactorCL. Their modules (critic_objectives.py,
multibench_model.py, synthetic_model.py) are imported from it and run on CPU on fixed inputs
with fixed weights; nothing of theirs is copied here. Shims: `torchvision` (multibench_model
imports `transforms` and does not use it) as an empty module, and `.cuda()` a no-op.

Their critics are concatenation critics (an MLP on [x, y], one score per pair); ours are
separable. What corresponds is everything downstream of a critic's score matrix, so every
record below carries the score matrices their critics produced (`T1[i, j] = f(x_j, y_i)`, as
their InfoNCE and CLUB code lays them out: row i is y_i) and the gradients of the loss with
respect to them (the pairwise matrix T1 and the separately computed positives T0 = f(x_i, y_i)).

Writes, under --out:

- factorcl_objectives.npz: `InfoNCECritic.forward` (-I_NCE), `CLUBInfoNCECritic.forward`
  (I_NCE-CLUB) and `.learning_loss` (the critic's InfoNCE loss), and
  `infonce_lower_bound_obj` on a given score matrix: values, score matrices, gradients;
- factorcl_ssl.npz: `FactorCLSSL` of multibench_model.py (conditioning on (X1, X1')) and of
  synthetic_model.py (the public code's CLUB(X1; X2 | X1', X2') conditioned on X1 twice), with
  the same heads and critics, identity backbones and given embeddings x1, x2, x1', x2': the
  loss of `forward`, each of its six terms, their critics' score matrices and the gradients;
  the same for `learning_loss` (the CLUB critics' InfoNCE); and the multibench version handed
  x1' = x1, x2' = x2 ("multi_twice"), whose conditional CLUB term is the synthetic version's;
- factorcl.json: repository, commit, torch version, the command, sizes and term names.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

N, DX, DY, HIDDEN = 6, 5, 4, 16  # objectives: batch, widths of x and y, critic hidden width
SSL_N, SSL_E = 8, 6  # SSL loss: batch, embedding width (both modalities)
SPREAD = 100.0  # scale of the critics' output layers (see `_spread`)
# their forward's six terms, in the order of their `uncond_losses + cond_losses`
TERMS = [
    "infonce_x1x2",  # -I_NCE(X1; X2)                      ours: shared
    "club_x1x2",  # +CLUB(X1; X2)                          ours: unique_club
    "infonce_x1y",  # -I_NCE(X1; X1')                      ours: unique1
    "infonce_x2y",  # -I_NCE(X2; X2')                      ours: unique2
    "infonce_x1x2_cond",  # -I_NCE(X1; X2 | X1', X2')      ours: unique_cond
    "club_x1x2_cond",  # +CLUB(X1; X2 | X1', X2')          ours: shared_cond
]
CLUB_TERMS = ["club_x1x2", "club_x1x2_cond"]  # what `learning_loss` trains
HEADS = [
    "linears_infonce_x1x2",
    "linears_club_x1x2_cond",
    "linears_infonce_x1y",
    "linears_infonce_x2y",
    "linears_infonce_x1x2_cond",
    "linears_club_x1x2",
]


def install_shims() -> None:
    """Stand-ins for what their imports need on one CPU process."""
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms})
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self


class Scores:
    """Records what a critic's scoring MLP `_f` returns: T0 (positives) then T1 (all pairs)."""

    def __init__(self, critic: nn.Module) -> None:
        self.out: list[torch.Tensor] = []
        self.hook = critic._f.register_forward_hook(self._keep)

    def _keep(self, _module, _args, output):
        output.retain_grad()
        self.out.append(output)

    def pair(self, i: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(T0 (n,), T1 (n, n)) of the i-th call of the critic."""
        t0, t1 = self.out[2 * i], self.out[2 * i + 1]
        return t0, t1

    @staticmethod
    def arrays(prefix: str, t0: torch.Tensor, t1: torch.Tensor) -> dict[str, np.ndarray]:
        return {
            prefix + "T0": t0.detach()[..., 0].numpy(),
            prefix + "T1": t1.detach()[..., 0].numpy(),
            prefix + "grad_T0": t0.grad[..., 0].numpy(),
            prefix + "grad_T1": t1.grad[..., 0].numpy(),
        }


def _params(prefix: str, module: nn.Module) -> dict[str, np.ndarray]:
    return {f"{prefix}param.{k}": v.detach().numpy() for k, v in module.state_dict().items()}


def objective_fixtures(co) -> dict[str, np.ndarray]:
    """Their InfoNCE and NCE-CLUB objectives on fixed inputs and critics."""
    out: dict[str, np.ndarray] = {}
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, DX, generator=g)
    y = torch.randn(N, DY, generator=g)
    out.update(x=x.numpy(), y=y.numpy())

    nce = _spread(co.InfoNCECritic(DX, DY, HIDDEN, 1, "relu"))
    club = _spread(co.CLUBInfoNCECritic(DX, DY, HIDDEN, 1, "relu"))
    for name, critic, method in (
        ("nce_", nce, "forward"),
        ("club_", club, "forward"),
        ("clublearn_", club, "learning_loss"),
    ):
        xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
        rec = Scores(critic)
        value = getattr(critic, method)(xs, ys)
        rec.hook.remove()
        value.backward()
        critic.zero_grad()
        out.update(Scores.arrays(name, *rec.pair()))
        out.update({name + "value": np.float32(value.item()), name + "grad_x": xs.grad.numpy()})
        out[name + "grad_y"] = ys.grad.numpy()
    out.update(_params("nce_", nce))
    out.update(_params("club_", club))

    scores = torch.randn(N, N, generator=g).requires_grad_()
    value = co.infonce_lower_bound_obj(scores)
    value.backward()
    out.update(
        lb_scores=scores.detach().numpy(),
        lb_value=np.float32(value.item()),
        lb_grad=scores.grad.numpy(),
    )
    return out


def _spread(critic: nn.Module) -> nn.Module:
    """Scale the critic's output layer so that its scores spread over a few units, as a
    trained critic's do (at initialisation they differ by about 1e-2 and every term is ~0)."""
    with torch.no_grad():
        critic._f[-1].weight.mul_(SPREAD)
    return critic


def _small_critics(co, model: nn.Module, e: int) -> None:
    """Their critics at hidden width HIDDEN instead of the hard-coded 512 (fixture size)."""
    for name in TERMS:
        cls = co.CLUBInfoNCECritic if name in CLUB_TERMS else co.InfoNCECritic
        width = 2 * e if name.endswith("_cond") else e
        setattr(model, name, _spread(cls(width, width, HIDDEN, 1, "relu")))


def ssl_fixtures(co, mb, sm) -> tuple[dict[str, np.ndarray], dict]:
    """Both public FactorCLSSL versions, sharing heads and critics, on given embeddings."""
    torch.manual_seed(2)
    e = SSL_E
    syn = sm.FactorCLSSL(e, e, hidden_dim=8, embed_dim=e)
    syn.backbones = nn.ModuleList([nn.Identity(), nn.Identity()])
    _small_critics(co, syn, e)
    multi = mb.FactorCLSSL(encoders=[nn.Identity(), nn.Identity()], feat_dims=[e, e], y_ohe_dim=2)
    for name in HEADS + TERMS:  # the same modules (weights) in both versions
        setattr(multi, name, copy.deepcopy(getattr(syn, name)))
    g = torch.Generator().manual_seed(3)
    emb = {k: 3 * torch.randn(SSL_N, e, generator=g) for k in ("x1", "x2", "x1_aug", "x2_aug")}
    out = {k: v.numpy() for k, v in emb.items()}
    out.update(_params("", multi))
    notes: dict = {}

    def run(tag: str, model: nn.Module, call) -> None:
        xs = {k: v.clone().requires_grad_() for k, v in emb.items()}
        recs = {name: Scores(getattr(model, name)) for name in TERMS}
        values: dict[str, torch.Tensor] = {}
        hooks = [
            getattr(model, name).register_forward_hook(
                lambda _m, _a, o, name=name: values.__setitem__(name, o)
            )
            for name in TERMS
        ]
        learned: dict[str, torch.Tensor] = {}
        for name in CLUB_TERMS:  # learning_loss is a method, not forward: wrap it
            critic = getattr(model, name)
            critic.learning_loss = lambda a, b, critic=critic, name=name: learned.setdefault(
                name, type(critic).learning_loss(critic, a, b)
            )
        total = call(model, xs)
        for h in hooks:
            h.remove()
        for rec in recs.values():
            rec.hook.remove()
        for name in CLUB_TERMS:
            del getattr(model, name).learning_loss
        total.backward()
        model.zero_grad()
        parts = learned if learned else values
        names = CLUB_TERMS if learned else TERMS
        out[f"{tag}_loss"] = np.float32(total.item())
        out[f"{tag}_terms"] = np.array([parts[n].item() for n in names], "f4")
        for k, v in xs.items():
            out[f"{tag}_grad_{k}"] = (
                v.grad.numpy() if v.grad is not None else np.zeros_like(v.detach().numpy())
            )
        for name in names:
            if recs[name].out:
                out.update(Scores.arrays(f"{tag}_{name}_", *recs[name].pair()))
        notes[tag] = names

    run("multi", multi, lambda m, x: m(x["x1"], x["x2"], x["x1_aug"], x["x2_aug"]))
    run(
        "multi_learn",
        multi,
        lambda m, x: m.learning_loss(x["x1"], x["x2"], x["x1_aug"], x["x2_aug"]),
    )

    def synthetic(learn: bool):
        def call(m, x):
            # their forward draws X' itself with `augment_single`: hand it the given views
            views = {id(x["x1"]): x["x1_aug"], id(x["x2"]): x["x2_aug"]}
            sm.augment_single = lambda batch: views[id(batch)]
            return m.learning_loss(x["x1"], x["x2"]) if learn else m(x["x1"], x["x2"])

        return call

    # the correct version handed X' = X: its CLUB(X1; X2 | X1', X2') is then the synthetic one's
    run("multi_twice", multi, lambda m, x: m(x["x1"], x["x2"], x["x1"], x["x2"]))
    run("syn", syn, synthetic(False))
    run("syn_learn", syn, synthetic(True))
    return out, notes


def main(argv: list[str] | None = None) -> None:
    """Run the authors' FactorCL modules and write the fixtures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--factorcl", required=True, type=Path, help="pliang279/FactorCL")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    repo = args.factorcl.resolve()
    install_shims()
    sys.path.insert(0, str(repo))
    import critic_objectives as co
    import multibench_model as mb
    import synthetic_model as sm

    objectives = objective_fixtures(co)
    ssl, calls = ssl_fixtures(co, mb, sm)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "factorcl_objectives.npz", **objectives)
    np.savez_compressed(args.out / "factorcl_ssl.npz", **ssl)
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    meta = {
        "repository": "pliang279/FactorCL",
        "commit": commit,
        "torch": torch.__version__,
        "command": "python tools/fidelity/make_fixtures_factorcl.py --factorcl PATH "
        f"--out {args.out.as_posix()}",
        "modules": [
            "critic_objectives.py:InfoNCECritic,CLUBInfoNCECritic,infonce_lower_bound_obj",
            "multibench_model.py:FactorCLSSL",
            "synthetic_model.py:FactorCLSSL",
        ],
        "shims": "torchvision an empty module (imported, unused); .cuda() a no-op; "
        "synthetic_model.augment_single returns the given x1', x2'",
        "objectives": {"batch": N, "dx": DX, "dy": DY, "critic_hidden": HIDDEN},
        "critic_output_scale": SPREAD,
        "ssl": {
            "batch": SSL_N,
            "embed": SSL_E,
            "critic_hidden": HIDDEN,
            "backbones": "identity (the inputs are the embeddings)",
            "heads": "synthetic_model.py's mlp(E, E, E, 1), the same modules in both versions",
            "terms": calls,
        },
    }
    (args.out / "factorcl.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out}/factorcl_objectives.npz, factorcl_ssl.npz, factorcl.json")


if __name__ == "__main__":
    main()
