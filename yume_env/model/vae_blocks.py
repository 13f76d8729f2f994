"""Building blocks of the Wan2.2 video VAE (the autoencoder used by Yume-1.5).

Every block works on channel-first video tensors ``[B, C, T, H, W]``. The network is causal in
time: a frame never depends on later frames. That makes it possible to run it on a video piece by
piece, as long as each temporal layer remembers the few frames of its own input that the next piece
still needs. That memory lives in a :class:`CausalCache`, which the caller owns and passes to every
call; the modules themselves hold nothing but their weights, so one module can serve any number of
independent streams.

Attribute names (``residual``, ``shortcut``, ``resample``, ``time_conv``, ``to_qkv``, ``gamma``, ...)
and the positions inside the ``nn.Sequential`` containers reproduce the key layout of the released
``Wan2.2_VAE.pth`` checkpoint, so that checkpoint loads with ``strict=True``.

Temporal semantics, for a stream that starts at frame 0:

* causal 3-tap convolutions see two zero frames before frame 0;
* the temporal downsampler (stride 2) passes frame 0 through unchanged and then maps each later
  pair of frames ``(2i+1, 2i+2)`` to one frame, reading the window ``(2i, 2i+1, 2i+2)``;
* the temporal upsampler passes frame 0 through unchanged and turns every later frame into two,
  with its own causal convolution that starts from zeros at frame 1 (frame 0 is not part of its
  history);
* the channel-averaging / channel-duplicating shortcuts of the down / up stages follow the same
  "first frame alone" alignment.

So T latent frames decode to ``1 + 4 (T - 1)`` pixel frames, and ``1 + 4 k`` pixel frames encode
to ``1 + k`` latent frames, no matter how the stream is cut into pieces (the encoder's pieces after
the first must hold a multiple of 4 frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = [
    "AttentionBlock",
    "CausalCache",
    "CausalConv3d",
    "ChannelAverageDown",
    "ChannelDuplicateUp",
    "Decoder3d",
    "DownStage",
    "Encoder3d",
    "Resample",
    "ResidualBlock",
    "RMSNorm",
    "UpStage",
]


@dataclass
class CausalCache:
    """Temporal memory of one encoder or decoder stream.

    Attributes:
        history: for every temporal layer that needs it (keyed by the layer's name inside the
            encoder / decoder), the trailing frames of that layer's input seen so far: two frames
            for a causal 3-tap convolution, one frame for the temporal downsampler.
        latent_frames: number of latent frames the stream has produced (encoder) or consumed
            (decoder). Zero means the next piece begins the video.
    """

    history: dict[str, Tensor] = field(default_factory=dict)
    latent_frames: int = 0

    @property
    def started(self) -> bool:
        """Whether at least one piece has gone through the stream."""
        return self.latent_frames > 0

    def clone(self) -> CausalCache:
        """A deep copy: the clone and the original can then advance independently."""
        return CausalCache({k: v.clone() for k, v in self.history.items()}, self.latent_frames)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> CausalCache:
        """A copy with every history tensor moved / cast (like ``Tensor.to``)."""
        return CausalCache(
            {k: v.to(device=device, dtype=dtype) for k, v in self.history.items()}, self.latent_frames
        )

    def nbytes(self) -> int:
        """Memory held by the history tensors, in bytes."""
        return sum(v.numel() * v.element_size() for v in self.history.values())


def name_cache_slots(root: nn.Module) -> None:
    """Give every stateful temporal layer below ``root`` its key in :attr:`CausalCache.history`."""
    for name, module in root.named_modules():
        if isinstance(module, (CausalConv3d, Resample)):
            module.cache_key = name


# oneDNN repacks the weights on every call. For a large weight applied at few positions (the
# widest layers at low resolution) that costs more than the convolution itself and the generic
# kernel is faster; oneDNN wins once there is at least one input position per this many weights.
_ONEDNN_MAX_WEIGHTS_PER_POSITION = 2**14


def _onednn_conv3d_pays(x: Tensor, weight: Tensor) -> bool:
    """Whether a 3D convolution is faster sent straight to oneDNN (float32 CPU only)."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    positions = x.numel() // x.shape[1]
    return weight.numel() <= _ONEDNN_MAX_WEIGHTS_PER_POSITION * positions


class CausalConv3d(nn.Conv3d):
    """3D convolution that is causal in time.

    ``padding`` follows ``nn.Conv3d``'s meaning for the two spatial axes (symmetric zero padding).
    For time, a padding of ``p`` becomes ``2 p`` frames placed *before* the input, so output frame
    ``t`` only sees input frames ``<= t``. Inside a stream, those leading frames are the last
    ``2 p`` input frames of the previous piece (zeros at the very start).
    """

    cache_key: str = ""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
    ) -> None:
        pad_t, pad_h, pad_w = (padding,) * 3 if isinstance(padding, int) else padding
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=(0, pad_h, pad_w))
        self.causal_frames = 2 * pad_t

    def _conv(self, x: Tensor) -> Tensor:
        # F.conv3d picks oneDNN on CPU only for batched or large inputs; one small video (the
        # streaming case: a few frames, narrow layers) goes to a generic im2col kernel that is
        # 2-5x slower. Calling oneDNN directly computes the same convolution up to float
        # rounding (bit for bit where F.conv3d would have chosen oneDNN itself). Other devices
        # and dtypes keep F.conv3d (cuDNN on GPU).
        if not _onednn_conv3d_pays(x, self.weight):
            return super().forward(x)
        return torch.mkldnn_convolution(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups
        )

    def forward(self, x: Tensor, cache: CausalCache | None = None) -> Tensor:  # type: ignore[override]
        n = self.causal_frames
        if n == 0:
            return self._conv(x)
        past = cache.history.get(self.cache_key) if cache is not None else None
        if past is None:
            past = x.new_zeros(x.shape[0], x.shape[1], n, x.shape[3], x.shape[4])
        x = torch.cat([past, x], dim=2)
        if cache is not None:
            cache.history[self.cache_key] = x[:, :, -n:].clone()
        return self._conv(x)


def _channel_norm(x: Tensor) -> Tensor:
    """L2 norm over axis 1, accumulated in float32 even for bf16 activations."""
    if x.device.type == "cpu":
        # On CPU, linalg.vector_norm over a non-innermost axis is ~20x slower than this plain
        # sum of squares, which gives the same norm up to float rounding.
        return x.float().square().sum(dim=1, keepdim=True).sqrt()
    return torch.linalg.vector_norm(x, dim=1, keepdim=True, dtype=torch.float32)


class RMSNorm(nn.Module):
    """L2-normalisation over channels, rescaled by ``sqrt(dim)`` and a learned per-channel gain.

    ``gamma`` has shape ``[dim, 1, 1, 1]`` for video blocks and ``[dim, 1, 1]`` for the attention
    block (that is how the checkpoint stores them); either way it is broadcast over all axes after
    the channel axis, so the norm works on videos ``[B, C, T, H, W]`` and images ``[N, C, H, W]``.
    """

    def __init__(self, dim: int, gamma_dims: int = 3, eps: float = 1e-12) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(dim, *(1,) * gamma_dims))

    def forward(self, x: Tensor) -> Tensor:
        norm = _channel_norm(x).clamp_min(self.eps).to(x.dtype)
        gamma = self.gamma.reshape(-1, *(1,) * (x.ndim - 2))
        # Scale the (channel-free) norm first: two full-size passes over x instead of three.
        return x * (self.scale / norm) * gamma


class ResidualBlock(nn.Module):
    """Pre-norm residual block: two causal 3x3x3 convolutions, 1x1x1 shortcut when widths differ."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        # Indices matter: 0 norm, 2 conv, 3 norm, 6 conv hold the checkpoint's weights.
        self.residual = nn.Sequential(
            RMSNorm(in_dim),
            nn.SiLU(),
            CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMSNorm(out_dim),
            nn.SiLU(),
            nn.Dropout(dropout),
            CausalConv3d(out_dim, out_dim, 3, padding=1),
        )
        self.shortcut: nn.Module = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: Tensor, cache: CausalCache) -> Tensor:
        norm1, act1, conv1, norm2, act2, drop, conv2 = self.residual
        h = conv1(act1(norm1(x)), cache)
        h = conv2(drop(act2(norm2(h))), cache)
        return h + self.shortcut(x)


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of each frame (frames do not attend to each other)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim, gamma_dims=2)
        self.to_qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, h = x.shape[0], x.shape[3]
        frames = rearrange(x, "b c t h w -> (b t) c h w")
        # Token-major copies (channels last in memory), as attention kernels want them.
        qkv = rearrange(self.to_qkv(self.norm(frames)), "n c h w -> n 1 (h w) c").contiguous()
        q, k, v = qkv.chunk(3, dim=-1)  # one head: [b t, 1, h w, c] each
        # Back to [n, c, h, w] as a strided view (no copy); the projection then sees the same
        # memory layout as in the original implementation, which keeps CPU results bit-identical.
        out = F.scaled_dot_product_attention(q, k, v).squeeze(1).transpose(1, 2).unflatten(2, (h, -1))
        return rearrange(self.proj(out), "(b t) c h w -> b c t h w", b=b) + x


class _NearestUpsample2x(nn.Module):
    """Double height and width of images ``[N, C, H, W]`` by pixel repetition."""

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest-exact")


class Resample(nn.Module):
    """2x spatial down- or upsampling, optionally with 2x temporal down- or upsampling.

    Modes: ``"down2d"``, ``"down3d"``, ``"up2d"``, ``"up3d"``. Downsampling is a stride-2 3x3
    convolution on the right/bottom-padded frame, followed (``down3d``) by a stride-2 temporal
    3-tap convolution. Upsampling (``up3d``) first doubles the frame rate with a causal temporal
    convolution that emits two frames per input frame (as two channel halves), then repeats pixels
    and applies a 3x3 convolution.
    """

    MODES = ("down2d", "down3d", "up2d", "up3d")
    cache_key: str = ""

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        if mode.startswith("down"):
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        else:
            self.resample = nn.Sequential(_NearestUpsample2x(), nn.Conv2d(dim, dim, 3, padding=1))
        if mode == "down3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))
        elif mode == "up3d":
            self.time_conv = CausalConv3d(dim, 2 * dim, (3, 1, 1), padding=(1, 0, 0))

    def _spatial(self, x: Tensor) -> Tensor:
        frames = self.resample(rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(frames, "(b t) c h w -> b c t h w", b=x.shape[0])

    def forward(self, x: Tensor, cache: CausalCache) -> Tensor:
        if self.mode == "up3d":
            x = self._temporal_up(x, cache)
        x = self._spatial(x)
        if self.mode == "down3d":
            x = self._temporal_down(x, cache)
        return x

    def _temporal_up(self, x: Tensor, cache: CausalCache) -> Tensor:
        first = None
        if not cache.started:
            first, x = x[:, :, :1], x[:, :, 1:]
        if x.shape[2] > 0:
            x = rearrange(self.time_conv(x, cache), "b (two c) t h w -> b c (t two) h w", two=2)
        return x if first is None else torch.cat([first, x], dim=2)

    def _temporal_down(self, x: Tensor, cache: CausalCache) -> Tensor:
        first = None
        if not cache.started:
            first, previous, rest = x[:, :, :1], x[:, :, :1], x[:, :, 1:]
        else:
            previous, rest = cache.history[self.cache_key], x
        if rest.shape[2] % 2:
            raise ValueError(f"temporal downsampling needs an even number of new frames, got {rest.shape[2]}")
        cache.history[self.cache_key] = x[:, :, -1:].clone()
        if rest.shape[2] == 0:
            return first if first is not None else rest
        out = self.time_conv(torch.cat([previous, rest], dim=2))
        return out if first is None else torch.cat([first, out], dim=2)


class ChannelAverageDown(nn.Module):
    """Parameter-free shortcut of a down stage: space/time-to-channel, then average channel groups.

    Each ``factor_t x factor_s x factor_s`` block of an input channel becomes ``factor`` channels
    (channel-major, then time, height, width offsets); consecutive groups of those are averaged
    down to ``out_channels``. A clip whose length is not a multiple of ``factor_t`` is zero-padded
    at the front, which lines a ``1 + 2k`` frame video up as ``(0, f0), (f1, f2), ...``.
    """

    def __init__(self, in_channels: int, out_channels: int, factor_t: int, factor_s: int = 1) -> None:
        super().__init__()
        self.factor_t = factor_t
        self.factor_s = factor_s
        factor = factor_t * factor_s * factor_s
        if (in_channels * factor) % out_channels:
            raise ValueError("in_channels * factor must be a multiple of out_channels")
        self.group = in_channels * factor // out_channels

    def forward(self, x: Tensor) -> Tensor:
        ft, fs = self.factor_t, self.factor_s
        pad_t = -x.shape[2] % ft
        if pad_t:
            x = F.pad(x, (0, 0, 0, 0, pad_t, 0))
        x = rearrange(x, "b c (t i) (h j) (w k) -> b (c i j k) t h w", i=ft, j=fs, k=fs)
        return x.unflatten(1, (-1, self.group)).mean(dim=2)


class ChannelDuplicateUp(nn.Module):
    """Parameter-free shortcut of an up stage: repeat channels, then channel-to-space/time.

    Inverse layout of :class:`ChannelAverageDown`. At the start of a stream the first
    ``factor_t - 1`` output frames are dropped so the output lines up with the main path, which
    lets frame 0 through without temporal upsampling.
    """

    def __init__(self, in_channels: int, out_channels: int, factor_t: int, factor_s: int = 1) -> None:
        super().__init__()
        self.factor_t = factor_t
        self.factor_s = factor_s
        factor = factor_t * factor_s * factor_s
        if (out_channels * factor) % in_channels:
            raise ValueError("out_channels * factor must be a multiple of in_channels")
        self.repeats = out_channels * factor // in_channels

    def forward(self, x: Tensor, stream_start: bool) -> Tensor:
        ft, fs = self.factor_t, self.factor_s
        x = x.repeat_interleave(self.repeats, dim=1)
        x = rearrange(x, "b (c i j k) t h w -> b c (t i) (h j) (w k)", i=ft, j=fs, k=fs)
        return x[:, :, ft - 1 :] if stream_start else x


class DownStage(nn.Module):
    """Encoder stage: residual blocks (+ optional downsampling) plus an averaging shortcut."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_blocks: int,
        dropout: float,
        temporal: bool,
        spatial: bool,
    ) -> None:
        super().__init__()
        self.avg_shortcut = ChannelAverageDown(
            in_dim, out_dim, factor_t=2 if temporal else 1, factor_s=2 if spatial else 1
        )
        layers: list[nn.Module] = [
            ResidualBlock(in_dim if i == 0 else out_dim, out_dim, dropout) for i in range(num_blocks)
        ]
        if spatial:
            layers.append(Resample(out_dim, "down3d" if temporal else "down2d"))
        self.downsamples = nn.Sequential(*layers)

    def forward(self, x: Tensor, cache: CausalCache) -> Tensor:
        h = x
        for layer in self.downsamples:
            h = layer(h, cache)
        return h + self.avg_shortcut(x)


class UpStage(nn.Module):
    """Decoder stage: residual blocks (+ optional upsampling) plus a duplicating shortcut."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_blocks: int,
        dropout: float,
        temporal: bool,
        spatial: bool,
    ) -> None:
        super().__init__()
        self.avg_shortcut = (
            ChannelDuplicateUp(in_dim, out_dim, factor_t=2 if temporal else 1, factor_s=2)
            if spatial
            else None
        )
        layers: list[nn.Module] = [
            ResidualBlock(in_dim if i == 0 else out_dim, out_dim, dropout) for i in range(num_blocks)
        ]
        if spatial:
            layers.append(Resample(out_dim, "up3d" if temporal else "up2d"))
        self.upsamples = nn.Sequential(*layers)

    def forward(self, x: Tensor, cache: CausalCache) -> Tensor:
        h = x
        for layer in self.upsamples:
            h = layer(h, cache)
        if self.avg_shortcut is None:
            return h
        return h + self.avg_shortcut(x, stream_start=not cache.started)


class _Middle(nn.Sequential):
    """Residual block, per-frame attention, residual block."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__(
            ResidualBlock(dim, dim, dropout), AttentionBlock(dim), ResidualBlock(dim, dim, dropout)
        )

    def forward(self, x: Tensor, cache: CausalCache) -> Tensor:  # type: ignore[override]
        block1, attention, block2 = self
        return block2(attention(block1(x, cache)), cache)


class _Head(nn.Sequential):
    """Norm, SiLU, causal 3x3x3 convolution to the output channels."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(RMSNorm(in_dim), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1))

    def forward(self, x: Tensor, cache: CausalCache) -> Tensor:  # type: ignore[override]
        norm, act, conv = self
        return conv(act(norm(x)), cache)


def _check_no_attn_scales(attn_scales: Sequence[float]) -> None:
    if len(attn_scales) != 0:
        raise NotImplementedError("attention at intermediate scales is not part of the Wan2.2 VAE")


class Encoder3d(nn.Module):
    """Causal video encoder: 12 pixel-shuffled channels in, ``out_channels`` (mean and log-variance)
    out, with ``2 ** (len(dim_mult) - 1)`` spatial and ``2 ** sum(temporal_downsample)`` temporal
    reduction."""

    def __init__(
        self,
        dim: int,
        out_channels: int,
        dim_mult: Sequence[int],
        num_res_blocks: int,
        temporal_downsample: Sequence[bool],
        dropout: float = 0.0,
        in_channels: int = 12,
        attn_scales: Sequence[float] = (),
    ) -> None:
        super().__init__()
        _check_no_attn_scales(attn_scales)
        dims = [dim * m for m in (1, *dim_mult)]
        last = len(dim_mult) - 1
        self.conv1 = CausalConv3d(in_channels, dims[0], 3, padding=1)
        self.downsamples = nn.Sequential(
            *(
                DownStage(
                    dims[i],
                    dims[i + 1],
                    num_res_blocks,
                    dropout,
                    temporal=i < len(temporal_downsample) and temporal_downsample[i],
                    spatial=i != last,
                )
                for i in range(len(dim_mult))
            )
        )
        self.middle = _Middle(dims[-1], dropout)
        self.head = _Head(dims[-1], out_channels)
        self.temporal_stride = 2 ** sum(bool(t) for t in temporal_downsample[:last])
        name_cache_slots(self)

    def forward(self, x: Tensor, cache: CausalCache) -> Tensor:
        """Encode the next piece of a stream; ``cache`` is read and advanced.

        The first piece must hold ``1 + k * temporal_stride`` frames, later pieces a multiple of
        ``temporal_stride`` frames (each group of that many frames becomes one latent frame).
        """
        n = x.shape[2] - (0 if cache.started else 1)
        if n < 0 or n % self.temporal_stride:
            raise ValueError(
                f"the {'next' if cache.started else 'first'} piece of a stream must hold "
                f"{'' if cache.started else '1 + '}a multiple of {self.temporal_stride} frames, got {x.shape[2]}"
            )
        x = self.conv1(x, cache)
        for stage in self.downsamples:
            x = stage(x, cache)
        x = self.head(self.middle(x, cache), cache)
        cache.latent_frames += x.shape[2]
        return x


class Decoder3d(nn.Module):
    """Causal video decoder, the mirror image of :class:`Encoder3d` (one more residual block per
    stage). Outputs 12 channels to be un-shuffled into 3-channel pixels."""

    def __init__(
        self,
        dim: int,
        in_channels: int,
        dim_mult: Sequence[int],
        num_res_blocks: int,
        temporal_upsample: Sequence[bool],
        dropout: float = 0.0,
        out_channels: int = 12,
        attn_scales: Sequence[float] = (),
    ) -> None:
        super().__init__()
        _check_no_attn_scales(attn_scales)
        dims = [dim * m for m in (dim_mult[-1], *reversed(dim_mult))]
        last = len(dim_mult) - 1
        self.conv1 = CausalConv3d(in_channels, dims[0], 3, padding=1)
        self.middle = _Middle(dims[0], dropout)
        self.upsamples = nn.Sequential(
            *(
                UpStage(
                    dims[i],
                    dims[i + 1],
                    num_res_blocks + 1,
                    dropout,
                    temporal=i < len(temporal_upsample) and temporal_upsample[i],
                    spatial=i != last,
                )
                for i in range(len(dim_mult))
            )
        )
        self.head = _Head(dims[-1], out_channels)
        name_cache_slots(self)

    def forward(self, x: Tensor, cache: CausalCache) -> Tensor:
        """Decode the next latent frames of a stream; ``cache`` is read and advanced."""
        n = x.shape[2]
        x = self.middle(self.conv1(x, cache), cache)
        for stage in self.upsamples:
            x = stage(x, cache)
        x = self.head(x, cache)
        cache.latent_frames += n
        return x
