"""The Python API (chronos_training.launch, Run, runs) against moto in process: the same operations as the CLI,
without a terminal."""
import json
import re

import pytest
from moto import mock_aws

import chronos_training
from conftest import moto_environment
from moto_world import BUCKET, Recorded, make_foundation


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    with moto_environment(str(tmp_path_factory.mktemp("cache"))), mock_aws():
        clients = Recorded()
        make_foundation(clients)
        yield clients


@pytest.fixture
def code(tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    return str(tmp_path)


def put_status(aws, run_id, **fields):
    doc = {"schemaVersion": 1, "runId": run_id, "attempt": 1, "instanceId": "i-0000000000000000a",
           "instanceType": "t3.micro", "lifecycle": "on-demand", "availabilityZone": "us-east-1a",
           "startedAt": "2026-12-01T12:00:00.000Z", "updatedAt": "2026-12-01T12:00:00.000Z", "endedAt": None,
           "exitCode": None, "lastCheckpoint": None, "reason": None, "agentVersion": "test"}
    doc.update(fields)
    aws.s3.put_object(Bucket=BUCKET, Key="dev/runs/%s/status.json" % run_id, Body=json.dumps(doc))


def test_launch_uploads_writes_the_spec_launches_and_returns_the_run(aws, code):
    run = chronos_training.launch(env="dev", command=["python", "train.py"], instance_types=["t3.micro"],
                                  name="notebook", env_vars={"EPOCHS": "2"}, market="on-demand", directory=code,
                                  clients=aws)
    assert re.match(r"^notebook-\d{8}-\d{6}-[0-9a-f]{6}$", run.run_id)
    spec = run.spec()
    assert (spec["command"], spec["env"], spec["name"]) == (["python", "train.py"], {"EPOCHS": "2"}, "notebook")
    assert run.status()["state"] == "pending" and run.state() == "pending"
    requests = aws.since(0, "RunInstances")
    assert requests[-1]["InstanceType"] == "t3.micro" and "InstanceMarketOptions" not in requests[-1]
    assert run.run_id in [r["run"] for r in chronos_training.runs("dev", clients=aws)]


def test_wait_follows_a_launched_run_to_its_end_and_returns_its_exit_code(aws, code):
    run = chronos_training.launch(env="dev", command=["false"], instance_types=["t3.micro"], directory=code,
                                  clients=aws)
    put_status(aws, run.run_id, state="failed", exitCode=7, reason="exit 7")
    assert run.wait(poll_seconds=0, quiet=True) == 7


def test_a_run_by_its_id_prints_its_logs_and_waits_for_its_end(aws, code, capfd):
    launched = chronos_training.launch(env="dev", command=["true"], instance_types=["t3.micro"], directory=code,
                                       clients=aws)
    aws.s3.put_object(Bucket=BUCKET, Key="dev/logs/%s/001/stdout/0000000000.log" % launched.run_id, Body=b"step 1\n")
    put_status(aws, launched.run_id, state="succeeded", exitCode=0)
    run = chronos_training.Run("dev", launched.run_id, clients=aws)
    assert run.logs() == 0
    assert capfd.readouterr().out == "step 1\n"
    assert run.wait(poll_seconds=0, quiet=True) == 0


def test_stop_asks_the_agent_to_drain_and_now_terminates_the_runs_instance(aws, code):
    run = chronos_training.launch(env="dev", command=["sleep", "9"], instance_types=["t3.micro"], directory=code,
                                  clients=aws)
    assert run.stop() == []
    control = json.loads(aws.s3.get_object(Bucket=BUCKET, Key="dev/runs/%s/control.json" % run.run_id)["Body"].read())
    assert control["action"] == "stop"
    terminated = run.stop(now=True)
    assert len(terminated) == 1 and terminated[0].startswith("i-")
    state = aws.ec2.describe_instances(InstanceIds=terminated)["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")


def test_a_launch_error_is_a_chronos_error_with_the_clis_message_and_exit_code(aws, code):
    with pytest.raises(chronos_training.ChronosError) as e:
        chronos_training.launch(env="dev", command=["true"], instance_types=["t3.micro"], image_id="ubuntu",
                                directory=code, clients=aws)
    assert e.value.exit_code == 2 and e.value.message.startswith("--image-id 'ubuntu' is neither an AMI ID")
