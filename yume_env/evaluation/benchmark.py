"""The instruction-following benchmark: run a policy on a task suite, score every block from its pixels.

For each task (see :mod:`yume_env.evaluation.tasks`) the policy is reset with the task's
instruction, then acts once per expected block. The camera motion of each block's frames is
estimated (:func:`~yume_env.evaluation.motion.estimate_block_motion`) and compared with the keys
the task expects for that block: the block is *followed* when every axis (pan, tilt, forward/back,
sideways) agrees, i.e. moving the right way on the axes the keys move, and not moving on the
others.

Scores (all in 0..1), in the spirit of the Yume papers' instruction-following (IF) metric, which
checks whether the generated camera motion matches the instructed keys:

- ``if_score``: the fraction of blocks followed (the headline number).
- ``episode_success``: the fraction of episodes whose every block was followed.
- ``axis_score``: the fraction of (block, axis) pairs that agree: partial credit.
- ``world_fidelity``: the fraction of blocks whose motion agrees with the keys the policy actually
  *sent*: how faithfully the world renders actions, whatever the policy did. With the expected-keys
  policy, ``if_score`` and ``world_fidelity`` coincide: that is the world model's own IF score.
- ``event_score``: for tasks with an event, on the procedural world (which reports the catalog
  event it applied), the fraction whose event was applied; ``None`` where nothing can be checked.

Breakdowns: per expected key combo ("W ·", "None ←", ...), per task and per task tag.

Policies: any object with ``reset(instruction="", seed=None)`` and ``act(observation, info)``
(:class:`agents.base.Policy`); ``act`` gets the env's ``info`` plus ``instruction``, ``task_id``,
``block`` (0-based) and ``blocks`` (how many the task has). A policy with a ``start_task(task)``
method is also handed the :class:`~yume_env.evaluation.tasks.Task` (that is how
:class:`ExpectedKeysPolicy`, which plays the expected keys to score the world model itself, works).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yume_env.actions import LOOKS, MOVES, Action
from yume_env.evaluation.motion import AXES, axis_agreement, estimate_block_motion
from yume_env.evaluation.tasks import Task, TaskError, default_tasks, load_tasks
from yume_env.evaluation.worlds import WORLDS, BenchmarkWorld, benchmark_world  # noqa: F401  (WORLDS: its old home)

POLICY_NAMES = ("random", "rule", "expected", "scripted:FILE", "module:Class")


class ExpectedKeysPolicy:
    """Plays exactly the keys (and events) a task expects: scores the world, not a policy.

    This is how the Yume papers score a world model's instruction following: feed it the
    instructed keys and check the generated camera motion. Outside the benchmark, give it the
    blocks directly: ``ExpectedKeysPolicy(task)``; after the task's blocks it stands still.
    """

    name = "expected_keys"

    def __init__(self, task: Task | None = None):
        self._actions: list[dict] = []
        self._t = 0
        if task is not None:
            self.start_task(task)

    def start_task(self, task: Task) -> None:
        self._actions = task.actions()
        self._t = 0

    def reset(self, instruction: str = "", seed: int | None = None) -> None:
        self._t = 0

    def act(self, observation=None, info: dict | None = None) -> dict:
        t = self._t
        self._t += 1
        return dict(self._actions[t]) if t < len(self._actions) else {"move": 0, "look": 0, "event": ""}


# ----------------------------------------------------------------------------------------- results
@dataclass
class BlockScore:
    block: int
    expected: tuple[str, str]  # (move, look) the task expects
    sent: tuple[str, str]  # (move, look) the policy sent
    estimate: dict  # MotionEstimate.as_dict()
    axes: dict  # axis -> agrees with the expected keys
    followed: bool
    world_followed: bool  # agrees with the keys sent
    event_applied: str | None = None

    def to_dict(self) -> dict:
        return {
            "block": self.block,
            "expected": " ".join(self.expected),
            "sent": " ".join(self.sent),
            "estimate": self.estimate,
            "axes": self.axes,
            "followed": self.followed,
            "world_followed": self.world_followed,
            "event_applied": self.event_applied,
        }


@dataclass
class EpisodeScore:
    task: Task
    policy_seed: int
    world_seed: int
    blocks: list[BlockScore] = field(default_factory=list)
    event_ok: bool | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def score(self) -> float:
        """Fraction of the task's blocks followed (blocks never played count as not followed)."""
        return sum(b.followed for b in self.blocks) / len(self.task.blocks)

    @property
    def axis_score(self) -> float:
        n = len(self.task.blocks) * len(AXES)
        return sum(sum(b.axes.values()) for b in self.blocks) / n

    def to_dict(self) -> dict:
        return {
            "task": self.task.id,
            "instruction": self.task.instruction,
            "tags": list(self.task.tags),
            "policy_seed": self.policy_seed,
            "world_seed": self.world_seed,
            "score": self.score,
            "axis_score": self.axis_score,
            "event_ok": self.event_ok,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "blocks": [b.to_dict() for b in self.blocks],
        }


def _mean(values) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None


@dataclass
class BenchmarkResult:
    """Scores of one policy on one world over a task suite (see the module docstring)."""

    policy: str
    world: str
    episodes: list[EpisodeScore]
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0
    best_frames: np.ndarray | None = field(default=None, repr=False)
    worst_frames: np.ndarray | None = field(default=None, repr=False)
    best_task: str | None = None
    worst_task: str | None = None

    def _blocks(self):
        for ep in self.episodes:
            yield from ep.blocks
            # unplayed blocks of a failed episode count as not followed
            for k in range(len(ep.blocks), len(ep.task.blocks)):
                b = ep.task.blocks[k]
                yield BlockScore(
                    k, (b.move, b.look), ("-", "-"), {}, dict.fromkeys(AXES, False), False, False
                )

    @property
    def blocks(self) -> int:
        return sum(len(ep.task.blocks) for ep in self.episodes)

    @property
    def if_score(self) -> float:
        return _mean(b.followed for b in self._blocks()) or 0.0

    @property
    def episode_success(self) -> float:
        return _mean(ep.score == 1.0 for ep in self.episodes) or 0.0

    @property
    def axis_score(self) -> float:
        return _mean(np.mean(list(b.axes.values())) for b in self._blocks()) or 0.0

    @property
    def world_fidelity(self) -> float:
        return _mean(b.world_followed for b in self._blocks()) or 0.0

    @property
    def event_score(self) -> float | None:
        return _mean(ep.event_ok for ep in self.episodes if ep.event_ok is not None)

    @property
    def errors(self) -> list[str]:
        return [f"{ep.task.id}: {ep.error}" for ep in self.episodes if ep.error]

    def per_instruction(self) -> dict[str, dict]:
        """Expected key combo (``"W ·"``) -> ``{"blocks": n, "followed": fraction}``."""
        groups: dict[str, list[bool]] = {}
        for b in self._blocks():
            groups.setdefault(" ".join(b.expected), []).append(b.followed)
        order = {f"{m} {lk}": i * 9 + j for i, m in enumerate(MOVES) for j, lk in enumerate(LOOKS)}
        return {
            k: {"blocks": len(v), "followed": float(np.mean(v))}
            for k, v in sorted(groups.items(), key=lambda kv: order.get(kv[0], 999))
        }

    def per_task(self) -> dict[str, dict]:
        groups: dict[str, list[EpisodeScore]] = {}
        for ep in self.episodes:
            groups.setdefault(ep.task.id, []).append(ep)
        return {
            k: {
                "instruction": v[0].task.instruction,
                "episodes": len(v),
                "score": float(np.mean([e.score for e in v])),
                "success": float(np.mean([e.score == 1.0 for e in v])),
            }
            for k, v in groups.items()
        }

    def per_tag(self) -> dict[str, dict]:
        groups: dict[str, list[float]] = {}
        for ep in self.episodes:
            for tag in ep.task.tags or ("untagged",):
                groups.setdefault(tag, []).append(ep.score)
        return {k: {"episodes": len(v), "score": float(np.mean(v))} for k, v in sorted(groups.items())}

    def summary(self) -> dict:
        return {
            "policy": self.policy,
            "world": self.world,
            "if_score": self.if_score,
            "episode_success": self.episode_success,
            "axis_score": self.axis_score,
            "world_fidelity": self.world_fidelity,
            "event_score": self.event_score,
            "episodes": len(self.episodes),
            "blocks": self.blocks,
            "errors": len(self.errors),
            "seconds": round(self.seconds, 1),
        }

    def to_dict(self) -> dict:
        return {
            "summary": self.summary(),
            "settings": self.settings,
            "per_instruction": self.per_instruction(),
            "per_tag": self.per_tag(),
            "per_task": self.per_task(),
            "best_task": self.best_task,
            "worst_task": self.worst_task,
            "errors": self.errors,
            "episodes": [ep.to_dict() for ep in self.episodes],
        }

    def to_markdown(self) -> str:
        s = self.summary()
        ev = "n/a" if s["event_score"] is None else f"{s['event_score']:.1%}"
        lines = [
            f"## {self.policy} on {self.world}",
            "",
            "| IF score (blocks followed) | episodes fully followed | axis agreement | world fidelity | events applied | episodes | blocks | time |",
            "|---|---|---|---|---|---|---|---|",
            f"| **{s['if_score']:.1%}** | {s['episode_success']:.1%} | {s['axis_score']:.1%} | "
            f"{s['world_fidelity']:.1%} | {ev} | {s['episodes']} | {s['blocks']} | {s['seconds']:.0f} s |",
            "",
            "### Per instruction (expected keys)",
            "",
            "| keys | blocks | followed |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{k}` | {v['blocks']} | {v['followed']:.0%} |" for k, v in self.per_instruction().items()
        ]
        lines += ["", "### Per tag", "", "| tag | episodes | score |", "|---|---|---|"]
        lines += [f"| {k} | {v['episodes']} | {v['score']:.0%} |" for k, v in self.per_tag().items()]
        lines += [
            "",
            "### Per task",
            "",
            "| task | instruction | episodes | score | success |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {v['instruction']} | {v['episodes']} | {v['score']:.0%} | {v['success']:.0%} |"
            for k, v in self.per_task().items()
        ]
        if self.errors:
            lines += ["", "### Errors", ""] + [f"- {e}" for e in self.errors]
        return "\n".join(lines) + "\n"

    def save(self, out: str | Path, stem: str = "results") -> list[Path]:
        """Write ``<stem>.json`` and ``<stem>.md`` into the folder ``out`` (created if needed)."""
        import json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        js = out / f"{stem}.json"
        js.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False, default=_jsonable) + "\n")
        md = out / f"{stem}.md"
        md.write_text(f"# Instruction following: {self.policy} on {self.world}\n\n" + self.to_markdown())
        return [js, md]


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def comparison_markdown(results: Sequence[BenchmarkResult]) -> str:
    """One table comparing several results (policies or worlds), then per-instruction columns."""
    lines = [
        "| policy | world | IF score | episodes fully followed | axis agreement | world fidelity | events applied | blocks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.summary()
        ev = "n/a" if s["event_score"] is None else f"{s['event_score']:.0%}"
        lines.append(
            f"| {r.policy} | {r.world} | **{s['if_score']:.1%}** | {s['episode_success']:.1%} | "
            f"{s['axis_score']:.1%} | {s['world_fidelity']:.1%} | {ev} | {s['blocks']} |"
        )
    keys: list[str] = []
    for r in results:
        keys += [k for k in r.per_instruction() if k not in keys]
    lines += [
        "",
        "| keys | " + " | ".join(r.policy for r in results) + " |",
        "|---" * (len(results) + 1) + "|",
    ]
    for k in keys:
        cells = []
        for r in results:
            v = r.per_instruction().get(k)
            cells.append("·" if v is None else f"{v['followed']:.0%} ({v['blocks']})")
        lines.append(f"| `{k}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------- policies
def make_policy(spec, seed: int | None = None):
    """A policy from a spec: a policy object, or ``"random"``, ``"rule"``, ``"expected"``,
    ``"scripted:FILE"`` or ``"module.path:ClassName"`` (constructed with no arguments)."""
    if not isinstance(spec, str):
        if callable(getattr(spec, "act", None)) and callable(getattr(spec, "reset", None)):
            return spec
        raise TypeError(
            f"policy: got {type(spec).__name__}; accepted: an object with reset() and act(), or one of "
            + ", ".join(POLICY_NAMES)
        )
    if spec == "random":
        from agents.random_agent import RandomPolicy

        return RandomPolicy(seed=seed)
    if spec in ("rule", "rule_based"):
        from agents.instruction_follower import RuleBasedInstructionFollower

        return RuleBasedInstructionFollower()
    if spec in ("expected", "expected_keys", "oracle"):
        return ExpectedKeysPolicy()
    if spec.startswith("scripted:"):
        path = Path(spec.split(":", 1)[1])
        if not path.is_file():
            raise FileNotFoundError(f"policy {spec!r}: no such script file: {path}")
        from agents.scripted import ScriptedPolicy

        return ScriptedPolicy.from_file(path)
    if ":" in spec:
        module, _, cls = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"policy {spec!r}: cannot import {cls} from {module} ({exc})") from None
        policy = obj() if isinstance(obj, type) else obj
        if not (callable(getattr(policy, "act", None)) and callable(getattr(policy, "reset", None))):
            raise ValueError(
                f"policy {spec!r}: {module}.{cls} is not a policy; accepted: a class whose instances have "
                "reset(instruction, seed) and act(observation, info)"
            )
        return policy
    raise ValueError(f"policy: got {spec!r}; accepted: " + ", ".join(POLICY_NAMES) + " or a policy object")


def policy_name(policy) -> str:
    return str(getattr(policy, "name", type(policy).__name__))


# ----------------------------------------------------------------------------------------- worlds
def make_env(world: str, model=None, checkpoint=None, **env_kwargs):
    """The env of a benchmark world, ``gym.make`` of its env id (see :mod:`yume_env.evaluation.worlds`):
    ``YumeProcedural-v0`` for ``"procedural"``, ``YumeWorld-v0`` with the tiny or 5B model otherwise."""
    return benchmark_world(world).make(model=model, checkpoint=checkpoint, **env_kwargs)


def _event_name(text: str | None) -> str | None:
    if not text:
        return None
    from yume_env.procedural.events import match_event

    ev = match_event(text)
    return None if ev is None else ev.name


def _frames_of(obs) -> np.ndarray:
    arr = np.asarray(obs)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(
            f"observation: got shape {arr.shape}; accepted: frames (T, H, W, 3): use obs_mode='frames'"
        )
    return arr


# ----------------------------------------------------------------------------------------- running
def run_benchmark(
    policy,
    world: str = "procedural",
    tasks: Sequence[Task] | str | Path | None = None,
    out: str | Path | None = None,
    seeds: Sequence[int] = (0,),
    keep_frames: bool = True,
    progress: bool = False,
    estimator: dict | None = None,
    model=None,
    checkpoint: str | Path | None = None,
    env=None,
    **env_kwargs,
) -> BenchmarkResult:
    """Run ``policy`` on every task (once per seed) in ``world`` and score each block.

    Args:
        policy: a policy object, or a spec accepted by :func:`make_policy` (``"random"``,
            ``"rule"``, ``"expected"``, ``"scripted:FILE"``, ``"module:Class"``).
        world: ``"procedural"`` (``YumeProcedural-v0``: ground truth, fast), ``"tiny"`` (the tiny
            Yume model on the CPU) or ``"yume"`` (the 5B model; needs ``checkpoint``).
        tasks: a list of tasks, a suite file path, or ``None`` for :func:`default_tasks`.
        out: a folder to write ``results.json`` / ``results.md`` into (nothing written when ``None``).
        seeds: repetitions; seed ``s`` reseeds the policy (``policy.reset(seed=s)``) and, in
            generated worlds, the world. The procedural world always starts at the task's scene seed.
        keep_frames: keep the frames of the best and the worst episode (for videos).
        progress: show a tqdm progress bar.
        estimator: keyword arguments of :func:`~yume_env.evaluation.motion.estimate_block_motion`.
        model / checkpoint: the generated world's model (a preset name or loaded model) and
            checkpoint folder.
        env: an env already made for ``world`` (see :func:`make_env`), e.g. to run several
            policies on one loaded model; it is left open. By default one is made and closed.
        **env_kwargs: passed to the env (``resolution``, ``device``, ``turn_speed``, ...).

    A task whose policy or step raises is recorded with its error (its remaining blocks count as
    not followed) and the run goes on.
    """
    kind = benchmark_world(world)
    if tasks is None:
        tasks = default_tasks()
    elif isinstance(tasks, str | Path):
        tasks = load_tasks(tasks)
    tasks = list(tasks)
    if not tasks or not all(isinstance(t, Task) for t in tasks):
        raise TaskError("tasks: got an empty list or non-Task items; accepted: Task objects or a suite file")
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        seeds = (int(seeds),)
    seeds = list(seeds)
    if not seeds or not all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        raise ValueError(f"seeds: got {seeds!r}; accepted: a non-empty list of integers >= 0")
    est_kwargs = dict(estimator or {})
    estimate_block_motion(np.zeros((2, 16, 16, 3), np.uint8), **est_kwargs)  # bad estimator args fail now
    policy = make_policy(policy, seed=seeds[0])
    name = policy_name(policy)
    own_env = env is None
    if own_env:
        env = make_env(world, model=model, checkpoint=checkpoint, **env_kwargs)
    image_cache: dict = {}
    episodes: list[EpisodeScore] = []
    best = worst = None  # (score, task id, frames)
    t_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(seeds) * sum(len(t.blocks) for t in tasks), desc=f"{name} on {world}", unit="block"
        )
    try:
        for seed in seeds:
            for task in tasks:
                ep, frames = _run_episode(env, kind, policy, task, int(seed), est_kwargs, image_cache, bar)
                episodes.append(ep)
                if keep_frames and frames:
                    if best is None or ep.score > best[0]:
                        best = (ep.score, task.id, np.concatenate(frames))
                    if worst is None or ep.score < worst[0]:
                        worst = (ep.score, task.id, np.concatenate(frames))
                if bar is not None:
                    played = [b.followed for e in episodes for b in e.blocks]
                    bar.set_postfix_str(f"IF {np.mean(played):.0%}" if played else "")
    finally:
        if own_env:
            env.close()
        if bar is not None:
            bar.close()
    result = BenchmarkResult(
        policy=name,
        world=world,
        episodes=episodes,
        settings={
            "world": world,
            "seeds": seeds,
            "tasks": len(tasks),
            "estimator": est_kwargs,
            "env": {
                k: v for k, v in env_kwargs.items() if isinstance(v, int | float | str | tuple | list | bool)
            },
            "checkpoint": None if checkpoint is None else str(checkpoint),
        },
        seconds=time.perf_counter() - t_start,
        best_frames=None if best is None else best[2],
        worst_frames=None if worst is None else worst[2],
        best_task=None if best is None else best[1],
        worst_task=None if worst is None else worst[1],
    )
    if out is not None:
        result.save(out)
    return result


def _run_episode(env, kind: BenchmarkWorld, policy, task: Task, seed: int, est_kwargs, image_cache, bar):
    t0 = time.perf_counter()
    ep = EpisodeScore(task, seed, kind.world_seed(task, seed))
    frames: list[np.ndarray] = []
    want_event = _event_name(task.event) if kind.ground_truth else None
    applied: list[str] = []
    played = 0
    try:
        obs, info = kind.start(env, task, seed, image_cache)
        if hasattr(policy, "start_task"):
            policy.start_task(task)
        policy.reset(task.instruction, seed=seed)
        n = len(task.blocks)
        for k, want in enumerate(task.blocks):
            action = policy.act(
                obs, {**info, "instruction": task.instruction, "task_id": task.id, "block": k, "blocks": n}
            )
            obs, _, _, _, info = env.step(action)
            block_frames = _frames_of(obs)
            frames.append(block_frames)
            est = estimate_block_motion(block_frames, **est_kwargs)
            sent = Action.parse(action).combo  # a policy may return an Action or a dict
            agree = axis_agreement(est, want.move, want.look)
            world_ok = all(axis_agreement(est, *sent).values())
            if info.get("event_applied"):
                applied.append(info["event_applied"])
            ep.blocks.append(
                BlockScore(
                    k,
                    (want.move, want.look),
                    sent,
                    est.as_dict(),
                    agree,
                    all(agree.values()),
                    world_ok,
                    info.get("event_applied"),
                )
            )
            played += 1
            if bar is not None:
                bar.update(1)
    except Exception as exc:  # a misbehaving policy or world costs this task, not the run
        ep.error = f"{type(exc).__name__}: {exc}"
        if bar is not None:
            bar.update(len(task.blocks) - played)
    if want_event is not None:
        ep.event_ok = want_event in applied
    ep.seconds = time.perf_counter() - t0
    return ep, frames


def check_procedural_seeds(tasks: Sequence[Task], **env_kwargs) -> dict[str, str]:
    """Tasks whose seed does not let the expected keys move the procedural camera as expected.

    Plays each task's expected keys in ``YumeProcedural-v0`` from its seed and compares the true
    pose change of every block with the keys (a wall in the way, or the pitch limit, would make a
    perfect follower fail). Returns ``{task id: what went wrong}``; empty when every seed is fine.
    Use it when writing a suite.
    """
    from yume_env.envs.procedural_env import YumeProceduralEnv
    from yume_env.evaluation.accuracy import pose_axes
    from yume_env.evaluation.motion import expected_axes

    problems: dict[str, str] = {}
    env = YumeProceduralEnv(**env_kwargs)
    try:
        for task in tasks:
            _, info = env.reset(seed=task.seed)
            for k, action in enumerate(task.actions()):
                _, _, _, _, new = env.step(action)
                want = expected_axes(action["move"], action["look"])
                got = pose_axes(info, new)
                if got != want or new["collided"]:
                    problems[task.id] = f"block {k}: the camera moved {got} for keys {want}" + (
                        " (collided)" if new["collided"] else ""
                    )
                    break
                info = new
    finally:
        env.close()
    return problems
