"""Tests of the Wan2.2 VAE against reference numbers from the original implementation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from yume_env.model.vae import LATENT_MEAN, LATENT_STD, CausalCache, VAEConfig, VAEStreamDecoder, WanVAE

REF = Path(__file__).parent / "data" / "reference"
TOL = dict(atol=1e-4, rtol=1e-4)


def _max_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return (ours.float() - ref.float()).abs().max().item()


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    # The tiny model's ops are far too small to gain from intra-op threads, and on a busy
    # machine with few cores the threads mostly wait for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def case() -> dict[str, torch.Tensor]:
    return load_file(REF / "vae_case.safetensors")


@pytest.fixture(scope="module")
def vae() -> WanVAE:
    cfg = json.loads((REF / "vae_case.json").read_text())["vae_config"]
    config = VAEConfig(
        z_dim=cfg["z_dim"],
        dim=cfg["c_dim"],
        dec_dim=cfg["dec_dim"],
        dim_mult=tuple(cfg["dim_mult"]),
        num_res_blocks=cfg["num_res_blocks"],
        attn_scales=tuple(cfg["attn_scales"]),
        temperal_downsample=tuple(cfg["temperal_downsample"]),
        dropout=cfg["dropout"],
    )
    model = WanVAE(config).eval().requires_grad_(False)
    model.load_state_dict(load_file(REF / "vae_weights.safetensors"), strict=True)
    return model


@pytest.fixture(scope="module")
def decoded_once(vae: WanVAE, case: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return vae.decode_unclamped(case["latents"][None])


# ---------------------------------------------------------------- reference numbers


def test_constants_match_reference(case: dict[str, torch.Tensor]) -> None:
    constants = json.loads((REF / "constants.json").read_text())
    assert list(LATENT_MEAN) == constants["vae_latent_mean"]
    assert list(LATENT_STD) == constants["vae_latent_std"]
    mean, inv_std = WanVAE.latent_stats()
    assert torch.equal(mean, case["scale.mean"])
    assert torch.equal(inv_std, case["scale.inv_std"])


def test_encode_matches_reference(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    with torch.inference_mode():
        mu = vae.encode_unnormalized(case["video"][None])
        z = vae.encode(case["video"][None])
    assert mu.dtype == z.dtype == torch.float32
    assert z.shape == (1, 48, 5, 4, 6)
    print(
        f"\nmax|err| mu={_max_err(mu[0], case['dbg.mu_unnormalized']):.3g} latents={_max_err(z[0], case['latents']):.3g}"
    )
    torch.testing.assert_close(mu[0], case["dbg.mu_unnormalized"], **TOL)
    torch.testing.assert_close(z[0], case["latents"], **TOL)
    torch.testing.assert_close(z, vae.normalize_latents(mu), atol=0, rtol=0)


def test_decode_matches_reference(
    vae: WanVAE, case: dict[str, torch.Tensor], decoded_once: torch.Tensor
) -> None:
    with torch.inference_mode():
        clamped = vae.decode(case["latents"][None])
    assert decoded_once.shape == clamped.shape == (1, 3, 17, 64, 96)
    assert clamped.dtype == torch.float32
    print(
        f"\nmax|err| unclamped={_max_err(decoded_once[0], case['dbg.decoded_unclamped']):.3g} "
        f"decoded={_max_err(clamped[0], case['decoded']):.3g}"
    )
    torch.testing.assert_close(decoded_once[0], case["dbg.decoded_unclamped"], **TOL)
    torch.testing.assert_close(clamped[0], case["decoded"], **TOL)
    assert clamped.abs().max() <= 1.0


def test_block_of_8_latents_decodes_to_29_frames(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    with torch.inference_mode():
        out = vae.decode(case["block8.latents"][None])
    assert out.shape == (1, 3, 29, 64, 96)
    print(f"\nmax|err| block8={_max_err(out[0], case['block8.decoded']):.3g}")
    torch.testing.assert_close(out[0], case["block8.decoded"], **TOL)


# ---------------------------------------------------------------- streaming


def test_stream_decoder_equals_one_shot(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    latents = torch.cat([case["latents"], case["block8.latents"]], dim=1)[None]  # 13 latents
    with torch.inference_mode():
        full = vae.decode(latents)
        stream = vae.stream_decoder()
        pieces = []
        for lo, hi in [(0, 1), (1, 5), (5, 13)]:
            out = stream.decode(latents[:, :, lo:hi])
            assert out.shape[2] == (1 if lo == 0 else 4 * (hi - lo))
            assert stream.frames_decoded == 1 + 4 * (hi - 1)
            pieces.append(out)
    assert full.shape[2] == 1 + 4 * 12
    torch.testing.assert_close(torch.cat(pieces, dim=2), full, atol=0, rtol=0)
    # After a primed history of 5 latents, a block of 8 yields 32 seamless frames.
    assert pieces[-1].shape[2] == 32
    # ... which differ from decoding the block on its own: the history carries over.
    assert not torch.allclose(pieces[-1][:, :, -29:], vae.decode(latents[:, :, 5:13]))


def test_multi_latent_steps_match_single_steps(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    latents = case["block8.latents"][None]
    with torch.inference_mode():
        one = vae.stream_decoder().decode_unclamped(latents)
        stream = VAEStreamDecoder(vae, latents_per_step=3)
        many = torch.cat(
            [stream.decode_unclamped(latents[:, :, :5]), stream.decode_unclamped(latents[:, :, 5:])], 2
        )
    torch.testing.assert_close(many, one, atol=2e-5, rtol=2e-5)


def test_stream_fork_and_state(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    history, block = case["latents"][None], case["block8.latents"][None]
    with torch.inference_mode():
        stream = vae.stream_decoder()
        stream.decode(history)
        snapshot = stream.state()
        fork = stream.clone()
        other = fork.decode(block.flip(2))  # advancing the fork must not touch the original
        a = stream.decode(block[:, :, :2])
        b = fork.decode(block[:, :, :2])
        c = VAEStreamDecoder(vae, state=snapshot).decode(block[:, :, :2])
    assert other.shape[2] == 32
    assert fork.latents_decoded == 15 and stream.latents_decoded == 7
    torch.testing.assert_close(a, c, atol=0, rtol=0)
    assert not torch.allclose(a, b)
    assert isinstance(snapshot, CausalCache) and snapshot.nbytes() > 0
    assert all(t.shape[2] in (1, 2) for t in snapshot.history.values())


def test_interleaved_streams_share_one_module(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    x, y = case["latents"][None], case["block8.latents"][None, :, :5]
    with torch.inference_mode():
        sx, sy = vae.stream_decoder(), vae.stream_decoder()
        parts_x, parts_y = [], []
        for i in range(5):
            parts_x.append(sx.decode(x[:, :, i : i + 1]))
            parts_y.append(sy.decode(y[:, :, i : i + 1]))
        torch.testing.assert_close(torch.cat(parts_x, 2), vae.decode(x), atol=0, rtol=0)
        torch.testing.assert_close(torch.cat(parts_y, 2), vae.decode(y), atol=0, rtol=0)


def test_encoder_pieces_can_be_longer(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    from yume_env.model.vae import _patchify

    x = _patchify(case["video"][None])
    with torch.no_grad():
        cache = CausalCache()
        pieces = [vae.encoder(x[:, :, :1], cache)]
        pieces += [vae.encoder(x[:, :, s : s + 4], cache) for s in range(1, 17, 4)]
        official = torch.cat(pieces, 2)
        cache = CausalCache()
        longer = torch.cat([vae.encoder(x[:, :, :9], cache), vae.encoder(x[:, :, 9:], cache)], 2)
    assert official.shape[2] == longer.shape[2] == 5
    torch.testing.assert_close(longer, official, atol=2e-5, rtol=2e-5)
    frames = cache.latent_frames
    with pytest.raises(ValueError):
        vae.encoder(x[:, :, 1:4], cache)  # 3 frames cannot be halved twice
    with pytest.raises(ValueError):
        vae.encoder(x[:, :, :4], CausalCache())  # a stream starts with 1 + 4k frames
    assert cache.latent_frames == frames  # rejected before anything was consumed


# ---------------------------------------------------------------- shapes, batching, dtypes


def test_trailing_frames_are_dropped(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    video = case["video"][None]
    longer = torch.cat([video, video[:, :, -3:]], dim=2)  # 20 frames -> still 5 latents
    with torch.inference_mode():
        z = vae.encode(longer)
        z_single = vae.encode(video[:, :, :1])
    assert z.shape == (1, 48, 5, 4, 6) and z_single.shape == (1, 48, 1, 4, 6)
    torch.testing.assert_close(z[0], case["latents"], **TOL)


def test_batch_matches_single_samples(vae: WanVAE, case: dict[str, torch.Tensor]) -> None:
    video = case["video"][None, :, :9]
    pair = torch.cat([video, -video.flip(-1)], dim=0)
    with torch.inference_mode():
        z = vae.encode(pair)
        z_each = torch.cat([vae.encode(pair[:1]), vae.encode(pair[1:])], 0)
        x = vae.decode(z)
        x_each = torch.cat([vae.decode(z[:1]), vae.decode(z[1:])], 0)
    assert z.shape == (2, 48, 3, 4, 6) and x.shape == (2, 3, 9, 64, 96)
    torch.testing.assert_close(z, z_each, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x, x_each, atol=1e-5, rtol=1e-5)


def test_bfloat16_smoke(vae: WanVAE, case: dict[str, torch.Tensor], decoded_once: torch.Tensor) -> None:
    vae_bf16 = WanVAE(vae.config).eval()
    vae_bf16.load_state_dict(vae.state_dict())
    vae_bf16.to(torch.bfloat16)
    with torch.inference_mode():
        z = vae_bf16.encode(case["video"][None, :, :5])
        x = vae_bf16.decode_unclamped(case["latents"][None, :, :2])
    assert z.dtype == x.dtype == torch.float32
    assert z.shape == (1, 48, 2, 4, 6) and x.shape == (1, 3, 5, 64, 96)
    assert torch.isfinite(z).all() and torch.isfinite(x).all()
    assert (x - decoded_once[:, :, :5]).abs().mean() < 0.1


def test_rejects_bad_shapes(vae: WanVAE) -> None:
    with pytest.raises(ValueError):
        vae.encode(torch.zeros(1, 3, 5, 64, 88))  # width not a multiple of 16
    with pytest.raises(ValueError):
        vae.encode(torch.zeros(3, 5, 64, 96))
    with pytest.raises(ValueError):
        vae.decode(torch.zeros(1, 16, 2, 4, 6))


def test_autoencode_frames_is_encode_then_decode(vae: WanVAE) -> None:
    from yume_env.world.images import autoencode_frames, to_uint8

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 32, 48, 3), dtype=np.uint8)
    out = autoencode_frames(vae, frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    video = torch.from_numpy(frames).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]
    with torch.inference_mode():
        expected = to_uint8(vae.decode(vae.encode(video))[0])
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, frames)  # a lossy code, not a copy
    for bad in (frames[:4], frames[..., :2], frames.astype(np.float32), frames[0]):
        with pytest.raises(ValueError, match="frames: got"):
            autoencode_frames(vae, bad)


def test_real_config_matches_manifest() -> None:
    expected: dict[str, tuple[tuple[int, ...], str]] = {}
    for line in (REF / "manifest_vae_wan22.tsv").read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("name\t"):
            continue
        name, shape, dtype, numel = line.split("\t")
        dims = tuple(int(s) for s in shape.split(","))
        assert torch.Size(dims).numel() == int(numel)
        expected[name] = (dims, dtype)

    with torch.device("meta"):
        model = WanVAE(VAEConfig())
    state = model.state_dict()
    assert list(state) == list(expected)
    for name, tensor in state.items():
        assert (tuple(tensor.shape), str(tensor.dtype).removeprefix("torch.")) == expected[name], name
    assert len(list(model.buffers())) == 0
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\nWan2.2 VAE parameters: {n_params:,}")
    assert n_params == 704_688_668
    assert model.config.spatial_stride == 16 and model.config.temporal_stride == 4


# ---------------------------------------------------------------- CPU fast paths


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    [(3, 1, 1), (1, 1, 0), ((3, 1, 1), (2, 1, 1), 0), ((3, 1, 1), 1, (1, 0, 0))],
)
def test_causal_conv_matches_conv3d(kernel, stride, padding, monkeypatch: pytest.MonkeyPatch) -> None:
    from yume_env.model.vae_blocks import CausalConv3d

    torch.manual_seed(0)
    conv = CausalConv3d(12, 16, kernel, stride=stride, padding=padding).eval()
    # A permuted (non-contiguous) input, as the decoder's resampling layers hand on.
    x = torch.randn(1, 6, 12, 10, 14).transpose(1, 2)
    cache = CausalCache()
    with torch.inference_mode():
        ours = conv(x, cache)
        n = conv.causal_frames
        padded = torch.cat([x.new_zeros(1, 12, n, 10, 14), x], dim=2)
        ref = torch.nn.functional.conv3d(padded, conv.weight, conv.bias, conv.stride, conv.padding)
        monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
        generic = conv(x, CausalCache())
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(generic, ref, atol=0, rtol=0)  # without oneDNN: exactly F.conv3d
    if n:
        torch.testing.assert_close(cache.history[conv.cache_key], x[:, :, -n:], atol=0, rtol=0)


def test_wide_conv_on_few_positions_keeps_conv3d() -> None:
    from yume_env.model.vae_blocks import CausalConv3d

    torch.manual_seed(0)
    conv = CausalConv3d(256, 256, 3, padding=1).eval()  # too many weights for 12 positions
    x = torch.randn(1, 256, 1, 2, 2)
    with torch.inference_mode():
        ours = conv(x)
        padded = torch.nn.functional.pad(x, (0, 0, 0, 0, 2, 0))  # two zero frames in front
        ref = torch.nn.functional.conv3d(padded, conv.weight, conv.bias, padding=(0, 1, 1))
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)


def test_rms_norm_matches_vector_norm() -> None:
    from yume_env.model.vae_blocks import RMSNorm

    torch.manual_seed(0)
    norm = RMSNorm(24)
    with torch.no_grad():
        norm.gamma.uniform_(0.5, 1.5)
    x = torch.randn(2, 24, 3, 5, 7)
    ref = x / torch.linalg.vector_norm(x, dim=1, keepdim=True) * 24**0.5 * norm.gamma
    torch.testing.assert_close(norm(x), ref, atol=1e-6, rtol=1e-6)
    x[:, :, 0] = 0.0  # all-zero pixels stay zero (the norm is clamped, not divided by 0)
    assert norm(x)[:, :, 0].abs().max() == 0
