"""Encoders per modality type, shared by all learners. Each emits tokens (B, T, d_model)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pid_bench.config import ModelConfig


class VectorEncoder(nn.Module):
    """MLP over a feature vector whose output is split into `n_tokens` tokens."""

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_tokens = cfg.n_tokens
        self.d_model = cfg.d_model
        self.net = nn.Sequential(
            nn.Linear(in_dim, cfg.hidden),
            nn.LayerNorm(cfg.hidden),
            nn.GELU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.LayerNorm(cfg.hidden),
            nn.GELU(),
            nn.Linear(cfg.hidden, cfg.n_tokens * cfg.d_model),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(x.shape[0], self.n_tokens, self.d_model)


def build_encoder(kind: str, shape: tuple[int, ...], cfg: ModelConfig) -> nn.Module:
    """Token encoder for one modality: `vector` (d,) or `image` (C, H, W), the latter the
    `cfg.image_encoder` kind (`cnn` or `alexnet`)."""
    if kind == "vector":
        if len(shape) != 1:
            raise ValueError(f"a vector modality has per-sample shape (d,), got {shape}")
        return VectorEncoder(shape[0], cfg)
    if kind == "image":
        if len(shape) != 3:
            raise ValueError(f"an image modality has per-sample shape (C, H, W), got {shape}")
        from pid_bench.learners.image import AlexNetEncoder, CNNEncoder

        if cfg.image_encoder == "alexnet":
            return AlexNetEncoder(tuple(shape), d_model=cfg.d_model)
        return CNNEncoder(tuple(shape), d_model=cfg.d_model, width=cfg.cnn_width)
    raise ValueError(f"no encoder for modality kind {kind!r}; accepted: vector, image")


class PooledEncoder(nn.Module):
    """A token encoder followed by mean pooling and a linear map: one vector per sample."""

    def __init__(self, kind: str, shape: tuple[int, ...], cfg: ModelConfig) -> None:
        super().__init__()
        self.tokens = build_encoder(kind, shape, cfg)
        self.out = nn.Sequential(nn.LayerNorm(cfg.d_model), nn.Linear(cfg.d_model, cfg.d_model))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.tokens(x).mean(1))


def batch_independent(module: nn.Module) -> bool:
    """Whether `module`'s output for a sample is independent of the rest of its batch.

    BatchNorm in training mode normalises with the batch's statistics, so two views stacked
    into one batch would be normalised together; every other layer here is per-sample.
    """
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def encode_views(encoder: nn.Module, *xs: Tensor) -> list[Tensor]:
    """`[encoder(x) for x in xs]`, in one batched call where that gives the same numbers.

    Stacking views makes the matrix products larger (a better share of the machine's rate on
    small models) without changing a sample's output; encoders with BatchNorm keep one call
    per view so that each view is normalised by its own batch statistics, as before.
    """
    if len(xs) > 1 and batch_independent(encoder):
        return list(encoder(torch.cat(xs, 0)).split([x.shape[0] for x in xs], 0))
    return [encoder(x) for x in xs]


def mlp_head(d_in: int, d_hidden: int, d_out: int) -> nn.Module:
    """Two-layer projection head (used only inside losses)."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


def bn_head(d_in: int, d_hidden: int, d_out: int) -> nn.Module:
    """Three-layer projection head with BatchNorm, Linear-BN-ReLU-Linear-BN-ReLU-Linear (the
    head of CoMM's and Cross+Self's released code). In training mode its output for a sample
    depends on the batch: call it on one view (one mask) at a time, as the authors do."""
    return nn.Sequential(
        nn.Linear(d_in, d_hidden),
        nn.BatchNorm1d(d_hidden),
        nn.ReLU(),
        nn.Linear(d_hidden, d_hidden),
        nn.BatchNorm1d(d_hidden),
        nn.ReLU(),
        nn.Linear(d_hidden, d_out),
    )


def projection_head(d_in: int, cfg: ModelConfig) -> nn.Module:
    """The projection head `cfg.head` from `d_in` to `cfg.proj_dim`, hidden width
    `cfg.head_hidden` (default `cfg.d_model`)."""
    hidden = cfg.head_hidden if cfg.head_hidden is not None else cfg.d_model
    if cfg.head == "comm_bn":
        return bn_head(d_in, hidden, cfg.proj_dim)
    return mlp_head(d_in, hidden, cfg.proj_dim)


def apply_per_chunk(module: nn.Module, chunks: list[Tensor]) -> list[Tensor]:
    """`[module(c) for c in chunks]`, in one call on the stacked chunks where that gives the
    same numbers (a per-sample module); a BatchNorm module sees each chunk as its own batch."""
    if len(chunks) > 1 and batch_independent(module):
        return list(module(torch.cat(chunks, 0)).split([c.shape[0] for c in chunks], 0))
    return [module(c) for c in chunks]
