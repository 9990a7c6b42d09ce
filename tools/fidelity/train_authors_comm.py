"""Train the authors' CoMM (Duplums/CoMM) on a pid-bench dataset file; write embeddings for
`pid-bench score`.

The model, loss and optimiser are the authors' modules, imported from the checkout given with
`--comm` (nothing of theirs is copied here): `models.mmfusion.MMFusion` (their fusion
transformer, CLS pooling, modality masking), `pl_modules.comm.CoMM` (its `_build_mlp` 3-layer
BatchNorm head, `forward`, `training_step`, and `configure_optimizers` from
`pl_modules.base.BaseModel`: AdamW with their per-parameter weight-decay groups) and
`losses.comm_loss.CoMMLoss`. Their imports of Lightning, OmegaConf and TensorBoard are
satisfied by stub modules inserted into `sys.modules`; distributed gathering is already the
identity on one process (`utils.get_world_size() == 1`).

What changes for our inputs is the input adapter only:

- vectors (`--encoder mlp`): their MultiBench tabular setting (configs/train_multibench.yaml,
  `mimic` "tabular"): `models.mlp.MLP(d, hidden, k)` (Linear-ReLU-Linear) followed by
  `models.input_adapters.FeaturesInputAdapter(k, d_model)`, i.e. k tokens per modality, token i
  = h_i * w_i + b_i. MIMIC uses d=5, hidden=k=10, width 512; here d is the modality's width,
  hidden and k are `--hidden` and `--tokens`, the width `--d-model`;
- images (`--encoder alexnet`): their `models.alexnet.AlexNetEncoder` + `PatchedInputAdapter`
  (configs/train_trifeatures.yaml); at 32 px the feature map is 1 x 1 (one token);
  `--encoder cnn`: our `pid_bench.learners.image.CNNEncoder` tokens (no adapter).

The training loop does per step what their Lightning module does: `training_step((aug1,
aug2))` -> backward -> AdamW step, over a shuffled loader that keeps the last partial batch
(their `drop_last=False`). Views (`--views`): `generator` draws two new views of each batch's
rows from the dataset's generative process, as our runner does (`content_style`); `tensor`
applies the authors' own augmentations: for vectors their `MultiBenchAugmentations(--aug)` per
sample (default "noise": Gaussian noise std 0.1 with p 0.5, their tabular setting), for images
the transforms of `dataset/trifeatures.py` (needs torchvision).

Two models are trained, as our runner does for self-supervised learners: one on `train` for the
tasks without a pretraining split (redundancy, unique1, unique2) and one on each pretraining
split (`pretrain["synergy"]`, pairs biased to follow the synergy map), written as the
`_synergy` entries of the embeddings file. Both start from the same `torch.manual_seed(seed)`,
as two runs of the authors' script with one seed would.

    python tools/fidelity/train_authors_comm.py --comm /work/ext/CoMM --data DATA.npz \\
        --seed 0 --epochs 20 --batch-size 128 --out EMB.npz
    pid-bench score --data DATA.npz --embeddings EMB.npz --name comm_authors --seed 0 --no-mlp
"""

from __future__ import annotations

import os

# one thread everywhere (torch, BLAS of numpy's view draws): set before numpy/torch load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import importlib.machinery  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `generators` (dataset files and their view source)


def install_stubs() -> None:
    """Stub modules for what the authors' imports need and a single CPU process lacks."""

    def module(name: str, **attrs) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__spec__ = importlib.machinery.ModuleSpec(name, None)  # torch looks modules up
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    class LightningModule(nn.Module):
        """Only what their modules call: logging is a no-op, no trainer is attached."""

        def log(self, *args, **kwargs) -> None:
            pass

        def log_dict(self, *args, **kwargs) -> None:
            pass

        def save_hyperparameters(self, *args, **kwargs) -> None:
            pass

    class _Placeholder:
        def __init__(self, *args, **kwargs) -> None:
            pass

    module(
        "pytorch_lightning",
        LightningModule=LightningModule,
        LightningDataModule=_Placeholder,
        Callback=_Placeholder,
        Trainer=_Placeholder,
    )
    module("omegaconf", DictConfig=dict, OmegaConf=_Placeholder)
    module("tensorboard")
    module("tensorboard.backend")
    module("tensorboard.backend.event_processing")
    module("tensorboard.backend.event_processing.event_accumulator")
    sys.modules["tensorboard.backend.event_processing"].event_accumulator = sys.modules[
        "tensorboard.backend.event_processing.event_accumulator"
    ]
    for name in ("pandas", "gdown", "h5py"):  # imported at the top of files, unused here
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                module(name)
    # A PyPI torchvision wheel is a CUDA build; on CPU torch its C ops do not load and its
    # fake-op registrations fail. The transforms used here need neither.
    module("torchvision._meta_registrations")


def git_commit(path: Path) -> str:
    """The checkout's full commit, or "unknown"."""
    try:
        return subprocess.check_output(["git", "-C", str(path), "rev-parse", "HEAD"], text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


#: ImageNet statistics of their `transforms.Normalize` (dataset/trifeatures.py)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ImageViews:
    """Per-sample image augmentation: each of our float images in [0, 1] becomes a PIL image
    (as their PNG files are) and goes through the authors' transform; see `build_image_aug`."""

    def __init__(self, transform) -> None:
        from torchvision import transforms as T

        self.to_pil = T.ToPILImage()
        self.transform = transform

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.transform(self.to_pil(xi)) for xi in x])


def build_image_aug(size: int, crop_min: float):
    """The SimCLR augmentation as their dataset/trifeatures.py composes it (`self.augment`),
    at our image size: RandomResizedCrop(size, scale=(crop_min, 1)), ColorJitter(0.4, 0.4, 0.4,
    0.1) with p 0.8, RandomGrayscale p 0.2, their `utils.GaussianBlur([.1, 2.])` with p 0.5,
    RandomHorizontalFlip, ToTensor, Normalize(ImageNet)."""
    from torchvision import transforms as T
    from utils import GaussianBlur  # the authors' blur (PIL ImageFilter)

    return T.Compose(
        [
            T.RandomResizedCrop(size, scale=(crop_min, 1.0)),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomApply([GaussianBlur([0.1, 2.0])], p=0.5),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    )


def normalise_images(x: np.ndarray) -> np.ndarray:
    """Images as the trained model reads them: their Normalize, without augmentation."""
    mean = np.array(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(IMAGENET_STD, dtype=np.float32)[:, None, None]
    return (x - mean) / std


def build_encoders(args, shapes, kinds) -> tuple[list[nn.Module], list[nn.Module | None]]:
    """Per-modality encoder and input adapter (the one part changed for our inputs)."""
    from models.input_adapters import FeaturesInputAdapter, PatchedInputAdapter
    from models.mlp import MLP

    encoders: list[nn.Module] = []
    adapters: list[nn.Module | None] = []
    for kind, shape in zip(kinds, shapes, strict=True):
        if kind == "vector" and args.encoder == "ours":
            # ablation: our VectorEncoder (4 tokens of width d_model, no adapter)
            from pid_bench.config import ModelConfig
            from pid_bench.learners.encoders import VectorEncoder

            cfg = ModelConfig(d_model=args.d_model, hidden=args.hidden)
            encoders.append(VectorEncoder(shape[0], cfg))
        elif kind == "vector":
            if args.encoder != "mlp":
                raise SystemExit(f"--encoder {args.encoder} is for images; vectors take mlp")
            encoders.append(MLP(shape[0], args.hidden, args.tokens, dropout=False))
        elif args.encoder == "alexnet":
            from models.alexnet import AlexNetEncoder

            encoders.append(AlexNetEncoder(latent_dim=256, dropout=0.5, global_pool=""))
        elif args.encoder == "cnn":
            from pid_bench.learners.image import CNNEncoder

            encoders.append(CNNEncoder(tuple(shape), d_model=args.d_model, width=args.cnn_width))
        else:
            raise SystemExit(f"--encoder {args.encoder} is for vectors; images take alexnet or cnn")
    # Hydra instantiates the list of encoders, then the list of adapters (main_*.py).
    for kind, enc, shape in zip(kinds, encoders, shapes, strict=True):
        if kind == "vector" and args.encoder == "ours":
            adapters.append(None)
        elif kind == "vector":
            adapters.append(FeaturesInputAdapter(args.tokens, args.d_model))
        elif args.encoder == "alexnet":
            with torch.no_grad():
                fmap = enc(torch.zeros(2, *shape)).shape  # (B, 256, h, w)
            adapters.append(
                PatchedInputAdapter(
                    num_channels=fmap[1],
                    stride_level=1,
                    patch_size_full=1,
                    dim_tokens=args.d_model,
                    image_size=fmap[2],
                )
            )
        else:
            adapters.append(None)
    return encoders, adapters


def build_model(args, shapes, kinds):
    """The authors' CoMM (pl_modules.comm.CoMM) with MMFusion and their projection head."""
    from models.mmfusion import MMFusion
    from pl_modules.comm import CoMM

    encoders, adapters = build_encoders(args, shapes, kinds)
    fusion = MMFusion(
        encoders,
        adapters,
        embed_dim=args.d_model,
        fusion="concat",
        pool="cls",
        n_heads=args.heads,
        n_layers=1,
        add_bias_kv=False,
        dropout=0.0,
    )
    if args.head == "authors":
        head = CoMM._build_mlp(args.d_model, args.head_hidden, args.head_out)
    else:  # ablation: our 2-layer ReLU head d -> d -> 64 (pid_bench.learners.encoders)
        from pid_bench.learners.encoders import mlp_head

        head = mlp_head(args.d_model, args.d_model, 64)
    # Their SyncBatchNorm stays: on one process (no process group) torch runs it as
    # BatchNorm over the local batch, as Lightning's single-device run would.
    model = CoMM(
        fusion,
        head,
        optim_kwargs={"lr": args.lr, "weight_decay": args.weight_decay},
        loss_kwargs={"temperature": args.temperature},
    )
    return model


class Views:
    """Two views of a batch of training rows: from the generator or the authors' augmentations."""

    def __init__(self, args, ds, split, kinds) -> None:
        self.mode = args.views
        self.split = split
        self.kinds = kinds
        if self.mode == "generator":
            if ds.views is None:
                raise SystemExit(f"--views generator: the {ds.name!r} dataset draws no views")
            self.source = ds.views
            self.rng = np.random.default_rng(np.random.SeedSequence([args.seed, 2]))
        elif all(k == "vector" for k in kinds):
            from dataset.multibench import MultiBenchAugmentations

            # a list: one augmentation per modality (their AugMapper), as for MIMIC
            self.vec_aug = MultiBenchAugmentations([args.aug, args.aug], p=args.aug_p)
        else:
            size = split.x1.shape[-1]
            self.img_aug = ImageViews(build_image_aug(size, args.crop_min))

    def one(self, rows: np.ndarray) -> list[torch.Tensor]:
        s = self.split
        if self.mode == "generator":
            lat = {f: v[rows] for f, v in s.latents.items()}
            x1, x2 = self.source.draw(lat, self.rng)
            return [torch.as_tensor(x1), torch.as_tensor(x2)]
        if hasattr(self, "vec_aug"):
            pairs = [self.vec_aug([s.x1[i], s.x2[i]]) for i in rows]
            return [
                torch.as_tensor(np.stack([p[0] for p in pairs]).astype(np.float32)),
                torch.as_tensor(np.stack([p[1] for p in pairs]).astype(np.float32)),
            ]
        return [self.img_aug(torch.as_tensor(x[rows])) for x in (s.x1, s.x2)]


def train_one(args, ds, split, kinds, shapes, group: str, log_rows: list) -> nn.Module:
    """One model, trained as the authors' Lightning loop would on `split`."""
    torch.manual_seed(args.seed)
    # their augmentations draw from numpy's global generator (dataset/multibench.py)
    np.random.seed(args.seed)  # noqa: NPY002
    model = build_model(args, shapes, kinds)
    if args.optim == "authors":
        opt = model.configure_optimizers()
    else:  # ablation: one group, every parameter decayed, as our training loop
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    views = Views(args, ds, split, kinds)
    n = len(split.x1)
    order = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=order).numpy()
        sums: dict[str, float] = {}
        steps = 0
        for i, start in enumerate(range(0, n, args.batch_size)):
            rows = perm[start : start + args.batch_size]
            if len(rows) < 2:  # BatchNorm needs two rows; their loader never yields one here
                continue
            batch = (views.one(rows), views.one(rows))
            loss = model.training_step(batch, i)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            steps += 1
        row = {"group": group, "epoch": epoch, "loss": sums["loss"] / steps}
        row["seconds"] = time.perf_counter() - t0
        log_rows.append(row)
        if not args.quiet:
            print(f"{group} epoch {epoch}: loss {row['loss']:.4f} ({row['seconds']:.1f} s)")
    return model


@torch.no_grad()
def embed(model, x1: np.ndarray, x2: np.ndarray, mask=None, bs: int = 1024) -> np.ndarray:
    """The fusion encoder's output (before the head) in eval mode, as `extract_features`
    reads it; `mask` [True, False] / [False, True] gives the unimodal embedding."""
    model.eval()
    out = []
    for s in range(0, len(x1), bs):
        xs = [torch.as_tensor(x1[s : s + bs]), torch.as_tensor(x2[s : s + bs])]
        if mask is not None:
            xs = [x for x, m in zip(xs, mask, strict=True) if m]
        out.append(model.encoder(xs, mask_modalities=mask))
    return torch.cat(out).double().numpy()


def embeddings_of(model, ds, views: str, unimodal: bool = True) -> dict[str, np.ndarray]:
    """z_train, z_test, z1_test, z2_test of one model (images normalised as in training)."""
    images = ds.modality_kinds[0] == "image" and views == "tensor"
    prep = normalise_images if images else (lambda x: x)
    tr1, tr2, te1, te2 = (prep(x) for x in (ds.train.x1, ds.train.x2, ds.test.x1, ds.test.x2))
    out = {"z_train": embed(model, tr1, tr2), "z_test": embed(model, te1, te2)}
    if unimodal:
        out["z1_test"] = embed(model, te1, te2, [True, False])
        out["z2_test"] = embed(model, te1, te2, [False, True])
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--comm", required=True, help="path to a Duplums/CoMM checkout")
    p.add_argument("--data", required=True, help="dataset file (pid-bench generate)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", required=True, help="embeddings .npz for pid-bench score")
    p.add_argument(
        "--groups",
        nargs="+",
        default=["ssl", "synergy"],
        help="models to train: ssl (train split) and/or pretraining-split tasks",
    )
    p.add_argument("--views", choices=["generator", "tensor"], default="generator")
    p.add_argument(
        "--aug", default="noise", help="vectors, --views tensor: their MultiBenchAugmentations spec"
    )
    p.add_argument("--aug-p", type=float, default=0.5, help="their per-augmentation probability")
    p.add_argument("--crop-min", type=float, default=0.08, help="images: crop scale low end")
    p.add_argument(
        "--encoder",
        choices=["mlp", "alexnet", "cnn", "ours"],
        default="mlp",
        help="ours: our VectorEncoder tokens (ablation)",
    )
    p.add_argument(
        "--head",
        choices=["authors", "ours"],
        default="authors",
        help="ours: our 2-layer ReLU head d -> d -> 64 (ablation)",
    )
    p.add_argument(
        "--optim",
        choices=["authors", "flat"],
        default="authors",
        help="authors: their configure_optimizers (no decay on biases, norms, 1-d "
        "parameters); flat: AdamW decaying every parameter, as ours (ablation)",
    )
    p.add_argument(
        "--no-unimodal",
        action="store_true",
        help="write no z1_test/z2_test (scoring skips the clustered PID)",
    )
    p.add_argument("--d-model", type=int, default=64, help="fusion width (embed_dim)")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--tokens", type=int, default=8, help="vectors: tokens per modality")
    p.add_argument("--hidden", type=int, default=256, help="vectors: MLP encoder hidden width")
    p.add_argument("--cnn-width", type=int, default=32, help="--encoder cnn: channel width")
    p.add_argument("--head-hidden", type=int, default=512, help="their comm.yaml mlp_dim")
    p.add_argument("--head-out", type=int, default=256, help="their comm.yaml out_dim")
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=1e-3, help="train_multibench.yaml: 1e-3")
    p.add_argument("--weight-decay", type=float, default=1e-2, help="train_multibench.yaml: 1e-2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    comm = Path(args.comm).resolve()
    install_stubs()
    sys.path.insert(0, str(comm))
    from generators.io import load_npz

    ds = load_npz(args.data)
    fp = json.loads(str(np.load(args.data)["meta"]))["fingerprint"]
    kinds, shapes = ds.modality_kinds, ds.modality_shapes
    entries: dict[str, np.ndarray] = {"fingerprint": np.array(fp), "epoch": np.array(args.epochs)}
    log_rows: list[dict] = []
    timing: dict[str, float] = {}
    for group in args.groups:
        if group != "ssl" and group not in ds.pretrain:
            raise SystemExit(f"group {group!r}: the dataset has no pretraining split for it")
        split = ds.train if group == "ssl" else ds.pretrain[group]
        t0, c0 = time.perf_counter(), time.process_time()
        model = train_one(args, ds, split, kinds, shapes, group, log_rows)
        t1, c1 = time.perf_counter(), time.process_time()
        z = embeddings_of(model, ds, args.views, not args.no_unimodal)
        # wall and CPU seconds: on a shared machine the CPU time is the comparable one
        timing[f"{group}_train_s"] = t1 - t0
        timing[f"{group}_train_cpu_s"] = c1 - c0
        timing[f"{group}_embed_s"] = time.perf_counter() - t1
        suffix = "" if group == "ssl" else f"_{group}"
        entries.update({k + suffix: v for k, v in z.items()})
        if group == "ssl":
            n_params = sum(q.numel() for q in model.parameters())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        np.savez(f, **entries)
    with open(out.with_suffix(".log.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(log_rows[0]))
        w.writeheader()
        w.writerows(log_rows)
    meta = {
        "repository": "Duplums/CoMM",
        "commit": git_commit(comm).strip(),
        "torch": torch.__version__,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "args": vars(args),
        "fingerprint": fp,
        "parameters_ssl_model": locals().get("n_params"),
        **{k: round(v, 2) for k, v in timing.items()},
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} ({', '.join(f'{k} {v:.0f} s' for k, v in timing.items())})")


if __name__ == "__main__":
    main()
