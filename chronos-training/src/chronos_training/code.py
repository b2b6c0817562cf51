"""The working directory as the run's code: the files git would keep, hashed, and uploaded content-addressed
(docs/RUNS.md, "The run spec": `{env}/code/blobs/{sha256}` and `{env}/code/manifests/{sha256}.json`)."""
import hashlib
import json
import os
import stat as stat_module
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from .contract import SCHEMA_VERSION, blob_key, blobs_prefix, code_manifest_key
from .context import format_bytes
from .errors import ChronosError, http_status, is_not_found
from .gitignore import IgnoreRule, is_ignored, parse_gitignore

#: S3's largest single PUT (5 GiB); the launcher does not split files into parts.
MAX_PUT_BYTES = 5 * 1024 ** 3
#: A blob older than this is uploaded again, so that the bucket's expiry of `{env}/` (90 days by default) cannot
#: remove it during a run.
REFRESH_AFTER_DAYS = 30
#: A manifest younger than this vouches for its blobs (see upload_snapshot).
MANIFEST_SHORTCUT_HOURS = 24


@dataclass(frozen=True)
class ManifestFile:
    """One file of a working directory, as the code manifest lists it."""

    path: str
    sha256: str
    size: int
    mode: int


@dataclass(frozen=True)
class CodeSnapshot:
    """A working directory, ready to upload."""

    files: List[ManifestFile]
    #: Absolute path of each file, by its manifest path.
    absolute: Dict[str, str]
    manifest: bytes
    manifest_sha256: str
    total_bytes: int


@dataclass
class UploadResult:
    """What an upload did."""

    manifest_key: str
    files: int
    total_bytes: int
    blobs: int
    uploaded_blobs: int = 0
    uploaded_bytes: int = 0


def list_files(root: str) -> List[str]:
    """The files of `root` that git would not ignore (never `.git`), sorted by path."""
    found: List[str] = []

    def walk(directory: str, rel: str, inherited: List[IgnoreRule]) -> None:
        rules = inherited
        gitignore = os.path.join(directory, ".gitignore")
        if os.path.exists(gitignore):
            with open(gitignore, encoding="utf-8", errors="replace") as f:
                rules = rules + parse_gitignore(f.read(), rel)
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name.encode("utf-16-be"))
        for entry in entries:
            if entry.name == ".git":
                continue
            rel_path = entry.name if rel == "" else "%s/%s" % (rel, entry.name)
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file(follow_symlinks=False)
            if entry.is_symlink():
                # A link to a file is uploaded as the file; a link to a directory is skipped (it could loop).
                is_dir = False
                is_file = os.path.isfile(entry.path)
            if is_ignored(rules, rel_path, is_dir):
                continue
            if is_dir:
                walk(entry.path, rel_path, rules)
            elif is_file:
                found.append(rel_path)

    walk(root, "", [])
    return found


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def default_cache_dir() -> Optional[str]:
    """Where hashes are cached: CHRONOS_CACHE_DIR, else $XDG_CACHE_HOME/chronos-training, else
    ~/.cache/chronos-training."""
    if "CHRONOS_CACHE_DIR" in os.environ:
        return os.environ["CHRONOS_CACHE_DIR"] or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "chronos-training")


class HashCache:
    """The SHA-256 of each file of one directory by (size, modification time, inode), as git's index keeps them, so
    that an unchanged file is not read again. A file modified within RACY_SECONDS of the cache's writing is not cached
    (git's "racy" files). Any failure to read or write the cache only costs the hashing.

    The cache file is the TypeScript launcher's (`hashes-{16 hex}.json`, version 1, times in milliseconds)."""

    RACY_SECONDS = 2.0

    def __init__(self, directory: Optional[str], root: str) -> None:
        self.root = os.path.abspath(root)
        self.file: Optional[str] = None
        self.cached: Dict[str, list] = {}
        self.current: Dict[str, list] = {}
        if not directory:
            return
        self.file = os.path.join(directory, "hashes-%s.json" % hashlib.sha256(self.root.encode()).hexdigest()[:16])
        try:
            with open(self.file, encoding="utf-8") as f:
                doc = json.load(f)
            if doc.get("version") == 1 and doc.get("root") == self.root:
                self.cached.update(doc.get("files") or {})
        except (OSError, ValueError, AttributeError):
            pass

    @staticmethod
    def _mtime_ms(st: os.stat_result) -> float:
        return st.st_mtime_ns / 1e6

    def get(self, rel: str, st: os.stat_result) -> Optional[str]:
        e = self.cached.get(rel)
        if not (e and e[0] == st.st_size and e[1] == self._mtime_ms(st) and e[2] == st.st_ino):
            return None
        self.current[rel] = e
        return e[3]

    def set(self, rel: str, st: os.stat_result, sha256: str) -> str:
        if time.time() - st.st_mtime > self.RACY_SECONDS:
            self.current[rel] = [st.st_size, self._mtime_ms(st), st.st_ino, sha256]
        return sha256

    def save(self) -> None:
        """Writes the entries of this snapshot's files (those of deleted files go)."""
        if not self.file:
            return
        try:
            os.makedirs(os.path.dirname(self.file), exist_ok=True)
            tmp = "%s.%d.tmp" % (self.file, os.getpid())
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"version": 1, "root": self.root, "files": self.current}, f)
            os.replace(tmp, self.file)
        except OSError:
            pass  # a read-only home: hash again next time


def snapshot(root: str, cache_dir: Any = "default") -> CodeSnapshot:
    """Hashes the files of `root` and builds the code manifest."""
    if cache_dir == "default":
        cache_dir = default_cache_dir()
    paths = list_files(root)
    cache = HashCache(cache_dir, root)
    absolute: Dict[str, str] = {}

    def one(rel: str) -> ManifestFile:
        path = os.path.join(root, *rel.split("/"))
        absolute[rel] = path
        st = os.stat(path)
        if st.st_size > MAX_PUT_BYTES:
            raise ChronosError("%s is %s, more than the 5 GiB the launcher uploads in one request: add it to .gitignore "
                               "and put large data under cached-datasets/ instead" % (rel, format_bytes(st.st_size)))
        sha = cache.get(rel, st) or cache.set(rel, st, _sha256_file(path))
        return ManifestFile(rel, sha, st.st_size, stat_module.S_IMODE(st.st_mode) % 0o1000)

    with ThreadPoolExecutor(8) as pool:
        files = list(pool.map(one, paths))
    cache.save()
    manifest = json.dumps({"schemaVersion": SCHEMA_VERSION, "files": [
        {"path": f.path, "sha256": f.sha256, "size": f.size, "mode": f.mode} for f in files]},
        separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return CodeSnapshot(files, absolute, manifest, hashlib.sha256(manifest).hexdigest(), sum(f.size for f in files))


def _age_hours(last_modified: Any, now: datetime) -> float:
    if not last_modified:
        return 0.0
    return max(0.0, (now - last_modified.astimezone(timezone.utc)).total_seconds()) / 3600


def _list_blob_ages(s3: Any, bucket: str, prefix: str, max_pages: int, now: datetime) -> Optional[Dict[str, float]]:
    """The age in hours of every blob under `prefix`, by SHA-256, or None when listing them would take more than
    `max_pages` requests (or is not allowed): the caller then HEADs each blob."""
    ages: Dict[str, float] = {}
    token = None
    pages = 0
    try:
        while True:
            if pages >= max(1, max_pages):
                return None
            pages += 1
            page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
            for o in page.get("Contents", []):
                ages[o["Key"][len(prefix):]] = _age_hours(o.get("LastModified"), now)
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                break
    except Exception:  # noqa: BLE001
        return None
    return ages


def upload_snapshot(s3: Any, bucket: str, env: str, snap: CodeSnapshot, now: Optional[datetime] = None) -> UploadResult:
    """Uploads a snapshot content-addressed: each distinct blob to `{env}/code/blobs/{sha256}` unless it is there (and
    recent), then the manifest to `{env}/code/manifests/{sha256}.json`. A second upload of the same files uploads
    nothing; a changed file uploads only its blob and a new manifest.

    The manifest is written after its blobs, each of which was then younger than REFRESH_AFTER_DAYS: a manifest
    written less than MANIFEST_SHORTCUT_HOURS ago therefore vouches for its blobs, and an unchanged directory costs one
    HEAD. An older manifest is checked blob by blob, then written again (so that it vouches again)."""
    now = now or datetime.now(timezone.utc)
    by_sha: Dict[str, ManifestFile] = {}
    for f in snap.files:
        by_sha.setdefault(f.sha256, f)
    blobs = list(by_sha.values())
    manifest_key = code_manifest_key(env, snap.manifest_sha256)
    result = UploadResult(manifest_key, len(snap.files), snap.total_bytes, len(blobs))

    def age_hours(key: str) -> Optional[float]:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except Exception as e:  # noqa: BLE001
            # Without s3:ListBucket on the key, S3 answers a HEAD of a missing object 403, not 404 (S3 API Reference,
            # HeadObject, "Permissions"); either way the PUT that follows says whether we may write it.
            if is_not_found(e) or http_status(e) == 403:
                return None
            raise
        return _age_hours(head.get("LastModified"), now)

    manifest_age = age_hours(manifest_key)
    if manifest_age is not None and manifest_age < MANIFEST_SHORTCUT_HOURS:
        return result
    # A listing of the blobs instead of a HEAD each, when it takes at most one page (1,000 keys) per 50 blobs.
    listed = _list_blob_ages(s3, bucket, blobs_prefix(env), len(blobs) // 50, now)

    def one(f: ManifestFile) -> bool:
        key = blob_key(env, f.sha256)
        age = listed.get(f.sha256) if listed is not None else age_hours(key)
        if age is not None and age < REFRESH_AFTER_DAYS * 24:
            return False
        with open(snap.absolute[f.path], "rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=f.size,
                          ContentType="application/octet-stream")
        return True

    with ThreadPoolExecutor(32) as pool:
        sent = list(pool.map(one, blobs))
    result.uploaded_blobs = sum(1 for s in sent if s)
    result.uploaded_bytes = sum(f.size for f, s in zip(blobs, sent) if s)
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=snap.manifest, ContentType="application/json")
    return result
