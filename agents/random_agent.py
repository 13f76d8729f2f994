"""``RandomPolicy``: uniformly random moves and looks, optionally random events from a catalog; seeded."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from yume_env.actions import LOOKS, MOVES, look_index, move_index
from yume_env.envs.validation import check_event


def _subset(values, name: str, labels: tuple[str, ...], by_name) -> tuple[int, ...]:
    if values is None:
        return tuple(range(len(labels)))
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TypeError(
            f"{name}: got {type(values).__name__}; accepted: a list of indices 0..{len(labels) - 1} "
            f"or names ({', '.join(labels)}), or None for all"
        )
    out: list[int] = []
    for v in values:
        if isinstance(v, str):
            out.append(by_name(v))
        elif isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 <= int(v) < len(labels):
            out.append(int(v))
        else:
            raise ValueError(
                f"{name}: got {v!r}; accepted: indices 0..{len(labels) - 1} or names ({', '.join(labels)})"
            )
    if not out:
        raise ValueError(f"{name}: got an empty list; accepted: at least one entry, or None for all")
    return tuple(out)


class RandomPolicy:
    """Picks ``move`` and ``look`` uniformly at random each block; ignores observations and instructions.

    Args:
        seed: seed of the policy's own generator (``None``: fresh entropy). ``reset(seed=s)`` reseeds.
        moves / looks: the move and look indices (or names such as ``"W+A"``, ``"→"``) to choose
            from; ``None`` means all nine.
        events: event texts the policy may trigger; each block it sends one of them with probability
            ``event_probability`` (chosen uniformly), otherwise ``""`` (keep the current event).
        event_probability: 0..1 (default 0: never change the event).

    The same seed gives the same sequence of actions.
    """

    name = "random"

    def __init__(
        self,
        seed: int | None = None,
        moves: Sequence[int | str] | None = None,
        looks: Sequence[int | str] | None = None,
        events: Sequence[str] = (),
        event_probability: float = 0.0,
    ):
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
        ):
            raise ValueError(f"seed: got {seed!r}; accepted: an integer >= 0 or None")
        self.moves = _subset(moves, "moves", MOVES, move_index)
        self.looks = _subset(looks, "looks", LOOKS, look_index)
        if isinstance(events, str) or not isinstance(events, Sequence):
            raise TypeError(f"events: got {type(events).__name__}; accepted: a list of event strings")
        self.events = tuple(check_event(e, f"events[{i}]") for i, e in enumerate(events))
        if any(not e.strip() for e in self.events):
            raise ValueError("events: got an empty or blank entry; accepted: non-empty event texts")
        if (
            isinstance(event_probability, bool)
            or not isinstance(event_probability, int | float)
            or not 0.0 <= event_probability <= 1.0
        ):
            raise ValueError(f"event_probability: got {event_probability!r}; accepted: a number in 0..1")
        if event_probability > 0 and not self.events:
            raise ValueError("event_probability: got > 0 with no events; pass events=[...] as well")
        self.event_probability = float(event_probability)
        self._rng = np.random.default_rng(seed)

    def reset(self, instruction: str = "", seed: int | None = None) -> None:
        """Start an episode; the instruction is ignored. ``seed`` reseeds the policy's generator."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
                raise ValueError(f"seed: got {seed!r}; accepted: an integer >= 0 or None")
            self._rng = np.random.default_rng(int(seed))

    def act(self, observation=None, info: dict | None = None) -> dict:
        move = self.moves[int(self._rng.integers(len(self.moves)))]
        look = self.looks[int(self._rng.integers(len(self.looks)))]
        event = ""
        if self.event_probability > 0 and self._rng.random() < self.event_probability:
            event = self.events[int(self._rng.integers(len(self.events)))]
        return {"move": move, "look": look, "event": event}
