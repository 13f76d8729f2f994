"""Decoders of the 5B latent space: time and peak memory to decode one block (8 latents).

Compares, with random weights at full size (speed and memory do not depend on the values):

- ``vae``: the official Wan2.2 VAE in float32 (the default, as the official pipeline);
- ``vae-bf16``: the same VAE decoding in bfloat16 (``decode_dtype="bfloat16"``);
- ``taew2_2`` / ``taew2_2_super``: the TAEHV tiny decoders (float32 on CPU, float16 on CUDA unless
  ``--taehv-dtype`` says otherwise).

For each decoder and batch size B it times ``decode_block`` (each world on its own, what the env
does: 29 frames per world) and one batched call over the B worlds (what a batched decode would
cost), median of ``--repeats`` after a warm-up, and reports the peak memory (CUDA: peak allocated
by torch; CPU: the process's peak RSS so far, which only grows).

    python benchmarks/bench_decoders.py --device cuda --out benchmarks/results/decoders_gpu.json
    python benchmarks/bench_decoders.py --device cpu --resolution 32 48 --repeats 1 \\
        --out benchmarks/results/decoders_cpu_small.json          # proves it runs; not a speed figure
    python benchmarks/bench_decoders.py --flops                   # FLOPs per block, on "meta" (no weights)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

from yume_env.model.frame_decoder import TAEHVFrameDecoder, VAEFrameDecoder
from yume_env.model.taehv import TAEHV, TAEHV_PRESETS
from yume_env.model.vae import VAEConfig, WanVAE

DECODERS = ("vae", "vae-bf16", "taew2_2", "taew2_2_super")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up (kernels, allocator, oneDNN weight packing)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def _peak_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def build(name: str, device: torch.device, taehv_dtype: torch.dtype):
    """(frame decoder, batched decode function) with seeded random weights."""
    torch.manual_seed(0)
    if name.startswith("vae"):
        with torch.device(device):
            vae = WanVAE(VAEConfig()).eval()
        dec = VAEFrameDecoder(vae, torch.bfloat16 if name == "vae-bf16" else None)
        return dec, lambda lat: dec.vae.decode(lat.to(dec.vae.dtype))
    with torch.device(device):
        tae = TAEHV(TAEHV_PRESETS[name]).to(taehv_dtype).eval()
    dec = TAEHVFrameDecoder(tae, name)
    return dec, lambda lat: tae.decode_video(lat.permute(0, 2, 1, 3, 4))


def count_flops(resolution: tuple[int, int]) -> list[dict]:
    """FLOPs to decode one block (all frames, and the last frame only), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    h, w = resolution
    rows = []
    with torch.device("meta"):
        latents = torch.empty(1, 48, 8, h // 16, w // 16)
        models = {"vae": WanVAE(VAEConfig())} | {n: TAEHV(TAEHV_PRESETS[n]) for n in TAEHV_PRESETS}
        for name, model in models.items():
            counts = {}
            for last in (None, 1):
                with FlopCounterMode(display=False) as counter:
                    if name == "vae":
                        model.decode(latents)  # the causal VAE decodes every frame either way
                    else:
                        model.decode_video(latents.permute(0, 2, 1, 3, 4), last_frames=last)
                counts["tflop_last_frame" if last else "tflop_all_frames"] = round(
                    counter.get_total_flops() / 1e12, 2
                )
            params = sum(p.numel() for p in model.parameters())
            rows.append({"decoder": name, "parameters": params, "resolution": [h, w], **counts})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--resolution", type=int, nargs=2, default=(544, 960), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, nargs="+", default=(1, 4))
    parser.add_argument("--decoders", nargs="+", default=DECODERS, choices=DECODERS)
    parser.add_argument("--taehv-dtype", choices=("float32", "float16", "bfloat16"), default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flops", action="store_true", help="only count FLOPs per block (meta device)")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    h, w = args.resolution
    if h % 16 or w % 16 or h <= 0 or w <= 0:
        parser.error(f"--resolution: got {h} {w}; accepted: positive multiples of 16")
    if args.repeats < 1 or any(b < 1 for b in args.batch):
        parser.error("--repeats and --batch take integers >= 1")
    if args.flops:
        torch.set_grad_enabled(False)
        rows = count_flops((h, w))
        for row in rows:
            print(json.dumps(row))
        if args.out:
            Path(args.out).write_text(json.dumps({"rows": rows}, indent=1))
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device here (use --device cpu)", file=sys.stderr)
        return 2
    taehv_dtype = getattr(torch, args.taehv_dtype or ("float16" if device.type == "cuda" else "float32"))
    torch.set_grad_enabled(False)

    rows = []
    for name in args.decoders:
        dec, batched = build(name, device, taehv_dtype)
        for b in args.batch:
            lat = torch.randn(b, 48, 8, h // 16, w // 16, generator=torch.Generator().manual_seed(1)).to(
                device
            )
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            per_world_ms = _timed(lambda lat=lat, dec=dec: dec.decode_block(lat), device, args.repeats)
            batched_ms = _timed(lambda lat=lat, fn=batched: fn(lat), device, args.repeats)
            frames = dec.decode_block(lat[:1])
            row = {
                "decoder": name,
                "dtype": str(dec.dtype).removeprefix("torch."),
                "batch": b,
                "resolution": [h, w],
                "frames_per_world": int(frames.shape[2]),
                "per_world_ms": round(per_world_ms, 1),
                "per_world_ms_per_block": round(per_world_ms / b, 1),
                "batched_ms": round(batched_ms, 1),
                "peak_gib": round(_peak_gib(device), 2),
                "finite": bool(torch.isfinite(frames).all()),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        dec = batched = None  # free this decoder before building the next
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
