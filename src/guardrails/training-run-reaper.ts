import { Duration } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeTerminateFindings, terminateStatements } from '../compute/instance-access';
import { skipCheckov } from '../private/compliance';
import { functionDeadLetterQueue, functionLogGroup } from '../private/function-parts';
import { awsEvents, awsEventsTargets, awsLogs, trainingRunReaperFunctionModule } from '../private/lazy';
import { BATCH_MANAGED_BY, PROJECT_TAG_VALUE, TAG_ENVIRONMENT, TAG_MANAGED_BY, TAG_MAX_LIFETIME_HOURS, TAG_PROJECT } from '../private/tags';
import { DEFAULT_RUN_LIFETIME, maxLifetimeTagSeconds, runLifetimeMinutes, validateEnvironment } from '../private/validation';

/**
 * Options of a `TrainingRunReaper`, without the environment name (the foundation supplies it).
 */
export interface TrainingRunReaperOptions {
  /**
   * How often the reaper looks for expired instances. An instance lives at most
   * its lifetime plus this interval (plus the function's run time).
   *
   * @default events.Schedule.rate(Duration.minutes(15))
   */
  readonly schedule?: events.Schedule;

  /**
   * Only log what would be terminated (EC2's `DryRun` checks the permission), terminate nothing.
   *
   * @default false
   */
  readonly dryRun?: boolean;

  /**
   * How long the function's log group keeps its logs: the record of which
   * instances it terminated, and why (a few MB a year).
   *
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Properties of a `TrainingRunReaper`.
 */
export interface TrainingRunReaperProps extends TrainingRunReaperOptions {
  /** The environment whose instances (tagged `Environment={environmentName}`) the reaper terminates. */
  readonly environmentName: string;

  /**
   * The longest a run may last. The reaper's ceiling is this plus a margin of
   * 15 minutes for the boot, the run agent's drain and its backstop (in hours
   * rounded up to 0.01, the launch template's `MaxLifetimeHours` tag): an
   * instance whose tag is missing or not a positive number lives that long, one
   * whose tag says more lives that long too (a tag is never trusted above it),
   * and others live as long as their tag says. Whole minutes, from 15 minutes
   * to 14 days. In a foundation it is the foundation's `maxRunLifetime`, which
   * also sets the launch template's tag.
   *
   * @default Duration.hours(4)
   */
  readonly maxRunLifetime?: Duration;
}

/**
 * A server-side limit on training run lifetime: a schedule (every 15 minutes by
 * default, EventBridge) invokes a small function that terminates this
 * environment's instances tagged `Project=Chronos-Training` in state pending,
 * running, stopping or stopped that have lived longer than their
 * `MaxLifetimeHours` tag, or than `maxRunLifetime` plus 15 minutes (its ceiling)
 * where the tag is missing, malformed or above that ceiling. Age is counted from the instance's `LaunchTime` (its last start).
 * Instances tagged `ManagedBy=chronos-batch` (launched by a `TrainingBatchQueue`'s
 * compute environments, whose lifetime AWS Batch manages) are never terminated:
 * the function skips them and its role is denied them.
 *
 * Its role may describe instances and terminate only instances tagged with this
 * project and environment. A failed invocation is retried twice and then lands in
 * a dead-letter queue (SQS: free while empty), as do events EventBridge could
 * not deliver; the log group keeps its record of terminations one year. No alarm is created (an alarm
 * bills while idle): check the queue, `ApproximateNumberOfMessagesVisible`.
 *
 * The function's code is a CDK asset: deploying it needs a bootstrapped account.
 * It costs nothing while idle (about 2,900 invocations a month, within the free tier).
 */
export class TrainingRunReaper extends Construct {
  /** The function that terminates expired instances. */
  public readonly function: lambda.IFunction;

  /** The schedule that invokes it. */
  public readonly rule: events.IRule;

  /** Where failed invocations and undeliverable events land. */
  public readonly deadLetterQueue: sqs.IQueue;

  /** The function's log group. */
  public readonly logGroup: logs.ILogGroup;

  /** The function's role. */
  public readonly role: iam.IRole;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties; see the props interface for defaults
   */
  constructor(scope: Construct, id: string, props: TrainingRunReaperProps) {
    super(scope, id);
    const events = awsEvents();
    const targets = awsEventsTargets();
    const logs = awsLogs();
    const { TrainingRunReaperFunction } = trainingRunReaperFunctionModule();
    const environmentName = validateEnvironment(props.environmentName, 'environmentName');
    const lifetimeMinutes = runLifetimeMinutes('maxRunLifetime', props.maxRunLifetime ?? DEFAULT_RUN_LIFETIME);

    // A year of "terminated i-… after 4 h": what answers "where did my run go?" weeks later, for a few MB.
    this.logGroup = functionLogGroup(this, props.logRetention ?? logs.RetentionDays.ONE_YEAR, 'logs that name instance IDs only');
    this.deadLetterQueue = functionDeadLetterQueue(this);

    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Chronos Training run reaper (${environmentName}): terminates expired training instances`,
      inlinePolicies: {
        Logs: new iam.PolicyDocument({
          minimize: false,
          statements: [new iam.PolicyStatement({
            sid: 'WriteOwnLogs',
            actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
            resources: [this.logGroup.logGroupArn],
          })],
        }),
        TerminateExpiredInstances: new iam.PolicyDocument({
          minimize: false,
          // Instances of AWS Batch compute environments (TrainingBatchQueue) carry the same Project and Environment
          // tags but belong to Batch, which scales them to zero: never terminate them (the handler skips them too).
          statements: terminateStatements(this, environmentName, 'TerminateProjectEnvironmentInstances', {
            StringNotEquals: { [`ec2:ResourceTag/${TAG_MANAGED_BY}`]: BATCH_MANAGED_BY },
          }),
        }),
      },
    });
    this.role = role;

    const fn = new TrainingRunReaperFunction(this, 'Function', {
      description: `Terminates Chronos Training instances (${environmentName}) older than their MaxLifetimeHours tag`,
      role,
      logGroup: this.logGroup,
      timeout: Duration.minutes(1),
      memorySize: 256,
      environment: {
        FILTER_TAGS: JSON.stringify({ [TAG_PROJECT]: PROJECT_TAG_VALUE, [TAG_ENVIRONMENT]: environmentName }),
        EXCLUDE_TAGS: JSON.stringify({ [TAG_MANAGED_BY]: BATCH_MANAGED_BY }),
        LIFETIME_TAG_KEY: TAG_MAX_LIFETIME_HOURS,
        // The ceiling: the launch template's tag for this lifetime (lifetime + margin, docs/DESIGN.md).
        DEFAULT_LIFETIME_SECONDS: String(maxLifetimeTagSeconds(lifetimeMinutes * 60)),
        DRY_RUN: String(props.dryRun ?? false),
      },
      // Asynchronous invocations (EventBridge's) that throw are retried twice, then kept in the queue.
      retryAttempts: 2,
      deadLetterQueue: this.deadLetterQueue,
    });
    this.function = fn;
    const cfnFunction = fn.node.defaultChild as lambda.CfnFunction;
    skipCheckov(cfnFunction, 'CKV_AWS_117',
      'Outside a VPC on purpose: it calls only the EC2 API, which from a VPC would need a NAT gateway or an interface ' +
      'endpoint, both billed while idle');
    skipCheckov(cfnFunction, 'CKV_AWS_115',
      'No reserved concurrency: reserving any fails to deploy in accounts whose concurrency limit is the minimum of 10, ' +
      'and one sweep every 15 minutes needs no limit');
    skipCheckov(cfnFunction, 'CKV_AWS_173',
      'The environment variables hold only tag names, the environment name and a lifetime; no secret to encrypt with a ' +
      'KMS key (billed monthly while idle)');

    const rule = new events.Rule(this, 'Schedule', {
      description: `Runs the Chronos Training run reaper (${environmentName})`,
      schedule: props.schedule ?? events.Schedule.rate(Duration.minutes(15)),
    });
    // Events EventBridge cannot deliver to the function are retried, then kept in the same queue.
    rule.addTarget(new targets.LambdaFunction(fn, {
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      deadLetterQueue: this.deadLetterQueue,
    }));
    this.rule = rule;

    const cfnRole = role.node.defaultChild as iam.CfnRole;
    acknowledgeTerminateFindings(cfnRole, 'this region, and the Project and Environment tags');
  }
}
