"""The contract documents' writes: a conditional create (S3 User Guide, "How to prevent object overwrites with
conditional writes": with `If-None-Match: *` a PUT succeeds only when no object has the key, else 412 Precondition
Failed; S3 API Reference, PutObject: a concurrent conflicting write answers 409 ConditionalRequestConflict, to retry).
Moto implements If-None-Match on PutObject (412), so the race runs there."""
import json
import threading

import pytest
from moto import mock_aws

from chronos_training.store import create_json
from conftest import Fake, aws_error, moto_environment


@pytest.fixture
def s3(tmp_path):
    with moto_environment(str(tmp_path)), mock_aws():
        import boto3
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="chronos-test")
        yield client


def test_create_json_writes_a_new_key_and_never_overwrites_one(s3):
    assert create_json(s3, "chronos-test", "dev/runs/r/attempts/002.json", {"claimedBy": "keeper"}) is True
    assert create_json(s3, "chronos-test", "dev/runs/r/attempts/002.json", {"claimedBy": "cli"}) is False
    body = json.loads(s3.get_object(Bucket="chronos-test", Key="dev/runs/r/attempts/002.json")["Body"].read())
    assert body == {"claimedBy": "keeper"}


def test_of_writers_racing_for_one_key_exactly_one_creates_it(s3):
    wins = []
    start = threading.Barrier(8)

    def claim(n):
        start.wait()
        if create_json(s3, "chronos-test", "dev/runs/r/attempts/003.json", {"claimedBy": n}):
            wins.append(n)
    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    body = json.loads(s3.get_object(Bucket="chronos-test", Key="dev/runs/r/attempts/003.json")["Body"].read())
    assert body == {"claimedBy": wins[0]}


def test_a_conflicting_write_in_flight_is_sent_again_and_its_412_means_taken():
    fake = Fake()
    answers = [aws_error("ConditionalRequestConflict", status=409), aws_error("PreconditionFailed", status=412)]

    def put(**kwargs):
        assert kwargs["IfNoneMatch"] == "*"
        raise answers.pop(0)
    fake.on("put_object", put)
    assert create_json(fake, "b", "k", {}) is False
    assert len(fake.called("put_object")) == 2


# S3 API Reference, GetObject: "If the object that you request doesn't exist, the error that Amazon S3 returns depends
# on whether you also have the s3:ListBucket permission. If you have the s3:ListBucket permission on the bucket, Amazon
# S3 returns an HTTP status code 404 Not Found ... If you don't have the s3:ListBucket permission, Amazon S3 returns an
# HTTP status code 403 Access Denied." The grants give ListBucket for their prefixes only (an `s3:prefix` condition,
# which a GET does not carry), so on AWS a missing document may answer 403. moto always answers 404: the 403 that AWS
# would send is injected here.

@pytest.fixture
def denied_gets(s3):
    def deny(**_kw):
        raise aws_error("AccessDenied", status=403, operation="GetObject")
    s3.meta.events.register("before-call.s3.GetObject", deny)
    yield s3
    s3.meta.events.unregister("before-call.s3.GetObject", deny)


def test_a_403_for_a_key_that_a_listing_does_not_show_is_a_missing_document(denied_gets):
    from chronos_training.store import get_json
    denied_gets.put_object(Bucket="chronos-test", Key="dev/runs/r/status.json.bak", Body=b"{}")  # a longer key: not it
    assert get_json(denied_gets, "chronos-test", "dev/runs/r/status.json") is None


def test_a_403_for_a_key_that_exists_is_the_denial_it_says(denied_gets):
    from chronos_training.store import get_json
    denied_gets.put_object(Bucket="chronos-test", Key="dev/runs/r/status.json", Body=b"{}")
    with pytest.raises(Exception) as raised:
        get_json(denied_gets, "chronos-test", "dev/runs/r/status.json")
    assert "AccessDenied" in str(raised.value)
