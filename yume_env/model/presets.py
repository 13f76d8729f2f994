"""Named model presets: the official 5B architecture and tiny CPU-sized ones built from the same code."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from yume_env.model.dit import DiTConfig
from yume_env.model.sampler import DISTILLED_SHIFT, DISTILLED_STEPS
from yume_env.model.text_encoder import TextEncoderConfig
from yume_env.model.vae import VAEConfig

# The tiny preset runs at any multiple of 32; past about a megapixel a block takes gigabytes of memory
# (6400x6400 tries an 8 GB allocation), so larger frames are refused up front.
MAX_TINY_PIXELS = 1024 * 1024


@dataclass(frozen=True)
class ModelPreset:
    """Everything needed to build a generator of one size.

    Attributes:
        name: preset name (``yume-1.5-5b``, ``tiny`` or ``tiny-8x``).
        dit / vae / text: component configs.
        resolutions: supported (height, width) in pixels; the first is the default.
        steps / shift: default sampler settings.
        fps: playback rate of generated video (the official export uses 16).
        image_frames: pixel frames of the static clip an image is encoded from (17 -> 5 latents,
            as ``sample_5b.py``).
    """

    name: str
    dit: DiTConfig
    vae: VAEConfig
    text: TextEncoderConfig
    resolutions: tuple[tuple[int, int], ...]
    steps: int = DISTILLED_STEPS
    shift: float = DISTILLED_SHIFT
    fps: int = 16
    image_frames: int = 17
    notes: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.dit.text_dim != self.text.dim:
            raise ValueError(
                f"preset {self.name}: dit.text_dim {self.dit.text_dim} != text.dim {self.text.dim}"
            )
        if self.dit.text_len != self.text.text_len:
            raise ValueError(
                f"preset {self.name}: dit.text_len {self.dit.text_len} != text.text_len {self.text.text_len}"
            )
        if self.dit.in_dim != self.vae.z_dim:
            raise ValueError(
                f"preset {self.name}: dit.in_dim {self.dit.in_dim} != vae.z_dim {self.vae.z_dim}"
            )
        stride = self.vae.spatial_stride * 2  # one latent pixel per VAE stride, two per DiT patch
        for h, w in self.resolutions:
            if h % stride or w % stride:
                raise ValueError(f"preset {self.name}: resolution {h}x{w} is not a multiple of {stride}")

    @property
    def resolution(self) -> tuple[int, int]:
        return self.resolutions[0]

    def check_resolution(self, resolution: tuple[int, int] | None) -> tuple[int, int]:
        """``resolution`` validated against this preset (``None`` = the default)."""
        if resolution is None:
            return self.resolution
        try:
            h, w = (int(v) for v in resolution)
        except (TypeError, ValueError):
            raise ValueError(
                f"resolution: got {resolution!r}; accepted: (height, width) such as {self.resolution}"
            ) from None
        stride = self.vae.spatial_stride * 2
        tiny = self.name in TINY_FAMILY
        if (h, w) not in self.resolutions and tiny and h * w > MAX_TINY_PIXELS:
            raise ValueError(
                f"resolution: got {h}x{w} ({h * w} pixels); accepted for {self.name}: at most "
                f"{MAX_TINY_PIXELS} pixels (e.g. 1024x1024): a larger frame takes gigabytes per block"
            )
        if (h, w) not in self.resolutions and (not tiny or h % stride or w % stride or h <= 0 or w <= 0):
            accepted = ", ".join(f"{a}x{b}" for a, b in self.resolutions)
            extra = f" (or any positive multiple of {stride} for the {self.name} preset)" if tiny else ""
            raise ValueError(f"resolution: got {h}x{w}; accepted for {self.name}: {accepted}{extra}")
        return h, w


YUME_5B = ModelPreset(
    name="yume-1.5-5b",
    dit=DiTConfig(),
    vae=VAEConfig(),
    text=TextEncoderConfig(),
    resolutions=((704, 1280), (544, 960)),
)

TINY = ModelPreset(
    name="tiny",
    dit=DiTConfig(dim=128, ffn_dim=512, num_heads=4, num_layers=4, text_dim=64, text_len=160),
    vae=VAEConfig(dim=16, dec_dim=16),
    text=TextEncoderConfig.tiny(dim=64, dim_attn=64, dim_ffn=128, num_heads=4, text_len=160),
    resolutions=((96, 160),),
)

#: The tiny preset redesigned to hold a scene (in training; ``tiny`` stays the default until this one
#: beats it, see docs/tiny-world.md). The same code as ``tiny`` with one VAE downsampling stage fewer:
#: 8x8 pixels per 48-number latent (a 12x20 grid at 96x160, 60 DiT tokens per latent frame against
#: 15), both downsampling stages also halving the frame rate (4x in time, as every preset). The
#: encoder is wider than the decoder: it runs once per reset at play time, the decoder every block.
TINY_8X = ModelPreset(
    name="tiny-8x",
    dit=DiTConfig(dim=128, ffn_dim=512, num_heads=4, num_layers=4, text_dim=64, text_len=160),
    vae=VAEConfig(dim=24, dec_dim=16, dim_mult=(1, 4, 4), temperal_downsample=(True, True)),
    text=TextEncoderConfig.tiny(dim=64, dim_attn=64, dim_ffn=128, num_heads=4, text_len=160),
    resolutions=((96, 160),),
)

PRESETS: dict[str, ModelPreset] = {p.name: p for p in (YUME_5B, TINY, TINY_8X)}

#: Presets that use the tokenizer shipped in the package and accept any resolution that is a multiple
#: of their stride.
TINY_FAMILY: frozenset[str] = frozenset({TINY.name, TINY_8X.name})


def get_preset(name: str | ModelPreset) -> ModelPreset:
    """A preset by name (``ValueError`` naming the accepted names otherwise)."""
    if isinstance(name, ModelPreset):
        return name
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"model: got {name!r}; accepted: {', '.join(PRESETS)}") from None


def with_configs(preset: ModelPreset, **changes) -> ModelPreset:
    """A copy of ``preset`` with some fields replaced (e.g. a checkpoint's own configs)."""
    return replace(preset, **changes)
