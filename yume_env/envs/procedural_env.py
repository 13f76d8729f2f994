"""``YumeProcedural-v0``: a procedural first-person city with exact ground truth, same spaces as YumeWorld-v0."""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from yume_env.envs.spaces import action_space, frames_space, last_frame_space
from yume_env.envs.validation import check_event
from yume_env.envs.validation import parse_action as _parse_action
from yume_env.procedural import camera as cam
from yume_env.procedural import events as ev
from yume_env.procedural.renderer import Renderer
from yume_env.procedural.scene import BALLOON, Scene
from yume_env.world.captions import render_caption as _render_caption

OBS_MODES = ("frames", "last_frame")
_STATE_VERSION = 1
#: Balloon radius (metres), height above the eye (metres) and preferred distance ahead (metres).
_BALLOON = (0.8, 0.9, 6.0)


class Milliseconds(float):
    """A duration in milliseconds. Durations measure the machine, not the world, so any two of them
    compare equal: infos of identical worlds are equal even when one step ran slower."""

    def __eq__(self, other):
        if isinstance(other, Milliseconds):
            return True
        return float.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = float.__hash__


def render_caption(move: int, look: int, event: str) -> str:
    """The block caption, rendered exactly as YumeWorld-v0 renders it (official 1.5 style)."""
    return _render_caption(move, look, event)


def parse_action(action) -> tuple[int, int, str]:
    """``(move, look, event)`` from an action dict; ``event`` may be left out (same as ``""``).

    .. deprecated:: use :meth:`yume_env.actions.Action.parse` (an :class:`~yume_env.actions.Action`).
    """
    warnings.warn(
        "yume_env.envs.procedural_env.parse_action is deprecated; use yume_env.actions.Action.parse(action)",
        DeprecationWarning,
        stacklevel=2,
    )
    return _parse_action(action).as_tuple()


def _number(name: str, value, lo: float, hi: float, *, integer: bool = False, lo_open: bool = False):
    kind = "an integer" if integer else "a number"
    ok_type = (
        isinstance(value, int | np.integer)
        if integer
        else isinstance(value, int | float | np.integer | np.floating)
    )
    if isinstance(value, bool | np.bool_) or not ok_type:
        raise TypeError(f"{name}: got {value!r} ({type(value).__name__}); accepted: {kind} in {lo}..{hi}")
    v = int(value) if integer else float(value)
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        rng = f"greater than {lo} and at most {hi}" if lo_open else f"in {lo}..{hi}"
        raise ValueError(f"{name}: got {value!r}; accepted: {kind} {rng}")
    return v


class YumeProceduralEnv(gym.Env):
    """A procedural first-person city, rendered on the CPU, with exact ground truth: a drop-in
    stand-in for ``YumeWorld-v0`` (same action space, same observations) for tests, baselines,
    data generation and measuring how well a generated world follows its actions.

    ## Description

    The camera stands at eye height (1.7 m) in an endless city on a street grid: asphalt roads
    with markings and zebra crossings, sidewalks with street trees and lamp posts, and blocks of
    buildings with windows, parks with trees and hedges, plazas with pillars and monuments, and
    yards with containers. Sky with sun and clouds, directional sunlight, ambient sky light and
    distance fog. Every seed is a different neighbourhood, sun direction and start pose; the same
    seed and actions always give the same frames. Free-text events (sunset, fog, rain, a red
    balloon, ...) change the world smoothly within a block, see *Events*. Rendering is numpy on
    the CPU (no model, no GPU): a 29-frame 96x160 block takes about 0.15 s on two cores (about
    0.3 s on one).

    ## Action Space

    ``Dict(move=Discrete(9), look=Discrete(9), event=Text(0..300))``, exactly
    :func:`yume_env.envs.spaces.action_space` (index meanings in :mod:`yume_env.actions`):

    | index | move | look |
    |---|---|---|
    | 0 | None (stand still) | · (camera still) |
    | 1 | W forward | → pan right |
    | 2 | A strafe left | ← pan left |
    | 3 | S back | ↑ tilt up |
    | 4 | D strafe right | ↓ tilt down |
    | 5 | W+A | ↑→ |
    | 6 | W+D | ↑← |
    | 7 | S+A | ↓→ |
    | 8 | S+D | ↓← |

    One step is one block of ``frames_per_block`` frames. The motion is spread evenly over the
    block: each frame moves ``move_speed / T`` metres and turns ``turn_speed / T`` degrees (tilts
    ``tilt_speed / T``), so frame ``T`` of a block has moved the full amount and motion continues
    seamlessly into the next block. Movement is horizontal and relative to the current heading;
    diagonal keys move at the same speed as single keys; moving while panning follows an arc.
    Pitch is clamped to ``[-pitch_limit, +pitch_limit]`` (default 45 degrees). The camera cannot
    walk through buildings, trunks, pillars, hedges or containers: it slides along them, or stops.

    ``event`` may be left out of the dict (same as ``""``). An empty string keeps the current
    event; a string of only spaces clears the event text (the world keeps its look).

    ## Observation Space

    - ``obs_mode="frames"`` (default): ``Box(0, 255, (T, H, W, 3), uint8)``, the block's frames,
      ``T = frames_per_block``. ``reset`` returns ``T`` identical copies of the start frame, so the
      observation shape never changes.
    - ``obs_mode="last_frame"``: ``Box(0, 255, (H, W, 3), uint8)``, the newest frame only.

    ## Rewards

    0 by default: the world has no built-in goal. Pass ``reward_fn(obs, action, info) -> float``
    to score each block (it sees the ground truth in ``info``).

    ## Starting State

    Standing on a road, looking along it (heading jittered by up to 8 degrees), pitch 0, clear
    day. ``reset(options={"event": text})`` starts with an event already fully applied.

    ## Episode End

    Never terminates. Truncates after ``max_episode_steps`` blocks when one is set (by the
    constructor or ``gym.make``); stepping after that raises ``gymnasium.error.ResetNeeded``.

    ## Arguments

    - ``resolution``: ``(H, W)`` in pixels, each 16..2048 (default ``(96, 160)``).
    - ``frames_per_block``: frames per step ``T``, 1..256 (default 29, the frames one Yume block
      decodes to; 32 matches YumeWorld-v0's seamless decoding).
    - ``obs_mode``: ``"frames"`` or ``"last_frame"``.
    - ``move_speed``: metres per block, 0..100 (default 3.0).
    - ``turn_speed``: pan in degrees per block, 0..180 (default 40.0).
    - ``tilt_speed``: tilt in degrees per block, 0..90 (default 20.0).
    - ``pitch_limit``: largest absolute pitch in degrees, 0..60 (default 45.0).
    - ``fov_deg``: horizontal field of view in degrees, 30..120 (default 80.0).
    - ``max_episode_steps``: truncate after this many steps (``None``: never).
    - ``reward_fn``: ``reward_fn(obs, action, info) -> float`` (default: reward 0).
    - ``render_mode``: ``None``, ``"rgb_array"`` (``render()`` returns the newest frame) or
      ``"rgb_array_list"`` (``render()`` returns every frame since the last ``render``/``reset`` as a
      list: the start frame, then each block's frames).
    - ``render_threads``: frames rendered in parallel (default: CPU cores, at most 4); the
      frames do not depend on it.

    ## Events

    The ``event`` text is matched case-insensitively against the catalog
    (:data:`yume_env.procedural.events.CATALOG`) in this order; the first match is applied and
    its effect ramps in smoothly over the block, complete on its last frame. Effects stack
    (fog at sunset). Text that matches nothing is accepted (it goes into the caption) and
    changes nothing visible. ``info["event_applied"]`` names the applied event or is ``None``.

    | event | canonical text | also matches | effect |
    |---|---|---|---|
    | ``clear`` | the weather clears | the fog lifts, it stops raining, the lights come back on | clear day again (the balloon stays) |
    | ``sunset`` | the sun sets | sunset, dusk, evening, twilight | low sun, orange sky, warm dim light |
    | ``lights_out`` | the lights go out | lights out, blackout, power cut | much darker: mean brightness under 40% of before |
    | ``night`` | night falls | night, moon, it gets dark | dark sky with stars, lit windows and lamps |
    | ``fog`` | fog rolls in | fog, mist, haze | thick grey fog, contrast drops |
    | ``rain`` | it starts to rain | rain, drizzle, downpour, thunder | overcast sky, duller light, rain streaks |
    | ``snow`` | it starts to snow | snow, blizzard, flurries | falling flakes, ground and roofs turn white |
    | ``balloon_pops`` | the balloon pops | the balloon flies away / bursts | the balloon shrinks away |
    | ``balloon`` | a red balloon appears | balloon | a red balloon, up to 6 m ahead at head height |

    ## Info

    ``caption`` (rendered by :func:`render_caption`), ``event`` (the current event text),
    ``event_applied`` (catalog event name or ``None``), ``effects`` (level 0..1 of each effect
    at the block's last frame), ``block_index`` (0 after reset), ``frames`` (``T``), ``seed``
    (the scene seed), ``collided`` (a wall stopped or deflected the motion), ``render_ms``, and
    the camera ground truth per frame: ``position`` ``(T, 3)`` metres (x east, y up, z north),
    ``yaw`` ``(T,)`` degrees clockwise from north, ``pitch`` ``(T,)`` degrees, up positive.

    ## Other methods

    ``start_image()`` is the episode's first frame (to start YumeWorld-v0 from the same place);
    ``snapshot()`` / ``restore(state)`` save and restore the whole world state (pose, effects,
    balloon, RNG, counters), so a world can be forked and replayed exactly.

    ## Version History

    - v0: first release.
    """

    metadata = {"render_modes": ["rgb_array", "rgb_array_list"], "render_fps": 16}

    def __init__(
        self,
        resolution: tuple[int, int] = (96, 160),
        frames_per_block: int = 29,
        obs_mode: str = "frames",
        move_speed: float = 3.0,
        turn_speed: float = 40.0,
        tilt_speed: float = 20.0,
        pitch_limit: float = 45.0,
        fov_deg: float = 80.0,
        max_episode_steps: int | None = None,
        reward_fn: Callable[[Any, dict, dict], float] | None = None,
        render_mode: str | None = None,
        render_threads: int | None = None,
    ):
        if (
            not isinstance(resolution, tuple | list)
            or len(resolution) != 2
            or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in resolution)
            or not all(16 <= int(v) <= 2048 for v in resolution)
        ):
            raise ValueError(
                f"resolution: got {resolution!r}; accepted: (height, width), integers in 16..2048"
            )
        self.height, self.width = (int(v) for v in resolution)
        self.frames_per_block = _number("frames_per_block", frames_per_block, 1, 256, integer=True)
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode: got {obs_mode!r}; accepted: {', '.join(OBS_MODES)}")
        self.obs_mode = obs_mode
        self.move_speed = _number("move_speed", move_speed, 0, 100)
        self.turn_speed = _number("turn_speed", turn_speed, 0, 180)
        self.tilt_speed = _number("tilt_speed", tilt_speed, 0, 90)
        self.pitch_limit = _number("pitch_limit", pitch_limit, 0, 60)
        fov = _number("fov_deg", fov_deg, 30, 120)
        if max_episode_steps is not None:
            max_episode_steps = _number("max_episode_steps", max_episode_steps, 1, 2**62, integer=True)
        self.max_episode_steps = max_episode_steps
        if reward_fn is not None and not callable(reward_fn):
            raise TypeError(
                f"reward_fn: got {type(reward_fn).__name__}; accepted: None or reward_fn(obs, action, info) -> float"
            )
        self.reward_fn = reward_fn
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode: got {render_mode!r}; accepted: None, 'rgb_array', 'rgb_array_list'"
            )
        self.render_mode = render_mode
        self._frame_list: list[np.ndarray] = []  # frames since the last render(), for "rgb_array_list"
        if render_threads is not None:
            render_threads = _number("render_threads", render_threads, 1, 64, integer=True)

        self.action_space = action_space()
        if obs_mode == "frames":
            self.observation_space = frames_space(self.frames_per_block, self.height, self.width)
        else:
            self.observation_space = last_frame_space(self.height, self.width)
        self._renderer = Renderer(self.height, self.width, fov_deg=fov, threads=render_threads)
        self._scene: Scene | None = None
        self._state: dict | None = None

    # ---- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(
                f"options: got {type(options).__name__}; accepted: None or a dict with optional 'event'"
            )
        options = dict(options or {})
        unknown = set(options) - {"event"}
        if unknown:
            raise ValueError(f"options: got unknown keys {sorted(map(str, unknown))}; accepted: 'event'")
        text = check_event(options.get("event", ""), "options['event']")
        super().reset(seed=seed)
        scene_seed = int(self.np_random.integers(0, 2**31 - 1))
        scene = (
            self._scene if self._scene is not None and self._scene.seed == scene_seed else Scene(scene_seed)
        )
        x, z, yaw, pitch = scene.start_pose()
        pose = np.array([x, cam.EYE_HEIGHT, z, yaw, pitch], np.float64)
        event = ev.match_event(text)
        levels = ev.target_levels(ev.initial_levels(), event)
        balloon = self._place_balloon(scene, pose) if event is not None and event.name == "balloon" else None
        t0 = time.perf_counter()
        frame = self._render(scene, pose[None], levels[None], balloon, np.zeros(1, np.int64))[0]
        ms = (time.perf_counter() - t0) * 1e3
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
        }
        self._frame_list = [frame.copy()] if self.render_mode == "rgb_array_list" else []
        T = self.frames_per_block
        poses = np.repeat(pose[None], T, axis=0)
        info = self._info(
            render_caption(0, 0, text), text.strip(), event, poses, False, ms, 0, levels, scene_seed
        )
        obs = np.repeat(frame[None], T, axis=0) if self.obs_mode == "frames" else frame.copy()
        return obs, info

    def step(self, action):
        if self._state is None:
            raise gym.error.ResetNeeded("step() called before reset(): call env.reset(seed=...) first")
        st = self._state
        if self.max_episode_steps is not None and st["block_index"] >= self.max_episode_steps:
            raise gym.error.ResetNeeded(
                f"step(): the episode was truncated after max_episode_steps={self.max_episode_steps} blocks; call reset()"
            )
        move, look, text = _parse_action(action).as_tuple()
        rng_state = copy.deepcopy(self.np_random.bit_generator.state)
        try:
            return self._step(st, move, look, text, action)
        except BaseException:
            self.np_random.bit_generator.state = rng_state  # a failed step leaves the world as it was
            raise

    def _step(self, st, move, look, text, action):
        scene = self._scene
        T = self.frames_per_block
        event = ev.match_event(text)
        current = st["event"] if text == "" else text.strip()
        start = st["levels"]
        target = ev.target_levels(start, event)
        balloon = st["balloon"]
        if (
            event is not None
            and event.name == "balloon"
            and (balloon is None or ev.level(start, "balloon") == 0)
        ):
            balloon = self._place_balloon(scene, st["pose"])
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
            event,
            poses,
            collided,
            ms,
            st["block_index"] + 1,
            target,
            st["scene_seed"],
        )
        obs = frames if self.obs_mode == "frames" else frames[-1].copy()
        reward = 0.0 if self.reward_fn is None else float(self.reward_fn(obs, action, info))
        # commit
        if ev.level(target, "balloon") == 0:
            balloon = None
        self._state = {
            **st,
            "pose": poses[-1].copy(),
            "levels": target,
            "balloon": balloon,
            "event": current,
            "block_index": st["block_index"] + 1,
            "frame_count": st["frame_count"] + T,
            "last_frame": frames[-1].copy(),
        }
        if self.render_mode == "rgb_array_list":
            self._frame_list.extend(f.copy() for f in frames)
        truncated = (
            self.max_episode_steps is not None and self._state["block_index"] >= self.max_episode_steps
        )
        return obs, reward, False, bool(truncated), info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; create the env with render_mode='rgb_array' to get frames"
            )
            return None
        if self._state is None:
            raise gym.error.ResetNeeded("render() called before reset(): call env.reset(seed=...) first")
        if self.render_mode == "rgb_array_list":
            frames, self._frame_list = self._frame_list, []
            return frames
        return self._state["last_frame"].copy()

    def close(self):
        self._renderer.close()
        super().close()

    # ---- extras --------------------------------------------------------------------------------
    def start_image(self) -> np.ndarray:
        """The episode's first frame, ``(H, W, 3)`` uint8 (use it to start YumeWorld-v0 here)."""
        if self._state is None:
            raise gym.error.ResetNeeded("start_image() called before reset(): call env.reset(seed=...) first")
        return self._state["start_image"].copy()

    def snapshot(self) -> dict:
        """The whole world state (pose, effects, balloon, event text, RNG, counters, frames) as a dict."""
        if self._state is None:
            raise gym.error.ResetNeeded("snapshot() called before reset(): call env.reset(seed=...) first")
        state = copy.deepcopy(self._state)
        state["version"] = _STATE_VERSION
        state["rng"] = copy.deepcopy(self.np_random.bit_generator.state)
        state["resolution"] = (self.height, self.width)
        return state

    def restore(self, state: dict) -> None:
        """Go back to a :meth:`snapshot` (of this env or one built with the same resolution)."""
        need = {
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
        if not isinstance(state, Mapping) or not need <= set(state):
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"state: got {got}; accepted: a dict returned by snapshot() (keys {sorted(need)})"
            )
        if state["version"] != _STATE_VERSION:
            raise ValueError(f"state['version']: got {state['version']!r}; accepted: {_STATE_VERSION}")
        if tuple(state["resolution"]) != (self.height, self.width):
            raise ValueError(
                f"state['resolution']: got {tuple(state['resolution'])}; accepted: this env's {(self.height, self.width)}"
            )
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = copy.deepcopy(state["rng"])
        new = {k: copy.deepcopy(state[k]) for k in need - {"version", "rng", "resolution"}}
        if self._scene is None or self._scene.seed != new["scene_seed"]:
            self._scene = Scene(new["scene_seed"])
        self._np_random = rng
        self._state = new

    # ---- internals -----------------------------------------------------------------------------
    def _place_balloon(self, scene: Scene, pose: np.ndarray) -> np.ndarray:
        """Balloon centre ahead of ``pose``: up to 6 m ahead, nearer when a wall is in the way."""
        radius, above, ahead = _BALLOON
        fwd, right = cam.heading(pose[3])
        side = float(self.np_random.uniform(-0.6, 0.6))
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

    def _info(self, caption, current, event, poses, collided, ms, block_index, levels, scene_seed) -> dict:
        return {
            "caption": caption,
            "event": current,
            "event_applied": None if event is None else event.name,
            "effects": {name: float(v) for name, v in zip(ev.CHANNELS, levels)},
            "block_index": block_index,
            "frames": self.frames_per_block,
            "seed": scene_seed,
            "collided": bool(collided),
            "render_ms": Milliseconds(ms),
            "position": poses[:, :3].copy(),
            "yaw": poses[:, 3].copy(),
            "pitch": poses[:, 4].copy(),
        }
