"""Goal-image reward: how much the view looks like a goal image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from yume_env.rewards.common import check_observation_space, frames_from

METRICS = ("ssim", "pixel")
FRAMES = ("last", "best", "mean")


def _load_goal(goal) -> np.ndarray:
    if hasattr(goal, "detach"):
        goal = goal.detach().cpu().numpy()
    if isinstance(goal, str | Path):
        path = Path(goal)
        if not path.is_file():
            raise FileNotFoundError(f"goal: no such file: {path}")
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise ValueError(f"goal: {path} is not a readable image ({exc})") from None
    if isinstance(goal, Image.Image):
        return np.asarray(goal.convert("RGB"))
    if isinstance(goal, np.ndarray) and goal.ndim == 3 and goal.shape[-1] == 3 and min(goal.shape[:2]) >= 1:
        if not np.isfinite(goal).all():
            raise ValueError("goal: got non-finite pixel values; accepted: 0..255")
        arr = goal.astype(np.float32)
        if np.issubdtype(goal.dtype, np.floating) and arr.max() <= 1.0:
            arr = arr * 255.0
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise TypeError(
        f"goal: got {type(goal).__name__}{getattr(goal, 'shape', '')}; accepted: an image path, "
        "a PIL image or an (H, W, 3) array"
    )


def _box(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k windows ('valid' positions) of the last two axes, via integral images."""
    c = np.cumsum(np.cumsum(np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 0), (1, 0)]), axis=-2), axis=-1)
    s = c[..., k:, k:] - c[..., :-k, k:] - c[..., k:, :-k] + c[..., :-k, :-k]
    return s / (k * k)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> np.ndarray:
    """Mean structural similarity of grayscale images ``a`` ``(..., H, W)`` and ``b`` ``(H, W)`` in 0..255
    (box window; -1..1, 1 = identical)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = min(window, a.shape[-1], a.shape[-2])
    b = np.broadcast_to(b, a.shape)
    mu_a, mu_b = _box(a, k), _box(b, k)
    var_a = _box(a * a, k) - mu_a**2
    var_b = _box(b * b, k) - mu_b**2
    cov = _box(a * b, k) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(axis=(-2, -1))


class GoalImageReward:
    """``reward(obs, action, info) -> float``: similarity of the view to a goal image.

    Both the frame(s) and the goal are shrunk to ``size`` (box filter) so that only the layout
    counts, not fine detail.

    Args:
        goal: the goal image: a path, a PIL image or an ``(H, W, 3)`` array (read and checked at
            construction: a missing or unreadable goal fails here, not mid-episode).
        size: ``(height, width)`` of the comparison (default 32x48).
        metric: ``"ssim"`` (default: mean structural similarity of grayscale, -1..1, 1 = the same)
            or ``"pixel"`` (1 - mean absolute RGB difference / 255, 0..1).
        frames: which frames of the block count: ``"last"`` (default), ``"best"`` (the most similar
            frame of the block) or ``"mean"`` (the average over the block's frames).
        scale: the similarity is multiplied by this.
        observation_space: checked at construction when given.
    """

    def __init__(
        self,
        goal,
        size: tuple[int, int] = (32, 48),
        metric: str = "ssim",
        frames: str = "last",
        scale: float = 1.0,
        observation_space=None,
    ):
        if metric not in METRICS:
            raise ValueError(f"metric: got {metric!r}; accepted: {', '.join(METRICS)}")
        if frames not in FRAMES:
            raise ValueError(f"frames: got {frames!r}; accepted: {', '.join(FRAMES)}")
        if (
            not isinstance(size, tuple | list)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 4 <= v <= 1024 for v in size)
        ):
            raise ValueError(f"size: got {size!r}; accepted: (height, width), integers in 4..1024")
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not np.isfinite(scale):
            raise ValueError(f"scale: got {scale!r}; accepted: a finite number")
        check_observation_space(observation_space, "GoalImageReward")
        self.size = (int(size[0]), int(size[1]))
        self.metric = metric
        self.frames = frames
        self.scale = float(scale)
        self.goal = self._prepare(_load_goal(goal)[None])[0]

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        h, w = self.size
        out = np.stack(
            [
                np.asarray(Image.fromarray(np.asarray(f, np.uint8)).resize((w, h), Image.BOX), np.float32)
                for f in frames
            ]
        )
        if self.metric == "ssim":
            out = 0.299 * out[..., 0] + 0.587 * out[..., 1] + 0.114 * out[..., 2]
        return out

    def similarity(self, frames: np.ndarray) -> np.ndarray:
        """Similarity of each frame ``(T, H, W, 3)`` to the goal, ``(T,)``."""
        x = self._prepare(frames)
        if self.metric == "ssim":
            return ssim(x, self.goal)
        return 1.0 - np.abs(x - self.goal[None]).mean(axis=(1, 2, 3)) / 255.0

    def __call__(self, obs, action, info) -> float:
        frames = frames_from(obs, "GoalImageReward")
        if self.frames == "last":
            sim = self.similarity(frames[-1:])[0]
        elif self.frames == "mean":
            sim = self.similarity(frames).mean()
        else:
            sim = self.similarity(frames).max()
        return float(self.scale * sim)
