"""gym.make_vec("YumeWorld-v0"): N worlds through one model, equal to single envs, all autoreset modes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import yume_env  # noqa: F401
from yume_env.envs.vector import YumeWorldVectorEnv

SMALL = (32, 64)
IMAGES = [(np.random.default_rng(i).random((40, 60, 3)) * 255).astype(np.uint8) for i in range(3)]
MOVES = [np.array([1, 2, 3]), np.array([6, 0, 4]), np.array([0, 5, 8])]
LOOKS = [np.array([0, 1, 2]), np.array([3, 4, 0]), np.array([8, 0, 1])]
EVENTS = [("", "it starts to rain", ""), ("fog rolls in", "", ""), ("", "", "the lights go out")]


def _actions(k: int, n: int = 3) -> dict:
    return {"move": MOVES[k % 3][:n], "look": LOOKS[k % 3][:n], "event": EVENTS[k % 3][:n]}


def _single_run(i: int, seed: int, ks: list[int]) -> list[np.ndarray]:
    env = gym.make("YumeWorld-v0", image=IMAGES[i], resolution=SMALL)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for k in ks:
        a = _actions(k)
        out.append(
            env.step({"move": int(a["move"][i]), "look": int(a["look"][i]), "event": a["event"][i]})[0]
        )
    return out


def test_make_vec_uses_the_batched_entry_point_and_one_model():
    venv = gym.make_vec("YumeWorld-v0", num_envs=3, image=IMAGES, resolution=SMALL)
    assert isinstance(venv, YumeWorldVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert venv.observation_space.shape == (3, 29, 32, 64, 3)
    assert venv.single_action_space == yume_env.envs.action_space()
    assert venv.stream.num_worlds == 3  # one stream, one model, three worlds
    venv.reset(seed=0)
    venv.step(_actions(0))
    assert venv.stream.worlds[0].history_length == 13


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_world_i_equals_a_single_env_in_every_autoreset_mode(mode):
    venv = gym.make_vec(
        "YumeWorld-v0", num_envs=3, image=IMAGES, resolution=SMALL, max_episode_steps=2, autoreset_mode=mode
    )
    assert venv.metadata["autoreset_mode"] == mode
    obs, info = venv.reset(seed=100)
    frames = [obs]
    obs, rew, term, trunc, info = venv.step(_actions(0))
    frames.append(obs)
    assert not trunc.any()
    obs, rew, term, trunc, info = venv.step(_actions(1))
    assert trunc.all() and not term.any()
    if mode == AutoresetMode.SAME_STEP:
        # the ending step already returns the reset observation; the last block is in final_obs
        assert info["_final_obs"].all()
        frames.append(np.stack(info["final_obs"]))
        assert all(np.array_equal(obs[i, 0], obs[i, -1]) for i in range(3))  # start-image copies
    else:
        frames.append(obs)
    for i in range(3):
        single = _single_run(i, 100 + i, [0, 1])
        for k in range(3):
            assert np.array_equal(frames[k][i], single[k]), (mode, i, k)

    if mode == AutoresetMode.NEXT_STEP:
        obs, rew, term, trunc, info = venv.step(_actions(2))  # this step resets, the action is ignored
        assert (rew == 0).all() and not trunc.any() and (info["block_index"] == 0).all()
        assert all(np.array_equal(obs[i, 0], obs[i, -1]) for i in range(3))
    elif mode == AutoresetMode.DISABLED:
        with pytest.raises(gym.error.ResetNeeded, match="reset_mask"):
            venv.step(_actions(2))
        obs, info = venv.reset(options={"reset_mask": np.array([True, False, True])})
        assert info["_seed"].tolist() == [True, False, True]
        with pytest.raises(gym.error.ResetNeeded, match=r"world\(s\) \[1\] ended"):
            venv.step(_actions(2))


def test_worlds_at_different_lengths_match_single_envs_within_float_rounding():
    venv = gym.make_vec("YumeWorld-v0", num_envs=2, image=IMAGES[:2], resolution=SMALL, obs_mode="latent")
    venv.reset(seed=5)
    venv.step(_actions(0, 2))
    venv.reset(seed=[None, 9], options={"reset_mask": np.array([False, True])})  # world 1 restarts
    obs, *_ = venv.step(_actions(1, 2))
    lengths = [w.history_length for w in venv.stream.worlds]
    assert lengths == [21, 13]
    env = gym.make("YumeWorld-v0", image=IMAGES[1], resolution=SMALL, obs_mode="latent")
    env.reset(seed=9)
    a = _actions(1)
    single = env.step({"move": int(a["move"][1]), "look": int(a["look"][1]), "event": a["event"][1]})[0]
    np.testing.assert_allclose(obs[1], single, atol=1e-5, rtol=1e-5)


def test_vector_bad_inputs():
    with pytest.raises(ValueError, match="num_envs: got 0"):
        YumeWorldVectorEnv(num_envs=0, image=IMAGES[0], resolution=SMALL)
    with pytest.raises(ValueError, match="image: got 2 entries"):
        YumeWorldVectorEnv(num_envs=3, image=IMAGES[:2], resolution=SMALL)
    with pytest.raises(ValueError, match="autoreset_mode: got 'Later'"):
        YumeWorldVectorEnv(num_envs=2, image=IMAGES[0], resolution=SMALL, autoreset_mode="Later")
    venv = YumeWorldVectorEnv(num_envs=2, image=IMAGES[0], resolution=SMALL, obs_mode="latent")
    with pytest.raises(gym.error.ResetNeeded):
        venv.step({"move": np.array([0, 0]), "look": np.array([0, 0]), "event": ("", "")})
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"world 1: action\['look'\]: got 9"):
        venv.step({"move": np.array([0, 0]), "look": np.array([0, 9]), "event": ("", "")})
    with pytest.raises(ValueError, match=r"move shape \(3,\)"):
        venv.step({"move": np.array([0, 0, 0]), "look": np.array([0, 0]), "event": ("", "")})
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": [1, 0]})
    assert all(w.block_index == 0 for w in venv.stream.worlds)  # failed steps changed nothing
