"""Fork a world: snapshot one moment, play several different futures from it, and compare them.

    python examples/fork_futures.py
    python examples/fork_futures.py --futures "walk forward twice" "turn left twice" "look up" --world procedural

Every future starts from the same snapshot (history, event, random state). Replaying a future after
a restore gives the same frames bit for bit. Writes ``<out>/futures.png`` (one row per future: the
snapshot frame, then the last frame of each of its blocks) and ``<out>/futures.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import numpy as np

import yume_env  # noqa: F401  (registers the environments)
from agents.instruction_follower import plan
from yume_env.media import save_contact_sheet

WORLD_IDS = {"yume": "YumeWorld-v0", "procedural": "YumeProcedural-v0"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Snapshot -> several futures -> restore -> compare")
    p.add_argument("--world", choices=sorted(WORLD_IDS), default="yume")
    p.add_argument("--resolution", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--warmup", default="walk forward", help="instruction played before the snapshot")
    p.add_argument(
        "--futures",
        nargs="+",
        default=[
            "walk forward twice",
            "turn left twice",
            'look up while "a red balloon appears", then stand still',
        ],
        help="one instruction per future (see agents.instruction_follower for the grammar)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/fork_futures"))
    return p.parse_args(argv)


def play(env, actions: list[dict]) -> list[np.ndarray]:
    """The blocks' frames of playing ``actions`` from the env's current state."""
    return [env.step(a)[0] for a in actions]


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    kwargs = {} if args.resolution is None else {"resolution": tuple(args.resolution)}
    env = gym.make(WORLD_IDS[args.world], **kwargs)
    world = env.unwrapped  # snapshot/restore live on the environment itself

    # 1. walk a little, then take a snapshot of the whole world state
    obs, _ = env.reset(seed=args.seed)
    for frames in play(env, plan(args.warmup)):
        obs = frames
    snap = world.snapshot()
    start = obs[-1]

    # 2. several futures from the same moment
    futures = {}
    for instruction in args.futures:
        world.restore(snap)
        futures[instruction] = play(env, plan(instruction))

    # 3. restoring and replaying a future gives exactly the same frames
    first = args.futures[0]
    world.restore(snap)
    replay = play(env, plan(first))
    identical = all(np.array_equal(a, b) for a, b in zip(replay, futures[first]))

    # 4. compare: how far each future's last frame is from the snapshot frame and from the others
    last = {k: v[-1][-1].astype(np.float32) for k, v in futures.items()}
    names = list(last)
    diff = {
        a: {b: round(float(np.abs(last[a] - last[b]).mean()), 2) for b in names}
        | {"snapshot": round(float(np.abs(last[a] - start.astype(np.float32)).mean()), 2)}
        for a in names
    }
    width = 1 + max(len(v) for v in futures.values())
    tiles, labels = [], []
    for name, blocks in futures.items():
        row = [start] + [b[-1] for b in blocks]
        row += [np.zeros_like(start)] * (width - len(row))
        tiles += row
        labels += [name] + [f"block {i + 1}" for i in range(len(blocks))] + [""] * (width - 1 - len(blocks))
    sheet = save_contact_sheet(args.out / "futures.png", tiles, labels, columns=width)
    report = {"replay_identical": identical, "mean_abs_pixel_difference": diff}
    (args.out / "futures.json").write_text(json.dumps(report, indent=2) + "\n")
    env.close()
    print(f"replaying '{first}' after restore gives identical frames: {identical}")
    for a in names:
        print(f"  {a!r}: differs from the snapshot frame by {diff[a]['snapshot']} (mean |pixel|)")
    print(f"contact sheet: {sheet}")
    return {"identical": identical, "diff": diff, "sheet": sheet}


if __name__ == "__main__":
    main()
