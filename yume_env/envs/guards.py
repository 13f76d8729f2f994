"""``EpisodeGuard``: a clear error for stepping a finished episode, whoever ended it.

``gym.make(..., max_episode_steps=N)`` truncates through Gymnasium's ``TimeLimit``, which sits
outside the environment, so the environment cannot tell that its episode is over. Registered as an
additional wrapper, this guard sits outside ``TimeLimit`` and refuses a ``step`` after an episode
terminated or was truncated (Gymnasium leaves that undefined; silently generating more video from a
finished episode hides bugs in training loops).
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs


class EpisodeGuard(gym.Wrapper, RecordConstructorArgs):
    """Raise ``gymnasium.error.ResetNeeded`` on ``step`` after the episode ended or before ``reset``."""

    def __init__(self, env: gym.Env):
        RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._state = "needs_reset"

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self._state = "running"
        return out

    def step(self, action):
        if self._state == "needs_reset":
            raise gym.error.ResetNeeded("step before reset: call env.reset() first")
        if self._state == "ended":
            raise gym.error.ResetNeeded(
                "step after the episode ended (terminated or truncated): call env.reset()"
            )
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            self._state = "ended"
        return obs, reward, terminated, truncated, info
