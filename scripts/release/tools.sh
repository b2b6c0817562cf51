# Sourced by the release scripts: pinned release tools, installed on first use from the npm
# registry and PyPI into the machine's tool cache (scripts/tool-cache.sh).
#   verdaccio-*/        verdaccio (a loopback npm registry) and publib (the release's publish commands)
#   .venv-release/      pypiserver (a loopback Python index) and twine (what publib-pypi runs), made with uv
# shellcheck shell=bash
VERDACCIO_VERSION=6.10.4
NODE_FETCH_VERSION=2.7.0   # verdaccio 6.10.4 asks for node-fetch@cjs, a dist-tag the registry does not serve
PUBLIB_VERSION=0.2.1061    # = jsiiReleaseVersion in .projenrc.ts
PYPISERVER_VERSION=2.4.2
TWINE_VERSION=6.1.0        # publib-pypi installs "twine<6.2.0"

release_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/python-env.sh
source "$release_root/scripts/python-env.sh"
# In the machine's tool cache (scripts/tool-cache.sh, sourced by python-env.sh), made once.
VERDACCIO_DIR="$TOOL_CACHE/verdaccio-$VERDACCIO_VERSION-publib-$PUBLIB_VERSION-node-fetch-$NODE_FETCH_VERSION"
RELEASE_VENV="$release_root/.venv-release"

_install_npm_tools() {
  cat > "$TOOL_DIR/package.json" <<JSON
{ "private": true,
  "dependencies": { "verdaccio": "$VERDACCIO_VERSION", "publib": "$PUBLIB_VERSION" },
  "overrides": { "node-fetch": "$NODE_FETCH_VERSION" } }
JSON
  (cd "$TOOL_DIR" && npm install --no-audit --no-fund --loglevel=error)
}
ensure_npm_tools() {
  cached_tool "$(basename "$VERDACCIO_DIR")" _install_npm_tools > /dev/null
}

ensure_python_tools() {
  ensure_venv "$RELEASE_VENV" -- "pypiserver==$PYPISERVER_VERSION" "twine==$TWINE_VERSION"
}

# This build's wheels in dist/python/ (with CI=true, projen's build packs only the npm tarball): the jsii wheel and the
# run package's (package:python spawns package:run-package, scripts/release/package-run.sh).
ensure_wheel() {
  if ! compgen -G "$release_root/dist/python/chronos_training_infra-*.whl" > /dev/null; then
    (cd "$release_root" && npx projen package:python >&2)
  elif ! compgen -G "$release_root/dist/python/chronos_training-[0-9]*.whl" > /dev/null; then
    (cd "$release_root" && npx projen package:run-package >&2)
  fi
}

# The rehearsal's Python peers and test requirements (rehearsal.sh, step 4: aws-cdk-lib and constructs as
# package.json pins them, and test-python/requirements.txt): LINK becomes a venv of the tool cache (python-env.sh).
ensure_python_peers() {
  local link="$1" requirements="${2:-$release_root/test-python/requirements.txt}" cdk constructs
  cdk="$(node -p "require('$release_root/package.json').devDependencies['aws-cdk-lib']")"
  constructs="$(node -p "require('$release_root/package.json').devDependencies.constructs")"
  ensure_venv "$link" -- "aws-cdk-lib==$cdk" "constructs==$constructs" -r "$requirements"
}
