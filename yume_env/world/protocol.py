"""``BatchedWorlds``: the one protocol every world backend implements.

A backend holds ``num_worlds`` worlds that are reset one at a time and stepped together, one block
per step, and whose full state can be copied out and put back. Environments are built on this
protocol, never on a backend's internals, so a world can live in this process
(:class:`~yume_env.world.stream.WorldStream`), behind a ground-truth renderer, or on another machine
(:class:`yume_env.distributed.RayWorlds`) without the env noticing.

| member | meaning |
|---|---|
| ``num_worlds`` | how many worlds the backend holds (indices ``0..num_worlds-1``) |
| ``resolution`` | ``(height, width)`` of the frames, in pixels |
| ``frames_per_block`` | frames one step returns per world (0 when nothing is decoded) |
| ``reset(i, image=None, prompt="", seed=None)`` | start world ``i``; returns its :class:`BlockOutput` |
| ``step(actions)`` | one :class:`Action` or ``None`` per world; steps the non-``None`` ones as one batch and returns one :class:`BlockOutput` (or ``None``) per world. If it raises, no world changed |
| ``snapshot(i)`` | an opaque copy of world ``i``'s full state (history, event, RNG, counters) |
| ``restore(i, snapshot)`` | world ``i`` becomes the snapshot; the snapshot stays reusable |
| ``fork(source, target)`` | ``restore(target, snapshot(source))`` without handing the state to the caller |
| ``last_frames(i)`` | the newest block's ``[T, H, W, 3]`` uint8 frames (``None`` if none were decoded) |
| ``latent_shape`` | ``(C, F, h, w)`` of one block's latents, or ``None`` for a backend without latents |
| ``is_reset(i)`` / ``block_index(i)`` | whether world ``i`` was started; blocks it generated since |
| ``check_reset(image=None, prompt="")`` | raises what ``reset`` would raise for this start, changes nothing |
| ``mark()`` / ``rollback(mark)`` | a handle on every world's state; put every world back to it (undo a step or reset) |
| ``decode_latents(latents)`` | ``[T, H, W, 3]`` uint8 frames of one block's latents, as ``decode="block"`` gives |
| ``close()`` | release what the backend holds (its worlds are gone) |

Two optional members say how a backend's resets look to the envs (absent means ``False``):

- ``reset_seed_is_world_seed``: the seed of ``env.reset(seed=s)`` goes to ``reset`` as is (``None``:
  the world continues its own generator), so ``seed=s`` always starts the same world. Otherwise the
  env draws each world seed from the episode's RNG (seeded with ``s``).
- ``reset_repeats_start``: a reset without an image also returns one start frame repeated ``T``
  times, so a render list shows it once.

Rules every backend keeps: world ``i``'s frames depend only on its own seed, start and actions (not
on which other worlds share a batch, nor on where the world runs); ``restore`` of a snapshot followed
by the same actions gives the same frames; bad input raises before any world changes.

How the backends map onto it:

- :class:`~yume_env.world.stream.WorldStream` implements it as is (it is the reference
  implementation: the B worlds of one model on one device).
- :class:`yume_env.distributed.RayWorlds` shards the worlds over Ray actors, each holding a
  ``WorldStream`` on its own device; its snapshots are Ray object references, so a snapshot taken
  on one actor restores on another without passing through the caller. Arrays it returns may be
  read-only views into Ray's object store.
- The procedural world (``YumeProcedural-v0``, :mod:`yume_env.envs.procedural_env`) is a
  ground-truth renderer, not a generator: :class:`yume_env.procedural.worlds.ProceduralWorlds`
  adapts N of them to this protocol (``image`` is refused, ``prompt`` becomes the starting event,
  ``latents`` and ``latent_shape`` are ``None``, ``info`` carries the camera ground truth).

A backend is built from a frozen spec of its arguments (:class:`WorldBackendSpec`:
:class:`~yume_env.world.spec.WorldSpec` for generated worlds,
:class:`~yume_env.procedural.spec.ProceduralSpec` for the procedural one), so code that builds
worlds (the envs, the Ray workers) calls ``spec.build(num_worlds)`` whatever the world is.

The Gymnasium envs on it are :class:`yume_env.envs.world_env.WorldEnv` (one world) and
:class:`yume_env.envs.world_vector.WorldVectorEnv` (all of them); ``YumeWorld-v0`` and its vector
and Ray forms are those envs on a ``WorldStream`` or ``RayWorlds``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from yume_env.world.stream import Action, BlockOutput

__all__ = [
    "Action",
    "BatchedWorlds",
    "BlockOutput",
    "SpecArguments",
    "WorldBackendSpec",
    "check_world_actions",
    "per_world",
]


@runtime_checkable
class BatchedWorlds(Protocol):
    """B worlds reset one at a time, stepped together, with snapshot/restore/fork (see the module doc)."""

    @property
    def num_worlds(self) -> int: ...

    @property
    def resolution(self) -> tuple[int, int]: ...

    @property
    def frames_per_block(self) -> int: ...

    def reset(self, index: int, image=None, prompt: str = "", seed: int | None = None) -> BlockOutput: ...

    def step(self, actions: Sequence[Action | None]) -> list[BlockOutput | None]: ...

    def snapshot(self, index: int) -> Any: ...

    def restore(self, index: int, snapshot: Any) -> None: ...

    def fork(self, source: int, target: int) -> None: ...

    def last_frames(self, index: int) -> np.ndarray | None: ...

    @property
    def latent_shape(self) -> tuple[int, int, int, int] | None: ...

    def is_reset(self, index: int) -> bool: ...

    def block_index(self, index: int) -> int: ...

    def check_reset(self, image=None, prompt: str = "") -> None: ...

    def mark(self) -> Any: ...

    def rollback(self, mark: Any) -> None: ...

    def decode_latents(self, latents) -> np.ndarray: ...

    def close(self) -> None: ...


@runtime_checkable
class WorldBackendSpec(Protocol):
    """The frozen, picklable arguments of one kind of world backend, checked once.

    ``build(num_worlds)`` makes the backend (a :class:`BatchedWorlds`); ``names()`` lists the
    arguments; ``from_kwargs(**kwargs)`` makes a spec and refuses unknown names with ``TypeError``.
    """

    @classmethod
    def names(cls) -> tuple[str, ...]: ...

    @classmethod
    def from_kwargs(cls, **kwargs) -> WorldBackendSpec: ...

    def build(self, num_worlds: int = 1) -> BatchedWorlds: ...


class SpecArguments:
    """``names`` / ``from_kwargs`` / ``replace`` / ``as_kwargs`` for a frozen dataclass spec."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every argument a spec takes."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, **kwargs):
        """A spec from keyword arguments; an unknown name raises ``TypeError`` listing the accepted ones."""
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"got unexpected argument(s) {', '.join(map(repr, unknown))}; accepted: "
                + ", ".join(cls.names())
            )
        return cls(**kwargs)

    def replace(self, **changes):
        """A copy with ``changes`` (checked like :meth:`from_kwargs`)."""
        return type(self).from_kwargs(**{**self.as_kwargs(), **changes})

    def as_kwargs(self) -> dict:
        """The arguments as a dict (``type(spec)(**spec.as_kwargs()) == spec``)."""
        return {name: getattr(self, name) for name in self.names()}


def check_world_actions(actions: Sequence[Action | None], num_worlds: int) -> None:
    """``actions`` for :meth:`BatchedWorlds.step`: one :class:`Action` or ``None`` per world."""
    if len(actions) != num_worlds:
        raise ValueError(f"actions: got {len(actions)} entries; accepted: one per world ({num_worlds})")
    for i, a in enumerate(actions):
        if a is not None and not isinstance(a, Action):
            raise TypeError(f"actions[{i}]: got {type(a).__name__}; accepted: Action or None")


def per_world(value, n: int, name: str) -> list:
    """``value`` for each of ``n`` worlds: one value for all, or a list/tuple with one entry per world."""
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"{name}: got {len(value)} entries; accepted: one value, or one per world ({n})")
        return list(value)
    return [value] * n
