#!/usr/bin/env bash
# Prints the path of uv (pinned), installing it from PyPI into the machine's tool cache (scripts/tool-cache.sh) on
# first use. The project's Python environments are made with it (scripts/python-env.sh): `uv venv` + `uv pip install`
# of the pinned requirement files, from uv's shared cache (UV_CACHE_DIR, default ~/.cache/uv).
# Usage: uv="$(bash scripts/uv.sh)"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
UV_VERSION=0.13.8
# shellcheck source=scripts/tool-cache.sh
source "$root/scripts/tool-cache.sh"
install_uv() {
  "${PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check --no-input --no-compile \
    --target "$TOOL_DIR" "uv==$UV_VERSION"
}
dir="$(cached_tool "uv-$UV_VERSION" install_uv)"
echo "$dir/bin/uv"
