"""Instruction-following tasks: what to say to a policy, and which keys each block should show.

A task suite is a JSON file::

    {
      "format": "yume-env-tasks",
      "version": 1,
      "tasks": [
        {"id": "forward-then-left", "instruction": "Walk forward, then turn left.",
         "seed": 12, "image": "street.png", "blocks": ["W .", "None left"]},
        {"id": "rain", "instruction": "Walk forward while it starts to rain.",
         "seed": 40, "blocks": ["W . It starts to rain."]}
      ]
    }

Fields of a task:

- ``id``: unique name (letters, digits, ``-``, ``_``, ``.``).
- ``instruction``: the natural-language instruction given to the policy (``policy.reset(instruction)``).
- ``blocks``: the expected keys per block, one string each in the action-script format
  ``MOVE LOOK [event]`` (see :mod:`yume_env.script`: ``W .``, ``None left``, ``S+D down+right``);
  the episode lasts one step per block, and block ``k`` is scored against ``blocks[k]``.
  An event in a block is what that block should send (the optional event of the task).
- ``seed``: the procedural world's scene seed (``YumeProcedural-v0`` starts there); required.
- ``image``: optional start image for generated worlds (``YumeWorld-v0``): a path relative to the
  suite file, or the name of a bundled sample (``street.png``, ``park.png``, ``plaza.png``).
  Without one, a generated world starts from the procedural world's first frame of ``seed``.
- ``tags``: optional list of words for grouping (``"move"``, ``"look"``, ``"sequence"``, ...).

:func:`default_tasks` is the suite shipped with the package (``default_tasks.json``, 32 tasks:
single keys, sequences, simultaneous move + look, diagonal moves and events; every seed was checked
to let the expected keys move the camera unobstructed in the procedural world).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from yume_env.paths import SAMPLES
from yume_env.script import ScriptError, ScriptStep, parse_script

FORMAT = "yume-env-tasks"
VERSION = 1
DEFAULT_SUITE = Path(__file__).resolve().parent / "default_tasks.json"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TaskError(ValueError):
    """A task or task file that cannot be used (the message names the task and the field)."""


@dataclass(frozen=True)
class Task:
    """One instruction-following task (see the module docstring for the fields)."""

    id: str
    instruction: str
    blocks: tuple[ScriptStep, ...]
    seed: int
    image: str | None = None
    tags: tuple[str, ...] = ()
    base_dir: Path | None = field(default=None, compare=False, repr=False)

    @property
    def expected(self) -> list[tuple[str, str]]:
        """``(move, look)`` per block, e.g. ``[("W", "·"), ("None", "←")]``."""
        return [(b.move, b.look) for b in self.blocks]

    @property
    def event(self) -> str | None:
        """The first event text the task expects, or ``None``."""
        return next((b.event for b in self.blocks if b.event.strip()), None)

    def actions(self) -> list[dict]:
        """The expected keys as env actions (what a perfect follower sends)."""
        return [b.as_action() for b in self.blocks]

    def image_path(self) -> Path | None:
        """The start image as a path (``None``: none given); ``TaskError`` when it does not exist."""
        if self.image is None:
            return None
        candidates = [Path(self.image)]
        if self.base_dir is not None:
            candidates.insert(0, self.base_dir / self.image)
        candidates.append(SAMPLES / self.image)
        for c in candidates:
            if c.is_file():
                return c
        raise TaskError(
            f"task {self.id!r}: image {self.image!r} not found (looked in "
            f"{', '.join(str(c.parent) for c in candidates)}); accepted: a file path relative to the "
            "suite, or a bundled sample name (street.png, park.png, plaza.png)"
        )

    def to_dict(self) -> dict:
        out = {
            "id": self.id,
            "instruction": self.instruction,
            "seed": self.seed,
            "blocks": [_block_text(b) for b in self.blocks],
        }
        if self.image is not None:
            out["image"] = self.image
        if self.tags:
            out["tags"] = list(self.tags)
        return out


def _block_text(step: ScriptStep) -> str:
    return step.describe()


def _parse_block(text, where: str) -> ScriptStep:
    if not isinstance(text, str):
        raise TaskError(f"{where}: got {type(text).__name__}; accepted: a string 'MOVE LOOK [event]'")
    if "\n" in text or re.search(r"\s+x\d+\s*$", text):
        raise TaskError(f"{where}: got {text!r}; accepted: one block 'MOVE LOOK [event]' (no repeats)")
    try:
        steps = parse_script(text)
    except ScriptError as exc:
        raise TaskError(f"{where}: {str(exc).replace('line 1: ', '')}") from None
    return steps[0]


def task_from_dict(data, index: int = 0, base_dir: Path | None = None) -> Task:
    """A :class:`Task` from its JSON object (``TaskError`` naming the task and field otherwise)."""
    where = f"tasks[{index}]"
    if not isinstance(data, dict):
        raise TaskError(
            f"{where}: got {type(data).__name__}; accepted: an object with id, instruction, seed, blocks"
        )
    known = {"id", "instruction", "seed", "image", "blocks", "tags"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TaskError(f"{where}: unknown field(s) {unknown}; accepted: {', '.join(sorted(known))}")
    tid = data.get("id")
    if not isinstance(tid, str) or not _ID.match(tid):
        raise TaskError(f"{where}.id: got {tid!r}; accepted: 1-64 letters, digits, '-', '_' or '.'")
    where = f"task {tid!r}"
    instruction = data.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise TaskError(f"{where}: instruction: got {instruction!r}; accepted: a non-empty string")
    seed = data.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise TaskError(f"{where}: seed: got {seed!r}; accepted: an integer in 0..2**31-1")
    blocks = data.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise TaskError(f"{where}: blocks: got {blocks!r}; accepted: a non-empty list of 'MOVE LOOK [event]'")
    if len(blocks) > 64:
        raise TaskError(f"{where}: blocks: got {len(blocks)}; accepted: at most 64 blocks")
    steps = tuple(_parse_block(b, f"{where}: blocks[{i}]") for i, b in enumerate(blocks))
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise TaskError(f"{where}: image: got {image!r}; accepted: a file name or path, or leave it out")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise TaskError(f"{where}: tags: got {tags!r}; accepted: a list of strings")
    return Task(tid, instruction.strip(), steps, seed, image, tuple(tags), base_dir)


def load_tasks(path: str | Path | None = None) -> list[Task]:
    """The tasks of a suite file (default: the shipped suite, :data:`DEFAULT_SUITE`)."""
    path = DEFAULT_SUITE if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tasks: no such file: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TaskError(f"tasks: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TaskError(f'tasks: {path}: got no "format": {FORMAT!r} field; accepted: a yume-env task suite')
    if data.get("version") != VERSION:
        raise TaskError(f"tasks: {path}: version {data.get('version')!r}; accepted: {VERSION}")
    items = data.get("tasks")
    if not isinstance(items, list) or not items:
        raise TaskError(f'tasks: {path}: "tasks" must be a non-empty list')
    tasks = [task_from_dict(item, i, path.parent) for i, item in enumerate(items)]
    check_unique(tasks)
    return tasks


def check_unique(tasks: Iterable[Task]) -> None:
    seen: set[str] = set()
    for t in tasks:
        if t.id in seen:
            raise TaskError(f"tasks: id {t.id!r} appears more than once; accepted: unique ids")
        seen.add(t.id)


def default_tasks() -> list[Task]:
    """The suite shipped with the package."""
    return load_tasks(DEFAULT_SUITE)


def save_tasks(tasks: Sequence[Task], path: str | Path, description: str = "") -> Path:
    """Write ``tasks`` as a suite file."""
    check_unique(tasks)
    path = Path(path)
    head = {"format": FORMAT, "version": VERSION}
    if description:
        head["description"] = description
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    rows = [f"  {json.dumps(t.to_dict(), ensure_ascii=False)}" for t in tasks]
    lines += [' "tasks": [', ",\n".join(rows), " ]", "}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def select_tasks(
    tasks: Sequence[Task], ids: Sequence[str] | None = None, limit: int | None = None
) -> list[Task]:
    """A subset: the tasks named in ``ids`` (in suite order), then at most ``limit`` of them."""
    out = list(tasks)
    if ids:
        known = {t.id for t in out}
        missing = [i for i in ids if i not in known]
        if missing:
            raise TaskError(f"task ids {missing} are not in the suite; accepted: {', '.join(sorted(known))}")
        wanted = set(ids)
        out = [t for t in out if t.id in wanted]
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise TaskError(f"limit: got {limit!r}; accepted: an integer >= 1")
        out = out[:limit]
    return out
