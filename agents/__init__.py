"""Policies for Yume worlds: observation (+ instruction) in, action out.

Every agent follows :class:`agents.base.Policy`, so the evaluation benchmark, the examples and
training scripts can run any of them.
"""

from agents.base import Policy

__all__ = ["Policy"]
