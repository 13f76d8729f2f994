"""``RayVectorEnv``: ``YumeWorld-v0``'s vector env with its worlds sharded over W Ray workers.

``gym.make_vec("YumeWorld-v0", num_envs=N, workers=W, ...)`` builds it. It is the in-process vector
env (:class:`~yume_env.envs.world_vector.WorldVectorEnv`, the same episode logic) over
:class:`~yume_env.distributed.RayWorlds`: each worker holds a :class:`~yume_env.world.stream.WorldStream`
of its contiguous block of worlds, built from the same :class:`~yume_env.world.spec.WorldSpec`, and
every ``step`` sends all workers their actions before waiting for any. World i's frames, rewards,
truncations, autoresets and infos are those of the in-process vector env (and of a single env)
with the same seed and actions, whatever W is (on CPU: for equal torch thread counts; give the
single env the workers' ``threads``). Episodes, seeds and ``reward_fn`` live in this process.

Frames come from Ray's object store; the observation batch is one writable copy. ``final_obs``
arrays and snapshots fetched with ``SnapshotRef.get()`` are read-only.
"""

from __future__ import annotations

from collections.abc import Mapping

import ray

from yume_env.distributed.pool import WorkerPool
from yume_env.distributed.worlds import RayWorlds, SnapshotRef
from yume_env.envs.episodes import EPISODE_ARGS, EpisodeSnapshot, episode_args
from yume_env.envs.ray_sharded import RayEnvOptions, check_restart
from yume_env.envs.validation import check_vector_args
from yume_env.envs.world_vector import WorldVectorEnv
from yume_env.envs.yume_world import split_world_kwargs, with_default_images, world_spec_for

__all__ = ["RayVectorEnv", "SnapshotRef"]


class RayVectorEnv(WorldVectorEnv):
    """N ``YumeWorld-v0`` worlds on W Ray workers, behind the Gymnasium vector API.

    Args:
        env_id: ``"YumeWorld-v0"`` (default). Another registered id (``"YumeProcedural-v0"``) gets a
            :class:`~yume_env.envs.ray_sharded.RayShardedVectorEnv` (whole vector envs on the workers).
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
        **env_kwargs: ``YumeWorld-v0``'s arguments; ``image`` and ``prompt`` may be lists with one
            entry per world; image paths must exist on the workers' machines (arrays always work).

    Branching: :meth:`snapshot`, :meth:`restore` and :meth:`fork` work across workers (a snapshot
    taken on worker 0 restores on worker 1 through the object store). Failures: a dead worker
    raises :class:`~yume_env.distributed.errors.WorkerDiedError` naming it and its worlds, and no
    world changed (the live workers undo their part of the step); until it is restarted every call
    raises at once. :meth:`restart_worker` brings its worlds back from their last kept snapshots.
    """

    def __new__(cls, env_id: str = "YumeWorld-v0", *args, **kwargs):
        if cls is RayVectorEnv and env_id != "YumeWorld-v0":
            from yume_env.envs.ray_sharded import RayShardedVectorEnv

            return RayShardedVectorEnv(env_id, *args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self, env_id: str = "YumeWorld-v0", num_envs: int = 1, workers: int | WorkerPool = 1, **kwargs
    ):
        # every check first: starting actors and loading models takes a while
        options = RayEnvOptions.pop(kwargs)
        num_envs, autoreset_mode = check_vector_args(num_envs, options.autoreset_mode)
        episode, spec = split_world_kwargs(kwargs, EPISODE_ARGS)
        args = episode_args(num_envs, tuple(self.metadata["render_modes"]), **episode)
        self.env_id = env_id
        self.snapshot_every = options.snapshot_every
        self.world_spec = world_spec_for(spec, args.obs_mode, None)
        worlds = RayWorlds(num_envs, workers, self.world_spec, options.pool_options())
        self._kept: list[SnapshotRef | None] = [None] * num_envs
        self._steps_since_keep = 0
        try:
            episode.update(image=with_default_images(args.images, args.prompts), prompt=args.prompts)
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
