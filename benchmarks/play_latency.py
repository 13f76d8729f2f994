"""How long a block takes in ``yume-world play``: from the step message to the last PNG frame
received, through the real aiohttp app (loopback), with the server-side split.

    python benchmarks/play_latency.py --world procedural --blocks 8
    python benchmarks/play_latency.py --world tiny --blocks 8

Prints the median per block: round trip (client), step (env), PNG encoding, bytes sent.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from yume_env.play.server import PlayServer
from yume_env.play.session import WorldConfig
from yume_env.world.images import parse_resolution


async def measure(config: WorldConfig, blocks: int) -> dict:
    server = PlayServer(config, Path(tempfile.mkdtemp()))
    async with TestClient(TestServer(server.build_app())) as client:
        ws = await client.ws_connect("/ws")
        await ws.receive_json()
        rows = []
        for k in range(blocks + 1):
            msg = {"type": "reset", "seed": 0} if k == 0 else {"type": "step", "keys": ["w", "ArrowRight"]}
            t0 = time.perf_counter()
            await ws.send_json(msg)
            meta = await ws.receive_json()
            size = sum([len(await ws.receive_bytes()) for _ in range(meta["frames"])])
            if k:  # the reset is not a block
                rows.append(
                    (
                        (time.perf_counter() - t0) * 1e3,
                        meta["timing"]["step_ms"],
                        meta["timing"]["png_ms"],
                        size,
                    )
                )
        await ws.close()
    med = [statistics.median(col) for col in zip(*rows)]
    return {
        "round_trip_ms": med[0],
        "step_ms": med[1],
        "png_ms": med[2],
        "bytes": med[3],
        "frames": meta["frames"],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--world", default="procedural")
    p.add_argument("--resolution", default=None)
    p.add_argument("--blocks", type=int, default=8)
    args = p.parse_args()
    config = WorldConfig(world=args.world, resolution=parse_resolution(args.resolution))
    r = asyncio.run(measure(config, args.blocks))
    print(
        f"{args.world} {args.resolution or 'default'}: {r['frames']} frames/block, round trip {r['round_trip_ms']:.0f} ms, "
        f"step {r['step_ms']:.0f} ms, PNG {r['png_ms']:.0f} ms, {r['bytes'] / 1e3:.0f} kB/block (medians of {args.blocks})"
    )


if __name__ == "__main__":
    main()
