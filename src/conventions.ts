import { Annotations, Duration, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/*
 * Names, tags and input rules shared by every construct of the library.
 * One place, so that a name the launch script depends on is spelled once.
 */

/** Value of the `Project` tag; IAM conditions in the instance role depend on it. */
export const PROJECT_TAG_VALUE = 'Chronos-Training';

/** Tag keys applied to every taggable resource. */
export const TAG_PROJECT = 'Project';
export const TAG_ENVIRONMENT = 'Environment';
export const TAG_COST_CENTER = 'CostCenter';
export const TAG_MANAGED_BY = 'ManagedBy';
export const MANAGED_BY_TAG_VALUE = 'CDK';

/** Context keys read by `resolveSettings` only (never by the four L3 constructs). */
export const CONTEXT_ENVIRONMENT = 'environment';
export const CONTEXT_COST_CENTER = 'costCenter';
export const CONTEXT_ACCOUNT = 'account';
export const CONTEXT_REGION = 'region';

export const DEFAULT_ENVIRONMENT = 'dev';
export const DEFAULT_COST_CENTER = 'train';
/** Region used by the stack when neither props, context nor the CDK CLI give one. */
export const DEFAULT_REGION = 'us-east-1';

/** Workload types of the `CostCenter` tag; anything else is allowed but warned about. */
export const KNOWN_COST_CENTERS = ['collect', 'train', 'serve'];

/** Bucket prefixes uploaded once after deployment and read by every environment. */
export const CACHED_DATASETS_PREFIX = 'cached-datasets/';
export const RUNTIME_PREFIXES = ['runtime/python-env/', 'runtime/scripts/'];
/** Where the foundation's opt-in VPC flow logs are delivered in the training bucket. */
export const FLOW_LOGS_PREFIX = 'vpc-flow-logs/';
/** Prefixes shared by every environment: no lifecycle rule may expire or transition objects under them. */
export const SHARED_PREFIXES = [CACHED_DATASETS_PREFIX, 'runtime/'];
/** Prefixes the training instances and `grantReadShared`/`grantWriteShared` reach under the shared ones. */
export const SHARED_ACCESS_PREFIXES = [CACHED_DATASETS_PREFIX, ...RUNTIME_PREFIXES];
/**
 * First path segments of the bucket that belong to no environment: an
 * environment of the same name would put its lifecycle rules on them.
 */
export const RESERVED_TOP_LEVEL_PREFIXES = [...SHARED_PREFIXES, FLOW_LOGS_PREFIX];

const BUCKET_NAME_PREFIX = 'chronos-training-';
const S3_BUCKET_NAME_MAX = 63;
const ACCOUNT_ID_LENGTH = 12;
/**
 * Length of the longest AWS region name in use (for example `ap-southeast-1`,
 * `ap-northeast-3`, `eusc-de-east-1`), used to size the environment name so the
 * bucket name fits in every region.
 */
export const LONGEST_REGION_NAME_LENGTH = 14;

/** Longest environment name for which `chronos-training-{env}-{account}-{region}` still fits 63 characters. */
export const MAX_ENVIRONMENT_LENGTH =
  S3_BUCKET_NAME_MAX - BUCKET_NAME_PREFIX.length - 1 - ACCOUNT_ID_LENGTH - 1 - LONGEST_REGION_NAME_LENGTH;

const ENVIRONMENT_PATTERN = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;
// AWS tag values: letters, digits and whitespace in any language, and _ . : / = + - @
const TAG_VALUE_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const TAG_VALUE_MAX = 256;

/** The S3 bucket name for an environment (account and region may be tokens). */
export function bucketName(environment: string, account: string, region: string): string {
  return `${BUCKET_NAME_PREFIX}${environment}-${account}-${region}`;
}

/** The instance profile name the launch script passes to `run-instances`. */
export function instanceProfileName(environment: string): string {
  return `ChronosTrainingInstanceProfile-${environment}`;
}

/** The default CloudFormation name of a `ChronosTrainingStack`. */
export function stackName(environment: string): string {
  return `ChronosTraining-${environment}-Stack`;
}

/**
 * Validates an environment name and returns it.
 * @throws if it is not a concrete, DNS-style name short enough for the bucket name
 */
export function validateEnvironment(environment: string, prop: string = 'environmentName'): string {
  if (Token.isUnresolved(environment)) {
    throw new Error(`${prop} must be a literal string, not a token: it is part of resource names and export names that are fixed at synthesis`);
  }
  if (environment.length === 0) {
    throw new Error(`${prop} must not be empty: use lowercase letters, digits and hyphens, for example 'dev', 'stage' or 'prod'`);
  }
  if (!ENVIRONMENT_PATTERN.test(environment)) {
    throw new Error(
      `${prop} '${environment}' is invalid: it must start with a lowercase letter, contain only lowercase letters, ` +
      'digits and hyphens, and not end with a hyphen (it becomes part of the S3 bucket name)',
    );
  }
  if (RESERVED_TOP_LEVEL_PREFIXES.includes(`${environment}/`)) {
    throw new Error(
      `${prop} '${environment}' is reserved: the bucket prefix '${environment}/' holds data shared by all environments ` +
      `(reserved: ${RESERVED_TOP_LEVEL_PREFIXES.map(p => p.slice(0, -1)).join(', ')}), and an environment's lifecycle rules would expire it`,
    );
  }
  if (environment.length > MAX_ENVIRONMENT_LENGTH) {
    throw new Error(
      `${prop} '${environment}' is ${environment.length} characters long; at most ${MAX_ENVIRONMENT_LENGTH} are allowed ` +
      `so that the bucket name '${BUCKET_NAME_PREFIX}{environment}-{12-digit account}-{region}' fits S3's ` +
      `${S3_BUCKET_NAME_MAX}-character limit in every region`,
    );
  }
  return environment;
}

/** The environment name and cost center a foundation or stack deploys with. */
export interface Settings {
  readonly environmentName: string;
  readonly costCenter: string;
}

/**
 * The one place that reads context: props win, then the `environment` and
 * `costCenter` context values, then 'dev' and 'train'. Both are validated.
 * @throws naming the prop (or context key) and the value when one is invalid
 */
export function resolveSettings(scope: IConstruct, props: { readonly environmentName?: string; readonly costCenter?: string }): Settings {
  const pick = (prop: string, contextKey: string, given: string | undefined, fallback: string): [string, string] => {
    if (given !== undefined) return [given, prop];
    const fromContext = scope.node.tryGetContext(contextKey);
    return fromContext === undefined ? [fallback, prop] : [String(fromContext), `${prop} (context '${contextKey}')`];
  };
  const [environmentName, environmentProp] = pick('environmentName', CONTEXT_ENVIRONMENT, props.environmentName, DEFAULT_ENVIRONMENT);
  const [costCenter, costCenterProp] = pick('costCenter', CONTEXT_COST_CENTER, props.costCenter, DEFAULT_COST_CENTER);
  return {
    environmentName: validateEnvironment(environmentName, environmentProp),
    costCenter: validateCostCenter(costCenter, costCenterProp),
  };
}

/**
 * Validates a cost center and returns it.
 * @throws if it is not a valid AWS tag value
 */
export function validateCostCenter(costCenter: string, prop: string = 'costCenter'): string {
  if (Token.isUnresolved(costCenter)) {
    return costCenter;
  }
  if (costCenter.trim().length === 0) {
    throw new Error(`${prop} must not be empty: it is the CostCenter tag value, one of ${KNOWN_COST_CENTERS.join(', ')}`);
  }
  if (costCenter.length > TAG_VALUE_MAX || !TAG_VALUE_PATTERN.test(costCenter)) {
    throw new Error(
      `${prop} '${costCenter}' is not a valid AWS tag value: at most ${TAG_VALUE_MAX} characters of letters, digits, ` +
      'spaces and _ . : / = + - @',
    );
  }
  return costCenter;
}

/** Warns on `scope` when a cost center is not one of the known workload types (it is still a valid tag). */
export function warnUnknownCostCenter(scope: IConstruct, costCenter: string): void {
  if (!Token.isUnresolved(costCenter) && !KNOWN_COST_CENTERS.includes(costCenter)) {
    Annotations.of(scope).addWarningV2(
      '@chronos/training-infra:unknownCostCenter',
      `costCenter '${costCenter}' is not one of the known workload types (${KNOWN_COST_CENTERS.join(', ')}); ` +
      'cost reports grouped by CostCenter will show it separately',
    );
  }
}

// The environment each TrainingBucket's bucket serves, so that a role or grant
// for another environment on it is a synthesis error rather than a write into
// the wrong prefix.
const BUCKET_ENVIRONMENTS = new WeakMap<object, string>();

/** Records the environment whose prefixes a bucket's lifecycle rules manage. */
export function registerBucketEnvironment(bucket: object, environmentName: string): void {
  BUCKET_ENVIRONMENTS.set(bucket, environmentName);
}

/**
 * Checks that `environmentName` is the environment of `bucket`, when the bucket
 * belongs to a `TrainingBucket` (an imported bucket has no known environment).
 * @throws naming both environments when they differ
 */
export function checkBucketEnvironment(bucket: object, environmentName: string, what: string): void {
  const known = BUCKET_ENVIRONMENTS.get(bucket);
  if (known !== undefined && known !== environmentName) {
    throw new Error(`${what}: environmentName '${environmentName}' does not match the bucket's environment '${known}'; ` +
      `a ${environmentName} role or grant on the ${known} bucket would read and write the wrong prefixes`);
  }
}

/**
 * Returns a duration as a whole number of days, at least `minDays`.
 * @throws naming the prop and the value when it is fractional or too small
 */
export function wholeDays(prop: string, value: Duration, minDays: number, why: string): number {
  if (value.isUnresolved()) {
    throw new Error(`${prop} must be a literal duration, not a token: S3 lifecycle rules take a fixed number of days`);
  }
  const days = value.toDays({ integral: false });
  if (!Number.isInteger(days)) {
    throw new Error(`${prop} is ${value.toHumanString()}; S3 lifecycle rules take a whole number of days`);
  }
  if (days < minDays) {
    throw new Error(`${prop} is ${days} days; it must be at least ${minDays} days (${why})`);
  }
  return days;
}

/** Tag key holding a training instance's lifetime in hours (stamped by the launch template, read by the run reaper). */
export const TAG_MAX_LIFETIME_HOURS = 'MaxLifetimeHours';
/**
 * `ManagedBy` value on instances and volumes launched from the training launch
 * template: they are created by the launcher, not managed by CDK.
 */
export const LAUNCH_TEMPLATE_MANAGED_BY = 'chronos-launch-template';
/** Any EC2 instance ARN: IAM statements narrow it with `ec2:Region` and tag conditions. */
export const ANY_INSTANCE_ARN = 'arn:*:ec2:*:*:instance/*';
/**
 * The AWS-owned bucket dnf reads on Amazon Linux 2023 in a region (the same suffix in
 * every region; AWS knowledge-center and user reports: `al2023-repos-us-east-1-de612dc2`).
 */
export function amazonLinux2023RepositoryBucket(region: string): string {
  return `al2023-repos-${region}-de612dc2`;
}
