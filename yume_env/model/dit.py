"""The Yume-1.5 diffusion transformer: Wan2.2 TI2V-5B plus Yume's TSCM history patch embeddings.

Parameter names are the official ones (``patch_embedding``, ``blocks.N.self_attn.q``, ...,
``patch_embedding_2x`` ... ``patch_embedding_2x_f``), so an official state dict loads as it is.

One forward denoises the 8-latent block of B worlds at once. Each world brings its own clean history
(any length, possibly none for the text-to-video first block), its own text context and timestep.
History is embedded through the TSCM tiers (:mod:`yume_env.model.tscm`) and left-padded to a common
length; padding keys are masked, so a world's output never depends on its batch neighbours.

The work that does not change across the denoising steps of a block (history patch embeddings, RoPE
tables, text embedding and cross-attention keys/values, the history time embedding) is done once in
:meth:`YumeDiT.prepare`; :meth:`YumeDiT.denoise` then runs one step. The official code redoes all of
it at every step; the results are the same.

Numerics follow the official module: the residual stream and all modulation math are float32; the
linear layers and attention run in the parameter dtype (bf16 on GPU); timesteps and RoPE angles are
float64 before being rounded.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from yume_env.model.attention import AttentionPlan, attention, kernel_name, plan_attention, self_attention
from yume_env.model.history_cache import CARRIED_RATES, RATES, HistoryCache, HistoryKV
from yume_env.model.rope import apply_rope, rope_angles
from yume_env.model.tscm import RATE_KERNEL, RATE_MODULE, group_grid, history_groups

# Defaults of the official WanModel constructor, used for keys a config.json leaves out
# (diffusers does not save `ignore_for_config` entries such as patch_size or text_dim).
_OFFICIAL_DEFAULTS = {
    "model_type": "t2v",
    "patch_size": (1, 2, 2),
    "text_len": 512,
    "in_dim": 16,
    "dim": 2048,
    "ffn_dim": 8192,
    "freq_dim": 256,
    "text_dim": 4096,
    "out_dim": 16,
    "num_heads": 16,
    "num_layers": 32,
    "window_size": (-1, -1),
    "qk_norm": True,
    "cross_attn_norm": True,
    "eps": 1e-6,
}


@dataclass(frozen=True)
class DiTConfig:
    """Architecture of the Yume DiT. Defaults are the released Yume-1.5 5B model.

    Args:
        patch_size: base (t, h, w) patch of block tokens and of the newest history frames.
        text_len: text tokens the context is zero-padded to before ``text_embedding``.
        in_dim / out_dim: latent channels (48 for the Wan2.2 VAE).
        dim: hidden width. ffn_dim: feed-forward width. num_heads: attention heads.
        num_layers: transformer blocks. freq_dim: sinusoidal timestep channels.
        text_dim: width of the text encoder output (umT5-XXL: 4096).
        qk_norm: RMS-normalise queries/keys over the full width. cross_attn_norm: affine LayerNorm
            before cross-attention. eps: norm epsilon.
        rope_max_positions: temporal RoPE positions the official table holds (1024). A forward whose
            history + block needs more is refused; the world keeps its history within budget.
        rope_theta: RoPE base. block_frames: latent frames denoised per block (8).
    """

    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_len: int = 512
    in_dim: int = 48
    dim: int = 3072
    ffn_dim: int = 14336
    freq_dim: int = 256
    text_dim: int = 4096
    out_dim: int = 48
    num_heads: int = 24
    num_layers: int = 30
    qk_norm: bool = True
    cross_attn_norm: bool = True
    eps: float = 1e-6
    rope_max_positions: int = 1024
    rope_theta: float = 10000.0
    block_frames: int = 8
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if self.dim % self.num_heads:
            raise ValueError(f"dim: got {self.dim}, not divisible by num_heads={self.num_heads}")
        if self.head_dim % 2:
            raise ValueError(f"dim/num_heads: got head_dim {self.head_dim}; accepted: an even number")
        if tuple(self.patch_size) != (1, 2, 2):
            raise ValueError(
                f"patch_size: got {self.patch_size}; accepted: (1, 2, 2) (the TSCM tiers assume it)"
            )

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @classmethod
    def from_official(cls, config: dict) -> DiTConfig:
        """Build from an official ``config.json`` dict (WanModel defaults fill absent keys)."""
        merged = {**_OFFICIAL_DEFAULTS, **{k: v for k, v in config.items() if not k.startswith("_")}}
        if merged["model_type"] not in ("t2v", "ti2v"):
            raise ValueError(
                f"config.json model_type: got {merged['model_type']!r}; accepted: 'ti2v' or 't2v' "
                "(Yume-1.5 is a ti2v model; 'i2v' needs image channels this package does not use)"
            )
        if tuple(merged["window_size"]) != (-1, -1):
            raise ValueError(f"config.json window_size: got {merged['window_size']}; accepted: [-1, -1]")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {k: (tuple(v) if k == "patch_size" else v) for k, v in merged.items() if k in known}
        extra = {k: v for k, v in merged.items() if k not in known}
        return cls(**kwargs, extra=extra)

    def to_official(self) -> dict:
        """The ``config.json`` dict the official ``WanModel.from_pretrained`` reads."""
        out = {k: v for k, v in asdict(self).items() if k in _OFFICIAL_DEFAULTS}
        out["patch_size"] = list(self.patch_size)
        out["model_type"] = "ti2v"
        out["window_size"] = [-1, -1]
        return {"_class_name": "WanModel", **out}


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``cat(cos, sin)`` of ``t * 10000**(-i/half)`` computed in float64 (cos first, as official)."""
    half = dim // 2
    t = t.to(torch.float64)
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = torch.outer(t.flatten(), freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).reshape(*t.shape, dim)


def _stamp(tensors) -> tuple:
    """Identity of tensors' current values: storage, version counter, dtype, device (cache keys)."""
    out = []
    for t in tensors:
        try:
            version = t._version
        except RuntimeError:  # inference tensors have no version counter (and cannot change outside it)
            version = -1
        out.append((t.data_ptr(), version, t.dtype, t.device))
    return tuple(out)


def _clipped_weight(conv: nn.Conv3d, kh: int, kw: int) -> torch.Tensor:
    """``conv``'s weight cut to its top-left ``kh x kw`` taps, as ``[out, C*kh*kw]``. The cut of a
    coarse kernel is a strided copy of the whole weight, so at inference it is kept on the module
    (rebuilt when the weight changes, like the fused q/k/v weights)."""
    if torch.is_grad_enabled():
        return conv.weight[..., :kh, :kw].reshape(conv.out_channels, -1)
    cache = conv.__dict__.setdefault("_clipped_weights", {})
    stamp = _stamp([conv.weight])
    hit = cache.get((kh, kw))
    if hit is None or hit[0] != stamp:
        hit = cache[(kh, kw)] = (stamp, conv.weight[..., :kh, :kw].reshape(conv.out_channels, -1))
    return hit[1]


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """A linear layer computed in its parameter dtype (the official code runs under bf16 autocast)."""
    return F.linear(x.to(layer.weight.dtype), layer.weight, layer.bias)


class RMSNorm(nn.Module):
    """RMS norm with a learned scale, computed in float32 and cast back (official ``WanRMSNorm``)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 (official ``WanLayerNorm``); affine only where the weights say so."""

    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine: bool = False):
        super().__init__(dim, eps=eps, elementwise_affine=elementwise_affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).type_as(x)


@dataclass
class KVBuffer:
    """History keys/values ``[B, rows + n, heads, head_dim]`` followed by room for the ``n`` rows of a
    step, written in place at every step (no concatenation of the whole history per layer and step)."""

    k: torch.Tensor
    v: torch.Tensor
    rows: int

    @classmethod
    def around(cls, k: torch.Tensor, v: torch.Tensor, extra: int) -> KVBuffer:
        pad = (0, 0, 0, 0, 0, extra)
        return cls(F.pad(k, pad), F.pad(v, pad), k.shape[1])

    def fill(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k[:, self.rows :] = k
        self.v[:, self.rows :] = v
        return self.k, self.v

    def __getitem__(self, i: int) -> torch.Tensor:  # (k, v) of the history rows, as a tuple would give
        return (self.k, self.v)[i][:, : self.rows]


class SelfAttention(nn.Module):
    """Multi-head self-attention with RMS q/k norm over the full width and 3-D RoPE.

    At inference (grad disabled) q, k and v come from ONE matrix product over the three weights
    concatenated (:meth:`fused_qkv`, cached and rebuilt whenever a weight changes); the parameters keep
    their official names, so state dicts are unchanged. With grad enabled (training) the three
    projections run separately, so gradients flow to the parameters as usual.
    """

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self._fused: tuple | None = None  # (stamp, weight [3*dim, dim], bias [3*dim])

    def fused_qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight, bias)`` of q, k and v stacked in that order (cached; not part of the state dict)."""
        params = (self.q.weight, self.k.weight, self.v.weight, self.q.bias, self.k.bias, self.v.bias)
        stamp = _stamp(params)
        if self._fused is None or self._fused[0] != stamp:
            with torch.no_grad():
                self._fused = (stamp, torch.cat(params[:3]), torch.cat(params[3:]))
        return self._fused[1], self._fused[2]

    def _project(self, x, qkv, rows: int | str):
        """q (of the last ``rows`` or all), k, v as ``[B, L, dim]``; ``qkv`` is a fused pair or None."""
        dim = self.q.out_features
        if qkv is None:
            q_in = x if rows == "all" else x[:, -rows:]
            return _linear(self.q, q_in), _linear(self.k, x), _linear(self.v, x)
        w, b = qkv
        x = x.to(w.dtype)
        if rows == "all":
            return F.linear(x, w, b).split(dim, dim=-1)
        k, v = F.linear(x, w[dim:], b[dim:]).split(dim, dim=-1)
        return F.linear(x[:, -rows:], w[:dim], b[:dim]), k, v

    def forward(
        self, x, cos, sin, plan: AttentionPlan, qkv=None, query_rows="all", history_kv=None, collect=None
    ):
        """Self-attention of ``x [B, L, dim]``.

        ``query_rows`` (an int) keeps only the last rows as queries (the keys stay all of ``x``).
        ``history_kv`` holds precomputed history keys/values (after norm and RoPE) that go before the
        keys of ``x``; then ``cos/sin`` cover the rows of ``x`` only. ``collect``, a dict, receives this
        call's keys/values of the history rows (all but the last ``collect["rows"]``) as ``kv``.
        """
        heads = lambda t: t.unflatten(-1, (self.num_heads, -1))  # noqa: E731
        q, k, v = self._project(x, qkv, query_rows)
        q, k, v = heads(self.norm_q(q)), heads(self.norm_k(k)), heads(v)
        nq = q.shape[1]
        q = apply_rope(q, cos[:, -nq:], sin[:, -nq:])
        k = apply_rope(k, cos, sin)
        if collect is not None:
            hist = k.shape[1] - collect["rows"]
            collect["kv"] = (k[:, :hist], v[:, :hist])
        if isinstance(history_kv, KVBuffer):
            k, v = history_kv.fill(k, v)
        elif history_kv is not None:
            k = torch.cat([history_kv[0], k], dim=1)
            v = torch.cat([history_kv[1], v], dim=1)
        return _linear(self.o, self_attention(q, k, v, plan).flatten(2))


class CrossAttention(SelfAttention):
    """Attention from video tokens to the (unmasked, zero-padded) text context."""

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.norm_k(_linear(self.k, context)).unflatten(-1, (self.num_heads, -1))
        v = _linear(self.v, context).unflatten(-1, (self.num_heads, -1))
        return k, v

    def forward(self, x, kv, backend):
        q = self.norm_q(_linear(self.q, x)).unflatten(-1, (self.num_heads, -1))
        k, v = kv
        return _linear(self.o, attention(q, k, v, None, backend).flatten(2))


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, block_tokens: int) -> torch.Tensor:
    """``x * (1 + scale) + shift`` with (history, block) modulation ``[B, 2, dim]`` per segment."""
    out = torch.empty_like(x, dtype=torch.float32)
    hist = x.shape[1] - block_tokens
    out[:, :hist] = x[:, :hist] * (1 + scale[:, 0:1]) + shift[:, 0:1]
    out[:, hist:] = x[:, hist:] * (1 + scale[:, 1:2]) + shift[:, 1:2]
    return out


def _gate(y: torch.Tensor, gate: torch.Tensor, block_tokens: int) -> torch.Tensor:
    """``y * gate`` with per-segment gates ``[B, 2, dim]``, in float32."""
    out = torch.empty_like(y, dtype=torch.float32)
    hist = y.shape[1] - block_tokens
    out[:, :hist] = y[:, :hist] * gate[:, 0:1]
    out[:, hist:] = y[:, hist:] * gate[:, 1:2]
    return out


class AttentionBlock(nn.Module):
    """AdaLN-modulated block: self-attention, cross-attention over text, tanh-GELU FFN."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        dim = cfg.dim
        self.norm1 = LayerNorm(dim, cfg.eps)
        self.self_attn = SelfAttention(dim, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm3 = (
            LayerNorm(dim, cfg.eps, elementwise_affine=True) if cfg.cross_attn_norm else nn.Identity()
        )
        self.cross_attn = CrossAttention(dim, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm2 = LayerNorm(dim, cfg.eps)
        self.ffn = nn.Sequential(
            nn.Linear(dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, dim)
        )
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def forward(
        self,
        x,
        e0,
        block_tokens,
        cos,
        sin,
        plan,
        context_kv,
        qkv=None,
        block_only=False,
        history_kv=None,
        collect=None,
    ):
        """One layer over ``x [B, L, dim]`` (history then block tokens).

        ``block_only``: return only the block rows (the last layer: nothing else reaches the head), so
        everything after the self-attention keys/values runs on the block rows alone. ``history_kv`` /
        ``collect``: see :meth:`SelfAttention.forward` (``x`` is then the block rows only).
        """
        # 1. modulation chunks per segment: e0 [B, 2, 6, dim] (history, block) -> six [B, 2, dim]
        m = (self.modulation.float()[:, None] + e0).unbind(dim=2)
        # 2. self-attention over history + block
        rows = block_tokens if block_only else "all"
        y = self.self_attn(
            _modulate(self.norm1(x), m[0], m[1], block_tokens), cos, sin, plan, qkv, rows, history_kv, collect
        )
        if block_only:
            x = x[:, -block_tokens:]
        x = x + _gate(y, m[2], block_tokens)
        # 3. cross-attention over the text
        x = x + self.cross_attn(self.norm3(x), context_kv, plan.backend).float()
        # 4. feed-forward
        h = _modulate(self.norm2(x), m[3], m[4], block_tokens)
        y = _linear(self.ffn[2], self.ffn[1](_linear(self.ffn[0], h)))
        return x + _gate(y, m[5], block_tokens)


class Head(nn.Module):
    """Final modulated LayerNorm and projection to ``prod(patch) * out_dim`` channels per token."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm = LayerNorm(cfg.dim, cfg.eps)
        self.head = nn.Linear(cfg.dim, math.prod(cfg.patch_size) * cfg.out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        # The head is modulated by the time embedding e itself, not its projection (official).
        shift, scale = (self.modulation.float() + e[:, None]).unbind(dim=1)
        return _linear(self.head, self.norm(x) * (1 + scale[:, None]) + shift[:, None]).float()


@dataclass
class PreparedBatch:
    """Step-invariant inputs of one block for B worlds (see :meth:`YumeDiT.prepare`)."""

    history_tokens: torch.Tensor  # [B, Lh_max, dim] float32, left-padded
    key_mask: torch.Tensor | None  # [B, Lh_max + Lb] bool, None when nothing is padded
    cos: torch.Tensor  # [B, L, head_dim/2] float32
    sin: torch.Tensor
    positions: torch.Tensor  # [B, L, 3] int64 (t, h, w) RoPE positions
    context_kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer cross-attention keys/values
    history_t: torch.Tensor  # [B] float64
    grid: tuple[int, int, int]  # block token grid (f, h, w)
    history_lens: list[int]
    plan: AttentionPlan | None = None  # self-attention mask / packing, built once
    attention_kernel: str = "sdpa"  # the self-attention kernel that runs (see attention.kernel_name)
    history_t_value: float | None = None  # history_t as a host number when it is one value for all
    reuse_history_kv: bool | str = False  # approximate long-episode path (see YumeDiT.reuse_history_kv)
    history_kv: list | None = field(default=None, repr=False)  # per layer (k, v) of the history rows
    #: ``"episode"``: per layer (k after RoPE, v) ``[B, carried_rows, heads, head_dim]`` of the history
    #: tokens carried from earlier blocks; ``history_tokens`` then holds only the others.
    carried_kv: list | None = field(default=None, repr=False)
    carried_rows: int = 0
    worlds: list | None = field(default=None, repr=False)  # per world _WorldHistory (cache bookkeeping)
    reuse_mode: str = "off"  # "off", "block" or "episode"
    new_kv: list | None = field(default=None, repr=False)  # per layer (k after RoPE, v) of the new rows


@dataclass
class _WorldHistory:
    """One world's history bookkeeping within a prepared batch (to build its next HistoryCache)."""

    fingerprint: torch.Tensor
    tokens: dict
    old_layout: tuple  # (frame, slot, rate code, rows) per group of carried rows, in their order
    new_layout: tuple  # the same for the rows that run through the transformer this block
    old_kv: list | None = None  # per layer (k after RoPE, v) of the carried rows


REUSE_MODES = (False, True, "block", "episode")


def reuse_mode(value, name: str = "reuse_history_kv") -> str:
    """``"off"``, ``"block"`` or ``"episode"`` for a ``reuse_history_kv`` value (``True`` is ``"block"``)."""
    if value is False or value is None or value == "off":
        return "off"
    if value is True or value == "block":
        return "block"
    if value == "episode":
        return "episode"
    raise ValueError(f"{name}: got {value!r}; accepted: False (exact), True or 'block', or 'episode'")


class YumeDiT(nn.Module):
    """The Yume-1.5 DiT. Build with a :class:`DiTConfig`; load official weights with ``load_state_dict``."""

    def __init__(self, config: DiTConfig | None = None):
        super().__init__()
        cfg = self.config = config or DiTConfig()
        dim, cin = cfg.dim, cfg.in_dim
        self.patch_embedding = nn.Conv3d(cin, dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(
            nn.Linear(cfg.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList(AttentionBlock(cfg) for _ in range(cfg.num_layers))
        self.head = Head(cfg)
        # Yume's history embedders (TSCM): coarser kernels for older latents.
        for rate, name in RATE_MODULE.items():
            if rate != "1x":
                k = RATE_KERNEL[rate]
                setattr(self, name, nn.Conv3d(cin, dim, kernel_size=(1, k, k), stride=(1, k, k)))
        self.patch_embedding_2x_f = nn.Conv3d(cin, cin, kernel_size=(1, 4, 4), stride=(1, 4, 4))
        self.attention_backend = "auto"
        #: Approximate long-episode paths (``False``: exact). ``True`` / ``"block"``: the history rows'
        #: keys/values of every layer are computed at the first denoising step of a block and reused by
        #: its later steps, which then run the block rows only (history tokens do not change within a
        #: block; their hidden states do, slightly, through attention to the block: that is the
        #: approximation). ``"episode"``: in addition, the keys/values of the coarse tiers' tokens are
        #: carried from block to block in the worlds' :class:`HistoryCache` (a token keeps those of
        #: the block where it entered its tier), so a block runs only the recent and changed tokens.
        self.reuse_history_kv: bool | str = False
        #: Self-attention kernel of the latest prepared batch (``flash-attn``, ``sdpa-flash``, ...).
        self.last_attention_backend: str | None = None
        #: Captions whose text embedding and per-layer cross-attention keys/values are kept.
        self.context_cache_size = 4
        self._context_cache: OrderedDict = OrderedDict()
        self._kernel_names: dict = {}  # (batch, tokens, dtype, device, unpadded, backend) -> kernel
        self.compiled = False

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.patch_embedding.weight.device

    # ------------------------------------------------------------------ embeddings
    def _patches(self, conv: nn.Conv3d, frames: torch.Tensor) -> torch.Tensor:
        """Non-overlapping (1, k, k) patch embedding of ``[B, C, F, H, W]`` -> ``[B, F, H/k, W/k, out]``.

        The official code zero-pads the input at the bottom/right to a multiple of ``k`` (a quirk that
        changes outputs). Where the input is smaller than one kernel along an axis, the weights that
        would only meet padding zeros are dropped instead of padding the input: the same sum without
        its zero terms, and for coarse tiers on small latents (a 32x32 kernel on a 6x10 frame) about
        15x less work. The conv is computed as a matrix product over flattened patches, one world at a
        time: the same numbers as a strided conv up to float rounding, and a world's tokens never depend
        on how many worlds share the batch (CPU conv and small matrix kernels change their summation
        order with the number of rows).
        """
        x, weight = self._patch_rows(conv, frames)
        return torch.cat([F.linear(x[i : i + 1], weight, conv.bias) for i in range(x.shape[0])])

    @staticmethod
    def _patch_rows(conv: nn.Conv3d, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flattened zero-padded patches ``[B, F, H/k, W/k, C*kh*kw]`` of ``frames`` and the matching
        weight ``[out, C*kh*kw]`` (see :meth:`_patches`)."""
        k = conv.kernel_size[-1]
        h, w = frames.shape[-2:]
        kh, kw = min(k, h), min(k, w)
        frames = F.pad(frames, (0, (-w) % kw, 0, (-h) % kh))
        b, c, f, hp, wp = frames.shape
        x = frames.reshape(b, c, f, hp // kh, kh, wp // kw, kw).permute(0, 2, 3, 5, 1, 4, 6)
        x = x.reshape(b, f, hp // kh, wp // kw, c * kh * kw).to(conv.weight.dtype)
        return x, _clipped_weight(conv, kh, kw)

    def _frame_tokens(self, frames: torch.Tensor, rate: str) -> list[torch.Tensor]:
        """Tokens ``[n, dim]`` (float32) of each history frame of ``frames [C, F, H, W]`` at a TSCM rate.

        One matrix product per frame: a frame's tokens are then the same bits whichever frames are
        embedded with it (CPU matrix kernels change their summation order with the number of rows), so
        the tokens a world keeps from an earlier block (:class:`HistoryCache`) equal fresh ones.
        """
        if rate == "f":
            first = self.patch_embedding_2x_f
            x, weight = self._patch_rows(first, frames[None])
            out = []
            for j in range(x.shape[1]):
                reduced = F.linear(x[:, j : j + 1], weight, first.bias).permute(0, 4, 1, 2, 3)
                out.append(self._patches(self.patch_embedding_16x, reduced).flatten(0, 3).float())
            return out
        conv = getattr(self, RATE_MODULE[rate])
        x, weight = self._patch_rows(conv, frames[None])
        return [F.linear(x[:, j : j + 1], weight, conv.bias).flatten(0, 3).float() for j in range(x.shape[1])]

    def _embed_group(self, frames: torch.Tensor, rate: str) -> torch.Tensor:
        """Tokens ``[B, n, dim]`` of history frames ``[B, C, F, H, W]`` at a TSCM rate."""
        if rate == "f":
            # 48->48 at stride 4, then the 16x embedder on that (re-padded) output.
            reduced = self._patches(self.patch_embedding_2x_f, frames).permute(0, 4, 1, 2, 3)
            out = self._patches(self.patch_embedding_16x, reduced)
        else:
            out = self._patches(getattr(self, RATE_MODULE[rate]), frames)
        return out.flatten(1, 3).float()

    def _time_embedding(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``e [.., dim]`` and its projection ``e0 [.., 6, dim]`` (float32) for float64 timesteps."""
        sin = sinusoidal_embedding(t, self.config.freq_dim).float()
        lin1, lin2 = self.time_embedding[0], self.time_embedding[2]
        e = _linear(lin2, F.silu(_linear(lin1, sin))).float()
        e0 = _linear(self.time_projection[1], F.silu(e)).float().unflatten(-1, (6, self.config.dim))
        return e, e0

    def _segment_time_embedding(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Time embeddings of ``t [B, 2]`` computed over the distinct values only, padded to a multiple of
        8 rows: CPU matrix kernels take another path for very few rows, and a world's result must not
        depend on its batch neighbours."""
        values, inverse = torch.unique(t, return_inverse=True)
        rows = -(-values.numel() // 8) * 8
        e, e0 = self._time_embedding(F.pad(values, (0, rows - values.numel())))
        return e[inverse], e0[inverse]

    def _history_positions(self, num_history: int, height: int, width: int) -> tuple[torch.Tensor, int]:
        """RoPE (t, h, w) of every history token, and the first temporal slot of the block."""
        pos, slot = [], 0
        for g in history_groups(num_history):
            gh, gw = group_grid(g.rate, height, width)
            t, y, x = torch.meshgrid(
                torch.arange(slot, slot + g.frames), torch.arange(gh), torch.arange(gw), indexing="ij"
            )
            pos.append(torch.stack([t, y, x], dim=-1).reshape(-1, 3))
            slot += g.frames
        if not pos:
            return torch.zeros(0, 3, dtype=torch.long), 0
        return torch.cat(pos), slot

    def _world_history(
        self, frames, num: int, hw: tuple[int, int], cache: HistoryCache | None, episode: bool
    ) -> dict:
        """One world's history tokens for this block: which rows are carried (``episode``: the cache's
        keys/values of coarse-tier frames that kept their tier) and which run through the transformer,
        with their tokens (from the cache where it has them, embedded otherwise). Rows are numbered in
        the order of the TSCM groups; the bookkeeping is vectorised over frames (histories of ~1000)."""
        h, w = hw
        cached = {} if cache is None else cache.tokens
        carry = cache.kv if episode and cache is not None else None
        first_rows = None if carry is None else carry.first_rows
        rows_old, rows_new, carry_rows, new_frames = [], [], [], []
        old_layout, new_layout = [], []  # per group (frames, slots, rate code, tokens per frame)
        row = slot = 0
        for g in history_groups(num):
            gh, gw = group_grid(g.rate, h, w)
            n, code = gh * gw, RATES.index(g.rate)
            kept = np.zeros(0, dtype=np.int64)
            if carry is not None and g.rate in CARRIED_RATES:
                sel = np.nonzero(
                    (carry.rate == code)
                    & (carry.frame >= g.start)
                    & (carry.frame < g.stop)
                    & (carry.slot - carry.frame == slot - g.start)
                    & (carry.count == n)
                )[0]
                sel = sel[np.argsort(carry.frame[sel], kind="stable")]
                kept = carry.frame[sel]
                carry_rows.append((first_rows[sel][:, None] + np.arange(n)).ravel())
            fresh = np.ones(g.frames, dtype=bool)
            fresh[kept - g.start] = False
            new = np.arange(g.start, g.stop)[fresh]
            for part, rows, layout in ((kept, rows_old, old_layout), (new, rows_new, new_layout)):
                rows.append((row + (part - g.start)[:, None] * n + np.arange(n)).ravel())
                layout.append((part, part + slot - g.start, np.full(len(part), code), np.full(len(part), n)))
            new_frames.append((g.rate, new.tolist()))
            row += g.frames * n
            slot += g.frames
        # tokens: kept ones, and the missing frames embedded in runs of consecutive frames
        tokens = {}
        for rate, wanted in new_frames:
            missing = [f for f in wanted if (f, rate) not in cached and (f, rate) not in tokens]
            tokens.update({(f, rate): cached[(f, rate)] for f in wanted if (f, rate) in cached})
            start = 0
            while start < len(missing):
                stop = start + 1
                while stop < len(missing) and missing[stop] == missing[stop - 1] + 1:
                    stop += 1
                a, z = missing[start], missing[stop - 1] + 1
                tokens.update(zip(((f, rate) for f in range(a, z)), self._frame_tokens(frames[:, a:z], rate)))
                start = stop
        for frames_old, _, codes, _ in old_layout:  # carried rows keep the tokens the cache has
            for f, c in zip(frames_old.tolist(), codes.tolist()):
                if (f, RATES[c]) in cached:
                    tokens[(f, RATES[c])] = cached[(f, RATES[c])]
        new_parts = [tokens[(f, rate)] for rate, wanted in new_frames for f in wanted]
        old_kv = None
        if carry_rows and sum(len(r) for r in carry_rows):
            index = torch.as_tensor(np.concatenate(carry_rows), dtype=torch.long, device=carry.k[0].device)
            old_kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in zip(carry.k, carry.v)]
            if carry.shift:  # frames were dropped: rotate the keys back by that many temporal slots
                delta = torch.tensor([[[-carry.shift, 0, 0]]])
                angles = rope_angles(delta, self.config.head_dim, self.config.rope_theta)
                cos, sin = (
                    torch.cos(angles).float().to(index.device),
                    torch.sin(angles).float().to(index.device),
                )
                old_kv = [(apply_rope(k[None], cos, sin)[0], v) for k, v in old_kv]
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
        return {
            "fingerprint": frames[:, :, 0, 0].clone(),
            "tokens": tokens,
            "old_layout": tuple(cat([p[j] for p in old_layout]) for j in range(4)),
            "new_layout": tuple(cat([p[j] for p in new_layout]) for j in range(4)),
            "old_kv": old_kv,
            "tokens_new": torch.cat(new_parts) if new_parts else frames.new_zeros(0, self.config.dim),
            "rows_new": torch.as_tensor(cat(rows_new), dtype=torch.long),
            "rows_old": torch.as_tensor(cat(rows_old), dtype=torch.long),
        }

    def _carried_kv(self, worlds, old_lens: list[int]) -> list:
        """Per layer (k after RoPE, v) ``[B, carried, heads, head_dim]`` of the carried history rows."""
        lo = max(old_lens)
        if len(worlds) == 1:  # no copies
            return [(k[None], v[None]) for k, v in worlds[0].old_kv]
        ref = next(wd.old_kv for wd in worlds if wd is not None and wd.old_kv)
        out = []
        for n in range(len(self.blocks)):
            k = ref[n][0].new_zeros(len(worlds), lo, *ref[n][0].shape[1:])
            v = ref[n][1].new_zeros(len(worlds), lo, *ref[n][1].shape[1:])
            for i, wd in enumerate(worlds):
                if old_lens[i]:
                    k[i, lo - old_lens[i] :] = wd.old_kv[n][0]
                    v[i, lo - old_lens[i] :] = wd.old_kv[n][1]
            out.append((k, v))
        return out

    # ------------------------------------------------------------------ public API
    def history_caches(self, prepared: PreparedBatch) -> list[HistoryCache | None]:
        """Per world the :class:`HistoryCache` its next block can start from (pass them to the next
        :meth:`prepare` of the same worlds). Call it after the block was denoised: with
        ``"episode"`` the cache carries the keys/values the block's first step computed."""
        if prepared.worlds is None:
            return [None] * len(prepared.history_lens)
        ln = prepared.history_tokens.shape[1]
        out: list[HistoryCache | None] = []
        for i, wd in enumerate(prepared.worlds):
            if wd is None:
                out.append(None)
                continue
            kv = None
            if prepared.reuse_mode == "episode" and prepared.new_kv is not None:
                fresh = int(wd.new_layout[3].sum())
                ks, vs = [], []
                for n, (k_new, v_new) in enumerate(prepared.new_kv):
                    old_k, old_v = wd.old_kv[n] if wd.old_kv else (k_new[i, :0], v_new[i, :0])
                    ks.append(torch.cat([old_k, k_new[i, ln - fresh :]]))
                    vs.append(torch.cat([old_v, v_new[i, ln - fresh :]]))
                layout = [np.concatenate([a, b]) for a, b in zip(wd.old_layout, wd.new_layout)]
                kv = HistoryKV(*layout, tuple(ks), tuple(vs))
            out.append(HistoryCache(wd.fingerprint, wd.tokens, kv))
        return out

    def prepare(
        self,
        history: Sequence[torch.Tensor | None],
        context: Sequence[torch.Tensor],
        latent_hw: tuple[int, int],
        history_t: torch.Tensor | float = 0.0,
        reuse_history_kv: bool | str | None = None,
        history_cache: Sequence[HistoryCache | None] | None = None,
    ) -> PreparedBatch:
        """Embed what stays fixed while a block is denoised, for B worlds.

        Args:
            history: per world the clean history latents ``[C, H_i, h, w]``, or ``None`` / ``H_i = 0``
                for the text-to-video first block.
            context: per world the text encoder output ``[L_i, text_dim]`` with ``L_i <= text_len``.
            latent_hw: the latent grid ``(h, w)`` of the block.
            history_t: timestep of the history tokens (the official sampler uses 0).
            reuse_history_kv: the approximate long-episode path for this block: ``False`` (exact),
                ``True`` / ``"block"`` or ``"episode"`` (default: the model's :attr:`reuse_history_kv`).
            history_cache: per world the :class:`HistoryCache` an earlier block of that world left
                (:meth:`history_caches`), or ``None``. Frames it holds are not embedded again (the
                tokens are the same bits); a cache that does not fit the world's history is ignored.
                With ``"episode"`` it also carries the history keys/values.
        """
        cfg = self.config
        if len(history) != len(context):
            raise ValueError(f"history/context: got {len(history)} histories and {len(context)} contexts")
        b = len(history)
        device = self.device
        h, w = latent_hw
        if h % 2 or w % 2:
            raise ValueError(f"latent_hw: got {latent_hw}; accepted: even height and width")
        grid = (cfg.block_frames, h // 2, w // 2)
        block_tokens = math.prod(grid)

        mode = reuse_mode(self.reuse_history_kv if reuse_history_kv is None else reuse_history_kv)
        inference = not torch.is_grad_enabled()
        if history_cache is None:
            history_cache = [None] * b
        elif len(history_cache) != b:
            raise ValueError(
                f"history_cache: got {len(history_cache)} entries for {b} worlds; accepted: one per world"
            )

        # 1. history tokens through the TSCM tiers (grouped by history length: same tiers, same positions)
        lengths = [0 if u is None else int(u.shape[1]) for u in history]
        new_tok: list[torch.Tensor | None] = [None] * b
        new_pos: list[torch.Tensor] = [torch.zeros(0, 3, dtype=torch.long)] * b
        old_pos: list[torch.Tensor] = [torch.zeros(0, 3, dtype=torch.long)] * b
        block_pos: list[torch.Tensor] = [None] * b  # type: ignore[list-item]
        worlds: list[_WorldHistory | None] = [None] * b
        for num in sorted(set(lengths)):
            idx = [i for i, n in enumerate(lengths) if n == num]
            hpos, slot = self._history_positions(num, h, w)
            if slot + cfg.block_frames > cfg.rope_max_positions:
                raise ValueError(
                    f"history: {num} history latents need {slot + cfg.block_frames} temporal positions; "
                    f"accepted: at most {cfg.rope_max_positions} (history + {cfg.block_frames}-frame block)"
                )
            bt, by, bx = torch.meshgrid(
                torch.arange(slot, slot + grid[0]),
                torch.arange(grid[1]),
                torch.arange(grid[2]),
                indexing="ij",
            )
            bpos = torch.stack([bt, by, bx], -1).reshape(-1, 3)
            for i in idx:
                block_pos[i] = bpos
                if not num:
                    continue
                frames = history[i].to(device)
                if frames.ndim != 4 or tuple(frames.shape[-2:]) != (h, w) or frames.shape[0] != cfg.in_dim:
                    raise ValueError(
                        f"history: got latents of shape {tuple(frames.shape)}; "
                        f"accepted: [{cfg.in_dim}, H, {h}, {w}]"
                    )
                if not inference:  # training: whole groups at once, with gradients, no caches
                    groups = [
                        self._embed_group(frames[None, :, g.start : g.stop], g.rate)
                        for g in history_groups(num)
                    ]
                    new_tok[i], new_pos[i] = torch.cat(groups, dim=1)[0], hpos
                    continue
                cache = history_cache[i]
                cache = cache if isinstance(cache, HistoryCache) and cache.fits(frames) else None
                world = self._world_history(frames, num, (h, w), cache, mode == "episode")
                rows_new, rows_old = world.pop("rows_new"), world.pop("rows_old")
                new_tok[i] = world.pop("tokens_new")
                new_pos[i], old_pos[i] = hpos[rows_new], hpos[rows_old]
                worlds[i] = _WorldHistory(**world)

        # 2. left-pad: [carried rows | new history rows | block]; padded keys are masked out
        new_lens = [0 if t is None else t.shape[0] for t in new_tok]
        old_lens = [p.shape[0] for p in old_pos]
        ln, lo = max(new_lens), max(old_lens)
        history_tokens = torch.zeros(b, ln, cfg.dim, device=device)
        positions = torch.zeros(b, lo + ln + block_tokens, 3, dtype=torch.long)
        key_mask = torch.ones(b, lo + ln + block_tokens, dtype=torch.bool)
        for i, tok in enumerate(new_tok):
            n, o = new_lens[i], old_lens[i]
            if n:
                history_tokens[i, ln - n :] = tok
            positions[i, lo - o : lo] = old_pos[i]
            positions[i, lo + ln - n : lo + ln] = new_pos[i]
            positions[i, lo + ln :] = block_pos[i]
            key_mask[i, : lo - o] = False
            key_mask[i, lo : lo + ln - n] = False
        hist_lens = [n + o for n, o in zip(new_lens, old_lens)]
        cos_sin = rope_angles(positions, cfg.head_dim, cfg.rope_theta)
        cos, sin = torch.cos(cos_sin).float().to(device), torch.sin(cos_sin).float().to(device)
        plan = plan_attention(key_mask, device, self.dtype, self.attention_backend)
        carried_kv = self._carried_kv(worlds, old_lens) if lo else None

        # 3. text: zero-pad to text_len, embed, and every layer's cross-attention keys/values (cached
        #    per caption tensor at inference: the same caption is not embedded again next block)
        for i, c in enumerate(context):
            if c.ndim != 2 or c.shape[0] > cfg.text_len or c.shape[1] != cfg.text_dim:
                raise ValueError(
                    f"context[{i}]: got shape {tuple(c.shape)}; accepted: [L, {cfg.text_dim}] with L <= {cfg.text_len}"
                )
        context_kv = self._context_kv(context)

        # the kernel that will run, read once from the dispatcher on tensors of the real shapes
        lq = lo + ln + block_tokens
        probe_key = (b, lq, self.dtype, str(device), plan.key_mask is None, plan.backend)
        kernel = self._kernel_names.get(probe_key)
        if kernel is None:
            if len(self._kernel_names) > 256:
                self._kernel_names.clear()
            probe = torch.empty(b, lq, cfg.num_heads, cfg.head_dim, device=device, dtype=self.dtype)
            kernel = self._kernel_names[probe_key] = kernel_name(
                probe, probe, probe, plan.key_mask, plan.backend
            )
        self.last_attention_backend = kernel

        scalar_t = not isinstance(history_t, torch.Tensor) or history_t.numel() == 1
        ht_value = float(history_t) if scalar_t else None
        ht = torch.as_tensor(history_t, dtype=torch.float64).expand(b).to(device)
        return PreparedBatch(
            history_tokens,
            plan.key_mask,
            cos,
            sin,
            positions,
            context_kv,
            ht,
            grid,
            hist_lens,
            plan=plan,
            attention_kernel=kernel,
            history_t_value=ht_value,
            reuse_history_kv=mode != "off",
            reuse_mode=mode,
            carried_kv=carried_kv,
            carried_rows=lo,
            worlds=worlds if inference else None,
        )

    def _embed_context(self, context: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer cross-attention (k, v) ``[B, text_len, heads, head_dim]`` of B contexts, batched."""
        cfg, device = self.config, self.device
        ctx = torch.zeros(len(context), cfg.text_len, cfg.text_dim, device=device)
        for i, c in enumerate(context):
            ctx[i, : c.shape[0]] = c.to(device=device, dtype=torch.float32)
        te = self.text_embedding
        ctx = _linear(te[2], te[1](_linear(te[0], ctx)))
        return [blk.cross_attn.context_kv(ctx) for blk in self.blocks]

    def _context_kv(self, context: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Cross-attention keys/values of every layer; at inference one entry per caption tensor is
        cached (keyed by the tensor itself and the weights' versions), and a batch stacks them."""
        if torch.is_grad_enabled() or self.context_cache_size <= 0:
            return self._embed_context(context)
        weights = [*self.text_embedding.parameters()]
        for blk in self.blocks:
            weights += [blk.cross_attn.k.weight, blk.cross_attn.k.bias, blk.cross_attn.v.weight]
            weights += [blk.cross_attn.v.bias, *blk.cross_attn.norm_k.parameters()]
        stamp = _stamp(weights)
        per_world = []
        for c in context:
            key = id(c)
            hit = self._context_cache.get(key)
            if hit is None or hit[0] is not c or hit[1] != stamp or hit[2] != _stamp([c]):
                hit = (c, stamp, _stamp([c]), self._embed_context([c]))
                self._context_cache[key] = hit
                while len(self._context_cache) > self.context_cache_size:
                    self._context_cache.popitem(last=False)
            self._context_cache.move_to_end(key)
            per_world.append(hit[3])
        if len(per_world) == 1:
            return per_world[0]
        return [
            (torch.cat([w[n][0] for w in per_world]), torch.cat([w[n][1] for w in per_world]))
            for n in range(len(self.blocks))
        ]

    def clear_caches(self) -> None:
        """Drop the cached caption keys/values and fused q/k/v weights (they rebuild on demand)."""
        self._context_cache.clear()
        for blk in self.blocks:
            blk.self_attn._fused = None

    def compile_blocks(self, **kwargs) -> None:
        """``torch.compile`` every transformer block in place (fuses the elementwise work: LayerNorm +
        modulation, RMSNorm + RoPE, gate + residual). Parameter names do not change. The first blocks
        after this are slow (compilation, and again for new history lengths until shapes go dynamic)."""
        for blk in self.blocks:
            blk.compile(**kwargs)
        self.compiled = True

    def _step_time_embedding(self, prepared: PreparedBatch, t, b: int):
        """``e [B, 2, dim]``, ``e0 [B, 2, 6, dim]`` of (history, block) at block timestep ``t``.

        For a scalar ``t`` the distinct values are known on the host, so nothing is read back from the
        device; per-world ``t`` (training) goes through :meth:`_segment_time_embedding`.
        """
        scalar = isinstance(t, int | float) or (
            isinstance(t, torch.Tensor) and t.numel() == 1 and t.device.type == "cpu"
        )
        if not scalar or prepared.history_t_value is None:
            tb = torch.as_tensor(t, dtype=torch.float64).to(self.device).expand(b)
            return self._segment_time_embedding(torch.stack([prepared.history_t, tb], dim=1))
        tv, hv = float(t), prepared.history_t_value
        values = [hv] if tv == hv else sorted([hv, tv])
        rows = torch.zeros(8, dtype=torch.float64, device=self.device)  # 8 rows, as in the batched path
        for j, val in enumerate(values):
            rows[j] = val
        e, e0 = self._time_embedding(rows)
        ih, ib = values.index(hv), values.index(tv)
        e = torch.stack([e[ih], e[ib]])[None].expand(b, -1, -1)
        e0 = torch.stack([e0[ih], e0[ib]])[None].expand(b, -1, -1, -1)
        return e, e0

    def denoise(
        self,
        prepared: PreparedBatch,
        block: torch.Tensor,
        t: torch.Tensor | float,
        taps: dict | None = None,
    ) -> torch.Tensor:
        """Velocity ``[B, C, 8, h, w]`` (float32) for the noisy block latents at timestep ``t`` (``[B]`` or scalar).

        ``taps``, when given, receives intermediate tensors (``tokens_in``, ``time_e``, ``head_in``,
        ``positions``) for conformance checks.
        """
        cfg = self.config
        b = block.shape[0]
        f, gh, gw = prepared.grid
        if tuple(block.shape[1:3]) != (cfg.in_dim, f) or tuple(block.shape[3:]) != (gh * 2, gw * 2):
            raise ValueError(
                f"block: got shape {tuple(block.shape)}; accepted: [B, {cfg.in_dim}, {f}, {gh * 2}, {gw * 2}]"
            )
        # 1. embed the block and put it after the (left-padded) history
        blk = self._patches(self.patch_embedding, block.to(self.device)).flatten(1, 3).float()
        nb = blk.shape[1]
        reuse = prepared.history_kv is not None and taps is None
        carried = None if reuse else prepared.carried_kv
        if carried is not None and taps is not None:
            raise ValueError(
                "taps: only the exact path has every history row; prepare without reuse_history_kv"
            )
        x = blk if reuse else torch.cat([prepared.history_tokens, blk], dim=1)

        # 2. time embeddings for the two segments: history (t=0) and block (t)
        e, e0 = self._step_time_embedding(prepared, t, b)  # [B,2,dim], [B,2,6,dim]
        if taps is not None:
            taps["tokens_in"] = x.detach().clone()
            lh = x.shape[1] - nb
            taps["time_e"] = torch.cat([e[:, :1].expand(b, lh, -1), e[:, 1:].expand(b, nb, -1)], dim=1)
            taps["positions"] = prepared.positions

        # 3. transformer blocks; the last one computes only the block rows (all the head reads),
        #    unless the taps want every row of its output
        plan = prepared.plan or AttentionPlan(
            prepared.key_mask, "sdpa" if self.attention_backend != "flash" else "flash"
        )
        fused = not torch.is_grad_enabled()
        collect_kv = prepared.reuse_history_kv and not reuse and taps is None and fused
        collected = []
        cos, sin = prepared.cos, prepared.sin
        if reuse:
            cos, sin = cos[:, -nb:], sin[:, -nb:]
        elif carried is not None:
            cos, sin = cos[:, prepared.carried_rows :], sin[:, prepared.carried_rows :]
        last = len(self.blocks) - 1
        for n, (layer, kv) in enumerate(zip(self.blocks, prepared.context_kv)):
            qkv = layer.self_attn.fused_qkv() if fused else None
            hist_kv = prepared.history_kv[n] if reuse else (None if carried is None else carried[n])
            collect = {"rows": nb} if collect_kv else None
            block_only = n == last and taps is None and not reuse
            x = layer(x, e0, nb, cos, sin, plan, kv, qkv, block_only, hist_kv, collect)
            if collect is not None:
                collected.append(collect)
        if collect_kv:
            kvs = [c["kv"] for c in collected]
            if carried is not None:  # keys in the order of the key mask: carried rows, then new ones
                kvs = [
                    (torch.cat([ck, k], dim=1), torch.cat([cv, v], dim=1))
                    for (ck, cv), (k, v) in zip(carried, kvs)
                ]
            prepared.history_kv = [KVBuffer.around(k, v, nb) for k, v in kvs]
            if prepared.reuse_mode == "episode":
                prepared.new_kv = [c["kv"] for c in collected]
        if taps is not None:
            taps["head_in"] = x.detach().clone()

        # 4. head on the block tokens only, then unpatchify (channels fastest in the head output)
        out = self.head(x[:, -nb:], e[:, 1])
        p = cfg.patch_size
        out = out.view(b, f, gh, gw, *p, cfg.out_dim)
        out = torch.einsum("bfhwpqrc->bcfphqwr", out)
        return out.reshape(b, cfg.out_dim, f * p[0], gh * p[1], gw * p[2])

    def forward(
        self,
        history: Sequence[torch.Tensor | None],
        block: torch.Tensor,
        t: torch.Tensor | float,
        context: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """One velocity prediction: :meth:`prepare` then :meth:`denoise`."""
        prepared = self.prepare(history, context, tuple(block.shape[-2:]))
        return self.denoise(prepared, block, t)
