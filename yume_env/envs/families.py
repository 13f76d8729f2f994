"""``WorldFamily``: how a registered env id's keywords become a backend spec and episode arguments.

The vector envs (in this process or on Ray workers) build any world the same way: split the
keywords into the episode's and the backend spec's (:class:`~yume_env.world.protocol.WorldBackendSpec`),
check them all before anything is built, then ``spec.build(num_worlds)`` here or on each worker.
What differs between worlds is data, kept in one :class:`WorldFamily` per env id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gymnasium.vector import AutoresetMode

from yume_env.envs import procedural_env, yume_world
from yume_env.envs.episodes import EPISODE_ARGS, EpisodeArgs, episode_args
from yume_env.envs.validation import check_vector_args
from yume_env.procedural.spec import ProceduralSpec
from yume_env.world.protocol import WorldBackendSpec
from yume_env.world.spec import WorldSpec

__all__ = ["FAMILIES", "WorldFamily", "family_of"]


def _same_spec(spec: WorldBackendSpec, args: EpisodeArgs) -> WorldBackendSpec:
    return spec


def _no_starts(args: EpisodeArgs) -> dict:
    return {}


@dataclass(frozen=True)
class WorldFamily:
    """One kind of world behind the vector envs.

    Args:
        env_id: the registered id.
        spec_type: the backend spec (its names are the world keywords).
        episode_names: the episode keywords the env takes (the rest build the world).
        adapt: the spec as the vector env builds it, given the checked episode arguments.
        starts: the ``image`` / ``prompt`` keywords the vector env passes on for each world.
        vector_class: ``"module:Class"`` of its in-process vector env.
        keeps_snapshots: whether a Ray vector env keeps snapshots of these worlds on request
            (``snapshot_every``; off for the procedural world, as it always was).
        reset_options: the single env's ``reset`` options, each paired with the vector env's name
            for it (``YumeProcedural-v0``'s ``event`` is the vector env's ``prompt``).
    """

    env_id: str
    spec_type: type
    episode_names: tuple[str, ...]
    vector_class: str
    adapt: Callable[[WorldBackendSpec, EpisodeArgs], WorldBackendSpec] = _same_spec
    starts: Callable[[EpisodeArgs], dict] = _no_starts
    keeps_snapshots: bool = True
    reset_options: tuple[tuple[str, str], ...] = (("image", "image"), ("prompt", "prompt"))

    def vector_parts(
        self, num_envs: int, autoreset_mode: AutoresetMode | str, render_modes: tuple[str, ...], kwargs: dict
    ) -> tuple[int, AutoresetMode, WorldBackendSpec, dict]:
        """``(num_envs, autoreset_mode, spec, episode keywords)`` of a vector env's arguments, all
        checked before anything is built (an unknown keyword raises ``TypeError``)."""
        num_envs, autoreset_mode = check_vector_args(num_envs, autoreset_mode)
        episode, spec = yume_world.split_world_kwargs(kwargs, self.episode_names, self.spec_type)
        args = episode_args(num_envs, render_modes, **episode)
        return num_envs, autoreset_mode, self.adapt(spec, args), {**episode, **self.starts(args)}


def _yume_spec(spec: WorldSpec, args: EpisodeArgs) -> WorldSpec:
    return yume_world.world_spec_for(spec, args.obs_mode, None)


def _yume_starts(args: EpisodeArgs) -> dict:
    return {"image": yume_world.with_default_images(args.images, args.prompts), "prompt": args.prompts}


FAMILIES = {
    "YumeWorld-v0": WorldFamily(
        "YumeWorld-v0",
        WorldSpec,
        EPISODE_ARGS,
        "yume_env.envs.vector:YumeWorldVectorEnv",
        _yume_spec,
        _yume_starts,
    ),
    "YumeProcedural-v0": WorldFamily(
        "YumeProcedural-v0",
        ProceduralSpec,
        procedural_env.EPISODE_ARGS,
        "yume_env.envs.procedural_vector:YumeProceduralVectorEnv",
        keeps_snapshots=False,
        reset_options=(("event", "prompt"),),
    ),
}


def family_of(env_id) -> WorldFamily:
    """The :class:`WorldFamily` of ``env_id``."""
    if not isinstance(env_id, str) or env_id not in FAMILIES:
        raise ValueError(f"env_id: got {env_id!r}; accepted: {', '.join(map(repr, FAMILIES))}")
    return FAMILIES[env_id]
