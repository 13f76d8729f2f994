"""YumeWorld-v0: Gymnasium conformance, observation modes, and clear errors for every bad input."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from PIL import Image

import yume_env  # noqa: F401  (registers the environments)
import yume_env.envs.yume_world
from yume_env.envs.guards import EpisodeGuard
from yume_env.envs.model_cache import get_model
from yume_env.world.stream import NonFiniteOutputError

SMALL = (32, 64)  # a multiple of 32: fast on CPU
IMAGE = (np.random.default_rng(1).random((40, 70, 3)) * 255).astype(np.uint8)
GO = {"move": 1, "look": 0, "event": ""}


def make(**kw):
    kw = {"image": IMAGE, "resolution": SMALL, **kw}
    return gym.make("YumeWorld-v0", **kw)


def test_check_env_passes_with_frames():
    env = make(max_episode_steps=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)


def test_spaces_observations_and_info():
    env = make(max_episode_steps=2)
    obs, info = env.reset(seed=0)
    assert env.observation_space.shape == (29, 32, 64, 3) and env.observation_space.contains(obs)
    # reset from an image returns copies of the resized start image
    assert all(np.array_equal(obs[0], obs[t]) for t in range(29))
    obs, reward, terminated, truncated, info = env.step(
        {"move": 6, "look": 5, "event": "A red balloon appears."}
    )
    assert obs.shape == (29, 32, 64, 3) and obs.dtype == np.uint8
    assert reward == 0.0 and not terminated and not truncated
    assert info["caption"].startswith(
        "First-person perspective. The camera pushes forward and moves to the right (W+D)."
    )
    assert info["caption"].endswith("View rotation speed:4.A red balloon appears.")
    assert info["block_index"] == 1 and info["history_latents"] == 5 and info["frames"] == 29
    assert info["timing"].denoise_ms > 0
    _, _, _, truncated, info = env.step(GO)
    assert truncated and info["event"] == "A red balloon appears."


def test_obs_modes_and_render():
    env = make(obs_mode="last_frame", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 64, 3)
    obs, *_ = env.step(GO)
    frame = env.render()
    assert np.array_equal(frame, obs) and not np.shares_memory(frame, obs)
    lat = make(obs_mode="latent")
    obs, _ = lat.reset(seed=0)
    assert obs.shape == (48, 8, 2, 4) and obs.dtype == np.float32
    obs, *_ = lat.step(GO)
    assert lat.observation_space.contains(obs)


def test_same_seed_same_frames_and_snapshot_restore():
    env = make()
    env.reset(seed=7)
    a = [env.step({"move": m, "look": 1, "event": ""})[0] for m in (1, 2)]
    env.reset(seed=7)
    b = [env.step({"move": m, "look": 1, "event": ""})[0] for m in (1, 2)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    env.reset(seed=7)
    env.step({"move": 1, "look": 1, "event": ""})
    snap = env.unwrapped.snapshot()
    first = env.step({"move": 2, "look": 1, "event": ""})[0]
    other = env.step({"move": 3, "look": 2, "event": "fog rolls in"})[0]
    assert not np.array_equal(first, other)
    env.unwrapped.restore(snap)
    assert np.array_equal(env.step({"move": 2, "look": 1, "event": ""})[0], first)


def test_images_of_any_kind_are_accepted(tmp_path):
    gray16 = Image.fromarray((np.arange(50 * 30).reshape(30, 50) * 40).astype(np.uint16))
    rgba = Image.fromarray(np.dstack([IMAGE, np.full(IMAGE.shape[:2], 128, np.uint8)]), "RGBA")
    path = tmp_path / "street.png"
    Image.fromarray(IMAGE).save(path)
    sources = [
        path,
        str(path),
        gray16,
        rgba,
        IMAGE[..., 0],
        IMAGE.astype(np.float32) / 255,
        torch.from_numpy(IMAGE).permute(2, 0, 1),
    ]
    for src in sources:
        obs, _ = make(image=src, obs_mode="last_frame").reset(seed=0)
        assert obs.shape == (32, 64, 3)
    crop, _ = make(image=IMAGE, fit="crop", obs_mode="last_frame").reset(seed=0)
    stretch, _ = make(image=IMAGE, fit="stretch", obs_mode="last_frame").reset(seed=0)
    assert not np.array_equal(crop, stretch)


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        ("/no/such/street.png", FileNotFoundError, "image: no such file"),
        (np.zeros((0, 10, 3), np.uint8), ValueError, "image: got an empty array"),
        (np.zeros((10, 10, 3), np.int32), ValueError, "image: got an array of dtype int32"),
        (np.zeros((10, 10, 5), np.uint8), ValueError, r"image: got an array of shape \(10, 10, 5\)"),
        (np.full((10, 10, 3), 2.0, np.float32), ValueError, r"accepted: \[0, 1\]"),
        (np.full((10, 10, 3), np.nan, np.float32), ValueError, "NaN or Inf"),
        ([1, 2, 3], TypeError, "image: got list"),
    ],
)
def test_bad_images_are_rejected_at_construction(image, error, message):
    with pytest.raises(error, match=message):
        make(image=image)


def test_corrupt_and_zero_size_image_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    with pytest.raises(ValueError, match="image: cannot read .*bad.png as an image"):
        make(image=bad)
    with pytest.raises(ValueError, match="image: got a zero-size image"):
        make(image=Image.new("RGB", (0, 0)))


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        ({"move": 9, "look": 0, "event": ""}, ValueError, r"action\['move'\]: got 9; accepted: 0..8"),
        ({"move": -1, "look": 0}, ValueError, r"action\['move'\]: got -1"),
        ({"move": 0, "look": 12}, ValueError, r"action\['look'\]: got 12; accepted: 0..8"),
        ({"move": 1.5, "look": 0}, TypeError, r"action\['move'\]: got 1.5 \(float\)"),
        ({"move": True, "look": 0}, TypeError, r"action\['move'\]: got True"),
        ({"move": 0, "look": 0, "event": 42}, TypeError, r"action\['event'\]: got int"),
        (
            {"move": 0, "look": 0, "event": "x" * 301},
            ValueError,
            r"got 301 characters; accepted: at most 300",
        ),
        ({"move": 0, "look": 0, "event": "caf\u00e9\n"}, ValueError, "printable ASCII"),
        ({"move": 0}, ValueError, "missing key 'look'"),
        ({"move": 0, "look": 0, "speed": 3}, ValueError, r"unknown keys \['speed'\]"),
        (5, TypeError, "action: got int"),
    ],
)
def test_bad_actions_raise_and_leave_the_world_unchanged(action, error, message):
    env = make(obs_mode="latent")
    env.reset(seed=3)
    before = env.unwrapped.stream.snapshot(0)
    with pytest.raises(error, match=message):
        env.step(action)
    after = env.unwrapped.stream.worlds[0]
    assert after.block_index == before.state.block_index and torch.equal(after.history, before.state.history)


def test_step_before_reset_and_after_the_end():
    env = EpisodeGuard(make(obs_mode="latent", max_episode_steps=1))
    with pytest.raises(gym.error.ResetNeeded, match="before reset"):
        env.unwrapped.step(GO)
    env.reset(seed=0)
    assert env.step(GO)[3] is True
    with pytest.raises(gym.error.ResetNeeded, match="after the episode ended"):
        env.step(GO)
    # the environment's own limit (constructed directly) is enforced the same way
    direct = yume_env.envs.yume_world.YumeWorldEnv(
        image=IMAGE, resolution=SMALL, obs_mode="latent", max_episode_steps=1
    )
    direct.reset(seed=0)
    assert direct.step(GO)[3] is True
    with pytest.raises(gym.error.ResetNeeded, match="after the episode ended"):
        direct.step(GO)
    env.reset(seed=0)
    env.step(GO)  # a new episode works


def test_nan_from_the_model_is_reported_not_returned(monkeypatch):
    env = make(obs_mode="latent")
    env.reset(seed=1)
    model = env.unwrapped.model
    real = model.sample_block
    monkeypatch.setattr(model, "sample_block", lambda *a, **k: torch.full_like(real(*a, **k), float("inf")))
    with pytest.raises(NonFiniteOutputError, match="NaN/Inf"):
        env.step(GO)
    monkeypatch.setattr(model, "sample_block", real)
    assert env.unwrapped.stream.worlds[0].block_index == 0
    obs, *_ = env.step(GO)
    assert np.isfinite(obs).all()


def test_bad_constructor_arguments(tmp_path):
    with pytest.raises(ValueError, match="obs_mode: got 'pixels'"):
        make(obs_mode="pixels")
    with pytest.raises(ValueError, match="render_mode: got 'ansi'"):
        yume_env.envs.yume_world.YumeWorldEnv(image=IMAGE, resolution=SMALL, render_mode="ansi")
    with pytest.raises(ValueError, match="model: got 'huge'"):
        make(model="huge")
    with pytest.raises(ValueError, match="device: got 'tpu'"):
        make(device="tpu")
    with pytest.raises(ValueError, match="checkpoint: the yume-1.5-5b preset needs its weights"):
        make(model="yume-1.5-5b")
    with pytest.raises(ValueError, match=r"prompt: got characters"):
        make(prompt="\u2603 snow")
    with pytest.raises(ValueError, match="is not a directory"):
        make(checkpoint=tmp_path / "missing")
    (tmp_path / "Yume").mkdir()
    with pytest.raises(ValueError, match=r"missing config\.json, diffusion_pytorch_model\.safetensors"):
        make(checkpoint=tmp_path / "Yume")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            make(device="cuda")


def test_environments_share_one_model():
    a, b = make(), make()
    assert a.unwrapped.model is b.unwrapped.model is get_model("tiny", device="cpu")
