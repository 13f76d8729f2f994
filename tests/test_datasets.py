"""Minari datasets of played episodes: written, loaded back with minari, replayed bit for bit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("minari", reason="needs the 'data' extra (pip install 'yume-env[data]')")
pytest.importorskip("h5py", reason="needs the 'data' extra (pip install 'yume-env[data]')")

import minari  # noqa: E402

from yume_env.datasets import EpisodeRecorder, env_spec_for, replay_episode, write_dataset  # noqa: E402

EVENTS = ["", "It starts to rain.", "  ", "A red balloon appears."]


@pytest.fixture(autouse=True)
def minari_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def _play(env, episodes: int, steps: int, options=None):
    rng = np.random.default_rng(0)
    for ep in range(episodes):
        env.reset(seed=100 + ep, options=options)
        for k in range(steps):
            env.step({"move": int(rng.integers(9)), "look": int(rng.integers(9)), "event": EVENTS[k % 4]})


def test_procedural_dataset_round_trip():
    spec = env_spec_for("YumeProcedural-v0", resolution=(32, 48), frames_per_block=4)
    env = EpisodeRecorder(gym.make(spec))
    _play(env, 3, 4)
    ds = write_dataset("yume/procedural-test-v0", env, spec, algorithm_name="random")
    env.close()

    loaded = minari.load_dataset("yume/procedural-test-v0")
    assert loaded.total_episodes == 3 and loaded.total_steps == 12
    assert loaded.action_space == env.action_space
    rng = np.random.default_rng(0)
    for i, episode in enumerate(loaded.iterate_episodes()):
        assert episode.observations.shape == (5, 4, 32, 48, 3) and episode.observations.dtype == np.uint8
        assert list(episode.actions["event"]) == EVENTS
        want_moves = [int(rng.integers(9)) for _ in range(8)][::2]
        assert list(episode.actions["move"]) == want_moves
        assert list(episode.truncations) == [False, False, False, True]
        assert episode.infos["caption"][0].decode().startswith("First-person perspective.")
        assert episode.infos["position"].shape == (5, 4, 3)
        assert list(episode.infos["block_index"]) == [0, 1, 2, 3, 4]
        assert episode.infos["event"][2].decode() == "It starts to rain."
        assert episode.infos["timing"]["render_ms"].shape == (5,)
        meta = list(loaded.storage.get_episode_metadata([i]))[0]
        assert meta["seed"] == 100 + i
        replayed = replay_episode(loaded, i)
        np.testing.assert_array_equal(np.stack(replayed), episode.observations)
    del ds


def test_dataset_replay_detects_a_changed_action():
    spec = env_spec_for("YumeProcedural-v0", resolution=(32, 48), frames_per_block=2)
    env = EpisodeRecorder(gym.make(spec))
    _play(env, 1, 3)
    ds = write_dataset("yume/procedural-one-v0", env)  # the spec of the env gym.make built
    replayed = replay_episode(ds, 0)
    other = gym.make(spec)
    obs, _ = other.reset(seed=101)  # a different seed: a different neighbourhood
    assert not np.array_equal(obs, replayed[0])


def test_tiny_world_dataset_with_start_image_arrays_replays_bit_exactly():
    spec = env_spec_for("YumeWorld-v0", resolution=[32, 64], obs_mode="last_frame", steps=2)
    env = EpisodeRecorder(gym.make(spec))
    image = np.random.default_rng(1).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    _play(env, 2, 2, options={"image": image})
    ds = write_dataset("yume/tiny-test-v0", env, spec)
    assert ds.total_episodes == 2
    meta = list(ds.storage.get_episode_metadata([0]))[0]
    assert meta["options"]["image"].startswith("start_images/") and meta["seed"] == 100
    for i in range(2):
        episode = ds[i]
        replayed = replay_episode(ds, i, env=gym.make(spec))
        np.testing.assert_array_equal(np.stack(replayed), episode.observations)
        assert list(episode.infos["history_latents"])[0] >= 1


def test_missing_extra_message(monkeypatch):
    import builtins

    from yume_env.datasets import require_minari

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "minari":
            raise ImportError("no minari", name="minari")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"yume-env\[data\]"):
        require_minari()


def test_eval_cli_writes_a_minari_dataset(tmp_path, capsys):
    from yume_env.evaluation.cli import main

    argv = ["--policy", "rule", "--task", "turn-left", "--task", "walk-forward", "--resolution", "32x48"]
    argv += ["--out", str(tmp_path / "eval"), "--quiet", "--no-video", "--no-plots"]
    assert main([*argv, "--minari", "yume/eval-test-v0"]) == 0
    assert "wrote Minari dataset yume/eval-test-v0 (2 episodes" in capsys.readouterr().out
    ds = minari.load_dataset("yume/eval-test-v0")
    assert (
        ds.spec.env_spec.id == "YumeProcedural-v0" and ds.storage.metadata["algorithm_name"] == "rule_based"
    )
    for i in range(2):
        np.testing.assert_array_equal(np.stack(replay_episode(ds, i)), ds[i].observations)
    looks = [set(ds[i].actions["look"].tolist()) for i in range(2)]
    assert {2} in looks  # "turn left": the rule follower only pans left (look 2)
    # the same id again, or a malformed one: usage errors before anything runs
    assert main([*argv, "--minari", "yume/eval-test-v0"]) == 2
    assert "--minari: yume/eval-test-v0 already exists" in capsys.readouterr().err
    assert main([*argv, "--minari", "not an id!"]) == 2
    assert "--minari: got 'not an id!'" in capsys.readouterr().err


def test_write_dataset_needs_a_spec_and_episodes():
    from yume_env.envs.procedural_env import YumeProceduralEnv

    env = EpisodeRecorder(YumeProceduralEnv(resolution=(32, 48), frames_per_block=2))
    with pytest.raises(ValueError, match="episodes: got none"):
        write_dataset("yume/empty-v0", env, env_spec_for("YumeProcedural-v0"))
    _play(env, 1, 1)
    with pytest.raises(ValueError, match="env_spec: got None"):
        write_dataset("yume/nospec-v0", env)
