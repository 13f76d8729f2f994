"""The linear yardsticks of benchmarks/vae_linear_bound.py on synthetic latents with known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import vae_linear_bound as vlb  # noqa: E402

P = 8


def _frames(z: torch.Tensor, pattern: torch.Tensor) -> np.ndarray:
    """Frames whose every 8x8 patch is ``pattern`` applied to its own latent: ``[N, 8h, 8w, 3]``."""
    n, c, h, w = z.shape
    rows = z.permute(0, 2, 3, 1).reshape(-1, c) @ pattern  # one row per patch: (8, 8, 3) numbers
    return vlb.unpatch(rows.numpy(), (n, h * P, w * P, 3), P).astype(np.float32)


def test_decoder_layout_bound_equals_ridge_without_the_constraint_and_falls_with_it():
    g = torch.Generator().manual_seed(0)
    z_train, z_test = torch.randn(40, 6, 4, 5, generator=g), torch.randn(10, 6, 4, 5, generator=g)
    # a pattern that varies inside the patch with no 2-pixel period: a linear read-back of each
    # latent alone recovers it exactly, a decoder of the Wan layout cannot
    pattern = 0.1 * torch.randn(6, P * P * 3, generator=g)
    x_train, x_test = _frames(z_train, pattern), _frames(z_test, pattern)
    ridge = vlb.linear_decoder_psnr(z_train, x_train, z_test, x_test, P)
    unconstrained = vlb.decoder_class_linear_psnr(z_train, x_train, z_test, x_test, P, period=P)
    layout = vlb.decoder_class_linear_psnr(z_train, x_train, z_test, x_test, P, period=2)
    # measured: 49.4, 49.4 and 25.4 dB (the ridge's small penalty keeps it under exact)
    assert ridge > 45 and abs(unconstrained - ridge) < 0.1
    assert layout < ridge - 15


def test_decoder_layout_bound_is_exact_for_a_two_pixel_pattern():
    g = torch.Generator().manual_seed(1)
    z_train, z_test = torch.randn(40, 6, 4, 5, generator=g), torch.randn(10, 6, 4, 5, generator=g)
    tile = 0.1 * torch.randn(6, 2, 2, 3, generator=g)
    pattern = tile.repeat(1, P // 2, P // 2, 1).reshape(6, -1)  # repeats every 2 pixels: allowed
    x_train, x_test = _frames(z_train, pattern), _frames(z_test, pattern)
    assert vlb.decoder_class_linear_psnr(z_train, x_train, z_test, x_test, P, period=2) > 60
