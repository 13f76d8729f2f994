"""PettingZoo envs: the director/explorer world and the batched explorers pass PettingZoo's API and
seed tests, merge actions into one caption, keep worlds independent, and refuse bad input clearly."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from yume_env.envs.multi_agent import DEFAULT_EVENTS, DirectedWorldEnv, ExplorersEnv
from yume_env.envs.procedural_env import YumeProceduralEnv

PROC = {"resolution": (32, 64), "frames_per_block": 3}
YUME = {"resolution": (32, 64)}  # a small tiny-model size that keeps a step cheap on a CPU
# The API and seed tests run many steps: latent observations skip the VAE decode (most of a step's time).
YUME_LATENT = {**YUME, "obs_mode": "latent"}


def api_and_seed(factory, cycles: int) -> None:
    with warnings.catch_warnings():
        # PettingZoo's API test resets with options={"options": 1}, which the envs ignore with a warning
        warnings.filterwarnings("ignore", message="reset options")
        parallel_api_test(factory(), num_cycles=cycles)
    parallel_seed_test(factory)


PROCEDURAL_FACTORIES = {
    "directed-catalog": lambda: DirectedWorldEnv("procedural", PROC, max_cycles=3),
    "directed-text-channel-first": lambda: DirectedWorldEnv(
        "procedural", PROC, max_cycles=3, director_text=True, channel_first=True, size=(36, 40), frames=2
    ),
    "explorers-move-look": lambda: ExplorersEnv(3, "procedural", PROC, max_cycles=3),
    "explorers-text": lambda: ExplorersEnv(
        2, "procedural", PROC, events="text", max_cycles=3, channel_first=True, size=(36, 36)
    ),
    "explorers-catalog": lambda: ExplorersEnv(2, "procedural", PROC, events=["It rains."], max_cycles=3),
}


@pytest.mark.parametrize("name", list(PROCEDURAL_FACTORIES))
def test_pettingzoo_api_and_seed_procedural(name):
    api_and_seed(PROCEDURAL_FACTORIES[name], cycles=3)


def test_pettingzoo_api_and_seed_directed_yume():
    api_and_seed(lambda: DirectedWorldEnv("yume", YUME_LATENT, max_cycles=2), cycles=2)


def test_pettingzoo_api_and_seed_explorers_yume():
    api_and_seed(lambda: ExplorersEnv(2, "yume", YUME_LATENT, max_cycles=2), cycles=2)


def test_spaces_and_defaults():
    env = DirectedWorldEnv("procedural", PROC)
    assert env.possible_agents == ["explorer", "director"]
    assert env.action_space("director") == gym.spaces.Discrete(1 + len(DEFAULT_EVENTS))
    assert set(env.action_space("explorer").spaces) == {"move", "look"}
    assert env.observation_space("explorer") is env.observation_space("director")
    assert env.observation_space("explorer").shape == (3, 32, 64, 3)
    assert env.max_cycles == 64
    assert "It starts to rain." in DEFAULT_EVENTS and "A red balloon appears." in DEFAULT_EVENTS
    cf = DirectedWorldEnv("procedural", PROC, channel_first=True, size=(36, 48), frames=3)
    assert cf.observation_space("explorer").shape == (9, 36, 48)
    ex = ExplorersEnv(2, "procedural", PROC, events="text")
    assert ex.possible_agents == ["explorer_0", "explorer_1"]
    assert set(ex.action_space("explorer_0").spaces) == {"move", "look", "event"}
    assert ex.action_space("explorer_0") is not ex.action_space("explorer_1")


def test_director_and_explorer_merge_into_one_caption():
    env = DirectedWorldEnv("procedural", PROC, max_cycles=4)
    obs, infos = env.reset(seed=3)
    assert set(obs) == set(infos) == {"explorer", "director"}
    rain = 1 + DEFAULT_EVENTS.index("It starts to rain.")
    obs, rew, term, trunc, infos = env.step({"explorer": {"move": 1, "look": 1}, "director": rain})
    info = infos["explorer"]
    assert info["action"] == {"move": 1, "look": 1, "event": "It starts to rain."}
    assert "(W)" in info["caption"] and "It starts to rain." in info["caption"]
    assert info["event_applied"] == "rain"
    assert infos["director"]["caption"] == info["caption"]
    np.testing.assert_array_equal(obs["explorer"], obs["director"])
    assert obs["explorer"] is not obs["director"]
    assert rew == {"explorer": 0.0, "director": 0.0}
    # 0 keeps the event: the caption still carries it
    _, _, _, _, infos = env.step({"explorer": {"move": 0, "look": 0}, "director": 0})
    assert infos["explorer"]["caption"].endswith("It starts to rain.")


def test_directed_matches_the_single_env():
    env = DirectedWorldEnv("procedural", PROC)
    single = YumeProceduralEnv(**PROC)
    obs, _ = env.reset(seed=11)
    ref, _ = single.reset(seed=11)
    np.testing.assert_array_equal(obs["explorer"], ref)
    for move, look, d in [(1, 0, 0), (6, 2, 6), (0, 3, 0)]:
        obs, *_ = env.step({"explorer": {"move": move, "look": look}, "director": d})
        ref, *_ = single.step({"move": move, "look": look, "event": "" if d == 0 else DEFAULT_EVENTS[d - 1]})
        np.testing.assert_array_equal(obs["explorer"], ref)


def test_text_director():
    env = DirectedWorldEnv("procedural", PROC, director_text=True)
    env.reset(seed=0)
    _, _, _, _, infos = env.step(
        {"explorer": {"move": 0, "look": 0}, "director": "Fog rolls in over the street."}
    )
    assert infos["director"]["event_applied"] == "fog"
    with pytest.raises(ValueError, match="printable ASCII"):
        env.step({"explorer": {"move": 0, "look": 0}, "director": "caf\u00e9"})


def test_rewards_are_pluggable_per_agent():
    seen = []

    def explorer_reward(obs, action, info):
        seen.append((obs.shape, action, info["block_index"]))
        return float(action["move"])

    env = DirectedWorldEnv("procedural", PROC, reward_fns={"explorer": explorer_reward})
    env.reset(seed=0)
    _, rew, *_ = env.step({"explorer": {"move": 3, "look": 0}, "director": 0})
    assert rew == {"explorer": 3.0, "director": 0.0}
    assert seen == [((3, 32, 64, 3), {"move": 3, "look": 0, "event": ""}, 1)]
    ex = ExplorersEnv(2, "procedural", PROC, reward_fns=lambda o, a, i: float(a["look"]))
    ex.reset(seed=0)
    _, rew, *_ = ex.step({"explorer_0": {"move": 0, "look": 2}, "explorer_1": {"move": 0, "look": 4}})
    assert rew == {"explorer_0": 2.0, "explorer_1": 4.0}


def test_truncation_empties_agents_and_refuses_more_steps():
    env = DirectedWorldEnv("procedural", PROC, max_cycles=2)
    env.reset(seed=0)
    act = {"explorer": {"move": 0, "look": 0}, "director": 0}
    _, _, _, trunc, _ = env.step(act)
    assert trunc == {"explorer": False, "director": False} and env.agents
    _, _, term, trunc, _ = env.step(act)
    assert trunc == {"explorer": True, "director": True} and term == {"explorer": False, "director": False}
    assert env.agents == []
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        env.step(act)
    env.reset()
    assert env.agents == ["explorer", "director"]


def test_explorers_worlds_are_independent_procedural():
    env = ExplorersEnv(3, "procedural", PROC)
    obs, _ = env.reset(seed=20)
    plans = [[(1, 0), (1, 1)], [(0, 2), (3, 0)], [(6, 3), (0, 0)]]
    got = {a: [] for a in env.possible_agents}
    for t in range(2):
        acts = {f"explorer_{i}": {"move": p[t][0], "look": p[t][1]} for i, p in enumerate(plans)}
        obs, *_ = env.step(acts)
        for a in env.possible_agents:
            got[a].append(obs[a])
    for i, p in enumerate(plans):
        single = YumeProceduralEnv(**PROC)
        single.reset(seed=20 + i)
        for t, (m, lk) in enumerate(p):
            ref, *_ = single.step({"move": m, "look": lk})
            np.testing.assert_array_equal(got[f"explorer_{i}"][t], ref)


def test_explorers_yume_world_equals_a_single_world():
    from yume_env.envs.yume_world import YumeWorldEnv

    env = ExplorersEnv(2, "yume", YUME, render_mode="rgb_array")
    env.reset(seed=5)
    obs, _, _, _, infos = env.step(
        {"explorer_0": {"move": 1, "look": 0}, "explorer_1": {"move": 4, "look": 2}}
    )
    assert infos["explorer_1"]["batch_size"] == 2  # both worlds went through one batched forward
    single = YumeWorldEnv(**YUME)
    single.reset(seed=6)
    ref, *_ = single.step({"move": 4, "look": 2, "event": ""})
    np.testing.assert_array_equal(obs["explorer_1"], ref)
    assert env.render().shape == (32, 128, 3)


def test_explorer_event_catalog_is_decoded():
    env = ExplorersEnv(2, "procedural", PROC, events=["A red balloon appears.", "Night falls."])
    env.reset(seed=1)
    _, _, _, _, infos = env.step(
        {"explorer_0": {"move": 0, "look": 0, "event": 2}, "explorer_1": {"move": 0, "look": 0, "event": 0}}
    )
    assert infos["explorer_0"]["event_applied"] == "night"
    assert infos["explorer_1"]["event_applied"] is None


def test_render():
    env = DirectedWorldEnv("procedural", PROC, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), obs["explorer"][-1])
    ex = ExplorersEnv(2, "procedural", PROC, render_mode="rgb_array")
    ex.reset(seed=0)
    assert ex.render().shape == (32, 128, 3)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: DirectedWorldEnv("dreams"), ValueError, "world: got 'dreams'; accepted: yume, procedural"),
        (lambda: DirectedWorldEnv("procedural", PROC, max_cycles=0), ValueError, "max_cycles: got 0"),
        (lambda: DirectedWorldEnv("procedural", PROC, events=["Rain.", "Rain."]), ValueError, "distinct"),
        (lambda: DirectedWorldEnv("procedural", PROC, events=["caf\u00e9"]), ValueError, "printable ASCII"),
        (
            lambda: DirectedWorldEnv("procedural", PROC, reward_fns={"judge": len}),
            ValueError,
            "unknown agents",
        ),
        (lambda: DirectedWorldEnv("procedural", PROC, reward_fns={"explorer": 1}), TypeError, "reward_fns"),
        (lambda: DirectedWorldEnv("procedural", PROC, size=(36, 36)), ValueError, "channel_first=True only"),
        (lambda: DirectedWorldEnv("procedural", {"reward_fn": len}), ValueError, "reward_fns="),
        (lambda: DirectedWorldEnv("procedural", PROC, render_mode="human"), ValueError, "render_mode"),
        (lambda: ExplorersEnv(0, "procedural", PROC), ValueError, "num_explorers: got 0"),
        (lambda: ExplorersEnv(2, "procedural", {"resolution": (5, 5)}), ValueError, "resolution"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_actions_leave_the_world_unchanged():
    env = DirectedWorldEnv("procedural", PROC)
    env.reset(seed=0)
    before = env.world.snapshot()
    bad = [
        ({"explorer": {"move": 1, "look": 0}}, ValueError, "missing \\['director'\\]"),
        (
            {"explorer": {"move": 1, "look": 0}, "director": 0, "judge": 1},
            ValueError,
            "unknown agents \\['judge'\\]",
        ),
        (
            {"explorer": {"move": 1, "look": 0}, "director": 99},
            ValueError,
            "director.*got 99; accepted: 0..9",
        ),
        ({"explorer": {"move": 1, "look": 0}, "director": "rain"}, TypeError, "director"),
        ({"explorer": {"move": 1, "look": 0, "event": "x"}, "director": 0}, ValueError, "events come from"),
        ({"explorer": {"move": 12, "look": 0}, "director": 0}, ValueError, "explorer.*move"),
        ("W", TypeError, "actions: got str"),
    ]
    for actions, error, match in bad:
        with pytest.raises(error, match=match):
            env.step(actions)
    after = env.world.snapshot()
    assert after["block_index"] == before["block_index"] == 0
    np.testing.assert_array_equal(after["pose"], before["pose"])
    ex = ExplorersEnv(2, "procedural", PROC)
    ex.reset(seed=0)
    with pytest.raises(ValueError, match="events=None"):
        ex.step({"explorer_0": {"move": 0, "look": 0, "event": "x"}, "explorer_1": {"move": 0, "look": 0}})
    with pytest.raises(KeyError, match="explorer_0, explorer_1"):
        ex.action_space("explorer_2")


def test_unknown_reset_options_warn():
    env = DirectedWorldEnv("procedural", PROC)
    with pytest.warns(UserWarning, match="not used"):
        env.reset(seed=0, options={"weather": "rain"})
    obs, infos = env.reset(seed=0, options={"event": "It starts to snow."})
    assert infos["explorer"]["event"] == "It starts to snow."
