"""The DiT's inference fast path, the CPU thread option and the approximate long-episode path."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import pytest
import torch
from safetensors.torch import load_file

import yume_env.model.threads as threads_mod
from tests.conftest import REFERENCE
from yume_env.cli import main as cli_main
from yume_env.model.dit import DiTConfig, YumeDiT
from yume_env.model.threads import check_threads, default_threads, set_threads

SDPA_KERNELS = {"sdpa-flash", "sdpa-math", "sdpa-efficient", "sdpa-cudnn", "sdpa", "flash-attn"}


@pytest.fixture
def dit():
    meta = json.loads((REFERENCE / "dit_t2v.json").read_text())
    model = YumeDiT(DiTConfig.from_official(meta["dit_config"]))
    model.load_state_dict(load_file(REFERENCE / meta["weights_file"]))
    return model.eval()


@pytest.fixture
def restore_threads():
    before, explicit = torch.get_num_threads(), threads_mod._explicit
    yield
    torch.set_num_threads(before)
    threads_mod._explicit = explicit


def _inputs(seed=0, lengths=(5,)):
    g = torch.Generator().manual_seed(seed)
    hists = [torch.randn(48, n, 6, 10, generator=g) if n else None for n in lengths]
    ctxs = [torch.randn(6 + 3 * i, 32, generator=g) for i in range(len(lengths))]
    block = torch.randn(len(lengths), 48, 8, 6, 10, generator=g)
    return hists, ctxs, block


# ------------------------------------------------------------------------------------------ threads
@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_threads_rejects_bad_values_naming_the_parameter(bad):
    with pytest.raises(ValueError, match=r"threads: got .*accepted: an integer >= 1"):
        check_threads(bad)


def test_env_rejects_bad_threads_before_loading():
    with pytest.raises(ValueError, match="threads: got 0"):
        gym.make("YumeWorld-v0", device="cpu", threads=0)


def test_default_threads_leaves_a_core_on_small_machines(monkeypatch):
    for cores, expected in [(1, 1), (2, 1), (4, 3), (8, 4), (64, 4)]:
        monkeypatch.setattr(threads_mod, "usable_cores", lambda c=cores: c)
        assert default_threads() == expected


def test_explicit_threads_apply_process_wide_and_warn_when_replaced(restore_threads):
    threads_mod._explicit = None
    assert set_threads(1) == 1 and torch.get_num_threads() == 1
    with pytest.warns(UserWarning, match="process-global"):
        set_threads(2)
    assert torch.get_num_threads() == 2
    # the default never overrides an explicit choice
    assert set_threads(None) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        set_threads(2)  # same value: no warning


def test_env_threads_kwarg_sets_torch_threads(restore_threads):
    threads_mod._explicit = None
    env = gym.make("YumeWorld-v0", device="cpu", obs_mode="latent", threads=1)
    assert env.unwrapped.threads == 1 and torch.get_num_threads() == 1


def test_cli_rejects_bad_threads_with_usage_error(tmp_path, capsys):
    assert cli_main(["demo", "--threads", "0", "--blocks", "1", "--out", str(tmp_path)]) == 2
    assert "threads: got 0" in capsys.readouterr().err


@pytest.mark.parametrize("kwarg", ["compile", "reuse_history_kv"])
def test_env_rejects_non_bool_options(kwarg):
    with pytest.raises(ValueError, match=f"{kwarg}: got 'yes'"):
        gym.make("YumeWorld-v0", device="cpu", obs_mode="latent", **{kwarg: "yes"})


# ------------------------------------------------------------------------------------------ fast path
def test_fused_path_equals_separate_projections_and_keeps_state_dict_names(dit):
    hists, ctxs, block = _inputs(lengths=(5, 30))
    keys = set(dit.state_dict())
    with torch.no_grad():
        fast = dit.denoise(dit.prepare(hists, ctxs, (6, 10)), block, 875.0)
    with torch.enable_grad():  # training path: separate q/k/v products, no caches
        slow = dit.denoise(dit.prepare(hists, ctxs, (6, 10)), block, 875.0, taps={}).detach()
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    assert set(dit.state_dict()) == keys
    assert dit.blocks[0].self_attn._fused is not None  # the fused weights were built and cached


def test_fused_weights_follow_in_place_weight_changes(dit):
    hists, ctxs, block = _inputs()
    with torch.no_grad():
        before = dit.denoise(dit.prepare(hists, ctxs, (6, 10)), block, 700.0)
        for blk in dit.blocks:
            blk.self_attn.k.weight.mul_(1.5)
            blk.cross_attn.v.weight.mul_(0.5)
        after = dit.denoise(dit.prepare(hists, ctxs, (6, 10)), block, 700.0)
        dit.clear_caches()
        fresh = dit.denoise(dit.prepare(hists, ctxs, (6, 10)), block, 700.0)
    assert not torch.allclose(before, after, atol=1e-3)
    assert torch.equal(after, fresh)


def test_context_keys_values_are_cached_per_caption_tensor(dit):
    hists, ctxs, _ = _inputs()
    with torch.no_grad():
        a = dit.prepare(hists, ctxs, (6, 10)).context_kv
        b = dit.prepare(hists, ctxs, (6, 10)).context_kv
        c = dit.prepare(hists, [ctxs[0].clone()], (6, 10)).context_kv
    assert a[0][0] is b[0][0]  # reused, not recomputed
    assert c[0][0] is not a[0][0] and torch.equal(c[0][0], a[0][0])


def test_last_layer_on_block_rows_matches_the_full_last_layer(dit):
    hists, ctxs, block = _inputs(lengths=(45,))
    with torch.no_grad():
        p = dit.prepare(hists, ctxs, (6, 10))
        trimmed = dit.denoise(p, block, 954.5)
        full = dit.denoise(p, block, 954.5, taps={})  # taps keep every row of the last layer
    torch.testing.assert_close(trimmed, full, atol=1e-6, rtol=1e-6)


def test_per_world_timesteps_still_supported(dit):
    hists, ctxs, block = _inputs(lengths=(5, 5))
    with torch.no_grad():
        p = dit.prepare(hists, ctxs, (6, 10))
        both = dit.denoise(p, block, torch.tensor([875.0, 700.0], dtype=torch.float64))
        first = dit.denoise(dit.prepare(hists[:1], ctxs[:1], (6, 10)), block[:1], 875.0)
    torch.testing.assert_close(both[:1], first, atol=1e-5, rtol=1e-5)


def test_attention_kernel_is_recorded(dit):
    hists, ctxs, _ = _inputs()
    with torch.no_grad():
        p = dit.prepare(hists, ctxs, (6, 10))
    assert p.attention_kernel in SDPA_KERNELS and dit.last_attention_backend == p.attention_kernel


def test_step_info_names_the_attention_kernel():
    env = gym.make("YumeWorld-v0", device="cpu", obs_mode="latent")
    env.reset(seed=0)
    _, _, _, _, info = env.step({"move": 1, "look": 0, "event": ""})
    assert info["attention_backend"] in SDPA_KERNELS


# ------------------------------------------------------------------------------------------ long episodes
def test_history_kv_reuse_is_close_to_exact_but_not_equal(dit):
    from yume_env.model.sampler import EulerSampler

    hists, ctxs, block = _inputs(lengths=(30, 5))
    sampler = EulerSampler(4, 7.0)
    with torch.no_grad():
        outs = {}
        for reuse in (False, True):
            p = dit.prepare(hists, ctxs, (6, 10), reuse_history_kv=reuse)
            outs[reuse] = sampler.sample(lambda x, t, p=p: dit.denoise(p, x, t), block)
            assert (p.history_kv is not None) == reuse
        # batched == single on the approximate path too
        p1 = dit.prepare(hists[:1], ctxs[:1], (6, 10), reuse_history_kv=True)
        single = sampler.sample(lambda x, t: dit.denoise(p1, x, t), block[:1])
    err = (outs[True] - outs[False]).abs().max().item()
    assert 0 < err < 0.05 * outs[False].abs().max().item(), err
    torch.testing.assert_close(outs[True][:1], single, atol=1e-5, rtol=1e-5)
