"""Frames/s of worlds sharded over Ray workers, and what moving a block through Ray's object store costs.

Two measurements, written to one JSON file:

1. **Throughput vs workers.** ``--num-worlds`` worlds of ``YumeWorld-v0`` stepped together for
   ``--steps`` blocks (after ``--warmup`` blocks), in this process (``workers=0``) and on each
   ``--workers`` count of Ray workers. Frames/s = worlds x frames per block / step seconds.
2. **Object-store transfer.** A worker hands the driver a block-sized array (what every step does
   with observations), split into the worker's write into the object store, the driver's fetch and
   the driver's copy into the batch: a block of frames at ``--transfer-resolution`` (29 x 544 x 960
   x 3 uint8 by default, the 5B model's 544p block) and its latents (48 x 8 x 34 x 60 float32).

    python benchmarks/bench_ray.py                                   # tiny model on this CPU: 0, 1, 2 workers
    python benchmarks/bench_ray.py --workers 1 2 4 8 --device cuda --model yume-1.5-5b \\
        --checkpoint /data/Yume-5B-720P --resolution 544 960 --num-worlds 16 --address auto

On CPU each worker gets ``--threads`` torch threads (one core per worker by default). The machine,
its load and the thread counts are recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import ray
import torch

import yume_env  # noqa: F401  (registers YumeWorld-v0)
from yume_env.distributed import WorkerPool


def _actions(n: int, k: int) -> dict:
    return {"move": np.full(n, 1 + k % 8), "look": np.full(n, k % 9), "event": ("",) * n}


def throughput(workers: int, args) -> dict:
    """Step ``num_worlds`` worlds ``steps`` times; in this process when ``workers == 0``."""
    kwargs = {
        "num_envs": args.num_worlds,
        "resolution": tuple(args.resolution),
        "obs_mode": args.obs_mode,
        "model": args.model,
        "checkpoint": args.checkpoint,
        "device": args.device,
    }
    pool = None
    if workers:
        cuda = str(args.device or "").startswith("cuda")
        pool = WorkerPool(workers, num_gpus=1 if cuda else 0, threads=None if cuda else args.threads)
        pool.describe()
        kwargs["workers"] = pool
    t0 = time.perf_counter()
    venv = gym.make_vec("YumeWorld-v0", **kwargs)
    build_s = time.perf_counter() - t0
    venv.reset(seed=0)
    for k in range(args.warmup):
        venv.step(_actions(args.num_worlds, k))
    times, overheads = [], []
    for k in range(args.steps):
        t = time.perf_counter()
        obs, _, _, _, info = venv.step(_actions(args.num_worlds, args.warmup + k))
        times.append(time.perf_counter() - t)
        # what the slowest batch spent generating (text + denoise + decode, measured where it ran);
        # the rest of the step is scheduling, transfers and the driver's copy
        compute = max(timing.total_ms for timing in info["timing"]) / 1e3
        overheads.append(times[-1] - compute)
    frames = obs.shape[1] if args.obs_mode == "frames" else 0
    venv.close()
    if pool is not None:
        pool.shutdown()
    step_s = statistics.median(times)
    row = {
        "workers": workers,
        "build_s": round(build_s, 2),
        "step_ms_median": round(step_s * 1e3, 1),
        "step_ms_all": [round(t * 1e3, 1) for t in times],
        "overhead_ms_median": round(statistics.median(overheads) * 1e3, 1),
        "overhead_ms_all": [round(t * 1e3, 1) for t in overheads],
        "blocks_per_s": round(args.num_worlds / step_s, 2),
        "frames_per_s": round(args.num_worlds * frames / step_s, 1),
        "observation_bytes_per_step": int(obs.nbytes),
    }
    print(
        f"workers={workers}: step {row['step_ms_median']} ms (overhead {row['overhead_ms_median']} ms), "
        f"{row['frames_per_s']} frames/s, "
        f"{row['blocks_per_s']} blocks/s",
        flush=True,
    )
    return row


@ray.remote(num_cpus=0)
class _Source:
    """Holds block-sized arrays and hands them out, as a world worker hands out observations."""

    def __init__(self, shapes: dict):
        self.arrays = {
            name: np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8).astype(dtype)
            for name, (shape, dtype) in shapes.items()
        }

    def get(self, name: str):
        return None if name == "empty" else self.arrays[name]

    def put(self, name: str):
        """Put the array into the object store here; the ref goes back inside a list (not resolved)."""
        t = time.perf_counter()
        ref = ray.put(self.arrays[name])
        return [ref], (time.perf_counter() - t) * 1e3


def transfer(args) -> dict:
    """The cost of moving one block from a worker to the driver, split into its parts (medians):

    - ``roundtrip_ms``: a worker method returning the array, fetched with ``ray.get`` (what a step does);
    - ``worker_put_ms``: the worker writing it into the object store (each worker in parallel);
    - ``driver_get_ms``: the driver fetching an object already in the store (zero-copy on one
      machine; across machines this is where the network transfer goes);
    - ``driver_copy_ms``: the driver copying it into the batch array (the one copy it makes).
    """
    h, w = args.transfer_resolution
    shapes = {
        "frames_uint8": ((29, h, w, 3), "uint8"),
        "latents_float32": ((48, 8, h // 16, w // 16), "float32"),
    }
    source = _Source.remote(shapes)
    ray.get(source.get.remote("empty"))
    empty = []
    for _ in range(args.transfer_repeats):
        t = time.perf_counter()
        ray.get(source.get.remote("empty"))
        empty.append(time.perf_counter() - t)
    out = {"empty_call_ms": round(statistics.median(empty) * 1e3, 2)}
    for name, (shape, dtype) in shapes.items():
        roundtrip, put, get, copy = [], [], [], []
        for _ in range(args.transfer_repeats):
            t = time.perf_counter()
            value = ray.get(source.get.remote(name))
            roundtrip.append(time.perf_counter() - t)
            del value
            (ref,), put_ms = ray.get(source.put.remote(name))
            put.append(put_ms / 1e3)
            t = time.perf_counter()
            value = ray.get(ref)
            get.append(time.perf_counter() - t)
            batch = np.empty((2, *shape), dtype=dtype)
            t = time.perf_counter()
            np.concatenate([value[None], value[None]], out=batch)
            copy.append((time.perf_counter() - t) / 2)
            del value, ref, batch
        nbytes = int(np.prod(shape) * np.dtype(dtype).itemsize)
        out[name] = {
            "shape": list(shape),
            "bytes": nbytes,
            **{
                key: round(statistics.median(values) * 1e3, 2)
                for key, values in [
                    ("roundtrip_ms", roundtrip),
                    ("worker_put_ms", put),
                    ("driver_get_ms", get),
                    ("driver_copy_ms", copy),
                ]
            },
        }
        print(f"transfer {name}: {out[name]}", flush=True)
    ray.kill(source)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="0 = in this process")
    p.add_argument("--num-worlds", type=int, default=4)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--resolution", type=int, nargs=2, default=[96, 160], metavar=("H", "W"))
    p.add_argument("--obs-mode", default="frames", choices=["frames", "latent"])
    p.add_argument("--model", default="tiny")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=1, help="torch threads per CPU worker (and here)")
    p.add_argument("--transfer-resolution", type=int, nargs=2, default=[544, 960], metavar=("H", "W"))
    p.add_argument("--transfer-repeats", type=int, default=10)
    p.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/ray_tiny_cpu.json"))
    args = p.parse_args(argv)
    if any(w < 0 for w in args.workers) or args.num_worlds < max(args.workers) or args.steps < 1:
        p.error("--workers must be >= 0 and at most --num-worlds; --steps >= 1")

    torch.set_num_threads(args.threads)  # the in-process row gets what one CPU worker gets
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    rows = [throughput(w, args) for w in args.workers]
    moved = transfer(args)
    result = {
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ray": ray.__version__,
            "cpu_cores": os.cpu_count(),
            "load_average_at_end": list(os.getloadavg()),
            "threads_per_cpu_worker": args.threads,
            "device": args.device or "cpu",
        },
        "settings": {
            "num_worlds": args.num_worlds,
            "resolution": args.resolution,
            "obs_mode": args.obs_mode,
            "model": args.model,
            "steps": args.steps,
            "warmup": args.warmup,
        },
        "throughput": rows,
        "transfer": moved,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
