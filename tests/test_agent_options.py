"""The PettingZoo envs' shared options (one frozen object, checked once), their worlds built through
the env families, and reward fns inside the step's transaction."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from yume_env.envs.agent_options import AgentEnvOptions
from yume_env.envs.multi_agent import DirectedWorldEnv, ExplorersEnv
from yume_env.envs.procedural_env import YumeProceduralEnv
from yume_env.envs.procedural_vector import YumeProceduralVectorEnv
from yume_env.envs.validation import RewardFunctionError

PROC = {"resolution": (32, 64), "frames_per_block": 3}
YUME_LATENT = {"resolution": (32, 64), "obs_mode": "latent"}


# ---------------------------------------------------------------------------------------------- options
def test_options_defaults_and_frozen():
    opts = AgentEnvOptions()
    assert (opts.world, opts.world_kwargs, opts.channel_first, opts.size, opts.frames) == (
        "yume",
        {},
        False,
        None,
        "last",
    )
    assert (opts.max_cycles, opts.reward_fns, opts.render_mode) == (64, None, None)
    assert opts.env_id == "YumeWorld-v0"
    assert AgentEnvOptions(world="procedural").reset_options == {"event": "prompt"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.max_cycles = 3


def test_options_copy_the_callers_dicts():
    kwargs, fns = dict(PROC), {"explorer": lambda o, a, i: 1.0}
    opts = AgentEnvOptions(world="procedural", world_kwargs=kwargs, reward_fns=fns)
    kwargs["resolution"], fns["director"] = (5, 5), len
    assert opts.world_kwargs == PROC and set(opts.reward_fns) == {"explorer"}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"world": "dreams"}, ValueError, "world: got 'dreams'; accepted: yume, procedural"),
        ({"world_kwargs": [1]}, TypeError, "world_kwargs: got list"),
        ({"world_kwargs": {"render_mode": "rgb_array"}}, ValueError, "pass render_mode="),
        ({"channel_first": 1}, TypeError, "channel_first: got 1"),
        ({"frames": 2}, ValueError, "channel_first=True only"),
        ({"max_cycles": True}, ValueError, "max_cycles: got True"),
        ({"max_cycles": 2.0}, ValueError, "max_cycles: got 2.0"),
        ({"reward_fns": 3}, TypeError, "reward_fns: got int"),
        ({"reward_fns": {"explorer": "x"}}, TypeError, r"reward_fns\['explorer'\]: got str"),
        ({"render_mode": "human"}, ValueError, "render_mode: got 'human'"),
    ],
)
def test_options_errors_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        AgentEnvOptions(**kwargs)


def test_envs_refuse_unknown_keywords_and_keep_theirs():
    with pytest.raises(
        TypeError, match="DirectedWorldEnv: got unexpected argument.*'frame_skip'.*max_cycles"
    ):
        DirectedWorldEnv("procedural", PROC, frame_skip=2)
    with pytest.raises(TypeError, match="ExplorersEnv: got unexpected argument"):
        ExplorersEnv(2, "procedural", PROC, colour=True)
    env = DirectedWorldEnv(
        world="procedural", world_kwargs=PROC, channel_first=True, size=(36, 40), frames=2, max_cycles=3
    )
    assert env.options == AgentEnvOptions("procedural", PROC, True, (36, 40), 2, 3)
    assert env.observation_space("director").shape == (6, 36, 40)
    assert env.max_cycles == 3 and env.world_name == "procedural"


# ---------------------------------------------------------------------------------------------- worlds
def test_explorers_are_the_procedural_vector_env_and_match_single_worlds():
    env = ExplorersEnv(2, "procedural", PROC, events="text", max_cycles=3)
    assert isinstance(env.vector, YumeProceduralVectorEnv)
    obs, infos = env.reset(seed=4, options={"event": "Fog rolls in."})
    singles = [YumeProceduralEnv(**PROC) for _ in range(2)]
    refs = [s.reset(seed=4 + i, options={"event": "Fog rolls in."}) for i, s in enumerate(singles)]
    for i, (ref_obs, ref_info) in enumerate(refs):
        np.testing.assert_array_equal(obs[f"explorer_{i}"], ref_obs)
        assert infos[f"explorer_{i}"]["effects"] == ref_info["effects"]
        assert infos[f"explorer_{i}"]["seed"] == ref_info["seed"]  # the scene seed of reset seed 4 + i
    acts = [{"move": 1, "look": 2, "event": "Night falls."}, {"move": 6, "look": 0, "event": ""}]
    obs, _, _, _, infos = env.step({f"explorer_{i}": a for i, a in enumerate(acts)})
    for i, (single, a) in enumerate(zip(singles, acts)):
        ref, _, _, _, ref_info = single.step(a)
        np.testing.assert_array_equal(obs[f"explorer_{i}"], ref)
        got = infos[f"explorer_{i}"]
        assert got["world"] == i and got["event_applied"] == ref_info["event_applied"]
        assert got["caption"] == ref_info["caption"] and got["block_index"] == ref_info["block_index"] == 1
        np.testing.assert_array_equal(got["position"], ref_info["position"])


def test_world_max_episode_steps_ends_the_episode_for_both_worlds():
    for world, kwargs in (("procedural", PROC), ("yume", YUME_LATENT)):
        env = ExplorersEnv(2, world, {**kwargs, "max_episode_steps": 1}, max_cycles=5)
        env.reset(seed=0)
        _, _, term, trunc, _ = env.step({a: {"move": 1, "look": 0} for a in env.possible_agents})
        assert trunc == {"explorer_0": True, "explorer_1": True} and not any(term.values())
        assert env.agents == []
        env.close()


# ---------------------------------------------------------------------------------------------- rewards
def _bad_after(n: int, bad):
    """A reward fn that returns ``bad()``'s value (or raises) from its ``n``-th call on."""
    calls = []

    def fn(obs, action, info):
        calls.append(info["block_index"])
        return bad() if len(calls) > n else float(info["block_index"])

    return fn


def _raise():
    raise RuntimeError("judge crashed")


BAD = [
    (_raise, RewardFunctionError, r"reward_fns\['director'\]: reward_fn raised RuntimeError: judge crashed"),
    (lambda: "1.0", TypeError, r"reward_fns\['director'\]: reward_fn: returned '1.0'"),
    (lambda: math.nan, ValueError, r"reward_fns\['director'\].*finite"),
]


@pytest.mark.parametrize("bad, error, match", BAD)
@pytest.mark.parametrize("world, kwargs", [("procedural", PROC), ("yume", YUME_LATENT)])
def test_directed_failing_reward_undoes_the_step(world, kwargs, bad, error, match):
    env = DirectedWorldEnv(world, kwargs, max_cycles=2, reward_fns={"director": _bad_after(1, bad)})
    ref = DirectedWorldEnv(world, kwargs, max_cycles=2, reward_fns={"director": _bad_after(9, bad)})
    first = {"explorer": {"move": 1, "look": 0}, "director": 6}
    second = {"explorer": {"move": 0, "look": 2}, "director": 0}
    for e in (env, ref):
        e.reset(seed=3)
        e.step(first)
    rng = env.world.np_random.bit_generator.state
    with pytest.raises(error, match=match):
        env.step(second)
    assert env.agents == ["explorer", "director"]
    assert env.world.np_random.bit_generator.state == rng
    if world == "procedural":
        assert env.world.snapshot()["block_index"] == 1
    # the world, the cycle count and the agents are as before: the next step is the reference's
    env.reward_fns["director"] = _bad_after(9, bad)
    got, ref_out = env.step(second), ref.step(second)
    np.testing.assert_array_equal(got[0]["explorer"], ref_out[0]["explorer"])
    assert got[1] == ref_out[1] == {"explorer": 0.0, "director": 2.0}
    assert got[3] == ref_out[3] == {"explorer": True, "director": True}  # max_cycles=2 reached now
    assert got[4]["explorer"]["caption"] == ref_out[4]["explorer"]["caption"]
    assert env.agents == []


@pytest.mark.parametrize("world, kwargs", [("procedural", PROC), ("yume", YUME_LATENT)])
def test_explorers_failing_reward_undoes_every_world(world, kwargs):
    def fns(n):
        return {"explorer_1": _bad_after(n, lambda: None)}

    env = ExplorersEnv(2, world, kwargs, events="text", max_cycles=2, reward_fns=fns(1))
    ref = ExplorersEnv(2, world, kwargs, events="text", max_cycles=2, reward_fns=fns(9))
    first = {
        "explorer_0": {"move": 1, "look": 0, "event": "It starts to rain."},
        "explorer_1": {"move": 2, "look": 1},
    }
    second = {
        "explorer_0": {"move": 3, "look": 4},
        "explorer_1": {"move": 0, "look": 2, "event": "Night falls."},
    }
    for e in (env, ref):
        e.reset(seed=8)
        e.step(first)
    before = [env.vector.snapshot_world(i) for i in range(2)]
    with pytest.raises(TypeError, match=r"reward_fns\['explorer_1'\]: reward_fn: returned None"):
        env.step(second)
    assert env.agents == ["explorer_0", "explorer_1"]
    for i in range(2):
        after = env.vector.snapshot_world(i)
        assert (after.steps, after.ended, after.rng_state) == (
            before[i].steps,
            before[i].ended,
            before[i].rng_state,
        )
        np.testing.assert_array_equal(after.observation, before[i].observation)
    env.reward_fns["explorer_1"] = fns(9)["explorer_1"]
    got, ref_out = env.step(second), ref.step(second)
    for a in env.possible_agents:
        np.testing.assert_array_equal(got[0][a], ref_out[0][a])
        assert got[4][a]["caption"] == ref_out[4][a]["caption"]
    assert got[1] == ref_out[1] == {"explorer_0": 0.0, "explorer_1": 2.0}
    assert got[3] == ref_out[3] == {"explorer_0": True, "explorer_1": True}
