#!/usr/bin/env bash
# Prints the path of a Python with torch (pinned) for the agent's real-DCP scenario (test/agent/test_dcp.py,
# TORCH_PYTHON). torch from PyPI pulls its CUDA wheels (several GB, run-facts.md), so it is installed once into the
# machine's tool cache (scripts/tool-cache.sh) with uv (scripts/uv.sh); later calls print the cached path at once.
# torch.distributed.checkpoint runs on CPU with those wheels installed. Exits 1 when it cannot be installed (offline).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
TORCH_VERSION=2.15.0
# shellcheck source=scripts/tool-cache.sh
source "$root/scripts/tool-cache.sh"
uv="$(bash "$root/scripts/uv.sh")"
install_torch() {
  "$uv" venv --quiet --python "${PYTHON:-python3}" "$TOOL_DIR"
  "$uv" pip install --quiet --python "$TOOL_DIR/bin/python" "torch==$TORCH_VERSION" "numpy<3"
}
dir="$(cached_tool "torch-$TORCH_VERSION" install_torch)" || exit 1
echo "$dir/bin/python"
