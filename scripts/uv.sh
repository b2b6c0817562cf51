#!/usr/bin/env bash
# Prints the path of uv (pinned), installing it from PyPI into .tools/uv-VERSION/ on first use.
# The project's Python environments are made with it (scripts/python-env.sh): `uv venv` + `uv pip install`
# of the pinned requirement files, from uv's shared cache (UV_CACHE_DIR, default ~/.cache/uv).
# Usage: uv="$(bash scripts/uv.sh)"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
UV_VERSION=0.13.8
dir="$root/.tools/uv-$UV_VERSION"
if [ ! -x "$dir/bin/uv" ]; then
  mkdir -p "$root/.tools/locks"
  (
    flock 9
    if [ ! -x "$dir/bin/uv" ]; then
      rm -rf "$dir.tmp"
      "${PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check --no-input --no-compile \
        --target "$dir.tmp" "uv==$UV_VERSION" >&2
      rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
  ) 9> "$root/.tools/locks/uv.lock"
fi
echo "$dir/bin/uv"
