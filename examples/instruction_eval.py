"""Instruction-following evaluation: score agents on the benchmark's task suite.

    python examples/instruction_eval.py                          # procedural world, default tasks
    python examples/instruction_eval.py --world yume --policies rule_based

Each policy gets every task's instruction through ``policy.reset(instruction)`` and acts block by
block; the benchmark measures the camera motion of each block and scores it against the
instructed keys (see ``yume_env.evaluation``). Results (tables, plots, videos) go under
``<out>/<policy>/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.instruction_follower import RuleBasedInstructionFollower
from agents.random_agent import RandomPolicy

POLICIES = {
    "rule_based": lambda seed: RuleBasedInstructionFollower(),
    "random": lambda seed: RandomPolicy(seed=seed),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run the instruction-following benchmark on some agents")
    p.add_argument("--world", choices=["procedural", "yume"], default="procedural")
    p.add_argument("--policies", nargs="+", choices=sorted(POLICIES), default=["rule_based", "random"])
    p.add_argument("--tasks", default=None, help="task suite for the benchmark (default: its own suite)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/instruction_eval"))
    return p.parse_args(argv)


def main(argv=None) -> dict:
    from yume_env.evaluation.benchmark import run_benchmark

    args = parse_args(argv)
    results = {}
    for name in args.policies:
        policy = POLICIES[name](args.seed)
        results[name] = run_benchmark(policy, world=args.world, tasks=args.tasks, out=args.out / name)
        print(f"{name}: {results[name]}")
    return results


if __name__ == "__main__":
    main()
