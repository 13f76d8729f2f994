"""Reward functions for Yume worlds, all usable as ``reward_fn(obs, action, info) -> float``.

Pass one to an env (``gym.make("YumeProcedural-v0", reward_fn=...)``, ``YumeWorld-v0`` likewise)
or call it yourself on a step's ``(obs, action, info)``. Each is an object with ``__call__``; the
ones that remember the episode clear their memory at its first step (``info["block_index"] == 1``)
and have ``reset()``.

| reward | what it pays for | needs |
|---|---|---|
| :class:`InstructionFollowingReward` | the block's camera motion (estimated from pixels) matches the instructed keys (or the keys just sent) | frames (``obs_mode="frames"``) |
| :class:`NoveltyReward` | reaching new ground (true pose, procedural world) or seeing new views (coarse frame thumbnails) | pose in ``info``, or frames |
| :class:`GoalImageReward` | the view looks like a goal image (SSIM or pixel similarity of small thumbnails) | frames or last frame |
| :class:`ClipTextReward` | the frames match a text, with a CLIP-style model from a local folder | ``transformers``, a local model |

All arguments are checked at construction, and models and goal images are loaded and tried
there: a missing or broken reward model fails when the reward is made, never mid-episode.
"""

from yume_env.rewards.clip_text import ClipTextReward, RewardModelError
from yume_env.rewards.goal_image import GoalImageReward, ssim
from yume_env.rewards.instruction import InstructionFollowingReward
from yume_env.rewards.novelty import NoveltyReward

__all__ = [
    "ClipTextReward",
    "GoalImageReward",
    "InstructionFollowingReward",
    "NoveltyReward",
    "RewardModelError",
    "ssim",
]
