"""The AWS clients of the launcher, made on first use (boto3 is imported only then, so that `--help` starts fast)."""
import os
from typing import Any, Optional


class Clients:
    """The AWS clients the launch code uses: `ec2`, `ec2_launch`, `s3`, `ssm`, `cfn`, `pricing` (the cost estimate), and
    the run keeper's `events` (the end event) and `scheduler` (capacity retries), each made on first use.

    `ec2_launch` is the EC2 client of RunInstances: no SDK retries. botocore's retry modes repeat server errors, and
    EC2's capacity errors (InsufficientInstanceCapacity...) are 5xx, so each fallback step would be sent several times;
    the launcher moves on instead, and repeats only a throttled request (ec2launch.py, send_run_instances).

    `pricing` is the Price List Query API's client, always in cost.PRICING_REGION (us-east-1): the API's endpoints are
    in us-east-1 and ap-south-1 only, whatever the foundation's region (docs/RUNS.md, "What a run cost"); it gives up
    sooner than the others (timeouts of seconds, two tries), since only the cost line waits for it.

    A test or a Lambda passes its own clients as keyword arguments.
    """

    def __init__(self, profile: Optional[str] = None, region: Optional[str] = None, **given: Any) -> None:
        self._profile = profile
        self._region = region
        self._session: Any = None
        self._made = dict(given)

    def _new(self, service: str, **config: Any) -> Any:
        from botocore.config import Config
        return self._boto_session().client(service, config=Config(**config) if config else None)

    def _boto_session(self) -> Any:
        if self._session is None:
            import boto3  # lazily: the import costs a few hundred milliseconds
            # AWS_REGION as the other AWS SDKs read it (botocore itself reads AWS_DEFAULT_REGION and the profile).
            region = self._region or os.environ.get("AWS_REGION") or None
            self._session = boto3.session.Session(profile_name=self._profile, region_name=region)
        return self._session

    def _get(self, name: str) -> Any:
        client = self._made.get(name)
        if client is None:
            if name == "ec2":
                client = self._new("ec2")
            elif name == "ec2_launch":
                client = self._new("ec2", retries={"total_max_attempts": 1, "mode": "standard"})
            elif name == "s3":
                # An endpoint URL (a local emulator, a VPC endpoint) is used path-style, as the AWS CLI does with one.
                path_style = bool(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
                client = self._new("s3", **({"s3": {"addressing_style": "path"}} if path_style else {}))
            elif name == "ssm":
                client = self._new("ssm")
            elif name == "cfn":
                client = self._new("cloudformation")
            elif name == "pricing":
                # Short timeouts and two tries: a Price List endpoint out of reach (a proxy, a VPC without internet)
                # makes `status` print an unknown cost after seconds, not minutes.
                from botocore.config import Config
                from .cost import PRICING_REGION
                client = self._boto_session().client("pricing", region_name=PRICING_REGION, config=Config(
                    connect_timeout=5, read_timeout=15, retries={"total_max_attempts": 2, "mode": "standard"}))
            elif name in ("events", "scheduler"):
                client = self._new(name)
            else:
                raise AttributeError(name)
            self._made[name] = client
        return client

    @property
    def ec2(self) -> Any:
        return self._get("ec2")

    @property
    def ec2_launch(self) -> Any:
        return self._get("ec2_launch")

    @property
    def s3(self) -> Any:
        return self._get("s3")

    @property
    def ssm(self) -> Any:
        return self._get("ssm")

    @property
    def cfn(self) -> Any:
        return self._get("cfn")

    @property
    def pricing(self) -> Any:
        return self._get("pricing")

    @property
    def events(self) -> Any:
        return self._get("events")

    @property
    def scheduler(self) -> Any:
        return self._get("scheduler")
