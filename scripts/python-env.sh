# shellcheck shell=bash
# Sourced: the project's Python virtualenvs, made with uv (scripts/uv.sh) from pinned requirements.
#
#   ensure_venv DIR [--seed] -- ARG ...   DIR is a venv with `uv pip install ARG ...` done (ARGs: requirements,
#                                         -r FILE, wheel paths); --seed: with pip in it. Prints nothing.
#
# The venv itself lives in the machine's tool cache (scripts/tool-cache.sh), one per distinct interpreter, uv and
# ARGs (with the content of the files they name), and DIR is a symlink to it: a fresh clone reuses a venv an earlier
# clone made. Its bytecode is compiled once, when it is made: the machine sets PYTHONDONTWRITEBYTECODE, and without
# it every checkov, cfn-lint or moto_server start compiled its modules again (cfn-lint and checkov over the
# integ templates: 16.4 s of CPU, 9.8 s with the bytecode).
# A venv in the cache is never changed after it is made: nothing may `pip install` into DIR.
#
# Safe to run concurrently (CI's lanes): one lock per venv in the cache, so a
# second caller waits for the first and then finds the venv made. PYTHON picks the interpreter (default python3).
_pyenv_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/tool-cache.sh
source "$_pyenv_root/scripts/tool-cache.sh"

# _make_venv SEED ARG ...: run by cached_tool with TOOL_DIR, the empty directory the venv is made in.
_make_venv() {
  local seed="$1" uv start=$SECONDS; shift
  uv="$(bash "$_pyenv_root/scripts/uv.sh")" || return 1
  # Never download a Python: the machine's interpreter only.
  UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --allow-existing $seed --python "$(command -v "${PYTHON:-python3}")" "$TOOL_DIR" &&
    "$uv" pip install --quiet --compile-bytecode --python "$TOOL_DIR/bin/python" "$@" &&
    echo "python-env: made $(basename "$TOOL_DIR") with uv in $((SECONDS - start)) s"
}

ensure_venv() {
  local dir="$1" seed=""; shift
  if [ "${1:-}" = "--seed" ]; then seed="--seed"; shift; fi
  [ "${1:-}" = "--" ] && shift
  local want a python cached
  python="$(command -v "${PYTHON:-python3}")"
  # The key: what makes the venv, with the clone's own path left out of the arguments (the files' content is in it).
  want="$(printf '%s\n' "$seed" "$python" "$("$python" -VV)" "$(bash "$_pyenv_root/scripts/uv.sh")"
    for a in "$@"; do printf '%s\n' "${a#"$_pyenv_root"/}"; [ -f "$a" ] && sha256_stdin < "$a"; done; true)"
  want="$(printf '%s' "$want" | sha256_stdin | cut -c1-16)"
  # Named by the key alone: links of two names to one set of packages share one venv.
  cached="$(cached_tool "venv-$want" _make_venv "$seed" "$@")" || return 1
  [ "$(readlink "$dir" 2> /dev/null)" = "$cached" ] && return 0
  # A venv made in the clone before the cache existed, or a link to an older one: replaced by the link, under a lock
  # of the clone's (a background prepare and a leg may both get here).
  mkdir -p "$_pyenv_root/.tools/locks"
  with_lock "$_pyenv_root/.tools/locks/$(basename "$dir").lock" _link_venv "$dir" "$cached"
}

_link_venv() {
  if [ "$(readlink "$1" 2> /dev/null)" != "$2" ]; then
    rm -rf "$1" && ln -s "$2" "$1"
  fi
}
