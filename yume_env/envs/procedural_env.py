"""``YumeProcedural-v0``: a procedural first-person city with exact ground truth, same spaces as YumeWorld-v0."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from yume_env.actions import check_event
from yume_env.envs.spaces import action_space, frames_space, last_frame_space
from yume_env.envs.validation import parse_action as _parse_action
from yume_env.procedural.timing import Milliseconds
from yume_env.procedural.world import ProceduralWorld, check_number
from yume_env.world.captions import render_caption as _render_caption

__all__ = ["OBS_MODES", "Milliseconds", "YumeProceduralEnv", "parse_action", "render_caption"]

OBS_MODES = ("frames", "last_frame")


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
    (the scene seed), ``collided`` (a wall stopped or deflected the motion), ``timing``
    (:class:`~yume_env.procedural.timing.RenderTiming`: ``timing.render_ms``, the milliseconds
    spent rendering; any two timings compare and hash equal, so the infos of identical worlds are
    equal), ``render_ms`` (deprecated: the same time as a :class:`Milliseconds`; ``float()`` of it
    still works, arithmetic warns; read ``timing.render_ms``), and
    the camera ground truth per frame: ``position`` ``(T, 3)`` metres (x east, y up, z north),
    ``yaw`` ``(T,)`` degrees clockwise from north, ``pitch`` ``(T,)`` degrees, up positive.

    ## Other methods

    ``start_image()`` is the episode's first frame (to start YumeWorld-v0 from the same place);
    ``snapshot()`` / ``restore(state)`` save and restore the whole world state (pose, effects,
    balloon, RNG, counters), so a world can be forked and replayed exactly. The world itself
    (state and stepping, no Gymnasium) is :class:`yume_env.procedural.world.ProceduralWorld`;
    :class:`yume_env.procedural.worlds.ProceduralWorlds` holds N of them behind the batched world
    protocol, with the same snapshots.

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
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode: got {obs_mode!r}; accepted: {', '.join(OBS_MODES)}")
        if max_episode_steps is not None:
            max_episode_steps = check_number("max_episode_steps", max_episode_steps, 1, 2**62, integer=True)
        if reward_fn is not None and not callable(reward_fn):
            raise TypeError(
                f"reward_fn: got {type(reward_fn).__name__}; accepted: None or reward_fn(obs, action, info) -> float"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode: got {render_mode!r}; accepted: None, 'rgb_array', 'rgb_array_list'"
            )
        # the world checks its own arguments (resolution, frames_per_block, speeds, fov, threads)
        self.world = ProceduralWorld(
            resolution,
            frames_per_block,
            move_speed,
            turn_speed,
            tilt_speed,
            pitch_limit,
            fov_deg,
            render_threads,
        )
        self.obs_mode = obs_mode
        self.max_episode_steps = max_episode_steps
        self.reward_fn = reward_fn
        self.render_mode = render_mode
        self._frame_list: list[np.ndarray] = []  # frames since the last render(), for "rgb_array_list"
        self.action_space = action_space()
        if obs_mode == "frames":
            self.observation_space = frames_space(self.frames_per_block, self.height, self.width)
        else:
            self.observation_space = last_frame_space(self.height, self.width)

    # the world's settings, read-only here
    height = property(lambda self: self.world.height, doc="Frame height in pixels.")
    width = property(lambda self: self.world.width, doc="Frame width in pixels.")
    frames_per_block = property(lambda self: self.world.frames_per_block, doc="Frames per step.")
    move_speed = property(lambda self: self.world.move_speed, doc="Metres per block.")
    turn_speed = property(lambda self: self.world.turn_speed, doc="Pan degrees per block.")
    tilt_speed = property(lambda self: self.world.tilt_speed, doc="Tilt degrees per block.")
    pitch_limit = property(lambda self: self.world.pitch_limit, doc="Largest absolute pitch (degrees).")

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
        block = self.world.reset(event=text, rng=self.np_random)  # the world draws from np_random
        start = block.frames[0]
        self._frame_list = [start.copy()] if self.render_mode == "rgb_array_list" else []
        obs = block.frames if self.obs_mode == "frames" else start.copy()
        return obs, block.info

    def step(self, action):
        if not self.world.is_reset:
            raise gym.error.ResetNeeded("step() called before reset(): call env.reset(seed=...) first")
        if self.max_episode_steps is not None and self.world.block_index >= self.max_episode_steps:
            raise gym.error.ResetNeeded(
                f"step(): the episode was truncated after max_episode_steps={self.max_episode_steps} blocks; call reset()"
            )
        move, look, text = _parse_action(action).as_tuple()
        mark = self.world.mark()
        try:
            block = self.world.step(move, look, text)
            frames, info = block.frames, block.info
            obs = frames if self.obs_mode == "frames" else frames[-1].copy()
            reward = 0.0 if self.reward_fn is None else float(self.reward_fn(obs, action, info))
        except BaseException:
            self.world.rollback(mark)  # a failed step (or reward) leaves the world as it was
            raise
        if self.render_mode == "rgb_array_list":
            self._frame_list.extend(f.copy() for f in frames)
        truncated = self.max_episode_steps is not None and self.world.block_index >= self.max_episode_steps
        return obs, reward, False, bool(truncated), info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; create the env with render_mode='rgb_array' to get frames"
            )
            return None
        if not self.world.is_reset:
            raise gym.error.ResetNeeded("render() called before reset(): call env.reset(seed=...) first")
        if self.render_mode == "rgb_array_list":
            frames, self._frame_list = self._frame_list, []
            return frames
        return self.world.last_frame()

    def close(self):
        self.world.close()
        super().close()

    # ---- extras --------------------------------------------------------------------------------
    def start_image(self) -> np.ndarray:
        """The episode's first frame, ``(H, W, 3)`` uint8 (use it to start YumeWorld-v0 here)."""
        if not self.world.is_reset:
            raise gym.error.ResetNeeded("start_image() called before reset(): call env.reset(seed=...) first")
        return self.world.start_image()

    def snapshot(self) -> dict:
        """The whole world state (pose, effects, balloon, event text, RNG, counters, frames) as a dict."""
        if not self.world.is_reset:
            raise gym.error.ResetNeeded("snapshot() called before reset(): call env.reset(seed=...) first")
        return self.world.snapshot()

    def restore(self, state: dict) -> None:
        """Go back to a :meth:`snapshot` (of this env or one built with the same resolution)."""
        self.world.restore(state)
        self._np_random = self.world.rng  # np_random continues where the snapshot's generator was
