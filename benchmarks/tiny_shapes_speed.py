"""Speed of candidate shapes for a tiny preset that can hold a scene, with random weights.

    python benchmarks/tiny_shapes_speed.py --json benchmarks/results/tiny_shapes_speed.json

Each candidate is the ``tiny`` preset with its VAE (and frame size) changed; the DiT keeps the
tiny preset's dimensions (only its token count changes). One world runs ``--blocks`` blocks of
the default settings (4 sampler steps, block decoding) from a random start image, and every block
is timed end to end (denoise + decode + caption), both in wall time and in the CPU time of this
process. On a machine shared with other jobs the wall time is inflated by the wait for a core;
the CPU time with one thread is not (much), so it is the figure to compare candidates by, and the
summary converts it into an expected wall time on two free cores with the ratio measured for the
shipped ``tiny`` preset (``--calibration``: its seconds per block on two free cores, 0.426 s from
docs/tiny-world.md, "The demo").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from yume_env.model.pipeline import build_model
from yume_env.model.presets import TINY, ModelPreset, with_configs
from yume_env.world.stream import Action, WorldStream

_8X = {"dim_mult": (1, 4, 4), "temperal_downsample": (True, True)}

#: name -> (frame size, VAE fields changed from the tiny preset's).
CANDIDATES: dict[str, tuple[tuple[int, int], dict]] = {
    "tiny (shipped): 96x160, 16x, VAE 16/16": ((96, 160), {}),
    "tiny, 192x320 frame: 16x, VAE 16/16": ((192, 320), {}),
    "96x160, 8x, dim_mult (1,2,2), VAE 16/16": ((96, 160), {**_8X, "dim_mult": (1, 2, 2)}),
    "96x160, 8x, dim_mult (1,4,4), VAE 16/16": ((96, 160), dict(_8X)),
    "tiny-8x: 96x160, 8x, dim_mult (1,4,4), VAE 24/16": ((96, 160), {**_8X, "dim": 24}),
    "96x160, 8x, dim_mult (1,4,4), VAE 24/24": ((96, 160), {**_8X, "dim": 24, "dec_dim": 24}),
    "96x160, 8x, dim_mult (2,4,4), VAE 16/16": ((96, 160), {**_8X, "dim_mult": (2, 4, 4)}),
    "128x224, 8x, dim_mult (1,4,4), VAE 24/16": ((128, 224), {**_8X, "dim": 24}),
}


def candidate_preset(resolution: tuple[int, int], vae_fields: dict) -> ModelPreset:
    """The tiny preset with ``vae_fields`` replaced and ``resolution`` as its only frame size."""
    return with_configs(TINY, vae=replace(TINY.vae, **vae_fields), resolutions=(resolution,))


def time_world(preset: ModelPreset, blocks: int) -> dict:
    """Per-block wall and CPU seconds of one world of ``preset`` (random weights) over ``blocks``."""
    model = build_model(preset, "cpu", "float32")
    stream = WorldStream(model, 1)
    image = torch.rand(3, *stream.resolution, generator=torch.Generator().manual_seed(0))
    c0, w0 = time.process_time(), time.perf_counter()
    stream.reset(0, image=image, prompt="a street with shops", seed=0)
    reset = (time.process_time() - c0, time.perf_counter() - w0)
    rows = []
    for k in range(blocks):
        c0, w0 = time.process_time(), time.perf_counter()
        out = stream.step([Action(1 + k % 4, k % 3, "")])[0]
        t = out.info["timing"]
        rows.append(
            {
                "block": k + 1,
                "cpu_s": time.process_time() - c0,
                "wall_s": time.perf_counter() - w0,
                "denoise_ms": t.denoise_ms,
                "decode_ms": t.decode_ms,
                "frames": out.info["frames"],
            }
        )
    steady = rows[1:] if len(rows) > 1 else rows
    return {
        "resolution": list(stream.resolution),
        "latent_grid": list(stream.latent_hw),
        "dit_tokens_per_latent_frame": (stream.latent_hw[0] // 2) * (stream.latent_hw[1] // 2),
        "vae_parameters": sum(p.numel() for p in model.vae.parameters()),
        "reset_cpu_s": reset[0],
        "median_cpu_s_per_block": statistics.median(r["cpu_s"] for r in steady),
        "last_block_cpu_s": rows[-1]["cpu_s"],
        "median_wall_s_per_block": statistics.median(r["wall_s"] for r in steady),
        "median_denoise_ms": statistics.median(r["denoise_ms"] for r in steady),
        "median_decode_ms": statistics.median(r["decode_ms"] for r in steady),
        "frames_per_block": rows[-1]["frames"],
        "blocks": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=9, help="blocks per world (default 9: 8 after the first)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see the module doc)")
    p.add_argument(
        "--calibration",
        type=float,
        default=0.426,
        help="seconds per block of the shipped tiny preset on two free cores (default 0.426)",
    )
    p.add_argument("--only", action="append", help="measure only candidates whose name contains this")
    p.add_argument("--json", type=Path, help="write the numbers here")
    args = p.parse_args(argv)
    if args.blocks < 2:
        p.error(f"--blocks: got {args.blocks}; accepted: an integer >= 2")
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    results = {}
    for name, (resolution, fields) in CANDIDATES.items():
        if args.only and not any(s in name for s in args.only):
            continue
        results[name] = time_world(candidate_preset(resolution, fields), args.blocks)
        print(
            f"{name}: {results[name]['median_cpu_s_per_block']:.3f} CPU s/block "
            f"(last {results[name]['last_block_cpu_s']:.3f}), wall {results[name]['median_wall_s_per_block']:.3f} s",
            flush=True,
        )
    base = next((r for n, r in results.items() if n.startswith("tiny (shipped)")), None)
    if base is not None:
        ratio = args.calibration / base["median_cpu_s_per_block"]
        for r in results.values():
            worst = max(r["median_cpu_s_per_block"], r["last_block_cpu_s"])
            r["expected_wall_s_per_block_2_free_cores"] = worst * ratio
            r["expected_frames_per_s_2_free_cores"] = r["frames_per_block"] / (worst * ratio)
    out = {
        "threads": args.threads,
        "blocks": args.blocks,
        "calibration_s_per_block_tiny_2_free_cores": args.calibration,
        "candidates": results,
        "command": "python benchmarks/tiny_shapes_speed.py" + (f" --json {args.json}" if args.json else ""),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    for name, r in results.items():
        if "expected_frames_per_s_2_free_cores" in r:
            print(f"{name}: about {r['expected_frames_per_s_2_free_cores']:.0f} frames/s on two free cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
