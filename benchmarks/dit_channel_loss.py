"""Where a tiny-8x transformer's held-out error sits, channel by channel, on the closed-form latents.

    python benchmarks/dit_channel_loss.py --checkpoint checkpoints/tiny-8x-lin/checkpoint \
        --json benchmarks/results/dit_channel_loss_tiny_8x.json

The closed-form encoder (``yume-world train --linear-encoder``) whitens its 48 principal
components, so every latent channel has unit variance although the leading few carry most of the
picture. This script refits that code (deterministic: seeds 100000-100029, 3 blocks, as the
trainer does) for each channel's standard deviation before whitening, then measures on held-out
episodes (seeds below the training range, every block, each at every sampler level, fixed noise)
the transformer's velocity MSE and x0 MSE per channel, and the x0 MSE weighted by each channel's
share of the variance (what the decoded picture feels); next to it, the same for a model that
repeats the newest history latent. CPU, one thread, about two minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import report


def code_scale(episodes: int = 30) -> np.ndarray:
    """Standard deviation of each principal component of the closed-form code, as the trainer fits it."""
    from yume_env.train.linear_code import fit_linear_code_on_seeds

    return fit_linear_code_on_seeds(range(100_000, 100_000 + episodes), (96, 160)).scale.numpy()


@torch.no_grad()
def channel_errors(checkpoint: Path, episodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """Per-channel velocity MSE and x0 MSE over held-out blocks and the sampler's levels, and the
    x0 MSE of repeating the newest history latent (a model that only copies the past)."""
    from yume_env.model.pipeline import load_checkpoint
    from yume_env.train.data import encode_episode, rollout_episode
    from yume_env.train.dit_train import FlowConfig

    model = load_checkpoint(checkpoint, "cpu", dtype="float32")
    dit = model.dit.eval()
    levels = [float(s) for s in FlowConfig().sampler_levels()]
    gen = torch.Generator().manual_seed(0)
    velocity, x0_err, copy_err = [], [], []
    for i in range(episodes):
        ep = rollout_episode(100_000 - 2 - i, 8, (96, 160))
        start, blocks, captions = encode_episode(
            model.vae, ep, mirror=False, device=torch.device("cpu")
        ).parts[0]
        for k, target in enumerate(blocks):
            history = torch.cat([start, *blocks[:k]], dim=1)
            x0 = target[None].float()
            copy_err.append((history[None, :, -1:].float() - x0).square().mean((0, 2, 3, 4)).numpy())
            prepared = dit.prepare([history], model.encode_text([captions[k]]), tuple(x0.shape[-2:]))
            for s in levels:
                noise = torch.randn(x0.shape, generator=gen)
                xt = (1 - s) * x0 + s * noise
                v = dit.denoise(prepared, xt, torch.tensor([s * 1000.0]))
                velocity.append((v - (noise - x0)).square().mean((0, 2, 3, 4)).numpy())
                x0_err.append((xt - s * v - x0).square().mean((0, 2, 3, 4)).numpy())
    return np.mean(velocity, 0), np.mean(x0_err, 0), np.mean(copy_err, 0), levels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--checkpoint", type=Path, required=True, help="a tiny-8x checkpoint with the closed-form encoder"
    )
    p.add_argument("--episodes", type=int, default=3, help="held-out 8-block episodes (default 3)")
    p.add_argument("--json", type=Path, help="write the numbers here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sigma = code_scale()
    velocity, x0_err, copy_err, levels = channel_errors(args.checkpoint, args.episodes)
    share = sigma**2 / (sigma**2).sum()
    result = {
        "checkpoint": str(args.checkpoint),
        "sampler_levels": levels,
        "code_std_per_channel": sigma.round(4).tolist(),
        "variance_share_first_8": float(share[:8].sum()),
        "variance_share_first_16": float(share[:16].sum()),
        "velocity_mse_per_channel": velocity.round(4).tolist(),
        "x0_mse_per_channel": x0_err.round(4).tolist(),
        "velocity_mse": float(velocity.mean()),
        "x0_mse": float(x0_err.mean()),
        "x0_mse_variance_weighted": float((share * x0_err).sum()),
        "x0_mse_first_8": float(x0_err[:8].mean()),
        "x0_mse_last_16": float(x0_err[-16:].mean()),
        "repeat_newest_latent_mse_per_channel": copy_err.round(4).tolist(),
        "repeat_newest_latent_mse": float(copy_err.mean()),
        "repeat_newest_latent_mse_variance_weighted": float((share * copy_err).sum()),
        "seconds": time.perf_counter() - t0,
        "command": "python benchmarks/dit_channel_loss.py --checkpoint "
        + f"{args.checkpoint}"
        + (f" --episodes {args.episodes}" if args.episodes != 3 else "")
        + (f" --json {args.json}" if args.json else ""),
    }
    report(result, args.json, digits=3, lists=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
