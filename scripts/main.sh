#!/usr/bin/env bash
# Set up, get MNIST, run the paper's MNIST experiments planned to end within 15 minutes on
# this machine, and write the report. Extra arguments go to `lstmbench reproduce` (e.g.
# --budget 2h for more runs and longer ones; --scale tiny for the quick end-to-end check).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/data-dir.sh
if [ -z "${LSTMBENCH_MNIST:-}" ]; then
    .venv/bin/lstmbench data fetch mnist
fi
if [[ " $* " == *" --scale "* || " $* " == *" --budget "* ]]; then
    .venv/bin/lstmbench reproduce "$@"
else
    .venv/bin/lstmbench reproduce --budget 15m "$@"
fi
