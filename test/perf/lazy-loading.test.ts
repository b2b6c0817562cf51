/*
 * Importing the library stays cheap, and a synth loads only the aws-cdk-lib submodules of the
 * parts it uses: the opt-in parts (the Batch queue, the run reaper, the budget, an imported
 * foundation's Batch queue) load theirs when they are created, not when the library is required.
 *
 * Each case runs in a child Node.js process (the source through ts-node, transpile only), so
 * that `require.cache` is Node's own, as a user's `cdk synth` sees it, and not jest's registry.
 * It asserts which modules load, never how long anything takes.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..');

/** The aws-cdk-lib submodules of the opt-in parts: the default stack (VPC, bucket, role, security group, launch template, SSM parameters) needs none. */
const OPT_IN_MODULES = [
  'aws-batch', 'aws-ecs', 'aws-lambda', 'aws-lambda-nodejs', 'aws-scheduler', 'aws-budgets',
  'aws-sns', 'aws-sqs', 'aws-events', 'aws-events-targets', 'aws-logs',
];

/** What the same resources written as plain aws-cdk-lib code load (scripts/bench/synth-default.js plain). */
const DEFAULT_STACK_MODULES = ['aws-ec2', 'aws-iam', 'aws-s3', 'aws-ssm'];

/** What the run keeper (`runKeeper`, on by default, src/keeper/) loads: its function, rule, log group, dead-letter queue, schedule group. */
const KEEPER_MODULES = ['aws-events', 'aws-events-targets', 'aws-lambda', 'aws-logs', 'aws-scheduler', 'aws-sqs'];

const PRELUDE = `
const loaded = () => [...new Set(Object.keys(require.cache)
  .map(f => /[\\\\/]aws-cdk-lib[\\\\/](aws-[^\\\\/]+)[\\\\/]/.exec(f)).filter(m => m).map(m => m[1]))].sort();
const env = { account: '123456789012', region: 'us-east-1' };
`;

/**
 * Runs `body` in a child process after the prelude and prints `loaded()` (the aws-cdk-lib/aws-*
 * submodules in require.cache) at its end.
 */
function modulesLoadedBy(body: string): string[] {
  const script = `${PRELUDE}\n${body}\nprocess.stdout.write(JSON.stringify(loaded()));`;
  const run = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.dev.json') },
  });
  if (run.status !== 0) {
    throw new Error(`child process exited with ${run.status}: ${run.stderr}`);
  }
  return JSON.parse(run.stdout);
}

const optInIn = (modules: string[]) => modules.filter(m => OPT_IN_MODULES.includes(m));

describe('lazy loading of the opt-in parts', () => {
  test('requiring the library loads no opt-in module', () => {
    const modules = modulesLoadedBy("require('./src');");
    expect(optInIn(modules)).toEqual([]);
  });

  test('synthesizing a ChronosTrainingStack with runKeeper: false loads what plain aws-cdk-lib code loads, and no opt-in module', () => {
    const modules = modulesLoadedBy(`
      const { App } = require('aws-cdk-lib');
      const { ChronosTrainingStack } = require('./src');
      const app = new App();
      new ChronosTrainingStack(app, 'ChronosTraining', { env, runKeeper: false });
      app.synth();
    `);
    expect(optInIn(modules)).toEqual([]);
    expect(modules).toEqual(DEFAULT_STACK_MODULES);
  });

  test('the default ChronosTrainingStack adds the run keeper\'s modules (on by default), and no other opt-in module', () => {
    const modules = modulesLoadedBy(`
      const { App } = require('aws-cdk-lib');
      const { ChronosTrainingStack } = require('./src');
      const app = new App();
      new ChronosTrainingStack(app, 'ChronosTraining', { env });
      app.synth();
    `);
    expect(optInIn(modules)).toEqual(KEEPER_MODULES);
    // aws-s3-assets: the function's code asset (assets/keeper/).
    expect(modules).toEqual([...DEFAULT_STACK_MODULES, ...KEEPER_MODULES, 'aws-s3-assets'].sort());
  });

  test('a foundation with batch loads aws-batch (and aws-ecs, aws-logs) when it synthesizes', () => {
    const modules = modulesLoadedBy(`
      const { App } = require('aws-cdk-lib');
      const { ChronosTrainingStack } = require('./src');
      const before = loaded();
      if (before.includes('aws-batch')) throw new Error('aws-batch loaded before the foundation was created');
      const ecs = require('aws-cdk-lib/aws-ecs');
      const app = new App();
      new ChronosTrainingStack(app, 'ChronosTraining', {
        env, runKeeper: false, batch: { image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/python:3.12') },
      });
      app.synth();
    `);
    expect(modules).toEqual(expect.arrayContaining(['aws-batch', 'aws-ecs', 'aws-logs']));
    expect(modules).not.toContain('aws-budgets');
    expect(modules).not.toContain('aws-lambda');
  });

  test('a foundation with runReaper and budget loads their modules, and not aws-batch', () => {
    const modules = modulesLoadedBy(`
      const { App } = require('aws-cdk-lib');
      const { ChronosTrainingStack } = require('./src');
      const app = new App();
      new ChronosTrainingStack(app, 'ChronosTraining', {
        env, runReaper: true, budget: { monthlyLimitUsd: 50, notificationEmails: ['ml-team@example.com'] },
      });
      app.synth();
    `);
    expect(modules).toEqual(expect.arrayContaining(['aws-lambda', 'aws-events', 'aws-events-targets', 'aws-sqs', 'aws-logs', 'aws-budgets']));
    expect(modules).not.toContain('aws-batch');
  });

  test('importing a foundation with its Batch queue loads aws-batch; without it, not', () => {
    const importIt = (batch: boolean) => `
      const { App, Stack } = require('aws-cdk-lib');
      const { ChronosTrainingFoundation } = require('./src');
      const stack = new Stack(new App(), 'Consumer', { env });
      const f = ChronosTrainingFoundation.fromEnvironment(stack, 'Foundation', 'dev', { batch: ${batch} });
      if (${batch} && !f.batchJobQueue) throw new Error('no batchJobQueue');
    `;
    expect(modulesLoadedBy(importIt(false))).not.toContain('aws-batch');
    expect(modulesLoadedBy(importIt(true))).toContain('aws-batch');
  });
});
