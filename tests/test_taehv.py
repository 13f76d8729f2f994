"""The TAEHV tiny decoder: goldens from the reference code, full-size key layout, streaming, loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from yume_env.conformance import run_folder, taehv_config
from yume_env.model.checkpoint import CheckpointError
from yume_env.model.taehv import TAEHV, TAEHV_PRESETS, TAEHVConfig, config_from_shapes, load_taehv

CASES = Path(__file__).parent / "data" / "reference" / "taehv"

# The golden outputs were produced with a final-layer bias (``decoder.22.bias``) slightly different
# from the float16 value stored in the weights file: every decoded pixel differs from a float64
# run of the stored weights by a constant per output channel, an exact multiple of 2**-16 (the
# residual after removing it is ~2e-7). These are those multiples, read off the goldens once; with
# them every decoded tensor matches to ~2e-6, with the stored bias to ~2e-4 / ~3.4e-4 (base / super).
# The encoder is unaffected and matches the stored weights directly.
BIAS_FIX_UNITS = {
    "taew2_2_base": (6, 4, 2, -12, 2, 0, -2, 10, -7, -3, -2, -6),
    "taew2_2_super": (4, 9, -16, 0, 12, -8, -2, -2, -4, -15, -8, 12),
}


def _rel(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours - ref).abs().max() / ref.abs().max())


def _manifest(name: str) -> dict[str, tuple[int, ...]]:
    rows = (CASES / name).read_text().splitlines()[1:]
    return {k: tuple(int(d) for d in s.split("x")) for k, s, _ in (r.split("\t") for r in rows if r)}


@pytest.fixture(scope="module", params=sorted(BIAS_FIX_UNITS))
def case(request):
    """(tensors, model with the stored weights, model with the fixed bias, its decode of latents_long)."""
    name = request.param
    meta = json.loads((CASES / f"{name}.json").read_text())
    weights = {k: v.float() for k, v in load_file(str(CASES / meta["weights_file"])).items()}
    model = TAEHV(taehv_config(meta)).eval()
    model.load_state_dict(weights, strict=True)
    fixed = TAEHV(model.config).eval()
    units = torch.tensor(BIAS_FIX_UNITS[name], dtype=torch.float32)
    fixed.load_state_dict({**weights, "decoder.22.bias": weights["decoder.22.bias"] + units / 2**16})
    tensors = load_file(str(CASES / f"{name}.safetensors"))
    with torch.no_grad():
        long = fixed.decode_video(tensors["latents_long"])
    return tensors, model, fixed, long


@pytest.mark.parametrize("name", ["taew2_2", "taew2_2_super"])
def test_full_size_models_have_the_published_keys_and_shapes(name):
    with torch.device("meta"):
        model = TAEHV(TAEHV_PRESETS[name])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = _manifest(f"manifest_{name}.tsv")
    assert ours == expected
    assert (
        sum(v.numel() for v in model.state_dict().values())
        == {
            "taew2_2": 11_418_108,
            "taew2_2_super": 20_487_996,
        }[name]
    )
    assert config_from_shapes(expected) == TAEHV_PRESETS[name]


@torch.no_grad()
def test_decode_matches_the_reference(case):
    t, model, fixed, long = case
    assert _rel(fixed.decode_video(t["latents"]), t["decoded"]) < 1e-5
    assert _rel(long, t["decoded_long"]) < 1e-5
    # with the stored bias, the only difference is the per-channel offset described above
    assert _rel(model.decode_video(t["latents"]), t["decoded"]) < 4e-4
    assert t["decoded"].shape[1] == 4 * t["latents"].shape[1] - 3 == 29


@torch.no_grad()
def test_encode_matches_the_reference(case):
    t, model, _fixed, _long = case
    assert _rel(model.encode_video(t["video"]), t["encoded"]) < 1e-5
    # a clip that is not a multiple of 4 frames is padded with its last frame
    padded = model.encode_video(
        torch.cat([t["video"][:, :30], t["video"][:, 29:30].expand(-1, 2, -1, -1, -1)], 1)
    )
    torch.testing.assert_close(model.encode_video(t["video"][:, :30]), padded)


@torch.no_grad()
def test_streaming_equals_the_reference_and_the_parallel_decode(case):
    t, _model, fixed, long = case
    latents = t["latents_long"]
    stream = fixed.stream_decoder()
    one_by_one = torch.cat([stream.decode(latents[:, i : i + 1]) for i in range(latents.shape[1])], 1)
    assert _rel(one_by_one, t["stream_decoded_long"]) < 1e-5
    assert stream.latents_decoded == 16 and stream.frames_decoded == 61
    blocks = fixed.stream_decoder()
    first, second = blocks.decode(latents[:, :8]), blocks.decode(latents[:, 8:])
    assert (first.shape[1], second.shape[1]) == (29, 32)
    torch.testing.assert_close(torch.cat([first, second], 1), long, atol=1e-5, rtol=0)


@torch.no_grad()
def test_last_frames_skip_work_but_not_state(case):
    t, _model, fixed, full = case
    latents = t["latents_long"]
    torch.testing.assert_close(fixed.decode_video(latents, last_frames=1), full[:, -1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(fixed.decode_video(latents, last_frames=6), full[:, -6:], atol=1e-5, rtol=0)
    # a stream primed with only its last frame continues exactly like a fully decoded one
    skim, whole = fixed.stream_decoder(), fixed.stream_decoder()
    assert skim.decode(latents[:, :5], last_frames=1).shape[1] == 1
    whole.decode(latents[:, :5])
    torch.testing.assert_close(skim.decode(latents[:, 5:]), whole.decode(latents[:, 5:]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="last_frames: got 0"):
        skim.decode(latents[:, :1], last_frames=0)


@torch.no_grad()
def test_stream_clone_and_reset(case):
    t, _model, fixed, _long = case
    latents = t["latents_long"][:, :10]
    stream = fixed.stream_decoder()
    stream.decode(latents[:, :8])
    fork = stream.clone()
    a = stream.decode(latents[:, 8:10])
    b = fork.decode(latents[:, 8:10])
    assert torch.equal(a, b)
    stream.reset()
    assert stream.latents_decoded == 0
    assert torch.equal(stream.decode(latents[:, :2]), fixed.stream_decoder().decode(latents[:, :2]))
    assert fork.nbytes() > 0


def test_conformance_runner_reads_taehv_cases(tmp_path):
    # the runner on a copy of a case whose weights carry the bias its outputs were made with
    for name, units in list(BIAS_FIX_UNITS.items())[:1]:
        meta = json.loads((CASES / f"{name}.json").read_text())
        weights = {k: v.float() for k, v in load_file(str(CASES / meta["weights_file"])).items()}
        weights["decoder.22.bias"] += torch.tensor(units, dtype=torch.float32) / 2**16
        save_file(weights, str(tmp_path / meta["weights_file"]))
        shutil.copy(CASES / f"{name}.json", tmp_path)
        shutil.copy(CASES / f"{name}.safetensors", tmp_path)
    results = run_folder(tmp_path)
    assert [(r.name, r.kind, r.ok) for r in results] == [("taew2_2_base", "taehv", True)]
    assert {c.tensor for c in results[0].comparisons} == {
        "decoded",
        "decoded_long",
        "stream_decoded_long",
        "encoded",
    }
    assert max(r.rel for r in results) < 1e-5


# ------------------------------------------------------------------------------------- loading
SMALL = TAEHVConfig(encoder_width=8, decoder_widths=(16, 8, 8, 8))
SMALL_SUPER = TAEHVConfig(variant="super", encoder_width=8, decoder_widths=(16, 8, 8, 8))


def _small_state(cfg: TAEHVConfig, dtype=torch.float16) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.to(dtype) for k, v in TAEHV(cfg).state_dict().items()}


@pytest.mark.parametrize("cfg", [SMALL, SMALL_SUPER], ids=["base", "super"])
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_load_safetensors_and_pth(tmp_path, cfg, suffix):
    state = _small_state(cfg)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    model = load_taehv(path)
    assert model.config == cfg
    assert model.dtype == torch.float32
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k].float()), k
    assert load_taehv(path, variant=cfg.variant).config == cfg


def test_load_refuses_the_wrong_variant_and_bad_files(tmp_path):
    path = tmp_path / "taew2_2_super.safetensors"
    save_file(_small_state(SMALL_SUPER), str(path))
    with pytest.raises(
        CheckpointError, match=r"super TAEHV decoder \(taew2_2_super\), but 'base' \(taew2_2\) was asked for"
    ):
        load_taehv(path, variant="taew2_2")
    with pytest.raises(ValueError, match="variant: got 'large'"):
        load_taehv(path, variant="large")
    with pytest.raises(CheckpointError, match="is not a file"):
        load_taehv(tmp_path / "missing.safetensors")

    state = _small_state(SMALL)
    del state["decoder.22.bias"]
    state["decoder.99.weight"] = torch.zeros(2)
    state["decoder.8.weight"] = torch.zeros(3, 3, 3, 3, dtype=torch.float16)
    save_file(state, str(tmp_path / "broken.safetensors"))
    with pytest.raises(CheckpointError) as err:
        load_taehv(tmp_path / "broken.safetensors")
    message = str(err.value)
    assert "missing keys (1): decoder.22.bias" in message
    assert "unexpected keys (1): decoder.99.weight" in message
    assert "wrong shapes" in message and "decoder.8.weight" in message

    ints = {k: v.to(torch.int32) for k, v in _small_state(SMALL).items()}
    save_file(ints, str(tmp_path / "ints.safetensors"))
    with pytest.raises(CheckpointError, match=r"non-float tensors .*torch\.int32"):
        load_taehv(tmp_path / "ints.safetensors")

    torch.save({"model": object()}, tmp_path / "pickle.pth")
    with pytest.raises(CheckpointError, match="refused to load"):
        load_taehv(tmp_path / "pickle.pth")

    save_file({"foo.weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="missing keys"):
        load_taehv(tmp_path / "other.safetensors")
