"""TSCM history tiers: which history latents are embedded at which spatial compression rate.

Yume-1.5 keeps every past latent frame but embeds older frames with coarser patch kernels, so the
token count grows slowly with history length. This module is the pure bookkeeping of that scheme,
exactly as the official forward does it (no tensors here):

======================  =====================================================================
history latents ``H``    groups (first..last frame) @ rate
======================  =====================================================================
0                        none: the text-to-video first block
1..6                     [0]@1x, [1:H-1]@2x, [H-1]@1x   (H <= 2: frame H-1 again at 2x)
7..22                    [0]@1x, [1:H-5]@4x, [H-5:H-3]@2x, [H-3:]@1x
23..86                   [0]@1x, [1:H-21]@8x, [H-21:H-5]@4x, [H-5:H-3]@2x, [H-3:]@1x
87..342                  [0]@2x, [1:H-85]@16x, [H-85:H-21]@8x, [H-21:H-5]@4x, [H-5:H-3]@2x, [H-3:]@1x
343..1366                [0]@2x, [1:H-341]@f, [H-341:H-85]@16x, then as the row above
======================  =====================================================================

Rates are relative to the base (1, 2, 2) patch: ``2x`` is a (1, 4, 4) kernel, ``4x`` (1, 8, 8), ``8x``
(1, 16, 16), ``16x`` (1, 32, 32) and ``f`` is a 48->48 (1, 4, 4) conv followed by the 16x kernel.
Kernels never stride in time, so every history frame keeps one temporal RoPE slot. Inputs are
zero-padded at the bottom/right to a multiple of the kernel (an official quirk that changes outputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Spatial kernel (and stride) of each rate, in latent pixels.
RATE_KERNEL: dict[str, int] = {"1x": 2, "2x": 4, "4x": 8, "8x": 16, "16x": 32}

#: Parameter-name suffix of the patch embedding used by each rate.
RATE_MODULE: dict[str, str] = {
    "1x": "patch_embedding",
    "2x": "patch_embedding_2x",
    "4x": "patch_embedding_4x",
    "8x": "patch_embedding_8x",
    "16x": "patch_embedding_16x",
}

#: Largest history the official tier table covers.
MAX_TIERED_HISTORY = 1366


@dataclass(frozen=True)
class HistoryGroup:
    """History frames ``start .. stop-1`` embedded at ``rate`` (one of ``1x 2x 4x 8x 16x f``)."""

    start: int
    stop: int
    rate: str

    @property
    def frames(self) -> int:
        return self.stop - self.start


def history_groups(num_history: int) -> tuple[HistoryGroup, ...]:
    """The official TSCM grouping of ``num_history`` clean history latents, oldest first."""
    h = num_history
    if h < 0:
        raise ValueError(f"num_history: got {h}; accepted: an integer >= 0")
    if h == 0:
        return ()
    if h <= 6:
        # H <= 2 has no middle frames; the official code embeds the newest frame again at 2x.
        middle = HistoryGroup(1, h - 1, "2x") if h > 2 else HistoryGroup(h - 1, h, "2x")
        return (HistoryGroup(0, 1, "1x"), middle, HistoryGroup(h - 1, h, "1x"))
    if h <= 22:
        return (
            HistoryGroup(0, 1, "1x"),
            HistoryGroup(1, h - 5, "4x"),
            HistoryGroup(h - 5, h - 3, "2x"),
            HistoryGroup(h - 3, h, "1x"),
        )
    if h <= 86:
        return (
            HistoryGroup(0, 1, "1x"),
            HistoryGroup(1, h - 21, "8x"),
            HistoryGroup(h - 21, h - 5, "4x"),
            HistoryGroup(h - 5, h - 3, "2x"),
            HistoryGroup(h - 3, h, "1x"),
        )
    recent = (
        HistoryGroup(h - 85, h - 21, "8x"),
        HistoryGroup(h - 21, h - 5, "4x"),
        HistoryGroup(h - 5, h - 3, "2x"),
        HistoryGroup(h - 3, h, "1x"),
    )
    if h <= 342:
        return (HistoryGroup(0, 1, "2x"), HistoryGroup(1, h - 85, "16x"), *recent)
    if h <= MAX_TIERED_HISTORY:
        return (
            HistoryGroup(0, 1, "2x"),
            HistoryGroup(1, h - 341, "f"),
            HistoryGroup(h - 341, h - 85, "16x"),
            *recent,
        )
    raise ValueError(
        f"num_history: got {h} history latents; the TSCM tiers cover at most {MAX_TIERED_HISTORY} "
        "(the world keeps its history within budget by dropping the oldest frames after the first)"
    )


def group_grid(rate: str, height: int, width: int) -> tuple[int, int]:
    """Token grid (h', w') of one latent frame of size ``height x width`` embedded at ``rate``."""
    if rate == "f":
        # 48->48 conv at stride 4 on the padded frame, then the 16x kernel (stride 32) on its padded output.
        h4, w4 = math.ceil(height / 4), math.ceil(width / 4)
        return math.ceil(h4 / 32), math.ceil(w4 / 32)
    k = RATE_KERNEL[rate]
    return math.ceil(height / k), math.ceil(width / k)


def history_slots(num_history: int) -> int:
    """Temporal RoPE slots the history takes; the block starts at this position."""
    return sum(g.frames for g in history_groups(num_history))


def history_token_count(num_history: int, height: int, width: int) -> int:
    """Number of history tokens for a latent grid of ``height x width``."""
    total = 0
    for g in history_groups(num_history):
        gh, gw = group_grid(g.rate, height, width)
        total += g.frames * gh * gw
    return total
