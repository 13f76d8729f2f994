"""Print a benchmark's result dict and write it as JSON (shared by the benchmark scripts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def report(result: dict, json_path: Path | None, digits: int = 2, lists: bool = True) -> None:
    """One ``key: value`` line per entry (floats to ``digits`` places; lists left out unless
    ``lists``), then ``result`` as JSON at ``json_path`` when given."""
    for k, v in result.items():
        if lists or not isinstance(v, list):
            print(f"{k}: {v:.{digits}f}" if isinstance(v, float) else f"{k}: {v}")
    if json_path:
        json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {json_path}", file=sys.stderr)
