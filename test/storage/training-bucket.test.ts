import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Template, Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { TrainingBucket, TrainingBucketProps } from '../../src';
import { agnosticStack, concreteStack, onlyResource, warnings } from '../helpers';

describe('TrainingBucket', () => {
  function synth(props: Partial<TrainingBucketProps> = {}) {
    const stack = agnosticStack();
    const construct = new TrainingBucket(stack, 'Training', { environmentName: 'dev', ...props });
    return { stack, construct, get template() { return Template.fromStack(stack); } };
  }

  function rules(template: Template): any[] {
    return onlyResource(template, 'AWS::S3::Bucket').Properties.LifecycleConfiguration.Rules;
  }

  test('names the bucket chronos-training-{env}-{account}-{region} with pseudo parameters when environment-agnostic', () => {
    const { template } = synth({ environmentName: 'stage' });
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: {
        'Fn::Join': ['', ['chronos-training-stage-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }]],
      },
    });
  });

  test('names the bucket with the literal account and region of a concrete stack', () => {
    const stack = concreteStack();
    new TrainingBucket(stack, 'Training', { environmentName: 'prod' });
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
      { Id: 'AbortIncompleteMultipartUploads', Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } },
    ]);
  });

  test('scopes lifecycle rules to its environment and takes the retention periods', () => {
    const { template } = synth({
      environmentName: 'prod',
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
      expect.objectContaining({ Id: 'AbortIncompleteMultipartUploads' }),
    ]);
  });

  test('aborts incomplete multipart uploads anywhere in the bucket, after a configurable time', () => {
    const rule = rules(synth({ incompleteUploadExpiration: Duration.days(3) }).template)[2];
    expect(rule).toEqual({ Id: 'AbortIncompleteMultipartUploads', Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 } });
  });

  test('delivers server access logs to a separate bucket when asked', () => {
    const stack = agnosticStack();
    const logs = new s3.Bucket(stack, 'Logs');
    new TrainingBucket(stack, 'Training', { environmentName: 'dev', serverAccessLogsBucket: logs });
    const template = Template.fromStack(stack);
    const training = Object.values(template.findResources('AWS::S3::Bucket', { Properties: { LoggingConfiguration: Match.anyValue() } }));
    expect(training).toHaveLength(1);
    expect(training[0].Properties.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: expect.stringMatching(/^Logs/) },
      LogFilePrefix: { 'Fn::Join': ['', ['s3-access-logs/chronos-training-dev-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }, '/']] },
    });
    expect(training[0].Metadata.checkov.skip.map((s: any) => s.id)).toEqual(['CKV_AWS_21']);
  });

  test('has no server access logs by default, and says why to checkov', () => {
    const bucket = onlyResource(synth().template, 'AWS::S3::Bucket');
    expect(bucket.Properties.LoggingConfiguration).toBeUndefined();
    expect(bucket.Metadata.checkov.skip).toEqual([
      { id: 'CKV_AWS_21', comment: expect.stringMatching(/^Unversioned by default/) },
      { id: 'CKV_AWS_18', comment: expect.stringMatching(/^Server access logs are opt-in/) },
    ]);
  });

  test('adds a lifecycle rule, for example to expire AWS service logs after the log retention', () => {
    const stack = agnosticStack();
    const construct = new TrainingBucket(stack, 'Training', { environmentName: 'dev', logRetention: Duration.days(10) });
    construct.addLifecycleRule({ id: 'VpcFlowLogs', prefix: 'vpc-flow-logs/', expiration: construct.logRetention });
    expect(rules(Template.fromStack(stack))[3]).toEqual({ Id: 'VpcFlowLogs', Status: 'Enabled', Prefix: 'vpc-flow-logs/', ExpirationInDays: 10 });
  });

  test.each(['cached-datasets/', 'cached-datasets/2026/', 'runtime/', 'runtime/scripts/', 'run', '', 'logs', '/logs/', undefined])(
    'refuses a rule that expires objects under %j', (prefix) => {
      const { construct } = synth();
      expect(() => construct.addLifecycleRule({ id: 'X', prefix, expiration: Duration.days(5) }))
        .toThrow(/addLifecycleRule: rule 'X' prefix .* is invalid for a rule that expires or transitions objects: it must be a literal key prefix ending in '\/'/);
    });

  test('refuses a rule that transitions shared objects to another storage class', () => {
    const { construct } = synth();
    expect(() => construct.addLifecycleRule({
      id: 'Archive', prefix: 'runtime/', transitions: [{ storageClass: s3.StorageClass.GLACIER, transitionAfter: Duration.days(30) }],
    })).toThrow(/rule 'Archive' prefix 'runtime\/' is invalid/);
  });

  test('accepts a whole-bucket rule that removes no object', () => {
    const { construct, stack } = synth();
    construct.addLifecycleRule({ id: 'ExpiredDeleteMarkers', expiredObjectDeleteMarker: true });
    expect(rules(Template.fromStack(stack)).map(r => r.Id)).toContain('ExpiredDeleteMarkers');
  });

  test.each(['TrainingLogs', 'ModelArtifacts', 'AbortIncompleteMultipartUploads'])(
    'refuses a second rule with the ID %s, which S3 would reject at deploy time', (id) => {
      const { construct } = synth();
      expect(() => construct.addLifecycleRule({ id, prefix: 'other/', expiration: Duration.days(5) }))
        .toThrow(new RegExp(`rule.id '${id}' is already used in this bucket`));
    });

  test('refuses a duplicate of a rule it added itself', () => {
    const { construct } = synth();
    construct.addLifecycleRule({ id: 'A', prefix: 'a/', expiration: Duration.days(5) });
    expect(() => construct.addLifecycleRule({ id: 'A', prefix: 'b/', expiration: Duration.days(5) })).toThrow(/rule.id 'A' is already used/);
  });

  // S3 takes "a non-zero positive integer" of days for an expiration (API Reference, "LifecycleExpiration",
  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleExpiration.html) and a noncurrent expiration
  // ("NoncurrentVersionExpiration"), and at least 30 days before Standard-IA ("Transition",
  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_Transition.html). aws-cdk-lib drops a 0-day expiration
  // and keeps a 0-day noncurrent one, and an emulator accepts both.
  test.each<[string, s3.LifecycleRule, RegExp]>([
    ['a 0-day expiration', { id: 'X', prefix: 'dev/tmp/', expiration: Duration.days(0) },
      /addLifecycleRule: rule 'X' expiration is 0 days; it must be at least 1 days \(S3 requires a positive whole number of days\)/],
    ['a fractional expiration', { id: 'X', prefix: 'dev/tmp/', expiration: Duration.hours(36) },
      /addLifecycleRule: rule 'X' expiration is 1 day 12 hours; S3 lifecycle rules take a whole number of days/],
    ['a 0-day noncurrent expiration', { id: 'X', prefix: 'dev/tmp/', noncurrentVersionExpiration: Duration.days(0) },
      /addLifecycleRule: rule 'X' noncurrentVersionExpiration is 0 days; it must be at least 1 days/],
    ['a 0-day multipart abort', { id: 'X', abortIncompleteMultipartUploadAfter: Duration.days(0) },
      /addLifecycleRule: rule 'X' abortIncompleteMultipartUploadAfter is 0 days/],
    ['a transition to Standard-IA before 30 days', {
      id: 'X',
      prefix: 'dev/tmp/',
      transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(10) }],
    },
    /addLifecycleRule: rule 'X' transitions\[0\].transitionAfter is 10 days; it must be at least 30 days/],
    ['a noncurrent transition of fractional days', {
      id: 'X',
      prefix: 'dev/tmp/',
      noncurrentVersionTransitions: [{ storageClass: s3.StorageClass.GLACIER, transitionAfter: Duration.hours(1) }],
    },
    /addLifecycleRule: rule 'X' noncurrentVersionTransitions\[0\].transitionAfter is 1 hour; S3 lifecycle rules take a whole number of days/],
  ])('refuses a rule with %s, naming the field and the value', (_name, rule, message) => {
    const { construct } = synth();
    expect(() => construct.addLifecycleRule(rule)).toThrow(message);
  });

  test('accepts a 0-day transition to Glacier, which S3 allows', () => {
    const { construct, stack } = synth();
    construct.addLifecycleRule({ id: 'Archive', prefix: 'dev/archive/', transitions: [{ storageClass: s3.StorageClass.GLACIER, transitionAfter: Duration.days(0) }] });
    expect(rules(Template.fromStack(stack)).find(r => r.Id === 'Archive').Transitions).toEqual([{ StorageClass: 'GLACIER', TransitionInDays: 0 }]);
  });

  test('refuses a rule without an ID', () => {
    const { construct } = synth();
    expect(() => construct.addLifecycleRule({ prefix: 'a/', expiration: Duration.days(5) })).toThrow(/rule.id must be a literal, non-empty ID/);
  });

  test('exposes the bucket, its L1 as the default child, the environment and the log retention', () => {
    const { stack, construct } = synth({ environmentName: 'stage', logRetention: Duration.days(3) });
    expect(construct.environmentName).toBe('stage');
    expect(construct.logRetention.toDays()).toBe(3);
    expect(stack.resolve(construct.bucket.bucketName)).toEqual({ Ref: expect.stringMatching(/^Training[0-9A-F]{8}$/) });
    expect(construct.node.defaultChild === construct.bucket).toBe(true);
  });

  describe('prefix-scoped grants', () => {
    function grantedStatements(grant: (bucket: TrainingBucket, role: iam.IGrantable) => void): any[] {
      const { stack, construct } = synth({ environmentName: 'stage' });
      const role = new iam.Role(stack, 'Pipeline', { assumedBy: new iam.AccountRootPrincipal() });
      grant(construct, role);
      const policy = onlyResource(Template.fromStack(stack), 'AWS::IAM::Policy');
      return stack.resolve(policy.Properties.PolicyDocument.Statement);
    }
    const bucketRef = { 'Fn::GetAtt': [expect.stringMatching(/^Training[0-9A-F]{8}$/), 'Arn'] };
    const objects = (prefix: string) => ({ 'Fn::Join': ['', [bucketRef, `/${prefix}*`]] });

    test('grantReadShared: get and list under the shared prefixes only', () => {
      expect(grantedStatements((b, r) => b.grantReadShared(r))).toEqual([
        { Action: 's3:GetObject', Effect: 'Allow', Resource: [objects('cached-datasets/'), objects('runtime/python-env/'), objects('runtime/scripts/')] },
        {
          Action: 's3:ListBucket',
          Effect: 'Allow',
          Resource: bucketRef,
          Condition: { StringLike: { 's3:prefix': ['cached-datasets/*', 'runtime/python-env/*', 'runtime/scripts/*'] } },
        },
      ]);
    });

    test('grantWriteShared: put, delete and abort under the shared prefixes, no read or list', () => {
      expect(grantedStatements((b, r) => b.grantWriteShared(r))).toEqual([{
        Action: ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        Effect: 'Allow',
        Resource: [objects('cached-datasets/'), objects('runtime/python-env/'), objects('runtime/scripts/')],
      }]);
    });

    test("grantReadWriteEnvironment: read, write and list under the environment's prefix only", () => {
      expect(grantedStatements((b, r) => b.grantReadWriteEnvironment(r))).toEqual([
        { Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'], Effect: 'Allow', Resource: objects('stage/') },
        { Action: 's3:ListBucket', Effect: 'Allow', Resource: bucketRef, Condition: { StringLike: { 's3:prefix': ['stage/*'] } } },
      ]);
    });
  });

  test.each<[string, Partial<TrainingBucketProps>, RegExp]>([
    ['a transition before 30 days', { artifactTransition: Duration.days(29) },
      /artifactTransition is 29 days; it must be at least 30 days \(S3 moves objects to STANDARD_IA no earlier than 30 days/],
    ['an expiration equal to the transition', { artifactExpiration: Duration.days(30) },
      /artifactExpiration \(30 days\) must be later than artifactTransition \(30 days\)/],
    ['an expiration before the transition', { artifactTransition: Duration.days(60), artifactExpiration: Duration.days(45) },
      /artifactExpiration \(45 days\) must be later than artifactTransition \(60 days\)/],
    ['a log retention of zero days', { logRetention: Duration.days(0) }, /logRetention is 0 days; it must be at least 1 days/],
    ['an artifact expiration of zero days', { artifactExpiration: Duration.days(0) }, /artifactExpiration is 0 days; it must be at least 1 days/],
    ['an artifact transition of zero days', { artifactTransition: Duration.days(0) }, /artifactTransition is 0 days; it must be at least 30 days/],
    ['a recovery window of zero days', { recoverableOutputs: Duration.days(0) }, /recoverableOutputs is 0 days; it must be at least 1 days/],
    ['a fractional log retention', { logRetention: Duration.hours(36) }, /logRetention is 1 day 12 hours; S3 lifecycle rules take a whole number of days/],
    ['an invalid environment', { environmentName: 'dev_1' }, /environmentName 'dev_1' is invalid/],
    ['an environment named after a shared prefix', { environmentName: 'runtime' }, /environmentName 'runtime' is reserved: the bucket prefix 'runtime\/' holds data shared by all environments/],
    ['an environment named cached-datasets', { environmentName: 'cached-datasets' }, /environmentName 'cached-datasets' is reserved/],
    ['an incomplete-upload expiration of zero days', { incompleteUploadExpiration: Duration.days(0) }, /incompleteUploadExpiration is 0 days; it must be at least 1 days/],
    ['an access-log prefix without a log bucket', { serverAccessLogsPrefix: 'logs/' }, /serverAccessLogsPrefix 'logs\/' needs serverAccessLogsBucket/],
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

describe('TrainingBucket data safety', () => {
  const SHARED = ['cached-datasets/', 'runtime/', 'runtime/python-env/', 'runtime/scripts/'];

  /** A small deterministic generator (Park-Miller) so that failures reproduce. */
  function random(seed: number): () => number {
    let state = seed % 2147483647;
    return () => {
      state = (state * 48271) % 2147483647;
      return state / 2147483647;
    };
  }

  test('no lifecycle rule can expire or transition objects under cached-datasets/ or runtime/, whatever the props', () => {
    const next = random(20261126);
    const pick = <T>(values: T[]) => values[Math.floor(next() * values.length)];
    const environments = ['dev', 'stage', 'prod', 'cached', 'runtime2', 'runtime-x', 'cached-dataset', 'r', 'a23456789012345678'];
    let checked = 0;
    for (let i = 0; i < 150; i++) {
      const transition = 30 + Math.floor(next() * 400);
      const props: TrainingBucketProps = {
        environmentName: pick(environments),
        logRetention: Duration.days(1 + Math.floor(next() * 500)),
        artifactTransition: Duration.days(transition),
        artifactExpiration: Duration.days(transition + 1 + Math.floor(next() * 1000)),
        incompleteUploadExpiration: Duration.days(1 + Math.floor(next() * 30)),
        recoverableOutputs: next() < 0.5 ? Duration.days(1 + Math.floor(next() * 60)) : undefined,
      };
      const stack = agnosticStack();
      const construct = new TrainingBucket(stack, 'Training', props);
      if (next() < 0.5) construct.addLifecycleRule({ id: 'VpcFlowLogs', prefix: 'vpc-flow-logs/', expiration: construct.logRetention });
      const rules: any[] = onlyResource(Template.fromStack(stack), 'AWS::S3::Bucket').Properties.LifecycleConfiguration.Rules;
      for (const rule of rules) {
        const removesObjects = rule.ExpirationInDays !== undefined || rule.ExpirationDate !== undefined || rule.Transitions !== undefined
          || rule.Transition !== undefined || rule.NoncurrentVersionExpiration !== undefined;
        if (rule.Id === 'RecoverableOutputs') {
          // recoverableOutputs: bucket-wide, it expires previous versions (which exist only because of
          // versioning) and orphan delete markers; it never touches a current object.
          expect(Object.keys(rule).sort()).toEqual(['ExpiredObjectDeleteMarker', 'Id', 'NoncurrentVersionExpiration', 'Status']);
          continue;
        }
        if (!removesObjects) {
          // Only the abort rule may cover the whole bucket: it deletes upload parts, never objects.
          expect(Object.keys(rule).sort()).toEqual(['AbortIncompleteMultipartUpload', 'Id', 'Status']);
          continue;
        }
        const prefix: string = rule.Prefix ?? rule.Filter?.Prefix ?? '';
        expect(prefix).not.toBe('');
        for (const shared of SHARED) {
          expect({ rule: rule.Id, prefix, overlaps: prefix.startsWith(shared) || shared.startsWith(prefix) })
            .toEqual({ rule: rule.Id, prefix, overlaps: false });
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(300);
  });
});
