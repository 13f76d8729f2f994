"""Attention kernels: flash-attn 3 or 2 when importable on CUDA, otherwise torch SDPA.

All backends take ``q, k, v`` as ``[B, L, heads, head_dim]`` and an optional boolean
``key_mask`` ``[B, Lk]`` (True = a real token). Padding keys never contribute, so a world's output
does not depend on which (longer or shorter) worlds share its batch.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "sdpa", "flash")


@cache
def _flash_module():
    """The installed flash-attention interface (FA3 preferred), or None."""
    for name in ("flash_attn_interface", "flash_attn"):
        if importlib.util.find_spec(name) is not None:
            try:
                return importlib.import_module(name)
            except ImportError:  # a broken build: fall back to SDPA
                continue
    return None


def flash_available() -> bool:
    return torch.cuda.is_available() and _flash_module() is not None


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    """The kernel that will run for ``backend`` on ``device`` with ``dtype``."""
    if backend not in BACKENDS:
        raise ValueError(f"attention backend: got {backend!r}; accepted: {', '.join(BACKENDS)}")
    usable_flash = device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and flash_available()
    if backend == "flash":
        if not usable_flash:
            raise RuntimeError(
                "attention backend 'flash' needs CUDA, fp16/bf16 and the flash-attn package "
                "(pip install 'yume-env[flash]' --no-build-isolation); use 'auto' or 'sdpa' instead"
            )
        return "flash"
    if backend == "auto":
        return "flash" if usable_flash else "sdpa"
    return "sdpa"


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Softmax attention with scale ``1/sqrt(head_dim)``; returns ``[B, Lq, heads, head_dim]``."""
    kind = resolve_backend(backend, q.device, q.dtype)
    if kind == "flash":
        return _flash_attention(q, k, v, key_mask)
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
    )
    return out.transpose(1, 2)


def _flash_attention(q, k, v, key_mask):
    fa = _flash_module()
    if key_mask is None or bool(key_mask.all()):
        out = fa.flash_attn_func(q, k, v)
        return out[0] if isinstance(out, tuple) else out
    # Variable-length path: pack the real keys of every sequence; queries keep their padding rows.
    b, lq, h, d = q.shape
    lens_k = key_mask.sum(dim=1, dtype=torch.int32)
    cu_k = F.pad(torch.cumsum(lens_k, 0, dtype=torch.int32), (1, 0))
    cu_q = torch.arange(0, (b + 1) * lq, lq, dtype=torch.int32, device=q.device)
    k_packed = k[key_mask]
    v_packed = v[key_mask]
    out = fa.flash_attn_varlen_func(
        q.reshape(b * lq, h, d), k_packed, v_packed, cu_q, cu_k, lq, int(lens_k.max())
    )
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(b, lq, h, d)
