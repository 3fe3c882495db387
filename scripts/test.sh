#!/usr/bin/env bash
# Set up, then run the linter and every test (the real-data ones read ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"
