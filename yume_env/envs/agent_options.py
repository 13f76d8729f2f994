"""``AgentEnvOptions``: the arguments both PettingZoo envs share, checked once, and the worlds they build.

:class:`~yume_env.envs.multi_agent.DirectedWorldEnv` and
:class:`~yume_env.envs.multi_agent.ExplorersEnv` take the same world and observation arguments;
they are held here in one frozen object, with their defaults and checks written once. The worlds
are built through the registered env ids (:mod:`yume_env.envs.families`): one single env for the
director's world, one vector env (autoreset disabled) for the explorers' worlds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator
from gymnasium.vector import AutoresetMode, VectorEnv

from yume_env.envs.families import family_of
from yume_env.envs.validation import call_reward
from yume_env.envs.wrappers import ChannelFirstFrames
from yume_env.world.protocol import SpecArguments

__all__ = ["WORLDS", "WORLD_IDS", "AgentEnvOptions", "Observer", "RewardFn", "agent_reward"]

#: The ``world`` choices and the registered env each one builds.
WORLD_IDS: Mapping[str, str] = MappingProxyType({"yume": "YumeWorld-v0", "procedural": "YumeProcedural-v0"})
#: The ``world`` choices.
WORLDS: tuple[str, ...] = tuple(WORLD_IDS)

RewardFn = Callable[[object, dict, dict], float]


class _SpaceOnly(gym.Env):
    """Carries an observation space so that :class:`ChannelFirstFrames` can convert raw frames."""

    def __init__(self, space: spaces.Space):
        self.observation_space = space
        self.action_space = spaces.Discrete(1)


class Observer:
    """The agents' observation of a world: the world's own, or ChannelFirstFrames' (3k, H', W') image."""

    def __init__(self, world_space: spaces.Space, channel_first: bool, size, frames):
        self.convert_frames: ChannelFirstFrames | None = None
        if channel_first:
            self.convert_frames = ChannelFirstFrames(_SpaceOnly(world_space), size=size, frames=frames)
            self.space = self.convert_frames.observation_space
        else:
            self.space = world_space

    def __call__(self, obs):
        if self.convert_frames is not None:
            return self.convert_frames.observation(obs)
        return obs


@dataclass(frozen=True)
class AgentEnvOptions(SpecArguments):
    """The world and observation arguments of both PettingZoo envs, checked when built.

    Args:
        world: ``"yume"`` (default: ``YumeWorld-v0``, the tiny CPU model unless ``world_kwargs``
            names another) or ``"procedural"`` (``YumeProcedural-v0``).
        world_kwargs: constructor arguments of that world (``resolution``, ``image``, ``model``,
            ``frames_per_block``, ``obs_mode``, ``max_episode_steps``, ...; default none). Not
            ``reward_fn`` / ``render_mode``: those are the multi-agent env's ``reward_fns`` /
            ``render_mode``.
        channel_first: observe a ``(3k, H', W')`` uint8 image as made by
            :class:`~yume_env.envs.wrappers.ChannelFirstFrames` instead of the world's frames
            (default ``False``).
        size: ``(H', W')`` of that image (default ``None``: ChannelFirstFrames' default); only with
            ``channel_first=True``.
        frames: which frames go into that image (default ``"last"``); only with ``channel_first=True``.
        max_cycles: steps per episode, an integer >= 1 (default 64).
        reward_fns: ``{agent: fn}`` (agents left out get 0), one ``fn`` for every agent, or ``None``
            (default: 0 for every agent); ``fn(observation, action, info) -> float``.
        render_mode: ``None`` (default) or ``"rgb_array"``.

    Errors name the argument, what was given and what is accepted. The agent names in
    ``reward_fns`` are checked by the env (it knows its agents), through :meth:`rewards_for`.
    ``names()``, ``from_kwargs(**kwargs)``, ``replace(**changes)`` and ``as_kwargs()`` work as on the
    world specs.
    """

    world: str = "yume"
    world_kwargs: Mapping[str, Any] | None = None
    channel_first: bool = False
    size: tuple[int, int] | None = None
    frames: str | int = "last"
    max_cycles: int = 64
    reward_fns: Mapping[str, RewardFn] | RewardFn | None = None
    render_mode: str | None = None

    def __post_init__(self) -> None:
        if self.world not in WORLD_IDS:
            raise ValueError(f"world: got {self.world!r}; accepted: {', '.join(WORLDS)}")
        # private copies: later changes to the caller's dicts cannot change built options
        object.__setattr__(self, "world_kwargs", _checked_world_kwargs(self.world_kwargs))
        if not isinstance(self.channel_first, bool):
            raise TypeError(f"channel_first: got {self.channel_first!r}; accepted: True or False")
        if not self.channel_first and (self.size is not None or self.frames != "last"):
            raise ValueError(
                f"size / frames: got {self.size!r} / {self.frames!r}; they apply with channel_first=True only"
            )
        m = self.max_cycles
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
            raise ValueError(f"max_cycles: got {m!r}; accepted: an integer >= 1")
        object.__setattr__(self, "max_cycles", int(m))
        _check_reward_fns(self.reward_fns)
        if isinstance(self.reward_fns, Mapping):
            object.__setattr__(self, "reward_fns", dict(self.reward_fns))
        if self.render_mode is not None and self.render_mode != "rgb_array":
            raise ValueError(f"render_mode: got {self.render_mode!r}; accepted: None, 'rgb_array'")

    @property
    def env_id(self) -> str:
        """The registered id of the world (``"YumeWorld-v0"`` or ``"YumeProcedural-v0"``)."""
        return WORLD_IDS[self.world]

    @property
    def reset_options(self) -> dict[str, str]:
        """The world's ``reset`` options, each mapped to its name in the world's vector env."""
        return dict(family_of(self.env_id).reset_options)

    # ------------------------------------------------------------------ building
    def make_world(self) -> gym.Env:
        """One world: the registered env's class with ``world_kwargs`` (no Gymnasium wrappers, so
        its own ``max_episode_steps`` and snapshot methods stay as they are)."""
        return load_env_creator(gym.spec(self.env_id).entry_point)(**self.world_kwargs)

    def make_worlds(self, num_worlds: int) -> VectorEnv:
        """``num_worlds`` worlds as the env id's in-process vector env, autoreset disabled: world
        ``i`` is one world reset with ``seed + i``."""
        make = load_env_creator(family_of(self.env_id).vector_class)
        return make(num_envs=num_worlds, autoreset_mode=AutoresetMode.DISABLED, **self.world_kwargs)

    def observer(self, world_space: spaces.Space) -> Observer:
        """What the agents observe of a world with observation space ``world_space``."""
        return Observer(world_space, self.channel_first, self.size, self.frames)

    def rewards_for(self, agents: list[str]) -> dict[str, RewardFn]:
        """``reward_fns`` as ``{agent: fn}`` for these agents (an unknown agent raises ``ValueError``)."""
        if self.reward_fns is None:
            return {}
        if callable(self.reward_fns):
            return dict.fromkeys(agents, self.reward_fns)
        unknown = sorted(set(self.reward_fns) - set(agents))
        if unknown:
            raise ValueError(f"reward_fns: got unknown agents {unknown}; accepted: {', '.join(agents)}")
        return dict(self.reward_fns)


def agent_reward(agent: str, fn: RewardFn, observation, action: dict, info: dict) -> float:
    """``fn(observation, action, info)`` checked to be a finite real number; errors name the agent."""
    try:
        return call_reward(fn, observation, action, info)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise type(exc)(f"reward_fns[{agent!r}]: {exc}") from (exc.__cause__ or exc)


def _checked_world_kwargs(world_kwargs) -> dict:
    if world_kwargs is None:
        return {}
    if not isinstance(world_kwargs, Mapping):
        raise TypeError(f"world_kwargs: got {type(world_kwargs).__name__}; accepted: a dict or None")
    for key, ours in (("reward_fn", "reward_fns"), ("render_mode", "render_mode")):
        if key in world_kwargs:
            raise ValueError(f"world_kwargs: got {key!r}; pass {ours}= to the multi-agent env instead")
    return dict(world_kwargs)


def _check_reward_fns(reward_fns) -> None:
    if reward_fns is None or callable(reward_fns):
        return
    if not isinstance(reward_fns, Mapping):
        raise TypeError(
            f"reward_fns: got {type(reward_fns).__name__}; accepted: a dict agent -> fn(observation, action, "
            "info) -> float, one such fn for every agent, or None"
        )
    for agent, fn in reward_fns.items():
        if not callable(fn):
            raise TypeError(
                f"reward_fns[{agent!r}]: got {type(fn).__name__}; accepted: fn(observation, action, info) -> float"
            )
