"""Deprecated location: see :mod:`yume_env.world.fork_safety`."""

from yume_env.world.fork_safety import guard_forked_process, in_forked_process

__all__ = ["guard_forked_process", "in_forked_process"]
