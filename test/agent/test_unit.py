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


def _without_docstrings(source):
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0].value, "value", None), str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def test_the_agent_in_the_user_data_is_the_file():
    """The user data carries the agent compacted (src/private/run-agent-user-data.ts, compactPython): decoded from the
    real script, it parses (as Python 3.9) to the same syntax tree as agent/chronos_run_agent.py, docstrings aside."""
    import base64
    import gzip
    from test_scenarios import render_user_data  # noqa: E402

    class R:
        bucket, tmp = "b", os.environ.get("TMPDIR", "/tmp")
    with open(render_user_data(R())) as f:
        lines = f.read().split("\n")
    start = [i for i, line in enumerate(lines) if line.startswith("base64 -d <<'EOF'")][0]
    embedded = gzip.decompress(base64.b64decode(lines[start + 1])).decode()
    ast.parse(embedded, feature_version=(3, 9))
    with open(AGENT) as f:
        assert _without_docstrings(embedded) == _without_docstrings(f.read())
