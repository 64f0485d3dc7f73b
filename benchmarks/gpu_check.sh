#!/usr/bin/env bash
# The GPU checks of the speed issue in one call, for a lent GPU machine (the `device` tool): its
# python3 already has torch, so nothing is installed. Writes its logs and JSON under $OUT.
#
#   device run:  bash benchmarks/gpu_check.sh          (about 5 minutes on an H200; timeout_s 540)
#   here (smoke): OUT=/tmp/gpu DEVICE=cpu SIZES=64 COMPILE_SIZES=64 bash benchmarks/gpu_check.sh
#
# 1. the CUDA tests (fp16 against fp32, eager and compiled; the sub-pixel form),
# 2. every width, size and precision eager, with batches (no compiling: seconds per shape),
# 3. the goal's row compiled with CUDA graphs (full width, 1024²): a compile per shape, so one shape.
set -uo pipefail
out=${OUT:-gpu_out}
device=${DEVICE:-cuda}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
py=${PYTHON:-python3}
cd "$(dirname "$0")/.."

$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))" \
    2>&1 | tee "$out/device.txt"
timeout 150 $py -m pytest -q -p no:cacheprovider tests/test_fast_paths.py tests/test_subpixel.py 2>&1 | tee "$out/tests.log"
timeout 150 $py benchmarks/bench_inference.py --device "$device" --no-compile --no-onnx --no-lite \
    --sizes "${SIZES:-256,512,1024,1920x1080}" --json "$out/bench_eager.json" --markdown 2>&1 | tee "$out/bench_eager.log"
timeout 200 $py benchmarks/bench_inference.py --device "$device" --no-onnx --no-lite --widths 32 --batch 1 \
    --sizes "${COMPILE_SIZES:-1024}" --json "$out/bench_compiled.json" --markdown 2>&1 | tee "$out/bench_compiled.log"
