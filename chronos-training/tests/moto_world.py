"""A foundation on moto, made with boto3 as the TypeScript launcher's tests made it with the SDK: two public subnets, a
bucket, a launch template (with an image, user data and the foundation's tags) and the SSM parameters."""
import base64
import contextlib
import copy
import os
from typing import Any, Dict, Iterator, List, Tuple

import boto3

REGION = "us-east-1"
BUCKET = "chronos-training-dev-123456789012-%s" % REGION

# The foundation's lifetime (4 h) plus the drain margin (0.25 h), as the foundation stamps it.
TEMPLATE_TAGS = [
    {"Key": "Project", "Value": "Chronos-Training"}, {"Key": "Environment", "Value": "dev"},
    {"Key": "CostCenter", "Value": "train"}, {"Key": "MaxLifetimeHours", "Value": "4.25"},
    {"Key": "ManagedBy", "Value": "chronos-launch-template"},
]


class Recorded:
    """boto3 clients (ec2, ec2_launch, s3, ssm, cfn) whose every request is kept in `calls` as (operation, params)."""

    def __init__(self, endpoint_url: Any = None) -> None:
        from botocore.config import Config
        self.calls: List[Tuple[str, Dict[str, Any]]] = []
        #: (service, operation) of each request, in the order of `calls` (botocore's service name: "ec2", "s3"...).
        self.requests: List[Tuple[str, str]] = []
        kw: Dict[str, Any] = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        if endpoint_url:
            kw["endpoint_url"] = endpoint_url
        self.ec2 = boto3.client("ec2", **kw)
        # As Clients makes it: RunInstances without SDK retries.
        self.ec2_launch = boto3.client("ec2", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}), **kw)
        self.s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kw)
        self.ssm = boto3.client("ssm", **kw)
        self.cfn = boto3.client("cloudformation", **kw)
        # The run keeper's: the end event (PutEvents) and the capacity retries (CreateSchedule).
        self.events = boto3.client("events", **kw)
        self.scheduler = boto3.client("scheduler", **kw)
        for client in (self.ec2, self.ec2_launch, self.s3, self.ssm, self.cfn, self.events, self.scheduler):
            self.record(client)

    def record(self, client: Any) -> Any:
        """Records `client`'s requests too (e.g. a `pricing` client a test adds); `client` itself."""
        client.meta.events.register("provide-client-params", self._record)
        return client

    def _record(self, params: Dict[str, Any], model: Any, **_kw: Any) -> None:
        self.requests.append((model.service_model.service_name, model.name))
        self.calls.append((model.name, {k: v if k == "Body" else copy.deepcopy(v) for k, v in params.items()}))

    def since(self, mark: int, operation: str) -> List[Dict[str, Any]]:
        return [p for op, p in self.calls[mark:] if op == operation]


def make_foundation(c: Recorded, env: str = "dev") -> Dict[str, Any]:
    vpc = c.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = []
    for i, zone in enumerate(["us-east-1a", "us-east-1b"]):
        subnets.append(c.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.%d.0/24" % i, AvailabilityZone=zone)
                       ["Subnet"]["SubnetId"])
    c.s3.create_bucket(Bucket=BUCKET)
    images = [i["ImageId"] for i in c.ec2.describe_images(Owners=["amazon"])["Images"]]
    template = c.ec2.create_launch_template(
        LaunchTemplateName="ChronosTrainingLaunchTemplate-%s" % env,
        LaunchTemplateData={
            "ImageId": images[0],
            "UserData": base64.b64encode(b"#!/bin/bash\necho agent\n").decode(),
            "TagSpecifications": [{"ResourceType": "instance", "Tags": TEMPLATE_TAGS},
                                  {"ResourceType": "volume", "Tags": TEMPLATE_TAGS}],
        })["LaunchTemplate"]["LaunchTemplateId"]
    parameters = {"S3BucketName": BUCKET, "LaunchTemplateId": template, "PublicSubnetIds": ",".join(subnets),
                  "AvailabilityZones": "us-east-1a,us-east-1b", "CostCenter": "train", "Environment": env}
    for suffix, value in parameters.items():
        c.ssm.put_parameter(Name="/chronos-training/%s/%s" % (env, suffix), Value=value, Type="String")
    return {"subnets": subnets, "template": template, "images": images}


@contextlib.contextmanager
def moto_foundation(w: Any, tmp: str) -> Iterator[Any]:
    """`w` inside moto with recorded clients and a foundation: sets `w.tmp`, `w.clients`, `w.subnets`, `w.template`
    and `w.images` (the launcher's and the keeper's test worlds)."""
    from moto import mock_aws
    from conftest import moto_environment
    w.tmp = tmp
    with moto_environment(os.path.join(tmp, "cache")), mock_aws():
        w.clients = Recorded()
        made = make_foundation(w.clients)
        w.subnets, w.template, w.images = made["subnets"], made["template"], made["images"]
        yield w
