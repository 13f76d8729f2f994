"""``gym.make_vec("YumeWorld-v0", num_envs=N)``: N worlds batched through ONE model.

Every ``step`` denoises the next block of all N worlds in one batch (never N model copies). World i
produces the frames a single ``YumeWorld-v0`` produces with the same seed and actions. The env is
:class:`~yume_env.envs.world_vector.WorldVectorEnv` on a :class:`~yume_env.world.stream.WorldStream`
of N worlds, built from the same :class:`~yume_env.world.spec.WorldSpec` as the single env.
"""

from __future__ import annotations

from collections.abc import Sequence

from gymnasium.vector import AutoresetMode

from yume_env.envs.episodes import EpisodeSnapshot
from yume_env.envs.families import FAMILIES
from yume_env.envs.world_vector import WorldVectorEnv, actions_of

__all__ = ["VectorWorldSnapshot", "YumeWorldVectorEnv", "actions_of"]

#: The snapshot of one world and its episode (the single env's snapshots are the same type).
VectorWorldSnapshot = EpisodeSnapshot


class YumeWorldVectorEnv(WorldVectorEnv):
    """N ``YumeWorld-v0`` worlds stepped as one batch on one shared model.

    Accepts the arguments of :class:`~yume_env.envs.yume_world.YumeWorldEnv` (the world keywords are
    documented in :mod:`yume_env.world.spec`), plus ``num_envs``, per-world ``image`` / ``prompt``
    lists and ``autoreset_mode``: see :class:`~yume_env.envs.world_vector.WorldVectorEnv`.
    """

    def __init__(
        self,
        num_envs: int = 1,
        image=None,
        prompt: str | Sequence[str] = "",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs,
    ):
        # every check first: loading the model takes a while
        num_envs, autoreset_mode, self.world_spec, episode = FAMILIES["YumeWorld-v0"].vector_parts(
            num_envs,
            autoreset_mode,
            tuple(self.metadata["render_modes"]),
            {**kwargs, "image": image, "prompt": prompt},
        )
        self.model, self.threads = self.world_spec.runtime_model()
        super().__init__(self.world_spec.build(num_envs, self.model), autoreset_mode, **episode)
