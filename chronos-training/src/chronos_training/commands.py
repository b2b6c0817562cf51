"""The launcher's operations: start a run (upload, spec, first attempt), follow it (logs, status, next attempts),
and logs, status, list, stop, agent-path. The CLI (cli.py) and the Python API (api.py) are thin layers over them."""
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional

from . import contract, cost
from .code import snapshot, upload_snapshot
from .context import Io, format_age, format_bytes, format_number, parse_iso
from .contract import LIFETIME_MARGIN_SECONDS, RUN_OVER, lifetime_tag_hours
from .errors import ChronosError
from .foundation import Foundation, check_env_name, resolve_foundation
from .ec2launch import ImageChoice, Launched, LaunchRequest, choose_image, launch_with_fallback, pin_image
from .logs import LogPrinter
from .store import get_json, list_run_ids, put_json, run_exists, run_instances, tag_of
from .run_secrets import check_secrets_exist, looks_secret, parse_secrets
from .watchdog import InstanceWatchdog


def _stderr(line: str) -> None:
    import sys
    sys.stderr.write("chronos-training: %s\n" % line)


def package_version() -> str:
    """The version of the installed chronos-training distribution (kept equal to the construct package's)."""
    try:
        from importlib.metadata import version
        return version("chronos-training")
    except Exception:  # noqa: BLE001
        return "0.0.0"


def parse_duration(text: str) -> int:
    """`2h`, `90m`, `1h30m`, `45s` → seconds."""
    m = re.match(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+)m)?(?:(\d+)s)?$", text.strip())
    if not m or text.strip() == "" or not any(m.groups()):
        raise ChronosError("--max-run-lifetime '%s' is not a duration such as 2h, 90m or 1h30m" % text, 2)
    seconds = float(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60 + int(m.group(3) or 0)
    if not seconds > 0:
        raise ChronosError("--max-run-lifetime '%s' must be positive" % text, 2)
    return int(round(seconds))


def parse_env_vars(pairs: Optional[List[str]]) -> Optional[Dict[str, str]]:
    """`KEY=VALUE` pairs → a dict; CHRONOS_* names are the agent's."""
    if not pairs:
        return None
    env: Dict[str, str] = {}
    for pair in pairs:
        eq = pair.find("=")
        key = pair[:eq] if eq > 0 else ""
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise ChronosError("--env-var '%s' is not KEY=VALUE" % pair, 2)
        if key.startswith("CHRONOS_"):
            raise ChronosError("--env-var %s: CHRONOS_* variables are the agent's" % key, 2)
        env[key] = pair[eq + 1:]
    return env


def markets_of(choice: Optional[str], foundation: Foundation) -> List[str]:
    """The markets to try: `spot`, `on-demand` or `spot-fallback` (the default: spot, then on-demand)."""
    markets = ["spot"] if choice == "spot" else ["on-demand"] if choice == "on-demand" else ["spot", "on-demand"]
    if foundation.template_is_spot:
        if choice == "on-demand":
            raise ChronosError("the launch template of '%s' asks for spot instances (launchTemplateProps.spot), and a "
                               "launch cannot override it to on-demand: use --spot, or a template without spot"
                               % foundation.environment)
        return ["spot"]
    return markets


@dataclass(frozen=True)
class RunOptions:
    """What `run` is asked to do (the CLI's flags; the Python API's arguments)."""

    env: str
    command: List[str]
    instance_types: Optional[List[str]] = None
    #: An AMI ID or `resolve:ssm:NAME`; wins over the launch template's image (default: choose_image).
    image_id: Optional[str] = None
    #: `spot`, `on-demand` or `spot-fallback` (the default).
    market: Optional[str] = None
    #: `2h`, `90m`, `1h30m`; default: the foundation's.
    max_run_lifetime: Optional[str] = None
    env_vars: Optional[List[str]] = None
    name: Optional[str] = None
    max_attempts: Optional[int] = None
    on_demand_after_interruptions: Optional[int] = None
    #: Whole checkpoints kept in S3, older ones pruned (default: 2; spec `checkpoints.keep`).
    keep_checkpoints: Optional[int] = None
    #: The working directory to upload (default: the current one).
    directory: Optional[str] = None
    #: How long a launch that finds no capacity in any zone, type and market waits and tries again (`6h`, `90m`; `0`:
    #: no wait); default contract.DEFAULT_CAPACITY_WAIT_SECONDS (6 h).
    wait_for_capacity: Optional[str] = None
    #: A setup command run before the command at each attempt.
    setup: Optional[str] = None
    #: The files whose content keys the setup's cache (with the setup command).
    setup_cache_files: Optional[List[str]] = None
    #: A container image to run the command in.
    container: Optional[str] = None
    #: `ENV_NAME=parameter-name`: SSM SecureString parameters /chronos-training/{env}/secrets/{name}, read by the agent.
    secrets: Optional[List[str]] = None


@dataclass(frozen=True)
class RunPolicy:
    """How a run's attempts are launched: the same for the first and every next one."""

    instance_types: List[str]
    markets: List[str]
    max_attempts: int
    on_demand_after_interruptions: int
    max_lifetime_hours: float
    image_id: Optional[str] = None
    name: Optional[str] = None


@dataclass
class Started:
    """A run whose first attempt was launched."""

    foundation: Foundation
    run_id: str
    spec: Dict[str, Any]
    policy: RunPolicy
    launched: Launched
    image: ImageChoice


def launch_attempt(clients: Any, foundation: Foundation, run_id: str, attempt: int, policy: RunPolicy,
                   markets: List[str], log: Callable[[str], None], now: Callable[[], datetime]) -> Launched:
    """Writes the attempt's `pending` status and launches it; when no launch succeeds, the run's status ends `failed`
    (no instance, so no agent will ever write) and the error is raised."""
    key = contract.status_key(foundation.environment, run_id)
    pending = contract.pending_status(run_id, attempt, now())
    put_json(clients.s3, foundation.bucket, key, pending)
    try:
        launched = launch_with_fallback(clients, foundation, LaunchRequest(
            run_id=run_id, attempt=attempt, name=policy.name, instance_types=policy.instance_types, markets=markets,
            max_lifetime_hours=policy.max_lifetime_hours, image_id=policy.image_id), log)
    except Exception as e:
        at = contract.iso(now())
        put_json(clients.s3, foundation.bucket, key, dict(pending, state="failed", updatedAt=at, endedAt=at,
                                                          reason="launch failed: %s" % e))
        log("run %s: attempt %d could not be launched" % (run_id, attempt))
        raise
    log("attempt %d: %s (%s %s in %s) won after %d %s" % (
        attempt, launched.instance_id, launched.market, launched.instance_type, launched.zone, launched.tries,
        "try" if launched.tries == 1 else "tries"))
    return launched


def capacity_wait_seconds(text: Optional[str]) -> int:
    """`--wait-for-capacity` in seconds: a duration (`6h`, `90m`), `0` for none; default 6 h."""
    if text is None:
        return contract.DEFAULT_CAPACITY_WAIT_SECONDS
    if text.strip() in ("0", "0s", "0m", "0h"):
        return 0
    try:
        return parse_duration(text)
    except ChronosError:
        raise ChronosError("--wait-for-capacity '%s' is not a duration such as 6h, 90m or 0 (no wait)" % text, 2) from None


def start_run(clients: Any, options: RunOptions, log: Callable[[str], None], now: Callable[[], datetime],
              interrupted: Callable[[], bool] = lambda: False, sleep: Callable[[float], None] = time.sleep,
              warn: Optional[Callable[[str], None]] = None) -> Started:
    """Uploads the code, writes the spec and the `pending` status, and launches the first attempt. No terminal I/O:
    `log` gets one line per step, `warn` each warning (default: stderr)."""
    check_env_name(options.env)
    if not options.command:
        raise ChronosError("run needs a command after --, for example: -- python train.py (or command: in "
                           "chronos.yaml)", 2)
    max_attempts = 3 if options.max_attempts is None else options.max_attempts
    on_demand_after = 2 if options.on_demand_after_interruptions is None else options.on_demand_after_interruptions
    if not (isinstance(max_attempts, int) and max_attempts >= 1):
        raise ChronosError("--max-attempts must be a whole number of at least 1", 2)
    if not (isinstance(on_demand_after, int) and on_demand_after >= 0):
        raise ChronosError("--on-demand-after-interruptions must be a whole number", 2)
    keep = options.keep_checkpoints
    if keep is not None and not (isinstance(keep, int) and not isinstance(keep, bool) and keep >= 1):
        raise ChronosError("--keep-checkpoints must be a whole number of at least 1, not %r" % (keep,), 2)
    env_vars = parse_env_vars(options.env_vars)
    environment = environment_fields(options)
    capacity_wait = capacity_wait_seconds(options.wait_for_capacity)
    secrets = parse_secrets(options.secrets)
    for key in sorted(env_vars or {}):
        if looks_secret(key):
            (warn or _stderr)("warning: --env-var %s looks like a secret: its value is stored in plain text in the "
                              "run's spec.json; pass it with --secret %s=NAME (chronos-training secret set NAME)"
                              % (key, key))

    foundation = resolve_foundation(clients, options.env)
    log("foundation %s: bucket %s, template %s version %s, zones %s (from %s)" % (
        foundation.environment, foundation.bucket, foundation.launch_template_id, foundation.launch_template_version,
        ", ".join(s.zone for s in foundation.subnets), foundation.source))
    lifetime = parse_duration(options.max_run_lifetime) if options.max_run_lifetime else foundation.max_lifetime_seconds
    if lifetime > foundation.max_lifetime_seconds:
        raise ChronosError("--max-run-lifetime %s is longer than the foundation's %s h (the MaxLifetimeHours tag of its "
                           "launch template, less the %s h drain margin)" % (
                               options.max_run_lifetime, format_number(foundation.max_lifetime_seconds / 3600),
                               format_number(LIFETIME_MARGIN_SECONDS / 3600)), 2)
    instance_types = list(options.instance_types or []) or (
        [foundation.template_instance_type] if foundation.template_instance_type else [])
    if not instance_types:
        raise ChronosError("--instance-types is needed: the launch template has no instance type", 2)
    markets = markets_of(options.market, foundation)
    if secrets:
        check_secrets_exist(clients, foundation.environment, secrets)
    image = pin_image(clients, foundation, choose_image(foundation, instance_types, options.image_id))
    log("image: %s" % image.description)

    started_at = now()
    run_id = contract.new_run_id(options.name, started_at)
    root = os.path.abspath(options.directory or os.getcwd())
    if not os.path.isdir(root):
        raise ChronosError("%s is not a directory" % root, 2)
    t0 = time.monotonic()
    snap = snapshot(root)
    t1 = time.monotonic()
    upload = upload_snapshot(clients.s3, foundation.bucket, foundation.environment, snap, started_at)
    log("code: %d files, %s; uploaded %d of %d blobs (%s), manifest %s (hashed in %.1f s, checked and uploaded in "
        "%.1f s)" % (upload.files, format_bytes(upload.total_bytes), upload.uploaded_blobs, upload.blobs,
                     format_bytes(upload.uploaded_bytes), upload.manifest_key, t1 - t0, time.monotonic() - t1))

    # Always the lifetime plus the drain margin: the reaper counts from LaunchTime, the agent from its own start.
    policy = RunPolicy(instance_types=instance_types, markets=markets, max_attempts=max_attempts,
                       on_demand_after_interruptions=on_demand_after, max_lifetime_hours=lifetime_tag_hours(lifetime),
                       image_id=image.image_id, name=options.name)
    spec = contract.run_spec(run_id, foundation.environment, options.command, upload.manifest_key, lifetime, started_at,
                             "chronos-training/%s" % package_version(), name=options.name, env=env_vars,
                             keep_checkpoints=keep, secrets=secrets,
                             policy=contract.run_policy(instance_types, markets, max_attempts, on_demand_after,
                                                        capacity_wait, image.image_id, policy.max_lifetime_hours))
    spec.update(environment)
    put_json(clients.s3, foundation.bucket, contract.spec_key(foundation.environment, run_id), spec)
    upload_agent(clients.s3, foundation.bucket, foundation.environment, run_id)
    log("run %s" % run_id)
    # Ctrl-C before the launch cancels (nothing runs; the uploaded code stays for the next run); after it, it detaches.
    if interrupted():
        raise ChronosError("interrupted before the launch: run %s was not launched" % run_id, 130)
    from .attempts import first_attempt
    launched = first_attempt(clients, foundation, run_id, policy, markets, log, now, sleep, interrupted)
    return Started(foundation, run_id, spec, policy, launched, image)


def describe_status(s: Dict[str, Any]) -> str:
    where = ", ".join(str(s[k]) for k in ("instanceId", "instanceType", "lifecycle", "availabilityZone") if s.get(k))
    return "attempt %s: %s%s%s" % (s.get("attempt"), s.get("state"), (" on %s" % where) if where else "",
                                  (" (%s)" % s["reason"]) if s.get("reason") else "")


def exit_code_of(s: Dict[str, Any]) -> int:
    """The exit code of the launcher for a run that is over."""
    state = s.get("state")
    if state == "succeeded":
        return 0
    if state == "failed":
        code = s.get("exitCode")
        return code if isinstance(code, int) and 0 < code < 256 else 1
    if state == "timed-out":
        return 124
    return 1


class Follower:
    """Follows a started run while attached: its logs and status changes, and its next attempts after a spot reclaim
    (the agent's `interrupted`, or an instance EC2 reclaimed without a final status) when no stop was asked for; any
    other end of an instance without a final status ends the run, with its reason."""

    def __init__(self, clients: Any, io: Io, started: Started, poll_seconds: float = 5) -> None:
        self.clients, self.io, self.started = clients, io, started
        self.poll_seconds = poll_seconds

    def _log(self, line: str) -> None:
        self.io.err("[chronos] %s\n" % line)

    def _sleep(self) -> None:
        if not self.io.interrupted.is_set():
            self.io.sleep(self.poll_seconds)

    def follow(self) -> int:
        """Follows the run; returns the launcher's exit code. A next attempt is decided and launched by
        attempts.next_attempt, as the run keeper and `resume` do: whoever claims the attempt first launches it, the
        others follow it (a later attempt in status.json is followed too)."""
        from . import attempts
        clients, io, f, run_id = self.clients, self.io, self.started.foundation, self.started.run_id
        env = f.environment
        printer = LogPrinter(clients.s3, f.bucket, env, run_id, io.out, io.err)
        attempt = 1
        last_seen = ""
        current: Optional[Launched] = self.started.launched
        retry_at: Optional[datetime] = None
        watchdog = InstanceWatchdog(clients, io.now)
        while True:
            if io.interrupted.is_set():
                self._log("detached; the run goes on (the run keeper launches its next attempts, when the foundation "
                          "has one). Follow it with: chronos-training logs %s --follow --env %s" % (run_id, env))
                io.out("%s\n" % run_id)
                return 0
            status = get_json(clients.s3, f.bucket, contract.status_key(env, run_id))
            # A later attempt than ours: the keeper or `resume` launched it.
            if status and isinstance(status.get("attempt"), int) and status["attempt"] > attempt:
                printer.print_new(attempt)
                attempt = status["attempt"]
                record = get_json(clients.s3, f.bucket, contract.attempt_key(env, run_id, attempt)) or {}
                current = Launched(record["instanceId"], record.get("instanceType") or "", record.get("market") or "",
                                   "", record.get("availabilityZone") or "", 0) if record.get("instanceId") else None
                self._log("following attempt %d (launched by the %s)" % (attempt, record.get("launchedBy") or "?"))
            for n in range(1, attempt + 1):
                printer.print_new(n)
            state_now = str(status.get("state")) if status and status.get("attempt") == attempt else "pending"
            if current is None and state_now == "pending":
                record = get_json(clients.s3, f.bucket, contract.attempt_key(env, run_id, attempt)) or {}
                if record.get("instanceId"):
                    current = Launched(record["instanceId"], record.get("instanceType") or "", record.get("market") or "",
                                       "", record.get("availabilityZone") or "", 0)
                elif record.get("waitingForCapacitySince") and (retry_at is None or io.now() >= retry_at):
                    decision = attempts.retry_capacity(clients, f, run_id, "cli", io.now, self._log)
                    retry_at = decision.retry_at or (io.now() + timedelta(minutes=attempts.FIRST_RETRY_MINUTES))
                    if decision.launched:
                        current = decision.launched
                    if decision.action == "ended":
                        self._log("run %s %s: %s" % (run_id, decision.state, decision.reason))
                        io.out("%s\n" % run_id)
                        return 1
            # An instance that ended without the agent's final status: next_attempt decides (only a spot reclaim is
            # worth another attempt).
            gone = watchdog.gone(current.instance_id, state_now) if current else None
            if status and status.get("attempt") == attempt:
                line = describe_status(status)
                if line != last_seen:
                    self._log(line)
                    last_seen = line
                if status.get("state") in RUN_OVER:
                    printer.print_new(attempt)
                    self._log("run %s %s" % (run_id, status["state"]))
                    attempts.publish_end_event_quietly(clients, f, run_id, io.now(), self._log)
                    io.out("%s\n" % run_id)
                    return exit_code_of(status)
            if gone or (status and status.get("attempt") == attempt and status.get("state") == "interrupted"):
                printer.print_new(attempt)
                end = gone or (watchdog.look(current.instance_id) if current else None)
                decision = attempts.next_attempt(clients, f, run_id, "cli", io.now, self._log, ended_attempt=attempt,
                                                 end=end)
                if decision.action == "ended":
                    if decision.state == "interrupted":
                        self._log("attempt %d was interrupted and --max-attempts %d is reached; the run's last "
                                  "checkpoint stays in S3" % (attempt, attempts.policy_of(
                                      get_json(clients.s3, f.bucket, contract.spec_key(env, run_id)) or {}, f).max_attempts))
                    else:
                        self._log("run %s %s: %s" % (run_id, decision.state, decision.reason))
                    io.out("%s\n" % run_id)
                    return 1
                if decision.action in ("launched", "followed", "waiting"):
                    if decision.attempt > attempt:
                        self._log("resuming: attempt %d of %d" % (decision.attempt, attempts.policy_of(
                            get_json(clients.s3, f.bucket, contract.spec_key(env, run_id)) or {}, f).max_attempts))
                    attempt = decision.attempt
                    current = decision.launched
                    retry_at = decision.retry_at
                    last_seen = ""
                    if current is None:
                        record = get_json(clients.s3, f.bucket, contract.attempt_key(env, run_id, attempt)) or {}
                        if record.get("instanceId"):
                            current = Launched(record["instanceId"], record.get("instanceType") or "",
                                               record.get("market") or "", "", record.get("availabilityZone") or "", 0)
                    continue
            self._sleep()


def run_command(clients: Any, io: Io, options: RunOptions, detach: bool = False, poll_seconds: float = 5) -> int:
    """`run`: upload the code, write the spec and `pending`, launch, then follow (or return with `detach`)."""
    started = start_run(clients, options, lambda line: io.err("[chronos] %s\n" % line), io.now,
                        io.interrupted.is_set, io.sleep,
                        warn=lambda line: io.err("chronos-training: %s\n" % line))
    if detach:
        io.err("[chronos] detached: follow with chronos-training logs %s --follow --env %s\n"
               % (started.run_id, started.foundation.environment))
        io.out("%s\n" % started.run_id)
        return 0
    return Follower(clients, io, started, poll_seconds).follow()


def check_run_id(run_id: str) -> str:
    if not contract.is_run_id(run_id):
        raise ChronosError("'%s' is not a run ID (%s)" % (run_id, contract.RUN_ID_PATTERN), 2)
    return run_id


def logs_command(clients: Any, io: Io, env: str, run_id: str, follow: bool = False, poll_seconds: float = 5) -> int:
    """`logs RUN`: every attempt's logs, in order; with `follow`, until the run is over."""
    check_env_name(env)
    check_run_id(run_id)
    f = resolve_foundation(clients, env)
    printer = LogPrinter(clients.s3, f.bucket, env, run_id, io.out, io.err)
    # A Batch job's run has a status and logs but no spec (the job definition is its spec).
    if not run_exists(clients.s3, f.bucket, env, run_id):
        raise ChronosError("no run %s in environment %s" % (run_id, env))
    printed = set()
    quiet_since: Optional[float] = None
    while True:
        status = get_json(clients.s3, f.bucket, contract.status_key(env, run_id))
        attempts = set(printer.attempts())
        if status:
            attempts.add(status["attempt"])
        for n in sorted(attempts):
            if n not in printed:
                io.err("[chronos] --- attempt %d ---\n" % n)
                printed.add(n)
            printer.print_new(n)
        if not follow or io.interrupted.is_set():
            return 0
        if status and status.get("state") in RUN_OVER:
            io.err("[chronos] run %s %s\n" % (run_id, status["state"]))
            return exit_code_of(status)
        # An interrupted attempt is the end unless a next attempt starts within ten minutes: the run keeper acts when
        # EC2 reclaims the instance, up to two minutes after the spot notice (an attached launcher at once).
        if status and status.get("state") == "interrupted":
            now = io.now().timestamp()
            quiet_since = now if quiet_since is None else quiet_since
            if now - quiet_since > 600:
                io.err("[chronos] attempt %s was interrupted and no next attempt started\n" % status["attempt"])
                return 1
        else:
            quiet_since = None
        if not io.interrupted.is_set():
            io.sleep(poll_seconds)


def status_lines(spec: Optional[Dict[str, Any]], status: Optional[Dict[str, Any]], instances: List[Dict[str, Any]],
                 run_id: str, now: datetime, estimate: Optional[Dict[str, Any]] = None) -> List[str]:
    """The lines `status RUN` prints; `estimate` (cost.estimate_run_cost) adds the `estimated cost:` line."""
    s = status or {}
    started = s.get("startedAt")
    checkpoint = s.get("lastCheckpoint")
    exit_code = s.get("exitCode")
    rows = [
        ("run", run_id),
        ("name", (spec or {}).get("name") or ""),
        ("command", " ".join(spec["command"]) if spec else ""),
        ("state", s.get("state") if status else "unknown (no status.json)"),
        ("attempt", str(s.get("attempt")) if s.get("attempt") is not None else ""),
        ("instance", s.get("instanceId") or ""),
        ("type", s.get("instanceType") or ""),
        ("lifecycle", s.get("lifecycle") or ""),
        ("zone", s.get("availabilityZone") or ""),
        ("started", "%s (%s ago)" % (started, format_age(now.timestamp() - parse_iso(started))) if started else ""),
        ("updated", s.get("updatedAt") or ""),
        ("ended", s.get("endedAt") or ""),
        ("exit code", "" if exit_code is None else str(exit_code)),
        ("checkpoint", "#%s at %s" % (checkpoint["sequence"], checkpoint["at"]) if checkpoint else ""),
        ("reason", s.get("reason") or ""),
    ]
    lines = ["%s%s" % (("%s:" % k).ljust(12), v) for k, v in rows if v != ""]
    line = cost.cost_line(estimate)
    if line:
        lines.append(line)
    for i in instances:
        state = (i.get("State") or {}).get("Name") or "?"
        ended = bool(status) and (s.get("state") in RUN_OVER or s.get("state") == "interrupted")
        live = state in ("pending", "running", "stopping", "shutting-down")
        lines.append("%s%s attempt %s %s %s %s %s%s" % (
            "instance:".ljust(12), i.get("InstanceId"), tag_of(i, "ChronosAttempt") or "?", state, i.get("InstanceType"),
            "spot" if i.get("InstanceLifecycle") == "spot" else "on-demand",
            (i.get("Placement") or {}).get("AvailabilityZone") or "",
            (" (still %s although the status says %s)" % (state, s.get("state")))
            if ended and live and state != "shutting-down" else ""))
    return lines


def _together(*calls: Callable[[], Any], clients: Any) -> List[Any]:
    """The results of `calls`, made at once (as the TypeScript launcher's Promise.all): the AWS requests overlap. The
    clients are made first, in this thread (a botocore session is not safe to make clients from in several)."""
    _ = (clients.s3, clients.ec2)
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]


def status_command(clients: Any, io: Io, env: str, run_id: str) -> int:
    """`status RUN`: the run's status file and its instances in EC2."""
    check_env_name(env)
    check_run_id(run_id)
    f = resolve_foundation(clients, env)
    spec, status, instances = _together(
        lambda: get_json(clients.s3, f.bucket, contract.spec_key(env, run_id)),
        lambda: get_json(clients.s3, f.bucket, contract.status_key(env, run_id)),
        lambda: run_instances(clients, env, run_id, True), clients=clients)
    if not spec and not status and not instances:
        raise ChronosError("no run %s in environment %s" % (run_id, env))
    estimate = cost.run_estimate(clients, f.bucket, env, run_id, io.now())
    for line in status_lines(spec, status, instances, run_id, io.now(), estimate):
        io.out(line + "\n")
    return 0


def list_rows(clients: Any, env: str, now: datetime, limit: Optional[int] = None) -> List[List[str]]:
    """The rows of `list` (the first is the header): the runs of an environment, newest first."""
    check_env_name(env)
    f = resolve_foundation(clients, env)
    ids, instances = _together(lambda: list_run_ids(clients.s3, f.bucket, env), lambda: run_instances(clients, env),
                               clients=clients)
    # Run IDs end in -yyyymmdd-hhmmss-hex: newest first (a stable sort, as JavaScript's).
    chosen = sorted(ids, key=lambda i: _Desc(i[-22:]))[: 20 if limit is None else limit]
    rows = [["RUN", "STATE", "ATTEMPT", "INSTANCE", "TYPE", "LIFECYCLE", "ZONE", "AGE"]]
    for run_id in chosen:
        # One unreadable status (a newer schemaVersion, a broken file) spoils its row, not the list.
        unreadable = None
        try:
            s = get_json(clients.s3, f.bucket, contract.status_key(env, run_id))
        except Exception as e:  # noqa: BLE001
            s = None
            unreadable = ("newer status (upgrade)" if isinstance(e, ChronosError) and "schemaVersion" in e.message
                          else "unreadable status")
        live = [i for i in instances if tag_of(i, "ChronosRunId") == run_id]
        state = (s or {}).get("state") or unreadable or "?"
        if s and (s.get("state") in RUN_OVER or s.get("state") == "interrupted") and any(
                (i.get("State") or {}).get("Name") in ("pending", "running") for i in live):
            state = "%s (instance still running)" % s["state"]
        inst = live[0] if live else {}
        s = s or {}
        rows.append([
            run_id, state, str(s["attempt"]) if s.get("attempt") is not None else "",
            s.get("instanceId") or inst.get("InstanceId") or "", s.get("instanceType") or inst.get("InstanceType") or "",
            s.get("lifecycle") or "", s.get("availabilityZone") or (inst.get("Placement") or {}).get("AvailabilityZone")
            or "", format_age(now.timestamp() - parse_iso(s["startedAt"])) if s.get("startedAt") else "",
        ])
    return rows


class _Desc:
    """A sort key in reverse order that keeps equal keys in their order (JavaScript's stable sort of `list`)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: "_Desc") -> bool:
        return self.value > other.value


def list_command(clients: Any, io: Io, env: str, limit: Optional[int] = None) -> int:
    """`list`: the runs of an environment, newest first, from their status files and EC2."""
    rows = list_rows(clients, env, io.now(), limit)
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        io.out("  ".join(v.ljust(widths[c]) for c, v in enumerate(r)).rstrip() + "\n")
    return 0


def stop_run(clients: Any, env: str, run_id: str, now: datetime, terminate: bool = False) -> List[str]:
    """Asks the run's agent to drain (control.json); with `terminate`, terminates the run's instances. Returns the IDs
    of the instances terminated."""
    check_env_name(env)
    check_run_id(run_id)
    f = resolve_foundation(clients, env)
    if not run_exists(clients.s3, f.bucket, env, run_id):
        raise ChronosError("no run %s in environment %s" % (run_id, env))
    put_json(clients.s3, f.bucket, contract.control_key(env, run_id), contract.control_stop(now))
    if not terminate:
        return []
    live = [i for i in run_instances(clients, env, run_id) if (i.get("State") or {}).get("Name") != "shutting-down"]
    ids = [i["InstanceId"] for i in live]
    if ids:
        clients.ec2.terminate_instances(InstanceIds=ids)
    return ids


def stop_command(clients: Any, io: Io, env: str, run_id: str, now: bool = False) -> int:
    """`stop RUN`: asks the agent to drain (control.json); with `now`, terminates the run's instances."""
    ids = stop_run(clients, env, run_id, io.now(), terminate=now)
    io.err("[chronos] asked run %s to stop: the agent drains (final checkpoint, logs) at its next read of control.json\n"
           % run_id)
    if now:
        if not ids:
            io.err("[chronos] no instance of the run is running\n")
        else:
            io.err("[chronos] terminated %s (no drain: what was not checkpointed is lost)\n" % ", ".join(ids))
    io.out("%s\n" % run_id)
    return 0


def agent_file() -> str:
    """The path of the run agent shipped in this package: chronos_training/agent/chronos_run_agent.py, its source."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent", "chronos_run_agent.py")


def environment_fields(options: RunOptions) -> Dict[str, Any]:
    """The spec's `setup` and `container` (docs/RUNS.md, "The setup and its cache", "A container"), when asked for."""
    fields: Dict[str, Any] = {}
    if options.setup_cache_files and not options.setup:
        raise ChronosError("--setup-cache-file needs --setup", 2)
    if options.setup is not None:
        if not options.setup.strip():
            raise ChronosError("--setup must be a command, got an empty string", 2)
        fields["setup"] = {"command": options.setup}
        if options.setup_cache_files:
            for f in options.setup_cache_files:
                if f.startswith("/") or ".." in f.split("/") or not f:
                    raise ChronosError("--setup-cache-file %r must be a path inside the working directory" % f, 2)
            fields["setup"]["cacheFiles"] = list(options.setup_cache_files)
    if options.container is not None:
        if not options.container.strip() or any(c.isspace() for c in options.container):
            raise ChronosError("--container must be an image name such as nvcr.io/nvidia/pytorch:24.08-py3, got %r"
                               % options.container, 2)
        fields["container"] = {"image": options.container, "gpus": "all"}
    return fields


def upload_agent(s3: Any, bucket: str, env: str, run_id: str) -> str:
    """Uploads this package's run agent to the run's agent key, which each attempt's boot script fetches; its key."""
    key = contract.agent_key(env, run_id)
    with open(agent_file(), "rb") as f:
        s3.put_object(Bucket=bucket, Key=key, Body=f.read(), ContentType="text/x-python")
    return key


def agent_path_command(io: Io, copy_to: Optional[str] = None) -> int:
    """`agent-path`: the run agent file shipped in the package; with `copy_to`, a copy of it there."""
    path = agent_file()
    if not os.path.exists(path):
        raise ChronosError("the run agent is not in this package (looked for %s)" % path)
    if copy_to is None:
        io.out("%s\n" % path)
        return 0
    target = os.path.join(copy_to, os.path.basename(path)) if os.path.isdir(copy_to) else copy_to
    shutil.copyfile(path, target)
    io.out("%s\n" % os.path.abspath(target))
    return 0


def resume_command(clients: Any, io: Io, env: str, run_id: str, max_run_lifetime: Optional[str] = None,
                   instance_types: Optional[List[str]] = None, market: Optional[str] = None) -> int:
    """`resume RUN`: launches the next attempt of a run that ended stopped, timed-out, failed or interrupted (same run
    ID, restored from its last whole checkpoint); prints the run ID and returns once it is launched."""
    from .attempts import Overrides, resume_run
    check_env_name(env)
    check_run_id(run_id)
    f = resolve_foundation(clients, env)
    lifetime = parse_duration(max_run_lifetime) if max_run_lifetime else None
    overrides = Overrides(instance_types=list(instance_types) if instance_types else None,
                          markets=markets_of(market, f) if market else None, max_run_lifetime_seconds=lifetime)
    decision = resume_run(clients, f, run_id, io.now, lambda line: io.err("[chronos] %s\n" % line), overrides,
                          io.sleep, io.interrupted.is_set)
    io.err("[chronos] run %s: attempt %d launched; follow with chronos-training logs %s --follow --env %s\n"
           % (run_id, decision.attempt, run_id, env))
    io.out("%s\n" % run_id)
    return 0
