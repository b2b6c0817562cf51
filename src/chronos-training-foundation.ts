import { CfnOutput, Fn, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import {
  FLOW_LOGS_PREFIX,
  MANAGED_BY_TAG_VALUE,
  PROJECT_TAG_VALUE,
  resolveSettings,
  TAG_COST_CENTER,
  TAG_ENVIRONMENT,
  TAG_MANAGED_BY,
  TAG_PROJECT,
  warnUnknownCostCenter,
} from './conventions';
import { FoundationExports } from './foundation-exports';
import { TrainingBucket, TrainingBucketOptions } from './training-bucket';
import { TrainingEgressSecurityGroup } from './training-egress-security-group';
import { TrainingInstanceRole, TrainingInstanceRoleOptions } from './training-instance-role';
import { TrainingNetwork, TrainingNetworkProps } from './training-network';

/**
 * Properties of a `ChronosTrainingFoundation`.
 */
export interface ChronosTrainingFoundationProps {
  /**
   * The environment name (for example `dev`, `stage`, `prod`): part of the bucket
   * name, the instance profile name, the export names and the `Environment` tag.
   * Lowercase letters, digits and hyphens, starting with a letter, at most 18 characters.
   *
   * @default - the `environment` context value, else 'dev'
   */
  readonly environmentName?: string;

  /**
   * The `CostCenter` tag: the workload type, one of `collect`, `train` or `serve`
   * (other valid tag values are accepted with a warning).
   *
   * @default - the `costCenter` context value, else 'train'
   */
  readonly costCenter?: string;

  /**
   * Options of the network (VPC CIDR, subnet mask, Availability Zone, flow logs).
   *
   * @default - a 10.0.0.0/16 VPC with a /24 public subnet in the region's first Availability Zone
   */
  readonly networkProps?: TrainingNetworkProps;

  /**
   * Options of the bucket (log retention, artifact transition and expiration, removal policy).
   *
   * @default - logs kept 14 days; artifacts to Standard-IA at 30 days and expired at 90; bucket retained
   */
  readonly bucketProps?: TrainingBucketOptions;

  /**
   * Options of the instance role.
   *
   * @default - instances may terminate only themselves
   */
  readonly instanceRoleProps?: TrainingInstanceRoleOptions;

  /**
   * Whether to deliver VPC flow logs (all traffic) into the training bucket under
   * `vpc-flow-logs/`, expired after the bucket's log retention. They are billed
   * per GB delivered: nothing while no instance runs. Ignored when
   * `networkProps.flowLogDestination` is set.
   *
   * @default false
   */
  readonly flowLogs?: boolean;
}

/**
 * The whole persistent foundation of the Chronos training platform for one
 * environment: network, bucket, instance role and profile, egress-only security
 * group, the four cost tags on every taggable resource, and eight CloudFormation
 * exports (`ChronosTraining-{environmentName}-*`, see `FoundationExports`) that
 * the launch script reads.
 *
 * Every resource it creates costs nothing while no instance runs.
 *
 * It is an `ec2.IConnectable` (the training instances' security group), and
 * its `grant*` methods give other principals prefix-scoped access to the bucket.
 */
export class ChronosTrainingFoundation extends Construct implements ec2.IConnectable {
  /** The environment name, after context defaults were applied. */
  public readonly environmentName: string;

  /** The cost center, after context defaults were applied. */
  public readonly costCenter: string;

  /** The VPC training instances run in. */
  public readonly vpc: ec2.IVpc;

  /** The first public subnet (the `PublicSubnetId` export). */
  public readonly publicSubnet: ec2.ISubnet;

  /** The public subnets, one per Availability Zone, in zone order (the `PublicSubnetIds` export). */
  public readonly publicSubnets: ec2.ISubnet[];

  /** The training bucket. */
  public readonly bucket: s3.IBucket;

  /** The role training instances assume. */
  public readonly role: iam.IRole;

  /** The instance profile `ChronosTrainingInstanceProfile-{environmentName}` that carries the role. */
  public readonly instanceProfile: iam.IInstanceProfile;

  /** The egress-only security group of training instances. */
  public readonly securityGroup: ec2.ISecurityGroup;

  /** The connections of the training instances' security group. */
  public readonly connections: ec2.Connections;

  /** The network construct: VPC, public subnet and S3 gateway endpoint. */
  public readonly network: TrainingNetwork;

  /** The bucket construct, with its lifecycle rules and prefix-scoped grants. */
  public readonly trainingBucket: TrainingBucket;

  /** The instance role construct: role and instance profile. */
  public readonly instanceRole: TrainingInstanceRole;

  /** The security group construct. */
  public readonly egressSecurityGroup: TrainingEgressSecurityGroup;

  /** The names of the CloudFormation exports this foundation creates, in order. */
  public readonly exportNames: string[];

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: ChronosTrainingFoundationProps = {}) {
    super(scope, id);

    const { environmentName, costCenter } = resolveSettings(this, props);
    warnUnknownCostCenter(this, costCenter);
    this.environmentName = environmentName;
    this.costCenter = costCenter;

    // The bucket is created first so that the network can deliver flow logs into it;
    // construct IDs, not creation order, determine logical IDs.
    this.trainingBucket = new TrainingBucket(this, 'Bucket', { ...props.bucketProps, environmentName });
    let flowLogDestination = props.networkProps?.flowLogDestination;
    if (flowLogDestination === undefined && props.flowLogs) {
      flowLogDestination = ec2.FlowLogDestination.toS3(this.trainingBucket.bucket, FLOW_LOGS_PREFIX);
      this.trainingBucket.addLifecycleRule({
        id: 'VpcFlowLogs', enabled: true, prefix: FLOW_LOGS_PREFIX, expiration: this.trainingBucket.logRetention,
      });
    }
    this.network = new TrainingNetwork(this, 'Network', { ...props.networkProps, flowLogDestination });
    this.instanceRole = new TrainingInstanceRole(this, 'InstanceRole', {
      ...props.instanceRoleProps,
      bucket: this.trainingBucket.bucket,
      environmentName,
    });
    this.egressSecurityGroup = new TrainingEgressSecurityGroup(this, 'SecurityGroup', {
      vpc: this.network.vpc,
      environmentName,
    });

    this.vpc = this.network.vpc;
    this.publicSubnet = this.network.publicSubnet;
    this.publicSubnets = this.network.publicSubnets;
    this.bucket = this.trainingBucket.bucket;
    this.role = this.instanceRole.role;
    this.instanceProfile = this.instanceRole.instanceProfile;
    this.securityGroup = this.egressSecurityGroup.securityGroup;
    this.connections = this.egressSecurityGroup.connections;

    const tags = Tags.of(this);
    tags.add(TAG_PROJECT, PROJECT_TAG_VALUE);
    tags.add(TAG_ENVIRONMENT, environmentName);
    tags.add(TAG_COST_CENTER, costCenter);
    tags.add(TAG_MANAGED_BY, MANAGED_BY_TAG_VALUE);

    const outputs: Record<string, [string, string]> = {
      [FoundationExports.VPC_ID]: [this.vpc.vpcId, 'VPC ID'],
      [FoundationExports.PUBLIC_SUBNET_ID]: [this.publicSubnet.subnetId, 'Public subnet ID'],
      [FoundationExports.S3_BUCKET_NAME]: [this.bucket.bucketName, 'S3 bucket name'],
      [FoundationExports.IAM_ROLE_NAME]: [this.role.roleName, 'IAM role name'],
      [FoundationExports.INSTANCE_PROFILE_NAME]: [this.instanceProfile.instanceProfileName, 'Instance profile name'],
      [FoundationExports.SECURITY_GROUP_ID]: [this.securityGroup.securityGroupId, 'Security group ID'],
      [FoundationExports.ENVIRONMENT]: [environmentName, 'Environment name'],
      [FoundationExports.COST_CENTER]: [costCenter, 'Cost center'],
      [FoundationExports.PUBLIC_SUBNET_IDS]: [Fn.join(',', this.publicSubnets.map(s => s.subnetId)), 'Public subnet IDs, one per zone'],
      [FoundationExports.AVAILABILITY_ZONES]: [Fn.join(',', this.publicSubnets.map(s => s.availabilityZone)),
        'Availability Zones of the public subnets'],
    };
    this.exportNames = FoundationExports.suffixes().map(suffix => {
      const [value, description] = outputs[suffix];
      const exportName = FoundationExports.exportName(environmentName, suffix);
      new CfnOutput(this, suffix, { value, description: `${description} (${environmentName})`, exportName });
      return exportName;
    });
  }

  /**
   * Lets `grantee` read (and list) the prefixes every environment shares:
   * `cached-datasets/`, `runtime/python-env/` and `runtime/scripts/`.
   *
   * @param grantee the principal, for example a data pipeline's role
   */
  public grantReadShared(grantee: iam.IGrantable): iam.Grant {
    return this.trainingBucket.grantReadShared(grantee);
  }

  /**
   * Lets `grantee` put and delete objects under the shared prefixes (no read or list).
   *
   * @param grantee the principal that uploads datasets or the runtime, for example a CI role
   */
  public grantWriteShared(grantee: iam.IGrantable): iam.Grant {
    return this.trainingBucket.grantWriteShared(grantee);
  }

  /**
   * Lets `grantee` read, write, delete and list under `{environmentName}/`.
   *
   * @param grantee the principal, for example an evaluation job's role
   */
  public grantReadWriteEnvironment(grantee: iam.IGrantable): iam.Grant {
    return this.trainingBucket.grantReadWriteEnvironment(grantee);
  }
}
