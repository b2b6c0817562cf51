# shellcheck shell=bash
# Sourced: the project's Python virtualenvs, made with uv (scripts/uv.sh) from pinned requirements.
#
#   ensure_venv DIR [--seed] -- ARG ...   DIR is a venv with `uv pip install ARG ...` done (ARGs: requirements,
#                                         -r FILE, wheel paths); kept while the ARGs and the files they name are
#                                         unchanged (a stamp in DIR), else made anew. --seed: with pip in it.
#
# Safe to run concurrently (scripts/prepare.sh makes them in the background): one flock per venv, so a second
# caller waits for the first and then finds the venv made. PYTHON picks the interpreter (default python3).
_pyenv_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ensure_venv() {
  local dir="$1" seed=""; shift
  if [ "${1:-}" = "--seed" ]; then seed="--seed"; shift; fi
  [ "${1:-}" = "--" ] && shift
  local want a
  want="$(printf '%s\n' "$seed" "${PYTHON:-python3}" "$@"; for a in "$@"; do [ -f "$a" ] && sha256sum "$a"; done; true)"
  want="$(printf '%s' "$want" | sha256sum | cut -d' ' -f1)"
  mkdir -p "$_pyenv_root/.tools/locks"
  (
    flock 9
    if [ "$(cat "$dir/.installed-sha256" 2>/dev/null)" != "$want" ]; then
      local uv start=$SECONDS
      uv="$(bash "$_pyenv_root/scripts/uv.sh")"
      rm -rf "$dir"
      # Never download a Python: the machine's interpreter only.
      UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet $seed --python "$(command -v "${PYTHON:-python3}")" "$dir" >&2
      "$uv" pip install --quiet --python "$dir/bin/python" "$@" >&2
      echo "$want" > "$dir/.installed-sha256"
      echo "python-env: made $(basename "$dir") with uv in $((SECONDS - start)) s" >&2
    fi
  ) 9> "$_pyenv_root/.tools/locks/$(basename "$dir").lock"
}
