"""Vectorised numpy ray caster for the procedural world.

Every pixel casts one ray from the eye. Hits are computed analytically: the ground plane, the
axis-aligned boxes (slab test) and the spheres of :class:`~yume_env.procedural.scene.SceneObjects`.
Testing every pixel against every object would be slow, so each frame first sorts the objects into
narrow *azimuth bins*: a pixel's ray, seen from above, is a half-line at the pixel's azimuth, so it
can only hit objects whose footprint overlaps the azimuth wedge of the pixel's bin. Each bin keeps
its nearest ``box_slots`` boxes and ``sphere_slots`` spheres, and each pixel tests only those, with
exact (unbinned) ray directions. A pixel skips its bin's tests altogether when its ray passes
above every candidate or meets the ground first. Objects further than ``far`` are dropped; fog
hides the cut.

Shading: textured ground (asphalt with markings, sidewalk tiles, grass, plaza checker), facades
with floors and windows, Lambert light from the sun plus sky ambient, sky gradient with sun disc,
clouds and stars, distance fog, and screen-space rain streaks and snow flakes. All parameters of
light and weather come from :class:`~yume_env.procedural.events.Atmosphere`.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields

import numpy as np

from yume_env.procedural import scene as sc
from yume_env.procedural.events import Atmosphere

_NEAR = 0.05
_INF = np.float32(np.inf)
_TWO_PI = np.float32(2 * np.pi)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _candidates(lo: np.ndarray, hi: np.ndarray, key: np.ndarray, e_lo, e_hi, slots: int) -> np.ndarray:
    """``(bins, slots)`` indices of the nearest objects overlapping each bin (``len(key)`` = none).

    ``lo``/``hi`` are the objects' azimuth arcs relative to the heading; an arc that reaches past
    +-pi is also tested shifted by a full turn.
    """
    k = len(key)
    nb = len(e_lo)
    ov = (lo[None, :] <= e_hi[:, None]) & (hi[None, :] >= e_lo[:, None])
    wrapped = np.nonzero((lo < -np.pi) | (hi > np.pi))[0]
    if len(wrapped):
        for s in (-_TWO_PI, _TWO_PI):
            lw, hw = lo[wrapped] + s, hi[wrapped] + s
            ov[:, wrapped] |= (lw[None, :] <= e_hi[:, None]) & (hw[None, :] >= e_lo[:, None])
    order = np.argsort(key, kind="stable")
    ov = ov[:, order]
    rank = np.cumsum(ov, axis=1, dtype=np.int32)
    take = ov & (rank <= slots)
    rows, cols = np.nonzero(take)
    out = np.full((nb, slots), k, np.int64)
    out[rows, rank[rows, cols] - 1] = order[cols]
    return out


def _in_view(lo: np.ndarray, hi: np.ndarray, a0: float, a1: float) -> np.ndarray:
    """Which azimuth arcs overlap the frame's azimuth range ``[a0, a1]`` (also a full turn away)."""
    seen = (lo <= a1) & (hi >= a0)
    seen |= (lo + _TWO_PI <= a1) & (hi + _TWO_PI >= a0)
    seen |= (lo - _TWO_PI <= a1) & (hi - _TWO_PI >= a0)
    return seen


def _dot(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise dot product of ``a`` ``(n, 3)`` with ``v`` ``(3,)`` or ``(n, 3)``.

    Written out (no BLAS) so that a pixel's value never depends on how many pixels share the call.
    """
    v = v.T
    return a[:, 0] * v[0] + a[:, 1] * v[1] + a[:, 2] * v[2]


def _rows(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``x[k]`` for per-pixel parameters; a shared ``(3,)`` row is returned as is."""
    return x if x.ndim == 1 else x[k]


class _Params:
    """The atmospheres of a run of frames, looked up per pixel by frame index.

    A parameter that is the same in every frame stays a scalar / ``(3,)`` row, so the common case
    (no event in transition) costs nothing per pixel.
    """

    def __init__(self, atms: list[Atmosphere]):
        self._vals = {}
        for f in fields(Atmosphere):
            arr = np.array([np.asarray(getattr(a, f.name), np.float32) for a in atms], np.float32)
            self._vals[f.name] = (arr, bool(np.all(arr == arr[0])))

    def max(self, name: str) -> float:
        return float(self._vals[name][0].max())

    def const(self, name: str) -> bool:
        return self._vals[name][1]

    def vec(self, name: str, f: np.ndarray) -> np.ndarray:
        """A colour / direction: ``(3,)`` when shared, else ``(n, 3)``."""
        arr, const = self._vals[name]
        return arr[0] if const else arr[f]

    def flat(self, name: str, f: np.ndarray):
        """A scalar: ``float`` when shared, else ``(n,)``."""
        arr, const = self._vals[name]
        return float(arr[0]) if const else arr[f]

    def col(self, name: str, f: np.ndarray):
        """A scalar shaped to scale ``(n, 3)`` colours: ``float`` when shared, else ``(n, 1)``."""
        arr, const = self._vals[name]
        return float(arr[0]) if const else arr[f][:, None]


class Renderer:
    """Renders frames of a :class:`~yume_env.procedural.scene.Scene` at ``(height, width)``.

    Rendering runs in two passes: per frame, every pixel's first hit (ground, box, sphere or sky);
    then, for a run of frames at once, shading, fog and weather.

    Args:
        height, width: image size in pixels.
        fov_deg: horizontal field of view in degrees.
        far: draw distance in metres.
        bins, box_slots, sphere_slots: azimuth bins per frame and objects tested per pixel.
        threads: runs of frames rendered in parallel (numpy releases the GIL in its array loops);
            the default is the number of CPU cores, at most 4. Frames do not depend on it.
    """

    #: Most pixels shaded in one pass: small enough to stay in cache, large enough to amortise calls.
    max_pass_pixels = 1 << 16

    def __init__(
        self,
        height: int,
        width: int,
        fov_deg: float = 80.0,
        far: float = 160.0,
        bins: int = 64,
        box_slots: int = 10,
        sphere_slots: int = 6,
        threads: int | None = None,
    ):
        self.height, self.width = int(height), int(width)
        self.fov_deg = float(fov_deg)
        self.far = float(far)
        self.bins = int(bins)
        self.box_slots = int(box_slots)
        self.sphere_slots = int(sphere_slots)
        self.threads = max(1, min(4, os.cpu_count() or 1)) if threads is None else max(1, int(threads))
        self._pool = None
        f = self.focal
        u = (np.arange(self.width) + 0.5 - self.width / 2.0) / f
        v = -(np.arange(self.height) + 0.5 - self.height / 2.0) / f
        self._u = np.tile(u, self.height).astype(np.float32)
        self._v = np.repeat(v, self.width).astype(np.float32)
        self._row = np.repeat(np.arange(self.height), self.width).astype(np.int64)
        self._col = np.tile(np.arange(self.width), self.height).astype(np.int64)
        self._ar = np.arange(self.height * self.width)
        self._pitch_cache: dict[float, tuple] = {}
        self._lock = threading.Lock()

    @property
    def focal(self) -> float:
        """Focal length in pixels."""
        return (self.width / 2.0) / np.tan(np.radians(self.fov_deg) / 2.0)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pool"] = None  # worker threads are not copied; a copy starts its own
        state["_lock"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop the worker threads (they are restarted on the next :meth:`render`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def render(
        self,
        scene: sc.Scene,
        poses: np.ndarray,
        atmospheres: list[Atmosphere],
        frame_ids: np.ndarray | None = None,
        extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 frames for camera poses ``(T, 5)`` (see :mod:`.camera`).

        ``atmospheres[k]`` is frame ``k``'s light and weather; ``frame_ids`` (global frame counters)
        animate clouds, rain and snow; ``extra = (spheres (T, n, 4), materials (n,), colours (n, 3))``
        adds per-frame spheres (event objects; radius 0 hides one in that frame).
        """
        poses = np.asarray(poses, np.float64).reshape(-1, 5)
        n = len(poses)
        frame_ids = np.arange(n) if frame_ids is None else np.asarray(frame_ids, np.int64)
        centre = poses[:, [0, 2]].mean(axis=0)
        spread = float(np.max(np.hypot(*(poses[:, [0, 2]] - centre).T))) if n else 0.0
        base = scene.objects_near(float(centre[0]), float(centre[1]), self.far + spread + 1.0)
        ns = len(base.spheres)
        if extra is not None:
            ex_s = np.asarray(extra[0], np.float32).reshape(n, -1, 4)
            sph_mat = np.concatenate([base.sph_mat, np.asarray(extra[1], np.int16).reshape(-1)])
            sph_col = np.concatenate([base.sph_col, np.asarray(extra[2], np.float32).reshape(-1, 3)])
        else:
            ex_s = np.zeros((n, 0, 4), np.float32)
            sph_mat, sph_col = base.sph_mat, base.sph_col
        # per-frame sphere table: the scene's spheres followed by the frame's extra ones
        spheres = np.concatenate([np.broadcast_to(base.spheres, (n, ns, 4)), ex_s], axis=1)
        out = np.empty((n, self.height, self.width, 3), np.uint8)
        params = _Params(list(atmospheres))
        P = self.height * self.width

        def run(k0: int, k1: int) -> None:
            hits = []
            for k in range(k0, k1):
                objs = base
                if ex_s.shape[1]:
                    objs = sc.SceneObjects(
                        base.boxes, base.box_mat, base.box_col, base.box_par, spheres[k], sph_mat, sph_col
                    )
                hits.append(self._intersect(objs, poses[k]))
            col = self._shade(
                scene,
                base,
                spheres[k0:k1],
                sph_mat,
                sph_col,
                poses[k0:k1],
                hits,
                params,
                k0,
                frame_ids[k0:k1],
            )
            col *= 255.0
            col += 0.5
            np.clip(col, 0, 255, out=col)
            out[k0:k1] = col.reshape(k1 - k0, self.height, self.width, 3).astype(np.uint8)

        per_pass = max(1, self.max_pass_pixels // P)
        passes = max(-(-n // per_pass), min(self.threads, n))
        cuts = np.linspace(0, n, passes + 1).round().astype(int)
        runs = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        if self.threads > 1 and len(runs) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads)
            list(self._pool.map(lambda r: run(*r), runs))
        else:
            for r in runs:
                run(*r)
        return out

    # ---- pass 1: first hits --------------------------------------------------------------------
    def _pitched(self, pitch: float):
        """What depends only on the pitch (cached): camera-space unit ray directions (x right, y up,
        z forward on the horizontal heading), azimuth bins, bin edges, elevation slopes and 1 / dy."""
        key = round(float(pitch), 9)
        with self._lock:
            got = self._pitch_cache.get(key)
        if got is not None:
            return got
        pitch_r = np.radians(pitch)
        cp, sp = np.float32(np.cos(pitch_r)), np.float32(np.sin(pitch_r))
        u, v = self._u, self._v
        py = v * cp + sp
        pz = cp - v * sp
        inv_n = 1.0 / np.sqrt(u * u + py * py + pz * pz)
        alpha = np.arctan2(u, pz)
        a_min, a_max = float(alpha.min()), float(alpha.max())
        span = max(a_max - a_min, 1e-6)
        nb = self.bins
        pix_bin = np.minimum(((alpha - a_min) * (nb / span)).astype(np.int64), nb - 1)
        edges = a_min + span * np.arange(nb + 1, dtype=np.float64) / nb
        e_lo = (edges[:-1] - 1e-4).astype(np.float32)
        e_hi = (edges[1:] + 1e-4).astype(np.float32)
        x, y, z = u * inv_n, py * inv_n, pz * inv_n
        slope = py / np.maximum(np.sqrt(u * u + pz * pz), np.float32(1e-6))
        iy = 1.0 / np.where(np.abs(y) < 1e-7, np.float32(1e-7), y)
        got = (x, y, z, pix_bin, e_lo, e_hi, slope, iy)
        with self._lock:
            if len(self._pitch_cache) >= max(4, min(64, (1 << 22) // len(u))):  # bounded memory
                self._pitch_cache.pop(next(iter(self._pitch_cache)))
            self._pitch_cache[key] = got
        return got

    def _intersect(self, objs: sc.SceneObjects, pose) -> tuple[np.ndarray, ...]:
        """First hit of every pixel's ray: ``dx, dy, dz, t, kind, oid, axis`` (each ``(P,)``).

        ``kind`` is 0 sky, 1 ground, 2 box, 3 sphere; ``oid`` indexes ``objs``' boxes or spheres;
        ``axis`` is the axis of the box face that was hit (0 x, 1 y, 2 z).
        """
        ox, oy, oz, yaw, pitch = (float(v) for v in pose)
        yaw_r = np.radians(yaw)
        cy, sy = np.float32(np.cos(yaw_r)), np.float32(np.sin(yaw_r))
        cx_, cy_, cz_, pix_bin, e_lo, e_hi, slope, iy = self._pitched(pitch)
        dx = cz_ * sy + cx_ * cy
        dy = cy_
        dz = cz_ * cy - cx_ * sy
        ix = 1.0 / np.where(np.abs(dx) < 1e-7, np.float32(1e-7), dx)
        iz = 1.0 / np.where(np.abs(dz) < 1e-7, np.float32(1e-7), dz)
        origin = np.array([ox, oy, oz], np.float64)
        P = len(dx)
        t_best = np.full(P, _INF, np.float32)
        kind = np.zeros(P, np.int8)  # 0 sky, 1 ground, 2 box, 3 sphere
        box_id = np.zeros(P, np.int64)
        sph_id = np.zeros(P, np.int64)

        # ground plane y = 0
        tg = np.where(dy < -1e-5, np.float32(-oy) * iy, _INF).astype(np.float32)
        m = tg < t_best
        t_best[m] = tg[m]
        kind[m] = 1

        # Elevation slope of each ray and the horizontal distance at which it meets the ground:
        # a pixel skips the object tests of its bin when it passes above every candidate or
        # meets the ground before reaching the nearest one.
        ground_h = np.where(dy < -1e-5, np.float32(oy) / np.maximum(-slope, np.float32(1e-9)), _INF)

        # boxes
        axis = np.zeros(P, np.int8)
        if len(objs.boxes):
            rel = (objs.boxes.astype(np.float64) - np.concatenate([origin, origin])).astype(np.float32)
            x0, z0, x1, z1 = rel[:, 0], rel[:, 2], rel[:, 3], rel[:, 5]
            dxn = np.maximum(np.maximum(x0, -x1), 0)
            dzn = np.maximum(np.maximum(z0, -z1), 0)
            dist = np.sqrt(dxn * dxn + dzn * dzn)
            keep = np.nonzero(dist < self.far)[0]
            if len(keep):
                rel = rel[keep]
                dist = dist[keep]
                x0, z0, x1, z1 = rel[:, 0], rel[:, 2], rel[:, 3], rel[:, 5]
                cxs = np.stack([x0, x1, x0, x1], axis=1)
                czs = np.stack([z0, z0, z1, z1], axis=1)
                cen = _wrap(np.arctan2(0.5 * (x0 + x1), 0.5 * (z0 + z1)) - yaw_r)
                rel_a = _wrap(np.arctan2(cxs, czs) - yaw_r - cen[:, None])
                lo = (cen + rel_a.min(axis=1)).astype(np.float32)
                hi = (cen + rel_a.max(axis=1)).astype(np.float32)
                inside = (x0 < 0) & (x1 > 0) & (z0 < 0) & (z1 > 0)
                lo[inside], hi[inside] = -10.0, 10.0
                seen = _in_view(lo, hi, e_lo[0], e_hi[-1])
                keep, rel, lo, hi, dist = keep[seen], rel[seen], lo[seen], hi[seen], dist[seen]
                cand = _candidates(lo, hi, dist, e_lo, e_hi, self.box_slots)
                far_d = np.sqrt(np.maximum(x0**2, x1**2) + np.maximum(z0**2, z1**2))[seen]
                top = rel[:, 4]
                up = np.where(top >= 0, top / np.maximum(dist, 1e-6), top / np.maximum(far_d, 1e-6))
                near_b = np.append(dist, _INF)[cand].min(axis=1)
                up_b = np.append(up, -_INF)[cand].max(axis=1)
                act = np.nonzero((slope <= up_b[pix_bin]) & (ground_h >= near_b[pix_bin]))[0]
                comps = np.concatenate([rel, np.full((1, 6), 1e7, np.float32)])  # dummy: never in range
                if len(act):
                    tb, j = self._hit_boxes(comps, cand, pix_bin[act], ix[act], iy[act], iz[act])
                    m = tb < t_best[act]
                    hit = act[m]
                    t_best[hit] = tb[m]
                    kind[hit] = 2
                    local = cand[pix_bin[hit], j[m]]
                    box_id[hit] = np.append(keep, 0)[local]
                    # the slab the ray entered through is the face it hit
                    rel = comps[local]
                    tnx = np.minimum(rel[:, 0] * ix[hit], rel[:, 3] * ix[hit])
                    tny = np.minimum(rel[:, 1] * iy[hit], rel[:, 4] * iy[hit])
                    tnz = np.minimum(rel[:, 2] * iz[hit], rel[:, 5] * iz[hit])
                    axis[hit] = np.where(tnx >= np.maximum(tny, tnz), 0, np.where(tny >= tnz, 1, 2))

        # spheres
        if len(objs.spheres):
            s = objs.spheres
            c = (s[:, :3].astype(np.float64) - origin).astype(np.float32)
            r = s[:, 3]
            d2 = np.sqrt(c[:, 0] ** 2 + c[:, 2] ** 2)
            keep = np.nonzero((d2 - r < self.far) & (r > 0))[0]
            if len(keep):
                c, r, d2 = c[keep], r[keep], d2[keep]
                cen = _wrap(np.arctan2(c[:, 0], c[:, 2]) - yaw_r)
                half = np.arcsin(np.clip(r / np.maximum(d2, 1e-6), 0.0, 1.0))
                lo = (cen - half).astype(np.float32)
                hi = (cen + half).astype(np.float32)
                inside = d2 <= r
                lo[inside], hi[inside] = -10.0, 10.0
                seen = _in_view(lo, hi, e_lo[0], e_hi[-1])
                keep, c, r, d2, lo, hi = keep[seen], c[seen], r[seen], d2[seen], lo[seen], hi[seen]
                near = np.maximum(d2 - r, 0)
                cand = _candidates(lo, hi, near, e_lo, e_hi, self.sphere_slots)
                top, bot = c[:, 1] + r, c[:, 1] - r
                nz = np.maximum(near, 1e-6)
                up = np.where(top >= 0, np.where(near > 0, top / nz, _INF), top / (d2 + r))
                down = np.where(bot >= 0, bot / (d2 + r), np.where(near > 0, bot / nz, -_INF))
                near_b = np.append(near, _INF)[cand].min(axis=1)
                up_b = np.append(up, -_INF)[cand].max(axis=1)
                down_b = np.append(down, _INF)[cand].min(axis=1)
                sb = slope
                act = np.nonzero(
                    (sb <= up_b[pix_bin]) & (sb >= down_b[pix_bin]) & (ground_h >= near_b[pix_bin])
                )[0]
                if len(act):
                    cc = (c * c).sum(axis=1) - r * r
                    comps = np.concatenate([np.column_stack([c, cc]), [[1e7, 1e7, 1e7, 3e14]]]).astype(
                        np.float32
                    )
                    ts, j = self._hit_spheres(comps, cand, pix_bin[act], dx[act], dy[act], dz[act])
                    m = ts < t_best[act]
                    hit = act[m]
                    t_best[hit] = ts[m]
                    kind[hit] = 3
                    sph_id[hit] = np.append(keep, 0)[cand[pix_bin[hit], j[m]]]

        kind[t_best >= self.far] = 0
        oid = np.where(kind == 3, sph_id, box_id)
        return dx, dy, dz, t_best, kind, oid, axis

    @staticmethod
    def _hit_boxes(comps, cand, pix_bin, ix, iy, iz):
        """Nearest box hit (distance, slot) of each pixel among its bin's candidates (slab test)."""
        g = [np.take(np.ascontiguousarray(comps[cand, q]), pix_bin, axis=0) for q in range(6)]
        ixc, iyc, izc = ix[:, None], iy[:, None], iz[:, None]
        tn = g[0] * ixc
        tf = g[3] * ixc
        slab = np.maximum(tn, tf)
        np.minimum(tn, tf, out=tn)
        tf = slab
        for lo_q, hi_q, inv in ((1, 4, iyc), (2, 5, izc)):
            a, b = g[lo_q], g[hi_q]
            np.multiply(a, inv, out=a)
            np.multiply(b, inv, out=b)
            np.maximum(tn, np.minimum(a, b), out=tn)
            np.minimum(tf, np.maximum(a, b), out=tf)
        ok = tn <= tf
        ok &= tn > _NEAR
        tn[~ok] = _INF
        j = np.argmin(tn, axis=1)
        return tn[np.arange(len(j)), j], j

    @staticmethod
    def _hit_spheres(comps, cand, pix_bin, dx, dy, dz):
        """Nearest sphere hit (distance, slot) of each pixel among its bin's candidates."""
        g = [np.take(np.ascontiguousarray(comps[cand, q]), pix_bin, axis=0) for q in range(4)]
        bq = g[0] * dx[:, None]
        bq += g[1] * dy[:, None]
        bq += g[2] * dz[:, None]
        disc = bq * bq
        disc -= g[3]
        ok = disc > 0
        th = bq - np.sqrt(np.where(ok, disc, 0))
        ok &= th > _NEAR
        th[~ok] = _INF
        j = np.argmin(th, axis=1)
        return th[np.arange(len(j)), j], j

    # ---- pass 2: shading ----------------------------------------------------------------------
    def _shade(self, scene, base, spheres, sph_mat, sph_col, poses, hits, prm: _Params, k0, fids):
        """Colours ``(F * P, 3)`` float of the frames whose first hits are ``hits``."""
        F = len(hits)
        P = self.height * self.width
        dx, dy, dz, t, kind, oid, axis = (np.concatenate(parts) for parts in zip(*hits))
        fr = np.repeat(np.arange(F), P)  # frame of each pixel within this run
        fa = fr + k0  # frame index into the block's parameters
        origin = poses[:, :3].astype(np.float32)
        col = np.empty((F * P, 3), np.float32)

        m = np.nonzero(kind == 0)[0]
        if len(m):
            col[m] = self._sky(dx[m], dy[m], dz[m], prm, fa[m], fids[fr[m]])

        m = np.nonzero(kind == 1)[0]
        if len(m):
            tm, f = t[m], fa[m]
            gx = origin[fr[m], 0] + tm * dx[m]
            gz = origin[fr[m], 2] + tm * dz[m]
            alb = scene.ground_albedo(gx, gz, np.clip(1.6 - tm / 30.0, 0.0, 1.0))
            if prm.max("snow") > 0:
                alb += (np.float32(0.9) - alb) * (0.85 * prm.col("snow", f))
            if prm.max("rain") > 0:
                alb *= 1.0 - 0.3 * prm.col("rain", f)
            sun_dir = prm.vec("sun_dir", f)
            col[m] = alb * (prm.vec("ambient", f) + prm.vec("sun_col", f) * np.maximum(sun_dir[..., 1:2], 0))

        m = np.nonzero(kind == 2)[0]
        if len(m):
            col[m] = self._shade_boxes(
                base, oid[m], axis[m], t[m], dx[m], dy[m], dz[m], origin[fr[m]], prm, fa[m], scene.seed
            )

        m = np.nonzero(kind == 3)[0]
        if len(m):
            s = spheres[fr[m], oid[m]]
            col[m] = self._shade_spheres(
                s, sph_mat[oid[m]], sph_col[oid[m]], t[m], dx[m], dy[m], dz[m], origin[fr[m]], prm, fa[m]
            )

        # distance fog (none on the sky: its distance counts as 0)
        tf = np.where(kind == 0, np.float32(0), t)
        a = prm.flat("fog_sq", fa) * tf
        a *= a
        a += prm.flat("fog_lin", fa) * tf
        fog = -np.expm1(-a)
        col += (prm.vec("fog_col", fa) - col) * fog[:, None]

        if prm.max("exposure") != 1.0 or not prm.const("exposure"):
            col *= prm.col("exposure", fa)
        rows, cols = np.tile(self._row, F), np.tile(self._col, F)
        if prm.max("rain") > 0.01:
            self._rain(col, rows, cols, fids[fr], prm.col("rain", fa), scene.seed)
        if prm.max("snow") > 0.01:
            self._snow(col, rows, cols, fids[fr], prm.col("snow", fa), scene.seed)
        return col

    def _sky(self, dx, dy, dz, prm: _Params, f, fid) -> np.ndarray:
        e = dy
        w = _smoothstep(0.0, 0.55, e)[:, None]
        sky = prm.vec("horizon", f) * (1 - w) + prm.vec("zenith", f) * w
        sky[e < 0] *= np.float32(0.85)
        sun_col = prm.vec("sun_col", f)
        mu = np.maximum(_dot(np.stack([dx, dy, dz], axis=1), prm.vec("sun_dir", f)), 0)
        glow = 0.25 * mu**8 + 0.6 * mu**200
        glow += (mu > 0.99985).astype(np.float32) * 3.0  # the disc
        sky += sun_col * glow[:, None]
        if prm.max("clouds") > 0.01:
            up = np.nonzero(e > 0.02)[0]
            if len(up):
                clouds = prm.flat("clouds", f[up])
                ee = e[up]
                cx = dx[up] / ee * 1.6 + fid[up] * 0.004
                cz = dz[up] / ee * 1.6
                nse = sc.sample("smooth", cx, cz, 40.0)
                cov = _smoothstep(0.0, 1.0, (nse - (1.0 - clouds)) / (0.15 + 0.4 * clouds))
                cov *= _smoothstep(0.02, 0.25, ee)
                cloud_col = prm.vec("ambient", f[up]) * 1.5 + _rows(sun_col, up) * 0.45
                sky[up] += (cloud_col - sky[up]) * (0.85 * cov)[:, None]
        if prm.max("stars") > 0.01:
            up = np.nonzero(e > 0.05)[0]
            if len(up):
                az = np.arctan2(dx[up], dz[up])
                el = np.arcsin(e[up])
                h = sc.hash01(np.floor(az * 160).astype(np.int64), np.floor(el * 160).astype(np.int64), 5)
                star = (h < 0.012).astype(np.float32) * (0.4 + 40 * h)
                sky[up] += (prm.flat("stars", f[up]) * star)[:, None]
        if prm.max("sky_fog") > 0:
            sky += (prm.vec("fog_col", f) - sky) * prm.col("sky_fog", f)
        return sky

    def _shade_boxes(self, objs, ids, axis, t, dx, dy, dz, origin, prm: _Params, f, seed):
        n = len(ids)
        px = origin[:, 0] + t * dx
        py = origin[:, 1] + t * dy
        pz = origin[:, 2] + t * dz
        side = axis != 1
        # the face normal is -sign(d) along the hit axis, so n . L = -sign(d[axis]) * L[axis]
        d_axis = np.where(axis == 0, dx, np.where(axis == 1, dy, dz))
        sun_dir = prm.vec("sun_dir", f)
        l_axis = sun_dir[axis] if sun_dir.ndim == 1 else sun_dir[np.arange(n), axis]
        light_dir = np.maximum(np.where(d_axis > 0, -l_axis, l_axis), 0)
        mat = objs.box_mat[ids]
        alb = objs.box_col[ids]  # fancy indexing: a copy
        par = objs.box_par[ids]
        top = objs.boxes[ids, 4]
        u_face = np.where(axis == 0, pz, px)
        detail = np.clip(1.6 - t / 35.0, 0.0, 1.0)
        emit = None
        lit = prm.vec("ambient", f) * np.where(side, 0.8, 1.0)[:, None]
        lit += prm.vec("sun_col", f) * light_dir[:, None]

        fac = (mat == sc.FACADE) & side
        if np.any(fac):
            k = np.nonzero(fac)[0]
            fh, wsp, ph = par[k, 0], par[k, 1], par[k, 2]
            fy = py[k] / fh
            fu = u_face[k] / wsp + ph
            fl = np.floor(fy)
            fry = fy - fl
            fru = fu - np.floor(fu)
            upper = (fl >= 1) & (py[k] < top[k] - 0.6)
            win = upper & (fru > 0.22) & (fru < 0.78) & (fry > 0.3) & (fry < 0.82)
            shop = (fl == 0) & (fru > 0.1) & (fru < 0.9) & (py[k] > 0.3) & (py[k] < 0.7 * fh)
            band = (fry < 0.06) & (fl >= 1)
            wall = alb[k] * np.where(band, 0.82, 1.0)[:, None]
            cov = (win | shop) * detail[k] + 0.3 * (1 - detail[k])  # far away: average of wall and glass
            # glass: dark, reflecting the horizon (independent of the light falling on the wall)
            glass = np.float32([0.16, 0.19, 0.24]) + 0.25 * prm.vec("horizon", f[k]) / np.maximum(
                lit[k], 0.05
            )
            alb[k] = wall + (glass - wall) * cov[:, None]
            if prm.max("window_glow") > 0:
                hid = sc.hash01(
                    np.floor(fu).astype(np.int64), fl.astype(np.int64) + (ph * 7).astype(np.int64), seed
                )
                on = (hid < 0.45) * cov * (0.6 + 0.6 * hid) * prm.flat("window_glow", f[k])
                emit = np.zeros((n, 3), np.float32)
                emit[k] += np.float32([1.0, 0.78, 0.42]) * on[:, None]
        noisy = (mat == sc.CONCRETE) | (mat == sc.METAL) | ((mat == sc.FACADE) & ~side)
        if np.any(noisy):
            k = np.nonzero(noisy)[0]
            nz = sc.hash01(
                np.floor(u_face[k] * 2 + pz[k] * (~side[k])).astype(np.int64),
                np.floor(py[k] * 2).astype(np.int64),
                seed,
            )
            roof = (mat[k] == sc.FACADE) & ~side[k]
            tone = np.where(roof[:, None], np.float32([0.40, 0.40, 0.42]), alb[k])
            alb[k] = tone * (0.92 + 0.12 * nz * detail[k])[:, None]
        bark = np.nonzero(mat == sc.BARK)[0]
        if len(bark):
            k = bark
            nz = sc.hash01(
                np.floor(u_face[k] * 12).astype(np.int64), np.floor(py[k] * 3).astype(np.int64), seed + 3
            )
            alb[k] *= (0.75 + 0.4 * nz)[:, None]
        hedge = np.nonzero(mat == sc.HEDGE)[0]
        if len(hedge):
            k = hedge
            nz = sc.hash01(
                np.floor((u_face[k] + pz[k] * (~side[k])) * 5).astype(np.int64),
                np.floor(py[k] * 5).astype(np.int64),
                seed + 4,
            )
            alb[k] *= (0.65 + 0.6 * nz)[:, None]
        crate = np.nonzero((mat == sc.CRATE) & side)[0]
        if len(crate):
            k = crate
            rib = ((u_face[k] * 2.5) % 1.0) < 0.5
            alb[k] *= np.where(rib, 1.0, 0.82)[:, None]
        lamp = np.nonzero(mat == sc.LAMP)[0]
        if len(lamp) and prm.max("lamp_glow") > 0:
            emit = np.zeros((n, 3), np.float32) if emit is None else emit
            emit[lamp] += np.float32([1.0, 0.85, 0.55]) * (2.5 * prm.col("lamp_glow", f[lamp]))
        if prm.max("snow") > 0:
            k = np.nonzero(~side)[0]
            alb[k] += (np.float32(0.92) - alb[k]) * (0.85 * prm.col("snow", f[k]))
        ao = np.where(side, 0.62 + 0.38 * _smoothstep(0.0, 2.0, py), 1.0)  # darker near the ground
        lit *= ao[:, None]
        alb *= lit
        if emit is not None:
            alb += emit
        return alb

    def _shade_spheres(self, s, mat, alb, t, dx, dy, dz, origin, prm: _Params, f):
        d = np.stack([dx, dy, dz], axis=1)
        p = origin + t[:, None] * d
        nrm = (p - s[:, :3]) / np.maximum(s[:, 3:4], 1e-6)
        alb = alb.copy()
        sun_dir, sun_col, amb = prm.vec("sun_dir", f), prm.vec("sun_col", f), prm.vec("ambient", f)
        ndl = _dot(nrm, sun_dir)
        out = np.empty_like(alb)
        leaf = mat == sc.FOLIAGE
        k = np.nonzero(leaf)[0]
        if len(k):
            q = np.floor(p[k] * 3.0).astype(np.int64)
            nz = sc.hash01(q[:, 0] * 7 + q[:, 1] * 131, q[:, 2], 17)
            wrap = 0.25 + 0.75 * np.maximum(ndl[k], 0)  # light wraps round a leafy crown
            lk = _rows(amb, k) * (0.6 + 0.4 * nrm[k, 1:2]) + _rows(sun_col, k) * wrap[:, None]
            if prm.max("snow") > 0:
                alb[k] += (
                    (np.float32(0.9) - alb[k]) * (0.6 * prm.col("snow", f[k])) * np.maximum(nrm[k, 1:2], 0)
                )
            out[k] = alb[k] * (0.7 + 0.55 * nz)[:, None] * lk
        k = np.nonzero(~leaf)[0]
        if len(k):  # the balloon: shiny rubber
            lit = (
                _rows(amb, k) * (0.75 + 0.25 * nrm[k, 1:2])
                + _rows(sun_col, k) * np.maximum(ndl[k], 0)[:, None]
            )
            h = _rows(sun_dir, k) - d[k]
            h /= np.linalg.norm(h, axis=1, keepdims=True) + 1e-6
            spec = np.maximum((nrm[k] * h).sum(axis=1), 0) ** 40
            rim = np.maximum(-(nrm[k] * d[k]).sum(axis=1), 0)
            out[k] = (
                alb[k] * (lit * (0.5 + 0.5 * rim[:, None]) + 0.25) + _rows(sun_col, k) * spec[:, None] * 0.8
            )
        return out

    # ---- weather overlays (screen space) -------------------------------------------------------
    @staticmethod
    def _rain(col, r, c, fid, amount, seed: int) -> None:
        lane = (c * 4 + r) // 4  # slanted streak lanes
        h = sc.hash01(lane, 3, seed)
        period = 17 + (h * 23).astype(np.int64)
        phase = (r + fid * 9 + (h * 1000).astype(np.int64)) % period
        k = np.nonzero((sc.hash01(lane, 4, seed) < 0.45) & (phase < 3))[0]
        amount = amount if np.isscalar(amount) else amount[k]
        col[k] += (np.float32([0.78, 0.80, 0.84]) - col[k]) * (0.45 * amount)

    @staticmethod
    def _snow(col, rows, cols, fid, amount, seed: int) -> None:
        size = 8
        r = rows - fid * 1.2
        c = cols + 2.0 * np.sin(fid * 0.15 + rows * 0.05)
        cr = np.floor(r / size).astype(np.int64)
        cc = np.floor(c / size).astype(np.int64)
        h = sc.hash01(cr, cc, seed + 9)
        fy = cr * size + 1 + sc.hash01(cr, cc, seed + 10) * (size - 2)
        fx = cc * size + 1 + sc.hash01(cr, cc, seed + 11) * (size - 2)
        rad = 0.6 + 0.9 * sc.hash01(cr, cc, seed + 12)
        k = np.nonzero((h < 0.5) & ((r - fy) ** 2 + (c - fx) ** 2 < rad * rad))[0]
        amount = amount if np.isscalar(amount) else amount[k]
        col[k] += (np.float32([0.95, 0.95, 0.97]) - col[k]) * (0.9 * amount)
