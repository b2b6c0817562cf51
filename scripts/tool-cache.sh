# shellcheck shell=bash
# Sourced: the machine's cache of the project's pinned tools, outside any clone, so that a fresh clone (CI's) reuses
# what an earlier one made, as it reuses npm's and uv's download caches. One directory per tool and exact version
# (or hash of its pinned inputs); what the project's scripts install goes there, never into a clone's node_modules.
#
#   TOOL_CACHE                     ${CHRONOS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chronos-training}
#   cached_tool NAME CMD [ARG ...]  prints $TOOL_CACHE/NAME after making it: the first time (or after a failed
#                                  attempt) CMD runs with TOOL_DIR=$TOOL_CACHE/NAME, an empty directory to fill in
#                                  place (venvs are not relocatable), and the directory counts as made only once CMD
#                                  succeeds (a .complete file). One flock per NAME: a second caller (another clone,
#                                  a background prepare) waits, then finds it made. CMD's output goes to stderr.
#
# Nothing here is removed automatically: a tool's old versions stay until `rm -rf "$TOOL_CACHE"`.
TOOL_CACHE="${CHRONOS_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chronos-training}"

cached_tool() {
  local name="$1"; shift
  local dir="$TOOL_CACHE/$name"
  if [ ! -f "$dir/.complete" ]; then
    mkdir -p "$TOOL_CACHE/locks"
    (
      flock 9
      if [ ! -f "$dir/.complete" ]; then
        rm -rf "$dir" && mkdir -p "$dir"
        TOOL_DIR="$dir" "$@" >&2 || exit 1
        touch "$dir/.complete"
      fi
    ) 9> "$TOOL_CACHE/locks/$name.lock" || { echo "tool-cache: could not make $dir" >&2; return 1; }
  fi
  echo "$dir"
}
