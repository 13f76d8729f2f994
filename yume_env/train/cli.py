"""Command line of the trainer: ``yume-world train ...`` (also ``python -m yume_env.train.cli``).

Exit codes: 0 done (or stopped at a time budget with a checkpoint written), 1 a run could not start
or continue (the message says why), 2 bad arguments, 130 interrupted (a checkpoint is written first).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

EXAMPLES = """examples:
  # a complete small run on this machine's CPU (about an hour on 2 cores)
  yume-world train --out runs/tiny --episodes 150 --vae-steps 1500 --dit-steps 4000

  # continue it later (same folder), with a time budget per phase for this invocation
  yume-world train --out runs/tiny --resume --dit-steps 8000 --dit-time 1800

  # more data for a run without a GPU: two processes render and encode 800 more episodes,
  # then the transformer trains on all of them
  yume-world train --out runs/tiny --resume --episodes 950 --encode-workers 2 --dit-steps 12000

  # fine-tune for long rollouts: half of the samples see the model's own last block as history
  yume-world train --out runs/tiny --resume --dit-steps 16000 --self-history 0.5

  # the tiny-8x preset (8x8 pixels per latent), an autoencoder-only first sitting on one core,
  # then the transformer in a later one (same folder)
  yume-world train --out runs/tiny-8x --preset tiny-8x --threads 1 --workers 0 --episodes 120 \\
      --vae-steps 20000 --vae-time 3600 --vae-batch 2 --vae-window 8 --dit-steps 0
  yume-world train --out runs/tiny-8x --resume --workers 0 --encode-workers 2 --episodes 920 \\
      --vae-steps 4000 --dit-steps 20000 --batch 16

  # continue the committed closed-form tiny-8x run, its loss weighed by the code's variance
  cp -r checkpoints/tiny-8x-lin runs/tiny-8x
  yume-world train --out runs/tiny-8x --resume --threads 2 --workers 0 --episodes 160 \\
      --vae-steps 6287 --dit-steps 30000 --batch 16 --ema 0.998 --dit-loss-weights code-variance

  # stopping: Ctrl-C, or `kill PID` (SIGTERM) for a run in the background (a background job of a
  # script ignores SIGINT); both save a checkpoint first

  # train on a GPU with rendering in 12 worker processes, then write a small shippable copy
  yume-world train --out runs/gpu --device cuda --workers 12 --episodes 0 --vae-time 120 \\
      --dit-time 200 --batch 64 --export runs/gpu/export

Load the result with yume_env.model.pipeline.load_checkpoint("runs/tiny/checkpoint") or
gym.make("YumeWorld-v0", checkpoint="runs/tiny/checkpoint").
"""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; accepted: an integer >= 0") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"got {v}; accepted: an integer >= 0")
    return v


def _float_in(accepted: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse type: a float for which ``ok`` holds; errors say what is ``accepted``."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {text!r}; accepted: {accepted}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"got {v}; accepted: {accepted}")
        return v

    return parse


_seconds = _float_in("seconds (a number > 0)", lambda v: v > 0)
_fraction = _float_in("a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)
_non_negative = _float_in("a number >= 0", lambda v: v >= 0.0)


def _resolution(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; accepted: HEIGHTxWIDTH such as 96x160") from None
    return h, w


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="yume-world train",
        description=(
            "Train the tiny Yume world model on the procedural world: the Wan-style VAE, then the Yume "
            "DiT with flow matching over TSCM-compressed history. Writes checkpoints in the official "
            "folder layout to OUT/checkpoint, a loss plot to OUT/loss_curve.png, and can be resumed."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("run")
    g.add_argument("--out", type=Path, default=Path("runs/tiny"), help="run folder (default runs/tiny)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out")
    g.add_argument("--init", type=Path, help="start from this checkpoint folder (official layout)")
    g.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    g.add_argument("--seed", type=_positive_int, default=0, help="run seed (default 0)")
    g.add_argument("--threads", type=_positive_int, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--checkpoint-every", type=_seconds, default=600.0, help="seconds between checkpoints")
    g.add_argument("--export", type=Path, help="also write a small copy of the final model here")
    g.add_argument(
        "--export-dtype", default="float16", choices=["float16", "bfloat16", "float32"], help="of --export"
    )
    g.add_argument("--log-every", type=_positive_int, default=25, help="steps between loss records")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("--no-latent-cache", action="store_true", help="do not write OUT/latents.pt")
    g = p.add_argument_group("data")
    g.add_argument(
        "--episodes",
        type=_positive_int,
        default=200,
        help="procedural episodes to render in all (0 = keep rendering while training; needs --workers)",
    )
    g.add_argument("--blocks", type=_positive_int, default=8, help="blocks per episode (default 8)")
    g.add_argument(
        "--workers", type=_positive_int, help="rendering processes (default: CPU cores - 2, 0 = inline)"
    )
    g.add_argument(
        "--encode-workers",
        type=_positive_int,
        default=0,
        help="processes that render AND encode the transformer's episodes, all before it trains "
        "(for machines without a GPU; default 0: the main process encodes)",
    )
    g.add_argument(
        "--resolution",
        type=_resolution,
        default=None,
        help="HxW (default: the model's, 96x160 for both tiny presets)",
    )
    g.add_argument("--event-rate", type=float, default=0.12, help="share of blocks that start an event")
    g.add_argument("--no-mirror", action="store_true", help="no left-right mirrored copies")
    g = p.add_argument_group("autoencoder")
    g.add_argument("--vae-steps", type=_positive_int, default=2000, help="total steps (0 = keep the VAE)")
    g.add_argument("--vae-time", type=_seconds, help="seconds for the VAE in this invocation")
    g.add_argument("--vae-batch", type=_positive_int, default=8)
    g.add_argument("--vae-lr", type=float, default=3e-4)
    g.add_argument(
        "--vae-crop", type=_resolution, help="train the VAE on random HxW crops (multiples of 16), e.g. 48x80"
    )
    g.add_argument("--vae-window", type=_positive_int, default=4, help="longest training window in latents")
    g.add_argument(
        "--linear-encoder",
        action="store_true",
        help="tiny-8x: write the closed-form linear code into the encoder (fitted on 30 episodes) and "
        "freeze it; the VAE phase is skipped, train the decoder with --decoder-steps",
    )
    g = p.add_argument_group("decoder fine-tuning (encoder frozen, full frames; after the transformer)")
    g.add_argument("--decoder-steps", type=_positive_int, default=0, help="total steps (default 0: none)")
    g.add_argument("--decoder-time", type=_seconds, help="seconds for it in this invocation")
    g.add_argument("--decoder-batch", type=_positive_int, default=2)
    g.add_argument("--decoder-lr", type=float, default=5e-4)
    g = p.add_argument_group("transformer")
    g.add_argument("--dit-steps", type=_positive_int, default=10000, help="total steps")
    g.add_argument("--dit-time", type=_seconds, help="seconds for the DiT in this invocation")
    g.add_argument("--batch", type=_positive_int, default=32)
    g.add_argument("--lr", type=float, default=3e-4)
    g.add_argument("--warmup", type=_positive_int, default=200)
    g.add_argument("--ema", type=float, default=0.999)
    g.add_argument("--max-history-blocks", type=_positive_int, help="longest history in blocks (default all)")
    g.add_argument(
        "--history-noise",
        type=_non_negative,
        default=0.05,
        help="largest std of the Gaussian noise put on half of the history blocks (default 0.05)",
    )
    g.add_argument(
        "--self-history",
        type=_fraction,
        default=0.0,
        help="share of samples whose newest history block is replaced by the model's own 4-step "
        "sample of it, so it learns to recover from its own output in long rollouts "
        "(default 0; costs up to 1.7x the step time at 0.5)",
    )
    g.add_argument(
        "--dit-loss-weights",
        choices=["uniform", "code-variance"],
        default="uniform",
        help="uniform (default), or code-variance with --linear-encoder: each latent channel's loss "
        "weighed by its variance before whitening (its share of the picture)",
    )
    g = p.add_argument_group("architecture (new runs only; default: the tiny preset)")
    g.add_argument(
        "--preset",
        choices=["tiny", "tiny-8x"],
        default=None,
        help="the architecture to start from (default tiny; tiny-8x: 8x8 pixels per latent, in training)",
    )
    g.add_argument("--dit-layers", type=_positive_int)
    g.add_argument("--dit-dim", type=_positive_int)
    g.add_argument("--dit-heads", type=_positive_int)
    g.add_argument("--dit-ffn", type=_positive_int)
    g.add_argument("--vae-dim", type=_positive_int)
    g.add_argument("--vae-dec-dim", type=_positive_int)
    return p


def config_from_args(args: argparse.Namespace):
    from yume_env.train.trainer import TrainConfig

    workers = args.workers
    if workers is None:
        workers = max(0, min((os.cpu_count() or 1) - 2, 14))
    dit = {
        k: v
        for k, v in {
            "num_layers": args.dit_layers,
            "dim": args.dit_dim,
            "num_heads": args.dit_heads,
            "ffn_dim": args.dit_ffn,
        }.items()
        if v is not None
    }
    vae = {k: v for k, v in {"dim": args.vae_dim, "dec_dim": args.vae_dec_dim}.items() if v is not None}
    return TrainConfig(
        out=args.out,
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        init=args.init,
        preset=args.preset or "tiny",
        resolution=args.resolution,
        blocks_per_episode=args.blocks,
        episodes=None if args.episodes == 0 else args.episodes,
        workers=workers,
        encode_workers=args.encode_workers,
        event_rate=args.event_rate,
        mirror=not args.no_mirror,
        vae_steps=args.vae_steps,
        vae_time=args.vae_time,
        vae_batch=args.vae_batch,
        vae_lr=args.vae_lr,
        vae_window=max(1, args.vae_window),
        vae_crop=args.vae_crop,
        linear_encoder=args.linear_encoder,
        decoder_steps=args.decoder_steps,
        decoder_time=args.decoder_time,
        decoder_batch=max(1, args.decoder_batch),
        decoder_lr=args.decoder_lr,
        dit_steps=args.dit_steps,
        dit_time=args.dit_time,
        batch=args.batch,
        lr=args.lr,
        warmup=args.warmup,
        ema=args.ema,
        max_history_blocks=args.max_history_blocks,
        history_noise=args.history_noise,
        self_history=args.self_history,
        dit_loss_weights=args.dit_loss_weights,
        checkpoint_every=args.checkpoint_every,
        log_every=max(1, args.log_every),
        save_latents=not args.no_latent_cache,
        export=args.export,
        export_dtype=args.export_dtype,
        progress=not args.no_progress,
        dit_overrides=dit,
        vae_overrides=vae,
    )


def main(argv: list[str] | None = None, traceback: bool = False) -> int:
    """Run ``yume-world train``; ``traceback=True`` (``yume-world --traceback train``) re-raises errors.

    Exit status: 0 done, 1 training failed, 2 usage error (bad options, folders or checkpoints).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.blocks < 1:
        parser.error("--blocks: got 0; accepted: an integer >= 1")
    if args.batch < 1 or args.vae_batch < 1:
        parser.error("--batch/--vae-batch: accepted: an integer >= 1")
    if args.resume and args.init is not None:
        parser.error(
            "--resume and --init: choose one (resume continues --out; init starts from a checkpoint)"
        )
    if (args.resume or args.init) and any(
        v is not None
        for v in (
            args.preset,
            args.dit_layers,
            args.dit_dim,
            args.dit_heads,
            args.dit_ffn,
            args.vae_dim,
            args.vae_dec_dim,
        )
    ):
        parser.error("architecture options apply to new runs only (the checkpoint fixes the architecture)")
    if args.episodes == 0 and args.workers == 0:
        parser.error("--episodes 0 (keep rendering) needs --workers >= 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from yume_env.model.checkpoint import CheckpointError
    from yume_env.train.trainer import TrainingError, TrainingUsageError, train

    cfg = config_from_args(args)

    def _stop(signum, frame):  # a plain `kill` stops like Ctrl-C: checkpoint first
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        summary = train(cfg, log=lambda msg: print(msg, file=sys.stderr))
    except (TrainingUsageError, CheckpointError, ValueError) as exc:
        if traceback:
            raise
        print(f"yume-world train: error: {exc}", file=sys.stderr)
        return 2
    except TrainingError as exc:
        if traceback:
            raise
        print(f"yume-world train: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("yume-world train: interrupted; the last checkpoint is in the run folder", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(
        f"done: phase {summary['phase']}, vae step {summary['vae_step']} (PSNR {summary['vae_psnr']:.1f} dB), "
        f"dit step {summary['dit_step']} (loss {summary['dit_loss']:.4f}); checkpoint {summary['checkpoint']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
