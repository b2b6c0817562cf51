import { Aspects, CfnOutput, Duration, Tags } from 'aws-cdk-lib';
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
import { S3EndpointRestriction } from './s3-endpoint-restriction';
import { TrainingBucket, TrainingBucketOptions } from './training-bucket';
import { TrainingBudget, TrainingBudgetOptions } from './training-budget';
import { TrainingEgressSecurityGroup } from './training-egress-security-group';
import { TrainingInstanceRole, TrainingInstanceRoleOptions } from './training-instance-role';
import { TrainingLaunchTemplate, TrainingLaunchTemplateOptions } from './training-launch-template';
import { TrainingNetwork, TrainingNetworkProps } from './training-network';
import { TrainingRunReaper } from './training-run-reaper';
import { ZeroIdleCostChecker } from './zero-idle-cost-checker';

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

  /**
   * Whether to create the training launch template (IMDSv2, terminate on
   * shutdown, encrypted root volume, instance and volume tags) and its export
   * `ChronosTraining-{environmentName}-LaunchTemplateId`.
   *
   * @default true
   */
  readonly createLaunchTemplate?: boolean;

  /**
   * Options of the launch template (instance type, AMI, root volume, spot, lifetime tag, user data).
   *
   * @default - no instance type or AMI (given at launch), a 100 GiB root volume on
   * `/dev/xvda`, on-demand, `MaxLifetimeHours=4`
   */
  readonly launchTemplateProps?: TrainingLaunchTemplateOptions;

  /**
   * Creates a `TrainingRunReaper`: every 15 minutes, instances of this environment
   * that have lived longer than their `MaxLifetimeHours` tag, or than this
   * duration where the tag is missing or malformed, are terminated. Its function
   * is a CDK asset (the account must be bootstrapped).
   *
   * @default - no reaper
   */
  readonly maxRunLifetime?: Duration;

  /**
   * Creates a `TrainingBudget`: a monthly cost budget over this project's (and
   * environment's) tagged costs, with email notifications and optionally a
   * deny-RunInstances action.
   *
   * @default - no budget
   */
  readonly budget?: TrainingBudgetOptions;

  /**
   * Replaces the S3 gateway endpoint's allow-all policy so that S3 requests
   * through it reach only the training bucket and, read-only, the Amazon Linux
   * 2023 repositories and the buckets named here. Anything else instances fetch
   * from S3 in this region then fails (see `S3EndpointRestriction`).
   *
   * @default - the endpoint admits every bucket
   */
  readonly restrictS3Endpoint?: S3EndpointRestriction;
}

/**
 * The whole persistent foundation of the Chronos training platform for one
 * environment: network, bucket, instance role and profile, egress-only security
 * group, a launch template, the four cost tags on every taggable resource, and
 * CloudFormation exports (`ChronosTraining-{environmentName}-*`, see
 * `FoundationExports`) that the launch script reads: the eight core exports and
 * `LaunchTemplateId`. Opt-in guardrails: a run reaper (`maxRunLifetime`), a
 * budget (`budget`), a restricted S3 endpoint (`restrictS3Endpoint`).
 *
 * Every resource it creates costs nothing while no instance runs, and a
 * `ZeroIdleCostChecker` fails synthesis if anything added to it would.
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

  /** The public subnet training instances are launched into. */
  public readonly publicSubnet: ec2.ISubnet;

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

  /** The launch template of training instances; undefined with `createLaunchTemplate: false`. */
  public readonly launchTemplate?: TrainingLaunchTemplate;

  /** The run reaper; undefined without `maxRunLifetime`. */
  public readonly reaper?: TrainingRunReaper;

  /** The budget; undefined without `budget`. */
  public readonly budget?: TrainingBudget;

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
    this.bucket = this.trainingBucket.bucket;
    this.role = this.instanceRole.role;
    this.instanceProfile = this.instanceRole.instanceProfile;
    this.securityGroup = this.egressSecurityGroup.securityGroup;
    this.connections = this.egressSecurityGroup.connections;

    if (props.restrictS3Endpoint) {
      this.network.restrictS3Endpoint(this.bucket, props.restrictS3Endpoint);
    }
    if (props.createLaunchTemplate ?? true) {
      this.launchTemplate = new TrainingLaunchTemplate(this, 'LaunchTemplate', {
        ...props.launchTemplateProps,
        environmentName,
        costCenter,
        instanceProfile: this.instanceProfile,
        securityGroup: this.securityGroup,
      });
    } else if (props.launchTemplateProps) {
      throw new Error('launchTemplateProps is set but createLaunchTemplate is false: remove one of them');
    }
    if (props.maxRunLifetime) {
      this.reaper = new TrainingRunReaper(this, 'Reaper', { environmentName, maxRunLifetime: props.maxRunLifetime });
    }
    if (props.budget) {
      this.budget = new TrainingBudget(this, 'Budget', { ...props.budget, environmentName });
    }
    // Nothing in this subtree may bill while idle (the stack applies one to itself too;
    // a resource checked twice is reported once).
    Aspects.of(this).add(new ZeroIdleCostChecker());

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
    };
    if (this.launchTemplate) {
      outputs[FoundationExports.LAUNCH_TEMPLATE_ID] = [this.launchTemplate.launchTemplateId, 'Launch template ID'];
    }
    this.exportNames = FoundationExports.suffixes().filter(suffix => suffix in outputs).map(suffix => {
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
