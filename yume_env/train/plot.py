"""Loss-curve plot of a training run (needs matplotlib: ``pip install 'yume-env[plot]'``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) < 3 or n <= 1:
        return y
    n = min(n, len(y))
    kernel = np.ones(n) / n
    padded = np.concatenate([np.full(n - 1, y[0]), y])
    return np.convolve(padded, kernel, mode="valid")


def plot_losses(losses: dict, path: str | Path, validation: dict | None = None) -> Path:
    """Write the VAE and DiT loss curves (raw and smoothed) to a PNG; returns its path.

    ``validation`` may hold ``vae`` / ``decoder`` lists of ``[step, held-out PSNR]`` (decoder steps are
    drawn after the VAE's), drawn over the training-batch PSNR, and ``dit`` rows of ``[step, held-out
    loss, camera-block loss, same with the direction reversed]``, drawn over the transformer loss.
    """
    validation = validation or {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    vae = np.array(losses.get("vae") or [], dtype=float).reshape(-1, 4)
    dit = np.array(losses.get("dit") or [], dtype=float).reshape(-1, 3)
    ax = axes[0]
    if len(vae):
        ax.plot(vae[:, 0], vae[:, 1], alpha=0.3, color="C0")
        ax.plot(vae[:, 0], _smooth(vae[:, 1], 10), color="C0")
    ax.set(title="autoencoder loss", xlabel="step", yscale="log")
    ax = axes[1]
    if len(vae):
        ax.plot(vae[:, 0], vae[:, 2], alpha=0.3, color="C1")
        ax.plot(vae[:, 0], _smooth(vae[:, 2], 10), color="C1")
    offset = vae[-1, 0] if len(vae) else 0
    dec = np.array(losses.get("decoder") or [], dtype=float).reshape(-1, 3)
    if len(dec):
        ax.plot(dec[:, 0] + offset, _smooth(dec[:, 2], 10), color="C4", label="decoder fine-tuning (batches)")
    for key, color, shift in (("vae", "k", 0), ("decoder", "C3", offset)):
        val = np.array(validation.get(key) or [], dtype=float).reshape(-1, 2)
        if len(val):
            ax.plot(
                val[:, 0] + shift, val[:, 1], "o-", color=color, ms=3, label=f"{key}: held-out full frames"
            )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set(title="autoencoder reconstruction PSNR (dB)", xlabel="step")
    ax = axes[2]
    if len(dit):
        ax.plot(dit[:, 0], dit[:, 1], alpha=0.3, color="C2")
        ax.plot(dit[:, 0], _smooth(dit[:, 1], 10), color="C2", label="flow-matching loss")
        ok = np.isfinite(dit[:, 2])
        if ok.any():
            ax.plot(dit[ok, 0], _smooth(dit[ok, 2], 10), color="C3", label="x0 MSE at s >= 0.7")
    dval = np.array(validation.get("dit") or [], dtype=float).reshape(-1, 4)
    if len(dval):
        ax.plot(dval[:, 0], dval[:, 1], "o-", color="k", ms=3, label="held-out loss")
        if np.isfinite(dval[:, 3]).any():
            ax.plot(
                dval[:, 0],
                dval[:, 3] - dval[:, 2],
                "s--",
                color="C5",
                ms=3,
                label="held-out camera blocks: loss gap, direction reversed",
            )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set(title="transformer loss", xlabel="step", yscale="log")
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
