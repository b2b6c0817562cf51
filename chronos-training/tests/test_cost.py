"""What a run cost (chronos_training/cost.py): the estimate from EC2's spot price history and the Price List API, the
`status` line, and no price in the package's code.

Requests are checked against the botocore models (botocore Stubber validates each request and each canned response
against the API's shapes). moto 5.2.5 implements DescribeSpotPriceHistory but answers one fixed price at a fixed
2006 timestamp whatever the interval (moto/ec2/responses/spot_instances.py), so time weighting and pagination are
tested with the Stubber, and moto only as a whole path; moto has no Price List API at all.

What AWS does that these emulators do not, cited:
- DescribeSpotPriceHistory with StartTime and EndTime "also returns the last price change before the start time,
  which is the effective price as of the start time" (EC2 API Reference, DescribeSpotPriceHistory): the price of the
  first entry, dated before the attempt, holds from the attempt's start.
- GetProducts' PriceList is a list of JSON strings, each `{"product": {"attributes": ...}, "terms": {"OnDemand":
  {"SKU.OFFERTERM": {"priceDimensions": {"SKU.OFFERTERM.RATE": {"unit": "Hrs", "pricePerUnit": {"USD": "..."}}}}}}}`
  (Pricing API Reference, GetProducts; Billing User Guide, "Reading the service price list file for an AWS
  service").
- The Price List Query API's endpoints are us-east-1 and ap-south-1 (Price List Service API Reference, "Service
  Endpoint"): the pricing client is made in us-east-1 whatever the foundation's region.
- Linux instances are billed per second with a 60-second minimum (AWS What's New, 2 October 2017); a spot instance
  EC2 interrupts in its first hour is not billed (EC2 User Guide, "Billing for interrupted Spot Instances").
"""
import ast
import json
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

import chronos_training
from chronos_training import commands, cost
from chronos_training.clients import Clients

from conftest import Recording, moto_environment
from moto_world import Recorded, make_foundation

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)
NOW = datetime(2026, 12, 1, 14, 0, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
ZONE = "us-east-1a"


@pytest.fixture(autouse=True)
def fresh_cache(aws_env):
    cost.clear_cache()
    yield
    cost.clear_cache()


def client(service: str, region: str = "us-east-1") -> Any:
    return boto3.client(service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")


def record(attempt: int, market: str, seconds: Any = None, start: datetime = T0, **extra: Any) -> Dict[str, Any]:
    """An attempt record (contract.ATTEMPT_RECORD) as the keeper-logic engineer's claim plus the agent's writes."""
    doc: Dict[str, Any] = {"schemaVersion": 1, "runId": "r-20261201-100000-abcdef", "attempt": attempt,
                           "state": "succeeded", "instanceId": "i-0%016d" % attempt, "instanceType": "g5.xlarge",
                           "market": market, "availabilityZone": ZONE, "launchedBy": "cli",
                           "launchedAt": start.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "seconds": seconds}
    doc.update(extra)
    return doc


def spot_item(at: datetime, price: str, zone: str = ZONE, description: str = "Linux/UNIX") -> Dict[str, Any]:
    return {"AvailabilityZone": zone, "InstanceType": "g5.xlarge", "ProductDescription": description,
            "SpotPrice": price, "Timestamp": at}


def spot_request(start: datetime, end: datetime, **extra: Any) -> Dict[str, Any]:
    params = {"InstanceTypes": ["g5.xlarge"], "AvailabilityZone": ZONE,
              "ProductDescriptions": ["Linux/UNIX", "Linux/UNIX (Amazon VPC)"], "StartTime": start, "EndTime": end}
    params.update(extra)
    return params


def price_list_entry(instance_type: str, usd: str, **attributes: str) -> str:
    """One PriceList entry in the documented shape, as the API returns it: a JSON string."""
    attrs = {"instanceType": instance_type, "regionCode": "us-east-1", "operatingSystem": "Linux",
             "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used", "operation": "RunInstances",
             "marketoption": "OnDemand", "servicecode": "AmazonEC2"}
    attrs.update(attributes)
    return json.dumps({
        "product": {"productFamily": "Compute Instance", "attributes": attrs, "sku": "SKU1"},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {
            "offerTermCode": "JRTCKXETXF", "sku": "SKU1", "effectiveDate": "2026-11-01T00:00:00Z",
            "termAttributes": {},
            "priceDimensions": {"SKU1.JRTCKXETXF.6YS6EN2CT7": {
                "rateCode": "SKU1.JRTCKXETXF.6YS6EN2CT7", "unit": "Hrs", "beginRange": "0", "endRange": "Inf",
                "description": "On Demand Linux %s Instance Hour" % instance_type,
                "pricePerUnit": {"USD": usd}, "appliesTo": []}}}}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z"})


ON_DEMAND_FILTERS = [
    {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "g5.xlarge"},
    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
    {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
    {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
    {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
    {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
]


def products_request(**extra: Any) -> Dict[str, Any]:
    params: Dict[str, Any] = {"ServiceCode": "AmazonEC2", "Filters": ON_DEMAND_FILTERS, "FormatVersion": "aws_v1"}
    params.update(extra)
    return params


# --- spot ----------------------------------------------------------------------------------------------------------

def test_spot_is_weighted_by_the_time_each_price_held_across_pages():
    ec2 = client("ec2")
    start, end = T0, T0 + 2 * HOUR
    with Stubber(ec2) as stub:
        # The price in effect at the start (dated before it), then a change after one hour, on a second page.
        stub.add_response("describe_spot_price_history", {
            "SpotPriceHistory": [spot_item(T0 - timedelta(minutes=30), "0.300000")], "NextToken": "page-2"},
            spot_request(start, end))
        stub.add_response("describe_spot_price_history", {
            "SpotPriceHistory": [spot_item(T0 + HOUR, "0.600000")], "NextToken": ""},
            spot_request(start, end, NextToken="page-2"))
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [record(1, "spot", 7200)], now=NOW)
        stub.assert_no_pending_responses()
    assert estimate is not None
    # 1 h at 0.30 + 1 h at 0.60; not 2 h at the first price (0.60) nor at the last (1.20).
    assert estimate["usd"] == 0.9
    assert estimate["attempts"][0]["usd"] == 0.9
    assert estimate["attempts"][0]["usdPerHour"] == pytest.approx(0.45)
    assert estimate["isEstimate"] is True
    assert estimate["basis"] == "spot price history and the AWS Price List API, 2026-12-01"


def test_spot_ignores_other_zones_and_prefers_linux_unix_over_the_vpc_description():
    ec2 = client("ec2")
    start, end = T0, T0 + HOUR
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": [
            spot_item(T0 - HOUR, "9.000000", zone="us-east-1b"),
            spot_item(T0 - HOUR, "5.000000", description="Linux/UNIX (Amazon VPC)"),
            spot_item(T0 - HOUR, "0.250000"),
        ]}, spot_request(start, end))
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [record(1, "spot", 3600)], now=NOW)
    assert estimate["usd"] == 0.25


def test_the_interval_comes_from_launched_and_ended_when_the_record_has_no_seconds():
    ec2 = client("ec2")
    end = T0 + timedelta(minutes=90)
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history",
                          {"SpotPriceHistory": [spot_item(T0 - HOUR, "0.400000")]}, spot_request(T0, end))
        estimate = cost.estimate_run_cost(
            Clients(ec2=ec2), [record(1, "spot", None, endedAt="2026-12-01T11:30:00.000Z")], now=NOW)
    assert estimate["usd"] == 0.6
    assert estimate["attempts"][0]["seconds"] == 5400


def test_a_running_attempt_is_priced_until_now_and_says_so_far():
    ec2 = client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history",
                          {"SpotPriceHistory": [spot_item(T0 - HOUR, "0.500000")]}, spot_request(T0, NOW))
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [record(1, "spot", None, state="running")], now=NOW)
    assert estimate["usd"] == 2.0 and estimate["running"] is True
    assert cost.cost_line(estimate) == \
        "estimated cost: $2.00 so far (estimate: spot price history and AWS Price List)"


def test_spot_interrupted_by_ec2_in_its_first_hour_costs_nothing_and_asks_ec2_nothing():
    ec2 = client("ec2")
    with Stubber(ec2) as stub:  # no response queued: any request would fail the estimate
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [record(
            1, "spot", 1800, state="interrupted", reason="spot interruption notice: terminate at 2026-12-01T10:30:00Z")],
            now=NOW)
        stub.assert_no_pending_responses()
    assert estimate["usd"] == 0.0
    assert estimate["attempts"][0]["note"] == "interrupted by EC2 in its first hour: not billed"


def test_a_short_attempt_is_billed_the_60_second_minimum():
    ec2 = client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history",
                          {"SpotPriceHistory": [spot_item(T0 - HOUR, "36.000000")]},
                          spot_request(T0, T0 + timedelta(seconds=10)))
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [record(1, "spot", 10)], now=NOW)
    assert estimate["attempts"][0]["usd"] == 0.6  # 60 s at 36/h, not 10 s (0.10)


def test_time_weighting_starts_with_the_first_price_when_the_history_begins_after_the_start():
    points = [(T0 + HOUR, 2.0), (T0 + 3 * HOUR, 4.0)]
    assert cost.time_weighted_hourly(points, T0, T0 + 4 * HOUR) == pytest.approx((3 * 2.0 + 4.0) / 4)
    assert cost.time_weighted_hourly(points, T0 + 2 * HOUR, T0 + 2 * HOUR) == 2.0


def test_spot_on_moto_end_to_end_uses_the_price_ec2_answers():
    with mock_aws():
        ec2 = client("ec2")
        answered = ec2.describe_spot_price_history(InstanceTypes=["m5.large"])["SpotPriceHistory"]
        price = float([p for p in answered if p["AvailabilityZone"] == ZONE][0]["SpotPrice"])
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [record(1, "spot", 36000, instanceType="m5.large")],
                                          now=NOW)
    assert estimate["attempts"][0]["usdPerHour"] == price
    assert estimate["attempts"][0]["usd"] == round(price * 10, 4)


def test_a_denied_spot_history_is_an_unknown_price_with_the_reason_never_an_exception():
    ec2 = client("ec2")
    with Stubber(ec2) as stub:
        stub.add_client_error("describe_spot_price_history", "UnauthorizedOperation",
                              "You are not authorized to perform this operation.", 403)
        # The second spot attempt of the same type and zone does not ask again.
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [record(1, "spot", 600), record(2, "spot", 600)],
                                          now=NOW)
        stub.assert_no_pending_responses()
    assert estimate["usd"] is None
    assert [a["usd"] for a in estimate["attempts"]] == [None, None]
    why = "ec2:DescribeSpotPriceHistory was denied (UnauthorizedOperation): grant it to read prices"
    assert estimate["attempts"][0]["why"] == why
    assert cost.cost_line(estimate) == "estimated cost: unknown (attempt 1: %s; attempt 2: %s)" % (why, why)


def test_no_spot_history_is_an_unknown_price():
    ec2 = client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": []}, spot_request(T0, T0 + HOUR))
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [record(1, "spot", 3600)], now=NOW)
    assert estimate["usd"] is None
    assert "no spot price history for g5.xlarge in us-east-1a" in estimate["attempts"][0]["why"]


# --- on-demand -----------------------------------------------------------------------------------------------------

def test_on_demand_reads_the_price_list_once_per_type_and_region():
    ec2, pricing = client("ec2"), client("pricing")
    with Stubber(pricing) as stub:
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
            price_list_entry("g5.xlarge", "1.2000000000"),
            # Not RunInstances (a licence-included product): not this instance's price.
            price_list_entry("g5.xlarge", "7.0000000000", operation="RunInstances:0004"),
        ], "NextToken": "p2"}, products_request())
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []},
                          products_request(NextToken="p2"))
        estimate = cost.estimate_run_cost(Clients(ec2=ec2, pricing=pricing),
                                          [record(1, "on-demand", 1800), record(2, "on-demand", 5400)], now=NOW)
        stub.assert_no_pending_responses()
    assert [a["usd"] for a in estimate["attempts"]] == [0.6, 1.8]
    assert estimate["usd"] == 2.4
    # The process cache: a second estimate asks the Price List nothing (the stubber is no longer active; a real
    # request would fail for want of a network).
    again = cost.estimate_run_cost(Clients(ec2=ec2, pricing=pricing), [record(1, "on-demand", 3600)], now=NOW)
    assert again["usd"] == 1.2


def test_the_on_demand_region_is_the_ec2_clients():
    ec2, pricing = client("ec2", "eu-west-1"), client("pricing")
    filters = [dict(f, Value="eu-west-1") if f["Field"] == "regionCode" else f for f in ON_DEMAND_FILTERS]
    with Stubber(pricing) as stub:
        stub.add_response("get_products", {"PriceList": [price_list_entry("g5.xlarge", "2.0000000000",
                                                                          regionCode="eu-west-1")]},
                          products_request(Filters=filters))
        estimate = cost.estimate_run_cost(Clients(ec2=ec2, pricing=pricing), [record(1, "on-demand", 3600)], now=NOW)
    assert estimate["usd"] == 2.0


def test_a_denied_price_list_is_an_unknown_price_with_the_reason():
    ec2, pricing = client("ec2"), client("pricing")
    with Stubber(pricing) as stub:
        stub.add_client_error("get_products", "AccessDeniedException", "User is not authorized", 400)
        estimate = cost.estimate_run_cost(Clients(ec2=ec2, pricing=pricing), [record(1, "on-demand", 3600)], now=NOW)
    assert estimate["usd"] is None
    assert estimate["attempts"][0]["why"] == \
        "pricing:GetProducts was denied (AccessDeniedException): grant it to read prices"


def test_an_instance_type_the_price_list_does_not_know_is_an_unknown_price():
    ec2, pricing = client("ec2"), client("pricing")
    with Stubber(pricing) as stub:
        stub.add_response("get_products", {"PriceList": []}, products_request())
        estimate = cost.estimate_run_cost(Clients(ec2=ec2, pricing=pricing), [record(1, "on-demand", 3600)], now=NOW)
    assert estimate["attempts"][0]["why"] == \
        "the AWS Price List has no on-demand Linux price for g5.xlarge in us-east-1"


def test_the_pricing_client_is_in_a_price_list_endpoint_region_whatever_the_foundations():
    clients = Clients(region="eu-west-1")
    assert clients.ec2.meta.region_name == "eu-west-1"
    assert clients.pricing.meta.region_name == cost.PRICING_REGION
    # The API's endpoints (Price List Service API Reference, "Service Endpoint").
    assert cost.PRICING_REGION in ("us-east-1", "ap-south-1")
    assert clients.pricing.meta.endpoint_url == "https://api.pricing.us-east-1.amazonaws.com"
    config = clients.pricing.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (5, 15, 2)


# --- records without what a price needs ----------------------------------------------------------------------------

def test_records_without_a_launch_or_a_market_or_times():
    pending = record(1, "spot", None, instanceType=None, instanceId=None, state="failed")
    no_market = record(2, "", 60, lifecycle=None)
    no_times = record(3, "on-demand", None, launchedAt=None)
    ended_without_end = record(4, "on-demand", None, state="succeeded")
    estimate = cost.estimate_run_cost(Clients(ec2=client("ec2")), [pending, no_market, no_times, ended_without_end],
                                      now=NOW)
    rows = estimate["attempts"]
    assert rows[0]["usd"] == 0.0 and rows[0]["note"] == "no instance was launched"
    assert rows[1]["why"] == "the record's market is None, not spot or on-demand"
    assert rows[2]["why"] == "the record has no seconds, launchedAt or startedAt"
    assert rows[3]["why"] == "the attempt is succeeded but its record has no endedAt"
    assert estimate["usd"] is None
    assert cost.estimate_run_cost(Clients(), []) is None


def test_the_agents_lifecycle_stands_for_the_market():
    ec2 = client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history",
                          {"SpotPriceHistory": [spot_item(T0 - HOUR, "0.100000")]}, spot_request(T0, T0 + HOUR))
        doc = record(1, "spot", 3600)
        del doc["market"]
        doc["lifecycle"] = "spot"
        estimate = cost.estimate_run_cost(Clients(ec2=ec2), [doc], now=NOW)
    assert estimate["usd"] == 0.1


# --- status --------------------------------------------------------------------------------------------------------

def test_status_lines_show_the_estimate_after_the_status_rows():
    estimate = {"usd": 3.456, "isEstimate": True, "basis": "x", "attempts": []}
    lines = commands.status_lines(None, {"state": "succeeded", "attempt": 1}, [], "r1", NOW, estimate)
    assert lines[-1] == "estimated cost: $3.46 (estimate: spot price history and AWS Price List)"
    assert not any("estimated cost" in line for line in commands.status_lines(None, {"state": "running"}, [], "r1",
                                                                             NOW))


def test_status_command_prints_the_run_cost_from_its_attempt_records(tmp_path):
    with moto_environment(str(tmp_path)), mock_aws():
        c = Recorded()
        make_foundation(c)
        bucket = c.s3.list_buckets()["Buckets"][0]["Name"]
        run_id = "r-20261201-100000-abcdef"
        status = dict(record(2, "on-demand", 3600), state="succeeded")
        for n, doc in ((1, record(1, "spot", 1800, state="interrupted",
                                  reason="spot interruption notice: terminate at 2026-12-01T10:30:00Z")),
                       (2, status)):
            c.s3.put_object(Bucket=bucket, Key="dev/runs/%s/attempts/%03d.json" % (run_id, n),
                            Body=json.dumps(doc).encode())
        c.s3.put_object(Bucket=bucket, Key="dev/runs/%s/status.json" % run_id, Body=json.dumps(status).encode())
        pricing = client("pricing")
        clients = Clients(ec2=c.ec2, ec2_launch=c.ec2_launch, s3=c.s3, ssm=c.ssm, cfn=c.cfn, pricing=pricing)
        io = Recording(start=NOW)
        with Stubber(pricing) as stub:
            stub.add_response("get_products", {"PriceList": [price_list_entry("g5.xlarge", "1.5000000000")]},
                              products_request())
            assert commands.status_command(clients, io.io, "dev", run_id) == 0
    assert "estimated cost: $1.50 (estimate: spot price history and AWS Price List)\n" in io.outs


def test_status_without_attempt_records_prints_no_cost_line(tmp_path):
    with moto_environment(str(tmp_path)), mock_aws():
        c = Recorded()
        make_foundation(c)
        bucket = c.s3.list_buckets()["Buckets"][0]["Name"]
        c.s3.put_object(Bucket=bucket, Key="dev/runs/r-1/status.json",
                        Body=json.dumps({"schemaVersion": 1, "state": "pending", "attempt": 1}).encode())
        io = Recording(start=NOW)
        assert commands.status_command(Clients(ec2=c.ec2, s3=c.s3, ssm=c.ssm, cfn=c.cfn), io.io, "dev", "r-1") == 0
    assert not any("estimated cost" in line for line in io.outs)


# --- no price in the code ------------------------------------------------------------------------------------------

PACKAGE = os.path.dirname(chronos_training.__file__)
#: A price as prose writes it (test/compliance/no-prices.test.ts's pattern): `$0.25`, `$8/hour`, `~$32`, `≈ $8`.
PRICE = re.compile(r"~\s?\$\d|≈\s?\$\d|\$\d+\.\d+|\$\d+\s?(/|per\b|a (month|day|year|hour)\b)")


def package_files() -> List[str]:
    return sorted(os.path.join(d, f) for d, _, files in os.walk(PACKAGE) for f in files if f.endswith(".py"))


def test_the_price_pattern_finds_prices_and_not_format_strings():
    for price in ("g5.xlarge $1.006", "~$0.25/vCPU-hour", "$1/month while idle", "$8 per hour"):
        assert PRICE.search(price), price
    assert not PRICE.search("estimated cost: $%.2f (estimate)")


def test_no_module_of_the_package_holds_a_price():
    found = []
    for path in package_files():
        text = open(path, encoding="utf-8").read()
        found += ["%s:%d: %s" % (os.path.relpath(path, PACKAGE), i, line.strip())
                  for i, line in enumerate(text.splitlines(), 1) if PRICE.search(line)]
        # A price table would hold decimal strings ("1.006") or, in cost.py, any float but zero.
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(
                    r"\d+\.\d+", node.value):
                found.append("%s:%d: %r" % (os.path.relpath(path, PACKAGE), node.lineno, node.value))
            if (path.endswith("cost.py") and isinstance(node, ast.Constant) and isinstance(node.value, float)
                    and node.value != 0):
                found.append("cost.py:%d: %r" % (node.lineno, node.value))
    assert found == []
    assert any(p.endswith("cost.py") for p in package_files())


def test_the_python_api_gives_the_same_estimate(tmp_path):
    from chronos_training.api import Run
    with moto_environment(str(tmp_path)), mock_aws():
        c = Recorded()
        make_foundation(c)
        bucket = c.s3.list_buckets()["Buckets"][0]["Name"]
        run = Run("dev", "r-1", Clients(ec2=c.ec2, s3=c.s3, ssm=c.ssm, cfn=c.cfn))
        assert run.estimated_cost() is None
        # A failed launch (no instance) and nothing else: known, and nothing.
        c.s3.put_object(Bucket=bucket, Key="dev/runs/r-1/attempts/001.json", Body=json.dumps(
            record(1, "spot", None, instanceType=None, instanceId=None, state="failed")).encode())
        estimate = run.estimated_cost()
    assert estimate["usd"] == 0.0 and estimate["isEstimate"] is True
    assert estimate["attempts"][0]["note"] == "no instance was launched"
