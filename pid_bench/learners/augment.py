"""Vector augmentations, and the dispatch to image augmentations for image modalities."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from pid_bench.config import AugConfig

Augment = Callable[[Tensor, torch.Generator | None], Tensor]


class VectorAugment:
    """Gaussian noise plus random masking of a per-sample fraction of entries (CoMM's vectors)."""

    def __init__(self, cfg: AugConfig) -> None:
        if cfg.noise_std < 0 or not 0 <= cfg.mask_min <= cfg.mask_max < 1:
            raise ValueError(
                "vector augmentation needs noise_std >= 0 and 0 <= mask_min <= mask_max < 1, "
                f"got {cfg}"
            )
        self.cfg = cfg

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        c = self.cfg
        n = x.shape[0]
        kw = {"generator": generator, "device": x.device}
        out = x
        if c.noise_std > 0:
            out = out + c.noise_std * torch.randn(x.shape, dtype=x.dtype, **kw)
        if c.mask_max > 0:
            frac = c.mask_min + (c.mask_max - c.mask_min) * torch.rand(n, 1, **kw)
            keep = torch.rand(x.shape, **kw) >= frac
            out = out * keep
        return out


def build_augment(kind: str, cfg: AugConfig) -> Augment:
    """Augmentation for a modality kind (`vector` or `image`)."""
    if kind == "vector":
        return VectorAugment(cfg)
    if kind == "image":
        from pid_bench.learners.image import ImageAugment

        return ImageAugment(cfg.image)
    raise ValueError(f"no augmentation for modality kind {kind!r}; accepted: vector, image")
