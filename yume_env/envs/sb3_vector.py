"""``GymVectorToSB3``: a Gymnasium vector env as a stable-baselines3 ``VecEnv``.

stable-baselines3 steps its own ``VecEnv`` type, not Gymnasium's ``VectorEnv``. This adapter lets
SB3 train on any Gymnasium vector env that resets ended worlds inside the ending step
(``autoreset_mode=SAME_STEP``, which is SB3's own convention): the in-process
``gym.make_vec("YumeWorld-v0", ...)`` or worlds on Ray workers
(``gym.make_vec(..., workers=W)``). Actions pass through unchanged: wrap the vector env first
(e.g. ``gymnasium.wrappers.vector.TransformAction``) to give SB3 an action space it takes.
Observations can be changed here with ``observation_fn`` (e.g. keep the last frame of a block),
which also applies to the terminal observations SB3 bootstraps from (a Gymnasium observation
wrapper leaves ``final_obs`` in the infos as it was).

Per-world infos are unbatched from Gymnasium's vector infos; an ended world's info is its last
step's (``final_info``) with ``terminal_observation`` and ``TimeLimit.truncated`` added, as SB3's
``DummyVecEnv`` does. Wrap the adapter in ``VecMonitor`` for episode statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv


def unbatch_infos(infos: dict, num_envs: int) -> list[dict]:
    """One info dict per world from Gymnasium vector infos (values with their ``_key`` mask set)."""
    out: list[dict] = [{} for _ in range(num_envs)]
    for key, value in infos.items():
        if key.startswith("_") and key[1:] in infos:
            continue
        mask = infos.get(f"_{key}", np.ones(num_envs, dtype=bool))
        per_world = unbatch_infos(value, num_envs) if isinstance(value, dict) else value
        for i in range(num_envs):
            if mask[i]:
                item = per_world[i]
                out[i][key] = item.item() if isinstance(item, np.generic) else item
    return out


class GymVectorToSB3(VecEnv):
    """stable-baselines3's ``VecEnv`` over a Gymnasium ``VectorEnv`` with ``SAME_STEP`` autoreset.

    ``observation_fn(batch) -> batch`` with ``observation_space`` (one world's space) changes the
    observations SB3 sees, terminal ones included. ``seed(s)`` seeds world i with ``s + i`` at the next ``reset`` (SB3's convention and the vector
    env's). ``get_attr``/``set_attr`` reach the vector env itself (the same object for every index);
    ``env_method`` calls a method of the vector env once and returns its result for each index.
    """

    def __init__(
        self,
        venv: gym.vector.VectorEnv,
        observation_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        observation_space: gym.spaces.Space | None = None,
    ):
        if (observation_fn is None) != (observation_space is None):
            raise ValueError(
                "observation_fn / observation_space: got only one; accepted: both (the function maps a "
                "batch of observations, the space is one world's result) or neither"
            )
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"venv: autoreset_mode {mode!r}; accepted: AutoresetMode.SAME_STEP (stable-baselines3 "
                "expects ended worlds to be reset inside the ending step)"
            )
        self.venv = venv
        self.observation_fn = observation_fn
        self._actions = None
        space = venv.single_observation_space if observation_space is None else observation_space
        super().__init__(venv.num_envs, space, venv.single_action_space)

    def _observe(self, batch):
        return batch if self.observation_fn is None else self.observation_fn(batch)

    def reset(self):
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        if any(self._options):
            raise ValueError("reset options: per-world options are not supported by GymVectorToSB3")
        obs, infos = self.venv.reset(seed=seeds)
        self.reset_infos = unbatch_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return self._observe(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = np.asarray(terminated) | np.asarray(truncated)
        now = unbatch_infos(infos, self.num_envs)
        final = unbatch_infos(infos.get("final_info", {}), self.num_envs)
        step_infos = []
        for i in range(self.num_envs):
            if dones[i]:
                info = dict(final[i])
                # a writable copy: final_obs may be a read-only view (Ray's object store)
                last = self._observe(np.asarray(infos["final_obs"][i])[None])[0]
                info["terminal_observation"] = np.array(last, copy=True)
                self.reset_infos[i] = {
                    k: v for k, v in now[i].items() if k not in ("final_obs", "final_info")
                }
            else:
                info = now[i]
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            step_infos.append(info)
        return self._observe(obs), np.asarray(rewards, dtype=np.float32), dones, step_infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
