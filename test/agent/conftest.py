"""Harness of the run agent's tests: moto server (S3) and amazon-ec2-metadata-mock (IMDSv2) on 127.0.0.1, the agent
as a real process, the toy training script (fixtures/toy_train.py) and a power-off command that records its calls."""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import glob
import http.client
import http.server

import boto3
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The agent's path from the repository's root; the mutation task (scripts/mutation/run.sh) runs these tests in a copy
# whose layout is its own, and names the mutated file there.
AGENT = os.path.join(ROOT, os.environ.get("CHRONOS_TEST_AGENT_RELPATH",
                                          os.path.join("chronos-training", "src", "chronos_training", "agent", "chronos_run_agent.py")))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TOY = os.path.join(FIXTURES, "toy_train.py")
ENV_NAME = "dev"


def find_python(version):
    """An interpreter of exactly `version` ("3.9"): AGENT_PYTHON for 3.9, python3.9 on PATH, or pyenv's."""
    for p in ([os.environ.get("AGENT_PYTHON")] if version == "3.9" else []) + [shutil.which("python" + version)] + \
            sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (version, version)))):
        if p and subprocess.run([p, "-c", "import sys; sys.exit(sys.version_info[:2] != (%s))" % version.replace(".", ", ")],
                                capture_output=True).returncode == 0:
            return p
    return None


# The agent runs under Python 3.9 (Amazon Linux 2023's /usr/bin/python3) when the machine has one, else this one.
AGENT_PYTHON = find_python("3.9") or sys.executable


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("%s did not listen on %d" % (what, port))


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    """MOTO_ENDPOINT (scripts/test-agent.sh starts one for every worker), else one moto server per pytest worker;
    each test has its own bucket."""
    if os.environ.get("MOTO_ENDPOINT"):
        port = int(os.environ["MOTO_ENDPOINT"].rsplit(":", 1)[1])
        end = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > end:
                    raise RuntimeError("no moto server at " + os.environ["MOTO_ENDPOINT"])
                time.sleep(0.2)
        yield os.environ["MOTO_ENDPOINT"]
        return
    server = os.environ.get("MOTO_SERVER") or os.path.join(ROOT, ".venv-moto", "bin", "moto_server")
    port = free_port()
    log = open(str(tmp_path_factory.mktemp("moto") / "moto.log"), "w")
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc, "moto_server")
    yield "http://127.0.0.1:%d" % port
    stop(proc)


class Aemm:
    """amazon-ec2-metadata-mock, IMDSv2 only (-I), serving two instance tags through the two tag paths its
    configuration can set (`tags-instance-name`, `tags-instance-test`): by default ChronosRunId and ChronosAttempt
    (the bucket then comes from CHRONOS_BUCKET, as Run.env sets it); `tags` ({key: value}, at most two) serves others,
    such as ChronosRunId and ChronosBucket (the attempt then from CHRONOS_ATTEMPT). Delays count from its start. AEMM
    serves spot and rebalance events to the first `-x` (default 2) distinct client IPs only: every client here is
    127.0.0.1, and each test has its own AEMM."""

    def __init__(self, tmp, run_id=None, attempt=1, lifecycle="spot", spot_delay=None, rebalance_delay=None, tags=None,
                 notice_time=None):
        self.port = free_port()
        paths, values = {}, {"instance-life-cycle": lifecycle}
        if tags is None and run_id:
            tags = {"ChronosRunId": run_id, "ChronosAttempt": str(attempt)}
        assert len(tags or {}) <= 2, "AEMM serves two tag paths"
        for setting, (key, value) in zip(("tags-instance-name", "tags-instance-test"), sorted((tags or {}).items())):
            paths[setting] = "/latest/meta-data/tags/instance/" + key
            values[setting] = value
        config = os.path.join(str(tmp), "aemm-%d.json" % self.port)
        with open(config, "w") as f:
            json.dump({"metadata": {"paths": paths, "values": values}}, f)
        # `spot` serves the notice after -d seconds and the rebalance recommendation after --rebalance-delay-sec
        # (at once by default): "never" is a day.
        args = [os.environ.get("AEMM", os.path.expanduser("~/go/bin/ec2-metadata-mock")), "-c", config, "-I",
                "-n", "127.0.0.1", "-p", str(self.port), "spot", "-d", str(spot_delay or 86400),
                "--rebalance-delay-sec", str(rebalance_delay if rebalance_delay is not None else 86400)]
        if notice_time is not None:  # the notice's `time` (epoch seconds); AEMM's default is each request's + 2 min
            args += ["-t", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(notice_time))]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=str(tmp))
        wait_port(self.port, self.proc, "ec2-metadata-mock")
        self.endpoint = "http://127.0.0.1:%d" % self.port


class Run:
    """One test's world: a bucket, an AEMM, a CHRONOS_HOME, the toy's step record and the power-off record."""

    def __init__(self, tmp, moto, run_id):
        self.tmp, self.moto, self.run_id = tmp, moto, run_id
        self.bucket = "agent-test-" + uuid.uuid4().hex[:12]
        self.s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        self.s3.create_bucket(Bucket=self.bucket)
        self.steps_file = os.path.join(str(tmp), "steps.txt")
        self.poweroff_file = os.path.join(str(tmp), "poweroff.jsonl")
        self.aemms, self.procs = [], []

    def aemm(self, **kw):
        a = Aemm(self.tmp, **kw)
        self.aemms.append(a)
        return a

    def put_spec(self, command, code=False, **fields):
        spec = {"schemaVersion": 1, "runId": self.run_id, "environment": ENV_NAME, "command": command,
                "maxRunLifetimeSeconds": 120, "checkpointIntervalSeconds": 2, "logFlushSeconds": 1,
                "stopGraceSeconds": 10, "controlPollSeconds": 1, "createdAt": "2026-12-01T00:00:00Z",
                "createdBy": "test/agent"}
        if code:
            spec["code"] = {"manifestKey": self.put_code({"toy_train.py": open(TOY, "rb").read()})}
        spec.update(fields)
        self.put_json("%s/runs/%s/spec.json" % (ENV_NAME, self.run_id), spec)
        return spec

    def put_agent(self, body=None):
        """The run's agent where the launcher uploads it when the run starts (commands.upload_agent), which the boot
        script's loader fetches: this agent's file, or `body`."""
        if body is None:
            with open(AGENT, "rb") as f:
                body = f.read()
        self.s3.put_object(Bucket=self.bucket, Key="%s/runs/%s/agent/chronos_run_agent.py" % (ENV_NAME, self.run_id),
                           Body=body)

    def put_code(self, files):
        entries = []
        for path, data in sorted(files.items()):
            sha = hashlib.sha256(data).hexdigest()
            self.s3.put_object(Bucket=self.bucket, Key="%s/code/blobs/%s" % (ENV_NAME, sha), Body=data)
            entries.append({"path": path, "sha256": sha, "size": len(data), "mode": 0o644})
        body = json.dumps({"schemaVersion": 1, "files": entries}).encode()
        key = "%s/code/manifests/%s.json" % (ENV_NAME, hashlib.sha256(body).hexdigest())
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def put_json(self, key, doc):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(doc).encode())

    def get_json(self, key):
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def get(self, key):
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix):
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for p in pages for o in p.get("Contents", [])]

    def status(self, attempt=None):
        if attempt is None:
            return self.get_json("%s/runs/%s/status.json" % (ENV_NAME, self.run_id))
        return self.get_json("%s/runs/%s/attempts/%03d.json" % (ENV_NAME, self.run_id, attempt))

    def log(self, attempt, stream):
        """The concatenation of a stream's chunks, in key order."""
        prefix = "%s/logs/%s/%03d/%s/" % (ENV_NAME, self.run_id, attempt, stream)
        return b"".join(self.get(k) for k in sorted(self.keys(prefix)))

    def manifests(self):
        return sorted(self.keys("%s/checkpoints/%s/manifests/" % (ENV_NAME, self.run_id)))

    def checkpoint_state(self, manifest_key):
        m = self.get_json(manifest_key)
        (f,) = [f for f in m["files"] if f["path"] == "state.json"]
        return json.loads(self.get(f["key"]))["step"]

    def steps(self):
        """[(attempt, step)] in the order the toy ran them."""
        if not os.path.exists(self.steps_file):
            return []
        with open(self.steps_file) as f:
            return [tuple(int(x) for x in line.split()) for line in f if line.strip()]

    def poweroffs(self):
        if not os.path.exists(self.poweroff_file):
            return []
        with open(self.poweroff_file) as f:
            return [json.loads(line) for line in f if line.strip()]

    def env(self, aemm=None, s3_endpoint=None, home="home", **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHRONOS_"))}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL_S3=s3_endpoint or self.moto, CHRONOS_HOME=os.path.join(str(self.tmp), home),
                   CHRONOS_PER_BOOT_DIR=os.path.join(str(self.tmp), home + "-per-boot"),
                   CHRONOS_BUCKET=self.bucket, CHRONOS_ENVIRONMENT=ENV_NAME,
                   CHRONOS_POWEROFF_COMMAND="%s %s" % (sys.executable, os.path.join(FIXTURES, "poweroff.py")),
                   POWEROFF_FILE=self.poweroff_file, TOY_STEPS_FILE=self.steps_file)
        if aemm:
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = aemm.endpoint  # an Aemm or a FakeImds
        else:
            env["AWS_EC2_METADATA_DISABLED"] = "true"
        env.update(extra)
        return env

    def start_agent(self, env, args=("run",)):
        out = open(os.path.join(str(self.tmp), "agent-%d.out" % len(self.procs)), "wb")
        p = subprocess.Popen([AGENT_PYTHON, AGENT] + list(args), env=env, stdout=out, stderr=subprocess.STDOUT)
        p.out_path = out.name
        self.procs.append(p)
        return p

    def agent(self, env, args=("run",), timeout=90):
        p = self.start_agent(env, args)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError("the agent did not end in %d s:\n%s" % (timeout, self.output(p)))
        return p

    def output(self, p):
        with open(p.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for a in self.aemms:
            stop(a.proc)


@pytest.fixture
def make_run(tmp_path, moto_endpoint):
    runs = []

    def make(run_id=None):
        r = Run(tmp_path, moto_endpoint, run_id or "test-" + uuid.uuid4().hex[:8])
        runs.append(r)
        return r
    yield make
    for r in runs:
        r.close()


def toy(steps, every=10, pause=0.05, exit_code=0):
    return [sys.executable, TOY, str(steps), str(every), str(pause)] + ([str(exit_code)] if exit_code else [])


def expected_stdout(first, last, resumed_from=0, resumed="0", attempt=1, done=True):
    lines = ["resumed=%s from step %d, attempt %d" % (resumed, resumed_from, attempt)]
    lines += ["step %d" % i for i in range(first, last + 1)]
    if done:
        lines.append("done")
    return ("\n".join(lines) + "\n").encode()


class FlakyProxy:
    """A TCP proxy between the agent and moto that can drop every connection (S3 unreachable)."""

    def __init__(self, target_port):
        self.target = target_port
        self.down = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def set_down(self, down):
        self.down = down
        if down:
            with self.lock:
                for c in self.conns:
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                self.conns = []

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    def pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.set_down(True)


class FakeImds:
    """A tiny IMDSv2 for what AEMM cannot serve (a 401, a 5xx, a given `services/domain`): the token PUT answers
    `token_status`; a GET of meta-data/{path} answers `answers[path]`, a (status, body) or a list of them taken in turn
    (the last one repeats), else 404; (None, seconds) answers nothing for that long. `seen` lists the paths asked."""

    def __init__(self, answers, token_status=200):
        self.answers, self.seen = {k: v if isinstance(v, list) else [v] for k, v in answers.items()}, []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                self.answer(token_status, "token" if token_status == 200 else "")

            def do_GET(self):
                path = self.path[len("/latest/meta-data/"):]
                fake.seen.append(path)
                queue = fake.answers.get(path, [(404, "")])
                status, body = queue.pop(0) if len(queue) > 1 else queue[0]
                if status is None:  # no answer: the client times out
                    time.sleep(body)
                    return
                self.answer(status, body)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_port

    def close(self):
        self.server.shutdown()


class S3Proxy:
    """An HTTP proxy in front of moto that can hold back the requests whose path contains `stall` for
    `stall_seconds` (a slow S3), and read request bodies at `rate` bytes per second (a slow uplink). `received` maps
    each request path to the body bytes read so far (an upload in flight)."""

    def __init__(self, moto, stall=None, stall_seconds=0, rate=None):
        target = urllib.parse.urlsplit(moto)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self):
                size = int(self.headers.get("Content-Length") or 0)
                body = bytearray()  # (bytes += would copy the body for each chunk: seconds on a loaded machine)
                while len(body) < size:
                    chunk = self.rfile.read(min(65536, size - len(body)))
                    if not chunk:
                        return
                    body += chunk
                    proxy.received[self.path] = len(body)
                    if proxy.rate:
                        time.sleep(len(chunk) / proxy.rate)
                if proxy.stall and proxy.stall in self.path:
                    time.sleep(proxy.stall_seconds)
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                conn.request(self.command, self.path, body=bytes(body) or None,
                             headers={k: v for k, v in self.headers.items() if k.lower() != "connection"})
                r = conn.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

            def log_message(self, *args):
                pass
        self.stall, self.stall_seconds, self.rate, self.received = stall, stall_seconds, rate, {}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_port

    def close(self):
        self.server.shutdown()


def spot_drain(run, agent, imds, seconds):
    """Serves a spot notice `seconds` ahead on `imds` (a FakeImds), waits until the agent has drained and waits for EC2,
    then reclaims the instance (SIGTERM to the agent, as the OS shutdown sends)."""
    at = time.time() + seconds
    imds.answers["spot/instance-action"] = [(200, json.dumps({"action": "terminate", "time": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))}))]
    while "left for EC2 to reclaim" not in run.output(agent):
        assert time.time() < at + 60 and agent.poll() is None, run.output(agent)
        time.sleep(0.5)
    agent.send_signal(signal.SIGTERM)
    agent.wait(30)


def kill_group_of(pid_file):
    if os.path.exists(pid_file):
        try:
            os.killpg(int(open(pid_file).read().strip()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


__all__ = ["AGENT_PYTHON", "find_python", "toy", "expected_stdout", "FlakyProxy", "FakeImds", "S3Proxy", "ENV_NAME", "AGENT",
           "ROOT", "FIXTURES", "kill_group_of", "shutil", "spot_drain"]
