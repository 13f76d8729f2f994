"""``ProceduralWorld``: one procedural city world's state and stepping, without Gymnasium.

The world holds the scene, the camera pose, the event effect levels, the balloon, the random
generator and the counters; :meth:`ProceduralWorld.step` moves the camera by one block of frames
and renders them, and returns the frames with the camera ground truth. The Gymnasium env
(:class:`yume_env.envs.procedural_env.YumeProceduralEnv`) and the batched backend
(:class:`yume_env.procedural.worlds.ProceduralWorlds`) are both thin layers over it.

A world's state is one dict that a step replaces (never changes in place), so a failed step or a
:meth:`~ProceduralWorld.rollback` leaves the world exactly as it was. :meth:`~ProceduralWorld.snapshot`
copies that dict out as a versioned snapshot (``version``, ``rng``, ``resolution`` plus the state).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from yume_env.actions import Action, check_event
from yume_env.procedural import camera as cam
from yume_env.procedural import events as ev
from yume_env.procedural.renderer import Renderer
from yume_env.procedural.scene import BALLOON, Scene
from yume_env.procedural.spec import ProceduralSpec, check_number, check_resolution, spec_of
from yume_env.procedural.timing import Milliseconds, RenderTiming
from yume_env.world.captions import render_caption

__all__ = [
    "STATE_VERSION",
    "ProceduralBlock",
    "ProceduralMark",
    "ProceduralWorld",
    "check_number",
    "check_resolution",
]

#: Version of the snapshot dicts (:meth:`ProceduralWorld.snapshot`).
STATE_VERSION = 1
#: Balloon radius (metres), height above the eye (metres) and preferred distance ahead (metres).
_BALLOON = (0.8, 0.9, 6.0)
#: Keys of a snapshot; ``last_frames`` is optional (snapshots taken before it existed lack it).
_SNAPSHOT_KEYS = frozenset(
    {
        "version",
        "rng",
        "resolution",
        "scene_seed",
        "pose",
        "levels",
        "balloon",
        "event",
        "block_index",
        "frame_count",
        "start_image",
        "last_frame",
    }
)


# ------------------------------------------------------------------------------------------ world
@dataclass
class ProceduralBlock:
    """What a reset or step returns: the block's frames and its ground truth.

    ``frames`` is ``(T, H, W, 3)`` uint8 (after a reset, ``T`` copies of the start frame) and
    belongs to the caller. ``info`` holds ``caption``, ``event``, ``event_applied``, ``effects``,
    ``block_index``, ``frames``, ``seed``, ``collided``, ``timing`` (a
    :class:`~yume_env.procedural.timing.RenderTiming`), ``render_ms`` (deprecated, a
    :class:`~yume_env.procedural.timing.Milliseconds`) and the per-frame camera ``position``
    ``(T, 3)``, ``yaw`` ``(T,)`` and ``pitch`` ``(T,)``.
    """

    frames: np.ndarray
    info: dict


@dataclass(frozen=True)
class ProceduralMark:
    """A world's state and generator position at one moment (see :meth:`ProceduralWorld.mark`)."""

    state: dict | None
    scene: Scene | None
    rng: np.random.Generator | None
    rng_state: dict | None


class ProceduralWorld:
    """One procedural city world: its state, its stepping, snapshots (no Gymnasium, no spaces).

    Built from a :class:`~yume_env.procedural.spec.ProceduralSpec` (where every argument, its
    default and its check are documented), or from that spec's keyword arguments:
    ``ProceduralWorld(resolution=(48, 80))`` is ``ProceduralWorld(ProceduralSpec(resolution=(48, 80)))``.
    """

    def __init__(self, spec: ProceduralSpec | None = None, /, **kwargs):
        self.spec = spec_of(spec, kwargs)
        self.height, self.width = self.spec.resolution
        for name in ("frames_per_block", "move_speed", "turn_speed", "tilt_speed", "pitch_limit", "fov_deg"):
            setattr(self, name, getattr(self.spec, name))
        self.rng: np.random.Generator | None = None
        self._renderer = Renderer(
            self.height, self.width, fov_deg=self.fov_deg, threads=self.spec.render_threads
        )
        self._scene: Scene | None = None
        self._state: dict | None = None

    # ---- what the world is now -------------------------------------------------------------------
    @property
    def resolution(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def is_reset(self) -> bool:
        """Whether the world has a state (after :meth:`reset` or :meth:`restore`)."""
        return self._state is not None

    @property
    def block_index(self) -> int:
        """Blocks stepped since the reset (0 right after it, and before any reset)."""
        return 0 if self._state is None else self._state["block_index"]

    def start_image(self) -> np.ndarray:
        """The episode's first frame, ``(H, W, 3)`` uint8 (a copy)."""
        return self._require("start_image")["start_image"].copy()

    def last_frame(self) -> np.ndarray:
        """The newest frame, ``(H, W, 3)`` uint8 (a copy)."""
        return self._require("last_frame")["last_frame"].copy()

    def last_frames(self) -> np.ndarray:
        """The newest block's frames, ``(T, H, W, 3)`` uint8 (a copy; ``T`` copies of the start
        frame right after a reset)."""
        return self._require("last_frames")["last_frames"].copy()

    # ---- reset / step ----------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, event: str = "", *, rng: np.random.Generator | None = None
    ) -> ProceduralBlock:
        """Start a new episode.

        ``seed`` seeds the world's generator (as Gymnasium seeds ``np_random``; ``None`` keeps the
        current generator, or draws fresh entropy the first time); ``rng`` instead continues from a
        given generator (the env passes its ``np_random``). The generator draws the scene seed, so
        every seed is a different neighbourhood. ``event`` starts with that event fully applied.
        Nothing changes if this raises.
        """
        text = check_event(event, "event")
        if rng is not None and seed is not None:
            raise ValueError("seed/rng: got both; accepted: at most one of them")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng: got {type(rng).__name__}; accepted: a numpy Generator or None")
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
        ):
            raise ValueError(f"seed: got {seed!r}; accepted: an integer >= 0 or None")
        if rng is None:
            rng = self.rng if seed is None and self.rng is not None else _new_generator(seed)
        rng_state = copy.deepcopy(rng.bit_generator.state)
        try:
            scene_seed = int(rng.integers(0, 2**31 - 1))
            scene = (
                self._scene
                if self._scene is not None and self._scene.seed == scene_seed
                else Scene(scene_seed)
            )
            x, z, yaw, pitch = scene.start_pose()
            pose = np.array([x, cam.EYE_HEIGHT, z, yaw, pitch], np.float64)
            applied = ev.match_event(text)
            levels = ev.target_levels(ev.initial_levels(), applied)
            balloon = (
                self._place_balloon(rng, scene, pose)
                if applied is not None and applied.name == "balloon"
                else None
            )
            t0 = time.perf_counter()
            frame = self._render(scene, pose[None], levels[None], balloon, np.zeros(1, np.int64))[0]
            ms = (time.perf_counter() - t0) * 1e3
        except BaseException:
            rng.bit_generator.state = rng_state  # a failed reset leaves the generator as it was
            raise
        T = self.frames_per_block
        frames = np.repeat(frame[None], T, axis=0)
        self.rng = rng
        self._scene = scene
        self._state = {
            "scene_seed": scene_seed,
            "pose": pose,
            "levels": levels,
            "balloon": balloon,
            "event": text.strip(),
            "block_index": 0,
            "frame_count": 0,
            "start_image": frame,
            "last_frame": frame,
            "last_frames": frames.copy(),
        }
        poses = np.repeat(pose[None], T, axis=0)
        info = self._info(
            render_caption(0, 0, text), text.strip(), applied, poses, False, ms, 0, levels, scene_seed
        )
        return ProceduralBlock(frames, info)

    def step(self, move: int, look: int, event: str = "") -> ProceduralBlock:
        """Move and render one block: ``move`` / ``look`` are indices into
        :data:`yume_env.actions.MOVES` / :data:`~yume_env.actions.LOOKS`; ``event`` is free text
        (``""`` keeps the current event). Nothing changes if this raises."""
        st = self._require("step")
        move, look, text = Action(move, look, event).as_tuple()  # checked: errors name the field
        rng_state = copy.deepcopy(self.rng.bit_generator.state)
        try:
            block, new_state = self._advance(st, move, look, text)
        except BaseException:
            self.rng.bit_generator.state = rng_state  # the balloon's side may have been drawn
            raise
        self._state = new_state
        return block

    # ---- snapshots and marks -----------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The whole world state (pose, effects, balloon, event text, RNG, counters, frames) as a
        versioned dict (``version``, ``rng``, ``resolution`` and the state's keys)."""
        state = copy.deepcopy(self._require("snapshot"))
        state["version"] = STATE_VERSION
        state["rng"] = copy.deepcopy(self.rng.bit_generator.state)
        state["resolution"] = (self.height, self.width)
        return state

    def restore(self, state: dict) -> None:
        """Become a :meth:`snapshot` (of this world or one built with the same resolution).

        The snapshot stays reusable. Nothing changes if this raises."""
        if not isinstance(state, Mapping) or not _SNAPSHOT_KEYS <= set(state):
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"state: got {got}; accepted: a dict returned by snapshot() (keys {sorted(_SNAPSHOT_KEYS)})"
            )
        if state["version"] != STATE_VERSION:
            raise ValueError(f"state['version']: got {state['version']!r}; accepted: {STATE_VERSION}")
        if tuple(state["resolution"]) != (self.height, self.width):
            raise ValueError(
                f"state['resolution']: got {tuple(state['resolution'])}; accepted: this world's {(self.height, self.width)}"
            )
        rng = _new_generator(0)
        rng.bit_generator.state = copy.deepcopy(state["rng"])
        new = {k: copy.deepcopy(state[k]) for k in _SNAPSHOT_KEYS - {"version", "rng", "resolution"}}
        last = state.get("last_frames")
        if last is None:
            last = np.repeat(new["last_frame"][None], self.frames_per_block, axis=0)
        new["last_frames"] = np.array(last, copy=True)
        if self._scene is None or self._scene.seed != new["scene_seed"]:
            self._scene = Scene(new["scene_seed"])
        self.rng = rng
        self._state = new

    def mark(self) -> ProceduralMark:
        """A cheap handle on the world as it is now, for :meth:`rollback` (nothing big is copied:
        steps replace the state dict instead of changing it)."""
        rng_state = None if self.rng is None else copy.deepcopy(self.rng.bit_generator.state)
        return ProceduralMark(self._state, self._scene, self.rng, rng_state)

    def rollback(self, mark: ProceduralMark) -> None:
        """Put the world back to the moment of :meth:`mark` (e.g. when a caller's reward fails)."""
        if not isinstance(mark, ProceduralMark):
            raise TypeError(f"mark: got {type(mark).__name__}; accepted: a ProceduralMark from mark()")
        if mark.rng is not None:
            mark.rng.bit_generator.state = copy.deepcopy(mark.rng_state)
        self.rng, self._scene, self._state = mark.rng, mark.scene, mark.state

    def close(self) -> None:
        """Stop the render threads and forget the world (:meth:`reset` or :meth:`restore` starts it again)."""
        self._renderer.close()
        self._state = None

    # ---- internals ---------------------------------------------------------------------------------
    def _require(self, what: str) -> dict:
        if self._state is None:
            raise RuntimeError(f"{what}: the world has not been reset; call reset(seed=...) first")
        return self._state

    def _advance(self, st: dict, move: int, look: int, text: str) -> tuple[ProceduralBlock, dict]:
        """One block from state ``st``: the block and the new state (``st`` itself is not changed)."""
        scene = self._scene
        T = self.frames_per_block
        applied = ev.match_event(text)
        current = st["event"] if text == "" else text.strip()
        start = st["levels"]
        target = ev.target_levels(start, applied)
        balloon = st["balloon"]
        if (
            applied is not None
            and applied.name == "balloon"
            and (balloon is None or ev.level(start, "balloon") == 0)
        ):
            balloon = self._place_balloon(self.rng, scene, st["pose"])
        if balloon is None:
            target[ev.CHANNELS.index("balloon")] = 0.0
        pose0 = st["pose"]
        fp = scene.colliders_near(
            pose0[0], pose0[2], self.move_speed + 4.0, cam.BODY_RADIUS, cam.EYE_HEIGHT + 0.3
        )
        poses, collided = cam.move_block(
            pose0,
            move,
            look,
            T,
            self.move_speed,
            self.turn_speed,
            self.tilt_speed,
            self.pitch_limit,
            cam.box_blocker(fp),
        )
        ramp = ev.level_ramp(start, target, T)
        t0 = time.perf_counter()
        frames = self._render(scene, poses, ramp, balloon, st["frame_count"] + 1 + np.arange(T))
        ms = (time.perf_counter() - t0) * 1e3
        info = self._info(
            render_caption(move, look, current),
            current,
            applied,
            poses,
            collided,
            ms,
            st["block_index"] + 1,
            target,
            st["scene_seed"],
        )
        if ev.level(target, "balloon") == 0:
            balloon = None
        new_state = {
            **st,
            "pose": poses[-1].copy(),
            "levels": target,
            "balloon": balloon,
            "event": current,
            "block_index": st["block_index"] + 1,
            "frame_count": st["frame_count"] + T,
            "last_frame": frames[-1].copy(),
            "last_frames": frames.copy(),
        }
        return ProceduralBlock(frames, info), new_state

    def _place_balloon(self, rng: np.random.Generator, scene: Scene, pose: np.ndarray) -> np.ndarray:
        """Balloon centre ahead of ``pose``: up to 6 m ahead, nearer when a wall is in the way."""
        radius, above, ahead = _BALLOON
        fwd, right = cam.heading(pose[3])
        side = float(rng.uniform(-0.6, 0.6))
        fp = scene.colliders_near(pose[0], pose[2], ahead + 2.0, radius + 0.3, 1e9)
        blocked = cam.box_blocker(fp)
        dist = ahead
        while dist > 2.0:
            x, z = pose[[0, 2]] + fwd * dist + right * side
            if not blocked(x, z):
                break
            dist -= 0.5
        x, z = pose[[0, 2]] + fwd * dist + right * side
        return np.array([x, cam.EYE_HEIGHT + above, z], np.float64)

    def _render(self, scene, poses, levels, balloon, frame_ids) -> np.ndarray:
        atms = [ev.atmosphere(lv, scene.sun_azimuth) for lv in levels]
        extra = None
        if balloon is not None:
            radius = _BALLOON[0] * levels[:, ev.CHANNELS.index("balloon")]
            spheres = np.concatenate([np.broadcast_to(balloon, (len(levels), 3)), radius[:, None]], axis=1)
            extra = (spheres[:, None, :], np.array([BALLOON]), np.array([[0.86, 0.06, 0.05]]))
        return self._renderer.render(scene, poses, atms, frame_ids, extra)

    def _info(
        self,
        caption: str,
        current: str,
        applied: ev.Event | None,
        poses: np.ndarray,
        collided: bool,
        ms: float,
        block_index: int,
        levels: np.ndarray,
        scene_seed: int,
    ) -> dict:
        return {
            "caption": caption,
            "event": current,
            "event_applied": None if applied is None else applied.name,
            "effects": {name: float(v) for name, v in zip(ev.CHANNELS, levels)},
            "block_index": block_index,
            "frames": self.frames_per_block,
            "seed": scene_seed,
            "collided": bool(collided),
            "timing": RenderTiming(ms),
            "render_ms": Milliseconds(ms),
            "position": poses[:, :3].copy(),
            "yaw": poses[:, 3].copy(),
            "pitch": poses[:, 4].copy(),
        }


def _new_generator(seed: int | None) -> np.random.Generator:
    """A generator seeded exactly as Gymnasium seeds ``np_random`` (PCG64 over a SeedSequence)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
