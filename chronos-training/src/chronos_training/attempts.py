"""Next attempts (issue 29): the one way the attached CLI, the run keeper (keeper.py) and `resume` launch an attempt
after the first, the capacity wait, and the run's end event.

An attempt N is launched only by whoever creates its record `runs/{id}/attempts/NNN.json` first, with an S3
conditional write (store.create_json, `If-None-Match: *`); the others see the record and follow it. Each decision is
written into status.json with its reason, so that `status` and `logs` say what happened while nobody watched.
"""
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional

from . import contract
from .context import parse_iso
from .contract import RUN_OVER
from .ec2launch import Launched, LaunchRequest, NoCapacity, choose_image, launch_with_fallback
from .errors import ChronosError
from .foundation import Foundation
from .store import create_json, get_json, list_keys, put_json
from .watchdog import InstanceEnd

#: The capacity wait's retries: 2, 4, 8, 16 then every 30 minutes (docs/RUNS.md, "Waiting for capacity").
FIRST_RETRY_MINUTES = 2
MAX_RETRY_MINUTES = 30


@dataclass(frozen=True)
class Decision:
    """What next_attempt (or retry_capacity) did.

    action: `launched` (this caller launched `attempt`), `followed` (another launcher claimed it first), `waiting`
    (no capacity: `retry_at` is when to try again), `ended` (the run is over: `state`), `nothing` (the attempt still
    runs, or the run was over already)."""

    action: str
    attempt: int
    reason: str
    state: Optional[str] = None
    launched: Optional[Launched] = None
    retry_at: Optional[datetime] = None
    #: The launch's error, when the run ended `failed` because a launch failed for another cause than capacity.
    error: Optional[BaseException] = None


@dataclass(frozen=True)
class Overrides:
    """What `resume` may change for the attempts it launches (None: the spec's policy)."""

    instance_types: Optional[List[str]] = None
    markets: Optional[List[str]] = None
    #: The lifetime of each attempt from now on (spec.json's maxRunLifetimeSeconds), at most the foundation's.
    max_run_lifetime_seconds: Optional[int] = None


def retry_minutes(round_number: int) -> int:
    """The wait before capacity retry `round_number` (1, 2, ...): 2, 4, 8, 16, then 30 minutes."""
    return min(FIRST_RETRY_MINUTES * 2 ** max(round_number - 1, 0), MAX_RETRY_MINUTES)


def policy_of(spec: Dict[str, Any], foundation: Foundation) -> Any:
    """The run's RunPolicy from spec.json's `policy` (issue 29); a spec written before it gets the defaults of `run`."""
    from .commands import RunPolicy, markets_of
    p: Dict[str, Any] = spec["policy"] if isinstance(spec.get("policy"), dict) else {}
    types = list(p.get("instanceTypes") or ([foundation.template_instance_type]
                                            if foundation.template_instance_type else []))
    if not types:
        raise ChronosError("run %s has no instance types in its spec's policy, and the launch template has none"
                           % spec.get("runId"))
    markets = list(p.get("markets") or markets_of(None, foundation))
    image_id = p["imageId"] if "imageId" in p else choose_image(foundation, types, None).image_id
    hours = p.get("maxLifetimeHours") or contract.lifetime_tag_hours(
        spec.get("maxRunLifetimeSeconds") or foundation.max_lifetime_seconds)
    max_attempts = p.get("maxAttempts")
    on_demand_after = p.get("onDemandAfterInterruptions")
    return RunPolicy(instance_types=types, markets=markets, max_attempts=3 if max_attempts is None else int(max_attempts),
                     on_demand_after_interruptions=2 if on_demand_after is None else int(on_demand_after),
                     max_lifetime_hours=float(hours), image_id=image_id, name=spec.get("name"))


def capacity_wait_of(spec: Dict[str, Any]) -> int:
    p: Dict[str, Any] = spec["policy"] if isinstance(spec.get("policy"), dict) else {}
    wait = p.get("capacityWaitSeconds")
    return contract.DEFAULT_CAPACITY_WAIT_SECONDS if wait is None else int(wait)


def attempt_records(clients: Any, f: Foundation, run_id: str) -> Dict[int, Dict[str, Any]]:
    """The run's attempt records by number (the claims, which the agent's writes overwrite with the attempt's status)."""
    found: Dict[int, Dict[str, Any]] = {}
    for key in list_keys(clients.s3, f.bucket, contract.attempts_prefix(f.environment, run_id)):
        m = re.search(r"/attempts/(\d+)\.json$", key)
        if m:
            doc = get_json(clients.s3, f.bucket, key)
            if doc is not None:
                found[int(m.group(1))] = doc
    return found


def spot_interruptions(records: Dict[int, Dict[str, Any]]) -> int:
    """How many attempts ended `interrupted` on a spot instance."""
    return sum(1 for r in records.values()
               if r.get("state") == "interrupted" and (r.get("lifecycle") or r.get("market")) == "spot")


def _stop_requested(clients: Any, f: Foundation, run_id: str) -> Optional[Dict[str, Any]]:
    control = get_json(clients.s3, f.bucket, contract.control_key(f.environment, run_id))
    return control if control and control.get("action") == "stop" else None


def _who(launched_by: str) -> str:
    return {"cli": "launcher", "keeper": "keeper", "resume": "resume"}.get(launched_by, launched_by)


def _write_both(clients: Any, f: Foundation, run_id: str, attempt: int, doc: Dict[str, Any],
                record: Optional[Dict[str, Any]] = None) -> None:
    """Writes status.json and the attempt's record (the record keeps the launcher's fields: launchedBy, market...)."""
    put_json(clients.s3, f.bucket, contract.status_key(f.environment, run_id), doc)
    merged = dict(record or {})
    merged.update(doc)
    for k in ("launchedBy", "launchedAt", "market", "markets", "waitingForCapacitySince"):
        if record and k in record:
            merged[k] = record[k]
    put_json(clients.s3, f.bucket, contract.attempt_key(f.environment, run_id, attempt), merged)


def end_run(clients: Any, f: Foundation, run_id: str, attempt: int, base: Optional[Dict[str, Any]], state: str,
            reason: str, now: datetime, record: Optional[Dict[str, Any]] = None) -> Decision:
    """Writes the run's final status (`state`, `reason`) and publishes the end event once."""
    at = contract.iso(now)
    doc = dict(base if base and base.get("attempt") == attempt else contract.pending_status(run_id, attempt, now))
    doc.update(state=state, updatedAt=at, endedAt=doc.get("endedAt") or at, reason=reason)
    _write_both(clients, f, run_id, attempt, doc, record)
    publish_end_event_quietly(clients, f, run_id, now)
    return Decision("ended", attempt, reason, state=state)


def publish_end_event_quietly(clients: Any, f: Foundation, run_id: str, now: datetime,
                              log: Callable[[str], None] = print) -> None:
    """publish_end_event, whose failure is said and does not undo the decision (its claim is given back, so that the
    next caller that sees the run over publishes it)."""
    try:
        publish_end_event(clients, f, run_id, now)
    except Exception as e:  # noqa: BLE001
        log("[chronos] run %s: the end event was not published: %s" % (run_id, e))


def next_attempt(clients: Any, f: Foundation, run_id: str, launched_by: str, now: Callable[[], datetime],
                 log: Callable[[str], None] = lambda _l: None, ended_attempt: Optional[int] = None,
                 end: Optional[InstanceEnd] = None) -> Decision:
    """Decides what follows the run's last attempt, and does it: a next attempt (claimed, then launched) after an
    `interrupted` attempt or a spot instance EC2 reclaimed without a final status; none after a stop (control.json),
    the run reaper's kill, `failed`, `succeeded`, `timed-out`, or when `maxAttempts` is reached (then the run's final
    state stays `interrupted`, with the reason, and the end event is published). `end` is how the last attempt's
    instance ended, if it did (watchdog.end_of); `ended_attempt` the attempt the caller saw end (a later claim means
    another launcher went on: followed)."""
    env = f.environment
    spec = get_json(clients.s3, f.bucket, contract.spec_key(env, run_id))
    if not spec:
        raise ChronosError("run %s has no spec.json in environment %s" % (run_id, env))
    status = get_json(clients.s3, f.bucket, contract.status_key(env, run_id))
    records = attempt_records(clients, f, run_id)
    last = max(list(records) + [int((status or {}).get("attempt") or 0)])
    if ended_attempt is not None and last > ended_attempt:
        return Decision("followed", last, "attempt %d was launched by the %s" % (
            last, _who(str(records.get(last, {}).get("launchedBy") or "cli"))))
    if get_json(clients.s3, f.bucket, contract.ended_key(env, run_id, last)):
        return Decision("nothing", last, "run %s is over" % run_id, state=(status or {}).get("state"))
    record = records.get(last)
    s = status if status and status.get("attempt") == last else record
    state = (s or {}).get("state") or "pending"
    if state in RUN_OVER:
        publish_end_event_quietly(clients, f, run_id, now())
        return Decision("ended", last, "run %s %s" % (run_id, state), state=state)
    if state in ("pending", "running"):
        if record and not record.get("instanceId") and record.get("waitingForCapacitySince"):
            return Decision("waiting", last, (s or {}).get("reason") or "waiting for capacity")
        if end is None:
            return Decision("nothing", last, "attempt %d is %s" % (last, state))
        what = "attempt %d: %s is %s but the run's status says %s: %s" % (last, end.instance_id, end.state, state,
                                                                         end.reason)
        if not end.resumable:
            if _stop_requested(clients, f, run_id):
                return end_run(clients, f, run_id, last, s, "stopped", "stopped on request; %s" % what, now(), record)
            return end_run(clients, f, run_id, last, s, "failed", what, now(), record)
        log("%s; the agent wrote no final status: the attempt counts as interrupted" % what)
        at = contract.iso(now())
        s = dict(s or contract.pending_status(run_id, last, now()), attempt=last, state="interrupted", updatedAt=at,
                 endedAt=at, lifecycle=(s or {}).get("lifecycle") or (record or {}).get("market") or "spot",
                 reason="instance %s without a final status: %s" % (end.state, end.reason))
        _write_both(clients, f, run_id, last, s, record)
        records[last] = dict(record or {}, **s)
    # The attempt ended `interrupted` (status.json says it; the agent's record may lag).
    records[last] = dict(record or {}, **(s or {}))
    stop = _stop_requested(clients, f, run_id)
    if stop:
        return end_run(clients, f, run_id, last, s, "stopped", "stopped on request (chronos-training stop%s); attempt %d "
                       "was interrupted (%s) and no next attempt is launched" % (
                           (", %s" % stop["requestedAt"]) if stop.get("requestedAt") else "", last,
                           (s or {}).get("reason") or "no reason given"), now(), record)
    if end is not None and end.reaper:
        return end_run(clients, f, run_id, last, s, "failed", "attempt %d: %s: %s" % (last, end.instance_id, end.reason),
                       now(), record)
    policy = policy_of(spec, f)
    if last >= policy.max_attempts:
        return end_run(clients, f, run_id, last, s, "interrupted", "attempt %d was interrupted (%s) and maxAttempts %d is "
                       "reached: no next attempt; the run's last checkpoint stays in S3 (chronos-training resume %s)" % (
                           last, (s or {}).get("reason") or "no reason given", policy.max_attempts, run_id), now(),
                       record)
    interruptions = spot_interruptions(records)
    markets = list(policy.markets)
    if "on-demand" in markets and "spot" in markets and interruptions >= policy.on_demand_after_interruptions:
        markets = ["on-demand"]
        log("%d spot interruption(s): the next attempts are on-demand" % interruptions)
    was_spot = ((s or {}).get("lifecycle") or (record or {}).get("market")) == "spot"
    why = "%s: attempt %d launched after %s of attempt %d" % (
        _who(launched_by), last + 1, "spot interruption" if was_spot else "interruption", last)
    return claim_and_launch(clients, f, run_id, last + 1, policy, markets, launched_by, why, now, log)


def claim_and_launch(clients: Any, f: Foundation, run_id: str, attempt: int, policy: Any, markets: List[str],
                     launched_by: str, why: str, now: Callable[[], datetime],
                     log: Callable[[str], None] = lambda _l: None) -> Decision:
    """Claims attempt `attempt` (creates its record, If-None-Match: *) and launches it; `followed` when another
    launcher's claim came first."""
    claim = contract.attempt_claim(run_id, attempt, launched_by, now())
    claim["markets"] = list(markets)
    if not create_json(clients.s3, f.bucket, contract.attempt_key(f.environment, run_id, attempt), claim):
        other = get_json(clients.s3, f.bucket, contract.attempt_key(f.environment, run_id, attempt)) or {}
        log("attempt %d was claimed by the %s first: following it" % (attempt, _who(str(other.get("launchedBy")))))
        return Decision("followed", attempt, "attempt %d was claimed by the %s" % (
            attempt, _who(str(other.get("launchedBy")))))
    log(why)
    return _launch_claimed(clients, f, run_id, attempt, policy, markets, claim, why, now, log, since=None)


def _launch_claimed(clients: Any, f: Foundation, run_id: str, attempt: int, policy: Any, markets: List[str],
                    record: Dict[str, Any], why: str, now: Callable[[], datetime], log: Callable[[str], None],
                    since: Optional[str], round_number: int = 0) -> Decision:
    env = f.environment
    pending = contract.pending_status(run_id, attempt, now())
    pending["reason"] = why
    put_json(clients.s3, f.bucket, contract.status_key(env, run_id), pending)
    try:
        launched = launch_with_fallback(clients, f, LaunchRequest(
            run_id=run_id, attempt=attempt, name=policy.name, instance_types=policy.instance_types, markets=markets,
            max_lifetime_hours=policy.max_lifetime_hours, image_id=policy.image_id), log)
    except NoCapacity as e:
        spec = get_json(clients.s3, f.bucket, contract.spec_key(env, run_id)) or {}
        wait = capacity_wait_of(spec)
        at = now()
        since = since or contract.iso(at)
        deadline = datetime.fromtimestamp(parse_iso(since), at.tzinfo) + timedelta(seconds=wait)
        if at >= deadline:
            return end_run(clients, f, run_id, attempt, pending, "failed", "launch failed: no capacity since %s, for the "
                           "whole capacity wait of %d s: %s" % (since, wait, e), at, dict(record, waitingForCapacitySince=since))
        retry_at = min(at + timedelta(minutes=retry_minutes(round_number + 1)), deadline)
        reason = "waiting for capacity since %s (next try at %s, until %s): %s" % (
            since, contract.iso(retry_at), contract.iso(deadline), why.replace(" launched after ", " claimed after "))
        _write_both(clients, f, run_id, attempt, dict(pending, reason=reason),
                    dict(record, waitingForCapacitySince=since))
        log(reason)
        return Decision("waiting", attempt, reason, state="pending", retry_at=retry_at)
    except Exception as e:  # noqa: BLE001
        log("run %s: attempt %d could not be launched" % (run_id, attempt))
        ended = end_run(clients, f, run_id, attempt, pending, "failed", "launch failed: %s" % e, now(), record)
        return Decision(ended.action, attempt, ended.reason, state=ended.state, error=e)
    log("attempt %d: %s (%s %s in %s) won after %d %s" % (
        attempt, launched.instance_id, launched.market, launched.instance_type, launched.zone, launched.tries,
        "try" if launched.tries == 1 else "tries"))
    if since is not None:
        log(why)
    record = dict(record, instanceId=launched.instance_id, instanceType=launched.instance_type, market=launched.market,
                  availabilityZone=launched.zone)
    put_json(clients.s3, f.bucket, contract.attempt_key(env, run_id, attempt), record)
    return Decision("launched", attempt, why, state="pending", launched=launched)


def retry_capacity(clients: Any, f: Foundation, run_id: str, launched_by: str, now: Callable[[], datetime],
                   log: Callable[[str], None] = lambda _l: None) -> Decision:
    """One retry of an attempt waiting for capacity: claims the retry round (`capacity/{attempt}-{round}.json`,
    If-None-Match: *) so that of the keeper's schedule and an attached CLI one tries, then launches; past the run's
    capacity wait the run fails."""
    env = f.environment
    records = attempt_records(clients, f, run_id)
    if not records:
        return Decision("nothing", 0, "run %s has no attempt record" % run_id)
    attempt = max(records)
    record = records[attempt]
    if get_json(clients.s3, f.bucket, contract.ended_key(env, run_id, attempt)):
        return Decision("nothing", attempt, "run %s is over" % run_id)
    since = record.get("waitingForCapacitySince")
    if record.get("instanceId") or not since:
        return Decision("nothing", attempt, "attempt %d is not waiting for capacity" % attempt)
    prefix = contract.run_prefix(env, run_id) + "capacity/%03d-" % attempt
    round_number = len(list_keys(clients.s3, f.bucket, prefix)) + 1
    if not create_json(clients.s3, f.bucket, contract.capacity_claim_key(env, run_id, attempt, round_number),
                       {"schemaVersion": contract.SCHEMA_VERSION, "attempt": attempt, "round": round_number,
                        "by": launched_by, "at": contract.iso(now())}):
        return Decision("followed", attempt, "capacity retry %d of attempt %d was claimed by another launcher"
                        % (round_number, attempt))
    status = get_json(clients.s3, f.bucket, contract.status_key(env, run_id))
    if _stop_requested(clients, f, run_id):
        return end_run(clients, f, run_id, attempt, status, "stopped", "stopped on request while attempt %d waited for "
                       "capacity (since %s)" % (attempt, since), now(), record)
    spec = get_json(clients.s3, f.bucket, contract.spec_key(env, run_id)) or {}
    policy = policy_of(spec, f)
    markets = list(record.get("markets") or policy.markets)
    why = "%s: attempt %d launched after waiting for capacity since %s (retry %d)" % (
        _who(launched_by), attempt, since, round_number)
    log("capacity retry %d of attempt %d" % (round_number, attempt))
    return _launch_claimed(clients, f, run_id, attempt, policy, markets, record, why, now, log, since=since,
                           round_number=round_number)


def end_event_detail(spec: Dict[str, Any], status: Dict[str, Any], records: Dict[int, Dict[str, Any]], env: str,
                     run_id: str, now: datetime, cost: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The end event's Detail (docs/RUNS.md, "The end event")."""
    created = spec.get("createdAt")
    ended = status.get("endedAt") or contract.iso(now)
    duration = int(round(parse_iso(ended) - parse_iso(created))) if created else None
    return {
        "environment": env,
        "runId": run_id,
        "name": spec.get("name"),
        "state": status.get("state"),
        "reason": status.get("reason"),
        "attempts": max(list(records) + [int(status.get("attempt") or 0)]),
        "durationSeconds": duration,
        "estimatedCostUsd": round(float(cost["usd"]), 4) if cost and cost.get("usd") is not None else None,
        "costIsEstimate": True,
        "logsCommand": "chronos-training logs %s --env %s" % (run_id, env),
    }


def _estimate_cost(clients: Any, records: Dict[int, Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """cost.estimate_run_cost (issue 29's cost module) when this package has it; None otherwise or when it fails."""
    try:
        import importlib
        cost: Any = importlib.import_module(__package__ + ".cost")
    except ImportError:
        return None
    try:
        estimate: Optional[Dict[str, Any]] = cost.estimate_run_cost(clients, [records[n] for n in sorted(records)])
        return estimate
    except Exception:  # noqa: BLE001
        return None


def publish_end_event(clients: Any, f: Foundation, run_id: str, now: datetime) -> bool:
    """Publishes the run's end event once: whoever creates `runs/{id}/ended/{attempt}.json` (If-None-Match: *) sends
    it with events:PutEvents to the default bus. True when this call published it. A PutEvents that fails gives the
    claim back (deletes it, where the caller may) and raises, so that the next caller publishes it."""
    env = f.environment
    spec = get_json(clients.s3, f.bucket, contract.spec_key(env, run_id)) or {}
    status = get_json(clients.s3, f.bucket, contract.status_key(env, run_id)) or {}
    if status.get("state") not in RUN_OVER and status.get("state") != "interrupted":
        return False
    key = contract.ended_key(env, run_id, int(status.get("attempt") or 0))
    if not create_json(clients.s3, f.bucket, key, {"schemaVersion": contract.SCHEMA_VERSION, "runId": run_id,
                                                   "state": status.get("state"), "at": contract.iso(now)}):
        return False
    try:
        records = attempt_records(clients, f, run_id)
        detail = end_event_detail(spec, status, records, env, run_id, now, _estimate_cost(clients, records))
        reply = clients.events.put_events(Entries=[end_event_entry(detail)])
        if reply.get("FailedEntryCount"):
            entry = (reply.get("Entries") or [{}])[0]
            raise ChronosError("PutEvents refused the end event of run %s: %s %s" % (
                run_id, entry.get("ErrorCode"), entry.get("ErrorMessage")))
    except Exception:
        try:
            clients.s3.delete_object(Bucket=f.bucket, Key=key)
        except Exception:  # noqa: BLE001 (a launcher's grant denies deletes under runs/: the event is lost)
            pass
        raise
    return True


#: PutEvents: "The maximum size for a PutEvents event entry is 256 KB" (EventBridge User Guide, "Calculating
#: PutEvents event entry size"); Source and DetailType are required for an entry to be accepted.
MAX_ENTRY_BYTES = 256 * 1024


def end_event_entry(detail: Dict[str, Any]) -> Dict[str, Any]:
    """The PutEvents entry of the end event, checked against the entry size limit."""
    body = json.dumps(detail, separators=(",", ":"))
    if len(body.encode("utf-8")) + len(contract.END_EVENT_SOURCE) + len(contract.END_EVENT_DETAIL_TYPE) > MAX_ENTRY_BYTES:
        detail = dict(detail, reason=(detail.get("reason") or "")[:1000])
        body = json.dumps(detail, separators=(",", ":"))
    return {"Source": contract.END_EVENT_SOURCE, "DetailType": contract.END_EVENT_DETAIL_TYPE, "Detail": body,
            "EventBusName": "default"}


def first_attempt(clients: Any, f: Foundation, run_id: str, policy: Any, markets: List[str],
                  log: Callable[[str], None], now: Callable[[], datetime], sleep: Callable[[float], None],
                  interrupted: Callable[[], bool] = lambda: False) -> Launched:
    """Claims and launches attempt 1 (`run`); when no zone, type or market has capacity the launcher itself waits and
    tries again (2, 4, 8... minutes) until the run's capacity wait ends, attached or not (`--detach` returns once
    attempt 1 is launched). A launch that fails otherwise ends the run `failed` and raises its error."""
    decision = claim_and_launch(clients, f, run_id, 1, policy, markets, "cli", "launcher: attempt 1", now, log)
    return until_launched(clients, f, run_id, decision, "cli", log, now, sleep, interrupted)


def until_launched(clients: Any, f: Foundation, run_id: str, decision: Decision, launched_by: str,
                   log: Callable[[str], None], now: Callable[[], datetime], sleep: Callable[[float], None],
                   interrupted: Callable[[], bool] = lambda: False) -> Launched:
    """Waits for capacity in this process until the attempt of `decision` is launched (its Launched), or raises."""
    while True:
        if decision.action == "launched" and decision.launched is not None:
            return decision.launched
        if decision.error is not None:
            raise decision.error
        if decision.action == "ended":
            raise ChronosError("run %s %s: %s" % (run_id, decision.state, decision.reason))
        if decision.action == "nothing":
            raise ChronosError("run %s: %s" % (run_id, decision.reason))
        if decision.retry_at is not None:
            sleep(max((decision.retry_at - now()).total_seconds(), 0))
        if interrupted():
            end_run(clients, f, run_id, decision.attempt,
                    get_json(clients.s3, f.bucket, contract.status_key(f.environment, run_id)),
                    "stopped", "cancelled while waiting for capacity (Ctrl-C); continue it with chronos-training "
                    "resume %s" % run_id, now())
            raise ChronosError("interrupted while run %s waited for capacity: it is stopped; continue it with: "
                               "chronos-training resume %s --env %s" % (run_id, run_id, f.environment), 130)
        decision = retry_capacity(clients, f, run_id, launched_by, now, log)


#: The states `resume` continues.
RESUMABLE = ("stopped", "timed-out", "failed", "interrupted")


def resume_run(clients: Any, f: Foundation, run_id: str, now: Callable[[], datetime], log: Callable[[str], None],
               overrides: Optional[Overrides] = None, sleep: Callable[[float], None] = lambda _s: None,
               interrupted: Callable[[], bool] = lambda: False) -> Decision:
    """`resume RUN`: continues a run that ended stopped, timed-out, failed or interrupted, as its next attempt (same
    run ID; the agent restores the run's last whole checkpoint), with the spec's policy and `overrides` (recorded in
    the attempt record). A stop request (control.json) is replaced by `{"action": "resume"}` once the attempt is
    claimed, so that the new attempt runs (the agent stops only on `stop`; the launcher's grant may not delete). Waits
    for capacity in this process."""
    env = f.environment
    spec = get_json(clients.s3, f.bucket, contract.spec_key(env, run_id))
    status = get_json(clients.s3, f.bucket, contract.status_key(env, run_id))
    if not spec or not status:
        raise ChronosError("no run %s with a spec and a status in environment %s (an AWS Batch job's run is resumed "
                           "by Batch)" % (run_id, env))
    state = status.get("state")
    if state not in RESUMABLE:
        raise ChronosError("run %s is %s: resume continues a run that ended %s" % (
            run_id, state, ", ".join(RESUMABLE[:-1]) + " or " + RESUMABLE[-1]))
    records = attempt_records(clients, f, run_id)
    last = max(list(records) + [int(status.get("attempt") or 0)])
    if status.get("attempt") != last:
        raise ChronosError("run %s: attempt %d was claimed already (%s): it is being resumed" % (
            run_id, last, records.get(last, {}).get("launchedBy")))
    o = overrides or Overrides()
    if o.max_run_lifetime_seconds and o.max_run_lifetime_seconds > f.max_lifetime_seconds:
        raise ChronosError("--max-run-lifetime of %d s is longer than the foundation's %d s" % (
            o.max_run_lifetime_seconds, f.max_lifetime_seconds), 2)
    policy = policy_of(spec, f)
    markets = list(o.markets or policy.markets)
    claim = contract.attempt_claim(run_id, last + 1, "resume", now())
    claim["markets"] = markets
    claim["overrides"] = {k: v for k, v in (("instanceTypes", o.instance_types), ("markets", o.markets),
                                            ("maxRunLifetimeSeconds", o.max_run_lifetime_seconds)) if v}
    if not create_json(clients.s3, f.bucket, contract.attempt_key(env, run_id, last + 1), claim):
        raise ChronosError("run %s: attempt %d was claimed by another launcher first" % (run_id, last + 1))
    if _stop_requested(clients, f, run_id):
        put_json(clients.s3, f.bucket, contract.control_key(env, run_id),
                 {"schemaVersion": contract.SCHEMA_VERSION, "action": "resume", "requestedAt": contract.iso(now())})
    if claim["overrides"]:
        # The overrides hold for the run's next attempts too (the keeper reads the policy from the spec).
        new_policy = dict(spec.get("policy") or contract.run_policy(
            policy.instance_types, policy.markets, policy.max_attempts, policy.on_demand_after_interruptions,
            capacity_wait_of(spec), policy.image_id, policy.max_lifetime_hours))
        if o.instance_types:
            new_policy["instanceTypes"] = list(o.instance_types)
        if o.markets:
            new_policy["markets"] = list(o.markets)
        if o.max_run_lifetime_seconds:
            spec["maxRunLifetimeSeconds"] = o.max_run_lifetime_seconds
            new_policy["maxLifetimeHours"] = contract.lifetime_tag_hours(o.max_run_lifetime_seconds)
        spec["policy"] = new_policy
        put_json(clients.s3, f.bucket, contract.spec_key(env, run_id), spec)
        policy = policy_of(spec, f)
    why = "resume: attempt %d launched after the run ended %s (attempt %d)%s" % (
        last + 1, state, last, (" with %s" % json.dumps(claim["overrides"], sort_keys=True)) if claim["overrides"] else "")
    log(why)
    decision = _launch_claimed(clients, f, run_id, last + 1, policy, markets, claim, why, now, log, since=None)
    if decision.action == "waiting":
        launched = until_launched(clients, f, run_id, decision, "resume", log, now, sleep, interrupted)
        return Decision("launched", last + 1, why, state="pending", launched=launched)
    if decision.error is not None:
        raise decision.error
    if decision.action == "ended":
        raise ChronosError("run %s %s: %s" % (run_id, decision.state, decision.reason))
    return decision
