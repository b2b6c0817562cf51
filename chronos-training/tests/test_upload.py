"""The upload's freshness rules, with a fake S3 client: what is HEADed, what is PUT again, what a 403 HEAD means."""
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from chronos_training.code import snapshot, upload_snapshot
from conftest import Fake, aws_error

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@pytest.fixture
def directory(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOS_CACHE_DIR", "")  # no hash cache but where a test asks for one
    (tmp_path / "a.py").write_text("a")
    (tmp_path / "b.py").write_text("b")
    return str(tmp_path)


@pytest.fixture
def s3():
    fake = Fake()
    fake.on("put_object", lambda **_: {})
    return fake


def puts(s3):
    return [re.sub(r"[0-9a-f]{64}", "SHA", a["Key"]) for a in s3.called("put_object")]


def not_found():
    return aws_error("404", "Not Found", 404)


def test_a_manifest_younger_than_a_day_vouches_for_its_blobs_one_head_no_put(directory, s3):
    s3.on("head_object", lambda **_: {"LastModified": NOW - timedelta(hours=1)})
    r = upload_snapshot(s3, "b", "dev", snapshot(directory), NOW)
    assert len(s3.called("head_object")) == 1
    assert puts(s3) == []
    assert r.uploaded_blobs == 0


def test_an_older_manifest_is_checked_blob_by_blob_an_old_blob_is_uploaded_again_the_manifest_rewritten(directory, s3):
    snap = snapshot(directory)
    a = next(f.sha256 for f in snap.files if f.path == "a.py")

    def head(Key, **_):
        if "/manifests/" in Key:
            return {"LastModified": NOW - 2 * DAY}
        return {"LastModified": NOW - (31 if Key.endswith(a) else 29) * DAY}
    s3.on("head_object", head)
    s3.on("list_objects_v2", lambda **_: (_ for _ in ()).throw(aws_error("AccessDenied", status=403)))
    r = upload_snapshot(s3, "b", "dev", snap, NOW)
    assert (r.uploaded_blobs, r.uploaded_bytes, r.blobs) == (1, 1, 2)
    assert puts(s3) == ["dev/code/blobs/SHA", "dev/code/manifests/SHA.json"]


def test_a_head_answered_403_or_404_counts_as_absent(directory, s3):
    def head(Key, **_):
        if "/manifests/" in Key:
            raise not_found()
        raise aws_error("403", "Forbidden", 403)
    s3.on("head_object", head)
    s3.on("list_objects_v2", lambda **_: (_ for _ in ()).throw(aws_error("AccessDenied", status=403)))
    r = upload_snapshot(s3, "b", "dev", snapshot(directory), NOW)
    assert r.uploaded_blobs == 2
    assert len(puts(s3)) == 3


def test_another_head_error_stops_the_upload(directory, s3):
    s3.on("head_object", lambda **_: (_ for _ in ()).throw(aws_error("SlowDown", status=503)))
    with pytest.raises(Exception, match="SlowDown"):
        upload_snapshot(s3, "b", "dev", snapshot(directory), NOW)


def test_the_blobs_are_listed_once_when_the_prefix_fits_in_a_page_a_longer_listing_falls_back_to_a_head_each(directory):
    snap = snapshot(directory)
    a = next(f.sha256 for f in snap.files if f.path == "a.py")

    def head(Key, **_):
        if "/manifests/" in Key:
            raise not_found()
        return {"LastModified": NOW}
    s3 = Fake()
    s3.on("put_object", lambda **_: {})
    s3.on("head_object", head)
    s3.on("list_objects_v2", lambda **_: {"Contents": [{"Key": "dev/code/blobs/%s" % a, "LastModified": NOW}],
                                          "IsTruncated": False})
    assert upload_snapshot(s3, "b", "dev", snap, NOW).uploaded_blobs == 1
    assert len(s3.called("head_object")) == 1

    s3 = Fake()
    s3.on("put_object", lambda **_: {})
    s3.on("head_object", head)
    s3.on("list_objects_v2", lambda **_: {"Contents": [], "IsTruncated": True, "NextContinuationToken": "more"})
    assert upload_snapshot(s3, "b", "dev", snap, NOW).uploaded_blobs == 0
    assert len(s3.called("list_objects_v2")) == 1
    assert len(s3.called("head_object")) == 3


def test_the_hash_cache_spares_reading_unchanged_files_and_a_changed_file_is_read_again(directory, tmp_path_factory):
    cache_dir = str(tmp_path_factory.mktemp("cache"))
    path = os.path.join(directory, "c.py")
    with open(path, "w") as f:
        f.write("one")
    past = time.time() - 60
    os.utime(path, (past, past))  # older than the racy window: cached

    def hash_of():
        return next(f.sha256 for f in snapshot(directory, cache_dir).files if f.path == "c.py")
    first = hash_of()
    # Same size and time, other bytes: the cache answers (what git's index does too).
    with open(path, "w") as f:
        f.write("two")
    os.utime(path, (past, past))
    assert hash_of() == first
    # Another time: read again.
    os.utime(path, (past + 1, past + 1))
    assert hash_of() != first


# S3 User Guide, "Lifecycle configuration elements" (Expiration, Days): objects expire counted from their creation, and
# a PUT of the same key creates it again; ListObjectsV2's Contents carry each object's LastModified (S3 API Reference,
# ListObjectsV2, "Object"). So a blob that the listing shows older than 30 days is uploaded again, as on the HEAD path,
# and a younger one is not. (Ported from wip/sharpen.)
def test_a_blob_the_listing_shows_older_than_30_days_is_uploaded_again_a_younger_one_is_not(directory, s3):
    snap = snapshot(directory)
    a = next(f.sha256 for f in snap.files if f.path == "a.py")
    b = next(f.sha256 for f in snap.files if f.path == "b.py")

    def head(Key, **_):
        if "/manifests/" in Key:
            raise not_found()
        raise AssertionError("a blob was HEADed although the listing answered: %s" % Key)
    s3.on("head_object", head)
    s3.on("list_objects_v2", lambda **_: {"IsTruncated": False, "Contents": [
        {"Key": "dev/code/blobs/%s" % a, "LastModified": NOW - 31 * DAY},
        {"Key": "dev/code/blobs/%s" % b, "LastModified": NOW - 29 * DAY}]})
    r = upload_snapshot(s3, "b", "dev", snap, NOW)
    assert (r.uploaded_blobs, r.uploaded_bytes, r.blobs) == (1, 1, 2)
    assert [x["Key"] for x in s3.called("put_object")] == [
        "dev/code/blobs/%s" % a, "dev/code/manifests/%s.json" % snap.manifest_sha256]
