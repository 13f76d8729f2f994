"""``gym.make_vec("YumeWorld-v0", num_envs=N)``: N worlds batched through ONE model.

Every ``step`` denoises the next block of all N worlds in one batch (never N model copies). World i
produces the frames a single ``YumeWorld-v0`` produces with the same seed and actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from yume_env.envs.model_cache import get_decoder, get_runtime_model
from yume_env.envs.spaces import action_space
from yume_env.envs.validation import (
    call_reward,
    check_episode_args,
    check_event,
    check_options,
    check_vector_args,
    parse_batched_actions,
)
from yume_env.envs.yume_world import (
    DEFAULT_IMAGE,
    RewardFn,
    check_obs_mode,
    observation_from,
    observation_space_for,
)
from yume_env.world.captions import SpeedFields
from yume_env.world.images import load_image
from yume_env.world.stream import WorldSnapshot, WorldStream


def _per_world(value, n: int, name: str) -> list:
    """A single value for every world, or a list/tuple with one entry per world."""
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"{name}: got {len(value)} entries; accepted: one value, or one per world ({n})")
        return list(value)
    return [value] * n


@dataclass(frozen=True)
class VectorWorldSnapshot:
    """One world of a :class:`YumeWorldVectorEnv` at one moment: the world itself and its episode
    (steps taken, whether it ended, the RNG that seeds its next autoreset, its last observation).

    Restoring it into any vector env built with the same arguments continues the world exactly.
    It pickles, so it can travel between processes and machines.
    """

    world: WorldSnapshot
    steps: int
    ended: bool
    rng_state: dict
    observation: np.ndarray


class YumeWorldVectorEnv(VectorEnv):
    """N ``YumeWorld-v0`` worlds stepped as one batch on one shared model.

    Accepts the arguments of :class:`~yume_env.envs.yume_world.YumeWorldEnv`, plus:

    - ``num_envs``: N.
    - ``image`` / ``prompt``: one value for all worlds, or a list with one per world.
    - ``autoreset_mode``: ``AutoresetMode.NEXT_STEP`` (default; the step after an episode ends
      returns the reset observation with reward 0), ``SAME_STEP`` (reset inside the ending step; the
      last observation and info go to ``info["final_obs"]`` / ``info["final_info"]``) or ``DISABLED``
      (reset ended worlds yourself with ``reset(options={"reset_mask": mask})``).

    Actions are the batched Dict space: ``{"move": int array (N,), "look": int array (N,),
    "event": tuple of N str}``. Infos are Gymnasium vector infos (arrays plus ``_key`` masks).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 16, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        image=None,
        prompt: str | Sequence[str] = "",
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
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ):
        num_envs, autoreset_mode = check_vector_args(num_envs, autoreset_mode)
        check_episode_args(render_mode, max_episode_steps, reward_fn)
        self.num_envs = num_envs
        self.obs_mode = check_obs_mode(obs_mode)
        self.render_mode = render_mode
        self.reward_fn = reward_fn
        self.max_episode_steps = max_episode_steps
        self.autoreset_mode = autoreset_mode
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
        self.prompts = [check_event(p, "prompt") for p in _per_world(prompt, num_envs, "prompt")]
        self.images = [
            DEFAULT_IMAGE if img is None and not p.strip() else img
            for img, p in zip(_per_world(image, num_envs, "image"), self.prompts)
        ]
        self.model, self.threads = get_runtime_model(model, checkpoint, device, dtype, threads, compile)
        self.stream = WorldStream(
            self.model,
            num_worlds=num_envs,
            resolution=resolution,
            steps=steps,
            shift=shift,
            decode="none" if self.obs_mode == "latent" else decode,
            fit=fit,
            speed=speed,
            max_history=max_history,
            decoder=get_decoder(self.model, decoder, decoder_path, decode_dtype),
            last_frame_only=self.obs_mode == "last_frame",
            reuse_history_kv=reuse_history_kv,
        )
        for img in self.images:
            if img is not None:
                load_image(img, self.stream.resolution, fit)
        self.single_observation_space = observation_space_for(self.stream, self.obs_mode)
        self.single_action_space = action_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._ended = np.zeros(num_envs, dtype=bool)
        self._last_obs: list = [None] * num_envs

    # ------------------------------------------------------------------ helpers
    def _reset_world(self, i: int, image=None, prompt: str | None = None):
        world_seed = int(self._rngs[i].integers(0, 2**63 - 1))
        out = self.stream.reset(
            i,
            image=self.images[i] if image is None else image,
            prompt=self.prompts[i] if prompt is None else prompt,
            seed=world_seed,
        )
        self._steps[i] = 0
        self._ended[i] = False
        obs = observation_from(out, self.obs_mode, self.stream)
        info = {**out.info, "caption": out.caption, "seed": world_seed}
        self._last_obs[i] = obs
        return obs, info

    def _batch_obs(self, obs: list) -> np.ndarray:
        return np.stack(obs)

    def _parse_actions(self, actions) -> list:
        return parse_batched_actions(actions, self.num_envs)

    # ------------------------------------------------------------------ VectorEnv API
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        """Reset all worlds (or those in ``options["reset_mask"]``). ``seed=s`` seeds world i with ``s + i``."""
        options = check_options(options, ("reset_mask", "image", "prompt"))
        unknown = set(options) - {"reset_mask", "image", "prompt"}
        if unknown:
            raise ValueError(
                f"options: got unknown keys {sorted(unknown)}; accepted: 'reset_mask', 'image', 'prompt'"
            )
        mask = options.get("reset_mask")
        if mask is None:
            mask = np.ones(self.num_envs, dtype=bool)
        mask = np.asarray(mask)
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
            raise ValueError(
                f"options['reset_mask']: got {mask!r}; accepted: a bool array of shape ({self.num_envs},)"
            )
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            if not isinstance(seed, Sequence | np.ndarray) or isinstance(seed, str):
                raise TypeError(
                    f"seed: got {type(seed).__name__}; accepted: None, an int, or one int/None per world"
                )
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(
                    f"seed: got {len(seeds)} seeds; accepted: one int, or one per world ({self.num_envs})"
                )
        for i, s in enumerate(seeds):
            if s is not None and (isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0):
                raise ValueError(f"seed[{i}]: got {s!r}; accepted: an integer >= 0 or None")
        images = _per_world(options.get("image"), self.num_envs, "options['image']")
        prompts = _per_world(options.get("prompt"), self.num_envs, "options['prompt']")
        # Check every world's inputs before any world changes: a bad entry leaves all worlds as they were.
        for i in range(self.num_envs):
            if not mask[i]:
                continue
            if prompts[i] is not None:
                prompts[i] = check_event(prompts[i], f"options['prompt'][{i}]")
            image = self.images[i] if images[i] is None else images[i]
            prompt = self.prompts[i] if prompts[i] is None else prompts[i]
            if image is None and not prompt.strip():
                raise ValueError(
                    f"options['prompt'][{i}]: world {i} has no start image and an empty prompt; "
                    "accepted: a non-empty prompt or an image"
                )
            if images[i] is not None:
                load_image(images[i], self.stream.resolution, self.stream.fit)
        saved = (
            self.stream.mark(),
            list(self._rngs),
            self._steps.copy(),
            self._ended.copy(),
            list(self._last_obs),
        )
        infos: dict = {}
        try:
            for i in range(self.num_envs):
                if not mask[i]:
                    continue
                if seeds[i] is not None:
                    self._rngs[i], _ = seeding.np_random(int(seeds[i]))
                _, info = self._reset_world(i, images[i], prompts[i])
                infos = self._add_info(infos, info, i)
        except BaseException:
            mark, self._rngs, self._steps, self._ended, self._last_obs = saved
            self.stream.rollback(mark)
            raise
        if any(o is None for o in self._last_obs):
            raise gym.error.ResetNeeded(
                "reset: every world must be reset once before the batch can be observed"
            )
        return self._batch_obs(self._last_obs), infos

    def step(self, actions):
        parsed = self._parse_actions(actions)
        if any(o is None for o in self._last_obs):
            raise gym.error.ResetNeeded("step before reset: call reset() first")
        if self.autoreset_mode == AutoresetMode.DISABLED and self._ended.any():
            ended = np.flatnonzero(self._ended).tolist()
            raise gym.error.ResetNeeded(
                f"world(s) {ended} ended; with autoreset DISABLED reset them with reset(options={{'reset_mask': mask}})"
            )
        to_reset = (
            self._ended.copy()
            if self.autoreset_mode == AutoresetMode.NEXT_STEP
            else np.zeros(self.num_envs, bool)
        )
        mark = self.stream.mark()
        outs = self.stream.step([None if to_reset[i] else a for i, a in enumerate(parsed)])
        stepped = {}  # observations, infos and rewards of every stepped world, before anything commits
        try:
            for i in range(self.num_envs):
                if to_reset[i]:
                    continue
                obs = observation_from(outs[i], self.obs_mode, self.stream)
                info = {**outs[i].info, "world": i}  # lets stateful rewards keep one memory per world
                reward = 0.0
                if self.reward_fn is not None:
                    reward = call_reward(self.reward_fn, obs, actions_of(actions, i), info)
                stepped[i] = (obs, info, reward)
        except BaseException:
            self.stream.rollback(mark)  # a failing reward_fn leaves every world as it was
            raise

        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict = {}
        obs_list = list(self._last_obs)
        for i in range(self.num_envs):
            if to_reset[i]:
                obs_list[i], info = self._reset_world(i)
                infos = self._add_info(infos, info, i)
                continue
            obs, info, rewards[i] = stepped[i]
            self._steps[i] += 1
            truncated[i] = self.max_episode_steps is not None and self._steps[i] >= self.max_episode_steps
            self._ended[i] = truncated[i]
            obs_list[i] = obs
            self._last_obs[i] = obs
            if truncated[i] and self.autoreset_mode == AutoresetMode.SAME_STEP:
                final_obs, final_info = obs, info
                obs_list[i], info = self._reset_world(i)
                info = {**info, "final_obs": final_obs, "final_info": final_info}
            infos = self._add_info(infos, info, i)
        return self._batch_obs(obs_list), rewards, terminated, truncated, infos

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        frames = [w.last_frames[-1].copy() if w.last_frames is not None else None for w in self.stream.worlds]
        return tuple(frames)

    # ------------------------------------------------------------------ branching
    def snapshot_world(self, index: int) -> VectorWorldSnapshot:
        """World ``index`` and its episode, for :meth:`restore_world` (here or in another vector env
        with the same arguments, e.g. on another Ray worker)."""
        i = self.stream._index(index)
        if self._last_obs[i] is None:
            raise gym.error.ResetNeeded(f"world {i}: snapshot before reset; call reset() first")
        return VectorWorldSnapshot(
            world=self.stream.snapshot(i),
            steps=int(self._steps[i]),
            ended=bool(self._ended[i]),
            rng_state=self._rngs[i].bit_generator.state,
            observation=np.array(self._last_obs[i], copy=True),
        )

    def restore_world(self, index: int, snapshot: VectorWorldSnapshot) -> None:
        """Put world ``index`` back to ``snapshot``: the same actions then give the same frames,
        rewards, truncations and autoresets. The snapshot stays reusable."""
        i = self.stream._index(index)
        if not isinstance(snapshot, VectorWorldSnapshot):
            raise TypeError(f"snapshot: got {type(snapshot).__name__}; accepted: VectorWorldSnapshot")
        expected = self.single_observation_space.shape
        if snapshot.observation.shape != expected:
            raise ValueError(
                f"snapshot: observation shape {snapshot.observation.shape}; accepted: {expected} "
                "(a snapshot from a vector env with the same resolution and obs_mode)"
            )
        self.stream.restore(i, snapshot.world)
        rng = np.random.default_rng()
        rng.bit_generator.state = snapshot.rng_state
        self._rngs[i] = rng
        self._steps[i] = snapshot.steps
        self._ended[i] = snapshot.ended
        self._last_obs[i] = np.array(snapshot.observation, copy=True)

    def fork_world(self, source: int, target: int) -> None:
        """Make world ``target`` an exact copy of world ``source`` (world and episode)."""
        self.restore_world(target, self.snapshot_world(source))

    def close_extras(self, **kwargs):
        if hasattr(self, "stream"):  # a constructor that failed early has none
            self.stream.worlds = [type(w)() for w in self.stream.worlds]


def actions_of(actions: dict, i: int) -> dict:
    """World ``i``'s action out of a batched action dict."""
    return {
        "move": int(np.asarray(actions["move"])[i]),
        "look": int(np.asarray(actions["look"])[i]),
        "event": actions.get("event", ("",) * (i + 1))[i],
    }
