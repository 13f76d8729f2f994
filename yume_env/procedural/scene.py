"""Seeded, unbounded city scene: a street grid with building blocks, parks, plazas and yards.

Coordinates are metres with ``y`` up; the ground is the plane ``y = 0``. ``x`` points east and ``z``
north. Roads run along every line ``x = i * CELL`` and ``z = j * CELL``; the square between four road
lines is a *cell* whose contents are generated on demand from ``(seed, i, j)`` and cached, so the
world has no edge and the same seed always gives the same place.

Solid objects are of two kinds, both vectorisable in the renderer:

- **boxes**: axis-aligned ``[x0, y0, z0, x1, y1, z1]`` (buildings, pillars, trunks, hedges, crates,
  lamp posts), with a material id, a base colour and three material parameters;
- **spheres**: ``[cx, cy, cz, r]`` (tree crowns; the event system adds a balloon).

The ground has no objects; its look comes from :meth:`Scene.ground_albedo`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Side of one street-grid cell, road centre line to road centre line (metres).
CELL = 40.0
#: Half width of a road (metres).
ROAD_HALF = 4.5
#: Distance from a road centre line to the outer edge of its sidewalk (metres).
WALK = 7.0

# Cell kinds.
BUILDINGS, PARK, PLAZA, YARD = 0, 1, 2, 3

# Box materials (``box_par`` meaning in brackets).
FACADE = 0  # building wall with windows (floor height, window spacing, window phase)
CONCRETE = 1  # plain stone / concrete
BARK = 2  # tree trunk
HEDGE = 3  # clipped hedge
CRATE = 4  # ribbed container / wooden crate / bench
METAL = 5  # lamp post
LAMP = 6  # lamp head (glows at night)

# Sphere materials.
FOLIAGE = 0
BALLOON = 1

_FACADE_COLOURS = np.array(
    [
        (0.78, 0.72, 0.62),
        (0.62, 0.62, 0.64),
        (0.64, 0.44, 0.36),
        (0.86, 0.84, 0.80),
        (0.55, 0.60, 0.68),
        (0.74, 0.67, 0.52),
        (0.52, 0.57, 0.52),
        (0.80, 0.69, 0.60),
        (0.45, 0.46, 0.50),
    ],
    dtype=np.float32,
)
_CRATE_COLOURS = np.array(
    [(0.20, 0.38, 0.66), (0.80, 0.56, 0.16), (0.24, 0.52, 0.30), (0.70, 0.70, 0.72), (0.45, 0.30, 0.55)],
    dtype=np.float32,
)

_M1 = np.uint32(0x9E3779B1)
_M2 = np.uint32(0x85EBCA77)
_M4 = np.uint32(0x2C1B3C6D)
_M5 = np.uint32(0x297A2D39)


def hash_u32(a, b, c: int = 0) -> np.ndarray:
    """Deterministic integer hash of integer arrays ``a``, ``b`` and an integer salt ``c`` (uint32)."""
    a = np.atleast_1d(np.asarray(a)).astype(np.uint32, copy=False)
    b = np.atleast_1d(np.asarray(b)).astype(np.uint32, copy=False)
    h = (a * _M1) ^ (b * _M2)
    h ^= np.uint32((int(c) * 0xC2B2AE3D) & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= _M4
    h ^= h >> np.uint32(13)
    h *= _M5
    h ^= h >> np.uint32(16)
    return h


def hash01(a, b, c: int = 0) -> np.ndarray:
    """:func:`hash_u32` mapped to float32 in ``[0, 1)``."""
    h = hash_u32(a, b, c)
    h >>= np.uint32(8)
    out = h.astype(np.float32)
    out *= np.float32(1.0 / (1 << 24))
    return out


_TEX = 1024  # side of the tiling noise textures, in texels
_TEXTURES: dict[str, np.ndarray] = {}


def _texture(name: str) -> np.ndarray:
    """Flat ``_TEX * _TEX`` float32 tiling texture: ``"smooth"`` value noise or ``"white"`` noise."""
    tex = _TEXTURES.get(name)
    if tex is None:
        n = _TEX
        if name == "white":
            tex = np.random.default_rng(0x7E57).random((n, n), dtype=np.float32)
        else:  # three octaves of periodic value noise, smoothstep-interpolated (separably)
            tex = np.zeros((n, n), np.float64)
            for cells, weight, salt in ((16, 0.5, 1), (64, 0.3, 2), (256, 0.2, 3)):
                lat = hash01(np.arange(cells)[:, None], np.arange(cells)[None, :], salt).astype(np.float64)
                c = (np.arange(n) + 0.5) * cells / n
                i0 = np.floor(c).astype(np.int64)
                fr = c - i0
                fr = fr * fr * (3 - 2 * fr)
                w = np.zeros((n, cells))
                w[np.arange(n), i0 % cells] += 1 - fr
                w[np.arange(n), (i0 + 1) % cells] += fr
                tex += weight * (w @ lat @ w.T)
            tex = ((tex - tex.min()) / (tex.max() - tex.min())).astype(np.float32)
        tex = np.ascontiguousarray(tex.reshape(-1))
        _TEXTURES[name] = tex
    return tex


def sample(name: str, x: np.ndarray, z: np.ndarray, scale: float) -> np.ndarray:
    """Nearest-texel lookup of tiling texture ``name`` at ``(x, z) * scale`` texels (float32)."""
    ix = np.floor(x * np.float32(scale)).astype(np.int64)
    iz = np.floor(z * np.float32(scale)).astype(np.int64)
    ix &= _TEX - 1
    iz &= _TEX - 1
    iz *= _TEX
    iz += ix
    return np.take(_texture(name), iz)


@dataclass
class SceneObjects:
    """Flat arrays of the solid objects in a region (see the module docstring for the layouts)."""

    boxes: np.ndarray  # (n, 6) float32
    box_mat: np.ndarray  # (n,) int16
    box_col: np.ndarray  # (n, 3) float32
    box_par: np.ndarray  # (n, 3) float32
    spheres: np.ndarray  # (m, 4) float32
    sph_mat: np.ndarray  # (m,) int16
    sph_col: np.ndarray  # (m, 3) float32

    def with_spheres(self, spheres, mats, cols) -> SceneObjects:
        """A copy with extra spheres appended (used for event objects such as the balloon)."""
        spheres = np.asarray(spheres, np.float32).reshape(-1, 4)
        if len(spheres) == 0:
            return self
        return SceneObjects(
            self.boxes,
            self.box_mat,
            self.box_col,
            self.box_par,
            np.concatenate([self.spheres, spheres]),
            np.concatenate([self.sph_mat, np.asarray(mats, np.int16).reshape(-1)]),
            np.concatenate([self.sph_col, np.asarray(cols, np.float32).reshape(-1, 3)]),
        )


class _CellBuilder:
    def __init__(self):
        self.boxes, self.box_mat, self.box_col, self.box_par = [], [], [], []
        self.spheres, self.sph_mat, self.sph_col = [], [], []

    def box(self, x0, y0, z0, x1, y1, z1, mat, col, par=(0.0, 0.0, 0.0)):
        self.boxes.append((x0, y0, z0, x1, y1, z1))
        self.box_mat.append(mat)
        self.box_col.append(col)
        self.box_par.append(par)

    def sphere(self, cx, cy, cz, r, mat, col):
        self.spheres.append((cx, cy, cz, r))
        self.sph_mat.append(mat)
        self.sph_col.append(col)

    def build(self) -> SceneObjects:
        return SceneObjects(
            np.asarray(self.boxes, np.float32).reshape(-1, 6),
            np.asarray(self.box_mat, np.int16).reshape(-1),
            np.asarray(self.box_col, np.float32).reshape(-1, 3),
            np.asarray(self.box_par, np.float32).reshape(-1, 3),
            np.asarray(self.spheres, np.float32).reshape(-1, 4),
            np.asarray(self.sph_mat, np.int16).reshape(-1),
            np.asarray(self.sph_col, np.float32).reshape(-1, 3),
        )


def _jitter(rng: np.random.Generator, col, amount: float = 0.05):
    return tuple(float(c) for c in np.clip(np.asarray(col) + rng.uniform(-amount, amount, 3), 0, 1))


def _split(lo: float, hi: float, n: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    cuts = np.linspace(lo, hi, n + 1)
    if n > 1:
        cuts[1:-1] += rng.uniform(-0.12, 0.12, n - 1) * (hi - lo) / n
    return [(float(cuts[k]), float(cuts[k + 1])) for k in range(n)]


def _tree(b: _CellBuilder, x: float, z: float, rng: np.random.Generator, scale: float = 1.0):
    w = rng.uniform(0.18, 0.26) * scale
    trunk_h = rng.uniform(2.4, 3.4) * scale
    r = rng.uniform(1.4, 2.3) * scale
    b.box(x - w, 0.0, z - w, x + w, trunk_h, z + w, BARK, _jitter(rng, (0.36, 0.26, 0.18), 0.04))
    cy = max(trunk_h + 0.45 * r, 2.3 + r)
    green = _jitter(rng, (0.22, 0.42, 0.16), 0.06)
    b.sphere(x, cy, z, r, FOLIAGE, green)
    if rng.random() < 0.5:  # a second, smaller lobe makes crowns less perfectly round
        off = rng.uniform(-0.5, 0.5, 2) * r
        b.sphere(x + off[0], cy + 0.5 * r, z + off[1], 0.7 * r, FOLIAGE, green)


class Scene:
    """The world of one seed. Cheap to create; cells are generated lazily and cached.

    Args:
        seed: any non-negative integer; each seed is a different neighbourhood, sun direction and
            start pose.
    """

    def __init__(self, seed: int):
        self.seed = int(seed) & 0x7FFFFFFF
        rng = np.random.default_rng([self.seed, 7])
        #: Sun azimuth in degrees, clockwise from north (+z) towards east (+x).
        self.sun_azimuth = float(rng.uniform(0.0, 360.0))
        self._cells: dict[tuple[int, int], SceneObjects] = {}
        self._regions: dict[tuple[int, int, int, int], SceneObjects] = {}

    # ---- layout --------------------------------------------------------------------------------
    def cell_kind(self, i, j) -> np.ndarray:
        """Kind of cell ``(i, j)`` (``BUILDINGS``, ``PARK``, ``PLAZA`` or ``YARD``), vectorised."""
        h = hash_u32(i, j, self.seed ^ 0x5EED) % np.uint32(100)
        return np.where(h < 60, BUILDINGS, np.where(h < 76, PARK, np.where(h < 90, PLAZA, YARD)))

    def start_pose(self) -> tuple[float, float, float, float]:
        """``(x, z, yaw_deg, pitch_deg)`` of the seed's start: standing on a road, looking along it."""
        rng = np.random.default_rng([self.seed, 11])
        i, j = (int(v) for v in rng.integers(-400, 400, 2))
        off = float(rng.uniform(-2.0, 2.0))
        along = float(rng.uniform(12.0, 28.0))
        jitter = float(rng.uniform(-8.0, 8.0))
        quarter = int(rng.integers(0, 4))
        if quarter in (0, 2):  # on a north-south road
            x, z = i * CELL + off, j * CELL + along
        else:  # on an east-west road
            x, z = i * CELL + along, j * CELL + off
        return x, z, (90.0 * quarter + jitter) % 360.0, 0.0

    # ---- objects -------------------------------------------------------------------------------
    def cell(self, i: int, j: int) -> SceneObjects:
        key = (int(i), int(j))
        got = self._cells.get(key)
        if got is None:
            if len(self._cells) > 4096:
                self._cells.clear()
            got = self._generate_cell(*key)
            self._cells[key] = got
        return got

    def objects_near(self, x: float, z: float, radius: float) -> SceneObjects:
        """All objects of the cells overlapping the square of half side ``radius`` around ``(x, z)``."""
        i0, i1 = int(np.floor((x - radius) / CELL)), int(np.floor((x + radius) / CELL))
        j0, j1 = int(np.floor((z - radius) / CELL)), int(np.floor((z + radius) / CELL))
        key = (i0, i1, j0, j1)
        region = self._regions.get(key)
        if region is None:
            parts = [self.cell(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]
            region = SceneObjects(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))
            if len(self._regions) >= 4:  # keep the few most recent windows (render + collisions)
                self._regions.pop(next(iter(self._regions)))
            self._regions[key] = region
        return region

    def colliders_near(self, x: float, z: float, radius: float, body: float, head: float) -> np.ndarray:
        """Footprints ``[x0, x1, z0, z1]`` (grown by ``body``) of boxes that start below ``head``."""
        objs = self.objects_near(x, z, radius)
        b = objs.boxes
        m = b[:, 1] < head
        b = b[m].astype(np.float64)
        return np.stack([b[:, 0] - body, b[:, 3] + body, b[:, 2] - body, b[:, 5] + body], axis=1)

    def _generate_cell(self, i: int, j: int) -> SceneObjects:
        rng = np.random.default_rng([self.seed, (i + (1 << 31)) & 0xFFFFFFFF, (j + (1 << 31)) & 0xFFFFFFFF])
        b = _CellBuilder()
        kind = int(self.cell_kind(i, j)[0])
        x0, z0 = i * CELL, j * CELL
        lo, hi = WALK, CELL - WALK
        if kind == BUILDINGS:
            self._buildings(b, rng, x0 + lo, x0 + hi, z0 + lo, z0 + hi)
        elif kind == PARK:
            self._park(b, rng, x0 + lo, x0 + hi, z0 + lo, z0 + hi)
        elif kind == PLAZA:
            self._plaza(b, rng, x0 + lo, x0 + hi, z0 + lo, z0 + hi)
        else:
            self._yard(b, rng, x0 + lo, x0 + hi, z0 + lo, z0 + hi)
        self._street(b, rng, x0, z0, kind)
        return b.build()

    @staticmethod
    def _buildings(b, rng, xa, xb, za, zb):
        nx = int(rng.choice([1, 2, 2, 3]))
        nz = int(rng.choice([1, 2, 2, 3]))
        for lx0, lx1 in _split(xa, xb, nx, rng):
            for lz0, lz1 in _split(za, zb, nz, rng):
                ins = rng.uniform(0.3, 1.2, 4)
                bx0 = lx0 + (ins[0] if lx0 > xa else ins[0] * 0.6)
                bx1 = lx1 - (ins[1] if lx1 < xb else ins[1] * 0.6)
                bz0 = lz0 + (ins[2] if lz0 > za else ins[2] * 0.6)
                bz1 = lz1 - (ins[3] if lz1 < zb else ins[3] * 0.6)
                floors = int(rng.integers(3, 9)) if rng.random() > 0.15 else int(rng.integers(10, 18))
                fh = float(rng.uniform(3.0, 3.6))
                h = floors * fh + 0.5
                col = _jitter(rng, _FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS))], 0.04)
                par = (fh, float(rng.uniform(2.2, 3.2)), float(rng.uniform(0, 1000)))
                b.box(bx0, 0.0, bz0, bx1, h, bz1, FACADE, col, par)
                if rng.random() < 0.45:  # rooftop plant room or water tank
                    w = rng.uniform(1.5, 3.0, 2)
                    cx = rng.uniform(bx0 + w[0] + 0.5, max(bx0 + w[0] + 0.6, bx1 - w[0] - 0.5))
                    cz = rng.uniform(bz0 + w[1] + 0.5, max(bz0 + w[1] + 0.6, bz1 - w[1] - 0.5))
                    b.box(
                        cx - w[0],
                        h,
                        cz - w[1],
                        cx + w[0],
                        h + rng.uniform(1.5, 3.0),
                        cz + w[1],
                        CONCRETE,
                        _jitter(rng, (0.55, 0.55, 0.56), 0.05),
                    )

    @staticmethod
    def _park(b, rng, xa, xb, za, zb):
        placed: list[tuple[float, float]] = []
        for _ in range(int(rng.integers(6, 13))):
            for _try in range(8):
                x, z = rng.uniform(xa + 2, xb - 2), rng.uniform(za + 2, zb - 2)
                if all((x - px) ** 2 + (z - pz) ** 2 > 16.0 for px, pz in placed):
                    placed.append((x, z))
                    _tree(b, x, z, rng, rng.uniform(0.9, 1.3))
                    break
        for _ in range(int(rng.integers(1, 4))):  # hedges along the edges
            h = rng.uniform(0.8, 1.2)
            length = rng.uniform(5, 12)
            if rng.random() < 0.5:
                z = za + 0.6 if rng.random() < 0.5 else zb - 1.4
                x = rng.uniform(xa + 1, xb - length - 1)
                b.box(x, 0, z, x + length, h, z + 0.8, HEDGE, _jitter(rng, (0.18, 0.36, 0.14)))
            else:
                x = xa + 0.6 if rng.random() < 0.5 else xb - 1.4
                z = rng.uniform(za + 1, zb - length - 1)
                b.box(x, 0, z, x + 0.8, h, z + length, HEDGE, _jitter(rng, (0.18, 0.36, 0.14)))
        for _ in range(int(rng.integers(0, 3))):  # benches
            x, z = rng.uniform(xa + 3, xb - 5), rng.uniform(za + 3, zb - 3)
            b.box(x, 0, z, x + 1.8, 0.5, z + 0.5, CRATE, _jitter(rng, (0.45, 0.30, 0.18)))

    @staticmethod
    def _plaza(b, rng, xa, xb, za, zb):
        cx, cz = (xa + xb) / 2, (za + zb) / 2
        style = int(rng.integers(0, 3))
        white = _jitter(rng, (0.85, 0.83, 0.78), 0.04)
        if style == 0:  # colonnade
            n = int(rng.integers(3, 6))
            h = rng.uniform(5, 9)
            for k in range(n):
                for zz in (za + 3, zb - 3):
                    x = xa + 3 + k * (xb - xa - 6) / max(n - 1, 1)
                    b.box(x - 0.45, 0, zz - 0.45, x + 0.45, h, zz + 0.45, CONCRETE, white)
            b.box(xa + 2, h, za + 2, xb - 2, h + 0.8, za + 4, CONCRETE, white)
            b.box(xa + 2, h, zb - 4, xb - 2, h + 0.8, zb - 2, CONCRETE, white)
        else:  # monument on a plinth, pillars around
            b.box(cx - 2.5, 0, cz - 2.5, cx + 2.5, 1.2, cz + 2.5, CONCRETE, white)
            if style == 1:
                b.box(cx - 0.7, 1.2, cz - 0.7, cx + 0.7, rng.uniform(9, 16), cz + 0.7, CONCRETE, white)
            else:
                b.box(
                    cx - 1.6, 1.2, cz - 1.6, cx + 1.6, 4.5, cz + 1.6, METAL, _jitter(rng, (0.3, 0.45, 0.42))
                )
            for sx in (-1, 1):
                for sz in (-1, 1):
                    x, z = cx + sx * rng.uniform(7, 10), cz + sz * rng.uniform(7, 10)
                    b.box(x - 0.4, 0, z - 0.4, x + 0.4, rng.uniform(3, 6), z + 0.4, CONCRETE, white)
        for _ in range(int(rng.integers(0, 3))):
            x, z = rng.uniform(xa + 1, xb - 3), rng.uniform(za + 5, zb - 5)
            s = rng.uniform(0.8, 1.4)
            b.box(x, 0, z, x + s, s, z + s, CRATE, _jitter(rng, (0.55, 0.42, 0.26)))
        for _ in range(int(rng.integers(0, 3))):
            _tree(b, rng.uniform(xa + 2, xb - 2), rng.choice([za + 1.5, zb - 1.5]), rng, 0.9)

    @staticmethod
    def _yard(b, rng, xa, xb, za, zb):
        # a low warehouse along one side, shipping containers in the rest
        depth = rng.uniform(8, 12)
        col = _jitter(rng, (0.62, 0.64, 0.66), 0.05)
        b.box(xa + 0.5, 0, zb - depth, xb - 0.5, rng.uniform(5, 8), zb - 0.5, FACADE, col, (4.5, 6.0, 0.0))
        for _ in range(int(rng.integers(2, 6))):
            w, length, h = 2.4, 6.0, 2.6
            x = rng.uniform(xa + 1, xb - length - 1)
            z = rng.uniform(za + 1, zb - depth - w - 1)
            stack = 2 if rng.random() < 0.3 else 1
            for s in range(stack):
                c = _CRATE_COLOURS[rng.integers(len(_CRATE_COLOURS))]
                b.box(x, s * h, z, x + length, (s + 1) * h, z + w, CRATE, _jitter(rng, c, 0.04))

    @staticmethod
    def _street(b, rng, x0, z0, kind):
        """Street trees and lamp posts on the four sidewalks around the cell."""
        tree_side = rng.random(4) < (0.3 if kind == PARK else 0.55)
        for side in range(4):
            # position along the side, and the fixed coordinate of the tree line / lamp line
            for along in np.arange(9.0, CELL - 8.0, rng.uniform(8.0, 11.0)):
                if tree_side[side] and rng.random() < 0.8:
                    p = _side_point(x0, z0, side, along + rng.uniform(-1, 1), 5.9)
                    _tree(b, p[0], p[1], rng, 0.85)
            for along in (12.0, 28.0):
                if rng.random() < 0.6:
                    p = _side_point(x0, z0, side, along + 2.0, 4.95)
                    w = 0.08
                    b.box(p[0] - w, 0, p[1] - w, p[0] + w, 5.2, p[1] + w, METAL, (0.20, 0.21, 0.22))
                    b.box(
                        p[0] - 0.22, 5.2, p[1] - 0.22, p[0] + 0.22, 5.5, p[1] + 0.22, LAMP, (0.8, 0.8, 0.75)
                    )

    # ---- ground --------------------------------------------------------------------------------
    def ground_albedo(self, x: np.ndarray, z: np.ndarray, detail: np.ndarray) -> np.ndarray:
        """Ground colour at world points ``(x, z)``; ``detail`` in [0, 1] fades markings at distance."""
        x = x.astype(np.float32, copy=False)
        z = z.astype(np.float32, copy=False)
        i = np.floor(x * np.float32(1 / CELL))
        j = np.floor(z * np.float32(1 / CELL))
        lx = x - i * CELL
        lz = z - j * CELL
        ex = np.minimum(lx, CELL - lx)  # distance to the nearest north-south road centre line
        ez = np.minimum(lz, CELL - lz)  # ... east-west
        ns_road = ex < ROAD_HALF
        ew_road = ez < ROAD_HALF
        road = ns_road | ew_road
        walk = ~road & ((ex < WALK) | (ez < WALK))
        n_fine = sample("white", x, z, 3.0)
        n_coarse = sample("smooth", x, z, 11.0)

        # cell interiors: depends on the cell kind (looked up on the small grid of cells in view)
        ii = i.astype(np.int64)
        jj = j.astype(np.int64)
        i0, j0 = int(ii.min()), int(jj.min())
        grid = self.cell_kind(np.arange(i0, ii.max() + 1)[:, None], np.arange(j0, jj.max() + 1)[None, :])
        kind = grid[ii - i0, jj - j0]
        col = np.empty(x.shape + (3,), np.float32)
        col[:] = (0.47, 0.40, 0.31)  # yard: packed earth
        col[kind == BUILDINGS] = (0.50, 0.50, 0.48)
        park = kind == PARK
        col[park] = (0.27, 0.44, 0.19)
        m = kind == PLAZA
        checker = (np.floor(x * 0.5) + np.floor(z * 0.5)) % 2
        col[m] = np.float32([0.68, 0.64, 0.57]) * (1 - 0.18 * detail[m] * checker[m])[:, None]
        g = np.where(park, 0.75 + 0.5 * n_coarse + 0.15 * (n_fine - 0.5) * detail, 0.9 + 0.2 * n_coarse)

        # sidewalks: tiles with grout, a kerb stone at the road edge
        tx = x * np.float32(1 / 1.5)
        tz = z * np.float32(1 / 1.5)
        tile = (np.abs(tx - np.round(tx)) < 0.04) | (np.abs(tz - np.round(tz)) < 0.04)
        col[walk] = (0.63, 0.62, 0.59)
        g = np.where(walk, 1.0 - 0.2 * detail * tile, g)
        kerb = walk & (np.minimum(ex, ez) < ROAD_HALF + 0.3)
        col[kerb] = (0.74, 0.74, 0.72)

        # roads: asphalt, dashed centre lines, zebra crossings
        col[road] = (0.25, 0.255, 0.27)
        g = np.where(road, 0.85 + 0.15 * n_coarse + 0.12 * (n_fine - 0.5) * detail, g)
        dash_ns = ns_road & (ex < 0.12) & (ez > WALK) & ((z * 0.25) % 1.0 < 0.5)
        dash_ew = ew_road & (ez < 0.12) & (ex > WALK) & ((x * 0.25) % 1.0 < 0.5)
        zebra_ns = ns_road & (ez >= ROAD_HALF + 0.4) & (ez < WALK - 0.2) & (x % 1.0 < 0.5)
        zebra_ew = ew_road & (ex >= ROAD_HALF + 0.4) & (ex < WALK - 0.2) & (z % 1.0 < 0.5)
        mark = np.nonzero(dash_ns | dash_ew | zebra_ns | zebra_ew)[0]
        col[mark] += (np.float32([0.86, 0.84, 0.74]) - col[mark]) * detail[mark, None]
        col *= g[:, None]
        return col


_FIELDS = ("boxes", "box_mat", "box_col", "box_par", "spheres", "sph_mat", "sph_col")


def _side_point(x0: float, z0: float, side: int, along: float, inset: float) -> tuple[float, float]:
    """Point on side ``side`` (0 south, 1 north, 2 west, 3 east) of cell ``(x0, z0)``."""
    if side == 0:
        return x0 + along, z0 + inset
    if side == 1:
        return x0 + along, z0 + CELL - inset
    if side == 2:
        return x0 + inset, z0 + along
    return x0 + CELL - inset, z0 + along
