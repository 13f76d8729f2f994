"""``YumeWorld-v0``: one Yume-1.5 generated world as a Gymnasium environment.

The env is :class:`~yume_env.envs.world_env.WorldEnv` on a :class:`~yume_env.world.stream.WorldStream`
of one world, built from a :class:`~yume_env.world.spec.WorldSpec` of the world keywords.
"""

from __future__ import annotations

from yume_env.envs.episodes import (
    EPISODE_ARGS,
    OBS_MODES,
    RewardFn,
    check_obs_mode,
    episode_args,
    observation_from,
    observation_space_for,
)
from yume_env.envs.world_env import WorldEnv
from yume_env.paths import SAMPLES
from yume_env.world.protocol import WorldBackendSpec
from yume_env.world.spec import WorldSpec

__all__ = [
    "DEFAULT_IMAGE",
    "OBS_MODES",
    "RewardFn",
    "YumeWorldEnv",
    "check_obs_mode",
    "observation_from",
    "observation_space_for",
    "split_world_kwargs",
    "with_default_images",
    "world_spec_for",
]

SAMPLE_IMAGES = SAMPLES
DEFAULT_IMAGE = SAMPLE_IMAGES / "street.png"


def split_world_kwargs(
    kwargs: dict, env_names: tuple[str, ...], spec_type: type[WorldBackendSpec] = WorldSpec
) -> tuple[dict, WorldBackendSpec]:
    """An env's keywords as ``(its own, the spec of the rest)`` (a ``spec_type``: ``WorldSpec`` by
    default); an unknown name raises ``TypeError`` listing every accepted one. The spec is checked
    before anything is built."""
    unknown = sorted(set(kwargs) - set(env_names) - set(spec_type.names()))
    if unknown:
        raise TypeError(
            f"got unexpected argument(s) {', '.join(map(repr, unknown))}; accepted: "
            + ", ".join((*env_names, *spec_type.names()))
        )
    env = {k: v for k, v in kwargs.items() if k in env_names}
    return env, spec_type.from_kwargs(**{k: v for k, v in kwargs.items() if k not in env_names})


def world_spec_for(spec: WorldSpec, obs_mode: str, render_mode: str | None) -> WorldSpec:
    """``spec`` as ``YumeWorld-v0`` builds it: nothing is decoded for latent observations, and only
    the newest frame for ``last_frame`` ones (unless every frame is rendered)."""
    if obs_mode == "latent":
        return spec.replace(decode="none")
    if obs_mode == "last_frame" and render_mode != "rgb_array_list":
        return spec.replace(last_frame_only=True)
    return spec


def with_default_images(images: list, prompts: list[str]) -> list:
    """Each world's start image: the bundled street where a world has neither image nor prompt."""
    return [DEFAULT_IMAGE if img is None and not p.strip() else img for img, p in zip(images, prompts)]


class YumeWorldEnv(WorldEnv):
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
    - ``obs_mode``: see above. ``max_episode_steps``, ``reward_fn``, ``render_mode``: ``"rgb_array"``
      (``render()`` returns the newest frame) or ``"rgb_array_list"`` (``render()`` returns every frame
      produced since the last ``render``/``reset`` as a list: the start frame once after an image
      reset, then each block's frames; in ``obs_mode="latent"`` the blocks are decoded for it).
    - every other keyword builds the world: ``model``, ``checkpoint``, ``device``, ``dtype``,
      ``resolution``, ``steps``, ``shift``, ``decode``, ``fit``, ``speed``, ``max_history``,
      ``decoder``, ``decoder_path``, ``decode_dtype``, ``threads``, ``compile``,
      ``reuse_history_kv``: documented once, in :mod:`yume_env.world.spec` (:class:`WorldSpec`).
      An unknown keyword raises ``TypeError`` listing the accepted ones. With
      ``obs_mode="last_frame"`` only the newest frame is decoded where the decoder allows it.

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

    def __init__(self, image=None, prompt: str = "", **kwargs):
        episode, spec = split_world_kwargs(kwargs, EPISODE_ARGS)
        args = episode_args(
            1, tuple(self.metadata["render_modes"]), image=image, prompt=prompt, **episode, single=True
        )
        self.world_spec = world_spec_for(spec, args.obs_mode, args.render_mode)
        self._model, self.threads = self.world_spec.runtime_model()
        super().__init__(
            self.world_spec.build(1, self._model),
            image=with_default_images(args.images, args.prompts)[0],
            prompt=prompt,
            **episode,
        )

    @property
    def model(self):
        """The loaded generator (shared with every env built with the same model arguments)."""
        return self._model
