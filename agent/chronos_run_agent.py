#!/usr/bin/env python3
"""Chronos run agent: runs one attempt of a training run on an EC2 instance or in an AWS Batch job.

The contract is docs/RUNS.md. Python 3.9+, standard library only; S3 requests are signed here (SigV4).
  chronos_run_agent.py run                          on an instance (started by the user data)
  chronos_run_agent.py batch -- CMD ...             wraps a Batch job's command
  chronos_run_agent.py backstop --deadline-seconds N  sleeps, then powers off
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import queue
import random
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET

VERSION = "0.1.0"
SCHEMA = 1
RUN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
RUNTIME_PREFIXES = ("runtime/python-env/", "runtime/scripts/")
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
MiB = 1 << 20
_log_lock = threading.Lock()
_log_file = None


class Fatal(Exception):
    """The attempt cannot run: it ends as `failed` with this reason."""


class Interrupted(Exception):
    """The agent received SIGTERM before the command started."""


class S3Error(Exception):
    pass


def iso(t=None):
    d = datetime.datetime.fromtimestamp(time.time() if t is None else t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def parse_iso(s):
    return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()


def log(msg):
    line = "%s chronos-agent: %s\n" % (iso(), msg)
    with _log_lock:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        if _log_file:
            _log_file.write(line.encode())
            _log_file.flush()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MiB), b""):
            h.update(b)
    return h.hexdigest()


def http_call(method, url, headers=None, body=None, timeout=10.0, sink=None):
    """One HTTP request: (status, headers, body bytes). With `sink` (a file), a 200 body is streamed into it."""
    u = urllib.parse.urlsplit(url)
    cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = cls(u.hostname, u.port, timeout=timeout, blocksize=MiB)
    try:
        conn.request(method, (u.path or "/") + ("?" + u.query if u.query else ""), body=body, headers=headers or {})
        r = conn.getresponse()
        if sink is not None and r.status == 200:
            for b in iter(lambda: r.read(MiB), b""):
                sink.write(b)
            return r.status, r.headers, b""
        return r.status, r.headers, r.read()
    finally:
        conn.close()


# --- SigV4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html) ---

def uri_encode(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def sigv4(method, host, path, query, headers, payload_hash, creds, region, service, amz_date):
    """The request's headers, signed: `path` is already URI-encoded, `query` a list of (name, value) pairs."""
    key_id, secret, token = creds
    h = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    h["host"] = host
    h["x-amz-date"] = amz_date
    if token:
        h["x-amz-security-token"] = token
    names = sorted(h)
    canonical = "\n".join([
        method, path,
        "&".join("%s=%s" % kv for kv in sorted((uri_encode(k), uri_encode(v)) for k, v in query)),
        "".join("%s:%s\n" % (k, h[k]) for k in names), ";".join(names), payload_hash])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        key_id, scope, ";".join(names), signature)
    return h


# --- IMDSv2 and credentials ---

class Imds:
    def __init__(self):
        self.base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254").rstrip("/")
        self.disabled = os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true"
        self.token, self.renew_at, self.lock = None, 0.0, threading.Lock()

    def _token(self, renew):
        with self.lock:
            if renew or not self.token or time.monotonic() > self.renew_at:
                status, _, body = http_call("PUT", self.base + "/latest/api/token",
                                            {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, timeout=2)
                if status != 200:
                    raise OSError("IMDSv2 token: HTTP %d" % status)
                self.token, self.renew_at = body.decode(), time.monotonic() + 21000
            return self.token

    def get(self, path):
        """The text of /latest/{path}, or None when IMDS answers 404."""
        if self.disabled:
            raise OSError("IMDS is disabled (AWS_EC2_METADATA_DISABLED)")
        for renew in (False, True):
            status, _, body = http_call("GET", self.base + "/latest/" + path,
                                        {"X-aws-ec2-metadata-token": self._token(renew)}, timeout=2)
            if status == 200:
                return body.decode()
            if status == 404:
                return None
            if status != 401:
                raise OSError("IMDS %s: HTTP %d" % (path, status))
        raise OSError("IMDS %s: the token was refused" % path)


class Credentials:
    """Environment variables, else the container credentials endpoint (Batch), else the instance role (IMDSv2)."""

    def __init__(self, imds):
        self.imds, self.creds, self.refresh_at, self.lock = imds, None, 0.0, threading.Lock()

    def get(self, renew=False):
        with self.lock:
            if renew or self.creds is None or time.time() > self.refresh_at:
                self.creds, expiry = self._load()
                # Refresh 5 minutes before expiry, and at most once a minute.
                self.refresh_at = float("inf") if expiry is None else max(expiry - 300, time.time() + 60)
            return self.creds

    def _load(self):
        e = os.environ
        if e.get("AWS_ACCESS_KEY_ID") and e.get("AWS_SECRET_ACCESS_KEY"):
            return (e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"], e.get("AWS_SESSION_TOKEN")), None
        relative, full = e.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), e.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        if relative or full:
            url, headers = ("http://169.254.170.2" + relative) if relative else full, {}
            token = e.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            if e.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
                with open(e["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]) as f:
                    token = f.read().strip()
            if token:
                headers["Authorization"] = token
            status, _, body = http_call("GET", url, headers, timeout=5)
            if status != 200:
                raise S3Error("container credentials endpoint: HTTP %d" % status)
        else:
            role = self.imds.get("meta-data/iam/security-credentials/")
            if not role:
                raise Fatal("no AWS credentials: no AWS_ACCESS_KEY_ID, no container credentials, no instance role")
            body = self.imds.get("meta-data/iam/security-credentials/" + role.split()[0]) or "{}"
        d = json.loads(body)
        expiry = parse_iso(d["Expiration"]) if d.get("Expiration") else None
        return (d["AccessKeyId"], d["SecretAccessKey"], d.get("Token")), expiry


# --- S3 ---

class S3:
    def __init__(self, bucket, region, creds):
        self.bucket, self.region, self.creds = bucket, region, creds
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:  # path-style, as the SDKs do with a custom endpoint
            u = urllib.parse.urlsplit(endpoint)
            self.scheme, self.host, self.root = u.scheme, u.netloc, "/" + bucket
        else:
            self.scheme, self.host, self.root = "https", "%s.s3.%s.amazonaws.com" % (bucket, region), ""

    def call(self, method, key="", query=(), body=None, size=0, sink=None, deadline=None, what=""):
        """A request retried with backoff on network errors, 5xx, 429 and throttling until `deadline`
        (epoch seconds; default 60 s from now). Returns (status, headers, body); 404 is returned, not raised."""
        deadline = deadline or time.time() + 60
        path = self.root + "/" + uri_encode(key, safe="-_.~/")
        url = "%s://%s%s" % (self.scheme, self.host, path)
        if query:
            url += "?" + "&".join("%s=%s" % (uri_encode(k), uri_encode(v)) for k, v in query)
        if body is None:
            payload = EMPTY_SHA
        elif isinstance(body, bytes):
            payload, size = hashlib.sha256(body).hexdigest(), len(body)
        else:  # a file: streamed; over HTTPS its payload is not hashed (S3 accepts UNSIGNED-PAYLOAD)
            payload = "UNSIGNED-PAYLOAD" if self.scheme == "https" else sha256_file(body.name)
        tries, renew = 0, False
        while True:
            tries += 1
            try:
                headers = {"x-amz-content-sha256": payload}
                if body is not None:
                    headers["content-length"] = str(size)
                    if not isinstance(body, bytes):
                        body.seek(0)
                if sink is not None:
                    sink.seek(0)
                    sink.truncate()
                amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                signed = sigv4(method, self.host, path, query, headers, payload, self.creds.get(renew),
                               self.region, "s3", amz_date)
                status, rh, data = http_call(method, url, signed, body, timeout=60, sink=sink)
                if status < 300 or status == 404:
                    return status, rh, data
                code = re.search(rb"<Code>([^<]*)</Code>", data or b"")
                code = code.group(1).decode() if code else ""
                error = "%s s3://%s/%s: HTTP %d %s" % (method, self.bucket, key, status, code)
                if code in ("ExpiredToken", "TokenRefreshRequired") and not renew:
                    renew = True
                    continue
                if status < 500 and status != 429 and code not in ("SlowDown", "RequestTimeout"):
                    raise S3Error(error)
            except (OSError, http.client.HTTPException) as e:
                error = "%s s3://%s/%s: %s" % (method, self.bucket, key, e)
            renew = False
            pause = min(8.0, 0.25 * 2 ** min(tries, 6)) * random.uniform(0.5, 1.0)
            if time.time() + pause > deadline:
                raise S3Error("%s (%d tries)" % (error, tries))
            if tries in (1, 4) or tries % 10 == 0:
                log("S3 unavailable, retrying: %s" % error)
            time.sleep(pause)

    def get_json(self, key, deadline=None):
        status, _, data = self.call("GET", key, deadline=deadline)
        if status == 404:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError as e:
            raise Fatal("s3://%s/%s is not valid JSON: %s" % (self.bucket, key, e))

    def get_bytes(self, key, deadline=None):
        status, _, data = self.call("GET", key, deadline=deadline)
        return None if status == 404 else data

    def put_json(self, key, doc, deadline=None):
        self.call("PUT", key, body=json.dumps(doc, indent=1).encode(), deadline=deadline)

    def put_file(self, key, path, deadline=None):
        """Uploads a file streamed from disk; returns the (size, mtime_ns) of what was uploaded."""
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size > 5 * 1024 * MiB:
                raise S3Error("%s is larger than 5 GiB, the most one PUT takes" % path)
            self.call("PUT", key, body=f, size=st.st_size, deadline=deadline)
            return st.st_size, st.st_mtime_ns

    def get_file(self, key, path, deadline=None):
        tmp = path + ".partial"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            status, _, _ = self.call("GET", key, sink=f, deadline=deadline)
        if status == 404:
            os.unlink(tmp)
            raise S3Error("s3://%s/%s is missing" % (self.bucket, key))
        os.replace(tmp, path)

    def list(self, prefix, deadline=None):
        """[(key, size)] under `prefix` (ListObjectsV2, every page)."""
        out, token = [], None
        while True:
            query = [("list-type", "2"), ("prefix", prefix)] + ([("continuation-token", token)] if token else [])
            _, _, data = self.call("GET", "", query=query, deadline=deadline)
            root = ET.fromstring(data)
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for c in root.findall(ns + "Contents"):
                out.append((c.findtext(ns + "Key"), int(c.findtext(ns + "Size"))))
            token = root.findtext(ns + "NextContinuationToken")
            if root.findtext(ns + "IsTruncated") != "true" or not token:
                return out


def safe_path(p):
    parts = p.split("/") if isinstance(p, str) else [""]
    if p.startswith("/") or "\\" in p or any(x in ("", ".", "..") for x in parts):
        raise Fatal("unsafe path in a manifest: %r" % (p,))
    return p


def skipped(name):
    return name.startswith(".") or name.endswith((".tmp", ".partial", "~"))


def positive_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


# --- the agent ---

class Agent:
    def __init__(self, mode, command=None):
        self.mode, self.batch_command = mode, command
        self.t0 = time.time()
        self.home = os.environ.get("CHRONOS_HOME", "/opt/chronos")
        self.work = os.path.join(self.home, "work")
        self.dirs = {n: os.path.join(self.work, n) for n in ("code", "checkpoints", "artifacts", "logs", "runtime")}
        self.imds = Imds()
        self.s3 = self.run_id = None
        self.attempt = 1
        self.info = {"instanceId": None, "instanceType": None, "lifecycle": None, "availabilityZone": None}
        self.state, self.exit_code, self.reason, self.ended_at, self.last_checkpoint = "running", None, None, None, None
        self.proc, self.drain_request, self.powered_off = None, None, False
        self.exited, self.wake, self.stop, self.checkpoint_now = (threading.Event() for _ in range(4))
        self.ck_lock, self.log_lock = threading.Lock(), threading.Lock()
        self.uploaded, self.committed, self.sequence = {}, {}, 0
        self.offsets, self.chunks = {}, {}
        self.echo = queue.Queue(maxsize=512)

    # entry point
    def main(self):
        global _log_file
        for d in self.dirs.values():
            if os.path.isdir(d):
                subprocess.run(["rm", "-rf", d], check=False)
            os.makedirs(d)
        _log_file = open(os.path.join(self.dirs["logs"], "agent.log"), "ab")
        log("chronos run agent %s, Python %s, mode %s" % (VERSION, sys.version.split()[0], self.mode))
        signal.signal(signal.SIGTERM, self.on_sigterm)
        rc, is_run = 0, True
        try:
            if not self.identify():
                log("no ChronosRunId tag and no CHRONOS_RUN_ID: not a run, nothing to do")
                is_run = False
                return 0
            self.setup()
            self.start()
            rc = self.supervise()
        except Interrupted:
            self.finish("interrupted", "the agent received SIGTERM before the command started", time.time() + 60)
            rc = 143
        except Exception as e:  # Fatal, S3Error, anything unexpected: the attempt fails, with the reason
            if not isinstance(e, (Fatal, S3Error)):
                log(traceback.format_exc().rstrip())
            reason = str(e) if isinstance(e, (Fatal, S3Error)) else "agent error: %r" % (e,)
            log("the attempt failed: %s" % reason)
            if self.proc is not None and self.exited.wait(0) is False:
                self.kill_command(5)
            self.finish("failed", reason, time.time() + 120)
            rc = 1
        finally:
            if self.mode == "run" and is_run:
                self.power_off()
        return rc if self.mode == "batch" else 0

    def on_sigterm(self, signum, frame):
        if self.proc is None:
            raise Interrupted()
        # The OS is shutting down (or Batch stops the job): systemd's default stop timeout is 90 s.
        if self.drain_request is None:
            self.drain_request = ("interrupted", "the agent received SIGTERM", 20, time.time() + 80)
        self.wake.set()

    def identify(self):
        e = os.environ
        if self.mode == "batch":
            self.run_id = e.get("AWS_BATCH_JOB_ID") or e.get("CHRONOS_RUN_ID")
            attempt = e.get("AWS_BATCH_JOB_ATTEMPT") or e.get("CHRONOS_ATTEMPT") or "1"
            if not self.run_id:
                raise SystemExit("chronos-agent: batch needs AWS_BATCH_JOB_ID")
        else:
            self.run_id = e.get("CHRONOS_RUN_ID") or self.imds_retry("meta-data/tags/instance/ChronosRunId")
            if not self.run_id:
                return False
            attempt = e.get("CHRONOS_ATTEMPT") or self.imds_retry("meta-data/tags/instance/ChronosAttempt") or "1"
        self.run_id = self.run_id.strip()
        if not RUN_ID.match(self.run_id):
            raise SystemExit("chronos-agent: the run ID %r does not match %s" % (self.run_id, RUN_ID.pattern))
        try:
            self.attempt = int(attempt)
        except ValueError:
            raise SystemExit("chronos-agent: the attempt %r is not a number" % attempt)
        log("run %s, attempt %d" % (self.run_id, self.attempt))
        return True

    def imds_retry(self, path, tries=5):
        for i in range(tries):
            try:
                return self.imds.get(path)
            except OSError as e:
                if i == tries - 1:
                    if self.mode == "batch":
                        return None
                    raise Fatal("instance metadata unreachable: %s" % e)
                time.sleep(1)

    def setup(self):
        e = os.environ
        self.bucket, self.env = e.get("CHRONOS_BUCKET"), e.get("CHRONOS_ENVIRONMENT")
        if not self.bucket or not self.env:
            raise SystemExit("chronos-agent: CHRONOS_BUCKET and CHRONOS_ENVIRONMENT are required")
        self.run_prefix = "%s/runs/%s/" % (self.env, self.run_id)
        self.ck_prefix = "%s/checkpoints/%s/" % (self.env, self.run_id)
        if self.mode == "batch":
            self.imds.disabled = self.imds.disabled or not self.imds_reachable()
        region = e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or self.imds_retry("meta-data/placement/region")
        if not region:
            raise SystemExit("chronos-agent: no region (AWS_REGION, or IMDS placement/region)")
        self.s3 = S3(self.bucket, region.strip(), Credentials(self.imds))
        if not self.imds.disabled:
            for field, path in (("instanceId", "instance-id"), ("instanceType", "instance-type"),
                                ("lifecycle", "instance-life-cycle"), ("availabilityZone", "placement/availability-zone")):
                self.info[field] = self.imds_retry("meta-data/" + path)
        if self.mode == "batch":
            self.info["instanceId"] = self.run_id
        if sys.version_info < (3, 9):
            raise Fatal("python3 is %d.%d; the agent needs 3.9 or later" % sys.version_info[:2])

    def imds_reachable(self):
        try:
            self.imds.get("meta-data/instance-id")
            return True
        except OSError:
            log("no instance metadata here: no spot notices are read (Batch sends SIGTERM)")
            return False

    def start(self):
        if self.mode == "batch":
            spec = {"command": self.batch_command}
            for field, var in (("maxRunLifetimeSeconds", "CHRONOS_MAX_RUN_LIFETIME_SECONDS"),
                               ("checkpointIntervalSeconds", "CHRONOS_CHECKPOINT_INTERVAL_SECONDS"),
                               ("logFlushSeconds", "CHRONOS_LOG_FLUSH_SECONDS"),
                               ("stopGraceSeconds", "CHRONOS_STOP_GRACE_SECONDS"),
                               ("controlPollSeconds", "CHRONOS_CONTROL_POLL_SECONDS")):
                if e_int(var):
                    spec[field] = e_int(var)
        else:
            key = self.run_prefix + "spec.json"
            spec = self.s3.get_json(key)
            if spec is None:
                raise Fatal("no run spec at s3://%s/%s" % (self.bucket, key))
            self.check_spec(spec)
        self.spec = spec
        self.interval = spec.get("checkpointIntervalSeconds", 60)
        self.flush_seconds = spec.get("logFlushSeconds", 15)
        self.grace = min(spec.get("stopGraceSeconds", 60), 90)
        self.control_seconds = spec.get("controlPollSeconds", 30)
        lifetimes = [x for x in (spec.get("maxRunLifetimeSeconds"), e_int("CHRONOS_MAX_RUN_LIFETIME_SECONDS")) if x]
        self.lifetime = min(lifetimes) if lifetimes else None
        if spec.get("code"):
            self.fetch_code(spec["code"]["manifestKey"])
        for prefix in spec.get("runtime", []):
            self.fetch_prefix(self.env + "/" + prefix, os.path.join(self.dirs["runtime"], prefix[len("runtime/"):]))
        self.write_status()
        self.restore()

    def check_spec(self, spec):
        def bad(msg):
            raise Fatal("bad run spec: " + msg)
        if not isinstance(spec, dict) or not positive_int(spec.get("schemaVersion")):
            bad("schemaVersion must be a positive integer")
        if spec["schemaVersion"] > SCHEMA:
            raise Fatal("spec.json has schemaVersion %d; this agent knows version %d" % (spec["schemaVersion"], SCHEMA))
        if spec.get("runId") != self.run_id:
            bad("runId %r is not the run's ID %r" % (spec.get("runId"), self.run_id))
        if spec.get("environment") != self.env:
            bad("environment %r is not %r" % (spec.get("environment"), self.env))
        cmd = spec.get("command")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
            bad("command must be a non-empty array of strings")
        env = spec.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            bad("env must be an object of strings")
        code = spec.get("code")
        if code is not None and not (isinstance(code, dict) and isinstance(code.get("manifestKey"), str)
                                     and code["manifestKey"].startswith(self.env + "/code/manifests/")):
            bad("code.manifestKey must be a key under %s/code/manifests/" % self.env)
        runtime = spec.get("runtime", [])
        if not isinstance(runtime, list) or any(p not in RUNTIME_PREFIXES for p in runtime):
            bad("runtime must list only %s" % ", ".join(RUNTIME_PREFIXES))
        for field in ("maxRunLifetimeSeconds", "checkpointIntervalSeconds", "logFlushSeconds", "stopGraceSeconds",
                      "controlPollSeconds"):
            if (field in spec or field == "maxRunLifetimeSeconds") and not positive_int(spec.get(field)):
                bad("%s must be a positive integer" % field)
        if not isinstance(spec.get("createdAt"), str):
            bad("createdAt is required")

    def fetch_code(self, manifest_key):
        data = self.s3.get_bytes(manifest_key)
        if data is None:
            raise Fatal("the code manifest s3://%s/%s is missing" % (self.bucket, manifest_key))
        if hashlib.sha256(data).hexdigest() != manifest_key.rsplit("/", 1)[-1][:-len(".json")]:
            raise Fatal("code manifest %s does not match its SHA-256" % manifest_key)
        manifest = json.loads(data.decode("utf-8"))
        if manifest.get("schemaVersion", 0) > SCHEMA:
            raise Fatal("code manifest has schemaVersion %s; this agent knows version %d"
                        % (manifest["schemaVersion"], SCHEMA))
        files = manifest.get("files", [])
        for f in files:
            path = os.path.join(self.dirs["code"], safe_path(f["path"]))
            self.s3.get_file("%s/code/blobs/%s" % (self.env, f["sha256"]), path)
            if os.path.getsize(path) != f["size"] or sha256_file(path) != f["sha256"]:
                raise Fatal("code blob %s (%s) does not match its SHA-256" % (f["sha256"], f["path"]))
            os.chmod(path, f.get("mode", 0o644) & 0o777)
        log("code: %d files from %s" % (len(files), manifest_key))

    def fetch_prefix(self, prefix, into):
        objects = self.s3.list(prefix)
        for key, _ in objects:
            if not key.endswith("/"):
                path = os.path.join(into, safe_path(key[len(prefix):]))
                self.s3.get_file(key, path)
                if "/scripts/" in prefix:
                    os.chmod(path, 0o755)
        log("runtime: %d files from %s" % (len(objects), prefix))

    # checkpoints
    def restore(self):
        manifests = sorted(k for k, _ in self.s3.list(self.ck_prefix + "manifests/") if k.endswith(".json"))
        data = dict(self.s3.list(self.ck_prefix + "data/"))
        seen = [int(k[len(self.ck_prefix):].split("/")[1].split(".")[0]) for k in manifests + list(data)
                if re.match(r"^\d+$", k[len(self.ck_prefix):].split("/")[1].split(".")[0])]
        self.sequence = max(seen) + 1 if seen else 1
        for key in reversed(manifests):
            try:
                m = self.s3.get_json(key)
            except Fatal as e:
                log("checkpoint skipped: %s" % e)
                continue
            if not isinstance(m, dict) or m.get("schemaVersion", 0) > SCHEMA:
                log("checkpoint %s skipped: schemaVersion %s; this agent knows %d" % (key, m and m.get("schemaVersion"), SCHEMA))
                continue
            missing = [f["path"] for f in m.get("files", []) if data.get(f["key"]) != f["size"]]
            if missing:
                log("checkpoint %s skipped: %d of its files are missing (%s)" % (key, len(missing), missing[0]))
                continue
            for f in m["files"]:
                path = os.path.join(self.dirs["checkpoints"], safe_path(f["path"]))
                self.s3.get_file(f["key"], path)
                st = os.stat(path)
                self.uploaded[f["path"]] = self.committed[f["path"]] = (st.st_size, st.st_mtime_ns, f["key"])
            self.last_checkpoint = {"sequence": m["sequence"], "manifestKey": key, "at": m.get("createdAt")}
            log("restored checkpoint %d (%d files)" % (m["sequence"], len(m["files"])))
            return True
        log("no checkpoint to restore" if not manifests else "no whole checkpoint to restore")
        return False

    def scan(self):
        root, files = self.dirs["checkpoints"], {}
        for d, subdirs, names in os.walk(root):
            subdirs[:] = [s for s in subdirs if not s.startswith(".")]
            for n in names:
                path = os.path.join(d, n)
                if skipped(n) or not os.path.isfile(path):
                    continue
                st = os.stat(path)
                files[os.path.relpath(path, root).replace(os.sep, "/")] = (st.st_size, st.st_mtime_ns)
        return files

    def checkpoint(self, deadline, why):
        """Uploads new and changed files, then the manifest: True when a new checkpoint was committed."""
        with self.ck_lock:
            files = self.scan()
            if files == {p: v[:2] for p, v in self.committed.items()}:
                return False
            seq, sent = self.sequence, 0
            for rel, stat in sorted(files.items()):
                u = self.uploaded.get(rel)
                if u and u[:2] == stat:
                    continue
                key = "%sdata/%010d/%s" % (self.ck_prefix, seq, rel)
                try:
                    size, mtime = self.s3.put_file(key, os.path.join(self.dirs["checkpoints"], rel), deadline)
                except FileNotFoundError:
                    del files[rel]
                    continue
                self.uploaded[rel] = (size, mtime, key)
                sent += 1
            key = "%smanifests/%010d.json" % (self.ck_prefix, seq)
            at = iso()
            self.s3.put_json(key, {"schemaVersion": SCHEMA, "sequence": seq, "createdAt": at, "files": [
                {"path": rel, "key": self.uploaded[rel][2], "size": self.uploaded[rel][0]} for rel in sorted(files)]},
                deadline)
            self.committed = {rel: self.uploaded[rel] for rel in files}
            self.sequence = seq + 1
            self.last_checkpoint = {"sequence": seq, "manifestKey": key, "at": at}
            log("checkpoint %d (%s): %d files, %d uploaded" % (seq, why, len(files), sent))
            return True

    # logs
    def flush_logs(self, deadline):
        with self.log_lock:
            for stream in ("stdout", "stderr", "agent"):
                path = os.path.join(self.dirs["logs"], stream + ".log")
                size = os.path.getsize(path) if os.path.exists(path) else 0
                offset = self.offsets.get(stream, 0)
                while offset < size:
                    with open(path, "rb") as f:
                        f.seek(offset)
                        data = f.read(min(size - offset, 8 * MiB))
                    chunk = self.chunks.get(stream, 0)
                    self.s3.call("PUT", "%s/logs/%s/%03d/%s/%010d.log" % (self.env, self.run_id, self.attempt, stream, chunk),
                                 body=data, deadline=deadline)
                    offset += len(data)
                    self.offsets[stream], self.chunks[stream] = offset, chunk + 1

    def status(self):
        return dict({"schemaVersion": SCHEMA, "runId": self.run_id, "state": self.state, "attempt": self.attempt},
                    **self.info, startedAt=iso(self.t0), updatedAt=iso(), endedAt=self.ended_at,
                    exitCode=self.exit_code, lastCheckpoint=self.last_checkpoint, reason=self.reason,
                    agentVersion=VERSION)

    def write_status(self, deadline=None):
        doc = self.status()
        self.s3.put_json(self.run_prefix + "status.json", doc, deadline)
        self.s3.put_json("%sattempts/%03d.json" % (self.run_prefix, self.attempt), doc, deadline)

    # the command
    def supervise(self):
        env = dict(os.environ)
        for k in [k for k in env if k.startswith("CHRONOS_")]:
            del env[k]
        env.update(CHRONOS_RUN_ID=self.run_id, CHRONOS_ATTEMPT=str(self.attempt),
                   CHRONOS_CHECKPOINT_DIR=self.dirs["checkpoints"], CHRONOS_ARTIFACT_DIR=self.dirs["artifacts"],
                   CHRONOS_RUNTIME_DIR=self.dirs["runtime"], CHRONOS_RESUMED="1" if self.last_checkpoint else "0")
        env.update(self.spec.get("env", {}))
        cmd = self.spec["command"]
        log("starting %s" % " ".join(shlex.quote(a) for a in cmd))
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.dirs["code"], env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            self.exit_code = 127
            raise Fatal("cannot start the command %r: %s" % (cmd[0], e))
        self.readers = [self.thread(self.read_pipe, self.proc.stdout, "stdout"),
                        self.thread(self.read_pipe, self.proc.stderr, "stderr")]
        self.thread(self.echo_out)
        self.thread(self.wait_command)
        keepers = [self.thread(self.keep_logs), self.thread(self.keep_checkpoints)]
        now = time.time()
        next_imds, next_control = now, now + self.control_seconds
        end = self.t0 + self.lifetime if self.lifetime else float("inf")
        while not self.exited.is_set() and self.drain_request is None:
            now = time.time()
            if now >= next_imds and not self.imds.disabled:
                self.listen_imds()
                next_imds = now + 5
            if now >= next_control and self.mode == "run":
                self.listen_control()
                next_control = now + self.control_seconds
            if now >= end:
                self.drain_request = ("timed-out", "run lifetime of %d s reached" % self.lifetime, self.grace,
                                      self.t0 + self.lifetime + 270)
            self.wake.wait(max(0.05, min(1.0, next_imds - now, end - now)))
            self.wake.clear()
        if self.drain_request:
            state, reason, grace, deadline = self.drain_request
            log("drain: %s" % reason)
            self.kill_command(grace)
        else:
            state = "succeeded" if self.proc.returncode == 0 else "failed"
            reason = "the command exited with code %d" % self.exit_code
            deadline = time.time() + 600
            self.kill_command(0)  # what the command left running in its group
        self.stop.set()
        self.checkpoint_now.set()
        for t in keepers + self.readers:
            t.join()
        self.echo.put(None)
        log("the command ended with code %d" % self.exit_code)
        self.finish(state, reason, deadline)
        return self.exit_code

    def thread(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        return t

    def wait_command(self):
        rc = self.proc.wait()
        self.exit_code = rc if rc >= 0 else 128 - rc
        self.exited.set()
        self.wake.set()

    def kill_command(self, grace):
        if not self.exited.is_set() and grace > 0:
            self.signal_group(signal.SIGTERM)
            if not self.exited.wait(grace):
                log("the command did not stop within %d s: SIGKILL" % grace)
        self.signal_group(signal.SIGKILL)
        self.exited.wait()

    def signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def read_pipe(self, pipe, stream):
        with open(os.path.join(self.dirs["logs"], stream + ".log"), "ab") as out:
            fd = pipe.fileno()
            while True:
                data = os.read(fd, 65536)
                if not data:
                    return
                out.write(data)
                out.flush()
                try:
                    self.echo.put_nowait((stream, data))
                except queue.Full:  # a slow console never slows the command
                    pass

    def echo_out(self):
        while True:
            item = self.echo.get()
            if item is None:
                return
            try:
                out = sys.stdout if item[0] == "stdout" else sys.stderr
                out.buffer.write(item[1])
                out.flush()
            except (OSError, ValueError):
                pass

    def keep_logs(self):
        while not self.stop.wait(self.flush_seconds):
            try:
                self.flush_logs(time.time() + min(10, self.flush_seconds))
            except S3Error as e:
                log("logs kept locally, sent at the next flush: %s" % e)

    def keep_checkpoints(self):
        due = time.time() + self.interval
        while True:
            self.checkpoint_now.wait(max(0.0, due - time.time()))
            if self.stop.is_set():
                return
            early = self.checkpoint_now.is_set()
            self.checkpoint_now.clear()
            try:
                if self.checkpoint(time.time() + 30, "rebalance recommendation" if early else "interval"):
                    self.write_status(time.time() + 30)
                due = time.time() + self.interval
            except S3Error as e:
                log("checkpoint not uploaded, retried: %s" % e)
                due = time.time() + min(self.interval, 10)

    def listen_imds(self):
        try:
            action = self.imds.get("meta-data/spot/instance-action")
            if action:
                notice = json.loads(action)
                try:
                    at = parse_iso(notice["time"])
                except (KeyError, ValueError):
                    at = time.time() + 120
                self.drain_request = ("interrupted", "spot interruption notice: %s at %s" % (
                    notice.get("action", "terminate"), notice.get("time")), min(self.grace, at - 30 - time.time()),
                    at - 5)
                return
            rebalance = self.imds.get("meta-data/events/recommendations/rebalance")
            if rebalance and rebalance != getattr(self, "rebalance", None):
                self.rebalance = rebalance
                log("rebalance recommendation: an early checkpoint")
                self.checkpoint_now.set()
        except (OSError, ValueError) as e:
            log("instance metadata: %s" % e)

    def listen_control(self):
        try:
            doc = self.s3.get_json(self.run_prefix + "control.json", time.time() + 2)
        except (S3Error, Fatal) as e:
            log("control.json: %s" % e)
            return
        if not doc:
            return
        if doc.get("schemaVersion", 0) > SCHEMA:
            log("control.json has schemaVersion %s; this agent knows %d: ignored" % (doc.get("schemaVersion"), SCHEMA))
        elif doc.get("action") == "stop":
            self.drain_request = ("stopped", "stop requested at %s" % doc.get("requestedAt"), self.grace,
                                  time.time() + self.grace + 600)

    # the end
    def finish(self, state, reason, deadline):
        """Final checkpoint, artifacts, logs, then the status; each best effort until `deadline`."""
        self.state, self.reason, self.ended_at = state, reason, iso()
        if self.s3 is None:
            return
        steps = [("checkpoint", lambda: self.checkpoint(deadline, "final")), ("artifacts", lambda: self.artifacts(deadline))]
        if getattr(self, "spec", None) is None:
            steps = []
        for what, step in steps:
            try:
                step()
            except (S3Error, OSError) as e:
                log("final %s not uploaded: %s" % (what, e))
        log("attempt %d: %s (%s)" % (self.attempt, state, reason))
        for what, step in (("logs", lambda: self.flush_logs(deadline)), ("status", lambda: self.write_status(deadline))):
            try:
                step()
            except (S3Error, OSError) as e:
                log("final %s not written: %s" % (what, e))

    def artifacts(self, deadline):
        root, n = self.dirs["artifacts"], 0
        for d, _, names in os.walk(root):
            for name in names:
                path = os.path.join(d, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                self.s3.put_file("%s/artifacts/%s/%s" % (self.env, self.run_id, rel), path, deadline)
                n += 1
        if n:
            log("artifacts: %d files" % n)

    def power_off(self):
        if self.powered_off:
            return
        self.powered_off = True
        power_off(os.environ.get("CHRONOS_POWEROFF_COMMAND", "systemctl poweroff"))


def e_int(name):
    v = os.environ.get(name)
    return int(v) if v and v.isdigit() and int(v) > 0 else None


def power_off(command):
    log("powering off: %s" % command)
    try:
        subprocess.run(shlex.split(command), timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        log("power-off command failed: %s" % e)


def backstop(seconds):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    end = time.monotonic() + seconds
    log("backstop: power off in %d s" % seconds)
    while time.monotonic() < end:
        time.sleep(min(60.0, end - time.monotonic()))
    power_off(os.environ.get("CHRONOS_POWEROFF_COMMAND", "systemctl poweroff"))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="chronos_run_agent.py", description="Chronos run agent (docs/RUNS.md)")
    p.add_argument("--version", action="version", version="chronos-run-agent " + VERSION)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run the attempt of this instance's ChronosRunId tag, then power off")
    b = sub.add_parser("batch", help="wrap an AWS Batch job's command: batch -- CMD ...")
    b.add_argument("command", nargs=argparse.REMAINDER)
    s = sub.add_parser("backstop", help="sleep, then run the power-off command")
    s.add_argument("--deadline-seconds", type=int, required=True)
    a = p.parse_args(argv)
    if a.cmd == "backstop":
        return backstop(a.deadline_seconds)
    if a.cmd == "batch":
        command = a.command[1:] if a.command[:1] == ["--"] else a.command
        if not command:
            p.error("batch needs a command: batch -- CMD ...")
        return Agent("batch", command).main()
    return Agent("run").main()


if __name__ == "__main__":
    sys.exit(main())
