"""The `chronos-training` command: a thin layer over the operations of commands.py, with the commands, options,
output and exit codes of the TypeScript launcher it replaces. boto3 is imported only when a command calls AWS, so
that `--help` starts at once."""
import os
import re
import signal
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from .context import Io
from .errors import ChronosError, error_code, error_message

#: name → (takes a value, may repeat)
GLOBAL: Dict[str, Tuple[bool, bool]] = {
    "--profile": (True, False), "--region": (True, False), "--env": (True, False), "--help": (False, False),
}

COMMANDS: Dict[str, Dict[str, Any]] = {
    "run": {
        "options": {"--instance-types": (True, False), "--image-id": (True, False), "--spot": (False, False), "--on-demand": (False, False), "--spot-fallback": (False, False), "--max-run-lifetime": (True, False), "--env-var": (True, True), "--name": (True, False), "--max-attempts": (True, False), "--on-demand-after-interruptions": (True, False), "--keep-checkpoints": (True, False), "--detach": (False, False), "--dir": (True, False), "--setup": (True, False), "--setup-cache-file": (True, True), "--container": (True, False), "--wait-for-capacity": (True, False), "--secret": (True, True), "--file": (True, False)},
        "usage": """usage: chronos-training run --env ENV [options] [-- COMMAND [ARG...]]

Uploads the working directory (honouring .gitignore; content-addressed, so unchanged files are not sent again),
writes the run spec, launches an instance from the foundation's launch template and follows the run's logs.
Ctrl-C detaches (the run goes on); the run ID is printed on stdout.

options:
  --env ENV                           the foundation's environment (or CHRONOS_ENV)
  --instance-types a,b,c              instance types in order of preference (default: the template's)
  --image-id ami-…|resolve:ssm:NAME   the image: an AMI ID, or a Systems Manager parameter holding one, resolved
                                      once when the run starts (every attempt boots the same AMI); used
                                      instead of the template's image when it has one. Default: the template's; when it
                                      has none, the AWS Deep Learning AMI OSS Nvidia Driver GPU PyTorch 2.10 (Amazon
                                      Linux 2023), with PyTorch: resolve:ssm:/aws/service/deeplearning/ami/
                                      {x86_64|arm64}/oss-nvidia-driver-gpu-pytorch-2.10-amazon-linux-2023/latest/ami-id
                                      (arm64 for Graviton types such as g5g)
  --spot | --on-demand | --spot-fallback
                                      spot only, on-demand only, or spot then on-demand (the default)
  --max-run-lifetime 2h|90m|1h30m     each attempt's lifetime, at most the foundation's (the default)
  --env-var KEY=VALUE                 an environment variable of the command (repeatable; stored in plain text in
                                      the run's spec: for a key or a token, use --secret)
  --secret ENV_NAME=NAME              an environment variable of the command read at each attempt's start from the
                                      SSM SecureString parameter /chronos-training/ENV/secrets/NAME (repeatable;
                                      store one with chronos-training secret set NAME)
  --file PATH                         the run file (default: chronos.yaml in the current directory, when there is
                                      one); the flags given win over its fields (docs/RUNS.md, "The run file")
  --name NAME                         a human name, also the run ID's prefix
  --max-attempts N                    attempts in all, after spot interruptions (default 3)
  --on-demand-after-interruptions N   switch to on-demand after N spot interruptions (default 2; needs on-demand allowed)
  --setup "pip install -r requirements.txt"
                                      a command run once before COMMAND in the code directory (its own log stream
                                      `setup`; never retried: a failure fails the attempt); its result (.venv) is
                                      cached per setup command and requirements/lock files, so later attempts skip it
  --setup-cache-file FILE             a file whose bytes key the setup's cache (repeatable; default: whichever of
                                      requirements*.txt, uv.lock, poetry.lock, pyproject.toml exist)
  --container IMAGE                   run COMMAND in this container image (docker run, GPUs, code and checkpoint
                                      directories mounted); an ECR image is pulled with the instance role
  --keep-checkpoints N                whole checkpoints kept in S3; older ones are deleted (default 2)
  --wait-for-capacity 6h|90m|0       when no zone, type or market has capacity, wait and try again (2, 4, 8...
                                      30 min apart) this long before the run fails (default 6h; 0: no wait)
  --detach                            return once launched (the run keeper launches the next attempts)
  --dir DIR                           the working directory to upload (default: the current one)
  --profile, --region                 as in the AWS CLI""",
    },
    "resume": {
        "options": {"--max-run-lifetime": (True, False), "--instance-types": (True, False), "--spot": (False, False),
                    "--on-demand": (False, False), "--spot-fallback": (False, False)},
        "usage": """usage: chronos-training resume RUN --env ENV [options]

Continues a run that ended stopped, timed-out, failed or interrupted: the same run ID, its next attempt, restored
from the run's last whole checkpoint, with the run's own policy (instance types, markets, attempts). Returns once the
attempt is launched (waiting for capacity first if there is none); the run keeper launches the attempts after it.

options:
  --max-run-lifetime 2h|90m           each attempt's lifetime from now on, at most the foundation's
  --instance-types a,b,c              other instance types, in order of preference
  --spot | --on-demand | --spot-fallback
                                      another market""",
    },
    "logs": {
        "options": {"--follow": (False, False), "-f": (False, False)},
        "usage": """usage: chronos-training logs RUN --env ENV [--follow]

Prints every attempt's logs (stdout on stdout; stderr and the agent's lines on stderr). --follow waits for more
until the run is over.""",
    },
    "status": {
        "options": {},
        "usage": """usage: chronos-training status [RUN] --env ENV

The run's state, attempt, instance, lifecycle, zone and age, from its status file and EC2, and its estimated cost
from its attempt records and AWS's spot price history and Price List API. Without RUN: as list.""",
    },
    "list": {
        "options": {"--limit": (True, False)},
        "usage": """usage: chronos-training list --env ENV [--limit N]

The environment's runs, newest first (default 20).""",
    },
    "stop": {
        "options": {"--now": (False, False)},
        "usage": """usage: chronos-training stop RUN --env ENV [--now]

Asks the run's agent to stop (control.json): it drains, keeps its final checkpoint and logs, and ends as stopped.
--now also terminates the run's instances at once (no drain).""",
    },
    "secret": {
        "options": {"--key-id": (True, False)},
        "usage": """usage: chronos-training secret set NAME --env ENV [--key-id KEY]
       chronos-training secret list --env ENV

set: stores a secret as the SSM SecureString parameter /chronos-training/ENV/secrets/NAME (Standard tier, the AWS
managed key aws/ssm; replaces the value it had). The value is read from a prompt that does not echo it, or from
standard input when it is not a terminal (printf %s "$WANDB_API_KEY" | chronos-training secret set wandb --env dev).
A run reads it with --secret ENV_NAME=NAME (or secrets: in chronos.yaml). --key-id: a customer managed KMS key (its
ID, ARN or alias/NAME), the foundation's secretsKey (docs/IAM.md, "Run secrets").
list: the names of the environment's secrets (never their values).""",
    },
    "init": {
        "options": {"--force": (False, False), "--file": (True, False)},
        "usage": """usage: chronos-training init [--file PATH] [--force]

Writes a commented example run file, chronos.yaml (or PATH), with every field; refuses to replace one unless
--force. Editors that read the first line's $schema (the YAML language server) complete and check its fields.""",
    },
    "schema": {
        "options": {},
        "usage": """usage: chronos-training schema

Prints the JSON Schema (draft 2020-12) of the run file chronos.yaml.""",
    },
    "agent-path": {
        "options": {"--copy": (True, False)},
        "usage": """usage: chronos-training agent-path [--copy DEST]

Prints the path of the run agent (chronos_run_agent.py) shipped in this package, for a container image.
--copy DEST copies it to DEST (a file or a directory) and prints the copy's path: from the Python package's
console script, the printed path is in a temporary directory that is removed when the command exits.""",
    },
}

USAGE = """usage: chronos-training COMMAND [options]

commands:
  run -- COMMAND...   launch a training run and follow it
  logs RUN            print a run's logs (--follow)
  status [RUN]        a run's state and instances
  list                the environment's runs
  stop RUN            stop a run (--now: terminate)
  resume RUN          continue a stopped, timed-out, failed or interrupted run
  secret set NAME     store a secret for --secret (secret list: their names)
  init                write an example run file, chronos.yaml
  schema              print the run file's JSON Schema
  agent-path          the path of the packaged run agent

Run chronos-training COMMAND --help for a command's options. --version prints the version.
Credentials and region: the standard AWS chain, --profile and --region as in the AWS CLI; AWS_ENDPOINT_URL is honoured."""


class Parsed:
    def __init__(self) -> None:
        self.options: Dict[str, List[str]] = {}
        self.positionals: List[str] = []
        self.rest: Optional[List[str]] = None

    def first(self, name: str) -> Optional[str]:
        values = self.options.get(name)
        return values[0] if values else None


def _parse(args: List[str], specs: Dict[str, Tuple[bool, bool]], command: str) -> Parsed:
    parsed = Parsed()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            parsed.rest = args[i + 1:]
            return parsed
        if arg.startswith("-") and arg != "-":
            eq = arg.find("=")
            name = arg[:eq] if eq > 0 else arg
            spec = specs.get(name)
            if spec is None:
                raise ChronosError("%s: unknown option %s (see chronos-training %s --help)" % (command, name, command), 2)
            takes_value, repeat = spec
            value = "true"
            if takes_value:
                if eq > 0:
                    value = arg[eq + 1:]
                elif i + 1 < len(args):
                    i += 1
                    value = args[i]
                else:
                    raise ChronosError("%s: %s needs a value" % (command, name), 2)
            elif eq > 0:
                raise ChronosError("%s: %s takes no value" % (command, name), 2)
            if name in parsed.options and not repeat and takes_value:
                raise ChronosError("%s: %s is given twice" % (command, name), 2)
            parsed.options.setdefault(name, []).append(value)
        else:
            parsed.positionals.append(arg)
        i += 1
    return parsed


def _integer(parsed: Parsed, name: str) -> Optional[int]:
    v = parsed.first(name)
    if v is None:
        return None
    if not re.match(r"^\d+$", v):
        raise ChronosError("%s '%s' is not a whole number" % (name, v), 2)
    return int(v)


def _describe_error(e: BaseException) -> str:
    code = error_code(e)
    message = error_message(e)
    if code in ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound") or "Unable to locate credentials" in message:
        return ("no AWS credentials: %s (set a profile with --profile or AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)" % message)
    if code == "NoRegionError" or re.search("must specify a region", message, re.I):
        return "no AWS region: pass --region or set AWS_REGION"
    return "%s: %s" % (code, message) if code and code != "Exception" and not message.startswith(code) else message


def main_with(argv: List[str], io: Io, clients: Optional[Callable[[Optional[str], Optional[str]], Any]] = None,
              poll_seconds: Optional[float] = None) -> int:
    """Runs the command line `argv` (without the program's name); returns the exit code. Never raises."""
    try:
        if not argv or argv[0] in ("--help", "-h", "help"):
            io.out(USAGE + "\n")
            return 2 if not argv else 0
        command, args = argv[0], argv[1:]
        if command in ("--version", "version"):
            from .commands import package_version
            io.out("chronos-training %s\n" % package_version())
            return 0
        definition = COMMANDS.get(command)
        if definition is None:
            raise ChronosError("unknown command '%s' (commands: %s)" % (command, ", ".join(COMMANDS)), 2)
        parsed = _parse(args, dict(GLOBAL, **definition["options"]), command)
        if parsed.options.get("--help"):
            io.out(definition["usage"] + "\n")
            return 0
        from . import commands
        if command == "agent-path":
            return commands.agent_path_command(io, parsed.first("--copy"))
        if command in ("init", "schema"):
            return _init_or_schema(command, parsed, io)
        from_file: Dict[str, Any] = {}
        if command == "run":
            from . import runfile
            path = runfile.find(parsed.first("--file"))
            if path:
                from_file = runfile.read(path)
        env = parsed.first("--env") or os.environ.get("CHRONOS_ENV") or from_file.get("env")
        if not env:
            raise ChronosError("%s: --env ENV is needed (or CHRONOS_ENV)" % command, 2)
        if clients is None:
            from .clients import Clients
            aws = Clients(profile=parsed.first("--profile"), region=parsed.first("--region"))
        else:
            aws = clients(parsed.first("--profile"), parsed.first("--region"))

        def run_arg() -> str:
            if len(parsed.positionals) != 1:
                raise ChronosError("%s: give one run ID (see chronos-training %s --help)" % (command, command), 2)
            return parsed.positionals[0]

        if poll_seconds is None:
            poll = float(os.environ["CHRONOS_POLL_SECONDS"]) if os.environ.get("CHRONOS_POLL_SECONDS") else 5.0
        else:
            poll = poll_seconds
        o = parsed.options
        if command == "run":
            markets = [m for m in ("--spot", "--on-demand", "--spot-fallback") if o.get(m)]
            if len(markets) > 1:
                raise ChronosError("run: %s contradict each other; choose one" % " and ".join(markets), 2)
            if parsed.rest is not None and parsed.positionals:
                raise ChronosError("run: unexpected %s before --" % parsed.positionals[0], 2)
            types = parsed.first("--instance-types")
            from .runfile import merge
            given = parsed.rest if parsed.rest is not None else parsed.positionals
            options = commands.RunOptions(**merge(from_file, dict(
                env=env,
                command=given or None,
                instance_types=[s.strip() for s in types.split(",") if s.strip()] if types is not None else None,
                image_id=parsed.first("--image-id"),
                market=markets[0][2:] if markets else None,
                max_run_lifetime=parsed.first("--max-run-lifetime"),
                env_vars=o.get("--env-var"),
                name=parsed.first("--name"),
                max_attempts=_integer(parsed, "--max-attempts"),
                on_demand_after_interruptions=_integer(parsed, "--on-demand-after-interruptions"),
                keep_checkpoints=_integer(parsed, "--keep-checkpoints"),
                directory=parsed.first("--dir"),
                setup=parsed.first("--setup"),
                setup_cache_files=o.get("--setup-cache-file"),
                container=parsed.first("--container"),
                wait_for_capacity=parsed.first("--wait-for-capacity"),
                secrets=o.get("--secret"),
            )))
            return commands.run_command(aws, io, options, detach=bool(o.get("--detach")), poll_seconds=poll)
        if command == "resume":
            markets = [m for m in ("--spot", "--on-demand", "--spot-fallback") if o.get(m)]
            if len(markets) > 1:
                raise ChronosError("resume: %s contradict each other; choose one" % " and ".join(markets), 2)
            types = parsed.first("--instance-types")
            return commands.resume_command(
                aws, io, env, run_arg(), max_run_lifetime=parsed.first("--max-run-lifetime"),
                instance_types=[s.strip() for s in types.split(",") if s.strip()] if types is not None else None,
                market=markets[0][2:] if markets else None)
        if command == "logs":
            return commands.logs_command(aws, io, env, run_arg(), follow=bool(o.get("--follow") or o.get("-f")),
                                         poll_seconds=poll)
        if command == "status":
            if not parsed.positionals:
                return commands.list_command(aws, io, env)
            return commands.status_command(aws, io, env, run_arg())
        if command == "list":
            return commands.list_command(aws, io, env, _integer(parsed, "--limit"))
        if command == "stop":
            return commands.stop_command(aws, io, env, run_arg(), now=bool(o.get("--now")))
        if command == "secret":
            return _secret(parsed, io, aws, env)
        raise ChronosError("unknown command '%s'" % command, 2)
    except Exception as e:  # noqa: BLE001
        message = e.message if isinstance(e, ChronosError) else _describe_error(e)
        io.err("chronos-training: error: %s\n" % re.sub(r"\s*\n\s*", " ", message))
        return e.exit_code if isinstance(e, ChronosError) else 1


def _init_or_schema(command: str, parsed: Parsed, io: Io) -> int:
    from . import runfile
    if parsed.positionals:
        raise ChronosError("%s: unexpected %s" % (command, parsed.positionals[0]), 2)
    if command == "schema":
        io.out(runfile.schema_text())
        return 0
    path = parsed.first("--file") or runfile.DEFAULT_FILE
    if os.path.exists(path) and not parsed.options.get("--force"):
        raise ChronosError("init: %s exists; --force replaces it" % path, 2)
    with open(path, "w", encoding="utf-8") as f:
        f.write(runfile.example())
    io.err("chronos-training: wrote %s; edit it, then: chronos-training run\n" % path)
    return 0


def _read_secret_value(name: str) -> str:
    """The value from a prompt without echo (a terminal), else all of standard input less one final newline."""
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass
        return getpass.getpass("value of secret %s (not echoed): " % name)
    data = sys.stdin.read() if sys.stdin is not None else ""
    return data[:-1] if data.endswith("\n") else data


def _secret(parsed: Parsed, io: Io, aws: Any, env: str) -> int:
    from . import run_secrets
    action = parsed.positionals[0] if parsed.positionals else None
    if action == "set" and len(parsed.positionals) == 2:
        name = run_secrets.check_name(parsed.positionals[1])
        version = run_secrets.set_secret(aws, env, name, _read_secret_value(name), parsed.first("--key-id"))
        io.err("chronos-training: stored %s (version %d); a run reads it with --secret ENV_NAME=%s\n"
               % (run_secrets.parameter_name(env, name), version, name))
        return 0
    if action == "list" and len(parsed.positionals) == 1:
        for name in run_secrets.list_secrets(aws, env):
            io.out(name + "\n")
        return 0
    raise ChronosError("secret: give set NAME or list (see chronos-training secret --help)", 2)


def process_io() -> Io:
    """The process's Io: stdout, stderr, real time, and Ctrl-C as a detach (a second Ctrl-C quits, exit 130)."""
    interrupted = threading.Event()

    def on_sigint(_signum: int, _frame: Any) -> None:
        if interrupted.is_set():
            os._exit(130)
        interrupted.set()

    signal.signal(signal.SIGINT, on_sigint)
    return Io(interrupted=interrupted)


def main(argv: Optional[List[str]] = None) -> int:
    """The console script `chronos-training`."""
    code = main_with(sys.argv[1:] if argv is None else argv, process_io())
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
