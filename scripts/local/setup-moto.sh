#!/usr/bin/env bash
# Creates (or checks) the Python venv holding the pinned moto server used by
# `npm run deploy:local` and the emulator end-to-end test. PyPI only, no Docker.
#
#   scripts/local/setup-moto.sh            # -> <repo>/.venv-moto (gitignored by .venv*/)
#   PYTHON=python3.12 scripts/local/setup-moto.sh
#   MOTO_VENV=/some/dir scripts/local/setup-moto.sh
#
# Idempotent: when the venv exists and was built from the current
# requirements-moto.txt (a stamp holds its checksum), it only prints the path.
# Then: .venv-moto/bin/moto_server -H 127.0.0.1 -p 5055
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${MOTO_VENV:-$root/.venv-moto}"
req="$here/requirements-moto.txt"
stamp="$venv/.requirements-moto.sha256"
python="${PYTHON:-python3}"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -x "$venv/bin/moto_server" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "moto venv up to date: $venv" >&2
  exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
  echo "setup-moto: '$python' not found; install Python 3.11+ (or set PYTHON=...)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "setup-moto: $("$python" --version 2>&1) is too old; the pinned set needs Python 3.11+ (set PYTHON=...)" >&2
  exit 1
fi

start=$(date +%s)
echo "setup-moto: creating $venv from $(basename "$req") (PyPI, pinned) ..." >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
"$venv/bin/python" -c 'import moto; print("setup-moto: moto", moto.__version__)' >&2
echo "$want" > "$stamp"
echo "setup-moto: done in $(( $(date +%s) - start )) s: $venv/bin/moto_server" >&2
