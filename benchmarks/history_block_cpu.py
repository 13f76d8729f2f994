"""CPU time of one exact block at the history lengths of blocks 2-6 and 120-124, any package version.

Times ``model.sample_block`` on synthesised histories (shipped tiny weights, 1 thread), the lengths
taking turns over ``--repeats`` rounds after a warm-up, and reports the process's CPU time (less
disturbed than wall time by other load). Where the package keeps history caches, each block starts
from the cache of the block before it (history ``n - 8``), as in an episode; older versions
recompute the whole history, as they do in an episode. Run it on another checkout with
``PYTHONPATH=<checkout>`` for a before/after comparison:

    OMP_NUM_THREADS=1 python benchmarks/history_block_cpu.py --out benchmarks/results/history_block_cpu_after.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import time
from pathlib import Path

import torch

from yume_env.model.pipeline import TINY_CHECKPOINT, load_checkpoint
from yume_env.model.sampler import EulerSampler

EARLY = (13, 21, 29, 37, 45)
LATE = (957, 965, 973, 981, 989)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    model = load_checkpoint(TINY_CHECKPOINT, device="cpu")
    ctx = model.encode_text(["First-person perspective. a street"])
    sampler = EulerSampler(model.preset.steps, model.preset.shift)
    cached = "history_cache" in inspect.signature(model.sample_block).parameters
    c, f = model.latent_channels, model.block_frames
    h, w = model.latent_hw(model.preset.resolution)
    setup = {}
    for n in EARLY + LATE:
        g = torch.Generator().manual_seed(n)
        hist = torch.randn(c, n, h, w, generator=g) * 0.5
        noise = torch.randn(1, c, f, h, w, generator=g)
        cache = [None]
        if cached:
            model.sample_block([hist[:, : n - f]], ctx, noise, sampler, None, False, cache)
        setup[n] = (hist, noise, cache)
    times: dict[int, list[float]] = {n: [] for n in setup}
    load_before = list(os.getloadavg())
    for r in range(args.repeats + 1):
        for n, (hist, noise, cache) in setup.items():
            c0 = time.process_time()
            if cached:
                model.sample_block([hist], ctx, noise, sampler, None, False, list(cache))
            else:
                model.sample_block([hist], ctx, noise, sampler)
            if r:  # the first round is a warm-up
                times[n].append((time.process_time() - c0) * 1e3)
    med = {n: statistics.median(v) for n, v in times.items()}
    early = statistics.median(med[n] for n in EARLY)
    late = statistics.median(med[n] for n in LATE)
    result = {
        "history_caches": cached,
        "torch": torch.__version__,
        "threads": 1,
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "cpu_ms_per_history": med,
        "early_cpu_ms": early,
        "late_cpu_ms": late,
        "ratio": late / early,
    }
    print(json.dumps(result, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
