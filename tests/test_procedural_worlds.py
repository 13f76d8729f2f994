"""The procedural world as a backend: ``ProceduralWorld`` and ``ProceduralWorlds`` against the env,
batch invariance, fork/restore, transactional mark/rollback, bad input, and the timing type."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from yume_env.envs.procedural_env import Milliseconds, YumeProceduralEnv
from yume_env.envs.procedural_worlds import ProceduralWorlds as OldName
from yume_env.procedural import ProceduralWorld, ProceduralWorlds, RenderTiming
from yume_env.world.protocol import BatchedWorlds
from yume_env.world.stream import Action, BlockTiming

SMALL = {"resolution": (32, 48), "frames_per_block": 4}
TRUTH = ("caption", "event", "event_applied", "effects", "block_index", "frames", "seed", "collided")
# world 1 walks into an event-rich future: balloon (draws from the RNG), snow, pop, fog
PLAN = [
    [Action(1, 1), Action(5, 0, "a red balloon appears"), Action(0, 0, "x")],
    [None, Action(0, 3, "it starts to snow"), Action(2, 2)],
    [Action(8, 8), None, Action(0, 0, "")],
    [Action(3, 0, "fog"), Action(6, 5, "the balloon pops"), Action(1, 0, "the sun sets")],
]


def same_block(a_frames, a_info, b_frames, b_info):
    np.testing.assert_array_equal(a_frames, b_frames)
    for key in ("position", "yaw", "pitch"):
        np.testing.assert_array_equal(a_info[key], b_info[key])
    assert {k: a_info[k] for k in TRUTH} == {k: b_info[k] for k in TRUTH}


def same_snapshot(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


@pytest.fixture
def worlds():
    w = ProceduralWorlds(3, **SMALL)
    w.reset(0, seed=10)
    w.reset(1, prompt="night falls", seed=11)
    w.reset(2, seed=12)
    yield w
    w.close()


def test_world_i_is_the_single_env(worlds):
    env = YumeProceduralEnv(**SMALL)
    obs, info = env.reset(seed=11, options={"event": "night falls"})
    np.testing.assert_array_equal(worlds.last_frames(1), obs)
    for actions in PLAN:
        outs = worlds.step(actions)
        assert [o is None for o in outs] == [a is None for a in actions]
        a = actions[1]
        if a is None:
            continue
        obs, _, _, _, info = env.step({"move": a.move, "look": a.look, "event": a.event})
        same_block(outs[1].frames, outs[1].info, obs, info)
        assert outs[1].latents is None and outs[1].caption == info["caption"]
    same_snapshot(worlds.snapshot(1), env.snapshot())
    assert worlds.block_index(1) == env.snapshot()["block_index"] == 3
    env.close()


def test_batch_invariance(worlds):
    alone = ProceduralWorlds(1, **SMALL)
    alone.reset(0, prompt="night falls", seed=11)
    for actions in PLAN:
        batch = worlds.step(actions)
        single = alone.step([actions[1]])
        if actions[1] is not None:
            same_block(batch[1].frames, batch[1].info, single[0].frames, single[0].info)
    np.testing.assert_array_equal(worlds.last_frames(1), alone.last_frames(0))


def test_fork_and_restore_reproduce_the_future(worlds):
    worlds.step(PLAN[0])
    snap = worlds.snapshot(1)
    future = [Action(1, 2, "a red balloon appears"), Action(0, 1), Action(4, 0, "it starts to rain")]
    first = [worlds.step([None, a, None])[1] for a in future]
    worlds.fork(0, 2)  # unrelated fork: world 1 is untouched
    worlds.restore(1, snap)
    worlds.restore(0, snap)  # the snapshot stays reusable
    again = [worlds.step([a, a, None]) for a in future]
    for f, (w0, w1, _) in zip(first, again):
        same_block(f.frames, f.info, w0.frames, w0.info)
        same_block(f.frames, f.info, w1.frames, w1.info)
    # snapshots move between the backend, a lone world and the env
    env = YumeProceduralEnv(**SMALL)
    env.restore(snap)
    lone = ProceduralWorld(**SMALL)
    lone.restore(snap)
    for f, a in zip(first, future):
        obs, *_, info = env.step({"move": a.move, "look": a.look, "event": a.event})
        block = lone.step(a.move, a.look, a.event)
        same_block(f.frames, f.info, obs, info)
        same_block(f.frames, f.info, block.frames, block.info)
    env.close()
    lone.close()


def test_mark_and_rollback_put_every_world_back(worlds):
    worlds.step(PLAN[0])
    before = [worlds.snapshot(i) for i in range(3)]
    mark = worlds.mark()
    # balloons draw their place from each world's generator: the rollback must rewind it
    row = [Action(0, 0, "a red balloon appears"), Action(0, 3, "snow"), Action(2, 2, "a red balloon appears")]
    first = worlds.step(row)
    worlds.step(row)
    worlds.reset(0, seed=99)  # resets are undone too
    worlds.step(PLAN[3])
    worlds.rollback(mark)
    for i in range(3):
        same_snapshot(worlds.snapshot(i), before[i])
    again = worlds.step(row)
    for f, g in zip(first, again):
        same_block(f.frames, f.info, g.frames, g.info)
    with pytest.raises(TypeError, match="mark: got dict"):
        worlds.rollback({})


def test_bad_input_leaves_every_world_unchanged(worlds):
    worlds.step(PLAN[0])
    before = [worlds.snapshot(i) for i in range(3)]
    # a bad move, look or event cannot even be built into an Action: it fails before any world is touched
    with pytest.raises(ValueError, match=r"action\['move'\]: got 9"):
        Action(9, 0)
    with pytest.raises(ValueError, match=r"printable ASCII"):
        Action(0, 0, "caf\u00e9")
    with pytest.raises(TypeError, match=r"action\['look'\]"):
        Action(0, True)
    bad = [
        ([Action(1), {"move": 0}, None], TypeError, r"actions\[1\]: got dict"),
        ([Action(1)], ValueError, r"actions: got 1 entries; accepted: one per world \(3\)"),
    ]
    for actions, exc, pattern in bad:
        with pytest.raises(exc, match=pattern):
            worlds.step(actions)
    with pytest.raises(ValueError, match="image: a procedural world starts from its seed"):
        worlds.reset(0, image=np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="seed: got -1"):
        worlds.reset(0, seed=-1)
    with pytest.raises(TypeError, match="prompt: got int"):
        worlds.reset(0, prompt=3)
    with pytest.raises(IndexError, match=r"world index: got 3; accepted: 0..2"):
        worlds.snapshot(3)
    with pytest.raises(ValueError, match="state: got"):
        worlds.restore(0, {"pose": 1})
    wrong = {**before[0], "resolution": (64, 64)}
    with pytest.raises(ValueError, match=r"state\['resolution'\]: got \(64, 64\)"):
        worlds.restore(0, wrong)
    # a world that fails half-way through a batch: the worlds already stepped are put back
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("render failed")

    worlds.worlds[2]._render = broken
    with pytest.raises(RuntimeError, match="render failed"):
        worlds.step([Action(1, 0, "a red balloon appears"), Action(2), Action(1)])
    assert calls == [1]
    for i in range(3):
        same_snapshot(worlds.snapshot(i), before[i])


def test_protocol_members_before_and_after_reset():
    w = OldName(2, **SMALL)  # the old import path is the same class
    assert OldName is ProceduralWorlds and isinstance(w, BatchedWorlds)
    assert w.num_worlds == 2 and w.resolution == (32, 48) and w.frames_per_block == 4
    assert w.latent_shape is None
    assert not w.is_reset(0) and w.last_frames(0) is None
    with pytest.raises(RuntimeError, match="world 0: step before reset"):
        w.step([Action(), None])
    assert w.block_index(0) == 0
    w.check_reset(None, "fog rolls in")
    with pytest.raises(ValueError, match="image: a procedural world starts from its seed"):
        w.check_reset(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"prompt: got characters \['\\n'\]"):
        w.check_reset(None, "two\nlines")
    with pytest.raises(ValueError, match="latents: a procedural world has none"):
        w.decode_latents(np.zeros((4, 2, 4, 4), np.float32))
    out = w.reset(0, seed=1)
    assert w.is_reset(0) and not w.is_reset(1) and w.block_index(0) == 0
    assert out.frames.shape == (4, 32, 48, 3) and (out.frames == out.frames[0]).all()
    w.step([Action(1), None])
    assert w.block_index(0) == 1 and not w.is_reset(1)
    with pytest.raises(ValueError, match="obs_mode: not accepted by ProceduralWorlds"):
        ProceduralWorlds(1, obs_mode="frames")
    with pytest.raises(ValueError, match=r"got unknown \['speed'\]; accepted: resolution"):
        ProceduralWorlds(1, speed=2)
    with pytest.raises(ValueError, match="num_worlds: got 0"):
        ProceduralWorlds(0)
    w.close()
    assert not w.is_reset(0) and w.last_frames(0) is None  # closed: its worlds are gone


def test_timings_compare_equal_and_keep_the_hash_contract():
    env = YumeProceduralEnv(**SMALL)
    _, info = env.reset(seed=0)
    *_, info2 = env.step({"move": 1, "look": 0})
    for inf in (info, info2):
        assert isinstance(inf["timing"], RenderTiming) and isinstance(inf["render_ms"], Milliseconds)
        assert float(inf["render_ms"]) == inf["timing"].render_ms > 0
        assert f"{inf['render_ms']:.3f}" == f"{inf['timing'].render_ms:.3f}"
    env.close()
    assert info == {**info, "timing": RenderTiming(1e9), "render_ms": Milliseconds(-1.0)}
    values = [
        Milliseconds(1.0),
        Milliseconds(250.5),
        1.0,
        250.5,
        1,
        np.float64(1.0),
        np.float32(250.5),
        Fraction(1),
        Decimal(1),
        RenderTiming(1.0),
        RenderTiming(250.5),
        BlockTiming(decode_ms=1.0),
        info["render_ms"],
        info2["timing"],
    ]
    for a in values:
        for b in values:
            if a == b:
                assert hash(a) == hash(b), (a, b)
    assert Milliseconds(1.0) == Milliseconds(250.5) and RenderTiming(1.0) == RenderTiming(250.5)
    assert Milliseconds(1.0) != 1.0 and np.float64(1.0) != Milliseconds(1.0)  # not a plain number
    assert len({Milliseconds(1.0), Milliseconds(2.0)}) == 1 and len({RenderTiming(1.0), RenderTiming(2)}) == 1
    assert RenderTiming(2.5).as_dict() == {"render_ms": 2.5} and RenderTiming(2.5).total_ms == 2.5
    # the deprecated number behaviour still works, with a warning
    with pytest.warns(DeprecationWarning, match=r"read info\['timing'\].render_ms"):
        assert Milliseconds(2.5) + 1 == 3.5
    with pytest.warns(DeprecationWarning):
        assert 10 / Milliseconds(2.5) == 4.0 and Milliseconds(2.5) > 0
