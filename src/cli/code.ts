import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CliError, formatBytes, isNotFound, mapLimit } from './context';
import { IgnoreRule, isIgnored, parseGitignore } from './gitignore';

/** One file of a working directory, as the code manifest lists it (docs/RUNS.md, "The run spec"). */
export interface ManifestFile {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly mode: number;
}

/** A working directory, ready to upload. */
export interface CodeSnapshot {
  readonly files: ManifestFile[];
  /** Absolute path of each file, by its manifest path. */
  readonly absolute: Map<string, string>;
  /** The manifest's bytes and their SHA-256. */
  readonly manifest: Buffer;
  readonly manifestSha256: string;
  readonly totalBytes: number;
}

/** What an upload did. */
export interface UploadResult {
  readonly manifestKey: string;
  readonly files: number;
  readonly totalBytes: number;
  readonly blobs: number;
  readonly uploadedBlobs: number;
  readonly uploadedBytes: number;
}

/** S3's largest single PUT (5 GiB); the launcher does not split files into parts. */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** A blob older than this is uploaded again, so that the bucket's expiry of `{env}/` (90 days by default) cannot remove it during a run. */
const REFRESH_AFTER_DAYS = 30;
/** A manifest younger than this vouches for its blobs (see uploadSnapshot). */
const MANIFEST_SHORTCUT_HOURS = 24;

/**
 * The age in hours of every blob under `prefix`, by SHA-256, or undefined when listing them would take more than
 * `maxPages` requests (or is not allowed): the caller then HEADs each blob.
 */
async function listBlobAges(s3: S3Client, bucket: string, prefix: string, maxPages: number, now: Date): Promise<Map<string, number> | undefined> {
  const ages = new Map<string, number>();
  let token: string | undefined;
  let pages = 0;
  try {
    do {
      if (pages++ >= Math.max(1, maxPages)) return undefined;
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        ages.set(o.Key!.slice(prefix.length), o.LastModified ? Math.max(0, now.getTime() - o.LastModified.getTime()) / 3600_000 : 0);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch {
    return undefined;
  }
  return ages;
}

/** The files of `root` that git would not ignore (never `.git`), sorted by path. */
export function listFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, rel: string, inherited: IgnoreRule[]) => {
    let rules = inherited;
    const gitignore = path.join(dir, '.gitignore');
    if (fs.existsSync(gitignore)) rules = [...rules, ...parseGitignore(fs.readFileSync(gitignore, 'utf8'), rel)];
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name === '.git') continue;
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const abs = path.join(dir, entry.name);
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        // A link to a file is uploaded as the file; a link to a directory is skipped (it could loop).
        const target = fs.statSync(abs, { throwIfNoEntry: false });
        isDir = false;
        isFile = Boolean(target?.isFile());
      }
      if (isIgnored(rules, relPath, isDir)) continue;
      if (isDir) walk(abs, relPath, rules);
      else if (isFile) found.push(relPath);
    }
  };
  walk(root, '', []);
  return found;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Where hashes are cached: CHRONOS_CACHE_DIR, else $XDG_CACHE_HOME/chronos-training, else ~/.cache/chronos-training. */
function defaultCacheDir(): string | undefined {
  if (process.env.CHRONOS_CACHE_DIR !== undefined) return process.env.CHRONOS_CACHE_DIR || undefined;
  const base = process.env.XDG_CACHE_HOME || (os.homedir() ? path.join(os.homedir(), '.cache') : undefined);
  return base ? path.join(base, 'chronos-training') : undefined;
}

/**
 * The SHA-256 of each file of one directory by (size, modification time, inode), as git's index keeps them, so
 * that an unchanged file is not read again. A file modified within RACY_MS of the cache's writing is not cached
 * (git's "racy" files: a change in the same clock tick would keep the time). Any failure to read or write the cache
 * only costs the hashing.
 */
class HashCache {
  private static readonly RACY_MS = 2000;
  private readonly file?: string;
  private readonly root: string;
  private readonly cached: Record<string, [number, number, number, string]> = {};
  private readonly current: Record<string, [number, number, number, string]> = {};

  constructor(dir: string | undefined, root: string) {
    this.root = path.resolve(root);
    if (!dir) return;
    this.file = path.join(dir, `hashes-${createHash('sha256').update(this.root).digest('hex').slice(0, 16)}.json`);
    try {
      const doc = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      if (doc?.version === 1 && doc.root === this.root) Object.assign(this.cached, doc.files);
    } catch {
      // no cache yet
    }
  }

  public get(rel: string, stat: fs.Stats): string | undefined {
    const e = this.cached[rel];
    if (!(e && e[0] === stat.size && e[1] === stat.mtimeMs && e[2] === stat.ino)) return undefined;
    this.current[rel] = e;
    return e[3];
  }

  public set(rel: string, stat: fs.Stats, sha256: string): string {
    if (Date.now() - stat.mtimeMs > HashCache.RACY_MS) this.current[rel] = [stat.size, stat.mtimeMs, stat.ino, sha256];
    return sha256;
  }

  /** Writes the entries of this snapshot's files (those of deleted files go). */
  public save(): void {
    if (!this.file) return;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify({ version: 1, root: this.root, files: this.current }));
      fs.renameSync(tmp, this.file);
    } catch {
      // a read-only home: hash again next time
    }
  }
}

/** Hashes the files of `root` and builds the code manifest. */
export async function snapshot(root: string, cacheDir: string | undefined = defaultCacheDir()): Promise<CodeSnapshot> {
  const paths = listFiles(root);
  const absolute = new Map<string, string>();
  const cache = new HashCache(cacheDir, root);
  const files = await mapLimit(paths, 8, async (rel) => {
    const abs = path.join(root, ...rel.split('/'));
    absolute.set(rel, abs);
    const stat = fs.statSync(abs);
    if (stat.size > MAX_PUT_BYTES) {
      throw new CliError(`${rel} is ${formatBytes(stat.size)}, more than the 5 GiB the launcher uploads in one request: ` +
        'add it to .gitignore and put large data under cached-datasets/ instead');
    }
    const sha256 = cache.get(rel, stat) ?? cache.set(rel, stat, await sha256File(abs));
    return { path: rel, sha256, size: stat.size, mode: stat.mode % 0o1000 };
  });
  cache.save();
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 1, files }), 'utf8');
  return {
    files,
    absolute,
    manifest,
    manifestSha256: createHash('sha256').update(manifest).digest('hex'),
    totalBytes: files.reduce((n, f) => n + f.size, 0),
  };
}

/**
 * Uploads a snapshot content-addressed: each distinct blob to `{env}/code/blobs/{sha256}` unless a HEAD finds it
 * there (and recent), then the manifest to `{env}/code/manifests/{sha256}.json`. A second upload of the same files
 * uploads nothing; a changed file uploads only its blob and a new manifest.
 *
 * The manifest is written after its blobs, each of which was then younger than REFRESH_AFTER_DAYS: a manifest
 * written less than MANIFEST_SHORTCUT_HOURS ago therefore vouches for its blobs, and an unchanged directory costs one
 * HEAD. An older manifest is checked blob by blob, then written again (so that it vouches again).
 */
export async function uploadSnapshot(s3: S3Client, bucket: string, env: string, snap: CodeSnapshot,
  now: Date = new Date()): Promise<UploadResult> {
  const bySha = new Map<string, ManifestFile>();
  for (const f of snap.files) if (!bySha.has(f.sha256)) bySha.set(f.sha256, f);
  const blobs = [...bySha.values()];
  const manifestKey = `${env}/code/manifests/${snap.manifestSha256}.json`;
  const result = { manifestKey, files: snap.files.length, totalBytes: snap.totalBytes, blobs: blobs.length, uploadedBlobs: 0, uploadedBytes: 0 };
  const ageHours = async (key: string): Promise<number | undefined> => {
    try {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return head.LastModified ? Math.max(0, now.getTime() - head.LastModified.getTime()) / 3600_000 : 0;
    } catch (e) {
      // Without s3:ListBucket on the key, S3 answers a HEAD of a missing object 403, not 404 (S3 API Reference,
      // HeadObject, "Permissions"); either way the PUT that follows says whether we may write it.
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (isNotFound(e) || status === 403) return undefined;
      throw e;
    }
  };
  const manifestAge = await ageHours(manifestKey);
  if (manifestAge !== undefined && manifestAge < MANIFEST_SHORTCUT_HOURS) return result;
  // A listing of the blobs instead of a HEAD each, when it takes at most one page (1,000 keys) per 50 blobs.
  const listed = await listBlobAges(s3, bucket, `${env}/code/blobs/`, Math.floor(blobs.length / 50), now);
  await mapLimit(blobs, 32, async (f) => {
    const key = `${env}/code/blobs/${f.sha256}`;
    const age = listed ? listed.get(f.sha256) : await ageHours(key);
    if (age !== undefined && age < REFRESH_AFTER_DAYS * 24) return;
    await s3.send(new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: fs.createReadStream(snap.absolute.get(f.path)!),
      ContentLength: f.size,
      ContentType: 'application/octet-stream',
    }));
    result.uploadedBlobs++;
    result.uploadedBytes += f.size;
  });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey, Body: snap.manifest, ContentType: 'application/json' }));
  return result;
}
