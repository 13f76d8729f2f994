"""How many CPU threads torch uses for the generator's CPU work.

torch's default is one intra-op thread per logical CPU. On a small machine that other processes
share, that oversubscribes it: OpenMP workers spin while waiting for each other, and a step that
takes 1 s alone can take 10-20 s when another CPU-bound process runs (measured in
``docs/performance.md``). The default here is ``min(usable cores, 4)`` where usable cores are the
physical cores this process may run on (its CPU affinity and cgroup quota), minus one on machines
with 2 to 4 of them, so the generator leaves a core to everything else; beyond 4 threads the tiny
model gains nothing and the large one runs on the GPU.

torch's setting is **process-global**: every model in the process uses the value set last. Two
environments created with different ``threads`` in one process both run with the value of the one
created last (a warning says so); the default never overrides a value set explicitly before, nor
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` from the environment.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import torch

#: Most threads the default picks (more gives the CPU-sized model nothing).
MAX_DEFAULT_THREADS = 4

_TORCH_DEFAULT = torch.get_num_threads()  # torch's own choice, read before anyone changes it
_explicit: int | None = None  # the last value a caller asked for, if any


def _cgroup_cpus() -> float | None:
    """CPUs granted by a cgroup v2 quota (``cpu.max``), or None when unlimited / unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def usable_cores() -> int:
    """Physical cores this process may use: affinity, one per hyper-thread pair, cgroup quota."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text()
            cores.add(siblings.strip())
        except OSError:
            cores.add(str(cpu))
    count = len(cores) or 1
    quota = _cgroup_cpus()
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return count


def default_threads() -> int:
    """The thread count used when none is given (see the module doc)."""
    cores = usable_cores()
    if 2 <= cores <= 4:
        cores -= 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def check_threads(threads) -> int | None:
    """``threads`` validated: ``None`` (the default) or an integer >= 1."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: got {threads!r}; accepted: an integer >= 1, or None for the default")
    return int(threads)


def set_threads(threads: int | None = None) -> int:
    """Apply ``threads`` to torch (process-global) and return the count now in use.

    ``None`` applies :func:`default_threads` unless the count was set before: by an earlier call with
    an explicit value, by the caller through ``torch.set_num_threads`` (seen only when the value
    differs from torch's own default), or by ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``; those are left
    as they are. An explicit value always applies, and warns when
    it replaces a different explicit value (every model in the process now uses the new one).
    """
    global _explicit
    threads = check_threads(threads)
    if threads is None:
        untouched = torch.get_num_threads() == _TORCH_DEFAULT and _explicit is None
        from_env = any(os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"))
        if untouched and not from_env:
            torch.set_num_threads(default_threads())
        return torch.get_num_threads()
    if _explicit is not None and _explicit != threads:
        warnings.warn(
            f"threads={threads} replaces threads={_explicit} for the whole process: torch's CPU "
            "thread count is process-global, so every environment and model here now uses it",
            stacklevel=3,
        )
    _explicit = threads
    torch.set_num_threads(threads)
    return threads
