#!/usr/bin/env python3
# Chronos run agent: one attempt of a training run (contract: docs/RUNS.md). Python 3.9+, standard library only.
import base64, calendar, hashlib, hmac, http.client, json, os, platform, queue, random, re, shlex, shutil, signal, subprocess, sys
import tarfile, threading, time
import urllib.parse
import xml.etree.ElementTree as ET

VERSION = "0.1.0"
USAGE = "usage: chronos_run_agent.py run|rebooted|batch -- COMMAND...|backstop --deadline-seconds N|--version"
SCHEMA = 1
RUNTIME = ("runtime/python-env/", "runtime/scripts/")
INTERVALS = ("checkpointIntervalSeconds", "logFlushSeconds", "stopGraceSeconds", "controlPollSeconds")
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
MiB = 1 << 20
# S3 multipart limits (S3 User Guide, "Amazon S3 multipart upload limits", qfacts.html): at most 10,000 parts, each
# 5 MiB to 5 GiB (the last one may be smaller), an object of at most 48.8 TiB (10,000 x 5 GiB; 5 TiB before December
# 2025); one PUT takes at most 5 GiB ("Uploading objects").
MAX_PUT, MIN_PART, MAX_PART, MAX_PARTS = 5 << 30, 5 * MiB, 5 << 30, 10000
MAX_OBJECT = MAX_PARTS * MAX_PART
THRESHOLD = 64 * MiB  # a file above: a multipart upload, a download in ranged GETs, its parts side by side
PART = 32 * MiB  # the part size, unless the 10,000 parts need larger ones
CONNECTIONS = 16  # requests in flight at once, all transfers together
SLOTS = threading.BoundedSemaphore(CONNECTIONS)
TEMPORARY = (".tmp", ".partial", "~")  # a file or directory being written (name.tmp, ...) or an NFS `.nfs*`: skipped
DONE = ".chronos-complete"  # a directory checkpoint's marker, written last (DCP's is `.metadata`; docs/RUNS.md)
KEEP = 2  # whole checkpoints kept (spec `checkpoints.keep`)
RECLAIM_SECONDS = 180  # after a spot drain, EC2 reclaims the instance; at the notice time + this, the power-off
BATCH_STOP_SECONDS = 25  # a Batch drain ends within this: ECS sends SIGKILL 30 s after SIGTERM (stopTimeout)
LOG = []  # the agent's log file, once open
STREAMS = ("setup", "stdout", "stderr", "agent")  # the log streams (contract.STREAMS)
CACHE_FILES = ("requirements*.txt", "uv.lock", "poetry.lock", "pyproject.toml")  # the setup cache's default key files
ECR = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/")


class Fatal(Exception):  # the attempt cannot run: it ends `failed` with this reason
    pass


class Interrupted(Exception):  # before the command started: SIGTERM, or a spot notice during the setup
    pass


class TooBig(Fatal):  # a checkpoint file S3 cannot take (over MAX_OBJECT): the attempt fails at once
    pass


class Aborted(OSError):  # an upload stopped: a drain began, or its deadline passed
    pass


def part_size(size):
    """The part size of a multipart upload of `size` bytes, within S3's limits (MiB multiples)."""
    if size > MAX_OBJECT:
        raise TooBig("%d bytes: over the %d bytes S3 takes in one object" % (size, MAX_OBJECT))
    part = max(PART, MIN_PART, -(-size // MAX_PARTS))
    return min(MAX_PART, -(-part // MiB) * MiB)


class Window:
    """The bytes [start, start + size) of a file, as a file: a part's body (read) or a ranged GET's sink (write)."""

    def __init__(self, path, start, size, mode="rb"):
        self.f, self.start, self.size, self.pos = open(path, mode), start, size, 0
        self.f.seek(start)

    def seek(self, _):
        self.f.seek(self.start)
        self.pos = 0

    def truncate(self):
        pass

    def read(self, n):
        b = self.f.read(max(0, min(n, self.size - self.pos)))
        self.pos += len(b)
        return b

    def write(self, b):
        if self.pos + len(b) > self.size:
            raise OSError("a ranged GET returned more than its range")
        self.f.write(b)
        self.pos += len(b)

    def close(self):
        self.f.close()


class Either:
    """Set once any of its events is (a drain, a failure of another part of the same transfer), or `deadline` passed."""

    def __init__(self, *events, deadline=None):
        self.events, self.deadline = [e for e in events if e], deadline

    def is_set(self):
        return any(e.is_set() for e in self.events) or bool(self.deadline and time.time() > self.deadline)


def run_pool(jobs, stop=None):
    """Runs the callables side by side (CONNECTIONS threads); the first error sets `stop` (so that the others end
    their uploads), starts no more jobs, and is raised once all threads ended."""
    jobs = list(jobs)
    todo, errors, lock, stop = iter(jobs), [], threading.Lock(), stop or threading.Event()

    def worker():
        while not errors:
            with lock:
                job = next(todo, None)
            if job is None:
                return
            try:
                job()
            except BaseException as e:  # noqa: B036 (raised below, in the caller's thread)
                errors.append(e)
                stop.set()
    threads = [thread(worker) for _ in range(min(CONNECTIONS, len(jobs)))]
    for t in threads:
        t.join()
    if errors:
        raise next((e for e in errors if not isinstance(e, Aborted)), errors[0])


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


def http_call(method, url, headers=None, body=None, timeout=10.0, sink=None, reply=None):
    """(status, body); with `sink` (a file), a 200 or 206 body is streamed into it; `reply` (a dict) gets the response
    headers, lower-case."""
    u = urllib.parse.urlsplit(url)
    conn = (http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection)(
        u.hostname, u.port, timeout=timeout, blocksize=MiB)
    try:
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers or {})
        r = conn.getresponse()
        if reply is not None:
            reply.update((k.lower(), v) for k, v in r.getheaders())
        if sink and r.status in (200, 206):
            for b in iter(lambda: r.read(MiB), b""):
                sink.write(b)
            return r.status, b""
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

    def call(self, method, key="", query=(), body=None, size=0, sink=None, deadline=None, cancel=None, headers=None,
             reply=None, absent=(404,)):
        """(status, body), a GET's 404 included; network errors, 5xx, 429 and throttling are retried with backoff until
        `deadline` (default: 60 s). A file body is streamed, its payload unsigned (UNSIGNED-PAYLOAD)."""
        deadline, extra = deadline or time.time() + 60, headers or {}
        path = self.root + "/" + quote(key, "-_.~/")
        url = self.base + path + ("?" + "&".join("%s=%s" % (quote(k), quote(v)) for k, v in query) if query else "")
        payload = EMPTY_SHA if body is None else hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else "UNSIGNED-PAYLOAD"
        tries = 0
        while True:
            tries += 1
            try:
                headers = dict(extra, **{"x-amz-content-sha256": payload})
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
                    body, cancel.is_set if cancel else lambda: time.time() > deadline), max(2, min(60, deadline - time.time())), sink,
                    reply)
                if status < 300 or (status in absent and method == "GET"):
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
        """The object's bytes, or None when there is none. Without s3:ListBucket S3 answers a missing key with 403
        (S3 API Reference, GetObject), and the instance role lists only its prefixes (`s3:prefix`), which a GET does
        not carry: a 403 is a missing key when a listing of the key itself shows none."""
        status, data = self.call("GET", key, deadline=deadline, absent=(403, 404))
        if status == 403:
            if any(k == key for k, _ in self.list(key)):
                raise Fatal("GET s3://%s/%s: HTTP 403 AccessDenied" % (self.bucket, key))
            return None
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
        """Streams a file from disk: one PUT up to THRESHOLD, else a multipart upload whose parts go side by side
        (aborted if any fails, or on `cancel` or the deadline); returns the (size, mtime) of what was sent."""
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size <= THRESHOLD:
                with SLOTS:
                    self.call("PUT", key, body=f, size=st.st_size, deadline=deadline, cancel=cancel)
                return st.st_size, st.st_mtime_ns
        part = part_size(st.st_size)
        # With `cancel` (not a drain's final upload), the deadline bounds the retries, not the transfer: each request
        # then has at least its own minute (CompleteMultipartUpload may take minutes: S3 API Reference).
        soft = cancel is not None
        with SLOTS:
            upload = re.findall(r"<UploadId>([^<]+)<", self.call("POST", key, [("uploads", "")], b"", deadline=deadline,
                                                                  cancel=cancel)[1].decode())[0]
        etags, stop = {}, threading.Event()

        def send(number, start):
            body = Window(path, start, min(part, st.st_size - start))
            try:
                reply = {}
                with SLOTS:
                    self.call("PUT", key, [("partNumber", str(number)), ("uploadId", upload)], body, body.size,
                              deadline=max(deadline or 0, time.time() + 60) if soft else deadline, reply=reply,
                              cancel=Either(cancel, stop, deadline=None if cancel else deadline))
                etags[number] = reply["etag"]
            finally:
                body.close()
        try:
            run_pool([lambda n=n, s=s: send(n, s) for n, s in enumerate(range(0, st.st_size, part), 1)], stop)
            done = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
                "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (n, xml(etags[n])) for n in sorted(etags))
            with SLOTS:
                data = self.call("POST", key, [("uploadId", upload)], done.encode(),
                                 deadline=max(deadline or 0, time.time() + 300) if soft else deadline)[1]
            if b"<Error>" in data:  # a 200 that failed (S3 API Reference, CompleteMultipartUpload)
                raise OSError("CompleteMultipartUpload s3://%s/%s: %s" % (self.bucket, key, data[:300]))
            upload = None
            return st.st_size, st.st_mtime_ns
        finally:
            if upload:
                try:  # the parts sent so far would be billed until a lifecycle rule removes them
                    self.call("DELETE", key, [("uploadId", upload)], deadline=time.time() + 10)
                    log("multipart upload of %s aborted" % key)
                except (OSError, Fatal) as e:
                    log("multipart upload of %s not aborted: %s" % (key, e))

    def get_file(self, key, path, size=None):
        """A file from S3; one of known `size` above THRESHOLD in ranged GETs side by side."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if size is None or size <= THRESHOLD:
            with open(path + ".partial", "wb") as f, SLOTS:
                if self.call("GET", key, sink=f)[0] != 200:
                    raise Fatal("s3://%s/%s is missing" % (self.bucket, key))
        else:
            with open(path + ".partial", "wb") as f:
                f.truncate(size)

            def fetch(start):
                sink = Window(path + ".partial", start, min(PART, size - start), "r+b")
                try:
                    with SLOTS:
                        status = self.call("GET", key, sink=sink, headers={"range": "bytes=%d-%d" % (
                            start, start + sink.size - 1)})[0]
                    if status != 206:
                        raise Fatal("s3://%s/%s: HTTP %d to a ranged GET" % (self.bucket, key, status))
                finally:
                    sink.close()
            run_pool([lambda s=s: fetch(s) for s in range(0, size, PART)])
        os.replace(path + ".partial", path)

    def delete(self, keys, deadline=None):
        """DeleteObjects, 1,000 keys a request at most (S3 API Reference, DeleteObjects)."""
        for i in range(0, len(keys), 1000):
            body = ("<Delete><Quiet>true</Quiet>%s</Delete>" % "".join(
                "<Object><Key>%s</Key></Object>" % xml(k) for k in keys[i:i + 1000])).encode()
            md5 = base64.b64encode(hashlib.new("md5", body, usedforsecurity=False).digest()).decode()
            data = self.call("POST", "", [("delete", "")], body, headers={"content-md5": md5}, deadline=deadline)[1]
            if b"<Error>" in data:
                raise OSError("DeleteObjects s3://%s: %s" % (self.bucket, data[:300]))

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


def xml(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


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
        self.info = dict.fromkeys(("instanceId", "instanceType", "lifecycle", "availabilityZone", "imageId"))
        self.state, self.exit_code, self.reason, self.ended_at, self.last_checkpoint = "running", None, None, None, None
        self.exited, self.wake, self.stop, self.checkpoint_now, self.draining, self.term = (threading.Event() for _ in range(6))
        self.ck_lock, self.log_lock, self.echo = threading.Lock(), threading.Lock(), queue.Queue(512)
        self.uploaded, self.committed, self.sequence, self.offsets, self.chunks = {}, {}, 1, {}, {}
        self.rebalance = self.reclaim_at = self.rate = None
        self.keep = KEEP
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
            self.prepare()
            rc = self.supervise()
        except Interrupted as e:
            self.finish("interrupted", str(e) or "SIGTERM before the command started",
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
        if getattr(self, "cache_upload", None):  # the setup's cache, uploading in the background
            self.cache_upload.join(max(0, self.t0 + (self.lifetime or 1800) - time.time()))
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
                                ("lifecycle", "instance-life-cycle"), ("availabilityZone", "placement/availability-zone"),
                                ("imageId", "ami-id")):
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
        self.keep = (spec.get("checkpoints") or {}).get("keep", KEEP)
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
                (isinstance(s.get("createdAt"), str), "createdAt is required"),
                (s.get("checkpoints") is None or isinstance(s["checkpoints"], dict) and pos_int(s["checkpoints"].get("keep", KEEP)),
                 "checkpoints.keep must be a positive integer")) + tuple(
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
            def fetch(f):
                path = os.path.join(self.dirs["checkpoints"], safe_path(f["path"]))
                self.s3.get_file(f["key"], path, f["size"])
                st = os.stat(path)
                if st.st_size != f["size"]:
                    raise Fatal("%s restored with %d bytes, not %d" % (f["path"], st.st_size, f["size"]))
                self.uploaded[f["path"]] = self.committed[f["path"]] = (st.st_size, st.st_mtime_ns, f["key"])
            t = time.time()
            run_pool([lambda f=f: fetch(f) for f in m["files"]])
            if sum(f["size"] for f in m["files"]) >= THRESHOLD:
                log("restore: %d MiB in %.1f s" % (sum(f["size"] for f in m["files"]) // MiB, time.time() - t))
            self.last_checkpoint = {"sequence": m["sequence"], "manifestKey": key, "at": m.get("createdAt")}
            log("restored checkpoint %d (%d files)" % (m["sequence"], len(m["files"])))
            return
        log("no whole checkpoint to restore")

    def scan(self):
        """{path: (size, mtime)} of every file of the checkpoint directory, dotfiles included, less the temporary ones
        (name.tmp, name.partial, name~, .nfs*: files or directories being written)."""
        root, files = self.dirs["checkpoints"], {}
        for d, subdirs, names in os.walk(root):
            subdirs[:] = [s for s in subdirs if not temporary(s)]
            for n in names:
                path = os.path.join(d, n)
                if not temporary(n) and os.path.isfile(path):
                    st = os.stat(path)
                    files[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
        return files

    def whole(self, files):
        """(files, carried): `files` less the directory checkpoints still being written, whose last committed version
        is carried into the next manifest instead. A directory that holds DCP shards (*.distcp) is whole once its
        `.metadata` is no older than each shard; one that holds DONE, once DONE is no older than each file under it."""
        groups = set()
        for rel in files:
            d, _, n = rel.rpartition("/")
            if n == ".metadata" or n.endswith(".distcp"):
                groups.add((d, ".metadata"))
            elif n == DONE:
                groups.add((d, DONE))
        out, carried = dict(files), {}
        for d, marker in sorted(groups):
            p = d + "/" if d else ""

            def member(rel):
                if marker == DONE:
                    return rel.startswith(p)
                return rel.rpartition("/")[0] == d and (rel == p + ".metadata" or rel.endswith(".distcp"))
            inside = [r for r in files if member(r)]
            if p + marker in files and all(files[r][1] <= files[p + marker][1] for r in inside):
                continue
            for r in inside:
                out.pop(r, None)
            carried.update((r, v) for r, v in self.committed.items() if member(r))
            log("checkpoint directory %s is being written (%s missing or older than its files): its last whole "
                "version stays" % (d or ".", marker))
        return out, carried

    def checkpoint(self, deadline, why, cancel=None):
        """New and changed files to data/{sequence}/, then the manifest, last: True if one was committed. A file
        that vanished before its upload aborts the checkpoint (no manifest: it would not be whole)."""
        with self.ck_lock:
            files, carried = self.whole(self.scan())
            want = {p: v[:2] for p, v in carried.items()}
            want.update(files)
            if want == {p: v[:2] for p, v in self.committed.items()}:
                return False
            seq = self.sequence
            todo = [r for r, stat in sorted(files.items()) if self.uploaded.get(r, ())[:2] != stat]
            size = sum(files[r][0] for r in todo)
            if why == "final" and self.drain and self.rate and size / self.rate > deadline - time.time():
                raise OSError("%d MiB cannot reach S3 in the %.0f s left at the measured %.0f MiB/s: the previous "
                              "checkpoint stays" % (size // MiB, deadline - time.time(), self.rate / MiB))

            def send(rel):
                key = "%sdata/%010d/%s" % (self.ck_prefix, seq, rel)
                try:
                    self.uploaded[rel] = self.s3.put_file(key, os.path.join(self.dirs["checkpoints"], rel), deadline, cancel) + (key,)
                except FileNotFoundError:
                    raise OSError("%s vanished before its upload: checkpoint %d aborted" % (rel, seq))
            t = time.time()
            run_pool([lambda r=r: send(r) for r in todo])
            if size >= THRESHOLD:  # the rate of a large transfer, not of a request's latency
                self.rate = size / max(time.time() - t, 1e-3)
            entries = dict(carried, **{p: self.uploaded[p] for p in files})
            key, at = "%smanifests/%010d.json" % (self.ck_prefix, seq), iso()
            self.s3.put_json(key, {"schemaVersion": SCHEMA, "sequence": seq, "createdAt": at, "files": [
                {"path": p, "key": entries[p][2], "size": entries[p][0]} for p in sorted(entries)]}, deadline)
            self.committed = entries
            self.sequence, self.last_checkpoint = seq + 1, {"sequence": seq, "manifestKey": key, "at": at}
            log("checkpoint %d (%s): %d files, %d uploaded" % (seq, why, len(entries), len(todo)))
            if size >= THRESHOLD:
                log("checkpoint %d: %d MiB in %.1f s" % (seq, size // MiB, time.time() - t))
            try:
                self.prune(deadline)
            except (OSError, Fatal, KeyError, TypeError) as e:
                log("old checkpoints not pruned: %r" % (e,))
            return True

    def prune(self, deadline):
        """Keeps the last `keep` whole manifests and the data they name; deletes the older manifests and every other
        object under data/ (none is being uploaded: this runs under ck_lock, after a commit)."""
        manifests = sorted((k for k, _ in self.s3.list(self.ck_prefix + "manifests/") if k.endswith(".json")), reverse=True)
        data = dict(self.s3.list(self.ck_prefix + "data/"))
        kept, named = [], set()
        for key in manifests:
            if len(kept) == self.keep:
                break
            files = (self.s3.get_json(key, deadline) or {}).get("files", [])
            if all(data.get(f["key"]) == f["size"] for f in files):
                kept.append(key)
                named.update(f["key"] for f in files)
        if self.last_checkpoint["manifestKey"] not in kept:  # a listing that does not show it yet: nothing to judge by
            return
        doomed = [k for k in manifests if k not in kept] + sorted(k for k in data if k not in named)
        if doomed:
            self.s3.delete(doomed, deadline)
            gone = set(doomed)
            self.uploaded = {p: v for p, v in self.uploaded.items() if v[2] not in gone}
            log("pruned %d objects: %d checkpoints kept" % (len(doomed), len(kept)))

    def flush_logs(self, deadline):
        """The bytes each stream's file gained since the last flush, as that stream's next chunk."""
        with self.log_lock:
            for stream in STREAMS:
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

    def command_env(self):
        """The environment of the setup and the command: the agent's, without CHRONOS_*, the spec's `env`, the
        contract's variables, and a Python environment as if activated: the setup's `.venv` in the code directory, else
        the image's framework environment (`/opt/pytorch` on a PyTorch DLAMI), when there is one."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOS_")}
        # `uv sync`, `python -m venv .venv`: used as activated; else the DLAMI's framework environment (PyTorch DLAMI:
        # /opt/pytorch/bin/python), so that `python train.py` imports torch on the default image.
        for venv in (os.path.join(self.dirs["code"], ".venv"), os.environ.get("CHRONOS_FRAMEWORK_ENV", "/opt/pytorch")):
            if os.path.isfile(os.path.join(venv, "bin", "python")):
                env.update(VIRTUAL_ENV=venv, PATH=os.path.join(venv, "bin") + os.pathsep + env.get("PATH", os.defpath))
                break
        env.update(self.spec.get("env", {}))  # the contract's variables win
        env.update(self.read_secrets())
        env.update(CHRONOS_RUN_ID=self.run_id, CHRONOS_ATTEMPT=str(self.attempt), CHRONOS_CHECKPOINT_DIR=self.dirs["checkpoints"],
                   CHRONOS_ARTIFACT_DIR=self.dirs["artifacts"], CHRONOS_RUNTIME_DIR=self.dirs["runtime"],
                   CHRONOS_RESUMED="1" if self.last_checkpoint else "0")
        return env

    def prepare(self):
        """The spec's `setup` (docs/RUNS.md, "The setup and its cache"): its cached result restored, else the setup run
        once (never retried: a failure fails the attempt with its exit code) and its result cached for the next
        attempts; and the container's registry login."""
        setup, container = self.spec.get("setup"), self.spec.get("container")
        for ok, msg in ((setup is None or isinstance(setup, dict) and isinstance(setup.get("command"), str) and setup["command"]
                         and all(isinstance(setup.get(f, []), list) and all(isinstance(x, str) for x in setup.get(f, []))
                                 for f in ("cacheFiles", "cachePaths")), "setup.command must be a non-empty string, "
                         "setup.cacheFiles and setup.cachePaths arrays of strings"),
                        (container is None or isinstance(container, dict) and isinstance(container.get("image"), str)
                         and container["image"], "container.image must be a non-empty string")):
            if not ok:
                raise Fatal("bad run spec: " + msg)
        if container:
            self.registry_login(container["image"])
        if not setup:
            return
        key = self.cache_key(setup, container)
        if key and self.restore_cache(key):
            return
        self.run_setup(setup["command"])
        if key:
            self.save_cache(key, setup.get("cachePaths") or [".venv"])

    def cache_key(self, setup, container):
        """`{env}/cache/setup/{sha256}.tar`: the SHA-256 of the setup command, the image (AMI, container, machine) and
        the bytes of its cache files (default: those of CACHE_FILES in the code directory); None without cache files."""
        import glob
        code = self.dirs["code"]
        names = setup.get("cacheFiles") or sorted({os.path.relpath(p, code) for pattern in CACHE_FILES
                                                    for p in glob.glob(os.path.join(code, pattern))})
        files = {}
        for name in names:
            path = os.path.join(code, safe_path(name))
            if not os.path.isfile(path):
                raise Fatal("setup cache file %s is not in the code directory" % name)
            files[name] = sha256_file(path)
        if not files:
            log("setup: no cache files (%s): not cached" % ", ".join(CACHE_FILES))
            return None
        what = {"command": setup["command"], "cachePaths": setup.get("cachePaths") or [".venv"], "files": files,
                "imageId": self.info.get("imageId"), "container": (container or {}).get("image"), "machine": platform.machine()}
        return "%s/cache/setup/%s.tar" % (self.env, hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest())

    def restore_cache(self, key):
        """The cached setup result, unpacked into the code directory: True if there was one."""
        tar = os.path.join(os.path.dirname(self.dirs["code"]), "setup-cache.tar")  # beside, not in, what the command sees
        try:
            with open(tar, "wb") as sink:
                if self.s3.call("GET", key, sink=sink)[0] != 200:
                    log("setup: no cache at %s" % key)
                    return False
            with tarfile.open(tar) as t:
                members = t.getmembers()
                for m in members:  # Python 3.9 has no extraction filter: relative names, files, directories, links
                    safe_path(m.name)
                    if not (m.isfile() or m.isdir() or m.issym()):
                        raise Fatal("setup cache %s: %s is not a file, a directory or a symbolic link" % (key, m.name))
                t.extractall(self.dirs["code"], members)
            log("setup: restored %d entries from the cache %s; the setup is skipped" % (len(members), key))
            return True
        except (OSError, tarfile.TarError) as e:
            log("setup: the cache %s could not be restored (%s): the setup runs" % (key, e))
            return False
        finally:
            if os.path.exists(tar):
                os.remove(tar)

    def run_setup(self, command):
        """The setup command in the code directory (sh -c), its output the `setup` stream; a spot notice during it
        interrupts the attempt."""
        log("setup: " + command)
        with open(os.path.join(self.dirs["logs"], "setup.log"), "ab") as out:
            p = subprocess.Popen(["/bin/sh", "-c", command], cwd=self.dirs["code"], env=self.command_env(),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                while True:
                    try:
                        rc = p.wait(5)
                        break
                    except subprocess.TimeoutExpired:
                        if not self.imds.off:
                            self.listen_imds()
                        if self.drain:
                            raise Interrupted(self.drain[1] + " during the setup")
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        if rc:
            self.exit_code = rc if rc > 0 else 128 - rc
            raise Fatal("setup failed (exit %d)" % self.exit_code)
        log("setup: done")

    def save_cache(self, key, paths):
        """The setup's result (the existing `paths` of the code directory) as one tar, uploaded in the background."""
        found = [p for p in paths if os.path.lexists(os.path.join(self.dirs["code"], safe_path(p)))]
        if not found:
            return log("setup: none of %s exists: nothing to cache" % ", ".join(paths))
        tar = os.path.join(os.path.dirname(self.dirs["code"]), "setup-cache.tar")  # beside, not in, what the command sees
        with tarfile.open(tar, "w") as t:
            for p in found:
                t.add(os.path.join(self.dirs["code"], p), p)

        def upload():
            try:
                size = self.s3.put_file(key, tar, time.time() + 1800)[0]
                log("setup: cached %s (%d bytes) at %s" % (", ".join(found), size, key))
            except (OSError, Fatal) as e:
                log("setup: not cached: %s" % e)
            finally:
                os.remove(tar)
        self.cache_upload = thread(upload)

    def container_command(self, cmd, env):
        """With the spec's `container`, `docker run` of the command (docs/RUNS.md, "A container"); else the command."""
        image = (self.spec.get("container") or {}).get("image")
        if not image:
            return cmd
        names = sorted(k for k, v in env.items() if os.environ.get(k) != v and k not in ("PATH", "VIRTUAL_ENV"))
        mounts = [a for d in ("code", "checkpoints", "artifacts", "runtime") for a in ("-v", "%s:%s" % (self.dirs[d], self.dirs[d]))]
        gpus = ["--gpus", "all"] if shutil.which("nvidia-smi") else []
        self.container = "chronos-%s-%d" % (self.run_id, self.attempt)
        # docker run proxies SIGTERM to the container (--sig-proxy, the default without -t); --init forwards it on to
        # the command; values pass through the environment, never on the command line (-e NAME).
        return (["docker", "run", "--rm", "--init", "--name", self.container, "--network", "host", "-w", self.dirs["code"]]
                + gpus + mounts + [a for n in names for a in ("-e", n)] + [image] + list(cmd))

    def remove_container(self):
        """The container of a killed `docker run` client, which outlives it."""
        if getattr(self, "container", None):
            subprocess.run(["docker", "rm", "-f", self.container], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def registry_login(self, image):
        """An ECR image: `docker login` with ecr:GetAuthorizationToken (SigV4, the instance role)."""
        m = ECR.match(image)
        if not m:
            return
        region = m.group(2)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_ECR") or os.environ.get("AWS_ENDPOINT_URL") or \
            "https://api.ecr.%s.amazonaws.com%s" % (region, m.group(3) or "")
        u = urllib.parse.urlsplit(endpoint)
        body = json.dumps({"registryIds": [m.group(1)]}).encode()
        headers = sigv4("POST", u.netloc, "/", [], {"content-type": "application/x-amz-json-1.1",
                                                    "x-amz-target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"},
                        hashlib.sha256(body).hexdigest(), self.s3.creds.get(), region, "ecr",
                        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        status, data = http_call("POST", endpoint.rstrip("/") + "/", headers, body)
        if status != 200:
            raise Fatal("ecr GetAuthorizationToken for %s: HTTP %d %s" % (image, status, data[:200].decode(errors="replace")))
        auth = json.loads(data.decode())["authorizationData"][0]
        user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
        r = subprocess.run(["docker", "login", "--username", user, "--password-stdin", auth["proxyEndpoint"]],
                           input=password.encode(), capture_output=True)
        if r.returncode:
            raise Fatal("docker login to %s failed: %s" % (auth["proxyEndpoint"], r.stderr.decode(errors="replace")[-300:]))
        log("container: logged in to %s" % auth["proxyEndpoint"])

    def supervise(self):
        """Runs the command in a process group of its own; keeps, listens; drains or ends. Returns its exit code."""
        env = self.command_env()
        cmd = self.container_command(self.spec["command"], env)
        log("starting " + " ".join(shlex.quote(a) for a in cmd))
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.dirs["code"], env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            self.exit_code = 127
            raise Fatal("cannot start the command: %s" % e)
        readers = [thread(self.read_pipe, self.proc.stdout, "stdout"), thread(self.read_pipe, self.proc.stderr, "stderr")]
        keepers = [thread(self.keep_logs), thread(self.keep_checkpoints)]
        echo = thread(self.echo_out)
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
        echo.join(5)  # the console has the command's last lines before the agent's own
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
        self.remove_container()

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
        root, paths = self.dirs["artifacts"], []
        for d, _, names in os.walk(root):
            paths += [os.path.join(d, n) for n in names]
        run_pool([lambda p=p: self.s3.put_file("%s/artifacts/%s/%s" % (self.env, self.run_id, os.path.relpath(p, root)), p,
                                               deadline) for p in sorted(paths)])


def temporary(name):
    return name.endswith(TEMPORARY) or name.startswith(".nfs")


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
