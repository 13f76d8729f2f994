"""``RayWorlds``: the :class:`~yume_env.world.protocol.BatchedWorlds` protocol over Ray workers.

Worlds are sharded over the workers in contiguous blocks; each worker holds a
:class:`~yume_env.world.stream.WorldStream` of its block on its own device. ``step`` sends each
worker its actions, then waits for all of them at once. Snapshots are :class:`SnapshotRef`\\ s: they
stay in the object store of the machine that made them and go straight to the worker that restores
them. Frames come back as read-only views into the object store where Ray allows (copy before
writing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from yume_env.distributed.pool import WorkerPool
from yume_env.distributed.ray_vector import SnapshotRef
from yume_env.distributed.shards import shard_indices
from yume_env.world.protocol import check_world_actions
from yume_env.world.stream import Action, BlockOutput, check_world_index


class RayWorlds:
    """``num_worlds`` generated worlds on W Ray workers (one model per worker).

    Args:
        num_worlds: N.
        workers: W (a new pool, ended by :meth:`close`) or a :class:`WorkerPool`.
        model / checkpoint / device / dtype: the generator each worker loads (as ``YumeWorld-v0``).
        **stream_kwargs: :class:`~yume_env.world.stream.WorldStream` arguments (``resolution``,
            ``steps``, ``shift``, ``decode``, ``fit``, ``speed``, ``max_history``, ``check_finite``).

    A step that fails on one worker (a dead worker raises
    :class:`~yume_env.distributed.errors.WorkerDiedError`) may have advanced the others: actions are
    checked here first so that bad input never gets that far.
    """

    def __init__(
        self,
        num_worlds: int,
        workers: int | WorkerPool = 1,
        *,
        model="tiny",
        checkpoint: str | Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
        **stream_kwargs,
    ):
        if isinstance(num_worlds, bool) or not isinstance(num_worlds, int) or num_worlds < 1:
            raise ValueError(f"num_worlds: got {num_worlds!r}; accepted: an integer >= 1")
        if isinstance(workers, WorkerPool):
            self.pool, self._owns_pool = workers, False
        else:
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise ValueError(f"workers: got {workers!r}; accepted: an integer >= 1 or a WorkerPool")
            shard_indices(num_worlds, workers)
            self.pool = WorkerPool(workers, num_gpus=1 if str(device or "").startswith("cuda") else 0)
            self._owns_pool = True
        self.shards = shard_indices(num_worlds, self.pool.num_workers)
        self._worker_of = np.repeat(np.arange(len(self.shards)), [len(s) for s in self.shards])
        model_kwargs = {"model": model, "checkpoint": checkpoint, "device": device, "dtype": dtype}
        described = self._gather(
            [
                (k, self.pool.handles[k].build_stream.remote(len(shard), model_kwargs, stream_kwargs))
                for k, shard in enumerate(self.shards)
            ]
        )
        self._resolution = tuple(described[0]["resolution"])
        self._frames_per_block = int(described[0]["frames_per_block"])
        self._num_worlds = num_worlds

    # ------------------------------------------------------------------ protocol properties
    @property
    def num_worlds(self) -> int:
        return self._num_worlds

    @property
    def resolution(self) -> tuple[int, int]:
        return self._resolution

    @property
    def frames_per_block(self) -> int:
        return self._frames_per_block

    # ------------------------------------------------------------------ plumbing
    def worlds_of(self, worker: int) -> list[int]:
        return list(self.shards[worker])

    def _gather(self, calls):
        self.pool.check_alive([k for k, _ in calls], self.worlds_of)
        return self.pool.gather(calls, self.worlds_of)

    def _local(self, index) -> tuple[int, int]:
        check_world_index(index, self.num_worlds)
        k = int(self._worker_of[index])
        return k, self.shards[k].index(int(index))

    def _one(self, index, method: str, *args):
        k, j = self._local(index)
        self.pool.check_alive([k], self.worlds_of)
        return self.pool.gather(
            [(k, getattr(self.pool.handles[k], method).remote(j, *args))], self.worlds_of
        )[0]

    # ------------------------------------------------------------------ protocol methods
    def reset(self, index: int, image=None, prompt: str = "", seed: int | None = None) -> BlockOutput:
        return self._one(index, "stream_reset", image, prompt, seed)

    def step(self, actions: Sequence[Action | None]) -> list[BlockOutput | None]:
        check_world_actions(actions, self.num_worlds)
        calls = [
            (k, self.pool.handles[k].stream_step.remote([actions[i] for i in shard]))
            for k, shard in enumerate(self.shards)
            if any(actions[i] is not None for i in shard)
        ]
        results: list[BlockOutput | None] = [None] * self.num_worlds
        for (k, _), outs in zip(calls, self._gather(calls)):
            for i, out in zip(self.shards[k], outs):
                results[i] = out
        return results

    def snapshot(self, index: int) -> SnapshotRef:
        k, j = self._local(index)
        self.pool.check_alive([k], self.worlds_of)
        ref = self.pool.handles[k].stream_snapshot.remote(j)
        self.pool.gather([(k, ref)], self.worlds_of)
        return SnapshotRef(ref)

    def restore(self, index: int, snapshot) -> None:
        """``snapshot``: a :class:`SnapshotRef` from any worker, or a ``WorldSnapshot``."""
        self._one(index, "stream_restore", snapshot.ref if isinstance(snapshot, SnapshotRef) else snapshot)

    def fork(self, source: int, target: int) -> None:
        self._local(target)
        self.restore(target, self.snapshot(source))

    def last_frames(self, index: int) -> np.ndarray | None:
        return self._one(index, "stream_last_frames")

    def close(self) -> None:
        if self._owns_pool:
            self.pool.shutdown()
