"""``ProceduralWorlds``: N procedural worlds behind the batched world protocol.

The procedural world (:class:`~yume_env.envs.procedural_env.YumeProceduralEnv`) is a ground-truth
renderer, not a generator; this adapter gives N of them the
:class:`~yume_env.world.protocol.BatchedWorlds` shape, so code written against the protocol runs
on it unchanged:

- ``reset(i, image=None, prompt="", seed=None)``: ``image`` is refused (a procedural world starts
  from its seed); ``prompt`` is the starting event (applied at once, as ``options={"event": ...}``).
- ``step(actions)``: one :class:`Action` or ``None`` per world; worlds are rendered one after the
  other (they are independent, there is no model to batch).
- :class:`BlockOutput` ``latents`` is ``None``; ``info`` carries the camera ground truth.
- snapshots are the env's own (``YumeProceduralEnv.snapshot``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from yume_env.envs.procedural_env import YumeProceduralEnv
from yume_env.world.protocol import check_world_actions
from yume_env.world.stream import Action, BlockOutput, check_world_index


class ProceduralWorlds:
    """N ``YumeProceduralEnv`` worlds as :class:`~yume_env.world.protocol.BatchedWorlds`.

    ``env_kwargs`` go to every world (``resolution``, ``frames_per_block``, speeds, ...);
    ``obs_mode`` is always ``"frames"`` and episodes never truncate here.
    """

    def __init__(self, num_worlds: int, **env_kwargs):
        if isinstance(num_worlds, bool) or not isinstance(num_worlds, int) or num_worlds < 1:
            raise ValueError(f"num_worlds: got {num_worlds!r}; accepted: an integer >= 1")
        for key in ("obs_mode", "max_episode_steps"):
            if key in env_kwargs:
                raise ValueError(f"{key}: not accepted by ProceduralWorlds (frames, no truncation)")
        self.envs = [YumeProceduralEnv(**env_kwargs) for _ in range(num_worlds)]
        self._last: list[np.ndarray | None] = [None] * num_worlds

    @property
    def num_worlds(self) -> int:
        return len(self.envs)

    @property
    def resolution(self) -> tuple[int, int]:
        return self.envs[0].height, self.envs[0].width

    @property
    def frames_per_block(self) -> int:
        return self.envs[0].frames_per_block

    def _index(self, index) -> int:
        return check_world_index(index, self.num_worlds)

    def reset(self, index: int, image=None, prompt: str = "", seed: int | None = None) -> BlockOutput:
        i = self._index(index)
        if image is not None:
            raise ValueError("image: a procedural world starts from its seed; accepted: None")
        options = {"event": prompt} if prompt.strip() else None
        obs, info = self.envs[i].reset(seed=seed, options=options)
        self._last[i] = obs
        return BlockOutput(obs, None, info.get("caption", ""), info)

    def step(self, actions: Sequence[Action | None]) -> list[BlockOutput | None]:
        check_world_actions(actions, self.num_worlds)
        for i, a in enumerate(actions):
            if a is not None and self._last[i] is None:
                raise RuntimeError(f"world {i}: step before reset; call reset first")
        outs: list[BlockOutput | None] = [None] * self.num_worlds
        for i, a in enumerate(actions):
            if a is None:
                continue
            obs, _, _, _, info = self.envs[i].step(a.as_dict())
            self._last[i] = obs
            outs[i] = BlockOutput(obs, None, info.get("caption", ""), info)
        return outs

    def snapshot(self, index: int):
        i = self._index(index)
        return self.envs[i].snapshot(), self._last[i]

    def restore(self, index: int, snapshot) -> None:
        i = self._index(index)
        state, last = snapshot
        self.envs[i].restore(state)
        self._last[i] = last

    def fork(self, source: int, target: int) -> None:
        self.restore(self._index(target), self.snapshot(source))

    def last_frames(self, index: int) -> np.ndarray | None:
        return self._last[self._index(index)]
