/*
 * AWS rules that the moto emulator does not enforce, one describe per rule, each
 * naming the rule and the AWS document it rests on. A green e2e against moto
 * proves the wiring; these prove the semantics. The next rule of this kind goes here.
 */
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ChronosTrainingFoundation, ChronosTrainingStack } from '../src';
import { resourcesOf } from './helpers';

/** Every explicit name of a resource type whose names are unique per account, not per region. */
function accountWideNames(template: Template): string[] {
  const nameProperty: Record<string, string> = {
    'AWS::IAM::Role': 'RoleName',
    'AWS::IAM::InstanceProfile': 'InstanceProfileName',
    'AWS::IAM::ManagedPolicy': 'ManagedPolicyName',
    'AWS::IAM::Policy': 'PolicyName',
    'AWS::Budgets::Budget': 'Budget.BudgetName',
  };
  return Object.entries(nameProperty).flatMap(([type, property]) => resourcesOf(template, type)
    .filter(r => type !== 'AWS::IAM::Policy' || !r.Properties.Roles) // inline-attached policies are per role
    .map(r => property.split('.').reduce((v: any, k) => v?.[k], r.Properties))
    .filter((name): name is string => name !== undefined));
}

describe('IAM and AWS Budgets names are unique per account, not per region (regionalNames)', () => {
  // IAM User Guide, "IAM object quotas and names" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
  // names of roles, instance profiles and policies are unique within the account, and IAM is global.
  // AWS Budgets API Reference, CreateBudget (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html):
  // a budget name is unique within an account.
  const stackIn = (app: App, region: string, regionalNames?: boolean) => new ChronosTrainingStack(app, `Dev-${region}`, {
    environmentName: 'dev',
    env: { account: '123456789012', region },
    regionalNames,
    budget: { monthlyLimitUsd: 100, notificationEmails: ['ml@example.com'] },
  });

  test('by default the names are those of one region: the same environment in a second region collides', () => {
    const app = new App();
    const stacks = ['us-east-1', 'us-west-2'].map(region => stackIn(app, region));
    const [east, west] = stacks.map(s => accountWideNames(Template.fromStack(s)));
    expect(east).toEqual(expect.arrayContaining(['ChronosTrainingInstanceProfile-dev', 'ChronosTraining-dev']));
    expect(east.filter(name => west.includes(name))).toEqual(expect.arrayContaining(['ChronosTrainingInstanceProfile-dev']));
  });

  test('with regionalNames, no account-wide name of one region is that of another, and the budget counts its own region', () => {
    const app = new App();
    const east = stackIn(app, 'us-east-1', true);
    const west = stackIn(app, 'us-west-2', true);
    const [eastNames, westNames] = [east, west].map(s => accountWideNames(Template.fromStack(s)));
    expect(eastNames).toEqual(expect.arrayContaining(['ChronosTrainingInstanceProfile-dev-us-east-1', 'ChronosTraining-dev-us-east-1']));
    expect(eastNames.filter(name => westNames.includes(name))).toEqual([]);
    Template.fromStack(west).hasResourceProperties('AWS::Budgets::Budget', {
      Budget: { FilterExpression: { And: Match.arrayWith([{ Dimensions: { Key: 'REGION', Values: ['us-west-2'], MatchOptions: ['EQUALS'] } }]) } },
    });
    expect(west.resolve(west.foundation.instanceProfile.instanceProfileName)).toEqual({
      Ref: west.getLogicalId(west.foundation.instanceProfile.node.defaultChild as CfnResource),
    });
  });

  test('regionalNames needs a region known at synthesis', () => {
    const stack = new Stack(new App(), 'Agnostic');
    expect(() => new ChronosTrainingFoundation(stack, 'Foundation', { regionalNames: true }))
      .toThrow(/regionalNames is true but the stack has no concrete region: give the stack env.region/);
  });
});

describe('S3 asks for kms:Decrypt to read and kms:GenerateDataKey to write an SSE-KMS object', () => {
  // Amazon S3 User Guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)"
  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html), and "Multipart upload API and
  // permissions" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions). The full
  // table of allowed and denied requests is simulated in test/storage/training-bucket-grants.simulation.test.ts.
  test('the instance role of a foundation on a bring-your-own SSE-KMS bucket can use the bucket\'s key', () => {
    const stack = new Stack(new App(), 'Training');
    const encryptionKey = new kms.Key(stack, 'Key');
    const bucket = new s3.Bucket(stack, 'Data', { encryption: s3.BucketEncryption.KMS, encryptionKey });
    new ChronosTrainingFoundation(stack, 'Foundation', { bucket });
    const keyArn = stack.resolve(encryptionKey.keyArn);
    const inline = resourcesOf(Template.fromStack(stack), 'AWS::IAM::Role')
      .flatMap(r => r.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement);
    const onKey = inline.filter((st: any) => JSON.stringify(st.Resource) === JSON.stringify(keyArn)).flatMap((st: any) => [st.Action].flat());
    expect(new Set(onKey)).toEqual(new Set(['kms:Decrypt', 'kms:GenerateDataKey']));
  });
});
