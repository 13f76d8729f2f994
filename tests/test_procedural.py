"""The procedural ground-truth world ``YumeProcedural-v0``: API, motion, events, determinism, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from yume_env.actions import (
    EVENT_MAX_LENGTH,
    LOOK_PHRASES,
    LOOK_VECTORS,
    LOOKS,
    MOVE_PHRASES,
    MOVE_VECTORS,
    MOVES,
)
from yume_env.envs.procedural_env import Milliseconds, YumeProceduralEnv, render_caption
from yume_env.envs.spaces import action_space
from yume_env.procedural import camera as cam
from yume_env.procedural.events import CATALOG, CHANNELS, match_event
from yume_env.procedural.scene import Scene

SMALL = {"resolution": (48, 80), "frames_per_block": 6}
MEDIUM = {"resolution": (72, 120), "frames_per_block": 8}


def act(move=0, look=0, event=""):
    return {"move": move, "look": look, "event": event}


def gray(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float64).mean(axis=-1)


def shift(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Phase-correlation estimate of the ``(rows, cols)`` translation taking image ``a`` to ``b``."""
    h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    fa = np.fft.fft2((a - a.mean()) * win)
    fb = np.fft.fft2((b - b.mean()) * win)
    r = fb * np.conj(fa)
    r /= np.abs(r) + 1e-9
    corr = np.fft.ifft2(r).real
    py, px = np.unravel_index(np.argmax(corr), corr.shape)
    return (py if py <= h // 2 else py - h), (px if px <= w // 2 else px - w)


def block_shift(first: np.ndarray, frames: np.ndarray, rows=slice(None)) -> np.ndarray:
    """Translation summed over consecutive frames of a block (starting from ``first``)."""
    seq = [first, *frames]
    return np.sum([shift(gray(a)[rows], gray(b)[rows]) for a, b in zip(seq, seq[1:])], axis=0)


def zoom(a: np.ndarray, b: np.ndarray) -> float:
    """Scale about the image centre that best maps ``a`` onto ``b`` (> 1: content grew)."""
    a, b = gray(a), gray(b)
    h, w = a.shape
    ys, xs = np.mgrid[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    scales = np.linspace(0.8, 1.25, 19)
    errs = []
    for s in scales:
        sy = np.clip(np.round(cy + (ys - cy) / s).astype(int), 0, h - 1)
        sx = np.clip(np.round(cx + (xs - cx) / s).astype(int), 0, w - 1)
        errs.append(np.abs(b[ys, xs] - a[sy, sx]).mean())
    return float(scales[int(np.argmin(errs))])


def red_pixels(frame: np.ndarray) -> int:
    f = frame.astype(np.int32)
    return int(((f[..., 0] > 110) & (f[..., 0] > 2.5 * f[..., 1]) & (f[..., 0] > 2.5 * f[..., 2])).sum())


@pytest.fixture(scope="module")
def medium():
    env = YumeProceduralEnv(**MEDIUM, move_speed=2.0)
    yield env
    env.close()


# ---- API -------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*not having a spec")
@pytest.mark.parametrize(
    "kwargs",
    [SMALL, {**SMALL, "obs_mode": "last_frame", "render_mode": "rgb_array"}],
)
def test_check_env(kwargs):
    env = YumeProceduralEnv(**kwargs)
    check_env(env)
    env.close()


def test_gym_make_when_registered():
    import yume_env.envs  # noqa: F401  (registers the environments)

    if "YumeProcedural-v0" not in gym.registry:
        pytest.skip("YumeProcedural-v0 is not registered in this checkout")
    env = gym.make("YumeProcedural-v0", **SMALL, max_episode_steps=2)
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6, 48, 80, 3)
    env.close()


def test_spaces_and_shapes():
    env = YumeProceduralEnv(**SMALL, render_mode="rgb_array")
    assert env.action_space == action_space()
    obs, info = env.reset(seed=3)
    assert obs.shape == (6, 48, 80, 3) and obs.dtype == np.uint8
    assert (obs == obs[0]).all(), "reset returns T copies of the start frame"
    np.testing.assert_array_equal(env.start_image(), obs[0])
    assert info["block_index"] == 0 and info["frames"] == 6
    assert info["position"].shape == (6, 3) and info["yaw"].shape == (6,) and info["pitch"].shape == (6,)
    obs, reward, terminated, truncated, info = env.step(act(1, 1))
    assert obs.shape == (6, 48, 80, 3) and reward == 0.0 and not terminated and not truncated
    np.testing.assert_array_equal(env.render(), obs[-1])
    assert info["block_index"] == 1 and isinstance(info["render_ms"], Milliseconds)
    assert info["caption"] == render_caption(1, 1, "")
    # the same caption YumeWorld-v0 renders, so the two worlds are swappable (and train the same)
    assert info["caption"].startswith(
        f"First-person perspective. {MOVE_PHRASES['W']} {LOOK_PHRASES[LOOKS[1]]} "
    )
    env.close()

    env = YumeProceduralEnv(resolution=(32, 48), frames_per_block=32, obs_mode="last_frame")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 48, 3)
    obs, *_ = env.step(act())
    assert obs.shape == (32, 48, 3)
    assert env.observation_space.contains(obs)


def test_truncation_and_reward_fn():
    seen = []

    def reward_fn(obs, action, info):
        seen.append(info["block_index"])
        return float(info["position"][-1][2])

    env = YumeProceduralEnv(**SMALL, max_episode_steps=2, reward_fn=reward_fn)
    env.reset(seed=1)
    *_, truncated, info = env.step(act(1))
    assert not truncated
    _, reward, _, truncated, info = env.step(act(1))
    assert truncated and reward == pytest.approx(info["position"][-1][2]) and seen == [1, 2]
    with pytest.raises(gym.error.ResetNeeded, match="max_episode_steps=2"):
        env.step(act())
    env.reset(seed=1)
    env.step(act())


# ---- motion ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_moves_follow_keys(medium, seed):
    env = medium
    env.reset(seed=seed)
    snap = env.snapshot()
    yaw0 = snap["pose"][3]
    fwd, right = cam.heading(yaw0)
    for m in range(1, 9):
        env.restore(snap)
        obs, *_, info = env.step(act(m, 0))
        d = info["position"][-1] - snap["pose"][:3]
        f_mv, r_mv = MOVE_VECTORS[m]
        assert d[1] == 0.0, "the camera stays at eye height"
        assert np.hypot(d[0], d[2]) == pytest.approx(2.0, abs=1e-6), MOVES[m]
        along, side = d[[0, 2]] @ fwd, d[[0, 2]] @ right
        norm = np.hypot(f_mv, r_mv)
        assert along == pytest.approx(2.0 * f_mv / norm, abs=1e-6), MOVES[m]
        assert side == pytest.approx(2.0 * r_mv / norm, abs=1e-6), MOVES[m]
        steps = np.diff(np.vstack([snap["pose"][:3], info["position"]]), axis=0)
        assert np.allclose(np.linalg.norm(steps, axis=1), 2.0 / 8), "motion is spread evenly over the block"
        assert (info["yaw"] == yaw0).all() and (info["pitch"] == 0).all()
        # image: strafing right shifts near content left (parallax); forward motion enlarges the view
        if r_mv:
            dx = block_shift(env.start_image(), obs, rows=slice(36, 72))[1]
            assert np.sign(dx) == -r_mv and abs(dx) >= 5, (MOVES[m], dx)
        if m in (1, 3):
            z = zoom(env.start_image(), obs[-1])
            assert (z > 1.02) if f_mv > 0 else (z < 0.98), (MOVES[m], z)


def test_looks_follow_arrows(medium):
    env = medium
    env.reset(seed=2)
    snap = env.snapshot()
    for k in range(1, 9):
        env.restore(snap)
        obs, *_, info = env.step(act(0, k))
        yaw_r, pitch_u = LOOK_VECTORS[k]
        dyaw = (info["yaw"][-1] - snap["pose"][3] + 180) % 360 - 180
        assert dyaw == pytest.approx(40.0 * yaw_r) and info["pitch"][-1] == pytest.approx(20.0 * pitch_u)
        assert np.allclose(np.diff(np.unwrap(np.radians(info["yaw"]))), np.radians(40.0 * yaw_r / 8))
        assert (info["position"] == snap["pose"][:3]).all()
        dy, dx = block_shift(env.start_image(), obs)
        # panning right moves the content left; tilting up moves it down
        if yaw_r:
            assert np.sign(dx) == -yaw_r and abs(dx) >= 25, (LOOKS[k], dx)
        else:
            assert abs(dx) <= 2, (LOOKS[k], dx)
        if pitch_u:
            assert np.sign(dy) == pitch_u and abs(dy) >= 12, (LOOKS[k], dy)
        else:
            assert abs(dy) <= 2, (LOOKS[k], dy)


def test_pitch_is_clamped():
    env = YumeProceduralEnv(**SMALL, pitch_limit=30.0)
    env.reset(seed=0)
    for _ in range(3):
        *_, info = env.step(act(0, 3))
    assert info["pitch"][-1] == 30.0 and info["pitch"].max() <= 30.0
    for _ in range(5):
        *_, info = env.step(act(0, 4))
    assert info["pitch"][-1] == -30.0


def test_camera_does_not_walk_through_buildings():
    env = YumeProceduralEnv(**SMALL, move_speed=3.0)
    env.reset(seed=4)
    state = env.snapshot()
    x, _, z = state["pose"][:3]
    scene = Scene(state["scene_seed"])
    boxes = scene.objects_near(x, z, 80).boxes
    big = boxes[(boxes[:, 4] > 6) & (boxes[:, 1] == 0)]
    b = big[np.argmin(np.hypot((big[:, 0] + big[:, 3]) / 2 - x, (big[:, 2] + big[:, 5]) / 2 - z))]
    # stand 2 m south of the building's south wall, facing north (yaw 0), and walk into it
    state["pose"] = np.array([(b[0] + b[3]) / 2, cam.EYE_HEIGHT, b[2] - 2.0, 0.0, 0.0])
    env.restore(state)
    collided = []
    for move in (1, 1, 5, 6):
        *_, info = env.step(act(move))
        collided.append(info["collided"])
        px, pz = info["position"][:, 0], info["position"][:, 2]
        inside = (px > b[0] - cam.BODY_RADIUS) & (px < b[3] + cam.BODY_RADIUS) & (pz > b[2] - cam.BODY_RADIUS)
        assert not inside.any()
    assert collided[0] and info["position"][-1][2] == pytest.approx(b[2] - cam.BODY_RADIUS, abs=0.25)


def test_camera_slides_along_walls():
    blocked = cam.box_blocker(np.array([[-10.0, 10.0, 1.0, 5.0]]))
    poses, hit = cam.move_block(np.array([0.0, 1.7, 0.0, 45.0, 0.0]), 1, 0, 10, 4.0, 40, 20, 45, blocked)
    assert hit and poses[-1, 2] < 1.0 and poses[-1, 0] > 2.0  # stopped at the wall, slid east


# ---- events ----------------------------------------------------------------------------------------
def test_catalog_matching():
    assert len(CATALOG) >= 6
    for e in CATALOG:
        assert match_event(e.text) is e, e.name
        assert match_event(e.text.upper()) is e
    cases = {
        "The SUN sets behind the towers": "sunset",
        "sunset": "sunset",
        "a thick fog rolls in": "fog",
        "the fog lifts": "clear",
        "it starts to rain heavily": "rain",
        "it stops raining": "clear",
        "Suddenly the lights go out.": "lights_out",
        "blackout": "lights_out",
        "a red balloon appears": "balloon",
        "the balloon pops": "balloon_pops",
        "it starts to snow": "snow",
        "night falls over the city": "night",
        "a train passes by": None,  # 'rain' only as a whole word
        "a dog barks": None,
        "": None,
    }
    for text, name in cases.items():
        got = match_event(text)
        assert (got.name if got else None) == name, text


@pytest.fixture(scope="module")
def still_world():
    env = YumeProceduralEnv(**MEDIUM)
    env.reset(seed=5)
    yield env, env.snapshot()
    env.close()


def event_block(still_world, text):
    env, snap = still_world
    env.restore(snap)
    obs, *_, info = env.step(act(0, 0, text))
    return env.start_image(), obs, info


def test_lights_out_darkens(still_world):
    before, obs, info = event_block(still_world, "the lights go out")
    assert info["event_applied"] == "lights_out" and info["effects"]["lights_out"] == 1.0
    means = obs.reshape(len(obs), -1).mean(axis=1)
    assert means[-1] < 0.4 * before.mean(), "documented: mean brightness falls to under 40%"
    assert np.all(np.diff(means) <= 1e-9) and means[0] > means[-1], "smooth, monotone transition"


def test_red_balloon_appears(still_world):
    before, obs, info = event_block(still_world, "A red balloon appears!")
    assert info["event_applied"] == "balloon"
    counts = [red_pixels(f) for f in obs]
    assert red_pixels(before) < 10 and counts[-1] > 0.012 * before[..., 0].size
    assert counts[0] < counts[-1], "the balloon grows in during the block"
    env, _ = still_world
    obs, *_, info = env.step(act(0, 0, ""))  # empty text keeps the current event
    assert info["event"] == "A red balloon appears!" and red_pixels(obs[-1]) == counts[-1]
    obs, *_, info = env.step(act(0, 0, "the balloon pops"))
    assert info["event_applied"] == "balloon_pops" and red_pixels(obs[-1]) == 0


def test_fog_lowers_contrast(still_world):
    before, obs, info = event_block(still_world, "fog rolls in")
    assert info["event_applied"] == "fog"
    assert gray(obs[-1]).std() < 0.7 * gray(before).std()
    env, snap = still_world
    obs, *_, info = env.step(act(0, 0, "the weather clears"))
    assert info["event_applied"] == "clear" and info["effects"]["fog"] == 0.0
    env.restore(snap)
    env.step(act())
    plain, *_ = env.step(act())
    np.testing.assert_array_equal(obs[-1], plain[-1])  # fully back to the clear day (clouds drift)


def test_other_events_change_frames(still_world):
    before, obs, _ = event_block(still_world, "the sun sets")
    f = obs[-1].astype(float)
    assert f[..., 0].mean() / f[..., 2].mean() > 1.2 * before[..., 0].mean() / before[..., 2].mean()  # warmer
    before, obs, _ = event_block(still_world, "night falls")
    assert obs[-1].mean() < 0.5 * before.mean()
    before, obs, _ = event_block(still_world, "it starts to rain")
    assert np.abs(obs[-1].astype(int) - before).mean() > 10 and obs[-1].std() < before.std()
    before, obs, _ = event_block(still_world, "it starts to snow")
    lower = slice(obs.shape[1] // 2, None)
    assert obs[-1][lower].mean() > before[lower].mean() + 30, "ground turns white"


def test_unknown_event_has_no_visual_effect(still_world):
    _, plain, _ = event_block(still_world, "")
    _, obs, info = event_block(still_world, "a dog barks in the distance")
    assert info["event_applied"] is None and info["event"] == "a dog barks in the distance"
    assert info["caption"].endswith("a dog barks in the distance")
    np.testing.assert_array_equal(obs, plain)
    assert all(v == 0 for v in info["effects"].values())


def test_reset_with_event_option():
    env = YumeProceduralEnv(**SMALL)
    obs, info = env.reset(seed=0, options={"event": "night falls"})
    assert info["event"] == "night falls" and info["effects"]["night"] == 1.0
    plain, _ = env.reset(seed=0)
    assert obs.mean() < 0.5 * plain.mean()
    assert set(CHANNELS) == set(info["effects"])


# ---- determinism, seeds, snapshot ------------------------------------------------------------------
def rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return np.stack(out)


ACTIONS = [act(1, 1), act(5, 0, "a red balloon appears"), act(0, 3, "it starts to snow"), act(8, 8)]


def test_same_seed_same_frames_and_seeds_differ():
    a = rollout(YumeProceduralEnv(**SMALL), 7, ACTIONS)
    b = rollout(YumeProceduralEnv(**SMALL, render_threads=1), 7, ACTIONS)
    np.testing.assert_array_equal(a, b)
    env = YumeProceduralEnv(**SMALL)
    starts = [env.reset(seed=s)[0][0].astype(int) for s in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(starts[i] - starts[j]).mean() > 10, (i, j)


def test_snapshot_restore_reproduces():
    env = YumeProceduralEnv(**SMALL)
    env.reset(seed=11)
    env.step(act(1, 2, "fog rolls in"))
    snap = env.snapshot()
    first = [env.step(a) for a in ACTIONS]
    env.restore(snap)
    again = [env.step(a) for a in ACTIONS]
    other = YumeProceduralEnv(**SMALL)  # a fresh env continues the same world too
    other.restore(snap)
    third = [other.step(a) for a in ACTIONS]
    for x, y, z in zip(first, again, third):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[0], z[0])
        for key in ("position", "yaw", "pitch"):
            np.testing.assert_array_equal(x[4][key], y[4][key])
            np.testing.assert_array_equal(x[4][key], z[4][key])
        assert x[4]["caption"] == z[4]["caption"] and x[4]["effects"] == z[4]["effects"]
    assert snap["block_index"] == 1 and env.snapshot()["block_index"] == 1 + len(ACTIONS)


# ---- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"resolution": (0, 160)}, ValueError, r"resolution: got \(0, 160\); accepted: \(height, width\)"),
        ({"resolution": "96x160"}, ValueError, "resolution"),
        ({"resolution": (96.0, 160)}, ValueError, "resolution"),
        ({"obs_mode": "pixels"}, ValueError, "obs_mode: got 'pixels'; accepted: frames, last_frame"),
        ({"frames_per_block": 0}, ValueError, "frames_per_block: got 0"),
        ({"move_speed": -1}, ValueError, "move_speed"),
        ({"turn_speed": "fast"}, TypeError, "turn_speed"),
        ({"pitch_limit": 80}, ValueError, r"pitch_limit: got 80; accepted: a number in 0..60"),
        ({"render_mode": "human"}, ValueError, "render_mode: got 'human'; accepted: None, 'rgb_array'"),
        ({"reward_fn": 3}, TypeError, "reward_fn"),
        ({"max_episode_steps": 0}, ValueError, "max_episode_steps"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        YumeProceduralEnv(**kwargs)


def test_bad_actions_raise_and_leave_state_unchanged():
    env = YumeProceduralEnv(**SMALL, render_mode="rgb_array")
    with pytest.raises(gym.error.ResetNeeded, match="before reset"):
        env.step(act())
    with pytest.raises(gym.error.ResetNeeded, match="before reset"):
        env.start_image()
    env.reset(seed=2)
    env.step(act(1, 1, "fog rolls in"))
    snap = env.snapshot()
    bad = [
        ([1, 0, ""], TypeError, "action: got list; accepted: a dict"),
        ({"move": 9, "look": 0}, ValueError, r"action\['move'\]: got 9; accepted: 0..8"),
        ({"move": 1.0, "look": 0}, TypeError, r"action\['move'\]: got 1.0 \(float\)"),
        ({"move": True, "look": 0}, TypeError, r"action\['move'\]"),
        ({"move": 0, "look": -1}, ValueError, r"action\['look'\]: got -1"),
        ({"move": 0}, ValueError, "missing key 'look'"),
        ({"move": 0, "look": 0, "speed": 2}, ValueError, r"unknown keys \['speed'\]"),
        (
            act(0, 0, "x" * (EVENT_MAX_LENGTH + 1)),
            ValueError,
            f"got {EVENT_MAX_LENGTH + 1} characters; accepted: at most",
        ),
        (act(0, 0, "caf\u00e9"), ValueError, "characters \\['\u00e9'\\]; accepted: printable ASCII"),
        (act(0, 0, "two\nlines"), ValueError, "printable ASCII"),
        (act(0, 0, 5), TypeError, r"action\['event'\]: got int"),
    ]
    for action, exc, pattern in bad:
        with pytest.raises(exc, match=pattern):
            env.step(action)
    after = env.snapshot()
    for key in ("pose", "levels", "start_image", "last_frame"):
        np.testing.assert_array_equal(after[key], snap[key])
    assert after["rng"] == snap["rng"] and after["block_index"] == snap["block_index"]
    assert after["event"] == snap["event"]
    # numpy scalars and 0-d arrays, as sampled from the space, are fine
    env.step({"move": np.int64(2), "look": np.array(1), "event": np.str_("")})
    with pytest.raises(ValueError, match="options: got unknown keys"):
        env.reset(options={"start": 1})
    with pytest.raises(ValueError, match="state: got"):
        env.restore({"pose": 1})


def test_failed_reward_fn_leaves_state_unchanged():
    def boom(obs, action, info):
        raise RuntimeError("reward failed")

    env = YumeProceduralEnv(**SMALL, reward_fn=boom)
    env.reset(seed=0)
    snap = env.snapshot()
    with pytest.raises(RuntimeError, match="reward failed"):
        env.step(act(1, 1, "a red balloon appears"))
    after = env.snapshot()
    np.testing.assert_array_equal(after["pose"], snap["pose"])
    assert after["rng"] == snap["rng"] and after["balloon"] is None and after["block_index"] == 0
