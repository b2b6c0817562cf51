#!/usr/bin/env bash
# `npx projen release:artifacts`: the npm tarball and the wheel in dist/ as a user meets them
# (scripts/release/check_artifacts.py, every file lib/ loads at synthesis included), with twine from the release venv.
set -euo pipefail
# shellcheck source=scripts/release/tools.sh
source "$(dirname "$0")/tools.sh"
ensure_python_tools
# The synthesis-asset check's own test (it must fail on a tarball or wheel missing an asset), then the check.
"$RELEASE_VENV/bin/python" -m unittest discover -s "$release_root/scripts/release" -p 'test_check_artifacts.py'
ensure_wheel
exec "$RELEASE_VENV/bin/python" "$release_root/scripts/release/check_artifacts.py"
