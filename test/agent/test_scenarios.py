"""The run agent's scenarios (docs/RUNS.md), each the agent as a real process against moto (S3) and
amazon-ec2-metadata-mock (IMDSv2). Intervals are short spec fields; pytest-xdist runs the scenarios side by side."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid

import http.server
import threading

import pytest
from conftest import (AGENT, AGENT_PYTHON, ENV_NAME, ROOT, FakeImds, FlakyProxy, S3Proxy, expected_stdout, find_python, free_port,
                      kill_group_of, toy)


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

    2. A spot notice mid-run: the command gets SIGTERM, the checkpoint it saves in its handler is in S3,
    `interrupted`. 3. The next attempt restores it and continues from its step: across both attempts no step runs
    twice after the last checkpoint and none is skipped.

    EC2 does not charge for a Spot Instance it interrupts in its first hour, and does charge for one you stop or
    terminate yourself (EC2 User Guide, "Billing for interrupted Spot Instances",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/billing-for-interrupted-spot-instances.html): after the drain
    the agent does not power off; it waits for EC2, whose reclaim shuts the OS down (here: SIGTERM to the agent)."""
    run = make_run()
    t0 = time.time()
    aemm = run.aemm(run_id=run.run_id, attempt=1, spot_delay=3, notice_time=t0 + 60)
    # Checkpoints every 7 steps, so the handler's save (not a periodic one) is what the next attempt needs.
    run.put_spec(toy(400, every=7, pause=0.05), checkpointIntervalSeconds=3)
    agent = run.start_agent(run.env(aemm))
    deadline = time.time() + 60
    while time.time() < deadline and "left for EC2 to reclaim" not in run.output(agent):
        time.sleep(0.5)
    time.sleep(3)
    status = run.status()
    assert status["state"] == "interrupted" and status["reason"].startswith("spot interruption notice"), status
    assert status["exitCode"] == 143  # the toy exits 143 from its SIGTERM handler
    assert agent.poll() is None and run.poweroffs() == [], run.output(agent)  # left for EC2 to reclaim
    assert "left for EC2 to reclaim; power-off at %s" % time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + 60 + 180)) \
        in run.output(agent)
    agent.send_signal(signal.SIGTERM)  # EC2 reclaims the instance: the OS shuts down
    assert agent.wait(10) == 0 and run.poweroffs() == [], run.output(agent)
    out = run.log(1, "stdout")
    assert b"saved on SIGTERM at step" in out
    first = run.steps()
    last_step = first[-1][1]
    assert 0 < last_step < 400
    manifest = status["lastCheckpoint"]["manifestKey"]
    assert run.checkpoint_state(manifest) == last_step  # the handler's save, not an older periodic one

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
    assert len(run.poweroffs()) == 1  # attempt 2's: it succeeded


def test_after_a_spot_drain_the_agent_powers_off_180_s_after_the_notice_time_at_the_latest(make_run):
    """The bound of a spot drain's wait for EC2 (see the test above): a notice whose time is 172 s past, EC2 has not
    reclaimed the instance: the agent powers it off RECLAIM_SECONDS (180) after the notice's time, here about 8 s
    after it saw the notice, once."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id, spot_delay=2, notice_time=time.time() - 170)
    run.put_spec(toy(2000, pause=0.05))
    t = time.time()
    p = run.agent(run.env(aemm), timeout=60)
    assert p.returncode == 0 and run.status()["state"] == "interrupted", run.output(p)
    (poweroff,) = run.poweroffs()
    assert t + 8 < poweroff["t"] < t + 30, (poweroff["t"] - t, run.output(p))


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


def render_user_data(run, lifetime=3600, embed="gzip-base64", agent=True):
    """The real boot script from src/private/run-agent-user-data.ts (through ts-node's transpiler); `embed` as there
    (`raw` in the gzip-compressed user data, `gzip-base64` otherwise). It names no bucket: the loader and the agent take
    it from CHRONOS_BUCKET (Run.env) or the ChronosBucket tag. With `agent`, the run's agent is in the bucket, as the
    launcher uploads it (its loader fetches it)."""
    if agent and hasattr(run, "put_agent"):
        run.put_agent()
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
        pid_file = os.path.join(home, "agent.pid")
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


NO_SYSTEMD = "#!/bin/sh\necho 'System has not been booted with systemd as init system (PID 1).' >&2\nexit 1\n"


def python3_on_path(run, interpreter, systemd_run=NO_SYSTEMD):
    """A PATH whose `python3` is `interpreter` (as /usr/bin/python3 is 3.9 on Amazon Linux 2023) and whose
    `systemd-run` is the script `systemd_run` (by default, one that fails as on a host without systemd)."""
    bindir = os.path.join(str(run.tmp), "bin-%s-%d" % (os.path.basename(interpreter), hash(systemd_run) % 1000))
    os.makedirs(bindir, exist_ok=True)
    if not os.path.exists(os.path.join(bindir, "python3")):
        os.symlink(interpreter, os.path.join(bindir, "python3"))
    with open(os.path.join(bindir, "systemd-run"), "w") as f:
        f.write(systemd_run)
    os.chmod(os.path.join(bindir, "systemd-run"), 0o755)
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
    assert not os.path.exists(os.path.join(env["CHRONOS_HOME"], "agent.pid"))


def test_user_data_without_a_run_tag_does_nothing(make_run):
    """An instance launched from the template without a ChronosRunId tag: the script exits 0, starts nothing."""
    run = make_run()
    aemm = run.aemm()  # no tags
    script = render_user_data(run)
    env = run.env(aemm, CHRONOS_BACKSTOP_SECONDS="1", CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"),
                  PATH=python3_on_path(run, AGENT_PYTHON))
    subprocess.run(["bash", script], env=env, check=True, timeout=30)
    time.sleep(2)
    assert run.poweroffs() == []
    assert not os.path.exists(os.path.join(env["CHRONOS_HOME"], "agent.pid"))


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
    assert "export CHRONOS_BUCKET" not in text and "base64 -d" not in text and "\nCHRONOS_BOOT_EOF\n" in text
    assert "def supervise(" not in text  # the agent comes from the bucket
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
    added, and the contract's CHRONOS_* variables win over it. The prefixes are at the bucket's root, where the
    foundation, the instance role and docs/IAM.md have them (`{bucket}/runtime/scripts/...`), not under `{env}/`."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.s3.put_object(Bucket=run.bucket, Key="runtime/scripts/hello.sh", Body=b"#!/bin/sh\necho hello\n")
    run.s3.put_object(Bucket=run.bucket, Key="runtime/python-env/lib/a.txt", Body=b"a")
    run.s3.put_object(Bucket=run.bucket, Key=ENV_NAME + "/runtime/scripts/hello.sh", Body=b"#!/bin/sh\necho wrong\n")
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


def test_a_sharded_checkpoint_with_dotfiles_is_restored_whole_and_old_checkpoints_are_pruned(make_run):
    """docs/RUNS.md, "Checkpoints": dotfiles are uploaded; a DCP-shaped directory (shards, then `.metadata` last)
    counts once its `.metadata` is written; `checkpoints.keep` 1 leaves one manifest and the data it names. (The real
    DCP: test_dcp.py; a file over 5 GiB: test_large.py.)"""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(["bash", "-c", 'cd "$CHRONOS_CHECKPOINT_DIR"; echo v > .config; for s in 1 2 3; do mkdir -p step-$s; '
                  'echo a$s > step-$s/__0_0.distcp; echo b$s > step-$s/__1_0.distcp; sleep 2.5; '
                  'if [ $s -lt 3 ]; then echo m$s > step-$s/.metadata; fi; sleep 2.5; done'],
                 checkpoints={"keep": 1}, checkpointIntervalSeconds=1)
    p = run.agent(run.env(aemm))
    assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
    (manifest,) = run.manifests()
    files = {f["path"]: f["key"] for f in run.get_json(manifest)["files"]}
    assert sorted(files) == [".config", "step-1/.metadata", "step-1/__0_0.distcp", "step-1/__1_0.distcp",
                             "step-2/.metadata", "step-2/__0_0.distcp", "step-2/__1_0.distcp"]
    prefix = "%s/checkpoints/%s/data/" % (ENV_NAME, run.run_id)
    assert sorted(run.keys(prefix)) == sorted(files.values())  # pruned: only what the kept manifest names
    assert b"checkpoint directory step-3 is being written" in run.log(1, "agent")
    assert b"pruned " in run.log(1, "agent")
    run.put_spec(["bash", "-c", 'cd "$CHRONOS_CHECKPOINT_DIR"; cat .config step-2/.metadata; ls -A | tr "\\n" " "'])
    aemm2 = run.aemm(run_id=run.run_id, attempt=2)
    p = run.agent(run.env(aemm2, home="home2"))
    assert p.returncode == 0, run.output(p)
    assert run.log(2, "stdout") == b"v\nm2\n.config step-1 step-2 "


def test_a_later_boot_says_so_and_powers_off(make_run):
    """User-data scripts run once per instance; cloud-init runs /var/lib/cloud/scripts/per-boot on every boot, before
    the user data's scripts (cloud-init, "Run per-boot scripts"; config/cloud.cfg.tmpl, cloud_final_modules:
    scripts-per-boot before scripts-user). The boot script installs itself there: on a later boot (run here as
    cloud-init would, with the agent and the backstop of the first boot gone), it writes that the attempt ended,
    keeping its last checkpoint, and powers off; the first boot does neither."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(2000, every=5, pause=0.05), checkpointIntervalSeconds=1)
    home = os.path.join(str(run.tmp), "home")
    env = run.env(aemm, CHRONOS_BACKSTOP_SECONDS="600", CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"),
                  PATH=python3_on_path(run, AGENT_PYTHON))
    try:
        subprocess.run(["bash", render_user_data(run)], env=env, check=True, timeout=30)
        hook = os.path.join(env["CHRONOS_PER_BOOT_DIR"], "chronos-run-agent.sh")
        assert os.access(hook, os.X_OK)
        deadline = time.time() + 30
        while time.time() < deadline and not (run.manifests() and run.status()["lastCheckpoint"]):
            time.sleep(0.5)
        kill_by_cwd(home)  # the reboot: no agent, no backstop, no command
        kill_by_cwd(os.path.join(home, "work", "code"))
        before = run.status()
        assert before["state"] == "running" and before["lastCheckpoint"] and run.poweroffs() == []
        subprocess.run(["bash", hook], env=env, check=True, timeout=60)  # the second boot
        status = run.status()
        assert status["state"] == "interrupted" and status["reason"] == "the instance rebooted", status
        assert status["lastCheckpoint"] == before["lastCheckpoint"] and status["attempt"] == 1
        assert run.status(1) == status
        assert_one_poweroff(run)
    finally:
        kill_by_cwd(home)
        kill_by_cwd(os.path.join(home, "work", "code"))


@pytest.mark.parametrize("failure", [(503, "Service Unavailable"), (401, ""), (None, 6)])
def test_user_data_when_the_metadata_service_fails_starts_the_backstop(make_run, failure):
    """IMDS answers a 404 for an item that does not exist, and a 401 for a bad token (EC2 User Guide, "Use the Instance
    Metadata Service to access instance metadata": "If you request a metadata item that doesn't exist, you get 404
    Not Found"; "IMDSv2"). Only the 404 of tags/instance/ChronosRunId is "not a run": a tag read that keeps failing
    (503, 401, no answer within curl's 5 s: HTTP 000) is retried, then the boot script says so and starts the backstop
    alone: fail safe."""
    run = make_run()
    imds = FakeImds({"tags/instance/ChronosRunId": failure})
    console = os.path.join(str(run.tmp), "console.log")
    env = run.env(imds, CHRONOS_BACKSTOP_SECONDS="1", CHRONOS_CONSOLE=console, PATH=python3_on_path(run, AGENT_PYTHON))
    try:
        r = subprocess.run(["bash", render_user_data(run)], env=env, timeout=90)
        deadline = time.time() + 20
        while not run.poweroffs() and time.time() < deadline:
            time.sleep(0.2)
    finally:
        imds.close()
        kill_by_cwd(env["CHRONOS_HOME"])
    assert r.returncode == 1
    assert "IMDS failed (HTTP %03d): only the backstop starts" % (failure[0] or 0) in open(console).read()
    assert imds.seen.count("tags/instance/ChronosRunId") == 6
    assert_one_poweroff(run)  # the backstop's
    assert not os.path.exists(os.path.join(env["CHRONOS_HOME"], "agent.pid"))


def boot_until_powered_off(run, env, timeout=60):
    """Runs the real boot script under `env`, then waits for a power-off; returns the console's text."""
    subprocess.run(["bash", render_user_data(run)], env=env, check=True, timeout=60)
    deadline = time.time() + timeout
    while not run.poweroffs() and time.time() < deadline:
        time.sleep(0.2)
    return open(env["CHRONOS_CONSOLE"]).read()


def test_user_data_retries_a_metadata_failure_and_starts_the_run(make_run):
    """A 503 and then a 401 for the tag, then the tag: the boot script retries and the run starts and succeeds."""
    run = make_run()
    run.put_spec(toy(20, pause=0.01))
    imds = FakeImds({"tags/instance/ChronosRunId": [(503, ""), (401, ""), (200, run.run_id)]})
    home = os.path.join(str(run.tmp), "home")
    env = run.env(imds, CHRONOS_RUN_ID=run.run_id, CHRONOS_BACKSTOP_SECONDS="600",
                  CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"), PATH=python3_on_path(run, AGENT_PYTHON))
    try:
        console = boot_until_powered_off(run, env)
        assert run.status()["state"] == "succeeded", console
        assert imds.seen.count("tags/instance/ChronosRunId") == 3
        assert_one_poweroff(run)
    finally:
        imds.close()
        kill_by_cwd(home)


# A systemd-run that records its arguments and runs the command as systemd would (its -E variables, -d: the caller's
# directory), detached; it answers as systemd-run does once the unit started.
FAKE_SYSTEMD_RUN = r"""#!/usr/bin/env python3
import json, os, subprocess, sys
a = sys.argv[1:]
with open(os.environ["SYSTEMD_RUN_LOG"], "a") as f:
    f.write(json.dumps(a) + "\n")
env = {"PATH": os.environ["PATH"]}
i = 0
while not a[i].startswith("/"):
    if a[i] in ("-p", "-E"):
        if a[i] == "-E":
            k = a[i + 1].split("=", 1)[0]
            env[k] = a[i + 1].split("=", 1)[1] if "=" in a[i + 1] else os.environ[k]
        i += 2
    else:
        i += 1
# what the tests' hosts need beside the unit's environment (on EC2, their defaults)
for k in ("CHRONOS_HOME", "CHRONOS_BUCKET", "CHRONOS_BACKSTOP_SECONDS", "CHRONOS_POWEROFF_COMMAND", "POWEROFF_FILE",
          "TOY_STEPS_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_REGION",
          "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    if k in os.environ:
        env[k] = os.environ[k]
subprocess.Popen(a[i:], env=env, cwd=os.getcwd(), start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""


def test_user_data_starts_the_agent_and_the_backstop_as_systemd_units(make_run):
    """Where systemd-run works, the boot script starts the backstop and the agent as transient units (chronos-backstop,
    chronos-agent) ordered after network-online.target, KillMode=mixed, TimeoutStopSec=100 (systemd-run(1),
    systemd.kill(5), systemd.unit(5)), with the environment and the lifetime (-E) and the agent's directory (-d);
    the agent then runs the attempt. (The tests' hosts have no systemd: a stand-in records the call.)"""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(20, pause=0.01))
    home = os.path.join(str(run.tmp), "home")
    calls = os.path.join(str(run.tmp), "systemd-run.jsonl")
    env = run.env(aemm, CHRONOS_BACKSTOP_SECONDS="600", CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"),
                  PATH=python3_on_path(run, AGENT_PYTHON, FAKE_SYSTEMD_RUN), SYSTEMD_RUN_LOG=calls)
    del env["CHRONOS_ENVIRONMENT"]  # the unit gets it from -E, as the boot script exports it
    try:
        console = boot_until_powered_off(run, env)
        assert run.status()["state"] == "succeeded", console
        with open(calls) as f:
            backstop, agent = [json.loads(line) for line in f]
        properties = ["-p", "After=network-online.target", "-p", "Wants=network-online.target", "-p", "KillMode=mixed",
                      "-p", "TimeoutStopSec=100", "-p", "StandardOutput=journal+console", "-d",
                      "-E", "CHRONOS_ENVIRONMENT", "-E", "CHRONOS_MAX_RUN_LIFETIME_SECONDS"]
        assert backstop[:2] == ["-q", "--unit=chronos-backstop"] and backstop[2:17] == properties, backstop
        assert backstop[18:] == ["chronos_boot.py", "backstop", "600"]
        assert agent[:2] == ["-q", "--unit=chronos-agent"] and agent[2:17] == properties
        assert agent[18:] == ["chronos_run_agent.py", "run"] and os.path.basename(agent[17]).startswith("python")
        assert not os.path.exists(os.path.join(home, "agent.pid"))  # not the setsid path
    finally:
        kill_by_cwd(home)


def test_batch_drain_fits_ecs_30_second_stop_timeout(make_run):
    """ECS stops a container with SIGTERM and, 30 s later by default, SIGKILL (Amazon ECS API Reference,
    ContainerDefinition, stopTimeout: "Time duration (in seconds) to wait before the container is forcefully killed
    if it doesn't exit normally on its own"; the default, ECS_CONTAINER_STOP_TIMEOUT, is 30 s): a Batch timeout or
    TerminateJob. With S3 unreachable, the agent's drain still ends within 25 s of the SIGTERM."""
    job_id = str(uuid.uuid4())
    run = make_run(job_id)
    proxy = FlakyProxy(urllib.parse.urlsplit(run.moto).port)
    try:
        env = run.env(s3_endpoint="http://127.0.0.1:%d" % proxy.port, AWS_BATCH_JOB_ID=job_id, AWS_BATCH_JOB_ATTEMPT="1")
        agent = run.start_agent(env, ["batch", "--"] + toy(2000, every=10, pause=0.05))
        deadline = time.time() + 15
        while len(run.steps()) < 20 and time.time() < deadline:
            time.sleep(0.1)
        proxy.set_down(True)
        t = time.time()
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)
        took = time.time() - t
    finally:
        proxy.close()
    assert agent.returncode == 143, run.output(agent)
    assert took < 27, (took, run.output(agent))


def test_a_slow_control_read_does_not_delay_the_spot_notice(make_run):
    """AWS: check for the notice every 5 s (EC2 User Guide, "Spot Instance interruption notices"). control.json is read
    apart from that poll: here S3 holds every control.json GET for 70 s, and the notice still drains the attempt at
    once."""
    run = make_run()
    t0 = time.time()
    aemm = run.aemm(run_id=run.run_id, spot_delay=4, notice_time=t0 + 60)
    proxy = S3Proxy(run.moto, stall="control.json", stall_seconds=70)
    try:
        run.put_spec(toy(2000, pause=0.05), controlPollSeconds=1)
        agent = run.start_agent(run.env(aemm, s3_endpoint=proxy.endpoint))
        deadline = t0 + 40
        while time.time() < deadline and "left for EC2 to reclaim" not in run.output(agent):
            time.sleep(0.5)
        seen = time.time() - t0
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    finally:
        proxy.close()
    assert seen < 25, run.output(agent)
    assert run.status()["state"] == "interrupted", run.output(agent)


BIG = 30 << 20


def test_a_spot_drain_stops_the_upload_in_flight_and_the_final_checkpoint_goes_first(make_run):
    """The uplink carries 1 MiB/s; a 30 MiB checkpoint file is being uploaded when the notice comes (its time 55 s
    later): the drain stops that upload, so the file the command saves on SIGTERM is what is uploaded, and the status
    (`interrupted`, that checkpoint) is in S3 before the notice's time, and before the artifacts. Before, the upload in
    flight went on for about 28 s more, then the final one for 30 s: past the notice's time (EC2 User Guide, "Spot
    Instance interruption notices": the notice comes two minutes before). The notice is served once 1 MiB of that
    upload has reached S3, not at a fixed time: on a loaded machine, a notice at a fixed time could come before the
    command had saved or even set its SIGTERM handler (nothing to checkpoint: no lastCheckpoint), and before any upload
    was in flight. From the notice, the drain has 50 s for at most 5 s (the poll) + 30 s; the old order needs 58 s."""
    run = make_run()
    script = os.path.join(str(run.tmp), "big.py")
    with open(script, "w") as f:
        f.write("import os, signal, sys, time\n"
                "d = os.environ['CHRONOS_CHECKPOINT_DIR']\n"
                "def save(tag):\n"
                "    with open(os.path.join(d, 'big.bin.tmp'), 'wb') as f:\n"
                "        f.write(tag.ljust(16).encode() + b'x' * (%d - 16))\n"
                "    os.replace(os.path.join(d, 'big.bin.tmp'), os.path.join(d, 'big.bin'))\n"
                "signal.signal(signal.SIGTERM, lambda *_: (save('final'), sys.exit(143)))\n"
                "save('first')\n"
                "with open(os.path.join(os.environ['CHRONOS_ARTIFACT_DIR'], 'model.bin'), 'wb') as f:\n"
                "    f.write(b'm' * (3 << 20))\n"
                "while True:\n"
                "    time.sleep(0.1)\n" % BIG)
    proxy = S3Proxy(run.moto, rate=1 << 20)
    imds = FakeImds({"tags/instance/ChronosRunId": (200, run.run_id), "tags/instance/ChronosAttempt": (200, "1"),
                     "instance-life-cycle": (200, "spot")})
    interrupted_at, artifact_then, at = None, None, None
    try:
        run.put_spec([sys.executable, script], checkpointIntervalSeconds=1, stopGraceSeconds=5)
        agent = run.start_agent(run.env(imds, s3_endpoint=proxy.endpoint))
        first = "/%sdata/" % "%s/checkpoints/%s/" % (ENV_NAME, run.run_id)
        deadline = time.time() + 90
        while not any(first in p and n >= 1 << 20 for p, n in list(proxy.received.items())):
            assert time.time() < deadline and agent.poll() is None, run.output(agent)
            time.sleep(0.05)
        at = time.time() + 55
        imds.answers["spot/instance-action"] = [(200, json.dumps({"action": "terminate", "time": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))}))]
        while time.time() < at + 40 and interrupted_at is None:
            if run.keys("%s/runs/%s/status.json" % (ENV_NAME, run.run_id)) and run.status()["state"] == "interrupted":
                interrupted_at = time.time()
                artifact_then = run.keys("%s/artifacts/%s/" % (ENV_NAME, run.run_id))
            time.sleep(0.5)
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)
    finally:
        proxy.close()
        imds.close()
    assert interrupted_at and interrupted_at < at, (interrupted_at and interrupted_at - at, run.output(agent))
    assert artifact_then == []  # the status before the artifacts
    status = run.status()
    m = run.get_json(status["lastCheckpoint"]["manifestKey"])
    (big,) = [f for f in m["files"] if f["path"] == "big.bin"]
    assert run.s3.get_object(Bucket=run.bucket, Key=big["key"], Range="bytes=0-15")["Body"].read().strip() == b"final"
    assert b"upload stopped" in run.log(1, "agent")


def boot_and_wait_for_poweroff(run, script, env, timeout=60):
    """Runs a boot script to its end (its return code), then waits for the first power-off."""
    r = subprocess.run(["bash", script], env=env, timeout=timeout)
    deadline = time.time() + timeout
    while not run.poweroffs() and time.time() < deadline:
        time.sleep(0.2)
    return r.returncode


def test_user_data_fetches_the_runs_agent_with_the_instance_roles_credentials(make_run):
    """The agent is not in the user data: the loader fetches the run's own agent (the launcher's upload, here marked
    so that it differs from any other copy) from the bucket, signed with the instance role's credentials and the
    region from IMDSv2 (no keys, no region in the environment), and the boot script starts that agent."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(20, pause=0.01))
    marked = open(AGENT, "rb").read() + b"# uploaded by the launcher of this run\n"
    script = render_user_data(run, agent=False)
    run.put_agent(marked)
    home = os.path.join(str(run.tmp), "home")
    env = run.env(aemm, CHRONOS_BACKSTOP_SECONDS="600", CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"),
                  PATH=python3_on_path(run, AGENT_PYTHON))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        del env[k]
    try:
        assert boot_and_wait_for_poweroff(run, script, env) == 0
        console = open(env["CHRONOS_CONSOLE"]).read()
        assert run.status()["state"] == "succeeded", (run.status(), console)
        with open(os.path.join(home, "chronos_run_agent.py"), "rb") as f:
            assert f.read() == marked
        assert not os.path.exists(os.path.join(home, "chronos_run_agent.py.tmp"))
        assert_one_poweroff(run)
    finally:
        kill_by_cwd(home)


@pytest.mark.parametrize("agent, reason", [
    (None, "cannot read the run agent s3 object dev/runs/%s/agent/chronos_run_agent.py: HTTP 404"),
    (b"this is not python\n", "the run agent s3 object dev/runs/%s/agent/chronos_run_agent.py does not run: "),
])
def test_user_data_without_a_runnable_agent_fails_the_attempt_and_powers_off(make_run, agent, reason):
    """No agent under the run's key (a 404 is not retried), or one that does not run: the loader writes the attempt's
    status `failed`, saying why, over the launcher's `pending` (keeping its fields), the boot script powers off; the
    backstop had started before the fetch."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(20, pause=0.01))
    run.put_json("dev/runs/%s/status.json" % run.run_id, {"schemaVersion": 1, "runId": run.run_id, "state": "pending",
                                                         "attempt": 1, "startedAt": "2026-12-01T00:00:00.000Z"})
    script = render_user_data(run, agent=False)
    if agent is not None:
        run.put_agent(agent)
    home = os.path.join(str(run.tmp), "home")
    env = run.env(aemm, CHRONOS_BACKSTOP_SECONDS="600", CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"),
                  PATH=python3_on_path(run, AGENT_PYTHON))
    try:
        assert boot_and_wait_for_poweroff(run, script, env) == 1
        console = open(env["CHRONOS_CONSOLE"]).read()
        status = run.status()
        assert status["state"] == "failed" and status["reason"].startswith(reason % run.run_id), (status, console)
        assert status["attempt"] == 1 and status["startedAt"] == "2026-12-01T00:00:00.000Z"
        assert status["instanceId"] and status["endedAt"], status
        assert "retrying" not in console
        assert "run %s: no run agent; powering off" % run.run_id in console
        assert_one_poweroff(run)
        assert os.path.exists(os.path.join(home, "backstop.pid"))  # started before the fetch
        assert not os.path.exists(os.path.join(home, "agent.pid"))
        assert not os.path.exists(os.path.join(home, "chronos_run_agent.py"))
        assert run.steps() == []
    finally:
        kill_by_cwd(home)


def test_user_data_when_s3_is_unreachable_retries_the_fetch_then_powers_off(make_run):
    """S3 refuses every connection: the loader retries the fetch for CHRONOS_AGENT_FETCH_SECONDS (shortened here),
    says so, cannot write the status either, and the boot script powers off."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    home = os.path.join(str(run.tmp), "home")
    env = run.env(aemm, s3_endpoint="http://127.0.0.1:%d" % free_port(), CHRONOS_AGENT_FETCH_SECONDS="3",
                  CHRONOS_BACKSTOP_SECONDS="600", CHRONOS_CONSOLE=os.path.join(str(run.tmp), "console.log"),
                  PATH=python3_on_path(run, AGENT_PYTHON))
    try:
        assert boot_and_wait_for_poweroff(run, render_user_data(run, agent=False), env) == 1
        console = open(env["CHRONOS_CONSOLE"]).read()
        assert "retrying" in console and re.search(r"chronos_run_agent\.py: .* \(([2-9]|\d\d+) tries\)", console), console
        assert "the status could not be written" in console
        assert_one_poweroff(run)
        assert not os.path.exists(os.path.join(home, "agent.pid"))
    finally:
        kill_by_cwd(home)
