"""Soak test: long episodes and many resets must keep memory flat and time per block steady.

Three runs on the tiny model (the shipped weights), on ONE torch thread (``torch.set_num_threads(1)``,
so figures do not depend on what else shares the machine's cores):

1. ``--latent-blocks`` blocks (default 1000) of one world in ``obs_mode="latent"``;
2. ``--frames-blocks`` blocks (default 200) of one world in ``obs_mode="frames"``;
3. a vector env of ``--vector-worlds`` worlds (default 4) for ``--vector-steps`` steps (default 200),
   resetting a random subset of worlds (each with probability 0.1) before every step.

Every ``--every`` blocks it records the process RSS (``/proc/self/statm``) and the mean wall time per
block since the last sample. A world's history stops growing at ``max_history`` latents (1016 by
default, reached after 127 blocks), so RSS after that point must stay flat; the summary reports
the growth from the first sample after the cap to the end.

    python benchmarks/soak.py                                   # full run (several minutes)
    python benchmarks/soak.py --latent-blocks 200 --frames-blocks 40 --vector-steps 40 --every 10 \
        --max-history 96                                        # shorter: the cap is reached at block 12

Writes ``--out`` (default ``benchmarks/results/soak.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from yume_env.envs.vector import YumeWorldVectorEnv
from yume_env.envs.yume_world import YumeWorldEnv
from yume_env.world.images import parse_resolution

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def action(rng: np.random.Generator, block: int) -> dict:
    event = ["", "It starts to rain.", "", "A red balloon appears.", "", "Fog rolls in."][block // 8 % 6]
    return {"move": int(rng.integers(9)), "look": int(rng.integers(9)), "event": event}


def soak_single(obs_mode: str, blocks: int, every: int, resolution, seed: int, max_history) -> dict:
    env = YumeWorldEnv(resolution=resolution, obs_mode=obs_mode, max_history=max_history)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    cap_block = None
    samples = []
    t0 = time.perf_counter()
    for b in range(1, blocks + 1):
        _, _, _, _, info = env.step(action(rng, b))
        if cap_block is None and info["history_dropped"] > 0:
            cap_block = b
        if b % every == 0:
            now = time.perf_counter()
            samples.append(
                {
                    "block": b,
                    "rss_mb": round(rss_mb(), 1),
                    "ms_per_block": round((now - t0) * 1e3 / every, 1),
                    "history_latents": info["history_latents"],
                }
            )
            t0 = now
    return {
        "obs_mode": obs_mode,
        "blocks": blocks,
        "history_cap_reached_at_block": cap_block,
        "samples": samples,
    }


def soak_vector(worlds: int, steps: int, every: int, resolution, seed: int, max_history) -> dict:
    envs = YumeWorldVectorEnv(
        num_envs=worlds, resolution=resolution, obs_mode="latent", max_history=max_history
    )
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    samples, resets = [], 0
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        mask = rng.random(worlds) < 0.1
        if mask.any():
            envs.reset(options={"reset_mask": mask})
            resets += int(mask.sum())
        acts = [action(rng, s) for _ in range(worlds)]
        envs.step(
            {
                "move": np.array([a["move"] for a in acts]),
                "look": np.array([a["look"] for a in acts]),
                "event": tuple(a["event"] for a in acts),
            }
        )
        if s % every == 0:
            now = time.perf_counter()
            samples.append(
                {"step": s, "rss_mb": round(rss_mb(), 1), "ms_per_step": round((now - t0) * 1e3 / every, 1)}
            )
            t0 = now
    return {"worlds": worlds, "steps": steps, "world_resets": resets, "samples": samples}


def growth_after_cap(run: dict) -> float | None:
    cap = run.get("history_cap_reached_at_block")
    after = [s for s in run["samples"] if cap is not None and s["block"] >= cap]
    if len(after) < 2:
        return None
    return round(after[-1]["rss_mb"] - after[0]["rss_mb"], 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latent-blocks", type=int, default=1000)
    p.add_argument("--frames-blocks", type=int, default=200)
    p.add_argument("--vector-worlds", type=int, default=4)
    p.add_argument("--vector-steps", type=int, default=200)
    p.add_argument("--every", type=int, default=20, help="blocks between samples")
    p.add_argument("--resolution", default="32x64", help="HxW (default 32x64, a multiple of 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-history",
        type=int,
        default=None,
        help="history latents kept per world (default 1016, reached after 127 blocks; lower reaches the cap sooner)",
    )
    p.add_argument("--out", default="benchmarks/results/soak.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    resolution = parse_resolution(args.resolution)
    started = time.perf_counter()
    runs = {
        "latent": soak_single(
            "latent", args.latent_blocks, args.every, resolution, args.seed, args.max_history
        ),
        "frames": soak_single(
            "frames", args.frames_blocks, args.every, resolution, args.seed, args.max_history
        ),
        "vector": soak_vector(
            args.vector_worlds, args.vector_steps, args.every, resolution, args.seed, args.max_history
        ),
    }
    for name in ("latent", "frames"):
        runs[name]["rss_growth_after_cap_mb"] = growth_after_cap(runs[name])
    v = runs["vector"]["samples"]
    runs["vector"]["rss_growth_mb"] = round(v[-1]["rss_mb"] - v[0]["rss_mb"], 1) if len(v) > 1 else None
    result = {
        "command": "python benchmarks/soak.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out",)),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
        "resolution": list(resolution),
        "wall_s": round(time.perf_counter() - started, 1),
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for name, run in runs.items():
        s = run["samples"]
        key = "ms_per_block" if name != "vector" else "ms_per_step"
        print(
            f"{name}: rss {s[0]['rss_mb']} -> {s[-1]['rss_mb']} MB, {key} {s[0][key]} -> {s[-1][key]}, "
            f"growth after cap {run.get('rss_growth_after_cap_mb', run.get('rss_growth_mb'))} MB"
        )
    print(f"wrote {out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
