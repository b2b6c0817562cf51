import { randomBytes } from 'crypto';
import { DescribeInstancesCommand, Instance } from '@aws-sdk/client-ec2';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Clients, CliError, isNotFound } from './context';

/** The contract version this launcher knows (docs/RUNS.md). */
export const SCHEMA_VERSION = 1;

/** A run ID: `^[a-z0-9][a-z0-9-]{2,62}$` (docs/RUNS.md, "The run ID and the attempt"). */
export const RUN_ID_PATTERN = /^[a-z0-9][a-z0-9-]{2,62}$/;

/** The run states, and which end the run (`interrupted` ends only the attempt). */
export type RunState = 'pending' | 'running' | 'succeeded' | 'failed' | 'interrupted' | 'timed-out' | 'stopped';
export const RUN_OVER: ReadonlySet<string> = new Set(['succeeded', 'failed', 'timed-out', 'stopped']);

/** status.json, version 1. */
export interface RunStatus {
  readonly schemaVersion: number;
  readonly runId: string;
  readonly state: RunState;
  readonly attempt: number;
  readonly instanceId: string | null;
  readonly instanceType: string | null;
  readonly lifecycle: string | null;
  readonly availabilityZone: string | null;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly endedAt: string | null;
  readonly exitCode: number | null;
  readonly lastCheckpoint: { sequence: number; manifestKey: string; at: string } | null;
  readonly reason: string | null;
  readonly agentVersion: string | null;
}

/** spec.json, version 1. */
export interface RunSpec {
  readonly schemaVersion: number;
  readonly runId: string;
  readonly name?: string;
  readonly environment: string;
  readonly command: string[];
  readonly env?: Record<string, string>;
  readonly code?: { manifestKey: string };
  readonly maxRunLifetimeSeconds: number;
  readonly createdAt: string;
  readonly createdBy?: string;
}

/** `{name}-{yyyymmdd}-{hhmmss}-{6 hex}`, or `run-...` without a name; the name is lower-cased and cut to fit. */
export function newRunId(name: string | undefined, now: Date): string {
  const iso = now.toISOString();
  const stamp = `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${randomBytes(3).toString('hex')}`;
  let prefix = (name ?? 'run').toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').replace(/-{2,}/g, '-');
  if (prefix === '') prefix = 'run';
  prefix = prefix.slice(0, 63 - stamp.length - 1).replace(/-+$/, '');
  const id = `${prefix}-${stamp}`;
  if (!RUN_ID_PATTERN.test(id)) throw new Error(`made an invalid run ID ${id}`);
  return id;
}

export const keys = {
  spec: (env: string, runId: string) => `${env}/runs/${runId}/spec.json`,
  status: (env: string, runId: string) => `${env}/runs/${runId}/status.json`,
  attempt: (env: string, runId: string, attempt: number) => `${env}/runs/${runId}/attempts/${pad(attempt, 3)}.json`,
  control: (env: string, runId: string) => `${env}/runs/${runId}/control.json`,
  runs: (env: string) => `${env}/runs/`,
  logs: (env: string, runId: string) => `${env}/logs/${runId}/`,
};

export function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export async function putJson(s3: S3Client, bucket: string, key: string, doc: unknown): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${JSON.stringify(doc, null, 2)}\n`, ContentType: 'application/json' }));
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const reply = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await reply.Body!.transformToString('utf8');
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Reads a contract document, refusing a higher `schemaVersion` than this launcher knows. */
export async function getJson<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  const text = await getText(s3, bucket, key);
  if (text === undefined) return undefined;
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CliError(`s3://${bucket}/${key} is not JSON`);
  }
  if (typeof doc?.schemaVersion === 'number' && doc.schemaVersion > SCHEMA_VERSION) {
    throw new CliError(`s3://${bucket}/${key} has schemaVersion ${doc.schemaVersion}; this chronos-training knows version ${SCHEMA_VERSION}: upgrade it`);
  }
  return doc as T;
}

/** The `pending` status the launcher writes before an attempt's agent runs. */
export function pendingStatus(runId: string, attempt: number, now: Date): RunStatus {
  const at = now.toISOString();
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    state: 'pending',
    attempt,
    instanceId: null,
    instanceType: null,
    lifecycle: null,
    availabilityZone: null,
    startedAt: at,
    updatedAt: at,
    endedAt: null,
    exitCode: null,
    lastCheckpoint: null,
    reason: null,
    agentVersion: null,
  };
}

export function checkRunId(runId: string): string {
  if (!RUN_ID_PATTERN.test(runId)) throw new CliError(`'${runId}' is not a run ID (${RUN_ID_PATTERN.source})`, 2);
  return runId;
}

/** The run IDs under `{env}/runs/`. */
export async function listRunIds(s3: S3Client, bucket: string, env: string): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: keys.runs(env), Delimiter: '/', ContinuationToken: token }));
    for (const p of page.CommonPrefixes ?? []) ids.push(p.Prefix!.slice(keys.runs(env).length).replace(/\/$/, ''));
    token = page.NextContinuationToken;
  } while (token);
  return ids;
}

/** Every key under a prefix, in lexical order, after `startAfter`. */
export async function listKeys(s3: S3Client, bucket: string, prefix: string, startAfter?: string): Promise<string[]> {
  const found: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({
      Bucket: bucket, Prefix: prefix, ContinuationToken: token, ...(token ? {} : startAfter ? { StartAfter: startAfter } : {}),
    }));
    for (const o of page.Contents ?? []) if (o.Key) found.push(o.Key);
    token = page.NextContinuationToken;
  } while (token);
  return found;
}

/** The instances of one run (or of every run of the environment), any state but terminated unless `all`. */
export async function runInstances(clients: Clients, env: string, runId?: string, all = false): Promise<Instance[]> {
  const filters = [
    { Name: 'tag:Project', Values: ['Chronos-Training'] },
    { Name: 'tag:Environment', Values: [env] },
    runId ? { Name: 'tag:ChronosRunId', Values: [runId] } : { Name: 'tag-key', Values: ['ChronosRunId'] },
    ...(all ? [] : [{ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] }]),
  ];
  const found: Instance[] = [];
  let token: string | undefined;
  do {
    const page = await clients.ec2.send(new DescribeInstancesCommand({ Filters: filters, NextToken: token }));
    for (const r of page.Reservations ?? []) found.push(...(r.Instances ?? []));
    token = page.NextToken;
  } while (token);
  return found;
}

export function tagOf(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find(t => t.Key === key)?.Value;
}
