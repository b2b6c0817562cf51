"""A run's secrets: SSM SecureString parameters under `/chronos-training/{env}/secrets/` (docs/RUNS.md, "Secrets").

The run's spec holds only the mapping environment variable → parameter name; the run agent reads each value at the
start of each attempt (GetParameter, WithDecryption) and gives it only to the command's environment. The launcher
checks that each parameter exists, without reading its value (GetParameter without decryption), before it uploads or
launches anything; `secret set` stores one (PutParameter, SecureString, Standard tier: no charge while stored).
"""
import re
from typing import Any, Dict, List, Optional

from .errors import ChronosError, error_code
from .runfile import ENV_NAME_PATTERN, SECRET_PARAMETER_PATTERN

#: The parameter name of a secret: `/chronos-training/{env}/secrets/{name}` (the instance role may read exactly this
#: prefix, src/compute/training-instance-role.ts).
SECRET_PARAMETER = "/chronos-training/%s/secrets/%s"
#: A Standard parameter's value is at most 4 KB (AWS Systems Manager User Guide, "Managing parameter tiers").
MAX_STANDARD_VALUE_BYTES = 4096
#: Names that look like a secret's, for the --env-var warning.
SECRET_LOOKING = re.compile(r"(_KEY|_TOKEN|_SECRET)$|PASSWORD", re.I)


def parameter_name(env: str, name: str) -> str:
    return SECRET_PARAMETER % (env, name)


def check_name(name: str) -> str:
    if not re.match(SECRET_PARAMETER_PATTERN, name or ""):
        raise ChronosError("secret name '%s' is not a parameter name: letters, digits, '_', '.', '-', 1 to 200 "
                           "characters (%s)" % (name, SECRET_PARAMETER_PATTERN), 2)
    return name


def parse_secrets(pairs: Optional[List[str]]) -> Optional[Dict[str, str]]:
    """`ENV_NAME=parameter-name` pairs (--secret) → the spec's `secrets` mapping."""
    if not pairs:
        return None
    out: Dict[str, str] = {}
    for pair in pairs:
        key, eq, name = pair.partition("=")
        if not eq or not re.match(ENV_NAME_PATTERN, key):
            raise ChronosError("--secret '%s' is not ENV_NAME=parameter-name (for example WANDB_API_KEY=wandb)" % pair,
                               2)
        if key.startswith("CHRONOS_"):
            raise ChronosError("--secret %s: CHRONOS_* variables are the agent's" % key, 2)
        if not re.match(SECRET_PARAMETER_PATTERN, name):
            raise ChronosError("--secret %s: '%s' is not a parameter name: letters, digits, '_', '.', '-', 1 to 200 "
                               "characters (%s)" % (key, name, SECRET_PARAMETER_PATTERN), 2)
        out[key] = name
    return out


def looks_secret(name: str) -> bool:
    """Whether an --env-var name looks like a secret's (`*_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD*`)."""
    return bool(SECRET_LOOKING.search(name))


def check_secrets_exist(clients: Any, env: str, secrets: Dict[str, str]) -> None:
    """Each secret's parameter exists and is a SecureString; its value is not read (no decryption)."""
    for key, name in sorted(secrets.items()):
        full = parameter_name(env, name)
        try:
            found = clients.ssm.get_parameter(Name=full, WithDecryption=False)["Parameter"]
        except Exception as e:  # noqa: BLE001
            if error_code(e) == "ParameterNotFound":
                raise ChronosError("secret %s: no parameter %s; store it with: chronos-training secret set %s --env %s"
                                   % (key, full, name, env), 2)
            raise ChronosError("secret %s: cannot check the parameter %s: %s (%s)" % (key, full, error_code(e), e))
        if found.get("Type") != "SecureString":
            raise ChronosError("secret %s: the parameter %s is a %s, not a SecureString; store it again with: "
                               "chronos-training secret set %s --env %s" % (key, full, found.get("Type"), name, env), 2)


def set_secret(clients: Any, env: str, name: str, value: str, key_id: Optional[str] = None) -> int:
    """Stores (or replaces) a secret: a SecureString parameter, Standard tier, encrypted with `key_id` (the
    foundation's secretsKey) or else the AWS managed key aws/ssm. Returns the parameter's version."""
    from .foundation import check_env_name
    check_env_name(env)
    check_name(name)
    if not value:
        raise ChronosError("secret %s: the value is empty" % name, 2)
    if len(value.encode("utf-8")) > MAX_STANDARD_VALUE_BYTES:
        raise ChronosError("secret %s: the value is %d bytes; a Standard parameter holds at most %d"
                           % (name, len(value.encode("utf-8")), MAX_STANDARD_VALUE_BYTES), 2)
    answer = clients.ssm.put_parameter(Name=parameter_name(env, name), Value=value, Type="SecureString",
                                       Tier="Standard", Overwrite=True, **({"KeyId": key_id} if key_id else {}),
                                       Description="chronos-training secret (chronos-training secret set)")
    return int(answer.get("Version", 0))


def list_secrets(clients: Any, env: str) -> List[str]:
    """The names of an environment's secrets (DescribeParameters: metadata only, never a value)."""
    from .foundation import check_env_name
    check_env_name(env)
    prefix = "/chronos-training/%s/secrets" % env
    names: List[str] = []
    token = None
    while True:
        page = clients.ssm.describe_parameters(
            ParameterFilters=[{"Key": "Path", "Option": "OneLevel", "Values": [prefix]}],
            **({"NextToken": token} if token else {}))
        names += [p["Name"][len(prefix) + 1:] for p in page.get("Parameters", [])]
        token = page.get("NextToken")
        if not token:
            return sorted(names)
