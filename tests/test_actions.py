"""The one action type (``yume_env.actions.Action``), the one event catalog (``yume_env.events``) and
where shared things live: every input shape, every bad input named, the indices the SB3 wrappers and
PettingZoo envs have always used, and the layer rules these modules keep."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from yume_env.actions import EVENT_MAX_LENGTH, LOOKS, MOVES, Action
from yume_env.events import PROCEDURAL_EVENTS, EventCatalog
from yume_env.script import ScriptStep, parse_script

ROOT = Path(__file__).resolve().parent.parent
PROC = {"resolution": (32, 64), "frames_per_block": 3}


# ---------------------------------------------------------------------------------------------- Action
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (Action(5, 1, "It rains."), (5, 1, "It rains.")),
        ({"move": 5, "look": 1, "event": "It rains."}, (5, 1, "It rains.")),
        ({"move": 5, "look": 1}, (5, 1, "")),
        ((5, 1), (5, 1, "")),
        ((5, 1, "It rains."), (5, 1, "It rains.")),
        ([5, 1, "It rains."], (5, 1, "It rains.")),
        ({"move": np.int64(5), "look": np.array(1), "event": np.str_("It rains.")}, (5, 1, "It rains.")),
    ],
)
def test_parse_takes_every_shape_users_pass(given, expected):
    a = Action.parse(given)
    assert isinstance(a, Action) and a.as_tuple() == expected
    assert type(a.move) is int and type(a.look) is int and type(a.event) is str


def test_parse_returns_an_action_as_is_and_defaults_stand_still():
    a = Action(2, 3)
    assert Action.parse(a) is a
    assert Action() == Action(0, 0, "") and Action().as_dict() == {"move": 0, "look": 0, "event": ""}


@pytest.mark.parametrize(
    ("move", "look", "expected"),
    [
        ("W+A", "\u2192", (5, 1)),
        ("w+a", "right", (5, 1)),
        ("None", "\u00b7", (0, 0)),
        ("none", "still", (0, 0)),
        ("-", ".", (0, 0)),
        ("S+D", "down+left", (8, 8)),
        ("D", "\u2191\u2190", (4, 6)),
        ("S", "UP+RIGHT", (3, 5)),
    ],
)
def test_from_keys_reads_the_names_scripts_and_the_play_page_write(move, look, expected):
    a = Action.from_keys(move, look, "Fog rolls in.")
    assert (a.move, a.look, a.event) == (*expected, "Fog rolls in.")
    assert a.combo == (MOVES[expected[0]], LOOKS[expected[1]])


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Action(9, 0), ValueError, r"^action\['move'\]: got 9; accepted: 0\.\.8 \(None, W, A"),
        (lambda: Action(-1, 0), ValueError, r"^action\['move'\]: got -1; accepted: 0\.\.8"),
        (
            lambda: Action(1.0, 0),
            TypeError,
            r"^action\['move'\]: got 1\.0 \(float\); accepted: an integer 0\.\.8",
        ),
        (lambda: Action(True, 0), TypeError, r"^action\['move'\]: got True \(bool\)"),
        (lambda: Action("W", 0), TypeError, r"^action\['move'\]: got 'W' \(str\)"),
        (lambda: Action(0, 12), ValueError, r"^action\['look'\]: got 12; accepted: 0\.\.8"),
        (lambda: Action(0, None), TypeError, r"^action\['look'\]: got None \(NoneType\)"),
        (lambda: Action(0, 0, 42), TypeError, r"^action\['event'\]: got int; accepted: str"),
        (
            lambda: Action(0, 0, "x" * (EVENT_MAX_LENGTH + 1)),
            ValueError,
            rf"^action\['event'\]: got {EVENT_MAX_LENGTH + 1} characters; accepted: at most {EVENT_MAX_LENGTH}",
        ),
        (
            lambda: Action(0, 0, "caf\u00e9"),
            ValueError,
            "^action\\['event'\\]: got characters \\['\u00e9'\\]; accepted: printable ASCII",
        ),
        (lambda: Action.parse({"move": 0}), ValueError, r"^action: missing key 'look'"),
        (
            lambda: Action.parse({"move": 0, "look": 0, "speed": 1}),
            ValueError,
            r"^action: got unknown keys \['speed'\]",
        ),
        (
            lambda: Action.parse((1, 2, "", 4)),
            ValueError,
            r"^action: got a tuple of 4 items; accepted: an Action",
        ),
        (lambda: Action.parse((1,)), ValueError, r"^action: got a tuple of 1 items"),
        (lambda: Action.parse(5), TypeError, r"^action: got int; accepted: an Action, a dict"),
        (lambda: Action.parse("W"), TypeError, r"^action: got str"),
        (lambda: Action.parse((1, 9)), ValueError, r"^action\['look'\]: got 9"),
        (lambda: Action.from_keys("Q", "."), ValueError, r"^move: got 'Q'; accepted: None, W, A"),
        (lambda: Action.from_keys("W", "sideways"), ValueError, r"^look: got 'sideways'; accepted: \u00b7"),
        (lambda: Action.from_keys("W", "right", "\n"), ValueError, r"^action\['event'\]: got characters"),
    ],
)
def test_bad_input_names_the_field(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_actions_are_frozen_hashable_values():
    a = Action(np.int64(4), np.array(2), np.str_("Night falls."))
    b = Action(4, 2, "Night falls.")
    assert a == b and hash(a) == hash(b)
    assert len({a, b, Action(4, 2), Action(4, 2, "")}) == 2
    assert {a: "x"}[b] == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.move = 1  # type: ignore[misc]


def test_dict_and_action_round_trip_over_every_key_combo():
    for move in range(len(MOVES)):
        for look in range(len(LOOKS)):
            for event in ("", "   ", "A red balloon appears."):
                a = Action(move, look, event)
                d = a.as_dict()
                assert d == {"move": move, "look": look, "event": event}
                assert Action.parse(d) == a == Action.parse(a.as_tuple())
                assert Action.from_keys(*a.combo, event) == a


def test_old_names_keep_working():
    import yume_env.world
    import yume_env.world.protocol
    import yume_env.world.stream
    from yume_env.envs import procedural_env, validation

    assert yume_env.world.stream.Action is Action is yume_env.world.Action is yume_env.world.protocol.Action
    assert validation.parse_action({"move": 1, "look": 2}) == Action(1, 2)
    assert validation.check_event("ok") == "ok"
    # environments take a dict or an Action, as before (a list is refused there)
    with pytest.raises(TypeError, match="action: got list; accepted: a dict"):
        validation.parse_action([1, 0, ""])
    with pytest.warns(DeprecationWarning, match="Action.parse"):
        assert procedural_env.parse_action({"move": 3, "look": 4, "event": "x"}) == (3, 4, "x")


def test_script_steps_are_checked_key_combos_with_their_action():
    step = ScriptStep("w+d", "up+left", "It snows.")
    assert (step.move, step.look, step.event) == ("W+D", "\u2191\u2190", "It snows.")
    assert step.action == Action(6, 6, "It snows.")
    assert step.as_action() == {"move": 6, "look": 6, "event": "It snows."}
    assert ScriptStep.from_action({"move": 6, "look": 6, "event": "It snows."}) == step
    assert step.describe() == "W+D up+left It snows."
    assert [s.action for s in parse_script("x2 - . Fog rolls in.\nS+A down")] == [
        Action(0, 0, "Fog rolls in."),
        Action(0, 0, "Fog rolls in."),
        Action(7, 4),
    ]
    with pytest.raises(ValueError, match="move: got 'Q'"):
        ScriptStep("Q", ".")


def test_play_messages_carry_an_action():
    from yume_env.play.protocol import parse_message

    msg = parse_message('{"type": "step", "keys": ["w", "a", "ArrowUp"], "event": "It rains."}')
    assert msg.action == Action(5, 3, "It rains.") == Action.from_keys("W+A", "\u2191", "It rains.")


# ---------------------------------------------------------------------------------------- EventCatalog
#: The procedural catalog's indices: what the director's Discrete action and SAMPLE_EVENTS have always meant.
KNOWN = {
    0: "",
    1: "The weather clears.",
    2: "The sun sets.",
    4: "Night falls.",
    6: "It starts to rain.",
    9: "A red balloon appears.",
}


def test_procedural_catalog_indices_do_not_drift():
    assert len(PROCEDURAL_EVENTS) == 9 and PROCEDURAL_EVENTS.space == spaces.Discrete(10)
    for index, text in KNOWN.items():
        assert PROCEDURAL_EVENTS.decode(index) == text
        assert PROCEDURAL_EVENTS.encode(text) == index
    assert PROCEDURAL_EVENTS.names[5] == "rain" and PROCEDURAL_EVENTS.phrases[5] == "it starts to rain"


def test_encode_decode_round_trip():
    catalog = EventCatalog(["It rains.", "   ", "A dragon lands."])
    assert catalog.space == spaces.Discrete(4) and list(catalog) == ["It rains.", "   ", "A dragon lands."]
    for index in range(4):
        assert catalog.encode(catalog.decode(index)) == index
    assert catalog.decode(np.int64(3)) == catalog.decode(np.array(3)) == "A dragon lands."
    assert "It rains." in catalog and "It snows." not in catalog
    assert catalog == EventCatalog(("It rains.", "   ", "A dragon lands."))
    assert EventCatalog([]).space == spaces.Discrete(1)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: EventCatalog("It rains."), TypeError, r"^events: got str; accepted: a list of event texts"),
        (lambda: EventCatalog(["ok", 3]), TypeError, r"^events\[1\]: got int"),
        (lambda: EventCatalog(["", "a"]), ValueError, r"^events\[0\]: got an empty string"),
        (lambda: EventCatalog(["a", "b", "a"]), ValueError, r"^events\[2\]: 'a' repeats events\[0\]"),
        (lambda: EventCatalog(["caf\u00e9"]), ValueError, r"^events\[0\]: got characters"),
        (
            lambda: EventCatalog(["a"], names=["x", "y"]),
            ValueError,
            r"^names: got 2; accepted: one per event",
        ),
        (lambda: PROCEDURAL_EVENTS.decode(10), ValueError, r"^event: got 10; accepted: 0\.\.9"),
        (lambda: PROCEDURAL_EVENTS.decode(-1), ValueError, r"^event: got -1"),
        (lambda: PROCEDURAL_EVENTS.decode(1.0), TypeError, r"^event: got 1\.0 \(float\)"),
        (lambda: PROCEDURAL_EVENTS.decode(True), TypeError, r"^event: got True"),
        (
            lambda: PROCEDURAL_EVENTS.encode("It snows."),
            ValueError,
            r"^event: got 'It snows\.', which is not in",
        ),
        (lambda: PROCEDURAL_EVENTS.encode(7), TypeError, r"^event: got int"),
    ],
)
def test_catalog_errors_name_the_entry(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_sampler_director_and_training_data_share_the_catalog():
    from yume_env.envs.multi_agent import DEFAULT_EVENTS
    from yume_env.envs.spaces import SAMPLE_EVENTS
    from yume_env.train.data import EVENT_TEXTS

    assert (
        DEFAULT_EVENTS
        == SAMPLE_EVENTS
        == PROCEDURAL_EVENTS.texts
        == (
            "The weather clears.",
            "The sun sets.",
            "The lights go out.",
            "Night falls.",
            "Fog rolls in.",
            "It starts to rain.",
            "It starts to snow.",
            "The balloon pops.",
            "A red balloon appears.",
        )
    )
    assert EVENT_TEXTS[:9] == PROCEDURAL_EVENTS.phrases and EVENT_TEXTS[5] == "it starts to rain"
    assert EVENT_TEXTS[9:] == ("sunset", "lights out", "thick fog")


class _Frames(gym.Env):
    """YumeWorld-v0's spaces, no model; remembers the last action."""

    metadata = {"render_modes": []}

    def __init__(self):
        from yume_env.envs.spaces import action_space

        self.observation_space = spaces.Box(0, 255, shape=(2, 8, 8, 3), dtype=np.uint8)
        self.action_space = action_space()
        self.last_action = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.uint8), {}

    def step(self, action):
        self.last_action = action
        return np.zeros(self.observation_space.shape, np.uint8), 0.0, False, False, {}


def test_sb3_wrapper_indices_do_not_drift():
    from yume_env.envs.wrappers import DiscreteActions

    env = DiscreteActions(_Frames(), events=["It rains.", "Night falls."])
    assert env.catalog == EventCatalog(["It rains.", "Night falls."]) and env.events == (
        "It rains.",
        "Night falls.",
    )
    assert env.action_space == spaces.Discrete(81 * 3)
    # index = slot * 81 + move * 9 + look, slot 0 keeps the event
    assert env.decode(0) == {"move": 0, "look": 0, "event": ""}
    assert env.decode(4 * 9 + 1) == {"move": 4, "look": 1, "event": ""}
    assert env.decode(81 + 5 * 9 + 2) == {"move": 5, "look": 2, "event": "It rains."}
    assert env.decode(2 * 81 + 8 * 9 + 8) == {"move": 8, "look": 8, "event": "Night falls."}
    assert (
        env.encode(Action(5, 2, "It rains."))
        == env.encode({"move": 5, "look": 2, "event": "It rains."})
        == 128
    )
    assert env.table[128] == Action(5, 2, "It rains.")
    env.reset(seed=0)
    env.step(2 * 81 + 1)
    assert env.unwrapped.last_action == {"move": 0, "look": 1, "event": "Night falls."}
    subset = DiscreteActions(_Frames(), events=["It rains."], moves=["W", "S"], looks=[0, "\u2192"])
    assert subset.decode(4 + 1 * 2 + 1) == {"move": 3, "look": 1, "event": "It rains."}


def test_pettingzoo_indices_do_not_drift():
    from yume_env.envs.multi_agent import DirectedWorldEnv, ExplorersEnv

    directed = DirectedWorldEnv("procedural", PROC)
    assert directed.action_space("director") == PROCEDURAL_EVENTS.space
    for index, text in KNOWN.items():
        assert directed.event_of(index) == text
    merged = directed.merge({"explorer": {"move": 1, "look": 2}, "director": np.int64(6)})
    assert merged == {"move": 1, "look": 2, "event": "It starts to rain."}
    explorers = ExplorersEnv(2, "procedural", PROC, events=["It rains.", "Night falls."])
    assert explorers.action_space("explorer_0")["event"] == spaces.Discrete(3)
    assert explorers.world_action("explorer_0", {"move": 2, "look": 0, "event": 2}) == {
        "move": 2,
        "look": 0,
        "event": "Night falls.",
    }
    with pytest.raises(ValueError, match=r"actions\['explorer_1'\]\['event'\]: got 3; accepted: 0\.\.2"):
        explorers.world_action("explorer_1", {"move": 2, "look": 0, "event": 3})
    with pytest.raises(ValueError, match=r"actions\['explorer_1'\]\['event'\]: got 'x' \(str\)"):
        explorers.world_action("explorer_1", {"move": 2, "look": 0, "event": "x"})
    directed.close()
    explorers.close()


# ------------------------------------------------------------------------------------- where things live
def _project_imports(path: Path) -> set[str]:
    """The ``yume_env`` modules ``path`` imports (relative imports resolved), at any depth."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            out.add(base)
    return {m for m in out if m.startswith("yume_env")}


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("model", ("yume_env.model", "yume_env.paths")),
        ("world", ("yume_env.world", "yume_env.model", "yume_env.actions", "yume_env.paths")),
    ],
)
def test_lower_layers_import_only_what_the_layer_table_allows(layer, allowed):
    for path in sorted((ROOT / "yume_env" / layer).glob("*.py")):
        bad = sorted(m for m in _project_imports(path) if not m.startswith(allowed))
        if path.name == "text_encoder.py":
            bad = [m for m in bad if m != "yume_env.train.tokenizer"]  # the deprecated names' lazy lookup
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
    for leaf in ("actions.py", "paths.py"):
        assert _project_imports(ROOT / "yume_env" / leaf) == set(), leaf


def test_no_command_line_words_in_the_world_and_model_layers():
    from yume_env.world.images import parse_resolution

    with pytest.raises(ValueError, match=r"^resolution: got 'big'; accepted: HxW"):
        parse_resolution("big")
    assert parse_resolution("96x160") == (96, 160) and parse_resolution(None) is None
    for layer in ("world", "model"):
        for path in (ROOT / "yume_env" / layer).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert (
                "--resolution" not in text.replace("``--resolution: ...``", "") and "yume-world" not in text
            ), path


def test_command_lines_name_their_flag(tmp_path):
    import argparse

    from yume_env.cli import main as cli_main
    from yume_env.cli_flags import world_flags
    from yume_env.play.cli import make_server

    flags = dict(checkpoint=None, device=None, dtype=None, resolution="big", steps=None, decode="block")
    with pytest.raises(ValueError, match=r"^--resolution: got 'big'; accepted: HxW"):
        world_flags(argparse.Namespace(**flags))
    with pytest.raises(ValueError, match=r"^--steps: got 0; accepted: an integer >= 1"):
        world_flags(argparse.Namespace(**{**flags, "resolution": None, "steps": 0}))
    assert world_flags(argparse.Namespace(**{**flags, "resolution": "32x64"}))["resolution"] == (32, 64)
    # both command lines go through it: the demo exits 2, play's server refuses the flag by name
    assert cli_main(["demo", "--resolution", "big", "--out", str(tmp_path / "demo")]) == 2
    play_args = argparse.Namespace(**flags, world="tiny", port=8765, dataset=None, out=str(tmp_path / "play"))
    with pytest.raises(ValueError, match=r"^--resolution: got 'big'"):
        make_server(play_args)


def test_one_assets_path_and_it_ships():
    import tomllib

    import yume_env.evaluation.synthetic
    import yume_env.evaluation.tasks
    import yume_env.model.pipeline
    import yume_env.model.text_encoder
    import yume_env.world.images
    from yume_env import paths
    from yume_env.envs import yume_world

    assert paths.SAMPLES == paths.ASSETS / "samples" and (paths.SAMPLES / "street.png").is_file()
    assert (paths.TINY_CHECKPOINT / "config.json").is_file()
    assert (paths.TINY_TOKENIZER / "tokenizer.json").is_file()
    assert yume_env.world.images.SAMPLES is paths.SAMPLES
    assert yume_env.evaluation.synthetic.SAMPLES is paths.SAMPLES
    assert yume_env.evaluation.tasks.SAMPLES is paths.SAMPLES
    assert yume_world.SAMPLE_IMAGES is paths.SAMPLES
    assert yume_env.model.pipeline.TINY_CHECKPOINT is paths.TINY_CHECKPOINT
    assert yume_env.model.pipeline.TINY_TOKENIZER is paths.TINY_TOKENIZER
    assert yume_env.model.text_encoder.TINY_TOKENIZER_DIR is paths.TINY_TOKENIZER
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "assets/**/*" in data["tool"]["setuptools"]["package-data"]["yume_env"]


def test_tiny_tokenizer_builder_lives_in_train_and_the_model_layer_does_not_reach_it():
    from yume_env.train.tokenizer import build_tiny_tokenizer, tiny_tokenizer_corpus

    assert "The camera pushes forward (W)." in tiny_tokenizer_corpus()
    assert callable(build_tiny_tokenizer)
    # the model layer may not import the training package, not even lazily for an old name
    import yume_env.model.text_encoder as text_encoder

    assert not hasattr(text_encoder, "tiny_tokenizer_corpus")
    assert "yume_env.train" not in (ROOT / "yume_env" / "model" / "text_encoder.py").read_text().replace(
        "yume_env.train.tokenizer.build_tiny_tokenizer", ""
    )


def test_agents_are_imported_lazily():
    code = "import sys, yume_env, yume_env.envs, yume_env.evaluation; print(any(m == 'agents' or m.startswith('agents.') for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False"
    import agents  # still a top-level package, as promised

    assert hasattr(agents, "__path__")


def test_generated_worlds_take_a_resolution_string():
    from yume_env.model.pipeline import build_model
    from yume_env.world.stream import WorldStream

    model = build_model("tiny", seed=1)
    assert WorldStream(model, decode="none", resolution="32x64").resolution == (32, 64)
    assert WorldStream(model, decode="none", resolution=(32, 64)).resolution == (32, 64)
    with pytest.raises(ValueError, match=r"^resolution: got '32by64'; accepted: HxW"):
        WorldStream(model, decode="none", resolution="32by64")


@pytest.mark.parametrize(
    "event",
    ["", "It rains.", "   ", "Cars pass x2", '"quoted"', " padded ", "x3", 'say "hi"', "a  b"],
)
def test_a_script_line_reads_back_as_the_same_step(event):
    from yume_env.script import ScriptStep, parse_script

    step = ScriptStep("W+D", "\u2191\u2192", event)
    (back,) = parse_script(step.as_line())
    assert back == step and back.event == event


def test_quoted_script_events_are_taken_as_they_are():
    from yume_env.script import parse_script

    clear, repeated_text, plain = parse_script('None . "   "\nW right "Cars pass x2"\nW . "a')
    assert clear.event == "   " and repeated_text.event == "Cars pass x2" and plain.event == '"a'
    assert len(parse_script("W . x2")) == 2  # outside quotes a trailing xN still repeats
