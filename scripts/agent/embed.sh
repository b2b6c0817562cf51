#!/usr/bin/env bash
# The run agent's source is the Python run package's (chronos-training/src/chronos_training/agent/chronos_run_agent.py);
# the construct package embeds it in the launch template's user data at synthesis, from a copy inside its own npm
# tarball: assets/agent/chronos_run_agent.py (git-ignored, as the other build outputs in assets/ are). projen's
# `bundle` task runs this (bundle:agent, before compile and before the tests); scripts/test-agent.sh too.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$root/assets/agent"
cp "$root/chronos-training/src/chronos_training/agent/chronos_run_agent.py" "$root/assets/agent/chronos_run_agent.py.tmp"
mv "$root/assets/agent/chronos_run_agent.py.tmp" "$root/assets/agent/chronos_run_agent.py"
