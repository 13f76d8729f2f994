"""Start images: any path, PIL image, array or tensor -> an RGB tensor at the model resolution.

Accepted inputs:
- a path (``str`` / ``os.PathLike``) to an image file Pillow can read;
- a ``PIL.Image`` in any mode (grayscale, RGBA, palette, 16-bit ``I;16`` ...);
- a numpy array ``HxW`` (grayscale), ``HxWx1``, ``HxWx3`` or ``HxWx4`` of dtype uint8 (0..255),
  uint16 (0..65535) or float (0..1);
- a torch tensor ``3xHxW`` / ``HxWx3`` (uint8 0..255 or float 0..1) or ``1x3xHxW``.

Alpha is dropped (the colour channels are kept as they are), as Pillow's ``convert("RGB")`` does. Resizing is bilinear: ``fit="stretch"`` resizes
the whole image to the target (the official behaviour, aspect ratio not kept), ``fit="crop"``
centre-crops to the target aspect ratio first. A stretch that changes the aspect ratio by more than
1.5x (e.g. a portrait photo into a 16:9 world) gives a ``UserWarning`` suggesting ``fit="crop"``.

A bare name of a bundled sample (``"street"``, ``"park"``, ``"plaza"``, or ``"street.png"``) that is
not a file in the working directory means that sample (``yume_env/assets/samples``).

High bit depths and float images from Pillow: ``I;16`` modes are divided by 65535; mode ``I``
(32-bit integers) by 255 when all values are in 0..255, by 65535 when in 0..65535, and refused
otherwise; mode ``F`` (32-bit float) is taken as 0..1 when all values are in [0, 1], as 0..255 when
in [0, 255] (divided by 255), and refused otherwise (also for NaN/Inf). Nothing is silently clipped.

Size: images over :data:`MAX_IMAGE_PIXELS` are refused, files from their header before decoding.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from yume_env.paths import SAMPLES

FITS = ("stretch", "crop")
# Largest start image decoded (36 MP covers 8K UHD). Checked from the file header, before decoding: a
# small PNG can claim 90 megapixels and take gigabytes once decoded to float.
MAX_IMAGE_PIXELS = 36_000_000
MAX_STRETCH = 1.5  # a stretch changing the aspect ratio by more than this warns (fit="crop" keeps it)


def sample_names() -> list[str]:
    """Names of the bundled sample images (``image="street"`` picks one)."""
    return sorted(p.stem for p in SAMPLES.glob("*.png"))


def resolve_image_path(image: str | os.PathLike) -> Path:
    """``image`` as an existing file: the path itself, or a bundled sample named bare (``"street"``)."""
    path = Path(image)
    if path.is_file():
        return path
    if path.parent == Path(".") and path.stem in sample_names() and path.suffix in ("", ".png"):
        return SAMPLES / f"{path.stem}.png"
    raise FileNotFoundError(
        f"image: no such file: {path}; accepted: an image file, or a bundled sample by name: "
        + ", ".join(repr(n) for n in sample_names())
    )


def check_image_pixels(width: int, height: int, what) -> None:
    """Refuse an image over :data:`MAX_IMAGE_PIXELS` before it is decoded."""
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"image: {what} is {width}x{height} ({width * height / 1e6:.1f} megapixels); accepted: at most "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (it is resized to the model resolution anyway; "
            "downscale it first)"
        )


def _from_pil(img) -> np.ndarray:
    if img.width == 0 or img.height == 0:
        raise ValueError(
            f"image: got a zero-size image ({img.width}x{img.height}); accepted: at least 1x1 pixels"
        )
    check_image_pixels(img.width, img.height, "the PIL image")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"image: a mode {img.mode} image holds NaN or Inf; accepted: finite values")
        low, high = float(arr.min()), float(arr.max())
        if img.mode.startswith("I;16"):
            top = 65535.0
        elif img.mode == "F" and low >= 0 and high <= 1:
            top = 1.0
        elif low >= 0 and high <= 255:
            top = 255.0
        elif img.mode == "I" and low >= 0 and high <= 65535:
            top = 65535.0
        else:
            accepted = "[0, 1] or [0, 255]" if img.mode == "F" else "0..255 or 0..65535"
            raise ValueError(
                f"image: a mode {img.mode} image with values in [{low:g}, {high:g}]; accepted: {accepted}"
            )
        return (arr / top)[..., None].repeat(3, axis=-1).astype(np.float32)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _from_array(arr: np.ndarray) -> np.ndarray:
    if arr.size == 0:
        raise ValueError(f"image: got an empty array of shape {arr.shape}; accepted: at least 1x1 pixels")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image: got an array of shape {arr.shape}; accepted: HxW, HxWx1, HxWx3 or HxWx4")
    check_image_pixels(arr.shape[1], arr.shape[0], "the array")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise ValueError("image: the array holds NaN or Inf values; accepted: finite values in [0, 1]")
        if out.min() < 0 or out.max() > 1:
            raise ValueError(
                f"image: float values range over [{out.min():.3g}, {out.max():.3g}]; accepted: [0, 1] "
                "(or pass uint8 0..255)"
            )
    else:
        raise ValueError(
            f"image: got an array of dtype {arr.dtype}; accepted: uint8, uint16 or float in [0, 1]"
        )
    if out.shape[-1] == 1:
        out = out.repeat(3, axis=-1)
    return out[..., :3]


def _from_tensor(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim == 3 and t.shape[0] in (1, 3, 4) and t.shape[-1] not in (1, 3, 4):
        t = t.permute(1, 2, 0)
    if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
        t = t.float()
    return _from_array(t.numpy())


def load_image(image, resolution: tuple[int, int], fit: str = "stretch") -> torch.Tensor:
    """``image`` as a float tensor ``[3, H, W]`` in [-1, 1] at ``resolution = (H, W)``."""
    from PIL import Image, UnidentifiedImageError

    if fit not in FITS:
        raise ValueError(f"fit: got {fit!r}; accepted: {', '.join(FITS)}")
    if isinstance(image, str | os.PathLike):
        path = resolve_image_path(image)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
                with Image.open(path) as img:  # reads the header only: the size is known before decoding
                    check_image_pixels(img.width, img.height, path)
                    img.load()
                    arr = _from_pil(img)
        except Image.DecompressionBombError as exc:
            raise ValueError(f"image: {path} is too large to decode safely ({exc})") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"image: cannot read {path} as an image ({exc})") from None
    elif isinstance(image, Image.Image):
        arr = _from_pil(image)
    elif isinstance(image, np.ndarray):
        arr = _from_array(image)
    elif isinstance(image, torch.Tensor):
        arr = _from_tensor(image)
    else:
        raise TypeError(
            f"image: got {type(image).__name__}; accepted: a file path, PIL.Image, numpy array or torch tensor"
        )
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]  # [1, 3, h, w] in [0, 1]
    th, tw = resolution
    h, w = x.shape[-2:]
    change = (w / h) / (tw / th)
    if fit == "stretch" and max(change, 1 / change) > MAX_STRETCH:
        warnings.warn(
            f"image: a {h}x{w} image is stretched to {th}x{tw} (its aspect ratio changes {max(change, 1 / change):.2f}x); "
            "pass fit='crop' to centre-crop it to the world's proportions instead",
            UserWarning,
            stacklevel=2,
        )
    if fit == "crop":
        h, w = x.shape[-2:]
        if h * tw > w * th:  # too tall
            nh = max(1, round(w * th / tw))
            top = (h - nh) // 2
            x = x[..., top : top + nh, :]
        else:
            nw = max(1, round(h * tw / th))
            left = (w - nw) // 2
            x = x[..., left : left + nw]
    if tuple(x.shape[-2:]) != (th, tw):
        x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False)
    return (x[0].clamp(0, 1) * 2 - 1).contiguous()


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """Frames in [-1, 1] ``[..., 3, T, H, W]`` -> uint8 ``[..., T, H, W, 3]``."""
    x = ((frames.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-4, -1).cpu().numpy()


def autoencode_frames(vae, frames: np.ndarray) -> np.ndarray:
    """uint8 frames ``(T, H, W, 3)`` after ``vae``'s encode and decode (``T = 1 + 4k``).

    What a latent world model can show of those frames at best: the ceiling for comparisons against
    ground truth. ``vae`` is a :class:`yume_env.model.vae.WanVAE`, whose own checks reject bad sizes.
    """
    frames = np.asarray(frames)
    stride = vae.config.temporal_stride
    if (
        frames.ndim != 4
        or frames.shape[-1] != 3
        or frames.dtype != np.uint8
        or (frames.shape[0] - 1) % stride
    ):
        raise ValueError(
            f"frames: got {frames.dtype} {frames.shape}; accepted: uint8 (T, H, W, 3) with T = 1 + {stride}k"
        )
    video = torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1).to(vae.device, vae.dtype)
    with torch.inference_mode():
        rec = vae.decode(vae.encode(video.movedim(-1, 0)[None]))
    return to_uint8(rec[0])


def parse_resolution(text: str | None) -> tuple[int, int] | None:
    """``"HxW"`` (e.g. ``"544x960"``) as ``(H, W)``; ``None`` stays ``None``.

    ``ValueError`` (``resolution: got ...; accepted: ...``) otherwise; command lines put their flag
    name in front (``--resolution: ...``).
    """
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"resolution: got {text!r}; accepted: HxW such as 544x960") from None
    return h, w
