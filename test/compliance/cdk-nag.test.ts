import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  ChronosTrainingFoundation, ChronosTrainingFoundationProps, ChronosTrainingStack, TrainingLaunchTemplate, TrainingRunReaper,
} from '../../src';
import { nagFindings, TEST_ENV } from '../helpers';

/** Acknowledged rule IDs with their reasons, from every construct in a scope (or those whose path has `under`). */
function acknowledgments(scope: Stack, under?: string): Record<string, string> {
  return Object.assign({}, ...scope.node.findAll().filter(c => under === undefined || c.node.path.includes(under)).flatMap(c =>
    c.node.metadata.filter(m => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).map(m => m.data)));
}

describe('cdk-nag AwsSolutions', () => {
  test.each<[string, Record<string, string> | undefined]>([
    ['environment-agnostic', undefined],
    ['with a concrete account and region', TEST_ENV],
  ])('reports nothing unacknowledged on ChronosTrainingStack, %s', (_name, env) => {
    const stack = new ChronosTrainingStack(new App(), 'ChronosTraining-dev-Stack', { env });
    expect(nagFindings(stack)).toEqual([]);
  });

  test('reports nothing unacknowledged on a foundation inside a user stack, for another environment', () => {
    const stack = new Stack(new App(), 'UserStack');
    new ChronosTrainingFoundation(stack, 'Training', { environmentName: 'prod', instanceRoleProps: { terminateSelfOnly: false } });
    expect(nagFindings(stack)).toEqual([]);
  });

  test('finds what the acknowledgments cover when they are absent (the check can fail)', () => {
    const stack = new ChronosTrainingStack(new App(), 'S');
    for (const construct of stack.node.findAll()) {
      // Drop every acknowledgment recorded by the library.
      (construct.node as any)._metadata = construct.node.metadata.filter(m => m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY);
    }
    const rules = new Set(nagFindings(stack).map(f => f.split(/[[ ]/)[0]));
    expect([...rules].sort()).toEqual(['AwsSolutions-IAM5', 'AwsSolutions-S1', 'AwsSolutions-VPC7']);
  });

  test('acknowledges exactly the findings of the design, each with a specific reason', () => {
    const stack = new ChronosTrainingStack(new App(), 'S', { env: TEST_ENV });
    const acknowledged = acknowledgments(stack);
    expect(Object.keys(acknowledged).sort()).toEqual([
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::<FoundationBucketCB08A6A1.Arn>/cached-datasets/*]',
      'AwsSolutions-IAM5[Resource::<FoundationBucketCB08A6A1.Arn>/dev/*]',
      'AwsSolutions-IAM5[Resource::<FoundationBucketCB08A6A1.Arn>/dev/runs/*]',
      'AwsSolutions-IAM5[Resource::<FoundationBucketCB08A6A1.Arn>/runtime/python-env/*]',
      'AwsSolutions-IAM5[Resource::<FoundationBucketCB08A6A1.Arn>/runtime/scripts/*]',
      'AwsSolutions-IAM5[Resource::arn:*:ec2:*:*:instance/*]',
      // The run secrets (issue 30): kms:Decrypt of the AWS managed key aws/ssm, through SSM only.
      'AwsSolutions-IAM5[Resource::arn:*:kms:*:*:key/*]',
      // The run keeper's role: the launch statements grantLaunch gives, its schedules and parameters.
      ...['instance', 'key-pair', 'network-interface', 'spot-instances-request', 'subnet', 'volume']
        .map(type => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:us-east-1:123456789012:${type}/*]`),
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:us-east-1::image/*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:us-east-1:123456789012:schedule/chronos-training-dev/*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:us-east-1:*:parameter/aws/service/deeplearning/ami/*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:us-east-1:123456789012:parameter/chronos-training/dev/*]',
      // The run secrets (issue 30): the secrets' prefix (kms:Decrypt of the AWS managed key aws/ssm through SSM: above).
      'AwsSolutions-IAM5[Resource::arn:aws:ssm:us-east-1:123456789012:parameter/chronos-training/dev/secrets/*]',
      // aws-cdk-lib stores IDs without a '::' prefix under 'annotation::'; cdk-nag matches them.
      'annotation::AwsSolutions-S1',
      'annotation::AwsSolutions-VPC7',
    ]);
    for (const reason of Object.values(acknowledged)) {
      expect(reason.length).toBeGreaterThan(40);
    }
  });

  test.each<[string, ChronosTrainingFoundationProps, string]>([
    ['flow logs fix VPC7', { flowLogs: true }, 'annotation::AwsSolutions-VPC7'],
  ])('opting in to %s instead of acknowledging it', (_name, props, rule) => {
    const stack = new Stack(new App(), 'UserStack');
    new ChronosTrainingFoundation(stack, 'Training', props);
    expect(Object.keys(acknowledgments(stack))).not.toContain(rule);
    expect(nagFindings(stack)).toEqual([]);
  });

  test('server access logs into a separate bucket fix S1 on the training bucket', () => {
    const stack = new Stack(new App(), 'UserStack');
    const logs = new s3.Bucket(stack, 'AccessLogs', { enforceSSL: true });
    Validations.of(logs).acknowledge({ id: 'AwsSolutions-S1', reason: 'The access log bucket does not log itself.' });
    new ChronosTrainingFoundation(stack, 'Training', { bucketProps: { serverAccessLogsBucket: logs } });
    expect(nagFindings(stack)).toEqual([]);
    const training = stack.node.findChild('Training').node.findChild('Bucket');
    expect(training.node.findAll().flatMap(c => c.node.metadata)
      .filter(m => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)).toEqual([]);
  });

  test('reports nothing unacknowledged with every capacity option on, and names the Session Manager actions', () => {
    const stack = new ChronosTrainingStack(new App(), 'S', {
      env: TEST_ENV,
      networkProps: { availabilityZones: ['us-east-1a', 'us-east-1b', 'us-east-1c'] },
      instanceRoleProps: { sessionManager: true },
      securityGroupProps: { allowHttp: true, allowTrafficWithinGroup: true },
      clusterPlacementGroup: true,
    });
    expect(nagFindings(stack)).toEqual([]);
    expect(acknowledgments(stack, '/InstanceRole/')['AwsSolutions-IAM5[Resource::*]']).toMatch(/ec2:DescribeInstances .*; the four ssmmessages channel actions/);
  });

  test('gives the instance role\'s Resource::* finding one reason, never replaced by a later acknowledgment', () => {
    const stack = new ChronosTrainingStack(new App(), 'S', { env: TEST_ENV, instanceRoleProps: { sessionManager: true } });
    const role = stack.foundation.role.node.defaultChild!;
    // Each acknowledgment records the role's whole map again: the reason of the finding must be the same in all of them.
    const reasons = role.node.metadata.filter(m => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .map(m => (m.data as Record<string, string>)['AwsSolutions-IAM5[Resource::*]']).filter(r => r !== undefined);
    expect(new Set(reasons).size).toBe(1);
  });

  test('reports nothing unacknowledged on a foundation in a given VPC with a given bucket of the same stack', () => {
    const stack = new Stack(new App(), 'UserStack');
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, restrictDefaultSecurityGroup: false, subnetConfiguration: [{ name: 'Public', subnetType: ec2.SubnetType.PUBLIC }] });
    vpc.addFlowLog('FlowLog');
    const bucket = new s3.Bucket(stack, 'Data', { enforceSSL: true });
    Validations.of(bucket).acknowledge({ id: 'AwsSolutions-S1', reason: "The user's own bucket: its access logging is the user's decision." });
    new ChronosTrainingFoundation(stack, 'Training', { vpc, bucket });
    expect(nagFindings(stack)).toEqual([]);
  });
});

describe('cdk-nag AwsSolutions on the guardrails', () => {
  test.each<[string, Record<string, string> | undefined]>([
    ['environment-agnostic', undefined],
    ['with a concrete account and region', TEST_ENV],
  ])('reports nothing unacknowledged on TrainingRunReaper and TrainingLaunchTemplate, %s', (_name, env) => {
    const stack = new Stack(new App(), 'S', { env });
    new TrainingRunReaper(stack, 'Reaper', { environmentName: 'dev', maxRunLifetime: Duration.hours(6) });
    const securityGroup = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-12345678');
    const instanceProfile = iam.InstanceProfile.fromInstanceProfileName(stack, 'Profile', 'ChronosTrainingInstanceProfile-dev');
    const bucket = s3.Bucket.fromBucketName(stack, 'Bucket', 'chronos-training-dev');
    new TrainingLaunchTemplate(stack, 'LaunchTemplate', { environmentName: 'dev', costCenter: 'train', instanceProfile, securityGroup, bucket, spot: true });
    expect(nagFindings(stack)).toEqual([]);
  });
});
