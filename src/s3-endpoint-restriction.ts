import { Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { IConstruct } from 'constructs';

/**
 * What the S3 gateway endpoint admits besides the training bucket, when its
 * allow-all policy is replaced (the foundation's `restrictS3Endpoint`).
 *
 * The endpoint carries the instances' S3 traffic to buckets **in the VPC's
 * region**: with the restriction, those requests reach only the training bucket
 * (any action the instance role allows) and the buckets named here (read-only).
 * Requests to buckets in other regions do not use the endpoint and are not
 * restricted by it.
 */
export interface S3EndpointRestriction {
  /**
   * Names of further buckets instances may read through the endpoint
   * (`s3:GetObject`, `s3:ListBucket` only), for example ECR's layer bucket
   * `prod-us-east-1-starport-layer-bucket` to pull images from ECR. `*` matches
   * any characters within a name; a name of `*` alone is refused.
   *
   * @default - none
   */
  readonly readOnlyBucketNames?: string[];

  /**
   * Admit the Amazon Linux 2023 package repositories
   * (`al2023-repos-{region}-de612dc2`), read-only, so that `dnf` keeps working
   * on Amazon Linux 2023 and its Deep Learning AMIs.
   *
   * @default true
   */
  readonly amazonLinuxRepositories?: boolean;
}

/** The AWS-owned bucket dnf reads on Amazon Linux 2023 in a region (the same suffix in every region). */
export function amazonLinux2023RepositoryBucket(region: string): string {
  return `al2023-repos-${region}-de612dc2`;
}

const BUCKET_PATTERN = /^[a-z0-9*][a-z0-9.*-]{2,62}$/;

/**
 * The endpoint policy statements of a restriction: everything on the training
 * bucket, read-only on the named buckets.
 */
export function s3EndpointRestrictionStatements(scope: IConstruct, bucket: s3.IBucket, restriction: S3EndpointRestriction): iam.PolicyStatement[] {
  const names = [...restriction.readOnlyBucketNames ?? []];
  for (const name of names) {
    if (Token.isUnresolved(name)) {
      continue;
    }
    if (name.replace(/\*/g, '').length === 0) {
      throw new Error(`restrictS3Endpoint.readOnlyBucketNames contains '${name}', which would admit every bucket`);
    }
    if (!BUCKET_PATTERN.test(name)) {
      throw new Error(`restrictS3Endpoint.readOnlyBucketNames contains '${name}', which is not an S3 bucket name ` +
        '(3 to 63 lowercase letters, digits, dots and hyphens; * as a wildcard)');
    }
  }
  const stack = Stack.of(scope);
  if (restriction.amazonLinuxRepositories ?? true) {
    names.unshift(amazonLinux2023RepositoryBucket(stack.region));
  }
  const statements = [new iam.PolicyStatement({
    sid: 'TrainingBucket',
    principals: [new iam.AnyPrincipal()],
    actions: ['s3:*'],
    resources: [bucket.bucketArn, bucket.arnForObjects('*')],
  })];
  if (names.length > 0) {
    const arn = (resource: string) => `arn:${stack.partition}:s3:::${resource}`;
    statements.push(new iam.PolicyStatement({
      sid: 'ReadOnlyBuckets',
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:GetObject', 's3:ListBucket'],
      resources: names.flatMap(name => [arn(name), arn(`${name}/*`)]),
    }));
  }
  return statements;
}
