"""Per-block cost of generated worlds at fixed history lengths: text, denoise, decode, device-to-host.

For every (history length, batch size) it builds B worlds whose history already holds that many
latents, then times ``--blocks`` blocks (after ``--warmup`` untimed ones) stage by stage, exactly as
:class:`~yume_env.world.stream.WorldStream` runs a step:

1. text: the caption of each world through the model's text encoder (its LRU cache: the first
   caption of a configuration misses, the following blocks hit; both are recorded);
2. denoise: :meth:`YumeModel.sample_block` (prepare + the sampler's steps) for the B worlds at once;
3. decode: :meth:`YumeModel.decode` of the B blocks (skipped with ``--decode none``);
4. device-to-host: the frames to uint8 on the host (``to_uint8``), what an observation costs.

Histories are synthesised (seeded Gaussian latents of the right shape) instead of generated block by
block: the cost of a block depends on the history length and the TSCM token count, not on the values,
and history 1016 would otherwise take ~125 blocks per world. On CUDA, stages are timed with CUDA events
(and the wall clock around them); on CPU with ``time.perf_counter``.

    python benchmarks/bench_world.py --threads 1 --out benchmarks/results/world_tiny_cpu.json
    python benchmarks/bench_world.py --preset yume-1.5-5b --device cuda --resolution 544x960 \\
        --histories 5,341 --batches 1,4 --out results/world_5b.json

The 5B preset runs with random weights (``build_model``; scaled by 0.5 as ``bench_gpu.py`` does, to
keep activations finite), unless ``--checkpoint`` is given; the tiny preset uses the weights shipped in
the package unless ``--random-weights``. The JSON holds the full configuration, every block row and the
median/p90 summary per configuration; ``--markdown`` also writes the summary as a Markdown table.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from yume_env.model.pipeline import TINY_CHECKPOINT, TINY_TOKENIZER, build_model, load_checkpoint
from yume_env.model.sampler import EulerSampler
from yume_env.model.text_encoder import load_tokenizer
from yume_env.model.tscm import history_token_count
from yume_env.world.captions import render_caption
from yume_env.world.images import parse_resolution, to_uint8

EVENTS = ["", "it starts to rain", "a red balloon appears", "fog rolls in"]


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; accepted: comma-separated integers") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"got {text!r}; accepted: comma-separated integers >= 0")
    return values


class _Clock:
    """Milliseconds of a stage: CUDA events on a GPU (plus a sync at the end), perf_counter on CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            self.ms = self.start.elapsed_time(self.end)
        else:
            self.ms = (time.perf_counter() - self.t0) * 1e3
        self.wall_ms = (time.perf_counter() - self.t0) * 1e3


def configuration(model, args, device: torch.device) -> dict:
    """Everything that decides the speed: machine, versions, dtypes, TF32 flags, kernels, options."""
    dit = model.dit
    cfg = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "preset": model.preset.name,
        "weights": args.checkpoint
        or ("random" if args.random_weights or model.preset.name != "tiny" else "shipped tiny checkpoint"),
        "dit_dtype": str(model.dtype),
        "vae_dtype": str(model.vae.dtype),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "attention_option": getattr(dit, "attention_backend", None),
        "compile": bool(getattr(dit, "compiled", False)),
        "long_episode": getattr(dit, "reuse_history_kv", None),
        "decoder": f"{args.decode} (WanVAE)" if args.decode != "none" else "none",
        "steps": args.steps,
    }
    return cfg


def reuse_mode(args):
    """The ``reuse_history_kv`` value of ``--reuse-history-kv`` / ``--long-episode``."""
    if args.reuse_history_kv != "off":
        return args.reuse_history_kv
    return True if args.long_episode else False


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else float("nan")


def run_config(model, sampler, hist_len: int, batch: int, args, latent_hw, device) -> dict:
    c, (h, w), f = model.latent_channels, latent_hw, model.block_frames
    gen = torch.Generator().manual_seed(hist_len * 100 + batch)
    # Synthesised histories (see the module doc); world i differs from world j.
    histories = [
        (torch.randn(c, hist_len, h, w, generator=gen) * 0.5).to(device) if hist_len else None
        for _ in range(batch)
    ]
    tokens = history_token_count(hist_len, h, w) + f * (h // 2) * (w // 2)
    # As in a running episode, each block starts from the history caches the block before it left
    # (built here on the histories without their last 8 latents; package versions without history
    # caches recompute everything every block, as they do in an episode).
    caches = None
    if hist_len > f and "history_cache" in inspect.signature(model.sample_block).parameters:
        caches = [None] * batch
        noise = torch.randn(batch, c, f, h, w, generator=gen)
        contexts = model.encode_text([render_caption(0, 0, "")] * batch)
        before = [u[:, :-f] for u in histories]
        model.sample_block(before, contexts, noise, sampler, None, reuse_mode(args), caches)
    rows = []
    warmup_ms = []
    cache = model.text
    for k in range(args.warmup + args.blocks):
        captions = [render_caption(k % 9, (k // 3) % 9, EVENTS[(k + i) % len(EVENTS)]) for i in range(batch)]
        hit = all(cap in cache for cap in captions)
        noise = torch.randn(batch, c, f, h, w, generator=gen)
        t_block = time.perf_counter()
        with _Clock(device) as text_clock:
            contexts = model.encode_text(captions)
        with _Clock(device) as denoise_clock:
            if caches is None:
                latents = model.sample_block(histories, contexts, noise, sampler)
            else:
                latents = model.sample_block(
                    histories, contexts, noise, sampler, None, reuse_mode(args), list(caches)
                )
        decode_ms = d2h_ms = 0.0
        frames = 0
        if args.decode != "none":
            with _Clock(device) as decode_clock:
                pix = model.decode(latents)
            with _Clock(device) as d2h_clock:
                host = to_uint8(pix)
            decode_ms, d2h_ms, frames = decode_clock.ms, d2h_clock.ms, int(host.shape[1])
        else:
            with _Clock(device) as d2h_clock:
                latents.cpu()
            d2h_ms = d2h_clock.ms
        block_ms = (time.perf_counter() - t_block) * 1e3
        if k < args.warmup:  # warm-up (and compilation) time, reported apart
            warmup_ms.append(block_ms)
            continue
        info = getattr(model.dit, "last_attention_backend", None)
        rows.append(
            {
                "block": k - args.warmup + 1,
                "text_ms": text_clock.ms,
                "text_cache": None if hit is None else ("hit" if hit else "miss"),
                "denoise_ms": denoise_clock.ms,
                "decode_ms": decode_ms,
                "d2h_ms": d2h_ms,
                "block_ms": block_ms,
                "frames_per_world": frames,
                "attention_backend": info,
            }
        )
    med = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    p90 = lambda key: _p90([r[key] for r in rows])  # noqa: E731
    block_s = med("block_ms") / 1e3
    denoise_s = med("denoise_ms") / 1e3
    frames = rows[0]["frames_per_world"]
    summary = {
        "history_latents": hist_len,
        "batch": batch,
        "tokens_per_world": tokens,
        "history_tokens_per_world": tokens - f * (h // 2) * (w // 2),
        **{f"median_{key}": med(key) for key in ("text_ms", "denoise_ms", "decode_ms", "d2h_ms", "block_ms")},
        **{f"p90_{key}": p90(key) for key in ("denoise_ms", "block_ms")},
        "text_hits": sum(r["text_cache"] == "hit" for r in rows),
        "text_misses": sum(r["text_cache"] == "miss" for r in rows),
        "latent_fps_per_world": f / denoise_s if denoise_s else None,
        "latent_fps_aggregate": batch * f / denoise_s if denoise_s else None,
        "frames_fps_per_world": frames / block_s if frames else None,
        "frames_fps_aggregate": batch * frames / block_s if frames else None,
        "attention_backend": rows[-1]["attention_backend"],
        "warmup_block_ms": warmup_ms,
    }
    return {"summary": summary, "blocks": rows}


def markdown(result: dict) -> str:
    lines = [
        "| history | tokens/world | batch | text ms | denoise ms (p90) | decode ms | to host ms "
        "| block ms (p90) | latent fps/world | frames fps/world (all) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        s = r["summary"]
        ffps = (
            f"{s['frames_fps_per_world']:.1f} ({s['frames_fps_aggregate']:.1f})"
            if s["frames_fps_per_world"]
            else "-"
        )
        lines.append(
            f"| {s['history_latents']} | {s['tokens_per_world']} | {s['batch']} | {s['median_text_ms']:.1f} "
            f"| {s['median_denoise_ms']:.1f} ({s['p90_denoise_ms']:.1f}) | {s['median_decode_ms']:.1f} "
            f"| {s['median_d2h_ms']:.1f} | {s['median_block_ms']:.1f} ({s['p90_block_ms']:.1f}) "
            f"| {s['latent_fps_per_world']:.1f} | {ffps} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny", help="tiny (default) or yume-1.5-5b")
    p.add_argument("--checkpoint", help="official-layout folder (default: see the module doc)")
    p.add_argument(
        "--random-weights", action="store_true", help="tiny preset: random instead of shipped weights"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, help="float32 / bfloat16 (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--resolution", default=None, help="HxW, e.g. 544x960 (default: the preset's)")
    p.add_argument("--histories", type=_ints, default=[5, 45, 341, 1016])
    p.add_argument("--batches", type=_ints, default=[1, 4])
    p.add_argument("--blocks", type=int, default=5, help="timed blocks per configuration (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed blocks first (default 1)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--decode", default="block", choices=["block", "none"])
    p.add_argument("--attention", default="auto", choices=["auto", "sdpa", "flash"])
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the package's default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the DiT blocks")
    p.add_argument(
        "--long-episode", action="store_true", help="reuse history keys/values across a block's steps"
    )
    p.add_argument(
        "--reuse-history-kv",
        default="off",
        choices=["off", "block", "episode"],
        help="approximate long-episode path (default off; --long-episode is 'block')",
    )
    p.add_argument("--out", default="benchmarks/results/world_tiny_cpu.json")
    p.add_argument("--markdown", default=None, help="also write the summary table here")
    args = p.parse_args(argv)
    if args.blocks < 1 or args.warmup < 0:
        p.error("--blocks must be >= 1 and --warmup >= 0")

    torch.set_grad_enabled(False)
    try:
        from yume_env.model.threads import set_threads

        set_threads(args.threads)
    except ImportError:  # older versions of the package: torch's own default unless asked
        if args.threads is not None:
            torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.checkpoint:
        model = load_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    elif args.preset == "tiny" and not args.random_weights and (TINY_CHECKPOINT / "config.json").is_file():
        model = load_checkpoint(TINY_CHECKPOINT, device=args.device, dtype=args.dtype)
    else:
        tok = None if args.preset == "tiny" else load_tokenizer(TINY_TOKENIZER)
        model = build_model(args.preset, device=args.device, dtype=args.dtype, tokenizer=tok)
        if args.preset != "tiny":
            for param in model.dit.parameters():  # keep activations finite with random weights
                param.data.mul_(0.5)
    device = model.device
    model.dit.attention_backend = args.attention
    if args.compile:
        model.dit.compile_blocks()
    if reuse_mode(args):
        model.dit.reuse_history_kv = reuse_mode(args)
    load_s = time.perf_counter() - t0
    resolution = model.preset.check_resolution(parse_resolution(args.resolution))
    latent_hw = model.latent_hw(resolution)
    sampler = EulerSampler(args.steps, model.preset.shift)

    runs = []
    for hist_len in args.histories:
        for batch in args.batches:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            t_cfg = time.perf_counter()
            run = run_config(model, sampler, hist_len, batch, args, latent_hw, device)
            run["summary"]["config_wall_s"] = time.perf_counter() - t_cfg
            if device.type == "cuda":
                run["summary"]["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            runs.append(run)
            s = run["summary"]
            print(
                f"history {hist_len:5d} batch {batch}: tokens {s['tokens_per_world']}, "
                f"denoise {s['median_denoise_ms']:.1f} ms, block {s['median_block_ms']:.1f} ms",
                flush=True,
            )
    result = {
        "configuration": {
            **configuration(model, args, device),
            "resolution": list(resolution),
            "latent_hw": list(latent_hw),
            "blocks": args.blocks,
            "warmup": args.warmup,
            "load_s": load_s,
            "note": "histories synthesised; warm-up (and compile) blocks are excluded from the rows",
        },
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    table = markdown(result)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
