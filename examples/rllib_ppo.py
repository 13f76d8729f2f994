"""Train RLlib's PPO in a generated Yume world, with RLlib's env runners as Ray actors.

    python examples/rllib_ppo.py --tiny                      # a few seconds of training, local Ray
    python examples/rllib_ppo.py --iterations 200 --env-runners 8
    # on a GPU cluster (after `ray start --head` / `ray start --address=HEAD:6379` on every machine):
    python examples/rllib_ppo.py --address auto --env-runners 8 --gpus-per-env-runner 1 \\
        --device cuda --model yume-1.5-5b --checkpoint /data/Yume-5B-720P

The task: pan the camera right. Each env runner (a Ray actor; with ``--gpus-per-env-runner 1`` it
owns one GPU) runs its own ``YumeWorld-v0``s. The world is wrapped for RL libraries with
``yume_env.envs.wrappers.wrap_sb3``: a ``Discrete`` action over a few (move, look) combos and a
small channel-first frame, which is flattened and scaled to [0, 1] here so RLlib's default MLP
takes it. The reward is ``InstructionFollowingReward`` (does the block's camera motion, estimated
from its pixels, match "pan right").

Prints one line per iteration and returns the episode returns; writes nothing.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.tune.registry import register_env


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="RLlib PPO on YumeWorld-v0 (pan the camera right)")
    p.add_argument("--tiny", action="store_true", help="a budget of seconds: for smoke tests")
    p.add_argument("--iterations", type=int, default=20, help="PPO training iterations")
    p.add_argument("--env-runners", type=int, default=2, help="RLlib env runners (Ray actors)")
    p.add_argument("--envs-per-env-runner", type=int, default=1)
    p.add_argument("--gpus-per-env-runner", type=float, default=0)
    p.add_argument("--batch", type=int, default=256, help="env steps (blocks) per iteration")
    p.add_argument("--episode-blocks", type=int, default=16)
    p.add_argument("--resolution", type=int, nargs=2, default=[96, 160], metavar=("H", "W"))
    p.add_argument("--obs-size", type=int, default=16, help="the policy sees an N x N frame")
    p.add_argument("--model", default="tiny", help="a preset: tiny or yume-1.5-5b")
    p.add_argument("--checkpoint", default=None, help="the Yume-5B-720P folder for yume-1.5-5b")
    p.add_argument("--device", default=None, help="e.g. cuda (each env runner's own GPU)")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' inside a cluster)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.tiny:
        args.iterations, args.env_runners, args.batch, args.episode_blocks = 2, 1, 8, 4
        args.resolution = [32, 64]
    return args


def make_env(config: dict) -> gym.Env:
    """One YumeWorld-v0, wrapped for RLlib: Discrete actions, a flat float frame in [0, 1]."""
    import yume_env  # noqa: F401  (registers the environments in the env runner's process)
    from yume_env.envs.wrappers import make_sb3_env
    from yume_env.rewards import InstructionFollowingReward

    size = config["obs_size"]
    env = make_sb3_env(
        "YumeWorld-v0",
        size=(size, size),
        moves=[0, 1],  # stand still, forward
        looks=[0, 1, 2],  # still, pan right, pan left
        resolution=tuple(config["resolution"]),
        max_episode_steps=config["episode_blocks"],
        reward_fn=InstructionFollowingReward(target=[(0, 1)], after="last"),
        model=config["model"],
        checkpoint=config["checkpoint"],
        device=config["device"],
    )
    flat = gym.spaces.Box(0.0, 1.0, (3 * size * size,), np.float32)
    return gym.wrappers.TransformObservation(env, lambda o: o.reshape(-1).astype(np.float32) / 255.0, flat)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not ray.is_initialized():
        ray.init(address=args.address)

    # 1. the env, registered under a name the env runners can build
    register_env("YumeWorldRL", make_env)
    env_config = {
        "obs_size": args.obs_size,
        "resolution": args.resolution,
        "episode_blocks": args.episode_blocks,
        "model": args.model,
        "checkpoint": args.checkpoint,
        "device": args.device,
    }

    # 2. PPO: env runners sample in parallel (Ray actors), the learner updates here
    config = (
        PPOConfig()
        .environment("YumeWorldRL", env_config=env_config)
        .env_runners(
            num_env_runners=args.env_runners,
            num_envs_per_env_runner=args.envs_per_env_runner,
            num_gpus_per_env_runner=args.gpus_per_env_runner,
        )
        .training(
            train_batch_size_per_learner=args.batch,
            minibatch_size=min(64, args.batch),
            num_epochs=1 if args.tiny else 4,
            lr=3e-4,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64]))
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()

    # 3. train
    returns, t0 = [], time.perf_counter()
    for it in range(args.iterations):
        result = algo.train()
        runners = result.get("env_runners", {})
        ret = float(runners.get("episode_return_mean", np.nan))
        steps = int(runners.get("num_env_steps_sampled_lifetime", 0))
        returns.append(ret)
        print(f"iteration {it + 1}: {steps} blocks sampled, mean episode return {ret:.3f}", flush=True)
    seconds = time.perf_counter() - t0
    algo.stop()
    print(f"trained {args.iterations} iterations in {seconds:.0f} s")
    return {"returns": returns, "seconds": seconds, "env_steps": steps}


if __name__ == "__main__":
    main()
