"""Quality and speed of the approximate long-episode paths (``reuse_history_kv``) against the exact one.

Three worlds with the same seed, image and action tour, one exact, one with ``reuse_history_kv="block"``
and one with ``"episode"``, run ``--blocks`` blocks side by side (each on its own history, so errors
accumulate as they would in use); per block the PSNR of the approximate latents and frames against
the exact ones (peak: the exact latents' max-min range per block; 255 for uint8 frames) and the
denoise times. Then every path denoises one block on synthesised histories of the lengths of blocks
2-6 and 120-124 (see :func:`timing`), for the speed ratio of the late window to the exact path's
early one (wall time, and the process's CPU time, which other load on the machine disturbs less).

    python benchmarks/long_episode_quality.py --threads 1 --out benchmarks/results/long_episode_tiny_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
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


MODES = ("exact", "block", "episode")


def _reuse(mode: str):
    return False if mode == "exact" else mode


def rollout(model, blocks: int, modes=MODES) -> list[dict]:
    streams = {m: WorldStream(model, 1, decode="block", reuse_history_kv=_reuse(m)) for m in modes}
    for s in streams.values():
        s.reset(0, image=SAMPLE, prompt="a street with shops", seed=0)
    rows = []
    for k in range(blocks):
        action = Action(k % 9, (k // 3) % 9, "")
        outs = {m: s.step([action])[0] for m, s in streams.items()}
        exact = outs["exact"]
        lat_e = exact.latents.numpy()
        row = {"block": k + 1, "history_latents": exact.info["history_latents"]}
        for m, out in outs.items():
            row[f"denoise_ms_{m}"] = out.info["timing"].denoise_ms
            if m != "exact":
                row[f"latent_psnr_db_{m}"] = psnr(
                    out.latents.numpy(), lat_e, float(lat_e.max() - lat_e.min())
                )
                row[f"frame_psnr_db_{m}"] = psnr(out.frames, exact.frames, 255.0)
        rows.append(row)
        print(row, flush=True)
    return rows


def timing(model, histories: list[int], repeats: int, modes=MODES) -> list[dict]:
    """One block per history length and path, as in a running episode: each path first runs the block
    before it (history ``n - 8``) and times the block at ``n`` with the caches that block left, so only
    the frames new at ``n`` (and, with ``"episode"``, only their tokens) are computed. The paths take
    turns within every repeat, so they see the same machine load."""
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
        caches, outs, times, cpu = {}, {}, {m: [] for m in modes}, {m: [] for m in modes}
        for m in modes:
            caches[m] = [None]
            if n > 8:
                model.sample_block([hist[0][:, : n - 8]], ctx, noise, sampler, None, _reuse(m), caches[m])
        for r in range(repeats + 1):
            for m in modes:
                cache = list(caches[m])
                t0, c0 = time.perf_counter(), time.process_time()
                outs[m] = model.sample_block(hist, ctx, noise, sampler, None, _reuse(m), cache)
                if r:  # the first round is a warm-up
                    times[m].append((time.perf_counter() - t0) * 1e3)
                    cpu[m].append((time.process_time() - c0) * 1e3)
        e = outs["exact"].numpy()
        for m in modes:
            row[f"denoise_ms_{m}"] = statistics.median(times[m])
            row[f"denoise_cpu_ms_{m}"] = statistics.median(cpu[m])
            if m != "exact":
                row[f"latent_psnr_db_{m}"] = psnr(outs[m].numpy(), e, float(e.max() - e.min()))
        rows.append(row)
        print(row, flush=True)
    base = rows[0]
    for row in rows:
        for m in modes:
            row[f"ratio_{m}"] = row[f"denoise_ms_{m}"] / base[f"denoise_ms_{m}"]
            row[f"cpu_ratio_{m}"] = row[f"denoise_cpu_ms_{m}"] / base[f"denoise_cpu_ms_{m}"]
    return rows


def windows(rows: list[dict], early: list[int], late: list[int], modes=MODES) -> dict:
    """Median per-block time (wall and CPU) of the early and late history windows and their ratio to
    the exact path's early window (blocks 2-6), per path."""
    out = {}
    for kind in ("denoise_ms", "denoise_cpu_ms"):
        base = statistics.median(r[f"{kind}_exact"] for r in rows if r["history_latents"] in early)
        for m in modes:
            a = statistics.median(r[f"{kind}_{m}"] for r in rows if r["history_latents"] in early)
            b = statistics.median(r[f"{kind}_{m}"] for r in rows if r["history_latents"] in late)
            out.setdefault(m, {})[kind] = {"early": a, "late": b, "late_vs_exact_early": b / base}
    out["tokens"] = {
        "early": [r["tokens"] for r in rows if r["history_latents"] in early],
        "late": [r["tokens"] for r in rows if r["history_latents"] in late],
    }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=16, help="rollout blocks (default 16)")
    p.add_argument(
        "--histories",
        default="13,21,29,37,45|957,965,973,981,989",
        help="history lengths to time: the early and the late window (blocks 2-6 and 120-124 of an "
        "image-started episode) separated by |",
    )
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
        "load_average_before": list(os.getloadavg()),
        "rollout": rollout(model, args.blocks),
    }
    early, late = ([int(v) for v in part.split(",")] for part in args.histories.split("|"))
    result["timing"] = timing(model, early + late, args.repeats)
    result["windows"] = windows(result["timing"], early, late)
    result["load_average_after"] = list(os.getloadavg())
    print(json.dumps(result["windows"], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
