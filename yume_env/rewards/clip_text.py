"""Text-frame similarity reward with a CLIP-style model read from a local folder (never downloaded)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from yume_env.model.local_folders import refuse_remote_code
from yume_env.rewards.common import check_observation_space, frames_from

FRAMES = ("last", "mean", "max")


class RewardModelError(RuntimeError):
    """A reward model that cannot be loaded or run (raised at construction, naming the folder)."""


def _features(out):
    """Embedding tensor from ``get_*_features`` output (a tensor, or a model output in newer transformers)."""
    if hasattr(out, "shape"):
        return out
    for name in ("pooler_output", "text_embeds", "image_embeds"):
        value = getattr(out, name, None)
        if value is not None:
            return value
    raise RewardModelError(f"the model returned {type(out).__name__} without an embedding tensor")


class ClipTextReward:
    """``reward(obs, action, info) -> float``: cosine similarity of the frames to a text.

    The model is loaded from a local folder in Hugging Face layout (``config.json``, weights,
    tokenizer and image-processor files), e.g. a saved ``openai/clip-vit-base-patch32``, through
    ``transformers`` (``AutoModel`` with ``get_text_features`` / ``get_image_features``, and
    ``AutoProcessor`` or ``AutoTokenizer`` + ``AutoImageProcessor``), with ``local_files_only=True``:
    nothing is ever downloaded, and no code from the folder is ever run: a folder whose configs carry
    an ``auto_map`` (custom Python classes) is refused with
    :class:`~yume_env.model.local_folders.RemoteCodeRefusedError`, and every load passes
    ``trust_remote_code=False``.

    Everything that can fail is tried at construction: the folder, the files, the model, the text,
    and a test image through the vision side. A broken model raises :class:`RewardModelError` (or
    ``FileNotFoundError``) here, never mid-episode. If the model nevertheless fails on a step (e.g.
    the device runs out of memory), the step gets ``fallback`` (default 0.0), a warning is issued
    once, and ``failures`` counts it: the episode goes on.

    Args:
        model_dir: the local model folder.
        text: what the frames should show, e.g. ``"a red balloon in a street"``.
        frames: ``"last"`` (default: the block's last frame), ``"mean"`` (mean similarity over
            ``max_frames`` frames spread over the block) or ``"max"``.
        max_frames: frames scored per block with ``"mean"`` / ``"max"`` (default 4).
        device / dtype: where the model runs (default CPU, float32).
        scale / fallback: the similarity is multiplied by ``scale``; ``fallback`` on a failed step.
        observation_space: checked at construction when given.
    """

    def __init__(
        self,
        model_dir: str | Path,
        text: str,
        frames: str = "last",
        max_frames: int = 4,
        device: str = "cpu",
        dtype=None,
        scale: float = 1.0,
        fallback: float = 0.0,
        observation_space=None,
    ):
        import torch

        if frames not in FRAMES:
            raise ValueError(f"frames: got {frames!r}; accepted: {', '.join(FRAMES)}")
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or not 1 <= max_frames <= 64:
            raise ValueError(f"max_frames: got {max_frames!r}; accepted: an integer in 1..64")
        for name, value in (("scale", scale), ("fallback", fallback)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise ValueError(f"{name}: got {value!r}; accepted: a finite number")
        check_observation_space(observation_space, "ClipTextReward")
        folder = Path(model_dir)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"model_dir: no such folder: {folder}; accepted: a local folder with config.json, "
                "weights and tokenizer/processor files (models are never downloaded)"
            )
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"model_dir: {folder} has no config.json; accepted: a saved transformers model"
            )
        self.model_dir = folder
        self.frames = frames
        self.max_frames = max_frames
        self.scale = float(scale)
        self.fallback = float(fallback)
        self.failures = 0
        self._warned = False
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device: got {device!r}; accepted: e.g. 'cpu' or 'cuda' ({exc})") from None
        self.dtype = _dtype(dtype)
        self._torch = torch
        self.model, self.tokenizer, self.image_processor = self._load(folder)
        self.set_text(text)
        try:  # the vision side, once, on a grey test image
            self.similarity(np.full((1, 64, 64, 3), 128, np.uint8))
        except Exception as exc:
            raise RewardModelError(f"model_dir {folder}: the model failed on a test image: {exc}") from exc

    def _load(self, folder: Path):
        from transformers import AutoImageProcessor, AutoModel, AutoProcessor, AutoTokenizer

        refuse_remote_code(folder, "model_dir")
        local = {"local_files_only": True, "trust_remote_code": False}  # never run a folder's code
        try:
            model = AutoModel.from_pretrained(folder, **local)
        except Exception as exc:
            raise RewardModelError(f"model_dir {folder}: cannot load the model: {exc}") from exc
        for method in ("get_text_features", "get_image_features"):
            if not callable(getattr(model, method, None)):
                raise RewardModelError(
                    f"model_dir {folder}: {type(model).__name__} has no {method}(); accepted: a CLIP-style "
                    "model (CLIPModel, SiglipModel, ...)"
                )
        tokenizer = image_processor = None
        try:
            processor = AutoProcessor.from_pretrained(folder, **local)
            tokenizer = getattr(processor, "tokenizer", None)
            image_processor = getattr(processor, "image_processor", None)
        except Exception:
            pass
        try:
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(folder, **local)
            image_processor = image_processor or AutoImageProcessor.from_pretrained(folder, **local)
        except Exception as exc:
            raise RewardModelError(
                f"model_dir {folder}: cannot load the tokenizer / image processor: {exc}"
            ) from exc
        model = model.to(device=self.device, dtype=self.dtype).eval()
        return model, tokenizer, image_processor

    def set_text(self, text: str) -> None:
        """Change the target text (encoded now; a failure raises here)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text: got {text!r}; accepted: a non-empty string")
        torch = self._torch
        try:
            enc = self.tokenizer([text], return_tensors="pt", padding=True, truncation=True)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.no_grad():
                emb = _features(self.model.get_text_features(**enc)).float()
        except Exception as exc:
            raise RewardModelError(
                f"model_dir {self.model_dir}: cannot encode the text {text!r}: {exc}"
            ) from exc
        self.text = text
        self._text = torch.nn.functional.normalize(emb, dim=-1)[0]

    def similarity(self, frames: np.ndarray) -> np.ndarray:
        """Cosine similarity of each frame ``(T, H, W, 3)`` to the text, ``(T,)``."""
        torch = self._torch
        pix = self.image_processor(images=[np.asarray(f, np.uint8) for f in frames], return_tensors="pt")
        pix = {
            k: v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in pix.items()
        }
        with torch.no_grad():
            emb = _features(self.model.get_image_features(**pix)).float()
        emb = torch.nn.functional.normalize(emb, dim=-1)
        return (emb @ self._text).cpu().numpy()

    def __call__(self, obs, action, info) -> float:
        frames = frames_from(obs, "ClipTextReward")
        if self.frames == "last":
            chosen = frames[-1:]
        else:
            idx = np.unique(np.linspace(0, len(frames) - 1, self.max_frames).round().astype(int))
            chosen = frames[idx]
        try:
            sims = self.similarity(chosen)
        except Exception as exc:  # the episode goes on: see the class docstring
            self.failures += 1
            if not self._warned:
                warnings.warn(
                    f"ClipTextReward: the model failed on a step ({type(exc).__name__}: {exc}); "
                    f"returning fallback={self.fallback} (counted in .failures)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._warned = True
            return self.fallback
        value = float(sims.max() if self.frames == "max" else sims.mean())
        return self.scale * value


def _dtype(dtype):
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise ValueError(f"dtype: got {dtype!r}; accepted: None, a torch dtype or a name like 'float32'")
