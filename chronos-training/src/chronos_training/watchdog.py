"""How the launcher reads the end of an attempt's instance, from its state and `StateReason` in EC2."""
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from .store import tag_of

ENDED = frozenset(["terminated", "shutting-down", "stopped", "stopping"])
WATCHDOG_SECONDS = 60


@dataclass(frozen=True)
class InstanceEnd:
    """How an attempt's instance ended."""

    instance_id: str
    #: `terminated`, `shutting-down` or `stopped`.
    state: str
    #: `StateReason.Code`, if EC2 gave one.
    code: Optional[str]
    #: Whether the run goes on with a next attempt: only when EC2 reclaimed a spot instance.
    resumable: bool
    #: Whether the run reaper ended it (it outlived its `MaxLifetimeHours` tag).
    reaper: bool
    #: The end, in words.
    reason: str


def _timestamp(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _transition_time(instance: Dict[str, Any]) -> Optional[float]:
    """The time of the last state change, from `StateTransitionReason`, e.g. `User initiated (2026-12-01 12:00:00
    GMT)` (EC2 API Reference, Instance, StateTransitionReason); None when it holds none."""
    m = re.search(r"\((\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) (GMT|UTC)\)", instance.get("StateTransitionReason") or "")
    return _timestamp("%sT%s+00:00" % (m.group(1), m.group(2))) if m else None


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def end_of(instance: Dict[str, Any], now: datetime) -> Optional[InstanceEnd]:
    """How an instance ended, or None while it has not. EC2 API Reference, "StateReason":
    `Server.SpotInstanceTermination` / `Server.SpotInstanceShutdown` (EC2 reclaimed the spot instance: the run goes
    on), `Client.UserInitiatedShutdown` (a user, `stop --now`, or the run reaper when the instance outlived its
    `MaxLifetimeHours` tag), `Client.InstanceInitiatedShutdown`, `Client.InternalError`. Every end but a spot reclaim
    ends the run."""
    state = (instance.get("State") or {}).get("Name") or ""
    if state not in ENDED:
        return None
    instance_id = instance.get("InstanceId") or "?"
    reason_doc = instance.get("StateReason") or {}
    code = reason_doc.get("Code")
    message = reason_doc.get("Message") or ""

    def end(reason: str, resumable: bool = False, reaper: bool = False) -> InstanceEnd:
        return InstanceEnd(instance_id, state, code, resumable, reaper, reason)

    if code and code.startswith("Server.SpotInstance"):
        return end("EC2 reclaimed the spot instance (%s)" % code, resumable=True)
    if code == "Client.UserInitiatedShutdown":
        tag = _number(tag_of(instance, "MaxLifetimeHours"))
        launched = _timestamp(instance.get("LaunchTime"))
        ended_at = _transition_time(instance)
        if ended_at is None:
            ended_at = now.timestamp()
        if tag > 0 and launched is not None and ended_at - launched >= tag * 3600:
            return end("the run reaper terminated it (%s): it outlived its MaxLifetimeHours tag of %s h, counted from "
                       "its launch" % (code, tag_of(instance, "MaxLifetimeHours")), reaper=True)
        return end("it was terminated or stopped through the EC2 API or console (%s): by a user, or chronos-training "
                   "stop --now" % code)
    if code == "Client.InstanceInitiatedShutdown":
        return end("it shut down from its own operating system (%s) before the agent wrote a final status" % code)
    if code == "Client.InternalError":
        return end("EC2 ended it during launch (%s%s); a common cause is a KMS key of its EBS volumes (the account's "
                   "default EBS key, or the template's) that the launch may not use (kms:CreateGrant, kms:Decrypt)"
                   % (code, (": %s" % message) if message else ""))
    detail = ("%s%s" % (code, (": %s" % message) if message else "")) if code else "EC2 gave no StateReason"
    return end("it is %s (%s)" % (state, detail))


class InstanceWatchdog:
    """Whether an attempt's instance has ended while its status still says `pending` or `running`: checked at most
    every WATCHDOG_SECONDS, and reported only when it stays so for a further WATCHDOG_SECONDS (the agent writes its
    final status before it powers off, so a short overlap is normal). An attempt whose status says `interrupted` is
    over whatever its instance does: it is not watched."""

    def __init__(self, clients: Any, now: Any) -> None:
        self.clients = clients
        self.now = now
        self.last_check = float("-inf")
        self.ended_since: Dict[str, float] = {}

    def gone(self, instance_id: str, state: str) -> Optional[InstanceEnd]:
        if state not in ("pending", "running"):
            return None
        now = self.now().timestamp()
        if now - self.last_check < WATCHDOG_SECONDS:
            return None
        self.last_check = now
        found = self.look(instance_id)
        if found is None:
            self.ended_since.pop(instance_id, None)
            return None
        since = self.ended_since.setdefault(instance_id, now)
        return found if now - since >= WATCHDOG_SECONDS else None

    def look(self, instance_id: str) -> Optional[InstanceEnd]:
        """How the instance ended, now; None while it runs, or when EC2 cannot say."""
        try:
            reply = self.clients.ec2.describe_instances(InstanceIds=[instance_id])
            reservations = reply.get("Reservations") or []
            instances = reservations[0].get("Instances") if reservations else None
            return end_of(instances[0], self.now()) if instances else None
        except Exception:  # noqa: BLE001
            return None
