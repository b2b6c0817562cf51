import { FoundationExports } from '../../src';

describe('FoundationExports', () => {
  test('names the exports of a default foundation: the eight core ones, subnets and zones, the launch template and its version', () => {
    expect(FoundationExports.exportNames('dev')).toEqual([
      'ChronosTraining-dev-VPCId',
      'ChronosTraining-dev-PublicSubnetId',
      'ChronosTraining-dev-S3BucketName',
      'ChronosTraining-dev-IAMRoleName',
      'ChronosTraining-dev-InstanceProfileName',
      'ChronosTraining-dev-SecurityGroupId',
      'ChronosTraining-dev-Environment',
      'ChronosTraining-dev-CostCenter',
      'ChronosTraining-dev-PublicSubnetIds',
      'ChronosTraining-dev-AvailabilityZones',
      'ChronosTraining-dev-LaunchTemplateId',
      'ChronosTraining-dev-LaunchTemplateVersion',
    ]);
  });

  test('names one export of an environment', () => {
    expect(FoundationExports.exportName('stage', FoundationExports.SECURITY_GROUP_ID)).toBe('ChronosTraining-stage-SecurityGroupId');
  });

  test('rejects an environment name the foundation would reject', () => {
    expect(() => FoundationExports.exportNames('Prod')).toThrow(/environmentName 'Prod' is invalid/);
  });
});
