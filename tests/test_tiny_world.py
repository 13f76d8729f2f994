"""The trained tiny model shipped in the package: it loads strictly, it is the default, and it is a
world (not noise): it keeps the start image, moves the view the right way and shows events.

The thresholds sit well below what the shipped weights measure (docs/tiny-world.md) and well above
what random weights give, so these tests fail if the package falls back to an untrained model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import yume_env  # noqa: F401  (registers the environments)
from yume_env.envs.model_cache import get_model
from yume_env.envs.procedural_env import YumeProceduralEnv
from yume_env.evaluation.motion import estimate_block_motion
from yume_env.model.pipeline import TINY_CHECKPOINT, build_model, load_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import eval_tiny_world as ev  # noqa: E402

# Seed 0, one still block: the shipped model measures 17.2 dB, random weights 10.6 dB.
STILL_PSNR_MIN = 15.0
# A block of the ground truth pans the image ~69 px (tilts ~30 px), the shipped model -12 / +27 px
# (tilts +20 / -19 px) on seed 0, random weights one drift for all; half a pixel is the least that
# counts, and opposite moves must land this many pixels apart.
SHIFT_MIN = 0.5
OPPOSITE_GAP_MIN = 5.0


def test_shipped_checkpoint_is_small_and_loads_strictly():
    assert (TINY_CHECKPOINT / "config.json").is_file(), (
        "the trained tiny checkpoint is missing from the package"
    )
    size = sum(p.stat().st_size for p in TINY_CHECKPOINT.rglob("*") if p.is_file())
    assert size < 40e6
    model = load_checkpoint(TINY_CHECKPOINT, "cpu")  # strict: any missing/unexpected key raises
    assert model.preset.name == "tiny" and model.dit.dtype == torch.float32
    assert model.preset.resolution == (96, 160)


def test_default_tiny_model_is_the_shipped_one():
    shipped = load_checkpoint(TINY_CHECKPOINT, "cpu")
    default = get_model("tiny", device="cpu")
    random = build_model("tiny", "cpu")
    name = "patch_embedding.weight"
    torch.testing.assert_close(default.dit.state_dict()[name], shipped.dit.state_dict()[name])
    assert not torch.allclose(default.dit.state_dict()[name], random.dit.state_dict()[name])


@pytest.fixture(scope="module")
def worlds():
    world = gym.make("YumeWorld-v0", device="cpu").unwrapped
    truth = YumeProceduralEnv(resolution=world.stream.resolution, frames_per_block=29, render_threads=1)
    truth.reset(seed=0)  # a held-out scene: training uses seeds >= 100000
    return world, truth, truth.snapshot(), truth.start_image()


def test_still_world_keeps_the_start_image(worlds):
    world, truth, state, start = worlds
    gt, model = ev.run_pair(truth, world, state, start, [(0, 0, "")])
    assert np.mean(ev.frame_psnrs(model[0], gt[0])) > STILL_PSNR_MIN


def test_camera_moves_the_view_the_right_way(worlds):
    """Pan left/right and tilt up/down each move the picture the ground truth's way (random weights
    give one and the same drift for every caption, so they fail)."""
    world, truth, state, start = worlds
    shifts = {}
    for look, axis, sign in ((1, 0, -1), (2, 0, 1), (3, 1, 1), (4, 1, -1)):  # pan left: content moves left
        gt, model = ev.run_pair(truth, world, state, start, [(0, look, "")])
        shift_truth, shift_model = ev.block_motion(gt[0])[axis], ev.block_motion(model[0])[axis]
        assert np.sign(shift_truth) == sign
        assert np.sign(shift_model) == sign and abs(shift_model) > SHIFT_MIN, (
            f"look {look}: {shift_model:+.2f} px"
        )
        shifts[look] = shift_model
    assert shifts[2] - shifts[1] > OPPOSITE_GAP_MIN and shifts[3] - shifts[4] > OPPOSITE_GAP_MIN, shifts


def test_motion_estimator_reads_blurry_frames(worlds):
    """estimate_block_motion (InstructionFollowingReward, yume-world eval) reads camera moves in the
    ground truth after the shipped VAE and in the model's own blocks, not only in sharp frames.

    Before it compared frames four apart and allowed for the flow's noise, it read every one of
    these VAE pans as a strafe and the tilts as still or forward, and the model's blocks as still.
    """
    world, truth, state, start = worlds
    for look, label in ((1, "pan_right"), (2, "pan_left"), (3, "tilt_up"), (4, "tilt_down"), (0, "still")):
        gt, model = ev.run_pair(truth, world, state, start, [(0, look, "")])
        through_vae = estimate_block_motion(ev._autoencoded(world, gt[0]))
        assert through_vae.label == label, (look, through_vae)
        est = estimate_block_motion(model[0])
        if look in (1, 2):  # the model pans ~10 px a block, near the 0.06-width threshold: sign and size
            assert np.sign(est.dx) == (1 if look == 1 else -1) and abs(est.dx) > 0.04, (look, est)
        else:
            assert est.label == label, (look, est)


def test_lights_out_darkens_the_world(worlds):
    world, truth, state, start = worlds
    _, control = ev.run_pair(truth, world, state, start, [(0, 0, ""), (0, 0, "")])
    _, dark = ev.run_pair(truth, world, state, start, [(0, 0, "the lights go out"), (0, 0, "")])
    # shipped model: 106 -> 19; random weights: 133 -> 133
    assert ev.brightness(dark[1]) < 0.6 * ev.brightness(control[1])


def test_event_visibility_needs_half_the_true_change_the_right_way():
    # brightness 100 -> 20 in the ground truth: the model must fall by at least 40
    assert ev.event_visible(60.0, 100.0, 20.0, 100.0)
    assert not ev.event_visible(70.0, 100.0, 20.0, 100.0)
    assert not ev.event_visible(140.0, 100.0, 20.0, 100.0)  # the wrong way
    assert ev.event_visible(0.02, 0.0, 0.03, 0.0)  # red share 0 -> 3%: 2% counts
    assert not ev.event_visible(1.0, 0.0, 0.0, 0.0)  # no true change: nothing to show


def test_rain_greys_the_ground_truth():
    # the measure the evaluation uses for rain reads the procedural world's rain (chroma 27 -> 10 on seed 0)
    penv = YumeProceduralEnv(resolution=(96, 160), frames_per_block=29, render_threads=1)
    penv.reset(seed=0)
    state = penv.snapshot()
    measured = {}
    for event in ("", "it starts to rain"):
        penv.restore(state)
        penv.step({"move": 0, "look": 0, "event": event})
        obs, *_ = penv.step({"move": 0, "look": 0, "event": ""})
        measured[event] = ev.colourfulness(obs)
    assert measured["it starts to rain"] < 0.6 * measured[""]
