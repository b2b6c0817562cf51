"""The Python API, for notebooks and pipelines: `launch(...) -> Run`, `Run.status()`, `Run.logs()`, `Run.wait()`,
`Run.stop()`, `Run.estimated_cost()`, and `runs(env)`. It calls the same operations as the CLI."""
import sys
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from . import contract, cost
from .clients import Clients
from .commands import Follower, RunOptions, Started, list_rows, logs_command, start_run, stop_run
from .context import Io
from .errors import ChronosError
from .foundation import resolve_foundation
from .store import get_json


class Run:
    """One run of an environment. Made by `launch()` or `Run(env, run_id)`."""

    def __init__(self, env: str, run_id: str, clients: Optional[Clients] = None, *,
                 _started: Optional[Started] = None) -> None:
        self.env = env
        self.run_id = run_id
        self.clients = clients or Clients()
        self._started = _started
        self._bucket: Optional[str] = _started.foundation.bucket if _started else None

    def __repr__(self) -> str:
        return "Run(env=%r, run_id=%r)" % (self.env, self.run_id)

    def _bucket_name(self) -> str:
        if self._bucket is None:
            self._bucket = resolve_foundation(self.clients, self.env).bucket
        return self._bucket

    def spec(self) -> Optional[Dict[str, Any]]:
        """The run's spec.json (None for a run without one, such as an AWS Batch job's)."""
        return get_json(self.clients.s3, self._bucket_name(), contract.spec_key(self.env, self.run_id))

    def status(self) -> Optional[Dict[str, Any]]:
        """The run's status.json as the agent (or the launcher) last wrote it; None before any."""
        return get_json(self.clients.s3, self._bucket_name(), contract.status_key(self.env, self.run_id))

    def state(self) -> Optional[str]:
        """The run's state (`pending`, `running`, `succeeded`, `failed`, `interrupted`, `timed-out`, `stopped`)."""
        status = self.status()
        return status.get("state") if status else None

    def estimated_cost(self) -> Optional[Dict[str, Any]]:
        """The run's estimated instance cost, as `status` prints it (docs/RUNS.md, "What a run cost"): `{"usd",
        "isEstimate": True, "basis", "attempts": [...]}`, `usd` None with `why` when a price is unknown; None before
        the run has attempt records. Reads EC2's spot price history and the AWS Price List API; never raises for a
        missing permission."""
        return cost.run_estimate(self.clients, self._bucket_name(), self.env, self.run_id, datetime.now(timezone.utc))

    def logs(self, follow: bool = False, poll_seconds: float = 5) -> int:
        """Prints every attempt's logs (stdout on stdout; stderr and the agent's lines on stderr); with `follow`,
        until the run is over. Returns what `chronos-training logs` exits with."""
        return logs_command(self.clients, Io(), self.env, self.run_id, follow=follow, poll_seconds=poll_seconds)

    def wait(self, poll_seconds: float = 5, quiet: bool = False) -> int:
        """Follows the run until it is over and returns the launcher's exit code (0: succeeded). A run launched from
        this process is followed as `chronos-training run` follows it: interrupted spot attempts are launched again
        (max_attempts), and the logs are printed unless `quiet`."""
        io = Io(out=(lambda _t: None) if quiet else None, err=(lambda _t: None) if quiet else None)
        if self._started is not None:
            return Follower(self.clients, io, self._started, poll_seconds).follow()
        return logs_command(self.clients, io, self.env, self.run_id, follow=True, poll_seconds=poll_seconds)

    def stop(self, now: bool = False) -> List[str]:
        """Asks the run's agent to stop (it drains: final checkpoint, logs); `now` also terminates its instances at
        once. Returns the IDs of the instances terminated."""
        return stop_run(self.clients, self.env, self.run_id, datetime.now(timezone.utc), terminate=now)


def launch(env: Optional[str] = None, command: Optional[List[str]] = None,
           instance_types: Optional[List[str]] = None, *, name: Optional[str] = None,
           image_id: Optional[str] = None, market: Optional[str] = None, max_run_lifetime: Optional[str] = None,
           env_vars: Optional[Dict[str, str]] = None, max_attempts: Optional[int] = None,
           on_demand_after_interruptions: Optional[int] = None, directory: Optional[str] = None,
           secrets: Optional[Dict[str, str]] = None, setup: Optional[str] = None,
           setup_cache_files: Optional[List[str]] = None, container: Optional[str] = None,
           keep_checkpoints: Optional[int] = None, wait_for_capacity: Optional[str] = None,
           file: Optional[str] = None, profile: Optional[str] = None, region: Optional[str] = None,
           clients: Optional[Clients] = None, verbose: bool = False) -> Run:
    """Uploads `directory` (default: the current one), writes the run's spec and launches its first attempt, as
    `chronos-training run --detach` does; returns the Run at once.

    :param env: the foundation's environment (or the run file's `environment`).
    :param command: the command and its arguments, e.g. `["python", "train.py"]` (or the run file's `command`).
    :param instance_types: in order of preference (default: the launch template's).
    :param market: `spot`, `on-demand` or `spot-fallback` (default).
    :param max_run_lifetime: each attempt's lifetime, `2h`, `90m` (default: the foundation's).
    :param env_vars: the command's environment variables (stored in plain text in the spec: not for secrets).
    :param secrets: environment variable → the name of its SSM SecureString parameter
        `/chronos-training/{env}/secrets/{name}` (set_secret stores one); the agent reads the values at each attempt.
    :param setup, setup_cache_files, container, keep_checkpoints, wait_for_capacity: as the run file's `setup`,
        `container`, `checkpoints.keep`, `waitForCapacity` (docs/RUNS.md, "The run file").
    :param file: a run file (`chronos.yaml`) whose fields are the defaults of the arguments given here.
    :param verbose: print the launcher's lines (`[chronos] ...`) on stderr.
    :param wait_for_capacity: how long to wait for capacity when none is found, `6h`, `90m`, `0` (default 6 h).
    """
    from .runfile import merge, read
    aws = clients or Clients(profile=profile, region=region)
    from_file = read(file) if file else {}
    given = dict(env=env, command=list(command) if command else None, instance_types=instance_types,
                 image_id=image_id, market=market, max_run_lifetime=max_run_lifetime,
                 env_vars=["%s=%s" % kv for kv in (env_vars or {}).items()] or None, name=name,
                 max_attempts=max_attempts, on_demand_after_interruptions=on_demand_after_interruptions,
                 directory=directory, secrets=["%s=%s" % kv for kv in (secrets or {}).items()] or None, setup=setup,
                 setup_cache_files=setup_cache_files, container=container, keep_checkpoints=keep_checkpoints,
                 wait_for_capacity=wait_for_capacity)
    merged = merge(from_file, given)
    if not merged.get("env"):
        raise ChronosError("launch: env is needed (or environment: in the run file)", 2)
    merged.setdefault("command", None)
    options = RunOptions(**merged)

    def log(line: str) -> None:
        if verbose:
            sys.stderr.write("[chronos] %s\n" % line)

    started = start_run(aws, options, log, lambda: datetime.now(timezone.utc))
    return Run(options.env, started.run_id, aws, _started=started)


def launch_file(path: str = "chronos.yaml", **overrides: Any) -> Run:
    """Launches the run a run file describes (`launch(file=path, **overrides)`)."""
    return launch(file=path, **overrides)


def set_secret(env: str, name: str, value: str, *, key_id: Optional[str] = None, profile: Optional[str] = None,
               region: Optional[str] = None, clients: Optional[Clients] = None) -> int:
    """Stores a secret for `secrets={"ENV_NAME": name}`: the SSM SecureString parameter
    `/chronos-training/{env}/secrets/{name}` (Standard tier; replaced if it exists), encrypted with `key_id` (the
    foundation's secretsKey) or the AWS managed key aws/ssm. Returns its version."""
    from .run_secrets import set_secret as put
    return put(clients or Clients(profile=profile, region=region), env, name, value, key_id)


def runs(env: str, limit: Optional[int] = None, *, profile: Optional[str] = None, region: Optional[str] = None,
         clients: Optional[Clients] = None) -> List[Dict[str, str]]:
    """The environment's runs, newest first (default 20), as `chronos-training list` shows them: one dict per run with
    the keys run, state, attempt, instance, type, lifecycle, zone, age."""
    aws = clients or Clients(profile=profile, region=region)
    rows = list_rows(aws, env, datetime.now(timezone.utc), limit)
    header = [h.lower() for h in rows[0]]
    return [dict(zip(header, r)) for r in rows[1:]]


def resume(env: str, run_id: str, *, max_run_lifetime: Optional[str] = None,
           instance_types: Optional[List[str]] = None, market: Optional[str] = None, profile: Optional[str] = None,
           region: Optional[str] = None, clients: Optional[Clients] = None, verbose: bool = False) -> Run:
    """Continues a run that ended stopped, timed-out, failed or interrupted, as `chronos-training resume` does: its next
    attempt (same run ID, restored from the last whole checkpoint), with the run's policy and these overrides; returns
    the Run once the attempt is launched.

    :param max_run_lifetime: each attempt's lifetime from now on, `2h`, `90m` (at most the foundation's).
    :param instance_types: other instance types, in order of preference.
    :param market: `spot`, `on-demand` or `spot-fallback`.
    """
    from .attempts import Overrides, resume_run
    from .commands import check_run_id, markets_of, parse_duration
    aws = clients or Clients(profile=profile, region=region)
    check_run_id(run_id)
    f = resolve_foundation(aws, env)
    overrides = Overrides(instance_types=list(instance_types) if instance_types else None,
                          markets=markets_of(market, f) if market else None,
                          max_run_lifetime_seconds=parse_duration(max_run_lifetime) if max_run_lifetime else None)

    def log(line: str) -> None:
        if verbose:
            sys.stderr.write("[chronos] %s\n" % line)

    import time
    resume_run(aws, f, run_id, lambda: datetime.now(timezone.utc), log, overrides, time.sleep)
    return Run(env, run_id, aws)
