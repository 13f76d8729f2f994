"""``yume-world eval``: the instruction-following benchmark from the command line.

    yume-world eval --policy rule,random --world procedural
    yume-world eval --policy expected --world tiny --limit 4 --resolution 48x80
    yume-world eval --policy expected --world yume --checkpoint Yume-5B-720P --device cuda
    yume-world eval --policy scripted:tour.txt --world procedural --task walk-forward
    yume-world eval --policy mypackage.agents:MyPolicy --tasks my_suite.json

Writes into ``--out`` (default ``yume-eval/``): ``results.md`` (a comparison table, then each
policy's per-instruction, per-tag and per-task tables), ``results.json`` (everything, block by
block), ``if_by_instruction.png`` and ``if_by_task.png`` (plots), and ``<policy>_best.mp4`` /
``<policy>_worst.mp4`` (the best and the worst episode); with ``--minari ID``, every episode as a
Minari dataset (see :mod:`yume_env.datasets`). Exit status: 0 when done, 2 for usage
errors (bad arguments, missing files, unknown policies), 1 when running failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from yume_env.evaluation.benchmark import (
    POLICY_NAMES,
    WORLDS,
    BenchmarkResult,
    comparison_markdown,
    make_env,
    make_policy,
    policy_name,
    run_benchmark,
)
from yume_env.evaluation.motion import AXES, resolve_thresholds
from yume_env.evaluation.tasks import TaskError, load_tasks, select_tasks
from yume_env.evaluation.worlds import MODEL_ARGUMENTS, benchmark_world
from yume_env.world.images import parse_resolution

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line (exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="yume-world eval",
        description="Score policies (or the world model itself) on instruction following: the camera "
        "motion of every block is estimated from its frames and compared with the instructed keys.",
    )
    p.add_argument(
        "--policy",
        default="rule,random",
        help="comma-separated policies: random, rule (the rule-based instruction follower), expected "
        "(plays the expected keys: scores the world model), scripted:FILE (an action script), "
        "module.path:ClassName (any Policy class); default: rule,random",
    )
    p.add_argument("--world", default="procedural", help=f"one of {', '.join(WORLDS)} (default procedural)")
    p.add_argument("--tasks", default=None, help="task suite JSON (default: the suite shipped with yume-env)")
    p.add_argument("--task", action="append", default=None, metavar="ID", help="only this task (repeatable)")
    p.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    p.add_argument(
        "--seeds", default="0", help="comma-separated seeds, one run of the suite each (default 0)"
    )
    p.add_argument("--out", default="yume-eval", help="output folder (default yume-eval)")
    p.add_argument("--checkpoint", default=None, help="Yume-5B-720P folder (world yume)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (generated worlds)")
    p.add_argument("--dtype", default=None, help="float32 or bfloat16 (generated worlds)")
    p.add_argument("--resolution", default=None, help="HxW of the frames, e.g. 96x160")
    p.add_argument("--steps", type=int, default=None, help="denoising steps per block (generated worlds)")
    p.add_argument(
        "--threshold",
        action="append",
        default=None,
        metavar="AXIS=VALUE",
        help="how far an axis must move in a block to count as moving (repeatable; axes yaw, pitch "
        "in frame widths/heights, forward, lateral); e.g. yaw=0.03 for worlds that turn slowly",
    )
    p.add_argument("--no-video", action="store_true", help="do not write the best/worst episode videos")
    p.add_argument("--no-plots", action="store_true", help="do not draw the plots")
    p.add_argument("--fps", type=int, default=16, help="video frame rate (default 16)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--minari",
        default=None,
        metavar="ID",
        help="also write every episode (frames, actions with event text, rewards, captions, timings, "
        "seeds) as this Minari dataset, e.g. yume/eval-rule-v0 (needs the 'data' extra)",
    )
    return p


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise UsageError(f"--seeds: got {text!r}; accepted: comma-separated integers >= 0, e.g. 0,1,2")
    return seeds


def _thresholds(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        axis, _, value = item.partition("=")
        try:
            out[axis.strip()] = float(value)
        except ValueError:
            raise UsageError(
                f"--threshold: got {item!r}; accepted: AXIS=VALUE with AXIS one of {', '.join(AXES)}, "
                "e.g. yaw=0.03"
            ) from None
    try:
        resolve_thresholds(out)
    except ValueError as exc:
        raise UsageError(f"--threshold: {exc}") from None
    return out


def _resolution(text: str | None) -> tuple[int, int] | None:
    try:
        return parse_resolution(text)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None  # the world-level message, with the flag name


def _env_kwargs(args) -> dict:
    kw = {}
    res = _resolution(args.resolution)
    if res is not None:
        kw["resolution"] = res
    kind = benchmark_world(args.world)
    if not kind.has_model:
        for name in MODEL_ARGUMENTS:
            if getattr(args, name) is not None:
                raise UsageError(f"--{name}: not used by world {kind.name!r} (it has no model); leave it out")
        return kw
    if kind.needs_checkpoint and args.checkpoint is None:
        raise UsageError(f"--checkpoint: world {kind.name!r} needs the official Yume-5B-720P folder")
    for name in MODEL_ARGUMENTS:
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    return kw


def plot_results(results: list[BenchmarkResult], out: Path) -> list[Path]:
    """Bar charts of the IF score per expected key combo and per task, one bar per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    paths = []
    keys: list[str] = []
    for r in results:
        keys += [k for k in r.per_instruction() if k not in keys]
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(keys) + 2), 3.8))
    x = np.arange(len(keys))
    for i, r in enumerate(results):
        per = r.per_instruction()
        ax.bar(
            x + i * width,
            [per.get(k, {}).get("followed", 0.0) for k in keys],
            width,
            label=f"{r.policy} ({r.if_score:.0%})",
        )
    ax.set_xticks(x + width * (len(results) - 1) / 2)
    ax.set_xticklabels(keys, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("blocks followed")
    ax.set_title(f"Instruction following by expected keys ({results[0].world} world)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "if_by_instruction.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    tasks: list[str] = []
    for r in results:
        tasks += [t for t in r.per_task() if t not in tasks]
    fig, ax = plt.subplots(figsize=(8.0, max(3.0, 0.22 * len(tasks) + 1.2)))
    y = np.arange(len(tasks))
    height = 0.8 / len(results)
    for i, r in enumerate(results):
        per = r.per_task()
        ax.barh(y + i * height, [per.get(t, {}).get("score", 0.0) for t in tasks], height, label=r.policy)
    ax.set_yticks(y + height * (len(results) - 1) / 2)
    ax.set_yticklabels(tasks, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("blocks followed")
    ax.set_title(f"Instruction following by task ({results[0].world} world)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    paths.append(out / "if_by_task.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _write_minari(args, recorder, env_kwargs: dict, names: list[str]) -> None:
    from yume_env.datasets import env_spec_for, write_dataset

    kind = benchmark_world(args.world)
    spec = env_spec_for(kind.env_id, **kind.env_arguments(**env_kwargs))
    recorder.finish_episode()
    if not recorder.episodes:
        print(f"yume-world eval: no episode was played; dataset {args.minari} not written", file=sys.stderr)
        return
    ds = write_dataset(
        args.minari,
        recorder,
        spec,
        algorithm_name=",".join(names),
        description=f"yume-world eval --policy {args.policy} --world {args.world}: instruction-following episodes",
    )
    print(f"wrote Minari dataset {args.minari} ({ds.total_episodes} episodes, {ds.total_steps} steps)")


def run(args, argv: list[str]) -> int:
    if args.world not in WORLDS:
        raise UsageError(f"--world: got {args.world!r}; accepted: {', '.join(WORLDS)}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit: got {args.limit}; accepted: an integer >= 1")
    if args.fps < 1:
        raise UsageError(f"--fps: got {args.fps}; accepted: an integer >= 1")
    seeds = _seeds(args.seeds)
    thresholds = _thresholds(args.threshold)
    specs = [s.strip() for s in args.policy.split(",") if s.strip()]
    if not specs:
        raise UsageError(f"--policy: got {args.policy!r}; accepted: {', '.join(POLICY_NAMES)}")
    try:
        tasks = select_tasks(load_tasks(args.tasks), args.task, args.limit)
        for t in tasks:  # start images must exist before anything runs
            if not benchmark_world(args.world).ground_truth:
                t.image_path()
        policies = [make_policy(s, seed=seeds[0]) for s in specs]
    except (TaskError, ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    env_kwargs = _env_kwargs(args)
    if args.minari is not None:
        from yume_env.datasets import check_new_dataset

        try:
            check_new_dataset(args.minari, "--minari")
        except (ValueError, ImportError) as exc:
            raise UsageError(str(exc)) from None
    try:
        env = make_env(args.world, **env_kwargs)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    if args.minari is not None:
        from yume_env.datasets import EpisodeRecorder

        env = EpisodeRecorder(env)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[BenchmarkResult] = []
    t0 = time.perf_counter()
    try:
        for policy in policies:
            results.append(
                run_benchmark(
                    policy,
                    world=args.world,
                    tasks=tasks,
                    seeds=seeds,
                    keep_frames=not args.no_video,
                    progress=not args.quiet,
                    env=env,
                    estimator={"thresholds": thresholds} if thresholds else None,
                    checkpoint=args.checkpoint,
                    **env_kwargs,
                )
            )
    finally:
        env.close()
    names = [policy_name(p) for p in policies]
    written: list[Path] = []
    if args.minari is not None:
        _write_minari(args, env, env_kwargs, names)
    header = (
        f"# Instruction following on the {args.world} world\n\n"
        f"Command: `yume-world eval {' '.join(argv)}`\n\n"
        f"{len(tasks)} tasks x {len(seeds)} seed(s); block scores from the camera motion estimated in "
        "the frames (yume_env.evaluation.motion) against the keys each task expects.\n\n"
    )
    md = header + comparison_markdown(results) + "\n" + "\n".join(r.to_markdown() for r in results)
    (out / "results.md").write_text(md, encoding="utf-8")
    (out / "results.json").write_text(
        json.dumps(
            {"command": ["yume-world", "eval", *argv], "results": [r.to_dict() for r in results]},
            indent=1,
            ensure_ascii=False,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    written += [out / "results.md", out / "results.json"]
    if not args.no_plots:
        try:
            written += plot_results(results, out)
        except ImportError:
            print(
                "yume-world eval: matplotlib is not installed; skipping plots (pip install matplotlib)",
                file=sys.stderr,
            )
    if not args.no_video:
        from yume_env.media import save_video

        for name, r in zip(names, results):
            for kind, frames, task in (
                ("best", r.best_frames, r.best_task),
                ("worst", r.worst_frames, r.worst_task),
            ):
                if frames is not None:
                    written.append(save_video(out / f"{_safe(name)}_{kind}.mp4", frames, fps=args.fps))
                    print(f"{name} {kind} episode: {task}")
    for r in results:
        s = r.summary()
        print(
            f"{r.policy:>16s} on {r.world}: IF {s['if_score']:.1%}  episodes {s['episode_success']:.1%}  "
            f"axes {s['axis_score']:.1%}  world fidelity {s['world_fidelity']:.1%}  ({s['blocks']} blocks, {s['seconds']:.0f} s)"
        )
        for e in r.errors[:5]:
            print(f"  error: {e}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    if any(r.episodes and all(ep.error for ep in r.episodes) for r in results):
        print("yume-world eval: every episode of a policy failed (see the errors above)", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def main(argv: list[str] | None = None, traceback: bool = False) -> int:
    """Run ``yume-world eval``; ``traceback=True`` (``yume-world --traceback eval``) re-raises errors."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # 'yume-world eval -- --policy ...' hands the separator on
        argv = argv[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2)
        return int(exc.code or 0)
    try:
        return run(args, argv)
    except UsageError as exc:
        if traceback:
            raise
        print(f"yume-world eval: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if traceback:
            raise
        print(f"yume-world eval: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
