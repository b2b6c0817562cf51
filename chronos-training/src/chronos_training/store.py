"""Reading and writing the contract's documents in the bucket, and finding a run's instances in EC2."""
import json
from typing import Any, Dict, List, Optional

from .contract import SCHEMA_VERSION, newer_schema, runs_prefix
from .errors import ChronosError, error_code, http_status, is_not_found


def put_json(s3: Any, bucket: str, key: str, doc: Any) -> None:
    """Writes a contract document (indented JSON, as the TypeScript launcher wrote it)."""
    body = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json")


def create_json(s3: Any, bucket: str, key: str, doc: Any, conflict_retries: int = 3) -> bool:
    """Writes a contract document only if its key does not exist yet (S3 conditional write, `If-None-Match: *`):
    True when this call created it, False when it was there already (S3 answers 412 Precondition Failed). Of several
    writers of one key, exactly one gets True: the way to claim a run's next attempt (issue 29). A 409
    ConditionalRequestConflict (another write of the key in flight) is sent again, as S3 asks (S3 API Reference,
    PutObject, If-None-Match); the next answer is a success or a 412."""
    body = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    for attempt in range(conflict_retries + 1):
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*")
            return True
        except Exception as e:  # noqa: BLE001
            code = error_code(e)
            if code == "PreconditionFailed" or http_status(e) == 412:
                return False
            if code != "ConditionalRequestConflict" or attempt == conflict_retries:
                raise
    return False


def get_text(s3: Any, bucket: str, key: str) -> Optional[str]:
    """An object's text, or None when there is none.

    S3 answers a GET of a missing key with 403, not 404, to a caller without s3:ListBucket on the bucket (S3 API
    Reference, GetObject: "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403
    Access Denied"), and the grants give ListBucket only for their prefixes (`s3:prefix`), which a GET does not carry.
    So a 403 is a missing key when a listing of the key itself (allowed for those prefixes) shows no such key; else
    it is the denial it says."""
    try:
        reply = s3.get_object(Bucket=bucket, Key=key)
    except Exception as e:  # noqa: BLE001
        if is_not_found(e) or (is_denied(e) and not _listed(s3, bucket, key)):
            return None
        raise
    return reply["Body"].read().decode("utf-8")


def is_denied(e: Any) -> bool:
    """Whether an S3 error is a 403 Access Denied."""
    return error_code(e) in ("AccessDenied", "403") or http_status(e) == 403


def _listed(s3: Any, bucket: str, key: str) -> bool:
    """Whether ListObjectsV2 of `key` as the prefix shows `key` itself (an error says nothing: True)."""
    try:
        reply = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    except Exception:  # noqa: BLE001
        return True
    return any(o.get("Key") == key for o in reply.get("Contents", []))


def get_json(s3: Any, bucket: str, key: str) -> Optional[Dict[str, Any]]:
    """Reads a contract document, refusing a higher `schemaVersion` than this package knows."""
    text = get_text(s3, bucket, key)
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        raise ChronosError("s3://%s/%s is not JSON" % (bucket, key)) from None
    newer = newer_schema(doc)
    if newer is not None:
        raise ChronosError("s3://%s/%s has schemaVersion %d; this chronos-training knows version %d: upgrade it"
                           % (bucket, key, newer, SCHEMA_VERSION))
    return doc


def list_run_ids(s3: Any, bucket: str, env: str) -> List[str]:
    """The run IDs under `{env}/runs/`."""
    ids: List[str] = []
    prefix = runs_prefix(env)
    token = None
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/",
                                  **({"ContinuationToken": token} if token else {}))
        for p in page.get("CommonPrefixes", []):
            ids.append(p["Prefix"][len(prefix):].rstrip("/"))
        token = page.get("NextContinuationToken")
        if not token:
            break
    return ids


def list_keys(s3: Any, bucket: str, prefix: str, start_after: Optional[str] = None) -> List[str]:
    """Every key under a prefix, in lexical order, after `start_after`."""
    found: List[str] = []
    token = None
    while True:
        extra: Dict[str, str] = {}
        if token:
            extra["ContinuationToken"] = token
        elif start_after:
            extra["StartAfter"] = start_after
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **extra)
        found.extend(o["Key"] for o in page.get("Contents", []) if o.get("Key"))
        token = page.get("NextContinuationToken")
        if not token:
            break
    return found


def run_instances(clients: Any, env: str, run_id: Optional[str] = None, all_states: bool = False) -> List[Dict[str, Any]]:
    """The instances of one run (or of every run of the environment), any state but terminated unless `all_states`."""
    filters = [
        {"Name": "tag:Project", "Values": ["Chronos-Training"]},
        {"Name": "tag:Environment", "Values": [env]},
        {"Name": "tag:ChronosRunId", "Values": [run_id]} if run_id else {"Name": "tag-key", "Values": ["ChronosRunId"]},
    ]
    if not all_states:
        filters.append({"Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]})
    found: List[Dict[str, Any]] = []
    token = None
    while True:
        page = clients.ec2.describe_instances(Filters=filters, **({"NextToken": token} if token else {}))
        for r in page.get("Reservations", []):
            found.extend(r.get("Instances", []))
        token = page.get("NextToken")
        if not token:
            break
    return found


def tag_of(instance: Dict[str, Any], key: str) -> Optional[str]:
    for t in instance.get("Tags") or []:
        if t.get("Key") == key:
            return t.get("Value")
    return None


def run_exists(s3: Any, bucket: str, env: str, run_id: str) -> bool:
    """Whether a run has a spec or a status (an AWS Batch job's run has no spec)."""
    found = list_keys(s3, bucket, "%s/runs/%s/" % (env, run_id))
    return any(k.endswith("/spec.json") or k.endswith("/status.json") for k in found)
