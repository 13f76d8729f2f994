"""``WorldEnv``: one world of any world backend as a Gymnasium environment.

:class:`~yume_env.envs.yume_world.YumeWorldEnv` (``YumeWorld-v0``) is this env on a
:class:`~yume_env.world.stream.WorldStream` of one world; any other
:class:`~yume_env.world.protocol.BatchedWorlds` of one world works the same way (e.g. the procedural
world's backend, or a world on a Ray worker). The episode logic lives in
:mod:`yume_env.envs.episodes`, shared with the vector env.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from yume_env.envs.episodes import Episodes, EpisodeSnapshot, RewardFn, episode_args
from yume_env.envs.spaces import action_space
from yume_env.envs.validation import check_event, check_options, parse_action
from yume_env.world.protocol import BatchedWorlds

__all__ = ["RewardFn", "WorldEnv", "check_seed"]


def check_seed(seed, name: str = "seed") -> int | None:
    """A reset seed: ``None`` or an integer >= 0."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
        raise ValueError(f"{name}: got {seed!r}; accepted: an integer >= 0 or None")
    return seed


class WorldEnv(gym.Env):
    """World 0 of ``worlds`` as a Gymnasium env (the arguments are those of ``YumeWorld-v0``'s
    episodes: see :class:`~yume_env.envs.yume_world.YumeWorldEnv`).

    Args:
        worlds: a backend holding one world.
        **episode: ``image``, ``prompt`` (the start of every episode; ``reset`` options may override
            them), ``obs_mode`` (``"latent"`` needs a backend with latents), ``max_episode_steps``,
            ``reward_fn``, ``render_mode``: see :func:`~yume_env.envs.episodes.episode_args`.
    """

    metadata = {"render_modes": ["rgb_array", "rgb_array_list"], "render_fps": 16}

    def __init__(self, worlds: BatchedWorlds, **episode):
        args = episode_args(1, tuple(self.metadata["render_modes"]), **episode, single=True)
        if worlds.num_worlds != 1:
            raise ValueError(f"worlds: got {worlds.num_worlds} worlds; accepted: a backend of one world")
        image, prompt = args.images[0], args.prompts[0]
        if image is not None or prompt.strip():  # fail at construction, not at reset, for a bad start
            worlds.check_reset(image, prompt)
        self.image, self.prompt = image, prompt
        self.obs_mode = args.obs_mode
        self.render_mode = args.render_mode
        self.reward_fn = args.reward_fn
        self._max_episode_steps = args.max_episode_steps
        self.stream = worlds
        self._episodes = Episodes(worlds, args)
        self.observation_space = self._episodes.observation_space
        self.action_space = action_space()

    # gymnasium's seeding reads and writes ``_np_random``: it is world 0's episode RNG
    @property
    def _np_random(self):
        episodes = self.__dict__.get("_episodes")
        return None if episodes is None else episodes.rngs[0]

    @_np_random.setter
    def _np_random(self, value) -> None:
        if value is not None:
            self._episodes.rngs[0] = value

    @property
    def worlds(self) -> BatchedWorlds:
        """The backend (also reachable as ``stream``, its former name)."""
        return self.stream

    @property
    def _steps(self) -> int:
        return int(self._episodes.steps[0])

    @property
    def max_episode_steps(self) -> int | None:
        if self._max_episode_steps is not None:
            return self._max_episode_steps
        return None if self.spec is None else self.spec.max_episode_steps

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode. ``options`` may override ``image`` and ``prompt`` for this episode."""
        options = check_options(options, ("image", "prompt"))
        check_seed(seed)
        image = options.get("image", self.image)
        prompt = check_event(options.get("prompt", self.prompt), "options['prompt']")
        obs, info = self._episodes.reset({0: (image, prompt)}, {0: seed})[0]
        if seed is not None:
            self._np_random_seed = int(seed)
        return obs, info

    def step(self, action):
        if self._episodes.last_obs[0] is None:
            raise gym.error.ResetNeeded("step before reset: call env.reset() first")
        if self._episodes.ended[0]:
            raise gym.error.ResetNeeded(
                f"step after the episode ended (truncated after max_episode_steps={self.max_episode_steps} "
                "blocks): call env.reset() to start a new one"
            )
        act = parse_action(action)
        obs, reward, truncated, info = self._episodes.step(
            [act], self.reward_fn, [action], self.max_episode_steps, world_key=False
        )[0]
        return obs, reward, False, truncated, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without render_mode; pass render_mode='rgb_array' to YumeWorld-v0"
            )
            return None
        if self.render_mode == "rgb_array_list":
            return self._episodes.take_frames(0)
        return self._episodes.newest_frame(0)

    def close(self):
        self.stream.close()

    # ------------------------------------------------------------------ branching
    def snapshot(self) -> EpisodeSnapshot:
        """Full state of the world and episode (history, event, RNG, counters), for :meth:`restore`."""
        if self._episodes.last_obs[0] is None:
            raise gym.error.ResetNeeded("snapshot before reset: call env.reset() first")
        return self._episodes.snapshot(0)

    def restore(self, snapshot: EpisodeSnapshot) -> None:
        """Return to a :meth:`snapshot`; the same actions then give the same frames."""
        self._episodes.restore(0, snapshot)
