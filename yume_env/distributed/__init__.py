"""Worlds on many GPUs and machines: N worlds sharded over W Ray actors, one device each.

- :class:`RayWorlds`: the :class:`~yume_env.world.protocol.BatchedWorlds` protocol over Ray.
- :class:`WorkerPool`: the actors (reusable between envs), :class:`WorkerDiedError` when one dies.
- ``RayVectorEnv`` (:mod:`yume_env.envs.ray_vector`, also importable from here): the Gymnasium
  vector env over :class:`RayWorlds` (``gym.make_vec("YumeWorld-v0", num_envs=N, workers=W)``),
  world i identical to the in-process one.

Needs Ray: ``pip install "yume-env[ray]"``. This package imports only :mod:`yume_env.world` and Ray.
"""

from __future__ import annotations

try:
    import ray  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        'yume_env.distributed needs Ray, which is not installed: pip install "yume-env[ray]"'
    ) from exc

from yume_env.distributed.errors import WorkerDiedError
from yume_env.distributed.pool import WorkerPool, ensure_ray
from yume_env.distributed.worlds import RayWorlds, SnapshotRef

__all__ = ["RayVectorEnv", "RayWorlds", "SnapshotRef", "WorkerDiedError", "WorkerPool", "ensure_ray"]


def __getattr__(name: str):
    # the vector env is an env (yume_env.envs sits above this package): imported when asked for
    if name == "RayVectorEnv":
        from yume_env.envs.ray_vector import RayVectorEnv

        return RayVectorEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
