"""How many RunInstances requests one fallback step sends, counted where they arrive: a small EC2 Query API endpoint on
loopback, reached through the package's own clients (Clients, AWS_ENDPOINT_URL). No mock: botocore's retry handler runs
as it does against AWS.

InsufficientInstanceCapacity is a server error (5xx): EC2 API Reference, "Error codes for the Amazon EC2 API", "Server
error codes". botocore's retry modes repeat 5xx answers (Boto3 documentation, "Retries": legacy and standard modes retry
"General server errors": 500, 502, 503, 504), so a launcher that used them would send each fallback step several times.
RequestLimitExceeded is EC2's throttling ("Request throttling" in the EC2 API Reference: retry with exponential
backoff), the one error the launcher sends again itself."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List
from urllib.parse import parse_qs

import pytest

from chronos_training.clients import Clients
from chronos_training.errors import ChronosError
from chronos_training.ec2launch import LaunchRequest, launch_with_fallback
from conftest import two_zone_foundation

RECEIVED: List[str] = []
ANSWERS: List[str] = []


class Ec2(BaseHTTPRequestHandler):
    def log_message(self, *_args):
        pass

    def _error(self, status, code, message):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code><Message>%s</Message>'
                '</Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>'
                % (code, message)).encode()
        self.send_response(status)
        self.send_header("content-type", "text/xml")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["content-length"])).decode()).items()}
        action = form.get("Action")
        if action == "DescribeInstanceTypeOfferings":
            return self._error(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
        if action != "RunInstances":
            return self._error(400, "InvalidAction", "not served here: %s" % action)
        RECEIVED.append("%s %s" % (form.get("InstanceType"), form.get("SubnetId")))
        code = ANSWERS.pop(0) if ANSWERS else None
        if code == "InsufficientInstanceCapacity":
            return self._error(500, code, "We currently do not have sufficient g5.xlarge capacity in the Availability "
                                          "Zone you requested.")
        if code == "RequestLimitExceeded":
            return self._error(503, code, "Request limit exceeded.")
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<RunInstancesResponse '
                'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><reservationId>'
                'r-0123456789abcdef0</reservationId><ownerId>123456789012</ownerId><instancesSet><item><instanceId>'
                'i-0123456789abcdef0</instanceId></item></instancesSet></RunInstancesResponse>').encode()
        self.send_response(200)
        self.send_header("content-type", "text/xml")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def endpoint(aws_env, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ec2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:%d" % server.server_address[1])
    RECEIVED.clear()
    ANSWERS.clear()
    yield
    server.shutdown()
    server.server_close()


FOUNDATION = two_zone_foundation("2")
REQUEST = LaunchRequest(run_id="r-20261201-120000-abcdef", attempt=1, instance_types=["g5.xlarge"], markets=["spot"],
                        max_lifetime_hours=4.25)


def test_a_capacity_error_5xx_is_sent_once_per_fallback_step_the_sdk_does_not_repeat_it(endpoint):
    ANSWERS.extend(["InsufficientInstanceCapacity", "InsufficientInstanceCapacity"])
    with pytest.raises(ChronosError, match="no capacity: all 2 tries failed"):
        launch_with_fallback(Clients(region="us-east-1"), FOUNDATION, REQUEST, sleep=lambda _s: None)
    assert RECEIVED == ["g5.xlarge subnet-a", "g5.xlarge subnet-b"]


def test_a_throttled_run_instances_is_sent_again_by_the_launchers_backoff_then_the_launch_goes_on(endpoint):
    ANSWERS.extend(["RequestLimitExceeded", "RequestLimitExceeded"])
    waits: List[float] = []
    won = launch_with_fallback(Clients(region="us-east-1"), FOUNDATION, REQUEST, sleep=waits.append)
    assert (won.instance_id, won.subnet_id, won.tries) == ("i-0123456789abcdef0", "subnet-a", 1)
    assert RECEIVED == ["g5.xlarge subnet-a"] * 3
    assert len(waits) == 2
