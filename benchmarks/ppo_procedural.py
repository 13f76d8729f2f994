"""PPO's learning curve for a simple instruction reward on the procedural world, over several seeds.

The instruction is fixed for the run ("turn right" by default). The reward of a block is
``agents.ppo_agent.PoseInstructionReward``: 1 minus the distance between the camera motion measured
from the world's pose ground truth and the instructed motion (1 = exactly the instruction, 0 = no
motion, -1 = the opposite turn). PPO's ``CnnPolicy`` sees only the frames and picks one of the 81
move x look combos. For reference, the random agent and the rule-based instruction follower are
scored on the same reward.

Writes ``<out>/ppo-procedural.md`` (setup, numbers, command) and ``<out>/ppo-procedural.png``
(mean episode return over seeds, with the min-max spread).

    python benchmarks/ppo_procedural.py                 # 3 seeds, a few minutes on 2 CPU cores
    python benchmarks/ppo_procedural.py --seeds 0 --timesteps 512 --out /tmp/ppo   # quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import yume_env  # noqa: F401  (registers the environments)
from agents.instruction_follower import RuleBasedInstructionFollower
from agents.ppo_agent import PoseInstructionReward, PPOPolicy, train_ppo
from agents.random_agent import RandomPolicy


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--instruction", default="turn right")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--timesteps", type=int, default=3072, help="PPO timesteps (blocks) per seed")
    p.add_argument("--resolution", type=int, nargs=2, default=[48, 80], metavar=("H", "W"))
    p.add_argument("--frames-per-block", type=int, default=2)
    p.add_argument("--episode-blocks", type=int, default=16)
    p.add_argument("--n-steps", type=int, default=256, help="PPO rollout length (also the curve's bin)")
    p.add_argument("--eval-episodes", type=int, default=4, help="episodes per seed for the final scores")
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument(
        "--models", type=Path, default=None, help="keep the trained models here (default: discard)"
    )
    return p.parse_args(argv)


def env_kwargs(args) -> dict:
    return {
        "resolution": tuple(args.resolution),
        "frames_per_block": args.frames_per_block,
        "max_episode_steps": args.episode_blocks,
        "render_threads": 1,
    }


def score(policy, args, seed: int, episodes: int) -> list[float]:
    """Episode returns of ``policy`` on the reward-wrapped raw env (frames in, action dicts out)."""
    env = PoseInstructionReward(gym.make("YumeProcedural-v0", **env_kwargs(args)), args.instruction)
    returns = []
    obs, info = env.reset(seed=10_000 + seed)
    for ep in range(episodes):
        if ep:
            obs, info = env.reset()
        policy.reset(args.instruction, seed=seed * 100 + ep)
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, info = env.step(policy.act(obs, info))
            total += r
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def binned(end_steps: list[int], returns: list[float], width: int, total: int) -> list[float]:
    """Mean return of the episodes that ended in each window of ``width`` timesteps."""
    out = []
    for lo in range(0, total, width):
        vals = [r for s, r in zip(end_steps, returns) if lo < s <= lo + width]
        out.append(float(np.mean(vals)) if vals else float("nan"))
    return out


def plot(path: Path, steps, curves, random_mean, rule_mean, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = np.array(curves)
    mean, lo, hi = np.nanmean(curves, 0), np.nanmin(curves, 0), np.nanmax(curves, 0)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.fill_between(steps, lo, hi, alpha=0.25, label=f"PPO min-max over {len(curves)} seeds")
    ax.plot(steps, mean, marker="o", label="PPO mean episode return")
    ax.axhline(random_mean, color="grey", ls="--", label=f"random agent ({random_mean:.1f})")
    ax.axhline(rule_mean, color="green", ls=":", label=f"rule-based follower ({rule_mean:.1f})")
    ax.set_xlabel("timesteps (blocks)")
    ax.set_ylabel(f"return per {args.episode_blocks}-block episode")
    ax.set_title(f'PPO on YumeProcedural-v0, instruction "{args.instruction}"')
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    curves, finals, seconds = [], [], []
    width = args.n_steps
    scratch = tempfile.TemporaryDirectory()
    models = args.models or Path(scratch.name)
    for seed in args.seeds:
        result = train_ppo(
            models,
            env_id="YumeProcedural-v0",
            env_kwargs=env_kwargs(args),
            instruction=args.instruction,
            total_timesteps=args.timesteps,
            seed=seed,
            size=None,
            n_steps=args.n_steps,
            name=f"seed{seed}",
        )
        curve = binned(result.episode_end_steps, result.episode_returns, width, args.timesteps)
        final = score(PPOPolicy(result.path), args, seed, args.eval_episodes)
        curves.append(curve)
        finals.append(float(np.mean(final)))
        seconds.append(result.seconds)
        print(
            f"seed {seed}: {result.seconds:.0f} s, curve {np.round(curve, 2).tolist()}, final {finals[-1]:.2f}"
        )
    scratch.cleanup()
    random_scores = [np.mean(score(RandomPolicy(seed=s), args, s, args.eval_episodes)) for s in args.seeds]
    rule = RuleBasedInstructionFollower(when_done="repeat_last")  # the reward repeats the plan's last block
    rule_scores = [np.mean(score(rule, args, s, 1)) for s in args.seeds]
    random_mean, rule_mean = float(np.mean(random_scores)), float(np.mean(rule_scores))
    steps = [min(lo + width, args.timesteps) for lo in range(0, args.timesteps, width)]
    png = args.out / "ppo-procedural.png"
    plot(png, steps, curves, random_mean, rule_mean, args)
    results = {
        "instruction": args.instruction,
        "seeds": args.seeds,
        "timesteps": args.timesteps,
        "bin_end_steps": steps,
        "curves": curves,
        "final_deterministic": finals,
        "random": random_mean,
        "rule_based": rule_mean,
        "train_seconds": seconds,
        "total_seconds": time.perf_counter() - t_start,
    }
    write_markdown(args.out / "ppo-procedural.md", png.name, results, args)
    print(json.dumps({k: v for k, v in results.items() if k != "curves"}, indent=1))
    return results


def write_markdown(path: Path, png: str, r: dict, args) -> None:
    curves = np.array(r["curves"])
    mean, lo, hi = np.nanmean(curves, 0), np.nanmin(curves, 0), np.nanmax(curves, 0)
    rows = "\n".join(
        f"| {s} | {m:.2f} | {a:.2f} | {b:.2f} |" for s, m, a, b in zip(r["bin_end_steps"], mean, lo, hi)
    )
    per_seed = ", ".join(f"{f:.2f}" for f in r["final_deterministic"])
    cmd = "python benchmarks/ppo_procedural.py" + ("" if args.out == Path("docs") else f" --out {args.out}")
    trend = "rises" if mean[-1] > mean[0] else "does not rise"
    text = f"""# PPO on the procedural world: learning curve for a simple instruction reward

![PPO learning curve]({png})

**Result:** the mean return per {args.episode_blocks}-block episode {trend} from {mean[0]:.2f} in the
first {args.n_steps} timesteps to {mean[-1]:.2f} in the last {args.n_steps} (over {len(r["seeds"])}
seeds; the worst seed's last window is {lo[-1]:.2f}). The trained policies, acting
deterministically on new episodes, score {np.mean(r["final_deterministic"]):.2f} (per seed:
{per_seed}); the random agent scores {r["random"]:.2f} and the rule-based instruction follower
{r["rule_based"]:.2f} (the most a policy can get is {args.episode_blocks}).

## Setup

- World: `YumeProcedural-v0` at {args.resolution[0]}x{args.resolution[1]}, {args.frames_per_block}
  frames per block, episodes of {args.episode_blocks} blocks; every episode is a new seeded
  neighbourhood and start pose.
- Instruction: "{r["instruction"]}", fixed for the run. Reward per block
  (`agents.ppo_agent.PoseInstructionReward`): `1 - ||measured - instructed||`, where the measured
  motion is (forward, right, yaw, pitch) of the camera from the pose ground truth in `info`, in units
  of one block's move / turn / tilt, and the instructed motion comes from the rule-based grammar's
  plan of the instruction. So a block scores 1 for exactly a right pan, 0 for standing still or for a
  right pan while also walking, and -1 for a left pan.
- Agent: stable-baselines3 PPO `CnnPolicy` (NatureCNN, 128 features) on the last frame
  (channel-first, `ChannelFirstFrames`), actions `Discrete(81)` over move x look
  (`DiscreteActions`); n_steps {args.n_steps}, batch 64, 4 epochs, lr 3e-4, gamma 0.9, entropy 0.01;
  {r["timesteps"]} timesteps per seed; seeds {", ".join(map(str, r["seeds"]))}.
- Curve: mean return of the training episodes (sampled actions, so exploration included) that ended
  in each window of {args.n_steps} timesteps; the band is the min-max over seeds.
- Final scores: {args.eval_episodes} new episodes per seed with the saved model loaded through
  `agents.ppo_agent.PPOPolicy` (deterministic actions); random agent {args.eval_episodes} episodes
  per seed; rule-based follower (repeating its plan's last block, as the reward asks) 1 episode
  per seed.

## Numbers

| timesteps | mean return | min over seeds | max over seeds |
|---|---|---|---|
{rows}

Training took {", ".join(f"{s:.0f}" for s in r["train_seconds"])} s per seed, {r["total_seconds"]:.0f} s
in all with the scoring, on {platform.machine()} CPU with torch {torch.__version__} (one torch
thread), on a machine shared with other work.

## Reproduce

```bash
{cmd}
```

The task is deliberately simple (one fixed instruction, an immediate reward): it shows that the
wrapped environment, the reward from ground truth and PPO fit together and learn, not that PPO
follows instructions in general. The instruction is not an input of the policy.
"""
    path.write_text(text)


if __name__ == "__main__":
    main()
