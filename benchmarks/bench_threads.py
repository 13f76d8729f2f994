"""Frames-step time of the tiny world for several CPU thread counts, alone and next to a busy process.

Each (threads, load) pair runs in a fresh Python process (torch's thread count is process-global):
``gym.make("YumeWorld-v0", threads=N)`` on CPU, one untimed step, then ``--steps`` timed frames
steps (denoise + decode + uint8 frames). ``load=busy`` starts a competing process first that multiplies
matrices with torch's default thread count (one per logical CPU), as a second user of the machine would.

    python benchmarks/bench_threads.py --out benchmarks/results/threads_tiny_cpu.json

``threads=torch`` is torch's own default (one thread per logical CPU); ``threads=default`` is this
package's default (:func:`yume_env.model.threads.default_threads`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
import torch
import gymnasium as gym
import yume_env  # registers YumeWorld-v0
mode, steps = sys.argv[1], int(sys.argv[2])
kwargs = {} if mode in ("default", "torch") else {"threads": int(mode)}
if mode == "torch":
    import yume_env.model.threads as t
    t._explicit = torch.get_num_threads()  # keep torch's own default: the package default stays off
env = gym.make("YumeWorld-v0", device="cpu", **kwargs)
env.reset(seed=0)
env.step({"move": 1, "look": 0, "event": ""})
times = []
for k in range(steps):
    t0 = time.perf_counter()
    env.step({"move": k % 9, "look": 0, "event": ""})
    times.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"threads_in_use": torch.get_num_threads(), "step_ms": times}))
"""

BUSY = r"""
import torch
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a)
"""


def run(mode: str, steps: int, busy: bool) -> dict:
    competitor = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        if competitor is not None:
            time.sleep(1.0)
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(steps)], capture_output=True, text=True, check=True
        )
    finally:
        if competitor is not None:
            competitor.terminate()
            competitor.wait()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "threads": mode,
        "threads_in_use": result["threads_in_use"],
        "load": "busy" if busy else "none",
        "loadavg_1min_at_start": load,
        "median_step_ms": statistics.median(result["step_ms"]),
        "max_step_ms": max(result["step_ms"]),
        "step_ms": result["step_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="torch,default,1,2", help="thread settings to compare")
    p.add_argument("--steps", type=int, default=5, help="timed steps per run (default 5)")
    p.add_argument("--out", default="benchmarks/results/threads_tiny_cpu.json")
    args = p.parse_args(argv)
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for busy in (False, True):
        for mode in args.modes.split(","):
            row = run(mode, args.steps, busy)
            rows.append(row)
            print(
                f"threads={mode:>7} ({row['threads_in_use']}) load={row['load']:4}: "
                f"median {row['median_step_ms']:.0f} ms, max {row['max_step_ms']:.0f} ms",
                flush=True,
            )
            # written after every row: a long run that is stopped keeps what it measured
            out.write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
