"""Attention kernels: flash-attn 3 or 2 when importable on CUDA, otherwise torch SDPA.

All backends take ``q, k, v`` as ``[B, L, heads, head_dim]`` and an optional boolean
``key_mask`` ``[B, Lk]`` (True = a real token). Padding keys never contribute, so a world's output
does not depend on which (longer or shorter) worlds share its batch.

:class:`AttentionPlan` holds what a block's self-attention needs that does not change across its
denoising steps and layers (the padding mask, the packed-token index and sequence offsets for
flash-attn's variable-length kernel, the longest sequence), computed once on the host so no layer has
to read a device tensor back (no host synchronisation inside a step). :func:`kernel_name` says which
kernel really runs: ``flash-attn`` or SDPA's own choice (``sdpa-flash``, ``sdpa-cudnn``,
``sdpa-efficient``, ``sdpa-math``).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
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


_SDPA_NAMES = {0: "sdpa-math", 1: "sdpa-flash", 2: "sdpa-efficient", 3: "sdpa-cudnn", 4: "sdpa-overrideable"}


def kernel_name(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask=None, backend: str = "auto"
) -> str:
    """The kernel :func:`attention` runs for these inputs: ``flash-attn`` or SDPA's dispatch choice.

    SDPA's choice is read from torch's own dispatcher (``torch._fused_sdp_choice``), which is what
    ``scaled_dot_product_attention`` calls; ``sdpa`` alone when this torch does not expose it.
    """
    if resolve_backend(backend, q.device, q.dtype) == "flash":
        return "flash-attn"
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:
        return "sdpa"
    mask = None if key_mask is None else key_mask[:, None, None, :]
    try:
        choice = int(choose(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask))
    except (RuntimeError, TypeError):
        return "sdpa"
    return _SDPA_NAMES.get(choice, "sdpa")


@dataclass
class AttentionPlan:
    """Self-attention bookkeeping of one prepared batch (built once per block, on the host).

    ``key_mask`` ``[B, L]`` (device) is ``None`` when no world is padded. For flash-attn with padding,
    ``packed_index`` lists the real rows of the flattened ``[B*L]`` tokens and ``cu_seqlens`` their
    per-world offsets, so queries and keys are packed (no padded query rows reach the kernel).
    """

    key_mask: torch.Tensor | None
    backend: str  # the resolved kernel family: "flash" or "sdpa"
    packed_index: torch.Tensor | None = None
    cu_seqlens: torch.Tensor | None = None
    max_seqlen: int = 0


def plan_attention(
    key_mask: torch.Tensor, device: torch.device, dtype: torch.dtype, backend: str
) -> AttentionPlan:
    """An :class:`AttentionPlan` for the host-side boolean ``key_mask`` ``[B, L]``."""
    kind = resolve_backend(backend, device, dtype)
    if bool(key_mask.all()):
        return AttentionPlan(None, kind)
    plan = AttentionPlan(key_mask.to(device), kind)
    if kind == "flash":
        lens = key_mask.sum(dim=1, dtype=torch.int32)
        plan.packed_index = key_mask.flatten().nonzero().flatten().to(device)
        plan.cu_seqlens = F.pad(torch.cumsum(lens, 0, dtype=torch.int32), (1, 0)).to(device)
        plan.max_seqlen = int(lens.max())
    return plan


def self_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """Attention of ``q`` over ``k, v`` under ``plan``; ``q`` may hold only the last rows of each world
    (then only keys are masked). Padded query rows come back as zeros on the packed flash path."""
    if plan.backend != "flash" or plan.key_mask is None:
        return attention(q, k, v, plan.key_mask, plan.backend)
    fa = _flash_module()
    b, lq, h, d = q.shape
    lk = k.shape[1]
    k_packed = k.flatten(0, 1).index_select(0, plan.packed_index)
    v_packed = v.flatten(0, 1).index_select(0, plan.packed_index)
    if lq == lk:  # queries padded like the keys: pack them too
        q_packed = q.flatten(0, 1).index_select(0, plan.packed_index)
        out = fa.flash_attn_varlen_func(
            q_packed, k_packed, v_packed, plan.cu_seqlens, plan.cu_seqlens, plan.max_seqlen, plan.max_seqlen
        )
        out = out[0] if isinstance(out, tuple) else out
        full = out.new_zeros(b * lq, h, d).index_copy_(0, plan.packed_index, out)
        return full.view(b, lq, h, d)
    cu_q = torch.arange(0, (b + 1) * lq, lq, dtype=torch.int32, device=q.device)
    out = fa.flash_attn_varlen_func(
        q.reshape(b * lq, h, d), k_packed, v_packed, cu_q, plan.cu_seqlens, lq, plan.max_seqlen
    )
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(b, lq, h, d)


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
