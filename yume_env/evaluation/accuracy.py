"""How often the motion estimator is right: on synthetic warps and on the procedural world's ground truth.

- :func:`synthetic_accuracy`: blocks warped from the bundled sample images with known motion
  (:mod:`yume_env.evaluation.synthetic`).
- :func:`procedural_accuracy`: blocks of ``YumeProcedural-v0`` with the camera's true pose in
  ``info``; the true motion of a block comes from the pose change (so a block that bumped into a
  wall or hit the pitch limit is judged by what the camera really did, not by the key pressed).

Both return an :class:`AccuracyReport` with a confusion table (true label by estimated dominant
label), the label accuracy, the exact accuracy (every axis right, no spurious extra motion), and
per-axis accuracy. ``benchmarks/motion_accuracy.py`` runs both and writes the Markdown report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from yume_env.evaluation.motion import AXES, LABELS, MotionEstimate, estimate_block_motion
from yume_env.evaluation.synthetic import CLEAR_LABELS, synthetic_dataset

#: True-motion thresholds of a procedural block: degrees of yaw / pitch, metres forward / sideways.
POSE_THRESHOLDS = {"yaw": 5.0, "pitch": 3.0, "forward": 0.5, "lateral": 0.5}


def label_axes(label: str) -> dict[str, int]:
    """Axis signs of a single-axis label (``"still"``: all zero)."""
    if label not in LABELS:
        raise ValueError(f"label: got {label!r}; accepted: {', '.join(LABELS)}")
    out = {a: 0 for a in AXES}
    for axis, (neg, pos) in AXES.items():
        if label == neg:
            out[axis] = -1
        elif label == pos:
            out[axis] = 1
    return out


def axes_label(axes: dict[str, int]) -> str:
    """The label of axis signs: a single-axis label, ``"still"``, or ``"mixed"``."""
    moving = [(a, s) for a, s in axes.items() if s]
    if not moving:
        return "still"
    if len(moving) > 1:
        return "mixed"
    axis, sign = moving[0]
    return AXES[axis][int(sign > 0)]


@dataclass
class AccuracyReport:
    """Accuracy of the estimator on a set of blocks with known motion."""

    name: str
    n: int = 0
    label_correct: int = 0  # single-axis blocks whose dominant label is right
    single: int = 0  # blocks with a single-axis (or still) truth
    exact_correct: int = 0  # blocks with every axis right
    axis_correct: dict = field(default_factory=lambda: {a: 0 for a in AXES})
    confusion: dict = field(default_factory=dict)  # true label -> estimated label -> count
    exact_by_label: dict = field(default_factory=dict)  # true label -> [exact correct, total]
    seconds: float = 0.0

    def add(self, truth: dict[str, int], est: MotionEstimate) -> None:
        self.n += 1
        ok = {a: est.axes.get(a, 0) == truth[a] for a in AXES}
        for a in AXES:
            self.axis_correct[a] += int(ok[a])
        self.exact_correct += int(all(ok.values()))
        true_label = axes_label(truth)
        if true_label != "mixed":
            self.single += 1
            self.label_correct += int(est.label == true_label)
            row = self.confusion.setdefault(true_label, {})
            row[est.label] = row.get(est.label, 0) + 1
            counts = self.exact_by_label.setdefault(true_label, [0, 0])
            counts[0] += int(all(ok.values()))
            counts[1] += 1

    @property
    def label_accuracy(self) -> float:
        return self.label_correct / self.single if self.single else float("nan")

    @property
    def exact_accuracy(self) -> float:
        return self.exact_correct / self.n if self.n else float("nan")

    def axis_accuracy(self) -> dict[str, float]:
        return {a: (c / self.n if self.n else float("nan")) for a, c in self.axis_correct.items()}

    def label_accuracy_of(self, labels: Sequence[str]) -> float:
        """Label accuracy over the blocks whose true label is in ``labels``."""
        total = sum(sum(self.confusion.get(t, {}).values()) for t in labels)
        right = sum(self.confusion.get(t, {}).get(t, 0) for t in labels)
        return right / total if total else float("nan")

    def exact_of(self, labels: Sequence[str]) -> float:
        """Exact accuracy over the blocks whose true label is in ``labels``."""
        right = sum(self.exact_by_label.get(t, [0, 0])[0] for t in labels)
        total = sum(self.exact_by_label.get(t, [0, 0])[1] for t in labels)
        return right / total if total else float("nan")

    def per_label(self) -> dict[str, tuple[int, int]]:
        """``true label -> (correct, total)``."""
        return {t: (row.get(t, 0), sum(row.values())) for t, row in self.confusion.items()}

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "blocks": self.n,
            "single_axis_blocks": self.single,
            "label_accuracy": self.label_accuracy,
            "exact_accuracy": self.exact_accuracy,
            "axis_accuracy": self.axis_accuracy(),
            "confusion": self.confusion,
            "seconds": self.seconds,
        }

    def confusion_markdown(self) -> str:
        labels = [
            lab for lab in LABELS if lab in self.confusion or any(lab in r for r in self.confusion.values())
        ]
        head = "| true \\ estimated | " + " | ".join(labels) + " | accuracy |"
        sep = "|---" * (len(labels) + 2) + "|"
        rows = [head, sep]
        for t in LABELS:
            row = self.confusion.get(t)
            if not row:
                continue
            total = sum(row.values())
            cells = [str(row.get(p, 0)) if row.get(p, 0) else "·" for p in labels]
            rows.append(f"| **{t}** | " + " | ".join(cells) + f" | {row.get(t, 0) / total:.0%} ({total}) |")
        return "\n".join(rows)

    def summary_markdown(self) -> str:
        axes = self.axis_accuracy()
        return (
            f"- blocks: {self.n} ({self.single} single-axis or still)\n"
            f"- label accuracy (dominant motion right): **{self.label_accuracy:.1%}**\n"
            f"- exact accuracy (every axis right, nothing spurious): {self.exact_accuracy:.1%}\n"
            "- per axis: " + ", ".join(f"{a} {v:.1%}" for a, v in axes.items()) + "\n"
            f"- time: {self.seconds:.1f} s ({self.seconds / max(self.n, 1) * 1000:.0f} ms per block incl. making it)"
        )


def synthetic_accuracy(
    per_label: int = 20,
    labels: Sequence[str] = LABELS,
    seed: int = 0,
    size: tuple[int, int] = (96, 160),
    frames: int = 29,
    noise: float = 2.0,
    progress: bool = False,
    **estimator_kwargs,
) -> AccuracyReport:
    """Estimator accuracy on ``per_label`` synthetic blocks of each label (see :mod:`.synthetic`)."""
    report = AccuracyReport("synthetic")
    t0 = time.perf_counter()
    blocks = synthetic_dataset(per_label, labels, seed=seed, frames=frames, size=size, noise=noise)
    if progress:
        from tqdm import tqdm

        blocks = tqdm(blocks, total=per_label * len(labels), desc="synthetic", unit="block")
    for block in blocks:
        report.add(label_axes(block.label), estimate_block_motion(block.frames, **estimator_kwargs))
    report.seconds = time.perf_counter() - t0
    return report


def pose_axes(info_before: dict, info_after: dict) -> dict[str, int]:
    """True axis signs of a procedural block from the pose at the end of the previous block and this one."""
    yaw0 = float(np.asarray(info_before["yaw"])[-1])
    dyaw = (float(np.asarray(info_after["yaw"])[-1]) - yaw0 + 180.0) % 360.0 - 180.0
    dpitch = float(np.asarray(info_after["pitch"])[-1]) - float(np.asarray(info_before["pitch"])[-1])
    heading = np.radians(yaw0 + dyaw / 2)  # the mean heading over the block (walking while turning)
    fwd = np.array([np.sin(heading), np.cos(heading)])
    right = np.array([np.cos(heading), -np.sin(heading)])
    d = np.asarray(info_after["position"])[-1] - np.asarray(info_before["position"])[-1]
    moved = {
        "yaw": dyaw,
        "pitch": dpitch,
        "forward": float(d[[0, 2]] @ fwd),
        "lateral": float(d[[0, 2]] @ right),
    }
    return {a: int(np.sign(v)) if abs(v) > POSE_THRESHOLDS[a] else 0 for a, v in moved.items()}


_SINGLES = ((0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (2, 0), (3, 0), (4, 0))
_COMBOS = ((1, 1), (1, 2), (3, 1), (3, 2), (1, 3), (1, 4), (0, 5), (0, 6), (0, 7), (0, 8))


def procedural_accuracy(
    episodes: int = 20,
    blocks: int = 6,
    seed: int = 0,
    combo_fraction: float = 0.2,
    env_kwargs: dict | None = None,
    progress: bool = False,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    name: str = "procedural",
    **estimator_kwargs,
) -> AccuracyReport:
    """Estimator accuracy on ``YumeProcedural-v0`` blocks, judged against the true camera pose.

    Each of ``episodes`` episodes (scene seeds ``seed``, ``seed + 1``, ...) plays ``blocks``
    random actions: single keys (one axis, or still) and, with probability ``combo_fraction``, a
    move plus a look or a diagonal look (several axes). ``transform``, when given, maps each
    block's frames ``(T, H, W, 3)`` uint8 before they are estimated (e.g. through a VAE, to score
    the estimator on a model's blurry frames with known truth).
    """
    from yume_env.envs.procedural_env import YumeProceduralEnv

    for what, value in (("episodes", episodes), ("blocks", blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what}: got {value!r}; accepted: an integer >= 1")
    if transform is not None and not callable(transform):
        raise TypeError(f"transform: got {type(transform).__name__}; accepted: a callable frames -> frames")
    rng = np.random.default_rng(seed)
    report = AccuracyReport(name)
    env = YumeProceduralEnv(**(env_kwargs or {}))
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes * blocks, desc=name, unit="block")
    try:
        for ep in range(episodes):
            _, info = env.reset(seed=seed + ep)
            for _ in range(blocks):
                pool = _COMBOS if rng.random() < combo_fraction else _SINGLES
                move, look = pool[int(rng.integers(len(pool)))]
                obs, _, _, _, new_info = env.step({"move": move, "look": look})
                frames = obs if transform is None else transform(obs)
                report.add(pose_axes(info, new_info), estimate_block_motion(frames, **estimator_kwargs))
                info = new_info
                if bar is not None:
                    bar.update(1)
    finally:
        env.close()
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - t0
    return report


__all__ = [
    "CLEAR_LABELS",
    "AccuracyReport",
    "axes_label",
    "label_axes",
    "pose_axes",
    "procedural_accuracy",
    "synthetic_accuracy",
]
