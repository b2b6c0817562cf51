# Sourced by the release scripts: pinned release tools, installed on first use from the npm
# registry and PyPI into gitignored directories.
#   .tools/verdaccio/   verdaccio (a loopback npm registry) and publib (the release's publish commands)
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
VERDACCIO_DIR="$release_root/.tools/verdaccio"
RELEASE_VENV="$release_root/.venv-release"

ensure_npm_tools() {
  local want="verdaccio@$VERDACCIO_VERSION publib@$PUBLIB_VERSION"
  mkdir -p "$release_root/.tools/locks"
  (
    flock 9
    if [ "$(cat "$VERDACCIO_DIR/.installed" 2>/dev/null)" != "$want" ]; then
      rm -rf "$VERDACCIO_DIR" && mkdir -p "$VERDACCIO_DIR"
      cat > "$VERDACCIO_DIR/package.json" <<JSON
{ "private": true,
  "dependencies": { "verdaccio": "$VERDACCIO_VERSION", "publib": "$PUBLIB_VERSION" },
  "overrides": { "node-fetch": "$NODE_FETCH_VERSION" } }
JSON
      (cd "$VERDACCIO_DIR" && npm install --no-audit --no-fund --loglevel=error >&2)
      echo "$want" > "$VERDACCIO_DIR/.installed"
    fi
  ) 9> "$release_root/.tools/locks/verdaccio.lock"
}

ensure_python_tools() {
  ensure_venv "$RELEASE_VENV" -- "pypiserver==$PYPISERVER_VERSION" "twine==$TWINE_VERSION"
}

# This build's wheel in dist/python/ (with CI=true, projen's build packs only the npm tarball).
ensure_wheel() {
  if ! compgen -G "$release_root/dist/python/*.whl" > /dev/null; then
    (cd "$release_root" && npx projen package:python >&2)
  fi
}
