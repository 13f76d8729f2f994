"""The Gymnasium spaces shared by every Yume environment (generated and procedural)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from yume_env.actions import EVENT_CHARSET, EVENT_MAX_LENGTH, LOOKS, MOVES
from yume_env.events import PROCEDURAL_EVENTS

#: Events ``action_space.sample()`` draws from (:data:`yume_env.events.PROCEDURAL_EVENTS`).
SAMPLE_EVENTS: tuple[str, ...] = PROCEDURAL_EVENTS.texts
#: Chance that a sampled action carries an event (otherwise ``""``: keep the current one).
SAMPLE_EVENT_RATE = 0.1

SB3_ROUTE = (
    "Stable-Baselines3 accepts no Dict/Text action space: use "
    "yume_env.envs.wrappers.make_sb3_env(...) (or wrap_sb3(env)) for Discrete actions and CnnPolicy/MlpPolicy "
    "observations"
)


class YumeActionSpace(spaces.Dict):
    """The Yume action space (a ``Dict``), with a sampler fit for exploration.

    ``sample()`` draws ``move`` and ``look`` uniformly and, with probability
    :data:`SAMPLE_EVENT_RATE`, an event from :data:`SAMPLE_EVENTS` (otherwise ``""``, which keeps the
    current event); the ``Text`` space's own sampler would inject 300 random characters every step.
    ``sample(mask=...)`` or ``sample(probability=...)`` use Gymnasium's samplers unchanged. Its
    ``repr`` names the Stable-Baselines3 route, which SB3 prints when it refuses this space.
    """

    def sample(self, mask=None, probability=None):
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        rng = self.spaces["event"].np_random
        event = ""
        if rng.random() < SAMPLE_EVENT_RATE:
            event = SAMPLE_EVENTS[int(rng.integers(len(SAMPLE_EVENTS)))]
        drawn = {"move": self.spaces["move"].sample(), "look": self.spaces["look"].sample(), "event": event}
        return {key: drawn[key] for key in self.spaces}

    def __repr__(self) -> str:
        return f"{super().__repr__()} [{SB3_ROUTE}]"


def event_text_space() -> spaces.Text:
    """``Text(0..EVENT_MAX_LENGTH)`` over :data:`~yume_env.actions.EVENT_CHARSET`: free event text
    (``""`` keeps the current event). Discrete event choices use :class:`yume_env.events.EventCatalog`."""
    return spaces.Text(max_length=EVENT_MAX_LENGTH, min_length=0, charset=EVENT_CHARSET)


def action_space(seed: int | None = None) -> spaces.Dict:
    """``Dict(move=Discrete(9), look=Discrete(9), event=Text(0..EVENT_MAX_LENGTH))``.

    ``event`` may be empty, which keeps the current event text. See :class:`YumeActionSpace` for
    what ``sample()`` draws.
    """
    return YumeActionSpace(
        {
            "move": spaces.Discrete(len(MOVES)),
            "look": spaces.Discrete(len(LOOKS)),
            "event": event_text_space(),
        },
        seed=seed,
    )


def frames_space(frames: int, height: int, width: int) -> spaces.Box:
    """A block of ``frames`` RGB frames, ``(T, H, W, 3)`` uint8."""
    return spaces.Box(0, 255, shape=(frames, height, width, 3), dtype=np.uint8)


def last_frame_space(height: int, width: int) -> spaces.Box:
    """The newest RGB frame of a block, ``(H, W, 3)`` uint8."""
    return spaces.Box(0, 255, shape=(height, width, 3), dtype=np.uint8)
