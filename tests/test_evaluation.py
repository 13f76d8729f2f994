"""Motion estimator on synthetic warps, task suites, the benchmark on the procedural world, the eval CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from yume_env.evaluation import (
    AXES,
    LABELS,
    ExpectedKeysPolicy,
    TaskError,
    default_tasks,
    estimate_block_motion,
    expected_axes,
    expected_label,
    label_to_action,
    load_tasks,
    matches,
    run_benchmark,
    save_tasks,
)
from yume_env.evaluation.accuracy import CLEAR_LABELS, label_axes, procedural_accuracy, synthetic_accuracy
from yume_env.evaluation.benchmark import make_policy
from yume_env.evaluation.cli import main
from yume_env.evaluation.synthetic import sample_images, synthetic_block
from yume_env.evaluation.tasks import select_tasks, task_from_dict

STREET, PARK = sample_images()[-1], sample_images()[0]


# ------------------------------------------------------------------------------ motion estimator
@pytest.mark.parametrize("label", LABELS)
def test_estimator_finds_each_synthetic_motion(label):
    block = synthetic_block(PARK if "strafe" in label else STREET, label, frames=16, rng=3)
    est = estimate_block_motion(block.frames)
    assert est.label == label
    assert est.axes == label_axes(label)  # nothing spurious on the other axes
    assert 0.0 < est.confidence <= 1.0


def test_estimator_amounts_and_big_pans_do_not_wrap():
    pan = synthetic_block(STREET, "pan_left", amount=0.3, rng=1)
    assert estimate_block_motion(pan.frames).dx == pytest.approx(-0.3, abs=0.04)
    tilt = synthetic_block(STREET, "tilt_up", amount=0.25, rng=1)
    assert estimate_block_motion(tilt.frames).dy == pytest.approx(0.25, abs=0.04)
    zoom = synthetic_block(STREET, "forward", amount=0.25, rng=1)
    assert estimate_block_motion(zoom.frames).zoom == pytest.approx(0.25, abs=0.06)
    # 60% of a frame width in one block: first-to-last correlation would wrap, summed steps do not
    big = synthetic_block(STREET, "pan_right", amount=0.6, frames=32, rng=2)
    est = estimate_block_motion(big.frames)
    assert est.label == "pan_right" and est.dx == pytest.approx(0.6, abs=0.05)


def test_estimator_input_forms():
    frames = synthetic_block(STREET, "tilt_down", amount=0.3, frames=12, rng=0).frames
    ref = estimate_block_motion(frames)
    assert estimate_block_motion(torch.from_numpy(frames)).label == "tilt_down"
    assert estimate_block_motion(frames.astype(np.float32) / 255.0).dy == pytest.approx(ref.dy, abs=1e-3)
    gray = frames.mean(axis=-1)
    assert estimate_block_motion(gray).label == "tilt_down"
    assert estimate_block_motion(list(frames)).label == "tilt_down"
    big = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)  # wider than work_width: downsampled
    assert estimate_block_motion(big).label == "tilt_down"
    flat = np.full((6, 32, 32, 3), 90, np.uint8)
    est = estimate_block_motion(flat)
    assert est.label == "still" and est.confidence == 0.0
    assert est.as_dict()["axes"] == dict.fromkeys(AXES, 0)


def test_estimator_rejects_bad_input():
    ok = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"frames: got shape \(32, 32, 3\)"):
        estimate_block_motion(ok[0])
    with pytest.raises(ValueError, match="at least 2 frames"):
        estimate_block_motion(ok[:1])
    with pytest.raises(ValueError, match="at least 16x16"):
        estimate_block_motion(np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="non-finite"):
        estimate_block_motion(np.full((4, 32, 32, 3), np.nan, np.float32))
    with pytest.raises(TypeError, match="frames: got str"):
        estimate_block_motion("frames.mp4")
    with pytest.raises(ValueError, match="thresholds: got key 'roll'"):
        estimate_block_motion(ok, thresholds={"roll": 0.1})
    with pytest.raises(ValueError, match=r"thresholds\['yaw'\]: got -1"):
        estimate_block_motion(ok, thresholds={"yaw": -1})
    with pytest.raises(ValueError, match="work_width: got 8"):
        estimate_block_motion(ok, work_width=8)
    with pytest.raises(ValueError, match="fov_deg: got 200"):
        estimate_block_motion(ok, fov_deg=200)


def test_keys_and_labels_agree():
    assert expected_axes("W", "→") == {"yaw": 1, "pitch": 0, "forward": 1, "lateral": 0}
    assert expected_axes(8, 8) == {"yaw": -1, "pitch": -1, "forward": -1, "lateral": 1}
    assert expected_label("None", "·") == "still" and expected_label("S+D", "·") == "mixed"
    for label in LABELS:
        move, look = label_to_action(label)
        assert expected_label(move, look) == label
    est = estimate_block_motion(synthetic_block(STREET, "pan_left", amount=0.3, frames=12, rng=0).frames)
    assert matches(est, "None", "←") and not matches(est, "W", "←")
    with pytest.raises(ValueError, match="move: got 'Q'"):
        expected_axes("Q", 0)
    with pytest.raises(ValueError, match="look: got 9"):
        expected_axes(0, 9)
    with pytest.raises(ValueError, match="label: got 'fly'"):
        label_to_action("fly")


def test_synthetic_block_errors():
    with pytest.raises(ValueError, match="label: got 'roll'"):
        synthetic_block(STREET, "roll")
    with pytest.raises(ValueError, match="amount: got 2"):
        synthetic_block(STREET, "pan_left", amount=2)
    with pytest.raises(FileNotFoundError, match="image: no such file"):
        synthetic_block("missing.png", "still")
    with pytest.raises(ValueError, match="size"):
        synthetic_block(STREET, "still", size=(8, 8))


def test_accuracy_reports():
    syn = synthetic_accuracy(per_label=1, labels=CLEAR_LABELS, frames=12)
    assert syn.n == len(CLEAR_LABELS) and syn.label_accuracy == 1.0
    assert "| **pan_left** |" in syn.confusion_markdown() and "label accuracy" in syn.summary_markdown()
    proc = procedural_accuracy(episodes=1, blocks=3, seed=1000, env_kwargs={"frames_per_block": 12})
    assert proc.n == 3 and set(proc.to_dict()["axis_accuracy"]) == set(AXES)
    # a transform sees every block's frames before the estimator: time-reversed, every move reads
    # the other way, so no moving block keeps its axes
    seen = []

    def backwards(frames):
        seen.append(frames.shape)
        return frames[::-1].copy()

    kwargs = {"episodes": 1, "blocks": 3, "seed": 1003, "env_kwargs": {"frames_per_block": 12}}
    plain = procedural_accuracy(**kwargs)
    reversed_ = procedural_accuracy(**kwargs, transform=backwards, name="reversed")
    assert seen == [(12, 96, 160, 3)] * 3 and reversed_.name == "reversed"
    assert plain.exact_accuracy == 1.0 and reversed_.exact_accuracy < 1.0
    with pytest.raises(TypeError, match="transform"):
        procedural_accuracy(episodes=1, blocks=1, transform="blur")


# ------------------------------------------------------------------------------ tasks
def test_default_suite():
    tasks = default_tasks()
    assert 20 <= len(tasks) <= 40
    assert len({t.id for t in tasks}) == len(tasks)
    assert all(t.instruction and t.blocks and isinstance(t.seed, int) for t in tasks)
    assert any(t.event for t in tasks) and all(
        t.image_path() is None or t.image_path().is_file() for t in tasks
    )
    rain = next(t for t in tasks if t.id == "rain-walk")
    assert rain.actions() == [{"move": 1, "look": 0, "event": "It starts to rain."}]
    assert rain.expected == [("W", "·")]


def test_suite_seeds_let_the_expected_keys_move_the_camera():
    from yume_env.evaluation.benchmark import check_procedural_seeds

    tasks = [t for t in default_tasks() if t.id in ("strafe-left", "look-up-then-down", "walk-turning-right")]
    assert check_procedural_seeds(tasks, frames_per_block=8) == {}
    walled = task_from_dict({"id": "w", "instruction": "Look up.", "seed": 1370, "blocks": ["None up"] * 4})
    assert "block 3" in check_procedural_seeds([walled], frames_per_block=8)["w"]  # at the pitch limit


def test_task_files_round_trip_and_errors(tmp_path):
    tasks = default_tasks()[:3]
    path = save_tasks(tasks, tmp_path / "suite.json", description="three")
    assert load_tasks(path) == tasks
    assert [t.id for t in select_tasks(tasks, [tasks[2].id, tasks[0].id])] == [tasks[0].id, tasks[2].id]
    assert len(select_tasks(tasks, limit=2)) == 2
    with pytest.raises(TaskError, match=r"task ids \['nope'\]"):
        select_tasks(tasks, ["nope"])
    good = {"id": "t1", "instruction": "Walk forward.", "seed": 3, "blocks": ["W ."]}
    assert task_from_dict(good).expected == [("W", "·")]
    bad_cases = [
        ({**good, "blocks": ["W sideways"]}, r"task 't1': blocks\[0\]: look 'sideways'"),
        ({**good, "blocks": []}, "blocks: got"),
        ({**good, "seed": -1}, "seed: got -1"),
        ({**good, "id": "has space"}, r"tasks\[0\].id"),
        ({**good, "speed": 3}, r"unknown field\(s\) \['speed'\]"),
        ({**good, "instruction": " "}, "instruction: got"),
        ({**good, "blocks": ["W . x3"]}, "no repeats"),
    ]
    for data, pattern in bad_cases:
        with pytest.raises(TaskError, match=pattern):
            task_from_dict(data)
    (tmp_path / "dup.json").write_text(
        json.dumps({"format": "yume-env-tasks", "version": 1, "tasks": [good, good]})
    )
    with pytest.raises(TaskError, match="appears more than once"):
        load_tasks(tmp_path / "dup.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(TaskError, match="not valid JSON"):
        load_tasks(tmp_path / "junk.json")
    (tmp_path / "other.json").write_text(json.dumps({"tasks": [good]}))
    with pytest.raises(TaskError, match="format"):
        load_tasks(tmp_path / "other.json")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_tasks(tmp_path / "none.json")
    with pytest.raises(TaskError, match="image 'nowhere.png' not found"):
        task_from_dict({**good, "image": "nowhere.png"}).image_path()


# ------------------------------------------------------------------------------ benchmark
SMALL = {"frames_per_block": 16}


@pytest.fixture(scope="module")
def tiny_suite():
    keep = ("walk-forward", "turn-left", "look-up-then-down", "rain-walk")
    return [t for t in default_tasks() if t.id in keep]


def test_benchmark_expected_keys_beat_random_on_the_procedural_world(tiny_suite):
    expected = run_benchmark("expected", tasks=tiny_suite, **SMALL)
    assert expected.if_score == 1.0 and expected.episode_success == 1.0 and expected.world_fidelity == 1.0
    assert expected.event_score == 1.0  # the rain was applied
    assert expected.per_instruction()["None ↑"] == {"blocks": 1, "followed": 1.0}
    assert expected.best_frames.shape[1:] == (96, 160, 3) and expected.worst_frames is not None
    rand = run_benchmark("random", tasks=tiny_suite, seeds=[0, 1], **SMALL)
    assert len(rand.episodes) == 2 * len(tiny_suite) and rand.if_score < expected.if_score
    md = rand.to_markdown()
    assert "| `W ·` |" in md and "## random on procedural" in md
    data = rand.to_dict()
    assert data["summary"]["blocks"] == 2 * 5 and len(data["episodes"][0]["blocks"]) >= 1
    json.dumps(data, default=str)


def test_benchmark_records_failing_policies_and_goes_on(tiny_suite, tmp_path):
    class Clumsy:
        name = "clumsy"

        def reset(self, instruction="", seed=None):
            self.t = 0

        def act(self, observation, info):
            assert info["instruction"] and info["blocks"] >= 1 and info["block"] == self.t
            self.t += 1
            if info["task_id"] == "turn-left":
                raise RuntimeError("lost")
            if info["task_id"] == "rain-walk":
                return {"move": 12, "look": 0}
            return {"move": 1, "look": 0, "event": ""}

    result = run_benchmark(Clumsy(), tasks=tiny_suite, out=tmp_path, keep_frames=False, **SMALL)
    errors = "\n".join(result.errors)
    assert "turn-left: RuntimeError: lost" in errors and "rain-walk: ValueError" in errors
    assert (
        result.per_task()["walk-forward"]["score"] == 1.0 and result.per_task()["turn-left"]["score"] == 0.0
    )
    assert (tmp_path / "results.json").is_file() and (tmp_path / "results.md").is_file()
    assert result.best_frames is None


def test_benchmark_policies_and_bad_arguments(tiny_suite, tmp_path):
    script = tmp_path / "walk.txt"
    script.write_text("W .\n")
    scripted = run_benchmark(f"scripted:{script}", tasks=tiny_suite[:1], keep_frames=False, **SMALL)
    assert scripted.if_score == 1.0
    task = tiny_suite[0]
    assert ExpectedKeysPolicy(task).act(None, {}) == task.actions()[0]
    assert make_policy("agents.random_agent:RandomPolicy").name == "random"
    with pytest.raises(ValueError, match="world: got 'mars'"):
        run_benchmark("random", world="mars", tasks=tiny_suite)
    with pytest.raises(ValueError, match="policy: got 'psychic'"):
        make_policy("psychic")
    with pytest.raises(TypeError, match="policy: got int"):
        make_policy(3)
    with pytest.raises(FileNotFoundError, match="no such script file"):
        make_policy("scripted:/nowhere.txt")
    with pytest.raises(ValueError, match="cannot import"):
        make_policy("no_such_module:Policy")
    with pytest.raises(ValueError, match="seeds: got"):
        run_benchmark("random", tasks=tiny_suite, seeds=[-1])
    with pytest.raises(TaskError, match="tasks: got an empty list"):
        run_benchmark("random", tasks=[])
    with pytest.raises(ValueError, match="checkpoint: world='yume' needs"):
        run_benchmark("random", world="yume", tasks=tiny_suite)
    with pytest.raises(ValueError, match="thresholds"):
        run_benchmark("random", tasks=tiny_suite, estimator={"thresholds": {"roll": 1}})


def test_benchmark_worlds_are_built_from_their_env_ids(tiny_suite):
    from yume_env.envs.procedural_env import YumeProceduralEnv
    from yume_env.evaluation import make_env
    from yume_env.evaluation.worlds import WORLDS, benchmark_world, start_image

    assert WORLDS == ("procedural", "tiny", "yume")
    env = make_env("procedural", resolution=(32, 48), frames_per_block=4)
    assert env.spec.id == "YumeProcedural-v0" and isinstance(env.unwrapped, YumeProceduralEnv)
    task = tiny_suite[0]
    procedural = benchmark_world("procedural")
    obs, info = procedural.start(env, task, seed=5, image_cache={})
    assert procedural.world_seed(task, 5) == task.seed and obs.shape == (4, 32, 48, 3)
    # the procedural world starts at the task's scene seed: the same first frame a generated world gets
    np.testing.assert_array_equal(obs[0], start_image(task, (32, 48), {}))
    env.close()
    tiny = benchmark_world("tiny")
    assert tiny.world_seed(task, 5) == 5 and not tiny.ground_truth
    assert tiny.env_arguments(resolution=(32, 64)) == {"model": "tiny", "resolution": (32, 64)}
    assert benchmark_world("yume").env_arguments(checkpoint="ck") == {
        "model": "yume-1.5-5b",
        "checkpoint": "ck",
    }
    with pytest.raises(ValueError, match="model/checkpoint: got a value for world='procedural'"):
        make_env("procedural", model="tiny")
    with pytest.raises(ValueError, match="world: got 'mars'; accepted: procedural, tiny, yume"):
        make_env("mars")
    own = YumeProceduralEnv(resolution=(32, 48))
    own.reset(seed=task.seed)
    np.testing.assert_array_equal(own.start_image(), start_image(task, (32, 48), {}))


# ------------------------------------------------------------------------------ CLI
def test_eval_cli_writes_tables_plots_and_videos(tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(
        [
            "--policy",
            "expected,random",
            "--task",
            "turn-left",
            "--task",
            "walk-forward",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    for name in (
        "results.md",
        "results.json",
        "if_by_instruction.png",
        "if_by_task.png",
        "expected_keys_best.mp4",
        "random_worst.mp4",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    md = (out / "results.md").read_text()
    assert "| expected_keys | procedural | **100.0%**" in md and "yume-world eval --policy" in md
    data = json.loads((out / "results.json").read_text())
    assert [r["summary"]["policy"] for r in data["results"]] == ["expected_keys", "random"]
    assert "IF 100.0%" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--policy", "psychic"], "policy: got 'psychic'"),
        (["--world", "mars"], "--world: got 'mars'"),
        (["--world", "yume"], "--checkpoint: world 'yume' needs"),
        (["--tasks", "/no/such/suite.json"], "no such file"),
        (["--task", "nope"], "not in the suite"),
        (["--seeds", "a,b"], "--seeds: got 'a,b'"),
        (["--resolution", "big"], "--resolution: got 'big'"),
        (["--device", "cuda"], "--device: not used by world 'procedural'"),
        (["--limit", "0"], "--limit: got 0"),
        (["--bogus"], "unrecognized arguments"),
        (["--threshold", "yaw"], "--threshold: got 'yaw'; accepted: AXIS=VALUE"),
        (["--threshold", "roll=1"], "--threshold: thresholds: got key 'roll'"),
        (["--threshold", "yaw=-1"], "--threshold: thresholds['yaw']: got -1.0"),
    ],
)
def test_eval_cli_usage_errors_exit_2(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_cli_threshold_reaches_the_estimator(tmp_path):
    """A yaw threshold larger than any turn makes the turns read as still: the score drops to 0."""
    scores = {}
    for name, extra in (("default", []), ("strict", ["--threshold", "yaw=5"])):
        out = tmp_path / name
        argv = ["--policy", "expected", "--task", "turn-left", "--out", str(out), "--quiet", "--no-video"]
        assert main([*argv, "--no-plots", *extra]) == 0
        data = json.loads((out / "results.json").read_text())["results"][0]
        scores[name] = data["summary"]["if_score"]
        if name == "strict":
            assert data["settings"]["estimator"] == {"thresholds": {"yaw": 5.0}}
    assert scores == {"default": 1.0, "strict": 0.0}


def test_eval_cli_help_and_the_yume_world_entry_point(capsys):
    assert main(["--help"]) == 0
    assert "--policy" in capsys.readouterr().out
    from yume_env.cli import main as yume_world

    assert yume_world(["eval", "--", "--policy", "psychic"]) == 2
    assert "policy: got 'psychic'" in capsys.readouterr().err
