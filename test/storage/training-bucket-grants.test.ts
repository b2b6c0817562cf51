import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ChronosTrainingFoundation, TrainingBucket } from '../../src';
import { agnosticStack, resourcesOf } from '../helpers';

const kmsActions = (template: Template) => [...resourcesOf(template, 'AWS::IAM::Role'), ...resourcesOf(template, 'AWS::IAM::Policy')]
  // The instance role's ReadRunSecrets (kms:Decrypt of the SSM run secrets, not of the bucket) is not a bucket grant.
  .flatMap(r => [...(r.Properties.Policies ?? []).filter((p: any) => p.PolicyName !== 'ReadRunSecrets').map((p: any) => p.PolicyDocument),
    r.Properties.PolicyDocument].filter(Boolean))
  .flatMap((d: any) => d.Statement).flatMap((st: any) => [st.Action].flat()).filter((a: string) => a.startsWith('kms:'));

describe('the prefix-scoped grants, one implementation for every owner of the bucket', () => {
  test('an SSE-S3 bucket (the foundation\'s own) gets no KMS permission anywhere', () => {
    const stack = agnosticStack();
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation');
    const grantee = new iam.Role(stack, 'Grantee', { assumedBy: new iam.AccountRootPrincipal() });
    foundation.grantReadShared(grantee);
    foundation.grantWriteShared(grantee);
    foundation.grantReadWriteEnvironment(grantee);
    expect(kmsActions(Template.fromStack(stack))).toEqual([]);
  });

  test('TrainingBucket, the foundation and an imported foundation grant the same statements', () => {
    const shapes: string[] = [];
    for (const make of [
      (s: Stack) => new TrainingBucket(s, 'B', { environmentName: 'dev' }),
      (s: Stack) => new ChronosTrainingFoundation(s, 'F', { environmentName: 'dev' }),
      (s: Stack) => ChronosTrainingFoundation.fromEnvironment(s, 'I', 'dev'),
    ]) {
      const stack = new Stack(new App(), 'S');
      const owner = make(stack);
      const grantee = new iam.Role(stack, 'Grantee', { assumedBy: new iam.AccountRootPrincipal() });
      owner.grantReadShared(grantee);
      owner.grantWriteShared(grantee);
      owner.grantReadWriteEnvironment(grantee);
      const granteeId = stack.getLogicalId(grantee.node.defaultChild as iam.CfnRole);
      const doc = resourcesOf(Template.fromStack(stack), 'AWS::IAM::Policy')
        .find(p => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: granteeId }])).Properties.PolicyDocument;
      // The bucket differs (created or imported); actions, prefixes and conditions do not.
      shapes.push(JSON.stringify(doc.Statement.map((st: any) => [st.Action, st.Condition ?? null,
        [st.Resource].flat().map((r: any) => JSON.stringify(r).replace(/.*(\/[a-z-]+\/\*).*/, '$1').replace(/^\{.*\}$/, 'bucket'))])));
    }
    expect(new Set(shapes).size).toBe(1);
  });

  test('with a key, each grant adds exactly what S3 asks of the caller on that key', () => {
    const stack = agnosticStack();
    const encryptionKey = new kms.Key(stack, 'Key');
    const bucket = new s3.Bucket(stack, 'Data', { encryption: s3.BucketEncryption.KMS, encryptionKey });
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { bucket });
    const role = (id: string) => new iam.Role(stack, id, { assumedBy: new iam.AccountRootPrincipal() });
    foundation.grantReadShared(role('Reader'));
    foundation.grantWriteShared(role('Writer'));
    foundation.grantReadWriteEnvironment(role('Evaluation'));
    const template = Template.fromStack(stack);
    const keyArn = { 'Fn::GetAtt': [stack.getLogicalId(encryptionKey.node.defaultChild as kms.CfnKey), 'Arn'] };
    const keyStatements = (id: string) => {
      const policy = resourcesOf(template, 'AWS::IAM::Policy').find(p => JSON.stringify(p.Properties.Roles).includes(id))!;
      return policy.Properties.PolicyDocument.Statement.filter((st: any) => JSON.stringify(st.Resource) === JSON.stringify(keyArn))
        .map((st: any) => st.Action);
    };
    expect(keyStatements('Reader')).toEqual(['kms:Decrypt']);
    expect(keyStatements('Writer')).toEqual([['kms:Decrypt', 'kms:GenerateDataKey']]);
    expect(keyStatements('Evaluation')).toEqual([['kms:Decrypt', 'kms:GenerateDataKey']]);
    // The instance role's inline policies carry the same key statements.
    template.hasResourceProperties('AWS::IAM::Role', {
      Policies: Match.arrayWith([
        Match.objectLike({
          PolicyName: 'S3ReadAccess',
          PolicyDocument: {
            Statement: Match.arrayWith([
              { Sid: 'KeyReadSharedDatasetsAndRuntime', Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn },
            ]),
          },
        }),
        Match.objectLike({
          PolicyName: 'S3WriteAccess',
          PolicyDocument: {
            Statement: Match.arrayWith([
              { Sid: 'KeyReadWriteEnvironmentPrefix', Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: keyArn },
            ]),
          },
        }),
      ]),
    });
  });

  test('an imported foundation with bucketEncryptionKey grants on that key', () => {
    const stack = agnosticStack();
    const key = kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    const imported = ChronosTrainingFoundation.fromEnvironment(stack, 'Dev', 'dev', { bucketEncryptionKey: key });
    const grantee = new iam.Role(stack, 'Grantee', { assumedBy: new iam.AccountRootPrincipal() });
    imported.grantReadWriteEnvironment(grantee);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: key.keyArn })]) },
    });
  });
});

/*
 * A principal of another account, or a service, is allowed only by the bucket's policy: "For cross-account
 * permissions to other AWS accounts or users in another account, you must use a bucket policy" ("Policies and
 * permissions in Amazon S3", Amazon S3 User Guide,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-policy-language-overview.html); a service principal
 * has no identity policy at all. An emulator enforces neither, so these tests pin the synthesized policies.
 */
describe('grants to principals that have no policy in this account', () => {
  const ENV = { account: '111111111111', region: 'us-east-1' };
  const bucketPolicyStatements = (template: Template) => resourcesOf(template, 'AWS::S3::BucketPolicy')
    .flatMap(p => p.Properties.PolicyDocument.Statement)
    .filter((st: any) => st.Effect === 'Allow');

  test.each<[string, () => iam.IPrincipal, unknown]>([
    ['another account', () => new iam.AccountPrincipal('222222222222'), { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::222222222222:root']] } }],
    ['a role ARN of another account', () => new iam.ArnPrincipal('arn:aws:iam::222222222222:role/Pipeline'), { AWS: 'arn:aws:iam::222222222222:role/Pipeline' }],
    ['a service principal', () => new iam.ServicePrincipal('datasync.amazonaws.com'), { Service: 'datasync.amazonaws.com' }],
  ])('on an owned bucket, %s is allowed by the bucket policy, scoped to the prefixes', (_name, principal, expected) => {
    const stack = new Stack(new App(), 'S', { env: ENV });
    const bucket = new TrainingBucket(stack, 'B', { environmentName: 'dev' });
    const grant = bucket.grantReadShared(principal());
    expect(grant.success).toBe(true);
    const statements = bucketPolicyStatements(Template.fromStack(stack));
    expect(statements).toHaveLength(2);
    expect(statements[0]).toEqual(expect.objectContaining({ Principal: expected, Action: 's3:GetObject' }));
    expect(JSON.stringify(statements[0].Resource)).toContain('/cached-datasets/*');
    expect(statements[1]).toEqual(expect.objectContaining({
      Principal: expected,
      Action: 's3:ListBucket',
      Condition: { StringLike: { 's3:prefix': ['cached-datasets/*', 'runtime/python-env/*', 'runtime/scripts/*'] } },
    }));
    expect(statements.every((st: any) => st.Sid === undefined)).toBe(true);
  });

  test('a role of the same account still gets a principal policy and no bucket policy statement', () => {
    const stack = new Stack(new App(), 'S', { env: ENV });
    const bucket = new TrainingBucket(stack, 'B', { environmentName: 'dev' });
    bucket.grantReadWriteEnvironment(new iam.Role(stack, 'Grantee', { assumedBy: new iam.AccountRootPrincipal() }));
    const template = Template.fromStack(stack);
    expect(bucketPolicyStatements(template)).toEqual([]);
    expect(resourcesOf(template, 'AWS::IAM::Policy')).toHaveLength(1);
  });

  test.each<[string, () => iam.IPrincipal]>([
    ['another account', () => new iam.AccountPrincipal('222222222222')],
    ['a service principal', () => new iam.ServicePrincipal('datasync.amazonaws.com')],
  ])('on an imported foundation, a grant to %s is an error naming the grantee', (_name, principal) => {
    const stack = new Stack(new App(), 'S', { env: ENV });
    const imported = ChronosTrainingFoundation.fromEnvironment(stack, 'Dev', 'dev');
    expect(() => imported.grantWriteShared(principal()))
      .toThrow(/grantWriteShared: only the policy of S\/Dev\/Bucket could allow the grantee (AccountPrincipal|ServicePrincipal).* an imported bucket or key has no policy this app can add to/);
  });

  test('on a bucket with a key, the key policy allows another account too', () => {
    const stack = new Stack(new App(), 'S', { env: ENV });
    const encryptionKey = new kms.Key(stack, 'Key');
    const bucket = new s3.Bucket(stack, 'Data', { encryption: s3.BucketEncryption.KMS, encryptionKey });
    const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { bucket });
    foundation.grantReadShared(new iam.AccountPrincipal('222222222222'));
    const keyPolicy = resourcesOf(Template.fromStack(stack), 'AWS::KMS::Key')[0].Properties.KeyPolicy.Statement;
    expect(keyPolicy).toContainEqual(expect.objectContaining({
      Action: 'kms:Decrypt',
      Resource: '*',
      Principal: { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::222222222222:root']] } },
    }));
  });
});
