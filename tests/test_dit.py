"""The Yume DiT against the official goldens, plus batching, re-entrancy and the 5B key layout."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REFERENCE, manifest_total, read_manifest
from yume_env.model.dit import DiTConfig, YumeDiT
from yume_env.model.tscm import history_groups, history_token_count

CASES = ["dit_t2v", "dit_tscm_H1", "dit_tscm_H5", "dit_tscm_H30", "dit_tscm_H100"]


@pytest.fixture(scope="module")
def tiny_dit() -> YumeDiT:
    meta = json.loads((REFERENCE / "dit_t2v.json").read_text())
    model = YumeDiT(DiTConfig.from_official(meta["dit_config"]))
    model.load_state_dict(load_file(REFERENCE / meta["weights_file"]), strict=True)
    return model.eval()


def _case(name):
    meta = json.loads((REFERENCE / f"{name}.json").read_text())
    return meta, load_file(REFERENCE / f"{name}.safetensors")


@pytest.mark.parametrize("name", CASES)
def test_matches_official_forward(tiny_dit, name):
    meta, d = _case(name)
    x = d["x"]
    h = meta["history_frames"]
    taps = {}
    with torch.no_grad():
        prepared = tiny_dit.prepare([x[:, :h] if h else None], [d["context"]], tuple(x.shape[-2:]))
        out = tiny_dit.denoise(prepared, x[None, :, h:], d["t"].flatten()[-1], taps=taps)[0]
    torch.testing.assert_close(out, d["out"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(taps["tokens_in"][0], d["dbg.tokens_block0_in"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(taps["time_e"][0], d["dbg.time_e"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(taps["head_in"][0], d["dbg.head_in"], atol=1e-4, rtol=1e-4)
    if "dbg.rope_pos_thw" in d:
        assert torch.equal(taps["positions"][0], d["dbg.rope_pos_thw"])
        assert [[g.start, g.stop - 1, g.rate] for g in history_groups(h)] == [
            r[:3] for r in meta["history_groups"]
        ]


def test_tier_token_counts_match_official_720p_table():
    # The official token counts at 720p (44 x 80 latents) for several history lengths.
    table = {5: 2420, 13: 4380, 21: 4860, 45: 5265, 85: 5865, 341: 6750, 1000: 7414}
    assert {h: history_token_count(h, 44, 80) for h in table} == table


def test_tiers_cover_every_frame_once_beyond_h2():
    for h in [3, 6, 7, 22, 23, 86, 87, 342, 343, 1366]:
        covered = [i for g in history_groups(h) for i in range(g.start, g.stop)]
        assert covered == list(range(h)), h
    with pytest.raises(ValueError, match="num_history: got 1367"):
        history_groups(1367)


@pytest.mark.parametrize("h", [7, 15, 343, 400])
def test_uncovered_tiers_run_and_place_positions(tiny_dit, h):
    # Tiers 7-22 and 343+ are not in the shipped goldens: check structure, positions and finiteness.
    g = torch.Generator().manual_seed(h)
    hist = torch.randn(48, h, 6, 10, generator=g)
    block = torch.randn(1, 48, 8, 6, 10, generator=g)
    ctx = torch.randn(11, 32, generator=g)
    taps = {}
    with torch.no_grad():
        out = tiny_dit.denoise(tiny_dit.prepare([hist], [ctx], (6, 10)), block, 875.0, taps=taps)
    assert torch.isfinite(out).all()
    pos = taps["positions"][0]
    assert pos.shape[0] == history_token_count(h, 6, 10) + 120
    assert pos[-120:, 0].min().item() == h and pos[-120:, 0].max().item() == h + 7
    # every history frame keeps exactly one temporal slot, in order
    assert sorted(set(pos[:-120, 0].tolist())) == list(range(h))


def test_f_tier_changes_output_and_pads_bottom_right(tiny_dit):
    # The 2x_f path: removing the f-tier frames' content must change the result.
    g = torch.Generator().manual_seed(0)
    hist = torch.randn(48, 350, 6, 10, generator=g)
    block = torch.randn(1, 48, 8, 6, 10, generator=g)
    ctx = torch.randn(11, 32, generator=g)
    with torch.no_grad():
        a = tiny_dit(history=[hist], block=block, t=700.0, context=[ctx])
        hist2 = hist.clone()
        hist2[:, 1:9] = 0  # frames of the 'f' group
        b = tiny_dit(history=[hist2], block=block, t=700.0, context=[ctx])
    assert (a - b).abs().max() > 1e-4


def test_batched_equals_single_for_different_history_lengths(tiny_dit):
    g = torch.Generator().manual_seed(7)
    lengths = [0, 5, 30]
    hists = [torch.randn(48, h, 6, 10, generator=g) if h else None for h in lengths]
    blocks = torch.randn(3, 48, 8, 6, 10, generator=g)
    ctxs = [torch.randn(n, 32, generator=g) for n in (11, 16, 3)]
    ts = torch.tensor([1000.0, 875.0, 700.0], dtype=torch.float64)
    with torch.no_grad():
        batched = tiny_dit.denoise(tiny_dit.prepare(hists, ctxs, (6, 10)), blocks, ts)
        for i in range(3):
            single = tiny_dit.denoise(
                tiny_dit.prepare([hists[i]], [ctxs[i]], (6, 10)), blocks[i : i + 1], ts[i]
            )
            torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=1e-5)


def test_forward_is_reentrant(tiny_dit):
    # No module state changes in forward: two interleaved calls give the same answers as separate ones.
    _, d5 = _case("dit_tscm_H5")
    _, d30 = _case("dit_tscm_H30")
    with torch.no_grad():
        p5 = tiny_dit.prepare([d5["x"][:, :5]], [d5["context"]], (6, 10))
        p30 = tiny_dit.prepare([d30["x"][:, :30]], [d30["context"]], (6, 10))
        o30 = tiny_dit.denoise(p30, d30["x"][None, :, 30:], d30["t"].flatten()[-1])
        o5 = tiny_dit.denoise(p5, d5["x"][None, :, 5:], d5["t"].flatten()[-1])
    torch.testing.assert_close(o5[0], d5["out"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(o30[0], d30["out"], atol=1e-4, rtol=1e-4)
    before = {k: v.clone() for k, v in tiny_dit.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in tiny_dit.state_dict().items())


def test_refuses_history_beyond_rope_table(tiny_dit):
    hist = torch.zeros(48, 1017, 6, 10)
    with pytest.raises(ValueError, match="at most 1024"):
        tiny_dit.prepare([hist], [torch.zeros(3, 32)], (6, 10))


def test_bad_context_and_block_shapes_are_named(tiny_dit):
    with pytest.raises(ValueError, match=r"context\[0\]"):
        tiny_dit.prepare([None], [torch.zeros(17, 32)], (6, 10))
    p = tiny_dit.prepare([None], [torch.zeros(3, 32)], (6, 10))
    with pytest.raises(ValueError, match="block: got shape"):
        tiny_dit.denoise(p, torch.zeros(1, 48, 7, 6, 10), 1000.0)


def test_5b_preset_on_meta_matches_official_manifest():
    with torch.device("meta"):
        model = YumeDiT(DiTConfig())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == read_manifest("manifest_dit_yume5b.tsv")
    total = sum(p.numel() for p in model.parameters())
    print(f"yume-1.5-5b DiT parameters: {total:,}")
    assert total == manifest_total("manifest_dit_yume5b.tsv") == 5_200_377_072
    assert not list(model.buffers())


def test_official_config_roundtrip_and_defaults():
    cfg = DiTConfig()
    assert DiTConfig.from_official(cfg.to_official()) == cfg
    # diffusers leaves ignore_for_config keys (patch_size, text_dim, ...) out of config.json
    minimal = {
        "model_type": "ti2v",
        "dim": 3072,
        "ffn_dim": 14336,
        "in_dim": 48,
        "out_dim": 48,
        "num_heads": 24,
        "num_layers": 30,
    }
    assert DiTConfig.from_official(minimal) == cfg
    with pytest.raises(ValueError, match="model_type"):
        DiTConfig.from_official({**minimal, "model_type": "i2v"})
