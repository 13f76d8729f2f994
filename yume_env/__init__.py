"""yume-env: the Yume-1.5 interactive world generator as a standard reinforcement-learning environment.

Importing the package registers ``YumeWorld-v0`` and ``YumeProcedural-v0`` with Gymnasium.
"""

__version__ = "0.1.0"

from yume_env import envs as _envs  # noqa: E402,F401  (registration side effect)
