"""``ScriptedPolicy``: replays a fixed key/event script, one block per step.

The script is the ``yume-world record`` format (see :mod:`yume_env.script`)::

    W     .      A red balloon appears.
    W+D   right
    None  up     x2

or a list of :class:`~yume_env.script.ScriptStep` / action dicts. Useful as a baseline, to replay a
recorded session, or to score the world model itself on a fixed action sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from yume_env.actions import Action
from yume_env.script import ScriptError, ScriptStep, parse_script

#: What a :class:`ScriptedPolicy` does once its script is used up.
WHEN_DONE = ("still", "repeat_last", "loop", "raise")

_STILL = {"move": 0, "look": 0, "event": ""}


class ScriptExhausted(RuntimeError):
    """``act`` was called after the last step of a script with ``when_done="raise"``."""


def _steps_from(script) -> list[dict]:
    if isinstance(script, Path):
        if not script.is_file():
            raise FileNotFoundError(f"script: {str(script)!r} is not a file; accepted: a script file")
        script = script.read_text(encoding="utf-8")
    if isinstance(script, str):
        try:
            steps = parse_script(script)
        except ScriptError as exc:
            if "\n" not in script and Path(script).is_file():
                raise ScriptError(
                    f"{exc} (the text names a file: pass pathlib.Path({script!r}) or use "
                    "ScriptedPolicy.from_file to read it)"
                ) from None
            raise
        return [s.as_action() for s in steps]
    if isinstance(script, bytes) or not isinstance(script, Sequence):
        raise TypeError(
            f"script: got {type(script).__name__}; accepted: script text (str), a pathlib.Path, or a list "
            "of ScriptStep / action dicts"
        )
    out = []
    for i, step in enumerate(script):
        if isinstance(step, ScriptStep):
            out.append(step.as_action())
            continue
        if not isinstance(step, Mapping | Action):
            raise TypeError(
                f"script[{i}]: got {type(step).__name__}; accepted: ScriptStep, Action or a dict "
                "with 'move', 'look' and optional 'event'"
            )
        try:
            out.append(Action.parse(step).as_dict())
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"script[{i}]: {exc}") from None
    if not out:
        raise ValueError("script: got no steps; accepted: at least one step")
    return out


class ScriptedPolicy:
    """Replays a script of actions, one per ``act`` call, from the start at every ``reset``.

    Args:
        script: script text (``MOVE LOOK [event]`` per line, see :mod:`yume_env.script`), a
            ``pathlib.Path`` to such a file, or a list of ``ScriptStep`` / ``Action`` / action dicts.
        when_done: after the last step: ``"still"`` (default: stand still, keep the event),
            ``"repeat_last"`` (repeat the last move/look, without re-sending its event), ``"loop"``
            (start over) or ``"raise"`` (:class:`ScriptExhausted`).

    The instruction given to ``reset`` is ignored: the script is the plan.
    """

    name = "scripted"

    def __init__(self, script, when_done: str = "still"):
        if when_done not in WHEN_DONE:
            raise ValueError(f"when_done: got {when_done!r}; accepted: {', '.join(WHEN_DONE)}")
        self.steps: list[dict] = _steps_from(script)
        self.when_done = when_done
        self._t = 0

    @classmethod
    def from_file(cls, path: str | Path, when_done: str = "still") -> ScriptedPolicy:
        """A policy replaying the script file at ``path``."""
        return cls(Path(path), when_done=when_done)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def done(self) -> bool:
        """Whether every step of the script has been played."""
        return self._t >= len(self.steps)

    def reset(self, instruction: str = "", seed: int | None = None) -> None:
        """Rewind to the first step (the instruction and seed are not used)."""
        self._t = 0

    def act(self, observation=None, info: dict | None = None) -> dict:
        t, n = self._t, len(self.steps)
        self._t += 1
        if t < n:
            return dict(self.steps[t])
        if self.when_done == "still":
            return dict(_STILL)
        if self.when_done == "repeat_last":
            return {**self.steps[-1], "event": ""}
        if self.when_done == "loop":
            return dict(self.steps[t % n])
        raise ScriptExhausted(f"the script has {n} steps and all of them were played; call reset()")
