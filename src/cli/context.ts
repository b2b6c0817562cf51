import * as fs from 'fs';
import * as path from 'path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';

/** An error the launcher reports as one line, `chronos-training: error: ...`, with exit code 2 for usage errors. */
export class CliError extends Error {
  constructor(message: string, public readonly exitCode: number = 1) {
    super(message);
    this.name = 'CliError';
  }
}

/** The AWS clients the launcher uses. */
export interface Clients {
  readonly ec2: EC2Client;
  /**
   * The EC2 client of RunInstances: no SDK retries. The SDK's standard retry repeats server errors, and EC2's capacity
   * errors (InsufficientInstanceCapacity...) are 5xx, so each fallback step would be sent three times; the launcher
   * moves on instead, and repeats only a throttled request (launch.ts, sendRunInstances).
   */
  readonly ec2Launch: EC2Client;
  readonly s3: S3Client;
  readonly ssm: SSMClient;
  readonly cfn: CloudFormationClient;
}

/** Where the launcher writes, how it waits and what time it is: replaced in tests. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => Date;
  /** Aborted when the user presses Ctrl-C (the launcher detaches). */
  readonly interrupted: AbortSignal;
}

/** Clients from the standard credential and region chain, with `--profile` and `--region` as in the AWS CLI. */
export function createClients(options: { profile?: string; region?: string }): Clients {
  const config = {
    ...(options.profile ? { profile: options.profile } : {}),
    ...(options.region ? { region: options.region } : {}),
  };
  // An endpoint URL (a local emulator, a VPC endpoint) is used path-style, as the AWS CLI does with one.
  const forcePathStyle = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  return {
    ec2: new EC2Client(config),
    ec2Launch: new EC2Client({ ...config, maxAttempts: 1 }),
    s3: new S3Client({ ...config, forcePathStyle }),
    ssm: new SSMClient(config),
    cfn: new CloudFormationClient(config),
  };
}

/** The directory of the package: two levels above this file, whether it runs from src/cli, lib/cli or assets/cli. */
export function packageRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** The package's version, from its package.json. */
export function packageVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The code of an AWS SDK error (`InsufficientInstanceCapacity`, `NoSuchKey`...). */
export function errorCode(e: unknown): string {
  const any = e as { name?: string; Code?: string; code?: string };
  return any?.Code ?? any?.code ?? any?.name ?? 'Error';
}

/** Whether an S3 error means "no such object". */
export function isNotFound(e: unknown): boolean {
  const code = errorCode(e);
  const status = (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return code === 'NotFound' || code === 'NoSuchKey' || status === 404;
}

/** Runs `fn` over `items` with at most `limit` calls at a time; results in the order of `items`. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Bytes in a human unit. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A duration in seconds, as `1h02m`, `5m10s` or `42s`. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s >= 86400) return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}
