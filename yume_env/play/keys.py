"""Held keys -> a Yume action: WASD (and combos) move, the arrow keys (and combos) look."""

from __future__ import annotations

from collections.abc import Sequence

from yume_env.actions import DOWN, LEFT, LOOKS, MOVES, RIGHT, STILL, UP

#: Key names as the browser reports them (``KeyboardEvent.key``; letters in either case).
MOVE_KEYS = {"w": "W", "a": "A", "s": "S", "d": "D"}
LOOK_KEYS = {"ArrowUp": UP, "ArrowDown": DOWN, "ArrowLeft": LEFT, "ArrowRight": RIGHT}
ACCEPTED_KEYS = (*MOVE_KEYS, *LOOK_KEYS)
MAX_KEYS = 8


class KeysError(ValueError):
    """Keys that do not make an action (the message says which and what is accepted)."""


def _normalise(key) -> str:
    if not isinstance(key, str):
        raise KeysError(
            f"keys: got {key!r} ({type(key).__name__}); accepted: key names {', '.join(ACCEPTED_KEYS)}"
        )
    if len(key) == 1:
        key = key.lower()
    if key not in MOVE_KEYS and key not in LOOK_KEYS:
        shown = key if len(key) <= 20 else key[:20] + "..."
        raise KeysError(f"keys: got unknown key {shown!r}; accepted: {', '.join(ACCEPTED_KEYS)}")
    return key


def action_of_keys(keys: Sequence[str]) -> tuple[int, int]:
    """``(move, look)`` indices of the held ``keys``, e.g. ``["w", "d", "ArrowUp"]`` -> W+D, ↑.

    Opposite keys held together (W and S, A and D, left and right, up and down) have no Yume
    action and are refused, as are unknown keys and more than :data:`MAX_KEYS` keys.
    """
    if not isinstance(keys, list | tuple):
        raise KeysError(f"keys: got {type(keys).__name__}; accepted: a list of key names")
    if len(keys) > MAX_KEYS:
        raise KeysError(f"keys: got {len(keys)} keys; accepted: at most {MAX_KEYS}")
    held = {_normalise(k) for k in keys}
    ws = [MOVE_KEYS[k] for k in ("w", "s") if k in held]
    ad = [MOVE_KEYS[k] for k in ("a", "d") if k in held]
    ud = [LOOK_KEYS[k] for k in ("ArrowUp", "ArrowDown") if k in held]
    lr = [LOOK_KEYS[k] for k in ("ArrowRight", "ArrowLeft") if k in held]
    for pair, names in ((ws, "W and S"), (ad, "A and D"), (ud, "up and down"), (lr, "left and right")):
        if len(pair) > 1:
            raise KeysError(f"keys: got {names} together (opposite keys); accepted: one of them")
    move = "+".join(ws + ad) or "None"
    look = "".join(ud + lr) or STILL
    return MOVES.index(move), LOOKS.index(look)
