"""Event catalogs: a fixed, ordered list of event texts that discrete actions index into.

Algorithms with discrete action spaces cannot type free text, so they pick an event from a catalog:
index ``0`` sends ``""`` (keep the current event) and index ``i >= 1`` sends ``texts[i - 1]``.
:class:`EventCatalog` is that mapping, with its Gymnasium space; the SB3 wrappers
(:class:`~yume_env.envs.wrappers.DiscreteActions`), the PettingZoo envs and the action space's
sampler all use it, so an index means the same event everywhere.

:data:`PROCEDURAL_EVENTS` is the default catalog: the events the procedural world shows
(:data:`yume_env.procedural.events.CATALOG`), in its order, as sentences:

=====  ========================
index  text
=====  ========================
0      ``""`` (keep the current event)
1      The weather clears.
2      The sun sets.
3      The lights go out.
4      Night falls.
5      Fog rolls in.
6      It starts to rain.
7      It starts to snow.
8      The balloon pops.
9      A red balloon appears.
=====  ========================

(This module sits beside :mod:`yume_env.actions`, above ``procedural/``: neither ``actions`` nor
``world/`` imports it, so the world layer stays free of the procedural world.)
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence

from gymnasium import spaces

from yume_env.actions import check_event
from yume_env.procedural.events import CATALOG

__all__ = ["PROCEDURAL_EVENTS", "EventCatalog", "sentence"]


def sentence(text: str) -> str:
    """A catalog phrase as a sentence: ``"the sun sets"`` -> ``"The sun sets."``."""
    return text[:1].upper() + text[1:] + "."


class EventCatalog:
    """An ordered list of distinct event texts; index 0 keeps the current event, ``i`` sends ``texts[i - 1]``.

    Args:
        texts: the events to trigger (printable ASCII, at most 300 characters each, distinct, not
            ``""``: index 0 already keeps the current event). A text of only spaces clears the event.
        names: optional short names of the events (``"rain"``), one per text.
        phrases: optional other spelling of each text (the procedural catalog's lower-case phrases).

    Errors name the entry: ``events[2]: 'a' repeats events[0]; accepted: distinct events``.
    """

    def __init__(
        self,
        texts: Sequence[str],
        names: Sequence[str] | None = None,
        phrases: Sequence[str] | None = None,
    ):
        if isinstance(texts, str | bytes) or not (isinstance(texts, Sequence) or hasattr(texts, "__array__")):
            raise TypeError(
                f"events: got {type(texts).__name__}; accepted: a list of event texts (or None for no catalog)"
            )
        out: list[str] = []
        for i, text in enumerate(texts):
            text = check_event(text, f"events[{i}]")
            if text == "":
                raise ValueError(
                    f"events[{i}]: got an empty string; slot 0 already keeps the current event, "
                    "list only the events to trigger"
                )
            if text in out:
                raise ValueError(
                    f"events[{i}]: {text!r} repeats events[{out.index(text)}]; accepted: distinct events"
                )
            out.append(text)
        self.texts: tuple[str, ...] = tuple(out)
        self.names: tuple[str, ...] | None = None if names is None else tuple(names)
        self.phrases: tuple[str, ...] = self.texts if phrases is None else tuple(phrases)
        for label, values in (("names", self.names), ("phrases", self.phrases)):
            if values is not None and len(values) != len(self.texts):
                raise ValueError(f"{label}: got {len(values)}; accepted: one per event ({len(self.texts)})")
        self._index = {text: i + 1 for i, text in enumerate(self.texts)}

    @classmethod
    def procedural(cls) -> EventCatalog:
        """The events of the procedural world, in its catalog order, as sentences (see the module doc)."""
        return cls(
            [sentence(e.text) for e in CATALOG],
            names=[e.name for e in CATALOG],
            phrases=[e.text for e in CATALOG],
        )

    # -- mapping
    @property
    def space(self) -> spaces.Discrete:
        """``Discrete(1 + len(self))``: 0 keeps the current event, ``i`` sends ``texts[i - 1]``."""
        return spaces.Discrete(1 + len(self.texts))

    def encode(self, text: str, name: str = "event") -> int:
        """The index of ``text``: 0 for ``""``, ``i`` for ``texts[i - 1]`` (``ValueError`` otherwise)."""
        text = check_event(text, name)
        if text == "":
            return 0
        if text not in self._index:
            raise ValueError(
                f"{name}: got {text!r}, which is not in the catalog; accepted: '' "
                f"(keep the current event) or one of {list(self.texts)}"
            )
        return self._index[text]

    def decode(self, index, name: str = "event") -> str:
        """The text of ``index`` (an int, numpy integer or 0-d array): ``""`` for 0, ``texts[index - 1]``.

        ``TypeError`` for a non-integer, ``ValueError`` outside ``0..len(self)``.
        """
        if getattr(index, "shape", None) == () and callable(getattr(index, "item", None)):
            index = index.item()
        accepted = f"an integer 0..{len(self.texts)} (0 keeps the current event, i sends events[i - 1])"
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{name}: got {index!r} ({type(index).__name__}); accepted: {accepted}")
        if not 0 <= int(index) <= len(self.texts):
            raise ValueError(f"{name}: got {int(index)}; accepted: 0..{len(self.texts)}")
        return "" if int(index) == 0 else self.texts[int(index) - 1]

    # -- container
    def __len__(self) -> int:
        return len(self.texts)

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)

    def __contains__(self, text) -> bool:
        return text in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, EventCatalog) and other.texts == self.texts

    def __hash__(self) -> int:
        return hash(self.texts)

    def __repr__(self) -> str:
        return f"EventCatalog({list(self.texts)!r})"


#: The procedural world's events as sentences (index ``i + 1`` sends ``PROCEDURAL_EVENTS.texts[i]``).
PROCEDURAL_EVENTS: EventCatalog = EventCatalog.procedural()
