"""Property-based checks: any input either works or raises a clear error and changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from yume_env.envs.yume_world import YumeWorldEnv

SMALL = (32, 64)
IMAGE = (np.random.default_rng(1).random((40, 70, 3)) * 255).astype(np.uint8)
BOUNDED = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure reproduces
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def env():
    world = YumeWorldEnv(image=IMAGE, resolution=SMALL, obs_mode="latent")
    world.reset(seed=0)
    return world


def state_of(world: YumeWorldEnv) -> tuple:
    w = world.stream.worlds[0]
    return (w.history.clone(), w.event, w.block_index, w.generator.get_state().clone(), world._steps)


def same(a: tuple, b: tuple) -> bool:
    return all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(a, b))


indices = st.one_of(
    st.integers(-3, 12), st.floats(allow_nan=True), st.booleans(), st.none(), st.text(max_size=3)
)
events = st.one_of(st.text(max_size=320), st.sampled_from(["", " ", "It rains.", "x" * 300]), st.integers())
actions = st.one_of(
    st.fixed_dictionaries(
        {"move": indices, "look": indices}, optional={"event": events, "jump": st.integers()}
    ),
    st.none(),
    st.integers(),
    st.lists(st.integers(0, 8), max_size=3),
)


@BOUNDED
@given(action=actions)
def test_any_action_steps_the_world_or_changes_nothing(env, action):
    before = state_of(env)
    try:
        obs, reward, terminated, truncated, info = env.step(action)
    except (ValueError, TypeError) as exc:
        assert "action" in str(exc)
        assert same(before, state_of(env))
        return
    assert env.observation_space.contains(obs)
    assert info["block_index"] == before[2] + 1 and reward == 0.0


images = st.one_of(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_]),
        shape=st.one_of(
            st.tuples(st.integers(0, 40), st.integers(0, 40)),
            st.tuples(st.integers(0, 40), st.integers(0, 40), st.sampled_from([1, 2, 3, 4, 5])),
            st.tuples(st.integers(1, 3), st.integers(1, 8), st.integers(1, 8), st.integers(1, 4)),
        ),
    ),
    st.sampled_from(["street", "no/such/file.png", 5, None]),
)


@BOUNDED
@given(image=images)
def test_any_start_image_starts_a_world_or_changes_nothing(env, image):
    env.reset(seed=0)
    before = state_of(env)
    try:
        obs, info = env.reset(seed=1, options={"image": image})
    except (ValueError, TypeError, FileNotFoundError) as exc:
        assert "image" in str(exc)
        assert same(before, state_of(env))
        return
    assert env.observation_space.contains(obs) and info["block_index"] == 0


@BOUNDED
@given(
    kw=st.fixed_dictionaries(
        {},
        optional={
            "obs_mode": st.sampled_from(["frames", "last_frame", "latent", "pixels", None]),
            "decode": st.sampled_from(["block", "stream", "none", "fast"]),
            "fit": st.sampled_from(["stretch", "crop", "fill"]),
            "steps": st.one_of(st.integers(-1, 3), st.floats(0, 3)),
            "shift": st.one_of(st.floats(allow_nan=True), st.text(max_size=2)),
            "max_history": st.integers(-1, 40),
            "resolution": st.tuples(st.sampled_from([0, 32, -32]), st.sampled_from([32, 64, 33])),
            "max_episode_steps": st.one_of(st.integers(-1, 3), st.none()),
            "render_mode": st.sampled_from([None, "rgb_array", "human"]),
            "prompt": st.text(max_size=20),
        },
    )
)
def test_any_constructor_arguments_build_a_working_world_or_fail_clearly(kw):
    kw = {"image": IMAGE, "resolution": SMALL, **kw}
    try:
        world = YumeWorldEnv(**kw)
    except (ValueError, TypeError) as exc:
        named = [k for k in kw if k in str(exc)] + (["steps"] if "steps" in str(exc) else [])
        assert named, f"the error names no argument: {exc}"
        return
    obs, info = world.reset(seed=0)
    assert world.observation_space.contains(obs)
