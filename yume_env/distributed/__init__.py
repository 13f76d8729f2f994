"""Worlds on many GPUs and machines: N worlds sharded over W Ray actors, one device each.

- :class:`RayVectorEnv`: the Gymnasium vector env (``gym.make_vec("YumeWorld-v0", num_envs=N,
  workers=W)``), world i identical to the in-process one.
- :class:`RayWorlds`: the :class:`~yume_env.world.protocol.BatchedWorlds` protocol over Ray.
- :class:`WorkerPool`: the actors (reusable between envs), :class:`WorkerDiedError` when one dies.

Needs Ray: ``pip install "yume-env[ray]"``.
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
from yume_env.distributed.ray_vector import RayVectorEnv, SnapshotRef
from yume_env.distributed.worlds import RayWorlds

__all__ = ["RayVectorEnv", "RayWorlds", "SnapshotRef", "WorkerDiedError", "WorkerPool", "ensure_ray"]
