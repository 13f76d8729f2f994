"""Yume's action vocabulary: movement keys, camera moves, and the phrases the 1.5 model was trained on.

These are public constants so that every part of the project (the generated world, the procedural
ground-truth world, agents, evaluation) agrees on what an action index means.

- ``MOVES[i]`` is the key combo of movement index ``i`` (``Discrete(9)``).
- ``LOOKS[j]`` is the arrow combo of camera index ``j`` (``Discrete(9)``).
- ``MOVE_PHRASES`` / ``LOOK_PHRASES`` map each combo to the Yume-1.5 caption sentence, byte-exact
  (the arrows are U+2190..U+2193 and the "still" mark is U+00B7 MIDDLE DOT, as in the official text).
"""

from __future__ import annotations

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
