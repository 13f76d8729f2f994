"""Writing and replaying episodes as `Minari <https://minari.farama.org>`_ datasets.

::

    from yume_env.datasets import EpisodeRecorder, env_spec_for, write_dataset, replay_episode

    spec = env_spec_for("YumeProcedural-v0", resolution=(48, 80))
    env = EpisodeRecorder(gym.make(spec))
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(8):
            env.step(env.action_space.sample())
    dataset = write_dataset("yume/procedural-random-v0", env, spec)  # then minari.load_dataset(...)
    frames = replay_episode(dataset, 0)  # the recorded observations, bit for bit

What a dataset holds, per episode (``dataset[i]`` is a ``minari.EpisodeData``):

- ``observations``: the env's observations (``reset`` first, then one per step), stored raw
  (Minari's lossy JPEG encoding of images is turned off, so frames replay bit-exactly).
- ``actions``: ``{"move": int64[N], "look": int64[N], "event": str[N]}``. Minari stores the
  ``Text`` event space as it is (HDF5 strings), so no catalog or byte encoding is needed.
- ``rewards``, ``terminations``, ``truncations``: as returned; the last step of an episode
  that ended by a ``reset`` or ``close`` (not by the env) is marked truncated.
- ``infos``: ``caption`` and ``event`` (bytes, UTF-8: Minari's HDF5 backend returns strings in
  infos as ``bytes``), ``block_index``, ``timing`` (``text_ms``, ``denoise_ms``, ``decode_ms``,
  ``encode_ms``, ``render_ms``; 0 where the world has no such stage), and per world: the
  history length (``history_latents``, ``history_dropped``) for generated worlds; the exact
  camera poses (``position``, ``yaw``, ``pitch``), ``collided``, ``event_applied`` ("" for none)
  and ``effects`` for the procedural world.
- The episode's reset ``seed`` and ``options`` (Minari episode metadata): with the dataset's env
  spec (``dataset.recover_environment()``), everything needed to replay it. A start image given
  as an array is saved losslessly as ``data/start_images/<sha256>.png`` inside the dataset and
  referenced by that relative path; :func:`episode_start` resolves it.

Minari's own ``DataCollector`` needs ``jax`` (the ``minari[create]`` extra) only to append step
data to its buffers; :class:`EpisodeRecorder` fills Minari's ``EpisodeBuffer`` itself and hands
the buffers to ``minari.create_dataset_from_buffers``, Minari's public API for that, so the files
are written by Minari.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

START_IMAGES = "start_images"


def require_minari():
    """The ``minari`` module, or an ImportError naming the extra to install."""
    try:
        import h5py  # noqa: F401  (Minari's default storage backend)
        import minari
    except ImportError as exc:
        raise ImportError(
            f"Minari datasets need the 'data' extra ({exc.name} is missing): pip install \"yume-env[data]\""
        ) from None
    return minari


def check_new_dataset(dataset_id: str, name: str = "dataset_id") -> None:
    """Refuse, before anything is played, a dataset id that is malformed or already taken
    (``name``: the parameter to name in the message)."""
    require_minari()
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.storage.datasets_root_dir import get_dataset_path

    try:
        parse_dataset_id(dataset_id)
    except Exception as exc:
        raise ValueError(
            f"{name}: got {dataset_id!r}; accepted: a Minari id such as yume/play-v0 ({exc})"
        ) from None
    if get_dataset_path(dataset_id).exists():
        raise ValueError(
            f"{name}: {dataset_id} already exists in {get_dataset_path()}; accepted: a new id "
            "(or set MINARI_DATASETS_PATH)"
        )


# ------------------------------------------------------------------------------------------ infos
_TIMING_KEYS = ("text_ms", "denoise_ms", "decode_ms", "encode_ms", "render_ms")


def dataset_info(info: Mapping[str, Any]) -> dict:
    """The parts of an env ``info`` that go into a dataset, with the same keys and types after
    ``reset`` and after ``step`` (Minari needs one structure per episode)."""
    timing = dict.fromkeys(_TIMING_KEYS, 0.0)
    t = info.get("timing")
    if t is not None:
        timing.update({k: float(v) for k, v in (t.as_dict() if hasattr(t, "as_dict") else t).items()})
    if "render_ms" in info:
        timing["render_ms"] = float(info["render_ms"])
    out: dict[str, Any] = {
        "caption": str(info.get("caption", "")),
        "event": str(info.get("event", "")),
        "block_index": np.int64(info.get("block_index", 0)),
        "timing": {k: np.float64(v) for k, v in timing.items()},
    }
    if "position" in info:  # the procedural world's ground truth
        out["position"] = np.asarray(info["position"], np.float64)
        out["yaw"] = np.asarray(info["yaw"], np.float64)
        out["pitch"] = np.asarray(info["pitch"], np.float64)
        out["collided"] = np.bool_(info.get("collided", False))
        out["event_applied"] = str(info.get("event_applied") or "")
        out["effects"] = {k: np.float64(v) for k, v in info.get("effects", {}).items()}
    else:
        out["history_latents"] = np.int64(info.get("history_latents", 0))
        out["history_dropped"] = np.int64(info.get("history_dropped", 0))
    return out


def _append(tree: dict, item: dict) -> None:
    for key, value in item.items():
        if isinstance(value, dict):
            _append(tree.setdefault(key, {}), value)
        else:
            tree.setdefault(key, []).append(value)


def _truncate(tree: dict, n: int) -> None:
    for value in tree.values():
        if isinstance(value, dict):
            _truncate(value, n)
        else:
            del value[n:]


def _action_record(action) -> dict:
    from yume_env.envs.validation import parse_action

    return parse_action(action).as_dict()


# -------------------------------------------------------------------------------------- recording
@dataclasses.dataclass
class _Episode:
    seed: int
    options: dict | None
    observations: list = dataclasses.field(default_factory=list)
    actions: dict = dataclasses.field(default_factory=dict)
    rewards: list = dataclasses.field(default_factory=list)
    terminations: list = dataclasses.field(default_factory=list)
    truncations: list = dataclasses.field(default_factory=list)
    infos: dict = dataclasses.field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.rewards)


class EpisodeRecorder(gym.Wrapper):
    """Keep every episode played through this wrapper, for :func:`write_dataset`.

    Works on ``YumeWorld-v0`` and ``YumeProcedural-v0`` (through ``gym.make`` or built directly) in
    any ``obs_mode``. ``reset(seed=None)`` draws a seed and passes it on, so every recorded episode
    can be replayed. Episodes with no step are dropped. Observations are kept in memory until the
    dataset is written: for long 5B episodes, write datasets of a few episodes at a time.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.episodes: list[_Episode] = []
        self.start_images: dict[str, np.ndarray] = {}  # sha256 -> start image given as an array
        self._current: _Episode | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._finish()
        if seed is None:
            seed = secrets.randbits(31)
        obs, info = self.env.reset(seed=seed, options=options)
        self._current = _Episode(int(seed), self._stored_options(options), [np.array(obs)])
        _append(self._current.infos, dataset_info(info))
        return obs, info

    def step(self, action):
        if self._current is None:
            raise gym.error.ResetNeeded("step() before reset(): call reset() first")
        record = _action_record(action)
        obs, reward, terminated, truncated, info = self.env.step(action)
        ep = self._current
        ep.observations.append(np.array(obs))
        _append(ep.actions, record)
        ep.rewards.append(float(reward))
        ep.terminations.append(bool(terminated))
        ep.truncations.append(bool(truncated))
        _append(ep.infos, dataset_info(info))
        if terminated or truncated:
            self._finish()
        return obs, reward, terminated, truncated, info

    def close(self):
        self._finish()
        super().close()

    def finish_episode(self) -> None:
        """End the episode being recorded now (as a later ``reset`` would)."""
        self._finish()

    def rewind_current(self, steps: int) -> None:
        """Keep only the first ``steps`` steps of the episode being recorded (after the world was
        restored to a snapshot taken then), so the dataset holds the branch that was kept."""
        ep = self._current
        if ep is None or not 0 <= steps <= ep.steps:
            raise ValueError(f"steps: got {steps}; accepted: 0..{0 if ep is None else ep.steps}")
        del ep.observations[steps + 1 :]
        for lst in (ep.rewards, ep.terminations, ep.truncations):
            del lst[steps:]
        _truncate(ep.actions, steps)
        _truncate(ep.infos, steps + 1)

    def _finish(self) -> None:
        ep, self._current = self._current, None
        if ep is None or ep.steps == 0:
            return
        if not (ep.terminations[-1] or ep.truncations[-1]):
            ep.truncations[-1] = True  # cut here by the caller
        self.episodes.append(ep)

    def _stored_options(self, options: dict | None) -> dict | None:
        if not options:
            return None
        stored = {}
        for key, value in options.items():
            if key == "image" and value is not None and not isinstance(value, str | Path):
                arr = np.ascontiguousarray(np.asarray(value, dtype=np.uint8))
                sha = hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()
                self.start_images[sha] = arr
                stored[key] = f"{START_IMAGES}/{sha}.png"
            elif isinstance(value, Path):
                stored[key] = str(value)
            elif isinstance(value, str | int | float | bool):
                stored[key] = value
            else:
                raise TypeError(
                    f"options[{key!r}]: got {type(value).__name__}; accepted in a recorded episode: "
                    "str, int, float, bool, or an image array for 'image'"
                )
        return stored


# ---------------------------------------------------------------------------------------- writing
def env_spec_for(env_id: str, **kwargs) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id`` with these constructor ``kwargs`` (JSON-able: stored in the
    dataset so ``dataset.recover_environment()`` rebuilds the same world)."""
    import yume_env.envs  # noqa: F401  (registers the envs)

    spec = gym.spec(env_id)
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    spec = dataclasses.replace(spec, kwargs={**spec.kwargs, **kwargs})
    spec.to_json()  # fails now, naming the value, when a kwarg cannot be stored
    return spec


def write_dataset(
    dataset_id: str,
    episodes: EpisodeRecorder | Sequence,
    env_spec: gym.envs.registration.EnvSpec | None = None,
    *,
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    algorithm_name: str = "unknown",
    description: str | None = None,
    start_images: Mapping[str, np.ndarray] | None = None,
):
    """Write recorded episodes as the Minari dataset ``dataset_id`` (in ``MINARI_DATASETS_PATH``,
    default ``~/.minari/datasets``) and return it (a ``minari.MinariDataset``).

    ``episodes`` is an :class:`EpisodeRecorder` (its finished episodes and start images) or a list
    of its episodes. Spaces default to the recorder's env's; ``env_spec`` (the env id and its
    constructor arguments, see :func:`env_spec_for`) to the recorder's env's spec when it was made
    with ``gym.make``. ``dataset_id`` follows Minari's
    ``namespace/name-vN`` form and must not exist yet.
    """
    minari = require_minari()
    from minari.data_collector.episode_buffer import EpisodeBuffer

    if isinstance(episodes, EpisodeRecorder):
        env_spec = env_spec or episodes.unwrapped.spec
        episodes.finish_episode()
        observation_space = observation_space or episodes.observation_space
        action_space = action_space or episodes.action_space
        start_images = {**episodes.start_images, **(start_images or {})}
        episodes = episodes.episodes
    episodes = list(episodes)
    if not episodes:
        raise ValueError("episodes: got none with at least one step; accepted: one or more played episodes")
    if env_spec is None:
        raise ValueError(
            "env_spec: got None; accepted: the EnvSpec to replay with, e.g. env_spec_for('YumeWorld-v0', ...)"
        )
    if observation_space is None or action_space is None:
        raise ValueError("observation_space/action_space: give both when episodes is a list")
    buffers = [
        EpisodeBuffer(
            id=i,
            seed=ep.seed,
            options=ep.options,
            observations=ep.observations,
            actions=ep.actions,
            rewards=ep.rewards,
            terminations=ep.terminations,
            truncations=ep.truncations,
            infos=ep.infos,
        )
        for i, ep in enumerate(episodes)
    ]
    with warnings.catch_warnings():
        # Minari asks for an author, an e-mail and a code permalink for published datasets; these are local.
        warnings.filterwarnings("ignore", message=r"`(author|author_email|code_permalink|eval_env)`")
        dataset = minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env_spec,
            algorithm_name=algorithm_name,
            author="yume-env",
            description=description or "Episodes recorded in a Yume world with yume-env.",
            observation_space=observation_space,
            action_space=action_space,
            data_format="hdf5",
            jpeg_encoding=False,  # frames must replay bit-exactly
        )
    if start_images:
        from PIL import Image

        folder = Path(dataset.storage.data_path) / START_IMAGES
        folder.mkdir(exist_ok=True)
        for sha, image in start_images.items():
            Image.fromarray(image).save(folder / f"{sha}.png")
    return dataset


# ---------------------------------------------------------------------------------------- replay
def episode_start(dataset, episode_index: int) -> tuple[int, dict | None]:
    """``(seed, options)`` to ``reset`` with to replay episode ``episode_index`` (start image paths
    stored inside the dataset resolved to absolute paths)."""
    meta = list(dataset.storage.get_episode_metadata([episode_index]))[0]
    options = dict(meta["options"]) if meta.get("options") else None
    image = None if options is None else options.get("image")
    if isinstance(image, str) and image.startswith(f"{START_IMAGES}/"):
        options["image"] = str(Path(dataset.storage.data_path) / image)
    return int(meta["seed"]), options


def replay_episode(dataset, episode_index: int, env: gym.Env | None = None) -> list:
    """Play episode ``episode_index`` of ``dataset`` again: reset with its seed and options, step its
    actions; returns the observations (the reset one first), which equal the recorded ones on the
    same device. ``env`` defaults to ``dataset.recover_environment()`` (closed afterwards)."""
    own = env is None
    env = dataset.recover_environment() if own else env
    try:
        episode = dataset[episode_index]
        seed, options = episode_start(dataset, episode_index)
        obs, _ = env.reset(seed=seed, options=options)
        observations = [obs]
        acts = episode.actions
        for k in range(len(episode)):
            action = {
                "move": int(acts["move"][k]),
                "look": int(acts["look"][k]),
                "event": str(acts["event"][k]),
            }
            obs, *_ = env.step(action)
            observations.append(obs)
        return observations
    finally:
        if own:
            env.close()
