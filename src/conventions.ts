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

/** Context keys read by the foundation and the stack (never by the four L3 constructs). */
export const CONTEXT_ENVIRONMENT = 'environment';
export const CONTEXT_COST_CENTER = 'costCenter';
export const CONTEXT_ACCOUNT = 'account';
export const CONTEXT_REGION = 'region';

export const DEFAULT_ENVIRONMENT = 'dev';
export const DEFAULT_COST_CENTER = 'train';
/** Region used by the stack when neither props, context nor the CDK CLI give one (as the guide's `bin/cdk.ts`). */
export const DEFAULT_REGION = 'us-east-1';

/** Workload types the guide defines for `CostCenter`; anything else is allowed but warned about. */
export const KNOWN_COST_CENTERS = ['collect', 'train', 'serve'];

/** Bucket prefixes written by the guide's post-deployment setup and read by every environment. */
export const CACHED_DATASETS_PREFIX = 'cached-datasets/';
export const RUNTIME_PREFIXES = ['runtime/python-env/', 'runtime/scripts/'];
/** Where the foundation's opt-in VPC flow logs are delivered in the training bucket. */
export const FLOW_LOGS_PREFIX = 'vpc-flow-logs/';
/**
 * First path segments of the bucket that belong to no environment: an
 * environment of the same name would put its lifecycle rules on them.
 */
/** Prefixes shared by every environment: no lifecycle rule may expire or transition objects under them. */
export const SHARED_PREFIXES = [CACHED_DATASETS_PREFIX, 'runtime/'];
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

/** The CloudFormation export name of one foundation output. */
export function exportName(environment: string, output: string): string {
  return `ChronosTraining-${environment}-${output}`;
}

/** The stack name the sample app and the guide use. */
export function stackName(environment: string): string {
  return `ChronosTraining-${environment}-Stack`;
}

/**
 * Validates an environment name and returns it.
 * @throws if it is not a concrete, DNS-style name short enough for the bucket name
 */
export function validateEnvironment(environment: string, prop: string = 'environment'): string {
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

/**
 * Validates a cost center and returns it. Values other than the guide's workload
 * types are allowed but produce a warning annotation on `scope`.
 * @throws if it is not a valid AWS tag value
 */
export function validateCostCenter(scope: IConstruct, costCenter: string, prop: string = 'costCenter'): string {
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
  if (!KNOWN_COST_CENTERS.includes(costCenter)) {
    Annotations.of(scope).addWarningV2(
      '@chronos/training-infra:unknownCostCenter',
      `${prop} '${costCenter}' is not one of the guide's workload types (${KNOWN_COST_CENTERS.join(', ')}); ` +
      'cost reports grouped by CostCenter will show it separately',
    );
  }
  return costCenter;
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
