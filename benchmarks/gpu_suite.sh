#!/usr/bin/env bash
# GPU checks and benchmarks in one go, for a CUDA machine (about 10 minutes on an H100/H200).
#
#   bash benchmarks/gpu_suite.sh OUT_DIR
#
# 1. the GPU tests (tests/test_gpu.py: goldens in fp32, bf16 error, fast path vs eager bf16, compiled
#    blocks, no host sync inside a step, packed flash-attn);
# 2. bench_world.py with the 5B architecture (random weights) at 544x960, history 5 and 341,
#    batch 1 and 4: eager, then the approximate long-episode path, then compiled (compile time apart:
#    the warm-up block is excluded and reported in config_wall_s);
# 3. bench_gpu.py's denoise/decode/text table at the same sizes, for continuity with older results.
# Everything goes under OUT_DIR (JSON + Markdown + logs). Each step runs even if an earlier one fails.
set -u
OUT=${1:?usage: bash benchmarks/gpu_suite.sh OUT_DIR}
mkdir -p "$OUT"
PY=${PYTHON:-python}
status=0
run() {  # name, command...
  local name=$1; shift
  echo "== $name: $*"
  if ! "$@" > "$OUT/$name.log" 2>&1; then echo "   FAILED (see $OUT/$name.log)"; status=1; fi
  tail -n 15 "$OUT/$name.log"
}
$PY - > "$OUT/environment.txt" 2>&1 <<'PYEOF'
import torch, platform
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
try:
    import flash_attn; print("flash_attn", flash_attn.__version__)
except ImportError:
    print("flash_attn absent")
PYEOF
cat "$OUT/environment.txt"
run gpu_tests $PY -m pytest -q tests/test_gpu.py tests/test_dit.py tests/test_fast_path.py -x
COMMON=(--preset yume-1.5-5b --device cuda --resolution 544x960 --histories 5,341 --batches 1,4 --blocks 3 --warmup 1 --decode block)
run world_eager $PY benchmarks/bench_world.py "${COMMON[@]}" --out "$OUT/world_5b_eager.json" --markdown "$OUT/world_5b_eager.md"
run world_reuse $PY benchmarks/bench_world.py "${COMMON[@]}" --long-episode --out "$OUT/world_5b_reuse.json" --markdown "$OUT/world_5b_reuse.md"
run world_compile $PY benchmarks/bench_world.py "${COMMON[@]}" --compile --decode none --out "$OUT/world_5b_compile.json" --markdown "$OUT/world_5b_compile.md"
run bench_gpu $PY benchmarks/bench_gpu.py --out "$OUT/gpu.json" --histories 5,341 --skip-text
echo "results in $OUT"
exit $status
