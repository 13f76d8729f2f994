"""3-D rotary position embedding over (time, height, width), as Wan / Yume use it.

The head dimension ``d`` is split into complex pairs for the three axes as
``(d - 4*(d//6), 2*(d//6), 2*(d//6))`` real dims (22:21:21 pairs for d=128). Angles are computed in
float64 like the official table (``rope_params``), then applied in float32: the official code applies
them in complex128, which differs from this by float32 rounding only.
"""

from __future__ import annotations

import torch


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Real dims of the (t, h, w) parts of a head of size ``head_dim``."""
    if head_dim % 2:
        raise ValueError(f"head_dim: got {head_dim}; accepted: an even number")
    third = 2 * (head_dim // 6)
    return head_dim - 2 * third, third, third


def inverse_frequencies(dim: int, theta: float = 10000.0) -> torch.Tensor:
    """``1 / theta**(arange(0, dim, 2) / dim)`` in float64 (one per complex pair)."""
    return 1.0 / torch.pow(theta, torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """Angles ``[..., head_dim // 2]`` (float64) for integer ``positions [..., 3]`` = (t, h, w)."""
    parts = []
    for axis, dim in enumerate(rope_split(head_dim)):
        inv = inverse_frequencies(dim, theta).to(positions.device)
        parts.append(positions[..., axis : axis + 1].to(torch.float64) * inv)
    return torch.cat(parts, dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of ``x [B, L, heads, d]`` by ``cos/sin [B, L, d/2]`` (float32 math)."""
    xf = x.float().unflatten(-1, (-1, 2))
    x0, x1 = xf[..., 0], xf[..., 1]
    c, s = cos[:, :, None, :], sin[:, :, None, :]
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)
    return out.to(x.dtype)
