"""What a run cost: an estimate of its instances' cost from the prices AWS publishes through its own APIs
(docs/RUNS.md, "What a run cost").

- Spot attempts: EC2 DescribeSpotPriceHistory for the attempt's instance type, zone and the Linux/UNIX product, over
  the attempt's interval, weighted by the time each price was in effect. With a start and an end time, EC2 also
  returns the last price change before the start, the price in effect at the start (EC2 API Reference,
  DescribeSpotPriceHistory); it keeps 90 days of history.
- On-demand attempts: the AWS Price List Query API, `pricing:GetProducts` (ServiceCode AmazonEC2), whose endpoints
  are in us-east-1 and ap-south-1 only (Price List Service API Reference, "Service Endpoint"); each PriceList entry is
  a JSON string with `product.attributes` and `terms.OnDemand.{sku.offerTermCode}.priceDimensions.{rateCode}.
  pricePerUnit.USD` (Billing User Guide, "Reading the service price list file for an AWS service").
- Linux instances are billed per second with a minimum of 60 seconds (AWS What's New, 2 October 2017, "Announcing
  Amazon EC2 per second billing"); a spot instance that EC2 interrupts in its first hour is not billed (EC2 User
  Guide, "Billing for interrupted Spot Instances").

No price lives in this code (tests/test_cost.py checks every module of the package for dollar figures). Nothing here
raises to the caller: a missing permission, a price AWS does not publish, a record without times give a null price
with the reason. The estimate leaves out Savings Plans, Reserved Instances, EBS volumes, data transfer and S3.
"""
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

from . import contract
from .errors import error_code, error_message
from .store import get_json, list_keys

#: The region of the Price List Query API endpoint the `pricing` client uses (the other one is ap-south-1).
PRICING_REGION = "us-east-1"

#: The spot product descriptions of a Linux instance: `Linux/UNIX`, and `Linux/UNIX (Amazon VPC)` that older
#: accounts see (EC2 API Reference, DescribeSpotPriceHistory, ProductDescriptions). The first one found is used.
SPOT_PRODUCTS = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")

#: Per-second billing's minimum for a Linux instance.
MINIMUM_BILLED_SECONDS = 60

#: A spot instance EC2 interrupts within this many seconds of its start is not billed.
SPOT_UNBILLED_INTERRUPTION_SECONDS = 3600

#: The states in which an attempt is over (its instance is gone or going).
_OVER = ("succeeded", "failed", "timed-out", "stopped", "interrupted")

#: The Price List filters of a Linux, shared-tenancy, no pre-installed software, used-capacity instance (the attribute
#: names and values of AmazonEC2 products; GetProducts takes any attribute name as a filter Field).
_ON_DEMAND_FILTERS = (("operatingSystem", "Linux"), ("tenancy", "Shared"), ("preInstalledSw", "NA"),
                      ("capacitystatus", "Used"))

_lock = threading.Lock()
_on_demand_cache: Dict[Tuple[str, str], Tuple[float, Optional[str]]] = {}


class NoPrice(Exception):
    """An attempt whose price is not known, with the reason."""


def clear_cache() -> None:
    """Forgets the on-demand prices this process read (they are kept per instance type and region)."""
    with _lock:
        _on_demand_cache.clear()


def parse_time(text: Any) -> Optional[datetime]:
    """A contract time (`2026-12-01T12:00:00.000Z`) or a datetime, as an aware datetime; None when absent or bad."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    if not isinstance(text, str) or not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _denied(e: Exception, action: str) -> NoPrice:
    code = error_code(e)
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"):
        return NoPrice("%s was denied (%s): grant it to read prices" % (action, code))
    # One short line for `status`: an endpoint that is no Price List answers an HTML page.
    message = " ".join(error_message(e).split())
    return NoPrice("%s failed: %s: %s" % (action, code, message[:160] + ("..." if len(message) > 160 else "")))


def interval(record: Dict[str, Any], now: datetime) -> Tuple[Optional[datetime], Optional[datetime], float, bool]:
    """An attempt's (start, end, seconds, still running): `seconds` when the record has it, else from `launchedAt` (or
    `startedAt`) to `endedAt` (or now, while the attempt is not over). Without any time: NoPrice."""
    seconds = _number(record.get("seconds"))
    start = parse_time(record.get("launchedAt")) or parse_time(record.get("startedAt"))
    end = parse_time(record.get("endedAt"))
    running = False
    if seconds is not None and seconds >= 0:
        if start is not None:
            end = start + timedelta(seconds=seconds)
        elif end is not None:
            start = end - timedelta(seconds=seconds)
        return start, end, seconds, running
    if start is None:
        raise NoPrice("the record has no seconds, launchedAt or startedAt")
    if end is None:
        if record.get("state") in _OVER:
            raise NoPrice("the attempt is %s but its record has no endedAt" % record.get("state"))
        end, running = max(now, start), True
    return start, end, max(0.0, (end - start).total_seconds()), running


def time_weighted_hourly(points: List[Tuple[datetime, float]], start: datetime, end: datetime) -> float:
    """The mean hourly price over [start, end] of a price history (time, price per hour): each price holds from its
    time until the next one. Before the first point (a history that begins after `start`) the first price holds."""
    points = sorted(points)
    if end <= start:
        before = [p for t, p in points if t <= start]
        return before[-1] if before else points[0][1]
    total = 0.0
    for i, (at, price) in enumerate(points):
        begin = start if i == 0 else max(at, start)
        stop = min(points[i + 1][0], end) if i + 1 < len(points) else end
        if stop > begin:
            total += price * (stop - begin).total_seconds()
    return total / (end - start).total_seconds()


def spot_points(ec2: Any, instance_type: str, zone: str, start: datetime, end: datetime) -> List[Tuple[datetime, float]]:
    """The spot price history of one type in one zone for Linux over [start, end] (every page), including the price
    in effect at `start`; of the product descriptions in SPOT_PRODUCTS, the first that has prices."""
    found: Dict[str, List[Tuple[datetime, float]]] = {}
    pages = ec2.get_paginator("describe_spot_price_history").paginate(
        InstanceTypes=[instance_type], AvailabilityZone=zone, ProductDescriptions=list(SPOT_PRODUCTS),
        StartTime=start, EndTime=end)
    for page in pages:
        for item in page.get("SpotPriceHistory") or []:
            at = parse_time(item.get("Timestamp"))
            description = item.get("ProductDescription")
            if (at is None or item.get("InstanceType") != instance_type or item.get("AvailabilityZone") != zone
                    or description not in SPOT_PRODUCTS):
                continue
            try:
                price = float(item.get("SpotPrice"))
            except (TypeError, ValueError):
                continue
            found.setdefault(description, []).append((at, price))
    for description in SPOT_PRODUCTS:
        if found.get(description):
            return found[description]
    return []


def on_demand_hourly(pricing: Any, instance_type: str, region: str) -> Tuple[float, Optional[str]]:
    """The on-demand Linux price per hour of a type in a region from the Price List API (kept for the process), and a
    note when several products matched (the highest price is used)."""
    key = (instance_type, region)
    with _lock:
        if key in _on_demand_cache:
            return _on_demand_cache[key]
    filters = [{"Type": "TERM_MATCH", "Field": "instanceType", "Value": instance_type},
               {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}]
    filters += [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in _ON_DEMAND_FILTERS]
    prices: List[float] = []
    for page in pricing.get_paginator("get_products").paginate(ServiceCode="AmazonEC2", Filters=filters,
                                                              FormatVersion="aws_v1"):
        for entry in page.get("PriceList") or []:
            prices.extend(_hourly_usd(entry, instance_type))
    prices = sorted(set(p for p in prices if p > 0))
    if not prices:
        raise NoPrice("the AWS Price List has no on-demand Linux price for %s in %s" % (instance_type, region))
    note = None
    if len(prices) > 1:
        note = "%d on-demand prices matched; the highest is used" % len(prices)
    result = (prices[-1], note)
    with _lock:
        _on_demand_cache[key] = result
    return result


def _hourly_usd(entry: Any, instance_type: str) -> List[float]:
    """The hourly USD prices of one PriceList entry (a JSON string; a dict is taken as it is) of an instance that is
    launched by RunInstances (not a product with a licence or a Capacity Block)."""
    try:
        doc = json.loads(entry) if isinstance(entry, str) else entry
        attributes = doc["product"]["attributes"]
        terms = (doc.get("terms") or {}).get("OnDemand") or {}
    except (ValueError, KeyError, TypeError):
        return []
    if attributes.get("instanceType") not in (None, instance_type):
        return []
    if attributes.get("operation") not in (None, "RunInstances"):
        return []
    if attributes.get("marketoption") not in (None, "OnDemand"):
        return []
    found: List[float] = []
    for term in terms.values():
        for dimension in (term.get("priceDimensions") or {}).values():
            if dimension.get("unit") not in ("Hrs", "Hours"):
                continue
            try:
                found.append(float((dimension.get("pricePerUnit") or {})["USD"]))
            except (KeyError, TypeError, ValueError):
                continue
    return found


def _region_of(clients: Any) -> Optional[str]:
    return getattr(getattr(clients.ec2, "meta", None), "region_name", None)


def attempt_cost(clients: Any, record: Dict[str, Any], now: datetime,
                 failures: Optional[Dict[Any, str]] = None) -> Dict[str, Any]:
    """One attempt's estimate: the record's type, market, zone, billed seconds, hourly price and `usd`, or `usd` None
    and `why`. `failures` carries a price lookup's failure to the run's next attempts (one denial, one request)."""
    failures = {} if failures is None else failures
    result: Dict[str, Any] = {
        "attempt": record.get("attempt"),
        "instanceType": record.get("instanceType"),
        "market": record.get("market") or record.get("lifecycle"),
        "availabilityZone": record.get("availabilityZone"),
        "seconds": None,
        "usdPerHour": None,
        "usd": None,
    }
    try:
        if not record.get("instanceType") and not record.get("instanceId"):
            result.update(usd=0.0, note="no instance was launched")
            return result
        if not record.get("instanceType"):
            raise NoPrice("the record names no instance type")
        start, end, seconds, running = interval(record, now)
        result["seconds"] = int(round(seconds))
        if running:
            result["running"] = True
        billed = max(seconds, MINIMUM_BILLED_SECONDS) if seconds > 0 else 0.0
        market = result["market"]
        if market == "spot":
            zone = record.get("availabilityZone")
            if not zone:
                raise NoPrice("the spot attempt's record names no availability zone")
            if (record.get("state") == "interrupted" and seconds < SPOT_UNBILLED_INTERRUPTION_SECONDS
                    and str(record.get("reason") or "").startswith("spot interruption notice")):
                result.update(usd=0.0, note="interrupted by EC2 in its first hour: not billed")
                return result
            if start is None or end is None:
                start = end = now
                result["note"] = "no times in the record: the spot price now"
            key = ("spot", record["instanceType"], zone)
            if key in failures:
                raise NoPrice(failures[key])
            try:
                points = spot_points(clients.ec2, record["instanceType"], zone, start, end)
            except Exception as e:  # noqa: BLE001
                failures[key] = str(_denied(e, "ec2:DescribeSpotPriceHistory"))
                raise NoPrice(failures[key]) from None
            if not points:
                raise NoPrice("EC2 has no spot price history for %s in %s over the attempt (it keeps 90 days)" % (
                    record["instanceType"], zone))
            hourly = time_weighted_hourly(points, start, end)
        elif market == "on-demand":
            region = _region_of(clients)
            if not region:
                raise NoPrice("the EC2 client has no region")
            key = ("on-demand", record["instanceType"], region)
            if key in failures:
                raise NoPrice(failures[key])
            try:
                hourly, note = on_demand_hourly(clients.pricing, record["instanceType"], region)
            except NoPrice as e:
                failures[key] = str(e)
                raise
            except Exception as e:  # noqa: BLE001
                failures[key] = str(_denied(e, "pricing:GetProducts"))
                raise NoPrice(failures[key]) from None
            if note:
                result["note"] = note
        else:
            raise NoPrice("the record's market is %r, not spot or on-demand" % (market,))
        result["usdPerHour"] = hourly
        result["usd"] = round(hourly * billed / 3600, 4)
    except NoPrice as e:
        result["why"] = str(e)
    except Exception as e:  # noqa: BLE001  (an estimate never fails its caller)
        result["why"] = "%s: %s" % (error_code(e), error_message(e))
    return result


def estimate_run_cost(clients: Any, attempts: List[Dict[str, Any]],
                      now: Optional[datetime] = None) -> Optional[Dict[str, Any]]:
    """The estimated cost of a run's instances from its attempt records (contract.ATTEMPT_RECORD): `{"usd": total
    rounded to cents, or None when an attempt's price is unknown, "isEstimate": True, "basis": "...", "attempts":
    [per attempt], "why": reason (only with usd None), "running": True (only while an attempt runs: the cost so
    far)}`. None without records. Never raises: an AWS error becomes the attempt's `why`."""
    if not attempts:
        return None
    now = now or datetime.now(timezone.utc)
    failures: Dict[Any, str] = {}
    rows = [attempt_cost(clients, record, now, failures) for record in attempts if isinstance(record, dict)]
    if not rows:
        return None
    unknown = [r for r in rows if r["usd"] is None]
    estimate: Dict[str, Any] = {
        "usd": None if unknown else round(sum(r["usd"] for r in rows), 2),
        "isEstimate": True,
        "basis": "spot price history and the AWS Price List API, %s" % now.astimezone(timezone.utc).strftime(
            "%Y-%m-%d"),
        "attempts": rows,
    }
    if unknown:
        estimate["why"] = "; ".join(sorted(set("attempt %s: %s" % (r["attempt"], r["why"]) for r in unknown)))
    if any(r.get("running") for r in rows):
        estimate["running"] = True
    return estimate


def cost_line(estimate: Optional[Dict[str, Any]]) -> Optional[str]:
    """The `status` line of an estimate: `estimated cost: $X.XX (estimate: spot price history and AWS Price List)`,
    `... so far ...` while an attempt runs, or `estimated cost: unknown (why)`; None without an estimate."""
    if not estimate:
        return None
    if estimate.get("usd") is None:
        return "estimated cost: unknown (%s)" % estimate.get("why", "no price")
    return "estimated cost: $%.2f%s (estimate: spot price history and AWS Price List)" % (
        estimate["usd"], " so far" if estimate.get("running") else "")


def attempt_records(s3: Any, bucket: str, env: str, run_id: str) -> List[Dict[str, Any]]:
    """A run's attempt records (`runs/{id}/attempts/NNN.json`), in attempt order."""
    prefix = contract.run_prefix(env, run_id) + "attempts/"
    records = []
    for key in list_keys(s3, bucket, prefix):
        if key.endswith(".json"):
            doc = get_json(s3, bucket, key)
            if isinstance(doc, dict):
                records.append(doc)
    return records


def run_estimate(clients: Any, bucket: str, env: str, run_id: str, now: datetime) -> Optional[Dict[str, Any]]:
    """The estimate of a run from its attempt records in the bucket (None without records); a failure to read them
    is an estimate with `usd` None and the reason, never an error of `status`."""
    try:
        records = attempt_records(clients.s3, bucket, env, run_id)
    except Exception as e:  # noqa: BLE001
        return {"usd": None, "isEstimate": True, "basis": "", "attempts": [],
                "why": "the attempt records could not be read: %s" % (e,)}
    return estimate_run_cost(clients, records, now)
