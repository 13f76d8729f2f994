"""``WorldSpec``: every argument that decides how generated worlds are built, checked once.

The single env, the vector env and the Ray workers all build their worlds from one ``WorldSpec``,
so the argument list, its defaults, its documentation and its checks exist in one place.

## Arguments

- ``model``: preset name (``"tiny"``, default, CPU-sized; ``"tiny-8x"``; ``"yume-1.5-5b"`` needs
  ``checkpoint``) or a loaded :class:`~yume_env.model.pipeline.YumeModel` to share between envs.
- ``checkpoint``: folder in the official ``Yume-5B-720P`` layout (default: the preset's own weights).
- ``device`` / ``dtype``: e.g. ``"cuda"``, ``"bfloat16"`` (default: CUDA when available; bf16 on
  CUDA, float32 on CPU). The device is checked where the worlds are built (a Ray worker may have a
  GPU the driver lacks).
- ``resolution``: ``(H, W)``; default the preset's (704x1280 for 5B, 96x160 for tiny).
- ``steps`` / ``shift``: sampler (default 4 / 7.0, the distilled model; 50 / 5.0 for quality).
- ``decode``: ``"block"`` (default, faithful: 29 frames per block), ``"stream"`` (seamless, 32
  frames) or ``"none"`` (no frames; the envs pick it themselves for ``obs_mode="latent"``).
- ``fit``: how start images are resized: ``"stretch"`` (official) or ``"crop"``.
- ``speed``: caption speed fields: ``"auto"`` (official values), a ``SpeedFields`` or ``None``.
- ``max_history``: history latents kept per world (default: 1016, the most the official code runs);
  older latents after the start image are dropped, so long episodes never crash.
- ``decoder``: what turns latents into frames: ``"vae"`` (default, the official Wan2.2 VAE),
  ``"taew2_2"`` or ``"taew2_2_super"`` (the TAEHV tiny decoders: ~150x cheaper, lower quality; only
  meaningful with the 5B model) with ``decoder_path`` = the ``.safetensors`` or ``.pth`` file.
- ``decode_dtype``: e.g. ``"bfloat16"`` to decode in reduced precision (encoding stays float32);
  default the decoder's own (float32).
- ``threads``: CPU threads for torch (default ``None``: ``min(usable cores, 4)``, one core left free
  on 2-4 core machines; see :mod:`yume_env.model.threads`). torch's setting is process-global.
- ``compile``: ``torch.compile`` the DiT blocks (default off; worth it on a GPU). It applies to the
  model, which environments share.
- ``reuse_history_kv``: approximate long-episode paths, off by default (``False``: exact).
  ``True`` or ``"block"``: each block computes the history keys/values once at its first denoising
  step and reuses them. ``"episode"``: the keys/values of the coarse history tiers are also carried
  from block to block, so a block at history 957 costs ~1.3-1.4x a block at history 13 on the tiny
  preset (exact: ~5x); snapshots then hold those keys/values. ``docs/performance.md`` gives the
  speed of each and its PSNR against the exact path.
- ``last_frame_only``: decode and return only the newest frame of each block (the envs set it for
  ``obs_mode="last_frame"``).
- ``check_finite``: raise :class:`~yume_env.world.stream.NonFiniteOutputError` instead of returning
  NaN/Inf (default on).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from yume_env.model.frame_decoder import DECODERS, FrameDecoder
from yume_env.model.pipeline import YumeModel
from yume_env.model.presets import PRESETS
from yume_env.model.threads import check_threads
from yume_env.world.captions import SpeedFields
from yume_env.world.model_cache import get_decoder, get_runtime_model
from yume_env.world.protocol import SpecArguments
from yume_env.world.stream import DECODE_MODES, WorldStream, check_reuse_history_kv

FITS = ("stretch", "crop")
_DTYPE_NAMES = ("float32", "bfloat16", "float16")


def _optional_path(name: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name}: got {type(value).__name__}; accepted: a path (str or pathlib.Path) or None")
    return os.fspath(value)


def _optional_dtype(name: str, value) -> str | None:
    if value is None:
        return None
    if isinstance(value, torch.dtype):
        value = str(value).removeprefix("torch.")
    if value not in _DTYPE_NAMES:
        raise ValueError(f"{name}: got {value!r}; accepted: {', '.join(_DTYPE_NAMES)} or None")
    return value


def _optional_int(name: str, value, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: got {value!r}; accepted: an integer >= {low} or None")
    return int(value)


def _flag(name: str, value) -> bool:
    if value is not True and value is not False:
        raise ValueError(f"{name}: got {value!r}; accepted: True or False")
    return value


def _choice(name: str, value, accepted: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"{name}: got {value!r}; accepted: {', '.join(accepted)}")
    return value


@dataclass(frozen=True)
class WorldSpec(SpecArguments):
    """How to build generated worlds (see the module doc for every argument and its default).

    Frozen, compared by value and picklable (when ``model`` is a preset name), so one spec can be
    shipped to Ray workers and rebuild a worker's worlds after a crash. Values are checked and
    normalized at construction (paths to ``str``, dtypes and devices to their names, the resolution
    to a tuple); what depends on the loaded model (the resolution against the preset, the device on
    this machine, ``max_history``'s upper bound) is checked by :meth:`build`.
    """

    model: str | YumeModel = "tiny"
    checkpoint: str | None = None
    device: str | None = None
    dtype: str | None = None
    resolution: tuple[int, int] | None = None
    steps: int | None = None
    shift: float | None = None
    decode: str = "block"
    fit: str = "stretch"
    speed: SpeedFields | str | None = "auto"
    max_history: int | None = None
    decoder: str = "vae"
    decoder_path: str | None = None
    decode_dtype: str | None = None
    threads: int | None = None
    compile: bool = False
    reuse_history_kv: bool | str = False
    last_frame_only: bool = False
    check_finite: bool = True

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        if not isinstance(self.model, YumeModel) and (
            not isinstance(self.model, str) or self.model not in PRESETS
        ):
            raise ValueError(f"model: got {self.model!r}; accepted: {', '.join(PRESETS)} or a YumeModel")
        put("checkpoint", _optional_path("checkpoint", self.checkpoint))
        if isinstance(self.device, torch.device):
            put("device", str(self.device))
        elif self.device is not None and not isinstance(self.device, str):
            raise ValueError(f"device: got {self.device!r}; accepted: 'cpu', 'cuda', 'cuda:N' or None")
        put("dtype", _optional_dtype("dtype", self.dtype))
        if self.resolution is not None:
            res = self.resolution
            if (
                not isinstance(res, tuple | list)
                or len(res) != 2
                or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0 for v in res)
            ):
                raise ValueError(f"resolution: got {res!r}; accepted: (height, width), two positive integers")
            put("resolution", (int(res[0]), int(res[1])))
        put("steps", _optional_int("steps", self.steps, 1))
        if self.shift is not None:
            s = self.shift
            if isinstance(s, bool) or not isinstance(s, int | float | np.number):
                raise TypeError(
                    f"shift: got {s!r} ({type(s).__name__}); accepted: a finite number > 0 or None"
                )
            if not math.isfinite(s) or s <= 0:
                raise ValueError(f"shift: got {s!r}; accepted: a finite number > 0 or None")
            put("shift", float(s))
        _choice("decode", self.decode, DECODE_MODES)
        _choice("fit", self.fit, FITS)
        if not (self.speed is None or self.speed == "auto" or isinstance(self.speed, SpeedFields)):
            raise ValueError(f"speed: got {self.speed!r}; accepted: 'auto', None or a SpeedFields")
        put("max_history", _optional_int("max_history", self.max_history, 3))
        _choice("decoder", self.decoder, DECODERS)
        put("decoder_path", _optional_path("decoder_path", self.decoder_path))
        put("decode_dtype", _optional_dtype("decode_dtype", self.decode_dtype))
        check_threads(self.threads)
        check_reuse_history_kv(self.reuse_history_kv)
        for name in ("compile", "last_frame_only", "check_finite"):
            _flag(name, getattr(self, name))

    # ------------------------------------------------------------------ building
    def runtime_model(self) -> tuple[YumeModel, int]:
        """The shared model for this spec (loaded on first use) and the torch threads in use."""
        checkpoint = None if self.checkpoint is None else Path(self.checkpoint)
        return get_runtime_model(self.model, checkpoint, self.device, self.dtype, self.threads, self.compile)

    def frame_decoder(self, model: YumeModel) -> FrameDecoder:
        """The shared frame decoder of ``model`` for this spec."""
        return get_decoder(model, self.decoder, self.decoder_path, self.decode_dtype)

    def build(self, num_worlds: int = 1, model: YumeModel | None = None) -> WorldStream:
        """A :class:`WorldStream` of ``num_worlds`` worlds (on ``model``, default :meth:`runtime_model`'s)."""
        if model is None:
            model, _ = self.runtime_model()
        return WorldStream(
            model,
            num_worlds=num_worlds,
            resolution=self.resolution,
            steps=self.steps,
            shift=self.shift,
            decode=self.decode,
            fit=self.fit,
            speed=self.speed,
            max_history=self.max_history,
            check_finite=self.check_finite,
            decoder=self.frame_decoder(model),
            last_frame_only=self.last_frame_only,
            reuse_history_kv=self.reuse_history_kv,
        )
