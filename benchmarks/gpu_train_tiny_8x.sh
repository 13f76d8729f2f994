#!/usr/bin/env bash
# Continue training the tiny-8x world model on a CUDA machine in one go, and bring the run back.
#
#   bash benchmarks/gpu_train_tiny_8x.sh OUT_DIR [DIT_SECONDS] [EPISODES]
#
# From the committed run folder checkpoints/tiny-8x-lin (closed-form encoder, frozen; decoder and
# transformer as far as they got): renders EPISODES procedural episodes on the CPU cores (the
# closed-form code encodes them and their mirror images in the same worker processes), trains the
# transformer on the GPU for DIT_SECONDS with code-variance loss weights, and writes to OUT_DIR:
#   tiny-8x-lin.tar.part-aa, -ab, ...  the float16 export of the run and its state.json, one tar
#                                     split in 15 MB parts (files coming back may be capped at 16 MiB)
#   train.log, environment.txt        what happened, with the steps per second on this card
# Unpack where the repository is checked out with
#   cat OUT_DIR/tiny-8x-lin.tar.part-* | tar -x -C checkpoints/
# which replaces checkpoints/tiny-8x-lin/ (then measure with benchmarks/eval_tiny_world.py, see
# docs/tiny-world.md). Settings through the environment: PYTHON (python3), DEVICE (cuda; cpu runs
# the same script slowly, which is how it is tested), WORKERS (CPU cores - 2), BATCH (64), LR (3e-4),
# RUN (runs/tiny-8x-gpu), SOURCE (checkpoints/tiny-8x-lin). The package need not be installed, but its
# dependencies must be: the script names the missing ones and stops (exit 2).
set -u
OUT=${1:?usage: bash benchmarks/gpu_train_tiny_8x.sh OUT_DIR [DIT_SECONDS] [EPISODES]}
DIT_SECONDS=${2:-360}
EPISODES=${3:-920}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
CORES=$(nproc)
WORKERS=${WORKERS:-$(( CORES > 3 ? CORES - 2 : 1 ))}
BATCH=${BATCH:-64}
LR=${LR:-3e-4}
RUN=${RUN:-runs/tiny-8x-gpu}
SOURCE=${SOURCE:-checkpoints/tiny-8x-lin}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

$PY - > "$OUT/environment.txt" 2>&1 <<'PYEOF'
import importlib.util, os, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "cores", os.cpu_count())
missing = [m for m in ("gymnasium", "ftfy", "av", "imageio", "einops", "safetensors", "transformers", "tqdm")
           if importlib.util.find_spec(m) is None]
print("missing", " ".join(missing) if missing else "none")
PYEOF
cat "$OUT/environment.txt"
if ! grep -q "^missing none$" "$OUT/environment.txt"; then
  echo "dependencies missing (see above): install them, e.g. from carried wheels, and run again" >&2
  exit 2
fi

rm -rf "$RUN" && mkdir -p "$(dirname "$RUN")" && cp -r "$SOURCE" "$RUN" || exit 1
# --dit-steps is a ceiling far away: the time budget ends the run (with a checkpoint)
$PY -m yume_env.cli train --out "$RUN" --resume --device "$DEVICE" --threads 2 --workers 0 \
  --encode-workers "$WORKERS" --episodes "$EPISODES" --vae-steps 6287 --dit-steps 10000000 \
  --dit-time "$DIT_SECONDS" --batch "$BATCH" --lr "$LR" --warmup 100 --ema 0.998 \
  --dit-loss-weights code-variance --checkpoint-every 120 --no-progress 2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}

STAGE=$(mktemp -d)
$PY - "$RUN" "$STAGE/tiny-8x-lin" <<'PYEOF' || exit 1
import shutil, sys
from pathlib import Path
from yume_env.model.pipeline import load_checkpoint
from yume_env.train.trainer import export_checkpoint
run, dest = Path(sys.argv[1]), Path(sys.argv[2])
export_checkpoint(load_checkpoint(run / "checkpoint", "cpu", dtype="float32"), dest / "checkpoint")
shutil.copy(run / "state.json", dest / "state.json")
print("exported", dest)
PYEOF
tar -C "$STAGE" -cf - tiny-8x-lin | split -b 15M - "$OUT/tiny-8x-lin.tar.part-"
rm -rf "$STAGE"
ls -l "$OUT"
exit "$status"
