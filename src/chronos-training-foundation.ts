import { CfnOutput, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import {
  CONTEXT_COST_CENTER,
  CONTEXT_ENVIRONMENT,
  DEFAULT_COST_CENTER,
  DEFAULT_ENVIRONMENT,
  exportName,
  FLOW_LOGS_PREFIX,
  MANAGED_BY_TAG_VALUE,
  PROJECT_TAG_VALUE,
  TAG_COST_CENTER,
  TAG_ENVIRONMENT,
  TAG_MANAGED_BY,
  TAG_PROJECT,
  validateCostCenter,
  validateEnvironment,
} from './conventions';
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
  readonly environment?: string;

  /**
   * The `CostCenter` tag: the workload type, one of `collect`, `train` or `serve`
   * (other valid tag values are accepted with a warning).
   *
   * @default - the `costCenter` context value, else 'train'
   */
  readonly costCenter?: string;

  /**
   * Options of the network (VPC CIDR, subnet mask, Availability Zone).
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
 * exports (`ChronosTraining-{environment}-*`) that the launch script reads.
 *
 * Every resource it creates costs nothing while no instance runs.
 */
export class ChronosTrainingFoundation extends Construct {
  /** The environment name, after context defaults were applied. */
  public readonly environment: string;

  /** The cost center, after context defaults were applied. */
  public readonly costCenter: string;

  /** The VPC, public subnet and S3 gateway endpoint. */
  public readonly network: TrainingNetwork;

  /** The training bucket. */
  public readonly bucket: TrainingBucket;

  /** The instance role and instance profile. */
  public readonly instanceRole: TrainingInstanceRole;

  /** The egress-only security group. */
  public readonly securityGroup: TrainingEgressSecurityGroup;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: ChronosTrainingFoundationProps = {}) {
    super(scope, id);

    this.environment = validateEnvironment(
      props.environment ?? this.node.tryGetContext(CONTEXT_ENVIRONMENT) ?? DEFAULT_ENVIRONMENT);
    this.costCenter = validateCostCenter(this,
      props.costCenter ?? this.node.tryGetContext(CONTEXT_COST_CENTER) ?? DEFAULT_COST_CENTER);
    const environment = this.environment;

    // The bucket is created first so that the network can deliver flow logs into it;
    // construct IDs, not creation order, determine logical IDs.
    this.bucket = new TrainingBucket(this, 'Bucket', { ...props.bucketProps, environment });
    let flowLogDestination = props.networkProps?.flowLogDestination;
    if (flowLogDestination === undefined && props.flowLogs) {
      flowLogDestination = ec2.FlowLogDestination.toS3(this.bucket.bucket, FLOW_LOGS_PREFIX);
      this.bucket.addLogExpiration('VpcFlowLogs', FLOW_LOGS_PREFIX);
    }
    this.network = new TrainingNetwork(this, 'Network', { ...props.networkProps, flowLogDestination });
    this.instanceRole = new TrainingInstanceRole(this, 'InstanceRole', {
      ...props.instanceRoleProps,
      bucket: this.bucket.bucket,
      environment,
    });
    this.securityGroup = new TrainingEgressSecurityGroup(this, 'SecurityGroup', {
      vpc: this.network.vpc,
      environment,
    });

    const tags = Tags.of(this);
    tags.add(TAG_PROJECT, PROJECT_TAG_VALUE);
    tags.add(TAG_ENVIRONMENT, environment);
    tags.add(TAG_COST_CENTER, this.costCenter);
    tags.add(TAG_MANAGED_BY, MANAGED_BY_TAG_VALUE);

    const outputs: Array<[string, string, string]> = [
      ['VPCId', this.network.vpc.vpcId, 'VPC ID'],
      ['PublicSubnetId', this.network.publicSubnet.subnetId, 'Public subnet ID'],
      ['S3BucketName', this.bucket.bucket.bucketName, 'S3 bucket name'],
      ['IAMRoleName', this.instanceRole.role.roleName, 'IAM role name'],
      ['InstanceProfileName', this.instanceRole.instanceProfile.instanceProfileName, 'Instance profile name'],
      ['SecurityGroupId', this.securityGroup.securityGroup.securityGroupId, 'Security group ID'],
      ['Environment', environment, 'Environment name'],
      ['CostCenter', this.costCenter, 'Cost center'],
    ];
    for (const [name, value, description] of outputs) {
      new CfnOutput(this, name, {
        value,
        description: `${description} (${environment})`,
        exportName: exportName(environment, name),
      });
    }
  }
}
