#!/usr/bin/env bash
# `npx projen package:run-package`, spawned by package:python (so by package-all, and by the hosted release_pypi job):
# the run package chronos-training/ (PyPI `chronos-training`) built by its own build backend (hatchling) with the
# project's pinned uv (scripts/uv.sh): its sdist, then its wheel from that sdist, into dist/python/ beside the jsii
# wheel. Its version is the construct package's (hatchling reads the root package.json, which the release has bumped
# by then), and publib-pypi uploads every file in dist/python/ (`twine upload *`), so both packages go to PyPI at one
# version. scripts/release/check_artifacts.py checks the wheel.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
uv="$(bash "$root/scripts/uv.sh")"
out="$root/dist/python"
mkdir -p "$out"
# Only this package's files (chronos_training-X...): the jsii package's are chronos_training_infra-X...
rm -f "$out"/chronos_training-[0-9]*
UV_PYTHON_DOWNLOADS=never "$uv" build --quiet --out-dir "$out" "$root/chronos-training"
ls "$out"/chronos_training-[0-9]* | sed 's|.*/|package:run-package: |'
