import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Template, Match } from 'aws-cdk-lib/assertions';
import { TrainingBucket, TrainingBucketProps } from '../src';
import { agnosticStack, concreteStack, onlyResource, warnings } from './helpers';

describe('TrainingBucket', () => {
  function synth(props: TrainingBucketProps = {}) {
    const stack = agnosticStack();
    const construct = new TrainingBucket(stack, 'Training', props);
    return { stack, construct, template: Template.fromStack(stack) };
  }

  function rules(template: Template): any[] {
    return onlyResource(template, 'AWS::S3::Bucket').Properties.LifecycleConfiguration.Rules;
  }

  test('names the bucket chronos-training-{env}-{account}-{region} with pseudo parameters when environment-agnostic', () => {
    const { template } = synth({ environment: 'stage' });
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: {
        'Fn::Join': ['', ['chronos-training-stage-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }]],
      },
    });
  });

  test('names the bucket with the literal account and region of a concrete stack', () => {
    const stack = concreteStack();
    new TrainingBucket(stack, 'Training', { environment: 'prod' });
    Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
      BucketName: 'chronos-training-prod-123456789012-us-east-1',
    });
  });

  test('encrypts with SSE-S3, blocks all public access and is unversioned', () => {
    const { template } = synth();
    const bucket = onlyResource(template, 'AWS::S3::Bucket');
    expect(bucket.Properties.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
    });
    expect(bucket.Properties.VersioningConfiguration).toBeUndefined();
  });

  test('denies requests that do not use TLS', () => {
    const { template } = synth();
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Effect: 'Deny',
          Action: 's3:*',
          Principal: { AWS: '*' },
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        })]),
      },
    });
  });

  test('is retained when removed from the stack, by default', () => {
    const { template } = synth();
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });

  test('takes a removal policy', () => {
    const { template } = synth({ removalPolicy: RemovalPolicy.DESTROY });
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
  });

  test("has the guide's lifecycle rules for dev by default", () => {
    const { template } = synth();
    expect(rules(template)).toEqual([
      { Id: 'TrainingLogs', Status: 'Enabled', Prefix: 'dev/logs/', ExpirationInDays: 14 },
      {
        Id: 'ModelArtifacts',
        Status: 'Enabled',
        Prefix: 'dev/',
        ExpirationInDays: 90,
        Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }],
      },
    ]);
  });

  test('scopes lifecycle rules to its environment and takes the retention periods', () => {
    const { template } = synth({
      environment: 'prod',
      logRetention: Duration.days(7),
      artifactTransition: Duration.days(45),
      artifactExpiration: Duration.days(365),
    });
    expect(rules(template)).toEqual([
      expect.objectContaining({ Prefix: 'prod/logs/', ExpirationInDays: 7 }),
      expect.objectContaining({
        Prefix: 'prod/',
        ExpirationInDays: 365,
        Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 45 }],
      }),
    ]);
  });

  test('exposes the bucket and the environment', () => {
    const { stack, construct } = synth({ environment: 'stage' });
    expect(construct.environment).toBe('stage');
    expect(stack.resolve(construct.bucket.bucketName)).toEqual({ Ref: expect.stringMatching(/^TrainingBucket/) });
  });

  test.each<[string, TrainingBucketProps, RegExp]>([
    ['a transition before 30 days', { artifactTransition: Duration.days(29) },
      /artifactTransition is 29 days; it must be at least 30 days \(S3 moves objects to STANDARD_IA no earlier than 30 days/],
    ['an expiration equal to the transition', { artifactExpiration: Duration.days(30) },
      /artifactExpiration \(30 days\) must be later than artifactTransition \(30 days\)/],
    ['an expiration before the transition', { artifactTransition: Duration.days(60), artifactExpiration: Duration.days(45) },
      /artifactExpiration \(45 days\) must be later than artifactTransition \(60 days\)/],
    ['a log retention of zero days', { logRetention: Duration.days(0) }, /logRetention is 0 days; it must be at least 1 days/],
    ['a fractional log retention', { logRetention: Duration.hours(36) }, /logRetention is 1 day 12 hours; S3 lifecycle rules take a whole number of days/],
    ['an invalid environment', { environment: 'dev_1' }, /environment 'dev_1' is invalid/],
  ])('rejects %s', (_name, props, message) => {
    expect(() => synth(props)).toThrow(message);
  });

  test('warns when logs would outlive the artifact rule that also covers them', () => {
    const { stack } = synth({ logRetention: Duration.days(120) });
    expect(warnings(stack)).toEqual([expect.stringMatching(/logRetention \(120 days\) is longer than artifactExpiration \(90 days\)/)]);
  });

  test('does not warn with the defaults', () => {
    const { stack } = synth();
    expect(warnings(stack)).toEqual([]);
  });
});
