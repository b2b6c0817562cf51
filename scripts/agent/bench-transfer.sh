#!/usr/bin/env bash
# The agent's transfers beside `aws s3 cp` (AWS CLI v1 from PyPI, pinned, in a bench-only venv in the tool cache), the
# same files against the same S3 on loopback, in one run: a 2 GiB file, and 100 files of 20 MiB; upload, then restore.
# The S3 is test/agent/disk_s3.py (file-backed: moto reads a whole object for each ranged GET, which both tools make
# for large files). Each figure: RUNS runs (default 3) of each tool in turn, wall seconds by /usr/bin/time.
# Usage: bash scripts/agent/bench-transfer.sh [RUNS]      (writes under ${BENCH_DIR:-/tmp/chronos-bench-transfer})
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-3}"
AWSCLI_VERSION=1.46.2
# shellcheck source=scripts/tool-cache.sh
source "$root/scripts/tool-cache.sh"
uv="$(bash "$root/scripts/uv.sh")"
install_awscli() {
  "$uv" venv --quiet --python "${PYTHON:-python3}" "$TOOL_DIR"
  "$uv" pip install --quiet --python "$TOOL_DIR/bin/python" "awscli==$AWSCLI_VERSION"
}
aws="$(cached_tool "awscli-$AWSCLI_VERSION" install_awscli)/bin/aws"
py="${AGENT_PYTHON:-python3}"
work="${BENCH_DIR:-/tmp/chronos-bench-transfer}"
rm -rf "$work" && mkdir -p "$work/src/one" "$work/src/many" "$work/s3"
"$py" - "$work/src" <<'PY'
import os, sys
d = sys.argv[1]
block = os.urandom(1 << 20)
with open(os.path.join(d, "one", "model.pt"), "wb") as f:
    for i in range(2048):
        f.write(block[i % 97:] + block[:i % 97])
for n in range(100):
    with open(os.path.join(d, "many", "shard-%03d.pt" % n), "wb") as f:
        for i in range(20):
            f.write(block[(n + i) % 89:] + block[:(n + i) % 89])
PY
port_file="$work/port"
"$py" -c "
import sys, time; sys.path.insert(0, '$root/test/agent')
from disk_s3 import DiskS3
s = DiskS3('$work/s3'); open('$port_file', 'w').write(s.endpoint)
time.sleep(86400)" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
while [ ! -s "$port_file" ]; do sleep 0.2; done
export AWS_ENDPOINT_URL_S3="$(cat "$port_file")" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  AWS_DEFAULT_REGION=us-east-1 AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
mkdir -p "$work/s3/bench"
timed() {  # label, command...
  local label="$1"
  shift
  /usr/bin/time -o "$work/time" -f %e "$@" > /dev/null 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  echo "$label $(cat "$work/time")"
}
for i in $(seq "$runs"); do
  for set in one many; do
    rm -rf "$work/s3/bench" "$work/out" && mkdir -p "$work/s3/bench"
    timed "upload $set agent" "$py" "$root/scripts/agent/bench_transfer.py" upload "$work/src/$set" bench "a/"
    timed "upload $set aws-s3-cp" "$aws" s3 cp --recursive --quiet "$work/src/$set" "s3://bench/c/"
    timed "restore $set agent" "$py" "$root/scripts/agent/bench_transfer.py" download bench "a/" "$work/out/a"
    timed "restore $set aws-s3-cp" "$aws" s3 cp --recursive --quiet "s3://bench/c/" "$work/out/c"
    cmp -s <(cd "$work/out/a" && find . -type f -exec sha256sum {} + | sort) \
      <(cd "$work/out/c" && find . -type f -exec sha256sum {} + | sort) || { echo "restored copies differ" >&2; exit 1; }
  done
done
