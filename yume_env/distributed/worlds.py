"""``RayWorlds``: the :class:`~yume_env.world.protocol.BatchedWorlds` protocol over Ray workers.

Worlds are sharded over the workers in contiguous blocks; each worker holds the backend of its
block (a :class:`~yume_env.world.stream.WorldStream` on its own device, procedural worlds, ...),
built from one spec (:class:`~yume_env.world.protocol.WorldBackendSpec`: ``spec.build(n)``).
``step`` sends each worker its actions, then waits for all of them at once. Snapshots are :class:`SnapshotRef`\\ s: they stay in the object store of the machine
that made them and go straight to the worker that restores them. Frames come back as read-only
views into the object store where Ray allows (copy before writing).

Failures: a dead worker raises :class:`~yume_env.distributed.errors.WorkerDiedError` naming it and
the worlds it held; a step that fails anywhere is undone on the workers that are still alive, so
no world changed. :meth:`RayWorlds.restart_worker` replaces a dead worker by a fresh one with empty
worlds (restore them from snapshots, or reset them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import ray

from yume_env.distributed.errors import WorkerDiedError
from yume_env.distributed.pool import WorkerPool, resolve_pool
from yume_env.distributed.shards import shard_indices
from yume_env.world.protocol import WorldBackendSpec, check_world_actions
from yume_env.world.spec import WorldSpec
from yume_env.world.stream import Action, BlockOutput, check_world_index


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot kept in Ray's object store (nothing is copied to the driver).

    Pass it to ``restore`` of any worker (Ray moves it between machines); ``get()`` fetches the
    snapshot itself (its arrays are read-only).
    """

    ref: ray.ObjectRef

    def get(self):
        return ray.get(self.ref)


class RayWorlds:
    """``num_worlds`` worlds of any backend on W Ray workers (one backend, e.g. one model, per worker).

    Args:
        num_worlds: N.
        workers: W (a new pool, ended by :meth:`close`) or a :class:`WorkerPool`.
        spec: what every worker builds its worlds from: a :class:`~yume_env.world.spec.WorldSpec`,
            a :class:`~yume_env.procedural.spec.ProceduralSpec` or any ``WorldBackendSpec``.
        pool_options: for a new pool: ``num_gpus``, ``num_cpus``, ``threads``, ``actor_options``,
            ``timeout_s`` (see :class:`WorkerPool`; default one GPU per worker when the spec's
            device is CUDA).
        **world_kwargs: or a ``WorldSpec``'s arguments (``model``, ``resolution``, ``decode``, ...).
    """

    def __init__(
        self,
        num_worlds: int,
        workers: int | WorkerPool = 1,
        spec: WorldSpec | None = None,
        pool_options: dict | None = None,
        **world_kwargs,
    ):
        if isinstance(num_worlds, bool) or not isinstance(num_worlds, int) or num_worlds < 1:
            raise ValueError(f"num_worlds: got {num_worlds!r}; accepted: an integer >= 1")
        if spec is not None and world_kwargs:
            raise TypeError("spec / world_kwargs: got both; accepted: a WorldSpec or its arguments")
        self.spec = WorldSpec.from_kwargs(**world_kwargs) if spec is None else spec
        if not isinstance(self.spec, WorldBackendSpec):
            raise TypeError(
                f"spec: got {type(self.spec).__name__}; accepted: a WorldSpec, ProceduralSpec or another "
                "WorldBackendSpec"
            )
        pool_options = dict(pool_options or {})
        device = str(getattr(self.spec, "device", None) or "")  # a spec without a device runs on CPU
        self.pool, self._owns_pool = resolve_pool(
            workers, num_worlds, cuda=device.startswith("cuda"), **pool_options
        )
        self.shards = shard_indices(num_worlds, self.pool.num_workers)
        self._worker_of = np.repeat(np.arange(len(self.shards)), [len(s) for s in self.shards])
        self._num_worlds = num_worlds
        described = self._gather(
            [
                (k, self.pool.handles[k].build_stream.remote(len(shard), self.spec))
                for k, shard in enumerate(self.shards)
            ]
        )
        self._resolution = tuple(described[0]["resolution"])
        self._frames_per_block = int(described[0]["frames_per_block"])
        shape = described[0]["latent_shape"]
        self._latent_shape = None if shape is None else tuple(shape)
        # how the workers' backend starts its worlds (see yume_env.world.protocol)
        self.reset_seed_is_world_seed = described[0]["reset_seed_is_world_seed"]
        self.reset_repeats_start = described[0]["reset_repeats_start"]

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

    @property
    def latent_shape(self) -> tuple[int, int, int, int] | None:
        return self._latent_shape

    # ------------------------------------------------------------------ plumbing
    def worker_of(self, index: int) -> int:
        """The worker holding world ``index``."""
        return int(self._worker_of[check_world_index(index, self.num_worlds)])

    def worlds_of(self, worker: int) -> list[int]:
        """The world indices worker ``worker`` holds."""
        return list(self.shards[worker])

    def _gather(self, calls):
        self.pool.check_alive([k for k, _ in calls], self.worlds_of)
        return self.pool.gather(calls, self.worlds_of)

    def _local(self, index) -> tuple[int, int]:
        k = self.worker_of(index)
        return k, self.shards[k].index(int(index))

    def _one(self, index, method: str, *args):
        k, j = self._local(index)
        return self._gather([(k, getattr(self.pool.handles[k], method).remote(j, *args))])[0]

    def _on_worker_0(self, method: str, *args):
        return self._gather([(0, self.pool.handles[0].stream_call.remote(method, *args))])[0]

    def _live(self) -> list[int]:
        return [k for k in range(self.pool.num_workers) if k not in self.pool.dead]

    # ------------------------------------------------------------------ protocol methods
    def reset(self, index: int, image=None, prompt: str = "", seed: int | None = None) -> BlockOutput:
        return self._one(index, "stream_reset", image, prompt, seed)

    def step(self, actions: Sequence[Action | None]) -> list[BlockOutput | None]:
        """Step every worker's worlds at once. If any worker fails (or died), the workers still alive
        undo their part: no world changed."""
        check_world_actions(actions, self.num_worlds)
        calls = [
            (k, self.pool.handles[k].stream_step.remote([actions[i] for i in shard]))
            for k, shard in enumerate(self.shards)
            if any(actions[i] is not None for i in shard)
        ]
        try:
            answers = self._gather(calls)
        except BaseException:
            undo = [(k, self.pool.handles[k].undo_step.remote()) for k, _ in calls if k not in self.pool.dead]
            try:
                self.pool.gather(undo, self.worlds_of)
            except WorkerDiedError:  # another one died meanwhile: its worlds are lost anyway
                pass
            raise
        results: list[BlockOutput | None] = [None] * self.num_worlds
        for (k, _), outs in zip(calls, answers):
            for i, out in zip(self.shards[k], outs):
                results[i] = out
        return results

    def mark(self) -> dict[int, int]:
        """Mark every worker's worlds (one short call to each) for :meth:`rollback`."""
        marks = self._gather(
            [(k, self.pool.handles[k].stream_mark.remote()) for k in range(self.pool.num_workers)]
        )
        return dict(enumerate(marks))

    def rollback(self, mark: dict[int, int]) -> None:
        """Put the worlds of every worker still alive back to ``mark`` (a dead worker's are lost)."""
        if not isinstance(mark, dict):
            raise TypeError(f"mark: got {type(mark).__name__}; accepted: a mark() of these worlds")
        calls = [
            (k, self.pool.handles[k].stream_rollback.remote(n))
            for k, n in mark.items()
            if k not in self.pool.dead
        ]
        try:
            self.pool.gather(calls, self.worlds_of)
        except WorkerDiedError:
            pass

    def snapshot(self, index: int) -> SnapshotRef:
        k, j = self._local(index)
        self.pool.check_alive([k], self.worlds_of)
        ref = self.pool.handles[k].stream_snapshot.remote(j)
        self.pool.gather([(k, ref)], self.worlds_of)  # surface errors now, not at restore
        return SnapshotRef(ref)

    def snapshots(self) -> list[SnapshotRef]:
        """A snapshot of every world, taken by all workers at once (each stays on its worker's machine)."""
        self.pool.check_alive(range(self.pool.num_workers), self.worlds_of)
        calls, refs = [], []
        for k, shard in enumerate(self.shards):
            out = self.pool.handles[k].stream_snapshots.options(num_returns=len(shard)).remote()
            out = [out] if len(shard) == 1 else list(out)
            calls.extend((k, r) for r in out)
            refs.extend(out)
        self.pool.gather(calls, self.worlds_of)
        return [SnapshotRef(r) for r in refs]

    def restore(self, index: int, snapshot) -> None:
        """``snapshot``: a :class:`SnapshotRef` from any worker, or a ``WorldSnapshot``."""
        self._one(index, "stream_restore", snapshot.ref if isinstance(snapshot, SnapshotRef) else snapshot)

    def fork(self, source: int, target: int) -> None:
        self._local(target)
        self.restore(target, self.snapshot(source))

    def last_frames(self, index: int) -> np.ndarray | None:
        k, j = self._local(index)
        return self._gather([(k, self.pool.handles[k].stream_call.remote("last_frames", j))])[0]

    def is_reset(self, index: int) -> bool:
        k, j = self._local(index)
        return self._gather([(k, self.pool.handles[k].stream_call.remote("is_reset", j))])[0]

    def block_index(self, index: int) -> int:
        k, j = self._local(index)
        return self._gather([(k, self.pool.handles[k].stream_call.remote("block_index", j))])[0]

    def check_reset(self, image=None, prompt: str = "") -> None:
        """Checked on a worker: image paths must exist where the worlds run."""
        self._on_worker_0("check_reset", image, prompt)

    def decode_latents(self, latents) -> np.ndarray:
        return self._on_worker_0("decode_latents", latents)

    # ------------------------------------------------------------------ failures and shutdown
    def restart_worker(self, worker: int) -> list[int]:
        """Replace worker ``worker`` by a fresh one built from the same spec; returns the worlds it
        holds, which are empty until restored or reset."""
        if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < self.pool.num_workers:
            raise IndexError(f"worker: got {worker!r}; accepted: 0..{self.pool.num_workers - 1}")
        self.pool.restart(worker)
        handle = self.pool.handles[worker]
        self.pool.gather(
            [(worker, handle.build_stream.remote(len(self.shards[worker]), self.spec))], self.worlds_of
        )
        return self.worlds_of(worker)

    def close(self) -> None:
        """End the pool when this object started it; otherwise empty the workers' worlds (the pool and
        its loaded models stay for the next user)."""
        if not self.pool.handles or not ray.is_initialized():
            return
        if self._owns_pool:
            self.pool.shutdown()
            return
        try:
            self.pool.gather(
                [(k, self.pool.handles[k].stream_close.remote()) for k in self._live()], self.worlds_of
            )
        except WorkerDiedError:
            pass
