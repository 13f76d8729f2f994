"""``YumeProcedural-v0``: a procedural first-person city with exact ground truth, same spaces as YumeWorld-v0.

The env is :class:`~yume_env.envs.world_env.WorldEnv` over a one-world
:class:`~yume_env.procedural.worlds.ProceduralWorlds` built from a
:class:`~yume_env.procedural.spec.ProceduralSpec`; this module only splits its keywords, maps the
``event`` reset option and keeps the procedural world's own snapshot format.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np

from yume_env.actions import check_event
from yume_env.envs.episodes import EpisodeSnapshot
from yume_env.envs.validation import check_options
from yume_env.envs.validation import parse_action as _parse_action
from yume_env.envs.world_env import WorldEnv
from yume_env.envs.yume_world import split_world_kwargs
from yume_env.procedural.spec import ProceduralSpec
from yume_env.procedural.timing import Milliseconds
from yume_env.procedural.world import ProceduralWorld
from yume_env.world.captions import render_caption as _render_caption

__all__ = [
    "EPISODE_ARGS",
    "OBS_MODES",
    "Milliseconds",
    "YumeProceduralEnv",
    "parse_action",
    "render_caption",
]

OBS_MODES = ("frames", "last_frame")
#: The episode keywords of ``YumeProcedural-v0`` (the rest build the world: a ProceduralSpec).
EPISODE_ARGS = ("obs_mode", "max_episode_steps", "reward_fn", "render_mode")


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


class YumeProceduralEnv(WorldEnv):
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

    - ``obs_mode``: ``"frames"`` or ``"last_frame"``.
    - ``max_episode_steps``: truncate after this many steps (``None``: never).
    - ``reward_fn``: ``reward_fn(obs, action, info) -> float`` (default: reward 0).
    - ``render_mode``: ``None``, ``"rgb_array"`` (``render()`` returns the newest frame) or
      ``"rgb_array_list"`` (``render()`` returns every frame since the last ``render``/``reset`` as a
      list: the start frame, then each block's frames).
    - every other keyword builds the world: ``resolution`` (``(H, W)``, default ``(96, 160)``),
      ``frames_per_block`` (``T``, default 29), ``move_speed`` (metres per block, default 3.0),
      ``turn_speed`` / ``tilt_speed`` (degrees per block, default 40.0 / 20.0), ``pitch_limit``
      (degrees, default 45.0), ``fov_deg`` (default 80.0), ``render_threads`` (frames rendered in
      parallel; the frames do not depend on it): ranges and checks are documented once, in
      :mod:`yume_env.procedural.spec` (:class:`~yume_env.procedural.spec.ProceduralSpec`). An
      unknown keyword raises ``TypeError`` listing the accepted ones.

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
    balloon, RNG, counters) as a versioned dict, so a world can be forked and replayed exactly
    (``restore`` also takes the :class:`~yume_env.envs.episodes.EpisodeSnapshot` of the generic
    envs). ``gym.make_vec("YumeProcedural-v0", num_envs=N)`` batches N of these worlds (world i is
    this env reset with ``seed + i``); with ``workers=W`` they are sharded over W Ray workers.

    The env is :class:`~yume_env.envs.world_env.WorldEnv` (the episode logic every Yume env
    shares) over :class:`yume_env.procedural.worlds.ProceduralWorlds` of one
    :class:`yume_env.procedural.world.ProceduralWorld` (state and stepping, no Gymnasium),
    built from a :class:`~yume_env.procedural.spec.ProceduralSpec`; ``reset(seed=s)`` gives
    the world seed ``s`` itself, so every seed is always the same neighbourhood.

    ## Version History

    - v0: first release.
    """

    metadata = {"render_modes": ["rgb_array", "rgb_array_list"], "render_fps": 16}

    def __init__(self, **kwargs):
        episode, self.world_spec = split_world_kwargs(kwargs, EPISODE_ARGS, ProceduralSpec)
        super().__init__(self.world_spec.build(1), **episode)

    # the world's settings, read-only here
    height = property(lambda self: self.world_spec.height, doc="Frame height in pixels.")
    width = property(lambda self: self.world_spec.width, doc="Frame width in pixels.")
    frames_per_block = property(lambda self: self.world_spec.frames_per_block, doc="Frames per step.")
    move_speed = property(lambda self: self.world_spec.move_speed, doc="Metres per block.")
    turn_speed = property(lambda self: self.world_spec.turn_speed, doc="Pan degrees per block.")
    tilt_speed = property(lambda self: self.world_spec.tilt_speed, doc="Tilt degrees per block.")
    pitch_limit = property(lambda self: self.world_spec.pitch_limit, doc="Largest absolute pitch (degrees).")

    @property
    def world(self) -> ProceduralWorld:
        """The one :class:`~yume_env.procedural.world.ProceduralWorld` (state and stepping)."""
        return self.worlds.worlds[0]

    # ---- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode; ``options={"event": text}`` starts with that event fully applied."""
        options = check_options(options, ("event",))
        text = check_event(options.get("event", ""), "options['event']")
        return super().reset(seed=seed, options={"prompt": text})

    def render(self):
        if self.render_mode is not None and not self._started():
            raise gym.error.ResetNeeded("render() called before reset(): call env.reset(seed=...) first")
        return super().render()

    # ---- extras --------------------------------------------------------------------------------
    def _started(self) -> bool:
        return self._episodes.last_obs[0] is not None

    def start_image(self) -> np.ndarray:
        """The episode's first frame, ``(H, W, 3)`` uint8 (use it to start YumeWorld-v0 here)."""
        if not self._started():
            raise gym.error.ResetNeeded("start_image() called before reset(): call env.reset(seed=...) first")
        return self.worlds.start_image(0)

    def snapshot(self) -> dict:
        """The whole world state (pose, effects, balloon, event text, RNG, counters, frames) as a
        versioned dict (:meth:`~yume_env.procedural.world.ProceduralWorld.snapshot`); the episode's
        step count is the world's ``block_index``."""
        if not self._started():
            raise gym.error.ResetNeeded("snapshot() called before reset(): call env.reset(seed=...) first")
        return self.worlds.snapshot(0)

    def restore(self, state: dict | EpisodeSnapshot) -> None:
        """Go back to a :meth:`snapshot` (of this env or one built with the same resolution), or to
        an :class:`~yume_env.envs.episodes.EpisodeSnapshot`; ``np_random`` continues where the
        snapshot's generator was. Nothing changes if this raises."""
        if isinstance(state, EpisodeSnapshot):
            super().restore(state)
            return
        mark = self.worlds.mark()
        self.worlds.restore(0, state)  # checks the dict before anything changed
        try:
            frames = self.worlds.last_frames(0)
            steps = int(state["block_index"])
            limit = self.max_episode_steps
            super().restore(
                EpisodeSnapshot(
                    world=state,
                    steps=steps,
                    ended=limit is not None and steps >= limit,
                    rng_state=state["rng"],
                    observation=frames if self.obs_mode == "frames" else frames[-1],
                )
            )
        except BaseException:
            self.worlds.rollback(mark)
            raise
