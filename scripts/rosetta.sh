#!/usr/bin/env bash
# post-compile's `jsii-rosetta extract --strict`: every TypeScript example (README blocks, @example doc comments)
# compiled against the built assembly and translated, into the tablet .jsii.tabl.json. rosetta reuses a
# translation from its cache only when the snippet, its fixture and the type definitions it references are unchanged
# (jsii-rosetta's --cache): the cache is kept in the machine's tool cache (scripts/tool-cache.sh), so a fresh clone
# compiles only the examples a change touched (1 s of CPU instead of 20). One run at a time (with_lock): the cache is a
# file that rosetta rewrites. The translated examples still run: the Python suite (test-python/) and
# scripts/consumer-check.js execute the README's examples from the tablet.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/tool-cache.sh
source "$root/scripts/tool-cache.sh"
dir="$TOOL_CACHE/rosetta"
mkdir -p "$dir"
cache="$dir/$(node -p "require('./package.json').name.replace(/\\W+/g, '_')").tabl.json"
with_lock "$dir/.lock" "$root/node_modules/.bin/jsii-rosetta" extract --strict --cache "$cache" "$@"
