#!/usr/bin/env bash
# `npx projen release:artifacts`: the npm tarball and the wheel in dist/ as a user meets them
# (scripts/release/check_artifacts.py), with twine from the release venv.
set -euo pipefail
# shellcheck source=scripts/release/tools.sh
source "$(dirname "$0")/tools.sh"
ensure_python_tools
ensure_wheel
exec "$RELEASE_VENV/bin/python" "$release_root/scripts/release/check_artifacts.py"
