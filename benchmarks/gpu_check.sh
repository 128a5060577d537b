#!/usr/bin/env bash
# The checks of a machine with a GPU, in one run of under 8 minutes (an H200 or an A100:
# the tests about 2, the DARTS table about 1, the data-parallel check about 1):
#   1. the device tests: the placement tests, and the lean mode's and path sampling's
#      equality tests (tests/search/test_device.py, tests/compiler/test_recompute.py,
#      tests/search/test_path_sampling.py); then the lean mode's equality on CUDA itself;
#   2. the DARTS step (C=16, 8 cells, batch 64, 32x32) in the normal and the memory-lean
#      mode, alternating, timed by CUDA events, peak memory by torch.cuda.max_memory_allocated;
#   3. with more than one GPU: a short data-parallel search under torchrun on two of them.
# Run from the repository root:  bash benchmarks/gpu_check.sh [OUT_DIR]
# Everything is written to OUT_DIR (default: runs/gpu_check); the exit status is non-zero
# when a check fails.
set -u
cd "$(dirname "$0")/.."
OUT="${1:-runs/gpu_check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpus.csv"
GPUS=$(python -c "import torch; print(torch.cuda.device_count())")
echo "torch sees $GPUS GPU(s)"
if [ "$GPUS" -lt 1 ]; then
    echo "no GPU visible to torch: nothing to check here" >&2
    exit 2
fi

echo "== 1. device tests"
timeout 180 python -m pytest -q -p no:cacheprovider tests/search/test_device.py \
    tests/compiler/test_recompute.py tests/search/test_path_sampling.py \
    tests/benchmarks/test_gpu_check.py 2>&1 | tail -5 | tee "$OUT/tests.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== 2. DARTS step, both memory modes, on cuda"
timeout 180 python benchmarks/gpu_check.py --device cuda 2>&1 | tee "$OUT/darts_step.md"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

if [ "$GPUS" -gt 1 ]; then
    echo "== 3. data-parallel search on 2 GPUs"
    timeout 120 torchrun --standalone --nproc_per_node=2 -m supernet search \
        --out "$OUT/ddp" --set search.epochs=1 --set search.max_steps_per_epoch=20 \
        --set train.mode=none --set progress=false 2>&1 | tail -20 | tee "$OUT/ddp.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
    echo "== 3. one GPU: no data-parallel check"
fi
echo "gpu_check: $([ $status -eq 0 ] && echo all checks passed || echo a check FAILED)"
exit $status
