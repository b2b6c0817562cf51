#!/usr/bin/env python3
# Chronos run agent: one attempt of a training run (contract: docs/RUNS.md). Python 3.9+, standard library only.
import calendar, hashlib, hmac, http.client, json, os, queue, random, re, shlex, signal, subprocess, sys, threading, time
import urllib.parse
import xml.etree.ElementTree as ET

VERSION = "0.1.0"
USAGE = "usage: chronos_run_agent.py run|rebooted|batch -- COMMAND...|backstop --deadline-seconds N|--version"
SCHEMA = 1
RUNTIME = ("runtime/python-env/", "runtime/scripts/")
INTERVALS = ("checkpointIntervalSeconds", "logFlushSeconds", "stopGraceSeconds", "controlPollSeconds")
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
MiB = 1 << 20
MAX_PUT = 5 << 30  # one PUT takes at most 5 GiB (S3 User Guide, Uploading objects)
RECLAIM_SECONDS = 180  # after a spot drain, EC2 reclaims the instance; at the notice time + this, the power-off
BATCH_STOP_SECONDS = 25  # a Batch drain ends within this: ECS sends SIGKILL 30 s after SIGTERM (stopTimeout)
LOG = []  # the agent's log file, once open


class Fatal(Exception):  # the attempt cannot run: it ends `failed` with this reason
    pass


class Interrupted(Exception):
    pass


class TooBig(Fatal):  # a checkpoint file one PUT cannot take: the attempt fails at once
    pass


class Aborted(OSError):  # an upload stopped: a drain began, or its deadline passed
    pass


def chunks(f, stop):
    """A file body, read in MiB, that ends its upload when `stop()` says so."""
    for b in iter(lambda: f.read(MiB), b""):
        if stop():
            raise Aborted("upload stopped")
        yield b


def iso(t=None):
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (t % 1 * 1000)


def parse_iso(s):
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))


def log(msg):
    line = "%s chronos-agent: %s\n" % (iso(), msg)
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    for f in LOG:
        f.write(line.encode())
        f.flush()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MiB), b""):
            h.update(b)
    return h.hexdigest()


def pos_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def http_call(method, url, headers=None, body=None, timeout=10.0, sink=None):
    """(status, body); with `sink` (a file), a 200 body is streamed into it."""
    u = urllib.parse.urlsplit(url)
    conn = (http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection)(
        u.hostname, u.port, timeout=timeout, blocksize=MiB)
    try:
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers or {})
        r = conn.getresponse()
        if sink and r.status == 200:
            for b in iter(lambda: r.read(MiB), b""):
                sink.write(b)
            return 200, b""
        return r.status, r.read()
    finally:
        conn.close()


def quote(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def sigv4(method, host, path, query, headers, payload_hash, creds, region, service, amz_date):
    """Signed headers (SigV4). `path` is URI-encoded already, `query` a list of (name, value)."""
    key_id, secret, token = creds
    h = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    h.update({"host": host, "x-amz-date": amz_date})
    if token:
        h["x-amz-security-token"] = token
    names = sorted(h)
    canonical = "\n".join([method, path, "&".join("%s=%s" % kv for kv in sorted((quote(k), quote(v)) for k, v in query)),
                           "".join("%s:%s\n" % (k, h[k]) for k in names), ";".join(names), payload_hash])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
    h["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        key_id, scope, ";".join(names), hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest())
    return h


class Imds:
    """IMDSv2: a session token (PUT), renewed before its TTL and after a 401."""

    def __init__(self):
        self.base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254").rstrip("/") + "/latest/"
        self.off = os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true"
        self.token, self.renew_at, self.lock = None, 0, threading.Lock()

    def get(self, path, tries=1):
        """The text of meta-data/{path}, or None on 404."""
        for i in range(tries):
            try:
                return self._get(path)
            except OSError as e:
                if i == tries - 1:
                    raise OSError("instance metadata %s: %s" % (path, e))
                time.sleep(1)

    def _get(self, path):
        if self.off:
            raise OSError("disabled")
        for renew in (0, 1):
            with self.lock:
                if renew or time.monotonic() > self.renew_at:
                    status, body = http_call("PUT", self.base + "api/token",
                                             {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, timeout=2)
                    if status != 200:
                        raise OSError("token: HTTP %d" % status)
                    self.token, self.renew_at = body.decode(), time.monotonic() + 21000
            status, body = http_call("GET", self.base + "meta-data/" + path, {"X-aws-ec2-metadata-token": self.token}, timeout=2)
            if status in (200, 404):
                return body.decode() if status == 200 else None
            if status != 401:
                raise OSError("HTTP %d" % status)
        raise OSError("token refused")


class Credentials:
    """AWS_ACCESS_KEY_ID..., else the container credentials endpoint (Batch), else the instance role (IMDSv2)."""

    def __init__(self, imds):
        self.imds, self.creds, self.refresh_at, self.lock = imds, None, 0, threading.Lock()

    def get(self):
        with self.lock:
            if time.time() > self.refresh_at:
                self.creds, expiry = self._load()
                self.refresh_at = max(expiry - 300, time.time() + 60) if expiry else float("inf")
            return self.creds

    def _load(self):
        e = os.environ
        if e.get("AWS_ACCESS_KEY_ID") and e.get("AWS_SECRET_ACCESS_KEY"):
            return (e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"], e.get("AWS_SESSION_TOKEN")), None
        rel, url = e.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), e.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        if rel or url:
            token, token_file = e.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"), e.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
            if token_file:
                with open(token_file) as f:
                    token = f.read().strip()
            status, body = http_call("GET", "http://169.254.170.2" + rel if rel else url,
                                     {"Authorization": token} if token else {}, timeout=5)
            if status != 200:
                raise OSError("container credentials: HTTP %d" % status)
        else:
            role = self.imds.get("iam/security-credentials/", 3)
            if not role:
                raise Fatal("no AWS credentials (keys, container, instance role)")
            body = self.imds.get("iam/security-credentials/" + role.split()[0], 3) or "{}"
        d = json.loads(body)
        return (d["AccessKeyId"], d["SecretAccessKey"], d.get("Token")), d.get("Expiration") and parse_iso(d["Expiration"])


class S3:
    def __init__(self, bucket, region, creds, domain="amazonaws.com"):
        self.bucket, self.region, self.creds = bucket, region, creds
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:  # path-style, as the SDKs with a custom endpoint
            u = urllib.parse.urlsplit(endpoint)
            self.base, self.host, self.root = u.scheme + "://" + u.netloc, u.netloc, "/" + bucket
        else:  # a name with dots fails TLS virtual-hosted (*.s3...): path-style
            self.host = "%ss3.%s.%s" % ("" if "." in bucket else bucket + ".", region, domain)
            self.base, self.root = "https://" + self.host, "/" + bucket if "." in bucket else ""

    def call(self, method, key="", query=(), body=None, size=0, sink=None, deadline=None, cancel=None):
        """(status, body), a GET's 404 included; network errors, 5xx, 429 and throttling are retried with backoff until
        `deadline` (default: 60 s). A file body is streamed, its payload unsigned (UNSIGNED-PAYLOAD)."""
        deadline = deadline or time.time() + 60
        path = self.root + "/" + quote(key, "-_.~/")
        url = self.base + path + ("?" + "&".join("%s=%s" % (quote(k), quote(v)) for k, v in query) if query else "")
        payload = EMPTY_SHA if body is None else hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else "UNSIGNED-PAYLOAD"
        tries = 0
        while True:
            tries += 1
            try:
                headers = {"x-amz-content-sha256": payload}
                if body is not None:
                    headers["content-length"] = str(len(body) if isinstance(body, bytes) else size)
                    if not isinstance(body, bytes):
                        body.seek(0)
                if sink:
                    sink.seek(0)
                    sink.truncate()
                signed = sigv4(method, self.host, path, query, headers, payload, self.creds.get(), self.region, "s3",
                               time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
                status, data = http_call(method, url, signed, body if isinstance(body, (bytes, type(None))) else chunks(
                    body, cancel.is_set if cancel else lambda: time.time() > deadline), max(2, min(60, deadline - time.time())), sink)
                if status < 300 or (status == 404 and method == "GET"):
                    return status, data
                code = (re.findall(rb"<Code>([^<]*)<", data) or [b""])[0].decode()
                error = "%s s3://%s/%s: HTTP %d %s" % (method, self.bucket, key, status, code)
                if status < 500 and status != 429 and code not in ("SlowDown", "RequestTimeout"):
                    raise Fatal(error)
            except Aborted:
                raise
            except (OSError, http.client.HTTPException) as e:
                error = "%s s3://%s/%s: %s" % (method, self.bucket, key, e)
            pause = min(8.0, 0.25 * 2 ** min(tries, 6)) * random.uniform(0.5, 1)
            if time.time() + pause > deadline or cancel and cancel.is_set():
                raise OSError("%s (%d tries)" % (error, tries))
            if tries in (1, 4) or tries % 10 == 0:
                log("S3 unavailable, retrying: " + error)
            time.sleep(pause)

    def get(self, key, deadline=None):
        status, data = self.call("GET", key, deadline=deadline)
        return data if status == 200 else None

    def get_json(self, key, deadline=None):
        data = self.get(key, deadline)
        try:
            return None if data is None else json.loads(data.decode())
        except ValueError as e:
            raise Fatal("s3://%s/%s is not valid JSON: %s" % (self.bucket, key, e))

    def put_json(self, key, doc, deadline=None):
        self.call("PUT", key, body=json.dumps(doc, indent=1).encode(), deadline=deadline)

    def put_file(self, key, path, deadline=None, cancel=None):
        """Streams a file from disk (one PUT: at most 5 GiB); returns the (size, mtime) of what was sent."""
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size > MAX_PUT:
                raise TooBig("%s is over 5 GiB, the most one PUT takes" % path)
            self.call("PUT", key, body=f, size=st.st_size, deadline=deadline, cancel=cancel)
            return st.st_size, st.st_mtime_ns

    def get_file(self, key, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".partial", "wb") as f:
            if self.call("GET", key, sink=f)[0] != 200:
                raise Fatal("s3://%s/%s is missing" % (self.bucket, key))
        os.replace(path + ".partial", path)

    def list(self, prefix):
        """[(key, size)] under `prefix` (ListObjectsV2, all pages)."""
        out, token = [], None
        while True:
            root = ET.fromstring(self.call("GET", query=[("list-type", "2"), ("prefix", prefix)] + (
                [("continuation-token", token)] if token else []))[1])
            ns = root.tag.split("}")[0] + "}" if root.tag[0] == "{" else ""
            out += [(c.findtext(ns + "Key"), int(c.findtext(ns + "Size"))) for c in root.iter(ns + "Contents")]
            token = root.findtext(ns + "NextContinuationToken")
            if root.findtext(ns + "IsTruncated") != "true" or not token:
                return out


def safe_path(p):
    if not isinstance(p, str) or p.startswith("/") or "\\" in p or set(p.split("/")) & {"", ".", ".."}:
        raise Fatal("unsafe path in a manifest: %r" % (p,))
    return p


class Agent:
    def __init__(self, mode, command=None):
        self.mode, self.command, self.t0 = mode, command, time.time()
        work = os.path.join(os.environ.get("CHRONOS_HOME", "/opt/chronos"), "work")
        self.dirs = {n: os.path.join(work, n) for n in ("code", "checkpoints", "artifacts", "logs", "runtime")}
        self.imds, self.s3, self.spec, self.proc, self.drain = Imds(), None, None, None, None
        self.info = dict.fromkeys(("instanceId", "instanceType", "lifecycle", "availabilityZone"))
        self.state, self.exit_code, self.reason, self.ended_at, self.last_checkpoint = "running", None, None, None, None
        self.exited, self.wake, self.stop, self.checkpoint_now, self.draining, self.term = (threading.Event() for _ in range(6))
        self.ck_lock, self.log_lock, self.echo = threading.Lock(), threading.Lock(), queue.Queue(512)
        self.uploaded, self.committed, self.sequence, self.offsets, self.chunks = {}, {}, 1, {}, {}
        self.rebalance = self.reclaim_at = None
        self.masks, self.longest = [], 0  # the secrets' values (each line) the logs show as ***

    def main(self):
        rebooted, self.mode = self.mode == "rebooted", "batch" if self.mode == "batch" else "run"
        for d in self.dirs.values():
            if not rebooted:  # after a reboot, what the attempt left stays
                subprocess.run(["rm", "-rf", d])
            os.makedirs(d, exist_ok=True)
        LOG.append(open(os.path.join(self.dirs["logs"], "agent.log"), "ab"))
        log("chronos run agent %s, Python %s, %s" % (VERSION, sys.version.split()[0], self.mode))
        signal.signal(signal.SIGTERM, self.on_sigterm)
        rc, is_run = 1, True
        try:
            is_run = self.identify()
            if not is_run:
                log("no ChronosRunId tag: not a run")
                return 0
            self.setup()
            if rebooted:
                return self.after_reboot()
            self.start()
            rc = self.supervise()
        except Interrupted:
            self.finish("interrupted", "SIGTERM before the command started",
                        time.time() + (BATCH_STOP_SECONDS if self.mode == "batch" else 60))
        except Exception as e:  # the attempt fails, with the reason
            reason = str(e) if isinstance(e, (Fatal, OSError)) else "agent error: %r" % (e,)
            log("the attempt failed: " + reason)
            if self.proc and not self.exited.is_set():
                self.kill_command(5)
            self.finish("failed", reason, time.time() + 120)
        finally:
            if self.mode == "run" and is_run:
                self.end()
        return rc if self.mode == "batch" else 0

    def end(self):
        """Powers off; after a spot drain, not before EC2 reclaims the instance or RECLAIM_SECONDS past the notice's
        time: EC2 bills no Spot Instance it interrupts in its first hour, but one you end yourself."""
        if self.reclaim_at and self.state == "interrupted":
            log("left for EC2 to reclaim; power-off at " + iso(self.reclaim_at))
            if self.term.wait(self.reclaim_at - time.time()):
                return
        power_off()

    def after_reboot(self):
        """A later boot of a run instance (the per-boot hook): the attempt's agent and backstop are gone. If the status
        still says this attempt runs, it becomes `interrupted`, saying why; then the power-off."""
        try:
            old = self.s3.get_json(self.run_prefix + "status.json") or {}
            if old.get("attempt") == self.attempt and old.get("state") == "running":
                self.state, self.ended_at, self.last_checkpoint = "interrupted", iso(), old.get("lastCheckpoint")
                self.reason = "the instance rebooted"
                self.write_status(time.time() + 60)
        except (OSError, Fatal) as e:
            log(str(e))

    def on_sigterm(self, *_):
        self.term.set()
        if not self.proc:
            raise Interrupted()
        # The OS shuts down (the agent unit stops within 100 s), or Batch stops the job (SIGKILL 30 s later).
        self.drain = self.drain or ("interrupted", "the agent received SIGTERM", 20, time.time() + 80)
        self.wake.set()

    def identify(self):
        e = os.environ
        if self.mode == "batch":
            run_id, attempt = e.get("AWS_BATCH_JOB_ID"), e.get("AWS_BATCH_JOB_ATTEMPT")
        else:
            run_id = e.get("CHRONOS_RUN_ID") or self.imds.get("tags/instance/ChronosRunId", 5)
            if not run_id:
                return False
            attempt = e.get("CHRONOS_ATTEMPT") or self.imds.get("tags/instance/ChronosAttempt", 5)
        self.run_id = (run_id or "").strip()
        if not re.match(r"^[a-z0-9][a-z0-9-]{2,62}$", self.run_id) or not (attempt or "1").strip().isdigit():
            raise SystemExit("chronos-agent: bad run ID %r or attempt %r" % (run_id, attempt))
        self.attempt = int(attempt or 1)
        log("run %s, attempt %d" % (self.run_id, self.attempt))
        return True

    def setup(self):
        e = os.environ
        self.bucket, self.env = e.get("CHRONOS_BUCKET"), e.get("CHRONOS_ENVIRONMENT")
        if not self.bucket and self.mode == "run":  # the launcher tags it: the user data names no bucket (RUNS.md)
            try:
                self.bucket = (self.imds.get("tags/instance/ChronosBucket", 5) or "").strip()
            except OSError as err:
                log("the ChronosBucket tag: %s" % err)
        if not self.bucket or not self.env:
            what = "no ChronosBucket instance tag and no CHRONOS_BUCKET" if not self.bucket else "no CHRONOS_ENVIRONMENT"
            log("%s: the run's status cannot be written; powering off" % what)
            raise SystemExit("chronos-agent: " + what)
        self.run_prefix = "%s/runs/%s/" % (self.env, self.run_id)
        self.ck_prefix = "%s/checkpoints/%s/" % (self.env, self.run_id)
        if self.mode == "batch":  # on Fargate, or a bridged container past the hop limit: no IMDS
            try:
                self.imds.get("instance-id")
            except OSError:
                log("no instance metadata: no spot notices (Batch sends SIGTERM)")
                self.imds.off = True
        region = (e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or self.imds.get("placement/region", 3)).strip()
        self.domain = s3_domain(self.imds, region)
        self.s3 = S3(self.bucket, region, Credentials(self.imds), self.domain)
        if not self.imds.off:
            for field, path in (("instanceId", "instance-id"), ("instanceType", "instance-type"),
                                ("lifecycle", "instance-life-cycle"), ("availabilityZone", "placement/availability-zone")):
                self.info[field] = self.imds.get(path, 3)
        if self.mode == "batch":
            self.info["instanceId"] = self.run_id
        if sys.version_info < (3, 9):
            raise Fatal("python3 is %d.%d; the agent needs 3.9 or later" % sys.version_info[:2])

    def start(self):
        """The spec, the code, the runtime prefixes; `running`; the restored checkpoint."""
        if self.mode == "batch":
            spec = {"command": self.command}
        else:
            spec = self.s3.get_json(self.run_prefix + "spec.json")
            if spec is None:
                raise Fatal("no run spec at s3://%s/%sspec.json" % (self.bucket, self.run_prefix))
            self.check_spec(spec)
        self.spec = spec
        self.interval, self.flush_seconds, grace, self.control_seconds = (
            spec.get(f, d) for f, d in zip(INTERVALS, (60, 15, 60, 30)))
        self.grace = min(grace, 90)  # a drain fits in a spot notice's two minutes
        limits = [x for x in (spec.get("maxRunLifetimeSeconds"), os.environ.get("CHRONOS_MAX_RUN_LIFETIME_SECONDS")) if x]
        self.lifetime = min(int(x) for x in limits) if limits else None
        if spec.get("code"):
            self.fetch_code(spec["code"]["manifestKey"])
        for prefix in spec.get("runtime", []):  # at the bucket's root, as the foundation and the role have them
            objects = self.s3.list(prefix)
            for key, _ in objects:
                path = os.path.join(self.dirs["runtime"], safe_path(key[8:]))
                self.s3.get_file(key, path)
                if prefix.endswith("scripts/"):
                    os.chmod(path, 0o755)
            log("runtime: %d files from %s" % (len(objects), prefix))
        self.write_status()
        self.restore()

    def check_spec(self, s):
        if not isinstance(s, dict) or not pos_int(s.get("schemaVersion")):
            raise Fatal("bad run spec: schemaVersion must be a positive integer")
        if s["schemaVersion"] > SCHEMA:
            raise Fatal("spec.json has schemaVersion %d; this agent knows version %d" % (s["schemaVersion"], SCHEMA))
        cmd, env, code, runtime = s.get("command"), s.get("env", {}), s.get("code"), s.get("runtime", [])
        sec = s.get("secrets", {})
        for ok, msg in (
                (s.get("runId") == self.run_id, "runId is not " + self.run_id),
                (s.get("environment") == self.env, "environment is not " + self.env),
                (isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd), "command must be a non-empty array of strings"),
                (isinstance(env, dict) and all(isinstance(v, str) for v in env.values()), "env must be an object of strings"),
                (isinstance(sec, dict) and all(re.match(r"^[A-Za-z_]\w*$", k) and re.match(r"^[\w.-]{1,200}$", str(v))
                                               for k, v in sec.items()), "secrets must map variable names to parameter names"),
                (code is None or isinstance(code, dict) and str(code.get("manifestKey")).startswith(self.env + "/code/manifests/"),
                 "code.manifestKey must be under %s/code/manifests/" % self.env),
                (isinstance(runtime, list) and all(p in RUNTIME for p in runtime), "runtime may list only " + ", ".join(RUNTIME)),
                (pos_int(s.get("maxRunLifetimeSeconds")), "maxRunLifetimeSeconds must be a positive integer"),
                (isinstance(s.get("createdAt"), str), "createdAt is required")) + tuple(
                (f not in s or pos_int(s[f]), f + " must be a positive integer") for f in INTERVALS):
            if not ok:
                raise Fatal("bad run spec: " + msg)

    def fetch_code(self, key):
        data = self.s3.get(key)
        if data is None:
            raise Fatal("the code manifest s3://%s/%s is missing" % (self.bucket, key))
        if key != "%s/code/manifests/%s.json" % (self.env, hashlib.sha256(data).hexdigest()):
            raise Fatal("code manifest %s does not match its SHA-256" % key)
        manifest = json.loads(data.decode())
        if manifest.get("schemaVersion", 0) > SCHEMA:
            raise Fatal("the code manifest has schemaVersion %s; this agent knows version %d" % (manifest["schemaVersion"], SCHEMA))
        for f in manifest["files"]:
            path = os.path.join(self.dirs["code"], safe_path(f["path"]))
            self.s3.get_file("%s/code/blobs/%s" % (self.env, f["sha256"]), path)
            if os.path.getsize(path) != f["size"] or sha256_file(path) != f["sha256"]:
                raise Fatal("code blob %s (%s) does not match its SHA-256" % (f["sha256"], f["path"]))
            os.chmod(path, f.get("mode", 0o644) & 0o777)
        log("code: %d files from %s" % (len(manifest["files"]), key))

    def restore(self):
        """The highest manifest whose files are all in S3 with their sizes, into the checkpoint directory."""
        manifests = sorted(k for k, _ in self.s3.list(self.ck_prefix + "manifests/") if k.endswith(".json"))
        data = dict(self.s3.list(self.ck_prefix + "data/"))
        # New checkpoints go above every sequence left behind, whole or not.
        seqs = [int(s) for s in (k[len(self.ck_prefix):].split("/")[1].split(".")[0] for k in manifests + list(data)) if s.isdigit()]
        self.sequence = max(seqs + [0]) + 1
        for key in reversed(manifests):
            try:
                m = self.s3.get_json(key)
                missing = [f["path"] for f in m["files"] if data.get(f["key"]) != f["size"]]
                if m["schemaVersion"] > SCHEMA:
                    missing = ["schemaVersion %s" % m["schemaVersion"]]
            except (Fatal, KeyError, TypeError) as e:
                missing = [repr(e)]
            if missing:
                log("checkpoint %s skipped: %d of its files are missing or unreadable (%s)" % (key, len(missing), missing[0]))
                continue
            for f in m["files"]:
                path = os.path.join(self.dirs["checkpoints"], safe_path(f["path"]))
                self.s3.get_file(f["key"], path)
                st = os.stat(path)
                self.uploaded[f["path"]] = self.committed[f["path"]] = (st.st_size, st.st_mtime_ns, f["key"])
            self.last_checkpoint = {"sequence": m["sequence"], "manifestKey": key, "at": m.get("createdAt")}
            log("restored checkpoint %d (%d files)" % (m["sequence"], len(m["files"])))
            return
        log("no whole checkpoint to restore")

    def scan(self):
        root, files = self.dirs["checkpoints"], {}
        for d, subdirs, names in os.walk(root):
            subdirs[:] = [s for s in subdirs if not s.startswith(".")]
            for n in names:  # never a file being written: .name, name.tmp, name.partial, name~
                path = os.path.join(d, n)
                if not n.startswith(".") and not n.endswith((".tmp", ".partial", "~")) and os.path.isfile(path):
                    st = os.stat(path)
                    files[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
        return files

    def checkpoint(self, deadline, why, cancel=None):
        """New and changed files to data/{sequence}/, then the manifest, last: True if one was committed. A file
        that vanished before its upload aborts the checkpoint (no manifest: it would not be whole)."""
        with self.ck_lock:
            files = self.scan()
            if files == {p: v[:2] for p, v in self.committed.items()}:
                return False
            seq, sent = self.sequence, 0
            for rel, stat in sorted(files.items()):
                if self.uploaded.get(rel, ())[:2] != stat:
                    key = "%sdata/%010d/%s" % (self.ck_prefix, seq, rel)
                    try:
                        self.uploaded[rel] = self.s3.put_file(key, os.path.join(self.dirs["checkpoints"], rel), deadline, cancel) + (key,)
                    except FileNotFoundError:
                        raise OSError("%s vanished before its upload: checkpoint %d aborted" % (rel, seq))
                    sent += 1
            key, at = "%smanifests/%010d.json" % (self.ck_prefix, seq), iso()
            self.s3.put_json(key, {"schemaVersion": SCHEMA, "sequence": seq, "createdAt": at, "files": [
                {"path": p, "key": self.uploaded[p][2], "size": self.uploaded[p][0]} for p in sorted(files)]}, deadline)
            self.committed = {p: self.uploaded[p] for p in files}
            self.sequence, self.last_checkpoint = seq + 1, {"sequence": seq, "manifestKey": key, "at": at}
            log("checkpoint %d (%s): %d files, %d uploaded" % (seq, why, len(files), sent))
            return True

    def flush_logs(self, deadline):
        """The bytes each stream's file gained since the last flush, as that stream's next chunk."""
        with self.log_lock:
            for stream in ("stdout", "stderr", "agent"):
                path = os.path.join(self.dirs["logs"], stream + ".log")
                size = os.path.getsize(path) if os.path.exists(path) else 0
                while self.offsets.get(stream, 0) < size:
                    with open(path, "rb") as f:
                        f.seek(self.offsets.get(stream, 0))
                        data = f.read(min(size - f.tell(), 8 * MiB))
                    chunk = self.chunks.get(stream, 0)
                    self.s3.call("PUT", "%s/logs/%s/%03d/%s/%010d.log" % (self.env, self.run_id, self.attempt, stream, chunk),
                                 body=data, deadline=deadline)
                    self.offsets[stream], self.chunks[stream] = self.offsets.get(stream, 0) + len(data), chunk + 1

    def write_status(self, deadline=None):
        doc = dict(schemaVersion=SCHEMA, runId=self.run_id, state=self.state, attempt=self.attempt, **self.info,
                   startedAt=iso(self.t0), updatedAt=iso(), endedAt=self.ended_at, exitCode=self.exit_code,
                   lastCheckpoint=self.last_checkpoint, reason=self.reason, agentVersion=VERSION)
        self.s3.put_json(self.run_prefix + "status.json", doc, deadline)
        self.s3.put_json("%sattempts/%03d.json" % (self.run_prefix, self.attempt), doc, deadline)

    def supervise(self):
        """Runs the command in a process group of its own; keeps, listens; drains or ends. Returns its exit code."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOS_")}
        env.update(self.spec.get("env", {}))  # the contract's variables win
        env.update(self.read_secrets())
        env.update(CHRONOS_RUN_ID=self.run_id, CHRONOS_ATTEMPT=str(self.attempt), CHRONOS_CHECKPOINT_DIR=self.dirs["checkpoints"],
                   CHRONOS_ARTIFACT_DIR=self.dirs["artifacts"], CHRONOS_RUNTIME_DIR=self.dirs["runtime"],
                   CHRONOS_RESUMED="1" if self.last_checkpoint else "0")
        cmd = self.spec["command"]
        log("starting " + " ".join(shlex.quote(a) for a in cmd))
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.dirs["code"], env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            self.exit_code = 127
            raise Fatal("cannot start the command: %s" % e)
        readers = [thread(self.read_pipe, self.proc.stdout, "stdout"), thread(self.read_pipe, self.proc.stderr, "stderr")]
        keepers = [thread(self.keep_logs), thread(self.keep_checkpoints)]
        thread(self.echo_out)
        thread(self.wait_command)
        if self.mode == "run":  # apart: a slow control.json GET never delays the notice
            thread(self.keep_control)
        next_imds, end = time.time(), self.t0 + self.lifetime if self.lifetime else float("inf")
        while not self.exited.is_set() and not self.drain:
            now = time.time()
            if now >= next_imds and not self.imds.off:  # AWS: check for the notice every 5 s
                self.listen_imds()
                next_imds = now + 5
            if now >= end:
                self.drain = ("timed-out", "run lifetime of %d s reached" % self.lifetime, self.grace, end + 270)
            self.wake.wait(max(0.05, min(1.0, next_imds - now, end - now)))  # no busy loop: sleeps, woken by events
            self.wake.clear()
        if self.drain:
            self.draining.set()  # stops an upload in flight: the final checkpoint goes first
            state, reason, grace, deadline = self.drain
            if self.mode == "batch" and not self.reclaim_at:  # not a spot notice: before the SIGKILL of ECS
                grace, deadline = min(grace, 10), time.time() + BATCH_STOP_SECONDS
            log("drain: " + reason)
            self.kill_command(grace)
        else:
            state = "succeeded" if self.exit_code == 0 else "failed"
            reason, deadline = "the command exited with code %d" % self.exit_code, time.time() + 600
            self.kill_command(0)  # what the command left running in its group
        self.stop.set()
        self.checkpoint_now.set()
        for t in readers:  # a process that left the group may hold the pipes open: its output after 5 s is lost
            t.join(5)
        for t in keepers:
            t.join()
        self.echo.put(None)
        log("the command ended with code %d" % self.exit_code)
        self.finish(state, reason, deadline)
        return self.exit_code

    def read_secrets(self):
        """The spec's secrets from SSM (GetParameter, WithDecryption), at each attempt's start; only their names are
        logged. A secret that cannot be read fails the attempt, naming its parameter."""
        values, e = {}, os.environ
        for var, name in sorted(self.spec.get("secrets", {}).items()):
            param = "/chronos-training/%s/secrets/%s" % (self.env, name)
            body = json.dumps({"Name": param, "WithDecryption": True}).encode()
            url = e.get("AWS_ENDPOINT_URL_SSM") or e.get("AWS_ENDPOINT_URL") or "https://ssm.%s.%s" % (self.s3.region, self.domain)
            u, deadline, status = urllib.parse.urlsplit(url), time.time() + 60, 0
            while True:
                try:
                    headers = sigv4("POST", u.netloc, "/", [], {"content-type": "application/x-amz-json-1.1",
                                    "x-amz-target": "AmazonSSM.GetParameter"}, hashlib.sha256(body).hexdigest(),
                                    self.s3.creds.get(), self.s3.region, "ssm", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
                    status, data = http_call("POST", u.scheme + "://" + u.netloc + "/", headers, body)
                    what = "HTTP %d %s" % (status, (json.loads(data.decode() or "{}").get("__type") or "").split("#")[-1])
                except (OSError, ValueError, http.client.HTTPException) as err:
                    what = str(err)
                if status == 200 or 400 <= status < 500 and "Throttl" not in what or time.time() > deadline:
                    break
                time.sleep(2)
            if status != 200:
                raise Fatal("secret %s: the parameter %s could not be read: %s" % (var, param, what))
            values[var] = json.loads(data.decode())["Parameter"]["Value"]
            for line in values[var].splitlines():
                if len(line) >= 4:
                    self.masks.append(line.encode())
                else:
                    log("secret %s: a line of fewer than 4 characters is not masked in the logs" % var)
        self.masks.sort(key=len, reverse=True)
        self.longest = len(self.masks[0]) if self.masks else 0
        if values:
            log("secrets: %s (from /chronos-training/%s/secrets/)" % (", ".join(sorted(values)), self.env))
        return values

    def redact(self, buf, last):
        """(the part of `buf` to write, with each secret line as ***; the tail a secret may still straddle)."""
        for m in self.masks:
            buf = buf.replace(m, b"***")
        cut = len(buf) if last or not self.masks else max(buf.rfind(b"\n") + 1, len(buf) - self.longest + 1)
        return buf[:cut], buf[cut:]

    def wait_command(self):
        rc = self.proc.wait()
        self.exit_code = rc if rc >= 0 else 128 - rc
        self.exited.set()
        self.wake.set()

    def kill_command(self, grace):
        """SIGTERM to the group, up to `grace` seconds, then SIGKILL to what is left."""
        if grace > 0 and not self.exited.is_set():
            self.signal_group(signal.SIGTERM)
            if not self.exited.wait(grace):
                log("SIGKILL after %d s" % grace)
        self.signal_group(signal.SIGKILL)
        self.exited.wait()

    def signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except OSError:
            pass

    def read_pipe(self, pipe, stream):
        held = b""
        with open(os.path.join(self.dirs["logs"], stream + ".log"), "ab") as out:
            while True:
                data = os.read(pipe.fileno(), 65536)
                part, held = self.redact(held + data, not data)
                if part:
                    out.write(part)
                    out.flush()
                    try:
                        self.echo.put_nowait((stream, part))
                    except queue.Full:  # a slow console never slows the command
                        pass
                if not data:
                    break

    def echo_out(self):
        for item in iter(self.echo.get, None):
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
            except (OSError, Fatal) as e:
                log("logs not sent, retried: %s" % e)

    def keep_checkpoints(self):
        due = time.time() + self.interval
        while True:
            self.checkpoint_now.wait(max(0, due - time.time()))
            if self.stop.is_set():
                return
            early = self.checkpoint_now.is_set()
            self.checkpoint_now.clear()
            try:
                if self.checkpoint(time.time() + 30, "rebalance recommendation" if early else "interval", self.draining):
                    self.write_status(time.time() + 30)
                due = time.time() + self.interval
            except TooBig as e:  # never uploadable: the attempt fails
                self.drain = self.drain or ("failed", str(e), self.grace, time.time() + 120)
                return self.wake.set()
            except (OSError, Fatal) as e:
                log("checkpoint not uploaded, retried: %s" % e)
                due = time.time() + min(self.interval, 10)

    def listen_imds(self):
        try:
            notice = self.imds.get("spot/instance-action")
            if notice:
                notice = json.loads(notice)
                try:
                    at = parse_iso(notice["time"])
                except (KeyError, ValueError):
                    at = time.time() + 120
                # SIGTERM, up to the grace but never past the notice's time less 30 s; uploads until 5 s before it.
                self.drain = ("interrupted", "spot interruption notice: %s at %s" % (notice.get("action"), notice.get("time")),
                              min(self.grace, at - 30 - time.time()), at - 5)
                self.reclaim_at = at + RECLAIM_SECONDS
                return
            rebalance = self.imds.get("events/recommendations/rebalance")
            if rebalance and rebalance != self.rebalance:
                self.rebalance = rebalance
                log("rebalance recommendation: an early checkpoint")
                self.checkpoint_now.set()
        except (OSError, ValueError) as e:
            log(str(e))

    def keep_control(self):
        while not self.stop.wait(self.control_seconds):
            self.listen_control()
            if self.drain:
                self.wake.set()

    def listen_control(self):
        try:
            doc = self.s3.get_json(self.run_prefix + "control.json", time.time() + 2)
        except (OSError, Fatal) as e:
            return log("control.json: %s" % e)
        if doc and doc.get("schemaVersion", 0) > SCHEMA:
            log("control.json has schemaVersion %s; this agent knows %d: ignored" % (doc["schemaVersion"], SCHEMA))
        elif doc and doc.get("action") == "stop":
            self.drain = self.drain or ("stopped", "stop requested at %s" % doc.get("requestedAt"), self.grace, time.time() + self.grace + 600)

    def finish(self, state, reason, deadline):
        """The final checkpoint, artifacts, logs, then the status: each as far as S3 allows by `deadline`."""
        self.state, self.reason, self.ended_at = state, reason, iso()
        if not self.s3:
            return

        def final(what, step):
            try:
                step()
            except (OSError, Fatal) as e:
                log("final %s not written: %s" % (what, e))
        if self.spec:
            final("checkpoint", lambda: self.checkpoint(deadline, "final"))
            if self.drain:  # a drain may not reach the artifacts: the status first
                final("status", lambda: self.write_status(deadline))
            final("artifacts", lambda: self.artifacts(deadline))
        log("attempt %d: %s (%s)" % (self.attempt, state, reason))
        final("logs", lambda: self.flush_logs(deadline))
        final("status", lambda: self.write_status(deadline))

    def artifacts(self, deadline):
        root = self.dirs["artifacts"]
        for d, _, names in os.walk(root):
            for n in names:
                path = os.path.join(d, n)
                self.s3.put_file("%s/artifacts/%s/%s" % (self.env, self.run_id, os.path.relpath(path, root)), path, deadline)


def thread(target, *args):
    t = threading.Thread(target=target, args=args, daemon=True)
    t.start()
    return t


def s3_domain(imds, region):
    """The DNS suffix of S3 in this partition: IMDS `services/domain` (amazonaws.com, amazonaws.com.cn, ...)."""
    try:
        return imds.get("services/domain", 3).strip()
    except (OSError, AttributeError):  # no IMDS (Fargate): by the region
        return "amazonaws.com" + ".cn" * region.startswith("cn-")


def power_off():
    command = os.environ.get("CHRONOS_POWEROFF_COMMAND", "systemctl poweroff")
    log("powering off: " + command)
    try:
        subprocess.run(shlex.split(command), timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        log("the power-off command failed: %s" % e)


def main(a):
    if a == ["--version"]:
        print("chronos-run-agent " + VERSION)
    elif a in (["run"], ["rebooted"]):
        return Agent(a[0]).main()
    elif a[:2] == ["batch", "--"] and a[2:]:
        return Agent("batch", a[2:]).main()
    elif a[:2] == ["backstop", "--deadline-seconds"] and len(a) == 3 and a[2].isdigit():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        end = time.monotonic() + int(a[2])
        while time.monotonic() < end:
            time.sleep(min(60, end - time.monotonic()))
        power_off()
    else:
        sys.exit(USAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
