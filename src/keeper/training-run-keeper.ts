import * as path from 'path';
import { ArnFormat, Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { RUN_ENDED_DETAIL_TYPE, RUN_EVENT_SOURCE } from './run-events';
import { DESCRIBE_ACTIONS, launchFromTemplateStatements } from '../foundation/launch-grant';
import { acknowledgeNagFinding, nagResourceFinding, skipCheckov } from '../private/compliance';
import { functionDeadLetterQueue, functionLogGroup } from '../private/function-parts';
import { awsEvents, awsEventsTargets, awsLambda, awsLogs, awsScheduler } from '../private/lazy';
import { validateEnvironment } from '../private/validation';
import { TrainingBucketGrants } from '../storage/training-bucket-grants';

/*
 * References for the keeper's role and wiring:
 * - EventBridge events reference, "Amazon EC2 events": "EC2 Instance State-change Notification", source `aws.ec2`,
 *   `detail.instance-id` and `detail.state`; the event carries no tags, hence DescribeInstances.
 * - Service Authorization Reference, Amazon EC2: DescribeInstances, DescribeSpotPriceHistory and the other describes
 *   take no resource-level permissions and no tag condition (only `ec2:Region`): Resource "*".
 * - Service Authorization Reference, AWS Price List: pricing:GetProducts has no resource types: Resource "*".
 * - Service Authorization Reference, Amazon EventBridge Scheduler: CreateSchedule and DeleteSchedule act on
 *   `arn:${Partition}:scheduler:${Region}:${Account}:schedule/${GroupName}/${ScheduleName}`.
 * - EventBridge Scheduler User Guide, "Set up the execution role": the role trusts scheduler.amazonaws.com, with
 *   `aws:SourceAccount` against the confused deputy; whoever creates a schedule passes it (`iam:PassRole`).
 * - Service Authorization Reference, Amazon EventBridge: PutEvents takes `events:source` and `events:detail-type`
 *   (ArrayOfString: one value per entry of the request), on the `event-bus` resource.
 * - Lambda Developer Guide, "Building Lambda functions with Python": the runtime includes the SDK for Python (Boto3).
 */

/** The keeper's handler in the run package (chronos-training/src/chronos_training/keeper.py). */
const HANDLER = 'chronos_training.keeper.handler';

/**
 * Options of a `TrainingRunKeeper`, without what the foundation supplies.
 */
export interface TrainingRunKeeperOptions {
  /**
   * How long the function's log group keeps its logs: every decision the keeper took (next attempt, capacity wait,
   * end of the run), with its reason (a few MB a year).
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Properties of a `TrainingRunKeeper`.
 */
export interface TrainingRunKeeperProps extends TrainingRunKeeperOptions {
  /** The environment whose runs the keeper continues (instances tagged `Environment={environmentName}`). */
  readonly environmentName: string;

  /** The training bucket, whose `{environmentName}/runs/` documents the keeper reads and writes. */
  readonly bucket: s3.IBucket;

  /** The foundation's launch template: the only one the keeper may launch from. */
  readonly launchTemplate: ec2.ILaunchTemplate;

  /** The training instances' role, which the launch template's instance profile carries (passed to EC2 at launch). */
  readonly instanceRole: iam.IRole;

  /** The foundation's VPC: launches only into its subnets. */
  readonly vpc: ec2.IVpc;

  /** The training instances' security group: launches only with it. */
  readonly securityGroup: ec2.ISecurityGroup;
}

/**
 * The run keeper: what continues a training run while nobody watches it, at no cost while idle (docs/DESIGN.md,
 * "The run keeper"). A Python Lambda function (the run package's `chronos_training.keeper.handler`, the same launch
 * code as the CLI's) is invoked by
 * - an EventBridge rule on EC2's "EC2 Instance State-change Notification" (`shutting-down`, `terminated`) of every
 *   instance of the account and region: the event carries no tags, so the function looks each instance up and ignores
 *   those without a `ChronosRunId` tag or of another environment;
 * - its own one-time EventBridge Scheduler schedules (the schedule group `chronos-training-{environmentName}`, the
 *   scheduler role it passes), while a run waits for capacity.
 *
 * It launches a run's next attempt after an interruption (as the run's policy in its spec says), waits for capacity,
 * and publishes the run's end (`chronos.training`, `Chronos Training Run Ended`) to the default event bus.
 *
 * Its role may launch only from the foundation's launch template (the statements `grantLaunch` gives, from the same
 * code), read and write only `{environmentName}/runs/`, create and delete schedules only in its group, pass only the
 * scheduler role (to the Scheduler) and the instance role (to EC2), and put only its own events. A failed invocation
 * is retried twice and then kept in a dead-letter queue (SQS: free while empty), as are events EventBridge could not
 * deliver. The function's code is a CDK asset (`assets/keeper/`, copied from the run package by `bundle:keeper`):
 * deploying it needs a bootstrapped account. Nothing of it bills while idle: Lambda bills per request, EventBridge
 * rules on AWS events and a schedule group cost nothing, Scheduler bills per invocation.
 */
export class TrainingRunKeeper extends Construct {
  /** The keeper's function. */
  public readonly function: lambda.IFunction;

  /** The rule that sends EC2 instance state changes (`shutting-down`, `terminated`) to the function. */
  public readonly rule: events.IRule;

  /** The schedule group of the keeper's one-time retry schedules, `chronos-training-{environmentName}`. */
  public readonly scheduleGroup: scheduler.IScheduleGroup;

  /** The role EventBridge Scheduler assumes to invoke the function (it may invoke this function only). */
  public readonly schedulerRole: iam.IRole;

  /** The function's role. */
  public readonly role: iam.IRole;

  /** The function's log group. */
  public readonly logGroup: logs.ILogGroup;

  /** Where failed invocations and undeliverable events land. */
  public readonly deadLetterQueue: sqs.IQueue;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingRunKeeperProps) {
    super(scope, id);
    const events = awsEvents();
    const targets = awsEventsTargets();
    const lambda = awsLambda();
    const logs = awsLogs();
    const scheduler = awsScheduler();
    const environmentName = validateEnvironment(props.environmentName, 'environmentName');

    const logGroup = functionLogGroup(this, props.logRetention ?? logs.RetentionDays.ONE_YEAR, 'logs of run decisions');
    this.logGroup = logGroup;
    const queue = functionDeadLetterQueue(this);
    this.deadLetterQueue = queue;

    // Schedules are transient (each deletes itself after its one invocation): the group goes with the stack, and a
    // retained group would make a redeploy of the same environment fail on its name.
    const scheduleGroup = new scheduler.ScheduleGroup(this, 'ScheduleGroup', {
      scheduleGroupName: `chronos-training-${environmentName}`,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.scheduleGroup = scheduleGroup;

    const schedulerRole = new iam.Role(this, 'SchedulerRole', {
      // EventBridge Scheduler User Guide, "Set up the execution role": aws:SourceAccount against the confused deputy.
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: `Chronos Training run keeper (${environmentName}): EventBridge Scheduler invokes the keeper`,
    });
    this.schedulerRole = schedulerRole;

    const policies = keeperStatements(this, {
      ...props, environmentName, logGroup, scheduleGroupName: scheduleGroup.scheduleGroupName, schedulerRole,
    });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Chronos Training run keeper (${environmentName}): launches the next attempt of interrupted runs`,
      inlinePolicies: Object.fromEntries(Object.entries(policies).map(([name, statements]) =>
        [name, new iam.PolicyDocument({ minimize: false, statements })])),
    });
    this.role = role;

    // assets/keeper/ is the run package's copy (bundle:keeper); never bytecode, whatever a local run left there.
    const code = lambda.Code.fromAsset(path.join(__dirname, '../../assets/keeper'), { exclude: ['**/__pycache__', '**/*.pyc'] });
    const fn = new lambda.Function(this, 'Function', {
      description: `Continues Chronos Training runs (${environmentName}) after interruptions and capacity waits`,
      runtime: lambda.Runtime.PYTHON_3_14,
      handler: HANDLER,
      code,
      role,
      logGroup,
      // A launch tries zones x types x markets in turn: a minute or more, well inside five.
      timeout: Duration.minutes(5),
      memorySize: 512,
      retryAttempts: 2,
      deadLetterQueue: queue,
    });
    this.function = fn;
    const cfnFunction = fn.node.defaultChild as lambda.CfnFunction;
    skipCheckov(cfnFunction, 'CKV_AWS_117',
      'Outside a VPC on purpose: it calls only AWS APIs (EC2, S3, SSM, Scheduler, EventBridge, Price List), which from a ' +
      'VPC would need a NAT gateway or interface endpoints, billed while idle');
    skipCheckov(cfnFunction, 'CKV_AWS_115',
      'No reserved concurrency: reserving any fails to deploy in accounts whose concurrency limit is the minimum of 10; ' +
      'concurrent invocations are safe (each attempt is claimed with a conditional write)');
    skipCheckov(cfnFunction, 'CKV_AWS_173',
      'The environment variables hold the environment name, a schedule group name and a role ARN; no secret to encrypt ' +
      'with a KMS key (billed monthly while idle)');

    // A policy of its own, not inline in the role: the function's environment names the role, the policy the function.
    new iam.Policy(this, 'SchedulerRolePolicy', {
      roles: [schedulerRole],
      statements: [new iam.PolicyStatement({
        sid: 'InvokeTheKeeper',
        actions: ['lambda:InvokeFunction'],
        resources: [fn.functionArn],
      })],
    });
    fn.addEnvironment('CHRONOS_ENVIRONMENT', environmentName);
    fn.addEnvironment('CHRONOS_SCHEDULE_GROUP', scheduleGroup.scheduleGroupName);
    fn.addEnvironment('CHRONOS_SCHEDULER_ROLE_ARN', schedulerRole.roleArn);

    const rule = new events.Rule(this, 'InstanceStateChange', {
      description: `Sends EC2 instance state changes to the Chronos Training run keeper (${environmentName})`,
      eventPattern: {
        source: ['aws.ec2'],
        detailType: ['EC2 Instance State-change Notification'],
        detail: { state: ['shutting-down', 'terminated'] },
      },
    });
    rule.addTarget(new targets.LambdaFunction(fn, {
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      deadLetterQueue: queue,
    }));
    this.rule = rule;

    // Each wildcard of the role's policies, acknowledged with the reason of its statement (cdk-nag AwsSolutions-IAM5).
    const cfnRole = role.node.defaultChild as iam.CfnRole;
    for (const statement of Object.values(policies).flat()) {
      for (const resource of statement.resources) {
        const finding = nagResourceFinding(this, resource);
        if (finding.includes('*')) {
          acknowledgeNagFinding(cfnRole, `AwsSolutions-IAM5[${finding}]`, wildcardReason(statement.sid));
        }
      }
    }
  }
}


/** The keeper role's statements, by policy name (docs/IAM.md, "The run keeper"). */
function keeperStatements(scope: Construct, props: TrainingRunKeeperProps & {
  environmentName: string;
  logGroup: logs.ILogGroup;
  scheduleGroupName: string;
  schedulerRole: iam.IRole;
}): Record<string, iam.PolicyStatement[]> {
  const stack = Stack.of(scope);
  const { run, foundation, image } = launchFromTemplateStatements(scope, {
    environmentName: props.environmentName,
    launchTemplate: props.launchTemplate,
    role: props.instanceRole,
    vpc: props.vpc,
    securityGroup: props.securityGroup,
  });
  return {
    Logs: [new iam.PolicyStatement({
      sid: 'WriteOwnLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [props.logGroup.logGroupArn],
    })],
    LaunchFromTheTemplate: [...run, image],
    ReadTheFoundation: [
      ...foundation,
      // DescribeInstances has no tag condition (only ec2:Region): the handler checks the ChronosRunId and Environment
      // tags of the instance it reads. DescribeSpotPriceHistory and GetProducts give the run's estimated cost.
      new iam.PolicyStatement({
        sid: 'DescribeAndPrices',
        actions: [...DESCRIBE_ACTIONS, 'ec2:DescribeSpotPriceHistory', 'pricing:GetProducts'],
        resources: ['*'],
      }),
    ],
    ReadWriteRuns: new TrainingBucketGrants(props.bucket, props.environmentName).keeperStatements(),
    ScheduleRetries: [
      new iam.PolicyStatement({
        sid: 'CreateAndDeleteOwnSchedules',
        actions: ['scheduler:CreateSchedule', 'scheduler:DeleteSchedule'],
        resources: [stack.formatArn({
          service: 'scheduler',
          resource: 'schedule',
          resourceName: `${props.scheduleGroupName}/*`,
          arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
        })],
      }),
      new iam.PolicyStatement({
        sid: 'PassTheSchedulerRole',
        actions: ['iam:PassRole'],
        resources: [props.schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    ],
    PublishRunEnded: [new iam.PolicyStatement({
      sid: 'PutOwnEventsOnTheDefaultBus',
      actions: ['events:PutEvents'],
      resources: [stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default', arnFormat: ArnFormat.SLASH_RESOURCE_NAME })],
      // events:source and events:detail-type hold one value per entry of the request (ArrayOfString): every entry
      // must be the keeper's own, and a request without them matches nothing (Null false).
      conditions: {
        'ForAllValues:StringEquals': { 'events:source': [RUN_EVENT_SOURCE], 'events:detail-type': [RUN_ENDED_DETAIL_TYPE] },
        'Null': { 'events:source': 'false', 'events:detail-type': 'false' },
      },
    })],
  };
}

/** Why a statement of the keeper's role has a wildcard resource. */
function wildcardReason(sid: string | undefined): string {
  const reasons: Record<string, string> = {
    DescribeAndPrices: 'EC2 describes, DescribeSpotPriceHistory and pricing:GetProducts support no resource-level permissions: AWS requires Resource "*"',
    ReadTheFoundationExports: 'cloudformation:ListExports supports no resource-level permissions: AWS requires Resource "*"',
    ReadTheFoundationParameters: 'The foundation\'s own SSM parameters only: /chronos-training/{environment}/',
    ResolveTheDeepLearningAmiParameters: 'The Deep Learning AMI public parameters only, which EC2 resolves at launch (resolve:ssm:)',
    CreateTheSpotServiceLinkedRole: 'The Spot service-linked role AWSServiceRoleForEC2Spot only, whose ARN has an account wildcard',
    KeeperReadWriteRuns: 'Read and write of the runs\' documents only: the {environment}/runs/ prefix of the training bucket',
    CreateAndDeleteOwnSchedules: 'Schedules of the keeper\'s own schedule group only: their names are made at run time',
  };
  return reasons[sid ?? ''] ??
    'RunInstances from the foundation\'s launch template only (ec2:LaunchTemplate), in its VPC, with its tags, as grantLaunch ' +
    'grants: the resources of a launch (instance, volume, interface, key pair, image, spot request) are made or chosen at run time';
}
