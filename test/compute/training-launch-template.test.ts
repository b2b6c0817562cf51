import { App, Duration, Stack, Tags } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { TrainingLaunchTemplate, TrainingLaunchTemplateOptions } from '../../src';
import { lifetimeOf } from '../../src/guardrails/training-run-reaper.lambda';
import { USER_DATA_LIMIT_BYTES, userDataSize } from '../../src/private/run-agent-launch';
import { runAgentUserData } from '../../src/private/run-agent-user-data';
import { onlyResource } from '../helpers';

/**
 * A stack holding a launch template with a real profile and security group, under an enclosing scope; with a bucket
 * unless `runAgent: false`.
 */
function build(options: TrainingLaunchTemplateOptions = {}, extra: { costCenter?: string; maxRunLifetime?: Duration } = {}) {
  const app = new App();
  const stack = new Stack(app, 'TestStack');
  const bucket = options.runAgent === false ? undefined : new s3.Bucket(stack, 'Bucket');
  const parent = new Construct(stack, 'Foundation');
  const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, maxAzs: 1, restrictDefaultSecurityGroup: false });
  const securityGroup = new ec2.SecurityGroup(stack, 'Sg', { vpc, allowAllOutbound: false });
  const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
  const instanceProfile = new iam.InstanceProfile(stack, 'Profile', { role });
  const lt = new TrainingLaunchTemplate(parent, 'LaunchTemplate', {
    environmentName: 'dev', costCenter: extra.costCenter ?? 'train', maxRunLifetime: extra.maxRunLifetime, instanceProfile, securityGroup, bucket, ...options,
  });
  return { app, stack, parent, lt, template: () => Template.fromStack(stack) };
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

  test('is named per environment, and has no instance type, AMI or user data unless given (without the run agent)', () => {
    const { template, lt } = build({ runAgent: false });
    const resource = onlyResource(template(), 'AWS::EC2::LaunchTemplate');
    expect(resource.Properties.LaunchTemplateName).toBe('ChronosTrainingLaunchTemplate-dev');
    expect(lt.launchTemplateName).toBe('ChronosTrainingLaunchTemplate-dev');
    expect(resource.Properties.LaunchTemplateData).not.toHaveProperty('InstanceType');
    expect(resource.Properties.LaunchTemplateData).not.toHaveProperty('ImageId');
    expect(resource.Properties.LaunchTemplateData).not.toHaveProperty('UserData');
  });

  test('takes an instance type, an AMI from an SSM parameter and user data (with the run agent)', () => {
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

/** The template's user data as EC2 would hand it to the instance: intrinsics evaluated, `Ref`s by `refs`. */
function evaluate(value: any, refs: Record<string, string>): string {
  if (typeof value === 'string') return value;
  if (value['Fn::Join']) return value['Fn::Join'][1].map((v: any) => evaluate(v, refs)).join(value['Fn::Join'][0]);
  if (value['Fn::Base64'] !== undefined) return Buffer.from(evaluate(value['Fn::Base64'], refs)).toString('base64');
  if (value.Ref && value.Ref in refs) return refs[value.Ref];
  throw new Error(`cannot evaluate ${JSON.stringify(value)}`);
}

/** The MIME parts of a multipart archive: headers and body of each, split as a MIME parser does. */
function mimeParts(archive: string): Array<{ headers: string[]; body: string }> {
  const lines = archive.split('\n');
  const boundary = /^Content-Type: multipart\/mixed; boundary="(.+)"$/.exec(lines[0])![1];
  expect(lines[1]).toBe('MIME-Version: 1.0');
  const chunks = archive.split(`\n--${boundary}`);
  expect(chunks[chunks.length - 1]).toBe('--\n');
  return chunks.slice(1, -1).map(chunk => {
    const [head, ...rest] = chunk.replace(/^\n/, '').split('\n\n');
    return { headers: head.split('\n'), body: rest.join('\n\n') };
  });
}

const BUCKET_NAME = 'chronos-training-dev-123456789012-us-east-1';

/** The user data of a built template, evaluated with the bucket's name, and its MIME parts. */
function userDataOf(built: ReturnType<typeof build>) {
  const template = built.template();
  const bucketId = Object.keys(template.findResources('AWS::S3::Bucket'))[0];
  const archive = Buffer.from(evaluate(data(template).UserData, { [bucketId]: BUCKET_NAME }), 'base64').toString('utf-8');
  return { archive, parts: mimeParts(archive) };
}

describe('TrainingLaunchTemplate with the run agent (the default)', () => {
  const agentScript = (maxRunLifetimeSeconds = 14400) => runAgentUserData({ bucketName: BUCKET_NAME, environmentName: 'dev', maxRunLifetimeSeconds });

  test('its user data is a MIME multipart archive whose only part is the agent, as a raw shell script', () => {
    const built = build();
    expect(built.lt.runAgent).toBe(true);
    const { parts } = userDataOf(built);
    expect(parts).toHaveLength(1);
    expect(parts[0].headers).toEqual(['Content-Type: text/x-shellscript; charset="us-ascii"']);
    expect(parts[0].body).toBe(agentScript());
  });

  test('the agent part gets the bucket name (a token), the environment and the lifetime in seconds', () => {
    const { parts } = userDataOf(build({}, { maxRunLifetime: Duration.minutes(90) }));
    expect(parts[0].body).toBe(agentScript(5400));
    expect(parts[0].body).toContain(`export CHRONOS_BUCKET='${BUCKET_NAME}' CHRONOS_ENVIRONMENT='dev'`);
  });

  // cloud-init names the parts of an archive part-001, part-002, ... in their order and runs the scripts sorted by
  // name (cloud-init's cloudinit/user_data.py, PART_FN_TPL 'part-%03d'; cloudinit/subp.py runparts; "MIME multi-part
  // archive", https://docs.cloud-init.io/en/latest/explanation/format.html): the agent's part runs first.
  test("the user's userData is the second part, base64-encoded, after the agent's", () => {
    const userData = ec2.UserData.forLinux();
    userData.addCommands('echo "héllo, wörld"');
    const built = build({ userData });
    userData.addCommands('echo added after the template'); // rendered at synthesis
    const { parts } = userDataOf(built);
    expect(parts.map(p => p.headers[0])).toEqual(['Content-Type: text/x-shellscript; charset="us-ascii"', 'Content-Type: text/x-shellscript; charset="utf-8"']);
    expect(parts[1].headers[1]).toBe('Content-Transfer-Encoding: base64');
    expect(Buffer.from(parts[1].body, 'base64').toString('utf-8')).toBe('#!/bin/bash\necho "héllo, wörld"\necho added after the template');
  });

  test('the agent part is ASCII and no line of it can be taken for a part boundary', () => {
    const script = runAgentUserData({ bucketName: 'b'.repeat(63), environmentName: 'dev', maxRunLifetimeSeconds: 14400 });
    expect(/^[\x00-\x7f]*$/.test(script)).toBe(true);
    expect(script.split('\n').filter(l => l.startsWith('--'))).toEqual([]);
  });

  test('turns on instance tags in the instance metadata, keeping IMDSv2 and the hop limit', () => {
    expect(data(build().template()).MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 2, InstanceMetadataTags: 'enabled' });
  });

  test('with runAgent: false, the user data and the metadata options are as without the agent', () => {
    const userData = ec2.UserData.forLinux();
    userData.addCommands('shutdown -h +240');
    const built = build({ runAgent: false, userData });
    const d = data(built.template());
    expect(built.lt.runAgent).toBe(false);
    expect(d.UserData).toEqual({ 'Fn::Base64': '#!/bin/bash\nshutdown -h +240' });
    expect(d.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 2 });
  });

  test('needs a bucket, and takes none without the agent', () => {
    const stack = new Stack();
    const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-1');
    const profile = iam.InstanceProfile.fromInstanceProfileName(stack, 'P', 'p');
    const bucket = s3.Bucket.fromBucketName(stack, 'Bucket', BUCKET_NAME);
    const props = { environmentName: 'dev', costCenter: 'train', instanceProfile: profile, securityGroup: sg };
    expect(() => new TrainingLaunchTemplate(stack, 'A', props))
      .toThrow(/runAgent is on \(the default\) and bucket is missing: .*pass bucket, or set runAgent: false/);
    expect(() => new TrainingLaunchTemplate(stack, 'B', { ...props, runAgent: false, bucket }))
      .toThrow(/bucket is given with runAgent: false/);
    expect(() => new TrainingLaunchTemplate(stack, 'C', { ...props, bucket, userData: new ec2.MultipartUserData() }))
      .toThrow(/userData is an ec2.MultipartUserData; with runAgent it becomes the second part/);
  });

  // "If you allow access to tags in instance metadata, instance tag keys are subject to specific restrictions.
  // Non-compliance will result in failed launches": letters, digits and + - = . , _ : @ only, no space or '/', not
  // '.', '..' or '_index' ("View tags for your EC2 instances using instance metadata", Amazon EC2 User Guide,
  // https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html). CloudFormation and emulators
  // take such a template; only a launch fails.
  test('an app tag whose key EC2 refuses in the instance metadata fails synthesis, naming the key and the rule', () => {
    const built = build();
    Tags.of(built.app).add('team/owner', 'x');
    Tags.of(built.app).add('_index', 'x');
    Tags.of(built.app).add('cost,center:team@org=+-._', 'x'); // every allowed character
    expect(() => built.template()).toThrow(/the instance tag keys '_index', 'team\/owner' cannot be launched with runAgent: with tags in the instance metadata, EC2 refuses .* letters \(a-z, A-Z\), digits \(0-9\) and \+ - = \. , _ : @ \(no space, no '\/'\), or is '\.', '\.\.' or '_index'/);
  });

  test.each(['.', '..', 'has space', 'a/b', 'naïve'])('refuses the tag key %j', key => {
    const built = build();
    Tags.of(built.parent).add(key, 'x');
    expect(() => built.template()).toThrow(/cannot be launched with runAgent/);
  });

  test('the same tag synthesizes with runAgent: false, or kept off the template', () => {
    const off = build({ runAgent: false });
    Tags.of(off.app).add('team/owner', 'x');
    expect(tagsFor(off.template(), 'instance')).toEqual(expect.objectContaining({ 'team/owner': 'x' }));
    const kept = build();
    Tags.of(kept.app).add('team/owner', 'x', { excludeResourceTypes: ['AWS::EC2::LaunchTemplate'] });
    expect(tagsFor(kept.template(), 'instance')).not.toHaveProperty('team/owner');
  });

  // EC2: "User data is limited to 16 KB, in raw form, before it is base64-encoded" ("Work with instance user data",
  // Amazon EC2 User Guide, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html).
  // CloudFormation takes a longer one; RunInstances then fails.
  test('fits in the 16 KB of user data with the longest bucket name and leaves the user about 1.5 KB', () => {
    const stack = new Stack();
    const size = userDataSize(stack, { bucketName: new s3.Bucket(stack, 'B').bucketName, environmentName: 'dev', maxRunLifetimeSeconds: 14400 });
    expect(size.agent).toBe(Buffer.byteLength(runAgentUserData({ bucketName: 'b'.repeat(63), environmentName: 'dev', maxRunLifetimeSeconds: 14400 })));
    expect(size.total).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    expect(size.userBudget).toBeGreaterThanOrEqual(1000);
  });

  test('user data over 16 KB fails synthesis, naming the sizes and the limit', () => {
    const userData = ec2.UserData.forLinux();
    userData.addCommands(`echo ${'x'.repeat(3000)}`);
    const built = build({ userData });
    expect(() => built.template()).toThrow(
      /the user data is \d+ bytes, over the 16384 bytes \(16 KB\) EC2 accepts before base64 .*the run agent's part \d+ bytes \(the bucket name counted at its longest, 63 characters\), your userData 3017 bytes \(4024 base64-encoded in the archive\), the MIME headers \d+ bytes\. Shorten userData to at most \d+ bytes/);
  });

  test('the largest userData the error allows synthesizes, one byte more does not', () => {
    const probe = ec2.UserData.custom('#!/bin/bash\n');
    const stack = new Stack();
    const budget = userDataSize(stack, { bucketName: new s3.Bucket(stack, 'B').bucketName, environmentName: 'dev', maxRunLifetimeSeconds: 14400 }, probe).userBudget;
    expect(() => build({ userData: ec2.UserData.custom('#'.repeat(budget)) }).template()).not.toThrow();
    expect(() => build({ userData: ec2.UserData.custom('#'.repeat(budget + 3)) }).template()).toThrow(/over the 16384 bytes/);
  });
});
