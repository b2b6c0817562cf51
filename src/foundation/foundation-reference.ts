import type * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { IConstruct } from 'constructs';

/**
 * A Chronos training foundation: one created here (`ChronosTrainingFoundation`)
 * or one deployed elsewhere and imported with `ChronosTrainingFoundation.fromEnvironment`.
 * Another stack or app grants, connects and launches against it without
 * redefining it.
 */
export interface IChronosTrainingFoundation extends ec2.IConnectable, IConstruct {
  /** The environment name (for example `dev`). */
  readonly environmentName: string;

  /** The VPC training instances run in. */
  readonly vpc: ec2.IVpc;

  /** The public subnets, one per Availability Zone, in zone order (the first is the `PublicSubnetId` export). */
  readonly publicSubnets: ec2.ISubnet[];

  /** The training bucket. */
  readonly bucket: s3.IBucket;

  /** The role training instances assume. */
  readonly role: iam.IRole;

  /** The instance profile that carries the role; its `instanceProfileName` is what `run-instances` takes. */
  readonly instanceProfile: iam.IInstanceProfile;

  /** The training instances' security group. */
  readonly securityGroup: ec2.ISecurityGroup;

  /** The training launch template; undefined when the foundation has none. */
  readonly launchTemplate?: ec2.ILaunchTemplate;

  /**
   * The launch template's latest version number, the version to launch (CloudFormation never moves a template's
   * default version). Undefined when the foundation has no launch template. In a foundation defined here it is
   * `Fn::GetAtt LatestVersionNumber`; in an imported one, the `LaunchTemplateVersion` SSM parameter's value when the
   * importing stack was deployed (read only when this property is used, so that a foundation deployed before the
   * parameter existed can still be imported).
   */
  readonly launchTemplateVersion?: string;

  /** The AWS Batch job queue; undefined when the foundation has none (`batch`). */
  readonly batchJobQueue?: batch.IJobQueue;

  /**
   * The AWS Batch job definition of single-node jobs; undefined when the foundation has none
   * (`batch`). Its `jobDefinitionArn` names this deployment's revision in a foundation defined
   * here, and no revision (the latest active one) in an imported foundation.
   */
  readonly batchJobDefinition?: batch.IJobDefinition;

  /** The AWS Batch multi-node job queue; undefined when the foundation has none (`batch.multiNode`). */
  readonly batchMultiNodeJobQueue?: batch.IJobQueue;

  /** The AWS Batch multi-node job definition; undefined when the foundation has none (`batch.multiNode`). */
  readonly batchMultiNodeJobDefinition?: batch.IJobDefinition;

  /**
   * Lets `grantee` read (and list) the prefixes every environment shares:
   * `cached-datasets/`, `runtime/python-env/` and `runtime/scripts/`, with
   * `kms:Decrypt` on the bucket's key when it has one.
   *
   * @param grantee the principal, for example a data pipeline's role
   */
  grantReadShared(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` put and delete objects (and abort multipart uploads) under
   * the shared prefixes, with `kms:GenerateDataKey` and `kms:Decrypt` on the
   * bucket's key when it has one. It grants no read or list: add
   * `grantReadShared` for tools such as `aws s3 sync` that list first.
   *
   * @param grantee the principal that uploads datasets or the runtime, for example a CI role
   */
  grantWriteShared(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` read, write, delete and list under `{environmentName}/`, as
   * the training instances may, with `kms:Decrypt` and `kms:GenerateDataKey` on
   * the bucket's key when it has one.
   *
   * @param grantee the principal, for example an evaluation job's role
   */
  grantReadWriteEnvironment(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` submit AWS Batch jobs to the foundation's job queues (single-node and,
   * when there is one, multi-node) with their job definitions only (by name or any
   * revision), tag them at submission, and describe, list, cancel and terminate jobs:
   * what `TrainingBatchQueue.grantSubmit` grants, for a foundation defined here or
   * imported. It acknowledges no cdk-nag finding on the grantee.
   *
   * @param grantee the principal, for example a launcher's role
   * @throws when the foundation has no Batch queue
   * @throws when the grantee has no policy this app can change (a role imported with `mutable: false`, an account principal)
   */
  grantSubmitBatchJob(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` launch and manage training runs with `chronos-training`: RunInstances from this foundation's
   * launch template only, in its VPC and security group, with the launcher's tags (project, environment, `ManagedBy`,
   * `MaxLifetimeHours`), tags at launch only, the Spot service-linked role only, `iam:PassRole` of the instance role
   * to EC2 only, the foundation's SSM parameters and exports, read and write of the runs' and code prefixes and read
   * of the logs and checkpoints under `{environmentName}/`, the EC2 describes, the spot price history and the AWS
   * Price List API's products (the estimated run cost `status` prints), and terminating this project's and
   * environment's instances.
   *
   * @param grantee the principal that runs `chronos-training`, for example a developers' role
   * @throws if the foundation has no launch template (`launchTemplate: false`)
   * @throws when the grantee has no policy this app can change (a role imported with `mutable: false`, an account principal)
   */
  grantLaunch(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` store, replace, delete and list this environment's run secrets, the SSM SecureString parameters
   * `/chronos-training/{environmentName}/secrets/*` (`chronos-training secret set NAME`).
   *
   * @param grantee the principal that stores secrets, for example a developers' role
   * @throws when the grantee has no policy this app can change (a role imported with `mutable: false`, an account principal)
   */
  grantManageSecrets(grantee: iam.IGrantable): iam.Grant;
}

/**
 * Options of `ChronosTrainingFoundation.fromEnvironment`.
 */
export interface ChronosTrainingFoundationImportOptions {
  /**
   * How many public subnets (and zones) the imported VPC has, taken from the
   * start of the comma-separated `PublicSubnetIds` and `AvailabilityZones`
   * parameters. The values are resolved at deploy time, so their length is not
   * known at synthesis: a count larger than the foundation's zones fails at
   * deploy time (`Fn::Select` out of range); a smaller one uses the first zones.
   *
   * @default 1 - the first zone, which every foundation has
   */
  readonly availabilityZoneCount?: number;

  /**
   * Whether the foundation has a launch template, whose ID is then read from
   * the `LaunchTemplateId` parameter (a foundation created with
   * `launchTemplate: false` has no such parameter, and the deployment of a
   * stack reading it would fail).
   *
   * @default true
   */
  readonly launchTemplate?: boolean;

  /**
   * The KMS key the foundation's bucket is encrypted with, when it is a
   * bring-your-own bucket with SSE-KMS. The grants then add the key permissions
   * S3 needs (`kms:Decrypt` to read, `kms:GenerateDataKey` to write). The
   * foundation publishes no key ARN: its owner knows it.
   *
   * @default - SSE-S3 (the foundation's own bucket): no key permissions
   */
  readonly bucketEncryptionKey?: kms.IKey;

  /**
   * Whether the foundation has an AWS Batch queue (`batch`), whose job queue and
   * job definition are then read from the `BatchJobQueueArn` and
   * `BatchJobDefinitionArn` parameters (the job definition's ARN without revision).
   *
   * @default false
   */
  readonly batch?: boolean;

  /**
   * Whether the foundation's Batch queue has multi-node jobs (`batch.multiNode`), whose
   * job queue and job definition are then read from the `BatchMultiNodeJobQueueArn`
   * and `BatchMultiNodeJobDefinitionArn` parameters. Only with `batch`.
   *
   * @default false
   */
  readonly batchMultiNode?: boolean;
}
