"""The tiny-8x preset: 8x8 pixels per latent, the same code paths as the tiny preset, trainable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import TOY_ARGS
from yume_env.envs.model_cache import get_model
from yume_env.model import PRESETS, TINY, TINY_8X, YUME_5B, build_model, get_preset, load_checkpoint
from yume_env.model.vae import VAEConfig, WanVAE
from yume_env.train import cli
from yume_env.train.trainer import tiny_preset
from yume_env.world.stream import Action, WorldStream

pytestmark = pytest.mark.usefixtures("one_thread_module")  # one torch thread


def test_preset_shape_against_tiny():
    assert get_preset("tiny-8x") is TINY_8X and PRESETS["tiny"] is TINY
    assert (TINY_8X.vae.spatial_stride, TINY_8X.vae.temporal_stride) == (8, 4)
    assert (TINY.vae.spatial_stride, TINY.vae.temporal_stride) == (16, 4)
    assert TINY_8X.resolution == TINY.resolution == (96, 160)
    # four times the DiT tokens per latent frame (2x2 patches): 6x10 -> 12x20 latents
    tokens = {
        p.name: (96 // p.vae.spatial_stride // 2) * (160 // p.vae.spatial_stride // 2)
        for p in (TINY, TINY_8X)
    }
    assert tokens == {"tiny": 15, "tiny-8x": 60}
    # only the VAE changes: the DiT and text encoder are the tiny preset's, the 5B preset is untouched
    assert TINY_8X.dit == TINY.dit and TINY_8X.text == TINY.text and TINY_8X.vae.z_dim == 48
    assert YUME_5B.vae == VAEConfig() and YUME_5B.vae.spatial_stride == 16


def test_resolution_rules():
    assert TINY_8X.check_resolution((32, 48)) == (32, 48)
    with pytest.raises(ValueError, match=r"resolution: got 40x48.*tiny-8x.*multiple of 16"):
        TINY_8X.check_resolution((40, 48))


def test_vae_round_trip_shapes_and_seamless_stream():
    torch.manual_seed(0)
    vae = WanVAE(TINY_8X.vae).eval()
    video = torch.rand(1, 3, 29, 32, 48) * 2 - 1
    with torch.no_grad():
        z = vae.encode(video)
        assert z.shape == (1, 48, 8, 4, 6)  # 1 + 7 latents; 32/8 x 48/8
        whole = vae.decode(z)
        stream = vae.stream_decoder()
        pieces = torch.cat(
            [stream.decode(z[:, :, :1]), stream.decode(z[:, :, 1:5]), stream.decode(z[:, :, 5:])], 2
        )
    assert whole.shape == (1, 3, 29, 32, 48)
    torch.testing.assert_close(pieces, whole, atol=1e-5, rtol=1e-5)


def test_world_steps_deterministically_with_tiny_8x():
    toy_dit = {"dim": 32, "num_heads": 2, "ffn_dim": 64, "num_layers": 1}  # the VAE is the preset's
    model = build_model(tiny_preset(toy_dit, base="tiny-8x"), "cpu", "float32", seed=0)
    assert model.preset.name == "tiny-8x" and model.preset.vae == TINY_8X.vae
    image = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(1))
    runs = []
    for _ in range(2):
        stream = WorldStream(model, 1, resolution=(32, 48))
        assert stream.latent_hw == (4, 6)
        stream.reset(0, image=image, prompt="a street", seed=5)
        frames = [stream.step([Action(1, 2, "fog rolls in" if k else "")])[0].frames for k in range(2)]
        runs.append(np.stack(frames))
    assert runs[0].shape == (2, 29, 32, 48, 3) and runs[0].dtype == np.uint8
    assert np.array_equal(runs[0], runs[1])


def test_get_model_asks_for_the_tiny_8x_weights():
    with pytest.raises(ValueError, match=r"checkpoint: the tiny-8x preset needs its weights.*runs/tiny-8x"):
        get_model("tiny-8x")


def test_tiny_preset_helper_bases():
    p = tiny_preset({"num_layers": 1}, {"dec_dim": 8}, base="tiny-8x")
    assert p.name == "tiny-8x" and p.dit.num_layers == 1 and p.vae.dec_dim == 8 and p.vae.spatial_stride == 8
    with pytest.raises(ValueError, match="preset: got 'yume-1.5-5b'; accepted: tiny, tiny-8x"):
        tiny_preset(base="yume-1.5-5b")


def test_trainer_preset_new_run_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--out", str(out), "--episodes", "1", "--blocks", "2", "--workers", "0", "--no-progress"]
    common += ["--vae-batch", "1", "--batch", "2", "--log-every", "1"]
    first = [*common, "--preset", "tiny-8x", "--resolution", "32x32", "--vae-steps", "2", "--dit-steps", "0"]
    assert cli.main([*first, *TOY_ARGS]) == 0
    model = load_checkpoint(out / "checkpoint", "cpu")
    assert model.preset.name == "tiny-8x" and model.preset.vae.spatial_stride == 8
    assert model.preset.vae.dim == 4 and model.preset.dit.dim == 32
    extra = json.loads((out / "checkpoint" / "yume_env.json").read_text())
    assert extra["preset"] == "tiny-8x" and extra["vae"]["dim_mult"] == [1, 4, 4]
    # the run folder fixes the architecture, and a resume with no --resolution keeps the run's size
    assert cli.main([*common, "--resume", "--vae-steps", "2", "--dit-steps", "1"]) == 0
    state = json.loads((out / "state.json").read_text())
    assert (state["vae_step"], state["dit_step"], state["phase"]) == (2, 1, "done")
    assert state["runs"][-1]["config"]["resolution"] == [32, 32]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main([*common, "--resume", "--preset", "tiny-8x"])
    assert exc.value.code == 2 and "new runs only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["--preset", "tiny-16x"])
    assert exc.value.code == 2 and "--preset" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("folder", "extra"),
    [("tiny-8x-run", []), ("tiny-8x-lin", ["--dit-loss-weights", "code-variance"])],
)
def test_committed_run_folder_loads_and_resumes(tmp_path, folder, extra):
    """The tiny-8x run folders in the repository load (strict key check) and the trainer continues
    them from a copy, at the run's resolution, as docs/tiny-world.md says (tiny-8x-lin: the
    closed-form encoder, with the loss weights it was trained with)."""
    import shutil
    from pathlib import Path

    committed = Path(__file__).resolve().parent.parent / "checkpoints" / folder
    model = load_checkpoint(committed / "checkpoint", "cpu")
    assert (
        model.preset.name == "tiny-8x" and model.preset.vae == TINY_8X.vae and model.preset.dit == TINY_8X.dit
    )
    state = json.loads((committed / "state.json").read_text())
    # the autoencoder is done for this run (its encoder fixes the transformer's latents); the
    # transformer is in training
    assert state["vae_step"] > 0 and state["dit_step"] > 0 and state["phase"] == "dit"
    run = tmp_path / "tiny-8x"
    shutil.copytree(committed, run)
    steps = state["dit_step"] + 1
    args = ["--out", str(run), "--resume", "--episodes", "1", "--blocks", "2", "--workers", "0"]
    args += ["--vae-steps", str(state["vae_step"]), "--dit-steps", str(steps), "--batch", "1"]
    assert cli.main([*args, "--no-progress", "--no-latent-cache", *extra]) == 0
    resumed = json.loads((run / "state.json").read_text())
    assert (resumed["vae_step"], resumed["dit_step"]) == (state["vae_step"], steps)
    assert resumed["runs"][-1]["config"]["resolution"] == [96, 160]
    assert len(resumed["losses"]["dit"]) >= len(state["losses"]["dit"])
    if folder == "tiny-8x-lin":
        assert resumed["linear_encoder"]["code_std"] == state["linear_encoder"]["code_std"]
        assert float(model.vae.encoder.head[0].gamma.detach().abs().max()) == 20.0  # the installed code
