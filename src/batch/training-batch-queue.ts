import { Duration, RemovalPolicy, Size, SizeRoundingBehavior, Tags, Token } from 'aws-cdk-lib';
import type * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { grantBatchSubmit, jobDefinitionArnWithoutRevision, jobDefinitionResources } from './batch-grants';
import { createExecutionRole, createInstanceRole, createJobRole, inRegion } from './batch-roles';
import { skipCheckov } from '../private/compliance';
import { gpuInstanceShape, hasNoNvidiaGpu, wholeInstanceMemoryMiB } from '../private/gpu-instance-types';
import { assertPrincipalGranted } from '../private/grants';
import { encryptedRootVolume, rootVolumeGiB, tagLaunchedResources } from '../private/launch-templates';
import { awsBatch, awsEcs, awsLogs } from '../private/lazy';
import {
  BATCH_MANAGED_BY, MANAGED_BY_TAG_VALUE, PROJECT_TAG_VALUE, TAG_COST_CENTER, TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_PROJECT,
} from '../private/tags';
import { validateCostCenter, validateEnvironment } from '../private/validation';

/**
 * The single-GPU instance types a `TrainingBatchQueue` launches by default, one
 * NVIDIA GPU with 24 GiB each: g6 (L4) first-choice on price, g5 (A10G) a second
 * capacity pool with more memory bandwidth; 4, 8 and 16 vCPUs. The dearest per
 * vCPU-hour of them is g5.xlarge, which sets the `maxvCpus` ceiling; their prices,
 * dated, are in docs/BATCH.md ("Costs").
 */
const DEFAULT_INSTANCE_TYPES = ['g6.xlarge', 'g6.2xlarge', 'g6.4xlarge', 'g5.xlarge', 'g5.2xlarge', 'g5.4xlarge'];

/** Batch's limits on `jobStateTimeLimitActions.maxTimeSeconds` (CreateJobQueue API reference: 600 to 86,400). */
const MIN_RUNNABLE_SECONDS = 600;
const MAX_RUNNABLE_SECONDS = 86_400;

/**
 * Batch's limit on `UpdatePolicy.jobExecutionTimeoutMinutes`: 1 to 7,200 in the current API reference
 * (https://docs.aws.amazon.com/batch/latest/APIReference/API_UpdatePolicy.html; older copies of the page say 360).
 */
const MAX_UPDATE_TIMEOUT_MINUTES = 7200;

/**
 * How long the ECS agent of Batch's instances waits between SIGTERM and SIGKILL when it stops a job's container
 * (`ECS_CONTAINER_STOP_TIMEOUT`, default 30 s: ECS API Reference, ContainerDefinition `stopTimeout`, which falls back
 * to it on EC2): two minutes, a spot interruption notice's lead, so that the run agent's drain can use them.
 */
export const BATCH_CONTAINER_STOP_TIMEOUT_SECONDS = 120;

/**
 * How long before the job timeout the run agent's own lifetime ends (`CHRONOS_MAX_RUN_LIFETIME_SECONDS`), so that it
 * drains (final checkpoint, status) before Batch stops the job: 5 minutes, or half the timeout when that is shorter.
 */
const BATCH_DRAIN_MARGIN_SECONDS = 300;

/** A compute environment takes at most five security groups (batch/latest/userguide/mnp-ce.html). */
const MAX_SECURITY_GROUPS = 5;

/** The ECS GPU AMIs (ECS_AL2_NVIDIA, ECS_AL2023_NVIDIA) boot from /dev/xvda. */
const ROOT_DEVICE_NAME = '/dev/xvda';

/** Whole GiB of the ECS-optimized AL2023 AMI's root snapshot (30 GiB, U), the smallest root volume allowed. */
const MIN_ROOT_VOLUME_GIB = 30;

/**
 * Multi-node parallel (MNP) jobs of a `TrainingBatchQueue`: a second queue with
 * an on-demand compute environment in one subnet (one Availability Zone) and one
 * cluster placement group, and a `MultiNodeJobDefinition` of `numNodes` nodes.
 */
export interface TrainingBatchQueueMultiNodeOptions {
  /** Nodes of each multi-node job, at least 2. */
  readonly numNodes: number;

  /**
   * The instance type of every node (Batch runs all nodes of an MNP job on one type),
   * for example `ec2.InstanceType.of(ec2.InstanceClass.G6, ec2.InstanceSize.XLARGE12)`.
   */
  readonly instanceType: ec2.InstanceType;

  /**
   * The multi-node compute environment's vCPU ceiling. Batch runs one node per
   * instance, so one job needs `numNodes` whole instances: at least `numNodes` × the
   * instance type's vCPUs (checked at synthesis for the instance types the library
   * knows, else `numNodes` × `vcpusPerNode`).
   */
  readonly maxvCpus: number;

  /**
   * GPUs each node's container reserves (a node has its instance to itself).
   *
   * @default - all the instance type's GPUs where the library knows the type, else the single-node job's `gpus`
   */
  readonly gpusPerNode?: number;

  /**
   * vCPUs each node's container reserves.
   *
   * @default - all the instance type's vCPUs where the library knows the type, else the single-node job's `vcpus`
   */
  readonly vcpusPerNode?: number;

  /**
   * Memory each node's container reserves.
   *
   * @default - the instance type's memory less 5% (what Batch recommends leaving to the ECS
   * agent and the system) where the library knows the type, else the single-node job's `memory`
   */
  readonly memoryPerNode?: Size;

  /**
   * The subnet (and so the one Availability Zone) of the multi-node compute
   * environment; one of the queue's `subnets`.
   *
   * @default - the first of `subnets`
   */
  readonly subnet?: ec2.ISubnet;
}

/**
 * Options of a `TrainingBatchQueue` that a foundation user sets (the foundation
 * supplies the environment, cost center, network, security group and bucket).
 */
export interface TrainingBatchQueueOptions {
  /**
   * The training image, for example `ecs.ContainerImage.fromEcrRepository(repo, 'v1')`.
   * Bake the dependencies into it: a multi-node job's containers reach S3 but not the internet.
   */
  readonly image: ecs.ContainerImage;

  /**
   * The vCPU ceiling of each compute environment, which caps what the queue can
   * spend per hour: at most `maxvCpus` × the dearest per-vCPU-hour price of
   * `instanceTypes` (g5.xlarge for the defaults; docs/BATCH.md has the prices,
   * dated), plus at most one instance, which Batch may add
   * above the ceiling with the capacity-oriented allocation strategies. With `spot`
   * and `onDemandFallback`, each of the two environments has this ceiling.
   *
   * @default 32
   */
  readonly maxvCpus?: number;

  /**
   * The GPU instance types Batch may launch.
   *
   * @default - g6.xlarge, g6.2xlarge, g6.4xlarge, g5.xlarge, g5.2xlarge and g5.4xlarge (one 24 GiB GPU each)
   */
  readonly instanceTypes?: ec2.InstanceType[];

  /**
   * GPUs a job reserves.
   *
   * @default 1
   */
  readonly gpus?: number;

  /**
   * vCPUs a job reserves (the smallest default instance type has 4).
   *
   * @default 4
   */
  readonly vcpus?: number;

  /**
   * Memory a job reserves (the smallest default instance types have 16 GiB, of which
   * the ECS agent and the OS keep about 1 GiB).
   *
   * @default Size.gibibytes(14)
   */
  readonly memory?: Size;

  /**
   * The container's command (overridable at `SubmitJob`).
   *
   * @default - the image's CMD
   */
  readonly command?: string[];

  /**
   * Environment variables of the container (plain values: no secrets), besides
   * the three the queue sets for the run agent (docs/RUNS.md, "AWS Batch"):
   * `CHRONOS_BUCKET` (the training bucket's name), `CHRONOS_ENVIRONMENT` (the
   * environment name) and `CHRONOS_MAX_RUN_LIFETIME_SECONDS` (the agent's
   * lifetime, from `maxRunLifetime`). The first two are the only bucket and
   * prefix the job role reaches, and the third must end before the job timeout,
   * so setting any of them here is an error.
   *
   * @default - only `CHRONOS_BUCKET`, `CHRONOS_ENVIRONMENT` and `CHRONOS_MAX_RUN_LIFETIME_SECONDS`
   */
  readonly containerEnvironment?: { [key: string]: string };

  /**
   * Attempts of a job, 1 to 10. Only attempts ended by the loss of their
   * instance (`Host EC2*`: a reclaimed spot instance) are retried; any other
   * failure ends the job.
   *
   * @default 3
   */
  readonly retryAttempts?: number;

  /**
   * How long a job may stay RUNNABLE because no compute environment can place it
   * (insufficient capacity, a maximum vCPU count below what it asks, or no instance
   * type that fits) before the queue cancels it, so that it does not block the jobs
   * behind it. 10 minutes to 24 hours.
   *
   * @default Duration.minutes(30)
   */
  readonly maxRunnableTime?: Duration;

  /**
   * How long the job log group keeps its logs.
   *
   * @default logs.RetentionDays.TWO_WEEKS
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Whether the queue tries spot instances first (a spot compute environment
   * ordered first, allocation `SPOT_PRICE_CAPACITY_OPTIMIZED`).
   *
   * @default false
   */
  readonly spot?: boolean;

  /**
   * Whether the queue has an on-demand compute environment (`BEST_FIT_PROGRESSIVE`):
   * with `spot`, ordered after the spot one as a fallback; without `spot`, the only
   * one. `false` with `spot` makes a spot-only queue.
   *
   * @default true
   */
  readonly onDemandFallback?: boolean;

  /**
   * Size of the encrypted gp3 root volume of Batch's instances (images and their
   * layers are stored there): a whole number of GiB from 30 to 16384.
   *
   * @default Size.gibibytes(100)
   */
  readonly rootVolumeSize?: Size;

  /**
   * More security groups for the compute environments, besides `securityGroup`
   * (at most five in all, with the multi-node group on the multi-node environment).
   *
   * @default - none
   */
  readonly additionalSecurityGroups?: ec2.ISecurityGroup[];

  /**
   * Adds a multi-node queue, compute environment and job definition.
   *
   * @default - no multi-node jobs
   */
  readonly multiNode?: TrainingBatchQueueMultiNodeOptions;

  /**
   * Whether Batch's instances have detailed (1-minute) CloudWatch monitoring
   * (their launch template's `Monitoring`). It is billed per metric only while
   * an instance runs, nothing while the queue is empty, and organisations whose
   * controls require it (the AWS Config rule
   * `ec2-instance-detailed-monitoring-enabled`) need it; `false` leaves basic
   * (5-minute) monitoring, which is free.
   *
   * @default true
   */
  readonly detailedMonitoring?: boolean;
}

/**
 * Properties of a `TrainingBatchQueue`.
 */
export interface TrainingBatchQueueProps extends TrainingBatchQueueOptions {
  /**
   * How long one run may live: the job definitions' timeout (Batch terminates an
   * attempt that runs longer; at least 60 seconds); the run agent's lifetime
   * (`CHRONOS_MAX_RUN_LIFETIME_SECONDS`) is this less 5 minutes (or half of it,
   * when that is shorter), so that the agent drains before Batch stops the job;
   * and how long a deploy that
   * updates a compute environment's infrastructure lets running jobs finish before
   * it replaces their instances (the update policy's `jobExecutionTimeoutMinutes`,
   * at most 7,200 minutes, with `terminateJobsOnUpdate` false). Use the same
   * lifetime as runs launched with the launch template.
   *
   * @default Duration.hours(4)
   */
  readonly maxRunLifetime?: Duration;

  /** The environment name: part of the resource names, the `Environment` tag and the bucket prefix jobs may write. */
  readonly environmentName: string;

  /** The `CostCenter` tag of the resources, and of the instances and volumes Batch launches. */
  readonly costCenter: string;

  /** The VPC of the compute environments. */
  readonly vpc: ec2.IVpc;

  /**
   * The public subnets the compute environments launch instances in (all zones
   * for capacity). They must map public IPs on launch: with no NAT gateway, the
   * ECS agent reaches the ECS endpoint through the instance's public IP.
   */
  readonly subnets: ec2.ISubnet[];

  /** The security group of Batch's instances (the foundation's egress-only group). */
  readonly securityGroup: ec2.ISecurityGroup;

  /** The training bucket: jobs read its shared prefixes and read and write `{environmentName}/`. */
  readonly bucket: s3.IBucket;
}

/**
 * An AWS Batch job queue for GPU training jobs that costs nothing while empty:
 * managed EC2 compute environments with `minvCpus` 0 (Batch terminates idle
 * instances; an ECS cluster is free), optionally spot first with an on-demand
 * fallback, the ECS GPU AMI (Amazon Linux 2023 NVIDIA, updated to the latest
 * version on infrastructure updates), a job definition with a run timeout,
 * spot-interruption retries and logs, and three roles:
 *
 * - the container instance role: the ECS agent's actions, narrowed to this
 *   queue's clusters, the image pulls and its log group;
 * - the job role: the training bucket's shared prefixes (read) and
 *   `{environmentName}/` (read-write), nothing else (no EC2);
 * - the execution role: the job image and the log group.
 *
 * Containers are not isolated from their instance. Single-node jobs run with ECS
 * `host` networking, so a container reaches the instance metadata service like
 * the host, and with it the container instance role's credentials: a job can do
 * what the job role and the instance role allow (ECS agent, image pull and log
 * actions on this queue's resources), not the job role alone. Multi-node
 * containers (`awsvpc`) have their own network interface.
 *
 * Instances carry `Project`, `Environment`, `CostCenter` and `ManagedBy=chronos-batch`
 * (instances and their volumes); the run reaper never terminates them.
 * Names: queue `ChronosTraining-{env}-Batch`, job definition
 * `ChronosTraining-{env}-Training` (one queue per environment and region).
 *
 * Multi-node jobs (`multiNode`) run in their own queue, on on-demand instances in
 * one subnet and a cluster placement group, with a security group that allows
 * all traffic among its members. Their containers use `awsvpc` networking: each
 * gets its own network interface with no public IP, so they reach S3 (through the
 * gateway endpoint) and each other, but not the internet or other AWS APIs.
 */
export class TrainingBatchQueue extends Construct {
  /** The job queue: this construct's `node.defaultChild`. */
  public readonly jobQueue: batch.IJobQueue;

  /** The job queue's name, `ChronosTraining-{environmentName}-Batch`. */
  public readonly jobQueueName: string;

  /** The single-node job definition. */
  public readonly jobDefinition: batch.IJobDefinition;

  /** The job definition's name, `ChronosTraining-{environmentName}-Training` (submit by name: the latest revision). */
  public readonly jobDefinitionName: string;

  /**
   * The job definition's ARN without its revision, `arn:{partition}:batch:{region}:{account}:job-definition/{jobDefinitionName}`:
   * SubmitJob takes it for the latest ACTIVE revision, so it stays valid across updates
   * (`jobDefinition.jobDefinitionArn` names the revision of this deployment).
   */
  public readonly jobDefinitionArnWithoutRevision: string;

  /** The compute environments of the job queue, in the queue's order (spot first when there is one). */
  public readonly computeEnvironments: batch.IManagedEc2EcsComputeEnvironment[];

  /** The multi-node job queue (only with `multiNode`). */
  public readonly multiNodeJobQueue?: batch.IJobQueue;

  /** The multi-node job definition (only with `multiNode`). */
  public readonly multiNodeJobDefinition?: batch.IJobDefinition;

  /** The multi-node job definition's ARN without its revision, as `jobDefinitionArnWithoutRevision` (only with `multiNode`). */
  public readonly multiNodeJobDefinitionArnWithoutRevision?: string;

  /** The multi-node compute environment (only with `multiNode`). */
  public readonly multiNodeComputeEnvironment?: batch.IManagedEc2EcsComputeEnvironment;

  /** The security group that lets the nodes of multi-node jobs reach each other (only with `multiNode`). */
  public readonly multiNodeSecurityGroup?: ec2.ISecurityGroup;

  /** The cluster placement group of the multi-node compute environment (only with `multiNode`). */
  public readonly placementGroup?: ec2.IPlacementGroup;

  /** The role training containers run with. */
  public readonly jobRole: iam.IRole;

  /** The role that pulls the job image and writes the job logs. */
  public readonly executionRole: iam.IRole;

  /** The role of Batch's instances (the ECS agent). */
  public readonly instanceRole: iam.IRole;

  /** The launch template Batch copies for its instances. */
  public readonly launchTemplate: ec2.ILaunchTemplate;

  /** The log group of the jobs' output. */
  public readonly logGroup: logs.ILogGroup;

  /** The environment of the queue. */
  public readonly environmentName: string;

  private readonly jobQueues: batch.IJobQueue[];
  private readonly jobDefinitionNames: string[];

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingBatchQueueProps) {
    super(scope, id);
    const batch = awsBatch();
    const ecs = awsEcs();
    const logs = awsLogs();
    const environmentName = validateEnvironment(props.environmentName, 'environmentName');
    const costCenter = validateCostCenter(props.costCenter);
    const settings = validate(props);
    this.environmentName = environmentName;
    const prefix = `ChronosTraining-${environmentName}`;
    this.jobQueueName = `${prefix}-Batch`;
    this.jobDefinitionName = `${prefix}-Training`;
    this.jobDefinitionArnWithoutRevision = jobDefinitionArnWithoutRevision(this, this.jobDefinitionName);
    const multiNodeDefinitionName = `${prefix}-MultiNode`;

    const useOnDemand = props.onDemandFallback ?? true;
    const environments: Array<{ id: string; name: string; spot: boolean }> = [
      ...(props.spot ? [{ id: 'Spot', name: `${prefix}-Batch-Spot`, spot: true }] : []),
      ...(useOnDemand ? [{ id: 'OnDemand', name: `${prefix}-Batch-OnDemand`, spot: false }] : []),
    ];
    const multiNodeEnvironmentName = `${prefix}-Batch-MultiNode`;

    const logGroup = new logs.LogGroup(this, 'LogGroup', {
      logGroupName: `/chronos-training/${environmentName}/batch`,
      retention: props.logRetention ?? logs.RetentionDays.TWO_WEEKS,
      // Job output belongs in the bucket; these logs are operational.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    skipCheckov(logGroup.node.defaultChild as logs.CfnLogGroup, 'CKV_AWS_158',
      'Encrypted by CloudWatch Logs by default; a customer managed KMS key would bill every month while idle');
    this.logGroup = logGroup;

    const instanceRole = createInstanceRole(this, 'InstanceRole', environmentName,
      [...environments.map(e => e.name), ...(props.multiNode ? [multiNodeEnvironmentName] : [])], logGroup);
    this.instanceRole = instanceRole;
    this.jobRole = createJobRole(this, 'JobRole', environmentName, props.bucket);
    this.executionRole = createExecutionRole(this, 'ExecutionRole', environmentName);

    const ownTags: Record<string, string> = {
      [TAG_PROJECT]: PROJECT_TAG_VALUE,
      [TAG_ENVIRONMENT]: environmentName,
      [TAG_COST_CENTER]: costCenter,
      [TAG_MANAGED_BY]: BATCH_MANAGED_BY,
    };
    this.launchTemplate = batchLaunchTemplate(this, environmentName, settings.rootVolumeSize, ownTags, props.detailedMonitoring ?? true);

    const securityGroups = [props.securityGroup, ...(props.additionalSecurityGroups ?? [])];
    const computeEnvironment = (ceId: string, name: string, spot: boolean, extra: Partial<batch.ManagedEc2EcsComputeEnvironmentProps>) => {
      const ce = new batch.ManagedEc2EcsComputeEnvironment(this, ceId, {
        computeEnvironmentName: name,
        vpc: props.vpc,
        securityGroups,
        vpcSubnets: { subnets: props.subnets },
        instanceTypes: settings.instanceTypes,
        // Only the GPU types given: no 'optimal' (C4, M4, R4) next to them.
        useOptimalInstanceClasses: false,
        images: [{ imageType: batch.EcsMachineImageType.ECS_AL2023_NVIDIA }],
        instanceRole,
        launchTemplate: this.launchTemplate,
        minvCpus: 0,
        maxvCpus: settings.maxvCpus,
        spot,
        // Capacity-oriented: the spot pools least likely to be interrupted, then the cheapest on-demand types
        // that have capacity (AllocationStrategy docs in aws-cdk-lib; batch/latest/userguide/allocation-strategies.html).
        allocationStrategy: spot ? batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED : batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
        // Newer ECS GPU AMIs on infrastructure updates: "AWS Batch doesn't upgrade the AMIs ... after it's created"
        // unless this is true (AWS::Batch::ComputeEnvironment ComputeResources, CloudFormation reference).
        updateToLatestImageVersion: true,
        // A deploy that updates the infrastructure lets running jobs finish for up to the run lifetime (default 30
        // minutes would cut a training run short) instead of terminating them (UpdatePolicy, AWS Batch API Reference).
        updateTimeout: Duration.minutes(settings.updateTimeoutMinutes),
        terminateOnUpdate: false,
        ...extra,
      });
      // The instances' tags (ComputeResources.Tags, updated in place): the cost tags and ManagedBy=chronos-batch,
      // above the ManagedBy=CDK and any app or stack tag an enclosing Tags.of(...) gives (priority 100).
      for (const [key, value] of Object.entries(ownTags)) {
        ce.tags.setTag(key, value, 300);
      }
      withoutTopLevelTags(ce.node.defaultChild as batch.CfnComputeEnvironment);
      // The L2 gives Batch only the template's ID, so Batch would keep the version it first copied. The
      // template's latest version number makes a template change an update of the compute environment
      // (AWS::Batch::ComputeEnvironment LaunchTemplateSpecification `Version`, CloudFormation reference).
      const cfn = ce.node.defaultChild as batch.CfnComputeEnvironment;
      cfn.addPropertyOverride('ComputeResources.LaunchTemplate.Version', (this.launchTemplate as ec2.LaunchTemplate).latestVersionNumber);
      return ce;
    };

    this.computeEnvironments = environments.map(e => computeEnvironment(e.id, e.name, e.spot, {}));

    const timeLimits = runnableTimeLimits(settings.maxRunnableTime);
    const jobQueue = new batch.JobQueue(this, 'Resource', {
      jobQueueName: this.jobQueueName,
      priority: 1,
      // Spot first, on-demand after it: a job goes to the first environment that can place it (ComputeEnvironmentOrder).
      computeEnvironments: this.computeEnvironments.map((ce, i) => ({ computeEnvironment: ce, order: i + 1 })),
      jobStateTimeLimitActions: timeLimits,
    });
    withoutTopLevelTags(jobQueue.node.defaultChild as batch.CfnJobQueue);
    this.jobQueue = jobQueue;

    const container = (containerId: string, gpus: number, vcpus: number, memory: Size) => new batch.EcsEc2ContainerDefinition(this, containerId, {
      image: props.image,
      cpu: vcpus,
      memory,
      gpu: gpus > 0 ? gpus : undefined,
      command: props.command,
      // The run agent's settings (docs/RUNS.md, "AWS Batch"): an image that wraps its command in the agent needs none.
      environment: {
        ...props.containerEnvironment,
        ...runAgentEnvironment(props.bucket, environmentName, batchAgentLifetimeSeconds(settings.maxRunLifetime.toSeconds())),
      },
      jobRole: this.jobRole,
      executionRole: this.executionRole,
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'job' }),
    });
    const jobDefinition = new batch.EcsJobDefinition(this, 'JobDefinition', {
      jobDefinitionName: this.jobDefinitionName,
      container: container('Container', settings.gpus, settings.vcpus, settings.memory),
      timeout: settings.maxRunLifetime,
      retryAttempts: settings.retryAttempts,
      retryStrategies: retryStrategies(),
      // Tags of the job and the job definition go to its ECS task.
      propagateTags: true,
    });
    this.jobDefinition = jobDefinition;
    this.jobQueues = [jobQueue];
    this.jobDefinitionNames = [this.jobDefinitionName];

    if (props.multiNode) {
      const mn = settings.multiNode!;
      // All traffic among the nodes of a job, and nothing else added: NCCL and the MNP main node's
      // address exchange use arbitrary ports. The foundation's group is left as it is.
      const group = new ec2.SecurityGroup(this, 'MultiNodeSecurityGroup', {
        vpc: props.vpc,
        description: `Chronos Training multi-node Batch jobs (${environmentName}) - all traffic within the group`,
        allowAllOutbound: false,
      });
      group.addIngressRule(group, ec2.Port.allTraffic(), 'All traffic from the other nodes of multi-node jobs');
      group.addEgressRule(group, ec2.Port.allTraffic(), 'All traffic to the other nodes of multi-node jobs');
      this.multiNodeSecurityGroup = group;
      // One cluster placement group: nodes close together in one zone (batch/latest/userguide/mnp-ce.html).
      const placementGroup = new ec2.PlacementGroup(this, 'MultiNodePlacementGroup', { strategy: ec2.PlacementGroupStrategy.CLUSTER });
      this.placementGroup = placementGroup;
      const ce = computeEnvironment('MultiNode', multiNodeEnvironmentName, false, {
        // Batch runs no MNP job on spot (mnp-ce.html): on demand, one subnet, the cluster placement group.
        vpcSubnets: { subnets: [mn.subnet] },
        securityGroups: [...securityGroups, group],
        instanceTypes: [props.multiNode.instanceType],
        maxvCpus: props.multiNode.maxvCpus,
        placementGroup,
      });
      this.multiNodeComputeEnvironment = ce;
      const queue = new batch.JobQueue(this, 'MultiNodeJobQueue', {
        jobQueueName: `${prefix}-Batch-MultiNode`,
        priority: 1,
        computeEnvironments: [{ computeEnvironment: ce, order: 1 }],
        jobStateTimeLimitActions: timeLimits,
      });
      withoutTopLevelTags(queue.node.defaultChild as batch.CfnJobQueue);
      this.multiNodeJobQueue = queue;
      this.multiNodeJobDefinition = new batch.MultiNodeJobDefinition(this, 'MultiNodeJobDefinition', {
        jobDefinitionName: multiNodeDefinitionName,
        instanceType: props.multiNode.instanceType,
        mainNode: 0,
        containers: [{
          startNode: 0,
          endNode: props.multiNode.numNodes - 1,
          container: container('MultiNodeContainer', mn.gpus, mn.vcpus, mn.memory),
        }],
        timeout: settings.maxRunLifetime,
        retryAttempts: settings.retryAttempts,
        retryStrategies: retryStrategies(),
        propagateTags: true,
      });
      this.multiNodeJobDefinitionArnWithoutRevision = jobDefinitionArnWithoutRevision(this, multiNodeDefinitionName);
      this.jobQueues.push(queue);
      this.jobDefinitionNames.push(multiNodeDefinitionName);
    }

    // The queue's own resources (job definitions, roles, log group, template) carry the cost tags with
    // ManagedBy=CDK, inside a foundation or not; what Batch launches has its own tags (above). The compute
    // environments and job queues carry none at the top level (withoutTopLevelTags).
    const tags = Tags.of(this);
    tags.add(TAG_PROJECT, PROJECT_TAG_VALUE);
    tags.add(TAG_ENVIRONMENT, environmentName);
    tags.add(TAG_COST_CENTER, costCenter);
    tags.add(TAG_MANAGED_BY, MANAGED_BY_TAG_VALUE);
  }

  /**
   * Lets `grantee` submit jobs to this queue (and the multi-node one) with these
   * job definitions only (by name or any revision), tag them at submission, and
   * describe, list, cancel and terminate jobs.
   *
   * `batch:SubmitJob` and `batch:TagResource` (which a `SubmitJob` with tags needs)
   * authorize on the job queue, the job definition and the new job (Service
   * Authorization Reference, AWS Batch): the queues and definitions are named here;
   * the job ARN has a random ID, so it is any job of this account and region.
   * `batch:CancelJob` and `batch:TerminateJob` authorize on the job only (job ARNs do
   * not name their queue). `DescribeJobs`, `ListJobs`, `DescribeJobQueues` and
   * `DescribeJobDefinitions` support no resource-level permissions (`*`). The grant
   * acknowledges no cdk-nag finding on the grantee's policy: docs/COMPLIANCE.md lists
   * the findings and why each wildcard is needed.
   *
   * @param grantee the principal, for example a CI role or a researcher's role
   * @throws when the grantee has no policy this app can change (a role imported with `mutable: false`, an account principal): these resources have no resource policy to hold the grant instead
   */
  public grantSubmit(grantee: iam.IGrantable): iam.Grant {
    return grantBatchSubmit('grantSubmit', this, grantee, this.jobQueues.map(q => q.jobQueueArn), this.jobDefinitionNames);
  }

  /**
   * Lets `grantee` register new revisions of this queue's job definitions (and tag
   * them), and pass the job role and the execution role, no other role. It
   * acknowledges no cdk-nag finding on the grantee's policy (docs/COMPLIANCE.md).
   *
   * @param grantee the principal, for example a CI role that publishes new images
   * @throws when the grantee has no policy this app can change (a role imported with `mutable: false`, an account principal): these resources have no resource policy to hold the grant instead
   */
  public grantRegisterJobDefinition(grantee: iam.IGrantable): iam.Grant {
    return assertPrincipalGranted('grantRegisterJobDefinition', grantee, iam.Grant.addToPrincipal({
      grantee,
      actions: ['batch:RegisterJobDefinition', 'batch:TagResource'],
      resourceArns: jobDefinitionResources(this.jobDefinitionNames),
      conditions: inRegion(this),
    }).combine(iam.Grant.addToPrincipal({
      grantee, actions: ['iam:PassRole'], resourceArns: [this.jobRole.roleArn, this.executionRole.roleArn],
    })), 'AWS Batch job definitions and IAM roles');
  }
}

/** Checked and defaulted inputs. */
interface Settings {
  readonly maxvCpus: number;
  readonly instanceTypes: ec2.InstanceType[];
  readonly gpus: number;
  readonly vcpus: number;
  readonly memory: Size;
  readonly maxRunLifetime: Duration;
  readonly updateTimeoutMinutes: number;
  readonly retryAttempts: number;
  readonly maxRunnableTime: Duration;
  readonly rootVolumeSize: number;
  readonly multiNode?: { readonly subnet: ec2.ISubnet; readonly gpus: number; readonly vcpus: number; readonly memory: Size };
}

/** Validates every input once; messages name the prop, the value and the rule. */
/** The variables the run agent reads in a Batch job: the training bucket and the environment (its prefix). */
const RUN_AGENT_VARIABLES = ['CHRONOS_BUCKET', 'CHRONOS_ENVIRONMENT'];

/** The run agent's lifetime variable, set from `maxRunLifetime` so that the agent drains before the job timeout. */
const RUN_AGENT_LIFETIME_VARIABLE = 'CHRONOS_MAX_RUN_LIFETIME_SECONDS';

function runAgentEnvironment(bucket: s3.IBucket, environmentName: string, lifetimeSeconds: number): Record<string, string> {
  return { CHRONOS_BUCKET: bucket.bucketName, CHRONOS_ENVIRONMENT: environmentName, [RUN_AGENT_LIFETIME_VARIABLE]: String(lifetimeSeconds) };
}

/**
 * The run agent's lifetime in a job whose timeout is `timeoutSeconds`: the timeout less the drain margin (5 minutes,
 * or half the timeout when shorter). Batch stops the job at the timeout (SIGTERM, then SIGKILL after the ECS stop
 * timeout), so an agent whose own lifetime ends first drains with its final checkpoint and status in time.
 */
export function batchAgentLifetimeSeconds(timeoutSeconds: number): number {
  return timeoutSeconds - Math.min(BATCH_DRAIN_MARGIN_SECONDS, Math.floor(timeoutSeconds / 2));
}

function validate(props: TrainingBatchQueueProps): Settings {
  const reserved = RUN_AGENT_VARIABLES.filter(name => name in (props.containerEnvironment ?? {}));
  if (reserved.length > 0) {
    throw new Error(`containerEnvironment sets ${reserved.join(' and ')}: the queue sets CHRONOS_BUCKET to the training ` +
      'bucket and CHRONOS_ENVIRONMENT to environmentName for the run agent, the only bucket and prefix the job role ' +
      `reaches; leave ${reserved.length > 1 ? 'them' : 'it'} out`);
  }
  if (RUN_AGENT_LIFETIME_VARIABLE in (props.containerEnvironment ?? {})) {
    throw new Error(`containerEnvironment sets ${RUN_AGENT_LIFETIME_VARIABLE}: the queue sets it to maxRunLifetime less the run ` +
      'agent\'s drain margin, so that the agent drains before the job timeout; change maxRunLifetime instead');
  }
  const maxvCpus = wholeNumber('maxvCpus', props.maxvCpus ?? 32, 1);
  const instanceTypes = props.instanceTypes ?? DEFAULT_INSTANCE_TYPES.map(t => new ec2.InstanceType(t));
  if (instanceTypes.length === 0) {
    throw new Error('instanceTypes is empty: give at least one GPU instance type, or leave it out for the g6/g5 defaults');
  }
  const gpus = wholeNumber('gpus', props.gpus ?? 1, 0);
  checkGpus('gpus', gpus, 'instanceTypes', instanceTypes);
  const vcpus = wholeNumber('vcpus', props.vcpus ?? 4, 1);
  if (vcpus > maxvCpus) {
    throw new Error(`vcpus is ${vcpus} but maxvCpus is ${maxvCpus}: a job must fit in its compute environment's vCPU ceiling`);
  }
  const memory = props.memory ?? Size.gibibytes(14);
  memoryMiB('memory', memory);
  const maxRunLifetime = props.maxRunLifetime ?? Duration.hours(4);
  if (maxRunLifetime.isUnresolved() || !Number.isInteger(maxRunLifetime.toSeconds({ integral: false })) || maxRunLifetime.toSeconds() < 60) {
    throw new Error(`maxRunLifetime is ${maxRunLifetime.toHumanString()}; it must be a literal whole number of seconds, at least 60 ` +
      '(the job definition timeout\'s minimum)');
  }
  // Whole minutes, rounded up so that a run is never cut short; 1 to 7,200 (UpdatePolicy, AWS Batch API Reference).
  const updateTimeoutMinutes = Math.ceil(maxRunLifetime.toSeconds() / 60);
  if (updateTimeoutMinutes > MAX_UPDATE_TIMEOUT_MINUTES) {
    throw new Error(`maxRunLifetime is ${maxRunLifetime.toHumanString()} (${updateTimeoutMinutes} minutes); a compute environment's update ` +
      `policy lets running jobs finish for at most ${MAX_UPDATE_TIMEOUT_MINUTES} minutes (jobExecutionTimeoutMinutes), so a deploy could ` +
      'cut a longer run short: give at most 5 days');
  }
  const retryAttempts = wholeNumber('retryAttempts', props.retryAttempts ?? 3, 1);
  if (retryAttempts > 10) {
    throw new Error(`retryAttempts is ${retryAttempts}; Batch allows 1 to 10 attempts`);
  }
  const maxRunnableTime = props.maxRunnableTime ?? Duration.minutes(30);
  const runnableSeconds = maxRunnableTime.isUnresolved() ? NaN : maxRunnableTime.toSeconds({ integral: false });
  if (!Number.isInteger(runnableSeconds) || runnableSeconds < MIN_RUNNABLE_SECONDS || runnableSeconds > MAX_RUNNABLE_SECONDS) {
    throw new Error(`maxRunnableTime is ${maxRunnableTime.toHumanString()}; it must be a whole number of seconds from 10 minutes to ` +
      '24 hours (the limits of jobStateTimeLimitActions)');
  }
  const rootVolumeSize = rootVolumeGiB('rootVolumeSize', props.rootVolumeSize ?? Size.gibibytes(100), MIN_ROOT_VOLUME_GIB);
  if (!props.spot && props.onDemandFallback === false) {
    throw new Error('onDemandFallback is false without spot: the queue would have no compute environment; set spot: true for a spot-only queue');
  }
  if (props.subnets.length === 0) {
    throw new Error('subnets is empty: the compute environments need at least one public subnet');
  }
  for (const subnet of props.subnets) {
    const cfn = subnet.node.defaultChild as ec2.CfnSubnet | undefined;
    if (cfn instanceof ec2.CfnSubnet && cfn.mapPublicIpOnLaunch !== true && !Token.isUnresolved(cfn.mapPublicIpOnLaunch)) {
      throw new Error(`subnets: ${subnet.node.path} does not map public IPs on launch; Batch's instances need one to reach the ` +
        'ECS endpoint without a NAT gateway (use the foundation\'s public subnets)');
    }
  }
  const groups = 1 + (props.additionalSecurityGroups?.length ?? 0) + (props.multiNode ? 1 : 0);
  if (groups > MAX_SECURITY_GROUPS) {
    throw new Error(`securityGroup and additionalSecurityGroups make ${groups} security groups${props.multiNode ? ' with the multi-node group' : ''}; ` +
      `a compute environment takes at most ${MAX_SECURITY_GROUPS}`);
  }

  let multiNode: Settings['multiNode'];
  if (props.multiNode) {
    const mn = props.multiNode;
    if (props.onDemandFallback === false) {
      throw new Error('multiNode is set on a spot-only queue (onDemandFallback: false): Batch runs multi-node jobs on on-demand ' +
        'instances only; remove onDemandFallback: false or multiNode');
    }
    const numNodes = wholeNumber('multiNode.numNodes', mn.numNodes, 2);
    // One node container per instance (multi-node jobs are single-tenant): by default a node takes its whole instance.
    const shape = gpuInstanceShape(mn.instanceType);
    const mnGpus = wholeNumber('multiNode.gpusPerNode', mn.gpusPerNode ?? shape?.gpus ?? gpus, 0);
    checkGpus('multiNode.gpusPerNode', mnGpus, 'multiNode.instanceType', [mn.instanceType]);
    const mnVcpus = wholeNumber('multiNode.vcpusPerNode', mn.vcpusPerNode ?? shape?.vcpus ?? vcpus, 1);
    const mnMemory = mn.memoryPerNode ?? (shape ? Size.mebibytes(wholeInstanceMemoryMiB(shape)) : memory);
    const mnMemoryMiB = memoryMiB('multiNode.memoryPerNode', mnMemory);
    if (shape && mnVcpus > shape.vcpus) {
      throw new Error(`multiNode.vcpusPerNode is ${mnVcpus} but instance type ${mn.instanceType} has ${shape.vcpus} vCPUs: a node must fit its instance`);
    }
    if (shape && mnMemoryMiB > shape.memoryGiB * 1024) {
      throw new Error(`multiNode.memoryPerNode is ${mnMemoryMiB} MiB but instance type ${mn.instanceType} has ${shape.memoryGiB * 1024} MiB: ` +
        'a node must fit its instance');
    }
    const mnMax = wholeNumber('multiNode.maxvCpus', mn.maxvCpus, 1);
    // Batch places each node on an instance of its own, so the ceiling must hold numNodes whole instances.
    const perNode = shape?.vcpus ?? mnVcpus;
    if (mnMax < numNodes * perNode) {
      throw new Error(`multiNode.maxvCpus is ${mnMax}; the ${numNodes} nodes of one job need ${numNodes} whole instances, at least ` +
        `${numNodes} × ${perNode} = ${numNodes * perNode} vCPUs${shape ? ` (${mn.instanceType} has ${shape.vcpus} vCPUs)` : ''}`);
    }
    const subnet = mn.subnet ?? props.subnets[0];
    if (!props.subnets.includes(subnet)) {
      throw new Error(`multiNode.subnet ${subnet.node.path} is not one of subnets: the multi-node environment runs in one of the queue's public subnets`);
    }
    multiNode = { subnet, gpus: mnGpus, vcpus: mnVcpus, memory: mnMemory };
  }
  return {
    maxvCpus, instanceTypes, gpus, vcpus, memory, maxRunLifetime, updateTimeoutMinutes, retryAttempts, maxRunnableTime, rootVolumeSize, multiNode,
  };
}

function wholeNumber(prop: string, value: number, min: number): number {
  if (Token.isUnresolved(value) || !Number.isInteger(value) || value < min) {
    throw new Error(`${prop} is ${value}; it must be a literal whole number, at least ${min}`);
  }
  return value;
}

function memoryMiB(prop: string, memory: Size): number {
  const mib = memory.isUnresolved() ? NaN : memory.toMebibytes({ rounding: SizeRoundingBehavior.NONE });
  if (!Number.isInteger(mib) || mib < 4) {
    throw new Error(`${prop} is ${Number.isNaN(mib) ? 'a token' : `${mib} MiB`}; ` +
      'it must be a literal whole number of MiB, at least 4 (Batch\'s minimum)');
  }
  return mib;
}

/**
 * A job that reserves GPUs can run only on instance types with that many NVIDIA GPUs: the compute
 * environments boot the ECS GPU AMI, and Batch never places a GPU job on a type without GPUs, so the
 * job would stay RUNNABLE until the queue cancels it.
 */
function checkGpus(prop: string, gpus: number, typesProp: string, instanceTypes: ec2.InstanceType[]): void {
  if (gpus === 0) {
    return;
  }
  for (const type of instanceTypes) {
    if (hasNoNvidiaGpu(type)) {
      throw new Error(`${prop} is ${gpus} but ${typesProp} includes ${type}, which has no NVIDIA GPU: a GPU job can never run on it; ` +
        'give GPU instance types (g4dn, g5, g6, g6e, p3, p4d, p5) or set gpus to 0');
    }
  }
  const shapes = instanceTypes.map(gpuInstanceShape);
  if (shapes.every(shape => shape !== undefined)) {
    const most = Math.max(...shapes.map(shape => shape!.gpus));
    if (gpus > most) {
      throw new Error(`${prop} is ${gpus} but the instance types in ${typesProp} have at most ${most} GPU${most === 1 ? '' : 's'}: ` +
        'Batch could never place the job');
    }
  }
}

/**
 * Cancel a job that stays RUNNABLE for `maxTime` for any of the three reasons Batch
 * reports for jobs it cannot place (batch/latest/userguide/job_stuck_in_runnable_time_limit_actions.html,
 * V; the L2's JobStateTimeLimitActionsReason enum has exactly these three).
 */
function runnableTimeLimits(maxTime: Duration): batch.JobStateTimeLimitAction[] {
  const batch = awsBatch();
  return [
    batch.JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY,
    batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
    batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
  ].map(reason => ({
    action: batch.JobStateTimeLimitActionsAction.CANCEL,
    state: batch.JobStateTimeLimitActionsState.RUNNABLE,
    maxTime,
    reason,
  }));
}

/**
 * Retry an attempt whose instance went away (`Host EC2*`: a reclaimed spot instance, V in
 * batch/latest/userguide/job_retries.html), exit on anything else: conditions are evaluated in order,
 * and an attempt that matches none would be retried (the same page).
 */
function retryStrategies(): batch.RetryStrategy[] {
  const batch = awsBatch();
  return [
    batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
    batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom({ onStatusReason: '*' })),
  ];
}

/**
 * The launch template Batch copies for its instances: IMDSv2 required with a hop
 * limit of 1, an encrypted gp3 root volume, and the tags of instances and volumes.
 * A hop limit of 2 serves containers on `bridge` networking, one hop from the host
 * (buildkite elastic-ci-stack #857, S); Batch runs none: single-node ECS jobs on EC2
 * use `host` networking, multi-node jobs `awsvpc` ("Networking modes for AWS Batch
 * jobs", https://docs.aws.amazon.com/batch/latest/userguide/networking-modes-jobs.html).
 * A host-mode container is the host on the network, so 1 is enough for it (and 2
 * would not keep it from the instance role's credentials); an awsvpc task has its own
 * interface and gets its job role from the ECS agent's credentials endpoint, not IMDS.
 * The ECS agent itself runs with host networking. So 1, the smallest that works. Nothing Batch ignores or forbids in a template (instance type,
 * instance profile, network interfaces, security groups, non-MIME user data:
 * batch/latest/userguide/launch-templates.html, V); MIME user data that configures the ECS agent (`ecsAgentConfiguration`).
 */
function batchLaunchTemplate(scope: Construct, environmentName: string, rootVolumeSize: number, ownTags: Record<string, string>,
  detailedMonitoring: boolean): ec2.LaunchTemplate {
  const template = new ec2.LaunchTemplate(scope, 'LaunchTemplate', {
    requireImdsv2: true,
    detailedMonitoring,
    httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
    httpPutResponseHopLimit: 1,
    blockDevices: [encryptedRootVolume(ROOT_DEVICE_NAME, rootVolumeSize)],
    userData: ecsAgentConfiguration(),
  });
  // As in TrainingLaunchTemplate: the L2 renders the template's own tags for instances and volumes;
  // these are merged with this queue's, which win (Batch merges template tags with the compute
  // environment's; volumes get only the template's).
  tagLaunchedResources(template, { Name: `chronos-training-batch-${environmentName}`, ...ownTags }, ['instance', 'volume']);
  return template;
}

/**
 * The ECS agent's configuration for Batch's instances, as the MIME multi-part user data Batch merges with its own
 * ("Use Amazon EC2 launch templates with AWS Batch", AWS Batch User Guide: user data in a template must be MIME
 * multi-part): `ECS_CONTAINER_STOP_TIMEOUT` ("Amazon ECS container agent configuration", ECS Developer Guide; the
 * default is 30 s) raised so that the run agent's drain has two minutes after SIGTERM, when a job is terminated or
 * times out, or ECS stops it.
 */
function ecsAgentConfiguration(): ec2.UserData {
  const userData = new ec2.MultipartUserData();
  userData.addPart(ec2.MultipartBody.fromRawBody({
    contentType: 'text/x-shellscript; charset="us-ascii"',
    body: `#!/bin/bash\necho ECS_CONTAINER_STOP_TIMEOUT=${BATCH_CONTAINER_STOP_TIMEOUT_SECONDS}s >> /etc/ecs/ecs.config\n`,
  }));
  return userData;
}

/**
 * Removes the top-level `Tags` of a named compute environment or job queue. They are "Update requires:
 * Replacement" (AWS::Batch::ComputeEnvironment and AWS::Batch::JobQueue, CloudFormation reference), and a
 * resource with a fixed name cannot be replaced, so any tag change (cost center, a stack or app tag) would
 * fail the deploy (cloudformation-coverage-roadmap #2270, #2463). Tags.of(...) reaches these L1s from any
 * scope above (the user's app and stack too), and no public API keeps a tag aspect off one resource, hence
 * the escape hatch. The instances keep their tags in ComputeResources.Tags (updated in place); the queue and
 * the environments cost nothing, so no cost report misses them.
 */
function withoutTopLevelTags(resource: batch.CfnComputeEnvironment | batch.CfnJobQueue): void {
  resource.addPropertyDeletionOverride('Tags');
}
