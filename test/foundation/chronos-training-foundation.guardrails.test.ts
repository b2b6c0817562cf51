import { App, CfnResource, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { ChronosTrainingFoundation, ChronosTrainingFoundationProps, ChronosTrainingStack, ZeroIdleCostChecker } from '../../src';
import { agnosticStack, nagFindings, onlyResource, resourcesOf, TEST_ENV } from '../helpers';

function foundation(props: ChronosTrainingFoundationProps = {}) {
  const stack = agnosticStack();
  const f = new ChronosTrainingFoundation(stack, 'Foundation', props);
  return { stack, foundation: f, template: Template.fromStack(stack) };
}

const errors = (stack: Stack) => Annotations.fromStack(stack).findError('*', Match.anyValue()).map(e => String(e.entry.data));

describe('the foundation and the stack check idle costs', () => {
  test('the default stack has no idle-cost error or warning', () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack');
    expect(errors(stack)).toEqual([]);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('bill'))).toEqual([]);
  });

  test('with every guardrail on, still nothing that bills while idle', () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', {
      maxRunLifetime: Duration.hours(6),
      runReaper: true,
      budget: { monthlyLimitUsd: 50, notificationEmails: ['ml-team@example.com'], denyRunInstancesAtLimit: { roles: ['Launcher'] } },
      s3EndpointRestriction: true,
      bucketProps: { recoverableOutputs: Duration.days(7) },
    });
    expect(errors(stack)).toEqual([]);
  });

  test('a NAT gateway added inside the foundation is an error, reported once although the stack checks too', () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack');
    new ec2.CfnNatGateway(stack.foundation, 'Nat', { subnetId: stack.foundation.publicSubnets[0].subnetId });
    expect(errors(stack)).toEqual([expect.stringMatching(/^ChronosTraining-dev-Stack\/Foundation\/Nat \(AWS::EC2::NatGateway\) bills while no training run is active: it bills for every hour it exists/)]);
  });

  test('the stack checks resources outside its foundation', () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack');
    new CfnResource(stack, 'Key', { type: 'AWS::KMS::Key' });
    expect(errors(stack)).toEqual([expect.stringContaining('ChronosTraining-dev-Stack/Key (AWS::KMS::Key)')]);
  });

  test('a foundation in a user stack checks its own subtree only', () => {
    const { stack, foundation: f } = foundation();
    new CfnResource(stack, 'UsersOwnKey', { type: 'AWS::KMS::Key' });
    new CfnResource(f, 'Key', { type: 'AWS::KMS::Key' });
    expect(errors(stack)).toEqual([expect.stringContaining('TestStack/Foundation/Key (AWS::KMS::Key)')]);
  });

  test('allowResourceType lets a deliberate resource through the foundation\'s and the stack\'s checkers', () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack');
    const key = new CfnResource(stack.foundation, 'Key', { type: 'AWS::KMS::Key' });
    ZeroIdleCostChecker.allowResourceType(key, 'AWS::KMS::Key', 'Encrypts the model registry, which outlives every run');
    expect(errors(stack)).toEqual([]);
  });
});

describe('the launch template of the foundation', () => {
  test('carries the foundation\'s profile and security group, and its environment and cost center in the tags', () => {
    const { stack, foundation: f, template } = foundation({ environmentName: 'stage', costCenter: 'collect', maxRunLifetime: Duration.hours(2) });
    const data = onlyResource(template, 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData;
    expect(data.IamInstanceProfile).toEqual({ Arn: stack.resolve((f.instanceProfile as any).instanceProfileArn) });
    expect(data.SecurityGroupIds).toEqual([stack.resolve(f.securityGroup.securityGroupId)]);
    const instanceTags = Object.fromEntries(data.TagSpecifications[0].Tags.map((t: any) => [t.Key, t.Value]));
    expect(instanceTags).toEqual({
      Name: 'chronos-training-stage',
      Project: 'Chronos-Training',
      Environment: 'stage',
      CostCenter: 'collect',
      MaxLifetimeHours: '2.25',
      ManagedBy: 'chronos-launch-template',
    });
  });

  test('the template itself is tagged ManagedBy=CDK like every other resource of the foundation', () => {
    const { template } = foundation();
    const own = onlyResource(template, 'AWS::EC2::LaunchTemplate').Properties.TagSpecifications[0];
    expect(own.ResourceType).toBe('launch-template');
    expect(own.Tags).toEqual(expect.arrayContaining([{ Key: 'ManagedBy', Value: 'CDK' }, { Key: 'Project', Value: 'Chronos-Training' }]));
  });
});

describe('one run lifetime', () => {
  const lifetimes = (props: ChronosTrainingFoundationProps) => {
    const { template } = foundation({ ...props, runReaper: true, runKeeper: false, batch: { image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/python:3.12') } });
    const launchTemplate = resourcesOf(template, 'AWS::EC2::LaunchTemplate').find(lt => lt.Properties.LaunchTemplateName);
    const tags = launchTemplate.Properties.LaunchTemplateData.TagSpecifications[0].Tags;
    return {
      tagHours: tags.find((t: any) => t.Key === 'MaxLifetimeHours').Value,
      reaperSeconds: onlyResource(template, 'AWS::Lambda::Function').Properties.Environment.Variables.DEFAULT_LIFETIME_SECONDS,
      batchSeconds: resourcesOf(template, 'AWS::Batch::JobDefinition').map(jd => jd.Properties.Timeout.AttemptDurationSeconds),
    };
  };

  // The tag and the reaper's ceiling carry the 900 s margin for the boot, the agent's drain and its backstop (issue 27,
  // item 2): the reaper counts from LaunchTime (EC2 API Reference, "Instance"), the agent from its start after the boot.
  test('maxRunLifetime reaches the launch template\'s tag and the reaper\'s ceiling (plus the margin) and the Batch job timeout', () => {
    expect(lifetimes({ maxRunLifetime: Duration.minutes(90) })).toEqual({ tagHours: '1.75', reaperSeconds: '6300', batchSeconds: [5400] });
  });

  test('by default the run lasts 4 hours: the tag and the reaper\'s ceiling are 4.25 hours', () => {
    expect(lifetimes({})).toEqual({ tagHours: '4.25', reaperSeconds: '15300', batchSeconds: [14400] });
  });

  test('the README\'s guardrails example gives all three the same lifetime', () => {
    expect(lifetimes({ maxRunLifetime: Duration.hours(4), launchTemplateProps: { spot: true } }))
      .toEqual({ tagHours: '4.25', reaperSeconds: '15300', batchSeconds: [14400] });
  });
});

describe('opt-in guardrails of the foundation', () => {
  test('none by default: no reaper, no budget, an open endpoint, an unversioned bucket; the run keeper only', () => {
    const { foundation: f, template } = foundation();
    expect([f.runReaper, f.budget, f.runNotifications]).toEqual([undefined, undefined, undefined]);
    expect(f.runKeeper?.node.id).toBe('Keeper');
    expect(onlyResource(template, 'AWS::Lambda::Function').Properties.Handler).toBe('chronos_training.keeper.handler');
    template.resourceCountIs('AWS::Budgets::Budget', 0);
    expect(onlyResource(template, 'AWS::EC2::VPCEndpoint').Properties.PolicyDocument).toBeUndefined();
    expect(onlyResource(template, 'AWS::S3::Bucket').Properties.VersioningConfiguration).toBeUndefined();
  });

  test('runReaper creates the reaper for this environment, with the foundation\'s maxRunLifetime', () => {
    const { foundation: f, template } = foundation({ environmentName: 'stage', maxRunLifetime: Duration.hours(5), runReaper: true, runKeeper: false });
    expect(f.runReaper?.node.id).toBe('Reaper');
    expect(onlyResource(template, 'AWS::Lambda::Function').Properties.Environment.Variables).toEqual(expect.objectContaining({
      FILTER_TAGS: '{"Project":"Chronos-Training","Environment":"stage"}',
      DEFAULT_LIFETIME_SECONDS: String(5 * 3600 + 900),
    }));
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
  });

  test('budget creates the budget for this environment', () => {
    const { foundation: f, template } = foundation({ environmentName: 'stage', budget: { monthlyLimitUsd: 75, notificationEmails: ['a@example.com'] } });
    expect(f.budget?.budgetName).toBe('ChronosTraining-stage');
    expect(onlyResource(template, 'AWS::Budgets::Budget').Properties.Budget.BudgetLimit).toEqual({ Amount: 75, Unit: 'USD' });
  });

  test('s3EndpointRestriction admits the training bucket, the Amazon Linux repositories and the buckets of its props', () => {
    const { stack, foundation: f, template } = foundation({ s3EndpointRestriction: true, s3EndpointRestrictionProps: { readOnlyBucketNames: ['my-datasets'] } });
    const statements = onlyResource(template, 'AWS::EC2::VPCEndpoint').Properties.PolicyDocument.Statement;
    expect(statements.map((s: any) => s.Sid)).toEqual(['TrainingBucket', 'ReadOnlyBuckets']);
    expect(statements[0].Resource).toEqual([stack.resolve(f.bucket.bucketArn), stack.resolve(f.bucket.arnForObjects('*'))]);
    expect(JSON.stringify(statements[1].Resource)).toContain('al2023-repos-');
    expect(JSON.stringify(statements[1].Resource)).toContain(':s3:::my-datasets/*');
  });

  test('bucketProps.recoverableOutputs versions the bucket and expires previous versions and orphan delete markers', () => {
    const { template } = foundation({ bucketProps: { recoverableOutputs: Duration.days(7) } });
    const bucket = onlyResource(template, 'AWS::S3::Bucket');
    expect(bucket.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.Properties.LifecycleConfiguration.Rules).toContainEqual({
      Id: 'RecoverableOutputs',
      Status: 'Enabled',
      NoncurrentVersionExpiration: { NoncurrentDays: 7 },
      ExpiredObjectDeleteMarker: true,
    });
    expect(bucket.Metadata.checkov.skip.map((s: any) => s.id)).not.toContain('CKV_AWS_21');
  });

  test.each<[string, ChronosTrainingFoundationProps, RegExp]>([
    ['a fractional recovery window', { bucketProps: { recoverableOutputs: Duration.hours(36) } }, /recoverableOutputs is 1 day 12 hours; S3 lifecycle rules take a whole number of days/],
    ['a zero recovery window', { bucketProps: { recoverableOutputs: Duration.days(0) } }, /recoverableOutputs is 0 days; it must be at least 1 days/],
    ['a short run lifetime', { maxRunLifetime: Duration.minutes(5) }, /maxRunLifetime is 5 minutes; it must be a whole number of minutes from 15/],
    ['a run lifetime longer than 14 days', { maxRunLifetime: Duration.days(30) }, /maxRunLifetime is 30 days; .* to 20160 \(14 days\)/],
    ['reaper options without the reaper', { runReaperProps: { dryRun: true } }, /runReaperProps is set but runReaper is not true/],
    ['a budget without email', { budget: { monthlyLimitUsd: 10, notificationEmails: [] } }, /notificationEmails is empty/],
  ])('rejects %s, naming the prop', (_name, props, message) => {
    expect(() => foundation(props)).toThrow(message);
  });

  test('cdk-nag reports nothing unacknowledged with every guardrail on', () => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', {
      env: TEST_ENV,
      maxRunLifetime: Duration.hours(6),
      runReaper: true,
      budget: { monthlyLimitUsd: 50, notificationEmails: ['ml-team@example.com'], denyRunInstancesAtLimit: { roles: ['Launcher'] } },
      s3EndpointRestriction: true,
      bucketProps: { recoverableOutputs: Duration.days(7) },
    });
    expect(nagFindings(stack)).toEqual([]);
  });
});
