"""Every AWS call the run keeper's handler makes is one its role allows: the handler runs through its paths against moto
(an interrupted attempt and its next one, no capacity and the schedule, the schedule's retry and its launch, the ends
with their cost estimates and end events), every request is recorded (service, operation), each is mapped to the IAM
actions it needs, and the set must be within keeper.AWS_ACTIONS, which test/keeper/training-run-keeper.actions.test.ts
checks against the synthesized role with the IAM policy simulator.

The map follows the Service Authorization Reference ("Actions, resources, and condition keys"): for Amazon S3,
ListObjectsV2 is authorized as s3:ListBucket and HeadObject as s3:GetObject; for Amazon EC2, RunInstances with
TagSpecifications also needs ec2:CreateTags (EC2 User Guide, "Grant permission to tag resources during creation") and
a launch template with an instance profile needs iam:PassRole on its role (IAM User Guide, "Grant a user permissions to
pass a role to an AWS service"); EventBridge Scheduler's CreateSchedule needs iam:PassRole on the schedule's execution
role (EventBridge Scheduler User Guide, "Set up the execution role"); the Price List Query API's service prefix is
`pricing` (its endpoint's is api.pricing).
"""
import re
from datetime import timedelta
from typing import Dict, List, Set, Tuple

import boto3
import pytest

from chronos_training import keeper
from test_keeper_moto import (Clock, detached_run, ec2_event, no_capacity, put, spot_reclaimed, status,  # noqa: F401
                              stub_describe, the_keeper, world)

#: (botocore service name, operation) -> the IAM actions the request needs.
ACTIONS_OF: Dict[Tuple[str, str], Tuple[str, ...]] = {
    ("ec2", "DescribeInstances"): ("ec2:DescribeInstances",),
    ("ec2", "DescribeInstanceTypeOfferings"): ("ec2:DescribeInstanceTypeOfferings",),
    ("ec2", "DescribeInstanceTypes"): ("ec2:DescribeInstanceTypes",),
    ("ec2", "DescribeLaunchTemplateVersions"): ("ec2:DescribeLaunchTemplateVersions",),
    ("ec2", "DescribeSpotPriceHistory"): ("ec2:DescribeSpotPriceHistory",),
    ("ec2", "RunInstances"): ("ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"),
    ("s3", "GetObject"): ("s3:GetObject",),
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "PutObject"): ("s3:PutObject",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "DeleteObject"): ("s3:DeleteObject",),
    ("ssm", "GetParametersByPath"): ("ssm:GetParametersByPath",),
    ("ssm", "GetParameters"): ("ssm:GetParameters",),
    ("ssm", "GetParameter"): ("ssm:GetParameter",),
    ("cloudformation", "ListExports"): ("cloudformation:ListExports",),
    ("scheduler", "CreateSchedule"): ("scheduler:CreateSchedule", "iam:PassRole"),
    ("scheduler", "DeleteSchedule"): ("scheduler:DeleteSchedule",),
    ("events", "PutEvents"): ("events:PutEvents",),
    ("pricing", "GetProducts"): ("pricing:GetProducts",),
}


def actions_of(requests: List[Tuple[str, str]]) -> Set[str]:
    """The IAM actions of the recorded requests; an unmapped request fails the test with its name."""
    unmapped = sorted({"%s:%s" % r for r in requests if r not in ACTIONS_OF})
    assert not unmapped, "requests with no IAM action in ACTIONS_OF (add them, and to keeper.AWS_ACTIONS): %s" % unmapped
    return {a for r in requests for a in ACTIONS_OF[r]}


class Handled:
    """Runs the keeper's handler and keeps the requests made during its calls only (not the test's own setup)."""

    def __init__(self, w) -> None:
        self.w = w
        self.requests: List[Tuple[str, str]] = []

    def __call__(self, event, clock=None):
        mark = len(self.w.clients.requests)
        try:
            return the_keeper(self.w, clock).handle(event)
        finally:
            self.requests.extend(self.w.clients.requests[mark:])


@pytest.fixture
def priced(world, monkeypatch):
    """The clients with a (recorded) Price List client, so that the cost estimate of an on-demand attempt calls
    GetProducts (moto answers 404: the estimate says why the cost is unknown, and the end event goes out)."""
    pricing = world.clients.record(boto3.client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                                                aws_secret_access_key="testing"))
    monkeypatch.setattr(world.clients, "pricing", pricing, raising=False)
    return world


def test_every_request_of_the_handlers_paths_needs_only_actions_in_aws_actions(priced, stub_describe, no_capacity):
    w = priced
    handle = Handled(w)
    stub_describe(spot_reclaimed)
    no_capacity[0] = False

    # An interrupted spot attempt: shutting-down (its status still runs: wait), then terminated: the next attempt.
    run = detached_run(w, ["--spot"])
    put(w, "dev/runs/%s/status.json" % run["run_id"], status(run["run_id"], "running", 1, instanceId=run["first"]))
    w.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    assert handle(ec2_event(run["first"], "shutting-down"))["action"] == "nothing"
    assert handle(ec2_event(run["first"], "terminated"))["action"] == "launched"
    assert handle(ec2_event(run["first"], "terminated"))["action"] == "followed"

    # No capacity: a schedule; its retry payload, with capacity back: the launch.
    run = detached_run(w, ["--spot"])
    put(w, "dev/runs/%s/status.json" % run["run_id"], status(run["run_id"], "interrupted", 1, instanceId=run["first"]))
    w.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    clock = Clock()
    no_capacity[0] = True
    waiting = handle(ec2_event(run["first"], "terminated"), clock)
    assert waiting["action"] == "waiting" and waiting["schedule"]
    no_capacity[0] = False
    clock.at += timedelta(minutes=3)
    assert handle(keeper.retry_payload("dev", run["run_id"]), clock)["action"] == "launched"

    # A terminal state of an on-demand attempt: the end, its cost estimate (Price List) and its event.
    run = detached_run(w, ["--on-demand"])
    put(w, "dev/runs/%s/status.json" % run["run_id"], status(run["run_id"], "failed", 1, instanceId=run["first"],
                                                              lifecycle="on-demand", exitCode=3, reason="exit 3"))
    w.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    assert handle(ec2_event(run["first"], "terminated"))["action"] == "ended"

    # A capacity wait that runs out on a spot run: the end, its cost estimate (spot price history) and its event.
    run = detached_run(w, ["--spot", "--wait-for-capacity", "10m"])
    put(w, "dev/runs/%s/status.json" % run["run_id"], status(run["run_id"], "interrupted", 1, instanceId=run["first"]))
    w.clients.ec2.terminate_instances(InstanceIds=[run["first"]])
    clock = Clock()
    no_capacity[0] = True
    assert handle(ec2_event(run["first"], "terminated"), clock)["action"] == "waiting"
    clock.at += timedelta(minutes=11)
    assert handle(keeper.retry_payload("dev", run["run_id"]), clock)["action"] == "ended"

    used = actions_of(handle.requests)
    # The paths did run: each part of the handler was reached.
    for needed in ("ec2:DescribeInstances", "ec2:RunInstances", "s3:GetObject", "s3:PutObject", "s3:ListBucket",
                   "ssm:GetParametersByPath", "scheduler:CreateSchedule", "events:PutEvents",
                   "ec2:DescribeSpotPriceHistory", "pricing:GetProducts"):
        assert needed in used, (needed, sorted(set(handle.requests)))
    missing = sorted(used - set(keeper.AWS_ACTIONS))
    assert missing == [], "the handler needs actions that keeper.AWS_ACTIONS does not list: %s" % missing


def test_aws_actions_is_a_tuple_of_distinct_iam_action_names():
    assert isinstance(keeper.AWS_ACTIONS, tuple) and len(set(keeper.AWS_ACTIONS)) == len(keeper.AWS_ACTIONS)
    for action in keeper.AWS_ACTIONS:
        # Service Authorization Reference: `prefix:Action`, a lowercase service prefix and a PascalCase action.
        assert re.match(r"^[a-z][a-z0-9-]*:[A-Z][A-Za-z0-9]+$", action), action


def test_an_unmapped_request_fails_with_its_name():
    with pytest.raises(AssertionError, match=r"ec2:DescribeVolumes"):
        actions_of([("ec2", "DescribeInstances"), ("ec2", "DescribeVolumes")])
