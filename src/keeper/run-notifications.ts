import { Token } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { RUN_ENDED_DETAIL_TYPE, RUN_EVENT_SOURCE } from './run-events';
import { acknowledgeNag, skipCheckov } from '../private/compliance';
import { awsEvents, awsEventsTargets, awsSns, awsSnsSubscriptions } from '../private/lazy';
import { isEmailAddress, validateEnvironment } from '../private/validation';

/**
 * Options of `RunNotifications`: who is told when a run ends.
 */
export interface RunNotificationsOptions {
  /**
   * The email addresses told when a run of the environment ends. Each receives a confirmation email from SNS
   * first, and nothing until it confirms.
   */
  readonly emails: string[];
}

/**
 * Properties of `RunNotifications`.
 */
export interface RunNotificationsProps extends RunNotificationsOptions {
  /** The environment whose runs' end is told (the end event's `detail.environment`). */
  readonly environmentName: string;
}

/**
 * Word when a training run ends: an SNS topic with an email subscription per address, and an EventBridge rule on the
 * default bus matching the end event of this environment's runs (source `chronos.training`, detail-type
 * `Chronos Training Run Ended`, published by the run keeper or the CLI, docs/RUNS.md) with the topic as its target.
 * An input transformer writes the message: the run, its state and reason, the attempts, the duration, the estimated
 * cost and the `logs` command to run.
 *
 * The topic has no KMS customer managed key (a key bills every month while idle, and the message holds no secret); it
 * accepts only TLS requests. Nothing bills while idle: SNS bills per publish and per email, EventBridge per custom
 * event published.
 */
export class RunNotifications extends Construct {
  /** The topic the end of each run is published to; subscribe more endpoints to it. */
  public readonly topic: sns.ITopic;

  /** The rule matching the end events of this environment's runs. */
  public readonly rule: events.IRule;

  /**
   * @param scope the parent construct
   * @param id the construct id (part of every logical ID below it: keep it stable)
   * @param props the properties
   */
  constructor(scope: Construct, id: string, props: RunNotificationsProps) {
    super(scope, id);
    const events = awsEvents();
    const targets = awsEventsTargets();
    const sns = awsSns();
    const subscriptions = awsSnsSubscriptions();
    const environmentName = validateEnvironment(props.environmentName, 'environmentName');
    const emails = validateNotificationEmails(props.emails);

    const topic = new sns.Topic(this, 'Topic', {
      displayName: `Chronos Training runs (${environmentName})`,
      enforceSSL: true,
    });
    const cfnTopic = topic.node.defaultChild as sns.CfnTopic;
    skipCheckov(cfnTopic, 'CKV_AWS_26',
      'No KMS customer managed key: it bills every month while idle, and the message (run ID, state, cost estimate) holds no secret');
    acknowledgeNag(cfnTopic, 'AwsSolutions-SNS2',
      'No server-side encryption with a KMS customer managed key: it bills every month while idle, and the message holds no secret');
    for (const email of emails) {
      topic.addSubscription(new subscriptions.EmailSubscription(email));
    }
    this.topic = topic;

    const field = (name: string) => events.EventField.fromPath(`$.detail.${name}`);
    const rule = new events.Rule(this, 'RunEnded', {
      description: `Tells the subscribers of the Chronos Training runs topic (${environmentName}) when a run ends`,
      eventPattern: {
        source: [RUN_EVENT_SOURCE],
        detailType: [RUN_ENDED_DETAIL_TYPE],
        detail: { environment: [environmentName] },
      },
    });
    rule.addTarget(new targets.SnsTopic(topic, {
      message: events.RuleTargetInput.fromText(
        `Chronos Training run ${field('name')} (${field('runId')}, environment ${field('environment')}) ended: ` +
        `${field('state')} (${field('reason')}). Attempts: ${field('attempts')}. Duration: ${field('durationSeconds')} s. ` +
        `Cost: ${field('estimatedCostUsd')} USD (an estimate, from the prices AWS publishes). ` +
        `Logs: ${field('logsCommand')}`),
    }));
    this.rule = rule;
  }
}

/** The addresses, checked: at least one, each an email address (tokens pass). */
function validateNotificationEmails(emails: string[]): string[] {
  if (emails.length === 0) {
    throw new Error('runNotifications.emails is empty; give at least one email address to tell when a run ends');
  }
  for (const email of emails) {
    if (!Token.isUnresolved(email) && !isEmailAddress(email)) {
      throw new Error(`runNotifications.emails contains '${email}', which is not an email address (name@domain.tld)`);
    }
  }
  return emails;
}
