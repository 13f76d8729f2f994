"""Yume environments built in a forked process run torch on one thread.

``gym.make_vec(..., vectorization_mode="async")`` forks its workers on Linux after building one
environment in the parent (to read its spaces), so torch's CPU thread pool already runs there. A
forked copy of that pool never wakes up: the first multi-threaded torch call in a worker hangs
forever. Workers built after a fork therefore switch torch to one thread before touching a tensor
(PyTorch's own ``DataLoader`` workers do the same). Processes started with ``spawn`` or
``forkserver`` (``vector_kwargs={"context": "spawn"}``) are not forks and keep their thread count.
"""

from __future__ import annotations

import os

import torch

_forked = False


def _mark_forked() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):  # POSIX only; there is no fork elsewhere
    os.register_at_fork(after_in_child=_mark_forked)


def in_forked_process() -> bool:
    """Whether this process was forked from one that had imported yume_env."""
    return _forked


def guard_forked_process() -> bool:
    """Call before the first tensor operation of an environment: one torch thread in a forked process.

    Runs after any ``threads`` setting, so that a forked worker never gets more than one thread.
    Returns whether this process is a fork.
    """
    if _forked and torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return _forked
