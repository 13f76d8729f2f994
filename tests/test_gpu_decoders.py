"""GPU checks of the frame decoders (skipped without CUDA): TAEHV on CUDA equals CPU, bf16 VAE decode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REFERENCE
from yume_env.conformance import taehv_config
from yume_env.model.frame_decoder import VAEFrameDecoder
from yume_env.model.taehv import TAEHV
from yume_env.model.vae import VAEConfig, WanVAE
from yume_env.world.images import to_uint8

pytestmark = pytest.mark.gpu
CASES = REFERENCE / "taehv"


def _taehv(name: str, device: str, dtype=torch.float32) -> TAEHV:
    meta = json.loads((CASES / f"{name}.json").read_text())
    model = TAEHV(taehv_config(meta))
    model.load_state_dict({k: v.float() for k, v in load_file(CASES / meta["weights_file"]).items()})
    return model.to(device, dtype).eval()


@pytest.mark.parametrize("name", ["taew2_2_base", "taew2_2_super"])
def test_taehv_on_cuda_equals_cpu(name):
    torch.backends.cudnn.allow_tf32 = False
    latents = load_file(CASES / f"{name}.safetensors")["latents_long"]
    with torch.no_grad():
        cpu = _taehv(name, "cpu").decode_video(latents)
        gpu = _taehv(name, "cuda").decode_video(latents.cuda()).cpu()
        stream = _taehv(name, "cuda").stream_decoder()
        pieces = torch.cat([stream.decode(latents[:, i : i + 8].cuda()).cpu() for i in (0, 8)], 1)
        half = _taehv(name, "cuda", torch.float16).decode_video(latents.cuda()).cpu()
    assert (gpu - cpu).abs().max() < 1e-4
    assert (pieces - cpu).abs().max() < 1e-4
    assert (half - cpu).abs().max() < 2e-2  # float16 (what the bench uses on CUDA): close, not equal


def test_bf16_vae_decode_on_cuda_is_close_to_fp32():
    torch.manual_seed(0)
    with torch.device("cuda"):
        vae = WanVAE(VAEConfig(dim=32, dec_dim=32)).eval()
    latents = torch.randn(2, 48, 8, 6, 10, device="cuda")
    with torch.no_grad():
        fp32 = to_uint8(VAEFrameDecoder(vae).decode_block(latents)).astype(np.float64)
        bf16 = to_uint8(VAEFrameDecoder(vae, torch.bfloat16).decode_block(latents)).astype(np.float64)
    mse = np.mean((fp32 - bf16) ** 2)
    assert fp32.shape == (2, 29, 96, 160, 3)
    assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 35
    assert vae.dtype == torch.float32  # encoding keeps the float32 VAE
