"""The batched world protocol (WorldStream, ProceduralWorlds), per-world vector snapshots, and the
Gymnasium-vector-to-SB3 adapter. No Ray here."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import yume_env  # noqa: F401
from yume_env.envs.model_cache import get_model
from yume_env.envs.procedural_worlds import ProceduralWorlds
from yume_env.envs.sb3_vector import GymVectorToSB3, unbatch_infos
from yume_env.envs.vector import VectorWorldSnapshot, YumeWorldVectorEnv
from yume_env.world.protocol import BatchedWorlds
from yume_env.world.stream import Action, WorldStream

SMALL = (32, 64)
IMAGE = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)


def _act(n: int, move: int = 1, look: int = 2) -> dict:
    return {"move": np.full(n, move), "look": np.full(n, look), "event": ("",) * n}


def test_world_stream_and_procedural_worlds_implement_the_protocol():
    stream = WorldStream(get_model("tiny"), num_worlds=2, resolution=SMALL)
    worlds = ProceduralWorlds(2, resolution=(24, 40), frames_per_block=3)
    assert isinstance(stream, BatchedWorlds) and isinstance(worlds, BatchedWorlds)
    assert worlds.resolution == (24, 40) and worlds.frames_per_block == 3
    out = worlds.reset(0, prompt="fog rolls in", seed=4)
    worlds.reset(1, seed=5)
    assert out.frames.shape == (3, 24, 40, 3) and out.latents is None and out.info["event"] == "fog rolls in"
    outs = worlds.step([Action(1, 1, ""), None])
    assert outs[1] is None and outs[0].info["block_index"] == 1
    worlds.fork(0, 1)
    a, b = worlds.step([Action(0, 2, "")] * 2)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(worlds.last_frames(1), b.frames)
    with pytest.raises(ValueError, match="image: a procedural world starts from its seed"):
        worlds.reset(0, image=IMAGE)
    with pytest.raises(TypeError, match=r"actions\[1\]: got dict"):
        worlds.step([None, {"move": 0}])
    stream.reset(0, image=IMAGE, seed=1)
    assert stream.last_frames(0).shape == (29, *SMALL, 3) and stream.last_frames(1) is None


def test_vector_world_snapshots_restore_world_and_episode():
    venv = YumeWorldVectorEnv(
        num_envs=2, image=IMAGE, resolution=SMALL, obs_mode="latent", max_episode_steps=2
    )
    venv.reset(seed=3)
    venv.step(_act(2))
    snap = venv.snapshot_world(0)
    assert isinstance(snap, VectorWorldSnapshot) and snap.steps == 1 and not snap.ended
    obs_a, _, _, trunc_a, _ = venv.step(_act(2, 2, 1))
    obs_b, _, _, _, info_b = venv.step(_act(2))  # NEXT_STEP: this resets both worlds
    venv.restore_world(0, snap)
    venv.fork_world(0, 1)  # both worlds are now world 0 after one step
    obs, _, _, trunc, _ = venv.step(_act(2, 2, 1))
    assert np.array_equal(obs[0], obs_a[0]) and np.array_equal(obs[1], obs_a[0])
    assert trunc.all() and trunc_a.all()  # the step counter came back too
    obs, _, _, _, info = venv.step(_act(2))  # ... and the autoreset seed
    assert np.array_equal(obs[0], obs_b[0]) and info["seed"][0] == info_b["seed"][0]
    with pytest.raises(TypeError, match="snapshot: got dict"):
        venv.restore_world(0, {})
    fresh = YumeWorldVectorEnv(num_envs=1, image=IMAGE, resolution=SMALL, obs_mode="latent")
    with pytest.raises(gym.error.ResetNeeded, match="snapshot before reset"):
        fresh.snapshot_world(0)


def test_gym_vector_to_sb3_reports_terminal_observations_like_dummy_vec_env():
    venv = gym.make_vec(
        "YumeWorld-v0",
        num_envs=2,
        image=IMAGE,
        resolution=SMALL,
        max_episode_steps=1,
        autoreset_mode="SameStep",
    )
    with pytest.raises(ValueError, match="accepted: both"):
        GymVectorToSB3(venv, observation_fn=lambda x: x)
    env = GymVectorToSB3(
        venv,
        observation_fn=lambda frames: frames[:, -1],
        observation_space=gym.spaces.Box(0, 255, (*SMALL, 3), np.uint8),
    )
    env.seed(7)
    first = env.reset()
    assert first.shape == (2, *SMALL, 3) and env.reset_infos[1]["seed"] is not None
    env.step_async(_act(2))
    obs, rewards, dones, infos = env.step_wait()
    assert dones.tolist() == [True, True] and rewards.dtype == np.float32
    assert infos[0]["TimeLimit.truncated"] and infos[0]["block_index"] == 1  # the last step's info
    assert infos[0]["terminal_observation"].shape == (*SMALL, 3)
    assert infos[0]["terminal_observation"].flags.writeable
    assert env.reset_infos[0]["block_index"] == 0
    assert np.array_equal(obs, first)  # the reset observation: the start image again
    with pytest.raises(ValueError, match="autoreset_mode"):
        GymVectorToSB3(gym.make_vec("YumeWorld-v0", num_envs=1, image=IMAGE, resolution=SMALL))
    assert unbatch_infos({"a": np.array([1, 2]), "_a": np.array([False, True])}, 2) == [{}, {"a": 2}]


def test_make_vec_without_workers_stays_in_process():
    venv = gym.make_vec("YumeWorld-v0", num_envs=2, image=IMAGE, resolution=SMALL, obs_mode="latent")
    assert type(venv) is YumeWorldVectorEnv
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
