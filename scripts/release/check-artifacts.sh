#!/usr/bin/env bash
# `npx projen release:artifacts`: the npm tarball and the wheels in dist/ (the jsii one and the run package's) as a user
# meets them (scripts/release/check_artifacts.py, every file lib/ loads at synthesis included), with twine from the
# release venv.
set -euo pipefail
# shellcheck source=scripts/release/tools.sh
source "$(dirname "$0")/tools.sh"
ensure_python_tools
# The checks' own tests (they must fail on a tarball or wheel missing an asset, on a run wheel missing what it must
# ship), then the check.
"$RELEASE_VENV/bin/python" -m unittest discover -s "$release_root/scripts/release" -p 'test_check_artifacts.py'
ensure_wheel
exec "$RELEASE_VENV/bin/python" "$release_root/scripts/release/check_artifacts.py"
