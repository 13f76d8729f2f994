"""``WorkerPool``: W Ray actors, one device each, and the calls that fan out to them.

Calls go out to every worker first (``.remote()``), then one ``ray.get`` waits for all of them, so
the workers compute at the same time. A worker that died is named at once (``ray.kill``, a crash
and an out-of-memory kill surface as soon as Ray knows; a lost machine after Ray's node health
check, about 15 s by default) as a :class:`~yume_env.distributed.errors.WorkerDiedError`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from yume_env.distributed.errors import WorkerDiedError
from yume_env.distributed.worker import WorldWorker

_REMOTE_WORKER = None


def _remote_worker_class():
    global _REMOTE_WORKER
    if _REMOTE_WORKER is None:
        # max_restarts=0: a dead worker stays dead until restart_worker(), which also restores its
        # worlds (Ray's own restart would bring back an empty actor).
        _REMOTE_WORKER = ray.remote(max_restarts=0)(WorldWorker)
    return _REMOTE_WORKER


def ensure_ray() -> None:
    """Start or join Ray if this process has not yet: ``ray.init()`` joins the cluster named by
    ``RAY_ADDRESS`` (set by ``ray start``/``ray job submit``) or starts a local one."""
    if not ray.is_initialized():
        ray.init()


class WorkerPool:
    """W Ray actors, each a :class:`~yume_env.distributed.worker.WorldWorker` on its own device.

    Args:
        num_workers: W.
        num_gpus: GPUs per worker (1: one actor per GPU; Ray picks the GPU and hides the others).
        num_cpus: CPU cores Ray reserves per worker (default 1).
        threads: torch CPU threads per worker (default ``num_cpus`` on CPU workers, torch's choice on
            GPU workers). On CPU the frames depend on the thread count: compare runs with equal counts.
        actor_options: more ``ray.remote`` options (``resources``, ``scheduling_strategy``,
            ``runtime_env``, ...).
        timeout_s: the longest one call may take before :class:`TimeoutError` (default: no limit).

    A pool can outlive the envs built on it (``RayVectorEnv(workers=pool)``): its workers keep the
    model loaded, so the next env starts without loading it again. :meth:`shutdown` ends the actors.
    """

    def __init__(
        self,
        num_workers: int,
        *,
        num_gpus: float = 0,
        num_cpus: float | None = None,
        threads: int | None = None,
        actor_options: dict | None = None,
        timeout_s: float | None = None,
    ):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(f"workers: got {num_workers!r}; accepted: an integer >= 1 or a WorkerPool")
        if isinstance(num_gpus, bool) or not isinstance(num_gpus, int | float) or num_gpus < 0:
            raise ValueError(f"num_gpus: got {num_gpus!r}; accepted: a number >= 0")
        if num_cpus is not None and (
            isinstance(num_cpus, bool) or not isinstance(num_cpus, int | float) or num_cpus <= 0
        ):
            raise ValueError(f"num_cpus: got {num_cpus!r}; accepted: a number > 0 or None")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads: got {threads!r}; accepted: an integer >= 1 or None")
        if timeout_s is not None and (not isinstance(timeout_s, int | float) or timeout_s <= 0):
            raise ValueError(f"timeout_s: got {timeout_s!r}; accepted: seconds > 0 or None")
        ensure_ray()
        cpus = 1 if num_cpus is None else num_cpus
        self.options = {"num_cpus": cpus, "num_gpus": num_gpus, **(actor_options or {})}
        self.threads = threads if threads is not None else (None if num_gpus else max(1, int(cpus)))
        self.timeout_s = timeout_s
        self.handles = [self._start() for _ in range(num_workers)]
        self.dead: set[int] = set()

    def _start(self):
        return _remote_worker_class().options(**self.options).remote(self.threads)

    @property
    def num_workers(self) -> int:
        return len(self.handles)

    def describe(self) -> list[dict]:
        """Host, pid, threads and GPUs of every worker (waits until all have started)."""
        return self.gather([(k, h.describe.remote()) for k, h in enumerate(self.handles)], None)

    def gather(self, calls: Sequence[tuple[int, ray.ObjectRef]], worlds_of) -> list:
        """Wait for every ``(worker, ref)`` call at once; results in the same order.

        Raises :class:`WorkerDiedError` naming every dead worker (and, with ``worlds_of(k)``, the
        worlds it held) when any worker died; otherwise re-raises the worker's own exception.
        """
        refs = [r for _, r in calls]
        try:
            return ray.get(refs, timeout=self.timeout_s)
        except GetTimeoutError:
            raise TimeoutError(
                f"Ray workers did not answer within timeout_s={self.timeout_s} s; they may be "
                "overloaded or their machine unreachable"
            ) from None
        except Exception:
            dead, why = self._find_dead(calls)
            if not dead:
                raise
            self.dead.update(dead)
            held = [list(worlds_of(k)) if worlds_of is not None else [] for k in dead]
            raise WorkerDiedError(dead, held, why) from None

    def _find_dead(self, calls) -> tuple[list[int], str]:
        """The workers among ``calls`` that died, and Ray's reason for the first (e.g. its memory
        monitor killed it: Ray counts every process on the machine against its threshold)."""
        dead, why = [], ""
        for k, ref in calls:
            try:
                ray.get(ref, timeout=self.timeout_s)
            except RayActorError as exc:
                dead.append(k)
                why = why or f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            except Exception:  # the worker is alive; it raised (or is slow), that is not death
                pass
        return sorted(set(dead)), why

    def check_alive(self, workers: Sequence[int], worlds_of) -> None:
        """Raise :class:`WorkerDiedError` at once if any of ``workers`` is known to be dead."""
        dead = sorted(k for k in workers if k in self.dead)
        if dead:
            held = [list(worlds_of(k)) if worlds_of is not None else [] for k in dead]
            raise WorkerDiedError(dead, held, "died earlier")

    def restart(self, worker: int) -> None:
        """Replace worker ``worker`` by a fresh actor with the same options (its state is gone)."""
        if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < self.num_workers:
            raise IndexError(f"worker: got {worker!r}; accepted: 0..{self.num_workers - 1}")
        try:
            ray.kill(self.handles[worker], no_restart=True)
        except Exception:  # already gone
            pass
        self.handles[worker] = self._start()
        self.dead.discard(worker)

    def shutdown(self, wait_s: float = 10.0) -> None:
        """End every worker (their worlds are lost; snapshots already in the object store stay).

        Waits (at most ``wait_s`` seconds) until Ray reports each worker dead: ``ray.kill`` only
        asks, and a worker's device should be free again when this returns.
        """
        handles, self.handles = self.handles, []
        for h in handles:
            try:
                ray.kill(h, no_restart=True)
            except Exception:
                pass
        deadline = time.monotonic() + wait_s
        for h in handles:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    ray.get(h.__ray_ready__.remote(), timeout=left)
                except (RayActorError, GetTimeoutError):
                    break  # dead (or out of time)
                except Exception:
                    break  # Ray itself is gone: so is the worker
                time.sleep(0.02)  # the kill has not landed yet


def resolve_pool(
    workers,
    num_worlds: int,
    *,
    cuda: bool = False,
    num_gpus: float | None = None,
    num_cpus: float | None = None,
    threads: int | None = None,
    actor_options: dict | None = None,
    timeout_s: float | None = None,
) -> tuple[WorkerPool, bool]:
    """``(pool, owned)`` for a ``workers=`` argument: a :class:`WorkerPool` given (kept by its owner),
    or a new pool of that many workers (ended with its env). ``W > num_worlds`` is refused before any
    actor starts; a new pool puts one GPU on each worker when ``cuda`` (unless ``num_gpus`` says)."""
    from yume_env.distributed.shards import shard_indices

    if isinstance(workers, WorkerPool):
        shard_indices(num_worlds, workers.num_workers)
        return workers, False
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: got {workers!r}; accepted: an integer >= 1 or a WorkerPool")
    shard_indices(num_worlds, workers)
    pool = WorkerPool(
        workers,
        num_gpus=(1 if cuda else 0) if num_gpus is None else num_gpus,
        num_cpus=num_cpus,
        threads=threads,
        actor_options=actor_options,
        timeout_s=timeout_s,
    )
    return pool, True
