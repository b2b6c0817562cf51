/*
 * The modules only the opt-in parts need, loaded when a part is created rather than when the
 * library is required: importing the library then costs what its default stack uses, and a
 * synth pays only for the parts it creates (docs/DEVELOPMENT.md, "Synth cost").
 *
 * A module using one imports its types only (`import type * as batch from 'aws-cdk-lib/aws-batch'`)
 * and, where it needs a value (a class, an enum, a static), calls the loader in that function:
 * `const batch = awsBatch();`. The local constant shadows the type-only import for values only,
 * so type annotations such as `batch.IJobQueue` are unchanged. Nothing at a module's top level may
 * call a loader.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import type * as batch from 'aws-cdk-lib/aws-batch';
import type * as budgets from 'aws-cdk-lib/aws-budgets';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as snsSubscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as batchQueue from '../batch/training-batch-queue';
import type * as budget from '../guardrails/training-budget';
import type * as reaper from '../guardrails/training-run-reaper';
import type * as reaperFunction from '../guardrails/training-run-reaper-function';
import type * as runNotifications from '../keeper/run-notifications';
import type * as keeper from '../keeper/training-run-keeper';

/** A loader that requires its module on the first call and returns the same module after. */
function lazy<T>(load: () => T): () => T {
  let loaded: T | undefined;
  return () => loaded ??= load();
}

export const awsBatch = lazy<typeof batch>(() => require('aws-cdk-lib/aws-batch'));
export const awsBudgets = lazy<typeof budgets>(() => require('aws-cdk-lib/aws-budgets'));
export const awsEcs = lazy<typeof ecs>(() => require('aws-cdk-lib/aws-ecs'));
export const awsEvents = lazy<typeof events>(() => require('aws-cdk-lib/aws-events'));
export const awsEventsTargets = lazy<typeof targets>(() => require('aws-cdk-lib/aws-events-targets'));
export const awsLambda = lazy<typeof lambda>(() => require('aws-cdk-lib/aws-lambda'));
export const awsLogs = lazy<typeof logs>(() => require('aws-cdk-lib/aws-logs'));
export const awsScheduler = lazy<typeof scheduler>(() => require('aws-cdk-lib/aws-scheduler'));
export const awsSns = lazy<typeof sns>(() => require('aws-cdk-lib/aws-sns'));
export const awsSnsSubscriptions = lazy<typeof snsSubscriptions>(() => require('aws-cdk-lib/aws-sns-subscriptions'));
export const awsSqs = lazy<typeof sqs>(() => require('aws-cdk-lib/aws-sqs'));

/** The library's own opt-in construct modules, which the foundation creates only when their props are given. */
export const trainingBatchQueueModule = lazy<typeof batchQueue>(() => require('../batch/training-batch-queue'));
export const trainingBudgetModule = lazy<typeof budget>(() => require('../guardrails/training-budget'));
export const trainingRunReaperModule = lazy<typeof reaper>(() => require('../guardrails/training-run-reaper'));
/** The reaper's Lambda function class extends lambda.Function, so loading its module loads aws-lambda. */
export const trainingRunReaperFunctionModule = lazy<typeof reaperFunction>(() => require('../guardrails/training-run-reaper-function'));
/** The run keeper (on by default, but not loaded with `runKeeper: false`) and the run notifications (opt-in). */
export const trainingRunKeeperModule = lazy<typeof keeper>(() => require('../keeper/training-run-keeper'));
export const runNotificationsModule = lazy<typeof runNotifications>(() => require('../keeper/run-notifications'));
