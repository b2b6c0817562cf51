#!/usr/bin/env bash
# The start of the launcher command: the Python package's `chronos-training` (installed from its wheel into a fresh
# venv, as pip installs it, bytecode compiled), for `--help` (no AWS) and `status --env dev` (the foundation's SSM
# parameters and the environment's runs, from a moto server on loopback with a foundation of two runs); beside the
# old TypeScript launcher when OLD_CLI names its bundle (`chronos-training.js`, built with `npx projen bundle:cli` in a
# checkout before issue 28 removed it; docs/DEVELOPMENT.md has the figures of both).
#
# Usage: [OLD_CLI=path/to/chronos-training.js] bash scripts/bench/cli-start.sh [RUNS]    (default 7)
#        bash scripts/bench/cli-start.sh --serve   (sets up, prints the environment and the two commands, and keeps
#                                                   the moto server up until Ctrl-C: to time them with another tool)
# It prints, per command, the median and the range of the wall and CPU (user + sys) seconds of whole processes
# (time.perf_counter and getrusage(RUSAGE_CHILDREN), after one warm-up run). A benchmark, not a test: it asserts
# nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
# shellcheck source=scripts/python-env.sh
source "$root/scripts/python-env.sh"
uv="$(bash scripts/uv.sh)"
PATH="$(bash scripts/node-path.sh):$PATH"
export PATH
bash scripts/local/moto-venv.sh

work="$root/.tools/bench-cli"
rm -rf "$work" && mkdir -p "$work"
UV_PYTHON_DOWNLOADS=never "$uv" build --quiet --wheel --out-dir "$work/dist" chronos-training
UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --python "$(command -v "${PYTHON:-python3}")" "$work/venv"
# boto3 at the version the tests pin (scripts/local/requirements-moto.txt), compiled as pip compiles on install.
"$uv" pip install --quiet --compile-bytecode --python "$work/venv/bin/python" "$work"/dist/chronos_training-*.whl \
  -c scripts/local/requirements-moto.txt

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$root/.venv-moto/bin/moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto=$!
trap 'kill "$moto" 2> /dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing CHRONOS_CACHE_DIR="$work/cache"
unset AWS_PROFILE
for _ in $(seq 50); do curl -s -o /dev/null "$AWS_ENDPOINT_URL" && break; sleep 0.1; done
# A foundation, and two runs launched by the Python command itself.
"$work/venv/bin/python" - "$root/chronos-training/tests" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from moto_world import Recorded, make_foundation
import os
make_foundation(Recorded(os.environ["AWS_ENDPOINT_URL"]))
PY
mkdir -p "$work/code" && echo 'print("train")' > "$work/code/train.py"
for _ in 1 2; do
  "$work/venv/bin/chronos-training" run --env dev --dir "$work/code" --instance-types t3.micro --detach -- python train.py \
    > /dev/null 2>&1
done

py="$work/venv/bin/chronos-training"
node_cmd="${OLD_CLI:+node $OLD_CLI}"
if [ "${1:-}" = "--serve" ]; then
  echo "export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
  echo "python: $py --help | $py status --env dev"
  [ -z "$node_cmd" ] || echo "node:   $node_cmd --help | $node_cmd status --env dev"
  echo "moto server up (pid $moto); Ctrl-C ends it"
  wait "$moto"
  exit 0
fi
runs="${1:-7}"
python3 - "$runs" "$py" "$node_cmd" <<'PY'
import resource, shlex, statistics, subprocess, sys, time
runs, py, node = int(sys.argv[1]), sys.argv[2], shlex.split(sys.argv[3])
def measure(argv):
    walls, cpus = [], []
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.exit("%s failed: %s" % (" ".join(argv), done.stderr.decode()))
        if i:  # the first run warms the caches
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus
print("%-44s %22s %22s" % ("command (%d runs each)" % runs, "wall s median (range)", "cpu s median (range)"))
for name, argv in [("python chronos-training --help", [py, "--help"]),
                   ("node chronos-training.js --help", node + ["--help"]),
                   ("python chronos-training status --env dev", [py, "status", "--env", "dev"]),
                   ("node chronos-training.js status --env dev", node + ["status", "--env", "dev"])]:
    if name.startswith("node") and not node:  # no OLD_CLI
        continue
    w, c = measure(argv)
    print("%-44s %8.3f (%.3f-%.3f) %8.3f (%.3f-%.3f)" % (name, statistics.median(w), min(w), max(w),
                                                         statistics.median(c), min(c), max(c)))
PY
