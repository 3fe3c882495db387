#!/usr/bin/env bash
# Create .venv and install lstmbench into it with PyTorch (CPU build by default).
#   TORCH_SPEC   which torch to install (default: torch==2.13.0)
#   TORCH_INDEX  a wheel index to take it from, e.g. https://download.pytorch.org/whl/cu124
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/pip install -q ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "${TORCH_SPEC:-torch==2.13.0}"
fi
.venv/bin/pip install -q -e ".[dev]"
