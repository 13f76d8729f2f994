"""Splitting a batch of N worlds into W shards and putting the shards' answers back together."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from yume_env.world.protocol import per_world

__all__ = ["merge_infos", "per_world", "shard_indices", "split_batch"]


def shard_indices(num_worlds: int, num_workers: int) -> list[list[int]]:
    """Contiguous, as-even-as-possible blocks of world indices: 5 worlds on 2 workers -> [0,1,2], [3,4]."""
    if num_workers > num_worlds:
        raise ValueError(
            f"workers: got {num_workers} for {num_worlds} world(s); accepted: at most one worker per world"
        )
    return [part.tolist() for part in np.array_split(np.arange(num_worlds), num_workers)]


def split_batch(batch, indices: Sequence[int]):
    """The worlds ``indices`` of a batched action (dicts per key, tuples of str, arrays by row)."""
    if isinstance(batch, dict):
        return {key: split_batch(value, indices) for key, value in batch.items()}
    if isinstance(batch, tuple | list):
        return tuple(batch[j] for j in indices)
    return np.asarray(batch)[list(indices)]


def merge_infos(num_worlds: int, parts: Sequence[tuple[Sequence[int], dict]]) -> dict:
    """One Gymnasium vector info dict from the shards' ``(world indices, infos)``.

    Each key keeps its ``_key`` mask; nested dicts (``final_info``) are merged recursively, and
    ``world`` (a world's index, as the in-process env reports it) is renumbered to the global index.
    """
    out: dict = {}
    for indices, infos in parts:
        _place(out, infos, list(indices), num_worlds)
    return out


def _place(out: dict, part: dict, indices: list[int], n: int) -> dict:
    for key, value in part.items():
        if key.startswith("_") and key[1:] in part:
            continue  # a mask: placed with its key
        mask = np.asarray(part.get(f"_{key}", np.ones(len(indices), dtype=bool)))
        if isinstance(value, dict):
            out[key] = _place(out.get(key, {}), value, indices, n)
        else:
            value = np.asarray(value) if not isinstance(value, np.ndarray) else value
            if key == "world":
                value = np.where(mask, np.asarray(indices), value)
            if key not in out:
                if value.dtype == object:
                    out[key] = np.full(n, None, dtype=object)
                else:
                    out[key] = np.zeros((n, *value.shape[1:]), dtype=value.dtype)
            out[key][indices] = value
        out.setdefault(f"_{key}", np.zeros(n, dtype=bool))[indices] = mask
    return out
