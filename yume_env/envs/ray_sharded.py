"""Deprecated: the Ray vector env of every Yume env id is :class:`~yume_env.envs.ray_vector.RayVectorEnv`.

``RayShardedVectorEnv`` (whole vector envs on each worker) is gone; its name is kept as an alias of
``RayVectorEnv``, which builds ``YumeProcedural-v0``'s worlds on the workers from their spec.
"""

from __future__ import annotations

import warnings

warnings.warn(
    "yume_env.envs.ray_sharded is deprecated; import RayVectorEnv from yume_env.envs.ray_vector",
    DeprecationWarning,
    stacklevel=2,
)

from yume_env.envs.ray_vector import (  # noqa: E402
    RayEnvOptions,
    RayShardedVectorEnv,
    check_restart,
)

__all__ = ["RayEnvOptions", "RayShardedVectorEnv", "check_restart"]
