// Integration test: the default deployment, ChronosTraining-dev-Stack.
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

// The exports, as CloudFormation registered them for this stack (ListExports would page past them
// in an account with many exports; the launch script's list-exports query is run by the e2e test).
const exportValues: Record<string, string> = {
  [FoundationExports.VPC_ID]: foundation.vpc.vpcId,
  [FoundationExports.S3_BUCKET_NAME]: foundation.bucket.bucketName,
  [FoundationExports.INSTANCE_PROFILE_NAME]: foundation.instanceProfile.instanceProfileName,
  [FoundationExports.ENVIRONMENT]: 'dev',
};
integ.assertions
  .awsApiCall('CloudFormation', 'describeStacks', { StackName: stack.stackName })
  .expect(ExpectedResult.objectLike({
    Stacks: [{
      Outputs: Match.arrayWith(Object.entries(exportValues).map(([suffix, value]) =>
        Match.objectLike({ ExportName: FoundationExports.exportName('dev', suffix), OutputValue: value }))),
    }],
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
