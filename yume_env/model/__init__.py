"""The generator in pure PyTorch: Yume DiT with TSCM history, Wan2.2 VAE, umT5, sampler, checkpoints.

Nothing here knows about worlds, actions or Gymnasium. Entry points::

    from yume_env.model import build_model, load_checkpoint
    model = load_checkpoint("Yume-5B-720P", device="cuda")   # official folder layout
    model = build_model("tiny")                              # random weights, CPU-sized
"""

from yume_env.model.checkpoint import CheckpointError
from yume_env.model.dit import DiTConfig, YumeDiT
from yume_env.model.pipeline import YumeModel, build_model, load_checkpoint, save_checkpoint
from yume_env.model.presets import PRESETS, TINY, TINY_8X, YUME_5B, ModelPreset, get_preset
from yume_env.model.sampler import EulerSampler, sampling_sigmas

__all__ = [
    "PRESETS",
    "TINY",
    "TINY_8X",
    "YUME_5B",
    "CheckpointError",
    "DiTConfig",
    "EulerSampler",
    "ModelPreset",
    "YumeDiT",
    "YumeModel",
    "build_model",
    "get_preset",
    "load_checkpoint",
    "sampling_sigmas",
    "save_checkpoint",
]
