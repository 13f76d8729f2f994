"""Golden-case runner: check this implementation against numbers produced by the official code.

Usage::

    python -m yume_env.conformance DIR [--atol 1e-4] [--rtol 1e-4] [--json report.json]

``DIR`` holds cases in the reference format: for each case a ``<name>.safetensors`` with its tensors
and a ``<name>.json`` sidecar with the config, the weights file and the official call. The kind of a
case is read from its sidecar, so any folder in this format works (other seeds, sizes, history
lengths):

- ``dit_config`` (no ``steps``): one DiT forward (text-to-video when there is no history)
- ``dit_config`` + ``steps``: one full Euler-denoised block (every step is compared)
- ``vae_config``: VAE encode / decode (and the 8-latent block decode when present)
- ``t5_config``: the umT5 encoder
- ``"case": "taehv"``: the tiny TAEHV autoencoder (``taehv_config``): parallel decode of a block and
  of a longer clip, streaming decode one latent at a time, and encode. These cases carry their own
  criterion (``tolerance.rel_err_max``: max abs error / max abs reference value), used instead of
  ``--atol`` / ``--rtol``.

A tensor passes when every element satisfies ``|ours - ref| <= atol + rtol * |ref|`` (the default
tolerances are ~40x the kernel noise and far below the official quirks' effects). One row per case
is printed; the exit status is 1 if any case fails, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch


@dataclass
class Comparison:
    tensor: str
    max_abs: float
    rel: float
    ok: bool


@dataclass
class CaseResult:
    name: str
    kind: str
    comparisons: list[Comparison] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.comparisons) and all(c.ok for c in self.comparisons)

    @property
    def max_abs(self) -> float:
        return max((c.max_abs for c in self.comparisons), default=float("nan"))

    @property
    def rel(self) -> float:
        return max((c.rel for c in self.comparisons), default=float("nan"))


def compare(name: str, ours: torch.Tensor, ref: torch.Tensor, atol: float, rtol: float) -> Comparison:
    ours = ours.detach().to("cpu", torch.float64)
    ref = ref.detach().to("cpu", torch.float64)
    if ours.shape != ref.shape:
        return Comparison(
            f"{name} (shape {tuple(ours.shape)} != {tuple(ref.shape)})", float("inf"), float("inf"), False
        )
    diff = (ours - ref).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    rel = max_abs / scale if scale > 0 else max_abs
    ok = bool(torch.isfinite(ours).all()) and bool((diff <= atol + rtol * ref.abs()).all())
    return Comparison(name, max_abs, rel, ok)


class _Weights:
    """Weights files of a folder, loaded once per (file, config)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._cache: dict[tuple[str, str], torch.nn.Module] = {}

    def get(self, filename: str, config: dict, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
        key = (filename, json.dumps(config, sort_keys=True))
        if key not in self._cache:
            from safetensors.torch import load_file

            module = build()
            module.load_state_dict(load_file(str(self.folder / filename)), strict=True)
            self._cache[key] = module.eval()
        return self._cache[key]


def _dit(weights: _Weights, meta: dict):
    from yume_env.model.dit import DiTConfig, YumeDiT

    cfg = DiTConfig.from_official(meta["dit_config"])
    return weights.get(meta["weights_file"], meta["dit_config"], lambda: YumeDiT(cfg))


def run_dit_case(meta: dict, tensors: dict, weights: _Weights, atol: float, rtol: float) -> list[Comparison]:
    model = _dit(weights, meta)
    x, t = tensors["x"], tensors["t"].flatten()
    block_frames = int(meta.get("block_frames", model.config.block_frames))
    h = x.shape[1] - block_frames
    if t.numel() == 1 or meta.get("history_frames", h) == 0:
        h = 0
    taps: dict = {}
    prepared = model.prepare(
        [x[:, :h] if h else None], [tensors["context"]], tuple(x.shape[-2:]), history_t=t[0] if h else 0.0
    )
    out = model.denoise(prepared, x[None, :, h:], t[-1], taps=taps)[0]
    rows = [compare("out", out, tensors["out"], atol, rtol)]
    for ours, ref in (
        ("tokens_in", "dbg.tokens_block0_in"),
        ("time_e", "dbg.time_e"),
        ("head_in", "dbg.head_in"),
    ):
        if ref in tensors:
            rows.append(compare(ref, taps[ours][0], tensors[ref], atol, rtol))
    if "dbg.rope_pos_thw" in tensors:
        rows.append(compare("dbg.rope_pos_thw", taps["positions"][0], tensors["dbg.rope_pos_thw"], 0.0, 0.0))
    return rows


def run_sampler_case(
    meta: dict, tensors: dict, weights: _Weights, atol: float, rtol: float
) -> list[Comparison]:
    from yume_env.model.sampler import EulerSampler

    model = _dit(weights, meta)
    sampler = EulerSampler(int(meta["steps"]), float(meta["shift"]))
    rows = []
    if "sigmas" in tensors:
        rows.append(compare("sigmas", torch.from_numpy(sampler.sigmas), tensors["sigmas"], 0.0, 1e-12))
    history = tensors["history"]
    prepared = model.prepare(
        [history if history.shape[1] else None], [tensors["context"]], tuple(history.shape[-2:])
    )
    recorded: dict[int, tuple] = {}

    def on_step(i, x_in, _t, v, x_out):
        recorded[i] = (x_in, v, x_out)

    final = sampler.sample(lambda x, t: model.denoise(prepared, x, t), tensors["noise_block"][None], on_step)
    for i, (x_in, v, x_out) in recorded.items():
        for name, ours in (
            (f"step{i}.block_in", x_in),
            (f"step{i}.v_pred", v),
            (f"step{i}.block_out", x_out),
        ):
            if name in tensors:
                rows.append(compare(name, ours[0], tensors[name], atol, rtol))
    rows.append(compare("final_block", final[0], tensors["final_block"], atol, rtol))
    return rows


def run_vae_case(meta: dict, tensors: dict, weights: _Weights, atol: float, rtol: float) -> list[Comparison]:
    from yume_env.model.vae import VAEConfig, WanVAE

    cfg = VAEConfig.from_official(meta["vae_config"])
    vae = weights.get(meta["weights_file"], meta["vae_config"], lambda: WanVAE(cfg))
    rows = []
    video = tensors["video"][None]
    if "latents" in tensors:
        rows.append(compare("latents", vae.encode(video)[0], tensors["latents"], atol, rtol))
    if "dbg.mu_unnormalized" in tensors:
        rows.append(
            compare(
                "dbg.mu_unnormalized",
                vae.encode_unnormalized(video)[0],
                tensors["dbg.mu_unnormalized"],
                atol,
                rtol,
            )
        )
    if "decoded" in tensors:
        rows.append(
            compare("decoded", vae.decode(tensors["latents"][None])[0], tensors["decoded"], atol, rtol)
        )
    if "dbg.decoded_unclamped" in tensors:
        ours = vae.decode_unclamped(tensors["latents"][None])[0]
        rows.append(compare("dbg.decoded_unclamped", ours, tensors["dbg.decoded_unclamped"], atol, rtol))
    if "block8.latents" in tensors:
        rows.append(
            compare(
                "block8.decoded",
                vae.decode(tensors["block8.latents"][None])[0],
                tensors["block8.decoded"],
                atol,
                rtol,
            )
        )
    return rows


def run_t5_case(meta: dict, tensors: dict, weights: _Weights, atol: float, rtol: float) -> list[Comparison]:
    from yume_env.model.text_encoder import TextEncoderConfig, UMT5Encoder

    cfg = TextEncoderConfig.from_official(meta["t5_config"])
    model = weights.get(meta["weights_file"], meta["t5_config"], lambda: UMT5Encoder(cfg))
    ids, mask = tensors["ids"], tensors["mask"]
    out = model(ids, mask)
    rows = [compare("out", out, tensors["out"], atol, rtol)]
    for b, n in enumerate(mask.sum(dim=1).tolist()):
        if f"context_{b}" in tensors:
            rows.append(compare(f"context_{b}", out[b, :n], tensors[f"context_{b}"], atol, rtol))
    return rows


def taehv_config(meta: dict):
    """The :class:`~yume_env.model.taehv.TAEHVConfig` of a ``taehv`` case's ``taehv_config``."""
    from yume_env.model.taehv import TAEHVConfig

    c = meta["taehv_config"]
    return TAEHVConfig(
        variant=c.get("arch_variant") or "base",
        latent_channels=int(c["latent_channels"]),
        image_channels=int(c.get("image_channels", 3)),
        patch_size=int(c["patch_size"]),
        encoder_width=int(c["encoder_width"]),
        decoder_widths=tuple(int(w) for w in c["decoder_widths"]),
        encoder_time_downscale=tuple(bool(v) for v in c["encoder_time_downscale"]),
        decoder_time_upscale=tuple(bool(v) for v in c["decoder_time_upscale"]),
        decoder_space_upscale=tuple(bool(v) for v in c["decoder_space_upscale"]),
    )


def run_taehv_case(
    meta: dict, tensors: dict, weights: _Weights, atol: float, rtol: float
) -> list[Comparison]:
    """Decode / stream-decode / encode with the case's weights (float16 files, run in float32)."""
    from yume_env.model.taehv import TAEHV

    cfg = taehv_config(meta)
    model = weights.get(meta["weights_file"], meta["taehv_config"], lambda: TAEHV(cfg))
    limit = float(meta.get("tolerance", {}).get("rel_err_max", 1e-4))

    def check(name: str, ours: torch.Tensor) -> Comparison:
        row = compare(name, ours, tensors[name], 0.0, 0.0)
        return Comparison(
            row.tensor, row.max_abs, row.rel, bool(torch.isfinite(ours).all()) and row.rel <= limit
        )

    rows = []
    if "decoded" in tensors:
        rows.append(check("decoded", model.decode_video(tensors["latents"])))
    if "decoded_long" in tensors:
        rows.append(check("decoded_long", model.decode_video(tensors["latents_long"])))
    if "stream_decoded_long" in tensors:
        stream = model.stream_decoder()
        latents = tensors["latents_long"]
        pieces = [stream.decode(latents[:, i : i + 1]) for i in range(latents.shape[1])]
        rows.append(check("stream_decoded_long", torch.cat(pieces, dim=1)))
    if "encoded" in tensors:
        rows.append(check("encoded", model.encode_video(tensors["video"])))
    return rows


def case_kind(meta: dict) -> str | None:
    if meta.get("case") == "taehv":
        return "taehv"
    if "steps" in meta and "weights_file" in meta:
        return "sampler"
    if "dit_config" in meta:
        return "dit"
    if "vae_config" in meta:
        return "vae"
    if "t5_config" in meta:
        return "t5"
    return None


RUNNERS = {
    "dit": run_dit_case,
    "sampler": run_sampler_case,
    "vae": run_vae_case,
    "t5": run_t5_case,
    "taehv": run_taehv_case,
}


def run_folder(folder: str | Path, atol: float = 1e-4, rtol: float = 1e-4) -> list[CaseResult]:
    """Run every golden case found in ``folder``; one :class:`CaseResult` per case."""
    from safetensors.torch import load_file

    folder = Path(folder)
    weights = _Weights(folder)
    results = []
    # A sampler sidecar may leave the DiT config out: take it from a case that uses the same weights.
    dit_configs = {}
    for sidecar in sorted(folder.glob("*.json")):
        try:
            meta = json.loads(sidecar.read_text())
        except ValueError:
            continue
        if isinstance(meta, dict) and "dit_config" in meta and "weights_file" in meta:
            dit_configs.setdefault(meta["weights_file"], meta["dit_config"])
    for sidecar in sorted(folder.glob("*.json")):
        data = folder / f"{sidecar.stem}.safetensors"
        try:
            meta = json.loads(sidecar.read_text())
        except ValueError as exc:
            results.append(CaseResult(sidecar.stem, "?", error=f"unreadable sidecar: {exc}"))
            continue
        kind = case_kind(meta) if isinstance(meta, dict) else None
        if kind is None or not data.is_file():
            continue  # index.json, constants.json, or a sidecar without tensors: not a case
        result = CaseResult(sidecar.stem, kind)
        if kind == "sampler" and "dit_config" not in meta:
            if meta["weights_file"] not in dit_configs:
                result.error = (
                    f"no dit_config for {meta['weights_file']} in this case or any other case of the folder"
                )
                results.append(result)
                continue
            meta = {**meta, "dit_config": dit_configs[meta["weights_file"]]}
        try:
            with torch.no_grad():
                result.comparisons = RUNNERS[kind](meta, load_file(str(data)), weights, atol, rtol)
        except Exception as exc:  # a broken case is reported as a failing row, not a crash
            result.error = f"{type(exc).__name__}: {exc}"
        results.append(result)
    return results


def format_table(results: list[CaseResult]) -> str:
    lines = [f"{'case':<22} {'kind':<8} {'tensors':>7} {'max abs err':>12} {'rel err':>10}  result"]
    for r in results:
        status = "pass" if r.ok else "FAIL"
        lines.append(
            f"{r.name:<22} {r.kind:<8} {len(r.comparisons):>7} {r.max_abs:>12.3e} {r.rel:>10.3e}  {status}"
        )
        if r.error:
            lines.append(f"    error: {r.error}")
        for c in r.comparisons:
            if not c.ok:
                lines.append(f"    {c.tensor}: max abs {c.max_abs:.3e}, rel {c.rel:.3e}")
    passed = sum(r.ok for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m yume_env.conformance",
        description="Check this implementation against golden cases produced by the official Yume code.",
    )
    parser.add_argument("folder", help="folder with <case>.safetensors + <case>.json files")
    parser.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    parser.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: folder: {folder} is not a directory", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    results = run_folder(folder, args.atol, args.rtol)
    if not results:
        print(
            f"error: folder: no golden cases (<name>.json + <name>.safetensors) found in {folder}",
            file=sys.stderr,
        )
        return 2
    print(format_table(results))
    if args.json:
        payload = [{**asdict(r), "ok": r.ok} for r in results]
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
