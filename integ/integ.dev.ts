// Integration test: the guide's default deployment, ChronosTraining-dev-Stack.
import { ExpectedResult, IntegTest } from '@aws-cdk/integ-tests-alpha';
import { App } from 'aws-cdk-lib';
import { allowAssertion, assertionStackFor, sampleStack } from './sample';

const app = new App();
const stack = sampleStack(app, { environment: 'dev' });
const foundation = stack.foundation;

const integ = new IntegTest(app, 'ChronosTrainingDev', {
  testCases: [stack],
  assertionStack: assertionStackFor(stack),
});

// The launch script's query, through the CloudFormation API.
integ.assertions
  .awsApiCall('CloudFormation', 'listExports', {})
  .expect(ExpectedResult.objectLike({
    Exports: [{ Name: 'ChronosTraining-dev-VPCId', Value: foundation.network.vpc.vpcId }],
  }));

allowAssertion(
  integ.assertions.awsApiCall('S3', 'getBucketEncryption', { Bucket: foundation.bucket.bucket.bucketName }),
  's3:GetEncryptionConfiguration', foundation.bucket.bucket.bucketArn,
).expect(ExpectedResult.objectLike({
  ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
}));

integ.assertions
  .awsApiCall('IAM', 'getInstanceProfile', { InstanceProfileName: 'ChronosTrainingInstanceProfile-dev' })
  .expect(ExpectedResult.objectLike({ InstanceProfile: { InstanceProfileName: 'ChronosTrainingInstanceProfile-dev' } }));

app.synth();
