"""Instruction-following reward: does the motion seen in a block match the instructed keys?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from yume_env.actions import LOOKS, MOVES
from yume_env.evaluation.motion import AXES, axis_agreement, estimate_block_motion
from yume_env.rewards.common import check_observation_space, frames_from

AFTER = ("still", "last", "zero")


def _keys(item, where: str) -> tuple[int, int]:
    """``(move, look)`` indices from ``"W ."`` / ``("W", "←")`` / ``{"move": 1, "look": 2}`` / a script step."""
    if hasattr(item, "move") and hasattr(item, "look"):
        item = (item.move, item.look)
    if isinstance(item, str):
        from yume_env.script import ScriptError, parse_script

        try:
            step = parse_script(item)[0]
        except ScriptError as exc:
            raise ValueError(f"{where}: {exc}") from None
        return step.action.move, step.action.look
    if isinstance(item, Mapping):
        item = (item.get("move"), item.get("look"))
    if isinstance(item, Sequence) and len(item) == 2:
        out = []
        for value, names, what in ((item[0], MOVES, "move"), (item[1], LOOKS, "look")):
            if isinstance(value, str) and value in names:
                out.append(names.index(value))
            elif isinstance(value, int | np.integer) and not isinstance(value, bool) and 0 <= value < 9:
                out.append(int(value))
            else:
                raise ValueError(f"{where}: {what} {value!r}; accepted: {', '.join(names)} or an index 0..8")
        return out[0], out[1]
    raise ValueError(
        f"{where}: got {item!r}; accepted: 'MOVE LOOK' text, a (move, look) pair or an action dict"
    )


class InstructionFollowingReward:
    """``reward(obs, action, info) -> float``: agreement of a block's camera motion with the keys.

    The camera motion of the block's frames is estimated from pixels
    (:func:`yume_env.evaluation.motion.estimate_block_motion`) and compared on four axes (pan,
    tilt, forward/back, sideways) with the instructed keys.

    Args:
        target: the instructed keys. ``None`` (default): the keys of the step's own ``action``,
            so the reward measures how faithfully the world follows the actions it is given. A
            sequence, one entry per block: ``"W ."`` / ``"None left"`` text, ``("W", "←")`` pairs,
            action dicts, or a :class:`~yume_env.evaluation.tasks.Task` (its blocks): block ``k``
            of the episode (``info["block_index"] == k + 1``) is scored against entry ``k``. For a
            natural-language instruction, pass the rule-based follower's plan:
            ``target=agents.instruction_follower.plan("walk forward, then turn left")``.
        after: past the end of ``target``: ``"still"`` (default: the camera should stay put),
            ``"last"`` (keep the last keys) or ``"zero"`` (reward 0).
        partial: ``True`` (default): the fraction of the four axes that agree (0, 0.25, ..., 1);
            ``False``: 1 when all four agree, else 0.
        thresholds / fov_deg: passed to the estimator.
        observation_space: the env's observation space, to check at construction that it carries
            frames (``obs_mode="frames"``; at least 2 frames per block).

    Works with both worlds and in vector envs (it keeps no state). The last call's estimate is in
    ``last_estimate``.
    """

    def __init__(
        self,
        target=None,
        after: str = "still",
        partial: bool = True,
        thresholds: Mapping[str, float] | None = None,
        fov_deg: float = 80.0,
        observation_space=None,
    ):
        if after not in AFTER:
            raise ValueError(f"after: got {after!r}; accepted: {', '.join(AFTER)}")
        if not isinstance(partial, bool):
            raise TypeError(f"partial: got {type(partial).__name__}; accepted: True or False")
        if target is not None and hasattr(target, "blocks") and hasattr(target, "instruction"):
            target = list(target.blocks)
        if target is not None:
            if isinstance(target, str) or not isinstance(target, Sequence) or len(target) == 0:
                raise ValueError(
                    f"target: got {target!r}; accepted: None, or a non-empty list of 'MOVE LOOK' "
                    "strings, (move, look) pairs, action dicts, or a Task"
                )
            target = [_keys(item, f"target[{i}]") for i, item in enumerate(target)]
        self.target: list[tuple[int, int]] | None = target
        self.after = after
        self.partial = partial
        self.estimator = {"thresholds": thresholds, "fov_deg": fov_deg}
        estimate_block_motion(np.zeros((2, 16, 16, 3), np.uint8), **self.estimator)  # bad settings fail here
        check_observation_space(observation_space, "InstructionFollowingReward", min_frames=2)
        self.last_estimate = None

    def expected(self, action, info: dict) -> tuple[int, int] | None:
        """The ``(move, look)`` this block should show (``None``: past the end with ``after="zero"``)."""
        if self.target is None:
            return _keys(action, "action")
        k = int(info.get("block_index", 1)) - 1 if isinstance(info, Mapping) else 0
        if k < len(self.target):
            return self.target[max(k, 0)]
        if self.after == "last":
            return self.target[-1]
        if self.after == "still":
            return 0, 0
        return None

    def __call__(self, obs, action, info) -> float:
        frames = frames_from(obs, "InstructionFollowingReward", min_frames=2)
        want = self.expected(action, info)
        if want is None:
            return 0.0
        est = estimate_block_motion(frames, **self.estimator)
        self.last_estimate = est
        agree = axis_agreement(est, *want)
        if self.partial:
            return float(sum(agree.values()) / len(AXES))
        return float(all(agree.values()))
