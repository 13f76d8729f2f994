"""The world flags shared by ``yume-world demo/record`` and ``yume-world play``.

Each command line spells its world flags the same way (``--checkpoint``, ``--device``, ``--dtype``,
``--resolution HxW``, ``--steps``, ``--decode``); :func:`world_flags` turns them into world keywords
once, with errors that name the flag (``--resolution: got ...``) rather than the keyword, and
:func:`settings_for` keeps only those the chosen world takes, refusing the others by name.
"""

from __future__ import annotations

import argparse

from yume_env.world.images import parse_resolution

__all__ = ["as_flag", "settings_for", "world_flags"]

#: The world settings a command line may give.
SETTINGS = ("checkpoint", "device", "dtype", "resolution", "steps", "decode")


def as_flag(message: str, names: tuple[str, ...] = SETTINGS) -> str:
    """A world's error as a command line's: ``resolution: got ...`` becomes ``--resolution: got ...``
    when the message names one of ``names`` (the flags of that command line); other messages as they are."""
    return f"--{message}" if message.split(":", 1)[0] in names else message


def world_flags(args: argparse.Namespace) -> dict:
    """``checkpoint``, ``device``, ``dtype``, ``resolution`` (parsed), ``steps`` and ``decode`` of
    parsed arguments; ``ValueError`` naming the flag for a bad ``--resolution`` or ``--steps``."""
    try:
        resolution = parse_resolution(args.resolution)
    except ValueError as exc:
        raise ValueError(as_flag(str(exc))) from None  # the world-level message, with the flag name
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


def settings_for(env_id: str, world_name: str, settings: dict) -> dict:
    """The ``settings`` (``None``: the world's default, left out) that ``env_id``'s world spec takes.

    A setting it does not take (the procedural world has no model: no ``checkpoint``, ``device``,
    ``dtype``, ``steps`` or ``decode``) raises ``ValueError`` naming it and ``world_name``.
    """
    from yume_env.envs.families import family_of

    accepted = family_of(env_id).spec_type.names()
    kw = {}
    for name, value in settings.items():
        if value is None:
            continue
        if name not in accepted:
            raise ValueError(f"{name}: not used by world {world_name!r} (it has no model); leave it out")
        kw[name] = tuple(value) if name == "resolution" else value
    return kw
