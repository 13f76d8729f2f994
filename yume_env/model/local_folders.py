"""Reading Hugging Face folders without ever running code shipped in them.

A saved transformers folder may name its own Python classes in an ``auto_map`` entry of
``config.json`` / ``tokenizer_config.json`` / ``*processor_config.json``; ``AutoModel`` /
``AutoTokenizer`` then offer (at a terminal) to import and run the ``.py`` files next to it. Model
and tokenizer folders are data here, so such folders are refused up front with
:class:`RemoteCodeRefusedError`, and every load also passes ``trust_remote_code=False``.
"""

from __future__ import annotations

import json
from pathlib import Path

# The files transformers reads an ``auto_map`` from.
CODE_MAP_FILES = (
    "config.json",
    "tokenizer_config.json",
    "processor_config.json",
    "preprocessor_config.json",
    "image_processor_config.json",
    "feature_extractor_config.json",
)
MAX_CONFIG_BYTES = 16 * 2**20  # a model folder's JSON configs are kilobytes; refuse absurd ones unread


class RemoteCodeRefusedError(ValueError):
    """A model folder that asks to run its own Python code (``auto_map``); it is never loaded."""


def refuse_remote_code(folder: str | Path, name: str) -> None:
    """Raise :class:`RemoteCodeRefusedError` when ``folder`` carries an ``auto_map`` (custom code).

    ``name`` is the argument the folder came from, for the message.
    """
    folder = Path(folder)
    for file in CODE_MAP_FILES:
        path = folder / file
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # unreadable JSON: the loader itself reports it
        if isinstance(data, dict) and "auto_map" in data:
            raise RemoteCodeRefusedError(
                f"{name}: {path} has an 'auto_map' entry, which asks to run Python code shipped in "
                f"{folder}; accepted: folders of the standard transformers classes only (custom code "
                "is never run). Remove 'auto_map' if the folder works without it."
            )
