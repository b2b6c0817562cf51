// Integration test: the guide's default deployment, ChronosTraining-dev-Stack.
import { ExpectedResult, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { App } from 'aws-cdk-lib';
import { FoundationExports } from '../src';
import { allowAssertion, assertionStackFor, sampleStack } from './sample';

const app = new App();
const stack = sampleStack(app, { environmentName: 'dev' });
const foundation = stack.foundation;

const integ = new IntegTest(app, 'ChronosTrainingDev', {
  testCases: [stack],
  assertionStack: assertionStackFor(stack),
});

// The launch script's query, through the CloudFormation API. A real account holds other
// exports too (and list-exports pages after 100), so each export is looked for among them.
// (The first page holds these eight only when the account has few exports: the launch
// script pages, an assertion cannot.)
const exportValues: Record<string, string> = {
  [FoundationExports.VPC_ID]: foundation.vpc.vpcId,
  [FoundationExports.S3_BUCKET_NAME]: foundation.bucket.bucketName,
  [FoundationExports.INSTANCE_PROFILE_NAME]: foundation.instanceProfile.instanceProfileName,
  [FoundationExports.ENVIRONMENT]: 'dev',
};
integ.assertions
  .awsApiCall('CloudFormation', 'listExports', {})
  .expect(ExpectedResult.objectLike({
    Exports: Match.arrayWith(Object.entries(exportValues).map(([suffix, value]) =>
      Match.objectLike({ Name: FoundationExports.exportName('dev', suffix), Value: value }))),
  }));

allowAssertion(
  integ.assertions.awsApiCall('S3', 'getBucketEncryption', { Bucket: foundation.bucket.bucketName }),
  's3:GetEncryptionConfiguration', foundation.bucket.bucketArn,
).expect(ExpectedResult.objectLike({
  ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
}));

integ.assertions
  .awsApiCall('IAM', 'getInstanceProfile', { InstanceProfileName: 'ChronosTrainingInstanceProfile-dev' })
  .expect(ExpectedResult.objectLike({ InstanceProfile: { InstanceProfileName: 'ChronosTrainingInstanceProfile-dev' } }));

app.synth();
