"""Instruction-following evaluation: score agents on the benchmark's task suite.

    python examples/instruction_eval.py                                   # procedural world, all tasks
    python examples/instruction_eval.py --world tiny --limit 4            # the tiny Yume model
    python examples/instruction_eval.py --policies rule_based expected    # "expected" scores the world itself

Each policy gets every task's instruction through ``policy.reset(instruction)`` and acts block by
block; the benchmark estimates the camera motion of each block from its frames and scores it
against the instructed keys (``yume_env.evaluation.benchmark``). Writes ``<out>/<policy>/results.md``
and ``results.json`` per policy, ``<out>/comparison.md`` (one table for all policies), and videos
of each policy's best and worst episodes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.instruction_follower import RuleBasedInstructionFollower
from agents.random_agent import RandomPolicy
from yume_env.evaluation.benchmark import ExpectedKeysPolicy, comparison_markdown, run_benchmark
from yume_env.evaluation.tasks import default_tasks, load_tasks, select_tasks
from yume_env.media import save_video

POLICIES = {
    "rule_based": lambda seed: RuleBasedInstructionFollower(),
    "random": lambda seed: RandomPolicy(seed=seed),
    "expected": lambda seed: ExpectedKeysPolicy(),  # plays the instructed keys: the world's own score
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run the instruction-following benchmark on some agents")
    p.add_argument("--world", choices=["procedural", "tiny", "yume"], default="procedural")
    p.add_argument("--checkpoint", default=None, help="Yume-5B-720P folder (world 'yume')")
    p.add_argument("--policies", nargs="+", choices=sorted(POLICIES), default=["rule_based", "random"])
    p.add_argument("--tasks", type=Path, default=None, help="a task suite file (default: the bundled suite)")
    p.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    p.add_argument("--resolution", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/instruction_eval"))
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    tasks = select_tasks(load_tasks(args.tasks) if args.tasks else default_tasks(), limit=args.limit)
    env_kwargs = {} if args.resolution is None else {"resolution": tuple(args.resolution)}

    results = {}
    for name in args.policies:
        result = run_benchmark(
            POLICIES[name](args.seed),
            world=args.world,
            tasks=tasks,
            out=args.out / name,
            seeds=(args.seed,),
            checkpoint=args.checkpoint,
            **env_kwargs,
        )
        for which, frames, task in (
            ("best", result.best_frames, result.best_task),
            ("worst", result.worst_frames, result.worst_task),
        ):
            if frames is not None:
                save_video(args.out / name / f"{which}_{task}.mp4", frames)
        s = result.summary()
        print(
            f"{name:>10} on {args.world}: IF score {s['if_score']:.1%}, episodes fully followed "
            f"{s['episode_success']:.1%} ({s['blocks']} blocks, {s['seconds']:.0f} s)"
        )
        results[name] = result
    (args.out / "comparison.md").write_text(comparison_markdown(list(results.values())))
    print(f"comparison: {args.out / 'comparison.md'}")
    return results


if __name__ == "__main__":
    main()
