"""One played world (one browser tab): reset, step, fork/rewind, recording, dataset episodes.

Every method runs on the server's model thread (see :mod:`yume_env.play.server`), never two at a
time. A method that raises leaves the world, its action log, its snapshots and its recording as
they were.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

from yume_env.actions import Action
from yume_env.cli_flags import SETTINGS, settings_for
from yume_env.script import ScriptStep

#: The worlds a tab can hold: the env id and the keywords that pick the world among that id's.
WORLD_ENVS: dict[str, tuple[str, dict]] = {
    "tiny": ("YumeWorld-v0", {"model": "tiny"}),
    "procedural": ("YumeProcedural-v0", {}),
    "yume": ("YumeWorld-v0", {"model": "yume-1.5-5b"}),
}
WORLDS = tuple(WORLD_ENVS)
MAX_SNAPSHOTS = 64


class PlayError(ValueError):
    """A request the world cannot carry out (the message goes to the page; nothing changed)."""


@dataclass
class WorldConfig:
    """What every tab's world is made of (one model, loaded once, shared by all tabs).

    A setting left at ``None`` is the world's default; a setting the world's spec does not take
    (the procedural world has no model: no ``checkpoint``, ``device``, ``dtype``, ``steps`` or
    ``decode``) is refused, naming it.
    """

    world: str = "tiny"
    checkpoint: str | None = None
    device: str | None = None
    dtype: str | None = None
    resolution: tuple[int, int] | None = None
    steps: int | None = None
    decode: str | None = None

    def __post_init__(self):
        if self.world not in WORLD_ENVS:
            raise ValueError(f"world: got {self.world!r}; accepted: {', '.join(WORLDS)}")
        if self.world == "yume" and self.checkpoint is None:
            raise ValueError("checkpoint: world 'yume' needs the official Yume-5B-720P folder (--checkpoint)")
        self.env_kwargs()  # refuses settings the world does not take, now rather than in a tab

    def env_kwargs(self) -> dict:
        """The keywords of :attr:`env_id` that build this world."""
        env_id, kw = WORLD_ENVS[self.world]
        return {**kw, **settings_for(env_id, self.world, {n: getattr(self, n) for n in SETTINGS})}

    @property
    def env_id(self) -> str:
        return WORLD_ENVS[self.world][0]

    def make_env(self) -> gym.Env:
        # the env itself (no checker wrappers): a tab drives it directly; the model is shared (model_cache)
        return gym.make(self.env_id, disable_env_checker=True, **self.env_kwargs()).unwrapped


@dataclass
class Block:
    """What the page shows after a reset, step or rewind."""

    frames: list[np.ndarray]
    caption: str
    event: str
    block_index: int
    timing: dict[str, float]
    pose: dict | None = None
    extra: dict = field(default_factory=dict)

    def meta(self) -> dict:
        return {
            "caption": self.caption,
            "event": self.event,
            "block_index": self.block_index,
            "timing": {k: round(float(v), 2) for k, v in self.timing.items()},
            "pose": self.pose,
            "frames": len(self.frames),
            **self.extra,
        }

    def png_frames(self) -> list[bytes]:
        return [png_bytes(frame) for frame in self.frames]


@dataclass
class _Snapshot:
    world: object
    log_length: int
    frame: np.ndarray
    caption: str
    event: str
    block_index: int
    pose: dict | None


class PlaySession:
    """One world played from one tab."""

    def __init__(self, world_id: str, config: WorldConfig, out_dir: Path, record_dataset: bool = False):
        self.world_id = world_id
        self.config = config
        self.out_dir = Path(out_dir)
        env = config.make_env()
        if record_dataset:
            from yume_env.datasets import EpisodeRecorder

            env = EpisodeRecorder(env)
        self.env = env
        self.recorder = env if record_dataset else None
        self.seed: int | None = None
        self.start_image: Path | None = None  # the uploaded start image, saved as PNG
        self.log: list[ScriptStep] = []  # the actions since reset, along the kept branch
        self.snapshots: dict[int, _Snapshot] = {}
        self._next_snapshot = 1
        self._current: _Snapshot | None = None  # what the page shows now (for forks)
        self._recording: list[tuple[int, np.ndarray]] | None = None  # (block index, frames)
        self._recordings = 0

    @property
    def fps(self) -> int:
        return int(self.env.metadata.get("render_fps", 16))

    @property
    def resolution(self) -> tuple[int, int]:
        return tuple(self.env.unwrapped.worlds.resolution)

    # ------------------------------------------------------------------------------- actions
    def reset(self, seed: int, image: bytes | None) -> Block:
        options = None
        array = None
        if image is not None:
            worlds = self.env.unwrapped.worlds
            try:  # a world that takes no start image (the procedural one) says so before any decoding
                worlds.check_reset(np.zeros((*worlds.resolution, 3), np.uint8))
            except (TypeError, ValueError) as exc:
                raise PlayError(str(exc)) from None
            array = _decode_image(image)
            options = {"image": array}
        t0 = time.perf_counter()
        obs, info = self.env.reset(seed=seed, options=options)
        ms = (time.perf_counter() - t0) * 1e3
        self.seed = seed
        self.start_image = None if array is None else self._save_start_image(array)
        self.log = []
        self.snapshots = {}
        block = self._block(obs, info, ms, reset=True)
        if self._recording is not None:
            self._recording = [(0, block.frames[-1:])]
        return block

    def step(self, move: int, look: int, event: str) -> Block:
        if self.seed is None:
            raise PlayError("step: the world has not started; press New world (reset) first")
        t0 = time.perf_counter()
        action = Action(move, look, event)
        obs, _, _, _, info = self.env.step(action.as_dict())
        ms = (time.perf_counter() - t0) * 1e3
        self.log.append(ScriptStep.from_action(action))
        block = self._block(obs, info, ms)
        if self._recording is not None:
            self._recording.append((block.block_index, block.frames))
        return block

    def fork(self) -> int:
        if self._current is None:
            raise PlayError("fork: the world has not started; press New world (reset) first")
        if len(self.snapshots) >= MAX_SNAPSHOTS:
            raise PlayError(
                f"fork: this world has {MAX_SNAPSHOTS} snapshots; accepted: at most {MAX_SNAPSHOTS}"
            )
        snap_id = self._next_snapshot
        cur = self._current
        self.snapshots[snap_id] = _Snapshot(
            self.env.unwrapped.snapshot(),
            len(self.log),
            cur.frame,
            cur.caption,
            cur.event,
            cur.block_index,
            cur.pose,
        )
        self._next_snapshot += 1
        return snap_id

    def rewind(self, snap_id: int) -> Block:
        snap = self.snapshots.get(snap_id)
        if snap is None:
            known = ", ".join(map(str, self.snapshots)) or "none yet (fork first)"
            raise PlayError(f"snapshot: got {snap_id}; accepted: {known}")
        self.env.unwrapped.restore(snap.world)
        self.log = self.log[: snap.log_length]
        if self.recorder is not None:
            self.recorder.rewind_current(snap.log_length)
        self._current = snap
        if self._recording is not None:
            kept = [(b, f) for b, f in self._recording if b <= snap.block_index]
            self._recording = kept or [(snap.block_index, [snap.frame])]
        return Block(
            [snap.frame], snap.caption, snap.event, snap.block_index, {}, snap.pose, {"snapshot": snap_id}
        )

    def record(self, on: bool) -> dict:
        if on:
            if self._current is None:
                raise PlayError("record: the world has not started; press New world (reset) first")
            if self._recording is None:
                self._recording = [(self._current.block_index, [self._current.frame])]
            return {"on": True}
        if self._recording is None:
            raise PlayError("record: not recording; accepted: {'type': 'record', 'on': true} first")
        paths = self._save_recording()
        self._recording = None
        return {"on": False, **{k: str(v) for k, v in paths.items()}}

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.finish_episode()
        self.env.close()

    # ------------------------------------------------------------------------------- helpers
    def _block(self, obs, info, ms: float, reset: bool = False) -> Block:
        frames = _frames_of(obs)
        if reset and frames.shape[0] > 1 and (frames == frames[:1]).all():
            frames = frames[:1]  # an image reset repeats the start image: show it once
        timing = {"step_ms": ms}
        t = info.get("timing")
        if t is not None:
            timing.update(t.as_dict())
        if "render_ms" in info:
            timing["render_ms"] = float(info["render_ms"])
        pose = None
        if "position" in info:
            pose = {
                "position": [round(float(v), 4) for v in np.asarray(info["position"])[-1]],
                "yaw": round(float(np.asarray(info["yaw"])[-1]), 4),
                "pitch": round(float(np.asarray(info["pitch"])[-1]), 4),
            }
        block_index = int(info.get("block_index", 0))
        caption = str(info.get("caption", ""))
        event = str(info.get("event", ""))
        block = Block(list(frames), caption, event, block_index, timing, pose, {"seed": self.seed})
        self._current = _Snapshot(None, len(self.log), frames[-1], caption, event, block_index, pose)
        return block

    def _save_start_image(self, array: np.ndarray) -> Path:
        from PIL import Image

        sha = hashlib.sha256(array.tobytes()).hexdigest()[:16]
        path = self.out_dir / "start-images" / f"{sha}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            Image.fromarray(array).save(path)
        return path

    def _save_recording(self) -> dict[str, Path]:
        from yume_env.media import save_video

        self._recordings += 1
        stem = self.out_dir / f"play-{self.world_id}-{self._recordings}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        frames = np.concatenate([np.asarray(f) for _, f in self._recording])
        video = save_video(stem.with_suffix(".mp4"), frames, fps=self.fps)
        first, last = self._recording[0][0], self._recording[-1][0]
        script = stem.with_suffix(".txt")
        script.write_text(self._script_text(first, last), encoding="utf-8")
        return {"video": video, "script": script}

    def _script_text(self, first: int, last: int) -> str:
        cfg = self.config
        lines = [f"# yume-world play: world {cfg.world}, seed {self.seed}, blocks 1..{len(self.log)}"]
        lines.append(f"# the video {first and f'starts at block {first} and ' or ''}ends at block {last}")
        cmd = ["yume-world record", f"--seed {self.seed}", "--script THIS_FILE"]
        if cfg.world == "procedural":  # the city starts from its seed alone
            cmd.append("--model procedural")
        else:
            from yume_env.envs.yume_world import DEFAULT_IMAGE

            cmd.append(f"--image {self.start_image or DEFAULT_IMAGE}")
        if cfg.world == "yume":
            cmd.append(f"--model yume-1.5-5b --checkpoint {cfg.checkpoint}")
        for flag, value in (
            ("--resolution", cfg.resolution),
            ("--steps", cfg.steps),
            ("--device", cfg.device),
            ("--dtype", cfg.dtype),
        ):
            if value is not None:
                value = "x".join(map(str, value)) if flag == "--resolution" else value
                cmd.append(f"{flag} {value}")
        if cfg.decode not in (None, "block"):
            cmd.append(f"--decode {cfg.decode}")
        lines.append("# replay: " + " ".join(cmd))
        lines += [step.as_line() for step in self.log]  # quoted where plain text would read otherwise
        return "\n".join(lines) + "\n"


def png_bytes(frame: np.ndarray) -> bytes:
    """A frame as PNG (lossless: the page shows the world's pixels exactly; fast compression)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _decode_image(data: bytes) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > 64 * 2**20:
                raise PlayError(f"image: got {im.width}x{im.height} pixels; accepted: at most 64 megapixels")
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise PlayError(
            "image: the upload is not an image PIL can read; accepted: PNG, JPEG, WebP, ..."
        ) from None


def _frames_of(obs) -> np.ndarray:
    arr = np.asarray(obs)
    if arr.ndim == 4 and arr.shape[-1] == 3 and arr.dtype == np.uint8:
        return arr
    raise PlayError(f"observation: got shape {arr.shape}; the page needs obs_mode='frames'")
