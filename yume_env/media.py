"""Saving what people look at: mp4 videos and contact sheets of frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def save_video(path: str | Path, frames: np.ndarray, fps: int = 16) -> Path:
    """Write uint8 frames ``(T, H, W, 3)`` as an H.264 mp4 (sides padded to even sizes for the codec)."""
    import imageio.v3 as iio

    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=fps, out_pixel_format="yuv420p")
    return path


def save_gif(path: str | Path, frames: np.ndarray, fps: int = 16) -> Path:
    path = Path(path)
    images = [Image.fromarray(f) for f in np.asarray(frames, dtype=np.uint8)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def contact_sheet(
    frames: Sequence[np.ndarray], captions: Sequence[str] | None = None, columns: int = 4, scale: int = 2
) -> Image.Image:
    """A grid of frames (each enlarged ``scale`` times) with an optional caption under each."""
    h, w = frames[0].shape[:2]
    h, w = h * scale, w * scale
    label = 14 if captions else 0
    rows = -(-len(frames) // columns)
    sheet = Image.new("RGB", (columns * w, rows * (h + label)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    for k, frame in enumerate(frames):
        r, c = divmod(k, columns)
        tile = Image.fromarray(np.asarray(frame, dtype=np.uint8)).resize((w, h), Image.NEAREST)
        sheet.paste(tile, (c * w, r * (h + label)))
        if captions:
            draw.text((c * w + 3, r * (h + label) + h + 1), captions[k][: w // 6], fill=(230, 230, 230))
    return sheet


def save_contact_sheet(
    path: str | Path, frames: Sequence[np.ndarray], captions: Sequence[str] | None = None, columns: int = 4
) -> Path:
    path = Path(path)
    contact_sheet(frames, captions, columns).save(path)
    return path
