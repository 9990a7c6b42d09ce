"""Make the CoMM and Cross+Self fidelity fixtures from the authors' released code.

    python tools/fidelity/make_fixtures_comm.py --comm /path/to/CoMM --out tests/fixtures/fidelity

Imports the modules of a checkout of Duplums/CoMM (nothing of theirs is copied here), runs
them once on fixed random inputs and weights, and saves inputs, weights, outputs, losses,
each loss term and the gradient of every parameter and input, for
`tests/test_fidelity_comm.py` to compare with this suite's modules. Not run by CI.

Needs torch and einops (their fusion module imports einops; a venv whose site-packages
include torch==2.13.0 plus `pip install --no-deps einops` will do). Their imports of
PyTorch Lightning, OmegaConf and TensorBoard are replaced by stub modules in `sys.modules`
before their code is imported; their distributed all-gather returns its input unchanged on
one process (torch.distributed is not initialised), so it needs no stub.

Files written (float32, a few kB each):

- comm_fusion_head.npz: their CoMM (pl_modules/comm.py) with MMFusion (identity encoders,
  no input adapters: the inputs are the tokens) and the `_build_mlp` head, on two views of
  tokens of two modalities; fusion output (CLS) per mask, head outputs in training mode
  (BatchNorm on batch statistics), CoMMLoss and its terms, every gradient, BatchNorm running
  statistics after the pass and eval-mode head outputs.
- comm_losses.npz: CoMMLoss on given embeddings (2 and 3 modalities), InfoNCE (their
  SimCLR NT-Xent), CrossSelfLoss on given embeddings, and their CrossSelf module (identity
  encoders, `Siamese._build_mlp` heads) on given embeddings: losses, terms, gradients.
- comm.json: repository, commit, torch version, command, date and the sizes used.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPOSITORY = "Duplums/CoMM"
SEED = 0
#: Sizes: tiny, so the fixtures stay a few kB. Batch >= 4 so that BatchNorm statistics mean
#: something; token counts differ so that Z1 and Z2 go through separate sequence lengths.
WIDTH, HEADS, LAYERS = 16, 2, 1
HEAD_HIDDEN, HEAD_OUT = 32, 8
BATCH, TOKENS = 6, (3, 2)
TEMPERATURE = 0.1
MASKS = [[True, False], [False, True], [True, True]]


def install_stubs() -> None:
    """Stub modules for what the authors' modules import but these fixtures never run:
    Lightning (their models subclass LightningModule; here it is nn.Module), OmegaConf and
    TensorBoard (imported by their utils.py for training helpers)."""

    class LightningModule(nn.Module):
        pass

    class _Unused:
        def __init__(self, *args, **kwargs) -> None:
            pass

    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = LightningModule
    pl.LightningDataModule = _Unused
    pl.Callback = _Unused
    pl.Trainer = _Unused
    omegaconf = types.ModuleType("omegaconf")
    omegaconf.DictConfig = dict
    tb = types.ModuleType("tensorboard")
    tb_backend = types.ModuleType("tensorboard.backend")
    tb_ep = types.ModuleType("tensorboard.backend.event_processing")
    tb_ea = types.ModuleType("tensorboard.backend.event_processing.event_accumulator")
    tb.backend, tb_backend.event_processing = tb_backend, tb_ep
    tb_ep.event_accumulator = tb_ea
    sys.modules.update(
        {
            "pytorch_lightning": pl,
            "omegaconf": omegaconf,
            "tensorboard": tb,
            "tensorboard.backend": tb_backend,
            "tensorboard.backend.event_processing": tb_ep,
            "tensorboard.backend.event_processing.event_accumulator": tb_ea,
        }
    )


def arrays(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """`{prefix + name: float32 array}` of detached tensors."""
    return {prefix + k: v.detach().cpu().numpy().copy() for k, v in tensors.items()}


def leaf(g: torch.Generator, *shape: int) -> torch.Tensor:
    """A random input that records its gradient."""
    return torch.randn(*shape, generator=g).requires_grad_(True)


def comm_fusion_head() -> dict[str, np.ndarray]:
    """Their CoMM module (MMFusion + _build_mlp head + CoMMLoss) on two views of tokens."""
    from models.mmfusion import MMFusion
    from pl_modules.comm import CoMM

    torch.manual_seed(SEED)
    encoder = MMFusion(
        encoders=[nn.Identity(), nn.Identity()],
        input_adapters=[None, None],
        embed_dim=WIDTH,
        fusion="concat",
        pool="cls",
        n_heads=HEADS,
        n_layers=LAYERS,
        add_bias_kv=False,
        dropout=0.0,
    )
    head = CoMM._build_mlp(WIDTH, HEAD_HIDDEN, HEAD_OUT)
    model = CoMM(encoder, head, optim_kwargs={}, loss_kwargs={"temperature": TEMPERATURE})
    model.train()
    out = arrays("w/", model.state_dict())

    g = torch.Generator().manual_seed(SEED + 1)
    views = {v: [leaf(g, BATCH, n, WIDTH) for n in TOKENS] for v in "ab"}
    for v, toks in views.items():
        for i, t in enumerate(toks, start=1):
            out[f"in/tok{i}_{v}"] = t.detach().numpy().copy()

    # The fusion outputs alone (no BatchNorm there, so this pass changes no state), per mask
    # and over the full sequence without a mask list (their padding-mask path).
    with torch.no_grad():
        for v, toks in views.items():
            for k, z in enumerate(model.encoder(toks, mask_modalities=MASKS)):
                out[f"fusion/{v}/{k}"] = z.numpy().copy()
            out[f"fusion/{v}/full"] = model.encoder(toks).numpy().copy()

    outputs = model(views["a"], views["b"])
    for v, key in (("a", "aug1_embed"), ("b", "aug2_embed")):
        for k, h in enumerate(outputs[key]):
            out[f"head/{v}/{k}"] = h.detach().numpy().copy()
    res = model.loss(outputs)
    res["loss"].backward()
    out["loss"] = res["loss"].detach().numpy().copy()
    for k in range(len(MASKS)):
        out[f"term/{k}"] = res[f"ssl_loss_{k}"].detach().numpy().copy()
    out.update(
        arrays("grad/", {k: p.grad for k, p in model.named_parameters() if p.grad is not None})
    )
    for v, toks in views.items():
        for i, t in enumerate(toks, start=1):
            out[f"grad_in/tok{i}_{v}"] = t.grad.numpy().copy()
    out.update(arrays("after/", {k: b for k, b in model.named_buffers()}))
    # The head in eval mode (running statistics) on the fusion outputs of view a.
    model.head.eval()
    with torch.no_grad():
        for k in range(len(MASKS)):
            out[f"head_eval/a/{k}"] = model.head(torch.from_numpy(out[f"fusion/a/{k}"])).numpy()
    return out


def comm_losses() -> dict[str, np.ndarray]:
    """CoMMLoss, InfoNCE and CrossSelfLoss on given embeddings; CrossSelf with its heads."""
    from losses.comm_loss import CoMMLoss
    from losses.cross_self_loss import CrossSelfLoss
    from losses.infonce import InfoNCE
    from pl_modules.cross_self import CrossSelf
    from pl_modules.simclr import Siamese

    out: dict[str, np.ndarray] = {}
    g = torch.Generator().manual_seed(SEED + 2)

    # CoMMLoss on [Z_1, ..., Z_n, Z] of two views (prototype -1: the last is Z), n = 2, 3.
    for n_mod in (2, 3):
        za = [leaf(g, BATCH, HEAD_OUT) for _ in range(n_mod + 1)]
        zb = [leaf(g, BATCH, HEAD_OUT) for _ in range(n_mod + 1)]
        res = CoMMLoss(temperature=TEMPERATURE)(
            {"aug1_embed": za, "aug2_embed": zb, "prototype": -1}
        )
        res["loss"].backward()
        p = f"comm{n_mod}/"
        out[p + "loss"] = res["loss"].detach().numpy().copy()
        for k in range(n_mod + 1):
            out[p + f"term/{k}"] = res[f"ssl_loss_{k}"].detach().numpy().copy()
            out[p + f"in/a/{k}"] = za[k].detach().numpy().copy()
            out[p + f"in/b/{k}"] = zb[k].detach().numpy().copy()
            out[p + f"grad_in/a/{k}"] = za[k].grad.numpy().copy()
            out[p + f"grad_in/b/{k}"] = zb[k].grad.numpy().copy()

    # InfoNCE (their SimCLR NT-Xent) on two sets of embeddings.
    a, b = leaf(g, BATCH, HEAD_OUT), leaf(g, BATCH, HEAD_OUT)
    res = InfoNCE(temperature=TEMPERATURE)({"aug1_embed": a, "aug2_embed": b})
    res["loss"].backward()
    out.update({"infonce/in/a": a.detach().numpy(), "infonce/in/b": b.detach().numpy()})
    out.update({"infonce/grad_in/a": a.grad.numpy(), "infonce/grad_in/b": b.grad.numpy()})
    out["infonce/loss"] = res["loss"].detach().numpy().copy()

    # CrossSelfLoss on six given embeddings (cross pair, two views of each modality).
    names = ["mod1_embed", "mod2_embed"] + [f"mod{i}_aug{j}_embed" for i in (1, 2) for j in (1, 2)]
    emb = {k: leaf(g, BATCH, HEAD_OUT) for k in names}
    res = CrossSelfLoss(temperature=TEMPERATURE, ssl_scale=1.0)(emb)
    res["loss"].backward()
    out["cross_self_loss/loss"] = res["loss"].detach().numpy().copy()
    for t in ("cross", "mod1", "mod2"):
        out[f"cross_self_loss/term/{t}"] = res[f"loss_{t}"].detach().numpy().copy()
    for k, e in emb.items():
        out[f"cross_self_loss/in/{k}"] = e.detach().numpy().copy()
        out[f"cross_self_loss/grad_in/{k}"] = e.grad.numpy().copy()

    # Their CrossSelf module with identity encoders: the inputs are the encoder embeddings,
    # the heads are Siamese._build_mlp (the Trifeature config's `visual_projection`).
    torch.manual_seed(SEED + 3)
    model = CrossSelf(
        nn.Identity(),
        nn.Identity(),
        Siamese._build_mlp(WIDTH, HEAD_HIDDEN, HEAD_OUT),
        Siamese._build_mlp(WIDTH, HEAD_HIDDEN, HEAD_OUT),
        optim_kwargs={},
        loss_kwargs={"temperature": TEMPERATURE, "ssl_scale": 1.0},
    )
    model.train()
    out.update(arrays("cross_self/w/", model.state_dict()))
    x = {k: leaf(g, BATCH, WIDTH) for k in ("mod1", "mod2", "mod1_aug1", "mod1_aug2")}
    x.update({k: leaf(g, BATCH, WIDTH) for k in ("mod2_aug1", "mod2_aug2")})
    outputs = model(
        x["mod1"], x["mod2"], [x["mod1_aug1"], x["mod1_aug2"]], [x["mod2_aug1"], x["mod2_aug2"]]
    )
    res = model.loss(outputs)
    res["loss"].backward()
    p = "cross_self/"
    out[p + "loss"] = res["loss"].detach().numpy().copy()
    for t in ("cross", "mod1", "mod2"):
        out[p + f"term/{t}"] = res[f"loss_{t}"].detach().numpy().copy()
    out.update(arrays(p + "head_out/", outputs))
    out.update(arrays(p + "in/", x))
    out.update(arrays(p + "grad_in/", {k: v.grad for k, v in x.items()}))
    out.update(
        arrays(p + "grad/", {k: q.grad for k, q in model.named_parameters() if q.grad is not None})
    )
    out.update(arrays(p + "after/", dict(model.named_buffers())))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comm", required=True, help="path to a checkout of Duplums/CoMM")
    ap.add_argument("--out", default="tests/fixtures/fidelity", help="output folder")
    args = ap.parse_args(argv)
    comm = Path(args.comm).resolve()
    if not (comm / "models" / "mmfusion.py").is_file():
        sys.exit(f"{comm} is not a checkout of {REPOSITORY} (no models/mmfusion.py)")
    commit = subprocess.run(
        ["git", "-C", str(comm), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "-C", str(comm), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        sys.exit("run on one process: their all-gather must be the identity")
    torch.set_num_threads(1)
    install_stubs()
    sys.path.insert(0, str(comm))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "comm_fusion_head.npz": comm_fusion_head(),
        "comm_losses.npz": comm_losses(),
    }
    for name, data in files.items():
        np.savez_compressed(out / name, **data)
    meta = {
        "repository": REPOSITORY,
        "commit": commit,
        "checkout_modified": dirty,
        "torch": torch.__version__,
        "command": shlex.join(["python", *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "seed": SEED,
        "sizes": {
            "width": WIDTH,
            "heads": HEADS,
            "layers": LAYERS,
            "head_hidden": HEAD_HIDDEN,
            "head_out": HEAD_OUT,
            "batch": BATCH,
            "tokens": list(TOKENS),
            "temperature": TEMPERATURE,
            "masks": MASKS,
        },
        "files": {
            "comm_fusion_head.npz": "pl_modules/comm.py CoMM (models/mmfusion.py MMFusion with "
            "identity encoders, CoMM._build_mlp head, losses/comm_loss.py CoMMLoss) on two "
            "views of tokens",
            "comm_losses.npz": "losses/comm_loss.py, losses/infonce.py, "
            "losses/cross_self_loss.py on given embeddings; pl_modules/cross_self.py CrossSelf "
            "(identity encoders, pl_modules/simclr.py Siamese._build_mlp heads)",
        },
    }
    (out / "comm.json").write_text(json.dumps(meta, indent=2) + "\n")
    for name in [*files, "comm.json"]:
        print(f"{out / name}: {(out / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
