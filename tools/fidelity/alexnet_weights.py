"""Weights and inputs of the AlexNet fidelity fixture, made from a fixed recipe.

AlexNet's trunk has 2.5 M parameters (10 MB in float32), too many to commit; both sides of the
fixture (`tools/fidelity/make_fixtures_alexnet.py`, which runs the authors' modules, and
`tests/test_fidelity_alexnet.py`, which runs ours) rebuild them from this recipe instead, and
the fixture stores a checksum of each array so that a change to the recipe shows as such.

Values come from a counter-based hash (splitmix64 of the array's name and the element's index)
in exact integer arithmetic, so they are the same bits on every machine and numpy version.
Only numpy is imported: the script runs in a separate environment without this package.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

#: (name, shape) of every parameter, in the authors' layout: conv weights (out, in, kh, kw);
#: the token projection is a 1 x 1 conv there (our Linear takes it as (d_model, 256)).
CONVS: tuple[tuple[str, int, int, int], ...] = (
    # name, in channels, out channels, kernel
    ("conv1", 3, 64, 11),
    ("conv2", 64, 192, 5),
    ("conv3", 192, 384, 3),
    ("conv4", 384, 256, 3),
    ("conv5", 256, 256, 3),
)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of uint64 counters (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hashed_uniform(name: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """float64 values in [-1, 1) on a grid of 2**-23, one per element, from `name` and `seed`."""
    n = int(np.prod(shape))
    key = (zlib.crc32(name.encode()) << 24) ^ (seed << 56)
    z = _splitmix64(np.uint64(key) + np.arange(n, dtype=np.uint64))
    u = (z >> np.uint64(40)).astype(np.float64) / 2.0**24  # 24 bits: exact in float32
    return (2.0 * u - 1.0).reshape(shape)


def alexnet_weights(d_model: int, seed: int = 0) -> dict[str, np.ndarray]:
    """float32 weights of the trunk and the token projection, by name.

    Uniform with He's bound sqrt(6 / fan_in) for weights, so that activations keep their scale
    through the five ReLU layers (the default init shrinks them), and 0.1 for biases.
    """
    out: dict[str, np.ndarray] = {}
    layers = [*CONVS, ("proj", 256, d_model, 1)]
    for name, c_in, c_out, k in layers:
        bound = np.sqrt(6.0 / (c_in * k * k))
        w = hashed_uniform(f"{name}.weight", (c_out, c_in, k, k), seed) * bound
        out[f"{name}.weight"] = w.astype(np.float32)
        out[f"{name}.bias"] = (hashed_uniform(f"{name}.bias", (c_out,), seed) * 0.1).astype(
            np.float32
        )
    return out


def image_bytes(name: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """uint8 images (B, C, H, W) from the recipe: what an 8-bit image file holds."""
    return np.floor((hashed_uniform(name, shape, seed) + 1.0) * 128.0).astype(np.uint8)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images as float32 in [0, 1], computed one way on both sides of the fixture."""
    return images.astype(np.float32) / np.float32(255.0)


def checksum(a: np.ndarray) -> str:
    """sha256 of an array's little-endian bytes (C order), with its dtype and shape."""
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    h = hashlib.sha256(f"{a.dtype.str}/{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()
