"""Choosing the frame decoder: the official VAE (default) or a TAEHV tiny decoder, in worlds and envs.

The TAEHV files here are small random-weight decoders written in the published key layout (the real
ones are a download); on the tiny preset they run, with a warning that they were made for the 5B
latent space.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import yume_env  # noqa: F401  (registers the environments)
from yume_env.envs.model_cache import get_model
from yume_env.model.frame_decoder import TAEHVFrameDecoder, VAEFrameDecoder
from yume_env.model.pipeline import build_model
from yume_env.model.taehv import TAEHV, TAEHVConfig
from yume_env.world.stream import Action, WorldStream

IMAGE = (np.random.default_rng(3).random((40, 70, 3)) * 255).astype(np.uint8)
SMALL = (32, 64)
SMALL_TAE = {
    "taew2_2": TAEHVConfig(encoder_width=8, decoder_widths=(16, 8, 8, 8)),
    "taew2_2_super": TAEHVConfig(variant="super", encoder_width=8, decoder_widths=(16, 8, 8, 8)),
}


@pytest.fixture(scope="module")
def tae_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("taehv")
    paths = {}
    for name, cfg in SMALL_TAE.items():
        torch.manual_seed(1)
        state = {k: v.half() for k, v in TAEHV(cfg).state_dict().items()}
        paths[name] = folder / f"{name}.safetensors"
        save_file(state, str(paths[name]))
    return paths


@pytest.fixture(scope="module")
def model():
    return build_model("tiny", seed=2)


def _taehv(model, tae_files, name="taew2_2"):
    with pytest.warns(UserWarning, match="trained on the Wan2.2-5B latent space"):
        return model.frame_decoder(name, tae_files[name])


def test_default_decoder_is_the_vae_and_unchanged(model):
    dec = model.frame_decoder()
    assert isinstance(dec, VAEFrameDecoder) and dec is model.vae_decoder and dec.vae is model.vae
    lat = torch.randn(2, 48, 3, 2, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(dec.decode_block(lat), model.decode(lat))
    assert torch.equal(dec.decode_block(lat, last_frames=2), model.decode(lat)[:, :, -2:])


@pytest.mark.parametrize("name", ["taew2_2", "taew2_2_super"])
def test_taehv_block_and_stream_decode(model, tae_files, name):
    dec = _taehv(model, tae_files, name)
    assert isinstance(dec, TAEHVFrameDecoder) and dec.name == name and dec.dtype == torch.float32
    lat = torch.randn(2, 48, 8, 2, 4, generator=torch.Generator().manual_seed(1))
    frames = dec.decode_block(lat)
    assert frames.shape == (2, 3, 29, 32, 64) and frames.dtype == torch.float32
    assert frames.min() >= -1 and frames.max() <= 1
    # [0, 1] of the TAEHV -> [-1, 1]; per world on its own
    ref = dec.model.decode_video(lat[1:].permute(0, 2, 1, 3, 4)).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(frames[1:], ref * 2 - 1)
    stream = dec.new_stream()
    first, second = stream.decode(lat[:1, :, :4]), stream.decode(lat[:1, :, 4:])
    assert (first.shape[2], second.shape[2]) == (13, 16)
    torch.testing.assert_close(torch.cat([first, second], 2), frames[:1], atol=1e-5, rtol=0)


def test_decoder_argument_errors(model, tae_files):
    with pytest.raises(ValueError, match=r"decoder: got 'taesd'; accepted: vae, taew2_2, taew2_2_super"):
        model.frame_decoder("taesd")
    with pytest.raises(ValueError, match="decoder_path: decoder='taew2_2' needs its weight file"):
        model.frame_decoder("taew2_2")
    with pytest.raises(ValueError, match="decoder_path: got .* for decoder='vae'"):
        model.frame_decoder("vae", tae_files["taew2_2"])
    with pytest.raises(ValueError, match="the weights are a base TAEHV decoder"):
        model.frame_decoder("taew2_2_super", tae_files["taew2_2"])
    with pytest.raises(ValueError, match="dtype: got 'int8'"):
        model.frame_decoder("vae", dtype="int8")
    with pytest.raises(TypeError, match="decoder: got str; accepted: a FrameDecoder"):
        WorldStream(model, decoder="taew2_2")


def test_taehv_worlds_block_stream_last_frame_and_fork(model, tae_files):
    dec = _taehv(model, tae_files)
    block = WorldStream(model, 1, resolution=SMALL, decode="block", decoder=dec)
    block.reset(0, image=IMAGE, seed=5)
    out = block.step([Action(1, 0)])[0]
    assert out.frames.shape == (29, 32, 64, 3) and out.frames.dtype == np.uint8
    pix = dec.model.decode_video(out.latents[None].permute(0, 2, 1, 3, 4))[0]
    expected = (pix.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.abs(out.frames.astype(int) - expected.astype(int)).max() <= 1  # the same rounding rule

    stream = WorldStream(model, 2, resolution=SMALL, decode="stream", decoder=dec)
    last = WorldStream(model, 1, resolution=SMALL, decode="stream", decoder=dec, last_frame_only=True)
    for s in (stream, last):
        s.reset(0, image=IMAGE, seed=5)
    assert last.frames_per_block == 1
    stream.step([Action(1, 0), None])
    last.step([Action(1, 0)])
    snap = stream.snapshot(0)
    stream.fork(0, 1)
    a, b = stream.step([Action(2, 1), Action(2, 1)])
    assert a.frames.shape == (32, 32, 64, 3) and np.array_equal(a.frames, b.frames)
    only = last.step([Action(2, 1)])[0]
    assert only.frames.shape == (1, 32, 64, 3) and np.array_equal(only.frames[0], a.frames[-1])
    stream.restore(1, snap)
    again = stream.step([None, Action(2, 1)])[1]
    assert np.array_equal(again.frames, a.frames)  # the snapshot held the decoder's stream state


def test_env_and_vector_env_with_a_tiny_decoder(tae_files):
    kw = {
        "image": IMAGE,
        "resolution": SMALL,
        "decoder": "taew2_2",
        "decoder_path": str(tae_files["taew2_2"]),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        env = gym.make("YumeWorld-v0", decode="stream", **kw)
        venv = gym.make_vec("YumeWorld-v0", num_envs=2, decode="stream", **kw)
        last = gym.make("YumeWorld-v0", obs_mode="last_frame", **kw)
    assert env.unwrapped.stream.decoder is venv.stream.decoder  # loaded once, shared
    env.reset(seed=3)
    obs, *_ = env.step({"move": 1, "look": 0, "event": ""})
    assert obs.shape == (32, 32, 64, 3) and env.observation_space.contains(obs)
    venv.reset(seed=[3, 4])
    vobs, *_ = venv.step({"move": np.array([1, 1]), "look": np.array([0, 0]), "event": ("", "")})
    assert vobs.shape == (2, 32, 32, 64, 3)
    last.reset(seed=3)
    frame, *_ = last.step({"move": 1, "look": 0, "event": ""})
    assert frame.shape == (32, 64, 3) and last.observation_space.contains(frame)
    with pytest.raises(ValueError, match="decoder_path: decoder='taew2_2' needs its weight file"):
        gym.make("YumeWorld-v0", image=IMAGE, resolution=SMALL, decoder="taew2_2")
    with pytest.raises(ValueError, match="decoder: got 'fast'"):
        gym.make_vec("YumeWorld-v0", num_envs=2, image=IMAGE, resolution=SMALL, decoder="fast")
    assert get_model("tiny").frame_decoder() is get_model("tiny").vae_decoder


def test_batched_taehv_streams_equal_world_by_world(model, tae_files):
    with pytest.warns(UserWarning):
        batched = model.frame_decoder("taew2_2_super", tae_files["taew2_2_super"], batch_worlds=True)
    single = TAEHVFrameDecoder(batched.model, "taew2_2_super")
    lat = torch.randn(3, 48, 8, 2, 4, generator=torch.Generator().manual_seed(4))
    a, b = [single.new_stream() for _ in range(3)], [batched.new_stream() for _ in range(3)]
    for streams in (a, b):  # worlds 0 and 1 have history, world 2 is fresh
        for s, piece in zip(streams[:2], (lat[:1, :, :5], lat[1:2, :, :3])):
            s.decode(piece)
    for last in (None, 2):
        one = single.decode_streams(a, lat, last_frames=last)
        many = batched.decode_streams(b, lat, last_frames=last)
        assert [f.shape[2] for f in many] == ([32, 32, 29] if last is None else [2, 2, 2])
        for x, y in zip(one, many):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
