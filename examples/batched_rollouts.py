"""N generated worlds stepped as ONE batch through ONE model (the vector env), with timings.

    python examples/batched_rollouts.py --num-worlds 4 --blocks 4

Each world gets its own seed and its own random agent. The script times the batched steps and, for
comparison, the same number of blocks generated one world at a time, then writes
``<out>/timing.json`` and ``<out>/last_frames.png`` (the newest frame of every world).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import yume_env  # noqa: F401  (registers YumeWorld-v0 with its batched vector env)
from agents.random_agent import RandomPolicy
from yume_env.media import save_contact_sheet


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Batched rollouts over a vector env")
    p.add_argument("--num-worlds", type=int, default=4)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--resolution", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--device", default=None, help='e.g. "cuda" (default: CPU)')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/batched_rollouts"))
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    kwargs = {"device": args.device}
    if args.resolution is not None:
        kwargs["resolution"] = tuple(args.resolution)
    n = args.num_worlds

    # 1. N worlds in one vector env (one model, one batched denoise per step)
    envs = gym.make_vec("YumeWorld-v0", num_envs=n, **kwargs)
    policies = [RandomPolicy(seed=args.seed + i) for i in range(n)]
    obs, infos = envs.reset(seed=args.seed)  # world i is seeded with seed + i
    step_ms = []
    for _ in range(args.blocks):
        acts = [p.act(None, {}) for p in policies]
        batched = {
            "move": np.array([a["move"] for a in acts]),
            "look": np.array([a["look"] for a in acts]),
            "event": tuple(a["event"] for a in acts),
        }
        t0 = time.perf_counter()
        obs, rewards, terminated, truncated, infos = envs.step(batched)
        step_ms.append((time.perf_counter() - t0) * 1e3)
    frames_per_step = n * obs.shape[1]
    envs.close()

    # 2. the same number of blocks, one world at a time (for comparison)
    single = gym.make("YumeWorld-v0", **kwargs)
    single.reset(seed=args.seed)
    policy = RandomPolicy(seed=args.seed)
    t0 = time.perf_counter()
    for _ in range(args.blocks):
        single.step(policy.act(None, {}))
    single_ms = (time.perf_counter() - t0) * 1e3 / args.blocks
    single.close()

    # 3. report (the first batched step includes one-off warm-up, so it is reported apart)
    steady = step_ms[1:] or step_ms
    timing = {
        "num_worlds": n,
        "blocks": args.blocks,
        "resolution": list(obs.shape[2:4]),
        "first_step_ms": round(step_ms[0], 1),
        "batched_step_ms": round(float(np.median(steady)), 1),
        "batched_frames_per_s": round(frames_per_step / (np.median(steady) / 1e3), 1),
        "single_world_step_ms": round(single_ms, 1),
        "speedup_vs_one_at_a_time": round(n * single_ms / float(np.median(steady)), 2),
    }
    (args.out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    sheet = save_contact_sheet(
        args.out / "last_frames.png",
        [o[-1] for o in obs],
        [f"world {i}" for i in range(n)],
        columns=min(n, 4),
    )
    for key, value in timing.items():
        print(f"{key:>26}: {value}")
    return {"timing": timing, "sheet": sheet}


if __name__ == "__main__":
    main()
