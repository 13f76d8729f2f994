"""Quality and speed of the approximate long-episode path (``reuse_history_kv``) against the exact one.

Two worlds with the same seed, image and action tour, one exact and one with ``reuse_history_kv=True``,
run ``--blocks`` blocks side by side (each on its own history, so errors may accumulate as they would
in use); per block the PSNR of the approximate latents and frames against the exact ones (peak: the
exact latents' max-min range per block; 255 for uint8 frames) and both denoise times. Then both paths
denoise one block on synthesised histories of several lengths (as ``bench_world.py``), for the speed
ratio against the history-13 block (block 2 of an image-started episode).

    python benchmarks/long_episode_quality.py --threads 1 --out benchmarks/results/long_episode_tiny_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from yume_env.model.pipeline import load_checkpoint
from yume_env.model.sampler import EulerSampler
from yume_env.model.threads import set_threads
from yume_env.model.tscm import history_token_count
from yume_env.paths import SAMPLES, TINY_CHECKPOINT
from yume_env.world.stream import Action, WorldStream

SAMPLE = SAMPLES / "street.png"


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def rollout(model, blocks: int) -> list[dict]:
    streams = {
        reuse: WorldStream(model, 1, decode="block", reuse_history_kv=reuse) for reuse in (False, True)
    }
    for s in streams.values():
        s.reset(0, image=SAMPLE, prompt="a street with shops", seed=0)
    rows = []
    for k in range(blocks):
        action = Action(k % 9, (k // 3) % 9, "")
        outs = {reuse: s.step([action])[0] for reuse, s in streams.items()}
        exact, approx = outs[False], outs[True]
        lat_e, lat_a = exact.latents.numpy(), approx.latents.numpy()
        rows.append(
            {
                "block": k + 1,
                "history_latents": exact.info["history_latents"],
                "latent_psnr_db": psnr(lat_a, lat_e, float(lat_e.max() - lat_e.min())),
                "frame_psnr_db": psnr(approx.frames, exact.frames, 255.0),
                "denoise_ms_exact": exact.info["timing"].denoise_ms,
                "denoise_ms_reuse": approx.info["timing"].denoise_ms,
            }
        )
        print(rows[-1], flush=True)
    return rows


def timing(model, histories: list[int], repeats: int) -> list[dict]:
    c, f = model.latent_channels, model.block_frames
    h, w = model.latent_hw(model.preset.resolution)
    ctx = model.encode_text(["First-person perspective. a street"])
    sampler = EulerSampler(model.preset.steps, model.preset.shift)
    rows = []
    for n in histories:
        g = torch.Generator().manual_seed(n)
        hist = [torch.randn(c, n, h, w, generator=g) * 0.5]
        noise = torch.randn(1, c, f, h, w, generator=g)
        row = {"history_latents": n, "tokens": history_token_count(n, h, w) + f * (h // 2) * (w // 2)}
        outs = {}
        for reuse in (False, True):
            times = []
            for r in range(repeats + 1):
                t0 = time.perf_counter()
                outs[reuse] = model.sample_block(hist, ctx, noise, sampler, reuse_history_kv=reuse)
                if r:  # the first is a warm-up
                    times.append((time.perf_counter() - t0) * 1e3)
            row["denoise_ms_reuse" if reuse else "denoise_ms_exact"] = statistics.median(times)
        e = outs[False].numpy()
        row["latent_psnr_db"] = psnr(outs[True].numpy(), e, float(e.max() - e.min()))
        rows.append(row)
        print(row, flush=True)
    base = rows[0]
    for row in rows:
        row["ratio_exact"] = row["denoise_ms_exact"] / base["denoise_ms_exact"]
        row["ratio_reuse"] = row["denoise_ms_reuse"] / base["denoise_ms_reuse"]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=16, help="rollout blocks (default 16)")
    p.add_argument("--histories", default="13,45,341,957", help="synthesised history lengths to time")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="benchmarks/results/long_episode_tiny_cpu.json")
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    torch.set_grad_enabled(False)
    model = load_checkpoint(TINY_CHECKPOINT, device="cpu")
    result = {
        "threads": threads,
        "torch": torch.__version__,
        "weights": "shipped tiny checkpoint",
        "rollout": rollout(model, args.blocks),
        "timing": timing(model, [int(v) for v in args.histories.split(",")], args.repeats),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
