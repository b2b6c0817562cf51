#!/usr/bin/env bash
# The run package's suite (chronos-training/tests/): the Python launcher and API against moto (in process, and a moto
# server on loopback for the installed command), offline.
#
# 1. The test dependencies (chronos-training/requirements-test.txt, constrained by scripts/local/requirements-moto.txt)
#    come from a pinned venv in the machine's tool cache (scripts/python-env.sh), made once, bytecode compiled.
# 2. The package is built by its own build backend (uv build: an sdist, then the wheel from the sdist, as an installer
#    that gets the sdist from PyPI would build it) and the wheel installed, without its dependencies, into a fresh venv
#    of this run, which sees the pinned venv's packages through a .pth file: the tests run the wheel as a
#    user installs it (its console script, the agent it carries), never the source tree.
# Usage: bash scripts/test-run-package.sh [PYTEST ARGS...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$SECONDS
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
uv="$(bash scripts/uv.sh)"
ensure_venv "$root/.venv-run-package-deps" -- -r "$root/chronos-training/requirements-test.txt" \
  -c "$root/scripts/local/requirements-moto.txt"
deps="$root/.venv-run-package-deps"

work="$root/.tools/run-package"
rm -rf "$work" && mkdir -p "$work"
UV_PYTHON_DOWNLOADS=never "$uv" build --quiet --out-dir "$work/dist" chronos-training
wheel="$(ls "$work"/dist/chronos_training-*.whl)"
UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "$deps/bin/python" "$work/venv"
"$uv" pip install --quiet --no-deps --python "$work/venv/bin/python" "$wheel"
site="$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/run-package-deps.pth"
echo "test-run-package: $(basename "$wheel") ($(wc -c < "$wheel" | tr -d " ") bytes) in a fresh venv, $((SECONDS - start)) s"

rc=0
(cd chronos-training && PYTHONDONTWRITEBYTECODE=1 "$work/venv/bin/python" -m pytest tests -p no:cacheprovider -ra "$@") || rc=$?
echo "test-run-package: $((SECONDS - start)) s wall"
exit "$rc"
