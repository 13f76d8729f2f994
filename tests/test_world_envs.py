"""The generic envs over any world backend: the procedural world's backend under the same single and
vector env as the generated world, world i of the vector env equal to a single env's world."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from yume_env.envs.episodes import EpisodeSnapshot
from yume_env.envs.procedural_worlds import ProceduralWorlds
from yume_env.envs.validation import RewardFunctionError
from yume_env.envs.vector import VectorWorldSnapshot
from yume_env.envs.world_env import WorldEnv
from yume_env.envs.world_vector import WorldVectorEnv
from yume_env.envs.yume_world import YumeWorldEnv
from yume_env.world.protocol import BatchedWorlds

N = 4
WORLD = {"resolution": (24, 40), "frames_per_block": 2}
ACTIONS = [  # per step: (moves, looks, events) of the four worlds
    ([1, 2, 3, 4], [0, 1, 2, 3], ("", "snow falls", "", "")),
    ([6, 0, 4, 8], [3, 4, 0, 5], ("a balloon rises", "", "", "")),
    ([0, 5, 8, 1], [8, 0, 1, 2], ("", "", "night falls", "")),
]


def _actions(k: int) -> dict:
    moves, looks, events = ACTIONS[k % 3]
    return {"move": np.array(moves), "look": np.array(looks), "event": events}


def _one(actions: dict, i: int) -> dict:
    return {key: (value[i] if key == "event" else int(value[i])) for key, value in actions.items()}


def _reward(obs, action, info) -> float:
    return float(obs.mean()) / 255 + action["move"]


def _single(i: int, seed: int, ks: list[int]) -> list[tuple]:
    env = WorldEnv(ProceduralWorlds(1, **WORLD), max_episode_steps=2, reward_fn=_reward)
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, info["seed"])]
    for k in ks:
        obs, reward, _, truncated, info = env.step(_one(_actions(k), i))
        out.append((obs, reward, truncated))
        if truncated:
            obs, info = env.reset()
            out.append((obs, 0.0, info["seed"]))
    return out


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_procedural_world_i_under_the_vector_env_equals_a_single_env(mode):
    worlds = ProceduralWorlds(N, **WORLD)
    assert isinstance(worlds, BatchedWorlds) and worlds.latent_shape is None
    venv = WorldVectorEnv(worlds, mode, max_episode_steps=2, reward_fn=_reward)
    assert venv.single_observation_space.shape == (2, 24, 40, 3)
    obs, info = venv.reset(seed=11)
    singles = [_single(i, 11 + i, [0, 1]) for i in range(N)]
    for i in range(N):
        assert np.array_equal(obs[i], singles[i][0][0]) and info["seed"][i] == singles[i][0][2]
    obs, rew, _, trunc, info = venv.step(_actions(0))
    assert not trunc.any() and info["world"].tolist() == [0, 1, 2, 3]
    for i in range(N):
        assert np.array_equal(obs[i], singles[i][1][0]) and rew[i] == singles[i][1][1]
    obs, rew, _, trunc, info = venv.step(_actions(1))
    assert trunc.all()
    for i in range(N):
        ended, restarted = singles[i][2], singles[i][3]
        assert rew[i] == ended[1] and ended[2]
        if mode == AutoresetMode.SAME_STEP:
            assert np.array_equal(info["final_obs"][i], ended[0]) and not info["final_obs"][i].flags.writeable
            # the reset inside the ending step draws the seed the single env's next reset draws
            assert np.array_equal(obs[i], restarted[0]) and info["seed"][i] == restarted[2]
        else:
            assert np.array_equal(obs[i], ended[0])
    if mode == AutoresetMode.NEXT_STEP:
        obs, rew, _, _, info = venv.step(_actions(2))  # resets every world, ignores the action
        assert (rew == 0).all() and all(np.array_equal(obs[i], singles[i][3][0]) for i in range(N))
    venv.close()


def test_procedural_backend_transactions_and_snapshots():
    def flaky(obs, action, info):
        if info["world"] == 1 and action["move"] == 5:
            raise RuntimeError("scorer down")
        return 1.0

    venv = WorldVectorEnv(ProceduralWorlds(N, **WORLD), reward_fn=flaky)
    venv.reset(seed=3)
    venv.step(_actions(0))
    snap = venv.snapshot_world(1)
    assert isinstance(snap, EpisodeSnapshot) and VectorWorldSnapshot is EpisodeSnapshot and snap.steps == 1
    blocks = [venv.stream.block_index(i) for i in range(N)]
    with pytest.raises(RewardFunctionError, match="scorer down"):
        venv.step(_actions(2))  # world 1 moves 5: its reward fails, no world changes
    assert [venv.stream.block_index(i) for i in range(N)] == blocks and venv._steps.tolist() == [1] * N
    same = {"move": np.full(N, 1), "look": np.full(N, 2), "event": ("",) * N}
    venv.fork_world(1, 3)
    obs, *_ = venv.step(same)
    assert np.array_equal(obs[1], obs[3]) and not np.array_equal(obs[0], obs[1])
    future = obs[1].copy()
    venv.restore_world(0, snap)  # world 0 becomes world 1 before that step, episode included
    obs, _, _, _, info = venv.step(same)
    assert np.array_equal(obs[0], future) and venv._steps.tolist() == [2, 3, 3, 3]
    with pytest.raises(ValueError, match="obs_mode: got 'latent'; accepted for this world"):
        WorldVectorEnv(ProceduralWorlds(1, **WORLD), obs_mode="latent")
    with pytest.raises(ValueError, match="image: a procedural world starts from its seed"):
        WorldEnv(ProceduralWorlds(1, **WORLD), image=np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="worlds: got 2 worlds"):
        WorldEnv(ProceduralWorlds(2, **WORLD))


def test_single_and_vector_snapshots_are_one_type():
    image = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    env = YumeWorldEnv(image=image, resolution=(32, 64), obs_mode="latent")
    env.reset(seed=1)
    snap = env.snapshot()
    assert isinstance(snap, EpisodeSnapshot) and snap.steps == 0
    a = env.step({"move": 1, "look": 0})[0]
    env.restore(snap)
    assert np.array_equal(env.step({"move": 1, "look": 0})[0], a)


def test_latent_worlds_render_their_newest_frame_on_demand():
    """obs_mode="latent" decodes nothing per step; render() decodes the newest block when called and
    shows exactly what a frames-mode env shows, also after restore() and in the vector env."""
    import gymnasium as gym

    import yume_env  # noqa: F401

    kw = dict(resolution=(32, 64), steps=1, render_mode="rgb_array")
    latent = gym.make("YumeWorld-v0", obs_mode="latent", **kw)
    frames = gym.make("YumeWorld-v0", obs_mode="frames", **kw)
    latent.reset(seed=3)
    frames.reset(seed=3)
    np.testing.assert_array_equal(latent.render(), frames.render())  # the start image
    act = {"move": 1, "look": 1, "event": ""}
    latent.step(act)
    frames.step(act)
    first = latent.render()
    np.testing.assert_array_equal(first, frames.render())
    snap = latent.unwrapped.snapshot()
    latent.step(act)
    assert np.abs(latent.render().astype(int) - first).mean() > 1.0  # the world moved on
    latent.unwrapped.restore(snap)
    np.testing.assert_array_equal(latent.render(), first)

    vec = gym.make_vec("YumeWorld-v0", num_envs=2, obs_mode="latent", **kw)
    vec.reset(seed=3)
    vec.step({"move": np.array([1, 0]), "look": np.array([1, 0]), "event": ("", "")})
    np.testing.assert_array_equal(vec.render()[0], first)
    vec.close()


def test_reset_options_name_unknown_keys_and_change_nothing():
    import gymnasium as gym

    import yume_env  # noqa: F401

    single = gym.make("YumeWorld-v0", resolution=(32, 64), steps=1).unwrapped
    vector = gym.make_vec("YumeProcedural-v0", num_envs=2, resolution=(24, 40), frames_per_block=1)
    procedural = gym.make("YumeProcedural-v0", resolution=(24, 40), frames_per_block=1).unwrapped
    for env, accepted in [
        (single, "'image', 'prompt'"),
        (vector, "'reset_mask', 'image', 'prompt'"),
        (procedural, "'event'"),
    ]:
        with pytest.raises(
            ValueError, match=rf"^options: got unknown keys \['3', 'seedx'\]; accepted: {accepted}$"
        ):
            env.reset(options={"seedx": 1, 3: 0})
        with pytest.raises(
            TypeError, match=rf"^options: got 5 \(int\); accepted: None or a dict with keys {accepted}$"
        ):
            env.reset(options=5)
    assert not single.worlds.is_reset(0) and not procedural.worlds.is_reset(0)
    vector.close()
