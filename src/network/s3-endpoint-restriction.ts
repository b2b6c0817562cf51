/**
 * What the S3 gateway endpoint admits besides the training bucket, when its
 * allow-all policy is replaced (`TrainingNetwork.restrictS3Endpoint`, or the
 * foundation's `s3EndpointRestriction: true` with these as `s3EndpointRestrictionProps`).
 *
 * The endpoint carries the instances' S3 traffic to buckets **in the VPC's
 * region**: with the restriction, those requests reach only the training bucket
 * (any action the instance role allows) and the buckets named here (read-only).
 * Requests to buckets in other regions do not use the endpoint and are not
 * restricted by it.
 */
export interface S3EndpointRestrictionOptions {
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
