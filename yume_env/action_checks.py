"""Checks of one action's parts (movement index, camera index, event text) shared by every layer.

They live beside :mod:`yume_env.actions` (the vocabulary they check) so that the envs, the
procedural world and its batched backend give the same errors: each names the field, the value
given and what is accepted.
"""

from __future__ import annotations

import numpy as np

from yume_env.actions import EVENT_CHARSET, EVENT_MAX_LENGTH, LOOKS, MOVES

_CHARSET = frozenset(EVENT_CHARSET)


def check_action_index(name: str, value, size: int, labels) -> int:
    """``value`` as an index ``0..size-1`` of ``labels`` (a Python or numpy integer, or a 0-d array)."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"action[{name!r}]: got {value!r} ({type(value).__name__}); accepted: an integer 0..{size - 1}"
        )
    if not 0 <= int(value) < size:
        raise ValueError(f"action[{name!r}]: got {int(value)}; accepted: 0..{size - 1} ({', '.join(labels)})")
    return int(value)


def check_move(value) -> int:
    """A movement index (see :data:`yume_env.actions.MOVES`)."""
    return check_action_index("move", value, len(MOVES), MOVES)


def check_look(value) -> int:
    """A camera index (see :data:`yume_env.actions.LOOKS`)."""
    return check_action_index("look", value, len(LOOKS), LOOKS)


def check_event(value, name: str = "action['event']") -> str:
    """Event text: printable ASCII (incl. space and punctuation), at most EVENT_MAX_LENGTH characters."""
    if isinstance(value, np.str_):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError(f"{name}: got {type(value).__name__}; accepted: str (empty keeps the current event)")
    if len(value) > EVENT_MAX_LENGTH:
        raise ValueError(f"{name}: got {len(value)} characters; accepted: at most {EVENT_MAX_LENGTH}")
    bad = sorted({c for c in value if c not in _CHARSET})
    if bad:
        raise ValueError(f"{name}: got characters {bad!r}; accepted: printable ASCII (space to '~')")
    return value
