import * as fs from 'fs';
import * as path from 'path';
import { App, AssetStaging, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import { TrainingRunReaper, TrainingRunReaperProps } from '../../src';
import { onlyResource, TEST_ENV } from '../helpers';

function build(props: Partial<TrainingRunReaperProps> = {}) {
  const stack = new Stack(new App(), 'TestStack', { env: TEST_ENV });
  const reaper = new TrainingRunReaper(stack, 'Reaper', { environmentName: 'dev', maxRunLifetime: Duration.hours(6), ...props });
  return { stack, reaper, template: Template.fromStack(stack) };
}

describe('TrainingRunReaper', () => {
  test('a rule invokes the function every 15 minutes', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      State: 'ENABLED',
      Targets: [Match.objectLike({
        Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ReaperFunction'), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ReaperDeadLetterQueue'), 'Arn'] } },
      })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'events.amazonaws.com', Action: 'lambda:InvokeFunction' });
  });

  test('the function depends on the policy that lets its role send to the dead-letter queue', () => {
    const { template } = build();
    const fn = onlyResource(template, 'AWS::Lambda::Function');
    const [queuePolicy] = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes('sqs:SendMessage'));
    expect(fn.DependsOn).toContain(queuePolicy[0]);
  });

  test('skips the checkov checks that would add idle costs, inline with reasons', () => {
    const { template } = build();
    const skips = (type: string) => onlyResource(template, type).Metadata.checkov.skip.map((s: any) => s.id);
    expect(skips('AWS::Lambda::Function')).toEqual(['CKV_AWS_117', 'CKV_AWS_115', 'CKV_AWS_173']);
    expect(skips('AWS::Logs::LogGroup')).toEqual(['CKV_AWS_158']);
    expect(skips('AWS::SQS::Queue')).toEqual(['CKV_AWS_27']);
  });

  test('takes another schedule', () => {
    build({ schedule: events.Schedule.rate(Duration.minutes(5)) }).template
      .hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
  });

  test('the function gets its configuration from the environment', () => {
    const fn = onlyResource(build().template, 'AWS::Lambda::Function');
    expect(fn.Properties.Runtime).toBe('nodejs24.x');
    expect(fn.Properties.Handler).toBe('index.handler');
    expect(fn.Properties.Environment.Variables).toEqual(expect.objectContaining({
      FILTER_TAGS: '{"Project":"Chronos-Training","Environment":"dev"}',
      EXCLUDE_TAGS: '{"ManagedBy":"chronos-batch"}',
      LIFETIME_TAG_KEY: 'MaxLifetimeHours',
      // Its ceiling: the 6-hour lifetime plus the 900 s margin, the launch template's tag for it (issue 27, item 2).
      DEFAULT_LIFETIME_SECONDS: String(21600 + 900),
      DRY_RUN: 'false',
    }));
  });

  test('dry run is passed to the function', () => {
    const fn = onlyResource(build({ dryRun: true }).template, 'AWS::Lambda::Function');
    expect(fn.Properties.Environment.Variables.DRY_RUN).toBe('true');
  });

  test('failed asynchronous invocations are retried twice, then sent to the dead-letter queue', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 2 });
    const fn = onlyResource(template, 'AWS::Lambda::Function');
    expect(fn.Properties.DeadLetterConfig).toEqual({ TargetArn: { 'Fn::GetAtt': [expect.stringMatching(/^ReaperDeadLetterQueue/), 'Arn'] } });
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
  });

  test('the dead-letter queue refuses to be any source queue\'s redrive target (only Lambda and EventBridge send to it)', () => {
    build().template.hasResourceProperties('AWS::SQS::Queue', { RedriveAllowPolicy: { redrivePermission: 'denyAll' } });
  });

  test('logs go to an explicit log group kept one year: the record of automatic terminations (a few MB)', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
    const fn = onlyResource(template, 'AWS::Lambda::Function');
    expect(fn.Properties.LoggingConfig).toEqual({ LogGroup: { Ref: expect.stringMatching(/^ReaperLogGroup/) } });
    expect(onlyResource(template, 'AWS::Logs::LogGroup').DeletionPolicy).toBe('Delete');
  });

  test('log retention is a prop', () => {
    build({ logRetention: logs.RetentionDays.THREE_DAYS }).template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 3 });
  });

  test('creates no alarm and nothing that bills while idle', () => {
    const { template } = build();
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    expect(Object.values(template.toJSON().Resources).map((r: any) => r.Type).sort()).toEqual([
      'AWS::Events::Rule', 'AWS::IAM::Policy', 'AWS::IAM::Role', 'AWS::Lambda::EventInvokeConfig', 'AWS::Lambda::Function',
      'AWS::Lambda::Permission', 'AWS::Logs::LogGroup', 'AWS::SQS::Queue', 'AWS::SQS::QueuePolicy',
    ]);
  });

  test('its role may describe instances and terminate only this project and environment, in this region, never AWS Batch instances', () => {
    const role = onlyResource(build().template, 'AWS::IAM::Role');
    const terminate = role.Properties.Policies.find((p: any) => p.PolicyName === 'TerminateExpiredInstances').PolicyDocument.Statement;
    expect(terminate).toEqual([
      { Sid: 'DescribeInstances', Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*' },
      {
        Sid: 'TerminateProjectEnvironmentInstances',
        Effect: 'Allow',
        Action: 'ec2:TerminateInstances',
        Resource: 'arn:*:ec2:*:*:instance/*',
        Condition: {
          StringEquals: { 'ec2:Region': 'us-east-1', 'ec2:ResourceTag/Project': 'Chronos-Training', 'ec2:ResourceTag/Environment': 'dev' },
          StringNotEquals: { 'ec2:ResourceTag/ManagedBy': 'chronos-batch' },
        },
      },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  test('the bundled handler exists where the function points (run `npx projen bundle` first)', () => {
    const { stack } = build();
    const asset = path.join(__dirname, '..', '..', 'assets', 'guardrails', 'training-run-reaper.lambda', 'index.js');
    expect(fs.existsSync(asset)).toBe(true);
    const source = fs.readFileSync(asset, 'utf8');
    expect(source).toContain('TerminateInstancesCommand');
    // The SDK is external: the runtime provides it.
    expect(source).toMatch(/require\("@aws-sdk\/client-ec2"\)/);
    // The function's asset is staged from exactly that directory.
    const staged = stack.node.findAll().filter((c): c is AssetStaging => c instanceof AssetStaging).map(a => a.sourcePath);
    expect(staged).toEqual([path.dirname(asset)]);
  });

  test.each<[string, Duration, RegExp]>([
    ['under 15 minutes', Duration.minutes(10), /maxRunLifetime is 10 minutes; it must be a whole number of minutes from 15/],
    ['fractional minutes', Duration.seconds(1000), /maxRunLifetime is 16 minutes 40 seconds/],
    ['over 14 days', Duration.days(15), /maxRunLifetime is 15 days; .* to 20160 \(14 days\)/],
  ])('rejects a lifetime %s', (_name, maxRunLifetime, message) => {
    expect(() => build({ maxRunLifetime })).toThrow(message);
  });

  test('without maxRunLifetime, untagged instances live 4 hours plus the 900 s margin', () => {
    const stack = new Stack(new App(), 'TestStack', { env: TEST_ENV });
    new TrainingRunReaper(stack, 'Reaper', { environmentName: 'dev' });
    const fn = onlyResource(Template.fromStack(stack), 'AWS::Lambda::Function');
    expect(fn.Properties.Environment.Variables.DEFAULT_LIFETIME_SECONDS).toBe(String(4 * 3600 + 900));
  });

  test('rejects a bad environment name, naming the prop', () => {
    expect(() => build({ environmentName: 'Dev' })).toThrow(/environmentName 'Dev' is invalid/);
  });
});
