"""Helpers shared by the reward functions: reading observations and spotting a new episode."""

from __future__ import annotations

import numpy as np


def frames_from(obs, who: str, min_frames: int = 1) -> np.ndarray:
    """``(T, H, W, 3)`` uint8-range frames from a ``"frames"`` observation ``(T, H, W, 3)`` or a
    ``"last_frame"`` one ``(H, W, 3)`` (numpy or torch); ``ValueError`` naming ``who`` otherwise."""
    if hasattr(obs, "detach"):
        obs = obs.detach().cpu().numpy()
    arr = np.asarray(obs)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(
            f"{who}: got an observation of shape {tuple(arr.shape)}; accepted: frames (T, H, W, 3) "
            "(obs_mode='frames') or one frame (H, W, 3) (obs_mode='last_frame'); latents carry no pixels"
        )
    if arr.shape[0] < min_frames:
        raise ValueError(
            f"{who}: got {arr.shape[0]} frame(s); accepted: at least {min_frames} (use obs_mode='frames')"
        )
    return arr


def check_observation_space(space, who: str, min_frames: int = 1) -> None:
    """Fail at construction when an env's observation space cannot feed this reward."""
    if space is None:
        return
    shape = getattr(space, "shape", None)
    if shape is None:
        raise ValueError(f"{who}: observation_space {space!r} has no shape; accepted: a Box of frames")
    frames_from(np.zeros(shape, np.uint8), who, min_frames)


def is_new_episode(info: dict) -> bool:
    """Whether this step is the first of an episode (``info["block_index"] == 1`` in both worlds)."""
    return isinstance(info, dict) and info.get("block_index") == 1
