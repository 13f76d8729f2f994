"""Every example runs top to bottom with a tiny budget and writes what it promises."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
YUME_SMALL = ["--resolution", "32", "64"]  # a small size the tiny model accepts; keeps steps cheap


def example(name: str):
    """The ``main`` of ``examples/<name>.py`` (loaded without running it)."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))["main"]


def test_every_example_has_a_smoke_test():
    tested = {
        "random_rollout",
        "train_ppo",
        "batched_rollouts",
        "fork_futures",
        "multi_agent",
        "instruction_eval",
        "rllib_ppo",
        "sb3_ray",
    }
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_random_rollout(tmp_path):
    out = example("random_rollout")(["--blocks", "1", *YUME_SMALL, "--out", str(tmp_path)])
    assert (tmp_path / "rollout.mp4").stat().st_size > 0
    assert out["frames"] == 1 + 29
    assert len((tmp_path / "captions.txt").read_text().splitlines()) == 1


def test_random_rollout_procedural(tmp_path):
    out = example("random_rollout")(
        ["--world", "procedural", "--blocks", "2", *YUME_SMALL, "--out", str(tmp_path)]
    )
    assert (tmp_path / "rollout.mp4").is_file() and out["frames"] == 1 + 2 * 29


def test_train_ppo(tmp_path):
    args = ["--timesteps", "64", "--n-steps", "32", "--episode-blocks", "8", "--resolution", "36", "48"]
    out = example("train_ppo")([*args, "--out", str(tmp_path)])
    assert (tmp_path / "ppo_model.zip").is_file() and (tmp_path / "ppo_model.json").is_file()
    assert (tmp_path / "learning_curve.png").stat().st_size > 0
    assert len(out["returns"]) == 8


def test_batched_rollouts(tmp_path):
    out = example("batched_rollouts")(
        ["--num-worlds", "2", "--blocks", "1", *YUME_SMALL, "--out", str(tmp_path)]
    )
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing["num_worlds"] == 2 and timing["resolution"] == [32, 64]
    assert timing["batched_step_ms"] > 0 and out["timing"] == timing
    assert (tmp_path / "last_frames.png").is_file()


def test_fork_futures(tmp_path):
    futures = ["walk forward", "turn left"]
    args = ["--warmup", "stand still", "--futures", *futures, *YUME_SMALL]
    out = example("fork_futures")([*args, "--out", str(tmp_path)])
    assert out["identical"] is True
    assert set(out["diff"]) == set(futures)
    assert (tmp_path / "futures.png").is_file() and (tmp_path / "futures.json").is_file()


def test_fork_futures_procedural(tmp_path):
    out = example("fork_futures")(["--world", "procedural", *YUME_SMALL, "--out", str(tmp_path)])
    assert out["identical"] is True
    # different futures end in different places
    d = out["diff"]
    assert d["walk forward twice"]["turn left twice"] > 0


def test_multi_agent(tmp_path):
    args = ["--world", "procedural", *YUME_SMALL, "--blocks", "3", "--explorers", "2"]
    out = example("multi_agent")([*args, "--out", str(tmp_path)])
    assert (tmp_path / "directed.mp4").is_file() and (tmp_path / "explorers.mp4").is_file()
    assert "A red balloon appears." in out["captions"][0] and "(W)" in out["captions"][0]


def test_instruction_eval(tmp_path):
    pytest.importorskip("yume_env.evaluation.benchmark")
    args = ["--world", "procedural", "--limit", "3", "--resolution", "48", "80"]
    results = example("instruction_eval")([*args, "--out", str(tmp_path)])
    assert set(results) == {"rule_based", "random"}
    assert (tmp_path / "comparison.md").is_file() and (tmp_path / "rule_based" / "results.md").is_file()
    assert list((tmp_path / "rule_based").glob("best_*.mp4"))
    assert results["rule_based"].if_score >= results["random"].if_score


@pytest.mark.ray
def test_rllib_ppo(ray_session):
    pytest.importorskip("ray.rllib", reason='RLlib is not installed (pip install "yume-env[rllib]")')
    out = example("rllib_ppo")(["--tiny"])
    assert out["env_steps"] == 2 * 8  # two iterations of 8 blocks, sampled by one env runner
    assert len(out["returns"]) == 2 and all(0 <= r <= 4 for r in out["returns"])  # 4 blocks of 0..1


@pytest.mark.ray
def test_sb3_ray(ray_session, tmp_path):
    out = example("sb3_ray")(["--tiny", "--out", str(tmp_path)])
    assert out["timesteps"] == 8 and out["path"].is_file()
    assert len(out["returns"]) == 4 and all(0 <= r <= 2 for r in out["returns"])  # 2 worlds x 2 episodes
