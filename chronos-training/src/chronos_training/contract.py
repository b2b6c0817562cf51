"""The contract between the launcher and the run agent (docs/RUNS.md): the bucket's key layout, the spec and status
documents, the run states and the schema version.

This module is the single source of the contract on the Python side. It imports nothing but the standard library and
holds no I/O. The run agent (chronos_training/agent/chronos_run_agent.py) stays one standard-library file, which the
launcher uploads with each run (AGENT) and the instance fetches, and cannot import it. So the agent writes the same
literals, and tests/test_contract.py checks it the other way round: every key format of the agent is one of
AGENT_KEY_FORMATS, each of those is in the agent, its SCHEMA is SCHEMA_VERSION and it writes only STATES.
"""
import re
import secrets
from datetime import datetime, timezone
from typing import Any, Dict, FrozenSet, List, Optional

#: The contract version this package knows (docs/RUNS.md, "Contract version"). A reader refuses a higher one.
SCHEMA_VERSION = 1

#: A run ID (docs/RUNS.md, "The run ID and the attempt").
RUN_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,62}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)

#: Every state of status.json.
STATES = ("pending", "running", "succeeded", "failed", "interrupted", "timed-out", "stopped")
#: The states that end the run (`interrupted` ends only the attempt).
RUN_OVER: FrozenSet[str] = frozenset(["succeeded", "failed", "timed-out", "stopped"])

#: The log streams of an attempt, in the order their chunks of one number are printed.
STREAMS = ("setup", "stdout", "stderr", "agent")

#: The margin between a run's lifetime and its `MaxLifetimeHours` tag, which the run reaper enforces from the
#: instance's `LaunchTime`: the boot before the agent starts counting, its drain and its backstop (docs/RUNS.md).
LIFETIME_MARGIN_SECONDS = 900

#: The environment name rule of the library: lower case letters, digits and '-'.
ENV_PATTERN = r"^[a-z]([a-z0-9-]*[a-z0-9])?$"


#: The key formats (`%` templates) of the bucket layout (docs/RUNS.md, "The bucket layout"): `{attempt}` zero-padded to
#: three digits, `{sequence}` and `{chunk}` to ten. A run's documents are under RUN_PREFIX; an attempt's record
#: (ATTEMPT_RECORD) after it, and a checkpoint's data and manifest after CHECKPOINTS_PREFIX.
RUN_PREFIX = "%s/runs/%s/"
ATTEMPT_RECORD = "%sattempts/%03d.json"
LOG_KEY = "%s/logs/%s/%03d/%s/%010d.log"
CODE_MANIFEST_KEY = "%s/code/manifests/%s.json"
BLOB_KEY = "%s/code/blobs/%s"
CHECKPOINTS_PREFIX = "%s/checkpoints/%s/"
CHECKPOINT_DATA = "%sdata/%010d/%s"
CHECKPOINT_MANIFEST = "%smanifests/%010d.json"
ARTIFACT_KEY = "%s/artifacts/%s/%s"
#: A setup's cached result, by the SHA-256 of what makes it (docs/RUNS.md, "The setup and its cache").
SETUP_CACHE_KEY = "%s/cache/setup/%s.tar"
#: The formats the run agent writes as literals (tests/test_contract.py checks them against its source).
AGENT_KEY_FORMATS = (RUN_PREFIX, ATTEMPT_RECORD, LOG_KEY, CODE_MANIFEST_KEY, BLOB_KEY, CHECKPOINTS_PREFIX,
                     CHECKPOINT_DATA, CHECKPOINT_MANIFEST, ARTIFACT_KEY, SETUP_CACHE_KEY)
#: The run's documents under RUN_PREFIX.
SPEC, STATUS, CONTROL = "spec.json", "status.json", "control.json"
#: The run's agent under RUN_PREFIX: the launcher uploads its own when the run starts, and each attempt's boot script
#: fetches it (docs/RUNS.md, "On the instance"), so every attempt runs the agent of the launcher that wrote the spec.
AGENT = "agent/chronos_run_agent.py"


def pad(n: int, width: int) -> str:
    """`n` zero-padded to `width` digits (attempts: 3, sequences and chunks: 10)."""
    return str(n).rjust(width, "0")


def run_prefix(env: str, run_id: str) -> str:
    return RUN_PREFIX % (env, run_id)


def spec_key(env: str, run_id: str) -> str:
    return run_prefix(env, run_id) + SPEC


def status_key(env: str, run_id: str) -> str:
    return run_prefix(env, run_id) + STATUS


def attempt_key(env: str, run_id: str, attempt: int) -> str:
    return ATTEMPT_RECORD % (run_prefix(env, run_id), attempt)


def agent_key(env: str, run_id: str) -> str:
    return run_prefix(env, run_id) + AGENT


def control_key(env: str, run_id: str) -> str:
    return run_prefix(env, run_id) + CONTROL


def runs_prefix(env: str) -> str:
    return "%s/runs/" % env


def logs_prefix(env: str, run_id: str) -> str:
    return "%s/logs/%s/" % (env, run_id)


def log_stream_prefix(env: str, run_id: str, attempt: int, stream: str) -> str:
    return "%s%s/%s/" % (logs_prefix(env, run_id), pad(attempt, 3), stream)


def log_key(env: str, run_id: str, attempt: int, stream: str, chunk: int) -> str:
    return LOG_KEY % (env, run_id, attempt, stream, chunk)


def blobs_prefix(env: str) -> str:
    return "%s/code/blobs/" % env


def blob_key(env: str, sha256: str) -> str:
    return BLOB_KEY % (env, sha256)


def code_manifest_key(env: str, sha256: str) -> str:
    return CODE_MANIFEST_KEY % (env, sha256)


def checkpoint_data_key(env: str, run_id: str, sequence: int, path: str) -> str:
    return CHECKPOINT_DATA % (CHECKPOINTS_PREFIX % (env, run_id), sequence, path)


def checkpoint_manifest_key(env: str, run_id: str, sequence: int) -> str:
    return CHECKPOINT_MANIFEST % (CHECKPOINTS_PREFIX % (env, run_id), sequence)


def artifact_key(env: str, run_id: str, path: str) -> str:
    return ARTIFACT_KEY % (env, run_id, path)


def is_run_id(run_id: str) -> bool:
    """Whether `run_id` matches RUN_ID_PATTERN."""
    return bool(_RUN_ID.match(run_id))


def iso(at: datetime) -> str:
    """A time as the contract writes it: UTC, milliseconds, `Z` (`2026-12-01T12:00:00.000Z`)."""
    at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (at.microsecond // 1000)


def new_run_id(name: Optional[str], now: datetime) -> str:
    """`{name}-{yyyymmdd}-{hhmmss}-{6 hex}`, or `run-...` without a name; the name is lower-cased and cut to fit."""
    now = now.astimezone(timezone.utc)
    stamp = "%s-%s" % (now.strftime("%Y%m%d-%H%M%S"), secrets.token_hex(3))
    prefix = re.sub(r"[^a-z0-9-]+", "-", (name or "run").lower())
    prefix = re.sub(r"-{2,}", "-", re.sub(r"^-+|-+$", "", prefix))
    if prefix == "":
        prefix = "run"
    prefix = prefix[: 63 - len(stamp) - 1].rstrip("-")
    run_id = "%s-%s" % (prefix, stamp)
    if not is_run_id(run_id):
        raise ValueError("made an invalid run ID %s" % run_id)
    return run_id


def pending_status(run_id: str, attempt: int, now: datetime) -> Dict[str, Any]:
    """The `pending` status.json (version 1) the launcher writes before an attempt's agent runs."""
    at = iso(now)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "runId": run_id,
        "state": "pending",
        "attempt": attempt,
        "instanceId": None,
        "instanceType": None,
        "lifecycle": None,
        "availabilityZone": None,
        "startedAt": at,
        "updatedAt": at,
        "endedAt": None,
        "exitCode": None,
        "lastCheckpoint": None,
        "reason": None,
        "agentVersion": None,
    }


def run_spec(run_id: str, environment: str, command: List[str], manifest_key: str, max_run_lifetime_seconds: int,
             created_at: datetime, created_by: str, name: Optional[str] = None,
             env: Optional[Dict[str, str]] = None, policy: Optional[Dict[str, Any]] = None,
             keep_checkpoints: Optional[int] = None, secrets: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """spec.json, version 1, with its fields in the contract's order (optional ones only when given; `policy`: the
    run's RunPolicy as run_policy() writes it, which every next attempt and `resume` follow; `secrets` maps an
    environment variable to the name of its SSM parameter, never a value)."""
    spec: Dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "runId": run_id}
    if name:
        spec["name"] = name
    spec["environment"] = environment
    spec["command"] = list(command)
    if env:
        spec["env"] = dict(env)
    if secrets:
        spec["secrets"] = dict(secrets)
    spec["code"] = {"manifestKey": manifest_key}
    spec["maxRunLifetimeSeconds"] = max_run_lifetime_seconds
    spec["createdAt"] = iso(created_at)
    spec["createdBy"] = created_by
    if policy is not None:
        spec["policy"] = dict(policy)
    if keep_checkpoints is not None:  # absent: the agent keeps 2 (docs/RUNS.md, "Checkpoints")
        spec["checkpoints"] = {"keep": keep_checkpoints}
    return spec


#: How long a run waits for capacity by default when every zone, type and market fails for capacity (6 h).
DEFAULT_CAPACITY_WAIT_SECONDS = 21600

#: Who launched an attempt (the attempt record's `launchedBy`).
LAUNCHERS = ("cli", "keeper", "resume")

#: The end-event claims under RUN_PREFIX, one per attempt that ended the run (created once, by whoever publishes the
#: end event; a resumed run that ends again has a later attempt: no object is ever deleted, which the launcher's
#: grant would deny) and the capacity wait's retry claims (`capacity/{attempt}-{round}.json`).
ENDED = "%sended/%03d.json"
CAPACITY_CLAIM = "%scapacity/%03d-%03d.json"

#: The end event (EventBridge PutEvents, default bus): docs/RUNS.md, "The end event".
END_EVENT_SOURCE = "chronos.training"
END_EVENT_DETAIL_TYPE = "Chronos Training Run Ended"


def run_policy(instance_types: List[str], markets: List[str], max_attempts: int, on_demand_after_interruptions: int,
               capacity_wait_seconds: int, image_id: Optional[str], max_lifetime_hours: float) -> Dict[str, Any]:
    """spec.json's `policy`: how every attempt of the run is launched (docs/RUNS.md, "The run's policy")."""
    return {"instanceTypes": list(instance_types), "markets": list(markets), "maxAttempts": max_attempts,
            "onDemandAfterInterruptions": on_demand_after_interruptions, "capacityWaitSeconds": capacity_wait_seconds,
            "imageId": image_id, "maxLifetimeHours": max_lifetime_hours}


def attempt_claim(run_id: str, attempt: int, launched_by: str, now: datetime) -> Dict[str, Any]:
    """The attempt record a launcher creates (If-None-Match: *) to claim attempt `attempt`: a `pending` status of that
    attempt with who launched it and when; the launch fills `instanceId`, `instanceType`, `market` and
    `availabilityZone`, and the agent's writes keep `launchedBy`, `launchedAt` and `market`."""
    if launched_by not in LAUNCHERS:
        raise ValueError("launchedBy %r is not one of %s" % (launched_by, ", ".join(LAUNCHERS)))
    doc = pending_status(run_id, attempt, now)
    doc.update(market=None, launchedBy=launched_by, launchedAt=iso(now), seconds=None)
    return doc


def ended_key(env: str, run_id: str, attempt: int) -> str:
    return ENDED % (run_prefix(env, run_id), attempt)


def attempts_prefix(env: str, run_id: str) -> str:
    return run_prefix(env, run_id) + "attempts/"


def capacity_claim_key(env: str, run_id: str, attempt: int, round_number: int) -> str:
    return CAPACITY_CLAIM % (run_prefix(env, run_id), attempt, round_number)


def control_stop(requested_at: datetime) -> Dict[str, Any]:
    """control.json asking the running attempt to stop."""
    return {"schemaVersion": SCHEMA_VERSION, "action": "stop", "requestedAt": iso(requested_at)}


def newer_schema(doc: Any) -> Optional[int]:
    """The document's `schemaVersion` when it is higher than SCHEMA_VERSION, else None."""
    version = doc.get("schemaVersion") if isinstance(doc, dict) else None
    if isinstance(version, (int, float)) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return int(version)
    return None


def lifetime_tag_hours(lifetime_seconds: float) -> float:
    """The `MaxLifetimeHours` tag of a run of `lifetime_seconds`: the lifetime plus the margin, rounded up to 0.01 h."""
    import math
    return math.ceil((lifetime_seconds + LIFETIME_MARGIN_SECONDS) / 36) / 100
