#!/usr/bin/env bash
# The agent's slow scenarios (test/agent/test_dcp.py, test/agent/test_large.py): the real torch.distributed.checkpoint
# (torch from scripts/agent/torch-venv.sh, cached in the machine's tool cache) and a 6 GiB checkpoint file through a
# spot interruption. CI runs it as its own leg (`npx projen test:agent:slow`); it prints its wall time.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
start=$SECONDS
TORCH_PYTHON="$(bash "$root/scripts/agent/torch-venv.sh")"
export TORCH_PYTHON CHRONOS_SLOW_TESTS=1
echo "test-agent-slow: torch ready in $((SECONDS - start)) s ($TORCH_PYTHON)" >&2
AGENT_TEST_WORKERS="${AGENT_TEST_WORKERS:-2}" bash "$root/scripts/test-agent.sh" "$root/test/agent/test_dcp.py" \
  "$root/test/agent/test_large.py" "$@"
echo "test-agent-slow: $((SECONDS - start)) s wall" >&2
