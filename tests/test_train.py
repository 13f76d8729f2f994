"""Training pipeline: data, losses that go down, checkpoints that round-trip, resume, CLI errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.conftest import TOY_ARGS
from yume_env.actions import LOOKS
from yume_env.model.checkpoint import CheckpointError
from yume_env.model.pipeline import build_model, load_checkpoint
from yume_env.train import cli
from yume_env.train.data import (
    MIRROR_LOOK,
    MIRROR_MOVE,
    REVERSE_LOOK,
    EncodedEpisode,
    EpisodeSource,
    FramePool,
    LatentStore,
    encode_episode,
    episode_actions,
    mirror_episode,
    rollout_episode,
    to_video,
)
from yume_env.train.dit_train import EMA, flow_matching_loss, sample_sigmas, with_own_history
from yume_env.train.trainer import tiny_preset
from yume_env.train.vae_train import vae_loss
from yume_env.world.captions import render_caption

# A toy architecture so that every test runs in seconds on a busy CPU.
TOY_DIT = {"dim": 32, "num_heads": 2, "ffn_dim": 64, "num_layers": 1}
TOY_VAE = {"dim": 4, "dec_dim": 4}
pytestmark = pytest.mark.usefixtures("one_thread_module")  # one torch thread


@pytest.fixture(scope="module")
def episode():
    return rollout_episode(123, num_blocks=2, resolution=(32, 48), event_rate=1.0)


@pytest.fixture(scope="module")
def toy_model():
    return build_model(tiny_preset(TOY_DIT, TOY_VAE), "cpu", dtype="float32", seed=0)


def test_episode_frames_actions_and_captions(episode):
    assert episode.frames.shape == (2, 29, 32, 48, 3) and episode.frames.dtype == np.uint8
    assert episode.start.shape == (32, 48, 3)
    assert all(e for e in episode.events)  # event_rate=1: every block gives an event
    caps = episode.captions()
    assert caps[0] == render_caption(int(episode.moves[0]), int(episode.looks[0]), episode.events[0])
    again = rollout_episode(123, num_blocks=2, resolution=(32, 48), event_rate=1.0)
    assert np.array_equal(again.frames, episode.frames)  # deterministic in the seed


def test_mirror_swaps_left_and_right(episode):
    m = mirror_episode(episode)
    assert np.array_equal(m.frames, episode.frames[:, :, :, ::-1])
    assert [MIRROR_MOVE[int(v)] for v in episode.moves] == list(m.moves)
    assert [MIRROR_LOOK[int(v)] for v in episode.looks] == list(m.looks)
    assert MIRROR_MOVE[2] == 4 and MIRROR_LOOK[1] == 2 and MIRROR_LOOK[5] == 6  # A<->D, pan right<->left
    back = mirror_episode(m)
    assert np.array_equal(back.frames, episode.frames) and list(back.moves) == list(episode.moves)


def test_scripted_actions_cover_the_vocabulary():
    rng = np.random.default_rng(0)
    seen = {a for _ in range(200) for a in episode_actions(rng, 8)}
    assert (
        (0, 0) in seen and {m for m, _ in seen} == set(range(9)) and {lk for _, lk in seen} == set(range(9))
    )


def test_frame_pool_windows_and_crops(episode):
    pool = FramePool()
    pool.add([episode])
    rng = np.random.default_rng(0)
    clips = pool.sample(rng, 3, latents=3, crop=(16, 32))
    assert clips.shape == (3, 9, 16, 32, 3)
    video = to_video(clips)
    assert video.shape == (3, 3, 9, 16, 32) and video.min() >= -1 and video.max() <= 1


def test_vae_loss_decreases(episode, toy_model):
    vae = toy_model.vae
    torch.manual_seed(0)
    video = to_video(np.stack([episode.frames[0, :5], episode.frames[1, :5]]))
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    vae.train()
    losses = []
    for _ in range(12):
        loss, stats = vae_loss(vae, video, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(stats["loss"])
    vae.eval()
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]


def test_dit_training_has_gradients_and_loss_decreases(toy_model):
    dit = toy_model.dit
    assert not torch.is_inference_mode_enabled()
    store = LatentStore()
    gen = torch.Generator().manual_seed(0)
    for i in range(2):
        store.add(
            torch.randn(48, 5, 2, 2, generator=gen), torch.randn(3, 48, 8, 2, 2, generator=gen), ["a"] * 3, i
        )
    contexts = [c.clone() for c in toy_model.encode_text(store.captions)]
    batch = store.sample(np.random.default_rng(0), 4, contexts, max_history_blocks=1)
    assert batch.history.shape[2] == 5 + 8 * batch.num_history_blocks
    assert batch.target.shape == (4, 48, 8, 2, 2)

    def fixed_loss():
        with torch.no_grad():
            return flow_matching_loss(dit, batch, np.random.default_rng(1))[0].item()

    before = fixed_loss()
    opt = torch.optim.Adam(dit.parameters(), lr=2e-3)
    dit.train()
    ema = EMA(dit, 0.9)
    for step in range(25):
        loss, _ = flow_matching_loss(dit, batch, np.random.default_rng(step))
        assert loss.requires_grad
        opt.zero_grad()
        loss.backward()
        assert dit.blocks[0].self_attn.q.weight.grad is not None
        assert dit.patch_embedding_2x.weight.grad is not None  # the history tiers are trained too
        opt.step()
        ema.update(dit, step)
    dit.eval()
    assert fixed_loss() < 0.8 * before


def test_sigmas_follow_the_sampler_and_the_shifted_law():
    s = sample_sigmas(4000, np.random.default_rng(0))
    assert s.min() > 0 and s.max() <= 1
    at_levels = np.isclose(s[:, None], [1.0, 0.954545, 0.875, 0.7], atol=1e-5).any(axis=1)
    assert 0.4 < at_levels.mean() < 0.6
    assert np.median(s) > 0.6  # the shift pushes noise levels up


def _read_state(folder):
    return json.loads((folder / "state.json").read_text())


def test_cli_trains_checkpoints_resumes_and_exports(tmp_path):
    out = tmp_path / "run"
    common = [
        "--out",
        str(out),
        "--episodes",
        "2",
        "--blocks",
        "2",
        "--workers",
        "0",
        "--resolution",
        "32x32",
    ]
    common += ["--vae-batch", "2", "--batch", "4", "--log-every", "1", "--no-progress", "--seed", "3"]
    assert cli.main([*common, "--vae-steps", "3", "--dit-steps", "3", *TOY_ARGS]) == 0
    state = _read_state(out)
    assert (state["vae_step"], state["dit_step"], state["phase"]) == (3, 3, "done")
    assert len(state["losses"]["vae"]) == 3 and len(state["losses"]["dit"]) == 3
    assert (out / "loss_curve.png").stat().st_size > 1000
    # held-out transformer losses after the last step: [step, loss, camera blocks, direction reversed]
    ((step, loss, camera, reversed_),) = state["dit_val"]
    assert step == 3 and all(np.isfinite([loss, camera, reversed_])) and camera != reversed_
    model = load_checkpoint(out / "checkpoint", "cpu")  # strict key and shape check
    assert model.preset.dit.dim == 32 and model.preset.vae.dim == 4
    ema = torch.load(out / "train_state.pt", weights_only=True)["ema"]["shadow"]
    for k, v in model.dit.state_dict().items():
        assert torch.equal(v, ema[k]), k  # the checkpoint holds the EMA weights

    # resume: steps continue, the VAE is kept, the history grows, and an fp16 copy is exported
    vae_before = {k: v.clone() for k, v in model.vae.state_dict().items()}
    export = tmp_path / "export"
    resume = [*common, "--resume", "--vae-steps", "3", "--dit-steps", "5", "--decoder-steps", "2"]
    assert cli.main([*resume, "--export", str(export)]) == 0
    state = _read_state(out)
    assert (state["vae_step"], state["dit_step"], state["decoder_step"]) == (3, 5, 2)
    assert [r[0] for r in state["losses"]["dit"]] == [1, 2, 3, 4, 5]
    resumed = load_checkpoint(out / "checkpoint", "cpu")
    changed = {k for k, v in resumed.vae.state_dict().items() if not torch.equal(v, vae_before[k])}
    assert changed and all(k.startswith(("decoder.", "conv2.")) for k in changed)  # encoder frozen
    small = load_checkpoint(export, "cpu")
    assert small.dit.dtype == torch.float32  # fp16 on disk, cast back on load
    for k, v in small.dit.state_dict().items():
        torch.testing.assert_close(v, resumed.dit.state_dict()[k], atol=2e-3, rtol=2e-3)


def test_decoder_only_resume_of_a_stopped_run_encodes_nothing(tmp_path, monkeypatch):
    """A run stopped by hand during the transformer phase (phase still "dit"), resumed with no
    transformer steps left and only decoder steps: the transformer's episodes are not rendered
    and encoded again (on two CPU cores that took 40 minutes for 920 episodes)."""
    import yume_env.train.trainer as trainer_mod

    out = tmp_path / "run"
    common = ["--out", str(out), "--episodes", "2", "--blocks", "2", "--workers", "0"]
    common += ["--resolution", "32x32", "--vae-batch", "2", "--batch", "4", "--no-progress"]
    assert cli.main([*common, *TOY_ARGS, "--vae-steps", "2", "--dit-steps", "2", "--no-latent-cache"]) == 0
    state = _read_state(out)
    state["phase"] = "dit"  # as a run killed mid-transformer leaves it
    (out / "state.json").write_text(json.dumps(state))

    def no_encoding(*args, **kwargs):
        raise AssertionError("episodes encoded for a transformer with no steps left")

    monkeypatch.setattr(trainer_mod, "encode_episode", no_encoding)
    resume = [*common, "--resume", "--vae-steps", "2", "--dit-steps", "2", "--decoder-steps", "1"]
    assert cli.main(resume) == 0
    state = _read_state(out)
    assert (state["dit_step"], state["decoder_step"], state["phase"]) == (2, 1, "done")


def test_cli_errors(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path / "none"), "--resume", "--no-progress"]) == 2  # usage error
    assert "no run to resume" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["--batch", "many"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["--resume", "--dit-layers", "2"])
    assert exc.value.code == 2
    capsys.readouterr()
    for flag, value in (("--self-history", "1.5"), ("--history-noise", "-1")):
        with pytest.raises(SystemExit) as exc:
            cli.main([flag, value])
        assert exc.value.code == 2
        assert flag in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "--resume" in capsys.readouterr().out
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(CheckpointError):
        load_checkpoint(bad, "cpu")
    code = cli.main(["--out", str(tmp_path / "x"), "--init", str(bad), "--no-progress", "--workers", "0"])
    assert code == 2  # a bad --init folder is a usage error


def test_workers_encode_like_the_trainer(toy_model):
    """Episodes rendered and encoded in a worker process equal the main process's encoding."""
    vae = toy_model.vae
    state = {k: v.detach().clone() for k, v in vae.state_dict().items()}
    source = EpisodeSource(
        [7], num_blocks=2, resolution=(32, 32), workers=1, encoder=((vae.config, state), True)
    )
    try:
        (item,) = source.take(1)
    finally:
        source.close()
    assert isinstance(item, EncodedEpisode) and item.seed == 7 and len(item.parts) == 2  # + mirror
    expected = encode_episode(vae, rollout_episode(7, num_blocks=2, resolution=(32, 32)), mirror=True)
    for (s0, b0, c0), (s1, b1, c1) in zip(item.parts, expected.parts):
        assert c0 == c1
        torch.testing.assert_close(s0, s1, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(b0, b1, atol=1e-5, rtol=1e-5)
    assert not torch.equal(item.parts[0][1], item.parts[1][1])  # the mirror image is its own encoding
    with pytest.raises(ValueError, match="workers"):
        EpisodeSource([1], workers=0, encoder=((vae.config, state), True))


def test_reverse_look_reverses_every_camera_move():
    assert REVERSE_LOOK[0] == 0
    for look in range(1, len(LOOKS)):
        reversed_ = LOOKS[REVERSE_LOOK[look]]
        flip = str.maketrans("↑↓←→", "↓↑→←")
        assert reversed_ == LOOKS[look].translate(flip), look
    assert all(REVERSE_LOOK[REVERSE_LOOK[i]] == i for i in range(len(LOOKS)))


def test_cli_encode_workers_add_episodes_before_training(tmp_path):
    out = tmp_path / "run"
    common = ["--out", str(out), "--blocks", "2", "--workers", "0", "--resolution", "32x32", "--no-progress"]
    common += ["--vae-batch", "2", "--batch", "2", "--vae-steps", "1"]
    assert cli.main([*common, "--episodes", "1", "--dit-steps", "1", *TOY_ARGS]) == 0
    more = [*common, "--resume", "--episodes", "3", "--encode-workers", "2", "--dit-steps", "2"]
    assert cli.main([*more, "--self-history", "1.0", "--history-noise", "0.2"]) == 0
    state = _read_state(out)
    assert (state["runs"][-1]["config"]["self_history"], state["runs"][-1]["config"]["history_noise"]) == (
        1.0,
        0.2,
    )
    assert (state["episodes_seen"], state["next_seed"], state["dit_step"]) == (3, 100_003, 2)
    store = LatentStore.load(out / "latents.pt")
    assert store.seeds == [100_000, 100_000, 100_001, 100_001, 100_002, 100_002]  # + mirrors, by seed
    assert state["seconds"]["encode"] > 0


def _three_block_store(toy_model):
    store = LatentStore()
    gen = torch.Generator().manual_seed(0)
    for i in range(2):
        blocks = torch.randn(3, 48, 8, 2, 2, generator=gen)
        store.add(torch.randn(48, 5, 2, 2, generator=gen), blocks, ["c0", "c1", "c2"], i)
    contexts = [c.clone() for c in toy_model.encode_text(store.captions)]
    return store, contexts


def test_batches_carry_the_newest_history_blocks_captions(toy_model):
    store, contexts = _three_block_store(toy_model)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(12):
        batch = store.sample(rng, 3, contexts)
        k = batch.num_history_blocks
        seen.add(k)
        assert all(c is contexts[k] for c in batch.contexts)
        if k == 0:
            assert batch.previous_contexts is None
        else:
            assert all(c is contexts[k - 1] for c in batch.previous_contexts)
    assert seen == {0, 1, 2}


def test_own_history_regenerates_only_the_newest_block(toy_model):
    """With rate 1 every sample's newest history block is the model's own sample of it: made from the
    history before it and that block's caption, not from the block it replaces."""
    dit = toy_model.dit
    store, contexts = _three_block_store(toy_model)
    rng = np.random.default_rng(3)
    batch = store.sample(rng, 3, contexts)
    while batch.num_history_blocks != 2:
        batch = store.sample(rng, 3, contexts)
    dit.train()
    own, n = with_own_history(dit, batch, np.random.default_rng(7), 1.0)
    assert n == 3 and dit.training  # the mode is restored
    torch.testing.assert_close(own.history[:, :, :-8], batch.history[:, :, :-8], atol=0, rtol=0)
    assert torch.isfinite(own.history).all()
    assert not torch.allclose(own.history[:, :, -8:], batch.history[:, :, -8:])
    assert own.target is batch.target and own.contexts is batch.contexts
    # the replaced block's own values do not matter; the caption before the target does
    blanked = replace(batch, history=batch.history.clone())
    blanked.history[:, :, -8:] = 0
    again, _ = with_own_history(dit, blanked, np.random.default_rng(7), 1.0)
    torch.testing.assert_close(again.history, own.history)
    other = replace(batch, previous_contexts=[contexts[0]] * 3)
    changed, _ = with_own_history(dit, other, np.random.default_rng(7), 1.0)
    assert not torch.allclose(changed.history[:, :, -8:], own.history[:, :, -8:])
    # nothing to do, and bad input
    assert with_own_history(dit, batch, np.random.default_rng(7), 0.0) == (batch, 0)
    first = replace(batch, history=batch.history[:, :, :5], num_history_blocks=0, previous_contexts=None)
    assert with_own_history(dit, first, np.random.default_rng(7), 1.0) == (first, 0)
    with pytest.raises(ValueError, match="rate: got 1.5"):
        with_own_history(dit, batch, np.random.default_rng(7), 1.5)
    with pytest.raises(ValueError, match="previous_contexts"):
        with_own_history(dit, replace(batch, previous_contexts=None), np.random.default_rng(7), 0.5)
    dit.eval()


def test_flow_loss_channel_weights_weigh_each_channel(toy_model):
    """``channel_weights`` scales each latent channel's share of the MSE; all ones is the plain MSE."""
    from yume_env.train.dit_train import FlowConfig

    store = LatentStore()
    gen = torch.Generator().manual_seed(0)
    store.add(
        torch.randn(48, 5, 2, 2, generator=gen), torch.randn(2, 48, 8, 2, 2, generator=gen), ["a"] * 2, 0
    )
    contexts = [c.clone() for c in toy_model.encode_text(store.captions)]
    batch = store.sample(np.random.default_rng(0), 2, contexts, max_history_blocks=1)

    def loss(weights):
        cfg = FlowConfig(channel_weights=None if weights is None else tuple(float(w) for w in weights))
        with torch.no_grad():
            return flow_matching_loss(toy_model.dit, batch, np.random.default_rng(3), cfg)[0].item()

    ones, first, second = np.ones(48), np.zeros(48), np.zeros(48)
    first[0], second[1] = 48.0, 48.0  # all the weight on channel 0 (resp. 1): that channel's MSE
    assert loss(ones) == pytest.approx(loss(None), rel=1e-6)
    assert loss((first + second) / 2) == pytest.approx((loss(first) + loss(second)) / 2, rel=1e-5)
    assert loss(first) != pytest.approx(loss(second), rel=1e-3)
    with pytest.raises(ValueError, match="channel_weights: got 3 weights"):
        loss(np.ones(3))
