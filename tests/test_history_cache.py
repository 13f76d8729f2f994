"""History caches across blocks: exact (the same bits as no cache) and the opt-in ``"episode"`` carry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REFERENCE
from yume_env.model.dit import DiTConfig, YumeDiT
from yume_env.model.history_cache import CARRIED_RATES, HistoryCache
from yume_env.model.pipeline import build_model
from yume_env.model.sampler import EulerSampler
from yume_env.model.tscm import group_grid, history_groups, history_token_count
from yume_env.world.stream import Action, WorldStream

IMAGE = (np.random.default_rng(0).random((60, 100, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def dit():
    meta = json.loads((REFERENCE / "dit_t2v.json").read_text())
    model = YumeDiT(DiTConfig.from_official(meta["dit_config"]))
    model.load_state_dict(load_file(REFERENCE / meta["weights_file"]))
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return build_model("tiny", seed=1)


def _ctx(seed: int, n: int = 7) -> torch.Tensor:
    return torch.randn(n, 32, generator=torch.Generator().manual_seed(seed))


def test_cached_history_tokens_are_the_same_bits_as_fresh_ones_up_to_history_1000(dit):
    g = torch.Generator().manual_seed(0)
    history = torch.randn(48, 1013, 6, 10, generator=g)
    block = torch.randn(1, 48, 8, 6, 10, generator=g)
    ctx = [_ctx(1)]
    cache = None
    with torch.no_grad():
        for n in range(5, 1014, 8):  # an image-started episode: 5, 13, ..., 1013 latents
            hist = [history[:, :n]]
            cached = dit.prepare(hist, ctx, (6, 10), history_cache=[cache])
            fresh = dit.prepare(hist, ctx, (6, 10))
            assert torch.equal(cached.history_tokens, fresh.history_tokens), n
            assert cached.history_tokens.shape[1] == history_token_count(n, 6, 10)
            if n in (5, 45, 341, 957, 1013):  # every tier table; whole steps too
                assert torch.equal(dit.denoise(cached, block, 875.0), dit.denoise(fresh, block, 875.0))
            if cache is not None:  # only frames that are new or changed tier were embedded
                kept = sum(1 for key in dit.history_caches(cached)[0].tokens if key in cache.tokens)
                assert kept >= 0.9 * len(cache.tokens) - 20
            cache = dit.history_caches(cached)[0]


def test_cache_follows_dropped_frames_and_ignores_a_history_it_does_not_fit(dit):
    g = torch.Generator().manual_seed(1)
    history = torch.randn(48, 60, 6, 10, generator=g)
    ctx = [_ctx(2)]
    with torch.no_grad():
        cache = dit.history_caches(dit.prepare([history[:, :40]], ctx, (6, 10)))[0]
        # frames 1..8 dropped (the start frame stays) and 8 appended, as a world past its budget
        kept = torch.cat([history[:, :1], history[:, 9:48]], dim=1)
        shifted = cache.dropped(8)
        assert shifted.fits(kept) and not cache.fits(kept)
        a = dit.prepare([kept], ctx, (6, 10), history_cache=[shifted]).history_tokens
        assert torch.equal(a, dit.prepare([kept], ctx, (6, 10)).history_tokens)
        other = torch.randn(48, 48, 6, 10, generator=g)
        assert not cache.fits(other)
        b = dit.prepare([other], ctx, (6, 10), history_cache=[cache]).history_tokens
        assert torch.equal(b, dit.prepare([other], ctx, (6, 10)).history_tokens)
    with pytest.raises(ValueError, match="history_cache: got 2 entries for 1 worlds"):
        dit.prepare([history], ctx, (6, 10), history_cache=[None, None])


def test_batched_worlds_with_caches_equal_single_worlds_without(dit):
    g = torch.Generator().manual_seed(2)
    hists = [torch.randn(48, n, 6, 10, generator=g) for n in (349, 37)]
    ctxs = [_ctx(3), _ctx(4, 11)]
    block = torch.randn(2, 48, 8, 6, 10, generator=g)
    with torch.no_grad():
        caches = dit.history_caches(dit.prepare([h[:, :-8] for h in hists], ctxs, (6, 10)))
        batched = dit.denoise(dit.prepare(hists, ctxs, (6, 10), history_cache=caches), block, 700.0)
        for i in range(2):
            single = dit.denoise(
                dit.prepare(hists[i : i + 1], ctxs[i : i + 1], (6, 10)), block[i : i + 1], 700.0
            )
            torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=1e-5)


def _run(stream: WorldStream, blocks: int, world: int = 0, drop_caches: bool = False) -> list[torch.Tensor]:
    out = []
    for k in range(blocks):
        if drop_caches:
            stream.worlds[world].history_cache = None
        actions = [None] * stream.num_worlds
        actions[world] = Action(k % 9, (k // 2) % 9)
        out.append(stream.step(actions)[world].latents)
    return out


def test_exact_stream_is_the_same_bits_with_and_without_caches_through_drops_and_forks(model):
    streams = [WorldStream(model, 2, decode="none", max_history=20) for _ in range(2)]
    for s in streams:
        s.reset(0, image=IMAGE, prompt="a street", seed=3)
    cached, fresh = _run(streams[0], 4), _run(streams[1], 4, drop_caches=True)
    assert streams[0].worlds[0].dropped_latents > 0  # the budget dropped frames along the way
    assert streams[0].worlds[0].history_cache is not None
    assert all(torch.equal(a, b) for a, b in zip(cached, fresh))
    snap = streams[0].snapshot(0)
    assert snap.state.history_cache is None  # exact caches are recomputed, not stored
    streams[0].fork(0, 1)
    a, b = _run(streams[0], 2, 0), _run(streams[0], 2, 1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


# ------------------------------------------------------------------------------ "episode" approximation
def _frame_rates(n: int) -> dict[tuple[int, str], int]:
    return {
        (f, g.rate): math.prod(group_grid(g.rate, 6, 10))
        for g in history_groups(n)
        for f in range(g.start, g.stop)
    }


def _changed_tokens(before: int, now: int) -> int:
    """Tokens run through the layers at ``now``: all but those of coarse-tier frames carried from ``before``."""
    old = _frame_rates(before)
    return sum(n for key, n in _frame_rates(now).items() if key not in old or key[1] not in CARRIED_RATES)


def _episode_blocks(dit, hist, ctx, noise, sampler, cache, mode):
    p = dit.prepare(hist, ctx, (6, 10), reuse_history_kv=mode, history_cache=cache)
    out = sampler.sample(lambda x, t: dit.denoise(p, x, t), noise)
    return out, dit.history_caches(p), p


def test_episode_carry_runs_only_new_tokens_and_stays_close_to_exact(dit):
    g = torch.Generator().manual_seed(5)
    history = torch.randn(48, 5 + 8 * 14, 6, 10, generator=g)
    noise = torch.randn(1, 48, 8, 6, 10, generator=g)
    ctx, sampler = [_ctx(6)], EulerSampler(4, 7.0)
    cache, errors = [None], []
    with torch.no_grad():
        for n in range(5, history.shape[1] + 1, 8):
            hist = [history[:, :n]]
            approx, cache, p = _episode_blocks(dit, hist, ctx, noise, sampler, cache, "episode")
            q = dit.prepare(hist, ctx, (6, 10))
            exact = sampler.sample(lambda x, t, q=q: dit.denoise(q, x, t), noise)
            errors.append((approx - exact).abs().max().item() / exact.abs().max().item())
            total = history_token_count(n, 6, 10)
            assert p.carried_rows + p.history_tokens.shape[1] == total
            if n > 5:  # only the frames that are new or moved to another tier ran through the layers
                assert p.history_tokens.shape[1] == _changed_tokens(n - 8, n) <= total
                if n > 30:  # the 8x tier exists from history 23 on: part of it is carried
                    assert p.carried_rows > 0
            kv = cache[0].kv
            assert kv is not None and int(kv.count.sum()) == total and kv.k[0].shape[0] == total
    assert errors[0] < 0.05 and max(errors) < 0.2, errors
    assert 0 < max(errors[1:])  # an approximation: not the exact numbers


def test_episode_batched_equals_single_worlds(dit):
    g = torch.Generator().manual_seed(6)
    hists = [torch.randn(48, n, 6, 10, generator=g) for n in (37, 21)]
    ctxs = [_ctx(7), _ctx(8, 12)]
    noise = torch.randn(2, 48, 8, 6, 10, generator=g)
    sampler = EulerSampler(4, 7.0)
    with torch.no_grad():
        prev = [h[:, :-8] for h in hists]
        _, caches, _ = _episode_blocks(dit, prev, ctxs, noise, sampler, None, "episode")
        together, _, _ = _episode_blocks(dit, hists, ctxs, noise, sampler, caches, "episode")
        for i in range(2):
            _, c1, _ = _episode_blocks(
                dit, prev[i : i + 1], ctxs[i : i + 1], noise[i : i + 1], sampler, None, "episode"
            )
            alone, _, _ = _episode_blocks(
                dit, hists[i : i + 1], ctxs[i : i + 1], noise[i : i + 1], sampler, c1, "episode"
            )
            torch.testing.assert_close(together[i : i + 1], alone, atol=1e-5, rtol=1e-5)


def test_episode_stream_is_deterministic_and_snapshots_carry_its_keys_values(model):
    streams = [
        WorldStream(model, 2, decode="none", reuse_history_kv="episode", max_history=30) for _ in range(2)
    ]
    for s in streams:
        s.reset(0, image=IMAGE, prompt="a street", seed=4)
    a, b = _run(streams[0], 3), _run(streams[1], 3)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    snap = streams[0].snapshot(0)
    cache = snap.state.history_cache
    assert isinstance(cache, HistoryCache) and cache.kv is not None and not cache.tokens
    later = _run(streams[0], 3)  # past the budget of 30: frames are dropped, the carry follows
    assert streams[0].worlds[0].dropped_latents > 0
    streams[1].restore(1, snap)
    replay = _run(streams[1], 3, world=1)
    assert all(torch.equal(x, y) for x, y in zip(later, replay))
    # the approximation is not the exact path, and snapshots do not cross between them
    exact = WorldStream(model, 1, decode="none", max_history=30)
    with pytest.raises(ValueError, match="reuse_history_kv: snapshot 'episode', this world False"):
        exact.restore(0, snap)


@pytest.mark.parametrize("bad", ["yes", 1, "episodes"])
def test_stream_rejects_unknown_reuse_modes(model, bad):
    with pytest.raises(ValueError, match="reuse_history_kv: got .*accepted: False .*'episode'"):
        WorldStream(model, 1, decode="none", reuse_history_kv=bad)


def test_rotating_carried_keys_back_equals_rotating_them_at_the_new_position():
    # what the episode carry relies on when max_history drops frames: 3-D RoPE angles are linear
    # in the temporal position, so a second rotation by -shift moves a key to position t - shift
    from yume_env.model.rope import apply_rope, rope_angles

    g = torch.Generator().manual_seed(9)
    keys = torch.randn(1, 40, 4, 32, generator=g)
    pos = torch.stack(
        [torch.randint(20, 1000, (40,)), torch.randint(0, 3, (40,)), torch.randint(0, 5, (40,))], -1
    )
    shift = 8

    def rotate(x, positions):
        angles = rope_angles(positions[None], 32)
        return apply_rope(x, torch.cos(angles).float(), torch.sin(angles).float())

    direct = rotate(keys, pos - torch.tensor([shift, 0, 0]))
    back = rotate(rotate(keys, pos), torch.tensor([[-shift, 0, 0]]).expand(40, 3))
    torch.testing.assert_close(back, direct, atol=2e-5, rtol=1e-5)
    assert not torch.allclose(rotate(keys, pos), direct, atol=1e-2)
