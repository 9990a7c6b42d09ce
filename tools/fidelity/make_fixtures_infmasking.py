"""Fixtures from the authors' InfMasking code, for tests/test_fidelity_infmasking.py.

    python tools/fidelity/make_fixtures_infmasking.py --infmasking PATH \
        --out tests/fixtures/fidelity

PATH is a checkout of brightest66/InfMasking. Their modules are imported from it and run on
CPU, on fixed inputs with fixed weights; nothing of theirs is copied here. Shims, inserted
before their imports: `utils` (their module pulls Lightning, TensorBoard and pandas) reduced
to the one function the loss uses, the distributed all-gather, which is the identity on one
process (as their own code returns it when the world size is 1); `timm.models.layers` reduced
to `trunc_normal_` (torch's, the same sampler; the weights are saved anyway); and `.cuda()`
made a no-op, because their loss moves its labels and criterion to the GPU.

Writes, under --out:

- infmasking_loss.npz: their `InfMaskingLoss` on given embeddings (the head outputs of
  [Z1, Z2, Z] for both views and the K masked fusions of each view), for several
  (mask_lambda, epoch, max_epochs, K, temperature): the loss, each term, and the gradient of the
  loss with respect to every embedding;
- infmasking_fusion.npz: their `FusionTransformer` (the fusion of `InfFusion`) on given tokens
  of two modalities, with the random masks it drew recorded: Z, Z1, Z2, the K masked fusions,
  the masked input sequences ([CLS, tokens]) it built, the gradients of a fixed linear function
  of the outputs (and, separately, of the masked sequences) with respect to the tokens and
  every parameter; once with their initialisation ("full") and once with the output layer of
  every block's MLP set to zero ("attn"), where their block and ours compute the same function;
  and the number of tokens their masking keeps for several (tokens, ratio);
- infmasking.json: repository, commit, torch version, the command, and the cases.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

LOSS_CASES = [
    # their Trifeature setting (mask_lambda 1, K 6, tau 0.1) at the first and last of 100 epochs
    {"mask_lambda": 1.0, "epoch": 0, "max_epochs": 100, "n_masks": 6, "temperature": 0.1},
    {"mask_lambda": 1.0, "epoch": 99, "max_epochs": 100, "n_masks": 6, "temperature": 0.1},
    # their loss default (0.25), the code default K 5, another temperature, mid-training
    {"mask_lambda": 0.25, "epoch": 4, "max_epochs": 10, "n_masks": 5, "temperature": 0.2},
    # K = 1: the covariance is zero and the term is InfoNCE against the single masked view
    {"mask_lambda": 2.0, "epoch": 9, "max_epochs": 10, "n_masks": 1, "temperature": 0.1},
]
BATCH, EMBED = 6, 8

FUSION = {"width": 16, "heads": 2, "layers": 2, "n_masks": 3, "mask_ratio": 0.5}
TOKENS = (5, 6)  # tokens per modality (different, so that the ratio is seen per modality)
FUSION_BATCH = 4
KEEP_GRID = [(n, r) for n in (4, 5, 6, 10, 16, 36) for r in (0.5, 0.7, 0.8)]


def install_shims() -> None:
    """Stand-ins for what their imports need on one CPU process."""
    utils = types.ModuleType("utils")
    utils.all_gather_batch_with_grad = lambda tensors: tensors  # world size 1
    sys.modules["utils"] = utils
    timm = types.ModuleType("timm")
    timm_models = types.ModuleType("timm.models")
    timm_layers = types.ModuleType("timm.models.layers")
    timm_layers.trunc_normal_ = torch.nn.init.trunc_normal_
    timm.models, timm_models.layers = timm_models, timm_layers
    sys.modules.update(
        {"timm": timm, "timm.models": timm_models, "timm.models.layers": timm_layers}
    )
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self


def loss_fixtures(loss_cls) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Their loss, terms and input gradients on random embeddings, one set per case."""
    arrays: dict[str, np.ndarray] = {}
    cases = []
    for c, case in enumerate(LOSS_CASES):
        g = torch.Generator().manual_seed(100 + c)
        k = case["n_masks"]
        aug1 = torch.randn(3, BATCH, EMBED, generator=g).requires_grad_()
        aug2 = torch.randn(3, BATCH, EMBED, generator=g).requires_grad_()
        mask1 = torch.randn(k, BATCH, EMBED, generator=g).requires_grad_()
        mask2 = torch.randn(k, BATCH, EMBED, generator=g).requires_grad_()
        loss_fn = loss_cls(temperature=case["temperature"], mask_lambda=case["mask_lambda"])
        out = loss_fn(
            {
                "aug1_embed": list(aug1),
                "aug2_embed": list(aug2),
                "prototype": -1,
                # one list of K per modality mask; the loss reads the last (all modalities)
                "mask_out1": [list(mask1)],
                "mask_out2": [list(mask2)],
                "epoch": case["epoch"],
                "max_epochs": case["max_epochs"],
            }
        )
        out["loss"].backward()
        p = f"c{c}_"
        arrays.update(
            {
                p + "aug1": aug1.detach().numpy(),
                p + "aug2": aug2.detach().numpy(),
                p + "mask1": mask1.detach().numpy(),
                p + "mask2": mask2.detach().numpy(),
                p + "loss": np.float32(out["loss"].item()),
                # ssl_loss_0, 1: the masked terms of views 1 and 2; 2, 3: the unimodal terms of
                # modalities 1 and 2; 4: the fused term (their loop over [Z1, Z2, Z])
                p + "terms": np.array([out[f"ssl_loss_{i}"].item() for i in range(5)], "f4"),
                p + "grad_aug1": aug1.grad.numpy(),
                p + "grad_aug2": aug2.grad.numpy(),
                p + "grad_mask1": mask1.grad.numpy(),
                p + "grad_mask2": mask2.grad.numpy(),
            }
        )
        cases.append(case)
    return arrays, cases


def fusion_fixture(fusion_cls, variant: str) -> dict[str, np.ndarray]:
    """Their fusion on fixed tokens, with the masks it draws recorded."""
    torch.manual_seed(7)
    f = FUSION
    ft = fusion_cls(f["width"], f["heads"], f["layers"], f["n_masks"], f["mask_ratio"])
    if variant == "attn":
        with torch.no_grad():
            for block in ft.resblocks:
                block.mlp.c_proj.weight.zero_()
                block.mlp.c_proj.bias.zero_()
    drawn: list[torch.Tensor] = []
    draw = ft.random_masking

    def recording(x, ratio):
        mask = draw(x, ratio)
        drawn.append(mask.detach().clone())
        return mask

    ft.random_masking = recording
    seqs: list[torch.Tensor] = []

    def capture(_module, args):
        seqs.append(args[0])

    hook = ft.resblocks[0].register_forward_pre_hook(capture)
    g = torch.Generator().manual_seed(11)
    t1 = torch.randn(FUSION_BATCH, TOKENS[0], f["width"], generator=g).requires_grad_()
    t2 = torch.randn(FUSION_BATCH, TOKENS[1], f["width"], generator=g).requires_grad_()
    z, masked = ft([t1, t2])
    # their masked fusions run first (K of them), then the full one
    masked_seqs = torch.stack(seqs[: f["n_masks"]])
    full_seq = seqs[f["n_masks"]]
    n_drawn = len(drawn)
    z1, _ = ft([t1])  # InfFusion's [on, off] and [off, on] passes
    z2, _ = ft([t2])
    hook.remove()
    masked = torch.stack(masked)
    # per mask, one draw per modality in order: [m1 of mask 0, m2 of mask 0, m1 of mask 1, ...]
    keep1 = torch.stack(drawn[0:n_drawn:2])[..., 0].bool()
    keep2 = torch.stack(drawn[1:n_drawn:2])[..., 0].bool()

    g = torch.Generator().manual_seed(13)
    r = {
        name: torch.randn(t.shape, generator=g)
        for name, t in (("z", z), ("z1", z1), ("z2", z2), ("masked", masked))
    }
    r_seq = torch.randn(masked_seqs.shape, generator=g)
    objective = (z * r["z"]).sum() + (z1 * r["z1"]).sum() + (z2 * r["z2"]).sum()
    objective = objective + (masked * r["masked"]).sum()
    seq_objective = (masked_seqs * r_seq).sum()
    params = dict(ft.named_parameters())
    seq_grads = torch.autograd.grad(
        seq_objective, [t1, t2, params["mask_tokens"], params["cls_token"]], retain_graph=True
    )
    objective.backward()

    out = {
        "t1": t1.detach().numpy(),
        "t2": t2.detach().numpy(),
        "keep1": keep1.numpy(),
        "keep2": keep2.numpy(),
        "z": z.detach().numpy(),
        "z1": z1.detach().numpy(),
        "z2": z2.detach().numpy(),
        "masked": masked.detach().numpy(),
        "masked_seqs": masked_seqs.detach().numpy(),
        "full_seq": full_seq.detach().numpy(),
        **{"r_" + k: v.numpy() for k, v in r.items()},
        "r_seq": r_seq.numpy(),
        "grad_t1": t1.grad.numpy(),
        "grad_t2": t2.grad.numpy(),
        "seq_grad_t1": seq_grads[0].numpy(),
        "seq_grad_t2": seq_grads[1].numpy(),
        "seq_grad_mask_tokens": seq_grads[2].numpy(),
        "seq_grad_cls_token": seq_grads[3].numpy(),
    }
    for name, p in params.items():
        out["param." + name] = p.detach().numpy()
        out["grad." + name] = p.grad.numpy()
    return {f"{variant}_{k}": v for k, v in out.items()}


def keep_counts(fusion_cls) -> np.ndarray:
    """(n_tokens, ratio, tokens kept per sample by their masking) for KEEP_GRID."""
    ft = fusion_cls(8, 2, 1, 1, 0.5)
    rows = []
    for n, ratio in KEEP_GRID:
        mask = ft.random_masking(torch.zeros(3, n, 8), ratio)[..., 0]
        kept = mask.sum(1)
        assert (kept == kept[0]).all()
        rows.append((n, ratio, float(kept[0])))
    return np.array(rows, dtype="f8")


def main(argv: list[str] | None = None) -> None:
    """Run the authors' InfMasking modules and write the fixtures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--infmasking", required=True, type=Path, help="brightest66/InfMasking")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    repo = args.infmasking.resolve()
    install_shims()
    sys.path.insert(0, str(repo))
    from losses.infmasking_loss import InfMaskingLoss
    from models.inffusion import FusionTransformer

    loss_arrays, cases = loss_fixtures(InfMaskingLoss)
    fusion_arrays = {**fusion_fixture(FusionTransformer, "attn")}
    fusion_arrays.update(fusion_fixture(FusionTransformer, "full"))
    fusion_arrays["keep_counts"] = keep_counts(FusionTransformer)

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "infmasking_loss.npz", **loss_arrays)
    np.savez_compressed(args.out / "infmasking_fusion.npz", **fusion_arrays)
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    meta = {
        "repository": "brightest66/InfMasking",
        "commit": commit,
        "torch": torch.__version__,
        "command": "python tools/fidelity/make_fixtures_infmasking.py --infmasking PATH "
        f"--out {args.out.as_posix()}",
        "modules": [
            "losses/infmasking_loss.py:InfMaskingLoss",
            "models/inffusion.py:FusionTransformer",
        ],
        "shims": "utils.all_gather_batch_with_grad = identity (one process); "
        "timm.models.layers.trunc_normal_ = torch.nn.init.trunc_normal_; .cuda() a no-op",
        "loss": {
            "batch": BATCH,
            "embed": EMBED,
            "cases": cases,
            "terms": ["mask view 1", "mask view 2", "unimodal 1", "unimodal 2", "fused"],
        },
        "fusion": {
            **FUSION,
            "tokens": list(TOKENS),
            "batch": FUSION_BATCH,
            "variants": {
                "full": "their initialisation",
                "attn": "every block's mlp.c_proj weight and bias set to zero",
            },
        },
    }
    (args.out / "infmasking.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out}/infmasking_loss.npz, infmasking_fusion.npz, infmasking.json")


if __name__ == "__main__":
    main()
