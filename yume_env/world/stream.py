"""``WorldStream``: B generated worlds over one loaded model.

Each world holds its clean history latents, its current event text, a block counter and its own
seeded noise generator. ``step`` advances any subset of the worlds by one block in ONE batched
denoise (worlds may be at different history lengths; a world's frames never depend on which other
worlds share the batch). ``snapshot``/``restore``/``fork`` copy a world's full state so several
futures can be branched from one moment.

Decoding modes:

- ``"block"`` (default): each block's 8 latents are decoded on their own, as the official loop does:
  29 frames per block, identical to the official pipeline's output.
- ``"stream"``: the causal VAE keeps its cache across blocks (primed with the history at reset):
  32 frames per block and no seams between blocks, but not what the official code produces.
- ``"none"``: no decoding (for latent observations; fastest).

The decoder is the official VAE unless another :class:`~yume_env.model.frame_decoder.FrameDecoder`
is given (e.g. ``model.frame_decoder("taew2_2", path)``); ``last_frame_only`` returns just the newest
frame of each block (decoders that can, such as the TAEHV, then skip the work for the others).

Long horizons: the official code crashes once history + block exceed 1024 RoPE positions (about 127
blocks). Here the history is kept within ``max_history`` latents (default 1016, the most the official
code can run) by dropping the oldest latents after the first (the start image stays as the anchor).
Up to that point outputs are identical to the official ones; past it the world keeps going with
bounded memory and compute.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from yume_env.actions import Action  # re-exported: yume_env.world.stream.Action is the same class
from yume_env.model.dit import REUSE_MODES
from yume_env.model.frame_decoder import FrameDecoder
from yume_env.model.history_cache import HistoryCache
from yume_env.model.pipeline import YumeModel
from yume_env.model.sampler import EulerSampler
from yume_env.model.tscm import MAX_TIERED_HISTORY
from yume_env.world.captions import SpeedFields, render_caption
from yume_env.world.images import load_image, parse_resolution, to_uint8

DECODE_MODES = ("block", "stream", "none")


class NonFiniteOutputError(RuntimeError):
    """The model produced NaN/Inf for some world; that world was left as it was before the step."""


@dataclass
class WorldState:
    """Everything that defines one world; a deep copy of it is a snapshot."""

    history: torch.Tensor | None = None  # [C, H, h, w] float32 clean latents, oldest first
    event: str = ""
    block_index: int = 0
    generator: torch.Generator | None = None
    decoder: object | None = None  # the world's FrameStream in "stream" mode
    start_frame: np.ndarray | None = None  # [H, W, 3] uint8
    last_frames: np.ndarray | None = None  # [T, H, W, 3] uint8 of the newest block
    dropped_latents: int = 0
    seed: int | None = None
    #: what the last block computed on the history, for the next one (exact path: the TSCM tokens, a
    #: cache that changes nothing; ``reuse_history_kv="episode"``: also the carried keys/values)
    history_cache: HistoryCache | None = None

    @property
    def history_length(self) -> int:
        return 0 if self.history is None else int(self.history.shape[1])


@dataclass(frozen=True)
class WorldSignature:
    """What a world's state only makes sense with: a snapshot restores only into a world that matches."""

    model: str  # preset name
    weights: tuple[float, ...]  # a cheap fingerprint of the DiT weights (two different models differ)
    dtype: str
    resolution: tuple[int, int]
    steps: int
    shift: float
    decode: str
    decoder: str  # "vae" or a TAEHV name: its streaming state fits no other decoder
    reuse_history_kv: bool | str  # the approximate paths have other futures than the exact one
    max_history: int

    def differences(self, other: WorldSignature) -> list[str]:
        """``"name: snapshot X, this world Y"`` for every field that differs."""
        out = []
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                if name == "weights":
                    out.append("model weights: the snapshot comes from a model with other weights")
                else:
                    out.append(f"{name}: snapshot {theirs!r}, this world {mine!r}")
        return out


@dataclass(frozen=True)
class WorldSnapshot:
    """A frozen copy of one world's state (history, event, RNG, decoder cache, counters)."""

    state: WorldState
    rng_state: torch.Tensor
    signature: WorldSignature | None = None


@dataclass(frozen=True)
class StreamMark:
    """Every world's state object and noise position at one moment (see :meth:`WorldStream.mark`)."""

    states: list
    generator_states: list


@dataclass(frozen=True)
class BlockTiming:
    """Wall-clock milliseconds of one step (shared by the worlds of a batch).

    Timings are measurements, not world state: any two ``BlockTiming`` compare equal, so the infos of
    two identical steps are equal (Gymnasium's determinism checks compare infos).
    """

    text_ms: float = field(default=0.0, compare=False)
    denoise_ms: float = field(default=0.0, compare=False)
    decode_ms: float = field(default=0.0, compare=False)
    encode_ms: float = field(default=0.0, compare=False)

    @property
    def total_ms(self) -> float:
        return self.text_ms + self.denoise_ms + self.decode_ms + self.encode_ms

    def as_dict(self) -> dict[str, float]:
        return {
            "text_ms": self.text_ms,
            "denoise_ms": self.denoise_ms,
            "decode_ms": self.decode_ms,
            "encode_ms": self.encode_ms,
        }


@dataclass
class BlockOutput:
    """What one world got from a reset or step."""

    frames: np.ndarray | None  # [T, H, W, 3] uint8, None in "none" decode mode
    latents: torch.Tensor  # [C, 8, h, w] float32 (the newest block; the start latents after an image reset)
    caption: str
    info: dict = field(default_factory=dict)


def _full_block(frames: np.ndarray, count: int) -> np.ndarray:
    """``frames`` with its first frame repeated in front up to ``count`` frames.

    The first latent a causal decoder ever sees gives 1 frame, not 4: a text-started world's first
    block in ``"stream"`` mode would be 3 frames short of the observation space.
    """
    missing = count - frames.shape[0]
    if missing <= 0:
        return frames
    return np.concatenate([np.repeat(frames[:1], missing, axis=0), frames])


def check_reuse_history_kv(value) -> bool | str:
    """``reuse_history_kv``: ``False`` (exact), ``True`` / ``"block"`` or ``"episode"``."""
    # type first: 0 == False and 1 == True, which must not pass as modes
    if not (isinstance(value, bool | str) and value in REUSE_MODES):
        raise ValueError(
            f"reuse_history_kv: got {value!r}; accepted: False (exact), True or 'block', or 'episode'"
        )
    return value


def check_world_index(index, num_worlds: int) -> int:
    """``index`` as a world index of a backend holding ``num_worlds`` worlds (IndexError otherwise)."""
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < num_worlds:
        raise IndexError(f"world index: got {index!r}; accepted: 0..{num_worlds - 1}")
    return int(index)


def _check_start(image, prompt) -> None:
    if not isinstance(prompt, str):
        raise TypeError(f"prompt: got {type(prompt).__name__}; accepted: str")
    if image is None and not prompt.strip():
        raise ValueError("image/prompt: got neither; accepted: a start image, a text prompt, or both")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class WorldStream:
    """B worlds generated by one :class:`YumeModel`.

    Args:
        model: the generator.
        num_worlds: B.
        resolution: (height, width) or ``"HxW"`` (``"96x160"``); default the preset's.
        steps / shift: sampler settings (default the preset's: 4 steps, shift 7).
        decode: ``"block"``, ``"stream"`` or ``"none"`` (see the module doc).
        fit: how start images are resized: ``"stretch"`` (official) or ``"crop"``.
        speed: caption speed fields: ``"auto"`` (official values), a :class:`SpeedFields`, or ``None``.
        max_history: history latents kept per world (default 1016).
        check_finite: raise :class:`NonFiniteOutputError` instead of returning NaN/Inf frames.
        decoder: the :class:`~yume_env.model.frame_decoder.FrameDecoder` (default: the model's VAE).
        last_frame_only: return only the newest frame of each block (1 frame instead of 29/32).
        reuse_history_kv: approximate long-episode paths (faster on long histories; not the official
            numbers; measured in docs/performance.md). ``False`` (default): exact. ``True`` or
            ``"block"``: history keys/values computed at a block's first denoising step and reused by
            its other steps. ``"episode"``: the coarse tiers' keys/values are also carried from
            block to block, so a block runs only the recent history tokens and those that changed
            tier (block 120 costs ~1.3-1.4x block 2 on the tiny preset instead of ~4.4-5x); a
            snapshot then holds those keys/values too.
    """

    def __init__(
        self,
        model: YumeModel,
        num_worlds: int = 1,
        resolution: tuple[int, int] | None = None,
        steps: int | None = None,
        shift: float | None = None,
        decode: str = "block",
        fit: str = "stretch",
        speed: SpeedFields | str | None = "auto",
        max_history: int | None = None,
        check_finite: bool = True,
        decoder: FrameDecoder | None = None,
        last_frame_only: bool = False,
        reuse_history_kv: bool = False,
    ):
        if isinstance(num_worlds, bool) or not isinstance(num_worlds, int) or num_worlds < 1:
            raise ValueError(f"num_worlds: got {num_worlds!r}; accepted: an integer >= 1")
        if decode not in DECODE_MODES:
            raise ValueError(f"decode: got {decode!r}; accepted: {', '.join(DECODE_MODES)}")
        if fit not in ("stretch", "crop"):
            raise ValueError(f"fit: got {fit!r}; accepted: stretch, crop")
        if not (speed is None or speed == "auto" or isinstance(speed, SpeedFields)):
            raise ValueError(f"speed: got {speed!r}; accepted: 'auto', None or a SpeedFields")
        if shift is not None and (isinstance(shift, bool) or not isinstance(shift, int | float | np.number)):
            raise TypeError(f"shift: got {shift!r} ({type(shift).__name__}); accepted: a finite number > 0")
        self.model = model
        if isinstance(resolution, str):  # "96x160", as on the command line
            resolution = parse_resolution(resolution)
        self.resolution = model.preset.check_resolution(resolution)
        self.latent_hw = model.latent_hw(self.resolution)
        self.sampler = EulerSampler(
            model.preset.steps if steps is None else steps, model.preset.shift if shift is None else shift
        )
        self.decode_mode = decode
        self.fit = fit
        self.speed = speed
        limit = min(model.preset.dit.rope_max_positions - model.block_frames, MAX_TIERED_HISTORY)
        if max_history is None:
            max_history = limit
        if isinstance(max_history, bool) or not isinstance(max_history, int) or not 3 <= max_history <= limit:
            raise ValueError(f"max_history: got {max_history!r}; accepted: an integer in 3..{limit}")
        self.max_history = max_history
        self.check_finite = check_finite
        if decoder is not None and not isinstance(decoder, FrameDecoder):
            raise TypeError(f"decoder: got {type(decoder).__name__}; accepted: a FrameDecoder or None")
        self.decoder = model.vae_decoder if decoder is None else decoder
        self.last_frame_only = bool(last_frame_only)
        self.reuse_history_kv = check_reuse_history_kv(reuse_history_kv)
        self.worlds = [WorldState() for _ in range(num_worlds)]

    # ------------------------------------------------------------------ properties
    @property
    def signature(self) -> WorldSignature:
        """What snapshots of this stream's worlds need to match to be restored here."""
        if getattr(self, "_signature", None) is None:
            params = list(self.model.dit.parameters())
            with torch.no_grad():  # sums of two tensors: cheap, and different for any two trained models
                weights = (
                    tuple(float(p.detach().double().sum()) for p in (params[0], params[-1])) if params else ()
                )
            self._signature = WorldSignature(
                model=self.model.preset.name,
                weights=weights,
                dtype=str(self.model.dtype).removeprefix("torch."),
                resolution=tuple(self.resolution),
                steps=int(self.sampler.steps),
                shift=float(self.sampler.shift),
                decode=self.decode_mode,
                decoder=self.decoder.name,
                reuse_history_kv=self.reuse_history_kv,
                max_history=self.max_history,
            )
        return self._signature

    @property
    def num_worlds(self) -> int:
        return len(self.worlds)

    @property
    def frames_per_block(self) -> int:
        """RGB frames one step returns: 29 (``block``), 32 (``stream``) or 0 (``none``); 1 with
        ``last_frame_only``."""
        if self.last_frame_only and self.decode_mode != "none":
            return 1
        f = self.model.block_frames
        t = self.model.preset.vae.temporal_stride
        return {"block": 1 + t * (f - 1), "stream": t * f, "none": 0}[self.decode_mode]

    def last_frames(self, index: int) -> np.ndarray | None:
        """The newest block's ``[T, H, W, 3]`` uint8 frames of world ``index`` (``None`` before any
        decoded block, or with ``decode="none"`` after a text reset). The world's own array: copy before writing."""
        return self.worlds[self._index(index)].last_frames

    def is_reset(self, index: int) -> bool:
        """Whether world ``index`` was started (``reset`` or ``restore``) since it was built or closed."""
        return self.worlds[self._index(index)].generator is not None

    def block_index(self, index: int) -> int:
        """Blocks world ``index`` generated since its start (0 after an image reset)."""
        return self.worlds[self._index(index)].block_index

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """``(channels, frames, height, width)`` of one block's latents."""
        return (self.model.latent_channels, self.model.block_frames, *self.latent_hw)

    def check_reset(self, image=None, prompt: str = "") -> None:
        """Raise what :meth:`reset` would raise for this ``image``/``prompt``; nothing changes."""
        _check_start(image, prompt)
        if image is not None:
            load_image(image, self.resolution, self.fit)

    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        """``[T, H, W, 3]`` uint8 frames of one block's ``[C, F, h, w]`` latents (a tensor, or a latent
        observation), decoded on their own as ``decode="block"`` does."""
        f = self.model.block_frames
        latents = torch.as_tensor(latents)  # a latent observation (numpy) decodes as well
        lat = latents[:, -f:] if latents.shape[1] >= f else latents
        with torch.no_grad():
            return to_uint8(self.decoder.decode_block(lat[None]))[0]

    def close(self) -> None:
        """Forget every world (the model and decoder stay loaded for others sharing them)."""
        self.worlds = [WorldState() for _ in self.worlds]

    def _index(self, index: int) -> int:
        return check_world_index(index, self.num_worlds)

    # ------------------------------------------------------------------ reset
    def reset(
        self,
        index: int,
        image=None,
        prompt: str = "",
        seed: int | None = None,
    ) -> BlockOutput:
        """Start world ``index`` from ``image`` (any size, see :func:`load_image`) or, without an image,
        from ``prompt`` alone (text-to-video: the first block is generated now).

        ``prompt`` becomes the world's event text, appended to every caption until an action changes it.
        Nothing about the world changes if this raises.
        """
        i = self._index(index)
        _check_start(image, prompt)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
        elif isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed: got {seed!r}; accepted: an integer >= 0 or None")
        gen = torch.Generator().manual_seed(int(seed))
        state = WorldState(event=prompt, generator=gen, seed=int(seed))
        t0 = time.perf_counter()
        if image is not None:
            pixels = load_image(image, self.resolution, self.fit)
            history = self.model.encode_images(pixels[None])[0]
            self._require_finite(history, "start image latents")
            state.history = history
            state.start_frame = to_uint8(pixels[:, None])[0]
            if self.decode_mode == "stream":
                state.decoder = self.decoder.new_stream()
                state.decoder.decode(history[None], last_frames=1)  # prime the decoder's memory
            frames = np.repeat(state.start_frame[None], max(self.frames_per_block, 1), axis=0)
            state.last_frames = frames
            _sync(self.model.device)
            out = BlockOutput(
                frames if self.decode_mode != "none" else None,
                history,
                "",
                {
                    "block_index": 0,
                    "history_latents": state.history_length,
                    "frames": 0 if self.decode_mode == "none" else self.frames_per_block,
                    "timing": BlockTiming(encode_ms=(time.perf_counter() - t0) * 1e3),
                    "device": str(self.model.device),
                },
            )
            self.worlds[i] = state
            return out
        # text-to-video: generate the first block now so reset returns real frames
        outs = self._advance([(i, state, Action(0, 0, ""))])
        self.worlds[i] = outs[0][1]
        return outs[0][0]

    # ------------------------------------------------------------------ step
    def step(self, actions: Sequence[Action | None]) -> list[BlockOutput | None]:
        """Advance every world whose entry in ``actions`` is not ``None`` by one block (one batch).

        Returns one :class:`BlockOutput` per world (``None`` for worlds not stepped). If anything
        fails (bad action, non-finite output), no world changes.
        """
        if len(actions) != self.num_worlds:
            raise ValueError(
                f"actions: got {len(actions)} entries; accepted: one per world ({self.num_worlds})"
            )
        jobs = []
        for i, a in enumerate(actions):
            if a is None:
                continue
            if not isinstance(a, Action):
                raise TypeError(f"actions[{i}]: got {type(a).__name__}; accepted: Action or None")
            if self.worlds[i].generator is None:
                raise RuntimeError(f"world {i}: step before reset; call reset first")
            jobs.append((i, self.worlds[i], a))
        if not jobs:
            return [None] * self.num_worlds
        results: list[BlockOutput | None] = [None] * self.num_worlds
        for (i, _, _), (out, new_state) in zip(jobs, self._advance(jobs)):
            self.worlds[i] = new_state
            results[i] = out
        return results

    def mark(self) -> StreamMark:
        """A cheap handle on every world's current state, for :meth:`rollback`.

        Steps and resets replace a world's state object instead of changing it, so keeping the old
        objects (and their noise generators' positions) is enough to undo them; nothing is copied.
        """
        return StreamMark(
            list(self.worlds),
            [None if w.generator is None else w.generator.get_state() for w in self.worlds],
        )

    def rollback(self, mark: StreamMark) -> None:
        """Put every world back to the moment of :meth:`mark` (e.g. when a caller's reward fails)."""
        if not isinstance(mark, StreamMark) or len(mark.states) != self.num_worlds:
            raise TypeError(f"mark: got {type(mark).__name__}; accepted: a StreamMark of this stream")
        for state, gen_state in zip(mark.states, mark.generator_states):
            if gen_state is not None:
                state.generator.set_state(gen_state)
        self.worlds = list(mark.states)

    def _advance(self, jobs: list[tuple[int, WorldState, Action]]) -> list[tuple[BlockOutput, WorldState]]:
        """Generate one block for each (index, state, action); returns new states, mutates nothing."""
        model, dev = self.model, self.model.device
        c, (h, w), f = model.latent_channels, self.latent_hw, model.block_frames

        # 1. captions and text contexts (cached by exact caption)
        events, captions = [], []
        for _, st, a in jobs:
            event = st.event if a.event == "" else ("" if not a.event.strip() else a.event)
            events.append(event)
            captions.append(render_caption(a.move, a.look, event, self.speed))
        t0 = time.perf_counter()
        contexts = model.encode_text(captions)
        _sync(dev)
        t1 = time.perf_counter()

        # 2. history within budget, fresh noise from each world's own generator
        histories, dropped, gen_states, caches = [], [], [], []
        for _, st, _ in jobs:
            hist, cache = st.history, st.history_cache
            drop = 0
            if hist is not None and hist.shape[1] > self.max_history:
                drop = hist.shape[1] - self.max_history
                hist = torch.cat([hist[:, :1], hist[:, 1 + drop :]], dim=1)
                cache = None if cache is None else cache.dropped(drop)
            histories.append(hist)
            caches.append(cache)
            dropped.append(drop)
            gen_states.append(st.generator.get_state())
        noise = torch.stack([torch.randn(c, f, h, w, generator=st.generator) for _, st, _ in jobs])
        try:
            # 3. denoise all worlds in one batch
            latents = model.sample_block(  # replaces the caches by those for the next block
                histories,
                contexts,
                noise,
                self.sampler,
                reuse_history_kv=self.reuse_history_kv,
                history_cache=caches,
            )
            _sync(dev)
            t2 = time.perf_counter()
            bad = [jobs[k][0] for k in range(len(jobs)) if not torch.isfinite(latents[k]).all()]
            if bad and self.check_finite:
                raise NonFiniteOutputError(
                    f"world(s) {bad}: the model produced NaN/Inf latents; the world(s) were left as they were"
                )
            # 4. decode
            frames_np: list[np.ndarray | None] = [None] * len(jobs)
            decoders = [None] * len(jobs)
            last = 1 if self.last_frame_only else None
            if self.decode_mode == "block":
                pix = self.decoder.decode_block(latents, last_frames=last)
                frames_np = list(to_uint8(pix))
                finite = [bool(torch.isfinite(pix[k]).all()) for k in range(len(jobs))]
            elif self.decode_mode == "stream":
                decoders = [
                    st.decoder.clone() if st.decoder is not None else self.decoder.new_stream()
                    for _, st, _ in jobs
                ]
                pixes = self.decoder.decode_streams(decoders, latents, last_frames=last)
                frames_np = [to_uint8(pix)[0] for pix in pixes]
                if last is None:  # a text-started world's first latent gives 1 frame, not 4
                    frames_np = [_full_block(f, self.frames_per_block) for f in frames_np]
                finite = [bool(torch.isfinite(pix).all()) for pix in pixes]
            else:
                finite = [True] * len(jobs)
            bad = [jobs[k][0] for k, ok in enumerate(finite) if not ok]
            if bad and self.check_finite:
                raise NonFiniteOutputError(
                    f"world(s) {bad}: the VAE produced NaN/Inf frames; the world(s) were left as they were"
                )
            _sync(dev)
            t3 = time.perf_counter()
        except BaseException:
            for (_, st, _), gs in zip(jobs, gen_states):
                st.generator.set_state(gs)
            raise

        # 5. new states (old ones untouched until the caller commits)
        outs = []
        for k, (_, st, _) in enumerate(jobs):
            new = copy.copy(st)
            block = latents[k].float()
            new.history = block if histories[k] is None else torch.cat([histories[k], block], dim=1)
            new.history_cache = caches[k]
            new.event = events[k]
            new.block_index = st.block_index + 1
            new.dropped_latents = st.dropped_latents + dropped[k]
            if self.decode_mode == "stream":
                new.decoder = decoders[k]
            if frames_np[k] is not None:
                new.last_frames = frames_np[k]
            info = {
                "block_index": new.block_index,
                "caption": captions[k],
                "event": events[k],
                "history_latents": 0 if histories[k] is None else int(histories[k].shape[1]),
                "history_dropped": new.dropped_latents,
                "frames": 0 if frames_np[k] is None else int(frames_np[k].shape[0]),
                "timing": BlockTiming((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3),
                "batch_size": len(jobs),
                "device": str(dev),
                "attention_backend": getattr(model.dit, "last_attention_backend", None),
            }
            outs.append((BlockOutput(frames_np[k], block, captions[k], info), new))
        return outs

    def _require_finite(self, x: torch.Tensor, what: str) -> None:
        if self.check_finite and not torch.isfinite(x).all():
            raise NonFiniteOutputError(f"{what}: the model produced NaN/Inf values")

    # ------------------------------------------------------------------ branching
    def snapshot(self, index: int) -> WorldSnapshot:
        """A frozen copy of world ``index`` (history, event, RNG, decoder cache, counters)."""
        st = self.worlds[self._index(index)]
        if st.generator is None:
            raise RuntimeError(f"world {index}: snapshot before reset; call reset first")
        copied = copy.copy(st)
        copied.history = None if st.history is None else st.history.clone()
        copied.decoder = None if st.decoder is None else st.decoder.clone()
        copied.generator = None
        copied.last_frames = None if st.last_frames is None else st.last_frames.copy()
        # the exact path's cache is recomputed bit for bit, so snapshots leave it out; the carried
        # keys/values of "episode" are state (they shape the future) and are shared, not copied (never
        # changed in place)
        cache = st.history_cache
        copied.history_cache = None if cache is None or cache.kv is None else cache.without_tokens()
        return WorldSnapshot(copied, st.generator.get_state(), self.signature)

    def restore(self, index: int, snapshot: WorldSnapshot) -> None:
        """Put world ``index`` back to ``snapshot`` (the snapshot stays reusable)."""
        i = self._index(index)
        if not isinstance(snapshot, WorldSnapshot):
            raise TypeError(f"snapshot: got {type(snapshot).__name__}; accepted: WorldSnapshot")
        if snapshot.signature is None or not isinstance(snapshot.signature, WorldSignature):
            raise ValueError("snapshot: it carries no world signature; accepted: a snapshot() of a world")
        differs = self.signature.differences(snapshot.signature)
        if differs:
            raise ValueError(
                "snapshot: taken from a different kind of world (" + "; ".join(differs) + "); accepted: "
                "snapshots of worlds with the same model, weights, dtype, resolution, sampler steps/shift, "
                "decode mode, decoder, history key/value reuse and max_history"
            )
        st = copy.copy(snapshot.state)
        st.history = None if st.history is None else st.history.clone()
        st.decoder = None if st.decoder is None else st.decoder.clone()
        st.last_frames = None if st.last_frames is None else st.last_frames.copy()
        gen = torch.Generator()
        gen.set_state(snapshot.rng_state.clone())
        st.generator = gen
        self.worlds[i] = st

    def fork(self, source: int, target: int) -> None:
        """Make world ``target`` an exact copy of world ``source`` (same future for the same actions)."""
        self.restore(target, self.snapshot(source))
