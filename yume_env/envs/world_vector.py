"""``WorldVectorEnv``: the N worlds of any world backend as one Gymnasium vector env.

:class:`~yume_env.envs.vector.YumeWorldVectorEnv` (``gym.make_vec("YumeWorld-v0", num_envs=N)``) is
this env on a :class:`~yume_env.world.stream.WorldStream` of N worlds;
:class:`~yume_env.distributed.RayVectorEnv` is it on :class:`~yume_env.distributed.RayWorlds`; the
procedural world's backend works too. World i's frames, rewards, truncations, autoresets and infos
are those of a single :class:`~yume_env.envs.world_env.WorldEnv` on the same backend seeded with
``seed + i``, because both run the episode logic of :mod:`yume_env.envs.episodes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from yume_env.envs.episodes import Episodes, EpisodeSnapshot, episode_args
from yume_env.envs.spaces import action_space
from yume_env.envs.validation import check_event, check_options, check_vector_args, parse_batched_actions
from yume_env.envs.world_env import check_seed
from yume_env.world.protocol import BatchedWorlds, per_world


def actions_of(actions: dict, i: int) -> dict:
    """World ``i``'s action out of a batched action dict."""
    return {
        "move": int(np.asarray(actions["move"])[i]),
        "look": int(np.asarray(actions["look"])[i]),
        "event": actions.get("event", ("",) * (i + 1))[i],
    }


def check_world(index, num_envs: int, name: str = "index") -> int:
    """``index`` (argument ``name``) as a world index of a vector env of ``num_envs`` worlds."""
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < num_envs:
        raise IndexError(f"{name}: got {index!r}; accepted: a world index 0..{num_envs - 1}")
    return int(index)


class WorldVectorEnv(VectorEnv):
    """Every world of ``worlds`` behind the Gymnasium vector API (one batched step per ``step``).

    Args:
        worlds: the backend (N = ``worlds.num_worlds``).
        **episode: ``image`` / ``prompt`` (each world's start: one value for all, or a list with one
            per world), ``obs_mode``, ``max_episode_steps``, ``reward_fn``, ``render_mode``: see
            :func:`~yume_env.envs.episodes.episode_args`.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default; the step after an episode ends returns
            the reset observation with reward 0), ``SAME_STEP`` (reset inside the ending step; the last
            observation and info go to ``info["final_obs"]`` / ``info["final_info"]``; ``final_obs``
            arrays are read-only, copy them before writing) or ``DISABLED`` (reset ended worlds
            yourself with ``reset(options={"reset_mask": mask})``).

    Actions are the batched Dict space: ``{"move": int array (N,), "look": int array (N,),
    "event": tuple of N str}``. Infos are Gymnasium vector infos (arrays plus ``_key`` masks);
    ``info["world"]`` is the world's index. ``reward_fn`` runs in this process.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 16, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self, worlds: BatchedWorlds, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP, **episode
    ):
        num_envs, autoreset_mode = check_vector_args(worlds.num_worlds, autoreset_mode)
        args = episode_args(num_envs, tuple(self.metadata["render_modes"]), **episode)
        for img, p in zip(args.images, args.prompts):
            worlds.check_reset(img, p)
        self.num_envs = num_envs
        self.obs_mode = args.obs_mode
        self.render_mode = args.render_mode
        self.reward_fn = args.reward_fn
        self.max_episode_steps = args.max_episode_steps
        self.autoreset_mode = autoreset_mode
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
        self.stream = worlds
        self._episodes = Episodes(worlds, args)
        self.single_observation_space = self._episodes.observation_space
        self.single_action_space = action_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    @property
    def worlds(self) -> BatchedWorlds:
        """The backend (also reachable as ``stream``, its former name)."""
        return self.stream

    @property
    def images(self) -> list:
        return self._episodes.images

    @property
    def prompts(self) -> list[str]:
        return self._episodes.prompts

    # the episodes' state, under the names the vector env always had
    @property
    def _rngs(self) -> list[np.random.Generator]:
        return self._episodes.rngs

    @property
    def _steps(self) -> np.ndarray:
        return self._episodes.steps

    @property
    def _ended(self) -> np.ndarray:
        return self._episodes.ended

    @property
    def _last_obs(self) -> list:
        return self._episodes.last_obs

    def _check_world(self, index, name: str = "index") -> int:
        return check_world(index, self.num_envs, name)

    # ------------------------------------------------------------------ VectorEnv API
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        """Reset all worlds (or those in ``options["reset_mask"]``). ``seed=s`` seeds world i with ``s + i``;
        a list gives one seed (or ``None``) per world. ``options`` may override ``image`` and ``prompt``
        (one value or one per world). If any world's reset fails, no world changes."""
        n = self.num_envs
        options = check_options(options, ("reset_mask", "image", "prompt"))
        mask = options.get("reset_mask")
        mask = np.ones(n, dtype=bool) if mask is None else np.asarray(mask)
        if mask.shape != (n,) or mask.dtype != np.bool_:
            raise ValueError(f"options['reset_mask']: got {mask!r}; accepted: a bool array of shape ({n},)")
        if seed is None:
            seeds = [None] * n
        elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(n)]
        else:
            if not isinstance(seed, Sequence | np.ndarray) or isinstance(seed, str):
                raise TypeError(
                    f"seed: got {type(seed).__name__}; accepted: None, an int, or one int/None per world"
                )
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed: got {len(seeds)} seeds; accepted: one int, or one per world ({n})")
        for i, s in enumerate(seeds):
            check_seed(s, f"seed[{i}]")
        images = per_world(options.get("image"), n, "options['image']")
        prompts = per_world(options.get("prompt"), n, "options['prompt']")
        # Check every world's start before any world changes: a bad entry leaves all worlds as they were.
        starts = {}
        for i in np.flatnonzero(mask).tolist():
            if prompts[i] is not None:
                prompts[i] = check_event(prompts[i], f"options['prompt'][{i}]")
            image = self.images[i] if images[i] is None else images[i]
            prompt = self.prompts[i] if prompts[i] is None else prompts[i]
            if images[i] is not None or image is None:  # the worlds' own images were checked already
                try:
                    self.stream.check_reset(image, prompt)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"options for world {i}: {exc}") from None
            starts[i] = (image, prompt)
        results = self._episodes.reset(starts, dict(enumerate(seeds)))
        if any(o is None for o in self._last_obs):
            raise gym.error.ResetNeeded(
                "reset: every world must be reset once before the batch can be observed"
            )
        infos: dict = {}
        for i, (_, info) in results.items():
            infos = self._add_info(infos, info, i)
        return np.stack(self._last_obs), infos

    def step(self, actions):
        parsed = parse_batched_actions(actions, self.num_envs)
        if any(o is None for o in self._last_obs):
            raise gym.error.ResetNeeded("step before reset: call reset() first")
        ended = self._episodes.ended
        if self.autoreset_mode == AutoresetMode.DISABLED and ended.any():
            raise gym.error.ResetNeeded(
                f"world(s) {np.flatnonzero(ended).tolist()} ended; with autoreset DISABLED reset them with "
                "reset(options={'reset_mask': mask})"
            )
        to_reset = (
            ended.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros(self.num_envs, bool)
        )
        stepped = self._episodes.step(
            [None if to_reset[i] else a for i, a in enumerate(parsed)],
            self.reward_fn,
            [None if to_reset[i] else actions_of(actions, i) for i in range(self.num_envs)],
            self.max_episode_steps,
            world_key=True,  # lets stateful rewards keep one memory per world
        )
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict = {}
        obs_list = list(self._last_obs)
        for i in range(self.num_envs):
            if to_reset[i]:
                obs_list[i], info = self._episodes.reset_world(i)
                infos = self._add_info(infos, info, i)
                continue
            obs_list[i], rewards[i], truncated[i], info = stepped[i]
            if truncated[i] and self.autoreset_mode == AutoresetMode.SAME_STEP:
                final_obs, final_info = obs_list[i], info
                final_obs.flags.writeable = False  # the same on every backend (Ray's are views)
                obs_list[i], info = self._episodes.reset_world(i)
                info = {**info, "final_obs": final_obs, "final_info": final_info}
            infos = self._add_info(infos, info, i)
        return np.stack(obs_list), rewards, terminated, truncated, infos

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        frames = (self._episodes.newest_frame(i) for i in range(self.num_envs))
        return tuple(None if f is None else f.copy() for f in frames)

    def close_extras(self, **kwargs):
        if "stream" in self.__dict__:  # a constructor that failed early has none
            self.stream.close()

    # ------------------------------------------------------------------ branching
    def snapshot_world(self, index: int) -> EpisodeSnapshot:
        """World ``index`` and its episode, for :meth:`restore_world` (here or in another vector env
        with the same arguments)."""
        return self._episodes.snapshot(self._check_world(index))

    def restore_world(self, index: int, snapshot: EpisodeSnapshot) -> None:
        """Put world ``index`` back to ``snapshot``: the same actions then give the same frames,
        rewards, truncations and autoresets. The snapshot stays reusable."""
        self._episodes.restore(self._check_world(index), snapshot)

    def fork_world(self, source: int, target: int) -> None:
        """Make world ``target`` an exact copy of world ``source`` (world and episode)."""
        self._check_world(target, "target")
        self.restore_world(target, self.snapshot_world(self._check_world(source, "source")))
