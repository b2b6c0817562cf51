#!/usr/bin/env bash
# .venv-moto/: moto_server from the pinned requirements-moto.txt (PyPI, no Docker), made with uv
# (scripts/python-env.sh); a no-op while it is current. Needs Python 3.11+.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
"${PYTHON:-python3}" -c 'import sys; sys.exit("moto needs Python 3.11+" if sys.version_info < (3, 11) else 0)'
ensure_venv "$root/.venv-moto" -- -r "$root/scripts/local/requirements-moto.txt"
