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
- snapshots are the env's own (``YumeProceduralEnv.snapshot``); ``mark``/``rollback`` keep one per
  started world; ``latent_shape`` is ``None`` and ``decode_latents`` refuses (there are no latents).
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
        self._blocks = [0] * num_worlds

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
        self.check_reset(image, prompt)
        options = {"event": prompt} if prompt.strip() else None
        obs, info = self.envs[i].reset(seed=seed, options=options)
        self._last[i] = obs
        self._blocks[i] = 0
        return BlockOutput(obs, None, info.get("caption", ""), info)

    def check_reset(self, image=None, prompt: str = "") -> None:
        if image is not None:
            raise ValueError("image: a procedural world starts from its seed; accepted: None")
        if not isinstance(prompt, str):
            raise TypeError(f"prompt: got {type(prompt).__name__}; accepted: str")

    def step(self, actions: Sequence[Action | None]) -> list[BlockOutput | None]:
        check_world_actions(actions, self.num_worlds)
        for i, a in enumerate(actions):
            if a is not None and self._last[i] is None:
                raise RuntimeError(f"world {i}: step before reset; call reset first")
        outs: list[BlockOutput | None] = [None] * self.num_worlds
        for i, a in enumerate(actions):
            if a is None:
                continue
            obs, _, _, _, info = self.envs[i].step({"move": a.move, "look": a.look, "event": a.event})
            self._last[i] = obs
            self._blocks[i] += 1
            outs[i] = BlockOutput(obs, None, info.get("caption", ""), info)
        return outs

    def mark(self) -> list:
        """Every world's snapshot (``None`` for worlds not started), for :meth:`rollback`."""
        return [None if self._last[i] is None else self.snapshot(i) for i in range(self.num_worlds)]

    def rollback(self, mark: list) -> None:
        if not isinstance(mark, list) or len(mark) != self.num_worlds:
            raise TypeError(f"mark: got {type(mark).__name__}; accepted: a mark() of these worlds")
        for i, snap in enumerate(mark):
            if snap is None:
                self._last[i] = None
            else:
                self.restore(i, snap)

    def snapshot(self, index: int):
        i = self._index(index)
        return self.envs[i].snapshot(), self._last[i], self._blocks[i]

    def restore(self, index: int, snapshot) -> None:
        i = self._index(index)
        if not isinstance(snapshot, tuple) or len(snapshot) != 3:
            raise TypeError(
                f"snapshot: got {type(snapshot).__name__}; accepted: a snapshot() of a procedural world"
            )
        state, last, blocks = snapshot
        self.envs[i].restore(state)
        self._last[i] = last
        self._blocks[i] = blocks

    def fork(self, source: int, target: int) -> None:
        self.restore(self._index(target), self.snapshot(source))

    def last_frames(self, index: int) -> np.ndarray | None:
        return self._last[self._index(index)]

    @property
    def latent_shape(self) -> None:
        return None

    def is_reset(self, index: int) -> bool:
        return self._last[self._index(index)] is not None

    def block_index(self, index: int) -> int:
        return self._blocks[self._index(index)]

    def decode_latents(self, latents) -> np.ndarray:
        raise ValueError("latents: a procedural world has none; accepted: frame observations")

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self._last = [None] * self.num_worlds
