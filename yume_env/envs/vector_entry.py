"""The vector entry points of ``YumeWorld-v0`` and ``YumeProcedural-v0``: in this process, or
sharded over Ray workers (``workers=W``)."""

from __future__ import annotations

from gymnasium.envs.registration import load_env_creator
from gymnasium.vector import VectorEnv


def _make_vector(env_id: str, num_envs: int, workers, kwargs: dict) -> VectorEnv:
    if workers is None:
        from yume_env.envs.families import family_of

        return load_env_creator(family_of(env_id).vector_class)(num_envs=num_envs, **kwargs)
    from yume_env.distributed import RayVectorEnv

    return RayVectorEnv(env_id, num_envs=num_envs, workers=workers, **kwargs)


def make_yume_world_vector(num_envs: int = 1, workers=None, **kwargs) -> VectorEnv:
    """``gym.make_vec("YumeWorld-v0", num_envs=N, ...)``.

    Without ``workers``: :class:`~yume_env.envs.vector.YumeWorldVectorEnv` (N worlds batched through
    one model in this process). With ``workers=W`` (an int or a
    :class:`~yume_env.distributed.WorkerPool`): :class:`~yume_env.distributed.RayVectorEnv`, the
    same vector env with its worlds sharded over W Ray actors (needs ``pip install "yume-env[ray]"``).
    """
    return _make_vector("YumeWorld-v0", num_envs, workers, kwargs)


def make_procedural_vector(num_envs: int = 1, workers=None, **kwargs) -> VectorEnv:
    """``gym.make_vec("YumeProcedural-v0", num_envs=N, ...)``.

    Without ``workers``: :class:`~yume_env.envs.procedural_vector.YumeProceduralVectorEnv`. With
    ``workers=W``: :class:`~yume_env.distributed.RayVectorEnv` over procedural worlds on W Ray actors.
    World i is a single ``YumeProcedural-v0`` reset with ``seed + i`` either way.
    """
    return _make_vector("YumeProcedural-v0", num_envs, workers, kwargs)
