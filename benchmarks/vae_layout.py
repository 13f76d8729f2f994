"""Two VAE decode variants measured against the shipped one: ``channels_last_3d`` and no cache copies.

- ``channels_last_3d``: every Conv3d weight and every causal convolution's input in the
  channels-last memory format (oneDNN then skips its layout reorders).
- ``no-clone``: each causal convolution keeps a view of the last two frames of its (concatenated)
  input as its cache instead of a copy; the view keeps the whole concatenated input alive until the
  next piece (up to 3x the cache memory when decoding one latent at a time).

Each variant decodes the same block (``--latents`` latents of the tiny preset, shipped weights) in
turn with the shipped code, ``--repeats`` rounds after a warm-up; medians of CPU time (the process's,
robust to other load on a shared machine) and wall time, and whether the frames are bit-identical.

    OMP_NUM_THREADS=1 python benchmarks/vae_layout.py --out benchmarks/results/vae_layout_tiny_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import time
from pathlib import Path

import torch

import yume_env.model.vae_blocks as vb
from yume_env.model.pipeline import TINY_CHECKPOINT, load_checkpoint
from yume_env.model.threads import set_threads


@contextlib.contextmanager
def channels_last_inputs():
    shipped = vb.CausalConv3d.forward

    def forward(self, x, cache=None):
        return shipped(self, x.contiguous(memory_format=torch.channels_last_3d), cache)

    vb.CausalConv3d.forward = forward
    try:
        yield
    finally:
        vb.CausalConv3d.forward = shipped


@contextlib.contextmanager
def cache_views():
    shipped = vb.CausalConv3d.forward

    def forward(self, x, cache=None):
        n = self.causal_frames
        if n == 0 or cache is None:
            return shipped(self, x, cache)
        past = cache.history.get(self.cache_key)
        if past is None:
            past = x.new_zeros(x.shape[0], x.shape[1], n, x.shape[3], x.shape[4])
        x = torch.cat([past, x], dim=2)
        cache.history[self.cache_key] = x[:, :, -n:]  # a view, not a copy
        return self._conv(x)

    vb.CausalConv3d.forward = forward
    try:
        yield
    finally:
        vb.CausalConv3d.forward = shipped


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latents", type=int, default=8, help="latent frames per decode (8: one block)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/vae_layout_tiny_cpu.json")
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    torch.set_grad_enabled(False)
    model = load_checkpoint(TINY_CHECKPOINT, device="cpu")
    vae = model.vae
    h, w = model.latent_hw(model.preset.resolution)
    latents = torch.randn(1, 48, args.latents, h, w, generator=torch.Generator().manual_seed(0))
    channels_last = copy.deepcopy(vae)
    for m in channels_last.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)
    variants = {
        "shipped": (vae, contextlib.nullcontext),
        "channels_last_3d": (channels_last, channels_last_inputs),
        "no-clone": (vae, cache_views),
    }
    reference = vae.decode(latents)
    times = {name: ([], []) for name in variants}
    diffs = {}
    load_before = list(os.getloadavg())
    for r in range(args.repeats + 1):
        for name, (model_, ctx) in variants.items():
            with ctx():
                c0, w0 = time.process_time(), time.perf_counter()
                out = model_.decode(latents)
                cpu, wall = (time.process_time() - c0) * 1e3, (time.perf_counter() - w0) * 1e3
            if r:
                times[name][0].append(cpu)
                times[name][1].append(wall)
            diffs[name] = float((out - reference).abs().max())
    rows = {
        name: {
            "cpu_ms_median": statistics.median(c),
            "wall_ms_median": statistics.median(wl),
            "bit_identical": diffs[name] == 0.0,
            "max_abs_diff": diffs[name],
        }
        for name, (c, wl) in times.items()
    }
    base = rows["shipped"]["cpu_ms_median"]
    for row in rows.values():
        row["cpu_vs_shipped"] = row["cpu_ms_median"] / base
    result = {
        "threads": threads,
        "torch": torch.__version__,
        "latents": list(latents.shape),
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "variants": rows,
    }
    print(json.dumps(result, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
