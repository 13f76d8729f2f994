"""The page's messages over the WebSocket, checked before anything touches a world.

Client -> server (JSON text messages)::

    {"type": "reset", "seed": 0, "image": "data:image/png;base64,..."}   image optional (generated worlds)
    {"type": "step", "keys": ["w", "ArrowRight"], "event": "It starts to rain."}   event optional
    {"type": "fork"}                                  snapshot the world now
    {"type": "rewind", "snapshot": 1}                 back to a snapshot
    {"type": "record", "on": true}                    start / stop (and save) a recording

Server -> client: JSON ``hello``, ``block`` (caption, timings, pose...; followed by ``frames``
binary messages, one PNG per frame, in order), ``forked``, ``rewound``, ``recording``, ``saved``
and ``error`` (``message`` says what was wrong and what is accepted; the world is unchanged).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from yume_env.actions import Action, check_event
from yume_env.play.keys import action_of_keys

MAX_MESSAGE_BYTES = 16 * 2**20  # a start image upload fits; anything larger is refused by the socket
MAX_IMAGE_BYTES = 12 * 2**20
MAX_SEED = 2**31 - 1


class ProtocolError(ValueError):
    """A message the server refuses (the text goes to the page as is)."""


@dataclass(frozen=True)
class Reset:
    seed: int
    image: bytes | None  # the uploaded file's bytes (PNG, JPEG, ...)


@dataclass(frozen=True)
class Step:
    move: int
    look: int
    event: str
    keys: tuple[str, ...]

    @property
    def action(self) -> Action:
        """The block's :class:`~yume_env.actions.Action`."""
        return Action(self.move, self.look, self.event)


@dataclass(frozen=True)
class Fork:
    pass


@dataclass(frozen=True)
class Rewind:
    snapshot: int


@dataclass(frozen=True)
class Record:
    on: bool


Message = Reset | Step | Fork | Rewind | Record
_FIELDS = {
    "reset": {"seed", "image"},
    "step": {"keys", "event"},
    "fork": set(),
    "rewind": {"snapshot"},
    "record": {"on"},
}


def _int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"{name}: got {json.dumps(value)[:40]}; accepted: an integer {lo}..{hi}")
    return value


def _image(value) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("data:image/") or ";base64," not in value:
        raise ProtocolError(
            "image: got something other than an image data URL; accepted: data:image/...;base64,..."
        )
    try:
        data = base64.b64decode(value.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("image: the data URL is not valid base64") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ProtocolError(f"image: got {len(data)} bytes; accepted: at most {MAX_IMAGE_BYTES}")
    return data


def parse_message(text: str) -> Message:
    """The message in ``text``, or :class:`ProtocolError` naming what is wrong and what is accepted."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError(
            f"message: not valid JSON ({text[:40]!r}); accepted: a JSON object with 'type'"
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"message: got a JSON {type(data).__name__}; accepted: an object with 'type'")
    kind = data.get("type")
    if kind not in _FIELDS:
        shown = json.dumps(kind)[:40]
        raise ProtocolError(f"type: got {shown}; accepted: {', '.join(_FIELDS)}")
    unknown = set(data) - _FIELDS[kind] - {"type"}
    if unknown:
        shown = ", ".join(sorted(repr(k[:20]) for k in unknown)[:5])
        raise ProtocolError(
            f"{kind}: got unknown fields {shown}; accepted: {sorted(_FIELDS[kind]) or 'none'}"
        )
    if kind == "reset":
        return Reset(_int("seed", data.get("seed", 0), 0, MAX_SEED), _image(data.get("image")))
    if kind == "step":
        keys = data.get("keys", [])
        try:
            action = Action(*action_of_keys(keys), check_event(data.get("event", ""), "event"))
        except (ValueError, TypeError) as exc:
            raise ProtocolError(str(exc)) from None
        return Step(action.move, action.look, action.event, tuple(str(k) for k in keys))
    if kind == "fork":
        return Fork()
    if kind == "rewind":
        return Rewind(_int("snapshot", data.get("snapshot"), 1, 2**31))
    on = data.get("on")
    if not isinstance(on, bool):
        raise ProtocolError(f"record: 'on' got {json.dumps(on)[:40]}; accepted: true or false")
    return Record(on)
