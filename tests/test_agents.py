"""Agents: random (seeded), scripted replay, the rule-based instruction follower's grammar, and PPO."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import yume_env  # noqa: F401  (registers the environments)
from agents.base import Policy
from agents.instruction_follower import InstructionError, RuleBasedInstructionFollower, plan, plan_script
from agents.ppo_agent import PoseInstructionReward, PPOPolicy, train_ppo
from agents.random_agent import RandomPolicy
from agents.scripted import ScriptedPolicy, ScriptExhausted
from yume_env.envs.spaces import action_space
from yume_env.script import ScriptError, parse_script

PROC = {"resolution": (36, 48), "frames_per_block": 2, "render_threads": 1}


# ---------------------------------------------------------------------------------------------- random
def test_random_policy_is_seeded_and_valid():
    space = action_space()
    a = [RandomPolicy(seed=3).act(None, {}) for _ in range(1)]
    p, q = RandomPolicy(seed=3), RandomPolicy(seed=3)
    seq_p = [p.act(None, {}) for _ in range(50)]
    seq_q = [q.act(None, {}) for _ in range(50)]
    assert seq_p == seq_q and seq_p[0] == a[0]
    assert all(space.contains(x) for x in seq_p)
    assert len({(x["move"], x["look"]) for x in seq_p}) > 20
    p.reset(seed=3)
    assert [p.act(None, {}) for _ in range(50)] == seq_q
    assert [RandomPolicy(seed=4).act(None, {}) for _ in range(5)] != seq_q[:5]


def test_random_policy_subsets_and_events():
    p = RandomPolicy(
        seed=0, moves=["W", "S"], looks=[0, "\u2192"], events=["It rains."], event_probability=0.5
    )
    acts = [p.act(None, {}) for _ in range(200)]
    assert {a["move"] for a in acts} == {1, 3}
    assert {a["look"] for a in acts} == {0, 1}
    assert {a["event"] for a in acts} == {"", "It rains."}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seed": -1}, "seed: got -1"),
        ({"moves": ["Q"]}, "move: got 'Q'"),
        ({"looks": [9]}, "looks: got 9"),
        ({"moves": []}, "empty list"),
        ({"event_probability": 0.5}, "with no events"),
        ({"events": ["ok"], "event_probability": 2}, "event_probability: got 2"),
        ({"events": ["caf\u00e9"]}, "printable ASCII"),
    ],
)
def test_random_policy_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomPolicy(**kwargs)


# ---------------------------------------------------------------------------------------------- scripted
SCRIPT = """
# a short tour
W     .      A red balloon appears.
W+D   right
None  up     x2
"""


def test_scripted_policy_replays_text_file_and_list(tmp_path):
    expected = [s.as_action() for s in parse_script(SCRIPT)]
    assert [a["move"] for a in expected] == [1, 6, 0, 0]
    path = tmp_path / "tour.txt"
    path.write_text(SCRIPT)
    for source in (SCRIPT, path, parse_script(SCRIPT), expected):
        p = ScriptedPolicy(source)
        p.reset("ignored")
        assert [p.act(None, {}) for _ in range(4)] == expected
        assert p.done
    assert [ScriptedPolicy.from_file(path).act(None, {}) for _ in range(1)] == expected[:1]


def test_scripted_policy_when_done():
    steps = [{"move": 1, "look": 2, "event": "Rain."}]
    assert ScriptedPolicy(steps).act() and ScriptedPolicy(steps, "still").steps == steps
    for mode, after in [
        ("still", {"move": 0, "look": 0, "event": ""}),
        ("repeat_last", {"move": 1, "look": 2, "event": ""}),
        ("loop", {"move": 1, "look": 2, "event": "Rain."}),
    ]:
        p = ScriptedPolicy(steps, when_done=mode)
        p.act()
        assert p.act() == after
    p = ScriptedPolicy(steps, when_done="raise")
    p.act()
    with pytest.raises(ScriptExhausted, match="1 steps"):
        p.act()
    p.reset()
    assert p.act() == steps[0]


def test_scripted_policy_bad_input(tmp_path):
    with pytest.raises(ScriptError, match="move 'Q'"):
        ScriptedPolicy("Q .")
    (tmp_path / "tour.txt").write_text(SCRIPT)
    with pytest.raises(ScriptError, match="pathlib.Path"):
        ScriptedPolicy(str(tmp_path / "tour.txt"))
    with pytest.raises(FileNotFoundError, match="not a file"):
        ScriptedPolicy(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match=r"script\[1\]: action\['move'\]: got 12"):
        ScriptedPolicy([{"move": 0, "look": 0}, {"move": 12, "look": 0}])
    with pytest.raises(TypeError, match="script: got int"):
        ScriptedPolicy(5)
    with pytest.raises(ValueError, match="when_done: got 'stop'"):
        ScriptedPolicy(SCRIPT, when_done="stop")


# ---------------------------------------------------------------------------------------------- grammar
CASES = {
    "walk forward, then turn left and look up": "W still | None up+left",
    "strafe right twice": "D still | D still",
    "look down": "None down",
    "go back": "S still",
    "stand still": "None still",
    "turn around": " | ".join(["None right"] * 5),  # 180 degrees at 40 per block, rounded
    "turn around to the left": " | ".join(["None left"] * 5),
    "forward + left": "W+A still",
    "walk forward and left": "W+A still",
    "look up while turning right": "None up+right",
    "walk forward looking up": "W up",
    "walk forward for 2 blocks": "W still | W still",
    "walk forward 3 times and then turn right": "W still | W still | W still | None right",
    "walk forward twice and turn left": "W still | W still | None left",
    "look up and down": "None up | None down",
    "turn around and walk back": " | ".join(["None right"] * 5 + ["S still"]),
    "turn left 90 degrees": "None left | None left",
    "look up 40 degrees": "None up | None up",
    "walk 6 meters": "W still | W still",
    "take a step back": "S still",
    "back up, then move left x3": "S still | A still | A still | A still",
    "walk down the street": "W still",
    "keep walking forward as fast as possible": "W still",
    "look straight ahead": "None still",
    "stand still and look up": "None up",
    "W+A, then S": "W+A still | S still",
    "press W+A twice": "W+A still | W+A still",
    "\u2192, \u2191\u2190": "None right | None up+left",
    "first, walk forward. Finally, stop.": "W still | None still",
    "wait for two steps": "None still | None still",
    'walk forward while "it starts to rain"': "W still it starts to rain",
    "walk forward while it starts to rain": "W still It starts to rain.",
    "walk forward as the lights go out": "W still The lights go out.",
    '"A red balloon appears", then walk forward': "None still A red balloon appears | W still",
    "Turn right, then walk forward for two blocks as the sun sets.": "None right | W still The sun sets. | W still",
}


@pytest.mark.parametrize("instruction", list(CASES))
def test_plan_grammar(instruction):
    assert plan_script(instruction).strip().replace("\n", " | ") == CASES[instruction]


def test_plan_returns_valid_actions_and_events_only_on_the_first_block():
    space = action_space()
    actions = plan('walk forward 3 times while "fog rolls in", then look left')
    assert all(space.contains(a) for a in actions)
    assert [a["event"] for a in actions] == ["fog rolls in", "", "", ""]
    assert plan("turn left 90 degrees", turn_degrees=90.0) == [{"move": 0, "look": 2, "event": ""}]
    assert len(plan("walk 10 meters", meters_per_block=5.0)) == 2


@pytest.mark.parametrize(
    "instruction, match",
    [
        (
            "dance wildly",
            "could not read 'dance wildly' \\(unknown words: 'dance', 'wildly'\\); accepted: motions",
        ),
        ("", "got an empty string"),
        ("walk up", "cannot move up or down"),
        ("turn", "turn which way"),
        ("strafe", "strafe which way"),
        ("walk forward while walking back", "opposite motions"),
        ("walk forward while turning", "turn which way"),  # a motion error, not an event
        ('say "hi', "not closed"),
        ("walk forward 2000 times", "1 to 1000"),
        ("turn left 5 meters", "meters need a movement"),
        ("walk 90 degrees", "degrees need a turn"),
        ("walk around", "'around' goes with a turn"),
        ("walk forward twice 3 times", "more than one count"),
        ('walk "\u00e9t\u00e9"', "printable ASCII"),
        ('walk "rain" while "snow"', "two events"),
    ],
)
def test_plan_errors_name_what_was_wrong(instruction, match):
    with pytest.raises(InstructionError, match=match):
        plan(instruction)


def test_plan_bad_arguments():
    with pytest.raises(TypeError, match="instruction: got int"):
        plan(3)
    with pytest.raises(ValueError, match="turn_degrees: got 0"):
        plan("turn left", turn_degrees=0)


def test_follower_policy_plays_the_plan():
    p = RuleBasedInstructionFollower()
    p.reset("walk forward, then turn left")
    assert [p.act(None, {}) for _ in range(3)] == [
        {"move": 1, "look": 0, "event": ""},
        {"move": 0, "look": 2, "event": ""},
        {"move": 0, "look": 0, "event": ""},
    ]
    assert p.done
    p = RuleBasedInstructionFollower(when_done="repeat_last")
    p.reset("look up")
    assert [p.act(None, {})["look"] for _ in range(3)] == [3, 3, 3]
    p.reset("")
    assert p.steps == [] and p.act(None, {}) == {"move": 0, "look": 0, "event": ""}
    with pytest.raises(InstructionError):
        p.reset("juggle")


def test_follower_moves_the_procedural_camera_as_told():
    env = gym.make("YumeProcedural-v0", **PROC)
    _, info = env.reset(seed=2)
    yaw0, pitch0 = info["yaw"][-1], info["pitch"][-1]
    p = RuleBasedInstructionFollower()  # rates = the procedural world's defaults
    p.reset("turn left 80 degrees, then look up")
    for _ in range(3):
        _, _, _, _, info = env.step(p.act(None, info))
    assert (info["yaw"][-1] - yaw0) % 360 == pytest.approx(280.0)
    assert info["pitch"][-1] - pitch0 == pytest.approx(20.0)


def test_agents_follow_the_policy_protocol(tmp_path):
    for agent in (RandomPolicy(seed=0), ScriptedPolicy(SCRIPT), RuleBasedInstructionFollower()):
        assert isinstance(agent, Policy)
        assert isinstance(agent.name, str)


# ---------------------------------------------------------------------------------------------- PPO
def test_pose_instruction_reward_scores_motion():
    env = PoseInstructionReward(gym.make("YumeProcedural-v0", **PROC), "turn right")
    env.reset(seed=0)
    rewards = {}
    for name, action in [("right", (0, 1)), ("left", (0, 2)), ("still", (0, 0)), ("walk+right", (1, 1))]:
        _, rewards[name], _, _, info = env.step({"move": action[0], "look": action[1]})
    assert rewards["right"] == pytest.approx(1.0)
    assert rewards["left"] == pytest.approx(-1.0)
    assert rewards["still"] == pytest.approx(0.0)
    assert rewards["walk+right"] < 0.5  # walking was not asked for
    np.testing.assert_allclose(info["instructed_motion"], [0, 0, 1, 0])
    with pytest.raises(ValueError, match="no move_speed"):
        PoseInstructionReward(_NoPose(), "turn right")
    with pytest.raises(InstructionError):
        PoseInstructionReward(gym.make("YumeProcedural-v0", **PROC), "do a backflip")


class _NoPose(gym.Env):
    observation_space = gym.spaces.Box(0, 255, (4, 4, 3), np.uint8)
    action_space = action_space()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo")
    logdir = tmp_path_factory.mktemp("sb3-logs")
    with pytest.MonkeyPatch.context() as mp:
        # SB3's default logger makes an SB3-<date> folder in the temp dir; the agent must not use it
        mp.delenv("SB3_LOGDIR", raising=False)
        mp.setattr(tempfile, "tempdir", str(logdir))
        result = _train(out)
    assert not list(logdir.glob("SB3-*")), "training left an SB3 logger folder behind"
    return result


def _train(out):
    return train_ppo(
        out,
        env_kwargs={**PROC, "max_episode_steps": 8},
        instruction="turn right",
        total_timesteps=64,
        n_steps=32,
        batch_size=16,
        n_epochs=1,
        size=(36, 36),
        features_dim=32,
    )


def test_train_ppo_saves_model_and_curve(trained):
    assert trained.path.is_file() and trained.path.with_suffix(".json").is_file()
    assert len(trained.episode_returns) == 8 and trained.episode_end_steps[-1] == 64
    policy = trained.policy()
    assert isinstance(policy, Policy) and policy.instruction == "turn right"
    assert policy.meta["observation_shape"] == [3, 36, 36] and policy.meta["n_actions"] == 81


def test_ppo_policy_acts_like_the_sb3_model(trained):
    from yume_env.envs.wrappers import ChannelFirstFrames

    policy = PPOPolicy(trained.path)
    env = gym.make("YumeProcedural-v0", **PROC)
    obs, info = env.reset(seed=1)
    wrapped = ChannelFirstFrames(gym.make("YumeProcedural-v0", **PROC), size=(36, 36))
    wobs, _ = wrapped.reset(seed=1)
    for _ in range(3):
        action = policy.act(obs, info)
        index, _ = trained.model.predict(wobs, deterministic=True)
        assert action == {"move": int(index) // 9, "look": int(index) % 9, "event": ""}
        obs, _, _, _, info = env.step(action)
        wobs, *_ = wrapped.step(action)
    same = PPOPolicy.from_model(trained.model, size=(36, 36))
    assert same.act(obs, info) == policy.act(obs, info)


def test_ppo_policy_bad_input(trained, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PPOPolicy(tmp_path / "nothing.zip")
    lone = tmp_path / "lone.zip"
    lone.write_bytes(Path(trained.path).read_bytes())
    with pytest.raises(FileNotFoundError, match="from_model"):
        PPOPolicy(lone)
    policy = PPOPolicy(trained.path)
    with pytest.raises(ValueError, match="uint8 frames"):
        policy.act(np.zeros((36, 36), np.float32), {})
    with pytest.raises(ValueError, match="162 actions .* the network has 81"):
        PPOPolicy.from_model(trained.model, size=(36, 36), events=["It rains."])
    with pytest.raises(ValueError, match="total_timesteps: got 0"):
        train_ppo(tmp_path, total_timesteps=0)
