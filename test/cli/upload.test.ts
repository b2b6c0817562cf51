/* The upload's freshness rules, with the S3 client mocked: what is HEADed, what is PUT again, what a 403 HEAD means. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { awsError } from './helpers';
import { snapshot, uploadSnapshot } from '../../src/cli/code';

const s3mock = mockClient(S3Client);
const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
const NOW = new Date('2026-12-01T12:00:00Z');
const DAY = 86400_000;

let dir: string;
beforeAll(() => {
  process.env.CHRONOS_CACHE_DIR = ''; // no hash cache but where a test asks for one
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-upload-'));
  fs.writeFileSync(path.join(dir, 'a.py'), 'a');
  fs.writeFileSync(path.join(dir, 'b.py'), 'b');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
/** A mocked PUT never reads its body: close the file stream (and wait until it is closed), as the SDK would once sent. */
function mockPuts() {
  s3mock.on(PutObjectCommand).callsFake(async input => {
    const body = input.Body as any;
    if (typeof body?.destroy === 'function') {
      await new Promise(resolve => {
        body.once('close', resolve);
        body.destroy();
      });
    }
    return {};
  });
}
beforeEach(() => {
  s3mock.reset();
  mockPuts();
});

const puts = () => s3mock.commandCalls(PutObjectCommand).map(c => c.args[0].input.Key!.replace(/[0-9a-f]{64}/, 'SHA'));
const notFound = () => Object.assign(awsError('NotFound'), { $metadata: { httpStatusCode: 404 } });

test('a manifest younger than a day vouches for its blobs: one HEAD, no PUT', async () => {
  s3mock.on(HeadObjectCommand).resolves({ LastModified: new Date(NOW.getTime() - 3600_000) });
  const r = await uploadSnapshot(s3, 'b', 'dev', await snapshot(dir), NOW);
  expect(s3mock.commandCalls(HeadObjectCommand)).toHaveLength(1);
  expect(puts()).toEqual([]);
  expect(r.uploadedBlobs).toBe(0);
});

test('an older manifest is checked blob by blob; a blob older than 30 days is uploaded again; the manifest is rewritten', async () => {
  const snap = await snapshot(dir);
  const a = snap.files.find(f => f.path === 'a.py')!.sha256;
  s3mock.on(HeadObjectCommand).callsFake(input => {
    if (input.Key.includes('/manifests/')) return { LastModified: new Date(NOW.getTime() - 2 * DAY) };
    return { LastModified: new Date(NOW.getTime() - (input.Key.endsWith(a) ? 31 : 29) * DAY) };
  });
  const r = await uploadSnapshot(s3, 'b', 'dev', snap, NOW);
  expect(r).toMatchObject({ uploadedBlobs: 1, uploadedBytes: 1, blobs: 2 });
  expect(puts()).toEqual(['dev/code/blobs/SHA', 'dev/code/manifests/SHA.json']);
});

test('a HEAD answered 403 (no ListBucket on the key) or 404 counts as absent', async () => {
  s3mock.on(HeadObjectCommand).callsFake(input => {
    if (input.Key.includes('/manifests/')) throw notFound();
    throw Object.assign(awsError('Forbidden'), { $metadata: { httpStatusCode: 403 } });
  });
  const r = await uploadSnapshot(s3, 'b', 'dev', await snapshot(dir), NOW);
  expect(r.uploadedBlobs).toBe(2);
  expect(puts()).toHaveLength(3);
});

test('another HEAD error stops the upload', async () => {
  s3mock.on(HeadObjectCommand).rejects(Object.assign(awsError('SlowDown'), { $metadata: { httpStatusCode: 503 } }));
  await expect(uploadSnapshot(s3, 'b', 'dev', await snapshot(dir), NOW)).rejects.toThrow('SlowDown');
});

test('the blobs are listed once when the prefix fits in a page; a longer listing falls back to a HEAD each', async () => {
  const snap = await snapshot(dir);
  const a = snap.files.find(f => f.path === 'a.py')!.sha256;
  s3mock.on(HeadObjectCommand).callsFake(input => {
    if (input.Key.includes('/manifests/')) throw notFound();
    return { LastModified: NOW };
  });
  s3mock.on(ListObjectsV2Command).resolves({ Contents: [{ Key: `dev/code/blobs/${a}`, LastModified: NOW }], IsTruncated: false });
  expect((await uploadSnapshot(s3, 'b', 'dev', snap, NOW)).uploadedBlobs).toBe(1);
  expect(s3mock.commandCalls(HeadObjectCommand)).toHaveLength(1);

  s3mock.reset();
  mockPuts();
  s3mock.on(HeadObjectCommand).callsFake(input => {
    if (input.Key.includes('/manifests/')) throw notFound();
    return { LastModified: NOW };
  });
  s3mock.on(ListObjectsV2Command).resolves({ Contents: [], IsTruncated: true, NextContinuationToken: 'more' });
  expect((await uploadSnapshot(s3, 'b', 'dev', snap, NOW)).uploadedBlobs).toBe(0);
  expect(s3mock.commandCalls(ListObjectsV2Command)).toHaveLength(1);
  expect(s3mock.commandCalls(HeadObjectCommand)).toHaveLength(3);
});

test('the hash cache spares reading unchanged files, and a file whose size, time or inode changed is read again', async () => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chronos-cache-'));
  const file = path.join(dir, 'c.py');
  fs.writeFileSync(file, 'one');
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(file, past, past); // older than the racy window: cached
  const hashOf = async () => (await snapshot(dir, cacheDir)).files.find(f => f.path === 'c.py')!.sha256;
  const first = await hashOf();
  // Same size and time, other bytes: the cache answers (what git's index does too).
  fs.writeFileSync(file, 'two');
  fs.utimesSync(file, past, past);
  expect(await hashOf()).toBe(first);
  // Another time: read again.
  const later = new Date(past.getTime() + 1000);
  fs.utimesSync(file, later, later);
  expect(await hashOf()).not.toBe(first);
  fs.rmSync(file);
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

// S3 User Guide, "Lifecycle configuration elements" (Expiration, Days): objects expire counted from their creation,
// and a PUT of the same key creates it again; ListObjectsV2's Contents carry each object's LastModified (S3 API
// Reference, ListObjectsV2, "Object"). So a blob that the listing shows older than 30 days is uploaded again, as on
// the HEAD path, and a younger one is not.
test('a blob the listing shows older than 30 days is uploaded again; a younger one is not', async () => {
  const snap = await snapshot(dir);
  const a = snap.files.find(f => f.path === 'a.py')!.sha256;
  const b = snap.files.find(f => f.path === 'b.py')!.sha256;
  s3mock.on(HeadObjectCommand).callsFake(input => {
    if (input.Key.includes('/manifests/')) throw notFound();
    throw new Error(`a blob was HEADed although the listing answered: ${input.Key}`);
  });
  s3mock.on(ListObjectsV2Command).resolves({
    Contents: [
      { Key: `dev/code/blobs/${a}`, LastModified: new Date(NOW.getTime() - 31 * DAY) },
      { Key: `dev/code/blobs/${b}`, LastModified: new Date(NOW.getTime() - 29 * DAY) },
    ],
    IsTruncated: false,
  });
  const r = await uploadSnapshot(s3, 'b', 'dev', snap, NOW);
  expect(r).toMatchObject({ uploadedBlobs: 1, uploadedBytes: 1, blobs: 2 });
  expect(s3mock.commandCalls(PutObjectCommand).map(c => c.args[0].input.Key)).toEqual([`dev/code/blobs/${a}`, `dev/code/manifests/${snap.manifestSha256}.json`]);
});
