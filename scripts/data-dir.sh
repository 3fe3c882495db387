#!/usr/bin/env bash
# Source me: point LSTMBENCH_MNIST at a local copy of MNIST if there is one beside the project.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${LSTMBENCH_MNIST:-}" ] && [ -d "$here/../shared/data/mnist" ]; then
    export LSTMBENCH_MNIST="$here/../shared/data/mnist"
fi
