#!/usr/bin/env bash
# The GPU checks of issue 17, one script of at most 8 minutes on a CUDA machine:
#   1. the CUDA tests (device paste-back, fast inference path);
#   2. the `gpu` benchmark section: fp32 eager vs bf16 + channels_last (+ torch.compile, + CUDA graphs),
#      faces/s at batch 1 and at the best batch, fraction of the bf16 peak at 396 GFLOP per face;
#   3. AMP training steps/s: one GFPGAN iteration (128 px) on the GPU, fp32 vs bf16 autocast;
#   4. a 2-rank NCCL training run of the tiny config (needs 2 GPUs; said so and skipped with one).
# Writes its markdown to $OUT/gpu_check.md (OUT defaults to ./gpu_check_out) for BENCHMARKS.md.
# Each step has its own time limit, so one failure never eats the others' time; the exit status is
# the number of failed steps.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
REPORT="$OUT/gpu_check.md"
: > "$REPORT"
failed=0

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to the report, count failures
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)" | tee -a "$REPORT"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "-- $name: exit $rc after $((SECONDS - start)) s" | tee -a "$REPORT"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

python - <<'PY' | tee -a "$REPORT"
import torch
assert torch.cuda.is_available(), 'gpu_check.sh needs a CUDA device'
print(f'- torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} x {torch.cuda.get_device_name()}')
PY
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

step cuda_tests 90 python -m pytest -q -x -p no:cacheprovider tests/test_paste.py tests/test_inference_speed.py \
    -k "cuda or bf16 or compile"
step gpu_bench 200 python scripts/benchmark.py --sections gpu --cuda-batches 1 32 --cuda-warmup 3 \
    --cuda-iters 10 --append "$REPORT"
step amp_train 70 python scripts/benchmark.py --sections gfpgan_iter --iter-device cuda --iter-batch 8 \
    --iter-rounds 10 --append "$REPORT"

# 2-rank NCCL run of the tiny recipe. The shared sample data may be absent on this machine: then a few
# synthetic 512 px faces and an eye/mouth file are written, in the formats the dataset reads.
if [ "$(python -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    DATA="$PWD/../shared/data/ffhq_512"
    if [ ! -f "$DATA/eye_mouth_landmarks.pth" ]; then
        DATA="$OUT/ffhq_synthetic"
        python - "$DATA" <<'PY'
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

root = Path(sys.argv[1])
root.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for i in range(8):
    cv2.imwrite(str(root / f'{i:08d}.png'), cv2.GaussianBlur(rng.integers(0, 256, (512, 512, 3), np.uint8), (0, 0), 3))
parts = {'left_eye': [190.0, 240.0, 40.0], 'right_eye': [320.0, 240.0, 40.0], 'mouth': [255.0, 390.0, 60.0]}
torch.save({f'{i:08d}': {k: np.array(v) for k, v in parts.items()} for i in range(8)}, root / 'eye_mouth_landmarks.pth')
PY
    fi
    step nccl_train 110 python -m torch.distributed.run --nproc_per_node=2 gfpgan/train.py \
        -opt options/train_gfpgan_tiny.yml --launcher pytorch --force_yml num_gpu=2 name=gpu_check_nccl \
        "datasets:train:dataroot_gt=$DATA" "datasets:train:component_path=$DATA/eye_mouth_landmarks.pth" \
        "datasets:val:dataroot_gt=$DATA" "datasets:val_2:dataroot_gt=$DATA" train:total_iter=40
else
    echo "== nccl_train: skipped, one GPU here (a 2-rank NCCL run needs two devices)" | tee -a "$REPORT"
fi

echo "== gpu_check: $failed step(s) failed; report in $REPORT" | tee -a "$REPORT"
exit "$failed"
