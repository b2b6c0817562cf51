"""The run file, `chronos.yaml`: a job described beside its code (docs/RUNS.md, "The run file").

ONE table, FIELDS, is the source of the validator, of the JSON Schema (draft 2020-12) published as
`chronos_training/chronos.schema.json` and `docs/chronos.schema.json` (tests/test_runfile.py checks both are current)
and of the keyword arguments of RunOptions each field fills. Validation happens before anything is uploaded or
launched; each message names the file, the field, the value and the rule.

YAML is read with PyYAML's `safe_load` (plain data only: no tags that build Python objects). JSON is YAML, so a
`chronos.json` written by a program is read the same way.
"""
import json
import os
import re
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from .errors import ChronosError

#: The file `run` reads from the working directory when no --file is given.
DEFAULT_FILE = "chronos.yaml"
#: Where the schema is published for editors (the `# yaml-language-server: $schema=` line of `init`).
SCHEMA_URL = "https://raw.githubusercontent.com/chronos/training-infra/main/docs/chronos.schema.json"
SCHEMA_ID = SCHEMA_URL

#: An environment variable's name (POSIX: letters, digits, `_`, not starting with a digit).
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: A secret's parameter name under `/chronos-training/{env}/secrets/`: SSM allows a-z, A-Z, 0-9, `_`, `.`, `-` in a
#: name and `/` between levels (AWS Systems Manager User Guide, "Creating Systems Manager parameters", parameter name
#: requirements); one level here, so that the instance role's grant `secrets/*` is exactly the run's secrets.
SECRET_PARAMETER_PATTERN = r"^[A-Za-z0-9_.-]{1,200}$"
#: A duration: `6h`, `90m`, `1h30m`, `45s`.
DURATION_PATTERN = r"^(?:\d+(?:\.\d+)?h)?(?:\d+m)?(?:\d+s)?$"
MARKETS = ("spot", "on-demand", "spot-fallback")


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, (dict, list)) else json.dumps(value)[:80]


class Invalid(Exception):
    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


def _string(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise Invalid("is not a non-empty string")
    return v


def _integer(minimum: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise Invalid("is not an integer >= %d" % minimum)
        return v
    return check


def _strings(v: Any) -> List[str]:
    if not isinstance(v, list) or not v or not all(isinstance(s, str) and s.strip() for s in v):
        raise Invalid("is not a non-empty list of non-empty strings")
    return list(v)


def _instance_types(v: Any) -> List[str]:
    if isinstance(v, str):
        v = [s.strip() for s in v.split(",") if s.strip()]
    return _strings(v)


def _duration(v: Any) -> str:
    if not isinstance(v, str) or not v.strip() or not re.match(DURATION_PATTERN, v.strip()):
        raise Invalid("is not a duration such as 6h, 90m or 1h30m")
    return v.strip()


def _market(v: Any) -> str:
    if v not in MARKETS:
        raise Invalid("is not one of %s" % ", ".join(MARKETS))
    return str(v)


def _command(v: Any) -> List[str]:
    if isinstance(v, str):
        try:
            words = shlex.split(v)
        except ValueError as e:
            raise Invalid("is not a command line (%s)" % e)
        if not words:
            raise Invalid("is an empty command")
        return words
    if not isinstance(v, list) or not v or not all(isinstance(s, str) for s in v):
        raise Invalid("is not a command: a string, or a non-empty list of strings")
    return list(v)


def _variable(k: Any) -> None:
    if not isinstance(k, str) or not re.match(ENV_NAME_PATTERN, k) or k.startswith("CHRONOS_"):
        raise Invalid("has the name %s, which is not an environment variable's name (%s, not CHRONOS_*)"
                      % (_show(k), ENV_NAME_PATTERN))


def _env(v: Any) -> List[str]:
    if not isinstance(v, dict):
        raise Invalid("is not a mapping of NAME: value")
    out = []
    for k, value in v.items():
        _variable(k)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Invalid("has %s: %s, which is not a string or a number" % (k, _show(value)))
        out.append("%s=%s" % (k, value))
    return out


def _secrets(v: Any) -> List[str]:
    if not isinstance(v, dict) or not v:
        raise Invalid("is not a mapping of ENV_NAME: parameter-name")
    out = []
    for k, value in v.items():
        _variable(k)
        if not isinstance(value, str) or not re.match(SECRET_PARAMETER_PATTERN, value):
            raise Invalid("has %s: %s, which is not a parameter name (%s)" % (k, _show(value),
                                                                             SECRET_PARAMETER_PATTERN))
        out.append("%s=%s" % (k, value))
    return out


def _checkpoints(v: Any) -> int:
    if not isinstance(v, dict) or set(v) - {"keep"}:
        raise Invalid("is not a mapping with the one key keep")
    try:
        return _integer(1)(v.get("keep"))
    except Invalid:
        raise Invalid("keep: %s is not an integer >= 1" % _show(v.get("keep")))


def _setup(v: Any) -> Dict[str, Any]:
    if isinstance(v, str):
        return {"setup": _string(v)}
    if not isinstance(v, dict) or "command" not in v or set(v) - {"command", "cacheFiles"}:
        raise Invalid("is not a command string, or a mapping with command (and cacheFiles)")
    out: Dict[str, Any] = {"setup": _string(v["command"])}
    if "cacheFiles" in v:
        try:
            out["setup_cache_files"] = _strings(v["cacheFiles"])
        except Invalid as e:
            raise Invalid("cacheFiles %s" % e.rule)
    return out


@dataclass(frozen=True)
class Field:
    """One field of the run file: its name, the RunOptions attribute it fills, the CLI flag that overrides it, its
    JSON Schema, its check (value → attribute value, or Invalid), and the line `init` writes."""

    name: str
    attribute: str
    flag: str
    description: str
    schema: Dict[str, Any]
    check: Callable[[Any], Any]
    example: str


_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
_ENV_NAME = {"type": "string", "pattern": ENV_NAME_PATTERN}

FIELDS: Tuple[Field, ...] = (
    Field("environment", "env", "--env", "The foundation's environment (the CLI's --env, or CHRONOS_ENV, wins).",
          {"type": "string", "pattern": r"^[a-z]([a-z0-9-]*[a-z0-9])?$"}, _string, "environment: dev"),
    Field("name", "name", "--name", "A human name, also the run ID's prefix.",
          {"type": "string", "minLength": 1}, _string, "name: llama-finetune"),
    Field("command", "command", "-- COMMAND...", "The command: a list of arguments, or one string split as a POSIX "
          "shell would (no shell runs it).",
          {"oneOf": [{"type": "string", "minLength": 1}, _STRINGS]}, _command, "command: [python, train.py]"),
    Field("instanceTypes", "instance_types", "--instance-types", "Instance types in order of preference (default: "
          "the launch template's).", {"oneOf": [_STRINGS, {"type": "string", "minLength": 1}]}, _instance_types,
          "instanceTypes: [g5.xlarge, g6.xlarge]"),
    Field("image", "image_id", "--image-id", "An AMI ID, or resolve:ssm:NAME (default: the template's image, else "
          "the Deep Learning Base AMI).", {"type": "string", "minLength": 1}, _string,
          "# image: resolve:ssm:/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/"
          "latest/ami-id"),
    Field("market", "market", "--spot | --on-demand | --spot-fallback", "spot, on-demand, or spot-fallback (spot, "
          "then on-demand; the default).", {"enum": list(MARKETS)}, _market, "market: spot-fallback"),
    Field("maxRunLifetime", "max_run_lifetime", "--max-run-lifetime", "Each attempt's lifetime (6h, 90m, 1h30m), at "
          "most the foundation's.", {"type": "string", "pattern": DURATION_PATTERN, "minLength": 2}, _duration,
          "maxRunLifetime: 6h"),
    Field("maxAttempts", "max_attempts", "--max-attempts", "Attempts in all, after spot interruptions (default 3).",
          {"type": "integer", "minimum": 1}, _integer(1), "maxAttempts: 3"),
    Field("onDemandAfterInterruptions", "on_demand_after_interruptions", "--on-demand-after-interruptions",
          "Switch to on-demand after this many spot interruptions (default 2).", {"type": "integer", "minimum": 0},
          _integer(0), "onDemandAfterInterruptions: 2"),
    Field("waitForCapacity", "wait_for_capacity", "--wait-for-capacity", "How long to wait for capacity when no "
          "instance type can be launched (6h).", {"type": "string", "pattern": DURATION_PATTERN, "minLength": 2},
          _duration, "# waitForCapacity: 6h"),
    Field("directory", "directory", "--dir", "The directory to upload, relative to this file (default: this file's "
          "directory).", {"type": "string", "minLength": 1}, _string, "# directory: ."),
    Field("setup", "setup", "--setup / --setup-cache-file", "A setup command run before the command at each "
          "attempt, in the code directory; with cacheFiles, its result is cached under the hash of the command and "
          "those files.",
          {"oneOf": [{"type": "string", "minLength": 1}, {"type": "object", "additionalProperties": False,
                                                          "required": ["command"], "properties": {
                                                              "command": {"type": "string", "minLength": 1},
                                                              "cacheFiles": _STRINGS}}]},
          _setup, "setup:\n  command: pip install -r requirements.txt\n  cacheFiles: [requirements.txt]"),
    Field("container", "container", "--container", "Run the command in this container image (docker run --gpus "
          "all).", {"type": "string", "minLength": 1}, _string, "# container: 123456789012.dkr.ecr.us-east-1."
          "amazonaws.com/train:latest"),
    Field("env", "env_vars", "--env-var", "The command's environment variables (not secrets: they are stored in "
          "plain text in the run's spec).",
          {"type": "object", "propertyNames": _ENV_NAME, "additionalProperties": {"type": ["string", "number"]}},
          _env, "env:\n  EPOCHS: \"10\""),
    Field("secrets", "secrets", "--secret", "Environment variables read at each attempt start from SSM SecureString "
          "parameters /chronos-training/{env}/secrets/{parameter} (store one with chronos-training secret set).",
          {"type": "object", "propertyNames": _ENV_NAME, "minProperties": 1,
           "additionalProperties": {"type": "string", "pattern": SECRET_PARAMETER_PATTERN}},
          _secrets, "# secrets:\n#   WANDB_API_KEY: wandb"),
    Field("checkpoints", "keep_checkpoints", "--keep-checkpoints", "keep: how many whole checkpoints to keep "
          "(default 2).", {"type": "object", "additionalProperties": False, "properties": {
              "keep": {"type": "integer", "minimum": 1}}, "required": ["keep"]}, _checkpoints,
          "checkpoints:\n  keep: 2"),
)
BY_NAME: Dict[str, Field] = {f.name: f for f in FIELDS}


def json_schema() -> Dict[str, Any]:
    """The run file's JSON Schema (draft 2020-12), from FIELDS."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "chronos.yaml",
        "description": "A Chronos training run (chronos-training run reads it; flags override it). docs/RUNS.md, "
                       "\"The run file\".",
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: dict(f.schema, description=f.description) for f in FIELDS},
    }


def schema_text() -> str:
    """The schema as committed (2-space JSON, a final newline)."""
    return json.dumps(json_schema(), indent=2) + "\n"


def validate(doc: Any, source: str = DEFAULT_FILE) -> Dict[str, Any]:
    """A parsed run file → RunOptions keyword arguments (only the fields it has). Raises ChronosError (exit 2)."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ChronosError("%s: the file is not a mapping of fields (known fields: %s)" % (
            source, ", ".join(BY_NAME)), 2)
    unknown = [k for k in doc if k not in BY_NAME]
    if unknown:
        raise ChronosError("%s: unknown field %s (known fields: %s)" % (source, _show(unknown[0]), ", ".join(BY_NAME)), 2)
    out: Dict[str, Any] = {}
    for key, value in doc.items():
        field = BY_NAME[key]
        try:
            checked = field.check(value)
        except Invalid as e:
            raise ChronosError("%s: %s: %s %s" % (source, key, _show(value), e.rule), 2)
        if isinstance(checked, dict) and field.name == "setup":
            out.update(checked)
        else:
            out[field.attribute] = checked
    return out


def read(path: str) -> Dict[str, Any]:
    """Reads and validates a run file; `directory` is made relative to the file's own directory, which is also the
    default directory to upload."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ChronosError("%s: cannot read it: %s" % (path, e.strerror or e), 2)
    import yaml
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ChronosError("%s: not valid YAML: %s" % (path, str(e).replace("\n", " ")), 2)
    name = os.path.basename(path)
    options = validate(doc, name)
    base = os.path.dirname(os.path.abspath(path))
    options["directory"] = os.path.normpath(os.path.join(base, options.get("directory", ".")))
    return options


def find(explicit: Optional[str], cwd: Optional[str] = None) -> Optional[str]:
    """The run file to read: `explicit` (--file; it must exist), else chronos.yaml in `cwd` when there is one."""
    if explicit:
        if not os.path.isfile(explicit):
            raise ChronosError("--file %s: no such file" % explicit, 2)
        return explicit
    path = os.path.join(cwd or os.getcwd(), DEFAULT_FILE)
    return path if os.path.isfile(path) else None


def merge(from_file: Dict[str, Any], from_flags: Dict[str, Any]) -> Dict[str, Any]:
    """The file's options with the flags' over them: a flag given wins; `env_vars` and `secrets` merge by name (the
    flag's value wins)."""
    out = dict(from_file)
    for key, value in from_flags.items():
        if value is None:
            continue
        if key in ("env_vars", "secrets") and out.get(key):
            names = {p.split("=", 1)[0] for p in value}
            out[key] = [p for p in out[key] if p.split("=", 1)[0] not in names] + list(value)
        else:
            out[key] = value
    return out


EXAMPLE_HEADER = """# yaml-language-server: $schema=%s
# A Chronos training run: `chronos-training run` reads this file from its directory (or --file PATH); a flag given
# on the command line wins over the field here. Reference: docs/RUNS.md, "The run file".
""" % SCHEMA_URL


def example() -> str:
    """The commented chronos.yaml `init` writes: every field, with its description."""
    import textwrap
    lines = [EXAMPLE_HEADER, "\n"]
    for f in FIELDS:
        lines += ["# %s\n" % t for t in textwrap.wrap("%s (flag: %s)" % (f.description, f.flag), 116)]
        lines.append(f.example + "\n\n")
    return "".join(lines).rstrip("\n") + "\n"
