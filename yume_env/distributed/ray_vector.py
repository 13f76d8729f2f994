"""Deprecated location: ``RayVectorEnv`` is in :mod:`yume_env.envs.ray_vector`, ``SnapshotRef`` in
:mod:`yume_env.distributed.worlds`."""

from __future__ import annotations

from yume_env.distributed.worlds import SnapshotRef

__all__ = ["SnapshotRef"]  # and RayVectorEnv, on demand


def __getattr__(name: str):
    if name == "RayVectorEnv":
        from yume_env.envs.ray_vector import RayVectorEnv

        return RayVectorEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
