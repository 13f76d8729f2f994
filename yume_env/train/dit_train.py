"""Flow-matching training of the Yume DiT, the Yume-1.5 recipe at small scale.

One sample is one 8-latent block with its clean history (the start image's 5 latents plus the ``k``
blocks before it, ``k`` drawn per batch) and its caption's text encoding. As in the official
pipeline the history tokens go through the TSCM tiers at timestep 0 (:meth:`YumeDiT.prepare`) and
the block tokens carry the block's own timestep (per-token timesteps), so training runs exactly the
forward that inference runs:

- ``s`` is a noise level per sample; ``x_s = (1 - s) x0 + s * noise``; the model predicts the
  velocity ``noise - x0`` at timestep ``1000 s`` (MSE loss).
- ``s`` is drawn half of the time from the four noise levels the shipped 4-step, shift-7 sampler
  visits (1.0, 0.9545, 0.875, 0.7), and otherwise from the shifted-uniform law of the official
  schedule (``s = shift u / (1 + (shift - 1) u)``, ``u ~ U(0, 1)``, shift 5 as the 50-step setting),
  so the few-step sampler is sharp and many-step sampling still works.
- Blocks of history after the start image get a little Gaussian noise now and then, so the model
  learns to follow its own (imperfect) past blocks.
- Optionally (``self_history_rate``) the newest history block of some samples is replaced by the
  model's own 4-step sample of it (:func:`with_own_history`), while the target stays the true next
  block: the model meets its own output as history, as it does in every rollout, and learns to pull
  back towards the scene instead of compounding its drift (scheduled sampling for video).
- Optionally (``channel_weights``) the MSE weighs latent channels unequally: the tiny-8x
  closed-form code whitens 48 principal components whose first 8 carry ~93% of the picture's
  variance, so a plain MSE spends most of the model on the faint ones.

An exponential moving average of the weights is kept; the EMA weights are what gets shipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from yume_env.model.dit import YumeDiT
from yume_env.model.sampler import (
    DISTILLED_SHIFT,
    DISTILLED_STEPS,
    QUALITY_SHIFT,
    EulerSampler,
    sampling_sigmas,
)
from yume_env.train.data import LatentBatch


@dataclass
class FlowConfig:
    sampler_steps: int = DISTILLED_STEPS
    sampler_shift: float = DISTILLED_SHIFT
    sampler_fraction: float = 0.5  # share of samples at the sampler's own noise levels
    shift: float = QUALITY_SHIFT  # shift of the continuous noise-level law
    history_noise: float = 0.05  # largest std of the noise on generated-history latents
    history_noise_rate: float = 0.5
    self_history_rate: float = 0.0  # share of samples whose newest history block is the model's own
    # weight of each latent channel in the MSE (mean 1); None: all equal. Whitened latents whose
    # channels matter unequally to the picture (the tiny-8x closed-form code) weigh them by variance.
    channel_weights: tuple[float, ...] | None = None

    def sampler_levels(self) -> np.ndarray:
        """The noise levels the shipped few-step sampler visits (1.0 first)."""
        return sampling_sigmas(self.sampler_steps, self.sampler_shift)


def sample_sigmas(batch: int, rng: np.random.Generator, cfg: FlowConfig | None = None) -> np.ndarray:
    """Noise levels ``s`` in (0, 1] for one batch (see the module doc)."""
    cfg = cfg or FlowConfig()
    u = rng.uniform(0.0, 1.0, size=batch)
    s = cfg.shift * u / (1.0 + (cfg.shift - 1.0) * u)
    pick = rng.random(batch) < cfg.sampler_fraction
    levels = cfg.sampler_levels()
    s[pick] = levels[rng.integers(0, len(levels), size=int(pick.sum()))]
    return np.clip(s, 1e-3, 1.0)


@torch.no_grad()
def with_own_history(
    dit: YumeDiT, batch: LatentBatch, rng: np.random.Generator, rate: float, cfg: FlowConfig | None = None
) -> tuple[LatentBatch, int]:
    """``batch`` with the newest history block of about ``rate`` of its samples replaced by the
    model's own sample of that block (the shipped few-step sampler, from the history before it and
    that block's caption), and how many were replaced. Batches whose history is the start image
    alone come back unchanged."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate: got {rate!r}; accepted: a number in [0, 1]")
    k = batch.num_history_blocks
    if rate == 0.0 or k == 0:
        return batch, 0
    if batch.previous_contexts is None:
        raise ValueError("batch: previous_contexts is needed to regenerate the newest history block")
    cfg = cfg or FlowConfig()
    pick = np.flatnonzero(rng.random(len(batch.contexts)) < rate)
    if pick.size == 0:
        return batch, 0
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    device = dit.device
    history = batch.history.to(device)
    rows = torch.as_tensor(pick, device=device)
    before = history[rows, :, :-8]  # all but the newest block
    contexts = [batch.previous_contexts[int(i)] for i in pick]
    prepared = dit.prepare(list(before), contexts, tuple(history.shape[-2:]))
    sampler = EulerSampler(cfg.sampler_steps, cfg.sampler_shift)
    noise = torch.randn((pick.size, history.shape[1], 8, *history.shape[-2:]), generator=gen).to(device)
    was_training = dit.training
    dit.eval()
    try:
        own = sampler.sample(
            lambda x, t: dit.denoise(prepared, x, torch.full((pick.size,), t, dtype=torch.float64)), noise
        )
    finally:
        dit.train(was_training)
    history = history.clone()
    history[rows, :, -8:] = own.to(history.dtype)
    return replace(batch, history=history), int(pick.size)


def flow_matching_loss(
    dit: YumeDiT,
    batch: LatentBatch,
    rng: np.random.Generator,
    cfg: FlowConfig | None = None,
    start_latents: int = 5,
) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE between the predicted and the true velocity for one batch."""
    cfg = cfg or FlowConfig()
    device = dit.device
    x0 = batch.target.to(device)
    b = x0.shape[0]
    history = batch.history.to(device)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    if cfg.history_noise > 0 and history.shape[2] > start_latents:
        amount = torch.from_numpy(
            rng.uniform(0, cfg.history_noise, b) * (rng.random(b) < cfg.history_noise_rate)
        ).float()
        noise_h = torch.randn(history[:, :, start_latents:].shape, generator=gen)
        history = history.clone()
        history[:, :, start_latents:] += (amount.view(b, 1, 1, 1, 1) * noise_h).to(device)
    s_np = sample_sigmas(b, rng, cfg)
    s = torch.from_numpy(s_np).float().to(device).view(b, 1, 1, 1, 1)
    noise = torch.randn(x0.shape, generator=gen).to(device)
    xt = (1.0 - s) * x0 + s * noise
    prepared = dit.prepare(list(history), batch.contexts, tuple(x0.shape[-2:]))
    v = dit.denoise(prepared, xt, torch.from_numpy(s_np * 1000.0))
    if cfg.channel_weights is None:
        loss = F.mse_loss(v, noise - x0)
    else:
        if len(cfg.channel_weights) != x0.shape[1]:
            raise ValueError(
                f"channel_weights: got {len(cfg.channel_weights)} weights; accepted: one per latent channel ({x0.shape[1]})"
            )
        w = torch.tensor(cfg.channel_weights, dtype=v.dtype, device=device).view(1, -1, 1, 1, 1)
        loss = ((v - (noise - x0)).square() * w).mean()
    with torch.no_grad():
        x0_pred = xt - s * v
        hi = torch.from_numpy(s_np >= 0.69).to(device)
        x0_err = (x0_pred - x0).square().flatten(1).mean(1)
    stats = {
        "loss": float(loss.detach()),
        "x0_mse_high_noise": float(x0_err[hi].mean()) if bool(hi.any()) else float("nan"),
        "history_blocks": batch.num_history_blocks,
    }
    return loss, stats


@dataclass
class ValidationBatch:
    """Fixed held-out samples sharing one history length, for :func:`validation_losses`.

    ``swapped`` holds, for the samples whose caption moves the camera, the text encoding of the same
    caption with the camera direction reversed (None otherwise): the loss gap between the two says
    whether the model reads the camera words on scenes it never saw.
    """

    history: torch.Tensor  # [B, C, T, h, w]
    target: torch.Tensor  # [B, C, 8, h, w]
    noise: torch.Tensor  # [B, C, 8, h, w], fixed
    sigmas: np.ndarray  # [B], fixed
    contexts: list[torch.Tensor]
    swapped: list[torch.Tensor | None]


def _velocity_mse(dit: YumeDiT, history, contexts, xt, t, x0, noise) -> torch.Tensor:
    """Per-sample MSE of the predicted velocity."""
    prepared = dit.prepare(list(history), contexts, tuple(x0.shape[-2:]))
    v = dit.denoise(prepared, xt, t)
    return (v - (noise - x0)).square().flatten(1).mean(1).float().cpu()


@torch.no_grad()
def validation_losses(dit: YumeDiT, batches: list[ValidationBatch]) -> dict[str, float]:
    """Held-out flow-matching loss (``loss``), and on camera-moving samples the loss with the true
    caption (``camera``) and with the camera direction reversed (``camera_swapped``)."""
    device = dit.device
    was_training = dit.training
    dit.eval()
    every, true_cam, swapped_cam = [], [], []
    try:
        for b in batches:
            x0, noise, history = b.target.to(device), b.noise.to(device), b.history.to(device)
            s = torch.from_numpy(b.sigmas).float().to(device).view(-1, 1, 1, 1, 1)
            xt = (1.0 - s) * x0 + s * noise
            t = torch.from_numpy(b.sigmas * 1000.0)
            err = _velocity_mse(dit, history, b.contexts, xt, t, x0, noise)
            every.append(err)
            cam = [i for i, c in enumerate(b.swapped) if c is not None]
            if cam:
                swapped = [c if c is not None else b.contexts[i] for i, c in enumerate(b.swapped)]
                true_cam.append(err[cam])
                swapped_cam.append(_velocity_mse(dit, history, swapped, xt, t, x0, noise)[cam])
    finally:
        dit.train(was_training)
    out = {"loss": float(torch.cat(every).mean())}
    if true_cam:
        out["camera"] = float(torch.cat(true_cam).mean())
        out["camera_swapped"] = float(torch.cat(swapped_cam).mean())
    return out


class EMA:
    """Exponential moving average of a module's floating-point parameters."""

    def __init__(self, module: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # short warm-up of the average
        for k, v in module.state_dict().items():
            self.shadow[k].lerp_(v.detach().float(), 1.0 - d)

    def copy_to(self, module: torch.nn.Module) -> None:
        module.load_state_dict({k: v.to(module.state_dict()[k].dtype) for k, v in self.shadow.items()})

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.shadow = {k: v.float() for k, v in state["shadow"].items()}
