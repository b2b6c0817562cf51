"""The run keeper's decisions (keeper.py, attempts.py) against moto in process: EC2 state-change events in the shape
EventBridge delivers them, its own retry schedules, the claim of a next attempt by two launchers at once, the end event
(an EventBridge rule with an SQS target observes it, as a user routes it), the capacity wait and `resume` from each
terminal state.

What moto does not enforce, and real AWS does, is checked here against the reference it comes from: a schedule's name
(EventBridge Scheduler API Reference, CreateSchedule, Name: 1 to 64 characters of [0-9a-zA-Z-_.]), its one-time
expression (`at(yyyy-mm-ddThh:mm:ss)`, same page, ScheduleExpression), the end event's entry (EventBridge API
Reference, PutEvents: Source and DetailType required; User Guide, "Calculating PutEvents event entry size": 256 KB at
most), and the atomicity of S3's conditional write (S3 User Guide, "How to prevent object overwrites with conditional
writes": of concurrent `If-None-Match: *` writes of one key, one succeeds and the others get 412), which moto 5.2.5
checks and sets in two steps: the race test makes its PutObject atomic, as S3's is.
"""
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List

import pytest

from chronos_training import attempts, contract, keeper
from chronos_training.foundation import resolve_foundation
from conftest import aws_error
from moto_world import moto_foundation
from test_launcher_moto import (World, cli, instances_of, put, read_json, run_id_of, run_requests, status,  # noqa: F401
                                stub_describe, tags_of, workdir)

ACCOUNT = "123456789012"
GROUP = "chronos-training-dev"
ROLE = "arn:aws:iam::%s:role/chronos-keeper-scheduler" % ACCOUNT
FUNCTION = "arn:aws:lambda:us-east-1:%s:function:chronos-keeper-dev" % ACCOUNT


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with moto_foundation(World(), str(tmp_path_factory.mktemp("chronos-keeper"))) as w:
        w.clients.scheduler.create_schedule_group(Name=GROUP)
        # The user's route of the end event: a rule on the default bus, an SQS queue as its target.
        sqs = __import__("boto3").client("sqs", region_name="us-east-1")
        w.queue = sqs.create_queue(QueueName="chronos-ended")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=w.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        w.clients.events.put_rule(Name="chronos-ended", EventPattern=json.dumps(
            {"source": [contract.END_EVENT_SOURCE], "detail-type": [contract.END_EVENT_DETAIL_TYPE]}))
        w.clients.events.put_targets(Rule="chronos-ended", Targets=[{"Id": "q", "Arn": arn}])
        w.sqs = sqs
        yield w


def ended_events(w: World) -> List[Dict[str, Any]]:
    """The end events the rule delivered since the last call."""
    found = []
    while True:
        reply = w.sqs.receive_message(QueueUrl=w.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = reply.get("Messages") or []
        if not messages:
            return found
        for m in messages:
            found.append(json.loads(m["Body"]))
            w.sqs.delete_message(QueueUrl=w.queue, ReceiptHandle=m["ReceiptHandle"])


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.at


def the_keeper(w: World, clock: Any = None, lines: Any = None) -> keeper.Keeper:
    return keeper.Keeper(w.clients, "dev", GROUP, ROLE, FUNCTION, now=clock or Clock(),
                         log=(lines.append if lines is not None else (lambda _l: None)))


def ec2_event(instance_id: str, state: str) -> Dict[str, Any]:
    """An EC2 state-change event as EventBridge delivers it (EventBridge User Guide, "Amazon EC2 events"; EC2 User
    Guide, "State change events"): no tags, the instance ID and its new state in `detail`."""
    return {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "account": ACCOUNT,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:%s:instance/%s" % (ACCOUNT, instance_id)],
            "detail": {"instance-id": instance_id, "state": state}}


def spot_reclaimed(i: Dict[str, Any]) -> None:
    if i["State"]["Name"] in ("terminated", "shutting-down"):
        i["StateReason"] = {"Code": "Server.SpotInstanceTermination",
                            "Message": "Server.SpotInstanceTermination: Spot instance termination"}


@pytest.fixture
def no_capacity(world):
    """RunInstances says InsufficientInstanceCapacity (moto never does) while `on[0]` is true."""
    on = [True]

    def refuse(**_kw):
        if on[0]:
            raise aws_error("InsufficientInstanceCapacity", operation="RunInstances")
    world.clients.ec2_launch.meta.events.register("before-call.ec2.RunInstances", refuse)
    yield on
    world.clients.ec2_launch.meta.events.unregister("before-call.ec2.RunInstances", refuse)


def detached_run(w: World, extra: List[str] = ()) -> Dict[str, Any]:
    mark = len(w.clients.calls)
    r = cli(w, ["run", "--env", "dev", "--dir", workdir(w), "--instance-types", "t3.micro"] + list(extra)
            + ["--detach", "--", "python", "train.py"])
    assert r.code == 0, r.stderr()
    run_id = r.stdout().strip()
    first = next(i for i in instances_of(w, run_id) if tags_of(i)["ChronosAttempt"] == "1")
    ended_events(w)
    return {"run_id": run_id, "mark": mark, "first": first["InstanceId"]}


def attempt_tags(w: World, run_id: str) -> List[str]:
    return sorted(tags_of(i)["ChronosAttempt"] for i in instances_of(w, run_id))


def status_of(w: World, run_id: str) -> Dict[str, Any]:
    return read_json(w, "dev/runs/%s/status.json" % run_id)


# --- decisions -----------------------------------------------------------------------------------------------------

def test_a_spot_interrupted_attempt_gets_its_next_attempt_from_the_keeper_once_for_the_same_event_twice(
        world, stub_describe):
    stub_describe(spot_reclaimed)
    run = detached_run(world, ["--spot"])
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 1, instanceId=run["first"],
                                                          reason="spot interruption notice: terminate at 12:05"))
    world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    mark = len(world.clients.calls)
    lines: List[str] = []
    result = the_keeper(world, lines=lines).handle(ec2_event(run["first"], "terminated"))
    assert (result["action"], result["attempt"]) == ("launched", 2), lines
    assert attempt_tags(world, run_id) == ["1", "2"]
    s = status_of(world, run_id)
    assert (s["state"], s["attempt"]) == ("pending", 2)
    assert s["reason"] == "keeper: attempt 2 launched after spot interruption of attempt 1"
    record = read_json(world, "dev/runs/%s/attempts/002.json" % run_id)
    assert record["launchedBy"] == "keeper" and record["instanceId"] == result["instanceId"]
    assert (record["instanceType"], record["market"]) == ("t3.micro", "spot")
    assert record["availabilityZone"] in ("us-east-1a", "us-east-1b") and isinstance(record["launchedAt"], str)
    # The same event again (EventBridge delivers at least once), and its shutting-down sibling: no second launch.
    again = the_keeper(world).handle(ec2_event(run["first"], "terminated"))
    assert again["action"] == "followed"
    assert len(run_requests(world, mark)) == 1
    assert ended_events(world) == []


def test_an_instance_ec2_reclaimed_while_its_status_said_running_counts_as_interrupted(world, stub_describe):
    stub_describe(spot_reclaimed)
    run = detached_run(world, ["--spot"])
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "running", 1, instanceId=run["first"]))
    world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    # At shutting-down the agent may still write its final status: the keeper waits for `terminated`.
    early = the_keeper(world).handle(ec2_event(run["first"], "shutting-down"))
    assert early["action"] == "nothing" and attempt_tags(world, run_id) == ["1"]
    result = the_keeper(world).handle(ec2_event(run["first"], "terminated"))
    assert (result["action"], result["attempt"]) == ("launched", 2)
    first = read_json(world, "dev/runs/%s/attempts/001.json" % run_id)
    assert first["state"] == "interrupted" and "Server.SpotInstanceTermination" in first["reason"]
    assert first["launchedBy"] == "cli"


@pytest.mark.parametrize("case", ["stop-now", "failed", "reaper"])
def test_stop_now_a_failure_or_a_reaper_kill_is_not_relaunched_and_the_end_is_published_once(
        world, stub_describe, case):
    run = detached_run(world)
    run_id = run["run_id"]
    if case == "stop-now":
        put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "running", 1, instanceId=run["first"]))
        assert cli(world, ["stop", run_id, "--env", "dev", "--now"]).code == 0
        expected, words = "stopped", "stopped on request"
    elif case == "failed":
        put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "failed", 1, instanceId=run["first"], exitCode=3,
                                                              reason="exit 3", endedAt=contract.iso(datetime.now(
                                                                  timezone.utc))))
        world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
        expected, words = "failed", "exit 3"
    else:
        stub_describe(lambda i: i.update(LaunchTime=datetime.now(timezone.utc) - timedelta(hours=5)))
        world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
        put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 1, instanceId=run["first"],
                                                              reason="SIGTERM: the instance is shutting down"))
        expected, words = "failed", "the run reaper terminated it"
    mark = len(world.clients.calls)
    first = the_keeper(world).handle(ec2_event(run["first"], "terminated"))
    second = the_keeper(world).handle(ec2_event(run["first"], "terminated"))
    assert first["action"] == "ended" and first["state"] == expected
    assert second["action"] == "nothing"
    assert run_requests(world, mark) == []
    s = status_of(world, run_id)
    assert s["state"] == expected and words in s["reason"]
    events = ended_events(world)
    assert len(events) == 1
    e = events[0]
    assert (e["source"], e["detail-type"]) == ("chronos.training", "Chronos Training Run Ended")
    assert set(e["detail"]) == {"environment", "runId", "name", "state", "reason", "attempts", "durationSeconds",
                                "estimatedCostUsd", "costIsEstimate", "logsCommand"}
    assert (e["detail"]["runId"], e["detail"]["state"], e["detail"]["attempts"]) == (run_id, expected, 1)
    assert e["detail"]["logsCommand"] == "chronos-training logs %s --env dev" % run_id
    assert e["detail"]["costIsEstimate"] is True and isinstance(e["detail"]["durationSeconds"], int)


def test_max_attempts_reached_ends_the_run_interrupted_with_the_reason_and_the_event(world, stub_describe):
    stub_describe(spot_reclaimed)
    run = detached_run(world, ["--max-attempts", "1"])
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 1, instanceId=run["first"]))
    world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    result = the_keeper(world).handle(ec2_event(run["first"], "terminated"))
    assert (result["action"], result["state"]) == ("ended", "interrupted")
    assert attempt_tags(world, run_id) == ["1"]
    assert "maxAttempts 1 is reached" in status_of(world, run_id)["reason"]
    events = ended_events(world)
    assert [(e["detail"]["state"], e["detail"]["attempts"]) for e in events] == [("interrupted", 1)]


def test_on_demand_after_n_spot_interruptions_follows_the_runs_policy_from_its_spec(world, stub_describe):
    stub_describe(spot_reclaimed)
    run = detached_run(world, ["--spot-fallback", "--on-demand-after-interruptions", "1"])
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 1, instanceId=run["first"]))
    mark = len(world.clients.calls)
    world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    assert the_keeper(world).handle(ec2_event(run["first"], "terminated"))["action"] == "launched"
    launched = run_requests(world, mark)
    assert len(launched) == 1 and "InstanceMarketOptions" not in launched[0]


def test_instances_of_no_run_of_another_environment_or_other_states_are_ignored(world):
    vpc_image = world.images[0]
    plain = world.clients.ec2.run_instances(ImageId=vpc_image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    other = world.clients.ec2.run_instances(ImageId=vpc_image, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "ChronosRunId", "Value": "x-20261201-000000-abcdef"},
                                              {"Key": "Environment", "Value": "prod"}]}])["Instances"][0]["InstanceId"]
    k = the_keeper(world)
    assert k.handle(ec2_event(plain, "terminated"))["action"] == "ignored"
    assert k.handle(ec2_event(other, "terminated"))["action"] == "ignored"
    assert k.handle(ec2_event(plain, "running"))["action"] == "ignored"
    assert k.handle({"chronos": "retry", "environment": "prod", "runId": "x-20261201-000000-abcdef"})["action"] == "ignored"
    assert k.handle({"source": "aws.s3"})["action"] == "ignored"


# --- the race ------------------------------------------------------------------------------------------------------

@pytest.fixture
def atomic_conditional_put():
    """moto's PutObject checks If-None-Match and stores the object in two steps; S3 does it at once. A lock makes moto's
    handler atomic, as S3 is (the module docstring cites the S3 User Guide)."""
    from moto.s3.responses import S3Response
    original = S3Response.put_object
    lock = threading.Lock()

    def atomic(self, *a, **kw):
        with lock:
            return original(self, *a, **kw)
    S3Response.put_object = atomic
    yield
    S3Response.put_object = original


def test_two_launchers_at_once_launch_exactly_one_next_attempt_and_the_other_follows_it(
        world, stub_describe, atomic_conditional_put):
    stub_describe(spot_reclaimed)
    run = detached_run(world)
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 1, instanceId=run["first"]))
    world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    f = resolve_foundation(world.clients, "dev")
    # Both reach the claim before either sends it: their conditional writes of attempts/002.json overlap.
    barrier = threading.Barrier(2, timeout=20)

    def together(params, **_kw):
        if params.get("Key", "").endswith("/attempts/002.json") and params.get("IfNoneMatch") == "*":
            barrier.wait()
    world.clients.s3.meta.events.register("provide-client-params.s3.PutObject", together)
    mark = len(world.clients.calls)
    results: Dict[str, Any] = {}

    def launcher(who: str) -> None:
        results[who] = attempts.next_attempt(world.clients, f, run_id, who, Clock(), ended_attempt=1)
    try:
        threads = [threading.Thread(target=launcher, args=(who,)) for who in ("keeper", "cli")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        world.clients.s3.meta.events.unregister("provide-client-params.s3.PutObject", together)
    actions = sorted(d.action for d in results.values())
    assert actions == ["followed", "launched"]
    assert all(d.attempt == 2 for d in results.values())
    assert len(run_requests(world, mark)) == 1
    assert attempt_tags(world, run_id) == ["1", "2"]
    winner = next(who for who, d in results.items() if d.action == "launched")
    assert read_json(world, "dev/runs/%s/attempts/002.json" % run_id)["launchedBy"] == winner


# --- waiting for capacity ------------------------------------------------------------------------------------------

def test_no_capacity_makes_a_one_time_schedule_then_its_retry_launches(world, stub_describe, no_capacity):
    stub_describe(spot_reclaimed)
    no_capacity[0] = False
    run = detached_run(world, ["--spot"])
    run_id = run["run_id"]
    no_capacity[0] = True
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 1, instanceId=run["first"]))
    world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    clock = Clock()
    result = the_keeper(world, clock).handle(ec2_event(run["first"], "terminated"))
    assert (result["action"], result["attempt"]) == ("waiting", 2)
    s = status_of(world, run_id)
    assert s["state"] == "pending"
    assert re.match(r"^waiting for capacity since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(next try at ", s["reason"])
    schedule = world.clients.scheduler.get_schedule(GroupName=GROUP, Name=result["schedule"])
    # CreateSchedule (API Reference): Name 1..64 of [0-9a-zA-Z-_.]; a one-time schedule is at(yyyy-mm-ddThh:mm:ss).
    assert re.match(r"^[0-9a-zA-Z_.-]{1,64}$", schedule["Name"])
    retry_at = clock() + timedelta(minutes=2)
    assert schedule["ScheduleExpression"] == "at(%s)" % (retry_at.replace(microsecond=0) + timedelta(
        seconds=1 if retry_at.microsecond else 0)).strftime("%Y-%m-%dT%H:%M:%S")
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert (schedule["Target"]["Arn"], schedule["Target"]["RoleArn"]) == (FUNCTION, ROLE)
    payload = json.loads(schedule["Target"]["Input"])
    assert payload == {"chronos": "retry", "environment": "dev", "runId": run_id}
    # The first retry still finds none: the next schedule waits twice as long.
    clock.at = retry_at
    again = the_keeper(world, clock).handle(payload)
    assert again["action"] == "waiting" and again["schedule"] != result["schedule"]
    second = world.clients.scheduler.get_schedule(GroupName=GROUP, Name=again["schedule"])
    assert second["ScheduleExpression"].startswith("at(%s" % (retry_at + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M"))
    # Capacity comes back: the schedule's retry launches attempt 2.
    no_capacity[0] = False
    clock.at = retry_at + timedelta(minutes=4)
    launched = the_keeper(world, clock).handle(payload)
    assert (launched["action"], launched["attempt"]) == ("launched", 2)
    assert attempt_tags(world, run_id) == ["1", "2"]
    assert "after waiting for capacity since" in status_of(world, run_id)["reason"]
    # A late duplicate of the schedule's call does nothing.
    assert the_keeper(world, clock).handle(payload)["action"] == "nothing"


def test_the_capacity_wait_ends_in_failed_and_the_end_event(world, stub_describe, no_capacity):
    stub_describe(spot_reclaimed)
    no_capacity[0] = False
    run = detached_run(world, ["--spot", "--wait-for-capacity", "10m"])
    run_id = run["run_id"]
    assert read_json(world, "dev/runs/%s/spec.json" % run_id)["policy"]["capacityWaitSeconds"] == 600
    no_capacity[0] = True
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 1, instanceId=run["first"]))
    world.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    clock = Clock()
    assert the_keeper(world, clock).handle(ec2_event(run["first"], "terminated"))["action"] == "waiting"
    clock.at += timedelta(minutes=11)
    result = the_keeper(world, clock).handle({"chronos": "retry", "environment": "dev", "runId": run_id})
    assert (result["action"], result["state"]) == ("ended", "failed")
    assert "for the whole capacity wait of 600 s" in status_of(world, run_id)["reason"]
    assert [e["detail"]["state"] for e in ended_events(world)] == ["failed"]


def test_the_first_attempt_waits_for_capacity_in_the_launcher_then_launches(world):
    tries = [0]

    def two_rounds_without(**_kw):
        tries[0] += 1
        if tries[0] <= 4:  # two rounds of two zones
            raise aws_error("InsufficientInstanceCapacity", operation="RunInstances")
    world.clients.ec2_launch.meta.events.register("before-call.ec2.RunInstances", two_rounds_without)
    try:
        r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--instance-types", "t3.micro", "--spot",
                        "--detach", "--", "true"])
    finally:
        world.clients.ec2_launch.meta.events.unregister("before-call.ec2.RunInstances", two_rounds_without)
    assert r.code == 0, r.stderr()
    assert "waiting for capacity since" in r.stderr()
    assert "attempt 1 launched after waiting for capacity since" in r.stderr()
    run_id = r.stdout().strip()
    assert attempt_tags(world, run_id) == ["1"]
    assert tries[0] == 5


def test_wait_for_capacity_must_be_a_duration(world):
    r = cli(world, ["run", "--env", "dev", "--dir", workdir(world), "--wait-for-capacity", "soon", "--", "true"])
    assert r.code == 2
    assert "--wait-for-capacity 'soon' is not a duration" in r.stderr()


# --- resume --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["stopped", "timed-out", "failed", "interrupted"])
def test_resume_continues_a_run_from_each_terminal_state_as_its_next_attempt(world, state):
    run = detached_run(world)
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, state, 1, instanceId=run["first"],
                                                          lastCheckpoint={"sequence": 4, "at": "x"}))
    put(world, "dev/runs/%s/control.json" % run_id, {"schemaVersion": 1, "action": "stop", "requestedAt": "x"})
    mark = len(world.clients.calls)
    r = cli(world, ["resume", run_id, "--env", "dev", "--instance-types", "t3.small", "--on-demand",
                    "--max-run-lifetime", "2h"])
    assert r.code == 0, r.stderr()
    assert r.stdout() == "%s\n" % run_id
    requests = run_requests(world, mark)
    assert len(requests) == 1
    assert requests[0]["InstanceType"] == "t3.small" and "InstanceMarketOptions" not in requests[0]
    assert {t["Key"]: t["Value"] for t in requests[0]["TagSpecifications"][0]["Tags"]}["ChronosAttempt"] == "2"
    assert run_id_of(requests[0]) == run_id
    record = read_json(world, "dev/runs/%s/attempts/002.json" % run_id)
    assert record["launchedBy"] == "resume"
    assert record["overrides"] == {"instanceTypes": ["t3.small"], "markets": ["on-demand"],
                                   "maxRunLifetimeSeconds": 7200}
    spec = read_json(world, "dev/runs/%s/spec.json" % run_id)
    assert spec["maxRunLifetimeSeconds"] == 7200 and spec["policy"]["instanceTypes"] == ["t3.small"]
    # The stop request that ended it would stop the new attempt at once: resume replaces it (no delete: the
    # launcher's grant denies deletes under runs/, docs/IAM.md row 47).
    assert read_json(world, "dev/runs/%s/control.json" % run_id)["action"] == "resume"
    assert not any(op == "DeleteObject" for op, _ in world.clients.calls[mark:])
    s = status_of(world, run_id)
    assert (s["state"], s["attempt"]) == ("pending", 2)
    assert s["reason"].startswith("resume: attempt 2 launched after the run ended %s (attempt 1)" % state)


@pytest.mark.parametrize("state", ["running", "pending", "succeeded"])
def test_resume_refuses_a_run_that_runs_or_succeeded_in_one_line(world, state):
    run = detached_run(world)
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, state, 1))
    mark = len(world.clients.calls)
    r = cli(world, ["resume", run_id, "--env", "dev"])
    assert r.code == 1
    assert r.stderr() == ("chronos-training: error: run %s is %s: resume continues a run that ended stopped, timed-out, "
                          "failed or interrupted\n" % (run_id, state))
    assert run_requests(world, mark) == []


def test_the_python_api_resumes_too(world):
    import chronos_training
    run = detached_run(world)
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "timed-out", 1))
    resumed = chronos_training.resume("dev", run_id, clients=world.clients)
    assert resumed.run_id == run_id
    assert attempt_tags(world, run_id) == ["1", "2"]
    # Its first end was published; its second end, after the resume, is published too.
    ended_events(world)
    assert attempts.publish_end_event(world.clients, resolve_foundation(world.clients, "dev"), run_id,
                                      datetime.now(timezone.utc)) is False  # attempt 2 is pending: no end to publish
    second = next(i for i in instances_of(world, run_id) if tags_of(i)["ChronosAttempt"] == "2")
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "succeeded", 2, instanceId=second["InstanceId"],
                                                          exitCode=0))
    world.clients.ec2.terminate_instances(InstanceIds=[second["InstanceId"]])
    assert the_keeper(world).handle(ec2_event(second["InstanceId"], "terminated"))["action"] == "ended"
    assert [(e["detail"]["state"], e["detail"]["attempts"]) for e in ended_events(world)] == [("succeeded", 2)]


# --- shapes AWS checks and moto does not ---------------------------------------------------------------------------

def test_schedule_names_fit_schedulers_limits_for_the_longest_run_id():
    longest = "a" * 40 + "-20261201-120000-abcdef"
    assert len(longest) == 63 and contract.is_run_id(longest)
    name = keeper.schedule_name(longest, 999, 999)
    assert re.match(r"^[0-9a-zA-Z_.-]{1,64}$", name)
    assert keeper.schedule_name(longest, 2, 1) != keeper.schedule_name(longest[:-1] + "0", 2, 1)
    assert keeper.at_expression(datetime(2026, 12, 1, 12, 0, 0, 1, tzinfo=timezone.utc)) == "at(2026-12-01T12:00:01)"


def test_the_end_event_entry_has_source_and_detail_type_and_stays_under_256_kb():
    detail = {"environment": "dev", "runId": "r-20261201-000000-abcdef", "name": None, "state": "failed",
              "reason": "x" * 300000, "attempts": 1, "durationSeconds": 5, "estimatedCostUsd": None,
              "costIsEstimate": True, "logsCommand": "chronos-training logs r --env dev"}
    entry = attempts.end_event_entry(detail)
    assert entry["Source"] == "chronos.training" and entry["DetailType"] == "Chronos Training Run Ended"
    assert len(entry["Detail"].encode()) + len(entry["Source"]) + len(entry["DetailType"]) <= 256 * 1024
    assert json.loads(entry["Detail"])["state"] == "failed"


def test_the_handler_reads_its_environment_and_its_own_arn_from_the_context(monkeypatch):
    for k in ("CHRONOS_ENVIRONMENT", "CHRONOS_SCHEDULE_GROUP", "CHRONOS_SCHEDULER_ROLE_ARN"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(RuntimeError, match="CHRONOS_ENVIRONMENT, CHRONOS_SCHEDULE_GROUP, CHRONOS_SCHEDULER_ROLE_ARN"):
        keeper.handler({}, None)
    monkeypatch.setenv("CHRONOS_ENVIRONMENT", "dev")
    monkeypatch.setenv("CHRONOS_SCHEDULE_GROUP", GROUP)
    monkeypatch.setenv("CHRONOS_SCHEDULER_ROLE_ARN", ROLE)
    k = keeper.keeper_from_environment(type("Context", (), {"invoked_function_arn": FUNCTION})(), clients=object())
    assert (k.environment, k.schedule_group, k.scheduler_role_arn, k.function_arn) == ("dev", GROUP, ROLE, FUNCTION)


def test_logs_follow_waits_for_the_keepers_next_attempt_after_an_interrupted_one(world):
    """The keeper launches when EC2 reclaims the instance, up to two minutes after the spot notice (and more while it
    waits for capacity): `logs --follow` gives a next attempt ten minutes before it calls the run over."""
    run = detached_run(world)
    run_id = run["run_id"]
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 1))
    tick = [0]

    def keeper_later():
        tick[0] += 1
        if tick[0] == 5:  # five minutes later
            put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "succeeded", 2, exitCode=0))
    r = cli(world, ["logs", run_id, "--env", "dev", "--follow"], keeper_later, poll=60)
    assert r.code == 0, r.stderr()
    assert "run %s succeeded" % run_id in r.stderr()
    put(world, "dev/runs/%s/status.json" % run_id, status(run_id, "interrupted", 3))
    quiet = cli(world, ["logs", run_id, "--env", "dev", "--follow"], poll=60)
    assert quiet.code == 1
    assert "attempt 3 was interrupted and no next attempt started" in quiet.stderr()
    assert tick[0] == 5
