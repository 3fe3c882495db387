#!/usr/bin/env bash
# Set up, get MNIST, run every paper experiment at tiny scale and write the report.
# Extra arguments go to `lstmbench reproduce` (e.g. --scale small).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/data-dir.sh
if [ -z "${LSTMBENCH_MNIST:-}" ]; then
    .venv/bin/lstmbench data fetch mnist
fi
.venv/bin/lstmbench reproduce --scale tiny "$@"
