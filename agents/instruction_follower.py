"""``RuleBasedInstructionFollower``: turns instructions such as "walk forward, then turn left and look
up" into a sequence of Yume actions, one per block, with no learning.

:func:`plan` does the parsing; the policy plays the plan and stands still once it is done.

## The grammar

An instruction is a sequence of **clauses**, played one after another. Clauses are separated by
``,``  ``;``  ``.``  ``then``  ``and then``  ``, and``  ``after that``  ``afterwards``  ``followed by``
``finally``  ``before``.

Each clause is one or more **motions**:

| motion | phrases (any verb form: walk / walks / walking) | action |
|---|---|---|
| forward | walk / move / go / step / head / run / advance / proceed / take ... forward, ahead, straight; bare ``forward``; ``walk`` alone; ``walk down the street`` | ``W`` |
| back | go / move / step / walk back, backward(s); back up, back off, pull back, retreat, reverse | ``S`` |
| sideways | strafe / sidestep / slide / shift left or right; move / go / step left or right | ``A`` / ``D`` |
| turn | turn / pan / rotate / spin / swing / face / look left or right; bare ``left`` / ``right`` | ``←`` / ``→`` |
| tilt | look / tilt / glance / gaze / turn up or down (also skyward, downward); bare ``up`` / ``down`` | ``↑`` / ``↓`` |
| turn around | turn around, turn back, look back / behind, about face, u-turn (180 degrees; to the left if "left" is said) | ``→`` for 180 degrees |
| look around | look around (a full turn to the right) | ``→`` for 360 degrees |
| look ahead | look / face / gaze straight ahead, forward | camera still |
| stand still | stand still, stay (put), hold still, wait, stop, pause, halt, freeze, do nothing, idle | ``None`` ``·`` |
| keys | press / hold W, W+A ...; a clause that is only ``W``, ``S+D`` or ``None``; arrows ``↑ ↓ ← →`` | as written |

"Move left" moves sideways (Yume's ``A`` key, "the camera moves to the left"); "turn left" rotates
the camera. A bare ``left`` / ``right`` turns, unless it follows a movement in the same clause
("walk forward and left" is ``W+A``).

**Combining** within a clause:

- ``while`` / ``whilst`` / ``as`` / ``+`` / a second verb ("walk forward looking up") always combine
  into one block: ``walk forward while turning right`` is ``W`` + ``→``. Combining two opposite
  motions ("walk forward while walking back") is an error.
- ``and`` combines when the two motions are compatible and neither has a count or extent:
  ``turn left and look up`` is ``↑←`` (one block), ``walk forward and left`` is ``W+A``. Otherwise it
  sequences: ``look up and down`` is ``↑`` then ``↓``; ``walk forward twice and turn left`` is
  ``W``, ``W``, ``←``; ``turn around and walk back`` turns first.

**Counts and extents** (of the motion they follow or precede in their part of the clause):
``once``, ``twice``, ``thrice``, ``3 times``, ``x3``, ``for 2 blocks``, ``2 steps``, ``a step``;
``90 degrees`` / ``90°`` (blocks = degrees / ``turn_degrees``, or ``tilt_degrees`` for a pure tilt,
rounded, at least 1); ``6 meters`` / ``6 m`` (blocks = metres / ``meters_per_block``). Numbers may be
digits or words up to twenty. A motion without a count lasts one block.

**Events**: text in double quotes (``"it starts to rain"``, also curly quotes or single quotes around
whole words) is sent verbatim as the event of the first block of its clause; unquoted text after
``while`` / ``as`` that is not a motion is an event too ("walk forward while it starts to rain" sends
"It starts to rain."; unquoted events are capitalised and end with a full stop). A clause with an
event and no motion is one still block carrying the event. Events persist in the world, so only the
first block of a clause sends it.

Anything else raises :class:`InstructionError`, naming the words that could not be read.

The rates default to ``YumeProcedural-v0``'s defaults (40 degrees of pan, 20 of tilt and 3 metres
per block); pass the rates of your world to count degrees and metres in its blocks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from yume_env.actions import LOOK_VECTORS, MOVE_VECTORS, MOVES, check_event
from yume_env.script import ScriptStep

__all__ = ["InstructionError", "RuleBasedInstructionFollower", "plan", "plan_script"]

#: Longest count accepted for one motion (blocks).
MAX_COUNT = 1000

_HINT = (
    "accepted: motions such as 'walk forward', 'go back', 'strafe right', 'turn left', 'look up', "
    "'turn around', 'stand still', with counts ('twice', '3 times', 'for 2 blocks', '90 degrees', "
    "'6 meters'), joined by ', then' (one after another) or 'and' / 'while' (at the same time), and "
    "events in double quotes (see agents.instruction_follower)"
)


class InstructionError(ValueError):
    """An instruction that :func:`plan` cannot read (the message names the words and the grammar)."""


class _UnknownWords(InstructionError):
    """Words outside the grammar (after "while"/"as" such a part is read as an event instead)."""


# ---------------------------------------------------------------------------------------------- words
_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
}
_NUM = r"(\d+(?:\.\d+)?|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"

MOVE, LATERAL, BACK, ROTATE, STILL = "move", "lateral", "back", "rotate", "still"
_VERBS = {
    **dict.fromkeys(
        "walk move go step head run jog stroll advance proceed travel drive come wander march hurry "
        "dash sprint take".split(),
        MOVE,
    ),
    **dict.fromkeys("strafe sidestep slide shift shuffle".split(), LATERAL),
    **dict.fromkeys("retreat reverse backtrack".split(), BACK),
    **dict.fromkeys(
        "turn pan rotate spin swing face yaw swivel look glance gaze peek peer stare tilt".split(), ROTATE
    ),
    **dict.fromkeys("wait stop pause halt freeze idle rest linger hover stay remain".split(), STILL),
}
_IRREGULAR = {"went": "go", "gone": "go", "ran": "run", "came": "come", "spun": "spin", "swung": "swing"}

_DIRECTIONS = {
    **dict.fromkeys("forward forwards ahead straight onward onwards front".split(), "F"),
    **dict.fromkeys("back backward backwards".split(), "B"),
    **dict.fromkeys("left leftward leftwards".split(), "L"),
    **dict.fromkeys("right rightward rightwards".split(), "R"),
    **dict.fromkeys("up upward upwards skyward skywards".split(), "U"),
    **dict.fromkeys("down downward downwards".split(), "D"),
}
_ARROWS = {"\u2190": "L", "\u2192": "R", "\u2191": "U", "\u2193": "D"}
_OPPOSITE = {"F": "B", "B": "F", "L": "R", "R": "L", "U": "D", "D": "U"}

_FILLERS = frozenset(
    """the a an camera camera's view please slowly quickly fast slow gently carefully steadily smoothly bit
    little slightly just now first firstly again keep keeps keeping kept continue continues continuing start
    starts starting begin begins beginning to towards toward into direction your you we i side then also
    at on in place here there more some way of by over same time yourself""".split()
)


def _lemma(word: str) -> str | None:
    """The verb a word is a form of (walks, walking, walked -> walk), or ``None``."""
    if word in _VERBS:
        return word
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    candidates = []
    if word.endswith("ing"):
        stem = word[:-3]
        candidates += [stem, stem + "e"]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            candidates.append(stem[:-1])
    if word.endswith("ed"):
        stem = word[:-2]
        candidates += [stem, word[:-1]]
        if len(stem) > 2 and stem[-1] == stem[-2]:
            candidates.append(stem[:-1])
    if word.endswith("es"):
        candidates.append(word[:-2])
    if word.endswith("s"):
        candidates.append(word[:-1])
    return next((c for c in candidates if c in _VERBS), None)


# ------------------------------------------------------------------------------------------ phrases
_VERB_FORMS = {
    "turn": r"turn(?:s|ed|ing)?",
    "look": r"look(?:s|ed|ing)?",
    "spin": r"(?:spin(?:s|ning)?|spun)",
    "swing": r"(?:swing(?:s|ing)?|swung)",
    "rotate": r"rotat(?:e|es|ed|ing)",
    "face": r"fac(?:e|es|ed|ing)",
}
_ROTATE_ANY = "|".join(_VERB_FORMS[v] for v in ("turn", "spin", "swing", "rotate"))

#: Phrase rewrites applied to a motion part before reading its words (case-insensitive).
_PHRASES: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), r)
    for p, r in (
        (r"\b(?:a |one )?quarter[- ]turn\b", " turn 90 degrees "),
        (r"\b(?:a )?half(?: a)?[- ]turn\b", " turn 180 degrees "),
        (r"\b(?:a )?full(?: turn| circle| rotation)\b", " turn 360 degrees "),
        (rf"\b(?:{_VERB_FORMS['look']}) (?:a)?round\b", " turn right 360 degrees "),
        (rf"\b(?:{_ROTATE_ANY}) (?:a)?round\b", " turn around "),
        (rf"\b(?:{_VERB_FORMS['turn']}) back\b", " turn around "),
        (rf"\b(?:{_VERB_FORMS['look']}) (?:back|behind)\b", " turn around "),
        (r"\babout[- ]face\b|\bu-?turn\b|\bturn 180\b(?! ?(?:deg|°))", " turn around "),
        (r"\bback(?:s|ed|ing)? (?:up|off|away)\b", " move back "),
        (r"\bpull(?:s|ed|ing)? back\b", " move back "),
        (r"\bpush(?:es|ed|ing)? (?:forward|ahead|in)\b", " move forward "),
        (
            r"\b(?:stand|stands|standing|stay|stays|staying|hold|holds|holding|remain|remains|remaining|"
            r"keep|keeps|keeping|be|stand) (?:still|put|steady|stationary|in place|where you are|motionless)\b",
            " wait ",
        ),
        (r"\bdo(?:es)? nothing\b|\bdon'?t move\b|\bno movement\b|\bstay here\b", " wait "),
        (
            r"\b(?:down|up|along|across) the (?:street|road|path|sidewalk|pavement|alley|avenue|lane)\b",
            " forward ",
        ),
        (r"\b(?:at|to(?:wards?)?) the (?:sky|clouds|rooftops|roofs|ceiling)\b", " up "),
        (r"\b(?:at|to(?:wards?)?) (?:the|your) (?:ground|floor|feet|street|road)\b", " down "),
        (r"\bto the (left|right)\b", r" \1 "),
        (
            r"\b(?:press(?:es|ed|ing)?|hold(?:s|ing)?(?: down)?|tap(?:s|ped|ping)?)\s+(?:the\s+)?"
            r"([wasd](?:\s*\+\s*[wasd])?)(?:\s*keys?)?\b",
            lambda m: " key_" + re.sub(r"\s*\+\s*", "_", m.group(1).lower()) + " ",
        ),
    )
)

# Removed before clauses are split, so that their "as" and "and" do not split anything.
_PRE = (
    (re.compile(r"\bas (?:fast|quickly|slowly|far|much|long) as (?:possible|you can|it can)\b", re.I), " "),
    (re.compile(r"\bas well as\b", re.I), " and "),
)
_SEQUENCE = re.compile(
    r"\s*(?:,\s*(?:and\s+)?then\b|\band\s+then\b|\bthen\b|\bafter\s+that\b|\bafterwards\b|\bafter\s+which\b"
    r"|\bfollowed\s+by\b|\bfinally\b|\blastly\b|\bbefore\b|,\s*and\b|[,;]|[.!?](?=\s|$))\s*",
    re.IGNORECASE,
)
_AND = re.compile(r"\s+and\s+|\s*&\s*", re.IGNORECASE)
# "+" joins motions ("forward + left") but not the keys of a combo ("W+A"), which stay one word.
_SIMULTANEOUS = re.compile(
    r"(\s+(?:while|whilst|as|meanwhile)\s+|(?<!\b[wasdWASD])\s*\+\s*(?![wasdWASD]\b))", re.IGNORECASE
)
_QUOTES = re.compile(r"\"([^\"]*)\"|\u201c([^\u201d]*)\u201d|(?<![\w'])'([^']+)'(?![\w'])")
_KEYS_ONLY = re.compile(r"\s*([WASD](?:\s*\+\s*[WASD])?|None)\s*")
_TOKEN = re.compile(
    r"__event\d+__|key_[wasd](?:_[wasd])?|[a-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?|[\u2190-\u2193]+|\S"
)
_EVENT_TOKEN = re.compile(r"__event(\d+)__")


# --------------------------------------------------------------------------------------------- motion
@dataclass(frozen=True)
class _Motion:
    """Axes of one block (``None``: not said), how long, and the event it carries."""

    fwd: int | None = None
    right: int | None = None
    yaw: int | None = None
    pitch: int | None = None
    count: int | None = None  # "twice", "for 3 blocks"
    degrees: float | None = None  # "90 degrees", "turn around"
    meters: float | None = None  # "6 meters"
    event: str | None = None
    text: str = ""

    @property
    def measured(self) -> bool:
        return self.count is not None or self.degrees is not None or self.meters is not None


def _merge(a: _Motion, b: _Motion, strict: bool) -> _Motion | None:
    """``a`` and ``b`` in one block; ``None`` when they do not combine (an error when ``strict``)."""
    fields = {}
    for axis in ("fwd", "right", "yaw", "pitch"):
        va, vb = getattr(a, axis), getattr(b, axis)
        if va is not None and vb is not None and va != vb:
            if strict:
                raise InstructionError(
                    f"{a.text!r} and {b.text!r} ask for opposite motions in the same block; "
                    "say them one after another with ', then'"
                )
            return None
        fields[axis] = va if va is not None else vb
    if not strict and (a.measured or b.measured):
        return None
    for key in ("count", "degrees", "meters", "event"):
        va, vb = getattr(a, key), getattr(b, key)
        if va is not None and vb is not None and va != vb:
            if key == "event":
                raise InstructionError(
                    f"two events for one block ({va!r} and {vb!r}); put them in separate clauses"
                )
            if strict:
                raise InstructionError(
                    f"{a.text!r} and {b.text!r} give different lengths for the same blocks; "
                    "give the length once, or say them one after another with ', then'"
                )
            return None
        fields[key] = va if va is not None else vb
    return _Motion(**fields, text=f"{a.text} + {b.text}")


def _round_blocks(x: float) -> int:
    return max(1, int(math.floor(x + 0.5)))


class _Parser:
    def __init__(self, instruction: str, turn_degrees: float, tilt_degrees: float, meters_per_block: float):
        self.instruction = instruction
        self.turn_degrees = turn_degrees
        self.tilt_degrees = tilt_degrees
        self.meters_per_block = meters_per_block
        self.events: list[str] = []

    # -- errors
    def fail(self, fragment: str, why: str) -> InstructionError:
        return InstructionError(
            f"instruction {self.instruction!r}: could not read {fragment.strip()!r} ({why}); {_HINT}"
        )

    # -- events
    def take_events(self, text: str) -> str:
        def store(m: re.Match) -> str:
            event = next(g for g in m.groups() if g is not None).strip()
            self.events.append(self.check_event(event))
            return f" __event{len(self.events) - 1}__ "

        out = _QUOTES.sub(store, text)
        if '"' in out or "\u201c" in out or "\u201d" in out:
            raise self.fail(out, "a double quote is not closed; put events between a pair of quotes")
        return out

    def check_event(self, event: str) -> str:
        if not event:
            raise self.fail('""', "an empty event; put the event text between the quotes")
        try:
            return check_event(event, f"instruction {self.instruction!r}: event {event[:40]!r}")
        except ValueError as exc:
            raise InstructionError(str(exc)) from None

    # -- counts and extents
    def take_amounts(self, text: str) -> tuple[str, int | None, float | None, float | None]:
        count = degrees = meters = None
        found: list[str] = []

        def number(s: str) -> float:
            return float(_NUMBER_WORDS[s]) if s in _NUMBER_WORDS else float(s)

        def grab(pattern: str, text: str, fn) -> str:
            def sub(m: re.Match) -> str:
                found.append(m.group(0).strip())
                fn(m)
                return " "

            return re.sub(pattern, sub, text, flags=re.IGNORECASE)

        def set_count(v: float, what: str) -> None:
            nonlocal count
            if v != int(v) or not 1 <= v <= MAX_COUNT:
                raise self.fail(what, f"a count must be a whole number from 1 to {MAX_COUNT}")
            count = int(v)

        def set_degrees(m: re.Match) -> None:
            nonlocal degrees
            degrees = number(m.group(1).lower())

        def set_meters(m: re.Match) -> None:
            nonlocal meters
            meters = number(m.group(1).lower())

        rest = grab(
            r"\b(once|twice|thrice)\b",
            text,
            lambda m: set_count({"once": 1, "twice": 2, "thrice": 3}[m.group(1).lower()], m.group(0)),
        )
        rest = grab(
            rf"\b{_NUM}\s*(?:times|x)\b", rest, lambda m: set_count(number(m.group(1).lower()), m.group(0))
        )
        rest = grab(r"(?:\bx|\u00d7)\s*(\d+)\b", rest, lambda m: set_count(number(m.group(1)), m.group(0)))
        rest = grab(
            rf"\b(?:for\s+)?(?:another\s+)?{_NUM}\s+(?:more\s+)?(?:blocks?|steps?|paces?|strides?|beats?)\b",
            rest,
            lambda m: set_count(number(m.group(1).lower()), m.group(0)),
        )
        rest = grab(rf"\b(?:by\s+)?{_NUM}\s*(?:degrees?\b|degs?\b|\u00b0)", rest, set_degrees)
        rest = grab(rf"\b(?:for\s+)?{_NUM}\s*(?:meters?|metres?|m)\b", rest, set_meters)
        if len(found) > 1:
            raise self.fail(" / ".join(found), "more than one count or length for one motion")
        for value, what in ((degrees, "degrees"), (meters, "meters")):
            if value is not None and not 0 < value <= 100_000:
                raise self.fail(f"{value:g} {what}", f"{what} must be more than 0 and at most 100000")
        return rest, count, degrees, meters

    # -- one motion part (already split at and/while)
    def part(
        self, raw: str, inherited: str | None, introduced_by_while: bool
    ) -> tuple[_Motion | None, str | None]:
        """The motion of one part and its verb class; ``(None, None)`` for an empty part."""
        keys = _KEYS_ONLY.fullmatch(raw)
        if keys:
            name = re.sub(r"\s+", "", keys.group(1))
            fwd, right = MOVE_VECTORS[MOVES.index(name)]
            return _Motion(fwd=fwd, right=right, text=raw.strip()), MOVE
        text = raw
        for pattern, repl in _PHRASES:
            text = pattern.sub(repl, text)
        text, count, degrees, meters = self.take_amounts(text)
        tokens = _TOKEN.findall(text.lower())
        try:
            motion, cls = self.words(tokens, inherited, raw)
        except _UnknownWords:
            if introduced_by_while and not any(t.startswith("__event") for t in tokens):
                event = raw.strip()
                event = self.check_event(event[:1].upper() + event[1:] + ("" if event[-1] in ".!?" else "."))
                return _Motion(event=event, text=raw.strip()), inherited
            raise
        if motion is None:
            if count is not None or degrees is not None or meters is not None:
                raise self.fail(raw, "a count or length without a motion")
            return None, inherited
        if degrees is not None and motion.yaw in (None, 0) and motion.pitch in (None, 0):
            raise self.fail(raw, "degrees need a turn or tilt")
        if meters is not None and motion.fwd in (None, 0) and motion.right in (None, 0):
            raise self.fail(raw, "meters need a movement")
        motion = replace(
            motion,
            count=count,
            degrees=degrees if degrees is not None else motion.degrees,
            meters=meters,
            text=raw.strip(),
        )
        return motion, cls

    def words(self, tokens: list[str], inherited: str | None, raw: str) -> tuple[_Motion | None, str | None]:
        """Read the words of a part: verbs start sub-motions, which are combined into one block."""
        groups: list[tuple[str | None, list[str]]] = []
        event: str | None = None
        unknown: list[str] = []
        for tok in tokens:
            if tok.startswith("__event"):
                if event is not None:
                    raise self.fail(raw, "two events for one block")
                event = self.events[int(_EVENT_TOKEN.match(tok).group(1))]
                continue
            if tok.startswith("key_"):
                groups.append(("key", [tok]))
                continue
            verb = _lemma(tok)
            if verb is not None:
                groups.append((_VERBS[verb], []))
                continue
            if tok in _DIRECTIONS or tok == "around" or all(c in _ARROWS for c in tok):
                if not groups or groups[-1][0] == "key":
                    groups.append((None, []))
                groups[-1][1].append(tok)
                continue
            if tok in _FILLERS or tok in ("and", "while", "as"):
                continue
            unknown.append(tok)
        if unknown:
            error = self.fail(raw, "unknown words: " + ", ".join(repr(u) for u in unknown))
            raise _UnknownWords(str(error))
        motion: _Motion | None = None
        cls = inherited
        for verb_class, dirs in groups:
            sub, cls = self.sub_motion(verb_class, dirs, cls, raw)
            motion = sub if motion is None else _merge(motion, sub, strict=True)
        if event is not None:
            motion = _Motion(event=event) if motion is None else replace(motion, event=event)
        return motion, cls

    def sub_motion(self, verb_class: str | None, dirs: list[str], inherited: str | None, raw: str):
        if verb_class == "key":
            keys = dirs[0][4:].upper().replace("_", "+")
            if keys not in MOVES:
                raise self.fail(raw, f"no key combo {keys!r}; accepted: {', '.join(MOVES)}")
            fwd, right = MOVE_VECTORS[MOVES.index(keys)]
            return _Motion(fwd=fwd, right=right), MOVE
        around = "around" in dirs
        names: list[str] = []
        arrow = False
        for d in dirs:
            if d == "around":
                continue
            if d in _DIRECTIONS:
                names.append(_DIRECTIONS[d])
            else:
                arrow = True
                names.extend(_ARROWS[c] for c in d)
        for n in set(names):
            if _OPPOSITE[n] in names:
                raise self.fail(raw, f"both {n} and {_OPPOSITE[n]} at once")
        if arrow:
            verb_class = ROTATE
        cls = verb_class
        if cls is None:  # bare directions
            if inherited in (MOVE, LATERAL, BACK) and not ({"U", "D"} & set(names)):
                cls = inherited
            elif {"F", "B"} & set(names):
                cls = MOVE
            else:
                cls = ROTATE
        fwd = right = yaw = pitch = None
        degrees = None
        if around and cls != ROTATE:
            raise self.fail(raw, "'around' goes with a turn: say 'turn around' or 'look around'")
        if cls == STILL:
            if names:
                raise self.fail(raw, "a direction after stand still / wait")
            return _Motion(fwd=0, right=0), STILL
        if cls in (MOVE, LATERAL, BACK):
            if {"U", "D"} & set(names):
                raise self.fail(
                    raw, "the camera walks on the ground and cannot move up or down; use 'look up'"
                )
            if cls == LATERAL and not {"L", "R"} & set(names):
                raise self.fail(raw, "strafe which way? say left or right")
            if cls == BACK and "F" in names:
                raise self.fail(raw, "both back and forward at once")
            if "F" in names:
                fwd = 1
            if "B" in names or cls == BACK:
                fwd = -1
            if "L" in names:
                right = -1
            if "R" in names:
                right = 1
            if fwd is None and right is None:
                fwd = 1  # "walk", "keep going"
            return _Motion(fwd=fwd, right=right), cls
        # ROTATE
        if "L" in names:
            yaw = -1
        if "R" in names:
            yaw = 1
        if "U" in names:
            pitch = 1
        if "D" in names:
            pitch = -1
        if around or "B" in names:
            yaw = -1 if yaw == -1 else 1
            degrees = 180.0
        elif "F" in names and yaw is None and pitch is None:
            yaw = pitch = 0  # "look straight ahead": camera still
        if yaw is None and pitch is None:
            raise self.fail(raw, "turn which way? say left, right, up or down")
        return _Motion(yaw=yaw, pitch=pitch, degrees=degrees), ROTATE

    # -- whole instruction
    def run(self) -> list[tuple[int, int, int, str]]:
        try:
            return self._run()
        except InstructionError as exc:
            if str(exc).startswith("instruction"):
                raise
            raise InstructionError(f"instruction {self.instruction!r}: {exc}") from None

    def _run(self) -> list[tuple[int, int, int, str]]:
        text = self.take_events(self.instruction)
        for pattern, repl in _PRE:
            text = pattern.sub(repl, text)
        steps: list[tuple[int, int, int, str]] = []  # (blocks, move, look, event)
        for clause in _SEQUENCE.split(text):
            if not clause or not clause.strip():
                continue
            groups: list[_Motion] = []
            inherited: str | None = None
            for and_part in _AND.split(clause):
                pieces = _SIMULTANEOUS.split(and_part)
                merged: _Motion | None = None
                # pieces alternate: text, joiner, text, ...
                for k in range(0, len(pieces), 2):
                    joiner = pieces[k - 1].strip().lower() if k else ""
                    motion, inherited = self.part(pieces[k], inherited, joiner in ("while", "whilst", "as"))
                    if motion is None:
                        continue
                    merged = motion if merged is None else _merge(merged, motion, strict=True)
                if merged is None:
                    continue
                if groups:
                    combined = _merge(groups[-1], merged, strict=False)
                    if combined is not None:
                        groups[-1] = combined
                        continue
                groups.append(merged)
            for g in groups:
                steps.append(self.blocks(g))
        if not steps:
            raise self.fail(self.instruction, "no motion or event in it")
        return steps

    def blocks(self, m: _Motion) -> tuple[int, int, int, str]:
        per = 1
        if m.degrees is not None:
            rate = self.turn_degrees if m.yaw not in (None, 0) else self.tilt_degrees
            per = _round_blocks(m.degrees / rate)
        if m.meters is not None:
            by_meters = _round_blocks(m.meters / self.meters_per_block)
            if m.degrees is not None and by_meters != per:
                raise self.fail(
                    m.text, f"{m.degrees:g} degrees is {per} blocks but {m.meters:g} meters is {by_meters}"
                )
            per = by_meters
        n = per * (m.count or 1)
        if n > MAX_COUNT:
            raise self.fail(m.text, f"{n} blocks; accepted: at most {MAX_COUNT} for one motion")
        move = MOVE_VECTORS.index((m.fwd or 0, m.right or 0))
        look = LOOK_VECTORS.index((m.yaw or 0, m.pitch or 0))
        return n, move, look, m.event or ""


def _rate(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name}: got {value!r}; accepted: a positive number")
    return float(value)


def plan(
    instruction: str,
    *,
    turn_degrees: float = 40.0,
    tilt_degrees: float = 20.0,
    meters_per_block: float = 3.0,
) -> list[dict]:
    """The Yume actions (``{"move", "look", "event"}``, one per block) that carry out ``instruction``.

    ``turn_degrees`` / ``tilt_degrees`` / ``meters_per_block`` convert "90 degrees" and "6 meters"
    into blocks (defaults: ``YumeProcedural-v0``'s speeds). Raises :class:`InstructionError` (a
    ``ValueError``) naming the words it could not read; see the module docs for the grammar.

    >>> [(a["move"], a["look"]) for a in plan("walk forward, then turn left and look up")]
    [(1, 0), (0, 6)]
    """
    if not isinstance(instruction, str):
        raise TypeError(f"instruction: got {type(instruction).__name__}; accepted: str")
    if not instruction.strip():
        raise InstructionError(f"instruction: got an empty string; {_HINT}")
    parser = _Parser(
        instruction,
        _rate("turn_degrees", turn_degrees),
        _rate("tilt_degrees", tilt_degrees),
        _rate("meters_per_block", meters_per_block),
    )
    actions: list[dict] = []
    for n, move, look, event in parser.run():
        actions.append({"move": move, "look": look, "event": event})
        actions.extend({"move": move, "look": look, "event": ""} for _ in range(n - 1))
    return actions


def plan_script(instruction: str, **rates) -> str:
    """The plan of ``instruction`` as action-script text (``MOVE LOOK [event]`` per line, see
    :mod:`yume_env.script`), e.g. to save and replay it with ``ScriptedPolicy``."""
    lines = []
    for a in plan(instruction, **rates):
        lines.append(ScriptStep.from_action(a).describe())
    return "\n".join(lines) + "\n"


class RuleBasedInstructionFollower:
    """Plays the :func:`plan` of the instruction given to ``reset``, one action per block.

    Args:
        turn_degrees / tilt_degrees / meters_per_block: see :func:`plan`.
        when_done: after the plan: ``"still"`` (default: stand still) or ``"repeat_last"`` (keep
            doing the last move and look).

    ``reset("")`` gives an empty plan (the agent stands still). An instruction the grammar cannot
    read raises :class:`InstructionError` from ``reset``. ``steps`` is the current plan; ``done``
    says whether it has been played.
    """

    name = "rule_based"

    def __init__(
        self,
        turn_degrees: float = 40.0,
        tilt_degrees: float = 20.0,
        meters_per_block: float = 3.0,
        when_done: str = "still",
    ):
        if when_done not in ("still", "repeat_last"):
            raise ValueError(f"when_done: got {when_done!r}; accepted: still, repeat_last")
        self.rates = {
            "turn_degrees": _rate("turn_degrees", turn_degrees),
            "tilt_degrees": _rate("tilt_degrees", tilt_degrees),
            "meters_per_block": _rate("meters_per_block", meters_per_block),
        }
        self.when_done = when_done
        self.instruction = ""
        self.steps: list[dict] = []
        self._t = 0

    @property
    def done(self) -> bool:
        return self._t >= len(self.steps)

    def reset(self, instruction: str = "", seed: int | None = None) -> None:
        if not isinstance(instruction, str):
            raise TypeError(f"instruction: got {type(instruction).__name__}; accepted: str")
        self.steps = plan(instruction, **self.rates) if instruction.strip() else []
        self.instruction = instruction
        self._t = 0

    def act(self, observation=None, info: dict | None = None) -> dict:
        t = self._t
        self._t += 1
        if t < len(self.steps):
            return dict(self.steps[t])
        if self.when_done == "repeat_last" and self.steps:
            return {**self.steps[-1], "event": ""}
        return {"move": 0, "look": 0, "event": ""}
