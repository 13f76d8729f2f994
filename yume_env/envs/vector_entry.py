"""The vector entry point of ``YumeWorld-v0``: in this process, or sharded over Ray workers."""

from __future__ import annotations

from gymnasium.vector import VectorEnv


def make_yume_world_vector(num_envs: int = 1, workers=None, **kwargs) -> VectorEnv:
    """``gym.make_vec("YumeWorld-v0", num_envs=N, ...)``.

    Without ``workers``: :class:`~yume_env.envs.vector.YumeWorldVectorEnv` (N worlds batched through
    one model in this process). With ``workers=W`` (an int or a
    :class:`~yume_env.distributed.WorkerPool`): :class:`~yume_env.distributed.RayVectorEnv`, the
    same vector env with its worlds sharded over W Ray actors (needs ``pip install "yume-env[ray]"``).
    """
    if workers is None:
        from yume_env.envs.vector import YumeWorldVectorEnv

        return YumeWorldVectorEnv(num_envs=num_envs, **kwargs)
    from yume_env.distributed import RayVectorEnv

    return RayVectorEnv("YumeWorld-v0", num_envs=num_envs, workers=workers, **kwargs)
