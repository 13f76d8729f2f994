"""Gymnasium / PettingZoo environments; importing this module registers them."""

from __future__ import annotations

import gymnasium as gym

from yume_env.envs.spaces import action_space

__all__ = ["action_space", "register_envs"]


def register_envs() -> None:
    """Register ``YumeWorld-v0`` and ``YumeProcedural-v0``, each with its batched vector entry point.

    Both envs refuse a step after their episode ended, also when ``gym.make(...,
    max_episode_steps=N)`` truncates through Gymnasium's ``TimeLimit`` (they read the limit from
    their spec), so no additional wrapper is registered (Gymnasium refuses those on ids with a
    vector entry point)."""
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
            vector_entry_point="yume_env.envs.vector_entry:make_procedural_vector",
        )


register_envs()
