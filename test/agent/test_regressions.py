"""Regressions of issue 32: each test here failed against a bug planted in the code it guards (the bug is named in
its docstring), in the agent as a real process against moto (S3) and amazon-ec2-metadata-mock (IMDSv2)."""
import json
import time
import urllib.parse

from conftest import ENV_NAME, FlakyProxy, toy


def test_the_spec_lifetime_wins_when_it_is_the_smaller(make_run):
    """docs/RUNS.md: the lifetime is the smaller of the spec's `maxRunLifetimeSeconds` (the user's
    --max-run-lifetime) and the foundation's (CHRONOS_MAX_RUN_LIFETIME_SECONDS, which the user data always sets).
    Bug caught: an agent that ignores the spec's value whenever the user data sets one."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(1000, pause=0.05), maxRunLifetimeSeconds=3)
    t = time.time()
    p = run.agent(run.env(aemm, CHRONOS_MAX_RUN_LIFETIME_SECONDS="60"))
    assert p.returncode == 0, run.output(p)
    status = run.status()
    assert status["state"] == "timed-out", "the spec's 3 s lifetime was not enforced: %r" % (status,)
    assert status["reason"] == "run lifetime of 3 s reached", status
    assert time.time() - t < 30


def test_a_torn_checkpoint_file_is_not_restored(make_run):
    """S3 User Guide, "Amazon S3 data consistency model": updates to a single key are atomic, so a short data file
    is one that was uploaded short (the file was torn as it was read); the manifest records each file's size
    (docs/RUNS.md, "Checkpoints"). A manifest whose data file is there but shorter than the manifest says is not whole: the
    previous whole checkpoint is restored. Bug caught: a restore that checks that each file exists, not its size."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    prefix = "%s/checkpoints/%s/" % (ENV_NAME, run.run_id)
    whole = b'{"step": 10}'
    run.s3.put_object(Bucket=run.bucket, Key="%sdata/%010d/state.json" % (prefix, 1), Body=whole)
    run.put_json("%smanifests/%010d.json" % (prefix, 1), {
        "schemaVersion": 1, "sequence": 1, "createdAt": "2026-12-01T00:00:00Z",
        "files": [{"path": "state.json", "key": "%sdata/%010d/state.json" % (prefix, 1), "size": len(whole)}]})
    # Checkpoint 2: valid JSON, so that only the size can tell that it is torn (the whole file had 40 bytes).
    torn = b'{"step": 20}'
    run.s3.put_object(Bucket=run.bucket, Key="%sdata/%010d/state.json" % (prefix, 2), Body=torn)
    run.put_json("%smanifests/%010d.json" % (prefix, 2), {
        "schemaVersion": 1, "sequence": 2, "createdAt": "2026-12-01T00:00:01Z",
        "files": [{"path": "state.json", "key": "%sdata/%010d/state.json" % (prefix, 2), "size": 40}]})
    run.put_spec(toy(15, every=5, pause=0.01))
    p = run.agent(run.env(aemm))
    assert p.returncode == 0 and run.status()["state"] == "succeeded", run.output(p)
    out = run.log(1, "stdout")
    assert out.startswith(b"resumed=1 from step 10, attempt 1\n"), "the torn checkpoint 2 was restored: %r" % out[:60]
    assert b"checkpoint %s skipped: 1 of its files are missing" % ("%smanifests/%010d.json" % (prefix, 2)).encode() \
        in run.log(1, "agent")
    assert [s for _, s in run.steps()] == list(range(11, 16))
    assert run.get_json(run.manifests()[-1])["sequence"] == 3


def test_control_stop_takes_a_final_checkpoint(make_run):
    """docs/RUNS.md, "Control": on `stop` the agent drains as for a spot notice: SIGTERM, then the final checkpoint
    of what the command saved in its handler. The toy saves only on SIGTERM here, and the interval never comes.
    Bug caught: no final checkpoint when the run is stopped through control.json."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    run.put_spec(toy(2000, every=100000, pause=0.05), checkpointIntervalSeconds=3600)
    agent = run.start_agent(run.env(aemm))
    deadline = time.time() + 20
    while len(run.steps()) < 20 and time.time() < deadline:
        time.sleep(0.1)
    run.put_json("%s/runs/%s/control.json" % (ENV_NAME, run.run_id),
                 {"schemaVersion": 1, "action": "stop", "requestedAt": "2026-12-01T00:00:00Z"})
    agent.wait(30)
    status = run.status()
    assert status["state"] == "stopped", status
    assert b"saved on SIGTERM" in run.log(1, "stdout")
    assert status["lastCheckpoint"], "no final checkpoint after a stop: %r" % (status,)
    assert len(run.manifests()) == 1
    assert run.checkpoint_state(status["lastCheckpoint"]["manifestKey"]) == run.steps()[-1][1]


def test_logs_and_checkpoints_resume_during_the_run_after_an_s3_outage(make_run):
    """docs/RUNS.md: logs are streamed every logFlushSeconds and checkpoints taken every checkpointIntervalSeconds
    while the command runs; an S3 outage only delays them. S3 is unreachable for 36 s (longer than the 30 s a
    checkpoint retries for); once it answers again, new log chunks and a new checkpoint appear while the command is
    still running, not only in the final flush. Bug caught: the log-streaming and periodic-checkpoint threads die at
    the first S3 error."""
    run = make_run()
    aemm = run.aemm(run_id=run.run_id)
    proxy = FlakyProxy(urllib.parse.urlsplit(run.moto).port)
    stdout_prefix = "%s/logs/%s/001/stdout/" % (ENV_NAME, run.run_id)
    try:
        run.put_spec(toy(1300, every=20, pause=0.05))  # over 65 s
        agent = run.start_agent(run.env(aemm, s3_endpoint="http://127.0.0.1:%d" % proxy.port))
        started = time.time() + 60  # the outage begins once the command runs (a loaded machine starts it late)
        while not run.steps() and time.time() < started:
            time.sleep(0.2)
        proxy.set_down(True)
        time.sleep(36)
        chunks, manifests = set(run.keys(stdout_prefix)), set(run.manifests())
        proxy.set_down(False)
        new_chunks = new_manifests = set()
        deadline = time.time() + 15
        while time.time() < deadline and not (new_chunks and new_manifests):
            time.sleep(0.5)
            assert agent.poll() is None and run.steps()[-1][1] < 1300, "the command ended before the check"
            new_chunks = set(run.keys(stdout_prefix)) - chunks
            new_manifests = set(run.manifests()) - manifests
        assert new_chunks, "no log chunk was streamed during the run after the outage"
        assert new_manifests, "no checkpoint was taken during the run after the outage"
        agent.wait(90)
    finally:
        proxy.close()
    assert run.status()["state"] == "succeeded", run.output(agent)
    assert b"logs not sent, retried: " in run.log(1, "agent")
    assert b"checkpoint not uploaded, retried" in run.log(1, "agent")


def test_the_batch_wrapper_exits_with_the_code_of_a_failing_command(make_run):
    """docs/RUNS.md, "AWS Batch": the agent's exit code is the command's, so that Batch's retry strategy
    (`evaluateOnExit`, AWS Batch API Reference, "EvaluateOnExit": `onExitCode`) sees it. A command that exits 3:
    the wrapper exits 3, the attempt is `failed` with exit code 3, and nothing powers off."""
    job_id = "0f7c5e2a-1b2c-4d3e-9f00-123456789abd"
    run = make_run(job_id)
    env = run.env(AWS_BATCH_JOB_ID=job_id, AWS_BATCH_JOB_ATTEMPT="1")
    p = run.agent(env, ["batch", "--"] + toy(5, pause=0.01, exit_code=3), timeout=60)
    assert p.returncode == 3, run.output(p)
    status = run.status()
    assert status["state"] == "failed" and status["exitCode"] == 3, status
    assert run.poweroffs() == []
