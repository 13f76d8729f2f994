"""Official-layout checkpoint folders: round trip, sharding, and clear errors for broken ones."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from yume_env.model.checkpoint import (
    DIT_CONFIG,
    DIT_INDEX,
    DIT_WEIGHTS,
    T5_WEIGHTS,
    TOKENIZER_DIR,
    VAE_WEIGHTS,
    CheckpointError,
)
from yume_env.model.pipeline import build_model, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def tiny_model():
    return build_model("tiny", seed=3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_model) -> Path:
    return save_checkpoint(tiny_model, tmp_path_factory.mktemp("ckpt") / "Yume-tiny")


@pytest.fixture
def folder(saved, tmp_path) -> Path:
    """A fresh, writable copy of the saved checkpoint for tests that damage it."""
    return Path(shutil.copytree(saved, tmp_path / "copy"))


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_layout_is_the_official_one(saved):
    for name in (DIT_CONFIG, DIT_WEIGHTS, VAE_WEIGHTS, T5_WEIGHTS, TOKENIZER_DIR):
        assert (saved / name).exists(), name
    config = json.loads((saved / DIT_CONFIG).read_text())
    assert config["_class_name"] == "WanModel" and config["model_type"] == "ti2v"
    # .pth files are plain tensor state dicts that the safe unpickler accepts
    state = torch.load(saved / VAE_WEIGHTS, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_round_trip_gives_identical_weights_and_outputs(saved, tiny_model):
    loaded = load_checkpoint(saved, device="cpu")
    assert _same_state(loaded.dit, tiny_model.dit)
    assert _same_state(loaded.vae, tiny_model.vae)
    assert _same_state(loaded.text.model, tiny_model.text.model)
    assert loaded.preset.dit == tiny_model.preset.dit and loaded.preset.vae == tiny_model.preset.vae
    captions = ["First-person perspective. A red balloon appears."]
    torch.testing.assert_close(
        loaded.encode_text(captions)[0], tiny_model.encode_text(captions)[0], rtol=0, atol=0
    )
    g = torch.Generator().manual_seed(0)
    hist = torch.randn(48, 5, 6, 10, generator=g)
    block = torch.randn(1, 48, 8, 6, 10, generator=g)
    ctx = tiny_model.encode_text(captions)
    with torch.no_grad():
        a = tiny_model.dit(history=[hist], block=block, t=875.0, context=ctx)
        b = loaded.dit(history=[hist], block=block, t=875.0, context=ctx)
    assert torch.equal(a, b)


def test_sharded_dit_weights_load(folder, tiny_model):
    state = load_file(folder / DIT_WEIGHTS)
    keys = sorted(state)
    half = len(keys) // 2
    shards = {
        "model-00001-of-00002.safetensors": keys[:half],
        "model-00002-of-00002.safetensors": keys[half:],
    }
    weight_map = {}
    for name, ks in shards.items():
        save_file({k: state[k] for k in ks}, folder / name)
        weight_map.update(dict.fromkeys(ks, name))
    (folder / DIT_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / DIT_WEIGHTS).unlink()
    loaded = load_checkpoint(folder, device="cpu")
    assert _same_state(loaded.dit, tiny_model.dit)


def test_bf16_load_casts_floats(saved):
    loaded = load_checkpoint(saved, device="cpu", dtype="bfloat16")
    assert loaded.dit.patch_embedding.weight.dtype == torch.bfloat16
    assert loaded.vae.dtype == torch.float32  # the VAE stays float32 by default, as officially


def test_missing_key_is_listed(folder):
    state = load_file(folder / DIT_WEIGHTS)
    del state["blocks.1.ffn.0.weight"]
    save_file(state, folder / DIT_WEIGHTS)
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): blocks\.1\.ffn\.0\.weight"):
        load_checkpoint(folder, device="cpu")


def test_unexpected_and_misshaped_keys_are_listed_with_counts(folder):
    state = load_file(folder / DIT_WEIGHTS)
    state["sideblock.weight"] = torch.zeros(3)
    state["head.head.bias"] = torch.zeros(7)
    save_file(state, folder / DIT_WEIGHTS)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder, device="cpu")
    msg = str(err.value)
    assert "unexpected keys (1): sideblock.weight" in msg
    assert "wrong shapes (1): head.head.bias (file (7,), model (192,))" in msg


def test_truncated_safetensors_names_the_file(folder):
    path = folder / DIT_WEIGHTS
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model\.safetensors"):
        load_checkpoint(folder, device="cpu")


def test_truncated_pth_names_the_file(folder):
    path = folder / VAE_WEIGHTS
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"Wan2\.2_VAE\.pth"):
        load_checkpoint(folder, device="cpu")


class _Payload:
    """Unpickling this would run a shell command (what a hostile checkpoint does)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_and_never_runs(folder, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"encoder.conv1.weight": _Payload(marker)}, folder / VAE_WEIGHTS)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(folder, device="cpu")
    assert not marker.exists()


def test_missing_files_are_named_with_the_layout(folder):
    (folder / T5_WEIGHTS).unlink()
    shutil.rmtree(folder / TOKENIZER_DIR)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder, device="cpu")
    msg = str(err.value)
    assert "models_t5_umt5-xxl-enc-bf16.pth" in msg and "google/umt5-xxl" in msg and "expected layout" in msg


def test_not_a_folder_and_bad_device(tmp_path, saved):
    with pytest.raises(CheckpointError, match="is not a directory"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(ValueError, match="device: got 'tpu:9'"):
        load_checkpoint(saved, device="tpu:9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            load_checkpoint(saved, device="cuda")


def test_bad_config_is_reported(folder):
    (folder / DIT_CONFIG).write_text(json.dumps({"model_type": "i2v"}))
    with pytest.raises(CheckpointError, match="model_type"):
        load_checkpoint(folder, device="cpu")
