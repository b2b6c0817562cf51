import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, IConstruct } from 'constructs';
import { environmentStatements, grantStatements, sharedReadStatements, sharedWriteStatements } from '../storage/bucket-access';

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

  /** The public subnets, one per Availability Zone, in zone order. */
  readonly publicSubnets: ec2.ISubnet[];

  /** The training bucket. */
  readonly bucket: s3.IBucket;

  /** The role training instances assume. */
  readonly role: iam.IRole;

  /** The name of the instance profile that carries the role (what `run-instances` takes). */
  readonly instanceProfileName: string;

  /** The training instances' security group. */
  /**
   * The ID of the training launch template; undefined when the foundation has none.
   */
  readonly launchTemplateId?: string;

  readonly securityGroup: ec2.ISecurityGroup;

  /**
   * Lets `grantee` read (and list) the prefixes every environment shares:
   * `cached-datasets/`, `runtime/python-env/` and `runtime/scripts/`.
   *
   * @param grantee the principal, for example a data pipeline's role
   */
  grantReadShared(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` put and delete objects under the shared prefixes (no read or list).
   *
   * @param grantee the principal that uploads datasets or the runtime, for example a CI role
   */
  grantWriteShared(grantee: iam.IGrantable): iam.Grant;

  /**
   * Lets `grantee` read, write, delete and list under `{environmentName}/`.
   *
   * @param grantee the principal, for example an evaluation job's role
   */
  grantReadWriteEnvironment(grantee: iam.IGrantable): iam.Grant;
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
   * `createLaunchTemplate: false` has no such parameter, and the deployment of a
   * stack reading it would fail).
   *
   * @default true
   */
  readonly launchTemplate?: boolean;
}

/**
 * What a foundation defined here and an imported one have in common: the
 * prefix-scoped grants, which work on any bucket (aws-cdk-lib's `BucketBase`
 * pattern).
 */
export abstract class ChronosTrainingFoundationBase extends Construct implements IChronosTrainingFoundation {
  /** The environment name. */
  public abstract readonly environmentName: string;
  /** The VPC training instances run in. */
  public abstract readonly vpc: ec2.IVpc;
  /** The public subnets, one per Availability Zone, in zone order. */
  public abstract readonly publicSubnets: ec2.ISubnet[];
  /** The training bucket. */
  public abstract readonly bucket: s3.IBucket;
  /** The role training instances assume. */
  public abstract readonly role: iam.IRole;
  /** The name of the instance profile that carries the role. */
  public abstract readonly instanceProfileName: string;
  /** The training instances' security group. */
  public abstract readonly securityGroup: ec2.ISecurityGroup;
  /** The ID of the training launch template; undefined when the foundation has none. */
  public abstract readonly launchTemplateId?: string;
  /** The connections of the training instances' security group. */
  public abstract readonly connections: ec2.Connections;

  /**
   * Lets `grantee` read (and list) the prefixes every environment shares:
   * `cached-datasets/`, `runtime/python-env/` and `runtime/scripts/`.
   *
   * @param grantee the principal, for example a data pipeline's role
   */
  public grantReadShared(grantee: iam.IGrantable): iam.Grant {
    return grantStatements(grantee, sharedReadStatements(this.bucket));
  }

  /**
   * Lets `grantee` put and delete objects under the shared prefixes (no read or list).
   *
   * @param grantee the principal that uploads datasets or the runtime, for example a CI role
   */
  public grantWriteShared(grantee: iam.IGrantable): iam.Grant {
    return grantStatements(grantee, sharedWriteStatements(this.bucket));
  }

  /**
   * Lets `grantee` read, write, delete and list under `{environmentName}/`.
   *
   * @param grantee the principal, for example an evaluation job's role
   */
  public grantReadWriteEnvironment(grantee: iam.IGrantable): iam.Grant {
    return grantStatements(grantee, environmentStatements(this.bucket, this.environmentName));
  }
}
