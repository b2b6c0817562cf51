// Integration test: another environment with non-default props, without the run keeper (runKeeper: false).
import { ExpectedResult, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { App, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { allowAssertion, assertionStackFor, sampleStack } from './sample';

const app = new App();
const stack = sampleStack(app, {
  environmentName: 'stage',
  costCenter: 'collect',
  networkProps: { vpcCidr: '10.42.0.0/16', subnetCidrMask: 26 },
  bucketProps: {
    logRetention: Duration.days(7),
    artifactTransition: Duration.days(45),
    artifactExpiration: Duration.days(120),
    incompleteUploadExpiration: Duration.days(3),
    removalPolicy: RemovalPolicy.DESTROY,
    // Flow logs write objects: without emptying it, the teardown cannot delete the bucket (DELETE_FAILED).
    autoDeleteObjects: true,
  },
  instanceRoleProps: { terminateSelfOnly: false },
  flowLogs: true,
  runKeeper: false,
});
const foundation = stack.foundation;

const integ = new IntegTest(app, 'ChronosTrainingStage', {
  testCases: [stack],
  assertionStack: assertionStackFor(stack),
});

allowAssertion(
  integ.assertions.awsApiCall('S3', 'getBucketLifecycleConfiguration', { Bucket: foundation.bucket.bucketName }),
  's3:GetLifecycleConfiguration', foundation.bucket.bucketArn,
).expect(ExpectedResult.objectLike({
  // S3 may return the rules in another order and with a Filter in place of Prefix.
  Rules: Match.arrayWith([
    { ID: 'TrainingLogs', Expiration: { Days: 7 } },
    { ID: 'ModelArtifacts', Expiration: { Days: 120 }, Transitions: [{ Days: 45, StorageClass: 'STANDARD_IA' }] },
    { ID: 'AbortIncompleteMultipartUploads', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 } },
    { ID: 'VpcFlowLogs', Expiration: { Days: 7 } },
  ].map(rule => Match.objectLike(rule))),
}));

integ.assertions
  .awsApiCall('EC2', 'describeSecurityGroups', { GroupIds: [foundation.securityGroup.securityGroupId] })
  .expect(ExpectedResult.objectLike({
    SecurityGroups: [{
      IpPermissions: [],
      IpPermissionsEgress: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }],
    }],
  }));

integ.assertions
  .awsApiCall('EC2', 'describeSubnets', { SubnetIds: [foundation.publicSubnets[0].subnetId] })
  .expect(ExpectedResult.objectLike({
    Subnets: [{ CidrBlock: '10.42.0.0/26', MapPublicIpOnLaunch: true }],
  }));

app.synth();
