"""``WorldSpec``: the one checked list of world-building arguments (errors, pickling, equality, build)."""

from __future__ import annotations

import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import yume_env  # noqa: F401
from yume_env.world.model_cache import get_model
from yume_env.world.spec import WorldSpec
from yume_env.world.stream import Action, WorldStream

SMALL = (32, 64)
IMAGE = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)


def test_defaults_are_documented_values_and_normalized():
    spec = WorldSpec()
    assert (spec.model, spec.decode, spec.fit, spec.speed, spec.decoder) == (
        "tiny",
        "block",
        "stretch",
        "auto",
        "vae",
    )
    assert spec.steps is None and spec.threads is None and spec.compile is False and spec.check_finite is True
    odd = WorldSpec(
        checkpoint=Path("ckpt"),
        device=torch.device("cpu"),
        dtype=torch.bfloat16,
        resolution=[np.int64(32), 64],
        shift=7,
    )
    assert odd.checkpoint == "ckpt" and odd.device == "cpu" and odd.dtype == "bfloat16"
    assert odd.resolution == (32, 64) and odd.shift == 7.0 and isinstance(odd.shift, float)


@pytest.mark.parametrize(
    "kw, error, words",
    [
        ({"model": "huge"}, ValueError, ("model: got 'huge'", "tiny", "yume-1.5-5b")),
        ({"checkpoint": 5}, TypeError, ("checkpoint: got int", "path")),
        ({"device": 3}, ValueError, ("device: got 3", "'cuda'")),
        ({"dtype": "int8"}, ValueError, ("dtype: got 'int8'", "bfloat16")),
        ({"resolution": (32,)}, ValueError, ("resolution: got (32,)", "(height, width)")),
        ({"resolution": (0, 64)}, ValueError, ("resolution: got (0, 64)", "positive")),
        ({"steps": 0}, ValueError, ("steps: got 0", ">= 1")),
        ({"shift": "x"}, TypeError, ("shift: got 'x'", "number > 0")),
        ({"shift": -1.0}, ValueError, ("shift: got -1.0", "> 0")),
        ({"shift": float("nan")}, ValueError, ("shift: got nan", "finite")),
        ({"decode": "fast"}, ValueError, ("decode: got 'fast'", "block, stream, none")),
        ({"fit": "pad"}, ValueError, ("fit: got 'pad'", "stretch, crop")),
        ({"speed": 3}, ValueError, ("speed: got 3", "SpeedFields")),
        ({"max_history": 2}, ValueError, ("max_history: got 2", ">= 3")),
        ({"decoder": "taesd"}, ValueError, ("decoder: got 'taesd'", "vae, taew2_2, taew2_2_super")),
        ({"decode_dtype": "int4"}, ValueError, ("decode_dtype: got 'int4'",)),
        ({"threads": 0}, ValueError, ("threads: got 0", ">= 1")),
        ({"compile": "yes"}, ValueError, ("compile: got 'yes'", "True or False")),
        (
            {"reuse_history_kv": 1},
            ValueError,
            ("reuse_history_kv: got 1", "False (exact), True or 'block', or 'episode'"),
        ),
    ],
)
def test_bad_arguments_name_the_argument_the_value_and_what_is_accepted(kw, error, words):
    with pytest.raises(error) as info:
        WorldSpec(**kw)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_unknown_names_are_refused_listing_the_accepted_ones():
    with pytest.raises(TypeError) as info:
        WorldSpec.from_kwargs(resolution=SMALL, stepz=2)
    message = str(info.value)
    assert "'stepz'" in message and all(name in message for name in WorldSpec.names())
    # the envs refuse it the same way, listing their own arguments too
    with pytest.raises(TypeError, match=r"'stepz'.*obs_mode.*max_episode_steps.*resolution"):
        gym.make("YumeWorld-v0", image=IMAGE, resolution=SMALL, stepz=2)
    with pytest.raises(TypeError, match="'stepz'"):
        gym.make_vec("YumeWorld-v0", num_envs=2, image=IMAGE, resolution=SMALL, stepz=2)


def test_frozen_equal_by_value_and_picklable():
    a = WorldSpec.from_kwargs(resolution=[32, 64], steps=2, dtype=torch.float32)
    b = WorldSpec(resolution=(32, 64), steps=2, dtype="float32")
    assert a == b and hash(a) == hash(b) and a != WorldSpec(resolution=(32, 64), steps=3)
    with pytest.raises(AttributeError):
        a.steps = 4
    assert pickle.loads(pickle.dumps(a)) == a
    assert a.replace(decode="none").decode == "none" and a.decode == "block"
    with pytest.raises(ValueError, match="decode: got 'x'"):
        a.replace(decode="x")
    assert WorldSpec(**a.as_kwargs()) == a


def test_build_gives_the_stream_the_arguments_describe():
    spec = WorldSpec(resolution=SMALL, steps=2, decode="none", max_history=20)
    stream = spec.build(3)
    assert isinstance(stream, WorldStream) and stream.num_worlds == 3 and stream.resolution == SMALL
    assert stream.sampler.steps == 2 and stream.decode_mode == "none" and stream.max_history == 20
    assert stream.model is get_model("tiny") and stream.frames_per_block == 0
    # the same spec builds the same worlds: same seed and actions, same latents
    twin = spec.build(1)
    for s in (stream, twin):
        s.reset(0, image=IMAGE, seed=5)
    a, b = stream.step([Action(1, 2, "")] + [None] * 2)[0], twin.step([Action(1, 2, "")])[0]
    assert torch.equal(a.latents, b.latents)
    with pytest.raises(ValueError, match="max_history: got 5000"):  # the preset's bound, at build
        WorldSpec(max_history=5000).build(1)
    with pytest.raises(ValueError, match="resolution: got 100x100"):
        WorldSpec(resolution=(100, 100)).build(1)


def test_envs_are_built_from_one_spec():
    env = gym.make("YumeWorld-v0", image=IMAGE, resolution=SMALL, steps=2, obs_mode="latent").unwrapped
    venv = gym.make_vec("YumeWorld-v0", num_envs=2, image=IMAGE, resolution=SMALL, steps=2, obs_mode="latent")
    assert env.world_spec == venv.world_spec == WorldSpec(resolution=SMALL, steps=2, decode="none")
    last = gym.make("YumeWorld-v0", image=IMAGE, resolution=SMALL, obs_mode="last_frame").unwrapped
    assert last.world_spec.last_frame_only and last.stream.frames_per_block == 1
