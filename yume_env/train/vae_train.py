"""Autoencoder training for the tiny Wan2.2-style VAE.

The VAE is trained as a deterministic autoencoder on procedural video windows: the encoder's mean
(``conv1`` output, first 48 channels) is normalised with the fixed official per-channel statistics
(:data:`yume_env.model.vae.LATENT_MEAN` / ``LATENT_STD``), which is what the DiT consumes, and decoded
back. The loss is

- L1 + MSE on pixels, plus an L1 loss on horizontal/vertical pixel differences (sharper edges
  without a perceptual network);
- a small moment penalty that keeps every normalised latent channel near zero mean and unit
  standard deviation, so the fixed normalisation stays right for the flow-matching noise scale and
  no extra latent scale (no new checkpoint key) is needed;
- decoding of slightly noised latents for part of each batch, so the decoder tolerates the small
  errors of generated latents.

Windows are encoded and decoded in one causal pass (first frame alone, then groups of 4), which is
the same computation as the streaming ``encode``/``decode`` up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from yume_env.model.vae import WanVAE, _patchify, _unpatchify
from yume_env.model.vae_blocks import CausalCache


def encode_train(vae: WanVAE, video: torch.Tensor) -> torch.Tensor:
    """Normalised latents of ``video [B, 3, 1+4k, H, W]`` in [-1, 1], with gradients."""
    x = _patchify(video.to(vae.device, vae.dtype))
    mu = vae.conv1(vae.encoder(x, CausalCache()))[:, : vae.config.z_dim]
    return vae.normalize_latents(mu.float())


def decode_train(vae: WanVAE, latents: torch.Tensor) -> torch.Tensor:
    """Pixels ``[B, 3, 1+4(f-1), H, W]`` (not clamped) of normalised latents, with gradients."""
    x = vae.conv2(vae.denormalize_latents(latents).to(vae.dtype))
    return _unpatchify(vae.decoder(x, CausalCache())).float()


@dataclass
class VAELossWeights:
    l1: float = 1.0
    mse: float = 1.0
    grad: float = 0.5
    moments: float = 0.02
    noise_std: float = 0.1  # largest latent noise added before decoding (half of the batch)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two videos in [-1, 1]."""
    mse = F.mse_loss(a.float().clamp(-1, 1), b.float().clamp(-1, 1)).item()
    return 10.0 * torch.log10(torch.tensor(4.0 / max(mse, 1e-12))).item()


def _pixel_loss(recon: torch.Tensor, target: torch.Tensor, weights: VAELossWeights) -> torch.Tensor:
    dx = lambda v: v[..., :, 1:] - v[..., :, :-1]  # noqa: E731
    dy = lambda v: v[..., 1:, :] - v[..., :-1, :]  # noqa: E731
    grad = (dx(recon) - dx(target)).abs().mean() + (dy(recon) - dy(target)).abs().mean()
    return (
        weights.l1 * (recon - target).abs().mean()
        + weights.mse * F.mse_loss(recon, target)
        + weights.grad * grad
    )


def decoder_loss(
    vae: WanVAE, video: torch.Tensor, weights: VAELossWeights | None = None, generator=None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss for fine-tuning the decoder alone: the encoder is frozen, so the latents (and a DiT trained
    on them) stay valid while reconstructions get sharper."""
    weights = weights or VAELossWeights(noise_std=0.05)
    with torch.no_grad():
        z = encode_train(vae, video)
    b = z.shape[0]
    u = torch.rand(b, 1, 1, 1, 1, generator=generator).to(z.device) * weights.noise_std
    noise = torch.randn(z.shape, generator=generator).to(z.device)
    recon = decode_train(vae, z + u * noise)
    target = video.to(recon.device, recon.dtype)
    loss = _pixel_loss(recon, target, weights)
    with torch.no_grad():
        p = psnr(recon, target)
    return loss, {"loss": float(loss.detach()), "psnr": p, "latent_std": float(z.std())}


def vae_loss(
    vae: WanVAE, video: torch.Tensor, weights: VAELossWeights | None = None, generator=None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch of windows ``[B, 3, T, H, W]`` in [-1, 1] and some readable numbers."""
    weights = weights or VAELossWeights()
    z = encode_train(vae, video)
    b = z.shape[0]
    # latent noise on the second half of the batch (decoder robustness)
    scale = torch.zeros(b, 1, 1, 1, 1, device=z.device)
    if weights.noise_std > 0 and b > 1:
        u = torch.rand(b - b // 2, generator=generator, device="cpu").to(z.device)
        scale[b // 2 :, 0, 0, 0, 0] = u * weights.noise_std
    noise = torch.randn(z.shape, generator=generator, device="cpu").to(z.device)
    recon = decode_train(vae, z + scale * noise)
    target = video.to(recon.device, recon.dtype)
    l1 = (recon - target).abs().mean()
    mse = F.mse_loss(recon, target)
    dx = lambda v: v[..., :, 1:] - v[..., :, :-1]  # noqa: E731
    dy = lambda v: v[..., 1:, :] - v[..., :-1, :]  # noqa: E731
    grad = (dx(recon) - dx(target)).abs().mean() + (dy(recon) - dy(target)).abs().mean()
    flat = z.transpose(0, 1).flatten(1)  # [C, N]
    mean, std = flat.mean(dim=1), flat.std(dim=1)
    moments = (mean.square() + (std - 1.0).square()).mean()
    loss = weights.l1 * l1 + weights.mse * mse + weights.grad * grad + weights.moments * moments
    with torch.no_grad():
        clean = recon[: max(b // 2, 1)]
        p = psnr(clean, target[: max(b // 2, 1)])
    stats = {
        "loss": float(loss.detach()),
        "l1": float(l1.detach()),
        "psnr": p,
        "latent_std": float(std.mean().detach()),
        "latent_mean": float(mean.abs().mean().detach()),
    }
    return loss, stats
