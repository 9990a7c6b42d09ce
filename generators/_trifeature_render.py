"""The Trifeature renderer (`generators.trifeature`): images from per-image factors.

An image shows one of 10 shapes, filled with one of 10 textures, in one of 10 colours, on a grey
background: image = shape mask x texture x colour, where the texture modulates the intensity of
the colour inside the shape. The shape template is rotated by U(-45, 45) degrees and placed at a
random position; the texture is rotated by its own U(-45, 45) degrees and shifted by a random
phase. Rendering is procedural and vectorised (signed distance functions evaluated on the pixel
grid, anti-aliased over one pixel), so any size >= 16 works.

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

import numpy as np

from ._params import check_float, check_int

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

BACKGROUND = 0.5
#: Intensity of a texture's dark parts, relative to the full colour: dark enough to show the
#: pattern, bright enough that the colour stays recognisable and differs from the background.
DARK = 0.25
#: Shape template units per half image width: templates fit in the unit disc, so a shape spans
#: about 60% of the image.
SHAPE_SCALE = 0.68
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
