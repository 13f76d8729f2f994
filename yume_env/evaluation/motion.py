"""Camera motion of a block of frames, estimated from the pixels alone.

:func:`estimate_block_motion` answers "which way did the camera go in these frames?" with one of
the labels in :data:`LABELS` plus a signed amount on each of four axes, so that the motion seen in a
block can be compared with the keys that were pressed (:func:`expected_axes`, :func:`matches`).

How it works (numpy only; about 0.1 s for a 29-frame 96x160 block on one core of a 2-core CPU):

1. Frames are converted to grayscale and box-downsampled to at most ``work_width`` pixels wide.
2. **Flow between frames.** Whole consecutive frames are phase-correlated (Hann window, sub-pixel
   peak) to get the dominant shift; then a 5x7 grid of overlapping patches is phase-correlated,
   each patch of the next frame taken at the position predicted by that shift, which gives one
   flow vector per textured patch. Flat patches (sky, fog) are ignored. Patches that move less
   than a pixel per frame are measured again between frames four apart (frame ``i`` against
   ``i + 4``). Each correlation is computed twice: fully whitened (phase only; the sharpest peak)
   and half-whitened (each frequency divided by the square root of its magnitude); where the two
   peaks are more than half a pixel apart the half-whitened one is used. Why: in blurry frames (a
   VAE's reconstruction, a small model's samples) the decoder's fine, fixed-position detail does
   not move, and full whitening lets it outvote the motion of the coarse content; comparing slow
   patches four frames apart (the VAE's latent groups) makes their motion per pair large enough
   to pull the peak off that static detail.
3. **Block flow.** Each patch's flow is summed over the block (the median per pair times the
   number of pair steps in the block, which shrugs off the odd mismatch on repetitive texture).
   Summing pair flows, instead of correlating the first and last frames, keeps large pans from
   wrapping around. How much a patch's pair flows scatter gives the block flow's noise.
4. **Camera motion.** The block flow field is explained as a camera rotation (pan, tilt) plus a
   translation in any direction with a non-negative inverse depth per patch (the
   Longuet-Higgins--Prazdny flow equations of a pinhole camera with a horizontal field of view
   ``fov_deg``). Every direction of a 256-point sphere is tried, then the best few are refined on
   finer rings around them; for each direction the rotation is solved by robust (Cauchy) weighted
   least squares with the depths eliminated, where translation must point the same way at every
   patch (depth is positive). Three explanations are compared: rotation alone, translation alone,
   and both; the simpler one wins unless the combination fits clearly better (rotation also needs
   to explain at least 70% of the flow, beyond the flow's noise). The robust loss's scale grows
   with that noise, so noisy flow from blurry frames is not taken for parallax. A pan moves near
   and far things alike; walking moves near things more (parallax), and walking forward makes the
   picture expand from where it heads.
5. Each axis is compared with its threshold; the axis furthest past its threshold names the label,
   and every axis past its threshold counts as moving on that axis (W plus a pan moves two).

Conventions of :class:`MotionEstimate` (all per block, camera-centric):

- ``dx``: pan, as the shift of the picture centre in frame widths, positive = pan right (the
  picture slides left).
- ``dy``: tilt, in frame heights, positive = tilt up (the picture slides down).
- ``zoom``: forward motion as the fraction of the scene depth travelled (of the nearer part of
  the scene: the 90th percentile over patches), positive = forward (the picture expands); a
  centre zoom by a factor ``s`` gives about ``log(s)``.
- ``strafe``: sideways motion, also as a fraction of the scene depth, positive = moving right.
- ``confidence``: 0..1, how clearly the winning axis stands out (0 when the frames carry no texture).

Limits, inherent to a single moving camera: moving sideways past a wall at constant depth looks
exactly like a pan, and walking forward while looking straight down at the ground looks like a
tilt; the estimator then reports the rotation. Nothing here depends on a model or a download.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from yume_env.actions import LOOK_VECTORS, LOOKS, MOVE_VECTORS, MOVES

#: Motion labels, in the order the confusion tables use.
LABELS: tuple[str, ...] = (
    "still",
    "pan_left",
    "pan_right",
    "tilt_up",
    "tilt_down",
    "forward",
    "back",
    "strafe_left",
    "strafe_right",
)

#: Axes of a motion estimate and the labels of their negative / positive directions.
AXES: dict[str, tuple[str, str]] = {
    "yaw": ("pan_left", "pan_right"),
    "pitch": ("tilt_down", "tilt_up"),
    "forward": ("back", "forward"),
    "lateral": ("strafe_left", "strafe_right"),
}

#: Default per-block thresholds of each axis (see :class:`MotionEstimate` for units).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "yaw": 0.06,
    "pitch": 0.08,
    "forward": 0.1,
    "lateral": 0.12,
}


@dataclass(frozen=True)
class MotionEstimate:
    """The dominant camera motion of a block of frames (see the module docstring for units)."""

    label: str
    dx: float
    dy: float
    zoom: float
    confidence: float
    strafe: float = 0.0
    #: Sign of each axis after thresholding: ``{"yaw": -1|0|1, "pitch": ..., "forward": ..., "lateral": ...}``.
    axes: Mapping[str, int] = field(default_factory=dict)

    def labels(self) -> tuple[str, ...]:
        """Every direction that moved past its threshold (``("still",)`` when none did)."""
        out = tuple(AXES[a][int(s > 0)] for a, s in self.axes.items() if s != 0)
        return out or ("still",)

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "dx": self.dx,
            "dy": self.dy,
            "zoom": self.zoom,
            "strafe": self.strafe,
            "confidence": self.confidence,
            "axes": dict(self.axes),
        }


# ------------------------------------------------------------------------------------ input checks
def _as_frames(frames, name: str = "frames") -> np.ndarray:
    """Grayscale float32 frames ``(T, H, W)`` from ``(T, H, W, 3)`` / ``(T, H, W)`` arrays or tensors."""
    if hasattr(frames, "detach"):  # a torch tensor
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, list | tuple):
        try:
            frames = np.stack([np.asarray(f) for f in frames])
        except ValueError:
            raise ValueError(
                f"{name}: got a list of frames of different shapes; accepted: equal shapes"
            ) from None
    if not isinstance(frames, np.ndarray):
        raise TypeError(
            f"{name}: got {type(frames).__name__}; accepted: an array (T, H, W, 3) or (T, H, W) of frames"
        )
    if not (np.issubdtype(frames.dtype, np.number) and not np.issubdtype(frames.dtype, np.complexfloating)):
        raise TypeError(f"{name}: got dtype {frames.dtype}; accepted: uint8 or float pixel values")
    if frames.ndim == 4 and frames.shape[-1] in (3, 4):
        f = frames[..., :3].astype(np.float32)
        gray = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    elif frames.ndim == 3 and frames.shape[-1] not in (3, 4):
        gray = frames.astype(np.float32)
    else:
        raise ValueError(
            f"{name}: got shape {tuple(frames.shape)}; accepted: (T, H, W, 3) RGB or (T, H, W) grayscale, T >= 2"
        )
    if gray.shape[0] < 2:
        raise ValueError(f"{name}: got {gray.shape[0]} frame(s); accepted: at least 2 frames")
    if gray.shape[1] < 16 or gray.shape[2] < 16:
        raise ValueError(f"{name}: got frames of {gray.shape[1]}x{gray.shape[2]}; accepted: at least 16x16")
    if not np.isfinite(gray).all():
        raise ValueError(f"{name}: got non-finite values (NaN or inf); accepted: finite pixel values")
    if np.issubdtype(frames.dtype, np.floating) and gray.max() <= 1.0 + 1e-6:
        gray = gray * 255.0  # frames in 0..1
    return gray


def _downsample(gray: np.ndarray, work_width: int) -> np.ndarray:
    t, h, w = gray.shape
    if w <= work_width:
        return gray
    nh = max(16, int(round(h * work_width / w)))
    return np.stack(
        [
            np.asarray(Image.fromarray(g, mode="F").resize((work_width, nh), Image.BOX), np.float32)
            for g in gray
        ]
    )


# ------------------------------------------------------------------------------------ phase correlation
_WINDOWS: dict[tuple[int, int], np.ndarray] = {}


def _window(h: int, w: int) -> np.ndarray:
    win = _WINDOWS.get((h, w))
    if win is None:
        win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
        _WINDOWS[(h, w)] = win
    return win


def _spectra(imgs: np.ndarray) -> np.ndarray:
    """Windowed, mean-free 2D spectra of a stack of images ``(N, h, w)``."""
    h, w = imgs.shape[-2:]
    x = imgs - imgs.mean(axis=(-2, -1), keepdims=True)
    return np.fft.rfft2(x * _window(h, w))


_PEAK_AGREEMENT = 0.5  # pixels: whitened and half-whitened peaks this close count as the same
_WHITENING = 0.5  # exponent of the magnitude the cross-power spectrum is divided by (1 = phase only)
_LOWPASS: dict[tuple[int, int], np.ndarray] = {}
_PEAK_SIGMA = 1.0  # pixels: the correlation peak is smoothed to a Gaussian this wide (unbiased sub-pixel fit)


def _lowpass(h: int, w: int) -> np.ndarray:
    g = _LOWPASS.get((h, w))
    if g is None:
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        g = np.exp(-2.0 * np.pi**2 * _PEAK_SIGMA**2 * (fx**2 + fy**2))
        g = g / np.fft.irfft2(g, s=(h, w))[0, 0]  # a perfect match peaks at 1
        _LOWPASS[(h, w)] = g
    return g


def _peaks(fa: np.ndarray, fb: np.ndarray, shape: tuple[int, int]):
    """Phase correlation of stacks: content displacement ``(dy, dx)`` from a to b and peak heights (0..1).

    The displacement is the fully whitened correlation's peak unless the half-whitened one (each
    frequency divided by the square root of its magnitude) lies more than ``_PEAK_AGREEMENT``
    pixels away: full whitening gives every frequency the same say, so on blurry frames (a VAE's
    reconstruction, a small model's samples) the decoder's fixed-position fine detail, which does
    not move, outvotes the motion carried by the coarse content, while half whitening lets the
    coarse content lead. The peak height (the match quality) is that of the fully whitened
    correlation, where a perfect match peaks at 1.

    The cross-power spectrum is smoothed with a Gaussian, so the correlation peak is a Gaussian
    whose centre a three-point fit of its logarithm finds without pulling it towards whole pixels
    (the plain parabola on a raw phase-correlation peak is biased by up to 0.3 pixel).
    """
    h, w = shape
    r = np.conj(fa) * fb
    mag = np.abs(r)
    lowpass = _lowpass(h, w)
    white = np.fft.irfft2(
        r / (mag + 1e-3 * mag.mean(axis=(-2, -1), keepdims=True) + 1e-12) * lowpass, s=shape
    )
    half = np.fft.irfft2(r / (mag**_WHITENING + 1e-12) * lowpass, s=shape)
    dy_w, dx_w, height = _peak_position(white)
    dy_h, dx_h, _ = _peak_position(half)
    # the whitened peak is the sharper one; where the two disagree, the whitened one has locked on
    # to detail that does not move (blurry frames) and the half-whitened one follows the content
    use_half = np.hypot(dy_w - dy_h, dx_w - dx_h) > _PEAK_AGREEMENT
    return np.where(use_half, dy_h, dy_w), np.where(use_half, dx_h, dx_w), height


def _peak_position(corr: np.ndarray):
    """Sub-pixel position ``(dy, dx)`` (wrapped to +-half the size) and height of each map's peak."""
    n, h, w = corr.shape
    k = np.arange(n)
    iy, ix = np.divmod(corr.reshape(n, -1).argmax(axis=1), w)
    c0 = corr[k, iy, ix]
    floor = 1e-6 * np.maximum(np.abs(c0), 1e-30)

    def sub(cm, cp):
        lm, l0, lp = (np.log(np.maximum(v, floor)) for v in (cm, c0, cp))
        den = lm - 2.0 * l0 + lp
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(den < 0, 0.5 * (lm - lp) / den, 0.0)
        return np.clip(np.nan_to_num(out), -0.5, 0.5)

    sy = sub(corr[k, (iy - 1) % h, ix], corr[k, (iy + 1) % h, ix])
    sx = sub(corr[k, iy, (ix - 1) % w], corr[k, iy, (ix + 1) % w])
    dy = (iy + h // 2) % h - h // 2 + sy
    dx = (ix + w // 2) % w - w // 2 + sx
    return dy, dx, c0


# ------------------------------------------------------------------------------------ block flow
_GRID = (5, 7)  # patch rows, columns
_STRIDE = 4  # frames between the two frames of a slow patch's pairs (the VAE's 4-frame latent groups)
_SLOW_PAIR = 1.0  # pixels per frame: patches slower than this are measured over _STRIDE frames
_MIN_STD = 2.0  # grey levels: flatter patches carry no flow
_MIN_PEAK = 0.1


@dataclass(frozen=True)
class _BlockFlow:
    pos: np.ndarray  # (N, 2) patch centres (x right, y down) from the image centre, pixels
    flow: np.ndarray  # (N, 2) summed flow (u, v) over the block, pixels
    weight: np.ndarray  # (N,) reliability 0..1
    quality: float  # median whole-frame peak height
    width: int
    height: int
    noise: float = 0.0  # pixels: typical error of a patch's summed flow, from the scatter of its pairs


@dataclass(frozen=True)
class _PairFlow:
    """Per-patch flow between frames ``stride`` apart, over the whole grid (``ok`` marks patches
    with enough valid pairs)."""

    pair: np.ndarray  # (n, 2) median flow (u, v) of one pair, pixels
    scatter: np.ndarray  # (n,) median absolute deviation of the pair flows, pixels
    weight: np.ndarray  # (n,) mean peak height over the pairs (0 where invalid)
    ok: np.ndarray  # (n,) bool
    steps: float  # pairs laid end to end in the block: (t - 1) / stride
    quality: float  # median whole-frame peak height (reported for consecutive frames)


def _grid(h: int, w: int):
    rows, cols = _GRID
    ph, pw = max(8, (h // 3) // 2 * 2), max(8, (w // 4) // 2 * 2)
    cy, cx = np.meshgrid(
        np.round(np.linspace(ph // 2, h - ph // 2, rows)).astype(int),
        np.round(np.linspace(pw // 2, w - pw // 2, cols)).astype(int),
        indexing="ij",
    )
    return cy.ravel(), cx.ravel(), ph, pw


def _pair_flow(gray: np.ndarray, spec: np.ndarray, stride: int) -> _PairFlow:
    t, h, w = gray.shape
    pairs = t - stride
    gdy, gdx, gpk = _peaks(spec[:-stride], spec[stride:], (h, w))
    cy, cx, ph, pw = _grid(h, w)
    n = len(cy)
    oy, ox = np.round(gdy).astype(int), np.round(gdx).astype(int)
    iy, ix = np.arange(ph) - ph // 2, np.arange(pw) - pw // 2
    pa = gray[:-stride][
        :, (cy[:, None] + iy)[:, :, None], (cx[:, None] + ix)[:, None, :]
    ]  # (pairs, n, ph, pw)
    by = np.clip(cy[None] + oy[:, None], ph // 2, h - ph // 2)  # (pairs, n)
    bx = np.clip(cx[None] + ox[:, None], pw // 2, w - pw // 2)
    frames = np.arange(stride, t)[:, None, None, None]
    pb = gray[frames, (by[:, :, None] + iy)[:, :, :, None], (bx[:, :, None] + ix)[:, :, None, :]]
    dy, dx, pk = _peaks(_spectra(pa.reshape(-1, ph, pw)), _spectra(pb.reshape(-1, ph, pw)), (ph, pw))
    dy = dy.reshape(pairs, n) + (by - cy[None])
    dx = dx.reshape(pairs, n) + (bx - cx[None])
    pk = pk.reshape(pairs, n)
    textured = (pa.reshape(pairs, n, -1).std(-1) >= _MIN_STD) & (pb.reshape(pairs, n, -1).std(-1) >= _MIN_STD)
    valid = textured & (pk >= _MIN_PEAK)
    ok = valid.sum(0) >= max(1, pairs // 2)
    pair = np.zeros((n, 2))
    scatter = np.zeros(n)
    if ok.any():
        fx, fy = np.where(valid, dx, np.nan)[:, ok], np.where(valid, dy, np.nan)[:, ok]
        pair[ok, 0], pair[ok, 1] = np.nanmedian(fx, axis=0), np.nanmedian(fy, axis=0)
        scatter[ok] = np.hypot(
            np.nanmedian(np.abs(fx - pair[ok, 0]), axis=0), np.nanmedian(np.abs(fy - pair[ok, 1]), axis=0)
        )
    weight = np.where(valid, pk, 0.0).sum(0) / pairs
    return _PairFlow(pair, scatter, weight, ok, (t - 1) / stride, float(np.median(gpk)))


def _block_flow(gray: np.ndarray) -> _BlockFlow:
    t, h, w = gray.shape
    spec = _spectra(gray)
    near = _pair_flow(gray, spec, 1)
    # Patches that move less than _SLOW_PAIR pixels from one frame to the next are measured again
    # between frames _STRIDE apart: blurry frames hardly move from one frame to the next, too little
    # to pull the correlation peak off the decoder's fixed-position detail. Faster patches keep the
    # consecutive-frame flow, which follows large and perspective-distorted motion best.
    fast = near.ok & (np.hypot(near.pair[:, 0], near.pair[:, 1]) >= _SLOW_PAIR)
    stride = min(_STRIDE, t - 1)
    far = _pair_flow(gray, spec, stride) if stride > 1 and not fast.all() else near
    take_far = ~fast & far.ok

    def pick(attr: str) -> np.ndarray:  # per patch: the far pairs' value where taken, else the near
        a, b = getattr(near, attr), getattr(far, attr)
        return np.where(take_far.reshape(-1, *[1] * (a.ndim - 1)), b, a)

    ok = pick("ok")
    steps = np.where(take_far, far.steps, near.steps)
    flow = pick("pair") * steps[:, None]
    # a median over pairs carries about 1.25 the scatter (MAD as a standard deviation) of one pair,
    # and a sum of `steps` pairs sqrt(steps) times that
    noise_per_patch = pick("scatter") * 1.4826 * 1.25 * np.sqrt(steps)
    cy, cx, _, _ = _grid(h, w)
    pos = np.stack([cx - (w - 1) / 2, cy - (h - 1) / 2], 1)[ok].astype(np.float64)
    noise = float(np.median(noise_per_patch[ok])) if ok.any() else 0.0
    return _BlockFlow(pos, flow[ok], pick("weight")[ok], near.quality, w, h, noise)


# ------------------------------------------------------------------------------------ egomotion
def _sphere(k: int) -> np.ndarray:
    i = np.arange(k) + 0.5
    phi = np.arccos(1.0 - 2.0 * i / k)
    theta = np.pi * (1.0 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)


_DIRECTIONS = _sphere(256)
_TRANSLATION_COST = 0.2  # relative cost of flow explained by translation instead of rotation
_BACKWARDS_COST = 20.0  # cost of translational flow pointing against the translation (negative depth)
_NEAR_QUANTILE = 0.9  # which (weighted) quantile of per-patch depth-relative motion is reported
_ROTATION_MARGIN = 1.0  # per unit patch weight: how much worse a pure rotation may fit and still win
_TRANSLATION_MARGIN = 0.1  # the same for a pure translation against rotation + translation
_UNEXPLAINED = 0.3  # a rotation leaving more than this share of the flow unexplained is not the answer
_SIGMA = 3.0  # pixels: smallest scale of the robust (Cauchy) loss on block flow
_NOISE_ALLOWANCE = 0.75  # flow noise (in units of its estimate) a rotation may leave unexplained
_NOISE_SIGMA = 2.0  # the loss scale is at least this many times the block flow's noise (blurry frames)


@dataclass(frozen=True)
class _Egomotion:
    pan: float  # radians, positive right
    tilt: float  # radians, positive up
    direction: np.ndarray  # (3,) unit translation (x right, y down, z forward)
    amount: float  # distance moved / scene depth (weighted median over patches)


def _fit_directions(
    bf: _BlockFlow, focal: float, B: np.ndarray, t: np.ndarray, rotate: bool = True, sigma: float = _SIGMA
):
    """For each candidate translation direction ``t`` (K, 3): loss, rotation, translational flow, scale.

    ``rotate=False`` fits translation alone (the rotation is held at zero).
    """
    x, y = bf.pos[:, 0], bf.pos[:, 1]
    # translational flow direction at each patch for each candidate direction: (K, n)
    ax = -focal * t[:, None, 0] + x[None] * t[:, None, 2]
    ay = -focal * t[:, None, 1] + y[None] * t[:, None, 2]
    norm = np.sqrt(ax**2 + ay**2) + 1e-6 * focal
    ux, uy = ax / norm, ay / norm
    m_perp = -uy[..., None] * B[None, :, 0, :] + ux[..., None] * B[None, :, 1, :]
    m_along = ux[..., None] * B[None, :, 0, :] + uy[..., None] * B[None, :, 1, :]
    f_perp = -uy * bf.flow[None, :, 0] + ux * bf.flow[None, :, 1]
    f_along = ux * bf.flow[None, :, 0] + uy * bf.flow[None, :, 1]
    w = bf.weight[None]
    along_w = np.full(ax.shape, _TRANSLATION_COST)
    robust = np.ones(ax.shape)
    s2 = sigma**2
    eye = 1e-6 * np.eye(2)
    for _ in range(6):
        w1, w2 = w * robust, w * along_w * robust
        g = np.einsum("kni,knj,kn->kij", m_perp, m_perp, w1) + np.einsum(
            "kni,knj,kn->kij", m_along, m_along, w2
        )
        rhs = np.einsum("kni,kn,kn->ki", m_perp, f_perp, w1) + np.einsum(
            "kni,kn,kn->ki", m_along, f_along, w2
        )
        rot = np.linalg.solve(g + eye, rhs[..., None])[..., 0]
        if not rotate:
            rot = np.zeros_like(rot)
        e_perp = f_perp - np.einsum("kni,ki->kn", m_perp, rot)
        s = f_along - np.einsum("kni,ki->kn", m_along, rot)
        along_w = np.where(s < 0, _BACKWARDS_COST, _TRANSLATION_COST)
        robust = 1.0 / (1.0 + (e_perp**2 + along_w * s**2) / s2)
    # directions are compared on what translation cannot explain (flow across its direction, and
    # flow against it); the cost of translational flow only decided how the rotation was solved
    miss = e_perp**2 + _BACKWARDS_COST * np.minimum(s, 0.0) ** 2
    loss = (w * np.log1p(miss / s2)).sum(1)
    return loss, rot, s, norm


def _around(d: np.ndarray, radius: float, count: int = 24) -> np.ndarray:
    """``d`` and ``count`` unit directions on two rings ``radius`` and ``radius / 2`` radians around it."""
    a = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(d, a)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    out = [d]
    for r, m in ((radius, count // 2), (radius / 2, count - count // 2)):
        ang = np.linspace(0, 2 * np.pi, m, endpoint=False)
        ring = d[None] * np.cos(r) + np.sin(r) * (np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2)
        out.append(ring)
    return np.concatenate([np.atleast_2d(o) for o in out])


def _search(bf: _BlockFlow, focal: float, B: np.ndarray, rotate: bool, sigma: float = _SIGMA):
    """Best translation direction (coarse sphere, then two finer rings around the best few)."""
    t = _DIRECTIONS
    loss, rot, s, norm = _fit_directions(bf, focal, B, t, rotate, sigma)
    # the coarse sphere is ~13 degrees apart, and on flow of tens of pixels a few degrees off
    # already leaves a visible residual
    for radius in (0.12, 0.04):
        seeds = t[np.argsort(loss)[:3]]
        t = np.concatenate([_around(d, radius) for d in seeds])
        loss, rot, s, norm = _fit_directions(bf, focal, B, t, rotate, sigma)
    k = int(np.argmin(loss))
    return float(loss[k]), rot[k], s[k], norm[k], t[k]


def _rotation_only(bf: _BlockFlow, B: np.ndarray, sigma: float = _SIGMA):
    """Robust fit of a pure rotation: loss and ``(tilt, pan)``."""
    n = len(bf.weight)
    m = B.reshape(2 * n, 2)
    f = bf.flow.reshape(2 * n)
    w = np.repeat(bf.weight, 2)
    robust = np.ones(2 * n)
    s2 = sigma**2
    for _ in range(6):
        sw = np.sqrt(w * robust)
        rot = np.linalg.lstsq(m * sw[:, None], f * sw, rcond=None)[0]
        e2 = (f - m @ rot) ** 2
        robust = 1.0 / (1.0 + e2 / s2)
    e2 = e2[0::2] + e2[1::2]
    # share of the flow (weighted sum of lengths) the rotation leaves unexplained, beyond (part of)
    # the flow's own noise
    total = float((bf.weight * np.hypot(bf.flow[:, 0], bf.flow[:, 1])).sum())
    left = float((bf.weight * np.maximum(np.sqrt(e2) - _NOISE_ALLOWANCE * bf.noise, 0.0)).sum())
    unexplained = (
        left / total if total > bf.weight.sum() else 0.0
    )  # under ~1 px on average: nothing to explain
    return float((bf.weight * np.log1p(e2 / s2)).sum()), rot, unexplained


def _egomotion(bf: _BlockFlow, focal: float) -> _Egomotion:
    x, y = bf.pos[:, 0], bf.pos[:, 1]
    n = len(x)
    # rotation flow per unit (tilt, pan): B[i] @ (tilt, pan)
    B = np.empty((n, 2, 2))
    B[:, 0, 0], B[:, 0, 1] = x * y / focal, -(focal + x * x / focal)
    B[:, 1, 0], B[:, 1, 1] = focal + y * y / focal, -x * y / focal
    sigma = max(_SIGMA, _NOISE_SIGMA * bf.noise)
    loss, rot, s, norm, t = _search(bf, focal, B, rotate=True, sigma=sigma)
    # parsimony: a pure rotation or a pure translation that explains the flow nearly as well as
    # both together is preferred (rotation and sideways translation trade off against each other,
    # and free per-patch depths let translation mimic almost anything, so rotation gets more room)
    wsum = bf.weight.sum()
    loss_r, rot_r, unexplained = _rotation_only(bf, B, sigma)
    loss_t, _, s_t, norm_t, t_t = _search(bf, focal, B, rotate=False, sigma=sigma)
    if loss_r <= min(loss, loss_t) + _ROTATION_MARGIN * wsum and unexplained <= _UNEXPLAINED:
        return _Egomotion(float(rot_r[1]), float(rot_r[0]), np.array([0.0, 0.0, 1.0]), 0.0)
    if loss_t <= loss + _TRANSLATION_MARGIN * wsum:
        rot, s, norm, t = np.zeros(2), s_t, norm_t, t_t
    # distance moved / depth at each patch: translational flow over its flow per unit inverse depth
    rho = np.maximum(s, 0.0) / norm
    wt = bf.weight * norm / focal
    order = np.argsort(rho)
    cum = np.cumsum(wt[order])
    # an upper quantile: the nearer part of the scene shows the translation, the distant part barely
    amount = float(rho[order][np.searchsorted(cum, cum[-1] * _NEAR_QUANTILE)]) if cum[-1] > 0 else 0.0
    return _Egomotion(float(rot[1]), float(rot[0]), t, amount)


def estimate_block_motion(
    frames,
    thresholds: Mapping[str, float] | None = None,
    work_width: int = 160,
    fov_deg: float = 80.0,
) -> MotionEstimate:
    """The dominant camera motion in a block of frames.

    Args:
        frames: ``(T, H, W, 3)`` RGB (an env's ``"frames"`` observation) or ``(T, H, W)``
            grayscale, numpy or torch, ``T >= 2``, at least 16x16 pixels; uint8, or floats in
            0..1 or 0..255.
        thresholds: per-block amount an axis must exceed to count as moving, by axis name
            (``"yaw"``, ``"pitch"``, ``"forward"``, ``"lateral"``); missing axes keep
            :data:`DEFAULT_THRESHOLDS`.
        work_width: frames wider than this are downsampled first (default 160 pixels).
        fov_deg: assumed horizontal field of view (default 80, the procedural world's); it only
            shapes the perspective terms, so a rough value is fine.

    Returns:
        A :class:`MotionEstimate`; ``label`` is ``"still"`` when no axis passes its threshold.
    """
    th = resolve_thresholds(thresholds)
    if isinstance(work_width, bool) or not isinstance(work_width, int | np.integer) or work_width < 32:
        raise ValueError(f"work_width: got {work_width!r}; accepted: an integer >= 32")
    if isinstance(fov_deg, bool) or not isinstance(fov_deg, int | float) or not 20.0 <= fov_deg <= 150.0:
        raise ValueError(f"fov_deg: got {fov_deg!r}; accepted: a number of degrees in 20..150")
    gray = _downsample(_as_frames(frames), int(work_width))
    bf = _block_flow(gray)
    focal = (bf.width / 2) / np.tan(np.radians(fov_deg) / 2)
    if len(bf.pos) < 6:  # too little texture for a flow field: nothing measurable
        return _decide({a: 0.0 for a in AXES}, th, 0.0)
    ego = _egomotion(bf, focal)
    values = {
        "yaw": float(focal * np.tan(ego.pan) / bf.width),
        "pitch": float(focal * np.tan(ego.tilt) / bf.height),
        "forward": float(ego.amount * ego.direction[2]),
        "lateral": float(ego.amount * ego.direction[0]),
    }
    return _decide(values, th, bf.quality)


def resolve_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    """:data:`DEFAULT_THRESHOLDS` with ``thresholds`` put over them; ``TypeError`` / ``ValueError``
    naming the bad key or value."""
    th = dict(DEFAULT_THRESHOLDS)
    if thresholds is None:
        return th
    if not isinstance(thresholds, Mapping):
        raise TypeError(
            f"thresholds: got {type(thresholds).__name__}; accepted: a dict with keys {', '.join(AXES)}"
        )
    for k, v in thresholds.items():
        if k not in AXES:
            raise ValueError(f"thresholds: got key {k!r}; accepted: {', '.join(AXES)}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0 or not np.isfinite(v):
            raise ValueError(f"thresholds[{k!r}]: got {v!r}; accepted: a positive number")
        th[k] = float(v)
    return th


def _decide(values: dict[str, float], th: dict[str, float], quality: float) -> MotionEstimate:
    ratios = {k: abs(v) / th[k] for k, v in values.items()}
    axes = {k: (int(np.sign(values[k])) if ratios[k] >= 1.0 else 0) for k in AXES}
    best = max(ratios, key=ratios.get)
    strength = ratios[best]
    if strength < 1.0:
        label = "still"
        conf = 1.0 - strength
    else:
        label = AXES[best][int(values[best] > 0)]
        others = sorted(ratios.values())[-2]
        conf = min(1.0, (strength - 1.0) / 1.0) * 0.5 + 0.5 * (1.0 - others / strength)
    conf *= float(np.clip(quality / 0.2, 0.0, 1.0))
    return MotionEstimate(
        label=label,
        dx=values["yaw"],
        dy=values["pitch"],
        zoom=values["forward"],
        confidence=float(np.clip(conf, 0.0, 1.0)),
        strafe=values["lateral"],
        axes=axes,
    )


# ------------------------------------------------------------------------------------ actions
def _index(value, names: tuple[str, ...], what: str) -> int:
    if isinstance(value, str):
        if value in names:
            return names.index(value)
        raise ValueError(f"{what}: got {value!r}; accepted: {', '.join(names)} or an index 0..8")
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= int(value) < 9:
        raise ValueError(f"{what}: got {value!r}; accepted: {', '.join(names)} or an index 0..8")
    return int(value)


def expected_axes(move, look) -> dict[str, int]:
    """Signs each axis should show for a key combo: ``move`` / ``look`` as index or name (``"W+A"``, ``"↑→"``)."""
    m = _index(move, MOVES, "move")
    k = _index(look, LOOKS, "look")
    fwd, right = MOVE_VECTORS[m]
    yaw, pitch = LOOK_VECTORS[k]
    return {"yaw": yaw, "pitch": pitch, "forward": fwd, "lateral": right}


def expected_label(move, look) -> str:
    """The single label a key combo should produce, or ``"mixed"`` when it moves more than one axis."""
    moving = [(a, s) for a, s in expected_axes(move, look).items() if s]
    if not moving:
        return "still"
    if len(moving) > 1:
        return "mixed"
    axis, sign = moving[0]
    return AXES[axis][int(sign > 0)]


def label_to_action(label: str) -> tuple[int, int]:
    """``(move, look)`` indices that should produce a single-axis ``label``."""
    table = {
        "still": (0, 0),
        "pan_right": (0, 1),
        "pan_left": (0, 2),
        "tilt_up": (0, 3),
        "tilt_down": (0, 4),
        "forward": (1, 0),
        "strafe_left": (2, 0),
        "back": (3, 0),
        "strafe_right": (4, 0),
    }
    if label not in table:
        raise ValueError(f"label: got {label!r}; accepted: {', '.join(LABELS)}")
    return table[label]


def axis_agreement(estimate: MotionEstimate, move, look, axes=("yaw", "pitch", "forward", "lateral")) -> dict:
    """Per-axis agreement between an estimate and the keys: ``{axis: bool}`` over ``axes``."""
    want = expected_axes(move, look)
    return {a: estimate.axes.get(a, 0) == want[a] for a in axes}


def matches(estimate: MotionEstimate, move, look) -> bool:
    """Whether every axis of ``estimate`` agrees with the keys (moving the right way, or still)."""
    return all(axis_agreement(estimate, move, look).values())
