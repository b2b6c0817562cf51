import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { skipCheckov } from './compliance';
import { awsLogs, awsSqs } from './lazy';

/*
 * The parts every Lambda function of the library has around it (the run reaper's, the run keeper's): a log group
 * with a retention and no KMS key, and a dead-letter queue for failed asynchronous invocations and undeliverable
 * events. Created in the caller's scope as `LogGroup` and `DeadLetterQueue` (their logical IDs).
 */

/**
 * The function's log group `LogGroup`: kept `retention`, destroyed with the stack (operational logs), encrypted by
 * CloudWatch Logs (a KMS key bills monthly while idle; `what` says what the logs hold).
 */
export function functionLogGroup(scope: Construct, retention: logs.RetentionDays, what: string): logs.LogGroup {
  const logGroup = new (awsLogs().LogGroup)(scope, 'LogGroup', { retention, removalPolicy: RemovalPolicy.DESTROY });
  skipCheckov(logGroup.node.defaultChild as logs.CfnLogGroup, 'CKV_AWS_158',
    `Encrypted by CloudWatch Logs by default; a KMS key would bill monthly while idle for ${what}`);
  return logGroup;
}

/**
 * The dead-letter queue `DeadLetterQueue` (SQS: free while empty) of a function's failed asynchronous invocations and
 * of the events EventBridge could not deliver to it: 14 days, SQS-managed encryption, TLS only, and no queue may name
 * it as its own dead-letter queue (Lambda and EventBridge send to it directly).
 */
export function functionDeadLetterQueue(scope: Construct): sqs.Queue {
  const sqsModule = awsSqs();
  const queue = new sqsModule.Queue(scope, 'DeadLetterQueue', {
    retentionPeriod: Duration.days(14),
    encryption: sqsModule.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    redriveAllowPolicy: { redrivePermission: sqsModule.RedrivePermission.DENY_ALL },
  });
  skipCheckov(queue.node.defaultChild as sqs.CfnQueue, 'CKV_AWS_27',
    'Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); checkov accepts only a KMS key, which bills while idle');
  return queue;
}
