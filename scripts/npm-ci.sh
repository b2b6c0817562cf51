#!/usr/bin/env bash
# `npm ci`, through the machine's tool cache (scripts/tool-cache.sh): the node_modules that `npm ci` makes from this
# package-lock.json is kept once per lockfile, Node.js, npm and platform, and a fresh clone gets it as hard links
# (cp -al: about 3 s, where `npm ci` takes 27 to 39 s and 31 s of CPU). On a miss, `npm ci`, then its tree is kept.
# Hard links are a speed-up only: where `cp -al` fails (macOS's cp has no -l, another file system), plain `npm ci`.
# The kept tree and every clone's node_modules share their files: nothing may rewrite a file of node_modules in
# place (npm itself replaces files, never rewrites them; a whole CI run writes nothing there). NPM_CI_NO_CACHE=1
# runs plain `npm ci`.
# Usage: bash scripts/npm-ci.sh [--cached-only | --check]   (node and npm on PATH)
#   --cached-only: link the kept tree if there is one, else install nothing and exit 3.
#   --check: fail if a file node_modules shares with the kept tree was written after the install (CI's last leg).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/tool-cache.sh
source "$root/scripts/tool-cache.sh"
if [ "${1:-}" = "--check" ]; then
  written="$(find node_modules -type f -links +1 -newer node_modules/.package-lock.json | head -20)"
  if [ -n "$written" ]; then
    echo "npm-ci: files of node_modules that the tool cache shares were written after the install (the kept tree is" >&2
    echo "changed too: rm -rf $TOOL_CACHE/node_modules-*):" >&2
    echo "$written" >&2
    exit 1
  fi
  echo "npm-ci: node_modules is as installed ($(find node_modules -type f -links +1 | wc -l) files shared with the tool cache)"
  exit 0
fi
cached_only=false
[ "${1:-}" = "--cached-only" ] && cached_only=true
name="node_modules-$(printf '%s\n' "$(node --version)" "$(npm --version)" "$(uname -sm)" "$(sha256_stdin < package-lock.json)" \
  | sha256_stdin | cut -c1-16)"
if [ -z "${NPM_CI_NO_CACHE:-}" ] && [ -f "$TOOL_CACHE/$name/.complete" ]; then
  rm -rf node_modules
  if cp -al "$TOOL_CACHE/$name/node_modules" node_modules 2> /dev/null; then
    echo "npm-ci: node_modules linked from $TOOL_CACHE/$name (npm ci of this package-lock.json)"
    exit 0
  fi
  rm -rf node_modules   # another file system than the clone's, or a cp without -l (macOS): `npm ci` below
fi
[ "$cached_only" = true ] && exit 3
npm ci --no-audit --no-fund
[ -n "${NPM_CI_NO_CACHE:-}" ] && exit 0
keep() { cp -al "$root/node_modules" "$TOOL_DIR/node_modules"; }
if cached_tool "$name" keep > /dev/null 2>&1; then
  echo "npm-ci: node_modules kept in $TOOL_CACHE/$name"
else
  echo "npm-ci: node_modules not kept (no hard links from $root to $TOOL_CACHE?)"
fi
# The trees of older lockfiles, beyond the three most recent, once no clone can be linking from them (an hour).
for old in $(ls -dt "$TOOL_CACHE"/node_modules-*/ 2> /dev/null | tail -n +4); do
  [ -n "$(find "$old" -maxdepth 0 -mmin +60)" ] && rm -rf "$old"
done
true
