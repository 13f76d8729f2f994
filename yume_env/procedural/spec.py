"""``ProceduralSpec``: every argument that decides how procedural worlds are built, checked once.

``YumeProcedural-v0``, its vector env, :class:`~yume_env.procedural.world.ProceduralWorld`,
:class:`~yume_env.procedural.worlds.ProceduralWorlds` and the Ray workers all take their world
arguments from one ``ProceduralSpec``, so the list, its defaults and its checks exist here only.

## Arguments

- ``resolution``: ``(H, W)`` in pixels, each 16..2048 (default ``(96, 160)``).
- ``frames_per_block``: frames per step ``T``, 1..256 (default 29, the frames one Yume block
  decodes to; 32 matches YumeWorld-v0's seamless decoding).
- ``move_speed``: metres per block, 0..100 (default 3.0).
- ``turn_speed``: pan in degrees per block, 0..180 (default 40.0).
- ``tilt_speed``: tilt in degrees per block, 0..90 (default 20.0).
- ``pitch_limit``: largest absolute pitch in degrees, 0..60 (default 45.0).
- ``fov_deg``: horizontal field of view in degrees, 30..120 (default 80.0).
- ``render_threads``: frames rendered in parallel, 1..64 (default ``None``: CPU cores, at most 4);
  the frames do not depend on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from yume_env.world.protocol import SpecArguments

if TYPE_CHECKING:
    from yume_env.procedural.worlds import ProceduralWorlds

__all__ = ["ProceduralSpec", "check_number", "check_resolution", "spec_of"]


def check_number(name: str, value, lo: float, hi: float, *, integer: bool = False, lo_open: bool = False):
    """``value`` as a finite number (or integer) in ``lo..hi``; the error names ``name``."""
    kind = "an integer" if integer else "a number"
    ok_type = (
        isinstance(value, int | np.integer)
        if integer
        else isinstance(value, int | float | np.integer | np.floating)
    )
    if isinstance(value, bool | np.bool_) or not ok_type:
        raise TypeError(f"{name}: got {value!r} ({type(value).__name__}); accepted: {kind} in {lo}..{hi}")
    v = int(value) if integer else float(value)
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        rng = f"greater than {lo} and at most {hi}" if lo_open else f"in {lo}..{hi}"
        raise ValueError(f"{name}: got {value!r}; accepted: {kind} {rng}")
    return v


def check_resolution(resolution) -> tuple[int, int]:
    """``(height, width)`` in pixels, each an integer in 16..2048."""
    if (
        not isinstance(resolution, tuple | list)
        or len(resolution) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in resolution)
        or not all(16 <= int(v) <= 2048 for v in resolution)
    ):
        raise ValueError(f"resolution: got {resolution!r}; accepted: (height, width), integers in 16..2048")
    return int(resolution[0]), int(resolution[1])


#: ``name -> (low, high)`` of the numeric arguments (floats unless listed in ``_INTEGERS``).
_RANGES = {
    "frames_per_block": (1, 256),
    "move_speed": (0, 100),
    "turn_speed": (0, 180),
    "tilt_speed": (0, 90),
    "pitch_limit": (0, 60),
    "fov_deg": (30, 120),
    "render_threads": (1, 64),
}
_INTEGERS = ("frames_per_block", "render_threads")


@dataclass(frozen=True)
class ProceduralSpec(SpecArguments):
    """How to build procedural worlds (see the module doc for every argument and its default).

    Frozen, compared by value and picklable, so one spec builds the worlds of the single env, the
    vector env and every Ray worker. Values are checked and normalized at construction (the
    resolution to a tuple of ints, speeds and angles to floats); an error names the argument.
    """

    resolution: tuple[int, int] = (96, 160)
    frames_per_block: int = 29
    move_speed: float = 3.0
    turn_speed: float = 40.0
    tilt_speed: float = 20.0
    pitch_limit: float = 45.0
    fov_deg: float = 80.0
    render_threads: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "resolution", check_resolution(self.resolution))
        for name, (lo, hi) in _RANGES.items():
            value = getattr(self, name)
            if value is not None or name != "render_threads":
                value = check_number(name, value, lo, hi, integer=name in _INTEGERS)
            object.__setattr__(self, name, value)

    @property
    def height(self) -> int:
        return self.resolution[0]

    @property
    def width(self) -> int:
        return self.resolution[1]

    def build(self, num_worlds: int = 1) -> ProceduralWorlds:
        """A :class:`~yume_env.procedural.worlds.ProceduralWorlds` of ``num_worlds`` worlds."""
        from yume_env.procedural.worlds import ProceduralWorlds  # the backend imports this module

        return ProceduralWorlds(num_worlds, spec=self)


def spec_of(spec: ProceduralSpec | None, kwargs: dict) -> ProceduralSpec:
    """``spec``, or a :class:`ProceduralSpec` of ``kwargs`` (not both)."""
    if spec is None:
        return ProceduralSpec.from_kwargs(**kwargs)
    if kwargs:
        raise TypeError(
            f"spec / {', '.join(sorted(kwargs))}: got both; accepted: a ProceduralSpec or its arguments"
        )
    if not isinstance(spec, ProceduralSpec):
        raise TypeError(f"spec: got {type(spec).__name__}; accepted: a ProceduralSpec or None")
    return spec
