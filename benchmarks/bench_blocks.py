"""Per-block cost of a generated world: denoise, decode and text-encoding milliseconds, token counts.

Runs one world for ``--blocks`` blocks with a scripted action tour (the event text changes every 8
blocks, so the caption cache sees both hits and misses) and records, for every block, the wall time
of each stage and the DiT sequence length (history tokens after TSCM + block tokens).

    python benchmarks/bench_blocks.py                       # tiny preset, CPU, 64 blocks
    python benchmarks/bench_blocks.py --preset yume-1.5-5b --device cuda --blocks 16 --resolution 544x960

The 5B preset runs with random weights (no checkpoint needed) unless ``--checkpoint`` is given.
Results go to ``--out`` (JSON: environment, settings, one row per block, summary).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from yume_env.actions import LOOKS, MOVES
from yume_env.model.pipeline import TINY_TOKENIZER, build_model, load_checkpoint
from yume_env.model.text_encoder import load_tokenizer
from yume_env.model.tscm import history_token_count
from yume_env.world.images import parse_resolution
from yume_env.world.stream import Action, WorldStream

EVENTS = ["", "it starts to rain", "", "a red balloon appears", "", "the lights go out", "", "fog rolls in"]


def environment(device: torch.device) -> dict:
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "device": str(device),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny", help="tiny (default) or yume-1.5-5b")
    p.add_argument("--checkpoint", help="official-layout folder (default: random weights)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, help="float32 / bfloat16 (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--resolution", default=None, help="HxW, e.g. 544x960 (default: the preset's)")
    p.add_argument("--blocks", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the preset's, 4)")
    p.add_argument("--decode", default="block", choices=["block", "stream", "none"])
    p.add_argument("--attention", default="auto", choices=["auto", "sdpa", "flash"])
    p.add_argument(
        "--reuse-history-kv",
        default="off",
        choices=["off", "block", "episode"],
        help="the approximate long-episode path (default off: exact)",
    )
    p.add_argument(
        "--windows",
        default="2-6,120-124",
        help="block ranges whose median denoise time (and token count) the summary reports",
    )
    p.add_argument("--out", default="benchmarks/results/blocks_tiny_cpu.json")
    args = p.parse_args(argv)

    torch.set_grad_enabled(False)
    t0 = time.perf_counter()
    if args.checkpoint:
        model = load_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    else:
        tok = None if args.preset == "tiny" else load_tokenizer(TINY_TOKENIZER)
        model = build_model(args.preset, device=args.device, dtype=args.dtype, tokenizer=tok)
    model.dit.attention_backend = args.attention
    load_s = time.perf_counter() - t0
    stream = WorldStream(
        model,
        1,
        resolution=parse_resolution(args.resolution),
        steps=args.steps,
        decode=args.decode,
        reuse_history_kv=False if args.reuse_history_kv == "off" else args.reuse_history_kv,
    )
    h, w = stream.latent_hw
    image = torch.rand(3, *stream.resolution, generator=torch.Generator().manual_seed(0))
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(model.device)
    reset = stream.reset(0, image=image, prompt="a street with shops", seed=0)

    rows = []
    for k in tqdm(range(args.blocks), desc="blocks", unit="block"):
        action = Action(k % len(MOVES), (k // 3) % len(LOOKS), EVENTS[(k // 8) % len(EVENTS)])
        hist = stream.worlds[0].history_length
        hist = min(hist, stream.max_history)
        c0 = time.process_time()
        out = stream.step([action])[0]
        cpu_ms = (time.process_time() - c0) * 1e3
        t = out.info["timing"]
        rows.append(
            {
                "block": k + 1,
                "history_latents": hist,
                "tokens": history_token_count(hist, h, w) + model.block_frames * (h // 2) * (w // 2),
                "denoise_ms": round(t.denoise_ms, 3),
                "step_cpu_ms": round(cpu_ms, 3),
                "decode_ms": round(t.decode_ms, 3),
                "text_ms": round(t.text_ms, 3),
                "frames": out.info["frames"],
            }
        )
    steady = rows[1:] if len(rows) > 1 else rows
    summary = {
        f"median_{key}": statistics.median(r[key] for r in steady)
        for key in ("denoise_ms", "decode_ms", "text_ms", "tokens")
    }
    frames = sum(r["frames"] for r in steady)
    total_s = sum(r["denoise_ms"] + r["decode_ms"] + r["text_ms"] for r in steady) / 1e3
    summary["frames_per_s_end_to_end"] = frames / total_s if total_s else None
    for window in args.windows.split(","):
        lo, hi = (int(v) for v in window.split("-"))
        picked = [r for r in rows if lo <= r["block"] <= hi]
        if picked:
            summary[f"blocks_{lo}_{hi}"] = {
                "median_denoise_ms": statistics.median(r["denoise_ms"] for r in picked),
                "median_step_cpu_ms": statistics.median(r["step_cpu_ms"] for r in picked),
                "tokens": [r["tokens"] for r in picked],
                "history_latents": [r["history_latents"] for r in picked],
            }
    summary["load_s"] = load_s
    summary["reset_encode_ms"] = reset.info["timing"].encode_ms
    if model.device.type == "cuda":
        summary["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated(model.device) / 2**30
    result = {
        "environment": environment(model.device),
        "settings": {
            "preset": model.preset.name,
            "resolution": list(stream.resolution),
            "latent_hw": [h, w],
            "steps": stream.sampler.steps,
            "shift": stream.sampler.shift,
            "decode": args.decode,
            "dtype": str(model.dtype),
            "attention": args.attention,
            "weights": args.checkpoint or "random",
            "reuse_history_kv": args.reuse_history_kv,
            "parameters": model.parameter_count(),
        },
        "summary": summary,
        "blocks": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({"settings": result["settings"], "summary": summary}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
