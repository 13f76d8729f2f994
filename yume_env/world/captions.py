"""Rendering actions and event text into the Yume-1.5 caption, byte-exact.

The official 1.5-style caption (``caption_re.txt``, used by ``sample_5b.py``) is::

    First-person perspective. <move sentence> <rotation sentence> Actual distance moved:<d> at 100 meters per second. Angular change rate (turn speed):<a>. View rotation speed:<r>.<event text>

The event text is appended with no separator, exactly as the official loop concatenates
``line.rstrip('\\n') + response``. The speed fields are optional (the official README allows leaving
them out); their official values are ``d=4, a=0, r=0`` while translating and ``d=0, a=4, r=4`` while the
camera turns (even when a movement key is also held), which :func:`default_speed` reproduces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from yume_env.actions import LOOK_PHRASES, LOOKS, MOVE_PHRASES, MOVES, STILL

PREFIX = "First-person perspective."


@dataclass(frozen=True)
class SpeedFields:
    """The three speed fields of a 1.5 caption (the README suggests values in [0.1, 10])."""

    distance: float = 4.0
    turn: float = 0.0
    rotation: float = 0.0

    def __post_init__(self):
        for name in ("distance", "turn", "rotation"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"speed.{name}: got {v!r}; accepted: a finite number >= 0")

    def render(self) -> str:
        return (
            f"Actual distance moved:{_number(self.distance)} at 100 meters per second. "
            f"Angular change rate (turn speed):{_number(self.turn)}. "
            f"View rotation speed:{_number(self.rotation)}."
        )


def _number(v: float) -> str:
    """Integers as the official files write them ('4'), other values in short form ('4.37')."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def default_speed(move: int, look: int) -> SpeedFields:
    """Official speed values: turning ``(0, 4, 4)``, translating only ``(4, 0, 0)``, standing still ``(0, 0, 0)``."""
    if LOOKS[look] != STILL:
        return SpeedFields(0, 4, 4)
    if MOVES[move] != "None":
        return SpeedFields(4, 0, 0)
    return SpeedFields(0, 0, 0)


def render_caption(
    move: int,
    look: int,
    event: str = "",
    speed: SpeedFields | None | str = "auto",
) -> str:
    """The caption for one block.

    Args:
        move: index into :data:`yume_env.actions.MOVES`.
        look: index into :data:`yume_env.actions.LOOKS`.
        event: world-event text appended as is (may be empty).
        speed: ``"auto"`` for :func:`default_speed`, a :class:`SpeedFields`, or ``None`` to leave the
            speed sentence out.
    """
    if not 0 <= move < len(MOVES):
        raise ValueError(f"move: got {move!r}; accepted: 0..{len(MOVES) - 1} ({', '.join(MOVES)})")
    if not 0 <= look < len(LOOKS):
        raise ValueError(f"look: got {look!r}; accepted: 0..{len(LOOKS) - 1} ({', '.join(LOOKS)})")
    parts = [PREFIX, MOVE_PHRASES[MOVES[move]], LOOK_PHRASES[LOOKS[look]]]
    if speed == "auto":
        speed = default_speed(move, look)
    if speed is not None:
        if not isinstance(speed, SpeedFields):
            raise ValueError(f"speed: got {speed!r}; accepted: 'auto', None or a SpeedFields")
        parts.append(speed.render())
    return " ".join(parts) + event
