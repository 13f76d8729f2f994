"""``RayShardedVectorEnv``: a registered env's N worlds sharded over W Ray workers, whole vector envs.

For env ids without a world backend (``YumeProcedural-v0``): each worker builds
``gym.make_vec(env_id, num_envs=n_k, ...)`` for its contiguous block of worlds, so world i's
frames, rewards, truncations, autoresets and infos are exactly those of the in-process vector env.
``YumeWorld-v0`` runs on :class:`~yume_env.envs.ray_vector.RayVectorEnv` instead (the same vector
env as in-process, over :class:`~yume_env.distributed.RayWorlds`);
``RayVectorEnv("YumeProcedural-v0", ...)`` builds this one.

Every ``step`` sends each worker its share of the actions first, then waits for all of them at
once. Arrays nested in infos (``final_obs``) are zero-copy, **read-only** views into the object
store: copy them (``np.array(x)``) before writing to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import ray
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from yume_env.distributed.errors import WorkerDiedError
from yume_env.distributed.pool import WorkerPool, resolve_pool
from yume_env.distributed.shards import merge_infos, per_world, shard_indices, split_batch
from yume_env.distributed.worlds import SnapshotRef
from yume_env.envs.validation import check_vector_args, parse_batched_actions
from yume_env.envs.world_vector import check_world


@dataclass(frozen=True)
class RayEnvOptions:
    """The Ray vector envs' own keywords (the rest go to the env), checked: ``autoreset_mode``,
    ``snapshot_every`` and, for a new pool, ``num_gpus``, ``num_cpus``, ``threads``,
    ``actor_options``, ``timeout_s`` (see :class:`~yume_env.distributed.pool.WorkerPool`)."""

    autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP
    snapshot_every: int | None = None
    num_gpus: float | None = None
    num_cpus: float | None = None
    threads: int | None = None
    actor_options: dict | None = None
    timeout_s: float | None = None

    def __post_init__(self):
        _, mode = check_vector_args(1, self.autoreset_mode)
        object.__setattr__(self, "autoreset_mode", mode)
        every = self.snapshot_every
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"snapshot_every: got {every!r}; accepted: an integer >= 1 or None")

    @classmethod
    def pop(cls, kwargs: dict) -> RayEnvOptions:
        """The options among ``kwargs``, removed from it."""
        return cls(**{f.name: kwargs.pop(f.name) for f in fields(cls) if f.name in kwargs})

    def pool_options(self) -> dict:
        return {
            k: getattr(self, k) for k in ("num_gpus", "num_cpus", "threads", "actor_options", "timeout_s")
        }

    def resolve_pool(self, workers, num_worlds: int, cuda: bool) -> tuple[WorkerPool, bool]:
        """``(pool, owned)`` for ``workers`` (see :func:`~yume_env.distributed.pool.resolve_pool`)."""
        return resolve_pool(workers, num_worlds, cuda=cuda, **self.pool_options())


def check_restart(env, worker, snapshots: Mapping[int, object] | None) -> dict:
    """``restart_worker``'s arguments for a Ray vector env: a worker index, and snapshots only of
    that worker's worlds (returned as a dict)."""
    if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < env.pool.num_workers:
        raise IndexError(f"worker: got {worker!r}; accepted: 0..{env.pool.num_workers - 1}")
    snapshots = dict(snapshots or {})
    for i in snapshots:
        if env.worker_of(i) != worker:
            raise ValueError(
                f"snapshots: world {i} is on worker {env.worker_of(i)}, not {worker}; "
                f"accepted: worlds {env.worlds_of(worker)}"
            )
    return snapshots


#: Constructor arguments of the in-process vector envs that take one value per world.
_PER_WORLD_KWARGS = ("image", "prompt")


class RayShardedVectorEnv(VectorEnv):
    """N worlds of ``env_id`` on W Ray workers, behind the Gymnasium vector API.

    Args:
        env_id: a registered id, e.g. ``"YumeProcedural-v0"``.
        num_envs: N.
        workers: W (a new :class:`~yume_env.distributed.pool.WorkerPool`, ended by ``close``), or a
            pool you built and keep (its workers keep their model loaded between envs).
        autoreset_mode: ``NEXT_STEP`` (default), ``SAME_STEP`` or ``DISABLED``, as in-process.
        snapshot_every: keep a snapshot of every world after each reset and every this many steps
            (``None``: keep none). :meth:`restart_worker` restores a dead worker's worlds from them.
            YumeWorld-v0 only; the snapshots stay in the object store of the worker's machine.
        num_gpus / num_cpus / threads / actor_options / timeout_s: for a new pool (see
            :class:`~yume_env.distributed.pool.WorkerPool`). Default: one GPU per worker when
            ``device`` starts with ``"cuda"``, else one CPU core and one torch thread per worker.
        **env_kwargs: the env's own arguments. ``image`` and ``prompt`` may be lists with one entry
            per world (YumeWorld-v0); paths must exist on the workers' machines (arrays always work).

    Per-world state lives on the workers: ``reward_fn`` runs there (each worker has its own copy of
    it) and its ``info["world"]`` is the world's global index only in the infos returned here.
    Infos equal the in-process vector env's except ``batch_size`` (the worlds batched together on
    that world's worker) and the timings (which compare equal anyway).

    Branching: :meth:`snapshot`, :meth:`restore` and :meth:`fork` work across workers (a snapshot
    taken on worker 0 restores on worker 1 through the object store). Failures: a dead worker
    raises :class:`~yume_env.distributed.errors.WorkerDiedError` naming it and its worlds; the
    other workers' worlds finished that step. :meth:`restart_worker` brings the dead worker's worlds
    back from their last kept snapshots; to put the whole batch back in lockstep, restore every
    world from :attr:`kept_snapshots` too.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self, env_id: str = "YumeWorld-v0", num_envs: int = 1, workers: int | WorkerPool = 1, **kwargs
    ):
        options = RayEnvOptions.pop(kwargs)
        env_kwargs = kwargs
        num_envs, autoreset_mode = check_vector_args(num_envs, options.autoreset_mode)
        snapshot_every = options.snapshot_every
        if not isinstance(env_id, str) or env_id not in gym.registry:
            raise ValueError(f"env_id: got {env_id!r}; accepted: a registered id such as 'YumeWorld-v0'")
        spec = gym.spec(env_id)
        if snapshot_every is not None and spec.vector_entry_point is None:
            raise ValueError(
                f"snapshot_every: {env_id} shards run gymnasium's SyncVectorEnv, which has no world "
                "snapshots; accepted: None, or env_id='YumeWorld-v0'"
            )
        self.pool, self._owns_pool = options.resolve_pool(
            workers, num_envs, str(env_kwargs.get("device") or "").startswith("cuda")
        )
        self.env_id = env_id
        self.num_envs = num_envs
        self.autoreset_mode = autoreset_mode
        self.snapshot_every = snapshot_every
        self.shards = shard_indices(num_envs, self.pool.num_workers)
        self._worker_of = np.repeat(np.arange(len(self.shards)), [len(s) for s in self.shards])

        # the workers' constructor arguments, per shard (kept to rebuild a restarted worker)
        self._build_args = []
        per_world_values = {
            key: per_world(env_kwargs[key], num_envs, key) for key in _PER_WORLD_KWARGS if key in env_kwargs
        }
        for shard in self.shards:
            kwargs = dict(env_kwargs)
            for key, values in per_world_values.items():
                kwargs[key] = [values[i] for i in shard]
            vector_kwargs = None
            if spec.vector_entry_point is not None:
                kwargs["autoreset_mode"] = autoreset_mode
            else:
                vector_kwargs = {"autoreset_mode": autoreset_mode}
            self._build_args.append((env_id, len(shard), kwargs, vector_kwargs))
        built = self._call_all("build_vector", [args for args in self._build_args])
        single_obs, single_act, metadata = built[0]
        self.single_observation_space = single_obs
        self.single_action_space = single_act
        self.observation_space = batch_space(single_obs, num_envs)
        self.action_space = batch_space(single_act, num_envs)
        self.metadata = {**metadata, "autoreset_mode": autoreset_mode}
        self.render_mode = env_kwargs.get("render_mode")
        self._kept: list[SnapshotRef | None] = [None] * num_envs
        self._ended = np.zeros(num_envs, dtype=bool)  # for DISABLED's error, with global indices
        self._steps_since_keep = 0
        self._yume_actions = spec.vector_entry_point is not None or env_id == "YumeProcedural-v0"

    # ------------------------------------------------------------------ plumbing
    def worker_of(self, index: int) -> int:
        """The worker holding world ``index``."""
        return int(self._worker_of[self._check_world(index, "index")])

    def worlds_of(self, worker: int) -> list[int]:
        """The global indices of the worlds worker ``worker`` holds."""
        return list(self.shards[worker])

    def _check_world(self, index, name: str) -> int:
        return check_world(index, self.num_envs, name)

    def _local(self, index: int) -> tuple[int, int]:
        k = self.worker_of(index)
        return k, self.shards[k].index(int(index))

    def _call_all(self, method: str, args_per_worker: Sequence[tuple]) -> list:
        """``method(*args)`` on every worker concurrently; results in worker order."""
        workers = range(self.pool.num_workers)
        self.pool.check_alive(workers, self.worlds_of)
        calls = [
            (k, getattr(self.pool.handles[k], method).remote(*args))
            for k, args in zip(workers, args_per_worker)
        ]
        return self.pool.gather(calls, self.worlds_of)

    def _call_keep(self, method: str, args_per_worker: Sequence[tuple]) -> list:
        """Like :meth:`_call_all`, and keep every world's snapshot taken right after the call."""
        workers = range(self.pool.num_workers)
        self.pool.check_alive(workers, self.worlds_of)
        calls, snaps = [], []
        for k, args in zip(workers, args_per_worker):
            refs = (
                getattr(self.pool.handles[k], method)
                .options(num_returns=1 + len(self.shards[k]))
                .remote(*args, True)
            )
            calls.append((k, refs[0]))
            snaps.append(refs[1:])
        results = self.pool.gather(calls, self.worlds_of)
        for shard, refs in zip(self.shards, snaps):  # only once the call succeeded everywhere
            for i, ref in zip(shard, refs):
                self._kept[i] = SnapshotRef(ref)
        self._steps_since_keep = 0
        return results

    # ------------------------------------------------------------------ VectorEnv API
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        """Reset all worlds (or those in ``options["reset_mask"]``). ``seed=s`` seeds world i with
        ``s + i``, as the in-process vector env does; a list gives one seed per world."""
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(
                    f"seed: got {len(seeds)} seeds; accepted: one int, or one per world ({self.num_envs})"
                )
        options = dict(options or {})
        mask = options.get("reset_mask")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask']: got {mask!r}; accepted: a bool array of shape ({self.num_envs},)"
                )
        per_world_options = {
            key: per_world(options[key], self.num_envs, f"options[{key!r}]")
            for key in _PER_WORLD_KWARGS
            if key in options
        }
        args = []
        for shard in self.shards:
            shard_options = {k: v for k, v in options.items() if k not in per_world_options}
            for key, values in per_world_options.items():
                shard_options[key] = [values[i] for i in shard]
            if mask is not None:
                shard_options["reset_mask"] = mask[shard]
            args.append(([seeds[i] for i in shard], shard_options or None))
        if self.snapshot_every is not None:
            results = self._call_keep("reset", args)
        else:
            results = self._call_all("reset", args)
        obs = np.concatenate([r[0] for r in results])
        infos = merge_infos(self.num_envs, [(s, r[1]) for s, r in zip(self.shards, results)])
        self._ended[np.ones(self.num_envs, dtype=bool) if mask is None else mask] = False
        return obs, infos

    def step(self, actions):
        parts = self._split_actions(actions)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._ended.any():
            ended = np.flatnonzero(self._ended).tolist()
            raise gym.error.ResetNeeded(
                f"world(s) {ended} ended; with autoreset DISABLED reset them with reset(options={{'reset_mask': mask}})"
            )
        keep = self.snapshot_every is not None and self._steps_since_keep + 1 >= self.snapshot_every
        args = [(part,) for part in parts]
        results = self._call_keep("step", args) if keep else self._call_all("step", args)
        if not keep:
            self._steps_since_keep += 1
        obs = np.concatenate([r[0] for r in results])
        rewards = np.concatenate([r[1] for r in results])
        terminated = np.concatenate([r[2] for r in results])
        truncated = np.concatenate([r[3] for r in results])
        infos = merge_infos(self.num_envs, [(s, r[4]) for s, r in zip(self.shards, results)])
        self._ended = terminated | truncated
        return obs, rewards, terminated, truncated, infos

    def _split_actions(self, actions) -> list:
        if self._yume_actions:
            actions = self._check_yume_actions(actions)
        return [split_batch(actions, shard) for shard in self.shards]

    def _check_yume_actions(self, actions) -> dict:
        """The in-process vector env's checks, with global world indices in the messages; returns
        the actions with ``event`` filled in when it was left out."""
        parse_batched_actions(actions, self.num_envs)
        events = actions.get("event", ("",) * self.num_envs)
        return {**actions, "event": tuple(events)}

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        return tuple(
            frame for part in self._call_all("render", [()] * self.pool.num_workers) for frame in part
        )

    def close_extras(self, **kwargs):
        pool = getattr(self, "pool", None)  # None when the constructor failed early
        if pool is None or not pool.handles or not ray.is_initialized():  # or Ray is already gone
            return
        if self._owns_pool:
            self.pool.shutdown()
        else:
            try:
                self._call_all("close", [()] * self.pool.num_workers)
            except WorkerDiedError:
                pass

    # ------------------------------------------------------------------ branching
    def snapshot(self, index: int) -> SnapshotRef:
        """World ``index`` and its episode, kept in the object store (YumeWorld-v0)."""
        k, j = self._local(index)
        self.pool.check_alive([k], self.worlds_of)
        ref = self.pool.handles[k].snapshot.remote(j)
        self.pool.gather([(k, ref)], self.worlds_of)  # surface errors now, not at restore
        return SnapshotRef(ref)

    def restore(self, index: int, snapshot) -> None:
        """Put world ``index`` back to ``snapshot`` (a :class:`SnapshotRef` from any worker, or a
        :class:`~yume_env.envs.vector.VectorWorldSnapshot`)."""
        k, j = self._local(index)
        value = snapshot.ref if isinstance(snapshot, SnapshotRef) else snapshot
        self.pool.check_alive([k], self.worlds_of)
        self.pool.gather([(k, self.pool.handles[k].restore.remote(j, value))], self.worlds_of)
        self._ended[index] = False  # the worker still refuses to step a restored world that had ended

    def fork(self, source: int, target: int) -> None:
        """Make world ``target`` an exact copy of world ``source``, also across workers: the
        snapshot goes from the source's worker to the target's through the object store."""
        self._check_world(target, "target")
        self.restore(target, self.snapshot(self._check_world(source, "source")))

    @property
    def kept_snapshots(self) -> list[SnapshotRef | None]:
        """The last snapshot kept of each world (``snapshot_every``), or ``None``."""
        return list(self._kept)

    def restart_worker(self, worker: int, snapshots: Mapping[int, object] | None = None) -> list[int]:
        """Replace worker ``worker`` by a fresh one and bring back its worlds.

        Each of its worlds is restored from ``snapshots[i]`` when given (a :class:`SnapshotRef` or a
        ``VectorWorldSnapshot`` you kept), else from its last kept snapshot. Returns the worlds that
        had neither: they must be reset (``reset(options={"reset_mask": mask})``) before stepping.
        """
        snapshots = check_restart(self, worker, snapshots)
        self.pool.restart(worker)
        handle = self.pool.handles[worker]
        self.pool.gather([(worker, handle.build_vector.remote(*self._build_args[worker]))], self.worlds_of)
        missing, calls = [], []
        for j, i in enumerate(self.shards[worker]):
            snap = snapshots.get(i, self._kept[i])
            if snap is None:
                missing.append(i)
                continue
            calls.append(
                (worker, handle.restore.remote(j, snap.ref if isinstance(snap, SnapshotRef) else snap))
            )
        self.pool.gather(calls, self.worlds_of)
        return missing
