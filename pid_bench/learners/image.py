"""Image modality: batched SimCLR-style augmentations and the image token encoders (a small CNN,
and the AlexNet of CoMM's Trifeature experiments).

Augmentations follow CoMM's image recipe (random resized crop, colour jitter, grayscale,
Gaussian blur, horizontal flip), drawn independently per sample but applied to the whole batch
at once on the input's device: crop and flip by one `affine_grid`/`grid_sample`, colour ops as
per-sample factors, blur as a grouped convolution with a per-sample kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pid_bench.config import ImageAugConfig

__all__ = ["AlexNetEncoder", "CNNEncoder", "ImageAugConfig", "ImageAugment", "alexnet_grid"]

#: ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


class ImageAugment:
    """Per-sample random augmentation of an image batch (B, C, H, W) with values in [0, 1].

    Every random number is drawn from `generator` (or the default generator of x's device) in a
    fixed order, so a seeded generator gives the same output. Colour jitter applies brightness,
    contrast, saturation and hue in this fixed order (torchvision shuffles the order per call).
    A crop whose side would exceed the image is clamped to it (torchvision resamples instead).
    Saturation, hue and grayscale apply to 3-channel images only.
    """

    def __init__(self, cfg: ImageAugConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else ImageAugConfig()

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.ndim != 4:
            raise ValueError(
                f"ImageAugment expects a batch (B, C, H, W), got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"ImageAugment expects a floating-point image in [0, 1], got {x.dtype}"
            )
        cfg = self.cfg
        if not cfg.enabled or x.shape[0] == 0:
            return x
        b = x.shape[0]
        # One draw for everything, in a fixed layout, so the stream does not depend on which
        # components are switched on or on how many samples each one selects.
        dev = generator.device if generator is not None else x.device
        r = torch.rand(b, 14, generator=generator, device=dev, dtype=torch.float64).to(x.device)
        x = self._crop_flip(x, r[:, 0:6])
        if x.shape[1] == 3 or x.shape[1] == 1:
            x = self._jitter(x, r[:, 6:11])
        if x.shape[1] == 3:
            x = self._grayscale(x, r[:, 11])
        return self._blur(x, r[:, 12:14])

    def _crop_flip(self, x: Tensor, r: Tensor) -> Tensor:
        cfg = self.cfg
        apply = r[:, 0] < cfg.crop_p
        area = cfg.crop_scale[0] + (cfg.crop_scale[1] - cfg.crop_scale[0]) * r[:, 1]
        log_lo, log_hi = math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])
        ratio = torch.exp(log_lo + (log_hi - log_lo) * r[:, 2])
        # Width and height as fractions of the image's.
        w = torch.where(apply, torch.sqrt(area * ratio).clamp(max=1.0), torch.ones_like(area))
        h = torch.where(apply, torch.sqrt(area / ratio).clamp(max=1.0), torch.ones_like(area))
        # Centre in affine_grid's [-1, 1] coordinates, keeping the crop inside the image.
        cx = (1.0 - w) * (2.0 * r[:, 3] - 1.0)
        cy = (1.0 - h) * (2.0 * r[:, 4] - 1.0)
        flip = torch.where(r[:, 5] < cfg.flip_p, -1.0, 1.0).to(w)
        if not bool(apply.any()) and not bool((flip < 0).any()):
            return x
        zero = torch.zeros_like(w)
        theta = torch.stack(
            [torch.stack([w * flip, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _jitter(self, x: Tensor, r: Tensor) -> Tensor:
        cfg = self.cfg
        apply = (r[:, 0] < cfg.jitter_p).to(x.dtype)

        def factor(u: Tensor, strength: float) -> Tensor:
            # Uniform in [1 - s, 1 + s] where jitter applies, 1 (identity) elsewhere.
            f = 1.0 + strength * (2.0 * u.to(x.dtype) - 1.0)
            return (apply * f + (1.0 - apply)).view(-1, 1, 1, 1)

        x = (x * factor(r[:, 1], cfg.brightness)).clamp(0.0, 1.0)
        c = factor(r[:, 2], cfg.contrast)
        mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
        x = (c * x + (1.0 - c) * mean).clamp(0.0, 1.0)
        if x.shape[1] != 3:
            return x
        s = factor(r[:, 3], cfg.saturation)
        x = (s * x + (1.0 - s) * _gray(x)).clamp(0.0, 1.0)
        if cfg.hue > 0:
            # The matrices are built in float64 (r's dtype): matrix inversion has no half
            # precision kernels, and the identity for un-jittered samples stays exact to 1e-15.
            turns = apply.to(r.dtype) * cfg.hue * (2.0 * r[:, 4] - 1.0)
            mat = _hue_matrix(turns).to(x.dtype)
            x = torch.einsum("bij,bjhw->bihw", mat, x).clamp(0.0, 1.0)
        return x

    def _grayscale(self, x: Tensor, r: Tensor) -> Tensor:
        apply = (r < self.cfg.grayscale_p).view(-1, 1, 1, 1)
        return torch.where(apply, _gray(x).expand_as(x), x)

    def _blur(self, x: Tensor, r: Tensor) -> Tensor:
        cfg = self.cfg
        idx = torch.nonzero(r[:, 0] < cfg.blur_p).flatten()
        if idx.numel() == 0:
            return x
        n, ch, height, width = x.shape
        scale = 1.0
        if cfg.blur_reference_size is not None:
            scale = min(height, width) / cfg.blur_reference_size
        lo, hi = cfg.blur_sigma[0] * scale, cfg.blur_sigma[1] * scale
        sigma = (lo + (hi - lo) * r[idx, 1]).to(x.dtype)
        # A fixed radius for the largest sigma (3 sigma), so one grouped conv serves all; the
        # reflect padding it needs must be smaller than the image.
        radius = max(1, min(math.ceil(3.0 * hi), height - 1, width - 1))
        offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
        kernel = torch.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        k = kernel.repeat_interleave(ch, dim=0)  # one row per (sample, channel) group
        sub = x[idx].reshape(1, idx.numel() * ch, height, width)
        sub = F.pad(sub, (radius, radius, 0, 0), mode="reflect")
        sub = F.conv2d(sub, k[:, None, None, :], groups=k.shape[0])
        sub = F.pad(sub, (0, 0, radius, radius), mode="reflect")
        sub = F.conv2d(sub, k[:, None, :, None], groups=k.shape[0])
        out = x.clone()
        out[idx] = sub.reshape(idx.numel(), ch, height, width)
        return out


def _gray(x: Tensor) -> Tensor:
    """Luma (B, 1, H, W) of an RGB batch; a 1-channel batch is its own luma."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _hue_matrix(turns: Tensor) -> Tensor:
    """Per-sample 3x3 RGB matrices rotating hue by `turns` (fractions of a full turn).

    A rotation of the chroma plane (I, Q) of YIQ, which keeps luma: a linear approximation of
    torchvision's HSV hue shift that needs no per-pixel colour-space conversion.
    """
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
        device=turns.device,
        dtype=turns.dtype,
    )
    from_yiq = torch.linalg.inv(to_yiq)
    a = 2.0 * math.pi * turns
    cos, sin = torch.cos(a), torch.sin(a)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    rot = torch.stack(
        [
            torch.stack([one, zero, zero], 1),
            torch.stack([zero, cos, -sin], 1),
            torch.stack([zero, sin, cos], 1),
        ],
        1,
    )
    return from_yiq @ rot @ to_yiq


class CNNEncoder(nn.Module):
    """Small conv net emitting tokens (B, n_tokens, d_model): one per cell of a grid x grid map.

    Stride-2 3x3 conv stages (width, 2 width, then 4 width channels) until the map is about
    `grid` x `grid` (3 stages at 32 x 32, 4 at 64 x 64), with one stride-1 conv before the last
    downsampling, each conv followed by a norm and ReLU; adaptive average pooling fixes the
    grid for any input size. Each cell's feature vector is projected to d_model and given a
    learned positional embedding.
    """

    #: layout of the conv stack's weights and activations: channels_last (NHWC), in which
    #: oneDNN's convolutions and BatchNorm make a training step 10-20% faster on CPU than in
    #: the contiguous NCHW layout (`benchmarks/bench_training.py --options`, every image
    #: learner); the same function either way
    memory_format: torch.memory_format = torch.channels_last

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        d_model: int = 128,
        width: int = 32,
        grid: int = 4,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise ValueError(
                f"CNNEncoder needs in_shape (C, H, W) of positive sizes, got {in_shape}"
            )
        if width < 2 or d_model < 1 or grid < 1:
            raise ValueError(
                "CNNEncoder needs width >= 2, d_model >= 1, grid >= 1; "
                f"got width={width}, d_model={d_model}, grid={grid}"
            )
        if norm not in ("batch", "group"):
            raise ValueError(f"CNNEncoder norm must be 'batch' or 'group', got {norm!r}")
        channels, height, wid = in_shape
        self.in_shape = tuple(in_shape)
        self.grid = grid
        self.n_tokens = grid * grid
        self.d_model = d_model
        n_down = max(1, round(math.log2(max(1, min(height, wid) // grid))))

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            # GroupNorm keeps a sample's features independent of its batch, when that matters
            # more than BatchNorm's speed.
            nrm = nn.BatchNorm2d(c_out) if norm == "batch" else nn.GroupNorm(min(8, c_out), c_out)
            return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nrm, nn.ReLU(inplace=True)]

        # The stem downsamples at once: at 32 x 32 a full-resolution stem made a training step
        # about 1.5x slower, and a 3x3 stride-2 stem still sees every pixel.
        layers: list[nn.Module] = []
        c = channels
        for i in range(n_down):
            c_out = width * 2 ** min(i, 2)
            if i == n_down - 1 and i > 0:
                # Extra capacity at the last resolution above the token grid, where the
                # texture-scale patterns are still resolved.
                layers += block(c, c, 1)
            layers += block(c, c_out, 2)
            c = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(grid)).to(
            memory_format=self.memory_format
        )
        self.proj = nn.Linear(c, d_model)
        self.pos = nn.Parameter(torch.zeros(1, self.n_tokens, d_model))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:2]) != self.in_shape[:1]:
            raise ValueError(
                f"CNNEncoder built for (B, {', '.join(map(str, self.in_shape))}) inputs, "
                f"got {tuple(x.shape)}"
            )
        f = self.features(x.contiguous(memory_format=self.memory_format))  # (B, C, g, g)
        return self.proj(f.flatten(2).transpose(1, 2)) + self.pos


#: Input side at which the AlexNet encoder's feature map is 6 x 6 (CoMM's 224 x 224 images),
#: the grid its fixed position embeddings are defined on.
ALEXNET_REFERENCE_SIZE = 224
#: Smallest input side the AlexNet encoder accepts: below it the last max-pool has no output.
ALEXNET_MIN_SIZE = 63
#: Channels of the AlexNet feature map.
ALEXNET_CHANNELS = 256


def alexnet_grid(side: int) -> int:
    """Side of the AlexNet feature map for an input side of `side` pixels (0 if too small).

    11 x 11 conv, stride 4, padding 2; then three 3 x 3 max-pools of stride 2 (after conv 1,
    conv 2 and conv 5), with the stride-1 convs between them keeping the size: 224 -> 55 ->
    27 -> 13 -> 6, 64 -> 15 -> 7 -> 3 -> 1.
    """
    n = (side + 2 * 2 - 11) // 4 + 1
    for _ in range(3):
        n = (n - 3) // 2 + 1 if n >= 3 else 0
    return max(n, 0)


def sincos_2d(rows: int, cols: int, dim: int, temperature: float = 10000.0) -> Tensor:
    """Fixed 2-D sine-cosine position embeddings (1, dim, rows, cols), float32.

    The cell at (row r, column c) gets [sin(r w), cos(r w), sin(c w), cos(c w)], each block
    dim / 4 long, with frequencies w_k = temperature ** (-k / (dim / 4)), k = 0 .. dim/4 - 1
    (the MoCo v3 embedding, as CoMM's adapters use it).
    """
    if dim % 4:
        raise ValueError(f"2-D sine-cosine embeddings need a width divisible by 4, got {dim}")
    q = dim // 4
    freq = temperature ** -(torch.arange(q, dtype=torch.float64) / q)
    r = torch.arange(rows, dtype=torch.float64)[:, None, None] * freq  # (rows, 1, q)
    c = torch.arange(cols, dtype=torch.float64)[None, :, None] * freq  # (1, cols, q)
    r, c = r.expand(rows, cols, q), c.expand(rows, cols, q)
    table = torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=-1)  # (rows, cols, dim)
    return table.permute(2, 0, 1).unsqueeze(0).to(torch.float32).contiguous()


class AlexNetEncoder(nn.Module):
    """AlexNet's convolutional trunk emitting one token per cell of its feature map.

    The image encoder of CoMM's Trifeature experiments, written from its description: five
    convolutions (64 channels 11 x 11 stride 4, 192 5 x 5, 384, 256 and 256 3 x 3; each
    followed by ReLU) with 3 x 3 stride-2 max-pools after the first, second and fifth, trained
    from scratch, no normalisation layers. The feature map (256, g, g) is used as it is (no
    global pooling): g = 6 at 224 x 224 pixels, 1 at 63-94, 2 at 95-126, 3 at 127-158 (see
    `alexnet_grid`). Each cell's 256 features are projected to d_model (a 1 x 1 convolution)
    and given a fixed 2-D sine-cosine position embedding defined on the 6 x 6 grid of a
    224-pixel image and resized bicubically (align_corners=False) to the actual grid.
    """

    #: layout of the conv stack's weights and activations, as `CNNEncoder`'s
    memory_format: torch.memory_format = torch.channels_last

    def __init__(self, in_shape: tuple[int, int, int], d_model: int = 512) -> None:
        super().__init__()
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise ValueError(
                f"AlexNetEncoder needs in_shape (C, H, W) of positive sizes, got {in_shape}"
            )
        channels, height, width = in_shape
        if min(height, width) < ALEXNET_MIN_SIZE:
            raise ValueError(
                f"the alexnet image encoder needs images of at least {ALEXNET_MIN_SIZE} x "
                f"{ALEXNET_MIN_SIZE} pixels (its feature map is empty below), got {height} x "
                f"{width}; use a larger size or model.image_encoder=cnn"
            )
        if d_model < 4 or d_model % 4:
            raise ValueError(
                "the alexnet image encoder needs d_model divisible by 4 (its 2-D sine-cosine "
                f"position embeddings have four blocks), got {d_model}"
            )
        self.in_shape = tuple(in_shape)
        self.d_model = d_model
        self.grid_shape = (alexnet_grid(height), alexnet_grid(width))
        self.n_tokens = self.grid_shape[0] * self.grid_shape[1]

        def conv(c_in: int, c_out: int, k: int, stride: int, pad: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, k, stride, pad), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(channels, 64, 11, 4, 2),
            nn.MaxPool2d(3, 2),
            *conv(64, 192, 5, 1, 2),
            nn.MaxPool2d(3, 2),
            *conv(192, 384, 3, 1, 1),
            *conv(384, 256, 3, 1, 1),
            *conv(256, ALEXNET_CHANNELS, 3, 1, 1),
            nn.MaxPool2d(3, 2),
        ).to(memory_format=self.memory_format)
        self.proj = nn.Linear(ALEXNET_CHANNELS, d_model)
        g = alexnet_grid(ALEXNET_REFERENCE_SIZE)
        pos = F.interpolate(
            sincos_2d(g, g, d_model), size=self.grid_shape, mode="bicubic", align_corners=False
        )
        # Fixed, not learned: a buffer outside the state dict (it follows from the shapes).
        self.register_buffer("pos", pos.flatten(2).transpose(1, 2).contiguous(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(
                f"AlexNetEncoder built for (B, {', '.join(map(str, self.in_shape))}) inputs, "
                f"got {tuple(x.shape)}"
            )
        f = self.features(x.contiguous(memory_format=self.memory_format))  # (B, 256, gh, gw)
        return self.proj(f.flatten(2).transpose(1, 2)) + self.pos
