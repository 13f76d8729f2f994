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

import torch

#: TSCM rates whose keys/values ``"episode"`` carries across blocks: the coarse tiers, which hold most
#: of a long history's tokens (935 of 1,030 at history 957 on the tiny preset). The recent frames
#: (1x, 2x, 4x: ~95 tokens there) are run again every block, as with ``"block"``: they matter most
#: for what comes next, and the blocks after them see them fresh.
CARRIED_RATES = frozenset({"8x", "16x", "f"})
#: A frame's tokens at one rate: ``(frame, rate)``.
FrameKey = tuple[int, str]
#: A group of history tokens in the transformer: ``(frame, temporal RoPE slot, rate)``.
TokenKey = tuple[int, int, str]


@dataclass(frozen=True)
class HistoryKV:
    """Every layer's keys (after the q/k norm, before RoPE) and values of a world's history tokens.

    ``keys[j]`` names the ``counts[j]`` consecutive rows it owns; ``k[n]`` / ``v[n]`` are layer ``n``'s
    ``[tokens, heads, head_dim]``.
    """

    keys: tuple[TokenKey, ...]
    counts: tuple[int, ...]
    k: tuple[torch.Tensor, ...]
    v: tuple[torch.Tensor, ...]

    def offsets(self) -> dict[TokenKey, tuple[int, int]]:
        """``key -> (first row, rows)``."""
        out, row = {}, 0
        for key, n in zip(self.keys, self.counts):
            out[key] = (row, n)
            row += n
        return out

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
            offsets = kv.offsets()
            keep = [key for key in kv.keys if key[0] == 0 or key[0] > count]
            rows = [r for key in keep for r in range(offsets[key][0], sum(offsets[key]))]
            index = torch.tensor(rows, dtype=torch.long, device=kv.k[0].device)
            kv = HistoryKV(
                tuple((shift(f), shift(s), r) for f, s, r in keep),
                tuple(offsets[key][1] for key in keep),
                tuple(t.index_select(0, index) for t in kv.k),
                tuple(t.index_select(0, index) for t in kv.v),
            )
        return HistoryCache(fp, tokens, kv)

    def without_tokens(self) -> HistoryCache:
        """The same cache without the embedded tokens (they can be recomputed bit for bit)."""
        return replace(self, tokens={})

    @property
    def nbytes(self) -> int:
        tokens = sum(t.numel() * t.element_size() for t in self.tokens.values())
        return tokens + (0 if self.kv is None else self.kv.nbytes)
