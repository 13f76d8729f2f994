"""yume-env: the Yume-1.5 interactive world generator as a standard reinforcement-learning environment."""

__version__ = "0.1.0"
