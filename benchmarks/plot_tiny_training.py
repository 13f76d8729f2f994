"""One picture of how the shipped tiny model was trained, over several chained runs.

The shipped model came from runs chained with ``--init`` (a new run folder starting from the previous
run's checkpoint, whose ``state.json`` counts its steps from 0) or continued with ``--resume`` (whose
``state.json`` holds the earlier history too). This script puts them end to end: the autoencoder
steps of run 2 continue those of run 1, and so do the transformer steps, with a dashed line where a
run starts; a continued run draws only the steps it added. Held-out transformer losses (``dit_val``)
are drawn as dots. The ``state.json`` files of the shipped model's runs are kept in
``benchmarks/results/tiny_world_runs/``.

Usage::

    python benchmarks/plot_tiny_training.py benchmarks/results/tiny_world_runs/1-crops.json \\
        benchmarks/results/tiny_world_runs/2-full-frames.json --out docs/tiny-world-training.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from yume_env.train.plot import _smooth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("states", nargs="+", type=Path, help="state.json of each run, in training order")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    vae_off = dit_off = 0
    prev = None
    for i, path in enumerate(args.states):
        if not path.is_file():
            p.error(f"states: no such file: {path}")
        st = json.loads(path.read_text())
        vae = np.array(st["losses"].get("vae") or [], dtype=float).reshape(-1, 4)
        dit = np.array(st["losses"].get("dit") or [], dtype=float).reshape(-1, 3)
        val = np.array(st.get("vae_val") or [], dtype=float).reshape(-1, 2)
        dval = np.array(st.get("dit_val") or [], dtype=float).reshape(-1, 4)
        if prev is not None and st["runs"][0]["started"] == prev["runs"][0]["started"]:
            # a continuation of the previous run: same step counters, keep only the new steps
            vae_off -= int(prev["vae_step"])
            dit_off -= int(prev["dit_step"])
            vae, val = vae[vae[:, 0] > prev["vae_step"]], val[val[:, 0] > prev["vae_step"]]
            dit, dval = dit[dit[:, 0] > prev["dit_step"]], dval[dval[:, 0] > prev["dit_step"]]
        prev = st
        label = f"run {i + 1}"
        if len(vae):
            axes[0].plot(vae[:, 0] + vae_off, vae[:, 1], alpha=0.25, color=f"C{i}")
            axes[0].plot(vae[:, 0] + vae_off, _smooth(vae[:, 1], 10), color=f"C{i}", label=label)
        if len(val):
            axes[1].plot(val[:, 0] + vae_off, val[:, 1], "o-", ms=3, color=f"C{i}", label=label)
        if len(dit):
            axes[2].plot(dit[:, 0] + dit_off, dit[:, 1], alpha=0.25, color=f"C{i}")
            axes[2].plot(dit[:, 0] + dit_off, _smooth(dit[:, 1], 20), color=f"C{i}", label=label)
        if len(dval):
            axes[2].plot(dval[:, 0] + dit_off, dval[:, 1], "o", ms=3, color="k", label=f"{label}: held-out")
        starts = (vae[0, 0] - 1 if len(vae) else 0, dit[0, 0] - 1 if len(dit) else 0)
        for ax, off in (
            (axes[0], vae_off + starts[0]),
            (axes[1], vae_off + starts[0]),
            (axes[2], dit_off + starts[1]),
        ):
            if i:
                ax.axvline(off, color="gray", ls="--", lw=0.8)
        vae_off += int(st["vae_step"])
        dit_off += int(st["dit_step"])
    axes[0].set(title="autoencoder training loss", xlabel="autoencoder step", yscale="log")
    axes[1].set(title="autoencoder: held-out full-frame PSNR (dB)", xlabel="autoencoder step")
    axes[2].set(title="transformer flow-matching loss", xlabel="transformer step", yscale="log")
    for a in axes:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
