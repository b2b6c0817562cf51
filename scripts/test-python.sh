#!/usr/bin/env bash
# The Python leg: installs the built wheel into a fresh virtualenv with the
# aws-cdk-lib and constructs versions the TypeScript build uses (with uv), and runs the
# pytest suite in test-python/ (which also executes the README's Python example).
#
# Usage: bash scripts/test-python.sh [--rebuild]
#   Uses dist/python/chronos_training_infra-*.whl; builds it (`npx projen package:python`)
#   when it is missing, older than .jsii, or with --rebuild.
#   PYTHON=python3.12 selects the interpreter (3.10+). Extra pytest arguments: PYTEST_ARGS="-k readme".
# Exits non-zero when any test fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

PATH="$(bash "$root/scripts/node-path.sh"):$PATH"
export PATH
# The jsii runtime spawns this node (the machine's may be too old).
JSII_NODE="$(command -v node)"
export JSII_NODE
# Tests expect an environment-agnostic stack: no account/region from a CDK CLI or the shell.
unset CDK_DEFAULT_ACCOUNT CDK_DEFAULT_REGION CDK_CONTEXT_JSON CDK_OUTDIR

PYTHON="${PYTHON:-python3}"
VENV="$root/.venv-python-test"
rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true

now() { node -p 'Date.now() / 1000'; }   # date +%s.%N is GNU-only
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t_start="$(now)"

# --- 1. The wheel -------------------------------------------------------------
t0="$(now)"
wheel="$(ls -t dist/python/chronos_training_infra-*.whl 2>/dev/null | head -n 1 || true)"
if [ -n "$wheel" ] && [ -f .jsii ] && [ .jsii -nt "$wheel" ]; then
  echo "test-python: $wheel is older than .jsii: rebuilding it"
  rebuild=true
fi
if [ -z "$wheel" ] || [ "$rebuild" = true ]; then
  # jsii-pacmak packs the project directory: never let a previous run's venv into the package.
  rm -rf "$VENV"
  [ -x node_modules/.bin/projen ] || npm ci --no-audit --no-fund
  [ -f .jsii ] || npx projen compile
  npx projen package:python
  wheel="$(ls -t dist/python/chronos_training_infra-*.whl | head -n 1)"
fi
t_wheel="$(elapsed "$t0")"
wheel_bytes="$(wc -c < "$wheel" | tr -d " ")"

# --- 2. A fresh virtualenv ------------------------------------------------------
t0="$(now)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "test-python: Python 3.10+ is required, found " + sys.version)'
cdk_version="$(node -p "require('./package.json').devDependencies['aws-cdk-lib']")"
constructs_version="$(node -p "require('./package.json').devDependencies.constructs")"
rm -rf "$VENV"
# uv (scripts/uv.sh): a fresh venv each run, its packages from uv's shared cache.
uv="$(bash "$root/scripts/uv.sh")"
UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "$(command -v "$PYTHON")" "$VENV"
"$uv" pip install --quiet --compile-bytecode --python "$VENV/bin/python" \
  "$wheel" "aws-cdk-lib==$cdk_version" "constructs==$constructs_version" -r test-python/requirements.txt
t_venv="$(elapsed "$t0")"

# --- 3. pytest ------------------------------------------------------------------
t0="$(now)"
rc=0
# shellcheck disable=SC2086 # PYTEST_ARGS is split on purpose
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest test-python -ra -p no:cacheprovider ${PYTEST_ARGS:-} || rc=$?
t_pytest="$(elapsed "$t0")"

echo "test-python: wheel $(basename "$wheel") $wheel_bytes bytes ($(awk -v b="$wheel_bytes" 'BEGIN { printf "%.1f", b / 1024 }') KB);" \
  "aws-cdk-lib==$cdk_version constructs==$constructs_version; $("$VENV/bin/python" --version), node $(node --version)"
echo "test-python: wall time ${t_wheel}s wheel + ${t_venv}s venv + ${t_pytest}s pytest = $(elapsed "$t_start")s"
exit "$rc"
