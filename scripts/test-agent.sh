#!/usr/bin/env bash
# The run agent's suite (test/agent/): the agent as a real process against moto server (S3) and AWS's
# amazon-ec2-metadata-mock (IMDSv2), both on 127.0.0.1, offline. Scenarios run side by side (pytest-xdist).
# Usage: bash scripts/test-agent.sh [PYTEST ARGS...]   (AGENT_TEST_WORKERS=N sets the parallelism, default 4)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start=$SECONDS
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
bash scripts/local/moto-venv.sh &
moto_pid=$!
ensure_venv "$root/.venv-agent-test" -- -r "$root/test/agent/requirements.txt" -c "$root/scripts/local/requirements-moto.txt"
wait "$moto_pid"
AEMM="$(bash scripts/agent/aemm.sh)"
export AEMM
# The agent runs under Python 3.9, its oldest (Amazon Linux 2023's python3): uv installs one if the machine has none.
# In CI (CI=true) the scenarios must run under it: without one this fails here, and test_agent_runs_under_python_3_9
# fails if they ran under another.
if AGENT_PYTHON="$(bash scripts/agent/python39.sh)"; then
  export AGENT_PYTHON
elif [ "${CI:-}" = true ]; then
  echo "test-agent: no Python 3.9 (scripts/agent/python39.sh), and CI=true requires the agent's scenarios under it" >&2
  exit 1
else
  echo "test-agent: no Python 3.9 here: the scenarios run the agent under the test venv's Python" >&2
fi
PATH="$(bash scripts/node-path.sh):$PATH"
export PATH
export MOTO_SERVER="$root/.venv-moto/bin/moto_server"
# One moto server for every pytest worker (each test has a bucket of its own): it starts once, while pytest does.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$MOTO_SERVER" -H 127.0.0.1 -p "$port" > /dev/null 2>&1 &
moto=$!
trap 'kill "$moto" 2> /dev/null || true' EXIT
export MOTO_ENDPOINT="http://127.0.0.1:$port"
rc=0
PYTHONDONTWRITEBYTECODE=1 "$root/.venv-agent-test/bin/python" -m pytest test/agent -p no:cacheprovider -ra \
  -n "${AGENT_TEST_WORKERS:-4}" "$@" || rc=$?
echo "test-agent: $((SECONDS - start)) s wall"
exit "$rc"
