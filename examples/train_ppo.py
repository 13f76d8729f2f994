"""Train PPO (stable-baselines3) to follow an instruction in the procedural world, and plot its
learning curve.

    python examples/train_ppo.py                                  # "turn right", 2048 timesteps
    python examples/train_ppo.py --instruction "walk forward" --timesteps 4096

The env is ``YumeProcedural-v0`` wrapped for SB3 (channel-first frames, ``Discrete(81)`` move x look
actions); the reward compares each block's camera motion (pose ground truth) with the instruction
(``agents.ppo_agent.PoseInstructionReward``). To train in a generated world instead, give
``agents.ppo_agent.train_ppo`` ``env_id="YumeWorld-v0"``, ``instruction=None`` and a ``reward_fn`` in
``env_kwargs``.

Writes ``<out>/ppo_model.zip`` + ``ppo_model.json`` (load with ``agents.ppo_agent.PPOPolicy``) and
``<out>/learning_curve.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

import yume_env  # noqa: F401  (registers the environments)
from agents.ppo_agent import PoseInstructionReward, PPOPolicy, train_ppo


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="PPO on the wrapped procedural world")
    p.add_argument("--instruction", default="turn right")
    p.add_argument("--timesteps", type=int, default=2048)
    p.add_argument("--n-steps", type=int, default=256, help="PPO rollout length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution", type=int, nargs=2, default=[48, 80], metavar=("H", "W"))
    p.add_argument("--frames-per-block", type=int, default=2)
    p.add_argument("--episode-blocks", type=int, default=16)
    p.add_argument("--out", type=Path, default=Path("runs/train_ppo"))
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    world = {
        "resolution": tuple(args.resolution),
        "frames_per_block": args.frames_per_block,
        "max_episode_steps": args.episode_blocks,
    }

    # 1. train (saves ppo_model.zip and ppo_model.json under --out)
    result = train_ppo(
        args.out,
        env_id="YumeProcedural-v0",
        env_kwargs=world,
        instruction=args.instruction,
        total_timesteps=args.timesteps,
        n_steps=args.n_steps,
        batch_size=min(64, args.n_steps),
        seed=args.seed,
        size=None,  # the policy sees the frames at the world's resolution
    )
    print(f"trained in {result.seconds:.0f} s: {len(result.episode_returns)} episodes -> {result.path}")

    # 2. the learning curve
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot(result.episode_end_steps, result.episode_returns, ".", alpha=0.4, label="episode return")
    if len(result.episode_returns) >= 5:
        k = max(1, len(result.episode_returns) // 10)
        smooth = np.convolve(result.episode_returns, np.ones(k) / k, mode="valid")
        ax.plot(result.episode_end_steps[k - 1 :], smooth, label=f"mean of {k}")
    ax.set_xlabel("timesteps (blocks)")
    ax.set_ylabel("return")
    ax.set_title(f'PPO, instruction "{args.instruction}"')
    ax.legend()
    fig.tight_layout()
    curve = args.out / "learning_curve.png"
    fig.savefig(curve)
    plt.close(fig)

    # 3. the saved policy, loaded back, on a new episode of the unwrapped world
    policy = PPOPolicy(result.path)
    env = PoseInstructionReward(gym.make("YumeProcedural-v0", **world), args.instruction)
    obs, info = env.reset(seed=1000 + args.seed)
    policy.reset(args.instruction)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        total += reward
        done = terminated or truncated
    env.close()
    print(f"learning curve: {curve}; the trained policy scores {total:.2f} on a new episode")
    return {"model": result.path, "curve": curve, "eval_return": total, "returns": result.episode_returns}


if __name__ == "__main__":
    main()
