#!/usr/bin/env bash
# On a CUDA machine, in one call: the CUDA tests (the Triton recurrence's among them, compiled
# for the device), `lstmbench bench --device cuda` with its fused-runs rows against cuDNN, and
# a fused sweep timed on the GPU. Writes the logs, tables and JSON to $OUT (or ./gpu-check).
# Uses the python3 that holds a CUDA torch (or $PYTHON); the package runs from the source
# tree. Each part has its own timeout, so one that hangs cannot cost the others; together
# they stay under 10 minutes (570 s), one device call.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
lstmbench() { "$python" -m lstmbench.cli "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
    | tee -a "$out/device.txt"

echo "== CUDA tests"
timeout "${TEST_TIMEOUT:-90}" "$python" -m pytest -q -p no:cacheprovider \
    tests/test_fast_path.py -k cuda 2>&1 | tee "$out/tests.log"

# TRITON_INTERPRET unset, so the kernels compile for the GPU and run on CUDA tensors. Each
# spec and block shape compiles once (forward and backward), which takes most of the time.
echo "== Triton recurrence tests on CUDA"
env -u TRITON_INTERPRET timeout "${TRITON_TIMEOUT:-200}" "$python" -m pytest -q \
    -p no:cacheprovider tests/test_triton_recurrence.py -k "${TRITON_TESTS:-}" 2>&1 \
    | tee "$out/triton-tests.log"

echo "== bench, MNIST shape, with K batch-1 runs fused against the same runs through cuDNN"
timeout "${MNIST_TIMEOUT:-120}" lstmbench bench --device cuda --shapes mnist \
    --fused-runs "${FUSED_RUNS:-128}" --min-time 0.2 --json "$out/bench-cuda-mnist.json" 2>&1 \
    | tee "$out/bench-cuda-mnist.txt"
echo "== bench, text-line shape"
timeout "${LINE_TIMEOUT:-80}" lstmbench bench --device cuda --shapes line --cells NPLSTM,LSTM \
    --fused-runs 0 --min-time 0 --repeats 2 --json "$out/bench-cuda-line.json" 2>&1 \
    | tee "$out/bench-cuda-line.txt"

echo "== a fused sweep on the GPU (lr_hidden, tiny scale)"
data=${LSTMBENCH_MNIST:-../shared/data/mnist}
timeout "${SWEEP_TIMEOUT:-80}" bash -c "time $python -m lstmbench.cli sweep run lr_hidden \
    --scale tiny --device cuda --data $data --db $out/sweep-cuda.db --quiet" 2>&1 \
    | tee "$out/sweep-cuda.txt"
