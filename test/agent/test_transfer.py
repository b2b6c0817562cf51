"""The agent's S3 transfers in process, its real S3 class against moto server (S3) on loopback: multipart uploads and
ranged downloads side by side, aborted uploads, DeleteObjects batches; and the S3 limits moto does not enforce, each
beside the document that states it (docs/RUNS.md, "Checkpoints")."""
import base64
import hashlib
import http.server
import importlib.util
import os
import threading
import time
import uuid

import boto3
import pytest

import disk_s3
from conftest import AGENT, S3Proxy

spec = importlib.util.spec_from_file_location("agent_transfer", AGENT)
agent = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agent)
MiB, GiB, TiB = 1 << 20, 1 << 30, 1 << 40


# --- S3 User Guide, "Amazon S3 multipart upload limits" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
# qfacts.html): parts 5 MiB to 5 GiB (no minimum for the last one), at most 10,000 parts, part numbers 1 to 10,000, an
# object of at most 48.8 TiB. moto takes parts under 5 MiB and more than 10,000 parts.

@pytest.mark.parametrize("size", [agent.THRESHOLD + 1, 2 * GiB, 10 * GiB, 16 * GiB, 330 * GiB, TiB, 5 * TiB,
                                  agent.MAX_OBJECT - 1, agent.MAX_OBJECT])
def test_the_part_size_keeps_every_upload_within_s3s_multipart_limits(size):
    part = agent.part_size(size)
    count = -(-size // part)
    assert 5 * MiB <= part <= 5 * GiB  # each part but the last: 5 MiB to 5 GiB
    assert 1 <= count <= 10000  # part numbers 1 to 10,000
    assert part % MiB == 0
    assert part == max(agent.PART, -(-(-(-size // 10000)) // MiB) * MiB)  # the smallest that fits, never below PART


def test_an_object_over_s3s_largest_is_refused_before_any_request():
    assert agent.MAX_OBJECT == 10000 * 5 * GiB  # 48.8 TiB
    with pytest.raises(agent.TooBig, match=r"^%d bytes: over the %d bytes S3 takes in one object$" % (
            agent.MAX_OBJECT + 1, agent.MAX_OBJECT)):
        agent.part_size(agent.MAX_OBJECT + 1)


def test_one_put_never_carries_more_than_5_gib():
    # S3 User Guide, "Uploading objects": a single PUT uploads at most 5 GB; above THRESHOLD the agent uses parts.
    assert agent.THRESHOLD <= agent.MAX_PUT and agent.PART <= agent.MAX_PART and agent.PART >= agent.MIN_PART


# --- against moto ---------------------------------------------------------------------------------------------------

@pytest.fixture
def s3(moto_endpoint, monkeypatch):
    """The agent's S3 client on a new bucket; THRESHOLD 8 MiB and PART 5 MiB, so that a few MiB take several parts."""
    for k, v in dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL_S3=moto_endpoint).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setattr(agent, "THRESHOLD", 8 * MiB)
    monkeypatch.setattr(agent, "PART", 5 * MiB)
    monkeypatch.setattr(agent, "log", lambda msg: None)
    bucket = "transfer-" + uuid.uuid4().hex[:12]
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket=bucket)
    s = agent.S3(bucket, "us-east-1", agent.Credentials(agent.Imds()))
    s.client, s.calls = client, []
    real = s.call

    def call(method, key="", query=(), body=None, size=0, **kw):
        s.calls.append((method, key, dict(query), kw.get("headers") or {}, body))
        return real(method, key, query, body, size, **kw)
    s.call = call
    return s


def make_file(tmp_path, name, size):
    path = str(tmp_path / name)
    block = hashlib.sha256(name.encode()).digest() * (MiB // 32)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            f.write(block[i % 7:] + block[:i % 7])
        f.write(block[:size % MiB])
    return path


def sha(path):
    return agent.sha256_file(path)


def test_a_file_above_the_threshold_goes_in_parts_side_by_side_and_comes_back_in_ranged_gets(s3, tmp_path):
    path = make_file(tmp_path, "big.pt", 23 * MiB + 123)
    assert s3.put_file("ck/big.pt", path) == (os.path.getsize(path), os.stat(path).st_mtime_ns)
    parts = [c for c in s3.calls if c[0] == "PUT" and "partNumber" in c[2]]
    assert sorted(int(c[2]["partNumber"]) for c in parts) == [1, 2, 3, 4, 5]
    assert [c[0] for c in s3.calls if "partNumber" not in c[2]] == ["POST", "POST"]  # create, complete
    head = s3.client.head_object(Bucket=s3.bucket, Key="ck/big.pt")
    assert head["ContentLength"] == 23 * MiB + 123 and head["ETag"].endswith('-5"')
    s3.calls.clear()
    out = str(tmp_path / "restored" / "big.pt")
    s3.get_file("ck/big.pt", out, 23 * MiB + 123)
    assert sha(out) == sha(path) and not os.path.exists(out + ".partial")
    ranges = sorted(c[3]["range"] for c in s3.calls)
    assert ranges == sorted("bytes=%d-%d" % (i * 5 * MiB, min((i + 1) * 5 * MiB, 23 * MiB + 123) - 1) for i in range(5))


def test_a_small_file_is_one_put_and_one_get(s3, tmp_path):
    path = make_file(tmp_path, "small.pt", 3 * MiB)
    s3.put_file("ck/small.pt", path)
    assert [(c[0], c[2]) for c in s3.calls] == [("PUT", {})]
    out = str(tmp_path / "r" / "small.pt")
    s3.get_file("ck/small.pt", out, 3 * MiB)
    assert sha(out) == sha(path)


def no_uploads(s3):
    return s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])


@pytest.mark.parametrize("how", ["cancel", "deadline"])
def test_an_upload_stopped_mid_way_is_aborted_and_leaves_no_object(s3, tmp_path, moto_endpoint, monkeypatch, how):
    """A drain's cancel, or the deadline, stops the parts in flight: AbortMultipartUpload, so that S3 keeps (and bills)
    no parts (S3 User Guide, "Aborting a multipart upload"), and no object."""
    # 1 MiB/s a connection; parts of 32 MiB, larger than what loopback's socket buffers take at once (a part that fits
    # in them is sent before the cancel can stop it): each part would take 32 s.
    monkeypatch.setattr(agent, "PART", 32 * MiB)
    proxy = S3Proxy(moto_endpoint, rate=MiB)
    try:
        s3.base = proxy.endpoint
        path = make_file(tmp_path, "big.pt", 64 * MiB)
        cancel = threading.Event()
        if how == "cancel":
            threading.Timer(1.5, cancel.set).start()
        t = time.time()
        with pytest.raises(OSError):
            if how == "cancel":  # an interval checkpoint's upload: the drain's event
                s3.put_file("ck/big.pt", path, deadline=time.time() + 60, cancel=cancel)
            else:  # the drain's final checkpoint: its deadline
                s3.put_file("ck/big.pt", path, deadline=time.time() + 1.5)
        assert time.time() - t < 8
    finally:
        proxy.close()
    assert [c[0] for c in s3.calls if "uploadId" in c[2] and "partNumber" not in c[2]] == ["DELETE"]
    assert no_uploads(s3) == []
    assert s3.client.list_objects_v2(Bucket=s3.bucket).get("KeyCount") == 0


def test_delete_objects_sends_at_most_1000_keys_a_request_with_their_md5(s3):
    """S3 API Reference, DeleteObjects (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html): "The
    request can contain a list of up to 1000 keys", and Content-MD5 (or an x-amz-checksum header) is required."""
    keys = ["ck/data/%04d" % i for i in range(2100)]
    for k in keys:
        s3.client.put_object(Bucket=s3.bucket, Key=k, Body=b"x")
    keep = s3.client.put_object(Bucket=s3.bucket, Key="ck/keep", Body=b"y")
    assert keep
    s3.delete(keys)
    posts = [c for c in s3.calls if c[0] == "POST"]
    assert [c[4].count(b"<Key>") for c in posts] == [1000, 1000, 100]
    for c in posts:
        assert c[2] == {"delete": ""}
        assert c[3]["content-md5"] == base64.b64encode(hashlib.md5(c[4]).digest()).decode()
    left = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket)["Contents"]]
    assert left == ["ck/keep"]


def test_a_complete_multipart_upload_that_fails_inside_its_200_is_an_error_and_the_upload_is_aborted(
        monkeypatch, tmp_path):
    """S3 API Reference, CompleteMultipartUpload: "a 200 OK response can contain either a success or an error" (the
    error embedded in the body). moto never sends one: a small server does."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        answer = disk_s3.answer

        def handle_one(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path))
            if self.command == "POST" and self.path.endswith("?uploads="):
                return self.answer(200, b"<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>")
            if self.command == "PUT":
                return self.answer(200, headers=[("ETag", '"e"')])
            if self.command == "POST":
                return self.answer(200, b"<Error><Code>InternalError</Code><Message>We encountered an internal error"
                                        b"</Message></Error>")
            return self.answer(204)
        do_POST = do_PUT = do_DELETE = handle_one

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for k, v in dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                     AWS_ENDPOINT_URL_S3="http://127.0.0.1:%d" % server.server_port).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(agent, "THRESHOLD", 8 * MiB)
    monkeypatch.setattr(agent, "PART", 5 * MiB)
    monkeypatch.setattr(agent, "log", lambda msg: None)
    try:
        s = agent.S3("b", "us-east-1", agent.Credentials(agent.Imds()))
        with pytest.raises(OSError, match="CompleteMultipartUpload s3://b/k.pt: .*InternalError"):
            s.put_file("k.pt", make_file(tmp_path, "k.pt", 12 * MiB))
    finally:
        server.shutdown()
    assert seen[-1] == ("DELETE", "/b/k.pt?uploadId=u1")


def test_the_pool_runs_jobs_side_by_side_and_the_first_failure_stops_the_rest():
    started, gate = [], threading.Barrier(3, timeout=10)

    def job(n):
        started.append(n)
        gate.wait()  # three at once, or this times out
    agent.run_pool([lambda n=n: job(n) for n in range(3)])
    assert sorted(started) == [0, 1, 2]
    started.clear()
    stop = threading.Event()

    def fail():
        raise OSError("part 1 refused")

    def aborted():
        stop.wait(10)
        raise agent.Aborted("upload stopped")
    jobs = [aborted, fail] + [lambda n=n: (time.sleep(0.2), started.append(n)) for n in range(100)]
    with pytest.raises(OSError, match="^part 1 refused$"):  # the cause, not the Aborted it led to
        agent.run_pool(jobs, stop)
    assert stop.is_set() and len(started) <= agent.CONNECTIONS  # those in flight end; no other starts
    agent.run_pool([])  # nothing to do: no thread


@pytest.fixture
def denied(s3, monkeypatch):
    """The agent's S3 client as AWS answers a caller whose ListBucket holds only for its prefixes: S3 API Reference,
    GetObject: "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 Access
    Denied" for a missing key (moto answers 404), and a GET of a key in `forbidden` is denied outright."""
    real, forbidden = agent.http_call, set()

    def http_call(method, url, *args, **kw):
        status, data = real(method, url, *args, **kw)
        key = url.split("?")[0].split("/%s/" % s3.bucket, 1)[-1]
        if method == "GET" and "list-type" not in url and (status == 404 or key in forbidden):
            return 403, b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        return status, data
    monkeypatch.setattr(agent, "http_call", http_call)
    s3.forbidden = forbidden
    return s3


def test_a_403_for_a_key_that_a_listing_does_not_show_is_a_missing_object(denied):
    denied.client.put_object(Bucket=denied.bucket, Key="dev/runs/r/control.json.old", Body=b"{}")
    assert denied.get("dev/runs/r/control.json") is None
    assert denied.get_json("dev/runs/r/control.json") is None


def test_a_403_for_a_key_that_exists_is_the_denial_it_says(denied):
    denied.client.put_object(Bucket=denied.bucket, Key="dev/runs/r/control.json", Body=b"{}")
    denied.forbidden.add("dev/runs/r/control.json")
    with pytest.raises(agent.Fatal, match="HTTP 403 AccessDenied"):
        denied.get("dev/runs/r/control.json")
