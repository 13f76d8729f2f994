"""A random agent walks through a generated world; the rollout is saved as an mp4 video.

    python examples/random_rollout.py                       # tiny Yume model, 8 blocks
    python examples/random_rollout.py --world procedural    # the ground-truth procedural city

Writes ``<out>/rollout.mp4`` and ``<out>/captions.txt`` (the caption of every block).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import yume_env  # noqa: F401  (registers YumeWorld-v0 and YumeProcedural-v0)
from agents.random_agent import RandomPolicy
from yume_env.media import save_video

WORLD_IDS = {"yume": "YumeWorld-v0", "procedural": "YumeProcedural-v0"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Random agent rollout with video recording")
    p.add_argument("--world", choices=sorted(WORLD_IDS), default="yume")
    p.add_argument("--blocks", type=int, default=8, help="steps (blocks of video) to generate")
    p.add_argument("--resolution", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--event-probability", type=float, default=0.2)
    p.add_argument("--out", type=Path, default=Path("runs/random_rollout"))
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. the world and the agent
    kwargs = {} if args.resolution is None else {"resolution": tuple(args.resolution)}
    env = gym.make(WORLD_IDS[args.world], **kwargs)
    policy = RandomPolicy(
        seed=args.seed,
        events=["A red balloon appears.", "It starts to rain.", "The sun sets."],
        event_probability=args.event_probability,
    )

    # 2. the rollout: every step returns the new block's frames (T, H, W, 3)
    obs, info = env.reset(seed=args.seed)
    policy.reset(seed=args.seed)
    blocks, captions = [obs[-1:]], []
    t0 = time.perf_counter()
    for _ in range(args.blocks):
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        blocks.append(obs)
        captions.append(info["caption"])
        if terminated or truncated:
            break
    seconds = time.perf_counter() - t0
    env.close()

    # 3. outputs
    frames = np.concatenate(blocks)
    video = save_video(args.out / "rollout.mp4", frames)
    (args.out / "captions.txt").write_text("\n".join(captions) + "\n")
    print(
        f"{len(captions)} blocks, {len(frames)} frames in {seconds:.1f} s ({len(frames) / seconds:.1f} frames/s)"
    )
    print(f"video: {video}")
    return {"video": video, "frames": len(frames), "captions": captions, "seconds": seconds}


if __name__ == "__main__":
    main()
