"""Train stable-baselines3's PPO on worlds sharded over Ray workers.

    python examples/sb3_ray.py --tiny                        # seconds, 4 worlds on 2 CPU workers
    python examples/sb3_ray.py --num-worlds 16 --workers 4 --timesteps 20000
    # on a GPU cluster (one worker per GPU; see README, "Many GPUs and machines"):
    python examples/sb3_ray.py --address auto --workers 8 --num-worlds 64 --device cuda \\
        --model yume-1.5-5b --checkpoint /data/Yume-5B-720P --resolution 544 960

``gym.make_vec("YumeWorld-v0", num_envs=N, workers=W)`` puts N worlds on W Ray workers (each
batches its worlds through its own model on its own device). SB3 steps its own ``VecEnv`` type, so
``GymVectorToSB3`` adapts the Gymnasium vector env (autoreset ``SAME_STEP``, SB3's convention).
Actions: a ``Discrete`` index over a few (move, look) keys, decoded by gymnasium's vector
``TransformAction``. Observations: the newest frame of each block (SB3's ``CnnPolicy``). Reward:
``InstructionFollowingReward`` ("pan right"), computed on the workers next to the worlds.

Writes ``<out>/ppo_sb3_ray.zip``; returns the episode returns.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import ray
from gymnasium.wrappers.vector import TransformAction
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

import yume_env  # noqa: F401  (registers YumeWorld-v0)
from yume_env.envs.sb3_vector import GymVectorToSB3
from yume_env.rewards import InstructionFollowingReward

MOVES = [0, 1]  # stand still, forward (W)
LOOKS = [0, 1, 2]  # camera still, pan right, pan left


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="SB3 PPO on YumeWorld-v0 worlds sharded over Ray workers")
    p.add_argument("--tiny", action="store_true", help="a budget of seconds: for smoke tests")
    p.add_argument("--num-worlds", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="Ray workers (one device each)")
    p.add_argument("--timesteps", type=int, default=4096, help="env steps (blocks), all worlds together")
    p.add_argument("--n-steps", type=int, default=32, help="PPO rollout length per world")
    p.add_argument("--episode-blocks", type=int, default=16)
    p.add_argument("--resolution", type=int, nargs=2, default=[64, 96], metavar=("H", "W"))
    p.add_argument("--model", default="tiny")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default=None, help="cuda: one GPU per worker")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' inside a cluster)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/sb3_ray"))
    args = p.parse_args(argv)
    if args.tiny:
        args.num_worlds, args.workers, args.timesteps, args.n_steps, args.episode_blocks = 2, 2, 8, 4, 2
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not ray.is_initialized():
        ray.init(address=args.address)

    # 1. N worlds on W Ray workers, reset inside the ending step (SB3's convention)
    venv = gym.make_vec(
        "YumeWorld-v0",
        num_envs=args.num_worlds,
        workers=args.workers,
        autoreset_mode="SameStep",
        resolution=tuple(args.resolution),
        max_episode_steps=args.episode_blocks,
        reward_fn=InstructionFollowingReward(target=[(0, 1)], after="last"),  # pan right
        model=args.model,
        checkpoint=args.checkpoint,
        device=args.device,
    )

    # 2. Discrete(6) actions for SB3: index -> (move, look)
    moves = np.array([m for m in MOVES for _ in LOOKS])
    looks = np.array([lk for _ in MOVES for lk in LOOKS])
    n = args.num_worlds
    venv = TransformAction(
        venv,
        lambda a: {"move": moves[a], "look": looks[a], "event": ("",) * n},
        action_space=gym.spaces.MultiDiscrete([len(moves)] * n),
        single_action_space=gym.spaces.Discrete(len(moves)),
    )

    # 3. SB3's VecEnv: the newest frame of each block, (H, W, 3) uint8 (CnnPolicy transposes it)
    h, w = args.resolution
    env = VecMonitor(
        GymVectorToSB3(
            venv,
            observation_fn=lambda frames: frames[:, -1],
            observation_space=gym.spaces.Box(0, 255, (h, w, 3), np.uint8),
        )
    )
    env.seed(args.seed)

    # 4. train
    model = PPO(
        "CnnPolicy",
        env,
        n_steps=args.n_steps,
        batch_size=min(64, args.n_steps * n),
        n_epochs=1 if args.tiny else 4,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.timesteps)
    seconds = time.perf_counter() - t0
    returns = [float(ep["r"]) for ep in model.ep_info_buffer]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "ppo_sb3_ray.zip"
    model.save(path)
    env.close()
    print(
        f"{model.num_timesteps} blocks on {args.workers} workers in {seconds:.0f} s "
        f"({model.num_timesteps / seconds:.1f} blocks/s); {len(returns)} episodes, "
        f"mean return {np.mean(returns) if returns else float('nan'):.2f}; saved {path}"
    )
    return {"returns": returns, "seconds": seconds, "timesteps": model.num_timesteps, "path": path}


if __name__ == "__main__":
    main()
