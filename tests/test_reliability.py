"""Reliability: no code runs from a model folder, no half-changed world, no hang, clear errors."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ no code from folders
EVIL = """
from pathlib import Path
Path({marker!r}).write_text("ran")
{body}
"""


def run_under_terminal(code: str, tmp_path: Path, timeout: float = 120.0) -> str:
    """Run ``code`` in a Python whose stdin/stdout is a pseudo-terminal that answers "y" to any prompt."""
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if b"[y/N]" in chunk:
                    os.write(master, b"y\n")
            if proc.poll() is not None and not ready:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    return out.decode(errors="replace")


def evil_tokenizer_folder(folder: Path, marker: Path) -> Path:
    from yume_env.model.pipeline import TINY_TOKENIZER

    shutil.copytree(TINY_TOKENIZER, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "EvilTokenizer"
    config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", "evil.EvilTokenizer"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    body = "from transformers import PreTrainedTokenizerFast\nclass EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    (folder / "evil.py").write_text(EVIL.format(marker=str(marker), body=body))
    return folder


def test_tokenizer_folder_with_custom_code_never_runs_it(tmp_path):
    marker = tmp_path / "marker"
    folder = evil_tokenizer_folder(tmp_path / "google" / "umt5-xxl", marker)
    out = run_under_terminal(
        "from yume_env.model.text_encoder import load_tokenizer\n"
        f"try:\n    load_tokenizer({str(folder)!r})\n"
        "except Exception as exc:\n    print('REFUSED', type(exc).__name__, exc)\n",
        tmp_path,
    )
    assert not marker.exists(), out
    assert "REFUSED" in out and "auto_map" in out and "tokenizer_config.json" in out, out


def test_clip_folder_with_custom_code_never_runs_it(tmp_path):
    from tests.test_rewards import write_tiny_clip

    marker = tmp_path / "marker"
    folder = write_tiny_clip(tmp_path / "clip")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "evil-clip"
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    body = (
        "from transformers import CLIPConfig, CLIPModel\n"
        "class EvilConfig(CLIPConfig):\n    model_type = 'evil-clip'\n"
        "class EvilModel(CLIPModel):\n    config_class = EvilConfig\n"
    )
    (folder / "evil.py").write_text(EVIL.format(marker=str(marker), body=body))
    out = run_under_terminal(
        "from yume_env.rewards import ClipTextReward\n"
        f"try:\n    ClipTextReward({str(folder)!r}, 'a red balloon')\n"
        "except Exception as exc:\n    print('REFUSED', type(exc).__name__, exc)\n",
        tmp_path,
    )
    assert not marker.exists(), out
    assert "REFUSED" in out and "auto_map" in out, out
