"""One loaded model per (source, device, dtype), shared by every environment that asks for it.

``gym.make`` builds environments independently; without this each would load its own copy of the
generator (5B parameters for the real model).
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

import torch

from yume_env.model.frame_decoder import FrameDecoder
from yume_env.model.pipeline import (
    TINY_CHECKPOINT,
    YumeModel,
    build_model,
    load_checkpoint,
    resolve_device,
    resolve_dtype,
)
from yume_env.model.presets import PRESETS
from yume_env.model.threads import check_threads, set_threads
from yume_env.world.fork_safety import guard_forked_process

_CACHE: dict[tuple, YumeModel] = {}
_DECODERS: weakref.WeakKeyDictionary[YumeModel, dict[tuple, FrameDecoder]] = weakref.WeakKeyDictionary()
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
    if not isinstance(model, str) or model not in PRESETS:
        raise ValueError(f"model: got {model!r}; accepted: {', '.join(PRESETS)} or a YumeModel")
    if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(
            f"checkpoint: got {type(checkpoint).__name__}; accepted: a folder path (str or pathlib.Path) or None"
        )
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


def get_decoder(
    model: YumeModel,
    decoder: str = "vae",
    decoder_path: str | Path | None = None,
    decode_dtype: str | torch.dtype | None = None,
) -> FrameDecoder:
    """The shared frame decoder of ``model`` for these arguments (loaded on first use); see
    :meth:`YumeModel.frame_decoder <yume_env.model.pipeline.YumeModel.frame_decoder>`."""
    path = None if decoder_path is None else str(Path(decoder_path).resolve())
    key = (decoder, path, str(decode_dtype))
    with _LOCK:
        per_model = _DECODERS.setdefault(model, {})
        if key not in per_model:
            per_model[key] = model.frame_decoder(decoder, decoder_path, decode_dtype)
        return per_model[key]


def clear_model_cache() -> None:
    """Forget every shared model and decoder (frees memory once no environment holds them)."""
    with _LOCK:
        _CACHE.clear()
        _DECODERS.clear()


def get_runtime_model(
    model="tiny",
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    threads: int | None = None,
    compile: bool = False,
) -> tuple[YumeModel, int]:
    """:func:`get_model` with the process settings an environment asks for: ``(model, threads used)``.

    ``threads`` sets torch's (process-global) CPU thread count (see :mod:`yume_env.model.threads`);
    a forked worker always keeps one thread (see :mod:`yume_env.world.fork_safety`). ``compile``
    compiles the shared model's DiT blocks, so every environment using that model runs compiled.
    """
    check_threads(threads)  # before loading: a bad value fails fast
    if compile is not False and compile is not True:
        raise ValueError(f"compile: got {compile!r}; accepted: True or False")
    guard_forked_process()  # before any tensor work
    loaded = get_model(model, checkpoint, device, dtype)
    used = set_threads(threads)
    if guard_forked_process():  # again: set_threads must not give a fork more than one thread
        used = 1
    if compile and not loaded.dit.compiled:
        loaded.dit.compile_blocks()
    return loaded, used
