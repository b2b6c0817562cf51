#!/usr/bin/env bash
# The run agent's source is the Python run package's (chronos-training/src/chronos_training/agent/chronos_run_agent.py);
# the construct package embeds it in the launch template's user data at synthesis, from a copy inside its own npm
# tarball: assets/agent/chronos_run_agent.py (git-ignored, as the other build outputs in assets/ are). projen's
# `bundle` task runs this (bundle:agent, before compile and before the tests); scripts/test-agent.sh too.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/chronos-training/src/chronos_training/agent/chronos_run_agent.py"
dst="$root/assets/agent/chronos_run_agent.py"
mkdir -p "$root/assets/agent"
# CI's lanes run this from several legs at once: a current copy is left alone, and each writer renames a temporary
# file of its own into place (a rename is atomic), so no reader sees a partial copy and no writer loses its file.
cmp -s "$src" "$dst" && exit 0
tmp="$(mktemp "$dst.XXXXXX")"
cp "$src" "$tmp" && chmod 644 "$tmp"
mv -f "$tmp" "$dst"
