// Integration test: every guardrail on (launch template, run reaper, budget with its action,
// restricted S3 endpoint, recoverable outputs), the run keeper (the default) with run notifications, and nothing in
// the stack that bills while idle.
import { ExpectedResult, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { App, Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { allowAssertion, assertionStackFor, sampleStack } from './sample';

const app = new App();
const stack = sampleStack(app, {
  environmentName: 'guard',
  costCenter: 'train',
  // Emptied (every version too) before the teardown deletes it: CloudFormation cannot delete a non-empty bucket.
  bucketProps: { recoverableOutputs: Duration.days(7), removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true },
  maxRunLifetime: Duration.hours(6),
  launchTemplateProps: { rootVolumeSize: Size.gibibytes(120) },
  runReaper: true,
  budget: {
    monthlyLimitUsd: 100,
    notificationEmails: ['ml-team@example.com'],
    denyRunInstancesAtLimit: { roles: ['ChronosTrainingLauncher-guard'] },
  },
  s3EndpointRestriction: true,
  s3EndpointRestrictionProps: { readOnlyBucketNames: ['prod-us-east-1-starport-layer-bucket'] },
  runNotifications: { emails: ['ml-team@example.com'] },
});
const foundation = stack.foundation;
// The launcher role the budget action denies RunInstances to (Budgets checks that it exists).
new iam.Role(stack, 'Launcher', { roleName: 'ChronosTrainingLauncher-guard', assumedBy: new iam.AccountRootPrincipal() });

const integ = new IntegTest(app, 'ChronosTrainingGuardrails', {
  testCases: [stack],
  assertionStack: assertionStackFor(stack),
});

integ.assertions
  .awsApiCall('EC2', 'describeLaunchTemplateVersions', { LaunchTemplateId: foundation.launchTemplate!.launchTemplateId, Versions: ['$Latest'] })
  .expect(ExpectedResult.objectLike({
    LaunchTemplateVersions: [Match.objectLike({
      LaunchTemplateData: Match.objectLike({
        InstanceInitiatedShutdownBehavior: 'terminate',
        MetadataOptions: Match.objectLike({ HttpTokens: 'required' }),
        BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true, VolumeType: 'gp3', VolumeSize: 120 }) })],
        Monitoring: { Enabled: true },
      }),
    })],
  }));

allowAssertion(
  integ.assertions.awsApiCall('S3', 'getBucketVersioning', { Bucket: foundation.bucket.bucketName }),
  's3:GetBucketVersioning', foundation.bucket.bucketArn,
).expect(ExpectedResult.objectLike({ Status: 'Enabled' }));

integ.assertions
  .awsApiCall('Lambda', 'getFunctionConfiguration', { FunctionName: foundation.runReaper!.function.functionName })
  // The 6-hour lifetime plus the 900 s margin: the reaper's ceiling, the launch template's MaxLifetimeHours tag (6.25).
  .expect(ExpectedResult.objectLike({ Environment: { Variables: Match.objectLike({ DEFAULT_LIFETIME_SECONDS: '22500', DRY_RUN: 'false' }) } }));

integ.assertions
  .awsApiCall('Lambda', 'getFunctionConfiguration', { FunctionName: foundation.runKeeper!.function.functionName })
  .expect(ExpectedResult.objectLike({
    Handler: 'chronos_training.keeper.handler',
    Environment: { Variables: Match.objectLike({ CHRONOS_ENVIRONMENT: 'guard', CHRONOS_SCHEDULE_GROUP: 'chronos-training-guard' }) },
  }));

app.synth();
