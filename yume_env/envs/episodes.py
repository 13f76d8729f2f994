"""``Episodes``: the episode logic of N worlds on any world backend, written once.

The single env (:class:`~yume_env.envs.world_env.WorldEnv`) and the vector env
(:class:`~yume_env.envs.world_vector.WorldVectorEnv`) keep their episodes here: each world's seed
generator, step counter, end flag, last observation and render memory; resets and steps as
transactions (a failing reset or ``reward_fn`` leaves every world and episode as it was);
snapshots of a world together with its episode. Only the backend's
:class:`~yume_env.world.protocol.BatchedWorlds` methods are used, never its internals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding

from yume_env.envs.spaces import frames_space, last_frame_space
from yume_env.envs.validation import call_reward, check_episode_args, check_event
from yume_env.world.protocol import BatchedWorlds, per_world
from yume_env.world.stream import Action, BlockOutput

OBS_MODES = ("frames", "last_frame", "latent")

#: ``reward_fn(obs, action, info) -> float``
RewardFn = Callable[[np.ndarray | torch.Tensor, dict, dict], float]


def check_obs_mode(obs_mode) -> str:
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode: got {obs_mode!r}; accepted: {', '.join(OBS_MODES)}")
    return obs_mode


def observation_space_for(worlds: BatchedWorlds, obs_mode: str) -> spaces.Space:
    """The observation space of one world of ``worlds`` in ``obs_mode``."""
    h, w = worlds.resolution
    if obs_mode == "frames":
        return frames_space(worlds.frames_per_block, h, w)
    if obs_mode == "last_frame":
        return last_frame_space(h, w)
    shape = worlds.latent_shape
    if shape is None:
        raise ValueError(
            "obs_mode: got 'latent'; accepted for this world (it has no latents): frames, last_frame"
        )
    return spaces.Box(-np.inf, np.inf, shape=tuple(shape), dtype=np.float32)


def observation_from(out: BlockOutput, obs_mode: str, worlds: BatchedWorlds):
    """The observation of one world's :class:`BlockOutput` in ``obs_mode``.

    A copy unless the array is read-only: the world keeps its newest frames, and a caller changing
    an observation must not alter them (a read-only array, e.g. from Ray's object store, cannot be).
    """
    if obs_mode in ("frames", "last_frame"):
        frames = out.frames if obs_mode == "frames" else out.frames[-1]
        return frames.copy() if frames.flags.writeable else frames
    lat = out.latents
    f = worlds.latent_shape[1]
    if lat.shape[1] < f:  # after an image reset: the start latents, repeated to a block's length
        lat = torch.cat([lat, lat[:, -1:].expand(-1, f - lat.shape[1], -1, -1)], dim=1)
    return lat[:, -f:].detach().cpu().numpy().astype(np.float32)


@dataclass(frozen=True)
class EpisodeArgs:
    """The episode arguments every env over a world backend takes, checked (see :func:`episode_args`)."""

    images: list
    prompts: list[str]
    obs_mode: str
    max_episode_steps: int | None
    reward_fn: RewardFn | None
    render_mode: str | None


#: The names :func:`episode_args` takes (the rest of an env's keywords build its worlds).
EPISODE_ARGS = ("image", "prompt", "obs_mode", "max_episode_steps", "reward_fn", "render_mode")


def episode_args(
    num_worlds: int,
    render_modes: tuple[str, ...],
    image=None,
    prompt: str | list[str] = "",
    obs_mode: str = "frames",
    max_episode_steps: int | None = None,
    reward_fn: RewardFn | None = None,
    render_mode: str | None = None,
    *,
    single: bool = False,
) -> EpisodeArgs:
    """The episode arguments of an env of ``num_worlds`` worlds, checked before anything is built.

    - ``image`` / ``prompt``: each world's start (one value for all, or a list with one per world;
      one value with ``single``).
    - ``obs_mode``: ``"frames"``, ``"last_frame"`` or ``"latent"``.
    - ``max_episode_steps``: truncate after this many blocks (``None``: never).
    - ``reward_fn(obs, action, info) -> float``: default reward 0.
    - ``render_mode``: one of ``render_modes`` or ``None``.
    """
    check_obs_mode(obs_mode)
    check_episode_args(render_mode, max_episode_steps, reward_fn, render_modes)
    if single:  # a single env's start is one value, whatever its type
        image, prompt = [image], [prompt]
    prompts = [check_event(p, "prompt") for p in per_world(prompt, num_worlds, "prompt")]
    images = per_world(image, num_worlds, "image")
    return EpisodeArgs(images, prompts, obs_mode, max_episode_steps, reward_fn, render_mode)


@dataclass(frozen=True)
class EpisodeSnapshot:
    """One world and its episode at one moment: the backend's snapshot of the world, the steps
    taken, whether the episode ended, the RNG that seeds its next reset, and its last observation.

    Restoring it into an env built with the same arguments (in this process or another: it pickles
    when the backend's snapshot does) continues the world and its episode exactly.
    """

    world: Any
    steps: int
    ended: bool
    rng_state: dict
    observation: np.ndarray


class Episodes:
    """The episodes of every world of ``worlds`` (see the module doc).

    Args:
        worlds: the backend.
        args: the episode arguments (:func:`episode_args`): each world's start (used when a reset
            gives none), the observation mode, and the render mode: ``None``, ``"rgb_array"``
            (remember the newest frame) or ``"rgb_array_list"`` (remember every frame since the
            last :meth:`take_frames`).
    """

    def __init__(self, worlds: BatchedWorlds, args: EpisodeArgs):
        n = worlds.num_worlds
        self.worlds = worlds
        self.obs_mode = args.obs_mode
        self.render_mode = args.render_mode
        self.observation_space = observation_space_for(worlds, args.obs_mode)
        self.images, self.prompts = list(args.images), list(args.prompts)
        self.rngs = [seeding.np_random()[0] for _ in range(n)]
        self.steps = np.zeros(n, dtype=np.int64)
        self.ended = np.zeros(n, dtype=bool)
        self.last_obs: list = [None] * n
        self.last_frame: list[np.ndarray | None] = [None] * n
        self.frame_lists: list[list[np.ndarray]] = [[] for _ in range(n)]
        # obs_mode="latent" decodes nothing: render() decodes the newest latents when asked (stale)
        self.stale = [False] * n
        # optional backend members (see yume_env.world.protocol)
        self.seed_is_world_seed = bool(getattr(worlds, "reset_seed_is_world_seed", False))
        self.repeats_start = bool(getattr(worlds, "reset_repeats_start", False))

    @property
    def num_worlds(self) -> int:
        return len(self.last_obs)

    # ------------------------------------------------------------------ transactions
    def _save(self) -> tuple:
        return (
            self.worlds.mark(),
            list(self.rngs),
            [r.bit_generator.state for r in self.rngs],
            self.steps.copy(),
            self.ended.copy(),
            list(self.last_obs),
            list(self.last_frame),
            [list(f) for f in self.frame_lists],
            list(self.stale),
        )

    def _load(self, saved: tuple) -> None:
        mark, rngs, states, steps, ended, last_obs, last_frame, frame_lists, stale = saved
        self.worlds.rollback(mark)
        for rng, state in zip(rngs, states):
            rng.bit_generator.state = state
        self.rngs, self.steps, self.ended = rngs, steps, ended
        self.last_obs, self.last_frame, self.frame_lists = last_obs, last_frame, frame_lists
        self.stale = stale

    # ------------------------------------------------------------------ reset
    def reset(self, starts: dict[int, tuple], seeds: dict[int, int | None]) -> dict[int, tuple]:
        """Reset the worlds ``starts`` maps to ``(image, prompt)`` (``None``: the world's default),
        each seeded from ``seeds[i]`` when given. Returns ``{i: (obs, info)}``. All or nothing."""
        saved = self._save()
        results = {}
        try:
            for i, (image, prompt) in starts.items():
                results[i] = self.reset_world(i, image, prompt, seeds.get(i))
        except BaseException:
            self._load(saved)
            raise
        return results

    def reset_world(self, i: int, image=None, prompt: str | None = None, seed: int | None = None) -> tuple:
        """Start world ``i``'s next episode, its RNG seeded with ``seed`` when given (not a
        transaction: see :meth:`reset`)."""
        image = self.images[i] if image is None else image
        prompt = self.prompts[i] if prompt is None else prompt
        if seed is not None:
            self.rngs[i] = seeding.np_random(int(seed))[0]
        if self.seed_is_world_seed:  # the backend starts the same world for the same reset seed
            world_seed = None if seed is None else int(seed)
        else:
            world_seed = int(self.rngs[i].integers(0, 2**63 - 1))
        out = self.worlds.reset(i, image=image, prompt=prompt, seed=world_seed)
        obs = observation_from(out, self.obs_mode, self.worlds)
        self.steps[i] = 0
        self.ended[i] = False
        self.last_obs[i] = obs
        self.frame_lists[i] = []
        start = image is not None or self.repeats_start
        self._remember(i, out, self._render_frames(i, out, start=start), start=start)
        # a backend that names its own seed (the procedural scene seed) keeps it in the info
        return obs, {"seed": world_seed, **out.info, "caption": out.caption}

    # ------------------------------------------------------------------ step
    def step(
        self, actions: list[Action | None], reward_fn, raw_actions: list, limit: int | None, world_key: bool
    ) -> dict[int, tuple]:
        """Step every world whose action is not ``None``: ``{i: (obs, reward, truncated, info)}``.

        ``raw_actions[i]`` is what ``reward_fn(obs, action, info)`` gets; ``world_key`` adds
        ``info["world"] = i``. A failing ``reward_fn`` leaves every world as it was.
        """
        # only what runs after the backend's step can fail halfway: a reward, a decode for render()
        undoable = reward_fn is not None or (
            self.obs_mode == "latent" and self.render_mode == "rgb_array_list"
        )
        mark = self.worlds.mark() if undoable else None
        outs = self.worlds.step(actions)
        stepped = {}
        try:
            for i, a in enumerate(actions):
                if a is None:
                    continue
                obs = observation_from(outs[i], self.obs_mode, self.worlds)
                info = {**outs[i].info, "world": i} if world_key else dict(outs[i].info)
                reward = 0.0 if reward_fn is None else call_reward(reward_fn, obs, raw_actions[i], info)
                stepped[i] = (obs, reward, info, self._render_frames(i, outs[i]))
        except BaseException:
            if mark is not None:
                self.worlds.rollback(mark)
            raise
        results = {}
        for i, (obs, reward, info, frames) in stepped.items():
            self.steps[i] += 1
            truncated = limit is not None and bool(self.steps[i] >= limit)
            self.ended[i] = truncated
            self.last_obs[i] = obs
            self._remember(i, outs[i], frames)
            results[i] = (obs, reward, truncated, info)
        return results

    # ------------------------------------------------------------------ render memory
    def _render_frames(self, i: int, out: BlockOutput | None, start: bool = False) -> np.ndarray | None:
        """The frames ``render`` shows for this output (computed before anything commits)."""
        if self.render_mode is None:
            return None
        if (
            out is not None
            and self.obs_mode == "latent"
            and not start
            and self.render_mode == "rgb_array_list"
        ):
            return self.worlds.decode_latents(out.latents)  # nothing decoded this block: decode it now
        if self.obs_mode == "latent" and not start:
            return None  # nothing decoded: render() decodes the newest latents if it is called
        if out is not None and out.frames is not None:
            return out.frames
        return self.worlds.last_frames(i)

    def _remember(
        self, i: int, out: BlockOutput | None, frames: np.ndarray | None, start: bool = False
    ) -> None:
        if frames is None:
            # nothing decoded (obs_mode="latent"): render() decodes the newest latents if it is called
            self.stale[i] = self.obs_mode == "latent" and self.render_mode == "rgb_array"
            return
        # a copy: the observation handed to the caller must not alias what render() returns
        self.last_frame[i] = frames[-1].copy()
        self.stale[i] = False
        if self.render_mode == "rgb_array_list":
            # an image reset repeats the start image T times: one copy is the start frame; after a
            # restore (out is None) the restored moment is shown once, like a start frame
            self.frame_lists[i].extend(f.copy() for f in (frames[-1:] if start or out is None else frames))

    def newest_frame(self, i: int) -> np.ndarray | None:
        """World ``i``'s newest frame (``render_mode="rgb_array"``); in ``obs_mode="latent"`` the
        newest block is decoded here, on demand, so a run that never renders pays nothing."""
        if self.stale[i] and self.last_obs[i] is not None:
            self.last_frame[i] = self.worlds.decode_latents(self.last_obs[i])[-1].copy()
            self.stale[i] = False
        return self.last_frame[i]

    def take_frames(self, i: int) -> list[np.ndarray]:
        """World ``i``'s frames since the last call or reset (``render_mode="rgb_array_list"``)."""
        frames, self.frame_lists[i] = self.frame_lists[i], []
        return frames

    # ------------------------------------------------------------------ branching
    def snapshot(self, i: int, world: Any = None) -> EpisodeSnapshot:
        """World ``i`` and its episode (``world``: the backend's snapshot of it, when already taken)."""
        if self.last_obs[i] is None:
            raise gym.error.ResetNeeded(f"world {i}: snapshot before reset; call reset() first")
        return EpisodeSnapshot(
            world=self.worlds.snapshot(i) if world is None else world,
            steps=int(self.steps[i]),
            ended=bool(self.ended[i]),
            rng_state=self.rngs[i].bit_generator.state,
            observation=np.array(self.last_obs[i], copy=True),
        )

    def restore(self, i: int, snapshot: EpisodeSnapshot) -> None:
        if not isinstance(snapshot, EpisodeSnapshot):
            raise TypeError(
                f"snapshot: got {type(snapshot).__name__}; accepted: an EpisodeSnapshot (what snapshot() returned)"
            )
        expected = self.observation_space.shape
        mark = self.worlds.mark()
        self.worlds.restore(i, snapshot.world)  # refuses another kind of world before changing it
        if np.shape(snapshot.observation) != expected:
            self.worlds.rollback(mark)
            raise ValueError(
                f"snapshot: observation shape {np.shape(snapshot.observation)}; accepted: {expected} "
                "(a snapshot from an env with the same resolution and obs_mode)"
            )
        rng = np.random.default_rng()
        rng.bit_generator.state = snapshot.rng_state
        self.rngs[i] = rng
        self.steps[i] = snapshot.steps
        self.ended[i] = snapshot.ended
        self.last_obs[i] = np.array(snapshot.observation, copy=True)
        self._remember(i, None, self._render_frames(i, None))  # render() shows the restored moment

    def forget(self, i: int) -> None:
        """World ``i`` must be reset before it is stepped again (e.g. its worker was lost)."""
        self.last_obs[i] = None
        self.steps[i] = 0
        self.ended[i] = False
