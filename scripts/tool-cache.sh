# shellcheck shell=bash
# Sourced: the machine's cache of the project's pinned tools, outside any clone, so that a fresh clone (CI's) reuses
# what an earlier one made, as it reuses npm's and uv's download caches. One directory per tool and exact version
# (or hash of its pinned inputs); what the project's scripts install goes there, never into a clone's node_modules.
#
#   TOOL_CACHE                     ${CHRONOS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chronos-training}
#   cached_tool NAME CMD [ARG ...]  prints $TOOL_CACHE/NAME after making it: the first time (or after a failed
#                                  attempt) CMD runs with TOOL_DIR=$TOOL_CACHE/NAME, an empty directory to fill in
#                                  place (venvs are not relocatable), and the directory counts as made only once CMD
#                                  succeeds (a .complete file). One lock per NAME (with_lock): a second caller (another clone,
#                                  a background prepare) waits, then finds it made. CMD's output goes to stderr.
#
# Nothing here is removed automatically: a tool's old versions stay until `rm -rf "$TOOL_CACHE"`.
TOOL_CACHE="${CHRONOS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chronos-training}"

# Portable helpers (the build runs on macOS and Linux with Node.js; the Linux-only tools are speed-ups, never needed):
#   sha256_stdin                   prints "HASH  -" for stdin, as sha256sum does (sha256sum, else shasum -a 256, else
#                                  Node.js), so the cache's keys are the same on every machine
#   sha256_files FILE ...          "HASH  FILE" per file, as sha256sum FILE ... prints
#   with_lock FILE CMD [ARG ...]   runs CMD (a command or a shell function) holding an exclusive lock on FILE: flock
#                                  where it exists (Linux), else a lock directory FILE.d made with mkdir (atomic
#                                  everywhere), taken over when the process that made it is gone
sha256_stdin() {
  if command -v sha256sum > /dev/null 2>&1; then sha256sum
  elif command -v shasum > /dev/null 2>&1; then shasum -a 256
  else node -e "const h = require('crypto').createHash('sha256'); process.stdin.on('data', d => h.update(d)).on('end', () => console.log(h.digest('hex') + '  -'))"
  fi
}

# sha256_files FILE ...: "HASH  FILE" per file, as `sha256sum FILE ...` prints.
sha256_files() {
  if command -v sha256sum > /dev/null 2>&1; then sha256sum "$@"; return; fi
  local f
  for f in "$@"; do printf '%s  %s\n' "$(sha256_stdin < "$f" | cut -c1-64)" "$f"; done
}

with_lock() {
  local file="$1"; shift
  if command -v flock > /dev/null 2>&1; then
    ( flock 9 && "$@" ) 9> "$file"
    return
  fi
  local dir="$file.d" owner
  until mkdir "$dir" 2> /dev/null; do
    owner="$(cat "$dir/pid" 2> /dev/null || true)"
    # The holder is gone (killed before it could remove the directory): take the lock over.
    if [ -n "$owner" ] && ! kill -0 "$owner" 2> /dev/null; then rm -rf "$dir"; continue; fi
    sleep 0.2
  done
  echo "$$" > "$dir/pid"
  local rc=0
  ( "$@" ) || rc=$?
  rm -rf "$dir"
  return "$rc"
}

_cached_tool_make() {
  local dir="$1"; shift
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    TOOL_DIR="$dir" "$@" >&2 || return 1
    touch "$dir/.complete"
  fi
}

cached_tool() {
  local name="$1"; shift
  local dir="$TOOL_CACHE/$name"
  if [ ! -f "$dir/.complete" ]; then
    mkdir -p "$TOOL_CACHE/locks"
    with_lock "$TOOL_CACHE/locks/$name.lock" _cached_tool_make "$dir" "$@" \
      || { echo "tool-cache: could not make $dir" >&2; return 1; }
  fi
  echo "$dir"
}
