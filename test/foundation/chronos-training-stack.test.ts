import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ChronosTrainingFoundationProps, ChronosTrainingStack, ChronosTrainingStackProps } from '../../src';
import { warnings } from '../helpers';

// Records the props each foundation is constructed with (the real foundation still runs).
const received: ChronosTrainingFoundationProps[] = [];
jest.mock('../../src/foundation/chronos-training-foundation', () => {
  const actual = jest.requireActual('../../src/foundation/chronos-training-foundation');
  class RecordingFoundation extends actual.ChronosTrainingFoundation {
    constructor(scope: any, id: string, props: ChronosTrainingFoundationProps) {
      super(scope, id, props);
      received.push(props);
    }
  }
  return { ...actual, ChronosTrainingFoundation: RecordingFoundation };
});

describe('ChronosTrainingStack', () => {
  const saved = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };
  beforeEach(() => {
    delete process.env.CDK_DEFAULT_ACCOUNT;
    delete process.env.CDK_DEFAULT_REGION;
  });
  afterAll(() => {
    for (const [key, value] of [['CDK_DEFAULT_ACCOUNT', saved.account], ['CDK_DEFAULT_REGION', saved.region]] as const) {
      if (value === undefined) delete process.env[key]; else process.env[key] = value;
    }
  });

  function synth(props: ChronosTrainingStackProps = {}, context: Record<string, unknown> = {}) {
    const app = new App({ context });
    const stack = new ChronosTrainingStack(app, 'Training', props);
    return { app, stack, template: Template.fromStack(stack) };
  }

  test('forwards every foundation prop to its foundation', () => {
    const app = new App();
    const existing = new Stack(app, 'Existing', { env: { region: 'us-east-1' } });
    // `Required<>` makes this fail to compile when the foundation gains a prop that is not listed here.
    const all: Required<ChronosTrainingFoundationProps> = {
      environmentName: 'stage',
      costCenter: 'collect',
      regionalNames: true,
      networkProps: { vpcCidr: '10.9.0.0/16', maxAzs: 2 },
      bucketProps: { artifactExpiration: Duration.days(77), removalPolicy: RemovalPolicy.DESTROY },
      instanceRoleProps: { terminateSelfOnly: false, sessionManager: true },
      flowLogs: true,
      launchTemplate: true,
      maxRunLifetime: Duration.hours(5),
      launchTemplateProps: { spot: true },
      runReaper: true,
      runReaperProps: { dryRun: true },
      runKeeper: true,
      runKeeperProps: { logRetention: logs.RetentionDays.ONE_MONTH },
      runNotifications: { emails: ['ml-team@example.com'] },
      budget: { monthlyLimitUsd: 40, notificationEmails: ['ml-team@example.com'] },
      s3EndpointRestriction: true,
      s3EndpointRestrictionProps: { readOnlyBucketNames: ['prod-us-east-1-starport-layer-bucket'] },
      securityGroupProps: { allowHttp: true, allowTrafficWithinGroup: true },
      clusterPlacementGroup: true,
      ssmParameters: false,
      batch: { image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/python:3.12') },
      vpc: new ec2.Vpc(existing, 'Vpc', { natGateways: 0, restrictDefaultSecurityGroup: false }),
      vpcHasS3Endpoint: true,
      bucket: new s3.Bucket(existing, 'Bucket'),
    };
    // A given VPC or bucket contradicts the props of a created one: two stacks cover every prop between them.
    const { vpc, vpcHasS3Endpoint, bucket, ...created } = all;
    const { networkProps, bucketProps, flowLogs, s3EndpointRestriction, s3EndpointRestrictionProps, ...given } = all;
    received.length = 0;
    new ChronosTrainingStack(app, 'Created', { ...created, env: { region: 'us-east-1' } });
    new ChronosTrainingStack(app, 'Given', { ...given, env: { region: 'us-east-1' } });
    expect(received).toHaveLength(2);
    const forwarded = { ...received[0], ...received[1] };
    for (const [key, value] of Object.entries(all)) {
      expect({ [key]: (forwarded as any)[key] }).toEqual({ [key]: value });
    }
    expect([networkProps, bucketProps, flowLogs, s3EndpointRestriction, s3EndpointRestrictionProps, vpc, vpcHasS3Endpoint, bucket]
      .every(v => v !== undefined)).toBe(true);
  });

  test("has the guide's description for its environment", () => {
    expect(synth({}, { environment: 'stage' }).template.toJSON().Description)
      .toBe('Chronos Training Infrastructure (stage) - VPC, S3, IAM, Security Groups');
    expect(synth().template.toJSON().Description)
      .toBe('Chronos Training Infrastructure (dev) - VPC, S3, IAM, Security Groups');
  });

  test('takes a description from props', () => {
    expect(synth({ description: 'mine' }).template.toJSON().Description).toBe('mine');
  });

  test('holds one foundation for the environment and cost center of its props', () => {
    const { stack } = synth({ environmentName: 'prod', costCenter: 'serve' });
    expect(stack.foundation.environmentName).toBe('prod');
    expect(stack.foundation.costCenter).toBe('serve');
    expect(stack.foundation.node.id).toBe('Foundation');
  });

  // Issue 31: the library's context keys are namespaced, as aws-cdk-lib's own are ("Context values", AWS CDK Developer
  // Guide: "Context values are key-value pairs"; feature flags use '@aws-cdk/<module>:<flag>' keys) so that they cannot
  // collide with an app's own context.
  test('reads environment and cost center from the namespaced context keys, with no warning', () => {
    const { stack, template } = synth({}, { '@chronos/training-infra:environment': 'stage', '@chronos/training-infra:costCenter': 'collect' });
    expect([stack.foundation.environmentName, stack.foundation.costCenter]).toEqual(['stage', 'collect']);
    template.hasOutput('*', { Export: { Name: 'ChronosTraining-stage-CostCenter' }, Value: 'collect' });
    expect(warnings(stack).filter(w => w.includes('deprecated'))).toEqual([]);
  });

  test('still reads the bare 0.1 keys, each with a deprecation warning naming its namespaced key', () => {
    const { stack } = synth({}, { environment: 'stage', costCenter: 'collect', account: '222222222222', region: 'us-west-2' });
    expect([stack.foundation.environmentName, stack.foundation.costCenter, stack.account, stack.region])
      .toEqual(['stage', 'collect', '222222222222', 'us-west-2']);
    const deprecations = warnings(stack).filter(w => w.includes('deprecated'));
    expect(deprecations).toHaveLength(4);
    for (const key of ['environment', 'costCenter', 'account', 'region']) {
      expect(deprecations).toContainEqual(expect.stringContaining(`the context key '${key}' is deprecated and will not be read from 1.0: ` +
        `set '@chronos/training-infra:${key}' instead`));
    }
  });

  test('the namespaced key wins over the bare one', () => {
    const { stack } = synth({}, { 'environment': 'stage', '@chronos/training-infra:environment': 'prod' });
    expect(stack.foundation.environmentName).toBe('prod');
    expect(warnings(stack).filter(w => w.includes('deprecated'))).toEqual([]);
  });

  test('names the context key in an invalid value\'s error', () => {
    expect(() => synth({}, { '@chronos/training-infra:environment': 'Bad_Env' }))
      .toThrow(/environmentName \(context '@chronos\/training-infra:environment'\) 'Bad_Env' is invalid/);
  });

  // Issue 31: no silent us-east-1, no process.env. A Stack without env is environment-agnostic ("Environments for the
  // AWS CDK", AWS CDK Developer Guide: a stack without an env is environment-agnostic, and its account and region
  // resolve at deployment through the AWS::AccountId and AWS::Region pseudo parameters).
  test('without env or context the stack is environment-agnostic: pseudo parameters for account and region', () => {
    const { stack, template } = synth();
    expect(stack.resolve(stack.region)).toEqual({ Ref: 'AWS::Region' });
    expect(stack.resolve(stack.account)).toEqual({ Ref: 'AWS::AccountId' });
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: { 'Fn::Join': ['', ['chronos-training-dev-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }]] },
    });
  });

  test("reads no process.env: the CDK CLI's default environment does not make the stack concrete", () => {
    process.env.CDK_DEFAULT_ACCOUNT = '111111111111';
    process.env.CDK_DEFAULT_REGION = 'eu-west-1';
    const { stack } = synth();
    expect(stack.resolve(stack.region)).toEqual({ Ref: 'AWS::Region' });
    expect(stack.resolve(stack.account)).toEqual({ Ref: 'AWS::AccountId' });
  });

  test('takes account and region from the namespaced context keys', () => {
    const { stack, template } = synth({}, { '@chronos/training-infra:account': '222222222222', '@chronos/training-infra:region': 'us-west-2' });
    expect([stack.account, stack.region]).toEqual(['222222222222', 'us-west-2']);
    template.hasResourceProperties('AWS::S3::Bucket', { BucketName: 'chronos-training-dev-222222222222-us-west-2' });
  });

  test('prefers env from props over context', () => {
    const { stack } = synth({ env: { account: '333333333333', region: 'ap-southeast-2' } },
      { '@chronos/training-infra:account': '222222222222', '@chronos/training-infra:region': 'us-west-2' });
    expect([stack.account, stack.region]).toEqual(['333333333333', 'ap-southeast-2']);
  });

  test('names the CloudFormation stack ChronosTraining-{environmentName}-Stack unless told otherwise', () => {
    expect(synth({ environmentName: 'prod' }).stack.stackName).toBe('ChronosTraining-prod-Stack');
    expect(synth({}, { '@chronos/training-infra:environment': 'stage' }).stack.stackName).toBe('ChronosTraining-stage-Stack');
    expect(synth({ stackName: 'Mine' }).stack.stackName).toBe('Mine');
  });

  test('names stacks as the guide does', () => {
    expect(ChronosTrainingStack.stackNameFor('stage')).toBe('ChronosTraining-stage-Stack');
    expect(() => ChronosTrainingStack.stackNameFor('Stage')).toThrow(/environmentName 'Stage' is invalid/);
  });

  test('rejects an invalid environment before creating anything', () => {
    expect(() => synth({ environmentName: 'prod!' })).toThrow(/environmentName 'prod!' is invalid/);
  });

  test('dev, stage and prod synthesize side by side in one app with no shared name or export', () => {
    const app = new App();
    const stacks = ['dev', 'stage', 'prod'].map(environmentName =>
      new ChronosTrainingStack(app, `Training-${environmentName}`, { environmentName }));
    const assembly = app.synth();
    expect(assembly.stacks.map(s => s.stackName).sort()).toEqual(['ChronosTraining-dev-Stack', 'ChronosTraining-prod-Stack', 'ChronosTraining-stage-Stack']);
    const templates = stacks.map(s => Template.fromStack(s));
    const exports = templates.flatMap(t => Object.values(t.findOutputs('*')).map((o: any) => o.Export.Name));
    expect(exports).toHaveLength(36);
    expect(new Set(exports).size).toBe(36);
    const named = templates.flatMap(t => [
      ...Object.values(t.findResources('AWS::S3::Bucket')).map((r: any) => JSON.stringify(r.Properties.BucketName)),
      ...Object.values(t.findResources('AWS::IAM::InstanceProfile')).map((r: any) => r.Properties.InstanceProfileName),
      ...Object.values(t.findResources('AWS::EC2::LaunchTemplate')).map((r: any) => r.Properties.LaunchTemplateName),
    ]);
    expect(new Set(named).size).toBe(9);
  });
});
