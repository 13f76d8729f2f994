"""Worlds over a loaded model: per-world state, captions, batched steps, snapshots (no Gymnasium here)."""

from yume_env.world.captions import SpeedFields, render_caption
from yume_env.world.stream import (
    Action,
    BlockOutput,
    BlockTiming,
    NonFiniteOutputError,
    WorldSnapshot,
    WorldStream,
)

__all__ = [
    "Action",
    "BlockOutput",
    "BlockTiming",
    "NonFiniteOutputError",
    "SpeedFields",
    "WorldSnapshot",
    "WorldStream",
    "render_caption",
]
