"""Action scripts: one block per line, ``MOVE LOOK [event text]``.

::

    # a walk down the street
    W       .        A red balloon floats up.
    W+D     right
    None    up+left  It starts to rain.
    S       ↓←

``MOVE`` is one of ``None W A S D W+A W+D S+A S+D`` (``-`` also means None). ``LOOK`` is one of
``· → ← ↑ ↓ ↑→ ↑← ↓→ ↓←`` or the ASCII names ``. right left up down up+right up+left down+right
down+left`` (``-`` and ``still`` also mean ·). Everything after the look is the event text (empty keeps
the current event). ``#`` starts a comment line; blank lines are ignored. A byte-order mark at the
start of the file is ignored.

Repeats: a line may start with ``xN`` (``x3 W right It rains.``: the block three times). A line
without event text may also end with ``xN`` (``W right x3``). A trailing ``xN`` after event text is
refused as ambiguous (``W . The score is x3`` could be an event or a repeat): write ``x3 W . The score
is`` to repeat, or ``x1 W . The score is x3`` for that event text (after a leading ``xN`` the rest of
the line is always the event).

Quoted events: event text in double quotes is the text between them, taken as it is. It writes what
plain text cannot: ``W . "   "`` (spaces: clear the current event) and ``W . "Cars pass x2"`` (a
trailing ``x2`` that is part of the event). :meth:`ScriptStep.as_line` quotes exactly when needed,
so every step, written and read back, is the same step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from yume_env.actions import (
    LOOK_NAMES,
    LOOKS,
    MOVES,
    Action,
    check_event,
    look_name,
    look_of_name,
    move_of_name,
)

_REPEAT = re.compile(r"\s+x(\d+)\s*$")
_LEADING_REPEAT = re.compile(r"^x(\d+)\s+")


def _quoted(text: str) -> bool:
    return len(text) >= 2 and text[0] == text[-1] == '"'


class ScriptError(ValueError):
    """A line of an action script that cannot be read (the message names the line)."""


@dataclass(frozen=True)
class ScriptStep:
    """One line of a script as key combos: ``move`` (``"W+A"``), ``look`` (``"→"``) and ``event`` text.

    The names are checked and stored in their canonical spelling (``ScriptStep("w", "right")`` has
    ``move == "W"`` and ``look == "→"``); :attr:`action` is the :class:`~yume_env.actions.Action`.
    """

    move: str
    look: str
    event: str = ""

    def __post_init__(self):
        action = Action.from_keys(self.move, self.look, self.event)
        object.__setattr__(self, "move", MOVES[action.move])
        object.__setattr__(self, "look", LOOKS[action.look])
        object.__setattr__(self, "event", action.event)

    @classmethod
    def from_action(cls, action) -> ScriptStep:
        """The step of an :class:`~yume_env.actions.Action` (or anything :meth:`Action.parse` takes)."""
        a = Action.parse(action)
        return cls(MOVES[a.move], LOOKS[a.look], a.event)

    @property
    def action(self) -> Action:
        """This step as an :class:`~yume_env.actions.Action`."""
        return Action.from_keys(self.move, self.look, self.event)

    def as_action(self) -> dict:
        """The Gymnasium action dict ``{"move", "look", "event"}`` of this step."""
        return self.action.as_dict()

    def as_line(self) -> str:
        """This step as a script line that :func:`parse_script` reads back as the same step (the event
        in double quotes when plain text would read otherwise: only spaces, a trailing ``xN``, quotes)."""
        event = self.event
        if event and (event != event.strip() or _REPEAT.search(f" {event}") or _quoted(event)):
            event = f'"{event}"'
        return f"{self.move} {look_name(LOOKS.index(self.look))} {event}".rstrip()

    def describe(self) -> str:
        """ASCII summary such as ``W up+right A red balloon appears.`` (arrows spelled out)."""
        return f"{self.move} {look_name(LOOKS.index(self.look))} {self.event}".strip()


def parse_script(text: str) -> list[ScriptStep]:
    """The steps of an action script (``ScriptError`` naming the line for anything unreadable)."""
    steps: list[ScriptStep] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        repeat = None
        lead = _LEADING_REPEAT.match(line)
        if lead:
            repeat = int(lead.group(1))
            line = line[lead.end() :]
        elif m := _REPEAT.search(line):
            if len(line[: m.start()].split(maxsplit=2)) > 2:
                raise ScriptError(
                    f"line {number}: {raw.strip()!r} ends with 'x{m.group(1)}' after event text, which is "
                    f"ambiguous; accepted: 'x{m.group(1)} MOVE LOOK event' to repeat the block, or "
                    f"'x1 MOVE LOOK event' to keep 'x{m.group(1)}' in the event text"
                )
            repeat = int(m.group(1))
            line = line[: m.start()]
        if repeat is None:
            repeat = 1
        elif not 1 <= repeat <= 1000:
            raise ScriptError(f"line {number}: repeat x{repeat}; accepted: x1..x1000")
        parts = line.split(maxsplit=2)
        if len(parts) < 2:
            raise ScriptError(f"line {number}: {raw.strip()!r}; accepted: 'MOVE LOOK [event text]'")
        try:
            move = move_of_name(parts[0])
        except ValueError:
            raise ScriptError(f"line {number}: move {parts[0]!r}; accepted: {', '.join(MOVES)}") from None
        try:
            look = look_of_name(parts[1])
        except ValueError:
            raise ScriptError(
                f"line {number}: look {parts[1]!r}; accepted: {', '.join(LOOKS)} or {', '.join(LOOK_NAMES)}"
            ) from None
        event = parts[2] if len(parts) > 2 else ""
        if _quoted(event):
            event = event[1:-1]  # a quoted event is taken as it is (spaces, a trailing xN)
        try:
            event = check_event(event, "event text")
        except ValueError as exc:
            raise ScriptError(f"line {number}: {exc}") from None
        steps.extend([ScriptStep(MOVES[move], LOOKS[look], event)] * repeat)
    if not steps:
        raise ScriptError("the script has no steps")
    return steps


#: The scripted tour of ``yume-world demo``. One block of each kind of action, then an event the tiny world shows on every held-out seed
# (docs/tiny-world.md): forward, pan right and back, strafe left and right, tilt up and back.
DEMO_TOUR: list[ScriptStep] = parse_script(
    """
    W     .
    None  right
    None  left
    A     .
    D     .
    None  up
    None  down
    None  .      The lights go out.
    """
)
