"""A file-backed S3 for the 6 GiB scenario (test_large.py), with what the agent calls: PUT, GET (Range), ListObjectsV2,
DeleteObjects, multipart upload. moto cannot serve it: its GET reads the whole object into memory, under the key's
lock, for each ranged GET (moto/s3/models.py FakeKey.value, responses.py _handle_range_header), so a 6 GiB restore in
parts would copy 6 GiB per part. Objects are files under `root/{bucket}/{key}`; no authentication."""
import http.server
import os
import re
import shutil
import threading
import urllib.parse
import uuid
from xml.sax.saxutils import escape


def answer(handler, status, body=b"", headers=()):
    """A whole response of an http.server handler (HTTP/1.1: with its length)."""
    handler.send_response(status)
    for k, v in headers:
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class DiskS3:
    def __init__(self, root):
        self.root = root
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def parse(self):
                u = urllib.parse.urlsplit(self.path)
                bucket, _, key = urllib.parse.unquote(u.path).lstrip("/").partition("/")
                return bucket, key, dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))

            answer = answer

            def body_to(self, path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                left = int(self.headers.get("Content-Length") or 0)
                with open(path + ".incoming", "wb") as f:
                    while left:
                        b = self.rfile.read(min(left, 1 << 20))
                        if not b:
                            raise OSError("body cut")
                        f.write(b)
                        left -= len(b)
                os.replace(path + ".incoming", path)

            def do_PUT(self):
                bucket, key, q = self.parse()
                if "uploadId" in q:
                    self.body_to(os.path.join(store.root, ".uploads", q["uploadId"], "%05d" % int(q["partNumber"])))
                else:
                    self.body_to(os.path.join(store.root, bucket, key))
                self.answer(200, headers=[("ETag", '"%s"' % uuid.uuid4().hex)])

            def do_POST(self):
                bucket, key, q = self.parse()
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "uploads" in q:
                    upload = uuid.uuid4().hex
                    os.makedirs(os.path.join(store.root, ".uploads", upload))
                    return self.answer(200, b"<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s"
                                            b"</UploadId></InitiateMultipartUploadResult>" % (
                                                bucket.encode(), escape(key).encode(), upload.encode()))
                if "uploadId" in q:
                    parts = os.path.join(store.root, ".uploads", q["uploadId"])
                    path = os.path.join(store.root, bucket, key)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path + ".incoming", "wb") as out:
                        for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", data):
                            with open(os.path.join(parts, "%05d" % int(n)), "rb") as f:
                                shutil.copyfileobj(f, out, 1 << 20)
                    os.replace(path + ".incoming", path)
                    shutil.rmtree(parts)
                    return self.answer(200, b"<CompleteMultipartUploadResult><ETag>&quot;e&quot;</ETag>"
                                            b"</CompleteMultipartUploadResult>")
                for k in re.findall(rb"<Key>([^<]*)</Key>", data):  # DeleteObjects
                    try:
                        os.remove(os.path.join(store.root, bucket, k.decode().replace("&amp;", "&")))
                    except FileNotFoundError:
                        pass
                self.answer(200, b"<DeleteResult/>")

            def do_DELETE(self):
                bucket, key, q = self.parse()
                shutil.rmtree(os.path.join(store.root, ".uploads", q.get("uploadId", "-")), ignore_errors=True)
                self.answer(204)

            def do_GET(self):
                bucket, key, q = self.parse()
                base = os.path.join(store.root, bucket)
                if not key:  # ListObjectsV2, one page
                    items = []
                    for d, _, names in os.walk(base):
                        for n in names:
                            k = os.path.relpath(os.path.join(d, n), base)
                            if k.startswith(q.get("prefix", "")) and not n.endswith(".incoming"):
                                items.append((k, os.path.getsize(os.path.join(d, n))))
                    xml = "".join("<Contents><Key>%s</Key><Size>%d</Size><ETag>&quot;e&quot;</ETag><LastModified>"
                                  "2026-12-01T00:00:00.000Z</LastModified><StorageClass>STANDARD</StorageClass>"
                                  "</Contents>" % (escape(k), s) for k, s in sorted(items))
                    return self.answer(200, ("<ListBucketResult><IsTruncated>false</IsTruncated>%s</ListBucketResult>"
                                             % xml).encode())
                path = os.path.join(base, key)
                if not os.path.isfile(path):
                    return self.answer(404, b"" if self.command == "HEAD" else b"<Error><Code>NoSuchKey</Code></Error>")
                size = os.path.getsize(path)
                if self.command == "HEAD":
                    self.send_response(200)
                    for k, v in (("Content-Length", str(size)), ("ETag", '"e"'),
                                 ("Last-Modified", "Tue, 01 Dec 2026 00:00:00 GMT")):
                        self.send_header(k, v)
                    return self.end_headers()
                m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range") or "")
                start, end = (int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)) if m else (0, size - 1)
                self.send_response(206 if m else 200)
                if m:
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                with open(path, "rb") as f:
                    f.seek(start)
                    left = end - start + 1
                    while left:
                        b = f.read(min(left, 1 << 20))
                        self.wfile.write(b)
                        left -= len(b)

            do_HEAD = do_GET

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_port

    def path(self, bucket, key):
        return os.path.join(self.root, bucket, key)

    def close(self):
        self.server.shutdown()
