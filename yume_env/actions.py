"""Yume's action vocabulary: movement keys, camera moves, and the phrases the 1.5 model was trained on.

These are public constants so that every part of the project (the generated world, the procedural
ground-truth world, agents, evaluation) agrees on what an action index means.

- ``MOVES[i]`` is the key combo of movement index ``i`` (``Discrete(9)``).
- ``LOOKS[j]`` is the arrow combo of camera index ``j`` (``Discrete(9)``).
- ``MOVE_PHRASES`` / ``LOOK_PHRASES`` map each combo to the Yume-1.5 caption sentence, byte-exact
  (the arrows are U+2190..U+2193 and the "still" mark is U+00B7 MIDDLE DOT, as in the official text).
- :class:`Action` is the one action type: ``Action(move, look, event)`` for one block of one world,
  checked when it is built. Every other shape users pass (a Gymnasium dict, a ``(move, look[, event])``
  tuple, key-combo names such as ``"W+A"`` and ``"→"``) becomes one with :meth:`Action.parse` or
  :meth:`Action.from_keys`; :meth:`Action.as_dict` is the Gymnasium form.

This module imports nothing of the project (like :mod:`yume_env.paths`), so every layer may use it:
``world/`` steps worlds with :class:`Action` (``yume_env.world.stream.Action`` is the same class).
Event catalogs for discrete actions are in :mod:`yume_env.events`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

STILL: Final = "\u00b7"  # "·", U+00B7 MIDDLE DOT
RIGHT: Final = "\u2192"  # "→"
LEFT: Final = "\u2190"  # "←"
UP: Final = "\u2191"  # "↑"
DOWN: Final = "\u2193"  # "↓"

#: Movement key combos, in action-index order. ``None`` means no key is held.
MOVES: Final[tuple[str, ...]] = ("None", "W", "A", "S", "D", "W+A", "W+D", "S+A", "S+D")

#: Camera moves, in action-index order. The vertical arrow always comes first in a combo.
LOOKS: Final[tuple[str, ...]] = (
    STILL,
    RIGHT,
    LEFT,
    UP,
    DOWN,
    UP + RIGHT,
    UP + LEFT,
    DOWN + RIGHT,
    DOWN + LEFT,
)

#: Yume-1.5 movement sentences (the official webapp's vocabulary).
MOVE_PHRASES: Final[dict[str, str]] = {
    "W": "The camera pushes forward (W).",
    "A": "The camera moves to the left (A).",
    "S": "The camera pulls back (S).",
    "D": "The camera moves to the right (D).",
    "W+A": "The camera pushes forward and moves to the left (W+A).",
    "W+D": "The camera pushes forward and moves to the right (W+D).",
    "S+D": "The camera pulls back and moves to the right (S+D).",
    "S+A": "The camera pulls back and moves to the left (S+A).",
    "None": f"The camera's movement direction remains stationary ({STILL}).",
}

#: Yume-1.5 rotation sentences.
LOOK_PHRASES: Final[dict[str, str]] = {
    RIGHT: f"The camera pans to the right ({RIGHT}).",
    LEFT: f"The camera pans to the left ({LEFT}).",
    UP: f"The camera tilts up ({UP}).",
    DOWN: f"The camera tilts down ({DOWN}).",
    UP + RIGHT: f"The camera tilts up and pans to the right ({UP}{RIGHT}).",
    UP + LEFT: f"The camera tilts up and pans to the left ({UP}{LEFT}).",
    DOWN + RIGHT: f"The camera tilts down and pans to the right ({DOWN}{RIGHT}).",
    DOWN + LEFT: f"The camera tilts down and pans to the left ({DOWN}{LEFT}).",
    STILL: f"The rotation direction of the camera remains stationary ({STILL}).",
}

#: Unit motion of each movement index as (forward, right): W = (+1, 0), A = (0, -1), S+D = (-1, +1).
MOVE_VECTORS: Final[tuple[tuple[int, int], ...]] = (
    (0, 0),
    (1, 0),
    (0, -1),
    (-1, 0),
    (0, 1),
    (1, -1),
    (1, 1),
    (-1, -1),
    (-1, 1),
)

#: Unit rotation of each look index as (yaw_right, pitch_up): → = (+1, 0), ↓← = (-1, -1).
LOOK_VECTORS: Final[tuple[tuple[int, int], ...]] = (
    (0, 0),
    (1, 0),
    (-1, 0),
    (0, 1),
    (0, -1),
    (1, 1),
    (-1, 1),
    (1, -1),
    (-1, -1),
)


def move_index(name: str) -> int:
    """Index of a movement combo such as ``"W+A"`` (``ValueError`` naming the accepted set otherwise)."""
    try:
        return MOVES.index(name)
    except ValueError:
        raise ValueError(f"move: got {name!r}; accepted: {', '.join(MOVES)}") from None


def look_index(name: str) -> int:
    """Index of a camera combo such as ``"↑→"`` (``ValueError`` naming the accepted set otherwise)."""
    try:
        return LOOKS.index(name)
    except ValueError:
        raise ValueError(f"look: got {name!r}; accepted: {', '.join(LOOKS)}") from None


#: Characters accepted in event text: printable ASCII, including space and punctuation.
EVENT_CHARSET: Final[str] = "".join(chr(c) for c in range(32, 127))

#: Longest accepted event text, in characters (the whole caption must fit the 512-token text window).
EVENT_MAX_LENGTH: Final[int] = 300

#: ASCII names of the camera moves (as action scripts write them), besides the arrow symbols.
LOOK_NAMES: Final[dict[str, str]] = {
    ".": STILL,
    "-": STILL,
    "still": STILL,
    "right": RIGHT,
    "left": LEFT,
    "up": UP,
    "down": DOWN,
    "up+right": UP + RIGHT,
    "up+left": UP + LEFT,
    "down+right": DOWN + RIGHT,
    "down+left": DOWN + LEFT,
}

_CHARSET = frozenset(EVENT_CHARSET)


def move_of_name(name: str) -> int:
    """Index of a movement combo written by hand: ``"W+A"``, ``"w+a"``, ``"None"``/``"none"`` or ``"-"``.

    ``ValueError`` (``move: got ...; accepted: ...``) for anything else.
    """
    if isinstance(name, str):
        key = "None" if name.strip().lower() in ("none", "-") else name.strip().upper()
        if key in MOVES:
            return MOVES.index(key)
    raise ValueError(f"move: got {name!r}; accepted: {', '.join(MOVES)} (or '-' for None)")


def look_of_name(name: str) -> int:
    """Index of a camera combo written by hand: an arrow combo (``"↑→"``) or its ASCII name (``"up+right"``).

    ``ValueError`` (``look: got ...; accepted: ...``) for anything else.
    """
    if isinstance(name, str):
        key = LOOK_NAMES.get(name.strip().lower(), name.strip())
        if key in LOOKS:
            return LOOKS.index(key)
    raise ValueError(f"look: got {name!r}; accepted: {', '.join(LOOKS)} or {', '.join(LOOK_NAMES)}")


def look_name(look: int) -> str:
    """The ASCII name of camera index ``look`` (``"still"``, ``"right"``, ``"up+left"``, ...)."""
    symbol = LOOKS[look]
    return next(name for name, sym in LOOK_NAMES.items() if sym == symbol and name not in (".", "-"))


def check_event(value, name: str = "action['event']") -> str:
    """Event text: printable ASCII (incl. space and punctuation), at most :data:`EVENT_MAX_LENGTH` characters.

    ``""`` keeps the current event. A numpy string is returned as ``str``. ``TypeError`` /
    ``ValueError`` messages start with ``name``.
    """
    if isinstance(value, str) and type(value) is not str:
        value = str(value)  # numpy.str_ and other str subclasses
    if not isinstance(value, str):
        raise TypeError(f"{name}: got {type(value).__name__}; accepted: str (empty keeps the current event)")
    if len(value) > EVENT_MAX_LENGTH:
        raise ValueError(f"{name}: got {len(value)} characters; accepted: at most {EVENT_MAX_LENGTH}")
    bad = sorted({c for c in value if c not in _CHARSET})
    if bad:
        raise ValueError(f"{name}: got characters {bad!r}; accepted: printable ASCII (space to '~')")
    return value


def _index(name: str, value, labels: tuple[str, ...]) -> int:
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        value = value.item()  # a 0-d numpy array
    size = len(labels)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"action[{name!r}]: got {value!r} ({type(value).__name__}); accepted: an integer 0..{size - 1}"
        )
    if not 0 <= int(value) < size:
        raise ValueError(f"action[{name!r}]: got {int(value)}; accepted: 0..{size - 1} ({', '.join(labels)})")
    return int(value)


_ACCEPTED = (
    "an Action, a dict with 'move' (0..8), 'look' (0..8) and optional 'event' (str), "
    "or a (move, look[, event]) tuple"
)


@dataclass(frozen=True)
class Action:
    """One block's action for one world: ``move`` (0..8, see :data:`MOVES`), ``look`` (0..8, see
    :data:`LOOKS`) and ``event`` text (``""`` keeps the current event; only spaces clear it).

    Checked when built: a bad field raises ``TypeError``/``ValueError`` naming it
    (``action['move']: got 9; accepted: 0..8 ...``). Numpy integers and strings are stored as plain
    ``int``/``str``, so actions compare and hash by value (usable as dict keys).

    Build one from what users pass with :meth:`parse` (dict, ``Action``, tuple) or :meth:`from_keys`
    (key-combo names); :meth:`as_dict` gives the Gymnasium action dict.
    """

    move: int = 0
    look: int = 0
    event: str = ""

    def __post_init__(self):
        object.__setattr__(self, "move", _index("move", self.move, MOVES))
        object.__setattr__(self, "look", _index("look", self.look, LOOKS))
        object.__setattr__(self, "event", check_event(self.event))

    @classmethod
    def parse(cls, action) -> Action:
        """An :class:`Action` from any accepted shape.

        - an ``Action`` (returned as is);
        - a Gymnasium dict ``{"move", "look", "event"}`` (``event`` optional, default ``""``);
        - a tuple or list ``(move, look)`` or ``(move, look, event)``.

        Anything else raises ``TypeError``; unknown or missing dict keys raise ``ValueError``.
        """
        if isinstance(action, Action):
            return action
        if isinstance(action, Mapping):
            unknown = set(action) - {"move", "look", "event"}
            if unknown:
                shown = sorted(map(str, unknown))
                raise ValueError(f"action: got unknown keys {shown}; accepted: 'move', 'look', 'event'")
            for key in ("move", "look"):
                if key not in action:
                    raise ValueError(
                        f"action: missing key {key!r}; accepted: a dict with 'move', 'look' and optional 'event'"
                    )
            return cls(action["move"], action["look"], action.get("event", ""))
        if isinstance(action, tuple | list):
            if len(action) not in (2, 3):
                raise ValueError(
                    f"action: got a {type(action).__name__} of {len(action)} items; accepted: {_ACCEPTED}"
                )
            return cls(*action)
        raise TypeError(f"action: got {type(action).__name__}; accepted: {_ACCEPTED}")

    @classmethod
    def from_keys(cls, move: str = "None", look: str = STILL, event: str = "") -> Action:
        """An :class:`Action` from key-combo names, as scripts and the play page write them.

        ``move``: ``"None"`` (or ``"-"``), ``"W"``, ``"W+A"``, ... in either case; ``look``: an arrow
        combo (``"·"``, ``"→"``, ``"↑←"``) or its ASCII name (``"."``, ``"right"``, ``"up+left"``).
        """
        return cls(move_of_name(move), look_of_name(look), event)

    def as_dict(self) -> dict:
        """The Gymnasium action dict ``{"move": int, "look": int, "event": str}``."""
        return {"move": self.move, "look": self.look, "event": self.event}

    def as_tuple(self) -> tuple[int, int, str]:
        """``(move, look, event)``."""
        return self.move, self.look, self.event

    @property
    def combo(self) -> tuple[str, str]:
        """``(MOVES[move], LOOKS[look])``: the key combos, e.g. ``("W+A", "→")``."""
        return MOVES[self.move], LOOKS[self.look]
