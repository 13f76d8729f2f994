"""Worlds sharded over Ray workers: world i equals the single env, forks cross workers, dead workers
are named and restarted. One local Ray (127.0.0.1, 2 CPUs) and one pool of 2 CPU workers are shared
by every test here (see conftest.py), so the actors load the model once."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import yume_env  # noqa: F401

ray = pytest.importorskip("ray", reason='ray is not installed (pip install "yume-env[ray]")')

from yume_env.distributed import (  # noqa: E402
    RayVectorEnv,
    RayWorlds,
    SnapshotRef,
    WorkerDiedError,
    WorkerPool,
)
from yume_env.distributed.shards import merge_infos, shard_indices  # noqa: E402
from yume_env.envs.vector import VectorWorldSnapshot  # noqa: E402
from yume_env.world.protocol import BatchedWorlds  # noqa: E402
from yume_env.world.stream import Action, WorldStream  # noqa: E402

pytestmark = pytest.mark.ray

N = 4
SMALL = (32, 64)
IMAGES = [(np.random.default_rng(i).random((40, 60, 3)) * 255).astype(np.uint8) for i in range(N)]
MOVES = [np.array([1, 2, 3, 4]), np.array([6, 0, 4, 8]), np.array([0, 5, 8, 1])]
LOOKS = [np.array([0, 1, 2, 3]), np.array([3, 4, 0, 5]), np.array([8, 0, 1, 2])]
EVENTS = [("", "it starts to rain", "", ""), ("fog rolls in", "", "", ""), ("", "", "the lights go out", "")]


def _actions(k: int) -> dict:
    return {"move": MOVES[k % 3], "look": LOOKS[k % 3], "event": EVENTS[k % 3]}


def _one(actions: dict, i: int) -> dict:
    return {"move": int(actions["move"][i]), "look": int(actions["look"][i]), "event": actions["event"][i]}


@pytest.fixture(scope="module")
def pool(ray_session):
    """Two CPU workers, one torch thread each, shared by the tests here (the model loads once)."""
    workers = WorkerPool(2, threads=1)
    workers.describe()  # wait until both have started
    yield workers
    workers.shutdown()


def _single_run(i: int, seed: int, ks: list[int], obs_mode: str) -> list[np.ndarray]:
    env = gym.make("YumeWorld-v0", image=IMAGES[i], resolution=SMALL, obs_mode=obs_mode)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for k in ks:
        out.append(env.step(_one(_actions(k), i))[0])
    return out


def test_shards_split_and_merge():
    assert shard_indices(5, 2) == [[0, 1, 2], [3, 4]]
    assert shard_indices(4, 4) == [[0], [1], [2], [3]]
    with pytest.raises(ValueError, match="workers: got 3 for 2 world"):
        shard_indices(2, 3)
    merged = merge_infos(
        4,
        [
            ([0, 1], {"a": np.array([1, 2]), "_a": np.array([True, True]), "world": np.array([0, 1])}),
            ([2, 3], {"a": np.array([0, 5]), "_a": np.array([False, True]), "world": np.array([0, 1])}),
        ],
    )
    assert merged["a"].tolist() == [1, 2, 0, 5] and merged["_a"].tolist() == [True, True, False, True]
    assert merged["world"].tolist() == [0, 1, 2, 3]  # renumbered to global indices


@pytest.mark.parametrize("obs_mode", ["frames", "latent"])
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_world_i_equals_a_single_env_with_two_workers(pool, one_thread, mode, obs_mode):
    venv = gym.make_vec(
        "YumeWorld-v0",
        num_envs=N,
        workers=pool,
        image=IMAGES,
        resolution=SMALL,
        obs_mode=obs_mode,
        max_episode_steps=2,
        autoreset_mode=mode,
    )
    assert isinstance(venv, RayVectorEnv) and venv.shards == [[0, 1], [2, 3]]
    assert venv.metadata["autoreset_mode"] == mode
    assert venv.observation_space.shape[0] == N
    obs, info = venv.reset(seed=100)
    assert obs.flags.writeable and info["seed"].shape == (N,)
    frames = [obs]
    obs, rew, term, trunc, info = venv.step(_actions(0))
    frames.append(obs)
    assert not trunc.any() and info["world"].tolist() == [0, 1, 2, 3]
    obs, rew, term, trunc, info = venv.step(_actions(1))
    assert trunc.all() and not term.any()
    if mode == AutoresetMode.SAME_STEP:
        assert info["_final_obs"].all() and info["final_info"]["world"].tolist() == [0, 1, 2, 3]
        assert not info["final_obs"][0].flags.writeable  # a zero-copy view into the object store
        frames.append(np.stack(info["final_obs"]))
        assert (info["block_index"] == 0).all()  # the reset observation
    else:
        frames.append(obs)
    for i in range(N):
        single = _single_run(i, 100 + i, [0, 1], obs_mode)
        for k in range(3):
            assert np.array_equal(frames[k][i], single[k]), (mode, obs_mode, i, k)

    if mode == AutoresetMode.NEXT_STEP:
        obs, rew, term, trunc, info = venv.step(_actions(2))  # resets every world, ignores the action
        assert (rew == 0).all() and (info["block_index"] == 0).all()
    elif mode == AutoresetMode.DISABLED:
        with pytest.raises(gym.error.ResetNeeded, match="reset_mask"):
            venv.step(_actions(2))
        obs, info = venv.reset(options={"reset_mask": np.array([False, True, True, False])})
        assert info["_seed"].tolist() == [False, True, True, False]
        with pytest.raises(gym.error.ResetNeeded, match=r"world\(s\) \[0, 3\] ended"):
            venv.step(_actions(2))  # global indices, on both workers
    venv.close()
    assert len(pool.handles) == 2  # a pool passed in outlives the env


def test_infos_match_the_in_process_vector_env(pool, one_thread):
    kwargs = {"num_envs": N, "image": IMAGES, "resolution": SMALL, "obs_mode": "latent"}
    remote = gym.make_vec("YumeWorld-v0", workers=pool, **kwargs)
    local = gym.make_vec("YumeWorld-v0", **kwargs)
    for env in (remote, local):
        env.reset(seed=[3, None, 5, 6], options={"prompt": ["", "a red balloon appears", "", ""]})
    _, _, _, _, info_r = remote.step(_actions(0))
    _, _, _, _, info_l = local.step(_actions(0))
    assert info_r.keys() == info_l.keys()
    assert info_r["batch_size"].tolist() == [2] * N and info_l["batch_size"].tolist() == [N] * N
    for key in info_l.keys() - {"batch_size"}:  # each worker batched its own 2 worlds
        assert np.array_equal(info_r[key], info_l[key]), key
    remote.close()


def test_fork_across_workers_reproduces_the_source_future(pool, one_thread):
    venv = gym.make_vec("YumeWorld-v0", num_envs=N, workers=pool, image=IMAGES, resolution=SMALL)
    venv.reset(seed=7)
    venv.step(_actions(0))
    assert venv.worker_of(0) == 0 and venv.worker_of(3) == 1
    snap, snap_1 = venv.snapshot(0), venv.snapshot(1)
    assert isinstance(snap, SnapshotRef) and isinstance(snap.get(), VectorWorldSnapshot)
    venv.fork(0, 3)  # worker 0 -> worker 1, through the object store
    same = {"move": np.array([2, 0, 0, 2]), "look": np.array([1, 0, 0, 1]), "event": ("fog", "", "", "fog")}
    obs, *_ = venv.step(same)
    assert np.array_equal(obs[0], obs[3])
    future = obs[0].copy()
    # the snapshot replays the same future on its own worker too (world 1 goes back with it: worlds
    # batched at different history lengths agree only to float rounding)
    venv.restore(0, snap)
    venv.restore(1, snap_1)
    obs, *_ = venv.step(same)
    assert np.array_equal(obs[0], future)
    with pytest.raises(IndexError, match="target: got 4"):
        venv.fork(0, 4)
    venv.close()


def test_bad_actions_name_the_global_world_and_change_nothing(pool):
    venv = gym.make_vec(
        "YumeWorld-v0", num_envs=N, workers=pool, image=IMAGES, resolution=SMALL, obs_mode="latent"
    )
    venv.reset(seed=0)
    bad = {"move": np.array([0, 0, 0, 0]), "look": np.array([0, 0, 0, 9]), "event": ("",) * N}
    with pytest.raises(ValueError, match=r"world 3: action\['look'\]: got 9"):
        venv.step(bad)
    with pytest.raises(ValueError, match=r"move shape \(3,\)"):
        venv.step({"move": np.zeros(3, int), "look": np.zeros(4, int), "event": ("",) * N})
    _, _, _, _, info = venv.step({"move": np.zeros(4, int), "look": np.zeros(4, int)})  # event optional
    assert (info["block_index"] == 1).all()  # the failed steps changed nothing
    with pytest.raises(ValueError, match="image: got 3 entries"):
        RayVectorEnv(num_envs=N, workers=pool, image=IMAGES[:3])
    with pytest.raises(ValueError, match="workers: got 0"):
        RayVectorEnv(num_envs=N, workers=0)
    with pytest.raises(ValueError, match="snapshot_every: YumeProcedural-v0"):
        RayVectorEnv("YumeProcedural-v0", num_envs=N, workers=pool, snapshot_every=1)
    venv.close()


def test_procedural_world_on_workers_equals_the_in_process_vector_env(pool):
    kwargs = {"num_envs": N, "resolution": (24, 40), "frames_per_block": 2, "max_episode_steps": 2}
    remote = RayVectorEnv("YumeProcedural-v0", workers=pool, **kwargs)
    local = gym.make_vec("YumeProcedural-v0", vectorization_mode="sync", **kwargs)
    obs_r, _ = remote.reset(seed=11)
    obs_l, _ = local.reset(seed=11)
    assert np.array_equal(obs_r, obs_l)
    for k in range(3):
        out_r, out_l = remote.step(_actions(k)), local.step(_actions(k))
        for a, b in zip(out_r[:4], out_l[:4]):
            assert np.array_equal(a, b), k
    remote.close()


@pytest.mark.parametrize("obs_mode", ["frames", "last_frame"])
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_make_vec_procedural_with_workers_equals_the_in_process_one(pool, mode, obs_mode):
    kwargs = {
        "num_envs": N,
        "resolution": (24, 40),
        "frames_per_block": 2,
        "max_episode_steps": 2,
        "obs_mode": obs_mode,
        "autoreset_mode": mode,
    }
    remote = gym.make_vec("YumeProcedural-v0", workers=pool, **kwargs)
    local = gym.make_vec("YumeProcedural-v0", **kwargs)
    assert isinstance(remote, RayVectorEnv) and isinstance(remote.worlds, RayWorlds)
    assert (
        remote.worlds.latent_shape is None
        and remote.single_observation_space == local.single_observation_space
    )
    out_r, out_l = remote.reset(seed=3), local.reset(seed=3)
    assert np.array_equal(out_r[0], out_l[0]) and np.array_equal(out_r[1]["seed"], out_l[1]["seed"])
    truncated = np.zeros(N, bool)
    for k in range(4):
        if mode == AutoresetMode.DISABLED and truncated.any():
            mask = {"reset_mask": truncated}
            assert np.array_equal(remote.reset(options=mask)[0], local.reset(options=mask)[0])
        out_r, out_l = remote.step(_actions(k)), local.step(_actions(k))
        for a, b in zip(out_r[:4], out_l[:4]):
            assert np.array_equal(a, b), k
        assert np.array_equal(out_r[4]["block_index"], out_l[4]["block_index"]), k
        truncated = out_l[3]
    assert truncated.tolist() == [mode != AutoresetMode.NEXT_STEP] * N  # the second episode's end
    remote.close()
    local.close()


def test_ray_worlds_implement_the_protocol_like_a_world_stream(pool, one_thread):
    from yume_env.envs.model_cache import get_model

    worlds = RayWorlds(N, pool, resolution=SMALL)
    local = WorldStream(get_model("tiny"), num_worlds=N, resolution=SMALL)
    assert isinstance(worlds, BatchedWorlds) and isinstance(local, BatchedWorlds)
    assert worlds.resolution == local.resolution and worlds.frames_per_block == local.frames_per_block == 29
    for backend in (worlds, local):
        for i in range(N):
            backend.reset(i, image=IMAGES[i], seed=i)
    acts = [Action(1, 2, ""), Action(4, 0, ""), Action(0, 0, "fog"), Action(3, 1, "")]
    out_r, out_l = worlds.step(acts), local.step(acts)
    for i in range(N):
        assert np.array_equal(out_r[i].frames, out_l[i].frames) and out_r[i].caption == out_l[i].caption
    worlds.fork(0, 2)  # across workers
    local.fork(0, 2)
    acts = [Action(2, 2, ""), None, Action(2, 2, ""), None]
    out_r, out_l = worlds.step(acts), local.step(acts)
    assert out_r[1] is None and out_r[3] is None
    assert np.array_equal(out_r[2].frames, out_r[0].frames)
    assert np.array_equal(worlds.last_frames(2), out_l[2].frames)
    assert isinstance(worlds.snapshot(1), SnapshotRef)


def test_a_killed_worker_is_named_within_seconds_and_restarts_from_kept_snapshots(pool, one_thread):
    venv = gym.make_vec(
        "YumeWorld-v0",
        num_envs=N,
        workers=pool,
        image=IMAGES,
        resolution=SMALL,
        obs_mode="latent",
        snapshot_every=1,
    )
    venv.reset(seed=20)
    venv.step(_actions(0))
    venv.step(_actions(1))
    kept = venv.kept_snapshots
    assert all(isinstance(s, SnapshotRef) for s in kept)

    ray.kill(pool.handles[1])
    t0 = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"worker 1 held worlds \[2, 3\]") as err:
        venv.step(_actions(2))
    assert time.monotonic() - t0 < 10
    assert err.value.workers == [1] and err.value.worlds == [[2, 3]]
    with pytest.raises(WorkerDiedError, match="died earlier"):  # until restarted: at once, no call
        venv.step(_actions(2))

    assert venv.restart_worker(1) == []  # every world had a kept snapshot
    for i, snap in enumerate(kept):  # worker 0 finished the failed step: rewind it too, in lockstep
        venv.restore(i, snap)
    obs, *_ = venv.step(_actions(2))
    for i in range(N):
        assert np.array_equal(obs[i], _single_run(i, 20 + i, [0, 1, 2], "latent")[-1]), i
    venv.close()


def test_a_restarted_worker_without_snapshots_asks_for_a_reset(pool):
    venv = gym.make_vec(
        "YumeWorld-v0", num_envs=2, workers=pool, image=IMAGES[:2], resolution=SMALL, obs_mode="latent"
    )
    venv.reset(seed=1)
    ray.kill(pool.handles[0])
    with pytest.raises(WorkerDiedError, match=r"worker 0 held worlds \[0\]"):
        venv.reset(seed=1)
    assert venv.restart_worker(0) == [0]
    with pytest.raises(gym.error.ResetNeeded):
        venv.step({"move": np.zeros(2, int), "look": np.zeros(2, int), "event": ("", "")})
    obs, info = venv.reset(seed=[5, None], options={"reset_mask": np.array([True, False])})
    assert info["_seed"].tolist() == [True, False]
    venv.step({"move": np.zeros(2, int), "look": np.zeros(2, int), "event": ("", "")})
    venv.close()


def test_a_step_that_loses_a_worker_changes_no_world_on_the_live_ones(pool):
    venv = gym.make_vec(
        "YumeWorld-v0", num_envs=N, workers=pool, image=IMAGES, resolution=SMALL, obs_mode="latent"
    )
    venv.reset(seed=2)
    venv.step(_actions(0))
    assert isinstance(venv.stream, RayWorlds) and isinstance(venv.stream, BatchedWorlds)
    ray.kill(pool.handles[0])
    with pytest.raises(WorkerDiedError, match=r"worker 0 held worlds \[0, 1\]"):
        venv.step(_actions(1))
    # worker 1 stepped its worlds, then undid it: they and their episodes are one step in
    assert [venv.stream.block_index(i) for i in (2, 3)] == [1, 1] and venv._steps.tolist() == [1] * N
    assert venv.restart_worker(0) == [0, 1]  # no kept snapshots: worlds 0 and 1 need a reset
    with pytest.raises(gym.error.ResetNeeded, match="before reset"):
        venv.step(_actions(1))
    venv.reset(seed=[2, 3, None, None], options={"reset_mask": np.array([True, True, False, False])})
    _, _, _, _, info = venv.step(_actions(1))
    assert info["block_index"].tolist() == [1, 1, 2, 2]
    venv.close()


def test_an_owned_pool_ends_with_the_env():
    venv = RayVectorEnv("YumeProcedural-v0", num_envs=2, workers=1, resolution=(24, 40), frames_per_block=1)
    handle = venv.pool.handles[0]
    venv.close()
    assert venv.pool.handles == []
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(handle.describe.remote(), timeout=30)


def test_worker_pool_bad_arguments():
    with pytest.raises(ValueError, match="threads: got 0"):
        WorkerPool(1, threads=0)
    with pytest.raises(ValueError, match="num_gpus: got -1"):
        WorkerPool(1, num_gpus=-1)
