"""``YumeWorld-v0``: one Yume-1.5 generated world as a Gymnasium environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from yume_env.envs.model_cache import get_decoder, get_runtime_model
from yume_env.envs.spaces import action_space, frames_space, last_frame_space
from yume_env.envs.validation import (
    call_reward,
    check_episode_args,
    check_event,
    check_options,
    parse_action,
)
from yume_env.world.captions import SpeedFields
from yume_env.world.stream import WorldStream

OBS_MODES = ("frames", "last_frame", "latent")
SAMPLE_IMAGES = Path(__file__).resolve().parent.parent / "assets" / "samples"
DEFAULT_IMAGE = SAMPLE_IMAGES / "street.png"

RewardFn = Callable[[np.ndarray | torch.Tensor, dict, dict], float]


def observation_space_for(stream: WorldStream, obs_mode: str) -> spaces.Space:
    h, w = stream.resolution
    if obs_mode == "frames":
        return frames_space(stream.frames_per_block, h, w)
    if obs_mode == "last_frame":
        return last_frame_space(h, w)
    c, (lh, lw) = stream.model.latent_channels, stream.latent_hw
    return spaces.Box(-np.inf, np.inf, shape=(c, stream.model.block_frames, lh, lw), dtype=np.float32)


def observation_from(out, obs_mode: str, stream: WorldStream):
    """The observation of one world's :class:`BlockOutput` in ``obs_mode``."""
    # copies: the world keeps its newest frames, and a caller changing an observation must not alter them
    if obs_mode == "frames":
        return out.frames.copy()
    if obs_mode == "last_frame":
        return out.frames[-1].copy()
    lat = out.latents
    f = stream.model.block_frames
    if lat.shape[1] < f:  # after an image reset: the start latents, repeated to a block's length
        lat = torch.cat([lat, lat[:, -1:].expand(-1, f - lat.shape[1], -1, -1)], dim=1)
    return lat[:, -f:].detach().cpu().numpy().astype(np.float32)


def check_obs_mode(obs_mode) -> str:
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode: got {obs_mode!r}; accepted: {', '.join(OBS_MODES)}")
    return obs_mode


class YumeWorldEnv(gym.Env):
    """A world generated block by block by Yume-1.5, steered by keyboard moves, camera moves and text events.

    Each ``step`` denoises the next block of video (8 latent frames, 4 Euler steps by default) on the
    model's device and returns its frames. The world is conditioned on everything it generated so
    far (Yume's TSCM-compressed history), on the start image, and on a caption rendered from the
    action in the official Yume-1.5 style.

    ## Action space

    ``Dict(move=Discrete(9), look=Discrete(9), event=Text(0..300))``

    | index | move (``MOVES``) | look (``LOOKS``) |
    |---|---|---|
    | 0 | None (stand still) | · (camera still) |
    | 1 | W forward | → pan right |
    | 2 | A left | ← pan left |
    | 3 | S back | ↑ tilt up |
    | 4 | D right | ↓ tilt down |
    | 5 | W+A | ↑→ |
    | 6 | W+D | ↑← |
    | 7 | S+A | ↓→ |
    | 8 | S+D | ↓← |

    ``event`` is free text (printable ASCII, at most 300 characters) describing what happens in the
    world, e.g. ``"A red balloon floats up."``. An empty string keeps the current event; a string of
    only spaces clears it. The caption of a block is
    ``First-person perspective. <move sentence> <look sentence> <speed sentence><event>``, byte-exact
    as the official model was trained (see :func:`yume_env.world.captions.render_caption`).

    ## Observation space

    - ``obs_mode="frames"`` (default): ``Box(0, 255, (T, H, W, 3), uint8)``, the new block's frames.
      ``T`` is 29 with ``decode="block"`` (the official per-block decode) and 32 with ``"stream"``.
      After ``reset`` from an image, the frames are ``T`` copies of the resized start image.
    - ``"last_frame"``: ``Box(0, 255, (H, W, 3), uint8)``, the newest frame only.
    - ``"latent"``: ``Box(-inf, inf, (48, 8, h, w), float32)``, the block's clean latents; nothing is
      decoded, which is much faster.

    ## Rewards

    0 by default: a generated world has no built-in goal. Pass ``reward_fn(obs, action, info) -> float``
    to score blocks (see :mod:`yume_env.rewards`).

    ## Episode end

    Never terminates. Truncates after ``max_episode_steps`` blocks when one is set (``gym.make`` applies
    it through Gymnasium's ``TimeLimit``). Long episodes never crash: the history is kept within
    ``max_history`` latents by dropping the oldest ones after the start image (identical to the
    official model until then). Stepping after truncation raises ``gymnasium.error.ResetNeeded`` when
    the limit was given to the constructor, or when the env is wrapped in
    :class:`~yume_env.envs.guards.EpisodeGuard` (outside ``TimeLimit``).

    ## Arguments

    - ``image``: start image: a path, ``PIL.Image``, ``HxWx3`` uint8 array or tensor (any size; converted
      to RGB and resized). Default: the bundled sample street when neither image nor prompt is given.
    - ``prompt``: initial event text; without an image the world starts from text alone
      (text-to-video: ``reset`` generates the first block).
    - ``model``: preset name (``"tiny"``, default, CPU-sized; ``"yume-1.5-5b"`` needs ``checkpoint``)
      or a loaded :class:`~yume_env.model.pipeline.YumeModel` to share between environments.
    - ``checkpoint``: folder in the official ``Yume-5B-720P`` layout.
    - ``device`` / ``dtype``: e.g. ``"cuda"``, ``"bfloat16"`` (default bf16 on CUDA, float32 on CPU).
    - ``resolution``: ``(H, W)``; the preset's default (704x1280 for 5B, 96x160 for tiny).
    - ``steps`` / ``shift``: sampler (default 4 / 7.0, the distilled model; 50 / 5.0 for quality).
    - ``obs_mode``: see above. ``decode``: ``"block"`` (default, faithful) or ``"stream"`` (seamless,
      32 frames). ``fit``: ``"stretch"`` (official) or ``"crop"`` for the start image.
    - ``decoder``: what turns latents into frames: ``"vae"`` (default, the official Wan2.2 VAE),
      ``"taew2_2"`` or ``"taew2_2_super"`` (the TAEHV tiny decoders: ~150x cheaper, lower quality;
      only meaningful with the 5B model) with ``decoder_path`` = the downloaded ``.safetensors`` or
      ``.pth`` file. ``decode_dtype``: e.g. ``"bfloat16"`` to decode in reduced precision (encoding
      stays float32); default the decoder's own (float32). With ``obs_mode="last_frame"`` only the
      newest frame is decoded where the decoder allows it (the TAEHV does; the causal VAE cannot).
    - ``speed``: caption speed fields: ``"auto"`` (official values), a ``SpeedFields`` or ``None``.
    - ``max_episode_steps``, ``max_history``, ``reward_fn``, ``render_mode``: ``"rgb_array"`` (``render()``
      returns the newest frame) or ``"rgb_array_list"`` (``render()`` returns every frame produced since
      the last ``render``/``reset`` as a list: the start frame once after an image reset, then each
      block's frames; in ``obs_mode="latent"`` the blocks are decoded for it, per block).
    - ``threads``: CPU threads for torch (default ``None``: ``min(usable cores, 4)``, one core left
      free on 2-4 core machines; see :mod:`yume_env.model.threads`). torch's setting is
      process-global: the value of the environment created last applies to every model in the process.
    - ``compile``: ``torch.compile`` the DiT blocks (default off; worth it on a GPU, the first blocks
      are slow while it compiles). It applies to the model, which environments share.
    - ``reuse_history_kv``: approximate long-episode paths, off by default (``False``: exact).
      ``True`` or ``"block"``: each block computes the history keys/values once at its first
      denoising step and reuses them. ``"episode"``: the keys/values of the coarse history tiers are
      also carried from block to block, so a block at history 957 costs ~1.3-1.4x a block at history 13
      on the tiny preset (exact: ~5x); snapshots then hold those keys/values. See
      ``docs/performance.md`` for the speed of each and its PSNR against the exact path.

    ## Info

    ``caption``, ``event``, ``block_index``, ``history_latents`` (history length the block was
    conditioned on), ``history_dropped``, ``frames``, ``device``, ``attention_backend`` (the
    self-attention kernel that ran: ``flash-attn``, ``sdpa-flash``, ``sdpa-cudnn``, ``sdpa-efficient``
    or ``sdpa-math``), ``seed`` (reset), and ``timing``: a
    :class:`~yume_env.world.stream.BlockTiming` with ``text_ms``, ``denoise_ms``, ``decode_ms``
    (``encode_ms`` at reset). Timings compare equal whatever their values, so identical steps have
    equal infos.

    ## Version history

    - v0: first release (Yume-1.5 5B architecture, TSCM history, 1.5-style captions).
    """

    metadata = {"render_modes": ["rgb_array", "rgb_array_list"], "render_fps": 16}

    def __init__(
        self,
        image=None,
        prompt: str = "",
        model="tiny",
        checkpoint: str | Path | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        resolution: tuple[int, int] | None = None,
        steps: int | None = None,
        shift: float | None = None,
        obs_mode: str = "frames",
        decode: str = "block",
        fit: str = "stretch",
        speed: SpeedFields | str | None = "auto",
        max_episode_steps: int | None = None,
        max_history: int | None = None,
        reward_fn: RewardFn | None = None,
        render_mode: str | None = None,
        decoder: str = "vae",
        decoder_path: str | Path | None = None,
        decode_dtype: str | torch.dtype | None = None,
        threads: int | None = None,
        compile: bool = False,
        reuse_history_kv: bool | str = False,
    ):
        self.obs_mode = check_obs_mode(obs_mode)
        check_episode_args(render_mode, max_episode_steps, reward_fn, tuple(self.metadata["render_modes"]))
        self.prompt = check_event(prompt, "prompt")
        if image is None and not prompt.strip():
            image = DEFAULT_IMAGE
        self.image = image
        self.render_mode = render_mode
        self.reward_fn = reward_fn
        self._max_episode_steps = max_episode_steps
        self._model, self.threads = get_runtime_model(model, checkpoint, device, dtype, threads, compile)
        self.stream = WorldStream(
            self._model,
            num_worlds=1,
            resolution=resolution,
            steps=steps,
            shift=shift,
            decode="none" if self.obs_mode == "latent" else decode,
            fit=fit,
            speed=speed,
            max_history=max_history,
            decoder=get_decoder(self._model, decoder, decoder_path, decode_dtype),
            # every frame is decoded when render() must return them all
            last_frame_only=self.obs_mode == "last_frame" and render_mode != "rgb_array_list",
            reuse_history_kv=reuse_history_kv,
        )
        if image is not None:  # fail at construction, not at reset, for a bad image
            from yume_env.world.images import load_image

            load_image(image, self.stream.resolution, fit)
        self.observation_space = observation_space_for(self.stream, self.obs_mode)
        self.action_space = action_space()
        self._steps = 0
        self._ended = False
        self._last_frame: np.ndarray | None = None
        self._frame_list: list[np.ndarray] = []  # frames since the last render(), for "rgb_array_list"

    # ------------------------------------------------------------------ Gymnasium API
    @property
    def max_episode_steps(self) -> int | None:
        if self._max_episode_steps is not None:
            return self._max_episode_steps
        return None if self.spec is None else self.spec.max_episode_steps

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode. ``options`` may override ``image`` and ``prompt`` for this episode."""
        options = check_options(options, ("image", "prompt"))
        unknown = set(options) - {"image", "prompt"}
        if unknown:
            raise ValueError(f"options: got unknown keys {sorted(unknown)}; accepted: 'image', 'prompt'")
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
        ):
            raise ValueError(f"seed: got {seed!r}; accepted: an integer >= 0 or None")
        image = options.get("image", self.image)
        prompt = check_event(options.get("prompt", self.prompt), "options['prompt']")
        saved = (self._np_random, self._np_random_seed)
        saved_state = None if self._np_random is None else self._np_random.bit_generator.state
        super().reset(seed=seed)
        world_seed = int(self.np_random.integers(0, 2**63 - 1))
        try:
            out = self.stream.reset(0, image=image, prompt=prompt, seed=world_seed)
        except BaseException:  # a failed reset leaves the episode (and its RNG) as it was
            self._np_random, self._np_random_seed = saved
            if saved_state is not None:
                self._np_random.bit_generator.state = saved_state
            raise
        self._steps = 0
        self._ended = False
        self._frame_list = []
        self._remember(out, start=image is not None)
        info = {
            **out.info,
            "caption": out.caption,
            "block_index": self.stream.worlds[0].block_index,
            "seed": world_seed,
        }
        return observation_from(out, self.obs_mode, self.stream), info

    def step(self, action):
        if not self.stream.is_reset(0):
            raise gym.error.ResetNeeded("step before reset: call env.reset() first")
        if self._ended:
            raise gym.error.ResetNeeded(
                "step after the episode ended (truncated): call env.reset() to start a new one"
            )
        act = parse_action(action)
        mark = self.stream.mark()
        out = self.stream.step([act])[0]
        obs = observation_from(out, self.obs_mode, self.stream)
        info = dict(out.info)
        try:  # the step is one transaction: a failing reward_fn leaves the world as it was
            reward = 0.0 if self.reward_fn is None else call_reward(self.reward_fn, obs, action, info)
        except BaseException:
            self.stream.rollback(mark)
            raise
        self._steps += 1
        self._remember(out)
        limit = self.max_episode_steps
        truncated = limit is not None and self._steps >= limit
        self._ended = truncated
        return obs, reward, False, truncated, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without render_mode; pass render_mode='rgb_array' to YumeWorld-v0"
            )
            return None
        if self.render_mode == "rgb_array_list":
            frames, self._frame_list = self._frame_list, []
            return frames
        return self._last_frame

    def _remember(self, out, start: bool = False) -> None:
        frames = self.stream.worlds[0].last_frames
        if frames is None and out is not None:
            frames = out.frames
        if (
            self.obs_mode == "latent"
            and out is not None
            and not start
            and self.render_mode == "rgb_array_list"
        ):
            frames = self._decode_for_render(out.latents)  # nothing decoded this block: decode it now
        # a copy: the observation handed to the caller must not alias what render() returns
        self._last_frame = None if frames is None else frames[-1].copy()
        if self.render_mode == "rgb_array_list" and frames is not None:
            # an image reset repeats the start image T times: one copy is the start frame
            # after restore() (out is None) the restored moment is shown once, like a start frame
            self._frame_list.extend(f.copy() for f in (frames[-1:] if start or out is None else frames))

    def _decode_for_render(self, latents: torch.Tensor) -> np.ndarray:
        """``obs_mode="latent"`` with ``render_mode="rgb_array_list"``: decode the block as ``decode="block"`` would."""
        from yume_env.world.images import to_uint8

        f = self.stream.model.block_frames
        lat = latents[:, -f:] if latents.shape[1] >= f else latents
        with torch.no_grad():
            return to_uint8(self.stream.decoder.decode_block(lat[None]))[0]

    # ------------------------------------------------------------------ branching
    def snapshot(self):
        """Full state of the world and episode (history, event, RNG, counters), for :meth:`restore`."""
        return (self.stream.snapshot(0), self._steps, self._ended, self.np_random.bit_generator.state)

    def restore(self, snapshot) -> None:
        """Return to a :meth:`snapshot`; the same actions then give the same frames."""
        if not (isinstance(snapshot, tuple) and len(snapshot) == 4):
            raise TypeError(
                f"snapshot: got {type(snapshot).__name__}; accepted: what this env's snapshot() returned"
            )
        world, steps, ended, rng = snapshot
        self.stream.restore(0, world)  # refuses snapshots of another kind of world (ValueError)
        self._steps, self._ended = steps, ended
        self.np_random.bit_generator.state = rng
        self._remember(None)  # render() shows the restored moment

    @property
    def model(self):
        return self._model
