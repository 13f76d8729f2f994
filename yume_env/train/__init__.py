"""Training of the tiny Yume world model on the procedural world.

- :mod:`yume_env.train.data`: episodes rendered by ``YumeProcedural-v0`` (random and scripted actions,
  catalog events, captions as YumeWorld-v0 renders them), mirroring, latent storage.
- :mod:`yume_env.train.vae_train`: autoencoder losses for the Wan-style VAE.
- :mod:`yume_env.train.dit_train`: flow matching for the Yume DiT over TSCM history.
- :mod:`yume_env.train.trainer`: the run (phases, checkpoints in the official layout, resume).
- :mod:`yume_env.train.cli`: the ``yume-world train`` command line.
"""

from yume_env.train.trainer import TrainConfig, Trainer, TrainingError, export_checkpoint, train

__all__ = ["TrainConfig", "Trainer", "TrainingError", "export_checkpoint", "train"]
