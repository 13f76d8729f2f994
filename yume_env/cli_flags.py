"""The world flags shared by ``yume-world demo/record`` and ``yume-world play``.

Each command line spells its world flags the same way (``--checkpoint``, ``--device``, ``--dtype``,
``--resolution HxW``, ``--steps``, ``--decode``); :func:`world_flags` turns them into world keywords
once, with errors that name the flag (``--resolution: got ...``) rather than the keyword.
"""

from __future__ import annotations

import argparse

from yume_env.world.images import parse_resolution

__all__ = ["world_flags"]


def world_flags(args: argparse.Namespace) -> dict:
    """``checkpoint``, ``device``, ``dtype``, ``resolution`` (parsed), ``steps`` and ``decode`` of
    parsed arguments; ``ValueError`` naming the flag for a bad ``--resolution`` or ``--steps``."""
    try:
        resolution = parse_resolution(args.resolution)
    except ValueError as exc:
        raise ValueError(f"--{exc}") from None  # the world-level message, with the flag name
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps: got {args.steps}; accepted: an integer >= 1")
    return {
        "checkpoint": args.checkpoint,
        "device": args.device,
        "dtype": args.dtype,
        "resolution": resolution,
        "steps": args.steps,
        "decode": args.decode,
    }
