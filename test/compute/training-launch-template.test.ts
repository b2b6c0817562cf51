import { App, Duration, Stack, Tags } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { TrainingLaunchTemplate, TrainingLaunchTemplateOptions } from '../../src';
import { lifetimeOf } from '../../src/guardrails/training-run-reaper.lambda';
import { onlyResource } from '../helpers';

/** A stack holding a launch template with a real profile and security group, under an enclosing scope. */
function build(options: TrainingLaunchTemplateOptions = {}, extra: { costCenter?: string; maxRunLifetime?: Duration } = {}) {
  const stack = new Stack(new App(), 'TestStack');
  const parent = new Construct(stack, 'Foundation');
  const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, maxAzs: 1, restrictDefaultSecurityGroup: false });
  const securityGroup = new ec2.SecurityGroup(stack, 'Sg', { vpc, allowAllOutbound: false });
  const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
  const instanceProfile = new iam.InstanceProfile(stack, 'Profile', { role });
  const lt = new TrainingLaunchTemplate(parent, 'LaunchTemplate', {
    environmentName: 'dev', costCenter: extra.costCenter ?? 'train', maxRunLifetime: extra.maxRunLifetime, instanceProfile, securityGroup, ...options,
  });
  return { stack, parent, lt, template: () => Template.fromStack(stack) };
}

function data(template: Template): any {
  return onlyResource(template, 'AWS::EC2::LaunchTemplate').Properties.LaunchTemplateData;
}

function tagsFor(template: Template, resourceType: string): Record<string, string> | undefined {
  const spec = (data(template).TagSpecifications ?? []).find((s: any) => s.ResourceType === resourceType);
  return spec && Object.fromEntries(spec.Tags.map((t: any) => [t.Key, t.Value]));
}

describe('TrainingLaunchTemplate', () => {
  test('requires IMDSv2 and terminates on instance-initiated shutdown', () => {
    const d = data(build().template());
    expect(d.MetadataOptions).toEqual(expect.objectContaining({ HttpTokens: 'required' }));
    expect(d.InstanceInitiatedShutdownBehavior).toBe('terminate');
  });

  test('has an encrypted gp3 root volume of 100 GiB on /dev/xvda, deleted on termination', () => {
    expect(data(build().template()).BlockDeviceMappings).toEqual([{
      DeviceName: '/dev/xvda',
      Ebs: { VolumeSize: 100, VolumeType: 'gp3', Encrypted: true, DeleteOnTermination: true },
    }]);
  });

  test('takes the root device name and size for other AMIs', () => {
    const d = data(build({ rootDeviceName: '/dev/sda1', rootVolumeSize: 200 }).template());
    expect(d.BlockDeviceMappings[0]).toEqual(expect.objectContaining({ DeviceName: '/dev/sda1', Ebs: expect.objectContaining({ VolumeSize: 200 }) }));
  });

  test('carries the instance profile and the security group, and no network interface', () => {
    const { stack, template } = build();
    const t = template();
    const d = data(t);
    expect(d.IamInstanceProfile).toEqual({ Arn: { 'Fn::GetAtt': [expect.stringMatching(/^Profile/), 'Arn'] } });
    expect(d.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [expect.stringMatching(/^Sg/), 'GroupId'] }]);
    expect(d.NetworkInterfaces).toBeUndefined();
    expect(stack.resolve(d)).not.toHaveProperty('InstanceMarketOptions');
  });

  test('is named per environment, and has no instance type, AMI or user data unless given', () => {
    const { template, lt } = build();
    const resource = onlyResource(template(), 'AWS::EC2::LaunchTemplate');
    expect(resource.Properties.LaunchTemplateName).toBe('ChronosTrainingLaunchTemplate-dev');
    expect(lt.launchTemplateName).toBe('ChronosTrainingLaunchTemplate-dev');
    expect(resource.Properties.LaunchTemplateData).not.toHaveProperty('InstanceType');
    expect(resource.Properties.LaunchTemplateData).not.toHaveProperty('ImageId');
    expect(resource.Properties.LaunchTemplateData).not.toHaveProperty('UserData');
  });

  test('takes an instance type, an AMI from an SSM parameter and user data', () => {
    const userData = ec2.UserData.forLinux();
    userData.addCommands('shutdown -h +240');
    const { template } = build({
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.G4DN, ec2.InstanceSize.XLARGE2),
      machineImage: ec2.MachineImage.fromSsmParameter('/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id'),
      userData,
    });
    const t = template();
    const d = data(t);
    expect(d.InstanceType).toBe('g4dn.2xlarge');
    expect(d.ImageId).toEqual({ Ref: expect.stringMatching(/^SsmParameterValueawsservicedeeplearning/) });
    t.hasParameter('*', {
      Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>',
      Default: '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id',
    });
    expect(JSON.stringify(d.UserData)).toContain('shutdown -h +240');
  });

  test('leaves detailed monitoring off: basic monitoring is free, detailed is billed per metric while an instance runs', () => {
    expect(data(build().template()).Monitoring).toBeUndefined();
  });

  test('stamps instances and volumes with the cost tags, MaxLifetimeHours and ManagedBy=chronos-launch-template', () => {
    const t = build().template();
    const expected = {
      Name: 'chronos-training-dev',
      Project: 'Chronos-Training',
      Environment: 'dev',
      CostCenter: 'train',
      MaxLifetimeHours: '4',
      ManagedBy: 'chronos-launch-template',
    };
    expect(tagsFor(t, 'instance')).toEqual(expected);
    expect(tagsFor(t, 'volume')).toEqual(expected);
    expect(data(t).TagSpecifications.map((s: any) => s.ResourceType)).toEqual(['instance', 'volume']);
  });

  test('an enclosing ManagedBy=CDK tag reaches the template, not its instances and volumes', () => {
    const { parent, template } = build({}, { maxRunLifetime: Duration.minutes(150) });
    Tags.of(parent).add('ManagedBy', 'CDK');
    Tags.of(parent).add('Team', 'forecasting');
    const t = template();
    for (const type of ['instance', 'volume']) {
      expect(tagsFor(t, type)).toEqual(expect.objectContaining({ ManagedBy: 'chronos-launch-template', Team: 'forecasting', MaxLifetimeHours: '2.5' }));
    }
    const own = onlyResource(t, 'AWS::EC2::LaunchTemplate').Properties.TagSpecifications;
    expect(own).toEqual([{ ResourceType: 'launch-template', Tags: expect.arrayContaining([{ Key: 'ManagedBy', Value: 'CDK' }]) }]);
  });

  test('with spot: one-time spot requests terminated on interruption, and a spot-instances-request tag specification', () => {
    const t = build({ spot: true }).template();
    expect(data(t).InstanceMarketOptions).toEqual({
      MarketType: 'spot',
      SpotOptions: { InstanceInterruptionBehavior: 'terminate', SpotInstanceType: 'one-time' },
    });
    expect(data(t).TagSpecifications.map((s: any) => s.ResourceType)).toEqual(['instance', 'volume', 'spot-instances-request']);
    expect(tagsFor(t, 'spot-instances-request')).toEqual(tagsFor(t, 'instance'));
  });

  test('exposes the template and its ID', () => {
    const { stack, lt } = build();
    expect(stack.resolve(lt.launchTemplateId)).toEqual({ Ref: expect.stringMatching(/^FoundationLaunchTemplate/) });
    expect(lt.launchTemplate.node.id).toBe('Resource');
    expect(lt.node.defaultChild).toBe(lt.launchTemplate);
    expect(lt.maxRunLifetime.toHumanString()).toBe('4 hours');
  });

  test.each<[string, Duration, string]>([
    ['whole hours', Duration.hours(6), '6'],
    ['90 minutes', Duration.minutes(90), '1.5'],
    ['the shortest, 15 minutes', Duration.minutes(15), '0.25'],
    ['the longest, 14 days', Duration.days(14), '336'],
  ])('maxRunLifetime of %s is the MaxLifetimeHours tag, in decimal hours the run reaper parses', (_name, maxRunLifetime, tag) => {
    const value = tagsFor(build({}, { maxRunLifetime }).template(), 'instance')?.MaxLifetimeHours;
    expect(value).toBe(tag);
    const config = { filterTags: {}, excludeTags: {}, lifetimeTagKey: 'MaxLifetimeHours', defaultLifetimeSeconds: 1, dryRun: true };
    expect(lifetimeOf({ Tags: [{ Key: 'MaxLifetimeHours', Value: value }] }, config))
      .toEqual({ lifetimeSeconds: maxRunLifetime.toSeconds(), lifetimeFrom: 'tag' });
  });

  test.each<[string, Duration, RegExp]>([
    ['under 15 minutes', Duration.minutes(10), /maxRunLifetime is 10 minutes; it must be a whole number of minutes from 15/],
    ['zero', Duration.hours(0), /maxRunLifetime is 0 hours; it must be a whole number of minutes from 15/],
    ['fractional minutes', Duration.seconds(1000), /maxRunLifetime is 16 minutes 40 seconds; it must be a whole number of minutes/],
    ['over 14 days', Duration.days(15), /maxRunLifetime is 15 days; .* to 20160 \(14 days\)/],
  ])('rejects a maxRunLifetime %s', (_name, maxRunLifetime, message) => {
    expect(() => build({}, { maxRunLifetime })).toThrow(message);
  });

  test('rejects a cost center that is not a valid tag value', () => {
    expect(() => build({}, { costCenter: 'train#1' })).toThrow(/costCenter 'train#1' is not a valid AWS tag value/);
  });

  test.each<[string, TrainingLaunchTemplateOptions, RegExp]>([
    ['fractional volume size', { rootVolumeSize: 99.5 }, /rootVolumeSize is 99.5; it must be a whole number of GiB from 1 to 16384/],
    ['oversized volume', { rootVolumeSize: 20000 }, /rootVolumeSize is 20000/],
    ['bad device name', { rootDeviceName: 'xvda' }, /rootDeviceName 'xvda' must be a device name/],
  ])('rejects %s', (_name, options, message) => {
    expect(() => build(options)).toThrow(message);
  });

  test('rejects a bad environment name, naming the prop', () => {
    const stack = new Stack();
    const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-1');
    const profile = iam.InstanceProfile.fromInstanceProfileName(stack, 'P', 'p');
    expect(() => new TrainingLaunchTemplate(stack, 'Lt', { environmentName: 'Dev', costCenter: 'train', instanceProfile: profile, securityGroup: sg }))
      .toThrow(/environmentName 'Dev' is invalid/);
  });
});
