"""The event catalog of the procedural world: which free-text events it can show, and how they look.

An event text (the ``event`` part of an action) is matched case-insensitively against each catalog
entry's patterns (regular expressions with word boundaries), in catalog order; the first entry with a
matching pattern is applied. So ``"The SUN sets over the city"`` applies ``sunset`` and
``"the fog clears"`` applies ``clear`` (which comes before ``fog``). Text that matches nothing is
accepted but changes nothing visible. One text applies at most one event.

The world's look is a vector of effect *levels* in ``[0, 1]`` (see :data:`CHANNELS`). An event sets
target levels for some channels; during the next block every frame moves from the current levels
towards the targets with a smoothstep, reaching them on the block's last frame. Effects stack
(fog at sunset is possible); an event lists the channels it cancels (rain cancels snow, ...).

| name | canonical text | visible effect |
|---|---|---|
| ``clear`` | "the weather clears" | back to a clear day: cancels all other effects except the balloon |
| ``sunset`` | "the sun sets" | sun near the horizon, orange sky, warm low light, dimmer |
| ``lights_out`` | "the lights go out" | much darker: mean brightness falls to under 40% of before |
| ``night`` | "night falls" | dark blue sky with stars, moonlight, lit windows and street lamps |
| ``fog`` | "fog rolls in" | thick grey fog: distant things fade out, contrast drops |
| ``rain`` | "it starts to rain" | overcast grey sky, duller light, rain streaks |
| ``snow`` | "it starts to snow" | overcast sky, falling flakes, ground and roofs turn white |
| ``balloon_pops`` | "the balloon pops" | the balloon shrinks away |
| ``balloon`` | "a red balloon appears" | a red balloon grows in the air ~6 m in front of the camera |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

#: Effect channels, in level-vector order.
CHANNELS: tuple[str, ...] = ("sunset", "night", "lights_out", "fog", "rain", "snow", "balloon")
_CH = {name: k for k, name in enumerate(CHANNELS)}


@dataclass(frozen=True)
class Event:
    """One catalog entry: ``name``, canonical ``text``, matching ``patterns`` and level ``targets``."""

    name: str
    text: str
    patterns: tuple[str, ...]
    targets: tuple[tuple[str, float], ...]
    effect: str
    _compiled: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_compiled", tuple(re.compile(p, re.IGNORECASE) for p in self.patterns))

    def matches(self, text: str) -> bool:
        return any(p.search(text) for p in self._compiled)


_ALL_OFF = tuple((c, 0.0) for c in CHANNELS if c != "balloon")

#: The events the procedural world can show, in matching order.
CATALOG: tuple[Event, ...] = (
    Event(
        "clear",
        "the weather clears",
        (
            r"\b(weather|sky|skies|fog|mist|haze|rain|snow|storm|clouds?)\s+(clears?|cleared|lifts?|stops?|ends?)\b",
            r"\bclear (sky|skies|weather|day)\b",
            r"\bstops? (raining|snowing)\b",
            r"\bsun (comes|came) (out|back)\b",
            r"\blights? (come|comes|came|go|goes|turn|turns|are) (back )?on\b",
            r"\b(daylight|day) (returns|breaks)\b",
            r"\bback to normal\b",
        ),
        _ALL_OFF,
        "back to a clear day: cancels all other effects except the balloon",
    ),
    Event(
        "sunset",
        "the sun sets",
        (
            r"\bsun\s*sets?\b",
            r"\bsunset\b",
            r"\bsun (goes|is going) down\b",
            r"\bdusk\b",
            r"\bevening\b",
            r"\btwilight\b",
            r"\bgolden hour\b",
        ),
        (("sunset", 1.0), ("night", 0.0)),
        "sun near the horizon, orange sky, warm low light, dimmer",
    ),
    Event(
        "lights_out",
        "the lights go out",
        (
            r"\blights? (go|goes|went|are|turn|turns|turned|switch|switches|switched|going) (out|off)\b",
            r"\blights out\b",
            r"\bblackout\b",
            r"\bpower (cut|outage|failure|fails|goes out)\b",
            r"\bpitch (black|dark)\b",
        ),
        (("lights_out", 1.0),),
        "much darker: mean brightness falls to under 40% of before",
    ),
    Event(
        "night",
        "night falls",
        (r"\bnight\w*\b", r"\bmoon\w*\b", r"\bgets? dark\b", r"\bdarkness\b", r"\bstarry\b"),
        (("night", 1.0), ("sunset", 0.0)),
        "dark blue sky with stars, moonlight, lit windows and street lamps",
    ),
    Event(
        "fog",
        "fog rolls in",
        (r"\bfog\w*\b", r"\bmist\w*\b", r"\bhaze\b", r"\bhazy\b", r"\bsmog\b"),
        (("fog", 1.0),),
        "thick grey fog: distant things fade out, contrast drops",
    ),
    Event(
        "rain",
        "it starts to rain",
        (r"\brain(s|ing|y|ed|storm|fall)?\b", r"\bdrizzl\w*\b", r"\bdownpour\b", r"\bthunder\w*\b"),
        (("rain", 1.0), ("snow", 0.0)),
        "overcast grey sky, duller light, rain streaks",
    ),
    Event(
        "snow",
        "it starts to snow",
        (r"\bsnow\w*\b", r"\bblizzard\b", r"\bflurr(y|ies)\b"),
        (("snow", 1.0), ("rain", 0.0)),
        "overcast sky, falling flakes, ground and roofs turn white",
    ),
    Event(
        "balloon_pops",
        "the balloon pops",
        (r"\bballoons?\b.*\b(pops?|popped|bursts?|burst|flies away|floats away|disappears?|vanish(es)?)\b",),
        (("balloon", 0.0),),
        "the balloon shrinks away",
    ),
    Event(
        "balloon",
        "a red balloon appears",
        (r"\bballoons?\b",),
        (("balloon", 1.0),),
        "a red balloon grows in the air ~6 m in front of the camera",
    ),
)

EVENT_NAMES: tuple[str, ...] = tuple(e.name for e in CATALOG)


def match_event(text: str) -> Event | None:
    """The first catalog event whose patterns match ``text`` (case-insensitive), or ``None``."""
    if not text or not text.strip():
        return None
    for event in CATALOG:
        if event.matches(text):
            return event
    return None


def get_event(name: str) -> Event:
    """Catalog entry by name (``KeyError`` naming the accepted names otherwise)."""
    for event in CATALOG:
        if event.name == name:
            return event
    raise KeyError(f"event name: got {name!r}; accepted: {', '.join(EVENT_NAMES)}")


def initial_levels() -> np.ndarray:
    """Levels of a clear day (all channels off)."""
    return np.zeros(len(CHANNELS), np.float64)


def target_levels(levels: np.ndarray, event: Event | None) -> np.ndarray:
    """Levels after ``event`` has fully taken effect (``levels`` unchanged for ``None``)."""
    out = np.array(levels, np.float64, copy=True)
    if event is not None:
        for name, value in event.targets:
            out[_CH[name]] = value
    return out


def level_ramp(start: np.ndarray, target: np.ndarray, frames: int) -> np.ndarray:
    """``(frames, C)`` per-frame levels going smoothly from ``start`` (exclusive) to ``target``."""
    s = np.arange(1, frames + 1, dtype=np.float64) / frames
    s = s * s * (3.0 - 2.0 * s)
    return start[None, :] + (target - start)[None, :] * s[:, None]


def level(levels: np.ndarray, name: str) -> float:
    return float(levels[_CH[name]])


@dataclass
class Atmosphere:
    """Lighting and weather parameters of one frame (what the renderer consumes)."""

    sun_dir: np.ndarray  # (3,) unit vector towards the sun (or moon)
    sun_col: np.ndarray  # (3,) direct light colour and strength
    zenith: np.ndarray  # (3,) sky colour straight up
    horizon: np.ndarray  # (3,) sky colour at the horizon
    ambient: np.ndarray  # (3,) sky light colour and strength
    fog_col: np.ndarray  # (3,)
    fog_sq: float  # fog factor 1 - exp(-(t * fog_sq)^2 - t * fog_lin)
    fog_lin: float
    sky_fog: float  # how much of the sky is hidden by fog
    exposure: float
    window_glow: float
    lamp_glow: float
    stars: float
    clouds: float
    rain: float
    snow: float


def _mix(a, b, t):
    return np.asarray(a, np.float32) * (1.0 - t) + np.asarray(b, np.float32) * t


def atmosphere(levels: np.ndarray, sun_azimuth_deg: float) -> Atmosphere:
    """The look of effect ``levels`` (see :data:`CHANNELS`) under a sun at ``sun_azimuth_deg``."""
    s, n, lo, f, r, w, _ = (float(v) for v in levels)
    # time of day: day -> sunset -> night (the night light source is the moon)
    elev = np.radians(48.0 + (4.0 - 48.0) * s)
    elev = elev + (np.radians(38.0) - elev) * n
    az = np.radians(sun_azimuth_deg)
    sun_dir = np.array([np.cos(elev) * np.sin(az), np.sin(elev), np.cos(elev) * np.cos(az)], np.float32)
    sun_col = _mix(_mix((1.05, 1.0, 0.9), (1.0, 0.52, 0.25), s), (0.09, 0.10, 0.14), n)
    zenith = _mix(_mix((0.22, 0.42, 0.80), (0.30, 0.27, 0.50), s), (0.01, 0.015, 0.05), n)
    horizon = _mix(_mix((0.72, 0.81, 0.93), (0.98, 0.56, 0.30), s), (0.05, 0.06, 0.11), n)
    ambient = _mix(_mix((0.42, 0.46, 0.52), (0.36, 0.28, 0.32), s), (0.05, 0.06, 0.10), n)
    tod = (1.0 - 0.45 * s) * (1.0 - 0.9 * n)  # overall daylight brightness
    # weather: rain and snow bring an overcast sky, fog a grey veil
    overcast = max(r, 0.9 * w, 0.5 * f)
    grey = np.array([0.50, 0.53, 0.57], np.float32) * tod
    zenith = _mix(zenith, grey * 0.9, overcast)
    horizon = _mix(horizon, grey * 1.1, overcast)
    sun_col = sun_col * (1.0 - 0.85 * overcast)
    ambient = _mix(ambient, np.array([0.50, 0.52, 0.55], np.float32) * tod, 0.6 * overcast) * (1 - 0.15 * r)
    fog_col = _mix(horizon, np.array([0.70, 0.72, 0.75], np.float32) * tod, f)
    return Atmosphere(
        sun_dir=sun_dir,
        sun_col=sun_col.astype(np.float32),
        zenith=zenith.astype(np.float32),
        horizon=horizon.astype(np.float32),
        ambient=ambient.astype(np.float32),
        fog_col=fog_col.astype(np.float32),
        fog_sq=1.0 / 110.0,
        fog_lin=0.10 * f + 0.01 * r + 0.02 * w,
        sky_fog=0.9 * f,
        exposure=1.0 - 0.8 * lo,
        window_glow=(0.9 * n + 0.25 * s) * (1.0 - lo),
        lamp_glow=max(n, 0.5 * s) * (1.0 - lo),
        stars=n * (1.0 - overcast) * (1.0 - f),
        clouds=0.55 * (1.0 - overcast),
        rain=r,
        snow=w,
    )
