"""``gym.make_vec("YumeProcedural-v0", num_envs=N)``: N procedural worlds behind one vector env.

The env is :class:`~yume_env.envs.world_vector.WorldVectorEnv` over
:class:`~yume_env.procedural.worlds.ProceduralWorlds` built from one
:class:`~yume_env.procedural.spec.ProceduralSpec`. World i's frames, rewards, truncations,
autoresets and infos are those of a single ``YumeProcedural-v0`` reset with ``seed + i`` and given
the same actions (both run the episode logic of :mod:`yume_env.envs.episodes`).
"""

from __future__ import annotations

from gymnasium.vector import AutoresetMode

from yume_env.envs.families import FAMILIES
from yume_env.envs.world_vector import WorldVectorEnv

__all__ = ["YumeProceduralVectorEnv"]


class YumeProceduralVectorEnv(WorldVectorEnv):
    """N ``YumeProcedural-v0`` worlds, stepped one after the other in this process.

    Accepts the arguments of :class:`~yume_env.envs.procedural_env.YumeProceduralEnv` (the world
    keywords are documented in :mod:`yume_env.procedural.spec`), plus ``num_envs`` and
    ``autoreset_mode``: see :class:`~yume_env.envs.world_vector.WorldVectorEnv`.
    """

    def __init__(
        self, num_envs: int = 1, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP, **kwargs
    ):
        num_envs, autoreset_mode, self.world_spec, episode = FAMILIES["YumeProcedural-v0"].vector_parts(
            num_envs, autoreset_mode, tuple(self.metadata["render_modes"]), kwargs
        )
        super().__init__(self.world_spec.build(num_envs), autoreset_mode, **episode)
