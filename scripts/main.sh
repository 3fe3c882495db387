#!/usr/bin/env bash
# Set up, get MNIST, and train one BIDI NPLSTM with CTC for one epoch; prints its test error.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/data-dir.sh
if [ -z "${LSTMBENCH_MNIST:-}" ]; then
    .venv/bin/lstmbench data fetch mnist
fi
.venv/bin/lstmbench train --cell NPLSTM --direction bidi --target ctc --hidden 100 \
    --lr 0.01 --momentum 0.9 --batch-size 32 --epochs 1 "$@"
