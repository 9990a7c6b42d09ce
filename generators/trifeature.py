"""`trifeature`: bimodal Trifeature images (CoMM's version of Hermann & Lampinen 2020).

An image shows one of 10 shapes, filled with one of 10 textures, in one of 10 colours, on a grey
background: image = shape mask x texture x colour, where the texture modulates the intensity of
the colour inside the shape. The shape template is rotated by U(-45, 45) degrees and placed at a
random position; the texture is rotated by its own U(-45, 45) degrees and shifted by a random
phase. Rendering is procedural and vectorised (signed distance functions evaluated on the pixel
grid, anti-aliased over one pixel), so any size >= 16 works.

A sample is a pair (image 1, image 2) with the same shape and otherwise independent texture and
colour. Labels: redundancy = shape, unique1 = texture of image 1, unique2 = texture of image 2,
synergy = [colour of image 2 == M(texture of image 1)] for a random one-to-one map M from textures
to colours (drawn from `seed`); about 10% of unbiased pairs are positive.

Split by combination: the 1000 (shape, texture, colour) combinations are split 80/20 with the
fixed `split_seed`, and every image of a split uses only that split's combinations. The split is
*balanced*: for every shape, the 20 held-out (texture, colour) cells are the union of two
disjoint random permutation matrices, so within a shape every texture and every colour appears
in exactly 8 train and 2 test combinations. This keeps each split's latent distribution exactly
as the tasks intend (texture and colour independent of shape, the synergy label independent of
either image alone), so the ground truth holds exactly on the distribution the images are drawn
from, not only on an idealised one. A plain random split would leak a little information about
the synergy label into each single image (see `true_pid_from_split`).

`pretrain["synergy"]` holds training pairs biased to satisfy the map (colour 2 = M(texture 1) for
every pair), as CoMM trains its synergy run; `train` and `test` stay unbiased for probing.

Texture scale. `texture_period` is the texture's period in half image widths, so a dataset's
look does not depend on `size`; the default 0.4 (`TEXTURE_PERIOD`, 6.4 pixels at 32 x 32) puts
2 * SHAPE_SCALE / 0.4 = 1.36 / 0.4 = 3.4 periods across a shape's frame (the unit disc its
template fits in, 1.36 half image widths), the fewest at which every texture is recognisable.

The authors' generator (CoMM's `dataset/trifeatures.py`) draws shape templates of BASE_SIZE =
128 pixels into RENDER_SIZE = 224 pixel images, with textures of period TEXTURE_SCALE = 10
pixels: 10 / (224 / 2) = 10 / 112 = 0.0893 half image widths (`AUTHORS_TEXTURE_PERIOD`). Their
shapes and ours cover the same share of the image: the square root of a shape's area, averaged
over the 10 shapes, is 98.5 pixels of 224 for theirs (their templates as their
`_render_plain_shape` draws them, rotation keeps the area) and 0.879 half image widths for
ours, 44.0% of the image width both. So the authors' period in pixels also keeps their number
of periods per shape: 98.5 / 10 = 9.85 = 0.879 / 0.0893. (Their 128 / 10 = 12.8 periods across
a template's box is no guide: their shapes fill 61% of their box on average, ours 42% of their
frame's bounding square, so matching that count, 1.36 / 12.8 = 0.106 half widths, would draw
textures 19% coarser than theirs.) In pixels, the authors' period is 0.0893 * size / 2:

| size (px) | period (px) | |
|---|---|---|
| 32 | 1.43 | under 2 pixels, below what a pixel grid can draw: refused (size >= 45 needed) |
| 64 | 2.86 | |
| 224 | 10.0 | the authors' images |

A period of fewer than 2 pixels at the requested size is refused (it aliases into a different
pattern). At 64 x 64 the authors' period keeps solid, stripes, grid, noise and rain plain to
see, but the small-motif textures become lattices of 1-2 pixel specks: dots and pluses look
alike, and hexgrid, triangles and zigzags differ mainly in lattice geometry and darkness; each
texture's mean shade is kept, its contrast (pixel standard deviation) inside the shape drops
by a quarter on average against 224 x 224, by a third or more for grid, hexgrid, zigzags and
pluses (anti-aliasing over one pixel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from estimators import pid
from estimators._result import PIDResult

from ._params import check_float, check_int, check_sizes, stream
from .base import TASKS, BimodalDataset, Split, register

SHAPES: tuple[str, ...] = (
    "triangle",
    "square",
    "plus",
    "circle",
    "tee",
    "rhombus",
    "pentagon",
    "star",
    "fivesquare",
    "trapezoid",
)
TEXTURES: tuple[str, ...] = (
    "solid",
    "stripes",
    "grid",
    "hexgrid",
    "dots",
    "noise",
    "triangles",
    "zigzags",
    "rain",
    "pluses",
)
COLOURS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "cyan",
    "blue",
    "purple",
    "pink",
    "brown",
    "white",
)
#: RGB in [0, 1], one row per entry of COLOURS; hues spread around the wheel plus brown and white.
COLOUR_RGB = np.array(
    [
        [0.90, 0.10, 0.10],
        [1.00, 0.55, 0.00],
        [1.00, 0.92, 0.10],
        [0.15, 0.72, 0.15],
        [0.10, 0.85, 0.90],
        [0.10, 0.25, 0.95],
        [0.58, 0.18, 0.88],
        [1.00, 0.50, 0.78],
        [0.55, 0.30, 0.08],
        [1.00, 1.00, 1.00],
    ],
    dtype=np.float32,
)

N_FEATURE = 10
#: Latent factors of a pair, in the order of the enumerated joint (`latent_joint`).
FACTORS: tuple[str, ...] = ("shape", "texture1", "colour1", "texture2", "colour2")

BACKGROUND = 0.5
#: Intensity of a texture's dark parts, relative to the full colour: dark enough to show the
#: pattern, bright enough that the colour stays recognisable and differs from the background.
DARK = 0.25
#: Shape template units per half image width: templates fit in the unit disc, so a shape spans
#: about 60% of the image.
SHAPE_SCALE = 0.68
#: Largest offset of the shape centre from the image centre, in half image widths.
MAX_OFFSET = 0.2
#: Default texture period, in half image widths (6.4 pixels at 32 x 32): about three periods
#: across a shape, the fewest at which every texture is still recognisable.
TEXTURE_PERIOD = 0.4
#: The authors' texture period in our units: their 10 pixels in a 224-pixel image, which on
#: shapes of the same size as theirs also keeps their periods per shape (module docstring).
AUTHORS_TEXTURE_PERIOD = 10 / 112
#: Fewest pixels per texture period a grid can draw (Nyquist): finer periods are refused.
MIN_PERIOD_PIXELS = 2.0
#: Largest texture period, in half image widths: one period across the whole image.
MAX_TEXTURE_PERIOD = 2.0
MAX_ROTATION = 45.0
#: Held-out (texture, colour) cells per shape and per texture (and per colour): 2 of 10 = 20%.
TEST_PER_ROW = 2
#: Pixels rendered per block: the float32 temporaries of a block then stay in a 4 MB cache,
#: which measured about twice as fast as blocks of thousands of images.
_BLOCK_PIXELS = 1 << 19


# --------------------------------------------------------------------------- shapes
# Each template maps template coordinates (x, y), y up, to a signed distance (negative inside).


def _box(x: np.ndarray, y: np.ndarray, cx: float, cy: float, hx: float, hy: float) -> np.ndarray:
    qx = np.abs(x - cx) - hx
    qy = np.abs(y - cy) - hy
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _convex(vertices: list[tuple[float, float]]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Signed distance (max over edge half-planes) of a convex polygon, vertices anticlockwise."""
    v = np.asarray(vertices, dtype=np.float64)
    edges = np.roll(v, -1, axis=0) - v
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    offsets = (normals * v).sum(axis=1)

    def sdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = x * np.float32(normals[0, 0]) + y * np.float32(normals[0, 1]) - np.float32(offsets[0])
        for (nx, ny), h in zip(normals[1:], offsets[1:], strict=True):
            d = np.maximum(d, x * np.float32(nx) + y * np.float32(ny) - np.float32(h))
        return d

    return sdf


def _regular(n: int, radius: float, phase_deg: float = 90.0) -> list[tuple[float, float]]:
    a = np.deg2rad(phase_deg + 360.0 * np.arange(n) / n)
    return [(radius * np.cos(t), radius * np.sin(t)) for t in a]


_triangle = _convex(_regular(3, 1.1))
_pentagon = _convex(_regular(5, 0.9))
_rhombus = _convex([(0.0, -1.0), (0.58, 0.0), (0.0, 1.0), (-0.58, 0.0)])
_trapezoid = _convex([(-0.95, -0.62), (0.95, -0.62), (0.48, 0.62), (-0.48, 0.62)])


def _square(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _box(x, y, 0.0, 0.0, 0.7, 0.7)


def _plus(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.minimum(_box(x, y, 0.0, 0.0, 0.3, 0.92), _box(x, y, 0.0, 0.0, 0.92, 0.3))


def _circle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.hypot(x, y) - 0.8


def _tee(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # The stem runs up into the bar: pieces that only touched would leave a seam where both
    # distances are zero inside the shape.
    return np.minimum(_box(x, y, 0.0, 0.6, 0.9, 0.3), _box(x, y, 0.0, -0.05, 0.3, 0.85))


def _fivesquare(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Five squares in a quincunx (the five of a die), just apart at their corners.
    h, o = 0.27, 0.6
    d = _box(x, y, 0.0, 0.0, h, h)
    for sx in (-o, o):
        for sy in (-o, o):
            d = np.minimum(d, _box(x, y, sx, sy, h, h))
    return d


_STAR_OUTER, _STAR_INNER = 1.0, 0.45


def _star(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Fold the plane into the half-sector [0, 36] degrees from a tip; there the boundary is one
    # segment from the tip to the neighbouring inner vertex.
    r = np.hypot(x, y)
    a = np.arctan2(x, y)
    sector = np.float32(2 * np.pi / 5)
    a = np.abs(np.mod(a + sector / 2, sector) - sector / 2)
    px, py = r * np.sin(a), r * np.cos(a)
    tx, ty = 0.0, _STAR_OUTER
    ix, iy = _STAR_INNER * np.sin(np.pi / 5), _STAR_INNER * np.cos(np.pi / 5)
    ex, ey = ix - tx, iy - ty
    t = np.clip(((px - tx) * ex + (py - ty) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    dist = np.hypot(px - tx - t * ex, py - ty - t * ey)
    # The origin side of the tip-to-inner line is inside.
    side = (px - tx) * ey - (py - ty) * ex
    return np.where(side > 0, -dist, dist).astype(np.float32)


SHAPE_SDF: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (
    _triangle,
    _square,
    _plus,
    _circle,
    _tee,
    _rhombus,
    _pentagon,
    _star,
    _fivesquare,
    _trapezoid,
)


# --------------------------------------------------------------------------- textures
# Each texture maps texture coordinates (a, b), one period per unit, and the pixel size in those
# units to an intensity in [0, 1]: 1 is the full colour, 0 the dark parts.


def _soft(d: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """Coverage of the region d < 0, anti-aliased over one pixel."""
    return np.clip(0.5 - d / pix, 0.0, 1.0)


def _centred(u: np.ndarray) -> np.ndarray:
    """Offset of u from the nearest integer, in [-0.5, 0.5)."""
    return u - np.floor(u + 0.5)


def _solid(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    return np.ones_like(a)


def _stripes(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    return 1.0 - _soft(np.abs(_centred(b)) - 0.25, pix)


def _grid(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    d = np.minimum(np.abs(_centred(a)), np.abs(_centred(b))) - 0.12
    return 1.0 - _soft(d, pix)


_SQRT3 = np.float32(np.sqrt(3.0))


def _hexgrid(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    # Honeycomb of unit flat-to-flat cells: the nearest centre of two offset rectangular
    # lattices is the nearest hexagon centre.
    ax, ay = _centred(a), _centred(b / _SQRT3) * _SQRT3
    bx, by = _centred(a - 0.5), _centred((b - _SQRT3 / 2) / _SQRT3) * _SQRT3
    use_a = ax * ax + ay * ay < bx * bx + by * by
    gx, gy = np.abs(np.where(use_a, ax, bx)), np.abs(np.where(use_a, ay, by))
    hex_radius = np.maximum(gx, 0.5 * gx + (_SQRT3 / 2) * gy)
    return 1.0 - _soft(0.5 - hex_radius - 0.09, pix)


def _dots(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    return 1.0 - _soft(np.hypot(_centred(a), _centred(b)) - 0.25, pix)


def _noise(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    # Blocky value noise, three cells per period, from a sine hash of the cell index; float64 so
    # the hash does not lose its digits.
    i = np.floor(3.0 * a.astype(np.float64))
    j = np.floor(3.0 * b.astype(np.float64))
    h = np.sin(i * 127.1 + j * 311.7) * 43758.5453
    return (h - np.floor(h)).astype(np.float32)


def _triangles(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    # Triangular lattice; the upward triangles, shrunk so that they stand apart, are dark.
    height = _SQRT3 / 2
    v = b / height
    u = a - 0.5 * v
    fu, fv = u - np.floor(u), v - np.floor(v)
    inner = np.minimum(np.minimum(fu, fv), 1.0 - fu - fv) * height
    return 1.0 - _soft(0.035 - inner, pix)


def _zigzags(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    amplitude = 0.35
    wave = amplitude * (4.0 * np.abs(_centred(a)) - 1.0)
    slope = 4.0 * amplitude
    d = (np.abs(_centred(b + wave)) - 0.18) / np.float32(np.sqrt(1.0 + slope * slope))
    return 1.0 - _soft(d, pix)


_RAIN_COS, _RAIN_SIN = np.float32(np.cos(np.pi / 6)), np.float32(np.sin(np.pi / 6))


def _rain(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    # Short slanted dashes on a staggered lattice.
    row = np.floor(b + 0.5)
    x = _centred(a + 0.5 * np.mod(row, 2.0))
    y = _centred(b)
    xr, yr = x * _RAIN_COS - y * _RAIN_SIN, x * _RAIN_SIN + y * _RAIN_COS
    return 1.0 - _soft(_box(xr, yr, 0.0, 0.0, 0.09, 0.3), pix)


def _pluses(a: np.ndarray, b: np.ndarray, pix: np.ndarray) -> np.ndarray:
    x, y = _centred(a), _centred(b)
    d = np.minimum(_box(x, y, 0.0, 0.0, 0.32, 0.1), _box(x, y, 0.0, 0.0, 0.1, 0.32))
    return 1.0 - _soft(d, pix)


TEXTURE_FN: tuple[Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], ...] = (
    _solid,
    _stripes,
    _grid,
    _hexgrid,
    _dots,
    _noise,
    _triangles,
    _zigzags,
    _rain,
    _pluses,
)


# --------------------------------------------------------------------------- rendering


def _rotated(
    x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray, deg: np.ndarray, unit: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates of each image in a frame centred at (cx, cy), turned by `deg`, scaled.

    x: pixel column centres (W,), y: pixel row centres (H,), y up; returns two (n, H, W).
    """
    t = np.deg2rad(deg)
    c = (np.cos(t) / unit).astype(np.float32)[:, None, None]
    s = (np.sin(t) / unit).astype(np.float32)[:, None, None]
    # The rotation is separable into a column term and a row term, so each output costs a
    # single broadcast add instead of several full-size passes.
    dx = x[None, None, :] - cx.astype(np.float32)[:, None, None]
    dy = y[None, :, None] - cy.astype(np.float32)[:, None, None]
    return c * dx + s * dy, c * dy - s * dx


def check_texture_period(texture_period: object, size: int) -> float:
    """`texture_period` (half image widths) as a float, or a ValueError saying what is accepted:
    a number in (0, MAX_TEXTURE_PERIOD] of at least MIN_PERIOD_PIXELS pixels at `size`."""
    g = "trifeature"
    period = check_float(g, "texture_period", texture_period, low=0.0, high=MAX_TEXTURE_PERIOD)
    pixels = period * size / 2
    if pixels < MIN_PERIOD_PIXELS:
        need = math.ceil(2 * MIN_PERIOD_PIXELS / period) if period > 0 else None
        larger = f"size >= {need} or " if need else ""
        raise ValueError(
            f"generator {g!r}: texture_period={period:g} half image widths is {pixels:.2g} "
            f"pixels at size {size}, finer than a {MIN_PERIOD_PIXELS:g}-pixel grid can draw; "
            f"use {larger}texture_period >= {2 * MIN_PERIOD_PIXELS / size:g}"
        )
    return period


def render(
    shape: np.ndarray,
    texture: np.ndarray,
    colour: np.ndarray,
    rotation: np.ndarray,
    position: np.ndarray,
    texture_rotation: np.ndarray,
    texture_phase: np.ndarray,
    size: int = 32,
    *,
    texture_period: float = TEXTURE_PERIOD,
) -> np.ndarray:
    """Render images (n, 3, size, size) float32 in [0, 1] from per-image factors.

    shape, texture, colour: int arrays (n,) of indices into SHAPES, TEXTURES, COLOURS.
    rotation, texture_rotation: degrees (n,). position: shape centre (n, 2) as (x, y) in half
    image widths from the centre, y up. texture_phase: (n, 2) texture offset in periods.
    texture_period: in half image widths (module docstring), at least 2 pixels at `size`.
    """
    shape, texture, colour = (np.asarray(a, dtype=np.int64) for a in (shape, texture, colour))
    rotation, texture_rotation = np.asarray(rotation), np.asarray(texture_rotation)
    position, texture_phase = np.asarray(position), np.asarray(texture_phase)
    n = len(shape)
    per_image = (texture, colour, rotation, texture_rotation)
    if any(a.shape != (n,) for a in (shape, *per_image)) or any(
        a.shape != (n, 2) for a in (position, texture_phase)
    ):
        raise ValueError(
            "render needs shape, texture, colour, rotation, texture_rotation of shape (n,) and "
            "position, texture_phase of shape (n, 2), got "
            + ", ".join(str(a.shape) for a in (shape, *per_image, position, texture_phase))
        )
    for name, a in (("shape", shape), ("texture", texture), ("colour", colour)):
        if n and (a.min() < 0 or a.max() >= N_FEATURE):
            raise ValueError(f"render: {name} indices must be in 0..{N_FEATURE - 1}")
    size = check_int("trifeature", "size", size, low=1)
    texture_period = check_texture_period(texture_period, size)
    out = np.empty((n, 3, size, size), dtype=np.float32)
    # Pixel centres in half image widths, y up.
    grid = (2.0 * np.arange(size, dtype=np.float32) + 1.0) / size - 1.0
    xs, ys = grid, -grid
    pix_shape = np.float32(2.0 / size / SHAPE_SCALE)
    pix_tex = np.float32(2.0 / size / texture_period)
    block = max(1, _BLOCK_PIXELS // (size * size))
    for start in range(0, n, block):
        sl = slice(start, min(start + block, n))
        m = sl.stop - sl.start
        mask = np.empty((m, size, size), dtype=np.float32)
        tex = np.empty((m, size, size), dtype=np.float32)
        for k in range(N_FEATURE):
            idx = np.flatnonzero(shape[sl] == k)
            if idx.size:
                pos = position[sl][idx]
                u, v = _rotated(xs, ys, pos[:, 0], pos[:, 1], rotation[sl][idx], SHAPE_SCALE)
                mask[idx] = _soft(SHAPE_SDF[k](u, v), pix_shape)
            idx = np.flatnonzero(texture[sl] == k)
            if idx.size:
                zero = np.zeros(idx.size, dtype=np.float32)
                a, b = _rotated(xs, ys, zero, zero, texture_rotation[sl][idx], texture_period)
                ph = texture_phase[sl][idx].astype(np.float32)
                a += ph[:, 0, None, None]
                b += ph[:, 1, None, None]
                tex[idx] = TEXTURE_FN[k](a, b, pix_tex)
        shade = np.float32(DARK) + np.float32(1.0 - DARK) * tex
        shade *= mask
        rgb = COLOUR_RGB[colour[sl]]
        bg = np.float32(BACKGROUND)
        for ch in range(3):
            # background * (1 - mask) + colour * shade, with shade already carrying the mask.
            out[sl, ch] = bg - bg * mask + rgb[:, ch, None, None] * shade
    np.clip(out, 0.0, 1.0, out=out)
    return out


# --------------------------------------------------------------------------- split and sampling


def combination_split(split_seed: int = 0) -> np.ndarray:
    """Boolean (shape, texture, colour) array, True for the 800 training combinations.

    Per shape, the 200 test combinations are the union of TEST_PER_ROW disjoint random
    permutation matrices (texture -> colour), so every texture and every colour keeps the same
    number of combinations in each split.
    """
    rng = stream(split_seed, "trifeature", "combination_split")
    train = np.ones((N_FEATURE,) * 3, dtype=bool)
    rows = np.arange(N_FEATURE)
    for s in range(N_FEATURE):
        used = np.zeros((N_FEATURE, N_FEATURE), dtype=bool)
        for _ in range(TEST_PER_ROW):
            # Rejection sampling of a permutation avoiding the cells already held out: a few
            # tries on average (about e for the second of two).
            while True:
                perm = rng.permutation(N_FEATURE)
                if not used[rows, perm].any():
                    break
            used[rows, perm] = True
        train[s] = ~used
    return train


def synergy_map(seed: int) -> np.ndarray:
    """The one-to-one map M from texture index to colour index, drawn from `seed`."""
    return stream(seed, "trifeature", "synergy_map").permutation(N_FEATURE)


def _sample_cells(
    allowed: np.ndarray, shape: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(texture, colour) uniform over the allowed cells of each image's shape."""
    cells = [np.flatnonzero(allowed[s]) for s in range(N_FEATURE)]
    counts = np.array([len(c) for c in cells])
    table = np.zeros((N_FEATURE, counts.max()), dtype=np.int64)
    for s, c in enumerate(cells):
        table[s, : len(c)] = c
    pick = np.floor(rng.random(len(shape)) * counts[shape]).astype(np.int64)
    flat = table[shape, pick]
    return flat // N_FEATURE, flat % N_FEATURE


def _sample_textures_for_colour(
    allowed: np.ndarray, shape: np.ndarray, colour: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A texture uniform over those allowed with each image's (shape, colour)."""
    ok = allowed.transpose(0, 2, 1)  # [shape, colour, texture]
    counts = ok.sum(axis=2)
    # Rank of the chosen texture among the allowed ones, then its index by cumulative count.
    rank = np.floor(rng.random(len(shape)) * counts[shape, colour]).astype(np.int64)
    cum = np.cumsum(ok[shape, colour], axis=1)
    return (cum <= rank[:, None]).sum(axis=1).astype(np.int64)


def _labels(latents: dict[str, np.ndarray], m: np.ndarray) -> dict[str, np.ndarray]:
    """Every task's label from the latents: the one place labels are defined."""
    return {
        "redundancy": latents["shape"].astype(np.int64),
        "unique1": latents["texture1"].astype(np.int64),
        "unique2": latents["texture2"].astype(np.int64),
        "synergy": (latents["colour2"] == m[latents["texture1"]]).astype(np.int64),
    }


def _sample_split(
    n: int,
    allowed: np.ndarray,
    m: np.ndarray,
    size: int,
    rng: np.random.Generator,
    biased: bool = False,
    texture_period: float = TEXTURE_PERIOD,
) -> Split:
    # Every draw is independent of `size`, so the same seed gives the same scenes (latents,
    # poses, labels) at every image size. The pose latents are kept so that the images can be
    # re-rendered from the latents alone.
    shape = rng.integers(0, N_FEATURE, size=n)
    t1, c1 = _sample_cells(allowed, shape, rng)
    if biased:
        c2 = m[t1]
        t2 = _sample_textures_for_colour(allowed, shape, c2, rng)
    else:
        t2, c2 = _sample_cells(allowed, shape, rng)
    latents: dict[str, np.ndarray] = {
        "shape": shape,
        "texture1": t1,
        "colour1": c1,
        "texture2": t2,
        "colour2": c2,
    }
    images = []
    for i, (t, c) in enumerate(((t1, c1), (t2, c2)), start=1):
        rot = rng.uniform(-MAX_ROTATION, MAX_ROTATION, size=n)
        pos = rng.uniform(-MAX_OFFSET, MAX_OFFSET, size=(n, 2))
        trot = rng.uniform(-MAX_ROTATION, MAX_ROTATION, size=n)
        phase = rng.random((n, 2))
        latents[f"rotation{i}"] = rot
        latents[f"position{i}"] = pos
        latents[f"texture_rotation{i}"] = trot
        latents[f"texture_phase{i}"] = phase
        images.append(
            render(shape, t, c, rot, pos, trot, phase, size, texture_period=texture_period)
        )
    return Split(x1=images[0], x2=images[1], labels=_labels(latents, m), latents=latents)


# --------------------------------------------------------------------------- ground truth


def latent_joint(
    task: str,
    x1: tuple[str, ...],
    x2: tuple[str, ...],
    split_seed: int = 0,
    seed: int = 0,
    split: str = "train",
) -> np.ndarray:
    """Exact p[x1, x2, y] of the factor tuples `x1`, `x2` and task `task`'s label.

    Enumerates the 10**5 pair latents (shape, texture1, colour1, texture2, colour2) with their
    exact probabilities under the generator's sampling from `split` ("train" or "test"): shape
    uniform, then (texture, colour) of each image independently uniform over the split's
    combinations for that shape. A factor tuple is coded row-major (first factor slowest).
    """
    for f in (*x1, *x2):
        if f not in FACTORS:
            raise ValueError(f"unknown factor {f!r}; accepted: {', '.join(FACTORS)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; accepted: {', '.join(TASKS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    allowed = combination_split(split_seed)
    if split == "test":
        allowed = ~allowed
    cond = allowed / allowed.sum(axis=(1, 2), keepdims=True)  # p(texture, colour | shape)
    prob = (
        cond[:, :, :, None, None] * cond[:, None, None, :, :] / N_FEATURE
    ).ravel()  # [s, t1, c1, t2, c2]
    codes = dict(zip(FACTORS, np.indices((N_FEATURE,) * 5).reshape(5, -1), strict=True))
    y = _labels(codes, synergy_map(seed))[task]

    def code(factors: tuple[str, ...]) -> np.ndarray:
        out = np.zeros(prob.size, dtype=np.int64)
        for f in factors:
            out = out * N_FEATURE + codes[f]
        return out

    n_y = int(y.max()) + 1
    shape = (N_FEATURE ** len(x1), N_FEATURE ** len(x2), n_y)
    flat = np.ravel_multi_index((code(x1), code(x2), y), shape)
    return np.bincount(flat, weights=prob, minlength=int(np.prod(shape))).reshape(shape)


def _conditional_independent(p_xy: np.ndarray, coarse: np.ndarray, tol: float = 1e-12) -> bool:
    """Whether p(y | x) == p(y | coarse(x)) for every x with p(x) > 0."""
    px = p_xy.sum(axis=1)
    pc = np.zeros((coarse.max() + 1, p_xy.shape[1]))
    np.add.at(pc, coarse, p_xy)
    pcy = pc / np.maximum(pc.sum(axis=1, keepdims=True), 1e-300)
    keep = px > 0
    return bool(np.all(np.abs(p_xy[keep] / px[keep, None] - pcy[coarse[keep]]) <= tol))


def _statistics(task: str, split_seed: int, seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Factor tuples T1, T2 on which the task's PID equals that of the full pair latents."""
    if task == "redundancy":
        return ("shape",), ("shape",)
    if task == "unique1":
        return ("texture1",), ("shape",)
    if task == "unique2":
        return ("shape",), ("texture2",)
    # Synergy: y reads (texture1, colour2), and given the shape each image is independent of
    # the other, so (shape, texture1) and (shape, colour2) are always sufficient. The shape can
    # be dropped as well when y does not depend on it given the texture (colour), which the
    # balanced split guarantees; check it rather than assume it.
    t1, t2 = ("shape", "texture1"), ("shape", "colour2")
    p1 = latent_joint(task, t1, ("shape",), split_seed, seed).sum(axis=1)
    p2 = latent_joint(task, ("shape",), t2, split_seed, seed).sum(axis=0)
    drop = np.arange(N_FEATURE * N_FEATURE) % N_FEATURE
    if _conditional_independent(p1, drop) and _conditional_independent(p2, drop):
        return ("texture1",), ("colour2",)
    return t1, t2


@lru_cache(maxsize=64)
def true_pid_from_split(task: str, split_seed: int = 0, seed: int = 0) -> PIDResult:
    """BROJA PID, in bits, of (image 1's latents, image 2's latents; task label).

    Image i's latents are (shape, texture_i, colour_i) under the exact training distribution
    (`latent_joint`); rotations, positions and texture phases are independent of everything
    else and change nothing. The full joint has 1000 x 1000 x K cells, so it is solved on
    statistics T_i of each modality's latents X_i (`_statistics`), which gives the same atoms:

    If Y is independent of X1 given T1 = f(X1), the BROJA atoms of (X1, X2; Y) and (T1, X2; Y)
    have the same I(Y; X1), and the same minimum of I_q(Y; X1 | X2) over joints q with p's
    (X1, Y) and (X2, Y) marginals: coarsening any feasible q to T1 is feasible and cannot
    increase it, and any feasible r on (T1, X2, Y) extends to q = r(t1, x2, y) p(x1 | t1), which
    is feasible with the same value. With the same for X2, and (T1, T2) sufficient for Y from
    (X1, X2) jointly (so I(Y; X1, X2) is kept and with it the synergy), every atom is kept.
    Every statistic used reads all the factors its label depends on, and holds Y independent
    of the rest of its image's latents (checked for the synergy task, by construction for the
    others: given the shape the two images are independent).
    """
    t1, t2 = _statistics(task, split_seed, seed)
    return pid(latent_joint(task, t1, t2, split_seed, seed), measure="broja")


# --------------------------------------------------------------------------- generator


@register("trifeature")
def trifeature(
    size: int = 32,
    n_train: int = 10000,
    n_test: int = 4096,
    seed: int = 0,
    split_seed: int = 0,
    texture_period: float = TEXTURE_PERIOD,
) -> BimodalDataset:
    """Bimodal Trifeature pairs of `size` x `size` RGB images.

    `seed` draws the synergy map and every sample; `split_seed` fixes the 80/20 combination
    split (kept fixed across seeds, as a benchmark split is). Train, test and the biased
    synergy pretraining split come from independent streams, so `n_train` does not change the
    test set. `texture_period` is in half image widths (AUTHORS_TEXTURE_PERIOD = 10 / 112 is
    the authors' 10 pixels at 224 x 224; module docstring); it changes the pixels only, not
    the scenes or labels.
    """
    g = "trifeature"
    size = check_int(g, "size", size, low=16)
    n_train, n_test, seed = check_sizes(g, n_train, n_test, seed)
    split_seed = check_int(g, "split_seed", split_seed, low=0)
    texture_period = check_texture_period(texture_period, size)

    allowed = combination_split(split_seed)
    m = synergy_map(seed)
    kw = {"texture_period": texture_period}
    train = _sample_split(n_train, allowed, m, size, stream(seed, g, "train"), **kw)
    test = _sample_split(n_test, ~allowed, m, size, stream(seed, g, "test"), **kw)
    pretrain = _sample_split(
        n_train, allowed, m, size, stream(seed, g, "pretrain_synergy"), biased=True, **kw
    )
    return BimodalDataset(
        name=g,
        params={
            "size": size,
            "n_train": n_train,
            "n_test": n_test,
            "seed": seed,
            "split_seed": split_seed,
            "texture_period": texture_period,
            "synergy_map": [int(c) for c in m],
            "label_names": {
                "redundancy": SHAPES,
                "unique1": TEXTURES,
                "unique2": TEXTURES,
                "synergy": ("no", "yes"),
            },
            "latent_names": {
                "shape": SHAPES,
                "texture1": TEXTURES,
                "colour1": COLOURS,
                "texture2": TEXTURES,
                "colour2": COLOURS,
            },
        },
        train=train,
        test=test,
        true_pid={t: true_pid_from_split(t, split_seed, seed) for t in TASKS},
        n_classes={t: 2 if t == "synergy" else N_FEATURE for t in TASKS},
        pretrain={"synergy": pretrain},
    )
