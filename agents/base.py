"""The policy protocol shared by every agent."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Policy(Protocol):
    """Observation (+ instruction) in, Yume action out.

    ``reset`` starts an episode with an optional natural-language instruction (e.g. "walk forward,
    then turn left and look up") and seed; ``act`` returns an action dict
    ``{"move": int, "look": int, "event": str}`` for ``YumeWorld-v0`` / ``YumeProcedural-v0``.
    """

    name: str

    def reset(self, instruction: str = "", seed: int | None = None) -> None: ...

    def act(self, observation: Any, info: dict) -> dict: ...
