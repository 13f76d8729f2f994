"""``RayVectorEnv``: a Yume vector env with its worlds sharded over W Ray workers.

``gym.make_vec("YumeWorld-v0", num_envs=N, workers=W, ...)`` (or ``"YumeProcedural-v0"``) builds
it. It is the in-process vector env (:class:`~yume_env.envs.world_vector.WorldVectorEnv`, the same
episode logic) over :class:`~yume_env.distributed.RayWorlds`: each worker holds the backend of its
contiguous block of worlds (a :class:`~yume_env.world.stream.WorldStream`, or procedural worlds),
built from the same spec (:class:`~yume_env.world.protocol.WorldBackendSpec`), and
every ``step`` sends all workers their actions before waiting for any. World i's frames, rewards,
truncations, autoresets and infos are those of the in-process vector env (and of a single env)
with the same seed and actions, whatever W is (on CPU: for equal torch thread counts; give the
single env the workers' ``threads``). Episodes, seeds and ``reward_fn`` live in this process.

Frames come from Ray's object store; the observation batch is one writable copy. ``final_obs``
arrays and snapshots fetched with ``SnapshotRef.get()`` are read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import ray
from gymnasium.vector import AutoresetMode

from yume_env.distributed.pool import WorkerPool
from yume_env.distributed.worlds import RayWorlds, SnapshotRef
from yume_env.envs.episodes import EpisodeSnapshot
from yume_env.envs.families import family_of
from yume_env.envs.validation import check_vector_args
from yume_env.envs.world_vector import WorldVectorEnv

__all__ = ["RayEnvOptions", "RayShardedVectorEnv", "RayVectorEnv", "SnapshotRef", "check_restart"]


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


class RayVectorEnv(WorldVectorEnv):
    """N worlds of ``env_id`` on W Ray workers, behind the Gymnasium vector API.

    Args:
        env_id: ``"YumeWorld-v0"`` (default) or ``"YumeProcedural-v0"`` (each worker holds
            :class:`~yume_env.procedural.worlds.ProceduralWorlds` built from its
            :class:`~yume_env.procedural.spec.ProceduralSpec`; ``snapshot_every`` is refused).
        num_envs: N.
        workers: W (a new :class:`~yume_env.distributed.pool.WorkerPool`, ended by ``close``), or a
            pool you built and keep (its workers keep their model loaded between envs).
        autoreset_mode: ``NEXT_STEP`` (default), ``SAME_STEP`` or ``DISABLED``, as in-process.
        snapshot_every: keep a snapshot of every world and its episode after each reset and every
            this many steps (``None``: keep none). :meth:`restart_worker` restores a dead worker's
            worlds from them; the worlds' state stays in the object store of its worker's machine.
        num_gpus / num_cpus / threads / actor_options / timeout_s: for a new pool (see
            :class:`~yume_env.distributed.pool.WorkerPool`). Default: one GPU per worker when
            ``device`` starts with ``"cuda"``, else one CPU core and one torch thread per worker.
        **env_kwargs: the env's arguments; ``YumeWorld-v0``'s ``image`` and ``prompt`` may be lists
            with one entry per world; image paths must exist on the workers' machines (arrays always
            work).

    Branching: :meth:`snapshot`, :meth:`restore` and :meth:`fork` work across workers (a snapshot
    taken on worker 0 restores on worker 1 through the object store). Failures: a dead worker
    raises :class:`~yume_env.distributed.errors.WorkerDiedError` naming it and its worlds, and no
    world changed (the live workers undo their part of the step); until it is restarted every call
    raises at once. :meth:`restart_worker` brings its worlds back from their last kept snapshots.
    """

    def __init__(
        self, env_id: str = "YumeWorld-v0", num_envs: int = 1, workers: int | WorkerPool = 1, **kwargs
    ):
        # every check first: starting actors and loading models takes a while
        options = RayEnvOptions.pop(kwargs)
        family = family_of(env_id)
        num_envs, autoreset_mode, self.world_spec, episode = family.vector_parts(
            num_envs, options.autoreset_mode, tuple(self.metadata["render_modes"]), kwargs
        )
        if options.snapshot_every is not None and not family.keeps_snapshots:
            raise ValueError(
                f"snapshot_every: {env_id} keeps no snapshots on its workers; accepted: None, "
                "or env_id='YumeWorld-v0'"
            )
        self.env_id = env_id
        self.snapshot_every = options.snapshot_every
        worlds = RayWorlds(num_envs, workers, self.world_spec, options.pool_options())
        self._kept: list[SnapshotRef | None] = [None] * num_envs
        self._steps_since_keep = 0
        try:
            super().__init__(worlds, autoreset_mode, **episode)
        except BaseException:
            worlds.close()
            raise

    # ------------------------------------------------------------------ the workers
    @property
    def pool(self) -> WorkerPool:
        return self.stream.pool

    @property
    def shards(self) -> list[list[int]]:
        """The worlds of each worker (contiguous blocks: 5 worlds on 2 workers are [0, 1, 2], [3, 4])."""
        return self.stream.shards

    def worker_of(self, index: int) -> int:
        """The worker holding world ``index``."""
        return self.stream.worker_of(self._check_world(index))

    def worlds_of(self, worker: int) -> list[int]:
        """The indices of the worlds worker ``worker`` holds."""
        return self.stream.worlds_of(worker)

    # ------------------------------------------------------------------ VectorEnv API
    def reset(self, *, seed=None, options: dict | None = None):
        """As the in-process vector env; keeps every world's snapshot when ``snapshot_every`` is set."""
        result = super().reset(seed=seed, options=options)
        if self.snapshot_every is not None:
            self._keep()
        return result

    def step(self, actions):
        result = super().step(actions)
        self._steps_since_keep += 1
        if self.snapshot_every is not None and self._steps_since_keep >= self.snapshot_every:
            self._keep()
        return result

    def _keep(self) -> None:
        """Keep a snapshot of every started world and its episode (worlds stay on their workers)."""
        refs = self.stream.snapshots() if all(o is not None for o in self._last_obs) else None
        for i in range(self.num_envs):
            if self._last_obs[i] is None:
                continue
            world = refs[i] if refs is not None else self.stream.snapshot(i)
            self._kept[i] = SnapshotRef(ray.put(self._episodes.snapshot(i, world)))
        self._steps_since_keep = 0

    # ------------------------------------------------------------------ branching
    def snapshot(self, index: int) -> SnapshotRef:
        """World ``index`` and its episode, kept in the object store."""
        return SnapshotRef(ray.put(self.snapshot_world(index)))

    def restore(self, index: int, snapshot: SnapshotRef | EpisodeSnapshot) -> None:
        """Put world ``index`` back to ``snapshot`` (a :class:`SnapshotRef` from :meth:`snapshot` or
        :attr:`kept_snapshots`, or an ``EpisodeSnapshot``)."""
        self.restore_world(index, snapshot.get() if isinstance(snapshot, SnapshotRef) else snapshot)

    def fork(self, source: int, target: int) -> None:
        """Make world ``target`` an exact copy of world ``source``, also across workers: the world's
        state goes from the source's worker to the target's through the object store."""
        self.fork_world(source, target)

    @property
    def kept_snapshots(self) -> list[SnapshotRef | None]:
        """The last snapshot kept of each world (``snapshot_every``), or ``None``."""
        return list(self._kept)

    def restart_worker(self, worker: int, snapshots: Mapping[int, object] | None = None) -> list[int]:
        """Replace worker ``worker`` by a fresh one and bring back its worlds.

        Each of its worlds is restored from ``snapshots[i]`` when given (a :class:`SnapshotRef` or an
        ``EpisodeSnapshot`` you kept), else from its last kept snapshot. Returns the worlds that had
        neither: they must be reset (``reset(options={"reset_mask": mask})``) before stepping.
        """
        snapshots = check_restart(self, worker, snapshots)
        missing = []
        for i in self.stream.restart_worker(worker):
            snap = snapshots.get(i, self._kept[i])
            if snap is None:
                self._episodes.forget(i)
                missing.append(i)
            else:
                self.restore(i, snap)
        return missing


#: Former name of the Ray vector env of ``YumeProcedural-v0`` (now the same class).
RayShardedVectorEnv = RayVectorEnv
