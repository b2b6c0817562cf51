"""A 6 GiB checkpoint file through a spot interruption, restored whole (issue 30): a sparse file (`truncate -s 6G`) with
a few bytes written at known offsets goes to S3 in a multipart upload (parts side by side) while the command runs; the
spot notice drains the attempt; the next one restores it in ranged GETs, and its SHA-256 is the original's. Slow (about
a minute; 12 GiB of disk written): run by `npx projen test:agent:slow` (CHRONOS_SLOW_TESTS=1). The S3 is disk_s3.py
(moto reads a whole object for each ranged GET; see there)."""
import hashlib
import json
import os
import sys
import time

import pytest
from conftest import ENV_NAME, FakeImds, spot_drain
from disk_s3 import DiskS3

pytestmark = pytest.mark.skipif(os.environ.get("CHRONOS_SLOW_TESTS") != "1", reason="slow: CHRONOS_SLOW_TESTS=1")
SIZE = 6 << 30
MARKS = {0: b"head", 3 * (1 << 30) + 7: b"middle", SIZE - 4: b"tail"}

SCRIPT = """import hashlib, os, signal, sys, time
d = os.environ["CHRONOS_CHECKPOINT_DIR"]
path = os.path.join(d, "model.pt")
if os.environ["CHRONOS_RESUMED"] == "1":
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 24), b""):
            h.update(b)
    print("sha256 %s size %d" % (h.hexdigest(), os.path.getsize(path)))
    sys.exit(0)
with open(path + ".tmp", "wb") as f:
    f.truncate(SIZE)
    for at, data in MARKS.items():
        f.seek(at)
        f.write(data)
os.replace(path + ".tmp", path)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
while True:
    time.sleep(0.1)
""".replace("SIZE", str(SIZE)).replace("MARKS", repr(MARKS))


def expected_sha():
    h, zeros, at = hashlib.sha256(), bytes(1 << 24), 0
    for mark, data in sorted(MARKS.items()):
        while at < mark:
            n = min(mark - at, len(zeros))
            h.update(zeros[:n])
            at += n
        h.update(data)
        at += len(data)
    while at < SIZE:
        n = min(SIZE - at, len(zeros))
        h.update(zeros[:n])
        at += n
    return h.hexdigest()


def test_a_6_gib_checkpoint_file_survives_a_spot_interruption_and_restores_whole(make_run, tmp_path):
    run = make_run()
    s3 = DiskS3(str(tmp_path / "s3"))
    script = str(tmp_path / "big.py")
    with open(script, "w") as f:
        f.write(SCRIPT)

    def read(key):
        path = s3.path(run.bucket, key)
        return json.load(open(path)) if os.path.exists(path) else None

    def put_spec():
        path = s3.path(run.bucket, "%s/runs/%s/spec.json" % (ENV_NAME, run.run_id))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"schemaVersion": 1, "runId": run.run_id, "environment": ENV_NAME, "command": [sys.executable, script],
                       "maxRunLifetimeSeconds": 900, "checkpointIntervalSeconds": 2, "logFlushSeconds": 1,
                       "stopGraceSeconds": 5, "controlPollSeconds": 1, "createdAt": "2026-12-01T00:00:00Z"}, f)
    status_key = "%s/runs/%s/status.json" % (ENV_NAME, run.run_id)
    imds = FakeImds({"tags/instance/ChronosRunId": (200, run.run_id), "tags/instance/ChronosAttempt": (200, "1"),
                     "instance-life-cycle": (200, "spot")})
    imds2 = FakeImds({"tags/instance/ChronosRunId": (200, run.run_id), "tags/instance/ChronosAttempt": (200, "2"),
                      "instance-life-cycle": (200, "on-demand")})
    try:
        put_spec()
        agent = run.start_agent(run.env(imds, s3_endpoint=s3.endpoint))
        deadline = time.time() + 600
        while not ((read(status_key) or {}).get("lastCheckpoint") or {}).get("manifestKey"):
            assert time.time() < deadline and agent.poll() is None, run.output(agent)
            time.sleep(1)
        manifest = read(read(status_key)["lastCheckpoint"]["manifestKey"])
        assert [(f["path"], f["size"]) for f in manifest["files"]] == [("model.pt", SIZE)]
        spot_drain(run, agent, imds, 60)
        assert read(status_key)["state"] == "interrupted", run.output(agent)
        assert os.listdir(os.path.join(s3.root, ".uploads")) == []  # every multipart upload completed or aborted
        p = run.agent(run.env(imds2, s3_endpoint=s3.endpoint, home="home2"), timeout=600)
        assert p.returncode == 0, run.output(p)
        assert read(status_key)["state"] == "succeeded", run.output(p)
        out = run.output(p)
        print("\n".join(line for line in out.splitlines() if "MiB in" in line))
        assert "sha256 %s size %d" % (expected_sha(), SIZE) in out, out
    finally:
        imds.close()
        imds2.close()
        s3.close()
