#!/usr/bin/env python3
"""The run keeper of the local run loop (scripts/local/run-loop.js): `chronos_training.keeper.handler` run as a local
Python process against the emulator (AWS_ENDPOINT_URL), as Lambda would run it, with the environment of interfaces
the construct gives the function. Its configuration is the deployed function's, when the emulator has one whose
environment names the environment (CHRONOS_ENVIRONMENT); else computed here (a schedule group made if missing).

Subcommands (each prints one JSON document on stdout):
  observe ENV                     an SQS queue and an EventBridge rule that routes the end events of ENV to it
  wait-ended RUN ATTEMPT SECONDS  waits until the instance of RUN's ATTEMPT is terminated in the emulator
  event ENV INSTANCE STATE [--no-capacity-tries N]
                                  delivers an EC2 state-change event in the shape AWS documents to the handler; with
                                  --no-capacity-tries, the first N RunInstances of this process fail with
                                  InsufficientInstanceCapacity (moto never runs out of capacity: the fault the loop
                                  injects)
  fire-schedules ENV              invokes the handler with the input of each schedule of the keeper's group, then
                                  deletes it (ActionAfterCompletion DELETE); the loop does not wait for their time
  ended QUEUE_URL                 the end events the queue received
  wait-status RUN STATE SECONDS   waits until RUN's status.json says STATE
"""
import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any, Dict, List

import boto3
from botocore.exceptions import ClientError

from chronos_training import keeper
from chronos_training.clients import Clients
from chronos_training.foundation import resolve_foundation

REGION = os.environ.get("AWS_REGION", "us-east-1")
ACCOUNT = "123456789012"


def client(name: str) -> Any:
    return boto3.client(name, region_name=REGION)


def schedule_group(name: str) -> str:
    """The schedule group `name`, made in the emulator when absent: moto's CloudFormation skips the stack's
    AWS::Scheduler::ScheduleGroup (a type it does not model), and its CreateSchedule in a missing group is a 500.
    Made once: moto 5.2.5 replaces a group made again, and its schedules with it (AWS answers ConflictException)."""
    scheduler = client("scheduler")
    if name not in [g["Name"] for g in scheduler.list_schedule_groups().get("ScheduleGroups", [])]:
        scheduler.create_schedule_group(Name=name)
    return name


def configuration(env: str) -> Dict[str, str]:
    """The keeper's environment and ARN: the deployed function's, else computed."""
    try:
        for page in client("lambda").get_paginator("list_functions").paginate():
            for fn in page.get("Functions", []):
                variables = (fn.get("Environment") or {}).get("Variables") or {}
                if variables.get("CHRONOS_ENVIRONMENT") == env:
                    schedule_group(variables["CHRONOS_SCHEDULE_GROUP"])
                    return dict(variables, FUNCTION_ARN=fn["FunctionArn"], SOURCE="the deployed function %s" % fn["FunctionName"])
    except ClientError:
        pass
    group = schedule_group("chronos-training-keeper-%s" % env)
    return {"CHRONOS_ENVIRONMENT": env, "CHRONOS_SCHEDULE_GROUP": group,
            "CHRONOS_SCHEDULER_ROLE_ARN": "arn:aws:iam::%s:role/chronos-keeper-scheduler-%s" % (ACCOUNT, env),
            "FUNCTION_ARN": "arn:aws:lambda:%s:%s:function:chronos-keeper-%s" % (REGION, ACCOUNT, env),
            "SOURCE": "computed (no deployed keeper function in the emulator)"}


class Context:
    def __init__(self, arn: str) -> None:
        self.invoked_function_arn = arn


def invoke(env: str, event: Dict[str, Any], no_capacity_tries: int = 0) -> Dict[str, Any]:
    config = configuration(env)
    for k in ("CHRONOS_ENVIRONMENT", "CHRONOS_SCHEDULE_GROUP", "CHRONOS_SCHEDULER_ROLE_ARN"):
        os.environ[k] = config[k]
    clients = Clients(region=REGION)
    if no_capacity_tries:
        left = [no_capacity_tries]

        def refuse(**_kw: Any) -> None:
            if left[0] > 0:
                left[0] -= 1
                raise ClientError({"Error": {"Code": "InsufficientInstanceCapacity",
                                             "Message": "injected by the run loop"}}, "RunInstances")
        clients.ec2_launch.meta.events.register("before-call.ec2.RunInstances", refuse)
    lines: List[str] = []
    result = keeper.keeper_from_environment(Context(config["FUNCTION_ARN"]), clients=clients)
    result.log = lines.append
    return {"result": result.handle(event), "log": lines, "configuration": config["SOURCE"]}


def ec2_event(instance_id: str, state: str) -> Dict[str, Any]:
    """EventBridge User Guide, "Amazon EC2 events"; EC2 User Guide, "State change events": an "EC2 Instance
    State-change Notification" carries the instance ID and its new state, and no tags."""
    return {"version": "0", "id": "00000000-0000-0000-0000-%012d" % int(time.time() * 1000 % 10 ** 12),
            "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "account": ACCOUNT,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
            "resources": ["arn:aws:ec2:%s:%s:instance/%s" % (REGION, ACCOUNT, instance_id)],
            "detail": {"instance-id": instance_id, "state": state}}


def instance_of(run_id: str, attempt: str) -> Dict[str, Any]:
    reply = client("ec2").describe_instances(Filters=[{"Name": "tag:ChronosRunId", "Values": [run_id]},
                                                      {"Name": "tag:ChronosAttempt", "Values": [attempt]}])
    found = [i for r in reply["Reservations"] for i in r["Instances"]]
    return found[0] if found else {}


def main(argv: List[str]) -> int:
    command = argv[0]
    if command == "observe":
        env = argv[1]
        sqs = client("sqs")
        url = sqs.create_queue(QueueName="chronos-ended-%s" % env)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = client("events")
        events.put_rule(Name="chronos-ended-%s" % env, EventPattern=json.dumps(
            {"source": ["chronos.training"], "detail-type": ["Chronos Training Run Ended"],
             "detail": {"environment": [env]}}))
        events.put_targets(Rule="chronos-ended-%s" % env, Targets=[{"Id": "queue", "Arn": arn}])
        out: Any = {"queueUrl": url}
    elif command == "wait-ended":
        run_id, attempt, seconds = argv[1], argv[2], float(argv[3])
        deadline = time.time() + seconds
        while True:
            i = instance_of(run_id, attempt)
            if (i.get("State") or {}).get("Name") == "terminated" or time.time() > deadline:
                break
            time.sleep(1)
        out = {"instanceId": i.get("InstanceId"), "state": (i.get("State") or {}).get("Name")}
    elif command == "event":
        env, instance_id, state = argv[1], argv[2], argv[3]
        tries = int(argv[argv.index("--no-capacity-tries") + 1]) if "--no-capacity-tries" in argv else 0
        out = invoke(env, ec2_event(instance_id, state), tries)
    elif command == "fire-schedules":
        env = argv[1]
        config = configuration(env)
        scheduler = client("scheduler")
        fired = []
        for s in scheduler.list_schedules(GroupName=config["CHRONOS_SCHEDULE_GROUP"]).get("Schedules", []):
            detail = scheduler.get_schedule(GroupName=config["CHRONOS_SCHEDULE_GROUP"], Name=s["Name"])
            result = invoke(env, json.loads(detail["Target"]["Input"]))
            scheduler.delete_schedule(GroupName=config["CHRONOS_SCHEDULE_GROUP"], Name=s["Name"])
            fired.append({"name": s["Name"], "expression": detail["ScheduleExpression"], **result})
        out = {"fired": fired}
    elif command == "ended":
        sqs = client("sqs")
        messages = sqs.receive_message(QueueUrl=argv[1], MaxNumberOfMessages=10).get("Messages") or []
        out = {"events": [json.loads(m["Body"]) for m in messages]}
    elif command == "wait-status":
        run_id, state, seconds = argv[1], argv[2], float(argv[3])
        f = resolve_foundation(Clients(region=REGION), run_id.split("/")[0] if "/" in run_id else "dev")
        deadline = time.time() + seconds
        s3 = client("s3")
        doc: Dict[str, Any] = {}
        while time.time() < deadline:
            try:
                doc = json.loads(s3.get_object(Bucket=f.bucket, Key="dev/runs/%s/status.json" % run_id)["Body"].read())
            except ClientError:
                doc = {}
            if doc.get("state") == state:
                break
            time.sleep(1)
        out = {"status": doc}
    else:
        print("unknown command %s" % command, file=sys.stderr)
        return 2
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
