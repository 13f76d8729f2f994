"""umT5 encoder, tokenizer, caption cleaning and the caption cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from yume_env.actions import EVENT_CHARSET, LOOK_PHRASES, MOVE_PHRASES
from yume_env.model.text_cleaning import clean_caption
from yume_env.model.text_encoder import (
    TINY_TOKENIZER_DIR,
    TINY_TOKENIZER_MAX_VOCAB,
    TextEncoder,
    TextEncoderConfig,
    UMT5Encoder,
    config_from_state_dict,
    load_tokenizer,
)
from yume_env.train.tokenizer import build_tiny_tokenizer

REF = Path(__file__).parent / "data" / "reference"
SPEED = (
    "Actual distance moved:4 at 100 meters per second. Angular change rate (turn speed):0. "
    "View rotation speed:0."
)


def _max_err(ours: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    diff = (ours.float() - ref.float()).abs()
    ratio = diff / (1e-4 + 1e-4 * ref.float().abs())
    return diff.max().item(), ratio.max().item()


@pytest.fixture(scope="module")
def golden_sd() -> dict[str, torch.Tensor]:
    return load_file(str(REF / "t5_weights.safetensors"))


@pytest.fixture(scope="module")
def golden_case() -> dict[str, torch.Tensor]:
    return load_file(str(REF / "t5_case.safetensors"))


@pytest.fixture(scope="module")
def golden_model(golden_sd) -> UMT5Encoder:
    return UMT5Encoder.from_state_dict(golden_sd)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return load_tokenizer(TINY_TOKENIZER_DIR)


@pytest.fixture()
def tiny_model() -> UMT5Encoder:
    torch.manual_seed(0)
    return UMT5Encoder(TextEncoderConfig.tiny()).eval()


class _CountCalls:
    def __init__(self, module: nn.Module) -> None:
        self.calls = 0
        self.batch_sizes: list[int] = []
        module.register_forward_hook(self._hook)

    def _hook(self, module, args, output) -> None:
        self.calls += 1
        self.batch_sizes.append(int(output.shape[0]))


# ---------------------------------------------------------------------------------------------------
# Encoder vs the official numbers
# ---------------------------------------------------------------------------------------------------


def test_config_matches_the_fixture_and_real_defaults(golden_sd):
    meta = json.loads((REF / "t5_case.json").read_text())["t5_config"]
    cfg = config_from_state_dict(golden_sd)
    assert (
        cfg.vocab_size,
        cfg.dim,
        cfg.dim_attn,
        cfg.dim_ffn,
        cfg.num_heads,
        cfg.num_layers,
        cfg.num_buckets,
    ) == (
        meta["vocab_size"],
        meta["dim"],
        meta["dim_attn"],
        meta["dim_ffn"],
        meta["num_heads"],
        meta["encoder_layers"],
        meta["num_buckets"],
    )
    real = TextEncoderConfig()
    assert (real.vocab_size, real.dim, real.dim_attn, real.dim_ffn, real.num_heads, real.num_layers) == (
        256384,
        4096,
        4096,
        10240,
        64,
        24,
    )
    assert real.num_buckets == 32 and real.text_len == 512
    with pytest.raises(ValueError, match="divisible"):
        TextEncoderConfig(dim_attn=30, num_heads=4)
    with pytest.raises(ValueError, match="attn_implementation"):
        TextEncoderConfig(attn_implementation="flash")


def test_forward_matches_official_golden(golden_model, golden_case):
    with torch.no_grad():
        out = golden_model(golden_case["ids"], golden_case["mask"])
    err, ratio = _max_err(out, golden_case["out"])
    print(f"\numT5 tiny: max|ours-ref| out = {err:.3g} (tolerance ratio {ratio:.3g})")
    assert ratio <= 1.0 and err <= 1e-5
    lens = golden_case["mask"].sum(dim=1).tolist()
    assert lens == [37, 150]
    for b, n in enumerate(lens):
        ref = golden_case[f"context_{b}"]
        err_b, ratio_b = _max_err(out[b, :n], ref)
        print(f"umT5 tiny: max|ours-ref| context_{b} = {err_b:.3g}")
        assert ratio_b <= 1.0


def test_sdpa_attention_within_tolerance(golden_sd, golden_case):
    model = UMT5Encoder.from_state_dict(
        golden_sd, config_from_state_dict(golden_sd, attn_implementation="sdpa")
    )
    with torch.no_grad():
        out = model(golden_case["ids"], golden_case["mask"])
    err, ratio = _max_err(out, golden_case["out"])
    print(f"\numT5 tiny (sdpa): max|ours-ref| out = {err:.3g}")
    assert ratio <= 1.0


def test_state_dict_uses_official_keys(golden_sd, golden_model):
    sd = golden_model.state_dict()
    assert set(sd) == set(golden_sd)
    keys = list(sd)
    assert keys[0] == "token_embedding.weight" and keys[-1] == "norm.weight"
    assert keys[1:11] == [
        "blocks.0.norm1.weight",
        "blocks.0.attn.q.weight",
        "blocks.0.attn.k.weight",
        "blocks.0.attn.v.weight",
        "blocks.0.attn.o.weight",
        "blocks.0.norm2.weight",
        "blocks.0.ffn.gate.0.weight",
        "blocks.0.ffn.fc1.weight",
        "blocks.0.ffn.fc2.weight",
        "blocks.0.pos_embedding.embedding.weight",
    ]
    for k, v in sd.items():
        assert torch.equal(v, golden_sd[k]), k
    # strict load into a fresh model, then the embedding stays tied (one tensor)
    fresh = UMT5Encoder(config_from_state_dict(golden_sd))
    result = fresh.load_state_dict(golden_sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    hf = fresh.hf_model
    assert hf.shared.weight is hf.encoder.embed_tokens.weight
    assert torch.equal(fresh.state_dict()["blocks.1.ffn.fc2.weight"], golden_sd["blocks.1.ffn.fc2.weight"])


def test_load_errors_name_official_keys(golden_sd):
    model = UMT5Encoder(config_from_state_dict(golden_sd))
    partial = dict(golden_sd)
    partial.pop("blocks.1.attn.k.weight")
    partial["blocks.1.attn.extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(partial, strict=True)
    assert "blocks.1.attn.k.weight" in str(info.value)
    assert "blocks.1.attn.extra" in str(info.value)
    result = model.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["blocks.1.attn.k.weight"]
    assert result.unexpected_keys == ["blocks.1.attn.extra"]


def test_official_keys_under_a_parent_module(golden_sd, golden_case):
    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.before = nn.Linear(2, 2)
            self.text = UMT5Encoder(config_from_state_dict(golden_sd))
            self.after = nn.Linear(2, 2)

    parent = Parent()
    keys = list(parent.state_dict())
    assert keys[:2] == ["before.weight", "before.bias"] and keys[-2:] == ["after.weight", "after.bias"]
    assert set(keys[2:-2]) == {f"text.{k}" for k in golden_sd}
    sd = {f"text.{k}": v for k, v in golden_sd.items()}
    sd.update({k: v for k, v in parent.state_dict().items() if not k.startswith("text.")})
    parent.load_state_dict(sd, strict=True)
    with torch.no_grad():
        out = parent.text(golden_case["ids"], golden_case["mask"])
    assert _max_err(out, golden_case["out"])[1] <= 1.0


def test_real_config_matches_manifest_on_meta():
    rows, total = [], None
    for line in (REF / "manifest_umt5_xxl_encoder.tsv").read_text().splitlines():
        if line.startswith("# total_params"):
            total = int(line.split("\t")[1])
        if not line or line.startswith("#") or line.startswith("name\t"):
            continue
        name, shape, dtype, numel = line.split("\t")
        rows.append((name, tuple(int(s) for s in shape.split(",")), dtype, int(numel)))
    with torch.device("meta"):
        model = UMT5Encoder(TextEncoderConfig()).to(torch.bfloat16)
    ours = [
        (k, tuple(v.shape), str(v.dtype).replace("torch.", ""), v.numel())
        for k, v in model.state_dict().items()
    ]
    assert ours == rows
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\numT5-XXL encoder: {n_params:,} parameters, {len(ours)} tensors")
    assert n_params == total == 5_680_910_336


def test_from_state_dict_meta_assign_keeps_tie(golden_sd):
    model = UMT5Encoder.from_state_dict(golden_sd, dtype=torch.bfloat16)
    hf = model.hf_model
    assert hf.shared is hf.encoder.embed_tokens
    assert model.state_dict()["token_embedding.weight"].dtype == torch.bfloat16
    assert not any(p.is_meta for p in model.parameters())


# ---------------------------------------------------------------------------------------------------
# Cleaning
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  rain\n\tfalls   hard  ", "rain falls hard"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("A&amp;amp;B &lt;b&gt;", "A&B <b>"),  # unescaped twice
        ("schÃ¶n", "schön"),  # mojibake repaired by ftfy
        ("\u201cquoted\u201d and it\u2019s", '"quoted" and it\'s'),  # curly quotes straightened
        ("a\u00a0b\u3000c", "a b c"),  # unicode spaces collapse
        ("The camera pans to the right (\u2192).", "The camera pans to the right (\u2192)."),
        ("still (\u00b7).", "still (\u00b7)."),
        ("", ""),
    ],
)
def test_clean_caption(raw, clean):
    assert clean_caption(raw) == clean


def test_clean_caption_keeps_action_phrases_byte_exact():
    for phrase in [*MOVE_PHRASES.values(), *LOOK_PHRASES.values(), SPEED]:
        assert clean_caption(phrase) == phrase
    with pytest.raises(TypeError):
        clean_caption(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------


def test_tiny_tokenizer_ids_and_size(tiny_tokenizer):
    assert len(tiny_tokenizer) <= TINY_TOKENIZER_MAX_VOCAB
    assert tiny_tokenizer.pad_token_id == 0
    assert tiny_tokenizer.eos_token_id == 1 and tiny_tokenizer.eos_token == "</s>"
    assert tiny_tokenizer.unk_token_id == 2


def test_tiny_tokenizer_printable_ascii_round_trip(tiny_tokenizer):
    unk = tiny_tokenizer.unk_token_id
    for ch in EVENT_CHARSET:
        ids = tiny_tokenizer(ch).input_ids
        assert unk not in ids, repr(ch)
        assert ids[-1] == 1
        assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == ch.strip(), repr(ch)
    text = EVENT_CHARSET.strip()
    ids = tiny_tokenizer(text).input_ids
    assert unk not in ids and tiny_tokenizer.decode(ids, skip_special_tokens=True) == text
    caption = (
        "First-person perspective." + MOVE_PHRASES["W+A"] + LOOK_PHRASES["\u2193\u2190"] + SPEED
        + 'A storm at 7:30 p.m.; "Look out!" {x} [y] <z> 50% off, #1 ~ ok | \\ ^ ` @'
    )  # fmt: skip
    ids = tiny_tokenizer(caption).input_ids
    assert unk not in ids and tiny_tokenizer.decode(ids, skip_special_tokens=True) == caption
    # anything else goes to byte fallback, not <unk>
    ids = tiny_tokenizer("caf\u00e9 \U0001f409").input_ids
    assert unk not in ids and tiny_tokenizer.decode(ids, skip_special_tokens=True) == "caf\u00e9 \U0001f409"


def test_tiny_tokenizer_padding_and_truncation(tiny_tokenizer):
    out = tiny_tokenizer(
        ["rain", "the red car " * 40, ""],
        padding="max_length",
        truncation=True,
        max_length=24,
        add_special_tokens=True,
        return_tensors="pt",
    )
    ids, mask = out["input_ids"], out["attention_mask"]
    assert ids.shape == mask.shape == (3, 24)
    n = mask.sum(dim=1).tolist()
    assert n[1] == 24 and n[2] == 1
    for b, length in enumerate(n):
        assert ids[b, length - 1] == 1  # </s> last, even after truncation
        assert (ids[b, length:] == 0).all() and (mask[b, length:] == 0).all()


def test_build_tiny_tokenizer_is_deterministic_and_matches_shipped(tmp_path):
    out = build_tiny_tokenizer(tmp_path / "google" / "umt5-xxl")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (out / name).read_bytes() == (TINY_TOKENIZER_DIR / name).read_bytes(), name
    tok = load_tokenizer(out)
    assert tok("The camera tilts up (\u2191).").input_ids[-1] == 1


def test_load_tokenizer_errors_name_the_folder(tmp_path):
    missing = tmp_path / "google" / "umt5-xxl"
    with pytest.raises(FileNotFoundError, match="umt5-xxl"):
        load_tokenizer(missing)
    missing.mkdir(parents=True)
    with pytest.raises(OSError, match="umt5-xxl"):
        load_tokenizer(missing)


# ---------------------------------------------------------------------------------------------------
# TextEncoder: cut to length and cache
# ---------------------------------------------------------------------------------------------------


class _FixedTokenizer:
    """Returns the fixture's ids/mask for two known captions (checks the cut against the goldens)."""

    def __init__(self, case: dict[str, torch.Tensor]) -> None:
        self.rows = {"zero": 0, "one": 1}
        self.case = case

    def __call__(self, texts, **kwargs):
        assert kwargs["padding"] == "max_length" and kwargs["truncation"] is True
        assert kwargs["max_length"] == 160 and kwargs["add_special_tokens"] is True
        idx = [self.rows[t] for t in texts]
        return {"input_ids": self.case["ids"][idx], "attention_mask": self.case["mask"][idx]}


def test_contexts_cut_like_official_call(golden_model, golden_case):
    enc = TextEncoder(golden_model, _FixedTokenizer(golden_case), text_len=160)
    ctx = enc.encode(["one", "zero"])
    assert [tuple(c.shape) for c in ctx] == [(150, 32), (37, 32)]
    for c, ref in zip(ctx, (golden_case["context_1"], golden_case["context_0"])):
        err, ratio = _max_err(c, ref)
        assert ratio <= 1.0, err


def test_encode_equals_model_outputs_cut_to_length(tiny_model, tiny_tokenizer):
    enc = TextEncoder(tiny_model, tiny_tokenizer, text_len=64)
    captions = [
        "First-person perspective." + MOVE_PHRASES["W"] + LOOK_PHRASES["\u2192"] + SPEED,
        "Snow falls.",
    ]
    ctx = enc.encode(captions)
    batch = tiny_tokenizer(
        [clean_caption(c) for c in captions], padding="max_length", truncation=True, max_length=64,
        return_tensors="pt",
    )  # fmt: skip
    with torch.no_grad():
        full = tiny_model(batch["input_ids"], batch["attention_mask"])
    for b, c in enumerate(ctx):
        n = int(batch["attention_mask"][b].sum())
        assert batch["input_ids"][b, n - 1] == 1
        assert c.shape == (n, 32)
        torch.testing.assert_close(c, full[b, :n], rtol=0, atol=1e-6)
    # cleaning happens before tokenizing: messy spacing gives the same context (but its own cache entry)
    messy = enc.encode(["  Snow \n falls.  "])[0]
    torch.testing.assert_close(messy, ctx[1], rtol=0, atol=1e-6)
    assert enc.misses == 3


def test_cache_hits_skip_the_model(tiny_model, tiny_tokenizer):
    counter = _CountCalls(tiny_model)
    enc = TextEncoder(tiny_model, tiny_tokenizer, text_len=48, cache_size=8)
    first = enc.encode(["rain", "fog", "rain"])
    assert counter.calls == 1 and counter.batch_sizes == [2]  # duplicates encoded once
    assert (enc.hits, enc.misses) == (1, 2)
    assert first[0] is first[2]
    assert enc.last_encode_ms > 0

    again = enc.encode(["fog", "rain"])
    assert counter.calls == 1  # no forward at all
    assert again[0] is first[1] and again[1] is first[0]
    assert torch.equal(again[1], first[0])
    assert (enc.hits, enc.misses) == (3, 2)

    mixed = enc.encode(["snow", "rain", "wind"])
    assert counter.calls == 2 and counter.batch_sizes[-1] == 2  # only the two new captions
    assert mixed[1] is first[0]
    assert enc.model_calls == counter.calls
    info = enc.cache_info()
    assert info["size"] == 4 and info["hits"] == 4 and info["misses"] == 4


def test_cache_is_lru_and_bounded(tiny_model, tiny_tokenizer):
    counter = _CountCalls(tiny_model)
    enc = TextEncoder(tiny_model, tiny_tokenizer, text_len=32, cache_size=2)
    enc.encode(["a"])
    enc.encode(["b"])
    enc.encode(["a"])  # refresh "a"
    enc.encode(["c"])  # evicts "b"
    assert "a" in enc and "c" in enc and "b" not in enc and len(enc) == 2
    calls = counter.calls
    enc.encode(["a", "c"])
    assert counter.calls == calls
    enc.encode(["b"])
    assert counter.calls == calls + 1
    # more new captions than the cache holds still come back complete and in order
    out = enc.encode(["p", "q", "r", "p"])
    assert len(out) == 4 and out[0] is out[3] and len(enc) == 2
    enc.clear_cache()
    assert len(enc) == 0

    nocache = TextEncoder(tiny_model, tiny_tokenizer, text_len=32, cache_size=0)
    calls = counter.calls
    nocache.encode(["a"])
    nocache.encode(["a"])
    assert counter.calls == calls + 2 and len(nocache) == 0


def test_batches_are_chunked(tiny_model, tiny_tokenizer):
    counter = _CountCalls(tiny_model)
    enc = TextEncoder(tiny_model, tiny_tokenizer, text_len=32, max_batch_size=2)
    out = enc.encode([f"event {i}" for i in range(5)])
    assert counter.batch_sizes == [2, 2, 1] and len(out) == 5
    ref = TextEncoder(tiny_model, tiny_tokenizer, text_len=32).encode(["event 3"])[0]
    torch.testing.assert_close(out[3], ref, rtol=0, atol=1e-6)


def test_text_encoder_rejects_bad_input(tiny_model, tiny_tokenizer):
    enc = TextEncoder(tiny_model, tiny_tokenizer, text_len=32)
    with pytest.raises(TypeError):
        enc.encode("a single string")
    with pytest.raises(TypeError):
        enc.encode([1])  # type: ignore[list-item]
    small = UMT5Encoder(TextEncoderConfig.tiny(vocab_size=512))
    with pytest.raises(ValueError, match="tokenizer has"):
        TextEncoder(small, tiny_tokenizer)
