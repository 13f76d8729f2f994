"""Policies for Yume worlds: observation (+ instruction) in, action out.

Every agent follows :class:`agents.base.Policy`, so the evaluation benchmark, the examples and
training scripts can run any of them.

- :class:`~agents.random_agent.RandomPolicy`: random moves and looks (seeded).
- :class:`~agents.scripted.ScriptedPolicy`: replays a key/event script.
- :class:`~agents.instruction_follower.RuleBasedInstructionFollower`: turns instructions such as
  "walk forward, then turn left and look up" into actions (:func:`~agents.instruction_follower.plan`).
- :class:`~agents.ppo_agent.PPOPolicy`: a stable-baselines3 PPO model trained with
  :func:`~agents.ppo_agent.train_ppo`.
"""

from agents.base import Policy
from agents.instruction_follower import InstructionError, RuleBasedInstructionFollower, plan
from agents.ppo_agent import PPOPolicy, train_ppo
from agents.random_agent import RandomPolicy
from agents.scripted import ScriptedPolicy

__all__ = [
    "InstructionError",
    "PPOPolicy",
    "Policy",
    "RandomPolicy",
    "RuleBasedInstructionFollower",
    "ScriptedPolicy",
    "plan",
    "train_ppo",
]
