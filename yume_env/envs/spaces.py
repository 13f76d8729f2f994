"""The Gymnasium spaces shared by every Yume environment (generated and procedural)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from yume_env.actions import EVENT_CHARSET, EVENT_MAX_LENGTH, LOOKS, MOVES


def action_space(seed: int | None = None) -> spaces.Dict:
    """``Dict(move=Discrete(9), look=Discrete(9), event=Text(0..EVENT_MAX_LENGTH))``.

    ``event`` may be empty, which keeps the current event text.
    """
    return spaces.Dict(
        {
            "move": spaces.Discrete(len(MOVES)),
            "look": spaces.Discrete(len(LOOKS)),
            "event": spaces.Text(max_length=EVENT_MAX_LENGTH, min_length=0, charset=EVENT_CHARSET),
        },
        seed=seed,
    )


def frames_space(frames: int, height: int, width: int) -> spaces.Box:
    """A block of ``frames`` RGB frames, ``(T, H, W, 3)`` uint8."""
    return spaces.Box(0, 255, shape=(frames, height, width, 3), dtype=np.uint8)


def last_frame_space(height: int, width: int) -> spaces.Box:
    """The newest RGB frame of a block, ``(H, W, 3)`` uint8."""
    return spaces.Box(0, 255, shape=(height, width, 3), dtype=np.uint8)
