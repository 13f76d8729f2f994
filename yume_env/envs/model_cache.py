"""Deprecated location: the shared model cache lives in :mod:`yume_env.world.model_cache`."""

from yume_env.world.model_cache import (
    clear_model_cache,
    get_decoder,
    get_model,
    get_runtime_model,
)

__all__ = ["clear_model_cache", "get_decoder", "get_model", "get_runtime_model"]
