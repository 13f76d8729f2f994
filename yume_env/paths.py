"""Where the files shipped inside the package live (one place; every module takes its paths from here).

The folders are package data (``[tool.setuptools.package-data]`` in ``pyproject.toml`` ships
``yume_env/assets/**``), so these paths hold in a source checkout and in an installed wheel alike.
This module imports nothing of the project, so every layer (``model/`` included) may use it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSETS", "PACKAGE_DIR", "SAMPLES", "TINY_CHECKPOINT", "TINY_TOKENIZER"]

#: The installed ``yume_env`` package folder.
PACKAGE_DIR: Path = Path(__file__).resolve().parent
#: ``yume_env/assets``: the data shipped with the package.
ASSETS: Path = PACKAGE_DIR / "assets"
#: The bundled start images (``image="street"`` picks ``street.png``).
SAMPLES: Path = ASSETS / "samples"
#: The small trained checkpoint of the ``tiny`` preset.
TINY_CHECKPOINT: Path = ASSETS / "tiny_checkpoint"
#: The offline tokenizer of the ``tiny`` preset.
TINY_TOKENIZER: Path = ASSETS / "tiny_tokenizer"
