"""Novelty / coverage reward: pays for seeing or reaching what the episode has not seen or reached yet."""

from __future__ import annotations

import numpy as np
from PIL import Image

from yume_env.rewards.common import check_observation_space, frames_from, is_new_episode

SOURCES = ("auto", "pose", "frames")


class NoveltyReward:
    """``reward(obs, action, info) -> float``: how new this block is within the episode.

    Two measures, chosen by ``source``:

    - ``"pose"`` (coverage; needs the ground-truth pose in ``info``, as ``YumeProcedural-v0``
      gives): the ground is cut into ``cell_size`` metre squares and the heading into
      ``heading_bins`` sectors; the reward is the number of (square, sector) pairs first visited
      during this block, times ``scale``.
    - ``"frames"`` (any world): each block's last frame is shrunk to a coarse ``embed_size`` colour
      thumbnail, normalised (zero mean, unit length); the reward is the distance from it to the
      nearest thumbnail seen so far in the episode (0 = seen before, up to 2), times ``scale``.
      At most ``memory`` thumbnails are kept (the oldest are dropped).
    - ``"auto"`` (default): ``"pose"`` when ``info`` has ``position`` and ``yaw``, else ``"frames"``.

    The memory is cleared at the first step of each episode (``info["block_index"] == 1``) and by
    :meth:`reset`. The reward keeps per-episode state, so give each env its own instance (in a
    vector env all worlds would share one memory).
    """

    def __init__(
        self,
        source: str = "auto",
        cell_size: float = 2.0,
        heading_bins: int = 8,
        embed_size: tuple[int, int] = (6, 8),
        memory: int = 4096,
        scale: float = 1.0,
        observation_space=None,
    ):
        if source not in SOURCES:
            raise ValueError(f"source: got {source!r}; accepted: {', '.join(SOURCES)}")
        if isinstance(cell_size, bool) or not isinstance(cell_size, int | float) or not cell_size > 0:
            raise ValueError(f"cell_size: got {cell_size!r}; accepted: a positive number of metres")
        if (
            isinstance(heading_bins, bool)
            or not isinstance(heading_bins, int)
            or not 1 <= heading_bins <= 360
        ):
            raise ValueError(f"heading_bins: got {heading_bins!r}; accepted: an integer in 1..360")
        if (
            not isinstance(embed_size, tuple | list)
            or len(embed_size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in embed_size)
        ):
            raise ValueError(f"embed_size: got {embed_size!r}; accepted: (height, width), integers in 1..64")
        if isinstance(memory, bool) or not isinstance(memory, int) or memory < 1:
            raise ValueError(f"memory: got {memory!r}; accepted: an integer >= 1")
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not np.isfinite(scale):
            raise ValueError(f"scale: got {scale!r}; accepted: a finite number")
        if source != "pose":
            check_observation_space(observation_space, "NoveltyReward")
        self.source = source
        self.cell_size = float(cell_size)
        self.heading_bins = heading_bins
        self.embed_size = (int(embed_size[0]), int(embed_size[1]))
        self.memory = memory
        self.scale = float(scale)
        self.reset()

    def reset(self) -> None:
        """Forget the episode so far."""
        self._cells: set[tuple[int, int, int]] = set()
        self._embeds: list[np.ndarray] = []

    @property
    def visited(self) -> int:
        """Number of (square, heading sector) pairs visited this episode (pose source)."""
        return len(self._cells)

    def _use_pose(self, info) -> bool:
        has = isinstance(info, dict) and "position" in info and "yaw" in info
        if self.source == "pose" and not has:
            raise ValueError(
                "NoveltyReward(source='pose'): info has no 'position'/'yaw' (only YumeProcedural-v0 "
                "reports the true pose); accepted: source='frames' or 'auto' for other worlds"
            )
        return self.source == "pose" or (self.source == "auto" and has)

    def __call__(self, obs, action, info) -> float:
        if is_new_episode(info):
            self.reset()
        if self._use_pose(info):
            return self.scale * self._pose_novelty(info)
        return self.scale * self._frame_novelty(frames_from(obs, "NoveltyReward")[-1])

    def _pose_novelty(self, info) -> float:
        pos = np.asarray(info["position"], np.float64).reshape(-1, 3)
        yaw = np.asarray(info["yaw"], np.float64).reshape(-1)
        cx = np.floor(pos[:, 0] / self.cell_size).astype(np.int64)
        cz = np.floor(pos[:, 2] / self.cell_size).astype(np.int64)
        hb = (np.floor((yaw % 360.0) / (360.0 / self.heading_bins)).astype(np.int64)) % self.heading_bins
        new = {(int(a), int(b), int(c)) for a, b, c in zip(cx, cz, hb)} - self._cells
        self._cells |= new
        return float(len(new))

    def embed(self, frame: np.ndarray) -> np.ndarray:
        """The coarse, normalised thumbnail of one frame ``(H, W, 3)``."""
        h, w = self.embed_size
        small = np.asarray(
            Image.fromarray(np.asarray(frame, np.uint8)).resize((w, h), Image.BOX), np.float32
        ).ravel()
        small -= small.mean()
        n = float(np.linalg.norm(small))
        return small / n if n > 1e-6 else small

    def _frame_novelty(self, frame: np.ndarray) -> float:
        e = self.embed(frame)
        if self._embeds:
            d = float(np.min(np.linalg.norm(np.stack(self._embeds) - e[None], axis=1)))
        else:
            d = float(np.linalg.norm(e))  # the first block is all new (1 for a textured frame)
        self._embeds.append(e)
        if len(self._embeds) > self.memory:
            self._embeds.pop(0)
        return d
