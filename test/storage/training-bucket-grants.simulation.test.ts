/*
 * A bring-your-own bucket encrypted with a customer-managed KMS key: S3 asks the
 * caller for kms:Decrypt to read and kms:GenerateDataKey (with kms:Decrypt for
 * multipart uploads) to write (Amazon S3 User Guide, "Using server-side
 * encryption with AWS KMS keys (SSE-KMS)",
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
 * The instance role and every grant get exactly those on the bucket's key, and
 * nothing on any other key; evaluated by the IAM simulator against the template.
 */
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ChronosTrainingFoundation } from '../../src';
import { ACCOUNT, REGION, resolver, simulate } from '../iam-simulation';

type Policies = Array<{ name: string; policy: any }>;

const KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/DataKey`;
const OTHER_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

function synthesized() {
  const stack = new Stack(new App(), 'Training', { env: { account: ACCOUNT, region: REGION } });
  const encryptionKey = new kms.Key(stack, 'DataKey');
  const bucket = new s3.Bucket(stack, 'Data', {
    bucketName: `team-data-${ACCOUNT}`, encryption: s3.BucketEncryption.KMS, encryptionKey,
  });
  const foundation = new ChronosTrainingFoundation(stack, 'Foundation', { environmentName: 'dev', bucket });
  const role = (id: string) => new iam.Role(stack, id, { assumedBy: new iam.AccountRootPrincipal() });
  const reader = role('Reader');
  foundation.grantReadShared(reader);
  const uploader = role('Uploader');
  foundation.grantWriteShared(uploader);
  const evaluation = role('Evaluation');
  foundation.grantReadWriteEnvironment(evaluation);
  const resources = Template.fromStack(stack).toJSON().Resources;
  const resolve = resolver(resources);
  const attachedTo = (r: iam.Role): Policies => Object.values(resources)
    .filter((x: any) => x.Type === 'AWS::IAM::Policy'
      && JSON.stringify(x.Properties.Roles) === JSON.stringify([{ Ref: stack.getLogicalId(r.node.defaultChild as CfnResource) }]))
    .map((x: any) => ({ name: x.Properties.PolicyName, policy: resolve(x.Properties.PolicyDocument) }));
  const instanceRole = resources[stack.getLogicalId(foundation.role.node.defaultChild as CfnResource)];
  // KMS evaluates the key policy too: aws-cdk-lib's default one delegates to IAM in the account.
  const keyPolicy = resolve(resources[stack.getLogicalId(encryptionKey.node.defaultChild as CfnResource)].Properties.KeyPolicy);
  return {
    keyPolicy,
    instance: instanceRole.Properties.Policies.map((p: any) => ({ name: p.PolicyName, policy: resolve(p.PolicyDocument) })) as Policies,
    reader: attachedTo(reader),
    uploader: attachedTo(uploader),
    evaluation: attachedTo(evaluation),
  };
}

type Who = 'instance' | 'reader' | 'uploader' | 'evaluation';
const ROWS: Array<[Who, string, string, string, boolean]> = [
  ['instance', 'read a cached dataset (decrypt its data key)', 'kms:Decrypt', KEY, true],
  ['instance', 'write a checkpoint under dev/ (a new data key)', 'kms:GenerateDataKey', KEY, true],
  ['instance', 'decrypt with another key', 'kms:Decrypt', OTHER_KEY, false],
  ['instance', 're-encrypt with the key (S3 never asks for it)', 'kms:ReEncryptFrom', KEY, false],
  ['instance', 'change the key policy', 'kms:PutKeyPolicy', KEY, false],
  ['reader', 'read a shared dataset', 'kms:Decrypt', KEY, true],
  ['reader', 'write (it may only read)', 'kms:GenerateDataKey', KEY, false],
  ['uploader', 'upload a dataset', 'kms:GenerateDataKey', KEY, true],
  ['uploader', 'upload a dataset in parts (multipart needs Decrypt)', 'kms:Decrypt', KEY, true],
  ['uploader', 'encrypt arbitrary data (not an S3 need)', 'kms:Encrypt', KEY, false],
  ['evaluation', 'read a dev checkpoint', 'kms:Decrypt', KEY, true],
  ['evaluation', 'write an evaluation report', 'kms:GenerateDataKey', KEY, true],
  ['evaluation', 'generate a data key of another key', 'kms:GenerateDataKey', OTHER_KEY, false],
];

describe('a bring-your-own SSE-KMS bucket, simulated', () => {
  const policies = synthesized();
  test.each(ROWS)('%s tries to %s (%s on %s), allowed: %s', async (who, request, action, resource, allowed) => {
    const result = await simulate(policies[who], {
      principal: `arn:aws:iam::${ACCOUNT}:role/${who}`, action, resource, context: {},
    }, request, resource === KEY ? policies.keyPolicy : undefined);
    expect(result.overallResult).toBe(allowed ? 'Allowed' : 'ImplicitlyDenied');
  });
});
