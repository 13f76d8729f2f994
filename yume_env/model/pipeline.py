"""The generator as one object: DiT + VAE + text encoder of a preset on one device.

:class:`YumeModel` offers the building blocks a world needs (encode images to history latents,
encode captions, denoise one block for B worlds, decode latents to frames) and knows nothing about
worlds, actions or Gymnasium. Build one with :func:`build_model` (random or shipped weights) or
:func:`load_checkpoint` (an official-layout folder), and write one with :func:`save_checkpoint`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from yume_env.model.checkpoint import (
    DIT_CONFIG,
    DIT_INDEX,
    DIT_INT_FIELDS,
    DIT_WEIGHTS,
    EXTRA_CONFIG,
    LAYOUT,
    T5_WEIGHTS,
    TEXT_INT_FIELDS,
    TOKENIZER_DIR,
    VAE_WEIGHTS,
    CheckpointError,
    check_config_sizes,
    check_dit_budget,
    materialize,
    open_weights,
    read_json_config,
    save_pth,
    save_safetensors,
)
from yume_env.model.dit import DiTConfig, YumeDiT
from yume_env.model.frame_decoder import DECODERS, FrameDecoder, TAEHVFrameDecoder, VAEFrameDecoder
from yume_env.model.history_cache import HistoryCache
from yume_env.model.presets import TINY_FAMILY, YUME_5B, ModelPreset, get_preset, with_configs
from yume_env.model.sampler import EulerSampler
from yume_env.model.taehv import load_taehv
from yume_env.model.text_encoder import TextEncoder, TextEncoderConfig, UMT5Encoder, load_tokenizer
from yume_env.model.vae import VAEConfig, WanVAE
from yume_env.paths import ASSETS, TINY_CHECKPOINT, TINY_TOKENIZER  # noqa: F401  (public names, kept here)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` checked to exist here; ``None`` picks CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: got {device!r}; accepted: 'cpu', 'cuda', 'cuda:N'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: got {device!r} but no CUDA device is available here; accepted: 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device: got {device!r}; this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type != "cpu":
        raise ValueError(f"device: got {device!r}; accepted: 'cpu', 'cuda', 'cuda:N'")
    elif dev.index not in (None, 0):  # torch accepts "cpu:3" but there is one CPU device
        raise ValueError(f"device: got {device!r}; accepted: 'cpu' (or 'cpu:0'), 'cuda', 'cuda:N'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype`` as a torch dtype; ``None`` = bfloat16 on CUDA (as the official pipeline), float32 on CPU."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype: got {dtype!r}; accepted: float32, bfloat16, float16")


class YumeModel:
    """DiT, VAE and text encoder of one preset, ready to generate.

    Attributes:
        preset: the :class:`ModelPreset` (resolutions, sampler defaults, fps).
        dit / vae: the networks. text: the :class:`TextEncoder` (tokenizer + umT5 + caption cache).
        device / dtype: where and in which precision the DiT runs (the VAE runs in float32 unless
            ``vae_dtype`` says otherwise, as the official pipeline does).
    """

    def __init__(
        self, preset: ModelPreset, dit: YumeDiT, vae: WanVAE, text: TextEncoder, device: torch.device
    ):
        self.preset = preset
        self.dit = dit
        self.vae = vae
        self.text = text
        self.device = device
        self._vae_decoder: VAEFrameDecoder | None = None

    @property
    def dtype(self) -> torch.dtype:
        return self.dit.dtype

    def latent_hw(self, resolution: tuple[int, int]) -> tuple[int, int]:
        s = self.preset.vae.spatial_stride
        return resolution[0] // s, resolution[1] // s

    @property
    def latent_channels(self) -> int:
        return self.preset.dit.in_dim

    @property
    def block_frames(self) -> int:
        return self.preset.dit.block_frames

    def parameter_count(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return {"dit": count(self.dit), "vae": count(self.vae), "text": count(self.text.model)}

    # ------------------------------------------------------------------ building blocks
    @torch.inference_mode()
    def encode_text(self, captions: Sequence[str]) -> list[torch.Tensor]:
        """umT5 contexts ``[L_i, text_dim]`` (cached by exact caption)."""
        return self.text.encode(list(captions))

    @torch.inference_mode()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """History latents of still images ``[B, 3, H, W]`` in [-1, 1]: a static clip of
        ``preset.image_frames`` frames encoded by the VAE (17 frames -> 5 latents, as ``sample_5b.py``)."""
        clip = (
            images[:, :, None]
            .expand(-1, -1, self.preset.image_frames, -1, -1)
            .to(self.device, self.vae.dtype)
        )
        return torch.cat([self.vae.encode(clip[i : i + 1]).float() for i in range(clip.shape[0])])

    @torch.inference_mode()
    def sample_block(
        self,
        history: Sequence[torch.Tensor | None],
        contexts: Sequence[torch.Tensor],
        noise: torch.Tensor,
        sampler: EulerSampler,
        on_step: Callable | None = None,
        reuse_history_kv: bool | str | None = None,
        history_cache: list[HistoryCache | None] | None = None,
    ) -> torch.Tensor:
        """Denoise one block for B worlds: ``noise [B, C, 8, h, w]`` -> clean block latents (float32).

        ``reuse_history_kv``: the approximate long-episode paths (see ``YumeDiT.reuse_history_kv``).
        ``history_cache``: a list with one entry per world, the cache each world's previous block
        left (or ``None``); its entries are replaced by the caches for the worlds' next block (see
        :meth:`sample_block_cached`, which returns them instead).
        """
        latents, caches = self.sample_block_cached(
            history, contexts, noise, sampler, history_cache, on_step, reuse_history_kv
        )
        if history_cache is not None:
            history_cache[:] = caches
        return latents

    @torch.inference_mode()
    def sample_block_cached(
        self,
        history: Sequence[torch.Tensor | None],
        contexts: Sequence[torch.Tensor],
        noise: torch.Tensor,
        sampler: EulerSampler,
        history_cache: Sequence[HistoryCache | None] | None = None,
        on_step: Callable | None = None,
        reuse_history_kv: bool | str | None = None,
    ) -> tuple[torch.Tensor, list[HistoryCache | None]]:
        """:meth:`sample_block` with per-world history caches: takes the caches the worlds' previous
        blocks left (or ``None``) and returns the latents and the caches for their next block (see
        :class:`~yume_env.model.history_cache.HistoryCache`; the exact path's latents are the same
        bits with or without them)."""
        prepared = self.dit.prepare(
            history,
            contexts,
            tuple(noise.shape[-2:]),
            reuse_history_kv=reuse_history_kv,
            history_cache=history_cache,
        )
        latents = sampler.sample(
            lambda x, t: self.dit.denoise(prepared, x, t), noise.to(self.device), on_step
        )
        return latents, self.dit.history_caches(prepared)

    @property
    def vae_decoder(self) -> FrameDecoder:
        """The official VAE behind the :class:`~yume_env.model.frame_decoder.FrameDecoder` interface."""
        if self._vae_decoder is None or self._vae_decoder.vae is not self.vae:
            self._vae_decoder = VAEFrameDecoder(self.vae)
        return self._vae_decoder

    def frame_decoder(
        self,
        name: str = "vae",
        path: str | Path | None = None,
        dtype: str | torch.dtype | None = None,
        batch_worlds: bool = False,
    ) -> FrameDecoder:
        """A decoder of this model's latents into frames (see :mod:`yume_env.model.frame_decoder`).

        Args:
            name: ``"vae"`` (the official VAE), ``"taew2_2"`` or ``"taew2_2_super"`` (TAEHV).
            path: the TAEHV weight file (``.safetensors`` or ``.pth``); required for the TAEHV
                decoders, refused for ``"vae"``.
            dtype: decode precision, e.g. ``"bfloat16"``. ``None``: the VAE's own dtype (float32 by
                default), float32 for the TAEHV. Encoding is not affected.
            batch_worlds: TAEHV only: decode all worlds' streams in one batched call (faster on a
                GPU; a world's frames then depend on its neighbours within float rounding). The VAE
                always decodes world by world (it is compute-bound at 5B sizes, and batching changes
                its float32 results: 2e-6 on a CPU).

        The TAEHV decoders were trained on the Wan2.2-5B latent space: on another preset (the tiny
        one has a VAE of its own) they run, with a warning, but their frames show nothing useful.
        """
        if name not in DECODERS:
            raise ValueError(f"decoder: got {name!r}; accepted: {', '.join(DECODERS)}")
        dt = None if dtype is None else resolve_dtype(dtype, self.device)
        if name == "vae":
            if path is not None:
                raise ValueError(
                    f"decoder_path: got {str(path)!r} for decoder='vae'; the VAE comes with the "
                    "checkpoint, decoder_path is for decoder='taew2_2' or 'taew2_2_super'"
                )
            return self.vae_decoder if dt in (None, self.vae.dtype) else VAEFrameDecoder(self.vae, dt)
        if path is None:
            raise ValueError(
                f"decoder_path: decoder={name!r} needs its weight file, e.g. "
                f"decoder_path='{name}.safetensors' (or .pth) from the TAEHV project"
            )
        tae = load_taehv(path, variant=name, device=self.device, dtype=dt or torch.float32)
        cfg, vae_cfg = tae.config, self.preset.vae
        if (cfg.latent_channels, cfg.spatial_scale, cfg.time_upscale) != (
            self.latent_channels,
            vae_cfg.spatial_stride,
            vae_cfg.temporal_stride,
        ):
            raise ValueError(
                f"decoder_path: {path} decodes {cfg.latent_channels}-channel latents at "
                f"{cfg.spatial_scale}x space / {cfg.time_upscale}x time; the {self.preset.name} preset "
                f"has {self.latent_channels} channels at {vae_cfg.spatial_stride}x / {vae_cfg.temporal_stride}x"
            )
        if self.preset.name != YUME_5B.name:
            warnings.warn(
                f"decoder={name!r} was trained on the Wan2.2-5B latent space; the {self.preset.name} "
                "preset has a VAE of its own, so these frames will not look like its VAE's",
                UserWarning,
                stacklevel=2,
            )
        return TAEHVFrameDecoder(tae, name, batch_worlds=batch_worlds)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Frames ``[B, 3, 1 + 4(f-1), H, W]`` in [-1, 1] of latents ``[B, C, f, h, w]`` decoded on their own.

        Worlds are decoded one by one: conv kernels change their summation order with the batch size,
        and a world's frames must not depend on its batch neighbours (the VAE is memory-bound anyway).
        """
        lat = latents.to(self.device, self.vae.dtype)
        return torch.cat([self.vae.decode(lat[i : i + 1]).float() for i in range(lat.shape[0])])


# ---------------------------------------------------------------------------------------- building
def _tiny_tokenizer():
    if not (TINY_TOKENIZER / "tokenizer.json").is_file():
        raise FileNotFoundError(f"the tiny tokenizer is missing from the package: {TINY_TOKENIZER}")
    return load_tokenizer(TINY_TOKENIZER)


def build_model(
    preset: str | ModelPreset = "tiny",
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = None,
    seed: int = 0,
    tokenizer=None,
) -> YumeModel:
    """A generator with freshly initialised (seeded) weights; for tests, benchmarks and training.

    The tiny presets (``tiny``, ``tiny-8x``) use the tokenizer shipped in the package; other presets
    need ``tokenizer``.
    """
    p = get_preset(preset)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    # Built directly on the target device: the 5B preset would take minutes to initialise on a CPU.
    with torch.random.fork_rng(devices=[]), torch.device(dev):
        torch.manual_seed(seed)
        dit = YumeDiT(p.dit).to(dt)
        vae = WanVAE(p.vae)
        t5 = UMT5Encoder(p.text).to(dt)
    if tokenizer is None:
        if p.name not in TINY_FAMILY:
            raise ValueError(f"tokenizer: the {p.name} preset needs a tokenizer (load_checkpoint reads it)")
        tokenizer = _tiny_tokenizer()
    dit = dit.to(dev, dt).eval()
    vae = vae.to(dev).eval()
    t5 = t5.to(dev, dt).eval()
    return YumeModel(p, dit, vae, TextEncoder(t5, tokenizer, text_len=p.text.text_len, device=dev), dev)


def _read_extra(folder: Path) -> dict:
    path = folder / EXTRA_CONFIG
    if not path.is_file():
        return {}
    return read_json_config(path, f"checkpoint {EXTRA_CONFIG}")


def load_checkpoint(
    folder: str | Path,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    vae_dtype: str | torch.dtype | None = "float32",
    text_cache_size: int = 256,
) -> YumeModel:
    """Load a generator from a folder in the official layout (see :mod:`yume_env.model.checkpoint`).

    ``dtype`` applies to the DiT and the text encoder (default bf16 on CUDA, float32 on CPU); the
    VAE stays float32 by default, as in the official pipeline. Raises :class:`CheckpointError` for a
    missing file (naming it and the expected layout), an unreadable or unsafe file, or weights whose
    keys/shapes do not match the model.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint: {folder} is not a directory\n{LAYOUT}")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    vdt = resolve_dtype(vae_dtype, dev)

    dit_source = folder / DIT_INDEX if (folder / DIT_INDEX).is_file() else folder / DIT_WEIGHTS
    needed = [
        folder / DIT_CONFIG,
        dit_source,
        folder / VAE_WEIGHTS,
        folder / T5_WEIGHTS,
        folder / TOKENIZER_DIR,
    ]
    missing = [str(p.relative_to(folder)) for p in needed if not p.exists()]
    if missing:
        raise CheckpointError(f"checkpoint {folder}: missing {', '.join(missing)}\n{LAYOUT}")

    extra = _read_extra(folder)
    official = read_json_config(folder / DIT_CONFIG, "checkpoint config.json")
    # sizes first: a config asking for thousands of layers is refused before anything is built
    check_config_sizes(official, DIT_INT_FIELDS, "checkpoint config.json")
    if isinstance(extra.get("text"), dict):
        check_config_sizes(extra["text"], TEXT_INT_FIELDS, f"checkpoint {EXTRA_CONFIG} text")
    if isinstance(extra.get("vae"), dict):
        check_config_sizes(extra["vae"], ("dim", "dec_dim", "z_dim"), f"checkpoint {EXTRA_CONFIG} vae")
    base = get_preset(extra.get("preset", YUME_5B.name))
    try:
        dit_cfg = DiTConfig.from_official(official)
        check_dit_budget(dit_cfg.dim, dit_cfg.ffn_dim, dit_cfg.num_layers, "checkpoint config.json")
        vae_cfg = VAEConfig(**_tuples(extra["vae"])) if "vae" in extra else base.vae
        text_cfg = TextEncoderConfig(**extra["text"]) if "text" in extra else base.text
        resolutions = tuple(tuple(r) for r in extra.get("resolutions", base.resolutions))
        preset = with_configs(base, dit=dit_cfg, vae=vae_cfg, text=text_cfg, resolutions=resolutions)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, ZeroDivisionError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {folder}: inconsistent configuration ({exc})") from None

    tokenizer = load_tokenizer(folder / TOKENIZER_DIR)
    dit = materialize(lambda: YumeDiT(dit_cfg), open_weights(dit_source, "DiT"), dev, dt)
    vae = materialize(lambda: WanVAE(vae_cfg), open_weights(folder / VAE_WEIGHTS, "VAE"), dev, vdt)
    t5 = materialize(
        lambda: UMT5Encoder(text_cfg), open_weights(folder / T5_WEIGHTS, "text encoder"), dev, dt
    )
    text = TextEncoder(t5, tokenizer, text_len=text_cfg.text_len, cache_size=text_cache_size, device=dev)
    return YumeModel(preset, dit, vae, text, dev)


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def save_checkpoint(model: YumeModel, folder: str | Path, dit_dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` in the official folder layout (plus ``yume_env.json`` for non-5B presets)."""
    folder = Path(folder)
    (folder / TOKENIZER_DIR).mkdir(parents=True, exist_ok=True)
    (folder / DIT_CONFIG).write_text(json.dumps(model.preset.dit.to_official(), indent=2))
    save_safetensors(model.dit, folder / DIT_WEIGHTS, dtype=dit_dtype)
    save_pth(model.vae, folder / VAE_WEIGHTS)
    save_pth(model.text.model, folder / T5_WEIGHTS)
    model.text.tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))
    if model.preset.name != YUME_5B.name or model.preset.dit != YUME_5B.dit:
        extra = {
            "preset": model.preset.name,
            "vae": asdict(model.preset.vae),
            "text": asdict(model.preset.text),
            "resolutions": [list(r) for r in model.preset.resolutions],
        }
        (folder / EXTRA_CONFIG).write_text(json.dumps(extra, indent=2))
    return folder
