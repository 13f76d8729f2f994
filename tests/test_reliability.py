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


# ------------------------------------------------------------------------------ worlds and steps
import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import yume_env  # noqa: E402,F401  (registers the environments)

SMALL = (32, 64)
IMAGE = (np.random.default_rng(1).random((40, 70, 3)) * 255).astype(np.uint8)
GO = {"move": 1, "look": 0, "event": ""}


def make(**kw):
    return gym.make("YumeWorld-v0", **{"image": IMAGE, "resolution": SMALL, **kw}).unwrapped


def world_state(stream, i: int = 0) -> tuple:
    """Everything that decides world ``i``'s future, as comparable plain values."""
    w = stream.worlds[i]
    return (
        None if w.history is None else w.history.clone(),
        w.event,
        w.block_index,
        w.dropped_latents,
        None if w.generator is None else w.generator.get_state().clone(),
        None if w.last_frames is None else w.last_frames.copy(),
    )


def assert_same_state(a: tuple, b: tuple) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y)
        elif isinstance(x, np.ndarray):
            assert np.array_equal(x, y)
        else:
            assert x == y


def test_text_start_in_stream_mode_fills_the_observation_space():
    env = make(image=None, prompt="A quiet street at dawn.", decode="stream")
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (32, *SMALL, 3)
    obs, *_ = env.step(GO)
    assert env.observation_space.contains(obs)


def test_vector_env_mixing_image_and_text_starts_in_stream_mode():
    envs = gym.make_vec(
        "YumeWorld-v0",
        num_envs=2,
        image=[IMAGE, None],
        prompt=["", "A quiet street at dawn."],
        decode="stream",
        resolution=SMALL,
    )
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 32, *SMALL, 3)


@pytest.mark.parametrize(
    "reward_fn, error, words",
    [
        (lambda o, a, i: 1 / 0, "RewardFunctionError", ("reward_fn", "ZeroDivisionError", "undone")),
        (lambda o, a, i: "high", TypeError, ("reward_fn", "'high'", "float")),
        (lambda o, a, i: None, TypeError, ("reward_fn", "None", "float")),
        (lambda o, a, i: float("nan"), ValueError, ("reward_fn", "nan", "finite")),
    ],
)
def test_failing_reward_fn_leaves_the_world_as_it_was(reward_fn, error, words):
    from yume_env.envs.validation import RewardFunctionError

    error = RewardFunctionError if error == "RewardFunctionError" else error
    env = make(reward_fn=lambda o, a, i: 0.5, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(GO)
    before, steps, frame = world_state(env.stream), env._steps, env.render().copy()
    env.reward_fn = reward_fn
    with pytest.raises(error) as info:
        env.step({"move": 2, "look": 1, "event": "It rains."})
    assert all(w in str(info.value) for w in words), str(info.value)
    assert_same_state(before, world_state(env.stream))
    assert env._steps == steps and np.array_equal(env.render(), frame)
    # the next step is exactly the one a fresh copy of the world would take
    env.reward_fn = lambda o, a, i: 0.5
    obs, reward, *_ = env.step(GO)
    twin = make(reward_fn=lambda o, a, i: 0.5)
    twin.reset(seed=0)
    twin.step(GO)
    assert reward == 0.5 and np.array_equal(obs, twin.step(GO)[0])


def test_failing_reward_fn_in_a_vector_env_leaves_every_world_as_it_was():
    calls = []

    def reward(obs, action, info):
        calls.append(info["world"])
        if info["world"] == 1 and len(calls) > 2:
            raise RuntimeError("broken scorer")
        return 1.0

    envs = gym.make_vec("YumeWorld-v0", num_envs=2, image=IMAGE, resolution=SMALL, reward_fn=reward).unwrapped
    envs.reset(seed=0)
    actions = {"move": np.array([1, 2]), "look": np.array([0, 1]), "event": ("", "")}
    envs.step(actions)
    before = [world_state(envs.stream, i) for i in range(2)]
    with pytest.raises(RuntimeError, match="reward_fn raised RuntimeError: broken scorer"):
        envs.step(actions)
    for i in range(2):
        assert_same_state(before[i], world_state(envs.stream, i))
    assert envs._steps.tolist() == [1, 1]


def make_vec(n=2, **kw):
    return gym.make_vec("YumeWorld-v0", num_envs=n, **{"image": IMAGE, "resolution": SMALL, **kw}).unwrapped


@pytest.mark.parametrize(
    "prompt, words",
    [
        ("A bell rings.\x07", ("options['prompt'][1]", "'\\x07'")),
        ("a" * 5000, ("options['prompt'][1]", "5000")),
    ],
)
def test_vector_reset_validates_prompts_like_the_single_env(prompt, words):
    envs = make_vec()
    with pytest.raises(ValueError) as info:
        envs.reset(seed=0, options={"prompt": ["It rains.", prompt]})
    assert all(w in str(info.value) for w in words), str(info.value)
    single = make()
    with pytest.raises(ValueError, match=r"options\['prompt'\]"):
        single.reset(seed=0, options={"prompt": prompt})


def test_explorers_reset_validates_prompts():
    from yume_env.envs.multi_agent import ExplorersEnv

    env = ExplorersEnv(2, "yume", {"image": IMAGE, "resolution": SMALL, "obs_mode": "latent"}, max_cycles=2)
    with pytest.raises(ValueError, match=r"options\['prompt'\]\[0\]"):
        env.reset(seed=0, options={"prompt": "x" * 5000})


def test_vector_reset_failing_on_one_world_changes_no_world():
    envs = make_vec(3)
    envs.reset(seed=0)
    envs.step({"move": np.array([1, 2, 3]), "look": np.array([0, 1, 2]), "event": ("", "", "")})
    before = [world_state(envs.stream, i) for i in range(3)]
    rngs = [r.bit_generator.state for r in envs._rngs]
    for bad in (
        {"image": [IMAGE, IMAGE, "no/such/file.png"]},
        {"prompt": ["ok", "ok", "bad\x01"]},
        {"image": [IMAGE, np.zeros((0, 4, 3), np.uint8), IMAGE]},
    ):
        with pytest.raises((ValueError, FileNotFoundError)):
            envs.reset(seed=[5, 6, 7], options=bad)
        for i in range(3):
            assert_same_state(before[i], world_state(envs.stream, i))
        assert [r.bit_generator.state for r in envs._rngs] == rngs
        assert envs._steps.tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match=r"seed\[1\]"):
        envs.reset(seed=[1, -2, 3])


@pytest.mark.parametrize("options", [5, "prompt", ["image"]])
def test_reset_options_that_are_not_a_dict(options):
    for env in (make(), make_vec()):
        with pytest.raises(TypeError, match="options: got"):
            env.reset(seed=0, options=options)


def test_single_env_failed_reset_keeps_its_episode():
    env = make()
    env.reset(seed=0)
    env.step(GO)
    before, rng = world_state(env.stream), env.np_random.bit_generator.state
    with pytest.raises(FileNotFoundError, match="image"):
        env.reset(options={"image": "no/such/file.png"})
    assert_same_state(before, world_state(env.stream))
    assert env.np_random.bit_generator.state == rng and env._steps == 1


@pytest.mark.parametrize(
    "other_kw, word",
    [
        ({"resolution": (64, 64)}, "resolution"),
        ({"steps": 2}, "steps"),
        ({"dtype": "bfloat16"}, "dtype"),
        ({"decode": "stream"}, "decode"),
        ({"model": "random-tiny"}, "model weights"),
    ],
)
def test_restore_refuses_a_snapshot_of_another_kind_of_world(other_kw, word):
    if other_kw.get("model") == "random-tiny":
        from yume_env.model.pipeline import build_model

        other_kw = {"model": build_model("tiny", seed=3)}
    env = make()
    env.reset(seed=0)
    env.step(GO)
    other = make(**other_kw)
    other.reset(seed=1)
    before = world_state(env.stream)
    with pytest.raises(ValueError, match=f"snapshot: taken from a different kind of world.*{word}"):
        env.restore(other.snapshot())
    assert_same_state(before, world_state(env.stream))
    with pytest.raises(TypeError, match="snapshot"):
        env.restore("not a snapshot")


def test_render_after_restore_and_observations_do_not_alias_the_world():
    env = make(render_mode="rgb_array")
    env.reset(seed=0)
    snap = env.snapshot()
    at_snapshot = env.render().copy()
    obs, *_ = env.step({"move": 0, "look": 1, "event": "Night falls."})
    assert not np.array_equal(env.render(), at_snapshot)
    env.restore(snap)
    assert np.array_equal(env.render(), at_snapshot)
    obs, *_ = env.step(GO)
    stored = env.stream.worlds[0].last_frames.copy()
    obs[...] = 0  # a user scribbling on an observation changes nothing in the world
    assert np.array_equal(env.stream.worlds[0].last_frames, stored)
    assert np.array_equal(env.render(), stored[-1])
    vec = make_vec(render_mode="rgb_array")
    batch, _ = vec.reset(seed=0)
    batch[...] = 0
    assert vec.render()[0].any() and vec._last_obs[0].any()


ASYNC = """
import gymnasium as gym, numpy as np
import yume_env
envs = gym.make_vec("YumeWorld-v0", num_envs=2, vectorization_mode="async", resolution=(32, 64))
obs, _ = envs.reset(seed=0)
obs, *_ = envs.step({"move": np.array([1, 2]), "look": np.array([0, 0]), "event": ("", "")})
print("OK", obs.shape)
envs.close()
"""


@pytest.mark.slow
def test_async_vector_env_does_not_hang():
    # forked workers used to wait forever on torch's thread pool copied from the parent
    out = subprocess.run([sys.executable, "-c", ASYNC], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0 and "OK (2, 29, 32, 64, 3)" in out.stdout, out.stderr[-2000:]


# ------------------------------------------------------------------------------ huge inputs, fast refusals
def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` (a few hundred bytes, nothing to decode)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width * 3 + 1))  # one row; the decoder would need all of them
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def refused_quickly(fn, error, match: str, seconds: float = 1.0, peak_mb: float = 64.0):
    import tracemalloc

    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(error, match=match):
            fn()
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < peak_mb, f"peak {peak:.0f} MiB"


def test_huge_image_is_refused_from_its_header(tmp_path):
    from yume_env.world.images import load_image

    big = png_header_only(tmp_path / "big.png", 10000, 9000)
    assert big.stat().st_size < 100_000
    refused_quickly(lambda: load_image(big, SMALL), ValueError, r"image: .*10000x9000 \(90\.0 megapixels\)")


def test_huge_resolution_is_refused_before_allocating():
    make()  # the model is loaded (and cached) first: only the refusal is timed
    refused_quickly(lambda: make(resolution=(6400, 6400)), ValueError, r"resolution: got 6400x6400")


def tiny_checkpoint_copy(tmp_path: Path) -> Path:
    from yume_env.model.pipeline import TINY_CHECKPOINT

    folder = tmp_path / "ckpt"
    shutil.copytree(TINY_CHECKPOINT, folder)
    return folder


def test_oversized_and_malformed_configs_are_refused_quickly(tmp_path):
    from yume_env.model.checkpoint import CheckpointError
    from yume_env.model.pipeline import load_checkpoint

    folder = tiny_checkpoint_copy(tmp_path)
    config_path = folder / "config.json"
    good = json.loads(config_path.read_text())
    for change, match in (
        ({"num_layers": 20000}, r"config.json num_layers: got 20000; accepted: an integer in 1\.\.512"),
        ({"num_heads": 0}, r"config.json num_heads: got 0"),
        ({"dim": 32768, "ffn_dim": 65536, "num_layers": 512, "num_heads": 32}, r"parameters; accepted"),
        ({"dim": "wide"}, r"config.json dim: got 'wide'"),
    ):
        config_path.write_text(json.dumps({**good, **change}))
        refused_quickly(lambda: load_checkpoint(folder, "cpu"), CheckpointError, match)
    config_path.write_text(json.dumps([good]))
    refused_quickly(
        lambda: load_checkpoint(folder, "cpu"), CheckpointError, r"config.json .*holds a JSON list"
    )


def test_integer_weights_in_a_checkpoint_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    from yume_env.model.checkpoint import CheckpointError
    from yume_env.model.pipeline import load_checkpoint

    folder = tiny_checkpoint_copy(tmp_path)
    path = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    key = sorted(state)[0]
    for dtype in (torch.int8, torch.bool):
        state[key] = state[key].to(dtype)
        save_file(state, str(path))
        with pytest.raises(CheckpointError, match=f"{key}.* is {str(dtype)[6:]}; accepted: a floating-point"):
            load_checkpoint(folder, "cpu")


# ------------------------------------------------------------------------------ conversions, threads, errors
def test_float_and_integer_pil_images_have_a_defined_scale():
    from PIL import Image

    from yume_env.world.images import load_image

    grey = np.full((8, 8), 100.0, np.float32)
    as_0_255 = load_image(Image.fromarray(grey, mode="F"), (8, 8))
    assert torch.allclose(as_0_255, torch.full_like(as_0_255, 100 / 255 * 2 - 1))  # not all white
    as_0_1 = load_image(Image.fromarray(grey / 255, mode="F"), (8, 8))
    assert torch.allclose(as_0_1, as_0_255, atol=1e-6)
    wide = load_image(Image.fromarray(np.full((8, 8), 30000, np.int32), mode="I"), (8, 8))
    assert torch.allclose(wide, torch.full_like(wide, 30000 / 65535 * 2 - 1))
    for bad in (
        Image.fromarray(np.full((8, 8), 300.0, np.float32), mode="F"),
        Image.fromarray(np.full((8, 8), -1.0, np.float32), mode="F"),
        Image.fromarray(np.full((8, 8), 70000, np.int32), mode="I"),
    ):
        with pytest.raises(ValueError, match=r"image: a mode [FI] image with values in"):
            load_image(bad, (8, 8))


def test_text_cache_is_safe_under_threads():
    from collections import OrderedDict
    from concurrent.futures import ThreadPoolExecutor

    from yume_env.envs.model_cache import get_model
    from yume_env.model.text_encoder import TextEncoder

    base = get_model("tiny", device="cpu").text
    encoder = TextEncoder(base.model, base.tokenizer, text_len=base.text_len, cache_size=4)
    captions = [f"A red balloon number {i} floats up." for i in range(6)]
    expected = {c: encoder.encode([c])[0].clone() for c in captions}

    class SlowLookups(OrderedDict):  # widens the gap between a lookup and its use, where a race bites
        def get(self, key, default=None):
            value = super().get(key, default)
            time.sleep(0.0005)
            return value

    encoder._cache = SlowLookups(encoder._cache)

    def work(seed: int):
        rng = np.random.default_rng(seed)
        for _ in range(20):
            batch = [captions[j] for j in rng.integers(0, len(captions), 3)]
            for c, ctx in zip(batch, encoder.encode(batch)):
                assert torch.equal(ctx, expected[c])

    with ThreadPoolExecutor(8) as pool:
        for f in [pool.submit(work, s) for s in range(8)]:
            f.result()  # re-raises a KeyError from a torn cache
    assert len(encoder) <= 4


@pytest.mark.parametrize(
    "kw, error, match",
    [
        ({"shift": "x"}, TypeError, "shift: got 'x'"),
        ({"model": ["tiny"]}, ValueError, r"model: got \['tiny'\]"),
        ({"checkpoint": 5}, TypeError, "checkpoint: got int"),
        ({"device": "cpu:3"}, ValueError, "device: got 'cpu:3'"),
    ],
)
def test_bad_constructor_arguments_get_clear_errors(kw, error, match):
    with pytest.raises(error, match=match):
        YumeWorld(**kw)


def YumeWorld(**kw):
    from yume_env.envs.yume_world import YumeWorldEnv

    return YumeWorldEnv(**{"image": IMAGE, "resolution": SMALL, **kw})


def test_bundled_samples_by_name_and_a_clear_error_for_a_missing_file():
    from yume_env.world.images import load_image

    assert torch.equal(
        load_image("street", SMALL), load_image(ROOT / "yume_env/assets/samples/street.png", SMALL)
    )
    with pytest.raises(
        FileNotFoundError, match=r"image: no such file: street\.jpg.*'park', 'plaza', 'street'"
    ):
        load_image("street.jpg", SMALL)


def test_large_aspect_change_warns_and_crop_does_not():
    import warnings

    from yume_env.world.images import load_image

    portrait = np.zeros((160, 90, 3), np.uint8)
    with pytest.warns(UserWarning, match="fit='crop'"):
        load_image(portrait, SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(portrait, SMALL, fit="crop")
        load_image(IMAGE, SMALL)


# ------------------------------------------------------------------------------ command line
def test_traceback_flag_works_with_train_and_eval(tmp_path, capsys):
    from yume_env.cli import main
    from yume_env.train.trainer import TrainingUsageError

    for command in ("train", "eval"):
        try:
            code = main(["--traceback", command, "--help"])
        except SystemExit as exc:
            code = exc.code
        assert code == 0 and "usage: " in capsys.readouterr().out
    args = ["train", "--resume", "--out", str(tmp_path / "none")]
    assert main(args) == 2  # a usage error
    assert "resume:" in capsys.readouterr().err
    with pytest.raises(TrainingUsageError, match="resume"):
        main(["--traceback", *args])


@pytest.mark.parametrize("fps", ["-5", "0", "ten"])
def test_demo_refuses_a_bad_fps_before_rendering(fps, capsys):
    from yume_env.cli import main

    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--fps", fps])
    assert exit_info.value.code == 2 and time.perf_counter() - t0 < 5
    assert "--fps" in capsys.readouterr().err


def test_script_with_a_byte_order_mark(tmp_path):
    from yume_env.script import parse_script

    steps = parse_script("\ufeffW right A red balloon appears.\nS .\n")
    assert [(s.move, s.event) for s in steps] == [("W", "A red balloon appears."), ("S", "")]


def test_script_repeats_are_unambiguous():
    from yume_env.script import ScriptError, parse_script

    with pytest.raises(ScriptError, match=r"line 1: .*'x3' after event text, which is ambiguous"):
        parse_script("W . The score is x3")
    assert [s.event for s in parse_script("x3 W . The score is")] == ["The score is"] * 3
    assert [s.event for s in parse_script("x1 W . The score is x3")] == ["The score is x3"]
    assert len(parse_script("W right x3")) == 3
    with pytest.raises(ScriptError, match="repeat x0"):
        parse_script("x0 W .")


# ------------------------------------------------------------------------------ newcomers
def test_action_space_samples_catalog_events_and_stays_valid():
    from yume_env.envs.spaces import SAMPLE_EVENTS, action_space

    space = action_space(seed=0)
    samples = [space.sample() for _ in range(300)]
    assert all(space.contains(s) for s in samples)
    events = [s["event"] for s in samples]
    assert set(events) <= {"", *SAMPLE_EVENTS} and 0.6 < events.count("") / len(events) < 1.0
    again = action_space(seed=0)
    assert [again.sample() for _ in range(300)] == samples  # seeded: reproducible
    assert len(space.sample(mask={"move": None, "look": None, "event": None})["event"]) >= 0


def test_sb3_refusal_names_the_route():
    stable_baselines3 = pytest.importorskip("stable_baselines3")
    env = make()
    with pytest.raises(AssertionError, match="make_sb3_env"):
        stable_baselines3.PPO("MultiInputPolicy", env, device="cpu")


def test_sb3_env_with_latent_observations():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from yume_env.envs.wrappers import make_sb3_env

    env = make_sb3_env(image=IMAGE, resolution=SMALL, obs_mode="latent", max_episode_steps=3)
    assert env.observation_space.shape == (48, 8, 2, 4) and env.observation_space.dtype == np.float32
    sb3_check_env(env, warn=False)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
