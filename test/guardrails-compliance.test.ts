import { App, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { TrainingLaunchTemplate, TrainingRunReaper } from '../src';
import { nagFindings, TEST_ENV } from './helpers';

describe('cdk-nag AwsSolutions on the guardrails', () => {
  test.each<[string, Record<string, string> | undefined]>([
    ['environment-agnostic', undefined],
    ['with a concrete account and region', TEST_ENV],
  ])('reports nothing unacknowledged on TrainingRunReaper and TrainingLaunchTemplate, %s', (_name, env) => {
    const stack = new Stack(new App(), 'S', { env });
    new TrainingRunReaper(stack, 'Reaper', { environmentName: 'dev', maxRunLifetime: Duration.hours(6) });
    const securityGroup = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-12345678');
    const instanceProfile = iam.InstanceProfile.fromInstanceProfileName(stack, 'Profile', 'ChronosTrainingInstanceProfile-dev');
    new TrainingLaunchTemplate(stack, 'LaunchTemplate', { environmentName: 'dev', costCenter: 'train', instanceProfile, securityGroup, spot: true });
    expect(nagFindings(stack)).toEqual([]);
  });
});
