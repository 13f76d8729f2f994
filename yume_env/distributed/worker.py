"""``WorldWorker``: what runs inside one Ray actor.

One worker owns one device (a GPU when the actor was given ``num_gpus=1``: Ray sets
``CUDA_VISIBLE_DEVICES`` so ``"cuda"`` is that GPU; or ``threads`` CPU threads) and one batched
backend (for :class:`~yume_env.distributed.worlds.RayWorlds`), built from the driver's spec: a
:class:`~yume_env.world.stream.WorldStream` from a :class:`~yume_env.world.spec.WorldSpec`, or
procedural worlds from a :class:`~yume_env.procedural.spec.ProceduralSpec`. The class is plain
Python; the pool turns it into an actor with ``ray.remote``. Everything here runs on the worker's
machine.
"""

from __future__ import annotations

import os
import socket

import torch


class WorldWorker:
    """One device, one batched backend. Methods are called by the driver through Ray."""

    def __init__(self, threads: int | None = None):
        if threads is not None:
            # Frames on CPU depend on the thread count (reductions split by thread), so fix it.
            torch.set_num_threads(int(threads))
        self.stream = None

    def describe(self) -> dict:
        """Where this worker runs (host, pid, torch threads, visible GPUs)."""
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "threads": torch.get_num_threads(),
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        }

    # ------------------------------------------------------------------ the backend
    def build_stream(self, num_worlds: int, spec) -> dict:
        """Build this worker's backend of ``num_worlds`` worlds from ``spec`` (a
        :class:`~yume_env.world.protocol.WorldBackendSpec`); returns what the driver needs to know."""
        self.stream_close()
        self.stream = spec.build(num_worlds)
        self._mark = None
        self._step_mark = None
        shape = self.stream.latent_shape
        return {
            "resolution": tuple(self.stream.resolution),
            "frames_per_block": self.stream.frames_per_block,
            "latent_shape": None if shape is None else tuple(shape),
            "reset_seed_is_world_seed": bool(getattr(self.stream, "reset_seed_is_world_seed", False)),
            "reset_repeats_start": bool(getattr(self.stream, "reset_repeats_start", False)),
        }

    def stream_reset(self, index: int, image, prompt: str, seed):
        return self.stream.reset(index, image=image, prompt=prompt, seed=seed)

    def stream_step(self, actions):
        self._step_mark = self.stream.mark()  # for undo_step when another worker's part fails
        return self.stream.step(actions)

    def undo_step(self) -> None:
        """Undo the last ``stream_step`` (the driver's step failed on another worker)."""
        if self._step_mark is not None:
            self.stream.rollback(self._step_mark)
            self._step_mark = None

    def stream_mark(self) -> int:
        """Mark every world's state here; returns the mark's number for :meth:`stream_rollback`."""
        self._mark = (0 if self._mark is None else self._mark[0] + 1, self.stream.mark())
        return self._mark[0]

    def stream_rollback(self, number: int) -> None:
        if self._mark is None or self._mark[0] != number:
            raise RuntimeError(f"mark: got number {number}; accepted: the last mark() of this worker")
        self.stream.rollback(self._mark[1])

    def stream_snapshot(self, index: int):
        return self.stream.snapshot(index)

    def stream_snapshots(self):
        """One snapshot per world of this worker (each its own object, with ``num_returns``)."""
        snaps = [self.stream.snapshot(j) for j in range(self.stream.num_worlds)]
        return snaps[0] if len(snaps) == 1 else tuple(snaps)

    def stream_restore(self, index: int, snapshot) -> None:
        self.stream.restore(index, snapshot)

    def stream_call(self, method: str, *args):
        """A read-only protocol call (``last_frames``, ``is_reset``, ``block_index``, ``check_reset``,
        ``decode_latents``) on this worker's stream."""
        if method not in ("last_frames", "is_reset", "block_index", "check_reset", "decode_latents"):
            raise ValueError(f"method: got {method!r}; accepted: a read-only world call")
        return getattr(self.stream, method)(*args)

    def stream_close(self) -> None:
        if self.stream is not None:
            self.stream.close()
