"""Unit tests of the run agent's pieces: SigV4 against AWS's published examples, and the Python 3.9 floor."""
import ast
import hashlib
import importlib.util
import os
import subprocess
import sys

from conftest import AGENT

spec = importlib.util.spec_from_file_location("chronos_run_agent", AGENT)
agent = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agent)

EXAMPLE_CREDS = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None)


def signature(headers):
    return headers["authorization"].rsplit("Signature=", 1)[1]


def test_sigv4_s3_get_object_example():
    """AWS's S3 example "GET Object" (Amazon S3 API Reference, "Authenticating Requests: Using the Authorization
    Header (AWS Signature Version 4)", Examples: Signature Calculations, https://docs.aws.amazon.com/AmazonS3/latest/API/
    sig-v4-header-based-auth.html): a range GET of /test.txt from examplebucket on 20130524T000000Z."""
    h = agent.sigv4("GET", "examplebucket.s3.amazonaws.com", "/test.txt", [], {
        "range": "bytes=0-9", "x-amz-content-sha256": agent.EMPTY_SHA}, agent.EMPTY_SHA, EXAMPLE_CREDS,
        "us-east-1", "s3", "20130524T000000Z")
    assert h["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_sigv4_s3_put_object_example():
    """The same page's "PUT Object": /test$file.text, "Welcome to Amazon S3.", with x-amz-storage-class and Date;
    the key's `$` is URI-encoded in the canonical URI."""
    body = b"Welcome to Amazon S3."
    payload = hashlib.sha256(body).hexdigest()
    h = agent.sigv4("PUT", "examplebucket.s3.amazonaws.com", "/" + agent.quote("test$file.text", "-_.~/"), [], {
        "date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": payload}, payload, EXAMPLE_CREDS, "us-east-1", "s3", "20130524T000000Z")
    assert signature(h) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


def test_sigv4_s3_list_objects_example():
    """The same page's "GET Bucket (List Objects)": ?max-keys=2&prefix=J, query parameters sorted and encoded."""
    h = agent.sigv4("GET", "examplebucket.s3.amazonaws.com", "/", [("prefix", "J"), ("max-keys", "2")], {
        "x-amz-content-sha256": agent.EMPTY_SHA}, agent.EMPTY_SHA, EXAMPLE_CREDS, "us-east-1", "s3",
        "20130524T000000Z")
    assert signature(h) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"


def test_sigv4_test_suite_get_vanilla():
    """AWS's Signature Version 4 test suite, `get-vanilla` (service "service", us-east-1, 20150830T123600Z)."""
    h = agent.sigv4("GET", "example.amazonaws.com", "/", [], {}, agent.EMPTY_SHA,
                    ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None), "us-east-1", "service",
                    "20150830T123600Z")
    assert signature(h) == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"


def test_session_token_is_signed():
    h = agent.sigv4("GET", "h", "/", [], {}, agent.EMPTY_SHA, ("A", "S", "TOKEN"), "us-east-1", "s3",
                    "20130524T000000Z")
    assert h["x-amz-security-token"] == "TOKEN" and "x-amz-security-token" in h["authorization"]


def test_parses_with_python_3_9_grammar():
    """Amazon Linux 2023's /usr/bin/python3 is 3.9: no `match`, no `X | Y` annotations, no parenthesized
    context managers. ast's feature_version checks the grammar; vermin (below) the library APIs."""
    with open(AGENT) as f:
        ast.parse(f.read(), filename=AGENT, feature_version=(3, 9))


def test_vermin_finds_nothing_above_python_3_9():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    r = subprocess.run([vermin, "-t=3.9-", "--no-tips", "--violations", "--eval-annotations", AGENT],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_unsafe_manifest_paths_are_refused():
    for bad in ("/etc/passwd", "../x", "a/../../x", "a//b", "", "a\\b", "."):
        try:
            agent.safe_path(bad)
        except agent.Fatal:
            continue
        raise AssertionError("accepted %r" % bad)
    assert agent.safe_path("a/b.pt") == "a/b.pt"


def test_version():
    r = subprocess.run([sys.executable, AGENT, "--version"], capture_output=True, text=True)
    assert r.stdout.strip() == "chronos-run-agent " + agent.VERSION


def test_the_loader_in_the_user_data_parses_as_python_3_9():
    """The user data carries the loader (src/private/run-agent-loader.ts), not the agent: taken from the real script
    (the gzip-base64 one carries the raw one, gzipped), it parses as Python 3.9 and names the run's agent key."""
    import base64
    import gzip
    from test_scenarios import render_user_data  # noqa: E402

    class R:
        bucket, tmp = "b", os.environ.get("TMPDIR", "/tmp")
    with open(render_user_data(R())) as f:
        lines = f.read().split("\n")
    start = [i for i, line in enumerate(lines) if "base64 -d <<'EOF'" in line][0]
    lines = gzip.decompress(base64.b64decode(lines[start + 1])).decode().split("\n")
    start = lines.index("cat > chronos_boot.py.tmp <<'CHRONOS_BOOT_EOF' && mv chronos_boot.py.tmp chronos_boot.py")
    loader = "\n".join(lines[start + 1:lines.index("CHRONOS_BOOT_EOF")]) + "\n"
    ast.parse(loader, feature_version=(3, 9))
    assert '"%s/runs/%s/agent/chronos_run_agent.py"' in loader
    assert "def supervise(" not in "\n".join(lines)


def test_s3_addressing_takes_the_dns_suffix_and_goes_path_style_for_a_name_with_dots(monkeypatch):
    """Virtual-hosted-style requests to a bucket whose name has dots fail TLS: the wildcard certificate
    *.s3.{region}.amazonaws.com matches one label only (S3 User Guide, "Virtual hosting of general purpose buckets",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html: "When you're using virtual-hosted-style
    buckets with SSL, the SSL wildcard certificate matches only buckets that don't contain dots (.)"; its path-style
    form is https://s3.region-code.amazonaws.com/bucket-name/key-name). Such a name goes path-style; the others stay virtual-hosted. The DNS suffix is the
    partition's (amazonaws.com.cn in China), as IMDS `services/domain` gives it (EC2 User Guide, "Instance metadata
    categories": services/domain, "The domain for AWS resources for the Region")."""
    for k in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(k, raising=False)
    dotted = agent.S3("data.example.com", "eu-west-1", None, "amazonaws.com")
    assert (dotted.host, dotted.base, dotted.root) == ("s3.eu-west-1.amazonaws.com", "https://s3.eu-west-1.amazonaws.com",
                                                       "/data.example.com")
    plain = agent.S3("training-dev", "cn-north-1", None, "amazonaws.com.cn")
    assert (plain.host, plain.root) == ("training-dev.s3.cn-north-1.amazonaws.com.cn", "")
    # the signed path is the path sent: /{bucket}/{key} path-style
    h = agent.sigv4("GET", dotted.host, dotted.root + "/k", [], {}, agent.EMPTY_SHA, EXAMPLE_CREDS, "eu-west-1", "s3",
                    "20130524T000000Z")
    assert h["host"] == "s3.eu-west-1.amazonaws.com"


def test_the_dns_suffix_comes_from_imds_services_domain():
    from conftest import FakeImds
    imds = FakeImds({"services/domain": (200, "amazonaws.com.cn")})
    try:
        os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint
        assert agent.s3_domain(agent.Imds(), "cn-north-1") == "amazonaws.com.cn"
        assert imds.seen == ["services/domain"]
    finally:
        del os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
        imds.close()
    off = agent.Imds()
    off.off = True  # no IMDS (Fargate): by the region
    assert agent.s3_domain(off, "cn-northwest-1") == "amazonaws.com.cn"
    assert agent.s3_domain(off, "us-east-1") == "amazonaws.com"


class RecordingS3:
    """Stands in for the agent's S3 client: records the keys written; `on_put` runs before each file upload (here, the
    training script deleting a file between the scan and its upload)."""

    def __init__(self, on_put=lambda key: None):
        self.files, self.docs, self.on_put = [], [], on_put

    def put_file(self, key, path, deadline=None, cancel=None):
        self.on_put(key)
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
        self.files.append(key)
        return st.st_size, st.st_mtime_ns

    def put_json(self, key, doc, deadline=None):
        self.docs.append((key, doc))

    def list(self, prefix):
        return []


def test_a_file_that_vanishes_before_its_upload_aborts_the_checkpoint(tmp_path, monkeypatch):
    """Checkpoints are whole or absent (docs/RUNS.md): a file of the scan that is gone when its turn to upload comes
    (the script replaced or removed it) aborts that checkpoint: no manifest, so no partial checkpoint is ever
    committed; the next one, soon after, commits what is there."""
    monkeypatch.setenv("CHRONOS_HOME", str(tmp_path))
    a = agent.Agent("run")
    os.makedirs(a.dirs["checkpoints"])
    a.ck_prefix = "dev/checkpoints/r/"
    for name in ("a.pt", "b.pt"):
        with open(os.path.join(a.dirs["checkpoints"], name), "w") as f:
            f.write(name)
    # The files go side by side: b.pt's own turn removes it (as the script would have between the scan and it).
    a.s3 = RecordingS3(lambda key: key.endswith("b.pt") and os.remove(os.path.join(a.dirs["checkpoints"], "b.pt")))
    try:
        a.checkpoint(0, "interval")
        raise AssertionError("the checkpoint was committed without b.pt")
    except OSError as e:
        assert "b.pt vanished before its upload: checkpoint 1 aborted" in str(e)
    assert a.s3.docs == [] and a.committed == {} and a.last_checkpoint is None
    a.s3.on_put = lambda key: None
    assert a.checkpoint(0, "interval") is True
    ((key, manifest),) = a.s3.docs
    assert key == "dev/checkpoints/r/manifests/0000000001.json" and [f["path"] for f in manifest["files"]] == ["a.pt"]
    assert a.s3.files == ["dev/checkpoints/r/data/0000000001/a.pt"]  # a.pt was not sent twice
