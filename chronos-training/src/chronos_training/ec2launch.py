"""Launching one attempt: the RunInstances request, and the fallback through markets, instance types and zones.

Plain functions of (clients, foundation, request) with no terminal I/O: the CLI, the Python API and a Lambda call
them alike; `log` receives one line per step.
"""
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set

from .context import format_number
from .errors import ChronosError, error_code, error_message
from .foundation import Foundation

#: The errors after which the launcher tries the next zone, type or market. EC2 API Reference, "Error codes for the
#: Amazon EC2 API": InsufficientInstanceCapacity, InsufficientHostCapacity, InsufficientFreeAddressesInSubnet,
#: MaxSpotInstanceCountExceeded, SpotMaxPriceTooLow, Unsupported, UnfulfillableCapacity, ReservationCapacityExceeded and
#: InsufficientCapacity. InvalidParameterCombination is not among them: it is a configuration error (see STOP_ON).
NEXT_ON = frozenset([
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "InsufficientFreeAddressesInSubnet",
    "MaxSpotInstanceCountExceeded",
    "SpotMaxPriceTooLow",
    "Unsupported",
    "UnfulfillableCapacity",
    "ReservationCapacityExceeded",
])

#: The errors that say the request or the launch template is wrong, not that capacity is short (EC2 API Reference,
#: "Error codes for the Amazon EC2 API": InvalidParameterCombination, "Indicates an incorrect combination of
#: parameters, or a missing parameter").
STOP_ON = frozenset(["InvalidParameterCombination"])

#: The vCPU quota errors: per region and per quota family, so the launcher skips the other types of that family in
#: that market and goes on.
QUOTA_ERRORS = frozenset(["VcpuLimitExceeded"])

#: The error of a spot request when the account has no Spot service-linked role and the caller may not create it
#: (EC2 User Guide, "Service-linked role for Spot Instances").
SPOT_ROLE_ERROR = "AuthFailure.ServiceLinkedRoleCreationNotPermitted"

SPOT_ROLE_ADVICE = ("this account has no Spot service-linked role (AWSServiceRoleForEC2Spot) and this principal may not "
                    "create it; create it once with: aws iam create-service-linked-role --aws-service-name "
                    "spot.amazonaws.com (or allow iam:CreateServiceLinkedRole with iam:AWSServiceName = spot.amazonaws.com)")

#: How many times a RunInstances throttled by EC2 (RequestLimitExceeded) is sent again, and the first wait (seconds).
THROTTLE_RETRIES = 5
THROTTLE_FIRST_WAIT = 1.0

#: The image used when the launch template has none and no image is given: the AWS Deep Learning AMI OSS Nvidia
#: Driver GPU PyTorch 2.10 (Amazon Linux 2023), by its public SSM parameter (AWS Deep Learning AMIs Developer Guide,
#: "Finding the ID of a DLAMI"), pinned per run (pin_image). PyTorch is in it (`/opt/pytorch`, which the agent puts
#: first on the command's PATH: docs/RUNS.md), so that a first `run -- python train.py` imports torch. The version is
#: in the name: a newer PyTorch is a change here. Its arm64 sibling supports G5g and P6e-GB200 (release notes).
DEFAULT_IMAGE_NAME = "AWS Deep Learning AMI OSS Nvidia Driver GPU PyTorch 2.10 (Amazon Linux 2023)"
DEFAULT_IMAGE_PARAMETERS = {
    "x86_64": "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.10-amazon-linux-2023/latest/ami-id",
    "arm64": "/aws/service/deeplearning/ami/arm64/oss-nvidia-driver-gpu-pytorch-2.10-amazon-linux-2023/latest/ami-id",
}

_IMAGE_ID = re.compile(r"^(ami-([0-9a-f]{8}|[0-9a-f]{17})|resolve:ssm:\S+)$")


class NoCapacity(ChronosError):
    """Every zone × type × market try failed for capacity (NEXT_ON errors only): a run waits for capacity rather than
    fail (issue 29; docs/RUNS.md, "Waiting for capacity")."""


@dataclass(frozen=True)
class LaunchRequest:
    """One launch of one attempt."""

    run_id: str
    attempt: int
    instance_types: List[str]
    #: The markets to try, in order: `spot`, `on-demand`.
    markets: List[str]
    #: The `MaxLifetimeHours` tag.
    max_lifetime_hours: float
    name: Optional[str] = None
    #: The `ImageId` to send (an AMI ID or `resolve:ssm:NAME`); None: the launch template's (see choose_image).
    image_id: Optional[str] = None


@dataclass(frozen=True)
class Launched:
    """The instance that was launched."""

    instance_id: str
    instance_type: str
    market: str
    subnet_id: str
    zone: str
    tries: int


@dataclass(frozen=True)
class ImageChoice:
    """The image of a launch, and how to say which it is."""

    image_id: Optional[str]
    description: str


def is_spot_role_error(code: str, message: str) -> bool:
    """Whether an error is the missing Spot service-linked role (by its code, or by EC2's words)."""
    return code.endswith(SPOT_ROLE_ERROR) or bool(
        re.search(r"permission to create the service-linked role for EC2 Spot", message, re.I))


def quota_family(instance_type: str) -> str:
    """The vCPU quota family of an instance type (EC2 User Guide, "Amazon EC2 service quotas")."""
    family = instance_type.split(".")[0].lower()
    special = re.match(r"^(dl|hpc|inf|trn|mac|u)(?=[\d-])", family)
    if special:
        return special.group(1).upper()
    if re.match(r"^(g|gr|vt)\d", family):
        return "G and VT"
    if re.match(r"^p\d", family):
        return "P"
    if re.match(r"^[acdhimrtz][a-z]*\d", family):
        return "Standard"
    return re.sub(r"\d.*$", "", family).upper()


def quota_for(instance_type: str, market: str) -> Dict[str, Optional[str]]:
    """The Service Quotas entry (`code`, `name`) of an instance type's quota family and market."""
    family = quota_family(instance_type)
    spot = market == "spot"
    if family == "G and VT":
        return ({"code": "L-3819A6DF", "name": "All G and VT Spot Instance Requests"} if spot
                else {"code": "L-DB2E81BA", "name": "Running On-Demand G and VT instances"})
    if family == "P":
        return ({"code": "L-7212CCBC", "name": "All P Spot Instance Requests"} if spot
                else {"code": "L-417A185B", "name": "Running On-Demand P instances"})
    if family == "Standard":
        return ({"code": "L-34B43A08", "name": "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"} if spot
                else {"code": "L-1216C47A", "name": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"})
    return {"code": None,
            "name": ("All %s Spot Instance Requests" % family) if spot else ("Running On-Demand %s instances" % family)}


def quota_message(instance_type: str, market: str, aws_message: str, vcpus: Optional[int] = None) -> str:
    """The message of a vCPU quota error: which quota, and how to ask for more."""
    quota = quota_for(instance_type, market)
    desired = ("<your current quota + %d>" % vcpus) if vcpus else "<vCPUs you need>"
    if quota["code"]:
        ask = ("aws service-quotas request-service-quota-increase --service-code ec2 --quota-code %s --desired-value %s"
               % (quota["code"], desired))
    else:
        ask = ('find the quota "%s" in Service Quotas (aws service-quotas list-service-quotas --service-code ec2) and '
               "request it with aws service-quotas request-service-quota-increase --service-code ec2 --quota-code <code> "
               "--desired-value %s" % (quota["name"], desired))
    return 'the vCPU quota "%s"%s of this region is too small for %s %s%s (EC2: %s). Ask for more: %s' % (
        quota["name"], (" (%s)" % quota["code"]) if quota["code"] else "", market, instance_type,
        (" (%d vCPUs)" % vcpus) if vcpus else "", aws_message, ask)


def is_arm64_instance_type(instance_type: str) -> bool:
    """Whether an instance type is arm64 (Graviton): `a1`, the families with a `g` after their generation (g5g, c7g,
    m6gd, t4g, im4gn...) and the Grace ones (p6e-gb200). Heuristic on the name, as EC2's naming is."""
    family = instance_type.split(".")[0].lower()
    return family == "a1" or bool(re.match(r"^[a-z]+\d+g", family)) or bool(re.search(r"-gb\d", family))


def choose_image(foundation: Foundation, instance_types: List[str], image_id_flag: Optional[str] = None) -> ImageChoice:
    """The image of a launch: the given image when there is one (it wins over the template's); else none when the
    launch template has one; else the Deep Learning AMI of the instance types' architecture (all must share it)."""
    template = foundation.template_image_id
    if image_id_flag is not None:
        if not _IMAGE_ID.match(image_id_flag):
            raise ChronosError("--image-id '%s' is neither an AMI ID (ami-…) nor resolve:ssm:PARAMETER (a Systems Manager "
                               "parameter holding an AMI ID, which EC2 resolves at launch)" % image_id_flag, 2)
        return ImageChoice(image_id_flag, "--image-id %s%s" % (
            image_id_flag, (" (instead of the launch template's %s)" % template) if template else ""))
    if template:
        return ImageChoice(None, "the launch template's %s" % template)
    arm = [t for t in instance_types if is_arm64_instance_type(t)]
    x86 = [t for t in instance_types if not is_arm64_instance_type(t)]
    if arm and x86:
        raise ChronosError("the launch template has no image, and no one default image fits both %s (arm64) and %s "
                           "(x86_64): give --instance-types of one architecture, or --image-id"
                           % (", ".join(arm), ", ".join(x86)), 2)
    arch = "arm64" if arm else "x86_64"
    image_id = "resolve:ssm:%s" % DEFAULT_IMAGE_PARAMETERS[arch]
    return ImageChoice(image_id, "the %s, %s, %s (the launch template has no image; choose another with --image-id)"
                       % (DEFAULT_IMAGE_NAME, arch, image_id))


def pin_image(clients: Any, foundation: Foundation, image: ImageChoice) -> ImageChoice:
    """The image every attempt of a run uses (docs/RUNS.md, "The image is pinned per run"): a `resolve:ssm:` image
    (given, the default DLAMI, or the launch template's) resolved once, when the run starts, to the AMI ID its
    parameter holds (ssm GetParameters), so that a later attempt cannot get another AMI, with another driver or CUDA,
    after the parameter moves. An AMI ID, or a template's AMI ID, is already pinned."""
    ref = image.image_id or foundation.template_image_id
    if not ref or not ref.startswith("resolve:ssm:"):
        return image
    name = ref[len("resolve:ssm:"):]
    try:  # GetParameters, the action EC2 itself needs for resolve:ssm: (the foundation's launch grant allows it)
        answer = clients.ssm.get_parameters(Names=[name])
    except Exception as e:  # a ClientError (AccessDenied...) or a network error
        raise ChronosError("cannot resolve the image %s: ssm GetParameters: %s: %s" % (ref, error_code(e), error_message(e)), 1)
    found = answer.get("Parameters") or []
    if not found:
        raise ChronosError("cannot resolve the image %s: ssm GetParameters: no such parameter (InvalidParameters %s)"
                           % (ref, answer.get("InvalidParameters")), 1)
    value = str(found[0].get("Value", "")).strip()
    if not re.match(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$", value):
        raise ChronosError("the image %s holds %r, not an AMI ID" % (ref, value), 1)
    return ImageChoice(value, "%s, pinned for every attempt of the run: %s" % (image.description, value))


def launch_tags(foundation: Foundation, request: LaunchRequest) -> List[Dict[str, str]]:
    """The tags of an attempt's instance and volumes (docs/RUNS.md, "The run ID and the attempt")."""
    tags = {
        "Name": "chronos-%s" % request.run_id,
        "Project": "Chronos-Training",
        "Environment": foundation.environment,
        "CostCenter": foundation.cost_center,
        "ManagedBy": "chronos-training",
        "MaxLifetimeHours": format_number(request.max_lifetime_hours),
        "ChronosRunId": request.run_id,
        "ChronosAttempt": str(request.attempt),
        # The agent's bucket: the template's user data names none, so that it can be gzipped at synthesis.
        "ChronosBucket": foundation.bucket,
    }
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def run_instances_input(foundation: Foundation, request: LaunchRequest, instance_type: str, subnet_id: str,
                        market: str) -> Dict[str, Any]:
    """The RunInstances request of one try: the foundation's template at the version it published, one type, one
    subnet, one market, never UserData; an ImageId only when the launch has one (choose_image)."""
    tags = launch_tags(foundation, request)
    request_input: Dict[str, Any] = {
        "LaunchTemplate": {"LaunchTemplateId": foundation.launch_template_id,
                           "Version": foundation.launch_template_version},
    }
    if request.image_id:
        request_input["ImageId"] = request.image_id
    request_input.update({"InstanceType": instance_type, "SubnetId": subnet_id, "MinCount": 1, "MaxCount": 1})
    if market == "spot":
        request_input["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
        }
    request_input["TagSpecifications"] = [
        {"ResourceType": "instance", "Tags": tags},
        {"ResourceType": "volume", "Tags": tags},
    ]
    return request_input


def _offerings(clients: Any, types: List[str], zones: List[str]) -> Optional[Set[str]]:
    """Which (zone, type) pairs EC2 offers; None when it cannot say (no permission, no answer)."""
    try:
        reply = clients.ec2.describe_instance_type_offerings(
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": types}, {"Name": "location", "Values": zones}])
        offered = {"%s/%s" % (o.get("Location"), o.get("InstanceType")) for o in reply.get("InstanceTypeOfferings", [])}
        return offered or None
    except Exception:  # noqa: BLE001
        return None


def _vcpus_of(clients: Any, instance_type: str) -> Optional[int]:
    try:
        reply = clients.ec2.describe_instance_types(InstanceTypes=[instance_type])
        return ((reply.get("InstanceTypes") or [{}])[0].get("VCpuInfo") or {}).get("DefaultVCpus")
    except Exception:  # noqa: BLE001
        return None


def send_run_instances(clients: Any, request_input: Dict[str, Any], sleep: Callable[[float], None],
                       log: Callable[[str], None]) -> Dict[str, Any]:
    """Sends one try's RunInstances with the launch client (no SDK retries: clients.py), and sends it again only when
    EC2 throttled it (RequestLimitExceeded), after an exponential wait with jitter: EC2 API Reference, "Request
    throttling". A capacity error is never repeated here: the next zone, type or market is the retry."""
    retry = 0
    while True:
        try:
            return clients.ec2_launch.run_instances(**request_input)
        except Exception as e:  # noqa: BLE001
            if error_code(e) != "RequestLimitExceeded" or retry >= THROTTLE_RETRIES:
                raise
            wait = round(THROTTLE_FIRST_WAIT * 2 ** retry * (0.5 + random.random() / 2), 3)
            log("  RequestLimitExceeded: EC2 throttles this account's requests; again in %.1f s" % wait)
            sleep(wait)
            retry += 1


def launch_with_fallback(clients: Any, foundation: Foundation, request: LaunchRequest,
                         log: Callable[[str], None] = lambda _line: None,
                         sleep: Callable[[float], None] = time.sleep) -> Launched:
    """Launches one attempt: for each market in order, each instance type in order of preference, each zone's subnet,
    until one succeeds. Capacity errors (NEXT_ON) move on; a vCPU quota error skips the rest of that quota family in
    that market and moves on (the end names the quota to raise); a missing Spot service-linked role skips spot and
    moves on to on-demand when allowed; a configuration error (STOP_ON) and any other error stop (ChronosError)."""
    zones = [s.zone for s in foundation.subnets]
    offered = _offerings(clients, request.instance_types, zones)
    failures: List[str] = []
    full_quotas: Dict[str, str] = {}
    spot_role_missing = False
    tries = 0
    for market in request.markets:
        if market == "spot" and spot_role_missing:
            continue
        for instance_type in request.instance_types:
            for subnet in foundation.subnets:
                if market == "spot" and spot_role_missing:
                    break
                what = "%s %s in %s (%s)" % (market, instance_type, subnet.zone, subnet.subnet_id)
                if offered is not None and "%s/%s" % (subnet.zone, instance_type) not in offered:
                    log("skip %s: not offered in this zone" % what)
                    continue
                quota = quota_for(instance_type, market)
                if "%s/%s" % (market, quota["name"]) in full_quotas:
                    log('skip %s: the vCPU quota "%s" is full (VcpuLimitExceeded above)' % (what, quota["name"]))
                    continue
                tries += 1
                log("try %d: %s" % (tries, what))
                try:
                    reply = send_run_instances(
                        clients, run_instances_input(foundation, request, instance_type, subnet.subnet_id, market),
                        sleep, log)
                except Exception as e:  # noqa: BLE001
                    code = error_code(e)
                    message = error_message(e)
                    if market == "spot" and is_spot_role_error(code, message):
                        spot_role_missing = True
                        failures.append("%s: %s" % (what, code))
                        allows_on_demand = "on-demand" in request.markets
                        log("  %s: %s; %s" % (code, SPOT_ROLE_ADVICE, "going on with on-demand" if allows_on_demand
                                               else "and this run allows spot only"))
                        if not allows_on_demand:
                            raise ChronosError("launching %s failed: %s: %s; or launch on-demand (--on-demand, "
                                               "--spot-fallback)" % (what, code, SPOT_ROLE_ADVICE))
                        continue
                    if code in QUOTA_ERRORS:
                        text = quota_message(instance_type, market, message, _vcpus_of(clients, instance_type))
                        full_quotas["%s/%s" % (market, quota["name"])] = text
                        failures.append("%s: %s" % (what, code))
                        log("  %s: %s; skipping the other %s types of that quota" % (code, text, market))
                        continue
                    if code in STOP_ON:
                        raise ChronosError("launching %s failed: %s: %s (EC2 refuses the request or the launch template "
                                           "as they are, in any zone: fix them rather than retry)" % (what, code, message))
                    if code not in NEXT_ON:
                        raise ChronosError("launching %s failed: %s: %s" % (what, code, message))
                    log("  %s: %s" % (code, message))
                    failures.append("%s: %s" % (what, code))
                    if code == "MaxSpotInstanceCountExceeded":
                        log('  (the spot vCPU quota "%s"%s may be full)' % (
                            quota["name"], (" %s" % quota["code"]) if quota["code"] else ""))
                    continue
                instances = reply.get("Instances") or [{}]
                instance_id = instances[0].get("InstanceId")
                if not instance_id:
                    raise ChronosError("RunInstances returned no instance for %s" % what)
                log("launched %s: %s (try %d)" % (instance_id, what, tries))
                return Launched(instance_id, instance_type, market, subnet.subnet_id, subnet.zone, tries)
    if full_quotas:
        extra = (" (all %d tries failed: %s)" % (tries, "; ".join(failures))) if len(failures) > len(full_quotas) else ""
        raise ChronosError("%s%s" % ("; ".join(full_quotas.values()), extra))
    if tries == 0:
        raise ChronosError("none of the instance types %s is offered in the foundation's zones (%s)"
                           % (", ".join(request.instance_types), ", ".join(zones)))
    raise NoCapacity("no capacity: all %d tries failed (%s); try later, other --instance-types, %sor a foundation with "
                       "more zones" % (tries, "; ".join(failures), "" if "on-demand" in request.markets
                                       else "--spot-fallback, "))
