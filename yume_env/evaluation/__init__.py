"""Instruction-following evaluation: a camera-motion estimator, a task suite and a benchmark runner.

- :mod:`~yume_env.evaluation.motion`: :func:`estimate_block_motion` (frames -> pan / tilt /
  forward-back / sideways / still) and the mapping between motion and Yume's keys.
- :mod:`~yume_env.evaluation.synthetic`: blocks warped from still images with known motion.
- :mod:`~yume_env.evaluation.accuracy`: the estimator's accuracy on synthetic warps and on the
  procedural world's ground truth (``benchmarks/motion_accuracy.py`` writes the report).
- :mod:`~yume_env.evaluation.tasks`: the task-suite format and the default suite.
- :mod:`~yume_env.evaluation.benchmark`: :func:`run_benchmark` for any policy (or the expected
  keys, to score a world model), with IF scores and per-instruction breakdowns.
- :mod:`~yume_env.evaluation.cli`: ``yume-world eval``.
"""

from yume_env.evaluation.benchmark import (
    BenchmarkResult,
    ExpectedKeysPolicy,
    comparison_markdown,
    make_env,
    make_policy,
    run_benchmark,
)
from yume_env.evaluation.motion import (
    AXES,
    DEFAULT_THRESHOLDS,
    LABELS,
    MotionEstimate,
    estimate_block_motion,
    expected_axes,
    expected_label,
    label_to_action,
    matches,
)
from yume_env.evaluation.tasks import Task, TaskError, default_tasks, load_tasks, save_tasks

__all__ = [
    "AXES",
    "DEFAULT_THRESHOLDS",
    "LABELS",
    "BenchmarkResult",
    "ExpectedKeysPolicy",
    "MotionEstimate",
    "Task",
    "TaskError",
    "comparison_markdown",
    "default_tasks",
    "estimate_block_motion",
    "expected_axes",
    "expected_label",
    "label_to_action",
    "load_tasks",
    "make_env",
    "make_policy",
    "matches",
    "run_benchmark",
    "save_tasks",
]
