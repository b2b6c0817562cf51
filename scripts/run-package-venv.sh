#!/usr/bin/env bash
# The `chronos-training` command as a user installs it, for the local run loop and the end-to-end tests: the run
# package's wheel (built from chronos-training/ by its own build backend, uv build) installed without its
# dependencies into a venv of the machine's tool cache (scripts/tool-cache.sh) that sees boto3, pinned as the tests
# pin it (scripts/local/requirements-moto.txt), through a .pth file to a venv made by scripts/python-env.sh. The venv
# is keyed by the package's files (source, pyproject.toml, README), the version in package.json, the interpreter, uv
# and that boto3 venv: it is made once per change of the package (a few seconds) and reused after.
# Prints the venv's directory (its bin/chronos-training is the command); .venv-chronos-training links to it.
# Usage: bash scripts/run-package-venv.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
uv="$(bash scripts/uv.sh)"
ensure_venv "$root/.venv-chronos-training-deps" -- boto3 -c "$root/scripts/local/requirements-moto.txt"
deps="$(cd "$root/.venv-chronos-training-deps" && pwd -P)"
key="$({
  "$deps/bin/python" -VV; echo "$uv $deps"
  grep -m1 '"version"' package.json
  find chronos-training/pyproject.toml chronos-training/README.md chronos-training/src -type f ! -path '*/__pycache__/*' \
    -print0 | sort -z | xargs -0 bash -c 'source scripts/tool-cache.sh && sha256_files "$@"' _
} | sha256_stdin | cut -c1-16)"

_make_run_package_venv() {
  UV_PYTHON_DOWNLOADS=never "$uv" build --quiet --wheel --out-dir "$TOOL_DIR/dist" "$root/chronos-training" &&
    UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "$deps/bin/python" "$TOOL_DIR/venv" &&
    "$uv" pip install --quiet --no-deps --compile-bytecode --python "$TOOL_DIR/venv/bin/python" "$TOOL_DIR"/dist/*.whl &&
    "$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > \
      "$("$TOOL_DIR/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/chronos-training-deps.pth"
}
cached="$(cached_tool "run-package-$key" _make_run_package_venv)"
ln -sfn "$cached/venv" "$root/.venv-chronos-training"
echo "$cached/venv"
