#!/usr/bin/env bash
# GPU check of the model code only (no ROS wheels needed), under 8 minutes on one NVIDIA GPU:
# torch CUDA fp32/fp16 and TensorRT FP16 latency for tree_aspp at 320x256 batch 1, fp16 vs
# fp32 agreement, training img/s (320x256, batch 16, bf16 + channels_last).
# Usage, from the repository root with whatever python/torch the GPU machine has:
#   benchmarks/gpu_check.sh [OUTPUT_JSON]     (default: a fresh folder under benchmarks/runs/)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUTPUT=(${1:+--output "$1"})
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
      torch.cuda.is_available())'
# TensorRT and onnx only when importable, or installable within 40 s each (offline: skipped).
for package in onnx tensorrt; do
  if ! "$PYTHON" -c "import $package" 2>/dev/null; then
    timeout 40 "$PYTHON" -m pip install --quiet --disable-pip-version-check --retries 0 \
      --timeout 10 "$package" >/dev/null 2>&1 \
      || echo "gpu_check: $package not installed and not installable here"
  fi
done
# the budget: 80 s for the installs above, 6.5 minutes for the measurements
timeout 390 "$PYTHON" -m benchmarks.gpu_check "${OUTPUT[@]}"
