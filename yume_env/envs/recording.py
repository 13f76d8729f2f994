"""Recording every frame of every block: :class:`RecordEpisodeFrames` writes one mp4 per episode.

A Yume step produces a whole block of frames (29 by default). Gymnasium's ``RecordVideo`` keeps one
frame per ``step`` (with ``render_mode="rgb_array_list"``, gymnasium 1.x keeps the *last* frame of the
list in its video and hands the rest back from ``render()``), so its videos of these worlds are slide
shows. This wrapper writes all of them, streamed to disk as they come (memory stays bounded on long
episodes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np


class VideoWriter:
    """An H.264 mp4 written frame by frame (sides padded to even sizes, as the codec needs)."""

    def __init__(self, path: str | Path, fps: int):
        import imageio.v3 as iio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = iio.imopen(self.path, "w", plugin="pyav")
        self._file.init_video_stream("libx264", fps=fps)
        self.frames = 0

    def write(self, frames) -> None:
        for frame in frames:
            frame = np.asarray(frame, dtype=np.uint8)
            pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
            if pad_h or pad_w:
                frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            self._file.write_frame(frame)
            self.frames += 1

    def close(self) -> Path:
        self._file.close()
        return self.path


class RecordEpisodeFrames(gym.Wrapper):
    """Write every frame of every block of every episode to ``video_folder/{name_prefix}-{n}.mp4``.

    The wrapped env must be created with ``render_mode="rgb_array_list"`` (``YumeWorld-v0`` and
    ``YumeProcedural-v0`` support it in every ``obs_mode``; in ``"latent"`` mode the blocks are
    decoded for the video). A video holds the episode's start frame once, then each block's frames,
    at ``fps`` (default: the env's ``metadata["render_fps"]``, 16). It is closed at the next
    ``reset`` or at ``close()``; ``video_paths`` lists the files written so far.

    ``episode_trigger(episode_index) -> bool`` picks which episodes to record (default: all).
    ``render()`` on this wrapper returns the frames of the latest ``reset``/``step`` (not an ever
    growing list: the video holds the rest).
    """

    def __init__(
        self,
        env: gym.Env,
        video_folder: str | Path,
        name_prefix: str = "episode",
        fps: int | None = None,
        episode_trigger: Callable[[int], bool] | None = None,
    ):
        super().__init__(env)
        if env.render_mode != "rgb_array_list":
            raise ValueError(
                f"env.render_mode: got {env.render_mode!r}; accepted: 'rgb_array_list' "
                "(create the env with render_mode='rgb_array_list')"
            )
        fps = fps if fps is not None else env.metadata.get("render_fps", 16)
        if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= 240:
            raise ValueError(f"fps: got {fps!r}; accepted: an integer 1..240")
        if not isinstance(name_prefix, str) or not name_prefix or "/" in name_prefix:
            raise ValueError(f"name_prefix: got {name_prefix!r}; accepted: a non-empty file name prefix")
        if episode_trigger is not None and not callable(episode_trigger):
            raise TypeError(
                f"episode_trigger: got {type(episode_trigger).__name__}; accepted: None or a callable"
            )
        self.video_folder = Path(video_folder)
        self.name_prefix = name_prefix
        self.fps = fps
        self.episode_trigger = episode_trigger
        self.episode_index = -1
        self.video_paths: list[Path] = []
        self._writer: VideoWriter | None = None
        self._unread: list[np.ndarray] = []  # the latest reset/step's frames, for render()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._finish()
        self._unread = []
        self.episode_index += 1
        if self.episode_trigger is None or self.episode_trigger(self.episode_index):
            path = self.video_folder / f"{self.name_prefix}-{self.episode_index}.mp4"
            self._writer = VideoWriter(path, self.fps)
        self._collect()
        return obs, info

    def step(self, action):
        result = self.env.step(action)
        self._collect()
        return result

    def render(self):
        frames, self._unread = self._unread, []
        return frames

    def close(self):
        self._finish()
        super().close()

    def _collect(self) -> None:
        frames = self.env.render()
        if self._writer is not None:
            self._writer.write(frames)
        self._unread = list(frames)

    def _finish(self) -> None:
        if self._writer is not None:
            self.video_paths.append(self._writer.close())
            self._writer = None
