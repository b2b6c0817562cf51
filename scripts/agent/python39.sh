#!/usr/bin/env bash
# Prints the path of a Python 3.9 interpreter, the run agent's oldest supported Python (Amazon Linux 2023's
# /usr/bin/python3), for its scenarios (test/agent/, AGENT_PYTHON): AGENT_PYTHON when it is 3.9, else the machine's
# python3.9 (PATH, then pyenv's), else one installed by uv (pinned in scripts/uv.sh) into the machine's tool cache
# (scripts/tool-cache.sh) on first use (`uv python install`, which downloads a python-build-standalone build).
# Exits 1, printing nothing, when there is none and uv cannot install one (offline).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
is_39() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' > /dev/null 2>&1; }
for p in "${AGENT_PYTHON:-}" "$(command -v python3.9 || true)" "$HOME"/.pyenv/versions/3.9.*/bin/python3.9; do
  if is_39 "$p"; then echo "$p"; exit 0; fi
done
# shellcheck source=scripts/tool-cache.sh
source "$root/scripts/tool-cache.sh"
uv="$(bash "$root/scripts/uv.sh")"
install_python39() {
  UV_PYTHON_INSTALL_DIR="$TOOL_DIR" "$uv" python install --no-bin 3.9
}
dir="$(cached_tool "python-3.9-uv-$(basename "$(dirname "$(dirname "$uv")")")" install_python39)" || exit 1
for p in "$dir"/cpython-3.9.*/bin/python3.9; do
  if is_39 "$p"; then echo "$p"; exit 0; fi
done
exit 1
