"""``ProceduralWorlds``: N procedural worlds behind the batched world protocol.

The procedural world is a ground-truth renderer, not a generator; this backend holds N
:class:`~yume_env.procedural.world.ProceduralWorld` and gives them the
:class:`~yume_env.world.protocol.BatchedWorlds` shape, so code written against the protocol (the
envs, the benchmark, the play page) runs on it unchanged:

- ``reset(i, image=None, prompt="", seed=None)``: ``image`` is refused (a procedural world starts
  from its seed); ``prompt`` is the starting event, applied at once.
- ``step(actions)``: one :class:`~yume_env.world.stream.Action` or ``None`` per world; the worlds
  are rendered one after the other (they are independent, there is no model to batch). Every
  action is checked before any world moves, and if a world fails the others are put back.
- :class:`~yume_env.world.stream.BlockOutput` ``latents`` is ``None``; ``info`` carries the camera
  ground truth (see :class:`~yume_env.procedural.world.ProceduralBlock`).
- snapshots are the world's versioned dicts (:meth:`ProceduralWorld.snapshot`), the same ones
  ``YumeProcedural-v0`` hands out, so a snapshot moves between the env and the backend.

Beyond the first protocol members it has what a generic env over a backend needs:
``block_index(i)``, ``is_reset(i)``, ``check_reset(image, prompt)`` (raises what ``reset`` would,
changes nothing), ``mark()`` / ``rollback(mark)`` (every world back to the mark),
``latent_shape`` (``None``: no latents), ``decode_latents`` (refused) and ``close()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from yume_env.actions import check_event
from yume_env.procedural.spec import ProceduralSpec, spec_of
from yume_env.procedural.world import ProceduralMark, ProceduralWorld
from yume_env.world.protocol import check_world_actions
from yume_env.world.stream import Action, BlockOutput, check_world_index

__all__ = ["ProceduralWorlds", "ProceduralWorldsMark"]

#: The world arguments (those of :class:`~yume_env.procedural.spec.ProceduralSpec`).
WORLD_ARGUMENTS = ProceduralSpec.names()


@dataclass(frozen=True)
class ProceduralWorldsMark:
    """Every world's :class:`ProceduralMark` at one moment (see :meth:`ProceduralWorlds.mark`)."""

    marks: tuple[ProceduralMark, ...]


class ProceduralWorlds:
    """N procedural worlds as :class:`~yume_env.world.protocol.BatchedWorlds`.

    Every world is built from ``spec`` (a :class:`~yume_env.procedural.spec.ProceduralSpec`), or
    from the spec's arguments as ``world_kwargs`` (``resolution``, ``frames_per_block``,
    ``move_speed``, ...); episode settings (``obs_mode``, ``max_episode_steps``, rewards, render
    modes) belong to the env built on the backend and are refused here.

    A reset's seed is the world's seed (``reset_seed_is_world_seed``: ``YumeProcedural-v0`` with
    ``reset(seed=s)`` and world ``i`` reset with seed ``s`` are the same world), and a reset returns
    the start frame repeated (``reset_repeats_start``).
    """

    reset_seed_is_world_seed = True
    reset_repeats_start = True

    def __init__(self, num_worlds: int, spec: ProceduralSpec | None = None, **world_kwargs):
        if isinstance(num_worlds, bool) or not isinstance(num_worlds, int) or num_worlds < 1:
            raise ValueError(f"num_worlds: got {num_worlds!r}; accepted: an integer >= 1")
        for key in ("obs_mode", "max_episode_steps"):
            if key in world_kwargs:
                raise ValueError(f"{key}: not accepted by ProceduralWorlds (frames, no truncation)")
        unknown = sorted(set(world_kwargs) - set(WORLD_ARGUMENTS))
        if unknown:
            raise ValueError(
                f"world arguments: got unknown {unknown}; accepted: {', '.join(WORLD_ARGUMENTS)}"
            )
        self.spec = spec_of(spec, world_kwargs)
        self.worlds = [ProceduralWorld(self.spec) for _ in range(num_worlds)]

    # ---- shape -----------------------------------------------------------------------------------
    @property
    def num_worlds(self) -> int:
        return len(self.worlds)

    @property
    def resolution(self) -> tuple[int, int]:
        return self.worlds[0].resolution

    @property
    def frames_per_block(self) -> int:
        return self.worlds[0].frames_per_block

    @property
    def latent_shape(self) -> None:
        """``None``: the procedural world renders frames directly and has no latents."""
        return None

    def block_index(self, index: int) -> int:
        """Blocks world ``index`` has stepped since its reset (0 for a world not started)."""
        return self.worlds[self._index(index)].block_index

    def is_reset(self, index: int) -> bool:
        return self.worlds[self._index(index)].is_reset

    def start_image(self, index: int) -> np.ndarray:
        """World ``index``'s first frame of its episode, ``(H, W, 3)`` uint8 (a copy)."""
        return self.worlds[self._index(index)].start_image()

    def last_frames(self, index: int) -> np.ndarray | None:
        """The newest block's ``[T, H, W, 3]`` uint8 frames of world ``index`` (``None`` before a reset)."""
        world = self.worlds[self._index(index)]
        return world.last_frames() if world.is_reset else None

    # ---- reset / step ----------------------------------------------------------------------------
    def check_reset(self, image=None, prompt: str = "") -> None:
        """Raise what :meth:`reset` would raise for this ``image`` / ``prompt``; nothing changes."""
        if image is not None:
            raise ValueError("image: a procedural world starts from its seed; accepted: None")
        check_event(prompt, "prompt")

    def reset(self, index: int, image=None, prompt: str = "", seed: int | None = None) -> BlockOutput:
        """Start world ``index`` from ``seed`` with ``prompt`` as its starting event (``image``: ``None``)."""
        i = self._index(index)
        self.check_reset(image, prompt)
        block = self.worlds[i].reset(seed, prompt)  # as YumeProcedural-v0 always passed its event
        return BlockOutput(block.frames, None, block.info["caption"], block.info)

    def decode_latents(self, latents) -> np.ndarray:
        """Refused: a procedural world renders frames and has no latents to decode."""
        raise ValueError("latents: a procedural world has none; accepted: frame observations")

    def step(self, actions: Sequence[Action | None]) -> list[BlockOutput | None]:
        """Step every world whose action is not ``None`` by one block; if anything raises (a bad
        action, a world not reset, a failed render), no world changed."""
        check_world_actions(actions, self.num_worlds)
        for i, a in enumerate(actions):
            if a is None:
                continue
            if not self.worlds[i].is_reset:
                raise RuntimeError(f"world {i}: step before reset; call reset first")
        mark = self.mark()
        outs: list[BlockOutput | None] = [None] * self.num_worlds
        try:
            for i, a in enumerate(actions):
                if a is not None:
                    block = self.worlds[i].step(a.move, a.look, a.event)
                    outs[i] = BlockOutput(block.frames, None, block.info["caption"], block.info)
        except BaseException:
            self.rollback(mark)
            raise
        return outs

    # ---- snapshots and marks -----------------------------------------------------------------------
    def snapshot(self, index: int) -> dict:
        """World ``index``'s state as a versioned dict (:meth:`ProceduralWorld.snapshot`)."""
        return self.worlds[self._index(index)].snapshot()

    def restore(self, index: int, snapshot: dict) -> None:
        self.worlds[self._index(index)].restore(snapshot)

    def fork(self, source: int, target: int) -> None:
        target = self._index(target)
        self.restore(target, self.snapshot(source))

    def mark(self) -> ProceduralWorldsMark:
        """A cheap handle on every world as it is now, for :meth:`rollback`."""
        return ProceduralWorldsMark(tuple(w.mark() for w in self.worlds))

    def rollback(self, mark: ProceduralWorldsMark) -> None:
        """Put every world back to the moment of :meth:`mark` (e.g. when a caller's reward fails)."""
        if not isinstance(mark, ProceduralWorldsMark) or len(mark.marks) != self.num_worlds:
            raise TypeError(
                f"mark: got {type(mark).__name__}; accepted: a ProceduralWorldsMark of these {self.num_worlds} worlds"
            )
        for world, m in zip(self.worlds, mark.marks):
            world.rollback(m)

    def close(self) -> None:
        """Stop every world's render threads and forget every world (``is_reset`` becomes False)."""
        for world in self.worlds:
            world.close()

    def _index(self, index) -> int:
        return check_world_index(index, self.num_worlds)
