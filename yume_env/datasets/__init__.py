"""Episodes as datasets in the Farama Minari format (offline RL, imitation learning).

See :mod:`yume_env.datasets.minari_io`. Needs the ``data`` extra: ``pip install "yume-env[data]"``.
"""

from yume_env.datasets.minari_io import (
    EpisodeRecorder,
    check_new_dataset,
    env_spec_for,
    episode_start,
    replay_episode,
    require_minari,
    write_dataset,
)

__all__ = [
    "EpisodeRecorder",
    "check_new_dataset",
    "env_spec_for",
    "episode_start",
    "replay_episode",
    "require_minari",
    "write_dataset",
]
