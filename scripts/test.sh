#!/usr/bin/env bash
# Set up, then run the linter and every test (the real-data ones read ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Triton runs the GPU recurrence's kernels on CPU tensors in its interpreter, so the tests
# check them here too (tests/test_triton_recurrence.py); the main job does not need it.
if ! .venv/bin/python -c "import triton" 2>/dev/null; then
    .venv/bin/pip install -q "triton>=3.0"
fi
# The report's browser test opens the HTML report in headless Chromium.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"
