import { Annotations, CfnOutput, Duration, Fn, Tags } from 'aws-cdk-lib';
import type * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { ChronosTrainingFoundationBase } from './chronos-training-foundation-base';
import { FoundationExports } from './foundation-exports';
import { ChronosTrainingFoundationImportOptions, IChronosTrainingFoundation } from './foundation-reference';
import { ImportedChronosTrainingFoundation } from './imported-foundation';
import type { TrainingBatchQueue, TrainingBatchQueueOptions } from '../batch/training-batch-queue';
import { TrainingInstanceRole, TrainingInstanceRoleOptions } from '../compute/training-instance-role';
import { TrainingLaunchTemplate, TrainingLaunchTemplateOptions } from '../compute/training-launch-template';
import type { TrainingBudget, TrainingBudgetOptions } from '../guardrails/training-budget';
import type { TrainingRunReaper, TrainingRunReaperOptions } from '../guardrails/training-run-reaper';
import type { RunNotifications, RunNotificationsOptions } from '../keeper/run-notifications';
import type { TrainingRunKeeper, TrainingRunKeeperOptions } from '../keeper/training-run-keeper';
import { S3EndpointRestrictionOptions } from '../network/s3-endpoint-restriction';
import { TrainingEgressSecurityGroup, TrainingEgressSecurityGroupOptions } from '../network/training-egress-security-group';
import { TrainingNetwork, TrainingNetworkOptions } from '../network/training-network';
import { runNotificationsModule, trainingBatchQueueModule, trainingBudgetModule, trainingRunKeeperModule, trainingRunReaperModule } from '../private/lazy';
import { FLOW_LOGS_PREFIX } from '../private/prefixes';
import { resolveSettings } from '../private/settings';
import { MANAGED_BY_TAG_VALUE, PROJECT_TAG_VALUE, TAG_COST_CENTER, TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_PROJECT } from '../private/tags';
import { DEFAULT_RUN_LIFETIME, runLifetimeMinutes, warnUnknownCostCenter } from '../private/validation';
import { applyZeroIdleCostCheckerOnce } from '../private/zero-idle';
import { TrainingBucket, TrainingBucketOptions } from '../storage/training-bucket';

/**
 * Properties of a `ChronosTrainingFoundation`.
 *
 * One rule names them (docs/DESIGN.md, "The API: one way to do each thing"):
 * - a part the foundation always creates is configured by `<part>Props`, typed
 *   `<Construct>Options` (the construct's props less what the foundation supplies);
 * - a part you bring instead is given as its aws-cdk-lib interface (`vpc`,
 *   `bucket`), and its `<part>Props` is then an error;
 * - an opt-in part whose options include a required value is one prop named
 *   after the part, typed `<Construct>Options`: given, it is created (`budget`,
 *   `batch`);
 * - a part turned on or off with nothing required is a boolean named after the
 *   part (`flowLogs`, `clusterPlacementGroup`, `ssmParameters`, `launchTemplate`,
 *   `runReaper`, `runKeeper`, `s3EndpointRestriction`), with its `<part>Props` beside it where
 *   it has options; those props with the part turned off are an error;
 * - a value several parts share is one prop of the foundation (`maxRunLifetime`:
 *   the launch template's tag, the run reaper's default, the Batch job timeout),
 *   never an option of one part.
 */
export interface ChronosTrainingFoundationProps {
  /**
   * The environment name (for example `dev`, `stage`, `prod`): part of the bucket
   * name, the instance profile name, the export names and the `Environment` tag.
   * Lowercase letters, digits and hyphens, starting with a letter, at most 18 characters.
   *
   * @default - the `@chronos/training-infra:environment` context value (or the deprecated bare `environment`), else 'dev'
   */
  readonly environmentName?: string;

  /**
   * The `CostCenter` tag: the workload type, one of `collect`, `train` or `serve`
   * (other valid tag values are accepted with a warning).
   *
   * @default - the `@chronos/training-infra:costCenter` context value (or the deprecated bare `costCenter`), else 'train'
   */
  readonly costCenter?: string;

  /**
   * Whether every account-wide name the foundation creates carries the region,
   * so that the same environment can be deployed to a second region of the
   * account (where GPU capacity is): the instance profile
   * `ChronosTrainingInstanceProfile-{environmentName}-{region}` and the budget
   * `ChronosTraining-{environmentName}-{region}`, which then counts only this
   * region's costs. The bucket name carries the region already, and the export
   * and parameter names are regional. Needs a concrete region (`env`) in the stack.
   *
   * @default false - the names without the region, as in one region
   */
  readonly regionalNames?: boolean;

  /**
   * How long a training run may last, the one lifetime every part enforces. It
   * is the run agent's lifetime; the launch template stamps it, plus a margin of
   * 15 minutes for the boot, the agent's drain and its backstop, on instances as
   * the `MaxLifetimeHours` tag (in hours rounded up to 0.01: `1.75` for 90
   * minutes); the run reaper (`runReaper`) terminates instances older than their
   * tag, never trusting a tag above this plus the margin, or than this plus the
   * margin where the tag is missing or malformed; and it is the timeout of Batch
   * jobs (`batch`), whose agent drains before it. Whole minutes, from 15 minutes
   * (the reaper's schedule interval) to 14 days.
   *
   * @default Duration.hours(4) - a run lasts at most 4 hours
   */
  readonly maxRunLifetime?: Duration;

  // --- The parts the foundation always creates ---

  /**
   * Options of the network: VPC CIDR, subnet mask, Availability Zones. Not allowed with `vpc`.
   *
   * @default - a 10.0.0.0/16 VPC with a /24 public subnet in the region's first Availability Zone
   */
  readonly networkProps?: TrainingNetworkOptions;

  /**
   * Options of the bucket: log retention, artifact transition and expiration,
   * removal policy, recoverable outputs. Not allowed with `bucket`.
   *
   * @default - logs kept 14 days; artifacts to Standard-IA at 30 days and expired at 90; bucket retained
   */
  readonly bucketProps?: TrainingBucketOptions;

  /**
   * Options of the instance role: self-termination only, Session Manager.
   *
   * @default - instances may terminate only themselves; no Session Manager
   */
  readonly instanceRoleProps?: TrainingInstanceRoleOptions;

  /**
   * Options of the security group: HTTP egress for apt, all traffic within the
   * group for multi-node NCCL/EFA.
   *
   * @default - no ingress; egress TCP 443 only
   */
  readonly securityGroupProps?: TrainingEgressSecurityGroupOptions;

  // --- Bring your own ---

  /**
   * An existing VPC to use instead of creating one. It must have at least one
   * public subnet (with a route to an internet gateway); the training subnets
   * are all its public subnets. The foundation adds an S3 gateway endpoint on
   * their route tables unless `vpcHasS3Endpoint` is set, creates its security
   * group in the VPC, and tags only what it creates. Not allowed with
   * `networkProps`, `flowLogs` or `s3EndpointRestriction`.
   *
   * @default - a new `TrainingNetwork` from `networkProps`
   */
  readonly vpc?: ec2.IVpc;

  /**
   * Whether the given `vpc` already has an S3 gateway endpoint on its public
   * subnets' route tables (a second one on the same route table fails at
   * deploy time). Only with `vpc`.
   *
   * @default false - the foundation adds one
   */
  readonly vpcHasS3Endpoint?: boolean;

  /**
   * An existing bucket to use instead of creating one. The instance role and the
   * grants are scoped to the same prefixes as on a created bucket, with the KMS
   * permissions S3 needs when the bucket has an `encryptionKey`. The foundation
   * cannot add lifecycle rules to it (a warning says so): logs and artifacts do
   * not expire unless the bucket's owner adds rules. Not allowed with
   * `bucketProps` or `flowLogs`.
   *
   * @default - a new `TrainingBucket` from `bucketProps`
   */
  readonly bucket?: s3.IBucket;

  // --- Parts turned on or off ---

  /**
   * Whether to create the training launch template (IMDSv2 with a hop limit
   * of 2, terminate on shutdown, encrypted root volume, instance and volume
   * tags) and its export `ChronosTraining-{environmentName}-LaunchTemplateId`.
   *
   * @default true
   */
  readonly launchTemplate?: boolean;

  /**
   * Options of the launch template: instance type, AMI, root volume, spot,
   * user data, IMDS hop limit, the run agent (on by default, with the foundation's
   * bucket and `maxRunLifetime`; its `MaxLifetimeHours` tag is `maxRunLifetime` plus 15 minutes).
   * Not allowed with `launchTemplate: false`.
   *
   * @default - no instance type or AMI (given at launch), a 100 GiB root volume on
   * `/dev/xvda`, on-demand
   */
  readonly launchTemplateProps?: TrainingLaunchTemplateOptions;

  /**
   * Whether to deliver VPC flow logs (all traffic) into the training bucket under
   * `vpc-flow-logs/`, expired after the bucket's log retention. They are billed
   * per GB delivered: nothing while no instance runs. Not allowed with `vpc`
   * (the foundation does not change a VPC it does not own) nor with `bucket`
   * (it could not expire the logs there): add an `ec2.FlowLog` to
   * `foundation.vpc` for another destination.
   *
   * @default false
   */
  readonly flowLogs?: boolean;

  /**
   * Whether to create a cluster placement group (free) for multi-node jobs,
   * exported as `ChronosTraining-{environmentName}-PlacementGroupName`. All its
   * instances must be in one Availability Zone.
   *
   * @default false
   */
  readonly clusterPlacementGroup?: boolean;

  /**
   * Whether to write each export's value also to a standard (free) SSM String
   * parameter `/chronos-training/{environmentName}/{suffix}`. Other stacks read
   * a parameter without locking it, as an imported export is locked;
   * `ChronosTrainingFoundation.fromEnvironment` reads them.
   *
   * @default true
   */
  readonly ssmParameters?: boolean;

  /**
   * Whether to create a `TrainingRunReaper`: on a schedule (every 15 minutes by
   * default), instances of this environment that have lived longer than their
   * `MaxLifetimeHours` tag (at most `maxRunLifetime` plus 15 minutes), or than
   * `maxRunLifetime` plus 15 minutes where the tag is missing or malformed, are
   * terminated. Its function is a CDK asset (the account must
   * be bootstrapped).
   *
   * @default false
   */
  readonly runReaper?: boolean;

  /**
   * Options of the run reaper: schedule, dry run, log retention (its lifetime is
   * `maxRunLifetime`). Only with `runReaper: true`.
   *
   * @default - every 15 minutes, terminating, logs kept one year
   */
  readonly runReaperProps?: TrainingRunReaperOptions;

  /**
   * Whether to create a `TrainingRunKeeper`: a Python Lambda function, started by EC2's instance state changes
   * (EventBridge) and by its own one-time schedules (EventBridge Scheduler), that launches a run's next attempt
   * after a spot interruption as the run's policy says, waits for capacity, and publishes the run's end, with no
   * process of the user running. Nothing of it bills while idle. Its function is a CDK asset (the account must be
   * bootstrapped). It launches from the foundation's launch template only: `runKeeper: true` with
   * `launchTemplate: false` is an error, and without a launch template the default is false.
   *
   * @default true - unless `launchTemplate` is false
   */
  readonly runKeeper?: boolean;

  /**
   * Options of the run keeper: its log retention. Not allowed when the keeper is off.
   *
   * @default - logs kept one year
   */
  readonly runKeeperProps?: TrainingRunKeeperOptions;

  // --- Opt-in parts with required options ---

  /**
   * Creates a `TrainingBudget`: a monthly cost budget over this project's (and
   * environment's) tagged costs, with email notifications and optionally a
   * deny-RunInstances action.
   *
   * @default - no budget
   */
  readonly budget?: TrainingBudgetOptions;

  /**
   * Whether to replace the S3 gateway endpoint's allow-all policy so that S3
   * requests through it reach only the training bucket and, read-only, the
   * Amazon Linux 2023 repositories and the buckets of
   * `s3EndpointRestrictionProps`. Anything else instances fetch from S3 in this
   * region then fails. Not allowed with `vpc`: the foundation sets endpoint
   * policies only in a network it creates.
   *
   * @default false - the endpoint admits every bucket
   */
  readonly s3EndpointRestriction?: boolean;

  /**
   * What the restricted S3 endpoint admits besides the training bucket: more
   * read-only buckets, the Amazon Linux repositories. Only with
   * `s3EndpointRestriction: true`.
   *
   * @default - the training bucket and the Amazon Linux 2023 repositories
   */
  readonly s3EndpointRestrictionProps?: S3EndpointRestrictionOptions;

  /**
   * Creates `RunNotifications`: an SNS topic with these email subscriptions, told by an EventBridge rule when a run of
   * this environment ends (the end event the run keeper or the CLI publishes): the run, its state, the attempts, the
   * duration, the estimated cost and the `logs` command. Nothing bills while idle. Works with `runKeeper: false` too.
   *
   * @default - no notifications (the end event is still published; route it with a rule of your own)
   */
  readonly runNotifications?: RunNotificationsOptions;

  /**
   * Creates a `TrainingBatchQueue`: an AWS Batch job queue for GPU training jobs
   * on managed EC2 compute environments that scale to zero (nothing bills while
   * no job runs), in all the foundation's public subnets, with its security
   * group and bucket prefixes, and the exports and SSM parameters
   * `BatchJobQueueArn` and `BatchJobDefinitionArn` (and the multi-node ones with
   * `multiNode`). The job timeout is `maxRunLifetime`.
   *
   * @default - no Batch resources
   */
  readonly batch?: TrainingBatchQueueOptions;
}

/**
 * The whole persistent foundation of the Chronos training platform for one
 * environment: network (one public subnet per zone, one zone by default), bucket,
 * instance role and profile, egress-only security group, a launch template, the
 * four cost tags on every taggable resource it creates, CloudFormation exports
 * (`ChronosTraining-{environmentName}-*`, see `FoundationExports`) that the
 * launch script reads, and the same values as SSM parameters
 * (`/chronos-training/{environmentName}/*`). It can use an existing VPC or bucket
 * (`vpc`, `bucket`) instead of creating them. Opt-in guardrails: a run reaper
 * (`runReaper`), a budget (`budget`), a restricted S3 endpoint
 * (`s3EndpointRestriction`); and an AWS Batch queue (`batch`).
 *
 * Every resource it creates costs nothing while no instance runs, and a
 * `ZeroIdleCostChecker` fails synthesis if anything added to it would (one
 * checker: the foundation's own, or the `ChronosTrainingStack`'s that covers it).
 *
 * It is an `IChronosTrainingFoundation`: an `ec2.IConnectable` (the training
 * instances' security group) whose `grant*` methods give other principals
 * prefix-scoped access to the bucket (`grantReadShared`, `grantWriteShared`,
 * `grantReadWriteEnvironment`). `ChronosTrainingFoundation.fromEnvironment`
 * imports one deployed elsewhere.
 */
export class ChronosTrainingFoundation extends ChronosTrainingFoundationBase {
  /**
   * A foundation deployed by another stack or app, read from its SSM parameters
   * (`/chronos-training/{environmentName}/...`) at deploy time: synthesis needs
   * no AWS credentials. Grant, connect and launch against it as against a
   * foundation defined here. The foundation must have been deployed with
   * `ssmParameters` on (the default).
   *
   * @param scope the parent construct
   * @param id the construct id
   * @param environmentName the environment of the deployed foundation, for example 'dev'
   * @param options how many of its zones to use, its launch template and bucket key; see the options interface for defaults
   */
  public static fromEnvironment(scope: Construct, id: string, environmentName: string,
    options: ChronosTrainingFoundationImportOptions = {}): IChronosTrainingFoundation {
    return new ImportedChronosTrainingFoundation(scope, id, environmentName, options);
  }

  /** The environment name, after context defaults were applied. */
  public readonly environmentName: string;

  /** The cost center, after context defaults were applied. */
  public readonly costCenter: string;

  /** The VPC training instances run in. */
  public readonly vpc: ec2.IVpc;

  /** The public subnets, one per Availability Zone, in zone order (the first is the `PublicSubnetId` export). */
  public readonly publicSubnets: ec2.ISubnet[];

  /** The training bucket. */
  public readonly bucket: s3.IBucket;

  /** The role training instances assume (an `iam.IGrantable`: `otherBucket.grantRead(foundation.role)`). */
  public readonly role: iam.IRole;

  /** The instance profile `ChronosTrainingInstanceProfile-{environmentName}` that carries the role. */
  public readonly instanceProfile: iam.IInstanceProfile;

  /** The training instances' security group. */
  public readonly securityGroup: ec2.ISecurityGroup;

  /** The connections of the training instances' security group. */
  public readonly connections: ec2.Connections;

  /**
   * The customer managed key of the run secrets (`instanceRoleProps.secretsKey`); undefined: the AWS managed key
   * `aws/ssm`.
   */
  public readonly secretsKey?: kms.IKey;

  /** The training launch template; undefined with `launchTemplate: false`. */
  public readonly launchTemplate?: ec2.ILaunchTemplate;

  /**
   * The launch template's latest version number (`Fn::GetAtt LatestVersionNumber`), the version to launch, also
   * published as `LaunchTemplateVersion`. Undefined with `launchTemplate: false`.
   */
  public readonly launchTemplateVersion?: string;

  /** The cluster placement group; undefined without `clusterPlacementGroup`. */
  public readonly placementGroup?: ec2.IPlacementGroup;

  /** The network construct, with its S3 gateway endpoint; undefined with a given `vpc`. */
  public readonly network?: TrainingNetwork;

  /** The bucket construct, for `addLifecycleRule` and `logRetention`; undefined with a given `bucket`. */
  public readonly trainingBucket?: TrainingBucket;

  /** The run reaper: its function, schedule and dead-letter queue; undefined without `runReaper`. */
  public readonly runReaper?: TrainingRunReaper;

  /** The run keeper: its function, rule, schedule group and scheduler role; undefined when `runKeeper` is off. */
  public readonly runKeeper?: TrainingRunKeeper;

  /** The run notifications: their topic and rule; undefined without `runNotifications`. */
  public readonly runNotifications?: RunNotifications;

  /** The budget; undefined without `budget`. */
  public readonly budget?: TrainingBudget;

  /**
   * The AWS Batch queue construct: its compute environments, roles, log group and
   * `grantRegisterJobDefinition`; undefined without `batch`. (Job submission:
   * `grantSubmitBatchJob`, which an imported foundation has too.)
   */
  public readonly batchQueue?: TrainingBatchQueue;

  /** The Batch job queue (`batchQueue.jobQueue`); undefined without `batch`. */
  public readonly batchJobQueue?: batch.IJobQueue;

  /** The Batch job definition of single-node jobs (`batchQueue.jobDefinition`); undefined without `batch`. */
  public readonly batchJobDefinition?: batch.IJobDefinition;

  /** The Batch multi-node job queue (`batchQueue.multiNodeJobQueue`); undefined without `batch.multiNode`. */
  public readonly batchMultiNodeJobQueue?: batch.IJobQueue;

  /** The Batch multi-node job definition (`batchQueue.multiNodeJobDefinition`); undefined without `batch.multiNode`. */
  public readonly batchMultiNodeJobDefinition?: batch.IJobDefinition;

  /** The names of the CloudFormation exports this foundation creates, in order. */
  public readonly exportNames: string[];

  /** The names of the SSM parameters this foundation writes, in the order of `exportNames` (none with `ssmParameters: false`). */
  public readonly parameterNames: string[];

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

    checkContradictions(props);
    // One lifetime for every part, checked once here so the error names the foundation's prop.
    const maxRunLifetime = props.maxRunLifetime ?? DEFAULT_RUN_LIFETIME;
    runLifetimeMinutes('maxRunLifetime', maxRunLifetime);

    // The bucket is created first so that the network can deliver flow logs into it;
    // construct IDs, not creation order, determine logical IDs.
    if (props.bucket) {
      this.bucket = props.bucket;
      Annotations.of(this).addWarningV2('@chronos/training-infra:givenBucketWithoutLifecycleRules',
        `bucket: the foundation adds no lifecycle rules to a bucket it did not create: objects under ${environmentName}/ ` +
        '(logs, checkpoints, artifacts) never expire and incomplete multipart uploads are never aborted unless the bucket\'s ' +
        'owner adds rules (see TrainingBucket for the ones a created bucket gets)');
    } else {
      this.trainingBucket = new TrainingBucket(this, 'Bucket', { ...props.bucketProps, environmentName });
      this.bucket = this.trainingBucket.bucket;
    }
    let flowLogDestination: ec2.FlowLogDestination | undefined;
    if (props.flowLogs && this.trainingBucket) {
      flowLogDestination = ec2.FlowLogDestination.toS3(this.trainingBucket.bucket, FLOW_LOGS_PREFIX);
      this.trainingBucket.addLifecycleRule({
        id: 'VpcFlowLogs', enabled: true, prefix: FLOW_LOGS_PREFIX, expiration: this.trainingBucket.logRetention,
      });
    }
    if (props.vpc) {
      this.vpc = props.vpc;
      this.publicSubnets = givenPublicSubnets(props.vpc, props.vpcHasS3Endpoint ?? false);
      if (!props.vpcHasS3Endpoint) {
        // A child of the foundation, not of the VPC: the foundation owns (and tags) it.
        new ec2.GatewayVpcEndpoint(this, 'S3Endpoint', {
          vpc: props.vpc,
          service: ec2.GatewayVpcEndpointAwsService.S3,
          subnets: [{ subnets: this.publicSubnets }],
        });
      }
    } else {
      // Only the options a user sets here; flow logs come from `flowLogs`.
      const { vpcCidr, subnetCidrMask, maxAzs, availabilityZones } = props.networkProps ?? {};
      this.network = new TrainingNetwork(this, 'Network', { vpcCidr, subnetCidrMask, maxAzs, availabilityZones, flowLogDestination });
      this.vpc = this.network.vpc;
      this.publicSubnets = this.network.publicSubnets;
    }
    const instanceRole = new TrainingInstanceRole(this, 'InstanceRole', {
      ...props.instanceRoleProps,
      bucket: this.bucket,
      environmentName,
      regionalNames: props.regionalNames,
    });
    const securityGroup = new TrainingEgressSecurityGroup(this, 'SecurityGroup', {
      ...props.securityGroupProps,
      vpc: this.vpc,
      environmentName,
    });
    if (props.clusterPlacementGroup) {
      this.placementGroup = new ec2.PlacementGroup(this, 'PlacementGroup', { strategy: ec2.PlacementGroupStrategy.CLUSTER });
    }

    this.role = instanceRole.role;
    this.secretsKey = props.instanceRoleProps?.secretsKey;
    this.instanceProfile = instanceRole.instanceProfile;
    this.securityGroup = securityGroup.securityGroup;
    this.connections = securityGroup.connections;

    if (props.s3EndpointRestriction && this.network) {
      this.network.restrictS3Endpoint(this.bucket, props.s3EndpointRestrictionProps);
    }
    if (props.launchTemplate ?? true) {
      const trainingLaunchTemplate = new TrainingLaunchTemplate(this, 'LaunchTemplate', {
        ...props.launchTemplateProps,
        environmentName,
        costCenter,
        maxRunLifetime,
        instanceProfile: this.instanceProfile,
        securityGroup: this.securityGroup,
        // The run agent's bucket (docs/RUNS.md); a template without the agent takes none.
        bucket: (props.launchTemplateProps?.runAgent ?? true) ? this.bucket : undefined,
      });
      this.launchTemplate = trainingLaunchTemplate.launchTemplate;
      this.launchTemplateVersion = trainingLaunchTemplate.launchTemplateVersion;
    }
    if (props.runReaper) {
      const { TrainingRunReaper } = trainingRunReaperModule();
      this.runReaper = new TrainingRunReaper(this, 'Reaper', { ...props.runReaperProps, environmentName, maxRunLifetime });
    }
    if (props.runKeeper ?? this.launchTemplate !== undefined) {
      const { TrainingRunKeeper } = trainingRunKeeperModule();
      this.runKeeper = new TrainingRunKeeper(this, 'Keeper', {
        ...props.runKeeperProps,
        environmentName,
        bucket: this.bucket,
        launchTemplate: this.launchTemplate!,
        instanceRole: this.role,
        vpc: this.vpc,
        securityGroup: this.securityGroup,
      });
    }
    if (props.runNotifications) {
      const { RunNotifications } = runNotificationsModule();
      this.runNotifications = new RunNotifications(this, 'RunNotifications', { ...props.runNotifications, environmentName });
    }
    if (props.batch) {
      const { TrainingBatchQueue } = trainingBatchQueueModule();
      this.batchQueue = new TrainingBatchQueue(this, 'Batch', {
        ...props.batch,
        maxRunLifetime,
        environmentName,
        costCenter,
        vpc: this.vpc,
        subnets: this.publicSubnets,
        securityGroup: this.securityGroup,
        bucket: this.bucket,
      });
      this.batchJobQueue = this.batchQueue.jobQueue;
      this.batchJobDefinition = this.batchQueue.jobDefinition;
      this.batchMultiNodeJobQueue = this.batchQueue.multiNodeJobQueue;
      this.batchMultiNodeJobDefinition = this.batchQueue.multiNodeJobDefinition;
    }
    if (props.budget) {
      const { TrainingBudget } = trainingBudgetModule();
      this.budget = new TrainingBudget(this, 'Budget', { ...props.budget, environmentName, regionalNames: props.regionalNames });
    }
    // Nothing in this subtree may bill while idle: one checker, unless a scope above
    // (a ChronosTrainingStack, or the user's app) already applies one.
    applyZeroIdleCostCheckerOnce(this);

    const tags = Tags.of(this);
    tags.add(TAG_PROJECT, PROJECT_TAG_VALUE);
    tags.add(TAG_ENVIRONMENT, environmentName);
    tags.add(TAG_COST_CENTER, costCenter);
    tags.add(TAG_MANAGED_BY, MANAGED_BY_TAG_VALUE);

    const outputs: Record<string, [string, string]> = {
      [FoundationExports.VPC_ID]: [this.vpc.vpcId, 'VPC ID'],
      [FoundationExports.PUBLIC_SUBNET_ID]: [this.publicSubnets[0].subnetId, 'Public subnet ID'],
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
    if (this.launchTemplate && this.launchTemplateVersion) {
      outputs[FoundationExports.LAUNCH_TEMPLATE_ID] = [this.launchTemplate.launchTemplateId!, 'Launch template ID'];
      // The version a launch uses: CloudFormation never moves the default version ("AWS::EC2::LaunchTemplate",
      // CloudFormation reference, return values). It changes on each template change: read the parameter, do not
      // import the export (docs/DESIGN.md).
      outputs[FoundationExports.LAUNCH_TEMPLATE_VERSION] = [this.launchTemplateVersion,
        'Launch template version to launch (the latest; read the SSM parameter, do not import this export)'];
    }
    const suffixes = FoundationExports.suffixes().filter(suffix => suffix in outputs);
    const optional = (suffix: string, value: string, description: string) => {
      outputs[suffix] = [value, description];
      suffixes.push(suffix);
    };
    if (this.placementGroup) {
      optional(FoundationExports.PLACEMENT_GROUP_NAME, this.placementGroup.placementGroupName, 'Cluster placement group name');
    }
    if (this.batchQueue) {
      optional(FoundationExports.BATCH_JOB_QUEUE_ARN, this.batchQueue.jobQueue.jobQueueArn, 'Batch job queue ARN');
      optional(FoundationExports.BATCH_JOB_DEFINITION_ARN, this.batchQueue.jobDefinitionArnWithoutRevision,
        'Batch job definition ARN, without revision (the latest active one)');
      if (this.batchQueue.multiNodeJobQueue && this.batchQueue.multiNodeJobDefinition) {
        optional(FoundationExports.BATCH_MULTI_NODE_JOB_QUEUE_ARN, this.batchQueue.multiNodeJobQueue.jobQueueArn,
          'Batch multi-node job queue ARN');
        optional(FoundationExports.BATCH_MULTI_NODE_JOB_DEFINITION_ARN, this.batchQueue.multiNodeJobDefinitionArnWithoutRevision!,
          'Batch multi-node job definition ARN, without revision (the latest active one)');
      }
    }
    this.exportNames = suffixes.map(suffix => {
      const [value, description] = outputs[suffix];
      const exportName = FoundationExports.exportName(environmentName, suffix);
      new CfnOutput(this, suffix, { value, description: `${description} (${environmentName})`, exportName });
      return exportName;
    });

    // The same values as standard SSM parameters, which other stacks read without locking them.
    const writeParameters = props.ssmParameters ?? true;
    const parameters = writeParameters ? new Construct(this, 'Parameters') : undefined;
    this.parameterNames = !parameters ? [] : suffixes.map(suffix => {
      const [value, description] = outputs[suffix];
      const parameterName = FoundationExports.parameterName(environmentName, suffix);
      new ssm.StringParameter(parameters, suffix, {
        parameterName,
        stringValue: value,
        description: `${description} (${environmentName}), also exported as ${FoundationExports.exportName(environmentName, suffix)}`,
        tier: ssm.ParameterTier.STANDARD,
      });
      return parameterName;
    });
  }
}

// --- Props that contradict each other ---

/** Props that contradict each other (a given VPC or bucket, a part turned off) are synthesis errors, not silently ignored. */
function checkContradictions(props: ChronosTrainingFoundationProps): void {
  const contradictions: Array<[boolean, string]> = [
    [props.vpc !== undefined && props.networkProps !== undefined,
      'vpc and networkProps are both set: networkProps configures the network the foundation creates, and with vpc it creates none'],
    [props.vpc !== undefined && props.flowLogs === true,
      'vpc and flowLogs are both set: the foundation does not change a VPC it does not own; add flow logs where the VPC is defined'],
    [props.vpc === undefined && props.vpcHasS3Endpoint !== undefined,
      `vpcHasS3Endpoint ${props.vpcHasS3Endpoint} is set without vpc: it describes a given VPC (a created network always gets the endpoint)`],
    [props.vpc !== undefined && props.s3EndpointRestriction === true,
      'vpc and s3EndpointRestriction are both set: the foundation sets endpoint policies only in a network it creates; ' +
      'give the S3 endpoint of your VPC the policy S3EndpointRestrictionOptions describes where the VPC is defined'],
    [props.bucket !== undefined && props.bucketProps !== undefined,
      'bucket and bucketProps are both set: bucketProps configures the bucket the foundation creates, and with bucket it creates none'],
    [props.bucket !== undefined && props.flowLogs === true,
      'bucket and flowLogs are both set: the foundation could not expire flow logs in a bucket it does not own; ' +
      'add an ec2.FlowLog to foundation.vpc with the destination whose retention you manage'],
    [props.s3EndpointRestriction !== true && props.s3EndpointRestrictionProps !== undefined,
      's3EndpointRestrictionProps is set but s3EndpointRestriction is not true: s3EndpointRestrictionProps configures the ' +
      'endpoint policy the foundation sets with s3EndpointRestriction: true; set s3EndpointRestriction: true or remove s3EndpointRestrictionProps'],
    [props.runReaper !== true && props.runReaperProps !== undefined,
      'runReaperProps is set but runReaper is not true: runReaperProps configures the run reaper the foundation creates ' +
      'with runReaper: true; set runReaper: true or remove runReaperProps'],
    [props.runKeeper === true && props.launchTemplate === false,
      'runKeeper is true but launchTemplate is false: the run keeper launches only from the foundation\'s launch ' +
      'template; keep the launch template (the default) or set runKeeper: false'],
    [(props.runKeeper === false || (props.runKeeper === undefined && props.launchTemplate === false)) && props.runKeeperProps !== undefined,
      'runKeeperProps is set but the run keeper is off (runKeeper: false, or launchTemplate: false): runKeeperProps ' +
      'configures the run keeper the foundation creates; remove runKeeperProps or turn the keeper on'],
    [props.launchTemplate === false && props.launchTemplateProps !== undefined,
      'launchTemplateProps is set but launchTemplate is false: launchTemplateProps configures the launch template the ' +
      'foundation creates, and with launchTemplate: false it creates none; remove one of them'],
  ];
  const found = contradictions.filter(([contradicts]) => contradicts).map(([, message]) => message);
  if (found.length > 0) {
    throw new Error(found.join('; '));
  }
}

/** The public subnets of a given VPC, checked for what the foundation needs of them. */
function givenPublicSubnets(vpc: ec2.IVpc, hasS3Endpoint: boolean): ec2.ISubnet[] {
  const subnets = vpc.publicSubnets;
  if (subnets.length === 0) {
    throw new Error(`vpc ${vpc.node.path} has no public subnets: training instances need a public subnet (a route to an ` +
      'internet gateway and public IPs), since the foundation creates no NAT gateway');
  }
  if (!hasS3Endpoint && subnets.some(subnet => subnet.routeTable?.routeTableId === undefined)) {
    throw new Error(`vpc ${vpc.node.path}: a public subnet has no route table ID, so the S3 gateway endpoint cannot be ` +
      'attached to it; import the VPC with publicSubnetRouteTableIds, or set vpcHasS3Endpoint if it already has one');
  }
  return subnets;
}
