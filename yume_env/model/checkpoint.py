"""Reading and writing checkpoint folders in the official Yume-5B-720P layout.

::

    Yume-5B-720P/
      config.json                                   DiT config (official WanModel / diffusers format)
      diffusion_pytorch_model.safetensors           DiT weights, one file ...
      diffusion_pytorch_model.safetensors.index.json  ... or a sharded set with this index
      Wan2.2_VAE.pth                                VAE state dict (torch.save)
      models_t5_umt5-xxl-enc-bf16.pth               umT5-XXL encoder state dict (torch.save)
      google/umt5-xxl/                              tokenizer files (transformers format)
      yume_env.json                                 optional: VAE/text configs of non-5B models

Safety: ``.pth`` files are read with ``torch.load(weights_only=True)``, which refuses any pickle
that would run code; ``.safetensors`` hold no code at all.

Memory: every module is built on the ``meta`` device, the file's keys and shapes are checked against
it before any weight is read, and each tensor then goes straight to its target device and dtype
(``safetensors`` reads it from disk there, ``.pth`` files are memory-mapped). The model is never
built twice and no second full copy of the weights is held (the official loader does both).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

DIT_CONFIG = "config.json"
DIT_WEIGHTS = "diffusion_pytorch_model.safetensors"
DIT_INDEX = "diffusion_pytorch_model.safetensors.index.json"
VAE_WEIGHTS = "Wan2.2_VAE.pth"
T5_WEIGHTS = "models_t5_umt5-xxl-enc-bf16.pth"
TOKENIZER_DIR = "google/umt5-xxl"
EXTRA_CONFIG = "yume_env.json"

LAYOUT = f"""expected layout:
  <folder>/{DIT_CONFIG}
  <folder>/{DIT_WEIGHTS}   (or {DIT_INDEX} + its shards)
  <folder>/{VAE_WEIGHTS}
  <folder>/{T5_WEIGHTS}
  <folder>/{TOKENIZER_DIR}/   (tokenizer files)
  <folder>/{EXTRA_CONFIG}   (optional; only for models other than the official 5B)"""

_SHOWN = 5  # keys listed per category in error messages


class CheckpointError(ValueError):
    """A checkpoint folder or file that cannot be loaded as it is (the message says why)."""


# Sizes a checkpoint's configs may ask for. The official 5B DiT has 30 layers, width 3072 and about
# 5e9 parameters; these bounds leave room for larger models yet refuse, before anything is built, a
# config that would take minutes and gigabytes just to lay out its modules on the meta device.
MAX_LAYERS = 512
MAX_WIDTH = 65536
MAX_PARAMETERS = 200e9
MAX_CONFIG_BYTES = 16 * 2**20
DIT_INT_FIELDS = (
    "dim",
    "ffn_dim",
    "num_heads",
    "num_layers",
    "in_dim",
    "out_dim",
    "freq_dim",
    "text_dim",
    "text_len",
)
TEXT_INT_FIELDS = (
    "vocab_size",
    "dim",
    "dim_attn",
    "dim_ffn",
    "num_heads",
    "num_layers",
    "num_buckets",
    "text_len",
)


def read_json_config(path: Path, label: str) -> dict:
    """A JSON object from ``path`` (size-checked before reading), or a :class:`CheckpointError` naming it."""
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{label}: {path} is {size} bytes; accepted: a JSON config under 16 MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{label}: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{label}: {path} holds a JSON {type(data).__name__}; accepted: a JSON object of config fields"
        )
    return data


def check_config_sizes(config: Mapping, fields: Iterable[str], label: str) -> None:
    """Integer fields that are present must be integers in 1..MAX_WIDTH (``num_layers`` 1..MAX_LAYERS)."""
    for name in fields:
        if name not in config:
            continue
        value = config[name]
        top = MAX_LAYERS if name.endswith("layers") else (2**20 if name == "vocab_size" else MAX_WIDTH)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise CheckpointError(f"{label} {name}: got {value!r}; accepted: an integer in 1..{top}")


def check_dit_budget(dim: int, ffn_dim: int, num_layers: int, label: str) -> None:
    """Refuse a DiT whose parameter count (about ``layers * (8 dim^2 + 2 dim ffn)``) exceeds MAX_PARAMETERS."""
    estimate = num_layers * (8 * dim * dim + 2 * dim * ffn_dim)
    if estimate > MAX_PARAMETERS:
        raise CheckpointError(
            f"{label}: dim={dim}, ffn_dim={ffn_dim}, num_layers={num_layers} make about {estimate:.3g} "
            f"parameters; accepted: at most {MAX_PARAMETERS:.0e} (the official model has about 5e9)"
        )


class TensorSource:
    """Lazy access to the tensors of one or more weight files: names and shapes first, data on demand."""

    def __init__(
        self,
        shapes: dict[str, tuple[int, ...]],
        read: Callable[[str, torch.device], torch.Tensor],
        label: str,
        dtypes: dict[str, torch.dtype] | None = None,
    ):
        self.shapes = shapes
        self._read = read
        self.label = label
        self.dtypes = dtypes  # stored dtype of each tensor, when the format tells it without reading

    def read(self, key: str, device: torch.device) -> torch.Tensor:
        return self._read(key, device)


# safetensors dtype codes -> torch dtypes (codes not listed here are reported as uint8: not float)
_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _safetensors_source(files: list[Path], label: str) -> TensorSource:
    from safetensors import safe_open

    owner: dict[str, Path] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, torch.dtype] = {}
    for f in files:
        if not f.is_file():
            raise CheckpointError(f"{label}: missing weight file {f}\n{LAYOUT}")
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():
                    tensor_slice = handle.get_slice(key)
                    shapes[key] = tuple(tensor_slice.get_shape())
                    dtypes[key] = _SAFETENSORS_DTYPES.get(tensor_slice.get_dtype(), torch.uint8)
                    owner[key] = f
        except Exception as exc:  # safetensors raises its own error types for bad headers / truncation
            raise CheckpointError(f"{label}: {f} is not a readable safetensors file ({exc})") from None

    def read(key: str, device: torch.device) -> torch.Tensor:
        dev = "cpu" if device.type == "meta" else str(device)
        try:
            with safe_open(str(owner[key]), framework="pt", device=dev) as handle:
                return handle.get_tensor(key)
        except Exception as exc:
            raise CheckpointError(f"{label}: cannot read tensor {key!r} from {owner[key]} ({exc})") from None

    return TensorSource(shapes, read, label, dtypes)


def _pth_source(path: Path, label: str) -> TensorSource:
    if not path.is_file():
        raise CheckpointError(f"{label}: missing file {path}\n{LAYOUT}")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{label}: refused to load {path}: it is not a plain tensor state dict "
            f"(weights_only unpickling rejected it: {str(exc).splitlines()[0]})"
        ) from None
    except Exception as exc:  # truncated zip, not a torch file, ...
        raise CheckpointError(f"{label}: {path} is not a readable torch checkpoint ({exc})") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{label}: {path} does not hold a flat name -> tensor state dict")
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    dtypes = {k: v.dtype for k, v in state.items()}
    return TensorSource(shapes, lambda key, device: state[key], label, dtypes)


def open_weights(path: str | Path, label: str = "weights") -> TensorSource:
    """Open a ``.safetensors`` file, a sharded ``*.safetensors.index.json`` or a ``.pth`` state dict."""
    path = Path(path)
    if path.name.endswith(".index.json"):
        if not path.is_file():
            raise CheckpointError(f"{label}: missing index {path}\n{LAYOUT}")
        try:
            weight_map = json.loads(path.read_text())["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{label}: {path} is not a valid safetensors index ({exc})") from None
        shards = sorted({path.parent / name for name in weight_map.values()})
        return _safetensors_source(shards, label)
    if path.suffix == ".safetensors":
        return _safetensors_source([path], label)
    return _pth_source(path, label)


def check_keys(
    expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]], label: str
) -> None:
    """Raise one :class:`CheckpointError` listing missing, unexpected and mis-shaped keys (if any)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shaped = [k for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    if not (missing or unexpected or shaped):
        return
    lines = [f"{label}: the weights do not match the model"]
    if missing:
        lines.append(
            f"  missing keys ({len(missing)}): "
            + ", ".join(missing[:_SHOWN])
            + (" ..." if len(missing) > _SHOWN else "")
        )
    if unexpected:
        lines.append(
            f"  unexpected keys ({len(unexpected)}): "
            + ", ".join(unexpected[:_SHOWN])
            + (" ..." if len(unexpected) > _SHOWN else "")
        )
    if shaped:
        shown = [f"{k} (file {tuple(found[k])}, model {tuple(expected[k])})" for k in shaped[:_SHOWN]]
        lines.append(
            f"  wrong shapes ({len(shaped)}): " + ", ".join(shown) + (" ..." if len(shaped) > _SHOWN else "")
        )
    raise CheckpointError("\n".join(lines))


def materialize(
    build: Callable[[], nn.Module],
    source: TensorSource,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build a module on ``meta``, check ``source`` against it, then fill it tensor by tensor on ``device``.

    Floating-point tensors are cast to ``dtype`` (if given) as they arrive; nothing else is copied.
    Modules may define ``init_constant_buffers()`` to rebuild non-persistent buffers afterwards.
    """
    device = torch.device(device)
    with torch.device("meta"):
        module = build()
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    check_keys(expected, source.shapes, source.label)
    state = {}
    wanted = module.state_dict()
    for key in expected:
        tensor = source.read(key, device)
        if wanted[key].is_floating_point() and not tensor.is_floating_point():
            raise CheckpointError(
                f"{source.label}: tensor {key!r} is {str(tensor.dtype).removeprefix('torch.')}; "
                "accepted: a floating-point dtype (float32, bfloat16, float16)"
            )
        target_dtype = dtype if (dtype is not None and tensor.is_floating_point()) else tensor.dtype
        state[key] = tensor.to(device=device, dtype=target_dtype)
    module.load_state_dict(state, strict=True, assign=True)
    del state
    _finish_on_device(module, device)
    return module.eval()


def _finish_on_device(module: nn.Module, device: torch.device) -> None:
    """Give non-persistent buffers (left on ``meta`` by ``assign``) real values on ``device``."""
    for sub in module.modules():
        init = getattr(sub, "init_constant_buffers", None)
        if callable(init):
            init(device)
    leftovers = [n for n, b in module.named_buffers() if b.is_meta]
    if leftovers:
        raise RuntimeError(f"buffers left uninitialised after loading: {leftovers[:_SHOWN]}")


def save_safetensors(
    module_or_state: nn.Module | Mapping[str, torch.Tensor], path: str | Path, dtype=None
) -> None:
    """Write a state dict as safetensors (contiguous CPU copies, optional float cast)."""
    from safetensors.torch import save_file

    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    out = {}
    for k, v in state.items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    save_file(out, str(path))


def save_pth(module: nn.Module, path: str | Path, dtype=None) -> None:
    """Write a plain ``name -> tensor`` state dict with ``torch.save`` (as the official .pth files)."""
    state = {}
    for k, v in module.state_dict().items():
        v = v.detach().to("cpu")
        state[k] = v.to(dtype) if (dtype is not None and v.is_floating_point()) else v.clone()
    torch.save(state, str(path))


def list_missing_files(folder: Path, needed: Iterable[str]) -> list[str]:
    return [name for name in needed if not (folder / name).exists()]
