"""A learned agent: stable-baselines3 PPO on the wrapped environment.

- :func:`train_ppo` trains PPO's ``CnnPolicy`` on ``YumeProcedural-v0`` or ``YumeWorld-v0`` wrapped
  with :class:`~yume_env.envs.wrappers.ChannelFirstFrames` and
  :class:`~yume_env.envs.wrappers.DiscreteActions`, and saves ``<name>.zip`` (stable-baselines3's
  format) plus ``<name>.json`` (the wrapper settings, spaces and training record).
- :class:`PPOPolicy` loads that pair and acts in the *unwrapped* env (frames in, ``{"move", "look",
  "event"}`` out), so it runs wherever the other agents run (benchmark, examples).
- :class:`PoseInstructionReward` is the training signal for a fixed instruction in the procedural
  world: how closely each block's camera motion (from the pose ground truth in ``info``) matches the
  instruction's :func:`~agents.instruction_follower.plan`.

Loading is safe: :class:`PPOPolicy` rebuilds the network from the JSON file and reads only the
weights (``policy.pth`` inside the zip) with ``torch.load(weights_only=True)``; it never unpickles
the rest of the archive (stable-baselines3's own ``PPO.load`` would). A PPO model trained in the same
process can be used directly with :meth:`PPOPolicy.from_model`.

The policy was trained for one instruction; the instruction given to ``reset`` is not an input of
the network (it is kept in :attr:`PPOPolicy.instruction` from training, for reference).
"""

from __future__ import annotations

import io
import json
import math
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from agents.instruction_follower import plan
from yume_env.actions import LOOK_VECTORS, MOVE_VECTORS
from yume_env.envs.wrappers import ChannelFirstFrames, DiscreteActions, wrap_sb3

__all__ = [
    "PPOPolicy",
    "PoseInstructionReward",
    "TrainResult",
    "make_training_env",
    "train_ppo",
]

FORMAT = "yume-env-ppo/1"


# ---------------------------------------------------------------------------------------------- reward
class PoseInstructionReward(gym.Wrapper):
    """Reward = how closely each block's camera motion matches the instruction (pose ground truth).

    Needs an env whose ``info`` carries the camera pose per frame (``position``, ``yaw``, ``pitch``:
    ``YumeProcedural-v0``). The instruction's :func:`~agents.instruction_follower.plan` gives the
    intended motion of block ``k`` of the episode (the last planned block is repeated after the
    plan ends, so "turn right" asks for a right pan on every block). Per block:

    - measured ``m = (forward, right, yaw, pitch)``: the displacement along and across the heading at
      the block's start, in units of ``move_speed``, and the yaw and pitch changes in units of
      ``turn_speed`` / ``tilt_speed``;
    - intended ``d``: the planned move and look as unit motions (a diagonal move is ``1/sqrt(2)``
      along each axis, as the world moves it);
    - ``reward = 1 - ||m - d||``: 1 for exactly the instructed motion, 0 for standing still when
      asked to move one unit (or one extra unit of motion), negative for the opposite motion.

    Walls (collisions) and the pitch limit cut the measured motion, so they lower the reward.
    ``info["instruction_motion"]`` holds ``m`` and ``info["instructed_motion"]`` holds ``d``.
    """

    def __init__(self, env: gym.Env, instruction: str):
        super().__init__(env)
        base = env.unwrapped
        rates = {}
        for name in ("move_speed", "turn_speed", "tilt_speed"):
            value = getattr(base, name, None)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(
                    f"env: {type(base).__name__} has no {name}; accepted: an env with the camera pose "
                    "in info and move/turn/tilt speeds (YumeProcedural-v0)"
                )
            rates[name] = float(value)
        self.rates = rates
        self.instruction = instruction
        self.plan = plan(
            instruction,
            turn_degrees=rates["turn_speed"] or 1.0,
            tilt_degrees=rates["tilt_speed"] or 1.0,
            meters_per_block=rates["move_speed"] or 1.0,
        )
        self.targets = [self._target(a) for a in self.plan]
        self._pose: tuple[np.ndarray, float, float] | None = None
        self._k = 0

    @staticmethod
    def _target(action: dict) -> np.ndarray:
        f, r = MOVE_VECTORS[action["move"]]
        norm = math.hypot(f, r) or 1.0
        yaw, pitch = LOOK_VECTORS[action["look"]]
        return np.array([f / norm, r / norm, yaw, pitch], np.float64)

    @staticmethod
    def _last_pose(info: dict) -> tuple[np.ndarray, float, float]:
        missing = [k for k in ("position", "yaw", "pitch") if k not in info]
        if missing:
            raise ValueError(
                f"PoseInstructionReward: info has no {missing}; accepted: an env that reports the camera "
                "pose per frame in info (YumeProcedural-v0)"
            )
        return (
            np.asarray(info["position"], np.float64)[-1],
            float(np.asarray(info["yaw"])[-1]),
            float(np.asarray(info["pitch"])[-1]),
        )

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._pose = self._last_pose(info)
        self._k = 0
        return obs, info

    def measure(self, info: dict) -> np.ndarray:
        """The measured motion ``(forward, right, yaw, pitch)`` of the block just stepped."""
        pos0, yaw0, pitch0 = self._pose
        pos1, yaw1, pitch1 = self._last_pose(info)
        a = math.radians(yaw0)
        fwd_vec, right_vec = np.array([math.sin(a), math.cos(a)]), np.array([math.cos(a), -math.sin(a)])
        dxz = pos1[[0, 2]] - pos0[[0, 2]]
        move = self.rates["move_speed"] or 1.0
        dyaw = (yaw1 - yaw0 + 180.0) % 360.0 - 180.0
        return np.array(
            [
                float(dxz @ fwd_vec) / move,
                float(dxz @ right_vec) / move,
                dyaw / (self.rates["turn_speed"] or 1.0),
                (pitch1 - pitch0) / (self.rates["tilt_speed"] or 1.0),
            ]
        )

    def step(self, action):
        if self._pose is None:
            raise gym.error.ResetNeeded("step before reset: call env.reset() first")
        obs, _, terminated, truncated, info = self.env.step(action)
        m = self.measure(info)
        d = self.targets[min(self._k, len(self.targets) - 1)]
        reward = 1.0 - float(np.linalg.norm(m - d))
        self._pose = self._last_pose(info)
        self._k += 1
        info = {**info, "instruction_motion": m, "instructed_motion": d}
        return obs, reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------- envs
def make_training_env(
    env_id: str = "YumeProcedural-v0",
    env_kwargs: dict | None = None,
    instruction: str | None = None,
    **wrapper_kwargs,
) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)``, with :class:`PoseInstructionReward` for ``instruction``
    (when given) and the SB3 wrappers (``wrapper_kwargs`` go to :func:`yume_env.envs.wrappers.wrap_sb3`)."""
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        raise TypeError(f"env_kwargs: got {type(env_kwargs).__name__}; accepted: a dict or None")
    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        if instruction is not None:
            env = PoseInstructionReward(env, instruction)
        return wrap_sb3(env, **wrapper_kwargs)
    except Exception:
        env.close()
        raise


# ---------------------------------------------------------------------------------------------- policy
class _SpaceOnly(gym.Env):
    """Carries an observation space so that :class:`ChannelFirstFrames` can convert raw frames."""

    def __init__(self, space: spaces.Box):
        self.observation_space = space
        self.action_space = spaces.Discrete(1)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


class PPOPolicy:
    """A trained PPO ``CnnPolicy`` acting in the unwrapped env: raw frames in, Yume action dict out.

    Args:
        path: the ``.zip`` written by :func:`train_ppo` (its ``.json`` must sit next to it).
        deterministic: take the most likely action (default) instead of sampling.
        device: torch device for the network (default ``"cpu"``).

    Observations go through the same :class:`ChannelFirstFrames` conversion as in training (resize,
    frame selection); the network's ``Discrete`` index is decoded with the training
    :class:`DiscreteActions` table.
    """

    name = "ppo"

    def __init__(self, path: str | Path, deterministic: bool = True, device: str | torch.device = "cpu"):
        path = Path(path)
        if path.suffix != ".zip":
            path = path.with_suffix(".zip") if not path.is_file() else path
        if not path.is_file():
            raise FileNotFoundError(
                f"path: {str(path)!r} does not exist; accepted: a model .zip from train_ppo"
            )
        meta_path = _sidecar(path)
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"path: {str(meta_path)!r} is missing; accepted: a model saved by train_ppo (a .zip with its "
                ".json). For a PPO model in memory use PPOPolicy.from_model(model, ...)"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format {meta.get('format')!r}; accepted: {FORMAT!r}")
        from stable_baselines3.common.policies import ActorCriticCnnPolicy

        obs_space = spaces.Box(0, 255, shape=tuple(meta["observation_shape"]), dtype=np.uint8)
        act_space = spaces.Discrete(int(meta["n_actions"]))
        network = ActorCriticCnnPolicy(obs_space, act_space, lambda _: 0.0, **meta["policy_kwargs"])
        with zipfile.ZipFile(path) as archive:
            if "policy.pth" not in archive.namelist():
                raise ValueError(
                    f"path: {str(path)!r} has no policy.pth; accepted: a stable-baselines3 PPO zip"
                )
            state = torch.load(io.BytesIO(archive.read("policy.pth")), map_location="cpu", weights_only=True)
        network.load_state_dict(state)
        self._setup(network.to(device), meta["wrappers"], deterministic)
        self.instruction = meta.get("instruction") or ""
        self.meta = meta

    @classmethod
    def from_model(
        cls,
        model,
        size: tuple[int, int] | None = (64, 64),
        frames: str | int = "last",
        events: Sequence[str] | None = None,
        moves: Sequence[int | str] | None = None,
        looks: Sequence[int | str] | None = None,
        deterministic: bool = True,
        instruction: str = "",
    ) -> PPOPolicy:
        """A policy around a stable-baselines3 model in memory, trained with these wrapper settings."""
        self = cls.__new__(cls)
        wrappers = {"size": size, "frames": frames, "events": events, "moves": moves, "looks": looks}
        self._setup(model.policy, wrappers, deterministic)
        self.instruction = instruction
        self.meta = {"wrappers": wrappers}
        return self

    def _setup(self, network, wrappers: dict, deterministic: bool) -> None:
        self.network = network
        self.network.set_training_mode(False)
        self.deterministic = bool(deterministic)
        self.size = None if wrappers["size"] is None else tuple(wrappers["size"])
        self.frames = wrappers["frames"]
        # the action table: DiscreteActions over a stand-in env with the Yume action space
        from yume_env.envs.spaces import action_space

        stand_in = _SpaceOnly(spaces.Box(0, 255, shape=(1, 8, 8, 3), dtype=np.uint8))
        stand_in.action_space = action_space()
        self.actions = DiscreteActions(
            stand_in, events=wrappers["events"], moves=wrappers["moves"], looks=wrappers["looks"]
        )
        n = getattr(network.action_space, "n", None)
        if n != self.actions.action_space.n:
            raise ValueError(
                f"wrappers: {self.actions.action_space.n} actions from events/moves/looks, but the network "
                f"has {n}; pass the settings it was trained with"
            )
        self._converter: ChannelFirstFrames | None = None
        self._converter_shape: tuple | None = None

    def convert(self, observation) -> np.ndarray:
        """The network's input ``(C, H, W)`` uint8 for a raw observation ``(T, H, W, 3)`` or ``(H, W, 3)``."""
        obs = np.asarray(observation)
        if obs.dtype != np.uint8 or obs.ndim not in (3, 4) or obs.shape[-1] != 3:
            raise ValueError(
                f"observation: got {obs.dtype} array of shape {obs.shape}; accepted: uint8 frames "
                "(T, H, W, 3) or (H, W, 3)"
            )
        if self._converter_shape != obs.shape:
            self._converter = ChannelFirstFrames(
                _SpaceOnly(spaces.Box(0, 255, shape=obs.shape, dtype=np.uint8)),
                size=self.size,
                frames=self.frames,
            )
            self._converter_shape = obs.shape
        x = self._converter.observation(obs)
        expected = self.network.observation_space.shape
        if x.shape != expected:
            raise ValueError(
                f"observation: converts to {x.shape}, the network expects {expected}; use the resolution "
                "(or size) the policy was trained with"
            )
        return x

    def reset(self, instruction: str = "", seed: int | None = None) -> None:
        if seed is not None:
            torch.manual_seed(int(seed))

    def act(self, observation, info: dict | None = None) -> dict:
        x = self.convert(observation)
        index, _ = self.network.predict(x, deterministic=self.deterministic)
        return self.actions.decode(int(np.asarray(index).reshape(())))


# ---------------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """What :func:`train_ppo` produced: the saved model, and the learning curve of its episodes."""

    path: Path
    episode_end_steps: list[int] = field(default_factory=list)  # timesteps when each episode ended
    episode_returns: list[float] = field(default_factory=list)
    seconds: float = 0.0
    model: object = None

    def policy(self, deterministic: bool = True) -> PPOPolicy:
        return PPOPolicy(self.path, deterministic=deterministic)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: got {value!r}; accepted: an integer >= 1")
    return int(value)


def train_ppo(
    out: str | Path,
    *,
    env_id: str = "YumeProcedural-v0",
    env_kwargs: dict | None = None,
    instruction: str | None = "turn right",
    total_timesteps: int = 2048,
    seed: int = 0,
    size: tuple[int, int] | None = (48, 80),
    frames: str | int = "last",
    events: Sequence[str] | None = None,
    moves: Sequence[int | str] | None = None,
    looks: Sequence[int | str] | None = None,
    n_steps: int = 256,
    batch_size: int = 64,
    n_epochs: int = 4,
    learning_rate: float = 3e-4,
    gamma: float = 0.9,
    ent_coef: float = 0.01,
    features_dim: int = 128,
    name: str = "ppo_model",
    callback: Callable | None = None,
    torch_threads: int | None = 1,
    verbose: int = 0,
) -> TrainResult:
    """Train PPO (``CnnPolicy``) on ``env_id`` wrapped for SB3 and save ``out/<name>.zip`` + ``.json``.

    ``instruction`` adds :class:`PoseInstructionReward` (procedural world only; pass ``None`` and a
    ``reward_fn`` in ``env_kwargs`` for other rewards). ``env_kwargs`` go to ``gym.make``, e.g.
    ``{"resolution": (48, 80), "frames_per_block": 4, "max_episode_steps": 16}``. Episodes must
    end (set ``max_episode_steps``) for the learning curve to have points. The returned
    :class:`TrainResult` holds the episode returns in training order and the timestep at which each
    ended. ``torch_threads`` sets torch's CPU threads during training (restored after; one thread is
    fastest for this small network on a busy CPU; ``None`` leaves it alone).
    """
    import time

    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import HumanOutputFormat, Logger
    from stable_baselines3.common.monitor import Monitor

    total_timesteps = _positive_int("total_timesteps", total_timesteps)
    n_steps = _positive_int("n_steps", n_steps)
    batch_size = _positive_int("batch_size", batch_size)
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"name: got {name!r}; accepted: a file name without folders")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wrappers = {
        "size": None if size is None else list(size),
        "frames": frames,
        "events": None if events is None else list(events),
        "moves": None if moves is None else list(moves),
        "looks": None if looks is None else list(looks),
    }
    env = make_training_env(
        env_id, env_kwargs, instruction, size=size, frames=frames, events=events, moves=moves, looks=looks
    )
    env = Monitor(env)
    policy_kwargs = {"features_extractor_kwargs": {"features_dim": int(features_dim)}}
    threads_before = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(_positive_int("torch_threads", torch_threads))
    t0 = time.perf_counter()
    try:
        model = PPO(
            "CnnPolicy",
            env,
            n_steps=n_steps,
            batch_size=batch_size,
            n_epochs=n_epochs,
            learning_rate=learning_rate,
            gamma=gamma,
            ent_coef=ent_coef,
            policy_kwargs=policy_kwargs,
            seed=seed,
            device="cpu",
            verbose=verbose,
        )
        # SB3's default logger creates a /tmp/SB3-<date> folder per run even when it writes nothing.
        model.set_logger(
            Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose else [])
        )
        model.learn(total_timesteps=total_timesteps, callback=callback)
        returns = [float(r) for r in env.get_episode_rewards()]
        lengths = [int(n) for n in env.get_episode_lengths()]
    finally:
        env.close()
        torch.set_num_threads(threads_before)
    seconds = time.perf_counter() - t0
    path = out / f"{name}.zip"
    model.save(path)
    meta = {
        "format": FORMAT,
        "algorithm": "PPO",
        "policy": "CnnPolicy",
        "policy_kwargs": policy_kwargs,
        "observation_shape": list(model.observation_space.shape),
        "n_actions": int(model.action_space.n),
        "wrappers": wrappers,
        "env_id": env_id,
        "env_kwargs": json.loads(json.dumps(env_kwargs or {}, default=repr)),
        "instruction": instruction,
        "total_timesteps": total_timesteps,
        "seed": seed,
        "hyperparameters": {
            "n_steps": n_steps,
            "batch_size": batch_size,
            "n_epochs": n_epochs,
            "learning_rate": learning_rate,
            "gamma": gamma,
            "ent_coef": ent_coef,
        },
        "seconds": round(seconds, 2),
    }
    _sidecar(path).write_text(json.dumps(meta, indent=2) + "\n")
    return TrainResult(
        path=path,
        episode_end_steps=[int(s) for s in np.cumsum(lengths)],
        episode_returns=returns,
        seconds=seconds,
        model=model,
    )
