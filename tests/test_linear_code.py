"""The closed-form linear code of the tiny-8x encoder (yume_env.train.linear_code)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from yume_env.model.presets import TINY, TINY_8X
from yume_env.model.vae import WanVAE
from yume_env.train import cli
from yume_env.train.data import rollout_episode
from yume_env.train.linear_code import (
    LinearCodeEncoder,
    fit_linear_code,
    install_linear_encoder,
    linear_code_decode,
    linear_code_latents,
    refit_decoder_input,
)

pytestmark = pytest.mark.usefixtures("one_thread_module")

RES = (32, 48)
TOY_DIT = ["--dit-layers", "1", "--dit-dim", "32", "--dit-heads", "2", "--dit-ffn", "64"]


def _video(seed: int, blocks: int) -> torch.Tensor:
    """``[blocks, 3, 29, H, W]`` in [-1, 1] from the procedural world at RES."""
    f = rollout_episode(seed, blocks, RES).frames
    return torch.from_numpy(f.astype(np.float32) / 127.5 - 1).permute(0, 4, 1, 2, 3)


def _groups(video: torch.Tensor) -> torch.Tensor:
    """The seven 4-frame groups after each block's first frame: ``[7 * blocks, 3, 4, H, W]``."""
    return video[:, :, 1:].unflatten(2, (7, 4)).permute(0, 2, 1, 3, 4, 5).flatten(0, 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(4 / ((a.clamp(-1, 1) - b) ** 2).mean()))


@pytest.fixture(scope="module")
def fitted():
    code = fit_linear_code(torch.cat([_groups(_video(s, 3)) for s in (100_000, 100_001, 100_002)]))
    torch.manual_seed(0)
    vae = WanVAE(TINY_8X.vae).eval()
    install_linear_encoder(vae, code)
    return code, vae, _video(7, 1)  # a held-out block


def test_code_shapes_and_whitening(fitted):
    code, _, held_out = fitted
    assert code.stage0.shape == (24, 48) and code.basis.shape == (192, 48) and code.scale.shape == (48,)
    # stage 0 rows are orthonormal; the scales fall (leading components first)
    assert torch.allclose(code.stage0 @ code.stage0.T, torch.eye(24, dtype=code.stage0.dtype), atol=1e-9)
    assert bool((code.scale[:-1] >= code.scale[1:]).all())
    z = linear_code_latents(code, _groups(held_out))
    assert z.shape == (7, 48, 4, 6)
    assert 0.5 < float(z.std()) < 2.0  # whitened on the training seeds, near unit on held-out ones


def test_installed_encoder_computes_the_code(fitted):
    """vae.encode (first frame alone, then groups of four, through every layer) equals the code
    computed directly: the first latent is the code of a still group of the first frame."""
    code, vae, held_out = fitted
    with torch.no_grad():
        z = vae.encode(held_out)[0]  # [48, 8, 4, 6]
    later = linear_code_latents(code, _groups(held_out)).permute(1, 0, 2, 3)
    first = linear_code_latents(code, held_out[:, :, :1].repeat(1, 1, 4, 1, 1))[0]
    assert float((z[:, 1:] - later).abs().max()) < 0.05
    assert float((z[:, 0] - first).abs().max()) < 0.05
    # the same in float16 weights (as shipped): the head's reference read-out cancels its offset
    half = WanVAE(TINY_8X.vae).eval()
    half.load_state_dict({k: v.half().float() for k, v in vae.state_dict().items()})
    with torch.no_grad():
        assert float((half.encode(held_out)[0] - z).abs().max()) < 0.2


def test_code_encoder_gives_the_installed_encoders_latents(fitted):
    """LinearCodeEncoder (what the trainer encodes episodes with) has vae.encode's interface and
    numbers: a block, a still start clip of 17 frames, several streams at once."""
    code, vae, held_out = fitted
    direct = LinearCodeEncoder(code)
    start = held_out[:, :, :1].repeat(1, 1, 17, 1, 1)
    for video in (held_out, start, torch.cat([held_out, _video(8, 1)])):
        with torch.no_grad():
            want = vae.encode(video)
        got = direct.encode(video)
        assert got.shape == want.shape and got.dtype == torch.float32
        assert float((got - want).abs().max()) < 0.05
    with pytest.raises(
        ValueError, match=r"video: expected \[N, 3, 1 \+ 4k, H, W\], got \(1, 3, 28, 32, 48\)"
    ):
        direct.encode(held_out[:, :, 1:])


def test_a_still_clip_gives_one_latent_repeated(fitted):
    _, vae, held_out = fitted
    still = held_out[:, :, :1].repeat(1, 1, 9, 1, 1)
    with torch.no_grad():
        z = vae.encode(still)[0]
    assert float((z[:, 1:] - z[:, :1]).abs().max()) < 0.05


def test_linear_read_back_keeps_the_scene(fitted):
    """The code read back by least squares keeps far more than each 8x8 block's mean colour, and
    a still group better than a moving one (pairs of frames share a code in stage 0)."""
    code, _, held_out = fitted
    groups = _groups(held_out)
    back = linear_code_decode(code, linear_code_latents(code, groups))
    still = held_out[:, :, :1].repeat(1, 1, 4, 1, 1)
    still_back = linear_code_decode(code, linear_code_latents(code, still))
    pooled = torch.nn.functional.avg_pool3d(groups, (4, 8, 8))
    block_means = pooled.repeat_interleave(4, 2).repeat_interleave(8, 3).repeat_interleave(8, 4)
    assert _psnr(back, groups) > _psnr(block_means, groups) + 4.0
    assert _psnr(still_back, still) > _psnr(back, groups)


def test_refuses_other_encoders_and_bad_data():
    with pytest.raises(ValueError, match=r"vae: the linear code needs the tiny-8x encoder.*dim 16"):
        install_linear_encoder(WanVAE(TINY.vae), None)
    with pytest.raises(ValueError, match=r"groups: expected \[N, 3, 4, H, W\], got \(2, 3, 5, 32, 48\)"):
        fit_linear_code(torch.zeros(2, 3, 5, 32, 48))
    with pytest.raises(ValueError, match="multiples of 8"):
        fit_linear_code(torch.zeros(2, 3, 4, 36, 48))
    with pytest.raises(ValueError, match="more than 192 latent positions"):
        fit_linear_code(torch.zeros(2, 3, 4, 32, 48))


def test_refit_decoder_input_brings_back_the_old_latents(fitted):
    """After the refit, the decoder's first layer sees the old encoder's latents more closely than
    through the old conv2 applied to the new latents."""
    code, _, held_out = fitted
    torch.manual_seed(1)
    old = WanVAE(TINY_8X.vae).eval()
    new = copy.deepcopy(old)
    install_linear_encoder(new, code)
    clips = torch.cat([_video(s, 1) for s in (100_003, 100_004)])

    def gap(vae):  # what conv2 gives the decoder, new against old
        with torch.no_grad():
            a = vae.conv2(vae.encode_unnormalized(held_out))
            b = old.conv2(old.encode_unnormalized(held_out))
        return float(((a - b) ** 2).mean())

    before = gap(new)
    r2 = refit_decoder_input(new, old, clips)
    assert 0.0 < r2 <= 1.0
    assert gap(new) < 0.5 * before


def test_trainer_linear_encoder_run(tmp_path, capsys):
    """--linear-encoder fits and installs the code once, skips the VAE phase, trains the decoder
    and the transformer on the new latents, and a resume keeps the code."""
    out = tmp_path / "run"
    args = ["--out", str(out), "--episodes", "1", "--blocks", "2", "--workers", "0", "--no-progress"]
    args += ["--batch", "2", "--decoder-batch", "1", "--log-every", "1", "--vae-steps", "50"]
    first = [*args, "--preset", "tiny-8x", "--resolution", "32x48", "--linear-encoder", "--dit-steps", "1"]
    assert cli.main([*first, "--decoder-steps", "1", *TOY_DIT]) == 0
    # the transformer's episodes were encoded by the code directly, checked against the VAE first
    assert "linear encoder: episodes encoded by the code directly" in capsys.readouterr().err
    state = json.loads((out / "state.json").read_text())
    assert state["vae_step"] == 0 and state["dit_step"] == 1 and state["decoder_step"] == 1
    assert state["linear_encoder"]["fit_seeds"] == [100_000, 100_030]
    std = np.array(state["linear_encoder"]["code_std"])  # the spectrum the loss weights come from
    assert std.shape == (48,) and (std > 0).all() and (np.diff(std) <= 1e-6).all()
    assert state["linear_encoder"]["decoder_warm_start_r2"] is None  # a new run has no decoder to keep
    from yume_env.model.pipeline import load_checkpoint

    enc = load_checkpoint(out / "checkpoint", "cpu").vae.encoder
    assert float(enc.head[0].gamma.detach().abs().max()) == 20.0  # the installed head, not a trained one
    assert cli.main([*args, "--resume", "--dit-steps", "2", "--decoder-steps", "2"]) == 0
    again = json.loads((out / "state.json").read_text())
    assert again["linear_encoder"] == state["linear_encoder"] and again["vae_step"] == 0
    assert (again["dit_step"], again["decoder_step"]) == (2, 2)
    # a run installed before the spectrum was recorded fits it again, deterministically
    del again["linear_encoder"]["code_std"]
    (out / "state.json").write_text(json.dumps(again))
    weighted = [
        *args,
        "--resume",
        "--dit-steps",
        "3",
        "--decoder-steps",
        "2",
        "--dit-loss-weights",
        "code-variance",
    ]
    assert cli.main(weighted) == 0
    third = json.loads((out / "state.json").read_text())
    assert (
        third["dit_step"] == 3 and third["linear_encoder"]["code_std"] == state["linear_encoder"]["code_std"]
    )
    assert third["runs"][-1]["config"]["dit_loss_weights"] == "code-variance"
    # an encoder that no longer computes the code (changed after it was installed): the VAE encodes
    vae_file = out / "checkpoint" / "Wan2.2_VAE.pth"
    weights = torch.load(vae_file, map_location="cpu")
    key = next(k for k in weights if k.startswith("encoder.conv1") and k.endswith("weight"))
    weights[key] = weights[key] * 1.5
    torch.save(weights, vae_file)
    (out / "latents.pt").unlink(missing_ok=True)
    capsys.readouterr()
    assert cli.main([*weighted[:-2], "--dit-steps", "4"]) == 0
    log = capsys.readouterr().err
    assert "rms off the VAE's; encoding with the VAE" in log and "encoded by the code directly" not in log


def test_trainer_refuses_code_variance_weights_without_the_linear_encoder(tmp_path, capsys):
    args = ["--out", str(tmp_path / "run"), "--episodes", "1", "--blocks", "1", "--workers", "0"]
    args += ["--no-progress", "--vae-steps", "0", "--dit-loss-weights", "code-variance", *TOY_DIT]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "dit loss weights: got 'code-variance'" in err and "--linear-encoder" in err
    assert not (tmp_path / "run" / "state.json").exists()


def test_trainer_refuses_the_linear_encoder_for_other_shapes(tmp_path, capsys):
    """The layout is checked before any episode is rendered; exit 2 names the option."""
    args = ["--out", str(tmp_path / "run"), "--episodes", "1", "--blocks", "1", "--workers", "0"]
    args += ["--no-progress", "--linear-encoder", "--resolution", "32x32", "--dit-steps", "0", *TOY_DIT]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "linear encoder: vae: the linear code needs the tiny-8x encoder" in err and "dim 16" in err
