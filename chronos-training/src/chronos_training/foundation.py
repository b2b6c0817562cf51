"""What the launcher needs of an environment's foundation: SSM parameters, else CloudFormation exports, and the facts
of the launch template version it launches."""
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .contract import ENV_PATTERN, LIFETIME_MARGIN_SECONDS
from .errors import ChronosError, error_code

DEFAULT_LIFETIME_HOURS = 4


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    zone: str


@dataclass(frozen=True)
class Foundation:
    """An environment's foundation, as the launcher reads it."""

    environment: str
    bucket: str
    launch_template_id: str
    #: The launch template version to launch and describe: the number the foundation publishes as
    #: `LaunchTemplateVersion` (its latest version, which CloudFormation never makes the default), or `$Latest` for an
    #: older foundation.
    launch_template_version: str
    #: Public subnets, in zone order, each with its zone.
    subnets: List[Subnet]
    cost_center: str = "train"
    #: The foundation's run lifetime in seconds: the template's `MaxLifetimeHours` tag minus LIFETIME_MARGIN_SECONDS
    #: (the tag carries the margin), else 4 hours.
    max_lifetime_seconds: int = DEFAULT_LIFETIME_HOURS * 3600
    #: Whether the template itself asks for spot (then a launch cannot be on-demand).
    template_is_spot: bool = False
    template_instance_type: Optional[str] = None
    #: The template's image (an AMI ID or `resolve:ssm:NAME`), if it has one: by default it has none.
    template_image_id: Optional[str] = None
    #: Where the values came from: `SSM parameters` or `CloudFormation exports`.
    source: str = "SSM parameters"
    values: Dict[str, str] = field(default_factory=dict, compare=False, repr=False)


def check_env_name(env: str) -> None:
    """Refuses what cannot be an environment name (the library's rule: lower case letters, digits and '-')."""
    if not re.match(ENV_PATTERN, env):
        raise ChronosError("--env '%s' is not an environment name (lower case letters, digits and '-')" % env, 2)


def _from_parameters(clients: Any, env: str) -> Dict[str, str]:
    prefix = "/chronos-training/%s/" % env
    values: Dict[str, str] = {}
    try:
        token = None
        while True:
            page = clients.ssm.get_parameters_by_path(Path=prefix, **({"NextToken": token} if token else {}))
            for p in page.get("Parameters", []):
                if p.get("Name") and p.get("Value"):
                    values[p["Name"][len(prefix):]] = p["Value"]
            token = page.get("NextToken")
            if not token:
                break
    except Exception as e:  # noqa: BLE001
        # Without ssm:GetParametersByPath the exports may still be readable.
        if not re.search("AccessDenied|UnauthorizedOperation", error_code(e)):
            raise
    return values


def _from_exports(clients: Any, env: str) -> Dict[str, str]:
    prefix = "ChronosTraining-%s-" % env
    values: Dict[str, str] = {}
    token = None
    while True:
        page = clients.cfn.list_exports(**({"NextToken": token} if token else {}))
        for x in page.get("Exports", []):
            if x.get("Name", "").startswith(prefix) and x.get("Value"):
                values[x["Name"][len(prefix):]] = x["Value"]
        token = page.get("NextToken")
        if not token:
            break
    return values


def _template_facts(clients: Any, template_id: str, version: str) -> Dict[str, Any]:
    """The facts of the template version the launcher launches (never `$Default`: CloudFormation adds a version on each
    change of the template's data and never moves the default, `AWS::EC2::LaunchTemplate` reference, return values
    `LatestVersionNumber` and `DefaultVersionNumber`)."""
    try:
        reply = clients.ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[version])
    except Exception as e:  # noqa: BLE001
        if re.search("NotFound|Malformed", error_code(e)):
            raise ChronosError("the foundation's launch template %s (version %s) does not exist (%s): is the foundation "
                               "deployed?" % (template_id, version, error_code(e)))
        raise
    versions = reply.get("LaunchTemplateVersions") or [{}]
    data = versions[0].get("LaunchTemplateData") or {}
    instance_tags: List[Dict[str, str]] = []
    for spec in data.get("TagSpecifications") or []:
        if spec.get("ResourceType") == "instance":
            instance_tags = spec.get("Tags") or []
            break
    hours = next((t.get("Value") for t in instance_tags if t.get("Key") == "MaxLifetimeHours"), None)
    return {
        "max_lifetime_hours": hours,
        "spot": (data.get("InstanceMarketOptions") or {}).get("MarketType") == "spot",
        "instance_type": data.get("InstanceType"),
        "image_id": data.get("ImageId"),
    }


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def resolve_foundation(clients: Any, env: str) -> Foundation:
    """Reads `/chronos-training/{env}/*`, or the `ChronosTraining-{env}-*` exports when there are no parameters."""
    check_env_name(env)
    values = _from_parameters(clients, env)
    source = "SSM parameters"
    if not values:
        values = _from_exports(clients, env)
        source = "CloudFormation exports"
    if not values:
        raise ChronosError("no foundation for environment '%s' in this account and region: neither SSM parameters "
                           "/chronos-training/%s/* nor CloudFormation exports ChronosTraining-%s-* (check --env, --region, "
                           "--profile)" % (env, env, env))

    def need(suffix: str) -> str:
        v = values.get(suffix)
        if not v:
            raise ChronosError("the foundation of '%s' has no %s (in its %s); redeploy it with this version of the library"
                               % (env, suffix, source))
        return v

    if not values.get("LaunchTemplateId"):
        raise ChronosError("the foundation of '%s' has no launch template (it was deployed with launchTemplate: false); "
                           "chronos-training launches from the foundation's launch template: deploy it with the default "
                           "launchTemplate" % env)
    subnet_ids = [s.strip() for s in need("PublicSubnetIds").split(",") if s.strip()]
    zones = [s.strip() for s in need("AvailabilityZones").split(",")]
    subnets = [Subnet(sid, zones[i] if i < len(zones) else "?") for i, sid in enumerate(subnet_ids)]
    version = (values.get("LaunchTemplateVersion") or "").strip() or "$Latest"
    template = _template_facts(clients, values["LaunchTemplateId"], version)
    tag_hours = _number(values["MaxLifetimeHours"] if "MaxLifetimeHours" in values else template["max_lifetime_hours"])
    if not tag_hours > 0:
        lifetime = DEFAULT_LIFETIME_HOURS * 3600
    else:
        tag_seconds = int(round(tag_hours * 3600))
        # A tag no longer than the margin (a foundation from before the margin, with a tiny lifetime) is the lifetime.
        lifetime = tag_seconds - LIFETIME_MARGIN_SECONDS if tag_seconds > LIFETIME_MARGIN_SECONDS else tag_seconds
    return Foundation(
        environment=env,
        bucket=need("S3BucketName"),
        launch_template_id=values["LaunchTemplateId"],
        launch_template_version=version,
        subnets=subnets,
        cost_center=values.get("CostCenter", "train"),
        max_lifetime_seconds=lifetime,
        template_is_spot=template["spot"],
        template_instance_type=template["instance_type"],
        template_image_id=template["image_id"] or None,
        source=source,
        values=values,
    )
