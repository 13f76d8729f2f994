"""The README's Quickstart and CI stay in step; the CLI behaves like a command-line tool."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from yume_env.cli import main
from yume_env.script import DEMO_TOUR, ScriptError, parse_script

ROOT = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_has_exactly_two_commands_and_ci_runs_the_test_one():
    demo, tests = quickstart_commands()
    assert "yume-world demo" in demo and "torch==2.13.0" in demo
    assert "pytest" in tests and '".[test]"' in tests
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_cli_help_and_usage_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as ok:
        main(["--help"])
    assert ok.value.code == 0
    assert "demo" in capsys.readouterr().out
    assert main(["record", "--script", str(tmp_path / "none.txt"), "--image", "x.png"]) == 2
    assert "no such file" in capsys.readouterr().err
    script = tmp_path / "bad.txt"
    script.write_text("W right\nJUMP up\n")
    assert main(["record", "--script", str(script), "--image", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "line 2: move 'JUMP'" in err and "Traceback" not in err
    assert main(["demo", "--image", str(tmp_path / "missing.png")]) == 2
    assert "image: no such file" in capsys.readouterr().err


def test_script_format():
    steps = parse_script("# tour\nW . A red balloon appears.\nnone up+left x2\nS+D ↓←\n")
    assert [s.as_action() for s in steps] == [
        {"move": 1, "look": 0, "event": "A red balloon appears."},
        {"move": 0, "look": 6, "event": ""},
        {"move": 0, "look": 6, "event": ""},
        {"move": 8, "look": 8, "event": ""},
    ]
    assert steps[1].describe() == "None up+left"
    with pytest.raises(ScriptError, match="no steps"):
        parse_script("# nothing\n")
    with pytest.raises(ScriptError, match="line 1: look 'sideways'"):
        parse_script("W sideways")
    assert len(DEMO_TOUR) == 8
    assert {s.describe().split()[0] for s in DEMO_TOUR} >= {"W", "A", "D", "None"}


def test_demo_writes_video_and_contact_sheet(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "yume_env.cli",
            "demo",
            "--blocks",
            "2",
            "--resolution",
            "32x64",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "frames/s" in proc.stdout and "denoise" in proc.stdout
    import imageio.v3 as iio

    video = iio.imread(out / "demo.mp4", plugin="pyav")
    assert video.shape == (3 * 29, 32, 64, 3)
    assert (out / "demo_contact_sheet.png").stat().st_size > 1000


def test_info_prints_the_5b_parameter_counts(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "5,200,377,072" in out and "704,688,668" in out and "5,680,910,336" in out


def test_train_and_eval_receive_their_options(capsys):
    for command, option in (("eval", "--policy"), ("train", "--resume")):
        try:
            code = main([command, "--help"])
        except SystemExit as exc:  # argparse's own --help exit
            code = exc.code
        assert code == 0
        assert option in capsys.readouterr().out
