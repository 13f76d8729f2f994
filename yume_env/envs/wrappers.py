"""Wrappers that adapt ``YumeWorld-v0`` to libraries with narrower spaces, such as stable-baselines3.

stable-baselines3 accepts ``Box``/``Discrete``/``MultiDiscrete``/``MultiBinary`` actions only (no
``Dict``, no ``Text``) and its ``CnnPolicy`` wants channel-first ``uint8`` images. The wrappers here
provide exactly that:

- :class:`DiscreteActions`: one ``Discrete(n)`` index per (move, look[, event from a fixed catalog]).
- :class:`ChannelFirstFrames`: the block's frames as a ``(C, H, W)`` ``uint8`` image, optionally
  resized (bilinear) and with the last ``k`` frames stacked on the channel axis.
- :func:`wrap_sb3` applies both to any env with the Yume spaces; :func:`make_sb3_env` is
  ``gym.make("YumeWorld-v0", ...)`` (or another id) with both applied.

Both wrappers record their constructor arguments, so ``env.spec`` describes the wrapped environment
and ``env.spec.make()`` (or ``gym.make(env.spec)``) rebuilds it.

Example::

    from stable_baselines3 import PPO
    from yume_env.envs.wrappers import make_sb3_env

    env = make_sb3_env(image="street.jpg", max_episode_steps=32, events=["It starts to rain."])
    model = PPO("CnnPolicy", env).learn(10_000)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from yume_env.actions import LOOKS, MOVES, Action, look_index, move_index
from yume_env.envs.validation import parse_action
from yume_env.events import EventCatalog

__all__ = [
    "FRAME_SELECTIONS",
    "ChannelFirstFrames",
    "DiscreteActions",
    "make_sb3_env",
    "resize_bilinear",
    "wrap_sb3",
]

#: Named choices of :class:`ChannelFirstFrames` ``frames`` (an integer ``k`` is accepted too).
FRAME_SELECTIONS = ("last", "all")


# ---------------------------------------------------------------------------------------------- actions
def _check_subset(values, name: str, labels: tuple[str, ...], by_name) -> tuple[int, ...]:
    """Indices of a ``moves``/``looks`` subset given as indices or names (``None`` = all, in order)."""
    if values is None:
        return tuple(range(len(labels)))
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(
            f"{name}: got {type(values).__name__}; accepted: a list of indices 0..{len(labels) - 1} "
            f"or names ({', '.join(labels)}), or None for all"
        )
    chosen: list[int] = []
    for i, value in enumerate(values):
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value.item()
        if isinstance(value, str | np.str_):
            index = by_name(str(value))
        elif isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
            index = int(value)
            if not 0 <= index < len(labels):
                raise ValueError(
                    f"{name}[{i}]: got {index}; accepted: 0..{len(labels) - 1} ({', '.join(labels)})"
                )
        else:
            raise TypeError(
                f"{name}[{i}]: got {value!r} ({type(value).__name__}); accepted: an index "
                f"0..{len(labels) - 1} or a name ({', '.join(labels)})"
            )
        if index in chosen:
            raise ValueError(f"{name}[{i}]: {index} ({labels[index]}) is listed twice; accepted: distinct")
        chosen.append(index)
    if not chosen:
        raise ValueError(f"{name}: got an empty list; accepted: at least one entry, or None for all")
    return tuple(chosen)


class DiscreteActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """A ``Discrete(n)`` action space over (move, look) combos, optionally times a catalog of events.

    For algorithms that cannot act in ``Dict``/``Text`` spaces (stable-baselines3's PPO, A2C, DQN).

    With all 9 moves and 9 looks and no catalog, ``n = 81`` and ``index = move * 9 + look``. With
    ``events`` (a list of ``E`` event strings), ``n = 81 * (1 + E)`` and

    ``index = slot * 81 + move * 9 + look``

    where slot 0 sends ``""`` (keep the current event) and slot ``i >= 1`` sends ``events[i - 1]``.
    Events persist in the world until replaced, as with the ``Dict`` action. Passing ``moves`` /
    ``looks`` (lists of indices into :data:`yume_env.actions.MOVES` / ``LOOKS``, or their names such as
    ``"W"`` or ``"→"``) keeps only those, in the order given: then ``index = slot * (M * L) + m * L + l``
    where ``m``/``l`` are positions in those lists.

    Attributes:
        catalog: the :class:`~yume_env.events.EventCatalog` of ``events`` (``slot`` is its index).
        events: the event catalog's texts (without the implicit ``""`` slot 0).
        moves / looks: the move and look indices in use, in the order given.
        table: ``table[index]`` is the :class:`~yume_env.actions.Action` sent for ``index``.

    :meth:`decode` turns an index into the ``{"move", "look", "event"}`` dict passed to the wrapped
    environment; :meth:`encode` does the inverse.
    """

    def __init__(
        self,
        env: gym.Env,
        events: Sequence[str] | None = None,
        moves: Sequence[int | str] | None = None,
        looks: Sequence[int | str] | None = None,
    ):
        catalog = EventCatalog(() if events is None else events)
        move_ids = _check_subset(moves, "moves", MOVES, move_index)
        look_ids = _check_subset(looks, "looks", LOOKS, look_index)
        gym.utils.RecordConstructorArgs.__init__(
            self,
            events=None if events is None else list(catalog.texts),
            moves=None if moves is None else list(move_ids),
            looks=None if looks is None else list(look_ids),
        )
        gym.ActionWrapper.__init__(self, env)
        self.catalog = catalog
        self.events = catalog.texts
        self.moves = move_ids
        self.looks = look_ids
        self.table: tuple[Action, ...] = tuple(
            Action(m, lk, catalog.decode(slot))
            for slot in range(1 + len(catalog))
            for m in move_ids
            for lk in look_ids
        )
        self._index = {a: i for i, a in enumerate(self.table)}
        self.action_space = spaces.Discrete(len(self.table))

    # -- index <-> dict
    def decode(self, index) -> dict:
        """The ``{"move", "look", "event"}`` action of ``index`` (an int, numpy integer, or 1-element array)."""
        if isinstance(index, np.ndarray) and index.size == 1:
            index = index.reshape(()).item()
        if isinstance(index, bool | np.bool_) or not isinstance(index, int | np.integer):
            raise TypeError(
                f"action: got {index!r} ({type(index).__name__}); accepted: an integer 0..{len(self.table) - 1}"
            )
        if not 0 <= int(index) < len(self.table):
            raise ValueError(f"action: got {int(index)}; accepted: 0..{len(self.table) - 1}")
        return self.table[int(index)].as_dict()

    def encode(self, action: Mapping | Action) -> int:
        """The index of a ``{"move", "look", "event"}`` action (``event`` optional, default ``""``)."""
        a = parse_action(action)
        if a.move not in self.moves:
            raise ValueError(
                f"action['move']: got {a.move} ({MOVES[a.move]}); this wrapper has moves {list(self.moves)}"
            )
        if a.look not in self.looks:
            raise ValueError(
                f"action['look']: got {a.look} ({LOOKS[a.look]}); this wrapper has looks {list(self.looks)}"
            )
        self.catalog.encode(a.event, "action['event']")  # names the catalog when the event is not in it
        return self._index[a]

    def action(self, action) -> dict:
        return self.decode(action)


# ---------------------------------------------------------------------------------------------- frames
def _check_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    ok = (
        isinstance(size, Sequence | np.ndarray)
        and not isinstance(size, str | bytes)
        and len(size) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in size)
    )
    if not ok or min(int(v) for v in size) < 1:
        raise ValueError(
            f"size: got {size!r}; accepted: (height, width) of positive integers such as (64, 64), "
            "or None to keep the frames' size"
        )
    return int(size[0]), int(size[1])


def _check_frames(frames, available: int, single: bool) -> int:
    """How many of the newest frames to keep (``frames`` = "last", "all" or an integer k)."""
    accepted = f"'last', 'all' or an integer 1..{available}"
    if isinstance(frames, str):
        if frames not in FRAME_SELECTIONS:
            raise ValueError(f"frames: got {frames!r}; accepted: {accepted}")
        return 1 if frames == "last" else available
    if isinstance(frames, bool | np.bool_) or not isinstance(frames, int | np.integer):
        raise TypeError(f"frames: got {frames!r} ({type(frames).__name__}); accepted: {accepted}")
    if not 1 <= int(frames) <= available:
        extra = " (the observation is a single frame)" if single else ""
        raise ValueError(f"frames: got {int(frames)}; accepted: {accepted}{extra}")
    return int(frames)


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a bilinear resize along one axis (half-pixel centres, no
    antialiasing: the same sampling as ``torch.nn.functional.interpolate(mode="bilinear")``)."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def resize_bilinear(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(..., H, W, C)`` uint8 images to ``size = (H', W')`` with bilinear interpolation."""
    h, w = frames.shape[-3], frames.shape[-2]
    if (h, w) == tuple(size):
        return frames.copy()
    y0, y1, wy = _bilinear_taps(h, size[0])
    x0, x1, wx = _bilinear_taps(w, size[1])
    x = frames.astype(np.float32)
    wy = wy[:, None, None]
    x = x[..., y0, :, :] * (1.0 - wy) + x[..., y1, :, :] * wy
    wx = wx[:, None]
    x = x[..., :, x0, :] * (1.0 - wx) + x[..., :, x1, :] * wx
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


class ChannelFirstFrames(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Frames as one channel-first ``uint8`` image ``(C, H', W')``, the layout of SB3's ``CnnPolicy``.

    Accepts the ``(T, H, W, 3)`` observation of ``obs_mode="frames"`` or the ``(H, W, 3)`` one of
    ``"last_frame"``.

    - ``frames="last"`` (default): the newest frame, ``C = 3``.
    - ``frames=k``: the newest ``k`` frames, oldest first, stacked on channels: ``C = 3k`` and channel
      ``3 * i + c`` is colour ``c`` of the ``i``-th of them.
    - ``frames="all"``: every frame of the block (``k = T``).
    - ``size=(H', W')``: resize with bilinear interpolation (``None`` keeps the size). SB3's default
      ``NatureCNN`` needs at least 36x36; 64x64 is a common choice.

    stable-baselines3 decides whether an image is channel-first by its smallest axis, so keep
    ``3 * k`` below ``H'`` and ``W'`` (a warning says so otherwise); e.g. ``frames="all"`` on a
    29-frame block needs at least 88x88.
    """

    def __init__(self, env: gym.Env, size: tuple[int, int] | None = None, frames: str | int = "last"):
        space = env.observation_space
        if (
            not isinstance(space, spaces.Box)
            or space.dtype != np.uint8
            or len(space.shape) not in (3, 4)
            or space.shape[-1] != 3
        ):
            raise ValueError(
                f"observation space: got {space}; accepted: uint8 frames (T, H, W, 3) or (H, W, 3), "
                "i.e. YumeWorld-v0 with obs_mode='frames' or 'last_frame'"
            )
        single = len(space.shape) == 3
        checked_size = _check_size(size)
        count = _check_frames(frames, 1 if single else space.shape[0], single)
        gym.utils.RecordConstructorArgs.__init__(
            self, size=None if checked_size is None else tuple(checked_size), frames=frames
        )
        gym.ObservationWrapper.__init__(self, env)
        self.size = checked_size
        self.frames = frames
        self.num_frames = count
        self._single = single
        h, w = checked_size if checked_size is not None else space.shape[-3:-1]
        if 3 * count >= min(h, w):
            gym.logger.warn(
                f"ChannelFirstFrames: {3 * count} channels for {h}x{w} pixels; stable-baselines3 takes the "
                "smallest axis for the channels, so keep 3 * frames below the height and width "
                "(fewer frames or a larger size)"
            )
        self.observation_space = spaces.Box(0, 255, shape=(3 * count, h, w), dtype=np.uint8)

    def observation(self, observation) -> np.ndarray:
        x = np.asarray(observation)
        x = x[None] if self._single else x[-self.num_frames :]
        if self.size is not None:
            x = resize_bilinear(x, self.size)
        k, h, w, c = x.shape
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(k * c, h, w)


# ---------------------------------------------------------------------------------------------- factory
def wrap_sb3(
    env: gym.Env,
    *,
    events: Sequence[str] | None = None,
    size: tuple[int, int] | None = (64, 64),
    frames: str | int = "last",
    moves: Sequence[int | str] | None = None,
    looks: Sequence[int | str] | None = None,
) -> DiscreteActions:
    """``env`` (any env with the Yume spaces) with ``Discrete`` actions and ``(C, H, W)`` uint8 images.

    ``events``/``moves``/``looks`` go to :class:`DiscreteActions`, ``size``/``frames`` to
    :class:`ChannelFirstFrames`. Latent observations (``obs_mode="latent"``, a float ``Box``) pass
    through unchanged (``size``/``frames`` do not apply): use SB3's ``MlpPolicy`` or your own extractor.
    """
    space = env.observation_space
    if isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating) and len(space.shape) == 4:
        return DiscreteActions(env, events=events, moves=moves, looks=looks)
    return DiscreteActions(
        ChannelFirstFrames(env, size=size, frames=frames), events=events, moves=moves, looks=looks
    )


def make_sb3_env(
    env_id: str = "YumeWorld-v0",
    *,
    events: Sequence[str] | None = None,
    size: tuple[int, int] | None = (64, 64),
    frames: str | int = "last",
    moves: Sequence[int | str] | None = None,
    looks: Sequence[int | str] | None = None,
    **env_kwargs,
) -> gym.Env:
    """``gym.make(env_id, ...)`` ready for stable-baselines3 (:func:`wrap_sb3`).

    ``env_id`` is ``"YumeWorld-v0"`` (default) or ``"YumeProcedural-v0"``. ``env_kwargs`` go to
    ``gym.make`` (``image``, ``prompt``, ``model``, ``max_episode_steps``, ...; ``obs_mode`` defaults
    to ``"frames"`` for YumeWorld-v0).
    """
    if env_id == "YumeWorld-v0":
        env_kwargs.setdefault("obs_mode", "frames")
    env = gym.make(env_id, **env_kwargs)
    try:
        return wrap_sb3(env, events=events, size=size, frames=frames, moves=moves, looks=looks)
    except Exception:
        env.close()
        raise
