"""Reward functions: instruction following, novelty, goal image, CLIP text similarity (local tiny model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

from yume_env.envs.procedural_env import YumeProceduralEnv
from yume_env.evaluation.synthetic import sample_images, synthetic_block
from yume_env.rewards import (
    ClipTextReward,
    GoalImageReward,
    InstructionFollowingReward,
    NoveltyReward,
    RewardModelError,
    ssim,
)

STREET = sample_images()[-1]


@pytest.fixture(scope="module")
def pan_right():
    return synthetic_block(STREET, "pan_right", amount=0.3, frames=16, rng=0).frames


# ------------------------------------------------------------------------------ instruction following
def test_instruction_reward_against_the_keys_sent(pan_right):
    r = InstructionFollowingReward()
    assert r(pan_right, {"move": 0, "look": 1}, {"block_index": 1}) == 1.0
    assert r.last_estimate.label == "pan_right"
    # panning left was asked: the yaw axis disagrees, the other three agree
    assert r(pan_right, {"move": 0, "look": 2}, {"block_index": 1}) == 0.75
    strict = InstructionFollowingReward(partial=False)
    assert strict(pan_right, {"move": 0, "look": 2}, {}) == 0.0
    assert strict(pan_right, {"move": "None", "look": "→"}, {}) == 1.0


def test_instruction_reward_against_a_target_sequence(pan_right):
    r = InstructionFollowingReward(target=["W .", "None right"], partial=False)
    assert r(pan_right, {"move": 1, "look": 0}, {"block_index": 1}) == 0.0  # block 0 should walk forward
    assert r(pan_right, {"move": 1, "look": 0}, {"block_index": 2}) == 1.0  # block 1 should pan right
    assert r(pan_right, {"move": 0, "look": 0}, {"block_index": 3}) == 0.0  # afterwards: still
    last = InstructionFollowingReward(target=[("None", "→")], after="last", partial=False)
    assert last(pan_right, {}, {"block_index": 5}) == 1.0
    zero = InstructionFollowingReward(target=[{"move": 0, "look": 1}], after="zero")
    assert zero(pan_right, {}, {"block_index": 2}) == 0.0


def test_instruction_reward_rejects_bad_arguments_at_construction():
    with pytest.raises(ValueError, match="target: got 'W'"):
        InstructionFollowingReward(target="W")
    with pytest.raises(ValueError, match=r"target\[1\]: line 1: move 'JUMP'"):
        InstructionFollowingReward(target=["W .", "JUMP up"])
    with pytest.raises(ValueError, match=r"target\[0\]: look 12"):
        InstructionFollowingReward(target=[(1, 12)])
    with pytest.raises(ValueError, match="after: got 'never'"):
        InstructionFollowingReward(after="never")
    with pytest.raises(ValueError, match="thresholds"):
        InstructionFollowingReward(thresholds={"roll": 0.1})
    latent = spaces.Box(-np.inf, np.inf, (48, 8, 6, 10), np.float32)
    with pytest.raises(ValueError, match="obs_mode='frames'"):
        InstructionFollowingReward(observation_space=latent)
    with pytest.raises(ValueError, match="at least 2"):
        InstructionFollowingReward(observation_space=spaces.Box(0, 255, (96, 160, 3), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        InstructionFollowingReward()(np.zeros(5), {"move": 0, "look": 0}, {})


def test_instruction_reward_as_reward_fn_of_the_procedural_world():
    env = YumeProceduralEnv(resolution=(48, 80), frames_per_block=12, reward_fn=InstructionFollowingReward())
    env.reset(seed=1296)  # a seed of the default suite where turning is unobstructed
    _, reward, *_ = env.step({"move": 0, "look": 1})
    assert reward == 1.0
    _, reward, *_ = env.step({"move": 0, "look": 0})
    assert reward == 1.0
    env.close()


# ------------------------------------------------------------------------------ novelty
def test_novelty_from_pose_counts_new_cells_and_resets_each_episode():
    r = NoveltyReward()
    env = YumeProceduralEnv(resolution=(32, 48), frames_per_block=4, reward_fn=r)
    env.reset(seed=1000)
    _, walk, *_ = env.step({"move": 1, "look": 0})
    _, stay, *_ = env.step({"move": 0, "look": 0})
    assert walk >= 1.0 and stay == 0.0
    visited = r.visited
    env.reset(seed=1000)
    _, again, *_ = env.step({"move": 1, "look": 0})
    assert again == walk and r.visited <= visited  # a new episode starts from an empty memory
    env.close()


def test_novelty_from_frames():
    r = NoveltyReward(source="frames")
    a = synthetic_block(STREET, "still", frames=2, rng=0).frames
    b = synthetic_block(sample_images()[0], "still", frames=2, rng=0).frames
    first = r(a, {}, {"block_index": 1})
    assert first == pytest.approx(1.0, abs=1e-5)
    assert r(a, {}, {"block_index": 2}) < 0.05  # seen already
    assert r(b, {}, {"block_index": 3}) > 0.3  # a different place
    assert r(a[-1], {}, {"block_index": 1}) == pytest.approx(1.0, abs=1e-5)  # last-frame obs, new episode


def test_novelty_rejects_bad_arguments():
    with pytest.raises(ValueError, match="source: got 'smell'"):
        NoveltyReward(source="smell")
    with pytest.raises(ValueError, match="cell_size"):
        NoveltyReward(cell_size=0)
    with pytest.raises(ValueError, match="embed_size"):
        NoveltyReward(embed_size=(0, 4))
    with pytest.raises(ValueError, match="info has no 'position'"):
        NoveltyReward(source="pose")(np.zeros((2, 16, 16, 3), np.uint8), {}, {"block_index": 1})


# ------------------------------------------------------------------------------ goal image
def test_goal_image_similarity(tmp_path):
    block = synthetic_block(STREET, "pan_right", amount=0.4, frames=8, rng=0).frames
    goal_path = tmp_path / "goal.png"
    from PIL import Image

    Image.fromarray(block[-1]).save(goal_path)
    r = GoalImageReward(goal_path)
    at_goal = r(block, {}, {})
    assert at_goal == pytest.approx(1.0, abs=1e-6)
    assert r(block[:1], {}, {}) < at_goal - 0.1  # the start of the pan is elsewhere
    assert GoalImageReward(block[-1], frames="best")(block[::-1], {}, {}) == pytest.approx(1.0, abs=1e-6)
    pix = GoalImageReward(block[-1], metric="pixel")
    assert pix(block, {}, {}) == pytest.approx(1.0) and 0 < pix(block[:1], {}, {}) < 1
    assert GoalImageReward(block[-1], frames="mean")(block, {}, {}) < at_goal
    assert ssim(np.full((8, 8), 10.0), np.full((8, 8), 10.0)) == pytest.approx(1.0)


def test_goal_image_errors_at_construction(tmp_path):
    with pytest.raises(FileNotFoundError, match="goal: no such file"):
        GoalImageReward(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        GoalImageReward(bad)
    with pytest.raises(TypeError, match="goal: got int"):
        GoalImageReward(3)
    with pytest.raises(ValueError, match="metric: got 'lpips'"):
        GoalImageReward(np.zeros((8, 8, 3), np.uint8), metric="lpips")
    with pytest.raises(ValueError, match="size"):
        GoalImageReward(np.zeros((8, 8, 3), np.uint8), size=(2, 2))


# ------------------------------------------------------------------------------ CLIP text similarity
WORDS = ["<pad>", "<unk>", "<s>", "</s>", "a", "red", "balloon", "street", "in", "the", "rain", "park"]


def write_tiny_clip(folder, vision=True, tokenizer=True):
    """A randomly initialised CLIP with a word-level tokenizer, saved like a hub model (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(WORDS),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(folder)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    if vision and tokenizer:
        CLIPProcessor(image_processor=images, tokenizer=fast).save_pretrained(folder)
    elif tokenizer:
        fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return write_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def test_clip_reward_from_a_local_folder(clip_dir):
    block = synthetic_block(STREET, "still", frames=6, rng=0).frames
    r = ClipTextReward(clip_dir, "a red balloon in the street")
    value = r(block, {}, {})
    assert isinstance(value, float) and -1.0 <= value <= 1.0
    assert value == pytest.approx(float(r.similarity(block[-1:])[0]), abs=1e-5)
    mean = ClipTextReward(clip_dir, "a red balloon", frames="mean", max_frames=3, scale=2.0)
    assert -2.0 <= mean(block, {}, {}) <= 2.0
    assert mean(block[0], {}, {}) == pytest.approx(2.0 * float(mean.similarity(block[:1])[0]), abs=1e-5)
    before = r._text.clone()
    r.set_text("the park in the rain")
    assert not torch.allclose(before, r._text)


def test_clip_reward_as_reward_fn(clip_dir):
    env = YumeProceduralEnv(
        resolution=(32, 48), frames_per_block=4, reward_fn=ClipTextReward(clip_dir, "a street in the rain")
    )
    env.reset(seed=0)
    _, reward, *_ = env.step({"move": 1, "look": 0, "event": "It starts to rain."})
    assert np.isfinite(reward)
    env.close()


def test_clip_reward_fails_at_construction_not_mid_episode(tmp_path, clip_dir):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        ClipTextReward(tmp_path / "nowhere", "a street")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        ClipTextReward(empty, "a street")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "clip"}))
    (broken / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(RewardModelError, match="cannot load the model"):
        ClipTextReward(broken, "a street")
    no_tokenizer = write_tiny_clip(tmp_path / "no_tok", vision=False, tokenizer=False)
    with pytest.raises(RewardModelError, match="tokenizer / image processor"):
        ClipTextReward(no_tokenizer, "a street")
    with pytest.raises(ValueError, match="text: got ''"):
        ClipTextReward(clip_dir, "")
    with pytest.raises(ValueError, match="frames: got 'first'"):
        ClipTextReward(clip_dir, "a street", frames="first")
    from transformers import BertConfig, BertModel

    not_clip = tmp_path / "bert"
    BertModel(
        BertConfig(
            vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
        )
    ).save_pretrained(not_clip)
    with pytest.raises(RewardModelError, match="has no get_text_features"):
        ClipTextReward(not_clip, "a street")


def test_clip_reward_failure_on_a_step_returns_the_fallback(clip_dir, monkeypatch):
    r = ClipTextReward(clip_dir, "a street", fallback=-1.0)

    def boom(frames):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(r, "similarity", boom)
    block = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.warns(RuntimeWarning, match="returning fallback=-1.0"):
        assert r(block, {}, {}) == -1.0
    assert r(block, {}, {}) == -1.0 and r.failures == 2
    with pytest.raises(ValueError, match="latents carry no pixels"):
        r(np.zeros((48, 8, 6, 10), np.float32), {}, {})
