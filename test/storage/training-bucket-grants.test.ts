import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ChronosTrainingFoundation, TrainingBucket } from '../../src';
import { agnosticStack, resourcesOf } from '../helpers';

const kmsActions = (template: Template) => [...resourcesOf(template, 'AWS::IAM::Role'), ...resourcesOf(template, 'AWS::IAM::Policy')]
  .flatMap(r => [...(r.Properties.Policies ?? []).map((p: any) => p.PolicyDocument), r.Properties.PolicyDocument].filter(Boolean))
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
      const doc = stack.resolve((grantee.node.findChild('DefaultPolicy') as iam.Policy).document.toJSON());
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
