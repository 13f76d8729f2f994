"""One interface over the decoders that turn a world's latents into frames.

Two decoders read Yume's 48-channel latents:

- ``"vae"``: the official Wan2.2 VAE (default; what the official pipeline shows);
- ``"taew2_2"`` / ``"taew2_2_super"``: the TAEHV tiny decoders (:mod:`yume_env.model.taehv`), about
  150x cheaper per block, lower image quality, weights downloaded by the user.

Both are used the same way: :meth:`FrameDecoder.decode_block` decodes blocks on their own (29 frames
for 8 latents), :meth:`FrameDecoder.new_stream` starts a :class:`FrameStream` that continues across
blocks (32 frames per block after the first) and can be cloned for a snapshot. Frames are float32
``[B, 3, T, H, W]`` in ``[-1, 1]`` whatever the decoder (the TAEHV's ``[0, 1]`` is mapped by
``2x - 1``), so turning them into uint8 is the same for all decoders.

``last_frames`` asks for the last frames only. The TAEHV then computes only what those frames depend
on (its stream state still advances exactly); the causal VAE has to decode everything and slices.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from yume_env.model.taehv import TAEHV, TAEHVStreamDecoder, decode_streams
from yume_env.model.vae import VAEStreamDecoder, WanVAE

__all__ = ["DECODERS", "FrameDecoder", "FrameStream", "TAEHVFrameDecoder", "VAEFrameDecoder"]

#: Accepted decoder names.
DECODERS = ("vae", "taew2_2", "taew2_2_super")


def _tail(frames: Tensor, last_frames: int | None) -> Tensor:
    return frames if last_frames is None else frames[:, :, -last_frames:]


def _check_last_frames(last_frames) -> None:
    if last_frames is not None and (
        isinstance(last_frames, bool) or not isinstance(last_frames, int) or last_frames < 1
    ):
        raise ValueError(f"last_frames: got {last_frames!r}; accepted: None or an integer >= 1")


class FrameStream(ABC):
    """A decoding stream of one world: its state belongs to this object and is copied by :meth:`clone`."""

    @abstractmethod
    def decode(self, latents: Tensor, last_frames: int | None = None) -> Tensor:
        """Next latents ``[1, C, f, h, w]`` -> next float32 frames ``[1, 3, T, H, W]`` in [-1, 1]."""

    @abstractmethod
    def clone(self) -> FrameStream:
        """An independent stream that continues from the same point."""

    @abstractmethod
    def reset(self) -> None:
        """Forget all history; the next latent starts a new video."""


class FrameDecoder(ABC):
    """Latents ``[B, C, f, h, w]`` (normalised, as the transformer produces them) -> frames.

    Attributes:
        name: one of :data:`DECODERS`.
        skips_frames: whether ``last_frames`` saves work (``True`` for the TAEHV).
    """

    name: str
    skips_frames: bool = False

    @abstractmethod
    def decode_block(self, latents: Tensor, last_frames: int | None = None) -> Tensor:
        """Each world's latents decoded as a video of their own: float32 ``[B, 3, 1 + 4(f-1), H, W]``
        in [-1, 1] (only the last ``last_frames`` frames when given). Worlds are decoded one by one,
        so a world's frames never depend on its batch neighbours."""

    @abstractmethod
    def new_stream(self) -> FrameStream:
        """A fresh :class:`FrameStream`."""

    def decode_streams(
        self, streams: list[FrameStream], latents: Tensor, last_frames: int | None = None
    ) -> list[Tensor]:
        """Advance ``streams[i]`` with ``latents[i:i+1]`` for every i; frames ``[1, 3, T, H, W]`` each.

        World by world (so a world's frames never depend on its batch neighbours) unless the
        decoder was made with ``batch_worlds=True``.
        """
        return [s.decode(latents[i : i + 1], last_frames=last_frames) for i, s in enumerate(streams)]


# ---------------------------------------------------------------------------------------- VAE
class _VAEStream(FrameStream):
    def __init__(self, decoder: VAEStreamDecoder) -> None:
        self.decoder = decoder

    def decode(self, latents: Tensor, last_frames: int | None = None) -> Tensor:
        _check_last_frames(last_frames)
        return _tail(self.decoder.decode(latents.to(self.decoder.vae.dtype)).float(), last_frames)

    def clone(self) -> _VAEStream:
        return _VAEStream(self.decoder.clone())

    def reset(self) -> None:
        self.decoder.reset()

    def nbytes(self) -> int:
        return self.decoder.state().nbytes()


class VAEFrameDecoder(FrameDecoder):
    """The official Wan2.2 VAE decoder.

    Args:
        vae: the model's VAE (shared, used as it is when ``dtype`` is ``None`` or its own dtype).
        dtype: decode in this dtype instead (e.g. ``torch.bfloat16``): a copy of the decoder half
            of the VAE is made in it; encoding keeps using ``vae``.
    """

    name = "vae"

    def __init__(self, vae: WanVAE, dtype: torch.dtype | None = None) -> None:
        if dtype is not None and dtype != vae.dtype:
            vae = vae.decoder_copy(dtype)
        self.vae = vae

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.dtype

    def decode_block(self, latents: Tensor, last_frames: int | None = None) -> Tensor:
        _check_last_frames(last_frames)
        lat = latents.to(self.vae.device, self.vae.dtype)
        return torch.cat(
            [_tail(self.vae.decode(lat[i : i + 1]).float(), last_frames) for i in range(len(lat))]
        )

    def new_stream(self) -> FrameStream:
        return _VAEStream(self.vae.stream_decoder())


# ---------------------------------------------------------------------------------------- TAEHV
def _to_taehv(latents: Tensor) -> Tensor:
    return latents.permute(0, 2, 1, 3, 4)  # [B, C, f, h, w] -> [B, f, C, h, w]


def _from_taehv(frames: Tensor) -> Tensor:
    return frames.permute(0, 2, 1, 3, 4) * 2.0 - 1.0  # [B, T, 3, H, W] in [0, 1] -> [B, 3, T, H, W]


class _TAEHVStream(FrameStream):
    def __init__(self, decoder: TAEHVStreamDecoder) -> None:
        self.decoder = decoder

    def decode(self, latents: Tensor, last_frames: int | None = None) -> Tensor:
        return _from_taehv(self.decoder.decode(_to_taehv(latents), last_frames=last_frames))

    def clone(self) -> _TAEHVStream:
        return _TAEHVStream(self.decoder.clone())

    def reset(self) -> None:
        self.decoder.reset()

    def nbytes(self) -> int:
        return self.decoder.nbytes()


class TAEHVFrameDecoder(FrameDecoder):
    """A TAEHV tiny decoder (``taew2_2`` or ``taew2_2_super``) behind the common interface.

    ``batch_worlds=True``: :meth:`decode_streams` advances all worlds' streams in one batched call
    (fewer, larger kernels: faster on a GPU), at the price of a world's frames depending on its batch
    neighbours within float rounding.
    """

    skips_frames = True

    def __init__(self, model: TAEHV, name: str, batch_worlds: bool = False) -> None:
        if name not in DECODERS[1:]:
            raise ValueError(f"name: got {name!r}; accepted: {', '.join(DECODERS[1:])}")
        self.model = model
        self.name = name
        self.batch_worlds = bool(batch_worlds)

    def decode_streams(
        self, streams: list[FrameStream], latents: Tensor, last_frames: int | None = None
    ) -> list[Tensor]:
        if not self.batch_worlds or not all(isinstance(s, _TAEHVStream) for s in streams):
            return super().decode_streams(streams, latents, last_frames)
        frames = decode_streams([s.decoder for s in streams], _to_taehv(latents), last_frames)
        return [_from_taehv(f) for f in frames]

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def decode_block(self, latents: Tensor, last_frames: int | None = None) -> Tensor:
        return torch.cat(
            [
                _from_taehv(self.model.decode_video(_to_taehv(latents[i : i + 1]), last_frames=last_frames))
                for i in range(len(latents))
            ]
        )

    def new_stream(self) -> FrameStream:
        return _TAEHVStream(self.model.stream_decoder())
