"""The run agent's scenarios (docs/RUNS.md), each the agent as a real process against moto (S3) and
amazon-ec2-metadata-mock (IMDSv2). Intervals are short spec fields; pytest-xdist runs the scenarios side by side."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid

import http.server
import threading

import pytest
from conftest import AGENT_PYTHON, ENV_NAME, ROOT, FlakyProxy, expected_stdout, find_python, kill_group_of, toy


def assert_one_poweroff(run):
    assert len(run.poweroffs()) == 1, run.poweroffs()


def test_s3_unreachable_for_30_seconds(make_run):
    """7. S3 unreachable for 30 s (a proxy drops every connection): the command keeps running, uploads are retried,
    nothing is lost once S3 answers."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    proxy = FlakyProxy(urllib.parse.urlsplit(run.moto).port)
    try:
        run.put_spec(toy(720, every=20, pause=0.05))  # about 40 s
        agent = run.start_agent(run.env(aemm, s3_endpoint="http://127.0.0.1:%d" % proxy.port))
        time.sleep(4)
        proxy.set_down(True)
        down_at = len(run.steps())
        time.sleep(30)
        during = len(run.steps()) - down_at
        proxy.set_down(False)
        agent.wait(60)
    finally:
        proxy.close()
    assert during > 300, "the command did not keep running while S3 was down (%d steps)" % during
    status = run.status()
    assert status["state"] == "succeeded", run.output(agent)
    assert run.log(1, "stdout") == expected_stdout(1, 720)
    assert b"S3 unavailable, retrying" in run.log(1, "agent")
    assert run.checkpoint_state(run.manifests()[-1]) == 720
    assert_one_poweroff(run)


def test_clean_run_succeeds_with_complete_logs_and_checkpoints(make_run, tmp_path):
    """1. A clean run: `succeeded`, the concatenated chunks are what the script printed, checkpoints in S3, the code
    fetched from its manifest, the artifacts uploaded, one power-off."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id, attempt=1, lifecycle="on-demand")
    run.put_spec([sys.executable, "toy_train.py", "60", "10", "0.05"], code=True)
    p = run.agent(run.env(aemm))
    assert p.returncode == 0, run.output(p)
    status = run.status()
    assert status["state"] == "succeeded" and status["exitCode"] == 0, status
    assert status["attempt"] == 1 and status["lifecycle"] == "on-demand" and status["instanceId"].startswith("i-")
    assert run.status(1) == status
    assert run.log(1, "stdout") == expected_stdout(1, 60)
    assert run.log(1, "stderr") == b"".join(b"stderr line at step %d\n" % i for i in range(5, 61, 5))
    assert b"succeeded" in run.log(1, "agent")
    manifests = run.manifests()
    assert manifests and status["lastCheckpoint"]["manifestKey"] == manifests[-1]
    assert run.checkpoint_state(manifests[-1]) == 60
    assert run.get("%s/artifacts/%s/result.txt" % (ENV_NAME, run.run_id)) == b"steps=60\n"
    assert_one_poweroff(run)


def test_spot_notice_then_resume(make_run):
    """AWS behaviour AEMM serves and the agent relies on: `spot/instance-action` is 404 until the notice, then
    {"action": "terminate", "time": ...} two minutes ahead, to be polled every 5 s (EC2 User Guide, "Spot Instance
    interruption notices", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html).

    2. A spot notice mid-run: the command gets SIGTERM, the checkpoint it saves in its handler is in S3 before the
    power-off, `interrupted`. 3. The next attempt restores it and continues from its step: across both attempts no
    step runs twice after the last checkpoint and none is skipped."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id, attempt=1, spot_delay=3)
    # Checkpoints every 7 steps, so the handler's save (not a periodic one) is what the next attempt needs.
    run.put_spec(toy(400, every=7, pause=0.05), checkpointIntervalSeconds=3)
    env = run.env(aemm, POWEROFF_S3_PREFIX="%s/checkpoints/%s/" % (ENV_NAME, run.run_id),
                  POWEROFF_S3_ENDPOINT=run.moto)
    p = run.agent(env)
    assert p.returncode == 0, run.output(p)
    status = run.status()
    assert status["state"] == "interrupted" and status["reason"].startswith("spot interruption notice"), status
    assert status["exitCode"] == 143  # the toy exits 143 from its SIGTERM handler
    out = run.log(1, "stdout")
    assert b"saved on SIGTERM at step" in out
    first = run.steps()
    last_step = first[-1][1]
    assert 0 < last_step < 400
    manifest = status["lastCheckpoint"]["manifestKey"]
    assert run.checkpoint_state(manifest) == last_step  # the handler's save, not an older periodic one
    (poweroff,) = run.poweroffs()
    assert manifest in poweroff["keys"] and run.get_json(manifest)["files"][0]["key"] in poweroff["keys"]

    aemm2 = run.aemm(run_id=run.run_id, attempt=2, lifecycle="on-demand")
    p = run.agent(run.env(aemm2, home="home2"))
    assert p.returncode == 0, run.output(p)
    assert run.status()["state"] == "succeeded" and run.status(2)["attempt"] == 2
    assert run.status(1)["state"] == "interrupted"
    steps = run.steps()
    second = [s for a, s in steps if a == 2]
    assert second[0] == last_step + 1  # resumed from the handler's checkpoint: nothing lost, nothing repeated
    assert [s for _, s in steps] == list(range(1, 401))
    assert run.log(2, "stdout").startswith(b"resumed=1 from step %d, attempt 2\n" % last_step)
    assert len(run.poweroffs()) == 2


def test_lifetime_reached_times_out(make_run):
    """4. The lifetime (the smaller of the spec's and the foundation's): the drain, then `timed-out`."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(1000, pause=0.05), maxRunLifetimeSeconds=30)
    t = time.time()
    p = run.agent(run.env(aemm, CHRONOS_MAX_RUN_LIFETIME_SECONDS="3"))
    assert p.returncode == 0, run.output(p)
    assert time.time() - t < 20
    status = run.status()
    assert status["state"] == "timed-out" and status["reason"] == "run lifetime of 3 s reached", status
    assert b"saved on SIGTERM" in run.log(1, "stdout")
    assert run.checkpoint_state(status["lastCheckpoint"]["manifestKey"]) == run.steps()[-1][1]
    assert_one_poweroff(run)


def render_user_data(run, lifetime=3600, embed="gzip-base64"):
    """The real boot script from src/private/run-agent-user-data.ts (through ts-node's transpiler); `embed` as there
    (`raw` in the gzip-compressed user data, `gzip-base64` otherwise). It names no bucket: the agent takes it from
    CHRONOS_BUCKET (Run.env) or the ChronosBucket tag."""
    code = ("const { runAgentUserData } = require('./src/private/run-agent-user-data');"
            "process.stdout.write(runAgentUserData({ environmentName: 'dev',"
            " maxRunLifetimeSeconds: Number(process.argv[2]), embed: process.argv[3] }));")
    out = subprocess.run(["node", "-r", "ts-node/register/transpile-only", "-e", code, run.bucket, str(lifetime), embed],
                         cwd=ROOT, check=True, capture_output=True, env=dict(os.environ, TS_NODE_PROJECT="tsconfig.dev.json"))
    path = os.path.join(str(run.tmp), "user-data-%s-%s.sh" % (run.bucket, embed))
    with open(path, "wb") as f:
        f.write(out.stdout)
    return path


def test_backstop_powers_off_when_the_agent_is_killed(make_run):
    """5. The real user-data script starts the backstop and the agent detached; the agent is SIGKILLed: the backstop
    still powers the instance off (its deadline shortened for the test)."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(2000, pause=0.05), env={"TOY_PID_FILE": os.path.join(str(run.tmp), "toy.pid")})
    script = render_user_data(run)
    home = os.path.join(str(run.tmp), "home")
    env = run.env(aemm, CHRONOS_BACKSTOP_SECONDS="6", CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"),
                  PATH=python3_on_path(run, AGENT_PYTHON))
    try:
        t = time.time()
        subprocess.run(["bash", script], env=env, check=True, timeout=30)
        pid_file = os.path.join(home, "run-agent.pid")
        deadline = time.time() + 15
        while not run.steps() and time.time() < deadline:
            time.sleep(0.2)
        assert run.steps(), open(env["CHRONOS_CONSOLE"]).read()
        os.kill(int(open(pid_file).read()), signal.SIGKILL)
        while not run.poweroffs() and time.time() < t + 20:
            time.sleep(0.2)
        assert len(run.poweroffs()) == 1
        assert run.poweroffs()[0]["t"] - t >= 5.5  # the backstop's deadline, not the agent
        time.sleep(1)
        assert len(run.poweroffs()) == 1
        assert run.status()["state"] == "running"  # the agent never wrote an end
    finally:
        kill_group_of(os.path.join(str(run.tmp), "toy.pid"))


def python3_on_path(run, interpreter):
    """A PATH whose `python3` is `interpreter` (as /usr/bin/python3 is 3.9 on Amazon Linux 2023)."""
    bindir = os.path.join(str(run.tmp), "bin-" + os.path.basename(interpreter))
    os.makedirs(bindir, exist_ok=True)
    if not os.path.exists(os.path.join(bindir, "python3")):
        os.symlink(interpreter, os.path.join(bindir, "python3"))
    return bindir + os.pathsep + os.environ["PATH"]


def test_user_data_with_python_older_than_3_9_powers_off(make_run):
    """The boot script of a run on an AMI whose python3 is 3.8: it says so on the console and powers off."""
    python38 = find_python("3.8")
    if not python38:
        pytest.skip("no Python 3.8 on this machine")
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    console = os.path.join(str(run.tmp), "console.log")
    env = run.env(aemm, CHRONOS_CONSOLE=console, PATH=python3_on_path(run, python38))
    r = subprocess.run(["bash", render_user_data(run)], env=env, timeout=30)
    assert r.returncode == 1
    assert "cannot run the agent (it needs python3 3.9 or later, found: Python 3.8" in open(console).read()
    assert len(run.poweroffs()) == 1
    assert not os.path.exists(os.path.join(env["CHRONOS_HOME"], "run-agent.pid"))


def test_user_data_without_a_run_tag_does_nothing(make_run):
    """An instance launched from the template without a ChronosRunId tag: the script exits 0, starts nothing."""
    run = make_run()
    aemm = run.aemm()  # no tags
    script = render_user_data(run)
    env = run.env(aemm, CHRONOS_BACKSTOP_SECONDS="1", CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"))
    subprocess.run(["bash", script], env=env, check=True, timeout=30)
    time.sleep(2)
    assert run.poweroffs() == []
    assert not os.path.exists(os.path.join(env["CHRONOS_HOME"], "run-agent.pid"))


def kill_by_cwd(home):
    """SIGKILLs the processes running in `home` (the detached agent and backstop of one boot script)."""
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.readlink("/proc/%s/cwd" % pid) == home:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def test_raw_user_data_reads_the_bucket_from_the_chronos_bucket_tag(make_run):
    """The boot script as the gzip-compressed user data carries it (the agent raw in a quoted heredoc), on an instance
    tagged as the launcher tags it: the bucket comes from the ChronosBucket tag, CHRONOS_BUCKET is set nowhere. AEMM
    serves two tags only: here ChronosRunId and ChronosBucket, and the attempt comes from CHRONOS_ATTEMPT, which the
    boot script passes on to the agent (it takes precedence over the ChronosAttempt tag)."""
    run = make_run()
    aemm = run.aemm(tags={"ChronosRunId": run.run_id, "ChronosBucket": run.bucket}, lifecycle="on-demand")
    run.put_spec(toy(20, pause=0.01))
    script = render_user_data(run, embed="raw")
    text = open(script).read()
    assert "export CHRONOS_BUCKET" not in text and "base64 -d" not in text and "\nCHRONOS_RUN_AGENT_EOF\n" in text
    home = os.path.join(str(run.tmp), "home")
    env = run.env(aemm, CHRONOS_ATTEMPT="2", CHRONOS_BACKSTOP_SECONDS="600",
                  CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"), PATH=python3_on_path(run, AGENT_PYTHON))
    del env["CHRONOS_BUCKET"]
    try:
        subprocess.run(["bash", script], env=env, check=True, timeout=30)
        deadline = time.time() + 60
        while not run.poweroffs() and time.time() < deadline:
            time.sleep(0.2)
        console = open(env["CHRONOS_CONSOLE"]).read()
        assert_one_poweroff(run)
        status = run.status()
        assert status["state"] == "succeeded" and status["attempt"] == 2, (status, console)
        assert run.log(2, "stdout") == expected_stdout(1, 20, attempt=2)
        with open(os.path.join(home, "chronos_run_agent.py")) as f:
            assert "def sigv4(" in f.read()
    finally:
        kill_by_cwd(home)


def test_a_run_without_a_bucket_says_so_and_powers_off(make_run):
    """A run instance (ChronosRunId) without the ChronosBucket tag and without CHRONOS_BUCKET: the status cannot be
    written anywhere, so the agent says why on its output (the console) and powers off; nothing is written."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)  # ChronosRunId and ChronosAttempt, no ChronosBucket
    env = run.env(aemm)
    del env["CHRONOS_BUCKET"]
    p = run.agent(env, timeout=30)
    out = run.output(p)
    assert p.returncode != 0, out
    assert "no ChronosBucket instance tag and no CHRONOS_BUCKET: the run's status cannot be written" in out
    assert_one_poweroff(run)
    assert run.keys("") == []


def test_cut_upload_restores_the_previous_whole_checkpoint(make_run):
    """6. A later checkpoint whose upload was cut (its manifest names data files that are missing; a partial data
    upload with no manifest): the next attempt restores the previous whole checkpoint, and writes its own
    checkpoints under a sequence above everything left behind."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(40, every=10, pause=0.02))
    p = run.agent(run.env(aemm))
    assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
    whole = run.manifests()[-1]
    seq = run.get_json(whole)["sequence"]
    prefix = "%s/checkpoints/%s/" % (ENV_NAME, run.run_id)
    # seq+1: a manifest whose data file is missing; seq+2: data uploaded, manifest never written.
    run.put_json("%smanifests/%010d.json" % (prefix, seq + 1), {
        "schemaVersion": 1, "sequence": seq + 1, "createdAt": "2026-12-01T00:00:00Z",
        "files": [{"path": "state.json", "key": "%sdata/%010d/state.json" % (prefix, seq + 1), "size": 12}]})
    run.s3.put_object(Bucket=run.bucket, Key="%sdata/%010d/state.json" % (prefix, seq + 2), Body=b'{"step": 9')
    # Attempt 2 runs further (the spec now asks for 60 steps).
    run.put_spec(toy(60, every=10, pause=0.02))
    aemm2 = run.aemm(run_id=run.run_id, attempt=2)
    p = run.agent(run.env(aemm2, home="home2"))
    assert p.returncode == 0, run.output(p)
    assert b"skipped: 1 of its files are missing" in run.log(2, "agent")
    assert run.log(2, "stdout").startswith(b"resumed=1 from step 40, attempt 2\n")
    assert [s for a, s in run.steps() if a == 2] == list(range(41, 61))
    assert run.get_json(run.manifests()[-1])["sequence"] >= seq + 3


def test_failing_command_fails_with_its_exit_code(make_run):
    """8. The command fails: `failed`, its exit code, complete logs."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(12, pause=0.01, exit_code=3))
    p = run.agent(run.env(aemm))
    assert p.returncode == 0, run.output(p)
    status = run.status()
    assert status["state"] == "failed" and status["exitCode"] == 3, status
    assert status["reason"] == "the command exited with code 3"
    assert run.log(1, "stdout") == expected_stdout(1, 12)
    assert_one_poweroff(run)


def test_bad_spec_fails_and_powers_off(make_run):
    """A spec of a higher schemaVersion: `failed` with the reason, then the power-off."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(3), schemaVersion=2)
    p = run.agent(run.env(aemm))
    assert p.returncode == 0, run.output(p)
    status = run.status()
    assert status["state"] == "failed"
    assert status["reason"] == "spec.json has schemaVersion 2; this agent knows version 1"
    assert_one_poweroff(run)


def test_control_stop(make_run):
    """control.json `stop`: the drain, then `stopped`."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(2000, pause=0.05))
    agent = run.start_agent(run.env(aemm))
    time.sleep(3)
    run.put_json("%s/runs/%s/control.json" % (ENV_NAME, run.run_id),
                 {"schemaVersion": 1, "action": "stop", "requestedAt": "2026-12-01T00:00:00Z"})
    agent.wait(30)
    status = run.status()
    assert status["state"] == "stopped" and b"saved on SIGTERM" in run.log(1, "stdout"), status
    assert_one_poweroff(run)


class ContainerCredentials(http.server.BaseHTTPRequestHandler):
    """The ECS/Batch container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI with an authorization
    token, as the SDKs read it): records the Authorization headers it was sent."""
    seen = []

    def do_GET(self):
        ContainerCredentials.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"AccessKeyId": "ASIATEST", "SecretAccessKey": "secret", "Token": "session-token",
                           "Expiration": "2099-01-01T00:00:00Z"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_batch_wrapper_resumes_attempt_2(make_run):
    """The job environment variables AWS_BATCH_JOB_ID and AWS_BATCH_JOB_ATTEMPT, the first attempt being 1 (AWS Batch
    User Guide, "Job environment variables", https://docs.aws.amazon.com/batch/latest/userguide/job_env_vars.html),
    and the container credentials endpoint instead of keys in the environment.

    9. AWS Batch: the run ID is AWS_BATCH_JOB_ID; Batch stops attempt 1 (SIGTERM to the agent, the container's
    main process); AWS_BATCH_JOB_ATTEMPT=2 resumes from its checkpoint; the agent exits with the command's code and
    never powers off."""
    job_id = str(uuid.uuid4())
    run = make_run(job_id)
    command = ["batch", "--"] + toy(300, every=1000, pause=0.05)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ContainerCredentials)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    creds = dict(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/v2/credentials" % server.server_port,
                 AWS_CONTAINER_AUTHORIZATION_TOKEN="batch-token")
    env = run.env(AWS_BATCH_JOB_ID=job_id, AWS_BATCH_JOB_ATTEMPT="1", **creds)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        del env[k]
    agent = run.start_agent(env, command)
    deadline = time.time() + 15
    while len(run.steps()) < 20 and time.time() < deadline:
        time.sleep(0.1)
    agent.send_signal(signal.SIGTERM)
    agent.wait(30)
    assert agent.returncode == 143, run.output(agent)
    status = run.status()
    assert status["state"] == "interrupted" and status["instanceId"] == job_id, status
    last = run.steps()[-1][1]
    assert run.checkpoint_state(status["lastCheckpoint"]["manifestKey"]) == last

    p = run.agent(run.env(AWS_BATCH_JOB_ID=job_id, AWS_BATCH_JOB_ATTEMPT="2", home="home2"), command)
    server.shutdown()
    assert p.returncode == 0, run.output(p)
    assert ContainerCredentials.seen and set(ContainerCredentials.seen) == {"batch-token"}
    assert run.status()["state"] == "succeeded" and run.status()["attempt"] == 2
    assert [s for _, s in run.steps()] == list(range(1, 301))
    assert [s for a, s in run.steps() if a == 2][0] == last + 1
    assert run.poweroffs() == []


def test_no_run_tag_exits_at_once(make_run):
    """`run` on an instance without a ChronosRunId tag: exit 0, nothing written, no power-off."""
    run = make_run()
    aemm = run.aemm()
    p = run.agent(run.env(aemm), timeout=20)
    assert p.returncode == 0 and b"not a run" in open(p.out_path, "rb").read()
    assert run.keys("") == [] and run.poweroffs() == []


def test_code_blob_that_does_not_match_fails(make_run):
    """A code blob whose bytes do not match its SHA-256: `failed` with the contract's reason."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    spec = run.put_spec(toy(3), code=True)
    manifest = run.get_json(spec["code"]["manifestKey"])
    sha = manifest["files"][0]["sha256"]
    run.s3.put_object(Bucket=run.bucket, Key="%s/code/blobs/%s" % (ENV_NAME, sha), Body=b"print('tampered')\n")
    p = run.agent(run.env(aemm))
    assert p.returncode == 0
    assert run.status()["state"] == "failed"
    assert run.status()["reason"] == "code blob %s (toy_train.py) does not match its SHA-256" % sha
    assert_one_poweroff(run)


def test_instance_role_credentials_and_region_from_imds(make_run):
    """No keys and no region in the environment: the instance role's credentials (iam/security-credentials/{role}) and
    placement/region, through IMDSv2 (EC2 User Guide, "Retrieve security credentials from instance metadata",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html). AEMM's role
    credentials expired in 2020: the agent refreshes them at most once a minute. (moto does not check signatures:
    the SigV4 unit tests check them against AWS's examples.)"""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(20, pause=0.01))
    env = run.env(aemm)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        del env[k]
    p = run.agent(env)
    assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
    assert run.status()["availabilityZone"] == "us-east-1a"


def test_rebalance_recommendation_takes_an_early_checkpoint(make_run):
    """`events/recommendations/rebalance` ({"noticeTime": ...}, 404 before; EC2 User Guide, "EC2 instance rebalance
    recommendations", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html): a
    checkpoint before the interval is due."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id, rebalance_delay=4)
    run.put_spec(toy(160, every=5, pause=0.05), checkpointIntervalSeconds=3600)
    p = run.agent(run.env(aemm))
    assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
    log = run.log(1, "agent")
    assert b"rebalance recommendation: an early checkpoint" in log
    assert b"(rebalance recommendation): 1 files, 1 uploaded" in log
    assert len(run.manifests()) == 2  # the early one and the final one; the interval never came


def test_unreachable_bucket_fails_and_still_powers_off(make_run):
    """S3 answers, but not for this bucket (no such bucket: no spec, no status can be written): the attempt fails, the
    reason is on the console, and the instance still powers off, once."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    p = run.agent(run.env(aemm, CHRONOS_BUCKET="no-such-bucket-" + run.bucket[-8:]))
    assert p.returncode == 0
    out = run.output(p)
    assert "the attempt failed: no run spec at s3://no-such-bucket-" in out and "final status not written" in out
    assert_one_poweroff(run)


def test_agent_runs_under_python_3_9():
    """The scenarios run the agent under Python 3.9 (Amazon Linux 2023's /usr/bin/python3: Amazon Linux 2023 User
    Guide, "Python in AL2023"), which scripts/test-agent.sh finds or installs with uv (scripts/agent/python39.sh). In
    CI (CI=true) another Python is a failure; elsewhere a skip that says which Python they ran under."""
    r = subprocess.run([AGENT_PYTHON, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    if r.stdout.strip() != "(3, 9)":
        message = "no Python 3.9 here: the scenarios ran the agent under %s" % r.stdout.strip()
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true requires 3.9: scripts/agent/python39.sh)")
        pytest.skip(message)


def test_runtime_prefixes_and_the_command_environment(make_run):
    """The spec's `runtime` prefixes are fetched (scripts made executable, CHRONOS_RUNTIME_DIR), the spec's `env` is
    added, and the contract's CHRONOS_* variables win over it."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.s3.put_object(Bucket=run.bucket, Key=ENV_NAME + "/runtime/scripts/hello.sh", Body=b"#!/bin/sh\necho hello\n")
    run.s3.put_object(Bucket=run.bucket, Key=ENV_NAME + "/runtime/python-env/lib/a.txt", Body=b"a")
    script = ('"$CHRONOS_RUNTIME_DIR/scripts/hello.sh" && cat "$CHRONOS_RUNTIME_DIR/python-env/lib/a.txt" && '
              'echo " $MY_VAR $CHRONOS_RESUMED $CHRONOS_ATTEMPT $CHRONOS_RUN_ID" && '
              'test "$CHRONOS_CHECKPOINT_DIR" != /elsewhere && pwd')
    run.put_spec(["bash", "-c", script], runtime=["runtime/scripts/", "runtime/python-env/"],
                 env={"MY_VAR": "from-spec", "CHRONOS_CHECKPOINT_DIR": "/elsewhere"})
    p = run.agent(run.env(aemm))
    assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
    home = os.path.join(str(run.tmp), "home")
    assert run.log(1, "stdout") == ("hello\na from-spec 0 1 %s\n%s\n" % (run.run_id, os.path.join(home, "work", "code"))).encode()


def test_a_process_that_left_the_group_does_not_hold_the_agent(make_run):
    """The command exits but leaves a process of another session holding its stdout open (out of reach of the
    group's SIGKILL): the agent ends the attempt anyway, a few seconds later."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    pid_file = os.path.join(str(run.tmp), "stray.pid")
    run.put_spec(["bash", "-c", "setsid sh -c 'echo $$ > %s; exec sleep 60' & echo parent done" % pid_file])
    try:
        t = time.time()
        p = run.agent(run.env(aemm), timeout=40)
        assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
        assert time.time() - t < 20
        assert run.log(1, "stdout") == b"parent done\n"
    finally:
        kill_group_of(pid_file)
