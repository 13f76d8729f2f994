"""One loaded model per (source, device, dtype), shared by every environment that asks for it.

``gym.make`` builds environments independently; without this each would load its own copy of the
generator (5B parameters for the real model).
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from yume_env.model.pipeline import (
    TINY_CHECKPOINT,
    YumeModel,
    build_model,
    load_checkpoint,
    resolve_device,
    resolve_dtype,
)
from yume_env.model.presets import PRESETS

_CACHE: dict[tuple, YumeModel] = {}
_LOCK = threading.Lock()


def get_model(
    model="tiny",
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> YumeModel:
    """The shared generator for these arguments (loaded on first use).

    ``model`` is a preset name or a :class:`YumeModel` (returned as is). ``checkpoint`` overrides the
    preset with an official-layout folder. The tiny preset uses the trained checkpoint shipped in the
    package when present, random (seeded) weights otherwise.
    """
    if isinstance(model, YumeModel):
        return model
    if model not in PRESETS:
        raise ValueError(f"model: got {model!r}; accepted: {', '.join(PRESETS)} or a YumeModel")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if checkpoint is None and model == "tiny" and (TINY_CHECKPOINT / "config.json").is_file():
        checkpoint = TINY_CHECKPOINT
    if checkpoint is None and model != "tiny":
        example = "runs/tiny-8x/checkpoint" if model == "tiny-8x" else "path/to/Yume-5B-720P"
        raise ValueError(
            f"checkpoint: the {model} preset needs its weights: pass checkpoint='{example}' "
            "(the official folder layout)"
        )
    key = (model, None if checkpoint is None else str(Path(checkpoint).resolve()), str(dev), str(dt))
    with _LOCK:
        if key not in _CACHE:
            if checkpoint is None:
                _CACHE[key] = build_model(model, dev, dt)
            else:
                _CACHE[key] = load_checkpoint(checkpoint, dev, dt)
        return _CACHE[key]


def clear_model_cache() -> None:
    """Forget every shared model (frees memory once no environment holds it)."""
    with _LOCK:
        _CACHE.clear()
