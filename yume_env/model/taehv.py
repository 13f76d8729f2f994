"""A tiny autoencoder for the Wan2.2 latent space (the TAEHV ``taew2_2`` / ``taew2_2_super`` decoders).

The TAEHV project (madebyollin/taehv, MIT licence) publishes small convolutional autoencoders
trained to mimic video VAEs. ``taew2_2`` and ``taew2_2_super`` read the 48-channel Wan2.2-5B
latents that Yume-1.5's transformer produces and decode them about 150x cheaper than the Wan2.2 VAE
(roughly 1.5-2 TFLOP instead of 281 TFLOP per 8-latent block at 544x960), at lower image quality.
This module is an independent implementation of that architecture whose state-dict keys are those
of the published weight files (``taew2_2.safetensors`` / ``.pth``), so they load as they are.

Conventions (those of the published models):

- layout ``[N, T, C, H, W]`` (time before channels), not the ``[B, C, T, H, W]`` of :mod:`vae`;
- latents are the *normalised* Wan2.2 latents (what the transformer produces, no de-normalisation);
- frames are RGB in ``[0, 1]`` (the Wan2.2 VAE uses ``[-1, 1]``);
- ``T`` latents decode to ``4T - 3`` frames: the decoder makes 4 raw frames per latent and the first
  3 raw frames of a video are dropped, so a block of 8 latents gives 29 frames like the official
  per-block VAE decode; ``4T`` frames encode to ``T`` latents.

The network is a stack of per-frame 2-D layers; time enters only through

- *memory blocks*, which see their own input at the previous frame (zeros before the first),
- *time pools* (encoder), which fold ``s`` consecutive frames into channels, and
- *time grows* (decoder), which unfold channels into ``s`` consecutive frames.

So a decoder stream needs, per memory block, only the last frame of that block's input: that is the
whole state of :class:`TAEHVStreamDecoder`, held by the caller and cloneable.

Example::

    tae = load_taehv("taew2_2.safetensors")                  # or TAEHV(TAEHVConfig.taew2_2())
    with torch.inference_mode():
        frames = tae.decode_video(latents)                   # [N, 4T-3, 3, 16h, 16w] in [0, 1]
        stream = tae.stream_decoder()
        first = stream.decode(latents[:, :8])                # 29 frames
        more = stream.decode(latents[:, 8:])                 # 32 frames, seamless
        fork = stream.clone()                                # independent copy of the stream
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "TAEHV",
    "TAEHV_PRESETS",
    "MemoryBlock",
    "SoftClamp",
    "SuperMemoryBlock",
    "TAEHVConfig",
    "TAEHVStreamDecoder",
    "TimeGrow",
    "TimePool",
    "config_from_shapes",
    "decode_streams",
    "load_taehv",
]

VARIANTS = ("base", "super")


@dataclass(frozen=True)
class TAEHVConfig:
    """Hyper-parameters of :class:`TAEHV`. The defaults are the published ``taew2_2`` (base decoder).

    Attributes:
        variant: ``"base"`` (3x3 memory blocks, nearest upsampling; 11.4 M parameters at full size)
            or ``"super"`` (ConvNeXt-style memory blocks, pixel-shuffle upsampling; 20.5 M).
        latent_channels: latent channels (48 for Wan2.2).
        image_channels: RGB.
        patch_size: pixels folded into channels before the encoder / unfolded after the decoder.
        encoder_width: channels of every encoder stage.
        decoder_widths: channels of the three decoder stages and of the output stage.
        encoder_time_downscale: per encoder stage, whether it halves the frame rate.
        decoder_time_upscale: per decoder stage, whether it doubles the frame rate.
        decoder_space_upscale: per decoder stage, whether it doubles height and width.
    """

    variant: str = "base"
    latent_channels: int = 48
    image_channels: int = 3
    patch_size: int = 2
    encoder_width: int = 64
    decoder_widths: tuple[int, int, int, int] = (256, 128, 64, 64)
    encoder_time_downscale: tuple[bool, bool, bool] = (True, True, False)
    decoder_time_upscale: tuple[bool, bool, bool] = (False, True, True)
    decoder_space_upscale: tuple[bool, bool, bool] = (True, True, True)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: got {self.variant!r}; accepted: {', '.join(VARIANTS)}")
        if len(self.decoder_widths) != 4 or any(int(w) < 1 for w in self.decoder_widths):
            raise ValueError(f"decoder_widths: got {self.decoder_widths!r}; accepted: 4 positive widths")
        for name in ("encoder_time_downscale", "decoder_time_upscale", "decoder_space_upscale"):
            if len(getattr(self, name)) != 3:
                raise ValueError(f"{name}: got {getattr(self, name)!r}; accepted: 3 booleans")

    @classmethod
    def taew2_2(cls) -> TAEHVConfig:
        """The published ``taew2_2`` (11,418,108 parameters)."""
        return cls()

    @classmethod
    def taew2_2_super(cls) -> TAEHVConfig:
        """The published ``taew2_2_super`` (20,487,996 parameters)."""
        return cls(variant="super", decoder_widths=(512, 256, 128, 64))

    @property
    def time_upscale(self) -> int:
        """Raw decoder frames per latent (4 for the defaults)."""
        return 2 ** sum(bool(t) for t in self.decoder_time_upscale)

    @property
    def time_downscale(self) -> int:
        """Encoder input frames per latent (4 for the defaults)."""
        return 2 ** sum(bool(t) for t in self.encoder_time_downscale)

    @property
    def frames_to_trim(self) -> int:
        """Raw frames dropped at the start of every decoded video (3 for the defaults)."""
        return self.time_upscale - 1

    @property
    def spatial_scale(self) -> int:
        """Pixels per latent along height and width (16 for the defaults)."""
        return self.patch_size * 2 ** sum(bool(s) for s in self.decoder_space_upscale)


#: Named configurations of the published weight files.
TAEHV_PRESETS: dict[str, TAEHVConfig] = {
    "taew2_2": TAEHVConfig.taew2_2(),
    "taew2_2_super": TAEHVConfig.taew2_2_super(),
}


# --------------------------------------------------------------------------------------- layers
def _conv3x3(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """``3 tanh(x / 3)``: squashes latents into (-3, 3) smoothly (first layer of the base decoder)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x / 3.0) * 3.0


class MemoryBlock(nn.Module):
    """Residual 3x3 block that also sees its input at the previous frame.

    ``relu(f([x_t, x_{t-1}]) + x_t)`` with ``f`` = conv, relu, conv, relu, conv (``conv.0/2/4``).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv3x3(2 * width, width), nn.ReLU(), _conv3x3(width, width), nn.ReLU(), _conv3x3(width, width)
        )

    def forward(self, x: Tensor, past: Tensor) -> Tensor:
        return F.relu(self.conv(torch.cat([x, past], dim=1)) + x)


class SuperMemoryBlock(nn.Module):
    """The super decoder's memory block: 7x7 depthwise conv and a 4x inverted bottleneck.

    ``x_t + g([x_t, x_{t-1}])`` with ``g`` = depthwise 7x7, 1x1 (x2 width), relu, 1x1 (``conv.0/1/3``).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(2 * width, 2 * width, 7, padding=3, groups=2 * width, bias=False),
            nn.Conv2d(2 * width, 4 * width, 1),
            nn.ReLU(),
            nn.Conv2d(4 * width, width, 1, bias=False),
        )

    def forward(self, x: Tensor, past: Tensor) -> Tensor:
        return self.conv(torch.cat([x, past], dim=1)) + x


class TimePool(nn.Module):
    """Folds ``stride`` consecutive frames into channels, then mixes them with a 1x1 conv."""

    def __init__(self, width: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(width * stride, width, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, T, C, H, W]`` -> ``[N, T / stride, C, H, W]`` (T must be a multiple of the stride)."""
        n, t, c, h, w = x.shape
        folded = x.reshape(n * (t // self.stride), self.stride * c, h, w)
        return self.conv(folded).unflatten(0, (n, t // self.stride))


class TimeGrow(nn.Module):
    """A 1x1 conv to ``stride`` times the channels, unfolded into ``stride`` consecutive frames."""

    def __init__(self, width: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(width, width * stride, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, T, C, H, W]`` -> ``[N, T * stride, C, H, W]``."""
        n, t, c, h, w = x.shape
        return self.conv(x.flatten(0, 1)).reshape(n, t * self.stride, c, h, w)


_MEMORY = (MemoryBlock, SuperMemoryBlock)
_TEMPORAL = (*_MEMORY, TimePool, TimeGrow)


# ------------------------------------------------------------------------------------ networks
def _build_encoder(cfg: TAEHVConfig) -> nn.Sequential:
    w = cfg.encoder_width
    layers: list[nn.Module] = [_conv3x3(cfg.image_channels * cfg.patch_size**2, w), nn.ReLU()]
    for down in cfg.encoder_time_downscale:
        layers += [TimePool(w, 2 if down else 1), _conv3x3(w, w, stride=2, bias=False)]
        layers += [MemoryBlock(w) for _ in range(3)]
    layers.append(_conv3x3(w, cfg.latent_channels))
    return nn.Sequential(*layers)


def _build_base_decoder(cfg: TAEHVConfig) -> nn.Sequential:
    widths = cfg.decoder_widths
    layers: list[nn.Module] = [SoftClamp(), _conv3x3(cfg.latent_channels, widths[0]), nn.ReLU()]
    for stage in range(3):
        w = widths[stage]
        layers += [MemoryBlock(w) for _ in range(3)]
        layers.append(nn.Upsample(scale_factor=2 if cfg.decoder_space_upscale[stage] else 1))
        layers.append(TimeGrow(w, 2 if cfg.decoder_time_upscale[stage] else 1))
        layers.append(_conv3x3(w, widths[stage + 1], bias=False))
    layers += [nn.ReLU(), _conv3x3(widths[3], cfg.image_channels * cfg.patch_size**2)]
    return nn.Sequential(*layers)


def _build_super_decoder(cfg: TAEHVConfig) -> nn.Sequential:
    widths = cfg.decoder_widths
    layers: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, widths[0], 1, bias=False)]
    for stage in range(3):
        w, nxt = widths[stage], widths[stage + 1]
        scale = 2 if cfg.decoder_space_upscale[stage] else 1
        layers += [SuperMemoryBlock(w) for _ in range(3)]
        layers += [_conv3x3(w, nxt * scale**2), nn.ReLU(), nn.PixelShuffle(scale)]
        layers.append(TimeGrow(nxt, 2 if cfg.decoder_time_upscale[stage] else 1))
    layers.append(_conv3x3(widths[3], cfg.image_channels * cfg.patch_size**2))
    return nn.Sequential(*layers)


def _needed_inputs(layers: nn.Sequential, frames_out: int) -> list[int]:
    """For each layer, how many trailing input frames the last ``frames_out`` outputs depend on."""
    need = [0] * len(layers)
    n = frames_out
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if isinstance(layer, _MEMORY):
            n += 1  # the first wanted output also reads the frame before it
        elif isinstance(layer, TimeGrow):
            n = math.ceil(n / layer.stride)
        elif isinstance(layer, TimePool):
            n *= layer.stride
        need[i] = n
    return need


def _run(
    layers: nn.Sequential,
    x: Tensor,
    memory: list[Tensor | None] | None = None,
    last_frames: int | None = None,
) -> Tensor:
    """Apply ``layers`` to a clip ``[N, T, C, H, W]``, all frames of a layer at once.

    Args:
        memory: per layer, the input of that memory block at the frame before this clip (``None``:
            the clip starts the video, the past is zeros). Updated in place with this clip's last
            input frame of every memory block, so the next clip continues seamlessly.
        last_frames: if given, only the last ``last_frames`` outputs are wanted: each layer then
            runs on just the trailing frames they depend on (the memory update stays exact).
    """
    need = _needed_inputs(layers, last_frames) if last_frames is not None else None
    for i, layer in enumerate(layers):
        if need is not None and x.shape[1] > need[i]:
            x = x[:, -need[i] :]  # earlier frames cannot reach the wanted outputs
        n, t = x.shape[:2]
        if isinstance(layer, _MEMORY):
            before = memory[i] if memory is not None and memory[i] is not None else None
            first = torch.zeros_like(x[:, :1]) if before is None else before[:, None]
            past = torch.cat([first, x[:, :-1]], dim=1)
            if memory is not None:
                memory[i] = x[:, -1].clone()
            x = layer(x.flatten(0, 1), past.flatten(0, 1)).unflatten(0, (n, t))
        elif isinstance(layer, (TimePool, TimeGrow)):
            x = layer(x)
        else:
            x = layer(x.flatten(0, 1)).unflatten(0, (n, t))
    if last_frames is not None:
        x = x[:, -last_frames:]
    return x


class TAEHV(nn.Module):
    """The tiny autoencoder: :meth:`encode_video`, :meth:`decode_video`, :meth:`stream_decoder`.

    The module holds only weights; a decoding stream's memory lives in a :class:`TAEHVStreamDecoder`
    owned by the caller, so one instance can serve any number of streams. Computation runs in the
    dtype and on the device of the weights (inputs are cast to them); outputs are float32.
    """

    def __init__(self, config: TAEHVConfig = TAEHVConfig()) -> None:  # noqa: B008 - frozen dataclass
        super().__init__()
        self.config = config
        self.encoder = _build_encoder(config)
        self.decoder = (_build_super_decoder if config.variant == "super" else _build_base_decoder)(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder[-1].weight.dtype

    @property
    def device(self) -> torch.device:
        return self.decoder[-1].weight.device

    def _check_latents(self, latents: Tensor) -> None:
        c = self.config.latent_channels
        if latents.ndim != 5 or latents.shape[2] != c or latents.shape[1] < 1:
            raise ValueError(f"latents: expected [N, T>=1, {c}, h, w], got {tuple(latents.shape)}")

    def _frames_out(self, raw: Tensor) -> Tensor:
        """Raw decoder output ``[N, T, C*p*p, h, w]`` -> float32 RGB ``[N, T, C, H, W]`` in [0, 1]."""
        return F.pixel_shuffle(raw, self.config.patch_size).float().clamp_(0.0, 1.0)

    # ------------------------------------------------------------------ encode
    def encode_video(self, video: Tensor) -> Tensor:
        """RGB ``[N, T, 3, H, W]`` in [0, 1] -> normalised latents ``[N, ceil(T/4), 48, H/16, W/16]``.

        1. Fold each ``patch_size`` square of pixels into channels.
        2. Pad the clip to a multiple of 4 frames by repeating its last frame.
        3. Run the encoder on all frames at once.
        """
        cfg = self.config
        s = cfg.spatial_scale
        if video.ndim != 5 or video.shape[2] != cfg.image_channels or video.shape[1] < 1:
            raise ValueError(
                f"video: expected [N, T>=1, {cfg.image_channels}, H, W], got {tuple(video.shape)}"
            )
        if video.shape[3] % s or video.shape[4] % s:
            raise ValueError(f"video: H and W must be multiples of {s}, got {tuple(video.shape)}")
        x = F.pixel_unshuffle(video.to(self.device, self.dtype), cfg.patch_size)  # 1
        pad = -x.shape[1] % cfg.time_downscale
        if pad:
            x = torch.cat([x, x[:, -1:].expand(-1, pad, -1, -1, -1)], dim=1)  # 2
        return _run(self.encoder, x).float()  # 3

    # ------------------------------------------------------------------ decode
    def stream_decoder(self) -> TAEHVStreamDecoder:
        """A fresh :class:`TAEHVStreamDecoder` over this model."""
        return TAEHVStreamDecoder(self)

    def decode_video(self, latents: Tensor, last_frames: int | None = None) -> Tensor:
        """Normalised latents ``[N, T, 48, h, w]`` -> float32 RGB ``[N, 4T-3, 3, 16h, 16w]`` in [0, 1].

        The latents are decoded as a video of their own (a new stream). ``last_frames``: return only
        the last that many frames, computing only what they depend on.
        """
        return self.stream_decoder().decode(latents, last_frames=last_frames)


class TAEHVStreamDecoder:
    """Decodes a latent video piece by piece, seamlessly.

    The first piece of a stream loses its first 3 raw frames (``4T - 3`` frames), every later piece
    gives 4 frames per latent; the concatenated output equals decoding the concatenated latents in
    one go (up to float rounding). The state (one frame per memory block plus counters) belongs to
    this object and can be copied with :meth:`clone`.

    Args:
        model: the :class:`TAEHV` (shared, not copied).
    """

    def __init__(self, model: TAEHV) -> None:
        self.model = model
        self._memory: list[Tensor | None] = [None] * len(model.decoder)
        self._raw_frames = 0
        self._latents = 0

    @property
    def latents_decoded(self) -> int:
        """Latent frames consumed so far."""
        return self._latents

    @property
    def frames_decoded(self) -> int:
        """Frames produced so far (``4 latents_decoded - 3``, or 0)."""
        return max(0, self._raw_frames - self.model.config.frames_to_trim)

    def clone(self) -> TAEHVStreamDecoder:
        """An independent decoder that continues from the same point."""
        other = TAEHVStreamDecoder(self.model)
        other._memory = [None if m is None else m.clone() for m in self._memory]
        other._raw_frames, other._latents = self._raw_frames, self._latents
        return other

    def reset(self) -> None:
        """Forget all history; the next latent starts a new video."""
        self._memory = [None] * len(self.model.decoder)
        self._raw_frames = self._latents = 0

    def nbytes(self) -> int:
        """Memory held by the stream state, in bytes."""
        return sum(m.numel() * m.element_size() for m in self._memory if m is not None)

    def decode(self, latents: Tensor, last_frames: int | None = None) -> Tensor:
        """Next normalised latents ``[N, T, 48, h, w]`` -> next float32 RGB frames ``[N, F, 3, H, W]``.

        1. Run the decoder over the piece, memory blocks continuing from the stream state.
        2. Drop the raw frames that fall into the first 3 of the video.
        3. Unfold the patch channels into pixels and clamp to [0, 1].

        ``last_frames``: return only the last that many frames (fewer if the piece has fewer) and
        skip the work the others alone would need; the stream state advances exactly as without it.
        """
        model = self.model
        model._check_latents(latents)
        if last_frames is not None and (
            isinstance(last_frames, bool) or not isinstance(last_frames, int) or last_frames < 1
        ):
            raise ValueError(f"last_frames: got {last_frames!r}; accepted: None or an integer >= 1")
        cfg = model.config
        raw_total = latents.shape[1] * cfg.time_upscale
        trim = max(0, cfg.frames_to_trim - self._raw_frames)
        keep = raw_total - trim if last_frames is None else min(last_frames, raw_total - trim)
        memory = list(self._memory)  # committed only when the whole piece went through
        x = latents.to(model.device, model.dtype)
        raw = _run(model.decoder, x, memory, last_frames=None if keep <= 0 else keep)  # 1
        raw = raw[:, raw.shape[1] - max(keep, 0) :]  # 2
        self._memory = memory
        self._raw_frames += raw_total
        self._latents += latents.shape[1]
        return model._frames_out(raw)  # 3


def decode_streams(
    streams: list[TAEHVStreamDecoder], latents: Tensor, last_frames: int | None = None
) -> list[Tensor]:
    """Advance several streams of one model by one piece each, in batched decoder calls.

    ``latents[i]`` ``[T, 48, h, w]`` goes to ``streams[i]``; returns each stream's frames as
    :meth:`TAEHVStreamDecoder.decode` would (up to float rounding: convolutions may sum in another
    order at another batch size). Fresh streams and continuing ones go in two separate calls.
    """
    if len(streams) != latents.shape[0]:
        raise ValueError(f"latents: got {latents.shape[0]} pieces for {len(streams)} streams")
    if not streams:
        return []
    model = streams[0].model
    if any(s.model is not model for s in streams):
        raise ValueError("streams: all streams must share one TAEHV model")
    model._check_latents(latents)
    cfg = model.config
    raw_total = latents.shape[1] * cfg.time_upscale
    out: list[Tensor | None] = [None] * len(streams)
    fresh = [i for i, s in enumerate(streams) if s._raw_frames == 0]
    going = [i for i, s in enumerate(streams) if s._raw_frames > 0]
    for group in (fresh, going):
        if not group:
            continue
        trims = [max(0, cfg.frames_to_trim - streams[i]._raw_frames) for i in group]
        keeps = [raw_total - t if last_frames is None else min(last_frames, raw_total - t) for t in trims]
        first = streams[group[0]]._memory
        memory = [
            None if m is None else torch.cat([streams[i]._memory[j] for i in group])
            for j, m in enumerate(first)
        ]
        x = latents[group].to(model.device, model.dtype)
        raw = _run(model.decoder, x, memory, last_frames=None if last_frames is None else max(keeps))
        for k, i in enumerate(group):
            stream = streams[i]
            stream._memory = [None if m is None else m[k : k + 1].clone() for m in memory]
            stream._raw_frames += raw_total
            stream._latents += latents.shape[1]
            out[i] = model._frames_out(raw[k : k + 1, raw.shape[1] - keeps[k] :])
    return out  # type: ignore[return-value]


# ------------------------------------------------------------------------------------- loading
def _variant_of(shapes: dict[str, tuple[int, ...]]) -> str | None:
    if "decoder.1.conv.3.weight" in shapes:  # only the super decoder's memory blocks have a conv.3
        return "super"
    if "decoder.3.conv.4.weight" in shapes:
        return "base"
    return None


def config_from_shapes(shapes: dict[str, tuple[int, ...]], variant: str | None = None) -> TAEHVConfig:
    """The :class:`TAEHVConfig` a state dict with these key shapes was saved from.

    The variant is read from the keys (``decoder.1.conv.3.weight`` exists only in the super decoder)
    unless given; widths and latent channels from the shapes. Time/space up- and downscaling keep
    their published values. Raises ``ValueError`` if the keys fit neither variant.
    """
    found = _variant_of(shapes)
    if variant is None:
        variant = found
    if variant is None:
        raise ValueError(
            "the weights hold neither a base nor a super TAEHV decoder "
            "(no decoder.3.conv.4.weight / decoder.1.conv.3.weight key)"
        )
    if variant not in VARIANTS:
        raise ValueError(f"variant: got {variant!r}; accepted: {', '.join(VARIANTS)}")
    if found is not None and found != variant:
        raise ValueError(f"the weights are a {found} TAEHV decoder, but {variant!r} was asked for")
    try:
        enc = shapes["encoder.0.weight"]
        enc_width, patch_channels = enc[0], enc[1]
        latent = shapes["encoder.17.weight"][0]
        if variant == "super":
            widths = (
                shapes["decoder.0.weight"][0],
                shapes["decoder.7.conv.weight"][1],
                shapes["decoder.14.conv.weight"][1],
                shapes["decoder.21.conv.weight"][1],
            )
        else:
            widths = (
                shapes["decoder.1.weight"][0],
                shapes["decoder.8.weight"][0],
                shapes["decoder.14.weight"][0],
                shapes["decoder.20.weight"][0],
            )
    except (KeyError, IndexError) as exc:
        raise ValueError(f"the weights lack a TAEHV key needed to read the sizes ({exc})") from None
    patch = int(round(math.sqrt(patch_channels / 3)))
    base = TAEHV_PRESETS["taew2_2_super" if variant == "super" else "taew2_2"]
    return replace(
        base,
        encoder_width=int(enc_width),
        latent_channels=int(latent),
        patch_size=patch,
        decoder_widths=tuple(int(w) for w in widths),
    )


def load_taehv(
    path: str | Path,
    variant: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = torch.float32,
) -> TAEHV:
    """Load published TAEHV weights (``.safetensors`` or ``.pth``) safely.

    ``variant`` (``"base"`` / ``"super"``) is read from the keys when ``None`` (a name such as
    ``"taew2_2_super"`` is accepted too). The keys and shapes are checked against the model on the
    ``meta`` device before any tensor is read; every tensor must be floating point. ``.pth`` files
    are read with ``torch.load(weights_only=True)``. Raises
    :class:`~yume_env.model.checkpoint.CheckpointError` naming the file and what is wrong.
    """
    from yume_env.model.checkpoint import CheckpointError, check_keys, materialize, open_weights

    path = Path(path)
    if isinstance(variant, str) and variant in TAEHV_PRESETS:
        variant = TAEHV_PRESETS[variant].variant
    if variant is not None and variant not in VARIANTS:
        accepted = ", ".join((*VARIANTS, *TAEHV_PRESETS))
        raise ValueError(f"variant: got {variant!r}; accepted: None, {accepted}")
    if not path.is_file():
        raise CheckpointError(f"decoder_path: {path} is not a file (expected taew2_2.safetensors or .pth)")
    label = f"TAEHV weights {path}"
    source = open_weights(path, label)
    bad = [k for k, d in (source.dtypes or {}).items() if not d.is_floating_point]
    if bad:
        shown = ", ".join(f"{k} ({source.dtypes[k]})" for k in bad[:5])
        raise CheckpointError(f"{label}: non-float tensors are not TAEHV weights: {shown}")
    found = _variant_of(source.shapes)
    if variant is not None and found is not None and found != variant:
        names = {"base": "taew2_2", "super": "taew2_2_super"}
        raise CheckpointError(
            f"{label}: the weights are a {found} TAEHV decoder ({names[found]}), but {variant!r} "
            f"({names[variant]}) was asked for"
        )
    try:
        config = config_from_shapes(source.shapes, variant)
    except ValueError as exc:
        reference = TAEHV_PRESETS["taew2_2_super" if variant == "super" else "taew2_2"]
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in TAEHV(reference).state_dict().items()}
        check_keys(expected, source.shapes, label)  # lists the missing / unexpected / mis-shaped keys
        raise CheckpointError(f"{label}: {exc}") from None
    return materialize(lambda: TAEHV(config), source, device, dtype)
