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
# Faces like those of the scanned documents (Courier, Times, Helvetica) for generated lines,
# and libGL for OpenCV (augraphy's printing effects). Without the faces the generator falls
# back to matplotlib's with a warning, and without libGL lines can still be made with
# --degradation classic, so a failed install does not stop the set-up.
missing=()
for package in fonts-urw-base35 fonts-liberation fonts-freefont-ttf libgl1; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    # -n: never stop the set-up to ask for a password; without one the fallback faces serve.
    SUDO=$([ "$(id -u)" = 0 ] || echo "sudo -n")
    { $SUDO apt-get update -q && $SUDO apt-get install -y -q "${missing[@]}"; } >/dev/null 2>&1 \
        || echo "setup: could not install ${missing[*]}; generated lines fall back to other faces, or need --degradation classic" >&2
fi
