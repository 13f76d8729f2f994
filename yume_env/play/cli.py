"""``yume-world play``: serve the page that plays a world on this machine.

    yume-world play                                  the tiny generated world (CPU)
    yume-world play --world procedural               the procedural city (ground truth)
    yume-world play --world yume --checkpoint Yume-5B-720P --device cuda
    yume-world play --dataset yume/my-play-v0        also write the played episodes as a Minari dataset

Open the printed address (http://127.0.0.1:8765/ by default) in a browser. The server listens on
127.0.0.1 only unless ``--host`` says otherwise. Recordings go to ``--out`` (default
``yume-play/``). Exit status 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yume_env.cli_flags import SETTINGS, as_flag, world_flags

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="yume-world play", description="Play a world in a web browser on this machine."
    )
    p.add_argument("--world", default="tiny", help="tiny (default), procedural, or yume (needs --checkpoint)")
    p.add_argument("--checkpoint", default=None, help="Yume-5B-720P folder (world yume)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (generated worlds)")
    p.add_argument("--dtype", default=None, help="float32 or bfloat16 (generated worlds)")
    p.add_argument("--resolution", default=None, help="HxW, e.g. 96x160 (default: the world's)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps per block (generated worlds)")
    p.add_argument(
        "--decode",
        default=None,
        choices=["block", "stream"],
        help="VAE decoding (generated worlds; default block)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--out", default="yume-play", help="folder for recordings (default yume-play)")
    p.add_argument(
        "--dataset",
        default=None,
        metavar="ID",
        help="write every played episode as this Minari dataset when the server stops (e.g. yume/play-v0)",
    )
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    return p


def make_server(args):
    """The :class:`PlayServer` for parsed arguments (ValueError/ImportError for bad ones)."""
    from yume_env.play.server import PlayServer, require_aiohttp
    from yume_env.play.session import WorldConfig

    require_aiohttp()
    if not 0 < args.port < 65536:
        raise ValueError(f"--port: got {args.port}; accepted: 1..65535")
    flags = world_flags(args)
    try:
        config = WorldConfig(world=args.world, **flags)
    except ValueError as exc:
        raise ValueError(as_flag(str(exc), ("world", *SETTINGS))) from None  # named as its flag
    if args.dataset is not None:
        from yume_env.datasets import check_new_dataset

        check_new_dataset(args.dataset, "--dataset")
    config.make_env().close()  # bad checkpoints, devices and resolutions fail now, not in a tab
    return PlayServer(config, Path(args.out), args.dataset)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        server = make_server(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        print(f"yume-world play: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from yume_env.play.server import serve

    try:
        serve(server, host=args.host, port=args.port, open_browser=args.open)
    except OSError as exc:  # port in use, address not available
        print(f"yume-world play: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(f"yume-world play: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
