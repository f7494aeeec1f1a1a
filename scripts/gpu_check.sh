#!/usr/bin/env bash
# The GPU path in one go (issue 15): the parity suite's CUDA cases, `signs verify --device cuda`,
# and a GPU timing of one training step and one epoch for PyTorch and TensorFlow.
#
# TF32 is switched by NVIDIA_TF32_OVERRIDE, which cuBLAS and cuDNN honour whatever the framework
# asks: 0 forces full float32 (parity runs: the tolerances in signs/tolerances.py are float32's),
# unset leaves the frameworks' defaults (TF32 on in TensorFlow and in PyTorch's cuDNN convs) and
# TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 adds PyTorch's matmuls (speed runs). Each part says which.
#
# Usage: scripts/gpu_check.sh [OUT_DIR]   (default: gpu-check/; run from anywhere)
set -euo pipefail

cd "$(dirname "$0")/.."
out_dir="${1:-gpu-check}"
mkdir -p "$out_dir"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU visible (nvidia-smi -L failed); nothing run" >&2
    exit 2
fi
nvidia-smi -L | tee "$out_dir/gpu.txt"

status=0

echo
echo "== 1/3 parity suite, CUDA cases -- TF32 OFF (NVIDIA_TF32_OVERRIDE=0)"
NVIDIA_TF32_OVERRIDE=0 python3 -m pytest -q -p no:cacheprovider -k "cuda or gpu" \
    parity_tests tests/torch_model tests/tf_model 2>&1 | tee "$out_dir/parity_cuda.txt" || status=1

echo
echo "== 2/3 signs verify --device cuda -- TF32 OFF (NVIDIA_TF32_OVERRIDE=0)"
NVIDIA_TF32_OVERRIDE=0 signs verify --device cuda --dtype float32 \
    --json-out "$out_dir/verify_cuda.json" --force 2>&1 | tee "$out_dir/verify_cuda.txt" || status=1

echo
echo "== 3/3 GPU bench (batch 64, float32) -- TF32 ON (frameworks' defaults + TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1)"
env -u NVIDIA_TF32_OVERRIDE TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 python3 - "$out_dir/bench_cuda.json" <<'PY' \
    2>&1 | tee "$out_dir/bench_cuda.txt" || status=1
"""Median step and epoch times on the GPU, candidates interleaved (benchmarks/timing.py)."""
import json
import sys
import time

import numpy as np

from benchmarks.cases import make_stepper, run_epoch
from benchmarks.timing import Candidate, run_interleaved
from reference.init import course_init

rng = np.random.default_rng(0)
X_all = rng.random((1080, 64, 64, 3), dtype=np.float32)  # SIGNS-shaped; timing only
Y_all = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 1080)]
params = course_init()
steppers = {}
for key in ("torch", "tf"):
    from signs.backends import get_backend

    steppers[key] = get_backend(key).Trainer(params, device="cuda")
    steppers[key].step(X_all[:64], Y_all[:64])
    steppers[key].step(X_all[:56], Y_all[:56])
import torch

print(f"torch TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, cudnn {torch.backends.cudnn.allow_tf32}")
steps = run_interleaved([Candidate(k, lambda o=o: o.step(X_all[:64], Y_all[:64])) for k, o in steppers.items()],
                        reps=7, warmup=1, target_s=0.2)
epochs = run_interleaved([Candidate(k, sample=lambda o=o: run_epoch(o, X_all, Y_all)) for k, o in steppers.items()],
                         reps=5, warmup=1)
result = {"tf32": "on", "step_s": {k: s.to_dict() for k, s in steps.items()},
          "epoch_s": {k: s.to_dict() for k, s in epochs.items()}, "time": time.time()}
for key in steppers:
    print(f"{key}: step {steps[key].median * 1e3:.2f} ms (min {steps[key].min * 1e3:.2f}), "
          f"epoch {epochs[key].median * 1e3:.1f} ms (1080 images, TF32 on)")
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
PY

echo
if [ "$status" -eq 0 ]; then
    echo "gpu_check: all three parts passed; outputs in $out_dir/"
else
    echo "gpu_check: a part FAILED (see above); outputs in $out_dir/" >&2
fi
exit "$status"
