"""The run keeper (issue 29): an AWS Lambda handler, `chronos_training.keeper.handler`, that launches a run's next
attempt when nobody is attached, waits for capacity with one-time EventBridge Scheduler schedules, and publishes the
run's end event. It bills nothing while idle: EventBridge starts it.

Events:
- EC2 "EC2 Instance State-change Notification" (source `aws.ec2`, `detail.state` `shutting-down` or `terminated`), for
  every instance of the account and region: the event has no tags, so the keeper reads the instance with
  DescribeInstances and ignores any without a `ChronosRunId` tag or of another `Environment` (EventBridge User Guide,
  "Amazon EC2 events"; EC2 User Guide, "State change events").
- Its own retry schedules' input: `{"chronos": "retry", "environment": ENV, "runId": ID}`.

Environment: `CHRONOS_ENVIRONMENT` (the environment name), `CHRONOS_SCHEDULE_GROUP` (the schedule group),
`CHRONOS_SCHEDULER_ROLE_ARN` (the role Scheduler assumes to invoke the keeper). The keeper's own ARN is the
invocation's `context.invoked_function_arn`. Every decision is written into the run's status.json (attempts.py).
"""
import hashlib
import json
import os
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional

from . import attempts, contract
from .clients import Clients
from .errors import error_code
from .foundation import Foundation, resolve_foundation
from .store import tag_of
from .watchdog import end_of

#: Every IAM action the handler's AWS calls need, one entry per action (docs/IAM.md, "The run keeper"; the keeper's role
#: is built in src/keeper/training-run-keeper.ts). tests/test_keeper_actions.py runs the handler's paths against moto
#: and fails on a call whose action is not here; test/keeper/training-run-keeper.actions.test.ts reads this tuple and
#: fails on an action the role does not allow. Operations map to actions as the Service Authorization Reference says:
#: ListObjectsV2 is s3:ListBucket; GetObject (and HeadObject) s3:GetObject; RunInstances needs ec2:RunInstances, and
#: ec2:CreateTags for its TagSpecifications and iam:PassRole for the launch template's instance profile (EC2 User
#: Guide, "Grant permission to tag resources during creation"; IAM User Guide, "Grant a user permissions to pass a role
#: to an AWS service"); CreateSchedule needs iam:PassRole for the schedule's execution role (EventBridge Scheduler
#: User Guide, "Set up the execution role"). Not here on purpose: s3:DeleteObject, which publish_end_event calls only to
#: give its claim back after a failed PutEvents, best effort (the role denies deletes under runs/: the event is lost).
AWS_ACTIONS = (
    # The instance of a state change, and the launch of the next attempt (ec2launch.py).
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:RunInstances",
    "ec2:CreateTags",
    "iam:PassRole",
    # The foundation: its SSM parameters, or its CloudFormation exports; the image's public parameter.
    "ssm:GetParametersByPath",
    "ssm:GetParameters",
    "cloudformation:ListExports",
    # The run's documents under {environment}/runs/.
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    # Waiting for capacity: a one-time schedule in the keeper's group.
    "scheduler:CreateSchedule",
    # The end: the cost estimate and the end event.
    "ec2:DescribeSpotPriceHistory",
    "pricing:GetProducts",
    "events:PutEvents",
)

#: The instance states after which an attempt is over (the event's `detail.state`).
END_STATES = ("shutting-down", "terminated")


def schedule_name(run_id: str, attempt: int, round_number: int) -> str:
    """A schedule's name: at most 64 characters of [0-9a-zA-Z-_.] (EventBridge Scheduler API Reference,
    CreateSchedule, Name: "Length Constraints: Minimum length of 1. Maximum length of 64", pattern `[0-9a-zA-Z-_.]+`),
    unique per run, attempt and retry round."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return "chronos-%s-%s-a%03d-r%03d" % (run_id[:35].rstrip("-"), digest, attempt, round_number)


def at_expression(when: datetime) -> str:
    """`at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded up to the next whole second (CreateSchedule, ScheduleExpression)."""
    when = when.astimezone(timezone.utc)
    if when.microsecond:
        from datetime import timedelta
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return "at(%s)" % when.strftime("%Y-%m-%dT%H:%M:%S")


class Keeper:
    """The keeper of one environment: `handle(event)` for each event; `now` is the clock (tests pass their own)."""

    def __init__(self, clients: Any, environment: str, schedule_group: str, scheduler_role_arn: str,
                 function_arn: str, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 log: Callable[[str], None] = print) -> None:
        self.clients, self.environment = clients, environment
        self.schedule_group, self.scheduler_role_arn, self.function_arn = schedule_group, scheduler_role_arn, function_arn
        self.now, self.log = now, log
        self._foundation: Optional[Foundation] = None

    @property
    def foundation(self) -> Foundation:
        if self._foundation is None:
            self._foundation = resolve_foundation(self.clients, self.environment)
        return self._foundation

    def handle(self, event: Dict[str, Any]) -> Dict[str, Any]:
        if event.get("chronos") == "retry":
            if event.get("environment") != self.environment:
                return self._result("ignored", "a retry of environment %r" % event.get("environment"))
            run_id = str(event.get("runId") or "")
            if not contract.is_run_id(run_id):
                return self._result("ignored", "a retry without a valid runId")
            decision = attempts.retry_capacity(self.clients, self.foundation, run_id, "keeper", self.now, self._log(run_id))
            return self._after(run_id, decision)
        if event.get("source") == "aws.ec2" and event.get("detail-type") == "EC2 Instance State-change Notification":
            detail = event.get("detail") or {}
            if detail.get("state") not in END_STATES:
                return self._result("ignored", "instance state %s" % detail.get("state"))
            return self._instance_ended(str(detail.get("instance-id") or ""), str(detail.get("state")))
        return self._result("ignored", "an event the keeper does not know")

    def _log(self, run_id: str) -> Callable[[str], None]:
        return lambda line: self.log("[chronos keeper] %s: %s" % (run_id, line))

    def _result(self, action: str, reason: str, **extra: Any) -> Dict[str, Any]:
        self.log("[chronos keeper] %s: %s" % (action, reason))
        return dict({"action": action, "reason": reason}, **extra)

    def _instance_ended(self, instance_id: str, event_state: str) -> Dict[str, Any]:
        if not instance_id.startswith("i-"):
            return self._result("ignored", "no instance-id in the event")
        reply = self.clients.ec2.describe_instances(InstanceIds=[instance_id])
        found = [i for r in reply.get("Reservations", []) for i in r.get("Instances", [])]
        if not found:
            return self._result("ignored", "%s is not found" % instance_id)
        instance = found[0]
        run_id = tag_of(instance, "ChronosRunId")
        if not run_id or tag_of(instance, "Environment") != self.environment:
            return self._result("ignored", "%s is not a run instance of environment %s" % (instance_id, self.environment))
        attempt_tag = tag_of(instance, "ChronosAttempt") or ""
        attempt = int(attempt_tag) if attempt_tag.isdigit() else None
        end = end_of(instance, self.now())
        # While it shuts down the agent may still write its final status (a drain on SIGTERM): a status that still says
        # the attempt runs is read again at the `terminated` event.
        if event_state == "shutting-down":
            status = attempts.get_json(self.clients.s3, self.foundation.bucket,
                                       contract.status_key(self.environment, run_id)) or {}
            if status.get("attempt") == attempt and status.get("state") in ("pending", "running"):
                return self._result("nothing", "%s of run %s attempt %s is shutting down; its status still says %s: "
                                    "read again when it is terminated" % (instance_id, run_id, attempt,
                                                                          status.get("state")), runId=run_id)
        decision = attempts.next_attempt(self.clients, self.foundation, run_id, "keeper", self.now, self._log(run_id),
                                         ended_attempt=attempt, end=end)
        return self._after(run_id, decision)

    def _after(self, run_id: str, decision: attempts.Decision) -> Dict[str, Any]:
        extra: Dict[str, Any] = {"runId": run_id, "attempt": decision.attempt}
        if decision.state:
            extra["state"] = decision.state
        if decision.launched:
            extra["instanceId"] = decision.launched.instance_id
        if decision.action == "waiting" and decision.retry_at is not None:
            extra["schedule"] = self.schedule_retry(run_id, decision.attempt, decision.retry_at)
        return self._result(decision.action, decision.reason, **extra)

    def schedule_retry(self, run_id: str, attempt: int, when: datetime) -> str:
        """A one-time schedule (deleted after it ran) that invokes the keeper with the retry payload at `when`."""
        prefix = contract.run_prefix(self.environment, run_id) + "capacity/%03d-" % attempt
        round_number = len(attempts.list_keys(self.clients.s3, self.foundation.bucket, prefix)) + 1
        name = schedule_name(run_id, attempt, round_number)
        try:
            self.clients.scheduler.create_schedule(
                Name=name, GroupName=self.schedule_group, ScheduleExpression=at_expression(when),
                ScheduleExpressionTimezone="UTC", FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
                Description="chronos-training: capacity retry %d of run %s attempt %d" % (round_number, run_id, attempt),
                Target={"Arn": self.function_arn, "RoleArn": self.scheduler_role_arn,
                        "Input": json.dumps(retry_payload(self.environment, run_id))})
        except Exception as e:  # noqa: BLE001
            # Two keepers that saw the same wait make the same name: one schedule is enough.
            if error_code(e) != "ConflictException":
                raise
        return name


def retry_payload(environment: str, run_id: str) -> Dict[str, str]:
    return {"chronos": "retry", "environment": environment, "runId": run_id}


def keeper_from_environment(context: Any, clients: Optional[Any] = None) -> Keeper:
    env = os.environ
    missing = [k for k in ("CHRONOS_ENVIRONMENT", "CHRONOS_SCHEDULE_GROUP", "CHRONOS_SCHEDULER_ROLE_ARN") if not env.get(k)]
    if missing:
        raise RuntimeError("the run keeper needs the environment variables %s" % ", ".join(missing))
    return Keeper(clients or Clients(), env["CHRONOS_ENVIRONMENT"], env["CHRONOS_SCHEDULE_GROUP"],
                  env["CHRONOS_SCHEDULER_ROLE_ARN"], str(getattr(context, "invoked_function_arn", "") or ""))


def handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """The Lambda handler (`chronos_training.keeper.handler`)."""
    return keeper_from_environment(context).handle(event)
