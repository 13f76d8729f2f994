"""Full-size Yume-1.5 5B architecture on a GPU with random weights: block time and memory.

Measures, for each resolution and history length, one 4-step block denoise of the real DiT
(bf16), the VAE decode of a block (8 latents -> 29 frames, float32 as officially), and the umT5-XXL
text encoding of one caption. Weights are random (no checkpoint needed): speed and memory do not
depend on the values.

    python benchmarks/bench_gpu.py --out benchmarks/results/gpu.json [--skip-text] [--skip-vae]
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import torch

from yume_env.model.attention import flash_available
from yume_env.model.dit import DiTConfig, YumeDiT
from yume_env.model.sampler import EulerSampler
from yume_env.model.tscm import history_token_count


def _timed(fn, repeats: int = 3) -> tuple[float, object]:
    out = fn()  # warm-up (kernels, allocator)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2], out


def _denoise_block(dit, sampler, hist, ctx, noise):
    with torch.no_grad():
        prepared = dit.prepare(hist, ctx, tuple(noise.shape[-2:]))
        return sampler.sample(lambda x, t: dit.denoise(prepared, x, t), noise)


def bench_dit(rows: list, resolutions, histories, backends) -> None:
    dev = torch.device("cuda")
    with torch.device(dev):
        torch.manual_seed(0)
        dit = YumeDiT(DiTConfig()).to(torch.bfloat16).eval()
    for p in dit.parameters():  # keep activations in a sane range with random weights
        p.data.mul_(0.5)
    sampler = EulerSampler(4, 7.0)
    ctx = [torch.randn(120, 4096, device=dev)]
    for hw in resolutions:
        lh, lw = hw[0] // 16, hw[1] // 16
        for h in histories:
            hist = [torch.randn(48, h, lh, lw, device=dev)]
            noise = torch.randn(1, 48, 8, lh, lw, device=dev)
            tokens = history_token_count(h, lh, lw) + 8 * (lh // 2) * (lw // 2)
            for backend in backends:
                dit.attention_backend = backend
                torch.cuda.reset_peak_memory_stats()
                ms, out = _timed(partial(_denoise_block, dit, sampler, hist, ctx, noise))
                rows.append(
                    {
                        "part": "dit_block_4_steps",
                        "resolution": list(hw),
                        "history_latents": h,
                        "tokens": tokens,
                        "attention": backend,
                        "ms": round(ms, 1),
                        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                        "finite": bool(torch.isfinite(out).all()),
                    }
                )
                print(rows[-1], flush=True)
    # batching: 4 worlds at H=45 in one forward vs one world
    hw = resolutions[-1]
    lh, lw = hw[0] // 16, hw[1] // 16
    for b in (1, 4):
        hist = [torch.randn(48, 45, lh, lw, device=dev) for _ in range(b)]
        noise = torch.randn(b, 48, 8, lh, lw, device=dev)
        dit.attention_backend = "auto"
        torch.cuda.reset_peak_memory_stats()
        ms, _ = _timed(partial(_denoise_block, dit, sampler, hist, ctx * b, noise), repeats=2)
        rows.append(
            {
                "part": "dit_block_batched",
                "resolution": list(hw),
                "worlds": b,
                "history_latents": 45,
                "ms": round(ms, 1),
                "ms_per_world": round(ms / b, 1),
                "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            }
        )
        print(rows[-1], flush=True)
    dit.to("meta")
    torch.cuda.empty_cache()


def bench_vae(rows: list, resolutions) -> None:
    from yume_env.model.vae import VAEConfig, WanVAE

    with torch.device("cuda"):
        vae = WanVAE(VAEConfig()).eval()
    for hw in resolutions:
        z = torch.randn(1, 48, 8, hw[0] // 16, hw[1] // 16, device="cuda")
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            ms, out = _timed(partial(vae.decode, z), repeats=2)
        rows.append(
            {
                "part": "vae_decode_block_fp32",
                "resolution": list(hw),
                "frames": int(out.shape[2]),
                "ms": round(ms, 1),
                "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            }
        )
        print(rows[-1], flush=True)
    vae.to("meta")
    torch.cuda.empty_cache()


def bench_text(rows: list) -> None:
    from yume_env.model.text_encoder import TextEncoderConfig, UMT5Encoder

    with torch.device("cuda"):
        t5 = UMT5Encoder(TextEncoderConfig()).to(torch.bfloat16).eval()
    ids = torch.randint(3, 256000, (1, 512), device="cuda")
    mask = torch.ones_like(ids)
    with torch.no_grad():
        ms, _ = _timed(lambda: t5(ids, mask))
    rows.append({"part": "umt5_xxl_encode_512_tokens_bf16", "ms": round(ms, 1)})
    print(rows[-1], flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="benchmarks/results/gpu.json")
    p.add_argument("--skip-text", action="store_true")
    p.add_argument("--skip-vae", action="store_true")
    p.add_argument("--histories", default="5,45,341")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    resolutions = [(544, 960), (704, 1280)]
    backends = ["sdpa"] + (["flash"] if flash_available() else [])
    rows: list = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = [lambda: bench_dit(rows, resolutions, [int(h) for h in args.histories.split(",")], backends)]
    if not args.skip_vae:
        parts.append(lambda: bench_vae(rows, resolutions))
    if not args.skip_text:
        parts.append(lambda: bench_text(rows))
    failed = 0
    for part in parts:
        try:
            part()
        except Exception as exc:  # keep what was measured so far
            rows.append({"error": f"{type(exc).__name__}: {exc}"})
            failed += 1
        result = {
            "gpu": torch.cuda.get_device_name(),
            "torch": torch.__version__,
            "flash_attn": flash_available(),
            "rows": rows,
        }
        out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
