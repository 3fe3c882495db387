#!/usr/bin/env bash
# On a CUDA machine: the fused path's CUDA equality tests, then `lstmbench bench --device cuda`
# (the MNIST shape over the whole grid, then the text-line shape for NPLSTM and LSTM). Writes
# the test log, the tables and the JSON to $OUT (or ./gpu-check). Uses the python3 that holds a
# CUDA torch; the package runs from the source tree.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/device.txt"
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
    | tee -a "$out/device.txt"

echo "== CUDA equality tests"
timeout 150 "$python" -m pytest -q -p no:cacheprovider tests/test_fast_path.py -k cuda \
    2>&1 | tee "$out/tests.log"

# The bench through the bench module alone, so other subcommands' imports cannot stop it.
runner=$(mktemp --suffix=.py)
cat >"$runner" <<'PY'
import argparse
import sys

from lstmbench import bench_cli

parser = argparse.ArgumentParser(prog="lstmbench bench")
bench_cli.add_commands(parser.add_subparsers())
args = parser.parse_args(["bench", *sys.argv[1:]])
sys.exit(args.handler(args))
PY
echo "== bench, MNIST shape"
timeout "${MNIST_TIMEOUT:-140}" "$python" "$runner" --device cuda --shapes mnist \
    --min-time 0.2 --json "$out/bench-cuda-mnist.json" 2>&1 | tee "$out/bench-cuda-mnist.txt"
echo "== bench, text-line shape"
timeout "${LINE_TIMEOUT:-150}" "$python" "$runner" --device cuda --shapes line --cells NPLSTM,LSTM \
    --min-time 0 --repeats 2 --json "$out/bench-cuda-line.json" 2>&1 \
    | tee "$out/bench-cuda-line.txt"
