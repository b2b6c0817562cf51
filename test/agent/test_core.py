"""The run agent's drain, checkpoint, restore and lifetime code in process, against an in-memory S3 (FakeS3 below, the
interface of the agent's S3 class): fast enough for mutation testing (`npm run mutation`, scripts/mutation/run.sh),
which runs these tests against each mutant of those functions. The behaviour is docs/RUNS.md's; the scenarios
(test_scenarios.py, test_regressions.py) check the same against moto and amazon-ec2-metadata-mock."""
import importlib.util
import json
import os
import sys
import threading
import time

import pytest

from conftest import AGENT

# Named as its path from the repository's root: mutmut's trampolines pick the mutant by the module's name.
spec = importlib.util.spec_from_file_location("agent.chronos_run_agent", AGENT)
agent = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agent)

ENV, RUN = "dev", "run-20261201-000000-abcdef"
CK = "%s/checkpoints/%s/" % (ENV, RUN)


class FakeS3:
    """The agent's S3 interface over a dict {key: bytes}; `down` makes every call raise OSError (S3 unreachable)."""

    def __init__(self):
        self.objects, self.down, self.puts, self.gets, self.deadlines, self.cancels = {}, False, [], [], {}, {}

    def _check(self):
        if self.down:
            raise OSError("PUT s3://b/k: connection refused (3 tries)")

    def call(self, method, key="", query=(), body=None, size=0, sink=None, deadline=None, cancel=None):
        self.deadlines[key], self.cancels[key] = deadline, cancel
        self._check()
        if cancel and cancel.is_set():  # as the S3 class: a drain stops the upload in flight
            raise agent.Aborted("upload stopped")
        assert method == "PUT"
        if hasattr(body, "read"):  # a file, from the agent's own S3.put_file
            body = body.read()
        self.objects[key] = body
        self.puts.append(key)
        return 200, b""

    def get(self, key, deadline=None):
        self.deadlines[key] = deadline
        self.gets.append(key)
        self._check()
        return self.objects.get(key)

    def get_json(self, key, deadline=None):
        data = self.get(key, deadline)
        try:
            return None if data is None else json.loads(data.decode())
        except ValueError as e:  # as the agent's S3.get_json
            raise agent.Fatal("s3://b/%s is not valid JSON: %s" % (key, e))

    def put_json(self, key, doc, deadline=None):
        self.call("PUT", key, body=json.dumps(doc).encode(), deadline=deadline)

    def put_file(self, key, path, deadline=None, cancel=None):  # the agent's own (one PUT up to THRESHOLD), over call()
        return agent.S3.put_file(self, key, path, deadline, cancel)

    def delete(self, keys, deadline=None):
        self._check()
        self.deleted = getattr(self, "deleted", []) + list(keys)
        for k in keys:
            self.objects.pop(k, None)

    def get_file(self, key, path, size=None):
        self._check()
        if key not in self.objects:
            raise agent.Fatal("s3://b/%s is missing" % key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(self.objects[key])

    def list(self, prefix):
        self._check()
        return sorted((k, len(v)) for k, v in self.objects.items() if k.startswith(prefix))


@pytest.fixture
def make_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOS_HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("CHRONOS_MAX_RUN_LIFETIME_SECONDS", raising=False)
    monkeypatch.setattr(agent, "LOG", [])
    lines = []
    monkeypatch.setattr(agent, "log", lines.append)

    def make(mode="run"):
        a = agent.Agent(mode)
        for d in a.dirs.values():
            os.makedirs(d, exist_ok=True)
        a.s3, a.env, a.run_id, a.attempt, a.bucket = FakeS3(), ENV, RUN, 1, "b"
        a.run_prefix, a.ck_prefix = "%s/runs/%s/" % (ENV, RUN), CK
        lines.clear()  # the log of the agent made last
        a.lines = lines
        return a
    return make


def write(a, rel, data, where="checkpoints"):
    path = os.path.join(a.dirs[where], rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def put_checkpoint(s3, seq, files, sizes=None):
    """A checkpoint as the agent writes it: data/{seq}/{path}, then manifests/{seq}.json with each file's size."""
    entries = []
    for path, data in sorted(files.items()):
        key = "%sdata/%010d/%s" % (CK, seq, path)
        s3.objects[key] = data
        entries.append({"path": path, "key": key, "size": (sizes or {}).get(path, len(data))})
    key = "%smanifests/%010d.json" % (CK, seq)
    s3.objects[key] = json.dumps({"schemaVersion": 1, "sequence": seq, "createdAt": "2026-12-01T00:00:0%dZ" % seq,
                                  "files": entries}).encode()
    return key


def spec_doc(**fields):
    doc = {"schemaVersion": 1, "runId": RUN, "environment": ENV, "command": ["true"], "maxRunLifetimeSeconds": 3600,
           "createdAt": "2026-12-01T00:00:00Z"}
    doc.update(fields)
    return doc


# --- lifetime (docs/RUNS.md, "The run spec": the smaller of the spec's and the foundation's) -------------------------

@pytest.mark.parametrize("spec_seconds, env_seconds, expected", [
    (30, "60", 30), (60, "30", 30), (45, None, 45), (45, "", 45), (100, "100", 100)])
def test_the_lifetime_is_the_smaller_of_the_spec_and_the_foundation(make_agent, monkeypatch, spec_seconds, env_seconds,
                                                                     expected):
    if env_seconds is not None:
        monkeypatch.setenv("CHRONOS_MAX_RUN_LIFETIME_SECONDS", env_seconds)
    a = make_agent()
    a.s3.put_json(a.run_prefix + "spec.json", spec_doc(maxRunLifetimeSeconds=spec_seconds))
    a.start()
    assert a.lifetime == expected


def test_start_reads_the_intervals_with_their_defaults_and_caps_the_grace(make_agent):
    a = make_agent()
    a.s3.put_json(a.run_prefix + "spec.json", spec_doc(stopGraceSeconds=500, logFlushSeconds=7))
    a.start()
    assert (a.interval, a.flush_seconds, a.grace, a.control_seconds) == (60, 7, 90, 30)
    assert a.spec["command"] == ["true"]
    b = make_agent()
    b.s3.put_json(b.run_prefix + "spec.json", spec_doc(stopGraceSeconds=12, checkpointIntervalSeconds=5,
                                                       controlPollSeconds=3))
    b.start()
    assert (b.interval, b.flush_seconds, b.grace, b.control_seconds) == (5, 15, 12, 3)
    status = b.s3.get_json(b.run_prefix + "status.json")
    assert status["state"] == "running" and status["runId"] == RUN and status["lastCheckpoint"] is None


def test_start_without_a_spec_fails_with_its_key(make_agent):
    a = make_agent()
    with pytest.raises(agent.Fatal, match=r"^no run spec at s3://b/dev/runs/%s/spec.json$" % RUN):
        a.start()


def test_start_fetches_the_code_and_the_runtime_then_restores(make_agent):
    import hashlib
    a = make_agent()
    blob = b"print('hi')\n"
    sha = hashlib.sha256(blob).hexdigest()
    a.s3.objects["%s/code/blobs/%s" % (ENV, sha)] = blob
    manifest = json.dumps({"schemaVersion": 1, "files": [{"path": "lib/t.py", "sha256": sha, "size": len(blob),
                                                           "mode": 0o755}]}).encode()
    mkey = "%s/code/manifests/%s.json" % (ENV, hashlib.sha256(manifest).hexdigest())
    a.s3.objects[mkey] = manifest
    a.s3.objects["runtime/scripts/go.sh"] = b"#!/bin/sh\n"  # at the bucket's root (docs/RUNS.md, "The run spec")
    a.s3.objects["runtime/python-env/lib/x.txt"] = b"x"
    a.s3.objects[ENV + "/runtime/scripts/other.sh"] = b"not the runtime"
    put_checkpoint(a.s3, 4, {"state.json": b'{"step": 4}'})
    a.s3.put_json(a.run_prefix + "spec.json", spec_doc(code={"manifestKey": mkey},
                                                       runtime=["runtime/scripts/", "runtime/python-env/"]))
    a.start()
    code = os.path.join(a.dirs["code"], "lib", "t.py")
    assert open(code, "rb").read() == blob and os.stat(code).st_mode & 0o777 == 0o755
    script = os.path.join(a.dirs["runtime"], "scripts", "go.sh")
    assert os.stat(script).st_mode & 0o777 == 0o755
    assert open(os.path.join(a.dirs["runtime"], "python-env", "lib", "x.txt")).read() == "x"
    assert os.stat(os.path.join(a.dirs["runtime"], "python-env", "lib", "x.txt")).st_mode & 0o111 == 0
    assert a.last_checkpoint["sequence"] == 4
    assert "runtime: 1 files from runtime/scripts/" in a.lines and "runtime: 1 files from runtime/python-env/" in a.lines


def test_the_lifetime_drains_the_command_then_times_out(make_agent, monkeypatch):
    """supervise: at t0 + lifetime the drain (SIGTERM, up to the grace), then `timed-out`, the final checkpoint of what
    the command saved in its handler."""
    a = make_agent()
    script = ("import os, signal, sys, time\n"
              "def term(*_):\n"
              "    open(os.path.join(os.environ['CHRONOS_CHECKPOINT_DIR'], 'state.json'), 'w').write('saved')\n"
              "    sys.exit(143)\n"
              "signal.signal(signal.SIGTERM, term)\n"
              "print('up', flush=True)\n"
              "time.sleep(60)\n")
    a.spec = {"command": [sys.executable, "-c", script], "env": {"MY": "1"}}
    a.interval, a.flush_seconds, a.grace, a.control_seconds, a.lifetime = 3600, 3600, 10, 3600, 1
    a.imds.off = True
    t = time.time()
    rc = a.supervise()
    assert rc == 143 and time.time() - t < 8
    assert a.state == "timed-out" and a.reason == "run lifetime of 1 s reached"
    status = a.s3.get_json(a.run_prefix + "status.json")
    assert status["state"] == "timed-out" and status["exitCode"] == 143
    manifest = a.s3.get_json(status["lastCheckpoint"]["manifestKey"])
    assert a.s3.objects[manifest["files"][0]["key"]] == b"saved"
    assert "drain: run lifetime of 1 s reached" in a.lines


def test_without_a_lifetime_the_command_ends_the_attempt(make_agent):
    a = make_agent()
    a.spec = {"command": [sys.executable, "-c", "import sys; print('out'); sys.exit(3)"]}
    a.interval, a.flush_seconds, a.grace, a.control_seconds, a.lifetime = 3600, 3600, 10, 3600, None
    a.imds.off = True
    assert a.supervise() == 3
    assert a.state == "failed" and a.reason == "the command exited with code 3"
    assert a.s3.objects["%s/logs/%s/001/stdout/0000000000.log" % (ENV, RUN)] == b"out\n"


# --- checkpoints (docs/RUNS.md, "Checkpoints") ----------------------------------------------------------------------

def test_a_checkpoint_uploads_new_and_changed_files_then_the_manifest(make_agent):
    a = make_agent()
    write(a, "a.pt", b"aaaa")
    write(a, "sub/b.pt", b"bb")
    assert a.checkpoint(time.time() + 30, "interval") is True
    m1 = a.s3.get_json(CK + "manifests/0000000001.json")
    assert m1["schemaVersion"] == 1 and m1["sequence"] == 1 and m1["createdAt"].endswith("Z")
    assert m1["files"] == [{"path": "a.pt", "key": CK + "data/0000000001/a.pt", "size": 4},
                           {"path": "sub/b.pt", "key": CK + "data/0000000001/sub/b.pt", "size": 2}]
    assert a.s3.puts[-1] == CK + "manifests/0000000001.json"  # the manifest last
    assert a.last_checkpoint == {"sequence": 1, "manifestKey": CK + "manifests/0000000001.json", "at": m1["createdAt"]}
    assert a.sequence == 2
    assert "checkpoint 1 (interval): 2 files, 2 uploaded" in a.lines
    # Nothing changed: no checkpoint.
    puts = len(a.s3.puts)
    assert a.checkpoint(time.time() + 30, "interval") is False
    assert len(a.s3.puts) == puts and a.sequence == 2
    # One file changed (size and time): only it is uploaded; the other keeps its key.
    time.sleep(0.01)
    write(a, "a.pt", b"aaaaaa")
    assert a.checkpoint(time.time() + 30, "final") is True
    m2 = a.s3.get_json(CK + "manifests/0000000002.json")
    assert m2["files"] == [{"path": "a.pt", "key": CK + "data/0000000002/a.pt", "size": 6},
                           {"path": "sub/b.pt", "key": CK + "data/0000000001/sub/b.pt", "size": 2}]
    assert a.s3.puts[puts:] == [CK + "data/0000000002/a.pt", CK + "manifests/0000000002.json"]
    assert "checkpoint 2 (final): 2 files, 1 uploaded" in a.lines
    # A file removed: the next manifest no longer lists it.
    os.remove(os.path.join(a.dirs["checkpoints"], "sub", "b.pt"))
    assert a.checkpoint(time.time() + 30, "interval") is True
    assert [f["path"] for f in a.s3.get_json(CK + "manifests/0000000003.json")["files"]] == ["a.pt"]


def test_files_being_written_are_never_in_a_checkpoint(make_agent):
    a = make_agent()
    for rel in ("x.tmp", "x.partial", "x~", ".nfs0001", "w.tmp/z.pt", ".hidden", ".dir/y.pt", "ok.pt", "d/ok2.pt"):
        write(a, rel, b"1")
    # docs/RUNS.md, "Checkpoints": dotfiles are checkpoint files (DCP's .metadata); only the temporary patterns are not.
    assert sorted(a.scan()) == [".dir/y.pt", ".hidden", "d/ok2.pt", "ok.pt"]
    assert a.scan()["ok.pt"][0] == 1


def test_a_file_that_vanishes_during_a_checkpoint_aborts_it(make_agent, monkeypatch):
    """docs/RUNS.md, "What the agent does": a file that vanishes between the scan and its upload aborts that checkpoint
    (no manifest: it would not be whole); the next one, without the file, commits."""
    a = make_agent()
    write(a, "a.pt", b"a")
    write(a, "b.pt", b"b")
    real = a.s3.put_file

    def put_file(key, path, deadline=None, cancel=None):
        if path.endswith("a.pt"):
            os.remove(path)  # the command removed it after the scan
            raise FileNotFoundError(path)
        return real(key, path, deadline, cancel)
    monkeypatch.setattr(a.s3, "put_file", put_file)
    with pytest.raises(OSError, match=r"^a\.pt vanished before its upload: checkpoint 1 aborted$"):
        a.checkpoint(time.time() + 30, "interval")
    assert not any("/manifests/" in k for k in a.s3.objects)
    assert a.committed == {} and a.sequence == 1 and a.last_checkpoint is None
    assert a.checkpoint(time.time() + 30, "interval") is True
    assert [f["path"] for f in a.s3.get_json(CK + "manifests/0000000001.json")["files"]] == ["b.pt"]
    assert "checkpoint 1 (interval): 1 files, 1 uploaded" in a.lines


def test_a_failed_upload_commits_nothing_and_the_next_checkpoint_sends_it(make_agent):
    a = make_agent()
    write(a, "a.pt", b"a")
    a.s3.down = True
    with pytest.raises(OSError):
        a.checkpoint(time.time() + 1, "interval")
    assert a.committed == {} and a.sequence == 1 and a.last_checkpoint is None
    a.s3.down = False
    assert a.checkpoint(time.time() + 30, "interval") is True
    assert a.s3.get_json(CK + "manifests/0000000001.json")["files"][0]["size"] == 1


def test_keep_checkpoints_retries_after_an_outage_and_takes_early_ones(make_agent):
    a = make_agent()
    a.interval = 0.2
    write(a, "a.pt", b"a")
    a.s3.down = True
    t = threading.Thread(target=a.keep_checkpoints, daemon=True)
    t.start()
    time.sleep(0.5)
    assert any(line.startswith("checkpoint not uploaded, retried: ") for line in a.lines)
    a.s3.down = False
    deadline = time.time() + 5
    while CK + "manifests/0000000001.json" not in a.s3.objects and time.time() < deadline:
        time.sleep(0.05)
    assert a.s3.get_json(a.run_prefix + "status.json")["lastCheckpoint"]["sequence"] == 1
    # An early checkpoint (a rebalance recommendation): before the interval, with its reason.
    a.interval = 3600
    time.sleep(0.4)
    write(a, "a.pt", b"aa")
    a.checkpoint_now.set()
    deadline = time.time() + 5
    while CK + "manifests/0000000002.json" not in a.s3.objects and time.time() < deadline:
        time.sleep(0.05)
    assert any(line.startswith("checkpoint 2 (rebalance recommendation)") for line in a.lines), a.lines
    a.stop.set()
    a.checkpoint_now.set()
    t.join(5)
    assert not t.is_alive()


def test_keep_logs_survives_an_outage(make_agent):
    a = make_agent()
    a.flush_seconds = 0.1
    write(a, "stdout.log", b"one\n", where="logs")
    a.s3.down = True
    t = threading.Thread(target=a.keep_logs, daemon=True)
    t.start()
    time.sleep(0.35)
    a.s3.down = False
    deadline = time.time() + 5
    key = "%s/logs/%s/001/stdout/0000000000.log" % (ENV, RUN)
    while key not in a.s3.objects and time.time() < deadline:
        time.sleep(0.05)
    assert a.s3.objects[key] == b"one\n"
    assert any(line.startswith("logs not sent, retried: ") for line in a.lines), a.lines
    a.stop.set()
    t.join(5)


# --- restore (docs/RUNS.md, "Checkpoints": the highest whole manifest) -----------------------------------------------

def test_restore_takes_the_highest_whole_checkpoint(make_agent):
    a = make_agent()
    put_checkpoint(a.s3, 1, {"state.json": b"1"})
    put_checkpoint(a.s3, 2, {"state.json": b"22", "sub/w.pt": b"www"})
    a.restore()
    assert open(os.path.join(a.dirs["checkpoints"], "state.json"), "rb").read() == b"22"
    assert open(os.path.join(a.dirs["checkpoints"], "sub", "w.pt"), "rb").read() == b"www"
    assert a.last_checkpoint == {"sequence": 2, "manifestKey": CK + "manifests/0000000002.json",
                                 "at": "2026-12-01T00:00:02Z"}
    assert a.sequence == 3
    assert a.committed["state.json"][0] == 2 and a.committed["state.json"][2] == CK + "data/0000000002/state.json"
    assert a.uploaded == a.committed
    assert "restored checkpoint 2 (2 files)" in a.lines
    # Restored files are not uploaded again.
    assert a.checkpoint(time.time() + 30, "interval") is False


@pytest.mark.parametrize("torn", ["missing", "short", "long", "newer schema", "not json"])
def test_restore_skips_a_checkpoint_that_is_not_whole(make_agent, torn):
    a = make_agent()
    put_checkpoint(a.s3, 1, {"state.json": b"one"})
    key = put_checkpoint(a.s3, 2, {"state.json": b"two!"}, sizes={"state.json": {"short": 9, "long": 2}.get(torn, 4)})
    if torn == "missing":
        del a.s3.objects[CK + "data/0000000002/state.json"]
    if torn == "newer schema":
        doc = json.loads(a.s3.objects[key])
        doc["schemaVersion"] = 2
        a.s3.objects[key] = json.dumps(doc).encode()
    if torn == "not json":
        a.s3.objects[key] = b'{"files": ['
    a.restore()
    assert open(os.path.join(a.dirs["checkpoints"], "state.json"), "rb").read() == b"one"
    assert a.last_checkpoint["sequence"] == 1 and a.sequence == 3
    assert any(line.startswith("checkpoint %s skipped: 1 of its files are missing or unreadable" % key)
               for line in a.lines), a.lines


def test_restore_places_new_checkpoints_above_everything_left_behind(make_agent):
    a = make_agent()
    put_checkpoint(a.s3, 3, {"state.json": b"3"})
    a.s3.objects[CK + "data/0000000007/state.json"] = b"partial"  # an upload cut before its manifest
    a.s3.objects[CK + "manifests/notes.txt"] = b"not a manifest"
    a.restore()
    assert a.last_checkpoint["sequence"] == 3 and a.sequence == 8


def test_restore_without_a_checkpoint(make_agent):
    a = make_agent()
    a.restore()
    assert a.last_checkpoint is None and a.sequence == 1 and a.committed == {}
    assert "no whole checkpoint to restore" in a.lines


# --- the drain (docs/RUNS.md, "Spot interruptions", "Control") -------------------------------------------------------

class FakeImds:
    def __init__(self, answers):
        self.answers, self.off = answers, False

    def get(self, path, tries=1):
        value = self.answers.get(path)
        if isinstance(value, Exception):
            raise value
        return value


def noticed(make_agent, grace, notice):
    """An agent of that grace after one look at IMDS, which serves the spot notice `notice`."""
    a = make_agent()
    a.grace = grace
    a.imds = FakeImds({"spot/instance-action": json.dumps(notice)})
    a.listen_imds()
    return a


def test_a_spot_notice_drains_within_its_two_minutes(make_agent):
    at = time.time() + 120
    state, reason, grace, deadline = noticed(make_agent, 90, {"action": "terminate", "time": agent.iso(at)}).drain
    assert state == "interrupted" and reason == "spot interruption notice: terminate at %s" % agent.iso(at)
    assert 88 <= grace <= 90.5 and abs(deadline - (int(at) - 5)) < 1.01
    assert noticed(make_agent, 10, {"action": "stop", "time": agent.iso(at)}).drain[2] == 10
    t = time.time()
    c = noticed(make_agent, 60, {"action": "terminate"})
    assert c.drain[2] == 60 and t + 115 <= c.drain[3] <= time.time() + 115  # no time: two minutes from now


def test_a_notice_close_to_its_time_shortens_the_grace(make_agent):
    assert 18 <= noticed(make_agent, 90, {"action": "terminate", "time": agent.iso(time.time() + 50)}).drain[2] <= 20.5


def test_a_rebalance_recommendation_asks_for_one_early_checkpoint(make_agent):
    a = make_agent()
    a.imds = FakeImds({"events/recommendations/rebalance": '{"noticeTime": "2026-12-01T00:00:00Z"}'})
    a.listen_imds()
    assert a.checkpoint_now.is_set() and a.drain is None
    assert "rebalance recommendation: an early checkpoint" in a.lines
    a.checkpoint_now.clear()
    a.listen_imds()
    assert not a.checkpoint_now.is_set()  # the same recommendation again
    a.imds.answers["events/recommendations/rebalance"] = '{"noticeTime": "2026-12-01T01:00:00Z"}'
    a.listen_imds()
    assert a.checkpoint_now.is_set()


def test_an_unreachable_imds_is_logged_not_fatal(make_agent):
    a = make_agent()
    a.imds = FakeImds({"spot/instance-action": OSError("instance metadata spot/instance-action: timed out")})
    a.listen_imds()
    assert a.drain is None and "instance metadata spot/instance-action: timed out" in a.lines


def test_control_stop_drains_with_the_grace(make_agent):
    a = make_agent()
    a.grace = 30
    a.s3.put_json(a.run_prefix + "control.json", {"schemaVersion": 1, "action": "stop", "requestedAt": "T"})
    t = time.time()
    a.listen_control()
    state, reason, grace, deadline = a.drain
    assert (state, reason, grace) == ("stopped", "stop requested at T", 30)
    assert t + 630 <= deadline <= time.time() + 630


@pytest.mark.parametrize("doc", [None, {"schemaVersion": 1, "action": "pause"}, {"schemaVersion": 2, "action": "stop"}])
def test_control_without_a_stop_is_ignored(make_agent, doc):
    a = make_agent()
    a.grace = 30
    if doc is not None:
        a.s3.put_json(a.run_prefix + "control.json", doc)
    a.listen_control()
    assert a.drain is None
    if doc and doc["schemaVersion"] == 2:
        assert "control.json has schemaVersion 2; this agent knows 1: ignored" in a.lines


def test_control_unreadable_is_logged(make_agent):
    a = make_agent()
    a.s3.down = True
    a.listen_control()
    assert a.drain is None and a.lines[-1].startswith("control.json: ")


def test_sigterm_before_the_command_interrupts_and_after_it_drains(make_agent):
    a = make_agent()
    with pytest.raises(agent.Interrupted):
        a.on_sigterm()
    a.proc = object()
    t = time.time()
    a.on_sigterm()
    state, reason, grace, deadline = a.drain
    assert (state, reason, grace) == ("interrupted", "the agent received SIGTERM", 20)
    assert t + 80 <= deadline <= time.time() + 80 and a.wake.is_set()
    first = a.drain
    a.on_sigterm()
    assert a.drain is first  # a second SIGTERM does not restart the drain
    b = make_agent()
    b.proc, b.drain = object(), ("stopped", "stop requested at T", 30, 1.0)
    b.on_sigterm()
    assert b.drain == ("stopped", "stop requested at T", 30, 1.0)


def test_kill_command_sigterm_then_sigkill_after_the_grace(make_agent):
    import subprocess
    a = make_agent()
    a.proc = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                               " print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE,
                              start_new_session=True)
    a.proc.stdout.readline()
    threading.Thread(target=a.wait_command, daemon=True).start()
    t = time.time()
    a.kill_command(1)
    assert 0.9 <= time.time() - t < 5 and a.exit_code == 137
    assert "SIGKILL after 1 s" in a.lines
    b = make_agent()
    b.proc = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, start_new_session=True)
    b.proc.stdout.readline()
    threading.Thread(target=b.wait_command, daemon=True).start()
    t = time.time()
    b.kill_command(10)
    assert time.time() - t < 5 and b.exit_code == 143 and not any("SIGKILL" in line for line in b.lines)


def test_finish_writes_the_final_checkpoint_artifacts_logs_and_status(make_agent):
    a = make_agent()
    a.spec, a.exit_code = {"command": ["x"]}, 143
    write(a, "state.json", b"s")
    write(a, "model/out.bin", b"m", where="artifacts")
    write(a, "stdout.log", b"hello\n", where="logs")
    a.finish("stopped", "stop requested at T", time.time() + 30)
    status = a.s3.get_json(a.run_prefix + "status.json")
    assert status["state"] == "stopped" and status["reason"] == "stop requested at T" and status["endedAt"]
    assert status["exitCode"] == 143 and status["lastCheckpoint"]["sequence"] == 1
    assert a.s3.get_json(a.run_prefix + "attempts/001.json") == status
    assert a.s3.objects["%s/artifacts/%s/model/out.bin" % (ENV, RUN)] == b"m"
    assert a.s3.objects["%s/logs/%s/001/stdout/0000000000.log" % (ENV, RUN)] == b"hello\n"
    assert a.s3.puts[-2:] == [a.run_prefix + "status.json", a.run_prefix + "attempts/001.json"]
    assert "attempt 1: stopped (stop requested at T)" in a.lines


def test_finish_goes_on_when_a_step_fails(make_agent, monkeypatch):
    a = make_agent()
    a.spec = {"command": ["x"]}
    write(a, "state.json", b"s")
    monkeypatch.setattr(a, "checkpoint", lambda *_: (_ for _ in ()).throw(OSError("S3 down")))
    a.finish("failed", "why", time.time() + 30)
    assert "final checkpoint not written: S3 down" in a.lines
    assert a.s3.get_json(a.run_prefix + "status.json")["state"] == "failed"


def test_finish_without_a_spec_writes_only_logs_and_status(make_agent):
    a = make_agent()
    write(a, "state.json", b"s")
    a.finish("failed", "no run spec", time.time() + 30)
    assert not any("/checkpoints/" in k for k in a.s3.objects)
    assert a.s3.get_json(a.run_prefix + "status.json")["reason"] == "no run spec"


# --- what the mutation run showed untested (docs/DEVELOPMENT.md, "Mutation testing") --------------------------------

def near(value, expected, within=0.5):
    return value is not None and abs(value - expected) <= within


def test_finish_gives_every_final_upload_the_drain_deadline_and_names_what_failed(make_agent):
    a = make_agent()
    a.spec = {"command": ["x"]}
    write(a, "state.json", b"s")
    write(a, "out.bin", b"m", where="artifacts")
    write(a, "stdout.log", b"x\n", where="logs")
    deadline = time.time() + 77
    a.finish("interrupted", "spot", deadline)
    assert "checkpoint 1 (final): 1 files, 1 uploaded" in a.lines
    for key in (CK + "data/0000000001/state.json", CK + "manifests/0000000001.json", a.run_prefix + "status.json",
                "%s/artifacts/%s/out.bin" % (ENV, RUN), "%s/logs/%s/001/stdout/0000000000.log" % (ENV, RUN)):
        assert a.s3.deadlines[key] == deadline, key
    assert a.s3.cancels[CK + "data/0000000001/state.json"] is None  # the final checkpoint goes on through the drain
    b = make_agent()
    b.spec = {"command": ["x"]}
    write(b, "state.json", b"s2")
    write(b, "out2.bin", b"m", where="artifacts")
    b.s3.down = True
    b.finish("failed", "why", time.time() + 1)
    for what in ("checkpoint", "artifacts", "logs", "status"):
        assert any(line.startswith("final %s not written: " % what) for line in b.lines), (what, b.lines)


def test_keep_checkpoints_waits_the_interval_and_retries_within_ten_seconds(make_agent):
    a = make_agent()
    a.interval = 0.6
    write(a, "a.pt", b"a")
    t = threading.Thread(target=a.keep_checkpoints, daemon=True)
    start = time.time()
    t.start()
    time.sleep(0.3)
    assert CK + "manifests/0000000001.json" not in a.s3.objects  # not before the interval
    while CK + "manifests/0000000001.json" not in a.s3.objects and time.time() < start + 5:
        time.sleep(0.02)
    took = time.time()
    assert took - start >= 0.55 and near(a.s3.deadlines[CK + "manifests/0000000001.json"], took + 30, 1)
    assert near(a.s3.deadlines[a.run_prefix + "status.json"], took + 30, 1)
    # docs/RUNS.md, "The drain": the checkpoint upload in flight is stopped by the drain; the final one is not.
    assert a.s3.cancels[CK + "data/0000000001/a.pt"] is a.draining
    assert "checkpoint 1 (interval): 1 files, 1 uploaded" in a.lines
    write(a, "a.pt", b"changed")
    time.sleep(0.3)
    assert CK + "manifests/0000000002.json" not in a.s3.objects  # the next one an interval later, not at once
    # S3 down: retried after min(interval, 10 s), not in a loop.
    a.s3.down = True
    time.sleep(1.5)
    failures = [line for line in a.lines if line.startswith("checkpoint not uploaded, retried")]
    assert 1 <= len(failures) <= 6, failures
    a.s3.down = False
    a.stop.set()
    a.checkpoint_now.set()
    t.join(5)


def test_keep_logs_flushes_with_a_deadline_of_its_period(make_agent):
    a = make_agent()
    a.flush_seconds = 1.0
    write(a, "stdout.log", b"one\n", where="logs")
    t = threading.Thread(target=a.keep_logs, daemon=True)
    t.start()
    key = "%s/logs/%s/001/stdout/0000000000.log" % (ENV, RUN)
    while key not in a.s3.objects:
        time.sleep(0.02)
    assert near(a.s3.deadlines[key], time.time() + 1.0, 0.5)
    a.stop.set()
    t.join(5)


def test_control_is_read_with_a_two_second_deadline_and_without_a_schema_version(make_agent):
    a = make_agent()
    a.grace = 5
    a.s3.put_json(a.run_prefix + "control.json", {"action": "stop", "requestedAt": "T"})  # no schemaVersion: 0
    t = time.time()
    a.listen_control()
    assert near(a.s3.deadlines[a.run_prefix + "control.json"], t + 2, 0.2)
    assert a.drain[0] == "stopped"


def test_a_notice_grace_ends_thirty_seconds_before_its_time(make_agent):
    at = time.time() + 50
    t = time.time()
    grace = noticed(make_agent, 90, {"action": "terminate", "time": agent.iso(at)}).drain[2]
    assert near(grace, int(at) - 30 - t, 0.2)


def test_kill_command_without_a_grace_sends_sigkill_only(make_agent):
    import subprocess
    a = make_agent()
    a.proc = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, start_new_session=True)
    a.proc.stdout.readline()
    threading.Thread(target=a.wait_command, daemon=True).start()
    a.kill_command(0)
    assert a.exit_code == 137 and not any("did not stop" in line for line in a.lines)


def test_start_in_batch_mode_runs_the_command_given_without_a_spec_or_a_lifetime(make_agent):
    a = make_agent("batch")
    a.command = ["python3", "train.py"]
    a.start()
    assert a.spec == {"command": ["python3", "train.py"]} and a.lifetime is None
    assert (a.interval, a.flush_seconds, a.grace, a.control_seconds) == (60, 15, 60, 30)
    assert not any(k.endswith("spec.json") for k in a.s3.gets)


def test_restore_says_which_file_or_version_made_a_checkpoint_unusable(make_agent):
    a = make_agent()
    put_checkpoint(a.s3, 1, {"weights/w.pt": b"w"}, sizes={"weights/w.pt": 5})
    key2 = put_checkpoint(a.s3, 2, {"state.json": b"s"})
    doc = json.loads(a.s3.objects[key2])
    doc["schemaVersion"] = 3
    a.s3.objects[key2] = json.dumps(doc).encode()
    key3 = "%smanifests/%010d.json" % (CK, 3)
    a.s3.objects[key3] = b"{"
    a.restore()
    assert "checkpoint %smanifests/0000000001.json skipped: 1 of its files are missing or unreadable (weights/w.pt)" % CK \
        in a.lines
    assert "checkpoint %s skipped: 1 of its files are missing or unreadable (schemaVersion 3)" % key2 in a.lines
    assert any(line.startswith("checkpoint %s skipped: 1 of its files are missing or unreadable (Fatal(" % key3)
               for line in a.lines), a.lines


def supervised(make_agent, script, **settings):
    """An agent that ran `script` (Python) as its command through supervise(), IMDS off unless given."""
    a = make_agent()
    a.spec = {"command": [sys.executable, "-c", script], "env": settings.pop("env", {})}
    a.interval, a.flush_seconds, a.grace, a.control_seconds, a.lifetime = 3600, 3600, 10, 3600, None
    a.imds.off = True
    for k, v in settings.items():
        setattr(a, k, v)
    a.t0 = time.time()
    a.rc = a.supervise()
    return a


def test_supervise_gives_the_command_its_contract(make_agent, monkeypatch, capfd):
    """docs/RUNS.md, "The command's environment": the agent's environment without CHRONOS_* variables, the spec's
    `env`, then the contract's CHRONOS_* variables; the code directory as the working directory; stdout and stderr to
    their logs (and the console); `succeeded` for exit 0, with the final uploads' deadline ten minutes ahead."""
    monkeypatch.setenv("CHRONOS_LEAK", "agent-only")
    monkeypatch.setenv("OTHER_VAR", "inherited")
    script = ("import os, sys\n"
              "e = os.environ\n"
              "print(e.get('CHRONOS_LEAK'), e['OTHER_VAR'], e['MY'], e['CHRONOS_RUN_ID'], e['CHRONOS_ATTEMPT'],"
              " e['CHRONOS_RESUMED'], os.getcwd() == e['CODE'], sep='|')\n"
              "print(e['CHRONOS_CHECKPOINT_DIR'], e['CHRONOS_ARTIFACT_DIR'], e['CHRONOS_RUNTIME_DIR'], sep='|')\n"
              "print('to stderr', file=sys.stderr)\n")
    code_dir = make_agent().dirs["code"]
    a = supervised(make_agent, script, env={"MY": "from-spec", "CODE": code_dir}, last_checkpoint={"sequence": 1})
    assert a.rc == 0 and a.state == "succeeded" and a.reason == "the command exited with code 0"
    out = a.s3.objects["%s/logs/%s/001/stdout/0000000000.log" % (ENV, RUN)].decode().splitlines()
    assert out[0] == "None|inherited|from-spec|%s|1|1|True" % RUN
    assert out[1] == "|".join(a.dirs[d] for d in ("checkpoints", "artifacts", "runtime"))
    assert a.s3.objects["%s/logs/%s/001/stderr/0000000000.log" % (ENV, RUN)] == b"to stderr\n"
    assert near(a.s3.deadlines[a.run_prefix + "status.json"], time.time() + 600, 5)
    assert a.lines[0] == "starting %s -c %s" % (sys.executable, agent.shlex.quote(script))
    assert "the command ended with code 0" in a.lines
    assert a.s3.get_json(a.run_prefix + "status.json")["state"] == "succeeded"
    captured = capfd.readouterr()
    assert "inherited" in captured.out and "to stderr" in captured.err  # the console echo


def test_supervise_a_fresh_attempt_says_it_is_not_resumed(make_agent):
    a = supervised(make_agent, "import os; print(os.environ['CHRONOS_RESUMED'])")
    assert a.s3.objects["%s/logs/%s/001/stdout/0000000000.log" % (ENV, RUN)] == b"0\n"


def test_supervise_a_command_that_cannot_start_is_127(make_agent):
    a = make_agent()
    a.spec = {"command": ["/nonexistent/chronos-command"]}
    a.interval, a.flush_seconds, a.grace, a.control_seconds, a.lifetime = 3600, 3600, 10, 3600, None
    with pytest.raises(agent.Fatal, match=r"^cannot start the command: \[Errno 2\] No such file or directory"):
        a.supervise()
    assert a.exit_code == 127


def test_supervise_streams_and_checkpoints_while_the_command_runs(make_agent):
    script = ("import os, time\n"
              "for i in range(8):\n"
              "    print('line', i, flush=True)\n"
              "    open(os.path.join(os.environ['CHRONOS_CHECKPOINT_DIR'], 'state.json'), 'w').write(str(i))\n"
              "    time.sleep(0.15)\n")
    a = supervised(make_agent, script, interval=0.3, flush_seconds=0.2)
    assert a.rc == 0
    chunks = [k for k in a.s3.objects if "/logs/%s/001/stdout/" % RUN in k]
    assert len(chunks) >= 2, chunks  # streamed, not only the final flush
    assert any("(interval)" in line for line in a.lines), a.lines


def test_supervise_reads_control_every_poll_and_drains_on_stop(make_agent):
    script = "import time\nfor _ in range(60):\n    time.sleep(0.1)\n"
    a = make_agent()
    a.s3.put_json(a.run_prefix + "control.json", {"schemaVersion": 1, "action": "stop", "requestedAt": "T"})
    a.spec = {"command": [sys.executable, "-c", script]}
    a.interval, a.flush_seconds, a.grace, a.control_seconds, a.lifetime = 3600, 3600, 5, 0.5, None
    a.imds.off = True
    t = time.time()
    a.t0 = t
    a.supervise()
    reads = [k for k in a.s3.gets if k.endswith("control.json")]
    assert a.state == "stopped" and len(reads) == 1 and 0.45 <= time.time() - t < 3
    b = make_agent()
    b.spec = {"command": [sys.executable, "-c", "import time; time.sleep(1.3)"]}
    b.interval, b.flush_seconds, b.grace, b.control_seconds, b.lifetime = 3600, 3600, 5, 0.5, None
    b.imds.off = True
    b.supervise()
    reads = [k for k in b.s3.gets if k.endswith("control.json")]
    assert b.state == "succeeded" and 1 <= len(reads) <= 3, reads


def test_supervise_in_batch_mode_never_reads_control(make_agent):
    a = make_agent("batch")
    a.spec = {"command": [sys.executable, "-c", "import time; time.sleep(0.6)"]}
    a.interval, a.flush_seconds, a.grace, a.control_seconds, a.lifetime = 3600, 3600, 5, 0.1, None
    a.imds.off = True
    a.supervise()
    assert not any(k.endswith("control.json") for k in a.s3.gets)


def test_supervise_looks_for_a_spot_notice_every_five_seconds(make_agent):
    class CountingImds(FakeImds):
        def get(self, path, tries=1):
            self.calls.append(path)
            return FakeImds.get(self, path, tries)
    imds = CountingImds({})
    imds.calls = []
    a = supervised(make_agent, "import time; time.sleep(1.5)", imds=imds)
    assert a.state == "succeeded" and imds.calls == ["spot/instance-action", "events/recommendations/rebalance"]
    off = CountingImds({})
    off.calls, off.off = [], True
    supervised(make_agent, "import time; time.sleep(0.3)", imds=off)
    assert off.calls == []
    at = time.time() + 120
    notice = CountingImds({"spot/instance-action": json.dumps({"action": "terminate", "time": agent.iso(at)})})
    notice.calls = []
    b = supervised(make_agent, "import time; time.sleep(30)", imds=notice, grace=1)
    assert b.state == "interrupted" and b.rc in (143, 137)
    assert near(b.s3.deadlines[b.run_prefix + "status.json"], int(at) - 5, 1.01)


def test_the_lifetime_drain_has_its_deadline_and_comes_at_the_lifetime(make_agent):
    script = "import time; print('up', flush=True); time.sleep(30)"
    t = time.time()
    a = supervised(make_agent, script, lifetime=1, grace=1)
    assert a.state == "timed-out" and 0.9 <= time.time() - t < 6
    assert a.s3.objects["%s/logs/%s/001/stdout/0000000000.log" % (ENV, RUN)] == b"up\n"
    assert near(a.s3.deadlines[a.run_prefix + "status.json"], a.t0 + 1 + 270, 0.5)


def test_a_batch_drain_ends_within_the_ecs_stop_timeout(make_agent):
    """docs/RUNS.md (AWS Batch): ECS sends SIGKILL 30 s after SIGTERM (Amazon ECS Developer Guide, task definition
    parameters, "stopTimeout"): a Batch drain that is not a spot notice gives its final uploads BATCH_STOP_SECONDS
    (25 s), not the lifetime's end + 270 s."""
    a = make_agent("batch")
    a.spec = {"command": [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"]}
    a.interval, a.flush_seconds, a.grace, a.control_seconds, a.lifetime = 3600, 3600, 60, 3600, 1
    a.imds.off = True
    a.t0 = time.time()
    a.supervise()
    assert a.state == "timed-out"
    assert near(a.s3.deadlines[a.run_prefix + "status.json"], time.time() + agent.BATCH_STOP_SECONDS, 2)


def test_a_spot_notice_powers_off_180_seconds_after_its_time_at_the_latest(make_agent):
    # EC2 User Guide, "Billing for interrupted Spot Instances": EC2 bills no Spot Instance it interrupts in its first
    # hour, but one you end yourself; docs/RUNS.md, "The drain": the agent waits for EC2, then powers off itself
    # 180 seconds after the notice's time (EC2 User Guide, "Spot Instance interruption notices": two minutes).
    at = time.time() + 120
    assert near(noticed(make_agent, 90, {"action": "terminate", "time": agent.iso(at)}).reclaim_at, int(at) + 180, 1.01)
    t = time.time()
    assert near(noticed(make_agent, 90, {"action": "terminate"}).reclaim_at, t + 120 + 180, 0.5)  # no time: now + 2 min


def test_a_drain_writes_the_status_before_the_artifacts(make_agent, monkeypatch):
    # docs/RUNS.md, "The drain": final checkpoint; the status; artifacts; final logs; the status again (a spot
    # drain may not reach the artifacts). Without a drain, the status once, last ("Lifecycle", 5. Ends).
    seen = []
    for drain in (("interrupted", "spot", 0, 0), None):
        a = make_agent()
        a.spec, a.drain = {"command": ["x"]}, drain
        write(a, "state.json", b"s")
        write(a, "out.bin", b"m", where="artifacts")
        art, status = "%s/artifacts/%s/out.bin" % (ENV, RUN), a.run_prefix + "status.json"
        put_file = a.s3.put_file

        def first_artifact(key, *args, a=a, status=status, put_file=put_file):
            if "/artifacts/" in key:
                seen.append((a.s3.objects.get(status), a.s3.deadlines.get(status)))
            return put_file(key, *args)
        monkeypatch.setattr(a.s3, "put_file", first_artifact)
        deadline = time.time() + 77
        a.finish("interrupted" if drain else "succeeded", "why", deadline)
        if drain:
            assert seen[-1][1] == deadline  # the status before the artifacts, with the drain's deadline
        assert a.s3.objects[art] == b"m" and a.s3.puts.count(status) == (2 if drain else 1), a.s3.puts
    (doc, _), (none, _) = seen
    assert json.loads(doc)["state"] == "interrupted" and json.loads(doc)["lastCheckpoint"]["sequence"] == 1
    assert none is None  # without a drain, no status before the artifacts
    b = make_agent()  # S3 down: each of the two status writes says what failed
    b.spec, b.drain, b.s3.down = {"command": ["x"]}, ("interrupted", "spot", 0, 0), True
    b.finish("interrupted", "why", time.time() + 1)
    assert len([line for line in b.lines if line.startswith("final status not written: ")]) == 2, b.lines


def test_a_checkpoint_file_over_the_largest_object_drains_the_attempt_as_failed(make_agent, monkeypatch):
    # S3 User Guide, "Amazon S3 multipart upload limits": an object takes at most 10,000 parts of 5 GiB (48.8 TiB);
    # docs/RUNS.md, "The drain": a checkpoint file over that fails the attempt at once, with the reason. The limit is
    # lowered here (no file system here takes a sparse file of 48.8 TiB); test_transfer.py checks the real one.
    monkeypatch.setattr(agent, "THRESHOLD", 1 << 20)
    monkeypatch.setattr(agent, "MAX_OBJECT", 3 << 20)
    a = make_agent()
    a.interval, a.grace = 0.1, 7
    big = write(a, "big.pt", b"")
    os.truncate(big, (3 << 20) + 1)
    t = threading.Thread(target=a.keep_checkpoints, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive() and a.wake.is_set()  # the thread ends and wakes the main loop
    state, reason, grace, deadline = a.drain
    assert state == "failed" and reason == "%d bytes: over the %d bytes S3 takes in one object" % ((3 << 20) + 1, 3 << 20)
    assert grace == 7
    assert near(deadline, time.time() + 120, 1)
    assert CK + "manifests/0000000001.json" not in a.s3.objects
    b = make_agent()  # a drain already under way keeps its own state
    b.interval, b.drain = 0.1, ("stopped", "stop requested at T", 5, 0)
    os.truncate(write(b, "big.pt", b""), (3 << 20) + 1)
    b.keep_checkpoints()
    assert b.drain == ("stopped", "stop requested at T", 5, 0)


# --- directory checkpoints, whole or absent; pruning (docs/RUNS.md, "Checkpoints") ---------------------------------

def touch_at(a, rel, data, ns):
    path = write(a, rel, data)
    os.utime(path, ns=(ns, ns))
    return path


def manifest_paths(a, seq):
    return {f["path"]: f["key"] for f in a.s3.get_json(CK + "manifests/%010d.json" % seq)["files"]}


def test_a_dcp_directory_counts_once_its_metadata_is_written_after_its_shards(make_agent):
    a = make_agent()
    write(a, "state.json", b"1")
    touch_at(a, "step-1/__0_0.distcp", b"s0", 10 ** 18)
    touch_at(a, "step-1/__1_0.distcp", b"s1", 10 ** 18)
    assert a.checkpoint(time.time() + 30, "interval") is True  # the shards, no .metadata: not in the manifest
    assert set(manifest_paths(a, 1)) == {"state.json"}
    assert "checkpoint directory step-1 is being written (.metadata missing or older than its files): its last whole " \
           "version stays" in a.lines
    touch_at(a, "step-1/.metadata", b"m1", 10 ** 18 + 1)
    assert a.checkpoint(time.time() + 30, "interval") is True
    assert set(manifest_paths(a, 2)) == {"state.json", "step-1/.metadata", "step-1/__0_0.distcp", "step-1/__1_0.distcp"}
    # Rewritten in place: new shards, the old .metadata (older than them): the manifest keeps the last whole version.
    touch_at(a, "step-1/__0_0.distcp", b"s0-new", 10 ** 18 + 2)
    write(a, "state.json", b"2")
    assert a.checkpoint(time.time() + 30, "interval") is True
    m3 = manifest_paths(a, 3)
    assert m3["step-1/__0_0.distcp"] == CK + "data/0000000002/step-1/__0_0.distcp"
    assert a.s3.objects[m3["step-1/__0_0.distcp"]] == b"s0"
    assert m3["state.json"] == CK + "data/0000000003/state.json"
    assert not any(k.startswith(CK + "data/0000000003/step-1/") for k in a.s3.objects)  # nothing of it sent
    touch_at(a, "step-1/.metadata", b"m2", 10 ** 18 + 3)  # its .metadata, last: whole again
    assert a.checkpoint(time.time() + 30, "interval") is True
    m4 = manifest_paths(a, 4)
    assert a.s3.objects[m4["step-1/__0_0.distcp"]] == b"s0-new" and a.s3.objects[m4["step-1/.metadata"]] == b"m2"


def test_a_directory_with_the_chronos_marker_counts_once_the_marker_is_its_newest_file(make_agent):
    a = make_agent()
    touch_at(a, "ck/model.bin", b"m", 10 ** 18)
    touch_at(a, "ck/sub/optim.bin", b"o", 10 ** 18)
    touch_at(a, "ck/.chronos-complete", b"", 10 ** 18 + 1)
    assert a.checkpoint(time.time() + 30, "interval") is True
    assert set(manifest_paths(a, 1)) == {"ck/model.bin", "ck/sub/optim.bin", "ck/.chronos-complete"}
    touch_at(a, "ck/sub/optim.bin", b"o2", 10 ** 18 + 2)  # rewritten under the old marker
    touch_at(a, "other.pt", b"x", 10 ** 18 + 2)
    assert a.checkpoint(time.time() + 30, "interval") is True
    m2 = manifest_paths(a, 2)
    assert a.s3.objects[m2["ck/sub/optim.bin"]] == b"o" and "other.pt" in m2


def test_dcp_temporary_metadata_is_not_a_marker(make_agent):
    # torch.distributed.checkpoint's FileSystemWriter writes `.metadata.tmp`, then renames it: the .tmp is skipped.
    a = make_agent()
    touch_at(a, "s/__0_0.distcp", b"s", 10 ** 18)
    touch_at(a, "s/.metadata.tmp", b"m", 10 ** 18 + 1)
    assert a.checkpoint(time.time() + 30, "interval") is False  # nothing whole to commit


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_after_a_commit_only_the_last_keep_whole_checkpoints_and_their_data_stay(make_agent, keep):
    a = make_agent()
    a.keep = keep
    write(a, "constant.bin", b"c")  # sent once, named by every manifest
    put_checkpoint(a.s3, 1, {"old.bin": b"x"})  # a whole checkpoint an earlier attempt left
    a.s3.objects[CK + "data/0000000002/orphan.bin"] = b"o"  # a cut upload's data: no manifest names it
    a.sequence = 3
    for step in range(4):
        write(a, "state.json", b"%d" % step)
        assert a.checkpoint(time.time() + 30, "interval") is True
    manifests = sorted(k for k in a.s3.objects if "/manifests/" in k)
    assert manifests == [CK + "manifests/%010d.json" % s for s in range(7 - keep, 7)]
    named = {f["key"] for m in manifests for f in a.s3.get_json(m)["files"]}
    assert named == {k for k in a.s3.objects if "/data/" in k}  # every datum kept is named, every one named kept
    assert CK + "data/0000000003/constant.bin" in named  # the unchanged file of the first commit stays
    assert len(a.s3.deleted) == len(set(a.s3.deleted))


def test_pruning_counts_only_whole_manifests_and_forgets_deleted_uploads(make_agent):
    a = make_agent()
    a.keep = 1
    put_checkpoint(a.s3, 1, {"a.bin": b"a"})
    broken = put_checkpoint(a.s3, 2, {"b.bin": b"b"})
    del a.s3.objects[CK + "data/0000000002/b.bin"]
    a.sequence = 3
    a.uploaded["gone.bin"] = (1, 1, CK + "data/0000000002/gone.bin")  # uploaded by a checkpoint that was not committed
    a.s3.objects[CK + "data/0000000002/gone.bin"] = b"g"
    write(a, "c.bin", b"c")
    assert a.checkpoint(time.time() + 30, "interval") is True
    assert broken not in a.s3.objects and CK + "manifests/0000000001.json" not in a.s3.objects
    assert "gone.bin" not in a.uploaded  # never named by a later manifest: its object is gone
    assert sorted(a.s3.objects) == [CK + "data/0000000003/c.bin", CK + "manifests/0000000003.json"]


def test_a_prune_failure_leaves_the_commit_standing(make_agent):
    a = make_agent()
    write(a, "a.bin", b"a")

    def fail(keys, deadline=None):
        raise OSError("DeleteObjects refused")
    a.s3.delete = fail
    put_checkpoint(a.s3, 1, {"old.bin": b"o"})
    a.sequence, a.keep = 2, 1
    assert a.checkpoint(time.time() + 30, "interval") is True
    assert a.last_checkpoint["sequence"] == 2
    assert any(line.startswith("old checkpoints not pruned: OSError('DeleteObjects refused')") for line in a.lines)


def test_the_spec_sets_keep_and_a_bad_value_fails(make_agent):
    a = make_agent()
    a.s3.put_json(a.run_prefix + "spec.json", spec_doc(checkpoints={"keep": 5}))
    a.start()
    assert a.keep == 5
    b = make_agent()
    b.s3.put_json(b.run_prefix + "spec.json", spec_doc())
    b.start()
    assert b.keep == 2
    for bad in ({"keep": 0}, {"keep": "2"}, {"keep": True}, [2]):
        c = make_agent()
        c.s3.put_json(c.run_prefix + "spec.json", spec_doc(checkpoints=bad))
        with pytest.raises(agent.Fatal, match="^bad run spec: checkpoints.keep must be a positive integer$"):
            c.start()


def test_a_final_checkpoint_that_cannot_fit_the_drain_keeps_the_previous_one(make_agent):
    """docs/RUNS.md, "The drain window": at the rate measured on the last large upload, a final checkpoint that cannot
    reach S3 before the drain's deadline is not begun: the previous manifest stays, the time goes to the status."""
    a = make_agent()
    write(a, "big.bin", b"b" * (3 << 20))
    a.rate, a.drain = 1 << 20, ("interrupted", "spot", 5, 0)  # 1 MiB/s: 3 MiB need 3 s
    with pytest.raises(OSError, match=r"^3 MiB cannot reach S3 in the [12] s left at the measured 1 MiB/s: the "
                                      r"previous checkpoint stays$"):
        a.checkpoint(time.time() + 2, "final")
    assert a.s3.puts == []
    assert a.checkpoint(time.time() + 4, "final") is True  # it fits: sent
    write(a, "big.bin", b"c" * (3 << 20))
    a.drain = None  # not a drain (the command exited): no estimate, it is tried
    assert a.checkpoint(time.time() + 1, "final") is True
