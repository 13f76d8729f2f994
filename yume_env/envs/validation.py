"""Checking actions from users: clear errors naming the field, the value and what is accepted."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
from gymnasium.vector import AutoresetMode

from yume_env.actions import Action, check_event

__all__ = [
    "Action",
    "RewardFunctionError",
    "call_reward",
    "check_episode_args",
    "check_event",
    "check_options",
    "check_vector_args",
    "parse_action",
    "parse_batched_actions",
]


def check_options(options, accepted: tuple[str, ...]) -> dict:
    """``reset(options=...)``: ``None`` or a dict (copied) whose keys are among ``accepted``;
    ``TypeError`` naming ``options`` for another type, ``ValueError`` naming the unknown keys."""
    if options is None:
        return {}
    names = ", ".join(repr(k) for k in accepted)
    if not isinstance(options, Mapping):
        raise TypeError(
            f"options: got {options!r} ({type(options).__name__}); accepted: None or a dict with keys {names}"
        )
    unknown = set(options) - set(accepted)
    if unknown:
        raise ValueError(f"options: got unknown keys {sorted(map(str, unknown))}; accepted: {names}")
    return dict(options)


def parse_action(action) -> Action:
    """A Gymnasium action dict ``{"move", "look", "event"}`` (``event`` optional) or an :class:`Action`,
    as an :class:`Action` (see :meth:`Action.parse`; environments take these two shapes only)."""
    if not isinstance(action, Mapping | Action):
        raise TypeError(
            f"action: got {type(action).__name__}; accepted: a dict with 'move' (0..8), 'look' (0..8) and optional 'event' (str)"
        )
    return Action.parse(action)


def check_episode_args(
    render_mode, max_episode_steps, reward_fn, render_modes: tuple[str, ...] = ("rgb_array",)
) -> None:
    """The constructor arguments every Yume environment shares (``render_modes``: those it accepts)."""
    if render_mode is not None and render_mode not in render_modes:
        accepted = ", ".join(["None", *(repr(m) for m in render_modes)])
        raise ValueError(f"render_mode: got {render_mode!r}; accepted: {accepted}")
    if max_episode_steps is not None and (
        isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1
    ):
        raise ValueError(f"max_episode_steps: got {max_episode_steps!r}; accepted: an integer >= 1 or None")
    if reward_fn is not None and not callable(reward_fn):
        raise TypeError(
            f"reward_fn: got {type(reward_fn).__name__}; accepted: a callable (obs, action, info) -> float"
        )


class RewardFunctionError(RuntimeError):
    """``reward_fn`` raised; the step was undone (the world is as it was before the step)."""


def call_reward(reward_fn, obs, action, info) -> float:
    """``reward_fn(obs, action, info)`` checked to be a finite real number.

    Raises :class:`RewardFunctionError` (the original error chained) when it raises, ``TypeError``
    when it returns something that is not a real number, ``ValueError`` for NaN/Inf. The callers
    undo the step before re-raising.
    """
    try:
        value = reward_fn(obs, action, info)
    except Exception as exc:
        raise RewardFunctionError(
            f"reward_fn raised {type(exc).__name__}: {exc}; the step was undone (the world is as before it)"
        ) from exc
    if callable(getattr(value, "item", None)) and tuple(getattr(value, "shape", (1,))) == ():
        value = value.item()  # a 0-d numpy array or torch tensor
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"reward_fn: returned {value!r} ({type(value).__name__}); accepted: a float (the step was undone)"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"reward_fn: returned {value}; accepted: a finite float (the step was undone)")
    return value


def parse_batched_actions(actions, num_envs: int) -> list:
    """A vector env's batched action dict checked and split: one parsed action per world.

    ``actions`` is ``{"move": (N,), "look": (N,), "event": N strings}`` (``event`` may be left out:
    every world keeps its event). Messages name the world whose action is wrong.
    """
    if not isinstance(actions, dict):
        raise TypeError(
            f"actions: got {type(actions).__name__}; accepted: a dict of batched 'move', 'look' and 'event' "
            "(see action_space)"
        )
    moves, looks = np.asarray(actions.get("move")), np.asarray(actions.get("look"))
    events = actions.get("event", ("",) * num_envs)
    if moves.shape != (num_envs,) or looks.shape != (num_envs,):
        raise ValueError(
            f"actions: got move shape {moves.shape} and look shape {looks.shape}; accepted: ({num_envs},) each"
        )
    if isinstance(events, str) or len(events) != num_envs:
        raise ValueError(f"actions['event']: got {events!r}; accepted: a tuple of {num_envs} strings")
    parsed = []
    for i in range(num_envs):
        try:
            parsed.append(
                parse_action({"move": moves[i].item(), "look": looks[i].item(), "event": events[i]})
            )
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"world {i}: {exc}") from None
    return parsed


def check_vector_args(num_envs, autoreset_mode) -> tuple[int, AutoresetMode]:
    """A vector env's ``num_envs`` (an integer >= 1) and ``autoreset_mode`` (an ``AutoresetMode`` or
    its value, e.g. ``"next_step"``), checked."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs: got {num_envs!r}; accepted: an integer >= 1")
    modes = {m.value: m for m in AutoresetMode}
    if isinstance(autoreset_mode, str):
        if autoreset_mode not in modes:
            raise ValueError(f"autoreset_mode: got {autoreset_mode!r}; accepted: {', '.join(modes)}")
        autoreset_mode = modes[autoreset_mode]
    if not isinstance(autoreset_mode, AutoresetMode):
        raise ValueError(f"autoreset_mode: got {autoreset_mode!r}; accepted: an AutoresetMode")
    return num_envs, autoreset_mode
