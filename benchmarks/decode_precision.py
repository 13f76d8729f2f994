"""How far a bfloat16 VAE decode is from the float32 one: PSNR / SSIM of the uint8 frames.

Generates a few blocks of a world with the tiny preset (its shipped checkpoint), keeps the latents,
then decodes every block with the official VAE in float32 (the default) and in bfloat16
(``decode_dtype="bfloat16"``), both per block as ``decode="block"`` does, and compares the frames.
The same comparison must be made on the 5B VAE on a GPU before trusting bf16 there (run this with
``--checkpoint path/to/Yume-5B-720P --device cuda``).

    python benchmarks/decode_precision.py --blocks 4 --out benchmarks/results/decode_precision_tiny_cpu.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from yume_env.paths import SAMPLES
from yume_env.rewards.goal_image import ssim
from yume_env.world.images import to_uint8
from yume_env.world.model_cache import get_model
from yume_env.world.stream import Action, WorldStream

SAMPLE = SAMPLES / "street.png"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def gray(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=4, help="blocks to generate (default 4)")
    parser.add_argument("--checkpoint", help="official-layout folder (default: the tiny preset)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.blocks < 1:
        parser.error(f"--blocks: got {args.blocks}; accepted: an integer >= 1")

    model = get_model("yume-1.5-5b" if args.checkpoint else "tiny", args.checkpoint, args.device)
    stream = WorldStream(model, 1, decode="none")
    stream.reset(0, image=SAMPLE, seed=args.seed)
    blocks = [stream.step([Action(1 + k % 8, k % 9)])[0].latents for k in range(args.blocks)]

    fp32, bf16 = model.frame_decoder("vae"), model.frame_decoder("vae", dtype="bfloat16")
    rows = []
    for k, latents in enumerate(blocks):
        lat = latents[None]
        a = to_uint8(fp32.decode_block(lat))[0]
        b = to_uint8(bf16.decode_block(lat))[0]
        rows.append(
            {
                "block": k + 1,
                "psnr_db": round(psnr(a, b), 2),
                "ssim": round(float(ssim(gray(b), gray(a)).mean()), 5),
                "max_abs_uint8": int(np.abs(a.astype(int) - b.astype(int)).max()),
            }
        )
        print(rows[-1])
    summary = {
        "preset": model.preset.name,
        "device": str(model.device),
        "threads": torch.get_num_threads(),
        "resolution": list(stream.resolution),
        "mean_psnr_db": round(float(np.mean([r["psnr_db"] for r in rows])), 2),
        "min_psnr_db": min(r["psnr_db"] for r in rows),
        "mean_ssim": round(float(np.mean([r["ssim"] for r in rows])), 5),
        "rows": rows,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
