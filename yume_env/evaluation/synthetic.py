"""Blocks of frames with known camera motion, warped from still images (to measure the motion estimator).

Each synthetic block looks at a window of a source image and moves that window over the block:

- ``pan_left`` / ``pan_right``: a pinhole camera turns in front of the picture (a homography
  with the perspective of a real pan); ``amount`` is the slide of the picture centre over the
  block in frame widths.
- ``tilt_up`` / ``tilt_down``: the same about the horizontal axis; ``amount`` in frame heights.
- ``forward`` / ``back``: the window shrinks / grows about its centre (centre zoom); ``amount`` is
  ``log(scale)`` over the block.
- ``strafe_left`` / ``strafe_right``: sideways motion over flat ground: rows below the horizon
  (the middle row) slide sideways in proportion to their distance below it, the sky and far
  scenery above it stay put (ground-plane parallax); ``amount`` is the slide of the bottom row in
  frame widths.
- ``still``: the window stays put (only sensor noise changes).

Every frame gets Gaussian noise (``noise`` grey levels) so that "still" is not trivially exact.
The bundled sample images (:func:`sample_images`, procedurally rendered streets, parks and plazas)
are the default sources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from yume_env.evaluation.motion import LABELS
from yume_env.paths import SAMPLES

#: Labels with a clear, unambiguous synthetic warp (the estimator's headline accuracy is on these).
CLEAR_LABELS: tuple[str, ...] = (
    "still",
    "pan_left",
    "pan_right",
    "tilt_up",
    "tilt_down",
    "forward",
    "back",
)

#: Default ranges of ``amount`` for each kind of motion ("clear" motion: easily visible in a block).
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "pan": (0.15, 0.6),
    "tilt": (0.15, 0.5),
    "zoom": (0.12, 0.4),
    "strafe": (0.15, 0.5),
}


@dataclass(frozen=True)
class SyntheticBlock:
    """One warped block: ``frames`` ``(T, H, W, 3)`` uint8 and the motion that made them."""

    frames: np.ndarray
    label: str
    amount: float
    source: str


def sample_images() -> list[Path]:
    """The bundled sample images (``yume_env/assets/samples/*.png``)."""
    paths = sorted(SAMPLES.glob("*.png"))
    if not paths:
        raise FileNotFoundError(f"no sample images in {SAMPLES}; the package data is incomplete")
    return paths


def _load(image) -> tuple[np.ndarray, str]:
    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image: no such file: {path}")
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), np.float32), path.name
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), np.float32), "image"
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(
            f"image: got an array of shape {arr.shape}; accepted: a path, PIL image or (H, W, 3) array"
        )
    return arr.astype(np.float32), "array"


def _bilinear(src: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    h, w = src.shape[:2]
    xs = np.clip(xs, 0, w - 1.000001)
    ys = np.clip(ys, 0, h - 1.000001)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    a = src[y0, x0] * (1 - fx) + src[y0, x0 + 1] * fx
    b = src[y0 + 1, x0] * (1 - fx) + src[y0 + 1, x0 + 1] * fx
    return a * (1 - fy) + b * fy


def _check_label(label: str) -> str:
    if label not in LABELS:
        raise ValueError(f"label: got {label!r}; accepted: {', '.join(LABELS)}")
    return label


def _offsets(kind: str, sign: float, amount: float, p: float, w: int, h: int, fov_deg: float):
    """Source-pixel offsets (per output pixel, for a source scale of 1) of frame ``p`` (0..1) of a block."""
    f = (w / 2) / np.tan(np.radians(fov_deg) / 2)
    x = (np.arange(w) - (w - 1) / 2)[None, :]
    y = (np.arange(h) - (h - 1) / 2)[:, None]
    if kind in ("pan", "tilt"):
        # a camera rotating in front of the picture (a plane at the focal distance): a homography
        if kind == "pan":
            yaw, pitch = sign * np.arctan(amount * w / f) * p, 0.0
        else:  # tilt up: the view moves up the picture (y points down)
            yaw, pitch = 0.0, sign * np.arctan(amount * h / f) * p
        cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
        # rays (x, y, f) tilted by pitch (about the x axis), then turned by yaw (about the y axis)
        y1 = y * cp - f * sp
        z1 = y * sp + f * cp
        xr = x * cy + z1 * sy
        zr = -x * sy + z1 * cy
        return f * xr / zr, f * np.broadcast_to(y1, xr.shape) / zr
    if kind == "zoom":
        z = np.exp(sign * amount * p)
        return np.broadcast_to(x / z, (h, w)), np.broadcast_to(y / z, (h, w))
    if kind == "strafe":  # moving right: the ground slides left, the more the nearer (lower) it is
        below = np.clip(y, 0, None) / ((h - 1) / 2)
        return x + sign * amount * w * p * below, np.broadcast_to(y, (h, w)) + 0.0 * x
    return np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w))


def synthetic_block(
    image,
    label: str,
    amount: float | None = None,
    frames: int = 29,
    size: tuple[int, int] = (96, 160),
    noise: float = 2.0,
    fov_deg: float = 80.0,
    rng: np.random.Generator | int | None = None,
) -> SyntheticBlock:
    """A block of ``frames`` frames of ``size`` (H, W) moving over ``image`` as ``label`` says.

    ``amount`` defaults to a random value in :data:`DEFAULT_RANGES` (0 for ``still``); the window's
    start position is random too (``rng`` makes it reproducible). Pans and tilts rotate a pinhole
    camera of horizontal field of view ``fov_deg`` in front of the picture, so they carry the
    perspective of a real pan; ``amount`` is then the slide of the picture centre. Beyond about
    0.6 (a turn of ~45 degrees) the picture is stretched so much that little texture is left.
    """
    label = _check_label(label)
    rng = np.random.default_rng(rng)
    src, name = _load(image)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames: got {frames!r}; accepted: an integer >= 2")
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 16 for v in size)
    ):
        raise ValueError(f"size: got {size!r}; accepted: (height, width), integers >= 16")
    h, w = (int(v) for v in size)
    kind = {"forward": "zoom", "back": "zoom"}.get(label, label.split("_")[0])
    if amount is None:
        amount = 0.0 if kind == "still" else float(rng.uniform(*DEFAULT_RANGES[kind]))
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount <= 1.0:
        raise ValueError(f"amount: got {amount!r}; accepted: a number in 0..1")
    amount = float(amount)
    sign = -1.0 if label in ("pan_left", "tilt_down", "back", "strafe_left") else 1.0
    offsets = [_offsets(kind, sign, amount, k / (frames - 1), w, h, fov_deg) for k in range(frames)]
    xs_all = np.stack([o[0] for o in offsets])
    ys_all = np.stack([o[1] for o in offsets])
    span_x = xs_all.max() - xs_all.min()
    span_y = ys_all.max() - ys_all.min()
    sh, sw = src.shape[:2]
    # source pixels per output pixel: the window covers at most 60% of the picture at rest, less
    # when the motion needs room
    scale = min(0.6 * min(sw / w, sh / h), (sw - 2) / span_x, (sh - 2) / span_y)
    lo_x, hi_x = -xs_all.min() * scale, sw - 1 - xs_all.max() * scale
    lo_y, hi_y = -ys_all.min() * scale, sh - 1 - ys_all.max() * scale
    cx0, cy0 = rng.uniform(lo_x, max(lo_x, hi_x)), rng.uniform(lo_y, max(lo_y, hi_y))
    out = np.empty((frames, h, w, 3), np.uint8)
    for k in range(frames):
        img = _bilinear(src, cx0 + xs_all[k] * scale, cy0 + ys_all[k] * scale)
        if noise > 0:
            img = img + rng.normal(0.0, noise, img.shape)
        out[k] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return SyntheticBlock(out, label, 0.0 if kind == "still" else sign * amount, name)


def synthetic_dataset(
    per_label: int = 20,
    labels: Sequence[str] = CLEAR_LABELS,
    images: Sequence | None = None,
    seed: int = 0,
    frames: int = 29,
    size: tuple[int, int] = (96, 160),
    noise: float = 2.0,
    fov_deg: float = 80.0,
) -> Iterator[SyntheticBlock]:
    """``per_label`` blocks of each label, cycling over ``images`` (default: :func:`sample_images`)."""
    if isinstance(per_label, bool) or not isinstance(per_label, int) or per_label < 1:
        raise ValueError(f"per_label: got {per_label!r}; accepted: an integer >= 1")
    for label in labels:
        _check_label(label)
    sources = [_load(im) for im in (images if images is not None else sample_images())]
    rng = np.random.default_rng(seed)
    for i in range(per_label):
        for label in labels:
            src, name = sources[(i + labels.index(label)) % len(sources)]
            block = synthetic_block(
                src, label, frames=frames, size=size, noise=noise, fov_deg=fov_deg, rng=rng
            )
            yield SyntheticBlock(block.frames, block.label, block.amount, name)
