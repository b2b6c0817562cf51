/*
 * The run reaper's handler: terminates this environment's training instances
 * that have outlived their `MaxLifetimeHours` tag (or the default lifetime, its
 * ceiling, when the tag is missing, malformed or above it). Bundled by esbuild into assets/; the AWS SDK
 * v3 comes from the Lambda runtime. It imports nothing from the library, so the
 * bundle stays small: the construct passes every name through the environment.
 */
import { EC2Client, Instance, paginateDescribeInstances, TerminateInstancesCommand } from '@aws-sdk/client-ec2';

/** What the reaper acts on and how (the construct sets these environment variables). */
export interface ReaperConfig {
  /** Tags an instance must carry to be considered, e.g. `{ Project: 'Chronos-Training', Environment: 'dev' }`. */
  readonly filterTags: Record<string, string>;
  /**
   * Tags that keep an instance out of reach whatever its age, e.g. `{ ManagedBy: 'chronos-batch' }`
   * (instances of an AWS Batch compute environment, whose lifetime Batch manages). Empty when not set.
   */
  readonly excludeTags: Record<string, string>;
  /** Tag holding an instance's own lifetime in hours. */
  readonly lifetimeTagKey: string;
  /**
   * The ceiling, in seconds: the lifetime of instances whose lifetime tag is missing or malformed, and the most a
   * tag is trusted for (a tag above it counts as this). The construct sets it to the foundation's lifetime plus the
   * boot, drain and backstop margin, the tag the launch template stamps.
   */
  readonly defaultLifetimeSeconds: number;
  /** Only report (and check permissions with EC2's DryRun), terminate nothing. */
  readonly dryRun: boolean;
}

/** One instance the reaper decided to terminate. */
export interface Expired {
  readonly instanceId: string;
  readonly state: string;
  readonly ageSeconds: number;
  readonly lifetimeSeconds: number;
  /**
   * Where the lifetime came from: the tag, the default because the tag is missing or malformed, or the ceiling
   * because the tag gives more than the ceiling (the default lifetime).
   */
  readonly lifetimeFrom: 'tag' | 'default (tag missing)' | 'default (tag malformed)' | 'ceiling (tag above it)';
}

/** An expired instance that TerminateInstances refused, even on its own. */
export interface TerminateFailure {
  readonly instanceId: string;
  /** The EC2 error code, e.g. `OperationNotPermitted` for termination protection. */
  readonly error: string;
  readonly reason: string;
}

export interface ReapResult {
  readonly dryRun: boolean;
  /** Instances matched by the tag and state filters. */
  readonly examined: number;
  /** IDs of examined instances left alone because they carry an excluded tag. */
  readonly excluded: string[];
  readonly expired: Expired[];
  /** IDs terminated (or, in a dry run, that EC2 confirmed could be terminated). */
  readonly terminated: string[];
  /** Expired instances that could not be terminated (the invocation then fails after terminating the others). */
  readonly failed: TerminateFailure[];
}

/** States in which an instance bills (compute, or its volumes while stopped). */
export const REAPED_STATES = ['pending', 'running', 'stopping', 'stopped'];

/** TerminateInstances is called with at most this many IDs at a time. */
export const TERMINATE_BATCH = 50;

/** Reads the configuration from the function's environment; throws naming the variable that is wrong. */
export function configFromEnvironment(env: Record<string, string | undefined>): ReaperConfig {
  const filterTags = JSON.parse(required(env, 'FILTER_TAGS'));
  if (typeof filterTags !== 'object' || filterTags === null || Object.keys(filterTags).length === 0) {
    throw new Error('FILTER_TAGS must be a non-empty JSON object of tag keys and values');
  }
  // Optional, so that a function deployed before it existed keeps working.
  const excludeTags = env.EXCLUDE_TAGS ? JSON.parse(env.EXCLUDE_TAGS) : {};
  if (typeof excludeTags !== 'object' || excludeTags === null || Array.isArray(excludeTags)) {
    throw new Error('EXCLUDE_TAGS must be a JSON object of tag keys and values');
  }
  const defaultLifetimeSeconds = Number(required(env, 'DEFAULT_LIFETIME_SECONDS'));
  if (!Number.isFinite(defaultLifetimeSeconds) || defaultLifetimeSeconds <= 0) {
    throw new Error(`DEFAULT_LIFETIME_SECONDS must be a positive number, got '${env.DEFAULT_LIFETIME_SECONDS}'`);
  }
  return {
    filterTags,
    excludeTags,
    lifetimeTagKey: required(env, 'LIFETIME_TAG_KEY'),
    defaultLifetimeSeconds,
    dryRun: env.DRY_RUN === 'true',
  };
}

function required(env: Record<string, string | undefined>, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

/**
 * An instance's lifetime in seconds: its tag in hours when that is a positive
 * decimal number (`4`, `2.5`) no larger than the default, the default when the
 * tag is larger (a tag is never trusted above the ceiling), missing or malformed.
 */
export function lifetimeOf(instance: Instance, config: ReaperConfig): Pick<Expired, 'lifetimeSeconds' | 'lifetimeFrom'> {
  const tag = instance.Tags?.find(t => t.Key === config.lifetimeTagKey)?.Value;
  if (tag === undefined) {
    return { lifetimeSeconds: config.defaultLifetimeSeconds, lifetimeFrom: 'default (tag missing)' };
  }
  const trimmed = tag.trim();
  const hours = Number(trimmed);
  if (!/^\d+(\.\d+)?$/.test(trimmed) || !(hours > 0)) {
    return { lifetimeSeconds: config.defaultLifetimeSeconds, lifetimeFrom: 'default (tag malformed)' };
  }
  // To the millisecond, so that a tag equal to the ceiling ('0.54' is 1944 s) is not above it by a float's error.
  const seconds = Math.round(hours * 3_600_000) / 1000;
  if (seconds > config.defaultLifetimeSeconds) {
    return { lifetimeSeconds: config.defaultLifetimeSeconds, lifetimeFrom: 'ceiling (tag above it)' };
  }
  return { lifetimeSeconds: seconds, lifetimeFrom: 'tag' };
}

/** Whether an instance carries any of the excluded tags (key and value). */
export function isExcluded(instance: Instance, excludeTags: Record<string, string>): boolean {
  return (instance.Tags ?? []).some(t => t.Key !== undefined && excludeTags[t.Key] !== undefined && excludeTags[t.Key] === t.Value);
}

/**
 * Finds the expired instances and terminates them. An instance whose age equals
 * its lifetime exactly is kept; one a millisecond older is terminated.
 *
 * TerminateInstances fails the whole request when one instance in it cannot be
 * terminated (termination protection, an ID that is gone, ...), so a batch that
 * fails is retried one instance at a time: one protected instance does not
 * shield the others. Each instance that still fails is logged (one JSON line each).
 * @throws after trying every instance, if any could not be terminated, listing them (so the
 *   invocation fails and lands in the dead-letter queue after its retries)
 */
export async function reap(client: EC2Client, config: ReaperConfig, now: Date = new Date()): Promise<ReapResult> {
  const filters = [
    ...Object.entries(config.filterTags).map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] })),
    { Name: 'instance-state-name', Values: REAPED_STATES },
  ];
  let examined = 0;
  const excluded: string[] = [];
  const expired: Expired[] = [];
  for await (const page of paginateDescribeInstances({ client }, { Filters: filters })) {
    for (const instance of (page.Reservations ?? []).flatMap(r => r.Instances ?? [])) {
      examined++;
      if (!instance.InstanceId || !instance.LaunchTime) {
        continue;
      }
      // EC2 filters cannot say "tag not equal": excluded instances are dropped here (the IAM policy denies them too).
      if (isExcluded(instance, config.excludeTags ?? {})) {
        excluded.push(instance.InstanceId);
        continue;
      }
      // LaunchTime is the last start: a stopped and restarted instance counts from its restart.
      const ageSeconds = (now.getTime() - new Date(instance.LaunchTime).getTime()) / 1000;
      const lifetime = lifetimeOf(instance, config);
      if (ageSeconds > lifetime.lifetimeSeconds) {
        expired.push({ instanceId: instance.InstanceId, state: instance.State?.Name ?? 'unknown', ageSeconds, ...lifetime });
      }
    }
  }

  const terminated: string[] = [];
  const failed: TerminateFailure[] = [];
  for (let i = 0; i < expired.length; i += TERMINATE_BATCH) {
    const ids = expired.slice(i, i + TERMINATE_BATCH).map(e => e.instanceId);
    const batch = await terminate(client, ids, config.dryRun);
    if (batch.ok) {
      terminated.push(...batch.ids);
      continue;
    }
    // "If you specify multiple instances and the request fails (for example, because of a single incorrect
    // instance ID), none of the instances are terminated"; with termination protection, none in the protected
    // instance's Availability Zone are ("TerminateInstances", Amazon EC2 API Reference,
    // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html). The same page says the
    // operation is idempotent, so the instances of the batch that did terminate are terminated again harmlessly.
    for (const id of ids) {
      const single = ids.length === 1 ? batch : await terminate(client, [id], config.dryRun);
      if (single.ok) {
        terminated.push(...single.ids);
      } else {
        const failure = { instanceId: id, error: single.error, reason: single.reason };
        failed.push(failure);
        console.log(JSON.stringify({ level: 'ERROR', message: 'TerminateInstances failed for an expired instance', ...failure }));
      }
    }
  }

  const result: ReapResult = { dryRun: config.dryRun, examined, excluded, expired, terminated, failed };
  console.log(JSON.stringify(result));
  if (failed.length > 0) {
    throw new Error(`TerminateInstances failed for ${failed.length} expired instance(s), after terminating the others: ` +
      failed.map(f => `${f.instanceId}: ${f.error}: ${f.reason}`).join('; '));
  }
  return result;
}

type Termination = { ok: true; ids: string[] } | { ok: false; error: string; reason: string };

/** One TerminateInstances call; in a dry run, EC2's DryRunOperation answer counts as success for every ID. */
async function terminate(client: EC2Client, ids: string[], dryRun: boolean): Promise<Termination> {
  try {
    const response = await client.send(new TerminateInstancesCommand({ InstanceIds: ids, DryRun: dryRun }));
    return { ok: true, ids: (response.TerminatingInstances ?? []).map(t => t.InstanceId!).filter(Boolean) };
  } catch (error: any) {
    // With DryRun, EC2 answers a request it would have carried out with this error.
    if (dryRun && error?.name === 'DryRunOperation') {
      return { ok: true, ids };
    }
    return { ok: false, error: error?.name ?? 'Error', reason: String(error?.message ?? error) };
  }
}

const ec2 = new EC2Client({});

/** The Lambda entry point (invoked by the EventBridge schedule; the event is not used). */
export async function handler(): Promise<ReapResult> {
  return reap(ec2, configFromEnvironment(process.env));
}
