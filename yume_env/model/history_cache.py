"""Per-world caches that carry work on the TSCM history from one block to the next.

A world's history only grows at its end (and, past ``max_history``, loses the frames after the first),
and a frame's tokens at a TSCM rate depend on that frame alone. So the tokens of every (frame, rate)
embedded for one block can be kept for the next one; only frames that are new, or that moved to a
coarser tier, are embedded again. This is exact: :meth:`YumeDiT.prepare` embeds every history frame
on its own (one matrix product per frame), so a cached frame's tokens are the very bits a fresh
embedding gives.

The opt-in long-episode approximation (``reuse_history_kv="episode"``) also carries every layer's
keys and values of the history tokens of the coarse tiers (:data:`CARRIED_RATES`, :class:`HistoryKV`);
then only the other tokens run through the transformer, once per block. A carried token keeps the
keys/values it got in the block where it entered its tier; in the exact path they would be recomputed
against the current history and block.

Caches are immutable: a block builds new ones (sharing unchanged tensors with the old), so a world
state that holds one stays exactly as it was if a step fails, and a snapshot may share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

#: TSCM rates whose keys/values ``"episode"`` carries across blocks: the coarse tiers, which hold most
#: of a long history's tokens (935 of 1,030 at history 957 on the tiny preset). The recent frames
#: (1x, 2x, 4x: ~95 tokens there) are run again every block, as with ``"block"``: they matter most
#: for what comes next, and the blocks after them see them fresh.
CARRIED_RATES = frozenset({"8x", "16x", "f"})
#: A frame's tokens at one rate: ``(frame, rate)``.
FrameKey = tuple[int, str]
#: TSCM rates in the order of :data:`HistoryKV.rate` codes.
RATES = ("1x", "2x", "4x", "8x", "16x", "f")


@dataclass(frozen=True)
class HistoryKV:
    """Every layer's keys (after RoPE) and values of a world's carried history tokens.

    The rows come in groups, one per (history frame, rate): group ``j`` holds ``count[j]`` rows of
    frame ``frame[j]`` at temporal RoPE slot ``slot[j]`` and rate ``RATES[rate[j]]``. ``k[n]`` / ``v[n]``
    are layer ``n``'s ``[rows, heads, head_dim]``. ``shift``: frames dropped since the keys were
    rotated (their temporal RoPE position is ``shift`` too high; the next block rotates them back).
    """

    frame: np.ndarray
    slot: np.ndarray
    rate: np.ndarray
    count: np.ndarray
    k: tuple[torch.Tensor, ...]
    v: tuple[torch.Tensor, ...]
    shift: int = 0

    @property
    def first_rows(self) -> np.ndarray:
        """The first row of every group."""
        return np.cumsum(self.count) - self.count

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.k, *self.v))


@dataclass(frozen=True)
class HistoryCache:
    """What one block computed on a world's history, for the next block of the same world.

    Attributes:
        fingerprint: ``[C, H]`` the latent value at pixel (0, 0) of each of the ``H`` history frames the
            cache was built for; a later history must start with the same values to use it.
        tokens: ``(frame, rate) -> [n, dim]`` float32 tokens of the frames embedded at that rate.
        kv: the carried keys/values of the long-episode approximation, or ``None``.
    """

    fingerprint: torch.Tensor
    tokens: dict[FrameKey, torch.Tensor] = field(default_factory=dict)
    kv: HistoryKV | None = None

    @property
    def frames(self) -> int:
        return int(self.fingerprint.shape[1])

    def fits(self, history: torch.Tensor) -> bool:
        """Whether ``history [C, H, h, w]`` starts with the frames this cache was built for."""
        n = self.frames
        if history.shape[1] < n or history.shape[0] != self.fingerprint.shape[0]:
            return False
        return torch.equal(history[:, :n, 0, 0], self.fingerprint.to(history.device))

    def dropped(self, count: int) -> HistoryCache:
        """The cache after history frames ``1..count`` were removed (the first frame stays)."""
        if count <= 0:
            return self
        fp = torch.cat([self.fingerprint[:, :1], self.fingerprint[:, 1 + count :]], dim=1)
        shift = lambda f: f if f == 0 else f - count  # noqa: E731
        tokens = {(shift(f), r): t for (f, r), t in self.tokens.items() if f == 0 or f > count}
        kv = self.kv
        if kv is not None:
            keep = (kv.frame == 0) | (kv.frame > count)
            first = kv.first_rows[keep]
            rows = np.concatenate(
                [np.arange(a, a + n) for a, n in zip(first, kv.count[keep])] or [np.zeros(0, int)]
            )
            index = torch.as_tensor(rows, dtype=torch.long, device=kv.k[0].device)
            moved = lambda a: np.where(a[keep] == 0, 0, a[keep] - count)  # noqa: E731
            kv = HistoryKV(
                moved(kv.frame),
                moved(kv.slot),
                kv.rate[keep],
                kv.count[keep],
                tuple(t.index_select(0, index) for t in kv.k),
                tuple(t.index_select(0, index) for t in kv.v),
                kv.shift + count,
            )
        return HistoryCache(fp, tokens, kv)

    def without_tokens(self) -> HistoryCache:
        """The same cache without the embedded tokens (they can be recomputed bit for bit)."""
        return replace(self, tokens={})

    @property
    def nbytes(self) -> int:
        tokens = sum(t.numel() * t.element_size() for t in self.tokens.values())
        return tokens + (0 if self.kv is None else self.kv.nbytes)
