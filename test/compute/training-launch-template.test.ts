import * as crypto from 'crypto';
import * as zlib from 'zlib';
import { App, Aws, CfnResource, Duration, Size, Stack, Tags } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { TrainingLaunchTemplate, TrainingLaunchTemplateOptions, TrainingRunReaper } from '../../src';
import { lifetimeOf } from '../../src/guardrails/training-run-reaper.lambda';
import { MIME_BOUNDARY, USER_DATA_LIMIT_BYTES, userDataSize } from '../../src/private/run-agent-launch';
import { RUN_AGENT_LOADER } from '../../src/private/run-agent-loader';
import { LOADER_DELIMITER, runAgentUserData } from '../../src/private/run-agent-user-data';
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

  test('takes the root volume size in any unit that is whole in GiB (Size.tebibytes(1) is 1024 GiB)', () => {
    expect(data(build({ rootVolumeSize: Size.tebibytes(1) }).template()).BlockDeviceMappings[0].Ebs.VolumeSize).toBe(1024);
  });

  test('takes the root device name and size for other AMIs', () => {
    const d = data(build({ rootDeviceName: '/dev/sda1', rootVolumeSize: Size.gibibytes(200) }).template());
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
    expect(zlib.gunzipSync(Buffer.from(d.UserData, 'base64')).toString('utf-8')).toContain('\nshutdown -h +240\n');
  });

  // LaunchTemplateData Monitoring ("Enable or turn off detailed monitoring for your instances", Amazon EC2 User Guide):
  // billed per metric only while an instance runs; the AWS Config rule ec2-instance-detailed-monitoring-enabled
  // requires it.
  test('turns detailed monitoring on by default; detailedMonitoring: false leaves the free basic monitoring', () => {
    expect(data(build().template()).Monitoring).toEqual({ Enabled: true });
    expect(data(build({ detailedMonitoring: false }).template()).Monitoring).toEqual({ Enabled: false });
  });

  test('stamps instances and volumes with the cost tags, MaxLifetimeHours and ManagedBy=chronos-launch-template', () => {
    const t = build().template();
    const expected = {
      Name: 'chronos-training-dev',
      Project: 'Chronos-Training',
      Environment: 'dev',
      CostCenter: 'train',
      // The agent's 4 hours plus the 900 s margin for the boot, the drain and the backstop (issue 27, item 2).
      MaxLifetimeHours: '4.25',
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
      expect(tagsFor(t, type)).toEqual(expect.objectContaining({ ManagedBy: 'chronos-launch-template', Team: 'forecasting', MaxLifetimeHours: '2.75' }));
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

  // The reaper counts from LaunchTime, the agent from its own start after the boot, and the agent's backstop powers
  // off 300 s after the boot script starts: the tag carries a 900 s margin (issue 27, item 2; EC2 API Reference,
  // "Instance": LaunchTime), rounded up to 0.01 h, and the reaper built for the same lifetime takes it whole.
  test.each<[string, Duration, string]>([
    ['whole hours', Duration.hours(6), '6.25'],
    ['90 minutes', Duration.minutes(90), '1.75'],
    ['the shortest, 15 minutes', Duration.minutes(15), '0.5'],
    ['17 minutes, rounded up to 0.01 h', Duration.minutes(17), '0.54'],
    ['the longest, 14 days', Duration.days(14), '336.25'],
  ])('maxRunLifetime of %s plus 900 s is the MaxLifetimeHours tag, in decimal hours the run reaper parses', (_name, maxRunLifetime, tag) => {
    const value = tagsFor(build({}, { maxRunLifetime }).template(), 'instance')?.MaxLifetimeHours;
    expect(value).toBe(tag);
    expect(Number(value) * 3600).toBeGreaterThanOrEqual(maxRunLifetime.toSeconds() + 900);
    expect(Number(value) * 3600).toBeLessThan(maxRunLifetime.toSeconds() + 900 + 36);
    const reaper = new TrainingRunReaper(new Stack(), 'Reaper', { environmentName: 'dev', maxRunLifetime });
    const ceiling = Number(Template.fromStack(Stack.of(reaper)).toJSON().Resources[
      Stack.of(reaper).getLogicalId(reaper.function.node.defaultChild as CfnResource)].Properties.Environment.Variables.DEFAULT_LIFETIME_SECONDS);
    const config = { filterTags: {}, excludeTags: {}, lifetimeTagKey: 'MaxLifetimeHours', defaultLifetimeSeconds: ceiling, dryRun: true };
    expect(lifetimeOf({ Tags: [{ Key: 'MaxLifetimeHours', Value: value }] }, config))
      .toEqual({ lifetimeSeconds: Math.round(Number(value) * 3600), lifetimeFrom: 'tag' });
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
    // Issue 31: rootVolumeSize is a Size, as Batch memory is. A launch template's gp3 volume is "gp2 and gp3: 1 - 16,384 GiB"
    // of whole GiB ("LaunchTemplateEbsBlockDeviceRequest", VolumeSize: Integer, Amazon EC2 API Reference).
    ['a volume size that is not whole in GiB', { rootVolumeSize: Size.mebibytes(1536) }, /rootVolumeSize is 1.5 GiB; it must be a literal whole number of GiB .* from 1 to 16384/],
    ['a volume size in KiB', { rootVolumeSize: Size.kibibytes(1000) }, /rootVolumeSize is 0.000\d+ GiB/],
    ['oversized volume', { rootVolumeSize: Size.tebibytes(17) }, /rootVolumeSize is 17408 GiB/],
    ['a volume of 0 GiB', { rootVolumeSize: Size.gibibytes(0) }, /rootVolumeSize is 0 GiB/],
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
const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * The user data of a built template as cloud-init reads it, and its MIME parts: a literal is the gzip-compressed
 * archive, base64-encoded (gunzipped here); an `Fn::Base64` the uncompressed one, evaluated with the bucket's name.
 */
function userDataOf(built: ReturnType<typeof build>) {
  const template = built.template();
  const userData = data(template).UserData;
  let archive: string;
  let gzipped: Buffer | undefined;
  if (typeof userData === 'string') {
    gzipped = Buffer.from(userData, 'base64');
    expect([...gzipped.subarray(0, 2)]).toEqual(GZIP_MAGIC);
    archive = zlib.gunzipSync(gzipped).toString('utf-8');
  } else {
    const bucketId = Object.keys(template.findResources('AWS::S3::Bucket'))[0];
    archive = Buffer.from(evaluate(userData, { [bucketId]: BUCKET_NAME, 'AWS::AccountId': '123456789012' }), 'base64').toString('utf-8');
  }
  return { archive, gzipped, parts: mimeParts(archive) };
}

/** The agent between the raw heredoc's lines. */
function rawLoader(script: string): string {
  const lines = script.split('\n');
  const start = lines.findIndex(l => l.startsWith(`cat > chronos_boot.py.tmp <<'${LOADER_DELIMITER}'`));
  const end = lines.indexOf(LOADER_DELIMITER);
  expect(start).toBeGreaterThan(0);
  return lines.slice(start + 1, end).join('\n') + '\n';
}

/** `n` bytes of text gzip cannot shrink much: base64 of a SHA-256 chain. */
function incompressible(n: number): string {
  let out = '';
  let h = crypto.createHash('sha256').update('seed').digest();
  while (out.length < n) {
    h = crypto.createHash('sha256').update(h).digest();
    out += h.toString('base64');
  }
  return out.slice(0, n);
}

describe('TrainingLaunchTemplate with the run agent (the default)', () => {
  const agentOptions = (maxRunLifetimeSeconds = 14400) => ({ environmentName: 'dev', maxRunLifetimeSeconds });
  const agentScript = (maxRunLifetimeSeconds = 14400) => runAgentUserData({ ...agentOptions(maxRunLifetimeSeconds), embed: 'raw' });

  // cloud-init: "Gzip Compressed Content: content found to be gzip compressed will be uncompressed. The uncompressed
  // data will then be used as if it were not compressed. This is typically useful because user-data is limited to
  // ~16384 bytes" ("User data formats", https://docs.cloud-init.io/en/latest/explanation/format.html). The L2
  // LaunchTemplate renders userData as Fn::Base64 of text, which cannot carry gzip's bytes: the construct overrides
  // the L1 property with the literal (src/compute/training-launch-template.ts).
  test('its user data is gzip-compressed at synthesis: a MIME multipart archive whose only part is the boot script, raw, with the loader and not the agent', () => {
    const built = build();
    expect(built.lt.runAgent).toBe(true);
    expect(typeof data(built.template()).UserData).toBe('string');
    const { parts, gzipped } = userDataOf(built);
    expect(gzipped!.length).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    expect(parts).toHaveLength(1);
    expect(parts[0].headers).toEqual(['Content-Type: text/x-shellscript; charset="us-ascii"']);
    expect(parts[0].body).toBe(agentScript());
    expect(rawLoader(parts[0].body)).toBe(RUN_AGENT_LOADER);
    expect(parts[0].body).not.toContain('def supervise('); // the agent is fetched from the bucket (docs/RUNS.md)
  });

  test('the agent part names no bucket (the ChronosBucket tag does), and gets the environment and the lifetime in seconds', () => {
    const { parts } = userDataOf(build({}, { maxRunLifetime: Duration.minutes(90) }));
    expect(parts[0].body).toBe(agentScript(5400));
    expect(parts[0].body).toContain("export CHRONOS_ENVIRONMENT='dev'\nexport CHRONOS_MAX_RUN_LIFETIME_SECONDS=5400\n");
    expect(parts[0].body).not.toContain('CHRONOS_BUCKET=');
  });

  test('two synths are byte-identical (no time or file name in the gzip header)', () => {
    const one = data(build().template()).UserData;
    const two = data(build().template()).UserData;
    expect(one).toBe(two);
    const header = Buffer.from(one, 'base64').subarray(0, 10);
    expect([...header.subarray(4, 8)]).toEqual([0, 0, 0, 0]); // MTIME
    expect(header[3]).toBe(0); // FLG: no FNAME, FCOMMENT, FEXTRA
  });

  // cloud-init names the parts of an archive part-001, part-002, ... in their order and runs the scripts sorted by
  // name (cloud-init's cloudinit/user_data.py, PART_FN_TPL 'part-%03d'; cloudinit/subp.py runparts; "MIME multi-part
  // archive", https://docs.cloud-init.io/en/latest/explanation/format.html): the agent's part runs first.
  test("the user's userData is the second part, raw inside the gzip, after the agent's", () => {
    const userData = ec2.UserData.forLinux();
    userData.addCommands('echo "héllo, wörld"');
    const built = build({ userData });
    userData.addCommands('echo added after the template'); // rendered at synthesis
    const { parts, gzipped } = userDataOf(built);
    expect(gzipped).toBeDefined();
    expect(parts.map(p => p.headers)).toEqual([['Content-Type: text/x-shellscript; charset="us-ascii"'], ['Content-Type: text/x-shellscript; charset="utf-8"']]);
    expect(parts[0].body).toBe(agentScript());
    expect(parts[1].body).toBe('#!/bin/bash\necho "héllo, wörld"\necho added after the template');
  });

  test("a userData with a token (addS3DownloadCommand) keeps the uncompressed archive: the boot script gzipped and base64-encoded in its part, the user's base64-encoded", () => {
    const userData = ec2.UserData.forLinux();
    const built = build({ userData });
    const bucket = built.stack.node.findChild('Bucket') as s3.Bucket;
    userData.addS3DownloadCommand({ bucket, bucketKey: 'boot.sh', localFile: '/tmp/boot.sh' });
    const { parts, gzipped } = userDataOf(built);
    expect(gzipped).toBeUndefined();
    expect(parts[0].headers).toEqual(['Content-Type: text/x-shellscript; charset="us-ascii"']);
    expect(parts[0].body).toBe(runAgentUserData({ ...agentOptions(), embed: 'gzip-base64' }));
    expect(parts[1].headers[1]).toBe('Content-Transfer-Encoding: base64');
    expect(Buffer.from(parts[1].body, 'base64').toString('utf-8')).toContain(`s3://${BUCKET_NAME}/boot.sh`);
  });

  test('the agent part is ASCII and no line of it can be taken for a part boundary, embedded either way', () => {
    for (const embed of ['raw', 'gzip-base64'] as const) {
      const script = runAgentUserData({ ...agentOptions(), embed });
      expect(/^[\x00-\x7f]*$/.test(script)).toBe(true);
      expect(script.split('\n').filter(l => l.startsWith('--'))).toEqual([]);
    }
  });

  test('a user line that looks like the boundary is base64-encoded inside the gzip, and comes back whole', () => {
    const text = `#!/bin/bash\necho a\n--${MIME_BOUNDARY}\necho b`;
    const { parts } = userDataOf(build({ userData: ec2.UserData.custom(text) }));
    expect(parts).toHaveLength(2);
    expect(parts[1].headers[1]).toBe('Content-Transfer-Encoding: base64');
    expect(Buffer.from(parts[1].body, 'base64').toString('utf-8')).toBe(text);
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
  // CloudFormation takes a longer one; RunInstances then fails. Gzipped user data counts compressed.
  // The agent is not in the user data (it grows with each feature): its boot script and loader take about 4 KB
  // compressed, which leaves the user's part at least 12 KB of the 16 KB.
  test('compressed, the agent\'s part takes at most 4.5 KB of the 16 KB and leaves the user at least 11.5 KB (compressed)', () => {
    const size = userDataSize(new Stack(), agentOptions());
    expect(size.compressed).toBe(true);
    expect(size.agent).toBe(size.total);
    expect(size.agent).toBeLessThanOrEqual(4.5 * 1024);
    expect(size.userBudget).toBe(USER_DATA_LIMIT_BYTES - size.agent);
    expect(size.userBudget).toBeGreaterThanOrEqual(11.5 * 1024);
  });

  test('a typical shell script of 15 KB fits compressed', () => {
    const userData = ec2.UserData.forLinux();
    for (let i = 0; userData.render().length < 15 * 1024; i++) {
      userData.addCommands(`aws s3 cp "s3://my-datasets/shard-${i}.tar" /data/ && tar -xf /data/shard-${i}.tar -C /data/${i} # shard ${i}`);
    }
    const built = build({ userData });
    expect(() => built.template()).not.toThrow();
    expect(userDataOf(built).gzipped!.length).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
  });

  test('user data over 16 KB compressed fails synthesis, naming the sizes and the room left', () => {
    const agentBytes = userDataSize(new Stack(), agentOptions()).agent;
    const userData = ec2.UserData.forLinux();
    userData.addCommands(`echo ${incompressible(18000)}`);
    expect(() => build({ userData }).template()).toThrow(new RegExp(
      "the user data is \\d+ bytes gzip-compressed, over the 16384 bytes \\(16 KB\\) EC2 accepts before base64 .*the run agent's part " +
      `takes ${agentBytes} bytes of it, compressed with the MIME headers; your userData is 18017 bytes, about \\d+ compressed, and ` +
      `${USER_DATA_LIMIT_BYTES - agentBytes} bytes are left for it \\(compressed\\)\\. Shorten userData`));
  });

  test('uncompressed (a token in userData), the user has about 8 KB and the error says how much is left', () => {
    const probe = ec2.UserData.custom(`#!/bin/bash\n# ${Aws.ACCOUNT_ID}\n`);
    const size = userDataSize(new Stack(), agentOptions(), probe);
    expect(size.compressed).toBe(false);
    expect(size.agent).toBe(Buffer.byteLength(runAgentUserData({ ...agentOptions(), embed: 'gzip-base64' })));
    expect(size.total).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    expect(size.userBudget).toBeGreaterThanOrEqual(7.5 * 1024);
    const budget = size.userBudget;
    expect(() => build({ userData: ec2.UserData.custom('#'.repeat(budget) + Aws.ACCOUNT_ID) }).template()).not.toThrow();
    expect(() => build({ userData: ec2.UserData.custom('#'.repeat(budget + 3) + Aws.ACCOUNT_ID) }).template()).toThrow(new RegExp(
      `the user data is \\d+ bytes, over the 16384 bytes .*your userData ${budget + 3} bytes \\(\\d+ base64-encoded in the archive\\), ` +
      `the MIME headers \\d+ bytes\\. Your userData holds a token .* not gzip-compressed at synthesis: ${budget} bytes are left for it\\. ` +
      `Shorten userData to at most ${budget} bytes`));
  });

});
