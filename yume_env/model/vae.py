"""The Wan2.2 video VAE used by Yume-1.5, with an explicit, forkable streaming decoder.

Pixels ``[B, 3, F, H, W]`` in ``[-1, 1]`` map to 48-channel latents at 1/16 of the spatial size
and 1/4 of the frame rate (causally: frame 0 gets a latent of its own, then every 4 frames one
more). Latents are normalised per channel with the fixed statistics :data:`LATENT_MEAN` /
:data:`LATENT_STD`, which is the form the diffusion transformer consumes and produces.

The state-dict keys (``encoder.*``, ``conv1.*``, ``conv2.*``, ``decoder.*``) are those of the
released ``Wan2.2_VAE.pth``, so it loads with ``load_state_dict(..., strict=True)``.

Example::

    vae = WanVAE()                                   # or build under torch.device("meta") and
    vae.load_state_dict(state_dict, strict=True)     # load_state_dict(..., assign=True)
    with torch.inference_mode():
        z = vae.encode(video)                        # [B, 48, 1 + (F-1)//4, H/16, W/16]
        stream = vae.stream_decoder()
        first = stream.decode(z[:, :, :1])           # 1 frame
        more = stream.decode(next_latents)           # 4 frames per latent, seamless
        fork = stream.clone()                        # independent copy of the stream
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from yume_env.model.vae_blocks import CausalCache, Decoder3d, Encoder3d

__all__ = [
    "LATENT_MEAN",
    "LATENT_STD",
    "CausalCache",
    "VAEConfig",
    "VAEStreamDecoder",
    "WanVAE",
]

#: Per-channel mean of the unnormalised latents (Wan2.2, 48 channels).
LATENT_MEAN: tuple[float, ...] = (
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557,
    -0.1382, 0.0542, 0.2813, 0.0891, 0.1570, -0.0098, 0.0375, -0.1825,
    -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230,
    -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748,
    0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
)  # fmt: skip

#: Per-channel standard deviation of the unnormalised latents (Wan2.2, 48 channels).
LATENT_STD: tuple[float, ...] = (
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013,
    0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978,
    0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093,
    0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887,
    0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
)  # fmt: skip

_PATCH = 2  # pixels are shuffled 2x2 into channels before the encoder (and back after the decoder)


@dataclass(frozen=True)
class VAEConfig:
    """Hyper-parameters of :class:`WanVAE`. The defaults are the released Wan2.2 VAE (704,688,668
    parameters) as Yume-1.5 builds it.

    Attributes:
        z_dim: latent channels. Must be 48 for the built-in normalisation constants.
        dim: base width of the encoder (widths ``dim * m`` for ``m`` in ``(1, *dim_mult)``).
        dec_dim: base width of the decoder (widths ``dec_dim * m`` for ``m`` in
            ``(dim_mult[-1], *reversed(dim_mult))``).
        dim_mult: width multiplier of each stage; every stage but the last halves height and width.
        num_res_blocks: residual blocks per encoder stage (the decoder uses one more per stage).
        attn_scales: kept for parity with the original signature; only ``()`` is supported.
        temperal_downsample: per encoder stage, whether it also halves the frame rate (the decoder
            mirrors it). Spelling kept from the original code.
        dropout: dropout probability inside residual blocks (inactive in eval mode).
    """

    z_dim: int = 48
    dim: int = 160
    dec_dim: int = 256
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temperal_downsample: tuple[bool, ...] = (False, True, True)
    dropout: float = 0.0

    @property
    def temporal_stride(self) -> int:
        """Pixel frames per latent frame (after the first): 4 for the defaults."""
        return 2 ** sum(bool(t) for t in self.temperal_downsample[: len(self.dim_mult) - 1])

    @property
    def spatial_stride(self) -> int:
        """Pixels per latent along height and width: 16 for the defaults."""
        return _PATCH * 2 ** (len(self.dim_mult) - 1)

    @property
    def temperal_upsample(self) -> tuple[bool, ...]:
        """The decoder's per-stage temporal upsampling flags (reverse of ``temperal_downsample``)."""
        return tuple(reversed(self.temperal_downsample))

    @classmethod
    def from_official(cls, kwargs: dict) -> VAEConfig:
        """From the official ``WanVAE_`` / ``Wan2_2_VAE`` keyword arguments (``c_dim`` or ``dim``)."""
        known = {
            "z_dim",
            "dim",
            "c_dim",
            "dec_dim",
            "dim_mult",
            "num_res_blocks",
            "attn_scales",
            "temperal_downsample",
            "dropout",
        }
        unknown = set(kwargs) - known
        if unknown:
            raise ValueError(f"vae config: unknown keys {sorted(unknown)}; accepted: {sorted(known)}")
        fields = {
            ("dim" if k == "c_dim" else k): (tuple(v) if isinstance(v, list) else v)
            for k, v in kwargs.items()
        }
        return cls(**fields)


def _patchify(x: Tensor) -> Tensor:
    # Channel order (c, w-offset, h-offset), as the checkpoint expects.
    return rearrange(x, "b c f (h q) (w r) -> b (c r q) f h w", q=_PATCH, r=_PATCH)


def _unpatchify(x: Tensor) -> Tensor:
    return rearrange(x, "b (c r q) f h w -> b c f (h q) (w r)", q=_PATCH, r=_PATCH)


class WanVAE(nn.Module):
    """Wan2.2 causal video VAE.

    The module is stateless between calls: all temporal memory of a stream is held in a
    :class:`CausalCache` owned by the caller (see :class:`VAEStreamDecoder`), so one instance can
    serve many streams and may be called re-entrantly.

    Computation runs in the dtype and on the device of the weights (inputs are cast to them).
    Latent normalisation is done in float32, and :meth:`encode` / :meth:`decode` return float32
    tensors whatever the compute dtype.
    """

    def __init__(self, config: VAEConfig = VAEConfig()) -> None:  # noqa: B008 - frozen dataclass
        super().__init__()
        if config.z_dim != len(LATENT_MEAN):
            raise ValueError(f"z_dim must be {len(LATENT_MEAN)} to match the latent statistics")
        self.config = config
        self.encoder = Encoder3d(
            config.dim,
            2 * config.z_dim,
            config.dim_mult,
            config.num_res_blocks,
            config.temperal_downsample,
            config.dropout,
            in_channels=3 * _PATCH**2,
            attn_scales=config.attn_scales,
        )
        self.conv1 = nn.Conv3d(2 * config.z_dim, 2 * config.z_dim, 1)
        self.conv2 = nn.Conv3d(config.z_dim, config.z_dim, 1)
        self.decoder = Decoder3d(
            config.dec_dim,
            config.z_dim,
            config.dim_mult,
            config.num_res_blocks,
            config.temperal_upsample,
            config.dropout,
            out_channels=3 * _PATCH**2,
            attn_scales=config.attn_scales,
        )

    # ------------------------------------------------------------------ helpers

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype (that of the weights)."""
        return self.conv2.weight.dtype

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.conv2.weight.device

    @staticmethod
    def latent_stats(device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """``(mean, inv_std)`` as float32 ``[48]`` tensors, with ``inv_std = float32(1 / std)``."""
        mean = torch.tensor(LATENT_MEAN, dtype=torch.float32, device=device)
        inv_std = 1.0 / torch.tensor(LATENT_STD, dtype=torch.float32, device=device)
        return mean, inv_std

    def normalize_latents(self, mu: Tensor) -> Tensor:
        """Raw encoder means -> normalised latents: ``(mu - mean) * inv_std`` in float32."""
        mean, inv_std = self.latent_stats(mu.device)
        return (mu.float() - mean.view(-1, 1, 1, 1)) * inv_std.view(-1, 1, 1, 1)

    def denormalize_latents(self, z: Tensor) -> Tensor:
        """Normalised latents -> raw: ``z / inv_std + mean`` in float32.

        This divides by the float32 reciprocal rather than multiplying by ``std``, to reproduce
        the original numbers exactly.
        """
        mean, inv_std = self.latent_stats(z.device)
        return z.float() / inv_std.view(-1, 1, 1, 1) + mean.view(-1, 1, 1, 1)

    def _check_video(self, video: Tensor) -> None:
        s = self.config.spatial_stride
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"expected video [B, 3, F, H, W], got {tuple(video.shape)}")
        if video.shape[2] < 1 or video.shape[3] % s or video.shape[4] % s:
            raise ValueError(f"need F >= 1 and H, W divisible by {s}, got {tuple(video.shape)}")

    def _check_latents(self, latents: Tensor) -> None:
        if latents.ndim != 5 or latents.shape[1] != self.config.z_dim:
            raise ValueError(
                f"expected latents [B, {self.config.z_dim}, f, h, w], got {tuple(latents.shape)}"
            )

    # ------------------------------------------------------------------ encode

    def encode_unnormalized(self, video: Tensor) -> Tensor:
        """Encoder means before normalisation, float32 ``[B, 48, (F-1)//4 + 1, H/16, W/16]``.

        The clip is encoded causally in pieces of 1, 4, 4, ... frames; trailing frames that do not
        fill a piece of 4 are ignored.
        """
        self._check_video(video)
        stride = self.config.temporal_stride
        n_latents = (video.shape[2] - 1) // stride + 1
        x = _patchify(video[:, :, : 1 + stride * (n_latents - 1)].to(device=self.device, dtype=self.dtype))
        cache = CausalCache()
        pieces = [self.encoder(x[:, :, :1], cache)]
        for start in range(1, x.shape[2], stride):
            pieces.append(self.encoder(x[:, :, start : start + stride], cache))
        stats = self.conv1(torch.cat(pieces, dim=2) if len(pieces) > 1 else pieces[0])
        mu = stats[:, : self.config.z_dim]  # the other half is the log-variance
        return mu.float()

    def encode(self, video: Tensor) -> Tensor:
        """Video ``[B, 3, F, H, W]`` in ``[-1, 1]`` -> normalised float32 latents
        ``[B, 48, (F-1)//4 + 1, H/16, W/16]`` (deterministic: the posterior mean)."""
        return self.normalize_latents(self.encode_unnormalized(video))

    # ------------------------------------------------------------------ decode

    def decoder_copy(self, dtype: torch.dtype) -> WanVAE:
        """A copy of the decoding half (``conv2`` and ``decoder``) cast to ``dtype``, for decoding
        in reduced precision while encoding stays in this VAE's precision. The copy has no encoder
        (``encoder`` / ``conv1`` are ``None``): encode with the original."""
        with torch.device("meta"):
            twin = WanVAE(self.config)
        twin.encoder = None
        twin.conv1 = None
        twin.conv2 = copy.deepcopy(self.conv2).to(dtype)
        twin.decoder = copy.deepcopy(self.decoder).to(dtype)
        return twin.eval()

    def stream_decoder(self, latents_per_step: int = 1) -> VAEStreamDecoder:
        """A fresh :class:`VAEStreamDecoder` over this VAE."""
        return VAEStreamDecoder(self, latents_per_step=latents_per_step)

    def decode_unclamped(self, latents: Tensor) -> Tensor:
        """Normalised latents ``[B, 48, f, h, w]`` -> float32 video ``[B, 3, 1 + 4(f-1), 16h, 16w]``
        (decoded as a new stream, not clamped)."""
        return self.stream_decoder().decode_unclamped(latents)

    def decode(self, latents: Tensor) -> Tensor:
        """Normalised latents ``[B, 48, f, h, w]`` -> float32 video ``[B, 3, 1 + 4(f-1), 16h, 16w]``
        clamped to ``[-1, 1]`` (decoded as a new stream)."""
        return self.decode_unclamped(latents).clamp_(-1.0, 1.0)


class VAEStreamDecoder:
    """Decodes a latent video piece by piece, seamlessly.

    The first latent frame ever decoded yields 1 pixel frame, every later one yields 4 (the
    temporal stride). Pieces may have any length; the concatenated output equals decoding the
    concatenated latents in one go. The causal memory lives here, not in the module, and can be
    snapshotted (:meth:`state`) or forked (:meth:`clone`).

    Args:
        vae: the model (shared, not copied).
        state: a snapshot from :meth:`state` to resume from (it is copied); ``None`` starts a new
            video.
        latents_per_step: latent frames pushed through the decoder at once. 1 (the default)
            bounds activation memory and reproduces the original numbers exactly; larger values
            give the same result up to float rounding.
    """

    def __init__(self, vae: WanVAE, state: CausalCache | None = None, latents_per_step: int = 1) -> None:
        if latents_per_step < 1:
            raise ValueError("latents_per_step must be >= 1")
        self.vae = vae
        self.latents_per_step = latents_per_step
        self._cache = state.clone() if state is not None else CausalCache()

    @property
    def latents_decoded(self) -> int:
        """Latent frames consumed so far."""
        return self._cache.latent_frames

    @property
    def frames_decoded(self) -> int:
        """Pixel frames produced so far: ``0`` or ``1 + 4 (latents_decoded - 1)``."""
        n = self._cache.latent_frames
        return 0 if n == 0 else 1 + self.vae.config.temporal_stride * (n - 1)

    def state(self) -> CausalCache:
        """A deep copy of the causal memory (small: two frames per temporal layer)."""
        return self._cache.clone()

    def clone(self) -> VAEStreamDecoder:
        """An independent decoder that continues from the same point."""
        return VAEStreamDecoder(self.vae, self._cache, self.latents_per_step)

    def reset(self) -> None:
        """Forget all history; the next latent starts a new video."""
        self._cache = CausalCache()

    def decode_unclamped(self, latents: Tensor) -> Tensor:
        """Next normalised latents ``[B, 48, f, h, w]`` -> next float32 frames, not clamped."""
        vae = self.vae
        vae._check_latents(latents)
        if latents.shape[2] == 0:
            raise ValueError("need at least one latent frame")
        x = vae.conv2(vae.denormalize_latents(latents.to(vae.device)).to(vae.dtype))
        step = self.latents_per_step
        pieces = [vae.decoder(x[:, :, i : i + step], self._cache) for i in range(0, x.shape[2], step)]
        out = _unpatchify(torch.cat(pieces, dim=2) if len(pieces) > 1 else pieces[0])
        return out.float()

    def decode(self, latents: Tensor) -> Tensor:
        """Next normalised latents ``[B, 48, f, h, w]`` -> next float32 frames in ``[-1, 1]``."""
        return self.decode_unclamped(latents).clamp_(-1.0, 1.0)
