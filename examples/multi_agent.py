"""A multi-agent session: an explorer moves the camera while a director changes the world; then
several explorers, each in its own world, batched through one model.

    python examples/multi_agent.py
    python examples/multi_agent.py --world procedural --blocks 12

"Multi-agent" here means agents sharing one world's single camera (the explorer's move/look and the
director's event are merged into one caption per block), or one world per agent. Agents never see
each other in the frames. Writes ``<out>/directed.mp4`` with ``<out>/directed_captions.txt``, and
``<out>/explorers.mp4`` (the explorers' worlds side by side).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from agents.instruction_follower import RuleBasedInstructionFollower
from agents.random_agent import RandomPolicy
from yume_env.envs.multi_agent import DEFAULT_EVENTS, DirectedWorldEnv, ExplorersEnv
from yume_env.media import save_video


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Director/explorer session and batched explorers")
    p.add_argument("--world", choices=["yume", "procedural"], default="yume")
    p.add_argument("--resolution", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--explorers", type=int, default=3)
    p.add_argument("--instruction", default="walk forward twice, then turn right, then look up")
    p.add_argument(
        "--director-every", type=int, default=2, help="the director changes the event every N blocks"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/multi_agent"))
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    world_kwargs = {} if args.resolution is None else {"resolution": tuple(args.resolution)}

    # 1. one world, two roles: the explorer follows an instruction, the director schedules events
    env = DirectedWorldEnv(args.world, world_kwargs, max_cycles=args.blocks)
    explorer = RuleBasedInstructionFollower(when_done="repeat_last")
    schedule = [
        DEFAULT_EVENTS.index(e) + 1 for e in ("A red balloon appears.", "It starts to rain.", "The sun sets.")
    ]
    obs, infos = env.reset(seed=args.seed)
    explorer.reset(args.instruction)
    frames, captions, t = [obs["explorer"][-1:]], [], 0
    while env.agents:
        move_look = explorer.act(obs["explorer"], infos["explorer"])
        director = schedule[(t // args.director_every) % len(schedule)] if t % args.director_every == 0 else 0
        actions = {"explorer": {"move": move_look["move"], "look": move_look["look"]}, "director": director}
        obs, rewards, terminations, truncations, infos = env.step(actions)
        frames.append(obs["explorer"])
        captions.append(infos["explorer"]["caption"])
        t += 1
    env.close()
    directed = save_video(args.out / "directed.mp4", np.concatenate(frames))
    (args.out / "directed_captions.txt").write_text("\n".join(captions) + "\n")
    print(f"director/explorer: {t} blocks -> {directed}")
    for c in captions:
        print("  ", c)

    # 2. several explorers, one world each; with world="yume" every step is one batched forward
    env = ExplorersEnv(
        args.explorers, args.world, world_kwargs, max_cycles=args.blocks, render_mode="rgb_array"
    )
    policies = {a: RandomPolicy(seed=args.seed + i) for i, a in enumerate(env.possible_agents)}
    obs, infos = env.reset(seed=args.seed)
    side_by_side = [env.render()]
    while env.agents:
        actions = {}
        for agent in env.agents:
            a = policies[agent].act(obs[agent], infos[agent])
            actions[agent] = {"move": a["move"], "look": a["look"]}
        obs, rewards, terminations, truncations, infos = env.step(actions)
        side_by_side.append(env.render())
    env.close()
    explorers = save_video(args.out / "explorers.mp4", np.stack(side_by_side), fps=2)
    print(f"{args.explorers} explorers, {len(side_by_side) - 1} blocks each -> {explorers}")
    return {"directed": directed, "explorers": explorers, "captions": captions}


if __name__ == "__main__":
    main()
