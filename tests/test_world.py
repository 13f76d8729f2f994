"""WorldStream: batching, long horizons, snapshots and transactional steps on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yume_env.model.dit import DiTConfig
from yume_env.model.pipeline import build_model
from yume_env.model.presets import TINY, with_configs
from yume_env.world.stream import Action, NonFiniteOutputError, WorldStream

IMAGE = (np.random.default_rng(0).random((60, 100, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    return build_model("tiny", seed=1)


def _latent_stream(model, n=1, **kw) -> WorldStream:
    return WorldStream(model, num_worlds=n, decode="none", **kw)


def test_batched_equals_single_for_worlds_at_different_history_lengths(model):
    stream = _latent_stream(model, 3)
    for i in range(3):
        stream.reset(i, image=IMAGE, prompt="a quiet street", seed=10 + i)
    # bring the worlds to different history lengths: 5, 13 and 29 latents
    stream.step([None, Action(1, 0), Action(2, 1)])
    stream.step([None, None, Action(3, 2)])
    stream.step([None, None, Action(0, 3, "fog rolls in")])
    assert [w.history_length for w in stream.worlds] == [5, 13, 29]
    snaps = [stream.snapshot(i) for i in range(3)]
    actions = [Action(1, 1), Action(4, 0, "it starts to rain"), Action(0, 0)]
    together = stream.step(actions)
    for i in range(3):
        alone = _latent_stream(model, 1)
        alone.restore(0, snaps[i])
        single = alone.step([actions[i]])[0]
        torch.testing.assert_close(together[i].latents, single.latents, atol=1e-5, rtol=1e-5)
        assert together[i].caption == single.caption


def test_two_hundred_blocks_run_with_bounded_history():
    # A narrower DiT than the tiny preset: this test is about the history policy, not model size.
    narrow = with_configs(
        TINY, dit=DiTConfig(dim=32, ffn_dim=64, num_heads=2, num_layers=2, text_dim=64, text_len=160)
    )
    stream = _latent_stream(build_model(narrow, seed=0), 1)
    stream.reset(0, image=IMAGE, seed=0)
    lengths = []
    for k in range(200):
        out = stream.step([Action(k % 9, (k // 9) % 9)])[0]
        assert torch.isfinite(out.latents).all()
        lengths.append(stream.worlds[0].history_length)
    world = stream.worlds[0]
    # the official code would have crashed once history + block exceeded 1024 positions (block 127)
    assert world.block_index == 200
    assert max(lengths) == stream.max_history + 8 == 1024
    assert world.dropped_latents == 5 + 200 * 8 - 1024
    assert out.info["history_latents"] == stream.max_history


def test_small_history_budget_keeps_the_start_latent(model):
    stream = _latent_stream(model, 1, max_history=12)
    stream.reset(0, image=IMAGE, seed=0)
    start = stream.worlds[0].history[:, 0].clone()
    for _ in range(4):
        stream.step([Action(1, 0)])
    assert stream.worlds[0].history_length == 12 + 8
    assert torch.equal(stream.worlds[0].history[:, 0], start)


def test_fork_gives_the_same_future_and_restore_replays_it(model):
    stream = _latent_stream(model, 2)
    stream.reset(0, image=IMAGE, seed=5)
    stream.step([Action(1, 0), None])
    snap = stream.snapshot(0)
    first = [stream.step([Action(1, 1), None])[0].latents for _ in range(2)]
    stream.restore(0, snap)
    other = stream.step([Action(3, 2, "the lights go out"), None])[0].latents
    assert not torch.equal(other, first[0])
    stream.restore(0, snap)
    again = [stream.step([Action(1, 1), None])[0].latents for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    # fork: world 1 becomes world 0 at the snapshot; same actions -> same frames
    stream.restore(0, snap)
    stream.fork(0, 1)
    both = stream.step([Action(2, 0), Action(2, 0)])
    assert torch.equal(both[0].latents, both[1].latents)


def test_same_seed_same_actions_same_frames(model):
    frames = []
    for _ in range(2):
        stream = WorldStream(model, num_worlds=1)
        stream.reset(0, image=IMAGE, seed=42)
        frames.append(stream.step([Action(1, 1, "a red balloon appears")])[0].frames)
    assert frames[0].shape == (29, 96, 160, 3) and frames[0].dtype == np.uint8
    assert np.array_equal(frames[0], frames[1])


def test_nan_output_is_reported_and_leaves_the_world_unchanged(model, monkeypatch):
    stream = _latent_stream(model, 1)
    stream.reset(0, image=IMAGE, seed=3)
    stream.step([Action(1, 0)])
    before = stream.snapshot(0)
    expected = stream.step([Action(2, 0)])[0].latents
    stream.restore(0, before)

    real = model.sample_block
    monkeypatch.setattr(model, "sample_block", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(NonFiniteOutputError, match=r"world\(s\) \[0\].*NaN/Inf"):
        stream.step([Action(2, 0)])
    monkeypatch.setattr(model, "sample_block", real)
    world = stream.worlds[0]
    assert world.block_index == before.state.block_index
    assert torch.equal(world.history, before.state.history)
    # the noise generator was rewound too: the retried step is the one that would have happened
    assert torch.equal(stream.step([Action(2, 0)])[0].latents, expected)


def test_text_to_video_reset_generates_the_first_block(model):
    stream = WorldStream(model, num_worlds=1)
    out = stream.reset(0, prompt="a city street at night", seed=1)
    assert out.frames.shape == (29, 96, 160, 3)
    assert out.info["history_latents"] == 0
    assert stream.worlds[0].history_length == 8
    assert out.caption.endswith("View rotation speed:0.a city street at night")


def test_stream_decode_gives_32_seamless_frames(model):
    stream = WorldStream(model, num_worlds=1, decode="stream")
    first = stream.reset(0, image=IMAGE, seed=1)
    assert first.frames.shape[0] == 32
    out = stream.step([Action(1, 0)])[0]
    assert out.frames.shape == (32, 96, 160, 3)


def test_event_text_is_kept_replaced_and_cleared(model):
    stream = _latent_stream(model, 1)
    stream.reset(0, image=IMAGE, prompt="snow falls", seed=1)
    assert stream.step([Action()])[0].info["event"] == "snow falls"
    assert stream.step([Action(event="a dragon appears")])[0].info["event"] == "a dragon appears"
    assert stream.step([Action()])[0].info["event"] == "a dragon appears"
    assert stream.step([Action(event="   ")])[0].info["event"] == ""


def test_bad_arguments_are_named(model):
    with pytest.raises(ValueError, match="num_worlds: got 0"):
        WorldStream(model, num_worlds=0)
    with pytest.raises(ValueError, match="decode: got 'fast'"):
        WorldStream(model, decode="fast")
    with pytest.raises(ValueError, match="max_history: got 2000"):
        WorldStream(model, max_history=2000)
    with pytest.raises(ValueError, match="resolution: got 100x100"):
        WorldStream(model, resolution=(100, 100))
    stream = _latent_stream(model, 2)
    with pytest.raises(RuntimeError, match="world 0: step before reset"):
        stream.step([Action(), None])
    with pytest.raises(ValueError, match="image/prompt: got neither"):
        stream.reset(0)
    with pytest.raises(IndexError, match="world index: got 5"):
        stream.reset(5, image=IMAGE)
    with pytest.raises(ValueError, match="actions: got 1 entries"):
        stream.step([Action()])
