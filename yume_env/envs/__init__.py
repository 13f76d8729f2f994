"""Gymnasium / PettingZoo environments; importing this module registers them."""

from __future__ import annotations

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec

from yume_env.envs.spaces import action_space

__all__ = ["action_space", "register_envs"]


# Outside TimeLimit: refuses a step after the episode ended (see yume_env.envs.guards). Gymnasium
# refuses additional wrappers on specs with a vector entry point, so YumeWorld-v0 (whose batched
# vector env matters more) enforces its own limit instead when given max_episode_steps directly.
_GUARD = WrapperSpec("EpisodeGuard", "yume_env.envs.guards:EpisodeGuard", {})


def register_envs() -> None:
    """Register ``YumeWorld-v0`` (with its batched vector entry point) and ``YumeProcedural-v0``."""
    if "YumeWorld-v0" not in gym.registry:
        gym.register(
            id="YumeWorld-v0",
            entry_point="yume_env.envs.yume_world:YumeWorldEnv",
            vector_entry_point="yume_env.envs.vector_entry:make_yume_world_vector",
        )
    if "YumeProcedural-v0" not in gym.registry:
        gym.register(
            id="YumeProcedural-v0",
            entry_point="yume_env.envs.procedural_env:YumeProceduralEnv",
            additional_wrappers=(_GUARD,),
        )


register_envs()
