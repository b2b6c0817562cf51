"""The launcher against moto in process (EC2, S3, SSM, CloudFormation): a foundation made with boto3 (moto_world.py),
then run, upload, logs, status, list and stop as a user calls them (the CLI's main in process, with the clients on
moto). Moto ignores InstanceMarketOptions (shared notes, run-facts.md, "moto 5.2.5"), so the market is checked on the
request."""
import json
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional

import pytest

from chronos_training.cli import main_with
from conftest import Recording, aws_error
from moto_world import BUCKET, Recorded, moto_foundation

# The tests' clock starts now (moto stamps objects with the real time, which the upload compares with it).
START = datetime.now(timezone.utc).replace(microsecond=0)
START_ISO = START.strftime("%Y-%m-%dT%H:%M:%S.000Z")
STAMP = START.strftime("%Y%m%d-%H%M%S")


class World:
    clients: Recorded
    subnets: List[str]
    template: str
    images: List[str]
    tmp: str


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with moto_foundation(World(), str(tmp_path_factory.mktemp("chronos-cli"))) as w:
        yield w


_counter = [0]


def workdir(w: World) -> str:
    """A working directory with a .gitignore, an ignored directory, a nested .gitignore with a negation, and a .git."""
    _counter[0] += 1
    d = os.path.join(w.tmp, "code-%d" % _counter[0])

    def write(rel: str, text: str, mode: int = 0o644) -> None:
        path = os.path.join(d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
    write("train.py", 'print("training")\n')
    write("run.sh", "#!/bin/sh\npython train.py\n", 0o755)
    write("lib/model.py", "MODEL = 1\n")
    write("lib/same.py", "MODEL = 1\n")  # same bytes as model.py: one blob
    write(".gitignore", "*.ckpt\n/data/\n__pycache__/\n")
    write("data/big.bin", "x" * 1000)
    write("lib/__pycache__/model.pyc", "bytecode")
    write("old.ckpt", "checkpoint")
    write("notes/.gitignore", "*.md\n!keep.md\n")
    write("notes/drop.md", "drop")
    write("notes/keep.md", "keep")
    write(".git/HEAD", "ref: refs/heads/main\n")
    return d


class Result(Recording):
    code: int


def cli(w: World, args: List[str], on_sleep: Optional[Callable[[], None]] = None, poll: float = 1,
        rec: Optional[Recording] = None) -> Any:
    rec = rec or Recording(on_sleep, START)
    rec.code = main_with(args, rec.io, clients=lambda _p, _r: w.clients, poll_seconds=poll)
    return rec


def read_json(w: World, key: str) -> Any:
    return json.loads(w.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def put(w: World, key: str, body: Any) -> None:
    w.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=body if isinstance(body, str) else json.dumps(body))


def instances_of(w: World, run_id: str) -> List[Dict[str, Any]]:
    reply = w.clients.ec2.describe_instances(Filters=[{"Name": "tag:ChronosRunId", "Values": [run_id]}])
    return [i for r in reply["Reservations"] for i in r["Instances"]]


def tags_of(i: Dict[str, Any]) -> Dict[str, str]:
    return {t["Key"]: t["Value"] for t in i.get("Tags", [])}


def blob_puts(w: World, mark: int) -> List[Dict[str, Any]]:
    return [p for p in w.clients.since(mark, "PutObject") if "/code/blobs/" in p["Key"]]


def run_requests(w: World, mark: int) -> List[Dict[str, Any]]:
    return w.clients.since(mark, "RunInstances")


def run_id_of(request: Dict[str, Any]) -> str:
    return next(t["Value"] for t in request["TagSpecifications"][0]["Tags"] if t["Key"] == "ChronosRunId")


def status(run_id: str, state: str, attempt: int, **extra: Any) -> Dict[str, Any]:
    doc = {"schemaVersion": 1, "runId": run_id, "state": state, "attempt": attempt, "instanceId": "i-0000000000000000a",
           "instanceType": "t3.micro", "lifecycle": "spot", "availabilityZone": "us-east-1a", "startedAt": START_ISO,
           "updatedAt": START_ISO, "endedAt": None, "exitCode": None, "lastCheckpoint": None, "reason": None,
           "agentVersion": "test"}
    doc.update(extra)
    return doc


def log_key(run_id: str, attempt: int, stream: str, chunk: int) -> str:
    return "dev/logs/%s/%03d/%s/%010d.log" % (run_id, attempt, stream, chunk)


# --- run --detach --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detached(world):
    d = workdir(world)
    mark = len(world.clients.calls)
    r = cli(world, ["run", "--env", "dev", "--dir", d, "--instance-types", "t3.micro,t3.small", "--name", "My Model",
                    "--env-var", "EPOCHS=3", "--max-run-lifetime", "90m", "--detach", "--", "python", "train.py",
                    "--epochs", "3"])
    return {"dir": d, "mark": mark, "result": r, "run_id": r.stdout().strip()}


def test_run_detach_prints_the_run_id_in_the_contracts_format_on_stdout(detached):
    r = detached["result"]
    assert "error" not in r.stderr()
    assert r.code == 0
    assert re.match(r"^my-model-%s-[0-9a-f]{6}$" % STAMP, detached["run_id"])


def test_run_detach_uploads_the_files_git_would_keep_content_addressed_then_their_manifest(world, detached):
    spec = read_json(world, "dev/runs/%s/spec.json" % detached["run_id"])
    manifest = read_json(world, spec["code"]["manifestKey"])
    assert [f["path"] for f in manifest["files"]] == [
        ".gitignore", "lib/model.py", "lib/same.py", "notes/.gitignore", "notes/keep.md", "run.sh", "train.py"]
    assert next(f for f in manifest["files"] if f["path"] == "run.sh")["mode"] == 0o755
    train = next(f for f in manifest["files"] if f["path"] == "train.py")
    assert re.match(r"^[0-9a-f]{64}$", train["sha256"])
    assert train == {"path": "train.py", "sha256": train["sha256"], "size": 18, "mode": 0o644}
    blob = world.clients.s3.get_object(Bucket=BUCKET, Key="dev/code/blobs/%s" % train["sha256"])["Body"].read()
    assert blob == b'print("training")\n'
    mark = detached["mark"]
    # model.py and same.py share a blob: 6 distinct blobs for 7 files.
    assert len(blob_puts(world, mark)) == 6
    # One HEAD of the manifest, one listing of the (few) blobs instead of a HEAD each (up to the next run's calls).
    first_run = world.clients.calls[mark:]
    end = next(i for i, (op, _p) in enumerate(first_run) if op == "RunInstances")
    assert len([1 for op, _p in first_run[:end] if op == "HeadObject"]) == 1
    assert len([1 for op, p in first_run[:end] if op == "ListObjectsV2" and p.get("Prefix") == "dev/code/blobs/"]) == 1


def test_run_detach_writes_spec_v1_and_a_pending_status(world, detached):
    run_id = detached["run_id"]
    spec = read_json(world, "dev/runs/%s/spec.json" % run_id)
    assert re.match(r"^dev/code/manifests/[0-9a-f]{64}\.json$", spec["code"]["manifestKey"])
    assert re.match(r"^chronos-training/", spec["createdBy"])
    assert spec == {
        "schemaVersion": 1, "runId": run_id, "name": "My Model", "environment": "dev",
        "command": ["python", "train.py", "--epochs", "3"], "env": {"EPOCHS": "3"}, "code": spec["code"],
        "maxRunLifetimeSeconds": 5400, "createdAt": START_ISO, "createdBy": spec["createdBy"],
        # The run's policy (issue 29): what every next attempt, the run keeper's and resume's, follows.
        "policy": {"instanceTypes": ["t3.micro", "t3.small"], "markets": ["spot", "on-demand"], "maxAttempts": 3,
                   "onDemandAfterInterruptions": 2, "capacityWaitSeconds": 21600, "imageId": None,
                   "maxLifetimeHours": 1.75}}
    assert list(spec) == ["schemaVersion", "runId", "name", "environment", "command", "env", "code",
                          "maxRunLifetimeSeconds", "createdAt", "createdBy", "policy"]
    s = read_json(world, "dev/runs/%s/status.json" % run_id)
    assert {k: s[k] for k in ("schemaVersion", "runId", "state", "attempt", "instanceId", "exitCode")} == {
        "schemaVersion": 1, "runId": run_id, "state": "pending", "attempt": 1, "instanceId": None, "exitCode": None}


def test_run_detach_uploads_the_packages_own_agent_for_the_boot_script_before_the_launch(world, detached):
    """The user data carries no agent: each attempt's boot script fetches dev/runs/{id}/agent/chronos_run_agent.py
    (docs/RUNS.md, "On the instance"), the agent of the launcher that wrote the spec, byte for byte, uploaded before
    RunInstances."""
    import chronos_training
    key = "dev/runs/%s/agent/chronos_run_agent.py" % detached["run_id"]
    body = world.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with open(os.path.join(os.path.dirname(chronos_training.__file__), "agent", "chronos_run_agent.py"), "rb") as f:
        assert body == f.read()
    calls = world.clients.calls[detached["mark"]:]
    put = next(i for i, (op, p) in enumerate(calls) if op == "PutObject" and p.get("Key") == key)
    assert put < next(i for i, (op, _p) in enumerate(calls) if op == "RunInstances")


def test_run_detach_launches_from_the_template_first_type_first_zone_spot_with_the_runs_tags_and_no_user_data(
        world, detached):
    req = run_requests(world, detached["mark"])[0]
    assert {k: v for k, v in req.items() if k != "TagSpecifications"} == {
        # This foundation publishes no LaunchTemplateVersion (an older one): the latest version, never $Default.
        "LaunchTemplate": {"LaunchTemplateId": world.template, "Version": "$Latest"},
        "InstanceType": "t3.micro", "SubnetId": world.subnets[0], "MinCount": 1, "MaxCount": 1,
        "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time",
                                                                        "InstanceInterruptionBehavior": "terminate"}}}
    assert [t["ResourceType"] for t in req["TagSpecifications"]] == ["instance", "volume"]
    run_id = detached["run_id"]
    instance = instances_of(world, run_id)[0]
    assert instance["SubnetId"] == world.subnets[0]
    assert instance["InstanceType"] == "t3.micro"
    tags = tags_of(instance)
    assert {k: tags[k] for k in ("Project", "Environment", "CostCenter", "ManagedBy", "MaxLifetimeHours", "ChronosRunId",
                                 "ChronosAttempt", "ChronosBucket", "Name")} == {
        "Project": "Chronos-Training", "Environment": "dev", "CostCenter": "train", "ManagedBy": "chronos-training",
        "MaxLifetimeHours": "1.75", "ChronosRunId": run_id, "ChronosAttempt": "1", "ChronosBucket": BUCKET,
        "Name": "chronos-%s" % run_id}
    assert "won after 1 try" in detached["result"].stderr()


def test_a_second_run_of_the_same_code_uploads_no_blob_one_changed_file_uploads_exactly_one(world, detached):
    d = detached["dir"]
    mark = len(world.clients.calls)
    again = cli(world, ["run", "--env", "dev", "--dir", d, "--instance-types", "t3.micro", "--detach", "--", "true"])
    assert again.code == 0
    assert blob_puts(world, mark) == []
    assert "uploaded 0 of 6 blobs (0 B)" in again.stderr()
    # The manifest, written minutes ago, vouches for its blobs: one HEAD.
    assert len(world.clients.since(mark, "HeadObject")) == 1
    with open(os.path.join(d, "train.py"), "a") as f:
        f.write('print("more")\n')
    mark = len(world.clients.calls)
    changed = cli(world, ["run", "--env", "dev", "--dir", d, "--instance-types", "t3.micro", "--detach", "--", "true"])
    assert changed.code == 0
    assert len(blob_puts(world, mark)) == 1
    assert "uploaded 1 of 6 blobs (32 B)" in changed.stderr()
    assert len(world.clients.since(mark, "HeadObject")) == 1
    assert len([p for p in world.clients.since(mark, "ListObjectsV2") if p.get("Prefix") == "dev/code/blobs/"]) == 1


# --- the attached launcher -----------------------------------------------------------------------------------------

def test_follows_the_logs_and_status_and_resumes_an_interrupted_attempt_on_demand_after_one_spot_interruption(world):
    d = workdir(world)
    mark = len(world.clients.calls)
    tick = [0]

    def script():
        tick[0] += 1
        run_id = run_id_of(run_requests(world, mark)[0])
        if tick[0] == 1:
            put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "running", 1))
            put(world, log_key(run_id, 1, "stdout", 0), "epoch 1\n")
            put(world, log_key(run_id, 1, "agent", 0), "restored nothing\n")
        elif tick[0] == 2:
            put(world, log_key(run_id, 1, "stdout", 1), "epoch 2\n")
            put(world, "dev/runs/%s/status.json" % run_id, status(
                run_id, "interrupted", 1, reason="spot interruption notice: terminate at 12:05"))
        elif tick[0] == 3:
            put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "running", 2, lifecycle="on-demand"))
            put(world, log_key(run_id, 2, "stdout", 0), "epoch 3\n")
            put(world, log_key(run_id, 2, "stderr", 0), "warning\n")
        elif tick[0] == 4:
            put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "succeeded", 2, lifecycle="on-demand",
                                                                  exitCode=0))
    r = cli(world, ["run", "--env", "dev", "--dir", d, "--instance-types", "t3.micro", "--spot-fallback",
                    "--on-demand-after-interruptions", "1", "--", "python", "train.py"], script)
    run_id = run_id_of(run_requests(world, mark)[0])
    assert "error" not in r.stderr()
    assert r.code == 0
    assert r.stdout() == "epoch 1\nepoch 2\nepoch 3\n%s\n" % run_id
    assert "[agent] restored nothing" in r.stderr()
    assert "warning\n" in r.stderr()
    assert ("attempt 1: interrupted on i-0000000000000000a, t3.micro, spot, us-east-1a (spot interruption notice"
            in r.stderr())
    assert "resuming: attempt 2 of 3" in r.stderr()
    requests = run_requests(world, mark)
    assert len(requests) == 2
    assert requests[0]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert "InstanceMarketOptions" not in requests[1]
    assert sorted(tags_of(i)["ChronosAttempt"] for i in instances_of(world, run_id)) == ["1", "2"]
    # Attempt 1 said `interrupted` while its instance still ran (after a spot drain the agent leaves it for EC2 to
    # reclaim): the launcher neither waited for it nor ended it.
    first = next(i for i in instances_of(world, run_id) if tags_of(i)["ChronosAttempt"] == "1")
    assert first["State"]["Name"] == "running"


def test_stops_after_max_attempts_interrupted_attempts_and_returns_the_commands_exit_code_of_a_failed_run(world):
    d = workdir(world)
    mark = len(world.clients.calls)

    def script():
        requests = run_requests(world, mark)
        run_id = run_id_of(requests[0])
        put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", len(requests)))
    r = cli(world, ["run", "--env", "dev", "--dir", d, "--instance-types", "t3.micro", "--max-attempts", "2", "--",
                    "true"], script)
    assert r.code == 1
    assert len(run_requests(world, mark)) == 2
    assert "--max-attempts 2 is reached" in r.stderr()

    def failing():
        run_id = run_id_of(run_requests(world, mark)[-1])
        put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "failed", 1, exitCode=3, reason="exit 3"))
    failed = cli(world, ["run", "--env", "dev", "--dir", d, "--instance-types", "t3.micro", "--", "false"], failing)
    assert failed.code == 3


# How an attempt ended, from EC2's StateReason (EC2 API Reference, "StateReason"): only a spot reclaim
# (Server.SpotInstanceTermination) or the agent's own `interrupted` is worth another attempt. Moto sets
# Client.UserInitiatedShutdown when TerminateInstances ends an instance; the other reasons, and a LaunchTime hours ago,
# are written into moto's DescribeInstances reply by a hook on the launcher's EC2 client (botocore's after-call event).
@pytest.fixture
def stub_describe(world):
    hooks = []

    def install(rewrite: Callable[[Dict[str, Any]], None]) -> None:
        def after(parsed, **_kw):
            for r in parsed.get("Reservations", []):
                for i in r.get("Instances", []):
                    rewrite(i)
        world.clients.ec2.meta.events.register("after-call.ec2.DescribeInstances", after)
        hooks.append(after)
    yield install
    for h in hooks:
        world.clients.ec2.meta.events.unregister("after-call.ec2.DescribeInstances", h)


def attached_run(w: World, extra: List[str], script: Callable[[int, str, str], None]):
    """Runs attached (polls 30 s apart) while `script(tick, run_id, first_instance_id)` plays the instance's part."""
    mark = len(w.clients.calls)
    tick = [0]

    def on_sleep():
        tick[0] += 1
        run_id = run_id_of(run_requests(w, mark)[0])
        first = next(i for i in instances_of(w, run_id) if tags_of(i)["ChronosAttempt"] == "1")
        script(tick[0], run_id, first["InstanceId"])
    rec = cli(w, ["run", "--env", "dev", "--dir", workdir(w), "--instance-types", "t3.micro"] + extra + ["--", "true"],
              on_sleep, poll=30)
    return rec.code, rec, run_id_of(run_requests(w, mark)[0]), len(run_requests(w, mark))


def test_an_instance_terminated_through_the_api_without_a_final_status_ends_the_run_and_is_not_relaunched(world):
    def script(tick, run, first):
        if tick == 1:
            put(world, "dev/runs/%s/status.json" % run, status(run, "running", 1))
            world.clients.ec2.terminate_instances(InstanceIds=[first])
    code, rec, run_id, launches = attached_run(world, [], script)
    assert code == 1
    assert launches == 1
    assert re.search(r"run \S+ failed: attempt 1: i-[0-9a-f]+ is (terminated|shutting-down) but the run's status says "
                     r"running: it was terminated or stopped through the EC2 API or console "
                     r"\(Client\.UserInitiatedShutdown\)", rec.stderr())
    s = read_json(world, "dev/runs/%s/status.json" % run_id)
    assert (s["state"], s["attempt"]) == ("failed", 1) and isinstance(s["endedAt"], str)
    assert "Client.UserInitiatedShutdown" in s["reason"]


def test_a_spot_instance_ec2_reclaimed_without_a_final_status_is_followed_by_the_next_attempt(world, stub_describe):
    def rewrite(i):
        if i["State"]["Name"] in ("terminated", "shutting-down"):
            i["StateReason"] = {"Code": "Server.SpotInstanceTermination",
                                "Message": "Server.SpotInstanceTermination: Spot instance termination"}
    stub_describe(rewrite)
    launched = [1]

    def script(tick, run, first):
        if tick == 1:
            put(world, "dev/runs/%s/status.json" % run, status(run, "running", 1))
            world.clients.ec2.terminate_instances(InstanceIds=[first])
        if len(instances_of(world, run)) == 2 and launched[0] == 1:
            launched[0] = 2
            put(world, "dev/runs/%s/status.json" % run, status(run, "succeeded", 2, exitCode=0))
    code, rec, _run_id, launches = attached_run(world, ["--spot"], script)
    assert ("EC2 reclaimed the spot instance (Server.SpotInstanceTermination); the agent wrote no final status: the "
            "attempt counts as interrupted") in rec.stderr()
    assert code == 0
    assert launches == 2


def test_an_instance_ec2_ended_at_launch_client_internal_error_ends_the_run_naming_the_likely_kms_cause(
        world, stub_describe):
    def rewrite(i):
        i["State"] = {"Name": "terminated", "Code": 48}
        i["StateReason"] = {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"}
    stub_describe(rewrite)
    code, rec, run_id, launches = attached_run(world, [], lambda *_: None)
    assert code == 1
    assert launches == 1
    assert re.search(r"status says pending: EC2 ended it during launch \(Client\.InternalError: Client\.InternalError: "
                     r"Client error on launch\); .*KMS key", rec.stderr())
    assert read_json(world, "dev/runs/%s/status.json" % run_id)["state"] == "failed"


# The run reaper terminates (TerminateInstances: Client.UserInitiatedShutdown) an instance older than its
# MaxLifetimeHours tag, counted from LaunchTime; the agent, killed by the shutdown, drains and says `interrupted`.
def test_an_attempt_the_run_reaper_ended_is_not_relaunched_the_run_fails_naming_the_reaper(world, stub_describe):
    def rewrite(i):
        i["LaunchTime"] = datetime.now(timezone.utc) - timedelta(hours=2)
    stub_describe(rewrite)

    def script(tick, run, first):
        if tick == 1:
            world.clients.ec2.terminate_instances(InstanceIds=[first])
            put(world, "dev/runs/%s/status.json" % run, status(run, "interrupted", 1,
                                                               reason="SIGTERM: the instance is shutting down"))
    code, rec, run_id, launches = attached_run(world, ["--max-run-lifetime", "1h"], script)
    assert code == 1
    assert launches == 1
    assert ("the run reaper terminated it (Client.UserInitiatedShutdown): it outlived its MaxLifetimeHours tag of 1.25 h"
            in rec.stderr())
    assert read_json(world, "dev/runs/%s/status.json" % run_id)["state"] == "failed"


# docs/RUNS.md, "Control": the agent reads control.json while its command runs; the launcher reads it before it
# launches a next attempt, so a stop asked for meanwhile (stop, stop --now) ends the run instead.
def test_a_stop_asked_for_while_an_attempt_ends_interrupted_ends_the_run_as_stopped_with_no_next_attempt(world):
    def script(tick, run, _first):
        if tick == 1:
            put(world, "dev/runs/%s/control.json" % run, {"schemaVersion": 1, "action": "stop", "requestedAt": START_ISO})
            put(world, "dev/runs/%s/status.json" % run, status(run, "interrupted", 1,
                                                               reason="SIGTERM: the instance is shutting down"))
    code, rec, run_id, launches = attached_run(world, [], script)
    assert code == 1
    assert launches == 1
    assert "run %s stopped: stopped on request (chronos-training stop, %s)" % (run_id, START_ISO) in rec.stderr()
    s = read_json(world, "dev/runs/%s/status.json" % run_id)
    assert (s["state"], s["attempt"]) == ("stopped", 1)


def test_ctrl_c_before_the_launch_cancels_the_run(world):
    rec = Recording(None, START)
    rec.detach()
    mark = len(world.clients.calls)
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--", "true"],
            rec=rec)
    assert r.code == 130
    assert re.search(r"chronos-training: error: interrupted before the launch: run \S+ was not launched\n$", r.stderr())
    assert run_requests(world, mark) == []


def test_ctrl_c_detaches_prints_the_run_id_and_leaves_the_run_going(world):
    rec = Recording(None, START)
    rec.on_sleep = rec.detach
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--", "sleep", "100"],
            rec=rec)
    assert r.code == 0
    run_id = r.stdout().strip()
    assert "detached; the run goes on" in r.stderr()
    assert re.match(r"pending|running", instances_of(world, run_id)[0]["State"]["Name"])


# --- logs, status, list, stop --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(world):
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--on-demand",
                    "--detach", "--", "true"])
    run_id = r.stdout().strip()
    put(world, log_key(run_id, 1, "stdout", 0), "a1\n")
    put(world, log_key(run_id, 1, "stdout", 1), "a2\n")
    put(world, log_key(run_id, 1, "stderr", 0), "e1\n")
    put(world, log_key(run_id, 2, "stdout", 0), "b1\n")
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "succeeded", 2, exitCode=0, lifecycle="on-demand"))
    return run_id


def test_logs_prints_every_attempt_in_order(world, finished):
    r = cli(world, ["logs", finished, "--env", "dev"])
    assert r.code == 0
    assert r.stdout() == "a1\na2\nb1\n"
    assert r.stderr() == "[chronos] --- attempt 1 ---\ne1\n[chronos] --- attempt 2 ---\n"


def test_logs_prints_the_setup_stream_first_on_stderr_tagged_setup(world):
    """The setup's output is its own stream (docs/RUNS.md, "The setup and its cache"): its chunk 0 comes before the
    command's chunk 0, on stderr, each line tagged [setup]."""
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--on-demand",
                    "--detach", "--", "true"])
    run_id = r.stdout().strip()
    put(world, log_key(run_id, 1, "setup", 0), "Collecting torch\nInstalled\n")
    put(world, log_key(run_id, 1, "stdout", 0), "step 1\n")
    put(world, log_key(run_id, 1, "agent", 0), "setup: done\n")
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "succeeded", 1, exitCode=0))
    r = cli(world, ["logs", run_id, "--env", "dev"])
    assert r.code == 0 and r.stdout() == "step 1\n"
    assert r.stderr() == "[chronos] --- attempt 1 ---\n[setup] Collecting torch\n[setup] Installed\n[agent] setup: done\n"


def test_logs_and_stop_work_on_a_batch_jobs_run_which_has_a_status_but_no_spec(world, finished):
    job = "0f7c5e2a-1b2c-4d3e-9f00-123456789abc"
    put(world, "dev/runs/%s/status.json" % job, status(job, "running", 1))
    put(world, "dev/logs/%s/001/stdout/0000000000.log" % job, "batch\n")
    r = cli(world, ["logs", job, "--env", "dev"])
    assert (r.code, r.stdout()) == (0, "batch\n")
    assert cli(world, ["stop", job, "--env", "dev"]).code == 0
    assert read_json(world, "dev/runs/%s/control.json" % job)["action"] == "stop"
    none = cli(world, ["logs", "no-such-run", "--env", "dev"])
    assert (none.code, none.stderr()) == (1, "chronos-training: error: no run no-such-run in environment dev\n")


def test_logs_follow_ends_with_the_run(world, finished):
    r = cli(world, ["logs", finished, "--env", "dev", "--follow"])
    assert r.code == 0
    assert "run %s succeeded" % finished in r.stderr()


def test_status_shows_the_status_file_and_an_instance_still_running_although_the_run_ended(world, finished):
    r = cli(world, ["status", finished, "--env", "dev"])
    assert r.code == 0
    assert "state:      succeeded" in r.stdout()
    assert "attempt:    2" in r.stdout()
    assert re.search(r"instance:\s+i-[0-9a-f]+ attempt 1 running t3.micro on-demand us-east-1a \(still running although "
                     r"the status says succeeded\)", r.stdout())


def test_list_shows_the_runs_newest_first_with_state_attempt_instance_lifecycle_zone_and_age(world, finished):
    r = cli(world, ["list", "--env", "dev"])
    assert r.code == 0
    lines = r.stdout().strip().split("\n")
    assert re.match(r"^RUN\s+STATE\s+ATTEMPT\s+INSTANCE\s+TYPE\s+LIFECYCLE\s+ZONE\s+AGE$", lines[0])
    row = next(l for l in lines if l.startswith(finished))
    assert re.search(r"succeeded \(instance still running\)\s+2\s+i-0000000000000000a\s+t3.micro\s+on-demand\s+"
                     r"us-east-1a\s+0s", row)
    assert cli(world, ["status", "--env", "dev"]).stdout() == r.stdout()


def test_stop_writes_control_json_now_terminates_the_runs_instances(world, finished):
    r = cli(world, ["stop", finished, "--env", "dev"])
    assert r.code == 0
    assert read_json(world, "dev/runs/%s/control.json" % finished) == {
        "schemaVersion": 1, "action": "stop", "requestedAt": START_ISO}
    assert instances_of(world, finished)[0]["State"]["Name"] == "running"
    now = cli(world, ["stop", finished, "--env", "dev", "--now"])
    assert now.code == 0
    assert re.search(r"terminated i-", now.stderr())
    assert re.match(r"shutting-down|terminated", instances_of(world, finished)[0]["State"]["Name"])


def test_a_status_of_a_higher_schema_version_is_refused_with_the_version_this_launcher_knows(world, finished):
    put(world, "dev/runs/%s/status.json" % finished, dict(status(finished, "running", 3), schemaVersion=2))
    r = cli(world, ["status", finished, "--env", "dev"])
    assert r.code == 1
    assert re.match(r"^chronos-training: error: .*has schemaVersion 2; this chronos-training knows version 1", r.stderr())
    listed = cli(world, ["list", "--env", "dev"])
    assert listed.code == 0
    assert re.search(r"%s\s+newer status \(upgrade\)" % finished, listed.stdout())


# --- the foundation ------------------------------------------------------------------------------------------------

def test_falls_back_to_the_cloudformation_exports_without_parameters(world):
    exports = {"S3BucketName": BUCKET, "LaunchTemplateId": world.template,
               # The export the foundation adds next to the template's ID (ChronosTraining-{env}-LaunchTemplateVersion).
               "LaunchTemplateVersion": "1", "PublicSubnetIds": world.subnets[1], "AvailabilityZones": "us-east-1b",
               "CostCenter": "serve"}
    world.clients.cfn.create_stack(StackName="ChronosTraining-stage", TemplateBody=json.dumps({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v, "Export": {"Name": "ChronosTraining-stage-%s" % k}} for k, v in exports.items()}}))
    mark = len(world.clients.calls)
    r = cli(world, ["run", "--env", "stage", "--dir", workdir(world), "--instance-types", "t3.micro", "--detach", "--",
                    "true"])
    assert "(from CloudFormation exports)" in r.stderr()
    assert r.code == 0
    req = run_requests(world, mark)[0]
    assert req["SubnetId"] == world.subnets[1]
    assert req["LaunchTemplate"] == {"LaunchTemplateId": world.template, "Version": "1"}
    tags = req["TagSpecifications"][0]["Tags"]
    assert {"Key": "CostCenter", "Value": "serve"} in tags and {"Key": "Environment", "Value": "stage"} in tags


def test_a_foundation_without_a_launch_template_is_a_clear_error(world):
    for suffix, value in {"S3BucketName": BUCKET, "PublicSubnetIds": world.subnets[0],
                          "AvailabilityZones": "us-east-1a"}.items():
        world.clients.ssm.put_parameter(Name="/chronos-training/nolt/%s" % suffix, Value=value, Type="String")
    r = cli(world, ["run", "--env", "nolt", "--dir", workdir(world), "--", "true"])
    assert r.code == 1
    assert r.stderr() == ("chronos-training: error: the foundation of 'nolt' has no launch template (it was deployed with "
                          "launchTemplate: false); chronos-training launches from the foundation's launch template: "
                          "deploy it with the default launchTemplate\n")


def test_a_run_whose_launch_fails_ends_failed_with_the_reason_instead_of_staying_pending(world):
    # Moto never runs out of capacity: a hook on the launch client (RunInstances) says it has none.
    def no_capacity(**_kw):
        raise aws_error("InsufficientInstanceCapacity", operation="RunInstances")
    events = world.clients.ec2_launch.meta.events
    events.register("before-call.ec2.RunInstances", no_capacity)
    try:
        r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--spot",
                        "--wait-for-capacity", "0", "--detach", "--", "true"])
    finally:
        events.unregister("before-call.ec2.RunInstances", no_capacity)
    assert r.code == 1
    assert "no capacity: all 2 tries failed" in r.stderr()
    run_id = re.search(r"\[chronos\] run (\S+)\n", r.stderr()).group(1)
    s = read_json(world, "dev/runs/%s/status.json" % run_id)
    assert (s["state"], s["attempt"], s["instanceId"]) == ("failed", 1, None)
    assert s["reason"].startswith("launch failed: ")
    assert re.search(r"chronos-training: error: .*\n$", r.stderr())


def test_an_unknown_environment_and_a_lifetime_longer_than_the_foundations_are_clear_errors(world):
    none = cli(world, ["list", "--env", "nowhere"])
    assert none.code == 1
    assert re.match(r"^chronos-training: error: no foundation for environment 'nowhere'", none.stderr())
    long = cli(world, ["run", "--env", "dev", "--max-run-lifetime", "5h", "--instance-types", "t3.micro", "--", "true"])
    assert long.code == 2
    assert "--max-run-lifetime 5h is longer than the foundation's 4 h" in long.stderr()


# --- the launch template version and the lifetime ------------------------------------------------------------------
# CloudFormation adds a launch template version on each change of LaunchTemplateData and never moves the default
# version (AWS::EC2::LaunchTemplate reference, return values DefaultVersionNumber / LatestVersionNumber;
# cloudformation-coverage-roadmap #1518), and RunInstances without a version uses the default (EC2 API Reference,
# LaunchTemplateSpecification, Version: "If the value is not specified, the default version is used"). So the
# foundation publishes the latest version number (LaunchTemplateVersion) and the launcher launches and describes it.
# Moto keeps versions and launches the one asked for (ec2/models/instances.py, _get_template_from_args).

@pytest.fixture(scope="module")
def versioned(world):
    c = world.clients

    def tags(hours):
        return [{"Key": "Project", "Value": "Chronos-Training"}, {"Key": "Environment", "Value": "ver"},
                {"Key": "MaxLifetimeHours", "Value": hours}]
    import base64
    template = c.ec2.create_launch_template(LaunchTemplateName="ChronosTrainingLaunchTemplate-ver", LaunchTemplateData={
        "ImageId": world.images[0], "InstanceType": "t3.nano",
        "UserData": base64.b64encode(b"#!/bin/bash\necho agent v1\n").decode(),
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags("4.25")}]})["LaunchTemplate"]["LaunchTemplateId"]
    # The second deploy: a new version, the default left at 1, as CloudFormation leaves it.
    c.ec2.create_launch_template_version(LaunchTemplateId=template, LaunchTemplateData={
        "ImageId": world.images[1], "InstanceType": "t3.small",
        "UserData": base64.b64encode(b"#!/bin/bash\necho agent v2\n").decode(),
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags("2.25")}]})
    for suffix, value in {"S3BucketName": BUCKET, "LaunchTemplateId": template, "LaunchTemplateVersion": "2",
                          "PublicSubnetIds": ",".join(world.subnets), "AvailabilityZones": "us-east-1a,us-east-1b"}.items():
        c.ssm.put_parameter(Name="/chronos-training/ver/%s" % suffix, Value=value, Type="String")
    return template


def test_launches_and_describes_the_version_the_foundation_published_not_the_default(world, versioned):
    t = world.clients.ec2.describe_launch_templates(LaunchTemplateIds=[versioned])["LaunchTemplates"][0]
    assert [t["DefaultVersionNumber"], t["LatestVersionNumber"]] == [1, 2]
    mark = len(world.clients.calls)
    r = cli(world, ["run", "--env", "ver", "--dir", workdir(world), "--detach", "--", "true"])
    assert "error" not in r.stderr()
    assert r.code == 0
    assert "template %s version 2" % versioned in r.stderr()
    assert [p["Versions"] for p in world.clients.since(mark, "DescribeLaunchTemplateVersions")] == [["2"]]
    req = run_requests(world, mark)[0]
    assert req["LaunchTemplate"] == {"LaunchTemplateId": versioned, "Version": "2"}
    # Version 2's facts: its instance type (no --instance-types), its image, its lifetime (2.25 h tag: 2 h).
    assert req["InstanceType"] == "t3.small"
    run_id = r.stdout().strip()
    instance = instances_of(world, run_id)[0]
    assert instance["ImageId"] == world.images[1]
    assert tags_of(instance)["MaxLifetimeHours"] == "2.25"
    assert read_json(world, "ver/runs/%s/spec.json" % run_id)["maxRunLifetimeSeconds"] == 7200


# The reaper counts from LaunchTime, the agent from its own start after boot, and the agent's backstop is its lifetime
# + 300 s: so the tag always carries the 900 s margin (boot, drain, backstop), rounded up to 0.01 h.
@pytest.mark.parametrize("flag,lifetime,tag", [([], 14400, "4.25"), (["--max-run-lifetime", "4h"], 14400, "4.25"),
                                               (["--max-run-lifetime", "1h0m1s"], 3601, "1.26")])
def test_the_max_lifetime_hours_tag_is_the_runs_lifetime_plus_a_quarter_hour(world, flag, lifetime, tag):
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro"] + flag +
            ["--detach", "--", "true"])
    assert r.code == 0
    run_id = r.stdout().strip()
    assert read_json(world, "dev/runs/%s/spec.json" % run_id)["maxRunLifetimeSeconds"] == lifetime
    assert tags_of(instances_of(world, run_id)[0])["MaxLifetimeHours"] == tag


# --- run --image-id ------------------------------------------------------------------------------------------------
# The flag wins over the template's image (EC2 API Reference, RunInstances, ImageId: "must be specified here or in a
# launch template"); moto knows the images DescribeImages lists, so the launch must really use the one given.

def test_image_id_launches_the_given_ami_and_says_which_image_the_launch_uses(world):
    other = next(i for i in world.images if i != world.images[0])
    mark = len(world.clients.calls)
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--image-id", other,
                    "--detach", "--", "true"])
    assert "error" not in r.stderr()
    assert r.code == 0
    assert [q.get("ImageId") for q in run_requests(world, mark)] == [other]
    assert instances_of(world, r.stdout().strip())[0]["ImageId"] == other
    assert "[chronos] image: --image-id %s (instead of the launch template's %s)" % (other, world.images[0]) in r.stderr()


def test_without_image_id_a_template_with_an_image_sends_none_and_says_the_templates_is_used(world):
    mark = len(world.clients.calls)
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--detach", "--",
                    "true"])
    assert r.code == 0
    assert [q.get("ImageId") for q in run_requests(world, mark)] == [None]
    assert "[chronos] image: the launch template's %s" % world.images[0] in r.stderr()


def test_an_image_id_that_is_not_an_image_is_refused_before_anything_is_uploaded(world):
    mark = len(world.clients.calls)
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--image-id", "ubuntu",
                    "--", "true"])
    assert r.code == 2
    assert "chronos-training: error: --image-id 'ubuntu' is neither an AMI ID" in r.stderr()
    assert world.clients.since(mark, "PutObject") == []


def test_run_help_names_the_option_the_default_image_and_that_the_flag_wins(world):
    r = cli(world, ["run", "--help"])
    assert "--image-id ami-…|resolve:ssm:NAME" in r.stdout()
    assert "oss-nvidia-driver-gpu-pytorch-2.10-" in r.stdout()
    assert re.search(r"instead of the template's", r.stdout())


# --- issue 32's regressions (ported from wip/sharpen) --------------------------------------------------------------

# EC2 API Reference, TerminateInstances: every ID given is terminated. `stop --now RUN` must name only the instances
# tagged with that ChronosRunId (docs/RUNS.md, "The run ID and the attempt"), never another run's.
def test_stop_now_terminates_this_runs_instance_and_leaves_another_runs_of_the_same_environment_running(world):
    def start():
        return cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--on-demand",
                           "--detach", "--", "true"]).stdout().strip()
    mine, other = start(), start()
    r = cli(world, ["stop", mine, "--env", "dev", "--now"])
    assert r.code == 0
    assert [re.match(r"shutting-down|terminated", i["State"]["Name"]) is not None for i in instances_of(world, mine)] \
        == [True]
    assert [i["State"]["Name"] for i in instances_of(world, other)] == ["running"]
    terminated = [p for op, p in world.clients.calls if op == "TerminateInstances"][-1]["InstanceIds"]
    assert terminated == [i["InstanceId"] for i in instances_of(world, mine)]


# docs/RUNS.md: `timed-out` and `stopped` are terminal states; the attached launcher exits 124 for `timed-out` (as
# timeout(1) does: man timeout, "Exit status: 124 if COMMAND times out, and --preserve-status is not specified") and 1
# for `stopped`, whatever exit code the drained command had.
@pytest.mark.parametrize("state,expected", [("timed-out", 124), ("stopped", 1)])
def test_the_attached_launcher_exits_with_the_code_of_a_run_that_ended(world, state, expected):
    mark = len(world.clients.calls)

    def script():
        run_id = run_id_of(run_requests(world, mark)[0])
        put(world, "dev/runs/%s/status.json" % run_id, status(run_id, state, 1, exitCode=143, reason="drained"))
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--", "true"], script)
    assert " %s\n" % state in r.stderr()
    assert r.code == expected


def test_run_writes_the_setup_and_the_container_into_the_spec(world):
    """--setup, --setup-cache-file and --container become the spec's `setup` and `container` (docs/RUNS.md)."""
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--detach",
                    "--setup", "pip install -r requirements.txt", "--setup-cache-file", "requirements.txt",
                    "--setup-cache-file", "constraints.txt", "--container", "nvcr.io/nvidia/pytorch:24.08-py3",
                    "--", "python", "train.py"])
    assert r.code == 0, r.stderr()
    spec = read_json(world, "dev/runs/%s/spec.json" % r.stdout().strip())
    assert spec["setup"] == {"command": "pip install -r requirements.txt",
                             "cacheFiles": ["requirements.txt", "constraints.txt"]}
    assert spec["container"] == {"image": "nvcr.io/nvidia/pytorch:24.08-py3", "gpus": "all"}


@pytest.mark.parametrize("args, message", [
    (["--setup-cache-file", "requirements.txt"], "--setup-cache-file needs --setup"),
    (["--setup", " "], "--setup must be a command"),
    (["--setup", "make", "--setup-cache-file", "../x.txt"], "must be a path inside the working directory"),
    (["--container", "two words"], "--container must be an image name"),
])
def test_bad_setup_and_container_flags_are_refused_before_anything_is_uploaded(world, args, message):
    mark = len(world.clients.calls)
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--detach"] + args +
            ["--", "python", "train.py"])
    assert r.code == 2 and message in r.stderr(), r.stderr()
    assert not [p for p in world.clients.since(mark, "PutObject")]


def test_keep_checkpoints_goes_into_the_spec_and_is_checked_before_anything_is_uploaded(world):
    """docs/RUNS.md, "Checkpoints": `checkpoints.keep` (absent: the agent keeps 2); --keep-checkpoints N sets it."""
    d = workdir(world)
    r = cli(world, ["run", "--env", "dev", "--dir", d, "--instance-types", "t3.micro", "--keep-checkpoints", "3",
                    "--detach", "--", "python", "train.py"])
    assert r.code == 0, r.stderr()
    spec = read_json(world, "dev/runs/%s/spec.json" % r.stdout().strip())
    assert spec["checkpoints"] == {"keep": 3}
    mark = len(world.clients.calls)
    bad = cli(world, ["run", "--env", "dev", "--dir", d, "--instance-types", "t3.micro", "--keep-checkpoints", "0",
                      "--detach", "--", "python", "train.py"])
    assert bad.code == 2 and "--keep-checkpoints must be a whole number of at least 1, not 0" in bad.stderr()
    assert world.clients.calls[mark:] == []
