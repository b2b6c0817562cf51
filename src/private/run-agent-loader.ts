/**
 * The run agent's loader (docs/RUNS.md, "On the instance"; docs/DESIGN.md, "The run on the instance"): the Python
 * script the boot script writes to `/opt/chronos/chronos_boot.py`. The agent itself is not in the user data: the
 * launcher uploads its own agent to `{env}/runs/{runId}/agent/chronos_run_agent.py` when a run starts
 * (`contract.agent_key`), so every attempt of a run runs the agent of the launcher that wrote its spec.
 *
 * `python3 chronos_boot.py fetch RUN_ID` gets that object from the bucket (the `ChronosBucket` instance tag) with
 * SigV4 and the instance role's credentials from IMDSv2, into `chronos_run_agent.py` (a temporary file renamed into
 * place), and checks that it runs (`--version`). Network errors, 5xx and 429 are retried for
 * `CHRONOS_AGENT_FETCH_SECONDS` (default 60); any other answer (403, 404) at once. On failure it writes the attempt's
 * status.json `failed`, saying why, if S3 takes it, and exits 1: the boot script then powers off (the backstop,
 * started before, runs regardless).
 *
 * `python3 chronos_boot.py backstop SECONDS` powers the instance off after SECONDS, whatever the agent does.
 *
 * Standard library only, Python 3.9. For tests, the environment may set what the agent reads: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL_S3 (path-style), CHRONOS_BUCKET,
 * CHRONOS_ATTEMPT, AWS_EC2_METADATA_SERVICE_ENDPOINT and CHRONOS_POWEROFF_COMMAND.
 */
export const RUN_AGENT_LOADER = String.raw`#!/usr/bin/env python3
# Chronos boot loader (docs/RUNS.md, "On the instance"): fetches the run's agent from the bucket; the backstop.
import hashlib, hmac, json, os, shlex, signal, subprocess, sys, time, urllib.error, urllib.parse, urllib.request

E = os.environ
IMDS = E.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254").rstrip("/") + "/latest/"
OPEN = urllib.request.build_opener(urllib.request.ProxyHandler({})).open
TOKEN = []


def http(method, url, headers, body=None):
    """(status, body); an HTTP error is an answer, a network error raises OSError."""
    try:
        with OPEN(urllib.request.Request(url, body, headers, method=method), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def md(path):
    """meta-data/{path} through IMDSv2, or None on 404."""
    if not TOKEN:
        TOKEN.append(http("PUT", IMDS + "api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "300"})[1].decode())
    status, body = http("GET", IMDS + "meta-data/" + path, {"X-aws-ec2-metadata-token": TOKEN[0]})
    if status not in (200, 404):
        raise OSError("instance metadata %s: HTTP %d" % (path, status))
    return body.decode().strip() if status == 200 else None


def maybe(path):
    try:
        return md(path)
    except (OSError, ValueError):
        return None


def credentials():
    if E.get("AWS_ACCESS_KEY_ID") and E.get("AWS_SECRET_ACCESS_KEY"):
        return E["AWS_ACCESS_KEY_ID"], E["AWS_SECRET_ACCESS_KEY"], E.get("AWS_SESSION_TOKEN")
    role = md("iam/security-credentials/")
    if not role:
        raise OSError("no instance role")
    d = json.loads(md("iam/security-credentials/" + role.split()[0]))
    return d["AccessKeyId"], d["SecretAccessKey"], d.get("Token")


def s3(method, key, body=b""):
    """(status, body) of a SigV4-signed S3 request for the run's bucket."""
    bucket = E.get("CHRONOS_BUCKET") or md("tags/instance/ChronosBucket")
    if not bucket:
        raise OSError("no ChronosBucket instance tag")
    region = E.get("AWS_REGION") or E.get("AWS_DEFAULT_REGION") or md("placement/region")
    endpoint = E.get("AWS_ENDPOINT_URL_S3") or E.get("AWS_ENDPOINT_URL")
    path = "/" + urllib.parse.quote(key, "-_.~/")
    if endpoint:  # path-style, as the SDKs with a custom endpoint
        base, path = endpoint.rstrip("/"), "/" + bucket + path
    elif "." in bucket:  # a name with dots fails TLS virtual-hosted
        base, path = "https://s3.%s.%s" % (region, md("services/domain") or "amazonaws.com"), "/" + bucket + path
    else:
        base = "https://%s.s3.%s.%s" % (bucket, region, md("services/domain") or "amazonaws.com")
    key_id, secret, token = credentials()
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    h = {"host": urllib.parse.urlsplit(base).netloc, "x-amz-date": now,
         "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    if token:
        h["x-amz-security-token"] = token
    if method == "PUT":  # (else urllib sends a form's content type, whose body a server may parse away)
        h["content-type"] = "application/json"
    names = sorted(h)
    canonical = "\n".join([method, path, "", "".join("%s:%s\n" % (k, h[k]) for k in names), ";".join(names),
                           h["x-amz-content-sha256"]])
    scope = "%s/%s/s3/aws4_request" % (now[:8], region)
    k = ("AWS4" + secret).encode()
    for part in (now[:8], region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (now, scope, hashlib.sha256(canonical.encode()).hexdigest())
    h["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        key_id, scope, ";".join(names), hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest())
    return http(method, base + path, h, body if method == "PUT" else None)


def fetch(run_id):
    """The run's agent, into chronos_run_agent.py; None, or why not."""
    key = "%s/runs/%s/agent/chronos_run_agent.py" % (E["CHRONOS_ENVIRONMENT"], run_id)
    deadline, tries = time.time() + float(E.get("CHRONOS_AGENT_FETCH_SECONDS", "60")), 0
    while True:
        tries += 1
        try:
            status, body = s3("GET", key)
            if status == 200:
                with open("chronos_run_agent.py.tmp", "wb") as f:
                    f.write(body)
                r = subprocess.run([sys.executable, "chronos_run_agent.py.tmp", "--version"], capture_output=True)
                if r.returncode:
                    return "the run agent s3 object %s does not run: %s" % (key, r.stderr.decode()[-300:].strip())
                os.replace("chronos_run_agent.py.tmp", "chronos_run_agent.py")
                return None
            error = "HTTP %d" % status
            if status < 500 and status != 429:
                return "cannot read the run agent s3 object %s: %s" % (key, error)
        except (OSError, ValueError, KeyError) as e:
            error = str(e)
        if time.time() + min(8, tries) > deadline:
            return "cannot read the run agent s3 object %s: %s (%d tries)" % (key, error, tries)
        print("chronos-boot: %s, retrying" % error, file=sys.stderr)
        time.sleep(min(8, tries))


def fail(run_id, reason):
    """The attempt's status.json, failed with the reason, as far as S3 takes it."""
    key = "%s/runs/%s/status.json" % (E["CHRONOS_ENVIRONMENT"], run_id)
    try:
        status, body = s3("GET", key)
        doc = json.loads(body) if status == 200 else {}
        at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        doc.update(schemaVersion=1, runId=run_id, state="failed", reason=reason, updatedAt=at, endedAt=at, exitCode=None,
                   attempt=int(E.get("CHRONOS_ATTEMPT") or maybe("tags/instance/ChronosAttempt") or 1))
        doc.setdefault("startedAt", at)
        for field, path in (("instanceId", "instance-id"), ("instanceType", "instance-type"),
                            ("lifecycle", "instance-life-cycle"), ("availabilityZone", "placement/availability-zone")):
            doc[field] = maybe(path)
        if s3("PUT", key, json.dumps(doc, indent=1).encode())[0] != 200:
            raise OSError("refused")
    except (OSError, ValueError) as e:
        print("chronos-boot: the status could not be written: %s" % e, file=sys.stderr)


def main(a):
    if a[:1] == ["fetch"] and len(a) == 2:
        reason = fetch(a[1])
        if reason:
            print("chronos-boot: " + reason, file=sys.stderr)
            fail(a[1], reason)
        return 1 if reason else 0
    if a[:1] == ["backstop"] and len(a) == 2 and a[1].isdigit():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        end = time.monotonic() + int(a[1])
        while time.monotonic() < end:
            time.sleep(min(60, end - time.monotonic()))
        return subprocess.run(shlex.split(E.get("CHRONOS_POWEROFF_COMMAND", "systemctl poweroff"))).returncode
    sys.exit("usage: chronos_boot.py fetch RUN_ID|backstop SECONDS")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
`;
