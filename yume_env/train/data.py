"""Training data from the procedural ground-truth world.

An *episode* is one seeded ``YumeProcedural-v0`` place: its start image (the first frame) followed by
``K`` blocks of 29 frames, each produced by one action (movement key, camera move, optional event
text). Actions come from a mix of random and scripted policies (:func:`episode_actions`), so the data
holds long holds of one key, alternating tilts, pure pans, still blocks and catalog events. Each block
carries the caption YumeWorld-v0 would render for it (:func:`yume_env.world.captions.render_caption`
with the official speed fields and the current event text), so the captions the DiT trains on are the
ones it sees when a user plays.

:func:`mirror_episode` flips an episode left-right and swaps the left/right meaning of the actions
(A<->D, pan right<->pan left), which doubles the data for free.

:class:`EpisodeSource` renders episodes in worker processes (the renderer is numpy on the CPU) while
the trainer uses the GPU; :class:`LatentStore` holds the VAE latents of encoded episodes for DiT
training and samples batches of (history, block, caption) from them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from yume_env.actions import LOOKS, MOVES
from yume_env.events import PROCEDURAL_EVENTS
from yume_env.world.captions import render_caption

#: Movement index after a left-right mirror: A<->D, W+A<->W+D, S+A<->S+D.
MIRROR_MOVE: tuple[int, ...] = (0, 1, 4, 3, 2, 6, 5, 8, 7)
#: Camera index after a left-right mirror: pan right<->pan left (also combined with a tilt).
MIRROR_LOOK: tuple[int, ...] = (0, 2, 1, 3, 4, 6, 5, 8, 7)
#: Camera index with the direction reversed: right<->left, up<->down, up+right<->down+left, ...
REVERSE_LOOK: tuple[int, ...] = (0, 2, 1, 4, 3, 8, 7, 6, 5)

#: Event texts used in the data: every catalog event's canonical text plus a few other phrasings.
EVENT_TEXTS: tuple[str, ...] = PROCEDURAL_EVENTS.phrases + ("sunset", "lights out", "thick fog")

BLOCK_FRAMES = 29  # 1 + 4 * 7: eight latents from the causal VAE
IMAGE_FRAMES = 17  # the start image as a static clip: five latents


@dataclass
class Episode:
    """One rendered episode (frames uint8 ``[K, 29, H, W, 3]`` and what produced them)."""

    seed: int
    start: np.ndarray  # [H, W, 3] uint8
    frames: np.ndarray  # [K, T, H, W, 3] uint8
    moves: np.ndarray  # [K] int
    looks: np.ndarray  # [K] int
    events: list[str]  # [K] current event text of each block (what the caption carries)
    applied: list[str | None] = field(default_factory=list)  # [K] catalog event applied in the block
    start_event: str = ""
    mirrored: bool = False

    @property
    def num_blocks(self) -> int:
        return int(self.frames.shape[0])

    def captions(self) -> list[str]:
        """YumeWorld-v0's caption of every block (official speed fields, current event text)."""
        return [render_caption(int(m), int(lk), e) for m, lk, e in zip(self.moves, self.looks, self.events)]


def mirror_episode(ep: Episode) -> Episode:
    """``ep`` flipped left-right, with A<->D and pan right<->left swapped in its actions."""
    return Episode(
        seed=ep.seed,
        start=np.ascontiguousarray(ep.start[:, ::-1]),
        frames=np.ascontiguousarray(ep.frames[:, :, :, ::-1]),
        moves=np.array([MIRROR_MOVE[int(m)] for m in ep.moves]),
        looks=np.array([MIRROR_LOOK[int(m)] for m in ep.looks]),
        events=list(ep.events),
        applied=list(ep.applied),
        start_event=ep.start_event,
        mirrored=not ep.mirrored,
    )


# --------------------------------------------------------------------------------------- actions
_SINGLE_MOVES = (1, 2, 3, 4)
_SINGLE_LOOKS = (1, 2, 3, 4)


def _random_action(rng: np.random.Generator) -> tuple[int, int]:
    """A random (move, look): still 15%, move only 35%, look only 35%, both 15%; single keys favoured."""
    r = rng.random()

    def move():
        return int(rng.choice(_SINGLE_MOVES) if rng.random() < 0.7 else rng.integers(5, 9))

    def look():
        return int(rng.choice(_SINGLE_LOOKS) if rng.random() < 0.75 else rng.integers(5, 9))

    if r < 0.15:
        return 0, 0
    if r < 0.50:
        return move(), 0
    if r < 0.85:
        return 0, look()
    return move(), look()


def episode_actions(rng: np.random.Generator, num_blocks: int) -> list[tuple[int, int]]:
    """(move, look) for each block from one of several policies, picked at random.

    - ``random`` (40%): independent random actions per block.
    - ``sticky`` (25%): a random action held for 1-4 blocks, then another.
    - ``still`` (8%): nothing moves.
    - ``walk`` (9%): one movement key held throughout.
    - ``pan`` (9%): pan left or right, changing direction now and then.
    - ``tilt`` (9%): tilt up and down in turns, staying inside the pitch limit.
    """
    style = rng.choice(
        ["random", "sticky", "still", "walk", "pan", "tilt"], p=[0.40, 0.25, 0.08, 0.09, 0.09, 0.09]
    )
    if style == "random":
        return [_random_action(rng) for _ in range(num_blocks)]
    if style == "sticky":
        out: list[tuple[int, int]] = []
        while len(out) < num_blocks:
            out += [_random_action(rng)] * int(rng.integers(1, 5))
        return out[:num_blocks]
    if style == "still":
        return [(0, 0)] * num_blocks
    if style == "walk":
        return [(int(rng.choice(_SINGLE_MOVES + (5, 6))), 0)] * num_blocks
    if style == "pan":
        look = int(rng.integers(1, 3))
        out = []
        for _ in range(num_blocks):
            if rng.random() < 0.25:
                look = 3 - look
            out.append((0, look))
        return out
    first = int(rng.integers(3, 5))
    pattern = [first, 7 - first, 7 - first, first]  # up, down, down, up (or the reverse)
    return [(0, pattern[k % 4]) for k in range(num_blocks)]


def episode_events(rng: np.random.Generator, num_blocks: int, event_rate: float) -> list[str]:
    """Event text given with each block's action ("" = none): about ``event_rate`` of the blocks."""
    texts = [""] * num_blocks
    for k in range(num_blocks):
        if rng.random() < event_rate:
            texts[k] = str(rng.choice(EVENT_TEXTS))
    return texts


# --------------------------------------------------------------------------------------- rollouts
def rollout_episode(
    seed: int,
    num_blocks: int = 8,
    resolution: tuple[int, int] = (96, 160),
    event_rate: float = 0.12,
    start_event_rate: float = 0.1,
    env=None,
) -> Episode:
    """Render one episode of the procedural world (deterministic in ``seed``)."""
    from yume_env.envs.procedural_env import YumeProceduralEnv

    own = env is None
    if own:
        env = YumeProceduralEnv(resolution=resolution, frames_per_block=BLOCK_FRAMES, render_threads=1)
    try:
        rng = np.random.default_rng([seed, 1])
        start_event = str(rng.choice(EVENT_TEXTS)) if rng.random() < start_event_rate else ""
        env.reset(seed=int(seed), options={"event": start_event} if start_event else None)
        actions = episode_actions(rng, num_blocks)
        event_in = episode_events(rng, num_blocks, event_rate)
        frames, events, applied = [], [], []
        current = start_event
        for (move, look), text in zip(actions, event_in):
            obs, _, _, _, info = env.step({"move": move, "look": look, "event": text})
            frames.append(obs)
            current = current if text == "" else text
            events.append(current)
            applied.append(info["event_applied"])
        return Episode(
            seed=int(seed),
            start=env.unwrapped.start_image(),
            frames=np.stack(frames),
            moves=np.array([a[0] for a in actions]),
            looks=np.array([a[1] for a in actions]),
            events=events,
            applied=applied,
            start_event=start_event,
        )
    finally:
        if own:
            env.close()


@dataclass
class EncodedEpisode:
    """An episode as VAE latents: ``parts`` holds (start latents ``[C, 5, h, w]``, block latents
    ``[K, C, 8, h, w]``, captions) for the episode and then, when mirrored, for its mirror image."""

    seed: int
    parts: list[tuple[torch.Tensor, torch.Tensor, list[str]]]


@torch.no_grad()
def encode_episode(vae, ep: Episode, mirror: bool = True, device=None) -> EncodedEpisode:
    """``ep`` (and its left-right mirror image) encoded by ``vae`` (anything with the VAE's ``encode``):
    the start image as a static 17-frame clip (five latents, as YumeWorld-v0 encodes a start image)
    and every block on its own."""
    parts = []
    for e in (ep, mirror_episode(ep)) if mirror else (ep,):
        start = to_video(np.repeat(e.start[None], IMAGE_FRAMES, axis=0)[None], device)
        parts.append((vae.encode(start)[0], vae.encode(to_video(e.frames, device)), e.captions()))
    return EncodedEpisode(ep.seed, parts)


_WORKER_ENV = None
_WORKER_VAE = None  # (encoder, mirror) when the workers also encode


def _worker_init(encoder: tuple | None = None) -> None:
    global _WORKER_VAE
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    if encoder is not None:
        spec, mirror = encoder
        if isinstance(spec, tuple):  # (vae_config, vae_state_dict): a VAE built in the worker
            from yume_env.model.vae import WanVAE

            config, state = spec
            spec = WanVAE(config)
            spec.load_state_dict(state)
            spec.eval()
        _WORKER_VAE = (spec, mirror)


def _worker_rollout(args: tuple) -> Episode | EncodedEpisode:
    global _WORKER_ENV
    seed, num_blocks, resolution, event_rate, start_event_rate = args
    from yume_env.envs.procedural_env import YumeProceduralEnv

    if _WORKER_ENV is None or (_WORKER_ENV.height, _WORKER_ENV.width) != tuple(resolution):
        _WORKER_ENV = YumeProceduralEnv(
            resolution=tuple(resolution), frames_per_block=BLOCK_FRAMES, render_threads=1
        )
    ep = rollout_episode(seed, num_blocks, tuple(resolution), event_rate, start_event_rate, _WORKER_ENV)
    if _WORKER_VAE is not None:
        return encode_episode(_WORKER_VAE[0], ep, mirror=_WORKER_VAE[1])
    return ep


class EpisodeSource:
    """Renders episodes for a range of seeds, in worker processes (or inline with ``workers=0``).

    ``poll()`` returns the episodes finished since the last call without waiting; ``take(n)`` waits
    for ``n``. Workers keep at most ``2 * workers`` episodes in flight, so memory stays bounded by what
    the trainer has collected.

    With ``encoder = (spec, mirror)`` the workers also encode each episode (:func:`encode_episode`)
    and deliver :class:`EncodedEpisode` items: on a machine without a GPU this spreads the
    autoencoder's work over the worker processes instead of the trainer's. ``spec`` is
    ``(vae_config, vae_state_dict)`` (each worker builds the VAE) or any picklable object with an
    ``encode(video)`` method (e.g. :class:`~yume_env.train.linear_code.LinearCodeEncoder`).
    """

    def __init__(
        self,
        seeds: Iterable[int],
        num_blocks: int = 8,
        resolution: tuple[int, int] = (96, 160),
        workers: int = 0,
        event_rate: float = 0.12,
        start_event_rate: float = 0.1,
        encoder: tuple | None = None,
    ):
        if encoder is not None and workers < 1:
            raise ValueError(f"workers: got {workers}; encoding in workers needs at least 1")
        self._seeds = iter(seeds)
        self._args = (num_blocks, tuple(resolution), event_rate, start_event_rate)
        self.workers = int(workers)
        self.encoding = encoder is not None
        self._pool = None
        self._pending: set[Future] = set()
        self.exhausted = False
        if self.workers > 0:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
                initargs=(encoder,),
            )
            self._fill()

    def _next_seed(self) -> int | None:
        try:
            return int(next(self._seeds))
        except StopIteration:
            self.exhausted = True
            return None

    def _fill(self) -> None:
        while len(self._pending) < 2 * self.workers:
            seed = self._next_seed()
            if seed is None:
                return
            self._pending.add(self._pool.submit(_worker_rollout, (seed, *self._args)))

    def _collect(self, timeout: float | None, want: int) -> list[Episode]:
        if self._pool is None:
            out = []
            while len(out) < want:
                seed = self._next_seed()
                if seed is None:
                    break
                out.append(_worker_rollout((seed, *self._args)))
            return out
        out = []
        while self._pending:
            done, self._pending = wait(self._pending, timeout=timeout, return_when=FIRST_COMPLETED)
            out += [f.result() for f in done]
            self._fill()
            if len(out) >= want or timeout == 0:
                break
        return out

    @property
    def done(self) -> bool:
        return self.exhausted and not self._pending

    def poll(self) -> list[Episode]:
        """Episodes finished since the last call, without waiting (inline mode: none; use ``take``)."""
        if self._pool is None:
            return []
        return self._collect(0, 10**9)

    def take(self, n: int) -> list[Episode]:
        """Wait for ``n`` episodes (fewer when the seeds run out)."""
        out: list[Episode] = []
        while len(out) < n and not self.done:
            out += self._collect(None, n - len(out))
        return out

    def close(self) -> None:
        if self._pool is not None:
            for f in self._pending:
                f.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self._pending = set()


# --------------------------------------------------------------------------------------- pixels
def to_video(frames: np.ndarray, device=None) -> torch.Tensor:
    """uint8 ``[..., T, H, W, 3]`` -> float ``[..., 3, T, H, W]`` in [-1, 1]."""
    x = torch.as_tensor(frames, device=device).float().div_(127.5).sub_(1.0)
    return x.movedim(-1, -4)


class FramePool:
    """Rendered episodes seen as continuous videos, for autoencoder training.

    An episode's video is its start frame followed by its blocks' frames (which continue the motion
    seamlessly); :meth:`sample` draws random ``1 + 4k``-frame windows from those videos (no copy of the
    episodes is kept) and, now and then, a static clip of one frame (what a start image becomes).
    """

    def __init__(self):
        self.episodes: list[Episode] = []

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, episodes: Sequence[Episode]) -> None:
        self.episodes.extend(episodes)

    @staticmethod
    def _frame(ep: Episode, j: int) -> np.ndarray:
        if j == 0:
            return ep.start
        t = ep.frames.shape[1]
        return ep.frames[(j - 1) // t, (j - 1) % t]

    def sample(
        self,
        rng: np.random.Generator,
        batch: int,
        latents: int,
        static_rate: float = 0.1,
        flip: bool = True,
        crop: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """uint8 ``[batch, 1 + 4 (latents-1), h, w, 3]`` windows, randomly cropped to ``crop = (h, w)``
        when given (the autoencoder is convolutional: crops train it at a fraction of the cost)."""
        t = 1 + 4 * (latents - 1)
        out = []
        for _ in range(batch):
            ep = self.episodes[int(rng.integers(len(self.episodes)))]
            n = 1 + ep.frames.shape[0] * ep.frames.shape[1]
            if rng.random() < static_rate:
                clip = np.repeat(self._frame(ep, int(rng.integers(n)))[None], t, axis=0)
            else:
                s = int(rng.integers(0, n - t + 1))
                clip = np.stack([self._frame(ep, j) for j in range(s, s + t)])
            if crop is not None:
                ch, cw = min(crop[0], clip.shape[1]), min(crop[1], clip.shape[2])
                y = int(rng.integers(0, clip.shape[1] - ch + 1))
                x = int(rng.integers(0, clip.shape[2] - cw + 1))
                clip = clip[:, y : y + ch, x : x + cw]
            if flip and rng.random() < 0.5:
                clip = clip[:, :, ::-1]
            out.append(clip)
        return np.stack(out)


# --------------------------------------------------------------------------------------- latents
@dataclass
class LatentBatch:
    """One DiT training batch: every sample has the same history length."""

    history: torch.Tensor  # [B, C, H, h, w]
    target: torch.Tensor  # [B, C, 8, h, w]
    contexts: list[torch.Tensor]  # B x [L, text_dim]
    num_history_blocks: int
    #: text encodings of the newest history block's captions (None when the history is the start
    #: image alone): what regenerating that block with the model needs
    previous_contexts: list[torch.Tensor] | None = None


class LatentStore:
    """VAE latents of encoded episodes: per episode the start-image latents ``[C, 5, h, w]`` and the
    blocks' latents ``[K, C, 8, h, w]``, with a caption id per block (captions are shared strings).

    Stored in float16 on ``device`` (a few hundred MB for thousands of episodes).
    """

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.start: list[torch.Tensor] = []
        self.blocks: list[torch.Tensor] = []
        self.caption_ids: list[torch.Tensor] = []
        self.captions: list[str] = []
        self._caption_index: dict[str, int] = {}
        self.seeds: list[int] = []
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.start)

    @property
    def num_blocks(self) -> int:
        return sum(int(b.shape[0]) for b in self.blocks)

    def caption_id(self, caption: str) -> int:
        if caption not in self._caption_index:
            self._caption_index[caption] = len(self.captions)
            self.captions.append(caption)
        return self._caption_index[caption]

    def add(self, start: torch.Tensor, blocks: torch.Tensor, captions: Sequence[str], seed: int = -1) -> None:
        """One episode: ``start [C, 5, h, w]``, ``blocks [K, C, 8, h, w]``, K captions."""
        if blocks.shape[0] != len(captions):
            raise ValueError(f"blocks/captions: got {blocks.shape[0]} blocks and {len(captions)} captions")
        self.start.append(start.to(self.device, torch.float16))
        self.blocks.append(blocks.to(self.device, torch.float16))
        self.caption_ids.append(torch.tensor([self.caption_id(c) for c in captions]))
        self.seeds.append(int(seed))
        self._cache = None

    def _stacked(self):
        if self._cache is None:
            k = min(int(b.shape[0]) for b in self.blocks)
            self._cache = (
                torch.stack(self.start),
                torch.stack([b[:k] for b in self.blocks]),
                torch.stack([c[:k] for c in self.caption_ids]),
            )
        return self._cache

    def sample(
        self,
        rng: np.random.Generator,
        batch: int,
        contexts: Sequence[torch.Tensor],
        max_history_blocks: int | None = None,
    ) -> LatentBatch:
        """``batch`` random (history, next block) pairs sharing one history length.

        The history is the start latents plus the ``k`` blocks before the target, ``k`` drawn
        uniformly from ``0 .. min(K-1, max_history_blocks)``. ``contexts[i]`` is the text encoding
        of ``captions[i]``.
        """
        start, blocks, cids = self._stacked()
        n, kmax = blocks.shape[0], blocks.shape[1] - 1
        if max_history_blocks is not None:
            kmax = min(kmax, max_history_blocks)
        k = int(rng.integers(0, kmax + 1))
        idx = torch.as_tensor(rng.integers(0, n, size=batch), device=start.device)
        parts = [start[idx]]
        if k:
            hb = blocks[idx, :k]  # [B, k, C, 8, h, w]
            parts.append(hb.permute(0, 2, 1, 3, 4, 5).flatten(2, 3))
        history = torch.cat(parts, dim=2).float()
        target = blocks[idx, k].float()
        ctx = [contexts[int(c)] for c in cids[idx.cpu(), k]]
        prev = [contexts[int(c)] for c in cids[idx.cpu(), k - 1]] if k else None
        return LatentBatch(history, target, ctx, k, prev)

    def state_dict(self) -> dict:
        return {
            "start": torch.stack(self.start).cpu() if self.start else torch.zeros(0),
            "blocks": [b.cpu() for b in self.blocks],
            "caption_ids": [c for c in self.caption_ids],
            "captions": list(self.captions),
            "seeds": torch.tensor(self.seeds, dtype=torch.long),
        }

    def save(self, path: str | Path) -> None:
        torch.save(self.state_dict(), str(path))

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> LatentStore:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        store = cls(device)
        captions = state["captions"]
        for i in range(len(state["blocks"])):
            caps = [captions[int(c)] for c in state["caption_ids"][i]]
            store.add(state["start"][i], state["blocks"][i], caps, int(state["seeds"][i]))
        return store


def action_name(move: int, look: int) -> str:
    """Short label of an action, e.g. ``W`` / ``→`` / ``W →`` / ``still``."""
    parts = [MOVES[move]] if move else []
    parts += [LOOKS[look]] if look else []
    return " ".join(parts) or "still"
