"""The installed `chronos-training` command as a user runs it: a process of its own, against a moto server on loopback
(AWS_ENDPOINT_URL, which botocore honours: "Service-specific endpoints" in the AWS SDKs and Tools Reference Guide).
The TypeScript launcher's "bundled command" tests, for the console script of the Python package.

The region is given as AWS_REGION, as the TypeScript launcher (the AWS SDK for JavaScript) read it. boto3 reads only
AWS_DEFAULT_REGION (Boto3 documentation, "Configuration", "Using environment variables"; boto/boto3 #3620, "Support
AWS_REGION environment variable in addition to AWS_DEFAULT_REGION"), so the package's Clients reads AWS_REGION itself:
without it, these commands end with "no AWS region"."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from moto_world import REGION, Recorded, make_foundation

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def command() -> str:
    """The console script beside the interpreter (the venv's bin), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "chronos-training")
    found = beside if os.path.exists(beside) else shutil.which("chronos-training")
    assert found, "chronos-training is not installed in this environment"
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from moto.server import ThreadedMotoServer
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = "http://%s:%d" % (host, port)
    make_foundation(Recorded(endpoint))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_REGION=REGION, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", CHRONOS_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    yield env
    moto.stop()


def test_runs_honours_aws_endpoint_url_and_prints_one_error_line_with_a_non_zero_exit(server):
    listed = subprocess.run([command(), "list", "--env", "dev"], env=server, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert re.match(r"^RUN\s+STATE", listed.stdout.split("\n")[0])
    version = subprocess.run([command(), "--version"], capture_output=True, text=True)
    assert re.match(r"^chronos-training \d+\.\d+\.\d+\S*\n$", version.stdout)
    failure = subprocess.run([command(), "logs", "no-such-run-x", "--env", "dev"], env=server, capture_output=True,
                             text=True)
    assert failure.returncode == 1
    assert failure.stderr == "chronos-training: error: no run no-such-run-x in environment dev\n"


def test_a_real_ctrl_c_sigint_of_the_attached_command_detaches_exit_0_the_run_id_on_stdout(server, tmp_path):
    (tmp_path / "train.py").write_text("print(1)\n")
    child = subprocess.Popen([command(), "run", "--env", "dev", "--dir", str(tmp_path), "--instance-types", "t3.micro",
                              "--", "sleep", "60"], env=server, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr = ""
    # One press, as a user makes it (a second one quits at once, exit 130), once the attempt is launched.
    while not re.search(r"\[chronos\] attempt 1: i-", stderr):
        line = child.stderr.readline()
        assert line, "the command ended before its launch: %s" % stderr
        stderr += line
    child.send_signal(signal.SIGINT)
    out, rest = child.communicate(timeout=60)
    stderr += rest
    assert "detached; the run goes on" in stderr
    assert child.returncode == 0
    assert re.match(r"^run-\d{8}-\d{6}-[0-9a-f]{6}\n$", out)


def test_agent_path_prints_the_packaged_agents_path_or_copies_it(tmp_path):
    agent = os.path.join(ROOT, "chronos-training", "src", "chronos_training", "agent", "chronos_run_agent.py")
    printed = subprocess.run([command(), "agent-path"], capture_output=True, text=True)
    assert printed.returncode == 0
    path = printed.stdout.strip()
    # The installed wheel's copy (site-packages), never the source tree's.
    assert path.endswith(os.path.join("chronos_training", "agent", "chronos_run_agent.py")) and path != agent
    with open(path, "rb") as f, open(agent, "rb") as g:
        assert f.read() == g.read()
    copied = subprocess.run([command(), "agent-path", "--copy", str(tmp_path)], capture_output=True, text=True)
    assert copied.stdout == "%s\n" % os.path.join(str(tmp_path), "chronos_run_agent.py")
    with open(os.path.join(str(tmp_path), "chronos_run_agent.py"), "rb") as f, open(agent, "rb") as g:
        assert f.read() == g.read()


# The port of "is not loaded by the library": here, the start of the command and of `import chronos_training` loads no
# AWS SDK (boto3 costs a few hundred milliseconds of import; Python documentation, "-X importtime").
def test_help_and_the_packages_import_load_no_boto3():
    probe = ("import sys, chronos_training, chronos_training.cli as c, io; c.main_with(['--help'], c.Io(out=lambda t: "
             "None)); c.main_with(['run', '--help'], c.Io(out=lambda t: None)); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# The Python package is versioned with the construct package: hatchling reads the root package.json at build time
# (pyproject.toml, [tool.hatch.version]); the installed distribution's version is that one.
def test_the_installed_version_is_the_construct_packages():
    with open(os.path.join(ROOT, "package.json")) as f:
        expected = json.load(f)["version"]
    version = subprocess.run([command(), "--version"], capture_output=True, text=True).stdout
    assert version == "chronos-training %s\n" % expected


def test_status_prints_the_estimated_cost_and_an_unknown_price_with_its_reason_never_a_failure(server):
    """`status` of a run with attempt records, as a process: the spot attempt priced from the moto server's
    DescribeSpotPriceHistory (one price per hour for the whole interval), the on-demand one unknown because the moto
    server has no Price List API (it answers 500: the command still exits 0, with the reason)."""
    c = Recorded(server["AWS_ENDPOINT_URL"])
    bucket = [b["Name"] for b in c.s3.list_buckets()["Buckets"] if b["Name"].startswith("chronos-training-dev-")][0]
    answered = c.ec2.describe_spot_price_history(InstanceTypes=["m5.large"])["SpotPriceHistory"]
    hourly = float([p for p in answered if p["AvailabilityZone"] == "us-east-1a"][0]["SpotPrice"])
    hours = 1000 / (hourly * 100)  # ten dollars' worth at the server's price: a figure `$%.2f` shows
    spot = {"schemaVersion": 1, "runId": "cost-run-1", "attempt": 1, "state": "succeeded", "instanceId": "i-01",
            "instanceType": "m5.large", "market": "spot", "availabilityZone": "us-east-1a",
            "launchedAt": "2026-12-01T10:00:00.000Z", "seconds": int(hours * 3600)}
    on_demand = dict(spot, attempt=2, market="on-demand", instanceId="i-02")

    def status_of(run_id, records):
        for doc in records:
            body = json.dumps(dict(doc, runId=run_id)).encode()
            c.s3.put_object(Bucket=bucket, Key="dev/runs/%s/attempts/%03d.json" % (run_id, doc["attempt"]), Body=body)
        c.s3.put_object(Bucket=bucket, Key="dev/runs/%s/status.json" % run_id,
                        Body=json.dumps(dict(records[-1], runId=run_id)).encode())
        return subprocess.run([command(), "status", run_id, "--env", "dev"], env=server, capture_output=True,
                              text=True, timeout=120)

    priced = status_of("cost-run-1", [spot])
    assert priced.returncode == 0, priced.stderr
    assert "estimated cost: $10.00 (estimate: spot price history and AWS Price List)\n" in priced.stdout
    unknown = status_of("cost-run-2", [spot, on_demand])
    assert unknown.returncode == 0, unknown.stderr
    line = [x for x in unknown.stdout.split("\n") if x.startswith("estimated cost:")]
    assert len(line) == 1 and line[0].startswith("estimated cost: unknown (attempt 2: pricing:GetProducts failed: "), line
    assert len(line[0]) < 300, line
