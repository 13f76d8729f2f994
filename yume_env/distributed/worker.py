"""``WorldWorker``: what runs inside one Ray actor.

One worker owns one device (a GPU when the actor was given ``num_gpus=1``: Ray sets
``CUDA_VISIBLE_DEVICES`` so ``"cuda"`` is that GPU; or ``threads`` CPU threads) and one batched
backend: a shard vector env (``gym.make_vec`` of the same id, so world semantics are exactly the
in-process ones) or a :class:`~yume_env.world.stream.WorldStream`. The class is plain Python; the
pool turns it into an actor with ``ray.remote``. Everything here runs on the worker's machine.
"""

from __future__ import annotations

import os
import socket

import gymnasium as gym
import torch


class WorldWorker:
    """One device, one batched backend. Methods are called by the driver through Ray."""

    def __init__(self, threads: int | None = None):
        if threads is not None:
            # Frames on CPU depend on the thread count (reductions split by thread), so fix it.
            torch.set_num_threads(int(threads))
        self.env: gym.vector.VectorEnv | None = None
        self.stream = None

    def describe(self) -> dict:
        """Where this worker runs (host, pid, torch threads, visible GPUs)."""
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "threads": torch.get_num_threads(),
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        }

    # ------------------------------------------------------------------ vector-env shard
    def build_vector(self, env_id: str, num_envs: int, kwargs: dict, vector_kwargs: dict | None):
        """Build the shard (``gym.make_vec``); returns its single spaces and metadata."""
        import yume_env  # noqa: F401  (registers the environments in this process)

        self.close()
        mode = None if vector_kwargs is None else "sync"
        self.env = gym.make_vec(
            env_id, num_envs=num_envs, vectorization_mode=mode, vector_kwargs=vector_kwargs, **kwargs
        )
        return self.env.single_observation_space, self.env.single_action_space, dict(self.env.metadata)

    def reset(self, seed, options, keep: bool = False):
        result = self.env.reset(seed=seed, options=options)
        return (result, *self._snapshots()) if keep else result

    def step(self, actions, keep: bool = False):
        result = self.env.step(actions)
        return (result, *self._snapshots()) if keep else result

    def _snapshots(self) -> list:
        return [self.env.snapshot_world(j) for j in range(self.env.num_envs)]

    def snapshot(self, index: int):
        return self.env.snapshot_world(index)

    def restore(self, index: int, snapshot) -> None:
        self.env.restore_world(index, snapshot)

    def render(self):
        return self.env.render()

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None

    # ------------------------------------------------------------------ WorldStream shard
    def build_stream(self, num_worlds: int, model_kwargs: dict, stream_kwargs: dict) -> dict:
        """Build a :class:`WorldStream` shard; returns its resolution and frames per block."""
        from yume_env.envs.model_cache import get_model
        from yume_env.world.stream import WorldStream

        self.stream = WorldStream(get_model(**model_kwargs), num_worlds=num_worlds, **stream_kwargs)
        return {"resolution": tuple(self.stream.resolution), "frames_per_block": self.stream.frames_per_block}

    def stream_reset(self, index: int, image, prompt: str, seed):
        return self.stream.reset(index, image=image, prompt=prompt, seed=seed)

    def stream_step(self, actions):
        return self.stream.step(actions)

    def stream_snapshot(self, index: int):
        return self.stream.snapshot(index)

    def stream_restore(self, index: int, snapshot) -> None:
        self.stream.restore(index, snapshot)

    def stream_last_frames(self, index: int):
        return self.stream.last_frames(index)
