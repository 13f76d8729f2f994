"""Errors raised by the Ray backends."""

from __future__ import annotations


class WorkerDiedError(RuntimeError):
    """One or more Ray workers died (killed, crashed, out of memory, or their machine went away).

    Attributes:
        workers: indices of the dead workers.
        worlds: the global world indices they held, per dead worker (``worlds[k]`` for ``workers[k]``).

    Worlds on the dead workers are lost until ``restart_worker(k)`` brings them back from their
    last kept snapshots. Workers that were still alive finished the call that failed.
    """

    def __init__(self, workers: list[int], worlds: list[list[int]], cause: str = ""):
        self.workers = list(workers)
        self.worlds = [list(w) for w in worlds]
        held = "; ".join(f"worker {k} held worlds {w}" for k, w in zip(self.workers, self.worlds))
        detail = f" ({cause})" if cause else ""
        super().__init__(
            f"Ray worker(s) {self.workers} died{detail}: {held}. Restart each with "
            "restart_worker(k), which restores its worlds from their last kept snapshots "
            "(snapshot_every=..., or snapshots=... you kept), or close the env"
        )
