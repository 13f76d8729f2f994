"""``yume-world``: the command line.

    yume-world demo                         a short scripted tour of the default world -> mp4 + contact sheet
    yume-world record --image street.jpg --script tour.txt [--checkpoint Yume-5B-720P]
    yume-world conformance DIR              check this install against golden cases
    yume-world train ...                    train the tiny model on the procedural world
    yume-world eval ...                     instruction-following evaluation
    yume-world play ...                     play a world in a web browser (fork, rewind, record)

User errors (bad arguments, missing files, bad scripts) print one message and exit with status 2;
failures while generating exit with status 1. ``--traceback`` shows the full Python traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from yume_env.cli_flags import SETTINGS, as_flag, settings_for, world_flags
from yume_env.script import DEMO_TOUR, ScriptError, parse_script

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in what the user asked for (exit status 2, no traceback)."""


# ---------------------------------------------------------------------------------------- demo/record
def _count(minimum: int):
    """An argparse type: an integer >= ``minimum`` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {text!r}; accepted: an integer >= {minimum}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"got {value}; accepted: an integer >= {minimum}")
        return value

    return parse


PROCEDURAL_ID = "YumeProcedural-v0"


def _world_of(model: str, threads) -> tuple[str, dict]:
    """The env id and keywords ``--model`` picks: a preset of the generated world, or ``procedural``."""
    if model == "procedural":
        return PROCEDURAL_ID, {}
    return "YumeWorld-v0", {"model": model, "threads": threads}


#: The flags of demo/record that name a world setting (their errors are shown with the flag).
_FLAGS = ("model", "image", "prompt", "threads", *SETTINGS)


def _add_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="tiny",
        help="preset: tiny (default), tiny-8x or yume-1.5-5b; or procedural (the ground-truth city)",
    )
    p.add_argument("--checkpoint", help="folder in the official Yume-5B-720P layout")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--resolution", default=None, help="HxW, e.g. 544x960 (default: the model's)")
    p.add_argument("--steps", type=_count(1), default=None, help="denoising steps per block (default 4)")
    p.add_argument(
        "--decode", default=None, choices=["block", "stream"], help="VAE decoding (default: block)"
    )
    p.add_argument("--seed", type=_count(0), default=0, help="world seed (default 0)")
    p.add_argument("--out", default=None, help="output folder")
    p.add_argument(
        "--fps", type=_count(1), default=None, help="video frame rate, >= 1 (default: the model's, 16)"
    )
    p.add_argument(
        "--threads",
        type=int,  # checked by check_threads: a usage error naming --threads
        default=None,
        help="CPU threads for torch (default: min(cores, 4), one left free)",
    )


def _run_world(args, image, prompt: str, steps_script, out_dir: Path, label: str) -> int:
    import gymnasium as gym
    import numpy as np
    from tqdm import tqdm

    from yume_env.media import save_contact_sheet, save_video

    out_dir.mkdir(parents=True, exist_ok=True)
    t_load = time.perf_counter()
    try:
        env_id, kw = _world_of(args.model, args.threads)
        kw.update(settings_for(env_id, args.model, world_flags(args)))
        if env_id == PROCEDURAL_ID:  # the city starts from its seed; a prompt is its starting event
            if image is not None:
                raise ValueError("--image: the procedural world starts from its seed; leave it out")
            env = gym.make(env_id, disable_env_checker=True, **kw).unwrapped
            options = {"event": prompt} if prompt else None
        else:
            env = gym.make(env_id, disable_env_checker=True, image=image, prompt=prompt, **kw).unwrapped
            options = None
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise UsageError(as_flag(str(exc), _FLAGS)) from None
    load_s = time.perf_counter() - t_load
    obs, info = env.reset(seed=args.seed, options=options)
    blocks = [obs]
    sheet = [obs[-1]]
    denoise = decode = text = 0.0
    t0 = time.perf_counter()
    bar = tqdm(steps_script, desc=label, unit="block")
    for step in bar:
        obs, _, _, _, info = env.step(step.as_action())
        timing = info["timing"].as_dict()  # the generated world's split, or the city's render time
        denoise += timing.get("denoise_ms", timing.get("render_ms", 0.0))
        decode += timing.get("decode_ms", 0.0)
        text += timing.get("text_ms", 0.0)
        blocks.append(obs)
        sheet.append(obs[-1])
        bar.set_postfix_str(f"{step.move} {step.look} {step.event[:24]}".strip())
    wall = time.perf_counter() - t0
    frames = np.concatenate(blocks[1:])
    fps = env.metadata["render_fps"] if args.fps is None else args.fps
    video = save_video(out_dir / f"{label}.mp4", np.concatenate(blocks), fps=fps)
    captions = [f"start (seed {args.seed})"] + [s.describe() for s in steps_script]
    contact = save_contact_sheet(out_dir / f"{label}_contact_sheet.png", sheet, captions)
    generated = len(frames)
    model = getattr(env, "model", None)
    where = f"on {model.device} ({model.dtype})" if model is not None else "rendered on the CPU"
    print(f"model: {args.model} {where}, loaded in {load_s:.1f} s")
    print(f"{len(steps_script)} blocks, {generated} frames in {wall:.1f} s: {generated / wall:.2f} frames/s")
    n = len(steps_script)
    if model is None:
        print(f"per block: render {denoise / n:.0f} ms")
    else:
        print(f"per block: denoise {denoise / n:.0f} ms, decode {decode / n:.0f} ms, text {text / n:.0f} ms")
    print(f"wrote {video}")
    print(f"wrote {contact}")
    return EXIT_OK


def cmd_demo(args) -> int:
    steps = DEMO_TOUR if args.blocks is None else DEMO_TOUR[: args.blocks]
    if args.blocks is not None and not 1 <= args.blocks <= len(DEMO_TOUR):
        raise UsageError(f"--blocks: got {args.blocks}; accepted: 1..{len(DEMO_TOUR)}")
    return _run_world(args, args.image, "", steps, Path(args.out or "yume-demo"), "demo")


def cmd_record(args) -> int:
    path = Path(args.script)
    if not path.is_file():
        raise UsageError(f"--script: no such file: {path}")
    try:
        steps = parse_script(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"--script {path}: not UTF-8 text ({exc})") from None
    except ScriptError as exc:
        raise UsageError(f"--script {path}: {exc}") from None
    if args.image is None and not args.prompt and args.model != "procedural":
        raise UsageError("record: give --image, --prompt, or both (the procedural world needs neither)")
    return _run_world(args, args.image, args.prompt or "", steps, Path(args.out or "yume-record"), path.stem)


def cmd_conformance(args) -> int:
    from yume_env.conformance import main as conformance_main

    argv = [args.folder, "--atol", str(args.atol), "--rtol", str(args.rtol)] + (
        ["--json", args.json] if args.json else []
    )
    return conformance_main(argv)


def cmd_info(args) -> int:
    """Architecture and parameter counts of a preset (built on the meta device: nothing allocated)."""
    import torch

    from yume_env.model.dit import YumeDiT
    from yume_env.model.presets import get_preset
    from yume_env.model.text_encoder import UMT5Encoder
    from yume_env.model.vae import WanVAE

    try:
        preset = get_preset(args.preset)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with torch.device("meta"):
        parts = {
            "DiT": YumeDiT(preset.dit),
            "VAE": WanVAE(preset.vae),
            "umT5 encoder": UMT5Encoder(preset.text),
        }
    print(
        f"preset {preset.name}: resolutions {', '.join(f'{h}x{w}' for h, w in preset.resolutions)}, "
        f"{preset.steps} steps at shift {preset.shift}, {preset.fps} fps"
    )
    total = 0
    for name, module in parts.items():
        n = sum(p.numel() for p in module.parameters())
        total += n
        print(f"  {name:<13} {n:>15,} parameters  {len(module.state_dict()):>4} tensors")
    print(f"  {'total':<13} {total:>15,} parameters")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yume-world", description="Yume-1.5 generated worlds as reinforcement-learning environments."
    )
    parser.add_argument("--traceback", action="store_true", help="show Python tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="run a short scripted tour of the default world and save a video")
    _add_world_args(demo)
    demo.add_argument("--image", default=None, help="start image (default: the bundled sample street)")
    demo.add_argument(
        "--blocks", type=_count(1), default=None, help=f"how many tour blocks (default {len(DEMO_TOUR)})"
    )
    demo.set_defaults(func=cmd_demo)

    record = sub.add_parser("record", help="play an action script in a world and save a video")
    _add_world_args(record)
    record.add_argument(
        "--image", default=None, help="start image (any size; resized to the model resolution)"
    )
    record.add_argument("--prompt", default=None, help="initial event text (without --image: text-to-video)")
    record.add_argument(
        "--script", required=True, help="action script: one block per line, 'MOVE LOOK [event text]'"
    )
    record.set_defaults(func=cmd_record)

    conf = sub.add_parser("conformance", help="check this implementation against golden cases")
    conf.add_argument("folder")
    conf.add_argument("--atol", type=float, default=1e-4)
    conf.add_argument("--rtol", type=float, default=1e-4)
    conf.add_argument("--json")
    conf.set_defaults(func=cmd_conformance)

    info = sub.add_parser("info", help="architecture and parameter counts of a preset")
    info.add_argument("--preset", default="yume-1.5-5b", help="yume-1.5-5b (default), tiny or tiny-8x")
    info.set_defaults(func=cmd_info)

    # Listed for --help; main() hands their arguments to their own parsers.
    sub.add_parser(
        "train",
        help="train the tiny model on the procedural world (see 'yume-world train --help')",
        add_help=False,
    )
    sub.add_parser(
        "eval", help="instruction-following evaluation (see 'yume-world eval --help')", add_help=False
    )
    sub.add_parser(
        "play", help="play a world in a web browser (see 'yume-world play --help')", add_help=False
    )
    return parser


_DELEGATED = {"train": "yume_env.train.cli", "eval": "yume_env.evaluation.cli", "play": "yume_env.play.cli"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = False
    while argv[:1] == ["--traceback"]:  # the global flag, before the command
        show_traceback = True
        argv = argv[1:]
    if argv and argv[0] in _DELEGATED:
        # Sub-commands with their own parser get every remaining argument, options included.
        import importlib

        return importlib.import_module(_DELEGATED[argv[0]]).main(argv[1:], traceback=show_traceback)
    if show_traceback:
        argv = ["--traceback", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        if args.traceback:
            raise
        print(f"yume-world {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure while generating: one line, unless asked for the traceback
        if args.traceback:
            raise
        print(f"yume-world {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
