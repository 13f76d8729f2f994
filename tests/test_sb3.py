"""stable-baselines3 support: Discrete actions, channel-first frames, and both checkers on YumeWorld-v0."""

from __future__ import annotations

import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import yume_env  # noqa: F401  (registers YumeWorld-v0)
from yume_env.actions import EVENT_MAX_LENGTH, LOOKS, MOVES
from yume_env.envs.spaces import action_space
from yume_env.envs.wrappers import (
    ChannelFirstFrames,
    DiscreteActions,
    make_sb3_env,
    resize_bilinear,
)

EVENTS = ["A red balloon floats up.", "It starts to rain."]
# The smallest resolution the tiny preset accepts keeps each step (VAE decode) cheap on a CPU.
TINY_WORLD = {"resolution": (32, 32), "max_episode_steps": 4}


def start_image(h: int = 32, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 96)], axis=-1).astype(np.uint8)


class FakeFrames(gym.Env):
    """Same spaces as YumeWorld-v0 (frames mode), no model: frame ``t`` channel ``c`` is ``10 * t + c``."""

    metadata = {"render_modes": []}

    def __init__(self, t: int = 4, h: int = 16, w: int = 20, single: bool = False):
        shape = (h, w, 3) if single else (t, h, w, 3)
        self.observation_space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self.action_space = action_space()
        self.last_action = None

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, np.uint8)
        if obs.ndim == 3:
            obs[...] = np.arange(3, dtype=np.uint8)
        else:
            obs[...] = 10 * np.arange(obs.shape[0], dtype=np.uint8)[:, None, None, None] + np.arange(3)
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.last_action = action
        return self._obs(), 0.0, False, False, {}


# ---------------------------------------------------------------------------------------------- actions
def test_discrete_81_round_trip():
    env = DiscreteActions(FakeFrames())
    assert env.action_space == spaces.Discrete(81)
    assert len(env.table) == 81
    for index in range(81):
        action = env.decode(index)
        assert action == {"move": index // 9, "look": index % 9, "event": ""}
        assert env.unwrapped.action_space.contains(action)
        assert env.encode(action) == index
        assert env.encode({"move": action["move"], "look": action["look"]}) == index  # event optional


def test_discrete_event_catalog_round_trip():
    env = DiscreteActions(FakeFrames(), events=EVENTS)
    assert env.action_space == spaces.Discrete(81 * 3)
    assert env.events == tuple(EVENTS)
    for index in range(81 * 3):
        action = env.decode(index)
        slot, rest = divmod(index, 81)
        assert action == {"move": rest // 9, "look": rest % 9, "event": ([""] + EVENTS)[slot]}
        assert env.encode(action) == index
    assert env.decode(81 + 9 * 1 + 2) == {"move": 1, "look": 2, "event": EVENTS[0]}


def test_discrete_step_sends_decoded_action():
    env = DiscreteActions(FakeFrames(), events=EVENTS)
    env.reset(seed=0)
    env.step(np.int64(2 * 81 + 5 * 9 + 3))
    assert env.unwrapped.last_action == {"move": 5, "look": 3, "event": EVENTS[1]}
    env.step(np.array([4]))  # SB3 may hand over a 1-element array
    assert env.unwrapped.last_action == {"move": 0, "look": 4, "event": ""}


def test_discrete_subsets():
    env = DiscreteActions(FakeFrames(), events=EVENTS[:1], moves=[0, 1, 3], looks=["·", LOOKS[1], 2])
    assert env.moves == (0, 1, 3) and env.looks == (0, 1, 2)
    assert env.action_space == spaces.Discrete(3 * 3 * 2)
    assert env.decode(0) == {"move": 0, "look": 0, "event": ""}
    assert env.decode(1 * 3 + 2) == {"move": 1, "look": 2, "event": ""}
    assert env.decode(9 + 2 * 3 + 1) == {"move": 3, "look": 1, "event": EVENTS[0]}
    for index in range(18):
        assert env.encode(env.decode(index)) == index
    with pytest.raises(ValueError, match=r"action\['move'\].*moves \[0, 1, 3\]"):
        env.encode({"move": 2, "look": 0})
    with pytest.raises(ValueError, match=r"action\['look'\]"):
        env.encode({"move": 0, "look": 8})
    assert DiscreteActions(FakeFrames(), moves=["W", "S+D"]).moves == (MOVES.index("W"), MOVES.index("S+D"))


@pytest.mark.parametrize(
    ("events", "error", "match"),
    [
        ("It rains.", TypeError, r"^events: got str"),
        (["ok", 3], TypeError, r"^events\[1\]: got int"),
        (["ok", "caf\u00e9"], ValueError, "^events\\[1\\]: got characters \\['\u00e9'\\]"),
        (["line\nbreak"], ValueError, r"^events\[0\]: got characters"),
        (["x" * (EVENT_MAX_LENGTH + 1)], ValueError, rf"^events\[0\]: got {EVENT_MAX_LENGTH + 1} characters"),
        (["", "a"], ValueError, r"^events\[0\]: got an empty string"),
        (["a", "b", "a"], ValueError, r"^events\[2\]: 'a' repeats events\[0\]"),
    ],
)
def test_bad_event_catalog(events, error, match):
    with pytest.raises(error, match=match):
        DiscreteActions(FakeFrames(), events=events)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"moves": [0, 9]}, ValueError, r"^moves\[1\]: got 9; accepted: 0\.\.8"),
        ({"moves": [True]}, TypeError, r"^moves\[0\]"),
        ({"moves": ["Q"]}, ValueError, r"^move: got 'Q'"),
        ({"moves": []}, ValueError, r"^moves: got an empty list"),
        ({"moves": 3}, TypeError, r"^moves: got int"),
        ({"looks": [1, 1]}, ValueError, r"^looks\[1\]: 1 .* listed twice"),
        ({"looks": [-1]}, ValueError, r"^looks\[0\]: got -1"),
    ],
)
def test_bad_subsets(kwargs, error, match):
    with pytest.raises(error, match=match):
        DiscreteActions(FakeFrames(), **kwargs)


def test_decode_and_encode_errors():
    env = DiscreteActions(FakeFrames(), events=EVENTS)
    with pytest.raises(ValueError, match=r"action: got 243; accepted: 0\.\.242"):
        env.decode(243)
    with pytest.raises(TypeError, match=r"action: got 1\.0"):
        env.decode(1.0)
    with pytest.raises(TypeError, match="action: got True"):
        env.decode(True)
    with pytest.raises(ValueError, match=r"action\['event'\]: got 'It snows\.', which is not in the catalog"):
        env.encode({"move": 0, "look": 0, "event": "It snows."})
    with pytest.raises(ValueError, match=r"action\['move'\]: got 9"):
        env.encode({"move": 9, "look": 0})


# ---------------------------------------------------------------------------------------------- frames
def test_channel_first_selections():
    base = FakeFrames(t=4, h=16, w=20)
    last = ChannelFirstFrames(base, frames="last")
    assert last.observation_space == spaces.Box(0, 255, (3, 16, 20), np.uint8)
    obs, _ = last.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.flags.c_contiguous
    assert obs[:, 0, 0].tolist() == [30, 31, 32]

    two = ChannelFirstFrames(base, frames=2)
    assert two.observation_space.shape == (6, 16, 20)
    assert two.observation(base._obs())[:, 3, 7].tolist() == [20, 21, 22, 30, 31, 32]  # oldest first

    every = ChannelFirstFrames(base, frames="all", size=(24, 40))
    assert every.observation_space.shape == (12, 24, 40)
    obs = every.observation(base._obs())
    assert obs.shape == (12, 24, 40)
    assert obs[:, 5, 5].tolist() == [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32]  # constant planes stay

    single = FakeFrames(single=True)
    for frames in ("last", "all", 1):
        env = ChannelFirstFrames(single, frames=frames, size=(40, 40))
        assert env.observation_space.shape == (3, 40, 40)
        assert env.observation(single._obs())[:, 0, 0].tolist() == [0, 1, 2]


def test_resize_matches_torch_bilinear():
    rng = np.random.default_rng(0)
    for shape, size in [((2, 96, 160, 3), (64, 64)), ((1, 32, 32, 3), (64, 64)), ((3, 17, 23, 3), (5, 40))]:
        x = rng.integers(0, 256, shape).astype(np.uint8)
        ours = resize_bilinear(x, size)
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(x).permute(0, 3, 1, 2).float(), size=size, mode="bilinear", align_corners=False
        )
        ref = ref.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        assert ours.shape == ref.shape and ours.dtype == np.uint8
        assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1  # float rounding at .5 only


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 64}, ValueError, r"^size: got 64"),
        ({"size": (64, 0)}, ValueError, r"^size: got \(64, 0\)"),
        ({"size": (64, 64, 3)}, ValueError, r"^size: got"),
        ({"size": (64.0, 64)}, ValueError, r"^size: got"),
        (
            {"frames": "first"},
            ValueError,
            r"^frames: got 'first'; accepted: 'last', 'all' or an integer 1\.\.4",
        ),
        ({"frames": 5}, ValueError, r"^frames: got 5"),
        ({"frames": 0}, ValueError, r"^frames: got 0"),
        ({"frames": True}, TypeError, r"^frames: got True"),
        ({"frames": 2.0}, TypeError, r"^frames: got 2\.0"),
    ],
)
def test_bad_frame_args(kwargs, error, match):
    with pytest.raises(error, match=match):
        ChannelFirstFrames(FakeFrames(t=4), **kwargs)


def test_frame_args_on_single_frame_and_latents():
    with pytest.raises(ValueError, match=r"frames: got 2.*single frame"):
        ChannelFirstFrames(FakeFrames(single=True), frames=2)
    latent = FakeFrames()
    latent.observation_space = spaces.Box(-np.inf, np.inf, (48, 8, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"observation space: got .*obs_mode='frames' or 'last_frame'"):
        ChannelFirstFrames(latent)


def test_warns_when_channels_outnumber_pixels():
    with pytest.warns(UserWarning, match="channels"):
        ChannelFirstFrames(FakeFrames(t=4, h=6, w=10), frames="all")


# ---------------------------------------------------------------------------------------------- on YumeWorld-v0
@pytest.fixture(scope="module")
def sb3_env():
    env = make_sb3_env(image=start_image(), events=EVENTS, **TINY_WORLD)
    yield env
    env.close()


def test_make_sb3_env_spaces_and_spec(sb3_env):
    assert sb3_env.action_space == spaces.Discrete(81 * 3)
    assert sb3_env.observation_space == spaces.Box(0, 255, (3, 64, 64), np.uint8)
    wrappers = {w.name: w.kwargs for w in sb3_env.spec.additional_wrappers}
    assert wrappers["ChannelFirstFrames"] == {"size": (64, 64), "frames": "last"}
    assert wrappers["DiscreteActions"] == {"events": EVENTS, "moves": None, "looks": None}
    assert sb3_env.unwrapped.obs_mode == "frames"


def test_sb3_check_env(sb3_env):
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(sb3_env, warn=True)
    sb3_warnings = [str(w.message) for w in caught if "stable_baselines3" in w.filename]
    assert not sb3_warnings, sb3_warnings


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_gymnasium_check_env(sb3_env):
    from gymnasium.utils.env_checker import check_env

    check_env(sb3_env)  # includes rebuilding the wrapped env from its spec


def test_ppo_cnn_policy_learns_and_predicts(sb3_env):
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    model = PPO("CnnPolicy", sb3_env, n_steps=32, batch_size=32, n_epochs=2, device="cpu", seed=0)
    model.set_logger(Logger(folder=None, output_formats=[]))  # no SB3-<date> folder in /tmp
    start = time.perf_counter()
    model.learn(128)  # four rollouts of 32 env steps (episodes of 4 blocks) and their updates
    elapsed = time.perf_counter() - start
    assert model.num_timesteps == 128
    obs, _ = sb3_env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert sb3_env.action_space.contains(int(action))
    assert set(sb3_env.decode(action)) == {"move", "look", "event"}
    print(f"PPO CnnPolicy: learn(128) in {elapsed:.1f} s")


def test_make_sb3_env_options_and_errors(sb3_env):
    env = make_sb3_env(image=start_image(), obs_mode="last_frame", size=None, moves=[0, 1], **TINY_WORLD)
    assert env.observation_space == spaces.Box(0, 255, (3, 32, 32), np.uint8)
    assert env.action_space == spaces.Discrete(2 * 9)
    env.close()
    with pytest.raises(TypeError, match=r"^events\[0\]: got int"):
        make_sb3_env(image=start_image(), events=[1], **TINY_WORLD)
    latent = make_sb3_env(image=start_image(), obs_mode="latent", **TINY_WORLD)  # latents pass through
    assert latent.observation_space.dtype == np.float32 and latent.observation_space.shape[0] == 48
    latent.close()


def test_make_sb3_env_wraps_the_procedural_world_too():
    from stable_baselines3.common.env_checker import check_env

    env = make_sb3_env(
        "YumeProcedural-v0",
        resolution=(36, 48),
        frames_per_block=2,
        render_threads=1,
        size=(32, 32),
        moves=[0, 1],
    )
    assert env.observation_space.shape == (3, 32, 32) and env.action_space.n == 2 * 9
    check_env(env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(1)
    assert obs.shape == (3, 32, 32) and obs.dtype == np.uint8
    env.close()
