"""How the launcher reads the end of an attempt's instance. The codes are EC2's, as the EC2 API Reference,
"StateReason" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html) lists them:
Server.SpotInstanceTermination / Server.SpotInstanceShutdown (the Spot service reclaimed it),
Client.UserInitiatedShutdown ("shut down using the Amazon EC2 API"), Client.InstanceInitiatedShutdown ("shut down from
the operating system of the instance"), Client.InternalError ("a client error caused the instance to terminate during
launch"). StateTransitionReason holds the time of the change, e.g. "User initiated (2026-12-01 12:00:00 GMT)" (EC2 API
Reference, Instance). Moto sets only Client.UserInitiatedShutdown (test_launcher_moto.py runs that one)."""
import re
from datetime import datetime, timezone

import pytest

from chronos_training.watchdog import end_of

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)


def instance(state, code=None, **extra):
    doc = {"InstanceId": "i-0123456789abcdef0", "State": {"Name": state},
           "LaunchTime": datetime(2026, 12, 1, 11, 0, 0, tzinfo=timezone.utc),
           "Tags": [{"Key": "MaxLifetimeHours", "Value": "1.25"}]}
    if code:
        doc["StateReason"] = {"Code": code, "Message": "%s: message" % code}
    doc.update(extra)
    return doc


@pytest.mark.parametrize("state", ["pending", "running"])
def test_an_instance_that_runs_has_not_ended(state):
    assert end_of(instance(state), NOW) is None


@pytest.mark.parametrize("state,code", [("terminated", "Server.SpotInstanceTermination"),
                                        ("stopped", "Server.SpotInstanceShutdown")])
def test_a_spot_reclaim_the_run_goes_on(state, code):
    end = end_of(instance(state, code), NOW)
    assert (end.resumable, end.reaper, end.reason) == (True, False, "EC2 reclaimed the spot instance (%s)" % code)


@pytest.mark.parametrize("code,reason", [
    ("Client.UserInitiatedShutdown", r"terminated or stopped through the EC2 API or console"),
    ("Client.InstanceInitiatedShutdown", r"shut down from its own operating system"),
    ("Client.InternalError", r"EC2 ended it during launch \(Client\.InternalError: Client\.InternalError: message\); "
                             r".*KMS key"),
    ("Server.InternalError", r"it is terminated \(Server\.InternalError: Server\.InternalError: message\)"),
    (None, r"it is terminated \(EC2 gave no StateReason\)")])
def test_terminated_by_code_the_run_ends_with_the_reason_in_words(code, reason):
    end = end_of(instance("terminated", code), NOW)
    assert end.resumable is False and end.reaper is False
    assert re.search(reason, end.reason)


# The run reaper terminates through the API an instance older than its MaxLifetimeHours tag, counted from LaunchTime.
def test_terminated_through_the_api_after_its_max_lifetime_hours_tag_the_run_reaper():
    late = end_of(instance("terminated", "Client.UserInitiatedShutdown",
                           StateTransitionReason="User initiated (2026-12-01 12:15:00 GMT)"), NOW)
    assert late.resumable is False and late.reaper is True and "the run reaper terminated it" in late.reason
    # The same end 14 minutes earlier (1 h 01 m after launch) is within the tag: a user's, not the reaper's.
    early = end_of(instance("terminated", "Client.UserInitiatedShutdown",
                            StateTransitionReason="User initiated (2026-12-01 12:01:00 GMT)"), NOW)
    assert early.reaper is False
