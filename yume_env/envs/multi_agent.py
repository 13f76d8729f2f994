"""PettingZoo ``ParallelEnv``\\ s: several agents acting on Yume worlds.

**What "multi-agent" means here.** A Yume world is one first-person camera: there are no bodies in
it, and agents never see each other in the frames. So agents either *share* one world's camera, each
controlling part of the action, or each agent has *its own* world:

- :class:`DirectedWorldEnv`: ONE world, two roles. The ``"explorer"`` moves the camera (``move``,
  ``look``); the ``"director"`` chooses what happens in the world (the ``event`` text, as an index
  into an event catalog or as free text). Their actions are merged into one action, so one caption,
  per block. For adversarial or curriculum setups where the director shapes the world the explorer
  must cope with.
- :class:`ExplorersEnv`: N explorers, each in its OWN world (own camera, own history, own seed).
  With ``world="yume"`` all worlds are generated in one batch by ONE shared model (the vector env's
  engine); a world's frames never depend on which other worlds share the batch.

Both take ``world="yume"`` (``YumeWorld-v0``; the tiny CPU model by default) or
``world="procedural"`` (``YumeProcedural-v0``, the ground-truth city: same spaces, fast, with the
camera pose in ``info``), with ``world_kwargs`` passed to that environment's constructor (e.g.
``{"resolution": (32, 64)}``). The director's world is that env; the explorers' worlds are its
vector env (``gym.make_vec``'s in-process class, autoreset disabled): world ``i`` is the env reset
with ``seed + i``. The arguments both envs share (``world``, ``world_kwargs``, ``channel_first``,
``size``, ``frames``, ``max_cycles``, ``reward_fns``, ``render_mode``) are one frozen
:class:`~yume_env.envs.agent_options.AgentEnvOptions`, checked when the env is built
(``env.options``).

Observations are the world's frames, as in the single-agent env (``obs_mode`` in ``world_kwargs``),
or, with ``channel_first=True``, a smaller ``(3k, H', W')`` uint8 image as made by
:class:`~yume_env.envs.wrappers.ChannelFirstFrames` (``size``, ``frames``). Every agent of a world
observes that world's frames.

Rewards are pluggable per agent: ``reward_fns={"explorer": fn, ...}`` with
``fn(observation, action, info) -> float``, where ``observation`` is that agent's observation,
``action`` the world's merged ``{"move", "look", "event"}`` action of the block and ``info`` the
world's info. The default is 0 for every agent. A reward fn that raises or returns anything but a
finite number undoes the step (the worlds, the cycle count and the agents are as before it) and
the error names the agent.

Episodes never terminate; they truncate for every agent at once after ``max_cycles`` steps (or when
the world truncates, if ``world_kwargs`` sets its ``max_episode_steps``); then ``agents`` is empty
until ``reset``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from yume_env.actions import LOOKS, MOVES, Action, check_event
from yume_env.envs.agent_options import WORLDS, AgentEnvOptions, Observer, RewardFn, agent_reward
from yume_env.envs.spaces import event_text_space
from yume_env.envs.validation import parse_action
from yume_env.envs.world_env import WorldEnv
from yume_env.events import PROCEDURAL_EVENTS, EventCatalog

__all__ = ["DEFAULT_EVENTS", "WORLDS", "AgentEnvOptions", "DirectedWorldEnv", "ExplorersEnv"]


#: The director's default event catalog: the procedural world's events as sentences, in its catalog
#: order (index ``i + 1`` of the director's ``Discrete`` action; 0 keeps the current event):
#: "The weather clears.", "The sun sets.", "The lights go out.", "Night falls.", "Fog rolls in.",
#: "It starts to rain.", "It starts to snow.", "The balloon pops.", "A red balloon appears."
#: (the texts of :data:`yume_env.events.PROCEDURAL_EVENTS`).
DEFAULT_EVENTS: tuple[str, ...] = PROCEDURAL_EVENTS.texts


# ---------------------------------------------------------------------------------------------- helpers
def _world_options(options, accepted: Mapping[str, str]) -> dict:
    """``reset`` options for the world; unknown keys are ignored with a warning (PettingZoo's API test
    passes ``{"options": 1}`` and expects it to be accepted)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"options: got {type(options).__name__}; accepted: a dict or None")
    unknown = sorted(map(str, set(options) - set(accepted)))
    if unknown:
        warnings.warn(
            f"reset options {unknown} are not used by this environment (accepted: {', '.join(accepted)})",
            stacklevel=3,
        )
    return {k: v for k, v in options.items() if k in accepted}


def _options_of(env: str, own: tuple[str, ...], kwargs: dict) -> AgentEnvOptions:
    """``env``'s shared keywords as options; an unknown keyword is refused naming all ``env`` takes."""
    names = AgentEnvOptions.names()
    if not set(kwargs) <= set(names):
        unknown = ", ".join(map(repr, sorted(set(kwargs) - set(names))))
        raise TypeError(f"{env}: got unexpected argument(s) {unknown}; accepted: {', '.join(own + names)}")
    return AgentEnvOptions(**kwargs)


def _copy(obs):
    return obs.copy() if isinstance(obs, np.ndarray) else obs


class _AgentEnv(ParallelEnv):
    """What both environments share: their options, agents, spaces, rewards and rendering checks."""

    def _setup(self, options: AgentEnvOptions, agents: list[str]) -> None:
        self.options = options
        self.world_name = options.world
        self.max_cycles = options.max_cycles
        self.render_mode = options.render_mode
        self.possible_agents = agents
        self.agents: list[str] = []
        self.reward_fns: dict[str, RewardFn] = options.rewards_for(agents)
        self._option_keys = options.reset_options
        self._cycles = 0

    def _observer(self, world_space: spaces.Space, world) -> Observer:
        """The agents' observation of ``world``; ``world`` is closed if the format is refused."""
        try:
            observe = self.options.observer(world_space)
        except BaseException:
            world.close()
            raise
        self.observation_spaces = dict.fromkeys(self.possible_agents, observe.space)
        return observe

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[self._agent(agent)]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[self._agent(agent)]

    def _agent(self, agent) -> str:
        if agent not in self.possible_agents:
            raise KeyError(f"agent: got {agent!r}; accepted: {', '.join(self.possible_agents)}")
        return agent

    def _check_actions(self, actions) -> None:
        """``step``'s ``actions``: a dict with one entry per live agent and no unknown agent."""
        if not isinstance(actions, Mapping):
            raise TypeError(f"actions: got {type(actions).__name__}; accepted: a dict agent -> action")
        unknown = sorted(map(str, set(actions) - set(self.possible_agents)))
        if unknown:
            raise ValueError(
                f"actions: got unknown agents {unknown}; accepted: {', '.join(self.possible_agents)}"
            )
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"actions: missing {missing}; every live agent acts every step ({self.agents})")

    def _rewards(self, observations: dict, actions: dict, infos: dict) -> dict[str, float]:
        """Each live agent's reward (0 without a reward fn); the caller undoes the step if this raises."""
        return {
            a: agent_reward(a, self.reward_fns[a], observations[a], actions[a], infos[a])
            if a in self.reward_fns
            else 0.0
            for a in self.agents
        }

    def _can_render(self) -> bool:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return False
        return True


# ---------------------------------------------------------------------------------------------- directed
class DirectedWorldEnv(_AgentEnv):
    """One Yume world shared by an ``"explorer"`` (camera moves) and a ``"director"`` (world events).

    Each step the two actions are merged into one world action: ``move`` and ``look`` from the
    explorer, ``event`` from the director, so one caption per block (e.g. "... The camera pushes
    forward (W). ... It starts to rain."). See the module docs for what "multi-agent" means here
    (one camera per world).

    ## Agents and action spaces

    - ``"explorer"``: ``Dict(move=Discrete(9), look=Discrete(9))``, indices of
      :data:`yume_env.actions.MOVES` / :data:`~yume_env.actions.LOOKS` (as in ``YumeWorld-v0``).
    - ``"director"``: ``Discrete(1 + len(events))``: 0 keeps the current event, ``i`` sends
      ``events[i - 1]`` (default catalog :data:`DEFAULT_EVENTS`, the events the procedural world
      shows). With ``director_text=True``: ``Text(0..300)`` free event text as in ``YumeWorld-v0``
      (``""`` keeps the current event, spaces clear it).

    ## Observations

    Both agents observe the world's frames (see the module docs; ``channel_first``/``size``/
    ``frames`` for a smaller channel-first image).

    ## Arguments

    - ``world``: ``"yume"`` (default, ``YumeWorld-v0``) or ``"procedural"``.
    - ``world_kwargs``: constructor arguments of that world (``resolution``, ``image``, ``model``,
      ``frames_per_block``, ``obs_mode``, ``max_episode_steps``, ...).
    - ``events``: the director's catalog (distinct printable-ASCII texts); ignored with
      ``director_text=True``.
    - ``director_text``: free-text director instead of a catalog index.
    - ``channel_first`` (default ``False``), ``size`` (default ``None``), ``frames`` (default
      ``"last"``): observation format (see module docs).
    - ``max_cycles``: steps per episode (default 64).
    - ``reward_fns``: ``{"explorer": fn, "director": fn}`` (either may be left out; default 0), or
      one ``fn`` for both; ``fn(observation, action, info) -> float``. A fn that raises or returns
      something that is not a finite number undoes the step: the world, the cycle count and the
      agents are as before it.
    - ``render_mode``: ``None`` (default) or ``"rgb_array"`` (the newest frame).

    The arguments from ``world`` on, except ``events`` and ``director_text``, are those of
    :class:`AgentEnvOptions` (checked there; ``env.options`` holds them), and are passed by keyword
    after ``director_text``.

    ``reset(seed, options)`` passes ``options`` to the world (``image``/``prompt`` for YumeWorld,
    ``event`` for the procedural world). Infos are the world's info for each agent, plus
    ``"action"``: the merged action of the block.
    """

    metadata = {"name": "yume_directed_world_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        world: str = "yume",
        world_kwargs: dict | None = None,
        events: Sequence[str] | None = None,
        director_text: bool = False,
        **options,
    ):
        options = _options_of(
            "DirectedWorldEnv",
            ("events", "director_text"),
            {"world": world, "world_kwargs": world_kwargs, **options},
        )
        if not isinstance(director_text, bool):
            raise TypeError(f"director_text: got {director_text!r}; accepted: True or False")
        self.director_text = director_text
        self.catalog = PROCEDURAL_EVENTS if events is None else EventCatalog(events)
        self.events = self.catalog.texts
        self._setup(options, ["explorer", "director"])
        self.world = options.make_world()
        self._observe = self._observer(self.world.observation_space, self.world)
        explorer = spaces.Dict({"move": spaces.Discrete(len(MOVES)), "look": spaces.Discrete(len(LOOKS))})
        director = event_text_space() if director_text else self.catalog.space
        self.action_spaces = {"explorer": explorer, "director": director}
        self._last_frame: np.ndarray | None = None

    # -- actions
    def event_of(self, director_action) -> str:
        """The event text of a director action (catalog index or text)."""
        if self.director_text:
            return check_event(director_action, "actions['director']")
        return self.catalog.decode(director_action, "actions['director']")

    def merge(self, actions: Mapping) -> dict:
        """The world action ``{"move", "look", "event"}`` of the two agents' actions."""
        self._check_actions(actions)
        explorer = actions["explorer"]
        if isinstance(explorer, Mapping) and "event" in explorer:
            raise ValueError(
                "actions['explorer']: got an 'event'; accepted: 'move' and 'look' only (events come from the director)"
            )
        try:
            a = parse_action(explorer)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"actions['explorer']: {exc}") from None
        return Action(a.move, a.look, self.event_of(actions["director"])).as_dict()

    # -- ParallelEnv API
    def reset(self, seed: int | None = None, options: dict | None = None):
        opts = _world_options(options, self._option_keys)
        obs, info = self.world.reset(seed=seed, options=opts or None)
        self.agents = list(self.possible_agents)
        self._cycles = 0
        self._remember(obs)
        seen = self._observe(obs)
        return (
            {a: _copy(seen) for a in self.agents},
            {a: dict(info) for a in self.agents},
        )

    def step(self, actions):
        if not self.agents:
            raise gym.error.ResetNeeded("step with no live agents: the episode ended; call reset()")
        merged = self.merge(actions)
        # the generic snapshot (episode RNG and counters included), also for a world whose own
        # snapshot() has another format; taken only when a reward fn could fail after the step
        before = WorldEnv.snapshot(self.world) if self.reward_fns else None
        obs, _, terminated, truncated, info = self.world.step(merged)
        try:
            seen = self._observe(obs)
            observations = {a: _copy(seen) for a in self.agents}
            rewards = self._rewards(
                observations, dict.fromkeys(self.agents, merged), dict.fromkeys(self.agents, info)
            )
        except BaseException:
            if before is not None:
                self.world.restore(before)
            raise
        self._cycles += 1
        self._remember(obs)
        ended = bool(terminated or truncated or self._cycles >= self.max_cycles)
        terminations = dict.fromkeys(self.agents, bool(terminated))
        truncations = dict.fromkeys(self.agents, ended and not terminated)
        infos = {a: {**info, "action": dict(merged)} for a in self.agents}
        if ended:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _remember(self, obs) -> None:
        if isinstance(obs, np.ndarray) and obs.dtype == np.uint8:
            self._last_frame = (obs[-1] if obs.ndim == 4 else obs).copy()

    def render(self):
        if not self._can_render():
            return None
        return None if self._last_frame is None else self._last_frame.copy()

    def close(self):
        self.world.close()


# ---------------------------------------------------------------------------------------------- explorers
def _unbatch(infos: dict, i: int) -> dict:
    """World ``i``'s info out of a Gymnasium vector info dict (arrays plus ``_key`` masks)."""
    out = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get("_" + key)
        if mask is not None and not mask[i]:
            continue
        if isinstance(value, dict):
            out[key] = _unbatch(value, i)
        elif isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype != object:
            out[key] = value[i].item()
        else:
            out[key] = value[i]
    return out


class ExplorersEnv(_AgentEnv):
    """N explorers, each moving the camera of its OWN world; the worlds are stepped as one batch.

    Agent ``"explorer_i"`` acts in world ``i`` only and observes only that world's frames; nothing
    one explorer does is seen by another (see the module docs: one camera per world). With
    ``world="yume"``, all N worlds are denoised in ONE batched forward of ONE shared model
    (:class:`~yume_env.envs.vector.YumeWorldVectorEnv`'s engine, frames bit-identical to a single
    world); with ``world="procedural"``, the N procedural worlds are rendered one after another.

    ## Action spaces

    - ``events=None`` (default): ``Dict(move=Discrete(9), look=Discrete(9))``.
    - ``events="text"``: ``YumeWorld-v0``'s full action space, ``Dict(move, look, event=Text(0..300))``.
    - ``events=[...]`` (a catalog): ``Dict(move, look, event=Discrete(1 + len(events)))``, 0 keeps
      the current event, ``i`` sends ``events[i - 1]``.

    ## Arguments

    - ``num_explorers``: N >= 1.
    - ``world``, ``world_kwargs``: as in :class:`DirectedWorldEnv`; with ``"yume"``, ``image`` and
      ``prompt`` in ``world_kwargs`` may be lists with one entry per world.
    - ``channel_first``, ``size``, ``frames``, ``max_cycles``, ``render_mode``: as in
      :class:`DirectedWorldEnv` (``render()`` puts the worlds' newest frames side by side), by
      keyword (they are :class:`AgentEnvOptions`, held in ``env.options``).
    - ``reward_fns``: ``{"explorer_0": fn, ...}`` or one ``fn`` for every explorer,
      ``fn(observation, action, info) -> float`` (default 0). A fn that raises or returns something
      that is not a finite number undoes the step: every world, the cycle count and the agents are
      as before it.

    ``reset(seed=s)`` seeds world ``i`` with ``s + i`` (as the vector env does).
    """

    metadata = {"name": "yume_explorers_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        num_explorers: int = 2,
        world: str = "yume",
        world_kwargs: dict | None = None,
        events: Sequence[str] | str | None = None,
        **options,
    ):
        if isinstance(num_explorers, bool) or not isinstance(num_explorers, int) or num_explorers < 1:
            raise ValueError(f"num_explorers: got {num_explorers!r}; accepted: an integer >= 1")
        options = _options_of(
            "ExplorersEnv",
            ("num_explorers", "events"),
            {"world": world, "world_kwargs": world_kwargs, **options},
        )
        self.num_explorers = num_explorers
        if events is None or events == "text":
            self.catalog: EventCatalog | None = None
            self.events: tuple[str, ...] | None = None
            self.event_mode = "none" if events is None else "text"
        else:
            self.catalog = EventCatalog(events)
            self.events = self.catalog.texts
            self.event_mode = "catalog"
        self._setup(options, [f"explorer_{i}" for i in range(num_explorers)])
        self.vector = options.make_worlds(num_explorers)
        self._observe = self._observer(self.vector.single_observation_space, self.vector)
        entries = {"move": spaces.Discrete(len(MOVES)), "look": spaces.Discrete(len(LOOKS))}
        if self.event_mode == "text":
            entries["event"] = event_text_space()
        elif self.event_mode == "catalog":
            entries["event"] = self.catalog.space
        # one space object per agent, so that seeding one agent's space does not affect another's
        self.action_spaces = {a: spaces.Dict(dict(entries)) for a in self.possible_agents}
        self._last_frames: list[np.ndarray | None] = [None] * num_explorers

    # -- actions
    def world_action(self, agent: str, action) -> dict:
        """The ``{"move", "look", "event"}`` world action of one explorer's action."""
        if not isinstance(action, Mapping):
            raise TypeError(
                f"actions[{agent!r}]: got {type(action).__name__}; accepted: a dict with 'move' and 'look'"
                + ("" if self.event_mode == "none" else " and 'event'")
            )
        action = dict(action)
        if self.event_mode == "none" and "event" in action:
            raise ValueError(
                f"actions[{agent!r}]: got an 'event'; this env was built with events=None (move and look "
                "only); pass events='text' or an event catalog to let explorers send events"
            )
        if self.event_mode == "catalog" and "event" in action:
            try:
                action["event"] = self.catalog.decode(action["event"], f"actions[{agent!r}]['event']")
            except TypeError as exc:
                raise ValueError(str(exc)) from None
        try:
            a = parse_action(action)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"actions[{agent!r}]: {exc}") from None
        return a.as_dict()

    # -- ParallelEnv API
    def reset(self, seed: int | None = None, options: dict | None = None):
        opts = _world_options(options, self._option_keys)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ValueError(f"seed: got {seed!r}; accepted: an integer or None")
        # the vector env seeds world i with seed + i, as N single worlds reset with seed + i
        vector_opts = {self._option_keys[k]: v for k, v in opts.items()}
        batch, vinfo = self.vector.reset(seed=seed, options=vector_opts or None)
        obs = list(batch)
        infos = [_unbatch(vinfo, i) for i in range(self.num_explorers)]
        self.agents = list(self.possible_agents)
        self._cycles = 0
        self._remember(obs)
        return (
            {a: self._observe(obs[i]) for i, a in enumerate(self.possible_agents)},
            {a: infos[i] for i, a in enumerate(self.possible_agents)},
        )

    def step(self, actions):
        if not self.agents:
            raise gym.error.ResetNeeded("step with no live agents: the episode ended; call reset()")
        self._check_actions(actions)
        world_actions = [self.world_action(a, actions[a]) for a in self.possible_agents]
        batched = {
            "move": np.array([w["move"] for w in world_actions], dtype=np.int64),
            "look": np.array([w["look"] for w in world_actions], dtype=np.int64),
            "event": tuple(w["event"] for w in world_actions),
        }
        n = self.num_explorers
        # taken only when a reward fn could fail after the step
        before = [self.vector.snapshot_world(i) for i in range(n)] if self.reward_fns else None
        batch, _, term, trunc, vinfo = self.vector.step(batched)
        try:
            infos = {a: _unbatch(vinfo, i) for i, a in enumerate(self.possible_agents)}
            observations = {a: self._observe(batch[i]) for i, a in enumerate(self.possible_agents)}
            acts = dict(zip(self.possible_agents, world_actions))
            rewards = self._rewards(observations, acts, infos)
        except BaseException:
            for i, snapshot in enumerate(before or ()):
                self.vector.restore_world(i, snapshot)
            raise
        self._cycles += 1
        self._remember(list(batch))
        terminated = [bool(t) for t in term]
        ended = self._cycles >= self.max_cycles or any(terminated) or any(bool(t) for t in trunc)
        terms = {a: terminated[i] for i, a in enumerate(self.possible_agents)}
        truncs = {a: ended and not terminated[i] for i, a in enumerate(self.possible_agents)}
        if ended:
            self.agents = []
        return observations, rewards, terms, truncs, infos

    def _remember(self, obs: list) -> None:
        for i, o in enumerate(obs):
            if isinstance(o, np.ndarray) and o.dtype == np.uint8:
                self._last_frames[i] = (o[-1] if o.ndim == 4 else o).copy()

    def render(self):
        """The worlds' newest frames side by side, ``(H, N * W, 3)`` uint8."""
        if not self._can_render() or any(f is None for f in self._last_frames):
            return None
        return np.concatenate(self._last_frames, axis=1)

    def close(self):
        self.vector.close()
