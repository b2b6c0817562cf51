"""The launcher's fallback through zones, instance types and markets, and its vCPU quota message. Moto never returns
capacity or quota errors, so they are answered by a fake client. What each error means is EC2's: "Error codes for the
Amazon EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) lists
InsufficientInstanceCapacity ("not enough capacity to fulfill your request"), InsufficientHostCapacity,
InsufficientFreeAddressesInSubnet, MaxSpotInstanceCountExceeded, SpotMaxPriceTooLow, Unsupported,
UnfulfillableCapacity, ReservationCapacityExceeded and VcpuLimitExceeded; the EC2 User Guide's "Troubleshoot Amazon
EC2 instance launch issues" advises another zone or type after InsufficientInstanceCapacity.
InvalidParameterCombination ("an incorrect combination of parameters, or a missing parameter", same page) is a
configuration error: every zone and type would fail alike."""
import re
from types import SimpleNamespace
from typing import Callable, List, Optional

import pytest

from chronos_training.errors import ChronosError
from chronos_training.ec2launch import LaunchRequest, launch_with_fallback, quota_for, quota_message
from conftest import Fake, aws_error, raises, two_zone_foundation

FOUNDATION = two_zone_foundation("3")
REQUEST = LaunchRequest(run_id="r-20261201-120000-abcdef", attempt=1, instance_types=["g5.xlarge", "g4dn.xlarge"],
                        markets=["spot", "on-demand"], max_lifetime_hours=4)


@pytest.fixture
def ec2():
    fake = Fake()
    # No offering data (as without ec2:DescribeInstanceTypeOfferings): every pair is tried.
    fake.on("describe_instance_type_offerings", raises(aws_error("UnauthorizedOperation")))
    fake.on("describe_instance_types", lambda **_: {"InstanceTypes": [
        {"InstanceType": "g5.xlarge", "VCpuInfo": {"DefaultVCpus": 4}}]})
    return fake


def clients_of(fake):
    return SimpleNamespace(ec2=fake, ec2_launch=fake)


def tries_of(fake) -> List[str]:
    return ["%s %s %s" % ("spot" if a.get("InstanceMarketOptions", {}).get("MarketType") == "spot" else "on-demand",
                          a["InstanceType"], a["SubnetId"]) for a in fake.called("run_instances")]


def run_instances(fake, fail_with: Callable[[str, str, str], Optional[str]]) -> None:
    def answer(**a):
        market = "spot" if a.get("InstanceMarketOptions", {}).get("MarketType") == "spot" else "on-demand"
        code = fail_with(market, a["InstanceType"], a["SubnetId"])
        if code:
            raise aws_error(code)
        return {"Instances": [{"InstanceId": "i-0123456789abcdef0"}]}
    fake.on("run_instances", answer)


def test_tries_every_zone_of_a_type_then_the_next_type_spot_before_on_demand_and_says_which_won(ec2):
    run_instances(ec2, lambda m, t, s: None if (m, t, s) == ("on-demand", "g4dn.xlarge", "subnet-b")
                  else "InsufficientInstanceCapacity")
    log: List[str] = []
    won = launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST, log.append)
    assert tries_of(ec2) == [
        "spot g5.xlarge subnet-a", "spot g5.xlarge subnet-b", "spot g4dn.xlarge subnet-a", "spot g4dn.xlarge subnet-b",
        "on-demand g5.xlarge subnet-a", "on-demand g5.xlarge subnet-b", "on-demand g4dn.xlarge subnet-a",
        "on-demand g4dn.xlarge subnet-b"]
    assert (won.market, won.instance_type, won.subnet_id, won.zone, won.tries) == (
        "on-demand", "g4dn.xlarge", "subnet-b", "us-east-1b", 8)
    assert len([l for l in log if l.startswith("try ")]) == 8
    assert log[-1] == "launched i-0123456789abcdef0: on-demand g4dn.xlarge in us-east-1b (subnet-b) (try 8)"


# The capacity codes, as EC2's "Error codes for the Amazon EC2 API" spells them (not the launcher's own list).
@pytest.mark.parametrize("code", [
    "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
    "InsufficientFreeAddressesInSubnet", "MaxSpotInstanceCountExceeded", "SpotMaxPriceTooLow", "Unsupported",
    "UnfulfillableCapacity", "ReservationCapacityExceeded"])
def test_moves_on_after(ec2, code):
    run_instances(ec2, lambda _m, _t, s: code if s == "subnet-a" else None)
    won = launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST)
    assert tries_of(ec2) == ["spot g5.xlarge subnet-a", "spot g5.xlarge subnet-b"]
    assert won.zone == "us-east-1b"


# EC2 API Reference, "Error codes for the Amazon EC2 API": InvalidParameterCombination, "Indicates an incorrect
# combination of parameters, or a missing parameter" — a client error of the request, not of capacity.
def test_invalid_parameter_combination_stops_at_once_with_ec2s_message(ec2):
    message = "Network interfaces and an instance-level security groups may not be specified on the same request"
    ec2.on("run_instances", raises(aws_error("InvalidParameterCombination", message)))
    with pytest.raises(ChronosError) as e:
        launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST)
    assert ("launching spot g5.xlarge in us-east-1a (subnet-a) failed: InvalidParameterCombination: %s" % message) \
        in e.value.message
    assert tries_of(ec2) == ["spot g5.xlarge subnet-a"]


def test_launches_the_template_version_the_foundation_published_not_default(ec2):
    run_instances(ec2, lambda *_: None)
    launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST)
    assert [a["LaunchTemplate"] for a in ec2.called("run_instances")] == [
        {"LaunchTemplateId": "lt-0123456789abcdef0", "Version": "3"}]


def test_spot_only_never_tries_on_demand_and_says_there_is_no_capacity(ec2):
    run_instances(ec2, lambda *_: "InsufficientInstanceCapacity")
    with pytest.raises(ChronosError) as e:
        launch_with_fallback(clients_of(ec2), FOUNDATION, LaunchRequest(**dict(REQUEST.__dict__, markets=["spot"])))
    assert re.match(r"^no capacity: all 4 tries failed \(spot g5.xlarge in us-east-1a \(subnet-a\): "
                    r"InsufficientInstanceCapacity;.*--spot-fallback", e.value.message)
    assert all(t.startswith("spot ") for t in tries_of(ec2))


def test_skips_the_zones_that_do_not_offer_a_type_when_ec2_says_which_do(ec2):
    ec2.on("describe_instance_type_offerings", lambda **_: {"InstanceTypeOfferings": [
        {"InstanceType": "g5.xlarge", "Location": "us-east-1b"}, {"InstanceType": "g4dn.xlarge", "Location": "us-east-1a"}]})
    run_instances(ec2, lambda *_: "InsufficientInstanceCapacity")
    log: List[str] = []
    with pytest.raises(ChronosError, match="all 4 tries failed"):
        launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST, log.append)
    assert tries_of(ec2) == ["spot g5.xlarge subnet-b", "spot g4dn.xlarge subnet-a", "on-demand g5.xlarge subnet-b",
                             "on-demand g4dn.xlarge subnet-a"]
    assert "skip spot g5.xlarge in us-east-1a (subnet-a): not offered in this zone" in log


# VcpuLimitExceeded: "You have requested more vCPU capacity than your current vCPU limit of N allows for the instance
# bucket that the specified instance type belongs to" (EC2 User Guide, "Amazon EC2 service quotas": one vCPU quota per
# family and market, per Region). So the other zones and the other types of that family are skipped.
def test_a_vcpu_quota_error_skips_the_rest_of_that_quota_family_and_names_the_quota(ec2):
    run_instances(ec2, lambda _m, t, _s: "VcpuLimitExceeded" if t == "g5.xlarge" else None if t == "m5.large"
                  else "InsufficientInstanceCapacity")
    log: List[str] = []
    won = launch_with_fallback(clients_of(ec2), FOUNDATION, LaunchRequest(**dict(
        REQUEST.__dict__, instance_types=["g5.xlarge", "gr6.4xlarge", "m5.large"], markets=["on-demand"])), log.append)
    # gr6 is a G and VT type: its quota is the one g5 just found full.
    assert tries_of(ec2) == ["on-demand g5.xlarge subnet-a", "on-demand m5.large subnet-a"]
    assert won.instance_type == "m5.large"
    assert ('skip on-demand gr6.4xlarge in us-east-1a (subnet-a): the vCPU quota "Running On-Demand G and VT instances" '
            'is full (VcpuLimitExceeded above)') in log
    assert ('skip on-demand g5.xlarge in us-east-1b (subnet-b): the vCPU quota "Running On-Demand G and VT instances" '
            'is full (VcpuLimitExceeded above)') in log


def test_when_every_type_is_out_of_quota_or_capacity_the_error_names_the_quota_and_how_to_ask(ec2):
    run_instances(ec2, lambda m, _t, _s: "InsufficientInstanceCapacity" if m == "spot" else "VcpuLimitExceeded")
    with pytest.raises(ChronosError) as e:
        launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST)
    assert ('the vCPU quota "Running On-Demand G and VT instances" (L-DB2E81BA) of this region is too small for '
            'on-demand g5.xlarge (4 vCPUs) (EC2: VcpuLimitExceeded (injected)). Ask for more: aws service-quotas '
            'request-service-quota-increase --service-code ec2 --quota-code L-DB2E81BA --desired-value '
            '<your current quota + 4>') in e.value.message
    # Four spot tries, then on-demand g5.xlarge once: its other zone and g4dn (also G) are skipped.
    assert len(tries_of(ec2)) == 5


# EC2 User Guide, "Service-linked role for Spot Instances": the console creates AWSServiceRoleForEC2Spot; an API caller
# must make sure it exists. Without iam:CreateServiceLinkedRole, RunInstances answers (403)
# AuthFailure.ServiceLinkedRoleCreationNotPermitted, "The provided credentials do not have permission to create the
# service-linked role for EC2 Spot Instances" (as reported in CloudSnorkel/cdk-github-runners #182, dstackai/dstack #886).
SPOT_ROLE_MESSAGE = ("The provided credentials do not have permission to create the service-linked role for EC2 Spot "
                     "Instances.")


def test_without_the_spot_service_linked_role_says_how_to_create_it_and_goes_on_with_on_demand(ec2):
    def answer(**a):
        if a.get("InstanceMarketOptions", {}).get("MarketType") == "spot":
            raise aws_error("AuthFailure.ServiceLinkedRoleCreationNotPermitted", SPOT_ROLE_MESSAGE, 403)
        return {"Instances": [{"InstanceId": "i-0123456789abcdef0"}]}
    ec2.on("run_instances", answer)
    log: List[str] = []
    won = launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST, log.append)
    # One spot try: the role is the account's, so no other spot try can succeed.
    assert tries_of(ec2) == ["spot g5.xlarge subnet-a", "on-demand g5.xlarge subnet-a"]
    assert won.market == "on-demand"
    line = next(l for l in log if "AuthFailure" in l)
    assert re.search(r"AWSServiceRoleForEC2Spot.*aws iam create-service-linked-role --aws-service-name "
                     r"spot\.amazonaws\.com.*going on with on-demand", line)


def test_without_the_spot_service_linked_role_a_spot_only_run_stops_with_that_explanation(ec2):
    ec2.on("run_instances", raises(aws_error("AuthFailure.ServiceLinkedRoleCreationNotPermitted", SPOT_ROLE_MESSAGE)))
    with pytest.raises(ChronosError, match=r"AWSServiceRoleForEC2Spot.*aws iam create-service-linked-role "
                                           r"--aws-service-name spot\.amazonaws\.com"):
        launch_with_fallback(clients_of(ec2), FOUNDATION, LaunchRequest(**dict(REQUEST.__dict__, markets=["spot"])))
    assert len(tries_of(ec2)) == 1


# EC2 API Reference, "Request throttling": RequestLimitExceeded, retry with exponential backoff. The same try is sent
# again after a growing wait; nothing else is.
def test_a_throttled_run_instances_is_sent_again_after_a_growing_wait_and_only_that_one(ec2):
    throttled = [2]

    def answer(**_a):
        if throttled[0] > 0:
            throttled[0] -= 1
            raise aws_error("RequestLimitExceeded", "Request limit exceeded.")
        return {"Instances": [{"InstanceId": "i-0123456789abcdef0"}]}
    ec2.on("run_instances", answer)
    waits: List[float] = []
    won = launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST, sleep=waits.append)
    assert tries_of(ec2) == ["spot g5.xlarge subnet-a"] * 3
    assert won.subnet_id == "subnet-a"
    assert len(waits) == 2 and waits[0] >= 0.5 and waits[1] >= 1.0


def test_a_run_instances_throttled_again_and_again_stops_after_a_bounded_number_of_sends(ec2):
    ec2.on("run_instances", raises(aws_error("RequestLimitExceeded", "Request limit exceeded.")))
    with pytest.raises(ChronosError, match="RequestLimitExceeded"):
        launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST, sleep=lambda _s: None)
    assert len(tries_of(ec2)) == 6


def test_any_other_error_stops_at_once(ec2):
    run_instances(ec2, lambda *_: "UnauthorizedOperation")
    with pytest.raises(ChronosError) as e:
        launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST)
    assert e.value.message == ("launching spot g5.xlarge in us-east-1a (subnet-a) failed: UnauthorizedOperation: "
                               "UnauthorizedOperation (injected)")
    assert len(tries_of(ec2)) == 1


# EC2 API Reference, "Error codes for the Amazon EC2 API": MaxSpotInstanceCountExceeded means the account's Spot request
# limit is reached; Spot limits are the vCPU quotas "All G and VT Spot Instance Requests" (L-3819A6DF) and its kin (EC2
# User Guide, "Spot Instance quotas"). The launcher moves on, and says which quota may be full. (Ported from wip/sharpen.)
def test_after_max_spot_instance_count_exceeded_the_log_names_the_spot_vcpu_quota(ec2):
    run_instances(ec2, lambda m, _t, _s: "MaxSpotInstanceCountExceeded" if m == "spot" else None)
    log: List[str] = []
    won = launch_with_fallback(clients_of(ec2), FOUNDATION, REQUEST, log.append)
    assert won.market == "on-demand"
    assert [l for l in log if "may be full" in l] == [
        '  (the spot vCPU quota "All G and VT Spot Instance Requests" L-3819A6DF may be full)'] * 4


# Quota codes and names: EC2 User Guide, "Amazon EC2 service quotas" (On-Demand: "Running On-Demand G and VT instances"
# L-DB2E81BA, "Running On-Demand P instances" L-417A185B, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
# instances" L-1216C47A; Spot: L-3819A6DF, L-7212CCBC, L-34B43A08). gr6 is a G type; im4gn and is4gen are I types.
@pytest.mark.parametrize("instance_type,market,code", [
    ("g5.xlarge", "on-demand", "L-DB2E81BA"), ("g6e.12xlarge", "spot", "L-3819A6DF"),
    ("gr6.4xlarge", "on-demand", "L-DB2E81BA"), ("gr6.8xlarge", "spot", "L-3819A6DF"), ("vt1.3xlarge", "spot", "L-3819A6DF"),
    ("p4d.24xlarge", "on-demand", "L-417A185B"), ("p5.48xlarge", "spot", "L-7212CCBC"),
    ("m5.large", "on-demand", "L-1216C47A"), ("c7i.large", "spot", "L-34B43A08"), ("im4gn.large", "on-demand", "L-1216C47A"),
    ("is4gen.xlarge", "spot", "L-34B43A08"), ("c7gn.large", "on-demand", "L-1216C47A"), ("inf2.xlarge", "on-demand", None),
    ("dl1.24xlarge", "on-demand", None), ("trn1.2xlarge", "spot", None), ("hpc7g.4xlarge", "on-demand", None)])
def test_the_quota_of(instance_type, market, code):
    assert quota_for(instance_type, market)["code"] == code


def test_a_family_without_a_known_quota_code_gets_the_quota_by_name_and_the_general_way_to_find_its_code():
    message = quota_message("inf2.xlarge", "on-demand", "limit")
    assert '"Running On-Demand INF instances"' in message
    assert "aws service-quotas list-service-quotas --service-code ec2" in message
