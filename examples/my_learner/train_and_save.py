"""Your own training code: train TinyFusion on a pid-bench dataset file, save its embeddings.

    pid-bench generate --generator bits --out bits.npz
    python examples/my_learner/train_and_save.py --data bits.npz --out mine.npz
    pid-bench score --data bits.npz --embeddings mine.npz --name mymodel --out runs/mine

It reads the dataset with numpy alone (the layout is in `generators/io.py`: `train_x1`,
`train_x2`, `test_x1`, `test_x2`, labels `{split}_y_{task}`, and a JSON `meta` that holds the
`fingerprint`), trains with a plain PyTorch loop, and writes the entries `pid-bench score`
reads: `fingerprint`, `z_train`, `z_test`, and the optional unimodal `z1_test`, `z2_test`.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from my_learner import TinyFusion  # your model, beside this script

from pid_bench.config import AugConfig, ModelConfig


def load(path: str) -> dict:
    """The arrays of a dataset file and its fingerprint."""
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in ("train_x1", "train_x2", "test_x1", "test_x2")}
        data["fingerprint"] = json.loads(str(f["meta"]))["fingerprint"]
    return data


def train(data: dict, epochs: int = 5, seed: int = 0, batch_size: int = 128) -> TinyFusion:
    """TinyFusion trained by a loop of your own (Adam, shuffled mini-batches)."""
    torch.manual_seed(seed)
    x1, x2 = torch.as_tensor(data["train_x1"]), torch.as_tensor(data["train_x2"])
    shapes = (tuple(x1.shape[1:]), tuple(x2.shape[1:]))
    model = TinyFusion(("vector", "vector"), shapes, ModelConfig(), AugConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x1), generator=gen)
        for start in range(0, len(x1) - batch_size + 1, batch_size):
            idx = perm[start : start + batch_size]
            loss, _ = model.loss(x1[idx], x2[idx], None, idx, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def save(model: TinyFusion, data: dict, out: str) -> None:
    """Embeddings of every train and test row, in file order, with the data's fingerprint."""
    z = {}
    for split in ("train", "test"):
        x1 = torch.as_tensor(data[f"{split}_x1"])
        x2 = torch.as_tensor(data[f"{split}_x2"])
        z[f"z_{split}"] = model.embed(x1, x2).numpy()
        if split == "test":
            z1, z2 = model.embed_unimodal(x1, x2)
            z["z1_test"], z["z2_test"] = z1.numpy(), z2.numpy()
    np.savez(out, fingerprint=data["fingerprint"], **z)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset file from pid-bench generate")
    p.add_argument("--out", required=True, help="embeddings .npz to write")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    data = load(args.data)
    save(train(data, args.epochs, args.seed), data, args.out)
    print(f"wrote {args.out} (embeddings of {args.data}, fingerprint {data['fingerprint']})")


if __name__ == "__main__":
    main()
