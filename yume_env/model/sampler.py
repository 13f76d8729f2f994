"""Flow-matching Euler sampler with the official sigma schedule.

``sigma_i = shift*s / (1 + (shift-1)*s)`` for ``s = linspace(1, 0, steps+1)[:steps]`` (float64),
then ``x <- x + (sigma_{i+1} - sigma_i) * v`` with ``sigma_steps = 0``; the model predicts the velocity
``noise - x0`` at timestep ``1000*sigma_i``. Yume-1.5's distilled model uses 4 steps at shift 7
(timesteps 1000, 954.5, 875, 700, and the last step jumps from 0.7 straight to 0); the official web
app's quality setting is 50 steps at shift 5. There is no classifier-free guidance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

DISTILLED_STEPS, DISTILLED_SHIFT = 4, 7.0
QUALITY_STEPS, QUALITY_SHIFT = 50, 5.0


def sampling_sigmas(steps: int, shift: float) -> np.ndarray:
    """The ``steps`` float64 sigmas of the official schedule (without the final 0)."""
    if not isinstance(steps, int | np.integer) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps: got {steps!r}; accepted: an integer >= 1")
    if not np.isfinite(shift) or shift <= 0:
        raise ValueError(f"shift: got {shift!r}; accepted: a finite number > 0")
    s = np.linspace(1, 0, steps + 1)[:steps]
    return shift * s / (1 + (shift - 1) * s)


@dataclass(frozen=True)
class EulerSampler:
    """Euler flow-matching over ``steps`` sigmas shifted by ``shift``."""

    steps: int = DISTILLED_STEPS
    shift: float = DISTILLED_SHIFT

    def __post_init__(self):
        sampling_sigmas(self.steps, self.shift)  # validates

    @property
    def sigmas(self) -> np.ndarray:
        return sampling_sigmas(self.steps, self.shift)

    @property
    def timesteps(self) -> np.ndarray:
        return self.sigmas * 1000.0

    def sample(
        self,
        velocity: Callable[[torch.Tensor, float], torch.Tensor],
        noise: torch.Tensor,
        on_step: Callable[[int, torch.Tensor, float, torch.Tensor, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Integrate from ``noise`` to a clean sample.

        ``velocity(x, t)`` returns the model's velocity at timestep ``t = 1000*sigma`` (a float64
        Python float). ``on_step(i, x_in, t, v, x_out)`` is called after each step.
        """
        sigmas = np.append(self.sigmas, 0.0)
        x = noise
        for i in range(self.steps):
            t = float(sigmas[i] * 1000.0)
            v = velocity(x, t)
            x_next = x + float(sigmas[i + 1] - sigmas[i]) * v
            if on_step is not None:
                on_step(i, x, t, v, x_next)
            x = x_next
        return x
