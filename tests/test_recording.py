"""Every frame of every block: render_mode="rgb_array_list" and RecordEpisodeFrames."""

from __future__ import annotations

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

from yume_env.envs.procedural_env import YumeProceduralEnv
from yume_env.envs.recording import RecordEpisodeFrames
from yume_env.envs.yume_world import YumeWorldEnv

WALK = {"move": 1, "look": 1, "event": ""}


def test_procedural_rgb_array_list_returns_every_frame_since_the_last_render():
    env = YumeProceduralEnv(resolution=(32, 48), frames_per_block=5, render_mode="rgb_array_list")
    assert "rgb_array_list" in env.metadata["render_modes"]
    obs, _ = env.reset(seed=3)
    start = env.render()
    assert len(start) == 1
    np.testing.assert_array_equal(start[0], obs[0])
    blocks = [env.step(WALK)[0] for _ in range(2)]
    frames = env.render()
    assert len(frames) == 10
    np.testing.assert_array_equal(np.stack(frames), np.concatenate(blocks))
    assert env.render() == []
    env.step(WALK)
    env.reset(seed=4)
    assert len(env.render()) == 1  # reset drops what was not rendered


def test_render_mode_errors_name_the_accepted_modes():
    with pytest.raises(ValueError, match="accepted: None, 'rgb_array', 'rgb_array_list'"):
        YumeProceduralEnv(render_mode="human")
    with pytest.raises(ValueError, match="accepted: None, 'rgb_array', 'rgb_array_list'"):
        YumeWorldEnv(render_mode="rgb_arrays", resolution=(32, 64))


def test_yume_world_rgb_array_list_in_frames_and_latent_modes():
    """In latent mode the blocks are decoded for render(), exactly as decode="block" decodes them."""
    kw = dict(resolution=(32, 64), steps=1, render_mode="rgb_array_list")
    frames_env = YumeWorldEnv(**kw)
    latent_env = YumeWorldEnv(obs_mode="latent", **kw)
    assert "rgb_array_list" in frames_env.metadata["render_modes"]
    obs, _ = frames_env.reset(seed=5)
    latent_env.reset(seed=5)
    assert len(frames_env.render()) == 1 and len(latent_env.render()) == 1
    block, *_ = frames_env.step(WALK)
    latent_env.step(WALK)
    got = frames_env.render()
    assert len(got) == block.shape[0] == 29
    np.testing.assert_array_equal(np.stack(got), block)
    np.testing.assert_array_equal(np.stack(latent_env.render()), block)


def test_record_episode_frames_writes_every_frame_of_every_episode(tmp_path):
    env = YumeProceduralEnv(
        resolution=(32, 48), frames_per_block=4, obs_mode="last_frame", render_mode="rgb_array_list"
    )
    env = RecordEpisodeFrames(env, tmp_path / "videos", name_prefix="walk")
    for seed in (0, 1):
        env.reset(seed=seed)
        for _ in range(3):
            env.step(WALK)
        assert len(env.render()) == 4  # the latest block's frames
    env.close()
    assert [p.name for p in env.video_paths] == ["walk-0.mp4", "walk-1.mp4"]
    for path in env.video_paths:
        video = iio.imread(path, plugin="pyav")
        assert video.shape == (1 + 3 * 4, 32, 48, 3)
    # the frames are the env's (up to H.264): the last video frame is close to the last block's last frame
    ref = YumeProceduralEnv(resolution=(32, 48), frames_per_block=4)
    ref.reset(seed=1)
    for _ in range(3):
        obs, *_ = ref.step(WALK)
    assert np.abs(video[-1].astype(int) - obs[-1].astype(int)).mean() < 12


def test_record_episode_frames_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="render_mode: got 'rgb_array'; accepted: 'rgb_array_list'"):
        RecordEpisodeFrames(YumeProceduralEnv(render_mode="rgb_array"), tmp_path)
    env = YumeProceduralEnv(render_mode="rgb_array_list")
    with pytest.raises(ValueError, match="fps: got 0"):
        RecordEpisodeFrames(env, tmp_path, fps=0)
    rec = RecordEpisodeFrames(env, tmp_path, episode_trigger=lambda i: i == 1)
    rec.reset(seed=0)
    rec.step(WALK)
    rec.reset(seed=1)
    rec.step(WALK)
    rec.close()
    assert [p.name for p in rec.video_paths] == ["episode-1.mp4"]


def test_gym_make_passes_the_render_mode():
    env = gym.make("YumeProcedural-v0", resolution=(32, 48), frames_per_block=3, render_mode="rgb_array_list")
    env.reset(seed=0)
    env.step(WALK)
    assert len(env.render()) == 1 + 3
