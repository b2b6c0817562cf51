import { Stack, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/*
 * The names of the resources the library creates, spelled once: the launch
 * script and other stacks depend on them.
 */

export const BUCKET_NAME_PREFIX = 'chronos-training-';
export const S3_BUCKET_NAME_MAX = 63;
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

/** The S3 bucket name for an environment (account and region may be tokens). */
export function bucketName(environment: string, account: string, region: string): string {
  return `${BUCKET_NAME_PREFIX}${environment}-${account}-${region}`;
}

/**
 * The instance profile name the launch script passes to `run-instances`; with a
 * region, for a foundation whose `regionalNames` is on.
 */
export function instanceProfileName(environment: string, region?: string): string {
  return `ChronosTrainingInstanceProfile-${environment}${region ? `-${region}` : ''}`;
}

/** The budget name of an environment (budget names are unique per account, not per region). */
export function budgetName(environment: string, region?: string): string {
  return `ChronosTraining-${environment}${region ? `-${region}` : ''}`;
}

/**
 * The region that `regionalNames` puts into account-wide names, or undefined
 * when it is off.
 * @throws when it is on and the stack's region is not known at synthesis
 */
export function regionForNames(scope: IConstruct, regionalNames: boolean | undefined): string | undefined {
  if (!regionalNames) {
    return undefined;
  }
  const region = Stack.of(scope).region;
  if (Token.isUnresolved(region)) {
    throw new Error('regionalNames is true but the stack has no concrete region: give the stack env.region (or the ' +
      '`@chronos/training-infra:region` context value of ChronosTrainingStack), since the region becomes part of account-wide names fixed at synthesis');
  }
  return region;
}

/** The default CloudFormation name of a `ChronosTrainingStack`. */
export function stackName(environment: string): string {
  return `ChronosTraining-${environment}-Stack`;
}

/** Any EC2 instance ARN: IAM statements narrow it with `ec2:Region` and tag conditions. */
export const ANY_INSTANCE_ARN = 'arn:*:ec2:*:*:instance/*';

/**
 * The AWS-owned bucket dnf reads on Amazon Linux 2023 in a region (the same suffix in
 * every region; AWS knowledge-center and user reports: `al2023-repos-us-east-1-de612dc2`).
 */
export function amazonLinux2023RepositoryBucket(region: string): string {
  return `al2023-repos-${region}-de612dc2`;
}
