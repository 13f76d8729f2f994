"""The text side of the Yume-1.5 generator: the umT5-XXL encoder, its tokenizer and a caption cache.

What the official pipeline does (``wan23/modules/t5.py`` and ``tokenizers.py``, shared with Wan2.2):

- a caption is cleaned (:func:`~yume_env.model.text_cleaning.clean_caption`);
- it is tokenized by the ``google/umt5-xxl`` tokenizer with ``max_length=512``, padding to
  ``max_length``, truncation and special tokens (so ``</s>`` ends every caption);
- the encoder-only umT5-XXL runs on the padded ids with the attention mask;
- each output row is cut to the caption's true length (``</s>`` included) and handed to the DiT.

:class:`UMT5Encoder` wraps ``transformers.UMT5EncoderModel`` (eager attention, which reproduces the
official float32 and bfloat16 numbers bit for bit, on CPU and on CUDA), while its ``state_dict()`` and
``load_state_dict()`` speak the official key names (``token_embedding.weight``,
``blocks.N.attn.q.weight``, ``blocks.N.pos_embedding.embedding.weight``, ``norm.weight``, ...), so the
released ``models_t5_umt5-xxl-enc-bf16.pth`` loads with ``strict=True`` and no renaming.

:class:`TextEncoder` is what the generator calls: cleaning, tokenizing, batched encoding of the
captions not seen before, and a bounded LRU cache keyed by the exact caption string.

:func:`build_bpe_tokenizer` writes a small offline tokenizer (byte-fallback BPE, pad 0, eos 1,
unk 2 as in umT5); the package ships the CPU "tiny" preset's in ``assets/tiny_tokenizer``, built from
the action captions by :func:`yume_env.train.tokenizer.build_tiny_tokenizer`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..paths import TINY_TOKENIZER
from .local_folders import refuse_remote_code
from .text_cleaning import clean_caption

__all__ = [
    "TextEncoderConfig",
    "UMT5Encoder",
    "TextEncoder",
    "clean_caption",
    "load_tokenizer",
    "build_bpe_tokenizer",
    "config_from_state_dict",
    "TINY_TOKENIZER_DIR",
    "TINY_TOKENIZER_MAX_VOCAB",
]

#: Folder of the tokenizer shipped with the package for the CPU "tiny" preset.
TINY_TOKENIZER_DIR: Path = TINY_TOKENIZER

#: Upper bound on the tiny tokenizer's vocabulary (3 specials + 256 byte pieces + learned pieces).
TINY_TOKENIZER_MAX_VOCAB: int = 1024

# ----------------------------------------------------------------------------------------------------
# Config and encoder
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextEncoderConfig:
    """Shape of the umT5 encoder. The defaults are the real umT5-XXL encoder used by Yume-1.5.

    Attributes:
        vocab_size: rows of the token embedding (256384 for umT5).
        dim: model width.
        dim_attn: total attention width (``num_heads * head_dim``).
        dim_ffn: hidden width of the gated-GELU feed-forward.
        num_heads: attention heads.
        num_layers: encoder blocks.
        num_buckets: relative-position buckets (bidirectional: half per direction).
        text_len: tokens per caption after padding / truncation.
        max_distance: distance at which the log-spaced position buckets saturate.
        eps: epsilon of the RMS norms.
        attn_implementation: ``"eager"`` (default; bit-identical to the official math, including
            bfloat16) or ``"sdpa"`` (PyTorch fused attention, about 1e-6 off in float32 and about
            one bfloat16 ulp off in bfloat16).
    """

    vocab_size: int = 256384
    dim: int = 4096
    dim_attn: int = 4096
    dim_ffn: int = 10240
    num_heads: int = 64
    num_layers: int = 24
    num_buckets: int = 32
    text_len: int = 512
    max_distance: int = 128
    eps: float = 1e-6
    attn_implementation: str = "eager"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "dim_attn", "dim_ffn", "num_heads", "num_layers", "num_buckets"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"TextEncoderConfig.{name} must be positive, got {getattr(self, name)}")
        if self.dim_attn % self.num_heads:
            raise ValueError(
                f"TextEncoderConfig: dim_attn={self.dim_attn} is not divisible by num_heads={self.num_heads}"
            )
        if self.num_buckets % 2:
            raise ValueError(f"TextEncoderConfig.num_buckets must be even, got {self.num_buckets}")
        if self.attn_implementation not in ("eager", "sdpa"):
            raise ValueError(
                f"TextEncoderConfig.attn_implementation: got {self.attn_implementation!r}; "
                "accepted: 'eager', 'sdpa'"
            )

    @classmethod
    def from_official(cls, kwargs: dict) -> TextEncoderConfig:
        """From the official ``umt5_xxl(encoder_only=True, **kwargs)`` keyword arguments."""
        if kwargs.get("shared_pos", False):
            raise ValueError(
                "t5 config: shared_pos=True is not the umT5 layout (per-layer position bias); accepted: False"
            )
        rename = {"encoder_layers": "num_layers"}
        ignored = {
            "shared_pos",
            "dropout",
            "decoder_layers",
            "encoder_only",
            "return_tokenizer",
            "dtype",
            "device",
        }
        fields = {rename.get(k, k): v for k, v in kwargs.items() if k not in ignored}
        return cls(**fields)

    @classmethod
    def tiny(cls, vocab_size: int = TINY_TOKENIZER_MAX_VOCAB, **overrides: Any) -> TextEncoderConfig:
        """A 2-layer, 32-wide encoder (the shape of the reference fixtures) for CPU tests and demos."""
        fields: dict[str, Any] = dict(
            vocab_size=vocab_size, dim=32, dim_attn=32, dim_ffn=64, num_heads=4, num_layers=2, num_buckets=32
        )
        fields.update(overrides)
        return cls(**fields)


# Official per-block key (after "blocks.N.") -> transformers key (after "encoder.block.N.").
_BLOCK_KEYS: tuple[tuple[str, str], ...] = (
    ("norm1.weight", "layer.0.layer_norm.weight"),
    ("attn.q.weight", "layer.0.SelfAttention.q.weight"),
    ("attn.k.weight", "layer.0.SelfAttention.k.weight"),
    ("attn.v.weight", "layer.0.SelfAttention.v.weight"),
    ("attn.o.weight", "layer.0.SelfAttention.o.weight"),
    ("norm2.weight", "layer.1.layer_norm.weight"),
    ("ffn.gate.0.weight", "layer.1.DenseReluDense.wi_0.weight"),
    ("ffn.fc1.weight", "layer.1.DenseReluDense.wi_1.weight"),
    ("ffn.fc2.weight", "layer.1.DenseReluDense.wo.weight"),
    ("pos_embedding.embedding.weight", "layer.0.SelfAttention.relative_attention_bias.weight"),
)
_HF_ATTR = "hf_model"  # name of the wrapped transformers module inside UMT5Encoder
_HF_EMBED = "shared.weight"
_HF_EMBED_TIED = "encoder.embed_tokens.weight"


def _official_key_map(num_layers: int) -> OrderedDict[str, str]:
    """Official key -> transformers key, in the official ``state_dict()`` order."""
    keys: OrderedDict[str, str] = OrderedDict()
    keys["token_embedding.weight"] = _HF_EMBED
    for i in range(num_layers):
        for official, hf in _BLOCK_KEYS:
            keys[f"blocks.{i}.{official}"] = f"encoder.block.{i}.{hf}"
    keys["norm.weight"] = "encoder.final_layer_norm.weight"
    return keys


class UMT5Encoder(nn.Module):
    """Encoder-only umT5 with the official Yume / Wan2.2 parameter names.

    The computation is ``transformers.UMT5EncoderModel`` (per-layer bidirectional relative position
    bias, no 1/sqrt(d) scaling, RMS norms, gated tanh-GELU FFN without biases, padded keys masked).
    ``state_dict()`` returns the official keys in the official order and ``load_state_dict`` accepts
    them (``strict=True`` and ``assign=True`` both work). ``named_parameters()`` still shows the
    wrapped module's own names.

    Build the real 5.7 B-parameter model without allocating it with ``torch.device("meta")`` and then
    ``load_state_dict(sd, assign=True)``, or use :meth:`from_state_dict`.
    """

    def __init__(self, config: TextEncoderConfig | None = None) -> None:
        super().__init__()
        from transformers import UMT5Config, UMT5EncoderModel

        self.config = config if config is not None else TextEncoderConfig()
        c = self.config
        hf_config = UMT5Config(
            vocab_size=c.vocab_size,
            d_model=c.dim,
            d_kv=c.dim_attn // c.num_heads,
            d_ff=c.dim_ffn,
            num_layers=c.num_layers,
            num_heads=c.num_heads,
            relative_attention_num_buckets=c.num_buckets,
            relative_attention_max_distance=c.max_distance,
            dropout_rate=0.0,
            layer_norm_epsilon=c.eps,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
            attn_implementation=c.attn_implementation,
        )
        model = UMT5EncoderModel(hf_config)
        # Tie the embedding at module level so that one tensor backs both transformers names, even
        # after load_state_dict(assign=True) or a device move.
        model.set_input_embeddings(model.shared)
        self.hf_model = model.eval()
        self._key_map = _official_key_map(c.num_layers)
        self._reverse_map = {hf: official for official, hf in self._key_map.items()}
        self._reverse_map[_HF_EMBED_TIED] = "token_embedding.weight"
        self._register_key_hooks()

    # -- key translation ------------------------------------------------------------------------
    def _register_key_hooks(self) -> None:
        post = getattr(self, "register_state_dict_post_hook", None)
        if post is not None:
            post(UMT5Encoder._state_dict_to_official)
        else:  # torch < 2.5
            self._register_state_dict_hook(UMT5Encoder._state_dict_to_official)
        self.register_load_state_dict_pre_hook(UMT5Encoder._official_to_hf)
        self.register_load_state_dict_post_hook(UMT5Encoder._report_official_names)

    @staticmethod
    def _state_dict_to_official(
        module: UMT5Encoder, state_dict: dict, prefix: str, local_metadata: Any
    ) -> None:
        inner = f"{prefix}{_HF_ATTR}."
        own = [k for k in state_dict if k.startswith(inner)]
        values = {k[len(inner) :]: state_dict.pop(k) for k in own}
        values.pop(_HF_EMBED_TIED, None)
        for official, hf in module._key_map.items():
            if hf in values:
                state_dict[prefix + official] = values.pop(hf)
        for rest, value in values.items():  # nothing expected here; keep anything unknown visible
            state_dict[inner + rest] = value

    @staticmethod
    def _official_to_hf(
        module: UMT5Encoder,
        state_dict: dict,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        inner = f"{prefix}{_HF_ATTR}."
        for official, hf in module._key_map.items():
            key = prefix + official
            if key in state_dict:
                state_dict[inner + hf] = state_dict.pop(key)
        if inner + _HF_EMBED in state_dict:
            state_dict[inner + _HF_EMBED_TIED] = state_dict[inner + _HF_EMBED]

    @staticmethod
    def _report_official_names(module: UMT5Encoder, incompatible_keys: Any) -> None:
        # Called once per prefix the module is loaded under; translate whatever refers to us.
        for keys in (incompatible_keys.missing_keys, incompatible_keys.unexpected_keys):
            renamed: list[str] = []
            for key in keys:
                head, sep, rest = key.partition(f"{_HF_ATTR}.")
                official = module._reverse_map.get(rest) if sep else None
                new = head + official if official is not None else key
                if new not in renamed:
                    renamed.append(new)
            keys[:] = renamed

    # -- construction helpers -------------------------------------------------------------------
    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        config: TextEncoderConfig | None = None,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> UMT5Encoder:
        """Build on the meta device and load an official state dict with ``assign=True`` (no extra copy).

        ``config`` defaults to :func:`config_from_state_dict`. ``dtype`` / ``device`` optionally cast and
        move the loaded weights.
        """
        config = config if config is not None else config_from_state_dict(state_dict)
        with torch.device("meta"):
            model = cls(config)
        model.load_state_dict(dict(state_dict), strict=True, assign=True)
        if dtype is not None or device is not None:
            model = model.to(device=device, dtype=dtype)
        return model.eval()

    # -- forward --------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Output width."""
        return self.config.dim

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encode token ids.

        Args:
            ids: ``LongTensor[B, L]`` token ids.
            mask: ``LongTensor[B, L]``, 1 for real tokens and 0 for padding (``None``: all real).

        Returns:
            ``Tensor[B, L, dim]`` in the parameters' dtype. Padded rows are computed too (as in the
            official code); cut them with the mask.
        """
        if ids.dim() != 2:
            raise ValueError(f"UMT5Encoder: ids must be [B, L], got shape {tuple(ids.shape)}")
        if mask is not None and mask.shape != ids.shape:
            raise ValueError(
                f"UMT5Encoder: mask shape {tuple(mask.shape)} does not match ids shape {tuple(ids.shape)}"
            )
        return self.hf_model(input_ids=ids, attention_mask=mask).last_hidden_state


def config_from_state_dict(state_dict: Mapping[str, torch.Tensor], **overrides: Any) -> TextEncoderConfig:
    """Infer a :class:`TextEncoderConfig` from an official-key state dict (shapes only; meta is fine)."""
    try:
        vocab_size, dim = state_dict["token_embedding.weight"].shape
        dim_attn = state_dict["blocks.0.attn.q.weight"].shape[0]
        dim_ffn = state_dict["blocks.0.ffn.fc1.weight"].shape[0]
        num_buckets, num_heads = state_dict["blocks.0.pos_embedding.embedding.weight"].shape
    except KeyError as exc:
        raise KeyError(f"not an official umT5 encoder state dict: missing {exc.args[0]!r}") from None
    num_layers = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    fields: dict[str, Any] = dict(
        vocab_size=int(vocab_size),
        dim=int(dim),
        dim_attn=int(dim_attn),
        dim_ffn=int(dim_ffn),
        num_heads=int(num_heads),
        num_layers=num_layers,
        num_buckets=int(num_buckets),
    )
    fields.update(overrides)
    return TextEncoderConfig(**fields)


# ----------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------


def load_tokenizer(folder: str | Path) -> Any:
    """Load a tokenizer with ``transformers.AutoTokenizer`` from a local folder, never from the hub.

    ``folder`` is the checkpoint's ``google/umt5-xxl/`` directory (or :data:`TINY_TOKENIZER_DIR`).
    Raises ``FileNotFoundError`` when the folder is missing and ``OSError`` when it cannot be read as a
    tokenizer; both messages name the folder. A folder whose ``tokenizer_config.json`` (or
    ``config.json``) has an ``auto_map`` (custom Python code) is refused with
    :class:`~yume_env.model.local_folders.RemoteCodeRefusedError`: code from a folder never runs.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"tokenizer folder not found: {str(path)!r} (expected the checkpoint's 'google/umt5-xxl/' "
            "directory with tokenizer.json / spiece.model and tokenizer_config.json)"
        )
    refuse_remote_code(path, "tokenizer folder")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            str(path.resolve()), local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:
        raise OSError(f"could not load a tokenizer from {str(path)!r}: {type(exc).__name__}: {exc}") from exc


_SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5 / umT5


def _bpe_alphabet(extra_chars: str) -> list[str]:
    """Every printable ASCII character, the word marker, then ``extra_chars`` (those not already in)."""
    chars = ["\u2581"] + [chr(c) for c in range(33, 127)]
    chars.extend(ch for ch in dict.fromkeys(extra_chars) if ch not in chars)
    return chars


def _learn_bpe_merges(
    word_counts: Mapping[str, int], alphabet: Sequence[str], n_merges: int
) -> list[tuple[str, str]]:
    """Plain byte-pair-encoding training with deterministic tie-breaking (highest count, then smallest pair).

    Words are split into characters; characters outside ``alphabet`` are kept as they are but are
    never part of a merge (they go to byte fallback when tokenizing).
    """
    known = set(alphabet)
    words = sorted(word_counts)
    freqs = [word_counts[w] for w in words]
    seqs = [list(w) for w in words]
    counts: dict[tuple[str, str], int] = {}
    where: dict[tuple[str, str], set[int]] = {}

    def add(i: int, sign: int) -> None:
        seq, f = seqs[i], freqs[i]
        for a, b in zip(seq, seq[1:]):
            if a[0] in known and b[0] in known:
                counts[(a, b)] = counts.get((a, b), 0) + sign * f
                where.setdefault((a, b), set()).add(i)

    for i in range(len(seqs)):
        add(i, +1)
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        best = None
        for pair, c in counts.items():
            if c >= 2 and (best is None or c > counts[best] or (c == counts[best] and pair < best)):
                best = pair
        if best is None:
            break
        merges.append(best)
        a, b = best
        for i in sorted(where.pop(best)):
            seq = seqs[i]
            if not any(x == a and y == b for x, y in zip(seq, seq[1:])):
                continue
            add(i, -1)
            merged: list[str] = []
            j = 0
            while j < len(seq):
                if j + 1 < len(seq) and seq[j] == a and seq[j + 1] == b:
                    merged.append(a + b)
                    j += 2
                else:
                    merged.append(seq[j])
                    j += 1
            seqs[i] = merged
            add(i, +1)
        counts.pop(best, None)
        for pair in [p for p, c in counts.items() if c <= 0]:
            del counts[pair]
    return merges


def _build_bpe_backend(lines: Sequence[str], extra_chars: str, vocab_size: int) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    alphabet = _bpe_alphabet(extra_chars)
    base = len(_SPECIALS) + 256 + len(alphabet)
    if vocab_size < base + 64:
        raise ValueError(f"tiny tokenizer: vocab_size={vocab_size} is too small (minimum {base + 64})")
    normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
    )
    # Words get the "▁" prefix; punctuation marks and digits are split off so the small vocabulary is
    # spent on words ("bridge" and "bridge." share one piece).
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
            pre_tokenizers.Punctuation(behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )

    word_counts: dict[str, int] = {}
    for line in lines:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            word_counts[word] = word_counts.get(word, 0) + 1
    merges = _learn_bpe_merges(word_counts, alphabet, vocab_size - base)

    # Ids: specials, the 256 SentencePiece-style byte pieces, the alphabet, then one token per merge.
    tokens = list(_SPECIALS) + [f"<0x{b:02X}>" for b in range(256)] + alphabet + [a + b for a, b in merges]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tok.add_special_tokens(list(_SPECIALS))
    return tok


def build_bpe_tokenizer(
    out_dir: str | Path,
    lines: Sequence[str],
    extra_chars: str = "",
    vocab_size: int = TINY_TOKENIZER_MAX_VOCAB,
) -> Path:
    """Train a small offline tokenizer on ``lines`` and save it as a folder that :func:`load_tokenizer` reads.

    A byte-pair-encoding model (SentencePiece style: ``▁`` word prefix, NFKC, whitespace collapsed,
    punctuation and digits split off) trained in-process and deterministically, with byte fallback so
    that any text encodes without ``<unk>``. Its alphabet is printable ASCII plus ``extra_chars``.
    Ids: ``<pad>`` 0, ``</s>`` 1 (appended to every sequence), ``<unk>`` 2, byte pieces 3..258, the
    alphabet, then learned pieces. Writes ``tokenizer.json`` and ``tokenizer_config.json``.
    :func:`yume_env.train.tokenizer.build_tiny_tokenizer` builds the tiny preset's with it.

    Returns the output folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _build_bpe_backend(lines, extra_chars, vocab_size).save(str(out / "tokenizer.json"), pretty=True)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 512,
        "pad_token": "<pad>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out


# ----------------------------------------------------------------------------------------------------
# Text encoder with cache
# ----------------------------------------------------------------------------------------------------


class TextEncoder:
    """Captions -> umT5 contexts, as the generator needs them, with an LRU cache.

    ``encode(captions)`` returns one ``Tensor[L_i, dim]`` per caption, cut to the caption's true token
    count (``</s>`` included), exactly like the official ``T5EncoderModel.__call__``: clean, tokenize
    with ``max_length=text_len`` / ``padding="max_length"`` / truncation / special tokens, encode the
    padded batch with its mask, cut each row.

    The cache is keyed by the exact caption string (before cleaning) and bounded to ``cache_size``
    entries (least recently used evicted; 0 disables it). Captions already cached are not run through
    the model; the others are deduplicated and encoded in batches of at most ``max_batch_size``.
    Returned tensors are shared with the cache: treat them as read-only.

    The encoder is put in eval mode; inference runs under ``torch.no_grad()`` on ``device`` (default:
    the encoder's device). Outputs keep the encoder's dtype (bfloat16 for the real checkpoint).

    Counters: ``hits`` (captions served without running the model for them, duplicates within one
    call included), ``misses`` (distinct captions that were encoded), ``model_calls`` (encoder
    forwards), ``last_encode_ms`` (wall time of the last :meth:`encode`).
    """

    def __init__(
        self,
        model: UMT5Encoder,
        tokenizer: Any,
        text_len: int = 512,
        cache_size: int = 256,
        device: torch.device | str | None = None,
        max_batch_size: int = 16,
    ) -> None:
        if text_len < 1:
            raise ValueError(f"TextEncoder: text_len must be >= 1, got {text_len}")
        if cache_size < 0:
            raise ValueError(f"TextEncoder: cache_size must be >= 0, got {cache_size}")
        if max_batch_size < 1:
            raise ValueError(f"TextEncoder: max_batch_size must be >= 1, got {max_batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.text_len = int(text_len)
        self.cache_size = int(cache_size)
        self.max_batch_size = int(max_batch_size)
        self.device = torch.device(device) if device is not None else self._model_device()
        if self.device.type == "meta":
            raise ValueError("TextEncoder: the encoder is on the meta device; load its weights first")
        self._check_vocab()
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        # One encode at a time: threads sharing a model (vector envs, servers) would otherwise evict
        # each other's entries between a lookup and its use.
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        self.model_calls = 0
        self.last_encode_ms = 0.0

    def _model_device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")

    def _check_vocab(self) -> None:
        try:
            n = len(self.tokenizer)
        except TypeError:
            return
        vocab = getattr(getattr(self.model, "config", None), "vocab_size", None)
        if vocab is not None and n > vocab:
            raise ValueError(
                f"TextEncoder: the tokenizer has {n} tokens but the encoder's embedding has only {vocab} rows"
            )

    # -- cache ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, caption: object) -> bool:
        return caption in self._cache

    def clear_cache(self) -> None:
        """Drop every cached context (the counters are kept)."""
        with self._lock:
            self._cache.clear()

    def cache_info(self) -> dict[str, float]:
        """Counters and sizes, e.g. for logging."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "model_calls": self.model_calls,
            "size": len(self._cache),
            "capacity": self.cache_size,
            "last_encode_ms": self.last_encode_ms,
        }

    def _remember(self, caption: str, context: torch.Tensor) -> None:
        if self.cache_size == 0:
            return
        self._cache[caption] = context
        self._cache.move_to_end(caption)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- encoding -------------------------------------------------------------------------------
    def tokenize(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean and tokenize as the official wrapper does.

        Returns ``(ids, mask)``, both ``LongTensor[B, text_len]``.
        """
        texts = [clean_caption(c) for c in captions]
        out = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.text_len,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return out["input_ids"], out["attention_mask"]

    def _run(self, captions: Sequence[str]) -> Iterator[torch.Tensor]:
        for start in range(0, len(captions), self.max_batch_size):
            chunk = captions[start : start + self.max_batch_size]
            ids, mask = self.tokenize(chunk)
            ids, mask = ids.to(self.device), mask.to(self.device)
            seq_lens = mask.gt(0).sum(dim=1).long().tolist()
            with torch.no_grad():
                context = self.model(ids, mask)
            self.model_calls += 1
            for row, n in zip(context, seq_lens):
                yield row[:n].clone()  # own storage: do not keep the padded batch alive in the cache

    def encode(self, captions: Sequence[str]) -> list[torch.Tensor]:
        """Encode captions into ``[L_i, dim]`` contexts (cached ones are reused, see the class docs).

        Thread-safe: concurrent calls are served one after the other.
        """
        with self._lock:
            return self._encode(captions)

    def _encode(self, captions: Sequence[str]) -> list[torch.Tensor]:
        if isinstance(captions, str):
            raise TypeError("TextEncoder.encode expects a sequence of captions, not a single str")
        captions = list(captions)
        for c in captions:
            if not isinstance(c, str):
                raise TypeError(f"TextEncoder.encode: captions must be str, got {type(c).__name__}")
        t0 = time.perf_counter()
        results: list[torch.Tensor | None] = [None] * len(captions)
        pending: dict[str, list[int]] = {}
        for i, caption in enumerate(captions):
            cached = self._cache.get(caption)
            if cached is not None:
                self._cache.move_to_end(caption)
                results[i] = cached
            else:
                pending.setdefault(caption, []).append(i)
        todo = list(pending)
        for caption, context in zip(todo, self._run(todo)):
            for i in pending[caption]:
                results[i] = context
            self._remember(caption, context)
        self.misses += len(todo)
        self.hits += len(captions) - len(todo)
        self.last_encode_ms = (time.perf_counter() - t0) * 1000.0
        return [r for r in results if r is not None]

    def __call__(self, captions: Sequence[str]) -> list[torch.Tensor]:
        """Same as :meth:`encode`."""
        return self.encode(captions)
