"""The worlds a benchmark runs in, as data: which env id builds each one and how an episode starts.

Every world is built the same way, ``gym.make(env_id, **kwargs)``; what differs between worlds is
recorded here instead of in branches on the world's name:

| world | env id | model | an episode starts from | reports catalog events |
|---|---|---|---|---|
| ``procedural`` | ``YumeProcedural-v0`` | none | the task's scene seed | yes (``info["event_applied"]``) |
| ``tiny`` | ``YumeWorld-v0`` | ``tiny`` | the task's start image, world seed = run seed | no |
| ``yume`` | ``YumeWorld-v0`` | ``yume-1.5-5b`` (needs ``checkpoint``) | the task's start image, world seed = run seed | no |

A task without a start image starts a generated world from the procedural world's first frame of
the task's seed, so the two kinds of world begin in the same place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import gymnasium as gym

from yume_env.evaluation.tasks import Task

__all__ = ["BENCHMARK_WORLDS", "WORLDS", "BenchmarkWorld", "benchmark_world", "start_image"]

#: Arguments that only a world with a model takes.
MODEL_ARGUMENTS = ("checkpoint", "device", "dtype", "steps")


@dataclass(frozen=True)
class BenchmarkWorld:
    """One kind of benchmark world.

    Attributes:
        name: the name users pass (``world="procedural"``, ``--world tiny``).
        env_id: the registered Gymnasium id that builds it.
        model: the model preset it loads by default (``None``: it has no model).
        needs_checkpoint: whether it needs a checkpoint folder (the 5B model).
        ground_truth: whether it is the procedural world: it starts at the task's scene seed and
            reports the catalog event it applied; otherwise it starts from the task's start image
            and the run seed seeds the world.
    """

    name: str
    env_id: str
    model: str | None = None
    needs_checkpoint: bool = False
    ground_truth: bool = False
    env_kwargs: Mapping = field(default_factory=lambda: MappingProxyType({}))

    @property
    def has_model(self) -> bool:
        return self.model is not None

    def check_model_arguments(self, model=None, checkpoint=None) -> None:
        """Refuse a model for a world without one, and a missing checkpoint where one is needed."""
        if not self.has_model and (model is not None or checkpoint is not None):
            raise ValueError(f"model/checkpoint: got a value for world={self.name!r}; it has no model")
        if self.needs_checkpoint and checkpoint is None and not hasattr(model, "preset"):
            raise ValueError(
                f"checkpoint: world={self.name!r} needs the official Yume-5B-720P folder (checkpoint=...); "
                "use world='tiny' for the small CPU model"
            )

    def env_arguments(self, model=None, checkpoint=None, **env_kwargs) -> dict:
        """The keyword arguments ``gym.make(self.env_id, ...)`` gets."""
        self.check_model_arguments(model, checkpoint)
        kwargs = dict(self.env_kwargs)
        if self.has_model:
            kwargs["model"] = model or self.model
            if checkpoint is not None:
                kwargs["checkpoint"] = checkpoint
        kwargs.update(env_kwargs)
        return kwargs

    def make(self, model=None, checkpoint=None, **env_kwargs) -> gym.Env:
        """The env of this world: ``gym.make(env_id, ...)``, its wrappers included."""
        import yume_env.envs  # noqa: F401  (registers the env ids)

        return gym.make(self.env_id, **self.env_arguments(model, checkpoint, **env_kwargs))

    def world_seed(self, task: Task, seed: int) -> int:
        """The seed the world starts from for ``task`` in the run with seed ``seed``."""
        return task.seed if self.ground_truth else seed

    def start(self, env: gym.Env, task: Task, seed: int, image_cache: dict) -> tuple:
        """Reset ``env`` for ``task`` in the run with seed ``seed``: ``(obs, info)``.

        ``image_cache`` keeps the start images drawn from the procedural world between tasks."""
        if self.ground_truth:
            return env.reset(seed=self.world_seed(task, seed))
        image = start_image(task, tuple(env.unwrapped.worlds.resolution), image_cache)
        return env.reset(seed=self.world_seed(task, seed), options={"image": image})


BENCHMARK_WORLDS: Mapping[str, BenchmarkWorld] = MappingProxyType(
    {
        "procedural": BenchmarkWorld("procedural", "YumeProcedural-v0", ground_truth=True),
        "tiny": BenchmarkWorld("tiny", "YumeWorld-v0", model="tiny"),
        "yume": BenchmarkWorld("yume", "YumeWorld-v0", model="yume-1.5-5b", needs_checkpoint=True),
    }
)
WORLDS = tuple(BENCHMARK_WORLDS)


def benchmark_world(name) -> BenchmarkWorld:
    """The world called ``name`` (``ValueError`` naming the accepted ones otherwise)."""
    if not isinstance(name, str) or name not in BENCHMARK_WORLDS:
        raise ValueError(f"world: got {name!r}; accepted: {', '.join(WORLDS)}")
    return BENCHMARK_WORLDS[name]


def start_image(task: Task, resolution: tuple[int, int], cache: dict):
    """The task's start image (its file), or the procedural world's first frame of its seed."""
    path = task.image_path()
    if path is not None:
        return path
    key = (task.seed, resolution)
    if key not in cache:
        from yume_env.procedural.world import ProceduralWorld

        world = ProceduralWorld(resolution=resolution)
        try:
            world.reset(seed=task.seed)
            cache[key] = world.start_image()
        finally:
            world.close()
    return cache[key]
