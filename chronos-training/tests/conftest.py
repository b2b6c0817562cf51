"""Helpers of the run package's tests: an Io that records, fake AWS clients that answer from Python functions (as
aws-sdk-client-mock did for the TypeScript launcher), and AWS clients on moto in process that count every request."""
import contextlib
import copy
import os
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from botocore.exceptions import ClientError

from chronos_training.context import Io
from chronos_training.foundation import Foundation, Subnet

REGION = "us-east-1"


def aws_error(code: str, message: Optional[str] = None, status: int = 400, operation: str = "Call") -> ClientError:
    """An AWS error as botocore raises it."""
    return ClientError({"Error": {"Code": code, "Message": message if message is not None else "%s (injected)" % code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class Recording:
    """An Io that records what the launcher prints; `on_sleep` runs at each poll (the test's clock hand)."""

    def __init__(self, on_sleep: Optional[Callable[[], None]] = None,
                 start: datetime = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)) -> None:
        self.outs: List[str] = []
        self.errs: List[str] = []
        self.clock = start
        self.on_sleep = on_sleep or (lambda: None)
        self.io = Io(out=self.outs.append, err=self.errs.append, sleep=self._sleep, now=lambda: self.clock,
                     interrupted=threading.Event())

    def _sleep(self, seconds: float) -> None:
        self.clock = self.clock + timedelta(seconds=seconds)
        self.on_sleep()

    def stdout(self) -> str:
        return "".join(self.outs)

    def stderr(self) -> str:
        return "".join(self.errs)

    def detach(self) -> None:
        self.io.interrupted.set()


class Fake:
    """A fake boto3 client: `on(operation, fn)` answers a method (fn gets the keyword arguments); every call is kept in
    `calls` as (operation, arguments). An operation without an answer fails the test."""

    def __init__(self) -> None:
        self.answers: Dict[str, Callable[..., Any]] = {}
        self.calls: List[tuple] = []

    def on(self, operation: str, fn: Callable[..., Any]) -> None:
        self.answers[operation] = fn

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        if operation.startswith("_"):
            raise AttributeError(operation)

        def call(**kwargs: Any) -> Any:
            self.calls.append((operation, {k: v if k == "Body" else copy.deepcopy(v) for k, v in kwargs.items()}))
            if operation not in self.answers:
                raise AssertionError("unexpected call %s" % operation)
            return self.answers[operation](**kwargs)
        return call

    def called(self, operation: str) -> List[Dict[str, Any]]:
        return [a for op, a in self.calls if op == operation]


def raises(error: Exception) -> Callable[..., Any]:
    def fn(**_kwargs: Any) -> Any:
        raise error
    return fn


def two_zone_foundation(version: str) -> Foundation:
    """A foundation of two zones (subnet-a in us-east-1a, subnet-b in us-east-1b) whose template is at `version`."""
    return Foundation(environment="dev", bucket="b", launch_template_id="lt-0123456789abcdef0",
                      launch_template_version=version,
                      subnets=[Subnet("subnet-a", "us-east-1a"), Subnet("subnet-b", "us-east-1b")],
                      cost_center="train", max_lifetime_seconds=4 * 3600, template_is_spot=False,
                      source="SSM parameters")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials, profile or endpoint from the machine."""
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@contextlib.contextmanager
def moto_environment(cache_dir: str) -> Iterator[None]:
    """Testing credentials, us-east-1, no endpoint or profile from the machine, and the hash cache in `cache_dir`, for
    a module's moto; the environment as it was afterwards."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "CHRONOS_CACHE_DIR", "AWS_ENDPOINT_URL",
             "AWS_PROFILE")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
                      CHRONOS_CACHE_DIR=cache_dir)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
